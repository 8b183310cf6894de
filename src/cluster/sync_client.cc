#include "cluster/sync_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cluster/ring_config.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

class SyncClient::Lease {
 public:
  Lease() = default;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    if (c_) owner_->give_back(address_, c_);
  }
  redisContext* get() const { return c_; }
  // Closes the connection (a failed call leaves it in an unknown state) and says why. Unless it
  // timed out, the peer closed it (a restart, most likely): the idle connections to that
  // address go too, so that the next call opens a new one rather than find them dead in turn.
  Status fail(const std::string& why) {
    owner_->discard(c_);
    c_ = nullptr;
    if (why != "timed out") owner_->forget_idle(address_);
    return Status::unreachable(address_ + ": " + why);
  }
  // Why a hiredis call on this connection failed; errno is the one the call left.
  std::string why(int err) const {
    if (c_->err == REDIS_ERR_IO && (err == EAGAIN || err == EWOULDBLOCK)) return "timed out";
    return c_->errstr;
  }

 private:
  friend class SyncClient;
  SyncClient* owner_ = nullptr;
  std::string address_;
  redisContext* c_ = nullptr;
};

SyncClient::~SyncClient() {
  for (auto& [a, conns] : idle_)
    for (redisContext* c : conns) redisFree(c);
}

namespace {
const char kShuttingDown[] = "this node is shutting down";
}  // namespace

void SyncClient::forget_idle(const std::string& address) {
  std::vector<redisContext*> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = idle_.find(address);
    if (it == idle_.end()) return;
    stale.swap(it->second);
  }
  for (redisContext* c : stale) redisFree(c);
}

Status SyncClient::take(const std::string& address, int timeout_ms, Lease* lease) {
  int t = timeout_ms > 0 ? timeout_ms : timeout_ms_;
  timeval tv{t / 1000, (t % 1000) * 1000};
  lease->owner_ = this;
  lease->address_ = address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return Status::unreachable(address + ": " + kShuttingDown);
    auto it = idle_.find(address);
    if (it != idle_.end() && !it->second.empty()) {
      lease->c_ = it->second.back();
      it->second.pop_back();
      leased_fds_.insert(lease->c_->fd);
    }
  }
  if (lease->c_ == nullptr) {
    std::string host;
    int port;
    if (!split_address(address, &host, &port))
      return Status::invalid_argument("bad address '" + address + "'");
    redisContext* nc = redisConnectWithTimeout(host.c_str(), port, tv);
    std::string pass;
    if (nc == nullptr || nc->err) {
      std::string why = nc ? nc->errstr : "out of memory";
      if (nc) redisFree(nc);
      return Status::unreachable(address + ": " + why);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shut_down_) {
        redisFree(nc);
        return Status::unreachable(address + ": " + kShuttingDown);
      }
      leased_fds_.insert(nc->fd);
      pass = password_;
    }
    // A peer that accepts but never answers (stopped, overloaded) must not hold the handshake
    // forever either.
    redisSetTimeout(nc, tv);
    if (!pass.empty()) {
      auto* r = static_cast<redisReply*>(redisCommand(nc, "AUTH %b", pass.data(), pass.size()));
      if (r) freeReplyObject(r);
    }
    auto* r = static_cast<redisReply*>(
        redisCommand(nc, "RINGKV.HELLO %b 2", my_id_.data(), my_id_.size()));
    if (r) freeReplyObject(r);
    lease->c_ = nc;
    if (nc->err) return lease->fail(lease->why(errno));
  }
  redisSetTimeout(lease->c_, tv);
  return Status::ok();
}

void SyncClient::give_back(const std::string& address, redisContext* c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    leased_fds_.erase(c->fd);
    auto& conns = idle_[address];
    if (c->err == 0 && !shut_down_ && conns.size() < kMaxIdlePerAddress) {
      conns.push_back(c);
      return;
    }
  }
  redisFree(c);
}

