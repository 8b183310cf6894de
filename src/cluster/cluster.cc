// Cluster: the views event loops route with, peer links and liveness, and replication on the
// loop side (writes, read-through, read repair, hints). The configuration and control thread are
// in cluster_membership.cc, the transfer thread and anti-entropy in cluster_transfer.cc.
#include "cluster/cluster.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "cluster/cluster_internal.h"
#include "common/huge_pages.h"
#include "common/log.h"
#include "common/strings.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

namespace {
// Redis's text, and what differs: Redis refuses the write before running it (min-replicas), while
// here the coordinator has applied it, and it reaches the other copies later (hints,
// anti-entropy).
constexpr const char* kNoReplicas =
    "NOREPLICAS Not enough good replicas to write. (ringkv: the write was applied on this node "
    "and reaches the other copies when they are back; sending it again applies it again)";

constexpr size_t kMaxHintsPerPeer = 1'000'000;

}  // namespace

// ---------------------------------------------------------------- View

uint32_t View::primary(Token t) const { return primary(t, live, ready); }

uint32_t View::primary(Token t, const std::vector<uint8_t>& live_by,
                       const std::vector<uint8_t>& ready_by) const {
  uint32_t list[ring::kMaxReplicasLimit];
  size_t k = ring->preference_list(t, n, list);
  return primary_of(list, k, live_by, ready_by);
}

uint32_t primary_of(const uint32_t* list, size_t k, const std::vector<uint8_t>& live,
                    const std::vector<uint8_t>& ready) {
  for (size_t i = 0; i < k; ++i)
    if (ready[list[i]]) return list[i];
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

std::optional<ChangeRecord> snapshot_entry(store::Store& store, std::string_view key, Token token) {
  // A raw look at the entry, tombstones included, without expiring it (its expiry travels).
  std::optional<ChangeRecord> out;
  store.peek(key, token, [&](const store::EntryView& e) {
    ChangeRecord r;
    r.key.assign(key);
    r.token = token;
    r.tombstone = e.tombstone();
    if (!r.tombstone) append_advised(&r.value, e.value());
    r.expire_at = e.expire_at();
    r.version = e.version();
    out = std::move(r);
  });
  return out;
}

// ---------------------------------------------------------------- lifecycle

Cluster::Cluster(ClusterOptions options, store::Store& store, HybridClock& hlc, const Clock& clock)
    : options_(std::move(options)),
      store_(store),
      hlc_(hlc),
      clock_(clock),
      sync_(std::make_unique<SyncClient>(options_.node_id, options_.password, 1000)),
      migrate_rate_(options_.migrate_keys_per_sec) {
  catch_up_round_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
}

Cluster::~Cluster() { stop(); }

Status Cluster::start(std::vector<net::EventLoop*> loops) {
  loops_ = std::move(loops);
  loop_states_.resize(loops_.size());
  auto svc = open_config_service(options_.discovery, options_.state_file, options_.password,
                                 options_.node_id);
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
    std::lock_guard<std::mutex> lock(mu_);
    started_fresh_ring_ = true;
  }
  apply_config(c);
  report_status();
  control_ = std::thread([this] { control_loop(); });
  beat_ = std::thread([this] { beat_loop(); });
  transfer_ = std::thread([this] { transfer_loop(); });
  admin_ = std::thread([this] { admin_loop(); });
  LOG_NOTICE("Cluster node '%s' at %s, configuration service %s, epoch %llu",
             options_.node_id.c_str(), options_.address.c_str(), service_->describe().c_str(),
             static_cast<unsigned long long>(c.epoch));
  return Status::ok();
}

void Cluster::set_migration_rate(int64_t keys_per_sec) {
  {
    // Under mu_, so a pace wait between checking the rate and sleeping cannot miss the change.
    std::lock_guard<std::mutex> lock(mu_);
    migrate_rate_ = keys_per_sec;
  }
  transfer_wake_.notify_all();
}

