#include "config/config.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace ringkv::config {

// ---------------------------------------------------------------- the directive table

const std::vector<Directive>& directives() {
  static const std::vector<Directive> kDirectives = {
      // network
      {"bind",
       Type::kString,
       "127.0.0.1",
       false,
       0,
       0,
       {},
       "Addresses to listen on, separated by spaces."},
      {"port", Type::kInt, "6379", false, 0, 65535, {}, "TCP port for clients (0: none)."},
      {"tcp-backlog", Type::kInt, "511", false, 1, 65535, {}, "listen() backlog."},
      {"timeout",
       Type::kInt,
       "0",
       true,
       0,
       2147483647,
       {},
       "Close a client idle this many seconds (0: never)."},
      {"tcp-keepalive",
       Type::kInt,
       "300",
       true,
       0,
       2147483647,
       {},
       "TCP keepalive interval in seconds (0: off)."},
      {"maxclients", Type::kInt, "10000", true, 1, 1000000, {}, "Maximum simultaneous clients."},
      {"io-threads", Type::kInt, "1", false, 1, 128, {}, "Event-loop threads serving clients."},
      {"busy-poll",
       Type::kInt,
       "50",
       true,
       0,
       1000000,
       {},
       "Microseconds an event loop keeps polling after serving requests before it sleeps (0: "
       "off)."},
      {"yield-when-contended",
       Type::kBool,
       "yes",
       true,
       0,
       0,
       {},
       "While an event loop's thread waits for a CPU, it yields its core at the end of each "
       "turn."},
      // TLS for clients (Redis's directives). Any change to the tls-* files or settings builds
      // a new context for the connections accepted after it.
      {"tls-port",
       Type::kInt,
       "0",
       false,
       0,
       65535,
       {},
       "TCP port for TLS clients (0: none). Peers still use port."},
      {"tls-cert-file",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "PEM certificate (chain) of this server."},
      {"tls-key-file", Type::kString, "", true, 0, 0, {}, "PEM private key of tls-cert-file."},
      {"tls-key-file-pass",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "Passphrase of tls-key-file, if it is encrypted.",
       true},
      {"tls-ca-cert-file",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "PEM file of the CAs that sign client certificates."},
      {"tls-ca-cert-dir",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "Directory of CA certificates (c_rehash layout)."},
      {"tls-auth-clients",
       Type::kEnum,
       "yes",
       true,
       0,
       0,
       {"yes", "no", "optional"},
       "Require a client certificate signed by a tls-ca-cert CA (optional: check it if sent)."},
      {"tls-protocols",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "TLS versions allowed, e.g. \"TLSv1.2 TLSv1.3\" (empty: those two)."},
      {"tls-ciphers", Type::kString, "", true, 0, 0, {}, "OpenSSL cipher list for TLS 1.2."},
      {"tls-ciphersuites", Type::kString, "", true, 0, 0, {}, "TLS 1.3 cipher suites."},
      {"tls-session-caching",
       Type::kBool,
       "yes",
       true,
       0,
       0,
       {},
       "Let clients resume TLS sessions (session ids and tickets)."},
      {"tls-session-cache-size",
       Type::kInt,
       "20480",
       true,
       0,
       2147483647,
       {},
       "Sessions kept for resumption (0: no limit)."},
      {"tls-session-cache-timeout",
       Type::kInt,
       "300",
       true,
       0,
       2147483647,
       {},
       "Seconds a session may be resumed."},
      {"tls-dh-params-file",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "PEM DH parameters for DHE ciphers (empty: OpenSSL's built-in ones)."},
      {"tls-cluster",
       Type::kBool,
       "no",
       false,
       0,
       0,
       {},
       "Redis's TLS on the cluster bus: ringkv's peer links are plain TCP, so only no."},
      {"tls-replication",
       Type::kBool,
       "no",
       false,
       0,
       0,
       {},
       "Redis's TLS for replication: ringkv's peer links are plain TCP, so only no."},
      {"tls-prefer-server-ciphers",
       Type::kBool,
       "no",
       true,
       0,
       0,
       {},
       "Choose the cipher by the server's order rather than the client's."},
      // general
      {"daemonize", Type::kBool, "no", false, 0, 0, {}, "Run in the background."},
      {"pidfile", Type::kString, "", false, 0, 0, {}, "Write the process id here."},
      {"loglevel",
       Type::kEnum,
       "notice",
       true,
       0,
       0,
       {"debug", "verbose", "notice", "warning", "nothing"},
       "Log verbosity."},
      {"logfile", Type::kString, "", false, 0, 0, {}, "Log file (empty: standard error)."},
      {"databases", Type::kInt, "1", false, 1, 1, {}, "Number of databases: only db 0 exists."},
      {"hz",
       Type::kInt,
       "10",
       true,
       1,
       500,
       {},
       "Background task frequency (expiry, timeouts) per second."},
      {"requirepass",
       Type::kString,
       "",
       true,
       0,
       0,
       {},
       "Password clients must AUTH with (empty: none).",
       true},
      // limits
      {"proto-max-bulk-len",
       Type::kMemory,
       "536870912",
       true,
       1048576,
       INT64_MAX,
       {},
       "Largest bulk string a client may send."},
      {"client-query-buffer-limit",
       Type::kMemory,
       "1073741824",
       true,
       1048576,
       INT64_MAX,
       {},
       "Largest unparsed input kept for one client."},
      {"client-output-buffer-limit",
       Type::kString,
       "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60",
       true,
       0,
       0,
       {},
       "<class> <hard> <soft> <soft seconds> ..."},
      // memory
      {"maxmemory", Type::kMemory, "0", true, 0, INT64_MAX, {}, "Memory limit for data (0: none)."},
      {"maxmemory-policy",
       Type::kEnum,
       "noeviction",
       true,
       0,
       0,
       {"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
        "allkeys-lfu", "allkeys-random", "noeviction"},
       "What to evict at maxmemory."},
      {"maxmemory-samples", Type::kInt, "5", true, 1, 64, {}, "Keys sampled per eviction."},
      {"lfu-log-factor",
       Type::kInt,
       "10",
       true,
       0,
       2147483647,
       {},
       "LFU counter logarithm factor."},
      {"lfu-decay-time",
       Type::kInt,
       "1",
       true,
       0,
       2147483647,
       {},
       "LFU counter decay period in minutes."},
      {"active-expire-effort",
       Type::kInt,
       "1",
       true,
       1,
       10,
       {},
       "Work spent on active expiry (1-10)."},
      // persistence: none; present so tools that read them get a truthful answer
      {"save", Type::kString, "", true, 0, 0, {}, "Snapshots: not supported; must be empty."},
      {"appendonly",
       Type::kBool,
       "no",
       true,
       0,
       0,
       {},
       "Append-only file: not supported; must be no."},
      // diagnostics
      {"slowlog-log-slower-than",
       Type::kInt,
       "10000",
       true,
       -1,
       INT64_MAX,
       {},
       "Log commands slower than this many microseconds (-1: off)."},
      {"slowlog-max-len", Type::kInt, "128", true, 0, 2147483647, {}, "Slow log entries kept."},
      {"latency-monitor-threshold",
       Type::kInt,
       "0",
       true,
       0,
       INT64_MAX,
       {},
       "Latency events above this many ms are recorded (0: off)."},
      // store
      {"store-stripes",
       Type::kInt,
       "256",
       false,
       2,
       65536,
       {},
       "Lock stripes of the store (a power of two)."},
      // cluster
      {"node-id",
       Type::kString,
       "",
       false,
       0,
       0,
       {},
       "This node's id on the ring (empty: derived from the address)."},
      {"announce-address",
       Type::kString,
       "",
       false,
       0,
       0,
       {},
       "host:port other nodes and clients use to reach this node (empty: bind:port)."},
      {"discovery",
       Type::kString,
       "local",
       false,
       0,
       0,
       {},
       "Configuration service: local, ringkv://host:port or etcd://host:port/prefix."},
      {"replicas", Type::kInt, "3", false, 1, 16, {}, "Copies of each key (N)."},
      {"write-quorum",
       Type::kInt,
       "2",
       false,
       1,
       16,
       {},
       "Copies that must hold a write before it is acknowledged (W)."},
      {"read-quorum", Type::kInt, "1", false, 1, 16, {}, "Copies read, newest wins (R)."},
      {"vnodes",
       Type::kInt,
       "1024",
       false,
       1,
       65536,
       {},
       "Virtual nodes per server (times its weight)."},
      {"ring-state-file",
       Type::kString,
       "",
       false,
       0,
       0,
       {},
       "With discovery local: file that keeps the ring configuration across restarts (empty: "
       "memory only)."},
      {"migration-rate",
       Type::kInt,
       "25000",
       true,
       0,
       100000000,
       {},
       "Keys per second a node copies in when it gains ranges (migration, recovery); 0: as fast as "
       "it can. CONFIG SET changes the pace of a copy under way."},
      {"hot-key-cache-ms",
       Type::kInt,
       "0",
       true,
       0,
       86400000,
       {},
       "Milliseconds a node keeps a value it read from another node and serves it from there "
       "(0: off). A write through another node is seen up to that late here."},
      {"hot-key-cache-size",
       Type::kMemory,
       "67108864",
       true,
       0,
       INT64_MAX,
       {},
       "Bytes the hot-key cache may hold on this node (keys, values and overhead)."},
      {"anti-entropy-interval",
       Type::kInt,
       "60",
       false,
       0,
       86400,
       {},
       "Seconds between anti-entropy rounds comparing replicas' digests; a round also runs after "
       "a restarted node recovers and after a peer's failure (0: no round on its own, only RING "
       "REPAIR)."},
      {"tombstone-ttl",
       Type::kInt,
       "600",
       false,
       1,
       2147483647,
       {},
       "Seconds a deletion is remembered so late copies cannot revive the key."},
  };
  return kDirectives;
}

