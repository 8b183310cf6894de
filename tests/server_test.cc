// Integration tests for a single ringkv-server: every command of the single-node issue driven
// with hiredis (raw sockets where the bytes matter, e.g. RESP3), asserting Redis 7.0.15's replies
// byte for byte. Expected texts were taken from a real redis-server 7.0.15 sent the same
// commands; where ringkv deliberately differs, a comment says so.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "raw_client.h"
#include "server_harness.h"

using namespace ringkv::testing;
using namespace std::chrono_literals;
using Args = std::vector<std::string>;

namespace {

int64_t integer(redisContext* c, const Args& args) {
  Reply r = command(c, args);
  REQUIRE(r);
  INFO(show(r.get()));
  REQUIRE(r->type == REDIS_REPLY_INTEGER);
  return r->integer;
}

// The value of one "field:value" line of INFO.
std::string info_field(redisContext* c, const std::string& section, const std::string& field) {
  Reply r = command(c, {"INFO", section});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_STRING);
  std::string text(r->str, r->len);
  size_t p = text.find("\r\n" + field + ":");
  if (p == std::string::npos) return "";
  p += field.size() + 3;
  return text.substr(p, text.find("\r\n", p) - p);
}

int64_t info_int(redisContext* c, const std::string& section, const std::string& field) {
  std::string v = info_field(c, section, field);
  INFO("INFO field " << field << " = '" << v << "'");
  REQUIRE(!v.empty());
  return std::stoll(v);
}

// Polls `cond` until it holds or the deadline passes (the way tests wait for background work).
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

// A TTL set to `seconds` a moment ago: Redis rounds to the nearest second, so it reads
// `seconds`, or one less if the machine was slow in between.
#define CHECK_TTL(ctx, key, seconds)                   \
  do {                                                 \
    int64_t ttl_ = integer(ctx, {"TTL", key});         \
    INFO("TTL " << key << " = " << ttl_);              \
    CHECK((ttl_ == (seconds) || ttl_ == (seconds)-1)); \
  } while (0)

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::set<std::string> as_set(const redisReply* r) {
  std::set<std::string> out;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i < r->elements; ++i) out.emplace(r->element[i]->str, r->element[i]->len);
  return out;
}

Context client_of(ServerProcess& s) {
  Context c = s.client();
  REQUIRE(c);
  REQUIRE(c->err == 0);
  return c;
}

}  // namespace

// ---------------------------------------------------------------- connection commands

TEST_CASE("PING, ECHO and QUIT") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"PING"}) == "+PONG");
  CHECK(q(c.get(), {"ping", "hello"}) == "$hello");
  CHECK(q(c.get(), {"PING", "a", "b"}) == "-ERR wrong number of arguments for 'ping' command");
  CHECK(q(c.get(), {"ECHO", "hi"}) == "$hi");
  CHECK(q(c.get(), {"ECHO", std::string("a\0\r\nb", 5)}) == "$" + std::string("a\0\r\nb", 5));
  CHECK(q(c.get(), {"ECHO"}) == "-ERR wrong number of arguments for 'echo' command");
  CHECK(q(c.get(), {"ECHO", "x", "y"}) == "-ERR wrong number of arguments for 'echo' command");

  // QUIT answers +OK and closes: the PING pipelined behind it is never answered.
  RawClient raw(s.port());
  REQUIRE(raw.send_all("QUIT\r\nPING\r\n"));
  CHECK(raw.read_to_close() == "+OK\r\n");
  CHECK(raw.closed());
  RawClient raw2(s.port());
  REQUIRE(raw2.send_all("QUIT extra args\r\n"));
  CHECK(raw2.read_to_close() == "+OK\r\n");
  CHECK(raw2.closed());
}

TEST_CASE("HELLO 3 switches to RESP3 (map reply, nulls as _), HELLO 2 back") {
  ServerProcess s;
  RawClient c(s.port());
  REQUIRE(c.send_all("CLIENT ID\r\n"));
  std::string id_reply = c.read_replies(1);
  REQUIRE(id_reply.size() > 3);
  const std::string id = id_reply.substr(1, id_reply.size() - 3);

  const std::string hello_tail =
      "\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
      "$7\r\nmodules\r\n*0\r\n";
  const std::string fields = "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n";
  REQUIRE(c.send_all("HELLO 3\r\n"));
  CHECK(c.read_replies(1) ==
        "%7\r\n" + fields + "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:" + id + hello_tail);
  // RESP3 from now on: null bulk and null array are both "_", maps are '%'.
  REQUIRE(c.send_all("GET nokey\r\nSET k v\r\nMGET k nokey\r\nSET k w GET\r\nSET k2 v NX GET\r\n"));
  CHECK(c.read_replies(5) == "_\r\n+OK\r\n*2\r\n$1\r\nv\r\n_\r\n$1\r\nv\r\n_\r\n");
  REQUIRE(c.send_all("CONFIG GET maxmemory\r\n"));
  CHECK(c.read_replies(1) == "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
  REQUIRE(c.send_all("INFO keyspace\r\n"));
  std::string info = c.read_replies(1);
  CHECK(info.rfind("=", 0) == 0);  // a verbatim string
  CHECK(info.find("txt:# Keyspace\r\n") != std::string::npos);
  // HELLO without a version keeps the protocol.
  REQUIRE(c.send_all("HELLO\r\n"));
  CHECK(c.read_replies(1) ==
        "%7\r\n" + fields + "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:" + id + hello_tail);

  REQUIRE(c.send_all("HELLO 2\r\nGET nokey\r\nCONFIG GET maxmemory\r\n"));
  CHECK(c.read_replies(3) == "*14\r\n" + fields + "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:" + id +
                                 hello_tail + "$-1\r\n*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
}

TEST_CASE("HELLO errors") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"HELLO", "4"}) == "-NOPROTO unsupported protocol version");
  CHECK(q(c.get(), {"HELLO", "1"}) == "-NOPROTO unsupported protocol version");
  CHECK(q(c.get(), {"HELLO", "x"}) == "-ERR Protocol version is not an integer or out of range");
  CHECK(q(c.get(), {"HELLO", "3", "FOO"}) == "-ERR Syntax error in HELLO option 'FOO'");
  CHECK(q(c.get(), {"HELLO", "3", "AUTH"}) == "-ERR Syntax error in HELLO option 'AUTH'");
  CHECK(q(c.get(), {"HELLO", "3", "AUTH", "a"}) == "-ERR Syntax error in HELLO option 'AUTH'");
  CHECK(q(c.get(), {"HELLO", "3", "SETNAME"}) == "-ERR Syntax error in HELLO option 'SETNAME'");
  CHECK(q(c.get(), {"HELLO", "2", "SETNAME", "a b"}) ==
        "-ERR Client names cannot contain spaces, newlines or special characters.");
  // Still RESP2 after all those errors.
  CHECK(q(c.get(), {"GET", "nokey"}) == "(nil)");
  Reply r = command(c.get(), {"HELLO", "2", "SETNAME", "conn-1"});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  CHECK(r->elements == 14);
  CHECK(q(c.get(), {"CLIENT", "GETNAME"}) == "$conn-1");
}

TEST_CASE("AUTH with requirepass: NOAUTH, WRONGPASS, AUTH and HELLO AUTH") {
  ServerProcess s({"--requirepass", "s3cret"});
  Context c = client_of(s);
  CHECK(q(c.get(), {"PING"}) == "-NOAUTH Authentication required.");
  CHECK(q(c.get(), {"GET", "k"}) == "-NOAUTH Authentication required.");
  CHECK(q(c.get(), {"SET", "k", "v"}) == "-NOAUTH Authentication required.");
  // Arity and unknown commands are checked before authentication, as in Redis.
  CHECK(q(c.get(), {"GET"}) == "-ERR wrong number of arguments for 'get' command");
  CHECK(q(c.get(), {"NOSUCH"}) == "-ERR unknown command 'NOSUCH', with args beginning with: ");
  const std::string wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.";
  CHECK(q(c.get(), {"AUTH", "wrong"}) == wrongpass);
  CHECK(q(c.get(), {"AUTH", "default", "wrong"}) == wrongpass);
  CHECK(q(c.get(), {"AUTH", "someone", "s3cret"}) == wrongpass);
  CHECK(q(c.get(), {"AUTH", "a", "b", "c"}) == "-ERR syntax error");
  CHECK(q(c.get(), {"PING"}) == "-NOAUTH Authentication required.");
  CHECK(q(c.get(), {"AUTH", "s3cret"}) == "+OK");
  CHECK(q(c.get(), {"PING"}) == "+PONG");
  CHECK(q(c.get(), {"SET", "k", "v"}) == "+OK");

  Context c2 = client_of(s);
  CHECK(q(c2.get(), {"AUTH", "default", "s3cret"}) == "+OK");
  CHECK(q(c2.get(), {"GET", "k"}) == "$v");

  // HELLO needs authentication first, or does it itself.
  Context c3 = client_of(s);
  CHECK(q(c3.get(), {"HELLO", "2"}) ==
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
  CHECK(q(c3.get(), {"HELLO", "2", "AUTH", "default", "wrong"}) == wrongpass);
  CHECK(q(c3.get(), {"GET", "k"}) == "-NOAUTH Authentication required.");
  Reply r = command(c3.get(), {"HELLO", "2", "AUTH", "default", "s3cret"});
  REQUIRE(r);
  CHECK(r->type == REDIS_REPLY_ARRAY);
  CHECK(q(c3.get(), {"GET", "k"}) == "$v");

  // QUIT works unauthenticated.
  Context c4 = client_of(s);
  CHECK(q(c4.get(), {"QUIT"}) == "+OK");

  // Changing the password at run time applies to new connections, and to those that never
  // authenticated (as in Redis): once it is removed they are let in, limits and all.
  Context c6 = client_of(s);
  CHECK(q(c6.get(), {"GET", "k"}) == "-NOAUTH Authentication required.");
  CHECK(q(c.get(), {"CONFIG", "SET", "requirepass", ""}) == "+OK");
  Context c5 = client_of(s);
  CHECK(q(c5.get(), {"GET", "k"}) == "$v");
  CHECK(q(c6.get(), {"GET", "k"}) == "$v");
  Args mset = {"MSET"};
  for (int i = 0; i < 20; ++i) mset.push_back("m" + std::to_string(i));
  CHECK(q(c6.get(), mset) == "+OK");
  r = command(c6.get(), {"HELLO", "2"});
  REQUIRE(r);
  CHECK(r->type == REDIS_REPLY_ARRAY);
}

TEST_CASE("AUTH without requirepass") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"AUTH", "x"}) ==
        "-ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
  // The default user has no password: any password is accepted for it, as in Redis.
  CHECK(q(c.get(), {"AUTH", "default", "x"}) == "+OK");
  CHECK(q(c.get(), {"AUTH", "foo", "x"}) ==
        "-WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(q(c.get(), {"AUTH"}) == "-ERR wrong number of arguments for 'auth' command");
}

