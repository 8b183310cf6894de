// Tests for src/store: the arena, the token-ordered table, the store's access API, expiry,
// tombstones, scans, eviction, and concurrent writers.
#include "store/store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "store/arena.h"

using namespace ringkv;
using namespace ringkv::store;

namespace {

struct Fixture {
  ManualClock clock;
  HybridClock hlc{clock, 1};
  Store store;
  explicit Fixture(StoreOptions o = {}) : store(o, clock, hlc) {}
  Millis now() const { return clock.now_ms(); }

  void set(const std::string& k, const std::string& v, Millis expire_at = -1) {
    store.access(k, token_of(k), now(), [&](Access& a) { a.set(v, expire_at); });
  }
  std::optional<std::string> get(const std::string& k) {
    return store.access(k, token_of(k), now(), [&](Access& a) -> std::optional<std::string> {
      if (!a.found()) return std::nullopt;
      return std::string(a.value());
    });
  }
  bool del(const std::string& k) {
    return store.access(k, token_of(k), now(), [&](Access& a) {
      if (!a.found()) return false;
      a.erase();
      return true;
    });
  }
};

}  // namespace

TEST_CASE("arena hands out distinct blocks and reuses freed ones") {
  Arena arena;
  std::vector<std::pair<char*, size_t>> blocks;
  std::mt19937 rng(1);
  for (int i = 0; i < 20000; ++i) {
    size_t size = 1 + rng() % 1500;  // small and malloc'd sizes
    char* p = static_cast<char*>(arena.allocate(size));
    REQUIRE(reinterpret_cast<uintptr_t>(p) % 8 == 0);
    std::memset(p, i & 0xff, size);
    blocks.emplace_back(p, size);
  }
  // Every block still holds its own pattern: no two overlap.
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto [p, size] = blocks[i];
    for (size_t k = 0; k < size; k += 97) REQUIRE(static_cast<uint8_t>(p[k]) == (i & 0xff));
  }
  size_t used = arena.used_bytes();
  CHECK(used >= 20000);
  for (auto [p, size] : blocks) arena.free(p, size);
  CHECK(arena.used_bytes() == 0);
  CHECK(Arena::block_size(68) == 72);
}

TEST_CASE("set, get, overwrite and delete round-trip binary keys and values") {
  Fixture f;
  std::string bin_key("k\0\r\n\xff", 5);
  std::string bin_val("\0\0v\r\n", 5);
  f.set(bin_key, bin_val);
  f.set("", "empty key");
  f.set("empty value", "");
  CHECK(f.get(bin_key) == bin_val);
  CHECK(f.get("") == "empty key");
  CHECK(f.get("empty value") == "");
  CHECK(f.store.size() == 3);
  // Growing and shrinking values across size classes keep the key intact.
  for (size_t len : {1u, 7u, 8u, 100u, 1000u, 1025u, 5000u, 3u, 0u}) {
    f.set(bin_key, std::string(len, 'x'));
    CHECK(f.get(bin_key) == std::string(len, 'x'));
  }
  CHECK(f.del(bin_key));
  CHECK_FALSE(f.del(bin_key));
  CHECK_FALSE(f.get(bin_key).has_value());
  CHECK(f.store.size() == 2);
}

TEST_CASE("many keys: every key readable, deletes leave the rest intact") {
  Fixture f;
  const int n = 50000;
  for (int i = 0; i < n; ++i) f.set("key:" + std::to_string(i), "value:" + std::to_string(i));
  CHECK(f.store.size() == n);
  for (int i = 0; i < n; ++i)
    REQUIRE(f.get("key:" + std::to_string(i)) == "value:" + std::to_string(i));
  for (int i = 0; i < n; i += 2) REQUIRE(f.del("key:" + std::to_string(i)));
  CHECK(f.store.size() == n / 2);
  for (int i = 0; i < n; ++i) {
    auto v = f.get("key:" + std::to_string(i));
    if (i % 2 == 0)
      REQUIRE_FALSE(v.has_value());
    else
      REQUIRE(v == "value:" + std::to_string(i));
  }
  // Delete the rest: the tables shrink and memory comes back down.
  for (int i = 1; i < n; i += 2) REQUIRE(f.del("key:" + std::to_string(i)));
  CHECK(f.store.size() == 0);
  Fixture empty;
  CHECK(f.store.memory_used() <= empty.store.memory_used() + 256 * 1024);
}

