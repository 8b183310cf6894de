// The C++ client library (include/ringkv/client.h) against real local clusters: every call, every
// error kind, batches of 10,000 mixed keys, routing right after ring changes made through the
// client, and one Client shared by many threads.
#include "ringkv/client.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "cluster_harness.h"
#include "loopback.h"
#include "ringkv/token.h"

using namespace ringkv;
using namespace ringkv::testing;

namespace {

std::string address(int port) { return "127.0.0.1:" + std::to_string(port); }

ClientOptions options_for(Cluster& c, int seed = 0) {
  ClientOptions o;
  o.seeds = {address(c.port(seed))};
  return o;
}

std::unique_ptr<Client> open_client(ClientOptions o) {
  auto r = Client::open(std::move(o));
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& ch : s) ch = static_cast<char>(rng() & 0xff);
  return s;
}

// Keys stamped with their index (so unique) followed by random bytes of any value (NUL, CR, LF,
// spaces, 0xff...), one empty key, values of random length, empty ones among them.
std::vector<std::pair<std::string, std::string>> mixed_items(size_t n, std::mt19937& rng) {
  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(n);
  kv.emplace_back("", "the empty key's value");
  for (size_t i = 1; i < n; ++i) {
    std::string key = std::to_string(i) + ":" + random_bytes(rng, rng() % 24);
    std::string value = (i % 10 == 0) ? std::string() : random_bytes(rng, rng() % 200);
    kv.emplace_back(std::move(key), std::move(value));
  }
  return kv;
}

// RING OWNERS <key> as node i sees it.
std::vector<std::string> ring_owners(Cluster& c, int i, const std::string& key) {
  auto cl = c.client(i);
  Reply r = command(cl.get(), {"RING", "OWNERS", key});
  std::vector<std::string> out;
  if (r && r->type == REDIS_REPLY_ARRAY) {
    for (size_t j = 0; j < r->elements; ++j)
      out.emplace_back(r->element[j]->str, r->element[j]->len);
  }
  return out;
}

uint64_t node_epoch(Cluster& c, int i) {
  return std::stoull("0" + info_field(c.ring_info(i), "ring_epoch"));
}

// For `samples` keys: the client's primary equals RING OWNERS' first entry on every running node
// (each node asked once it applied at least the client's epoch).
void check_routing(Cluster& c, Client& client, int samples) {
  uint64_t epoch = client.topology().epoch;
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    REQUIRE(eventually([&] { return node_epoch(c, i) >= epoch; }));
  }
  size_t mismatches = 0;
  std::string first;
  for (int k = 0; k < samples; ++k) {
    std::string key = "route:" + std::to_string(k);
    auto mine = client.owners(key);
    REQUIRE(!mine.empty());
    for (int i = 0; i < c.size(); ++i) {
      if (!c.running(i)) continue;
      auto theirs = ring_owners(c, i, key);
      if (theirs != mine && mismatches++ == 0)
        first = key + " via " + c.id(i) + ": client " + mine[0] + ", node " +
                (theirs.empty() ? "<none>" : theirs[0]);
    }
  }
  INFO("first mismatch: " << first);
  CHECK(mismatches == 0);
}

// Loads keys through the client and reads them back through it, checked.
void check_readable(Client& client, const std::map<std::string, std::string>& expected) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : expected) keys.push_back(k);
  auto got = client.get_many(keys);
  INFO(got.status().to_string());
  REQUIRE(got.is_ok());
  size_t wrong = 0;
  for (size_t i = 0; i < keys.size(); ++i)
    if (!(*got)[i] || *(*got)[i] != expected.at(keys[i])) ++wrong;
  CHECK(wrong == 0);
}

// Every command a node has processed (clients' and peers').
long long commands_processed(Cluster& c, int i) {
  auto cl = c.client(i);
  std::string text = reply_text(command(cl.get(), {"INFO", "stats"}));
  return std::stoll("0" + info_field(text, "total_commands_processed"));
}

}  // namespace

