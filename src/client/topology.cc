#include "client/topology.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace ringkv::client {

using nlohmann::json;

// ---------------------------------------------------------------- the document

Result<ConfigDoc> parse_config(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::invalid_argument("the ring configuration is not a JSON object");
  ConfigDoc doc;
  // Type mismatches inside the document throw from nlohmann; nothing escapes this function.
  try {
    doc.epoch = j.value("epoch", uint64_t{0});
    doc.vnodes = j.value("vnodes", 1024u);
    doc.replicas = j.value("replicas", 3u);
    doc.migrating = j.contains("migration") && j.at("migration").is_object();
    if (j.contains("servers")) {
      const json& servers = j.at("servers");
      if (!servers.is_array())
        return Status::invalid_argument("the ring configuration's servers is not an array");
      for (const json& s : servers) {
        if (!s.is_object() || !s.contains("id") || !s.contains("address"))
          return Status::invalid_argument(
              "a server of the ring configuration has no id or address");
        ConfigServer cs;
        cs.id = s.at("id").get<std::string>();
        cs.address = s.at("address").get<std::string>();
        cs.weight = s.value("weight", 1u);
        cs.leaving = s.value("state", std::string("up")) == "leaving";
        doc.servers.push_back(std::move(cs));
      }
    }
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string("the ring configuration is malformed: ") +
                                    e.what());
  }
  return doc;
}

// ---------------------------------------------------------------- Topology

Result<std::shared_ptr<const Topology>> Topology::build(
    const ConfigDoc& doc, const EndpointFn& find_endpoint,
    const std::vector<std::shared_ptr<Endpoint>>& seeds) {
  std::vector<ring::ServerSpec> specs;
  for (const auto& s : doc.servers)
    if (!s.leaving) specs.push_back({s.id, s.weight});
  // The same rule as the nodes' effective replica count: N capped by the servers on the ring.
  uint32_t n =
      std::max<uint32_t>(1, std::min<uint32_t>(doc.replicas, static_cast<uint32_t>(specs.size())));
  ring::RingOptions options;
  options.vnodes = doc.vnodes;
  options.max_replicas = std::clamp<uint32_t>(n, 8, ring::kMaxReplicasLimit);
  auto ring = ring::Ring::build(std::move(specs), options);
  if (!ring) return ring.status();

  std::shared_ptr<Topology> t(new Topology());
  t->epoch_ = doc.epoch;
  t->migrating_ = doc.migrating;
  t->n_ = n;
  t->ring_ = std::move(ring).value();
  t->by_index_.resize(t->ring_->server_count());
  auto seen = [&](const std::string& address) {
    for (const auto& e : t->all_)
      if (e->address() == address) return true;
    return false;
  };
  for (const auto& s : doc.servers) {
    if (s.leaving) continue;
    auto index = t->ring_->index_of(s.id);
    if (!index) return Status::internal("server '" + s.id + "' is missing from the built ring");
    t->by_index_[*index] = find_endpoint(s.address);
    if (!t->by_index_[*index])
      return Status::invalid_argument("server '" + s.id + "' has a malformed address '" +
                                      s.address + "'");
  }
  for (const auto& e : t->by_index_) t->all_.push_back(e);
  for (const auto& s : doc.servers) {
    if (!s.leaving || seen(s.address)) continue;
    auto e = find_endpoint(s.address);
    if (!e) continue;  // a leaving server is only a fallback: skip one we cannot parse
    t->extra_.push_back(e);
    t->all_.push_back(e);
  }
  for (const auto& e : seeds) {
    if (seen(e->address())) continue;
    t->extra_.push_back(e);
    t->all_.push_back(e);
  }
  return std::shared_ptr<const Topology>(std::move(t));
}

void Topology::candidates(Token token, int64_t now_ms, std::vector<Endpoint*>* out) const {
  out->clear();
  size_t servers = by_index_.size();
  uint32_t list[ring::kMaxReplicasLimit];
  size_t k = servers == 0 ? 0 : ring_->preference_list(token, n_, list);
  for (size_t i = 0; i < k; ++i) out->push_back(by_index_[list[i]].get());
  // Then the rest of the ring, starting at a place that depends on the token so that the load of
  // a dead preference list spreads over the cluster.
  for (size_t i = 0; i < servers; ++i) {
    Endpoint* e = by_index_[(token + i) % servers].get();
    if (std::find(out->begin(), out->begin() + static_cast<long>(k), e) ==
        out->begin() + static_cast<long>(k))
      out->push_back(e);
  }
  for (const auto& e : extra_) out->push_back(e.get());
  std::stable_partition(out->begin(), out->end(),
                        [now_ms](Endpoint* e) { return !e->recently_failed(now_ms); });
}

void Topology::all_endpoints(size_t start, int64_t now_ms, std::vector<Endpoint*>* out) const {
  out->clear();
  for (size_t i = 0; i < all_.size(); ++i) out->push_back(all_[(start + i) % all_.size()].get());
  std::stable_partition(out->begin(), out->end(),
                        [now_ms](Endpoint* e) { return !e->recently_failed(now_ms); });
}

}  // namespace ringkv::client