void SyncClient::discard(redisContext* c) {
  {
    // Out of the set before the socket is closed: shutdown() never touches a closed one.
    std::lock_guard<std::mutex> lock(mu_);
    leased_fds_.erase(c->fd);
  }
  redisFree(c);
}

void SyncClient::shutdown() {
  std::map<std::string, std::vector<redisContext*>> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    // The calls' blocking reads and writes return at once: EOF or EPIPE.
    for (int fd : leased_fds_) ::shutdown(fd, SHUT_RDWR);
    idle.swap(idle_);
  }
  for (auto& [a, conns] : idle)
    for (redisContext* c : conns) redisFree(c);
}

namespace {
void append_commands(redisContext* c, const std::vector<std::vector<std::string>>& requests) {
  for (const auto& args : requests) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
  }
}
}  // namespace

Result<std::vector<SyncReply>> SyncClient::call_many(
    const std::string& address, const std::vector<std::vector<std::string>>& requests,
    int timeout_ms) {
  Lease lease;
  Status st = take(address, timeout_ms, &lease);
  if (!st) return st;
  redisContext* c = lease.get();
  append_commands(c, requests);
  std::vector<SyncReply> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) return lease.fail(lease.why(errno));
    out.emplace_back(static_cast<redisReply*>(r));
  }
  return out;
}

Result<std::vector<std::string>> SyncClient::call_many_raw(
    const std::string& address, const std::vector<std::vector<std::string>>& requests,
    int timeout_ms) {
  Lease lease;
  Status st = take(address, timeout_ms, &lease);
  if (!st) return st;
  redisContext* c = lease.get();
  append_commands(c, requests);
  // Replies are read from the socket here, past hiredis's reader: it must hold nothing.
  if (c->reader->len > c->reader->pos) return lease.fail("unexpected data");
  int written = 0;
  while (!written)
    if (redisBufferWrite(c, &written) != REDIS_OK) return lease.fail(lease.why(errno));
  std::vector<std::string> out;
  // buf[off, len) holds bytes read and not yet framed; buf grows only when a reply outgrows it.
  std::string buf(256 * 1024, '\0');
  size_t off = 0, len = 0;
  while (out.size() < requests.size()) {
    int64_t n = off < len ? resp::scan_reply(buf.data() + off, len - off) : 0;
    if (n < 0) return lease.fail("protocol error in a reply");
    if (n > 0) {
      out.emplace_back(buf, off, static_cast<size_t>(n));
      off += static_cast<size_t>(n);
      continue;
    }
    if (off > 0) {
      std::memmove(buf.data(), buf.data() + off, len - off);
      len -= off;
      off = 0;
    }
    if (len == buf.size()) buf.resize(buf.size() * 2);
    ssize_t got = ::read(c->fd, buf.data() + len, buf.size() - len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      std::string why = got == 0                                    ? "connection closed"
                        : (errno == EAGAIN || errno == EWOULDBLOCK) ? "timed out"
                                                                    : std::strerror(errno);
      return lease.fail(why);
    }
    len += static_cast<size_t>(got);
  }
  if (off < len) return lease.fail("unexpected data after the replies");
  return out;
}

Result<SyncReply> SyncClient::call(const std::string& address, const std::vector<std::string>& args,
                                   int timeout_ms) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    Lease lease;
    Status st = take(address, timeout_ms, &lease);
    if (!st) return st;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    SyncReply reply(static_cast<redisReply*>(
        redisCommandArgv(lease.get(), static_cast<int>(args.size()), argv.data(), lens.data())));
    if (!reply) {
      std::string why = lease.why(errno);
      Status failed = lease.fail(why);
      // A pooled connection the peer closed since (a restart): once more on a new one. A
      // timeout is not retried: the peer is there and slow.
      if (attempt == 0 && why != "timed out") continue;
      return failed;
    }
    if (reply->type == REDIS_REPLY_ERROR)
      return Status::refused(std::string(reply->str, reply->len));
    return reply;
  }
  return Status::unreachable(address + ": no reply");
}

}  // namespace ringkv::cluster
