#!/usr/bin/env bash
# A large value through a node that does not own its key, against one redis-server, in the same
# run: SET then GET of SIZE bytes (256 MB unless set) through a 3-node ringkv cluster with
# --replicas 3 --write-quorum 2 (the defaults), and the same against redis-server directly.
#
#   bench/large_value.sh
#   SIZE=$((100 * 1024 * 1024)) bench/large_value.sh
#
# For each command: the reply (its first 100 bytes), the wall time, and how long the key's owner
# (for redis: the server) kept a PING waiting meanwhile (a client pings it every 10 ms); and which
# nodes marked another down. A node whose event loop is busy longer than down-after (3 s) misses
# heartbeats and is marked down; a forwarded write then fails with TRYAGAIN though it is applied.
#
# Environment: SIZE, BUILD_DIR (build; Release), RINGKV_SERVER (a ringkv-server binary to use
# instead of building one). Everything started is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZE="${SIZE:-268435456}"
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_tools redis-server redis-cli
ringkv_server_binary
bench_workdir large-value

ports=()
for i in 1 2 3; do
  port="$(free_port)"
  disc=local
  [ "$i" = 1 ] || disc="ringkv://127.0.0.1:${ports[0]}"
  "$SERVER" --port "$port" --bind 127.0.0.1 --node-id "n$i" --discovery "$disc" \
    --loglevel warning --logfile "$WORK/n$i.log" &
  track_pid $!
  wait_ping "$port"
  ports+=("$port")
done
join_ring "${ports[@]}"
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --proto-max-bulk-len 1gb --logfile "$WORK/redis.log" &
track_pid $!
wait_ping "$redis_port"

# A key whose primary is not n1, the node the commands go through.
key=""
for i in $(seq 1000); do
  owner="$(redis-cli -p "${ports[0]}" RING OWNERS "big:$i" | head -1)"
  if [ "$owner" != "n1" ]; then
    key="big:$i"
    break
  fi
done
owner_port="${ports[$((${owner#n} - 1))]}"
echo "ringkv: nodes on ${ports[*]}; key $key, owner $owner, commands through n1"
echo "redis-server on $redis_port; $SIZE bytes"
echo

"$PY" - "$SIZE" "$key" "${ports[0]}" "$owner_port" "$redis_port" <<'PYEOF'
import socket, sys, threading, time

size, key = int(sys.argv[1]), sys.argv[2].encode()
entry, owner, redis = (int(p) for p in sys.argv[3:6])

def read_reply(s):
    buf = bytearray()
    while True:
        d = s.recv(1 << 22)
        if not d:
            raise RuntimeError("connection closed")
        buf += d
        end = buf.find(b"\r\n")
        if end < 0:
            continue
        if buf[:1] != b"$" or buf[1:2] == b"-":
            return bytes(buf)
        if len(buf) >= int(buf[1:end]) + end + 4:
            return bytes(buf)

def worst_ping(port, stop, out):
    s = socket.create_connection(("127.0.0.1", port))
    while not stop.is_set():
        t = time.monotonic()
        s.sendall(b"PING\r\n")
        read_reply(s)
        out[0] = max(out[0], time.monotonic() - t)
        time.sleep(0.01)

def run(name, port, watch, request):
    stop, worst = threading.Event(), [0.0]
    pinger = threading.Thread(target=worst_ping, args=(watch, stop, worst))
    pinger.start()
    s = socket.create_connection(("127.0.0.1", port))
    t = time.monotonic()
    s.sendall(request)
    reply = read_reply(s)
    took = time.monotonic() - t
    time.sleep(1)  # the owner's loop may still be busy replicating
    stop.set()
    pinger.join()
    shown = reply[:100] if reply[:1] != b"$" or reply[1:2] == b"-" else b"<%d bytes>" % (len(reply) - reply.find(b"\r\n") - 4)
    print("%-22s %7.2f s   owner's PING waited up to %5.2f s   reply %r" % (name, took, worst[0], shown))

value = b"x" * size
set_req = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, size) + value + b"\r\n"
del value
get_req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
run("ringkv SET via n1", entry, owner, set_req)
run("ringkv GET via n1", entry, owner, get_req)
run("redis-server SET", redis, redis, set_req)
run("redis-server GET", redis, redis, get_req)
PYEOF
echo
marked="$(grep -h ' is down' "$WORK"/n*.log || true)"
echo "nodes marked down: ${marked:-none}"
