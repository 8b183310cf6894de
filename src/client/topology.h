// The client's picture of the cluster: the ring configuration document (RING CONFIG) parsed into
// the part routing needs, and the immutable Topology built from it (the ring plus an endpoint
// per server). A Topology is shared as std::shared_ptr<const Topology> and swapped whole when the
// epoch changes, so a request routes on one consistent snapshot without holding a lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/endpoint.h"
#include "ringkv/ring.h"
#include "ringkv/status.h"

namespace ringkv::client {

// The fields of the configuration document (src/cluster/ring_config.cc writes it) that routing
// uses. The client deliberately parses it itself rather than linking the cluster module, which
// brings the server's event loops and store with it.
struct ConfigServer {
  std::string id;
  std::string address;
  uint32_t weight = 1;
  bool leaving = false;  // state "leaving": off the ring, still serving as a migration source
};

struct ConfigDoc {
  uint64_t epoch = 0;
  uint32_t vnodes = 1024;
  uint32_t replicas = 3;
  bool migrating = false;  // a "migration" object is present
  std::vector<ConfigServer> servers;
};

// invalid_argument with a description when the text is not a configuration document.
Result<ConfigDoc> parse_config(std::string_view json);

class Topology {
 public:
  // Builds the ring from the servers that are not leaving (as every node does) and resolves an
  // endpoint per server address through find_endpoint (which reuses the previous topology's
  // endpoints, so pooled connections survive a refresh). `seeds` are kept as a last resort.
  using EndpointFn = std::function<std::shared_ptr<Endpoint>(const std::string& address)>;
  static Result<std::shared_ptr<const Topology>> build(
      const ConfigDoc& doc, const EndpointFn& find_endpoint,
      const std::vector<std::shared_ptr<Endpoint>>& seeds);

  uint64_t epoch() const { return epoch_; }
  bool migrating() const { return migrating_; }
  uint32_t replicas() const { return n_; }
  const ring::Ring& ring() const { return *ring_; }

  // Ring index -> endpoint.
  const std::shared_ptr<Endpoint>& endpoint(uint32_t index) const { return by_index_[index]; }

  // Where to send a request for token t, best first: its preference list (primary first), then
  // every other server on the ring, then leaving servers and seeds not on the ring (every node
  // proxies). Servers that failed in the last moment are moved behind the others (stable). Never
  // contains duplicates; empty only if the client knows no server at all.
  void candidates(Token t, int64_t now_ms, std::vector<Endpoint*>* out) const;
  // The same without a key: every known endpoint, healthy ones first, starting at `start` so
  // callers can spread load.
  void all_endpoints(size_t start, int64_t now_ms, std::vector<Endpoint*>* out) const;
  // Every endpoint this topology references (ring servers, leaving servers, seeds).
  const std::vector<std::shared_ptr<Endpoint>>& every_endpoint() const { return all_; }

 private:
  Topology() = default;

  uint64_t epoch_ = 0;
  bool migrating_ = false;
  uint32_t n_ = 1;
  std::shared_ptr<const ring::Ring> ring_;
  std::vector<std::shared_ptr<Endpoint>> by_index_;  // ring index -> endpoint
  std::vector<std::shared_ptr<Endpoint>> extra_;     // leaving servers, then seeds not on the ring
  std::vector<std::shared_ptr<Endpoint>> all_;       // by_index_ then extra_
};

}  // namespace ringkv::client
