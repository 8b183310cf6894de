// Cluster admin commands: the exact texts of their errors, RING PLAN against what really moves,
// changes queued behind a move, and admin work that waits on a hung node without holding up the
// node's failure detection. Every test runs with the embedded configuration service and with
// etcd. Last, how a node follows the configuration another node hosts.
#include <poll.h>

#include <catch2/catch.hpp>
#include <map>

#include "cluster/config_service.h"
#include "cluster_harness.h"
#include "raw_client.h"

using namespace ringkv;
using namespace ringkv::testing;

TEST_CASE("admin errors have exact texts - RING PLAN predicts exactly what moves") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      Cluster c(3, etcd);
      int n4 = c.start_node();  // running, not on the ring
      auto a = c.client(1);
      auto addr = [&](int i) { return "127.0.0.1:" + std::to_string(c.port(i)); };

      CHECK(text(a.get(), {"RING", "REMOVESERVER", "nx"}) == "ERR no server 'nx' on the ring");
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n2", addr(1)}) ==
            "ERR server 'n2' is already in the ring configuration");
      int nobody = free_port();
      std::string nobody_addr = "127.0.0.1:" + std::to_string(nobody);
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n9", nobody_addr}) ==
            "ERR server 'n9' at " + nobody_addr + " is unreachable: " + nobody_addr +
                ": Connection refused");
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n9", addr(n4)}) ==
            "ERR the server at " + addr(n4) + " has node id 'n4', not 'n9'");
      // A known id is reported as such, whatever (or whoever) answers at the address.
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n2", nobody_addr}) ==
            "ERR server 'n2' is already in the ring configuration");
      {
        // A node of another ring (here its own: --discovery local) is refused; it would never
        // follow this ring's configuration, and writes would cross between the two.
        ServerProcess lone({"--node-id", "s1"});
        std::string lone_addr = "127.0.0.1:" + std::to_string(lone.port());
        CHECK(text(a.get(), {"RING", "ADDSERVER", "s1", lone_addr}) ==
              "ERR server 's1' at " + lone_addr +
                  " follows another ring configuration (epoch 1, servers s1); start it with "
                  "--discovery " +
                  c.discovery() + " to add it to this ring");
        CHECK(info_field(c.ring_info(0), "ring_servers") == "3");
        // The other way round: the lone node's ring (epoch 1) refuses n4, which runs this
        // ring's newer epoch without being on it (as a node does that follows a configuration
        // whose host restarted without its state, before the others restore it).
        const std::string epoch = info_field(c.ring_info(n4), "ring_epoch");
        REQUIRE(epoch != "1");
        CHECK(text(connect(lone.port()).get(), {"RING", "ADDSERVER", "n4", addr(n4)}) ==
              "ERR server 'n4' at " + addr(n4) + " runs ring epoch " + epoch +
                  ", newer than this ring's epoch 1: it follows a ring this configuration "
                  "service lost (a restart without ring-state-file; the other nodes restore it) "
                  "or another cluster's");
        CHECK(info_field(reply_text(command(connect(lone.port()).get(), {"RING", "INFO"})),
                         "ring_servers") == "1");
      }
      // Malformed requests.
      // A malformed address gets the same error from RING ADDSERVER and RING PLAN ADDSERVER.
      for (std::string bad : {"nohost", "127.0.0.1:70000", "127.0.0.1:", ":80"}) {
        CHECK(text(a.get(), {"RING", "ADDSERVER", "n4", bad}) ==
              "ERR '" + bad + "' is not a host:port address");
        CHECK(text(a.get(), {"RING", "PLAN", "ADDSERVER", "n4", bad}) ==
              "ERR '" + bad + "' is not a host:port address");
      }
      // RING PLAN ADDSERVER refuses, as the change would, a server that does not answer or is
      // another one.
      CHECK(text(a.get(), {"RING", "PLAN", "ADDSERVER", "n9", nobody_addr}) ==
            "ERR server 'n9' at " + nobody_addr + " is unreachable: " + nobody_addr +
                ": Connection refused");
      CHECK(text(a.get(), {"RING", "PLAN", "ADDSERVER", "n9", addr(n4)}) ==
            "ERR the server at " + addr(n4) + " has node id 'n4', not 'n9'");
      for (std::string w : {"0", "1001", "-1", "x", "1.5"})
        CHECK(text(a.get(), {"RING", "ADDSERVER", "n4", addr(n4), "WEIGHT", w}) ==
              "ERR WEIGHT must be an integer between 1 and 1000");
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n4", addr(n4), "WEIGHT"}) == "ERR syntax error");
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n4", addr(n4), "COLOR", "3"}) ==
            "ERR syntax error");
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n4"}) ==
            "ERR wrong number of arguments for 'ring|addserver' command");
      CHECK(text(a.get(), {"RING", "REMOVESERVER"}) ==
            "ERR wrong number of arguments for 'ring|removeserver' command");
      CHECK(text(a.get(), {"RING", "PLAN", "MOVE", "n4"}) ==
            "ERR RING PLAN takes ADDSERVER <id> <host:port> [WEIGHT w] or REMOVESERVER <id>");
      CHECK(text(a.get(), {"RING", "PLAN", "REMOVESERVER", "nx"}) ==
            "ERR no server 'nx' on the ring");
      CHECK(text(a.get(), {"RING", "PLAN", "ADDSERVER", "n4", "nohost"}) ==
            "ERR 'nohost' is not a host:port address");
      // None of these changed the ring.
      std::string epoch = info(c, 0, "ring_epoch");
      CHECK(info(c, 0, "ring_servers") == "3");

      // RING PLAN ADDSERVER, then the change itself, with a second change sent right behind it.
      auto kv = make_keys(100000, "p:");
      load(c, kv, {0, 1, 2});
      Reply plan_reply = command(a.get(), {"RING", "PLAN", "ADDSERVER", "n4", addr(n4)});
      auto plan = parse_plan(plan_reply);
      CHECK(info(c, 0, "ring_epoch") == epoch);  // a dry run
      auto by_dest = plan_by_destination(plan);
      REQUIRE(by_dest.size() == 1);  // with N = 3 on 3 servers, only the newcomer gains
      CHECK(by_dest.count("n4") == 1);
      long long planned_keys = 0;
      for (const auto& l : plan) planned_keys += l.keys;
      std::vector<std::string> keys;
      for (const auto& [k, v] : kv) keys.push_back(k);
      CHECK(planned_keys == static_cast<long long>(predicted_gain(
                                keys, {"n1", "n2", "n3"}, {"n1", "n2", "n3", "n4"}, "n4", 3)));

      // A second change sent while the first moves data waits for it instead of failing: the
      // repeated ADDSERVER n4 is answered only once the ring is idle again (then it finds n4
      // already there), and the removal of n2 runs after it.
      // The second reply comes only when ~75,000 keys have moved (paced by migration-rate, and
      // slower still under sanitizers on a loaded machine): this client waits up to 2 minutes.
      auto w = connect(c.port(0), 120000);
      REQUIRE(w);
      const std::string add_cmd = "RING ADDSERVER n4 " + addr(n4);
      redisAppendCommand(w.get(), add_cmd.c_str());
      redisAppendCommand(w.get(), add_cmd.c_str());
      redisAppendCommand(w.get(), "RING ADDSERVER n5 127.0.0.1:1");
      void* r1 = nullptr;
      void* r2 = nullptr;
      void* r3 = nullptr;
      REQUIRE(redisGetReply(w.get(), &r1) == REDIS_OK);
      Reply add(static_cast<redisReply*>(r1));
      REQUIRE(reply_text(add) == "OK");
      REQUIRE(redisGetReply(w.get(), &r2) == REDIS_OK);
      Reply second(static_cast<redisReply*>(r2));
      CHECK(info(c, 0, "migration_state") == "idle");  // it waited for the move to finish
      CHECK(reply_text(second) == "ERR server 'n4' is already in the ring configuration");
      REQUIRE(redisGetReply(w.get(), &r3) == REDIS_OK);
      Reply third(static_cast<redisReply*>(r3));
      // An unreachable address is reported before the ring is even looked at.
      CHECK(reply_text(third) ==
            "ERR server 'n5' at 127.0.0.1:1 is unreachable: 127.0.0.1:1: Connection refused");
      REQUIRE(c.wait_idle());
      CHECK(info_u64(c, n4, "node_keys_received") == static_cast<uint64_t>(by_dest["n4"].first));
      CHECK(info_u64(c, n4, "node_bytes_received") == static_cast<uint64_t>(by_dest["n4"].second));
      for (int i : {0, 1, 2}) CHECK(info_u64(c, i, "node_keys_received") == 0);

      // RING PLAN REMOVESERVER, then the removal: each gainer receives what the plan said.
      plan = parse_plan(command(a.get(), {"RING", "PLAN", "REMOVESERVER", "n2"}));
      by_dest = plan_by_destination(plan);
      CHECK(by_dest.count("n2") == 0);
      long long total = 0;
      for (const auto& [dest, kb] : by_dest) total += kb.first;
      CHECK(total > 0);
      REQUIRE(text(a.get(), {"RING", "REMOVESERVER", "n2"}) == "OK");
      REQUIRE(c.wait_idle());
      long long received = 0;
      for (int i : {0, 2, 3}) {
        INFO("gainer " << c.id(i));
        CHECK(info_u64(c, i, "node_keys_received") ==
              static_cast<uint64_t>(by_dest[c.id(i)].first));
        CHECK(info_u64(c, i, "node_bytes_received") ==
              static_cast<uint64_t>(by_dest[c.id(i)].second));
        CHECK(info_u64(c, i, "node_keys_received") ==
              predicted_gain(keys, {"n1", "n2", "n3", "n4"}, {"n1", "n3", "n4"}, c.id(i), 3));
        received += static_cast<long long>(info_u64(c, i, "node_keys_received"));
      }
      CHECK(received == total);

      // A server that replaced a dead one at the same address, but under a new id, while the
      // dead one is still on the ring.
      c.node(2).kill_hard();  // n3
      ServerProcess n9({"--node-id", "n9", "--discovery", c.discovery()}, RINGKV_SERVER_PATH,
                       c.port(2));
      CHECK(text(a.get(), {"RING", "ADDSERVER", "n9", addr(2)}) ==
            "ERR address " + addr(2) + " is already used by server 'n3'");
    }
  }
}

