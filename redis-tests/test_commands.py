"""COMMAND introspection against the reference redis-server: for every command both servers
have, the name, arity, flags and legacy key positions must be Redis's, since redis-cli, client
libraries and cluster proxies take them from COMMAND. (ACL categories, tips and key specs are not
compared yet: ringkv derives them from the table and they are not exact; see the compat file
server.txt.)"""

import unittest

import harness


class CommandIntrospection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ringkv = harness.ringkv()
        cls.ringkv.start()
        cls.redis = harness.redis()
        try:
            cls.redis.start()
        except Exception:
            cls.ringkv.stop()
            raise
        cls.rk = cls.ringkv.client()
        cls.rr = cls.redis.client()

    @classmethod
    def tearDownClass(cls):
        cls.rk.close()
        cls.rr.close()
        cls.ringkv.stop()
        cls.redis.stop()

    FIELDS = ("name", "arity", "flags", "first key", "last key", "step")

    def compare(self, ours, theirs):
        for i, field in enumerate(self.FIELDS):
            self.assertEqual(ours[i], theirs[i], f"{ours[0].decode()}: {field}")
        ours_subs = {s[0]: s for s in ours[9]}
        theirs_subs = {s[0]: s for s in theirs[9]}
        for name, sub in ours_subs.items():
            if name in theirs_subs:
                self.compare(sub, theirs_subs[name])

    def test_every_shared_command_matches(self):
        names = [n.decode() for n in self.rk.execute_command("COMMAND LIST")]
        # As Redis 7.0: COMMAND LIST names subcommands too ("config|get"), COMMAND COUNT not.
        self.assertEqual(self.rk.execute_command("COMMAND COUNT"),
                         len([n for n in names if "|" not in n]))
        shared = 0
        for name in names:
            theirs = self.rr.execute_command("COMMAND INFO", name)[0]
            if theirs is None:
                continue  # ringkv's own (RING, internal commands)
            ours = self.rk.execute_command("COMMAND INFO", name)[0]
            with self.subTest(command=name):
                self.compare(ours, theirs)
            shared += 1
        self.assertGreaterEqual(shared, 60)

    def test_issue2_commands_exist(self):
        for name in ("ping", "echo", "quit", "hello", "auth", "select", "get", "set", "setnx",
                     "setex", "psetex", "getset", "getdel", "getex", "mget", "mset", "msetnx",
                     "del", "unlink", "exists", "incr", "decr", "incrby", "decrby",
                     "incrbyfloat", "append", "strlen", "expire", "pexpire", "expireat",
                     "pexpireat", "ttl", "pttl", "persist", "type", "keys", "scan", "dbsize",
                     "flushdb", "flushall", "info", "config", "command"):
            with self.subTest(command=name):
                self.assertIsNotNone(self.rk.execute_command("COMMAND INFO", name)[0])

    def test_command_docs_for_redis_cli(self):
        # redis-cli 7 asks COMMAND DOCS at start-up for its hints.
        docs = self.rk.execute_command("COMMAND DOCS", "get", "set")
        self.assertEqual(len(docs), 4)
        self.assertEqual(docs[0], b"get")

    def test_getkeys(self):
        self.assertEqual(self.rk.execute_command("COMMAND GETKEYS", "MSET", "a", "1", "b", "2"),
                         ["a", "b"])  # redis-py decodes this reply
        self.assertEqual(self.rk.execute_command("COMMAND GETKEYS", "GET", "k"), ["k"])


if __name__ == "__main__":
    unittest.main()
