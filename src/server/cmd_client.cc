// CLIENT and its subcommands, with Redis 7.0's argument parsing, replies and CLIENT LIST format.
// Clients live on several event loops: LIST and KILL visit each loop on its own thread
// (Server::gather) and answer through a deferred reply.
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

// "ERR unknown subcommand or wrong number of arguments for '<sub>'. Try CLIENT HELP."
void subcommand_syntax_error(CommandContext& ctx) {
  ctx.error("ERR unknown subcommand or wrong number of arguments for '" +
            std::string(c_string(ctx.arg(1)).substr(0, 128)) + "'. Try CLIENT HELP.");
}

// Redis's getClientTypeByName; -1 when unknown.
enum ClientType { kTypeNormal, kTypeSlave, kTypePubSub, kTypeMaster };
int client_type_by_name(std::string_view name) {
  if (equals_nocase(name, "normal")) return kTypeNormal;
  if (equals_nocase(name, "slave") || equals_nocase(name, "replica")) return kTypeSlave;
  if (equals_nocase(name, "pubsub")) return kTypePubSub;
  if (equals_nocase(name, "master")) return kTypeMaster;
  return -1;
}

// Peer links of other nodes carry replication and forwarded requests: they are this node's
// "masters", never a normal client (so CLIENT KILL TYPE normal leaves the cluster alone).
int client_type(const ClientSession& s) { return s.internal ? kTypeMaster : kTypeNormal; }

size_t argv_bytes(const std::vector<std::string_view>& args) {
  size_t n = 0;
  for (auto a : args) n += a.size();
  return n;
}

// One line of CLIENT LIST, in Redis 7.0's format. Loop thread of `c` only. `current_argv` is the
// size of the arguments of the request being run on `c` (argv-mem), if any.
std::string client_line(net::Connection& c, Millis now, size_t current_argv) {
  auto* s = static_cast<ClientSession*>(c.session());
  // In Redis's getClientInfoString order.
  std::string flags;
  if (s->monitor) flags += 'O';
  if (s->in_multi) flags += 'x';
  if (s->is_postponed) flags += 'b';
  if (s->watch_dirty.load()) flags += 'd';
  if (c.closing()) flags += 'A';
  if (s->no_evict) flags += 'e';
  if (flags.empty()) flags = "N";
  size_t argv_mem = current_argv;
  for (const auto& a : s->postponed) argv_mem += a.size();
  size_t multi_mem = 0;
  for (const auto& q : s->queued)
    for (const auto& a : q) multi_mem += a.size();
  size_t omem = c.pending_output();
  std::string line;
  line.reserve(300);
  line += "id=" + std::to_string(c.id());
  line += " addr=" + c.peer_address();
  line += " laddr=" + c.local_address();
  line += " fd=" + std::to_string(c.fd());
  line += " name=" + s->name;
  line += " age=" + std::to_string((now - c.created_ms()) / 1000);
  line += " idle=" + std::to_string(std::max<Millis>(0, now - c.last_interaction_ms()) / 1000);
  line += " flags=" + flags;
  line += " db=" + std::to_string(s->db) + " sub=0 psub=0 ssub=0";
  line += " multi=" + std::to_string(s->in_multi ? static_cast<int64_t>(s->queued.size()) : -1);
  line += " qbuf=" + std::to_string(c.query_buffer_size());
  line += " qbuf-free=" + std::to_string(c.query_buffer_capacity() - c.query_buffer_size());
  line += " argv-mem=" + std::to_string(argv_mem);
  line += " multi-mem=" + std::to_string(multi_mem);
  // ringkv has no per-client reply buffer (replies are built in the connection's output
  // string), so its size and peak are 0; the output itself is omem.
  line += " rbs=0 rbp=0";
  line += " obl=0 oll=0 omem=" + std::to_string(omem);
  line += " tot-mem=" + std::to_string(c.query_buffer_capacity() + omem + argv_mem + multi_mem +
                                       sizeof(net::Connection) + sizeof(ClientSession));
  line += omem > 0 ? " events=rw" : " events=r";
  line += " cmd=" + s->last_command();
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
  ctx.w.verbatim(client_line(ctx.conn, ctx.now, argv_bytes(ctx.args)));
}

