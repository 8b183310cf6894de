"""Moving data between Redis and ringkv with Redis's own tools: Redis's MIGRATE into a ringkv
cluster (it sends RESTORE to its target), and ringkv's DUMP restored into Redis. Values of every
RDB string encoding: integers, LZF-compressible text, incompressible binary, empty, large."""

import os
import random
import time
import unittest

import harness


def sample_values(rng):
    """name -> value, covering what Redis's DUMP writes as int8/16/32, raw, LZF."""
    values = {
        "int8": b"-7", "int16": b"3000", "int32": b"-2147483648", "int64": b"9223372036854775807",
        "plus": b"+1", "empty": b"", "nul": b"\x00\xff\r\n\x00",
        "lzf": b"abc" * 1000, "zeros": b"\x00" * 70000, "text": b"hello world " * 50,
        "random": os.urandom(100000),
    }
    for i in range(200):
        n = rng.choice([1, 10, 63, 64, 100, 16383, 16384, 20000])
        kind = rng.randrange(3)
        v = (os.urandom(n) if kind == 0 else bytes([rng.randrange(256)]) * n if kind == 1
             else str(rng.randrange(-10**12, 10**12)).encode())
        values[f"k{i}"] = v
    return values


class Migrate(unittest.TestCase):
    def test_migrate_from_redis_into_a_cluster_through_any_node(self):
        rng = random.Random(5)
        values = sample_values(rng)
        names = sorted(values)
        with harness.Server("redis") as redis_srv, harness.Cluster(3) as cluster:
            src = redis_srv.client()
            for name in names:
                src.set(name, values[name])
            # Some keys carry a TTL (MIGRATE sends the time left).
            for name in names[::7]:
                src.expire(name, 1000)
            # A key already in the cluster: refused without REPLACE (Redis says what the
            # target replied), replaced with it.
            n1 = cluster.nodes[0].client()
            n1.set("int8", b"old")
            with self.assertRaises(Exception) as caught:
                src.execute_command("MIGRATE", "127.0.0.1", cluster.nodes[1].port, "int8", 0,
                                    5000)
            self.assertIn("BUSYKEY", str(caught.exception))
            self.assertEqual(n1.get("int8"), b"old")
            # MIGRATE sends the keys through one node (n2); most are owned by others.
            reply = src.execute_command("MIGRATE", "127.0.0.1", cluster.nodes[1].port, "", 0,
                                        10000, "REPLACE", "KEYS", *names)
            self.assertEqual(reply, b"OK")
            self.assertEqual(src.dbsize(), 0, "MIGRATE without COPY removes the source keys")
            for node in cluster.nodes:
                c = node.client()
                for name in names:
                    self.assertEqual(c.get(name), values[name], f"{name} through {node.port}")
                self.assertEqual(c.dbsize(), len(names))
            # Three replicas on three nodes: every node ends up holding every key (the third
            # copy may still be on its way when MIGRATE returns; bounded wait).
            deadline = time.monotonic() + 20
            held = []
            while time.monotonic() < deadline:
                held = [node.client().info("keyspace").get("db0", {}).get("keys", 0)
                        for node in cluster.nodes]
                if held == [len(names)] * 3:
                    break
                time.sleep(0.05)
            self.assertEqual(held, [len(names)] * 3, "keys held by each node")
            for name in names:
                ttl = n1.ttl(name)
                if name in names[::7]:
                    self.assertTrue(990 <= ttl <= 1000, f"{name}: TTL {ttl}")
                else:
                    self.assertEqual(ttl, -1, name)

    def test_migrate_from_a_redis_cluster_node(self):
        # A Redis with cluster-enabled sends RESTORE-ASKING instead of RESTORE.
        with harness.Server("redis", ["--cluster-enabled", "yes", "--cluster-config-file",
                                      "nodes.conf"]) as redis_srv, \
                harness.Server("ringkv") as ringkv_srv:
            src = redis_srv.client()
            src.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 20
            while src.cluster("info")["cluster_state"] != "ok" and time.monotonic() < deadline:
                time.sleep(0.05)
            src.set("{t}a", b"1" * 100)
            src.set("{t}b", b"-5", ex=500)
            reply = src.execute_command("MIGRATE", "127.0.0.1", ringkv_srv.port, "", 0, 5000,
                                        "KEYS", "{t}a", "{t}b")
            self.assertEqual(reply, b"OK")
            rk = ringkv_srv.client()
            self.assertEqual(rk.get("{t}a"), b"1" * 100)
            self.assertEqual(rk.get("{t}b"), b"-5")
            self.assertTrue(490 <= rk.ttl("{t}b") <= 500)

    def test_dump_from_ringkv_restores_into_redis_and_back(self):
        rng = random.Random(6)
        values = sample_values(rng)
        with harness.Server("redis") as redis_srv, harness.Server("ringkv") as ringkv_srv:
            rk, rd = ringkv_srv.client(), redis_srv.client()
            for name, value in values.items():
                rk.set(name, value)
            for name, value in values.items():
                payload = rk.dump(name)
                self.assertEqual(rd.restore(name, 0, payload), b"OK", name)
                self.assertEqual(rd.get(name), value, name)
                # Redis's payload of the same value (LZF-compressed where it can) restores in
                # ringkv too.
                self.assertEqual(rk.restore(name, 0, rd.dump(name), replace=True), b"OK", name)
                self.assertEqual(rk.get(name), value, name)
            # DUMP of a key with a TTL carries the value only; RESTORE's TTL argument sets it.
            rk.set("t", b"v", px=50000)
            rd.restore("t", 0, rk.dump("t"))
            self.assertEqual(rd.pttl("t"), -1)
            self.assertEqual(rk.restore("t2", 30000, rk.dump("t")), b"OK")
            self.assertTrue(20000 <= rk.pttl("t2") <= 30000, rk.pttl("t2"))


if __name__ == "__main__":
    unittest.main()
