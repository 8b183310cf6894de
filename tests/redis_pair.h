// Differential testing against Redis: a ringkv-server and a real redis-server side by side, each
// driven by a raw RESP client that returns reply bytes exactly as sent, so that two replies can
// be compared byte for byte (RESP2 and RESP3). Used by commands_test and introspection_test.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/strings.h"
#include "raw_client.h"
#include "server_harness.h"

namespace ringkv::testing {

using Args = std::vector<std::string>;

inline std::string encode(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Pre-encoded expected replies, for explicit assertions.
inline std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
inline std::string integer(int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
inline std::string err(std::string_view text) { return "-" + std::string(text) + "\r\n"; }
inline std::string arr(std::initializer_list<std::string> items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& i : items) out += i;
  return out;
}
inline const std::string kOk = "+OK\r\n";
inline const std::string kNil = "$-1\r\n";
inline const std::string kNull3 = "_\r\n";

// Makes CR/LF and binary bytes visible in failure messages.
inline std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 32 || c >= 127) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

inline std::string show(const Args& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + printable(a);
  return out;
}

// A RawClient that speaks in whole commands and replies.
class Client : public RawClient {
 public:
  explicit Client(int port) : RawClient(port) {
    if (!connected()) throw std::runtime_error("connect to port " + std::to_string(port));
  }

  void send(const Args& args) { send_all(encode(args)); }
  void send_raw(std::string_view data) { send_all(data); }
  // The next reply's bytes, or "" if none is complete within `timeout`.
  std::string read(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return read_replies(1, timeout);
  }
  std::string call(const Args& args) {
    send(args);
    return read();
  }
  // True when the server closed the connection within `timeout` (what came first stays in
  // buffer()).
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    read_until([](const std::string&) { return false; }, timeout);
    return closed();
  }
};

// The two servers, "databases 1" for Redis like ringkv.
struct Pair {
  explicit Pair(Args ringkv_flags = {}) : ringkv(std::move(ringkv_flags)) {}
  ServerProcess redis{{"--databases", "1"}, REDIS_SERVER_PATH};
  ServerProcess ringkv;
  Client r{redis.port()};
  Client k{ringkv.port()};

  // Sends `args` to both and checks the replies are identical; returns ringkv's.
  std::string both(const Args& args) {
    const std::string want = r.call(args);
    const std::string got = k.call(args);
    INFO("command: " << show(args));
    INFO("redis:  " << printable(want));
    INFO("ringkv: " << printable(got));
    CHECK(!want.empty());
    CHECK(got == want);
    return got;
  }

  // Runs every line of `text` (redis-cli quoting: "a b", '\x00'...) through both().
  void script(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      Args args;
      REQUIRE(ringkv::split_args(line, &args));
      if (!args.empty()) both(args);
    }
  }

  // Sends to both without comparing (for replies that legitimately differ, like HELLO's id).
  void each(const Args& args) {
    r.call(args);
    k.call(args);
  }
  void resp3() { each({"HELLO", "3"}); }
};

}  // namespace ringkv::testing
