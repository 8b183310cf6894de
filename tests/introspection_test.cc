// Integration tests for introspection and administration: COMMAND (INFO, DOCS, COUNT, LIST,
// GETKEYS, GETKEYSANDFLAGS), CLIENT (every subcommand, PAUSE/UNPAUSE semantics), SLOWLOG,
// MONITOR, LATENCY, INFO (sections, fields, selection), CONFIG, TIME and MEMORY. Transactions are
// in transactions_test.cc.
//
// Most checks are differential: the test starts a real redis-server 7.0.15 (REDIS_SERVER_PATH,
// "databases 1" like ringkv) next to ringkv-server, sends both the same requests and compares
// the replies byte for byte, in RESP2 and RESP3. Where Redis's own reply is not deterministic
// (dictionary order of subcommands, client ids, timestamps, durations), the test normalises
// exactly that and compares the rest. Where ringkv deliberately differs, the test says so.
#include <poll.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "redis_pair.h"
#include "resp_node.h"
#include "server/latency.h"

using namespace ringkv::testing;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Waits until `cond` holds (polling) or the deadline passes.
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);  // polling interval
  }
  return cond();
}

// COMMAND INFO with the subcommands (element 9, in Redis's dictionary order) sorted by name, and
// only those in `keep` (when given); the others' names go to *dropped.
Node normalized_info(Node info, const std::set<std::string>* keep = nullptr,
                     std::set<std::string>* dropped = nullptr) {
  if (info.kids.size() == 10) {
    std::vector<Node> subs;
    for (Node& sub : info.kids[9].kids) {
      if (keep && !keep->count(sub.kids.at(0).text)) {
        if (dropped) dropped->insert(sub.kids.at(0).text);
        continue;
      }
      subs.push_back(normalized_info(sub));
    }
    std::sort(subs.begin(), subs.end(),
              [](const Node& a, const Node& b) { return a.kids.at(0).text < b.kids.at(0).text; });
    info.kids[9].kids = subs;
  }
  return info;
}

// COMMAND DOCS of one command with its "subcommands" map sorted by name (and only `keep`).
Node normalized_docs(Node docs, const std::set<std::string>* keep = nullptr) {
  for (size_t i = 0; i + 1 < docs.kids.size(); i += 2) {
    if (docs.kids[i].text != "subcommands") continue;
    Node& subs = docs.kids[i + 1];
    std::vector<std::pair<Node, Node>> pairs;
    for (size_t j = 0; j + 1 < subs.kids.size(); j += 2)
      if (!keep || keep->count(subs.kids[j].text))
        pairs.emplace_back(subs.kids[j], normalized_docs(subs.kids[j + 1]));
    std::sort(pairs.begin(), pairs.end(),
              [](const auto& a, const auto& b) { return a.first.text < b.first.text; });
    subs.kids.clear();
    for (auto& [k, v] : pairs) {
      subs.kids.push_back(k);
      subs.kids.push_back(v);
    }
  }
  return docs;
}

std::set<std::string> names_of(const Node& array) {
  std::set<std::string> out;
  for (const Node& n : array.kids) out.insert(n.text);
  return out;
}

// "k=v k=v ..." (a CLIENT LIST line) -> ordered (k, v) pairs.
std::vector<std::pair<std::string, std::string>> client_fields(std::string_view line) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t sp = line.find_first_of(" \n", pos);
    if (sp == std::string_view::npos) sp = line.size();
    std::string_view kv = line.substr(pos, sp - pos);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos)
      out.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    pos = sp + 1;
  }
  return out;
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& fields,
                     std::string_view key) {
  for (auto& [k, v] : fields)
    if (k == key) return v;
  return "(missing)";
}

// INFO's text -> (section, field) in order, and field -> value.
struct InfoText {
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::string> sections;
  std::map<std::string, std::string> values;
};
InfoText parse_info(std::string_view text) {
  InfoText out;
  std::string section;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string line(text.substr(pos, eol - pos));
    pos = eol + 2;
    if (line.rfind("# ", 0) == 0) {
      section = line.substr(2);
      out.sections.push_back(section);
    } else if (size_t colon = line.find(':'); colon != std::string::npos) {
      out.fields.emplace_back(section, line.substr(0, colon));
      out.values[line.substr(0, colon)] = line.substr(colon + 1);
    }
  }
  return out;
}

InfoText info_of(Client& c, const Args& sections = {}) {
  Args args = {"INFO"};
  args.insert(args.end(), sections.begin(), sections.end());
  return parse_info(parse(c.call(args)).text);
}

}  // namespace

// ================================================================ COMMAND

TEST_CASE("COMMAND INFO and COMMAND DOCS match Redis for every command ringkv implements",
          "[command]") {
  Pair p;
  for (int proto : {2, 3}) {
    INFO("RESP" << proto);
    if (proto == 3) p.resp3();
    const Node list = parse(p.k.call({"COMMAND", "LIST"}));
    const std::set<std::string> ours = names_of(list);
    std::set<std::string> dropped;  // Redis subcommands ringkv does not have
    size_t compared = 0, own = 0;
    for (const Node& name : list.kids) {
      INFO("command " << name.text);
      const Node want = parse(p.r.call({"COMMAND", "INFO", name.text}));
      const Node got = parse(p.k.call({"COMMAND", "INFO", name.text}));
      REQUIRE(want.kids.size() == 1);
      REQUIRE(got.kids.size() == 1);
      if (want.kids[0].kids.empty()) {  // not a Redis command: RING, RINGKV.*
        ++own;
        CHECK(got.kids[0].kids.size() == 10);
        continue;
      }
      CHECK(encode_node(normalized_info(got.kids[0])) ==
            encode_node(normalized_info(want.kids[0], &ours, &dropped)));
      const Node dwant = parse(p.r.call({"COMMAND", "DOCS", name.text}));
      const Node dgot = parse(p.k.call({"COMMAND", "DOCS", name.text}));
      REQUIRE(dwant.kids.size() == 2);
      REQUIRE(dgot.kids.size() == 2);
      CHECK(dgot.kids[0] == dwant.kids[0]);
      CHECK(encode_node(normalized_docs(dgot.kids[1])) ==
            encode_node(normalized_docs(dwant.kids[1], &ours)));
      ++compared;
    }
    // The one subcommand of a container ringkv has that it leaves out: client-side caching.
    CHECK(dropped == std::set<std::string>{"client|tracking"});
    // Every command of the issue, with the subcommands ringkv has.
    CHECK(compared >= 120);
    CHECK(own >= 10);
    // COMMAND COUNT counts top-level commands; COMMAND and COMMAND INFO list them all.
    const Node all = parse(p.k.call({"COMMAND"}));
    size_t top = 0;
    for (const Node& n : list.kids) top += n.text.find('|') == std::string::npos ? 1 : 0;
    CHECK(p.k.call({"COMMAND", "COUNT"}) == integer(static_cast<int64_t>(top)));
    CHECK(all.kids.size() == top);
    CHECK(parse(p.k.call({"COMMAND", "INFO"})).kids.size() == top);
    CHECK(parse(p.k.call({"COMMAND", "DOCS"})).kids.size() == 2 * top);
  }
}

