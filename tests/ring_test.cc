// Tests for src/ring: golden vectors from an independent Python implementation, determinism,
// agreement with a naive model (collisions and wrap-around included), ranges, weights, the
// migration plan (minimal movement, exactness), and every documented error.
#include "ringkv/ring.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

using namespace ringkv;
using namespace ringkv::ring;

namespace {

constexpr Token kMax = std::numeric_limits<Token>::max();
using u128 = unsigned __int128;

// ---- Helpers
// --------------------------------------------------------------------------------------

std::shared_ptr<const Ring> must_build(std::vector<ServerSpec> servers, RingOptions options = {}) {
  auto r = Ring::build(std::move(servers), options);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return *r;
}

Token default_position(std::string_view id, uint32_t i) {
  return token_of(std::string(id) + "#" + std::to_string(i));
}

// The golden files sit next to this source; the test runs from the build directory, and
// tests/CMakeLists.txt passes no path, so derive it from where the compiler found this file.
std::filesystem::path golden_dir() {
  return std::filesystem::path(__FILE__).parent_path() / "golden";
}

std::string unhex(const std::string& s) {
  if (s == "-") return "";
  std::string out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    out += static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16));
  }
  return out;
}

Token parse_token(const std::string& s) { return std::stoull(s, nullptr, 16); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<std::string> ids_of(const Ring& ring, const uint32_t* idx, size_t m) {
  std::vector<std::string> out;
  for (size_t k = 0; k < m; ++k) out.push_back(ring.servers()[idx[k]].id);
  return out;
}

std::vector<std::string> list_ids(const Ring& ring, Token t, size_t n) {
  std::vector<uint32_t> buf(n);
  return ids_of(ring, buf.data(), ring.preference_list(t, n, buf.data()));
}

std::vector<std::string> plan_ids(const MigrationPlan& plan, const std::vector<uint32_t>& idx) {
  std::vector<std::string> out;
  for (uint32_t s : idx) out.push_back(plan.servers[s]);
  return out;
}

// Width of an inclusive range, exact even for the whole space.
u128 width(const TokenRange& r) { return u128{r.last} - r.first + 1; }

// A straightforward implementation of the contract, to check the fast one against.
class Model {
 public:
  Model(std::vector<ServerSpec> servers, uint32_t vnodes, const Ring::PositionFn& position_of) {
    for (const ServerSpec& s : servers) {
      ids_.insert(s.id);
      for (uint32_t i = 0; i < vnodes * s.weight; ++i) {
        points_.emplace_back(position_of(s.id, i), s.id, i);
      }
    }
    std::sort(points_.begin(), points_.end());
  }

  std::vector<std::string> list(Token t, size_t n) const {
    std::vector<std::string> out;
    if (points_.empty()) return out;
    auto it =
        std::lower_bound(points_.begin(), points_.end(), std::make_tuple(t, std::string(), 0u));
    size_t k = it == points_.end() ? 0 : it - points_.begin();
    const size_t want = std::min(n, ids_.size());
    for (size_t step = 0; step < points_.size() && out.size() < want; ++step) {
      const std::string& id = std::get<1>(points_[(k + step) % points_.size()]);
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    }
    return out;
  }

  const std::vector<std::tuple<Token, std::string, uint32_t>>& points() const { return points_; }

 private:
  std::set<std::string> ids_;
  std::vector<std::tuple<Token, std::string, uint32_t>> points_;
};

// Random, unique ids: mostly printable, sometimes binary or with '#', so concatenation is
// exercised.
std::vector<ServerSpec> random_servers(std::mt19937_64& rng, size_t count, uint32_t max_weight) {
  std::set<std::string> seen;
  std::vector<ServerSpec> out;
  while (out.size() < count) {
    std::string id;
    switch (rng() % 4) {
      case 0:
        id = "node-" + std::to_string(rng() % 1000);
        break;
      case 1:
        id = "10.0." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + ":6379";
        break;
      case 2:
        id = std::string(1 + rng() % 4, '\0');
        for (char& c : id) c = static_cast<char>(rng());
        break;
      default:
        id = "s#" + std::to_string(rng() % 100);
    }
    if (!seen.insert(id).second) continue;
    out.push_back({id, static_cast<uint32_t>(1 + rng() % max_weight)});
  }
  return out;
}

// Tokens worth probing on a ring: the ends, and at and around a sample of point positions.
std::vector<Token> probe_tokens(const Ring& ring, std::mt19937_64& rng, size_t samples) {
  std::vector<Token> out = {0, 1, kMax - 1, kMax};
  for (size_t s = 0; s < samples; ++s) {
    out.push_back(rng());
    if (ring.range_count() > 1) {
      const TokenRange r = ring.range(rng() % ring.range_count());
      out.push_back(r.first);
      out.push_back(r.last);
      out.push_back(r.last + 1);
      out.push_back(r.first - 1);
    }
  }
  return out;
}

}  // namespace