const Directive* find_directive(std::string_view name) {
  for (const Directive& d : directives()) {
    if (equals_nocase(d.name, name)) return &d;
  }
  return nullptr;
}

std::string format_memory(uint64_t bytes) { return std::to_string(bytes); }

// ---------------------------------------------------------------- Config

Config::Config() {
  for (const Directive& d : directives())
    values_.emplace(std::string(d.name), std::string(d.default_value));
}

namespace {

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

// `now` is the directive's current value: classes not named keep their limits, as in Redis,
// so a config file can give each class a line of its own.
Status check_output_buffer_limit(const std::vector<std::string>& values, const std::string& now,
                                 std::string* normalized) {
  if (values.size() % 4 != 0 || values.empty()) {
    return Status::invalid_argument(
        "wrong number of arguments: expected groups of <class> <hard limit> <soft limit> <soft "
        "seconds>");
  }
  std::map<std::string, std::string> current = {
      {"normal", "0 0 0"}, {"replica", "268435456 67108864 60"}, {"pubsub", "33554432 8388608 60"}};
  std::vector<std::string> old;
  split_args(now, &old);
  for (size_t i = 0; i + 3 < old.size(); i += 4) {
    if (current.count(old[i])) current[old[i]] = old[i + 1] + " " + old[i + 2] + " " + old[i + 3];
  }
  for (size_t i = 0; i < values.size(); i += 4) {
    std::string cls = to_lower(values[i]);
    if (cls == "slave") cls = "replica";
    if (!current.count(cls)) {
      return Status::invalid_argument("invalid client class '" + values[i] +
                                      "': expected normal, replica or pubsub");
    }
    uint64_t hard, soft, secs;
    if (!parse_memory(values[i + 1], &hard) || !parse_memory(values[i + 2], &soft) ||
        !parse_uint64(values[i + 3], &secs)) {
      return Status::invalid_argument("limits of class '" + values[i] +
                                      "' must be memory values and a number of seconds");
    }
    current[cls] = std::to_string(hard) + " " + std::to_string(soft) + " " + std::to_string(secs);
  }
  *normalized = "normal " + current["normal"] + " replica " + current["replica"] + " pubsub " +
                current["pubsub"];
  return Status::ok();
}

}  // namespace

