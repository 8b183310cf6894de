// Server commands: INFO (info.cc builds the text), TIME, LASTSAVE, SHUTDOWN, CONFIG, COMMAND.
#include <sys/time.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/log.h"
#include "server/info.h"
#include "server/util.h"

namespace ringkv::server {

void cmd_info(CommandContext& ctx) {
  std::vector<std::string> sections(ctx.args.begin() + 1, ctx.args.end());
  ctx.w.verbatim(build_info(ctx.server, sections, ctx.conn.loop().index()));
}

void cmd_time(CommandContext& ctx) {
  Micros us = ctx.server.clock().now_us();
  ctx.w.array(2);
  ctx.w.bulk(std::to_string(us / 1000000));
  ctx.w.bulk(std::to_string(us % 1000000));
}

void cmd_lastsave(CommandContext& ctx) { ctx.w.integer(ctx.server.start_ms() / 1000); }

void cmd_shutdown(CommandContext& ctx) {
  // SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: nothing is persisted, so the options only
  // need to be valid.
  for (size_t i = 1; i < ctx.argc(); ++i) {
    std::string_view a = ctx.arg(i);
    if (!(equals_nocase(a, "nosave") || equals_nocase(a, "save") || equals_nocase(a, "now") ||
          equals_nocase(a, "force"))) {
      if (equals_nocase(a, "abort")) {
        ctx.error("ERR No shutdown in progress.");
      } else {
        ctx.error(err::kSyntax);
      }
      return;
    }
  }
  LOG_WARNING("User requested shutdown...");
  LOG_WARNING("ringkv is now ready to exit, bye bye...");
  ctx.conn.close();
  ctx.server.shutdown();
}

// ---------------------------------------------------------------- CONFIG

namespace {
// CONFIG GET shows client-output-buffer-limit as Redis 7.0 does, with the old class name "slave".
std::string config_get_value(const std::string& name, std::string value) {
  if (name != "client-output-buffer-limit") return value;
  size_t pos = value.find(" replica ");
  if (pos != std::string::npos) value.replace(pos, 9, " slave ");
  return value;
}
}  // namespace

void cmd_config_get(CommandContext& ctx) {
  // As Redis: a name without glob characters is answered as it was written (CONFIG GET MAXMEMORY
  // replies "MAXMEMORY"), a glob's matches by their own names.
  std::map<std::string, std::string> found;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    std::string_view pattern = ctx.arg(i);
    if (pattern.find_first_of("[*?") == std::string_view::npos) {
      if (const config::Directive* d = config::find_directive(pattern)) {
        std::string name(d->name);
        found.emplace(std::string(pattern), config_get_value(name, ctx.server.config().get(name)));
      }
      continue;
    }
    for (auto& [k, v] : ctx.server.config().match(pattern))
      found.emplace(k, config_get_value(k, v));
  }
  ctx.w.map(found.size());
  for (auto& [k, v] : found) {
    ctx.w.bulk(k);
    ctx.w.bulk(v);
  }
}

void cmd_config_set(CommandContext& ctx) {
  if (ctx.argc() % 2 != 0) {
    ctx.error(err::kSyntax);  // Redis: an odd number of name/value arguments
    return;
  }
  config::Config& cfg = ctx.server.config();
  std::set<std::string> seen;
  // Check every name first, as Redis does, so nothing changes when one is wrong.
  for (size_t i = 2; i + 1 < ctx.argc(); i += 2) {
    std::string name = to_lower(ctx.arg(i));
    const config::Directive* d = config::find_directive(name);
    if (d == nullptr) {
      ctx.error("ERR Unknown option or number of arguments for CONFIG SET - '" +
                std::string(ctx.arg(i)) + "'");
      return;
    }
    if (!seen.insert(std::string(d->name)).second) {
      ctx.error("ERR CONFIG SET failed (possibly related to argument '" + std::string(ctx.arg(i)) +
                "') - duplicate parameter");
      return;
    }
    if (!d->runtime) {
      ctx.error("ERR CONFIG SET failed (possibly related to argument '" + std::string(ctx.arg(i)) +
                "') - can't set immutable config");
      return;
    }
  }
  std::vector<std::pair<std::string, std::string>> applied;  // name, old value
  auto roll_back = [&] {
    for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
      std::vector<std::string> back;
      if (it->first == "client-output-buffer-limit" || it->first == "bind")
        split_args(it->second, &back);
      else
        back.push_back(it->second);
      cfg.set(it->first, back, true);
    }
  };
  size_t first_tls = 0;  // argument index of the first tls-* name, 0 for none
  for (size_t i = 2; i + 1 < ctx.argc(); i += 2) {
    std::string name = to_lower(ctx.arg(i));
    std::string old = cfg.get(name);
    std::vector<std::string> values;
    // Multi-word values (client-output-buffer-limit, save) are one argument split by spaces.
    if (name == "client-output-buffer-limit" || name == "bind") {
      split_args(ctx.arg(i + 1), &values);
    } else {
      values.emplace_back(ctx.arg(i + 1));
    }
    Status st = cfg.set(name, values, true);
    if (!st.is_ok()) {
      roll_back();
      ctx.error("ERR CONFIG SET failed (possibly related to argument '" + std::string(ctx.arg(i)) +
                "') - " + st.message());
      return;
    }
    applied.emplace_back(name, old);
    if (first_tls == 0 && name.starts_with("tls-")) first_tls = i;
  }
  // The TLS settings are checked together, once all are set: a certificate and its key change
  // in one CONFIG SET.
  if (first_tls != 0) {
    Status st = ctx.server.reload_tls();
    if (!st.is_ok()) {
      roll_back();
      ctx.error("ERR CONFIG SET failed (possibly related to argument '" +
                std::string(ctx.arg(first_tls)) +
                "') - Unable to update TLS configuration: " + st.message());
      return;
    }
  }
  ctx.w.ok();
}

