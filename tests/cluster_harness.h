// Multi-process clusters for tests: k ringkv nodes on free loopback ports (and an etcd when the
// test asks for the etcd backend), joined with RING ADDSERVER, always stopped.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ringkv/ring.h"
#include "ringkv/token.h"
#include "server_harness.h"

namespace ringkv::testing {

// Polls cond() until it is true or the deadline passes; returns the last result.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds limit = std::chrono::milliseconds(30000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

inline std::string reply_text(const Reply& r) {
  if (!r) return "<no reply>";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR)
    return std::string(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  if (r->type == REDIS_REPLY_NIL) return "<nil>";
  return "<array>";
}

// "field:value" from a RING INFO / INFO text.
inline std::string info_field(const std::string& text, const std::string& field) {
  size_t p = text.find(field + ":");
  if (p == std::string::npos) return "";
  size_t e = text.find("\r\n", p);
  return text.substr(p + field.size() + 1, e - p - field.size() - 1);
}

// An etcd server on free loopback ports, with its data in a fresh temporary directory.
class EtcdProcess {
 public:
  EtcdProcess() {
    char tmpl[] = "/tmp/ringkv-etcd-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = free_port();
    int peer = free_port();
    std::string client = "http://127.0.0.1:" + std::to_string(port_);
    std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {"/usr/bin/etcd",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--name",
                                     "t",
                                     "--listen-client-urls",
                                     client,
                                     "--advertise-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer_url,
                                     "--initial-advertise-peer-urls",
                                     peer_url,
                                     "--initial-cluster",
                                     "t=" + peer_url,
                                     "--log-level",
                                     "error"};
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Ready when it accepts a TCP connection on the client port.
    bool up = eventually([&] {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      return ok;
    });
    if (!up) throw std::runtime_error("etcd did not start");
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::string cmd = "rm -rf '" + dir_ + "'";
    int rc = std::system(cmd.c_str());
    (void)rc;
  }
  int port() const { return port_; }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

class Cluster {
 public:
  // Starts `nodes` servers; node 0 hosts the configuration (or etcd does), and the others are
  // added to the ring one by one with RING ADDSERVER.
  Cluster(int nodes, bool use_etcd, std::vector<std::string> extra = {})
      : extra_(std::move(extra)) {
    if (use_etcd) etcd_ = std::make_unique<EtcdProcess>();
    for (int i = 0; i < nodes; ++i) start_node();
    // With the embedded service node 0 starts as a one-server ring; with etcd the ring starts
    // empty and every node joins through RING ADDSERVER.
    for (int i = etcd_ ? 0 : 1; i < nodes; ++i) add(i);
  }

  std::string discovery() const {
    if (etcd_)
      return "etcd://127.0.0.1:" + std::to_string(etcd_->port()) + "/t" +
             std::to_string(::getpid());
    return "ringkv://127.0.0.1:" + std::to_string(nodes_.at(0)->port());
  }

  // Starts one more node (not yet on the ring); returns its index.
  int start_node() {
    int i = static_cast<int>(nodes_.size());
    std::string id = "n" + std::to_string(i + 1);
    std::vector<std::string> flags = {"--node-id", id};
    if (i > 0 || etcd_) {
      flags.push_back("--discovery");
      flags.push_back(discovery());
    }
    // Data moves at 50,000 keys/s, twice the default pace, unless the test sets its own: moves
    // here are paced only to keep CI's time (bench/migration.sh measures the default).
    if (std::find(extra_.begin(), extra_.end(), "--migration-rate") == extra_.end()) {
      flags.push_back("--migration-rate");
      flags.push_back("50000");
    }
    // "{id}" in an extra flag becomes the node's id (for per-node log files).
    for (std::string f : extra_) {
      for (size_t p = f.find("{id}"); p != std::string::npos; p = f.find("{id}"))
        f.replace(p, 4, id);
      flags.push_back(f);
    }
    nodes_.push_back(std::make_unique<ServerProcess>(flags));
    ids_.push_back(id);
    return i;
  }

  // RING ADDSERVER node i through node 0, then waits until no migration is left.
  void add(int i, int via = 0) {
    auto c = client(via);
    Reply r =
        command(c.get(), {"RING", "ADDSERVER", ids_[i], "127.0.0.1:" + std::to_string(port(i))});
    if (!r || r->type != REDIS_REPLY_STATUS)
      throw std::runtime_error("ADDSERVER failed: " + reply_text(r));
    wait_idle();
  }

