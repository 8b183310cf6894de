// Routing requests through the ring: run here, forward to the owner, split across owners,
// replicate what ran here, and transactions (commands for the whole cluster: cluster_keyspace.cc).
// The decisions use the loop's View (cluster/cluster.h); the messages are the internal RINGKV.*
// commands (cmd_ring.cc).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "cluster/peer_link.h"
#include "common/log.h"
#include "resp/reply_scanner.h"
#include "server/server.h"
#include "server/util.h"

namespace ringkv::server {

using cluster::View;

namespace {

// A key of a range still arriving here that no previous holder could be asked about (all down,
// or none answered): its value is unknown here, so the command is refused rather than run on
// what this node has (a nil for a key that exists).
constexpr std::string_view kNoReadThroughError =
    "TRYAGAIN ringkv: the key's range is still moving to this node and none of its previous "
    "holders answered";

// RINGKV_TRACE_KEYS=1 logs every routing decision (for debugging ring changes).
bool trace_enabled() {
  static const bool on = std::getenv("RINGKV_TRACE_KEYS") != nullptr;
  return on;
}

std::string encode(const std::vector<std::string_view>& args) {
  std::string s;
  cluster::PeerLink::encode(args, &s);
  return s;
}

// A write whose reply and result do not depend on what the key held before (SET without NX, XX,
// GET or KEEPTTL; SETEX; PSETEX; MSET): during a move it needs no read-through of a key that
// has not arrived yet. Its fresh version outranks the copy still on its way.
template <class Args>
bool blind_write(const CommandSpec* spec, const Args& args) {
  if (spec->name == "setex" || spec->name == "psetex" || spec->name == "mset") return true;
  if (spec->name != "set") return false;
  for (size_t i = 3; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (equals_nocase(a, "nx") || equals_nocase(a, "xx") || equals_nocase(a, "get") ||
        equals_nocase(a, "keepttl"))
      return false;
  }
  return true;
}

// The keys a RINGKV.EXEC request touches: its watched keys and its commands' keys (none when it
// is malformed: it fails when run).
template <class Args>
std::vector<std::string_view> exec_keys(const Args& args) {
  std::vector<std::string_view> keys;
  ExecRequest req;
  if (!parse_exec_request(args, &req)) return keys;
  for (const auto& [key, version] : req.watched) keys.push_back(key);
  const CommandTable& table = CommandTable::instance();
  for (const auto& cmd : req.cmds) {
    const CommandSpec* spec = table.find(cmd[0]);
    if (spec && !spec->subcommands.empty() && cmd.size() > 1) spec = table.find_sub(*spec, cmd[1]);
    if (spec == nullptr || !spec->arity_ok(cmd.size())) continue;
    std::vector<int> pos;
    spec->key_positions(cmd.size(), &pos);
    for (int p : pos) keys.push_back(cmd[static_cast<size_t>(p)]);
  }
  return keys;
}

std::string server_list(const View& v, const std::set<uint32_t>& owners) {
  std::string out;
  for (uint32_t o : owners) {
    if (!out.empty()) out += ", ";
    out += v.ring->servers()[o].id;
  }
  return out;
}

// Is this node the only server a write of these keys has to reach? So with N = 1 when it is
// their holder and no migration is in progress (the old holders would need the write too).
// Such a write is not captured for replication.
bool sole_holder(const View& v, const std::vector<Token>& tokens) {
  if (tokens.empty() || v.n > 1 || v.previous) return false;
  for (Token t : tokens)
    if (v.primary(t) != v.self) return false;
  return true;
}

}  // namespace

// ---------------------------------------------------------------- running here

std::vector<cluster::ChangeRecord> Server::execute_captured(net::Connection& conn, ClientSession& s,
                                                            std::vector<std::string_view>& args,
                                                            const CommandSpec* spec,
                                                            const CommandSpec* parent, Millis now,
                                                            std::string* out) {
  std::string* saved = conn.out().buffer();
  conn.out().set_buffer(out);
  std::vector<std::pair<std::string, Token>> keys;
  {
    cluster::ChangeCapture capture;
    execute_locked(conn, s, args, spec, parent, now);
    keys = capture.keys();
  }
  conn.out().set_buffer(saved);
  std::vector<cluster::ChangeRecord> changes;
  for (auto& [k, t] : keys) {
    auto rec = cluster::snapshot_entry(*store_, k, t);
    if (rec) changes.push_back(std::move(*rec));
  }
  return changes;
}

void Server::deliver(net::Connection& conn, std::string reply,
                     std::vector<cluster::ChangeRecord> changes) {
  size_t li = conn.loop().index();
  if (changes.empty()) {
    conn.out().raw(reply);
    return;
  }
  const View& v = cluster_->view(li);
  if (v.w <= 1) {
    conn.out().raw(reply);
    cluster_->replicate(li, std::move(changes), [](int, int, std::string) {});
    return;
  }
  auto d = std::make_shared<net::Deferred>(conn.defer());
  cluster_->replicate(li, std::move(changes),
                      [d, reply = std::move(reply)](int, int, std::string err) {
                        d->complete(err.empty() ? reply : error_reply(err));
                      });
}

void Server::run_local_async(net::Connection& conn, ClientSession& s,
                             std::vector<std::string> owned, Millis now,
                             std::function<void(std::string)> done, bool read_through) {
  const CommandTable& table = CommandTable::instance();
  const CommandSpec* spec = table.find(owned[0]);
  const CommandSpec* parent = nullptr;
  if (spec && !spec->subcommands.empty() && owned.size() > 1) {
    parent = spec;
    spec = table.find_sub(*parent, owned[1]);
  }
  if (spec == nullptr || !spec->arity_ok(owned.size())) {
    done(error_reply("ERR internal: bad request part"));
    return;
  }
  size_t li = conn.loop().index();
  if (read_through) {
    auto bring = copies_to_bring(cluster_->view(li), spec, owned, nullptr, now);
    if (!bring.empty()) {
      auto keep = conn.shared_from_this();
      auto args = std::make_shared<std::vector<std::string>>(std::move(owned));
      auto cb = std::make_shared<std::function<void(std::string)>>(std::move(done));
      bring_then(li, std::move(bring), [this, keep, args, cb](bool complete) {
        if (keep->closing()) {
          (*cb)("");
          return;
        }
        if (!complete) {
          (*cb)(refuse_unread());
          return;
        }
        // Brought (or no copy had it): run it now, without bringing again.
        run_local_async(*keep, *static_cast<ClientSession*>(keep->session()), std::move(*args),
                        clock_.now_ms(), std::move(*cb), false);
      });
      return;
    }
  }
  std::vector<std::string_view> args(owned.begin(), owned.end());
  std::string reply;
  auto changes = execute_captured(conn, s, args, spec, parent, now, &reply);
  const View& v = cluster_->view(li);
  if (changes.empty() || v.w <= 1) {
    if (!changes.empty()) cluster_->replicate(li, std::move(changes), [](int, int, std::string) {});
    done(std::move(reply));
    return;
  }
  cluster_->replicate(
      li, std::move(changes),
      [done = std::move(done), reply = std::move(reply)](int, int, std::string err) {
        done(err.empty() ? reply : error_reply(err));
      });
}

void Server::run_here(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                      const CommandSpec* spec, const CommandSpec* parent, Millis now,
                      const std::vector<Token>& tokens) {
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  auto bring = copies_to_bring(v, spec, args, &tokens, now);
  if (bring.empty()) {
    if (!spec->is(kWrite) || sole_holder(v, tokens)) {
      execute_locked(conn, s, args, spec, parent, now);
      return;
    }
    std::string reply;
    auto changes = execute_captured(conn, s, args, spec, parent, now, &reply);
    deliver(conn, std::move(reply), std::move(changes));
    return;
  }
  auto d = std::make_shared<net::Deferred>(conn.defer());
  auto owned = std::make_shared<std::vector<std::string>>(args.begin(), args.end());
  auto keep = conn.shared_from_this();
  bring_then(li, std::move(bring), [this, d, owned, keep](bool complete) {
    if (keep->closing()) {
      d->complete("");
      return;
    }
    if (!complete) {
      d->complete(refuse_unread());
      return;
    }
    run_local_async(
        *keep, *static_cast<ClientSession*>(keep->session()), *owned, clock_.now_ms(),
        [d](std::string reply) { d->complete(std::move(reply)); }, false);
  });
}

template <class Args>
std::vector<Server::Bring> Server::copies_to_bring(const View& v, const CommandSpec* spec,
                                                   const Args& args,
                                                   const std::vector<Token>* tokens, Millis now) {
  std::vector<Bring> out;
  const bool read = !spec->is(kWrite);
  // Out of touch (a pause just ended): as if behind, until the next heartbeat round.
  const bool stale = v.distributed && cluster_->out_of_touch(now);
  if (v.pending.empty() && !(read && v.r > 1) && !v.unrepaired && !v.behind && !stale) return out;
  if (blind_write(spec, args)) return out;
  std::vector<std::string_view> keys;
  if (spec->name == "ringkv.exec") {
    keys = exec_keys(args);  // a transaction: its commands' keys and its watched keys
  } else {
    std::vector<int> pos;
    spec->key_positions(args.size(), &pos);
    for (int p : pos) keys.push_back(args[static_cast<size_t>(p)]);
  }
  if (tokens && tokens->size() != keys.size()) tokens = nullptr;
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string_view key = keys[i];
    Token t = tokens ? (*tokens)[i] : token_of(key);
    const cluster::PendingRange* pr = nullptr;
    if (v.in_pending(t, &pr)) {
      if (!store_->access(key, t, now, [](store::Access& a) { return a.version() != 0; })) {
        out.push_back(Bring{std::string(key), *pr, {}});
        continue;
      }
    }
    uint32_t list[ring::kMaxReplicasLimit];
    size_t k = v.replicas_of(t, list);
    // Before the repair round: standing in for a first holder that is down (or not ready), or
    // this node was marked down itself. Then every other live holder's copy is brought.
    const bool suspect = v.behind || stale || (v.unrepaired && k > 0 && list[0] != v.self);
    if (!suspect && !(read && v.r > 1)) continue;
    Bring b{std::string(key), std::nullopt, {}};
    for (size_t j = 0; j < k; ++j) {
      if (!suspect && b.peers.size() + 1 >= v.r) break;
      if (list[j] == v.self || !v.live[list[j]]) continue;
      b.peers.push_back(v.ring->servers()[list[j]].id);
    }
    if (!b.peers.empty()) out.push_back(std::move(b));
  }
  return out;
}

