#include "cluster/sync_client.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cluster/ring_config.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

SyncClient::~SyncClient() {
  for (auto& [a, c] : conns_) redisFree(c);
}

void SyncClient::forget(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = conns_.find(address);
  if (it == conns_.end()) return;
  redisFree(it->second);
  conns_.erase(it);
}

redisContext* SyncClient::connect_locked(const std::string& address, timeval tv, Status* error) {
  redisContext*& c = conns_[address];
  if (c != nullptr && !c->err) return c;
  if (c) redisFree(c);
  c = nullptr;
  std::string host;
  int port;
  if (!split_address(address, &host, &port)) {
    conns_.erase(address);
    *error = Status::invalid_argument("bad address '" + address + "'");
    return nullptr;
  }
  redisContext* nc = redisConnectWithTimeout(host.c_str(), port, tv);
  if (nc == nullptr || nc->err) {
    std::string why = nc ? nc->errstr : "out of memory";
    if (nc) redisFree(nc);
    conns_.erase(address);
    *error = Status::unreachable(address + ": " + why);
    return nullptr;
  }
  if (!password_.empty()) {
    auto* r =
        static_cast<redisReply*>(redisCommand(nc, "AUTH %b", password_.data(), password_.size()));
    if (r) freeReplyObject(r);
  }
  auto* r =
      static_cast<redisReply*>(redisCommand(nc, "RINGKV.HELLO %b 2", my_id_.data(), my_id_.size()));
  if (r) freeReplyObject(r);
  conns_[address] = nc;
  return nc;
}

redisContext* SyncClient::send_many_locked(const std::string& address,
                                           const std::vector<std::vector<std::string>>& requests,
                                           int timeout_ms, Status* error) {
  int t = timeout_ms > 0 ? timeout_ms : timeout_ms_;
  timeval tv{t / 1000, (t % 1000) * 1000};
  redisContext* c = connect_locked(address, tv, error);
  if (c == nullptr) return nullptr;
  redisSetTimeout(c, tv);
  for (const auto& args : requests) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
  }
  return c;
}

Result<std::vector<SyncReply>> SyncClient::call_many(
    const std::string& address, const std::vector<std::vector<std::string>>& requests,
    int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Status error;
  redisContext* c = send_many_locked(address, requests, timeout_ms, &error);
  if (c == nullptr) return error;
  std::vector<SyncReply> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) return fail_locked(address, c, c->errstr);
    out.emplace_back(static_cast<redisReply*>(r));
  }
  return out;
}

Status SyncClient::fail_locked(const std::string& address, redisContext* c,
                               const std::string& why) {
  redisFree(c);
  conns_.erase(address);
  return Status::unreachable(address + ": " + why);
}

Result<std::vector<std::string>> SyncClient::call_many_raw(
    const std::string& address, const std::vector<std::vector<std::string>>& requests,
    int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Status error;
  redisContext* c = send_many_locked(address, requests, timeout_ms, &error);
  if (c == nullptr) return error;
  // Replies are read from the socket here, past hiredis's reader: it must hold nothing.
  if (c->reader->len > c->reader->pos) return fail_locked(address, c, "unexpected data");
  int written = 0;
  while (!written)
    if (redisBufferWrite(c, &written) != REDIS_OK) return fail_locked(address, c, c->errstr);
  std::vector<std::string> out;
  // buf[off, len) holds bytes read and not yet framed; buf grows only when a reply outgrows it.
  std::string buf(256 * 1024, '\0');
  size_t off = 0, len = 0;
  while (out.size() < requests.size()) {
    int64_t n = off < len ? resp::scan_reply(buf.data() + off, len - off) : 0;
    if (n < 0) return fail_locked(address, c, "protocol error in a reply");
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
      return fail_locked(address, c, why);
    }
    len += static_cast<size_t>(got);
  }
  if (off < len) return fail_locked(address, c, "unexpected data after the replies");
  return out;
}

Result<SyncReply> SyncClient::call(const std::string& address, const std::vector<std::string>& args,
                                   int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  int t = timeout_ms > 0 ? timeout_ms : timeout_ms_;
  timeval tv{t / 1000, (t % 1000) * 1000};
  for (int attempt = 0; attempt < 2; ++attempt) {
    redisContext*& c = conns_[address];
    if (c == nullptr || c->err) {
      if (c) redisFree(c);
      c = nullptr;
      std::string host;
      int port;
      if (!split_address(address, &host, &port))
        return Status::invalid_argument("bad address '" + address + "'");
      redisContext* nc = redisConnectWithTimeout(host.c_str(), port, tv);
      if (nc == nullptr || nc->err) {
        std::string why = nc ? nc->errstr : "out of memory";
        if (nc) redisFree(nc);
        conns_.erase(address);
        return Status::unreachable(address + ": " + why);
      }
      if (!password_.empty()) {
        auto* r = static_cast<redisReply*>(
            redisCommand(nc, "AUTH %b", password_.data(), password_.size()));
        if (r) freeReplyObject(r);
      }
      auto* r = static_cast<redisReply*>(
          redisCommand(nc, "RINGKV.HELLO %b 2", my_id_.data(), my_id_.size()));
      if (r) freeReplyObject(r);
      c = nc;
    }
    redisSetTimeout(c, tv);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    SyncReply reply(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data())));
    if (!reply) {
      std::string why = c->errstr;
      redisFree(c);
      conns_.erase(address);
      if (attempt == 0 && why.find("Timeout") == std::string::npos) continue;  // stale connection
      return Status::unreachable(address + ": " + why);
    }
    if (reply->type == REDIS_REPLY_ERROR)
      return Status::refused(std::string(reply->str, reply->len));
    return reply;
  }
  return Status::unreachable(address + ": no reply");
}

}  // namespace ringkv::cluster
