// One server as the client sees it: its address, a pool of hiredis connections to it, and a short
// memory of a recent failure so other requests try it last. Also the translation of hiredis
// errors and error replies into Status values.
#pragma once

#include <hiredis/hiredis.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ringkv/status.h"

namespace ringkv::client {

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const {
    if (c != nullptr) redisFree(c);
  }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

// What every connection needs; fixed when the client opens.
struct ConnectSettings {
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 5000;
  size_t pool_size = 4;
  std::string password;
};

// Milliseconds on a monotonic clock.
int64_t monotonic_ms();

// The Status for a context whose err is set. `phase` says what the client was doing ("connecting",
// "sending GET", ...). A connect-phase failure is kUnreachable; a read or write that timed out is
// kTimedOut; anything else after the connection was made is kIoError.
Status context_error(std::string_view address, const redisContext* c, std::string_view phase,
                     bool connecting);

// The text of an error reply.
inline std::string_view reply_text(const redisReply* r) {
  return r->str != nullptr ? std::string_view(r->str, r->len) : std::string_view();
}

// Error replies that mean "the cluster could not do it right now, try again (maybe elsewhere)":
// the owner of the key did not answer, or the node is still loading.
bool is_transient_error(std::string_view text);

class Endpoint;

// A checked-out connection. Returns itself to its endpoint's pool when destroyed, unless it was
// marked broken (then it is closed).
class Lease {
 public:
  Lease() = default;
  Lease(std::shared_ptr<Endpoint> ep, ContextPtr ctx, bool reused)
      : ep_(std::move(ep)), ctx_(std::move(ctx)), reused_(reused) {}
  Lease(Lease&&) = default;
  Lease& operator=(Lease&&) = default;
  ~Lease();

  redisContext* get() const { return ctx_.get(); }
  // True when the connection came from the pool (it may have been closed by the server since).
  bool reused() const { return reused_; }
  // The connection is in an unknown state (an error, a timeout, unread replies): close it.
  void mark_broken() { broken_ = true; }

 private:
  std::shared_ptr<Endpoint> ep_;
  ContextPtr ctx_;
  bool reused_ = false;
  bool broken_ = false;
};

class Endpoint : public std::enable_shared_from_this<Endpoint> {
 public:
  Endpoint(std::string address, std::string host, int port, const ConnectSettings* settings)
      : address_(std::move(address)), host_(std::move(host)), port_(port), settings_(settings) {}
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const std::string& address() const { return address_; }

  // An idle pooled connection, or a new one (connected, timeouts set, authenticated). Errors:
  // kUnreachable (no TCP connection), kRefused (AUTH refused: the server's text), kTimedOut /
  // kIoError (AUTH did not complete). The network work happens without any lock held.
  Result<Lease> checkout();
  // A new connection that never goes back to the pool (for admin commands, which must not be
  // resent on a connection that may have gone stale).
  Result<Lease> connect_fresh();

  // Remembers a failure: for a short while requests try this server last, and the idle
  // connections (likely dead too) are closed.
  void mark_failed();
  // Closes the idle connections (one of them turned out to be stale) without the penalty.
  void drop_idle();
  bool recently_failed(int64_t now_ms) const {
    return failed_until_ms_.load(std::memory_order_relaxed) > now_ms;
  }

  // Called by Lease.
  void give_back(ContextPtr ctx);

 private:
  Result<ContextPtr> open_connection();
  Result<Lease> connect_fresh_pooled();

  const std::string address_;
  const std::string host_;
  const int port_;
  const ConnectSettings* settings_;  // owned by the client, outlives every endpoint

  std::mutex mu_;
  std::vector<ContextPtr> idle_;  // guarded by mu_
  std::atomic<int64_t> failed_until_ms_{0};
};

// Splits "host:port" ("[v6]:port" too). False when malformed.
bool split_host_port(std::string_view address, std::string* host, int* port);

}  // namespace ringkv::client