TEST_CASE("client: invalid options are refused before any I/O") {
  ClientOptions o;
  auto r = Client::open(o);
  REQUIRE(!r.is_ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("seeds"));

  o.seeds = {"no-port-here"};
  r = Client::open(o);
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("no-port-here"));

  o.seeds = {"127.0.0.1:0"};
  CHECK(Client::open(o).status().code() == Code::kInvalidArgument);
  for (std::string bad : {" 127.0.0.1:1", "127.0.0.1 :1", "local\thost:1"}) {
    o.seeds = {bad};
    r = Client::open(o);
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("'" + bad + "' is not a host:port address"));
  }
  o.seeds = {"127.0.0.1:1"};
  o.command_timeout_ms = 0;
  CHECK(Client::open(o).status().code() == Code::kInvalidArgument);
  o.command_timeout_ms = 100;
  o.pool_size = 0;
  CHECK(Client::open(o).status().code() == Code::kInvalidArgument);
  o.pool_size = 1;
  o.batch_chunk_keys = 0;
  CHECK(Client::open(o).status().code() == Code::kInvalidArgument);
}

TEST_CASE("client: nothing listening at the seeds is kUnreachable, naming every seed") {
  ClientOptions o;
  int p1 = free_port(), p2 = free_port();
  o.seeds = {address(p1), address(p2)};
  auto r = Client::open(o);
  REQUIRE(!r.is_ok());
  CHECK(r.status().code() == Code::kUnreachable);
  CHECK_THAT(r.status().message(), Catch::Contains(address(p1)) && Catch::Contains(address(p2)));
}

