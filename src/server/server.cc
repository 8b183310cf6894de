#include "server/server.h"

#include <openssl/rand.h>

#include <csignal>
#include <cstdio>
#include <ctime>

#include "common/log.h"
#include "common/strings.h"
#include "resp/errors.h"
#include "server/info.h"

namespace ringkv::server {

namespace {

std::string random_hex(size_t n) {
  std::string out(n, '0');
  unsigned char buf[64];
  RAND_bytes(buf, static_cast<int>((n + 1) / 2));
  static const char* kHex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) out[i] = kHex[(buf[i / 2] >> ((i % 2) * 4)) & 0xf];
  return out;
}

ClientSession& session_of(net::Connection& conn) {
  return *static_cast<ClientSession*>(conn.session());
}

// Redis formats command names and arguments into error texts with %s: they end at a NUL byte.
std::string_view c_str(std::string_view s) { return s.substr(0, s.find('\0')); }

// Redis's "unknown command" text: the name and up to 128 bytes of arguments, quoted.
std::string unknown_command_error(const std::vector<std::string_view>& args) {
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    size_t room = 128 - list.size();
    list += "'";
    list.append(c_str(args[i]).substr(0, room));
    list += "' ";
  }
  std::string name(c_str(args[0]).substr(0, 128));
  return "ERR unknown command '" + name + "', with args beginning with: " + list;
}

}  // namespace

// ---------------------------------------------------------------- construction

Server::Server(config::Config& config, const Clock& clock)
    : config_(config), clock_(clock), hlc_(clock, 1) {
  store::StoreOptions so;
  int64_t stripes = config_.get_int("store-stripes");
  int bits = 0;
  while ((int64_t{1} << bits) < stripes) ++bits;
  so.stripe_bits = bits;
  so.tombstone_ttl_ms = config_.get_int("tombstone-ttl") * 1000;
  store::parse_eviction_policy(config_.get("maxmemory-policy"), &so.policy);
  so.lfu_log_factor = static_cast<int>(config_.get_int("lfu-log-factor"));
  so.lfu_decay_time = static_cast<int>(config_.get_int("lfu-decay-time"));
  store_ = std::make_unique<store::Store>(so, clock_, hlc_);
  store_->set_modify_hook([this](std::string_view key) { on_key_modified(key); });
  startup_memory_ = store_->memory_used();
  run_id_ = random_hex(40);
  apply_config_listeners();
}

Server::~Server() {
  if (cluster_) cluster_->stop();
  signals_.clear();
  timers_.clear();
  listeners_.clear();
  loops_.clear();
}

void Server::apply_config_listeners() {
  auto int_listener = [this](auto* target) {
    return [target](const std::string& v) {
      int64_t n = 0;
      parse_int64(v, &n);
      target->store(static_cast<std::remove_reference_t<decltype(target->load())>>(n));
      return Status::ok();
    };
  };
  auto set_int = [&](std::string_view name, auto* target) {
    int_listener(target)(config_.get(name));
    config_.on_change(name, int_listener(target));
  };
  set_int("maxmemory", &maxmemory_);
  set_int("maxmemory-samples", &maxmemory_samples_);
  set_int("timeout", &timeout_s_);
  set_int("hz", &hz_);
  set_int("proto-max-bulk-len", &limits_.max_bulk_len);
  set_int("client-query-buffer-limit", &limits_.query_buffer_limit);
  set_int("tcp-keepalive", &limits_.tcp_keepalive);
  set_int("slowlog-log-slower-than", &slowlog_slower_than_);
  set_int("slowlog-max-len", &slowlog_max_len_);
  set_int("latency-monitor-threshold", &latency_threshold_ms_);
  auto obuf = [this](const std::string& v) {
    // "normal <hard> <soft> <secs> replica ... pubsub ..."
    std::vector<std::string> parts;
    split_args(v, &parts);
    for (size_t i = 0; i + 3 < parts.size(); i += 4) {
      if (parts[i] != "normal") continue;
      int64_t h = 0, s = 0, sec = 0;
      parse_int64(parts[i + 1], &h);
      parse_int64(parts[i + 2], &s);
      parse_int64(parts[i + 3], &sec);
      limits_.obuf_hard = h;
      limits_.obuf_soft = s;
      limits_.obuf_soft_seconds = sec;
    }
    return Status::ok();
  };
  obuf(config_.get("client-output-buffer-limit"));
  config_.on_change("client-output-buffer-limit", obuf);
  auto pass = [this](const std::string& v) {
    {
      std::lock_guard<std::mutex> lock(auth_mu_);
      requirepass_ = v;
    }
    // Every node of a ring has the same password: the links to peers use the new one from their
    // next connection on.
    if (cluster_) cluster_->set_password(v);
    return Status::ok();
  };
  pass(config_.get("requirepass"));
  config_.on_change("requirepass", pass);
  config_.on_change("maxmemory-policy", [this](const std::string& v) {
    store::EvictionPolicy p;
    if (!store::parse_eviction_policy(v, &p)) return Status::invalid_argument("unknown policy");
    store_->set_policy(p);
    return Status::ok();
  });
  auto lfu = [this](const std::string&) {
    store_->set_lfu(static_cast<int>(config_.get_int("lfu-log-factor")),
                    static_cast<int>(config_.get_int("lfu-decay-time")));
    return Status::ok();
  };
  config_.on_change("lfu-log-factor", lfu);
  config_.on_change("lfu-decay-time", lfu);
  config_.on_change("loglevel", [](const std::string& v) {
    static const char* kLevels[] = {"debug", "verbose", "notice", "warning", "nothing"};
    for (int i = 0; i < 5; ++i)
      if (v == kLevels[i]) log_set_level(static_cast<LogLevel>(i));
    return Status::ok();
  });
}

