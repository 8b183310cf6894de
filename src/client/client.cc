// The client: routing of single keys and batches over the current Topology, the failure handling
// around it (next replica, any node, retry of transient refusals), the ring changes, and the
// background refresh of the configuration.
#include "ringkv/client.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "client/endpoint.h"
#include "client/topology.h"
#include "client/workers.h"
#include "common/strings.h"
#include "ringkv/token.h"

namespace ringkv {

using client::ContextPtr;
using client::Endpoint;
using client::Lease;
using client::ReplyPtr;
using client::Topology;

namespace {

// Pauses between rounds of retries of transient refusals.
constexpr int64_t kFirstBackoffMs = 20;
constexpr int64_t kMaxBackoffMs = 200;
// A batch chunk is closed at this many bytes of keys and values (or batch_chunk_keys keys).
constexpr size_t kChunkBytes = size_t{1} << 20;
// Requested refreshes closer together than this are merged.
constexpr int64_t kMinRefreshGapMs = 50;
// How long a ring change may wait on the server behind another one's move (the server gives up
// after 600 s), plus a margin.
constexpr time_t kChangeWaitSeconds = 610;

// A key for an error message: printable, at most 40 bytes shown.
std::string describe_key(std::string_view key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < key.size() && i < 40; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (key.size() > 40) out += "...(" + std::to_string(key.size()) + " bytes)";
  out += "'";
  return out;
}

// Several attempts failed: one Status for all of them. kTimedOut when any attempt timed out (a
// write may then have been applied), otherwise the first error that is not kUnreachable (a
// server's refusal says more than a refused connection), otherwise kUnreachable.
Status combine(std::string_view what, const std::vector<Status>& errors) {
  if (errors.empty()) return Status::unreachable(std::string(what) + ": no server is known");
  std::string message(what);
  message += errors.size() == 1 ? ": " : " on every server tried: ";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) message += "; ";
    message += errors[i].message();
  }
  Code code = Code::kUnreachable;
  for (const auto& e : errors) {
    if (e.code() == Code::kTimedOut) {
      code = Code::kTimedOut;
      break;
    }
    if (code == Code::kUnreachable && e.code() != Code::kUnreachable) code = e.code();
  }
  return Status(code, std::move(message));
}

bool contains(const std::vector<Endpoint*>& v, const Endpoint* e) {
  return std::find(v.begin(), v.end(), e) != v.end();
}

// argv/lens for hiredis, filled incrementally.
struct Argv {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  void clear() {
    argv.clear();
    lens.clear();
  }
  void add(std::string_view s) {
    argv.push_back(s.data());
    lens.push_back(s.size());
  }
  int argc() const { return static_cast<int>(argv.size()); }
  // hiredis 0.14 takes `const char**` although it never writes through it.
  const char** data() const { return const_cast<const char**>(argv.data()); }
};

}  // namespace

// ================================================================ Client::Impl

class Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl();

  Status start();

  Result<ReplyPtr> key_command(std::string_view key, std::string_view what, const Argv& args);
  Status admin(const Argv& args, std::string_view what);

  enum class Op { kGet, kPut, kDel };
  struct Batch {
    Op op = Op::kGet;
    std::vector<std::string_view> keys;
    std::vector<std::string_view> values;                    // kPut
    std::vector<std::optional<std::string>>* out = nullptr;  // kGet: sized like keys
    std::atomic<size_t> removed{0};                          // kDel
  };
  Status run_batch(Batch& batch);

  std::shared_ptr<const Topology> snapshot() const {
    std::lock_guard lock(topo_mu_);
    return topo_;
  }
  Status refresh();
  void request_refresh();

  const ClientOptions& options() const { return options_; }

 private:
  struct Group;

  Result<ReplyPtr> send_one(Endpoint& ep, const Argv& args, std::string_view what);
  void run_group(Batch& batch, Group& g);
  Status fetch_config(Endpoint& ep, uint64_t* epoch);
  Result<uint64_t> fetch_epoch(Endpoint& ep);
  Status install(const client::ConfigDoc& doc);
  std::shared_ptr<Endpoint> endpoint_for(const std::string& address,
                                         const std::shared_ptr<const Topology>& current);
  void refresher_loop();

  const ClientOptions options_;
  // Endpoints point at settings_: it is declared before (so destroyed after) every endpoint owner.
  client::ConnectSettings settings_;
  std::vector<std::shared_ptr<Endpoint>> seeds_;

  mutable std::mutex topo_mu_;
  std::shared_ptr<const Topology> topo_;  // guarded by topo_mu_; not null once start() succeeded

  std::unique_ptr<client::Workers> workers_;
  std::atomic<size_t> round_robin_{0};

  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;
  bool refresh_wanted_ = false;  // guarded by refresh_mu_
  bool stopping_ = false;        // guarded by refresh_mu_
  std::thread refresher_;
};

