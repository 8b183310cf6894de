// The configuration service: where the ring configuration document lives, and where nodes report
// their status (registration, applied epoch, migration progress, liveness).
//
// Backends:
//   local                  this node hosts the document (in memory, optionally in a file)
//   ringkv://host:port     the document hosted by another ringkv node (RINGKV.CFG commands)
//   etcd://host:port/prefix etcd v3 through its JSON gateway, with a lease per node for liveness
// All calls block (with timeouts): they run on the cluster's control thread, never on an event
// loop. Implementations are thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/ring_config.h"
#include "ringkv/status.h"

namespace ringkv::cluster {

struct NodeStatus {
  std::string id;
  std::string address;
  uint64_t applied_epoch = 0;   // the newest configuration this node routes with
  uint64_t migration_done = 0;  // the migration whose data this node has fully received
  bool ready = false;           // holds all its ranges and serves
  uint64_t keys = 0;            // entries stored on this node (all replicas)
  uint64_t bytes = 0;
  uint64_t move_id = 0;          // the migration the move_* counts are for (0: unknown)
  uint64_t move_keys_total = 0;  // keys this node must receive in the current migration
  uint64_t move_keys_done = 0;
  uint64_t move_bytes_done = 0;
  Millis updated_ms = 0;  // when this status was written (liveness)

  std::string to_json() const;
  static Result<NodeStatus> from_json(std::string_view json);
};

class ConfigService {
 public:
  virtual ~ConfigService() = default;
  // "local", "ringkv://h:p" or "etcd://h:p/prefix", for logs and INFO.
  virtual std::string describe() const = 0;
  // Thread-safe: the password (requirepass) connections opened from now on authenticate with.
  virtual void set_password(const std::string& password) { (void)password; }
  // The stored document; epoch 0 when there is none yet.
  virtual Result<RingConfig> load() = 0;
  // Stores `next` if the stored epoch is still `expected_epoch` (0: only if none is stored).
  // kFailedPrecondition when another change got there first.
  virtual Status store(uint64_t expected_epoch, const RingConfig& next) = 0;
  // Waits up to timeout_ms for a document newer than known_epoch; returns the newest known.
  virtual Result<RingConfig> wait_newer(uint64_t known_epoch, int timeout_ms) = 0;
  // Publishes this node's status (also its heartbeat to the service).
  virtual Status report(const NodeStatus& status) = 0;
  // Every node's last status, live or not (callers judge liveness by updated_ms).
  virtual Result<std::vector<NodeStatus>> statuses() = 0;
};

// Opens the backend named by a --discovery URI. node_id: who this node is (with ringkv://, its
// connections to the host introduce themselves with RINGKV.HELLO, so they count as a node's
// links there, not as clients).
Result<std::unique_ptr<ConfigService>> open_config_service(const std::string& uri,
                                                           const std::string& state_file,
                                                           const std::string& password,
                                                           const std::string& node_id);

// The in-process backend. The RINGKV.CFG commands expose it to other nodes.
class LocalConfigService final : public ConfigService {
 public:
  // state_file: where the document is kept across restarts ("" = memory only).
  explicit LocalConfigService(std::string state_file = "");
  std::string describe() const override { return "local"; }
  Result<RingConfig> load() override;
  Status store(uint64_t expected_epoch, const RingConfig& next) override;
  Result<RingConfig> wait_newer(uint64_t known_epoch, int timeout_ms) override;
  Status report(const NodeStatus& status) override;
  Result<std::vector<NodeStatus>> statuses() override;
  // A node (`who`, or "" when unknown) asked for a document newer than `epoch` (RINGKV.CFG WAIT):
  // it runs that epoch.
  void note_epoch(uint64_t epoch, const std::string& who);

 private:
  std::string state_file_;
  std::mutex mu_;
  std::condition_variable changed_;
  RingConfig doc_;
  std::map<std::string, NodeStatus> statuses_;
  // The newest epoch a node said it runs (reports, long polls), and which node: beyond doc_'s,
  // the document was lost in a restart and the nodes restore it (see store).
  uint64_t highest_seen_ = 0;
  std::string highest_seen_by_;
  // Records an epoch a node runs (under mu_); logs a newest one beyond doc_'s.
  void saw_epoch_locked(uint64_t epoch, const std::string& who);
};

}  // namespace ringkv::cluster