TEST_CASE("prepare keeps the old value's prefix (APPEND) across layout changes") {
  Fixture f;
  f.set("k", "hello");
  f.store.access("k", token_of("k"), f.now(), [&](Access& a) {
    char* v = a.prepare(11, -1);
    std::memcpy(v + 5, " world", 6);
    a.commit();
  });
  CHECK(f.get("k") == "hello world");
  // Adding an expiry changes the header; the value must survive.
  f.store.access("k", token_of("k"), f.now(), [&](Access& a) { a.set_expire(f.now() + 10000); });
  CHECK(f.get("k") == "hello world");
  f.store.access("k", token_of("k"), f.now(), [&](Access& a) {
    CHECK(a.expire_at() == f.now() + 10000);
    a.set_expire(-1);
  });
  CHECK(f.get("k") == "hello world");
  // A value of 200 bytes grows to 300 (new varint size): prefix preserved.
  std::string big(200, 'a');
  f.set("k", big);
  f.store.access("k", token_of("k"), f.now(), [&](Access& a) {
    char* v = a.prepare(300, -1);
    std::memset(v + 200, 'b', 100);
    a.commit();
  });
  CHECK(f.get("k") == big + std::string(100, 'b'));
}

TEST_CASE("versions increase with every write and replicas keep the highest") {
  Fixture f;
  Version v1 =
      f.store.access("k", token_of("k"), f.now(), [](Access& a) { return a.set("a", -1); });
  Version v2 =
      f.store.access("k", token_of("k"), f.now(), [](Access& a) { return a.set("b", -1); });
  CHECK(v2 > v1);
  Fixture replica;
  CHECK(replica.store.apply("k", token_of("k"), "b", -1, v2, false, replica.now()));
  CHECK_FALSE(replica.store.apply("k", token_of("k"), "a", -1, v1, false, replica.now()));
  CHECK(replica.get("k") == "b");
  // A newer write at the replica's own clock orders after what it observed.
  Version v3 = replica.store.access("k", token_of("k"), replica.now(),
                                    [](Access& a) { return a.set("c", -1); });
  CHECK(v3 > v2);
}

TEST_CASE("tombstones stop older copies from reviving a deleted key, then get collected") {
  StoreOptions o;
  o.keep_tombstones = true;
  o.tombstone_ttl_ms = 1000;
  Fixture f(o);
  Version v1 =
      f.store.access("k", token_of("k"), f.now(), [](Access& a) { return a.set("a", -1); });
  CHECK(f.del("k"));
  CHECK(f.store.size() == 0);
  CHECK(f.store.tombstone_count() == 1);
  CHECK_FALSE(f.store.apply("k", token_of("k"), "a", -1, v1, false, f.now()));
  CHECK_FALSE(f.get("k").has_value());
  // Writing again over the tombstone works and is newer.
  f.set("k", "again");
  CHECK(f.get("k") == "again");
  CHECK(f.del("k"));
  f.clock.advance_ms(2000);
  f.store.active_expire(f.now(), 100);
  CHECK(f.store.tombstone_count() == 0);
}

