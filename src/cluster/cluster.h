// The cluster: this node's view of the ring and of its peers, and the machinery that keeps N
// copies of every key while servers come, go and fail.
//
// Threads:
//   - event loops (io-threads) route requests with a View (an immutable snapshot, replaced
//     whole when the configuration or liveness changes; look-ups take no lock) and talk to
//     peers over per-loop PeerLinks (forwarding, replication);
//   - the control thread follows the configuration service (applies each epoch in order),
//     reports this node's status, finalizes migrations and runs admin changes (RING
//     ADDSERVER/REMOVESERVER);
//   - the heartbeat thread pings peers (failure detection), whatever the control thread waits for;
//   - the transfer thread pulls ranges this node gains (migration, recovery after a restart),
//     replays hints to peers that came back, and repairs replicas (anti-entropy);
//   - the admin thread runs admin work that may take long (RING PLAN, RING REPAIR), so that
//     heartbeats, status reports and epochs never wait for it.
// Blocking I/O happens only on the last four.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cluster/config_service.h"
#include "cluster/peer_link.h"
#include "cluster/ring_config.h"
#include "common/clock.h"
#include "net/loop.h"
#include "ringkv/ring.h"
#include "store/store.h"

namespace ringkv::cluster {

class SyncClient;

struct ClusterOptions {
  std::string node_id;
  std::string address;     // host:port this node announces
  std::string discovery;   // local | ringkv://h:p | etcd://h:p/prefix
  std::string state_file;  // where the local backend keeps the document ("" = memory)
  std::string password;    // requirepass: peers authenticate with it
  uint32_t replicas = 3, write_quorum = 2, read_quorum = 1, vnodes = 1024;
  int heartbeat_ms = 250;
  int down_after_ms = 3000;  // a peer silent this long is marked down
  int peer_timeout_ms = 5000;
  int batch_keys = 1000;                 // per range transfer request
  int64_t migrate_keys_per_sec = 50000;  // pace of range copies into this node; 0: unlimited
  // Seconds between anti-entropy rounds. 0: no round runs on its own (neither periodic nor after
  // a recovery or a peer's failure), only RING REPAIR.
  int anti_entropy_s = 60;
};

// Ranges this node is still receiving, and whom to read a missing key from meanwhile.
struct PendingRange {
  ring::TokenRange range;
  std::vector<std::string> sources;  // server ids, preferred first
};

// What the event loops route with. Immutable once published.
struct View {
  RingConfig config;
  std::shared_ptr<const ring::Ring> ring;      // current ring (never null)
  std::shared_ptr<const ring::Ring> previous;  // ring before a migration in progress, else null
  std::string self_id;
  uint32_t self = ring::kNoServer;  // my index on `ring`
  uint32_t n = 1, w = 1, r = 1;
  std::vector<std::string> addresses;  // by ring index
  std::vector<uint8_t> live;           // by ring index: reachable (replicas write to these)
  // By ring index: live and ready (Cluster::ready): a node recovering or catching up (after a
  // restart, or after being marked down) is written to but is no key's primary while another
  // holder is ready.
  std::vector<uint8_t> ready;
  std::vector<PendingRange> pending;  // my incomplete gains, sorted by range
  // True when more than one server is involved: routing and replication are on.
  bool distributed = false;
  // During a migration: every live server has reported routing with this epoch, so no request
  // is routed with the previous ring any more (see Cluster::replicate).
  bool previous_routes_gone = false;
  bool recovering = false;  // pending holds this node's own ranges after a restart
  // A peer went down (or stopped being ready) and no repair round has compared this node's
  // copies with the other live replicas since: a key this node stands in for as primary may be
  // older here than on another replica (its write reached W copies without this one), so a
  // command on it first brings the newest live copy here (Server::copies_to_bring).
  bool unrepaired = false;
  // A peer had marked this node down (a pause, a partition): writes were made around it, so
  // until a repair round, a command on any key first brings the newest live copy here.
  bool behind = false;
  // This node is ready, but some live peer has not yet said (in its RINGKV.PING) that it routes
  // to this node as ready: that peer may still route this node's keys to the replica that stood
  // in for it. Until each has, a write executed here waits for every live replica
  // (Cluster::replicate), so that the stand-in holds it before the client hears OK.
  bool handoff = false;

