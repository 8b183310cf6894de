// Tests for cluster::PeerLink, a node's pipelined link to a peer, against a fake peer that this
// test drives by hand.
#include "cluster/peer_link.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "loopback.h"
#include "net/loop.h"

using namespace ringkv;
using ringkv::testing::FakePeer;

namespace {

struct Outcome {
  bool ok = false;
  std::string reply;
};

// A loop thread that owns one link to `address` (created and destroyed on the loop's thread).
struct LinkOnLoop {
  net::EventLoop loop;
  std::unique_ptr<cluster::PeerLink> link;
  LinkOnLoop(const std::string& address, int timeout_ms) {
    loop.start("peer-link-test");
    cluster::PeerLink::Options o;
    o.my_id = "n1";
    o.timeout_ms = timeout_ms;
    run([&] { link = std::make_unique<cluster::PeerLink>(loop, "n2", address, o); });
  }
  ~LinkOnLoop() {
    run([&] { link.reset(); });
    loop.stop();
    loop.join();
  }
  void run(const std::function<void()>& fn) {
    std::promise<void> done;
    loop.post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  // Sends a command; the future gets its outcome.
  std::future<Outcome> send(std::vector<std::string> args) {
    auto p = std::make_shared<std::promise<Outcome>>();
    auto f = p->get_future();
    loop.post([this, p, args = std::move(args)] {
      std::vector<std::string_view> views(args.begin(), args.end());
      link->send(views, [p](bool ok, std::string_view reply) {
        p->set_value(Outcome{ok, std::string(reply)});
      });
    });
    return f;
  }
};

// Accepts the link's connection, reads until `last` (the handshake and the requests come in one
// write) and answers the handshake; the connection.
int accept_requests(FakePeer& peer, const std::string& last) {
  int c = peer.accept_one();
  REQUIRE(c >= 0);
  std::string got = FakePeer::read_until(c, last);
  REQUIRE(got.find("RINGKV.HELLO") != std::string::npos);
  REQUIRE(got.find(last) != std::string::npos);
  FakePeer::reply(c, "+OK\r\n");
  return c;
}

}  // namespace

TEST_CASE("a peer link does not time out requests while the peer keeps sending a long reply") {
  FakePeer peer;
  LinkOnLoop l(peer.address(), 300);
  auto big = l.send({"GET", "big"});
  auto small = l.send({"INCR", "counter"});
  int c = accept_requests(peer, "counter");
  // The first reply comes slowly, a piece every 100 ms for 1.5 s: far longer than the link's
  // 300 ms timeout, but the peer never goes 300 ms without sending.
  const std::string value(15, 'v');
  FakePeer::reply(c, "$" + std::to_string(value.size()) + "\r\n");
  for (char ch : value) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    FakePeer::reply(c, std::string(1, ch));
  }
  FakePeer::reply(c, "\r\n:1\r\n");
  REQUIRE(big.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(small.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Outcome b = big.get(), s = small.get();
  INFO(b.reply << " / " << s.reply);
  CHECK(b.ok);
  CHECK(b.reply == "$15\r\n" + value + "\r\n");
  CHECK(s.ok);
  CHECK(s.reply == ":1\r\n");
}

TEST_CASE("a peer link fails its requests once the peer sent nothing for the timeout") {
  FakePeer peer;
  LinkOnLoop l(peer.address(), 300);
  auto first = l.send({"GET", "k"});
  accept_requests(peer, "$1\r\nk\r\n");
  // The peer never answers.
  REQUIRE(first.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Outcome o = first.get();
  CHECK_FALSE(o.ok);
  CHECK(o.reply == "peer n2 (" + peer.address() + ") failed: no reply within 300 ms");
}

TEST_CASE("a peer given by host name is resolved") {
  FakePeer peer;
  const std::string address = "localhost:" + std::to_string(peer.port());
  LinkOnLoop l(address, 30000);
  auto first = l.send({"GET", "k"});
  int c = accept_requests(peer, "$1\r\nk\r\n");
  FakePeer::reply(c, "$1\r\nv\r\n");
  REQUIRE(first.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Outcome o = first.get();
  CHECK(o.ok);
  CHECK(o.reply == "$1\r\nv\r\n");
}

TEST_CASE("a peer whose host name does not resolve fails its requests with the reason") {
  // .invalid never resolves (RFC 2606).
  LinkOnLoop l("no-such-host.invalid:6379", 30000);
  auto f = l.send({"GET", "k"});
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  Outcome o = f.get();
  CHECK_FALSE(o.ok);
  INFO(o.reply);
  CHECK(o.reply.rfind("peer n2 (no-such-host.invalid:6379) failed: can't resolve "
                      "'no-such-host.invalid': ",
                      0) == 0);
}
