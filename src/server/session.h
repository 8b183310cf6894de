// Per-client state the server keeps on each connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "net/service.h"

namespace ringkv::server {

class ClientSession : public net::Session {
 public:
  uint64_t id = 0;
  std::string name;
  bool authenticated = true;
  int db = 0;
  Millis last_command_ms = 0;
  std::string last_command = "NULL";

  // MULTI/EXEC. Queued requests are copied: the input buffer moves on.
  bool in_multi = false;
  bool multi_dirty = false;  // a queued command was refused: EXEC aborts
  std::vector<std::vector<std::string>> queued;

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
};

}  // namespace ringkv::server
