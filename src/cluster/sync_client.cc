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

Result<std::vector<SyncReply>> SyncClient::call_many(
    const std::string& address, const std::vector<std::vector<std::string>>& requests,
    int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  int t = timeout_ms > 0 ? timeout_ms : timeout_ms_;
  timeval tv{t / 1000, (t % 1000) * 1000};
  Status error;
  redisContext* c = connect_locked(address, tv, &error);
  if (c == nullptr) return error;
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
  std::vector<SyncReply> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) {
      std::string why = c->errstr;
      redisFree(c);
      conns_.erase(address);
      return Status::unreachable(address + ": " + why);
    }
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
  int t = timeout_ms > 0 ? timeout_ms : timeout_ms_;
  timeval tv{t / 1000, (t % 1000) * 1000};
  Status error;
  redisContext* c = connect_locked(address, tv, &error);
  if (c == nullptr) return error;
  redisSetTimeout(c, tv);
  // Replies are read from the socket here, past hiredis's reader: it must hold nothing.
  if (c->reader->len > c->reader->pos) return fail_locked(address, c, "unexpected data");
  for (const auto& args : requests) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
  }
  int written = 0;
  while (!written)
    if (redisBufferWrite(c, &written) != REDIS_OK) return fail_locked(address, c, c->errstr);
  std::vector<std::string> out;
  std::string buf;
  size_t off = 0;
  constexpr size_t kChunk = 256 * 1024;
  while (out.size() < requests.size()) {
    int64_t n = off < buf.size() ? resp::scan_reply(buf.data() + off, buf.size() - off) : 0;
    if (n < 0) return fail_locked(address, c, "protocol error in a reply");
    if (n > 0) {
      out.emplace_back(buf, off, static_cast<size_t>(n));
      off += static_cast<size_t>(n);
      continue;
    }
    if (off > 0) {
      buf.erase(0, off);
      off = 0;
    }
    size_t have = buf.size();
    buf.resize(have + kChunk);
    ssize_t got = ::read(c->fd, buf.data() + have, kChunk);
    if (got <= 0) {
      buf.resize(have);
      if (got < 0 && errno == EINTR) continue;
      std::string why = got == 0                                    ? "connection closed"
                        : (errno == EAGAIN || errno == EWOULDBLOCK) ? "timed out"
                                                                    : std::strerror(errno);
      return fail_locked(address, c, why);
    }
    buf.resize(have + static_cast<size_t>(got));
  }
  if (off < buf.size()) return fail_locked(address, c, "unexpected data after the replies");
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
