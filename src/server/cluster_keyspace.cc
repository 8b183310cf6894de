// Commands for the whole cluster, sent to every node and merged: DBSIZE, KEYS, FLUSHALL and the
// keyspace commands (keyspace_command), and SCAN with a cursor that spans the nodes
// (cluster_scan). The requests go out through fanout().
#include <algorithm>
#include <map>
#include <set>

#include "cluster/peer_link.h"
#include "common/log.h"
#include "resp/reply_scanner.h"
#include "server/server.h"
#include "server/util.h"

namespace ringkv::server {

using cluster::View;

namespace {

// If a node of a fan-out failed, completes d with the first failure (the node's error, or
// TRYAGAIN saying why it did not answer) and returns true.
bool complete_with_failure(net::Deferred& d,
                           const std::vector<std::pair<bool, std::string>>& replies) {
  for (const auto& [ok, r] : replies) {
    if (ok) continue;
    d.complete(
        resp::reply_is_error(r) ? r : error_reply("TRYAGAIN ringkv: a node did not answer: " + r));
    return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- fan-out

void Server::fanout(net::Connection& conn, ClientSession& s,
                    const std::vector<std::string>& targets, std::vector<std::string> args,
                    std::function<void(std::vector<std::pair<bool, std::string>>)> done) {
  size_t li = conn.loop().index();
  struct State {
    std::vector<std::pair<bool, std::string>> replies;
    size_t left;
    std::function<void(std::vector<std::pair<bool, std::string>>)> done;
  };
  auto st = std::make_shared<State>();
  st->replies.resize(targets.size());
  st->left = targets.size();
  st->done = std::move(done);
  if (targets.empty()) {
    st->done({});
    return;
  }
  std::vector<std::string_view> views(args.begin(), args.end());
  for (size_t i = 0; i < targets.size(); ++i) {
    auto cb = [st, i](bool ok, std::string_view r) {
      st->replies[i] = {ok && !resp::reply_is_error(r), std::string(r)};
      if (--st->left == 0) st->done(std::move(st->replies));
    };
    if (targets[i] == cluster_->node_id()) {
      std::string reply;
      const CommandTable& table = CommandTable::instance();
      const CommandSpec* spec = table.find(views[0]);
      std::vector<std::string_view> a = views;
      execute_captured(conn, s, a, spec, nullptr, clock_.now_ms(), &reply);
      cb(true, reply);
    } else {
      cluster_->link(li, targets[i], cluster::Cluster::kControl).send(views, cb);
    }
  }
}

void Server::keyspace_command(net::Connection& conn, ClientSession& s,
                              std::vector<std::string_view>& args, const CommandSpec* spec,
                              Millis now) {
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  std::string_view name = spec->name;
  if (name == "scan") {
    cluster_scan(conn, s, args, now);
    return;
  }
  if (name == "randomkey") {
    std::string key;
    if (store_->random_key(now, &key)) {
      conn.out().bulk(key);
      return;
    }
    // Nothing here: the key may live on the other servers only.
    std::vector<std::string> peers;
    for (size_t i = 0; i < v.ring->server_count(); ++i)
      if (v.live[i] && i != v.self) peers.push_back(v.ring->servers()[i].id);
    if (peers.empty()) {
      conn.out().null();
      return;
    }
    auto d = std::make_shared<net::Deferred>(conn.defer());
    int proto = conn.protocol();
    fanout(conn, s, peers, {"RINGKV.RANDOMKEY"},
           [d, proto](std::vector<std::pair<bool, std::string>> replies) {
             for (auto& [ok, r] : replies) {
               if (ok && r.size() > 1 && r[0] == '$' && r[1] != '-') {  // a key, not a null
                 d->complete(std::move(r));
                 return;
               }
             }
             if (complete_with_failure(*d, replies)) return;
             std::string out;
             resp::Writer(&out, proto).null();
             d->complete(std::move(out));
           });
    return;
  }
  if ((name == "flushall" || name == "flushdb") &&
      (args.size() > 2 ||
       (args.size() == 2 && !equals_nocase(args[1], "sync") && !equals_nocase(args[1], "async")))) {
    conn.out().error(err::kSyntax);
    count_error(err::kSyntax);
    return;
  }
  std::vector<std::string> targets;
  std::vector<std::string> fargs;
  if (name == "flushall" || name == "flushdb") {
    for (const auto& srv : v.config.servers) targets.push_back(srv.id);
    if (v.config.migration)
      for (const auto& srv : v.config.migration->from)
        if (std::find(targets.begin(), targets.end(), srv.id) == targets.end())
          targets.push_back(srv.id);
    fargs = {"RINGKV.FLUSH"};
  } else {
    for (size_t i = 0; i < v.ring->server_count(); ++i)
      if (v.live[i]) targets.push_back(v.ring->servers()[i].id);
    if (name == "dbsize")
      fargs = {"RINGKV.COUNT"};
    else
      fargs = {"RINGKV.KEYS", std::string(args[1])};
  }
  auto d = std::make_shared<net::Deferred>(conn.defer());
  int proto = conn.protocol();
  std::string cmd(name);
  fanout(conn, s, targets, fargs,
         [d, cmd, proto](std::vector<std::pair<bool, std::string>> replies) {
           if (complete_with_failure(*d, replies)) return;
           std::string out;
           resp::Writer w(&out, proto);
           if (cmd == "dbsize") {
             int64_t total = 0;
             for (auto& [ok, r] : replies) {
               int64_t n = 0;
               resp::reply_integer(r, &n);
               total += n;
             }
             w.integer(total);
           } else if (cmd == "keys") {
             std::vector<std::string_view> all;
             for (auto& [ok, r] : replies) {
               std::vector<std::string_view> e;
               resp::split_aggregate(r, &e);
               all.insert(all.end(), e.begin(), e.end());
             }
             w.array(all.size());
             for (auto e : all) w.raw(e);
           } else {
             w.ok();
           }
           d->complete(std::move(out));
         });
}

void Server::cluster_scan(net::Connection& conn, ClientSession& s,
                          std::vector<std::string_view>& args, Millis now) {
  // Validate exactly like the local SCAN (same errors), then ask the owner of the cursor's range.
  std::string c(args[1]);
  char* end = nullptr;
  errno = 0;
  unsigned long long cursor = std::strtoull(c.c_str(), &end, 10);
  if (c.empty() || std::isspace(static_cast<unsigned char>(c[0])) || *end != '\0' ||
      errno == ERANGE) {
    conn.out().error(err::kInvalidCursor);
    count_error(err::kInvalidCursor);
    return;
  }
  int64_t count = 10;
  std::string pattern, type;
  for (size_t i = 2; i < args.size();) {
    size_t left = args.size() - i;
    if (equals_nocase(args[i], "count") && left >= 2) {
      if (!parse_int64(args[i + 1], &count)) {
        conn.out().error(err::kNotInteger);
        count_error(err::kNotInteger);
        return;
      }
      if (count < 1) {
        conn.out().error(err::kSyntax);
        count_error(err::kSyntax);
        return;
      }
      i += 2;
    } else if (equals_nocase(args[i], "match") && left >= 2) {
      pattern = std::string(args[i + 1]);
      i += 2;
    } else if (equals_nocase(args[i], "type") && left >= 2) {
      type = std::string(args[i + 1]);
      i += 2;
    } else {
      conn.out().error(err::kSyntax);
      count_error(err::kSyntax);
      return;
    }
  }
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  Token t = static_cast<Token>(cursor);
  ring::TokenRange r = v.ring->range(v.ring->range_index(t));
  Token last = r.last;
  std::vector<std::string> targets = {v.ring->servers()[v.primary(t)].id};
  if (v.previous) {
    // During a migration the old primary still has everything that has not arrived yet.
    ring::TokenRange pr = v.previous->range(v.previous->range_index(t));
    last = std::min(last, pr.last);
    uint32_t list[ring::kMaxReplicasLimit];
    size_t k = v.previous->preference_list(t, v.n, list);
    for (size_t i = 0; i < k; ++i) {
      const std::string& id = v.previous->servers()[list[i]].id;
      if (!cluster_->peer_live(id)) continue;
      if (std::find(targets.begin(), targets.end(), id) == targets.end()) targets.push_back(id);
      break;
    }
  }
  std::vector<std::string> fargs = {"RINGKV.SCAN",         std::to_string(t), std::to_string(last),
                                    std::to_string(count), pattern,           type};
  auto d = std::make_shared<net::Deferred>(conn.defer());
  int proto = conn.protocol();
  fanout(conn, s, targets, fargs,
         [d, proto, last](std::vector<std::pair<bool, std::string>> replies) {
           std::set<std::string> keys;
           bool all_done = true;
           Token next = 0;
           bool have_next = false;
           for (auto& [ok, r] : replies) {
             std::vector<std::string_view> e;
             if (!ok || !resp::split_aggregate(r, &e) || e.size() < 2) {
               d->complete(resp::reply_is_error(r)
                               ? r
                               : error_reply("TRYAGAIN ringkv: a node did not answer"));
               return;
             }
             int64_t done = 0;
             resp::reply_integer(e[0], &done);
             std::string_view nx;
             resp::reply_string(e[1], &nx);
             uint64_t n = 0;
             parse_uint64(nx, &n);
             if (!done) {
               all_done = false;
               if (!have_next || n < next) next = n;
               have_next = true;
             }
             for (size_t i = 2; i < e.size(); ++i) {
               std::string_view k;
               if (resp::reply_string(e[i], &k)) keys.emplace(k);
             }
           }
           Token cursor_out =
               all_done ? last + 1 : next;  // last + 1 wraps to 0 at the end of the ring
           std::string out;
           resp::Writer w(&out, proto);
           w.array(2);
           w.bulk(std::to_string(cursor_out));
           w.array(keys.size());
           for (const auto& k : keys) w.bulk(k);
           d->complete(std::move(out));
         });
}

}  // namespace ringkv::server