bool Server::needs_auth(net::Connection& conn, ClientSession& s) {
  if (s.authenticated) return false;
  if (auth_required()) return true;
  // requirepass was removed since: the connection is let in, as Redis does (its parser's limits
  // for unauthenticated clients go too).
  s.authenticated = true;
  conn.set_authenticated(true);
  return false;
}

bool Server::check_password(std::string_view pass) const {
  std::lock_guard<std::mutex> lock(auth_mu_);
  if (requirepass_.empty()) return true;
  // Constant-time comparison, as Redis's time_independent_strcmp.
  if (pass.size() != requirepass_.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < pass.size(); ++i)
    diff |= static_cast<unsigned char>(pass[i] ^ requirepass_[i]);
  return diff == 0;
}

// ---------------------------------------------------------------- start / run / stop

Status Server::start() {
  start_ms_ = clock_.now_ms();
  int threads = static_cast<int>(config_.get_int("io-threads"));
  exec_lock_needed_ = threads > 1;
  int port = static_cast<int>(config_.get_int("port"));
  int backlog = static_cast<int>(config_.get_int("tcp-backlog"));
  std::vector<std::string> binds;
  split_args(config_.get("bind"), &binds);
  // TLS settings are checked before anything listens.
  int tls_port = static_cast<int>(config_.get_int("tls-port"));
  if (tls_port != 0 && tls_port == port)
    return Status::invalid_argument("tls-port " + std::to_string(tls_port) + " is also port");
  if (tls_port != 0) {
    Result<std::shared_ptr<net::TlsContext>> ctx = build_tls();
    if (!ctx) return Status::invalid_argument("Failed to configure TLS: " + ctx.status().message());
    tls_.set(std::move(ctx.value()));
  }
  for (const std::string& b : binds) {
    for (int p : {port, tls_port}) {
      if (p == 0) continue;
      Status st = net::Listener::check_port_free(b, p);
      if (!st.is_ok()) return st;
    }
  }
  for (int i = 0; i < threads; ++i) {
    loops_.push_back(std::make_unique<net::EventLoop>(i));
    listeners_.push_back(
        std::make_unique<net::Listener>(*loops_.back(), *this, limits_, next_client_id_));
  }
  if (port != 0) {
    for (int i = 0; i < threads; ++i) {
      for (const std::string& b : binds) {
        // With port 0 for tests, the first bind picks the port and the rest reuse it.
        Status st = listeners_[i]->listen(b, port_ != 0 ? port_ : port, backlog);
        if (!st.is_ok()) return st;
        if (port_ == 0) port_ = listeners_[i]->bound_port();
      }
    }
  }
  if (tls_port != 0) {
    for (int i = 0; i < threads; ++i) {
      for (const std::string& b : binds) {
        Status st = listeners_[i]->listen(b, tls_port, backlog, &tls_);
        if (!st.is_ok()) return st;
      }
    }
  }
  auto busy_poll = [this](const std::string& v) {
    int64_t us = 0;
    parse_int64(v, &us);
    for (auto& l : loops_) l->set_busy_poll_us(static_cast<uint32_t>(us));
    return Status::ok();
  };
  busy_poll(config_.get("busy-poll"));
  config_.on_change("busy-poll", busy_poll);
  auto yield_when_contended = [this](const std::string& v) {
    for (auto& l : loops_) l->set_yield_when_contended(v == "yes");
    return Status::ok();
  };
  yield_when_contended(config_.get("yield-when-contended"));
  config_.on_change("yield-when-contended", yield_when_contended);
  for (size_t i = 0; i < loops_.size(); ++i) hot_caches_.push_back(std::make_unique<HotCache>());
  // A change empties every cache: entries kept while it was off missed the writes since. A
  // loop's next request sees the new generation; the posted clear frees the memory of a cache
  // turned off.
  auto hot_cache_settings = [this] {
    hot_cache_ms_.store(config_.get_int("hot-key-cache-ms"), std::memory_order_relaxed);
    hot_cache_size_.store(config_.get_int("hot-key-cache-size"), std::memory_order_relaxed);
  };
  hot_cache_settings();
  auto hot_cache = [this, hot_cache_settings](const std::string&) {
    hot_cache_settings();
    hot_cache_generation_.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < loops_.size(); ++i)
      loops_[i]->post([this, i] { hot_caches_[i]->clear(); });
    return Status::ok();
  };
  config_.on_change("hot-key-cache-ms", hot_cache);
  config_.on_change("hot-key-cache-size", hot_cache);
  Status cst = start_cluster();
  if (!cst.is_ok()) return cst;
  postponed_.resize(loops_.size());
  timers_.push_back(std::make_unique<net::Timer>(*loops_[0]));
  pause_timer_ = timers_.back().get();
  // Background work on loop 0; per-loop client checks on every loop.
  timers_.push_back(std::make_unique<net::Timer>(*loops_[0]));
  net::Timer* cron_timer = timers_.back().get();
  int hz = hz_.load();
  cron_timer->start(1000 / hz, 1000 / hz, [this] { cron(); });
  config_.on_change("hz", [this, cron_timer](const std::string& v) {
    int64_t n = 10;
    parse_int64(v, &n);
    const uint64_t period = 1000 / static_cast<uint64_t>(n);
    loops_[0]->post(
        [this, cron_timer, period] { cron_timer->start(period, period, [this] { cron(); }); });
    return Status::ok();
  });
  for (size_t i = 0; i < loops_.size(); ++i) {
    auto t = std::make_unique<net::Timer>(*loops_[i]);
    t->start(1000, 1000, [this, i] { loop_cron(i); });
    timers_.push_back(std::move(t));
  }
  for (int sig : {SIGINT, SIGTERM}) {
    signals_.push_back(std::make_unique<net::SignalWatcher>(*loops_[0], sig, [this, sig] {
      LOG_WARNING("Received %s scheduling shutdown...", sig == SIGINT ? "SIGINT" : "SIGTERM");
      shutdown();
    }));
  }
  for (size_t i = 1; i < loops_.size(); ++i) loops_[i]->start("io-thread-" + std::to_string(i));
  return Status::ok();
}

