// Multi-process cluster tests: 3+ nodes on loopback, keys loaded through random nodes and read
// back through every node, live RING ADDSERVER / REMOVESERVER under a continuous checker, exact
// movement against the ring's diff, and whole-data-set digests per token range across replicas.
// Every test runs with the embedded configuration service and with etcd.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include "cluster_harness.h"
#include "ringkv/ring.h"
#include "ringkv/token.h"

using namespace ringkv;
using namespace ringkv::testing;

namespace {

// Loads the keys through random nodes, in pipelined batches.
void load_random(Cluster& c, const KeyValues& kv, std::mt19937& rng) {
  std::vector<Context> clients;
  for (int i = 0; i < c.size(); ++i) clients.push_back(c.client(i));
  const size_t batch = 1000;
  for (size_t off = 0; off < kv.size(); off += batch) {
    std::vector<std::pair<std::string, std::string>> part(
        kv.begin() + static_cast<long>(off),
        kv.begin() + static_cast<long>(std::min(kv.size(), off + batch)));
    REQUIRE(pipeline_set(clients[rng() % clients.size()].get(), part));
  }
}

// Reads every key through every running node and checks its value.
void check_all(Cluster& c, const std::map<std::string, std::string>& expected) {
  std::vector<std::string> keys;
  for (auto& [k, v] : expected) keys.push_back(k);
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    auto cl = c.client(i);
    size_t wrong = 0;
    std::string first_wrong;
    for (size_t off = 0; off < keys.size(); off += 2000) {
      std::vector<std::string> part(
          keys.begin() + static_cast<long>(off),
          keys.begin() + static_cast<long>(std::min(keys.size(), off + 2000)));
      auto vals = pipeline_get(cl.get(), part);
      for (size_t j = 0; j < part.size(); ++j) {
        if (!vals[j] || *vals[j] != expected.at(part[j])) {
          if (wrong++ == 0) first_wrong = part[j] + " = " + (vals[j] ? *vals[j] : "<nil>");
        }
      }
    }
    INFO("node " << c.id(i) << " first wrong: " << first_wrong);
    CHECK(wrong == 0);
  }
}

// For every token range of the ring: every replica holds the same entries (count and digest),
// and no other node holds any. Returns the total number of keys (counted once per range).
uint64_t check_digests(Cluster& c, const std::vector<int>& members, size_t n) {
  std::vector<std::string> ids;
  for (int m : members) ids.push_back(c.id(m));
  auto ring = ring_of(ids);
  auto ranges = ring->ranges(n);
  REQUIRE(ranges.is_ok());
  // digests[node][range] = (count, digest)
  std::map<int, std::vector<std::pair<long long, std::string>>> digests;
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    auto cl = c.client(i);
    for (const auto& rr : *ranges) {
      std::string f = std::to_string(rr.range.first), l = std::to_string(rr.range.last);
      const char* argv[] = {"RINGKV.DIGEST", f.c_str(), l.c_str()};
      redisAppendCommand(cl.get(), "RINGKV.DIGEST %s %s", argv[1], argv[2]);
    }
    for (size_t k = 0; k < ranges->size(); ++k) {
      void* r = nullptr;
      REQUIRE(redisGetReply(cl.get(), &r) == REDIS_OK);
      auto* rep = static_cast<redisReply*>(r);
      REQUIRE(rep->type == REDIS_REPLY_ARRAY);
      digests[i].emplace_back(rep->element[0]->integer,
                              std::string(rep->element[1]->str, rep->element[1]->len));
      freeReplyObject(rep);
    }
  }
  uint64_t total = 0;
  size_t mismatches = 0, strays = 0;
  for (size_t k = 0; k < ranges->size(); ++k) {
    const auto& rr = (*ranges)[k];
    std::set<int> holders;
    for (uint32_t idx : rr.replicas) holders.insert(members[idx]);
    std::optional<std::pair<long long, std::string>> ref;
    for (auto& [node, d] : digests) {
      if (holders.count(node)) {
        if (!ref)
          ref = d[k];
        else if (d[k] != *ref)
          ++mismatches;
      } else if (d[k].first != 0) {
        ++strays;
      }
    }
    if (ref) total += static_cast<uint64_t>(ref->first);
  }
  CHECK(mismatches == 0);
  CHECK(strays == 0);
  return total;
}

uint64_t received(Cluster& c, int i) {
  return std::stoull("0" + info_field(c.ring_info(i), "node_keys_received"));
}

}  // namespace

TEST_CASE(
    "three nodes: 100,000 keys through random nodes, readable through every node, N copies each") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION((etcd ? "etcd" : "embedded") << " configuration service") {
      Cluster c(3, etcd);
      std::mt19937 rng(42);
      auto kv = make_keys(100000, "k:");
      load_random(c, kv, rng);
      std::map<std::string, std::string> expected(kv.begin(), kv.end());
      check_all(c, expected);
      CHECK(check_digests(c, {0, 1, 2}, 3) == kv.size());
      // DBSIZE counts each key once, through any node.
      for (int i = 0; i < 3; ++i) CHECK(command(c.client(i).get(), {"DBSIZE"})->integer == 100000);
    }
  }
}