Client::Impl::Impl(ClientOptions options) : options_(std::move(options)) {
  settings_.connect_timeout_ms = options_.connect_timeout_ms;
  settings_.command_timeout_ms = options_.command_timeout_ms;
  settings_.pool_size = options_.pool_size;
  settings_.password = options_.password;
}

Client::Impl::~Impl() {
  {
    std::lock_guard lock(refresh_mu_);
    stopping_ = true;
  }
  refresh_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  workers_.reset();
}

Status Client::Impl::start() {
  for (const auto& s : options_.seeds) {
    std::string host;
    int port;
    if (!client::split_host_port(s, &host, &port))
      return Status::invalid_argument("seed '" + s + "' is not a host:port address");
    bool duplicate = false;
    for (const auto& e : seeds_) duplicate = duplicate || e->address() == s;
    if (!duplicate) seeds_.push_back(std::make_shared<Endpoint>(s, host, port, &settings_));
  }
  std::vector<Status> errors;
  for (const auto& seed : seeds_) {
    uint64_t epoch;
    Status st = fetch_config(*seed, &epoch);
    if (st) break;
    errors.push_back(st);
  }
  if (!snapshot()) return combine("reading the ring configuration from the seeds", errors);
  workers_ = std::make_unique<client::Workers>(options_.batch_threads);
  refresher_ = std::thread([this] { refresher_loop(); });
  return Status::ok();
}

// ---------------------------------------------------------------- configuration

std::shared_ptr<Endpoint> Client::Impl::endpoint_for(
    const std::string& address, const std::shared_ptr<const Topology>& current) {
  if (current) {
    for (const auto& e : current->every_endpoint())
      if (e->address() == address) return e;
  }
  for (const auto& e : seeds_)
    if (e->address() == address) return e;
  std::string host;
  int port;
  if (!client::split_host_port(address, &host, &port)) return nullptr;
  return std::make_shared<Endpoint>(address, host, port, &settings_);
}

Status Client::Impl::install(const client::ConfigDoc& doc) {
  auto current = snapshot();
  if (current && doc.epoch <= current->epoch()) return Status::ok();
  auto built = Topology::build(
      doc, [&](const std::string& a) { return endpoint_for(a, current); }, seeds_);
  if (!built) {
    return Status::internal("the ring configuration of epoch " + std::to_string(doc.epoch) +
                            " cannot be used: " + built.status().message());
  }
  std::lock_guard lock(topo_mu_);
  // Epochs only move forward: a lagging node's older document never replaces a newer one.
  if (!topo_ || doc.epoch > topo_->epoch()) topo_ = std::move(built).value();
  return Status::ok();
}

Status Client::Impl::fetch_config(Endpoint& ep, uint64_t* epoch) {
  Argv args;
  args.add("RING");
  args.add("CONFIG");
  auto r = send_one(ep, args, "RING CONFIG");
  if (!r) return r.status();
  const redisReply* rep = r->get();
  if (rep->type == REDIS_REPLY_ERROR)
    return Status::refused(ep.address() + ": " + std::string(client::reply_text(rep)));
  if (rep->type != REDIS_REPLY_STRING)
    return Status::io_error(ep.address() + ": RING CONFIG did not return a string");
  auto doc = client::parse_config(client::reply_text(rep));
  if (!doc) return Status::internal(ep.address() + ": " + doc.status().message());
  *epoch = doc->epoch;
  return install(*doc);
}

