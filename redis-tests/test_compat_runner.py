"""The differential runner (compat.py) itself: its parsing follows redis-cli's quoting, and it
fails when the servers differ, so that a passing compat run means something."""

import contextlib
import io
import os
import tempfile
import unittest

import compat
import resp


def run_cases(text, *flags):
    """Runs compat.main on a temporary case file; returns (exit status, output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(text)
        path = f.name
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            rc = compat.main(["--timeout", "1", *flags, path])
    finally:
        os.unlink(path)
    return rc, out.getvalue()


class Parsing(unittest.TestCase):
    def test_split_args_matches_sdssplitargs(self):
        self.assertEqual(resp.split_args(r'set "a\x00b" c'), [b"set", b"a\x00b", b"c"])
        self.assertEqual(resp.split_args(r'"\n\r\t\b\a\\\"" '), [b"\n\r\t\b\a\\\""])
        self.assertEqual(resp.split_args(r"'it\'s' '\n'"), [b"it's", b"\\n"])
        self.assertEqual(resp.split_args('"" x'), [b"", b"x"])
        self.assertEqual(resp.split_args(r'"\xzz"'), [b"xzz"])
        for bad in ('"abc', "'abc", '"a"b', "'a'b"):
            with self.assertRaises(resp.SplitError, msg=bad):
                resp.split_args(bad)

    def test_case_file_format(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# header comment\nSET k v\nGET k   # !approx=1 text\n\n"
                    "#!skip not today\nPING\n\n!raw \"PING\\r\\n\" \"PING\\r\\n\"  # !replies=2\n"
                    "SELECT 1  # !ringkv=\"-ERR x\\r\\n\" because\n")
            path = f.name
        try:
            cases = compat.parse_case_file(path)
        finally:
            os.unlink(path)
        self.assertEqual(len(cases), 3)
        self.assertEqual([s.args for s in cases[0].steps], [[b"SET", b"k", b"v"], [b"GET", b"k"]])
        self.assertEqual(cases[0].steps[1].markers, {"approx": b"1"})
        self.assertEqual(cases[1].skip, "not today")
        self.assertEqual(cases[2].steps[0].raw, b"PING\r\nPING\r\n")
        self.assertEqual(cases[2].steps[0].markers, {"replies": b"2"})
        self.assertEqual(cases[2].steps[1].markers, {"ringkv": b"-ERR x\r\n"})

    def test_single_node_case_marker(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("#!single-node keys on two nodes\nMSETNX a 1 b 2\n\nPING\n")
            path = f.name
        try:
            cases = compat.parse_case_file(path)
        finally:
            os.unlink(path)
        self.assertEqual([c.single_node for c in cases], ["keys on two nodes", None])
        self.assertEqual([c.skip for c in cases], [None, None])

    def test_unknown_reply_text(self):
        self.assertEqual(compat.unknown_command_reply([b"LPUSH", b"k", b"a\x00b", b"c\r\n"]),
                         b"-ERR unknown command 'LPUSH', with args beginning with: 'k' 'a' 'c  ' "
                         b"\r\n")


class Comparisons(unittest.TestCase):
    def test_approx_is_bounded(self):
        a, b, c = resp.Node(":", 100), resp.Node(":", 101), resp.Node(":", 103)
        self.assertTrue(compat.approx_equal(a, b, 1))
        self.assertFalse(compat.approx_equal(a, c, 1))
        self.assertFalse(compat.approx_equal(a, resp.Node("$", b"100"), 1000))

    def test_map_order_ignored_but_pairs_kept(self):
        def arr(*xs):
            return resp.Node("*", [resp.Node("$", x) for x in xs])
        self.assertEqual(compat.sorted_pairs(arr(b"a", b"1", b"b", b"2")),
                         compat.sorted_pairs(arr(b"b", b"2", b"a", b"1")))
        self.assertNotEqual(compat.sorted_pairs(arr(b"a", b"1", b"b", b"2")),
                            compat.sorted_pairs(arr(b"a", b"2", b"b", b"1")))


class DetectsDifferences(unittest.TestCase):
    """Each case below differs between Redis and ringkv (or breaks a marker's promise): the
    runner must report it and exit non-zero."""

    def assertFails(self, text, *flags):
        rc, out = run_cases(text, *flags)
        self.assertEqual(rc, 1, out)
        self.assertIn("MISMATCH", out)

    def test_plain_difference(self):
        self.assertFails("SELECT 1\n")  # Redis has 16 databases, ringkv one

    def test_later_state_difference(self):
        self.assertFails("CONFIG GET databases\n")

    def test_unknown_marker_on_an_implemented_command(self):
        self.assertFails("GET k   # !unknown\n")

    def test_wrong_documented_difference(self):
        self.assertFails('SELECT 1   # !ringkv="+OK\\r\\n"\n')

    def test_connection_close_required(self):
        self.assertFails("PING   # !closed\n")  # neither server closes after PING

    def test_number_of_replies_compared(self):
        self.assertFails('!raw "PING\\r\\n"   # !replies=2\n')  # the second never comes

    def test_cluster_markers_apply_with_cluster_only(self):
        # Through a cluster, !cluster-ringkv is ringkv's documented reply (here a wrong one);
        # on one node the marker does nothing and the replies are compared as usual.
        case = 'PING   # !cluster-ringkv="+NOPE\\r\\n"\n'
        self.assertFails(case, "--cluster", "2")
        rc, out = run_cases(case)
        self.assertEqual(rc, 0, out)

    def test_passes_when_equal(self):
        rc, out = run_cases("SET k v\nGET k\nTTL k\nFOOBAR\nLPUSH l a   # !unknown\n"
                            'SELECT 1   # !ringkv="-ERR DB index is out of range\\r\\n"\n')
        self.assertEqual(rc, 0, out)
        self.assertIn("compat: OK", out)

    def test_cluster_mode_passes_and_skips_single_node_cases(self):
        rc, out = run_cases("SET k v\nGET k\n\n#!single-node one node only\nSELECT 1\n",
                            "--cluster", "2")
        self.assertEqual(rc, 0, out)
        self.assertIn("through a 2-node cluster", out)
        self.assertIn("single node only: one node only", out)


if __name__ == "__main__":
    unittest.main()
