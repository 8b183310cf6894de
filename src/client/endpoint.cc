#include "client/endpoint.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/strings.h"

namespace ringkv::client {

namespace {

// How long at least a server that failed is tried last by other requests (see mark_failed).
constexpr int64_t kFailedPenaltyMs = 1000;

timeval to_timeval(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

bool text_is_errno(const char* text, int err) { return std::strcmp(text, std::strerror(err)) == 0; }

}  // namespace

int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status context_error(std::string_view address, const redisContext* c, std::string_view phase,
                     bool connecting) {
  std::string where = std::string(address) + ": " + std::string(phase) + ": ";
  if (c == nullptr) return Status::unreachable(where + "out of memory creating the connection");
  std::string text = c->errstr;
  // hiredis keeps strerror(errno) as the text of an I/O error; a socket timeout (SO_RCVTIMEO,
  // SO_SNDTIMEO) reads back as EAGAIN, a connect timeout as ETIMEDOUT.
  bool timeout = c->err == REDIS_ERR_IO &&
                 (text_is_errno(c->errstr, EAGAIN) || text_is_errno(c->errstr, EWOULDBLOCK) ||
                  text_is_errno(c->errstr, ETIMEDOUT) || text_is_errno(c->errstr, EINPROGRESS));
  if (connecting) {
    return Status::unreachable(
        where + (timeout ? "no connection within the connect timeout (" + text + ")" : text));
  }
  if (timeout) return Status::timed_out(where + "no reply within the command timeout");
  if (c->err == REDIS_ERR_EOF) return Status::io_error(where + "the server closed the connection");
  if (c->err == REDIS_ERR_PROTOCOL) return Status::io_error(where + "protocol error: " + text);
  return Status::io_error(where + text);
}

bool is_transient_error(std::string_view text) {
  return text.starts_with("TRYAGAIN") || text.starts_with("LOADING") ||
         text.starts_with("CLUSTERDOWN");
}

bool split_host_port(std::string_view address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) return false;
  // No host name or address holds a space or a control character (" 127.0.0.1:6379" is a typo,
  // not a host to look up).
  for (char ch : h)
    if (static_cast<unsigned char>(ch) <= ' ' || ch == '\x7f') return false;
  int64_t p;
  if (!parse_int64(address.substr(colon + 1), &p) || p <= 0 || p > 65535) return false;
  *host = std::string(h);
  *port = static_cast<int>(p);
  return true;
}

// ---------------------------------------------------------------- Lease

Lease::~Lease() {
  if (!ctx_) return;
  if (broken_ || ctx_->err != 0 || !ep_) return;  // ContextPtr closes it
  ep_->give_back(std::move(ctx_));
}

// ---------------------------------------------------------------- Endpoint

Result<ContextPtr> Endpoint::open_connection() {
  ContextPtr c(
      redisConnectWithTimeout(host_.c_str(), port_, to_timeval(settings_->connect_timeout_ms)));
  if (!c || c->err != 0) return context_error(address_, c.get(), "connecting", true);
  if (redisSetTimeout(c.get(), to_timeval(settings_->command_timeout_ms)) != REDIS_OK)
    return context_error(address_, c.get(), "setting the command timeout", true);
  if (!settings_->password.empty()) {
    const char* argv[] = {"AUTH", settings_->password.data()};
    size_t lens[] = {4, settings_->password.size()};
    ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c.get(), 2, argv, lens)));
    if (!r) return context_error(address_, c.get(), "authenticating", false);
    if (r->type == REDIS_REPLY_ERROR)
      return Status::refused(address_ + ": " + std::string(reply_text(r.get())));
  }
  return c;
}

Result<Lease> Endpoint::checkout() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      ContextPtr c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(shared_from_this(), std::move(c), true);
    }
  }
  return connect_fresh_pooled();
}

Result<Lease> Endpoint::connect_fresh_pooled() {
  auto c = open_connection();
  if (!c) return c.status();
  return Lease(shared_from_this(), std::move(c).value(), false);
}

Result<Lease> Endpoint::connect_fresh() {
  auto c = open_connection();
  if (!c) return c.status();
  return Lease(nullptr, std::move(c).value(), false);
}

void Endpoint::give_back(ContextPtr ctx) {
  std::lock_guard lock(mu_);
  if (idle_.size() < settings_->pool_size) idle_.push_back(std::move(ctx));
  // else: ctx closes here; the pool keeps at most pool_size idle connections.
}

void Endpoint::mark_failed() {
  // At least twice the command timeout: a hung server (stopped, or partitioned without resets)
  // costs a whole timeout to whichever request tries it, so it is tried at most once in three
  // such periods rather than nearly all the time.
  const int64_t penalty =
      std::max<int64_t>(kFailedPenaltyMs, 2 * int64_t{settings_->command_timeout_ms});
  failed_until_ms_.store(monotonic_ms() + penalty, std::memory_order_relaxed);
  drop_idle();
}

void Endpoint::drop_idle() {
  std::vector<ContextPtr> dead;
  {
    std::lock_guard lock(mu_);
    dead.swap(idle_);
  }
  // dead closes here, outside the lock.
}

}  // namespace ringkv::client
