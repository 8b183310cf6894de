// Accepts client connections on one loop. Every loop listens on the same addresses with
// SO_REUSEPORT, so the kernel spreads new connections across the loops.
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/loop.h"
#include "ringkv/status.h"

namespace ringkv::net {

class Listener {
 public:
  // Loop thread only (or before the loop runs).
  Listener(EventLoop& loop, Service& service, const ConnectionLimits& limits,
           std::atomic<uint64_t>& next_id);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Fails with Redis's "Address already in use" text when anything listens on host:port, this
  // server's other loops included. The loops bind with SO_REUSEPORT to share a port, which
  // would let a second server of the same user bind it too and take half of its connections:
  // the server calls this before its first loop binds. Any thread.
  static Status check_port_free(const std::string& host, int port);

  // Binds host:port (IPv4 or IPv6 literal, or "*" for all IPv4 addresses) and listens. With
  // `tls`, connections accepted there speak TLS with the context it holds at accept time.
  Status listen(const std::string& host, int port, int backlog, const TlsContextRef* tls = nullptr);
  // The port actually bound by the last plain listen() (useful with port 0).
  int bound_port() const { return bound_port_; }

  // Stops accepting and closes every connection of this loop. Idempotent.
  void close_all();

  LoopNet& net() { return net_; }

 private:
  struct Socket {
    uv_tcp_t tcp;
    Listener* owner;
    const TlsContextRef* tls;
  };
  static void on_connection(uv_stream_t* server, int status);

  EventLoop& loop_;
  LoopNet net_;
  std::atomic<uint64_t>& next_id_;
  std::vector<Socket*> servers_;  // freed in their close callbacks
  int bound_port_ = 0;
  size_t hook_ = 0;
};

}  // namespace ringkv::net