TEST_CASE("SELECT: only database 0") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"SELECT", "0"}) == "+OK");
  // ringkv has one database: SELECT 1 is what Redis answers when configured with databases 1.
  CHECK(q(c.get(), {"SELECT", "1"}) == "-ERR DB index is out of range");
  CHECK(q(c.get(), {"SELECT", "-1"}) == "-ERR DB index is out of range");
  CHECK(q(c.get(), {"SELECT", "x"}) == "-ERR value is not an integer or out of range");
  CHECK(q(c.get(), {"SELECT", "99999999999"}) ==
        "-ERR value is out of range, value must between -2147483648 and 2147483647");
  CHECK(q(c.get(), {"SELECT"}) == "-ERR wrong number of arguments for 'select' command");
}

// ---------------------------------------------------------------- GET / SET

TEST_CASE("GET and SET") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"GET", "k"}) == "(nil)");
  CHECK(q(c.get(), {"SET", "k", "v"}) == "+OK");
  CHECK(q(c.get(), {"GET", "k"}) == "$v");
  CHECK(q(c.get(), {"SET", "k", "v2"}) == "+OK");
  CHECK(q(c.get(), {"GET", "k"}) == "$v2");
  CHECK(q(c.get(), {"set", "K", "upper"}) == "+OK");  // command names are case-insensitive,
  CHECK(q(c.get(), {"get", "k"}) == "$v2");           // keys are not
  CHECK(q(c.get(), {"GET"}) == "-ERR wrong number of arguments for 'get' command");
  CHECK(q(c.get(), {"GET", "a", "b"}) == "-ERR wrong number of arguments for 'get' command");
  CHECK(q(c.get(), {"SET", "k"}) == "-ERR wrong number of arguments for 'set' command");
}

TEST_CASE("SET with EX PX EXAT PXAT") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "100"}) == "+OK");
  int64_t ttl = integer(c.get(), {"TTL", "k"});
  CHECK((ttl >= 95 && ttl <= 100));
  CHECK(q(c.get(), {"SET", "k", "v", "px", "100000"}) == "+OK");
  int64_t pttl = integer(c.get(), {"PTTL", "k"});
  CHECK((pttl > 90000 && pttl <= 100000));
  const int64_t now_s = static_cast<int64_t>(std::time(nullptr));
  CHECK(q(c.get(), {"SET", "k", "v", "EXAT", std::to_string(now_s + 200)}) == "+OK");
  ttl = integer(c.get(), {"TTL", "k"});
  CHECK((ttl >= 190 && ttl <= 201));
  CHECK(q(c.get(), {"SET", "k", "v", "PXAT", std::to_string(now_ms() + 300000)}) == "+OK");
  pttl = integer(c.get(), {"PTTL", "k"});
  CHECK((pttl > 290000 && pttl <= 300000));
  // A time in the past: the SET succeeds and the key is gone at once.
  CHECK(q(c.get(), {"SET", "k", "v", "PXAT", "1"}) == "+OK");
  CHECK(q(c.get(), {"EXISTS", "k"}) == ":0");
  CHECK(q(c.get(), {"SET", "k", "v", "EXAT", "1"}) == "+OK");
  CHECK(q(c.get(), {"GET", "k"}) == "(nil)");
  // The largest absolute times are fine; relative ones that overflow are not.
  CHECK(q(c.get(), {"SET", "k", "v", "EXAT", "9223372036854775"}) == "+OK");
  CHECK(q(c.get(), {"SET", "k", "v", "PXAT", "9223372036854775807"}) == "+OK");
  CHECK(integer(c.get(), {"PTTL", "k"}) > 9000000000000000000);
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "9223372036854775"}) ==
        "-ERR invalid expire time in 'set' command");
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "9223372036854776"}) ==
        "-ERR invalid expire time in 'set' command");
  CHECK(q(c.get(), {"SET", "k", "v", "PX", "9223372036854775807"}) ==
        "-ERR invalid expire time in 'set' command");
  // A plain SET removes the TTL.
  CHECK(q(c.get(), {"SET", "k", "v"}) == "+OK");
  CHECK(q(c.get(), {"TTL", "k"}) == ":-1");
}

TEST_CASE("SET NX XX KEEPTTL GET") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"SET", "k", "v"}) == "+OK");
  CHECK(q(c.get(), {"SET", "k", "w", "NX"}) == "(nil)");
  CHECK(q(c.get(), {"GET", "k"}) == "$v");
  CHECK(q(c.get(), {"SET", "k", "w", "NX", "GET"}) == "$v");
  CHECK(q(c.get(), {"SET", "k2", "w", "XX"}) == "(nil)");
  CHECK(q(c.get(), {"SET", "k2", "w", "XX", "GET"}) == "(nil)");
  CHECK(q(c.get(), {"EXISTS", "k2"}) == ":0");
  CHECK(q(c.get(), {"SET", "k", "x", "GET"}) == "$v");
  CHECK(q(c.get(), {"GET", "k"}) == "$x");
  CHECK(q(c.get(), {"SET", "k", "y", "XX", "GET"}) == "$x");
  CHECK(q(c.get(), {"SET", "k2", "y", "NX", "GET"}) == "(nil)");
  CHECK(q(c.get(), {"GET", "k2"}) == "$y");
  CHECK(q(c.get(), {"SET", "k3", "v", "XX"}) == "(nil)");
  CHECK(q(c.get(), {"SET", "k3", "v", "nx"}) == "+OK");

  CHECK(q(c.get(), {"SET", "t", "v", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"SET", "t", "v2", "KEEPTTL"}) == "+OK");
  int64_t ttl = integer(c.get(), {"TTL", "t"});
  CHECK((ttl >= 95 && ttl <= 100));
  CHECK(q(c.get(), {"GET", "t"}) == "$v2");
  CHECK(q(c.get(), {"SET", "t", "v3"}) == "+OK");
  CHECK(q(c.get(), {"TTL", "t"}) == ":-1");
  CHECK(q(c.get(), {"SET", "fresh", "v", "KEEPTTL"}) == "+OK");
  CHECK(q(c.get(), {"TTL", "fresh"}) == ":-1");
}

TEST_CASE("SET error cases") {
  ServerProcess s;
  Context c = client_of(s);
  const std::string syntax = "-ERR syntax error";
  const std::string invalid = "-ERR invalid expire time in 'set' command";
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "0"}) == invalid);
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "-1"}) == invalid);
  CHECK(q(c.get(), {"SET", "k", "v", "PX", "0"}) == invalid);
  CHECK(q(c.get(), {"SET", "k", "v", "EXAT", "0"}) == invalid);
  CHECK(q(c.get(), {"SET", "k", "v", "PXAT", "0"}) == invalid);
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "x"}) == "-ERR value is not an integer or out of range");
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "1.5"}) ==
        "-ERR value is not an integer or out of range");
  CHECK(q(c.get(), {"SET", "k", "v", "NX", "XX"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "XX", "NX"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "10", "PX", "10"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "EX"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "KEEPTTL", "EX", "10"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "EX", "10", "KEEPTTL"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "FOO"}) == syntax);
  CHECK(q(c.get(), {"SET", "k", "v", "PERSIST"}) == syntax);
  // Nothing was stored by any of them.
  CHECK(q(c.get(), {"EXISTS", "k"}) == ":0");
}

