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
  // Sockets still open (start-up failed before the loop ran) are closed here and freed when the
  // loop's destructor runs it to the end.
  for (Socket* s : servers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s->tcp),
             [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
  }
}

namespace {
// host:port as a socket address (IPv4 or IPv6 literal, "*" for every IPv4 address).
bool parse_bind(const std::string& host, int port, sockaddr_storage* ss, int* family) {
  std::string h = host == "*" ? "0.0.0.0" : host;
  *family = AF_INET;
  if (uv_ip4_addr(h.c_str(), port, reinterpret_cast<sockaddr_in*>(ss)) == 0) return true;
  *family = AF_INET6;
  return uv_ip6_addr(h.c_str(), port, reinterpret_cast<sockaddr_in6*>(ss)) == 0;
}

Status bind_error(const std::string& host, int port, int err) {
  return Status::io_error("Could not create server TCP listening socket " + host + ":" +
                          std::to_string(port) + ": bind: " + std::strerror(err));
}
}  // namespace

Status Listener::check_port_free(const std::string& host, int port) {
  sockaddr_storage ss{};
  int family;
  if (!parse_bind(host, port, &ss, &family))
    return Status::invalid_argument("bind: '" + host + "' is not an IPv4 or IPv6 address");
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  // SO_REUSEADDR as the real sockets: a port left in TIME_WAIT is free. No SO_REUSEPORT: this
  // bind fails if any socket holds the port, whoever's it is.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::ok() : bind_error(host, port, err);
}

Status Listener::listen(const std::string& host, int port, int backlog, const TlsContextRef* tls) {
  sockaddr_storage ss{};
  int family;
  if (!parse_bind(host, port, &ss, &family))
    return Status::invalid_argument("bind: '" + host + "' is not an IPv4 or IPv6 address");
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
    return bind_error(host, port, e);
  }
  auto* sock = new Socket{{}, this, tls};
  uv_tcp_t* server = &sock->tcp;
  uv_tcp_init(loop_.uv(), server);
  server->data = sock;
  int rc = uv_tcp_open(server, fd);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(server), backlog, &Listener::on_connection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(server),
             [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    return Status::io_error("listen on " + host + ":" + std::to_string(port) + ": " +
                            uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int blen = sizeof bound;
  uv_tcp_getsockname(server, reinterpret_cast<sockaddr*>(&bound), &blen);
  if (tls == nullptr) {
    bound_port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  servers_.push_back(sock);
  return Status::ok();
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* sock = static_cast<Socket*>(server->data);
  Listener* self = sock->owner;
  if (status < 0) {
    LOG_WARNING("Accepting client connection: %s", uv_strerror(status));
    return;
  }
  uint64_t id = self->next_id_.fetch_add(1, std::memory_order_relaxed);
  auto conn = std::make_shared<Connection>(self->net_, id);
  bool refuse = false;
  if (sock->tls != nullptr) {
    // A TLS port never serves plaintext, even without a context (none is ever unset).
    std::shared_ptr<TlsContext> tls = sock->tls->get();
    if (tls)
      conn->use_tls(std::move(tls));
    else
      refuse = true;
  }
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(conn->tcp())) != 0 || refuse) {
    // Nothing was accepted: the handle still has to be closed through the normal path.
    conn->start(conn);
    conn->close();
    return;
  }
  conn->start(conn);
}

void Listener::close_all() {
  for (Socket* s : servers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s->tcp),
             [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
  }
  servers_.clear();
  std::vector<Connection*> conns(net_.connections.begin(), net_.connections.end());
  for (Connection* c : conns) c->close();
}

}  // namespace ringkv::net
