#include "cluster/config_service.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "common/log.h"
#include "common/strings.h"

namespace ringkv::cluster {

using nlohmann::json;

// ---------------------------------------------------------------- NodeStatus

std::string NodeStatus::to_json() const {
  return json{{"id", id},
              {"address", address},
              {"applied_epoch", applied_epoch},
              {"migration_done", migration_done},
              {"ready", ready},
              {"keys", keys},
              {"bytes", bytes},
              {"move_id", move_id},
              {"move_keys_total", move_keys_total},
              {"move_keys_done", move_keys_done},
              {"move_bytes_done", move_bytes_done},
              {"updated_ms", updated_ms}}
      .dump();
}

Result<NodeStatus> NodeStatus::from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::invalid_argument("node status is not a JSON object");
  NodeStatus s;
  try {
    s.id = j.value("id", std::string());
    s.address = j.value("address", std::string());
    s.applied_epoch = j.value("applied_epoch", uint64_t{0});
    s.migration_done = j.value("migration_done", uint64_t{0});
    s.ready = j.value("ready", false);
    s.keys = j.value("keys", uint64_t{0});
    s.bytes = j.value("bytes", uint64_t{0});
    s.move_id = j.value("move_id", uint64_t{0});
    s.move_keys_total = j.value("move_keys_total", uint64_t{0});
    s.move_keys_done = j.value("move_keys_done", uint64_t{0});
    s.move_bytes_done = j.value("move_bytes_done", uint64_t{0});
    s.updated_ms = j.value("updated_ms", int64_t{0});
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string("node status: ") + e.what());
  }
  if (s.id.empty()) return Status::invalid_argument("node status without an id");
  return s;
}

// ---------------------------------------------------------------- local

LocalConfigService::LocalConfigService(std::string state_file)
    : state_file_(std::move(state_file)) {
  if (state_file_.empty()) return;
  std::ifstream in(state_file_);
  if (!in) return;
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = RingConfig::from_json(ss.str());
  if (r) {
    doc_ = std::move(r).value();
    LOG_NOTICE("Ring configuration epoch %llu loaded from %s",
               static_cast<unsigned long long>(doc_.epoch), state_file_.c_str());
  } else {
    LOG_WARNING("Ignoring %s: %s", state_file_.c_str(), r.status().message().c_str());
  }
}

Result<RingConfig> LocalConfigService::load() {
  std::lock_guard<std::mutex> lock(mu_);
  return doc_;
}

Status LocalConfigService::store(uint64_t expected_epoch, const RingConfig& next) {
  std::unique_lock<std::mutex> lock(mu_);
  if (doc_.epoch != expected_epoch) {
    return Status::failed_precondition("the ring configuration changed (epoch " +
                                       std::to_string(doc_.epoch) + ", expected " +
                                       std::to_string(expected_epoch) + ")");
  }
  if (highest_seen_ > doc_.epoch && next.epoch < highest_seen_) {
    // The document was lost (a restart without ring-state-file) and nodes run a newer one:
    // only that one may come back. A change made now would split the ring for good.
    return Status::refused(
        "the ring configuration hosted here was lost (its node restarted without "
        "ring-state-file): it is at epoch " +
        std::to_string(doc_.epoch) + ", but " +
        (highest_seen_by_.empty() ? std::string("a node") : "node '" + highest_seen_by_ + "'") +
        " runs epoch " + std::to_string(highest_seen_) +
        ". The other nodes write their configuration back; retry when RING INFO here shows "
        "ring_epoch " +
        std::to_string(highest_seen_));
  }
  if (!state_file_.empty()) {
    std::string tmp = state_file_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << next.to_json() << "\n";
      if (!out) return Status::io_error("can't write " + tmp);
    }
    if (std::rename(tmp.c_str(), state_file_.c_str()) != 0)
      return Status::io_error("can't rename " + tmp + " to " + state_file_);
  }
  doc_ = next;
  changed_.notify_all();
  return Status::ok();
}

Result<RingConfig> LocalConfigService::wait_newer(uint64_t known_epoch, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return doc_.epoch > known_epoch; });
  return doc_;
}

Status LocalConfigService::report(const NodeStatus& status) {
  std::lock_guard<std::mutex> lock(mu_);
  saw_epoch_locked(status.applied_epoch, status.id);
  statuses_[status.id] = status;
  return Status::ok();
}

void LocalConfigService::note_epoch(uint64_t epoch, const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  saw_epoch_locked(epoch, who);
}

void LocalConfigService::saw_epoch_locked(uint64_t epoch, const std::string& who) {
  if (epoch <= highest_seen_) return;
  highest_seen_ = epoch;
  highest_seen_by_ = who;
  if (epoch > doc_.epoch) {
    // A node runs an epoch this document never reached: it was lost (a restart without
    // ring-state-file). The nodes write theirs back if this is still the fresh ring a restart
    // starts (Cluster::restore_service); store() takes nothing older meanwhile.
    LOG_WARNING(
        "Node %s runs ring epoch %llu, but the ring configuration hosted here is at epoch %llu: "
        "it was lost (restart without ring-state-file?)",
        who.empty() ? "?" : who.c_str(), static_cast<unsigned long long>(epoch),
        static_cast<unsigned long long>(doc_.epoch));
  }
}

