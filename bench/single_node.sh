#!/usr/bin/env bash
# One ringkv-server against Debian's redis-server, side by side, in the same run.
#
#   bench/single_node.sh                          # REPS=5 alternating repetitions
#   REPS=3 REQUESTS=100000 bench/single_node.sh
#
# 1. Throughput: redis-benchmark -t set,get, CLIENTS clients, VALUE_SIZE-byte values, random keys
#    out of KEYSPACE, without pipelining and with -P 16, against each server in turn (the order
#    alternates every repetition, so slow phases of a shared machine hit both alike). Prints ops/s
#    per repetition, the medians, and the median of the per-repetition ratios ringkv / Redis
#    (target >= 1.0 on every row, io-threads 1).
# 2. Memory: fresh servers of each kind; MEM_KEYS keys of 14 bytes with 32-byte values loaded with
#    redis-cli --pipe; bytes per key as the growth of RSS over the empty server and as the growth of
#    INFO used_memory (target for RSS: <= 90; Redis 7.0: about 132).
#
# Environment: REPS (5), REQUESTS (200000 per run without pipelining; 5x that with -P 16), CLIENTS
# (50), VALUE_SIZE (64), KEYSPACE (1000000), MEM_KEYS (1000000), IO_THREADS (1), BUILD_DIR (build,
# Release) or RINGKV_SERVER (a binary to use). Everything started is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
REPS="${REPS:-5}"
REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
VALUE_SIZE="${VALUE_SIZE:-64}"
KEYSPACE="${KEYSPACE:-1000000}"
MEM_KEYS="${MEM_KEYS:-1000000}"
IO_THREADS="${IO_THREADS:-1}"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools redis-server redis-cli redis-benchmark
ringkv_server_binary
bench_workdir single-node

# start <kind> <name>: starts a server of that kind (ringkv or redis); sets PORT_<name>, PID_<name>.
start() {
  local kind="$1" name="$2" port
  port="$(free_port)"
  if [ "$kind" = ringkv ]; then
    "$SERVER" --port "$port" --bind 127.0.0.1 --io-threads "$IO_THREADS" --loglevel warning \
      --logfile "$WORK/$name.log" &
  else
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --logfile "$WORK/$name.log" &
  fi
  local pid=$!
  track_pid "$pid"
  wait_ping "$port"
  printf -v "PORT_$name" '%s' "$port"
  printf -v "PID_$name" '%s' "$pid"
}

stop() {
  local port_var="PORT_$1" pid_var="PID_$1"
  redis-cli -p "${!port_var}" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "${!pid_var}" 2>/dev/null || true
}

rss_bytes() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }
used_memory() { redis-cli -p "$1" INFO memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}'; }

# ---------------------------------------------------------------- throughput
start ringkv ringkv
start redis redis
echo "ringkv-server ($("$SERVER" --version | head -n 1)) on $PORT_ringkv, io-threads $IO_THREADS"
echo "redis-server ($(redis-server --version | awk '{print $3}')) on $PORT_redis"
RESULTS="$WORK/results.txt"
: >"$RESULTS"
SETUPS=(ringkv redis)
run_alternating "$RESULTS" "${SETUPS[@]}"
stop ringkv
stop redis

report_pair "$RESULTS" ringkv redis "ratio"

# ---------------------------------------------------------------- memory per key
# 14-byte keys ("k:" and 12 digits) with 32-byte values, as RESP for redis-cli --pipe.
"$PY" - "$MEM_KEYS" >"$WORK/load.resp" <<'EOF'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
for i in range(n):
    k = b"k:%012d" % i
    v = (b"v%031d" % i)
    out.write(b"*3\r\n$3\r\nSET\r\n$14\r\n%s\r\n$32\r\n%s\r\n" % (k, v))
EOF
echo
echo "memory: $MEM_KEYS keys of 14 bytes with 32-byte values, loaded with redis-cli --pipe"
printf '%-8s %14s %14s %12s %12s\n' server "RSS growth" "used growth" "RSS B/key" "used B/key"
for kind in ringkv redis; do
  start "$kind" "mem_$kind"
  port_var="PORT_mem_$kind"
  pid_var="PID_mem_$kind"
  rss0="$(rss_bytes "${!pid_var}")"
  used0="$(used_memory "${!port_var}")"
  redis-cli -p "${!port_var}" --pipe <"$WORK/load.resp" >/dev/null
  keys="$(redis-cli -p "${!port_var}" DBSIZE)"
  [ "$keys" = "$MEM_KEYS" ] || { echo "$kind holds $keys keys, not $MEM_KEYS" >&2; exit 1; }
  rss1="$(rss_bytes "${!pid_var}")"
  used1="$(used_memory "${!port_var}")"
  awk -v k="$kind" -v r0="$rss0" -v r1="$rss1" -v u0="$used0" -v u1="$used1" -v n="$MEM_KEYS" \
    'BEGIN { printf "%-8s %14d %14d %12.1f %12.1f\n", k, r1 - r0, u1 - u0, (r1 - r0) / n, (u1 - u0) / n }'
  stop "mem_$kind"
done
