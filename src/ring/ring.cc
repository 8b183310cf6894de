// The ring itself: validation, point placement, the precomputed preference lists, look-ups and
// ranges. The migration plan (diff of two rings) lives in diff.cc.
#include "ringkv/ring.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <limits>

namespace ringkv::ring {
namespace {

constexpr Token kMaxToken = std::numeric_limits<Token>::max();

// Ids are arbitrary bytes; error messages must stay printable and unambiguous.
std::string quote_id(std::string_view id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : id) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

// One virtual node while building; sorted by (position, server index, i). Server indices follow
// id order, so this is the (position, id, i) order of the contract.
struct Point {
  Token pos;
  uint32_t server;
  uint32_t i;
  friend bool operator<(const Point& a, const Point& b) {
    if (a.pos != b.pos) return a.pos < b.pos;
    if (a.server != b.server) return a.server < b.server;
    return a.i < b.i;
  }
};

Status validate(std::vector<ServerSpec>& servers, const RingOptions& options) {
  if (options.vnodes == 0) return Status::invalid_argument("vnodes must be at least 1, got 0");
  if (options.max_replicas == 0 || options.max_replicas > kMaxReplicasLimit) {
    return Status::invalid_argument("max_replicas must be between 1 and " +
                                    std::to_string(kMaxReplicasLimit) + ", got " +
                                    std::to_string(options.max_replicas));
  }
  for (size_t k = 0; k < servers.size(); ++k) {
    if (servers[k].id.empty()) {
      return Status::invalid_argument("server #" + std::to_string(k) + " has an empty id");
    }
    if (servers[k].weight == 0) {
      return Status::invalid_argument("server " + quote_id(servers[k].id) +
                                      " has weight 0; weights must be at least 1");
    }
  }
  std::sort(servers.begin(), servers.end(),
            [](const ServerSpec& a, const ServerSpec& b) { return a.id < b.id; });
  for (size_t k = 1; k < servers.size(); ++k) {
    if (servers[k].id == servers[k - 1].id) {
      return Status::invalid_argument("duplicate server id " + quote_id(servers[k].id));
    }
  }
  if (servers.size() > kMaxServers) {
    return Status::invalid_argument("too many servers: " + std::to_string(servers.size()) +
                                    ", the limit is " + std::to_string(kMaxServers));
  }
  uint64_t total = 0;
  for (const ServerSpec& s : servers) {
    total += uint64_t{options.vnodes} * s.weight;  // each term < 2^64; we stop before overflow
    if (total > kMaxPoints) {
      return Status::invalid_argument("too many points: vnodes (" + std::to_string(options.vnodes) +
                                      ") times the sum of the weights exceeds the limit of " +
                                      std::to_string(kMaxPoints) +
                                      " points; lower vnodes or the weights");
    }
  }
  return Status::ok();
}

uint64_t compute_fingerprint(const std::vector<ServerSpec>& servers, uint32_t vnodes) {
  std::string text = "ringkv ring v1\nvnodes " + std::to_string(vnodes) + "\n";
  for (const ServerSpec& s : servers) {
    text += std::to_string(s.id.size());
    text += ':';
    text += s.id;
    text += ' ';
    text += std::to_string(s.weight);
    text += '\n';
  }
  return token_of(text);
}

}  // namespace

// ---- Build --------------------------------------------------------------------------------------

Result<std::shared_ptr<const Ring>> Ring::build(std::vector<ServerSpec> servers,
                                                RingOptions options) {
  return build_with_positions(std::move(servers), options, nullptr);
}

Result<std::shared_ptr<const Ring>> Ring::build_with_positions(std::vector<ServerSpec> servers,
                                                               RingOptions options,
                                                               const PositionFn& position_of) {
  if (Status st = validate(servers, options); !st.is_ok()) return st;

  std::shared_ptr<Ring> ring(new Ring());
  ring->vnodes_ = options.vnodes;
  ring->max_replicas_ = options.max_replicas;
  ring->fingerprint_ = compute_fingerprint(servers, options.vnodes);
  ring->servers_ = std::move(servers);
  const std::vector<ServerSpec>& specs = ring->servers_;
  if (specs.empty()) return std::shared_ptr<const Ring>(std::move(ring));

  // Place every point. The name buffer is reused: "<id>#" stays, only the digits change.
  std::vector<Point> points;
  size_t total = 0;
  for (const ServerSpec& s : specs) total += size_t{options.vnodes} * s.weight;
  points.reserve(total);
  std::string name;
  for (uint32_t s = 0; s < specs.size(); ++s) {
    const uint32_t count = options.vnodes * specs[s].weight;  // <= kMaxPoints, checked above
    name.assign(specs[s].id);
    name += '#';
    const size_t prefix = name.size();
    for (uint32_t i = 0; i < count; ++i) {
      Token pos;
      if (position_of) {
        pos = position_of(specs[s].id, i);
      } else {
        char digits[16];
        auto [end, ec] = std::to_chars(digits, digits + sizeof digits, i);
        name.resize(prefix);
        name.append(digits, end);
        pos = token_of(name);
      }
      points.push_back({pos, s, i});
    }
  }
  std::sort(points.begin(), points.end());

  // Distinct positions; at a shared position the first point in (position, id, i) order owns it.
  const size_t p_count = points.size();
  ring->point_server_.resize(p_count);
  for (size_t k = 0; k < p_count; ++k) {
    ring->point_server_[k] = static_cast<uint16_t>(points[k].server);
    if (k == 0 || points[k].pos != points[k - 1].pos) {
      ring->pos_.push_back(points[k].pos);
      ring->first_point_.push_back(static_cast<uint32_t>(k));
    }
  }
  points = {};  // release before allocating the preference table

  // Preference lists, precomputed with one backward sweep: the first `stride` distinct servers from
  // point k are server(k) followed by those from point k+1 with server(k) removed. Walking from the
  // end is what makes this O(points * stride) even for lopsided weights, where a forward walk per
  // point could cross most of the ring to find a second server. The sweep starts from the list at
  // point 0, because the walk wraps from the last point to the first.
  const uint32_t stride =
      static_cast<uint32_t>(std::min<size_t>(options.max_replicas, specs.size()));
  ring->stride_ = stride;
  const std::vector<uint16_t>& ps = ring->point_server_;
  std::vector<uint16_t> list;  // the current list, at most stride entries
  list.reserve(stride + 1);
  for (size_t k = 0; k < p_count && list.size() < stride; ++k) {
    if (std::find(list.begin(), list.end(), ps[k]) == list.end()) list.push_back(ps[k]);
  }
  const size_t d_count = ring->pos_.size();
  ring->pref_.resize(d_count * stride);
  size_t j = d_count;  // next distinct position (from the top) whose first point we wait for
  for (size_t k = p_count; k-- > 0;) {
    auto it = std::find(list.begin(), list.end(), ps[k]);
    if (it != list.end()) {
      list.erase(it);
    } else if (list.size() == stride) {
      list.pop_back();
    }
    list.insert(list.begin(), ps[k]);
    if (j > 0 && ring->first_point_[j - 1] == k) {
      --j;
      std::copy(list.begin(), list.end(), ring->pref_.begin() + j * stride);
    }
  }
  assert(j == 0);

  // Top-level index: about one position per bucket, so a look-up is one or two probes.
  const int bits = std::clamp(static_cast<int>(std::bit_width(d_count - 1)), 1, 24);
  ring->bucket_shift_ = static_cast<uint32_t>(64 - bits);
  const size_t buckets = size_t{1} << bits;
  ring->bucket_.resize(buckets + 1);
  size_t q = 0;
  for (size_t h = 0; h < buckets; ++h) {
    const Token start = static_cast<Token>(h) << ring->bucket_shift_;
    while (q < d_count && ring->pos_[q] < start) ++q;
    ring->bucket_[h] = static_cast<uint32_t>(q);
  }
  ring->bucket_[buckets] = static_cast<uint32_t>(d_count);

  return std::shared_ptr<const Ring>(std::move(ring));
}

// ---- Look-ups
// ------------------------------------------------------------------------------------

uint32_t Ring::find(Token t) const {
  const size_t h = t >> bucket_shift_;
  uint32_t lo = bucket_[h];
  const uint32_t hi = bucket_[h + 1];
  // The answer is in [lo, hi]: pos_[hi] (if any) is at or above the next bucket's start, so > t.
  if (hi - lo <= 8) {
    while (lo < hi && pos_[lo] < t) ++lo;
  } else {
    lo = static_cast<uint32_t>(std::lower_bound(pos_.begin() + lo, pos_.begin() + hi, t) -
                               pos_.begin());
  }
  return lo == pos_.size() ? 0 : lo;  // above the highest point: wrap to the lowest
}

uint32_t Ring::owner_index(Token t) const {
  if (pos_.empty()) return kNoServer;
  return pref_[size_t{find(t)} * stride_];
}

const std::string& Ring::owner(Token t) const {
  static const std::string kNone;
  const uint32_t s = owner_index(t);
  return s == kNoServer ? kNone : servers_[s].id;
}

size_t Ring::list_at(uint32_t j, size_t n, uint32_t* out) const {
  const size_t m = std::min(n, servers_.size());
  if (m <= stride_) {
    const uint16_t* row = pref_.data() + size_t{j} * stride_;
    for (size_t r = 0; r < m; ++r) out[r] = row[r];
    return m;
  }
  // Longer than the precomputed lists: walk the points, dedupe against what we have so far.
  const size_t p_count = point_server_.size();
  size_t k = first_point_[j];
  size_t got = 0;
  for (size_t step = 0; step < p_count && got < m; ++step) {
    const uint32_t s = point_server_[k];
    if (std::find(out, out + got, s) == out + got) out[got++] = s;
    if (++k == p_count) k = 0;
  }
  return got;
}

size_t Ring::preference_list(Token t, size_t n, uint32_t* out) const {
  assert(n >= 1 && "preference_list needs n >= 1");
  if (n == 0 || pos_.empty()) return 0;
  return list_at(find(t), n, out);
}

Result<std::vector<std::string>> Ring::preference_ids(Token t, size_t n) const {
  if (n == 0) return Status::invalid_argument("preference list length n must be at least 1");
  std::vector<uint32_t> idx(std::min(n, servers_.size()));
  idx.resize(preference_list(t, n, idx.data()));
  std::vector<std::string> ids;
  ids.reserve(idx.size());
  for (uint32_t s : idx) ids.push_back(servers_[s].id);
  return ids;
}

// ---- Ranges
// ---------------------------------------------------------------------------------------

size_t Ring::range_count() const {
  if (pos_.empty()) return 1;
  return pos_.size() + (pos_.back() != kMaxToken ? 1 : 0);
}

TokenRange Ring::range(size_t k) const {
  assert(k < range_count());
  if (pos_.empty()) return {0, kMaxToken};
  const Token first = k == 0 ? 0 : pos_[k - 1] + 1;
  const Token last = k < pos_.size() ? pos_[k] : kMaxToken;
  return {first, last};
}

size_t Ring::range_index(Token t) const {
  if (pos_.empty()) return 0;
  if (t > pos_.back()) return pos_.size();  // the wrapping tail [highest+1, 2^64-1]
  return find(t);
}

Token Ring::primary_range_end(Token t) const { return range(range_index(t)).last; }

uint32_t Ring::position_of_range(size_t k) const {
  return k < pos_.size() ? static_cast<uint32_t>(k) : 0;
}

Result<std::vector<RangeReplicas>> Ring::ranges(size_t n) const {
  if (n == 0) return Status::invalid_argument("preference list length n must be at least 1");
  const size_t count = range_count();
  std::vector<RangeReplicas> out(count);
  std::vector<uint32_t> buf(std::min(n, servers_.size()));
  for (size_t k = 0; k < count; ++k) {
    out[k].range = range(k);
    if (pos_.empty()) continue;
    const size_t m = list_at(position_of_range(k), n, buf.data());
    out[k].replicas.assign(buf.begin(), buf.begin() + m);
  }
  return out;
}

Result<std::vector<RankedRange>> Ring::ranges_of(uint32_t server, size_t n) const {
  if (n == 0) return Status::invalid_argument("preference list length n must be at least 1");
  if (server >= servers_.size()) {
    return Status::invalid_argument("server index " + std::to_string(server) +
                                    " is out of range: the ring has " +
                                    std::to_string(servers_.size()) + " servers");
  }
  std::vector<RankedRange> out;
  std::vector<uint32_t> buf(std::min(n, servers_.size()));
  const size_t count = range_count();
  for (size_t k = 0; k < count; ++k) {
    const size_t m = list_at(position_of_range(k), n, buf.data());
    const auto it = std::find(buf.begin(), buf.begin() + m, server);
    if (it == buf.begin() + m) continue;
    const uint32_t rank = static_cast<uint32_t>(it - buf.begin());
    const TokenRange r = range(k);
    if (!out.empty() && out.back().rank == rank && out.back().range.last + 1 == r.first) {
      out.back().range.last = r.last;
    } else {
      out.push_back({r, rank});
    }
  }
  return out;
}

// ---- Configuration
// --------------------------------------------------------------------------------

std::optional<uint32_t> Ring::index_of(std::string_view id) const {
  auto it = std::lower_bound(servers_.begin(), servers_.end(), id,
                             [](const ServerSpec& s, std::string_view v) { return s.id < v; });
  if (it == servers_.end() || it->id != id) return std::nullopt;
  return static_cast<uint32_t>(it - servers_.begin());
}

uint64_t Ring::points_of(uint32_t server) const {
  assert(server < servers_.size());
  return uint64_t{vnodes_} * servers_[server].weight;
}

}  // namespace ringkv::ring
