# Shared by the benchmark scripts in bench/ (sourced, not run). Provides:
#   require_tools <tool...> fails with a clear message unless every tool is on PATH
#   ringkv_server_binary   sets SERVER: $RINGKV_SERVER, or a Release build of ringkv-server
#   bench_workdir <name>   creates WORK (a temporary directory) and stops everything on exit
#   track_pid <pid>        a process cleanup stops (SIGTERM, then SIGKILL after 5 s)
#   free_port              a free loopback TCP port
#   wait_ping <port>       waits (at most 10 s) until the port answers PING
#   join_ring <port...>    RING ADDSERVER n2, n3, ... (the nodes on the 2nd, 3rd, ... port) through
#                          the first port's node, each once the previous move is done (60 s at most)
#   run_alternating <results> <setup...>
#                          redis-benchmark -t set,get against each setup's PORT_<setup>, REPS
#                          repetitions, without pipelining and with -P 16 (5x REQUESTS), the
#                          setups' order rotating every repetition; appends
#                          "<setup> <SET|GET> <pipeline> <rep> <ops/s>" lines to <results>;
#                          BENCH_EXTRA (an array, if set) adds arguments to every run (--tls ...)
#   report_pair <results> <a> <b> <label>
#                          prints run_alternating's results of setups a and b: ops/s per
#                          repetition, medians, and the median of the per-repetition ratios a / b
# Callers set ROOT (the repository root) and PY (/usr/bin/python3) before sourcing.

PIDS=()

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "$(basename "$0"): $tool is missing (scripts/install-deps.sh installs it)" >&2
      exit 1
    }
  done
}

ringkv_server_binary() {
  if [ -n "${RINGKV_SERVER:-}" ]; then
    SERVER="$RINGKV_SERVER"
  else
    BUILD_DIR="${BUILD_DIR:-build}"
    "$ROOT/scripts/build.sh" --type Release --dir "$BUILD_DIR" --target ringkv-server >/dev/null
    SERVER="$ROOT/$BUILD_DIR/ringkv-server"
  fi
}

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

bench_workdir() {
  WORK="$(mktemp -d "/tmp/ringkv-$1-XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

track_pid() { PIDS+=("$1"); }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ping() {
  local port="$1"
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): nothing answers PING on port $port" >&2
  exit 1
}

join_ring() {
  local ports=("$@") i reply
  for ((i = 2; i <= ${#ports[@]}; i++)); do
    reply="$(redis-cli -p "${ports[0]}" RING ADDSERVER "n$i" "127.0.0.1:${ports[$((i - 1))]}")"
    [ "$reply" = "OK" ] || { echo "RING ADDSERVER n$i: $reply" >&2; exit 1; }
    for _ in $(seq 600); do
      redis-cli -p "${ports[0]}" RING INFO | grep -q 'migration_state:idle' && break
      sleep 0.1
    done
  done
}

run_alternating() {
  local results="$1"
  shift
  local setups=("$@") count=$# rep pipe n k setup port_var out t ops
  echo "redis-benchmark -c $CLIENTS -d $VALUE_SIZE -r $KEYSPACE -t set,get, $REQUESTS requests" \
    "(x5 with -P 16), $REPS repetitions, setups alternating"
  for rep in $(seq 1 "$REPS"); do
    for pipe in 1 16; do
      n="$REQUESTS"
      [ "$pipe" = 1 ] || n=$((REQUESTS * 5))
      # Rotate the order each repetition, so no setup always runs first or last.
      for k in $(seq 0 $((count - 1))); do
        setup="${setups[$(((k + rep) % count))]}"
        port_var="PORT_$setup"
        out="$(redis-benchmark -p "${!port_var}" -c "$CLIENTS" -d "$VALUE_SIZE" -r "$KEYSPACE" \
          -n "$n" -P "$pipe" -t set,get -q ${BENCH_EXTRA+"${BENCH_EXTRA[@]}"} 2>/dev/null |
          tr '\r' '\n')"
        for t in SET GET; do
          ops="$(grep "^$t: " <<<"$out" | tail -n 1 | awk '{print $2}')"
          [ -n "$ops" ] || { echo "no $t result from $setup: $out" >&2; exit 1; }
          echo "$setup $t $pipe $rep $ops" >>"$results"
        done
      done
    done
    echo "repetition $rep/$REPS done"
  done
}

report_pair() {
  "$PY" - "$@" <<'EOF'
import statistics, sys
results, a, b, label = sys.argv[1:5]
rows = {}
for line in open(results):
    setup, test, pipe, rep, ops = line.split()
    rows.setdefault((setup, test, int(pipe)), {})[int(rep)] = float(ops)
print()
print("%-8s %-4s %-3s %12s   %s" % ("server", "test", "-P", "median ops/s", "per repetition"))
for test in ("SET", "GET"):
    for pipe in (1, 16):
        for setup in (a, b):
            v = rows[(setup, test, pipe)]
            print("%-8s %-4s %-3d %12.0f   %s" % (setup, test, pipe, statistics.median(v.values()),
                                               " ".join("%.0f" % v[r] for r in sorted(v))))
print()
print("%-20s %-4s %-3s %8s   %s" % (label, "test", "-P", "median", "per repetition"))
for test in ("SET", "GET"):
    for pipe in (1, 16):
        x, y = rows[(a, test, pipe)], rows[(b, test, pipe)]
        ratios = [x[r] / y[r] for r in sorted(x) if r in y]
        print("%-20s %-4s %-3d %8.2f   %s" % ("%s / %s" % (a, b), test, pipe,
                                            statistics.median(ratios),
                                            " ".join("%.2f" % v for v in ratios)))
EOF
}
