// Blocking RESP requests to other nodes, for the control and transfer threads (never an event
// loop). One cached connection per address; thread-safe.
#pragma once

#include <hiredis/hiredis.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringkv/status.h"

namespace ringkv::cluster {

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using SyncReply = std::unique_ptr<redisReply, ReplyDeleter>;

class SyncClient {
 public:
  SyncClient(std::string my_id, std::string password, int timeout_ms)
      : my_id_(std::move(my_id)), password_(std::move(password)), timeout_ms_(timeout_ms) {}
  ~SyncClient();

  // One request to address; an error reply is returned as Status::refused with its text.
  Result<SyncReply> call(const std::string& address, const std::vector<std::string>& args,
                         int timeout_ms = 0);
  // Pipelines several requests on one connection: all are written, then all replies read.
  Result<std::vector<SyncReply>> call_many(const std::string& address,
                                           const std::vector<std::vector<std::string>>& requests,
                                           int timeout_ms = 0);
  // As call_many, but each reply comes back as its raw RESP bytes, framed and not decoded: for
  // large array replies (range transfers), where hiredis would allocate an object per element.
  Result<std::vector<std::string>> call_many_raw(
      const std::string& address, const std::vector<std::vector<std::string>>& requests,
      int timeout_ms = 0);
  void forget(const std::string& address);

 private:
  redisContext* connect_locked(const std::string& address, timeval tv, Status* error);
  // Connects (or reuses the connection) and queues the requests in hiredis's output buffer.
  redisContext* send_many_locked(const std::string& address,
                                 const std::vector<std::vector<std::string>>& requests,
                                 int timeout_ms, Status* error);
  // Drops the connection to address; returns why as an unreachable status.
  Status fail_locked(const std::string& address, redisContext* c, const std::string& why);

  std::string my_id_, password_;
  int timeout_ms_;
  std::mutex mu_;
  std::map<std::string, redisContext*> conns_;
};

}  // namespace ringkv::cluster
