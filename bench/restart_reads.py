#!/usr/bin/python3
"""Read-your-writes through another node while one node of three restarts (or pauses).

A stress run, not a test: it finds rare races at the moment a restarted node turns ready, when
the other nodes make it a primary again one by one. Three nodes (N = 3, W = 2) on free loopback
ports; six client threads each SET a key through n1 or n2 and GET it at once through the other,
and count a GET that does not return the value just acknowledged. Meanwhile n3 is killed
(SIGKILL) and restarted, or stopped (SIGSTOP) until the others mark it down and resumed, ROUNDS
times. --hog adds two busy loops, one per core, which make replication lag behind the clients
(the machine CI runs on is as loaded).

    /usr/bin/python3 bench/restart_reads.py [--server build/ringkv-server] [--rounds 20]
                                            [--mode kill|stop] [--hog]

Prints the pairs checked, the wrong reads (each with its distance from the nearest moment n3
was seen ready) and the commands that failed (TRYAGAIN while n3 is down, before its failure is
detected). Exits 1 when a read was wrong. Every process started is stopped on exit.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import redis


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="build/ringkv-server")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--mode", choices=["kill", "stop"], default="kill")
    ap.add_argument("--hog", action="store_true")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ringkv-restart-reads-")
    ports = [free_port() for _ in range(3)]
    procs = [None] * 3
    hogs = []

    def start(i):
        disc = "local" if i == 0 else f"ringkv://127.0.0.1:{ports[0]}"
        procs[i] = subprocess.Popen(
            [args.server, "--port", str(ports[i]), "--bind", "127.0.0.1", "--node-id", f"n{i + 1}",
             "--discovery", disc, "--loglevel", "notice", "--logfile", f"{work}/n{i + 1}.log"])
        if not wait(lambda: redis.Redis(port=ports[i]).ping(), 10):
            raise SystemExit(f"n{i + 1} did not start")

    def info(i):
        text = redis.Redis(port=ports[i], socket_timeout=2).execute_command("RING", "INFO").decode()
        return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)

    def wait(cond, limit=120):
        end = time.time() + limit
        while time.time() < end:
            try:
                if cond():
                    return True
            except redis.RedisError:
                pass
            time.sleep(0.02)
        return False

    stop = threading.Event()
    stats = {"ok": 0, "wrong": 0, "failed": 0}
    wrongs = []
    lock = threading.Lock()

    def worker(tid):
        via = [redis.Redis(port=ports[0], socket_timeout=10),
               redis.Redis(port=ports[1], socket_timeout=10)]
        n = 0
        while not stop.is_set():
            n += 1
            # 5,000 keys per thread, each write with a new value: the data stays small.
            key, val = f"k{tid}:{n % 5000}", f"v{tid}:{n}"
            a = n % 2
            try:
                via[a].set(key, val)
                got = via[1 - a].get(key)
            except redis.RedisError:
                with lock:
                    stats["failed"] += 1
                continue
            with lock:
                if got is None or got.decode() != val:
                    stats["wrong"] += 1
                    wrongs.append((time.time(), key, got))
                else:
                    stats["ok"] += 1

    ready_at = []
    threads = []
    try:
        for i in range(3):
            start(i)
        for i in (1, 2):
            redis.Redis(port=ports[0]).execute_command("RING", "ADDSERVER", f"n{i + 1}",
                                                       f"127.0.0.1:{ports[i]}")
            if not wait(lambda: all(info(j)["migration_state"] == "idle" for j in range(3))):
                raise SystemExit("the ring did not settle")
        if args.hog:
            hogs = [subprocess.Popen(["bash", "-c", "while :; do :; done"]) for _ in range(2)]
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        both_see = lambda up: lambda: all(info(j)["ring_servers_up"] == up for j in (0, 1))
        for r in range(args.rounds):
            time.sleep(1.0)  # load between rounds
            if args.mode == "kill":
                procs[2].kill()
                procs[2].wait()
                if not wait(both_see("2")):
                    raise SystemExit(f"round {r}: n3's failure was not detected")
                start(2)
            else:
                os.kill(procs[2].pid, signal.SIGSTOP)
                if not wait(both_see("2")):
                    raise SystemExit(f"round {r}: n3's pause was not detected")
                os.kill(procs[2].pid, signal.SIGCONT)
            if not wait(lambda: info(2)["node_state"] == "ready"):
                raise SystemExit(f"round {r}: n3 did not turn ready")
            ready_at.append(time.time())
            if not wait(lambda: all(info(j)["ring_servers_up"] == "3" for j in range(3))):
                raise SystemExit(f"round {r}: n3 was not seen up again")
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for p in hogs + [p for p in procs if p]:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
        for p in hogs + [p for p in procs if p]:
            p.wait()
    print(f"{args.mode}, {args.rounds} rounds{' with --hog' if args.hog else ''}: "
          f"{stats['ok'] + stats['wrong']} SET/GET pairs, {stats['wrong']} wrong reads, "
          f"{stats['failed']} failed commands (logs in {work})")
    for at, key, got in wrongs[:10]:
        near = min((at - e for e in ready_at), key=abs) if ready_at else 0.0
        print(f"  {key}: {got!r}, {near:+.3f} s from n3 seen ready")
    return 1 if stats["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