TEST_CASE("SETNX SETEX PSETEX") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"SETNX", "a", "1"}) == ":1");
  CHECK(q(c.get(), {"SETNX", "a", "2"}) == ":0");
  CHECK(q(c.get(), {"GET", "a"}) == "$1");
  CHECK(q(c.get(), {"SETEX", "b", "0", "v"}) == "-ERR invalid expire time in 'setex' command");
  CHECK(q(c.get(), {"SETEX", "b", "-5", "v"}) == "-ERR invalid expire time in 'setex' command");
  CHECK(q(c.get(), {"SETEX", "b", "x", "v"}) == "-ERR value is not an integer or out of range");
  CHECK(q(c.get(), {"SETEX", "b", "10", "v"}) == "+OK");
  CHECK_TTL(c.get(), "b", 10);
  CHECK(q(c.get(), {"GET", "b"}) == "$v");
  CHECK(q(c.get(), {"PSETEX", "c", "0", "v"}) == "-ERR invalid expire time in 'psetex' command");
  CHECK(q(c.get(), {"PSETEX", "c", "15000", "v"}) == "+OK");
  int64_t pttl = integer(c.get(), {"PTTL", "c"});
  CHECK((pttl > 10000 && pttl <= 15000));
  CHECK(q(c.get(), {"SETEX", "b", "10"}) == "-ERR wrong number of arguments for 'setex' command");
  CHECK(q(c.get(), {"SETNX", "a"}) == "-ERR wrong number of arguments for 'setnx' command");
}

TEST_CASE("GETSET GETDEL") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"GETSET", "g", "1"}) == "(nil)");
  CHECK(q(c.get(), {"GETSET", "g", "2"}) == "$1");
  CHECK(q(c.get(), {"SET", "g", "v", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"GETSET", "g", "3"}) == "$v");
  CHECK(q(c.get(), {"TTL", "g"}) == ":-1");  // GETSET drops the TTL
  CHECK(q(c.get(), {"GETDEL", "g"}) == "$3");
  CHECK(q(c.get(), {"GETDEL", "g"}) == "(nil)");
  CHECK(q(c.get(), {"EXISTS", "g"}) == ":0");
}

TEST_CASE("GETEX") {
  ServerProcess s;
  Context c = client_of(s);
  const std::string syntax = "-ERR syntax error";
  CHECK(q(c.get(), {"SET", "e", "v"}) == "+OK");
  CHECK(q(c.get(), {"GETEX", "e"}) == "$v");
  CHECK(q(c.get(), {"GETEX", "e", "EX", "100"}) == "$v");
  CHECK_TTL(c.get(), "e", 100);
  CHECK(q(c.get(), {"GETEX", "e", "PX", "50000"}) == "$v");
  int64_t pttl = integer(c.get(), {"PTTL", "e"});
  CHECK((pttl > 40000 && pttl <= 50000));
  CHECK(q(c.get(), {"GETEX", "e", "EXAT", std::to_string(std::time(nullptr) + 500)}) == "$v");
  int64_t ttl = integer(c.get(), {"TTL", "e"});
  CHECK((ttl >= 490 && ttl <= 501));
  CHECK(q(c.get(), {"GETEX", "e", "PERSIST"}) == "$v");
  CHECK(q(c.get(), {"TTL", "e"}) == ":-1");
  CHECK(q(c.get(), {"GETEX", "e", "PX", "0"}) == "-ERR invalid expire time in 'getex' command");
  CHECK(q(c.get(), {"GETEX", "e", "EX", "-1"}) == "-ERR invalid expire time in 'getex' command");
  CHECK(q(c.get(), {"GETEX", "e", "EX", "10", "PX", "10"}) == syntax);
  CHECK(q(c.get(), {"GETEX", "e", "PERSIST", "EX", "10"}) == syntax);
  CHECK(q(c.get(), {"GETEX", "e", "KEEPTTL"}) == syntax);
  CHECK(q(c.get(), {"GETEX", "e", "NX"}) == syntax);
  CHECK(q(c.get(), {"GETEX", "e", "GET"}) == syntax);
  CHECK(q(c.get(), {"GETEX", "e", "EX"}) == syntax);
  CHECK(q(c.get(), {"TTL", "e"}) == ":-1");
  // An absolute time in the past returns the value and deletes the key.
  CHECK(q(c.get(), {"GETEX", "e", "EXAT", "1"}) == "$v");
  CHECK(q(c.get(), {"EXISTS", "e"}) == ":0");
  // A missing key: nil, and the expire argument is not even checked (as in Redis).
  CHECK(q(c.get(), {"GETEX", "nokey", "EX", "10"}) == "(nil)");
  CHECK(q(c.get(), {"GETEX", "nokey", "EX", "-1"}) == "(nil)");
  CHECK(q(c.get(), {"GETEX", "nokey", "FOO"}) == syntax);
}

TEST_CASE("MGET MSET MSETNX") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"MSET", "a", "1", "b", "2"}) == "+OK");
  CHECK(q(c.get(), {"MGET", "a", "b", "c"}) == "[$1, $2, (nil)]");
  CHECK(q(c.get(), {"MGET", "a", "a"}) == "[$1, $1]");
  CHECK(q(c.get(), {"MSET", "a"}) == "-ERR wrong number of arguments for 'mset' command");
  CHECK(q(c.get(), {"MSET", "a", "1", "b"}) == "-ERR wrong number of arguments for 'mset' command");
  CHECK(q(c.get(), {"MSET", "a", "x", "a", "y"}) == "+OK");  // the last one wins
  CHECK(q(c.get(), {"GET", "a"}) == "$y");
  CHECK(q(c.get(), {"MSETNX", "a", "1", "z", "2"}) == ":0");
  CHECK(q(c.get(), {"EXISTS", "z"}) == ":0");  // all or nothing
  CHECK(q(c.get(), {"MSETNX", "y", "1", "z", "2"}) == ":1");
  CHECK(q(c.get(), {"MGET", "y", "z"}) == "[$1, $2]");
  CHECK(q(c.get(), {"MSETNX", "y"}) == "-ERR wrong number of arguments for 'msetnx' command");
  CHECK(q(c.get(), {"MSETNX", "q", "1", "q"}) ==
        "-ERR wrong number of arguments for 'msetnx' command");
  CHECK(q(c.get(), {"MGET"}) == "-ERR wrong number of arguments for 'mget' command");
  // MSET clears TTLs, like SET.
  CHECK(q(c.get(), {"SET", "t", "v", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"MSET", "t", "w"}) == "+OK");
  CHECK(q(c.get(), {"TTL", "t"}) == ":-1");
}

TEST_CASE("DEL UNLINK EXISTS") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"MSET", "a", "1", "b", "2", "c", "3"}) == "+OK");
  CHECK(q(c.get(), {"DEL", "a", "a", "b", "x"}) == ":2");
  CHECK(q(c.get(), {"UNLINK", "c"}) == ":1");
  CHECK(q(c.get(), {"UNLINK", "c"}) == ":0");
  CHECK(q(c.get(), {"EXISTS", "a", "b", "c"}) == ":0");
  CHECK(q(c.get(), {"SET", "a", "1"}) == "+OK");
  CHECK(q(c.get(), {"EXISTS", "a", "a", "a", "x"}) == ":3");  // duplicates are counted
  CHECK(q(c.get(), {"DEL"}) == "-ERR wrong number of arguments for 'del' command");
  CHECK(q(c.get(), {"EXISTS"}) == "-ERR wrong number of arguments for 'exists' command");
}

// ---------------------------------------------------------------- counters

