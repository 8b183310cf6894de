// Tests for src/config: every directive type, files and flags with errors that name the directive,
// the value and why, run-time changes and their listeners, and conf/ringkv.conf against the table.
#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/strings.h"

#ifndef RINGKV_CONF_PATH
#error "RINGKV_CONF_PATH must point at conf/ringkv.conf"
#endif

using namespace ringkv;
using config::Config;

namespace {

// A file in /tmp with the given contents, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    char name[] = "/tmp/ringkv_config_test_XXXXXX";
    int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::close(fd);
    path_ = name;
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Sets one value and returns the error message ("" on success).
std::string set_error(Config& c, std::string_view name, std::vector<std::string> values,
                      bool at_runtime = false) {
  Status st = c.set(name, values, at_runtime);
  return st.is_ok() ? std::string() : st.message();
}

}  // namespace

// ---------------------------------------------------------------- the table and defaults

TEST_CASE("config: a fresh Config holds every directive's default") {
  Config c;
  std::set<std::string> names;
  for (const config::Directive& d : config::directives()) {
    INFO(d.name);
    CHECK(names.insert(std::string(d.name)).second);  // no directive twice
    CHECK(c.get(d.name) == d.default_value);
    CHECK(config::find_directive(d.name) == &d);
    CHECK(config::find_directive(to_upper(d.name)) == &d);
    CHECK_FALSE(d.doc.empty());
    // The default must itself be a valid value.
    Config fresh;
    std::vector<std::string> values;
    split_args(d.default_value, &values);
    if (values.empty()) values.push_back("");
    CHECK(set_error(fresh, d.name, values) == "");
    CHECK(fresh.get(d.name) == d.default_value);
  }
  CHECK(config::find_directive("no-such-directive") == nullptr);
  CHECK(c.get("port") == "6379");
  CHECK(c.get("bind") == "127.0.0.1");
  CHECK(c.get("io-threads") == "1");
  CHECK(c.non_default_lines().empty());
}

// ---------------------------------------------------------------- each type

TEST_CASE("config: booleans") {
  Config c;
  CHECK(set_error(c, "daemonize", {"YES"}) == "");
  CHECK(c.get("daemonize") == "yes");
  CHECK(c.get_bool("daemonize"));
  CHECK(set_error(c, "daemonize", {"no"}) == "");
  CHECK_FALSE(c.get_bool("daemonize"));
  CHECK(set_error(c, "daemonize", {"maybe"}) == "argument must be 'yes' or 'no'");
  CHECK(set_error(c, "daemonize", {"1"}) == "argument must be 'yes' or 'no'");
  CHECK(c.get("daemonize") == "no");
  // Honest about what is not there: no append-only file.
  CHECK(contains(set_error(c, "appendonly", {"yes"}), "only valid value is no"));
  CHECK(set_error(c, "appendonly", {"no"}) == "");
}

TEST_CASE("config: integers with bounds") {
  Config c;
  CHECK(set_error(c, "port", {"7000"}) == "");
  CHECK(c.get_int("port") == 7000);
  CHECK(set_error(c, "port", {"0"}) == "");
  CHECK(set_error(c, "port", {"65535"}) == "");
  CHECK(set_error(c, "port", {"65536"}) == "argument must be between 0 and 65535 inclusive");
  CHECK(set_error(c, "port", {"-1"}) == "argument must be between 0 and 65535 inclusive");
  CHECK(set_error(c, "port", {"abc"}) == "argument couldn't be parsed into an integer");
  CHECK(set_error(c, "port", {""}) == "argument couldn't be parsed into an integer");
  CHECK(set_error(c, "port", {"70 00"}) == "argument couldn't be parsed into an integer");
  CHECK(set_error(c, "port", {"1", "2"}) == "wrong number of arguments: expected one value");
  CHECK(c.get("port") == "65535");
  CHECK(set_error(c, "hz", {"501"}) == "argument must be between 1 and 500 inclusive");
  CHECK(set_error(c, "slowlog-log-slower-than", {"-1"}) == "");
  CHECK(c.get_int("slowlog-log-slower-than") == -1);
  CHECK(set_error(c, "store-stripes", {"1024"}) == "");
  CHECK(set_error(c, "store-stripes", {"1000"}) == "argument must be a power of two");
  CHECK(c.get("store-stripes") == "1024");
}