TEST_CASE("ringkv's own commands have hand-written docs with arguments", "[command]") {
  Pair p;
  const Node docs = parse(p.k.call({"COMMAND", "DOCS", "ring"}));
  REQUIRE(docs.kids.size() == 2);
  const Node* subs = field(docs.kids[1], "subcommands");
  REQUIRE(subs != nullptr);
  const Node* add = field(*subs, "ring|addserver");
  REQUIRE(add != nullptr);
  CHECK(field(*add, "group")->text == "cluster");
  const Node* args = field(*add, "arguments");
  REQUIRE(args != nullptr);
  REQUIRE(args->kids.size() == 3);
  CHECK(field(args->kids[2], "token")->text == "WEIGHT");
  CHECK(field(args->kids[2], "flags")->kids.at(0).text == "optional");
  // Internal commands are documented too, and take no keys.
  const Node info = parse(p.k.call({"COMMAND", "INFO", "ringkv.digest"}));
  REQUIRE(info.kids.at(0).kids.size() == 10);
  CHECK(info.kids[0].kids[3].text == "0");
}

TEST_CASE("COMMAND LIST filters, GETKEYS and GETKEYSANDFLAGS match Redis", "[command]") {
  Pair p;
  const std::set<std::string> ours = names_of(parse(p.k.call({"COMMAND", "LIST"})));
  // A filter gives exactly Redis's answer restricted to the commands ringkv has.
  for (const Args& filter : std::vector<Args>{{"PATTERN", "get*"},
                                              {"PATTERN", "client*"},
                                              {"PATTERN", "*|id"},
                                              {"PATTERN", "C*"},
                                              {"ACLCAT", "transaction"},
                                              {"ACLCAT", "keyspace"},
                                              {"ACLCAT", "Dangerous"},
                                              {"ACLCAT", "string"},
                                              {"ACLCAT", "nosuchcat"},
                                              {"MODULE", "x"}}) {
    INFO("FILTERBY " << show(filter));
    Args cmd = {"COMMAND", "LIST", "FILTERBY", filter[0], filter[1]};
    std::set<std::string> want;
    for (const std::string& n : names_of(parse(p.r.call(cmd))))
      if (ours.count(n)) want.insert(n);
    std::set<std::string> got = names_of(parse(p.k.call(cmd)));
    std::set<std::string> got_redis_cmds;
    for (const std::string& n : got)
      if (n.rfind("ring", 0) != 0) got_redis_cmds.insert(n);
    CHECK(got_redis_cmds == want);
  }
  p.script(R"(
command list filterby foo x
command list filterby pattern
command list foo
command list filterby pattern x extra
command getkeys
command getkeys get
command getkeys nosuch a
command getkeys get a b
command getkeys ping
command getkeys set a b
command getkeys mset a 1 b
command getkeys mset a 1 b 2
command getkeys config get x
command getkeys object encoding k
command getkeys object nosuch k
command getkeys object encoding
command getkeys bitop and d a b
command getkeys lcs a b
command getkeys client kill x
command getkeys copy a b db 0
command getkeys rename a b
command getkeys memory usage k
command getkeys memory usage
command getkeys watch a b c
command getkeysandflags set a b
command getkeysandflags mset a 1 b 2
command getkeysandflags bitop and d a b
command getkeysandflags copy a b
command getkeysandflags getex a
command getkeysandflags ping
command help
command count x
command x
command info nosuch get
command docs nosuch
command docs CLIENT|ID
command docs client|nosuch
)");
  p.resp3();
  p.script(R"(
command getkeysandflags mset a 1 b 2
command getkeysandflags bitfield k get u8 0
command info get nosuch
command docs get
)");
}

// ================================================================ CLIENT

TEST_CASE("CLIENT subcommands answer as Redis", "[client]") {
  Pair p;
  p.script(R"(
client list type bogus
client list id 1 2 abc
client list id 0
client list id -1
client list id
client list foo
client list id 1 type normal
client list type normal id 1
client list type replica
client list type master
client list type pubsub
client kill 1.2.3.4:5
client kill id 99999
client kill id abc
client kill id 0
client kill id 1 foo
client kill maxage 10
client kill skipme maybe
client kill user nobody
client kill user default skipme yes
client kill type bogus
client kill laddr 1.2.3.4:1
client kill addr 1.1.1.1:1 id 5
client kill id
client kill type master
client kill type replica
client kill type pubsub
client pause
client pause abc
client pause -1
client pause 10 bogus
client pause 10 write extra
client PAUSE 10 write extra
client pause 9223372036854775807
client pause 0
client unpause
client unpause x
client no-evict maybe
client no-evict on
client no-evict OFF
client reply maybe
client reply on extra
client setname "a b"
client setname "a\nb"
client setname ""
client getname
client setname foo
client getname
client setname ""
client getname
client bogus
client
client getredir
client trackinginfo
client unblock 1
client unblock abc
client unblock 1 timeout
client unblock 1 error
client unblock 1 foo
client unblock 1 foo bar
client unblock abc foo
client caching yes
client caching maybe
client help x
)");
  p.resp3();
  p.script(R"(
client trackinginfo
client getname
client list type pubsub
)");
  // CLIENT HELP is Redis's text without CLIENT TRACKING, which ringkv does not implement.
  Node help = parse(p.k.call({"CLIENT", "HELP"}));
  Node rhelp = parse(p.r.call({"CLIENT", "HELP"}));
  std::vector<Node> expected;
  for (size_t i = 0; i < rhelp.kids.size(); ++i) {
    if (rhelp.kids[i].text.rfind("TRACKING (ON|OFF)", 0) == 0) {
      i += 2;  // its continuation line and its description
      continue;
    }
    expected.push_back(rhelp.kids[i]);
  }
  CHECK(help.kids == expected);
  CHECK(p.k.call({"CLIENT", "TRACKING", "on"}) ==
        err("ERR unknown subcommand 'TRACKING'. Try CLIENT HELP."));
}