  // Waits until every running node reports migration_state:idle with the same epoch.
  bool wait_idle(std::chrono::milliseconds limit = std::chrono::milliseconds(60000)) {
    return eventually(
        [&] {
          std::string epoch;
          for (size_t i = 0; i < nodes_.size(); ++i) {
            if (!nodes_[i] || !nodes_[i]->alive()) continue;
            auto c = client(static_cast<int>(i));
            Reply r = command(c.get(), {"RING", "INFO"});
            std::string t = reply_text(r);
            if (info_field(t, "migration_state") != "idle") return false;
            std::string e = info_field(t, "ring_epoch");
            if (!epoch.empty() && e != epoch) return false;
            epoch = e;
          }
          return true;
        },
        limit);
  }

  std::string ring_info(int i) { return reply_text(command(client(i).get(), {"RING", "INFO"})); }

  Context client(int i) const { return connect(nodes_.at(static_cast<size_t>(i))->port()); }
  int port(int i) const { return nodes_.at(static_cast<size_t>(i))->port(); }
  const std::string& id(int i) const { return ids_.at(static_cast<size_t>(i)); }
  int size() const { return static_cast<int>(nodes_.size()); }
  ServerProcess& node(int i) { return *nodes_.at(static_cast<size_t>(i)); }
  bool running(int i) const { return nodes_.at(static_cast<size_t>(i)) != nullptr; }
  void stop(int i) { nodes_.at(static_cast<size_t>(i)).reset(); }
  // Starts node i again (after kill_hard or a crash) with the same id, flags and port.
  void restart(int i) { nodes_.at(static_cast<size_t>(i))->restart_same_port(); }

 private:
  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::string> extra_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::vector<std::string> ids_;
};

// Whole-data-set comparison across replicas: for every token range of the ring built from
// `members` (node indices; weight 1, default vnodes) with n replicas, RINGKV.DIGEST on every
// running node. Replicas of a range must agree on (count, digest); other nodes must hold nothing
// of it. Asserts nothing, so a test can poll it until replication settles.
struct DigestCheck {
  uint64_t keys = 0;  // entries, counted once per range
  size_t ranges = 0;
  size_t mismatches = 0;  // (range, replica) pairs that differ from the range's first replica
  size_t strays = 0;      // (range, node) pairs where a non-replica holds entries
  bool failed = false;    // a node did not answer RINGKV.DIGEST properly
  std::string first_problem;
  bool ok() const { return !failed && mismatches == 0 && strays == 0; }
};

inline DigestCheck digest_check(Cluster& c, const std::vector<int>& members, size_t n) {
  DigestCheck out;
  std::vector<ring::ServerSpec> specs;
  for (int m : members) specs.push_back({c.id(m), 1});
  auto ring = ring::Ring::build(specs);
  auto ranges =
      ring.is_ok() ? (*ring)->ranges(n) : Result<std::vector<ring::RangeReplicas>>(ring.status());
  if (!ranges.is_ok()) {
    out.failed = true;
    out.first_problem = "can't build the ring";
    return out;
  }
  out.ranges = ranges->size();
  std::map<int, std::vector<std::pair<long long, std::string>>> digests;  // node -> per range
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i) || !c.node(i).alive()) continue;
    auto cl = c.client(i);
    for (const auto& rr : *ranges) {
      std::string f = std::to_string(rr.range.first), l = std::to_string(rr.range.last);
      redisAppendCommand(cl.get(), "RINGKV.DIGEST %s %s", f.c_str(), l.c_str());
    }
    for (size_t k = 0; k < ranges->size(); ++k) {
      void* r = nullptr;
      if (redisGetReply(cl.get(), &r) != REDIS_OK || r == nullptr) {
        out.failed = true;
        out.first_problem = "no RINGKV.DIGEST reply from " + c.id(i);
        return out;
      }
      Reply rep(static_cast<redisReply*>(r));
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        out.failed = true;
        out.first_problem = "RINGKV.DIGEST on " + c.id(i) + ": " + reply_text(rep);
        return out;
      }
      digests[i].emplace_back(rep->element[0]->integer,
                              std::string(rep->element[1]->str, rep->element[1]->len));
    }
  }
  for (size_t k = 0; k < ranges->size(); ++k) {
    const auto& rr = (*ranges)[k];
    std::vector<int> holders;
    for (uint32_t idx : rr.replicas) holders.push_back(members[idx]);
    std::optional<std::pair<long long, std::string>> ref;
    int ref_node = -1;
    for (auto& [node, d] : digests) {
      bool holder = std::find(holders.begin(), holders.end(), node) != holders.end();
      if (holder && !ref) {
        ref = d[k];
        ref_node = node;
      } else if (holder && d[k] != *ref) {
        if (out.mismatches++ == 0)
          out.first_problem = "range [" + std::to_string(rr.range.first) + ", " +
                              std::to_string(rr.range.last) + "]: " + c.id(ref_node) + " has " +
                              std::to_string(ref->first) + " keys, " + c.id(node) + " has " +
                              std::to_string(d[k].first);
      } else if (!holder && d[k].first != 0) {
        if (out.strays++ == 0 && out.first_problem.empty())
          out.first_problem = c.id(node) + " holds " + std::to_string(d[k].first) +
                              " keys of range [" + std::to_string(rr.range.first) + ", " +
                              std::to_string(rr.range.last) + "]";
      }
    }
    if (ref) out.keys += static_cast<uint64_t>(ref->first);
  }
  return out;
}

