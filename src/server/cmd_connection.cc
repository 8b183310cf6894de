// Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET.
#include <string>

#include "net/connection.h"
#include "server/util.h"
#include "server/version.h"

namespace ringkv::server {

void cmd_ping(CommandContext& ctx) {
  if (ctx.argc() > 2) {
    ctx.error("ERR wrong number of arguments for 'ping' command");
    return;
  }
  if (ctx.argc() == 2)
    ctx.w.bulk(ctx.arg(1));
  else
    ctx.w.simple("PONG");
}

void cmd_echo(CommandContext& ctx) { ctx.w.bulk(ctx.arg(1)); }

void cmd_quit(CommandContext& ctx) {
  ctx.w.ok();
  ctx.conn.close_after_reply();
}

namespace {
// Redis's validateClientName: printable ASCII without spaces.
bool valid_client_name(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}
constexpr std::string_view kBadClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";
}  // namespace

void cmd_hello(CommandContext& ctx) {
  int64_t ver = 0;
  size_t next = 1;
  if (ctx.argc() >= 2) {
    if (!parse_int64(ctx.arg(1), &ver)) {
      ctx.error("ERR Protocol version is not an integer or out of range");
      return;
    }
    next = 2;
    if (ver < 2 || ver > 3) {
      ctx.error(err::kNoProto);
      return;
    }
  }
  // Redis 7.0 applies the options in order as it reads them: "SETNAME n AUTH bad pass" sets the
  // name and then fails, "SETNAME n BOGUS" sets the name and then replies the syntax error.
  for (size_t j = next; j < ctx.argc(); ++j) {
    size_t more = ctx.argc() - 1 - j;
    if (equals_nocase(ctx.arg(j), "auth") && more >= 2) {
      if (ctx.arg(j + 1) != "default" || !ctx.server.check_password(ctx.arg(j + 2))) {
        ctx.error(err::kWrongPass);
        return;
      }
      ctx.session.authenticated = true;
      ctx.conn.set_authenticated(true);
      j += 2;
    } else if (equals_nocase(ctx.arg(j), "setname") && more >= 1) {
      std::string_view name = ctx.arg(j + 1);
      if (!valid_client_name(name)) {
        ctx.error(kBadClientName);
        return;
      }
      ctx.session.name.assign(name);
      j += 1;
    } else {
      ctx.error("ERR Syntax error in HELLO option '" + std::string(ctx.arg(j)) + "'");
      return;
    }
  }
  if (ctx.server.needs_auth(ctx.conn, ctx.session)) {
    ctx.error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
        "protocol version at the same time");
    return;
  }
  if (ver != 0) ctx.conn.set_protocol(static_cast<int>(ver));
  resp::Writer& w = ctx.w;
  w.set_protocol(ctx.conn.protocol());
  w.map(7);
  w.bulk("server");
  w.bulk("redis");
  w.bulk("version");
  w.bulk(kRedisCompatVersion);
  w.bulk("proto");
  w.integer(ctx.conn.protocol());
  w.bulk("id");
  w.integer(static_cast<int64_t>(ctx.session.id));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
}

void cmd_auth(CommandContext& ctx) {
  if (ctx.argc() > 3) {
    ctx.error(err::kSyntax);
    return;
  }
  std::string_view user = "default", pass;
  if (ctx.argc() == 2) {
    if (!ctx.server.auth_required()) {
      ctx.error(err::kAuthNoPassword);
      return;
    }
    pass = ctx.arg(1);
  } else {
    user = ctx.arg(1);
    pass = ctx.arg(2);
  }
  if (user != "default" || !ctx.server.check_password(pass)) {
    ctx.error(err::kWrongPass);
    return;
  }
  ctx.session.authenticated = true;
  ctx.conn.set_authenticated(true);
  ctx.w.ok();
}

void cmd_select(CommandContext& ctx) {
  int64_t id;
  if (!parse_int64(ctx.arg(1), &id)) {
    ctx.error(err::kNotInteger);
    return;
  }
  if (id < INT32_MIN || id > INT32_MAX) {
    ctx.error(err::kNotInt32);
    return;
  }
  if (id != 0) {
    ctx.error(err::kDbIndexOutOfRange);
    return;
  }
  ctx.w.ok();
}

void cmd_reset(CommandContext& ctx) {
  ClientSession& s = ctx.session;
  s.in_multi = false;
  s.multi_dirty = false;
  s.queued.clear();
  ctx.server.unwatch_all(s);
  s.name.clear();
  s.reply_mode = ClientSession::ReplyMode::kOn;
  s.no_evict = false;
  ctx.conn.set_protocol(2);
  ctx.w.set_protocol(2);
  if (ctx.server.auth_required()) {
    s.authenticated = false;
    ctx.conn.set_authenticated(false);
  }
  ctx.w.simple("RESET");
}

}  // namespace ringkv::server
