"""TLS with real clients: redis-py (ssl=True), redis-cli --tls and redis-benchmark --tls against
ringkv-server's tls-port, each compared with Debian's redis-server given the same certificates
and flags. The certificates are made for the run with the openssl tool."""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness

TIMEOUT_S = 120


def make_pki(d):
    """A CA, a server certificate (for 127.0.0.1) and a client certificate, both signed by it."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                       timeout=TIMEOUT_S, cwd=d)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "2", "-subj", "/CN=test CA", "-keyout", "ca-key.pem", "-out", "ca.pem")
    for name in ("server", "client"):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=" + name, "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", name + "-key.pem", "-out", name + ".csr")
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-copy_extensions", "copy", "-days", "2", "-out", name + ".pem")


class TlsBothServers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="ringkv-tls-")
        make_pki(cls.pki)
        cls.servers = {}
        try:
            for kind in ("ringkv", "redis"):
                tls_port = harness.free_port()
                s = harness.Server(kind, ["--tls-port", str(tls_port),
                                          "--tls-cert-file", cls.path("server.pem"),
                                          "--tls-key-file", cls.path("server-key.pem"),
                                          "--tls-ca-cert-file", cls.path("ca.pem")])
                s.start()
                s.tls_port = tls_port
                cls.servers[kind] = s
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers.values():
            s.stop()
        shutil.rmtree(cls.pki, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.pki, name)

    def setUp(self):
        for s in self.servers.values():
            s.client().flushall()

    def tls_client(self, kind):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.servers[kind].tls_port, socket_timeout=10,
                           ssl=True, ssl_ca_certs=self.path("ca.pem"),
                           ssl_certfile=self.path("client.pem"),
                           ssl_keyfile=self.path("client-key.pem"))

    def cli(self, kind, *args, cert=True):
        argv = [harness.redis_cli_path(), "-h", "127.0.0.1", "-p",
                str(self.servers[kind].tls_port), "--tls", "--cacert", self.path("ca.pem")]
        if cert:
            argv += ["--cert", self.path("client.pem"), "--key", self.path("client-key.pem")]
        p = subprocess.run(argv + list(args), capture_output=True, timeout=TIMEOUT_S)
        return p.returncode, p.stdout, p.stderr

    def test_redis_py_over_tls_gets_what_redis_gives(self):
        results = {}
        for kind in ("ringkv", "redis"):
            r = self.tls_client(kind)
            out = []
            value = bytes(range(256)) * 4096  # 1 MiB, every byte value
            out.append(r.set(b"bin\x00key", value))
            out.append(r.get(b"bin\x00key") == value)
            pipe = r.pipeline(transaction=False)
            for _ in range(1000):
                pipe.incr("counter")
            out.append(pipe.execute()[-1])
            tx = r.pipeline(transaction=True)
            tx.set("a", "1").incrby("a", 41).get("a")
            out.append(tx.execute())
            out.append(r.mget("a", "counter", "missing"))
            out.append(r.ttl("a"))
            # The plain port holds the same data.
            out.append(self.servers[kind].client().get("counter"))
            r.close()
            results[kind] = out
        self.assertEqual(results["ringkv"][1:3], [True, 1000])
        self.assertEqual(results["ringkv"], results["redis"])

    def test_redis_cli_tls_output_matches_redis(self):
        commands = [["SET", "k", "v"], ["GET", "k"], ["APPEND", "k", "w"], ["INCR", "k"],
                    ["MSET", "x", "1", "y", "2"], ["MGET", "x", "y", "z"], ["DEL", "x", "k"],
                    ["EXPIRE", "y", "100"], ["TTL", "y"], ["NOSUCHCOMMAND"]]
        for c in commands:
            with self.subTest(command=c):
                self.assertEqual(self.cli("ringkv", *c), self.cli("redis", *c))

    def test_a_client_without_certificate_is_refused_as_by_redis(self):
        for kind in ("ringkv", "redis"):
            with self.subTest(server=kind):
                code, out, err = self.cli(kind, "PING", cert=False)
                self.assertNotIn(b"PONG", out)
                self.assertIn(b"Error", out + err)
                # And the server serves the next client with a certificate.
                self.assertEqual(self.cli(kind, "PING")[1], b"PONG\n")

    def test_redis_benchmark_over_tls_completes(self):
        s = self.servers["ringkv"]
        p = subprocess.run([harness.redis_benchmark_path(), "-h", "127.0.0.1", "-p",
                            str(s.tls_port), "--tls", "--cacert", self.path("ca.pem"),
                            "--cert", self.path("client.pem"), "--key", self.path("client-key.pem"),
                            "-t", "set,get", "-n", "20000", "-c", "20", "-P", "8", "-q"],
                           capture_output=True, timeout=TIMEOUT_S)
        out = p.stdout.decode().replace("\r", "\n")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        for test in ("SET", "GET"):
            lines = [l for l in out.splitlines() if l.startswith(test + ": ") and "per second" in l]
            self.assertTrue(lines, out)
            self.assertGreater(float(lines[-1].split()[1]), 0)
        self.assertEqual(s.client().dbsize(), 1)  # redis-benchmark's key:__rand_int__


if __name__ == "__main__":
    unittest.main()
