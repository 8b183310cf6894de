#!/usr/bin/python3
"""Differential compatibility runner: the same commands to redis-server and ringkv-server,
the raw reply bytes compared.

Usage: compat.py [options] [case files...]     (default: redis-tests/compat/*.txt)
       compat.py --cluster 3 [case files...]     the same cases through a 3-node ringkv cluster

Case file format
----------------
One command per line, written as in redis-cli: arguments split by Redis's own rules
(sdssplitargs: "double quotes" with \\n \\r \\t \\xHH escapes, 'single quotes'). A blank line ends
a case; every case runs on new connections to both servers and starts with FLUSHALL, so cases
are independent. A line whose first character is '#' is a comment. After a command, an unquoted
'#' starts a comment; markers in that comment (words starting with '!') change how the reply is
checked:

  (no marker)        the raw reply bytes must be identical
  !type              compare only the reply's type and aggregate sizes (ids, times, INFO text)
  !approx=N          integers (and doubles) may differ by up to N (TTL, PTTL); all else identical
  !ignore            read the reply but do not compare it
  !unordered         the elements of the reply's top-level array may come in any order (KEYS)
  !map               the reply is name/value pairs whose order is unspecified (CONFIG GET)
  !scan-all          a SCAN command: iterate from its cursor to the end on each server and
                     compare the sorted, de-duplicated keys (cursors are server-specific)
  !noreply           the command sends no reply (after CLIENT REPLY OFF/SKIP): read none
  !unknown           ringkv does not implement this command: it is sent to ringkv only, and the
                     reply must be exactly Redis's "-ERR unknown command ..." for those arguments
  !ringkv="<bytes>"  a deliberate difference: ringkv's raw reply must equal <bytes> (quoted with
                     the same escapes); Redis's reply is read but not compared. Say why in the
                     comment.
  !closed            after the reply, both servers must close the connection
  !conn=N            send on the case's N-th connection (opened on first use; default 1), to
                     test what one client sees of another's writes (WATCH, CLIENT KILL)
  !cluster-ringkv="<bytes>"
                     with --cluster: as !ringkv, a deliberate difference of a cluster (a
                     transaction or MSETNX whose keys live on different nodes is refused)

Raw bytes (inline requests, pipelines, protocol errors) are sent with a line starting with !raw,
followed by quoted strings that are concatenated and sent as they are; !replies=N says how many
replies to read (default 1), and !closed can follow.

  !raw "*1\\r\\n$4\\r\\nPING\\r\\n"       # !replies=1
  !raw "*a\\r\\n"                        # !closed   protocol error, connection closed

A line "#!skip <reason>" in a case skips the whole case; skipped cases are listed in the summary.
A line "#!single-node <reason>" skips the case with --cluster only.

With --cluster K the cases run through a K-node ringkv cluster (embedded discovery, the default
replicas and quorums), each case through the next node in turn, so that most keys are served by
another node than the one the client talks to.

The exit status is 0 only when every compared reply matched and every !unknown/!ringkv check
held. Each mismatch is printed as a unified diff of the two replies (one RESP line per line).
"""

import argparse
import difflib
import glob
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import resp  # noqa: E402

_MARKER = re.compile(rb'!([A-Za-z][\w-]*)(?:=("(?:[^"\\]|\\.)*"|\S+))?')


class Step:
    __slots__ = ("line", "text", "args", "raw", "markers")

    def __init__(self, line, text, args, raw, markers):
        self.line = line
        self.text = text
        self.args = args  # list of bytes, or None for !raw
        self.raw = raw  # bytes for !raw
        self.markers = markers  # name -> bytes value (b"" when no value)


class Case:
    def __init__(self, path, line):
        self.path = path
        self.line = line
        self.steps = []
        self.skip = None
        self.single_node = None  # why the case is skipped with --cluster

    def where(self, step=None):
        return f"{os.path.relpath(self.path)}:{step.line if step else self.line}"


