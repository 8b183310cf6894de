#!/usr/bin/env bash
# redis-benchmark through one node of a 3-node ringkv cluster against nutcracker (twemproxy,
# ketama) in front of 3 redis-servers, in the same run, with the same workload as the
# single-node benchmark: SET and GET, 50 clients, 64-byte values, random keys out of 1,000,000,
# without pipelining and with -P 16.
#
#   bench/cluster_vs_twemproxy.sh                  # REPS=5 alternating repetitions
#   REPS=3 REQUESTS=100000 bench/cluster_vs_twemproxy.sh
#
# Three setups run side by side, each on free loopback ports:
#   ringkv-n1   3 ringkv nodes, --replicas 1 (every key on one server; a node forwards what it
#               does not own)
#   ringkv-n3   3 ringkv nodes, --replicas 3 --write-quorum 2 (the defaults)
#   twemproxy   nutcracker (distribution ketama, hash fnv1a_64) and 3 redis-servers
# Every repetition runs every (setup, test, pipeline) once, setups alternating, so slow phases of
# a shared machine hit all of them alike. The table gives each row's ops/s per repetition and the
# median; the ratio rows divide ringkv by twemproxy repetition by repetition and give the
# median of those ratios (target for ringkv-n1: >= 1.3).
#
# Environment: REPS (5), REQUESTS (200000 per run without pipelining; 5x that with -P 16),
# CLIENTS (50), VALUE_SIZE (64), KEYSPACE (1000000), BUILD_DIR (build; Release),
# RINGKV_SERVER (a ringkv-server binary to use instead of building one),
# IO_THREADS (ringkv io-threads per node, default 1), HOT_KEY_CACHE_MS (adds a fourth setup,
# ringkv-n1 with that --hot-key-cache-ms; with KEYSPACE=100 it shows the hot-key case).
# Everything started is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPS="${REPS:-5}"
REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
VALUE_SIZE="${VALUE_SIZE:-64}"
KEYSPACE="${KEYSPACE:-1000000}"
IO_THREADS="${IO_THREADS:-1}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools redis-server redis-cli redis-benchmark nutcracker
ringkv_server_binary
bench_workdir cluster-bench

# start_ringkv <name> <flags...>: 3 nodes, joined; sets PORT_<name> to the first node's port.
start_ringkv() {
  local name="$1"
  shift
  local ports=() i
  for i in 1 2 3; do
    local port disc=local
    port="$(free_port)"
    [ "$i" = 1 ] || disc="ringkv://127.0.0.1:${ports[0]}"
    "$SERVER" --port "$port" --bind 127.0.0.1 --node-id "n$i" --discovery "$disc" \
      --io-threads "$IO_THREADS" --loglevel warning --logfile "$WORK/$name-n$i.log" "$@" &
    PIDS+=($!)
    wait_ping "$port"
    ports+=("$port")
  done
  join_ring "${ports[@]}"
  printf -v "PORT_$name" '%s' "${ports[0]}"
  echo "$name: ringkv nodes on ${ports[*]} ($*); benchmark through ${ports[0]}"
}

start_twemproxy() {
  local ports=() i port
  for i in 1 2 3; do
    port="$(free_port)"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --logfile "$WORK/redis-$i.log" &
    PIDS+=($!)
    wait_ping "$port"
    ports+=("$port")
  done
  local proxy
  proxy="$(free_port)"
  cat >"$WORK/nutcracker.yml" <<EOF
ringkv_bench:
  listen: 127.0.0.1:$proxy
  hash: fnv1a_64
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  server_connections: 1
  servers:
   - 127.0.0.1:${ports[0]}:1 r1
   - 127.0.0.1:${ports[1]}:1 r2
   - 127.0.0.1:${ports[2]}:1 r3
EOF
  nutcracker -c "$WORK/nutcracker.yml" -o "$WORK/nutcracker.log" -s "$(free_port)" &
  PIDS+=($!)
  wait_ping "$proxy"
  PORT_twemproxy="$proxy"
  echo "twemproxy: nutcracker on $proxy (ketama) in front of redis-servers on ${ports[*]}"
}

start_ringkv ringkv_n1 --replicas 1
start_ringkv ringkv_n3 --replicas 3 --write-quorum 2
start_twemproxy
SETUPS=(ringkv_n1 ringkv_n3 twemproxy)
if [ -n "${HOT_KEY_CACHE_MS:-}" ]; then
  start_ringkv ringkv_n1c --replicas 1 --hot-key-cache-ms "$HOT_KEY_CACHE_MS"
  SETUPS+=(ringkv_n1c)
fi

RESULTS="$WORK/results.txt"  # setup test pipeline rep ops_per_sec
: >"$RESULTS"
echo
run_alternating "$RESULTS" "${SETUPS[@]}"

"$PY" - "$RESULTS" "$REPS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    setup, test, pipe, rep, ops = line.split()
    rows.setdefault((setup, test, int(pipe)), {})[int(rep)] = float(ops)
reps = int(sys.argv[2])
names = {"ringkv_n1": "ringkv N=1", "ringkv_n3": "ringkv N=3 W=2", "twemproxy": "twemproxy",
         "ringkv_n1c": "ringkv N=1 cache"}
setups = [s for s in names if any(k[0] == s for k in rows)]
print()
print("%-16s %-4s %-3s %12s   %s" % ("setup", "test", "-P", "median ops/s", "per repetition"))
for test in ("SET", "GET"):
    for pipe in (1, 16):
        for setup in setups:
            v = rows[(setup, test, pipe)]
            print("%-16s %-4s %-3d %12.0f   %s" % (names[setup], test, pipe, statistics.median(v.values()),
                                                   " ".join("%.0f" % v[r] for r in sorted(v))))
print()
print("%-28s %-4s %-3s %12s   %s" % ("ratio", "test", "-P", "median", "per repetition"))
for setup in [s for s in setups if s != "twemproxy"]:
    for test in ("SET", "GET"):
        for pipe in (1, 16):
            a, b = rows[(setup, test, pipe)], rows[("twemproxy", test, pipe)]
            ratios = [a[r] / b[r] for r in sorted(a) if r in b]
            print("%-28s %-4s %-3d %12.2f   %s" % (names[setup] + " / twemproxy", test, pipe,
                                                   statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
EOF
