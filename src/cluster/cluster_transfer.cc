// The transfer thread (pulling gained ranges, replaying hints), anti-entropy and range digests.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <set>

#include "cluster/cluster.h"
#include "cluster/cluster_internal.h"
#include "common/log.h"
#include "common/strings.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

namespace {

// How long every holder of a range being received must have been down before the range is given
// up (see pull_ranges).
constexpr Millis kGiveUpSourceMs = 30000;

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// A value's bytes for the digest, eight at a time in four independent lanes: several GB/s,
// where a byte-at-a-time hash kept a store stripe locked for a quarter of a second per 200 MB
// value. (Nodes of another version hash differently: their ranges then compare unequal once,
// and a repair exchanges entries that turn out the same.)
uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t kM1 = 0x87c37b91114253d5ULL, kM2 = 0x4cf5ad432745937fULL;
  auto round = [](uint64_t h, uint64_t w) { return std::rotl(h ^ (w * kM1), 31) * kM2; };
  auto word = [](const char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  };
  const char* p = s.data();
  size_t n = s.size();
  uint64_t a = 0x9e3779b97f4a7c15ULL, b = 0xc2b2ae3d27d4eb4fULL, c = 0x165667b19e3779f9ULL,
           d = 0x27d4eb2f165667c5ULL;
  for (; n >= 32; p += 32, n -= 32) {
    a = round(a, word(p));
    b = round(b, word(p + 8));
    c = round(c, word(p + 16));
    d = round(d, word(p + 24));
  }
  uint64_t h =
      mix64(a) ^ std::rotl(mix64(b), 16) ^ std::rotl(mix64(c), 32) ^ std::rotl(mix64(d), 48);
  for (; n >= 8; p += 8, n -= 8) h = round(h, word(p));
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = round(h, w);
  }
  return mix64(h ^ s.size());
}

}  // namespace

// ---------------------------------------------------------------- transfer thread