std::string Server::refuse_unread() {
  count_error(kNoReadThroughError);
  return error_reply(kNoReadThroughError);
}

void Server::bring_then(size_t loop_index, std::vector<Bring> bring,
                        std::function<void(bool)> then) {
  struct Wait {
    size_t left;
    bool complete = true;
    std::function<void(bool)> then;
  };
  auto wait = std::make_shared<Wait>(Wait{bring.size(), true, std::move(then)});
  auto one_done = [wait](bool ok) {
    wait->complete &= ok;
    if (--wait->left == 0) wait->then(wait->complete);
  };
  for (auto& b : bring) {
    if (b.from) {
      cluster_->fetch_entry(loop_index, b.key, *b.from, one_done);
    } else {
      // Best effort: with no other live copy answering, this node's is the newest there is.
      cluster_->read_repair(loop_index, b.key, b.peers, [one_done] { one_done(true); });
    }
  }
}

// ---------------------------------------------------------------- forwarding

void Server::forward(net::Connection& conn, const std::string& peer,
                     std::vector<std::string_view>& args, bool retry_on_failure, Token token,
                     bool cache, uint32_t owner) {
  size_t li = conn.loop().index();
  auto d = std::make_shared<net::Deferred>(conn.defer());
  // A read may be sent again to another copy: keep it encoded (a write is not retried).
  std::string req = retry_on_failure ? encode(args) : std::string();
  int proto = conn.protocol();
  auto keep = conn.shared_from_this();
  // A GET for the hot-key cache keeps its reply for the PTTL sent after it (below).
  std::shared_ptr<std::string> got = cache ? std::make_shared<std::string>() : nullptr;
  cluster_->link(li, peer, proto)
      .send(args, [this, d, li, proto, peer, req = std::move(req), token, keep, got](
                      bool ok, std::string_view reply) {
        if (got && ok) got->assign(reply);
        if (ok) {
          d->complete_from(reply);
          return;
        }
        if (!req.empty() && !keep->closing()) {
          LOG_WARNING("Forwarding a read to %s failed (%.*s); trying another copy", peer.c_str(),
                      static_cast<int>(reply.size()), reply.data());
          // A read may go to the next live copy instead.
          const View& v = cluster_->view(li);
          uint32_t list[ring::kMaxReplicasLimit];
          size_t k = v.replicas_of(token, list);
          for (size_t i = 0; i < k; ++i) {
            const std::string& id = v.ring->servers()[list[i]].id;
            if (id == peer || !v.live[list[i]]) continue;
            if (list[i] == v.self) {
              std::vector<std::string> owned;
              // Decode our own request back into arguments (it is a multibulk we encoded).
              resp::RequestParser parser;
              size_t used;
              if (parser.parse(req.data(), req.size(), true, &used) ==
                  resp::ParseStatus::kCommand) {
                for (auto a : parser.args()) owned.emplace_back(a);
                run_local_async(*keep, *static_cast<ClientSession*>(keep->session()), owned,
                                clock_.now_ms(), [d](std::string r) { d->complete(std::move(r)); });
                return;
              }
              break;
            }
            cluster_->link(li, id, proto).send_encoded(req, [d](bool ok2, std::string_view r2) {
              if (ok2)
                d->complete_from(r2);
              else
                d->complete(error_reply("TRYAGAIN ringkv: no copy of the key answered: " +
                                        std::string(r2)));
            });
            return;
          }
        }
        LOG_WARNING("Forwarding to %s failed: %.*s", peer.c_str(), static_cast<int>(reply.size()),
                    reply.data());
        d->complete(error_reply("TRYAGAIN ringkv: the owner of the key did not answer: " +
                                std::string(reply)));
      });
  if (!cache) return;
  // The key's time to live, right after the value on the same link: the value is kept no
  // longer than the key lives, nor than hot-key-cache-ms.
  std::string key(args[1]);
  const uint64_t epoch = cluster_->view(li).config.epoch;
  hot_caches_[li]->fetching(key);
  std::vector<std::string_view> pttl = {"PTTL", key};
  cluster_->link(li, peer, proto)
      .send(pttl, [this, li, got, key, epoch, owner](bool ok, std::string_view reply) {
        Millis keep_ms = hot_cache_ms_.load(std::memory_order_relaxed);
        int64_t left = 0;
        if (!ok || reply.size() < 4 || reply[0] != ':' ||
            !parse_int64(reply.substr(1, reply.size() - 3), &left) || (left < 0 && left != -1))
          keep_ms = 0;  // no reply, or no key: not kept
        else if (left >= 0)
          keep_ms = std::min<Millis>(keep_ms, left);
        hot_caches_[li]->fetched(
            key, *got, epoch, owner, clock_.now_ms(), keep_ms,
            static_cast<size_t>(hot_cache_size_.load(std::memory_order_relaxed)) /
                hot_caches_.size());
      });
}