TEST_CASE("client: a server that accepts and never answers is kTimedOut") {
  // A listening socket nobody accepts on: the kernel completes the handshake (backlog), so the
  // connection succeeds and the request is never answered.
  int port = 0;
  int fd = listen_loopback(&port);
  REQUIRE(fd >= 0);
  ClientOptions o;
  o.seeds = {address(port)};
  o.command_timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  auto r = Client::open(o);
  auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  REQUIRE(!r.is_ok());
  CHECK(r.status().code() == Code::kTimedOut);
  CHECK_THAT(r.status().message(), Catch::Contains("RING CONFIG"));
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("client: every call against a 3-node cluster") {
  Cluster c(3, false);
  auto client = open_client(options_for(c, 1));

  // The client learnt the whole ring from one seed.
  ClientTopology t = client->topology();
  CHECK(t.server_ids == std::vector<std::string>{"n1", "n2", "n3"});
  CHECK(t.replicas == 3);
  CHECK(t.epoch == node_epoch(c, 0));
  CHECK(!t.migrating);
  CHECK(t.addresses[0] == address(c.port(0)));

  // Single keys, binary-safe, empty value, not found distinct from errors.
  REQUIRE(client->put("hello", "world").is_ok());
  auto v = client->get("hello");
  REQUIRE(v.is_ok());
  CHECK(*v == "world");
  std::string bin_key("k\0\r\n\xff", 5), bin_value("\0\0v\r\n", 5);
  REQUIRE(client->put(bin_key, bin_value).is_ok());
  CHECK(client->get(bin_key).value() == bin_value);
  REQUIRE(client->put("empty", "").is_ok());
  v = client->get("empty");
  REQUIRE(v.is_ok());
  CHECK(v->empty());
  auto missing = client->get("never-set");
  REQUIRE(!missing.is_ok());
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK_THAT(missing.status().message(), Catch::Contains("never-set"));
  // What the client wrote, every node reads (it went to the cluster, not to a cache).
  for (int i = 0; i < 3; ++i)
    CHECK(reply_text(command(c.client(i).get(), {"GET", "hello"})) == "world");
  auto removed = client->remove("hello");
  REQUIRE(removed.is_ok());
  CHECK(*removed);
  removed = client->remove("hello");
  REQUIRE(removed.is_ok());
  CHECK(!*removed);
  CHECK(client->get("hello").status().code() == Code::kNotFound);

  // Every key goes straight to its primary. Reads of 2,000 keys whose primary is n1, sent through
  // a client whose seed is n2: n1 processes them all, n2 and n3 see only their background chatter
  // (heartbeats), far fewer than the reads (a client that sent them anywhere else would show up).
  std::vector<std::string> n1_keys;
  for (int k = 0; n1_keys.size() < 2000; ++k) {
    std::string key = "direct:" + std::to_string(k);
    if (client->owners(key)[0] == "n1") n1_keys.push_back(key);
  }
  long long before[3];
  for (int i = 0; i < 3; ++i) before[i] = commands_processed(c, i);
  for (const auto& key : n1_keys) CHECK(client->get(key).status().code() == Code::kNotFound);
  long long delta[3];
  for (int i = 0; i < 3; ++i) delta[i] = commands_processed(c, i) - before[i];
  INFO("commands processed during the reads: " << delta[0] << " " << delta[1] << " " << delta[2]);
  CHECK(delta[0] >= 2000);
  CHECK(delta[1] < 400);
  CHECK(delta[2] < 400);

  // Owners agree with the servers.
  check_routing(c, *client, 200);

  // Ring changes with bad arguments: checked locally, or refused by the server with its text.
  CHECK(client->add_server("", "127.0.0.1:1").code() == Code::kInvalidArgument);
  CHECK(client->add_server("n9", "").code() == Code::kInvalidArgument);
  CHECK(client->add_server("n9", "127.0.0.1:1", 0).code() == Code::kInvalidArgument);
  CHECK(client->remove_server("").code() == Code::kInvalidArgument);
  Status st = client->remove_server("no-such-server");
  CHECK(st.code() == Code::kRefused);
  CHECK_THAT(st.message(), Catch::Contains("ERR no server 'no-such-server' on the ring"));
  st = client->add_server("n9", address(free_port()));
  CHECK(st.code() == Code::kRefused);
  CHECK_THAT(st.message(), Catch::Contains("unreachable"));
  st = client->add_server("n1", address(c.port(0)));
  CHECK(st.code() == Code::kRefused);
  CHECK_THAT(st.message(), Catch::Contains("already"));
  CHECK(client->topology().epoch == t.epoch);  // nothing changed

  // refresh() reads the configuration again; nothing changed, so neither does the epoch.
  CHECK(client->refresh().is_ok());
  CHECK(client->topology().epoch == t.epoch);
}

TEST_CASE("client: batches of 10,000 mixed keys") {
  Cluster c(3, false);
  auto client = open_client(options_for(c));
  std::mt19937 rng(1234);
  auto items = mixed_items(10000, rng);
  // Keys 0..7999 are written; 8000..9999 stay missing.
  std::vector<std::pair<std::string, std::string>> written(items.begin(), items.begin() + 8000);
  // A key listed twice in one batch: the last value wins.
  written.emplace_back(written[5].first, "second value");
  std::map<std::string, std::string> expected;
  for (const auto& [k, v] : written) expected[k] = v;
  REQUIRE(expected.size() == 8000);

  Status st = client->put_many(written);
  INFO(st.to_string());
  REQUIRE(st.is_ok());

  std::vector<std::string> keys;
  for (const auto& [k, v] : items) keys.push_back(k);
  auto got = client->get_many(keys);
  INFO(got.status().to_string());
  REQUIRE(got.is_ok());
  REQUIRE(got->size() == keys.size());
  size_t wrong = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = expected.find(keys[i]);
    bool ok = it == expected.end() ? !(*got)[i].has_value()
                                   : ((*got)[i].has_value() && *(*got)[i] == it->second);
    if (!ok) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK((*got)[0].value() == "the empty key's value");
  CHECK((*got)[5].value() == "second value");
  CHECK((*got)[10].value().empty());  // an empty value, distinct from a missing key
  CHECK(!(*got)[9000].has_value());

  // The data is really on the cluster: DBSIZE through any node, and single GETs through a node.
  CHECK(command(c.client(2).get(), {"DBSIZE"})->integer == 8000);
  auto direct =
      pipeline_get(c.client(1).get(), std::vector<std::string>(keys.begin(), keys.begin() + 100));
  for (size_t i = 0; i < 100; ++i)
    CHECK(direct[i] == std::optional<std::string>(expected.at(keys[i])));

  // string_view overloads and duplicates in a read batch.
  std::vector<std::string_view> views = {keys[1], keys[9999], keys[1]};
  auto few = client->get_many(std::span<const std::string_view>(views));
  REQUIRE(few.is_ok());
  CHECK((*few)[0] == (*few)[2]);
  CHECK((*few)[0].value() == expected.at(keys[1]));
  CHECK(!(*few)[1].has_value());

  // Remove every other key (half of them missing ones): the count is those that existed.
  std::vector<std::string> doomed;
  size_t existed = 0;
  for (size_t i = 0; i < keys.size(); i += 2) {
    doomed.push_back(keys[i]);
    if (expected.erase(keys[i])) ++existed;
  }
  auto n = client->remove_many(doomed);
  INFO(n.status().to_string());
  REQUIRE(n.is_ok());
  CHECK(*n == existed);
  got = client->get_many(keys);
  REQUIRE(got.is_ok());
  wrong = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = expected.find(keys[i]);
    bool ok = it == expected.end() ? !(*got)[i].has_value()
                                   : ((*got)[i].has_value() && *(*got)[i] == it->second);
    if (!ok) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(command(c.client(0).get(), {"DBSIZE"})->integer == static_cast<long long>(expected.size()));

  // Large values: a batch is cut into chunks by bytes as well as by keys.
  std::vector<std::pair<std::string, std::string>> big;
  for (int i = 0; i < 24; ++i)
    big.emplace_back("big:" + std::to_string(i), random_bytes(rng, 300000 + i));
  REQUIRE(client->put_many(big).is_ok());
  std::vector<std::string> big_keys;
  for (const auto& [k, val] : big) big_keys.push_back(k);
  auto big_got = client->get_many(big_keys);
  REQUIRE(big_got.is_ok());
  for (size_t i = 0; i < big.size(); ++i)
    CHECK((*big_got)[i] == std::optional<std::string>(big[i].second));
  std::string huge = random_bytes(rng, 5 << 20);
  REQUIRE(client->put("huge", huge).is_ok());
  CHECK(client->get("huge").value() == huge);
  CHECK(client->remove_many(big_keys).value() == big.size());
  CHECK(client->remove("huge").value());

  // Empty batches are no-ops.
  CHECK(client->put_many(std::vector<std::pair<std::string, std::string>>{}).is_ok());
  CHECK(client->get_many(std::vector<std::string>{})->empty());
  CHECK(client->remove_many(std::vector<std::string>{}).value() == 0);
}

TEST_CASE("client: a stopped node, then all nodes stopped") {
  Cluster c(3, false);
  ClientOptions o = options_for(c);
  o.connect_timeout_ms = 500;
  auto client = open_client(o);
  std::mt19937 rng(5);
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 3000; ++i) kv.emplace_back("s:" + std::to_string(i), random_bytes(rng, 20));
  REQUIRE(client->put_many(kv).is_ok());
  std::map<std::string, std::string> expected(kv.begin(), kv.end());

  // Kill n2 (as a crash would). Reads: every key is still readable, single and batched, through
  // the other replicas, with no wait for the cluster to notice.
  c.node(1).kill_hard();
  size_t primaries_on_n2 = 0, wrong = 0;
  for (int i = 0; i < 300; ++i) {
    const auto& [k, val] = kv[static_cast<size_t>(i)];
    if (client->owners(k)[0] == "n2") ++primaries_on_n2;
    auto v = client->get(k);
    if (!v || *v != val) ++wrong;
  }
  CHECK(primaries_on_n2 > 50);  // the check covered keys whose primary is the dead node
  CHECK(wrong == 0);
  check_readable(*client, expected);

  // Writes with N=3, W=2 and one node down succeed: the next replica takes a key whose primary is
  // gone (the client retries while the cluster answers TRYAGAIN, until it notices the node is
  // down), and two copies acknowledge.
  std::vector<std::pair<std::string, std::string>> more;
  for (int i = 0; i < 2000; ++i)
    more.emplace_back("after:" + std::to_string(i), random_bytes(rng, 10));
  Status st = client->put_many(more);
  INFO(st.to_string());
  REQUIRE(st.is_ok());
  for (int i = 0; i < 200; ++i) {
    std::string key = "single-after:" + std::to_string(i);
    Status s1 = client->put(key, "x");
    INFO(key << " " << s1.to_string());
    REQUIRE(s1.is_ok());
    expected[key] = "x";
  }
  for (const auto& [k, v] : more) expected[k] = v;
  check_readable(*client, expected);
  auto removed = client->remove_many(std::vector<std::string>{"after:1", "after:2"});
  REQUIRE(removed.is_ok());
  CHECK(*removed == 2);

  // All nodes down: kUnreachable from every call, naming the servers.
  c.node(0).kill_hard();
  c.node(2).kill_hard();
  auto g = client->get("s:1");
  CHECK(g.status().code() == Code::kUnreachable);
  CHECK_THAT(g.status().message(),
             Catch::Contains(address(c.port(0))) && Catch::Contains(address(c.port(2))));
  CHECK(client->put("s:1", "v").code() == Code::kUnreachable);
  CHECK(client->remove("s:1").status().code() == Code::kUnreachable);
  CHECK(client->get_many(std::vector<std::string>{"s:1", "s:2"}).status().code() ==
        Code::kUnreachable);
  CHECK(client->put_many(kv).code() == Code::kUnreachable);
  CHECK(client->remove_many(std::vector<std::string>{"s:1"}).status().code() == Code::kUnreachable);
  CHECK(client->add_server("n9", "127.0.0.1:1").code() == Code::kUnreachable);
  CHECK(client->refresh().code() == Code::kUnreachable);
}

