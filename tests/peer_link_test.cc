// Tests for cluster::PeerLink, a node's pipelined link to a peer, against a fake peer that this
// test drives by hand.
#include "cluster/peer_link.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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
  LinkOnLoop(const std::string& address, int timeout_ms, std::function<bool()> peer_live = nullptr,
             uint32_t hold_max_us = 500) {
    loop.start("peer-link-test");
    cluster::PeerLink::Options o;
    o.my_id = "n1";
    o.timeout_ms = timeout_ms;
    o.peer_live = std::move(peer_live);
    o.hold_max_us = hold_max_us;
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

TEST_CASE("a peer link does not time out a large request while the peer keeps taking it") {
  FakePeer peer;
  // A small receive buffer, so that most of the request waits in the link's write queue.
  peer.cap_receive_buffer(128 * 1024);
  LinkOnLoop l(peer.address(), 300);
  // Connected first, so that the request below goes out as soon as it is queued.
  auto ping = l.send({"PING"});
  int c = accept_requests(peer, "PING\r\n");
  FakePeer::reply(c, "+PONG\r\n");
  REQUIRE(ping.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(ping.get().ok);
  const std::string value(16 << 20, 'v');
  auto big = l.send({"SET", "big", value});
  // The peer takes half the request slowly, at most 1 MB every 100 ms (about 0.8 s, far longer
  // than the link's 300 ms timeout, but it never stops taking bytes for 300 ms), then the rest.
  size_t received = 0;
  std::string last;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(received > value.size() && last.ends_with("vv\r\n")) &&
         std::chrono::steady_clock::now() < deadline) {
    const bool paced = received < value.size() / 2;
    if (paced) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    char buf[64 * 1024];
    for (size_t taken = 0; !paced || taken < (1u << 20);) {
      ssize_t n = ::recv(c, buf, sizeof buf, paced ? MSG_DONTWAIT : 0);
      if (n <= 0) break;
      taken += static_cast<size_t>(n);
      received += static_cast<size_t>(n);
      last.append(buf, static_cast<size_t>(n));
      if (last.size() > 16) last.erase(0, last.size() - 16);
      if (!paced && last.ends_with("vv\r\n") && received > value.size()) break;
    }
  }
  REQUIRE(received > value.size());
  FakePeer::reply(c, "+OK\r\n");
  REQUIRE(big.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Outcome o = big.get();
  INFO(o.reply);
  CHECK(o.ok);
  CHECK(o.reply == "+OK\r\n");
}

TEST_CASE("a peer link waits past its timeout for a peer that still answers heartbeats") {
  FakePeer peer;
  std::atomic<bool> live{true};
  LinkOnLoop l(peer.address(), 300, [&live] { return live.load(); });
  auto first = l.send({"GET", "k"});
  int c = accept_requests(peer, "$1\r\nk\r\n");
  // Busy with a large request, the peer sends nothing for four times the timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(first.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  FakePeer::reply(c, "$1\r\nv\r\n");
  REQUIRE(first.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Outcome o = first.get();
  CHECK(o.ok);
  CHECK(o.reply == "$1\r\nv\r\n");
  // Once the peer stops answering heartbeats, an unanswered request fails after the timeout.
  live = false;
  auto second = l.send({"GET", "k2"});
  REQUIRE(second.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Outcome o2 = second.get();
  CHECK_FALSE(o2.ok);
  CHECK(o2.reply == "peer n2 (" + peer.address() + ") failed: no reply within 300 ms");
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

namespace {
// Bytes waiting in a connected socket's receive queue, without taking them.
size_t bytes_waiting(int fd) {
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  return n > 0 ? static_cast<size_t>(n) : 0;
}
}  // namespace

TEST_CASE("a saturated loop holds a peer's requests for the next turns and an idle one does not") {
  FakePeer peer;
  // A long bound, so that only the loop's readiness decides (and a slow sanitizer build cannot
  // reach the bound between two turns).
  LinkOnLoop l(peer.address(), 5000, nullptr, 60'000'000);
  auto first = l.send({"PING"});
  int c = accept_requests(peer, "PING");
  FakePeer::reply(c, "+PONG\r\n");
  REQUIRE(first.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(first.get().reply == "+PONG\r\n");

  // Nothing else ready: the request is in the peer's socket by the end of the turn that sent it.
  size_t idle_waiting = 0;
  std::promise<void> idle_done;
  l.loop.post([&] {
    l.link->send(std::vector<std::string_view>{"GET", "idle"}, [](bool, std::string_view) {});
    l.loop.at_end_of_turn([&] {  // runs after the link's own end-of-turn flush
      idle_waiting = bytes_waiting(c);
      idle_done.set_value();
    });
  });
  idle_done.get_future().wait();
  CHECK(idle_waiting > 0);
  CHECK(FakePeer::read_until(c, "idle").find("idle") != std::string::npos);
  FakePeer::reply(c, "$-1\r\n");

  // A descriptor that stays readable (its data is never read) keeps the loop's poll ready.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  REQUIRE(::write(sv[1], "x", 1) == 1);
  auto* busy = new uv_poll_t;
  l.run([&] {
    REQUIRE(uv_poll_init(l.loop.uv(), busy, sv[0]) == 0);
    REQUIRE(uv_poll_start(busy, UV_READABLE, [](uv_poll_t*, int, int) {}) == 0);
  });
  std::promise<std::string> a_reply, b_reply;
  size_t held_waiting = 1;
  std::promise<void> held_done;
  l.loop.post([&] {
    l.link->send(std::vector<std::string_view>{"GET", "a"},
                 [&](bool, std::string_view r) { a_reply.set_value(std::string(r)); });
    l.loop.at_end_of_next_turn([&] {
      held_waiting = bytes_waiting(c);  // "a" was held at the end of its turn
      l.link->send(std::vector<std::string_view>{"GET", "b"},
                   [&](bool, std::string_view r) { b_reply.set_value(std::string(r)); });
      held_done.set_value();
    });
  });
  held_done.get_future().wait();
  CHECK(held_waiting == 0);
  // Once nothing else is ready, both go out.
  l.run([&] {
    uv_close(reinterpret_cast<uv_handle_t*>(busy),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  });
  std::string got = FakePeer::read_until(c, "$1\r\nb\r\n");
  CHECK(got.find("$1\r\na\r\n") != std::string::npos);
  FakePeer::reply(c, ":1\r\n:2\r\n");
  ::close(sv[0]);
  ::close(sv[1]);
  auto a = a_reply.get_future(), b = b_reply.get_future();
  REQUIRE(a.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(b.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(a.get() == ":1\r\n");
  CHECK(b.get() == ":2\r\n");
}
