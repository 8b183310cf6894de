// Integration tests for transactions on a single node: MULTI, EXEC, DISCARD, WATCH and UNWATCH
// against a real redis-server 7.0.15 (REDIS_SERVER_PATH, "databases 1" like ringkv), the same
// commands sent to both and the replies compared byte for byte in RESP2 and RESP3; and WATCH's
// optimistic locking under concurrent clients on several io-threads. Transactions through a
// cluster are in cluster_failure_test.cc.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "redis_pair.h"
#include "resp_node.h"

using namespace ringkv::testing;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::vector<std::pair<std::string, std::string>> transaction_scenario(int port, int proto) {
  Client c(port), d(port);
  std::vector<std::pair<std::string, std::string>> out;
  if (proto == 3) c.call({"HELLO", "3"});
  c.call({"FLUSHALL"});
  auto p = [&](const Args& a) { out.emplace_back(show(a), c.call(a)); };
  auto other = [&](const Args& a) { d.call(a); };
  // Waits (in wall time) until a key's TTL has run out, without touching the key.
  auto past = [](int ms) {
    const auto until = SteadyClock::now() + std::chrono::milliseconds(ms);
    while (SteadyClock::now() < until) std::this_thread::sleep_for(5ms);
  };
  p({"EXEC"}), p({"DISCARD"}), p({"MULTI"}), p({"MULTI"}), p({"WATCH", "a"}), p({"SET", "a", "1"});
  p({"INCR", "a"}), p({"GET"}), p({"NOSUCH"}), p({"EXEC"}), p({"EXEC"});
  p({"MULTI"}), p({"SET", "a", "x"}), p({"INCR", "a"}), p({"EXEC"});
  p({"WATCH"}), p({"UNWATCH", "x"}), p({"MULTI"}), p({"EXEC"});
  p({"MULTI"}), p({"WATCH", "x"}), p({"EXEC"});
  p({"MULTI"}), p({"EXEC", "x"}), p({"DISCARD"});
  p({"MULTI"}), p({"RESET"}), p({"EXEC"});
  if (proto == 3) c.call({"HELLO", "3"});
  p({"MULTI"}), p({"SHUTDOWN"}), p({"EXEC"});
  p({"MULTI"}), p({"CLIENT", "PAUSE", "0"}), p({"MONITOR"}), p({"EXEC"});
  // WATCH: a key expiring, expired before, touched by another client, by the transaction.
  p({"SET", "w", "1", "PX", "100"}), p({"WATCH", "w"}), past(200), p({"MULTI"}), p({"PING"});
  p({"EXEC"});
  p({"SET", "w", "1", "PX", "50"}), past(100), p({"WATCH", "w"}), p({"MULTI"}), p({"PING"});
  p({"EXEC"});
  p({"SET", "w", "1", "PX", "50"}), past(100), p({"WATCH", "w"}), p({"SET", "w", "2"});
  p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"WATCH", "z"}), other({"SET", "z", "1"}), p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"WATCH", "z"}), p({"MULTI"}), p({"SET", "z", "2"}), p({"EXEC"});
  p({"WATCH", "z"}), p({"UNWATCH"}), other({"SET", "z", "3"}), p({"MULTI"}), p({"PING"});
  p({"EXEC"});
  // FLUSHALL/FLUSHDB touch watched keys that exist, not the others.
  p({"SET", "y", "1"}), p({"WATCH", "y"}), other({"FLUSHDB"}), p({"MULTI"}), p({"PING"});
  p({"EXEC"});
  p({"SET", "y", "1"}), p({"WATCH", "y"}), other({"FLUSHALL"}), p({"MULTI"}), p({"PING"});
  p({"EXEC"});
  p({"WATCH", "nokey"}), other({"FLUSHALL"}), p({"MULTI"}), p({"PING"}), p({"EXEC"});
  // Which commands count as touching.
  p({"SET", "y", "1"}), p({"WATCH", "y"}), other({"EXPIRE", "y", "100"}), p({"MULTI"});
  p({"PING"}), p({"EXEC"});
  p({"SET", "y", "1"}), p({"WATCH", "y"}), other({"GET", "y"}), p({"MULTI"}), p({"PING"});
  p({"EXEC"});
  p({"WATCH", "y"}), other({"SET", "y", "2", "NX"}), p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"WATCH", "q"}), other({"DEL", "q"}), p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"WATCH", "y"}), p({"MULTI"}), p({"FOO"}), p({"EXEC"}), other({"SET", "y", "5"});
  p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"WATCH", "y"}), p({"MULTI"}), p({"DISCARD"}), other({"SET", "y", "6"}), p({"MULTI"});
  p({"PING"}), p({"EXEC"});
  p({"WATCH", "y", "y2"}), other({"SET", "y2", "6"}), p({"MULTI"}), p({"GET", "y"}), p({"EXEC"});
  p({"WATCH", "r1"}), other({"RENAME", "y", "r1"}), p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"SET", "c1", "v"}), p({"WATCH", "c2"}), other({"COPY", "c1", "c2"}), p({"MULTI"});
  p({"PING"}), p({"EXEC"});
  p({"SET", "n", "1"}), p({"WATCH", "n"}), other({"INCR", "n"}), p({"MULTI"}), p({"GET", "n"});
  p({"EXEC"});
  p({"WATCH", "n"}), other({"PERSIST", "n"}), p({"MULTI"}), p({"GET", "n"}), p({"EXEC"});
  // Runtime errors inside EXEC do not abort it; replies keep their types (RESP3 too).
  p({"MULTI"}), p({"SET", "m", "1"}), p({"GET", "m"}), p({"INCRBYFLOAT", "m", "1.5"});
  p({"INCR", "nonum"}), p({"SET", "s", "x"}), p({"INCR", "s"}), p({"GET", "missing"});
  p({"CONFIG", "GET", "maxmemory"}), p({"EXEC"});
  p({"MULTI"}), p({"MULTI"}), p({"PING"}), p({"EXEC"});
  p({"MULTI"}), p({"WATCH", "a"}), p({"PING"}), p({"EXEC"});
  p({"MULTI"}), p({"SET", "a"}), p({"PING"}), p({"DISCARD"}), p({"EXEC"});
  p({"MULTI"}), p({"PING"}), p({"UNWATCH"}), p({"EXEC"});
  p({"MULTI"}), p({"SELECT", "0"}), p({"GET", "a"}), p({"EXEC"});
  p({"MULTI"}), p({"INFO", "nosuch"}), p({"TIME", "x"}), p({"EXEC"});
  return out;
}

}  // namespace