Result<uint64_t> Client::Impl::fetch_epoch(Endpoint& ep) {
  Argv args;
  args.add("RING");
  args.add("INFO");
  auto r = send_one(ep, args, "RING INFO");
  if (!r) return r.status();
  const redisReply* rep = r->get();
  if (rep->type == REDIS_REPLY_ERROR)
    return Status::refused(ep.address() + ": " + std::string(client::reply_text(rep)));
  std::string_view text = client::reply_text(rep);
  size_t p = text.find("ring_epoch:");
  uint64_t epoch;
  if (p == std::string_view::npos)
    return Status::io_error(ep.address() + ": RING INFO has no ring_epoch");
  std::string_view rest = text.substr(p + 11);
  rest = rest.substr(0, rest.find_first_of("\r\n"));
  if (!parse_uint64(rest, &epoch))
    return Status::io_error(ep.address() + ": RING INFO has a malformed ring_epoch");
  return epoch;
}

Status Client::Impl::refresh() {
  auto topo = snapshot();
  std::vector<Endpoint*> eps;
  topo->all_endpoints(round_robin_.fetch_add(1, std::memory_order_relaxed), client::monotonic_ms(),
                      &eps);
  std::vector<Status> errors;
  for (Endpoint* ep : eps) {
    uint64_t epoch;
    Status st = fetch_config(*ep, &epoch);
    if (st) return st;
    if (st.code() == Code::kUnreachable || st.code() == Code::kTimedOut ||
        st.code() == Code::kIoError)
      ep->mark_failed();
    errors.push_back(st);
  }
  return combine("refreshing the ring configuration", errors);
}

void Client::Impl::request_refresh() {
  {
    std::lock_guard lock(refresh_mu_);
    refresh_wanted_ = true;
  }
  refresh_cv_.notify_one();
}

void Client::Impl::refresher_loop() {
  const int64_t interval = options_.refresh_interval_ms;
  int64_t next_check = client::monotonic_ms() + interval;
  int64_t last_refresh = 0;
  std::unique_lock lock(refresh_mu_);
  for (;;) {
    if (interval > 0) {
      refresh_cv_.wait_for(
          lock,
          std::chrono::milliseconds(std::max<int64_t>(0, next_check - client::monotonic_ms())),
          [&] { return stopping_ || refresh_wanted_; });
    } else {
      refresh_cv_.wait(lock, [&] { return stopping_ || refresh_wanted_; });
    }
    if (stopping_) return;
    bool wanted = refresh_wanted_;
    refresh_wanted_ = false;
    int64_t now = client::monotonic_ms();
    if (!wanted && (interval <= 0 || now < next_check)) continue;
    lock.unlock();
    if (wanted) {
      // Merge bursts (many requests failing at once) into one refresh.
      if (now - last_refresh < kMinRefreshGapMs)
        std::this_thread::sleep_for(std::chrono::milliseconds(kMinRefreshGapMs));
      (void)refresh();
      last_refresh = client::monotonic_ms();
    } else {
      // The cheap periodic check: compare epochs, fetch the document only when it moved.
      auto topo = snapshot();
      std::vector<Endpoint*> eps;
      topo->all_endpoints(round_robin_.fetch_add(1, std::memory_order_relaxed), now, &eps);
      for (Endpoint* ep : eps) {
        auto epoch = fetch_epoch(*ep);
        if (!epoch) {
          ep->mark_failed();
          continue;
        }
        if (*epoch != topo->epoch()) {
          uint64_t got;
          (void)fetch_config(*ep, &got);
        }
        break;
      }
    }
    next_check = client::monotonic_ms() + interval;
    lock.lock();
  }
}

// ---------------------------------------------------------------- single requests

Result<ReplyPtr> Client::Impl::send_one(Endpoint& ep, const Argv& args, std::string_view what) {
  // A pooled connection may have been closed by the server while idle (a restart, a timeout):
  // that shows as an I/O error on a reused connection, and earns one more try on a fresh one.
  for (int attempt = 0;; ++attempt) {
    auto lease = ep.checkout();
    if (!lease) return lease.status();
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(lease->get(), args.argc(), args.data(), args.lens.data())));
    if (r) return r;
    lease->mark_broken();
    Status st = client::context_error(ep.address(), lease->get(), what, false);
    if (attempt == 0 && lease->reused() && st.code() == Code::kIoError) {
      ep.drop_idle();
      continue;
    }
    return st;
  }
}

