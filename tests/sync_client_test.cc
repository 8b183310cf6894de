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

namespace {

// A listening loopback socket; accepted connections are read and answered by the test.
class FakePeer {
 public:
  FakePeer() {
    fd_ = testing::listen_loopback(&port_);
    REQUIRE(fd_ >= 0);
  }
  ~FakePeer() {
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Accepts the next connection (waiting up to 10 s); -1 if none came.
  int accept_one() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return -1;
    int c = ::accept(fd_, nullptr, nullptr);
    if (c >= 0) conns_.push_back(c);
    return c;
  }
  // Whether a connection waits to be accepted now (a client connected and was not accepted).
  bool connection_pending() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  // Reads from c until `text` has arrived (waiting up to 10 s in all); what was read.
  static std::string read_until(int c, const std::string& text) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.find(text) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[4096];
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // Bytes c has received and not yet read, without waiting.
  static std::string read_now(int c) {
    std::string got;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(c, buf, sizeof buf, MSG_DONTWAIT)) > 0)
      got.append(buf, static_cast<size_t>(n));
    return got;
  }
  static void reply(int c, const std::string& resp) {
    REQUIRE(::write(c, resp.data(), resp.size()) == static_cast<ssize_t>(resp.size()));
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> conns_;
};

// Accepts the client's connection and answers its handshake (RINGKV.HELLO); the connection.
int accept_and_greet(FakePeer& peer) {
  int c = peer.accept_one();
  REQUIRE(c >= 0);
  // RINGKV.HELLO <id> 2: its last argument is the protocol.
  std::string hello = FakePeer::read_until(c, "\r\n$1\r\n2\r\n");
  REQUIRE(hello.find("RINGKV.HELLO") != std::string::npos);
  REQUIRE(hello.find("\r\n$1\r\n2\r\n") != std::string::npos);
  FakePeer::reply(c, "+OK\r\n");
  return c;
}

}  // namespace

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
