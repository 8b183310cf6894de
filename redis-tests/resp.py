"""RESP on raw sockets, for tests that must see the exact bytes a server sends.

split_args() is Redis's sdssplitargs (what redis-cli, inline requests and config files use):
"double quotes" with \\n \\r \\t \\b \\a \\\\ \\" \\xHH escapes, 'single quotes' with \\'.
encode() builds a multibulk request. Connection reads one complete reply at a time and returns
both its raw bytes and a parsed tree, for RESP2 and RESP3 alike.
"""

import socket

_HEX = b"0123456789abcdefABCDEF"


class SplitError(ValueError):
    pass


def tokenize(line, comment_char=None):
    """sdssplitargs on bytes. Returns (args, comment): when comment_char is given and a token
    starts with it unquoted, the rest of the line (after that char) is returned as the comment
    and not split. Raises SplitError on unbalanced quotes, as sdssplitargs returns NULL."""
    if isinstance(line, str):
        line = line.encode("utf-8")
    p, n = 0, len(line)
    args = []
    while True:
        while p < n and line[p:p + 1].isspace():
            p += 1
        if p >= n:
            return args, None
        if comment_char is not None and line[p:p + 1] == comment_char:
            return args, line[p + 1:]
        cur = bytearray()
        inq = insq = done = False
        while not done:
            c = line[p:p + 1]  # b"" at the end, like the C string's NUL
            nxt = line[p + 1:p + 2]
            if inq:
                if (c == b"\\" and nxt == b"x" and p + 3 < n and line[p + 2] in _HEX
                        and line[p + 3] in _HEX):
                    cur.append(int(line[p + 2:p + 4], 16))
                    p += 3
                elif c == b"\\" and nxt != b"":
                    p += 1
                    e = line[p:p + 1]
                    cur += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b",
                            b"a": b"\a"}.get(e, e)
                elif c == b'"':
                    if nxt != b"" and not nxt.isspace():
                        raise SplitError("closing quote must be followed by a space")
                    done = True
                elif c == b"":
                    raise SplitError("unbalanced quotes")
                else:
                    cur += c
            elif insq:
                if c == b"\\" and nxt == b"'":
                    p += 1
                    cur += b"'"
                elif c == b"'":
                    if nxt != b"" and not nxt.isspace():
                        raise SplitError("closing quote must be followed by a space")
                    done = True
                elif c == b"":
                    raise SplitError("unbalanced quotes")
                else:
                    cur += c
            else:
                if c in (b" ", b"\n", b"\r", b"\t", b""):
                    done = True
                elif c == b'"':
                    inq = True
                elif c == b"'":
                    insq = True
                else:
                    cur += c
            if c != b"":
                p += 1
        args.append(bytes(cur))


def split_args(line):
    """Redis's sdssplitargs: a list of bytes. Raises SplitError on unbalanced quotes."""
    return tokenize(line)[0]


def encode(args):
    """A RESP multibulk request for a list of str/bytes/int arguments."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class ProtocolError(Exception):
    pass


class Closed(Exception):
    """The peer closed the connection before a whole reply arrived."""


class Node:
    """A parsed reply: `type` is the RESP type byte as a str ('+', '-', ':', '$', '*', '%', ...),
    `value` is bytes for strings, int for integers, a list of Nodes for aggregates (maps and
    attributes hold keys and values alternately), None for nulls."""

    __slots__ = ("type", "value")

    def __init__(self, type_, value):
        self.type = type_
        self.value = value

    def is_aggregate(self):
        return isinstance(self.value, list)

    def shape(self):
        """Type and aggregate sizes only (what a time- or id-dependent reply must keep)."""
        if self.is_aggregate():
            return (self.type, len(self.value), tuple(c.shape() for c in self.value))
        if self.value is None:
            return (self.type, None)
        return (self.type,)

    def __repr__(self):
        return f"Node({self.type!r}, {self.value!r})"

    def encode(self, sort_children=False):
        """The node as RESP bytes again; with sort_children, the elements of this aggregate
        (not of nested ones) in byte order, for replies whose order is unspecified."""
        t = self.type.encode()
        if self.is_aggregate():
            parts = [c.encode() for c in self.value]
            if sort_children:
                parts.sort()
            n = len(self.value) // 2 if self.type in "%|" else len(self.value)
            return t + b"%d\r\n" % n + b"".join(parts)
        if self.value is None:
            return b"_\r\n" if self.type == "_" else t + b"-1\r\n"
        if self.type == ":":
            return b":%d\r\n" % self.value
        if self.type in "$=!":
            return t + b"%d\r\n" % len(self.value) + self.value + b"\r\n"
        return t + self.value + b"\r\n"


class Connection:
    """A blocking socket speaking RESP, reading whole replies (raw bytes + parsed Node)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0  # parse position in buf during read_reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def call(self, *args):
        self.send(encode(args))
        return self.read_reply()

    def read_reply(self):
        """Returns (raw_bytes, Node). Raises Closed on EOF, socket.timeout on timeout."""
        while True:
            self.pos = 0
            try:
                node = self._parse()
            except _NeedMore:
                self._fill()
                continue
            raw = bytes(self.buf[:self.pos])
            del self.buf[:self.pos]
            return raw, node

    def wait_closed(self, timeout):
        """True when the peer closes the connection within `timeout` with no further bytes;
        False when bytes arrive or the connection stays open."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if data:
            self.buf += data
            return False
        return True

    # ---- parsing

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed("connection closed by peer")
        self.buf += data

    def _line(self):
        end = self.buf.find(b"\r\n", self.pos)
        if end < 0:
            raise _NeedMore()
        line = bytes(self.buf[self.pos:end])
        self.pos = end + 2
        return line

    def _parse(self):
        if self.pos >= len(self.buf):
            raise _NeedMore()
        t = chr(self.buf[self.pos])
        self.pos += 1
        line = self._line()
        if t in "+-(,#":
            return Node(t, line)
        if t == ":":
            return Node(t, int(line))
        if t == "_":
            return Node(t, None)
        if t in "$=!":
            n = int(line)
            if n < 0:
                return Node(t, None)
            if len(self.buf) < self.pos + n + 2:
                raise _NeedMore()
            data = bytes(self.buf[self.pos:self.pos + n])
            if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
                raise ProtocolError("bulk string not terminated by CRLF")
            self.pos += n + 2
            return Node(t, data)
        if t in "*~>%|":
            n = int(line)
            if n < 0:
                return Node(t, None)
            count = n * 2 if t in "%|" else n
            children = [self._parse() for _ in range(count)]
            node = Node(t, children)
            if t == "|":  # an attribute precedes the real reply
                return Node("|", [node, self._parse()])
            return node
        raise ProtocolError(f"unknown reply type {t!r}")


class _NeedMore(Exception):
    pass