TEST_CASE("INCR DECR INCRBY DECRBY") {
  ServerProcess s;
  Context c = client_of(s);
  const std::string not_int = "-ERR value is not an integer or out of range";
  CHECK(q(c.get(), {"SET", "n", "10"}) == "+OK");
  CHECK(q(c.get(), {"INCR", "n"}) == ":11");
  CHECK(q(c.get(), {"DECR", "n"}) == ":10");
  CHECK(q(c.get(), {"INCRBY", "n", "5"}) == ":15");
  CHECK(q(c.get(), {"DECRBY", "n", "5"}) == ":10");
  CHECK(q(c.get(), {"INCRBY", "n", "-20"}) == ":-10");
  CHECK(q(c.get(), {"GET", "n"}) == "$-10");
  CHECK(q(c.get(), {"INCRBY", "n", "x"}) == not_int);
  CHECK(q(c.get(), {"INCRBY", "n", "1.5"}) == not_int);
  CHECK(q(c.get(), {"INCRBY", "n", "99999999999999999999"}) == not_int);
  CHECK(q(c.get(), {"INCR", "fresh"}) == ":1");
  CHECK(q(c.get(), {"DECR", "fresh2"}) == ":-1");
  CHECK(q(c.get(), {"INCRBY", "fresh3", "-7"}) == ":-7");

  CHECK(q(c.get(), {"SET", "n", "9223372036854775807"}) == "+OK");
  CHECK(q(c.get(), {"INCR", "n"}) == "-ERR increment or decrement would overflow");
  CHECK(q(c.get(), {"GET", "n"}) == "$9223372036854775807");
  CHECK(q(c.get(), {"SET", "n", "-9223372036854775808"}) == "+OK");
  CHECK(q(c.get(), {"DECR", "n"}) == "-ERR increment or decrement would overflow");
  CHECK(q(c.get(), {"DECRBY", "n", "-9223372036854775808"}) == "-ERR decrement would overflow");
  CHECK(q(c.get(), {"SET", "n", "0"}) == "+OK");
  CHECK(q(c.get(), {"DECRBY", "n", "-9223372036854775808"}) == "-ERR decrement would overflow");
  CHECK(q(c.get(), {"INCRBY", "n", "-9223372036854775808"}) == ":-9223372036854775808");

  for (const char* bad : {"abc", " 1", "1 ", "01", "", "+1", "1.0", "9223372036854775808"}) {
    INFO("value '" << bad << "'");
    CHECK(q(c.get(), {"SET", "n", bad}) == "+OK");
    CHECK(q(c.get(), {"INCR", "n"}) == not_int);
    CHECK(q(c.get(), {"GET", "n"}) == "$" + std::string(bad));  // untouched
  }
  // Counters keep their TTL.
  CHECK(q(c.get(), {"SET", "t", "1", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"INCR", "t"}) == ":2");
  CHECK_TTL(c.get(), "t", 100);
  CHECK(q(c.get(), {"INCR"}) == "-ERR wrong number of arguments for 'incr' command");
  CHECK(q(c.get(), {"INCRBY", "n"}) == "-ERR wrong number of arguments for 'incrby' command");
}

TEST_CASE("INCRBYFLOAT") {
  ServerProcess s;
  Context c = client_of(s);
  const std::string not_float = "-ERR value is not a valid float";
  CHECK(q(c.get(), {"SET", "f", "10.50"}) == "+OK");
  CHECK(q(c.get(), {"INCRBYFLOAT", "f", "0.1"}) == "$10.6");
  CHECK(q(c.get(), {"INCRBYFLOAT", "f", "-5"}) == "$5.6");
  CHECK(q(c.get(), {"GET", "f"}) == "$5.6");
  CHECK(q(c.get(), {"SET", "f", "5.0e3"}) == "+OK");
  CHECK(q(c.get(), {"INCRBYFLOAT", "f", "200"}) == "$5200");
  CHECK(q(c.get(), {"INCRBYFLOAT", "g", "5e3"}) == "$5000");
  CHECK(q(c.get(), {"INCRBYFLOAT", "h", "10.5"}) == "$10.5");
  CHECK(q(c.get(), {"INCRBYFLOAT", "h", "0"}) == "$10.5");
  CHECK(q(c.get(), {"INCRBYFLOAT", "i", "3.0"}) == "$3");
  CHECK(q(c.get(), {"INCRBYFLOAT", "j", "1.1"}) == "$1.1");
  CHECK(q(c.get(), {"INCRBYFLOAT", "j", "2.2"}) == "$3.3");
  CHECK(q(c.get(), {"INCRBYFLOAT", "k", "1.23456789012345678"}) == "$1.23456789012345678");
  CHECK(q(c.get(), {"INCRBYFLOAT", "l", "-0"}) == "$0");
  CHECK(q(c.get(), {"INCRBYFLOAT", "m", "0x10"}) == "$16");  // strtold reads hex, so does Redis
  CHECK(q(c.get(), {"INCRBYFLOAT", "n", "nan"}) == not_float);
  CHECK(q(c.get(), {"INCRBYFLOAT", "n", "inf"}) == "-ERR increment would produce NaN or Infinity");
  CHECK(q(c.get(), {"INCRBYFLOAT", "n", "abc"}) == not_float);
  CHECK(q(c.get(), {"INCRBYFLOAT", "n", " 1"}) == not_float);
  CHECK(q(c.get(), {"INCRBYFLOAT", "n", "1 "}) == not_float);
  CHECK(q(c.get(), {"INCRBYFLOAT", "n", ""}) == not_float);
  CHECK(q(c.get(), {"EXISTS", "n"}) == ":0");
  CHECK(q(c.get(), {"SET", "s", "abc"}) == "+OK");
  CHECK(q(c.get(), {"INCRBYFLOAT", "s", "1"}) == not_float);
  CHECK(q(c.get(), {"GET", "s"}) == "$abc");
  CHECK(q(c.get(), {"SET", "t", "1.5", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"INCRBYFLOAT", "t", "1"}) == "$2.5");
  CHECK_TTL(c.get(), "t", 100);
  CHECK(q(c.get(), {"INCRBYFLOAT", "t"}) ==
        "-ERR wrong number of arguments for 'incrbyfloat' command");
}

TEST_CASE("APPEND STRLEN") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"APPEND", "ap", "a"}) == ":1");
  CHECK(q(c.get(), {"APPEND", "ap", "bc"}) == ":3");
  CHECK(q(c.get(), {"GET", "ap"}) == "$abc");
  CHECK(q(c.get(), {"STRLEN", "ap"}) == ":3");
  CHECK(q(c.get(), {"STRLEN", "none"}) == ":0");
  CHECK(q(c.get(), {"APPEND", "ap", ""}) == ":3");
  CHECK(q(c.get(), {"APPEND", "ap", std::string("\0\r\n", 3)}) == ":6");
  CHECK(q(c.get(), {"GET", "ap"}) == "$" + std::string("abc\0\r\n", 6));
  CHECK(q(c.get(), {"SET", "ap", "v", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"APPEND", "ap", "x"}) == ":2");
  CHECK_TTL(c.get(), "ap", 100);  // APPEND keeps the TTL
  CHECK(q(c.get(), {"APPEND", "empty", ""}) == ":0");
  CHECK(q(c.get(), {"EXISTS", "empty"}) == ":1");  // and creates the key, even empty
}

// ---------------------------------------------------------------- expiry

