#include "cluster/cluster.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "cluster/sync_client.h"
#include "common/log.h"
#include "common/strings.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

namespace {

constexpr size_t kMaxHintsPerPeer = 1'000'000;

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

// ---------------------------------------------------------------- View

uint32_t View::primary(Token t) const {
  uint32_t list[ring::kMaxReplicasLimit];
  size_t k = ring->preference_list(t, n, list);
  for (size_t i = 0; i < k; ++i)
    if (live[list[i]]) return list[i];
  return k ? list[0] : ring::kNoServer;
}

size_t View::replicas_of(Token t, uint32_t* out) const { return ring->preference_list(t, n, out); }

bool View::in_pending(Token t, const PendingRange** range) const {
  if (pending.empty()) return false;
  auto it = std::upper_bound(pending.begin(), pending.end(), t,
                             [](Token tok, const PendingRange& p) { return tok < p.range.first; });
  if (it == pending.begin()) return false;
  --it;
  if (!it->range.contains(t)) return false;
  if (range) *range = &*it;
  return true;
}

bool View::holds(Token t) const {
  uint32_t list[ring::kMaxReplicasLimit];
  if (self != ring::kNoServer) {
    size_t k = ring->preference_list(t, n, list);
    for (size_t i = 0; i < k; ++i)
      if (list[i] == self) return true;
  }
  if (previous) {
    auto idx = previous->index_of(self_id);
    if (idx) {
      size_t k = previous->preference_list(t, n, list);
      for (size_t i = 0; i < k; ++i)
        if (list[i] == *idx) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- change capture

namespace {
thread_local ChangeCapture* t_capture = nullptr;
void capture_note(void*, std::string_view key, Token token) { ChangeCapture::note(key, token); }
store::ChangeObserver g_observer{&capture_note, nullptr};
}  // namespace

ChangeCapture::ChangeCapture() : prev_(t_capture) {
  t_capture = this;
  store::set_thread_change_observer(&g_observer);
}

ChangeCapture::~ChangeCapture() {
  t_capture = prev_;
  if (prev_ == nullptr) store::set_thread_change_observer(nullptr);
}

void ChangeCapture::note(std::string_view key, Token token) {
  if (t_capture == nullptr) return;
  for (auto& [k, t] : t_capture->keys_)
    if (t == token && k == key) return;
  t_capture->keys_.emplace_back(std::string(key), token);
}

std::optional<ChangeRecord> snapshot_entry(store::Store& store, std::string_view key, Token token,
                                           Millis now) {
  // A raw look at the entry, tombstones included, without expiring it (its expiry travels).
  std::optional<ChangeRecord> out;
  store.scan_range(token, token, 1 << 20, now, true, [&](const store::EntryView& e) {
    if (e.key() != key) return;
    ChangeRecord r;
    r.key.assign(key);
    r.token = token;
    r.tombstone = e.tombstone();
    if (!r.tombstone) r.value.assign(e.value());
    r.expire_at = e.expire_at();
    r.version = e.version();
    out = std::move(r);
  });
  return out;
}

// ---------------------------------------------------------------- lifecycle

Cluster::Cluster(ClusterOptions options, store::Store& store, HybridClock& hlc, const Clock& clock)
    : options_(std::move(options)), store_(store), hlc_(hlc), clock_(clock) {}

Cluster::~Cluster() { stop(); }

namespace {
SyncClient& sync_client(const ClusterOptions& o) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<SyncClient>> clients;
  std::lock_guard<std::mutex> lock(mu);
  auto& c = clients[o.node_id];
  if (!c) c = std::make_unique<SyncClient>(o.node_id, o.password, 1000);
  return *c;
}
}  // namespace

Status Cluster::start(std::vector<net::EventLoop*> loops) {
  loops_ = std::move(loops);
  loop_states_.resize(loops_.size());
  auto svc = open_config_service(options_.discovery, options_.state_file, options_.password);
  if (!svc) return svc.status();
  service_ = std::move(svc).value();
  Result<RingConfig> cfg = Status::unreachable("not tried");
  for (int attempt = 0; attempt < 50; ++attempt) {  // the service may still be starting
    cfg = service_->load();
    if (cfg) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!cfg) {
    return Status::unreachable("can't read the ring configuration from " + service_->describe() +
                               ": " + cfg.status().message());
  }
  RingConfig c = std::move(cfg).value();
  if (c.epoch == 0 && options_.discovery == "local") {
    // A fresh local cluster: this node alone is a working one-server ring.
    c.epoch = 1;
    c.vnodes = options_.vnodes;
    c.replicas = options_.replicas;
    c.write_quorum = options_.write_quorum;
    c.read_quorum = options_.read_quorum;
    c.servers.push_back(ServerInfo{options_.node_id, options_.address, 1, ServerState::kUp, 1});
    c.next_ordinal = 2;
    Status st = service_->store(0, c);
    if (!st) return st;
  }
  apply_config(c);
  report_status();
  control_ = std::thread([this] { control_loop(); });
  transfer_ = std::thread([this] { transfer_loop(); });
  LOG_NOTICE("Cluster node '%s' at %s, configuration service %s, epoch %llu",
             options_.node_id.c_str(), options_.address.c_str(), service_->describe().c_str(),
             static_cast<unsigned long long>(c.epoch));
  return Status::ok();
}

void Cluster::stop() {
  if (stop_.exchange(true)) return;
  wake_.notify_all();
  transfer_wake_.notify_all();
  if (control_.joinable()) control_.join();
  if (transfer_.joinable()) transfer_.join();
  // Peer links belong to their loops; the server destroys them on the loop threads.
}

LocalConfigService* Cluster::local_service() {
  return dynamic_cast<LocalConfigService*>(service_.get());
}

// ---------------------------------------------------------------- views

std::shared_ptr<const View> Cluster::current_view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

const View& Cluster::view(size_t loop_index) {
  LoopState& ls = loop_states_[loop_index];
  uint64_t v = view_version_.load(std::memory_order_acquire);
  if (v != ls.view_version || !ls.view) {
    std::lock_guard<std::mutex> lock(mu_);
    ls.view = view_;
    ls.view_version = v;
    // Links to servers that changed address are repointed; links to departed servers stay
    // until used (they fail fast).
    for (auto& [key, link] : ls.links) {
      const ServerInfo* s = config_.find(key.first);
      if (s) link->set_address(s->address);
    }
  }
  return *ls.view;
}

void Cluster::publish_view() {
  // REQUIRES: mu_ held.
  auto v = std::make_shared<View>();
  v->config = config_;
  // A view is published for every batch a move brings in and every liveness change; the rings
  // change only with the configuration's epoch, so they are built once per epoch.
  if (view_ && config_.epoch != 0 && view_->config.epoch == config_.epoch &&
      view_->config.vnodes == config_.vnodes &&
      view_->config.migration.has_value() == config_.migration.has_value()) {
    v->ring = view_->ring;
    v->previous = view_->previous;
  } else {
    auto r = build_ring(config_.ring_servers(), config_.vnodes);
    if (!r) {
      LOG_WARNING("Ring configuration epoch %llu is unusable: %s",
                  static_cast<unsigned long long>(config_.epoch), r.status().message().c_str());
      return;
    }
    v->ring = std::move(r).value();
    if (config_.migration) {
      auto p = build_ring(config_.migration->from, config_.vnodes);
      if (p) v->previous = std::move(p).value();
    }
  }
  v->self_id = options_.node_id;
  auto idx = v->ring->index_of(options_.node_id);
  v->self = idx ? *idx : ring::kNoServer;
  v->n = config_.effective_replicas();
  v->w = config_.effective_write_quorum();
  v->r = config_.effective_read_quorum();
  Millis now = clock_.now_ms();
  for (const auto& s : v->ring->servers()) {
    const ServerInfo* info = config_.find(s.id);
    v->addresses.push_back(info ? info->address : std::string());
    bool live = s.id == options_.node_id;
    if (!live) {
      auto it = last_seen_ms_.find(s.id);
      live = it != last_seen_ms_.end() && now - it->second < options_.down_after_ms;
    }
    v->live.push_back(live ? 1 : 0);
  }
  v->pending = pending_;
  v->distributed = v->ring->server_count() > 1 || v->self == ring::kNoServer || v->previous;
  bool epoch_changed = !view_ || view_->config.epoch != v->config.epoch;
  view_ = std::move(v);
  view_version_.fetch_add(1, std::memory_order_release);
  if (epoch_changed) {
    for (size_t i = 0; i < loops_.size(); ++i)
      loops_[i]->post([this, i] { run_waiters(i, false); });
  }
}

void Cluster::quiesce_loops() {
  // REQUIRES: not on a loop thread, mu_ not held.
  struct Latch {
    std::mutex mu;
    std::condition_variable cv;
    size_t left;
  };
  auto latch = std::make_shared<Latch>();
  latch->left = loops_.size();
  for (auto* loop : loops_) {
    if (loop->stopping()) {
      std::lock_guard<std::mutex> g(latch->mu);
      --latch->left;
      continue;
    }
    loop->post([latch] {
      std::lock_guard<std::mutex> g(latch->mu);
      if (--latch->left == 0) latch->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> g(latch->mu);
  latch->cv.wait_for(g, std::chrono::seconds(2), [&] { return latch->left == 0; });
}

void Cluster::drop_unheld_ranges() {
  RingConfig cfg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.migration || !pending_.empty()) return;
    cfg = config_;
  }
  auto r = build_ring(cfg.ring_servers(), cfg.vnodes);
  if (!r) return;
  auto idx = (*r)->index_of(options_.node_id);
  auto all = (*r)->ranges(cfg.effective_replicas());
  if (!all) return;
  size_t dropped = 0;
  for (const auto& rr : *all) {
    if (idx && std::find(rr.replicas.begin(), rr.replicas.end(), *idx) != rr.replicas.end())
      continue;
    dropped += store_.drop_range(rr.range.first, rr.range.last);
  }
  if (dropped > 0) LOG_NOTICE("Dropped %zu stray keys of ranges this node does not hold", dropped);
}

void Cluster::when_epoch(size_t loop_index, uint64_t epoch, Millis max_wait_ms,
                         std::function<void()> fn) {
  LoopState& ls = loop_states_[loop_index];
  if (view(loop_index).config.epoch >= epoch) {
    fn();
    return;
  }
  ls.waiters.emplace_back(epoch, clock_.now_ms() + max_wait_ms, std::move(fn));
  if (!ls.waiter_timer) {
    ls.waiter_timer = std::make_unique<net::Timer>(*loops_[loop_index]);
    ls.waiter_timer->start(20, 20, [this, loop_index] { run_waiters(loop_index, true); });
  }
  wake_.notify_all();  // look for the new configuration now
}

void Cluster::run_waiters(size_t loop_index, bool expire_only) {
  LoopState& ls = loop_states_[loop_index];
  if (ls.waiters.empty()) return;
  uint64_t applied = view(loop_index).config.epoch;
  Millis now = clock_.now_ms();
  std::vector<std::function<void()>> ready;
  auto& w = ls.waiters;
  for (size_t i = 0; i < w.size();) {
    auto& [epoch, deadline, fn] = w[i];
    if (epoch <= applied || now >= deadline || (!expire_only && false)) {
      ready.push_back(std::move(fn));
      w.erase(w.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  for (auto& fn : ready) fn();
}

PeerLink& Cluster::link(size_t loop_index, const std::string& peer_id, int kind) {
  const int protocol = kind == 3 ? 3 : 2;
  LoopState& ls = loop_states_[loop_index];
  auto key = std::make_pair(peer_id, kind);
  auto it = ls.links.find(key);
  if (it != ls.links.end()) {
    it->second->announce_epoch(ls.view ? ls.view->config.epoch : 0);
    return *it->second;
  }
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const ServerInfo* s = config_.find(peer_id);
    if (s) address = s->address;
    if (address.empty() && config_.migration) {
      for (const auto& f : config_.migration->from)
        if (f.id == peer_id) address = f.address;
    }
  }
  PeerLink::Options o;
  o.my_id = options_.node_id;
  o.password = options_.password;
  o.protocol = protocol;
  o.timeout_ms = options_.peer_timeout_ms;
  o.on_broken = [this] { beat_now_.store(true, std::memory_order_relaxed); };
  auto l = std::make_unique<PeerLink>(*loops_[loop_index], peer_id, address, o);
  PeerLink& ref = *l;
  ls.links.emplace(key, std::move(l));
  ref.announce_epoch(ls.view ? ls.view->config.epoch : 0);
  return ref;
}

bool Cluster::source_usable(const std::string& id) const {
  if (!peer_live(id)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peer_ready_.find(id);
  return it == peer_ready_.end() || it->second;
}

bool Cluster::peer_live(const std::string& id) const {
  if (id == options_.node_id) return true;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_seen_ms_.find(id);
  return it != last_seen_ms_.end() && clock_.now_ms() - it->second < options_.down_after_ms;
}

// ---------------------------------------------------------------- replication (loop side)

void Cluster::replicate(size_t loop_index, std::vector<ChangeRecord> records,
                        std::function<void(int, int, std::string)> done) {
  const View& v = view(loop_index);
  struct State {
    std::vector<int> got, outstanding;
    int needed;
    size_t satisfied = 0;
    size_t records;
    bool finished = false;
    bool satisfied_all = false;
    size_t extra_left = 0;  // answers still awaited from old holders (migration)
    int acks = 0;
    std::string error;
    std::function<void(int, int, std::string)> done;
  };
  auto st = std::make_shared<State>();
  st->records = records.size();
  st->got.assign(records.size(), 0);
  st->outstanding.assign(records.size(), 0);
  st->needed = static_cast<int>(v.w) - 1;
  st->done = std::move(done);
  // Success needs W-1 acks per record and, during a migration, an answer (any answer) from
  // every old holder, so that a read routed with the previous epoch sees this write.
  auto finish = [st](bool ok) {
    if (st->finished) return;
    if (ok) {
      st->satisfied_all = true;
      if (st->extra_left > 0) return;
    }
    st->finished = true;
    st->done(st->acks, st->needed, ok ? std::string() : st->error);
  };
  std::vector<std::pair<size_t, std::string>> sends;  // (record, replica) counted for W
  std::vector<std::pair<size_t, std::string>> extra;  // old holders during a migration
  for (size_t i = 0; i < records.size(); ++i) {
    uint32_t list[ring::kMaxReplicasLimit];
    size_t k = v.replicas_of(records[i].token, list);
    std::vector<std::string> targets;
    for (size_t j = 0; j < k; ++j) {
      const std::string& peer = v.ring->servers()[list[j]].id;
      targets.push_back(peer);
      if (list[j] == v.self) continue;
      if (!v.live[list[j]]) {
        add_hint(peer, records[i].key);
        continue;
      }
      sends.emplace_back(i, peer);
      ++st->outstanding[i];
    }
    if (v.previous) {
      // While data moves, the old holders keep receiving writes too, so a node still routing
      // with the previous epoch, or a read-through, never sees an older value.
      uint32_t old_list[ring::kMaxReplicasLimit];
      size_t ko = v.previous->preference_list(records[i].token, v.n, old_list);
      for (size_t j = 0; j < ko; ++j) {
        const std::string& peer = v.previous->servers()[old_list[j]].id;
        if (peer == v.self_id || std::find(targets.begin(), targets.end(), peer) != targets.end())
          continue;
        extra.emplace_back(i, peer);
      }
    }
    if (st->needed <= 0) ++st->satisfied;
  }
  st->extra_left = extra.size();
  for (auto& [i, peer] : extra) {
    const ChangeRecord& r = records[i];
    std::string expire = std::to_string(r.expire_at);
    std::string version = std::to_string(r.version);
    link(loop_index, peer, kControl)
        .send({"RINGKV.REPL", r.key, r.value, expire, version, r.tombstone ? "t" : ""},
              [st](bool, std::string_view) {
                if (--st->extra_left == 0 && st->satisfied_all && !st->finished) {
                  st->finished = true;
                  st->done(st->acks, st->needed, std::string());
                }
              });
  }
  // Records that cannot reach the quorum even if every send succeeds fail now.
  for (size_t i = 0; i < records.size(); ++i) {
    if (st->needed > 0 && st->outstanding[i] < st->needed) {
      st->error = "NOREPLICAS Not enough good replicas to write.";
      finish(false);
      break;
    }
  }
  if (st->satisfied == st->records) finish(true);
  for (auto& [i, peer] : sends) {
    const ChangeRecord& r = records[i];
    std::string expire = std::to_string(r.expire_at);
    std::string version = std::to_string(r.version);
    std::vector<std::string_view> args = {"RINGKV.REPL", r.key,   r.value,
                                          expire,        version, r.tombstone ? "t" : ""};
    std::string key = r.key;
    link(loop_index, peer, kControl)
        .send(args, [this, st, i, peer, key, finish](bool ok, std::string_view reply) {
          --st->outstanding[i];
          if (ok && !resp::reply_is_error(reply)) {
            ++st->got[i];
            ++st->acks;
            if (st->needed > 0 && st->got[i] == st->needed && ++st->satisfied == st->records)
              finish(true);
          } else {
            add_hint(peer, key);
            if (st->error.empty()) st->error = "NOREPLICAS Not enough good replicas to write.";
            if (st->got[i] + st->outstanding[i] < st->needed) finish(false);
          }
        });
  }
}

void Cluster::fetch_entry(size_t loop_index, const std::string& key, const PendingRange& from,
                          std::function<void()> done) {
  auto sources = std::make_shared<std::vector<std::string>>();
  for (const auto& s : from.sources)
    if (source_usable(s)) sources->push_back(s);
  fetch_from(loop_index, key, sources, 0, std::move(done));
}

void Cluster::fetch_from(size_t loop_index, const std::string& key,
                         std::shared_ptr<std::vector<std::string>> sources, size_t i,
                         std::function<void()> done) {
  if (i >= sources->size()) {
    done();
    return;
  }
  link(loop_index, (*sources)[i], kControl)
      .send({"RINGKV.GETENTRY", key},
            [this, loop_index, key, sources, i, done](bool ok, std::string_view reply) {
              if (!ok || resp::reply_is_error(reply)) {
                // Unreachable, or still recovering that range itself: ask the next holder.
                fetch_from(loop_index, key, sources, i + 1, done);
                return;
              }
              apply_entry_reply(key, reply);
              done();
            });
}

void Cluster::apply_entry_reply(const std::string& key, std::string_view reply) {
  std::vector<std::string_view> parts;
  if (!resp::split_aggregate(reply, &parts) || parts.size() != 4) return;
  std::string_view value, expire, version, flags;
  int64_t e = -1;
  uint64_t ver = 0;
  if (resp::reply_string(parts[0], &value) && resp::reply_string(parts[1], &expire) &&
      resp::reply_string(parts[2], &version) && resp::reply_string(parts[3], &flags) &&
      parse_int64(expire, &e) && parse_uint64(version, &ver)) {
    store_.apply(key, token_of(key), value, e, ver, flags == "t", clock_.now_ms());
  }
}

void Cluster::read_repair(size_t loop_index, const std::string& key,
                          const std::vector<std::string>& peers, std::function<void()> done) {
  if (peers.empty()) {
    done();
    return;
  }
  auto left = std::make_shared<size_t>(peers.size());
  for (const auto& p : peers) {
    link(loop_index, p, kControl)
        .send({"RINGKV.GETENTRY", key}, [this, key, left, done](bool ok, std::string_view reply) {
          if (ok && !resp::reply_is_error(reply)) apply_entry_reply(key, reply);
          if (--*left == 0) done();
        });
  }
}

void Cluster::add_hint(const std::string& peer, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& set = hints_[peer];
  if (set.size() < kMaxHintsPerPeer) set.insert(key);
}

void Cluster::clear_hints() {
  std::lock_guard<std::mutex> lock(mu_);
  hints_.clear();
}

// ---------------------------------------------------------------- configuration

void Cluster::apply_config(const RingConfig& cfg) {
  std::unique_lock<std::mutex> lock(mu_);
  if (cfg.epoch <= config_.epoch && config_.epoch != 0) return;
  RingConfig old = config_;
  bool first = old.epoch == 0;
  config_ = cfg;
  applied_epoch_ = cfg.epoch;
  // A peer we have not heard from yet counts as up until a heartbeat says otherwise: requests
  // to a dead peer fail fast, while assuming the worst would refuse writes for no reason.
  for (const auto& s : cfg.servers)
    if (s.id != options_.node_id && !last_seen_ms_.count(s.id))
      last_seen_ms_[s.id] = clock_.now_ms();
  const ServerInfo* me = cfg.find(options_.node_id);
  if (me && me->ordinal > 0 && me->ordinal <= HybridClock::kMaxNode) hlc_.set_node(me->ordinal);
  size_t ring_size = cfg.ring_servers().size();
  store_.set_keep_tombstones(ring_size > 1 || cfg.migration.has_value());

  auto ring_now = build_ring(cfg.ring_servers(), cfg.vnodes);
  if (!ring_now) {
    LOG_WARNING("Can't build the ring of epoch %llu: %s",
                static_cast<unsigned long long>(cfg.epoch), ring_now.status().message().c_str());
    return;
  }
  uint32_t n = cfg.effective_replicas();

  // No migration in progress and the ring changed (a migration finished, possibly in epochs
  // this node never saw): drop every range this node does not hold any more. New holders
  // confirmed their copies before the migration could finish.
  bool ring_changed = old.epoch == 0 || old.migration.has_value() ||
                      old.ring_servers().size() != cfg.ring_servers().size();
  if (!first && !cfg.migration && ring_changed) {
    // Loops that began a request with the previous view finish it before the drop, so a
    // replicated copy they accepted under that view cannot land after it.
    publish_view();
    lock.unlock();
    quiesce_loops();
    lock.lock();
    auto idx = (*ring_now)->index_of(options_.node_id);
    auto all = (*ring_now)->ranges(n);
    size_t dropped = 0, ranges = 0;
    if (all) {
      for (const auto& rr : *all) {
        if (idx && std::find(rr.replicas.begin(), rr.replicas.end(), *idx) != rr.replicas.end())
          continue;
        size_t d = store_.drop_range(rr.range.first, rr.range.last);
        dropped += d;
        ranges += d > 0;
      }
    }
    if (dropped > 0) {
      LOG_NOTICE("Epoch %llu: dropped %zu keys in %zu ranges this node no longer holds",
                 static_cast<unsigned long long>(cfg.epoch), dropped, ranges);
    }
  }

  // Started with an empty store while the ring counts on us (a restart): take back every range
  // this node holds from the other holders; during a migration, from both rings' holders.
  // Until a range is back, reads of keys it lacks go to them (read-through).
  const bool recover = first && me && me->state != ServerState::kLeaving &&
                       ((ring_size > 1 && n > 1) || cfg.migration.has_value());
  std::shared_ptr<const ring::Ring> prev_ring;
  if (cfg.migration) {
    auto p = build_ring(cfg.migration->from, cfg.vnodes);
    if (p) prev_ring = std::move(p).value();
  }
  if (recover) {
    auto idx = (*ring_now)->index_of(options_.node_id);
    auto mine = (*ring_now)->ranges(n);
    if (idx && mine) {
      pending_.clear();
      for (const auto& rr : *mine) {
        if (std::find(rr.replicas.begin(), rr.replicas.end(), *idx) == rr.replicas.end()) continue;
        std::vector<std::string> current;
        for (uint32_t s : rr.replicas)
          if (s != *idx) current.push_back((*ring_now)->servers()[s].id);
        if (!prev_ring) {
          pending_.push_back(PendingRange{rr.range, current});
          continue;
        }
        // Split along the previous ring's ranges: each piece has its own old holders.
        for (size_t k = prev_ring->range_index(rr.range.first); k < prev_ring->range_count(); ++k) {
          ring::TokenRange pr = prev_ring->range(k);
          if (pr.first > rr.range.last) break;
          PendingRange piece;
          piece.range.first = std::max(pr.first, rr.range.first);
          piece.range.last = std::min(pr.last, rr.range.last);
          uint32_t list[ring::kMaxReplicasLimit];
          size_t kk = prev_ring->preference_list(piece.range.first, n, list);
          for (size_t j = 0; j < kk; ++j) {
            const std::string& id = prev_ring->servers()[list[j]].id;
            if (id != options_.node_id) piece.sources.push_back(id);
          }
          for (const auto& c : current)
            if (std::find(piece.sources.begin(), piece.sources.end(), c) == piece.sources.end())
              piece.sources.push_back(c);
          pending_.push_back(std::move(piece));
          if (pr.last >= rr.range.last) break;
        }
      }
      recovering_ = true;
      gains_for_ = cfg.migration ? cfg.migration->id : 0;
      progress_ = Progress{};
      progress_.moving = !pending_.empty();
      progress_.migration_id = gains_for_;
      progress_.started_ms = clock_.now_ms();
      if (pending_.empty()) {
        recovering_ = false;
        if (gains_for_) migration_done_ = gains_for_;
      }
      LOG_NOTICE("Recovering %zu ranges from the other holders", pending_.size());
    }
  } else if (cfg.migration && gains_for_ != cfg.migration->id && prev_ring) {
    // A migration that involves this node: the ranges it gains, each from its old holders (the
    // old primary first: it executed every write of the old epoch).
    auto plan = ring::diff(*prev_ring, **ring_now, n);
    if (plan) {
      pending_.clear();
      for (const auto& t : plan->gains_of(options_.node_id)) {
        PendingRange p;
        p.range = t.range;
        for (uint32_t s : t.sources) p.sources.push_back(plan->servers[s]);
        pending_.push_back(std::move(p));
      }
      recovering_ = false;
      gains_for_ = cfg.migration->id;
      progress_ = Progress{};
      progress_.moving = !pending_.empty();
      progress_.migration_id = cfg.migration->id;
      progress_.started_ms = clock_.now_ms();
      if (pending_.empty()) migration_done_ = cfg.migration->id;
      LOG_NOTICE("Epoch %llu: %s %s; this node receives %zu ranges",
                 static_cast<unsigned long long>(cfg.epoch), cfg.migration->kind.c_str(),
                 cfg.migration->server.c_str(), pending_.size());
    }
  }
  std::sort(pending_.begin(), pending_.end(), [](const PendingRange& a, const PendingRange& b) {
    return a.range.first < b.range.first;
  });
  if (!cfg.migration) {
    progress_.moving = !pending_.empty();
  }
  publish_view();
  lock.unlock();
  transfer_wake_.notify_all();
}

Status Cluster::change_config(const std::function<Result<RingConfig>(const RingConfig&)>& change) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto cur = service_->load();
    if (!cur) return cur.status();
    auto next = change(*cur);
    if (!next) return next.status();
    Status st = service_->store(cur->epoch, *next);
    if (st) {
      apply_config(*next);
      return Status::ok();
    }
    if (st.code() != Code::kFailedPrecondition) return st;
  }
  return Status::failed_precondition("the ring configuration kept changing; try again");
}

namespace {

constexpr const char* kMovingPrefix = "a ring change is still moving data";

// The refusal of a change while another one moves data. RING ADDSERVER/REMOVESERVER wait
// (run_change) before they ever return it; RING PLAN returns it at once.
Status moving_error(const Migration& m) {
  return Status::failed_precondition(std::string(kMovingPrefix) + " (" + m.kind + " " + m.server +
                                     ", epoch " + std::to_string(m.id) +
                                     ") and did not finish within " +
                                     std::to_string(Cluster::kChangeWaitMs / 1000) +
                                     " s; retry when RING INFO shows migration_state:idle");
}

}  // namespace

Result<RingConfig> Cluster::propose_add(const RingConfig& cur, const std::string& id,
                                        const std::string& address, uint32_t weight) {
  Status st = validate_server_id(id);
  if (!st) return st;
  std::string host;
  int port;
  if (!split_address(address, &host, &port))
    return Status::invalid_argument("'" + address + "' is not a host:port address");
  if (weight == 0) return Status::invalid_argument("weight must be at least 1");
  if (cur.migration) {
    return moving_error(*cur.migration);
  }
  if (cur.find(id))
    return Status::already_exists("server '" + id + "' is already in the ring configuration");
  for (const auto& s : cur.servers)
    if (s.address == address)
      return Status::already_exists("address " + address + " is already used by server '" + s.id +
                                    "'");
  if (cur.next_ordinal > HybridClock::kMaxNode)
    return Status::failed_precondition(
        "no server ordinals left (a cluster can have 4095 servers over its life)");
  RingConfig next = cur;
  if (cur.epoch == 0) {
    // The first server creates the ring (etcd starts empty): it gets this node's settings.
    next.vnodes = options_.vnodes;
    next.replicas = options_.replicas;
    next.write_quorum = options_.write_quorum;
    next.read_quorum = options_.read_quorum;
  }
  next.epoch = cur.epoch + 1;
  auto from = cur.ring_servers();
  next.servers.push_back(ServerInfo{id, address, weight,
                                    from.empty() ? ServerState::kUp : ServerState::kJoining,
                                    cur.next_ordinal});
  next.next_ordinal = cur.next_ordinal + 1;
  if (!from.empty()) {
    Migration m;
    m.id = next.epoch;
    m.kind = "addserver";
    m.server = id;
    m.started_ms = clock_.now_ms();
    m.from = from;
    next.migration = m;
  }
  auto r = build_ring(next.ring_servers(), next.vnodes);
  if (!r) return r.status();
  return next;
}

Result<RingConfig> Cluster::propose_remove(const RingConfig& cur, const std::string& id) {
  const ServerInfo* s = cur.find(id);
  if (s == nullptr || s->state == ServerState::kLeaving)
    return Status::not_found("no server '" + id + "' on the ring");
  if (cur.migration) {
    return moving_error(*cur.migration);
  }
  auto from = cur.ring_servers();
  if (from.size() <= 1)
    return Status::failed_precondition("can't remove the last server of the ring");
  RingConfig next = cur;
  next.epoch = cur.epoch + 1;
  for (auto& e : next.servers)
    if (e.id == id) e.state = ServerState::kLeaving;
  Migration m;
  m.id = next.epoch;
  m.kind = "removeserver";
  m.server = id;
  m.started_ms = clock_.now_ms();
  m.from = from;
  next.migration = m;
  return next;
}

Status Cluster::add_server(const std::string& id, const std::string& address, uint32_t weight) {
  Status st = validate_server_id(id);
  if (!st) return st;
  // The address must answer, and be the server it claims to be.
  auto r = sync_client(options_).call(address, {"RINGKV.PING"}, 1000);
  if (!r)
    return Status::unreachable("server '" + id + "' at " + address +
                               " is unreachable: " + r.status().message());
  const redisReply* rep = r->get();
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
      rep->element[0]->type == REDIS_REPLY_STRING) {
    std::string actual(rep->element[0]->str, rep->element[0]->len);
    if (actual != id)
      return Status::invalid_argument("the server at " + address + " has node id '" + actual +
                                      "', not '" + id + "'");
  }
  return change_config(
      [&](const RingConfig& cur) { return propose_add(cur, id, address, weight); });
}

Status Cluster::remove_server(const std::string& id) {
  return change_config([&](const RingConfig& cur) { return propose_remove(cur, id); });
}

void Cluster::run_change(std::function<Status()> change, std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_changes_.push_back(
        PendingChange{clock_.now_ms() + kChangeWaitMs, std::move(change), std::move(done)});
  }
  wake_.notify_all();
}

void Cluster::run_pending_change() {
  PendingChange c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_changes_.empty()) return;
    Millis now = clock_.now_ms();
    if (config_.migration && now < pending_changes_.front().deadline_ms) return;
    c = std::move(pending_changes_.front());
    pending_changes_.pop_front();
  }
  Status st = c.change();
  // Another node may have started a change first: wait for that one too.
  if (!st && st.message().rfind(kMovingPrefix, 0) == 0 && clock_.now_ms() < c.deadline_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_changes_.push_front(std::move(c));
    return;
  }
  c.done(st);
}

void Cluster::run_admin(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    admin_tasks_.push_back(std::move(fn));
  }
  wake_.notify_all();
}