class CaseFileError(Exception):
    pass


def parse_markers(comment):
    markers = {}
    if comment is None:
        return markers
    for m in _MARKER.finditer(comment):
        name = m.group(1).decode()
        value = m.group(2) or b""
        if value.startswith(b'"'):
            value = resp.split_args(value)[0]
        markers[name] = value
    return markers


KNOWN_MARKERS = {"type", "approx", "ignore", "noreply", "unknown", "ringkv", "closed", "replies",
                 "unordered", "map", "scan-all", "conn", "cluster-ringkv"}


def parse_case_file(path):
    cases = []
    current = None
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip(b"\r")
        stripped = line.strip()
        if not stripped:
            if current is not None and (current.steps or current.skip):
                cases.append(current)
            current = None
            continue
        if current is None:
            current = Case(path, lineno)
        if stripped.startswith(b"#!skip"):
            current.skip = stripped[6:].strip().decode("utf-8", "replace") or "no reason given"
            continue
        if stripped.startswith(b"#!single-node"):
            current.single_node = (stripped[13:].strip().decode("utf-8", "replace") or
                                   "no reason given")
            continue
        if stripped.startswith(b"#"):
            continue
        try:
            args, comment = resp.tokenize(line, comment_char=b"#")
        except resp.SplitError as e:
            raise CaseFileError(f"{path}:{lineno}: {e}: {line!r}")
        markers = parse_markers(comment)
        unknown = set(markers) - KNOWN_MARKERS
        if unknown:
            raise CaseFileError(f"{path}:{lineno}: unknown marker(s) {sorted(unknown)}")
        text = line.decode("utf-8", "replace").strip()
        if args and args[0] == b"!raw":
            if len(args) < 2:
                raise CaseFileError(f"{path}:{lineno}: !raw needs the bytes to send")
            current.steps.append(Step(lineno, text, None, b"".join(args[1:]), markers))
        else:
            if not args:
                raise CaseFileError(f"{path}:{lineno}: no command")
            current.steps.append(Step(lineno, text, args, None, markers))
    if current is not None and (current.steps or current.skip):
        cases.append(current)
    return cases


def unknown_command_reply(args):
    """Redis 7's reply to a command it does not know (server.c, processCommand):
    "unknown command '%.128s', with args beginning with: " + "'%.*s' " per argument while the
    list is shorter than 128 bytes; %s stops at a NUL byte; CR and LF become spaces."""
    def c_str(b):
        return b.split(b"\0", 1)[0]
    listed = b""
    for a in args[1:]:
        if len(listed) >= 128:
            break
        listed += b"'" + c_str(a)[:128 - len(listed)] + b"' "
    text = (b"ERR unknown command '" + c_str(args[0])[:128] + b"', with args beginning with: " +
            listed)
    return b"-" + text.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


# ---------------------------------------------------------------- comparison

def render(raw):
    """Raw reply bytes as lines for a diff: one RESP line per line, bytes escaped."""
    if raw is None:
        return ["<no reply>"]
    if isinstance(raw, str):
        return [raw]
    out = []
    for part in raw.split(b"\r\n"):
        out.append(repr(part)[2:-1])
    if out and out[-1] == "":
        out.pop()
    return out


def sorted_pairs(node):
    """A map-like reply (RESP3 map, or RESP2 flat name/value array) as bytes with its pairs
    sorted, so that two servers listing the same pairs in different orders compare equal."""
    if not node.is_aggregate() or len(node.value) % 2:
        return node.encode()
    items = [c.encode() for c in node.value]
    pairs = sorted(zip(items[0::2], items[1::2]))
    n = len(pairs) if node.type == "%" else len(items)
    return node.type.encode() + b"%d\r\n" % n + b"".join(k + v for k, v in pairs)


