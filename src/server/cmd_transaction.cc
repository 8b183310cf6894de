// Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis's rules.
#include <mutex>
#include <shared_mutex>

#include "net/connection.h"
#include "server/util.h"

namespace ringkv::server {

namespace {
void discard_transaction(CommandContext& ctx) {
  ctx.session.in_multi = false;
  ctx.session.multi_dirty = false;
  ctx.session.queued.clear();
  ctx.server.unwatch_all(ctx.session);
}
}  // namespace

void cmd_multi(CommandContext& ctx) {
  if (ctx.session.in_multi) {
    ctx.error(err::kMultiNested);
    return;
  }
  ctx.session.in_multi = true;
  ctx.session.multi_dirty = false;
  ctx.session.queued.clear();
  ctx.w.ok();
}

void cmd_discard(CommandContext& ctx) {
  if (!ctx.session.in_multi) {
    ctx.error(err::kDiscardWithoutMulti);
    return;
  }
  discard_transaction(ctx);
  ctx.w.ok();
}

void cmd_watch(CommandContext& ctx) {
  if (ctx.session.in_multi) {
    ctx.error(err::kWatchInMulti);
    return;
  }
  for (size_t i = 1; i < ctx.argc(); ++i) {
    // Looking the key up first lets an already expired key go before we start watching it.
    with_key(ctx, ctx.arg(i), [](store::Access&) {});
    ctx.server.watch_key(ctx.session, ctx.arg(i));
  }
  ctx.w.ok();
}

void cmd_unwatch(CommandContext& ctx) {
  ctx.server.unwatch_all(ctx.session);
  ctx.w.ok();
}

void cmd_exec(CommandContext& ctx) {
  ClientSession& s = ctx.session;
  if (!s.in_multi) {
    ctx.error(err::kExecWithoutMulti);
    return;
  }
  if (s.multi_dirty) {
    discard_transaction(ctx);
    ctx.error(err::kExecAbort);
    return;
  }
  std::unique_lock<std::shared_mutex> exclusive;
  if (ctx.server.exec_lock_needed())
    exclusive = std::unique_lock<std::shared_mutex>(ctx.server.exec_mutex());
  // A watched key that expired since WATCH counts as changed: looking it up expires it.
  for (const auto& k : s.watched) with_key(ctx, k, [](store::Access&) {});
  if (s.watch_dirty.load()) {
    discard_transaction(ctx);
    ctx.w.null_array();
    return;
  }
  auto queued = std::move(s.queued);
  s.queued.clear();
  s.in_multi = false;
  ctx.server.unwatch_all(s);
  const CommandTable& table = CommandTable::instance();
  ctx.w.array(queued.size());
  ExecScope in_exec(s);
  for (auto& request : queued) {
    std::vector<std::string_view> args(request.begin(), request.end());
    const CommandSpec* spec = table.find(args[0]);
    const CommandSpec* parent = nullptr;
    if (spec != nullptr && !spec->subcommands.empty()) {
      parent = spec;
      spec = table.find_sub(*parent, args[1]);
    }
    if (spec == nullptr) {  // cannot happen: it was checked when queued
      ctx.error("ERR unknown command");
      continue;
    }
    ctx.server.execute(ctx.conn, s, args, spec, parent, ctx.now);
    if (ctx.conn.closing()) break;
  }
}

}  // namespace ringkv::server