TEST_CASE("removing the last server of the ring is refused") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      Cluster c(1, etcd);
      auto a = c.client(0);
      CHECK(text(a.get(), {"RING", "REMOVESERVER", "n1"}) ==
            "ERR can't remove the last server of the ring");
      CHECK(text(a.get(), {"RING", "PLAN", "REMOVESERVER", "n1"}) ==
            "ERR can't remove the last server of the ring");
      CHECK(info(c, 0, "ring_servers") == "1");
      CHECK(text(a.get(), {"SET", "k", "v"}) == "OK");
      CHECK(text(a.get(), {"GET", "k"}) == "v");
    }
  }
}

namespace {

// Starts n4 (not on the ring), stops n3 (its socket still accepts) and sends RING PLAN ADDSERVER n4
// through node `via`: the plan checks n4, then asks every source, n3 last, for its key counts and
// waits up to 30 s for n3's reply. Meanwhile `via` keeps pinging its peers; returns the plan's
// connection once `via` has marked n3 down (after the 3 s down-after time) while the plan is still
// unanswered.
Context plan_waiting_on_stopped_n3(Cluster& c, int via, ContinueOnExit& resume) {
  const int n4 = c.start_node();
  REQUIRE(wait_servers_up(c, {via}, 3, std::chrono::milliseconds(20000)));
  REQUIRE(::kill(c.node(2).pid(), SIGSTOP) == 0);
  resume.pids.push_back(c.node(2).pid());
  auto p = connect(c.port(via), 60000);
  REQUIRE(p);
  const std::string plan_cmd = "RING PLAN ADDSERVER n4 127.0.0.1:" + std::to_string(c.port(n4));
  redisAppendCommand(p.get(), plan_cmd.c_str());
  int done = 0;
  while (!done) REQUIRE(redisBufferWrite(p.get(), &done) == REDIS_OK);
  REQUIRE(wait_servers_up(c, {via}, 2, std::chrono::milliseconds(15000)));
  pollfd pfd{p->fd, POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 0) == 0);
  return p;
}

}  // namespace

