// String range commands and LCS: GETRANGE, SUBSTR, SETRANGE, LCS. Replies, error texts and
// the order in which arguments are checked follow Redis 7.0's t_string.c.
#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "server/util.h"

namespace ringkv::server {

namespace {

// Redis's checkStringLength: would `offset + len` bytes exceed proto-max-bulk-len? Replies the
// error and returns false if so. offset < 2^63 and len < 2^32, so the sum cannot wrap.
bool range_fits(CommandContext& ctx, uint64_t offset, uint64_t len) {
  const int64_t max = ctx.server.limits().max_bulk_len.load(std::memory_order_relaxed);
  if (offset + len > static_cast<uint64_t>(max)) {
    ctx.error(err::kStringTooLong);
    return false;
  }
  return true;
}

// One side of an LCS: the value (copied out of the store, so the stripe lock is not held
// while the table is built) or, when it is too long for any LCS table to fit, only its size.
struct LcsInput {
  std::string value;
  size_t size = 0;
};

LcsInput read_lcs_input(CommandContext& ctx, std::string_view key, uint64_t max_table) {
  return with_key(ctx, key, [&](store::Access& a) {
    LcsInput in;
    if (!read_key(ctx, a)) return in;
    in.size = a.value().size();
    // (size + 1) * (0 + 1) cells of 4 bytes is the smallest table this side can need.
    if ((in.size + 1) * sizeof(uint32_t) <= max_table) in.value.assign(a.value());
    return in;
  });
}

struct LcsMatch {
  uint32_t a_start, a_end, b_start, b_end;
};

}  // namespace

// ---------------------------------------------------------------- GETRANGE / SUBSTR

void cmd_getrange(CommandContext& ctx) {
  int64_t start, end;
  if (!arg_int64(ctx, ctx.arg(2), &start) || !arg_int64(ctx, ctx.arg(3), &end)) return;
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    if (!read_key(ctx, a)) return ctx.w.bulk("");
    std::string_view v = a.value();
    const int64_t len = static_cast<int64_t>(v.size());
    if (start < 0 && end < 0 && start > end) return ctx.w.bulk("");
    if (start < 0) start += len;
    if (end < 0) end += len;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (start > end || len == 0) return ctx.w.bulk("");
    ctx.w.bulk(v.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
  });
}

// ---------------------------------------------------------------- SETRANGE

void cmd_setrange(CommandContext& ctx) {
  int64_t offset;
  if (!arg_int64(ctx, ctx.arg(2), &offset)) return;
  if (offset < 0) return ctx.error(err::kOffsetOutOfRange);
  const std::string_view value = ctx.arg(3);
  with_key(ctx, ctx.arg(1), [&](store::Access& a) {
    // Setting nothing changes nothing (and creates no key): the reply is the current length.
    if (value.empty()) {
      a.touch();
      return ctx.w.integer(a.found() ? static_cast<int64_t>(a.value().size()) : 0);
    }
    // Checked before anything is allocated: a huge offset costs nothing when refused.
    if (!range_fits(ctx, static_cast<uint64_t>(offset), value.size())) return;
    const size_t old_len = a.found() ? a.value().size() : 0;
    const size_t off = static_cast<size_t>(offset);
    const size_t new_len = std::max(old_len, off + value.size());
    char* p = a.prepare(new_len, a.found() ? a.expire_at() : -1);  // SETRANGE keeps the TTL
    if (off > old_len) std::memset(p + old_len, 0, off - old_len);
    std::memcpy(p + off, value.data(), value.size());
    a.commit();
    a.set_encoding(store::kEncodingRaw);  // Redis builds it in place: "raw"
    ctx.w.integer(static_cast<int64_t>(new_len));
  });
}

// ---------------------------------------------------------------- LCS

std::string_view parse_lcs_args(const std::vector<std::string_view>& args, LcsOptions* out) {
  for (size_t j = 3; j < args.size(); ++j) {
    const std::string_view opt = c_string(args[j]);
    const bool more = j + 1 < args.size();
    if (equals_nocase(opt, "idx")) {
      out->idx = true;
    } else if (equals_nocase(opt, "len")) {
      out->len = true;
    } else if (equals_nocase(opt, "withmatchlen")) {
      out->with_match_len = true;
    } else if (equals_nocase(opt, "minmatchlen") && more) {
      if (!parse_int64(args[j + 1], &out->min_match_len)) return err::kNotInteger;
      if (out->min_match_len < 0) out->min_match_len = 0;
      ++j;
    } else {
      return err::kSyntax;
    }
  }
  if (out->idx && out->len) return err::kLcsLenAndIdx;
  return {};
}