TEST_CASE("MULTI, EXEC, DISCARD, WATCH and UNWATCH follow Redis's rules", "[transactions]") {
  for (int proto : {2, 3}) {
    INFO("RESP" << proto);
    std::vector<std::pair<std::string, std::string>> want, got;
    {
      ServerProcess redis{{"--databases", "1"}, REDIS_SERVER_PATH};
      want = transaction_scenario(redis.port(), proto);
    }
    {
      ServerProcess ringkv;
      got = transaction_scenario(ringkv.port(), proto);
    }
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("step " << i << ": " << want[i].first);
      CHECK(got[i].first == want[i].first);
      CHECK(printable(got[i].second) == printable(want[i].second));
    }
  }
}

TEST_CASE("WATCH with a concurrent modifier: optimistic locking counts exactly", "[transactions]") {
  ServerProcess server({"--io-threads", "4"});
  const int kClients = 8, kEach = 60;
  std::atomic<int> aborted{0}, unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {  // no Catch2 assertions off the main thread: count surprises
      Client c(server.port());
      for (int i = 0; i < kEach && unexpected == 0; ++i) {
        for (int attempt = 0; attempt < 10000; ++attempt) {  // optimistic locking's retry loop
          if (c.call({"WATCH", "counter"}) != kOk) ++unexpected;
          Node v = parse(c.call({"GET", "counter"}));
          int64_t n = v.text == "(nil)" ? 0 : std::stoll(v.text);
          if (c.call({"MULTI"}) != kOk) ++unexpected;
          if (c.call({"SET", "counter", std::to_string(n + 1)}) != "+QUEUED\r\n") ++unexpected;
          std::string r = c.call({"EXEC"});
          if (r == "*1\r\n+OK\r\n") break;
          if (r != "*-1\r\n") ++unexpected;
          ++aborted;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(unexpected == 0);
  Client c(server.port());
  CHECK(c.call({"GET", "counter"}) == bulk(std::to_string(kClients * kEach)));
  INFO("aborted transactions: " << aborted.load());
}
