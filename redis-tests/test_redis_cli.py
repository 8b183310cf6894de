"""redis-cli (Debian's redis-tools 7.0) against ringkv-server, its output compared with the
output of the same redis-cli against Debian's redis-server where the two must agree: one-shot
commands, commands read from stdin, RESP3 mode, --pipe mass insertion, --scan, --bigkeys,
--latency."""

import subprocess
import unittest

import harness

CLI_TIMEOUT_S = 120


def cli(server, *args, input=None):
    """Runs redis-cli against `server`; returns (returncode, stdout bytes, stderr bytes)."""
    p = subprocess.run(server.cli_args() + list(args), input=input, capture_output=True,
                       timeout=CLI_TIMEOUT_S)
    return p.returncode, p.stdout, p.stderr


def resp_set(key, value):
    k, v = key.encode(), value.encode()
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)


class BothServers(unittest.TestCase):
    """A ringkv-server and a reference redis-server for the class, both flushed per test."""

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

    @classmethod
    def tearDownClass(cls):
        cls.ringkv.stop()
        cls.redis.stop()

    def setUp(self):
        for s in (self.ringkv, self.redis):
            self.assertEqual(cli(s, "FLUSHALL")[1], b"OK\n")

    def tearDown(self):
        self.assertTrue(self.ringkv.alive(), "ringkv-server exited:\n" + self.ringkv.log_text())

    def assertSameOutput(self, *args, input=None):
        expected = cli(self.redis, *args, input=input)
        got = cli(self.ringkv, *args, input=input)
        self.assertEqual(got, expected, f"redis-cli {' '.join(args)} (input {input!r})")
        return got


class OneShot(BothServers):
    SCRIPT = [
        ["PING"], ["SET", "k", "v"], ["GET", "k"], ["GET", "missing"], ["INCR", "n"],
        ["INCRBYFLOAT", "f", "1.5"], ["MSET", "a", "1", "b", "2"], ["MGET", "a", "missing", "b"],
        ["SET", "k", "v", "EX", "0"], ["GET"], ["FOOBAR", "x"], ["EXISTS", "a", "b", "c"],
        ["TTL", "a"], ["TYPE", "a"], ["TYPE", "missing"], ["ECHO", "multi\nline"],
        ["SET", "bin", "\x01\x02"], ["GET", "bin"], ["DEL", "a", "b"], ["DBSIZE"],
        ["CONFIG", "GET", "maxmemory"], ["SELECT", "0"], ["HELLO", "4"],
    ]

    def test_one_shot_commands_raw_and_formatted(self):
        for cmd in self.SCRIPT:
            self.assertSameOutput(*cmd)  # stdout is a pipe: raw output
        for s in (self.ringkv, self.redis):
            self.assertEqual(cli(s, "FLUSHALL")[1], b"OK\n")
        for cmd in self.SCRIPT:
            self.assertSameOutput("--no-raw", *cmd)

    def test_exit_status_on_error_reply(self):
        # redis-cli exits 0 after an error reply, but prints it; the same for both servers.
        rc, out, _ = self.assertSameOutput("GET")
        self.assertIn(b"wrong number of arguments", out)

    def test_resp3_mode(self):
        self.assertEqual(cli(self.ringkv, "-3", "PING")[0], 0)
        for cmd in (["SET", "k", "v"], ["GET", "k"], ["GET", "missing"], ["MGET", "k", "x"],
                    ["CONFIG", "GET", "maxmemory"], ["INCRBYFLOAT", "f", "2.5"], ["TTL", "k"],
                    ["EXISTS", "k"], ["FOOBAR"]):
            self.assertSameOutput("-3", "--no-raw", *cmd)
            self.assertSameOutput("-3", *cmd)


class Interactive(BothServers):
    def test_commands_from_stdin(self):
        script = (b"SET a 1\nGET a\nINCR a\nGET missing\nMGET a missing\nFOOBAR x\n"
                  b"SET \"key with space\" \"v\\x00v\"\nGET \"key with space\"\nEXPIRE a 100\n"
                  b"PERSIST a\nTTL a\nDEL a\nDBSIZE\nPING\n")
        rc, out, err = self.assertSameOutput(input=script)
        self.assertEqual(rc, 0)
        self.assertEqual(err, b"")
        self.assertIn(b"unknown command 'FOOBAR'", out)
        self.assertSameOutput("--no-raw", input=script.replace(b"DEL a", b"DEL \"key with space\""))

    def test_resp3_session_from_stdin(self):
        script = b"SET a 1\nGET a\nGET missing\nCONFIG GET maxmemory\nINCRBYFLOAT a 0.5\n"
        self.assertSameOutput("-3", "--no-raw", input=script)


class MassInsertion(BothServers):
    N = 100000

    def test_pipe_mass_insertion(self):
        data = b"".join(resp_set(f"key:{i}", f"value:{i}") for i in range(self.N))
        rc, out, err = cli(self.ringkv, "--pipe", input=data)
        self.assertEqual(rc, 0, err)
        self.assertIn(f"errors: 0, replies: {self.N}".encode(), out)
        self.assertEqual(cli(self.ringkv, "DBSIZE")[1], b"%d\n" % self.N)
        self.assertEqual(cli(self.ringkv, "GET", "key:99999")[1], b"value:99999\n")
        self.assertEqual(cli(self.ringkv, "GET", "key:0")[1], b"value:0\n")

        # --scan with a pattern returns exactly the matching keys, each once.
        rc, out, err = cli(self.ringkv, "--scan", "--pattern", "key:1234*")
        self.assertEqual(rc, 0, err)
        lines = out.split()
        expected = {f"key:{i}".encode() for i in range(self.N) if str(i).startswith("1234")}
        self.assertEqual(len(lines), len(set(lines)))
        self.assertEqual(set(lines), expected)

        # --scan without a pattern sees every key.
        rc, out, err = cli(self.ringkv, "--scan")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.split()), self.N)  # each key exactly once
        self.assertEqual(len(set(out.split())), self.N)

    def test_pipe_reports_errors(self):
        data = resp_set("a", "1") + b"*2\r\n$4\r\nINCR\r\n$1\r\na\r\n" + \
            b"*1\r\n$6\r\nFOOBAR\r\n" + resp_set("b", "x") + b"*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n"
        for s in (self.ringkv, self.redis):
            rc, out, err = cli(s, "--pipe", input=data)
            self.assertIn(b"errors: 2, replies: 5", out, s.kind)


class Tools(BothServers):
    def test_bigkeys(self):
        cli(self.ringkv, "MSET", "a", "1", "bb", "22", "ccc", "333")
        rc, out, err = cli(self.ringkv, "--bigkeys")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"Biggest string found '\"ccc\"' has 3 bytes", out)
        self.assertIn(b"3 strings with 6 bytes", out)

    def test_latency(self):
        # With stdout not a terminal, --latency samples for one second and exits.
        rc, out, err = cli(self.ringkv, "--latency")
        self.assertEqual(rc, 0, err)
        fields = out.split()
        self.assertEqual(len(fields), 4, out)  # min max avg samples
        self.assertGreater(int(fields[3]), 0)


if __name__ == "__main__":
    unittest.main()
