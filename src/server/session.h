// Per-client state the server keeps on each connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "net/service.h"

namespace ringkv::server {

struct CommandSpec;

class ClientSession : public net::Session {
 public:
  uint64_t id = 0;
  std::string name;
  bool authenticated = true;
  int db = 0;
  Millis last_command_ms = 0;
  // The last command run (CLIENT LIST cmd=); pointers into the static command table, so
  // recording it costs nothing per request.
  const CommandSpec* last_spec = nullptr;
  const CommandSpec* last_parent = nullptr;
  std::string last_command() const;

  // MULTI/EXEC. Queued requests are copied: the input buffer moves on.
  bool in_multi = false;
  bool multi_dirty = false;  // a queued command was refused: EXEC aborts
  std::vector<std::vector<std::string>> queued;
  bool in_exec = false;  // EXEC is running the queued commands (Redis's CLIENT_DENY_BLOCKING)

  // CLIENT PAUSE: the request that waits for the pause to end (reading is paused meanwhile).
  std::vector<std::string> postponed;
  bool is_postponed = false;
  // Set when a request ran on this node (execute()): a request the cluster forwarded did not,
  // and the dispatcher still counts it and shows it to this node's monitors.
  bool ran_here = false;

  // WATCH: keys watched, and whether one of them changed since (set by any thread).
  std::vector<std::string> watched;
  std::atomic<bool> watch_dirty{false};

  // CLIENT REPLY OFF / SKIP.
  enum class ReplyMode { kOn, kOff, kSkip };  // kSkip: the next request gets no reply
  ReplyMode reply_mode = ReplyMode::kOn;
  bool no_evict = false;
  bool monitor = false;
  std::atomic<bool> kill_requested{false};
  std::string lib_name, lib_version;

  // Set by RINGKV.HELLO: the connection is another node's peer link. Its requests run here
  // and are never forwarded again.
  bool internal = false;
  // Opened while the clients already filled maxclients: admitted only to say, within a second,
  // that it is another node's link (AUTH, then RINGKV.HELLO); anything else is refused with
  // Redis's "max number of clients reached".
  bool over_limit = false;
  std::string peer_id;
  uint64_t peer_epoch = 0;  // the epoch the peer routed its following requests with
  // WATCH in a distributed ring: each watched key's version when it was watched.
  std::vector<std::pair<std::string, uint64_t>> watched_versions;
};

// While a transaction's commands run (EXEC, or RINGKV.EXEC on a key's owner): a command that
// would block or stream replies (MONITOR) refuses, as Redis refuses it for a
// CLIENT_DENY_BLOCKING client. Restores the session's previous state when it ends.
class ExecScope {
 public:
  explicit ExecScope(ClientSession& s) : s_(s), was_(s.in_exec) { s.in_exec = true; }
  ~ExecScope() { s_.in_exec = was_; }
  ExecScope(const ExecScope&) = delete;
  ExecScope& operator=(const ExecScope&) = delete;

 private:
  ClientSession& s_;
  bool was_;
};

}  // namespace ringkv::server
