// Bit commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
// BITFIELD_RO. Bits are numbered from the most significant bit of the first byte, as in Redis;
// replies, error texts, the order of argument checks and the handling of out-of-range offsets
// follow Redis 7.0's bitops.c.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "server/util.h"

namespace ringkv::server {

namespace {

// ---------------------------------------------------------------- helpers

// Redis's getBitOffsetFromArgument: a bit offset >= 0 whose byte is below proto-max-bulk-len.
// With `hash` (BITFIELD), "#N" means N * bits.
bool bit_offset_arg(CommandContext& ctx, std::string_view s, bool hash, int bits, uint64_t* out) {
  const bool use_hash = hash && bits > 0 && !s.empty() && s[0] == '#';
  int64_t v;
  if (!parse_int64(use_hash ? s.substr(1) : s, &v)) {
    ctx.error(err::kBitOffset);
    return false;
  }
  // Redis multiplies in (signed, in practice wrapping) 64-bit arithmetic; a wrapped result
  // fails the checks below.
  if (use_hash) v = static_cast<int64_t>(static_cast<uint64_t>(v) * static_cast<uint64_t>(bits));
  const int64_t max = ctx.server.limits().max_bulk_len.load(std::memory_order_relaxed);
  if (v < 0 || (v >> 3) >= max) {
    ctx.error(err::kBitOffset);
    return false;
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

inline int bit_at(const unsigned char* p, uint64_t bit) {
  return (p[bit >> 3] >> (7 - (bit & 7))) & 1;
}

uint64_t popcount(const unsigned char* p, size_t n) {
  uint64_t count = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    count += static_cast<uint64_t>(__builtin_popcountll(w));
  }
  for (; i < n; ++i) count += static_cast<uint64_t>(__builtin_popcount(p[i]));
  return count;
}

// The first bit equal to `bit` in [first, last] (bit numbers), or -1.
int64_t find_bit(const unsigned char* p, uint64_t first, uint64_t last, int bit) {
  const unsigned char skip = bit ? 0x00 : 0xff;  // a byte that cannot hold what we look for
  uint64_t i = first;
  while (i <= last) {
    if ((i & 63) == 0 && i + 63 <= last) {
      uint64_t w;
      std::memcpy(&w, p + (i >> 3), 8);
      if (w == (bit ? 0 : ~uint64_t{0})) {
        i += 64;
        continue;
      }
    }
    if ((i & 7) == 0 && i + 7 <= last && p[i >> 3] == skip) {
      i += 8;
      continue;
    }
    if (bit_at(p, i) == bit) return static_cast<int64_t>(i);
    ++i;
  }
  return -1;
}

// Redis's start/end conversion for BITCOUNT and BITPOS: negative indexes count from the end,
// then both are clamped into [0, total - 1]. Returns false for an empty range.
bool clamp_range(int64_t total, int64_t* start, int64_t* end) {
  if (*start < 0) *start += total;
  if (*end < 0) *end += total;
  if (*start < 0) *start = 0;
  if (*end < 0) *end = 0;
  if (*end >= total) *end = total - 1;
  return *start <= *end;
}

// Parses the BIT|BYTE unit argument; replies a syntax error for anything else.
bool unit_arg(CommandContext& ctx, std::string_view s, bool* is_bit) {
  const std::string_view u = c_string(s);
  if (equals_nocase(u, "bit")) {
    *is_bit = true;
  } else if (equals_nocase(u, "byte")) {
    *is_bit = false;
  } else {
    ctx.error(err::kSyntax);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- bitfield integers

uint64_t get_unsigned_field(const unsigned char* p, size_t len, uint64_t offset, int bits) {
  uint64_t value = 0;
  for (int j = 0; j < bits; ++j, ++offset) {
    const uint64_t byte = offset >> 3;
    const int bitval = byte < len ? bit_at(p, offset) : 0;  // past the end reads as zeros
    value = (value << 1) | static_cast<uint64_t>(bitval);
  }
  return value;
}

int64_t get_signed_field(const unsigned char* p, size_t len, uint64_t offset, int bits) {
  uint64_t u = get_unsigned_field(p, len, offset, bits);
  // Sign-extend a field narrower than 64 bits.
  if (bits < 64 && (u & (uint64_t{1} << (bits - 1)))) u |= ~uint64_t{0} << bits;
  return static_cast<int64_t>(u);
}

// REQUIRES: the string holds bit offset + bits - 1.
void set_unsigned_field(unsigned char* p, uint64_t offset, int bits, uint64_t value) {
  for (int j = 0; j < bits; ++j, ++offset) {
    const unsigned bitval = (value >> (bits - 1 - j)) & 1;
    const int shift = 7 - static_cast<int>(offset & 7);
    unsigned char& b = p[offset >> 3];
    b = static_cast<unsigned char>((b & ~(1u << shift)) | (bitval << shift));
  }
}

enum class Overflow { kWrap, kSat, kFail };

// Redis's checkUnsignedBitfieldOverflow: 0 when value + incr fits in `bits` bits, 1 on overflow
// and -1 on underflow, with *limit set to the value to store (wrapped or saturated).
int check_unsigned_overflow(uint64_t value, int64_t incr, int bits, Overflow ow, uint64_t* limit) {
  const uint64_t max = (uint64_t{1} << bits) - 1;  // bits <= 63 for unsigned fields
  const int64_t max_incr = static_cast<int64_t>(max - value);
  const int64_t min_incr = static_cast<int64_t>(uint64_t{0} - value);  // wraps like Redis's
  auto wrap = [&] { *limit = (value + static_cast<uint64_t>(incr)) & ~(~uint64_t{0} << bits); };
  if (value > max || (incr > 0 && incr > max_incr)) {
    if (ow == Overflow::kWrap)
      wrap();
    else if (ow == Overflow::kSat)
      *limit = max;
    return 1;
  }
  if (incr < 0 && incr < min_incr) {
    if (ow == Overflow::kWrap)
      wrap();
    else if (ow == Overflow::kSat)
      *limit = 0;
    return -1;
  }
  return 0;
}

// Redis's checkSignedBitfieldOverflow (same contract, signed fields of 1 to 64 bits).
int check_signed_overflow(int64_t value, int64_t incr, int bits, Overflow ow, int64_t* limit) {
  const int64_t max = bits == 64 ? INT64_MAX : (int64_t{1} << (bits - 1)) - 1;
  const int64_t min = -max - 1;
  // Both may wrap; like Redis, they are only relied on once `value` is known to be in range.
  const int64_t max_incr =
      static_cast<int64_t>(static_cast<uint64_t>(max) - static_cast<uint64_t>(value));
  const int64_t min_incr =
      static_cast<int64_t>(static_cast<uint64_t>(min) - static_cast<uint64_t>(value));
  auto wrap = [&] {
    uint64_t c = static_cast<uint64_t>(value) + static_cast<uint64_t>(incr);
    if (bits < 64) {
      const uint64_t mask = ~uint64_t{0} << bits;
      if (c & (uint64_t{1} << (bits - 1)))
        c |= mask;
      else
        c &= ~mask;
    }
    *limit = static_cast<int64_t>(c);
  };
  if (value > max || (bits != 64 && incr > max_incr) ||
      (value >= 0 && incr > 0 && incr > max_incr)) {
    if (ow == Overflow::kWrap)
      wrap();
    else if (ow == Overflow::kSat)
      *limit = max;
    return 1;
  }
  if (value < min || (bits != 64 && incr < min_incr) ||
      (value < 0 && incr < 0 && incr < min_incr)) {
    if (ow == Overflow::kWrap)
      wrap();
    else if (ow == Overflow::kSat)
      *limit = min;
    return -1;
  }
  return 0;
}

enum class FieldOp { kGet, kSet, kIncrBy };

struct BitfieldOp {
  FieldOp op;
  Overflow overflow;
  bool is_signed;
  int bits;
  uint64_t offset;
  int64_t value;  // SET value or INCRBY increment
};

// Redis's getBitfieldTypeFromArgument: i1..i64 or u1..u63 (read as a C string).
bool bitfield_type_arg(CommandContext& ctx, std::string_view arg, bool* is_signed, int* bits) {
  const std::string_view s = c_string(arg);
  int64_t n;
  if (s.empty() || (s[0] != 'i' && s[0] != 'u') || !parse_int64(s.substr(1), &n) || n < 1 ||
      (s[0] == 'i' && n > 64) || (s[0] == 'u' && n > 63)) {
    ctx.error(err::kBitfieldType);
    return false;
  }
  *is_signed = s[0] == 'i';
  *bits = static_cast<int>(n);
  return true;
}

void bitfield_generic(CommandContext& ctx, bool read_only_command) {
  std::vector<BitfieldOp> ops;
  Overflow overflow = Overflow::kWrap;
  bool writes = false;
  uint64_t highest_write_bit = 0;
  // Every operation is parsed before any runs: an error anywhere leaves the key untouched.
  for (size_t j = 2; j < ctx.argc(); ++j) {
    const size_t rest = ctx.argc() - j - 1;
    const std::string_view sub = c_string(ctx.arg(j));
    FieldOp op;
    if (equals_nocase(sub, "get") && rest >= 2) {
      op = FieldOp::kGet;
    } else if (equals_nocase(sub, "set") && rest >= 3) {
      op = FieldOp::kSet;
    } else if (equals_nocase(sub, "incrby") && rest >= 3) {
      op = FieldOp::kIncrBy;
    } else if (equals_nocase(sub, "overflow") && rest >= 1) {
      const std::string_view type = c_string(ctx.arg(++j));
      if (equals_nocase(type, "wrap"))
        overflow = Overflow::kWrap;
      else if (equals_nocase(type, "sat"))
        overflow = Overflow::kSat;
      else if (equals_nocase(type, "fail"))
        overflow = Overflow::kFail;
      else
        return ctx.error(err::kBitfieldOverflow);
      continue;
    } else {
      return ctx.error(err::kSyntax);
    }
    BitfieldOp o{op, overflow, false, 0, 0, 0};
    if (!bitfield_type_arg(ctx, ctx.arg(j + 1), &o.is_signed, &o.bits)) return;
    if (!bit_offset_arg(ctx, ctx.arg(j + 2), true, o.bits, &o.offset)) return;
    if (op != FieldOp::kGet) {
      writes = true;
      highest_write_bit = std::max(highest_write_bit, o.offset + static_cast<uint64_t>(o.bits) - 1);
      if (!arg_int64(ctx, ctx.arg(j + 3), &o.value)) return;
    }
    ops.push_back(o);
    j += op == FieldOp::kGet ? 2 : 3;
  }
  if (writes && read_only_command) return ctx.error(err::kBitfieldRo);

  // Runs the operations on the bytes `p[0, len)`, which hold the string from byte `base` on
  // (bits past `len` read as zeros). Returns whether any SET/INCRBY changed a field.
  auto run = [&](unsigned char* p, size_t len, uint64_t base) {
    bool changed = false;
    ctx.w.array(ops.size());
    for (const BitfieldOp& o : ops) {
      const uint64_t off = o.offset - base * 8;
      if (o.op == FieldOp::kGet) {
        if (o.is_signed)
          ctx.w.integer(get_signed_field(p, len, off, o.bits));
        else
          ctx.w.integer(static_cast<int64_t>(get_unsigned_field(p, len, off, o.bits)));
        continue;
      }
      // SET and INCRBY: `p` reaches the highest written bit.
      int overflowed;
      uint64_t old_bits, new_bits;
      int64_t reply;
      if (o.is_signed) {
        const int64_t old = get_signed_field(p, len, off, o.bits);
        int64_t limit = 0, next;
        if (o.op == FieldOp::kIncrBy) {
          overflowed = check_signed_overflow(old, o.value, o.bits, o.overflow, &limit);
          next = overflowed ? limit
                            : static_cast<int64_t>(static_cast<uint64_t>(old) +
                                                   static_cast<uint64_t>(o.value));
          reply = next;
        } else {
          overflowed = check_signed_overflow(o.value, 0, o.bits, o.overflow, &limit);
          next = overflowed ? limit : o.value;
          reply = old;
        }
        old_bits = static_cast<uint64_t>(old);
        new_bits = static_cast<uint64_t>(next);
      } else {
        const uint64_t old = get_unsigned_field(p, len, off, o.bits);
        uint64_t limit = 0, next;
        if (o.op == FieldOp::kIncrBy) {
          overflowed = check_unsigned_overflow(old, o.value, o.bits, o.overflow, &limit);
          next = overflowed ? limit : old + static_cast<uint64_t>(o.value);
          reply = static_cast<int64_t>(next);
        } else {
          next = static_cast<uint64_t>(o.value);
          overflowed = check_unsigned_overflow(next, 0, o.bits, o.overflow, &limit);
          if (overflowed) next = limit;
          reply = static_cast<int64_t>(old);
        }
        old_bits = old;
        new_bits = next;
      }
      if (overflowed && o.overflow == Overflow::kFail) {
        ctx.w.null();  // OVERFLOW FAIL: nothing written
        continue;
      }
      ctx.w.integer(reply);
      set_unsigned_field(p, off, o.bits, new_bits);
      // Compared as stored (sign-extended signed fields compare the same way).
      if (old_bits != new_bits) changed = true;
    }
    return changed;
  };

  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!writes) {
      if (!read_key(ctx, a)) return (void)run(nullptr, 0, 0);
      std::string_view v = a.value();
      // Only GETs: they never write through this pointer.
      return (void)run(reinterpret_cast<unsigned char*>(const_cast<char*>(v.data())), v.size(), 0);
    }
    // The operations run on a copy of the bytes they reach, so that the entry is rewritten only
    // when Redis would write: when the key is created or grows to hold the highest bit a
    // SET/INCRBY may write (even if OVERFLOW FAIL then writes nothing), or a field changes.
    // The window is [lo, new_len): every write lies below new_len, and what lies past it
    // reads as zeros.
    const std::string_view old = a.found() ? a.value() : std::string_view();
    const size_t new_len = std::max<size_t>(old.size(), (highest_write_bit >> 3) + 1);
    uint64_t lo_bit = UINT64_MAX;
    for (const BitfieldOp& o : ops) lo_bit = std::min(lo_bit, o.offset);
    const size_t lo = std::min(static_cast<size_t>(lo_bit >> 3), new_len - 1);
    std::string window(new_len - lo, '\0');
    if (lo < old.size()) old.copy(window.data(), old.size() - lo, lo);
    const bool changed = run(reinterpret_cast<unsigned char*>(window.data()), window.size(), lo);
    const bool grows = !a.found() || new_len > old.size();
    if (!grows && !changed) {
      a.set_encoding(store::kEncodingRaw);  // Redis unshares the string first: "raw" all the same
      return a.touch();
    }
    // Known difference: when the string grows but every write failed (OVERFLOW FAIL), Redis
    // stores the longer string without signalling the key to WATCH; our commit signals it.
    const size_t old_len = old.size();
    char* p = a.prepare(new_len, a.found() ? a.expire_at() : -1);  // BITFIELD keeps the TTL
    if (new_len > old_len) std::memset(p + old_len, 0, new_len - old_len);
    std::memcpy(p + lo, window.data(), window.size());
    a.commit();
    a.set_encoding(store::kEncodingRaw);  // Redis writes bits in place: "raw"
  });
}

// Copies a key's value out (for BITOP's sources): nothing of the store is held afterwards.
struct Source {
  bool found = false;
  std::string value;
};

}  // namespace

// ---------------------------------------------------------------- SETBIT / GETBIT

void cmd_setbit(CommandContext& ctx) {
  uint64_t offset;
  if (!bit_offset_arg(ctx, ctx.arg(2), false, 0, &offset)) return;
  int64_t on;
  if (!parse_int64(ctx.arg(3), &on) || (on & ~int64_t{1}) != 0) return ctx.error(err::kBitValue);
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    const size_t byte = static_cast<size_t>(offset >> 3);
    const int shift = 7 - static_cast<int>(offset & 7);
    const size_t old_len = a.found() ? a.value().size() : 0;
    const int old_bit =
        byte < old_len ? (static_cast<unsigned char>(a.value()[byte]) >> shift) & 1 : 0;
    // Redis writes (and signals the key as modified) only when the key is created or grows, or
    // the bit changes.
    if (!a.found() || byte >= old_len || old_bit != on) {
      const size_t new_len = std::max(old_len, byte + 1);
      char* p = a.prepare(new_len, a.found() ? a.expire_at() : -1);  // SETBIT keeps the TTL
      if (new_len > old_len) std::memset(p + old_len, 0, new_len - old_len);
      unsigned char& b = reinterpret_cast<unsigned char*>(p)[byte];
      b = static_cast<unsigned char>((b & ~(1u << shift)) | (static_cast<unsigned>(on) << shift));
      a.commit();
      a.set_encoding(store::kEncodingRaw);  // Redis writes bits in place: "raw"
    } else {
      a.set_encoding(store::kEncodingRaw);  // Redis unshares the string first: "raw" all the same
      a.touch();
    }
    ctx.w.integer(old_bit);
  });
}