TEST_CASE("adding and removing servers moves exactly what the ring's diff says") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION((etcd ? "etcd" : "embedded") << " configuration service") {
      Cluster c(3, etcd);
      std::mt19937 rng(7);
      auto kv = make_keys(40000, "m:");
      load_random(c, kv, rng);
      std::map<std::string, std::string> expected(kv.begin(), kv.end());
      // Add a 4th server: it receives exactly the keys of the ranges it gains.
      int n4 = c.start_node();
      c.add(n4);
      CHECK(received(c, n4) ==
            predicted_gain(kv, {"n1", "n2", "n3"}, {"n1", "n2", "n3", "n4"}, "n4", 3));
      for (int i = 0; i < 3; ++i) CHECK(received(c, i) == 0);
      check_all(c, expected);
      CHECK(check_digests(c, {0, 1, 2, 3}, 3) == kv.size());
      // Remove n2: the others receive exactly their gains, n2 ends up holding nothing.
      Reply r = command(c.client(0).get(), {"RING", "REMOVESERVER", "n2"});
      REQUIRE(reply_text(r) == "OK");
      REQUIRE(c.wait_idle());
      for (int i : {0, 2, 3}) {
        INFO("gainer " << c.id(i));
        CHECK(received(c, i) ==
              predicted_gain(kv, {"n1", "n2", "n3", "n4"}, {"n1", "n3", "n4"}, c.id(i), 3));
      }
      check_all(c, expected);
      CHECK(check_digests(c, {0, 2, 3}, 3) == kv.size());
    }
  }
}

TEST_CASE("ring changes under load: no failed command, no lost write") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION((etcd ? "etcd" : "embedded") << " configuration service") {
      Cluster c(3, etcd);
      std::mt19937 rng(99);
      auto kv = make_keys(20000, "base:");
      load_random(c, kv, rng);
      int n4 = c.start_node();
      std::atomic<bool> stop{false};
      std::atomic<uint64_t> ops{0}, failures{0};
      std::mutex mu;
      std::map<std::string, std::string> acked(kv.begin(), kv.end());
      std::string first_failure;
      // The checker: writes new keys and overwrites old ones through every node in turn, and
      // reads back what it wrote, until told to stop (bounded by count too).
      std::thread checker([&] {
        std::vector<Context> clients;
        for (int i = 0; i < 4; ++i) clients.push_back(c.client(i));
        std::mt19937 r(5);
        for (uint64_t i = 0; !stop && i < 2'000'000; ++i) {
          redisContext* cl = clients[i % 4].get();
          std::string key =
              (i % 3 == 0) ? "base:" + std::to_string(r() % 20000) : "live:" + std::to_string(i);
          std::string val = "w" + std::to_string(i);
          Reply w = command(cl, {"SET", key, val});
          ++ops;
          if (!w || w->type != REDIS_REPLY_STATUS) {
            ++failures;
            std::lock_guard<std::mutex> lock(mu);
            if (first_failure.empty()) first_failure = "SET " + key + ": " + reply_text(w);
            continue;
          }
          {
            std::lock_guard<std::mutex> lock(mu);
            acked[key] = val;
          }
          Reply g = command(clients[(i + 1) % 4].get(), {"GET", key});
          ++ops;
          if (!g || g->type != REDIS_REPLY_STRING || std::string(g->str, g->len) != val) {
            ++failures;
            std::lock_guard<std::mutex> lock(mu);
            if (first_failure.empty())
              first_failure = "GET " + key + ": " + reply_text(g) + " (wanted " + val + ")";
          }
        }
      });
      c.add(n4);
      Reply r = command(c.client(0).get(), {"RING", "REMOVESERVER", "n2"});
      REQUIRE(reply_text(r) == "OK");
      REQUIRE(c.wait_idle());
      stop = true;
      checker.join();
      INFO("first failure: " << first_failure);
      CHECK(failures == 0);
      CHECK(ops > 1000);
      check_all(c, acked);
      CHECK(check_digests(c, {0, 2, 3}, 3) == acked.size());
    }
  }
}

namespace {

// Puts a newer version of key on one node only, as a lost replication message would leave it.
void diverge(Cluster& c, int node, const std::string& key, const std::string& value) {
  Reply e = command(c.client(node).get(), {"RINGKV.GETENTRY", key});
  REQUIRE(e->type == REDIS_REPLY_ARRAY);
  uint64_t version = std::stoull(std::string(e->element[2]->str, e->element[2]->len));
  Reply r = command(c.client(node).get(), {"RINGKV.REPL", key, value, "-1",
                                           std::to_string(version + (uint64_t{1} << 30)), ""});
  REQUIRE(r->type == REDIS_REPLY_INTEGER);
  REQUIRE(r->integer == 1);
}

// A key prefix + i whose only holder (N = 1) is `id`.
std::string key_held_by(Cluster& c, const std::string& id, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string k = prefix + std::to_string(i);
    if (owners_of(c, k) == std::vector<std::string>{id}) return k;
  }
}

}  // namespace

