// The slow log (SLOWLOG): commands that took at least slowlog-log-slower-than microseconds, newest
// first, at most slowlog-max-len of them, with their arguments shortened as Redis does (at most
// 32 arguments, strings cut at 128 bytes) and secrets redacted. Thread-safe; the dispatcher only
// takes its lock for a command that is slow enough to be logged.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv::server {

struct CommandSpec;

// Whether argument `i` of this request is a secret that logs show as "(redacted)": AUTH's
// arguments, HELLO's AUTH username and password, CONFIG SET values of sensitive directives
// (requirepass). As Redis, only what the command got far enough to parse.
bool is_redacted_arg(const CommandSpec* spec, const CommandSpec* parent,
                     const std::vector<std::string_view>& args, size_t i);

struct SlowLogEntry {
  uint64_t id;
  int64_t time_s;  // when the command ran (Unix seconds)
  int64_t duration_us;
  std::vector<std::string> argv;  // already shortened and redacted
  std::string peer;               // client address ip:port
  std::string name;               // client name
};

class SlowLog {
 public:
  static constexpr size_t kMaxArgc = 32;
  static constexpr size_t kMaxString = 128;

  // Thread-safe. Keeps at most max_len entries (0: none).
  void add(const CommandSpec* spec, const CommandSpec* parent,
           const std::vector<std::string_view>& args, int64_t time_s, int64_t duration_us,
           std::string_view peer, std::string_view name, size_t max_len);
  // Newest first; count < 0: all of them.
  std::vector<SlowLogEntry> latest(int64_t count);
  size_t size();
  void reset();

 private:
  std::mutex mu_;
  std::deque<SlowLogEntry> entries_;  // newest first
  uint64_t next_id_ = 0;
};

}  // namespace ringkv::server
