// Multi-process cluster tests beyond the happy path: a node killed with SIGKILL under a continuous
// checker (bounded detection window, recovery after a restart on the same address, hinted writes
// replayed, equal digests per token range), RING REMOVESERVER of a dead node, a node paused long
// enough to be marked down (it serves the writes made around it at once), a lost embedded
// configuration, and a move that survives the restart of either side. Every test but the one on
// RINGKV.PING's catch-up round (a protocol between nodes) runs with the embedded configuration
// service and with etcd.
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_harness.h"
#include "raw_client.h"
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

// A server's health ("up" or "down") in node `via`'s RING NODES, or "missing".
std::string health_of(Cluster& c, int via, const std::string& id) {
  Reply r = command(c.client(via).get(), {"RING", "NODES"});
  REQUIRE(r);
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* m = r->element[i];
    std::map<std::string, std::string> f;
    for (size_t j = 0; j + 1 < m->elements; j += 2)
      if (m->element[j + 1]->type == REDIS_REPLY_STRING)
        f[m->element[j]->str] = std::string(m->element[j + 1]->str, m->element[j + 1]->len);
    if (f["id"] == id) return f["health"];
  }
  return "missing";
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

      // The plan counts n4's ranges on the surviving copies they will be streamed from.
      auto plan = plan_by_destination(
          parse_plan(command(c.client(1).get(), {"RING", "PLAN", "REMOVESERVER", "n4"})));
      Reply r = command(c.client(1).get(), {"RING", "REMOVESERVER", "n4"});
      REQUIRE(reply_text(r) == "OK");
      REQUIRE(c.wait_idle());
      CHECK(info(c, 0, "ring_servers") == "3");
      for (int i : {0, 1, 2}) {
        INFO("gainer " << c.id(i));
        const uint64_t gain =
            predicted_gain(keys, {"n1", "n2", "n3", "n4"}, {"n1", "n2", "n3"}, c.id(i), 3);
        CHECK(info_u64(c, i, "node_keys_received") == gain);
        CHECK(plan[c.id(i)].first == static_cast<long long>(gain));
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

// A RINGKV.PING that waited in a socket while its target was stopped is stale: its flag "caught
// up with you" was true when it was sent, before the sender marked the target down and wrote
// around it. The target must not count it once it has learnt (from a fresher ping, or from its own
// ping's reply) that it was marked down.
TEST_CASE("a ping sent before its target fell behind does not make the target ready") {
  // The protocol between two nodes: the embedded configuration service only.
  Cluster c(2, false);
  ContinueOnExit resume;
  auto raw = c.client(0);
  // Speaking as n2 to n1. The reply's fifth element is n1's catch-up round.
  auto ping = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"RINGKV.PING", "n2"});
    Reply r = command(raw.get(), args);
    REQUIRE(r);
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    REQUIRE(r->elements == 5);
    return r;
  };
  REQUIRE(eventually([&] { return info(c, 0, "node_state") == "ready"; }));
  const long long before = ping({"0"})->element[4]->integer;
  // The real n2 stops: it sends no ping, and n1 counts it live for down_after_ms (3 s) more.
  REQUIRE(::kill(c.node(1).pid(), SIGSTOP) == 0);
  resume.pids.push_back(c.node(1).pid());
  // n2 "had marked n1 down": n1 falls behind, and its round changes.
  Reply behind = ping({"2", std::to_string(before)});
  CHECK(behind->element[2]->integer == 0);
  const long long after = behind->element[4]->integer;
  CHECK(after != before);
  CHECK(info(c, 0, "node_state") == "catching_up");
  // An older ping of n2's, still saying "caught up", arrives now: it must not count. n1 stays
  // catching up for as long as it counts n2 live (each heartbeat round checks its peers' flags),
  // and is ready only once n2 is down for it (no live peer left to wait for).
  ping({"1", std::to_string(before)});
  const auto window_start = SteadyClock::now();
  int polls = 0;
  bool down = false;
  while (!down) {
    REQUIRE(polls++ < 2000);  // about 20 s at most
    // node_state first: "ready" then implies n2 was no longer live when n1 decided so.
    std::string state = info(c, 0, "node_state");
    down = health_of(c, 0, "n2") == "down";
    if (!down) {
      INFO("poll " << polls << ": n1 ready while n2, live for it, never said it caught up");
      REQUIRE(state == "catching_up");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The window spanned heartbeat rounds (one is 250 ms plus a 300 ms ping timeout to n2).
  CHECK(SteadyClock::now() - window_start > std::chrono::milliseconds(1000));
  // n2 resumes: it learns n1's round from a reply and catches up; both end up ready.
  REQUIRE(::kill(c.node(1).pid(), SIGCONT) == 0);
  REQUIRE(wait_servers_up(c, {0, 1}, 2, std::chrono::milliseconds(20000)));
  for (int node : {0, 1})
    REQUIRE(eventually([&] { return info(c, node, "node_state") == "ready"; },
                       std::chrono::milliseconds(20000)));
  // A ping with a round n1 never had is ignored too; one with the current round counts.
  CHECK(ping({"2", std::to_string(after - 1)})->element[2]->integer == 1);
  CHECK(info(c, 0, "node_state") == "ready");
  const long long now = ping({"0"})->element[4]->integer;
  CHECK(ping({"2", std::to_string(now)})->element[2]->integer == 0);
  REQUIRE(eventually([&] { return info(c, 0, "node_state") == "ready"; },
                     std::chrono::milliseconds(20000)));
}

// Routers switch a key's primary one by one: when a node turns ready, each peer learns it at
// its own next heartbeat. Meanwhile a router that has not switched reads from the replica that
// stood in, so a write the new primary executed must be on that replica before its OK, not only
// on W copies: the node waits for every live replica until each live peer has said (in its
// RINGKV.PING) that it routes to it as ready (node_handoff). The same holds for a write a node
// executes without being the key's primary in its own view (a router with another view sent
// it). Each section stops a replica (n2) and shows that the write's OK waits for it.
TEST_CASE("a write waits for every live replica while routers may disagree on its primary") {
  Cluster c(3, false);  // N = 3, W = 2
  ContinueOnExit resume;
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    REQUIRE(i < 1000);
    std::string k = "handoff:" + std::to_string(i);
    if (owners_of(c, k).front() == "n1") key = k;
  }
  REQUIRE(eventually([&] { return info(c, 0, "node_handoff") == "no"; }));
  // n2 stops; n1 and n3 count it live for 3 s more, so a write still replicates to it.
  REQUIRE(::kill(c.node(1).pid(), SIGSTOP) == 0);
  resume.pids.push_back(c.node(1).pid());
  std::vector<std::string> write;
  int via = 0;
  SECTION("the new primary, while a peer may still route to the replica that stood in") {
    // Speaking as n2, whose last word to n1 is now that it does not route to n1 as ready (as a
    // peer that has not yet learnt that n1 is ready again says).
    auto raw = c.client(0);
    Reply pong = command(raw.get(), {"RINGKV.PING", "n2", "1"});
    REQUIRE(pong);
    REQUIRE(pong->type == REDIS_REPLY_ARRAY);
    REQUIRE(eventually([&] { return info(c, 0, "node_handoff") == "yes"; },
                       std::chrono::milliseconds(2000)));
    write = {"SET", key, "v1"};
  }
  SECTION("a node that is not the key's primary in its own view") {
    // n3 runs it whatever its view says, as a peer's RINGKV.FINAL asks.
    write = {"RINGKV.FINAL", "SET", key, "v1"};
    via = 2;
  }
  std::atomic<bool> done{false};
  SteadyClock::time_point done_at;
  std::string reply;
  std::thread writer([&] {
    auto cl = c.client(via);
    reply = reply_text(command(cl.get(), write));
    done_at = SteadyClock::now();
    done = true;
  });
  // n3 (or n1) acknowledges at once: W = 2 is reached, yet the reply waits for n2.
  REQUIRE(eventually([&] {
    Reply e = command(c.client(via == 0 ? 2 : 0).get(), {"RINGKV.GETENTRY", key});
    return e && e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
           e->element[0]->type == REDIS_REPLY_STRING && std::string(e->element[0]->str) == "v1";
  }));
  const bool early = done.load();
  const auto resumed_at = SteadyClock::now();
  REQUIRE(::kill(c.node(1).pid(), SIGCONT) == 0);
  writer.join();
  CHECK_FALSE(early);
  CHECK(done_at > resumed_at);
  CHECK(reply == "OK");
  Reply e = command(c.client(1).get(), {"RINGKV.GETENTRY", key});
  REQUIRE(e);
  REQUIRE(e->type == REDIS_REPLY_ARRAY);
  CHECK(std::string(e->element[0]->str, e->element[0]->len) == "v1");
  // A bad flag or one argument too many is refused.
  auto raw = c.client(0);
  CHECK(reply_text(command(raw.get(), {"RINGKV.PING", "n2", "1", "0", "yes"})) ==
        "ERR syntax error");
  CHECK(reply_text(command(raw.get(), {"RINGKV.PING", "n2", "1", "0", "1", "x"})) ==
        "ERR wrong number of arguments for 'ringkv.ping' command");
}