void cmd_client_list(CommandContext& ctx) {
  // CLIENT LIST [TYPE normal|master|replica|pubsub] | [ID id [id ...]]: one filter, as Redis.
  std::vector<uint64_t> ids;
  int type = -1;
  if (ctx.argc() == 4 && equals_nocase(ctx.arg(2), "type")) {
    type = client_type_by_name(ctx.arg(3));
    if (type == -1) {
      ctx.error("ERR Unknown client type '" + std::string(c_string(ctx.arg(3))) + "'");
      return;
    }
  } else if (ctx.argc() >= 4 && equals_nocase(ctx.arg(2), "id")) {
    for (size_t i = 3; i < ctx.argc(); ++i) {
      int64_t id;
      if (!parse_int64(ctx.arg(i), &id)) {
        ctx.error("ERR Invalid client ID");
        return;
      }
      if (id > 0) ids.push_back(static_cast<uint64_t>(id));  // others match no client
    }
    if (ids.empty()) {
      ctx.w.verbatim("");
      return;
    }
  } else if (ctx.argc() != 2) {
    ctx.error(err::kSyntax);
    return;
  }
  const int proto = ctx.conn.protocol();
  const Millis now = ctx.now;
  const uint64_t me = ctx.session.id;
  const size_t my_argv = argv_bytes(ctx.args);
  auto reply = std::make_shared<net::Deferred>(ctx.conn.defer());
  ctx.server.gather(
      [ids, type, now, me, my_argv](net::LoopNet& net) {
        std::vector<net::Connection*> conns(net.connections.begin(), net.connections.end());
        std::sort(conns.begin(), conns.end(), [](auto* a, auto* b) { return a->id() < b->id(); });
        std::string out;
        for (net::Connection* c : conns) {
          auto* s = static_cast<ClientSession*>(c->session());
          if (s == nullptr) continue;
          if (!ids.empty() && std::find(ids.begin(), ids.end(), c->id()) == ids.end()) continue;
          if (type != -1 && client_type(*s) != type) continue;
          out += client_line(*c, now, c->id() == me ? my_argv : 0);
        }
        return out;
      },
      [reply, proto](std::vector<std::string> parts) {
        std::string all;
        for (auto& p : parts) all += p;
        std::string buf;
        resp::Writer w(&buf, proto);
        w.verbatim(all);
        reply->complete(std::move(buf));
      });
}

