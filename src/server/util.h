// Helpers shared by command implementations: argument parsing with Redis's replies, and key
// access through the store.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/strings.h"
#include "resp/errors.h"
#include "resp/writer.h"
#include "ringkv/token.h"
#include "server/command.h"
#include "server/server.h"

namespace ringkv::server {

// An error reply encoded as RESP ("-<text>\r\n"), as resp::Writer::error writes it.
inline std::string error_reply(std::string_view text) {
  std::string out;
  resp::Writer(&out).error(text);
  return out;
}

// Parses an integer argument; on failure replies `error` (Redis's default text) and returns false.
inline bool arg_int64(CommandContext& ctx, std::string_view s, int64_t* out,
                      std::string_view error = err::kNotInteger) {
  if (parse_int64(s, out)) return true;
  ctx.error(error);
  return false;
}

// Runs f(store::Access&) on a key with its stripe locked.
template <class F>
decltype(auto) with_key(CommandContext& ctx, std::string_view key, F&& f) {
  return ctx.server.store().access(key, token_of(key), ctx.now, std::forward<F>(f));
}

inline void count_hit(CommandContext& ctx, bool hit) {
  auto& st = ctx.server.stats();
  (hit ? st.keyspace_hits : st.keyspace_misses).fetch_add(1, std::memory_order_relaxed);
}

// Redis's lookupKeyRead, for the commands that read a value: a keyspace hit or miss, and an
// access (LRU/LFU) of a key found. Returns whether it was found.
inline bool read_key(CommandContext& ctx, store::Access& a) {
  count_hit(ctx, a.found());
  if (a.found()) a.touch();
  return a.found();
}

// "ERR invalid expire time in '<cmd>' command".
inline void reply_invalid_expire(CommandContext& ctx) {
  ctx.error("ERR invalid expire time in '" + ctx.spec->full_name(ctx.parent) + "' command");
}

// The length a string may grow to (proto-max-bulk-len); replies and returns false past it.
inline bool check_string_length(CommandContext& ctx, uint64_t total) {
  if (static_cast<int64_t>(total) >
      ctx.server.limits().max_bulk_len.load(std::memory_order_relaxed)) {
    ctx.error(err::kStringTooLong);
    return false;
  }
  return true;
}

// An argument as Redis's strcasecmp/%s sees it: a C string, ending at the first NUL byte. Redis
// compares option names (NX, BIT, OVERFLOW...) this way, so "nx\0junk" is NX there too.
inline std::string_view c_string(std::string_view s) { return s.substr(0, s.find('\0')); }

// What cluster WATCH compares (RINGKV.VERSION, RINGKV.EXEC): the live entry's version, or for
// an absent key its tombstone's version with the top bit set (0 when there is none), so that
// a key that expired since WATCH (its entry gone, its version kept) counts as changed, as in
// Redis. Versions stay below 2^63 (HybridClock: milliseconds since 2020 in the top 42 bits).
inline uint64_t watch_version(const store::Access& a) {
  uint64_t v = a.version();
  return a.found() || v == 0 ? v : v | (uint64_t{1} << 63);
}

// Handlers, one per command, grouped by file.
#define RINGKV_HANDLER(name) void name(CommandContext& ctx)
// strings (cmd_string.cc)
RINGKV_HANDLER(cmd_get);
RINGKV_HANDLER(cmd_set);
RINGKV_HANDLER(cmd_setnx);
RINGKV_HANDLER(cmd_setex);
RINGKV_HANDLER(cmd_psetex);
RINGKV_HANDLER(cmd_getset);
RINGKV_HANDLER(cmd_getdel);
RINGKV_HANDLER(cmd_getex);
RINGKV_HANDLER(cmd_mget);
RINGKV_HANDLER(cmd_mset);
RINGKV_HANDLER(cmd_msetnx);
RINGKV_HANDLER(cmd_incr);
RINGKV_HANDLER(cmd_decr);
RINGKV_HANDLER(cmd_incrby);
RINGKV_HANDLER(cmd_decrby);
RINGKV_HANDLER(cmd_incrbyfloat);
RINGKV_HANDLER(cmd_append);
RINGKV_HANDLER(cmd_strlen);
// keyspace (cmd_keyspace.cc)
RINGKV_HANDLER(cmd_del);
RINGKV_HANDLER(cmd_exists);
RINGKV_HANDLER(cmd_expire);
RINGKV_HANDLER(cmd_pexpire);
RINGKV_HANDLER(cmd_expireat);
RINGKV_HANDLER(cmd_pexpireat);
RINGKV_HANDLER(cmd_ttl);
RINGKV_HANDLER(cmd_pttl);
RINGKV_HANDLER(cmd_expiretime);
RINGKV_HANDLER(cmd_pexpiretime);
RINGKV_HANDLER(cmd_persist);
RINGKV_HANDLER(cmd_type);
RINGKV_HANDLER(cmd_keys);
RINGKV_HANDLER(cmd_scan);
RINGKV_HANDLER(cmd_dbsize);
RINGKV_HANDLER(cmd_flushdb);
RINGKV_HANDLER(cmd_randomkey);
RINGKV_HANDLER(cmd_touch);
// string ranges and LCS (cmd_string_ext.cc)
RINGKV_HANDLER(cmd_getrange);
RINGKV_HANDLER(cmd_setrange);
RINGKV_HANDLER(cmd_lcs);
struct LcsOptions {
  bool len = false, idx = false, with_match_len = false;
  int64_t min_match_len = 0;
};
// LCS's options (arguments 3 on): the error, or "".
std::string_view parse_lcs_args(const std::vector<std::string_view>& args, LcsOptions* out);
// bits (cmd_bits.cc)
RINGKV_HANDLER(cmd_setbit);
RINGKV_HANDLER(cmd_getbit);
RINGKV_HANDLER(cmd_bitcount);
RINGKV_HANDLER(cmd_bitpos);
RINGKV_HANDLER(cmd_bitop);
enum class BitOp { kAnd, kOr, kXor, kNot };
// BITOP's operation and, for NOT, its arity: the error, or "".
std::string_view parse_bitop_args(const std::vector<std::string_view>& args, BitOp* op);
RINGKV_HANDLER(cmd_bitfield);
RINGKV_HANDLER(cmd_bitfield_ro);
// RENAME, COPY, DUMP, RESTORE, OBJECT (cmd_keyspace_ext.cc)
RINGKV_HANDLER(cmd_rename);
RINGKV_HANDLER(cmd_renamenx);
RINGKV_HANDLER(cmd_copy);
// COPY's options (arguments 3 on): the error, or "".
std::string_view parse_copy_args(const std::vector<std::string_view>& args, bool* replace);
RINGKV_HANDLER(cmd_dump);
RINGKV_HANDLER(cmd_restore);
RINGKV_HANDLER(cmd_object_encoding);
RINGKV_HANDLER(cmd_object_freq);
RINGKV_HANDLER(cmd_object_idletime);
RINGKV_HANDLER(cmd_object_refcount);
RINGKV_HANDLER(cmd_object_help);
// connection (cmd_connection.cc)
RINGKV_HANDLER(cmd_ping);
RINGKV_HANDLER(cmd_echo);
RINGKV_HANDLER(cmd_quit);
RINGKV_HANDLER(cmd_hello);
RINGKV_HANDLER(cmd_auth);
RINGKV_HANDLER(cmd_select);
RINGKV_HANDLER(cmd_reset);
// transactions (cmd_transaction.cc)
RINGKV_HANDLER(cmd_multi);
RINGKV_HANDLER(cmd_exec);
RINGKV_HANDLER(cmd_discard);
RINGKV_HANDLER(cmd_watch);
RINGKV_HANDLER(cmd_unwatch);
// server (cmd_server.cc)
RINGKV_HANDLER(cmd_info);
RINGKV_HANDLER(cmd_time);
RINGKV_HANDLER(cmd_lastsave);
RINGKV_HANDLER(cmd_shutdown);
RINGKV_HANDLER(cmd_config_get);
RINGKV_HANDLER(cmd_config_set);
RINGKV_HANDLER(cmd_config_resetstat);
RINGKV_HANDLER(cmd_config_rewrite);
RINGKV_HANDLER(cmd_config_help);
RINGKV_HANDLER(cmd_command);
RINGKV_HANDLER(cmd_command_count);
RINGKV_HANDLER(cmd_command_info);
RINGKV_HANDLER(cmd_command_docs);
RINGKV_HANDLER(cmd_command_list);
RINGKV_HANDLER(cmd_command_getkeys);
RINGKV_HANDLER(cmd_command_help);
// client (cmd_client.cc)
RINGKV_HANDLER(cmd_client_id);
RINGKV_HANDLER(cmd_client_setname);
RINGKV_HANDLER(cmd_client_getname);
RINGKV_HANDLER(cmd_client_list);
RINGKV_HANDLER(cmd_client_info);
RINGKV_HANDLER(cmd_client_kill);
RINGKV_HANDLER(cmd_client_reply);
RINGKV_HANDLER(cmd_client_no_evict);
RINGKV_HANDLER(cmd_client_help);
RINGKV_HANDLER(cmd_client_setinfo);
RINGKV_HANDLER(cmd_client_pause);
RINGKV_HANDLER(cmd_client_unpause);
RINGKV_HANDLER(cmd_client_unblock);
RINGKV_HANDLER(cmd_client_getredir);
RINGKV_HANDLER(cmd_client_trackinginfo);
RINGKV_HANDLER(cmd_client_caching);
RINGKV_HANDLER(cmd_command_getkeysandflags);
// SLOWLOG (slowlog.cc), LATENCY (latency.cc), MONITOR (monitor.cc), MEMORY (cmd_memory.cc)
RINGKV_HANDLER(cmd_slowlog_get);
RINGKV_HANDLER(cmd_slowlog_len);
RINGKV_HANDLER(cmd_slowlog_reset);
RINGKV_HANDLER(cmd_slowlog_help);
RINGKV_HANDLER(cmd_latency_doctor);
RINGKV_HANDLER(cmd_latency_graph);
RINGKV_HANDLER(cmd_latency_history);
RINGKV_HANDLER(cmd_latency_latest);
RINGKV_HANDLER(cmd_latency_reset);
RINGKV_HANDLER(cmd_latency_histogram);
RINGKV_HANDLER(cmd_latency_help);
RINGKV_HANDLER(cmd_monitor);
RINGKV_HANDLER(cmd_memory_usage);
RINGKV_HANDLER(cmd_memory_stats);
RINGKV_HANDLER(cmd_memory_doctor);
RINGKV_HANDLER(cmd_memory_malloc_stats);
RINGKV_HANDLER(cmd_memory_purge);
RINGKV_HANDLER(cmd_memory_help);
// ring (cmd_ring.cc)
RINGKV_HANDLER(cmd_ring_addserver);
RINGKV_HANDLER(cmd_ring_removeserver);
RINGKV_HANDLER(cmd_ring_plan);
RINGKV_HANDLER(cmd_ring_nodes);
RINGKV_HANDLER(cmd_ring_info);
RINGKV_HANDLER(cmd_ring_owners);
RINGKV_HANDLER(cmd_ring_token);
RINGKV_HANDLER(cmd_ring_config);
RINGKV_HANDLER(cmd_ring_repair);
RINGKV_HANDLER(cmd_ring_help);
RINGKV_HANDLER(cmd_ringkv_hello);
RINGKV_HANDLER(cmd_ringkv_ping);
RINGKV_HANDLER(cmd_ringkv_repl);
RINGKV_HANDLER(cmd_ringkv_getentry);
RINGKV_HANDLER(cmd_ringkv_version);
RINGKV_HANDLER(cmd_ringkv_fetch);
RINGKV_HANDLER(cmd_ringkv_rangestats);
RINGKV_HANDLER(cmd_ringkv_digest);
RINGKV_HANDLER(cmd_ringkv_count);
RINGKV_HANDLER(cmd_ringkv_randomkey);
RINGKV_HANDLER(cmd_ringkv_keys);
RINGKV_HANDLER(cmd_ringkv_scan);
RINGKV_HANDLER(cmd_ringkv_flush);
RINGKV_HANDLER(cmd_ringkv_exec);
RINGKV_HANDLER(cmd_ringkv_cfg);
RINGKV_HANDLER(cmd_ringkv_final);
RINGKV_HANDLER(cmd_ringkv_epoch);
#undef RINGKV_HANDLER

// A RINGKV.EXEC request: RINGKV.EXEC <nwatch> [<key> <version>]... <ncmds> [<argc> <arg>...]...
// (a transaction sent to the node that runs it, with the versions its WATCHed keys had).
struct ExecRequest {
  std::vector<std::pair<std::string_view, uint64_t>> watched;
  std::vector<std::vector<std::string_view>> cmds;
};
// False when the request is malformed. The views point into args.
template <class Args>
bool parse_exec_request(const Args& args, ExecRequest* out) {
  size_t i = 1;
  int64_t nwatch, ncmds;
  if (i >= args.size() || !parse_int64(args[i++], &nwatch) || nwatch < 0) return false;
  for (int64_t k = 0; k < nwatch; ++k) {
    if (i + 1 >= args.size()) return false;
    uint64_t ver = 0;
    int64_t sver;
    if (parse_int64(args[i + 1], &sver))
      ver = static_cast<uint64_t>(sver);
    else if (!parse_uint64(args[i + 1], &ver))
      return false;
    out->watched.emplace_back(args[i], ver);
    i += 2;
  }
  if (i >= args.size() || !parse_int64(args[i++], &ncmds) || ncmds < 0) return false;
  for (int64_t k = 0; k < ncmds; ++k) {
    int64_t argc;
    if (i >= args.size() || !parse_int64(args[i++], &argc) || argc < 1 ||
        i + static_cast<size_t>(argc) > args.size())
      return false;
    out->cmds.emplace_back(args.begin() + static_cast<long>(i),
                           args.begin() + static_cast<long>(i + static_cast<size_t>(argc)));
    i += static_cast<size_t>(argc);
  }
  return true;
}

// RING INFO's text (fields "name:value\r\n"): this node and the ring as `v` (a loop's view) sees
// it.
std::string ring_info_text(cluster::Cluster& node, const cluster::View& v, Millis now);

}  // namespace ringkv::server
