// Multi-process cluster tests beyond the happy path: a node killed with SIGKILL under a continuous
// checker (bounded detection window, recovery after a restart on the same address, hinted writes
// replayed, equal digests per token range), RING REMOVESERVER of a dead node, a node paused long
// enough to be marked down (it serves the writes made around it at once), a move that survives the
// restart of either side, and the any-node
// semantics of multi-key commands, transactions and keyspace commands. Every test runs with the
// embedded configuration service and with etcd.
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_harness.h"
#include "ringkv/ring.h"
#include "ringkv/token.h"

using namespace ringkv;
using namespace ringkv::testing;
using SteadyClock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- helpers

// Reads every key through node i; returns how many differ from `expected` (first one in *first).
size_t count_wrong(Cluster& c, int i, const std::map<std::string, std::string>& expected,
                   std::string* first) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : expected) keys.push_back(k);
  auto cl = c.client(i);
  size_t wrong = 0;
  for (size_t off = 0; off < keys.size(); off += 2000) {
    std::vector<std::string> part(
        keys.begin() + static_cast<long>(off),
        keys.begin() + static_cast<long>(std::min(keys.size(), off + 2000)));
    auto vals = pipeline_get(cl.get(), part);
    for (size_t j = 0; j < part.size(); ++j) {
      if (!vals[j] || *vals[j] != expected.at(part[j])) {
        if (wrong++ == 0 && first)
          *first =
              part[j] + " = " + (vals[j] ? *vals[j] : "<nil>") + ", wanted " + expected.at(part[j]);
      }
    }
  }
  return wrong;
}

void check_all(Cluster& c, const std::vector<int>& via,
               const std::map<std::string, std::string>& expected) {
  for (int i : via) {
    std::string first;
    size_t wrong = count_wrong(c, i, expected, &first);
    INFO("through " << c.id(i) << ": " << wrong << " of " << expected.size()
                    << " keys wrong; first: " << first);
    CHECK(wrong == 0);
  }
}

// The primary of a key (RING OWNERS, asked through node 0).
std::string primary_of(Cluster& c, const std::string& key) {
  Reply r = command(c.client(0).get(), {"RING", "OWNERS", key});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  REQUIRE(r->elements >= 1);
  return std::string(r->element[0]->str, r->element[0]->len);
}

bool file_contains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().find(needle) != std::string::npos;
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/ringkv-failure-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

struct TempDir {
  std::string path = make_temp_dir();
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    int rc = std::system(cmd.c_str());
    (void)rc;
  }
};

// ---------------------------------------------------------------- the checker

// Writes (new keys and overwrites of base keys) through the given nodes in turn and reads each
// write back through the next one, until stopped (bounded in count too). Remembers every
// acknowledged value, and every failed command with the time it was sent. A key whose write
// failed may or may not hold the failed value (the primary may have applied it before the
// replication failed), so both are accepted for it until a later write is acknowledged.
class Checker {
 public:
  Checker(Cluster& c, std::map<std::string, std::string> base, size_t base_count,
          std::string base_prefix)
      : c_(c),
        acked_(std::move(base)),
        base_count_(base_count),
        base_prefix_(std::move(base_prefix)) {}
  ~Checker() { stop(); }

  void start(std::vector<int> via, uint64_t seed) {
    stop_ = false;
    thread_ = std::thread([this, via = std::move(via), seed] { run(via, seed); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  uint64_t ops() const { return ops_; }
  // A failed command: when it was sent and when its (error) reply or error arrived.
  struct Failure {
    SteadyClock::time_point at;
    SteadyClock::time_point done;
    std::string what;
  };
  std::vector<Failure> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  // Keys with a single certain value, and keys whose last write failed (values they may hold).
  std::map<std::string, std::string> certain() {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : acked_)
      if (!uncertain_.count(k)) out.emplace(k, v);
    return out;
  }
  std::map<std::string, std::set<std::string>> uncertain() {
    std::lock_guard<std::mutex> lock(mu_);
    auto out = uncertain_;
    for (auto& [k, vals] : out) {
      auto it = acked_.find(k);
      if (it != acked_.end()) vals.insert(it->second);
    }
    return out;
  }

 private:
  void fail(SteadyClock::time_point at, std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back({at, SteadyClock::now(), std::move(what)});
  }

  void run(const std::vector<int>& via, uint64_t seed) {
    std::vector<Context> clients;
    for (int i : via) clients.push_back(c_.client(i));
    std::mt19937_64 rng(seed);
    for (uint64_t n = 0; !stop_ && n < 5'000'000; ++n) {
      size_t a = n % clients.size(), b = (n + 1) % clients.size();
      if (!clients[a] || clients[a]->err) clients[a] = c_.client(via[a]);
      if (!clients[b] || clients[b]->err) clients[b] = c_.client(via[b]);
      std::string key = n % 3 == 0 ? base_prefix_ + std::to_string(rng() % base_count_)
                                   : "live:" + std::to_string(seed) + ":" + std::to_string(n);
      std::string val = "w" + std::to_string(seed) + ":" + std::to_string(n);
      auto t0 = SteadyClock::now();
      Reply w = command(clients[a].get(), {"SET", key, val});
      ++ops_;
      if (!w || w->type != REDIS_REPLY_STATUS) {
        fail(t0, "SET " + key + " via " + c_.id(via[a]) + ": " + reply_text(w));
        std::lock_guard<std::mutex> lock(mu_);
        uncertain_[key].insert(val);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        acked_[key] = val;
        uncertain_.erase(key);
      }
      auto t1 = SteadyClock::now();
      Reply g = command(clients[b].get(), {"GET", key});
      ++ops_;
      if (!g || g->type != REDIS_REPLY_STRING || std::string(g->str, g->len) != val)
        fail(t1, "GET " + key + " via " + c_.id(via[b]) + ": " + reply_text(g) + " (wanted " + val +
                     ")");
    }
  }

  Cluster& c_;
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::map<std::string, std::set<std::string>> uncertain_;
  std::vector<Failure> failures_;
  size_t base_count_;
  std::string base_prefix_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ops_{0};
  std::thread thread_;
};

// Checks the keys the checker is unsure about: each holds one of its possible values, or none
// (a failed write of a new key that never applied).
void check_uncertain(Cluster& c, const std::vector<int>& via,
                     const std::map<std::string, std::set<std::string>>& keys) {
  for (int i : via) {
    auto cl = c.client(i);
    size_t wrong = 0;
    std::string first;
    for (const auto& [k, vals] : keys) {
      Reply r = command(cl.get(), {"GET", k});
      bool ok = r && (r->type == REDIS_REPLY_NIL ||
                      (r->type == REDIS_REPLY_STRING && vals.count(std::string(r->str, r->len))));
      if (!ok && wrong++ == 0) first = k + " = " + reply_text(r);
    }
    INFO("through " << c.id(i) << ", first: " << first);
    CHECK(wrong == 0);
  }
}

// Polls the digest check until replicas agree (replication to the last replica is asynchronous
// once W copies acknowledged), then returns it.
DigestCheck settled_digests(Cluster& c, const std::vector<int>& members, size_t n) {
  DigestCheck d;
  eventually([&] {
    d = digest_check(c, members, n);
    return d.ok();
  });
  return d;
}

uint64_t dbsize(Cluster& c, int i) {
  Reply r = command(c.client(i).get(), {"DBSIZE"});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_INTEGER);
  return static_cast<uint64_t>(r->integer);
}

}  // namespace