// Writes the commands at once (one pipeline), without reading their replies.
inline void send_pipeline(redisContext* c, const std::vector<std::vector<std::string>>& commands) {
  for (const auto& cmd : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  int done = 0;
  while (!done)
    if (redisBufferWrite(c, &done) != REDIS_OK) return;
}

// The next n replies (fewer if the connection fails).
inline std::vector<Reply> read_replies(redisContext* c, size_t n) {
  std::vector<Reply> out;
  for (size_t i = 0; i < n; ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK) break;
    out.emplace_back(static_cast<redisReply*>(r));
  }
  return out;
}

// Sends the commands in one pipeline and returns their replies, in order.
inline std::vector<Reply> pipeline(redisContext* c,
                                   const std::vector<std::vector<std::string>>& commands) {
  send_pipeline(c, commands);
  return read_replies(c, commands.size());
}

// Writes many keys through a pipeline; returns false on any error reply.
inline bool pipeline_set(redisContext* c,
                         const std::vector<std::pair<std::string, std::string>>& kv) {
  for (const auto& [k, v] : kv) {
    const char* argv[] = {"SET", k.data(), v.data()};
    size_t lens[] = {3, k.size(), v.size()};
    redisAppendCommandArgv(c, 3, argv, lens);
  }
  bool ok = true;
  for (size_t i = 0; i < kv.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK) return false;
    auto* rep = static_cast<redisReply*>(r);
    if (rep->type != REDIS_REPLY_STATUS) ok = false;
    freeReplyObject(rep);
  }
  return ok;
}

// Reads keys through a pipeline; returns the values ("" + missing flag as nullopt).
inline std::vector<std::optional<std::string>> pipeline_get(redisContext* c,
                                                            const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    const char* argv[] = {"GET", k.data()};
    size_t lens[] = {3, k.size()};
    redisAppendCommandArgv(c, 2, argv, lens);
  }
  std::vector<std::optional<std::string>> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK) {
      out.emplace_back(std::nullopt);
      continue;
    }
    auto* rep = static_cast<redisReply*>(r);
    if (rep->type == REDIS_REPLY_STRING)
      out.emplace_back(std::string(rep->str, rep->len));
    else if (rep->type == REDIS_REPLY_ERROR)
      out.emplace_back(std::string("<error>") + std::string(rep->str, rep->len));
    else
      out.emplace_back(std::nullopt);
    freeReplyObject(rep);
  }
  return out;
}

// ---------------------------------------------------------------- shared by the cluster tests

inline const char* backend_name(bool etcd) { return etcd ? "etcd" : "embedded"; }

using KeyValues = std::vector<std::pair<std::string, std::string>>;

inline KeyValues make_keys(size_t n, const std::string& prefix) {
  KeyValues kv;
  kv.reserve(n);
  for (size_t i = 0; i < n; ++i)
    kv.emplace_back(prefix + std::to_string(i), "v" + std::to_string(i * 7919));
  return kv;
}

// Loads the keys through the given nodes in turn, in pipelined batches.
inline void load(Cluster& c, const KeyValues& kv, const std::vector<int>& via) {
  std::vector<Context> clients;
  for (int i : via) clients.push_back(c.client(i));
  const size_t batch = 1000;
  for (size_t off = 0, b = 0; off < kv.size(); off += batch, ++b) {
    KeyValues part(kv.begin() + static_cast<long>(off),
                   kv.begin() + static_cast<long>(std::min(kv.size(), off + batch)));
    REQUIRE(pipeline_set(clients[b % clients.size()].get(), part));
  }
}

// A field of node i's RING INFO.
inline std::string info(Cluster& c, int i, const std::string& field) {
  return info_field(c.ring_info(i), field);
}

inline uint64_t info_u64(Cluster& c, int i, const std::string& field) {
  return std::stoull("0" + info(c, i, field));
}

inline std::string text(redisContext* c, const std::vector<std::string>& args) {
  return reply_text(command(c, args));
}

