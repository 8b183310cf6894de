#!/usr/bin/env bash
# The C++ client's batch path against one-node baselines, on a local 3-node cluster with N=1.
#
#   bench/client_bench.sh
#   KEYS=20000 BUILD_DIR=build-release bench/client_bench.sh
#
# Starts 3 ringkv nodes on free loopback ports (replicas 1: every key has one copy, so the numbers
# measure routing and batching, not replication), joins them with RING ADDSERVER, waits until the
# ring is idle, and runs bench/client_bench (see the header of bench/client_bench.cc for what it
# measures): put_many/get_many of KEYS keys through the ring-aware client, the same batches as
# MGET/MSET through one node, single commands through one node pipelined, and single commands
# through one node one per round trip. Reports ops/s of each. Every server started is stopped on
# exit, whatever happens.
#
# Environment: KEYS (100000), VALUE_SIZE (64), CHUNK (500), ROUNDS (3), NAIVE_KEYS (KEYS),
# IO_THREADS (1 per node), BUILD_DIR (build, Release), or RINGKV_SERVER and CLIENT_BENCH (binaries
# to use instead of building them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NKEYS="${KEYS:-100000}"
VALUE_SIZE="${VALUE_SIZE:-64}"
CHUNK="${CHUNK:-500}"
ROUNDS="${ROUNDS:-3}"
NAIVE_KEYS="${NAIVE_KEYS:-$NKEYS}"
IO_THREADS="${IO_THREADS:-1}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [ -n "${RINGKV_SERVER:-}" ] && [ -n "${CLIENT_BENCH:-}" ]; then
  SERVER="$RINGKV_SERVER"
  BENCH="$CLIENT_BENCH"
else
  BUILD_DIR="${BUILD_DIR:-build}"
  "$ROOT/scripts/build.sh" --type Release --dir "$BUILD_DIR" --target ringkv-server \
    --target client_bench >/dev/null
  SERVER="$ROOT/$BUILD_DIR/ringkv-server"
  BENCH="$ROOT/$BUILD_DIR/bench/client_bench"
fi
for f in "$SERVER" "$BENCH"; do
  [ -x "$f" ] || { echo "client_bench.sh: missing $f" >&2; exit 1; }
done

bench_workdir client-bench
wait_until() {  # wait_until <seconds> <command...>: polls the command until it succeeds
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "client_bench.sh: timed out waiting for: $*" >&2; exit 1; }
    sleep 0.1
  done
}
all_idle() {
  local epochs=() p info
  for p in "${PORTS[@]}"; do
    info="$(redis-cli -p "$p" RING INFO | tr -d '\r')"
    grep -q '^migration_state:idle$' <<<"$info" || return 1
    epochs+=("$(sed -n 's/^ring_epoch://p' <<<"$info")")
  done
  [ "$(printf '%s\n' "${epochs[@]}" | sort -u | wc -l)" = 1 ]
}

PORTS=()
for i in 1 2 3; do
  port="$(free_port)"
  PORTS+=("$port")
  flags=(--port "$port" --bind 127.0.0.1 --node-id "n$i" --replicas 1 --write-quorum 1
         --io-threads "$IO_THREADS" --loglevel warning)
  [ "$i" = 1 ] || flags+=(--discovery "ringkv://127.0.0.1:${PORTS[0]}")
  "$SERVER" "${flags[@]}" >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
  wait_until 10 redis-cli -p "$port" PING
done
for i in 2 3; do
  out="$(redis-cli -p "${PORTS[0]}" RING ADDSERVER "n$i" "127.0.0.1:${PORTS[$((i - 1))]}")"
  [ "$out" = OK ] || { echo "client_bench.sh: RING ADDSERVER n$i: $out" >&2; exit 1; }
  wait_until 60 all_idle
done

echo "cluster: 3 nodes (N=1, io-threads $IO_THREADS) on ports ${PORTS[*]}; machine: $(nproc) cores"
"$BENCH" --seed "127.0.0.1:${PORTS[0]}" --keys "$NKEYS" --value-size "$VALUE_SIZE" \
  --chunk "$CHUNK" --rounds "$ROUNDS" --naive-keys "$NAIVE_KEYS"
