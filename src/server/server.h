// The server: owns the store, the event loops and their listeners, and implements the Service
// that every client connection dispatches into (command lookup, arity, auth, transactions,
// OOM checks, execution, statistics).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cluster/cluster.h"
#include "common/clock.h"
#include "config/config.h"
#include "net/connection.h"
#include "net/listener.h"
#include "net/loop.h"
#include "ringkv/status.h"
#include "server/command.h"
#include "server/hot_cache.h"
#include "server/latency.h"
#include "server/monitor.h"
#include "server/session.h"
#include "server/slowlog.h"
#include "store/store.h"

namespace ringkv::server {

struct ServerStats {
  std::atomic<uint64_t> commands{0};
  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> keyspace_hits{0};
  std::atomic<uint64_t> keyspace_misses{0};
  std::atomic<uint64_t> error_replies{0};
  std::atomic<uint64_t> unexpected_error_replies{0};
  // Network totals at the last CONFIG RESETSTAT (INFO reports the loops' totals minus these).
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  std::atomic<uint64_t> net_reads{0};
  std::atomic<uint64_t> net_writes{0};
  // Write commands that ran without an error reply (INFO rdb_changes_since_last_save: ringkv
  // never saves).
  std::atomic<uint64_t> changes{0};
  std::atomic<uint64_t> expire_cycle_us{0};  // time spent in active expiry
  std::atomic<uint64_t> protocol_errors{0};
  std::mutex errors_mu;
  std::unordered_map<std::string, uint64_t> errors;  // errorstats by code word
};

// A client as the registry knows it (for CLIENT LIST / KILL and INFO clients).
struct ClientRef {
  std::weak_ptr<net::Connection> conn;
  net::EventLoop* loop;
  ClientSession* session;
};

class Server : public net::Service {
 public:
  // REQUIRES: config outlives the server.
  Server(config::Config& config, const Clock& clock = system_clock());
  ~Server() override;

  // Binds the listeners and starts the loops (io-threads); loop 0 runs on the calling thread in
  // run(). Returns a clear error when an address cannot be bound.
  Status start();
  // Runs loop 0 until shutdown() (blocking).
  void run();
  // Thread-safe; run() returns once every loop has closed its connections.
  void shutdown();
  int port() const { return port_; }

  // ---- for commands
  store::Store& store() { return *store_; }
  config::Config& config() { return config_; }
  // Builds the TLS context from the tls-* directives again (after CONFIG SET changed one); new
  // TLS connections use it. Without tls-port nothing is built and any values are accepted.
  Status reload_tls();
  const Clock& clock() const { return clock_; }
  HybridClock& hlc() { return hlc_; }
  ServerStats& stats() { return stats_; }
  Millis start_ms() const { return start_ms_; }
  const std::string& run_id() const { return run_id_; }
  // Clients, not counting other nodes' links (as Redis does not count its replicas).
  size_t connected_clients() const {
    const size_t all = clients_count_.load(), internal = internal_count_.load();
    return all > internal ? all - internal : 0;
  }
  // The session is another node's link (RINGKV.HELLO): it no longer counts as a client, in
  // connected_clients or against maxclients.
  void mark_internal(ClientSession& s);
  // net::Service: in a ring of several servers, requests a client abandoned while this node
  // stood still are dropped too (another node may have taken its retries since).
  bool drop_abandoned(net::Connection& conn) override;
  // A connection opened over maxclients that did not turn out to be a peer link: Redis's error,
  // then closed.
  void refuse_over_limit(net::Connection& conn, ClientSession& s);
  // Whether this node is in a ring of several servers, as conn's loop sees it.
  bool in_ring(net::Connection& conn);
  int io_threads() const { return static_cast<int>(loops_.size()); }
  // How many times an event loop stopped busy-polling because its thread waited for a CPU.
  uint64_t busy_poll_backoffs() const { return sum_loops(&net::EventLoop::busy_poll_backoffs); }
  // How many times an event loop stopped busy-polling because polling seldom caught a request.
  uint64_t busy_poll_idle_stops() const { return sum_loops(&net::EventLoop::busy_poll_idle_stops); }
  // Event loops' yields of a contended core: how many, their time (ns), and their back-offs.
  uint64_t contended_yields() const { return sum_loops(&net::EventLoop::contended_yields); }
  uint64_t contended_yield_ns() const { return sum_loops(&net::EventLoop::contended_yield_ns); }
  uint64_t yield_backoffs() const { return sum_loops(&net::EventLoop::yield_backoffs); }
  // The hot-key caches' counters, summed over the loops.
  uint64_t hot_cache_sum(uint64_t (HotCache::*count)() const) const {
    uint64_t n = 0;
    for (const auto& c : hot_caches_) n += ((*c).*count)();
    return n;
  }
  std::vector<std::pair<uint64_t, ClientRef>> clients_snapshot();
  // Runs fn(conn, session) on the loop thread of client `id`; false when there is no such client.
  bool with_client(uint64_t id, std::function<void(net::Connection&, ClientSession&)> fn);
  net::ConnectionLimits& limits() { return limits_; }
  // Runs per_loop on every loop's thread and then done(parts) on the calling loop's thread;
  // the caller does not wait (use a Deferred reply).
  void gather(std::function<std::string(net::LoopNet&)> per_loop,
              std::function<void(std::vector<std::string>)> done);
  size_t pending_output_bytes();
  int64_t maxmemory() const { return maxmemory_.load(std::memory_order_relaxed); }
  uint64_t instantaneous_ops() const { return inst_ops_.load(std::memory_order_relaxed); }
  // The store's memory when it was empty, at start (INFO used_memory_startup).
  size_t startup_memory() const { return startup_memory_; }
  // Bytes per second in and out over the last cron tick.
  uint64_t instantaneous_input_bps() const { return inst_in_bps_.load(std::memory_order_relaxed); }
  uint64_t instantaneous_output_bps() const {
    return inst_out_bps_.load(std::memory_order_relaxed);
  }
  // Network totals of every loop since start (thread-safe).
  struct NetTotals {
    uint64_t bytes_in = 0, bytes_out = 0, reads = 0, writes = 0;
  };
  NetTotals net_totals();