// ---------------------------------------------------------------- SIGKILL under load

TEST_CASE(
    "a node killed with SIGKILL: bounded detection window - no lost write - recovery after a "
    "restart") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      TempDir logs;
      // Per-node log files at notice level: the survivors log each replay of hinted writes.
      Cluster c(3, etcd, {"--loglevel", "notice", "--logfile", logs.path + "/{id}.log"});
      const int dead = 2;  // n3; n1 hosts the embedded configuration service
      auto kv = make_keys(20000, "base:");
      load(c, kv, {0, 1, 2});
      Checker checker(c, std::map<std::string, std::string>(kv.begin(), kv.end()), kv.size(),
                      "base:");
      checker.start({0, 1}, 1);
      REQUIRE(eventually([&] { return checker.ops() >= 400; }));
      REQUIRE(checker.failures().empty());

      // Kill n3 and wait until both survivors have marked it down.
      auto t_kill = SteadyClock::now();
      c.node(dead).kill_hard();
      REQUIRE(wait_servers_up(c, {0, 1}, 2, std::chrono::milliseconds(20000)));
      auto t_detected = SteadyClock::now();
      uint64_t ops_at_detection = checker.ops();
      REQUIRE(eventually([&] { return checker.ops() >= ops_at_detection + 600; }));
      checker.stop();

      auto failures = checker.failures();
      double detection_s = std::chrono::duration<double>(t_detected - t_kill).count();
      double window_s = 0;
      size_t after_detection = 0, before_kill = 0;
      for (const auto& f : failures) {
        // A command in flight at the kill may fail because of it; one that failed before it not.
        if (f.done < t_kill) ++before_kill;
        if (f.at > t_detected) ++after_detection;
        window_s = std::max(window_s, std::chrono::duration<double>(f.at - t_kill).count());
      }
      WARN(backend_name(etcd) << ": n3 marked down by both survivors " << detection_s
                              << " s after SIGKILL; " << failures.size()
                              << " failed commands, the last sent " << window_s
                              << " s after the kill; " << checker.ops()
                              << " checker commands in all; first failure: "
                              << (failures.empty() ? std::string("none") : failures.front().what));
      CHECK(before_kill == 0);
      CHECK(after_detection == 0);
      CHECK(detection_s < 1.0);  // refused connections mark it down at once, no 3 s of silence

      // Every acknowledged write is readable through both survivors, whose copies agree.
      check_all(c, {0, 1}, checker.certain());
      check_uncertain(c, {0, 1}, checker.uncertain());
      DigestCheck d = settled_digests(c, {0, 1, 2}, 3);
      INFO(d.first_problem);
      CHECK(d.ok());
      CHECK(d.keys == dbsize(c, 0));

      // Restart n3 at its address while the checker keeps writing: it takes its ranges back from
      // the other replicas, the survivors replay the writes it missed, and no command fails.
      size_t failures_before_restart = checker.failures().size();
      checker.start({0, 1}, 2);
      c.restart(dead);
      REQUIRE(eventually(
          [&] {
            return info(c, dead, "node_pending_ranges") == "0" &&
                   info(c, dead, "node_receiving") == "no";
          },
          std::chrono::milliseconds(60000)));
      REQUIRE(wait_servers_up(c, {0, 1, 2}, 3, std::chrono::milliseconds(20000)));
      bool replayed = eventually([&] {
        return file_contains(logs.path + "/n1.log", "hinted writes to n3") ||
               file_contains(logs.path + "/n2.log", "hinted writes to n3");
      });
      CHECK(replayed);
      uint64_t ops_at_recovery = checker.ops();
      REQUIRE(eventually([&] { return checker.ops() >= ops_at_recovery + 600; }));
      checker.stop();
      auto all_failures = checker.failures();
      INFO("first failure during the restart: " << (all_failures.size() > failures_before_restart
                                                        ? all_failures[failures_before_restart].what
                                                        : "none"));
      CHECK(all_failures.size() == failures_before_restart);

      // Afterwards: every key readable through every node, and every token range's copies equal.
      check_all(c, {0, 1, 2}, checker.certain());
      check_uncertain(c, {0, 1, 2}, checker.uncertain());
      d = settled_digests(c, {0, 1, 2}, 3);
      INFO(d.first_problem);
      CHECK(d.ok());
      CHECK(d.keys == dbsize(c, 0));
      CHECK(d.keys >= checker.certain().size());
    }
  }
}

