// cluster_load: a load generator for bench/migration.sh, on hiredis. Connections are spread
// over the given nodes (any node of a ringkv cluster accepts any key).
//
//   cluster_load --ports 7001,7002,7003 --pattern 'key:%d' --count 1000000 --value-size 64
//                --mode fill                 SET every key once; prints the time it took
//                --mode mixed                random keys, GET or SET (--set-percent, default 50)
//                  [--seconds S] [--stop-file F]   until S seconds passed or F exists
//                  [--interval-ms 250]             one line per interval on stdout:
//                                                  "<unix ms> <ops> <errors> <missing>"
//                [--threads 2] [--conns 25] (per thread) [--pipeline 1] [--seed 1]
//
// In mixed mode every key is expected to exist (fill first): a GET that returns nil counts as
// `missing`, an error reply as `errors`. The last line is a summary: "summary ops <n> seconds
// <s> ops_per_sec <r> errors <e> missing <m>"; the first few error texts go to stderr.
#include <hiredis/hiredis.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::vector<int> ports;
  std::string head, tail;  // the pattern around %d
  uint64_t count = 0;
  size_t value_size = 64;
  std::string mode;
  double seconds = 0;
  std::string stop_file;
  int interval_ms = 250;
  int threads = 2, conns = 25, pipeline = 1;
  int set_percent = 50;
  uint64_t seed = 1;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "cluster_load: %s (see the header of bench/cluster_load.cc)\n", why.c_str());
  std::exit(2);
}

std::atomic<uint64_t> g_ops{0}, g_errors{0}, g_missing{0};
std::atomic<bool> g_stop{false};
std::mutex g_err_mu;
int g_err_printed = 0;

void note_error(const std::string& what) {
  g_errors.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(g_err_mu);
  if (g_err_printed++ < 10) std::fprintf(stderr, "cluster_load: %s\n", what.c_str());
}

redisContext* open(int port) {
  timeval tv{10, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err) {
    note_error("connect to " + std::to_string(port) + ": " + (c ? c->errstr : "out of memory"));
    if (c) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, tv);
  return c;
}

std::string key_of(const Options& o, uint64_t i) { return o.head + std::to_string(i) + o.tail; }

