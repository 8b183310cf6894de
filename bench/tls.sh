#!/usr/bin/env bash
# TLS: one ringkv-server against Debian's redis-server, both serving redis-benchmark over TLS on
# their tls-port, side by side in the same run (the order alternating every repetition).
#
#   bench/tls.sh                    # REPS=5
#   REPS=3 REQUESTS=100000 bench/tls.sh
#
# A throwaway CA, server and client certificate are made with the openssl tool; both servers
# require the client certificate (tls-auth-clients yes). Prints ops/s per repetition, the
# medians and the median of the per-repetition ratios ringkv / Redis for SET and GET, without
# pipelining and with -P 16.
#
# Environment: REPS (5), REQUESTS (200000 per run without pipelining; 5x that with -P 16), CLIENTS
# (50), VALUE_SIZE (64), KEYSPACE (1000000), BUILD_DIR (build, Release) or RINGKV_SERVER (a binary
# to use). Everything started is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
REPS="${REPS:-5}"
REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
VALUE_SIZE="${VALUE_SIZE:-64}"
KEYSPACE="${KEYSPACE:-1000000}"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools redis-server redis-cli redis-benchmark openssl
ringkv_server_binary
bench_workdir tls

# ---------------------------------------------------------------- certificates
pki() {
  local d="$WORK"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$d/ca-key.pem" -out "$d/ca.pem"
  local name
  for name in server client; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
      -keyout "$d/$name-key.pem" -out "$d/$name.csr"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
      -CAcreateserial -days 2 -out "$d/$name.pem"
  done
}
pki >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; exit 1; }
TLS_FLAGS=(--tls-cert-file "$WORK/server.pem" --tls-key-file "$WORK/server-key.pem"
  --tls-ca-cert-file "$WORK/ca.pem")
BENCH_EXTRA=(--tls --cacert "$WORK/ca.pem" --cert "$WORK/client.pem" --key "$WORK/client-key.pem")

# start <kind>: sets PORT_<kind> to its tls-port.
start() {
  local kind="$1" port tls_port pid
  port="$(free_port)"
  tls_port="$(free_port)"
  if [ "$kind" = ringkv ]; then
    "$SERVER" --port "$port" --tls-port "$tls_port" --bind 127.0.0.1 --loglevel warning \
      --logfile "$WORK/$kind.log" "${TLS_FLAGS[@]}" &
  else
    redis-server --port "$port" --tls-port "$tls_port" --bind 127.0.0.1 --save '' \
      --appendonly no --daemonize no --logfile "$WORK/$kind.log" "${TLS_FLAGS[@]}" &
  fi
  pid=$!
  track_pid "$pid"
  wait_ping "$port"
  printf -v "PORT_$kind" '%s' "$tls_port"
}

start ringkv
start redis
echo "ringkv-server ($("$SERVER" --version | head -n 1)) TLS on $PORT_ringkv"
echo "redis-server ($(redis-server --version | awk '{print $3}')) TLS on $PORT_redis"
RESULTS="$WORK/results.txt"
: >"$RESULTS"
run_alternating "$RESULTS" ringkv redis

report_pair "$RESULTS" ringkv redis "ratio (TLS)"