TEST_CASE("EXPIRE family with NX XX GT LT") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"SET", "x", "v"}) == "+OK");
  CHECK(q(c.get(), {"EXPIRE", "x", "100"}) == ":1");
  CHECK_TTL(c.get(), "x", 100);
  int64_t pttl = integer(c.get(), {"PTTL", "x"});
  CHECK((pttl > 90000 && pttl <= 100000));
  CHECK(q(c.get(), {"EXPIRE", "x", "100", "NX"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE", "x", "200", "XX"}) == ":1");
  CHECK(q(c.get(), {"EXPIRE", "x", "50", "GT"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE", "x", "500", "GT"}) == ":1");
  CHECK(q(c.get(), {"EXPIRE", "x", "600", "LT"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE", "x", "50", "lt"}) == ":1");
  CHECK_TTL(c.get(), "x", 50);
  CHECK(q(c.get(), {"EXPIRE", "x", "10", "NX", "XX"}) ==
        "-ERR NX and XX, GT or LT options at the same time are not compatible");
  CHECK(q(c.get(), {"EXPIRE", "x", "10", "nx", "gt"}) ==
        "-ERR NX and XX, GT or LT options at the same time are not compatible");
  CHECK(q(c.get(), {"EXPIRE", "x", "10", "GT", "LT"}) ==
        "-ERR GT and LT options at the same time are not compatible");
  CHECK(q(c.get(), {"EXPIRE", "x", "10", "FOO"}) == "-ERR Unsupported option FOO");
  CHECK(q(c.get(), {"EXPIRE", "x", "abc"}) == "-ERR value is not an integer or out of range");
  CHECK_TTL(c.get(), "x", 50);

  // Without a TTL: XX and GT fail (no TTL is an infinite one), LT and NX succeed.
  CHECK(q(c.get(), {"SET", "y", "v"}) == "+OK");
  CHECK(q(c.get(), {"EXPIRE", "y", "10", "XX"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE", "y", "10", "GT"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE", "y", "10", "LT"}) == ":1");
  CHECK_TTL(c.get(), "y", 10);
  CHECK(q(c.get(), {"SET", "y2", "v"}) == "+OK");
  CHECK(q(c.get(), {"EXPIRE", "y2", "10", "NX"}) == ":1");

  CHECK(q(c.get(), {"SET", "z", "v"}) == "+OK");
  CHECK(q(c.get(), {"PEXPIRE", "z", "100000"}) == ":1");
  pttl = integer(c.get(), {"PTTL", "z"});
  CHECK((pttl > 90000 && pttl <= 100000));
  CHECK(q(c.get(), {"EXPIREAT", "z", std::to_string(std::time(nullptr) + 1000)}) == ":1");
  int64_t ttl = integer(c.get(), {"TTL", "z"});
  CHECK((ttl >= 990 && ttl <= 1001));
  CHECK(q(c.get(), {"PEXPIREAT", "z", std::to_string(now_ms() + 2000000)}) == ":1");
  ttl = integer(c.get(), {"TTL", "z"});
  CHECK((ttl >= 1990 && ttl <= 2000));
  CHECK(q(c.get(), {"EXPIRETIME", "z"}).rfind(":", 0) == 0);

  // Overflow is an error, not a wrapped time.
  const std::string invalid = "-ERR invalid expire time in '";
  CHECK(q(c.get(), {"EXPIRE", "z", "9223372036854775807"}) == invalid + "expire' command");
  CHECK(q(c.get(), {"EXPIRE", "z", "9223372036854775"}) == invalid + "expire' command");
  CHECK(q(c.get(), {"PEXPIRE", "z", "9223372036854775807"}) == invalid + "pexpire' command");
  CHECK(q(c.get(), {"EXPIREAT", "z", "-9223372036854775808"}) == invalid + "expireat' command");
  CHECK(q(c.get(), {"EXISTS", "z"}) == ":1");

  CHECK(q(c.get(), {"EXPIRE", "nokey", "10"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE"}) == "-ERR wrong number of arguments for 'expire' command");
  CHECK(q(c.get(), {"EXPIRE", "z"}) == "-ERR wrong number of arguments for 'expire' command");
}

TEST_CASE("a TTL in the past deletes the key, and TTL PTTL PERSIST") {
  ServerProcess s;
  Context c = client_of(s);
  for (const Args& expire :
       {Args{"EXPIRE", "k", "-1"}, Args{"EXPIRE", "k", "0"}, Args{"PEXPIRE", "k", "-100"},
        Args{"EXPIREAT", "k", "1"}, Args{"PEXPIREAT", "k", "1"}}) {
    INFO(expire[0] << " " << expire[2]);
    CHECK(q(c.get(), {"SET", "k", "v"}) == "+OK");
    CHECK(q(c.get(), expire) == ":1");
    CHECK(q(c.get(), {"EXISTS", "k"}) == ":0");
    CHECK(q(c.get(), {"GET", "k"}) == "(nil)");
  }
  CHECK(q(c.get(), {"TTL", "nokey"}) == ":-2");
  CHECK(q(c.get(), {"PTTL", "nokey"}) == ":-2");
  CHECK(q(c.get(), {"SET", "k", "v"}) == "+OK");
  CHECK(q(c.get(), {"TTL", "k"}) == ":-1");
  CHECK(q(c.get(), {"PTTL", "k"}) == ":-1");
  CHECK(q(c.get(), {"PERSIST", "k"}) == ":0");
  CHECK(q(c.get(), {"EXPIRE", "k", "100"}) == ":1");
  CHECK(q(c.get(), {"PERSIST", "k"}) == ":1");
  CHECK(q(c.get(), {"PERSIST", "k"}) == ":0");
  CHECK(q(c.get(), {"TTL", "k"}) == ":-1");
  CHECK(q(c.get(), {"PERSIST", "nokey"}) == ":0");
  // A key with a short TTL is gone for every reader once it passes.
  CHECK(q(c.get(), {"SET", "short", "v", "PX", "50"}) == "+OK");
  CHECK(eventually([&] { return q(c.get(), {"GET", "short"}) == "(nil)"; }, 5s));
  CHECK(q(c.get(), {"TTL", "short"}) == ":-2");
  CHECK(q(c.get(), {"EXISTS", "short"}) == ":0");
}

TEST_CASE("TYPE") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"SET", "t", "v"}) == "+OK");
  CHECK(q(c.get(), {"TYPE", "t"}) == "+string");
  CHECK(q(c.get(), {"TYPE", "none"}) == "+none");
  CHECK(q(c.get(), {"TYPE"}) == "-ERR wrong number of arguments for 'type' command");
}

// ---------------------------------------------------------------- keyspace

TEST_CASE("KEYS with globs") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"MSET", "foo", "1", "fob", "2", "bar", "3", "f*o", "4", "", "5"}) == "+OK");
  auto keys = [&](const std::string& pattern) {
    Reply r = command(c.get(), {"KEYS", pattern});
    return as_set(r.get());
  };
  using S = std::set<std::string>;
  CHECK(keys("*") == S{"foo", "fob", "bar", "f*o", ""});
  CHECK(keys("f?o") == S{"foo", "f*o"});
  CHECK(keys("f\\*o") == S{"f*o"});
  CHECK(keys("[fb]ar") == S{"bar"});
  CHECK(keys("fo[^o]") == S{"fob"});
  CHECK(keys("nomatch") == S{});
  CHECK(keys("FOO") == S{});  // case-sensitive
  CHECK(q(c.get(), {"SET", "short", "v", "PX", "1"}) == "+OK");
  CHECK(eventually([&] { return keys("short").empty(); }, 5s));  // expired keys are not listed
}

TEST_CASE("SCAN iterates every key exactly once, with MATCH COUNT TYPE") {
  ServerProcess s;
  Context c = client_of(s);
  std::set<std::string> all;
  for (int i = 0; i < 1000; ++i) {
    std::string k = (i % 4 == 0 ? "user:" : "item:") + std::to_string(i);
    all.insert(k);
    REQUIRE(q(c.get(), {"SET", k, "v"}) == "+OK");
  }
  auto scan_all = [&](Args options, size_t* calls) {
    std::multiset<std::string> seen;
    std::string cursor = "0";
    *calls = 0;
    do {
      Args cmd = {"SCAN", cursor};
      cmd.insert(cmd.end(), options.begin(), options.end());
      Reply r = command(c.get(), cmd);
      REQUIRE(r);
      INFO(show(r.get()));
      REQUIRE(r->type == REDIS_REPLY_ARRAY);
      REQUIRE(r->elements == 2);
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (size_t i = 0; i < r->element[1]->elements; ++i)
        seen.emplace(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
      ++*calls;
      REQUIRE(*calls < 100000);
    } while (cursor != "0");
    return seen;
  };
  size_t calls = 0;
  auto seen = scan_all({"COUNT", "10"}, &calls);
  CHECK(seen.size() == 1000);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == all);  // each once: size matches
  CHECK(calls > 10);                                              // COUNT bounds the work per call
  seen = scan_all({}, &calls);
  CHECK(seen.size() == 1000);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == all);
  seen = scan_all({"COUNT", "100000"}, &calls);
  CHECK(seen.size() == 1000);
  CHECK(calls == 1);

  seen = scan_all({"MATCH", "user:*", "COUNT", "50"}, &calls);
  CHECK(seen.size() == 250);
  for (const auto& k : seen) CHECK(k.rfind("user:", 0) == 0);
  seen = scan_all({"TYPE", "string", "COUNT", "100"}, &calls);
  CHECK(seen.size() == 1000);
  seen = scan_all({"TYPE", "list", "COUNT", "100"}, &calls);
  CHECK(seen.empty());
  seen = scan_all({"type", "nosuchtype", "match", "*", "count", "1000"}, &calls);
  CHECK(seen.empty());

  const std::string syntax = "-ERR syntax error";
  // Redis reads the cursor with strtoul on a C string: "" is cursor 0.
  CHECK(q(c.get(), {"SCAN", "", "COUNT", "100000"}).rfind("[$0, [", 0) == 0);
  CHECK(q(c.get(), {"SCAN", "x"}) == "-ERR invalid cursor");
  CHECK(q(c.get(), {"SCAN", " 0"}) == "-ERR invalid cursor");
  CHECK(q(c.get(), {"SCAN", "18446744073709551616"}) == "-ERR invalid cursor");
  CHECK(q(c.get(), {"SCAN", "0", "COUNT", "0"}) == syntax);
  CHECK(q(c.get(), {"SCAN", "0", "COUNT", "-1"}) == syntax);
  CHECK(q(c.get(), {"SCAN", "0", "COUNT", "x"}) == "-ERR value is not an integer or out of range");
  CHECK(q(c.get(), {"SCAN", "0", "MATCH"}) == syntax);
  CHECK(q(c.get(), {"SCAN", "0", "FOO", "bar"}) == syntax);
  CHECK(q(c.get(), {"SCAN"}) == "-ERR wrong number of arguments for 'scan' command");
}

TEST_CASE("DBSIZE FLUSHDB FLUSHALL") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"DBSIZE"}) == ":0");
  CHECK(q(c.get(), {"MSET", "a", "1", "b", "2"}) == "+OK");
  CHECK(q(c.get(), {"SET", "t", "v", "EX", "100"}) == "+OK");
  CHECK(q(c.get(), {"DBSIZE"}) == ":3");
  CHECK(q(c.get(), {"FLUSHDB"}) == "+OK");
  CHECK(q(c.get(), {"DBSIZE"}) == ":0");
  CHECK(q(c.get(), {"GET", "a"}) == "(nil)");
  for (const Args& flush : {Args{"FLUSHDB", "ASYNC"}, Args{"FLUSHDB", "sync"}, Args{"FLUSHALL"},
                            Args{"FLUSHALL", "ASYNC"}, Args{"flushall", "SYNC"}}) {
    INFO(flush[0]);
    CHECK(q(c.get(), {"MSET", "a", "1", "b", "2"}) == "+OK");
    CHECK(q(c.get(), flush) == "+OK");
    CHECK(q(c.get(), {"DBSIZE"}) == ":0");
    CHECK(q(c.get(), {"EXISTS", "a", "b"}) == ":0");
  }
  CHECK(q(c.get(), {"SET", "a", "1"}) == "+OK");
  CHECK(q(c.get(), {"FLUSHALL", "FOO"}) == "-ERR syntax error");
  CHECK(q(c.get(), {"FLUSHALL", "SYNC", "ASYNC"}) == "-ERR syntax error");
  CHECK(q(c.get(), {"FLUSHDB", "FOO"}) == "-ERR syntax error");
  CHECK(q(c.get(), {"DBSIZE"}) == ":1");  // the failed flushes did nothing
  CHECK(q(c.get(), {"DBSIZE", "x"}) == "-ERR wrong number of arguments for 'dbsize' command");
}