def approx_equal(a, b, tol):
    if a.type != b.type:
        return False
    if a.is_aggregate() or b.is_aggregate():
        if not (a.is_aggregate() and b.is_aggregate()) or len(a.value) != len(b.value):
            return False
        return all(approx_equal(x, y, tol) for x, y in zip(a.value, b.value))
    if a.type == ":":
        return abs(a.value - b.value) <= tol
    if a.type == ",":
        try:
            return abs(float(a.value) - float(b.value)) <= tol
        except ValueError:
            return a.value == b.value
    return a.value == b.value


def scan_all(ep, args, max_calls=100000):
    """Runs a SCAN-like command (cursor at args[1]) to completion; returns the sorted distinct
    keys as RESP bytes, or the raw reply of the first call that did not return a page."""
    cursor = args[1]
    keys = set()
    for _ in range(max_calls):
        call = list(args)
        call[1] = cursor
        raw, node = ep.exchange(resp.encode(call), 1)[0]
        if node is None or node.type != "*" or len(node.value) != 2 or \
                not node.value[1].is_aggregate():
            return raw
        keys.update(k.value for k in node.value[1].value)
        cursor = node.value[0].value
        if cursor == b"0":
            return resp.encode(sorted(keys))
    return b"<SCAN did not finish>"


class Endpoint:
    """The connections to one server during one case: connection 1, and more on demand for
    steps marked !conn=N."""

    def __init__(self, name, server, timeout):
        self.name = name
        self.server = server
        self.timeout = timeout
        self.conns = {}  # n -> resp.Connection
        self.closed = set()  # connection numbers the server closed
        self.current = 1

    def use(self, n):
        self.current = n
        if n not in self.conns:
            self.conns[n] = resp.Connection(self.server.port, timeout=self.timeout)
        return self

    def open(self):
        self.use(1)

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()
        self.closed.clear()

    def exchange(self, data, replies):
        """Sends data on the current connection and reads `replies` replies. Returns a list of
        (raw, node) or, for a reply that could not be read, (str saying why, None)."""
        out = []
        n = self.current
        conn = self.conns[n]
        if n in self.closed:
            return [("<connection closed>", None)] * max(replies, 1)
        try:
            conn.send(data)
        except OSError as e:
            self.closed.add(n)
            return [(f"<send failed: {e.__class__.__name__}>", None)] * max(replies, 1)
        for _ in range(replies):
            try:
                out.append(conn.read_reply())
            except resp.Closed:
                self.closed.add(n)
                out.append(("<connection closed>", None))
                break
            except (socket.timeout, TimeoutError):
                out.append(("<timeout>", None))
                break
            except OSError as e:
                self.closed.add(n)
                out.append((f"<{e.__class__.__name__}>", None))
                break
        return out

    def check_closed(self):
        n = self.current
        if n in self.closed:
            return True
        conn = self.conns[n]
        try:
            closed = conn.wait_closed(self.timeout)
        finally:
            conn.sock.settimeout(self.timeout)
        if closed:
            self.closed.add(n)
        return closed