Result<std::shared_ptr<net::TlsContext>> Server::build_tls() const {
  net::TlsOptions o;
  o.cert_file = config_.get("tls-cert-file");
  o.key_file = config_.get("tls-key-file");
  o.key_file_pass = config_.get("tls-key-file-pass");
  o.ca_cert_file = config_.get("tls-ca-cert-file");
  o.ca_cert_dir = config_.get("tls-ca-cert-dir");
  std::string auth = config_.get("tls-auth-clients");
  o.auth_clients = auth == "no"         ? net::TlsOptions::AuthClients::kNo
                   : auth == "optional" ? net::TlsOptions::AuthClients::kOptional
                                        : net::TlsOptions::AuthClients::kYes;
  o.protocols = config_.get("tls-protocols");
  o.ciphers = config_.get("tls-ciphers");
  o.ciphersuites = config_.get("tls-ciphersuites");
  o.prefer_server_ciphers = config_.get_bool("tls-prefer-server-ciphers");
  o.session_caching = config_.get_bool("tls-session-caching");
  o.session_cache_size = static_cast<long>(config_.get_int("tls-session-cache-size"));
  o.session_cache_timeout = static_cast<long>(config_.get_int("tls-session-cache-timeout"));
  o.dh_params_file = config_.get("tls-dh-params-file");
  return net::TlsContext::create(o);
}

Status Server::reload_tls() {
  if (config_.get_int("tls-port") == 0) return Status::ok();
  Result<std::shared_ptr<net::TlsContext>> ctx = build_tls();
  if (!ctx) {
    LOG_WARNING("Failed to update TLS configuration: %s", ctx.status().message().c_str());
    return ctx.status();
  }
  tls_.set(std::move(ctx.value()));
  LOG_NOTICE("TLS configuration updated: new TLS connections use it");
  return Status::ok();
}