// ---------------------------------------------------------------- removing a dead server

TEST_CASE("RING REMOVESERVER of a dead node re-replicates its ranges from the surviving copies") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      Cluster c(4, etcd);
      auto kv = make_keys(30000, "r:");
      load(c, kv, {0, 1, 2, 3});
      c.node(3).kill_hard();
      REQUIRE(wait_servers_up(c, {0, 1, 2}, 3, std::chrono::milliseconds(20000)));
      // Writes n4 never saw: their only copies are on the survivors.
      auto extra = make_keys(2000, "after-kill:");
      load(c, extra, {0, 1, 2});
      kv.insert(kv.end(), extra.begin(), extra.end());
      std::vector<std::string> keys;
      for (const auto& [k, v] : kv) keys.push_back(k);

      Reply r = command(c.client(1).get(), {"RING", "REMOVESERVER", "n4"});
      REQUIRE(reply_text(r) == "OK");
      REQUIRE(c.wait_idle());
      CHECK(info(c, 0, "ring_servers") == "3");
      for (int i : {0, 1, 2}) {
        INFO("gainer " << c.id(i));
        CHECK(info_u64(c, i, "node_keys_received") ==
              predicted_gain(keys, {"n1", "n2", "n3", "n4"}, {"n1", "n2", "n3"}, c.id(i), 3));
      }
      check_all(c, {0, 1, 2}, std::map<std::string, std::string>(kv.begin(), kv.end()));
      DigestCheck d = settled_digests(c, {0, 1, 2}, 3);
      INFO(d.first_problem);
      CHECK(d.ok());
      CHECK(d.keys == kv.size());
      // Every key is held by exactly N = 3 servers: here, all three.
      for (int i : {0, 1, 2}) {
        Reply all = command(c.client(i).get(), {"RINGKV.DIGEST", "0", "18446744073709551615"});
        REQUIRE(all->type == REDIS_REPLY_ARRAY);
        CHECK(all->element[0]->integer == static_cast<long long>(kv.size()));
      }
    }
  }
}

// ---------------------------------------------------------------- a pause

TEST_CASE("a node that was marked down while paused serves the writes made around it") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      // No repair round runs on its own: what the paused node serves comes from the copies it
      // brings before each command, or from hints.
      Cluster c(3, etcd, {"--anti-entropy-interval", "0"});
      ContinueOnExit resume;
      auto a = c.client(0);
      // Keys whose holders are n3, n2, n1 in this order, at "old" on n3.
      std::vector<std::string> keys;
      for (int i = 0; keys.size() < 20; ++i) {
        std::string key = "pause:" + std::to_string(i);
        if (owners_of(c, key) != std::vector<std::string>{"n3", "n2", "n1"}) continue;
        REQUIRE(text(a.get(), {"SET", key, "old"}) == "OK");
        keys.push_back(key);
      }
      // n3 pauses long enough to be marked down; writes meanwhile go to n2 (standing in) and
      // n1, and n2 keeps hints for n3.
      REQUIRE(::kill(c.node(2).pid(), SIGSTOP) == 0);
      resume.pids.push_back(c.node(2).pid());
      REQUIRE(wait_servers_up(c, {0, 1}, 2, std::chrono::milliseconds(20000)));
      for (const auto& key : keys) REQUIRE(text(a.get(), {"SET", key, "new"}) == "OK");
      // n2 pauses too, so its hints for n3 wait, and n3 resumes: n3 lacks the new values.
      REQUIRE(::kill(c.node(1).pid(), SIGSTOP) == 0);
      resume.pids.push_back(c.node(1).pid());
      // GETs already waiting when n3 resumes run before any ping tells n3 it was marked down
      // (its view is as old as the pause): n3 is out of touch, and must bring the new values.
      std::vector<std::vector<std::string>> gets;
      for (const auto& key : keys) gets.push_back({"GET", key});
      auto early = connect(c.port(2), 30000);
      REQUIRE(early);
      send_pipeline(early.get(), gets);
      REQUIRE(::kill(c.node(2).pid(), SIGCONT) == 0);
      // n1's next ping tells n3 it had been marked down: n3 catches up (its INFO says so for at
      // least one of n1's beats), with the peers it can reach (n1), and is a primary again while
      // n2's hints still wait. Reads through n3 must still return the new values: it brings the
      // newest live copy of a key before each command.
      REQUIRE(eventually([&] { return info(c, 2, "node_state") == "catching_up"; },
                         std::chrono::milliseconds(10000)));
      REQUIRE(eventually([&] { return info(c, 2, "node_state") == "ready"; },
                         std::chrono::milliseconds(20000)));
      auto early_replies = read_replies(early.get(), keys.size());
      REQUIRE(early_replies.size() == keys.size());
      for (size_t i = 0; i < keys.size(); ++i) {
        INFO("through n3, sent before it resumed, key " << keys[i]);
        CHECK(reply_text(early_replies[i]) == "new");
      }
      {
        auto cl = c.client(2);
        for (const auto& key : keys) {
          INFO("through n3 while n2 is stopped, key " << key);
          CHECK(text(cl.get(), {"GET", key}) == "new");
        }
      }
      // Reads through n1, sent before n2 resumes: whichever node n1 routes them to answers with
      // the new values.
      auto r = connect(c.port(0), 30000);
      REQUIRE(r);
      send_pipeline(r.get(), gets);
      REQUIRE(::kill(c.node(1).pid(), SIGCONT) == 0);
      auto replies = read_replies(r.get(), keys.size());
      REQUIRE(replies.size() == keys.size());
      for (size_t i = 0; i < keys.size(); ++i) {
        INFO("through n1, key " << keys[i]);
        CHECK(reply_text(replies[i]) == "new");
      }
      // Every node ends up ready, seeing all three, with every new value.
      REQUIRE(wait_servers_up(c, {0, 1, 2}, 3, std::chrono::milliseconds(20000)));
      for (int node : {0, 1, 2}) {
        REQUIRE(eventually([&] { return info(c, node, "node_state") == "ready"; },
                           std::chrono::milliseconds(20000)));
        auto cl = c.client(node);
        for (const auto& key : keys) {
          INFO("through " << c.id(node) << ", key " << key);
          CHECK(text(cl.get(), {"GET", key}) == "new");
        }
      }
    }
  }
}