Status Config::validate(const Directive& d, const std::vector<std::string>& given,
                        std::string* normalized) const {
  const std::string name(d.name);
  // Like Redis's multi-argument directives: one non-empty value holding several words
  // (--bind "127.0.0.1 ::1", --client-output-buffer-limit "normal 1mb 512kb 1") is split.
  std::vector<std::string> values = given;
  if ((name == "bind" || name == "client-output-buffer-limit" || name == "save") &&
      given.size() == 1 && !given[0].empty()) {
    values.clear();
    if (!split_args(given[0], &values)) return Status::invalid_argument("unbalanced quotes");
  }
  if (name == "client-output-buffer-limit") {
    std::string now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      now = values_.at(name);
    }
    return check_output_buffer_limit(values, now, normalized);
  }
  if (name == "bind") {
    if (values.empty()) return Status::invalid_argument("needs at least one address");
    std::string joined;
    for (const auto& v : values) {
      if (v.empty()) return Status::invalid_argument("an address is empty");
      if (!joined.empty()) joined += ' ';
      joined += v;
    }
    *normalized = joined;
    return Status::ok();
  }
  if (name == "save") {
    // Redis accepts "save" pairs; we keep nothing on disk, so only the empty value is honest.
    if (values.size() == 1 && values[0].empty()) {
      *normalized = "";
      return Status::ok();
    }
    return Status::invalid_argument("ringkv keeps no snapshots; the only valid value is \"\"");
  }
  if (values.size() != 1) {
    return Status::invalid_argument("wrong number of arguments: expected one value");
  }
  const std::string& v = values[0];
  switch (d.type) {
    case Type::kBool: {
      std::string l = to_lower(v);
      if (l != "yes" && l != "no")
        return Status::invalid_argument("argument must be 'yes' or 'no'");
      if (name == "appendonly" && l == "yes")
        return Status::invalid_argument(
            "ringkv has no append-only file; the only valid value is no");
      if ((name == "tls-cluster" || name == "tls-replication") && l == "yes")
        return Status::invalid_argument(
            "ringkv's peer links (forwarding, replication) do not speak TLS; the only valid "
            "value is no");
      *normalized = l;
      return Status::ok();
    }
    case Type::kInt:
    case Type::kPercent: {
      int64_t n;
      if (!parse_int64(v, &n))
        return Status::invalid_argument("argument couldn't be parsed into an integer");
      if (n < d.min || n > d.max) {
        return Status::invalid_argument("argument must be between " + std::to_string(d.min) +
                                        " and " + std::to_string(d.max) + " inclusive");
      }
      if (name == "store-stripes" && !is_power_of_two(n))
        return Status::invalid_argument("argument must be a power of two");
      *normalized = std::to_string(n);
      return Status::ok();
    }
    case Type::kMemory: {
      uint64_t n;
      if (!parse_memory(v, &n) || n > static_cast<uint64_t>(INT64_MAX))
        return Status::invalid_argument("argument must be a memory value");
      if (static_cast<int64_t>(n) < d.min) {
        return Status::invalid_argument("argument must be a memory value of at least " +
                                        std::to_string(d.min) + " bytes");
      }
      *normalized = std::to_string(n);
      return Status::ok();
    }
    case Type::kEnum: {
      for (auto c : d.choices) {
        if (equals_nocase(c, v)) {
          *normalized = std::string(c);
          return Status::ok();
        }
      }
      std::string list;
      for (auto c : d.choices) {
        if (!list.empty()) list += ", ";
        list += c;
      }
      return Status::invalid_argument("argument(s) must be one of the following: " + list);
    }
    case Type::kString:
      if (name == "discovery" &&
          !(v == "local" || v.rfind("ringkv://", 0) == 0 || v.rfind("etcd://", 0) == 0)) {
        return Status::invalid_argument(
            "must be local, ringkv://host:port or etcd://host:port/prefix");
      }
      *normalized = v;
      return Status::ok();
  }
  return Status::internal("unhandled directive type");
}