void cmd_client_kill(CommandContext& ctx) {
  // Old form: CLIENT KILL <ip:port> (+OK or "No such client"; may kill the caller).
  // New form: CLIENT KILL <filter> <value> ... (the number killed; SKIPME yes by default).
  struct Filter {
    std::string addr, laddr;
    uint64_t id = 0;
    int type = -1;
    bool skipme = true;
  } f;
  const bool old_form = ctx.argc() == 3;
  if (old_form) {
    f.addr = std::string(ctx.arg(2));
    f.skipme = false;
  } else {
    for (size_t i = 2; i < ctx.argc(); i += 2) {
      const bool more = ctx.argc() > i + 1;
      std::string_view k = ctx.arg(i);
      std::string_view v = more ? ctx.arg(i + 1) : std::string_view();
      if (equals_nocase(k, "id") && more) {
        int64_t id;
        if (!parse_int64(v, &id) || id < 1) {
          ctx.error("ERR client-id should be greater than 0");
          return;
        }
        f.id = static_cast<uint64_t>(id);
      } else if (equals_nocase(k, "type") && more) {
        f.type = client_type_by_name(v);
        if (f.type == -1) {
          ctx.error("ERR Unknown client type '" + std::string(c_string(v)) + "'");
          return;
        }
      } else if (equals_nocase(k, "addr") && more) {
        f.addr = std::string(v);
      } else if (equals_nocase(k, "laddr") && more) {
        f.laddr = std::string(v);
      } else if (equals_nocase(k, "user") && more) {
        if (v != "default") {  // the only user ringkv has
          ctx.error("ERR No such user '" + std::string(c_string(v)) + "'");
          return;
        }
      } else if (equals_nocase(k, "skipme") && more) {
        if (equals_nocase(v, "yes")) {
          f.skipme = true;
        } else if (equals_nocase(v, "no")) {
          f.skipme = false;
        } else {
          ctx.error(err::kSyntax);
          return;
        }
      } else {
        ctx.error(err::kSyntax);
        return;
      }
    }
  }
  const uint64_t me = ctx.session.id;
  const int proto = ctx.conn.protocol();
  auto reply = std::make_shared<net::Deferred>(ctx.conn.defer());
  ctx.server.gather(
      [f, me](net::LoopNet& net) {
        std::vector<std::shared_ptr<net::Connection>> victims;
        for (net::Connection* c : net.connections) {
          auto* s = static_cast<ClientSession*>(c->session());
          if (s == nullptr) continue;
          if (f.id && c->id() != f.id) continue;
          if (f.type != -1 && client_type(*s) != f.type) continue;
          if (!f.addr.empty() && c->peer_address() != f.addr) continue;
          if (!f.laddr.empty() && c->local_address() != f.laddr) continue;
          if (f.skipme && c->id() == me) continue;
          victims.push_back(c->shared_from_this());
        }
        for (auto& c : victims) {
          // The caller gets its reply first (Redis's CLIENT_CLOSE_AFTER_REPLY).
          if (c->id() == me)
            c->close_after_reply();
          else
            c->close();
        }
        return std::to_string(victims.size());
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

void cmd_client_pause(CommandContext& ctx) {
  // CLIENT PAUSE <timeout ms> [WRITE|ALL]: the mode is checked before the timeout, as Redis.
  if (ctx.argc() > 4) return subcommand_syntax_error(ctx);
  Server::PauseType type = Server::kPauseAll;
  if (ctx.argc() == 4) {
    if (equals_nocase(ctx.arg(3), "write")) {
      type = Server::kPauseWrite;
    } else if (equals_nocase(ctx.arg(3), "all")) {
      type = Server::kPauseAll;
    } else {
      ctx.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
      return;
    }
  }
  int64_t ms;
  if (!parse_int64(ctx.arg(2), &ms)) {
    ctx.error("ERR timeout is not an integer or out of range");
    return;
  }
  if (ms < 0) {
    ctx.error("ERR timeout is negative");
    return;
  }
  // Redis 7.0 adds the timeout to the current time without an overflow check: a sum past
  // LLONG_MAX wraps to an end time in the past, which pauses nothing.
  Millis end = static_cast<Millis>(static_cast<uint64_t>(ctx.now) + static_cast<uint64_t>(ms));
  ctx.server.pause_clients(end, type);
  ctx.w.ok();
}

void cmd_client_unpause(CommandContext& ctx) {
  ctx.server.unpause_clients();
  ctx.w.ok();
}

void cmd_client_unblock(CommandContext& ctx) {
  // CLIENT UNBLOCK <id> [TIMEOUT|ERROR]. ringkv has no blocking commands, so no client is ever
  // blocked in one: the reply is 0, after Redis's argument checks.
  if (ctx.argc() > 4) return subcommand_syntax_error(ctx);
  if (ctx.argc() == 4 && !equals_nocase(ctx.arg(3), "timeout") &&
      !equals_nocase(ctx.arg(3), "error")) {
    ctx.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    return;
  }
  int64_t id;
  if (!parse_int64(ctx.arg(2), &id)) {
    ctx.error(err::kNotInteger);
    return;
  }
  ctx.w.integer(0);
}

// ringkv has no client-side caching (CLIENT TRACKING is not implemented): these answer as Redis
// answers a client that never enabled tracking.
void cmd_client_getredir(CommandContext& ctx) { ctx.w.integer(-1); }

void cmd_client_trackinginfo(CommandContext& ctx) {
  ctx.w.map(3);
  ctx.w.bulk("flags");
  ctx.w.set(1);
  ctx.w.bulk("off");
  ctx.w.bulk("redirect");
  ctx.w.integer(-1);
  ctx.w.bulk("prefixes");
  ctx.w.array(0);
}

void cmd_client_caching(CommandContext& ctx) {
  ctx.error(
      "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
      "OPTOUT mode enabled");
}

void cmd_client_help(CommandContext& ctx) {
  // Redis 7.0's text, without CLIENT TRACKING (not implemented).
  static const char* kHelp[] = {
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CACHING (YES|NO)",
      "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
      "GETREDIR",
      "    Return the client ID we are redirecting to when tracking is enabled.",
      "GETNAME",
      "    Return the name of the current connection.",
      "ID",
      "    Return the ID of the current connection.",
      "INFO",
      "    Return information about the current client connection.",
      "KILL <ip:port>",
      "    Kill connection made from <ip:port>.",
      "KILL <option> <value> [<option> <value> [...]]",
      "    Kill connections. Options are:",
      "    * ADDR (<ip:port>|<unixsocket>:0)",
      "      Kill connections made from the specified address",
      "    * LADDR (<ip:port>|<unixsocket>:0)",
      "      Kill connections made to specified local address",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
      "      Kill connections by type.",
      "    * USER <username>",
      "      Kill connections authenticated by <username>.",
      "    * SKIPME (YES|NO)",
      "      Skip killing current connection (default: yes).",
      "LIST [options ...]",
      "    Return information about client connections. Options:",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
      "      Return clients of specified type.",
      "UNPAUSE",
      "    Stop the current client pause, resuming traffic.",
      "PAUSE <timeout> [WRITE|ALL]",
      "    Suspend all, or just write, clients for <timeout> milliseconds.",
      "REPLY (ON|OFF|SKIP)",
      "    Control the replies sent to the current connection.",
      "SETNAME <name>",
      "    Assign the name <name> to the current connection.",
      "UNBLOCK <clientid> [TIMEOUT|ERROR]",
      "    Unblock the specified blocked client.",
      "TRACKINGINFO",
      "    Report tracking status for the current connection.",
      "NO-EVICT (ON|OFF)",
      "    Protect current client connection from eviction.",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