void Cluster::transfer_loop() {
  while (!stop_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      transfer_wake_.wait_for(lock, std::chrono::milliseconds(200));
    }
    if (stop_) break;
    // Gains: only once every live node routes with the epoch that created them, so that no
    // write of the old epoch can land after the range was copied.
    std::vector<PendingRange> pending;
    uint64_t gains_for;
    RingConfig cfg;
    std::vector<NodeStatus> statuses;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending = pending_;
      gains_for = gains_for_;
      cfg = config_;
      statuses = statuses_;
    }
    if (!pending.empty()) {
      if (gains_for != 0) {
        std::vector<std::string> ids;
        for (const auto& s : cfg.servers) ids.push_back(s.id);
        if (!all_route_with(ids, options_.node_id, statuses, gains_for, clock_.now_ms(),
                            [this](const std::string& id) { return peer_live(id); }))
          continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (progress_.keys_total == 0) {
          // Estimate the total for progress reports: ask each first source once.
          std::map<std::string, std::vector<ring::TokenRange>> by_source;
          for (const auto& p : pending)
            if (!p.sources.empty()) by_source[p.sources.front()].push_back(p.range);
          uint64_t total = 0;
          for (auto& [src, ranges] : by_source) {
            const ServerInfo* s = config_.find(src);
            std::string address = s ? s->address : "";
            if (address.empty() && config_.migration)
              for (const auto& f : config_.migration->from)
                if (f.id == src) address = f.address;
            if (address.empty()) continue;
            std::vector<std::string> args = {"RINGKV.RANGESTATS"};
            for (const auto& r : ranges) {
              args.push_back(std::to_string(r.first));
              args.push_back(std::to_string(r.last));
            }
            mu_.unlock();
            auto r = sync_->call(address, args, 30000);
            mu_.lock();
            if (r) {
              const redisReply* rep = r->get();
              for (size_t i = 0; i + 1 < rep->elements; i += 2)
                total += static_cast<uint64_t>(rep->element[i]->integer);
            }
          }
          progress_.keys_total = total > 0 ? total : 1;
        }
      }
      bool ok = pull_ranges(pending, gains_for);
      std::lock_guard<std::mutex> lock(mu_);
      if (ok && gains_for_ == gains_for && pending_.empty() && progress_.moving) {
        progress_.moving = false;
        // After a restart: the other copies may lack writes this node executed but had not
        // sent to all of them when it stopped. It has the newest of every copy now; a repair
        // round (below, once no data moves) brings them up to date.
        if (recovering_) repair_due_ = true;
        recovering_ = false;
        if (gains_for != 0) migration_done_ = gains_for;
        LOG_NOTICE("Received every range (%llu keys, %llu bytes)",
                   static_cast<unsigned long long>(progress_.keys_done),
                   static_cast<unsigned long long>(progress_.bytes_done));
      }
    }
    replay_hints();
    Millis now_ms = clock_.now_ms();
    if (now_ms - last_sweep_ms_ > 5000) {
      last_sweep_ms_ = now_ms;
      drop_unheld_ranges();
    }
    // With anti-entropy-interval 0 no round runs on its own, only RING REPAIR.
    bool repair_now = false;
    if (options_.anti_entropy_s > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      repair_now =
          repair_due_ && !config_.migration && pending_.empty() && now_ms >= repair_retry_ms_;
      if (repair_now) repair_due_ = false;
    }
    if (repair_now) {
      auto [compared, repaired] = repair();
      LOG_NOTICE("Repair after a recovery or a peer's failure: %zu of %zu ranges differed",
                 repaired, compared);
      std::lock_guard<std::mutex> lock(mu_);
      if (unrepaired_ || behind_) {
        // Incomplete (a replica did not answer, or another suspicion came): again in a second.
        repair_due_ = true;
        repair_retry_ms_ = clock_.now_ms() + 1000;
      }
    }
    if (options_.anti_entropy_s > 0) {
      if (last_repair_ms_ == 0) last_repair_ms_ = now_ms;
      if (now_ms - last_repair_ms_ > options_.anti_entropy_s * 1000LL) {
        last_repair_ms_ = now_ms;
        auto [compared, repaired] = repair();
        if (repaired > 0)
          LOG_NOTICE("Anti-entropy: %zu of %zu ranges differed between replicas and were repaired",
                     repaired, compared);
      }
    }
  }
}