  // The first ready server of the token's preference list; else the first live one; else the
  // first server.
  uint32_t primary(Token t) const;
  // The same with other live and ready flags (by ring index).
  uint32_t primary(Token t, const std::vector<uint8_t>& live_by,
                   const std::vector<uint8_t>& ready_by) const;
  // The preference list (size n), in ring indices.
  size_t replicas_of(Token t, uint32_t* out) const;
  bool in_pending(Token t, const PendingRange** range = nullptr) const;
  // Does this node hold copies of the token's range (now, or in the ring a migration moves
  // away from)?
  bool holds(Token t) const;
};

// The primary among a preference list's servers (ring indices): the first ready one, else the
// first live one, else the first (kNoServer for an empty list).
uint32_t primary_of(const uint32_t* list, size_t k, const std::vector<uint8_t>& live,
                    const std::vector<uint8_t>& ready);

// Per event loop: the cached view and the links to peers. Loop thread only.
struct LoopState {
  std::shared_ptr<const View> view;
  uint64_t view_version = 0;
  // Requests from peers routed with an epoch this node has not applied yet: (epoch, deadline
  // in ms, continuation). Run when the epoch is applied or the deadline passes.
  std::vector<std::tuple<uint64_t, Millis, std::function<void()>>> waiters;
  std::unique_ptr<net::Timer> waiter_timer;
  std::map<std::pair<std::string, int>, std::unique_ptr<PeerLink>> links;  // (peer id, protocol)
};

struct ChangeRecord {
  std::string key;
  Token token;
  std::string value;
  Millis expire_at;
  Version version;
  bool tombstone;
};

class Cluster {
 public:
  Cluster(ClusterOptions options, store::Store& store, HybridClock& hlc, const Clock& clock);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Opens the configuration service, registers this node, applies the current configuration
  // (creating a one-server ring with the local backend when there is none) and starts the threads.
  Status start(std::vector<net::EventLoop*> loops);
  void stop();

  const std::string& node_id() const { return options_.node_id; }
  const ClusterOptions& options() const { return options_; }
  // CONFIG SET migration-rate: the pace of copies into this node from now on, a copy under way
  // included (0: unlimited).
  void set_migration_rate(int64_t keys_per_sec);
  ConfigService* config_service() { return service_.get(); }
  // Thread-safe (CONFIG SET requirepass): connections to peers and to the configuration service
  // opened from now on authenticate with this password; open ones stay as they are. As Redis's
  // masterauth, it takes effect at the next reconnect.
  void set_password(const std::string& password);
  // The local backend, when this node hosts it (for RINGKV.CFG), else null.
  LocalConfigService* local_service();

  // ---- event loops
  // The view for loop i (refreshed when a new one was published).
  const View& view(size_t loop_index);
  std::shared_ptr<const View> current_view() const;
  // Links carry forwarded client commands (kind 2 or 3: the client's protocol) or control
  // traffic (kControl: replication, read-through, versions, fan-out queries), on separate
  // connections. Control requests are always answered at once, so they never wait behind a
  // forwarded command whose reply itself waits on this node: no cycle through ordered replies.
  static constexpr int kControl = 0;
  PeerLink& link(size_t loop_index, const std::string& peer_id, int kind);
  // Closes loop i's peer links (on loop i's thread, when it stops).
  void close_links(size_t loop_index) {
    loop_states_[loop_index].links.clear();
    loop_states_[loop_index].waiter_timer.reset();
    loop_states_[loop_index].waiters.clear();
  }
  // Runs fn on loop i once this node has applied `epoch` (or after max_wait_ms regardless).
  void when_epoch(size_t loop_index, uint64_t epoch, Millis max_wait_ms, std::function<void()> fn);

  // Replicates records to the key's other replicas; calls done(acks, failures) on loop i once
  // every replica answered or failed. Down replicas get hints instead (counted as failures).
  void replicate(size_t loop_index, std::vector<ChangeRecord> records,
                 std::function<void(int acks, int expected, std::string error)> done);
  // Reads the entry of `key` from a source (during a migration) and applies it locally. `done`
  // says whether a holder answered (with the entry, or that it has none); false when none could
  // be asked or none answered: this node cannot tell the key's value then.
  void fetch_entry(size_t loop_index, const std::string& key, const PendingRange& from,
                   std::function<void(bool answered)> done);
  // Keys read through from a previous holder since start (RING INFO node_read_throughs).
  uint64_t read_throughs() const { return read_throughs_.load(std::memory_order_relaxed); }
  // Writes sent to old holders outside the new replica set during migrations, since start
  // (RING INFO node_old_holder_writes).
  uint64_t old_holder_writes() const { return old_holder_writes_.load(std::memory_order_relaxed); }