// ---------------------------------------------------------------- a lost embedded configuration

TEST_CASE("an embedded configuration service restarted without its state: every node says so") {
  TempDir logs;
  Cluster c(3, false, {"--logfile", logs.path + "/{id}.log"});
  const std::string epoch = info(c, 1, "ring_epoch");
  // n1 hosts the ring configuration in memory (no ring-state-file): a restart loses it, and n1
  // starts a ring of its own at epoch 1.
  c.node(0).kill_hard();
  c.restart(0);
  // The others keep their epoch and say the service went back; n1 says its peers are ahead.
  for (const char* id : {"n2", "n3"}) {
    INFO(id);
    CHECK(eventually([&] {
      return file_contains(
          logs.path + "/" + id + ".log",
          "is at epoch 1, behind epoch " + epoch + " applied here: it lost the ring configuration");
    }));
  }
  CHECK(eventually([&] {
    return file_contains(logs.path + "/n1.log", "reports ring epoch " + epoch +
                                                    ", but the ring configuration hosted here "
                                                    "is at epoch 1: it was lost");
  }));
  CHECK(info(c, 1, "ring_epoch") == epoch);
  CHECK(info(c, 1, "ring_servers") == "3");
}

// ---------------------------------------------------------------- a restart during a move

namespace {
void set_migration_rate(Cluster& c, int i, const std::string& rate) {
  REQUIRE(reply_text(command(c.client(i).get(), {"CONFIG", "SET", "migration-rate", rate})) ==
          "OK");
}
}  // namespace

TEST_CASE("a move survives a SIGKILL and restart of either side: it resumes and completes") {
  for (bool etcd : {false, true}) {
    // The gaining node (n4), or a source (n3: with N = 3 every key is on all three old nodes).
    for (int victim : {3, 2}) {
      DYNAMIC_SECTION(backend_name(etcd)
                      << " configuration service, "
                      << (victim == 3 ? "gaining node" : "source node") << " killed") {
        // A slow pace (n4 gains about 9,000 keys: over 4 s) keeps the move under way at the kill.
        Cluster c(3, etcd, {"--migration-rate", "2000"});
        auto kv = make_keys(12000, "base:");
        load(c, kv, {0, 1, 2});
        int n4 = c.start_node();
        Checker checker(c, std::map<std::string, std::string>(kv.begin(), kv.end()), kv.size(),
                        "base:");
        checker.start({0, 1}, 3);
        Reply r = command(c.client(0).get(),
                          {"RING", "ADDSERVER", "n4", "127.0.0.1:" + std::to_string(c.port(n4))});
        REQUIRE(reply_text(r) == "OK");
        // Mid-move: n4 has received some keys and is still receiving.
        REQUIRE(eventually([&] { return info_u64(c, n4, "node_keys_received") > 0; }));
        std::string n4_info = c.ring_info(n4);
        INFO("RING INFO of n4 before the kill:\n" << n4_info);
        REQUIRE(info_field(n4_info, "migration_state") == "moving");
        REQUIRE(info_field(n4_info, "node_receiving") == "yes");

        auto t_kill = SteadyClock::now();
        c.node(victim).kill_hard();
        std::vector<int> survivors;
        for (int i = 0; i < 4; ++i)
          if (i != victim) survivors.push_back(i);
        REQUIRE(wait_servers_up(c, survivors, 3, std::chrono::milliseconds(20000)));
        auto t_detected = SteadyClock::now();
        // The move cannot finish without the victim: n4 must confirm its ranges, and n3 is a
        // holder in the new ring.
        CHECK(info_field(c.ring_info(0), "migration_state") == "moving");

        // From here on the copies run unpaced (CONFIG SET reaches the pulls under way), to keep
        // the test short: the restarted node copies every range it holds in again.
        for (int i : survivors) set_migration_rate(c, i, "0");
        c.restart(victim);
        set_migration_rate(c, victim, "0");
        REQUIRE(c.wait_idle(std::chrono::milliseconds(60000)));
        REQUIRE(eventually(
            [&] {
              return info(c, victim, "node_pending_ranges") == "0" &&
                     info(c, victim, "node_receiving") == "no";
            },
            std::chrono::milliseconds(60000)));
        REQUIRE(wait_servers_up(c, {0, 1, 2, 3}, 4, std::chrono::milliseconds(20000)));
        uint64_t ops_at_end = checker.ops();
        REQUIRE(eventually([&] { return checker.ops() >= ops_at_end + 300; }));
        checker.stop();

        // Commands fail only in the window between the kill and its detection.
        size_t before_kill = 0, after_detection = 0;
        std::string first;
        for (const auto& f : checker.failures()) {
          if (f.done < t_kill) ++before_kill;
          if (f.at > t_detected && after_detection++ == 0) first = f.what;
        }
        INFO("first failure after the kill was detected: " << first);
        CHECK(before_kill == 0);
        CHECK(after_detection == 0);
        CHECK(checker.ops() > 1000);

        // Every acknowledged write is readable through every node, and every key is held by
        // exactly its N = 3 servers of the 4-node ring, with equal copies.
        check_all(c, {0, 1, 2, 3}, checker.certain());
        check_uncertain(c, {0, 1, 2, 3}, checker.uncertain());
        DigestCheck d = settled_digests(c, {0, 1, 2, 3}, 3);
        INFO(d.first_problem);
        CHECK(d.ok());
        CHECK(d.keys >= checker.certain().size());
      }
    }
  }
}

