"""redis-benchmark smoke runs against ringkv-server: every request answered, no errors."""

import re
import subprocess
import unittest

import harness


def benchmark(server, *args):
    p = subprocess.run([harness.redis_benchmark_path(), "-h", "127.0.0.1", "-p", str(server.port)]
                       + list(args), capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Benchmark(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ringkv()
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.assertTrue(self.server.alive(), "ringkv-server exited:\n" + self.server.log_text())

    def check(self, out, err, tests):
        # redis-benchmark prints "WARNING: Could not fetch server CONFIG" when CONFIG GET fails,
        # and error replies as "Error from server: ..." (or exits).
        self.assertNotIn("WARNING", out + err)
        self.assertNotIn("rror", out + err)
        lines = [line.strip() for line in re.split(r"[\r\n]", out)]  # progress lines end in \r
        for t in tests:
            m = next(filter(None, (re.match(rf"{re.escape(t)}: ([0-9.]+) requests per second", l)
                                   for l in lines)), None)
            self.assertIsNotNone(m, f"no result line for {t}:\n{out}\n{err}")
            self.assertGreater(float(m.group(1)), 0)

    def test_set_get_incr_mset(self):
        rc, out, err = benchmark(self.server, "-t", "set,get,incr,mset", "-n", "20000", "-q")
        self.assertEqual(rc, 0, err)
        self.check(out, err, ["SET", "GET", "INCR", "MSET (10 keys)"])
        r = self.server.client()
        try:
            self.assertEqual(int(r.get("counter:__rand_int__")), 20000)  # every INCR applied
        finally:
            r.close()

    def test_pipelined_random_keys(self):
        rc, out, err = benchmark(self.server, "-t", "set,get", "-n", "20000", "-P", "16", "-r",
                                 "10000", "-c", "20", "-q")
        self.assertEqual(rc, 0, err)
        self.check(out, err, ["SET", "GET"])

    def test_ping_inline_and_multibulk(self):
        rc, out, err = benchmark(self.server, "-t", "ping", "-n", "10000", "-q")
        self.assertEqual(rc, 0, err)
        self.check(out, err, ["PING_INLINE", "PING_MBULK"])


if __name__ == "__main__":
    unittest.main()