// The index of the node with this id.
inline int index_of(Cluster& c, const std::string& id) {
  for (int i = 0; i < c.size(); ++i)
    if (c.id(i) == id) return i;
  FAIL("no node " << id);
  return -1;
}

// The ids of a key's preference list, from RING OWNERS through node 0.
inline std::vector<std::string> owners_of(Cluster& c, const std::string& key) {
  Reply r = command(c.client(0).get(), {"RING", "OWNERS", key});
  std::vector<std::string> out;
  for (size_t i = 0; r && i < r->elements; ++i)
    out.emplace_back(r->element[i]->str, r->element[i]->len);
  return out;
}

// DBSIZE through node i.
inline uint64_t dbsize(Cluster& c, int i) {
  Reply r = command(c.client(i).get(), {"DBSIZE"});
  REQUIRE(r);
  REQUIRE(r->type == REDIS_REPLY_INTEGER);
  return static_cast<uint64_t>(r->integer);
}

// Waits until every node in `nodes` counts `up` live servers in its view (RING INFO).
inline bool wait_servers_up(Cluster& c, const std::vector<int>& nodes, int up,
                            std::chrono::milliseconds limit) {
  return eventually(
      [&] {
        for (int i : nodes)
          if (info(c, i, "ring_servers_up") != std::to_string(up)) return false;
        return true;
      },
      limit);
}

// A ring of these servers (weight 1, default virtual nodes), as the cluster builds it.
inline std::shared_ptr<const ring::Ring> ring_of(const std::vector<std::string>& ids) {
  std::vector<ring::ServerSpec> specs;
  for (const auto& id : ids) specs.push_back({id, 1});
  auto r = ring::Ring::build(specs);
  REQUIRE(r.is_ok());
  return *r;
}

// How many of `keys` lie in the ranges server `id` gains from ring `before` to ring `after`.
inline uint64_t predicted_gain(const std::vector<std::string>& keys,
                               const std::vector<std::string>& before,
                               const std::vector<std::string>& after, const std::string& id,
                               size_t n) {
  auto plan = ring::diff(*ring_of(before), *ring_of(after), n);
  REQUIRE(plan.is_ok());
  std::vector<ring::TokenRange> ranges;
  for (const auto& t : plan->gains_of(id)) ranges.push_back(t.range);
  std::sort(ranges.begin(), ranges.end(), [](auto& a, auto& b) { return a.first < b.first; });
  uint64_t count = 0;
  for (const auto& k : keys) {
    Token t = token_of(k);
    auto it = std::upper_bound(ranges.begin(), ranges.end(), t,
                               [](Token x, const ring::TokenRange& r) { return x < r.first; });
    if (it != ranges.begin() && std::prev(it)->contains(t)) ++count;
  }
  return count;
}

inline uint64_t predicted_gain(const KeyValues& kv, const std::vector<std::string>& before,
                               const std::vector<std::string>& after, const std::string& id,
                               size_t n) {
  std::vector<std::string> keys;
  keys.reserve(kv.size());
  for (const auto& [k, v] : kv) keys.push_back(k);
  return predicted_gain(keys, before, after, id, n);
}

// RING PLAN's reply: one line per (source, destination).
struct PlanLine {
  std::string from, to;
  long long ranges = 0, keys = 0, bytes = 0;
};

inline std::vector<PlanLine> parse_plan(const Reply& r) {
  std::vector<PlanLine> out;
  REQUIRE(r);
  INFO(reply_text(r));
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* m = r->element[i];
    REQUIRE(m->type == REDIS_REPLY_ARRAY);
    REQUIRE(m->elements == 10);
    PlanLine l;
    for (size_t f = 0; f + 1 < m->elements; f += 2) {
      std::string name(m->element[f]->str, m->element[f]->len);
      const redisReply* v = m->element[f + 1];
      if (name == "from")
        l.from.assign(v->str, v->len);
      else if (name == "to")
        l.to.assign(v->str, v->len);
      else if (name == "ranges")
        l.ranges = v->integer;
      else if (name == "keys")
        l.keys = v->integer;
      else if (name == "bytes")
        l.bytes = v->integer;
      else
        FAIL("unexpected plan field " << name);
    }
    out.push_back(l);
  }
  return out;
}

inline std::map<std::string, std::pair<long long, long long>> plan_by_destination(
    const std::vector<PlanLine>& plan) {
  std::map<std::string, std::pair<long long, long long>> out;
  for (const auto& l : plan) {
    out[l.to].first += l.keys;
    out[l.to].second += l.bytes;
  }
  return out;
}

}  // namespace ringkv::testing