Result<std::vector<NodeStatus>> LocalConfigService::statuses() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeStatus> out;
  for (auto& [id, s] : statuses_) out.push_back(s);
  return out;
}

// ---------------------------------------------------------------- ringkv://host:port

namespace {

// The document hosted by another ringkv node. Requests go over one connection; a watcher thread,
// started by the first wait_newer(), long-polls the host (RINGKV.CFG WAIT) over a second one, so
// a node learns of a new epoch as soon as its host applies it, and an idle cluster exchanges one
// request per change (or per kWatchMs) instead of a GET every few tens of milliseconds.
class RemoteConfigService final : public ConfigService {
 public:
  // How long one long poll waits on the host before it replies with the document as it is.
  static constexpr int kWatchMs = 5000;

  RemoteConfigService(std::string host, int port, std::string password, std::string node_id)
      : host_(std::move(host)),
        port_(port),
        password_(std::move(password)),
        node_id_(std::move(node_id)) {}
  void set_password(const std::string& password) override {
    std::lock_guard<std::mutex> lock(password_mu_);
    password_ = password;
  }
  ~RemoteConfigService() override {
    {
      std::lock_guard<std::mutex> lock(watch_mu_);
      stop_ = true;
      // Ends a long poll in progress at once; the watcher frees its connection itself.
      if (watch_ctx_ != nullptr) ::shutdown(watch_ctx_->fd, SHUT_RDWR);
    }
    watch_cv_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    if (ctx_) redisFree(ctx_);
  }
  std::string describe() const override {
    return "ringkv://" + host_ + ":" + std::to_string(port_);
  }

  Result<RingConfig> load() override {
    std::lock_guard<std::mutex> lock(mu_);
    return parse_document(call(&ctx_, {"RINGKV.CFG", "GET"}, 1000));
  }

  Status store(uint64_t expected_epoch, const RingConfig& next) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r =
        call(&ctx_, {"RINGKV.CFG", "CAS", std::to_string(expected_epoch), next.to_json()}, 1000);
    return r ? Status::ok() : r.status();
  }