TEST_CASE("CLIENT LIST and CLIENT INFO have Redis 7.0's fields and values", "[client]") {
  Pair p;
  // A client in a transaction with a queued SET, seen by another client.
  Client rw(p.redis.port()), kw(p.ringkv.port());
  for (Client* c : {&rw, &kw}) {
    REQUIRE(c->call({"CLIENT", "SETNAME", "me"}) == kOk);
    REQUIRE(c->call({"MULTI"}) == kOk);
    REQUIRE(c->call({"SET", "a", "1"}) == "+QUEUED\r\n");
  }
  auto named = [](const std::string& list, std::string_view name) {
    size_t pos = list.find(" name=" + std::string(name) + " ");
    REQUIRE(pos != std::string::npos);
    size_t start = list.rfind('\n', pos);
    start = start == std::string::npos ? 0 : start + 1;
    return list.substr(start, list.find('\n', pos) - start);
  };
  const auto want = client_fields(named(parse(p.r.call({"CLIENT", "LIST"})).text, "me"));
  const auto got = client_fields(named(parse(p.k.call({"CLIENT", "LIST"})).text, "me"));
  std::vector<std::string> want_names, got_names;
  for (auto& [k, v] : want) want_names.push_back(k);
  for (auto& [k, v] : got) got_names.push_back(k);
  CHECK(got_names == want_names);
  // The values that describe the client's state are Redis's.
  for (const char* f : {"name", "flags", "db", "sub", "psub", "ssub", "multi", "obl", "oll",
                        "events", "cmd", "user", "redir", "resp"}) {
    INFO(f);
    CHECK(value_of(got, f) == value_of(want, f));
  }
  CHECK(value_of(got, "flags") == "x");
  CHECK(value_of(got, "multi") == "1");
  CHECK(value_of(got, "cmd") == "set");
  CHECK(std::stoll(value_of(got, "id")) > 0);
  for (Client* c : {&rw, &kw}) REQUIRE(c->call({"DISCARD"}) == kOk);
  // The caller's own line (CLIENT INFO) outside a transaction.
  const auto want_info = client_fields(parse(p.r.call({"CLIENT", "INFO"})).text);
  const auto got_info = client_fields(parse(p.k.call({"CLIENT", "INFO"})).text);
  for (const char* f : {"name", "flags", "db", "multi", "argv-mem", "cmd", "user", "resp"}) {
    INFO(f);
    CHECK(value_of(got_info, f) == value_of(want_info, f));
  }

  // CLIENT LIST: one line per client, ID filter, TYPE filter, and the caller's own line.
  Client other(p.ringkv.port());
  REQUIRE(other.call({"CLIENT", "SETNAME", "other"}) == kOk);
  const std::string other_id = parse(other.call({"CLIENT", "ID"})).text;
  Node list = parse(p.k.call({"CLIENT", "LIST"}));
  CHECK(std::count(list.text.begin(), list.text.end(), '\n') == 3);
  CHECK(list.text.find("name=other") != std::string::npos);
  Node one = parse(p.k.call({"CLIENT", "LIST", "ID", other_id, "999999"}));
  auto fields = client_fields(one.text);
  CHECK(value_of(fields, "id") == other_id);
  CHECK(value_of(fields, "name") == "other");
  CHECK(std::count(one.text.begin(), one.text.end(), '\n') == 1);
  // TYPE normal: the same clients (both are normal clients).
  auto ids_of = [](const std::string& text) {
    std::set<std::string> ids;
    size_t pos = 0;
    while ((pos = text.find("id=", pos)) != std::string::npos) {
      if (pos == 0 || text[pos - 1] == '\n')
        ids.insert(text.substr(pos, text.find(' ', pos) - pos));
      ++pos;
    }
    return ids;
  };
  CHECK(ids_of(parse(p.k.call({"CLIENT", "LIST", "TYPE", "NORMAL"})).text) == ids_of(list.text));
  CHECK(ids_of(list.text).size() == 3);
  // CLIENT NO-EVICT shows as flag e, in RESP3 CLIENT INFO is a verbatim string.
  REQUIRE(p.k.call({"CLIENT", "NO-EVICT", "on"}) == kOk);
  CHECK(value_of(client_fields(parse(p.k.call({"CLIENT", "INFO"})).text), "flags") == "e");
  p.resp3();
  const std::string v = p.k.call({"CLIENT", "INFO"});
  CHECK(v.rfind("=", 0) == 0);
  CHECK(v.find("txt:id=") != std::string::npos);
  CHECK(value_of(client_fields(parse(v).text.substr(4)), "resp") == "3");
}

TEST_CASE("CLIENT KILL by id, address, local address, user and the old form", "[client]") {
  ServerProcess server;
  Client admin(server.port());
  Client a(server.port()), b(server.port()), c(server.port()), d(server.port());
  const std::string a_id = parse(a.call({"CLIENT", "ID"})).text;
  auto fields_b = client_fields(parse(b.call({"CLIENT", "INFO"})).text);
  auto fields_c = client_fields(parse(c.call({"CLIENT", "INFO"})).text);
  REQUIRE(d.call({"PING"}) == "+PONG\r\n");

  CHECK(admin.call({"CLIENT", "KILL", "ID", a_id}) == integer(1));
  CHECK(a.wait_closed());
  CHECK(admin.call({"CLIENT", "KILL", "ID", a_id}) == integer(0));
  // Old form: +OK, or an error when nobody matched.
  CHECK(admin.call({"CLIENT", "KILL", value_of(fields_b, "addr")}) == kOk);
  CHECK(b.wait_closed());
  CHECK(admin.call({"CLIENT", "KILL", value_of(fields_b, "addr")}) == err("ERR No such client"));
  CHECK(admin.call({"CLIENT", "KILL", "ADDR", value_of(fields_c, "addr"), "LADDR",
                    value_of(fields_c, "laddr")}) == integer(1));
  CHECK(c.wait_closed());
  // USER default matches every client but the caller (SKIPME yes by default).
  CHECK(admin.call({"CLIENT", "KILL", "USER", "default"}) == integer(1));
  CHECK(d.wait_closed());
  CHECK(admin.call({"PING"}) == "+PONG\r\n");
  // Killing itself: the reply comes first, then the connection closes.
  const std::string me = parse(admin.call({"CLIENT", "ID"})).text;
  CHECK(admin.call({"CLIENT", "KILL", "ID", me, "SKIPME", "no"}) == integer(1));
  CHECK(admin.wait_closed());
  Client e(server.port());
  auto fields_e = client_fields(parse(e.call({"CLIENT", "INFO"})).text);
  CHECK(e.call({"CLIENT", "KILL", value_of(fields_e, "addr")}) == kOk);
  CHECK(e.wait_closed());
  Client f(server.port());
  CHECK(f.call({"PING"}) == "+PONG\r\n");
}

