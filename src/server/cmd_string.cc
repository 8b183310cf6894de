// String commands: GET, SET and its variants, MGET/MSET, counters, APPEND, STRLEN.
#include <cmath>
#include <limits>
#include <string>

#include "server/util.h"

namespace ringkv::server {

namespace {

// ---------------------------------------------------------------- SET/GETEX option parsing

enum SetFlags : unsigned {
  kNx = 1,
  kXx = 2,
  kGet = 4,
  kKeepTtl = 8,
  kPersist = 16,
  kEx = 32,
  kPx = 64,
  kExAt = 128,
  kPxAt = 256,
};
constexpr unsigned kAnyExpire = kEx | kPx | kExAt | kPxAt;

struct SetOptions {
  unsigned flags = 0;
  std::string_view expire;  // the number, when an expire flag is set
};

// Redis compares option names as C strings: "NX\0junk" is NX.
bool is_opt(std::string_view a, std::string_view opt) { return equals_nocase(c_string(a), opt); }

// Redis's parseExtendedStringArgumentsOrReply.
bool parse_set_options(CommandContext& ctx, size_t start, bool is_set, SetOptions* o) {
  for (size_t j = start; j < ctx.argc(); ++j) {
    std::string_view opt = ctx.arg(j);
    bool has_next = j + 1 < ctx.argc();
    unsigned& f = o->flags;
    if (is_opt(opt, "nx") && !(f & kXx) && is_set) {
      f |= kNx;
    } else if (is_opt(opt, "xx") && !(f & kNx) && is_set) {
      f |= kXx;
    } else if (is_opt(opt, "get") && is_set) {
      f |= kGet;
    } else if (is_opt(opt, "keepttl") && !(f & kPersist) && !(f & kAnyExpire) && is_set) {
      f |= kKeepTtl;
    } else if (is_opt(opt, "persist") && !is_set && !(f & kAnyExpire) && !(f & kKeepTtl)) {
      f |= kPersist;
    } else if ((is_opt(opt, "ex") || is_opt(opt, "px") || is_opt(opt, "exat") ||
                is_opt(opt, "pxat")) &&
               !(f & kKeepTtl) && !(f & kPersist) && has_next &&
               // Redis lets the same expire option repeat (the last one wins), not two kinds.
               !(f & kAnyExpire &
                 ~(is_opt(opt, "ex")     ? kEx
                   : is_opt(opt, "px")   ? kPx
                   : is_opt(opt, "exat") ? kExAt
                                         : kPxAt))) {
      f |= is_opt(opt, "ex") ? kEx : is_opt(opt, "px") ? kPx : is_opt(opt, "exat") ? kExAt : kPxAt;
      o->expire = ctx.arg(++j);
    } else {
      ctx.error(err::kSyntax);
      return false;
    }
  }
  return true;
}

// Redis's getExpireMillisecondsOrReply: the absolute expiry in ms.
bool expire_ms(CommandContext& ctx, std::string_view arg, unsigned flags, Millis* out) {
  int64_t v;
  if (!arg_int64(ctx, arg, &v)) return false;
  bool seconds = flags & (kEx | kExAt);
  if (v <= 0 || (seconds && v > std::numeric_limits<int64_t>::max() / 1000)) {
    reply_invalid_expire(ctx);
    return false;
  }
  if (seconds) v *= 1000;
  if (flags & (kEx | kPx)) {
    if (v > std::numeric_limits<int64_t>::max() - ctx.now) {
      reply_invalid_expire(ctx);
      return false;
    }
    v += ctx.now;
  }
  if (v <= 0) {
    reply_invalid_expire(ctx);
    return false;
  }
  *out = v;
  return true;
}

// The body of SET, SETNX, SETEX, PSETEX.
void set_generic(CommandContext& ctx, unsigned flags, std::string_view key, std::string_view value,
                 std::string_view expire_arg, bool reply_int) {
  Millis when = -1;
  if (flags & kAnyExpire) {
    if (!expire_ms(ctx, expire_arg, flags, &when)) return;
  }
  with_key(ctx, key, [&](store::Access& a) {
    bool found = a.found();
    if (flags & kGet) {
      count_hit(ctx, found);  // SET ... GET reads as GET does
      if (found)
        ctx.w.bulk(a.value());
      else
        ctx.w.null();
    }
    if (((flags & kNx) && found) || ((flags & kXx) && !found)) {
      if (found) a.touch();  // Redis's lookupKeyWrite: an access, even when nothing is written
      if (!(flags & kGet)) {
        if (reply_int)
          ctx.w.integer(0);
        else
          ctx.w.null();
      }
      return;
    }
    Millis expire = when;
    if ((flags & kKeepTtl) && found) expire = a.expire_at();
    if (flags & kGet) {
      // The old value was already written to the reply; set() may free it.
      a.set(value, expire);
    } else {
      a.set(value, expire);
      if (reply_int)
        ctx.w.integer(1);
      else
        ctx.w.ok();
    }
  });
}

// INCR/DECR/INCRBY/DECRBY.
void incr_by(CommandContext& ctx, std::string_view key, int64_t incr) {
  with_key(ctx, key, [&](store::Access& a) {
    int64_t value = 0;
    Millis expire = -1;
    if (a.found()) {
      if (!parse_int64(a.value(), &value)) {
        ctx.error(err::kNotInteger);
        return;
      }
      expire = a.expire_at();
    }
    if ((incr < 0 && value < 0 && incr < std::numeric_limits<int64_t>::min() - value) ||
        (incr > 0 && value > 0 && incr > std::numeric_limits<int64_t>::max() - value)) {
      ctx.error(err::kOverflow);
      return;
    }
    value += incr;
    char buf[24];
    size_t n = format_int64(buf, value);
    a.set(std::string_view(buf, n), expire);  // counters keep their TTL, as in Redis
    ctx.w.integer(value);
  });
}

}  // namespace

// ---------------------------------------------------------------- GET / SET family

void cmd_get(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!read_key(ctx, a)) return ctx.w.null();
    ctx.w.bulk(a.value());
  });
}