TEST_CASE("config: memory values with units") {
  Config c;
  const std::vector<std::pair<std::string, std::string>> ok = {
      {"1gb", "1073741824"}, {"1GB", "1073741824"}, {"10mb", "10485760"},
      {"5k", "5000"},        {"5kb", "5120"},       {"2m", "2000000"},
      {"3g", "3000000000"},  {"100", "100"},        {"0", "0"},
      {"7b", "7"},
  };
  for (const auto& [in, out] : ok) {
    INFO(in);
    CHECK(set_error(c, "maxmemory", {in}) == "");
    CHECK(c.get("maxmemory") == out);
  }
  for (const char* bad : {"lots", "-1", "1.5gb", "gb", "", "10 mb", "1tb", "99999999999gb"}) {
    INFO(bad);
    CHECK(set_error(c, "maxmemory", {bad}) == "argument must be a memory value");
  }
  CHECK(c.get("maxmemory") == "7");
  CHECK(set_error(c, "proto-max-bulk-len", {"1000"}) ==
        "argument must be a memory value of at least 1048576 bytes");
  CHECK(set_error(c, "proto-max-bulk-len", {"1mb"}) == "");
  CHECK(c.get_int("proto-max-bulk-len") == 1048576);
  CHECK(config::format_memory(1073741824) == "1073741824");
}

TEST_CASE("config: enums") {
  Config c;
  CHECK(set_error(c, "maxmemory-policy", {"ALLKEYS-LRU"}) == "");
  CHECK(c.get("maxmemory-policy") == "allkeys-lru");
  for (const char* p : {"noeviction", "allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu",
                        "allkeys-random", "volatile-random", "volatile-ttl"}) {
    CHECK(set_error(c, "maxmemory-policy", {p}) == "");
    CHECK(c.get("maxmemory-policy") == p);
  }
  std::string e = set_error(c, "maxmemory-policy", {"nope"});
  CHECK(contains(e, "argument(s) must be one of the following: "));
  CHECK(contains(e, "noeviction"));
  CHECK(contains(e, "volatile-ttl"));
  CHECK(c.get("maxmemory-policy") == "volatile-ttl");
  CHECK(set_error(c, "loglevel", {"warning"}) == "");
  CHECK(contains(set_error(c, "loglevel", {"loud"}), "debug, verbose, notice, warning, nothing"));
}

TEST_CASE("config: strings") {
  Config c;
  CHECK(set_error(c, "requirepass", {"s3cr et\"'"}) == "");
  CHECK(c.get("requirepass") == "s3cr et\"'");
  CHECK(set_error(c, "requirepass", {""}) == "");
  CHECK(c.get("requirepass").empty());
  CHECK(set_error(c, "discovery", {"etcd://127.0.0.1:2379/ringkv"}) == "");
  CHECK(set_error(c, "discovery", {"ringkv://10.0.0.1:6379"}) == "");
  CHECK(set_error(c, "discovery", {"local"}) == "");
  CHECK(set_error(c, "discovery", {"zk://x"}) ==
        "must be local, ringkv://host:port or etcd://host:port/prefix");
  CHECK(c.get("discovery") == "local");
}

TEST_CASE("config: bind lists") {
  Config c;
  CHECK(set_error(c, "bind", {"127.0.0.1", "::1"}) == "");
  CHECK(c.get("bind") == "127.0.0.1 ::1");
  // One argument holding several addresses is split, as Redis does for multi-argument directives.
  CHECK(set_error(c, "bind", {"0.0.0.0 ::"}) == "");
  CHECK(c.get("bind") == "0.0.0.0 ::");
  CHECK(set_error(c, "bind", {}) == "needs at least one address");
  CHECK(set_error(c, "bind", {""}) == "an address is empty");
  CHECK(c.get("bind") == "0.0.0.0 ::");
}