Status Server::start_cluster() {
  cluster::ClusterOptions o;
  std::string announce = config_.get("announce-address");
  if (announce.empty()) {
    std::vector<std::string> binds;
    split_args(config_.get("bind"), &binds);
    std::string host = binds.empty() ? "127.0.0.1" : binds[0];
    if (host == "*" || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::" || host == "::0") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    announce = host + ":" + std::to_string(port_);
  }
  o.address = announce;
  o.node_id = config_.get("node-id");
  if (o.node_id.empty()) o.node_id = announce;  // stable across restarts on the same address
  o.discovery = config_.get("discovery");
  o.state_file = config_.get("ring-state-file");
  o.password = config_.get("requirepass");
  o.replicas = static_cast<uint32_t>(config_.get_int("replicas"));
  o.write_quorum = static_cast<uint32_t>(config_.get_int("write-quorum"));
  o.read_quorum = static_cast<uint32_t>(config_.get_int("read-quorum"));
  o.vnodes = static_cast<uint32_t>(config_.get_int("vnodes"));
  o.anti_entropy_s = static_cast<int>(config_.get_int("anti-entropy-interval"));
  o.migrate_keys_per_sec = config_.get_int("migration-rate");
  cluster_ = std::make_unique<cluster::Cluster>(o, *store_, hlc_, clock_);
  std::vector<net::EventLoop*> loops;
  for (auto& l : loops_) loops.push_back(l.get());
  Status st = cluster_->start(loops);
  if (!st.is_ok()) return st;
  config_.on_change("migration-rate", [this](const std::string& v) {
    int64_t n = 0;
    parse_int64(v, &n);
    cluster_->set_migration_rate(n);
    return Status::ok();
  });
  for (size_t i = 0; i < loops_.size(); ++i) {
    loops_[i]->add_stop_hook([this, i] { cluster_->close_links(i); });
  }
  return Status::ok();
}

void Server::run() {
  loops_[0]->run();
  for (size_t i = 1; i < loops_.size(); ++i) loops_[i]->join();
}

void Server::shutdown() {
  for (auto& l : loops_) l->stop();
}

// ---------------------------------------------------------------- background work

void Server::cron() {
  Millis now = clock_.now_ms();
  // Active expiry: bounded work per tick, more while a large share of what we look at expired.
  // During a CLIENT PAUSE nothing expires or is evicted actively (both are writes), as in Redis.
  int effort = static_cast<int>(config_.get_int("active-expire-effort"));
  size_t budget = 200 * static_cast<size_t>(effort);
  Micros start = clock_.now_us();
  Micros deadline = start + 2500 * effort;  // at most a few ms per tick
  for (int round = 0; round < 16 && !paused(); ++round) {
    size_t expired = store_->active_expire(now, budget);
    if (expired * 4 < budget || clock_.now_us() > deadline) break;
  }
  int64_t threshold = latency_threshold_ms_.load(std::memory_order_relaxed);
  if (threshold > 0) {
    int64_t ms = (clock_.now_us() - start) / 1000;
    if (ms >= threshold) latency_.add("expire-cycle", static_cast<uint32_t>(ms), now / 1000);
  }
  if (maxmemory() > 0) make_room(now);
  note_memory_peak(store_->memory_used() + pending_output_bytes());
  stats_.expire_cycle_us.fetch_add(static_cast<uint64_t>(clock_.now_us() - start),
                                   std::memory_order_relaxed);
  // Ops and bytes per second over the last tick.
  uint64_t ops = stats_.commands.load(std::memory_order_relaxed);
  NetTotals net = net_totals();
  if (last_ops_sample_ms_ != 0 && now > last_ops_sample_ms_) {
    const uint64_t ms = static_cast<uint64_t>(now - last_ops_sample_ms_);
    inst_ops_ = (ops - last_ops_sample_) * 1000 / ms;
    inst_in_bps_ = (net.bytes_in - last_net_sample_.bytes_in) * 1000 / ms;
    inst_out_bps_ = (net.bytes_out - last_net_sample_.bytes_out) * 1000 / ms;
  }
  last_ops_sample_ = ops;
  last_net_sample_ = net;
  last_ops_sample_ms_ = now;
}

void Server::loop_cron(size_t loop_index) {
  int64_t timeout = timeout_s_.load(std::memory_order_relaxed);
  Millis now = clock_.now_ms();
  std::vector<std::shared_ptr<net::Connection>> to_close, all;
  for (net::Connection* c : listeners_[loop_index]->net().connections) {
    all.push_back(c->shared_from_this());
    auto* s = static_cast<ClientSession*>(c->session());
    if (s && s->kill_requested.load()) {
      to_close.push_back(c->shared_from_this());
      continue;
    }
    if (s && s->over_limit && now - c->created_ms() >= 1000) {
      refuse_over_limit(*c, *s);
      continue;
    }
    if (timeout > 0) c->note_write_progress();
    if (timeout > 0 && s && !s->monitor && !s->is_postponed &&
        now - c->last_interaction_ms() > timeout * 1000) {
      LOG_VERBOSE("Closing idle client id=%llu", static_cast<unsigned long long>(c->id()));
      to_close.push_back(c->shared_from_this());
    }
  }
  for (auto& c : to_close) c->close();
  // A client over its output soft limit that neither reads nor sends gets no other event.
  for (auto& c : all) c->check_output_limits();
}

bool Server::make_room(Millis now) {
  int64_t limit = maxmemory();
  if (limit <= 0) return true;
  size_t used = store_->memory_used() + pending_output_bytes();
  if (used <= static_cast<size_t>(limit)) return true;
  if (paused()) return true;  // Redis: evicting is a write, not done during CLIENT PAUSE
  // Client buffers count against the limit too (as in Redis), so the data must shrink by that.
  size_t overhead = used - store_->memory_used();
  size_t target = static_cast<size_t>(limit) > overhead ? static_cast<size_t>(limit) - overhead : 0;
  Micros t0 = clock_.now_us();
  bool ok = store_->evict_to(target, now, maxmemory_samples_.load());
  int64_t threshold = latency_threshold_ms_.load(std::memory_order_relaxed);
  int64_t ms = (clock_.now_us() - t0) / 1000;
  if (threshold > 0 && ms >= threshold)
    latency_.add("eviction-cycle", static_cast<uint32_t>(ms), now / 1000);
  return ok;
}

Server::NetTotals Server::net_totals() {
  NetTotals t;
  for (auto& l : listeners_) {
    net::LoopNet& n = l->net();
    t.bytes_in += n.bytes_in.load(std::memory_order_relaxed);
    t.bytes_out += n.bytes_out.load(std::memory_order_relaxed);
    t.reads += n.reads.load(std::memory_order_relaxed);
    t.writes += n.writes.load(std::memory_order_relaxed);
  }
  return t;
}

size_t Server::pending_output_bytes() {
  size_t n = 0;
  for (auto& l : listeners_) n += l->net().output_bytes.load(std::memory_order_relaxed);
  return n;
}

// ---------------------------------------------------------------- clients

void Server::on_open(net::Connection& conn) {
  auto session = std::make_unique<ClientSession>();
  session->id = conn.id();
  session->authenticated = !auth_required();
  conn.set_authenticated(session->authenticated);
  ClientSession* s = session.get();
  conn.set_session(std::move(session));
  stats_.connections_received.fetch_add(1, std::memory_order_relaxed);
  size_t n = clients_count_.fetch_add(1) + 1;
  {
    std::lock_guard<std::mutex> lock(clients_mu_);
    clients_[conn.id()] = ClientRef{conn.weak_from_this(), &conn.loop(), s};
  }
  // Other nodes' links don't count. In a ring of several servers one over the limit may still
  // be a link (RINGKV.HELLO comes first on it, after AUTH): its first commands tell
  // (on_command), or it goes at the next loop_cron after a second. Otherwise it is refused at
  // once, as Redis does.
  n -= std::min(n, internal_count_.load());
  if (static_cast<int64_t>(n) > config_.get_int("maxclients")) {
    if (in_ring(conn)) {
      s->over_limit = true;
    } else {
      refuse_over_limit(conn, *s);
    }
  }
}

bool Server::in_ring(net::Connection& conn) {
  return cluster_ && cluster_->view(conn.loop().index()).distributed;
}

bool Server::drop_abandoned(net::Connection& conn) { return in_ring(conn); }

void Server::refuse_over_limit(net::Connection& conn, ClientSession& s) {
  s.over_limit = false;
  stats_.rejected_connections.fetch_add(1, std::memory_order_relaxed);
  conn.out().error(err::kMaxClients);
  conn.close_after_reply();
}

void Server::mark_internal(ClientSession& s) {
  s.over_limit = false;
  if (s.internal) return;
  s.internal = true;
  internal_count_.fetch_add(1);
}

void Server::on_close(net::Connection& conn) {
  auto* s = static_cast<ClientSession*>(conn.session());
  if (s && s->internal) internal_count_.fetch_sub(1);
  clients_count_.fetch_sub(1);
  if (s) unwatch_all(*s);
  if (s && s->monitor) monitors_.remove(conn.id());
  if (s && s->is_postponed) postponed_count_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(clients_mu_);
  clients_.erase(conn.id());
}

void Server::on_protocol_error(net::Connection& conn, std::string_view error) {
  stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  count_error(error);
}

std::vector<std::pair<uint64_t, ClientRef>> Server::clients_snapshot() {
  std::lock_guard<std::mutex> lock(clients_mu_);
  std::vector<std::pair<uint64_t, ClientRef>> out(clients_.begin(), clients_.end());
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return out;
}

bool Server::with_client(uint64_t id, std::function<void(net::Connection&, ClientSession&)> fn) {
  ClientRef ref;
  {
    std::lock_guard<std::mutex> lock(clients_mu_);
    auto it = clients_.find(id);
    if (it == clients_.end()) return false;
    ref = it->second;
  }
  auto conn = ref.conn.lock();
  if (!conn) return false;
  ref.loop->post([conn, fn = std::move(fn)] {
    if (conn->closing()) return;
    fn(*conn, *static_cast<ClientSession*>(conn->session()));
  });
  return true;
}

void Server::gather(std::function<std::string(net::LoopNet&)> per_loop,
                    std::function<void(std::vector<std::string>)> done) {
  net::EventLoop* origin = nullptr;
  for (auto& l : loops_)
    if (l->on_loop_thread()) origin = l.get();
  struct State {
    std::mutex mu;
    std::vector<std::string> parts;
    size_t left;
  };
  auto state = std::make_shared<State>();
  state->parts.resize(listeners_.size());
  state->left = listeners_.size();
  auto finish = std::make_shared<std::function<void(std::vector<std::string>)>>(std::move(done));
  for (size_t i = 0; i < listeners_.size(); ++i) {
    net::Listener* l = listeners_[i].get();
    loops_[i]->post([state, per_loop, finish, origin, l, i] {
      std::string part = per_loop(l->net());
      bool last;
      {
        std::lock_guard<std::mutex> lock(state->mu);
        state->parts[i] = std::move(part);
        last = --state->left == 0;
      }
      if (!last) return;
      if (origin != nullptr)
        origin->post([state, finish] { (*finish)(std::move(state->parts)); });
      else
        (*finish)(std::move(state->parts));
    });
  }
}

// ---------------------------------------------------------------- WATCH

void Server::watch_key(ClientSession& s, std::string_view key) {
  for (const auto& k : s.watched)
    if (k == key) return;
  s.watched.emplace_back(key);
  std::lock_guard<std::mutex> lock(watch_mu_);
  watched_[std::string(key)].insert(&s);
  store_->set_modify_hook_enabled(true);
}

void Server::unwatch_all(ClientSession& s) {
  s.watched_versions.clear();
  if (s.watched.empty()) {
    s.watch_dirty = false;
    return;
  }
  std::lock_guard<std::mutex> lock(watch_mu_);
  for (const auto& k : s.watched) {
    auto it = watched_.find(k);
    if (it == watched_.end()) continue;
    it->second.erase(&s);
    if (it->second.empty()) watched_.erase(it);
  }
  s.watched.clear();
  s.watch_dirty = false;
  if (watched_.empty()) store_->set_modify_hook_enabled(false);
}

void Server::on_key_modified(std::string_view key) {
  std::lock_guard<std::mutex> lock(watch_mu_);
  auto it = watched_.find(std::string(key));
  if (it == watched_.end()) return;
  for (ClientSession* s : it->second) s->watch_dirty = true;
}

void Server::touch_all_watched() {
  // FLUSHALL/FLUSHDB: as Redis 7, only the watchers of keys that exist now are touched. The keys
  // are looked up outside watch_mu_ (the modify hook takes it under a stripe lock).
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    for (auto& [k, sessions] : watched_) keys.push_back(k);
  }
  const Millis now = clock_.now_ms();
  std::vector<std::string> existing;
  for (auto& k : keys) {
    if (store_->access(k, token_of(k), now, [](store::Access& a) { return a.found(); }))
      existing.push_back(std::move(k));
  }
  std::lock_guard<std::mutex> lock(watch_mu_);
  for (const auto& k : existing) {
    auto it = watched_.find(k);
    if (it == watched_.end()) continue;
    for (ClientSession* s : it->second) s->watch_dirty = true;
  }
}