void cmd_lcs(CommandContext& ctx) {
  const uint64_t max_table =
      static_cast<uint64_t>(ctx.server.limits().max_bulk_len.load(std::memory_order_relaxed));
  // Redis looks both keys up before it parses the options; so do we (it shows in the keyspace
  // hit/miss counters).
  const LcsInput a = read_lcs_input(ctx, ctx.arg(1), max_table);
  const LcsInput b = read_lcs_input(ctx, ctx.arg(2), max_table);

  LcsOptions opts;
  if (std::string_view e = parse_lcs_args(ctx.args, &opts); !e.empty()) return ctx.error(e);
  if (a.size >= UINT32_MAX - 1 || b.size >= UINT32_MAX - 1) return ctx.error(err::kLcsTooLong);

  // The dynamic-programming table: cell (i, j) holds the LCS length of a[0..i) and b[0..j).
  // Its size is bounded like Redis's: by proto-max-bulk-len, and by what we can allocate.
  const uint64_t alen = a.size, blen = b.size;
  const uint64_t cells = (alen + 1) * (blen + 1);
  if (cells * sizeof(uint32_t) > max_table) return ctx.error(err::kLcsMemoryLimit);
  std::unique_ptr<uint32_t[]> dp(new (std::nothrow) uint32_t[cells]);
  if (!dp) return ctx.error(err::kLcsNoMemory);
  auto at = [&](uint64_t i, uint64_t j) -> uint32_t& { return dp[j + i * (blen + 1)]; };
  const std::string_view sa = a.value, sb = b.value;
  for (uint64_t i = 0; i <= alen; ++i) {
    for (uint64_t j = 0; j <= blen; ++j) {
      if (i == 0 || j == 0)
        at(i, j) = 0;
      else if (sa[i - 1] == sb[j - 1])
        at(i, j) = at(i - 1, j - 1) + 1;
      else
        at(i, j) = std::max(at(i - 1, j), at(i, j - 1));
    }
  }

  // Walk back from the end, collecting the LCS string and the matching ranges (from the end of
  // the strings towards their start, as Redis emits them).
  const uint32_t total = at(alen, blen);
  const bool compute = opts.idx || !opts.len;
  std::string result(compute ? total : 0, '\0');
  std::vector<LcsMatch> matches;
  uint32_t idx = total;
  uint64_t i = alen, j = blen;
  bool in_range = false;
  LcsMatch cur{};
  while (compute && i > 0 && j > 0) {
    bool emit = false;
    if (sa[i - 1] == sb[j - 1]) {
      result[idx - 1] = sa[i - 1];
      if (!in_range) {
        cur = {static_cast<uint32_t>(i - 1), static_cast<uint32_t>(i - 1),
               static_cast<uint32_t>(j - 1), static_cast<uint32_t>(j - 1)};
        in_range = true;
      } else if (cur.a_start == i && cur.b_start == j) {
        --cur.a_start;  // contiguous: extend the range backwards
        --cur.b_start;
      } else {
        emit = true;
      }
      if (cur.a_start == 0 || cur.b_start == 0) emit = true;
      --idx;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1))
        --i;
      else
        --j;
      if (in_range) emit = true;
    }
    if (emit) {
      const uint32_t len = cur.a_end - cur.a_start + 1;
      if (opts.idx && (opts.min_match_len == 0 || len >= static_cast<uint64_t>(opts.min_match_len)))
        matches.push_back(cur);
      in_range = false;
    }
  }

  if (opts.idx) {
    ctx.w.map(2);
    ctx.w.bulk("matches");
    ctx.w.array(matches.size());
    for (const LcsMatch& m : matches) {
      ctx.w.array(opts.with_match_len ? 3 : 2);
      ctx.w.array(2);
      ctx.w.integer(m.a_start);
      ctx.w.integer(m.a_end);
      ctx.w.array(2);
      ctx.w.integer(m.b_start);
      ctx.w.integer(m.b_end);
      if (opts.with_match_len) ctx.w.integer(m.a_end - m.a_start + 1);
    }
    ctx.w.bulk("len");
    ctx.w.integer(total);
  } else if (opts.len) {
    ctx.w.integer(total);
  } else {
    ctx.w.bulk(result);
  }
}

}  // namespace ringkv::server