  // ---- status
  // False after a restart while this node recovers its ranges, and then (or from a peer's ping
  // saying it had marked this node down) until every live peer has said (in its RINGKV.PING)
  // that it writes to this node and has no hinted writes left for it: until then a peer may hold
  // acknowledged writes this node lacks. Other nodes then neither read from it nor make it a
  // primary.
  bool ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !recovering_ && !catching_up_;
  }
  // A peer's RINGKV.PING flag: 1 when it saw this node up at its last beat and holds no hints
  // for it, 2 when it had marked this node down (a ready node then catches up again), else 0.
  // `round` is the catch-up round the peer last learnt from our ping reply (catch_up_round()):
  // a flag sent before the peer knew of this node's latest fall behind is stale (a ping that
  // waited in a socket while this process was stopped) and is ignored. Without a round (a peer
  // of an older version) the flag counts.
  // `routes_ready`: whether the peer routes to this node as ready (the view it last published
  // says so; absent from a peer of an older version, which counts as yes); it ends View::handoff.
  void note_peer_ping(const std::string& peer, int flag, std::optional<uint64_t> round,
                      std::optional<bool> routes_ready);
  // Changes each time this node falls behind; starts from the start time, so that a peer that
  // knew an earlier process at this address does not match it. RINGKV.PING replies carry it.
  uint64_t catch_up_round() const {
    std::lock_guard<std::mutex> lock(mu_);
    return catch_up_round_;
  }
  // Whether this node has marked the peer down (its RINGKV.PING reply says so to the peer).
  bool marked_down(const std::string& peer) const;
  // True until this node's first heartbeat round ends (no peer looks live before it), and when
  // its last round ended more than down_after_ms / 2 ago (a round during which it stood still
  // does not count, see heartbeat): its process (or its heartbeat thread) stood still, peers may
  // have marked it down and written around it, and its view's liveness is stale. Until the next
  // round ends, a command brings the newest live copy of its keys first (Server::copies_to_bring),
  // as when behind.
  bool out_of_touch(Millis now) const {
    Millis beat = beat_done_ms_.load(std::memory_order_acquire);
    return beat == 0 || now - beat > options_.down_after_ms / 2;
  }
  // RING INFO node_state: "recovering", "catching_up" (see ready()) or "ready".
  const char* readiness() const {
    std::lock_guard<std::mutex> lock(mu_);
    return recovering_ ? "recovering" : catching_up_ ? "catching_up" : "ready";
  }
  uint64_t applied_epoch() const { return applied_epoch_.load(); }
  struct Progress {
    bool moving = false;
    uint64_t migration_id = 0;
    uint64_t keys_total = 0, keys_done = 0, bytes_done = 0;
    Millis started_ms = 0;
  };
  Progress progress() const;
  std::vector<NodeStatus> last_statuses() const;
  bool peer_live(const std::string& id) const;
  // Live and not recovering: a node that may be read from.
  // (With trust_liveness false: not known to be recovering, live or not.)
  bool source_usable(const std::string& id, bool trust_liveness = true) const;
  // Reads the key's entry from each peer and keeps the newest version here (reads with R > 1).
  void read_repair(size_t loop_index, const std::string& key, const std::vector<std::string>& peers,
                   std::function<void()> done);

  // ---- admin (block: call from a non-loop thread)
  Status add_server(const std::string& id, const std::string& address, uint32_t weight);
  Status remove_server(const std::string& id);
  // The migration plan of a hypothetical change, with keys/bytes per source and destination.
  struct PlanLine {
    std::string from, to;
    uint64_t ranges = 0, keys = 0, bytes = 0;
  };
  // Whether `address` is a ringkv node with this id that follows this ring's configuration
  // (RING ADDSERVER's checks of the new server; RING PLAN ADDSERVER makes them too).
  Status probe_new_server(const std::string& id, const std::string& address);
  Result<std::vector<PlanLine>> plan(const RingConfig& proposed);
  Result<RingConfig> propose_add(const RingConfig& cur, const std::string& id,
                                 const std::string& address, uint32_t weight);
  Result<RingConfig> propose_remove(const RingConfig& cur, const std::string& id);
  // Runs fn on the admin thread (for blocking admin work), never on the caller; tasks run one at
  // a time, in the order they came.
  void run_admin(std::function<void()> fn);
  // Runs a ring change (add_server/remove_server) on the control thread once no earlier change is
  // moving data, waiting at most kChangeWaitMs for it; then calls done with the result. Changes
  // run one at a time, in the order they came.
  static constexpr Millis kChangeWaitMs = 600'000;
  void run_change(std::function<Status()> change, std::function<void(Status)> done);

