// A plain TCP client for integration tests that must see the exact bytes a server sends (RESP3
// replies hiredis 0.14 cannot parse, protocol errors, whether and when the server closes).
// Every wait is bounded by a deadline; nothing here sleeps to synchronise.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace ringkv::testing {

// Where one RESP2/RESP3 value that starts at `pos` ends, or npos while it is incomplete.
inline size_t resp_value_end(std::string_view s, size_t pos = 0) {
  if (pos >= s.size()) return std::string_view::npos;
  size_t eol = s.find("\r\n", pos);
  if (eol == std::string_view::npos) return std::string_view::npos;
  const char t = s[pos];
  const size_t after = eol + 2;
  auto count = [&] { return std::stoll(std::string(s.substr(pos + 1, eol - pos - 1))); };
  switch (t) {
    case '$':
    case '=':
    case '!': {
      long long n = count();
      if (n < 0) return after;
      size_t end = after + static_cast<size_t>(n) + 2;
      return end <= s.size() ? end : std::string_view::npos;
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      long long n = count();
      if (n < 0) return after;
      if (t == '%') n *= 2;
      size_t p = after;
      for (long long i = 0; i < n; ++i) {
        p = resp_value_end(s, p);
        if (p == std::string_view::npos) return p;
      }
      return p;
    }
    default:  // + - : _ # , (
      return after;
  }
}

// How many complete RESP values `s` holds from its start.
inline size_t resp_value_count(std::string_view s) {
  size_t n = 0, pos = 0;
  while (pos < s.size()) {
    size_t end = resp_value_end(s, pos);
    if (end == std::string_view::npos) break;
    pos = end;
    ++n;
  }
  return n;
}

class RawClient {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // True once a read saw the end of the stream (or a reset): the server closed the connection.
  bool closed() const { return closed_; }
  // Everything received so far and not yet taken.
  std::string& buffer() { return buf_; }

  // Shrinks the kernel's receive buffer (before the server has anything to send), so that a test
  // can play a slow reader without megabytes of slack.
  void set_receive_buffer(int bytes) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }

  // Writes all of `data`; false if the peer closed or reset first. Never raises SIGPIPE.
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Writes `data` while reading whatever comes back, so that a server that answers and closes
  // in the middle of a large request neither deadlocks the test nor loses its reply. Stops at the
  // end of the data, when the peer closes, or at the deadline. Returns the bytes written.
  size_t send_reading(std::string_view data, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    size_t sent = 0;
    while (sent < data.size() && !closed_ && Clock::now() < deadline) {
      pollfd p{fd_, POLLIN | POLLOUT, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) read_once();
      if (closed_) break;
      if (p.revents & POLLOUT) {
        ssize_t n =
            ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          sent += static_cast<size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          break;  // EPIPE/ECONNRESET: what the server sent before is still read below
        }
      }
    }
    return sent;
  }

  // Reads until `done(buffer())` holds, the peer closes, or the deadline passes. Returns done's
  // final verdict.
  bool read_until(const std::function<bool(const std::string&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    auto deadline = Clock::now() + timeout;
    while (!done(buf_)) {
      if (closed_) return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
      if (r > 0) read_once();
    }
    return true;
  }

  // Reads `n` complete RESP values and returns their bytes (removing them from buffer()); returns
  // what there is if they do not arrive in time.
  std::string read_replies(size_t n,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    read_until([n](const std::string& b) { return resp_value_count(b) >= n; }, timeout);
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      size_t end = resp_value_end(buf_, pos);
      if (end == std::string_view::npos) break;
      pos = end;
    }
    std::string out = buf_.substr(0, pos);
    buf_.erase(0, pos);
    return out;
  }

  // Reads until the server closes the connection or the deadline passes; returns everything read
  // (and takes it out of buffer()). closed() says which of the two happened.
  std::string read_to_close(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    read_until([](const std::string&) { return false; }, timeout);
    std::string out;
    out.swap(buf_);
    return out;
  }

 private:
  void read_once() {
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      closed_ = true;  // EOF, or ECONNRESET: either way the server is gone from this socket
    }
  }

  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;
};

}  // namespace ringkv::testing