// ---- Golden vectors
// -------------------------------------------------------------------------------

TEST_CASE("golden tokens match the independent Python implementation") {
  std::ifstream in(golden_dir() / "tokens.txt");
  REQUIRE(in.good());
  std::string line;
  size_t checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key_hex, token;
    fields >> key_hex >> token;
    INFO("key hex " << key_hex.substr(0, 80));
    CHECK(token_hex(token_of(unhex(key_hex))) == token);
    ++checked;
  }
  CHECK(checked >= 60);
}

TEST_CASE("golden preference lists match the independent Python implementation") {
  std::ifstream in(golden_dir() / "preference_lists.txt");
  REQUIRE(in.good());
  std::string line;
  std::string name;
  uint32_t vnodes = 0;
  size_t n = 0;
  std::vector<ServerSpec> servers;
  std::shared_ptr<const Ring> ring;
  size_t configs = 0, checked = 0;
  auto check_list = [&](Token t, const std::string& expected) {
    std::vector<std::string> want;
    if (expected != "-") {
      for (const std::string& h : split(expected, ',')) want.push_back(unhex(h));
    }
    INFO("config " << name << " token " << token_hex(t));
    auto got = ring->preference_ids(t, n);
    REQUIRE(got.is_ok());
    CHECK(*got == want);
    CHECK(ring->owner(t) == (want.empty() ? "" : want[0]));
    ++checked;
  };
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string kind;
    f >> kind;
    if (kind == "config") {
      std::string v, nn;
      f >> name >> v >> nn;
      vnodes = static_cast<uint32_t>(std::stoul(v.substr(v.find('=') + 1)));
      n = std::stoul(nn.substr(nn.find('=') + 1));
      servers.clear();
      ring.reset();
    } else if (kind == "server") {
      std::string id;
      uint32_t weight;
      f >> id >> weight;
      servers.push_back({unhex(id), weight});
    } else if (kind == "fingerprint") {
      ring = must_build(servers, {.vnodes = vnodes});
      std::string fp;
      f >> fp;
      INFO("config " << name);
      CHECK(token_hex(ring->fingerprint()) == fp);
    } else if (kind == "points") {
      size_t points;
      f >> points;
      CHECK(ring->point_count() == points);
    } else if (kind == "key") {
      std::string key, token, list;
      f >> key >> token >> list;
      REQUIRE(ring);
      CHECK(token_of(unhex(key)) == parse_token(token));
      check_list(parse_token(token), list);
    } else if (kind == "token") {
      std::string token, list;
      f >> token >> list;
      REQUIRE(ring);
      check_list(parse_token(token), list);
    } else if (kind == "end") {
      ++configs;
    } else {
      FAIL("unknown line in preference_lists.txt: " << line);
    }
  }
  CHECK(configs >= 6);
  CHECK(checked >= 1000);
}

// ---- Determinism and agreement with the model
// -----------------------------------------------------

TEST_CASE("the same servers in any order build the same ring") {
  std::mt19937_64 rng(1);
  for (int round = 0; round < 12; ++round) {
    std::vector<ServerSpec> servers = random_servers(rng, 1 + rng() % 12, 3);
    const uint32_t vnodes = std::vector<uint32_t>{1, 7, 64, 256}[rng() % 4];
    auto a = must_build(servers, {.vnodes = vnodes});
    std::shuffle(servers.begin(), servers.end(), rng);
    auto b = must_build(servers, {.vnodes = vnodes, .max_replicas = 2});
    INFO("round " << round);
    CHECK(a->fingerprint() == b->fingerprint());
    CHECK(a->servers() == b->servers());
    CHECK(std::is_sorted(a->servers().begin(), a->servers().end(),
                         [](const ServerSpec& x, const ServerSpec& y) { return x.id < y.id; }));
    REQUIRE(a->range_count() == b->range_count());
    size_t mismatched = 0;
    for (size_t k = 0; k < a->range_count(); ++k) {
      if (a->range(k) != b->range(k)) ++mismatched;
      if (list_ids(*a, a->range(k).last, 5) != list_ids(*b, b->range(k).last, 5)) ++mismatched;
    }
    for (int i = 0; i < 1000; ++i) {
      const Token t = token_of("key:" + std::to_string(rng()));
      if (a->owner(t) != b->owner(t)) ++mismatched;
    }
    CHECK(mismatched == 0);
  }
}