void Cluster::stop() {
  if (stop_.exchange(true)) return;
  {
    // The admin thread checks stop_ under mu_ before it waits: taking mu_ here means it either
    // saw stop_ or is already waiting when notified.
    std::lock_guard<std::mutex> lock(mu_);
  }
  wake_.notify_all();
  transfer_wake_.notify_all();
  admin_wake_.notify_all();
  // As for the admin thread: the heartbeat thread saw stop_, or is waiting when notified.
  std::unique_lock<std::mutex>(beat_mu_).unlock();
  beat_wake_.notify_all();
  // The threads' blocking calls under way (a plan or a range pull waiting on a hung peer, up to
  // 30 s) fail now, so that they end without waiting for their timeouts.
  sync_->shutdown();
  if (control_.joinable()) control_.join();
  if (beat_.joinable()) beat_.join();
  if (transfer_.joinable()) transfer_.join();
  if (admin_.joinable()) admin_.join();
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
  for (const auto& s : v->ring->servers()) {
    const ServerInfo* info = config_.find(s.id);
    v->addresses.push_back(info ? info->address : std::string());
  }
  holder_flags_locked(*v->ring, !recovering_ && !catching_up_, &v->live, &v->ready);
  v->pending = pending_;
  v->recovering = recovering_;
  v->unrepaired = unrepaired_;
  v->behind = behind_;
  v->handoff = handoff_locked(*v);
  v->previous_routes_gone = v->previous && routes_current_epoch_ == config_.epoch;
  v->distributed = v->ring->server_count() > 1 || v->self == ring::kNoServer || v->previous;
  bool epoch_changed = !view_ || view_->config.epoch != v->config.epoch;
  view_ = std::move(v);
  view_version_.fetch_add(1, std::memory_order_release);
  if (epoch_changed) {
    for (size_t i = 0; i < loops_.size(); ++i) loops_[i]->post([this, i] { run_waiters(i); });
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
  arm_waiter_timer(loop_index);
  wake_.notify_all();  // look for the new configuration now
}

void Cluster::arm_waiter_timer(size_t loop_index) {
  LoopState& ls = loop_states_[loop_index];
  if (!ls.waiter_timer) ls.waiter_timer = std::make_unique<net::Timer>(*loops_[loop_index]);
  if (ls.waiters.empty()) {
    ls.waiter_timer->stop();
    return;
  }
  Millis first = std::get<1>(ls.waiters.front());
  for (const auto& w : ls.waiters) first = std::min(first, std::get<1>(w));
  const Millis now = clock_.now_ms();
  ls.waiter_timer->start(static_cast<uint64_t>(std::max<Millis>(1, first - now)), 0,
                         [this, loop_index] { run_waiters(loop_index); });
}

void Cluster::run_waiters(size_t loop_index) {
  LoopState& ls = loop_states_[loop_index];
  if (ls.waiters.empty()) return;
  uint64_t applied = view(loop_index).config.epoch;
  Millis now = clock_.now_ms();
  std::vector<std::function<void()>> ready;
  auto& w = ls.waiters;
  for (size_t i = 0; i < w.size();) {
    auto& [epoch, deadline, fn] = w[i];
    if (epoch <= applied || now >= deadline) {
      ready.push_back(std::move(fn));
      w.erase(w.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  for (auto& fn : ready) fn();
  arm_waiter_timer(loop_index);
}

void Cluster::set_password(const std::string& password) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    options_.password = password;
  }
  sync_->set_password(password);
  if (service_) service_->set_password(password);
  for (size_t i = 0; i < loops_.size(); ++i) {
    loops_[i]->post([this, i, password] {
      for (auto& [key, l] : loop_states_[i].links) l->set_password(password);
    });
  }
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    o.password = options_.password;
  }
  o.protocol = protocol;
  o.timeout_ms = options_.peer_timeout_ms;
  o.on_broken = [this] {
    beat_now_.store(true, std::memory_order_relaxed);
    beat_wake_.notify_one();
  };
  o.peer_live = [this, peer_id] { return peer_live(peer_id); };
  auto l = std::make_unique<PeerLink>(*loops_[loop_index], peer_id, address, o);
  PeerLink& ref = *l;
  ls.links.emplace(key, std::move(l));
  ref.announce_epoch(ls.view ? ls.view->config.epoch : 0);
  return ref;
}

bool Cluster::source_usable(const std::string& id, bool trust_liveness) const {
  if (trust_liveness && !peer_live(id)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return peer_ready_locked(id);
}

bool Cluster::peer_ready_locked(const std::string& id) const {
  auto it = peer_ready_.find(id);
  return it == peer_ready_.end() || it->second;
}

bool Cluster::peer_live(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_locked(id, clock_.now_ms());
}

void Cluster::holder_flags_locked(const ring::Ring& ring, bool self_ready,
                                  std::vector<uint8_t>* live, std::vector<uint8_t>* ready) const {
  Millis now = clock_.now_ms();
  for (const auto& s : ring.servers()) {
    bool l = live_locked(s.id, now);
    bool rd = false;
    if (s.id == options_.node_id) {
      rd = self_ready;
    } else if (l) {
      rd = peer_ready_locked(s.id);
    }
    live->push_back(l ? 1 : 0);
    ready->push_back(rd ? 1 : 0);
  }
}

bool Cluster::handoff_locked(const View& v) const {
  if (recovering_ || catching_up_ || v.self == ring::kNoServer) return false;
  // Every server that may route a request: the current ring's, and a previous ring's.
  for (const ring::Ring* r : {v.ring.get(), v.previous.get()}) {
    if (r == nullptr) continue;
    for (const auto& s : r->servers()) {
      if (s.id == options_.node_id || !live_locked(s.id, clock_.now_ms())) continue;
      auto it = peer_routes_ready_.find(s.id);
      if (it == peer_routes_ready_.end() || !it->second) return true;
    }
  }
  return false;
}

bool Cluster::live_locked(const std::string& id, Millis now) const {
  if (id == options_.node_id) return true;
  auto it = last_seen_ms_.find(id);
  return it != last_seen_ms_.end() && now - it->second < options_.down_after_ms;
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
    size_t extra_left = 0;  // answers still awaited from old holders and unready replicas
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
  // every old holder, so that a read routed with the previous epoch sees this write. It also
  // needs an answer from every replica that is live but not ready (catching up after a
  // restart): once it is ready, other nodes make it primary, one by one, while this node may
  // still act as primary for a moment; it must then already hold every acknowledged write.
  // The same holds the other way round (await_all below).
  auto finish = [st](bool ok) {
    if (st->finished) return;
    if (ok) {
      st->satisfied_all = true;
      if (st->extra_left > 0) return;
    }
    st->finished = true;
    st->done(st->acks, st->needed, ok ? std::string() : st->error);
  };
  // An awaited answer (old holder, replica not ready) came: the last one may end the wait.
  auto answered = [st] {
    if (--st->extra_left == 0 && st->satisfied_all && !st->finished) {
      st->finished = true;
      st->done(st->acks, st->needed, std::string());
    }
  };
  struct Send {
    size_t record;
    std::string peer;
    bool awaited;  // a replica not ready yet: its answer is awaited too
  };
  std::vector<Send> sends;                            // counted for W
  std::vector<std::pair<size_t, std::string>> extra;  // old holders during a migration
  for (size_t i = 0; i < records.size(); ++i) {
    uint32_t list[ring::kMaxReplicasLimit];
    size_t k = v.replicas_of(records[i].token, list);
    // Where routers may disagree on the key's primary, every live replica's answer is awaited:
    // one of them may be the primary to some router, which must then hold this write before
    // the client hears OK. So while this node's handoff runs (it just became ready, and some
    // router may still read the replica that stood in for it), and when this node executed the
    // write without being the primary in its own view (a router with another view sent it).
    const bool await_all = v.handoff || primary_of(list, k, v.live, v.ready) != v.self;
    std::vector<std::string> targets;
    for (size_t j = 0; j < k; ++j) {
      const std::string& peer = v.ring->servers()[list[j]].id;
      targets.push_back(peer);
      if (list[j] == v.self) continue;
      if (!v.live[list[j]]) {
        add_hint(peer, records[i].key);
        continue;
      }
      sends.push_back(Send{i, peer, await_all || !v.ready[list[j]]});
      st->extra_left += sends.back().awaited;
      ++st->outstanding[i];
    }
    // While data moves, the old holders keep receiving writes too, so a node still routing
    // with the previous epoch, or a read-through, never sees an older value. Once every live
    // server routes with the new epoch, a write executed by the key's first holder in the new
    // ring skips them: nothing routes to them any more, and that holder reads through only keys
    // it never wrote. A write executed anywhere else (the first holder is down or seen as down)
    // still goes to them, and read-throughs elsewhere also ask the current holders
    // (fetch_entry).
    if (v.previous && !(v.previous_routes_gone && k > 0 && list[0] == v.self)) {
      uint32_t old_list[ring::kMaxReplicasLimit];
      size_t ko = v.previous->preference_list(records[i].token, v.n, old_list);
      for (size_t j = 0; j < ko; ++j) {
        const std::string& peer = v.previous->servers()[old_list[j]].id;
        if (peer == v.self_id || std::find(targets.begin(), targets.end(), peer) != targets.end())
          continue;
        extra.emplace_back(i, peer);
        old_holder_writes_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (st->needed <= 0) ++st->satisfied;
  }
  st->extra_left += extra.size();
  for (auto& [i, peer] : extra) {
    const ChangeRecord& r = records[i];
    std::string expire = std::to_string(r.expire_at);
    std::string version = std::to_string(r.version);
    link(loop_index, peer, kControl)
        .send({"RINGKV.REPL", r.key, r.value, expire, version, r.tombstone ? "t" : ""},
              [answered](bool, std::string_view) { answered(); });
  }
  // Records that cannot reach the quorum even if every send succeeds fail now.
  for (size_t i = 0; i < records.size(); ++i) {
    if (st->needed > 0 && st->outstanding[i] < st->needed) {
      st->error = kNoReplicas;
      finish(false);
      break;
    }
  }
  if (st->satisfied == st->records) finish(true);
  for (const Send& send : sends) {
    size_t i = send.record;
    const std::string& peer = send.peer;
    bool awaited = send.awaited;
    const ChangeRecord& r = records[i];
    std::string expire = std::to_string(r.expire_at);
    std::string version = std::to_string(r.version);
    std::vector<std::string_view> args = {"RINGKV.REPL", r.key,   r.value,
                                          expire,        version, r.tombstone ? "t" : ""};
    std::string key = r.key;
    link(loop_index, peer, kControl)
        .send(args,
              [this, st, i, peer, key, finish, answered, awaited](bool ok, std::string_view reply) {
                --st->outstanding[i];
                if (ok && !resp::reply_is_error(reply)) {
                  ++st->got[i];
                  ++st->acks;
                  if (st->needed > 0 && st->got[i] == st->needed && ++st->satisfied == st->records)
                    finish(true);
                } else {
                  add_hint(peer, key);
                  if (st->error.empty()) st->error = kNoReplicas;
                  if (st->got[i] + st->outstanding[i] < st->needed) finish(false);
                }
                if (awaited) answered();
              });
  }
}

void Cluster::fetch_entry(size_t loop_index, const std::string& key, const PendingRange& from,
                          std::function<void(bool)> done) {
  read_throughs_.fetch_add(1, std::memory_order_relaxed);
  // Liveness comes from heartbeats: when this node's own last round is old (it was stopped, or
  // its heartbeat thread stood still), every peer looks down though none may be. Ask them anyway
  // (a link times out); only a holder known to be recovering is left out.
  const bool stale = out_of_touch(clock_.now_ms());
  auto sources = std::make_shared<std::vector<std::string>>();
  for (const auto& s : from.sources)
    if (source_usable(s, /*trust_liveness=*/!stale)) sources->push_back(s);
  const View& v = view(loop_index);
  uint32_t list[ring::kMaxReplicasLimit];
  size_t k = v.replicas_of(token_of(key), list);
  if (!v.previous_routes_gone || (k > 0 && list[0] == v.self && !v.recovering)) {
    // The old holders have every write this node did not execute itself.
    fetch_from(loop_index, key, sources, 0, std::move(done));
    return;
  }
  // Writes executed by the key's first holder skip the old holders (replicate): ask the live
  // current holders too, and keep the newest copy (apply merges by version).
  std::vector<std::string> current;
  for (size_t j = 0; j < k; ++j) {
    if (list[j] == v.self || !v.live[list[j]]) continue;
    current.push_back(v.ring->servers()[list[j]].id);
  }
  struct Wait {
    size_t left;
    bool answered = false;
    std::function<void(bool)> done;
  };
  auto wait = std::make_shared<Wait>(Wait{current.size() + 1, false, std::move(done)});
  auto one_done = [wait](bool answered) {
    wait->answered |= answered;
    if (--wait->left == 0) wait->done(wait->answered);
  };
  fetch_from(loop_index, key, sources, 0, one_done);
  for (const auto& peer : current) {
    link(loop_index, peer, kControl)
        .send({"RINGKV.GETENTRY", key}, [this, key, one_done](bool ok, std::string_view reply) {
          const bool answered = ok && !resp::reply_is_error(reply);
          if (answered) apply_entry_reply(key, reply);
          one_done(answered);
        });
  }
}

void Cluster::fetch_from(size_t loop_index, const std::string& key,
                         std::shared_ptr<std::vector<std::string>> sources, size_t i,
                         std::function<void(bool)> done) {
  if (i >= sources->size()) {
    done(false);
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
              done(true);
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

void Cluster::note_peer_ping(const std::string& peer, int flag, std::optional<uint64_t> round,
                             std::optional<bool> routes_ready) {
  std::lock_guard<std::mutex> lock(mu_);
  if (round && *round != catch_up_round_) return;  // sent before this node last fell behind
  if (flag == 2) fall_behind_locked(peer);
  peer_caught_up_[peer] = flag == 1;
  // Without our round the peer has had no reply from us, so it cannot route to us as ready; a
  // peer of an older version sends the round but not the flag.
  bool routes = routes_ready.value_or(round.has_value());
  bool& known = peer_routes_ready_[peer];
  if (known != routes) {
    known = routes;
    // View::handoff may end (or start): the next heartbeat publishes the view.
    if (!recovering_ && !catching_up_) view_dirty_ = true;
  }
}

void Cluster::fall_behind_locked(const std::string& peer) {
  if (recovering_ || behind_) return;
  // The peer had marked this node down (a pause, or a partition): it, or another holder,
  // executed writes around this node, which lacks them until their hints are replayed.
  // Not a primary again until every live peer says it is caught up (a fresh flag from each),
  // and until a repair round, every command here first brings the newest live copy. A reply to
  // the peer's ping already says not ready. This node's last pings may be old, so the view
  // waits for the heartbeat (now, or the one under way) that sees which peers are live.
  catching_up_ = true;
  behind_ = true;
  repair_due_ = true;
  ++catch_up_round_;
  ++suspicions_;
  view_dirty_ = true;
  for (auto& [id, caught_up] : peer_caught_up_) caught_up = false;
  peer_routes_ready_.clear();
  beat_now_.store(true, std::memory_order_relaxed);
  beat_wake_.notify_one();
  LOG_WARNING("Peer %s had marked this node down: catching up before serving as a primary",
              peer.c_str());
}

bool Cluster::marked_down(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_seen_ms_.find(peer);
  return it != last_seen_ms_.end() && it->second == 0;
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

}  // namespace ringkv::cluster