// A node's request that waited in the kernel while its target was stopped, on a link its sender
// has closed since (its 5 s reply timeout failed the request, with TRYAGAIN for a forwarded
// write): running it after the resume would apply a write reported as failed, over the writes
// acknowledged since. A link still open is a sender still waiting: its request runs.
TEST_CASE("a peer's request whose link closed while the node was stopped is not run") {
  ServerProcess node({"--node-id", "n1"});
  ContinueOnExit resume;
  auto hello = [](RawClient& link) {
    REQUIRE(link.connected());
    REQUIRE(link.send_all("*3\r\n$12\r\nRINGKV.HELLO\r\n$2\r\nn2\r\n$1\r\n2\r\n"));
    REQUIRE(link.read_replies(1) == "+OK\r\n");
  };
  auto set = [](const std::string& key, const std::string& value) {
    return "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" +
           std::to_string(value.size()) + "\r\n" + value + "\r\n";
  };
  RawClient kept(node.port());
  hello(kept);
  {
    RawClient given_up(node.port());
    hello(given_up);
    // A plain client's abandoned request still runs on a server alone, as in Redis: no other
    // node can have taken its retries.
    RawClient client(node.port());
    REQUIRE(client.connected());
    REQUIRE(::kill(node.pid(), SIGSTOP) == 0);
    resume.pids.push_back(node.pid());
    REQUIRE(given_up.send_all(set("dropped", "stale")));
    REQUIRE(kept.send_all(set("kept", "fresh")));
    REQUIRE(client.send_all(set("client", "ran")));
  }  // given_up and client close: their senders gave up
  // The pause lasts longer than a loop turn can (1 s), as a pause that outlives a peer's timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  REQUIRE(::kill(node.pid(), SIGCONT) == 0);
  CHECK(kept.read_replies(1) == "+OK\r\n");
  Context c = node.client();
  CHECK(reply_text(command(c.get(), {"GET", "kept"})) == "fresh");
  CHECK(command(c.get(), {"GET", "dropped"})->type == REDIS_REPLY_NIL);
  CHECK(reply_text(command(c.get(), {"GET", "client"})) == "ran");
  // Once the loop runs as usual again, a peer link's requests run as always.
  {
    RawClient brief(node.port());
    hello(brief);
    REQUIRE(brief.send_all(set("brief", "ran")));
    CHECK(brief.read_replies(1) == "+OK\r\n");
  }
  CHECK(reply_text(command(c.get(), {"GET", "brief"})) == "ran");
}