Result<std::vector<Cluster::PlanLine>> Cluster::plan(const RingConfig& proposed) {
  RingConfig cur;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cur = config_;
  }
  auto from = build_ring(cur.ring_servers(), cur.vnodes);
  if (!from) return from.status();
  auto to = build_ring(proposed.ring_servers(), proposed.vnodes);
  if (!to) return to.status();
  auto p = ring::diff(**from, **to, proposed.effective_replicas());
  if (!p) return p.status();
  // Group the transfers by (source, destination); the source is the range's old primary.
  std::map<std::pair<std::string, std::string>, std::vector<ring::TokenRange>> groups;
  for (const auto& m : p->moves) {
    if (m.gainers.empty()) continue;
    const std::string& src = p->servers[m.old_replicas.front()];
    for (uint32_t g : m.gainers) groups[{src, p->servers[g]}].push_back(m.range);
  }
  std::vector<PlanLine> out;
  for (auto& [k, ranges] : groups) {
    PlanLine line;
    line.from = k.first;
    line.to = k.second;
    line.ranges = ranges.size();
    const ServerInfo* s = cur.find(k.first);
    std::vector<std::string> args = {"RINGKV.RANGESTATS"};
    for (const auto& r : ranges) {
      args.push_back(std::to_string(r.first));
      args.push_back(std::to_string(r.last));
    }
    if (s) {
      auto r = sync_client(options_).call(s->address, args, 30000);
      if (!r)
        return Status::unreachable("can't count the keys on '" + k.first +
                                   "': " + r.status().message());
      const redisReply* rep = r->get();
      for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        line.keys += static_cast<uint64_t>(rep->element[i]->integer);
        line.bytes += static_cast<uint64_t>(rep->element[i + 1]->integer);
      }
    }
    out.push_back(line);
  }
  return out;
}