TEST_CASE("a RING PLAN waiting on a stopped node does not hold up that node's failure detection") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      Cluster c(3, etcd);
      auto kv = make_keys(3000, "h:");
      load(c, kv, {0, 1, 2});
      ContinueOnExit resume;
      auto p = plan_waiting_on_stopped_n3(c, 0, resume);

      // n3 resumes: it answers the plan's request, and n1 counts it up again.
      REQUIRE(::kill(c.node(2).pid(), SIGCONT) == 0);
      void* r = nullptr;
      REQUIRE(redisGetReply(p.get(), &r) == REDIS_OK);
      auto plan = parse_plan(Reply(static_cast<redisReply*>(r)));
      long long from_n3 = -1;
      for (const auto& l : plan)
        if (l.from == "n3" && l.to == "n4") from_n3 = l.keys;
      // With N = 3 on 3 servers only n4 gains; each range comes from its old primary.
      long long planned = 0;
      for (const auto& l : plan) planned += l.keys;
      CHECK(planned == static_cast<long long>(predicted_gain(kv, {"n1", "n2", "n3"},
                                                             {"n1", "n2", "n3", "n4"}, "n4", 3)));
      CHECK(from_n3 > 0);
      CHECK(wait_servers_up(c, {0}, 3, std::chrono::milliseconds(20000)));
    }
  }
}