TEST_CASE("fingerprint covers ids, weights and vnodes, nothing else") {
  auto base = must_build({{"a", 1}, {"b", 2}});
  CHECK(must_build({{"b", 2}, {"a", 1}})->fingerprint() == base->fingerprint());
  CHECK(must_build({{"a", 1}, {"b", 2}}, {.max_replicas = 1})->fingerprint() ==
        base->fingerprint());
  CHECK(must_build({{"a", 1}, {"b", 1}})->fingerprint() != base->fingerprint());
  CHECK(must_build({{"a", 1}, {"c", 2}})->fingerprint() != base->fingerprint());
  CHECK(must_build({{"a", 1}, {"b", 2}}, {.vnodes = 1023})->fingerprint() != base->fingerprint());
  // Length-prefixed ids: "a b" + weight cannot be confused with other splits.
  CHECK(must_build({{"a 1", 1}})->fingerprint() != must_build({{"a", 11}})->fingerprint());
}

TEST_CASE("look-ups agree with a naive model of the contract") {
  std::mt19937_64 rng(2);
  for (int round = 0; round < 20; ++round) {
    const std::vector<ServerSpec> servers = random_servers(rng, 1 + rng() % 10, 3);
    const uint32_t vnodes = std::vector<uint32_t>{1, 3, 32, 200}[rng() % 4];
    const uint32_t max_replicas = 1 + rng() % 4;  // small, so long lists take the walking path
    auto ring = must_build(servers, {.vnodes = vnodes, .max_replicas = max_replicas});
    const Model model(servers, vnodes, default_position);
    REQUIRE(ring->point_count() == model.points().size());
    size_t mismatched = 0, bad_shape = 0;
    std::vector<uint32_t> buf(servers.size() + 3);
    for (Token t : probe_tokens(*ring, rng, 40)) {
      for (size_t n = 1; n <= servers.size() + 2; ++n) {
        const size_t m = ring->preference_list(t, n, buf.data());
        std::vector<uint32_t> got(buf.begin(), buf.begin() + m);
        std::sort(got.begin(), got.end());
        if (m != std::min(n, servers.size()) ||
            std::adjacent_find(got.begin(), got.end()) != got.end()) {
          ++bad_shape;
        }
        if (ids_of(*ring, buf.data(), m) != model.list(t, n)) ++mismatched;
      }
      if (ring->owner(t) != model.list(t, 1)[0]) ++mismatched;
      if (ring->owner_index(t) != *ring->index_of(ring->owner(t))) ++mismatched;
    }
    INFO("round " << round << " servers " << servers.size() << " vnodes " << vnodes);
    CHECK(mismatched == 0);
    CHECK(bad_shape == 0);
  }
}

TEST_CASE("colliding positions: the first point in (position, id, i) order owns, all walk") {
  SECTION("hand-placed") {
    // a#0 and b#0 share 100; c#0 at 200. a wins 100, but b is still met right after it.
    auto r = Ring::build_with_positions(
        {{"c", 1}, {"b", 1}, {"a", 1}}, {.vnodes = 1},
        [](std::string_view id, uint32_t) -> Token { return id == "c" ? 200 : 100; });
    REQUIRE(r.is_ok());
    const Ring& ring = **r;
    CHECK(ring.point_count() == 3);
    CHECK(ring.position_count() == 2);
    CHECK(ring.owner(50) == "a");
    CHECK(ring.owner(100) == "a");
    CHECK(ring.owner(101) == "c");
    CHECK(ring.owner(kMax) == "a");
    CHECK(list_ids(ring, 100, 3) == std::vector<std::string>{"a", "b", "c"});
    CHECK(list_ids(ring, 150, 3) == std::vector<std::string>{"c", "a", "b"});
    REQUIRE(ring.range_count() == 3);
    CHECK(ring.range(0) == TokenRange{0, 100});
    CHECK(ring.range(1) == TokenRange{101, 200});
    CHECK(ring.range(2) == TokenRange{201, kMax});
    CHECK(ring.ranges_of(*ring.index_of("b"), 1)->empty());  // b owns nothing as primary
  }
  SECTION("random, many collisions, against the model") {
    std::mt19937_64 rng(3);
    for (int round = 0; round < 10; ++round) {
      const std::vector<ServerSpec> servers = random_servers(rng, 2 + rng() % 6, 2);
      const uint64_t salt = rng();
      // Few distinct positions, including both ends of the token space.
      auto position_of = [salt](std::string_view id, uint32_t i) -> Token {
        const Token h = token_of(std::string(id) + "/" + std::to_string(i) + std::to_string(salt));
        const Token slots[] = {0, 1, 1000, kMax / 2, kMax - 1, kMax};
        return slots[h % 6];
      };
      const uint32_t vnodes = 1 + rng() % 4;
      auto r =
          Ring::build_with_positions(servers, {.vnodes = vnodes, .max_replicas = 2}, position_of);
      REQUIRE(r.is_ok());
      const Model model(servers, vnodes, position_of);
      size_t mismatched = 0;
      for (Token t : probe_tokens(**r, rng, 50)) {
        for (size_t n = 1; n <= servers.size(); ++n) {
          if (list_ids(**r, t, n) != model.list(t, n)) ++mismatched;
        }
      }
      CHECK(mismatched == 0);
    }
  }
}