// ---------------------------------------------------------------- any-node semantics

namespace {

// Keys grouped by primary (RING OWNERS): prefix + i for i < n.
std::map<std::string, std::vector<std::string>> keys_by_primary(Cluster& c,
                                                                const std::string& prefix, int n) {
  std::map<std::string, std::vector<std::string>> out;
  for (int i = 0; i < n; ++i) {
    std::string k = prefix + std::to_string(i);
    out[primary_of(c, k)].push_back(k);
  }
  return out;
}

std::vector<std::string> array_strings(const Reply& r) {
  std::vector<std::string> out;
  if (!r || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ||
        e->type == REDIS_REPLY_ERROR)
      out.emplace_back(e->str, e->len);
    else if (e->type == REDIS_REPLY_INTEGER)
      out.push_back(std::to_string(e->integer));
    else if (e->type == REDIS_REPLY_NIL)
      out.push_back("<nil>");
    else
      out.push_back("<array>");
  }
  return out;
}

// A full SCAN (COUNT 50, then `extra` arguments) through one client; `between` runs before call
// number `call_hook` (which the scan must reach). *calls_out: the number of calls.
std::multiset<std::string> full_scan(redisContext* cl, int call_hook,
                                     const std::function<void()>& between,
                                     std::vector<std::string> extra = {},
                                     int* calls_out = nullptr) {
  std::multiset<std::string> seen;
  std::string cursor = "0";
  for (int calls = 0; calls < 200000; ++calls) {
    if (calls == call_hook) between();
    std::vector<std::string> args = {"SCAN", cursor, "COUNT", "50"};
    args.insert(args.end(), extra.begin(), extra.end());
    Reply r = command(cl, args);
    REQUIRE(r);
    INFO(reply_text(r));
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    REQUIRE(r->elements == 2);
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; ++i)
      seen.emplace(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
    if (cursor == "0") {
      INFO("the scan ended after " << calls + 1 << " calls");
      REQUIRE(calls >= call_hook);
      if (calls_out) *calls_out = calls + 1;
      return seen;
    }
  }
  FAIL("SCAN did not finish");
  return seen;
}

}  // namespace

