#!/usr/bin/env bash
# Adding a 4th node to a 3-node ringkv cluster that holds 1,000,000 keys, under client load.
#
#   bench/migration.sh
#   KEYS=200000 REPLICAS=1 bench/migration.sh
#
# 1. Starts 3 nodes (N = REPLICAS, W = WRITE_QUORUM) and a 4th that is not on the ring yet, all
#    on free loopback ports; fills KEYS keys "key:<i>" with VALUE_SIZE-byte values
#    (bench/cluster_load --mode fill).
# 2. Predicts the move with the ring library alone (bench/plan_tool: the ranges n4 gains in
#    ring::diff, and the keys of the data set in them); RING PLAN's answer is shown too.
# 3. Runs a mixed GET/SET load (50 connections over the 3 nodes, random keys of the set) for
#    BEFORE_SECONDS, then sends RING ADDSERVER n4 and keeps the load running until every node
#    reports migration_state:idle, and AFTER_SECONDS more.
# 4. Reports: keys and bytes moved (the sum of node_keys_received / node_bytes_received in RING
#    INFO over the 4 nodes) over the prediction (target 1.00), the wall time and MB/s of the
#    move, and client throughput during the move over throughput before it (target >= 0.7),
#    with the load's error and missing-key counts (a read must never miss during a move).
#
# Environment: KEYS (1000000), VALUE_SIZE (64), REPLICAS (3), WRITE_QUORUM (2),
# BEFORE_SECONDS (10), AFTER_SECONDS (5), CONNS (25 per load thread, 2 threads), PIPELINE (1),
# MIGRATION_RATE (the nodes' migration-rate; their default when unset), BUILD_DIR (build, Release), RINGKV_SERVER and TOOLS_DIR (a ringkv-server and the directory with
# plan_tool and cluster_load, instead of building them). Everything started is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NKEYS="${KEYS:-1000000}"
VALUE_SIZE="${VALUE_SIZE:-64}"
REPLICAS="${REPLICAS:-3}"
WRITE_QUORUM="${WRITE_QUORUM:-2}"
BEFORE_SECONDS="${BEFORE_SECONDS:-10}"
AFTER_SECONDS="${AFTER_SECONDS:-5}"
CONNS="${CONNS:-25}"
PIPELINE="${PIPELINE:-1}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [ -n "${RINGKV_SERVER:-}" ] && [ -n "${TOOLS_DIR:-}" ]; then
  SERVER="$RINGKV_SERVER"
else
  BUILD_DIR="${BUILD_DIR:-build}"
  "$ROOT/scripts/build.sh" --type Release --dir "$BUILD_DIR" --target ringkv-server \
    --target plan_tool --target cluster_load >/dev/null
  SERVER="$ROOT/$BUILD_DIR/ringkv-server"
  TOOLS_DIR="$ROOT/$BUILD_DIR/bench"
fi
PLAN_TOOL="$TOOLS_DIR/plan_tool"
LOAD="$TOOLS_DIR/cluster_load"
for f in "$SERVER" "$PLAN_TOOL" "$LOAD"; do
  [ -x "$f" ] || { echo "migration.sh: missing $f" >&2; exit 1; }
done

bench_workdir migration
now_ms() { date +%s%3N; }
info_field() { redis-cli -p "$1" RING INFO | tr -d '\r' | sed -n "s/^$2://p"; }

# Every node (n4 too: it follows the configuration before it joins) is idle at one epoch; the
# poll is one cheap process (bench/wait_idle.py), not a loop of redis-cli calls.
wait_idle() { "$PY" "$ROOT/bench/wait_idle.py" "${PORTS[@]}"; }

# ---------------------------------------------------------------- cluster

PORTS=()
for i in 1 2 3 4; do
  port="$(free_port)"
  disc=local
  [ "$i" = 1 ] || disc="ringkv://127.0.0.1:${PORTS[0]}"
  "$SERVER" --port "$port" --bind 127.0.0.1 --node-id "n$i" --discovery "$disc" \
    --replicas "$REPLICAS" --write-quorum "$WRITE_QUORUM" --loglevel notice \
    ${MIGRATION_RATE:+--migration-rate "$MIGRATION_RATE"} \
    --logfile "$WORK/n$i.log" &
  PIDS+=($!)
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ] && break
    sleep 0.05
  done
  PORTS+=("$port")
done
N4_PORT="${PORTS[3]}"
for i in 2 3; do
  reply="$(redis-cli -p "${PORTS[0]}" RING ADDSERVER "n$i" "127.0.0.1:${PORTS[$((i - 1))]}")"
  [ "$reply" = "OK" ] || { echo "RING ADDSERVER n$i: $reply" >&2; exit 1; }
  wait_idle
done
PORTS3="${PORTS[0]},${PORTS[1]},${PORTS[2]}"
echo "3 nodes on ${PORTS[*]:0:3} (N=$REPLICAS, W=$WRITE_QUORUM); n4 on $N4_PORT, not on the ring yet"

t0="$(now_ms)"
"$LOAD" --mode fill --ports "$PORTS3" --count "$NKEYS" --value-size "$VALUE_SIZE" --threads 2 \
  --conns 8 --pipeline 64 >"$WORK/fill.txt"
t1="$(now_ms)"
dbsize="$(redis-cli -p "${PORTS[0]}" DBSIZE)"
echo "filled $NKEYS keys in $(((t1 - t0) / 1000)) s; DBSIZE $dbsize"
[ "$dbsize" = "$NKEYS" ] || { echo "migration.sh: DBSIZE is $dbsize, not $NKEYS" >&2; exit 1; }

