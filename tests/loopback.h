// Loopback sockets for tests that play a peer by hand.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace ringkv::testing {

// A socket listening on 127.0.0.1 at a port the kernel picks (*port); -1 on failure. Connections
// to it complete in the kernel (its backlog) whether or not anyone accepts them.
inline int listen_loopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

// A listening loopback socket; accepted connections are read and answered by the test.
class FakePeer {
 public:
  FakePeer() {
    fd_ = listen_loopback(&port_);
    REQUIRE(fd_ >= 0);
  }
  ~FakePeer() {
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Caps the receive buffer of the connections accepted from now on (set before they connect,
  // so that the kernel never grows it): a peer that reads slowly then holds the sender back.
  void cap_receive_buffer(int bytes) {
    REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0);
  }

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
inline int accept_and_greet(FakePeer& peer) {
  int c = peer.accept_one();
  REQUIRE(c >= 0);
  // RINGKV.HELLO <id> 2: its last argument is the protocol.
  std::string hello = FakePeer::read_until(c, "\r\n$1\r\n2\r\n");
  REQUIRE(hello.find("RINGKV.HELLO") != std::string::npos);
  REQUIRE(hello.find("\r\n$1\r\n2\r\n") != std::string::npos);
  FakePeer::reply(c, "+OK\r\n");
  return c;
}

}  // namespace ringkv::testing