// ---------------------------------------------------------------- errors

void Server::count_error(std::string_view text) {
  stats_.error_replies.fetch_add(1, std::memory_order_relaxed);
  size_t sp = text.find(' ');
  std::string code(text.substr(0, sp == std::string_view::npos ? text.size() : sp));
  if (code.empty() || code.size() > 32) code = "ERR";
  std::lock_guard<std::mutex> lock(stats_.errors_mu);
  if (stats_.errors.size() < 128 || stats_.errors.count(code)) ++stats_.errors[code];
}

void CommandContext::error(std::string_view text) {
  w.error(text);
  server.count_error(text);
  replied_error = true;
}

std::string ClientSession::last_command() const {
  return last_spec ? last_spec->full_name(last_parent) : std::string("NULL");
}

// ---------------------------------------------------------------- dispatch

namespace {
bool is_transaction_control(const CommandSpec* spec) {
  const std::string_view n = spec->name;
  return n == "exec" || n == "discard" || n == "multi" || n == "watch" || n == "quit" ||
         n == "reset";
}
}  // namespace

void Server::on_command(net::Connection& conn, std::vector<std::string_view>& args) {
  ClientSession& s = session_of(conn);
  if (s.over_limit && !equals_nocase(args[0], "ringkv.hello") &&
      !(equals_nocase(args[0], "auth") && !s.authenticated)) {
    refuse_over_limit(conn, s);
    return;
  }
  // CLIENT PAUSE holds requests back before anything else counts them; peer links and monitors
  // (Redis's replicas) are never paused.
  if (pause_type_.load(std::memory_order_relaxed) != kPauseNone && !s.internal && !s.monitor &&
      maybe_postpone(conn, s, args)) {
    return;
  }
  const Millis now = clock_.now_ms();

  // CLIENT REPLY OFF/SKIP: replies of this request go nowhere. CLIENT REPLY ON is the exception:
  // Redis clears the flags before replying, so it always gets its +OK.
  const bool reply_on = args.size() == 3 && equals_nocase(args[0], "client") &&
                        equals_nocase(args[1], "reply") && equals_nocase(args[2], "on");
  const bool silent = !reply_on && (s.reply_mode == ClientSession::ReplyMode::kOff ||
                                    s.reply_mode == ClientSession::ReplyMode::kSkip);
  if (s.reply_mode == ClientSession::ReplyMode::kSkip) s.reply_mode = ClientSession::ReplyMode::kOn;
  if (silent) conn.set_discarding(true);
  struct Restore {
    net::Connection& c;
    bool on;
    ~Restore() {
      if (on) c.set_discarding(false);
    }
  } restore{conn, silent};

  auto reject = [&](std::string_view text, const CommandSpec* spec) {
    if (spec != nullptr && spec->name == "exec") {
      // Redis's rejectCommand: a refused EXEC (arity, NOAUTH, OOM) discards the transaction and
      // says why in an EXECABORT error, the reason without its "ERR " prefix.
      std::string why(text.substr(0, 4) == "ERR " ? text.substr(4) : text);
      std::string abort = "EXECABORT Transaction discarded because of: " + why;
      conn.out().error(abort);
      count_error(abort);
      spec->stats.rejected.fetch_add(1, std::memory_order_relaxed);
      s.in_multi = false;
      s.multi_dirty = false;
      s.queued.clear();
      unwatch_all(s);
      return;
    }
    conn.out().error(text);
    count_error(text);
    if (spec) spec->stats.rejected.fetch_add(1, std::memory_order_relaxed);
    if (s.in_multi) s.multi_dirty = true;
  };

  const CommandTable& table = CommandTable::instance();
  const CommandSpec* spec = table.find(args[0]);
  // CLIENT LIST's cmd= is the last command looked up, refused or queued ones included, as in
  // Redis (NULL for an unknown one); commands run by EXEC leave it at "exec".
  s.last_spec = spec;
  s.last_parent = nullptr;
  if (spec == nullptr) {
    reject(unknown_command_error(args), nullptr);
    return;
  }
  const CommandSpec* parent = nullptr;
  // A container command called alone runs its own handler when it has one (COMMAND, as in
  // Redis); one without (CONFIG, CLIENT) answers with the arity error.
  if (!spec->subcommands.empty() && (args.size() >= 2 || spec->handler == nullptr)) {
    if (args.size() < 2) {
      reject("ERR wrong number of arguments for '" + std::string(spec->name) + "' command", spec);
      return;
    }
    const CommandSpec* sub = table.find_sub(*spec, args[1]);
    s.last_spec = sub;
    s.last_parent = sub ? spec : nullptr;
    if (sub == nullptr) {
      std::string up = to_upper(spec->name);
      reject("ERR unknown subcommand '" + std::string(c_str(args[1]).substr(0, 128)) + "'. Try " +
                 up + " HELP.",
             spec);
      return;
    }
    parent = spec;
    spec = sub;
  }
  if (!spec->arity_ok(args.size())) {
    reject("ERR wrong number of arguments for '" + spec->full_name(parent) + "' command", spec);
    return;
  }
  if (!spec->is(kNoAuth) && needs_auth(conn, s)) {
    reject(err::kNoAuth, spec);
    return;
  }
  if (s.in_multi && spec->is(kNoMulti)) {
    reject("ERR Command not allowed inside a transaction", spec);
    return;
  }
  if (s.in_multi && cluster_ && spec->is(kKeyspace) &&
      cluster_->view(conn.loop().index()).distributed) {
    // KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL act on every node; a transaction runs on
    // one (it would flush one node's copies only, which anti-entropy then restores).
    reject("ERR " + to_upper(spec->full_name(parent)) +
               " inside MULTI is not supported by a ringkv cluster: it acts on every node, and a "
               "transaction runs on one node",
           spec);
    return;
  }
  // A client in MONITOR mode is a replica to Redis: no keyspace access.
  if (s.monitor && (spec->is(kWrite) || spec->is(kReadOnly) || spec->is(kMayReplicate))) {
    reject("ERR Replica can't interact with the keyspace", spec);
    return;
  }
  if (maxmemory() > 0) {
    bool deny = spec->is(kDenyOom) || (s.in_multi && !is_transaction_control(spec));
    if (spec->is(kWrite) || deny) {
      if (!make_room(now) && deny) {
        reject(err::kOom, spec);
        return;
      }
    }
  }
  if (s.in_multi && !is_transaction_control(spec)) {
    std::vector<std::string> copy(args.begin(), args.end());
    s.queued.push_back(std::move(copy));
    conn.out().simple("QUEUED");
    return;
  }
  if (cluster_ && !s.internal && (spec->is(kKeyspace) || spec->name == "watch") &&
      cluster_->view(conn.loop().index()).distributed) {
    dispatch_in_order(conn, args, spec, parent, silent);
    return;
  }
  dispatch(conn, s, args, spec, parent, now);
}