Result<ReplyPtr> Client::Impl::key_command(std::string_view key, std::string_view what,
                                           const Argv& args) {
  const Token token = token_of(key);
  const int64_t deadline = client::monotonic_ms() + options_.retry_window_ms;
  int64_t backoff = kFirstBackoffMs;
  std::vector<Endpoint*> candidates;
  std::vector<Status> errors;
  for (;;) {
    errors.clear();
    bool transient = false;
    auto topo = snapshot();
    topo->candidates(token, client::monotonic_ms(), &candidates);
    for (size_t i = 0; i < candidates.size(); ++i) {
      Endpoint* ep = candidates[i];
      auto r = send_one(*ep, args, what);
      if (!r) {
        // Unreachable, timed out or cut off: the next server in the preference list, then any
        // node, can serve it (they proxy). A primary that fails may mean the ring changed.
        ep->mark_failed();
        if (i == 0) request_refresh();
        errors.push_back(r.status());
        continue;
      }
      ReplyPtr rep = std::move(r).value();
      if (rep->type == REDIS_REPLY_ERROR) {
        std::string_view text = client::reply_text(rep.get());
        Status st = Status::refused(ep->address() + ": " + std::string(text));
        if (!client::is_transient_error(text)) return st;
        transient = true;
        request_refresh();
        errors.push_back(std::move(st));
        continue;
      }
      return rep;
    }
    int64_t now = client::monotonic_ms();
    if (!transient || now >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(backoff, deadline - now)));
    backoff = std::min(backoff * 2, kMaxBackoffMs);
  }
  return combine(std::string(what) + " " + describe_key(key), errors);
}

Status Client::Impl::admin(const Argv& args, std::string_view what) {
  auto topo = snapshot();
  const uint64_t before = topo->epoch();
  std::vector<Endpoint*> eps;
  topo->all_endpoints(round_robin_.fetch_add(1, std::memory_order_relaxed), client::monotonic_ms(),
                      &eps);
  std::vector<Status> errors;
  for (Endpoint* ep : eps) {
    // A fresh connection: a ring change must not be sent twice, so it is never retried on a
    // pooled connection that turns out to be stale, nor sent to another node once it left.
    auto lease = ep->connect_fresh();
    if (!lease) {
      if (lease.status().code() == Code::kRefused) return lease.status();  // AUTH refused
      ep->mark_failed();
      errors.push_back(lease.status());
      continue;
    }
    // The server queues a change behind one still moving data, for up to 600 s, and answers
    // then: wait that long rather than the command timeout, which would report a timeout for a
    // change that still happens later. (This connection is not pooled.)
    timeval change_wait{kChangeWaitSeconds, 0};
    redisSetTimeout(lease->get(), change_wait);
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(lease->get(), args.argc(), args.data(), args.lens.data())));
    if (!r) return client::context_error(ep->address(), lease->get(), what, false);
    if (r->type == REDIS_REPLY_ERROR)
      return Status::refused(ep->address() + ": " + std::string(client::reply_text(r.get())));
    // Accepted. The node that took it writes the new configuration before it answers; read it
    // back from there (polling briefly, its event loops may publish it a moment later) so this
    // client routes by the new ring as soon as the call returns.
    const int64_t deadline = client::monotonic_ms() + options_.command_timeout_ms;
    for (;;) {
      uint64_t epoch = 0;
      Status st = fetch_config(*ep, &epoch);
      if ((st && epoch > before) || client::monotonic_ms() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (snapshot()->epoch() <= before) request_refresh();
    return Status::ok();
  }
  return combine(what, errors);
}

// ---------------------------------------------------------------- batches

struct Client::Impl::Group {
  Endpoint* ep = nullptr;
  std::vector<uint32_t> keys;  // indices into the batch, ascending
  // Results.
  Status failure;               // the connection failed: retry `retry` elsewhere
  Status refusal;               // a non-transient error reply: the batch fails
  Status transient;             // the last transient refusal (TRYAGAIN...)
  std::vector<uint32_t> retry;  // keys to send again, ascending
};