  void count_error(std::string_view text);
  // Runs one request as if it came from `conn` (used by EXEC for queued requests).
  void execute(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
               const CommandSpec* spec, const CommandSpec* parent, Millis now);

  // execute() under exec_mu_ when several loop threads run commands: shared for a command of one
  // key, exclusive for one of several (atomic as in Redis).
  void execute_locked(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                      const CommandSpec* spec, const CommandSpec* parent, Millis now);

  // WATCH support.
  void watch_key(ClientSession& s, std::string_view key);
  void unwatch_all(ClientSession& s);
  void touch_all_watched();

  // Memory: frees by the eviction policy if over maxmemory. False: still over the limit.
  bool make_room(Millis now);

  // ---- introspection: SLOWLOG (slowlog.cc), LATENCY (latency.cc), MONITOR (monitor.cc)
  SlowLog& slowlog() { return slowlog_; }
  LatencyMonitor& latency() { return latency_; }
  MonitorHub& monitors() { return monitors_; }
  // CLIENT PAUSE / UNPAUSE (thread-safe). A pause only ever extends: the later end and the
  // stronger type win, as in Redis. Paused clients' requests wait, their reading stopped, until
  // UNPAUSE or the end time.
  enum PauseType { kPauseNone = 0, kPauseWrite = 1, kPauseAll = 2 };
  void pause_clients(Millis end_ms, PauseType type);
  void unpause_clients();
  bool paused() const { return pause_type_.load(std::memory_order_relaxed) != kPauseNone; }
  // Clients whose request waits for the end of a CLIENT PAUSE (INFO blocked_clients).
  int postponed_clients() const { return postponed_count_.load(std::memory_order_relaxed); }

  // The cluster (always present: a lone node is a one-server ring).
  cluster::Cluster* cluster() { return cluster_.get(); }
  // Runs a request here with its reply written into *out instead of the connection, and
  // returns the entries it changed (for replication).
  std::vector<cluster::ChangeRecord> execute_captured(net::Connection& conn, ClientSession& s,
                                                      std::vector<std::string_view>& args,
                                                      const CommandSpec* spec,
                                                      const CommandSpec* parent, Millis now,
                                                      std::string* out);
  // Same for a request given as owned strings; done(reply) once replicas acknowledged (W).
  // read_through: first fetch keys that are still arriving here (false once that was done).
  void run_local_async(net::Connection& conn, ClientSession& s, std::vector<std::string> args,
                       Millis now, std::function<void(std::string)> done, bool read_through = true);
  // Sends one request to every target (ids; this node's own part runs here) and calls done
  // with the replies in the same order: (ok, raw reply or failure text).
  void fanout(net::Connection& conn, ClientSession& s, const std::vector<std::string>& targets,
              std::vector<std::string> args,
              std::function<void(std::vector<std::pair<bool, std::string>>)> done);

