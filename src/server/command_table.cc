// The command table: every command ringkv implements, with Redis 7's arity, flags and key
// positions. Commands for types ringkv does not store (lists, hashes, sets, sorted sets,
// streams), scripting, pub/sub and modules are absent on purpose: they get Redis's
// "unknown command" error.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/strings.h"
#include "server/command.h"
#include "server/util.h"

namespace ringkv::server {

void CommandSpec::key_positions(size_t argc, std::vector<int>* out) const {
  out->clear();
  if (first_key <= 0) return;
  int last = last_key < 0 ? static_cast<int>(argc) + last_key : last_key;
  // A key's group (the key and its key_step - 1 arguments, as MSET's value) must be whole: the
  // last key of "MSET a 1 b" is no key (the command's arity error says so).
  for (int i = first_key; i <= last && i + key_step <= static_cast<int>(argc); i += key_step)
    out->push_back(i);
}

std::string CommandSpec::full_name(const CommandSpec* parent) const {
  if (parent == nullptr) return std::string(name);
  return std::string(parent->name) + "|" + std::string(name);
}

namespace {

constexpr uint32_t kCon = kNoScript | kLoading | kStale | kFast | kAllowBusy;

using S = CommandSpec;

// RESTORE's and RESTORE-ASKING's, as Redis documents them.
constexpr std::string_view kRestoreComplexity =
    "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where "
    "N is the number of Redis objects composing the value and M their average size. For small "
    "string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). "
    "However for sorted set values the complexity is O(N*M*log(N)) because inserting values into "
    "sorted sets is O(log(N)).";

std::vector<CommandSpec> make_table() {
  std::vector<CommandSpec> t;
  // ---- strings
  t.push_back(S("get", 2, kReadOnly | kFast, 1, 1, 1, cmd_get, "string")
                  .doc("Returns the string value of a key.", "1.0.0"));
  t.push_back(S("set", -3, kWrite | kDenyOom, 1, 1, 1, cmd_set, "string")
                  .doc("Sets the string value of a key, ignoring its type. The key is created if "
                       "it doesn't exist.",
                       "1.0.0"));
  t.push_back(S("setnx", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_setnx, "string")
                  .doc("Set the string value of a key only when the key doesn't exist.", "1.0.0"));
  t.push_back(S("setex", 4, kWrite | kDenyOom, 1, 1, 1, cmd_setex, "string")
                  .doc("Sets the string value and expiration time of a key. Creates the key if it "
                       "doesn't exist.",
                       "2.0.0"));
  t.push_back(S("psetex", 4, kWrite | kDenyOom, 1, 1, 1, cmd_psetex, "string")
                  .doc("Sets both string value and expiration time in milliseconds of a key. The "
                       "key is created if it doesn't exist.",
                       "2.6.0"));
  t.push_back(
      S("getset", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_getset, "string")
          .doc("Returns the previous string value of a key after setting it to a new value.",
               "1.0.0"));
  t.push_back(S("getdel", 2, kWrite | kFast, 1, 1, 1, cmd_getdel, "string")
                  .doc("Returns the string value of a key after deleting the key.", "6.2.0"));
  t.push_back(
      S("getex", -2, kWrite | kFast, 1, 1, 1, cmd_getex, "string")
          .doc("Returns the string value of a key after setting its expiration time.", "6.2.0"));
  t.push_back(
      S("mget", -2, kReadOnly | kFast | kSplitArray, 1, -1, 1, cmd_mget, "string")
          .doc("Atomically returns the string values of one or more keys.", "1.0.0", "O(N)"));
  t.push_back(S("mset", -3, kWrite | kDenyOom | kSplitOk, 1, -1, 2, cmd_mset, "string")
                  .doc("Atomically creates or modifies the string values of one or more keys.",
                       "1.0.1", "O(N)"));
  t.push_back(S("msetnx", -3, kWrite | kDenyOom, 1, -1, 2, cmd_msetnx, "string")
                  .doc("Atomically modifies the string values of one or more keys only when all "
                       "keys don't exist.",
                       "1.0.1", "O(N)"));
  t.push_back(S("incr", 2, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_incr, "string")
                  .doc("Increments the integer value of a key by one. Uses 0 as initial value if "
                       "the key doesn't exist.",
                       "1.0.0"));
  t.push_back(S("decr", 2, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_decr, "string")
                  .doc("Decrements the integer value of a key by one. Uses 0 as initial value if "
                       "the key doesn't exist.",
                       "1.0.0"));
  t.push_back(S("incrby", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_incrby, "string")
                  .doc("Increments the integer value of a key by a number. Uses 0 as initial value "
                       "if the key doesn't exist.",
                       "1.0.0"));
  t.push_back(S("decrby", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_decrby, "string")
                  .doc("Decrements a number from the integer value of a key. Uses 0 as initial "
                       "value if the key doesn't exist.",
                       "1.0.0"));
  t.push_back(S("incrbyfloat", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_incrbyfloat, "string")
                  .doc("Increment the floating point value of a key by a number. Uses 0 as initial "
                       "value if the key doesn't exist.",
                       "2.6.0"));
  t.push_back(
      S("append", 3, kWrite | kDenyOom | kFast, 1, 1, 1, cmd_append, "string")
          .doc("Appends a string to the value of a key. Creates the key if it doesn't exist.",
               "2.0.0"));
  t.push_back(S("strlen", 2, kReadOnly | kFast, 1, 1, 1, cmd_strlen, "string")
                  .doc("Returns the length of a string value.", "2.2.0"));
  // ---- keyspace
  t.push_back(S("del", -2, kWrite | kSplitSum, 1, -1, 1, cmd_del, "generic")
                  .doc("Deletes one or more keys.", "1.0.0", "O(N)"));
  t.push_back(S("unlink", -2, kWrite | kFast | kSplitSum, 1, -1, 1, cmd_del, "generic")
                  .doc("Asynchronously deletes one or more keys.", "4.0.0", "O(N)"));
  t.push_back(S("exists", -2, kReadOnly | kFast | kSplitSum, 1, -1, 1, cmd_exists, "generic")
                  .doc("Determines whether one or more keys exist.", "1.0.0", "O(N)"));
  t.push_back(S("touch", -2, kReadOnly | kFast | kSplitSum, 1, -1, 1, cmd_touch, "generic")
                  .doc("Returns the number of existing keys out of those specified after updating "
                       "the time they were last accessed.",
                       "3.2.1", "O(N)"));
  t.push_back(S("expire", -3, kWrite | kFast, 1, 1, 1, cmd_expire, "generic")
                  .doc("Sets the expiration time of a key in seconds.", "1.0.0"));
  t.push_back(S("pexpire", -3, kWrite | kFast, 1, 1, 1, cmd_pexpire, "generic")
                  .doc("Sets the expiration time of a key in milliseconds.", "2.6.0"));
  t.push_back(S("expireat", -3, kWrite | kFast, 1, 1, 1, cmd_expireat, "generic")
                  .doc("Sets the expiration time of a key to a Unix timestamp.", "1.2.0"));
  t.push_back(
      S("pexpireat", -3, kWrite | kFast, 1, 1, 1, cmd_pexpireat, "generic")
          .doc("Sets the expiration time of a key to a Unix milliseconds timestamp.", "2.6.0"));
  t.push_back(S("ttl", 2, kReadOnly | kFast, 1, 1, 1, cmd_ttl, "generic")
                  .doc("Returns the expiration time in seconds of a key.", "1.0.0"));
  t.push_back(S("pttl", 2, kReadOnly | kFast, 1, 1, 1, cmd_pttl, "generic")
                  .doc("Returns the expiration time in milliseconds of a key.", "2.6.0"));
  t.push_back(S("expiretime", 2, kReadOnly | kFast, 1, 1, 1, cmd_expiretime, "generic")
                  .doc("Returns the expiration time of a key as a Unix timestamp.", "7.0.0"));
  t.push_back(
      S("pexpiretime", 2, kReadOnly | kFast, 1, 1, 1, cmd_pexpiretime, "generic")
          .doc("Returns the expiration time of a key as a Unix milliseconds timestamp.", "7.0.0"));
  t.push_back(S("persist", 2, kWrite | kFast, 1, 1, 1, cmd_persist, "generic")
                  .doc("Removes the expiration time of a key.", "2.2.0"));
  t.push_back(S("type", 2, kReadOnly | kFast, 1, 1, 1, cmd_type, "generic")
                  .doc("Determines the type of value stored at a key.", "1.0.0"));
  t.push_back(S("keys", 2, kReadOnly | kKeyspace, 0, 0, 0, cmd_keys, "generic")
                  .doc("Returns all key names that match a pattern.", "1.0.0", "O(N)"));
  t.push_back(S("scan", -2, kReadOnly | kKeyspace, 0, 0, 0, cmd_scan, "generic")
                  .doc("Iterates over the key names in the database.", "2.8.0",
                       "O(1) for every call. O(N) for a complete iteration."));
  t.push_back(S("dbsize", 1, kReadOnly | kFast | kKeyspace, 0, 0, 0, cmd_dbsize, "server")
                  .doc("Returns the number of keys in the database.", "1.0.0"));
  t.push_back(S("randomkey", 1, kReadOnly | kKeyspace, 0, 0, 0, cmd_randomkey, "generic")
                  .doc("Returns a random key name from the database.", "1.0.0"));
  t.push_back(S("flushdb", -1, kWrite | kKeyspace, 0, 0, 0, cmd_flushdb, "server")
                  .doc("Remove all keys from the current database.", "1.0.0", "O(N)"));
  t.push_back(S("flushall", -1, kWrite | kKeyspace, 0, 0, 0, cmd_flushdb, "server")
                  .doc("Removes all keys from all databases.", "1.0.0", "O(N)"));
  // ---- string ranges, LCS, bits, RENAME/COPY, OBJECT (cmd_string_ext.cc, cmd_bits.cc,
  // cmd_keyspace_ext.cc); arity, flags, keys and docs as Redis 7.0.15's COMMAND INFO/DOCS.
  constexpr std::string_view kRangeCx =
      "O(N) where N is the length of the returned string. The complexity is ultimately determined "
      "by the returned length, but because creating a substring from an existing string is very "
      "cheap, it can be considered O(1) for small strings.";
  t.push_back(S("getrange", 4, kReadOnly, 1, 1, 1, cmd_getrange, "string")
                  .doc("Get a substring of the string stored at a key", "2.4.0", kRangeCx));
  t.push_back(S("substr", 4, kReadOnly, 1, 1, 1, cmd_getrange, "string")
                  .doc("Get a substring of the string stored at a key", "1.0.0", kRangeCx));
  t.push_back(
      S("setrange", 4, kWrite | kDenyOom, 1, 1, 1, cmd_setrange, "string")
          .doc("Overwrite part of a string at key starting at the specified offset", "2.2.0",
               "O(1), not counting the time taken to copy the new string in place. Usually, this "
               "string is very small so the amortized complexity is O(1). Otherwise, complexity is "
               "O(M) with M being the length of the value argument."));
  t.push_back(S("lcs", -3, kReadOnly, 1, 2, 1, cmd_lcs, "string")
                  .doc("Find longest common substring", "7.0.0",
                       "O(N*M) where N and M are the lengths of s1 and s2, respectively")
                  .checks([](const std::vector<std::string_view>& a) {
                    LcsOptions o;
                    return parse_lcs_args(a, &o);
                  }));
  t.push_back(S("setbit", 4, kWrite | kDenyOom, 1, 1, 1, cmd_setbit, "bitmap")
                  .doc("Sets or clears the bit at offset in the string value stored at key",
                       "2.2.0", "O(1)"));
  t.push_back(S("getbit", 3, kReadOnly | kFast, 1, 1, 1, cmd_getbit, "bitmap")
                  .doc("Returns the bit value at offset in the string value stored at key", "2.2.0",
                       "O(1)"));
  t.push_back(S("bitcount", -2, kReadOnly, 1, 1, 1, cmd_bitcount, "bitmap")
                  .doc("Count set bits in a string", "2.6.0", "O(N)"));
  t.push_back(S("bitpos", -3, kReadOnly, 1, 1, 1, cmd_bitpos, "bitmap")
                  .doc("Find first bit set or clear in a string", "2.8.7", "O(N)"));
  t.push_back(S("bitop", -4, kWrite | kDenyOom, 2, -1, 1, cmd_bitop, "bitmap")
                  .doc("Perform bitwise operations between strings", "2.6.0", "O(N)")
                  .checks([](const std::vector<std::string_view>& a) {
                    BitOp op;
                    return parse_bitop_args(a, &op);
                  }));
  t.push_back(S("bitfield", -2, kWrite | kDenyOom, 1, 1, 1, cmd_bitfield, "bitmap")
                  .doc("Perform arbitrary bitfield integer operations on strings", "3.2.0",
                       "O(1) for each subcommand specified"));
  t.push_back(S("bitfield_ro", -2, kReadOnly | kFast, 1, 1, 1, cmd_bitfield_ro, "bitmap")
                  .doc("Perform arbitrary bitfield integer operations on strings. Read-only "
                       "variant of BITFIELD",
                       "6.0.0", "O(1) for each subcommand specified"));
  t.push_back(
      S("rename", 3, kWrite, 1, 2, 1, cmd_rename, "generic").doc("Rename a key", "1.0.0", "O(1)"));
  t.push_back(S("renamenx", 3, kWrite | kFast, 1, 2, 1, cmd_renamenx, "generic")
                  .doc("Rename a key, only if the new key does not exist", "1.0.0", "O(1)"));
  t.push_back(S("dump", 2, kReadOnly, 1, 1, 1, cmd_dump, "generic")
                  .doc("Return a serialized version of the value stored at the specified key.",
                       "2.6.0",
                       "O(1) to access the key and additional O(N*M) to serialize it, where N is "
                       "the number of Redis objects composing the value and M their average size. "
                       "For small string values the time complexity is thus O(1)+O(1*M) where M "
                       "is small, so simply O(1)."));
  t.push_back(S("restore", -4, kWrite | kDenyOom, 1, 1, 1, cmd_restore, "generic")
                  .doc("Create a key using the provided serialized value, previously obtained "
                       "using DUMP.",
                       "2.6.0", kRestoreComplexity));
  // What a Redis with cluster-enabled yes sends as MIGRATE's target command; RESTORE here.
  t.push_back(
      S("restore-asking", -4, kWrite | kDenyOom | kAsking, 1, 1, 1, cmd_restore, "server")
          .doc("An internal command for migrating keys in a cluster", "3.0.0", kRestoreComplexity));
  t.push_back(S("copy", -3, kWrite | kDenyOom, 1, 2, 1, cmd_copy, "generic")
                  .doc("Copy a key", "6.2.0",
                       "O(N) worst case for collections, where N is the number of nested items. "
                       "O(1) for string values.")
                  .checks([](const std::vector<std::string_view>& a) {
                    bool replace;
                    return parse_copy_args(a, &replace);
                  }));
  t.push_back(
      S("object", -2, 0, 0, 0, 0, nullptr, "generic",
        {S("encoding", 3, kReadOnly, 2, 2, 1, cmd_object_encoding, "generic")
             .doc("Inspect the internal encoding of a Redis object", "2.2.3", "O(1)"),
         S("freq", 3, kReadOnly, 2, 2, 1, cmd_object_freq, "generic")
             .doc("Get the logarithmic access frequency counter of a Redis object", "4.0.0",
                  "O(1)"),
         S("idletime", 3, kReadOnly, 2, 2, 1, cmd_object_idletime, "generic")
             .doc("Get the time since a Redis object was last accessed", "2.2.3", "O(1)"),
         S("refcount", 3, kReadOnly, 2, 2, 1, cmd_object_refcount, "generic")
             .doc("Get the number of references to the value of the key", "2.2.3", "O(1)"),
         S("help", 2, kLoading | kStale | kLocal, 0, 0, 0, cmd_object_help, "generic")
             .doc("Show helpful text about the different subcommands", "6.2.0", "O(1)")})
          .doc("A container for object introspection commands", "2.2.3", "Depends on subcommand."));
  // ---- connection
  t.push_back(S("ping", -1, kFast, 0, 0, 0, cmd_ping, "connection")
                  .doc("Returns the server's liveliness response.", "1.0.0"));
  t.push_back(S("echo", 2, kLoading | kStale | kFast, 0, 0, 0, cmd_echo, "connection")
                  .doc("Returns the given string.", "1.0.0"));
  t.push_back(S("quit", -1, kCon | kNoAuth, 0, 0, 0, cmd_quit, "connection")
                  .doc("Closes the connection.", "1.0.0"));
  t.push_back(S("hello", -1, kCon | kNoAuth, 0, 0, 0, cmd_hello, "connection")
                  .doc("Handshakes with the Redis server.", "6.0.0"));
  t.push_back(S("auth", -2, kCon | kNoAuth, 0, 0, 0, cmd_auth, "connection")
                  .doc("Authenticates the connection.", "1.0.0"));
  t.push_back(S("select", 2, kLoading | kStale | kFast | kLocal, 0, 0, 0, cmd_select, "connection")
                  .doc("Changes the selected database.", "1.0.0"));
  t.push_back(S("reset", 1, kCon | kNoAuth | kLocal, 0, 0, 0, cmd_reset, "connection")
                  .doc("Resets the connection.", "6.2.0"));
  // ---- transactions
  t.push_back(S("multi", 1, kCon | kLocal, 0, 0, 0, cmd_multi, "transactions")
                  .doc("Starts a transaction.", "1.2.0"));
  t.push_back(S("exec", 1, kNoScript | kLoading | kStale | kSkipSlowlog | kLocal, 0, 0, 0, cmd_exec,
                "transactions")
                  .doc("Executes all commands in a transaction.", "1.2.0",
                       "Depends on commands in the transaction"));
  t.push_back(S("discard", 1, kCon | kLocal, 0, 0, 0, cmd_discard, "transactions")
                  .doc("Discards a transaction.", "2.0.0",
                       "O(N), when N is the number of queued commands"));
  t.push_back(S("watch", -2, kCon, 1, -1, 1, cmd_watch, "transactions")
                  .doc("Monitors changes to keys to determine the execution of a transaction.",
                       "2.2.0", "O(1) for every key."));
  t.push_back(S("unwatch", 1, kCon | kLocal, 0, 0, 0, cmd_unwatch, "transactions")
                  .doc("Forgets about watched keys of a transaction.", "2.2.0"));
  // ---- server
  t.push_back(S("info", -1, kLoading | kStale | kLocal, 0, 0, 0, cmd_info, "server")
                  .doc("Returns information and statistics about the server.", "1.0.0"));
  t.push_back(S("time", 1, kLoading | kStale | kFast | kLocal, 0, 0, 0, cmd_time, "server")
                  .doc("Returns the server time.", "2.6.0"));
  t.push_back(S("lastsave", 1, kLoading | kStale | kFast | kLocal, 0, 0, 0, cmd_lastsave, "server")
                  .doc("Returns the Unix timestamp of the last successful save to disk.", "1.0.0"));
  // SLOWLOG, LATENCY, MONITOR, MEMORY (cmd_server.cc, cmd_memory.cc); docs are Redis's
  // (command_docs.inc).
  constexpr uint32_t kIntro = kAdmin | kLoading | kStale | kLocal;
  t.push_back(S("slowlog", -2, kLocal, 0, 0, 0, nullptr, "server",
                {S("get", -2, kIntro, 0, 0, 0, cmd_slowlog_get, "server"),
                 S("len", 2, kIntro, 0, 0, 0, cmd_slowlog_len, "server"),
                 S("reset", 2, kIntro, 0, 0, 0, cmd_slowlog_reset, "server"),
                 S("help", 2, kLoading | kStale | kLocal, 0, 0, 0, cmd_slowlog_help, "server")}));
  t.push_back(S("latency", -2, kLocal, 0, 0, 0, nullptr, "server",
                {S("doctor", 2, kIntro | kNoScript, 0, 0, 0, cmd_latency_doctor, "server"),
                 S("graph", 3, kIntro | kNoScript, 0, 0, 0, cmd_latency_graph, "server"),
                 S("history", 3, kIntro | kNoScript, 0, 0, 0, cmd_latency_history, "server"),
                 S("latest", 2, kIntro | kNoScript, 0, 0, 0, cmd_latency_latest, "server"),
                 S("reset", -2, kIntro | kNoScript, 0, 0, 0, cmd_latency_reset, "server"),
                 S("histogram", -2, kIntro | kNoScript, 0, 0, 0, cmd_latency_histogram, "server"),
                 S("help", 2, kLoading | kStale | kLocal, 0, 0, 0, cmd_latency_help, "server")}));
  t.push_back(S("monitor", 1, kIntro | kNoScript, 0, 0, 0, cmd_monitor, "server"));
  t.push_back(S("memory", -2, kLocal, 0, 0, 0, nullptr, "server",
                {S("usage", -3, kReadOnly, 2, 2, 1, cmd_memory_usage, "server"),
                 S("stats", 2, kLocal, 0, 0, 0, cmd_memory_stats, "server"),
                 S("doctor", 2, kLocal, 0, 0, 0, cmd_memory_doctor, "server"),
                 S("malloc-stats", 2, kLocal, 0, 0, 0, cmd_memory_malloc_stats, "server"),
                 S("purge", 2, kLocal, 0, 0, 0, cmd_memory_purge, "server"),
                 S("help", 2, kLoading | kStale | kLocal, 0, 0, 0, cmd_memory_help, "server")}));
  t.push_back(
      S("shutdown", -1, kAdmin | kNoScript | kLoading | kStale | kNoMulti | kAllowBusy | kLocal, 0,
        0, 0, cmd_shutdown, "server")
          .doc("Synchronously saves the database(s) to disk and shuts down the Redis server.",
               "1.0.0"));
  constexpr uint32_t kCfg = kAdmin | kNoScript | kLoading | kStale | kLocal;
  t.push_back(S("config", -2, kLocal, 0, 0, 0, nullptr, "server",
                {S("get", -3, kCfg, 0, 0, 0, cmd_config_get, "server")
                     .doc("Returns the effective values of configuration parameters.", "2.0.0"),
                 S("set", -4, kCfg, 0, 0, 0, cmd_config_set, "server")
                     .doc("Sets configuration parameters in-flight.", "2.0.0"),
                 S("resetstat", 2, kCfg, 0, 0, 0, cmd_config_resetstat, "server")
                     .doc("Resets the server's statistics.", "2.0.0"),
                 S("rewrite", 2, kCfg, 0, 0, 0, cmd_config_rewrite, "server")
                     .doc("Persists the effective configuration to file.", "2.8.0"),
                 S("help", 2, kLoading | kStale | kLocal, 0, 0, 0, cmd_config_help, "server")
                     .doc("Returns helpful text about the different subcommands.", "5.0.0")})
                  .doc("A container for server configuration commands.", "2.0.0",
                       "Depends on subcommand."));
  constexpr uint32_t kCmd = kLoading | kStale | kLocal;
  t.push_back(
      S("command", -1, kCmd, 0, 0, 0, cmd_command, "server",
        {S("count", 2, kCmd, 0, 0, 0, cmd_command_count, "server")
             .doc("Returns a count of commands.", "2.8.13"),
         S("docs", -2, kCmd, 0, 0, 0, cmd_command_docs, "server")
             .doc("Returns documentary information about one, multiple or all commands.", "7.0.0"),
         S("getkeys", -4, kCmd, 0, 0, 0, cmd_command_getkeys, "server")
             .doc("Extracts the key names from an arbitrary command.", "2.8.13"),
         S("getkeysandflags", -4, kCmd, 0, 0, 0, cmd_command_getkeysandflags, "server"),
         S("info", -2, kCmd, 0, 0, 0, cmd_command_info, "server")
             .doc("Returns information about one, multiple or all commands.", "2.8.13"),
         S("list", -2, kCmd, 0, 0, 0, cmd_command_list, "server")
             .doc("Returns a list of command names.", "7.0.0"),
         S("help", 2, kCmd, 0, 0, 0, cmd_command_help, "server")
             .doc("Returns helpful text about the different subcommands.", "5.0.0")})
          .doc("Returns detailed information about all commands.", "2.8.13",
               "O(N) where N is the total number of Redis commands"));
  constexpr uint32_t kCli = kNoScript | kLoading | kStale | kLocal;
  t.push_back(
      S("client", -2, kLocal, 0, 0, 0, nullptr, "connection",
        {S("id", 2, kCli, 0, 0, 0, cmd_client_id, "connection")
             .doc("Returns the unique client ID of the connection.", "5.0.0"),
         S("setname", 3, kCli, 0, 0, 0, cmd_client_setname, "connection")
             .doc("Sets the connection name.", "2.6.9"),
         S("getname", 2, kCli, 0, 0, 0, cmd_client_getname, "connection")
             .doc("Returns the name of the connection.", "2.6.9"),
         S("list", -2, kCli | kAdmin, 0, 0, 0, cmd_client_list, "connection")
             .doc("Lists open connections.", "2.4.0",
                  "O(N) where N is the number of client connections"),
         S("info", 2, kCli, 0, 0, 0, cmd_client_info, "connection")
             .doc("Returns information about the connection.", "6.2.0"),
         S("kill", -3, kCli | kAdmin, 0, 0, 0, cmd_client_kill, "connection")
             .doc("Terminates open connections.", "2.4.0",
                  "O(N) where N is the number of client connections"),
         S("reply", 3, kCli, 0, 0, 0, cmd_client_reply, "connection")
             .doc("Instructs the server whether to reply to commands.", "3.2.0"),
         S("no-evict", 3, kCli | kAdmin, 0, 0, 0, cmd_client_no_evict, "connection")
             .doc("Sets the client eviction mode of the connection.", "7.0.0"),
         S("pause", -3, kCli | kAdmin, 0, 0, 0, cmd_client_pause, "connection")
             .doc("Suspends commands processing.", "3.0.0"),
         S("unpause", 2, kCli | kAdmin, 0, 0, 0, cmd_client_unpause, "connection")
             .doc("Resumes processing commands from paused clients.", "6.2.0",
                  "O(N) Where N is the number of paused clients"),
         S("unblock", -3, kCli | kAdmin, 0, 0, 0, cmd_client_unblock, "connection"),
         S("getredir", 2, kCli, 0, 0, 0, cmd_client_getredir, "connection"),
         S("trackinginfo", 2, kCli, 0, 0, 0, cmd_client_trackinginfo, "connection"),
         S("caching", 3, kCli, 0, 0, 0, cmd_client_caching, "connection"),
         S("help", 2, kLoading | kStale | kLocal, 0, 0, 0, cmd_client_help, "connection")
             .doc("Returns helpful text about the different subcommands.", "5.0.0")})
          .doc("A container for client connection commands.", "2.4.0", "Depends on subcommand."));
  // ---- ring administration (ringkv's own)
  constexpr uint32_t kRing = kAdmin | kNoScript | kLocal;
  t.push_back(
      S("ring", -2, kLocal, 0, 0, 0, nullptr, "cluster",
        {S("addserver", -4, kRing | kNoMulti, 0, 0, 0, cmd_ring_addserver, "cluster")
             .doc("Adds a server to the ring; its ranges move to it in the background.", "0.1.0",
                  "O(keys moved), in the background"),
         S("removeserver", 3, kRing | kNoMulti, 0, 0, 0, cmd_ring_removeserver, "cluster")
             .doc("Drains a server's ranges to their new holders, then removes it.", "0.1.0",
                  "O(keys moved), in the background"),
         S("plan", -4, kRing, 0, 0, 0, cmd_ring_plan, "cluster")
             .doc("Tells what a RING ADDSERVER or REMOVESERVER would move, without changing "
                  "anything.",
                  "0.1.0", "O(N) in the keys of the ranges that would move"),
         S("nodes", 2, kLocal | kStale, 0, 0, 0, cmd_ring_nodes, "cluster")
             .doc("Lists the servers of the ring.", "0.1.0", "O(servers)"),
         S("info", 2, kLocal | kStale, 0, 0, 0, cmd_ring_info, "cluster")
             .doc("Describes the ring and the migration in progress.", "0.1.0"),
         S("owners", 3, kLocal | kStale, 0, 0, 0, cmd_ring_owners, "cluster")
             .doc("Returns a key's preference list, primary first.", "0.1.0"),
         S("token", 3, kLocal | kStale | kFast, 0, 0, 0, cmd_ring_token, "cluster")
             .doc("Returns a key's token on the ring.", "0.1.0"),
         S("config", 2, kLocal | kStale, 0, 0, 0, cmd_ring_config, "cluster")
             .doc("Returns the ring configuration document.", "0.1.0"),
         S("repair", 2, kRing, 0, 0, 0, cmd_ring_repair, "cluster")
             .doc("Runs anti-entropy now for the ranges this node is primary of.", "0.1.0",
                  "O(N) in the keys of those ranges"),
         S("help", 2, kLocal | kStale, 0, 0, 0, cmd_ring_help, "cluster")
             .doc("Returns helpful text about the different subcommands.", "0.1.0")})
          .doc("A container for ring administration commands.", "0.1.0", "Depends on subcommand."));
  // ---- node to node (ringkv's own, internal)
  // Internal requests between nodes stay out of MONITOR, SLOWLOG and the latency monitor: those
  // show what clients run.
  constexpr uint32_t kInt =
      kInternal | kLocal | kNoScript | kLoading | kStale | kSkipMonitor | kSkipSlowlog;
  t.push_back(S("ringkv.hello", -2, kInt | kFast | kNoAuth, 0, 0, 0, cmd_ringkv_hello, "cluster")
                  .doc("Internal: a peer link introduces itself.", "0.1.0"));
  t.push_back(S("ringkv.epoch", 2, kInt | kFast, 0, 0, 0, cmd_ringkv_epoch, "cluster")
                  .doc("Internal: the epoch the following requests on this link were routed with.",
                       "0.1.0"));
  t.push_back(S("ringkv.ping", -1, kInt | kFast, 0, 0, 0, cmd_ringkv_ping, "cluster")
                  .doc("Internal: heartbeat.", "0.1.0"));
  t.push_back(S("ringkv.repl", 6, kInt | kWrite | kFast, 0, 0, 0, cmd_ringkv_repl, "cluster")
                  .doc("Internal: applies a replicated entry if it is newer.", "0.1.0"));
  t.push_back(S("ringkv.getentry", 2, kInt | kFast, 0, 0, 0, cmd_ringkv_getentry, "cluster")
                  .doc("Internal: one entry with its version.", "0.1.0"));
  t.push_back(S("ringkv.version", 2, kInt | kFast, 0, 0, 0, cmd_ringkv_version, "cluster")
                  .doc("Internal: a key's version.", "0.1.0"));
  t.push_back(S("ringkv.fetch", 4, kInt, 0, 0, 0, cmd_ringkv_fetch, "cluster")
                  .doc("Internal: a batch of a token range's entries.", "0.1.0"));
  t.push_back(S("ringkv.rangestats", -3, kInt, 0, 0, 0, cmd_ringkv_rangestats, "cluster")
                  .doc("Internal: keys and bytes per token range.", "0.1.0"));
  t.push_back(S("ringkv.digest", 3, kInt, 0, 0, 0, cmd_ringkv_digest, "cluster")
                  .doc("Count and digest of a token range's live entries.", "0.1.0"));
  t.push_back(S("ringkv.randomkey", 1, kInt, 0, 0, 0, cmd_ringkv_randomkey, "cluster")
                  .doc("Internal: a random key of this node's store.", "0.1.0"));
  t.push_back(S("ringkv.count", -1, kInt, 0, 0, 0, cmd_ringkv_count, "cluster")
                  .doc("Internal: keys this node is the primary of.", "0.1.0"));
  t.push_back(S("ringkv.keys", -2, kInt, 0, 0, 0, cmd_ringkv_keys, "cluster")
                  .doc("Internal: matching keys this node is the primary of.", "0.1.0"));
  t.push_back(S("ringkv.scan", -6, kInt, 0, 0, 0, cmd_ringkv_scan, "cluster")
                  .doc("Internal: a SCAN step within one token range.", "0.1.0"));
  t.push_back(S("ringkv.flush", 1, kInt | kWrite, 0, 0, 0, cmd_ringkv_flush, "cluster")
                  .doc("Internal: FLUSHALL on this node.", "0.1.0"));
  t.push_back(
      S("ringkv.exec", -3, kInt | kWrite, 0, 0, 0, cmd_ringkv_exec, "cluster")
          .doc("Internal: a transaction with its watched versions, run atomically.", "0.1.0"));
  t.push_back(S("ringkv.final", -2, kInt, 0, 0, 0, cmd_ringkv_final, "cluster")
                  .doc("Internal: a request re-forwarded once, run where it lands.", "0.1.0"));
  t.push_back(S("ringkv.cfg", -2, kInt, 0, 0, 0, cmd_ringkv_cfg, "cluster")
                  .doc("Internal: the hosted ring configuration service.", "0.1.0"));
  return t;
}

}  // namespace

const CommandTable& CommandTable::instance() {
  static const CommandTable table;
  return table;
}

CommandTable::CommandTable() : commands_(make_table()) {
  for (const CommandSpec& c : commands_) index_.emplace_back(std::string(c.name), &c);
  std::sort(index_.begin(), index_.end());
}

const CommandSpec* CommandTable::find(std::string_view name) const {
  char buf[64];
  if (name.size() >= sizeof buf || name.empty()) return nullptr;
  for (size_t i = 0; i < name.size(); ++i)
    buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  std::string_view lower(buf, name.size());
  auto it = std::lower_bound(
      index_.begin(), index_.end(), lower,
      [](const auto& e, std::string_view n) { return std::string_view(e.first) < n; });
  if (it == index_.end() || it->first != lower) return nullptr;
  return it->second;
}

const CommandSpec* CommandTable::find_sub(const CommandSpec& parent, std::string_view sub) const {
  for (const CommandSpec& s : parent.subcommands)
    if (equals_nocase(s.name, sub)) return &s;
  return nullptr;
}

}  // namespace ringkv::server