TEST_CASE("peek shows the entry as stored: tombstones and expired values, left in place") {
  StoreOptions o;
  o.keep_tombstones = true;
  Fixture f(o);
  struct Seen {
    std::string value;
    bool tombstone;
    Millis expire_at;
    Version version;
  };
  auto peek = [&](const std::string& k) -> std::optional<Seen> {
    std::optional<Seen> out;
    bool found = f.store.peek(k, token_of(k), [&](const EntryView& e) {
      out = Seen{e.tombstone() ? "" : std::string(e.value()), e.tombstone(), e.expire_at(),
                 e.version()};
    });
    CHECK(found == out.has_value());
    return out;
  };
  CHECK_FALSE(peek("none").has_value());
  // A live value with its expiry and version.
  Version v = f.store.access("k", token_of("k"), f.now(),
                             [&](Access& a) { return a.set("value", f.now() + 100); });
  auto live = peek("k");
  REQUIRE(live);
  CHECK(live->value == "value");
  CHECK_FALSE(live->tombstone);
  CHECK(live->expire_at == f.now() + 100);
  CHECK(live->version == v);
  // Expired: still shown, and not removed by looking.
  f.clock.advance_ms(200);
  auto expired = peek("k");
  REQUIRE(expired);
  CHECK(expired->value == "value");
  CHECK(f.store.volatile_size() == 1);
  // A tombstone, with the delete's version.
  f.set("d", "x");
  Version deleted =
      f.store.access("d", token_of("d"), f.now(), [](Access& a) { return a.erase(); });
  auto tomb = peek("d");
  REQUIRE(tomb);
  CHECK(tomb->tombstone);
  CHECK(tomb->version == deleted);
  // A key of the same token range but another name is not confused with it.
  CHECK_FALSE(peek("k2").has_value());
}

TEST_CASE("expiry: lazy on access and by the bounded active cycle") {
  Fixture f;
  for (int i = 0; i < 1000; ++i) f.set("v" + std::to_string(i), "x", f.now() + 100);
  for (int i = 0; i < 1000; ++i) f.set("p" + std::to_string(i), "x");
  CHECK(f.store.volatile_size() == 1000);
  f.clock.advance_ms(200);
  CHECK_FALSE(f.get("v5").has_value());  // lazy
  CHECK(f.store.size() == 1999);
  // Active expiry with a small budget needs several rounds, each bounded.
  size_t total = 0;
  int rounds = 0;
  while (f.store.volatile_size() > 0 && rounds < 1000) {
    size_t n = f.store.active_expire(f.now(), 20);
    CHECK(n <= 20);
    total += n;
    ++rounds;
  }
  CHECK(total == 999);
  CHECK(rounds > 10);
  CHECK(f.store.size() == 1000);
  CHECK(f.store.stats().expired_keys == 1000);
}

TEST_CASE("scan visits every key present for the whole scan exactly once") {
  Fixture f;
  std::set<std::string> stable;
  for (int i = 0; i < 20000; ++i) {
    std::string k = "s" + std::to_string(i);
    f.set(k, "v");
    stable.insert(k);
  }
  std::multiset<std::string> seen;
  Token cursor = 0;
  int calls = 0;
  int churn = 0;
  do {
    cursor = f.store.scan(cursor, 37, f.now(), [&](const EntryView& e) { seen.emplace(e.key()); });
    // Between calls, other keys come and go and tables resize.
    for (int j = 0; j < 50; ++j) f.set("churn" + std::to_string(churn++), "x");
    if (churn % 200 == 0) {
      for (int j = churn - 200; j < churn - 100; ++j) f.del("churn" + std::to_string(j));
    }
    ++calls;
  } while (cursor != 0);
  for (const auto& k : stable) REQUIRE(seen.count(k) == 1);
  CHECK(calls > 100);
}

TEST_CASE("scan_range and drop_range cover exactly the tokens asked for") {
  Fixture f;
  std::vector<std::pair<Token, std::string>> all;
  for (int i = 0; i < 5000; ++i) {
    std::string k = "r" + std::to_string(i);
    f.set(k, "v");
    all.emplace_back(token_of(k), k);
  }
  Token first = 0x4000000000000000ULL, last = 0x7fffffffffffffffULL;
  size_t expected = 0;
  for (auto& [t, k] : all) expected += (t >= first && t <= last);
  size_t got = 0;
  Token cur = first;
  while (true) {
    Token next = f.store.scan_range(cur, last, 100, f.now(), false, [&](const EntryView& e) {
      REQUIRE(e.token() >= first);
      REQUIRE(e.token() <= last);
      ++got;
    });
    if (next == last + 1 || next == 0) break;
    cur = next;
  }
  CHECK(got == expected);
  CHECK(f.store.drop_range(first, last) == expected);
  CHECK(f.store.size() == all.size() - expected);
  for (auto& [t, k] : all) CHECK(f.get(k).has_value() == !(t >= first && t <= last));
}