  // ---- net::Service
  void on_open(net::Connection& conn) override;
  void on_command(net::Connection& conn, std::vector<std::string_view>& args) override;
  void on_protocol_error(net::Connection& conn, std::string_view error) override;
  void on_close(net::Connection& conn) override;

 private:
  uint64_t sum_loops(uint64_t (net::EventLoop::*count)() const) const {
    uint64_t n = 0;
    for (const auto& l : loops_) n += ((*l).*count)();
    return n;
  }
  void apply_config_listeners();
  void cron();                        // loop 0, hz times a second
  void loop_cron(size_t loop_index);  // every loop, once a second: timeouts
  void on_key_modified(std::string_view key);
  // CLIENT PAUSE: true when the request was held back (its connection stops reading).
  bool maybe_postpone(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args);
  void resume_postponed(size_t loop_index);  // loop `loop_index` only
  void arm_pause_timer();                    // loop 0 only
  // Timing, statistics, slow log, latency events and MONITOR after a handler ran.
  void after_command(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const CommandSpec* parent, Micros t0, Micros t1,
                     bool failed);
  void feed_monitors(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const CommandSpec* parent);
  Status start_cluster();
  Result<std::shared_ptr<net::TlsContext>> build_tls() const;
  // Cluster routing (cluster_dispatch.cc). True when the request was handled (forwarded,
  // split, deferred or refused); false when it simply runs here.
  bool route_command(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const CommandSpec* parent, Millis now);
  // Routes the request (route_command), else runs it here; counts and shows a request that
  // ran elsewhere.
  void dispatch(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                const CommandSpec* spec, const CommandSpec* parent, Millis now);
  // A command that reaches every node (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL), or
  // WATCH (whose version reads take the control link), sent through this node: it runs once
  // the replies this client awaits are in, and the client's next requests wait for its reply, so
  // that in a pipeline it sees what came before it and nothing after, as in Redis.
  void dispatch_in_order(net::Connection& conn, std::vector<std::string_view>& args,
                         const CommandSpec* spec, const CommandSpec* parent, bool silent);
  void run_here(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                const CommandSpec* spec, const CommandSpec* parent, Millis now,
                const std::vector<Token>& tokens);
  // A copy of a key to bring here before a command runs on it (copies_to_bring).
  struct Bring {
    std::string key;
    std::optional<cluster::PendingRange> from;  // still arriving here: read it through from there
    std::vector<std::string> peers;             // else: keep the newest of these peers' copies
  };
  // What a command must bring here first, so it sees the value the cluster acknowledged: keys of
  // ranges still arriving that are missing here (read-through), for a read with R > 1 the
  // newest of R copies (read repair), while View::unrepaired the newest live copy of a key this
  // node stands in for as primary, and while View::behind that of every key. Blind writes bring
  // nothing. tokens: the keys' tokens when the caller has them.
  template <class Args>
  std::vector<Bring> copies_to_bring(const cluster::View& v, const CommandSpec* spec,
                                     const Args& args, const std::vector<Token>* tokens,
                                     Millis now);
  // Brings them (concurrently), then calls `then` on the loop: with true, or with false when a
  // key still arriving here could be read through from no holder (the command must not run on
  // what this node has).
  void bring_then(size_t loop_index, std::vector<Bring> bring, std::function<void(bool)> then);
  // The reply (counted in errorstats) for a command bring_then could not complete.
  std::string refuse_unread();
  void deliver(net::Connection& conn, std::string reply,
               std::vector<cluster::ChangeRecord> changes);
  // Forwards the request to peer. cache: a GET whose reply goes into the loop's hot-key cache
  // (owner: the peer's index in the view).
  void forward(net::Connection& conn, const std::string& peer, std::vector<std::string_view>& args,
               bool retry_on_failure, Token token, bool cache = false,
               uint32_t owner = ring::kNoServer);
  // A write routed through this node drops the keys it writes from the loop's hot-key cache
  // (hot_cache.h); one without keys (FLUSHALL, EXEC) empties it.
  void hot_cache_writes(size_t loop_index, std::vector<std::string_view>& args,
                        const CommandSpec* spec, const CommandSpec* parent);
  void split_command(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const std::vector<int>& positions,
                     const std::vector<uint32_t>& owners);
  void keyspace_command(net::Connection& conn, ClientSession& s,
                        std::vector<std::string_view>& args, const CommandSpec* spec, Millis now);
  void cluster_scan(net::Connection& conn, std::vector<std::string_view>& args);
  struct ScanCall;
  void scan_round(const std::shared_ptr<ScanCall>& call, size_t width);
  bool cluster_exec(net::Connection& conn, ClientSession& s, Millis now);
  void cluster_watch(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     Millis now);

