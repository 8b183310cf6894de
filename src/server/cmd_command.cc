// COMMAND and its subcommands. Name, arity, flags and legacy key positions come from the command
// table (what the dispatcher really uses); ACL categories, tips, key specs and the COMMAND DOCS
// text are Redis's own, generated from redis-server (command_docs.inc). ringkv's own commands
// (RING, RINGKV.*) have hand-written docs below.
#include <algorithm>
#include <string>
#include <vector>

#include "server/command_docs.h"
#include "server/util.h"

namespace ringkv::server {

namespace {

// ---------------------------------------------------------------- COMMAND INFO

// In Redis 7.0's addReplyCommandFlags order; may_replicate is hidden there too.
std::vector<std::string_view> flag_names(const CommandSpec& c) {
  static const std::pair<uint32_t, std::string_view> kNames[] = {
      {kWrite, "write"},
      {kReadOnly, "readonly"},
      {kDenyOom, "denyoom"},
      {kAdmin, "admin"},
      {kPubSub, "pubsub"},
      {kNoScript, "noscript"},
      {kBlocking, "blocking"},
      {kLoading, "loading"},
      {kStale, "stale"},
      {kSkipMonitor, "skip_monitor"},
      {kSkipSlowlog, "skip_slowlog"},
      {kAsking, "asking"},
      {kFast, "fast"},
      {kNoAuth, "no_auth"},
      {kNoMulti, "no_multi"},
      {kMovableKeys, "movablekeys"},
      {kAllowBusy, "allow_busy"},
  };
  std::vector<std::string_view> out;
  for (auto& [f, n] : kNames)
    if (c.flags & f) out.push_back(n);
  return out;
}

// ACL categories: Redis's for its commands; for ringkv's own, derived from the flags in the
// order of Redis's ACLCommandCategories table.
std::vector<std::string> acl_categories(const CommandSpec& c, const CommandSpec* parent) {
  std::vector<std::string> out;
  if (const GenCommand* g = find_generated(c.full_name(parent))) {
    for (std::string_view w : words(g->acl_categories)) out.emplace_back(w);
    return out;
  }
  if (c.is(kReadOnly)) out.push_back("@read");
  if (c.is(kWrite)) out.push_back("@write");
  if (c.is(kAdmin)) out.push_back("@admin");
  out.push_back(c.is(kFast) ? "@fast" : "@slow");
  if (c.is(kAdmin)) out.push_back("@dangerous");
  return out;
}

void write_key_spec(resp::Writer& w, const GenKeySpec& k) {
  w.map(!k.notes.empty() ? 4 : 3);
  if (!k.notes.empty()) {
    w.bulk("notes");
    w.bulk(k.notes);
  }
  w.bulk("flags");
  auto flags = words(k.flags);
  w.set(flags.size());
  for (std::string_view f : flags) w.simple(f);
  w.bulk("begin_search");
  w.map(2);
  w.bulk("type");
  switch (k.bs) {
    case kBsIndex:
      w.bulk("index");
      w.bulk("spec");
      w.map(1);
      w.bulk("index");
      w.integer(k.bs_index);
      break;
    case kBsKeyword:
      w.bulk("keyword");
      w.bulk("spec");
      w.map(2);
      w.bulk("keyword");
      w.bulk(k.bs_keyword);
      w.bulk("startfrom");
      w.integer(k.bs_index);
      break;
    case kBsUnknown:
      w.bulk("unknown");
      w.bulk("spec");
      w.map(0);
      break;
  }
  w.bulk("find_keys");
  w.map(2);
  w.bulk("type");
  switch (k.fk) {
    case kFkRange:
      w.bulk("range");
      w.bulk("spec");
      w.map(3);
      w.bulk("lastkey");
      w.integer(k.a);
      w.bulk("keystep");
      w.integer(k.b);
      w.bulk("limit");
      w.integer(k.c);
      break;
    case kFkKeynum:
      w.bulk("keynum");
      w.bulk("spec");
      w.map(3);
      w.bulk("keynumidx");
      w.integer(k.a);
      w.bulk("firstkey");
      w.integer(k.b);
      w.bulk("keystep");
      w.integer(k.c);
      break;
    case kFkUnknown:
      w.bulk("unknown");
      w.bulk("spec");
      w.map(0);
      break;
  }
}

void write_info(resp::Writer& w, const CommandSpec& c, const CommandSpec* parent) {
  const std::string full = c.full_name(parent);
  const GenCommand* g = find_generated(full);
  w.array(10);
  w.bulk(full);
  w.integer(c.arity);
  auto flags = flag_names(c);
  w.set(flags.size());
  for (auto f : flags) w.simple(f);
  w.integer(c.first_key);
  w.integer(c.last_key);
  w.integer(c.key_step);
  auto cats = acl_categories(c, parent);
  w.set(cats.size());
  for (auto& s : cats) w.simple(s);
  std::vector<std::string_view> tips = g ? words(g->tips) : std::vector<std::string_view>{};
  w.set(tips.size());
  for (auto t : tips) w.bulk(t);
  if (g != nullptr) {
    w.set(static_cast<size_t>(g->key_spec_count));
    for (int i = 0; i < g->key_spec_count; ++i) write_key_spec(w, g->key_specs[i]);
  } else {
    w.set(0);  // ringkv's own commands take no keys
  }
  // Redis 7.0 replies "no subcommands" as an empty set, and subcommands as an array.
  if (c.subcommands.empty())
    w.set(0);
  else
    w.array(c.subcommands.size());
  for (const CommandSpec& sub : c.subcommands) write_info(w, sub, &c);
}

// ---------------------------------------------------------------- COMMAND DOCS

// Hand-written argument lists of ringkv's own commands, in Redis's COMMAND DOCS shape, so that
// redis-cli shows hints for them too.
struct ArgDoc {
  std::string_view name, type, token, flags;
};
struct OwnDocs {
  std::string_view command;
  std::vector<ArgDoc> args;
};
const std::vector<OwnDocs>& own_docs() {
  static const std::vector<OwnDocs> kDocs = {
      {"ring|addserver",
       {{"id", "string", {}, {}},
        {"address", "string", {}, {}},
        {"weight", "integer", "WEIGHT", "optional"}}},
      {"ring|removeserver", {{"id", "string", {}, {}}}},
      {"ring|plan",
       {{"change", "string", {}, {}},
        {"id", "string", {}, {}},
        {"args", "string", {}, "optional multiple"}}},
      {"ring|owners", {{"key", "string", {}, {}}}},
      {"ring|token", {{"key", "string", {}, {}}}},
  };
  return kDocs;
}

void write_own_docs(resp::Writer& w, const CommandSpec& c, const CommandSpec* parent,
                    bool with_subs) {
  const std::string full = c.full_name(parent);
  const std::vector<ArgDoc>* args = nullptr;
  for (const OwnDocs& d : own_docs())
    if (d.command == full) args = &d.args;
  w.map(4 + (args ? 1 : 0) + (with_subs ? 1 : 0));
  w.bulk("summary");
  w.bulk(c.summary.empty() ? std::string_view("-") : c.summary);
  w.bulk("since");
  w.bulk(c.since.empty() ? std::string_view("0.1.0") : c.since);
  w.bulk("group");
  w.bulk(c.group);
  w.bulk("complexity");
  w.bulk(c.complexity.empty() ? std::string_view("O(1)") : c.complexity);
  if (args != nullptr) {
    w.bulk("arguments");
    w.array(args->size());
    for (const ArgDoc& a : *args) {
      w.map(2 + (a.token.empty() ? 0 : 1) + (a.flags.empty() ? 0 : 1));
      w.bulk("name");
      w.bulk(a.name);
      w.bulk("type");
      w.bulk(a.type);
      if (!a.token.empty()) {
        w.bulk("token");
        w.bulk(a.token);
      }
      if (!a.flags.empty()) {
        w.bulk("flags");
        auto f = words(a.flags);
        w.set(f.size());
        for (auto x : f) w.simple(x);
      }
    }
  }
}

void write_docs(resp::Writer& w, const CommandSpec& c, const CommandSpec* parent) {
  const bool with_subs = !c.subcommands.empty();
  if (const GenCommand* g = find_generated(c.full_name(parent))) {
    w.map(static_cast<size_t>(g->doc_fields) + (with_subs ? 1 : 0));
    w.raw(w.protocol() == 3 ? g->docs_resp3 : g->docs_resp2);
  } else {
    write_own_docs(w, c, parent, with_subs);
  }
  if (with_subs) {
    w.bulk("subcommands");
    w.map(c.subcommands.size());
    for (const CommandSpec& sub : c.subcommands) {
      w.bulk(sub.full_name(&c));
      write_docs(w, sub, &c);
    }
  }
}

// "config|get" or "config" -> the spec and its parent (case-insensitive, as Redis).
const CommandSpec* lookup_full(std::string_view name, const CommandSpec** parent) {
  const CommandTable& t = CommandTable::instance();
  *parent = nullptr;
  size_t bar = name.find('|');
  if (bar == std::string_view::npos) return t.find(name);
  const CommandSpec* p = t.find(name.substr(0, bar));
  if (p == nullptr || p->subcommands.empty()) return nullptr;
  *parent = p;
  return t.find_sub(*p, name.substr(bar + 1));
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

void cmd_command_info(CommandContext& ctx) {
  if (ctx.argc() == 2) return cmd_command(ctx);
  ctx.w.array(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    const CommandSpec* parent;
    const CommandSpec* c = lookup_full(ctx.arg(i), &parent);
    if (c == nullptr)
      ctx.w.null();  // Redis: a null for an unknown name
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
  // COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern], parsed as Redis does.
  enum { kNone, kModule, kAclCat, kPattern } filter = kNone;
  std::string_view value;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    const size_t more = ctx.argc() - 1 - i;
    if (equals_nocase(ctx.arg(i), "filterby") && more == 2) {
      std::string_view type = ctx.arg(i + 1);
      if (equals_nocase(type, "module")) {
        filter = kModule;
      } else if (equals_nocase(type, "aclcat")) {
        filter = kAclCat;
      } else if (equals_nocase(type, "pattern")) {
        filter = kPattern;
      } else {
        ctx.error(err::kSyntax);
        return;
      }
      value = ctx.arg(i + 2);
      i += 2;
    } else {
      ctx.error(err::kSyntax);
      return;
    }
  }
  std::vector<std::string> names;
  const std::string want_cat = "@" + to_lower(value);
  auto consider = [&](const CommandSpec& s, const CommandSpec* parent) {
    std::string n = s.full_name(parent);
    if (filter == kModule) return;  // ringkv has no modules
    if (filter == kPattern && !glob_match(value, n, true)) return;
    if (filter == kAclCat) {
      auto cats = acl_categories(s, parent);
      if (std::find(cats.begin(), cats.end(), want_cat) == cats.end()) return;
    }
    names.push_back(std::move(n));
  };
  for (const CommandSpec& c : CommandTable::instance().all()) {
    consider(c, nullptr);
    for (const CommandSpec& sub : c.subcommands) consider(sub, &c);
  }
  ctx.w.array(names.size());
  for (auto& n : names) ctx.w.bulk(n);
}

namespace {

// COMMAND GETKEYS / GETKEYSANDFLAGS, as Redis 7.0's getKeysSubcommandImpl.
void getkeys(CommandContext& ctx, bool with_flags) {
  const CommandTable& t = CommandTable::instance();
  std::vector<std::string_view> argv(ctx.args.begin() + 2, ctx.args.end());
  const CommandSpec* c = t.find(argv[0]);
  const CommandSpec* parent = nullptr;
  if (c != nullptr && !c->subcommands.empty() && argv.size() >= 2) {
    parent = c;
    c = t.find_sub(*parent, argv[1]);
  }
  if (c == nullptr) {
    ctx.error("ERR Invalid command specified");
    return;
  }
  const GenCommand* g = find_generated(c->full_name(parent));
  bool has_keys = false;
  if (g != nullptr) {
    for (int i = 0; i < g->key_spec_count; ++i) {
      auto f = words(g->key_specs[i].flags);
      if (std::find(f.begin(), f.end(), "not_key") == f.end()) has_keys = true;
    }
  } else {
    has_keys = c->first_key > 0;
  }
  if (!has_keys) {
    ctx.error("ERR The command has no key arguments");
    return;
  }
  if (!c->arity_ok(argv.size())) {
    ctx.error("ERR Invalid number of arguments specified for command");
    return;
  }
  std::vector<FoundKey> keys;
  if (g != nullptr) {
    if (!keys_from_specs(*g, argv, &keys) || keys.empty()) {
      ctx.error("ERR Invalid arguments specified for command");
      return;
    }
  } else {
    std::vector<int> pos;
    c->key_positions(argv.size(), &pos);
    for (int p : pos) keys.push_back(FoundKey{p, c->is(kWrite) ? "RW" : "RO"});
  }
  ctx.w.array(keys.size());
  for (const FoundKey& k : keys) {
    if (!with_flags) {
      ctx.w.bulk(argv[static_cast<size_t>(k.pos)]);
      continue;
    }
    ctx.w.array(2);
    ctx.w.bulk(argv[static_cast<size_t>(k.pos)]);
    auto f = words(k.flags);
    ctx.w.set(f.size());
    for (auto x : f) ctx.w.simple(x);
  }
}

}  // namespace

void cmd_command_getkeys(CommandContext& ctx) { getkeys(ctx, false); }
void cmd_command_getkeysandflags(CommandContext& ctx) { getkeys(ctx, true); }

void cmd_command_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)",
      "    Return details about all Redis commands.",
      "COUNT",
      "    Return the total number of commands in this Redis server.",
      "LIST",
      "    Return a list of all commands in this Redis server.",
      "INFO [<command-name> ...]",
      "    Return details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "DOCS [<command-name> ...]",
      "    Return documentation details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "GETKEYS <full-command>",
      "    Return the keys from a full Redis command.",
      "GETKEYSANDFLAGS <full-command>",
      "    Return the keys and the access flags from a full Redis command.",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
