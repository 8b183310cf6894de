#include "server/info.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "common/strings.h"
#include "server/command.h"
#include "server/server.h"
#include "server/version.h"
#include "store/arena.h"

namespace ringkv::server {

namespace {

std::string human_bytes(uint64_t n) {
  char buf[64];
  double d = static_cast<double>(n);
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  else if (n < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fK", d / 1024);
  else if (n < 1024ull * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fM", d / (1024 * 1024));
  else if (n < 1024ull * 1024 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2fG", d / (1024.0 * 1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.2fT", d / (1024.0 * 1024 * 1024 * 1024));
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
  void field(std::string_view k, int64_t v) { field(k, std::to_string(v)); }
  void field(std::string_view k, uint64_t v) { field(k, std::to_string(v)); }
  void field(std::string_view k, int v) { field(k, std::to_string(v)); }
  void fieldf(std::string_view k, double v, int prec = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    field(k, buf);
  }
};

std::atomic<size_t> g_peak{0};

}  // namespace

size_t process_rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t total = 0, resident = 0;
  f >> total >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string build_info(Server& server, const std::vector<std::string>& requested) {
  static const std::vector<std::string> kDefault = {
      "server", "clients", "memory", "persistence", "stats", "replication",
      "cpu", "modules", "errorstats", "cluster", "keyspace"};
  std::set<std::string> want;
  bool everything = false;
  if (requested.empty()) want.insert(kDefault.begin(), kDefault.end());
  for (const auto& s : requested) {
    if (s == "default") {
      want.insert(kDefault.begin(), kDefault.end());
    } else if (s == "all" || s == "everything") {
      want.insert(kDefault.begin(), kDefault.end());
      want.insert("commandstats");
      want.insert("latencystats");
      everything = true;
    } else {
      want.insert(s);
    }
  }
  (void)everything;
  Builder b;
  Millis now = server.clock().now_ms();
  store::Store& st = server.store();

  if (want.count("server")) {
    b.section("Server");
    utsname u;
    uname(&u);
    b.field("redis_version", kRedisCompatVersion);
    b.field("ringkv_version", kRingkvVersion);
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
    b.field("hz", server.config().get_int("hz"));
    b.field("configured_hz", server.config().get_int("hz"));
    b.field("lru_clock", static_cast<int64_t>(store::Store::lru_clock(now)));
    char exe[4096] = {0};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    b.field("executable", n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string());
    b.field("config_file", server.config().file_path());
    b.field("io_threads_active", server.io_threads() > 1 ? 1 : 0);
    b.field("io_threads", server.io_threads());
  }
  if (want.count("clients")) {
    b.section("Clients");
    b.field("connected_clients", server.connected_clients());
    b.field("cluster_connections", 0);
    b.field("maxclients", server.config().get_int("maxclients"));
    b.field("client_recent_max_input_buffer", 0);
    b.field("client_recent_max_output_buffer", 0);
    b.field("blocked_clients", 0);
    b.field("tracking_clients", 0);
    b.field("clients_in_timeout_table", 0);
  }
  if (want.count("memory")) {
    b.section("Memory");
    size_t used = st.memory_used() + server.pending_output_bytes();
    size_t peak = g_peak.load();
    while (used > peak && !g_peak.compare_exchange_weak(peak, used)) {
    }
    peak = std::max(peak, used);
    size_t rss = process_rss_bytes();
    size_t sys = total_system_memory();
    int64_t maxmem = server.maxmemory();
    b.field("used_memory", used);
    b.field("used_memory_human", human_bytes(used));
    b.field("used_memory_rss", rss);
    b.field("used_memory_rss_human", human_bytes(rss));
    b.field("used_memory_peak", peak);
    b.field("used_memory_peak_human", human_bytes(peak));
    b.fieldf("used_memory_peak_perc", peak ? 100.0 * static_cast<double>(used) / static_cast<double>(peak) : 100.0);
    b.field("used_memory_dataset", st.memory_used());
    b.field("total_system_memory", sys);
    b.field("total_system_memory_human", human_bytes(sys));
    b.field("maxmemory", maxmem);
    b.field("maxmemory_human", human_bytes(static_cast<uint64_t>(maxmem)));
    b.field("maxmemory_policy", store::eviction_policy_name(st.policy()));
    b.fieldf("mem_fragmentation_ratio", used ? static_cast<double>(rss) / static_cast<double>(used) : 0.0);
    b.field("mem_allocator", "ringkv-arena");
    b.field("store_pages_bytes", store::PageHeap::instance().pages_in_use_bytes());
    b.field("store_heap_resident_bytes", store::PageHeap::instance().resident_bytes());
    b.field("store_tombstones", st.tombstone_count());
    b.field("lazyfree_pending_objects", 0);
  }
  if (want.count("persistence")) {
    b.section("Persistence");
    b.field("loading", 0);
    b.field("async_loading", 0);
    b.field("rdb_changes_since_last_save", 0);
    b.field("rdb_bgsave_in_progress", 0);
    b.field("rdb_last_save_time", server.start_ms() / 1000);
    b.field("rdb_last_bgsave_status", "ok");
    b.field("aof_enabled", 0);
    b.field("aof_rewrite_in_progress", 0);
    b.field("aof_last_write_status", "ok");
    b.field("persistence", "none");
  }
  if (want.count("stats")) {
    b.section("Stats");
    ServerStats& s = server.stats();
    store::StoreStats ss = st.stats();
    b.field("total_connections_received", s.connections_received.load());
    b.field("total_commands_processed", s.commands.load());
    b.field("instantaneous_ops_per_sec", server.instantaneous_ops());
    b.field("total_net_input_bytes", s.net_input_bytes.load());
    b.field("total_net_output_bytes", s.net_output_bytes.load());
    b.field("rejected_connections", s.rejected_connections.load());
    b.field("expired_keys", ss.expired_keys);
    b.field("evicted_keys", ss.evicted_keys);
    b.field("keyspace_hits", s.keyspace_hits.load());
    b.field("keyspace_misses", s.keyspace_misses.load());
    b.field("pubsub_channels", 0);
    b.field("pubsub_patterns", 0);
    b.field("total_error_replies", s.error_replies.load());
    b.field("total_protocol_errors", s.protocol_errors.load());
  }
  if (want.count("replication")) {
    b.section("Replication");
    b.field("role", "master");
    b.field("connected_slaves", 0);
    b.field("master_failover_state", "no-failover");
    b.field("master_replid", server.run_id());
    b.field("master_repl_offset", 0);
  }
  if (want.count("cpu")) {
    b.section("CPU");
    rusage self{}, children{};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    b.fieldf("used_cpu_sys", secs(self.ru_stime), 6);
    b.fieldf("used_cpu_user", secs(self.ru_utime), 6);
    b.fieldf("used_cpu_sys_children", secs(children.ru_stime), 6);
    b.fieldf("used_cpu_user_children", secs(children.ru_utime), 6);
  }
  if (want.count("modules")) b.section("Modules");
  if (want.count("commandstats")) {
    b.section("Commandstats");
    auto emit = [&](const CommandSpec& c, const CommandSpec* parent) {
      uint64_t calls = c.stats.calls.load(), rejected = c.stats.rejected.load();
      if (calls == 0 && rejected == 0 && c.stats.failed.load() == 0) return;
      std::string name = c.full_name(parent);
      char buf[256];
      uint64_t usec = c.stats.usec.load();
      std::snprintf(buf, sizeof buf, "calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,failed_calls=%llu",
                    static_cast<unsigned long long>(calls), static_cast<unsigned long long>(usec),
                    calls ? static_cast<double>(usec) / static_cast<double>(calls) : 0.0,
                    static_cast<unsigned long long>(rejected),
                    static_cast<unsigned long long>(c.stats.failed.load()));
      b.field("cmdstat_" + name, buf);
    };
    for (const CommandSpec& c : CommandTable::instance().all()) {
      emit(c, nullptr);
      for (const CommandSpec& sub : c.subcommands) emit(sub, &c);
    }
  }
  if (want.count("errorstats")) {
    b.section("Errorstats");
    ServerStats& s = server.stats();
    std::map<std::string, uint64_t> sorted;
    {
      std::lock_guard<std::mutex> lock(s.errors_mu);
      sorted.insert(s.errors.begin(), s.errors.end());
    }
    for (auto& [k, v] : sorted) b.field("errorstat_" + k, "count=" + std::to_string(v));
  }
  if (want.count("cluster")) {
    b.section("Cluster");
    b.field("cluster_enabled", 0);
  }
  if (want.count("keyspace")) {
    b.section("Keyspace");
    size_t keys = st.size();
    if (keys > 0) {
      b.field("db0", "keys=" + std::to_string(keys) + ",expires=" + std::to_string(st.volatile_size()) +
                         ",avg_ttl=0");
    }
  }
  return b.out;
}

}  // namespace ringkv::server
