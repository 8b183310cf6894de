// Blocking RESP requests to other nodes, for the cluster's own threads (never an event loop).
// Thread-safe: each call takes a connection to its address from a pool (or opens one) and holds
// it alone for the call, so a call that waits on a slow peer delays no other thread's calls.
// shutdown() ends the calls under way at once, so that a stopping node need not wait for their
// timeouts.
#pragma once

#include <hiredis/hiredis.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
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
  // Thread-safe: the password connections opened from now on authenticate with.
  void set_password(std::string password) {
    std::lock_guard<std::mutex> lock(mu_);
    password_ = std::move(password);
  }
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

  // Every call under way fails now (its socket is shut down) and every later call fails at
  // once, with "this node is shutting down".
  void shutdown();

 private:
  // A pooled connection held by one call; it goes back to the pool when the lease ends, unless
  // the call failed on it.
  class Lease;
  // Takes an idle connection to address, or opens one (without holding mu_).
  Status take(const std::string& address, int timeout_ms, Lease* lease);
  void give_back(const std::string& address, redisContext* c);
  // Frees a leased connection that failed.
  void discard(redisContext* c);
  // Frees the idle connections to address.
  void forget_idle(const std::string& address);

  static constexpr size_t kMaxIdlePerAddress = 4;
  std::string my_id_;
  std::string password_;  // guarded by mu_
  int timeout_ms_;
  std::mutex mu_;  // guards the three below; no I/O happens under it
  std::map<std::string, std::vector<redisContext*>> idle_;
  std::set<int> leased_fds_;  // sockets of the connections calls hold now
  bool shut_down_ = false;
};

}  // namespace ringkv::cluster