TEST_CASE("a key's owner with a lower proto-max-bulk-len takes a large value forwarded to it") {
  Cluster c(3, false);
  auto owners = owners_of(c, "big");
  REQUIRE(owners.size() == 3);
  const int owner = index_of(c, owners[0]);
  const int entry = (owner + 1) % 3;
  REQUIRE(text(c.client(owner).get(), {"CONFIG", "SET", "proto-max-bulk-len", "1mb"}) == "OK");
  // 2 MB through a node whose own limit allows it: the owner takes it from its peer (the
  // entry node checked the client's request), and the link keeps serving other clients.
  const std::string value(2 * 1024 * 1024, 'v');
  auto cl = c.client(entry);
  CHECK(text(cl.get(), {"SET", "big", value}) == "OK");
  CHECK(command(c.client(entry).get(), {"STRLEN", "big"})->integer == 2 * 1024 * 1024);
  CHECK(text(c.client(entry).get(), {"SET", "small", "x"}) == "OK");
  CHECK(text(c.client(owner).get(), {"GET", "small"}) == "x");
}

TEST_CASE("a client pipelining large reads does not queue all of them ahead of another client") {
  // The clients of a node's loop share its link to each peer. A pipelines 400 (GET big,
  // INCR counter) pairs through n1 and does not read; both keys live on n2. B's INCR of the same
  // counter through n1 tells how many of A's INCRs n2 ran before it: all 400 if A's whole
  // pipeline went onto the link at once.
  Cluster c(3, false, {"--replicas", "1"});
  const std::string big = key_held_by(c, "n2", "big:"), counter = key_held_by(c, "n2", "counter:");
  const std::string value(256 * 1024, 'v');
  REQUIRE(text(c.client(0).get(), {"SET", big, value}) == "OK");
  const int pairs = 400;
  auto a = connect(c.port(0), 60000);
  REQUIRE(a);
  std::vector<std::vector<std::string>> pipeline_a;
  for (int i = 0; i < pairs; ++i) {
    pipeline_a.push_back({"GET", big});
    pipeline_a.push_back({"INCR", counter});
  }
  send_pipeline(a.get(), pipeline_a);
  auto b = connect(c.port(0), 60000);
  REQUIRE(b);
  Reply mine = command(b.get(), {"INCR", counter});
  REQUIRE(mine);
  REQUIRE(mine->type == REDIS_REPLY_INTEGER);
  INFO("B's INCR came after " << mine->integer - 1 << " of A's");
  // A runs until about 16 MB of its replies wait for it to read them, and has a bounded share
  // of replies awaited from n2 at a time.
  CHECK(mine->integer <= pairs / 2);
  // A's replies are all there, in order, and each INCR ran once: A's counts and B's are
  // 1..401, A's increasing.
  auto replies = read_replies(a.get(), pipeline_a.size());
  std::vector<long long> counts;
  for (int i = 0; i < pairs; ++i) {
    REQUIRE(replies[2 * i]->type == REDIS_REPLY_STRING);
    REQUIRE(replies[2 * i]->len == value.size());
    REQUIRE(replies[2 * i + 1]->type == REDIS_REPLY_INTEGER);
    counts.push_back(replies[2 * i + 1]->integer);
  }
  CHECK(std::is_sorted(counts.begin(), counts.end()));
  counts.push_back(mine->integer);
  std::sort(counts.begin(), counts.end());
  std::vector<long long> expected(pairs + 1);
  std::iota(expected.begin(), expected.end(), 1);
  CHECK(counts == expected);
}

