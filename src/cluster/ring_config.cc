#include "cluster/ring_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/strings.h"

namespace ringkv::cluster {

using nlohmann::json;

std::string_view state_name(ServerState s) {
  switch (s) {
    case ServerState::kJoining: return "joining";
    case ServerState::kUp: return "up";
    case ServerState::kLeaving: return "leaving";
  }
  return "up";
}

namespace {

bool parse_state(std::string_view s, ServerState* out) {
  if (s == "joining") *out = ServerState::kJoining;
  else if (s == "up") *out = ServerState::kUp;
  else if (s == "leaving") *out = ServerState::kLeaving;
  else return false;
  return true;
}

json server_json(const ServerInfo& s) {
  return json{{"id", s.id}, {"address", s.address}, {"weight", s.weight},
              {"state", std::string(state_name(s.state))}, {"ordinal", s.ordinal}};
}

Result<ServerInfo> server_from(const json& j) {
  ServerInfo s;
  if (!j.is_object() || !j.contains("id") || !j.contains("address"))
    return Status::invalid_argument("a server entry needs an id and an address");
  s.id = j.at("id").get<std::string>();
  s.address = j.at("address").get<std::string>();
  s.weight = j.value("weight", 1u);
  s.ordinal = j.value("ordinal", 0u);
  if (!parse_state(j.value("state", std::string("up")), &s.state))
    return Status::invalid_argument("server '" + s.id + "' has an unknown state");
  return s;
}

}  // namespace

std::string RingConfig::to_json() const {
  json servers_j = json::array();
  for (const auto& s : servers) servers_j.push_back(server_json(s));
  json j{{"epoch", epoch},           {"vnodes", vnodes},
         {"replicas", replicas},     {"write_quorum", write_quorum},
         {"read_quorum", read_quorum}, {"next_ordinal", next_ordinal},
         {"servers", servers_j}};
  if (migration) {
    json from = json::array();
    for (const auto& s : migration->from) from.push_back(server_json(s));
    j["migration"] = json{{"id", migration->id},
                          {"kind", migration->kind},
                          {"server", migration->server},
                          {"started_ms", migration->started_ms},
                          {"from", from}};
  }
  return j.dump();
}

Result<RingConfig> RingConfig::from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument("ring configuration is not a JSON object");
  RingConfig c;
  try {
    c.epoch = j.value("epoch", uint64_t{0});
    c.vnodes = j.value("vnodes", 1024u);
    c.replicas = j.value("replicas", 3u);
    c.write_quorum = j.value("write_quorum", 2u);
    c.read_quorum = j.value("read_quorum", 1u);
    c.next_ordinal = j.value("next_ordinal", 1u);
    if (j.contains("servers")) {
      for (const auto& s : j.at("servers")) {
        auto r = server_from(s);
        if (!r) return r.status();
        c.servers.push_back(std::move(r).value());
      }
    }
    if (j.contains("migration") && j.at("migration").is_object()) {
      const json& m = j.at("migration");
      Migration mig;
      mig.id = m.value("id", uint64_t{0});
      mig.kind = m.value("kind", std::string());
      mig.server = m.value("server", std::string());
      mig.started_ms = m.value("started_ms", int64_t{0});
      for (const auto& s : m.value("from", json::array())) {
        auto r = server_from(s);
        if (!r) return r.status();
        mig.from.push_back(std::move(r).value());
      }
      c.migration = std::move(mig);
    }
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string("ring configuration: ") + e.what());
  }
  return c;
}

const ServerInfo* RingConfig::find(std::string_view id) const {
  for (const auto& s : servers)
    if (s.id == id) return &s;
  return nullptr;
}

std::vector<ServerInfo> RingConfig::ring_servers() const {
  std::vector<ServerInfo> out;
  for (const auto& s : servers)
    if (s.state != ServerState::kLeaving) out.push_back(s);
  return out;
}

uint32_t RingConfig::effective_replicas() const {
  uint32_t n = static_cast<uint32_t>(ring_servers().size());
  return std::max(1u, std::min(replicas, n));
}
uint32_t RingConfig::effective_write_quorum() const {
  return std::max(1u, std::min(write_quorum, effective_replicas()));
}
uint32_t RingConfig::effective_read_quorum() const {
  return std::max(1u, std::min(read_quorum, effective_replicas()));
}

Result<std::shared_ptr<const ring::Ring>> build_ring(const std::vector<ServerInfo>& servers,
                                                     uint32_t vnodes) {
  std::vector<ring::ServerSpec> specs;
  for (const auto& s : servers) specs.push_back({s.id, s.weight});
  ring::RingOptions o;
  o.vnodes = vnodes;
  return ring::Ring::build(std::move(specs), o);
}

Status validate_server_id(std::string_view id) {
  if (id.empty()) return Status::invalid_argument("the server id is empty");
  if (id.size() > 128) return Status::invalid_argument("the server id is longer than 128 bytes");
  for (char c : id) {
    if (c < '!' || c > '~')
      return Status::invalid_argument("the server id '" + std::string(id) +
                                      "' must be printable ASCII without spaces");
  }
  return Status::ok();
}

bool split_address(std::string_view address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  int64_t p;
  if (!parse_int64(address.substr(colon + 1), &p) || p <= 0 || p > 65535) return false;
  *host = std::string(h);
  *port = static_cast<int>(p);
  return true;
}

}  // namespace ringkv::cluster