TEST_CASE("config: client-output-buffer-limit groups") {
  Config c;
  CHECK(set_error(c, "client-output-buffer-limit", {"normal", "1mb", "512kb", "1"}) == "");
  CHECK(c.get("client-output-buffer-limit") ==
        "normal 1048576 524288 1 replica 268435456 67108864 60 pubsub 33554432 8388608 60");
  // One quoted argument, as on the command line: --client-output-buffer-limit "normal 0 0 0".
  CHECK(set_error(c, "client-output-buffer-limit", {"normal 2mb 1mb 5"}) == "");
  CHECK(c.get("client-output-buffer-limit") ==
        "normal 2097152 1048576 5 replica 268435456 67108864 60 pubsub 33554432 8388608 60");
  // Setting one class keeps the others (a config file has one line per class).
  CHECK(set_error(c, "client-output-buffer-limit", {"pubsub", "32mb", "8mb", "30"}) == "");
  CHECK(c.get("client-output-buffer-limit") ==
        "normal 2097152 1048576 5 replica 268435456 67108864 60 pubsub 33554432 8388608 30");
  // "slave" is Redis's old name of the replica class; several groups in one go.
  CHECK(set_error(c, "client-output-buffer-limit",
                  {"slave", "1gb", "0", "0", "normal", "0", "0", "0"}) == "");
  CHECK(c.get("client-output-buffer-limit") ==
        "normal 0 0 0 replica 1073741824 0 0 pubsub 33554432 8388608 30");
  const std::string before = c.get("client-output-buffer-limit");
  CHECK(contains(set_error(c, "client-output-buffer-limit", {"normal", "1mb", "1mb"}),
                 "wrong number of arguments"));
  CHECK(set_error(c, "client-output-buffer-limit", {"vip", "1", "1", "1"}) ==
        "invalid client class 'vip': expected normal, replica or pubsub");
  CHECK(set_error(c, "client-output-buffer-limit", {"normal", "lots", "1", "1"}) ==
        "limits of class 'normal' must be memory values and a number of seconds");
  CHECK(set_error(c, "client-output-buffer-limit", {"normal", "1", "1", "-1"}) ==
        "limits of class 'normal' must be memory values and a number of seconds");
  CHECK(c.get("client-output-buffer-limit") == before);
}

TEST_CASE("config: save accepts only the empty value") {
  Config c;
  CHECK(set_error(c, "save", {""}) == "");
  CHECK(contains(set_error(c, "save", {"3600", "1"}), "keeps no snapshots"));
  CHECK(contains(set_error(c, "save", {"3600 1"}), "keeps no snapshots"));
}

TEST_CASE("config: unknown directives and case-insensitive names") {
  Config c;
  CHECK(set_error(c, "no-such-thing", {"1"}) == "unknown directive 'no-such-thing'");
  CHECK(set_error(c, "MaxMemory", {"1mb"}) == "");
  CHECK(c.get("maxmemory") == "1048576");
  CHECK(c.get("MAXMEMORY") == "1048576");
}

// ---------------------------------------------------------------- run time

TEST_CASE("config: immutable directives refuse run-time changes") {
  Config c;
  Status st = c.set("port", "7000", true);
  CHECK_FALSE(st.is_ok());
  CHECK(st.code() == Code::kFailedPrecondition);
  CHECK(st.message() == "can't set immutable config 'port'");
  CHECK(c.get("port") == "6379");
  for (const config::Directive& d : config::directives()) {
    if (d.runtime) continue;
    INFO(d.name);
    CHECK(c.set(d.name, std::string(d.default_value), true).code() == Code::kFailedPrecondition);
  }
  // At start-up they are fine; run-time directives are fine at any time.
  CHECK(c.set("port", "7000", false).is_ok());
  CHECK(c.get("port") == "7000");
  CHECK(c.set("maxmemory", "1mb", true).is_ok());
  CHECK(c.set("io-threads", "4", true).code() == Code::kFailedPrecondition);
}