TEST_CASE("hot-key cache: a node serves what it read from another for hot-key-cache-ms") {
  Cluster c(3, false, {"--replicas", "1", "--hot-key-cache-ms", "600000"});
  const std::string k = key_held_by(c, "n2", "hot:"), other = key_held_by(c, "n3", "hot:");
  auto n1 = c.client(0), n2 = c.client(1), n3 = c.client(2);
  auto stat = [&](const std::string& field) {
    return info_field(text(n1.get(), {"INFO", "stats"}), field);
  };
  auto get = [&](Context& cl) { return text(cl.get(), {"GET", k}); };
  REQUIRE(text(n2.get(), {"SET", k, "v1"}) == "OK");
  CHECK(get(n1) == "v1");  // read from n2, and kept
  CHECK(stat("hot_key_cache_keys") == "1");
  CHECK(stat("hot_key_cache_misses") == "1");
  // Written through n2: n1 serves the value it read, for hot-key-cache-ms (10 minutes here).
  REQUIRE(text(n2.get(), {"SET", k, "v2"}) == "OK");
  CHECK(get(n1) == "v1");
  CHECK(get(n1) == "v1");
  CHECK(stat("hot_key_cache_hits") == "2");
  CHECK(get(n3) == "v2");
  // A write through n1 drops what n1 kept of its keys, whatever the command.
  REQUIRE(text(n1.get(), {"SET", k, "v3"}) == "OK");
  CHECK(get(n1) == "v3");
  REQUIRE(text(n2.get(), {"APPEND", k, "+"}) == "3");
  CHECK(get(n1) == "v3");                                          // kept again
  REQUIRE(text(n1.get(), {"MSET", other, "x", k, "v4"}) == "OK");  // split across n2 and n3
  CHECK(get(n1) == "v4");
  REQUIRE(text(n1.get(), {"DEL", k}) == "1");
  CHECK(get(n1) == "<nil>");
  REQUIRE(text(n2.get(), {"SET", k, "v5"}) == "OK");
  CHECK(get(n1) == "v5");
  REQUIRE(text(n1.get(), {"FLUSHALL"}) == "OK");
  CHECK(get(n1) == "<nil>");
  CHECK(stat("hot_key_cache_keys") == "0");
  // A read under way when a write of its key goes through n1 is not kept: its value may be the
  // one before the write.
  REQUIRE(text(n2.get(), {"SET", k, "v6"}) == "OK");
  auto r = pipeline(n1.get(), {{"GET", k}, {"SET", k, "v7"}});
  CHECK(reply_text(r[0]) == "v6");
  CHECK(reply_text(r[1]) == "OK");
  CHECK(get(n1) == "v7");
  REQUIRE(text(n2.get(), {"SET", k, "v8"}) == "OK");
  CHECK(get(n1) == "v7");  // the last read kept v7, not v6
  // Turned off (and any change of the setting) empties it: every read goes to the primary.
  REQUIRE(text(n1.get(), {"CONFIG", "SET", "hot-key-cache-ms", "0"}) == "OK");
  CHECK(get(n1) == "v8");
  REQUIRE(text(n2.get(), {"SET", k, "v9"}) == "OK");
  CHECK(get(n1) == "v9");
  REQUIRE(eventually([&] { return stat("hot_key_cache_keys") == "0"; }));
  // Kept for hot-key-cache-ms only.
  REQUIRE(text(n1.get(), {"CONFIG", "SET", "hot-key-cache-ms", "200"}) == "OK");
  CHECK(get(n1) == "v9");
  REQUIRE(text(n2.get(), {"SET", k, "v10"}) == "OK");
  REQUIRE(eventually([&] { return get(n1) == "v10"; }, std::chrono::milliseconds(10000)));
  // Kept no longer than the key lives: a TTL set through n1 ends n1's copy too.
  REQUIRE(text(n1.get(), {"CONFIG", "SET", "hot-key-cache-ms", "600000"}) == "OK");
  REQUIRE(text(n1.get(), {"SET", k, "short", "PX", "300"}) == "OK");
  CHECK(get(n1) == "short");
  REQUIRE(eventually([&] { return get(n1) == "<nil>"; }, std::chrono::milliseconds(10000)));
  REQUIRE(text(n1.get(), {"SET", k, "long"}) == "OK");
  CHECK(get(n1) == "long");
  REQUIRE(text(n1.get(), {"PEXPIRE", k, "300"}) == "1");
  CHECK(get(n1) == "long");
  REQUIRE(eventually([&] { return get(n1) == "<nil>"; }, std::chrono::milliseconds(10000)));
  // A GET behind a request still awaited in its pipeline is not answered from the cache ahead
  // of it: it reads the primary, after the request before it.
  const std::string before = key_held_by(c, "n2", "before:");
  REQUIRE(text(n2.get(), {"SET", k, "w1"}) == "OK");
  CHECK(get(n1) == "w1");
  REQUIRE(text(n2.get(), {"SET", k, "w2"}) == "OK");
  CHECK(get(n1) == "w1");  // kept
  auto p = pipeline(n1.get(), {{"GET", before}, {"GET", k}});
  CHECK(reply_text(p[1]) == "w2");
}

TEST_CASE("read quorum R=2: a read returns the newest of two copies and repairs the primary") {
  Cluster c(3, false, {"--read-quorum", "2"});
  REQUIRE(reply_text(command(c.client(0).get(), {"SET", "rq", "old"})) == "OK");
  auto owners = owners_of(c, "rq");
  REQUIRE(owners.size() == 3);
  // The second copy gets a newer value behind the primary's back.
  diverge(c, index_of(c, owners[1]), "rq", "newer");
  for (int i = 0; i < 3; ++i)
    CHECK(reply_text(command(c.client(i).get(), {"GET", "rq"})) == "newer");
  // The primary now holds it too.
  Reply p = command(c.client(index_of(c, owners[0])).get(), {"RINGKV.GETENTRY", "rq"});
  REQUIRE(p->type == REDIS_REPLY_ARRAY);
  CHECK(std::string(p->element[0]->str, p->element[0]->len) == "newer");
}