# ---------------------------------------------------------------- prediction

"$PLAN_TOOL" --before n1,n2,n3 --after n1,n2,n3,n4 --replicas "$REPLICAS" --pattern 'key:%d' \
  --count "$NKEYS" --value-size "$VALUE_SIZE" >"$WORK/plan_tool.txt"
read -r _ _ _ _ IDEAL_KEYS _ IDEAL_BYTES < <(grep '^total ' "$WORK/plan_tool.txt")
echo "plan_tool (ring::diff over the data set): $(grep '^gain ' "$WORK/plan_tool.txt" | tr '\n' ';')"
echo "RING PLAN ADDSERVER n4: $(redis-cli -p "${PORTS[0]}" RING PLAN ADDSERVER n4 "127.0.0.1:$N4_PORT" |
  paste -sd' ' | sed 's/from /\nfrom /g' | awk 'NF' | tr '\n' ';')"

# ---------------------------------------------------------------- the move under load

"$LOAD" --mode mixed --ports "$PORTS3" --count "$NKEYS" --value-size "$VALUE_SIZE" --threads 2 \
  --conns "$CONNS" --pipeline "$PIPELINE" --stop-file "$WORK/stop" --interval-ms 250 \
  >"$WORK/load.txt" 2>"$WORK/load.err" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
t_load="$(now_ms)"
sleep "$BEFORE_SECONDS"  # the "before" measurement window
t_add="$(now_ms)"
reply="$(redis-cli -p "${PORTS[0]}" RING ADDSERVER n4 "127.0.0.1:$N4_PORT")"
[ "$reply" = "OK" ] || { echo "RING ADDSERVER n4: $reply" >&2; exit 1; }
wait_idle
t_idle="$(now_ms)"
sleep "$AFTER_SECONDS"
touch "$WORK/stop"
load_rc=0
wait "$LOAD_PID" || load_rc=$?

moved_keys=0
moved_bytes=0
for p in "${PORTS[@]}"; do
  moved_keys=$((moved_keys + $(info_field "$p" node_keys_received)))
  moved_bytes=$((moved_bytes + $(info_field "$p" node_bytes_received)))
done

"$PY" - "$WORK/load.txt" "$t_load" "$t_add" "$t_idle" "$moved_keys" "$moved_bytes" "$IDEAL_KEYS" \
  "$IDEAL_BYTES" "$NKEYS" "$REPLICAS" "$WRITE_QUORUM" "$load_rc" <<'EOF'
import sys
path, t_load, t_add, t_idle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
moved_keys, moved_bytes, ideal_keys, ideal_bytes = map(int, sys.argv[5:9])
nkeys, n, w, load_rc = int(sys.argv[9]), sys.argv[10], sys.argv[11], int(sys.argv[12])
rows, summary = [], ""
for line in open(path):
    if line.startswith("summary"):
        summary = line.strip()
        continue
    ts, ops, err, missing = map(int, line.split())
    rows.append((ts, ops, err, missing))
def window(lo, hi):
    sel = [r for r in rows if lo < r[0] - 125 <= hi]  # an interval counts where its middle falls
    if not sel:
        return 0.0, 0, 0, 0.0
    secs = len(sel) * 0.25
    return sum(r[1] for r in sel) / secs, sum(r[2] for r in sel), sum(r[3] for r in sel), secs
warm = t_load + 2000  # the first 2 s of the load are its ramp-up
before = window(warm, t_add)
during = window(t_add, t_idle)
after = window(t_idle, 1 << 62)
wall = (t_idle - t_add) / 1000.0
print()
print("Adding n4 to 3 nodes holding %d keys (N=%s, W=%s):" % (nkeys, n, w))
print("  keys moved   %d, predicted by ring::diff %d: ratio %.4f" % (moved_keys, ideal_keys, moved_keys / ideal_keys if ideal_keys else float('nan')))
print("  bytes moved  %d, predicted %d: ratio %.4f" % (moved_bytes, ideal_bytes, moved_bytes / ideal_bytes if ideal_bytes else float('nan')))
print("  move wall time %.1f s (RING ADDSERVER to migration_state:idle on every node), %.1f MB/s, %.0f keys/s"
      % (wall, moved_bytes / wall / 1e6, moved_keys / wall))
print("  client ops/s before %.0f (%.1f s), during %.0f (%.1f s), after %.0f (%.1f s)"
      % (before[0], before[3], during[0], during[3], after[0], after[3]))
print("  throughput during / before: %.2f" % (during[0] / before[0] if before[0] else float('nan')))
print("  load errors: before %d, during %d, after %d; reads that found no key: %d, %d, %d"
      % (before[1], during[1], after[1], before[2], during[2], after[2]))
print("  " + summary)
print("  timeline (s since the load started: ops/s per second; | marks ADDSERVER and idle):")
line, sec_ops, cur = [], 0, None
for ts, ops, _, _ in rows:
    s = (ts - 1 - t_load) // 1000
    if cur is None:
        cur = s
    if s != cur:
        line.append("%d:%d" % (cur, sec_ops))
        sec_ops, cur = 0, s
    sec_ops += ops
if cur is not None:
    line.append("%d:%d" % (cur, sec_ops))
marks = {(t_add - t_load) // 1000: "|add", (t_idle - t_load) // 1000: "|idle"}
out = []
for item in line:
    s = int(item.split(":")[0])
    out.append(item + marks.get(s, ""))
for k in range(0, len(out), 10):
    print("    " + " ".join(out[k:k + 10]))
sys.exit(0 if load_rc == 0 else 1)
EOF