TEST_CASE(
    "any node: multi-key commands - transactions - keyspace commands act on the whole cluster") {
  for (bool etcd : {false, true}) {
    for (int replicas : {1, 3}) {
      DYNAMIC_SECTION(backend_name(etcd) << " configuration service, N = " << replicas) {
        Cluster c(3, etcd, {"--replicas", std::to_string(replicas)});
        for (int i = 0; i < 3; ++i) {
          INFO("RING INFO of " << c.id(i));
          CHECK(info(c, i, "ring_replicas") == std::to_string(replicas));
          // INFO's cluster section describes the ring too (cluster_enabled stays 0: not Redis
          // Cluster's protocol).
          const std::string section = text(c.client(i).get(), {"INFO", "cluster"});
          CHECK(section.find("cluster_enabled:0\r\nring_epoch:") != std::string::npos);
          CHECK(section.find("\r\nring_node_id:" + c.id(i) + "\r\n") != std::string::npos);
          CHECK(section.find("\r\nring_servers:3\r\n") != std::string::npos);
        }
        std::vector<Context> via;
        for (int i = 0; i < 3; ++i) via.push_back(c.client(i));
        auto groups = keys_by_primary(c, "key:", 60);
        REQUIRE(groups.size() == 3);  // 60 keys land on all three primaries
        std::vector<std::string> keys;
        for (int i = 0; i < 60; ++i) keys.push_back("key:" + std::to_string(i));

        // MSET across nodes through each node, then MGET (values in key order, nil for a
        // missing key) through every node.
        for (int i = 0; i < 3; ++i) {
          std::vector<std::string> mset = {"MSET"};
          for (const auto& k : keys) {
            mset.push_back(k);
            mset.push_back(k + "=" + std::to_string(i));
          }
          REQUIRE(text(via[static_cast<size_t>(i)].get(), mset) == "OK");
          std::vector<std::string> mget = {"MGET"};
          std::vector<std::string> want;
          for (const auto& k : keys) {
            mget.push_back(k);
            want.push_back(k + "=" + std::to_string(i));
            mget.push_back("missing:" + k);
            want.push_back("<nil>");
          }
          for (int j = 0; j < 3; ++j)
            CHECK(array_strings(command(via[static_cast<size_t>(j)].get(), mget)) == want);
        }
        // EXISTS and TOUCH sum over nodes (a repeated key counts twice, as in Redis); DEL too.
        std::vector<std::string> exists = {"EXISTS"}, touch = {"TOUCH"};
        for (const auto& k : keys) {
          exists.push_back(k);
          exists.push_back("missing:" + k);
          touch.push_back(k);
        }
        exists.push_back(keys[0]);
        for (int j = 0; j < 3; ++j) {
          CHECK(command(via[static_cast<size_t>(j)].get(), exists)->integer == 61);
          CHECK(command(via[static_cast<size_t>(j)].get(), touch)->integer == 60);
        }
        std::vector<std::string> del = {"DEL"};
        for (int i = 0; i < 30; ++i) del.push_back(keys[static_cast<size_t>(i)]);
        del.push_back(keys[0]);
        del.push_back("missing:x");
        CHECK(command(via[1].get(), del)->integer == 30);
        for (int j = 0; j < 3; ++j) {
          CHECK(command(via[static_cast<size_t>(j)].get(), exists)->integer == 30);  // keys 30..59
          CHECK(dbsize(c, j) == 30);
        }

        // MSETNX: refused across primaries (nothing written), all-or-nothing on one primary.
        std::vector<std::string> owners;
        for (const auto& [id, ks] : groups) owners.push_back(id);  // sorted: n1, n2, n3
        const std::string a1 = groups[owners[0]][0], b1 = groups[owners[1]][0];
        REQUIRE(command(via[0].get(), {"DEL", a1, b1})->type == REDIS_REPLY_INTEGER);
        CHECK(
            text(via[2].get(), {"MSETNX", a1, "x", b1, "y"}) ==
            "CROSSSLOT MSETNX: its keys live on different nodes of the ring (" + owners[0] + ", " +
                owners[1] +
                "), so it could not be all-or-nothing; MSETNX is refused when its keys span nodes");
        CHECK(command(via[0].get(), {"EXISTS", a1, b1})->integer == 0);
        // A key without its value (keys on two nodes): Redis's arity error, through every node,
        // which all keep answering (the split once read past the arguments and crashed).
        for (int j = 0; j < 3; ++j) {
          redisContext* cl = via[static_cast<size_t>(j)].get();
          CHECK(text(cl, {"MSET", a1, "x", b1}) ==
                "ERR wrong number of arguments for 'mset' command");
          CHECK(text(cl, {"MSET", b1, "x", a1, "y", groups[owners[2]][0]}) ==
                "ERR wrong number of arguments for 'mset' command");
          CHECK(text(cl, {"MSETNX", a1, "x", b1, "y", a1}) ==
                "ERR wrong number of arguments for 'msetnx' command");
        }
        for (int j = 0; j < 3; ++j)
          CHECK(text(via[static_cast<size_t>(j)].get(), {"PING"}) == "PONG");
        CHECK(command(via[0].get(), {"EXISTS", a1, b1})->integer == 0);
        const auto& same = groups[owners[2]];  // keys of n3, sent through n1
        REQUIRE(same.size() >= 4);
        std::vector<std::string> fresh = {same[0], same[1], same[2]};
        REQUIRE(command(via[0].get(), {"DEL", fresh[0], fresh[1], fresh[2]})->type ==
                REDIS_REPLY_INTEGER);
        CHECK(command(via[0].get(), {"MSETNX", fresh[0], "1", fresh[1], "2"})->integer == 1);
        CHECK(command(via[0].get(), {"MSETNX", fresh[2], "3", fresh[1], "x"})->integer == 0);
        CHECK(array_strings(command(via[1].get(), {"MGET", fresh[0], fresh[1], fresh[2]})) ==
              std::vector<std::string>{"1", "2", "<nil>"});

        // MULTI/EXEC on one primary through any node runs atomically: INCR a; INCR b from two
        // clients on two other nodes while a third reads both in a transaction.
        const std::string p_id = owners[2];
        const int p = index_of(c, p_id);
        const std::string ka = same[0], kb = same[3];
        REQUIRE(text(via[0].get(), {"MSET", ka, "0", kb, "0"}) == "OK");
        std::atomic<int> torn{0}, exec_errors{0};
        auto incr_both = [&](int node) {
          auto cl = c.client(node);
          for (int i = 0; i < 150; ++i) {
            command(cl.get(), {"MULTI"});
            command(cl.get(), {"INCR", ka});
            command(cl.get(), {"INCR", kb});
            Reply r = command(cl.get(), {"EXEC"});
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                r->element[0]->integer != r->element[1]->integer)
              ++exec_errors;
          }
        };
        std::atomic<bool> writers_done{false};
        std::thread reader([&] {
          auto cl = c.client((p + 1) % 3);
          for (int i = 0; i < 100000 && !writers_done; ++i) {
            command(cl.get(), {"MULTI"});
            command(cl.get(), {"GET", ka});
            command(cl.get(), {"GET", kb});
            Reply r = command(cl.get(), {"EXEC"});
            auto v = array_strings(r);
            if (v.size() != 2 || v[0] != v[1]) ++torn;
          }
        });
        std::thread w1(incr_both, (p + 1) % 3), w2(incr_both, (p + 2) % 3);
        w1.join();
        w2.join();
        writers_done = true;
        reader.join();
        CHECK(exec_errors == 0);
        CHECK(torn == 0);
        CHECK(array_strings(command(via[static_cast<size_t>(p)].get(), {"MGET", ka, kb})) ==
              std::vector<std::string>{"300", "300"});

        // WATCH through a node that is not the key's primary, and through the primary: a write
        // through another node in between makes EXEC return nil; without one EXEC runs.
        for (int watcher : {(p + 1) % 3, p}) {
          auto w = c.client(watcher);
          int other = (watcher + 1) % 3;
          // MULTI, SET ka mine, EXEC: whether EXEC returned nil (a watched key changed).
          auto exec_aborted = [&] {
            CHECK(text(w.get(), {"MULTI"}) == "OK");
            CHECK(text(w.get(), {"SET", ka, "mine"}) == "QUEUED");
            Reply r = command(w.get(), {"EXEC"});
            return r && r->type == REDIS_REPLY_NIL;
          };
          CHECK(text(w.get(), {"WATCH", ka}) == "OK");
          CHECK(text(via[static_cast<size_t>(other)].get(), {"SET", ka, "theirs"}) == "OK");
          CHECK(exec_aborted());
          CHECK(text(via[0].get(), {"GET", ka}) == "theirs");
          CHECK(text(w.get(), {"WATCH", ka}) == "OK");
          CHECK(text(w.get(), {"MULTI"}) == "OK");
          CHECK(text(w.get(), {"SET", ka, "mine"}) == "QUEUED");
          CHECK(array_strings(command(w.get(), {"EXEC"})) == std::vector<std::string>{"OK"});
          CHECK(text(via[2].get(), {"GET", ka}) == "mine");
          // A watched key that expires before EXEC counts as changed (Redis: EXEC returns nil).
          // Nothing reads it meanwhile: kb, with the same expiry, shows when the time is up.
          REQUIRE(text(w.get(), {"SET", ka, "short", "PX", "300"}) == "OK");
          REQUIRE(text(w.get(), {"SET", kb, "short", "PX", "300"}) == "OK");
          CHECK(text(w.get(), {"WATCH", ka}) == "OK");
          REQUIRE(eventually([&] { return command(via[2].get(), {"EXISTS", kb})->integer == 0; }));
          CHECK(exec_aborted());
          CHECK(text(via[0].get(), {"GET", ka}) == "<nil>");
          REQUIRE(text(w.get(), {"SET", kb, "0"}) == "OK");
        }

        // A transaction whose keys span primaries is refused at EXEC, and nothing of it runs.
        {
          auto w = c.client(0);
          CHECK(text(w.get(), {"MULTI"}) == "OK");
          CHECK(text(w.get(), {"SET", a1, "t1"}) == "QUEUED");
          CHECK(text(w.get(), {"SET", b1, "t2"}) == "QUEUED");
          CHECK(text(w.get(), {"EXEC"}) ==
                "CROSSSLOT EXEC: this transaction's keys live on different nodes of the ring (" +
                    owners[0] + ", " + owners[1] +
                    "); a transaction runs atomically on one node only");
          CHECK(command(w.get(), {"EXISTS", a1, b1})->integer == 0);
          CHECK(text(w.get(), {"GET", a1}) == "<nil>");  // the connection left MULTI
        }

        // Commands on the whole keyspace are refused inside MULTI (a transaction runs on one
        // node), and EXEC then discards the transaction, through a key's owner or not.
        REQUIRE(text(via[0].get(), {"SET", a1, "kept"}) == "OK");
        for (int j = 0; j < 3; ++j) {
          auto w = c.client(j);
          CHECK(text(w.get(), {"MULTI"}) == "OK");
          CHECK(text(w.get(), {"DEL", a1}) == "QUEUED");
          CHECK(text(w.get(), {"FLUSHALL"}) ==
                "ERR FLUSHALL inside MULTI is not supported by a ringkv cluster: it acts on every "
                "node, and a transaction runs on one node");
          CHECK(text(w.get(), {"DBSIZE"}).rfind("ERR DBSIZE inside MULTI", 0) == 0);
          CHECK(text(w.get(), {"EXEC"}) ==
                "EXECABORT Transaction discarded because of previous errors.");
        }
        for (int j = 0; j < 3; ++j) {
          CHECK(text(via[static_cast<size_t>(j)].get(), {"GET", a1}) == "kept");
          CHECK(dbsize(c, j) > 1);
        }

        // A pipeline through a node that is not the key's primary runs in order, commands that
        // reach every node and WATCH included (they once overtook, or were overtaken by, the
        // forwarded commands around them).
        {
          const int other = index_of(c, owners[1]);  // not a1's primary
          auto pc = c.client(other);
          auto r = pipeline(
              pc.get(),
              {{"SET", a1, "before"}, {"FLUSHALL"}, {"SET", a1, "after"}, {"GET", a1}, {"DBSIZE"}});
          REQUIRE(r.size() == 5);
          CHECK(reply_text(r[0]) == "OK");
          CHECK(reply_text(r[1]) == "OK");
          CHECK(reply_text(r[2]) == "OK");
          CHECK(reply_text(r[3]) == "after");
          CHECK(r[4]->integer == 1);
          for (int j = 0; j < 3; ++j) {
            CHECK(text(via[static_cast<size_t>(j)].get(), {"GET", a1}) == "after");
            CHECK(dbsize(c, j) == 1);
          }
          std::vector<std::vector<std::string>> cmds;
          for (int i = 0; i < 200; ++i) cmds.push_back({"SET", "pl:" + std::to_string(i), "v"});
          cmds.push_back({"DBSIZE"});
          cmds.push_back({"KEYS", "pl:*"});
          r = pipeline(pc.get(), cmds);
          REQUIRE(r.size() == 202);
          CHECK(r[200]->integer == 201);
          CHECK(r[201]->elements == 200);
          r = pipeline(
              pc.get(),
              {{"WATCH", a1}, {"SET", a1, "changed"}, {"MULTI"}, {"SET", a1, "mine"}, {"EXEC"}});
          REQUIRE(r.size() == 5);
          CHECK(reply_text(r[0]) == "OK");
          CHECK(r[4]->type == REDIS_REPLY_NIL);
          CHECK(text(via[0].get(), {"GET", a1}) == "changed");
        }

        // KEYS and DBSIZE count every key once, through any node; RANDOMKEY returns existing keys.
        CHECK(text(via[0].get(), {"FLUSHALL"}) == "OK");
        std::vector<std::string> mset = {"MSET"};
        std::set<std::string> all;
        for (int i = 0; i < 3000; ++i) {
          std::string k = "s:" + std::to_string(i);
          all.insert(k);
          mset.push_back(k);
          mset.push_back("v");
        }
        REQUIRE(text(via[1].get(), mset) == "OK");
        for (int j = 0; j < 3; ++j) {
          auto listed = array_strings(command(via[static_cast<size_t>(j)].get(), {"KEYS", "*"}));
          std::multiset<std::string> got(listed.begin(), listed.end());
          CHECK(got == std::multiset<std::string>(all.begin(), all.end()));
          CHECK(
              array_strings(command(via[static_cast<size_t>(j)].get(), {"KEYS", "s:1?"})).size() ==
              10);
          CHECK(dbsize(c, j) == all.size());
          for (int k = 0; k < 20; ++k) {
            std::string rk = text(via[static_cast<size_t>(j)].get(), {"RANDOMKEY"});
            INFO("RANDOMKEY through " << c.id(j) << " = " << rk);
            CHECK(all.count(rk) == 1);
          }
        }

        // SCAN through any node visits every key, also when a server joins mid-iteration. COUNT
        // bounds the keys each call looks at, as in Redis: with MATCH too.
        for (int j = 0; j < 3; ++j) {
          auto seen = full_scan(via[static_cast<size_t>(j)].get(), -1, [] {});
          std::set<std::string> distinct(seen.begin(), seen.end());
          CHECK(distinct == all);
          auto matched = full_scan(via[static_cast<size_t>(j)].get(), -1, [] {}, {"MATCH", "s:1?"});
          CHECK(std::set<std::string>(matched.begin(), matched.end()) ==
                std::set<std::string>{"s:10", "s:11", "s:12", "s:13", "s:14", "s:15", "s:16",
                                      "s:17", "s:18", "s:19"});
          Reply none = command(via[static_cast<size_t>(j)].get(),
                               {"SCAN", "0", "COUNT", "10", "MATCH", "nothing:*"});
          REQUIRE(none);
          REQUIRE(none->type == REDIS_REPLY_ARRAY);
          CHECK(std::string(none->element[0]->str) != "0");  // 3,000 keys are not looked at once
          CHECK(none->element[1]->elements == 0);
        }
        int n4 = c.start_node();
        auto seen = full_scan(via[2].get(), 5, [&] {
          CHECK(text(via[0].get(), {"RING", "ADDSERVER", c.id(n4),
                                    "127.0.0.1:" + std::to_string(c.port(n4))}) == "OK");
        });
        std::set<std::string> distinct(seen.begin(), seen.end());
        CHECK(distinct == all);
        REQUIRE(c.wait_idle());
        auto after = full_scan(c.client(n4).get(), -1, [] {});
        CHECK(std::set<std::string>(after.begin(), after.end()) == all);
        CHECK(dbsize(c, n4) == all.size());

        // FLUSHALL through one node empties every node (replicas included).
        CHECK(text(via[2].get(), {"FLUSHALL"}) == "OK");
        for (int j = 0; j < 4; ++j) {
          CHECK(dbsize(c, j) == 0);
          Reply raw = command(c.client(j).get(), {"RINGKV.DIGEST", "0", "18446744073709551615"});
          REQUIRE(raw->type == REDIS_REPLY_ARRAY);
          CHECK(raw->element[0]->integer == 0);
          CHECK(text(c.client(j).get(), {"RANDOMKEY"}) == "<nil>");
        }

        // RANDOMKEY through every node finds the one key of the cluster, wherever it lives, and
        // a SCAN of this nearly empty cluster takes a call or two, not one per range of the ring
        // (4,096 here).
        REQUIRE(text(via[0].get(), {"SET", "lonely", "1"}) == "OK");
        for (int j = 0; j < 4; ++j) {
          INFO("RANDOMKEY and SCAN through " << c.id(j));
          CHECK(text(c.client(j).get(), {"RANDOMKEY"}) == "lonely");
          int calls = 0;
          auto seen = full_scan(
              c.client(j).get(), -1, [] {}, {}, &calls);
          CHECK(seen == std::multiset<std::string>{"lonely"});
          CHECK(calls <= 2);
        }
      }
    }
  }
}
