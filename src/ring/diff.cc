// The migration plan: the exact diff of two rings' preference lists, by a sweep over the merged
// range boundaries of both rings (no sampling), and the per-server views the migration needs.
#include <algorithm>
#include <limits>

#include "ringkv/ring.h"

namespace ringkv::ring {
namespace {

constexpr Token kMaxToken = std::numeric_limits<Token>::max();

// Sorted union of two sorted id lists, and for each ring the map from its index to the union's.
void merge_ids(const Ring& from, const Ring& to, std::vector<std::string>* ids,
               std::vector<uint32_t>* from_map, std::vector<uint32_t>* to_map) {
  const auto& a = from.servers();
  const auto& b = to.servers();
  from_map->resize(a.size());
  to_map->resize(b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const uint32_t next = static_cast<uint32_t>(ids->size());
    if (j == b.size() || (i < a.size() && a[i].id < b[j].id)) {
      ids->push_back(a[i].id);
      (*from_map)[i++] = next;
    } else if (i == a.size() || b[j].id < a[i].id) {
      ids->push_back(b[j].id);
      (*to_map)[j++] = next;
    } else {
      ids->push_back(a[i].id);
      (*from_map)[i++] = next;
      (*to_map)[j++] = next;
    }
  }
}

// The preference list of range k of `ring`, translated to plan indices.
void list_of_range(const Ring& ring, size_t k, size_t n, const std::vector<uint32_t>& map,
                   std::vector<uint32_t>* out) {
  out->resize(std::min(n, ring.server_count()));
  if (out->empty()) return;
  out->resize(ring.preference_list(ring.range(k).first, n, out->data()));
  for (uint32_t& s : *out) s = map[s];
}

// Elements of a not in b, ascending. Lists are short (n entries), so quadratic is the fast way.
std::vector<uint32_t> minus(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<uint32_t> out;
  for (uint32_t s : a) {
    if (std::find(b.begin(), b.end(), s) == b.end()) out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool contains(const std::vector<uint32_t>& v, uint32_t s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Result<MigrationPlan> diff(const Ring& from, const Ring& to, size_t n) {
  if (n == 0) return Status::invalid_argument("preference list length n must be at least 1");
  MigrationPlan plan;
  plan.n = n;
  std::vector<uint32_t> from_map, to_map;
  merge_ids(from, to, &plan.servers, &from_map, &to_map);

  // Both rings' ranges are sorted and contiguous from 0, so the pieces between consecutive
  // boundaries of either ring are exactly the places where neither list can change.
  std::vector<uint32_t> old_list, new_list;
  size_t kf = 0, kt = 0;
  list_of_range(from, kf, n, from_map, &old_list);
  list_of_range(to, kt, n, to_map, &new_list);
  Token cur = 0;
  for (;;) {
    const TokenRange rf = from.range(kf);
    const TokenRange rt = to.range(kt);
    const Token end = std::min(rf.last, rt.last);
    if (old_list != new_list) {
      Move* last = plan.moves.empty() ? nullptr : &plan.moves.back();
      if (last != nullptr && last->range.last + 1 == cur && last->old_replicas == old_list &&
          last->new_replicas == new_list) {
        last->range.last = end;
      } else {
        plan.moves.push_back(
            {{cur, end}, old_list, new_list, minus(old_list, new_list), minus(new_list, old_list)});
      }
    }
    if (end == kMaxToken) break;
    cur = end + 1;
    if (rf.last == end) list_of_range(from, ++kf, n, from_map, &old_list);
    if (rt.last == end) list_of_range(to, ++kt, n, to_map, &new_list);
  }
  return plan;
}

std::optional<uint32_t> MigrationPlan::index_of(std::string_view id) const {
  auto it = std::lower_bound(servers.begin(), servers.end(), id,
                             [](const std::string& s, std::string_view v) { return s < v; });
  if (it == servers.end() || *it != id) return std::nullopt;
  return static_cast<uint32_t>(it - servers.begin());
}

std::vector<Transfer> MigrationPlan::gains_of(std::string_view id) const {
  std::vector<Transfer> out;
  const std::optional<uint32_t> s = index_of(id);
  if (!s) return out;
  for (const Move& m : moves) {
    if (!contains(m.gainers, *s)) continue;
    if (!out.empty() && out.back().range.last + 1 == m.range.first &&
        out.back().sources == m.old_replicas) {
      out.back().range.last = m.range.last;
    } else {
      out.push_back({m.range, m.old_replicas});
    }
  }
  return out;
}

std::vector<TokenRange> MigrationPlan::losses_of(std::string_view id) const {
  std::vector<TokenRange> out;
  const std::optional<uint32_t> s = index_of(id);
  if (!s) return out;
  for (const Move& m : moves) {
    if (!contains(m.losers, *s)) continue;
    if (!out.empty() && out.back().last + 1 == m.range.first) {
      out.back().last = m.range.last;
    } else {
      out.push_back(m.range);
    }
  }
  return out;
}

}  // namespace ringkv::ring