void cmd_set(CommandContext& ctx) {
  SetOptions o;
  if (!parse_set_options(ctx, 3, true, &o)) return;
  set_generic(ctx, o.flags, ctx.arg(1), ctx.arg(2), o.expire, false);
}

void cmd_setnx(CommandContext& ctx) { set_generic(ctx, kNx, ctx.arg(1), ctx.arg(2), {}, true); }

void cmd_setex(CommandContext& ctx) {
  set_generic(ctx, kEx, ctx.arg(1), ctx.arg(3), ctx.arg(2), false);
}

void cmd_psetex(CommandContext& ctx) {
  set_generic(ctx, kPx, ctx.arg(1), ctx.arg(3), ctx.arg(2), false);
}

void cmd_getset(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    count_hit(ctx, a.found());
    if (a.found())
      ctx.w.bulk(a.value());
    else
      ctx.w.null();
    a.set(ctx.arg(2), -1);
  });
}

void cmd_getdel(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    count_hit(ctx, a.found());
    if (!a.found()) {
      ctx.w.null();
      return;
    }
    ctx.w.bulk(a.value());
    a.erase();
  });
}

void cmd_getex(CommandContext& ctx) {
  SetOptions o;
  if (!parse_set_options(ctx, 2, false, &o)) return;
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!read_key(ctx, a)) return ctx.w.null();
    Millis when = -1;
    if ((o.flags & kAnyExpire) && !expire_ms(ctx, o.expire, o.flags, &when)) return;
    ctx.w.bulk(a.value());
    if ((o.flags & (kExAt | kPxAt)) && when <= ctx.now) {
      a.erase();
    } else if (o.flags & kAnyExpire) {
      a.set_expire(when);
    } else if ((o.flags & kPersist) && a.expire_at() >= 0) {
      a.set_expire(-1);
    }
  });
}

void cmd_mget(CommandContext& ctx) {
  ctx.w.array(ctx.argc() - 1);
  for (size_t i = 1; i < ctx.argc(); ++i) {
    with_key(ctx, ctx.arg(i), [&](store::Access& a) {
      if (read_key(ctx, a))
        ctx.w.bulk(a.value());
      else
        ctx.w.null();
    });
  }
}