  config::Config& config_;
  const Clock& clock_;
  HybridClock hlc_;
  std::unique_ptr<store::Store> store_;
  ServerStats stats_;
  net::ConnectionLimits limits_;
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<size_t> clients_count_{0};
  std::atomic<size_t> internal_count_{0};  // of clients_count_, the sessions marked internal
  std::atomic<int64_t> maxmemory_{0};
  std::atomic<int> maxmemory_samples_{5};
  std::atomic<int64_t> timeout_s_{0};
  std::atomic<int> hz_{10};
  std::atomic<uint64_t> inst_ops_{0};
  size_t startup_memory_ = 0;
  std::atomic<uint64_t> inst_in_bps_{0}, inst_out_bps_{0};
  NetTotals last_net_sample_;
  uint64_t last_ops_sample_ = 0;
  Millis last_ops_sample_ms_ = 0;
  std::string requirepass_;  // guarded by auth_mu_
  mutable std::mutex auth_mu_;

  std::vector<std::unique_ptr<net::EventLoop>> loops_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
  net::TlsContextRef tls_;  // the context of connections accepted on tls-port
  std::vector<std::unique_ptr<net::Timer>> timers_;
  std::vector<std::unique_ptr<net::SignalWatcher>> signals_;
  std::unique_ptr<cluster::Cluster> cluster_;
  int port_ = 0;
  Millis start_ms_ = 0;
  std::string run_id_;

  std::mutex clients_mu_;
  std::unordered_map<uint64_t, ClientRef> clients_;

  SlowLog slowlog_;
  LatencyMonitor latency_;
  MonitorHub monitors_;
  std::atomic<int64_t> slowlog_slower_than_{10000};
  std::atomic<int64_t> slowlog_max_len_{128};
  std::atomic<int64_t> latency_threshold_ms_{0};
  std::mutex pause_mu_;  // serialises pause/unpause decisions
  std::atomic<int> pause_type_{kPauseNone};
  std::atomic<Millis> pause_end_ms_{0};
  std::atomic<int> postponed_count_{0};
  net::Timer* pause_timer_ = nullptr;  // loop 0; owned by timers_
  // Per loop, that loop's thread only: connections with a postponed request.
  std::vector<std::vector<std::weak_ptr<net::Connection>>> postponed_;

  std::mutex watch_mu_;
  std::unordered_map<std::string, std::unordered_set<ClientSession*>> watched_;

  // Per loop (hot_cache.h); hot-key-cache-ms, 0 when off, and hot-key-cache-size.
  std::vector<std::unique_ptr<HotCache>> hot_caches_;
  std::atomic<int64_t> hot_cache_ms_{0};
  std::atomic<int64_t> hot_cache_size_{0};
  std::atomic<uint64_t> hot_cache_generation_{0};  // changes of either setting

  // With several io-threads, EXEC runs exclusively and other commands share this lock.
  std::shared_mutex exec_mu_;
  bool exec_lock_needed_ = false;

 public:
  bool auth_required() const {
    std::lock_guard<std::mutex> lock(auth_mu_);
    return !requirepass_.empty();
  }
  bool check_password(std::string_view pass) const;
  // Whether the connection must say AUTH before this command: it has not, and a password is set.
  bool needs_auth(net::Connection& conn, ClientSession& s);
  std::shared_mutex& exec_mutex() { return exec_mu_; }
  bool exec_lock_needed() const { return exec_lock_needed_; }
};

}  // namespace ringkv::server
