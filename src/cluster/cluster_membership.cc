// The ring configuration and the control thread: applying epochs, proposing and queueing ring
// changes (RING ADDSERVER/REMOVESERVER/PLAN), heartbeats, status reports and finishing a
// migration.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "cluster/cluster.h"
#include "cluster/cluster_internal.h"
#include "common/log.h"
#include "common/strings.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

// ---------------------------------------------------------------- configuration

void Cluster::apply_config(const RingConfig& cfg) {
  std::unique_lock<std::mutex> lock(mu_);
  if (cfg.epoch <= config_.epoch && config_.epoch != 0) return;
  RingConfig old = config_;
  // A restarted embedded host starts a one-server ring of its own at epoch 1; the other nodes
  // then write their newer configuration back (restore_service). Taking it is a restart as
  // far as this node's data goes: its ranges come back from the other holders. A newer epoch
  // made from its own ring (RING ADDSERVER of its first peer) names that ring as the one the
  // move starts from.
  const bool restored = started_fresh_ring_ && old.epoch == 1 && cfg.epoch > 1 &&
                        !(cfg.migration && cfg.migration->from.size() == 1 &&
                          cfg.migration->from[0].id == options_.node_id);
  if (old.epoch != 0) started_fresh_ring_ = false;
  if (restored) {
    LOG_WARNING(
        "The other nodes restored ring epoch %llu into the configuration service hosted here "
        "(this node restarted without ring-state-file); it now serves that ring",
        static_cast<unsigned long long>(cfg.epoch));
  }
  bool first = old.epoch == 0 || restored;
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
  // Started with an empty store while the ring counts on us (a restart): take back every range
  // this node holds from the other holders (below).
  const bool recover = first && me && me->state != ServerState::kLeaving &&
                       ((ring_size > 1 && n > 1) || cfg.migration.has_value());
  // A restored host publishes the ring before its ranges are set up to come back (below): not
  // ready meanwhile, or it would answer requests routed to it from its empty store.
  if (restored && recover) {
    recovering_ = true;
    catching_up_ = true;
  }

  // No migration in progress and the ring changed (a migration finished, possibly in epochs
  // this node never saw): drop every range this node does not hold any more. New holders
  // confirmed their copies before the migration could finish.
  bool ring_changed = old.epoch == 0 || old.migration.has_value() ||
                      old.ring_servers().size() != cfg.ring_servers().size();
  if ((!first || restored) && !cfg.migration && ring_changed) {
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

  // The ranges to take back: during a migration, from both rings' holders. Until a range is
  // back, reads of keys it lacks go to them (read-through).
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
      catching_up_ = true;
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

// The refusal of a change while another one moves data. RING PLAN returns it at once;
// RING ADDSERVER/REMOVESERVER wait (run_change) and return it, saying how long they waited,
// only when the move did not finish in time.
Status moving_error(const Migration& m) {
  return Status::failed_precondition(std::string(kMovingPrefix) + " (" + m.kind + " " + m.server +
                                     ", epoch " + std::to_string(m.id) +
                                     "); retry when RING INFO shows migration_state:idle");
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
  if (!from.empty())
    next.migration = Migration{next.epoch, "addserver", id, clock_.now_ms(), std::move(from)};
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
  next.migration = Migration{next.epoch, "removeserver", id, clock_.now_ms(), std::move(from)};
  return next;
}

Status Cluster::add_server(const std::string& id, const std::string& address, uint32_t weight) {
  Status st = validate_server_id(id);
  if (!st) return st;
  {
    // Known already: say so, whatever answers at the address.
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.find(id))
      return Status::already_exists("server '" + id + "' is already in the ring configuration");
  }
  st = probe_new_server(id, address);
  if (!st) return st;
  return change_config(
      [&](const RingConfig& cur) { return propose_add(cur, id, address, weight); });
}

Status Cluster::probe_new_server(const std::string& id, const std::string& address) {
  std::string host;
  int port;
  if (!split_address(address, &host, &port))
    return Status::invalid_argument("'" + address + "' is not a host:port address");
  // The address must answer, and be the server it claims to be.
  auto r = sync_->call(address, {"RINGKV.PING"}, 1000);
  if (!r && r.status().code() == Code::kRefused)
    return Status::invalid_argument("the server at " + address +
                                    " is not a ringkv node: it answered '" + r.status().message() +
                                    "' to RINGKV.PING");
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
  // It must follow this ring's configuration: a node whose own ring names it (this one does
  // not) uses another configuration service (its own, or another cluster's), would never apply
  // this ring's epochs, and would carry writes between two clusters.
  auto rc = sync_->call(address, {"RING", "CONFIG"}, 1000);
  if (rc && (*rc)->type == REDIS_REPLY_STRING) {
    auto theirs = RingConfig::from_json(std::string_view((*rc)->str, (*rc)->len));
    if (theirs && theirs->find(id)) {
      std::string ids;
      for (const auto& s : theirs->servers) ids += (ids.empty() ? "" : ", ") + s.id;
      std::string uri =
          options_.discovery == "local" ? "ringkv://" + options_.address : options_.discovery;
      return Status::failed_precondition(
          "server '" + id + "' at " + address + " follows another ring configuration (epoch " +
          std::to_string(theirs->epoch) + ", servers " + ids + "); start it with --discovery " +
          uri + " to add it to this ring");
    }
  }
  // [id, applied epoch, ...]: a server that runs a newer epoch than this ring's saw a ring this
  // configuration service no longer has (its host restarted without ring-state-file, and the
  // nodes have not restored it yet) or another cluster's.
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
      rep->element[1]->type == REDIS_REPLY_INTEGER) {
    const auto theirs = static_cast<uint64_t>(rep->element[1]->integer);
    auto doc = service_->load();  // the service's epoch: this node may apply it a moment later
    const uint64_t ours = doc ? doc->epoch : applied_epoch_.load();
    if (theirs > ours)
      return Status::failed_precondition(
          "server '" + id + "' at " + address + " runs ring epoch " + std::to_string(theirs) +
          ", newer than this ring's epoch " + std::to_string(ours) +
          ": it follows a ring this configuration service lost (a restart without "
          "ring-state-file; the other nodes restore it) or another cluster's");
  }
  return Status::ok();
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
  if (!st && st.message().rfind(kMovingPrefix, 0) == 0) {
    std::string m = st.message();
    const std::string waited =
        " and did not finish within " + std::to_string(kChangeWaitMs / 1000) + " s";
    size_t at = m.find("; retry");
    m.insert(at == std::string::npos ? m.size() : at, waited);
    st = Status::failed_precondition(m);
  }
  c.done(st);
}