void Server::dispatch(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                      const CommandSpec* spec, const CommandSpec* parent, Millis now) {
  if (cluster_) {
    // Requests the cluster forwards never reach execute() here: count them, and show them to
    // the monitors of the node the client talks to (the node that runs them skips peer links).
    s.ran_here = false;
    if (route_command(conn, s, args, spec, parent, now)) {
      if (!s.ran_here) {
        stats_.commands.fetch_add(1, std::memory_order_relaxed);
        if (monitors_.active() && !s.internal) feed_monitors(conn, s, args, spec, parent);
      }
      return;
    }
  }
  execute_locked(conn, s, args, spec, parent, now);
}

void Server::dispatch_in_order(net::Connection& conn, std::vector<std::string_view>& args,
                               const CommandSpec* spec, const CommandSpec* parent, bool silent) {
  auto keep = conn.shared_from_this();
  // Runs it; if its reply is deferred, the next requests wait for it.
  auto run = [this, keep, spec, parent](std::vector<std::string_view>& a) {
    dispatch(*keep, session_of(*keep), a, spec, parent, clock_.now_ms());
    if (keep->awaiting_replies()) {
      keep->pause_reading(net::Connection::kPauseService);
      keep->when_replies_done([keep] { keep->resume_reading(net::Connection::kPauseService); });
    }
  };
  if (!conn.awaiting_replies()) {
    run(args);
    return;
  }
  conn.pause_reading(net::Connection::kPauseService);
  auto owned = std::make_shared<std::vector<std::string>>(args.begin(), args.end());
  conn.when_replies_done([this, keep, owned, silent, run] {
    std::vector<std::string_view> a(owned->begin(), owned->end());
    ClientSession& s = session_of(*keep);
    // A CLIENT PAUSE that began while the command waited holds it back as it would have on
    // arrival; it runs again from on_command once the pause ends.
    if (paused() && maybe_postpone(*keep, s, a)) {
      if (silent && s.reply_mode == ClientSession::ReplyMode::kOn)
        s.reply_mode = ClientSession::ReplyMode::kSkip;  // CLIENT REPLY SKIP applies to it still
      keep->resume_reading(net::Connection::kPauseService);
      return;
    }
    if (silent) keep->set_discarding(true);
    run(a);
    if (silent) keep->set_discarding(false);
    if (!keep->awaiting_replies()) keep->resume_reading(net::Connection::kPauseService);
  });
}