TEST_CASE("config: match() finds directives by glob, sorted by name") {
  Config c;
  auto names = [&](std::string_view pattern) {
    std::vector<std::string> out;
    for (auto& [k, v] : c.match(pattern)) out.push_back(k);
    return out;
  };
  CHECK(names("maxmemory*") ==
        std::vector<std::string>{"maxmemory", "maxmemory-policy", "maxmemory-samples"});
  CHECK(names("MAXMEMORY") == std::vector<std::string>{"maxmemory"});
  CHECK(names("maxmemory-p?licy") == std::vector<std::string>{"maxmemory-policy"});
  CHECK(names("[pq]ort") == std::vector<std::string>{"port"});
  CHECK(names("nothing-like-this*").empty());
  auto all = c.match("*");
  CHECK(all.size() == config::directives().size());
  CHECK(std::is_sorted(all.begin(), all.end()));
  c.set("maxmemory", "2mb", true);
  auto mm = c.match("maxmemory");
  REQUIRE(mm.size() == 1);
  CHECK(mm[0].second == "2097152");
}

TEST_CASE("config: on_change listeners see the normalized value and may refuse it") {
  Config c;
  std::vector<std::string> seen;
  c.on_change("maxmemory", [&](const std::string& v) {
    seen.push_back(v);
    int64_t n = 0;
    parse_int64(v, &n);
    if (n > 100 * 1024 * 1024) return Status::invalid_argument("too much for this machine");
    return Status::ok();
  });
  CHECK(c.set("maxmemory", "10mb", true).is_ok());
  CHECK(c.get("maxmemory") == "10485760");
  Status st = c.set("maxmemory", "1gb", true);
  CHECK_FALSE(st.is_ok());
  CHECK(st.message() == "too much for this machine");
  CHECK(c.get("maxmemory") == "10485760");  // the old value is back
  CHECK(seen == std::vector<std::string>{"10485760", "1073741824"});
  // An invalid value never reaches the listener.
  CHECK_FALSE(c.set("maxmemory", "lots", true).is_ok());
  CHECK(seen.size() == 2);
  // Listeners of other directives are not called.
  CHECK(c.set("hz", "20", true).is_ok());
  CHECK(seen.size() == 2);
  // A second listener that refuses restores the value too.
  c.on_change("maxmemory", [](const std::string& v) {
    return v == "0" ? Status::invalid_argument("never unlimited") : Status::ok();
  });
  CHECK(c.set("maxmemory", "0", true).message() == "never unlimited");
  CHECK(c.get("maxmemory") == "10485760");
}

TEST_CASE("config: non_default_lines() lists changes and loads back to the same values") {
  Config c;
  REQUIRE(c.set("maxmemory", "1mb", false).is_ok());
  REQUIRE(c.set("port", "7001", false).is_ok());
  REQUIRE(c.set("requirepass", "pass word", false).is_ok());
  REQUIRE(c.set("bind", std::vector<std::string>{"127.0.0.1", "::1"}, false).is_ok());
  REQUIRE(c.set("client-output-buffer-limit", "normal 1mb 512kb 1", false).is_ok());
  REQUIRE(c.set("hz", "10", false).is_ok());  // the default: not listed
  auto lines = c.non_default_lines();
  CHECK(lines.size() == 5);
  CHECK(std::find(lines.begin(), lines.end(), "maxmemory 1048576") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "port 7001") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "requirepass \"pass word\"") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "bind 127.0.0.1 ::1") != lines.end());
  std::string file;
  for (const auto& l : lines) file += l + "\n";
  TempFile f(file);
  Config back;
  Status st = back.load_file(f.path());
  INFO(st.message());
  REQUIRE(st.is_ok());
  for (const config::Directive& d : config::directives()) {
    INFO(d.name);
    CHECK(back.get(d.name) == c.get(d.name));
  }
}

TEST_CASE("config: non_default_lines() quotes values that need it") {
  Config c;
  REQUIRE(c.set("requirepass", "a\"b 'c' \\d", false).is_ok());
  REQUIRE(c.set("logfile", "/tmp/a file.log", false).is_ok());
  std::string file;
  for (const auto& l : c.non_default_lines()) file += l + "\n";
  TempFile f(file);
  Config back;
  Status st = back.load_file(f.path());
  INFO(file);
  INFO(st.message());
  REQUIRE(st.is_ok());
  CHECK(back.get("requirepass") == "a\"b 'c' \\d");
  CHECK(back.get("logfile") == "/tmp/a file.log");
}

// ---------------------------------------------------------------- files