void Cluster::run_admin(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    admin_tasks_.push_back(std::move(fn));
  }
  admin_wake_.notify_all();
}

void Cluster::admin_loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      admin_wake_.wait(lock, [this] { return stop_.load() || !admin_tasks_.empty(); });
      if (stop_) return;
      task = std::move(admin_tasks_.front());
      admin_tasks_.pop_front();
    }
    task();
  }
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
  // Group the transfers by (source, destination). The source is the range's first old holder
  // that is up, as for the move itself: the old primary unless it is down (a dead server being
  // removed is counted from the copies that will be streamed).
  std::map<std::pair<std::string, std::string>, std::vector<ring::TokenRange>> groups;
  for (const auto& m : p->moves) {
    if (m.gainers.empty()) continue;
    const std::string* src = nullptr;
    std::string holders;
    for (uint32_t h : m.old_replicas) {
      if (peer_live(p->servers[h])) {
        src = &p->servers[h];
        break;
      }
      holders += (holders.empty() ? "'" : ", '") + p->servers[h] + "'";
    }
    if (src == nullptr)
      return Status::unreachable("can't count the keys of a range: every server holding it (" +
                                 holders + ") is down");
    for (uint32_t g : m.gainers) groups[{*src, p->servers[g]}].push_back(m.range);
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
      auto r = sync_->call(s->address, args, 30000);
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
  auto next_report = clk::now();
  while (!stop_) {
    run_pending_change();
    auto cfg = service_->wait_newer(applied_epoch_.load(), 20);
    if (stop_) break;
    if (cfg && cfg->epoch > applied_epoch_.load()) apply_config(*cfg);
    if (cfg && cfg->epoch < applied_epoch_.load())
      restore_service(*cfg);
    else if (cfg)
      lost_epoch_warned_.reset();  // the service caught up: a later loss is reported (and restored)
    auto now = clk::now();
    if (now >= next_report) {
      report_status();
      maybe_finalize_migration();
      next_report = now + std::chrono::milliseconds(500);
    }
  }
}