void Server::execute_locked(net::Connection& conn, ClientSession& s,
                            std::vector<std::string_view>& args, const CommandSpec* spec,
                            const CommandSpec* parent, Millis now) {
  // EXEC takes the lock for the commands it runs.
  if (!exec_lock_needed_ || spec->name == "exec" || spec->name == "ringkv.exec") {
    execute(conn, s, args, spec, parent, now);
  } else if (spec->touches_several_keys(args.size())) {
    // Atomic as in Redis (MSET, MSETNX, RENAME...): nothing else runs meanwhile.
    std::unique_lock<std::shared_mutex> lock(exec_mu_);
    execute(conn, s, args, spec, parent, now);
  } else {
    std::shared_lock<std::shared_mutex> lock(exec_mu_);
    execute(conn, s, args, spec, parent, now);
  }
}

void Server::execute(net::Connection& conn, ClientSession& s, std::vector<std::string_view>& args,
                     const CommandSpec* spec, const CommandSpec* parent, Millis now) {
  CommandContext ctx{*this, conn, s, args, conn.out(), now, spec, parent};
  s.last_command_ms = now;
  Micros t0 = clock_.now_us();
  spec->handler(ctx);
  Micros t1 = clock_.now_us();
  if (ctx.replied_error) spec->stats.failed.fetch_add(1, std::memory_order_relaxed);
  after_command(conn, s, args, spec, parent, t0, t1, ctx.replied_error);
}

// ---------------------------------------------------------------- after a command

void Server::after_command(net::Connection& conn, ClientSession& s,
                           std::vector<std::string_view>& args, const CommandSpec* spec,
                           const CommandSpec* parent, Micros t0, Micros t1, bool failed) {
  const int64_t us = t1 - t0;
  CommandStats& st = spec->stats;
  // total_commands_processed counts what ran, as Redis's call() does (not refused requests).
  stats_.commands.fetch_add(1, std::memory_order_relaxed);
  s.ran_here = true;
  st.calls.fetch_add(1, std::memory_order_relaxed);
  if (spec->is(kWrite) && !failed) stats_.changes.fetch_add(1, std::memory_order_relaxed);
  st.usec.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
  LatencyHistogram* h = st.histogram.load(std::memory_order_acquire);
  if (h == nullptr) {
    auto fresh = std::make_unique<LatencyHistogram>();
    if (st.histogram.compare_exchange_strong(h, fresh.get(), std::memory_order_acq_rel))
      h = fresh.release();
  }
  h->record(us * 1000);  // Redis records microseconds * 1000 in nanoseconds
  // The thresholds are relaxed loads; the log and the event table are locked only when hit.
  if (!spec->is(kSkipSlowlog)) {
    const int64_t latency_ms = us / 1000;
    const int64_t threshold = latency_threshold_ms_.load(std::memory_order_relaxed);
    if (threshold > 0 && latency_ms >= threshold) {
      latency_.add(spec->is(kFast) ? "fast-command" : "command", static_cast<uint32_t>(latency_ms),
                   t1 / 1000000);
    }
    const int64_t slower_than = slowlog_slower_than_.load(std::memory_order_relaxed);
    if (slower_than >= 0 && us >= slower_than) {
      slowlog_.add(spec, parent, args, t1 / 1000000, us, conn.peer_address(), s.name,
                   static_cast<size_t>(slowlog_max_len_.load(std::memory_order_relaxed)));
    }
  }
  if (monitors_.active() && !s.internal) feed_monitors(conn, s, args, spec, parent);
}

