"""Transactions as redis-py uses them, SCAN iteration and bit operations through redis-py, and
the introspection tools of redis-cli against ringkv-server: interactive hints from COMMAND DOCS
(driven through a pseudo-terminal), --scan, --bigkeys, --memkeys, --stat, --latency-history,
MONITOR, plus SLOWLOG, CLIENT, MEMORY, INFO and CONFIG REWRITE through redis-py. Where an
answer must be Redis's, the same calls go to Debian's redis-server and the results are compared."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import tempfile
import termios
import threading
import time
import unittest

import redis

import harness

CLI_TIMEOUT_S = 120


def cli(server, *args, input=None, timeout=CLI_TIMEOUT_S):
    p = subprocess.run(server.cli_args() + list(args), input=input, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Servers(unittest.TestCase):
    """A ringkv-server and a reference redis-server for the class, both flushed per test."""

    @classmethod
    def setUpClass(cls):
        cls.ringkv = harness.ringkv(["--io-threads", "2"])
        cls.ringkv.start()
        cls.redis = harness.redis(["--databases", "1"])
        try:
            cls.redis.start()
        except Exception:
            cls.ringkv.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ringkv.stop()
        cls.redis.stop()

    def setUp(self):
        self.r = self.ringkv.client()
        self.rr = self.redis.client()
        self.r.flushall()
        self.rr.flushall()

    def tearDown(self):
        self.r.close()
        self.rr.close()
        self.assertTrue(self.ringkv.alive(), "ringkv-server exited:\n" + self.ringkv.log_text())

    def both(self, fn):
        """fn(client) on both servers; the results (or exceptions) must be equal."""
        def run(c):
            try:
                return ("ok", fn(c))
            except redis.RedisError as e:
                return (type(e).__name__, str(e))
        got, want = run(self.r), run(self.rr)
        self.assertEqual(got, want)
        return got


# ---------------------------------------------------------------- transactions (redis-py)

class Transactions(Servers):
    def test_pipeline_transaction(self):
        def fn(c):
            with c.pipeline(transaction=True) as p:
                p.set("a", "1").incr("a").incrby("a", 10).get("a").expire("a", 100).ttl("a")
                p.mset({"b": "x", "c": "y"}).mget("a", "b", "c", "missing").delete("b")
                return p.execute()
        got = self.both(fn)
        self.assertEqual(got[1], [True, 2, 12, b"12", True, 100, True, [b"12", b"x", b"y", None],
                                  1])

    def test_runtime_error_inside_exec_does_not_abort(self):
        def fn(c):
            with c.pipeline(transaction=True) as p:
                p.set("s", "text").incr("s").set("after", "1").get("after")
                return [r if not isinstance(r, Exception) else ("error", str(r))
                        for r in p.execute(raise_on_error=False)]
        got = self.both(fn)
        self.assertEqual(got[1][1], ("error", "value is not an integer or out of range"))
        self.assertEqual(self.r.get("after"), b"1")  # no rollback

        def raising(c):
            with c.pipeline(transaction=True) as p:
                p.set("t", "text").incr("t")
                return p.execute()
        self.assertEqual(self.both(raising)[0], "ResponseError")

    def test_queued_error_aborts_the_transaction(self):
        def fn(c):
            with c.pipeline(transaction=True) as p:
                p.set("k", "v")
                p.execute_command("GET")  # wrong arity: refused when queued
                p.set("k2", "v")
                return p.execute()
        got = self.both(fn)
        # redis-py 4.3 reads the -EXECABORT reply to EXEC and then raises the first queued
        # error in its place (annotated with its position), so that is what callers see.
        self.assertEqual(got, ("ResponseError", "Command # 2 (GET) of pipeline caused error: "
                               "wrong number of arguments for 'get' command"))
        self.assertIsNone(self.r.get("k"))
        self.assertIsNone(self.r.get("k2"))

        # Without a pipeline, EXEC's own reply reaches the caller: -EXECABORT maps to
        # ExecAbortError, with Redis's text.
        def by_hand(c):
            self.assertEqual(c.execute_command("MULTI"), b"OK")
            self.assertEqual(c.execute_command("APPEND", "k", "v"), b"QUEUED")  # no callback
            with self.assertRaises(redis.ResponseError):
                c.execute_command("GET")
            return c.execute_command("EXEC")
        for server in (self.ringkv, self.redis):
            c = server.client(single_connection_client=True)
            try:
                with self.assertRaises(redis.exceptions.ExecAbortError, msg=server.kind) as e:
                    by_hand(c)
                self.assertEqual(str(e.exception),
                                 "Transaction discarded because of previous errors.")
                self.assertIsNone(c.get("k"), server.kind)
            finally:
                c.close()

    def test_watch_retry_when_another_client_writes(self):
        for c, other in ((self.r, self.ringkv.client()), (self.rr, self.redis.client())):
            c.set("balance", 100)
            attempts = 0
            with c.pipeline() as p:
                while True:
                    attempts += 1
                    try:
                        p.watch("balance")
                        value = int(p.get("balance"))
                        if attempts == 1:
                            other.incrby("balance", 5)  # a concurrent modifier, in between
                        p.multi()
                        p.set("balance", value - 30)
                        p.execute()
                        break
                    except redis.WatchError:
                        continue
            other.close()
            self.assertEqual(attempts, 2)
            self.assertEqual(int(c.get("balance")), 75)

    def test_transaction_helper_retries(self):
        calls = []
        other = self.ringkv.client()

        def transfer(pipe):
            calls.append(1)
            a = int(pipe.get("from") or 0)
            if len(calls) == 1:
                other.set("from", 1000)  # touch the watched key once
                a = int(pipe.get("from"))  # still watched: EXEC will fail
                other.set("from", 999)
            pipe.multi()
            pipe.decrby("from", 10)
            pipe.incrby("to", 10)

        self.r.set("from", 500)
        result = self.r.transaction(transfer, "from")
        other.close()
        self.assertEqual(len(calls), 2)
        self.assertEqual(result, [989, 10])

    def test_optimistic_locking_with_concurrent_modifiers(self):
        self.r.set("counter", 0)
        threads_n, each, modifier_n = 6, 40, 200
        retries = [0]
        lock = threading.Lock()
        errors = []

        def worker():
            c = self.ringkv.client()
            try:
                for _ in range(each):
                    with c.pipeline() as p:
                        while True:
                            try:
                                p.watch("counter")
                                v = int(p.get("counter"))
                                p.multi()
                                p.set("counter", v + 1)
                                p.execute()
                                break
                            except redis.WatchError:
                                with lock:
                                    retries[0] += 1
            except Exception as e:  # reported on the main thread
                errors.append(e)
            finally:
                c.close()

        def modifier():
            c = self.ringkv.client()
            try:
                for _ in range(modifier_n):
                    c.incrby("counter", 1000)
            finally:
                c.close()

        ts = [threading.Thread(target=worker) for _ in range(threads_n)]
        ts.append(threading.Thread(target=modifier))
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        self.assertEqual(int(self.r.get("counter")), threads_n * each + 1000 * modifier_n)


# ---------------------------------------------------------------- SCAN and bits (redis-py)

class ScanAndBits(Servers):
    def test_scan_iter_sees_every_key(self):
        keys = {f"key:{i}".encode() for i in range(5000)}
        with self.r.pipeline(transaction=False) as p:
            for k in keys:
                p.set(k, "v")
            p.execute()
        self.assertEqual(set(self.r.scan_iter(count=100)), keys)
        self.assertEqual(set(self.r.scan_iter(match="key:12*", count=50)),
                         {k for k in keys if k.startswith(b"key:12")})
        self.assertEqual(len(set(self.r.scan_iter(_type="string", count=1000))), 5000)
        self.assertEqual(set(self.r.scan_iter(_type="hash")), set())

    def test_scan_iter_during_concurrent_writes(self):
        stable = {f"stable:{i}".encode() for i in range(3000)}
        with self.r.pipeline(transaction=False) as p:
            for k in stable:
                p.set(k, "v")
            p.execute()
        stop = threading.Event()

        def churn():
            c = self.ringkv.client()
            i = 0
            while not stop.is_set() and i < 20000:
                c.set(f"churn:{i}", "x")
                if i >= 50:
                    c.delete(f"churn:{i - 50}")
                i += 1
            c.close()

        t = threading.Thread(target=churn)
        t.start()
        try:
            seen = set(self.r.scan_iter(count=50))
        finally:
            stop.set()
            t.join(timeout=60)
        # A key present for the whole scan is returned at least once.
        self.assertEqual(stable - seen, set())

    def test_bit_operations(self):
        def fn(c):
            out = []
            out.append(c.setbit("b", 7, 1))
            out.append(c.setbit("b", 100, 1))
            out.append(c.getbit("b", 7))
            out.append(c.getbit("b", 8))
            out.append(c.bitcount("b"))
            out.append(c.bitcount("b", 0, 0))
            out.append(c.bitpos("b", 1))
            out.append(c.bitpos("b", 0))
            c.set("x", b"\xff\x0f")
            c.set("y", b"\x0f\xff")
            out.append(c.bitop("AND", "and", "x", "y"))
            out.append(c.get("and"))
            out.append(c.bitop("OR", "or", "x", "y"))
            out.append(c.bitop("XOR", "xor", "x", "y"))
            out.append(c.bitop("NOT", "not", "x"))
            out.append(c.mget("or", "xor", "not"))
            bf = c.bitfield("f")
            out.append(bf.set("u8", 0, 200).incrby("u8", 0, 100).get("u4", 0).execute())
            out.append(c.bitfield("f").overflow("SAT").incrby("i8", 8, 200).execute())
            out.append(c.execute_command("BITFIELD_RO", "f", "GET", "u8", "0"))
            return out
        self.both(fn)


# ---------------------------------------------------------------- redis-cli

def pty_redis_cli(server, typed, wait_for, timeout=10.0):
    """Runs interactive redis-cli on a pseudo-terminal (200 columns), types `typed` without
    Enter, and returns what the terminal showed once `wait_for` appeared (or at the deadline).
    redis-cli is always killed."""
    pid, fd = pty.fork()
    if pid == 0:  # child: redis-cli on the terminal
        os.environ["TERM"] = "xterm"
        try:
            os.execv(harness.redis_cli_path(), server.cli_args())
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    shown = b""
    try:
        def read_until(pred, deadline):
            nonlocal shown
            while time.monotonic() < deadline and not pred(shown):
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                shown += data
                if b"\x1b[6n" in data:  # a cursor position query: answer one
                    os.write(fd, b"\x1b[1;1R")
        deadline = time.monotonic() + timeout
        read_until(lambda s: b"> " in s, deadline)  # the prompt: docs are fetched by then
        os.write(fd, typed.encode())
        read_until(lambda s: wait_for.encode() in s, deadline)
        return shown
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


class RedisCli(Servers):
    def test_hints_come_from_command_docs(self):
        # RING is ringkv's own: redis-cli can only know its arguments from COMMAND DOCS.
        hint = "id address [WEIGHT weight]"
        shown = pty_redis_cli(self.ringkv, "ring addserver ", hint)
        self.assertIn(hint.encode(), shown)
        # A Redis command's hint is Redis's, as redis-cli shows it against redis-server.
        set_hint = ("key value [NX|XX] [GET] [EX seconds|PX milliseconds|"
                    "EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]")
        for server in (self.ringkv, self.redis):
            self.assertIn(set_hint.encode(), pty_redis_cli(server, "set ", set_hint),
                          server.kind)
        self.assertIn(b"PATTERN pattern]", pty_redis_cli(self.ringkv, "command list ",
                                                         "PATTERN pattern]"))

    def test_command_docs_parse_with_redis_py(self):
        docs = self.r.execute_command("COMMAND DOCS")
        self.assertGreater(len(docs), 80)
        names = set(docs[0::2]) if isinstance(docs, list) else set(docs)
        for name in (b"get", b"set", b"client", b"config", b"ring", b"slowlog", b"latency"):
            self.assertIn(name, names)
        # redis-py's own COMMAND parsing (used by its cluster client) accepts ringkv's reply.
        commands = self.r.command()
        self.assertIn("get", commands)
        # redis-py names COMMAND's key step "step_count"; the key positions are Redis's.
        self.assertEqual(commands["mset"]["step_count"], 2)
        want = self.rr.command()["mset"]
        for field in ("arity", "first_key_pos", "last_key_pos", "step_count"):
            self.assertEqual(commands["mset"][field], want[field], field)
        self.assertEqual(self.r.command_count(), len(commands))

    def test_scan_bigkeys_memkeys(self):
        for s in (self.r, self.rr):
            s.mset({"a": "1", "bb": "22", "ccc": "x" * 300})
            for i in range(200):
                s.set(f"n:{i}", i)
        # redis-cli 7.0 has no --count: it scans with SCAN's default COUNT (10), so 203 keys
        # take many cursor round trips.
        rc, out, err = cli(self.ringkv, "--scan")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.split()), 203)
        self.assertEqual(len(set(out.split())), 203)
        rc, out, err = cli(self.ringkv, "--scan", "--pattern", "n:1*")
        self.assertEqual(rc, 0, err)
        rc, rout, _ = cli(self.redis, "--scan", "--pattern", "n:1*")
        self.assertEqual(len(out.split()), 111)  # n:1, n:10..n:19, n:100..n:199
        self.assertEqual(sorted(out.split()), sorted(rout.split()))
        rc, out, err = cli(self.ringkv, "--bigkeys")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"Biggest string found '\"ccc\"' has 300 bytes", out)
        self.assertIn(b"203 strings with", out)
        rc, out, err = cli(self.ringkv, "--memkeys")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, b"")
        usage = self.r.memory_usage("ccc")
        self.assertGreater(usage, 300)
        self.assertIn(b"Biggest string found '\"ccc\"' has %d bytes" % usage, out)
        self.assertIn(b"203 strings with", out)
        # The same tool against Redis finds the same biggest key.
        rc, rout, _ = cli(self.redis, "--memkeys")
        self.assertIn(b"Biggest string found '\"ccc\"'", rout)

    def test_stat(self):
        self.r.mset({"a": "1", "b": "2"})
        p = subprocess.Popen(self.ringkv.cli_args() + ["--stat", "-i", "0.1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(lines) < 4:
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    line = p.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
        finally:
            p.kill()
            p.wait()
        self.assertGreaterEqual(len(lines), 4, lines)
        self.assertIn(b"------- data ------", lines[0])
        # keys, mem, clients, blocked, requests, connections
        fields = lines[2].split()
        self.assertEqual(fields[0], b"2")
        self.assertEqual(fields[3], b"0")  # blocked clients

    def test_latency_history(self):
        # stdout is a pipe, not a terminal: redis-cli 7.0 then prints one "min max avg samples"
        # line per PING (the "min: .., max: .., avg: .. (n samples)" text is only redrawn on a
        # terminal) and ends each -i period with " -- <seconds> seconds range" (as against
        # redis-server).
        p = subprocess.Popen(self.ringkv.cli_args() + ["--latency-history", "-i", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out = b""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and b" seconds range\n" not in out:
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    data = os.read(p.stdout.fileno(), 4096)
                    if not data:
                        break
                    out += data
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
        m = re.search(rb"(?s)^(.*?)\n -- (\d+\.\d\d) seconds range\n", out)
        self.assertIsNotNone(m, out[-2000:])
        self.assertGreaterEqual(float(m.group(2)), 1.0)
        rows = m.group(1).split(b"\n")
        self.assertGreater(len(rows), 1, rows)
        for n, row in enumerate(rows, 1):
            fields = re.fullmatch(rb"(\d+) (\d+) (\d+\.\d\d) (\d+)", row)
            self.assertIsNotNone(fields, row)
            lo, hi, avg, samples = (int(fields[1]), int(fields[2]), float(fields[3]),
                                    int(fields[4]))
            self.assertEqual(samples, n)  # one line per answered PING, counted from 1
            self.assertLessEqual(lo, avg)
            self.assertLessEqual(avg, hi)

    def test_monitor(self):
        p = subprocess.Popen(self.ringkv.cli_args() + ["monitor"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        # Read the raw pipe (os.read), not the buffered p.stdout: when two lines arrive in one
        # chunk, readline() keeps the second in Python's buffer, where select() cannot see it.
        out = b""

        def read_lines(n, deadline):
            nonlocal out
            while time.monotonic() < deadline and out.count(b"\n") < n:
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    data = os.read(p.stdout.fileno(), 4096)
                    if not data:
                        break
                    out += data
        try:
            deadline = time.monotonic() + 20
            read_lines(1, deadline)
            self.assertEqual(out, b"OK\n")  # MONITOR is on before its OK is sent
            self.r.set("mon", "v a\x01")
            self.r.get("mon")
            read_lines(3, deadline)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
        lines = out.split(b"\n")
        self.assertEqual(len(lines), 4, out)  # OK, SET, GET and nothing after the last \n
        self.assertRegex(lines[1] + b"\n",
                         rb'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "mon" "v a\\x01"\n$')
        self.assertRegex(lines[2] + b"\n", rb'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "GET" "mon"\n$')
        self.assertEqual(lines[3], b"")


# ---------------------------------------------------------------- introspection via redis-py

class Introspection(Servers):
    # Each command on a fresh data set (s="hello", s2="help", both idle for 1000 s); what it
    # adds to keyspace_hits/misses and whether it counts as an access of s (OBJECT IDLETIME)
    # must be Redis's: its lookupKeyRead counts and accesses, lookupKeyWrite accesses, and TYPE,
    # EXISTS and TTL count without accessing.
    KEY_LOOKUPS = [
        ["GET", "s"], ["GET", "nx"], ["STRLEN", "s"], ["STRLEN", "nx"], ["GETRANGE", "s", "0", "1"],
        ["SUBSTR", "s", "0", "1"], ["MGET", "s", "nx"], ["GETBIT", "s", "1"], ["BITCOUNT", "s"],
        ["BITPOS", "s", "1"], ["BITFIELD_RO", "s", "GET", "u8", "0"], ["LCS", "s", "s2"],
        ["DUMP", "s"], ["DUMP", "nx"], ["GETEX", "s"], ["TYPE", "s"], ["TYPE", "nx"],
        ["EXISTS", "s", "nx"], ["TTL", "s"], ["PTTL", "nx"], ["EXPIRETIME", "s"],
        ["OBJECT", "ENCODING", "s"], ["TOUCH", "s", "nx"], ["GETSET", "s", "v"],
        ["SET", "s", "v", "GET"], ["SET", "s", "v", "NX"], ["SETNX", "s", "v"],
        ["MSETNX", "s", "v"], ["PERSIST", "s"], ["COPY", "s2", "s"], ["RENAMENX", "s2", "s"],
        ["APPEND", "s", "x"], ["SETRANGE", "s", "0", "x"], ["SETBIT", "s", "1", "1"],
        ["BITOP", "AND", "d", "s", "s2"], ["MEMORY", "USAGE", "s"], ["EXPIRE", "s", "100"],
    ]

    def test_keyspace_hits_and_accesses_match_redis_per_command(self):
        for cmd in self.KEY_LOOKUPS:
            seen = []
            for c in (self.r, self.rr):
                c.flushall()
                c.set("s", "hello")
                c.set("s2", "help")
                for k in ("s", "s2"):
                    c.restore(k, 0, c.dump(k), idletime=1000, replace=True)
                before = c.info("stats")
                try:
                    if cmd[0] == "OBJECT":  # redis-py's reply parser needs its own call
                        c.object(cmd[1].lower(), cmd[2])
                    else:
                        c.execute_command(*cmd)
                except redis.ResponseError:
                    pass
                after = c.info("stats")
                idle = c.object("idletime", "s")
                seen.append((after["keyspace_hits"] - before["keyspace_hits"],
                             after["keyspace_misses"] - before["keyspace_misses"],
                             "accessed" if idle is not None and idle < 500 else "idle"))
            self.assertEqual(seen[0], seen[1], f"{' '.join(cmd)}: ringkv, redis")

    def test_slowlog(self):
        for c in (self.r, self.rr):
            c.config_set("slowlog-log-slower-than", 0)
            c.slowlog_reset()
            c.set("k", "v" * 200)
            c.client_setname("tool")
            c.get("k")
            entries = c.slowlog_get(3)
            c.config_set("slowlog-log-slower-than", 10000)
            self.assertEqual(len(entries), 3)
            self.assertEqual(entries[0]["command"], b"GET k")
            self.assertEqual(entries[1]["command"], b"CLIENT SETNAME tool")
            self.assertEqual(entries[2]["command"],
                             b"SET k " + b"v" * 128 + b"... (72 more bytes)")
            self.assertGreaterEqual(c.slowlog_len(), 3)

    def test_client_commands(self):
        c = self.r
        self.assertTrue(c.client_setname("worker"))
        self.assertEqual(c.client_getname(), "worker")
        me = c.client_id()
        info = c.client_info()
        self.assertEqual(info["id"], me)
        self.assertEqual(info["name"], "worker")
        # One connection, no pool: a pooled client would notice the closed socket when it
        # takes the connection from the pool and silently reconnect (as it does with Redis).
        other = self.ringkv.client(single_connection_client=True)
        other.client_setname("victim")
        vid = other.client_id()
        names = {cl["name"] for cl in c.client_list()}
        self.assertEqual(names, {"worker", "victim"})
        # redis-py 4.3 joins the ids with " ".join(), so they must be strings.
        self.assertEqual([cl["name"] for cl in c.client_list(client_id=[str(vid)])], ["victim"])
        self.assertEqual(c.client_kill_filter(_id=vid), 1)
        with self.assertRaises(redis.ConnectionError):
            other.ping()  # the server closed this connection
        other.close()
        deadline = time.monotonic() + 10
        while {cl["name"] for cl in c.client_list()} != {"worker"} and time.monotonic() < deadline:
            time.sleep(0.01)  # polling interval, not synchronisation
        self.assertEqual({cl["name"] for cl in c.client_list()}, {"worker"})
        # CLIENT PAUSE / UNPAUSE through redis-py: a write from another client waits.
        writer = self.ringkv.client()
        self.assertTrue(c.client_pause(60000, all=False))
        done = threading.Event()

        def write():
            writer.set("paused", "1")
            done.set()
        t = threading.Thread(target=write)
        t.start()
        self.assertFalse(done.wait(0.3))
        self.assertIsNone(c.get("paused"))  # reads are not paused
        self.assertTrue(c.client_unpause())
        self.assertTrue(done.wait(10))
        t.join()
        writer.close()
        self.assertEqual(c.get("paused"), b"1")

    def test_memory(self):
        self.r.set("small", "x")
        self.r.set("large", "x" * 5000)
        small, large = self.r.memory_usage("small"), self.r.memory_usage("large")
        self.assertGreater(large - small, 4990)
        self.assertIsNone(self.r.memory_usage("missing"))
        stats = self.r.memory_stats()
        self.assertEqual(stats["keys.count"], 2)
        self.assertIn(b"Hi Sam", self.r.execute_command("MEMORY", "DOCTOR"))

    def test_info_fields_as_redis(self):
        for c in (self.r, self.rr):
            c.config_resetstat()
            c.set("a", 1, ex=100)
            c.get("a")
            c.incr("a")  # redis-py 4.3's incr() is incrby(): it sends INCRBY a 1
            c.execute_command("INCR", "a")
        got, want = self.r.info("everything"), self.rr.info("everything")
        skip = re.compile(r"^(cmdstat_|errorstat_|latency_percentiles_usec_)")
        missing = [k for k in want if k not in got and not skip.match(k)]
        self.assertEqual(missing, [])
        self.assertEqual(got["db0"]["keys"], 1)
        self.assertEqual(got["db0"]["expires"], 1)
        for name in ("cmdstat_incr", "cmdstat_incrby", "cmdstat_get"):
            self.assertEqual(got[name]["calls"], 1, name)
            self.assertEqual(got[name]["calls"], want[name]["calls"], name)
        self.assertEqual(got["role"], "master")
        self.assertEqual(got["loading"], 0)
        self.assertEqual(self.r.info("nosuchsection"), {})
        self.assertEqual(set(self.r.info("server", "clients")), set(self.r.info("server")) |
                         set(self.r.info("clients")))

    def test_time(self):
        secs, usecs = self.r.time()
        self.assertLess(abs(secs - time.time()), 5)
        self.assertLess(usecs, 1000000)


class ConfigRewrite(unittest.TestCase):
    def test_rewrite_keeps_the_file_and_survives_a_restart(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ringkv.conf")
            with open(path, "w") as f:
                f.write("# my settings\nmaxmemory 1mb\n\nhz 10\n")
            server = harness.Server("ringkv", config_file=path)
            server.start()
            try:
                c = server.client()
                self.assertTrue(c.config_set("maxmemory", "2mb"))
                self.assertTrue(c.config_set("slowlog-max-len", "77"))
                # Quotes, backslashes, spaces and control bytes come back as they were set.
                self.assertTrue(c.config_set("tls-key-file-pass", 'se cr"et \\ \'q\' \t\x01'))
                self.assertTrue(c.execute_command("CONFIG REWRITE"))
                c.close()
            finally:
                server.stop()
            with open(path) as f:
                text = f.read()
            self.assertIn("# my settings", text)
            self.assertEqual(text.count("maxmemory "), 1)
            self.assertRegex(text, r"(?m)^slowlog-max-len 77$")
            server = harness.Server("ringkv", config_file=path)
            server.start()
            try:
                c = server.client()
                self.assertEqual(c.config_get("maxmemory"), {"maxmemory": "2097152"})
                self.assertEqual(c.config_get("slowlog-max-len"), {"slowlog-max-len": "77"})
                self.assertEqual(c.config_get("tls-key-file-pass"),
                                 {"tls-key-file-pass": 'se cr"et \\ \'q\' \t\x01'})
                c.close()
            finally:
                server.stop()

    def test_rewrite_without_a_file(self):
        with harness.ringkv() as server:
            c = server.client()
            with self.assertRaises(redis.ResponseError) as e:
                c.execute_command("CONFIG REWRITE")
            self.assertEqual(str(e.exception), "The server is running without a config file")
            c.close()


if __name__ == "__main__":
    unittest.main()