void Cluster::restore_service(const RingConfig& stored) {
  // Once per epoch the service goes back to (lost_epoch_warned_ is cleared when it catches up).
  if (stored.epoch == lost_epoch_warned_) return;
  lost_epoch_warned_ = stored.epoch;
  RingConfig mine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mine = config_;
  }
  // Epochs only move forward: the service lost the document. What an embedded host starts
  // with after a restart without ring-state-file (its own one-server ring at epoch 1) is safe
  // to overwrite when that host is one of this ring's servers: nothing was changed there
  // since. Any other older document (an emptied etcd prefix included) may hold changes made
  // since, or belong to someone else: this node keeps its view and says so.
  const bool fresh = stored.epoch == 1 && !stored.migration && stored.servers.size() == 1 &&
                     mine.find(stored.servers[0].id) != nullptr;
  std::string outcome =
      "This node keeps serving its epoch; ring changes through that service would start from "
      "the service's epoch";
  if (fresh && mine.epoch > stored.epoch) {
    Status st = service_->store(stored.epoch, mine);
    if (st) {
      LOG_WARNING(
          "The ring configuration service (%s) had lost the ring configuration (epoch %llu "
          "there, %llu here: did its node restart without ring-state-file?); restored epoch "
          "%llu into it",
          service_->describe().c_str(), static_cast<unsigned long long>(stored.epoch),
          static_cast<unsigned long long>(mine.epoch), static_cast<unsigned long long>(mine.epoch));
      return;
    }
    if (st.code() == Code::kFailedPrecondition) {
      // Another node restored it first (the next turn sees which epoch).
      LOG_NOTICE(
          "The ring configuration service (%s) had lost the ring configuration; another "
          "node restored it first (%s)",
          service_->describe().c_str(), st.message().c_str());
      return;
    }
    outcome = "Restoring this node's epoch into it failed: " + st.message();
  }
  LOG_WARNING(
      "The ring configuration service (%s) is at epoch %llu, behind epoch %llu applied here: "
      "it lost the ring configuration (did its node restart without ring-state-file?). %s",
      service_->describe().c_str(), static_cast<unsigned long long>(stored.epoch),
      static_cast<unsigned long long>(mine.epoch), outcome.c_str());
}

