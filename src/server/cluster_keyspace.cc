// Commands for the whole cluster, sent to every node and merged: DBSIZE, KEYS, FLUSHALL and the
// keyspace commands (keyspace_command), and SCAN with a cursor that spans the nodes
// (cluster_scan). The requests go out through fanout().
#include <algorithm>
#include <limits>
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
    cluster_scan(conn, args);
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
    // This node's view of who is primary where, so that every node counts each key once.
    for (size_t i = 0; i < v.ring->server_count(); ++i) {
      fargs.push_back(v.ring->servers()[i].id);
      fargs.push_back(v.ready[i] ? "2" : v.live[i] ? "1" : "0");
    }
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

// One SCAN call through the cluster. It walks the ring's ranges from the cursor in rounds of 1,
// 2, 4, ... ranges (each round's ranges asked in parallel, each of its holder), until the holders
// have looked at `count` keys, a range stops early (it had more than `count` entries), the ring
// ends, or kScanMaxRanges ranges were walked: so a sparse or empty cluster is scanned in one or a
// few calls, and a dense one in about one range per call.
struct Server::ScanCall {
  std::shared_ptr<net::Deferred> d;
  std::shared_ptr<net::Connection> conn;
  int proto = 2;
  size_t count = 10;
  std::string pattern, type;
  bool match_empty = false;  // MATCH "": only the empty key matches
  Token cursor = 0;          // where the next range to ask starts
  size_t walked = 0;         // ranges finished
  size_t visited = 0;  // keys looked at (COUNT bounds this, as in Redis: not the keys returned)
  std::set<std::string> keys;

  void finish(Token next) {
    std::string out;
    resp::Writer w(&out, proto);
    w.array(2);
    w.bulk(std::to_string(next));
    w.array(keys.size());
    for (const auto& k : keys) w.bulk(k);
    d->complete(std::move(out));
  }
};

namespace {
constexpr size_t kScanMaxRanges = 4096;
}  // namespace

void Server::cluster_scan(net::Connection& conn, std::vector<std::string_view>& args) {
  // Validate exactly like the local SCAN (same errors), then walk the ring from the cursor.
  std::string c(args[1]);
  char* end = nullptr;
  errno = 0;
  unsigned long long cursor = std::strtoull(c.c_str(), &end, 10);
  if (std::isspace(static_cast<unsigned char>(c[0])) || *end != '\0' || errno == ERANGE) {
    conn.out().error(err::kInvalidCursor);
    count_error(err::kInvalidCursor);
    return;
  }
  int64_t count = 10;
  std::string pattern, type;
  bool match_empty = false;
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
      match_empty = pattern.empty();
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
  auto call = std::make_shared<ScanCall>();
  call->d = std::make_shared<net::Deferred>(conn.defer());
  call->conn = conn.shared_from_this();
  call->proto = conn.protocol();
  call->count = static_cast<size_t>(count);
  call->pattern = std::move(pattern);
  call->match_empty = match_empty;
  call->type = std::move(type);
  call->cursor = static_cast<Token>(cursor);
  scan_round(call, 1);
}

void Server::scan_round(const std::shared_ptr<ScanCall>& call, size_t width) {
  if (call->conn->closing()) {
    call->d->complete("");
    return;
  }
  net::Connection& conn = *call->conn;
  size_t li = conn.loop().index();
  const View& v = cluster_->view(li);
  struct Part {
    Token last;
    std::vector<std::string> targets;
    std::vector<std::pair<bool, std::string>> replies;
  };
  auto parts = std::make_shared<std::vector<Part>>();
  Token t = call->cursor;
  for (size_t i = 0; i < width; ++i) {
    ring::TokenRange r = v.ring->range(v.ring->range_index(t));
    Part part{r.last, {v.ring->servers()[v.primary(t)].id}, {}};
    if (v.previous) {
      // During a migration the old primary still has everything that has not arrived yet.
      ring::TokenRange pr = v.previous->range(v.previous->range_index(t));
      part.last = std::min(part.last, pr.last);
      uint32_t list[ring::kMaxReplicasLimit];
      size_t k = v.previous->preference_list(t, v.n, list);
      for (size_t j = 0; j < k; ++j) {
        const std::string& id = v.previous->servers()[list[j]].id;
        if (!cluster_->peer_live(id)) continue;
        if (std::find(part.targets.begin(), part.targets.end(), id) == part.targets.end())
          part.targets.push_back(id);
        break;
      }
    }
    parts->push_back(std::move(part));
    if (parts->back().last == std::numeric_limits<Token>::max()) break;  // the end of the ring
    t = parts->back().last + 1;
  }
  auto left = std::make_shared<size_t>(parts->size());
  // Runs once every part has its replies: takes the parts in ring order. A part that ends the
  // call drops the parts after it; their keys come again in the next call.
  auto merge = [this, call, parts] {
    for (Part& part : *parts) {
      if (complete_with_failure(*call->d, part.replies)) return;
      bool all_done = true;
      Token next = 0;
      for (auto& [ok, r] : part.replies) {
        std::vector<std::string_view> e;
        if (!resp::split_aggregate(r, &e) || e.size() < 3) {
          call->d->complete(error_reply("TRYAGAIN ringkv: a node's SCAN reply was malformed"));
          return;
        }
        int64_t done = 0;
        resp::reply_integer(e[0], &done);
        std::string_view nx;
        resp::reply_string(e[1], &nx);
        uint64_t n = 0;
        parse_uint64(nx, &n);
        if (!done) {
          // A holder stopped inside the range: every key before the earliest stop is in.
          next = all_done ? n : std::min<Token>(next, n);
          all_done = false;
        }
        int64_t visited = 0;
        resp::reply_integer(e[2], &visited);
        call->visited += static_cast<size_t>(std::max<int64_t>(visited, 0));
        for (size_t i = 3; i < e.size(); ++i) {
          std::string_view k;
          if (resp::reply_string(e[i], &k)) call->keys.emplace(k);
        }
      }
      ++call->walked;
      if (!all_done) return call->finish(next);
      call->cursor = part.last + 1;  // wraps to 0 after the ring's last range: the scan is over
      if (call->cursor == 0 || call->visited >= call->count || call->walked >= kScanMaxRanges)
        return call->finish(call->cursor);
    }
    scan_round(call, std::min(parts->size() * 2, kScanMaxRanges - call->walked));
  };
  ClientSession& s = *static_cast<ClientSession*>(conn.session());
  for (size_t i = 0; i < parts->size(); ++i) {
    Part& part = (*parts)[i];
    std::vector<std::string> fargs = {
        "RINGKV.SCAN",
        std::to_string(i == 0 ? call->cursor : (*parts)[i - 1].last + 1),
        std::to_string(part.last),
        std::to_string(call->count),
        call->pattern,
        call->type};
    if (call->match_empty) fargs.push_back("1");
    fanout(conn, s, part.targets, std::move(fargs),
           [parts, i, left, merge](std::vector<std::pair<bool, std::string>> replies) {
             (*parts)[i].replies = std::move(replies);
             if (--*left == 0) merge();
           });
  }
}

}  // namespace ringkv::server