TEST_CASE("a node stops at once while a RING PLAN it runs waits on a stopped peer") {
  for (bool etcd : {false, true}) {
    DYNAMIC_SECTION(backend_name(etcd) << " configuration service") {
      Cluster c(3, etcd);
      load(c, make_keys(300, "s:"), {0, 1, 2});
      ContinueOnExit resume;
      auto p = plan_waiting_on_stopped_n3(c, 1, resume);

      // SIGTERM: n2 ends the plan's call to n3 instead of waiting out its timeout, and exits
      // cleanly within the 5 s the harness allows (else it is killed, and this fails).
      c.node(1).stop();
      CHECK(c.node(1).clean_exit());
      // The plan's client gets no plan: the connection closes (or an error, if one got out).
      void* r = nullptr;
      if (redisGetReply(p.get(), &r) == REDIS_OK) {
        Reply reply(static_cast<redisReply*>(r));
        CHECK(show(reply.get()).rfind("-", 0) == 0);
      }
    }
  }
}

TEST_CASE("a server added by host name takes the requests forwarded and replicated to it") {
  for (bool etcd : {false, true}) {
    for (int replicas : {1, 2}) {
      DYNAMIC_SECTION(backend_name(etcd) << " configuration service, N = " << replicas) {
        Cluster c(1, etcd, {"--replicas", std::to_string(replicas)});
        const int n2 = c.start_node();
        REQUIRE(text(c.client(0).get(), {"RING", "ADDSERVER", c.id(n2),
                                         "localhost:" + std::to_string(c.port(n2))}) == "OK");
        REQUIRE(c.wait_idle());
        CHECK(text(c.client(0).get(), {"RING", "CONFIG"}).find("\"localhost:") !=
              std::string::npos);
        // Keys through both nodes; each node forwards to the other (n1 by host name) the keys
        // it is not the primary of, and with N = 2 replicates every write to it.
        const KeyValues kv = make_keys(400, "named:");
        load(c, kv, {0, 1});
        for (int via : {0, 1}) {
          INFO("read through " << c.id(via));
          std::vector<std::string> keys;
          for (const auto& [k, v] : kv) keys.push_back(k);
          auto got = pipeline_get(c.client(via).get(), keys);
          for (size_t i = 0; i < kv.size(); ++i) {
            INFO(kv[i].first);
            REQUIRE(got[i] == kv[i].second);
          }
        }
        uint64_t held = 0;
        for (int i : {0, 1}) {
          std::string ks = text(c.client(i).get(), {"INFO", "keyspace"});
          size_t at = ks.find("keys=");
          REQUIRE(at != std::string::npos);
          uint64_t n = std::stoull(ks.substr(at + 5));
          CHECK(n > 0);
          held += n;
        }
        CHECK(held == kv.size() * static_cast<size_t>(replicas));
      }
    }
  }
}