bool Cluster::pull_ranges(const std::vector<PendingRange>& ranges, uint64_t gains_for) {
  // Migration gains read each range from its first live source (the old primary when it is up),
  // so every key is copied once. Recovery reads from every live source, since an acknowledged
  // write may be on any W of them. Range fetches to one source are pipelined.
  bool recovery;
  {
    std::lock_guard<std::mutex> lock(mu_);
    recovery = recovering_;
  }
  struct Job {
    size_t index;  // into ranges
    Token cursor;
    bool ok = true;
  };
  // Two rounds: first the ranges this node becomes primary of (until they are here, reads of
  // their keys are read through from a previous holder, an extra hop), then the others.
  std::map<std::string, std::vector<Job>> by_source[2];
  std::vector<int> sources_left(ranges.size(), 0);
  std::shared_ptr<const ring::Ring> new_ring;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (view_) new_ring = view_->ring;
  }
  auto round_of = [&](const PendingRange& r) {
    return new_ring && new_ring->server_count() > 0 &&
                   new_ring->owner(r.range.first) == options_.node_id
               ? 0
               : 1;
  };
  // A range none of whose holders can be read now stays pending (tried again in 200 ms) while a
  // holder is up but not ready, or has been down for less than kGiveUpSourceMs (a pause, a
  // restart, a short partition): giving it up would leave this node without those keys for good
  // (reads of them return nil once the range is no longer pending, and the old holders drop
  // them when the move ends). A range whose holders have all been down longer is given up, so
  // that a dead server does not hold the move up forever.
  auto worth_waiting = [&](const PendingRange& r) {
    const Millis now = clock_.now_ms();
    if (out_of_touch(now)) return true;  // this node's view of its peers is stale itself
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : r.sources) {
      if (live_locked(s, now)) return true;
      // Silent since its last good ping, marked down since then, or never heard from.
      auto seen = last_seen_ms_.find(s);
      auto down = down_since_ms_.find(s);
      Millis since = down != down_since_ms_.end()                       ? down->second
                     : seen != last_seen_ms_.end() && seen->second != 0 ? seen->second
                                                                        : progress_.started_ms;
      if (now - since < kGiveUpSourceMs) return true;
    }
    return false;
  };
  // Holders that are themselves recovering are not read from, unless every holder has been
  // recovering for a while (all copies restarted at once): then partial data beats none.
  bool allow_unready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    allow_unready = clock_.now_ms() - progress_.started_ms > 10000;
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    for (const auto& s : ranges[i].sources) {
      if (!(allow_unready ? peer_live(s) : source_usable(s))) continue;
      by_source[round_of(ranges[i])][s].push_back(Job{i, ranges[i].range.first});
      ++sources_left[i];
      if (!recovery) break;
    }
  }
  std::vector<char> failed(ranges.size(), 0);
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (sources_left[i] != 0) continue;
    if (worth_waiting(ranges[i])) {
      failed[i] = 1;
    } else {
      LOG_WARNING(
          "No source for range [%016llx, %016llx] has answered for %lld s: giving it up, its keys "
          "cannot be copied",
          static_cast<unsigned long long>(ranges[i].range.first),
          static_cast<unsigned long long>(ranges[i].range.last),
          static_cast<long long>(kGiveUpSourceMs / 1000));
    }
  }
  auto complete = [&](size_t i) {
    // REQUIRES: mu_ held.
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const PendingRange& x) { return x.range == ranges[i].range; });
    if (it != pending_.end()) pending_.erase(it);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Ranges given up above leave the pending list; the others are tried again later.
    for (size_t i = 0; i < ranges.size(); ++i)
      if (sources_left[i] == 0 && !failed[i]) complete(i);
    publish_view();
  }
  // Pacing: at most migrate_rate_ keys copied in per second, in calls of about 100 ms worth of
  // keys, so no source's event loop is busy with one huge pipelined batch. CONFIG SET
  // migration-rate takes effect at the next batch, and ends a wait paced at the old rate.
  auto pipeline_for = [&](int64_t rate) {
    if (rate <= 0) return size_t{64};
    return static_cast<size_t>(
        std::clamp<int64_t>(rate / 10 / std::max(1, options_.batch_keys), 1, 64));
  };
  int64_t pace_rate = migrate_rate_.load();
  auto pace_start = std::chrono::steady_clock::now();
  uint64_t paced_keys = 0;
  auto pace = [&](uint64_t keys) {
    paced_keys += keys;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      int64_t rate = migrate_rate_.load();
      if (rate != pace_rate) {
        // A new rate: pace from here on, without owing or being owed time from the old one.
        pace_rate = rate;
        pace_start = std::chrono::steady_clock::now();
        paced_keys = 0;
      }
      if (rate <= 0) return;
      auto due = pace_start +
                 std::chrono::microseconds(paced_keys * 1000000 / static_cast<uint64_t>(rate));
      bool woken = transfer_wake_.wait_until(lock, due, [&] {
        return stop_.load() || gains_for_ != gains_for || migrate_rate_.load() != rate;
      });
      if (!woken || migrate_rate_.load() == rate) return;
    }
  };
  std::set<std::string> failed_sources;
  for (auto& round : by_source) {
    for (auto& [src, jobs] : round) {
      std::string address = address_of(src);
      std::deque<Job> queue(jobs.begin(), jobs.end());
      if (failed_sources.count(src)) {
        for (const auto& j : queue) failed[j.index] = 1;
        continue;
      }
      while (!queue.empty()) {
        if (stop_) return false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (gains_for_ != gains_for) return false;  // superseded by a newer change
        }
        std::vector<Job> batch;
        std::vector<std::vector<std::string>> reqs;
        while (!queue.empty() && batch.size() < pipeline_for(pace_rate)) {
          Job j = queue.front();
          queue.pop_front();
          reqs.push_back({"RINGKV.FETCH", std::to_string(j.cursor),
                          std::to_string(ranges[j.index].range.last),
                          std::to_string(options_.batch_keys)});
          batch.push_back(j);
        }
        auto replies = sync_->call_many_raw(address, reqs, 30000);
        if (!replies) {
          LOG_WARNING("Fetching ranges from %s failed: %s", src.c_str(),
                      replies.status().message().c_str());
          for (const auto& j : batch) failed[j.index] = 1;
          for (const auto& j : queue) failed[j.index] = 1;
          failed_sources.insert(src);
          break;
        }
        uint64_t keys = 0, bytes = 0;
        std::vector<size_t> finished;
        Millis now = clock_.now_ms();
        std::vector<std::string_view> el;
        for (size_t b = 0; b < batch.size(); ++b) {
          Job& j = batch[b];
          // [done, next cursor, then key, value, expire-at, version, tombstone per entry]
          int64_t done = 0;
          std::string_view next_text;
          if (!resp::split_aggregate((*replies)[b], &el) || el.size() < 2 ||
              (el.size() - 2) % 5 != 0 || !resp::reply_integer(el[0], &done) ||
              !resp::reply_string(el[1], &next_text)) {
            failed[j.index] = 1;
            continue;
          }
          uint64_t next = 0;
          parse_uint64(next_text, &next);
          for (size_t i = 2; i + 4 < el.size(); i += 5) {
            std::string_view k, v, version_text;
            int64_t expire = 0, tomb = 0;
            uint64_t version = 0;
            if (!resp::reply_string(el[i], &k) || !resp::reply_string(el[i + 1], &v) ||
                !resp::reply_integer(el[i + 2], &expire) ||
                !resp::reply_string(el[i + 3], &version_text) ||
                !resp::reply_integer(el[i + 4], &tomb) || !parse_uint64(version_text, &version)) {
              failed[j.index] = 1;
              break;
            }
            store_.apply(k, token_of(k), v, expire, version, tomb != 0, now);
            ++keys;
            bytes += k.size() + v.size();
          }
          if (failed[j.index]) continue;
          if (done) {
            finished.push_back(j.index);
          } else {
            j.cursor = next;
            queue.push_back(j);
          }
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          progress_.keys_done += keys;
          progress_.bytes_done += bytes;
          for (size_t i : finished)
            if (--sources_left[i] == 0 && !failed[i]) complete(i);
          publish_view();
        }
        pace(keys);
      }
    }
  }
  for (char f : failed)
    if (f) return false;
  return true;
}