  // ---- data helpers for internal commands
  // Count and 64-bit digest of the live entries with tokens in [first, last].
  std::pair<uint64_t, uint64_t> digest(Token first, Token last, Millis now) const;
  // Keys and bytes stored in each range (sorted, non-overlapping).
  std::vector<std::pair<uint64_t, uint64_t>> range_stats(
      const std::vector<ring::TokenRange>& ranges, Millis now) const;
  // Forgets hints and progress (FLUSHALL).
  void clear_hints();
  // Anti-entropy: for every range this node is the first live holder of, compares digests with
  // the other live replicas and, where they differ, exchanges entries so both keep the newest of
  // each. A round that compared with every live replica ends View::unrepaired. Blocks (admin or
  // transfer thread). Returns (ranges compared, ranges repaired).
  std::pair<size_t, size_t> repair();

 private:
  void control_loop();
  void beat_loop();
  void transfer_loop();
  void admin_loop();
  void apply_config(const RingConfig& cfg);
  // The service's document went back to `stored` (older than the epoch applied here): if it is
  // what a restarted embedded host starts with (its own one-server ring at epoch 1), writes
  // this node's configuration back. Control thread.
  void restore_service(const RingConfig& stored);
  void publish_view();
  // Runs the waiters whose epoch is applied or whose wait is over (on loop i: from its timer,
  // and posted by publish_view when the epoch changes).
  void run_waiters(size_t loop_index);
  // Sets loop i's waiter timer to the earliest waiter's deadline (stops it when none is left).
  void arm_waiter_timer(size_t loop_index);
  void fetch_from(size_t loop_index, const std::string& key,
                  std::shared_ptr<std::vector<std::string>> sources, size_t i,
                  std::function<void(bool answered)> done);
  void apply_entry_reply(const std::string& key, std::string_view reply);
  // Waits until every loop has finished what it was doing (a task posted now has run).
  void quiesce_loops();
  // Drops entries of ranges this node does not hold (only while no migration is running).
  void drop_unheld_ranges();
  void note_routes_current();
  // REQUIRES: mu_ held. Self, or heard from within down_after_ms.
  bool live_locked(const std::string& id, Millis now) const;
  // REQUIRES: mu_ held. A peer had marked this node down (it said so in its ping, or in its
  // reply to ours): catch up and be behind until a repair round, see note_peer_ping.
  void fall_behind_locked(const std::string& peer);
  // REQUIRES: mu_ held. View::handoff for view `v` (its rings and self index set).
  bool handoff_locked(const View& v) const;
  // REQUIRES: mu_ held. Whether peer `id` is ready: true until its ping reply says otherwise.
  bool peer_ready_locked(const std::string& id) const;
  // REQUIRES: mu_ held. Appends each server's live and ready flags (by index on `ring`), as
  // View::primary uses them; this node's ready flag is self_ready.
  void holder_flags_locked(const ring::Ring& ring, bool self_ready, std::vector<uint8_t>* live,
                           std::vector<uint8_t>* ready) const;
  void heartbeat();
  void run_pending_change();
  void report_status();
  void maybe_finalize_migration();
  void drop_lost_ranges(const RingConfig& finished_from, const RingConfig& now);
  // Copies the ranges to this node; false if some range could not be read (retried later).
  bool pull_ranges(const std::vector<PendingRange>& ranges, uint64_t gains_for);
  std::string address_of(const std::string& id);
  void replay_hints();
  void add_hint(const std::string& peer, const std::string& key);
  Status change_config(const std::function<Result<RingConfig>(const RingConfig&)>& change);

  ClusterOptions options_;
  store::Store& store_;
  HybridClock& hlc_;
  const Clock& clock_;
  // The blocking client of the control, transfer and admin threads.
  std::unique_ptr<SyncClient> sync_;
  std::unique_ptr<ConfigService> service_;
  std::vector<net::EventLoop*> loops_;
  std::vector<LoopState> loop_states_;