// Runs a CLIENT PAUSE scenario against a server; returns what was observed, for comparison
// between Redis and ringkv.
std::vector<std::string> pause_scenario(int port) {
  std::vector<std::string> seen;
  Client admin(port), b(port), c(port);
  REQUIRE(admin.call({"SET", "x", "0"}) == kOk);

  // WRITE: reads answer at once, writes wait; a pipeline keeps its order.
  REQUIRE(admin.call({"CLIENT", "PAUSE", "100000", "WRITE"}) == kOk);
  seen.push_back("get: " + b.call({"GET", "x"}));
  b.send_raw(encode({"SET", "x", "1"}) + encode({"GET", "x"}));
  seen.push_back("set while paused: " + b.read(300ms));  // nothing within 300 ms
  // The held request shows in CLIENT LIST (flags=b) and INFO (blocked_clients).
  std::string list = parse(c.call({"CLIENT", "LIST"})).text;
  seen.push_back(std::string("flag b: ") +
                 (list.find("flags=b") != std::string::npos ? "yes" : "no"));
  seen.push_back("blocked: " + info_of(c, {"clients"}).values["blocked_clients"]);
  // A non-write command from another client runs, and ends the pause.
  seen.push_back("unpause: " + c.call({"CLIENT", "UNPAUSE"}));
  seen.push_back("held set: " + b.read());
  seen.push_back("pipelined get: " + b.read());

  // MULTI under WRITE: queuing a write waits; EXEC of reads only does not.
  REQUIRE(admin.call({"CLIENT", "PAUSE", "100000", "WRITE"}) == kOk);
  seen.push_back("multi: " + b.call({"MULTI"}));
  seen.push_back("queued get: " + b.call({"GET", "x"}));
  seen.push_back("exec of reads: " + b.call({"EXEC"}));
  seen.push_back("multi: " + b.call({"MULTI"}));
  b.send({"SET", "x", "2"});
  seen.push_back("queued set while paused: " + b.read(300ms));
  seen.push_back("unpause: " + c.call({"CLIENT", "UNPAUSE"}));
  seen.push_back("queued set: " + b.read());
  seen.push_back("exec: " + b.call({"EXEC"}));

  // ALL: every command waits, the pausing client's and CLIENT UNPAUSE included, until the end.
  const auto t0 = SteadyClock::now();
  REQUIRE(admin.call({"CLIENT", "PAUSE", "700", "ALL"}) == kOk);
  b.send({"PING"});
  c.send({"CLIENT", "UNPAUSE"});
  seen.push_back("ping while paused: " + b.read(200ms));
  seen.push_back("unpause while paused: " + c.read(100ms));
  seen.push_back("ping: " + b.read());
  seen.push_back("unpause: " + c.read());
  const auto waited = SteadyClock::now() - t0;
  seen.push_back(std::string("waited for the timeout: ") + (waited >= 600ms ? "yes" : "no"));
  // A shorter or weaker pause never shortens one in force (WRITE 10 after ALL 500).
  REQUIRE(admin.call({"CLIENT", "PAUSE", "500", "ALL"}) == kOk);
  c.send({"CLIENT", "PAUSE", "10", "WRITE"});
  seen.push_back("second pause while paused: " + c.read(200ms));
  seen.push_back("second pause: " + c.read());
  seen.push_back("get after: " + b.call({"GET", "x"}));
  // Unknown commands and wrong arity are refused at once, even in a pause.
  REQUIRE(admin.call({"CLIENT", "PAUSE", "100000", "ALL"}) == kOk);
  seen.push_back("unknown: " + b.call({"NOSUCH"}));
  seen.push_back("arity: " + b.call({"GET"}));
  b.send({"PING"});
  seen.push_back("ping held: " + b.read(200ms));
  return seen;
}

TEST_CASE("CLIENT PAUSE and UNPAUSE hold commands as Redis does", "[client][pause]") {
  // Each server is left paused (ALL, 100 s) at the end of its scenario: it is stopped after.
  std::vector<std::string> want, got;
  {
    ServerProcess redis{{"--databases", "1"}, REDIS_SERVER_PATH};
    want = pause_scenario(redis.port());
  }
  {
    ServerProcess ringkv;
    got = pause_scenario(ringkv.port());
    CHECK(ringkv.alive());
  }
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("step " << i);
    CHECK(printable(got[i]) == printable(want[i]));
  }
  // The facts the scenario must show (so that a broken Redis run cannot pass it either).
  CHECK(got[1] == "set while paused: ");
  CHECK(got[2] == "flag b: yes");
  CHECK(got[3] == "blocked: 1");
  CHECK(got[5] == "held set: +OK\r\n");
  CHECK(got[6] == "pipelined get: $1\r\n1\r\n");
  CHECK(got[13] == "queued set: +QUEUED\r\n");
  CHECK(got[14] == "exec: *1\r\n+OK\r\n");
  CHECK(got[17] == "ping: +PONG\r\n");
  CHECK(got[19] == "waited for the timeout: yes");
  CHECK(got.back() == "ping held: ");
}

TEST_CASE("CLIENT PAUSE holds clients on every io-thread and resumes them", "[client][pause]") {
  ServerProcess server({"--io-threads", "4"});
  Client admin(server.port());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 16; ++i) clients.push_back(std::make_unique<Client>(server.port()));
  REQUIRE(admin.call({"CLIENT", "PAUSE", "100000", "WRITE"}) == kOk);
  for (size_t i = 0; i < clients.size(); ++i) clients[i]->send({"INCR", "counter"});
  for (auto& c : clients) CHECK(c->read(100ms).empty());
  CHECK(admin.call({"GET", "counter"}) == "$-1\r\n");
  CHECK(eventually([&] { return info_of(admin, {"clients"}).values["blocked_clients"] == "16"; }));
  CHECK(admin.call({"CLIENT", "UNPAUSE"}) == kOk);
  std::set<std::string> replies;
  for (auto& c : clients) replies.insert(c->read());
  CHECK(replies.size() == 16);  // 1..16, each once
  CHECK(admin.call({"GET", "counter"}) == bulk("16"));
  // A pause that times out releases them too.
  REQUIRE(admin.call({"CLIENT", "PAUSE", "300", "WRITE"}) == kOk);
  for (auto& c : clients) c->send({"INCR", "counter"});
  for (auto& c : clients) CHECK(!c->read().empty());
  CHECK(admin.call({"GET", "counter"}) == bulk("32"));
  CHECK(info_of(admin, {"clients"}).values["blocked_clients"] == "0");
}