TEST_CASE("client: hung servers give kTimedOut") {
  Cluster c(3, false);
  ClientOptions o = options_for(c);
  o.command_timeout_ms = 300;
  o.refresh_interval_ms = 0;
  auto client = open_client(o);
  REQUIRE(client->put("k", "v").is_ok());
  ContinueOnExit guard;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(::kill(c.node(i).pid(), SIGSTOP) == 0);
    guard.pids.push_back(c.node(i).pid());
  }
  auto start = std::chrono::steady_clock::now();
  auto g = client->get("k");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(g.status().code() == Code::kTimedOut);
  CHECK_THAT(g.status().message(), Catch::Contains("no reply within the command timeout"));
  CHECK(took < std::chrono::seconds(5));  // three servers tried, 300 ms each
  CHECK(client->put("k", "w").code() == Code::kTimedOut);
  CHECK(client->get_many(std::vector<std::string>{"k", "k2"}).status().code() == Code::kTimedOut);
}

TEST_CASE("client: passwords: wrong or missing is kRefused with the server's text") {
  // n1 alone with requirepass; n2 and n3 join through the client, which authenticates.
  Cluster c(1, false, {"--requirepass", "s3cret"});
  c.start_node();
  c.start_node();
  ClientOptions o = options_for(c);
  o.password = "s3cret";
  auto client = open_client(o);
  Status st = client->add_server("n2", address(c.port(1)));
  INFO(st.to_string());
  REQUIRE(st.is_ok());
  // A second change is refused while the first one's data moves; poll until it is accepted.
  REQUIRE(eventually([&] { return client->add_server("n3", address(c.port(2))).is_ok(); }));
  CHECK(client->topology().server_ids == std::vector<std::string>{"n1", "n2", "n3"});
  REQUIRE(client->put("secret-key", "v").is_ok());
  CHECK(client->get("secret-key").value() == "v");

  o.password = "wrong";
  auto bad = Client::open(o);
  REQUIRE(!bad.is_ok());
  CHECK(bad.status().code() == Code::kRefused);
  CHECK_THAT(bad.status().message(), Catch::Contains("WRONGPASS invalid username-password pair"));

  o.password.clear();
  bad = Client::open(o);
  REQUIRE(!bad.is_ok());
  CHECK(bad.status().code() == Code::kRefused);
  CHECK_THAT(bad.status().message(), Catch::Contains("NOAUTH Authentication required"));
}

