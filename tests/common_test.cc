// Tests for src/common: tokens, the hybrid clock, Redis-exact numbers, globs, huge-page advice.
#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

#include "common/clock.h"
#include "common/huge_pages.h"
#include "common/strings.h"
#include "ringkv/status.h"
#include "ringkv/token.h"

using namespace ringkv;

TEST_CASE("token is the first 8 bytes of SHA-256, big-endian") {
  // SHA-256("") = e3b0c44298fc1c14 9afbf4c8996fb924...
  CHECK(token_hex(token_of("")) == "e3b0c44298fc1c14");
  // SHA-256("abc") = ba7816bf8f01cfea 414140de5dae2223...
  CHECK(token_of("abc") == 0xba7816bf8f01cfeaULL);
  std::string binary("a\0b", 3);
  CHECK(token_of(binary) != token_of("a"));
}

TEST_CASE("hybrid clock issues increasing versions and moves past observed ones") {
  ManualClock clock;
  HybridClock hlc(clock, 7);
  Version a = hlc.next();
  Version b = hlc.next();
  CHECK(b > a);
  CHECK(HybridClock::node_of(a) == 7);
  CHECK(HybridClock::physical_ms(a) == clock.now_ms());
  Version far = (a | HybridClock::kMaxNode) + (uint64_t{1000} << 22);
  hlc.observe(far);
  CHECK(hlc.next() > far);
  CHECK(hlc.next(far + (uint64_t{5} << 22)) > far + (uint64_t{5} << 22));
  clock.advance_ms(-10000);  // a clock that steps back never makes versions go back
  Version c = hlc.next();
  CHECK(c > far);
}

TEST_CASE("parse_int64 follows Redis's string2ll") {
  int64_t v;
  CHECK(parse_int64("0", &v));
  CHECK(v == 0);
  CHECK(parse_int64("-9223372036854775808", &v));
  CHECK(v == INT64_MIN);
  CHECK(parse_int64("9223372036854775807", &v));
  CHECK(v == INT64_MAX);
  CHECK_FALSE(parse_int64("9223372036854775808", &v));
  CHECK_FALSE(parse_int64("-9223372036854775809", &v));
  CHECK_FALSE(parse_int64("", &v));
  CHECK_FALSE(parse_int64("-", &v));
  CHECK_FALSE(parse_int64("-0", &v));
  CHECK_FALSE(parse_int64("01", &v));
  CHECK_FALSE(parse_int64("+1", &v));
  CHECK_FALSE(parse_int64(" 1", &v));
  CHECK_FALSE(parse_int64("1 ", &v));
  CHECK_FALSE(parse_int64("1.0", &v));
  CHECK_FALSE(parse_int64(std::string_view("1\0", 2), &v));
}

TEST_CASE("float formatting matches Redis's human form") {
  CHECK(format_long_double_human(10.5L) == "10.5");
  CHECK(format_long_double_human(3.0L) == "3");
  CHECK(format_long_double_human(-0.0L) == "0");
  CHECK(format_long_double_human(5.0e3L) == "5000");
  long double d;
  CHECK(parse_long_double("1e3", &d));
  CHECK_FALSE(parse_long_double(" 1", &d));
  CHECK_FALSE(parse_long_double("nan", &d));
  CHECK_FALSE(parse_long_double("1x", &d));
  CHECK_FALSE(parse_long_double("", &d));
}

TEST_CASE("glob_match follows Redis's stringmatchlen") {
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("h?llo", "hello"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-c]llo", "hbllo"));
  CHECK(glob_match("h\\*llo", "h*llo"));
  CHECK_FALSE(glob_match("h\\*llo", "hello"));
  CHECK(glob_match("KEY*", "key:1", true));
  CHECK_FALSE(glob_match("KEY*", "key:1", false));
  // A pathological pattern finishes quickly instead of backtracking exponentially.
  CHECK_FALSE(glob_match("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", std::string(60, 'a')));
}

TEST_CASE("parse_memory reads Redis units") {
  uint64_t v;
  CHECK(parse_memory("1gb", &v));
  CHECK(v == 1024ull * 1024 * 1024);
  CHECK(parse_memory("10KB", &v));
  CHECK(v == 10240);
  CHECK(parse_memory("5k", &v));
  CHECK(v == 5000);
  CHECK(parse_memory("123", &v));
  CHECK(v == 123);
  CHECK_FALSE(parse_memory("-1", &v));
  CHECK_FALSE(parse_memory("1tb", &v));
  CHECK_FALSE(parse_memory("", &v));
}

TEST_CASE("Status and Result carry codes and messages") {
  Status s = Status::not_found("no such key");
  CHECK_FALSE(s.is_ok());
  CHECK(s.to_string() == "not found: no such key");
  Result<int> r = 5;
  CHECK(r.is_ok());
  CHECK(*r == 5);
  Result<int> e = Status::timed_out("after 100 ms");
  CHECK_FALSE(e.is_ok());
  CHECK(e.status().code() == Code::kTimedOut);
}

TEST_CASE("huge-page advice covers the whole 2 MiB pages of a large buffer") {
  constexpr uintptr_t kMiB = uintptr_t{1} << 20;
  const uintptr_t base = 1000 * 2 * kMiB;  // 2 MiB-aligned
  // Below 4 MiB: nothing.
  CHECK(huge_page_range(base, 4 * kMiB - 1).empty());
  // Aligned at both ends: all of it.
  AddressRange all = huge_page_range(base, 4 * kMiB);
  CHECK(all.first == base);
  CHECK(all.last == base + 4 * kMiB);
  // A malloc'd block starts past a header: the pages it covers whole, three of the five it spans.
  AddressRange inner = huge_page_range(base + 16, 8 * kMiB);
  CHECK(inner.first == base + 2 * kMiB);
  CHECK(inner.last == base + 8 * kMiB);
  // And the advice leaves the memory as it was.
  std::vector<char> buf(9 * kMiB, 'a');
  advise_huge_pages(buf.data(), buf.size());
  buf[5 * kMiB] = 'b';
  CHECK(std::count(buf.begin(), buf.end(), 'a') == static_cast<long>(buf.size() - 1));
  // append_advised appends, small or large, to an empty string or after what it holds.
  std::string out = "head";
  append_advised(&out, "x");
  append_advised(&out, std::string_view(buf.data(), buf.size()));
  CHECK(out.size() == 5 + buf.size());
  CHECK(out.compare(0, 5, "headx") == 0);
  CHECK(out.compare(5, buf.size(), buf.data(), buf.size()) == 0);
  std::string empty;
  append_advised(&empty, std::string_view(buf.data(), buf.size()));
  CHECK(empty == std::string(buf.data(), buf.size()));
}