Status Config::set(std::string_view name, const std::vector<std::string>& values, bool at_runtime) {
  const Directive* d = find_directive(name);
  if (d == nullptr)
    return Status::invalid_argument("unknown directive '" + std::string(name) + "'");
  if (at_runtime && !d->runtime) {
    return Status::failed_precondition("can't set immutable config '" + std::string(d->name) + "'");
  }
  std::string normalized;
  Status st = validate(*d, values, &normalized);
  if (!st.is_ok()) return st;
  std::vector<Listener> listeners;
  std::string old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = values_[std::string(d->name)];
    values_[std::string(d->name)] = normalized;
    auto it = listeners_.find(d->name);
    if (it != listeners_.end()) listeners = it->second;
  }
  for (auto& l : listeners) {
    Status ls = l(normalized);
    if (!ls.is_ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      values_[std::string(d->name)] = old;
      return ls;
    }
  }
  return Status::ok();
}

std::string Config::get(std::string_view name) const {
  const Directive* d = find_directive(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(d ? d->name : name);
  return it == values_.end() ? std::string() : it->second;
}

int64_t Config::get_int(std::string_view name) const {
  int64_t v = 0;
  parse_int64(get(name), &v);
  return v;
}

bool Config::get_bool(std::string_view name) const { return get(name) == "yes"; }

std::vector<std::pair<std::string, std::string>> Config::match(std::string_view pattern) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, v] : values_) {
    if (glob_match(pattern, k, true)) out.emplace_back(k, v);
  }
  return out;
}

