// Tests for cluster::SyncClient, the blocking client of a node's cluster threads, against a fake
// peer that this test drives by hand: it answers the handshake and then never answers, as a
// stopped or overloaded node would.
#include "cluster/sync_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>

#include "loopback.h"

using namespace ringkv;
using ringkv::testing::accept_and_greet;
using ringkv::testing::FakePeer;

TEST_CASE("a SyncClient call that times out is not sent again") {
  FakePeer peer;
  cluster::SyncClient client("n1", "", 1000);
  auto call = std::async(std::launch::async,
                         [&] { return client.call(peer.address(), {"RINGKV.PING"}, 300); });
  int c = accept_and_greet(peer);
  CHECK(FakePeer::read_until(c, "RINGKV.PING").find("RINGKV.PING") != std::string::npos);
  // The peer never answers.
  REQUIRE(call.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto r = call.get();
  REQUIRE_FALSE(r);
  CHECK(r.status().message() == peer.address() + ": timed out");
  // A retry would have sent the request again: on a new connection (the timed-out one is closed),
  // which the kernel completes before this peer accepts it.
  CHECK_FALSE(peer.connection_pending());
  CHECK(FakePeer::read_now(c).empty());
}

TEST_CASE("SyncClient::shutdown ends a call under way at once, and refuses later calls") {
  FakePeer peer;
  cluster::SyncClient client("n1", "", 1000);
  auto call = std::async(std::launch::async, [&] {
    return client.call(peer.address(), {"RINGKV.RANGESTATS", "0", "1"}, 30000);
  });
  int c = accept_and_greet(peer);
  // The request has arrived: the call now waits for a reply that does not come.
  CHECK(FakePeer::read_until(c, "RINGKV.RANGESTATS").find("RINGKV.RANGESTATS") !=
        std::string::npos);
  client.shutdown();
  // Well within the call's 30 s timeout.
  REQUIRE(call.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto r = call.get();
  REQUIRE_FALSE(r);
  INFO(r.status().message());
  CHECK(r.status().code() == Code::kUnreachable);
  CHECK_FALSE(peer.connection_pending());

  auto later = client.call(peer.address(), {"RINGKV.PING"}, 30000);
  REQUIRE_FALSE(later);
  CHECK(later.status().message() == peer.address() + ": this node is shutting down");
  CHECK_FALSE(peer.connection_pending());
}

TEST_CASE("after a peer restarts a SyncClient call opens a new connection, past every stale one") {
  FakePeer peer;
  cluster::SyncClient client("n1", "", 5000);
  // Two calls at once leave two connections in the pool.
  auto a = std::async(std::launch::async, [&] { return client.call(peer.address(), {"A"}); });
  auto b = std::async(std::launch::async, [&] { return client.call(peer.address(), {"B"}); });
  int c1 = accept_and_greet(peer);
  int c2 = accept_and_greet(peer);
  for (int c : {c1, c2}) {
    std::string req = FakePeer::read_until(c, "\r\n$1\r\n");
    REQUIRE(!req.empty());
    FakePeer::reply(c, "+OK\r\n");
  }
  REQUIRE(a.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(b.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(a.get());
  REQUIRE(b.get());
  // The peer restarts: both pooled connections are dead.
  ::shutdown(c1, SHUT_RDWR);
  ::shutdown(c2, SHUT_RDWR);
  auto c = std::async(std::launch::async, [&] { return client.call(peer.address(), {"C"}); });
  int c3 = accept_and_greet(peer);
  FakePeer::read_until(c3, "\r\n$1\r\nC\r\n");
  FakePeer::reply(c3, "+OK\r\n");
  REQUIRE(c.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto r = c.get();
  INFO((r ? std::string("ok") : r.status().message()));
  CHECK(r);
}