TEST_CASE("wrap-around at the ends of the token space") {
  auto ring = must_build({{"a", 1}, {"b", 1}, {"c", 1}}, {.vnodes = 16});
  const Token lowest = ring->range(0).last;
  const Token highest = ring->range(ring->range_count() - 2).last;
  CHECK(ring->owner(0) == ring->owner(lowest));
  CHECK(ring->owner(highest + 1) == ring->owner(lowest));
  CHECK(ring->owner(kMax) == ring->owner(lowest));
  CHECK(list_ids(*ring, kMax, 3) == list_ids(*ring, lowest, 3));
  CHECK(ring->range(ring->range_count() - 1) == TokenRange{highest + 1, kMax});
  CHECK(ring->primary_range_end(kMax) == kMax);
  CHECK(ring->primary_range_end(0) == lowest);
  CHECK(ring->primary_range_end(highest) == highest);

  // Points at 0 and at 2^64-1: no wrapping tail, and range 0 is the single token 0.
  auto r = Ring::build_with_positions(
      {{"lo", 1}, {"hi", 1}}, {.vnodes = 1},
      [](std::string_view id, uint32_t) -> Token { return id == "lo" ? 0 : kMax; });
  REQUIRE(r.is_ok());
  CHECK((*r)->range_count() == 2);
  CHECK((*r)->range(0) == TokenRange{0, 0});
  CHECK((*r)->range(1) == TokenRange{1, kMax});
  CHECK((*r)->owner(0) == "lo");
  CHECK((*r)->owner(1) == "hi");
  CHECK((*r)->owner(kMax) == "hi");
  CHECK(list_ids(**r, kMax, 2) == std::vector<std::string>{"hi", "lo"});
}

// ---- Ranges and weights
// ---------------------------------------------------------------------------

TEST_CASE("ranges cover 0..2^64-1 exactly and carry the preference list of their tokens") {
  std::mt19937_64 rng(4);
  for (int round = 0; round < 8; ++round) {
    const std::vector<ServerSpec> servers = random_servers(rng, 1 + rng() % 8, 2);
    const size_t n = 1 + rng() % 4;
    auto ring = must_build(servers, {.vnodes = 1 + static_cast<uint32_t>(rng() % 100)});
    auto all = ring->ranges(n);
    REQUIRE(all.is_ok());
    REQUIRE(all->size() == ring->range_count());
    size_t bad = 0;
    u128 covered = 0;
    Token scan = 0;
    size_t scan_steps = 0;
    for (size_t k = 0; k < all->size(); ++k) {
      const RangeReplicas& rr = (*all)[k];
      covered += width(rr.range);
      if (rr.range.first > rr.range.last) ++bad;
      if (k == 0 ? rr.range.first != 0 : rr.range.first != (*all)[k - 1].range.last + 1) ++bad;
      if (ring->range(k) != rr.range) ++bad;
      std::vector<uint32_t> buf(n);
      for (Token t :
           {rr.range.first, rr.range.last, rr.range.first + (rr.range.last - rr.range.first) / 2}) {
        const size_t m = ring->preference_list(t, n, buf.data());
        if (std::vector<uint32_t>(buf.begin(), buf.begin() + m) != rr.replicas) ++bad;
        if (ring->range_index(t) != k) ++bad;
        if (ring->primary_range_end(t) != rr.range.last) ++bad;
      }
    }
    // A SCAN-like walk visits every range once.
    for (;;) {
      ++scan_steps;
      const Token end = ring->primary_range_end(scan);
      if (end == kMax) break;
      scan = end + 1;
    }
    CHECK(all->back().range.last == kMax);
    CHECK(covered == u128{1} << 64);
    CHECK(scan_steps == ring->range_count());
    CHECK(bad == 0);
  }
}