TEST_CASE("anti-entropy: RING REPAIR makes diverged replicas equal, newest value winning") {
  Cluster c(3, false);
  std::mt19937 rng(3);
  auto kv = make_keys(3000, "ae:");
  load_random(c, kv, rng);
  std::map<std::string, std::string> expected(kv.begin(), kv.end());
  // Diverge 20 keys on their third copy (a replica that does not serve reads).
  for (int i = 0; i < 20; ++i) {
    std::string key = "ae:" + std::to_string(i * 97);
    auto owners = owners_of(c, key);
    diverge(c, index_of(c, owners[2]), key, "repaired-" + std::to_string(i));
    expected[key] = "repaired-" + std::to_string(i);
  }
  // Digests now differ somewhere; RING REPAIR on every node (each repairs its primary ranges).
  size_t repaired = 0;
  for (int i = 0; i < 3; ++i) {
    Reply r = command(c.client(i).get(), {"RING", "REPAIR"});
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    repaired += static_cast<size_t>(r->element[3]->integer);
  }
  CHECK(repaired >= 1);
  CHECK(repaired <= 20);  // one range per diverged key, repaired once by its primary
  CHECK(check_digests(c, {0, 1, 2}, 3) == expected.size());
  check_all(c, expected);
}

TEST_CASE("a node that marks a peer down repairs the ranges it stands in for") {
  // The periodic anti-entropy does not run within the test (its first round is an hour away):
  // only the round a peer's failure starts can repair.
  Cluster c(3, false, {"--anti-entropy-interval", "3600"});
  std::mt19937 rng(4);
  auto kv = make_keys(2000, "pd:");
  load_random(c, kv, rng);
  std::map<std::string, std::string> expected(kv.begin(), kv.end());
  // Keys whose first holder is n3, made newer on their second holder only: as if n3 executed a
  // write, the second holder acknowledged it (W = 2), and n3 died before the third applied it.
  int diverged = 0;
  for (const auto& [key, value] : kv) {
    auto owners = owners_of(c, key);
    if (owners[0] != "n3" || diverged == 10) continue;
    diverge(c, index_of(c, owners[1]), key, "newer-" + key);
    expected[key] = "newer-" + key;
    ++diverged;
  }
  REQUIRE(diverged == 10);
  c.node(2).kill_hard();
  REQUIRE(wait_servers_up(c, {0, 1}, 2, std::chrono::milliseconds(20000)));
  // Both survivors end with the newer values, in every range n3 was the first holder of.
  std::vector<std::string> keys;
  for (const auto& [key, value] : expected)
    if (value.rfind("newer-", 0) == 0) keys.push_back(key);
  for (int node : {0, 1}) {
    INFO("node " << c.id(node));
    auto cl = c.client(node);
    CHECK(eventually([&] {
      for (const auto& key : keys) {
        Reply e = command(cl.get(), {"RINGKV.GETENTRY", key});
        if (!e || e->type != REDIS_REPLY_ARRAY ||
            std::string(e->element[0]->str, e->element[0]->len) != expected[key])
          return false;
      }
      return true;
    }));
  }
}

TEST_CASE("a node standing in for a dead primary reads the newest live copy until it repaired") {
  // No repair round runs on its own: the window between a peer's failure and the repair round
  // stays open until RING REPAIR.
  Cluster c(3, false, {"--anti-entropy-interval", "0"});
  auto a = c.client(0);
  // Keys whose first holder is n3, at 5 on every copy, then newer (1000) on their third holder
  // only: as if n3 executed a write, the third holder acknowledged it (W = 2), and n3 died
  // before the second holder, which stands in for it, applied it.
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 12; ++i) {
    std::string key = "si:" + std::to_string(i);
    auto owners = owners_of(c, key);
    if (owners[0] != "n3") continue;
    REQUIRE(text(a.get(), {"SET", key, "5"}) == "OK");
    auto third = c.client(index_of(c, owners[2]));
    REQUIRE(eventually([&] {
      Reply e = command(third.get(), {"RINGKV.GETENTRY", key});
      return e && e->type == REDIS_REPLY_ARRAY &&
             std::string(e->element[0]->str, e->element[0]->len) == "5";
    }));
    diverge(c, index_of(c, owners[2]), key, "1000");
    keys.push_back(key);
  }
  c.node(2).kill_hard();
  REQUIRE(wait_servers_up(c, {0, 1}, 2, std::chrono::milliseconds(20000)));
  for (int node : {0, 1}) CHECK(info(c, node, "node_repair_pending") == "yes");
  // Through both survivors: reads see the acknowledged value, and read-modify-write commands
  // (INCR, APPEND, INCR in a transaction) build on it, instead of on the stand-in's older copy.
  auto b = c.client(1);
  for (size_t i = 0; i < keys.size(); ++i) {
    INFO("key " << keys[i] << ", held by " << owners_of(c, keys[i])[1] << " and "
                << owners_of(c, keys[i])[2]);
    redisContext* via = (i / 4) % 2 == 0 ? a.get() : b.get();
    redisContext* other = (i / 4) % 2 == 0 ? b.get() : a.get();
    switch (i % 4) {
      case 0:
        CHECK(text(via, {"GET", keys[i]}) == "1000");
        CHECK(text(other, {"GET", keys[i]}) == "1000");
        break;
      case 1: {
        Reply r = command(via, {"INCR", keys[i]});
        REQUIRE(r->type == REDIS_REPLY_INTEGER);
        CHECK(r->integer == 1001);
        CHECK(text(other, {"GET", keys[i]}) == "1001");
        break;
      }
      case 2: {
        Reply r = command(via, {"APPEND", keys[i], "x"});
        REQUIRE(r->type == REDIS_REPLY_INTEGER);
        CHECK(r->integer == 5);
        CHECK(text(other, {"GET", keys[i]}) == "1000x");
        break;
      }
      default: {
        REQUIRE(text(via, {"MULTI"}) == "OK");
        REQUIRE(text(via, {"INCR", keys[i]}) == "QUEUED");
        Reply r = command(via, {"EXEC"});
        REQUIRE(r->type == REDIS_REPLY_ARRAY);
        REQUIRE(r->elements == 1);
        CHECK(r->element[0]->integer == 1001);
        CHECK(text(other, {"GET", keys[i]}) == "1001");
        break;
      }
    }
  }
  // A repair round ends the window.
  for (int node : {0, 1}) {
    Reply r = command(c.client(node).get(), {"RING", "REPAIR"});
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    CHECK(info(c, node, "node_repair_pending") == "no");
  }
}