  Result<RingConfig> wait_newer(uint64_t known_epoch, int timeout_ms) override {
    std::unique_lock<std::mutex> lock(watch_mu_);
    if (!watcher_.joinable()) watcher_ = std::thread([this] { watch_loop(); });
    watch_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      return stop_ || (latest_ && latest_->is_ok() && (*latest_)->epoch > known_epoch);
    });
    if (latest_) return *latest_;
    lock.unlock();
    return load();  // the watcher has not heard from the host yet
  }

  Status report(const NodeStatus& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = call(&ctx_, {"RINGKV.CFG", "REPORT", status.to_json()}, 1000);
    return r ? Status::ok() : r.status();
  }

  Result<std::vector<NodeStatus>> statuses() override {
    std::unique_lock<std::mutex> lock(mu_);
    auto r = call(&ctx_, {"RINGKV.CFG", "STATUSES"}, 1000);
    lock.unlock();
    if (!r) return r.status();
    json j = json::parse(*r, nullptr, false);
    if (!j.is_array()) return Status::io_error("bad RINGKV.CFG STATUSES reply");
    std::vector<NodeStatus> out;
    for (const auto& e : j) {
      auto s = NodeStatus::from_json(e.dump());
      if (s) out.push_back(std::move(s).value());
    }
    return out;
  }

 private:
  static Result<RingConfig> parse_document(const Result<std::string>& r) {
    if (!r) return r.status();
    if (r->empty()) return RingConfig{};
    return RingConfig::from_json(*r);
  }

  // Long-polls the host and keeps what it heard in latest_, until the service is destroyed.
  void watch_loop() {
    bool polling = false;  // the host predates RINGKV.CFG WAIT: GET every 50 ms instead
    uint64_t known = 0;
    while (true) {
      Result<std::string> r =
          polling ? call(&watch_ctx_, {"RINGKV.CFG", "GET"}, 1000)
                  : call(&watch_ctx_,
                         {"RINGKV.CFG", "WAIT", std::to_string(known), std::to_string(kWatchMs)},
                         kWatchMs + 2000);
      if (!polling && !r && r.status().message().rfind("ERR syntax error", 0) == 0) {
        polling = true;  // the host does not know WAIT
        continue;
      }
      Result<RingConfig> doc = parse_document(r);
      if (doc) known = doc->epoch;
      std::unique_lock<std::mutex> lock(watch_mu_);
      if (stop_) break;
      latest_ = std::move(doc);
      watch_cv_.notify_all();
      // After a failure, or when polling, wait a little before asking again.
      if (polling || !latest_->is_ok())
        watch_cv_.wait_for(lock, std::chrono::milliseconds(polling ? 50 : 100),
                           [&] { return stop_; });
      if (stop_) break;
    }
    std::lock_guard<std::mutex> lock(watch_mu_);
    if (watch_ctx_) redisFree(watch_ctx_);
    watch_ctx_ = nullptr;
  }

  // One request over *ctx (connecting, and reconnecting once, as needed); the reply as a string
  // ("" for nil). Error replies come back as kRefused (kFailedPrecondition for EPOCH). Callers
  // serialise the use of *ctx; the watcher's connection is swapped only under watch_mu_.
  Result<std::string> call(redisContext** ctx, const std::vector<std::string>& args,
                           int timeout_ms) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (*ctx == nullptr || (*ctx)->err) {
        Status st = connect(ctx);
        if (!st) return st;
      }
      timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
      redisSetTimeout(*ctx, tv);
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      auto* r = static_cast<redisReply*>(
          redisCommandArgv(*ctx, static_cast<int>(args.size()), argv.data(), lens.data()));
      if (r == nullptr) {
        replace_context(ctx, nullptr);
        continue;
      }
      std::string out;
      Status st;
      if (r->type == REDIS_REPLY_ERROR) {
        std::string e(r->str, r->len);
        st = e.rfind("EPOCH", 0) == 0 ? Status::failed_precondition(e) : Status::refused(e);
      } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        out.assign(r->str, r->len);
      }
      freeReplyObject(r);
      if (!st.is_ok()) return st;
      return out;
    }
    return Status::unreachable("configuration service " + describe() + " did not answer");
  }

  Status connect(redisContext** ctx) {
    if (ctx == &watch_ctx_) {
      std::lock_guard<std::mutex> lock(watch_mu_);
      if (stop_) return Status::unreachable("configuration service " + describe() + ": closing");
    }
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
    if (c == nullptr || c->err) {
      std::string why = c ? c->errstr : "out of memory";
      if (c) redisFree(c);
      replace_context(ctx, nullptr);
      return Status::unreachable("configuration service " + describe() + ": " + why);
    }
    redisSetTimeout(c, tv);
    if (const std::string pass = password(); !pass.empty()) {
      auto* a = static_cast<redisReply*>(redisCommand(c, "AUTH %b", pass.data(), pass.size()));
      if (a) freeReplyObject(a);
    }
    if (!node_id_.empty()) {
      auto* h = static_cast<redisReply*>(
          redisCommand(c, "RINGKV.HELLO %b 2", node_id_.data(), node_id_.size()));
      if (h) freeReplyObject(h);
    }
    replace_context(ctx, c);
    return Status::ok();
  }

  // Frees *ctx and puts c in its place; the watcher's under watch_mu_ (see the destructor).
  void replace_context(redisContext** ctx, redisContext* c) {
    std::unique_lock<std::mutex> lock(watch_mu_, std::defer_lock);
    if (ctx == &watch_ctx_) lock.lock();
    if (*ctx) redisFree(*ctx);
    *ctx = c;
    if (ctx == &watch_ctx_ && stop_ && c != nullptr) ::shutdown(c->fd, SHUT_RDWR);
  }

  std::string password() const {
    std::lock_guard<std::mutex> lock(password_mu_);
    return password_;
  }

  std::string host_;
  int port_;
  mutable std::mutex password_mu_;
  std::string password_;  // guarded by password_mu_
  std::string node_id_;
  std::mutex mu_;  // guards ctx_, the connection of load, store, report and statuses
  redisContext* ctx_ = nullptr;

  std::mutex watch_mu_;  // guards what follows
  std::condition_variable watch_cv_;
  std::optional<Result<RingConfig>> latest_;  // what the watcher last heard
  bool stop_ = false;
  redisContext* watch_ctx_ = nullptr;  // the watcher's; freed only under watch_mu_
  std::thread watcher_;
};

}  // namespace

std::unique_ptr<ConfigService> make_etcd_config_service(const std::string& host, int port,
                                                        const std::string& prefix);

Result<std::unique_ptr<ConfigService>> open_config_service(const std::string& uri,
                                                           const std::string& state_file,
                                                           const std::string& password,
                                                           const std::string& node_id) {
  if (uri == "local") return std::unique_ptr<ConfigService>(new LocalConfigService(state_file));
  auto parse_hostport = [](std::string_view rest, std::string* host, int* port,
                           std::string* path) -> bool {
    size_t slash = rest.find('/');
    std::string_view hp = rest.substr(0, slash);
    if (path) *path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    return split_address(hp, host, port);
  };
  std::string host, path;
  int port = 0;
  if (uri.rfind("ringkv://", 0) == 0) {
    if (!parse_hostport(std::string_view(uri).substr(9), &host, &port, nullptr))
      return Status::invalid_argument("discovery '" + uri + "': expected ringkv://host:port");
    return std::unique_ptr<ConfigService>(new RemoteConfigService(host, port, password, node_id));
  }
  if (uri.rfind("etcd://", 0) == 0) {
    if (!parse_hostport(std::string_view(uri).substr(7), &host, &port, &path))
      return Status::invalid_argument("discovery '" + uri + "': expected etcd://host:port/prefix");
    if (path.empty()) path = "ringkv";
    return make_etcd_config_service(host, port, path);
  }
  return Status::invalid_argument(
      "discovery '" + uri + "': expected local, ringkv://host:port or etcd://host:port/prefix");
}

}  // namespace ringkv::cluster
