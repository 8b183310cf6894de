// The etcd backend: the document at <prefix>/config (compare-and-set on its mod revision), each
// node's status at <prefix>/nodes/<id> attached to a lease that lapses when the node stops
// renewing it, and a watch on the document that wakes wait_newer().
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cluster/config_service.h"
#include "cluster/http_client.h"
#include "common/log.h"

namespace ringkv::cluster {

using nlohmann::json;

namespace {

constexpr int kTimeoutMs = 2000;
constexpr int kLeaseTtlSeconds = 5;
constexpr int kReloadMs = 1000;

std::string prefix_end(std::string p) {
  // The smallest key greater than every key starting with p (etcd's range_end convention).
  while (!p.empty()) {
    unsigned char c = static_cast<unsigned char>(p.back());
    if (c < 0xff) {
      p.back() = static_cast<char>(c + 1);
      return p;
    }
    p.pop_back();
  }
  return std::string(1, '\0');
}

class EtcdConfigService final : public ConfigService {
 public:
  EtcdConfigService(std::string host, int port, std::string prefix)
      : host_(std::move(host)), port_(port), prefix_("/" + prefix) {
    watcher_ = std::thread([this] { watch_loop(); });
  }
  ~EtcdConfigService() override {
    stop_ = true;
    if (watcher_.joinable()) watcher_.join();
  }

  std::string describe() const override {
    return "etcd://" + host_ + ":" + std::to_string(port_) + prefix_;
  }

  Result<RingConfig> load() override {
    json req{{"key", base64_encode(config_key())}};
    auto r = post("/v3/kv/range", req);
    if (!r) return r.status();
    const json& j = *r;
    if (!j.contains("kvs") || j["kvs"].empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      revisions_[0] = 0;
      return RingConfig{};
    }
    const json& kv = j["kvs"][0];
    std::string value;
    if (!base64_decode(kv.value("value", std::string()), &value))
      return Status::io_error("etcd: the configuration value is not base64");
    auto c = RingConfig::from_json(value);
    if (!c) return c.status();
    std::lock_guard<std::mutex> lock(mu_);
    revisions_[c->epoch] = std::stoll(kv.value("mod_revision", std::string("0")));
    return c;
  }

  Status store(uint64_t expected_epoch, const RingConfig& next) override {
    int64_t rev;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = revisions_.find(expected_epoch);
      if (it == revisions_.end())
        rev = -1;
      else
        rev = it->second;
    }
    if (rev < 0) {
      // We never read that epoch: read now, and refuse if it is not the one expected.
      auto cur = load();
      if (!cur) return cur.status();
      if (cur->epoch != expected_epoch)
        return Status::failed_precondition("the ring configuration changed (epoch " +
                                           std::to_string(cur->epoch) + ")");
      std::lock_guard<std::mutex> lock(mu_);
      rev = revisions_[expected_epoch];
    }
    std::string k = base64_encode(config_key());
    json cmp =
        expected_epoch == 0
            ? json{{"key", k}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}
            : json{{"key", k},
                   {"target", "MOD"},
                   {"result", "EQUAL"},
                   {"mod_revision", std::to_string(rev)}};
    json req{
        {"compare", json::array({cmp})},
        {"success", json::array({json{{"request_put",
                                       {{"key", k}, {"value", base64_encode(next.to_json())}}}}})}};
    auto r = post("/v3/kv/txn", req);
    if (!r) return r.status();
    if (!r->value("succeeded", false))
      return Status::failed_precondition("the ring configuration changed (compare-and-set lost)");
    return Status::ok();
  }