// ================================================================ SLOWLOG

// One SLOWLOG GET entry without its id, timestamp, duration and port.
struct SlowEntry {
  int64_t id_offset;
  std::vector<std::string> argv;
  std::string name;
  bool operator==(const SlowEntry& o) const {
    return id_offset == o.id_offset && argv == o.argv && name == o.name;
  }
};

std::vector<SlowEntry> slowlog_scenario(Client& c) {
  REQUIRE(c.call({"CONFIG", "SET", "slowlog-log-slower-than", "0"}) == kOk);
  REQUIRE(c.call({"SLOWLOG", "RESET"}) == kOk);
  Args mset = {"MSET"};
  for (int i = 0; i < 40; ++i) mset.push_back("k" + std::to_string(i));
  for (const Args& a : std::vector<Args>{
           {"SET", "k", "v"},
           {"CLIENT", "SETNAME", "myname"},
           {"SET", "k", std::string(130, 'x')},
           {"ECHO", std::string(128, 'y')},
           {"ECHO", std::string(129, 'z')},
           {"AUTH", "foo"},
           {"AUTH", "a", "b", "c"},
           {"HELLO", "2", "AUTH", "u", "p"},
           {"HELLO", "2", "SETNAME", "n2", "AUTH", "u", "p", "BOGUS"},
           {"CLIENT", "SETNAME", "myname"},
           {"MULTI"},
           {"SET", "a", "1"},
           {"EXEC"},
           {"CONFIG", "SET", "requirepass", ""},
           {"CONFIG", "SET", "maxmemory", "0", "requirepass", ""},
           mset,
           {"GET"},
           {"NOSUCH"},
           {"SLOWLOG", "LEN"},
       }) {
    c.call(a);
  }
  Node entries = parse(c.call({"SLOWLOG", "GET", "-1"}));
  REQUIRE(c.call({"CONFIG", "SET", "slowlog-log-slower-than", "10000"}) == kOk);
  std::vector<SlowEntry> out;
  REQUIRE(!entries.kids.empty());
  const int64_t last_id = std::stoll(entries.kids.back().kids.at(0).text);
  for (const Node& e : entries.kids) {
    REQUIRE(e.kids.size() == 6);
    SlowEntry s;
    s.id_offset = std::stoll(e.kids[0].text) - last_id;
    for (const Node& a : e.kids[3].kids) s.argv.push_back(a.text);
    s.name = e.kids[5].text;
    // timestamp: now; duration: microseconds; client: ip:port.
    CHECK(std::abs(std::stoll(e.kids[1].text) - std::time(nullptr)) <= 5);
    CHECK(std::stoll(e.kids[2].text) >= 0);
    CHECK(e.kids[4].text.rfind("127.0.0.1:", 0) == 0);
    out.push_back(std::move(s));
  }
  return out;
}

