#!/usr/bin/env bash
# Starts, stops and shows a local ringkv cluster of k nodes on 127.0.0.1 (default k=3).
#
#   scripts/cluster.sh start [k] [-- <ringkv-server flags>...]
#   scripts/cluster.sh stop
#   scripts/cluster.sh status [k]
#
# Node i is server "n<i>" on port 7000+i. Node 1 hosts the ring configuration (--discovery local,
# kept in <state dir>/ring.json), the others find it with --discovery ringkv://127.0.0.1:7001,
# and each one joins the ring with RING ADDSERVER. scripts/cluster-etcd.sh is the same with a
# local etcd holding the configuration (every node, the first included, joins by RING ADDSERVER).
#
# start builds ringkv-server when it is missing or older than the sources (Release, into build/),
# starts the nodes that are not running, adds the ones missing from the ring, and waits until
# every node reports migration_state:idle. Running it twice changes nothing; `start 4` on a
# running 3-node cluster adds a 4th node. stop sends SHUTDOWN to every node it started (then
# SIGTERM, then SIGKILL, by pid) and forgets the ring. Logs and pid files are in the state dir,
# .ringkv-cluster/ at the repository root (.ringkv-cluster-etcd/ for the etcd variant).
#
# Environment: BUILD_DIR (default build), RINGKV_SERVER (use this ringkv-server binary, build
# nothing), RINGKV_BASE_PORT (default 7000: node i listens on base+i), RINGKV_ETCD_PORT (etcd's
# client port with --etcd, default 2479; its peer port is the next one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
BASE_PORT="${RINGKV_BASE_PORT:-7000}"
ETCD_PORT="${RINGKV_ETCD_PORT:-2479}"

USE_ETCD=0
if [ "${1:-}" = "--etcd" ]; then  # how scripts/cluster-etcd.sh calls this script
  USE_ETCD=1
  shift
fi
if [ "$USE_ETCD" = 1 ]; then
  STATE="$ROOT/.ringkv-cluster-etcd"
  ME="cluster-etcd.sh"
else
  STATE="$ROOT/.ringkv-cluster"
  ME="cluster.sh"
fi

usage() {
  echo "usage: scripts/$ME start [k] [-- <ringkv-server flags>...] | stop | status [k]" >&2
  exit 2
}

die() {
  echo "$ME: $*" >&2
  exit 1
}

ACTION="${1:-}"
[ -n "$ACTION" ] || usage
shift
K=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  K="$1"
  shift
fi
[[ "$K" =~ ^[1-9][0-9]?$ ]] || die "k must be a number of nodes between 1 and 99, not '$K'"
EXTRA=()
if [ "${1:-}" = "--" ]; then
  shift
  EXTRA=("$@")