void cmd_mset(CommandContext& ctx) {
  if (ctx.argc() % 2 == 0) {
    ctx.error("ERR wrong number of arguments for '" + ctx.spec->full_name(ctx.parent) +
              "' command");
    return;
  }
  for (size_t i = 1; i + 1 < ctx.argc(); i += 2) {
    with_key(ctx, ctx.arg(i), [&](store::Access& a) { a.set(ctx.arg(i + 1), -1); });
  }
  ctx.w.ok();
}

void cmd_msetnx(CommandContext& ctx) {
  if (ctx.argc() % 2 == 0) {
    ctx.error("ERR wrong number of arguments for '" + ctx.spec->full_name(ctx.parent) +
              "' command");
    return;
  }
  // All-or-nothing on one node needs every key's stripe held at once; take them in stripe order.
  // (Keys of one stripe share a lock, so each stripe is locked once.)
  for (size_t i = 1; i + 1 < ctx.argc(); i += 2) {
    bool exists = with_key(ctx, ctx.arg(i), [](store::Access& a) {
      if (a.found()) a.touch();  // Redis's lookupKeyWrite: an access
      return a.found();
    });
    if (exists) {
      ctx.w.integer(0);
      return;
    }
  }
  for (size_t i = 1; i + 1 < ctx.argc(); i += 2) {
    with_key(ctx, ctx.arg(i), [&](store::Access& a) { a.set(ctx.arg(i + 1), -1); });
  }
  ctx.w.integer(1);
}

// ---------------------------------------------------------------- counters

void cmd_incr(CommandContext& ctx) { incr_by(ctx, ctx.arg(1), 1); }
void cmd_decr(CommandContext& ctx) { incr_by(ctx, ctx.arg(1), -1); }

void cmd_incrby(CommandContext& ctx) {
  int64_t incr;
  if (!arg_int64(ctx, ctx.arg(2), &incr)) return;
  incr_by(ctx, ctx.arg(1), incr);
}

void cmd_decrby(CommandContext& ctx) {
  int64_t incr;
  if (!arg_int64(ctx, ctx.arg(2), &incr)) return;
  if (incr == std::numeric_limits<int64_t>::min()) {
    ctx.error("ERR decrement would overflow");
    return;
  }
  incr_by(ctx, ctx.arg(1), -incr);
}

void cmd_incrbyfloat(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    long double value = 0, incr = 0;
    Millis expire = -1;
    if (a.found()) {
      if (!parse_long_double(a.value(), &value)) {
        ctx.error(err::kNotFloat);
        return;
      }
      expire = a.expire_at();
    }
    if (!parse_long_double(ctx.arg(2), &incr)) {
      ctx.error(err::kNotFloat);
      return;
    }
    value += incr;
    if (std::isnan(value) || std::isinf(value)) {
      ctx.error(err::kNanOrInf);
      return;
    }
    std::string s = format_long_double_human(value);
    a.set(s, expire);
    a.set_encoding(store::kEncodingNoInt);  // Redis: a string object, never "int"
    ctx.w.bulk(s);
  });
}

void cmd_append(CommandContext& ctx) {
  std::string_view add = ctx.arg(2);
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    size_t old = a.found() ? a.value().size() : 0;
    if (!check_string_length(ctx, old + add.size())) return;
    Millis expire = a.found() ? a.expire_at() : -1;
    const bool existed = a.found();
    char* v = a.prepare(old + add.size(), expire);
    if (!add.empty()) std::memcpy(v + old, add.data(), add.size());
    a.commit();
    // Redis appends in place to an existing value ("raw"); a new key is stored as SET would.
    if (existed) a.set_encoding(store::kEncodingRaw);
    ctx.w.integer(static_cast<int64_t>(old + add.size()));
  });
}

void cmd_strlen(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!read_key(ctx, a)) return ctx.w.integer(0);
    ctx.w.integer(static_cast<int64_t>(a.value().size()));
  });
}

}  // namespace ringkv::server