TEST_CASE("SLOWLOG records, shortens and redacts arguments as Redis", "[slowlog]") {
  Pair p;
  p.script(R"(
slowlog get -2
slowlog get abc
slowlog get 0
slowlog get 1 2
slowlog len x
slowlog help
slowlog
slowlog foo
slowlog reset x
)");
  const auto want = slowlog_scenario(p.r);
  const auto got = slowlog_scenario(p.k);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("entry " << i << ": " << (want[i].argv.empty() ? "" : want[i].argv[0]));
    CHECK(got[i].argv == want[i].argv);
    CHECK(got[i].name == want[i].name);
    CHECK(got[i].id_offset == want[i].id_offset);
  }
  // The facts: 32 arguments at most, strings cut at 128 bytes, secrets redacted.
  bool saw_mset = false, saw_auth = false, saw_big = false;
  for (const SlowEntry& e : got) {
    if (e.argv[0] == "MSET") {
      saw_mset = true;
      CHECK(e.argv.size() == 32);
      CHECK(e.argv.back() == "... (10 more arguments)");
    }
    if (e.argv[0] == "AUTH" && e.argv.size() == 2) {
      saw_auth = true;
      CHECK(e.argv[1] == "(redacted)");
    }
    if (e.argv[0] == "SET" && e.argv.size() == 3 && e.argv[2].size() > 128) {
      saw_big = true;
      CHECK(e.argv[2] == std::string(128, 'x') + "... (2 more bytes)");
    }
  }
  CHECK(saw_mset);
  CHECK(saw_auth);
  CHECK(saw_big);

  // SLOWLOG LEN / GET count / RESET, the max length, and -1 turning it off.
  Client& k = p.k;
  REQUIRE(k.call({"CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "5"}) == kOk);
  for (int i = 0; i < 10; ++i) k.call({"PING"});
  CHECK(k.call({"SLOWLOG", "LEN"}) == integer(5));
  CHECK(parse(k.call({"SLOWLOG", "GET", "2"})).kids.size() == 2);
  CHECK(parse(k.call({"SLOWLOG", "GET"})).kids.size() == 5);
  CHECK(k.call({"SLOWLOG", "RESET"}) == kOk);
  REQUIRE(k.call({"CONFIG", "SET", "slowlog-log-slower-than", "-1"}) == kOk);
  k.call({"PING"});
  CHECK(k.call({"SLOWLOG", "LEN"}) == integer(1));  // the CONFIG SET itself, as in Redis
  REQUIRE(k.call({"CONFIG", "SET", "slowlog-log-slower-than", "1000000"}) == kOk);
  REQUIRE(k.call({"SLOWLOG", "RESET"}) == kOk);
  k.call({"PING"});
  CHECK(k.call({"SLOWLOG", "LEN"}) == integer(0));
}

// ================================================================ MONITOR

// The monitor's output for a fixed sequence of commands, with timestamps and ports removed.
std::vector<std::string> monitor_scenario(int port) {
  Client m(port);
  REQUIRE(m.call({"MONITOR"}) == kOk);
  Client c(port);
  const std::vector<Args> cmds = {
      {"SET", "k", std::string("v\x00\x01\xff\"\\\n\r\t\a\b \xc3\xa9", 14)},
      {"GET", "k"},
      {"AUTH", "pw"},
      {"AUTH", "u", "pw"},
      {"AUTH", "a", "b", "c"},
      {"HELLO", "2", "AUTH", "default", "pw"},
      {"HELLO", "3", "SETNAME", "x"},
      {"HELLO", "2", "AUTH", "u", "p", "SETNAME", "n"},
      {"HELLO", "2", "SETNAME", "n", "AUTH", "u", "p"},
      {"HELLO", "2", "AUTH", "u", "p", "BOGUS"},
      {"HELLO", "9", "AUTH", "u", "p"},
      {"HELLO", "2"},
      {"NOSUCH", "a"},
      {"GET"},
      {"INCR", "k"},
      {"CONFIG", "GET", "maxmemory"},
      {"CLIENT", "LIST"},
      {"CLIENT", "ID"},
      {"MULTI"},
      {"SET", "a", "1"},
      {"INCR", "a"},
      {"EXEC"},
      {"MULTI"},
      {"SET", "a"},
      {"EXEC"},
      {"DBSIZE"},
      {"SLOWLOG", "GET"},
      {"INFO", "server"},
      {"SET", "12345", "-7"},
      {"CLIENT", "SETNAME", "nm"},
      {"MEMORY", "USAGE", "k"},
      {"TIME"},
      {"WATCH", "a"},
      {"UNWATCH"},
      {"DEL", "a", "b"},
      {"GET", "after"},
  };
  for (const Args& a : cmds) c.call(a);
  // From the monitor itself: a second MONITOR gets no reply, PING works, keys are refused.
  m.send_raw(encode({"MONITOR"}) + encode({"PING"}) + encode({"GET", "k"}));
  std::vector<std::string> lines;
  for (;;) {
    std::string r = m.read(5s);
    if (r.empty()) break;
    lines.push_back(std::regex_replace(r, std::regex(R"(^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\])"),
                                       "+T [0 ADDR]"));
    if (r.find("Replica") != std::string::npos) break;
  }
  return lines;
}

TEST_CASE("MONITOR shows what ran in Redis's format, escaped and redacted", "[monitor]") {
  std::vector<std::string> want, got;
  {
    ServerProcess redis{{"--databases", "1"}, REDIS_SERVER_PATH};
    want = monitor_scenario(redis.port());
  }
  {
    ServerProcess ringkv;
    got = monitor_scenario(ringkv.port());
  }
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("line " << i);
    CHECK(printable(got[i]) == printable(want[i]));
  }
  CHECK(got.at(0) ==
        "+T [0 ADDR] \"SET\" \"k\" \"v\\x00\\x01\\xff\\\"\\\\\\n\\r\\t\\a\\b \\xc3\\xa9\"\r\n");
  CHECK(std::find(got.begin(), got.end(), "+T [0 ADDR] \"AUTH\" \"(redacted)\"\r\n") != got.end());
  CHECK(got.back() == "-ERR Replica can't interact with the keyspace\r\n");
}

TEST_CASE("MONITOR receives the commands of clients on every io-thread", "[monitor]") {
  ServerProcess server({"--io-threads", "4"});
  Client m(server.port());
  REQUIRE(m.call({"MONITOR"}) == kOk);
  const int kClients = 12, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&server, t] {
      Client c(server.port());
      for (int i = 0; i < kEach; ++i)
        c.call({"SET", "key:" + std::to_string(t) + ":" + std::to_string(i), "v"});
    });
  }
  for (auto& t : threads) t.join();
  std::multiset<std::string> seen;
  for (int i = 0; i < kClients * kEach; ++i) {
    std::string line = m.read(10s);
    REQUIRE(!line.empty());
    size_t q = line.find("\"SET\" \"");
    REQUIRE(q != std::string::npos);
    seen.insert(line.substr(q));
  }
  for (int t = 0; t < kClients; ++t)
    for (int i = 0; i < kEach; ++i)
      CHECK(seen.count("\"SET\" \"key:" + std::to_string(t) + ":" + std::to_string(i) +
                       "\" \"v\"\r\n") == 1);
  // Closing the monitor detaches it; the server keeps serving.
  Client c(server.port());
  CHECK(c.call({"PING"}) == "+PONG\r\n");
}

// ================================================================ LATENCY

TEST_CASE("LatencyHistogram reproduces hdr_histogram's buckets and percentiles", "[latency]") {
  using ringkv::server::LatencyHistogram;
  // Redis prints p50=5.023 for one 5 us call, 3.007 for 3 us, 13.055 for 13 us.
  for (auto [us, text] : std::vector<std::pair<int, std::string>>{
           {5, "5.023"}, {3, "3.007"}, {13, "13.055"}, {38, "38.143"}, {83, "83.455"}}) {
    LatencyHistogram h;
    h.record(int64_t{us} * 1000);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(h.value_at_percentile(50)) / 1000.0);
    CHECK(std::string(buf) == text);
  }
  // LATENCY HISTOGRAM's cumulative buckets: 1, 2, 4, 8, 16, 33, 66, 132... microseconds.
  LatencyHistogram h;
  for (int i = 0; i < 5; ++i) h.record(1000);   // 1 us
  h.record(1500);                               // 1.5 us
  for (int i = 0; i < 4; ++i) h.record(30000);  // 30 us
  h.record(100000);                             // 100 us
  auto cdf = h.cumulative_usec();
  std::vector<std::pair<int64_t, uint64_t>> expected = {{1, 5}, {2, 6}, {33, 10}, {132, 11}};
  CHECK(cdf == expected);
  CHECK(h.total() == 11);
  CHECK(h.value_at_percentile(100) / 1000 == 100);
  h.reset();
  CHECK(h.total() == 0);
  CHECK(h.cumulative_usec().empty());
}