void Client::Impl::run_group(Batch& batch, Group& g) {
  // Chunk boundaries: at most batch_chunk_keys keys, and about kChunkBytes of request, so a batch
  // of large values does not become one huge command. starts[k] .. starts[k + 1] is chunk k.
  std::vector<size_t> starts = {0};
  {
    size_t keys = 0, bytes = 0;
    for (size_t j = 0; j < g.keys.size(); ++j) {
      uint32_t idx = g.keys[j];
      size_t b = batch.keys[idx].size() + (batch.op == Op::kPut ? batch.values[idx].size() : 0);
      if (keys > 0 && (keys == options_.batch_chunk_keys || bytes + b > kChunkBytes)) {
        starts.push_back(j);
        keys = bytes = 0;
      }
      ++keys;
      bytes += b;
    }
    starts.push_back(g.keys.size());
  }
  const size_t chunks = starts.size() - 1;
  const char* name = batch.op == Op::kGet ? "MGET" : batch.op == Op::kPut ? "MSET" : "DEL";
  Argv args;
  auto append = [&](redisContext* c, size_t k) {
    args.clear();
    args.add(name);
    for (size_t j = starts[k]; j < starts[k + 1]; ++j) {
      uint32_t idx = g.keys[j];
      args.add(batch.keys[idx]);
      if (batch.op == Op::kPut) args.add(batch.values[idx]);
    }
    return redisAppendCommandArgv(c, args.argc(), args.data(), args.lens.data()) == REDIS_OK;
  };
  auto retry_from = [&](size_t k) {
    for (size_t j = starts[k]; j < g.keys.size(); ++j) g.retry.push_back(g.keys[j]);
  };

  for (int attempt = 0;; ++attempt) {
    auto lease = g.ep->checkout();
    if (!lease) {
      g.failure = lease.status();
      g.retry = g.keys;
      return;
    }
    redisContext* c = lease->get();
    // Two chunks in flight: chunk k+1 is written while chunk k's reply is awaited (redisGetReply
    // flushes everything appended first), which keeps the server busy without letting unread
    // replies pile up without bound.
    if (!append(c, 0)) {
      lease->mark_broken();
      g.failure = Status::io_error(g.ep->address() + ": out of memory building a request");
      g.retry = g.keys;
      return;
    }
    size_t first_retry = chunks;  // for puts: once a chunk must be resent, so must all after it
    bool stale = false;
    for (size_t k = 0; k < chunks; ++k) {
      if (k + 1 < chunks && !append(c, k + 1)) {
        lease->mark_broken();
        g.failure = Status::io_error(g.ep->address() + ": out of memory building a request");
        retry_from(k);
        return;
      }
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        lease->mark_broken();
        Status st = client::context_error(g.ep->address(), c, std::string(name) + " batch", false);
        if (k == 0 && attempt == 0 && lease->reused() && st.code() == Code::kIoError) {
          g.ep->drop_idle();
          stale = true;
          break;
        }
        g.failure = std::move(st);
        retry_from(std::min(k, first_retry));
        return;
      }
      ReplyPtr rep(static_cast<redisReply*>(raw));
      const size_t begin = starts[k], end = starts[k + 1];
      if (rep->type == REDIS_REPLY_ERROR) {
        std::string_view text = client::reply_text(rep.get());
        Status st = Status::refused(g.ep->address() + ": " + std::string(text));
        if (client::is_transient_error(text)) {
          g.transient = std::move(st);
          if (batch.op == Op::kPut) {
            first_retry = std::min(first_retry, k);
          } else {
            for (size_t j = begin; j < end; ++j) g.retry.push_back(g.keys[j]);
          }
        } else if (g.refusal.is_ok()) {
          g.refusal = std::move(st);
        }
        continue;
      }
      switch (batch.op) {
        case Op::kGet: {
          if (rep->type != REDIS_REPLY_ARRAY || rep->elements != end - begin) {
            g.refusal = Status::io_error(g.ep->address() + ": MGET returned an unexpected reply");
            break;
          }
          for (size_t j = begin; j < end; ++j) {
            const redisReply* e = rep->element[j - begin];
            auto& slot = (*batch.out)[g.keys[j]];
            if (e->type == REDIS_REPLY_STRING) {
              slot.emplace(e->str, e->len);
            } else if (e->type == REDIS_REPLY_NIL) {
              slot.reset();
            } else if (e->type == REDIS_REPLY_ERROR &&
                       client::is_transient_error(client::reply_text(e))) {
              g.transient =
                  Status::refused(g.ep->address() + ": " + std::string(client::reply_text(e)));
              g.retry.push_back(g.keys[j]);
            } else if (g.refusal.is_ok()) {
              g.refusal = Status::refused(
                  g.ep->address() + ": MGET returned an unexpected element" +
                  (e->type == REDIS_REPLY_ERROR ? ": " + std::string(client::reply_text(e))
                                                : std::string()));
            }
          }
          break;
        }
        case Op::kPut:
          if (rep->type != REDIS_REPLY_STATUS && g.refusal.is_ok())
            g.refusal = Status::io_error(g.ep->address() + ": MSET returned an unexpected reply");
          break;
        case Op::kDel:
          if (rep->type == REDIS_REPLY_INTEGER) {
            batch.removed.fetch_add(static_cast<size_t>(rep->integer), std::memory_order_relaxed);
          } else if (g.refusal.is_ok()) {
            g.refusal = Status::io_error(g.ep->address() + ": DEL returned an unexpected reply");
          }
          break;
      }
    }
    if (stale) continue;
    if (first_retry < chunks) retry_from(first_retry);
    std::sort(g.retry.begin(), g.retry.end());
    return;
  }
}