// ---------------------------------------------------------------- the router

bool Server::route_command(net::Connection& conn, ClientSession& s,
                           std::vector<std::string_view>& args, const CommandSpec* spec,
                           const CommandSpec* parent, Millis now) {
  const size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  // A request a peer routed with a later epoch than this node's goes on below even when this
  // node serves a ring of its own (not distributed): the embedded configuration's host,
  // restarted without its state, is at epoch 1 with an empty store until the others restore
  // their ring into it, and its answer could be nil for a key that exists.
  if (!v.distributed && !(s.internal && s.peer_epoch > v.config.epoch)) return false;
  if (v.ring->server_count() == 0 && !spec->is(kInternal) && !spec->is(kLocal) &&
      (spec->first_key > 0 || spec->is(kKeyspace))) {
    conn.out().error(
        "CLUSTERDOWN The ring has no servers yet: add one with RING ADDSERVER <id> <host:port>");
    count_error("CLUSTERDOWN");
    return true;
  }
  if (spec->is(kInternal)) {
    if (spec->name == "ringkv.exec") {
      run_here(conn, s, args, spec, parent, now, {});  // captures and replicates its changes
      return true;
    }
    if (spec->name != "ringkv.final") return false;
    // RINGKV.FINAL <command...>: a request re-forwarded once; it runs here whatever happens.
    std::vector<std::string_view> inner(args.begin() + 1, args.end());
    const CommandTable& table = CommandTable::instance();
    const CommandSpec* ispec = table.find(inner[0]);
    const CommandSpec* iparent = nullptr;
    if (ispec && !ispec->subcommands.empty() && inner.size() > 1) {
      iparent = ispec;
      ispec = table.find_sub(*iparent, inner[1]);
    }
    if (ispec == nullptr || !ispec->arity_ok(inner.size())) {
      conn.out().error("ERR RINGKV.FINAL: unknown command or wrong number of arguments");
      return true;
    }
    std::vector<int> pos;
    ispec->key_positions(inner.size(), &pos);
    std::vector<Token> tokens;
    for (int p : pos) tokens.push_back(token_of(inner[static_cast<size_t>(p)]));
    run_here(conn, s, inner, ispec, iparent, now, tokens);
    return true;
  }
  if (s.internal) {
    // A peer forwarded it, routed with s.peer_epoch. Behind that epoch, this node first catches
    // up (briefly); ahead of it, the peer was stale and this node routes it again; at the same
    // epoch it runs here. Epochs never decrease along the way, so requests cannot loop.
    if (spec->first_key <= 0 || spec->is(kLocal) || spec->is(kKeyspace)) return false;
    if (s.peer_epoch > v.config.epoch) {
      auto owned = std::make_shared<std::vector<std::string>>(args.begin(), args.end());
      auto d = std::make_shared<net::Deferred>(conn.defer());
      auto keep = conn.shared_from_this();
      const uint64_t want = s.peer_epoch;
      cluster_->when_epoch(li, want, 1000, [this, owned, d, keep, li, want]() {
        if (keep->closing()) {
          d->complete("");
          return;
        }
        // Route again with the view this node has now; every path here replies through d.
        const View& nv = cluster_->view(li);
        if (!nv.distributed && nv.config.epoch < want) {
          // Still serving a ring of its own (see above): refused rather than answered from it.
          d->complete(error_reply(
              "TRYAGAIN ringkv: this node is at ring epoch " + std::to_string(nv.config.epoch) +
              ", behind the epoch the request was routed with (" + std::to_string(want) + ")"));
          return;
        }
        const CommandTable& table = CommandTable::instance();
        const CommandSpec* sp = table.find((*owned)[0]);
        if (sp && !sp->subcommands.empty() && owned->size() > 1)
          sp = table.find_sub(*sp, (*owned)[1]);
        std::vector<int> ps;
        if (sp) sp->key_positions(owned->size(), &ps);
        std::set<uint32_t> os;
        for (int p : ps) os.insert(nv.primary(token_of((*owned)[static_cast<size_t>(p)])));
        if (os.size() == 1 && *os.begin() != nv.self && *os.begin() != ring::kNoServer) {
          std::vector<std::string_view> a(owned->begin(), owned->end());
          cluster_->link(li, nv.ring->servers()[*os.begin()].id, keep->protocol())
              .send(a, [d](bool ok, std::string_view r) {
                d->complete(
                    ok ? std::string(r)
                       : error_reply("TRYAGAIN ringkv: the owner of the key did not answer: " +
                                     std::string(r)));
              });
          return;
        }
        run_local_async(*keep, *static_cast<ClientSession*>(keep->session()), *owned,
                        clock_.now_ms(), [d](std::string r) { d->complete(std::move(r)); });
      });
      return true;
    }
    std::vector<int> pos;
    spec->key_positions(args.size(), &pos);
    std::vector<Token> tokens;
    tokens.reserve(pos.size());
    // The keys' primary when they share one, else kNoServer.
    uint32_t owner = ring::kNoServer;
    for (int p : pos) {
      tokens.push_back(token_of(args[static_cast<size_t>(p)]));
      uint32_t o = v.primary(tokens.back());
      owner = tokens.size() == 1 || o == owner ? o : ring::kNoServer;
    }
    if (trace_enabled() && !pos.empty()) {
      LOG_WARNING("trace internal %.*s %.*s epoch=%llu peer_epoch=%llu owner=%s self=%s pending=%d",
                  static_cast<int>(args[0].size()), args[0].data(),
                  static_cast<int>(args[pos[0]].size()), args[pos[0]].data(),
                  static_cast<unsigned long long>(v.config.epoch),
                  static_cast<unsigned long long>(s.peer_epoch),
                  owner == ring::kNoServer ? "-" : v.ring->servers()[owner].id.c_str(),
                  v.self_id.c_str(), v.in_pending(tokens.front()) ? 1 : 0);
    }
    if (s.peer_epoch < v.config.epoch && owner != v.self && owner != ring::kNoServer) {
      forward(conn, v.ring->servers()[owner].id, args, false, tokens.front());
      return true;
    }
    run_here(conn, s, args, spec, parent, now, tokens);
    return true;
  }
  const bool caching = hot_cache_ms_.load(std::memory_order_relaxed) > 0;
  if (caching) {
    hot_caches_[li]->settings(hot_cache_generation_.load(std::memory_order_relaxed));
    hot_cache_writes(li, args, spec, parent);
  }
  if (spec->is(kKeyspace)) {
    keyspace_command(conn, s, args, spec, now);
    return true;
  }
  if (parent == nullptr && spec->name == "exec") return cluster_exec(conn, s, now);
  if (parent == nullptr && spec->name == "watch") {
    cluster_watch(conn, s, args, now);
    return true;
  }
  if (spec->first_key <= 0 || spec->is(kLocal)) return false;
  if (spec->key_step > 1 && spec->last_key < 0 &&
      (args.size() - static_cast<size_t>(spec->first_key)) % static_cast<size_t>(spec->key_step) !=
          0) {
    // MSET a 1 b: Redis's arity error, wherever the keys live.
    conn.out().error("ERR wrong number of arguments for '" + spec->full_name(parent) + "' command");
    count_error("ERR");
    return true;
  }
  std::vector<int> pos;
  spec->key_positions(args.size(), &pos);
  if (pos.empty()) return false;
  std::vector<Token> tokens;
  std::vector<uint32_t> owners;
  tokens.reserve(pos.size());
  owners.reserve(pos.size());
  bool same = true;
  for (int p : pos) {
    Token t = token_of(args[static_cast<size_t>(p)]);
    uint32_t o = v.primary(t);
    tokens.push_back(t);
    if (!owners.empty() && o != owners.front()) same = false;
    owners.push_back(o);
  }
  if (trace_enabled()) {
    LOG_WARNING(
        "trace route %.*s %.*s epoch=%llu owner=%s self=%s internal=%d",
        static_cast<int>(args[0].size()), args[0].data(), static_cast<int>(args[pos[0]].size()),
        args[pos[0]].data(), static_cast<unsigned long long>(v.config.epoch),
        owners.front() == ring::kNoServer ? "-" : v.ring->servers()[owners.front()].id.c_str(),
        v.self_id.c_str(), s.internal ? 1 : 0);
  }
  if (same) {
    uint32_t owner = owners.front();
    if (owner == v.self) {
      run_here(conn, s, args, spec, parent, now, tokens);
      return true;
    }
    const bool cache = caching && parent == nullptr && s.db == 0 && spec->name == "get";
    // A hit answers at once: only when no earlier request of the client is still awaited, so
    // that the GET does not see an older state than a command before it in its pipeline.
    if (cache && !conn.awaiting_replies()) {
      std::string_view hit = hot_caches_[li]->find(args[1], v.config.epoch, owner, now);
      if (!hit.empty()) {
        conn.out().raw(hit);
        stats_.keyspace_hits.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
    }
    forward(conn, v.ring->servers()[owner].id, args, !spec->is(kWrite), tokens.front(), cache,
            owner);
    return true;
  }
  if (!spec->is(kSplitArray) && !spec->is(kSplitSum) && !spec->is(kSplitOk)) {
    // Bad arguments get the command's own error first, as in Redis.
    if (spec->check_args != nullptr) {
      if (std::string_view e = spec->check_args(args); !e.empty()) {
        conn.out().error(e);
        count_error(e);
        return true;
      }
    }
    std::set<uint32_t> distinct(owners.begin(), owners.end());
    std::string name = to_upper(spec->full_name(parent));
    std::string why =
        spec->name == "msetnx"
            ? "so it could not be all-or-nothing; MSETNX is refused when its keys span nodes"
            : "ringkv runs a multi-key command across nodes only for MGET, MSET, DEL, UNLINK, "
              "EXISTS and TOUCH";
    conn.out().error("CROSSSLOT " + name + ": its keys live on different nodes of the ring (" +
                     server_list(v, distinct) + "), " + why);
    count_error("CROSSSLOT");
    return true;
  }
  split_command(conn, s, args, spec, pos, owners);
  return true;
}

void Server::hot_cache_writes(size_t loop_index, std::vector<std::string_view>& args,
                              const CommandSpec* spec, const CommandSpec* parent) {
  if (!spec->is(kWrite) && !(parent == nullptr && spec->name == "exec")) return;
  HotCache& cache = *hot_caches_[loop_index];
  std::vector<int> pos;
  if (spec->first_key > 0) spec->key_positions(args.size(), &pos);
  if (pos.empty()) {
    cache.clear();
    return;
  }
  for (int p : pos) cache.invalidate(args[static_cast<size_t>(p)]);
}

void Server::split_command(net::Connection& conn, ClientSession& s,
                           std::vector<std::string_view>& args, const CommandSpec* spec,
                           const std::vector<int>& positions, const std::vector<uint32_t>& owners) {
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  struct Group {
    std::vector<std::string> args;
    std::vector<size_t> key_index;  // positions in the original key order
  };
  std::map<uint32_t, Group> groups;
  const int step = spec->key_step;
  for (size_t i = 0; i < positions.size(); ++i) {
    Group& g = groups[owners[i]];
    if (g.args.empty()) g.args.emplace_back(args[0]);
    for (int k = 0; k < step; ++k) g.args.emplace_back(args[static_cast<size_t>(positions[i] + k)]);
    g.key_index.push_back(i);
  }
  struct Merge {
    std::vector<std::pair<uint32_t, Group>> groups;
    std::vector<std::string> replies;
    size_t left;
    size_t keys;
    uint32_t kind;
    std::shared_ptr<net::Deferred> d;
  };
  auto m = std::make_shared<Merge>();
  for (auto& [o, g] : groups) m->groups.emplace_back(o, std::move(g));
  m->replies.resize(m->groups.size());
  m->left = m->groups.size();
  m->keys = positions.size();
  m->kind = spec->flags & (kSplitArray | kSplitSum | kSplitOk);
  m->d = std::make_shared<net::Deferred>(conn.defer());
  auto finish_one = [m](size_t gi, std::string reply) {
    m->replies[gi] = std::move(reply);
    if (--m->left > 0) return;
    for (const auto& r : m->replies) {
      if (resp::reply_is_error(r) || r.empty()) {
        m->d->complete(r.empty() ? error_reply("TRYAGAIN ringkv: a node did not answer") : r);
        return;
      }
    }
    if (m->kind == kSplitSum) {
      int64_t total = 0;
      for (const auto& r : m->replies) {
        int64_t n = 0;
        resp::reply_integer(r, &n);
        total += n;
      }
      m->d->complete(":" + std::to_string(total) + "\r\n");
    } else if (m->kind == kSplitOk) {
      m->d->complete("+OK\r\n");
    } else {
      std::vector<std::string_view> ordered(m->keys);
      for (size_t gi = 0; gi < m->groups.size(); ++gi) {
        std::vector<std::string_view> elems;
        resp::split_aggregate(m->replies[gi], &elems);
        const auto& idx = m->groups[gi].second.key_index;
        for (size_t j = 0; j < idx.size() && j < elems.size(); ++j) ordered[idx[j]] = elems[j];
      }
      std::string out = "*" + std::to_string(m->keys) + "\r\n";
      for (auto e : ordered) out.append(e);
      m->d->complete(std::move(out));
    }
  };
  auto keep = conn.shared_from_this();
  // run_local_async may refresh the loop's view, which frees the one `v` refers to: keep what
  // the loop needs.
  const uint32_t self = v.self;
  const std::shared_ptr<const ring::Ring> ring = v.ring;
  for (size_t gi = 0; gi < m->groups.size(); ++gi) {
    uint32_t owner = m->groups[gi].first;
    std::vector<std::string>& gargs = m->groups[gi].second.args;
    if (owner == self) {
      run_local_async(conn, s, gargs, clock_.now_ms(),
                      [finish_one, gi](std::string r) { finish_one(gi, std::move(r)); });
    } else {
      std::vector<std::string_view> views(gargs.begin(), gargs.end());
      cluster_->link(li, ring->servers()[owner].id, conn.protocol())
          .send(views, [finish_one, gi](bool ok, std::string_view r) {
            finish_one(
                gi, ok ? std::string(r)
                       : error_reply("TRYAGAIN ringkv: a node did not answer: " + std::string(r)));
          });
    }
  }
}

// ---------------------------------------------------------------- transactions

void Server::cluster_watch(net::Connection& conn, ClientSession& s,
                           std::vector<std::string_view>& args, Millis now) {
  if (s.in_multi) {
    conn.out().error(err::kWatchInMulti);
    count_error(err::kWatchInMulti);
    return;
  }
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  struct State {
    size_t left;
    std::shared_ptr<net::Deferred> d;
  };
  auto st = std::make_shared<State>();
  st->left = args.size() - 1;
  st->d = std::make_shared<net::Deferred>(conn.defer());
  auto keep = conn.shared_from_this();
  for (size_t i = 1; i < args.size(); ++i) {
    std::string key(args[i]);
    Token t = token_of(key);
    uint32_t owner = v.primary(t);
    auto record = [st, keep, key](uint64_t version) {
      if (!keep->closing()) {
        auto* sess = static_cast<ClientSession*>(keep->session());
        sess->watched_versions.emplace_back(key, version);
      }
      if (--st->left == 0) st->d->complete("+OK\r\n");
    };
    if (owner == v.self) {
      uint64_t ver = store_->access(key, t, now, [](store::Access& a) { return watch_version(a); });
      record(ver);
    } else {
      cluster_->link(li, v.ring->servers()[owner].id, cluster::Cluster::kControl)
          .send({"RINGKV.VERSION", key}, [record](bool ok, std::string_view r) {
            int64_t ver = -1;  // unknown: EXEC will fail the check, as if the key changed
            if (ok) resp::reply_integer(r, &ver);
            record(static_cast<uint64_t>(ver));
          });
    }
  }
}

bool Server::cluster_exec(net::Connection& conn, ClientSession& s, Millis now) {
  if (!s.in_multi || s.multi_dirty) return false;  // the local handler replies the error
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  const CommandTable& table = CommandTable::instance();
  std::set<uint32_t> owners;
  for (const auto& q : s.queued) {
    const CommandSpec* spec = table.find(q[0]);
    if (spec == nullptr) continue;
    if (!spec->subcommands.empty() && q.size() > 1) spec = table.find_sub(*spec, q[1]);
    if (spec == nullptr || spec->first_key <= 0) continue;
    std::vector<int> pos;
    spec->key_positions(q.size(), &pos);
    for (int p : pos) owners.insert(v.primary(token_of(q[static_cast<size_t>(p)])));
  }
  for (const auto& [k, ver] : s.watched_versions) owners.insert(v.primary(token_of(k)));
  if (owners.size() > 1) {
    s.in_multi = false;
    s.queued.clear();
    s.watched_versions.clear();
    unwatch_all(s);
    conn.out().error(
        "CROSSSLOT EXEC: this transaction's keys live on different nodes of the ring (" +
        server_list(v, owners) + "); a transaction runs atomically on one node only");
    count_error("CROSSSLOT");
    return true;
  }
  uint32_t owner = owners.empty() ? v.self : *owners.begin();
  // One request that checks the watched versions and runs the commands atomically there.
  std::vector<std::string> req = {"RINGKV.EXEC", std::to_string(s.watched_versions.size())};
  for (const auto& [k, ver] : s.watched_versions) {
    req.push_back(k);
    req.push_back(std::to_string(ver));
  }
  req.push_back(std::to_string(s.queued.size()));
  for (const auto& q : s.queued) {
    req.push_back(std::to_string(q.size()));
    req.insert(req.end(), q.begin(), q.end());
  }
  s.in_multi = false;
  s.queued.clear();
  s.watched_versions.clear();
  unwatch_all(s);
  if (owner == v.self || owner == ring::kNoServer) {
    auto d = std::make_shared<net::Deferred>(conn.defer());
    run_local_async(conn, s, std::move(req), now,
                    [d](std::string r) { d->complete(std::move(r)); });
  } else {
    std::vector<std::string_view> views(req.begin(), req.end());
    forward(conn, v.ring->servers()[owner].id, views, false, 0);
  }
  return true;
}

}  // namespace ringkv::server