TEST_CASE("a node following another node's configuration service waits on it instead of polling") {
  ServerProcess host({"--node-id", "h1"});
  const std::string uri = "ringkv://127.0.0.1:" + std::to_string(host.port());
  auto follower = cluster::open_config_service(uri, "", "", "f1");
  REQUIRE(follower);
  auto cur = (*follower)->load();
  REQUIRE(cur);
  REQUIRE(cur->epoch >= 1);
  auto c = connect(host.port());
  auto cfg_calls = [&] {
    std::string t = text(c.get(), {"INFO", "commandstats"});
    std::string f = info_field(t, "cmdstat_ringkv.cfg");
    REQUIRE(f.rfind("calls=", 0) == 0);
    return std::stoll(f.substr(6));
  };
  const long long before = cfg_calls();
  // The control thread asks every 20 ms. Polling, each of these asks the host at least once;
  // waiting, they share one long poll (after a first one that returns the current document).
  for (int i = 0; i < 25; ++i) {
    auto r = (*follower)->wait_newer(cur->epoch, 20);
    REQUIRE(r);
    CHECK(r->epoch == cur->epoch);
  }
  CHECK(cfg_calls() - before <= 3);

  // A new epoch stored by another node reaches the waiting one when the host applies it, not
  // when the long poll (5 s) ends.
  auto other = cluster::open_config_service(uri, "", "", "f2");
  REQUIRE(other);
  cluster::RingConfig next = *cur;
  next.epoch = cur->epoch + 1;
  REQUIRE((*other)->store(cur->epoch, next));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*follower)->wait_newer(cur->epoch, 10000);
  REQUIRE(r);
  CHECK(r->epoch == next.epoch);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(2500));
  // The host still follows its own document.
  CHECK(info_field(text(c.get(), {"RING", "INFO"}), "ring_epoch") == std::to_string(next.epoch));
}

TEST_CASE("other nodes' links are not clients: connected_clients and maxclients leave them out") {
  Cluster c(3, false);
  auto admin = c.client(0);
  // Every node has links to the others (forwarding, replication, heartbeats, configuration).
  const KeyValues kv = make_keys(200, "mc:");
  load(c, kv, {0, 1, 2});
  // The harness's own connections (loading the keys) close as the test goes on.
  CHECK(eventually([&] {
    return info_field(text(admin.get(), {"INFO", "clients"}), "connected_clients") == "1";
  }));
  REQUIRE(text(admin.get(), {"CONFIG", "SET", "maxclients", "2"}) == "OK");
  auto second = c.client(0);
  CHECK(text(second.get(), {"PING"}) == "PONG");
  auto third = c.client(0);
  Reply r = command(third.get(), {"PING"});
  CHECK(reply_text(r) == "ERR max number of clients reached");
  // The links still work: a key owned elsewhere is read through this node.
  auto got = pipeline_get(second.get(), {kv[0].first, kv[1].first, kv[2].first});
  for (size_t i = 0; i < 3; ++i) CHECK(got[i] == kv[i].second);
  // A new link is admitted over the limit once it says RINGKV.HELLO ...
  auto link = c.client(0);
  CHECK(text(link.get(), {"RINGKV.HELLO", "n2", "2"}) == "OK");
  CHECK(text(link.get(), {"PING"}) == "PONG");
  // ... and a connection that says nothing is refused after a second (or two).
  {
    RawClient silent(c.port(0));
    REQUIRE(silent.connected());
    CHECK(silent.read_to_close() == "-ERR max number of clients reached\r\n");
    CHECK(silent.closed());
  }
  // n2 restarts while n1's clients fill maxclients: its new links to n1 are admitted (it sees
  // all three servers up), it takes its ranges back, and serves again.
  c.node(1).kill_hard();
  c.restart(1);
  CHECK(wait_servers_up(c, {1}, 3, std::chrono::milliseconds(30000)));
  CHECK(eventually([&] { return info(c, 1, "node_state") == "ready"; },
                   std::chrono::milliseconds(30000)));
  {
    auto via2 = c.client(1);
    auto back = pipeline_get(via2.get(), {kv[0].first, kv[1].first, kv[2].first});
    for (size_t i = 0; i < 3; ++i) CHECK(back[i] == kv[i].second);
  }
  CHECK(info_field(text(admin.get(), {"INFO", "clients"}), "connected_clients") == "2");
  REQUIRE(text(admin.get(), {"CONFIG", "SET", "maxclients", "10000"}) == "OK");
}