Status Client::Impl::run_batch(Batch& batch) {
  const size_t n = batch.keys.size();
  if (n == 0) return Status::ok();
  const char* what = batch.op == Op::kGet   ? "get_many"
                     : batch.op == Op::kPut ? "put_many"
                                            : "remove_many";
  std::vector<Token> tokens(n);
  for (size_t i = 0; i < n; ++i) tokens[i] = token_of(batch.keys[i]);

  std::vector<uint32_t> pending(n);
  for (size_t i = 0; i < n; ++i) pending[i] = static_cast<uint32_t>(i);
  std::vector<Endpoint*> failed;  // servers that failed during this call: route around them
  std::vector<Status> errors;
  const int64_t deadline = client::monotonic_ms() + options_.retry_window_ms;
  int64_t backoff = kFirstBackoffMs;

  while (!pending.empty()) {
    auto topo = snapshot();
    const auto& all = topo->every_endpoint();
    const size_t servers = topo->ring().server_count();
    const int64_t now = client::monotonic_ms();
    const uint32_t replicas = topo->replicas();
    // Group by the first usable server of each key's preference list (the primary unless it
    // failed), then by any usable node. Indices into `all`: ring servers come first, in ring
    // index order, so a ring index is its own position there.
    std::vector<Group> groups(all.size());
    std::vector<int> usable(all.size(), -1);  // -1 unknown, 0 no, 1 yes, 2 yes but failed lately
    auto state_of = [&](size_t i) {
      if (usable[i] < 0) {
        Endpoint* e = all[i].get();
        usable[i] = contains(failed, e) ? 0 : e->recently_failed(now) ? 2 : 1;
      }
      return usable[i];
    };
    uint32_t list[ring::kMaxReplicasLimit];
    size_t unroutable = 0;
    for (uint32_t idx : pending) {
      size_t k = servers == 0 ? 0 : topo->ring().preference_list(tokens[idx], replicas, list);
      size_t chosen = SIZE_MAX, second_choice = SIZE_MAX;
      for (size_t i = 0; i < k && chosen == SIZE_MAX; ++i) {
        int s = state_of(list[i]);
        if (s == 1)
          chosen = list[i];
        else if (s == 2 && second_choice == SIZE_MAX)
          second_choice = list[i];
      }
      if (chosen == SIZE_MAX) chosen = second_choice;
      for (size_t i = 0; i < all.size() && chosen == SIZE_MAX; ++i) {
        size_t j = (tokens[idx] + i) % all.size();
        if (state_of(j) != 0) chosen = j;
      }
      if (chosen == SIZE_MAX) {
        ++unroutable;
        continue;
      }
      groups[chosen].keys.push_back(idx);
    }
    if (unroutable > 0) {
      Status st = combine(std::string(what) + ": " + std::to_string(unroutable) + " of " +
                              std::to_string(n) + " keys could not be sent",
                          errors);
      return st;
    }
    std::vector<Group*> work;
    for (size_t i = 0; i < groups.size(); ++i) {
      if (groups[i].keys.empty()) continue;
      groups[i].ep = all[i].get();
      work.push_back(&groups[i]);
    }
    workers_->run(work.size(), [&](size_t i) { run_group(batch, *work[i]); });

    std::vector<uint32_t> next;
    bool transient = false;
    Status refusal;
    size_t refused_groups_keys = 0;
    for (Group* g : work) {
      if (!g->failure.is_ok()) {
        g->ep->mark_failed();
        failed.push_back(g->ep);
        errors.push_back(g->failure);
        request_refresh();
      }
      if (!g->transient.is_ok()) {
        transient = true;
        errors.push_back(g->transient);
        request_refresh();
      }
      if (!g->refusal.is_ok()) {
        if (refusal.is_ok()) refusal = g->refusal;
        refused_groups_keys += g->keys.size();
      }
      next.insert(next.end(), g->retry.begin(), g->retry.end());
    }
    if (!refusal.is_ok()) {
      return Status(refusal.code(), std::string(what) + ": a server refused the batch (" +
                                        std::to_string(refused_groups_keys) + " of " +
                                        std::to_string(n) +
                                        " keys in the refused groups): " + refusal.message());
    }
    std::sort(next.begin(), next.end());
    pending.swap(next);
    if (pending.empty()) break;
    if (transient) {
      int64_t t = client::monotonic_ms();
      if (t >= deadline) {
        return combine(std::string(what) + ": " + std::to_string(pending.size()) + " of " +
                           std::to_string(n) + " keys failed",
                       errors);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(backoff, deadline - t)));
      backoff = std::min(backoff * 2, kMaxBackoffMs);
    }
  }
  return Status::ok();
}