TEST_CASE("LATENCY records events past the threshold and answers as Redis", "[latency]") {
  Pair p;
  p.script(R"(
latency help
latency latest
latency history command
latency history
latency reset
latency reset command foo
latency doctor
latency graph command
latency graph
latency foo
latency histogram nosuch
)");
  // An LCS of two 3000-byte strings takes milliseconds on both servers.
  std::string a, b;
  for (int i = 0; i < 3000; ++i) {
    a.push_back(static_cast<char>('a' + (i * 7) % 26));
    b.push_back(static_cast<char>('a' + (i * 11) % 26));
  }
  for (Client* c : {&p.r, &p.k}) {
    REQUIRE(c->call({"CONFIG", "SET", "latency-monitor-threshold", "1"}) == kOk);
    REQUIRE(c->call({"MSET", "a", a, "b", b}) == kOk);
    REQUIRE(parse(c->call({"LCS", "a", "b", "LEN"})).type == ':');
  }
  for (Client* c : {&p.r, &p.k}) {
    INFO((c == &p.r ? "redis" : "ringkv"));
    Node latest = parse(c->call({"LATENCY", "LATEST"}));
    const Node* command = nullptr;
    for (const Node& e : latest.kids)
      if (e.kids.at(0).text == "command") command = &e;
    REQUIRE(command != nullptr);
    REQUIRE(command->kids.size() == 4);
    CHECK(std::abs(std::stoll(command->kids[1].text) - std::time(nullptr)) <= 5);
    CHECK(std::stoll(command->kids[2].text) >= 1);
    CHECK(std::stoll(command->kids[3].text) >= std::stoll(command->kids[2].text));
    Node history = parse(c->call({"LATENCY", "HISTORY", "command"}));
    REQUIRE(history.kids.size() >= 1);
    CHECK(history.kids[0].kids.size() == 2);
    std::string graph = parse(c->call({"LATENCY", "GRAPH", "command"})).text;
    CHECK(graph.rfind("command - high ", 0) == 0);
    CHECK(graph.find(std::string(80, '-')) != std::string::npos);
    std::string doctor = parse(c->call({"LATENCY", "DOCTOR"})).text;
    CHECK(doctor.find("1. command: ") != std::string::npos);
    CHECK(doctor.find("- Check your Slow Log") != std::string::npos);
    // LATENCY HISTOGRAM: one MSET call, cumulative counts.
    Node hist = parse(c->call({"LATENCY", "HISTOGRAM", "mset", "lcs"}));
    REQUIRE(hist.kids.size() == 4);
    const Node* calls = field(hist.kids[1], "calls");
    REQUIRE(calls != nullptr);
    CHECK(calls->text == "1");
    const Node* buckets = field(hist.kids[1], "histogram_usec");
    REQUIRE(buckets != nullptr);
    REQUIRE(buckets->kids.size() == 2);
    CHECK(buckets->kids[1].text == "1");
    // RESET forgets every event.
    CHECK(c->call({"LATENCY", "RESET"}) == integer(static_cast<int64_t>(latest.kids.size())));
    CHECK(c->call({"LATENCY", "LATEST"}) == "*0\r\n");
  }
  // Monitoring off again and nothing recorded: DOCTOR says so as Redis.
  for (Client* c : {&p.r, &p.k}) {
    REQUIRE(c->call({"CONFIG", "SET", "latency-monitor-threshold", "0"}) == kOk);
    c->call({"LATENCY", "RESET"});
  }
  p.both({"LATENCY", "DOCTOR"});
  p.resp3();
  p.both({"LATENCY", "DOCTOR"});
  p.both({"LATENCY", "HISTOGRAM", "nosuch"});
  p.both({"LATENCY", "RESET"});
}

// ================================================================ INFO

TEST_CASE("INFO has Redis 7.0.15's sections and fields, and selects sections as Redis", "[info]") {
  Pair p;
  p.script(R"(
set a 1
set e 1 ex 100
set s x
get a
get
incr a
incr s
)");
  const InfoText want = info_of(p.r, {"everything"});
  const InfoText got = info_of(p.k, {"everything"});
  CHECK(got.sections == want.sections);
  // Every Redis field, in Redis's order, in the same section (per-command sections aside).
  auto redis_fields = [](const InfoText& t,
                         const std::set<std::pair<std::string, std::string>>& keep) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& f : t.fields) {
      if (f.first == "Commandstats" || f.first == "Errorstats" || f.first == "Latencystats")
        continue;
      if (keep.count(f)) out.push_back(f);
    }
    return out;
  };
  std::set<std::pair<std::string, std::string>> want_set(want.fields.begin(), want.fields.end());
  std::set<std::pair<std::string, std::string>> got_set(got.fields.begin(), got.fields.end());
  for (auto& f : want.fields) {
    if (f.first == "Commandstats" || f.first == "Errorstats" || f.first == "Latencystats") continue;
    INFO(f.first << " " << f.second);
    CHECK(got_set.count(f) == 1);
  }
  CHECK(redis_fields(got, want_set) == redis_fields(want, want_set));
  // Values that must be Redis's for this history.
  for (const char* f : {"redis_version",
                        "redis_mode",
                        "arch_bits",
                        "multiplexing_api",
                        "hz",
                        "connected_clients",
                        "maxclients",
                        "blocked_clients",
                        "loading",
                        "rdb_bgsave_in_progress",
                        "rdb_last_bgsave_status",
                        "aof_enabled",
                        "total_commands_processed",
                        "keyspace_hits",
                        "keyspace_misses",
                        "total_error_replies",
                        "role",
                        "connected_slaves",
                        "cluster_enabled",
                        "maxmemory",
                        "maxmemory_policy",
                        "rdb_saves",
                        "expired_keys",
                        "evicted_keys",
                        "pubsub_channels",
                        "master_repl_offset"}) {
    INFO(f);
    CHECK(got.values.at(f) == want.values.at(f));
  }
  CHECK(got.values.at("cmdstat_incr").rfind("calls=2,", 0) == 0);
  CHECK(got.values.at("cmdstat_incr").find(",rejected_calls=0,failed_calls=1") !=
        std::string::npos);
  CHECK(got.values.at("db0").rfind("keys=3,expires=1,avg_ttl=", 0) == 0);
  CHECK(got.values.at("cmdstat_get").find("calls=1,") == 0);
  CHECK(got.values.at("cmdstat_get").find(",rejected_calls=1,failed_calls=0") != std::string::npos);
  CHECK(got.values.at("errorstat_ERR") == want.values.at("errorstat_ERR"));
  CHECK(std::regex_match(got.values.at("latency_percentiles_usec_set"),
                         std::regex(R"(p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3})")));
  CHECK(std::regex_match(got.values.at("used_memory_peak_perc"), std::regex(R"(\d+\.\d\d%)")));
  CHECK(std::stoll(got.values.at("total_net_input_bytes")) > 0);
  CHECK(std::stoll(got.values.at("rdb_changes_since_last_save")) > 0);

  // Section selection: default, all, everything, several names, any case, unknown ones.
  for (const Args& sel : std::vector<Args>{{},
                                           {"default"},
                                           {"all"},
                                           {"everything"},
                                           {"server", "clients"},
                                           {"CPU"},
                                           {"Keyspace", "modules"},
                                           {"module_list"},
                                           {"commandstats"},
                                           {"latencystats", "errorstats"},
                                           {"default", "commandstats"},
                                           {"all", "nosuch"},
                                           {"persistence", "replication", "stats", "memory"}}) {
    INFO("INFO " << show(sel));
    CHECK(info_of(p.k, sel).sections == info_of(p.r, sel).sections);
  }
  p.both({"INFO", "nosuch"});
  p.both({"INFO", "nosuch", "other"});
  p.resp3();
  p.both({"INFO", "nosuch"});
  CHECK(p.k.call({"INFO", "cluster"}).rfind("=", 0) == 0);  // verbatim in RESP3
}

