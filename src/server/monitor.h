// MONITOR: every command the server runs, as one line per command, delivered to each client in
// monitor mode on that client's own event loop (EventLoop::post), so the thread that ran the
// command never waits for a monitor. With no monitor attached the dispatcher pays one relaxed
// atomic load per command.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv::net {
class Connection;
class EventLoop;
}  // namespace ringkv::net

namespace ringkv::server {

struct CommandSpec;

class MonitorHub {
 public:
  bool active() const { return count_.load(std::memory_order_relaxed) > 0; }
  // Loop thread of `conn`: its client is in monitor mode from now on.
  void add(net::Connection& conn);
  // Any thread: the client closed.
  void remove(uint64_t conn_id);
  // Any thread: sends `line` (a complete "+...\r\n") to every monitor.
  void feed(std::string_view line);
  // Redis's monitor line: +<sec>.<usec> [<db> <addr>] "arg" "arg"...\r\n, arguments escaped as
  // sdscatrepr does and secrets redacted.
  static std::string format(int64_t now_us, int db, std::string_view peer, const CommandSpec* spec,
                            const CommandSpec* parent, const std::vector<std::string_view>& args);

 private:
  struct Monitor {
    uint64_t id;
    std::weak_ptr<net::Connection> conn;
    net::EventLoop* loop;
    std::mutex mu;
    std::string pending;  // lines not yet handed to the connection (guarded by mu)
  };
  static void deliver(const std::shared_ptr<Monitor>& m);

  std::mutex mu_;
  std::vector<std::shared_ptr<Monitor>> monitors_;  // guarded by mu_
  std::atomic<int> count_{0};
};

// Appends `s` quoted and escaped as Redis's sdscatrepr.
void append_repr(std::string* out, std::string_view s);

}  // namespace ringkv::server