// ---------------------------------------------------------------- introspection

TEST_CASE("INFO: sections, keyspace line, used_memory follows the data") {
  ServerProcess s;
  Context c = client_of(s);
  Reply r = command(c.get(), {"INFO"});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_STRING);
  std::string all(r->str, r->len);
  for (const char* section : {"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Persistence\r\n",
                              "# Stats\r\n", "# Replication\r\n", "# CPU\r\n", "# Keyspace\r\n"}) {
    INFO(section);
    CHECK(all.find(section) != std::string::npos);
  }
  CHECK(all.find("redis_version:7.0.15\r\n") != std::string::npos);
  CHECK(all.find("tcp_port:" + std::to_string(s.port()) + "\r\n") != std::string::npos);
  // The harness's readiness probes may still be closing: wait until only this client is left.
  CHECK(eventually([&] { return info_field(c.get(), "clients", "connected_clients") == "1"; }));

  // One section only.
  r = command(c.get(), {"INFO", "memory"});
  REQUIRE(r);
  std::string mem(r->str, r->len);
  CHECK(mem.rfind("# Memory\r\n", 0) == 0);
  CHECK(mem.find("# Server") == std::string::npos);
  r = command(c.get(), {"INFO", "server", "clients"});
  REQUIRE(r);
  std::string two(r->str, r->len);
  CHECK(two.find("# Server\r\n") != std::string::npos);
  CHECK(two.find("# Clients\r\n") != std::string::npos);
  CHECK(two.find("# Memory") == std::string::npos);
  CHECK(q(c.get(), {"INFO", "nosuchsection"}) == "$");

  CHECK(q(c.get(), {"INFO", "keyspace"}) == "$# Keyspace\r\n");
  CHECK(q(c.get(), {"MSET", "a", "1", "b", "2"}) == "+OK");
  CHECK(q(c.get(), {"SET", "t", "v", "EX", "1000"}) == "+OK");
  std::string ks = q(c.get(), {"INFO", "keyspace"});
  CHECK(ks.rfind("$# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=", 0) == 0);

  const int64_t before = info_int(c.get(), "memory", "used_memory");
  const std::string value(1024, 'v');
  for (int i = 0; i < 2000; ++i)
    REQUIRE(q(c.get(), {"SET", "key:" + std::to_string(i), value}) == "+OK");
  const int64_t loaded = info_int(c.get(), "memory", "used_memory");
  CHECK(loaded - before >= 2000 * 1024);
  CHECK(info_int(c.get(), "stats", "keyspace_hits") == 0);
  CHECK(q(c.get(), {"GET", "key:1"}) == "$" + value);
  CHECK(q(c.get(), {"GET", "nokey"}) == "(nil)");
  CHECK(info_int(c.get(), "stats", "keyspace_hits") == 1);
  CHECK(info_int(c.get(), "stats", "keyspace_misses") == 1);
  CHECK(q(c.get(), {"FLUSHALL"}) == "+OK");
  CHECK(eventually(
      [&] { return info_int(c.get(), "memory", "used_memory") < loaded - 2000 * 1024; }));
}

TEST_CASE("CONFIG GET and SET") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"CONFIG", "GET", "maxmemory"}) == "[$maxmemory, $0]");
  Reply r = command(c.get(), {"CONFIG", "GET", "maxmemory", "maxmemory-policy"});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  std::map<std::string, std::string> pairs;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    pairs[r->element[i]->str] = r->element[i + 1]->str;
  CHECK(pairs ==
        std::map<std::string, std::string>{{"maxmemory", "0"}, {"maxmemory-policy", "noeviction"}});
  r = command(c.get(), {"CONFIG", "GET", "maxmemory*"});
  REQUIRE(r);
  CHECK(r->elements == 6);
  CHECK(q(c.get(), {"CONFIG", "GET", "nothing"}) == "[]");
  CHECK(q(c.get(), {"CONFIG", "GET", "port"}) == "[$port, $" + std::to_string(s.port()) + "]");

  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "10mb"}) == "+OK");
  CHECK(q(c.get(), {"CONFIG", "GET", "maxmemory"}) == "[$maxmemory, $10485760]");
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "allkeys-lru"}) ==
        "+OK");
  CHECK(q(c.get(), {"CONFIG", "GET", "maxmemory"}) == "[$maxmemory, $0]");
  CHECK(q(c.get(), {"CONFIG", "GET", "maxmemory-policy"}) == "[$maxmemory-policy, $allkeys-lru]");
  CHECK(info_field(c.get(), "memory", "maxmemory_policy") == "allkeys-lru");

  const std::string failed = "-ERR CONFIG SET failed (possibly related to argument '";
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory"}) ==
        "-ERR wrong number of arguments for 'config|set' command");
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "1", "hz"}) == "-ERR syntax error");
  CHECK(q(c.get(), {"CONFIG", "SET", "nosuch", "1"}) ==
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "abc"}) ==
        failed + "maxmemory') - argument must be a memory value");
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"}) ==
        failed + "maxmemory') - duplicate parameter");
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory-policy", "nope"}) ==
        failed +
            "maxmemory-policy') - argument(s) must be one of the following: volatile-lru, "
            "volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, "
            "allkeys-random, noeviction");
  CHECK(q(c.get(), {"CONFIG", "SET", "hz", "abc"}) ==
        failed + "hz') - argument couldn't be parsed into an integer");
  CHECK(q(c.get(), {"CONFIG", "SET", "timeout", "-1"}) ==
        failed + "timeout') - argument must be between 0 and 2147483647 inclusive");
  // Deliberate difference: Redis 7 can move its port at run time; ringkv's port (and bind,
  // io-threads) is fixed at start-up and says so with Redis's text for immutable directives.
  CHECK(q(c.get(), {"CONFIG", "SET", "port", "1"}) ==
        failed + "port') - can't set immutable config");
  // All or nothing: a bad pair leaves the good one unapplied.
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "5mb", "maxmemory-policy", "nope"})
            .rfind(failed + "maxmemory-policy')", 0) == 0);
  CHECK(q(c.get(), {"CONFIG", "GET", "maxmemory"}) == "[$maxmemory, $0]");
  CHECK(q(c.get(), {"CONFIG", "SET", "maxmemory", "1mb", "nosuch", "2"}) ==
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
  CHECK(q(c.get(), {"CONFIG", "GET", "maxmemory"}) == "[$maxmemory, $0]");
  // Multi-word values are one argument, as with redis-cli; Redis 7.0 prints "slave".
  CHECK(q(c.get(), {"CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 512kb 10"}) ==
        "+OK");
  CHECK(q(c.get(), {"CONFIG", "GET", "client-output-buffer-limit"}) ==
        "[$client-output-buffer-limit, $normal 1048576 524288 10 slave 268435456 67108864 60 "
        "pubsub 33554432 8388608 60]");
  CHECK(q(c.get(), {"CONFIG"}) == "-ERR wrong number of arguments for 'config' command");
  CHECK(q(c.get(), {"CONFIG", "GET"}) == "-ERR wrong number of arguments for 'config|get' command");
  CHECK(q(c.get(), {"CONFIG", "foo"}) == "-ERR unknown subcommand 'foo'. Try CONFIG HELP.");
}

