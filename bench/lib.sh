# Shared by the benchmark scripts in bench/ (sourced, not run). Provides:
#   ringkv_server_binary   sets SERVER: $RINGKV_SERVER, or a Release build of ringkv-server
#   bench_workdir <name>   creates WORK (a temporary directory) and stops everything on exit
#   track_pid <pid>        a process cleanup stops (SIGTERM, then SIGKILL after 5 s)
#   free_port              a free loopback TCP port
#   wait_ping <port>       waits (at most 10 s) until the port answers PING
# Callers set ROOT (the repository root) and PY (/usr/bin/python3) before sourcing.

PIDS=()

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