// One worker: `conns` connections, each with `pipeline` requests in flight per round.
void worker(const Options& o, int index, uint64_t first, uint64_t last) {
  std::vector<redisContext*> cs;
  std::vector<int> ports;
  for (int i = 0; i < o.conns; ++i) {
    int port = o.ports[static_cast<size_t>(index * o.conns + i) % o.ports.size()];
    ports.push_back(port);
    cs.push_back(open(port));
  }
  std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(index));
  std::string value(o.value_size, 'x');
  uint64_t next_fill = first;
  std::vector<std::vector<int>> kinds(cs.size());  // 0 = SET, 1 = GET, per request in flight
  while (!g_stop.load(std::memory_order_relaxed)) {
    bool any = false;
    for (size_t c = 0; c < cs.size(); ++c) {
      if (cs[c] == nullptr && (cs[c] = open(ports[c])) == nullptr) continue;
      kinds[c].clear();
      for (int p = 0; p < o.pipeline; ++p) {
        uint64_t k;
        bool set;
        if (o.mode == "fill") {
          if (next_fill >= last) break;
          k = next_fill++;
          set = true;
        } else {
          k = rng() % o.count;
          set = static_cast<int>(rng() % 100) < o.set_percent;
        }
        std::string key = key_of(o, k);
        if (set) {
          // The value carries the key number, so a GET can be checked for its length.
          std::string num = std::to_string(k);
          std::copy(num.begin(), num.end(), value.begin());
          redisAppendCommand(cs[c], "SET %b %b", key.data(), key.size(), value.data(),
                             value.size());
        } else {
          redisAppendCommand(cs[c], "GET %b", key.data(), key.size());
        }
        kinds[c].push_back(set ? 0 : 1);
      }
      if (kinds[c].empty()) continue;
      any = true;
      int done = 0;
      while (!done) {
        if (redisBufferWrite(cs[c], &done) != REDIS_OK) break;
      }
    }
    if (!any) break;
    for (size_t c = 0; c < cs.size(); ++c) {
      if (cs[c] == nullptr) continue;
      for (int kind : kinds[c]) {
        void* r = nullptr;
        if (redisGetReply(cs[c], &r) != REDIS_OK || r == nullptr) {
          note_error("connection to " + std::to_string(ports[c]) + ": " + cs[c]->errstr);
          redisFree(cs[c]);
          cs[c] = nullptr;
          break;
        }
        auto* rep = static_cast<redisReply*>(r);
        if (rep->type == REDIS_REPLY_ERROR) {
          note_error(std::string(kind == 0 ? "SET: " : "GET: ") + std::string(rep->str, rep->len));
        } else if (kind == 1 && rep->type == REDIS_REPLY_NIL) {
          g_missing.fetch_add(1, std::memory_order_relaxed);
        } else if (kind == 1 && (rep->type != REDIS_REPLY_STRING || rep->len != value.size())) {
          note_error("GET: a value of the wrong size");
        }
        freeReplyObject(rep);
        g_ops.fetch_add(1, std::memory_order_relaxed);
      }
      kinds[c].clear();
    }
  }
  for (auto* c : cs)
    if (c) redisFree(c);
}

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string pattern = "key:%d";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage("missing value after " + a);
    std::string v = argv[++i];
    if (a == "--ports") {
      size_t s = 0;
      while (s < v.size()) {
        size_t e = v.find(',', s);
        o.ports.push_back(std::atoi(v.substr(s, e - s).c_str()));
        if (e == std::string::npos) break;
        s = e + 1;
      }
    } else if (a == "--pattern")
      pattern = v;
    else if (a == "--count")
      o.count = std::stoull(v);
    else if (a == "--value-size")
      o.value_size = std::stoul(v);
    else if (a == "--mode")
      o.mode = v;
    else if (a == "--seconds")
      o.seconds = std::stod(v);
    else if (a == "--stop-file")
      o.stop_file = v;
    else if (a == "--interval-ms")
      o.interval_ms = std::stoi(v);
    else if (a == "--threads")
      o.threads = std::stoi(v);
    else if (a == "--conns")
      o.conns = std::stoi(v);
    else if (a == "--pipeline")
      o.pipeline = std::stoi(v);
    else if (a == "--set-percent")
      o.set_percent = std::stoi(v);
    else if (a == "--seed")
      o.seed = std::stoull(v);
    else
      usage("unknown option " + a);
  }
  size_t hole = pattern.find("%d");
  if (hole == std::string::npos) usage("--pattern must contain %d");
  o.head = pattern.substr(0, hole);
  o.tail = pattern.substr(hole + 2);
  if (o.ports.empty() || o.count == 0) usage("--ports and --count are required");
  if (o.mode != "fill" && o.mode != "mixed") usage("--mode is fill or mixed");
  if (o.value_size < 20) usage("--value-size must be at least 20");
  if (o.threads < 1 || o.conns < 1 || o.pipeline < 1)
    usage("--threads, --conns, --pipeline must be >= 1");

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < o.threads; ++t) {
    uint64_t first = o.count * static_cast<uint64_t>(t) / static_cast<uint64_t>(o.threads);
    uint64_t last = o.count * static_cast<uint64_t>(t + 1) / static_cast<uint64_t>(o.threads);
    ts.emplace_back(worker, std::cref(o), t, first, last);
  }
  if (o.mode == "mixed") {
    uint64_t prev_ops = 0, prev_err = 0, prev_missing = 0;
    auto next = t0;
    for (;;) {
      next += std::chrono::milliseconds(o.interval_ms);
      std::this_thread::sleep_until(next);
      uint64_t ops = g_ops.load(), err = g_errors.load(), missing = g_missing.load();
      std::printf("%llu %llu %llu %llu\n", static_cast<unsigned long long>(unix_ms()),
                  static_cast<unsigned long long>(ops - prev_ops),
                  static_cast<unsigned long long>(err - prev_err),
                  static_cast<unsigned long long>(missing - prev_missing));
      std::fflush(stdout);
      prev_ops = ops;
      prev_err = err;
      prev_missing = missing;
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      struct stat st;
      if ((o.seconds > 0 && elapsed >= o.seconds) ||
          (!o.stop_file.empty() && ::stat(o.stop_file.c_str(), &st) == 0))
        break;
    }
    g_stop = true;
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("summary ops %llu seconds %.3f ops_per_sec %.0f errors %llu missing %llu\n",
              static_cast<unsigned long long>(g_ops.load()), secs,
              static_cast<double>(g_ops.load()) / secs,
              static_cast<unsigned long long>(g_errors.load()),
              static_cast<unsigned long long>(g_missing.load()));
  return g_errors.load() == 0 && g_missing.load() == 0 ? 0 : 1;
}