TEST_CASE("config: load_file reads redis.conf syntax") {
  TempFile f(
      "# ringkv test configuration\n"
      "\n"
      "   # an indented comment\n"
      "port 7002\n"
      "MAXMEMORY 64mb\r\n"  // CRLF line ending, upper-case name
      "maxmemory-policy allkeys-lru   # no trailing comments in redis.conf: see below\n"
      "requirepass \"with space\"\n"
      "logfile 'single quoted'\n"
      "bind 127.0.0.1 ::1\n"
      "client-output-buffer-limit normal 1mb 512kb 1\n"
      "client-output-buffer-limit pubsub 64mb 16mb 90\n"
      "save \"\"\n"
      "\t hz 20\n");
  Config c;
  Status st = c.load_file(f.path());
  // Like Redis, a '#' after a value is not a comment: the line has too many arguments.
  CHECK_FALSE(st.is_ok());
  CHECK(contains(st.message(), ":6: "));
  CHECK(contains(st.message(), "maxmemory-policy allkeys-lru"));
  CHECK(contains(st.message(), "wrong number of arguments"));

  TempFile good(
      "# ringkv test configuration\n"
      "\n"
      "   # an indented comment\n"
      "port 7002\n"
      "MAXMEMORY 64mb\r\n"
      "maxmemory-policy allkeys-lru\n"
      "requirepass \"with space\"\n"
      "logfile 'single quoted'\n"
      "bind 127.0.0.1 ::1\n"
      "client-output-buffer-limit normal 1mb 512kb 1\n"
      "client-output-buffer-limit pubsub 64mb 16mb 90\n"
      "save \"\"\n"
      "\t hz 20\n");
  Config g;
  st = g.load_file(good.path());
  INFO(st.message());
  REQUIRE(st.is_ok());
  CHECK(g.file_path() == good.path());
  CHECK(g.get("port") == "7002");
  CHECK(g.get("maxmemory") == "67108864");
  CHECK(g.get("maxmemory-policy") == "allkeys-lru");
  CHECK(g.get("requirepass") == "with space");
  CHECK(g.get("logfile") == "single quoted");
  CHECK(g.get("bind") == "127.0.0.1 ::1");
  CHECK(g.get("client-output-buffer-limit") ==
        "normal 1048576 524288 1 replica 268435456 67108864 60 pubsub 67108864 16777216 90");
  CHECK(g.get("save").empty());
  CHECK(g.get("hz") == "20");
}

TEST_CASE("config: load_file errors name the file, line, directive, value and why") {
  struct Bad {
    std::string text;
    std::vector<std::string> says;
  };
  const std::vector<Bad> cases = {
      {"port 7000\nno-such-directive 1\n", {":2: ", "no-such-directive", "unknown directive"}},
      {"maxmemory lots\n", {":1: ", "maxmemory lots", "argument must be a memory value"}},
      {"port 99999\n", {"port 99999", "between 0 and 65535"}},
      {"maxmemory-policy nope\n", {"maxmemory-policy nope", "must be one of the following"}},
      {"daemonize perhaps\n", {"daemonize perhaps", "'yes' or 'no'"}},
      {"\n\nrequirepass \"open\n", {":3: ", "requirepass \"open", "unbalanced quotes"}},
      {"port\n", {":1: ", "port", "wrong number of arguments"}},
  };
  for (const Bad& b : cases) {
    TempFile f(b.text);
    Config c;
    Status st = c.load_file(f.path());
    INFO(b.text);
    REQUIRE_FALSE(st.is_ok());
    CHECK(contains(st.message(), f.path()));
    for (const auto& s : b.says) {
      INFO("expecting: " << s << " in: " << st.message());
      CHECK(contains(st.message(), s));
    }
  }
  Config c;
  Status st = c.load_file("/nonexistent/ringkv.conf");
  CHECK_FALSE(st.is_ok());
  CHECK(st.message() == "can't open config file '/nonexistent/ringkv.conf'");
}

// ---------------------------------------------------------------- flags