std::string Cluster::address_of(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const ServerInfo* s = config_.find(id);
  if (s) return s->address;
  if (config_.migration)
    for (const auto& f : config_.migration->from)
      if (f.id == id) return f.address;
  return "";
}

void Cluster::replay_hints() {
  std::vector<std::string> peers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [p, keys] : hints_)
      if (!keys.empty()) peers.push_back(p);
  }
  for (const auto& peer : peers) {
    if (!peer_live(peer)) continue;
    std::unordered_set<std::string> keys;
    std::string address;
    {
      std::lock_guard<std::mutex> lock(mu_);
      keys.swap(hints_[peer]);
      const ServerInfo* s = config_.find(peer);
      if (s) address = s->address;
      if (!address.empty()) replaying_.insert(peer);  // ping flags wait for the replay's end
    }
    if (address.empty()) continue;  // no longer a server: its hints go
    size_t sent = 0;
    for (const auto& k : keys) {
      Token t = token_of(k);
      auto rec = snapshot_entry(store_, k, t);
      if (!rec) continue;
      auto r =
          sync_->call(address, {"RINGKV.REPL", rec->key, rec->value, std::to_string(rec->expire_at),
                                std::to_string(rec->version), rec->tombstone ? "t" : ""});
      if (!r) {
        add_hint(peer, k);
        continue;
      }
      ++sent;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      replaying_.erase(peer);
    }
    if (sent > 0) LOG_NOTICE("Replayed %zu hinted writes to %s", sent, peer.c_str());
  }
}