// ---------------------------------------------------------------- control thread

void Cluster::control_loop() {
  using clk = std::chrono::steady_clock;
  auto next_beat = clk::now();
  auto next_report = clk::now();
  while (!stop_) {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks.swap(admin_tasks_);
    }
    for (auto& t : tasks) t();
    run_pending_change();
    auto cfg = service_->wait_newer(applied_epoch_.load(), 20);
    if (stop_) break;
    if (cfg && cfg->epoch > applied_epoch_.load()) apply_config(*cfg);
    auto now = clk::now();
    if (now >= next_beat || beat_now_.exchange(false, std::memory_order_relaxed)) {
      heartbeat();
      next_beat = now + std::chrono::milliseconds(options_.heartbeat_ms);
    }
    if (now >= next_report) {
      report_status();
      maybe_finalize_migration();
      next_report = now + std::chrono::milliseconds(500);
    }
  }
}

void Cluster::heartbeat() {
  std::vector<std::pair<std::string, std::string>> peers;  // id, address
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : config_.servers)
      if (s.id != options_.node_id) peers.emplace_back(s.id, s.address);
    if (config_.migration) {
      for (const auto& s : config_.migration->from) {
        if (s.id == options_.node_id) continue;
        bool known = false;
        for (auto& p : peers) known |= p.first == s.id;
        if (!known) peers.emplace_back(s.id, s.address);
      }
    }
  }
  bool changed = false;
  std::vector<std::string> came_back;
  for (const auto& [id, address] : peers) {
    auto r = sync_client(options_).call(address, {"RINGKV.PING"}, 300);
    Millis now = clock_.now_ms();
    bool ok = false;
    // Nothing listens at the address: the process is gone (a restart makes it come back up),
    // so it is down now, not after down_after_ms of silence.
    bool refused = !r && r.status().message().find("refused") != std::string::npos;
    if (r) {
      const redisReply* rep = r->get();
      ok = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
           rep->element[0]->type == REDIS_REPLY_STRING &&
           std::string(rep->element[0]->str, rep->element[0]->len) == id;
      if (ok && rep->elements >= 3) {
        std::lock_guard<std::mutex> lock(mu_);
        peer_ready_[id] = rep->element[2]->integer != 0;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = last_seen_ms_.find(id);
    bool was_live = it != last_seen_ms_.end() && now - it->second < options_.down_after_ms;
    if (ok) last_seen_ms_[id] = now;
    bool is_live = ok || (was_live && !refused);
    if (ok && !was_live) {
      changed = true;
      came_back.push_back(id);
      LOG_NOTICE("Peer %s (%s) is up", id.c_str(), address.c_str());
    } else if (!is_live && it != last_seen_ms_.end() && it->second != 0) {
      changed = true;
      it->second = 0;
      LOG_WARNING("Peer %s (%s) is down", id.c_str(), address.c_str());
    } else if (!ok && was_live && now - it->second >= options_.down_after_ms) {
      changed = true;
    }
  }
  if (changed) {
    std::lock_guard<std::mutex> lock(mu_);
    publish_view();
  }
  if (!came_back.empty()) transfer_wake_.notify_all();
}

void Cluster::report_status() {
  NodeStatus s;
  s.id = options_.node_id;
  s.address = options_.address;
  s.applied_epoch = applied_epoch_.load();
  s.ready = ready();
  s.keys = store_.size();
  s.bytes = store_.memory_used();
  s.updated_ms = clock_.now_ms();
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.migration_done = migration_done_;
    s.move_keys_total = progress_.keys_total;
    s.move_keys_done = progress_.keys_done;
    s.move_bytes_done = progress_.bytes_done;
  }
  Status st = service_->report(s);
  if (!st) LOG_VERBOSE("Can't report status: %s", st.message().c_str());
  auto all = service_->statuses();
  if (all) {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_ = std::move(all).value();
  }
}