void Config::on_change(std::string_view name, Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_[std::string(name)].push_back(std::move(listener));
}

namespace {
// A value as split_args reads it back: bare when it can be, else in double quotes with '\\',
// '"' and control bytes escaped (Redis's sdscatrepr).
std::string quote_value(const std::string& v) {
  bool bare = !v.empty();
  for (unsigned char c : v) {
    if (c <= ' ' || c >= 0x7f || c == '"' || c == '\'') bare = false;
  }
  if (bare) return v;
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < ' ' || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string directive_line(std::string_view name, const std::string& value) {
  // Lists are written as their words (split_args reads them back one by one).
  const bool list = name == "bind" || name == "client-output-buffer-limit";
  return std::string(name) + " " + (list ? value : quote_value(value));
}
}  // namespace

std::vector<std::string> Config::non_default_lines() const {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const Directive& d : directives()) {
    auto it = values_.find(d.name);
    if (it == values_.end() || it->second == d.default_value) continue;
    out.push_back(directive_line(d.name, it->second));
  }
  return out;
}

std::string Config::line(std::string_view name) const {
  const Directive* d = find_directive(name);
  return directive_line(d != nullptr ? d->name : name, get(name));
}

Status Config::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalid_argument("can't open config file '" + path + "'");
  file_path_ = path;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    size_t b = line.find_first_not_of(" \t\r\n");
    if (b == std::string::npos || line[b] == '#') continue;
    std::vector<std::string> argv;
    if (!split_args(line, &argv)) {
      return Status::invalid_argument(path + ":" + std::to_string(lineno) + ": '" + line +
                                      "': unbalanced quotes");
    }
    if (argv.empty()) continue;
    std::string name = to_lower(argv[0]);
    std::vector<std::string> values(argv.begin() + 1, argv.end());
    Status st = set(name, values, false);
    if (!st.is_ok()) {
      return Status::invalid_argument(path + ":" + std::to_string(lineno) + ": '" + line +
                                      "': " + st.message());
    }
  }
  return Status::ok();
}

Status Config::load_args(const std::vector<std::string>& args) {
  size_t i = 0;
  while (i < args.size()) {
    const std::string& a = args[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      return Status::invalid_argument("unexpected argument '" + a +
                                      "': flags look like --port 7000");
    }
    std::string name = to_lower(a.substr(2));
    std::vector<std::string> values;
    ++i;
    while (i < args.size() && !(args[i].size() > 2 && args[i].compare(0, 2, "--") == 0)) {
      values.push_back(args[i]);
      ++i;
    }
    if (values.empty()) values.push_back("");
    Status st = set(name, values, false);
    if (!st.is_ok()) {
      std::string shown;
      for (const auto& v : values) shown += " " + v;
      return Status::invalid_argument("--" + name + shown + ": " + st.message());
    }
  }
  return Status::ok();
}

}  // namespace ringkv::config