void Cluster::beat_loop() {
  // Its own thread: the control thread's calls to the configuration service (up to seconds when
  // its host is stopped) and its epoch changes (which wait for the loops) must not delay the
  // pings, or this node's view of its peers goes stale and peers mark each other down.
  while (!stop_) {
    heartbeat();
    std::unique_lock<std::mutex> lock(beat_mu_);
    beat_wake_.wait_for(lock, std::chrono::milliseconds(options_.heartbeat_ms), [this] {
      return stop_.load() || beat_now_.load(std::memory_order_relaxed);
    });
    beat_now_.store(false, std::memory_order_relaxed);
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
  // A step of the round (a ping, within its timeouts) takes far less than down_after_ms / 2. A
  // longer one means this process stood still meanwhile (SIGSTOP, a paused VM): peers that
  // answered before it look down now though they answered, so the round is not fresh (see
  // out_of_touch), and the next one starts at once.
  Millis step = clock_.now_ms();
  bool stood_still = false;
  auto end_step = [&] {
    Millis t = clock_.now_ms();
    if (t - step > options_.down_after_ms / 2) stood_still = true;
    step = t;
  };
  for (const auto& [id, address] : peers) {
    // Tell the peer whether it is caught up with us: 1 when we saw it up at the last beat (so
    // our loops write to it, with the view published then) and hold no hinted writes for it;
    // 2 when we marked it down (we, or others, may have written around it: it catches up
    // before it is a primary again, see note_peer_ping); else 0.
    // With the peer's catch-up round we last learnt (see note_peer_ping): a ping that reaches
    // it late, after it fell behind again, is then recognised as stale.
    const char* flag = "0";
    std::vector<std::string> ping = {"RINGKV.PING", options_.node_id};
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto hints = hints_.find(id);
      auto seen = last_seen_ms_.find(id);
      if (seen != last_seen_ms_.end() && seen->second == 0)
        flag = "2";
      else if (live_locked(id, clock_.now_ms()) &&
               (hints == hints_.end() || hints->second.empty()) && !replaying_.count(id))
        flag = "1";
      ping.emplace_back(flag);
      // And whether we route to it as ready (the view published by our last round says so):
      // until every live peer says yes, it makes every live replica acknowledge its writes
      // (View::handoff). That flag needs the round, which comes with the reply that told us.
      auto round = peer_round_.find(id);
      if (round != peer_round_.end()) {
        ping.push_back(std::to_string(round->second));
        bool routes = live_locked(id, clock_.now_ms()) && peer_ready_locked(id);
        ping.push_back(routes ? "1" : "0");
      }
    }
    auto r = sync_->call(address, ping, 300);
    end_step();
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
        // [id, epoch, ready, 1 when the peer had marked this node down]: learnt here, before
        // this round publishes a view, rather than from the peer's next ping.
        if (rep->elements >= 4 && rep->element[3]->type == REDIS_REPLY_INTEGER &&
            rep->element[3]->integer == 1)
          fall_behind_locked(id);
        if (rep->elements >= 5 && rep->element[4]->type == REDIS_REPLY_INTEGER)
          peer_round_[id] = static_cast<uint64_t>(rep->element[4]->integer);
        bool ready = rep->element[2]->integer != 0;
        // A peer back at epoch 1 after a later one serves a one-server ring of its own: the
        // embedded configuration's host, restarted without its state and with an empty store.
        // It is no primary here until it has taken this ring back (restore_service) and
        // recovered its ranges.
        if (rep->element[1]->type == REDIS_REPLY_INTEGER) {
          auto epoch = static_cast<uint64_t>(rep->element[1]->integer);
          uint64_t& seen_epoch = peer_epoch_[id];
          if (epoch == 1 && seen_epoch > 1) ready = false;
          seen_epoch = std::max(seen_epoch, epoch);
        }
        auto [it, added] = peer_ready_.emplace(id, ready);
        if (added ? !ready : it->second != ready) changed = true;  // routing changes
        if (!added && it->second && !ready) {
          // It stops being a primary without being marked down here (it catches up): stand in
          // for it as for a dead one (View::unrepaired).
          unrepaired_ = true;
          repair_due_ = true;
          ++suspicions_;
        }
        it->second = ready;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = last_seen_ms_.find(id);
    bool was_live = it != last_seen_ms_.end() && now - it->second < options_.down_after_ms;
    if (ok) {
      last_seen_ms_[id] = now;
      down_since_ms_.erase(id);
    }
    bool is_live = ok || (was_live && !refused);
    if (ok && !was_live) {
      changed = true;
      came_back.push_back(id);
      LOG_NOTICE("Peer %s (%s) is up", id.c_str(), address.c_str());
    } else if (!is_live && it != last_seen_ms_.end() && it->second != 0) {
      changed = true;
      it->second = 0;
      down_since_ms_.emplace(id, now);
      // Its last writes may have reached only W copies: the holders standing in for it
      // compare their copies (one repair round on the transfer thread), and until then bring
      // the newest live copy of a key before running a command on it (View::unrepaired).
      repair_due_ = true;
      unrepaired_ = true;
      ++suspicions_;
      // Not ready when it comes back until it says so: coming back not ready (restarted and
      // recovering, or catching up) is then no ready flag turning 0 above, which would start
      // the stand-in mode and a repair round again. The round this failure starts already
      // compares the copies it could have written without this node; a restarted node has
      // nothing newer, and one that catches up repairs its own ranges.
      peer_ready_[id] = false;
      peer_routes_ready_[id] = false;  // back up, it says so again (View::handoff)
      LOG_WARNING("Peer %s (%s) is down", id.c_str(), address.c_str());
    } else if (!ok && was_live && now - it->second >= options_.down_after_ms) {
      changed = true;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (view_dirty_) {
      view_dirty_ = false;
      changed = true;
    }
    if (catching_up_ && !recovering_) {
      // Ready once every peer we can reach says it is caught up with us.
      Millis now = clock_.now_ms();
      bool all = true;
      for (const auto& [id, address] : peers) {
        if (!live_locked(id, now)) continue;
        auto it = peer_caught_up_.find(id);
        if (it == peer_caught_up_.end() || !it->second) all = false;
      }
      if (all) {
        catching_up_ = false;
        changed = true;
        LOG_NOTICE("Every live peer writes to this node and has replayed its hinted writes: ready");
      }
    }
    if (changed) publish_view();
  }
  end_step();
  if (stood_still) {
    beat_now_.store(true, std::memory_order_relaxed);
    LOG_VERBOSE("This node stood still during a heartbeat round: another round follows at once");
  } else {
    beat_done_ms_.store(clock_.now_ms(), std::memory_order_release);
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
    s.move_id = progress_.migration_id;
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
    note_routes_current();
  }
}

bool all_route_with(const std::vector<std::string>& ids, const std::string& self,
                    const std::vector<NodeStatus>& statuses, uint64_t epoch, Millis now,
                    const std::function<bool(const std::string&)>& live) {
  for (const auto& id : ids) {
    if (id == self || !live(id)) continue;
    auto st = std::find_if(statuses.begin(), statuses.end(), [&](const NodeStatus& x) {
      return x.id == id && x.applied_epoch >= epoch && now - x.updated_ms < 5000;
    });
    if (st == statuses.end()) return false;
  }
  return true;
}

void Cluster::note_routes_current() {
  // REQUIRES: mu_ held.
  if (!config_.migration || routes_current_epoch_ == config_.epoch) return;
  if (applied_epoch_.load() < config_.epoch) return;
  std::vector<std::string> ids;
  for (const auto& s : config_.servers) ids.push_back(s.id);
  for (const auto& s : config_.migration->from) ids.push_back(s.id);
  Millis now = clock_.now_ms();
  // A server that is down applies the newest epoch when it comes back, before it serves.
  if (!all_route_with(ids, options_.node_id, statuses_, config_.epoch, now,
                      [&](const std::string& id) { return live_locked(id, now); }))
    return;
  routes_current_epoch_ = config_.epoch;
  LOG_NOTICE("Epoch %llu: every live server routes with it; writes stop copying to old holders",
             static_cast<unsigned long long>(config_.epoch));
  publish_view();
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

}  // namespace ringkv::cluster
