// COMMAND and its subcommands, generated from the command table.
#include <algorithm>
#include <string>
#include <vector>

#include "server/util.h"

namespace ringkv::server {

namespace {

std::vector<std::string_view> flag_names(const CommandSpec& c) {
  static const std::pair<uint32_t, std::string_view> kNames[] = {
      {kWrite, "write"},       {kReadOnly, "readonly"},   {kDenyOom, "denyoom"},
      {kAdmin, "admin"},       {kPubSub, "pubsub"},       {kNoScript, "noscript"},
      {kBlocking, "blocking"}, {kLoading, "loading"},     {kStale, "stale"},
      {kSkipMonitor, "skip_monitor"}, {kSkipSlowlog, "skip_slowlog"}, {kFast, "fast"},
      {kNoAuth, "no_auth"},    {kMayReplicate, "may_replicate"}, {kNoMulti, "no_multi"},
      {kAllowBusy, "allow_busy"}, {kMovableKeys, "movablekeys"},
  };
  std::vector<std::string_view> out;
  for (auto& [f, n] : kNames)
    if (c.flags & f) out.push_back(n);
  return out;
}

// In the order of Redis's ACLCommandCategories table, which is the order COMMAND INFO prints.
std::vector<std::string> acl_categories(const CommandSpec& c) {
  std::vector<std::string> out;
  std::string_view g = c.group;
  if (g == "generic") out.push_back("@keyspace");
  if (c.is(kReadOnly)) out.push_back("@read");
  if (c.is(kWrite)) out.push_back("@write");
  if (g == "string") out.push_back("@string");
  if (g == "bitmap") out.push_back("@bitmap");
  if (c.is(kAdmin)) out.push_back("@admin");
  out.push_back(c.is(kFast) ? "@fast" : "@slow");
  if (c.is(kAdmin)) out.push_back("@dangerous");
  if (g == "connection") out.push_back("@connection");
  if (g == "transactions") out.push_back("@transaction");
  return out;
}

void write_info(resp::Writer& w, const CommandSpec& c, const CommandSpec* parent) {
  w.array(10);
  w.bulk(c.full_name(parent));
  w.integer(c.arity);
  auto flags = flag_names(c);
  w.set(flags.size());
  for (auto f : flags) w.simple(f);
  w.integer(c.first_key);
  w.integer(c.last_key);
  w.integer(c.key_step);
  auto cats = acl_categories(c);
  w.set(cats.size());
  for (auto& s : cats) w.simple(s);
  // Redis 7.0 replies tips and key specs as sets (arrays in RESP2), and no subcommands as an
  // empty set but some as an array.
  w.set(0);  // tips
  // Key specs, derived from the legacy (first, last, step) triple.
  if (c.first_key > 0) {
    w.set(1);
    w.map(3);
    w.bulk("flags");
    w.set(2);
    w.simple(c.is(kWrite) ? "RW" : "RO");
    w.simple(c.is(kWrite) ? "update" : "access");  // Redis 7.0 prints these in lower case
    w.bulk("begin_search");
    w.map(2);
    w.bulk("type");
    w.bulk("index");
    w.bulk("spec");
    w.map(1);
    w.bulk("index");
    w.integer(c.first_key);
    w.bulk("find_keys");
    w.map(2);
    w.bulk("type");
    w.bulk("range");
    w.bulk("spec");
    w.map(3);
    w.bulk("lastkey");
    w.integer(c.last_key < 0 ? c.last_key : c.last_key - c.first_key);
    w.bulk("keystep");
    w.integer(c.key_step);
    w.bulk("limit");
    w.integer(0);
  } else {
    w.set(0);
  }
  if (c.subcommands.empty())
    w.set(0);
  else
    w.array(c.subcommands.size());
  for (const CommandSpec& sub : c.subcommands) write_info(w, sub, &c);
}

void write_docs(resp::Writer& w, const CommandSpec& c, const CommandSpec* parent) {
  size_t fields = 4 + (c.subcommands.empty() ? 0 : 1);
  w.map(fields);
  w.bulk("summary");
  w.bulk(c.summary.empty() ? std::string_view("-") : c.summary);
  w.bulk("since");
  w.bulk(c.since.empty() ? std::string_view("1.0.0") : c.since);
  w.bulk("group");
  w.bulk(c.group);
  w.bulk("complexity");
  w.bulk(c.complexity.empty() ? std::string_view("O(1)") : c.complexity);
  if (!c.subcommands.empty()) {
    w.bulk("subcommands");
    w.map(c.subcommands.size());
    for (const CommandSpec& sub : c.subcommands) {
      w.bulk(sub.full_name(&c));
      write_docs(w, sub, &c);
    }
  }
}

}  // namespace

void cmd_command(CommandContext& ctx) {
  const auto& all = CommandTable::instance().all();
  ctx.w.array(all.size());
  for (const CommandSpec& c : all) write_info(ctx.w, c, nullptr);
}

void cmd_command_count(CommandContext& ctx) {
  ctx.w.integer(static_cast<int64_t>(CommandTable::instance().all().size()));
}

namespace {
// "config|get" or "config" -> the spec and its parent.
const CommandSpec* lookup_full(std::string_view name, const CommandSpec** parent) {
  const CommandTable& t = CommandTable::instance();
  *parent = nullptr;
  size_t bar = name.find('|');
  if (bar == std::string_view::npos) return t.find(name);
  const CommandSpec* p = t.find(name.substr(0, bar));
  if (p == nullptr) return nullptr;
  *parent = p;
  return t.find_sub(*p, name.substr(bar + 1));
}
}  // namespace

void cmd_command_info(CommandContext& ctx) {
  if (ctx.argc() == 2) return cmd_command(ctx);
  ctx.w.array(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    const CommandSpec* parent;
    const CommandSpec* c = lookup_full(ctx.arg(i), &parent);
    if (c == nullptr)
      ctx.w.null();  // Redis: a null bulk string for an unknown name
    else
      write_info(ctx.w, *c, parent);
  }
}

void cmd_command_docs(CommandContext& ctx) {
  std::vector<std::pair<const CommandSpec*, const CommandSpec*>> list;
  if (ctx.argc() == 2) {
    for (const CommandSpec& c : CommandTable::instance().all()) list.emplace_back(&c, nullptr);
  } else {
    for (size_t i = 2; i < ctx.argc(); ++i) {
      const CommandSpec* parent;
      const CommandSpec* c = lookup_full(ctx.arg(i), &parent);
      if (c != nullptr) list.emplace_back(c, parent);
    }
  }
  ctx.w.map(list.size());
  for (auto& [c, parent] : list) {
    ctx.w.bulk(c->full_name(parent));
    write_docs(ctx.w, *c, parent);
  }
}

void cmd_command_list(CommandContext& ctx) {
  std::string_view filter, value;
  if (ctx.argc() == 5 && equals_nocase(ctx.arg(2), "filterby")) {
    filter = ctx.arg(3);
    value = ctx.arg(4);
    if (!equals_nocase(filter, "module") && !equals_nocase(filter, "aclcat") &&
        !equals_nocase(filter, "pattern")) {
      ctx.error(err::kSyntax);
      return;
    }
  } else if (ctx.argc() != 2) {
    ctx.error(err::kSyntax);
    return;
  }
  std::vector<std::string> names;
  for (const CommandSpec& c : CommandTable::instance().all()) {
    auto consider = [&](const CommandSpec& s, const CommandSpec* parent) {
      std::string n = s.full_name(parent);
      if (equals_nocase(filter, "module")) return;  // no modules
      if (equals_nocase(filter, "pattern") && !glob_match(value, n, true)) return;
      if (equals_nocase(filter, "aclcat")) {
        auto cats = acl_categories(s);
        std::string want = "@" + to_lower(value);
        if (std::find(cats.begin(), cats.end(), want) == cats.end()) return;
      }
      names.push_back(n);
    };
    consider(c, nullptr);
    for (const CommandSpec& sub : c.subcommands) consider(sub, &c);
  }
  ctx.w.array(names.size());
  for (auto& n : names) ctx.w.bulk(n);
}

void cmd_command_getkeys(CommandContext& ctx) {
  const CommandTable& t = CommandTable::instance();
  const CommandSpec* c = t.find(ctx.arg(2));
  if (c == nullptr) {
    ctx.error("ERR Invalid command specified");
    return;
  }
  size_t argc = ctx.argc() - 2;
  if (!c->subcommands.empty() && argc >= 2) {
    const CommandSpec* sub = t.find_sub(*c, ctx.arg(3));
    if (sub != nullptr) c = sub;
  }
  if (!c->arity_ok(argc)) {
    ctx.error("ERR Invalid number of arguments specified for command");
    return;
  }
  std::vector<int> pos;
  c->key_positions(argc, &pos);
  if (pos.empty()) {
    ctx.error("ERR The command has no key arguments");
    return;
  }
  ctx.w.array(pos.size());
  for (int p : pos) ctx.w.bulk(ctx.arg(2 + static_cast<size_t>(p)));
}

void cmd_command_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)",
      "    Return details about all commands.",
      "COUNT",
      "    Return the total number of commands in this server.",
      "LIST",
      "    Return a list of all commands in this server.",
      "INFO [<command-name> ...]",
      "    Return details about multiple commands.",
      "DOCS [<command-name> ...]",
      "    Return documentation details about multiple commands.",
      "GETKEYS <full-command>",
      "    Return the keys from a full command.",
      "HELP",
      "    Print this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
