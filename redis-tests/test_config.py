"""The ringkv-server command line and conf/ringkv.conf: the shipped file starts a server
unchanged, lists every directive with its default, and bad files or flags stop start-up with a
clear message and a non-zero exit."""

import os
import socket
import subprocess
import tempfile
import time
import unittest

import harness
import resp

CONF = os.path.join(harness.REPO_ROOT, "conf", "ringkv.conf")


def run_server(*args, timeout=30):
    """Runs ringkv-server expecting it to exit by itself (bad config, --version, --help)."""
    p = subprocess.run([harness.ringkv_server_path()] + list(args), capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def conf_directives(path):
    """{name: [values]} for every active line of a config file (sdssplitargs syntax)."""
    out = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            args = resp.split_args(line)
            out.setdefault(args[0].decode(), []).append([a.decode() for a in args[1:]])
    return out


def config_get_all(server):
    r = server.client(decode_responses=True)
    try:
        return r.config_get("*")
    finally:
        r.close()


class ShippedConfigFile(unittest.TestCase):
    def test_starts_with_the_shipped_file_and_changes_nothing(self):
        # The harness passes --port, --bind and --loglevel after the file, to both servers.
        with harness.Server("ringkv", config_file=CONF) as with_file:
            got = config_get_all(with_file)
        with harness.ringkv() as plain:
            defaults = config_get_all(plain)
        got.pop("port"), defaults.pop("port")
        self.assertEqual(got, defaults)

    def test_every_directive_is_documented_with_its_default(self):
        documented = conf_directives(CONF)
        with harness.ringkv() as plain:
            defaults = config_get_all(plain)
        defaults.update({"port": "6379", "bind": "127.0.0.1", "loglevel": "notice"})
        self.assertEqual(sorted(documented), sorted(defaults),
                         "directives in conf/ringkv.conf vs CONFIG GET *")
        for name, lines in documented.items():
            self.assertEqual(len(lines), 1, f"{name} appears {len(lines)} times")
            value = " ".join(lines[0])
            expected = defaults[name]
            if name == "client-output-buffer-limit":
                expected = expected.replace(" slave ", " replica ")  # CONFIG GET says "slave"
            self.assertEqual(value, expected, f"default of {name}")


class CommandLine(unittest.TestCase):
    def test_version_and_help(self):
        rc, out, err = run_server("--version")
        self.assertEqual(rc, 0)
        self.assertIn("ringkv", out)
        rc, out, err = run_server("--help")
        self.assertEqual(rc, 0)
        self.assertIn("Usage", out + err)

    def test_bad_flag_value_names_directive_and_value(self):
        rc, out, err = run_server("--port", "notaport")
        self.assertNotEqual(rc, 0)
        self.assertIn("port", err)
        self.assertIn("notaport", err)

    def test_unknown_flag(self):
        rc, out, err = run_server("--no-such-directive", "1")
        self.assertNotEqual(rc, 0)
        self.assertIn("no-such-directive", err)

    def test_bad_file_line_names_line_directive_and_value(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# comment\nport 7777\nmaxmemory-policy sometimes\n")
            path = f.name
        try:
            rc, out, err = run_server(path)
        finally:
            os.unlink(path)
        self.assertNotEqual(rc, 0)
        self.assertIn(":3", err)  # the line number
        self.assertIn("maxmemory-policy", err)
        self.assertIn("sometimes", err)

    def test_missing_file(self):
        rc, out, err = run_server("/nonexistent/ringkv.conf")
        self.assertNotEqual(rc, 0)
        self.assertIn("/nonexistent/ringkv.conf", err)

    def test_port_in_use(self):
        # The port is held by a redis-server (which does not share ports via SO_REUSEPORT).
        with harness.redis() as other:
            rc, out, err = run_server("--port", str(other.port), "--bind", "127.0.0.1")
        self.assertNotEqual(rc, 0)
        self.assertIn(str(other.port), out + err)
        self.assertIn("in use", out + err)

    def test_port_held_by_another_ringkv_is_in_use(self):
        # Its loops share their port with SO_REUSEPORT, which a second server of the same user
        # could join: it must refuse, and the first one keep every connection.
        with harness.ringkv() as other:
            other.client().set("owner", "first")
            rc, out, err = run_server("--port", str(other.port), "--bind", "127.0.0.1")
            self.assertNotEqual(rc, 0)
            self.assertIn("Could not create server TCP listening socket 127.0.0.1:%d: bind: "
                          "Address already in use" % other.port, out + err)
            for _ in range(20):  # every new connection reaches the first server
                self.assertEqual(other.client().get("owner"), b"first")

    def test_daemonize_detaches_from_the_caller(self):
        # As with Redis, `--daemonize yes` returns at once and leaves nothing of the caller's
        # standard output open: run() collects output until EOF, so a server still holding the
        # pipe would make it time out. The daemon then serves and stops on SHUTDOWN.
        port = harness.free_port()
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "ringkv.log")
            pidfile = os.path.join(d, "ringkv.pid")
            rc, out, err = run_server("--port", str(port), "--bind", "127.0.0.1",
                                      "--daemonize", "yes", "--logfile", log,
                                      "--pidfile", pidfile, timeout=10)
            self.assertEqual(rc, 0, out + err)
            try:
                deadline = time.monotonic() + 10
                while not harness.ping(port) and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertTrue(harness.ping(port))
            finally:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
                    s.recv(64)
                deadline = time.monotonic() + 10
                while harness.ping(port) and time.monotonic() < deadline:
                    time.sleep(0.05)
            self.assertFalse(harness.ping(port))


if __name__ == "__main__":
    unittest.main()