TEST_CASE("config: load_args reads --name value flags") {
  Config c;
  Status st =
      c.load_args({"--port", "7000", "--save", "", "--bind", "127.0.0.1", "::1",
                   "--slowlog-log-slower-than", "-1", "--requirepass",
                   "--client-output-buffer-limit", "normal 1mb 512kb 1", "--MAXMEMORY", "1gb"});
  INFO(st.message());
  REQUIRE(st.is_ok());
  CHECK(c.get("port") == "7000");
  CHECK(c.get("save").empty());
  CHECK(c.get("bind") == "127.0.0.1 ::1");
  CHECK(c.get("slowlog-log-slower-than") == "-1");
  CHECK(c.get("requirepass").empty());  // a flag without a value is the empty string
  CHECK(c.get("client-output-buffer-limit") ==
        "normal 1048576 524288 1 replica 268435456 67108864 60 pubsub 33554432 8388608 60");
  CHECK(c.get("maxmemory") == "1073741824");
  CHECK(c.load_args({}).is_ok());
}

TEST_CASE("config: load_args errors name the flag, the value and why") {
  auto error_of = [](std::vector<std::string> args) {
    Config c;
    Status st = c.load_args(args);
    return st.is_ok() ? std::string() : st.message();
  };
  CHECK(error_of({"--port", "abc"}) == "--port abc: argument couldn't be parsed into an integer");
  CHECK(error_of({"--maxmemory-policy", "nope"})
            .rfind("--maxmemory-policy nope: argument(s) must be one of the following: ", 0) == 0);
  CHECK(error_of({"--no-such-directive", "1"}) ==
        "--no-such-directive 1: unknown directive 'no-such-directive'");
  CHECK(error_of({"--maxmemory", "lots"}) == "--maxmemory lots: argument must be a memory value");
  CHECK(error_of({"--port", "7000", "8000"}) ==
        "--port 7000 8000: wrong number of arguments: expected one value");
  CHECK(error_of({"port", "7000"}) == "unexpected argument 'port': flags look like --port 7000");
  CHECK(error_of({"--"}) == "unexpected argument '--': flags look like --port 7000");
  // The first bad flag stops loading; what came before it was applied.
  Config c;
  CHECK_FALSE(c.load_args({"--hz", "20", "--hz", "0"}).is_ok());
  CHECK(c.get("hz") == "20");
}

// ---------------------------------------------------------------- conf/ringkv.conf

TEST_CASE("config: conf/ringkv.conf documents every directive with its default") {
  std::ifstream in(RINGKV_CONF_PATH);
  INFO("reading " << RINGKV_CONF_PATH);
  REQUIRE(in.good());
  // Every directive appears on a line of its own (not commented out), and the value written
  // there is the default: loading the whole file gives a Config equal to a fresh one.
  // The comment block above a directive (from the last blank line; directives written together
  // share one) says "[runtime]" exactly when CONFIG SET can change it.
  std::map<std::string, int> lines_of;
  std::map<std::string, bool> said_runtime;
  std::string line, block;
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) {
      block.clear();
      continue;
    }
    if (line[b] == '#') {
      block += line + "\n";
      continue;
    }
    std::vector<std::string> args;
    REQUIRE(split_args(line, &args));
    if (args.empty()) continue;
    ++lines_of[to_lower(args[0])];
    said_runtime[to_lower(args[0])] = contains(block, "[runtime]");
  }
  for (const config::Directive& d : config::directives()) {
    INFO("directive " << d.name << ": [runtime] in its comment iff CONFIG SET takes it");
    CHECK(said_runtime[std::string(d.name)] == d.runtime);
  }
  for (const config::Directive& d : config::directives()) {
    INFO("directive " << d.name);
    CHECK(lines_of.count(std::string(d.name)) == 1);
  }
  for (const auto& [name, count] : lines_of) {
    INFO("line for " << name);
    CHECK(config::find_directive(name) != nullptr);
    // Only client-output-buffer-limit is written as several lines (one per class).
    if (name != "client-output-buffer-limit") CHECK(count == 1);
  }
  Config loaded;
  Status st = loaded.load_file(RINGKV_CONF_PATH);
  INFO(st.message());
  REQUIRE(st.is_ok());
  Config fresh;
  for (const config::Directive& d : config::directives()) {
    INFO("directive " << d.name);
    CHECK(loaded.get(d.name) == fresh.get(d.name));
  }
  CHECK(loaded.non_default_lines().empty());
}
