// INFO, section by section in Redis 7.0.15's order and with its field names. What ringkv does not
// have is reported as Redis reports it for a server without it: no persistence (a server that
// never saved: loading:0, rdb_saves:0, aof_enabled:0), no Redis replication (role:master with no
// replicas), no Lua, no modules, no pub/sub. ringkv's own fields follow Redis's in each section.
#include "server/info.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "cluster/cluster.h"
#include "common/strings.h"
#include "server/command.h"
#include "server/latency.h"
#include "server/server.h"
#include "server/util.h"
#include "server/version.h"
#include "store/arena.h"

namespace ringkv::server {

namespace {

// Redis's bytesToHuman.
std::string human_bytes(uint64_t n) {
  char buf[64];
  double d = static_cast<double>(n);
  const double k = 1024;
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  else if (n < 1024ull * 1024)
    std::snprintf(buf, sizeof buf, "%.2fK", d / k);
  else if (n < 1024ull * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fM", d / (k * k));
  else if (n < 1024ull * 1024 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fG", d / (k * k * k));
  else if (n < 1024ull * 1024 * 1024 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fT", d / (k * k * k * k));
  else if (n < 1024ull * 1024 * 1024 * 1024 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fP", d / (k * k * k * k * k));
  else
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  return buf;
}

size_t total_system_memory() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(size) : 0;
}

struct Builder {
  std::string out;
  bool first = true;
  void section(const char* name) {
    if (!first) out += "\r\n";
    first = false;
    out += "# ";
    out += name;
    out += "\r\n";
  }
  void field(std::string_view k, std::string_view v) {
    out.append(k);
    out += ':';
    out.append(v);
    out += "\r\n";
  }
  void field(std::string_view k, const char* v) { field(k, std::string_view(v)); }
  void field(std::string_view k, const std::string& v) { field(k, std::string_view(v)); }
  template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
  void field(std::string_view k, T v) {
    field(k, std::to_string(v));
  }
  void fieldf(std::string_view k, double v, int prec = 2, const char* suffix = "") {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f%s", prec, v, suffix);
    field(k, buf);
  }
};

std::atomic<size_t> g_peak{0};

double ratio(size_t a, size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0; }

// avg_ttl of INFO keyspace: Redis keeps a running estimate from its expiry sampling; ringkv
// samples the volatile keys it meets in a few bounded scan steps from a random place.
int64_t estimate_avg_ttl(store::Store& st, Millis now) {
  if (st.volatile_size() == 0) return 0;
  int64_t sum = 0, n = 0;
  Token cursor = (static_cast<Token>(now) * 0x9e3779b97f4a7c15ull);
  for (int step = 0; step < 4 && n < 64; ++step) {
    cursor = st.scan(cursor, 256, now, [&](const store::EntryView& e) {
      if (e.expire_at() >= 0 && e.expire_at() > now) {
        sum += e.expire_at() - now;
        ++n;
      }
    });
  }
  return n ? sum / n : 0;
}

}  // namespace

size_t process_rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t total = 0, resident = 0;
  f >> total >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void note_memory_peak(size_t used) {
  size_t peak = g_peak.load(std::memory_order_relaxed);
  while (used > peak && !g_peak.compare_exchange_weak(peak, used)) {
  }
}

MemoryFigures memory_figures(Server& server) {
  MemoryFigures m;
  m.dataset = server.store().memory_used();
  m.clients = server.pending_output_bytes();
  m.used = m.dataset + m.clients;
  note_memory_peak(m.used);
  m.peak = std::max(g_peak.load(), m.used);
  m.rss = process_rss_bytes();
  return m;
}

std::string build_info(Server& server, const std::vector<std::string>& requested,
                       size_t loop_index) {
  // Section selection as Redis 7.0's genInfoSectionDict: "default", "all" (every section but
  // modules' own), "everything", or names (any case); unknown names select nothing.
  static const std::vector<std::string> kDefault = {
      "server", "clients",     "memory",     "persistence", "stats",   "replication",
      "cpu",    "module_list", "errorstats", "cluster",     "keyspace"};
  std::set<std::string> want;
  bool all = false;
  if (requested.empty()) want.insert(kDefault.begin(), kDefault.end());
  for (const auto& r : requested) {
    std::string s = to_lower(r);
    if (s == "default") {
      want.insert(kDefault.begin(), kDefault.end());
    } else if (s == "all" || s == "everything") {
      all = true;
    } else {
      want.insert(s);
    }
  }
  auto on = [&](const char* name) { return all || want.count(name) > 0; };

  Builder b;
  const Millis now = server.clock().now_ms();
  store::Store& st = server.store();
  config::Config& cfg = server.config();
  ServerStats& stats = server.stats();

  if (on("server")) {
    b.section("Server");
    utsname u;
    uname(&u);
    b.field("redis_version", kRedisCompatVersion);
    b.field("redis_git_sha1", "00000000");
    b.field("redis_git_dirty", 0);
    b.field("redis_build_id", "0");
    b.field("redis_mode", "standalone");
    b.field("os", std::string(u.sysname) + " " + u.release + " " + u.machine);
    b.field("arch_bits", 64);
    b.field("monotonic_clock", "POSIX clock_gettime");
    b.field("multiplexing_api", "epoll");
    b.field("atomicvar_api", "c11-builtin");
    b.field("gcc_version", std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
                               std::to_string(__GNUC_PATCHLEVEL__));
    b.field("process_id", static_cast<int64_t>(getpid()));
    b.field("process_supervised", "no");
    b.field("run_id", server.run_id());
    b.field("tcp_port", server.port());
    b.field("server_time_usec", server.clock().now_us());
    int64_t up = (now - server.start_ms()) / 1000;
    b.field("uptime_in_seconds", up);
    b.field("uptime_in_days", up / 86400);
    b.field("hz", cfg.get_int("hz"));
    b.field("configured_hz", cfg.get_int("hz"));
    b.field("lru_clock", static_cast<int64_t>(store::Store::lru_clock(now)));
    char exe[4096] = {0};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    b.field("executable", n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string());
    b.field("config_file", cfg.file_path());
    b.field("io_threads_active", server.io_threads() > 1 ? 1 : 0);
    // ringkv's own
    b.field("ringkv_version", kRingkvVersion);
    b.field("io_threads", server.io_threads());
    b.field("busy_poll_backoffs", server.busy_poll_backoffs());
    b.field("busy_poll_idle_stops", server.busy_poll_idle_stops());
    b.field("contended_yields", server.contended_yields());
    b.field("contended_yield_usec", server.contended_yield_ns() / 1000);
    b.field("contended_yield_backoffs", server.yield_backoffs());
  }
  if (on("clients")) {
    b.section("Clients");
    b.field("connected_clients", server.connected_clients());
    b.field("cluster_connections", 0);
    b.field("maxclients", cfg.get_int("maxclients"));
    // ringkv keeps no per-client input/output buffer history: these recent maxima are 0.
    b.field("client_recent_max_input_buffer", 0);
    b.field("client_recent_max_output_buffer", 0);
    b.field("blocked_clients", server.postponed_clients());  // waiting for a CLIENT PAUSE
    b.field("tracking_clients", 0);
    b.field("clients_in_timeout_table", 0);
  }
  if (on("memory")) {
    b.section("Memory");
    MemoryFigures m = memory_figures(server);
    size_t sys = total_system_memory();
    int64_t maxmem = server.maxmemory();
    size_t heap = store::PageHeap::instance().pages_in_use_bytes();
    size_t resident = store::PageHeap::instance().resident_bytes();
    b.field("used_memory", m.used);
    b.field("used_memory_human", human_bytes(m.used));
    b.field("used_memory_rss", m.rss);
    b.field("used_memory_rss_human", human_bytes(m.rss));
    b.field("used_memory_peak", m.peak);
    b.field("used_memory_peak_human", human_bytes(m.peak));
    b.fieldf("used_memory_peak_perc", m.peak ? 100.0 * ratio(m.used, m.peak) : 0, 2, "%");
    // Overhead: the empty store's tables (at start) and client output; the rest is data.
    const size_t startup = std::min(server.startup_memory(), m.dataset);
    const size_t overhead = startup + m.clients;
    b.field("used_memory_overhead", overhead);
    b.field("used_memory_startup", startup);
    b.field("used_memory_dataset", m.used - overhead);
    b.fieldf("used_memory_dataset_perc",
             m.used > startup ? 100.0 * ratio(m.used - overhead, m.used - startup) : 0, 2, "%");
    b.field("allocator_allocated", heap);
    b.field("allocator_active", heap);
    b.field("allocator_resident", resident);
    b.field("total_system_memory", sys);
    b.field("total_system_memory_human", human_bytes(sys));
    // No scripting, no functions.
    b.field("used_memory_lua", 0);
    b.field("used_memory_vm_eval", 0);
    b.field("used_memory_lua_human", human_bytes(0));
    b.field("used_memory_scripts_eval", 0);
    b.field("number_of_cached_scripts", 0);
    b.field("number_of_functions", 0);
    b.field("number_of_libraries", 0);
    b.field("used_memory_vm_functions", 0);
    b.field("used_memory_vm_total", 0);
    b.field("used_memory_vm_total_human", human_bytes(0));
    b.field("used_memory_functions", 0);
    b.field("used_memory_scripts", 0);
    b.field("used_memory_scripts_human", human_bytes(0));
    b.field("maxmemory", maxmem);
    b.field("maxmemory_human", human_bytes(static_cast<uint64_t>(maxmem)));
    b.field("maxmemory_policy", store::eviction_policy_name(st.policy()));
    b.fieldf("allocator_frag_ratio", 1.0);
    b.field("allocator_frag_bytes", 0);
    b.fieldf("allocator_rss_ratio", ratio(resident, heap));
    b.field("allocator_rss_bytes", static_cast<int64_t>(resident) - static_cast<int64_t>(heap));
    b.fieldf("rss_overhead_ratio", ratio(m.rss, resident));
    b.field("rss_overhead_bytes", static_cast<int64_t>(m.rss) - static_cast<int64_t>(resident));
    b.fieldf("mem_fragmentation_ratio", ratio(m.rss, m.used));
    b.field("mem_fragmentation_bytes", static_cast<int64_t>(m.rss) - static_cast<int64_t>(m.used));
    b.field("mem_not_counted_for_evict", 0);
    b.field("mem_replication_backlog", 0);
    b.field("mem_total_replication_buffers", 0);
    b.field("mem_clients_slaves", 0);
    b.field("mem_clients_normal", m.clients);
    b.field("mem_cluster_links", 0);
    b.field("mem_aof_buffer", 0);
    b.field("mem_allocator", "ringkv-arena");
    b.field("active_defrag_running", 0);
    b.field("lazyfree_pending_objects", 0);
    b.field("lazyfreed_objects", 0);
    // ringkv's own
    b.field("store_pages_bytes", heap);
    b.field("store_heap_resident_bytes", resident);
    b.field("store_tombstones", st.tombstone_count());
  }
  if (on("persistence")) {
    // ringkv does not persist: what Redis shows for a server that never saved.
    b.section("Persistence");
    b.field("loading", 0);
    b.field("async_loading", 0);
    b.field("current_cow_peak", 0);
    b.field("current_cow_size", 0);
    b.field("current_cow_size_age", 0);
    b.field("current_fork_perc", "0.00");
    b.field("current_save_keys_processed", 0);
    b.field("current_save_keys_total", 0);
    b.field("rdb_changes_since_last_save", stats.changes.load());
    b.field("rdb_bgsave_in_progress", 0);
    b.field("rdb_last_save_time", server.start_ms() / 1000);
    b.field("rdb_last_bgsave_status", "ok");
    b.field("rdb_last_bgsave_time_sec", -1);
    b.field("rdb_current_bgsave_time_sec", -1);
    b.field("rdb_saves", 0);
    b.field("rdb_last_cow_size", 0);
    b.field("rdb_last_load_keys_expired", 0);
    b.field("rdb_last_load_keys_loaded", 0);
    b.field("aof_enabled", 0);
    b.field("aof_rewrite_in_progress", 0);
    b.field("aof_rewrite_scheduled", 0);
    b.field("aof_last_rewrite_time_sec", -1);
    b.field("aof_current_rewrite_time_sec", -1);
    b.field("aof_last_bgrewrite_status", "ok");
    b.field("aof_rewrites", 0);
    b.field("aof_rewrites_consecutive_failures", 0);
    b.field("aof_last_write_status", "ok");
    b.field("aof_last_cow_size", 0);
    b.field("module_fork_in_progress", 0);
    b.field("module_fork_last_cow_size", 0);
    // ringkv's own
    b.field("persistence", "none");
  }
  if (on("stats")) {
    b.section("Stats");
    store::StoreStats ss = st.stats();
    Server::NetTotals net = server.net_totals();
    b.field("total_connections_received", stats.connections_received.load());
    b.field("total_commands_processed", stats.commands.load());
    b.field("instantaneous_ops_per_sec", server.instantaneous_ops());
    b.field("total_net_input_bytes", net.bytes_in - stats.net_input_bytes.load());
    b.field("total_net_output_bytes", net.bytes_out - stats.net_output_bytes.load());
    b.field("total_net_repl_input_bytes", 0);
    b.field("total_net_repl_output_bytes", 0);
    b.fieldf("instantaneous_input_kbps",
             static_cast<double>(server.instantaneous_input_bps()) / 1024);
    b.fieldf("instantaneous_output_kbps",
             static_cast<double>(server.instantaneous_output_bps()) / 1024);
    b.field("instantaneous_input_repl_kbps", "0.00");
    b.field("instantaneous_output_repl_kbps", "0.00");
    b.field("rejected_connections", stats.rejected_connections.load());
    b.field("sync_full", 0);
    b.field("sync_partial_ok", 0);
    b.field("sync_partial_err", 0);
    b.field("expired_keys", ss.expired_keys);
    b.field("expired_stale_perc", "0.00");
    b.field("expired_time_cap_reached_count", 0);
    b.field("expire_cycle_cpu_milliseconds", stats.expire_cycle_us.load() / 1000);
    b.field("evicted_keys", ss.evicted_keys);
    b.field("evicted_clients", 0);
    b.field("total_eviction_exceeded_time", 0);
    b.field("current_eviction_exceeded_time", 0);
    b.field("keyspace_hits", stats.keyspace_hits.load());
    b.field("keyspace_misses", stats.keyspace_misses.load());
    b.field("pubsub_channels", 0);
    b.field("pubsub_patterns", 0);
    b.field("pubsubshard_channels", 0);
    b.field("latest_fork_usec", 0);
    b.field("total_forks", 0);
    b.field("migrate_cached_sockets", 0);
    b.field("slave_expires_tracked_keys", 0);
    b.field("active_defrag_hits", 0);
    b.field("active_defrag_misses", 0);
    b.field("active_defrag_key_hits", 0);
    b.field("active_defrag_key_misses", 0);
    b.field("total_active_defrag_time", 0);
    b.field("current_active_defrag_time", 0);
    b.field("tracking_total_keys", 0);
    b.field("tracking_total_items", 0);
    b.field("tracking_total_prefixes", 0);
    b.field("unexpected_error_replies", stats.unexpected_error_replies.load());
    b.field("total_error_replies", stats.error_replies.load());
    b.field("dump_payload_sanitizations", 0);
    b.field("total_reads_processed", net.reads - stats.net_reads.load());
    b.field("total_writes_processed", net.writes - stats.net_writes.load());
    b.field("io_threaded_reads_processed", 0);
    b.field("io_threaded_writes_processed", 0);
    b.field("reply_buffer_shrinks", 0);
    b.field("reply_buffer_expands", 0);
    // ringkv's own
    b.field("total_protocol_errors", stats.protocol_errors.load());
    b.field("hot_key_cache_hits", server.hot_cache_sum(&HotCache::hits));
    b.field("hot_key_cache_misses", server.hot_cache_sum(&HotCache::misses));
    b.field("hot_key_cache_keys", server.hot_cache_sum(&HotCache::keys));
    b.field("hot_key_cache_bytes", server.hot_cache_sum(&HotCache::bytes));
  }
  if (on("replication")) {
    // Redis replication: none (ringkv replicates through its ring; see RING INFO).
    b.section("Replication");
    b.field("role", "master");
    b.field("connected_slaves", 0);
    b.field("master_failover_state", "no-failover");
    b.field("master_replid", server.run_id());
    b.field("master_replid2", "0000000000000000000000000000000000000000");
    b.field("master_repl_offset", 0);
    b.field("second_repl_offset", -1);
    b.field("repl_backlog_active", 0);
    b.field("repl_backlog_size", 1048576);
    b.field("repl_backlog_first_byte_offset", 0);
    b.field("repl_backlog_histlen", 0);
  }
  if (on("cpu")) {
    b.section("CPU");
    rusage self{}, children{}, thread{};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    getrusage(RUSAGE_THREAD, &thread);  // the loop thread serving this client
    auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    b.fieldf("used_cpu_sys", secs(self.ru_stime), 6);
    b.fieldf("used_cpu_user", secs(self.ru_utime), 6);
    b.fieldf("used_cpu_sys_children", secs(children.ru_stime), 6);
    b.fieldf("used_cpu_user_children", secs(children.ru_utime), 6);
    b.fieldf("used_cpu_sys_main_thread", secs(thread.ru_stime), 6);
    b.fieldf("used_cpu_user_main_thread", secs(thread.ru_utime), 6);
  }
  if (on("module_list") || on("modules")) b.section("Modules");
  if (on("commandstats")) {
    b.section("Commandstats");
    auto emit = [&](const CommandSpec& c, const CommandSpec* parent) {
      uint64_t calls = c.stats.calls.load(), rejected = c.stats.rejected.load(),
               failed = c.stats.failed.load();
      if (calls == 0 && rejected == 0 && failed == 0) return;
      char buf[256];
      uint64_t usec = c.stats.usec.load();
      std::snprintf(buf, sizeof buf,
                    "calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,failed_calls=%llu",
                    static_cast<unsigned long long>(calls), static_cast<unsigned long long>(usec),
                    calls ? static_cast<double>(usec) / static_cast<double>(calls) : 0.0,
                    static_cast<unsigned long long>(rejected),
                    static_cast<unsigned long long>(failed));
      b.field("cmdstat_" + c.full_name(parent), buf);
    };
    for (const CommandSpec& c : CommandTable::instance().all()) {
      emit(c, nullptr);
      for (const CommandSpec& sub : c.subcommands) emit(sub, &c);
    }
  }
  if (on("errorstats")) {
    b.section("Errorstats");
    std::map<std::string, uint64_t> sorted;
    {
      std::lock_guard<std::mutex> lock(stats.errors_mu);
      sorted.insert(stats.errors.begin(), stats.errors.end());
    }
    for (auto& [k, v] : sorted) b.field("errorstat_" + k, "count=" + std::to_string(v));
  }
  if (on("latencystats")) {
    // Percentiles 50, 99 and 99.9 (Redis's default latency-tracking-info-percentiles).
    b.section("Latencystats");
    auto emit = [&](const CommandSpec& c, const CommandSpec* parent) {
      const LatencyHistogram* h = c.stats.histogram.load(std::memory_order_acquire);
      if (h == nullptr || h->total() == 0) return;
      char buf[192];
      std::snprintf(buf, sizeof buf, "p50=%.3f,p99=%.3f,p99.9=%.3f",
                    static_cast<double>(h->value_at_percentile(50)) / 1000.0,
                    static_cast<double>(h->value_at_percentile(99)) / 1000.0,
                    static_cast<double>(h->value_at_percentile(99.9)) / 1000.0);
      b.field("latency_percentiles_usec_" + c.full_name(parent), buf);
    };
    for (const CommandSpec& c : CommandTable::instance().all()) {
      emit(c, nullptr);
      for (const CommandSpec& sub : c.subcommands) emit(sub, &c);
    }
  }
  if (on("cluster")) {
    // Redis Cluster's protocol is not ringkv's, so cluster_enabled stays 0 (clients that see 1
    // switch to Redis Cluster mode); the ring and this node follow, as RING INFO gives them.
    b.section("Cluster");
    b.field("cluster_enabled", 0);
    if (cluster::Cluster* c = server.cluster()) {
      b.out += ring_info_text(*c, c->view(loop_index), now);
    }
  }
  if (on("keyspace")) {
    b.section("Keyspace");
    size_t keys = st.size();
    size_t vkeys = st.volatile_size();
    if (keys > 0 || vkeys > 0) {
      b.field("db0", "keys=" + std::to_string(keys) + ",expires=" + std::to_string(vkeys) +
                         ",avg_ttl=" + std::to_string(estimate_avg_ttl(st, now)));
    }
  }
  return b.out;
}

}  // namespace ringkv::server