// A 3-node cluster (N = 1) holding `keys` keys that is adding n4 at migration-rate 1 key/s, so
// the move stays in progress for the whole test; `mine` are the keys n4 becomes the owner of.
struct SlowMove {
  Cluster c;
  int n4;
  std::vector<std::pair<std::string, std::string>> mine;

  SlowMove(bool etcd, size_t keys, const std::string& prefix, unsigned seed)
      : c(3, etcd, {"--replicas", "1", "--migration-rate", "1"}) {
    std::mt19937 rng(seed);
    auto kv = make_keys(keys, prefix);
    load_random(c, kv, rng);
    n4 = c.start_node();
    auto a = c.client(0);
    REQUIRE(reply_text(command(a.get(), {"RING", "ADDSERVER", "n4",
                                         "127.0.0.1:" + std::to_string(c.port(n4))})) == "OK");
    auto after = ring_of({"n1", "n2", "n3", "n4"});
    for (const auto& [k, v] : kv)
      if (after->owner(token_of(k)) == "n4") mine.emplace_back(k, v);
  }
  // A counter of n4's RING INFO.
  uint64_t n4_count(const std::string& field) {
    return std::stoull("0" + info_field(c.ring_info(n4), field));
  }
};

TEST_CASE("during a move, blind writes take no read-through and conditional ones do") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION((etcd ? "etcd" : "embedded") << " configuration service") {
      // n4 copies a key now and then, so while the test runs almost every range it gains is
      // still pending there.
      SlowMove m(etcd, 3000, "rt:", 11);
      Cluster& c = m.c;
      const int n4 = m.n4;
      const auto& mine = m.mine;
      auto a = c.client(0);
      auto read_throughs = [&] { return m.n4_count("node_read_throughs"); };
      REQUIRE(eventually([&] {
        std::string p = info_field(c.ring_info(n4), "node_pending_ranges");
        return !p.empty() && p != "0";
      }));
      // Four groups of keys whose new primary is n4.
      REQUIRE(mine.size() >= 300);
      const uint64_t start = read_throughs();

      // Blind writes (SET, SET EX, SETEX, PSETEX, MSET) through n1: no read-through, and the new
      // value wins over the older copy still on its way.
      for (size_t i = 0; i < 100; ++i) {
        const std::string& k = mine[i].first;
        std::vector<std::string> cmd;
        switch (i % 5) {
          case 0:
            cmd = {"SET", k, "new" + k};
            break;
          case 1:
            cmd = {"SET", k, "new" + k, "EX", "1000"};
            break;
          case 2:
            cmd = {"SETEX", k, "1000", "new" + k};
            break;
          case 3:
            cmd = {"PSETEX", k, "1000000", "new" + k};
            break;
          default:
            cmd = {"MSET", k, "new" + k};
            break;
        }
        INFO("key " << k);
        CHECK(reply_text(command(a.get(), cmd)) == "OK");
      }
      CHECK(read_throughs() == start);
      for (size_t i = 0; i < 100; ++i)
        CHECK(reply_text(command(a.get(), {"GET", mine[i].first})) == "new" + mine[i].first);
      CHECK(read_throughs() == start);  // the values are there now

      // Writes whose reply depends on the old value read it through first: SET NX of a key
      // that exists elsewhere does nothing, SET GET returns the old value, APPEND extends it.
      uint64_t before = read_throughs();
      for (size_t i = 100; i < 160; ++i) {
        const auto& [k, v] = mine[i];
        INFO("key " << k);
        switch (i % 3) {
          case 0:
            CHECK(reply_text(command(a.get(), {"SET", k, "x", "NX"})) == "<nil>");
            CHECK(reply_text(command(a.get(), {"GET", k})) == v);
            break;
          case 1:
            CHECK(reply_text(command(a.get(), {"SET", k, "y", "GET"})) == v);
            break;
          default:
            CHECK(reply_text(command(a.get(), {"APPEND", k, "z"})) == std::to_string(v.size() + 1));
            break;
        }
      }
      uint64_t conditional = read_throughs() - before;
      CHECK(conditional > 0);  // the keys n4 had not received yet (nearly all of them)
      CHECK(conditional <= 60);

      // Reads of keys not yet here read through once each, then find them here.
      before = read_throughs();
      for (size_t i = 160; i < 260; ++i)
        CHECK(reply_text(command(a.get(), {"GET", mine[i].first})) == mine[i].second);
      uint64_t reads = read_throughs() - before;
      CHECK(reads > 0);
      CHECK(reads <= 100);
      for (size_t i = 160; i < 260; ++i)
        CHECK(reply_text(command(a.get(), {"GET", mine[i].first})) == mine[i].second);
      CHECK(read_throughs() - before == reads);

      // A transaction reads through the keys of its commands before it runs.
      before = read_throughs();
      for (size_t i = 260; i < 280; ++i) {
        const auto& [k, v] = mine[i];
        INFO("key " << k);
        REQUIRE(reply_text(command(a.get(), {"MULTI"})) == "OK");
        REQUIRE(reply_text(command(a.get(), {"APPEND", k, "t"})) == "QUEUED");
        Reply r = command(a.get(), {"EXEC"});
        REQUIRE(r->type == REDIS_REPLY_ARRAY);
        REQUIRE(r->elements == 1);
        CHECK(r->element[0]->integer == static_cast<long long>(v.size() + 1));
        CHECK(reply_text(command(a.get(), {"GET", k})) == v + "t");
      }
      CHECK(read_throughs() - before > 0);
    }
  }
}