// ================================================================ Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::open(ClientOptions options) {
  if (options.seeds.empty())
    return Status::invalid_argument("ClientOptions.seeds is empty: give at least one host:port");
  if (options.connect_timeout_ms <= 0)
    return Status::invalid_argument("ClientOptions.connect_timeout_ms must be > 0");
  if (options.command_timeout_ms <= 0)
    return Status::invalid_argument("ClientOptions.command_timeout_ms must be > 0");
  if (options.pool_size < 1)
    return Status::invalid_argument("ClientOptions.pool_size must be >= 1");
  if (options.refresh_interval_ms < 0)
    return Status::invalid_argument("ClientOptions.refresh_interval_ms must be >= 0");
  if (options.batch_chunk_keys < 1)
    return Status::invalid_argument("ClientOptions.batch_chunk_keys must be >= 1");
  if (options.retry_window_ms < 0)
    return Status::invalid_argument("ClientOptions.retry_window_ms must be >= 0");
  auto impl = std::make_unique<Impl>(std::move(options));
  Status st = impl->start();
  if (!st) return st;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Status Client::put(std::string_view key, std::string_view value) {
  Argv args;
  args.add("SET");
  args.add(key);
  args.add(value);
  auto r = impl_->key_command(key, "SET", args);
  if (!r) return r.status();
  if ((*r)->type != REDIS_REPLY_STATUS)
    return Status::io_error("SET " + describe_key(key) + ": unexpected reply type");
  return Status::ok();
}

Result<std::string> Client::get(std::string_view key) {
  Argv args;
  args.add("GET");
  args.add(key);
  auto r = impl_->key_command(key, "GET", args);
  if (!r) return r.status();
  const redisReply* rep = r->get();
  if (rep->type == REDIS_REPLY_NIL)
    return Status::not_found("key " + describe_key(key) + " not found");
  if (rep->type != REDIS_REPLY_STRING)
    return Status::io_error("GET " + describe_key(key) + ": unexpected reply type");
  return std::string(rep->str, rep->len);
}

