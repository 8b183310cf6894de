"""Start ringkv-server and Debian's redis-server on free loopback ports for black-box tests.

Every server started here is stopped: by the context manager, by stop() in a finally block, and,
as a last resort, by an atexit hook that kills whatever is still registered (SIGTERM, then
SIGKILL after a grace period). Readiness is decided by polling PING with a deadline, never by a
fixed sleep.

Paths come from the environment so CI and developers can point at any build:
  RINGKV_SERVER    default <repo>/build/ringkv-server
  REDIS_SERVER     default /usr/bin/redis-server
  REDIS_CLI        default /usr/bin/redis-cli
  REDIS_BENCHMARK  default /usr/bin/redis-benchmark
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ringkv_server_path():
    return os.environ.get("RINGKV_SERVER", os.path.join(REPO_ROOT, "build", "ringkv-server"))


def redis_server_path():
    return os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


def redis_cli_path():
    return os.environ.get("REDIS_CLI", "/usr/bin/redis-cli")


def redis_benchmark_path():
    return os.environ.get("REDIS_BENCHMARK", "/usr/bin/redis-benchmark")


def free_port():
    """A port the kernel considers free right now (bind to 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_live = set()  # servers started and not yet stopped, for the atexit hook


@atexit.register
def _stop_all():
    for server in list(_live):
        server.stop()


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # runs the atexit hook above, which stops every server


# A test run stopped with SIGTERM (a CI timeout) still stops its servers. Only when nobody else
# installed a handler, and only from the main thread (where Python allows it).
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    try:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except ValueError:
        pass


class ServerError(RuntimeError):
    pass


class Server:
    """One server process on 127.0.0.1:<free port>.

    kind: "ringkv" or "redis". extra_args: more "--name value" flags. config_file: a config file
    path, passed first (as both servers want it), before the harness's own flags.
    Use as a context manager, or call start() and stop() (in a finally block).
    """

    START_DEADLINE_S = 10.0
    STOP_GRACE_S = 5.0

    def __init__(self, kind="ringkv", extra_args=(), binary=None, config_file=None):
        if kind not in ("ringkv", "redis"):
            raise ValueError("kind must be 'ringkv' or 'redis'")
        self.kind = kind
        self.binary = os.path.abspath(
            binary or (ringkv_server_path() if kind == "ringkv" else redis_server_path()))
        self.extra_args = list(extra_args)
        self.config_file = os.path.abspath(config_file) if config_file else None
        self.port = None
        self.proc = None
        self.returncode = None
        self.final_log = ""
        self._dir = None
        self._log = None

    # ---- lifecycle

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise ServerError(f"{self.kind} server binary not found or not executable: "
                              f"{self.binary} (build it first, or set "
                              f"{'RINGKV_SERVER' if self.kind == 'ringkv' else 'REDIS_SERVER'})")
        self._dir = tempfile.mkdtemp(prefix=f"{self.kind}-test-")
        last_error = ""
        # A free port can be taken between free_port() and the server's bind: try a few.
        for _ in range(5):
            self.port = free_port()
            args = [self.binary] + ([self.config_file] if self.config_file else [])
            args += ["--port", str(self.port), "--bind", "127.0.0.1", "--loglevel", "warning"]
            if self.kind == "redis":
                args += ["--save", "", "--appendonly", "no", "--dir", self._dir]
            args += self.extra_args
            self._log = open(os.path.join(self._dir, "server.log"), "w+b")
            self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self._dir)
            _live.add(self)
            if self._wait_ready():
                return self
            last_error = self.log_text()
            self._kill()
        self._cleanup_dir()
        raise ServerError(f"{self.kind} server did not become ready: {last_error}")

    def stop(self):
        """SIGTERM, then SIGKILL after a grace period. Idempotent. Returns the exit status (0 for
        a clean shutdown; a sanitizer report at exit makes it non-zero) and keeps the server's
        output in final_log."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=self.STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None
        _live.discard(self)
        if self._log is not None:
            self.final_log = self.log_text()
            self._log.close()
            self._log = None
        self._cleanup_dir()
        return self.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- helpers

    def addr(self):
        return ("127.0.0.1", self.port)

    def log_text(self):
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def client(self, **kwargs):
        """A redis-py client for this server (imported lazily: compat.py does not need it)."""
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kwargs)

    def cli_args(self):
        return [redis_cli_path(), "-h", "127.0.0.1", "-p", str(self.port)]

    def _wait_ready(self):
        deadline = time.monotonic() + self.START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited: port taken, bad flag...
            if ping(self.port):
                return True
            time.sleep(0.01)  # polling interval, not synchronisation
        return False

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        _live.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _cleanup_dir(self):
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def ping(port, timeout=0.5):
    """True when something on 127.0.0.1:port answers PING (+PONG, or -NOAUTH with requirepass)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(64)
                if not chunk:
                    return False
                data += chunk
            return data == b"+PONG\r\n" or data.startswith(b"-NOAUTH")
    except OSError:
        return False


def ringkv(extra_args=()):
    return Server("ringkv", extra_args)


def redis(extra_args=()):
    return Server("redis", extra_args)


def command(port, *args, timeout=5.0):
    """Sends one command to 127.0.0.1:port on a new connection; returns its raw reply bytes."""
    import resp
    with resp.Connection(port, timeout=timeout) as conn:
        conn.send(resp.encode([a if isinstance(a, bytes) else str(a).encode() for a in args]))
        return conn.read_reply()[0]


class Cluster:
    """k ringkv nodes on loopback (embedded discovery: node n1 hosts the configuration), joined
    with RING ADDSERVER through n1. Use as a context manager; every node is stopped on exit."""

    JOIN_DEADLINE_S = 60.0

    def __init__(self, k, binary=None, extra_args=()):
        self.k = k
        self.binary = binary
        self.extra_args = list(extra_args)
        self.nodes = []

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        first = Server("ringkv", ["--node-id", "n1"] + self.extra_args, binary=self.binary)
        self.nodes.append(first.start())
        for i in range(2, self.k + 1):
            flags = ["--node-id", f"n{i}", "--discovery", f"ringkv://127.0.0.1:{first.port}"]
            self.nodes.append(Server("ringkv", flags + self.extra_args, binary=self.binary).start())
        for i, node in enumerate(self.nodes[1:], 2):
            reply = command(first.port, "RING", "ADDSERVER", f"n{i}", f"127.0.0.1:{node.port}")
            if reply != b"+OK\r\n":
                raise ServerError(f"RING ADDSERVER n{i}: {reply!r}")
            self.wait_idle()
        return self

    def wait_idle(self):
        """Polls RING INFO on every node until none is moving data (bounded)."""
        deadline = time.monotonic() + self.JOIN_DEADLINE_S
        while time.monotonic() < deadline:
            if all(b"migration_state:idle" in command(n.port, "RING", "INFO") for n in self.nodes):
                return
            time.sleep(0.05)  # polling interval, not synchronisation
        raise ServerError("the cluster did not finish moving data within "
                          f"{self.JOIN_DEADLINE_S:.0f} s")

    def stop(self):
        """Stops every node; returns the exit statuses (0 each for clean shutdowns)."""
        return [n.stop() for n in self.nodes]