std::vector<NodeStatus> Cluster::last_statuses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return statuses_;
}

Cluster::Progress Cluster::progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  return progress_;
}

void Cluster::maybe_finalize_migration() {
  RingConfig cur;
  std::vector<NodeStatus> statuses;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!config_.migration) return;
    cur = config_;
    statuses = statuses_;
  }
  auto from = build_ring(cur.migration->from, cur.vnodes);
  auto to = build_ring(cur.ring_servers(), cur.vnodes);
  if (!from || !to) return;
  auto plan = ring::diff(**from, **to, cur.effective_replicas());
  if (!plan) return;
  std::set<std::string> gainers;
  for (const auto& m : plan->moves)
    for (uint32_t g : m.gainers) gainers.insert(plan->servers[g]);
  for (const auto& g : gainers) {
    bool done = false;
    for (const auto& s : statuses)
      if (s.id == g && s.migration_done >= cur.migration->id && s.applied_epoch >= cur.epoch)
        done = true;
    if (!done) return;
  }
  uint64_t id = cur.migration->id;
  Status st = change_config([&](const RingConfig& c) -> Result<RingConfig> {
    if (!c.migration || c.migration->id != id)
      return Status::failed_precondition("already finalized");
    RingConfig next = c;
    next.epoch = c.epoch + 1;
    next.migration.reset();
    std::vector<ServerInfo> keep;
    for (auto s : next.servers) {
      if (s.state == ServerState::kLeaving) continue;
      s.state = ServerState::kUp;
      keep.push_back(s);
    }
    next.servers = keep;
    return next;
  });
  if (st)
    LOG_NOTICE("Migration %llu complete: every new holder confirmed its ranges",
               static_cast<unsigned long long>(id));
}

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
        bool all_applied = true;
        Millis now = clock_.now_ms();
        for (const auto& s : cfg.servers) {
          if (s.id == options_.node_id || !peer_live(s.id)) continue;
          bool ok = false;
          for (const auto& st : statuses)
            if (st.id == s.id && st.applied_epoch >= gains_for && now - st.updated_ms < 5000)
              ok = true;
          if (!ok) all_applied = false;
        }
        if (!all_applied) continue;
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
            auto r = sync_client(options_).call(address, args, 30000);
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
  // A range whose holders are all up but not ready stays pending (tried again later).
  auto failed_wait_for = [&](const PendingRange& r) {
    for (const auto& s : r.sources)
      if (peer_live(s)) return true;
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
    if (sources_left[i] == 0) {
      bool any_live = false;
      for (const auto& s : ranges[i].sources) any_live |= peer_live(s);
      if (!any_live) {
        LOG_WARNING("No live source for range [%016llx, %016llx]: its keys cannot be copied",
                    static_cast<unsigned long long>(ranges[i].range.first),
                    static_cast<unsigned long long>(ranges[i].range.last));
      }
    }
  }
  std::vector<char> failed(ranges.size(), 0);
  for (size_t i = 0; i < ranges.size(); ++i)
    if (sources_left[i] == 0 && failed_wait_for(ranges[i])) failed[i] = 1;
  auto complete = [&](size_t i) {
    // REQUIRES: mu_ held.
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const PendingRange& x) { return x.range == ranges[i].range; });
    if (it != pending_.end()) pending_.erase(it);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Ranges nobody alive holds are given up (with the warning above); ranges whose holders
    // are up but still recovering stay pending and are tried again later.
    for (size_t i = 0; i < ranges.size(); ++i)
      if (sources_left[i] == 0 && !failed[i]) complete(i);
    publish_view();
  }
  // Pacing: at most migrate_keys_per_sec keys copied in per second, in calls of about 100 ms
  // worth of keys, so no source's event loop is busy with one huge pipelined batch.
  const int64_t rate = options_.migrate_keys_per_sec;
  size_t pipeline = 64;
  if (rate > 0) {
    pipeline = static_cast<size_t>(
        std::clamp<int64_t>(rate / 10 / std::max(1, options_.batch_keys), 1, 64));
  }
  const auto pace_start = std::chrono::steady_clock::now();
  uint64_t paced_keys = 0;
  auto pace = [&](uint64_t keys) {
    if (rate <= 0) return;
    paced_keys += keys;
    auto due =
        pace_start + std::chrono::microseconds(paced_keys * 1000000 / static_cast<uint64_t>(rate));
    std::unique_lock<std::mutex> lock(mu_);
    transfer_wake_.wait_until(lock, due, [&] { return stop_.load() || gains_for_ != gains_for; });
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
        while (!queue.empty() && batch.size() < pipeline) {
          Job j = queue.front();
          queue.pop_front();
          reqs.push_back({"RINGKV.FETCH", std::to_string(j.cursor),
                          std::to_string(ranges[j.index].range.last),
                          std::to_string(options_.batch_keys)});
          batch.push_back(j);
        }
        auto replies = sync_client(options_).call_many(address, reqs, 30000);
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
        for (size_t b = 0; b < batch.size(); ++b) {
          const redisReply* rep = (*replies)[b].get();
          Job& j = batch[b];
          if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2) {
            failed[j.index] = 1;
            continue;
          }
          bool done = rep->element[0]->integer != 0;
          uint64_t next = 0;
          parse_uint64(std::string_view(rep->element[1]->str, rep->element[1]->len), &next);
          for (size_t i = 2; i + 4 < rep->elements; i += 5) {
            std::string_view k(rep->element[i]->str, rep->element[i]->len);
            std::string_view v(rep->element[i + 1]->str, rep->element[i + 1]->len);
            int64_t expire = rep->element[i + 2]->integer;
            uint64_t version = 0;
            parse_uint64(std::string_view(rep->element[i + 3]->str, rep->element[i + 3]->len),
                         &version);
            bool tomb = rep->element[i + 4]->integer != 0;
            store_.apply(k, token_of(k), v, expire, version, tomb, now);
            ++keys;
            bytes += k.size() + v.size();
          }
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
    }
    if (address.empty()) continue;
    size_t sent = 0;
    for (const auto& k : keys) {
      Token t = token_of(k);
      auto rec = snapshot_entry(store_, k, t, clock_.now_ms());
      if (!rec) continue;
      auto r = sync_client(options_).call(
          address, {"RINGKV.REPL", rec->key, rec->value, std::to_string(rec->expire_at),
                    std::to_string(rec->version), rec->tombstone ? "t" : ""});
      if (!r) {
        add_hint(peer, k);
        continue;
      }
      ++sent;
    }
    if (sent > 0) LOG_NOTICE("Replayed %zu hinted writes to %s", sent, peer.c_str());
  }
}