void Server::feed_monitors(net::Connection& conn, ClientSession& s,
                           std::vector<std::string_view>& args, const CommandSpec* spec,
                           const CommandSpec* parent) {
  // Redis shows neither skip_monitor nor admin commands (CONFIG, CLIENT LIST, MONITOR...).
  if (spec->is(kSkipMonitor) || spec->is(kAdmin)) return;
  monitors_.feed(
      MonitorHub::format(clock_.now_us(), s.db, conn.peer_address(), spec, parent, args));
}

// ---------------------------------------------------------------- CLIENT PAUSE

void Server::pause_clients(Millis end_ms, PauseType type) {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    if (type > pause_type_.load()) pause_type_.store(type);
    if (end_ms > pause_end_ms_.load()) pause_end_ms_.store(end_ms);
  }
  loops_[0]->post([this] { arm_pause_timer(); });
}

void Server::unpause_clients() {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    pause_type_.store(kPauseNone);
    pause_end_ms_.store(0);
  }
  for (size_t i = 0; i < loops_.size(); ++i) loops_[i]->post([this, i] { resume_postponed(i); });
}

void Server::arm_pause_timer() {
  if (pause_timer_ == nullptr) return;
  if (!paused()) {
    pause_timer_->stop();
    return;
  }
  Millis now = clock_.now_ms(), end = pause_end_ms_.load();
  pause_timer_->start(end > now ? static_cast<uint64_t>(end - now) : 0, 0, [this] {
    if (!paused()) return;
    if (clock_.now_ms() >= pause_end_ms_.load()) {
      unpause_clients();
    } else {
      // Re-armed from a posted task: a timer's callback must not replace itself.
      loops_[0]->post([this] { arm_pause_timer(); });
    }
  });
}

bool Server::maybe_postpone(net::Connection& conn, ClientSession& s,
                            std::vector<std::string_view>& args) {
  // Requests that would be refused (unknown, arity, NOAUTH) are refused at once, as in Redis,
  // where the pause check comes last before running.
  const CommandTable& table = CommandTable::instance();
  const CommandSpec* spec = table.find(args[0]);
  const CommandSpec* parent = nullptr;
  if (spec == nullptr) return false;
  if (!spec->subcommands.empty() && (args.size() >= 2 || spec->handler == nullptr)) {
    if (args.size() < 2) return false;
    parent = spec;
    spec = table.find_sub(*spec, args[1]);
    if (spec == nullptr) return false;
  }
  if (!spec->arity_ok(args.size()) || (!spec->is(kNoAuth) && needs_auth(conn, s))) return false;
  const int type = pause_type_.load();
  if (type == kPauseNone || clock_.now_ms() >= pause_end_ms_.load()) return false;
  bool hold = type == kPauseAll;
  if (type == kPauseWrite) {
    // WRITE: commands that write or may replicate, and EXEC of a transaction holding one.
    hold = spec->is(kWrite) || spec->is(kMayReplicate);
    if (!hold && spec->name == "exec" && s.in_multi) {
      for (const auto& q : s.queued) {
        const CommandSpec* qs = table.find(q[0]);
        if (qs != nullptr && !qs->subcommands.empty() && q.size() >= 2)
          qs = table.find_sub(*qs, q[1]);
        if (qs != nullptr && (qs->is(kWrite) || qs->is(kMayReplicate))) hold = true;
      }
    }
  }
  if (!hold) return false;
  s.last_spec = spec;  // CLIENT LIST shows the held command (cmd=set, flags=b)
  s.last_parent = parent;
  s.postponed.assign(args.begin(), args.end());
  s.is_postponed = true;
  postponed_count_.fetch_add(1, std::memory_order_relaxed);
  conn.pause_reading(net::Connection::kPauseClientPause);
  postponed_[conn.loop().index()].push_back(conn.weak_from_this());
  return true;
}

void Server::resume_postponed(size_t loop_index) {
  auto list = std::move(postponed_[loop_index]);
  postponed_[loop_index].clear();
  for (auto& weak : list) {
    auto conn = weak.lock();
    if (!conn || conn->closing()) continue;
    ClientSession& s = session_of(*conn);
    if (!s.is_postponed) continue;
    s.is_postponed = false;
    postponed_count_.fetch_sub(1, std::memory_order_relaxed);
    std::vector<std::string> owned = std::move(s.postponed);
    s.postponed.clear();
    std::vector<std::string_view> args(owned.begin(), owned.end());
    on_command(*conn, args);  // may be held back again by a newer pause
    if (conn->closing()) continue;
    if (!s.is_postponed) conn->resume_reading(net::Connection::kPauseClientPause);
    conn->flush();
  }
}

}  // namespace ringkv::server