class Runner:
    """ringkv_servers: one server, or a cluster's nodes (cases go to each in turn)."""

    def __init__(self, redis_server, ringkv_servers, verbose=False, timeout=5.0, cluster=False):
        self.redis_server = redis_server
        self.ringkv_servers = ringkv_servers if isinstance(ringkv_servers, list) else \
            [ringkv_servers]
        self.cluster = cluster
        self.verbose = verbose
        self.timeout = timeout
        self.mismatches = 0
        self.compared = 0
        self.unknown_checked = 0
        self.deliberate = 0
        self.skipped = []
        self.cases_run = 0

    def fail(self, case, step, title, expected, actual, labels=("redis", "ringkv")):
        self.mismatches += 1
        where = case.where(step)
        print(f"MISMATCH {where}: {step.text if step else ''}  ({title})")
        diff = difflib.unified_diff(render(expected), render(actual),
                                    fromfile=f"{labels[0]}  {where}",
                                    tofile=f"{labels[1]}  {where}", lineterm="")
        for line in diff:
            print("    " + line)
        sys.stdout.flush()

    def run_case(self, case):
        if case.skip:
            self.skipped.append((case.where(), case.skip))
            return
        if self.cluster and case.single_node:
            self.skipped.append((case.where(), "single node only: " + case.single_node))
            return
        server = self.ringkv_servers[self.cases_run % len(self.ringkv_servers)]
        self.cases_run += 1
        redis_ep = Endpoint("redis", self.redis_server, self.timeout)
        ringkv_ep = Endpoint("ringkv", server, self.timeout)
        try:
            for ep in (redis_ep, ringkv_ep):
                ep.open()
                raw, _ = ep.exchange(resp.encode([b"FLUSHALL"]), 1)[0]
                if raw != b"+OK\r\n":
                    raise RuntimeError(f"{ep.name}: FLUSHALL failed: {raw!r}")
            for step in case.steps:
                self.run_step(case, step, redis_ep, ringkv_ep)
        finally:
            redis_ep.close()
            ringkv_ep.close()

    def run_step(self, case, step, redis_ep, ringkv_ep):
        m = dict(step.markers)
        if self.cluster:
            if "cluster-ringkv" in m:
                m["ringkv"] = m["cluster-ringkv"]
        if self.verbose:
            print(f"  {case.where(step)}: {step.text}")
        conn = int(m.get("conn", b"1") or 1)
        redis_ep.use(conn)
        ringkv_ep.use(conn)
        if step.raw is not None:
            data = step.raw
            replies = int(m.get("replies", b"1") or 1)
        else:
            data = resp.encode(step.args)
            replies = 0 if "noreply" in m else 1

        if "unknown" in m:
            got = ringkv_ep.exchange(data, 1)[0][0]
            expected = unknown_command_reply(step.args)
            self.unknown_checked += 1
            if got != expected:
                self.fail(case, step, "ringkv must answer unknown command", expected, got,
                          ("expected", "ringkv"))
            return

        if "scan-all" in m:
            self.compared += 1
            expected = scan_all(redis_ep, step.args)
            got = scan_all(ringkv_ep, step.args)
            if expected != got:
                self.fail(case, step, "scan-all: every key of a full iteration", expected, got)
            return

        redis_replies = redis_ep.exchange(data, replies)
        ringkv_replies = ringkv_ep.exchange(data, replies)
        if self.verbose:
            for raw, _ in redis_replies:
                print("    redis: " + " ".join(render(raw))[:200])

        if "ringkv" in m:
            self.deliberate += 1
            got = b"".join(r for r, _ in ringkv_replies if isinstance(r, bytes))
            if len(ringkv_replies) != replies or any(n is None for _, n in ringkv_replies) or \
                    got != m["ringkv"]:
                got_show = got if all(isinstance(r, bytes) for r, _ in ringkv_replies) else \
                    " ".join(str(r) for r, _ in ringkv_replies)
                self.fail(case, step, "deliberate difference: ringkv's documented reply",
                          m["ringkv"], got_show, ("documented", "ringkv"))
        elif "ignore" not in m:
            for (r_raw, r_node), (k_raw, k_node) in zip(redis_replies, ringkv_replies):
                self.compared += 1
                if r_node is None or k_node is None:
                    ok = False  # a timeout or a closed connection where a reply was due
                    title = "a reply was due"
                elif "type" in m:
                    ok = r_node.shape() == k_node.shape()
                    title = "type-only"
                elif "map" in m:
                    r_raw, k_raw = sorted_pairs(r_node), sorted_pairs(k_node)
                    ok = r_raw == k_raw
                    title = "map"
                elif "unordered" in m:
                    ok = r_node.encode(sort_children=True) == k_node.encode(sort_children=True)
                    title = "unordered"
                    r_raw, k_raw = r_node.encode(True), k_node.encode(True)
                elif "approx" in m:
                    ok = approx_equal(r_node, k_node, float(m["approx"] or 0))
                    title = f"approx={m['approx'].decode()}"
                else:
                    ok = r_raw == k_raw
                    title = "reply"
                if not ok:
                    self.fail(case, step, title, r_raw, k_raw)
            if len(redis_replies) != len(ringkv_replies):
                self.fail(case, step, "number of replies",
                          f"{len(redis_replies)} replies", f"{len(ringkv_replies)} replies")

        if "closed" in m:
            r_closed = redis_ep.check_closed()
            k_closed = ringkv_ep.check_closed()
            self.compared += 1
            if not (r_closed and k_closed):
                self.fail(case, step, "both must close the connection after the reply",
                          "redis: " + ("closed" if r_closed else "open"),
                          "ringkv: " + ("closed" if k_closed else "open"))

    def summary(self):
        print(f"compat: {self.cases_run} cases, {self.compared} replies compared, "
              f"{self.unknown_checked} unknown-command checks, {self.deliberate} documented "
              f"differences checked, {len(self.skipped)} skipped, {self.mismatches} mismatches")
        for where, why in self.skipped:
            print(f"  skipped {where}: {why}")


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", help="case files (default: compat/*.txt)")
    ap.add_argument("--ringkv-server", default=harness.ringkv_server_path())
    ap.add_argument("--redis-server", default=harness.redis_server_path())
    ap.add_argument("-v", "--verbose", action="store_true", help="print every command")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply")
    ap.add_argument("--cluster", type=int, default=0, metavar="K",
                    help="run the cases through a K-node ringkv cluster (K >= 2)")
    args = ap.parse_args(argv)
    if args.cluster == 1 or args.cluster < 0:
        ap.error("--cluster needs at least 2 nodes")

    files = args.files or sorted(glob.glob(os.path.join(here, "compat", "*.txt")))
    if not files:
        print("compat: no case files found", file=sys.stderr)
        return 2
    try:
        cases = [c for f in files for c in parse_case_file(f)]
    except CaseFileError as e:
        print(f"compat: {e}", file=sys.stderr)
        return 2

    started = time.monotonic()
    if args.cluster:
        ringkv = harness.Cluster(args.cluster, binary=args.ringkv_server)
    else:
        ringkv = harness.Server("ringkv", binary=args.ringkv_server)
    with harness.Server("redis", binary=args.redis_server) as redis_srv, ringkv:
        nodes = ringkv.nodes if args.cluster else [ringkv]
        runner = Runner(redis_srv, nodes, args.verbose, args.timeout, cluster=bool(args.cluster))
        crashed = None
        for case in cases:
            try:
                runner.run_case(case)
            except (RuntimeError, OSError) as e:
                runner.mismatches += 1
                print(f"MISMATCH {case.where()}: case setup failed: {e}")
            dead = [n for n in nodes if not n.alive()]
            if dead:
                crashed = (case, dead[0].proc.returncode, dead[0].log_text())
                break
            if not redis_srv.alive():
                print(f"compat: redis-server exited during {case.where()}", file=sys.stderr)
                return 2
    runner.summary()
    where = f"through a {args.cluster}-node cluster " if args.cluster else ""
    print(f"compat: {len(files)} files {where}in {time.monotonic() - started:.1f}s")
    unclean = [n for n in nodes if n.returncode != 0]
    if crashed is None and unclean:
        # A clean SIGTERM shutdown exits 0; sanitizer reports at exit (leaks) do not.
        print(f"compat: FAIL: ringkv-server exited with status {unclean[0].returncode} at "
              f"shutdown\n{unclean[0].final_log}")
        return 1
    if crashed is not None:
        case, status, log = crashed
        print(f"compat: FAIL: ringkv-server exited (status {status}) during {case.where()}\n{log}")
        return 1
    if runner.mismatches:
        print(f"compat: FAIL: {runner.mismatches} mismatches")
        return 1
    print("compat: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
