// RING (the public admin commands) and RINGKV.* (what nodes say to each other).
#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "cluster/cluster.h"
#include "net/connection.h"
#include "server/util.h"

namespace ringkv::server {

namespace {

std::string status_error(const Status& st) { return error_reply("ERR " + st.message()); }

cluster::Cluster& cl(CommandContext& ctx) { return *ctx.server.cluster(); }

const cluster::View& view_of(CommandContext& ctx) { return cl(ctx).view(ctx.conn.loop().index()); }

// Runs blocking admin work on the admin thread and replies when it is done.
void admin_async(CommandContext& ctx, std::function<std::string(int proto)> work) {
  auto d = std::make_shared<net::Deferred>(ctx.conn.defer());
  net::EventLoop* loop = &ctx.conn.loop();
  int proto = ctx.conn.protocol();
  cl(ctx).run_admin([d, loop, proto, work = std::move(work)] {
    std::string reply = work(proto);
    loop->post([d, reply = std::move(reply)] { d->complete(reply); });
  });
}

// A ring change: queued behind any change still moving data (Cluster::run_change), replied later.
void change_async(CommandContext& ctx, std::function<Status()> change) {
  auto d = std::make_shared<net::Deferred>(ctx.conn.defer());
  net::EventLoop* loop = &ctx.conn.loop();
  cl(ctx).run_change(std::move(change), [d, loop](Status st) {
    std::string reply = st ? std::string("+OK\r\n") : status_error(st);
    loop->post([d, reply = std::move(reply)] { d->complete(reply); });
  });
}

// The configuration document as a RESP reply: a bulk string, or null when there is none.
std::string cfg_document_reply(cluster::LocalConfigService& svc, int proto) {
  std::string out;
  resp::Writer w(&out, proto);
  auto c = svc.load();
  if (!c || c->epoch == 0)
    w.null();
  else
    w.bulk(c->to_json());
  return out;
}

bool parse_token(std::string_view s, Token* out) {
  uint64_t v;
  if (!parse_uint64(s, &v)) return false;
  *out = v;
  return true;
}

}  // namespace

// ---------------------------------------------------------------- RING

void cmd_ring_addserver(CommandContext& ctx) {
  std::string id(ctx.arg(2)), address(ctx.arg(3));
  uint32_t weight = 1;
  if (ctx.argc() == 6 && equals_nocase(ctx.arg(4), "weight")) {
    int64_t w;
    if (!parse_int64(ctx.arg(5), &w) || w < 1 || w > 1000) {
      ctx.error("ERR WEIGHT must be an integer between 1 and 1000");
      return;
    }
    weight = static_cast<uint32_t>(w);
  } else if (ctx.argc() != 4) {
    ctx.error(err::kSyntax);
    return;
  }
  cluster::Cluster* c = ctx.server.cluster();
  change_async(ctx, [c, id, address, weight] { return c->add_server(id, address, weight); });
}

void cmd_ring_removeserver(CommandContext& ctx) {
  std::string id(ctx.arg(2));
  cluster::Cluster* c = ctx.server.cluster();
  change_async(ctx, [c, id] { return c->remove_server(id); });
}

void cmd_ring_plan(CommandContext& ctx) {
  // RING PLAN ADDSERVER <id> <host:port> [WEIGHT w] | RING PLAN REMOVESERVER <id>
  std::string kind = to_lower(ctx.arg(2));
  std::string id(ctx.arg(3));
  std::string address;
  uint32_t weight = 1;
  if (kind == "addserver") {
    if (ctx.argc() != 5 && ctx.argc() != 7) {
      ctx.error("ERR wrong number of arguments for 'ring|plan' command");
      return;
    }
    address = std::string(ctx.arg(4));
    if (ctx.argc() == 7) {
      int64_t w;
      if (!equals_nocase(ctx.arg(5), "weight") || !parse_int64(ctx.arg(6), &w) || w < 1 ||
          w > 1000) {
        ctx.error("ERR WEIGHT must be an integer between 1 and 1000");
        return;
      }
      weight = static_cast<uint32_t>(w);
    }
  } else if (kind == "removeserver") {
    if (ctx.argc() != 4) {
      ctx.error("ERR wrong number of arguments for 'ring|plan' command");
      return;
    }
  } else {
    ctx.error("ERR RING PLAN takes ADDSERVER <id> <host:port> [WEIGHT w] or REMOVESERVER <id>");
    return;
  }
  cluster::Cluster* c = ctx.server.cluster();
  admin_async(ctx, [c, kind, id, address, weight](int proto) {
    auto cur = c->current_view()->config;
    Result<cluster::RingConfig> next =
        kind == "addserver" ? c->propose_add(cur, id, address, weight) : c->propose_remove(cur, id);
    if (!next) return status_error(next.status());
    if (kind == "addserver") {
      // Refused where RING ADDSERVER would be: the new server must answer.
      Status probe = c->probe_new_server(id, address);
      if (!probe) return status_error(probe);
    }
    auto lines = c->plan(*next);
    if (!lines) return status_error(lines.status());
    std::string out;
    resp::Writer w(&out, proto);
    w.array(lines->size());
    for (const auto& l : *lines) {
      w.map(5);
      w.bulk("from");
      w.bulk(l.from);
      w.bulk("to");
      w.bulk(l.to);
      w.bulk("ranges");
      w.integer(static_cast<int64_t>(l.ranges));
      w.bulk("keys");
      w.integer(static_cast<int64_t>(l.keys));
      w.bulk("bytes");
      w.integer(static_cast<int64_t>(l.bytes));
    }
    return out;
  });
}

void cmd_ring_nodes(CommandContext& ctx) {
  const cluster::View& v = view_of(ctx);
  auto statuses = cl(ctx).last_statuses();
  std::vector<cluster::ServerInfo> servers = v.config.servers;
  ctx.w.array(servers.size());
  for (const auto& s : servers) {
    const cluster::NodeStatus* st = nullptr;
    for (const auto& x : statuses)
      if (x.id == s.id) st = &x;
    bool up = cl(ctx).peer_live(s.id);
    ctx.w.map(9);
    ctx.w.bulk("id");
    ctx.w.bulk(s.id);
    ctx.w.bulk("address");
    ctx.w.bulk(s.address);
    ctx.w.bulk("state");
    ctx.w.bulk(cluster::state_name(s.state));
    ctx.w.bulk("weight");
    ctx.w.integer(s.weight);
    ctx.w.bulk("ordinal");
    ctx.w.integer(s.ordinal);
    ctx.w.bulk("health");
    ctx.w.bulk(up ? "up" : "down");
    ctx.w.bulk("keys");
    ctx.w.integer(st ? static_cast<int64_t>(st->keys) : -1);
    ctx.w.bulk("bytes");
    ctx.w.integer(st ? static_cast<int64_t>(st->bytes) : -1);
    ctx.w.bulk("epoch");
    ctx.w.integer(st ? static_cast<int64_t>(st->applied_epoch) : -1);
  }
}

std::string ring_info_text(cluster::Cluster& node, const cluster::View& v, Millis now) {
  const cluster::RingConfig& c = v.config;
  auto statuses = node.last_statuses();
  std::string s;
  auto line = [&](std::string_view k, const std::string& val) {
    s.append(k);
    s += ':';
    s += val;
    s += "\r\n";
  };
  line("ring_epoch", std::to_string(c.epoch));
  line("ring_node_id", node.node_id());
  line("ring_servers", std::to_string(v.ring->server_count()));
  line("ring_servers_up", std::to_string(std::count(v.live.begin(), v.live.end(), 1)));
  line("ring_vnodes", std::to_string(c.vnodes));
  line("ring_replicas", std::to_string(v.n));
  line("ring_write_quorum", std::to_string(v.w));
  line("ring_read_quorum", std::to_string(v.r));
  line("ring_replicas_configured", std::to_string(c.replicas));
  line("ring_discovery", node.config_service()->describe());
  line("ring_fingerprint", token_hex(v.ring->fingerprint()));
  if (c.migration) {
    uint64_t total = 0, done = 0, bytes = 0;
    for (const auto& st : statuses) {
      // A node that has not reported on this move yet still shows its previous one's counts.
      if (st.move_id != 0 && st.move_id != c.migration->id) continue;
      // 1 stands for "counted, nothing to receive" while the node still receives.
      uint64_t t =
          st.migration_done >= c.migration->id && st.move_keys_total == 1 ? 0 : st.move_keys_total;
      // The count is taken as the move starts; keys written meanwhile into the ranges move too.
      total += std::max(t, st.move_keys_done);
      done += st.move_keys_done;
      bytes += st.move_bytes_done;
    }
    double secs = static_cast<double>(now - c.migration->started_ms) / 1000.0;
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    line("migration_state", "moving");
    line("migration_kind", c.migration->kind);
    line("migration_server", c.migration->server);
    line("migration_epoch", std::to_string(c.migration->id));
    line("migration_keys_to_move", std::to_string(total));
    line("migration_keys_moved", std::to_string(done));
    line("migration_bytes_moved", std::to_string(bytes));
    line("migration_rate_keys_per_sec", std::to_string(static_cast<uint64_t>(rate)));
    line("migration_eta_seconds", rate > 0 && total > done
                                      ? std::to_string(static_cast<uint64_t>((total - done) / rate))
                                      : "0");
    line("migration_elapsed_seconds", std::to_string(static_cast<uint64_t>(secs)));
  } else {
    line("migration_state", "idle");
  }
  auto p = node.progress();
  line("node_state", node.readiness());
  line("node_repair_pending", v.unrepaired || v.behind ? "yes" : "no");
  line("node_handoff", v.handoff ? "yes" : "no");
  line("node_receiving", p.moving ? "yes" : "no");
  line("node_keys_received", std::to_string(p.keys_done));
  line("node_bytes_received", std::to_string(p.bytes_done));
  line("node_pending_ranges", std::to_string(v.pending.size()));
  line("node_read_throughs", std::to_string(node.read_throughs()));
  line("node_old_holder_writes", std::to_string(node.old_holder_writes()));
  line("node_routes_current", v.previous_routes_gone ? "yes" : "no");
  return s;
}

void cmd_ring_info(CommandContext& ctx) {
  ctx.w.verbatim(ring_info_text(cl(ctx), view_of(ctx), ctx.now));
}

void cmd_ring_owners(CommandContext& ctx) {
  const cluster::View& v = view_of(ctx);
  uint32_t list[ring::kMaxReplicasLimit];
  size_t k = v.replicas_of(token_of(ctx.arg(2)), list);
  ctx.w.array(k);
  for (size_t i = 0; i < k; ++i) ctx.w.bulk(v.ring->servers()[list[i]].id);
}

void cmd_ring_token(CommandContext& ctx) { ctx.w.bulk(token_hex(token_of(ctx.arg(2)))); }

void cmd_ring_repair(CommandContext& ctx) {
  cluster::Cluster* c = ctx.server.cluster();
  admin_async(ctx, [c](int proto) {
    auto [compared, repaired] = c->repair();
    std::string out;
    resp::Writer w(&out, proto);
    w.map(2);
    w.bulk("ranges_compared");
    w.integer(static_cast<int64_t>(compared));
    w.bulk("ranges_repaired");
    w.integer(static_cast<int64_t>(repaired));
    return out;
  });
}

void cmd_ring_config(CommandContext& ctx) { ctx.w.bulk(view_of(ctx).config.to_json()); }

void cmd_ring_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "RING <subcommand> [<arg> ...]. Subcommands are:",
      "ADDSERVER <id> <host:port> [WEIGHT <w>]",
      "    Add a server to the ring; its ranges move to it in the background.",
      "REMOVESERVER <id>",
      "    Drain a server's ranges to their new holders, then remove it.",
      "PLAN ADDSERVER <id> <host:port> [WEIGHT <w>] | PLAN REMOVESERVER <id>",
      "    What such a change would move (keys and bytes per source and destination).",
      "NODES",
      "    Every server: id, address, state, weight, health, keys, bytes.",
      "INFO",
      "    The ring and the migration in progress, as field:value lines.",
      "OWNERS <key>",
      "    The key's preference list, primary first.",
      "TOKEN <key>",
      "    The key's token (16 hex digits).",
      "CONFIG",
      "    The ring configuration document (JSON), for clients.",
      "REPAIR",
      "    Anti-entropy now: make this node's primary ranges equal on all their replicas.",
      "HELP",
      "    Print this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

// ---------------------------------------------------------------- RINGKV.* (internal)

void cmd_ringkv_hello(CommandContext& ctx) {
  int64_t proto = 2;
  if (ctx.argc() > 2 && (!parse_int64(ctx.arg(2), &proto) || proto < 2 || proto > 3)) {
    ctx.error(err::kNoProto);
    return;
  }
  ctx.server.mark_internal(ctx.session);
  ctx.session.peer_id.assign(ctx.arg(1));
  ctx.conn.set_peer_link(true);
  ctx.conn.set_protocol(static_cast<int>(proto));
  ctx.w.set_protocol(static_cast<int>(proto));
  ctx.w.ok();
}

void cmd_ringkv_epoch(CommandContext& ctx) {
  uint64_t e;
  if (!parse_uint64(ctx.arg(1), &e)) {
    ctx.error(err::kSyntax);
    return;
  }
  ctx.session.peer_epoch = e;
  ctx.w.ok();
}

void cmd_ringkv_ping(CommandContext& ctx) {
  // RINGKV.PING [<sender id> <1: the sender is caught up with this node; 2: it had marked this
  // node down; else 0> [<this node's catch-up round, as the sender last learnt it>
  // [<1: the sender routes to this node as ready; else 0>]]]
  // Reply: [id, applied epoch, ready, and with a sender: 1 when this node had marked it down,
  // this node's catch-up round]
  bool sender = ctx.argc() >= 3 && ctx.argc() <= 5;
  if (ctx.argc() == 2 || ctx.argc() > 5) {
    ctx.error("ERR wrong number of arguments for 'ringkv.ping' command");
    return;
  }
  if (sender) {
    std::optional<uint64_t> round;
    std::optional<bool> routes_ready;
    if (ctx.argc() >= 4) {
      uint64_t r;
      if (!parse_uint64(ctx.arg(3), &r)) {
        ctx.error(err::kSyntax);
        return;
      }
      round = r;
    }
    if (ctx.argc() == 5) {
      if (ctx.arg(4) != "0" && ctx.arg(4) != "1") {
        ctx.error(err::kSyntax);
        return;
      }
      routes_ready = ctx.arg(4) == "1";
    }
    cl(ctx).note_peer_ping(std::string(ctx.arg(1)),
                           ctx.arg(2) == "1"   ? 1
                           : ctx.arg(2) == "2" ? 2
                                               : 0,
                           round, routes_ready);
  }
  ctx.w.array(sender ? 5 : 3);
  ctx.w.bulk(cl(ctx).node_id());
  ctx.w.integer(static_cast<int64_t>(cl(ctx).applied_epoch()));
  ctx.w.integer(cl(ctx).ready() ? 1 : 0);
  if (sender) {
    ctx.w.integer(cl(ctx).marked_down(std::string(ctx.arg(1))) ? 1 : 0);
    ctx.w.integer(static_cast<int64_t>(cl(ctx).catch_up_round()));
  }
}

void cmd_ringkv_repl(CommandContext& ctx) {
  // RINGKV.REPL <key> <value> <expire ms or -1> <version> <"t" for a tombstone, else "">
  int64_t expire;
  uint64_t version;
  if (!parse_int64(ctx.arg(3), &expire) || !parse_uint64(ctx.arg(4), &version)) {
    ctx.error(err::kSyntax);
    return;
  }
  Token t = token_of(ctx.arg(1));
  const cluster::View& v = view_of(ctx);
  if (v.distributed && !v.holds(t) && ctx.session.peer_epoch < v.config.epoch) {
    // A sender with an older view: this node no longer holds the range (and may have dropped
    // it already), so the copy would be a stray. (A sender ahead of us is right: accept.)
    ctx.w.integer(0);
    return;
  }
  bool applied = ctx.server.store().apply(ctx.arg(1), t, ctx.arg(2), expire, version,
                                          ctx.arg(5) == "t", ctx.now);
  ctx.w.integer(applied ? 1 : 0);
}

namespace {
template <class F>
void raw_entry(CommandContext& ctx, std::string_view key, F&& f) {
  Token t = token_of(key);
  ctx.server.store().scan_range(t, t, 1 << 20, ctx.now, true, [&](const store::EntryView& e) {
    if (e.key() == key) f(e);
  });
}
}  // namespace

// While this node recovers its ranges after a restart, it must not serve them as a source.
bool refuse_while_recovering(CommandContext& ctx, Token first, Token last) {
  const cluster::View& v = view_of(ctx);
  if (!v.recovering) return false;
  for (const auto& p : v.pending) {
    if (p.range.first <= last && first <= p.range.last) {
      ctx.error("RECOVERING this node is still receiving that range after a restart");
      return true;
    }
  }
  return false;
}

void cmd_ringkv_getentry(CommandContext& ctx) {
  Token t = token_of(ctx.arg(1));
  bool have = with_key(ctx, ctx.arg(1), [](store::Access& a) { return a.version() != 0; });
  if (!have && refuse_while_recovering(ctx, t, t)) return;
  bool found = false;
  raw_entry(ctx, ctx.arg(1), [&](const store::EntryView& e) {
    found = true;
    ctx.w.array(4);
    ctx.w.bulk(e.tombstone() ? std::string_view() : e.value());
    ctx.w.bulk(std::to_string(e.expire_at()));
    ctx.w.bulk(std::to_string(e.version()));
    ctx.w.bulk(e.tombstone() ? "t" : "");
  });
  if (!found) ctx.w.null_array();
}

void cmd_ringkv_version(CommandContext& ctx) {
  uint64_t v = with_key(ctx, ctx.arg(1), [](store::Access& a) { return watch_version(a); });
  ctx.w.integer(static_cast<int64_t>(v));
}

void cmd_ringkv_fetch(CommandContext& ctx) {
  // RINGKV.FETCH <first> <last> <count>: entries (tombstones too) in token order.
  Token first, last;
  int64_t count;
  if (!parse_token(ctx.arg(1), &first) || !parse_token(ctx.arg(2), &last) ||
      !parse_int64(ctx.arg(3), &count) || count < 1) {
    ctx.error(err::kSyntax);
    return;
  }
  if (refuse_while_recovering(ctx, first, last)) return;
  std::string body;
  resp::Writer w(&body, 2);
  size_t n = 0;
  Token next = ctx.server.store().scan_range(
      first, last, static_cast<size_t>(count), ctx.now, true, [&](const store::EntryView& e) {
        w.bulk(e.key());
        w.bulk(e.tombstone() ? std::string_view() : e.value());
        w.integer(e.expire_at());
        w.bulk(std::to_string(e.version()));
        w.integer(e.tombstone() ? 1 : 0);
        ++n;
      });
  bool done = next == last + 1;
  ctx.w.array(2 + 5 * n);
  ctx.w.integer(done ? 1 : 0);
  ctx.w.bulk(std::to_string(next));
  ctx.w.raw(body);
}

void cmd_ringkv_rangestats(CommandContext& ctx) {
  if (ctx.argc() % 2 != 1) {
    ctx.error(err::kSyntax);
    return;
  }
  std::vector<ring::TokenRange> ranges;
  for (size_t i = 1; i + 1 < ctx.argc(); i += 2) {
    ring::TokenRange r;
    if (!parse_token(ctx.arg(i), &r.first) || !parse_token(ctx.arg(i + 1), &r.last)) {
      ctx.error(err::kSyntax);
      return;
    }
    ranges.push_back(r);
  }
  auto stats = cl(ctx).range_stats(ranges, ctx.now);
  ctx.w.array(stats.size() * 2);
  for (auto [k, b] : stats) {
    ctx.w.integer(static_cast<int64_t>(k));
    ctx.w.integer(static_cast<int64_t>(b));
  }
}

void cmd_ringkv_digest(CommandContext& ctx) {
  Token first, last;
  if (!parse_token(ctx.arg(1), &first) || !parse_token(ctx.arg(2), &last) || first > last) {
    ctx.error(err::kSyntax);
    return;
  }
  auto [count, digest] = cl(ctx).digest(first, last, ctx.now);
  ctx.w.array(2);
  ctx.w.integer(static_cast<int64_t>(count));
  ctx.w.bulk(token_hex(digest));
}

// RINGKV.COUNT and RINGKV.KEYS take, after their own arguments, the asking node's view of every
// server as "<id> <2 ready, 1 live, 0 down>" pairs, and count a key here when this node is its
// primary in that view: while nodes disagree (a node just came up or became ready), each key is
// still counted by exactly one node. Servers not named keep this node's own flags.
namespace {
struct PrimaryFlags {
  std::vector<uint8_t> live, ready;
};

PrimaryFlags primary_flags(CommandContext& ctx, const cluster::View& v, size_t from) {
  PrimaryFlags f{v.live, v.ready};
  for (size_t i = from; i + 1 < ctx.argc(); i += 2) {
    auto idx = v.ring->index_of(ctx.arg(i));
    if (!idx) continue;
    std::string_view rank = ctx.arg(i + 1);
    f.live[*idx] = rank != "0";
    f.ready[*idx] = rank == "2";
  }
  return f;
}
}  // namespace

void cmd_ringkv_count(CommandContext& ctx) {
  const cluster::View& v = view_of(ctx);
  PrimaryFlags f = primary_flags(ctx, v, 1);
  int64_t n = 0;
  Token c = 0;
  do {
    c = ctx.server.store().scan(c, 4096, ctx.now, [&](const store::EntryView& e) {
      if (v.primary(e.token(), f.live, f.ready) == v.self) ++n;
    });
  } while (c != 0);
  ctx.w.integer(n);
}

// A random key of this node's store (any copy it holds), for RANDOMKEY across the cluster.
void cmd_ringkv_randomkey(CommandContext& ctx) {
  std::string key;
  if (ctx.server.store().random_key(ctx.now, &key)) {
    ctx.w.bulk(key);
  } else {
    ctx.w.null();
  }
}

void cmd_ringkv_keys(CommandContext& ctx) {
  const cluster::View& v = view_of(ctx);
  std::string_view pattern = ctx.arg(1);
  PrimaryFlags f = primary_flags(ctx, v, 2);
  bool all = pattern == "*";
  std::vector<std::string> keys;
  Token c = 0;
  do {
    c = ctx.server.store().scan(c, 4096, ctx.now, [&](const store::EntryView& e) {
      if (v.primary(e.token(), f.live, f.ready) != v.self) return;
      if (all || glob_match(pattern, e.key())) keys.emplace_back(e.key());
    });
  } while (c != 0);
  ctx.w.array(keys.size());
  for (const auto& k : keys) ctx.w.bulk(k);
}

void cmd_ringkv_scan(CommandContext& ctx) {
  // RINGKV.SCAN <cursor> <last> <count> <pattern or ""> <type or ""> [1]: the last argument,
  // sent only for MATCH "", says that the empty pattern applies (it matches the empty key only).
  Token cursor, last;
  int64_t count;
  if (!parse_token(ctx.arg(1), &cursor) || !parse_token(ctx.arg(2), &last) ||
      !parse_int64(ctx.arg(3), &count) || count < 1) {
    ctx.error(err::kSyntax);
    return;
  }
  std::string_view pattern = ctx.arg(4), type = ctx.arg(5);
  const bool match = !pattern.empty() || (ctx.args.size() == 7 && ctx.arg(6) == "1");
  if (ctx.args.size() == 7 && ctx.arg(6) != "1") {
    ctx.error(err::kSyntax);
    return;
  }
  bool type_ok = type.empty() || equals_nocase(type, "string");
  std::vector<std::string> keys;
  int64_t visited = 0;
  Token next = ctx.server.store().scan_range(
      cursor, last, static_cast<size_t>(count), ctx.now, false, [&](const store::EntryView& e) {
        ++visited;
        if (!type_ok) return;
        if (match && pattern != "*" && !glob_match(pattern, e.key())) return;
        keys.emplace_back(e.key());
      });
  // [done (1: the range is finished), next cursor, keys looked at, matching keys...]
  ctx.w.array(3 + keys.size());
  ctx.w.integer(next == last + 1 ? 1 : 0);
  ctx.w.bulk(std::to_string(next));
  ctx.w.integer(visited);
  for (const auto& k : keys) ctx.w.bulk(k);
}

void cmd_ringkv_flush(CommandContext& ctx) {
  ctx.server.touch_all_watched();
  ctx.server.store().clear();
  cl(ctx).clear_hints();
  ctx.w.ok();
}

void cmd_ringkv_exec(CommandContext& ctx) {
  ExecRequest req;
  if (!parse_exec_request(ctx.args, &req)) {
    ctx.error("ERR RINGKV.EXEC: malformed request");
    return;
  }
  std::unique_lock<std::shared_mutex> exclusive;
  if (ctx.server.exec_lock_needed())
    exclusive = std::unique_lock<std::shared_mutex>(ctx.server.exec_mutex());
  for (auto& [key, ver] : req.watched) {
    uint64_t cur = with_key(ctx, key, [](store::Access& a) { return watch_version(a); });
    if (cur != ver) {
      ctx.w.null_array();
      return;
    }
  }
  const CommandTable& table = CommandTable::instance();
  ctx.w.array(req.cmds.size());
  ExecScope in_exec(ctx.session);
  for (auto& args : req.cmds) {
    const CommandSpec* spec = table.find(args[0]);
    const CommandSpec* parent = nullptr;
    if (spec && !spec->subcommands.empty() && args.size() > 1) {
      parent = spec;
      spec = table.find_sub(*parent, args[1]);
    }
    if (spec == nullptr || !spec->arity_ok(args.size())) {
      ctx.error("ERR unknown command or wrong number of arguments inside a transaction");
      continue;
    }
    ctx.server.execute(ctx.conn, ctx.session, args, spec, parent, ctx.now);
  }
}

void cmd_ringkv_final(CommandContext& ctx) {
  // Routed in the dispatcher (cluster_dispatch.cc); reached only on a lone node, where the
  // wrapped request simply runs.
  std::vector<std::string_view> inner(ctx.args.begin() + 1, ctx.args.end());
  const CommandTable& table = CommandTable::instance();
  const CommandSpec* spec = table.find(inner[0]);
  const CommandSpec* parent = nullptr;
  if (spec && !spec->subcommands.empty() && inner.size() > 1) {
    parent = spec;
    spec = table.find_sub(*parent, inner[1]);
  }
  if (spec == nullptr || !spec->arity_ok(inner.size())) {
    ctx.error("ERR RINGKV.FINAL: unknown command or wrong number of arguments");
    return;
  }
  ctx.server.execute(ctx.conn, ctx.session, inner, spec, parent, ctx.now);
}

void cmd_ringkv_cfg(CommandContext& ctx) {
  cluster::LocalConfigService* svc = cl(ctx).local_service();
  if (svc == nullptr) {
    ctx.error("ERR this node does not host the ring configuration (its discovery is " +
              cl(ctx).config_service()->describe() + ")");
    return;
  }
  std::string_view sub = ctx.arg(1);
  if (equals_nocase(sub, "get") && ctx.argc() == 2) {
    ctx.w.raw(cfg_document_reply(*svc, ctx.conn.protocol()));
  } else if (equals_nocase(sub, "wait") && ctx.argc() == 4) {
    // A long poll: the document once it is newer than <epoch> (at once when it is older), or
    // after <ms> whatever it is.
    // The reply comes when this node has applied a newer epoch (which follows the document
    // within one turn of its control thread), so a node following this service asks once per
    // change instead of polling.
    uint64_t known;
    int64_t ms;
    if (!parse_uint64(ctx.arg(2), &known) || !parse_int64(ctx.arg(3), &ms) || ms < 0 || ms > 60000)
      return ctx.error(err::kSyntax);
    // A node's long poll (its links say RINGKV.HELLO first) tells which epoch it runs.
    if (!ctx.session.peer_id.empty()) svc->note_epoch(known, ctx.session.peer_id);
    auto cur = svc->load();
    // An older document than the asker's at once, too: this service lost its document (its
    // node restarted without ring-state-file), and the nodes restore it as soon as they see it.
    if (cur && cur->epoch != known) {
      ctx.w.bulk(cur->to_json());
      return;
    }
    auto d = std::make_shared<net::Deferred>(ctx.conn.defer());
    auto keep = ctx.conn.shared_from_this();
    const int proto = ctx.conn.protocol();
    cl(ctx).when_epoch(ctx.conn.loop().index(), known + 1, ms, [svc, d, keep, proto] {
      d->complete(keep->closing() ? std::string() : cfg_document_reply(*svc, proto));
    });
  } else if (equals_nocase(sub, "cas") && ctx.argc() == 4) {
    uint64_t expected;
    if (!parse_uint64(ctx.arg(2), &expected)) return ctx.error(err::kSyntax);
    auto next = cluster::RingConfig::from_json(ctx.arg(3));
    if (!next) return ctx.error("ERR " + next.status().message());
    Status st = svc->store(expected, *next);
    if (st)
      ctx.w.ok();
    else if (st.code() == Code::kFailedPrecondition)
      ctx.error("EPOCH " + st.message());
    else
      ctx.error("ERR " + st.message());
  } else if (equals_nocase(sub, "report") && ctx.argc() == 3) {
    auto s = cluster::NodeStatus::from_json(ctx.arg(2));
    if (!s) return ctx.error("ERR " + s.status().message());
    svc->report(*s);
    ctx.w.ok();
  } else if (equals_nocase(sub, "statuses") && ctx.argc() == 2) {
    auto all = svc->statuses();
    std::string out = "[";
    if (all) {
      for (size_t k = 0; k < all->size(); ++k) {
        if (k) out += ",";
        out += (*all)[k].to_json();
      }
    }
    out += "]";
    ctx.w.bulk(out);
  } else {
    ctx.error(err::kSyntax);
  }
}

}  // namespace ringkv::server
