// The server: owns the store, the event loops and their listeners, and implements the Service
// that every client connection dispatches into (command lookup, arity, auth, transactions,
// OOM checks, execution, statistics).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
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
#include "server/session.h"
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
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
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
  const Clock& clock() const { return clock_; }
  HybridClock& hlc() { return hlc_; }
  ServerStats& stats() { return stats_; }
  Millis start_ms() const { return start_ms_; }
  const std::string& run_id() const { return run_id_; }
  size_t connected_clients() const { return clients_count_.load(); }
  int io_threads() const { return static_cast<int>(loops_.size()); }
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

  void count_error(std::string_view text);
  // Runs one request as if it came from `conn` (used by EXEC for queued requests).
  void execute(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
               const CommandSpec* spec, const CommandSpec* parent, Millis now);

  // WATCH support.
  void watch_key(ClientSession& s, std::string_view key);
  void unwatch_all(ClientSession& s);
  void touch_all_watched();

  // Memory: frees by the eviction policy if over maxmemory. False: still over the limit.
  bool make_room(Millis now);

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
  void apply_config_listeners();
  void cron();  // loop 0, hz times a second
  void loop_cron(size_t loop_index);  // every loop, once a second: timeouts
  void on_key_modified(std::string_view key);
  Status start_cluster();
  // Cluster routing (cluster_dispatch.cc). True when the request was handled (forwarded,
  // split, deferred or refused); false when it simply runs here.
  bool route_command(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const CommandSpec* parent, Millis now);
  void run_here(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                const CommandSpec* spec, const CommandSpec* parent, Millis now,
                const std::vector<Token>& tokens);
  void deliver(net::Connection& conn, std::string reply, std::vector<cluster::ChangeRecord> changes);
  void forward(net::Connection& conn, const std::string& peer, std::vector<std::string_view>& args,
               bool retry_on_failure, Token token);
  void split_command(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const std::vector<int>& positions,
                     const std::vector<uint32_t>& owners);
  void keyspace_command(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                        const CommandSpec* spec, Millis now);
  void cluster_scan(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                    Millis now);
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
  std::atomic<int64_t> maxmemory_{0};
  std::atomic<int> maxmemory_samples_{5};
  std::atomic<int64_t> timeout_s_{0};
  std::atomic<int> hz_{10};
  std::atomic<uint64_t> inst_ops_{0};
  uint64_t last_ops_sample_ = 0;
  Millis last_ops_sample_ms_ = 0;
  std::string requirepass_;  // guarded by auth_mu_
  mutable std::mutex auth_mu_;

  std::vector<std::unique_ptr<net::EventLoop>> loops_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
  std::vector<std::unique_ptr<net::Timer>> timers_;
  std::vector<std::unique_ptr<net::SignalWatcher>> signals_;
  std::unique_ptr<cluster::Cluster> cluster_;
  int port_ = 0;
  Millis start_ms_ = 0;
  std::string run_id_;

  std::mutex clients_mu_;
  std::unordered_map<uint64_t, ClientRef> clients_;

  std::mutex watch_mu_;
  std::unordered_map<std::string, std::unordered_set<ClientSession*>> watched_;

  // With several io-threads, EXEC runs exclusively and other commands share this lock.
  std::shared_mutex exec_mu_;
  bool exec_lock_needed_ = false;

 public:
  bool auth_required() const {
    std::lock_guard<std::mutex> lock(auth_mu_);
    return !requirepass_.empty();
  }
  bool check_password(std::string_view pass) const;
  std::shared_mutex& exec_mutex() { return exec_mu_; }
  bool exec_lock_needed() const { return exec_lock_needed_; }
};

}  // namespace ringkv::server