TEST_CASE(
    "during a move, writes at a key's new holder stop copying to old holders once all route") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION((etcd ? "etcd" : "embedded") << " configuration service") {
      SlowMove m(etcd, 2000, "oh:", 12);
      Cluster& c = m.c;
      const int n4 = m.n4;
      const auto& mine = m.mine;
      auto a = c.client(0);
      auto old_holder_writes = [&] { return m.n4_count("node_old_holder_writes"); };
      // Every live server reports the new epoch (status reports every 500 ms).
      REQUIRE(
          eventually([&] { return info_field(c.ring_info(n4), "node_routes_current") == "yes"; }));
      CHECK(info_field(c.ring_info(n4), "migration_state") == "moving");
      REQUIRE(mine.size() >= 200);
      const uint64_t start = old_holder_writes();
      // n4 executes these (it is their first holder): with N = 1 their old holder is outside the
      // new replica set, and nothing routes to it any more, so it gets no copy.
      for (size_t i = 0; i < 100; ++i)
        CHECK(reply_text(command(a.get(), {"SET", mine[i].first, "new" + mine[i].first})) == "OK");
      CHECK(old_holder_writes() == start);
      // Read back through every node: the new values, also for keys whose old copy is still
      // on its way from the old holder.
      for (int node = 0; node < 3; ++node) {
        auto cl = c.client(node);
        for (size_t i = 0; i < 100; ++i)
          CHECK(reply_text(command(cl.get(), {"GET", mine[i].first})) == "new" + mine[i].first);
      }
      // Keys not written meanwhile still read through from their old holder.
      for (size_t i = 100; i < 200; ++i)
        CHECK(reply_text(command(a.get(), {"GET", mine[i].first})) == mine[i].second);
    }
  }
}

TEST_CASE("a node stopped while receiving reads its missing keys through as it resumes") {
  SlowMove m(false, 2000, "sr:", 14);
  Cluster& c = m.c;
  const int n4 = m.n4;
  ContinueOnExit resume;
  REQUIRE(m.mine.size() >= 100);
  REQUIRE(eventually([&] {
    std::string p = info_field(c.ring_info(n4), "node_pending_ranges");
    return !p.empty() && p != "0";
  }));
  // n4 stops for longer than the down-after time (3 s): as it resumes, its last heartbeats are
  // that old and every peer looks down to it, though all are up. GETs sent meanwhile run first.
  std::vector<std::vector<std::string>> gets;
  for (size_t i = 0; i < 100; ++i) gets.push_back({"GET", m.mine[i].first});
  REQUIRE(::kill(c.node(n4).pid(), SIGSTOP) == 0);
  resume.pids.push_back(c.node(n4).pid());
  auto early = connect(c.port(n4), 30000);
  REQUIRE(early);
  send_pipeline(early.get(), gets);
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  REQUIRE(::kill(c.node(n4).pid(), SIGCONT) == 0);
  auto replies = read_replies(early.get(), gets.size());
  REQUIRE(replies.size() == gets.size());
  size_t wrong = 0;
  std::string first;
  for (size_t i = 0; i < gets.size(); ++i) {
    if (reply_text(replies[i]) == m.mine[i].second) continue;
    if (wrong++ == 0) first = m.mine[i].first + " = " + reply_text(replies[i]);
  }
  INFO(wrong << " of " << gets.size() << " wrong; first: " << first);
  CHECK(wrong == 0);
}