TEST_CASE("client: routing stays right after add_server and remove_server through the client") {
  Cluster c(3, false);
  auto client = open_client(options_for(c));
  std::mt19937 rng(77);
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 5000; ++i) kv.emplace_back("r:" + std::to_string(i), random_bytes(rng, 16));
  REQUIRE(client->put_many(kv).is_ok());
  std::map<std::string, std::string> expected(kv.begin(), kv.end());
  const uint64_t epoch0 = client->topology().epoch;

  // Add n4 through the client: when the call returns, the client already routes by the new ring.
  int n4 = c.start_node();
  Status st = client->add_server(c.id(n4), address(c.port(n4)));
  INFO(st.to_string());
  REQUIRE(st.is_ok());
  ClientTopology t = client->topology();
  CHECK(t.epoch > epoch0);
  CHECK(t.server_ids == std::vector<std::string>{"n1", "n2", "n3", "n4"});
  check_routing(c, *client, 300);
  check_readable(*client, expected);  // during or after the move
  REQUIRE(c.wait_idle());
  check_readable(*client, expected);
  // Writes while the new ring is in place land where the servers expect them.
  for (int i = 0; i < 500; ++i) expected["r2:" + std::to_string(i)] = std::to_string(i);
  REQUIRE(client
              ->put_many(std::vector<std::pair<std::string, std::string>>(expected.begin(),
                                                                          expected.end()))
              .is_ok());

  // Remove n2 through the client.
  const uint64_t epoch1 = client->topology().epoch;
  st = client->remove_server("n2");
  INFO(st.to_string());
  REQUIRE(st.is_ok());
  t = client->topology();
  CHECK(t.epoch > epoch1);
  CHECK(t.server_ids == std::vector<std::string>{"n1", "n3", "n4"});
  check_routing(c, *client, 300);
  check_readable(*client, expected);
  REQUIRE(c.wait_idle());
  check_readable(*client, expected);
  // Once the migration is over the periodic check brings the client to the final epoch.
  uint64_t final_epoch = node_epoch(c, 0);
  CHECK(eventually([&] { return client->topology().epoch == final_epoch; }));
  CHECK(!client->topology().migrating);
  check_routing(c, *client, 300);
}