void cmd_config_resetstat(CommandContext& ctx) {
  ServerStats& st = ctx.server.stats();
  st.commands = 0;
  st.connections_received = 0;
  st.rejected_connections = 0;
  st.keyspace_hits = 0;
  st.keyspace_misses = 0;
  st.error_replies = 0;
  st.unexpected_error_replies = 0;
  st.protocol_errors = 0;
  st.expire_cycle_us = 0;
  // The network totals keep counting: INFO reports them from this baseline on.
  Server::NetTotals net = ctx.server.net_totals();
  st.net_input_bytes = net.bytes_in;
  st.net_output_bytes = net.bytes_out;
  st.net_reads = net.reads;
  st.net_writes = net.writes;
  {
    std::lock_guard<std::mutex> lock(st.errors_mu);
    st.errors.clear();
  }
  for (const CommandSpec& c : CommandTable::instance().all()) {
    auto reset = [](const CommandSpec& s) {
      s.stats.calls = 0;
      s.stats.usec = 0;
      s.stats.rejected = 0;
      s.stats.failed = 0;
      if (LatencyHistogram* h = s.stats.histogram.load()) h->reset();
    };
    reset(c);
    for (const CommandSpec& sub : c.subcommands) reset(sub);
  }
  ctx.server.store().reset_stats();
  ctx.w.ok();
}

void cmd_config_rewrite(CommandContext& ctx) {
  config::Config& cfg = ctx.server.config();
  const std::string& path = cfg.file_path();
  if (path.empty()) {
    ctx.error("ERR The server is running without a config file");
    return;
  }
  // Keep the file's comments and order; replace lines of directives we know, append the rest.
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  std::set<std::string> written;
  std::map<std::string, std::string> current;
  for (const auto& d : config::directives()) current[std::string(d.name)] = cfg.get(d.name);
  auto render = [&](const std::string& name) { return cfg.line(name); };
  for (auto& l : lines) {
    std::vector<std::string> args;
    size_t b = l.find_first_not_of(" \t");
    if (b == std::string::npos || l[b] == '#' || !split_args(l, &args) || args.empty()) continue;
    std::string name = to_lower(args[0]);
    if (!current.count(name)) continue;
    if (written.count(name)) {
      l.clear();
      continue;
    }
    l = render(name);
    written.insert(name);
  }
  bool header = false;
  for (const auto& d : config::directives()) {
    std::string name(d.name);
    if (written.count(name) || current[name] == d.default_value) continue;
    if (!header) {
      lines.push_back("# Generated by CONFIG REWRITE");
      header = true;
    }
    lines.push_back(render(name));
  }
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
    if (!out) {
      ctx.error("ERR Rewriting config file: can't write " + tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ctx.error("ERR Rewriting config file: can't rename " + tmp);
    return;
  }
  ctx.w.ok();
}

void cmd_config_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET <pattern>",
      "    Return parameters matching the glob-like <pattern> and their values.",
      "SET <directive> <value>",
      "    Set the configuration <directive> to <value>.",
      "RESETSTAT",
      "    Reset statistics reported by the INFO command.",
      "REWRITE",
      "    Rewrite the configuration file.",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
