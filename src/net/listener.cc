#include "net/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ringkv::net {

Listener::Listener(EventLoop& loop, Service& service, const ConnectionLimits& limits,
                   std::atomic<uint64_t>& next_id)
    : loop_(loop), net_(loop, service, limits), next_id_(next_id) {
  hook_ = loop_.add_stop_hook([this] {
    hook_ = 0;
    close_all();
  });
}

Listener::~Listener() {
  if (hook_ != 0) loop_.remove_stop_hook(hook_);
}

Status Listener::listen(const std::string& host, int port, int backlog) {
  sockaddr_storage ss{};
  std::string h = host == "*" ? "0.0.0.0" : host;
  int family = AF_INET;
  if (uv_ip4_addr(h.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss)) != 0) {
    if (uv_ip6_addr(h.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
      return Status::invalid_argument("bind: '" + host + "' is not an IPv4 or IPv6 address");
    }
    family = AF_INET6;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    ::close(fd);
    return Status::io_error("Could not create server TCP listening socket " + host + ":" +
                            std::to_string(port) + ": bind: " + std::strerror(e));
  }
  auto* server = new uv_tcp_t;
  uv_tcp_init(loop_.uv(), server);
  server->data = this;
  int rc = uv_tcp_open(server, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(server), backlog, &Listener::on_connection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(server),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return Status::io_error("listen on " + host + ":" + std::to_string(port) + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int blen = sizeof bound;
  uv_tcp_getsockname(server, reinterpret_cast<sockaddr*>(&bound), &blen);
  bound_port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  servers_.push_back(server);
  return Status::ok();
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0) {
    LOG_WARNING("Accepting client connection: %s", uv_strerror(status));
    return;
  }
  uint64_t id = self->next_id_.fetch_add(1, std::memory_order_relaxed);
  auto conn = std::make_shared<Connection>(self->net_, id);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(conn->tcp())) != 0) {
    // Nothing was accepted: the handle still has to be closed through the normal path.
    conn->start(conn);
    conn->close();
    return;
  }
  conn->start(conn);
}

void Listener::close_all() {
  for (uv_tcp_t* s : servers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(s), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
  servers_.clear();
  std::vector<Connection*> conns(net_.connections.begin(), net_.connections.end());
  for (Connection* c : conns) c->close();
}

}  // namespace ringkv::net
