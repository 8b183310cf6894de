#include "cluster/http_client.h"

#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/strings.h"

namespace ringkv::cluster {

namespace {

class Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

  Status connect(const std::string& host, int port, int timeout_ms) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) return Status::unreachable(host + ": " + gai_strerror(rc));
    Status last = Status::unreachable(host + ":" + std::to_string(port) + ": no address");
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        freeaddrinfo(res);
        return Status::ok();
      }
      last = Status::unreachable(host + ":" + std::to_string(port) + ": " + std::strerror(errno));
      ::close(fd);
    }
    freeaddrinfo(res);
    return last;
  }

  Status send_all(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return Status::io_error(std::string("send: ") + std::strerror(errno));
      off += static_cast<size_t>(n);
    }
    return Status::ok();
  }

  // Appends what arrives to buf; 0 on close, <0 on error/timeout.
  ssize_t read_some(std::string* buf) {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) buf->append(tmp, static_cast<size_t>(n));
    return n;
  }

 private:
  int fd_ = -1;
};

std::string request(const std::string& host, int port, const std::string& path,
                    const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

struct Head {
  int status = 0;
  bool chunked = false;
  int64_t content_length = -1;
  size_t body_start = 0;
};

bool parse_head(const std::string& buf, Head* h) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  h->body_start = end + 4;
  std::string head = to_lower(buf.substr(0, end));
  if (head.size() > 12) h->status = std::atoi(head.c_str() + 9);
  h->chunked = head.find("transfer-encoding: chunked") != std::string::npos;
  size_t cl = head.find("content-length:");
  if (cl != std::string::npos) h->content_length = std::atoll(head.c_str() + cl + 15);
  return true;
}

// Extracts complete chunks from `raw` (starting at *pos) into out; returns false at the last chunk.
bool next_chunk(const std::string& raw, size_t* pos, std::string* out, bool* complete) {
  *complete = false;
  size_t le = raw.find("\r\n", *pos);
  if (le == std::string::npos) return true;
  size_t size = std::strtoul(raw.c_str() + *pos, nullptr, 16);
  if (raw.size() < le + 2 + size + 2) return true;
  *out = raw.substr(le + 2, size);
  *pos = le + 2 + size + 2;
  *complete = true;
  return size != 0;
}

}  // namespace

Result<std::string> http_post(const std::string& host, int port, const std::string& path,
                              const std::string& body, int timeout_ms) {
  Socket s;
  Status st = s.connect(host, port, timeout_ms);
  if (!st) return st;
  st = s.send_all(request(host, port, path, body));
  if (!st) return st;
  std::string buf;
  for (;;) {
    ssize_t n = s.read_some(&buf);
    if (n < 0) return Status::timed_out("etcd " + host + ":" + std::to_string(port) + path + " did not answer");
    if (n == 0) break;
  }
  Head h;
  if (!parse_head(buf, &h)) return Status::io_error("etcd: malformed HTTP response");
  std::string out;
  if (h.chunked) {
    size_t pos = h.body_start;
    std::string chunk;
    bool complete = true;
    while (complete) {
      if (!next_chunk(buf, &pos, &chunk, &complete)) break;
      if (complete) out += chunk;
    }
  } else {
    out = buf.substr(h.body_start);
  }
  if (h.status < 200 || h.status >= 300)
    return Status::refused("etcd " + path + " answered HTTP " + std::to_string(h.status) + ": " + out);
  return out;
}

Status http_stream(const std::string& host, int port, const std::string& path,
                   const std::string& body, int timeout_ms, const std::atomic<bool>* stop,
                   const std::function<bool(const std::string&)>& on_chunk) {
  Socket s;
  Status st = s.connect(host, port, timeout_ms);
  if (!st) return st;
  st = s.send_all(request(host, port, path, body));
  if (!st) return st;
  std::string buf;
  Head h;
  bool have_head = false;
  size_t pos = 0;
  while (!(stop && stop->load())) {
    pollfd p{s.fd(), POLLIN, 0};
    int pr = ::poll(&p, 1, timeout_ms);
    if (pr == 0) continue;
    if (pr < 0) return Status::io_error("poll");
    ssize_t n = s.read_some(&buf);
    if (n == 0) return Status::ok();
    if (n < 0) return Status::io_error("etcd watch stream broke");
    if (!have_head) {
      if (!parse_head(buf, &h)) continue;
      have_head = true;
      if (h.status < 200 || h.status >= 300) return Status::refused("etcd watch: HTTP " + std::to_string(h.status));
      pos = h.body_start;
    }
    std::string chunk;
    bool complete = true;
    while (complete) {
      if (!next_chunk(buf, &pos, &chunk, &complete)) return Status::ok();
      if (complete && !chunk.empty() && !on_chunk(chunk)) return Status::ok();
    }
    if (pos > 65536) {
      buf.erase(0, pos);
      pos = 0;
    }
  }
  return Status::ok();
}

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool base64_decode(std::string_view in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  out->assign(3 * in.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t len = static_cast<size_t>(n);
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() > 1 && in[in.size() - 2] == '=') --len;
  out->resize(len);
  return true;
}

}  // namespace ringkv::cluster