TEST_CASE("a key still arriving whose previous holders are all down is refused, not nil") {
  SlowMove m(false, 2000, "nh:", 15);
  Cluster& c = m.c;
  const int n4 = m.n4;
  ContinueOnExit resume;
  REQUIRE(eventually([&] {
    std::string p = info_field(c.ring_info(n4), "node_pending_ranges");
    return !p.empty() && p != "0";
  }));
  // With N = 1 each key n4 gains had one holder before: n2's go nowhere while n2 is stopped.
  auto before = ring_of({"n1", "n2", "n3"});
  std::vector<std::pair<std::string, std::string>> from_n2;
  for (const auto& kv : m.mine)
    if (before->owner(token_of(kv.first)) == "n2") from_n2.push_back(kv);
  REQUIRE(from_n2.size() >= 20);
  REQUIRE(::kill(c.node(1).pid(), SIGSTOP) == 0);
  resume.pids.push_back(c.node(1).pid());
  REQUIRE(wait_servers_up(c, {n4}, 3, std::chrono::milliseconds(20000)));
  auto b = c.client(n4);
  size_t refused = 0, right = 0;
  for (size_t i = 0; i < 20; ++i) {
    std::string got = reply_text(command(b.get(), {"GET", from_n2[i].first}));
    INFO("GET " << from_n2[i].first << " through n4 while n2 is stopped");
    if (got == from_n2[i].second) {
      ++right;  // it had arrived already
    } else {
      CHECK(got ==
            "TRYAGAIN ringkv: the key's range is still moving to this node and none of its "
            "previous holders answered");
      ++refused;
    }
  }
  CHECK(refused > 0);
  // n2 is back (and, once caught up, a source again): the same reads return the values.
  REQUIRE(::kill(c.node(1).pid(), SIGCONT) == 0);
  REQUIRE(eventually([&] { return info(c, 1, "node_state") == "ready"; }));
  for (size_t i = 0; i < 20; ++i) {
    std::string got;
    CHECK(eventually(
        [&] {
          got = reply_text(command(b.get(), {"GET", from_n2[i].first}));
          return got == from_n2[i].second;
        },
        std::chrono::milliseconds(10000)));
    INFO("GET " << from_n2[i].first << " through n4 once n2 is back: " << got);
    CHECK(got == from_n2[i].second);
  }
}

TEST_CASE("CONFIG SET migration-rate changes the pace of a move under way") {
  // At 1 key/s n4 would need minutes for the ~500 keys it gains.
  SlowMove m(false, 2000, "mr:", 13);
  Cluster& c = m.c;
  const int n4 = m.n4;
  REQUIRE(m.mine.size() >= 200);
  REQUIRE(eventually([&] {
    std::string p = info_field(c.ring_info(n4), "node_pending_ranges");
    return !p.empty() && p != "0";
  }));
  REQUIRE(info_field(c.ring_info(n4), "migration_state") == "moving");
  auto b = c.client(n4);
  // A plan made meanwhile is refused at once, naming the move under way.
  const std::string epoch = info_field(c.ring_info(n4), "ring_epoch");
  CHECK(reply_text(command(b.get(), {"RING", "PLAN", "REMOVESERVER", "n1"})) ==
        "ERR a ring change is still moving data (addserver n4, epoch " + epoch +
            "); retry when RING INFO shows migration_state:idle");
  REQUIRE(reply_text(command(b.get(), {"CONFIG", "SET", "migration-rate", "0"})) == "OK");
  Reply r = command(b.get(), {"CONFIG", "GET", "migration-rate"});
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  REQUIRE(r->elements == 2);
  CHECK(std::string(r->element[1]->str, r->element[1]->len) == "0");
  REQUIRE(c.wait_idle(std::chrono::milliseconds(30000)));
  CHECK(info_field(c.ring_info(n4), "node_pending_ranges") == "0");
  // Every key n4 gained is on n4 now: reading them takes no read-through.
  uint64_t before = m.n4_count("node_read_throughs");
  auto values = pipeline_get(b.get(), [&] {
    std::vector<std::string> keys;
    for (const auto& [k, v] : m.mine) keys.push_back(k);
    return keys;
  }());
  size_t wrong = 0;
  for (size_t i = 0; i < m.mine.size(); ++i)
    if (!values[i] || *values[i] != m.mine[i].second) ++wrong;
  CHECK(wrong == 0);
  CHECK(m.n4_count("node_read_throughs") == before);

  // A second move right behind the first: RING INFO counts its own keys only, not the ones n4
  // received in the first (n1..n3 take n4's keys back at 1 key/s each).
  REQUIRE(reply_text(command(b.get(), {"RING", "REMOVESERVER", "n4"})) == "OK");
  for (int node : {n4, 0}) {
    REQUIRE(eventually(
        [&] { return info_field(c.ring_info(node), "migration_kind") == "removeserver"; }));
    std::string ri = c.ring_info(node);
    INFO("through " << c.id(node) << ":\n" << ri);
    const uint64_t moved = std::stoull("0" + info_field(ri, "migration_keys_moved"));
    const uint64_t to_move = std::stoull("0" + info_field(ri, "migration_keys_to_move"));
    CHECK(moved < m.mine.size() / 4);
    CHECK(moved <= to_move);
  }
  for (int node : {0, 1, 2})
    REQUIRE(reply_text(command(c.client(node).get(), {"CONFIG", "SET", "migration-rate", "0"})) ==
            "OK");
  REQUIRE(c.wait_idle(std::chrono::milliseconds(30000)));
}