Result<bool> Client::remove(std::string_view key) {
  Argv args;
  args.add("DEL");
  args.add(key);
  auto r = impl_->key_command(key, "DEL", args);
  if (!r) return r.status();
  if ((*r)->type != REDIS_REPLY_INTEGER)
    return Status::io_error("DEL " + describe_key(key) + ": unexpected reply type");
  return (*r)->integer > 0;
}

Status Client::put_many(std::span<const std::pair<std::string_view, std::string_view>> items) {
  Impl::Batch b;
  b.op = Impl::Op::kPut;
  b.keys.reserve(items.size());
  b.values.reserve(items.size());
  for (const auto& [k, v] : items) {
    b.keys.push_back(k);
    b.values.push_back(v);
  }
  return impl_->run_batch(b);
}

Status Client::put_many(std::span<const std::pair<std::string, std::string>> items) {
  Impl::Batch b;
  b.op = Impl::Op::kPut;
  b.keys.reserve(items.size());
  b.values.reserve(items.size());
  for (const auto& [k, v] : items) {
    b.keys.push_back(k);
    b.values.push_back(v);
  }
  return impl_->run_batch(b);
}

Result<std::vector<std::optional<std::string>>> Client::get_many(
    std::span<const std::string_view> keys) {
  std::vector<std::optional<std::string>> out(keys.size());
  Impl::Batch b;
  b.op = Impl::Op::kGet;
  b.keys.assign(keys.begin(), keys.end());
  b.out = &out;
  Status st = impl_->run_batch(b);
  if (!st) return st;
  return out;
}

Result<std::vector<std::optional<std::string>>> Client::get_many(
    std::span<const std::string> keys) {
  std::vector<std::string_view> views(keys.begin(), keys.end());
  return get_many(std::span<const std::string_view>(views));
}

Result<size_t> Client::remove_many(std::span<const std::string_view> keys) {
  Impl::Batch b;
  b.op = Impl::Op::kDel;
  b.keys.assign(keys.begin(), keys.end());
  Status st = impl_->run_batch(b);
  if (!st) return st;
  return b.removed.load();
}

Result<size_t> Client::remove_many(std::span<const std::string> keys) {
  std::vector<std::string_view> views(keys.begin(), keys.end());
  return remove_many(std::span<const std::string_view>(views));
}

Status Client::add_server(std::string_view id, std::string_view address, uint32_t weight) {
  if (id.empty()) return Status::invalid_argument("add_server: the server id is empty");
  if (address.empty()) return Status::invalid_argument("add_server: the address is empty");
  if (weight == 0) return Status::invalid_argument("add_server: weight must be at least 1");
  std::string w = std::to_string(weight);
  Argv args;
  args.add("RING");
  args.add("ADDSERVER");
  args.add(id);
  args.add(address);
  if (weight != 1) {
    args.add("WEIGHT");
    args.add(w);
  }
  return impl_->admin(args, "RING ADDSERVER " + std::string(id));
}

Status Client::remove_server(std::string_view id) {
  if (id.empty()) return Status::invalid_argument("remove_server: the server id is empty");
  Argv args;
  args.add("RING");
  args.add("REMOVESERVER");
  args.add(id);
  return impl_->admin(args, "RING REMOVESERVER " + std::string(id));
}

std::vector<std::string> Client::owners(std::string_view key) const {
  auto topo = impl_->snapshot();
  if (topo->ring().server_count() == 0) return {};
  auto ids = topo->ring().preference_ids(token_of(key), topo->replicas());
  if (!ids) return {};
  return std::move(ids).value();
}

ClientTopology Client::topology() const {
  auto topo = impl_->snapshot();
  ClientTopology t;
  t.epoch = topo->epoch();
  t.replicas = topo->replicas();
  t.migrating = topo->migrating();
  for (uint32_t i = 0; i < topo->ring().server_count(); ++i) {
    t.server_ids.push_back(topo->ring().servers()[i].id);
    t.addresses.push_back(topo->endpoint(i)->address());
  }
  return t;
}

Status Client::refresh() { return impl_->refresh(); }

}  // namespace ringkv
