// Keyspace commands: DEL, EXISTS, the EXPIRE family, TTL, PERSIST, TYPE, KEYS, SCAN, DBSIZE,
// FLUSHDB/FLUSHALL, RANDOMKEY, TOUCH.
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "server/util.h"

namespace ringkv::server {

namespace {

enum ExpireFlags : unsigned { kExpNx = 1, kExpXx = 2, kExpGt = 4, kExpLt = 8 };

// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT: `basetime` is now (relative forms) or 0 (absolute forms).
void expire_generic(CommandContext& ctx, Millis basetime, bool seconds) {
  unsigned flags = 0;
  for (size_t j = 3; j < ctx.argc(); ++j) {
    std::string_view opt = c_string(ctx.arg(j));  // Redis's strcasecmp/%s see a C string
    if (equals_nocase(opt, "nx"))
      flags |= kExpNx;
    else if (equals_nocase(opt, "xx"))
      flags |= kExpXx;
    else if (equals_nocase(opt, "gt"))
      flags |= kExpGt;
    else if (equals_nocase(opt, "lt"))
      flags |= kExpLt;
    else {
      ctx.error("ERR Unsupported option " + std::string(opt));
      return;
    }
  }
  if ((flags & kExpNx) && (flags & (kExpXx | kExpGt | kExpLt))) {
    ctx.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if ((flags & kExpGt) && (flags & kExpLt)) {
    ctx.error("ERR GT and LT options at the same time are not compatible");
    return;
  }
  int64_t when;
  if (!arg_int64(ctx, ctx.arg(2), &when)) return;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (seconds) {
    if (when > kMax / 1000 || when < kMin / 1000) {
      reply_invalid_expire(ctx);
      return;
    }
    when *= 1000;
  }
  if (when > kMax - basetime) {
    reply_invalid_expire(ctx);
    return;
  }
  when += basetime;
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!a.found()) {
      ctx.w.integer(0);
      return;
    }
    Millis current = a.expire_at();
    if (flags) {
      if ((flags & kExpNx) && current != -1) return ctx.w.integer(0);
      if ((flags & kExpXx) && current == -1) return ctx.w.integer(0);
      if ((flags & kExpGt) && (when <= current || current == -1)) return ctx.w.integer(0);
      if ((flags & kExpLt) && current != -1 && when >= current) return ctx.w.integer(0);
    }
    if (when <= ctx.now) {
      a.erase();
    } else {
      a.set_expire(when);
    }
    ctx.w.integer(1);
  });
}

void ttl_generic(CommandContext& ctx, bool ms, bool absolute) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    count_hit(ctx, a.found());
    if (!a.found()) return ctx.w.integer(-2);
    Millis e = a.expire_at();
    if (e < 0) return ctx.w.integer(-1);
    // Redis rounds EXPIRETIME to the nearest second, as it does TTL.
    if (absolute) return ctx.w.integer(ms ? e : (e + 500) / 1000);
    Millis ttl = e - ctx.now;
    if (ttl < 0) ttl = 0;
    ctx.w.integer(ms ? ttl : (ttl + 500) / 1000);
  });
}

}  // namespace

void cmd_del(CommandContext& ctx) {
  int64_t deleted = 0;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    deleted += with_key(ctx, ctx.arg(i), [](store::Access& a) {
      if (!a.found()) return 0;
      a.erase();
      return 1;
    });
  }
  ctx.w.integer(deleted);
}

void cmd_exists(CommandContext& ctx) {
  int64_t n = 0;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    n += with_key(ctx, ctx.arg(i), [&](store::Access& a) {
      count_hit(ctx, a.found());
      return a.found() ? 1 : 0;
    });
  }
  ctx.w.integer(n);
}

void cmd_touch(CommandContext& ctx) {
  int64_t n = 0;
  for (size_t i = 1; i < ctx.argc(); ++i) {
    n += with_key(ctx, ctx.arg(i), [&](store::Access& a) { return read_key(ctx, a) ? 1 : 0; });
  }
  ctx.w.integer(n);
}