TEST_CASE("client: a ring change made during another's move waits for it, past the timeout") {
  // n4's copy of its ~2,250 keys takes about 2 s at 1,000 keys/s; the client's timeout is 0.5 s.
  Cluster c(3, false, {"--migration-rate", "1000"});
  ClientOptions options = options_for(c);
  options.command_timeout_ms = 500;
  auto client = open_client(options);
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 3000; ++i) kv.emplace_back("w:" + std::to_string(i), std::to_string(i));
  REQUIRE(client->put_many(kv).is_ok());
  int n4 = c.start_node();
  int n5 = c.start_node();
  REQUIRE(client->add_server(c.id(n4), address(c.port(n4))).is_ok());
  const auto start = std::chrono::steady_clock::now();
  Status st = client->add_server(c.id(n5), address(c.port(n5)));
  const auto waited = std::chrono::steady_clock::now() - start;
  INFO(st.to_string());
  REQUIRE(st.is_ok());
  CHECK(waited > std::chrono::milliseconds(options.command_timeout_ms));
  CHECK(client->topology().server_ids == std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"});
  REQUIRE(c.wait_idle());
  std::map<std::string, std::string> expected(kv.begin(), kv.end());
  check_readable(*client, expected);
}

TEST_CASE("client: one Client shared by many threads") {
  Cluster c(3, false);
  ClientOptions o = options_for(c);
  o.pool_size = 2;  // fewer idle connections than threads: connections are opened and closed
  auto client = open_client(o);
  constexpr int kThreads = 8, kOps = 400;
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_failure;
  auto fail = [&](const std::string& what) {
    ++failures;
    std::lock_guard lock(mu);
    if (first_failure.empty()) first_failure = what;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<std::pair<std::string, std::string>> batch;
      for (int i = 0; i < kOps; ++i) {
        std::string key = "t" + std::to_string(t) + ":" + std::to_string(i);
        std::string value = random_bytes(rng, rng() % 64);
        Status st = client->put(key, value);
        if (!st) fail(st.to_string());
        auto v = client->get(key);
        if (!v || *v != value) fail("get " + key + ": " + v.status().to_string());
        batch.emplace_back("b" + key, value);
        if (batch.size() == 50) {
          Status bs = client->put_many(batch);
          if (!bs) fail(bs.to_string());
          std::vector<std::string> keys;
          for (const auto& [k, val] : batch) keys.push_back(k);
          auto got = client->get_many(keys);
          if (!got) {
            fail(got.status().to_string());
          } else {
            for (size_t j = 0; j < keys.size(); ++j)
              if ((*got)[j] != std::optional<std::string>(batch[j].second))
                fail("get_many " + keys[j]);
          }
          batch.clear();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  INFO("first failure: " << first_failure);
  CHECK(failures == 0);
  CHECK(command(c.client(0).get(), {"DBSIZE"})->integer == 2 * kThreads * kOps);
}