void cmd_getbit(CommandContext& ctx) {
  uint64_t offset;
  if (!bit_offset_arg(ctx, ctx.arg(2), false, 0, &offset)) return;
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!read_key(ctx, a)) return ctx.w.integer(0);
    std::string_view v = a.value();
    const uint64_t byte = offset >> 3;
    ctx.w.integer(byte < v.size() ? bit_at(reinterpret_cast<const unsigned char*>(v.data()), offset)
                                  : 0);
  });
}

// ---------------------------------------------------------------- BITCOUNT

void cmd_bitcount(CommandContext& ctx) {
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    // A missing key counts 0 before the arguments are even looked at (Redis 7.0 does this).
    if (!read_key(ctx, a)) return ctx.w.integer(0);
    std::string_view v = a.value();
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    const int64_t len = static_cast<int64_t>(v.size());
    int64_t start = 0, end = len - 1;
    bool is_bit = false;
    if (ctx.argc() == 4 || ctx.argc() == 5) {
      if (!arg_int64(ctx, ctx.arg(2), &start) || !arg_int64(ctx, ctx.arg(3), &end)) return;
      if (start < 0 && end < 0 && start > end) return ctx.w.integer(0);
      if (ctx.argc() == 5 && !unit_arg(ctx, ctx.arg(4), &is_bit)) return;
      if (!clamp_range(is_bit ? len * 8 : len, &start, &end)) return ctx.w.integer(0);
    } else if (ctx.argc() != 2) {
      return ctx.error(err::kSyntax);
    }
    if (start > end) return ctx.w.integer(0);
    if (!is_bit) {
      return ctx.w.integer(
          static_cast<int64_t>(popcount(p + start, static_cast<size_t>(end - start + 1))));
    }
    // Bit range: count whole bytes, then take off the bits of the edge bytes outside it.
    const int64_t first = start >> 3, last = end >> 3;
    uint64_t count = popcount(p + first, static_cast<size_t>(last - first + 1));
    const unsigned head = static_cast<unsigned>(start & 7),
                   tail = static_cast<unsigned>(7 - (end & 7));
    if (head) count -= static_cast<uint64_t>(__builtin_popcount(p[first] >> (8 - head)));
    if (tail) count -= static_cast<uint64_t>(__builtin_popcount(p[last] & ((1u << tail) - 1)));
    ctx.w.integer(static_cast<int64_t>(count));
  });
}