void cmd_expire(CommandContext& ctx) { expire_generic(ctx, ctx.now, true); }
void cmd_pexpire(CommandContext& ctx) { expire_generic(ctx, ctx.now, false); }
void cmd_expireat(CommandContext& ctx) { expire_generic(ctx, 0, true); }
void cmd_pexpireat(CommandContext& ctx) { expire_generic(ctx, 0, false); }
void cmd_ttl(CommandContext& ctx) { ttl_generic(ctx, false, false); }
void cmd_pttl(CommandContext& ctx) { ttl_generic(ctx, true, false); }
void cmd_expiretime(CommandContext& ctx) { ttl_generic(ctx, false, true); }
void cmd_pexpiretime(CommandContext& ctx) { ttl_generic(ctx, true, true); }

void cmd_persist(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (a.found()) a.touch();  // Redis's lookupKeyWrite: an access
    if (!a.found() || a.expire_at() < 0) return ctx.w.integer(0);
    a.set_expire(-1);
    ctx.w.integer(1);
  });
}

void cmd_type(CommandContext& ctx) {
  bool found = with_key(ctx, ctx.arg(1), [](store::Access& a) { return a.found(); });
  count_hit(ctx, found);
  ctx.w.simple(found ? "string" : "none");
}

void cmd_keys(CommandContext& ctx) {
  std::string_view pattern = ctx.arg(1);
  const bool all = pattern == "*";
  std::vector<std::string> keys;
  Token cursor = 0;
  do {
    cursor = ctx.server.store().scan(cursor, 1024, ctx.now, [&](const store::EntryView& e) {
      if (all || glob_match(pattern, e.key())) keys.emplace_back(e.key());
    });
  } while (cursor != 0);
  ctx.w.array(keys.size());
  for (const auto& k : keys) ctx.w.bulk(k);
}

void cmd_scan(CommandContext& ctx) {
  // Redis's parseScanCursorOrReply: strtoul on the whole argument (as a C string, so "" is 0).
  std::string c(ctx.arg(1));
  char* end = nullptr;
  errno = 0;
  unsigned long long cursor = std::strtoull(c.c_str(), &end, 10);
  if (std::isspace(static_cast<unsigned char>(c[0])) || *end != '\0' || errno == ERANGE) {
    ctx.error(err::kInvalidCursor);
    return;
  }
  int64_t count = 10;
  std::string_view pattern;
  bool use_pattern = false;
  std::string_view type;
  bool use_type = false;
  for (size_t i = 2; i < ctx.argc();) {
    size_t left = ctx.argc() - i;
    const std::string_view opt = c_string(ctx.arg(i));
    if (equals_nocase(opt, "count") && left >= 2) {
      if (!arg_int64(ctx, ctx.arg(i + 1), &count)) return;
      if (count < 1) {
        ctx.error(err::kSyntax);
        return;
      }
      i += 2;
    } else if (equals_nocase(opt, "match") && left >= 2) {
      pattern = ctx.arg(i + 1);
      use_pattern = pattern != "*";
      i += 2;
    } else if (equals_nocase(opt, "type") && left >= 2) {
      type = c_string(ctx.arg(i + 1));
      use_type = true;
      i += 2;
    } else {
      ctx.error(err::kSyntax);
      return;
    }
  }
  std::vector<std::string> keys;
  bool type_matches = !use_type || equals_nocase(type, "string");
  Token next = ctx.server.store().scan(static_cast<Token>(cursor), static_cast<size_t>(count),
                                       ctx.now, [&](const store::EntryView& e) {
                                         if (!type_matches) return;
                                         if (use_pattern && !glob_match(pattern, e.key())) return;
                                         keys.emplace_back(e.key());
                                       });
  ctx.w.array(2);
  ctx.w.bulk(std::to_string(next));
  ctx.w.array(keys.size());
  for (const auto& k : keys) ctx.w.bulk(k);
}

void cmd_dbsize(CommandContext& ctx) {
  ctx.w.integer(static_cast<int64_t>(ctx.server.store().size()));
}

void cmd_flushdb(CommandContext& ctx) {
  if (ctx.argc() > 2) {
    ctx.error(err::kSyntax);
    return;
  }
  if (ctx.argc() == 2 && !equals_nocase(c_string(ctx.arg(1)), "sync") &&
      !equals_nocase(c_string(ctx.arg(1)), "async")) {
    ctx.error(err::kSyntax);
    return;
  }
  ctx.server.touch_all_watched();
  ctx.server.store().clear();
  ctx.w.ok();
}

void cmd_randomkey(CommandContext& ctx) {
  std::string key;
  if (ctx.server.store().random_key(ctx.now, &key))
    ctx.w.bulk(key);
  else
    ctx.w.null();
}

}  // namespace ringkv::server
