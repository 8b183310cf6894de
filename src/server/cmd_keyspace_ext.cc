// Keyspace commands that move or describe values: RENAME, RENAMENX, COPY, DUMP, RESTORE, and
// OBJECT's ENCODING, FREQ, IDLETIME, REFCOUNT and HELP.
//
// RENAME and COPY touch two keys, which may live on different lock stripes (or the same one).
// A thread never holds two stripe locks at once, so they work in steps: copy the source out,
// write the destination, and (RENAME) delete the source only if it still holds the version
// that was copied. A write to the source between the steps therefore survives, and the outcome
// is the one of RENAME followed by that write.
#include <climits>
#include <limits>
#include <string>

#include "server/util.h"
#include "store/dump_payload.h"

namespace ringkv::server {

namespace {

struct Copied {
  bool found = false;
  std::string value;
  Millis expire_at = -1;
  Version version = 0;
  uint8_t encoding = 0;  // RENAME and COPY keep it, as Redis keeps (or duplicates) the object
};

// Copies a key's value, expiry and version out of the store. `read` counts a keyspace hit or
// miss, as Redis's lookupKeyRead does (its lookupKeyWrite does not).
Copied copy_out(CommandContext& ctx, std::string_view key, bool read) {
  return with_key(ctx, key, [&](store::Access& a) {
    Copied c;
    if (read) count_hit(ctx, a.found());
    if (!a.found()) return c;
    a.touch();
    c.found = true;
    c.value.assign(a.value());
    c.expire_at = a.expire_at();
    c.version = a.version();
    c.encoding = a.encoding();
    return c;
  });
}

void rename_generic(CommandContext& ctx, bool nx) {
  const std::string_view src = ctx.arg(1), dst = ctx.arg(2);
  const Copied from = copy_out(ctx, src, false);
  if (!from.found) return ctx.error(err::kNoSuchKey);
  if (src == dst) return nx ? ctx.w.integer(0) : ctx.w.ok();
  const bool moved = with_key(ctx, dst, [&](store::Access& a) {
    if (nx && a.found()) {
      a.touch();
      return false;
    }
    a.set(from.value, from.expire_at);  // the TTL moves with the value
    a.set_encoding(from.encoding);
    return true;
  });
  if (!moved) return ctx.w.integer(0);
  with_key(ctx, src, [&](store::Access& a) {
    if (a.found() && a.version() == from.version) a.erase();
  });
  nx ? ctx.w.integer(1) : ctx.w.ok();
}

// The encoding Redis would give the value. Written by SET: tryObjectEncoding stores a canonical
// 64-bit integer of up to 20 characters as "int", other strings of up to 44 bytes as "embstr",
// and the rest as "raw". Built in place (APPEND to a key, SETRANGE, SETBIT, BITFIELD, BITOP):
// "raw". INCRBYFLOAT's result: never "int" (the store's encoding flags, see entry.h).
bool is_int_encoded(const store::Access& a, int64_t* n) {
  std::string_view v = a.value();
  return a.encoding() == 0 && v.size() <= 20 && parse_int64(v, n);
}

std::string_view encoding_of(const store::Access& a) {
  int64_t n;
  if (is_int_encoded(a, &n)) return "int";
  return a.value().size() <= 44 && !(a.encoding() & store::kEncodingRaw) ? "embstr" : "raw";
}

// Redis shares the objects of the integers 0..9999 (OBJ_SHARED_INTEGERS) unless maxmemory is
// set with an LRU/LFU policy (which needs a private object per key), and reports the shared
// objects' refcount as INT_MAX.
int64_t refcount_of(CommandContext& ctx, const store::Access& a) {
  int64_t n;
  if (!is_int_encoded(a, &n) || n < 0 || n >= 10000) return 1;
  using store::EvictionPolicy;
  const EvictionPolicy p = ctx.server.store().policy();
  const bool lru_or_lfu = p == EvictionPolicy::kAllKeysLru || p == EvictionPolicy::kVolatileLru ||
                          p == EvictionPolicy::kAllKeysLfu || p == EvictionPolicy::kVolatileLfu;
  return ctx.server.maxmemory() == 0 || !lru_or_lfu ? INT_MAX : 1;
}

// The OBJECT subcommands: look the key up without touching its LRU/LFU data (Redis's
// LOOKUP_NOTOUCH), reply null when it is missing, and f(access) otherwise.
template <class F>
void object_lookup(CommandContext& ctx, F&& f) {
  with_key(ctx, ctx.arg(2), [&](store::Access& a) {
    count_hit(ctx, a.found());
    if (!a.found()) return ctx.w.null();
    f(a);
  });
}

}  // namespace

// ---------------------------------------------------------------- RENAME / RENAMENX

void cmd_rename(CommandContext& ctx) { rename_generic(ctx, false); }
void cmd_renamenx(CommandContext& ctx) { rename_generic(ctx, true); }

// ---------------------------------------------------------------- COPY

std::string_view parse_copy_args(const std::vector<std::string_view>& args, bool* replace) {
  *replace = false;
  for (size_t j = 3; j < args.size(); ++j) {
    const std::string_view opt = c_string(args[j]);
    if (equals_nocase(opt, "replace")) {
      *replace = true;
    } else if (equals_nocase(opt, "db") && j + 1 < args.size()) {
      int64_t db;
      if (!parse_int64(args[j + 1], &db)) return err::kNotInteger;
      if (db < INT_MIN || db > INT_MAX) return err::kNotInt32;
      // Only database 0 exists (as in a Redis started with "databases 1").
      if (db != 0) return err::kDbIndexOutOfRange;
      ++j;
    } else {
      return err::kSyntax;
    }
  }
  return {};
}

void cmd_copy(CommandContext& ctx) {
  bool replace = false;
  if (std::string_view e = parse_copy_args(ctx.args, &replace); !e.empty()) return ctx.error(e);
  const std::string_view src = ctx.arg(1), dst = ctx.arg(2);
  if (src == dst) return ctx.error(err::kSameObject);
  const Copied from = copy_out(ctx, src, true);
  if (!from.found) return ctx.w.integer(0);
  const bool copied = with_key(ctx, dst, [&](store::Access& a) {
    if (a.found() && !replace) {
      a.touch();
      return false;
    }
    a.set(from.value, from.expire_at);  // the copy has the source's TTL
    a.set_encoding(from.encoding);
    return true;
  });
  ctx.w.integer(copied ? 1 : 0);
}

// ---------------------------------------------------------------- DUMP / RESTORE

void cmd_dump(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!read_key(ctx, a)) return ctx.w.null();
    ctx.w.bulk(store::encode_dump(a.value()));
  });
}

// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], with Redis's
// checks in Redis's order: options, an existing key (BUSYKEY), the TTL, the payload.
void cmd_restore(CommandContext& ctx) {
  bool replace = false, absttl = false;
  int64_t idle = -1, freq = -1;
  for (size_t j = 4; j < ctx.argc(); ++j) {
    const std::string_view opt = c_string(ctx.arg(j));
    const bool has_next = j + 1 < ctx.argc();
    if (equals_nocase(opt, "replace")) {
      replace = true;
    } else if (equals_nocase(opt, "absttl")) {
      absttl = true;
    } else if (equals_nocase(opt, "idletime") && has_next && freq == -1) {
      if (!arg_int64(ctx, ctx.arg(++j), &idle)) return;
      if (idle < 0) return ctx.error(err::kInvalidIdletime);
    } else if (equals_nocase(opt, "freq") && has_next && idle == -1) {
      if (!arg_int64(ctx, ctx.arg(++j), &freq)) return;
      if (freq < 0 || freq > 255) return ctx.error(err::kInvalidFreq);
    } else {
      return ctx.error(err::kSyntax);
    }
  }
  // Decoded before the key's lock is taken; its errors wait for their turn.
  int64_t ttl = 0;
  const bool ttl_ok = parse_int64(ctx.arg(2), &ttl);
  const store::DecodedDump d = store::decode_dump(ctx.arg(3));
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!replace && a.found()) {
      a.touch();
      return ctx.error(err::kBusyKey);
    }
    if (!ttl_ok) return ctx.error(err::kNotInteger);
    if (ttl < 0) return ctx.error(err::kInvalidTtl);
    switch (d.status) {
      case store::DumpStatus::kOk:
        break;
      case store::DumpStatus::kBadFooter:
        return ctx.error(err::kDumpPayload);
      case store::DumpStatus::kBadFormat:
        return ctx.error(err::kBadDataFormat);
      case store::DumpStatus::kNotString: {
        std::string e(err::kRestoreNotString);
        return ctx.error(e.replace(e.find("%s"), 2, d.type_name));
      }
    }
    Millis when = -1;
    if (ttl > 0) {
      // A relative TTL past the largest time wraps around in Redis, to a time already past.
      const bool overflow = !absttl && ttl > std::numeric_limits<Millis>::max() - ctx.now;
      when = absttl || overflow ? ttl : ttl + ctx.now;
      if (overflow || when <= ctx.now) {  // already expired: the key is gone, as in Redis
        if (a.found()) a.erase();
        return ctx.w.ok();
      }
    }
    a.set(d.value, when);
    a.set_access_data(static_cast<int>(freq), idle);
    ctx.w.ok();
  });
}

// ---------------------------------------------------------------- OBJECT

void cmd_object_encoding(CommandContext& ctx) {
  object_lookup(ctx, [&](store::Access& a) { ctx.w.bulk(encoding_of(a)); });
}

void cmd_object_refcount(CommandContext& ctx) {
  object_lookup(ctx, [&](store::Access& a) { ctx.w.integer(refcount_of(ctx, a)); });
}

void cmd_object_idletime(CommandContext& ctx) {
  object_lookup(ctx, [&](store::Access& a) {
    if (ctx.server.store().lfu_mode()) return ctx.error(err::kObjectLfu);
    ctx.w.integer(store::Store::idle_ms(a.lru(), ctx.now) / 1000);
  });
}

void cmd_object_freq(CommandContext& ctx) {
  object_lookup(ctx, [&](store::Access& a) {
    if (!ctx.server.store().lfu_mode()) return ctx.error(err::kObjectNoLfu);
    ctx.w.integer(ctx.server.store().lfu_counter(a.lru(), ctx.now));
  });
}

void cmd_object_help(CommandContext& ctx) {
  static constexpr std::string_view kLines[] = {
      "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "ENCODING <key>",
      "    Return the kind of internal representation used in order to store the value",
      "    associated with a <key>.",
      "FREQ <key>",
      "    Return the access frequency index of the <key>. The returned integer is",
      "    proportional to the logarithm of the recent access frequency of the key.",
      "IDLETIME <key>",
      "    Return the idle time of the <key>, that is the approximated number of",
      "    seconds elapsed since the last access to the key.",
      "REFCOUNT <key>",
      "    Return the number of references of the value associated with the specified",
      "    <key>.",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kLines));
  for (std::string_view line : kLines) ctx.w.simple(line);
}

}  // namespace ringkv::server