TEST_CASE("COMMAND COUNT INFO GETKEYS") {
  ServerProcess s;
  Context c = client_of(s);
  Reply all = command(c.get(), {"COMMAND"});
  REQUIRE(all);
  REQUIRE(all->type == REDIS_REPLY_ARRAY);
  CHECK(q(c.get(), {"COMMAND", "COUNT"}) == ":" + std::to_string(all->elements));
  std::set<std::string> names;
  for (size_t i = 0; i < all->elements; ++i) names.insert(all->element[i]->element[0]->str);
  for (const char* must :
       {"ping",    "echo",     "quit",      "hello",       "auth",     "select",  "get",
        "set",     "setnx",    "setex",     "psetex",      "getset",   "getdel",  "getex",
        "mget",    "mset",     "msetnx",    "del",         "unlink",   "exists",  "incr",
        "decr",    "incrby",   "decrby",    "incrbyfloat", "append",   "strlen",  "expire",
        "pexpire", "expireat", "pexpireat", "ttl",         "pttl",     "persist", "type",
        "keys",    "scan",     "dbsize",    "flushdb",     "flushall", "info",    "config",
        "command"}) {
    INFO(must);
    CHECK(names.count(must) == 1);
  }

  Reply r = command(c.get(), {"COMMAND", "INFO", "get", "mset", "nosuch"});
  REQUIRE(r);
  REQUIRE(r->elements == 3);
  const redisReply* get = r->element[0];
  REQUIRE(get->type == REDIS_REPLY_ARRAY);
  REQUIRE(get->elements == 10);
  CHECK(show(get->element[0]) == "$get");
  CHECK(get->element[1]->integer == 2);
  CHECK(as_set(get->element[2]) == std::set<std::string>{"readonly", "fast"});
  CHECK(get->element[3]->integer == 1);
  CHECK(get->element[4]->integer == 1);
  CHECK(get->element[5]->integer == 1);
  CHECK(as_set(get->element[6]) == std::set<std::string>{"@read", "@string", "@fast"});
  const redisReply* mset = r->element[1];
  CHECK(mset->element[1]->integer == -3);
  CHECK(as_set(mset->element[2]) == std::set<std::string>{"write", "denyoom"});
  CHECK(mset->element[3]->integer == 1);
  CHECK(mset->element[4]->integer == -1);
  CHECK(mset->element[5]->integer == 2);
  CHECK(r->element[2]->type == REDIS_REPLY_NIL);

  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "GET", "k"}) == "[$k]");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "SET", "k", "v", "EX", "10"}) == "[$k]");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"}) == "[$a, $b]");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "DEL", "a", "b", "c"}) == "[$a, $b, $c]");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "nosuch", "x"}) == "-ERR Invalid command specified");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "PING", "x"}) == "-ERR The command has no key arguments");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "GET", "a", "b"}) ==
        "-ERR Invalid number of arguments specified for command");
  CHECK(q(c.get(), {"COMMAND", "GETKEYS", "GET"}) ==
        "-ERR wrong number of arguments for 'command|getkeys' command");
  CHECK(q(c.get(), {"COMMAND", "COUNT", "x"}) ==
        "-ERR wrong number of arguments for 'command|count' command");
  CHECK(q(c.get(), {"COMMAND", "FOO"}) == "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.");
}

TEST_CASE("COMMAND INFO of an unknown command is a null bulk string, as in Redis") {
  ServerProcess s;
  RawClient c(s.port());
  REQUIRE(c.send_all("COMMAND INFO nosuch\r\n"));
  CHECK(c.read_replies(1) == "*1\r\n$-1\r\n");
}

TEST_CASE("unknown commands and wrong arity answer exactly as Redis") {
  ServerProcess s;
  Context c = client_of(s);
  CHECK(q(c.get(), {"foo", "a", "b"}) ==
        "-ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  CHECK(q(c.get(), {"foo"}) == "-ERR unknown command 'foo', with args beginning with: ");
  // Arguments are quoted up to 128 bytes in all.
  const std::string long_arg(200, 'a');
  CHECK(q(c.get(), {"foo", long_arg, "b"}) ==
        "-ERR unknown command 'foo', with args beginning with: '" + std::string(128, 'a') + "' ");
  // Newlines in the text become spaces, so the error stays one line.
  CHECK(q(c.get(), {"foo", "a\nb"}) ==
        "-ERR unknown command 'foo', with args beginning with: 'a b' ");
  // Commands of types ringkv does not store are unknown commands too.
  CHECK(q(c.get(), {"LPUSH", "l", "x"}) ==
        "-ERR unknown command 'LPUSH', with args beginning with: 'l' 'x' ");
  CHECK(q(c.get(), {"GET"}) == "-ERR wrong number of arguments for 'get' command");
  CHECK(q(c.get(), {"SETNX", "a", "b", "c"}) ==
        "-ERR wrong number of arguments for 'setnx' command");
  CHECK(q(c.get(), {"TTL"}) == "-ERR wrong number of arguments for 'ttl' command");
  // The connection stays usable after errors.
  CHECK(q(c.get(), {"PING"}) == "+PONG");
}

// ---------------------------------------------------------------- values

TEST_CASE("binary keys and values, the empty key") {
  ServerProcess s;
  Context c = client_of(s);
  const std::string key("k\0e\r\ny\xff", 7);
  const std::string value("\0\r\n$3\r\n*1\r\n\xfe", 13);
  CHECK(q(c.get(), {"SET", key, value}) == "+OK");
  CHECK(q(c.get(), {"GET", key}) == "$" + value);
  CHECK(q(c.get(), {"GET", std::string("k\0e", 3)}) == "(nil)");  // no truncation at NUL
  CHECK(q(c.get(), {"STRLEN", key}) == ":13");
  CHECK(q(c.get(), {"EXISTS", key}) == ":1");
  Reply keys = command(c.get(), {"KEYS", "*"});
  CHECK(as_set(keys.get()) == std::set<std::string>{key});
  CHECK(q(c.get(), {"SET", "", "empty-key"}) == "+OK");
  CHECK(q(c.get(), {"GET", ""}) == "$empty-key");
  CHECK(q(c.get(), {"SET", "empty-value", ""}) == "+OK");
  CHECK(q(c.get(), {"GET", "empty-value"}) == "$");
  CHECK(q(c.get(), {"EXISTS", "", "empty-value"}) == ":2");
  CHECK(q(c.get(), {"DEL", "", key}) == ":2");
  CHECK(q(c.get(), {"DBSIZE"}) == ":1");
}

TEST_CASE("a 10 MB value round-trips") {
  ServerProcess s;
  Context c = client_of(s);
  std::string big(10 * 1024 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) ^ (i >> 13));
  CHECK(q(c.get(), {"SET", "big", big}) == "+OK");
  Reply r = command(c.get(), {"GET", "big"});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_STRING);
  CHECK(r->len == big.size());
  CHECK(std::string(r->str, r->len) == big);
  CHECK(q(c.get(), {"STRLEN", "big"}) == ":10485760");
  CHECK(q(c.get(), {"APPEND", "big", "tail"}) == ":10485764");
  r = command(c.get(), {"GET", "big"});
  REQUIRE(r);
  CHECK(std::string(r->str, r->len) == big + "tail");
}

TEST_CASE("a pipeline of 10,000 commands in one write, replies in order") {
  ServerProcess s;
  RawClient c(s.port());
  std::string wire;
  for (int i = 0; i < 2500; ++i) {
    std::string k = "key:" + std::to_string(i), v = "value:" + std::to_string(i);
    wire += "*3\r\n$3\r\nSET\r\n$" + std::to_string(k.size()) + "\r\n" + k + "\r\n$" +
            std::to_string(v.size()) + "\r\n" + v + "\r\n";
    wire += "GET " + k + "\r\n";
    wire += "INCR counter\r\n";
    wire += "*2\r\n$4\r\nECHO\r\n$" + std::to_string(k.size()) + "\r\n" + k + "\r\n";
  }
  c.send_reading(wire, 30s);
  std::string replies = c.read_replies(10000, 30s);
  REQUIRE(resp_value_count(replies) == 10000);
  std::string expect;
  for (int i = 0; i < 2500; ++i) {
    std::string k = "key:" + std::to_string(i), v = "value:" + std::to_string(i);
    expect += "+OK\r\n$" + std::to_string(v.size()) + "\r\n" + v + "\r\n:" + std::to_string(i + 1) +
              "\r\n$" + std::to_string(k.size()) + "\r\n" + k + "\r\n";
  }
  CHECK(replies == expect);
  CHECK(c.buffer().empty());
}

// ---------------------------------------------------------------- memory limits

TEST_CASE("maxmemory with noeviction: OOM on writes, reads work, nothing stored is lost") {
  ServerProcess s({"--maxmemory", "2mb", "--maxmemory-policy", "noeviction"});
  Context c = client_of(s);
  const std::string oom = "-OOM command not allowed when used memory > 'maxmemory'.";
  const std::string value(1024, 'x');
  int stored = 0;
  std::string last;
  for (int i = 0; i < 20000; ++i) {  // 20 MB of attempts against a 2 MB limit
    last = q(c.get(), {"SET", "key:" + std::to_string(i), value});
    if (last != "+OK") break;
    ++stored;
  }
  REQUIRE(last == oom);
  CHECK(stored > 100);
  CHECK(stored < 2048);
  // Further writes are refused too, and change nothing.
  CHECK(q(c.get(), {"SET", "another", "v"}) == oom);
  CHECK(q(c.get(), {"APPEND", "key:0", "more"}) == oom);
  CHECK(q(c.get(), {"EXISTS", "another"}) == ":0");
  // Every stored key is still there with its value; reads and deletes work.
  CHECK(q(c.get(), {"DBSIZE"}) == ":" + std::to_string(stored));
  for (int i = 0; i < stored; ++i) {
    INFO("key:" << i);
    REQUIRE(q(c.get(), {"GET", "key:" + std::to_string(i)}) == "$" + value);
  }
  CHECK(info_int(c.get(), "stats", "evicted_keys") == 0);
  CHECK(info_int(c.get(), "memory", "maxmemory") == 2 * 1024 * 1024);
  Args del = {"DEL"};
  for (int i = 0; i < stored / 2; ++i) del.push_back("key:" + std::to_string(i));
  CHECK(q(c.get(), del) == ":" + std::to_string(stored / 2));
  // With room again, writes succeed.
  CHECK(eventually([&] { return q(c.get(), {"SET", "another", "v"}) == "+OK"; }));
  CHECK(q(c.get(), {"GET", "another"}) == "$v");
}

