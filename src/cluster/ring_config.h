// The ring configuration: one versioned document (epoch, servers, virtual nodes, N/W/R, and the
// migration in progress). Every node and every client builds the same rings from it. Changes are
// compare-and-set on the epoch through the configuration service; nodes apply epochs in order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "ringkv/ring.h"
#include "ringkv/status.h"

namespace ringkv::cluster {

enum class ServerState { kJoining, kUp, kLeaving };
std::string_view state_name(ServerState s);

struct ServerInfo {
  std::string id;
  std::string address;  // host:port, reachable by every node and client
  uint32_t weight = 1;
  ServerState state = ServerState::kUp;
  uint32_t ordinal = 0;  // unique per cluster, never reused: the node bits of its versions
};

// A change whose data is still moving. The rings before and after it are both known, so every
// node computes the same plan (ring::diff) from the document alone.
struct Migration {
  uint64_t id = 0;         // the epoch that started it
  std::string kind;        // "addserver" or "removeserver"
  std::string server;      // the server added or removed
  Millis started_ms = 0;
  std::vector<ServerInfo> from;  // the servers of the ring before the change
};

struct RingConfig {
  uint64_t epoch = 0;
  uint32_t vnodes = 1024;
  uint32_t replicas = 3;
  uint32_t write_quorum = 2;
  uint32_t read_quorum = 1;
  uint32_t next_ordinal = 1;
  // Every known server. Those in state kLeaving are not on the ring any more: they only serve
  // as sources until the migration that removes them completes.
  std::vector<ServerInfo> servers;
  std::optional<Migration> migration;

  std::string to_json() const;
  static Result<RingConfig> from_json(std::string_view json);

  const ServerInfo* find(std::string_view id) const;
  // Servers on the ring (not leaving).
  std::vector<ServerInfo> ring_servers() const;
  // N, W, R capped by the number of servers on the ring (at least 1).
  uint32_t effective_replicas() const;
  uint32_t effective_write_quorum() const;
  uint32_t effective_read_quorum() const;
};

Result<std::shared_ptr<const ring::Ring>> build_ring(const std::vector<ServerInfo>& servers,
                                                     uint32_t vnodes);

// Checks a server id for RING ADDSERVER: printable ASCII without spaces, 1..128 bytes.
Status validate_server_id(std::string_view id);
// Splits "host:port" (IPv6 as "[::1]:7000"); false when malformed.
bool split_address(std::string_view address, std::string* host, int* port);

}  // namespace ringkv::cluster
