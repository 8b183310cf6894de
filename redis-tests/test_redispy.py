"""redis-py (Debian's python3-redis 4.3) against ringkv-server: the calls a cache client makes,
pipelines, binary data, decode_responses, transactions, concurrent clients."""

import threading
import time
import unittest

import redis

import harness


class RingkvTestCase(unittest.TestCase):
    """One ringkv-server for the class, flushed before each test."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = harness.ringkv(cls.server_args)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        if rc != 0:
            raise AssertionError(f"ringkv-server exited with status {rc} at shutdown:\n"
                                 f"{cls.server.final_log}")

    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()

    def tearDown(self):
        self.r.close()
        self.assertTrue(self.server.alive(), "ringkv-server exited:\n" + self.server.log_text())


class BasicOps(RingkvTestCase):
    def test_set_get_delete(self):
        self.assertIsNone(self.r.get("k"))
        self.assertTrue(self.r.set("k", "v"))
        self.assertEqual(self.r.get("k"), b"v")
        self.assertEqual(self.r.exists("k", "k", "nope"), 2)
        self.assertEqual(self.r.type("k"), b"string")
        self.assertEqual(self.r.delete("k", "nope"), 1)
        self.assertIsNone(self.r.get("k"))
        self.assertEqual(self.r.type("k"), b"none")

    def test_set_options(self):
        self.assertTrue(self.r.set("k", "v", nx=True))
        self.assertIsNone(self.r.set("k", "w", nx=True))
        self.assertTrue(self.r.set("k", "w", xx=True))
        self.assertIsNone(self.r.set("missing", "w", xx=True))
        self.assertEqual(self.r.set("k", "x", get=True), b"w")
        self.assertTrue(self.r.set("k", "v", ex=100))
        self.assertIn(self.r.ttl("k"), (99, 100))
        self.assertTrue(self.r.set("k", "v2", keepttl=True))
        self.assertIn(self.r.ttl("k"), (99, 100))
        self.assertTrue(self.r.set("k", "v", px=50000))
        self.assertTrue(45000 < self.r.pttl("k") <= 50000)
        self.assertTrue(self.r.set("k", "v", exat=4000000000))
        self.assertEqual(self.r.execute_command("EXPIRETIME", "k"), 4000000000)
        self.assertTrue(self.r.set("k", "v", pxat=4000000000123))
        self.assertEqual(self.r.execute_command("PEXPIRETIME", "k"), 4000000000123)
        with self.assertRaises(redis.ResponseError) as e:
            self.r.set("k", "v", ex=0)
        self.assertEqual(str(e.exception), "invalid expire time in 'set' command")

    def test_setnx_setex_psetex_getset_getdel_getex(self):
        self.assertTrue(self.r.setnx("a", 1))
        self.assertFalse(self.r.setnx("a", 2))
        self.assertTrue(self.r.setex("b", 100, "x"))
        self.assertIn(self.r.ttl("b"), (99, 100))
        self.assertTrue(self.r.psetex("c", 100000, "y"))
        self.assertTrue(99000 < self.r.pttl("c") <= 100000)
        self.assertEqual(self.r.getset("a", "3"), b"1")
        self.assertEqual(self.r.getdel("a"), b"3")
        self.assertIsNone(self.r.getdel("a"))
        self.assertEqual(self.r.getex("b", persist=True), b"x")
        self.assertEqual(self.r.ttl("b"), -1)
        self.assertEqual(self.r.getex("b", ex=50), b"x")
        self.assertIn(self.r.ttl("b"), (49, 50))

    def test_mset_mget_msetnx(self):
        self.assertTrue(self.r.mset({"a": "1", "b": "2"}))
        self.assertEqual(self.r.mget("a", "b", "c"), [b"1", b"2", None])
        self.assertFalse(self.r.msetnx({"a": "9", "c": "3"}))
        self.assertIsNone(self.r.get("c"))
        self.assertTrue(self.r.msetnx({"c": "3", "d": "4"}))
        self.assertEqual(self.r.mget(["c", "d"]), [b"3", b"4"])

    def test_counters(self):
        self.assertEqual(self.r.incr("n"), 1)
        self.assertEqual(self.r.incrby("n", 10), 11)
        self.assertEqual(self.r.decr("n"), 10)
        self.assertEqual(self.r.decrby("n", 20), -10)
        self.assertEqual(self.r.incrbyfloat("f", 10.5), 10.5)
        self.assertAlmostEqual(self.r.incrbyfloat("f", 0.1), 10.6)
        self.assertEqual(self.r.get("f"), b"10.6")
        self.r.set("big", 2**63 - 1)
        with self.assertRaises(redis.ResponseError) as e:
            self.r.incr("big")
        self.assertEqual(str(e.exception), "increment or decrement would overflow")
        self.r.set("s", "abc")
        with self.assertRaises(redis.ResponseError) as e:
            self.r.incr("s")
        self.assertEqual(str(e.exception), "value is not an integer or out of range")

    def test_append_strlen(self):
        self.assertEqual(self.r.append("k", "abc"), 3)
        self.assertEqual(self.r.append("k", "def"), 6)
        self.assertEqual(self.r.strlen("k"), 6)
        self.assertEqual(self.r.strlen("missing"), 0)

    def test_expire_family(self):
        self.r.set("k", "v")
        self.assertEqual(self.r.ttl("k"), -1)
        self.assertEqual(self.r.ttl("missing"), -2)
        self.assertTrue(self.r.expire("k", 100))
        self.assertIn(self.r.ttl("k"), (99, 100))
        self.assertTrue(self.r.pexpire("k", 200000))
        self.assertTrue(199000 < self.r.pttl("k") <= 200000)
        self.assertTrue(self.r.expireat("k", 4000000000))
        self.assertTrue(self.r.pexpireat("k", 4000000000000))
        self.assertTrue(self.r.persist("k"))
        self.assertFalse(self.r.persist("k"))
        self.assertFalse(self.r.expire("missing", 10))
        self.assertTrue(self.r.expire("k", -1))  # a negative TTL deletes the key
        self.assertEqual(self.r.exists("k"), 0)

    def test_key_expires(self):
        self.r.set("k", "v", px=50)
        deadline = time.monotonic() + 5
        while self.r.exists("k") and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the expiry, with a deadline
        self.assertIsNone(self.r.get("k"))
        self.assertEqual(self.r.dbsize(), 0)

    def test_keys_scan_dbsize_flush(self):
        for i in range(250):
            self.r.set(f"user:{i}", i)
        self.r.set("other", 1)
        self.assertEqual(self.r.dbsize(), 251)
        self.assertEqual(sorted(self.r.keys("user:1?")), sorted(f"user:1{i}".encode()
                                                                for i in range(10)))
        scanned = list(self.r.scan_iter(match="user:*", count=17))
        self.assertEqual(len(scanned), len(set(scanned)))  # each key once
        self.assertEqual(set(scanned), {f"user:{i}".encode() for i in range(250)})
        self.assertIn(self.r.randomkey(), set(scanned) | {b"other"})
        self.assertTrue(self.r.flushdb())
        self.assertEqual(self.r.dbsize(), 0)
        self.assertIsNone(self.r.randomkey())

    def test_connection_commands(self):
        self.assertTrue(self.r.ping())
        self.assertEqual(self.r.echo("hi"), b"hi")
        self.assertTrue(self.r.execute_command("SELECT", 0))
        with self.assertRaises(redis.ResponseError) as e:
            self.r.execute_command("SELECT", 1)
        self.assertEqual(str(e.exception), "DB index is out of range")
        self.assertTrue(self.r.client_setname("worker-1"))
        self.assertEqual(self.r.client_getname(), "worker-1")
        self.assertGreater(self.r.client_id(), 0)
        names = [c["name"] for c in self.r.client_list()]
        self.assertIn("worker-1", names)

    def test_info_and_config(self):
        info = self.r.info()
        for field in ("redis_version", "uptime_in_seconds", "connected_clients", "used_memory",
                      "total_commands_processed"):
            self.assertIn(field, info)
        self.r.set("k", "v")
        self.assertEqual(self.r.info("keyspace")["db0"]["keys"], 1)
        self.assertEqual(self.r.config_get("maxmemory"), {"maxmemory": "0"})
        self.assertTrue(self.r.config_set("maxmemory", "100mb"))
        self.assertEqual(self.r.config_get("maxmemory"), {"maxmemory": "104857600"})
        self.assertTrue(self.r.config_set("maxmemory", "0"))

    def test_unknown_command(self):
        with self.assertRaises(redis.ResponseError) as e:
            self.r.lpush("list", "a")
        self.assertEqual(str(e.exception),
                         "unknown command 'LPUSH', with args beginning with: 'list' 'a' ")
        self.assertTrue(self.r.ping())  # the connection is still usable


class BinaryData(RingkvTestCase):
    def test_every_byte_value(self):
        value = bytes(range(256)) * 4
        key = b"\x00\xffkey\r\n" + bytes(range(32))
        self.assertTrue(self.r.set(key, value))
        self.assertEqual(self.r.get(key), value)
        self.assertEqual(self.r.strlen(key), len(value))
        self.assertEqual(self.r.keys(b"\x00*"), [key])

    def test_empty_key_and_value(self):
        self.assertTrue(self.r.set("", ""))
        self.assertEqual(self.r.get(""), b"")
        self.assertEqual(self.r.exists(""), 1)

    def test_large_values(self):
        for size in (1, 1000, 65536, 1 << 20, 8 << 20):
            value = (b"0123456789abcdef" * (size // 16 + 1))[:size]
            self.r.set("big", value)
            self.assertEqual(self.r.get("big"), value, f"size {size}")
        self.assertEqual(self.r.append("big", b"!"), (8 << 20) + 1)


class DecodeResponses(RingkvTestCase):
    def setUp(self):
        super().setUp()
        self.d = redis.Redis(host="127.0.0.1", port=self.server.port, decode_responses=True,
                             socket_timeout=10)

    def tearDown(self):
        self.d.close()
        super().tearDown()

    def test_strings_come_back_as_str(self):
        self.d.set("greeting", "héllo wörld ✓")
        self.assertEqual(self.d.get("greeting"), "héllo wörld ✓")
        self.assertEqual(self.d.strlen("greeting"), len("héllo wörld ✓".encode()))
        self.d.mset({"a": "1", "b": "2"})
        self.assertEqual(self.d.mget("a", "b", "c"), ["1", "2", None])
        self.assertEqual(sorted(self.d.keys("*")), ["a", "b", "greeting"])
        self.assertEqual(self.d.type("a"), "string")
        self.assertEqual(self.d.incrbyfloat("a", 0.5), 1.5)


class Pipelines(RingkvTestCase):
    def test_pipeline_without_transaction(self):
        pipe = self.r.pipeline(transaction=False)
        for i in range(1000):
            pipe.set(f"k{i}", i)
            pipe.incr("counter")
        pipe.get("k999")
        pipe.mget("k0", "k1", "missing")
        results = pipe.execute()
        self.assertEqual([results[i] for i in range(0, 2000, 2)], [True] * 1000)
        self.assertEqual([results[i] for i in range(1, 2000, 2)], list(range(1, 1001)))
        self.assertEqual(results[2000], b"999")
        self.assertEqual(results[2001], [b"0", b"1", None])
        self.assertEqual(self.r.dbsize(), 1001)

    def test_pipeline_errors_do_not_stop_it(self):
        self.r.set("s", "text")
        pipe = self.r.pipeline(transaction=False)
        pipe.set("a", 1).incr("s").incr("a")
        results = pipe.execute(raise_on_error=False)
        self.assertTrue(results[0])
        self.assertIsInstance(results[1], redis.ResponseError)
        self.assertEqual(results[2], 2)

    def test_pipeline_with_transaction(self):
        pipe = self.r.pipeline(transaction=True)
        pipe.set("a", 1).incr("a").get("a")
        self.assertEqual(pipe.execute(), [True, 2, b"2"])

    def test_watch_optimistic_locking(self):
        self.r.set("balance", 100)

        def withdraw(pipe):
            balance = int(pipe.get("balance"))
            pipe.multi()
            pipe.set("balance", balance - 30)

        self.r.transaction(withdraw, "balance")
        self.assertEqual(self.r.get("balance"), b"70")

        # A write by another client between WATCH and EXEC makes EXEC fail.
        other = self.server.client()
        try:
            with self.r.pipeline() as pipe:
                pipe.watch("balance")
                pipe.multi()
                other.set("balance", 0)
                pipe.set("balance", 1)
                with self.assertRaises(redis.WatchError):
                    pipe.execute()
        finally:
            other.close()
        self.assertEqual(self.r.get("balance"), b"0")


class ConcurrentClients(RingkvTestCase):
    """Exact results from many connections at once, on a server with several io-threads."""

    server_args = ("--io-threads", "2")

    def test_concurrent_incr_is_exact(self):
        threads, per_thread = 8, 500
        errors = []

        def work():
            c = self.server.client()
            try:
                for _ in range(per_thread):
                    c.incr("counter")
                    c.set(f"t{threading.get_ident()}", "x")
            except Exception as e:  # reported below; a thread must not die silently
                errors.append(e)
            finally:
                c.close()

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(int(self.r.get("counter")), threads * per_thread)

    def test_concurrent_pipelines_keep_order(self):
        errors = []

        def work(n):
            c = self.server.client()
            try:
                pipe = c.pipeline(transaction=False)
                for i in range(300):
                    pipe.set(f"w{n}:{i}", f"{n}:{i}")
                    pipe.get(f"w{n}:{i}")
                res = pipe.execute()
                for i in range(300):
                    if res[2 * i + 1] != f"{n}:{i}".encode():
                        errors.append((n, i, res[2 * i + 1]))
                        break
            finally:
                c.close()

        ts = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(self.r.dbsize(), 6 * 300)


if __name__ == "__main__":
    unittest.main()