  // Waits for the watch to see the document change, as long as timeout_ms. Reads the document
  // when it changed since the last read, when that read failed or is kReloadMs old (should the
  // watch have missed a change); else returns the copy read last.
  Result<RingConfig> wait_newer(uint64_t /*known_epoch*/, int timeout_ms) override {
    using clk = std::chrono::steady_clock;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return events_ != loaded_events_; });
      bool reload = events_ != loaded_events_ || !last_ || !last_->is_ok() ||
                    clk::now() - loaded_at_ >= std::chrono::milliseconds(kReloadMs);
      if (!reload) return *last_;
      loaded_events_ = events_;
      loaded_at_ = clk::now();
    }
    Result<RingConfig> r = load();
    std::lock_guard<std::mutex> lock(mu_);
    last_ = r;
    return r;
  }

  Status report(const NodeStatus& status) override {
    Status st = ensure_lease();
    if (!st) return st;
    json req{{"key", base64_encode(prefix_ + "/nodes/" + status.id)},
             {"value", base64_encode(status.to_json())},
             {"lease", std::to_string(lease_)}};
    auto r = post("/v3/kv/put", req);
    if (!r) {
      lease_ = 0;  // maybe expired: grant a new one next time
      return r.status();
    }
    return Status::ok();
  }

  Result<std::vector<NodeStatus>> statuses() override {
    std::string p = prefix_ + "/nodes/";
    json req{{"key", base64_encode(p)}, {"range_end", base64_encode(prefix_end(p))}};
    auto r = post("/v3/kv/range", req);
    if (!r) return r.status();
    std::vector<NodeStatus> out;
    for (const auto& kv : r->value("kvs", json::array())) {
      std::string value;
      if (!base64_decode(kv.value("value", std::string()), &value)) continue;
      auto s = NodeStatus::from_json(value);
      if (s) out.push_back(std::move(s).value());
    }
    return out;
  }

 private:
  std::string config_key() const { return prefix_ + "/config"; }

  Result<json> post(const std::string& path, const json& req) {
    auto r = http_post(host_, port_, path, req.dump(), kTimeoutMs);
    if (!r) return r.status();
    json j = json::parse(*r, nullptr, false);
    if (j.is_discarded()) return Status::io_error("etcd " + path + ": reply is not JSON");
    return j;
  }

  Status ensure_lease() {
    if (lease_ != 0) {
      auto r = post("/v3/lease/keepalive", json{{"ID", std::to_string(lease_)}});
      if (r && r->contains("result") &&
          std::stoll((*r)["result"].value("TTL", std::string("0"))) > 0)
        return Status::ok();
      lease_ = 0;
    }
    auto r = post("/v3/lease/grant", json{{"TTL", std::to_string(kLeaseTtlSeconds)}});
    if (!r) return r.status();
    lease_ = std::stoll(r->value("ID", std::string("0")));
    if (lease_ == 0) return Status::io_error("etcd did not grant a lease");
    return Status::ok();
  }

  void watch_loop() {
    while (!stop_) {
      json req{{"create_request", {{"key", base64_encode(config_key())}}}};
      http_stream(
          host_, port_, "/v3/watch", req.dump(), 200, &stop_, [this](const std::string& chunk) {
            json j = json::parse(chunk, nullptr, false);
            if (!j.is_discarded() && j.contains("result") && j["result"].contains("events")) {
              std::lock_guard<std::mutex> lock(mu_);
              ++events_;
              changed_.notify_all();
            }
            return !stop_.load();
          });
      for (int i = 0; i < 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  std::string host_;
  int port_;
  std::string prefix_;
  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t events_ = 0;
  // wait_newer's last read: its result, events_ when it began and when.
  std::optional<Result<RingConfig>> last_;
  uint64_t loaded_events_ = 0;
  std::chrono::steady_clock::time_point loaded_at_;
  std::map<uint64_t, int64_t> revisions_;  // epoch -> mod revision, as last read
  int64_t lease_ = 0;                      // control thread only
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace

std::unique_ptr<ConfigService> make_etcd_config_service(const std::string& host, int port,
                                                        const std::string& prefix) {
  return std::make_unique<EtcdConfigService>(host, port, prefix);
}

}  // namespace ringkv::cluster