// ---------------------------------------------------------------- BITPOS

void cmd_bitpos(CommandContext& ctx) {
  int64_t bit;
  if (!arg_int64(ctx, ctx.arg(2), &bit)) return;
  if (bit != 0 && bit != 1) return ctx.error(err::kBitArgument);
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    // A missing key is an endless run of zeros, whatever the range says.
    if (!read_key(ctx, a)) return ctx.w.integer(bit ? -1 : 0);
    std::string_view v = a.value();
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    const int64_t len = static_cast<int64_t>(v.size());
    int64_t start = 0, end = len - 1;
    bool is_bit = false, end_given = false;
    if (ctx.argc() >= 4 && ctx.argc() <= 6) {
      if (!arg_int64(ctx, ctx.arg(3), &start)) return;
      if (ctx.argc() == 6 && !unit_arg(ctx, ctx.arg(5), &is_bit)) return;
      if (ctx.argc() >= 5) {
        if (!arg_int64(ctx, ctx.arg(4), &end)) return;
        end_given = true;
      } else {
        end = is_bit ? len * 8 + 7 : len - 1;
      }
      if (!clamp_range(is_bit ? len * 8 : len, &start, &end)) return ctx.w.integer(-1);
    } else if (ctx.argc() != 3) {
      return ctx.error(err::kSyntax);
    }
    if (start > end) return ctx.w.integer(-1);
    const uint64_t first = is_bit ? static_cast<uint64_t>(start) : static_cast<uint64_t>(start) * 8;
    const uint64_t last = is_bit ? static_cast<uint64_t>(end) : static_cast<uint64_t>(end) * 8 + 7;
    const int64_t pos = find_bit(p, first, last, static_cast<int>(bit));
    if (pos >= 0) return ctx.w.integer(pos);
    // No clear bit in range: without an explicit end the string counts as padded with zeros,
    // so the answer is the first bit past the range; with an end, there is none.
    ctx.w.integer(bit == 0 && !end_given ? static_cast<int64_t>(last + 1) : -1);
  });
}

