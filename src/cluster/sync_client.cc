#include "cluster/sync_client.h"

#include "cluster/ring_config.h"

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