// ---------------------------------------------------------------- anti-entropy

std::pair<size_t, size_t> Cluster::repair() {
  RingConfig cfg;
  uint64_t suspicions;
  std::vector<uint8_t> live, ready;  // by ring index, as View::primary uses them
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.migration || !pending_.empty()) return {0, 0};  // data is moving: later
    cfg = config_;
    suspicions = suspicions_;
  }
  auto r = build_ring(cfg.ring_servers(), cfg.vnodes);
  if (!r) return {0, 0};
  auto idx = (*r)->index_of(options_.node_id);
  auto all = (*r)->ranges(cfg.effective_replicas());
  if (!idx || !all) return {0, 0};
  {
    // This node counts as ready: its ranges are compared while it catches up too.
    std::lock_guard<std::mutex> lock(mu_);
    holder_flags_locked(**r, true, &live, &ready);
  }
  // Per live peer: the ranges this node is the primary of (View::primary's rule: the first
  // ready holder, else the first live one) that the peer also holds. So a holder standing in for
  // a dead first holder, or for one that is catching up, repairs its ranges too.
  std::map<std::string, std::vector<ring::TokenRange>> by_peer;
  for (const auto& rr : *all) {
    const auto& list = rr.replicas;
    if (primary_of(list.data(), list.size(), live, ready) != *idx) continue;
    for (uint32_t s : list)
      if (s != *idx && live[s]) by_peer[(*r)->servers()[s].id].push_back(rr.range);
  }
  size_t compared = 0;
  Millis now = clock_.now_ms();
  std::set<std::pair<Token, Token>> repaired_ranges;
  bool complete = true;  // compared with every live replica
  // Which of `ranges` differ between this node and `peer`, by digest.
  auto differing = [&](const std::string& address, const std::vector<ring::TokenRange>& ranges,
                       bool count) {
    std::vector<ring::TokenRange> out;
    for (size_t off = 0; off < ranges.size(); off += 256) {
      size_t end = std::min(ranges.size(), off + 256);
      std::vector<std::vector<std::string>> reqs;
      for (size_t i = off; i < end; ++i)
        reqs.push_back(
            {"RINGKV.DIGEST", std::to_string(ranges[i].first), std::to_string(ranges[i].last)});
      auto replies = sync_->call_many(address, reqs, 30000);
      if (!replies) {
        complete = false;
        return out;
      }
      for (size_t i = off; i < end; ++i) {
        const redisReply* rep = (*replies)[i - off].get();
        if (count) ++compared;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
          complete = false;  // e.g. the peer is still recovering that range
          continue;
        }
        auto [n, dig] = digest(ranges[i].first, ranges[i].last, now);
        std::string theirs(rep->element[1]->str, rep->element[1]->len);
        if (static_cast<uint64_t>(rep->element[0]->integer) != n || theirs != token_hex(dig))
          out.push_back(ranges[i]);
      }
    }
    return out;
  };
  // Phase 1: take every replica's entries of the differing ranges (newest wins here), so this
  // node ends up with the newest of every copy.
  for (auto& [peer, ranges] : by_peer) {
    if (stop_ || !peer_live(peer)) {
      complete = false;
      continue;
    }
    std::string address = address_of(peer);
    for (const auto& range : differing(address, ranges, true)) {
      repaired_ranges.emplace(range.first, range.last);
      Token cursor = range.first;
      for (;;) {
        auto f = sync_->call(
            address, {"RINGKV.FETCH", std::to_string(cursor), std::to_string(range.last), "1000"},
            30000);
        const redisReply* fr = f ? f->get() : nullptr;
        if (!fr || fr->type != REDIS_REPLY_ARRAY || fr->elements < 2) {
          complete = false;
          break;
        }
        for (size_t e = 2; e + 4 < fr->elements; e += 5) {
          std::string_view k(fr->element[e]->str, fr->element[e]->len);
          std::string_view v(fr->element[e + 1]->str, fr->element[e + 1]->len);
          uint64_t version = 0;
          parse_uint64(std::string_view(fr->element[e + 3]->str, fr->element[e + 3]->len),
                       &version);
          store_.apply(k, token_of(k), v, fr->element[e + 2]->integer, version,
                       fr->element[e + 4]->integer != 0, now);
        }
        if (fr->element[0]->integer != 0) break;
        parse_uint64(std::string_view(fr->element[1]->str, fr->element[1]->len), &cursor);
      }
    }
  }
  // Phase 2: give every replica that still differs this node's entries of those ranges.
  for (auto& [peer, ranges] : by_peer) {
    if (stop_ || !peer_live(peer)) continue;
    std::string address = address_of(peer);
    for (const auto& range : differing(address, ranges, false)) {
      repaired_ranges.emplace(range.first, range.last);
      std::vector<std::vector<std::string>> push;
      Token c = range.first;
      for (;;) {
        Token next =
            store_.scan_range(c, range.last, 1000, now, true, [&](const store::EntryView& e) {
              push.push_back({"RINGKV.REPL", std::string(e.key()),
                              e.tombstone() ? std::string() : std::string(e.value()),
                              std::to_string(e.expire_at()), std::to_string(e.version()),
                              e.tombstone() ? "t" : ""});
            });
        if (!push.empty()) sync_->call_many(address, push, 30000);
        push.clear();
        if (next == range.last + 1 || next <= c) break;
        c = next;
      }
    }
  }
  size_t repaired = repaired_ranges.size();
  if (complete && !stop_) {
    std::lock_guard<std::mutex> lock(mu_);
    if ((unrepaired_ || behind_) && suspicions_ == suspicions) {
      unrepaired_ = false;
      behind_ = false;
      publish_view();
    }
  }
  return {compared, repaired};
}