// ---------------------------------------------------------------- BITOP

std::string_view parse_bitop_args(const std::vector<std::string_view>& args, BitOp* op) {
  const std::string_view name = c_string(args[1]);
  if (equals_nocase(name, "and"))
    *op = BitOp::kAnd;
  else if (equals_nocase(name, "or"))
    *op = BitOp::kOr;
  else if (equals_nocase(name, "xor"))
    *op = BitOp::kXor;
  else if (equals_nocase(name, "not"))
    *op = BitOp::kNot;
  else
    return err::kSyntax;
  if (*op == BitOp::kNot && args.size() != 4) return err::kBitopNot;
  return {};
}

void cmd_bitop(CommandContext& ctx) {
  BitOp op = BitOp::kAnd;
  if (std::string_view e = parse_bitop_args(ctx.args, &op); !e.empty()) return ctx.error(e);

  // Sources are copied out one key at a time (never two stripe locks at once); a missing key
  // reads as an empty string.
  std::vector<Source> sources(ctx.argc() - 3);
  size_t max_len = 0;
  for (size_t j = 0; j < sources.size(); ++j) {
    with_key(ctx, ctx.arg(j + 3), [&](store::Access& a) {
      if (!read_key(ctx, a)) return;
      sources[j].found = true;
      sources[j].value.assign(a.value());
    });
    max_len = std::max(max_len, sources[j].value.size());
  }

  std::string result(max_len, '\0');
  for (size_t i = 0; i < max_len; ++i) {
    auto byte_of = [&](const Source& s) -> unsigned char {
      return i < s.value.size() ? static_cast<unsigned char>(s.value[i]) : 0;
    };
    unsigned char out = byte_of(sources[0]);
    if (op == BitOp::kNot) out = static_cast<unsigned char>(~out);
    for (size_t j = 1; j < sources.size(); ++j) {
      const unsigned char b = byte_of(sources[j]);
      if (op == BitOp::kAnd)
        out &= b;
      else if (op == BitOp::kOr)
        out |= b;
      else
        out ^= b;
    }
    result[i] = static_cast<char>(out);
  }

  // The destination is replaced (losing any TTL), or deleted when the result is empty.
  with_key(ctx, ctx.arg(2), [&](store::Access& a) {
    if (max_len > 0) {
      a.set(result, -1);
      a.set_encoding(store::kEncodingRaw);  // Redis stores BITOP's result as a raw string
    } else if (a.found()) {
      a.erase();
    }
  });
  ctx.w.integer(static_cast<int64_t>(max_len));
}

// ---------------------------------------------------------------- BITFIELD

void cmd_bitfield(CommandContext& ctx) { bitfield_generic(ctx, false); }
void cmd_bitfield_ro(CommandContext& ctx) { bitfield_generic(ctx, true); }

}  // namespace ringkv::server