  mutable std::mutex mu_;  // guards everything below up to the threads
  RingConfig config_;
  std::shared_ptr<const View> view_;
  std::atomic<uint64_t> view_version_{0};
  std::map<std::string, Millis> last_seen_ms_;   // peer id -> last successful ping
  std::map<std::string, bool> peer_ready_;       // from their ping replies
  std::map<std::string, Millis> down_since_ms_;  // peers marked down: since when
  std::vector<PendingRange> pending_;            // my incomplete gains
  uint64_t gains_for_ = 0;                       // the migration (or recovery) pending_ belongs to
  uint64_t migration_done_ = 0;
  bool recovering_ = false;   // pending_ holds this node's own ranges after a restart
  bool catching_up_ = false;  // after a restart, or once a peer says it had marked this node
                              // down, until every live peer reports caught up
  bool repair_due_ = false;   // recovered, or a peer went down: a repair round once no data moves
  bool unrepaired_ = false;   // see View::unrepaired
  bool behind_ = false;       // see View::behind
  bool view_dirty_ = false;   // the heartbeat publishes a view (set where publishing must wait)
  // Times unrepaired_ or behind_ was set: a repair round clears them only if this did not change
  // while it ran.
  uint64_t suspicions_ = 0;
  Millis repair_retry_ms_ = 0;  // transfer thread: an incomplete round is retried after this
  std::map<std::string, bool> peer_caught_up_;  // their last RINGKV.PING flag, see ready()
  // Their last RINGKV.PING: they route to this node as ready (see View::handoff).
  std::map<std::string, bool> peer_routes_ready_;
  uint64_t catch_up_round_ = 0;                 // see catch_up_round()
  std::map<std::string, uint64_t> peer_round_;  // their catch_up_round(), from their replies
  std::set<std::string> replaying_;             // peers replay_hints is sending hints to
  Progress progress_;
  std::vector<NodeStatus> statuses_;
  uint64_t routes_current_epoch_ = 0;  // the migration epoch every live server routes with
  std::map<std::string, std::unordered_set<std::string>> hints_;  // peer -> keys
  std::deque<std::function<void()>> admin_tasks_;                 // see run_admin
  struct PendingChange {
    Millis deadline_ms = 0;
    std::function<Status()> change;
    std::function<void(Status)> done;
  };
  std::deque<PendingChange> pending_changes_;   // guarded by mu_; see run_change
  Millis last_sweep_ms_ = 0;                    // transfer thread only
  Millis last_repair_ms_ = 0;                   // transfer thread only
  std::optional<uint64_t> lost_epoch_warned_;   // control thread: see restore_service
  std::map<std::string, uint64_t> peer_epoch_;  // guarded by mu_: the newest each peer reported
  // This process started the one-server ring of epoch 1 (a fresh embedded host): a newer ring
  // that does not come from it was restored by the other nodes (see apply_config).
  bool started_fresh_ring_ = false;  // guarded by mu_

  std::atomic<uint64_t> applied_epoch_{0};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> read_throughs_{0};
  std::atomic<uint64_t> old_holder_writes_{0};
  std::atomic<bool> beat_now_{false};    // a link broke: check liveness without waiting
  std::atomic<Millis> beat_done_ms_{0};  // when the last heartbeat round ended, see out_of_touch
  std::atomic<int64_t> migrate_rate_;    // keys/s, from options_ and CONFIG SET migration-rate
  std::condition_variable wake_;
  std::condition_variable transfer_wake_;
  std::condition_variable admin_wake_;
  std::thread control_;
  std::thread beat_;  // heartbeats only: never behind a slow configuration service or epoch
  std::mutex beat_mu_;
  std::condition_variable beat_wake_;
  std::thread transfer_;
  std::thread admin_;
};

// Thread-local capture of the keys a command modifies, so the dispatcher can replicate them.
// Installed around local execution of a command; Store mutations report into it.
class ChangeCapture {
 public:
  ChangeCapture();
  ~ChangeCapture();
  const std::vector<std::pair<std::string, Token>>& keys() const { return keys_; }
  static void note(std::string_view key, Token token);

 private:
  std::vector<std::pair<std::string, Token>> keys_;
  ChangeCapture* prev_;
};

// The record of `key` as stored now (for replication), or nullopt when it has no entry at all.
std::optional<ChangeRecord> snapshot_entry(store::Store& store, std::string_view key, Token token);

}  // namespace ringkv::cluster