// ---------------------------------------------------------------- digests

std::pair<uint64_t, uint64_t> Cluster::digest(Token first, Token last, Millis now) const {
  uint64_t count = 0, acc = 0;
  Token cursor = first;
  for (;;) {
    Token next = store_.scan_range(cursor, last, 4096, now, false, [&](const store::EntryView& e) {
      ++count;
      uint64_t h =
          mix64(e.token() ^ mix64(e.version()) ^ mix64(hash_bytes(e.value()) + e.key().size()) ^
                mix64(static_cast<uint64_t>(e.expire_at())));
      acc ^= h;
    });
    if (next == last + 1 || next <= cursor) break;
    cursor = next;
  }
  return {count, acc};
}

std::vector<std::pair<uint64_t, uint64_t>> Cluster::range_stats(
    const std::vector<ring::TokenRange>& ranges, Millis now) const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& r : ranges) {
    uint64_t keys = 0, bytes = 0;
    Token cursor = r.first;
    for (;;) {
      Token next =
          store_.scan_range(cursor, r.last, 4096, now, true, [&](const store::EntryView& e) {
            ++keys;
            bytes += e.key().size() + e.value().size();
          });
      if (next == r.last + 1 || next <= cursor) break;
      cursor = next;
    }
    out.emplace_back(keys, bytes);
  }
  return out;
}

}  // namespace ringkv::cluster