TEST_CASE("ranges_of gives each server's ranks, consistent with ranges()") {
  std::mt19937_64 rng(5);
  const std::vector<ServerSpec> servers = random_servers(rng, 7, 3);
  auto ring = must_build(servers, {.vnodes = 64});
  for (size_t n : {1, 3, 7, 9}) {
    auto all = ring->ranges(n);
    REQUIRE(all.is_ok());
    std::vector<std::vector<RankedRange>> per_server;
    u128 total = 0;
    for (uint32_t s = 0; s < ring->server_count(); ++s) {
      auto rs = ring->ranges_of(s, n);
      REQUIRE(rs.is_ok());
      for (size_t k = 0; k < rs->size(); ++k) {
        total += width((*rs)[k].range);
        if (k > 0) {
          CHECK((*rs)[k - 1].range.last < (*rs)[k].range.first);
          // Maximal: adjacent pieces of the same rank are merged.
          CHECK(!((*rs)[k - 1].range.last + 1 == (*rs)[k].range.first &&
                  (*rs)[k - 1].rank == (*rs)[k].rank));
        }
      }
      per_server.push_back(std::move(*rs));
    }
    // Every token is covered by exactly min(n, servers) (server, rank) pairs.
    CHECK(total == (u128{1} << 64) * std::min(n, ring->server_count()));
    size_t bad = 0;
    for (const RangeReplicas& rr : *all) {
      for (uint32_t rank = 0; rank < rr.replicas.size(); ++rank) {
        const auto& rs = per_server[rr.replicas[rank]];
        auto it = std::upper_bound(rs.begin(), rs.end(), rr.range.first,
                                   [](Token t, const RankedRange& x) { return t < x.range.first; });
        if (it == rs.begin()) {
          ++bad;
          continue;
        }
        --it;
        if (!it->range.contains(rr.range.first) || !it->range.contains(rr.range.last) ||
            it->rank != rank) {
          ++bad;
        }
      }
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("weights scale points and share") {
  auto ring = must_build({{"w1", 1}, {"w2", 2}, {"w3", 3}, {"w4", 4}});
  std::vector<u128> share(4);
  for (uint32_t s = 0; s < 4; ++s) {
    CHECK(ring->points_of(s) == 1024u * ring->servers()[s].weight);
    const auto owned = ring->ranges_of(s, 1);  // named: a range-for over *temporary dangles
    REQUIRE(owned.is_ok());
    for (const RankedRange& r : *owned) share[s] += width(r.range);
  }
  CHECK(ring->point_count() == 1024u * 10);
  for (uint32_t s = 0; s < 4; ++s) {
    const double got = static_cast<double>(share[s]) / 18446744073709551616.0;
    const double want = ring->servers()[s].weight / 10.0;
    INFO(ring->servers()[s].id << " share " << got << " want " << want);
    CHECK(got == Approx(want).epsilon(0.08));
  }
}

// ---- Migration plan
// --------------------------------------------------------------------------------

namespace {

// Lists of t in both rings translated to plan indices, and the move containing t (or null).
class PlanProbe {
 public:
  PlanProbe(const Ring& from, const Ring& to, size_t n, const MigrationPlan& plan)
      : from_(from), to_(to), n_(n), plan_(plan), a_(n), b_(n) {
    for (const ServerSpec& s : from.servers()) from_map_.push_back(*plan.index_of(s.id));
    for (const ServerSpec& s : to.servers()) to_map_.push_back(*plan.index_of(s.id));
  }

  // Returns false when t is inconsistent with the plan; sets *changed when its list changed.
  bool check(Token t, bool* changed) {
    const size_t ma = from_.preference_list(t, n_, a_.data());
    const size_t mb = to_.preference_list(t, n_, b_.data());
    for (size_t i = 0; i < ma; ++i) a_[i] = from_map_[a_[i]];
    for (size_t i = 0; i < mb; ++i) b_[i] = to_map_[b_[i]];
    *changed = !(ma == mb && std::equal(a_.begin(), a_.begin() + ma, b_.begin()));
    auto it = std::upper_bound(plan_.moves.begin(), plan_.moves.end(), t,
                               [](Token x, const Move& m) { return x < m.range.first; });
    const Move* m =
        (it != plan_.moves.begin() && std::prev(it)->range.contains(t)) ? &*std::prev(it) : nullptr;
    if (!*changed) return m == nullptr;
    return m != nullptr &&
           std::equal(a_.begin(), a_.begin() + ma, m->old_replicas.begin(),
                      m->old_replicas.end()) &&
           std::equal(b_.begin(), b_.begin() + mb, m->new_replicas.begin(), m->new_replicas.end());
  }

 private:
  const Ring& from_;
  const Ring& to_;
  size_t n_;
  const MigrationPlan& plan_;
  std::vector<uint32_t> from_map_, to_map_, a_, b_;
};

// Checks a plan against both rings exactly: lists only change at range boundaries of either ring,
// so probing every boundary (and every move's ends and neighbours) covers every piece of the space.
void check_plan_exact(const Ring& from, const Ring& to, size_t n, const MigrationPlan& plan) {
  size_t bad = 0;
  for (size_t k = 0; k < plan.moves.size(); ++k) {
    const Move& m = plan.moves[k];
    if (m.range.first > m.range.last) ++bad;
    if (k > 0) {
      const Move& p = plan.moves[k - 1];
      if (p.range.last >= m.range.first) ++bad;
      if (p.range.last + 1 == m.range.first && p.old_replicas == m.old_replicas &&
          p.new_replicas == m.new_replicas) {
        ++bad;  // should have been merged
      }
    }
    if (m.old_replicas == m.new_replicas) ++bad;
    std::set<uint32_t> olds(m.old_replicas.begin(), m.old_replicas.end());
    std::set<uint32_t> news(m.new_replicas.begin(), m.new_replicas.end());
    std::vector<uint32_t> losers, gainers;
    std::set_difference(olds.begin(), olds.end(), news.begin(), news.end(),
                        std::back_inserter(losers));
    std::set_difference(news.begin(), news.end(), olds.begin(), olds.end(),
                        std::back_inserter(gainers));
    if (losers != m.losers || gainers != m.gainers) ++bad;
  }
  std::vector<Token> probes;
  for (const Ring* r : {&from, &to}) {
    for (size_t k = 0; k < r->range_count(); ++k) {
      probes.push_back(r->range(k).first);
      probes.push_back(r->range(k).last);
    }
  }
  for (const Move& m : plan.moves) {
    for (Token t : {m.range.first - 1, m.range.first, m.range.last, m.range.last + 1}) {
      probes.push_back(t);
    }
  }
  PlanProbe probe(from, to, n, plan);
  for (Token t : probes) {
    bool changed;
    if (!probe.check(t, &changed)) ++bad;
  }
  CHECK(bad == 0);
}

// Keys whose lists changed, checked against the plan; returns how many changed.
size_t check_keys_against_plan(const Ring& from, const Ring& to, size_t n,
                               const MigrationPlan& plan, const std::vector<Token>& keys) {
  PlanProbe probe(from, to, n, plan);
  size_t changed = 0, bad = 0;
  for (Token t : keys) {
    bool c;
    if (!probe.check(t, &c)) ++bad;
    changed += c ? 1 : 0;
  }
  CHECK(bad == 0);
  return changed;
}

std::vector<std::string> without(std::vector<std::string> v, const std::string& id) {
  v.erase(std::remove(v.begin(), v.end(), id), v.end());
  return v;
}

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Ten servers, the same plus "node-new", and 100k key tokens; built once for all the sections.
struct JoinFixture {
  std::shared_ptr<const Ring> ten, eleven;
  std::vector<Token> keys;
};

const JoinFixture& join_fixture() {
  static const JoinFixture fixture = [] {
    std::vector<ServerSpec> servers;
    for (int i = 0; i < 10; ++i) servers.push_back({"node-" + std::to_string(i), 1});
    JoinFixture f;
    f.ten = must_build(servers);
    servers.push_back({"node-new", 1});
    f.eleven = must_build(servers);
    for (int i = 0; i < 100000; ++i) f.keys.push_back(token_of("key:" + std::to_string(i)));
    return f;
  }();
  return fixture;
}

}  // namespace

TEST_CASE("diff: a join or a leave moves only what it must, checked on 100k keys") {
  const auto& old_ring = join_fixture().ten;
  const auto& new_ring = join_fixture().eleven;
  const std::vector<Token>& keys = join_fixture().keys;

  for (size_t n : {1, 3}) {
    INFO("n = " << n);
    SECTION("join, n = " + std::to_string(n)) {
      auto plan = diff(*old_ring, *new_ring, n);
      REQUIRE(plan.is_ok());
      check_plan_exact(*old_ring, *new_ring, n, *plan);
      const size_t changed = check_keys_against_plan(*old_ring, *new_ring, n, *plan, keys);
      // Each key's list gains the newcomer with probability about n/11.
      CHECK(changed == Approx(keys.size() * n / 11.0).epsilon(0.1));
      // Only toward the newcomer: every change puts it in, and the rest keep their order.
      size_t bad = 0;
      for (const Move& m : plan->moves) {
        const auto olds = plan_ids(*plan, m.old_replicas);
        const auto news = plan_ids(*plan, m.new_replicas);
        if (plan_ids(*plan, m.gainers) != std::vector<std::string>{"node-new"}) ++bad;
        if (m.losers.size() != (n == 1 ? 1u : 1u)) ++bad;
        if (!is_prefix(without(news, "node-new"), olds)) ++bad;
      }
      CHECK(bad == 0);
      // The newcomer's gains are exactly the moves, with the old list as sources.
      const auto gains = plan->gains_of("node-new");
      u128 gained = 0, moved = 0;
      for (const Transfer& g : gains) gained += width(g.range);
      for (const Move& m : plan->moves) moved += width(m.range);
      CHECK(gained == moved);
      for (const Move& m : plan->moves) {
        auto it = std::upper_bound(gains.begin(), gains.end(), m.range.first,
                                   [](Token t, const Transfer& x) { return t < x.range.first; });
        REQUIRE(it != gains.begin());
        --it;
        CHECK(it->range.contains(m.range.first));
        CHECK(it->range.contains(m.range.last));
        CHECK(it->sources == m.old_replicas);
      }
      CHECK(plan->losses_of("node-new").empty());
      CHECK(plan->gains_of("node-0").empty());
      CHECK(plan->gains_of("nobody").empty());
    }
    SECTION("leave, n = " + std::to_string(n)) {
      auto plan = diff(*new_ring, *old_ring, n);
      REQUIRE(plan.is_ok());
      check_plan_exact(*new_ring, *old_ring, n, *plan);
      const size_t changed = check_keys_against_plan(*new_ring, *old_ring, n, *plan, keys);
      CHECK(changed == Approx(keys.size() * n / 11.0).epsilon(0.1));
      size_t bad = 0;
      u128 moved = 0;
      for (const Move& m : plan->moves) {
        moved += width(m.range);
        const auto olds = plan_ids(*plan, m.old_replicas);
        const auto news = plan_ids(*plan, m.new_replicas);
        // Only keys the leaver held move, and the survivors keep their order.
        if (plan_ids(*plan, m.losers) != std::vector<std::string>{"node-new"}) ++bad;
        if (!is_prefix(without(olds, "node-new"), news)) ++bad;
      }
      CHECK(bad == 0);
      u128 lost = 0;
      for (const TokenRange& r : plan->losses_of("node-new")) lost += width(r);
      CHECK(lost == moved);
    }
  }
}

TEST_CASE("diff: arbitrary changes give an exact plan") {
  std::mt19937_64 rng(6);
  for (int round = 0; round < 10; ++round) {
    std::vector<ServerSpec> before = random_servers(rng, 1 + rng() % 6, 3);
    std::vector<ServerSpec> after = before;
    std::shuffle(after.begin(), after.end(), rng);
    after.resize(1 + rng() % after.size());  // some leave
    for (ServerSpec& s : after) {
      if (rng() % 3 == 0) s.weight = 1 + rng() % 3;  // some change weight
    }
    for (const ServerSpec& s : random_servers(rng, rng() % 3, 2)) {  // some join
      if (std::none_of(after.begin(), after.end(),
                       [&](const ServerSpec& x) { return x.id == s.id; })) {
        after.push_back(s);
      }
    }
    auto from = must_build(before, {.vnodes = 1 + static_cast<uint32_t>(rng() % 64)});
    auto to = must_build(after, {.vnodes = 1 + static_cast<uint32_t>(rng() % 64)});
    for (size_t n : {1, 2, 3, 8}) {
      INFO("round " << round << " n " << n);
      auto plan = diff(*from, *to, n);
      REQUIRE(plan.is_ok());
      check_plan_exact(*from, *to, n, *plan);
    }
  }
}

TEST_CASE("diff: equal rings give an empty plan, empty rings give or take everything") {
  std::vector<ServerSpec> servers = {{"a", 1}, {"b", 2}, {"c", 1}};
  auto ring = must_build(servers, {.vnodes = 32});
  std::reverse(servers.begin(), servers.end());
  auto same = must_build(servers, {.vnodes = 32, .max_replicas = 1});
  CHECK(diff(*ring, *ring, 3)->empty());
  CHECK(diff(*ring, *same, 2)->empty());
  CHECK(diff(*ring, *same, 5)->empty());

  auto empty = must_build({});
  CHECK(diff(*empty, *empty, 3)->empty());
  auto grow = diff(*empty, *ring, 2);
  REQUIRE(grow.is_ok());
  check_plan_exact(*empty, *ring, 2, *grow);
  REQUIRE(!grow->empty());
  CHECK(grow->moves.front().range.first == 0);
  CHECK(grow->moves.back().range.last == kMax);
  for (const Transfer& g : grow->gains_of("a")) CHECK(g.sources.empty());
  auto shrink = diff(*ring, *empty, 2);
  REQUIRE(shrink.is_ok());
  check_plan_exact(*ring, *empty, 2, *shrink);
  u128 lost = 0;
  for (const TokenRange& r : shrink->losses_of("b")) lost += width(r);
  u128 held = 0;
  const auto held_by_b = ring->ranges_of(*ring->index_of("b"), 2);
  REQUIRE(held_by_b.is_ok());
  for (const RankedRange& r : *held_by_b) held += width(r.range);
  CHECK(lost == held);
}

// ---- Configuration accessors and the empty ring
// ---------------------------------------------------

TEST_CASE("servers are sorted by id and found by index_of") {
  auto ring = must_build({{"zeta", 1}, {"alpha", 3}, {std::string("\xff", 1), 1}, {"mid", 2}},
                         {.vnodes = 8});
  std::vector<std::string> ids;
  for (const ServerSpec& s : ring->servers()) ids.push_back(s.id);
  CHECK(ids == std::vector<std::string>{"alpha", "mid", "zeta", "\xff"});
  CHECK(ring->index_of("mid") == 1u);
  CHECK(ring->index_of("\xff") == 3u);
  CHECK_FALSE(ring->index_of("absent").has_value());
  CHECK_FALSE(ring->index_of("").has_value());
  CHECK(ring->vnodes() == 8);
  CHECK(ring->max_replicas() == 8);
  CHECK(ring->point_count() == 8u * 7);
  CHECK(ring->position_count() == 8u * 7);
  CHECK(ring->points_of(0) == 24);
}

TEST_CASE("an empty ring is valid and owns nothing") {
  auto ring = must_build({});
  CHECK(ring->server_count() == 0);
  CHECK(ring->point_count() == 0);
  CHECK(ring->owner_index(42) == kNoServer);
  CHECK(ring->owner(42).empty());
  uint32_t out[3];
  CHECK(ring->preference_list(42, 3, out) == 0);
  CHECK(ring->preference_ids(42, 3)->empty());
  CHECK(ring->range_count() == 1);
  CHECK(ring->range(0) == TokenRange{0, kMax});
  CHECK(ring->range_index(7) == 0);
  CHECK(ring->primary_range_end(0) == kMax);
  REQUIRE(ring->ranges(3)->size() == 1);
  CHECK(ring->ranges(3)->front().replicas.empty());
}

// ---- Errors
// -----------------------------------------------------------------------------------------

TEST_CASE("bad input gives invalid_argument with a message naming the problem") {
  auto expect_error = [](const Status& st, const std::string& needle) {
    INFO(st.to_string());
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find(needle) != std::string::npos);
  };
  expect_error(Ring::build({{"a", 1}, {"", 1}}).status(), "server #1 has an empty id");
  expect_error(Ring::build({{"a", 1}, {"b", 1}, {"a", 2}}).status(), "duplicate server id \"a\"");
  expect_error(Ring::build({{"a", 1}, {"heavy", 0}}).status(), "server \"heavy\" has weight 0");
  expect_error(Ring::build({{std::string("\x01q\"", 3), 0}}).status(), "\"\\x01q\\\"\"");
  expect_error(Ring::build({{"a", 1}}, {.vnodes = 0}).status(), "vnodes must be at least 1");
  expect_error(Ring::build({{"a", 1}}, {.max_replicas = 0}).status(), "max_replicas");
  expect_error(Ring::build({{"a", 1}}, {.max_replicas = kMaxReplicasLimit + 1}).status(),
               "max_replicas");
  expect_error(Ring::build({{"a", 1}, {"b", 1}}, {.vnodes = uint32_t{1} << 24}).status(),
               "too many points");
  // Large enough that vnodes * weight overflows uint32: must still be caught, not wrap.
  expect_error(Ring::build({{"a", UINT32_MAX}}, {.vnodes = UINT32_MAX}).status(),
               "too many points");
  std::vector<ServerSpec> crowd;
  for (size_t i = 0; i <= kMaxServers; ++i) crowd.push_back({std::to_string(i), 1});
  expect_error(Ring::build(crowd, {.vnodes = 1}).status(), "too many servers");

  auto ring = must_build({{"a", 1}, {"b", 1}}, {.vnodes = 4});
  expect_error(ring->preference_ids(1, 0).status(), "n must be at least 1");
  expect_error(ring->ranges(0).status(), "n must be at least 1");
  expect_error(ring->ranges_of(0, 0).status(), "n must be at least 1");
  expect_error(ring->ranges_of(2, 1).status(), "server index 2 is out of range");
  expect_error(diff(*ring, *ring, 0).status(), "n must be at least 1");
}