TEST_CASE("INFO stats follow the server: clients, commands, errors, keyspace, RESETSTAT",
          "[info]") {
  ServerProcess server;
  Client c(server.port());
  Client other(server.port());
  InfoText before = info_of(c);
  CHECK(before.values.at("connected_clients") == "2");
  for (int i = 0; i < 10; ++i) c.call({"SET", "k" + std::to_string(i), "v", "EX", "1000"});
  c.call({"INCR", "k0"});
  c.call({"NOSUCH"});
  InfoText after = info_of(c, {"everything"});
  CHECK(after.values.at("db0").rfind("keys=10,expires=10,avg_ttl=", 0) == 0);
  int64_t avg_ttl = std::stoll(after.values.at("db0").substr(27));
  CHECK(avg_ttl > 990000);
  CHECK(avg_ttl <= 1000000);
  CHECK(after.values.at("cmdstat_set").rfind("calls=10,", 0) == 0);
  CHECK(after.values.at("errorstat_ERR") == "count=2");
  CHECK(after.values.at("total_error_replies") == "2");
  CHECK(after.values.at("cmdstat_incr").find("failed_calls=1") != std::string::npos);
  CHECK(std::stoll(after.values.at("total_net_output_bytes")) >
        std::stoll(before.values.at("total_net_output_bytes")));
  CHECK(after.values.at("rdb_changes_since_last_save") == "10");
  CHECK(c.call({"CONFIG", "RESETSTAT"}) == kOk);
  InfoText reset = info_of(c, {"everything"});
  CHECK(reset.values.count("cmdstat_set") == 0);
  CHECK(reset.values.count("errorstat_ERR") == 0);
  CHECK(reset.values.count("latency_percentiles_usec_set") == 0);
  CHECK(reset.values.at("total_error_replies") == "0");
  CHECK(std::stoll(reset.values.at("total_net_input_bytes")) < 200);
  CHECK(reset.values.at("cmdstat_config|resetstat").rfind("calls=1,", 0) == 0);
}

// ================================================================ CONFIG, TIME, MEMORY

TEST_CASE("CONFIG GET with several patterns, SET with several pairs, errors as Redis", "[config]") {
  Pair p;
  p.script(R"(
config get
config set maxmemory 10 timeout
config set maxmemory 10 maxmemory 20
config set maxmemory 20 timeout abc
config set nosuch 1
config set maxmemory 1 nosuch 1
config set maxmemory 0 timeout 0
config get maxmemory
config get MAXMEMORY
config get nosuch
config get nosuch maxmemory
config resetstat x
config rewrite
config help
config set slowlog-log-slower-than -2
config set latency-monitor-threshold -1
config set slowlog-max-len 64 slowlog-log-slower-than 5000
config get slowlog-max-len
config get slowlog-log-slower-than
config set maxmemory 1000000 timeout abc
config get maxmemory
config set timeout 5 maxmemory 2mb
config get timeout
config get maxmemory
)");
  // Several patterns: the union of the matches, each name once, in any order (a map).
  for (const Args& pats : std::vector<Args>{{"maxmemory", "timeout"},
                                            {"slowlog*", "latency-monitor-threshold"},
                                            {"maxmemory", "maxmem*"},
                                            {"hz", "maxmemory-policy"}}) {
    INFO("CONFIG GET " << show(pats));
    Args cmd = {"CONFIG", "GET"};
    cmd.insert(cmd.end(), pats.begin(), pats.end());
    Node got = parse(p.k.call(cmd));
    Node want = parse(p.r.call(cmd));
    std::map<std::string, std::string> g, w;
    for (size_t i = 0; i + 1 < got.kids.size(); i += 2) g[got.kids[i].text] = got.kids[i + 1].text;
    for (size_t i = 0; i + 1 < want.kids.size(); i += 2)
      w[want.kids[i].text] = want.kids[i + 1].text;
    CHECK(g.size() * 2 == got.kids.size());  // no name twice
    for (auto& [k, v] : g) {
      INFO(k);
      if (w.count(k)) CHECK(w.at(k) == v);
    }
    for (auto& [k, v] : w) {
      // Every Redis directive ringkv has is matched too.
      if (parse(p.k.call({"CONFIG", "GET", k})).kids.size() == 2) CHECK(g.count(k) == 1);
    }
  }
  p.resp3();
  p.both({"CONFIG", "GET", "maxmemory"});
  p.both({"CONFIG", "GET", "nosuch"});
}

TEST_CASE("TIME and MEMORY answer as Redis", "[server]") {
  Pair p;
  Node t = parse(p.k.call({"TIME"}));
  REQUIRE(t.kids.size() == 2);
  CHECK(std::abs(std::stoll(t.kids[0].text) - std::time(nullptr)) <= 2);
  CHECK(std::stoll(t.kids[1].text) < 1000000);
  Node t2 = parse(p.k.call({"TIME"}));
  CHECK(std::stoll(t2.kids[0].text) * 1000000 + std::stoll(t2.kids[1].text) >=
        std::stoll(t.kids[0].text) * 1000000 + std::stoll(t.kids[1].text));
  p.script(R"(
time x
set k v
memory usage nokey
memory usage
memory usage k samples x
memory usage k foo 1
memory usage k samples -1
memory usage k samples
memory help
memory foo
memory stats x
memory purge x
memory doctor
memory purge
)");
  // MEMORY USAGE: the entry's arena block and its table slot: it grows with the value.
  const int64_t small = std::stoll(parse(p.k.call({"MEMORY", "USAGE", "k"})).text);
  REQUIRE(p.k.call({"SET", "k", std::string(1000, 'x')}) == kOk);
  const int64_t large = std::stoll(parse(p.k.call({"MEMORY", "USAGE", "k", "SAMPLES", "0"})).text);
  CHECK(small > 1);
  CHECK(small < 64);
  CHECK(large - small >= 999);
  CHECK(large - small <= 1024);
  Node stats = parse(p.k.call({"MEMORY", "STATS"}));
  REQUIRE(field(stats, "keys.count") != nullptr);
  CHECK(field(stats, "keys.count")->text == "1");
  CHECK(std::stoll(field(stats, "total.allocated")->text) >= large);
  p.resp3();
  p.both({"MEMORY", "USAGE", "nokey"});
  p.both({"MEMORY", "DOCTOR"});
}
