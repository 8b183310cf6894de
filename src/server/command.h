// Commands are data: one table (command_table.cc) gives every command's name, arity, flags and
// key positions. Dispatch, routing (which node owns the keys), COMMAND INFO/COUNT/GETKEYS and
// transactions all read the table; nothing is special-cased per command outside it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "resp/writer.h"

namespace ringkv::net {
class Connection;
}

namespace ringkv::server {

class Server;
class ClientSession;

// Redis 7 command flags (names as COMMAND INFO prints them).
enum CommandFlag : uint32_t {
  kWrite = 1u << 0,
  kReadOnly = 1u << 1,
  kDenyOom = 1u << 2,
  kAdmin = 1u << 3,
  kPubSub = 1u << 4,
  kNoScript = 1u << 5,
  kBlocking = 1u << 6,
  kLoading = 1u << 7,
  kStale = 1u << 8,
  kSkipMonitor = 1u << 9,
  kSkipSlowlog = 1u << 10,
  kFast = 1u << 11,
  kNoAuth = 1u << 12,
  kMayReplicate = 1u << 13,
  kNoMulti = 1u << 14,
  kAllowBusy = 1u << 15,
  kMovableKeys = 1u << 16,
  kAsking = 1u << 17,
  // ringkv's own: the command acts on the whole keyspace (DBSIZE, KEYS, SCAN, FLUSHALL...), so
  // in a cluster it runs on every node.
  kKeyspace = 1u << 24,
  // ringkv's own: only meaningful on this node (CLIENT, CONFIG, INFO...): never forwarded.
  kLocal = 1u << 25,
  // ringkv's own: how a multi-key command is split across owners and its replies merged.
  kSplitArray = 1u << 26,  // MGET: one reply element per key, in key order
  kSplitSum = 1u << 27,    // DEL, EXISTS...: integer replies added up
  kSplitOk = 1u << 28,     // MSET: +OK when every part is OK
  // ringkv's own: internal node-to-node command (RINGKV.*).
  kInternal = 1u << 29,
};

struct CommandContext;
using Handler = void (*)(CommandContext&);

class LatencyHistogram;  // latency.h

struct CommandStats {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> usec{0};
  std::atomic<uint64_t> rejected{0};  // refused before running (arity, auth, OOM...)
  std::atomic<uint64_t> failed{0};    // ran and replied an error
  // INFO latencystats / LATENCY HISTOGRAM; allocated at the first call, freed with the table.
  std::atomic<LatencyHistogram*> histogram{nullptr};

  CommandStats() = default;
  ~CommandStats();  // latency.cc
};

// The command's own argument checks, for the router to run before it refuses a command whose
// keys live on several nodes (Redis checks the arguments first): the error, or "" when none.
using ArgsCheck = std::string_view (*)(const std::vector<std::string_view>& args);

struct CommandSpec {
  std::string_view name;  // lowercase; "config|get" for subcommands
  int arity;              // Redis convention: N exact, -N at least N (name included)
  uint32_t flags;
  int first_key;  // 0: no keys
  int last_key;   // -1: the last argument, -2: the one before...
  int key_step;
  Handler handler;
  std::string_view group;  // "string", "generic", "server", "connection", "transactions"...
  std::vector<CommandSpec> subcommands;
  // COMMAND DOCS.
  std::string_view summary;
  std::string_view since;
  std::string_view complexity;
  ArgsCheck check_args = nullptr;
  mutable CommandStats stats;

  CommandSpec(std::string_view n, int a, uint32_t f, int fk, int lk, int ks, Handler h,
              std::string_view g, std::vector<CommandSpec> subs = {})
      : name(n),
        arity(a),
        flags(f),
        first_key(fk),
        last_key(lk),
        key_step(ks),
        handler(h),
        group(g),
        subcommands(std::move(subs)) {}
  CommandSpec(const CommandSpec& o)
      : name(o.name),
        arity(o.arity),
        flags(o.flags),
        first_key(o.first_key),
        last_key(o.last_key),
        key_step(o.key_step),
        handler(o.handler),
        group(o.group),
        subcommands(o.subcommands),
        summary(o.summary),
        since(o.since),
        complexity(o.complexity),
        check_args(o.check_args) {}
  CommandSpec& doc(std::string_view s, std::string_view v, std::string_view cx = {}) {
    summary = s;
    since = v;
    complexity = cx;
    return *this;
  }

  CommandSpec& checks(ArgsCheck c) {
    check_args = c;
    return *this;
  }

  bool arity_ok(size_t argc) const {
    return arity > 0 ? static_cast<int>(argc) == arity : static_cast<int>(argc) >= -arity;
  }
  bool is(CommandFlag f) const { return (flags & f) != 0; }
  // More than one key in this call (such commands run exclusively with several io-threads).
  bool touches_several_keys(size_t argc) const {
    if (first_key <= 0) return false;
    int last = last_key < 0 ? static_cast<int>(argc) + last_key : last_key;
    return last - first_key >= key_step;
  }
  // Positions of the key arguments for this call (empty when none).
  void key_positions(size_t argc, std::vector<int>* out) const;
  // "config|get" -> "config get" style full name as Redis prints in errors ("config|get").
  std::string full_name(const CommandSpec* parent) const;
};

class CommandTable {
 public:
  static const CommandTable& instance();

  // Case-insensitive; nullptr when unknown.
  const CommandSpec* find(std::string_view name) const;
  // For container commands (CONFIG, CLIENT, ...): the subcommand, or nullptr.
  const CommandSpec* find_sub(const CommandSpec& parent, std::string_view sub) const;
  const std::vector<CommandSpec>& all() const { return commands_; }

 private:
  CommandTable();
  std::vector<CommandSpec> commands_;
  std::vector<std::pair<std::string, const CommandSpec*>> index_;  // sorted by name
};

// What a handler gets: the request, where to reply, and the server around it.
struct CommandContext {
  Server& server;
  net::Connection& conn;
  ClientSession& session;
  std::vector<std::string_view>& args;
  resp::Writer& w;
  Millis now;
  const CommandSpec* spec;    // the command (the subcommand for container commands)
  const CommandSpec* parent;  // the container command, or nullptr

  size_t argc() const { return args.size(); }
  std::string_view arg(size_t i) const { return args[i]; }
  // Replies an error and counts it for INFO errorstats / commandstats.
  void error(std::string_view text);
  bool replied_error = false;
};

}  // namespace ringkv::server