// The same for a client in a ring of several servers: a client that timed out may have sent its
// write again through another node, whose copy was acknowledged; the stale one must not replace it.
TEST_CASE("a client's request abandoned while its node was stopped is not run in a ring") {
  Cluster c(2, false);
  ContinueOnExit resume;
  auto set = [](const std::string& key, const std::string& value) {
    return "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" +
           std::to_string(value.size()) + "\r\n" + value + "\r\n";
  };
  RawClient waiting(c.port(0));
  REQUIRE(waiting.connected());
  {
    RawClient gone(c.port(0));
    REQUIRE(gone.connected());
    REQUIRE(::kill(c.node(0).pid(), SIGSTOP) == 0);
    resume.pids.push_back(c.node(0).pid());
    REQUIRE(gone.send_all(set("abandoned", "stale")));
    REQUIRE(waiting.send_all(set("waited", "fresh")));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  REQUIRE(::kill(c.node(0).pid(), SIGCONT) == 0);
  CHECK(waiting.read_replies(1) == "+OK\r\n");
  auto b = c.client(1);
  CHECK(reply_text(command(b.get(), {"GET", "waited"})) == "fresh");
  CHECK(command(b.get(), {"GET", "abandoned"})->type == REDIS_REPLY_NIL);
}

// Heartbeats run on their own thread: a configuration service whose host is stopped (each call
// then takes seconds) must not stop the other nodes from pinging each other.
TEST_CASE("with the configuration's host stopped the other nodes still see each other up") {
  Cluster c(3, false);
  ContinueOnExit resume;
  REQUIRE(::kill(c.node(0).pid(), SIGSTOP) == 0);  // n1 hosts the configuration service
  resume.pids.push_back(c.node(0).pid());
  REQUIRE(eventually([&] { return health_of(c, 1, "n1") == "down"; }));
  // The others' status reports (every 500 ms) now wait on n1 for seconds each, longer together
  // than the 3 s after which a silent peer is down (before, the heartbeats waited behind them).
  const auto until = SteadyClock::now() + std::chrono::seconds(4);
  int polls = 0;
  while (SteadyClock::now() < until) {
    ++polls;
    INFO("poll " << polls);
    REQUIRE(health_of(c, 1, "n3") == "up");
    REQUIRE(health_of(c, 2, "n2") == "up");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(::kill(c.node(0).pid(), SIGCONT) == 0);
  REQUIRE(wait_servers_up(c, {0, 1, 2}, 3, std::chrono::milliseconds(20000)));
}

// ---------------------------------------------------------------- a lost embedded configuration

TEST_CASE("an embedded configuration service restarted without its state is restored") {
  TempDir logs;
  Cluster c(3, false, {"--logfile", logs.path + "/{id}.log", "--replicas", "2"});
  const std::string epoch = info(c, 1, "ring_epoch");
  auto kv = make_keys(3000, "restore:");
  load(c, kv, {0, 1, 2});
  // Reads through n2 and n3 all along: none may find a key missing or changed (before, the
  // others made the restarted n1 a primary again while it served a ring of its own: about a
  // quarter of the reads answered nil). Errors (TRYAGAIN while n1 is down) may happen.
  std::atomic<bool> stop_reading{false};
  std::atomic<size_t> reads{0}, wrong{0}, errors{0};
  std::string first_wrong;
  std::thread reader([&] {
    const auto until = SteadyClock::now() + std::chrono::seconds(60);
    for (int via = 1; !stop_reading && SteadyClock::now() < until; via = 3 - via) {
      auto cl = c.client(via);
      for (size_t off = 0; off < kv.size() && !stop_reading; off += 500) {
        std::vector<std::string> part;
        for (size_t j = off; j < std::min(kv.size(), off + 500); ++j) part.push_back(kv[j].first);
        auto vals = pipeline_get(cl.get(), part);
        if (cl->err != 0) {  // the connection failed (not a reply): try again on a new one
          errors += part.size();
          break;
        }
        for (size_t j = 0; j < part.size(); ++j) {
          ++reads;
          if (vals[j] && vals[j]->rfind("<error>", 0) == 0) {
            ++errors;
          } else if (!vals[j] || *vals[j] != kv[off + j].second) {
            if (wrong++ == 0) first_wrong = part[j] + " through " + c.id(via);
          }
        }
      }
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{stop_reading, reader};
  // n1 hosts the ring configuration in memory (no ring-state-file): a restart loses it and
  // its data, and n1 starts a one-server ring of its own at epoch 1. n2 or n3 writes their
  // ring back into it; n1 takes that ring and recovers its ranges from the other holders.
  REQUIRE(eventually([&] { return reads.load() >= kv.size(); }));
  c.node(0).kill_hard();
  c.restart(0);
  REQUIRE(eventually([&] { return info(c, 0, "ring_epoch") == epoch; }));
  REQUIRE(eventually([&] { return info(c, 0, "node_state") == "ready"; }));
  const size_t reads_at_ready = reads.load();
  REQUIRE(eventually([&] { return reads.load() >= reads_at_ready + kv.size(); }));
  stop_reading = true;
  reader.join();
  INFO(reads.load() << " reads during the restart, " << errors.load()
                    << " errors; first wrong: " << first_wrong);
  CHECK(wrong.load() == 0);
  CHECK(info(c, 0, "ring_servers") == "3");
  CHECK(eventually([&] {
    return file_contains(logs.path + "/n2.log", "restored epoch " + epoch + " into it") ||
           file_contains(logs.path + "/n3.log", "restored epoch " + epoch + " into it");
  }));
  CHECK(file_contains(logs.path + "/n1.log", "The other nodes restored ring epoch " + epoch +
                                                 " into the configuration service hosted here"));
  // Every key through every node, and n1 holds again exactly the ranges it is a replica of.
  check_all(c, {0, 1, 2}, std::map<std::string, std::string>(kv.begin(), kv.end()));
  DigestCheck d = settled_digests(c, {0, 1, 2}, 2);
  INFO(d.first_problem);
  CHECK(d.ok());
  CHECK(d.keys == kv.size());
  // Ring changes go through the restored service again: n3 leaves, and its ranges move.
  REQUIRE(reply_text(command(c.client(1).get(), {"RING", "REMOVESERVER", "n3"})) == "OK");
  REQUIRE(c.wait_idle());
  CHECK(info(c, 0, "ring_epoch") != epoch);
  CHECK(info(c, 0, "ring_servers") == "2");
  check_all(c, {0, 1}, std::map<std::string, std::string>(kv.begin(), kv.end()));
}

TEST_CASE(
    "a configuration host restarted before its peers noticed is no primary until it has the ring "
    "back") {
  // n1 hosts the ring in memory (no ring-state-file). It restarts while n2 and n3 stand still,
  // so neither saw it down; it comes back serving a one-server ring of its own at epoch 1, with
  // an empty store and ready. The others must not make it a primary again on its ready flag:
  // until it has taken their ring back and recovered, its keys are read from the other holder.
  Cluster c(3, false, {"--replicas", "2"});
  auto kv = make_keys(600, "quick:");
  load(c, kv, {0, 1, 2});
  auto ring = ring_of({"n1", "n2", "n3"});
  std::vector<std::pair<std::string, std::string>> first_n1;
  for (const auto& [k, v] : kv)
    if (ring->owner(token_of(k)) == "n1") first_n1.emplace_back(k, v);
  REQUIRE(first_n1.size() >= 100);
  ContinueOnExit resume;
  const std::string epoch = info(c, 1, "ring_epoch");
  auto b = c.client(1);
  for (int i : {1, 2}) {
    REQUIRE(::kill(c.node(i).pid(), SIGSTOP) == 0);
    resume.pids.push_back(c.node(i).pid());
  }
  c.node(0).kill_hard();
  c.restart(0);
  REQUIRE(info(c, 0, "ring_epoch") == "1");
  // GETs of n1's keys wait in n2's socket: n2 routes them as it resumes, with the view it had
  // (n1 up and ready), before its heartbeat learns otherwise.
  std::vector<std::vector<std::string>> gets;
  for (const auto& kv1 : first_n1) gets.push_back({"GET", kv1.first});
  send_pipeline(b.get(), gets);
  for (int i : {1, 2}) REQUIRE(::kill(c.node(i).pid(), SIGCONT) == 0);
  size_t reads = 0, wrong = 0, refused = 0;
  std::string first_wrong;
  auto check = [&](const std::string& k, const std::string& v, const std::string& got) {
    ++reads;
    if (got == v) return;
    // Refused (TRYAGAIN) is allowed; a value other than the one written is not.
    if (got.rfind("TRYAGAIN", 0) == 0) {
      ++refused;
    } else if (wrong++ == 0) {
      first_wrong = k + " = " + got;
    }
  };
  auto replies = read_replies(b.get(), gets.size());
  REQUIRE(replies.size() == gets.size());
  for (size_t i = 0; i < gets.size(); ++i)
    check(first_n1[i].first, first_n1[i].second, reply_text(replies[i]));
  // And one at a time until n1 has the ring back.
  const auto until = SteadyClock::now() + std::chrono::seconds(20);
  while (info(c, 0, "ring_epoch") != epoch && SteadyClock::now() < until)
    for (const auto& [k, v] : first_n1) check(k, v, reply_text(command(b.get(), {"GET", k})));
  INFO(wrong << " of " << reads << " reads wrong, " << refused
             << " refused; first wrong: " << first_wrong);
  CHECK(wrong == 0);
  REQUIRE(eventually([&] { return info(c, 0, "node_state") == "ready"; }));
  check_all(c, {0, 1, 2}, std::map<std::string, std::string>(kv.begin(), kv.end()));
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
