// Multi-process cluster tests of the any-node semantics: multi-key commands split by primary,
// transactions and WATCH, and keyspace commands (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHALL) that act
// on the whole cluster, in pipelines too, and under CLIENT PAUSE. The first test runs with the
// embedded configuration service and with etcd; the CLIENT PAUSE one does not depend on it.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "cluster_harness.h"

using namespace ringkv;
using namespace ringkv::testing;

// ---------------------------------------------------------------- any-node semantics

namespace {

// Keys grouped by primary (RING OWNERS): prefix + i for i < n.
std::map<std::string, std::vector<std::string>> keys_by_primary(Cluster& c,
                                                                const std::string& prefix, int n) {
  std::map<std::string, std::vector<std::string>> out;
  for (int i = 0; i < n; ++i) {
    std::string k = prefix + std::to_string(i);
    auto owners = owners_of(c, k);
    REQUIRE(!owners.empty());
    out[owners.front()].push_back(k);
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
        // Requests between nodes (heartbeats, DBSIZE's counts) stay out of SLOWLOG, which lists
        // what clients run.
        REQUIRE(text(via[0].get(), {"CONFIG", "SET", "slowlog-log-slower-than", "0"}) == "OK");
        REQUIRE(text(via[0].get(), {"SLOWLOG", "RESET"}) == "OK");
        CHECK(dbsize(c, 1) == 0);  // asks n1 for its count
        CHECK(text(via[0].get(), {"ECHO", "hi"}) == "hi");
        Reply slow = command(via[0].get(), {"SLOWLOG", "GET", "-1"});
        REQUIRE(slow);
        REQUIRE(slow->type == REDIS_REPLY_ARRAY);
        std::vector<std::string> logged;
        for (size_t e = 0; e < slow->elements; ++e) {
          const redisReply* name = slow->element[e]->element[3]->element[0];
          std::string lower(name->str, name->len);
          for (char& ch : lower)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          logged.push_back(lower);
        }
        REQUIRE(text(via[0].get(), {"CONFIG", "SET", "slowlog-log-slower-than", "10000"}) == "OK");
        CHECK(std::find(logged.begin(), logged.end(), "echo") != logged.end());
        for (const auto& name : logged) CHECK(name.rfind("ringkv.", 0) != 0);
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
        // Bad arguments of a two-key command across primaries get the command's own error, as
        // Redis checks them first; good ones get the refusal.
        for (int j = 0; j < 3; ++j) {
          redisContext* cl = via[static_cast<size_t>(j)].get();
          CHECK(text(cl, {"COPY", a1, b1, "FOO"}) == "ERR syntax error");
          CHECK(text(cl, {"COPY", a1, b1, "DB", "x"}) ==
                "ERR value is not an integer or out of range");
          CHECK(text(cl, {"COPY", a1, b1, "DB", "1"}) == "ERR DB index is out of range");
          CHECK(text(cl, {"LCS", a1, b1, "LEN", "IDX"}) ==
                "ERR If you want both the length and indexes, please just use IDX.");
          CHECK(text(cl, {"LCS", a1, b1, "MINMATCHLEN", "x"}) ==
                "ERR value is not an integer or out of range");
          CHECK(text(cl, {"BITOP", "NAND", a1, b1}) == "ERR syntax error");
          CHECK(text(cl, {"BITOP", "NOT", a1, b1, a1}) ==
                "ERR BITOP NOT must be called with a single source key.");
          CHECK(text(cl, {"COPY", a1, b1, "REPLACE"}).rfind("CROSSSLOT COPY: ", 0) == 0);
          CHECK(text(cl, {"LCS", a1, b1, "IDX"}).rfind("CROSSSLOT LCS: ", 0) == 0);
          CHECK(text(cl, {"BITOP", "AND", a1, b1}).rfind("CROSSSLOT BITOP: ", 0) == 0);
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

        // MONITOR queued in a transaction refuses at EXEC, as in Redis (the connection does not
        // turn into a monitor); SCAN's empty cursor is 0, as in Redis.
        for (int j = 0; j < 3; ++j) {
          auto w = c.client(j);
          CHECK(text(w.get(), {"MULTI"}) == "OK");
          CHECK(text(w.get(), {"MONITOR"}) == "QUEUED");
          Reply r = command(w.get(), {"EXEC"});
          REQUIRE(r);
          REQUIRE(r->type == REDIS_REPLY_ARRAY);
          REQUIRE(r->elements == 1);
          CHECK(std::string(r->element[0]->str, r->element[0]->len) ==
                "ERR MONITOR isn't allowed for DENY BLOCKING client");
          CHECK(text(w.get(), {"PING"}) == "PONG");
          Reply scan = command(w.get(), {"SCAN", "", "COUNT", "1000"});
          REQUIRE(scan);
          REQUIRE(scan->type == REDIS_REPLY_ARRAY);
          CHECK(scan->elements == 2);
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
          // MATCH "" matches the empty key only, as in Redis.
          REQUIRE(text(via[static_cast<size_t>(j)].get(), {"SET", "", "empty"}) == "OK");
          CHECK(full_scan(via[static_cast<size_t>(j)].get(), -1, [] {}, {"MATCH", ""}) ==
                std::multiset<std::string>{""});
          CHECK(reply_text(command(via[static_cast<size_t>(j)].get(), {"DEL", ""})) == "1");
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

// A keyspace command that waits for the forwarded replies of the requests before it (pipeline
// order) checks CLIENT PAUSE again when its turn comes: a pause that began meanwhile holds it.
TEST_CASE("any node: a FLUSHALL waiting behind a forwarded write is held by a CLIENT PAUSE") {
  Cluster c(3, false, {"--replicas", "1"});
  ContinueOnExit resume;
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    std::string k = "held:" + std::to_string(i);
    if (owners_of(c, k) == std::vector<std::string>{"n2"}) key = k;
  }
  auto ctl = c.client(0);
  REQUIRE(text(ctl.get(), {"SET", key, "before"}) == "OK");
  auto held_line = [&] {
    std::string list = text(ctl.get(), {"CLIENT", "LIST"});
    size_t at = list.find(" name=held ");
    if (at == std::string::npos) return std::string();
    size_t begin = list.rfind('\n', at);
    size_t end = list.find('\n', at);
    return list.substr(begin == std::string::npos ? 0 : begin + 1,
                       end == std::string::npos ? std::string::npos : end - begin - 1);
  };
  // n2 stops, so the SET forwarded to it waits, and the FLUSHALL after it waits for its reply.
  REQUIRE(::kill(c.node(1).pid(), SIGSTOP) == 0);
  resume.pids.push_back(c.node(1).pid());
  auto pipe = connect(c.port(0), 30000);
  REQUIRE(pipe);
  send_pipeline(pipe.get(), {{"CLIENT", "SETNAME", "held"}, {"SET", key, "after"}, {"FLUSHALL"}});
  REQUIRE(eventually([&] { return held_line().find(" cmd=flushall") != std::string::npos; },
                     std::chrono::milliseconds(10000)));
  REQUIRE(text(ctl.get(), {"CLIENT", "PAUSE", "30000", "WRITE"}) == "OK");
  REQUIRE(::kill(c.node(1).pid(), SIGCONT) == 0);
  auto first = read_replies(pipe.get(), 2);
  CHECK(reply_text(first[0]) == "OK");
  CHECK(reply_text(first[1]) == "OK");
  // The FLUSHALL is held (flags=b), not run: the key is still there.
  auto get = c.client(2);
  REQUIRE(eventually(
      [&] {
        return held_line().find(" flags=b ") != std::string::npos ||
               reply_text(command(get.get(), {"GET", key})) != "after";
      },
      std::chrono::milliseconds(10000)));
  INFO(held_line());
  CHECK(reply_text(command(get.get(), {"GET", key})) == "after");
  CHECK(held_line().find(" flags=b ") != std::string::npos);
  REQUIRE(text(ctl.get(), {"CLIENT", "UNPAUSE"}) == "OK");
  auto last = read_replies(pipe.get(), 1);
  CHECK(reply_text(last[0]) == "OK");
  CHECK(reply_text(command(get.get(), {"GET", key})) == "<nil>");
}