elif [ $# -gt 0 ]; then
  usage
fi

node_port() { echo $((BASE_PORT + $1)); }
DISCOVERY_HOST_PORT="$(node_port 1)"

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# cli <port> <args...>: one command, raw reply on stdout; fails when the node does not answer.
cli() {
  local port="$1"
  shift
  timeout 10 redis-cli -p "$port" --raw "$@" 2>/dev/null
}

# The pid in a pid file if that process is still alive (and is what we started), else nothing.
live_pid() {
  local f="$1" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A recycled pid belongs to some other program: leave it alone.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "$2" || return 1
  echo "$pid"
}

node_running() {
  local i="$1"
  live_pid "$STATE/n$i.pid" 'ringkv-server' >/dev/null &&
    [ "$(cli "$(node_port "$i")" PING)" = "PONG" ]
}

# Waits until cond (a command) succeeds, for at most $1 seconds.
wait_for() {
  local limit="$1"
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------- build

server_binary() {
  if [ -n "${RINGKV_SERVER:-}" ]; then
    [ -x "$RINGKV_SERVER" ] || die "RINGKV_SERVER=$RINGKV_SERVER is not an executable"
    SERVER="$RINGKV_SERVER"
    return
  fi
  SERVER="$ROOT/$BUILD_DIR/ringkv-server"
  # Build when the binary is missing or a source is newer than it (ninja then does the rest).
  if [ ! -x "$SERVER" ] || [ -n "$(find "$ROOT/src" "$ROOT/include" "$ROOT/CMakeLists.txt" \
    -newer "$SERVER" -print -quit 2>/dev/null)" ]; then
    "$ROOT/scripts/build.sh" --type Release --dir "$BUILD_DIR" --target ringkv-server
  fi
  [ -x "$SERVER" ] || die "no server binary at $SERVER"
}

# ---------------------------------------------------------------- etcd

etcd_running() {
  live_pid "$STATE/etcd.pid" 'etcd --name ringkv-local' >/dev/null &&
    curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

start_etcd() {
  if etcd_running; then
    echo "etcd: 127.0.0.1:$ETCD_PORT (already running)"
    return
  fi
  local etcd
  etcd="$(command -v etcd)" || die "etcd is not installed (Debian's etcd-server; run scripts/install-deps.sh)"
  local peer=$((ETCD_PORT + 1))
  port_in_use "$ETCD_PORT" && die "port $ETCD_PORT (etcd) is in use by something else"
  port_in_use "$peer" && die "port $peer (etcd's peer port) is in use by something else"
  rm -rf "$STATE/etcd-data"  # a fresh configuration: ringkv's data does not outlive its nodes
  local client="http://127.0.0.1:$ETCD_PORT" peer_url="http://127.0.0.1:$peer"
  # setsid: etcd does not daemonize itself, and must not die with this shell.
  setsid "$etcd" --name ringkv-local --data-dir "$STATE/etcd-data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "ringkv-local=$peer_url" --log-level warn \
    >"$STATE/etcd.log" 2>&1 </dev/null &
  echo $! >"$STATE/etcd.pid"
  wait_for 20 etcd_running || die "etcd did not become healthy on port $ETCD_PORT; see $STATE/etcd.log"
  echo "etcd: 127.0.0.1:$ETCD_PORT (pid $(cat "$STATE/etcd.pid"), data in $STATE/etcd-data)"
}

# ---------------------------------------------------------------- nodes

discovery_of() {
  if [ "$USE_ETCD" = 1 ]; then
    echo "etcd://127.0.0.1:$ETCD_PORT/ringkv"
  elif [ "$1" = 1 ]; then
    echo "local"
  else
    echo "ringkv://127.0.0.1:$DISCOVERY_HOST_PORT"
  fi
}

start_node() {
  local i="$1" port
  port="$(node_port "$i")"
  if node_running "$i"; then
    echo "n$i: 127.0.0.1:$port (already running, pid $(cat "$STATE/n$i.pid"))"
    return
  fi
  port_in_use "$port" && die "port $port (node n$i) is in use by a process this script did not start (the other local cluster script's nodes? scripts/cluster.sh and scripts/cluster-etcd.sh use the same ports)"
  local flags=(--port "$port" --bind 127.0.0.1 --node-id "n$i" --daemonize yes
    --pidfile "$STATE/n$i.pid" --logfile "$STATE/n$i.log" --discovery "$(discovery_of "$i")")
  if [ "$USE_ETCD" = 0 ] && [ "$i" = 1 ]; then
    flags+=(--ring-state-file "$STATE/ring.json")
  fi
  rm -f "$STATE/n$i.pid"
  "$SERVER" "${flags[@]}" "${EXTRA[@]}" || die "n$i did not start; see $STATE/n$i.log"
  if ! wait_for 15 node_running "$i"; then
    tail -n 5 "$STATE/n$i.log" >&2 || true
    die "n$i did not answer PING on port $port within 15 s; see $STATE/n$i.log"
  fi
  echo "n$i: 127.0.0.1:$port (pid $(cat "$STATE/n$i.pid"))"
}

# Is server n<i> in the ring configuration (as seen by node 1)?
in_ring() {
  cli "$(node_port 1)" RING NODES | grep -qx "n$1"
}

node_idle() {
  local info
  info="$(cli "$(node_port "$1")" RING INFO)" || return 1
  grep -q '^migration_state:idle' <<<"$info" || return 1
  grep '^ring_epoch:' <<<"$info" | tr -d '\r' | cut -d: -f2
}

# Every node of 1..k answers, reports migration_state:idle, and all route with the same epoch.
all_idle() {
  local epochs=() e i
  for i in $(seq 1 "$1"); do
    e="$(node_idle "$i")" || return 1
    epochs+=("$e")
  done
  [ "$(printf '%s\n' "${epochs[@]}" | sort -u | wc -l)" = 1 ]
}

add_to_ring() {
  local i="$1" port reply
  port="$(node_port "$i")"
  if in_ring "$i"; then
    return
  fi
  # One change at a time: a change is refused while the previous one still moves data.
  local deadline=$((SECONDS + 120))
  while :; do
    reply="$(cli "$(node_port 1)" RING ADDSERVER "n$i" "127.0.0.1:$port" | tr -d '\r')"
    if [ "$reply" = "OK" ]; then
      echo "n$i: joined the ring (RING ADDSERVER n$i 127.0.0.1:$port)"
      return
    fi
    if [[ "$reply" != *"still moving data"* ]] || [ "$SECONDS" -ge "$deadline" ]; then
      die "RING ADDSERVER n$i 127.0.0.1:$port failed: $reply"
    fi
    sleep 0.2
  done
}

cmd_start() {
  command -v redis-cli >/dev/null || die "redis-cli is not installed (run scripts/install-deps.sh)"
  mkdir -p "$STATE"
  server_binary
  local any=0 i
  for i in $(seq 1 99); do
    if live_pid "$STATE/n$i.pid" 'ringkv-server' >/dev/null; then any=1; fi
  done
  # Nothing of ours is running: a ring left by an unclean stop describes no live data (ringkv
  # keeps data in memory only), so start from a fresh one.
  if [ "$any" = 0 ]; then
    rm -f "$STATE/ring.json"
  fi
  local first=2
  if [ "$USE_ETCD" = 1 ]; then
    start_etcd
    first=1
  fi
  for i in $(seq 1 "$K"); do start_node "$i"; done
  for i in $(seq "$first" "$K"); do add_to_ring "$i"; done
  wait_for 120 all_idle "$K" || die "the nodes did not all reach migration_state:idle within 120 s"
  local epoch
  epoch="$(node_idle 1)"
  cat <<EOF

A ringkv cluster of $K node(s) is running on 127.0.0.1:$(node_port 1)..$(node_port "$K") (ring epoch $epoch,
migration_state:idle). Any node accepts any command; connect with:

    redis-cli -p $(node_port 1)            # or -p $(node_port "$K"), any node works
    redis-cli -p $(node_port 1) RING NODES

Logs and pid files: $STATE/
Stop it with:       scripts/$ME stop
EOF
}

stop_pid() {
  local pid="$1" what="$2" port="${3:-}"
  if [ -n "$port" ]; then
    cli "$port" SHUTDOWN NOSAVE >/dev/null || true
    wait_for 5 eval "! kill -0 $pid 2>/dev/null" && return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait_for 5 eval "! kill -0 $pid 2>/dev/null" && return 0
  echo "$ME: $what (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait_for 5 eval "! kill -0 $pid 2>/dev/null" || true
}

cmd_stop() {
  [ -d "$STATE" ] || {
    echo "$ME: nothing to stop (no $STATE)"
    return
  }
  local f i pid stopped=0
  # The highest node first: node 1 hosts the configuration the others follow.
  for i in $(ls "$STATE" | sed -n 's/^n\([0-9]*\)\.pid$/\1/p' | sort -rn); do
    f="$STATE/n$i.pid"
    if pid="$(live_pid "$f" 'ringkv-server')"; then
      stop_pid "$pid" "n$i" "$(node_port "$i")"
      echo "n$i: stopped (pid $pid)"
      stopped=$((stopped + 1))
    fi
    rm -f "$f"
  done
  if pid="$(live_pid "$STATE/etcd.pid" 'etcd --name ringkv-local')"; then
    stop_pid "$pid" "etcd"
    echo "etcd: stopped (pid $pid)"
  fi
  rm -f "$STATE/etcd.pid" "$STATE/ring.json"
  rm -rf "$STATE/etcd-data"
  echo "$ME: $stopped node(s) stopped; logs stay in $STATE/"
}

cmd_status() {
  local i running=0 port
  if [ "$USE_ETCD" = 1 ]; then
    if etcd_running; then
      echo "etcd: 127.0.0.1:$ETCD_PORT up (pid $(cat "$STATE/etcd.pid"))"
    else
      echo "etcd: down"
    fi
  fi
  for i in $(seq 1 99); do
    port="$(node_port "$i")"
    if [ "$i" -gt "$K" ] && [ ! -e "$STATE/n$i.pid" ]; then continue; fi
    if node_running "$i"; then
      local info
      info="$(cli "$port" RING INFO | tr -d '\r')"
      echo "n$i: 127.0.0.1:$port up (pid $(cat "$STATE/n$i.pid")), $(grep -E '^(ring_epoch|migration_state):' <<<"$info" | tr '\n' ' ')"
      running=$((running + 1))
    else
      echo "n$i: 127.0.0.1:$port down"
    fi
  done
  if [ "$running" -gt 0 ]; then
    for i in $(seq 1 99); do
      if node_running "$i"; then
        echo
        echo "RING INFO (through n$i):"
        cli "$(node_port "$i")" RING INFO | tr -d '\r' | grep -E '^(ring_|migration_)' | sed 's/^/  /'
        break
      fi
    done
    return 0
  fi
  return 3  # nothing running (as LSB's status)
}

case "$ACTION" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h | --help | help) sed -n '2,23p' "$0" ;;
  *) usage ;;
esac
