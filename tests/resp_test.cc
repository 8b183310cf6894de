// Tests for src/resp: the request parser (every request kind split at every byte boundary,
// random pipelines, every protocol error with Redis's text) and the reply writer (RESP2 and RESP3
// forms, RESP2 checked by hiredis's own reader).
#include <hiredis/hiredis.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "resp/errors.h"
#include "resp/parser.h"
#include "resp/writer.h"

using namespace ringkv;
using resp::ParserLimits;
using resp::ParseStatus;
using resp::RequestParser;
using resp::Writer;

namespace {

using Args = std::vector<std::string>;

// One parsed request as the tests compare it: a command's arguments, or an empty request.
struct Parsed {
  bool empty = false;
  Args args;
  bool operator==(const Parsed& o) const { return empty == o.empty && args == o.args; }
};

std::ostream& operator<<(std::ostream& os, const Parsed& p) {
  if (p.empty) return os << "(empty)";
  os << "[";
  for (size_t i = 0; i < p.args.size(); ++i) os << (i ? ", " : "") << '"' << p.args[i] << '"';
  return os << "]";
}

std::string multibulk(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Feeds `input` the way a connection does: bytes arrive in the chunks `cuts` says (offsets where
// a new read starts); the unconsumed bytes stay at the front of the buffer and are passed again
// with the next read appended. Checks the parser's invariants on every call. Returns the
// requests in order; `error` gets the error text if one occurred (parsing stops there).
std::vector<Parsed> feed(RequestParser& parser, const std::string& input,
                         const std::vector<size_t>& cuts, std::string* error = nullptr,
                         bool authenticated = true) {
  std::vector<Parsed> out;
  std::string buf;
  size_t next = 0;
  std::vector<size_t> ends(cuts);
  ends.push_back(input.size());
  for (size_t end : ends) {
    if (end < next) continue;
    buf.append(input, next, end - next);
    next = end;
    for (;;) {
      size_t consumed = 12345;
      ParseStatus st = parser.parse(buf.data(), buf.size(), authenticated, &consumed);
      REQUIRE(consumed <= buf.size());
      if (st == ParseStatus::kNeedMore) {
        REQUIRE(consumed == 0);
        break;
      }
      if (st == ParseStatus::kError) {
        REQUIRE(consumed == 0);
        if (error) *error = parser.error();
        return out;
      }
      REQUIRE(consumed > 0);
      Parsed p;
      if (st == ParseStatus::kEmpty) {
        p.empty = true;
      } else {
        for (std::string_view a : parser.args()) p.args.emplace_back(a);
      }
      out.push_back(std::move(p));
      buf.erase(0, consumed);
    }
  }
  if (error) error->clear();
  return out;
}

std::vector<Parsed> feed_whole(const std::string& input) {
  RequestParser p;
  return feed(p, input, {});
}

Parsed cmd(Args a) { return Parsed{false, std::move(a)}; }
Parsed empty() { return Parsed{true, {}}; }

// Every request kind, with the requests it must parse into.
struct Case {
  const char* name;
  std::string bytes;
  std::vector<Parsed> expect;
};

std::vector<Case> request_kinds() {
  std::string binary("a\0b\r\nc\xff\x01", 8);
  std::string large(70000, 'x');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('a' + i % 26);
  return {
      {"multibulk", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", {cmd({"SET", "k", "value"})}},
      {"multibulk binary", multibulk({"SET", binary, binary}), {cmd({"SET", binary, binary})}},
      {"multibulk empty args", "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", {cmd({"SET", "", ""})}},
      {"multibulk large arg", multibulk({"SET", "k", large}), {cmd({"SET", "k", large})}},
      {"multibulk with '$' and '*' inside",
       multibulk({"*1", "$3", "\r\n*"}),
       {cmd({"*1", "$3", "\r\n*"})}},
      {"inline", "SET k value\r\n", {cmd({"SET", "k", "value"})}},
      {"inline LF only", "PING\n", {cmd({"PING"})}},
      {"inline quotes and escapes",
       "SET \"a b\" 'c \\' d' \"\\x41\\n\\t\\\"\\\\\" \"\"\r\n",
       {cmd({"SET", "a b", "c ' d", "A\n\t\"\\", ""})}},
      {"inline extra spaces", "  GET   k  \r\n", {cmd({"GET", "k"})}},
      {"*0", "*0\r\n", {empty()}},
      {"*-1", "*-1\r\n", {empty()}},
      {"blank inline lines", "\r\n\n   \r\n", {empty(), empty(), empty()}},
      {"pipeline",
       "*1\r\n$4\r\nPING\r\nPING\r\n*0\r\n\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nECHO \"a\"\n",
       {cmd({"PING"}), cmd({"PING"}), empty(), empty(), cmd({"ECHO", "hi"}), cmd({"ECHO", "a"})}},
  };
}

}  // namespace

// ---------------------------------------------------------------- request kinds

TEST_CASE("parser: every request kind parses whole") {
  for (const Case& c : request_kinds()) {
    INFO(c.name);
    CHECK(feed_whole(c.bytes) == c.expect);
  }
}

TEST_CASE("parser: a proper prefix of one request is always kNeedMore") {
  for (const Case& c : request_kinds()) {
    if (c.expect.size() != 1) continue;
    INFO(c.name);
    RequestParser p;
    const size_t step = c.bytes.size() > 2000 ? 97 : 1;
    for (size_t n = 0; n < c.bytes.size(); n += step) {
      size_t consumed = 1;
      ParseStatus st = p.parse(c.bytes.data(), n, true, &consumed);
      INFO("prefix " << n);
      REQUIRE(st == ParseStatus::kNeedMore);
      REQUIRE(consumed == 0);
    }
    size_t consumed = 0;
    ParseStatus st = p.parse(c.bytes.data(), c.bytes.size(), true, &consumed);
    CHECK(st == (c.expect[0].empty ? ParseStatus::kEmpty : ParseStatus::kCommand));
    CHECK(consumed == c.bytes.size());
  }
}

TEST_CASE("parser: split at every byte boundary yields the same requests") {
  for (const Case& c : request_kinds()) {
    INFO(c.name);
    // For the 70 kB argument every boundary of the headers, and a stride through the body.
    std::vector<size_t> points;
    for (size_t i = 0; i <= c.bytes.size(); ++i) {
      if (c.bytes.size() < 2000 || i < 64 || c.bytes.size() - i < 64 || i % 331 == 0)
        points.push_back(i);
    }
    for (size_t i : points) {
      INFO("split at " << i);
      RequestParser p;
      REQUIRE(feed(p, c.bytes, {i}) == c.expect);
    }
  }
}

TEST_CASE("parser: one byte at a time, and with a parser reused across requests") {
  std::string all;
  std::vector<Parsed> expect;
  for (const Case& c : request_kinds()) {
    all += c.bytes;
    expect.insert(expect.end(), c.expect.begin(), c.expect.end());
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < all.size(); ++i) every.push_back(i);
  RequestParser p;
  CHECK(feed(p, all, every) == expect);
  // The same parser, all at once afterwards: no state is left over.
  CHECK(feed(p, all, {}) == expect);
}

TEST_CASE("parser: args of a multibulk request point into the caller's bytes") {
  std::string req = multibulk({"SET", "key", std::string("v\0v", 3)});
  RequestParser p;
  size_t consumed;
  REQUIRE(p.parse(req.data(), req.size(), true, &consumed) == ParseStatus::kCommand);
  REQUIRE(p.args().size() == 3);
  for (std::string_view a : p.args()) {
    CHECK(a.data() >= req.data());
    CHECK(a.data() + a.size() <= req.data() + req.size());
  }
  CHECK(p.args()[2] == std::string_view("v\0v", 3));
}

TEST_CASE("parser: bytes_wanted announces the size of a large bulk being received") {
  std::string head = "*2\r\n$3\r\nSET\r\n$100000\r\n";
  std::string req = head + std::string(100000, 'z') + "\r\n";
  RequestParser p;
  size_t consumed;
  REQUIRE(p.parse(req.data(), head.size() + 10, true, &consumed) == ParseStatus::kNeedMore);
  CHECK(p.bytes_wanted() == req.size());
  REQUIRE(p.parse(req.data(), req.size(), true, &consumed) == ParseStatus::kCommand);
  CHECK(consumed == req.size());
  CHECK(p.bytes_wanted() == 0);
}

TEST_CASE("parser: a huge announced argument count allocates nothing up front") {
  // INT_MAX arguments announced, none sent: the parser must just wait, like Redis.
  std::string req = "*2147483647\r\n$4\r\nPING\r\n";
  RequestParser p;
  size_t consumed;
  CHECK(p.parse(req.data(), req.size(), true, &consumed) == ParseStatus::kNeedMore);
}

// ---------------------------------------------------------------- random round trips

TEST_CASE("parser: random argument vectors round-trip through random cuts") {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    auto uniform = [&](size_t lo, size_t hi) {
      return std::uniform_int_distribution<size_t>(lo, hi)(rng);
    };
    std::vector<Parsed> expect;
    std::string wire;
    size_t requests = uniform(1, 60);
    for (size_t r = 0; r < requests; ++r) {
      Args args(uniform(1, 8));
      for (auto& a : args) {
        size_t len = uniform(0, 10) == 0 ? uniform(1000, 40000) : uniform(0, 40);
        a.resize(len);
        for (auto& ch : a) ch = static_cast<char>(uniform(0, 255));
      }
      wire += multibulk(args);
      expect.push_back(cmd(args));
    }
    std::vector<size_t> cuts;
    size_t ncuts = uniform(0, 30);
    for (size_t i = 0; i < ncuts; ++i) cuts.push_back(uniform(0, wire.size()));
    std::sort(cuts.begin(), cuts.end());
    INFO("seed " << seed);
    RequestParser p;
    std::string error;
    CHECK(feed(p, wire, cuts, &error) == expect);
    CHECK(error.empty());
  }
}

// ---------------------------------------------------------------- protocol errors

namespace {

struct ErrorCase {
  const char* name;
  std::string bytes;
  std::string error;
  bool authenticated = true;
};

std::string expected_dollar(char c) {
  return std::string("ERR Protocol error: expected '$', got '") + c + "'";
}

}  // namespace

TEST_CASE("parser: every protocol error has Redis's exact text") {
  const std::string digits64k(65536, '1');
  const std::string x_ex = expected_dollar('x');
  const std::string cr_ex = expected_dollar('\r');
  const std::vector<ErrorCase> cases = {
      {"non-numeric count", "*abc\r\n", std::string(err::kProtoInvalidMbulk)},
      {"bare minus count", "*-\r\n", std::string(err::kProtoInvalidMbulk)},
      {"empty count", "*\r\n", std::string(err::kProtoInvalidMbulk)},
      {"count with plus", "*+1\r\n", std::string(err::kProtoInvalidMbulk)},
      {"count with leading zero", "*01\r\n", std::string(err::kProtoInvalidMbulk)},
      {"count > INT_MAX", "*2147483648\r\n", std::string(err::kProtoInvalidMbulk)},
      {"count overflows int64", "*99999999999999999999\r\n", std::string(err::kProtoInvalidMbulk)},
      {"bulk without '$'", "*1\r\nx3\r\nGET\r\n", x_ex},
      {"empty bulk header", "*1\r\n\r\n", cr_ex},
      {"second bulk without '$'", "*2\r\n$3\r\nGET\r\n:1\r\n", expected_dollar(':')},
      {"negative bulk length", "*1\r\n$-1\r\n", std::string(err::kProtoInvalidBulk)},
      {"non-numeric bulk length", "*1\r\n$abc\r\n", std::string(err::kProtoInvalidBulk)},
      {"empty bulk length", "*1\r\n$\r\n", std::string(err::kProtoInvalidBulk)},
      {"bulk length with space", "*1\r\n$ 3\r\n", std::string(err::kProtoInvalidBulk)},
      {"bulk length > proto-max-bulk-len", "*1\r\n$536870913\r\n",
       std::string(err::kProtoInvalidBulk)},
      {"bulk length 2^31", "*1\r\n$2147483648\r\n", std::string(err::kProtoInvalidBulk)},
      {"too big mbulk count string", "*" + digits64k, std::string(err::kProtoBigMbulkCount)},
      {"too big bulk count string", "*1\r\n$" + digits64k, std::string(err::kProtoBigBulkCount)},
      {"too big bulk count string (no '$')", "*1\r\n" + std::string(65537, 'x'),
       std::string(err::kProtoBigBulkCount)},
      {"too big inline request", std::string(65537, 'P'), std::string(err::kProtoBigInline)},
      {"unbalanced double quote", "SET \"a\r\n", std::string(err::kProtoUnbalanced)},
      {"unbalanced single quote", "SET 'a\r\n", std::string(err::kProtoUnbalanced)},
      {"closing quote not followed by space", "SET \"a\"b\r\n", std::string(err::kProtoUnbalanced)},
      {"unauthenticated multibulk length", "*11\r\n", std::string(err::kProtoUnauthMbulk), false},
      {"unauthenticated bulk length", "*1\r\n$16385\r\n", std::string(err::kProtoUnauthBulk),
       false},
  };
  for (const ErrorCase& c : cases) {
    INFO(c.name);
    // Whole, and one byte at a time: the error is the same however the bytes arrive.
    std::vector<size_t> every;
    for (size_t i = 1; i < c.bytes.size() && c.bytes.size() < 1000; ++i) every.push_back(i);
    for (const auto& cuts : {std::vector<size_t>{}, every}) {
      RequestParser p;
      std::string error;
      auto parsed = feed(p, c.bytes, cuts, &error, c.authenticated);
      CHECK(parsed.empty());
      CHECK(error == c.error);
    }
  }
}

TEST_CASE("parser: limits at their exact edges") {
  RequestParser p;
  size_t consumed;
  SECTION("64 KiB without CRLF still waits; one byte more is an error") {
    std::string inline_req(65536, 'P');
    CHECK(p.parse(inline_req.data(), inline_req.size(), true, &consumed) == ParseStatus::kNeedMore);
    inline_req += 'P';
    CHECK(p.parse(inline_req.data(), inline_req.size(), true, &consumed) == ParseStatus::kError);
    CHECK(p.error() == err::kProtoBigInline);
    std::string count = "*" + std::string(65535, '1');
    CHECK(p.parse(count.data(), count.size(), true, &consumed) == ParseStatus::kNeedMore);
  }
  SECTION("proto-max-bulk-len is configurable") {
    ParserLimits lim;
    lim.max_bulk_len = 1024 * 1024;
    p.set_limits(lim);
    std::string ok = "*1\r\n$1048576\r\n";
    CHECK(p.parse(ok.data(), ok.size(), true, &consumed) == ParseStatus::kNeedMore);
    p.reset();
    std::string bad = "*1\r\n$1048577\r\n";
    CHECK(p.parse(bad.data(), bad.size(), true, &consumed) == ParseStatus::kError);
    CHECK(p.error() == err::kProtoInvalidBulk);
  }
  SECTION("unauthenticated clients: 10 arguments and 16 KiB are still fine") {
    std::string req = multibulk({"AUTH", std::string(16384, 'p')});
    CHECK(p.parse(req.data(), req.size(), false, &consumed) == ParseStatus::kCommand);
    std::string ten = "*10\r\n";
    CHECK(p.parse(ten.data(), ten.size(), false, &consumed) == ParseStatus::kNeedMore);
    p.reset();
    // The same request that an unauthenticated client may not send is fine once authenticated.
    std::string eleven = "*11\r\n";
    CHECK(p.parse(eleven.data(), eleven.size(), true, &consumed) == ParseStatus::kNeedMore);
  }
  SECTION("a count <= 0 is an empty request, as in Redis") {
    std::string req = "*-5\r\n*0\r\n";
    CHECK(feed_whole(req) == std::vector<Parsed>{empty(), empty()});
  }
}

TEST_CASE("parser: after kError the parser starts afresh") {
  RequestParser p;
  std::string error;
  // An error in the middle of a multibulk request (state has been built up)...
  feed(p, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n#1\r\n", {6, 15}, &error);
  CHECK(error == expected_dollar('#'));
  // ...leaves nothing behind: the next bytes are a new request.
  CHECK(feed(p, "*1\r\n$4\r\nPING\r\n", {3}) == std::vector<Parsed>{cmd({"PING"})});
  feed(p, "\"unbalanced\r\n", {}, &error);
  CHECK(error == err::kProtoUnbalanced);
  CHECK(feed(p, "PING\r\n", {}) == std::vector<Parsed>{cmd({"PING"})});
}

TEST_CASE("parser: reset() forgets a partial request") {
  RequestParser p;
  size_t consumed;
  std::string partial = "*2\r\n$3\r\nGET\r\n$5\r\nab";
  REQUIRE(p.parse(partial.data(), partial.size(), true, &consumed) == ParseStatus::kNeedMore);
  p.reset();
  std::string next = "PING\r\n";
  REQUIRE(p.parse(next.data(), next.size(), true, &consumed) == ParseStatus::kCommand);
  CHECK(p.args().size() == 1);
  CHECK(p.args()[0] == "PING");
}

// ---------------------------------------------------------------- writer

namespace {

// hiredis 0.14's reader: the reference for RESP2 (it predates RESP3).
struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};

redisReply* read_one(redisReader* reader) {
  void* reply = nullptr;
  REQUIRE(redisReaderGetReply(reader, &reply) == REDIS_OK);
  return static_cast<redisReply*>(reply);
}

// A strict RESP3 decoder for the test: returns the bytes one value spans, or 0 if malformed.
size_t resp3_value(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t eol = s.find("\r\n", pos);
  if (eol == std::string_view::npos) return 0;
  char t = s[pos];
  std::string_view line = s.substr(pos + 1, eol - pos - 1);
  size_t after = eol + 2;
  auto number = [&](int64_t* n) {
    if (line.empty()) return false;
    size_t i = line[0] == '-' ? 1 : 0;
    if (i == line.size()) return false;
    for (size_t j = i; j < line.size(); ++j)
      if (line[j] < '0' || line[j] > '9') return false;
    *n = std::stoll(std::string(line));
    return true;
  };
  int64_t n = 0;
  switch (t) {
    case '+':
    case '-':
      return after - pos;
    case ':':
      return number(&n) ? after - pos : 0;
    case '_':
      return line.empty() ? after - pos : 0;
    case '#':
      return line == "t" || line == "f" ? after - pos : 0;
    case ',': {
      if (line == "inf" || line == "-inf" || line == "nan") return after - pos;
      char* end = nullptr;
      std::string l(line);
      std::strtod(l.c_str(), &end);
      return !l.empty() && *end == '\0' ? after - pos : 0;
    }
    case '$':
    case '=': {
      if (!number(&n) || n < 0) return 0;
      if (after + static_cast<size_t>(n) + 2 > s.size()) return 0;
      if (s.substr(after + static_cast<size_t>(n), 2) != "\r\n") return 0;
      if (t == '=' && (n < 4 || s[after + 3] != ':')) return 0;
      return after + static_cast<size_t>(n) + 2 - pos;
    }
    case '*':
    case '~':
    case '%': {
      if (!number(&n) || n < 0) return 0;
      int64_t elements = t == '%' ? 2 * n : n;
      size_t p = after;
      for (int64_t i = 0; i < elements; ++i) {
        size_t len = resp3_value(s, p);
        if (len == 0) return 0;
        p += len;
      }
      return p - pos;
    }
  }
  return 0;
}

// Writes the same sequence of replies in a protocol.
std::string write_all(int protocol) {
  std::string out;
  Writer w(&out, protocol);
  w.ok();
  w.simple("PONG");
  w.error("ERR bad\r\nthing\n");
  w.integer(-42);
  w.integer(INT64_MIN);
  w.bulk(std::string("a\0\r\nb", 5));
  w.bulk("");
  w.null();
  w.null_array();
  w.array(2);
  w.bulk("x");
  w.integer(1);
  w.map(2);
  w.bulk("k1");
  w.bulk("v1");
  w.bulk("k2");
  w.array(0);
  w.set(2);
  w.simple("a");
  w.simple("b");
  w.dbl(1.5);
  w.dbl(-0.25);
  w.dbl(1e300);
  w.boolean(true);
  w.boolean(false);
  w.verbatim("line1\r\nline2");
  return out;
}

}  // namespace

TEST_CASE("writer: RESP2 forms, exact bytes") {
  std::string out;
  Writer w(&out, 2);
  w.null();
  CHECK(out == "$-1\r\n");
  out.clear();
  w.null_array();
  CHECK(out == "*-1\r\n");
  out.clear();
  w.map(2);
  CHECK(out == "*4\r\n");
  out.clear();
  w.set(3);
  CHECK(out == "*3\r\n");
  out.clear();
  w.dbl(10.5);
  CHECK(out == "$4\r\n10.5\r\n");
  out.clear();
  w.boolean(true);
  w.boolean(false);
  CHECK(out == ":1\r\n:0\r\n");
  out.clear();
  w.verbatim("hello");
  CHECK(out == "$5\r\nhello\r\n");
  out.clear();
  w.error("ERR a\r\nb");
  CHECK(out == "-ERR a  b\r\n");
}

TEST_CASE("writer: RESP3 forms, exact bytes") {
  std::string out;
  Writer w(&out, 3);
  w.null();
  CHECK(out == "_\r\n");
  out.clear();
  w.null_array();
  CHECK(out == "_\r\n");
  out.clear();
  w.map(2);
  CHECK(out == "%2\r\n");
  out.clear();
  w.set(3);
  CHECK(out == "~3\r\n");
  out.clear();
  w.dbl(10.5);
  CHECK(out == ",10.5\r\n");
  out.clear();
  w.dbl(std::numeric_limits<double>::infinity());
  w.dbl(-std::numeric_limits<double>::infinity());
  CHECK(out == ",inf\r\n,-inf\r\n");
  out.clear();
  w.boolean(true);
  w.boolean(false);
  CHECK(out == "#t\r\n#f\r\n");
  out.clear();
  w.verbatim("hello");
  CHECK(out == "=9\r\ntxt:hello\r\n");
  out.clear();
  w.verbatim("x", "mkd");
  CHECK(out == "=5\r\nmkd:x\r\n");
}

TEST_CASE("writer: switching protocol changes only the RESP3-specific forms") {
  std::string out;
  Writer w(&out, 2);
  CHECK(w.protocol() == 2);
  w.set_protocol(3);
  CHECK(w.protocol() == 3);
  w.bulk("v");
  w.integer(7);
  w.array(1);
  w.simple("OK");
  CHECK(out == "$1\r\nv\r\n:7\r\n*1\r\n+OK\r\n");
  std::string other;
  w.set_buffer(&other);
  w.null();
  CHECK(other == "_\r\n");
  CHECK(w.buffer() == &other);
}

TEST_CASE("writer: RESP2 output is read back by hiredis's redisReader") {
  std::string out = write_all(2);
  std::unique_ptr<redisReader, ReaderDeleter> reader(redisReaderCreate());
  // Fed in two halves, to exercise hiredis's incremental path too.
  REQUIRE(redisReaderFeed(reader.get(), out.data(), out.size() / 2) == REDIS_OK);
  REQUIRE(redisReaderFeed(reader.get(), out.data() + out.size() / 2, out.size() - out.size() / 2) ==
          REDIS_OK);
  std::vector<redisReply*> replies;
  for (;;) {
    redisReply* r = read_one(reader.get());
    if (r == nullptr) break;
    replies.push_back(r);
  }
  REQUIRE(replies.size() == 18);
  auto str = [](redisReply* r) { return std::string(r->str, r->len); };
  CHECK(replies[0]->type == REDIS_REPLY_STATUS);
  CHECK(str(replies[0]) == "OK");
  CHECK(str(replies[1]) == "PONG");
  CHECK(replies[2]->type == REDIS_REPLY_ERROR);
  CHECK(str(replies[2]) == "ERR bad  thing ");
  CHECK(replies[3]->type == REDIS_REPLY_INTEGER);
  CHECK(replies[3]->integer == -42);
  CHECK(replies[4]->integer == INT64_MIN);
  CHECK(replies[5]->type == REDIS_REPLY_STRING);
  CHECK(str(replies[5]) == std::string("a\0\r\nb", 5));
  CHECK(str(replies[6]).empty());
  CHECK(replies[7]->type == REDIS_REPLY_NIL);
  CHECK(replies[8]->type == REDIS_REPLY_NIL);
  REQUIRE(replies[9]->type == REDIS_REPLY_ARRAY);
  REQUIRE(replies[9]->elements == 2);
  CHECK(str(replies[9]->element[0]) == "x");
  CHECK(replies[9]->element[1]->integer == 1);
  REQUIRE(replies[10]->type == REDIS_REPLY_ARRAY);  // map: flat array of 2n
  REQUIRE(replies[10]->elements == 4);
  CHECK(str(replies[10]->element[2]) == "k2");
  CHECK(replies[10]->element[3]->type == REDIS_REPLY_ARRAY);
  CHECK(replies[10]->element[3]->elements == 0);
  REQUIRE(replies[11]->type == REDIS_REPLY_ARRAY);  // set
  CHECK(replies[11]->elements == 2);
  CHECK(str(replies[12]) == "1.5");  // doubles are bulk strings
  CHECK(str(replies[13]) == "-0.25");
  CHECK(str(replies[14]) == "1.0000000000000001e+300");
  CHECK(replies[15]->integer == 1);  // booleans are integers
  CHECK(replies[16]->integer == 0);
  CHECK(str(replies[17]) == "line1\r\nline2");  // verbatim is a bulk string
  for (redisReply* r : replies) freeReplyObject(r);
}

TEST_CASE("writer: RESP3 output is well-formed value by value") {
  std::string out = write_all(3);
  size_t pos = 0, values = 0;
  while (pos < out.size()) {
    size_t len = resp3_value(out, pos);
    INFO("at byte " << pos << ": " << out.substr(pos, 20));
    REQUIRE(len > 0);
    pos += len;
    ++values;
  }
  CHECK(values == 18);
  CHECK(out.find("%2\r\n$2\r\nk1\r\n$2\r\nv1\r\n$2\r\nk2\r\n*0\r\n") != std::string::npos);
  CHECK(out.find("~2\r\n+a\r\n+b\r\n") != std::string::npos);
  CHECK(out.find(",1.5\r\n,-0.25\r\n,1.0000000000000001e+300\r\n#t\r\n#f\r\n") !=
        std::string::npos);
  CHECK(out.find("=16\r\ntxt:line1\r\nline2\r\n") != std::string::npos);
  CHECK(out.find("$-1") == std::string::npos);
  // hiredis 0.14 knows no RESP3: it must reject the first RESP3-only value, not misread it.
  std::unique_ptr<redisReader, ReaderDeleter> reader(redisReaderCreate());
  std::string map_only = "%1\r\n+a\r\n+b\r\n";
  REQUIRE(redisReaderFeed(reader.get(), map_only.data(), map_only.size()) == REDIS_OK);
  void* reply = nullptr;
  CHECK(redisReaderGetReply(reader.get(), &reply) == REDIS_ERR);
}