TEST_CASE("maxmemory with allkeys-lru evicts instead of failing") {
  ServerProcess s({"--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"});
  Context c = client_of(s);
  const std::string value(1024, 'x');
  for (int i = 0; i < 10000; ++i) {  // 10 MB into 2 MB
    INFO("key:" << i);
    REQUIRE(q(c.get(), {"SET", "key:" + std::to_string(i), value}) == "+OK");
  }
  int64_t keys = integer(c.get(), {"DBSIZE"});
  CHECK(keys < 2048);
  CHECK(keys > 100);
  CHECK(info_int(c.get(), "stats", "evicted_keys") >= 10000 - keys);
  CHECK(info_int(c.get(), "memory", "used_memory") <= 3 * 1024 * 1024);
  // The most recent write is always there.
  CHECK(q(c.get(), {"GET", "key:9999"}) == "$" + value);
}

// ---------------------------------------------------------------- background expiry

TEST_CASE("active expiry removes keys nobody reads") {
  ServerProcess s;
  Context c = client_of(s);
  for (int i = 0; i < 500; ++i)
    REQUIRE(q(c.get(), {"SET", "short:" + std::to_string(i), "v", "PX", "100"}) == "+OK");
  for (int i = 0; i < 100; ++i)
    REQUIRE(q(c.get(), {"SET", "long:" + std::to_string(i), "v"}) == "+OK");
  // DBSIZE counts without touching keys: only the background cycle can bring it down.
  CHECK(eventually([&] { return q(c.get(), {"DBSIZE"}) == ":100"; }, 10s));
  CHECK(info_int(c.get(), "stats", "expired_keys") == 500);
  CHECK(q(c.get(), {"EXISTS", "long:0", "long:99"}) == ":2");
}

// ---------------------------------------------------------------- threads and clients

TEST_CASE("io-threads 4: concurrent clients get correct results") {
  ServerProcess s({"--io-threads", "4"});
  constexpr int kThreads = 8, kKeys = 1000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Context c = s.client();
      if (!c || c->err) {
        ++failures;
        return;
      }
      for (int i = 0; i < kKeys; ++i) {
        std::string k = "t" + std::to_string(t) + ":" + std::to_string(i);
        std::string v = "v" + std::to_string(t * 100000 + i);
        if (q(c.get(), {"SET", k, v}) != "+OK") ++failures;
        if (q(c.get(), {"GET", k}) != "$" + v) ++failures;
        if (q(c.get(), {"INCR", "shared"}).rfind(":", 0) != 0) ++failures;
        if (q(c.get(), {"APPEND", "log:" + std::to_string(t), "x"}) != ":" + std::to_string(i + 1))
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  Context c = client_of(s);
  CHECK(q(c.get(), {"GET", "shared"}) == "$" + std::to_string(kThreads * kKeys));
  CHECK(q(c.get(), {"DBSIZE"}) == ":" + std::to_string(kThreads * kKeys + 1 + kThreads));
  CHECK(info_field(c.get(), "server", "io_threads") == "4");
}

TEST_CASE("io-threads 4: MSETNX is all or nothing under concurrent writers") {
  ServerProcess s({"--io-threads", "4"});
  constexpr int kThreads = 8, kRounds = 2000;
  std::vector<std::atomic<int>> wins(kRounds);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Context c = s.client();
      if (!c || c->err) return;
      // Pipelined, so that the loops run many MSETNX of the same round at the same time.
      std::string v = std::to_string(t);
      for (int r = 0; r < kRounds; ++r) {
        std::string k = std::to_string(r);
        std::string a = "a:" + k, b = "b:" + k, cc = "c:" + k;
        redisAppendCommand(c.get(), "MSETNX %b %b %b %b %b %b", a.data(), a.size(), v.data(),
                           v.size(), b.data(), b.size(), v.data(), v.size(), cc.data(), cc.size(),
                           v.data(), v.size());
      }
      for (int r = 0; r < kRounds; ++r) {
        void* reply = nullptr;
        if (redisGetReply(c.get(), &reply) != REDIS_OK) return;
        Reply owned(static_cast<redisReply*>(reply));
        if (show(owned.get()) == ":1") ++wins[r];
      }
    });
  }
  for (auto& th : threads) th.join();
  Context c = client_of(s);
  int bad_rounds = 0;
  for (int r = 0; r < kRounds; ++r) {
    std::string k = std::to_string(r);
    std::string a = q(c.get(), {"GET", "a:" + k});
    if (wins[r] != 1 || q(c.get(), {"GET", "b:" + k}) != a || q(c.get(), {"GET", "c:" + k}) != a)
      ++bad_rounds;
  }
  // Exactly one MSETNX per round succeeds, and all its keys hold that writer's value.
  CHECK(bad_rounds == 0);
}

TEST_CASE("maxclients 2: a third client gets Redis's error and is closed") {
  ServerProcess s({"--maxclients", "2"});
  Context a = client_of(s);
  REQUIRE(q(a.get(), {"PING"}) == "+PONG");
  // The harness's readiness probes have gone once the server counts one client.
  REQUIRE(eventually([&] { return info_field(a.get(), "clients", "connected_clients") == "1"; }));
  Context b = client_of(s);
  REQUIRE(q(b.get(), {"PING"}) == "+PONG");
  RawClient third(s.port());
  REQUIRE(third.connected());
  CHECK(third.read_to_close() == "-ERR max number of clients reached\r\n");
  CHECK(third.closed());
  CHECK(q(a.get(), {"PING"}) == "+PONG");
  CHECK(info_int(a.get(), "stats", "rejected_connections") >= 1);
  b.reset();
  REQUIRE(eventually([&] { return info_field(a.get(), "clients", "connected_clients") == "1"; }));
  Context d = client_of(s);
  CHECK(q(d.get(), {"PING"}) == "+PONG");
}

// ---------------------------------------------------------------- start-up errors

namespace {

struct RunResult {
  int exit_code = -1;  // -1: killed after the deadline (it kept running)
  std::string out, err;
};

// Runs ringkv-server with `args` and returns its exit code and output, killing it if it is
// still running after the deadline.
RunResult run_server(const Args& args, std::chrono::milliseconds timeout = 10s) {
  int out_pipe[2], err_pipe[2];
  REQUIRE(::pipe(out_pipe) == 0);
  REQUIRE(::pipe(err_pipe) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    std::vector<std::string> all = {RINGKV_SERVER_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(RINGKV_SERVER_PATH, argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  RunResult res;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
    pollfd p[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? res.out : res.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    // Still running once the deadline passed (or output closed without an exit): give it until
    // the deadline to exit, then kill it.
    while (std::chrono::steady_clock::now() < deadline && ::waitpid(pid, &status, WNOHANG) == 0)
      std::this_thread::sleep_for(10ms);
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      res.exit_code = -1;
    } else {
      res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  } else {
    res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  return res;
}

}  // namespace

TEST_CASE("bad flags and files stop start-up with a message naming the directive") {
  struct Bad {
    Args args;
    std::vector<std::string> says;
  };
  const std::string port = std::to_string(free_port());
  const std::vector<Bad> cases = {
      {{"--port", "abc"}, {"--port abc", "couldn't be parsed into an integer"}},
      {{"--port", "99999"}, {"--port 99999", "between 0 and 65535"}},
      {{"--port", port, "--maxmemory-policy", "nope"},
       {"--maxmemory-policy nope", "must be one of the following"}},
      {{"--port", port, "--no-such-directive", "1"}, {"no-such-directive", "unknown directive"}},
      {{"--port", port, "--maxmemory", "lots"}, {"--maxmemory lots", "memory value"}},
      {{"/nonexistent/ringkv.conf"}, {"can't open config file '/nonexistent/ringkv.conf'"}},
      {{"--port", port, "--node-id", "a b"}, {"node-id", "'a b' must be printable ASCII"}},
      {{"--port", port, "--write-quorum", "4"}, {"write-quorum 4 is more than replicas 3"}},
      {{"--port", port, "--replicas", "1", "--write-quorum", "3"},
       {"write-quorum 3 is more than replicas 1"}},
      {{"--port", port, "--read-quorum", "5"}, {"read-quorum 5 is more than replicas 3"}},
      {{"--port", port, "--logfile", "/nonexistent/dir/ringkv.log"},
       {"can't open the log file '/nonexistent/dir/ringkv.log'"}},
  };
  for (const Bad& b : cases) {
    INFO(b.args[0] << " " << (b.args.size() > 1 ? b.args[1] : ""));
    RunResult r = run_server(b.args);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.exit_code != -1);  // it exited by itself, it was not left running
    for (const auto& s : b.says) CHECK(r.err.find(s) != std::string::npos);
  }
  RunResult v = run_server({"--version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("ringkv server v=") != std::string::npos);
}
