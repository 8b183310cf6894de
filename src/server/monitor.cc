#include "server/monitor.h"

#include <algorithm>
#include <cstdio>

#include "net/connection.h"
#include "server/slowlog.h"
#include "server/util.h"

namespace ringkv::server {

void append_repr(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
        *out += "\\\\";
        break;
      case '"':
        *out += "\\\"";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\a':
        *out += "\\a";
        break;
      case '\b':
        *out += "\\b";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out->push_back(static_cast<char>(c));
        } else {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          *out += buf;
        }
    }
  }
  out->push_back('"');
}

std::string MonitorHub::format(int64_t now_us, int db, std::string_view peer,
                               const CommandSpec* spec, const CommandSpec* parent,
                               const std::vector<std::string_view>& args) {
  char head[96];
  std::snprintf(head, sizeof head, "+%lld.%06lld [%d ", static_cast<long long>(now_us / 1000000),
                static_cast<long long>(now_us % 1000000), db);
  std::string line = head;
  line.append(peer);
  line += "] ";
  for (size_t j = 0; j < args.size(); ++j) {
    if (is_redacted_arg(spec, parent, args, j))
      append_repr(&line, "(redacted)");
    else
      append_repr(&line, args[j]);
    if (j + 1 != args.size()) line.push_back(' ');
  }
  line += "\r\n";
  return line;
}

void MonitorHub::add(net::Connection& conn) {
  auto m = std::make_shared<Monitor>();
  m->id = conn.id();
  m->conn = conn.weak_from_this();
  m->loop = &conn.loop();
  std::lock_guard<std::mutex> lock(mu_);
  monitors_.push_back(std::move(m));
  count_.store(static_cast<int>(monitors_.size()), std::memory_order_relaxed);
}

void MonitorHub::remove(uint64_t conn_id) {
  std::lock_guard<std::mutex> lock(mu_);
  monitors_.erase(std::remove_if(monitors_.begin(), monitors_.end(),
                                 [conn_id](const auto& m) { return m->id == conn_id; }),
                  monitors_.end());
  count_.store(static_cast<int>(monitors_.size()), std::memory_order_relaxed);
}

void MonitorHub::feed(std::string_view line) {
  // A monitor on this very loop with nothing queued gets the line at once, right after the
  // command's own reply, as in Redis; the others get it on their loop, in order.
  std::vector<std::shared_ptr<Monitor>> direct;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& m : monitors_) {
      bool first;
      {
        std::lock_guard<std::mutex> mlock(m->mu);
        first = m->pending.empty();
        if (first && m->loop->on_loop_thread()) {
          direct.push_back(m);
          continue;
        }
        m->pending.append(line);
      }
      // One task per batch: lines fed while it waits join the same write.
      if (first) m->loop->post([m] { deliver(m); });
    }
  }
  for (const auto& m : direct) {
    auto conn = m->conn.lock();
    if (!conn || conn->closing()) continue;
    conn->out().raw(line);
    conn->flush();
  }
}

void MonitorHub::deliver(const std::shared_ptr<Monitor>& m) {
  std::string data;
  {
    std::lock_guard<std::mutex> lock(m->mu);
    data.swap(m->pending);
  }
  auto conn = m->conn.lock();
  if (!conn || conn->closing()) return;
  conn->out().raw(data);
  conn->flush();
  conn->check_output_limits();
}

}  // namespace ringkv::server

namespace ringkv::server {

void cmd_monitor(CommandContext& ctx) {
  // A client inside EXEC expects one reply per command (Redis's CLIENT_DENY_BLOCKING).
  if (ctx.session.in_exec) {
    ctx.error("ERR MONITOR isn't allowed for DENY BLOCKING client");
    return;
  }
  if (ctx.session.monitor) return;  // as Redis: a second MONITOR gets no reply at all
  ctx.session.monitor = true;
  ctx.server.monitors().add(ctx.conn);
  ctx.w.ok();
}

}  // namespace ringkv::server
