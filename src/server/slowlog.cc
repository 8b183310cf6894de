#include "server/slowlog.h"

#include "common/strings.h"
#include "config/config.h"
#include "server/util.h"

namespace ringkv::server {

// ---------------------------------------------------------------- redaction

bool is_redacted_arg(const CommandSpec* spec, const CommandSpec* parent,
                     const std::vector<std::string_view>& args, size_t i) {
  if (i == 0 || spec == nullptr) return false;
  if (parent == nullptr && spec->name == "auth") {
    return args.size() <= 3;  // past that, AUTH fails with a syntax error before redacting
  }
  if (parent == nullptr && spec->name == "hello") {
    int64_t ver = 0;
    if (args.size() < 2 || !parse_int64(args[1], &ver) || ver < 2 || ver > 3) return false;
    for (size_t j = 2; j < args.size(); ++j) {
      size_t more = args.size() - 1 - j;
      if (equals_nocase(args[j], "auth") && more >= 2) {
        if (i == j + 1 || i == j + 2) return true;
        j += 2;
      } else if (equals_nocase(args[j], "setname") && more >= 1) {
        ++j;
      } else {
        return false;
      }
    }
    return false;
  }
  if (parent != nullptr && parent->name == "config" && spec->name == "set") {
    if (args.size() < 4 || args.size() % 2 != 0 || i % 2 != 1) return false;
    const config::Directive* d = config::find_directive(to_lower(args[i - 1]));
    return d != nullptr && d->sensitive;
  }
  return false;
}

// ---------------------------------------------------------------- the log

void SlowLog::add(const CommandSpec* spec, const CommandSpec* parent,
                  const std::vector<std::string_view>& args, int64_t time_s, int64_t duration_us,
                  std::string_view peer, std::string_view name, size_t max_len) {
  if (max_len == 0) return;
  SlowLogEntry e;
  e.time_s = time_s;
  e.duration_us = duration_us;
  e.peer.assign(peer);
  e.name.assign(name);
  // As Redis's slowlogCreateEntry: past 32 arguments the last one kept says how many are left
  // out; a string past 128 bytes is cut and says how many bytes are left out.
  const size_t argc = std::min(args.size(), kMaxArgc);
  e.argv.reserve(argc);
  for (size_t j = 0; j < argc; ++j) {
    if (argc != args.size() && j == argc - 1) {
      e.argv.push_back("... (" + std::to_string(args.size() - argc + 1) + " more arguments)");
    } else if (is_redacted_arg(spec, parent, args, j)) {
      e.argv.push_back("(redacted)");
    } else if (args[j].size() > kMaxString) {
      std::string s(args[j].substr(0, kMaxString));
      s += "... (" + std::to_string(args[j].size() - kMaxString) + " more bytes)";
      e.argv.push_back(std::move(s));
    } else {
      e.argv.emplace_back(args[j]);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  e.id = next_id_++;
  entries_.push_front(std::move(e));
  while (entries_.size() > max_len) entries_.pop_back();
}

std::vector<SlowLogEntry> SlowLog::latest(int64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = count < 0 ? entries_.size() : std::min(entries_.size(), static_cast<size_t>(count));
  return std::vector<SlowLogEntry>(entries_.begin(), entries_.begin() + static_cast<long>(n));
}

size_t SlowLog::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void SlowLog::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

// ---------------------------------------------------------------- SLOWLOG

void cmd_slowlog_get(CommandContext& ctx) {
  int64_t count = 10;
  if (ctx.argc() == 3) {
    if (!parse_int64(ctx.arg(2), &count) || count < -1) {
      ctx.error("ERR count should be greater than or equal to -1");
      return;
    }
  } else if (ctx.argc() > 3) {
    ctx.error("ERR unknown subcommand or wrong number of arguments for '" +
              std::string(c_string(ctx.arg(1)).substr(0, 128)) + "'. Try SLOWLOG HELP.");
    return;
  }
  auto entries = ctx.server.slowlog().latest(count);
  ctx.w.array(entries.size());
  for (const SlowLogEntry& e : entries) {
    ctx.w.array(6);
    ctx.w.integer(static_cast<int64_t>(e.id));
    ctx.w.integer(e.time_s);
    ctx.w.integer(e.duration_us);
    ctx.w.array(e.argv.size());
    for (const std::string& a : e.argv) ctx.w.bulk(a);
    ctx.w.bulk(e.peer);
    ctx.w.bulk(e.name);
  }
}

void cmd_slowlog_len(CommandContext& ctx) {
  ctx.w.integer(static_cast<int64_t>(ctx.server.slowlog().size()));
}

void cmd_slowlog_reset(CommandContext& ctx) {
  ctx.server.slowlog().reset();
  ctx.w.ok();
}

void cmd_slowlog_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET [<count>]",
      "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
      "    Entries are made of:",
      "    id, timestamp, time in microseconds, arguments array, client IP and port,",
      "    client name",
      "LEN",
      "    Return the length of the slowlog.",
      "RESET",
      "    Reset the slowlog.",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
