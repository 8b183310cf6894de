// CLIENT and its subcommands.
#include <string>

#include "net/connection.h"
#include "server/util.h"

namespace ringkv::server {

namespace {

bool valid_name(std::string_view name) {
  for (char c : name)
    if (c < '!' || c > '~') return false;
  return true;
}

// One line of CLIENT LIST, in Redis 7.0's format. Loop thread of `c` only.
std::string client_line(net::Connection& c, Millis now) {
  auto* s = static_cast<ClientSession*>(c.session());
  std::string flags;
  if (s->in_multi) flags += 'x';
  if (s->monitor) flags += 'O';
  if (s->no_evict) flags += 'e';
  if (c.closing()) flags += 'A';
  if (flags.empty()) flags = "N";
  std::string line;
  line.reserve(256);
  line += "id=" + std::to_string(c.id());
  line += " addr=" + c.peer_address();
  line += " laddr=" + c.local_address();
  line += " fd=" + std::to_string(c.fd());
  line += " name=" + s->name;
  line += " age=" + std::to_string((now - c.created_ms()) / 1000);
  line += " idle=" + std::to_string((now - c.last_interaction_ms()) / 1000);
  line += " flags=" + flags;
  line += " db=0 sub=0 psub=0 ssub=0";
  line += " multi=" + std::to_string(s->in_multi ? static_cast<int64_t>(s->queued.size()) : -1);
  line += " qbuf=" + std::to_string(c.query_buffer_size());
  line += " qbuf-free=" + std::to_string(c.query_buffer_capacity() - c.query_buffer_size());
  line += " argv-mem=0 multi-mem=0 rbs=0 rbp=0";
  size_t omem = c.pending_output();
  line += " obl=0 oll=0 omem=" + std::to_string(omem);
  line += " tot-mem=" + std::to_string(c.query_buffer_capacity() + omem + sizeof(net::Connection));
  line += " events=r";
  line += " cmd=" + s->last_command;
  line += " user=default redir=-1 resp=" + std::to_string(c.protocol());
  line += "\n";
  return line;
}

}  // namespace

void cmd_client_id(CommandContext& ctx) { ctx.w.integer(static_cast<int64_t>(ctx.session.id)); }

void cmd_client_setname(CommandContext& ctx) {
  if (!valid_name(ctx.arg(2))) {
    ctx.error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  ctx.session.name.assign(ctx.arg(2));
  ctx.w.ok();
}

void cmd_client_getname(CommandContext& ctx) {
  if (ctx.session.name.empty())
    ctx.w.null();
  else
    ctx.w.bulk(ctx.session.name);
}

void cmd_client_info(CommandContext& ctx) {
  ctx.w.verbatim(client_line(ctx.conn, ctx.now));
}

void cmd_client_list(CommandContext& ctx) {
  // CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]
  std::vector<uint64_t> ids;
  bool only_none = false;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    if (equals_nocase(ctx.arg(i), "type") && i + 1 < ctx.argc()) {
      std::string_view t = ctx.arg(i + 1);
      if (equals_nocase(t, "normal")) {
      } else if (equals_nocase(t, "master") || equals_nocase(t, "replica") ||
                 equals_nocase(t, "slave") || equals_nocase(t, "pubsub")) {
        only_none = true;
      } else {
        ctx.error("ERR Unknown client type '" + std::string(t) + "'");
        return;
      }
      ++i;
    } else if (equals_nocase(ctx.arg(i), "id") && i + 1 < ctx.argc()) {
      for (++i; i < ctx.argc(); ++i) {
        int64_t id;
        if (!parse_int64(ctx.arg(i), &id) || id <= 0) {
          ctx.error("ERR Invalid client ID");
          return;
        }
        ids.push_back(static_cast<uint64_t>(id));
      }
    } else {
      ctx.error(err::kSyntax);
      return;
    }
  }
  if (only_none) {
    ctx.w.verbatim("");
    return;
  }
  net::Deferred reply = ctx.conn.defer();
  int proto = ctx.conn.protocol();
  Millis now = ctx.now;
  auto shared_reply = std::make_shared<net::Deferred>(std::move(reply));
  ctx.server.gather(
      [ids, now](net::LoopNet& net) {
        std::vector<net::Connection*> conns(net.connections.begin(), net.connections.end());
        std::sort(conns.begin(), conns.end(), [](auto* a, auto* b) { return a->id() < b->id(); });
        std::string out;
        for (net::Connection* c : conns) {
          if (!ids.empty() && std::find(ids.begin(), ids.end(), c->id()) == ids.end()) continue;
          out += client_line(*c, now);
        }
        return out;
      },
      [shared_reply, proto](std::vector<std::string> parts) {
        std::string all;
        for (auto& p : parts) all += p;
        std::string buf;
        resp::Writer w(&buf, proto);
        w.verbatim(all);
        shared_reply->complete(std::move(buf));
      });
}

void cmd_client_kill(CommandContext& ctx) {
  // Old form: CLIENT KILL addr:port. New form: filters, replies the number killed.
  struct Filter {
    std::string addr, laddr;
    uint64_t id = 0;
    bool skipme = true;
    int64_t maxage = -1;
    bool type_none = false;
  } f;
  bool old_form = ctx.argc() == 3;
  if (old_form) {
    f.addr = std::string(ctx.arg(2));
    f.skipme = false;
  } else {
    if (ctx.argc() % 2 != 0) {
      ctx.error(err::kSyntax);
      return;
    }
    for (size_t i = 2; i + 1 < ctx.argc(); i += 2) {
      std::string_view k = ctx.arg(i), v = ctx.arg(i + 1);
      if (equals_nocase(k, "id")) {
        int64_t id;
        if (!parse_int64(v, &id) || id <= 0) {
          ctx.error("ERR client-id should be greater than 0");
          return;
        }
        f.id = static_cast<uint64_t>(id);
      } else if (equals_nocase(k, "addr")) {
        f.addr = std::string(v);
      } else if (equals_nocase(k, "laddr")) {
        f.laddr = std::string(v);
      } else if (equals_nocase(k, "type")) {
        if (equals_nocase(v, "normal")) {
        } else if (equals_nocase(v, "master") || equals_nocase(v, "replica") ||
                   equals_nocase(v, "slave") || equals_nocase(v, "pubsub")) {
          f.type_none = true;
        } else {
          ctx.error("ERR Unknown client type '" + std::string(v) + "'");
          return;
        }
      } else if (equals_nocase(k, "user")) {
        if (v != "default") f.type_none = true;
      } else if (equals_nocase(k, "skipme")) {
        if (equals_nocase(v, "yes")) f.skipme = true;
        else if (equals_nocase(v, "no")) f.skipme = false;
        else {
          ctx.error(err::kSyntax);
          return;
        }
      } else if (equals_nocase(k, "maxage")) {
        if (!parse_int64(v, &f.maxage) || f.maxage < 0) {
          ctx.error(err::kSyntax);
          return;
        }
      } else {
        ctx.error(err::kSyntax);
        return;
      }
    }
  }
  uint64_t me = ctx.session.id;
  int proto = ctx.conn.protocol();
  Millis now = ctx.now;
  auto reply = std::make_shared<net::Deferred>(ctx.conn.defer());
  ctx.server.gather(
      [f, me, now](net::LoopNet& net) {
        int64_t killed = 0;
        std::vector<std::shared_ptr<net::Connection>> victims;
        for (net::Connection* c : net.connections) {
          if (f.type_none) break;
          if (f.id && c->id() != f.id) continue;
          if (!f.addr.empty() && c->peer_address() != f.addr) continue;
          if (!f.laddr.empty() && c->local_address() != f.laddr) continue;
          if (f.maxage >= 0 && (now - c->created_ms()) / 1000 < f.maxage) continue;
          if (f.skipme && c->id() == me) continue;
          victims.push_back(c->shared_from_this());
        }
        for (auto& c : victims) {
          ++killed;
          if (c->id() == me)
            c->close_after_reply();
          else
            c->close();
        }
        return std::to_string(killed);
      },
      [reply, old_form, proto](std::vector<std::string> parts) {
        int64_t total = 0;
        for (auto& p : parts) total += std::stoll(p);
        std::string buf;
        resp::Writer w(&buf, proto);
        if (old_form) {
          if (total == 0)
            w.error("ERR No such client");
          else
            w.ok();
        } else {
          w.integer(total);
        }
        reply->complete(std::move(buf));
      });
}

void cmd_client_reply(CommandContext& ctx) {
  std::string_view m = ctx.arg(2);
  if (equals_nocase(m, "on")) {
    ctx.session.reply_mode = ClientSession::ReplyMode::kOn;
    ctx.w.ok();
  } else if (equals_nocase(m, "off")) {
    ctx.session.reply_mode = ClientSession::ReplyMode::kOff;
  } else if (equals_nocase(m, "skip")) {
    if (ctx.session.reply_mode != ClientSession::ReplyMode::kOff)
      ctx.session.reply_mode = ClientSession::ReplyMode::kSkip;
  } else {
    ctx.error(err::kSyntax);
  }
}

void cmd_client_no_evict(CommandContext& ctx) {
  std::string_view m = ctx.arg(2);
  if (equals_nocase(m, "on"))
    ctx.session.no_evict = true;
  else if (equals_nocase(m, "off"))
    ctx.session.no_evict = false;
  else {
    ctx.error(err::kSyntax);
    return;
  }
  ctx.w.ok();
}

void cmd_client_setinfo(CommandContext& ctx) { ctx.w.ok(); }
void cmd_client_pause(CommandContext& ctx) { ctx.w.ok(); }
void cmd_client_unpause(CommandContext& ctx) { ctx.w.ok(); }

void cmd_client_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GETNAME", "    Return the name of the current connection.",
      "ID", "    Return the ID of the current connection.",
      "INFO", "    Return information about the current client connection.",
      "KILL <ip:port>", "    Kill connection made from <ip:port>.",
      "KILL <option> <value> [<option> <value> [...]]",
      "    Kill connections. Options are: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE.",
      "LIST [TYPE normal|master|replica|pubsub] [ID <id> [<id> ...]]",
      "    Return information about client connections.",
      "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
      "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
      "SETNAME <name>", "    Assign the name <name> to the current connection.",
      "HELP", "    Print this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