// ---------------------------------------------------------------- anti-entropy

std::pair<size_t, size_t> Cluster::repair() {
  RingConfig cfg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.migration || !pending_.empty()) return {0, 0};  // data is moving: later
    cfg = config_;
  }
  auto r = build_ring(cfg.ring_servers(), cfg.vnodes);
  if (!r) return {0, 0};
  auto idx = (*r)->index_of(options_.node_id);
  auto all = (*r)->ranges(cfg.effective_replicas());
  if (!idx || !all) return {0, 0};
  // Per peer: the ranges this node is primary of that the peer also holds.
  std::map<std::string, std::vector<ring::TokenRange>> by_peer;
  for (const auto& rr : *all) {
    if (rr.replicas.empty() || rr.replicas[0] != *idx) continue;
    for (size_t j = 1; j < rr.replicas.size(); ++j)
      by_peer[(*r)->servers()[rr.replicas[j]].id].push_back(rr.range);
  }
  size_t compared = 0;
  Millis now = clock_.now_ms();
  std::set<std::pair<Token, Token>> repaired_ranges;
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
      auto replies = sync_client(options_).call_many(address, reqs, 30000);
      if (!replies) return out;
      for (size_t i = off; i < end; ++i) {
        const redisReply* rep = (*replies)[i - off].get();
        if (count) ++compared;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) continue;
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
    if (stop_ || !peer_live(peer)) continue;
    std::string address = address_of(peer);
    for (const auto& range : differing(address, ranges, true)) {
      repaired_ranges.emplace(range.first, range.last);
      Token cursor = range.first;
      for (;;) {
        auto f = sync_client(options_).call(
            address, {"RINGKV.FETCH", std::to_string(cursor), std::to_string(range.last), "1000"},
            30000);
        if (!f) break;
        const redisReply* fr = f->get();
        if (fr->type != REDIS_REPLY_ARRAY || fr->elements < 2) break;
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
        if (!push.empty()) sync_client(options_).call_many(address, push, 30000);
        push.clear();
        if (next == range.last + 1 || next <= c) break;
        c = next;
      }
    }
  }
  size_t repaired = repaired_ranges.size();
  return {compared, repaired};
}

// ---------------------------------------------------------------- digests

std::pair<uint64_t, uint64_t> Cluster::digest(Token first, Token last, Millis now) const {
  uint64_t count = 0, acc = 0;
  Token cursor = first;
  for (;;) {
    Token next = store_.scan_range(cursor, last, 4096, now, false, [&](const store::EntryView& e) {
      ++count;
      uint64_t h = mix64(e.token() ^ mix64(e.version()) ^ mix64(fnv1a(e.value()) + e.key().size()) ^
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