TEST_CASE("CONFIG SET requirepass reaches the links between nodes at their next connection") {
  Cluster c(3, false, {"--replicas", "1"});
  // Connections opened before the password is set stay authenticated, as in Redis.
  std::vector<Context> cl;
  for (int i = 0; i < 3; ++i) cl.push_back(c.client(i));
  // A key whose only copy is on n3.
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    std::string k = "pw:" + std::to_string(i);
    Reply owners = command(cl[0].get(), {"RING", "OWNERS", k});
    REQUIRE(owners);
    REQUIRE(owners->elements == 1);
    if (std::string(owners->element[0]->str) == c.id(2)) key = k;
  }
  for (int i = 0; i < 3; ++i)
    REQUIRE(text(cl[static_cast<size_t>(i)].get(), {"CONFIG", "SET", "requirepass", "s3cret"}) ==
            "OK");
  CHECK(text(c.client(0).get(), {"GET", key}) == "NOAUTH Authentication required.");
  // Close every connection into n3 but this one: the links from n1 and n2 among them, which
  // connect again, now with the new password.
  Reply killed = command(cl[2].get(), {"CLIENT", "KILL", "LADDR",
                                       "127.0.0.1:" + std::to_string(c.port(2)), "SKIPME", "yes"});
  REQUIRE(killed);
  CHECK(killed->integer >= 2);
  CHECK(text(cl[0].get(), {"SET", key, "through n1"}) == "OK");
  CHECK(text(cl[1].get(), {"GET", key}) == "through n1");
  CHECK(text(cl[2].get(), {"GET", key}) == "through n1");

  // A password that differs on one node: requests forwarded to it fail with the reason, not
  // with its NOAUTH (the client did authenticate), and work again once the passwords agree.
  REQUIRE(text(cl[2].get(), {"CONFIG", "SET", "requirepass", "other"}) == "OK");
  REQUIRE(command(cl[2].get(), {"CLIENT", "KILL", "LADDR", "127.0.0.1:" + std::to_string(c.port(2)),
                                "SKIPME", "yes"}));
  // (The first requests may still meet the killed connection before n1 has seen it close.)
  std::string refused;
  CHECK(eventually([&] {
    refused = text(cl[0].get(), {"GET", key});
    return refused.find("refused this node's handshake") != std::string::npos;
  }));
  INFO(refused);
  CHECK(refused.find("is requirepass the same on every node?") != std::string::npos);
  CHECK(refused.rfind("NOAUTH", 0) == std::string::npos);
  REQUIRE(text(cl[2].get(), {"CONFIG", "SET", "requirepass", "s3cret"}) == "OK");
  CHECK(eventually([&] { return text(cl[0].get(), {"GET", key}) == "through n1"; }));
}