TEST_CASE("eviction under allkeys-lru removes the idle keys first") {
  StoreOptions o;
  o.policy = EvictionPolicy::kAllKeysLru;
  Fixture f(o);
  for (int i = 0; i < 2000; ++i) f.set("old" + std::to_string(i), std::string(100, 'o'));
  f.clock.advance_ms(100000);
  for (int i = 0; i < 2000; ++i) f.set("new" + std::to_string(i), std::string(100, 'n'));
  size_t limit = f.store.memory_used() - 150 * 1000;
  REQUIRE(f.store.evict_to(limit, f.now(), 5));
  CHECK(f.store.memory_used() <= limit);
  size_t old_left = 0, new_left = 0;
  for (int i = 0; i < 2000; ++i) {
    old_left += f.get("old" + std::to_string(i)).has_value();
    new_left += f.get("new" + std::to_string(i)).has_value();
  }
  CHECK(new_left > old_left);
  CHECK(f.store.stats().evicted_keys >= 1000);
}

TEST_CASE("noeviction refuses and volatile policies spare persistent keys") {
  Fixture f;
  for (int i = 0; i < 100; ++i) f.set("k" + std::to_string(i), "v");
  CHECK_FALSE(f.store.evict_to(0, f.now(), 5));
  CHECK(f.store.size() == 100);
  f.store.set_policy(EvictionPolicy::kVolatileTtl);
  for (int i = 0; i < 100; ++i) f.set("t" + std::to_string(i), "v", f.now() + 1000 + i);
  CHECK_FALSE(f.store.evict_to(0, f.now(), 5));  // only volatile keys may go; persistent stay
  CHECK(f.store.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(f.get("k" + std::to_string(i)).has_value());
}

TEST_CASE("random_key returns live keys only") {
  Fixture f;
  std::string out;
  CHECK_FALSE(f.store.random_key(f.now(), &out));
  f.set("only", "v");
  f.set("gone", "v", f.now() + 10);
  f.clock.advance_ms(20);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(f.store.random_key(f.now(), &out));
    CHECK(out == "only");
  }
}

TEST_CASE("concurrent writers and readers on shared stripes") {
  Fixture f;
  const int threads = 4, per = 20000;
  std::vector<std::thread> ts;
  // Catch2's assertions are not thread-safe (TSan reports its own counters): the threads count
  // bad reads and the main thread checks the count.
  std::atomic<int> torn{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) {
        std::string k = "c" + std::to_string(i % 5000);  // heavy overlap between threads
        std::string mine = "t" + std::to_string(t) + ":" + std::to_string(i);
        f.store.access(k, token_of(k), f.now(), [&](Access& a) {
          if (i % 7 == 0 && a.found())
            a.erase();
          else
            a.set(mine, i % 3 == 0 ? f.now() + 100000 : -1);
        });
        auto v = f.get(k);
        if (v && v->size() < 3) ++torn;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(torn == 0);
  size_t n = 0;
  Token c = 0;
  do {
    c = f.store.scan(c, 1000, f.now(), [&](const EntryView&) { ++n; });
  } while (c != 0);
  CHECK(n == f.store.size());
  CHECK(n <= 5000);
}

TEST_CASE("drop_range across many stripes removes exactly the range (regression: stripe offset)") {
  Fixture f;
  std::vector<std::pair<Token, std::string>> all;
  for (int i = 0; i < 20000; ++i) {
    std::string k = "d" + std::to_string(i);
    f.set(k, "v");
    all.emplace_back(token_of(k), k);
  }
  // A range that starts in the middle of one stripe and spans dozens of others.
  Token first = 0x12345678abcdef00ULL, last = 0x5fedcba987654321ULL;
  size_t expected = 0;
  for (auto& [t, k] : all) expected += (t >= first && t <= last);
  CHECK(f.store.drop_range(first, last) == expected);
  for (auto& [t, k] : all) REQUIRE(f.get(k).has_value() == !(t >= first && t <= last));
}
