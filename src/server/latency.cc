#include "server/latency.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "server/util.h"

namespace ringkv::server {

// ---------------------------------------------------------------- the histogram (hdr_histogram)

CommandStats::~CommandStats() { delete histogram.load(std::memory_order_acquire); }

namespace {
constexpr int64_t kSubBucketMask = LatencyHistogram::kSubBucketCount - 1;

int bucket_index(int64_t value) {
  int pow2ceiling = 64 - __builtin_clzll(static_cast<uint64_t>(value | kSubBucketMask));
  return pow2ceiling - (LatencyHistogram::kSubBucketHalfCountMagnitude + 1);
}
int sub_bucket_index(int64_t value, int bucket) { return static_cast<int>(value >> bucket); }
}  // namespace

int LatencyHistogram::counts_index_for(int64_t value) {
  int b = bucket_index(value);
  int s = sub_bucket_index(value, b);
  return ((b + 1) << kSubBucketHalfCountMagnitude) + (s - kSubBucketHalfCount);
}

int64_t LatencyHistogram::value_from_index(int index) {
  int b = (index >> kSubBucketHalfCountMagnitude) - 1;
  int s = (index & (kSubBucketHalfCount - 1)) + kSubBucketHalfCount;
  if (b < 0) {
    s -= kSubBucketHalfCount;
    b = 0;
  }
  return static_cast<int64_t>(s) << b;
}

int64_t LatencyHistogram::lowest_equivalent(int64_t value) {
  int b = bucket_index(value);
  return static_cast<int64_t>(sub_bucket_index(value, b)) << b;
}

int64_t LatencyHistogram::highest_equivalent(int64_t value) {
  int b = bucket_index(value);
  int s = sub_bucket_index(value, b);
  int adjusted = s >= kSubBucketCount ? b + 1 : b;
  return lowest_equivalent(value) + (int64_t{1} << adjusted) - 1;
}

void LatencyHistogram::record(int64_t ns) {
  if (ns < kMin) ns = kMin;
  if (ns > kMax) ns = kMax;
  int i = counts_index_for(ns);
  if (i < 0 || i >= kCountsLen) return;
  counts_[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
  total_.fetch_add(1, std::memory_order_relaxed);
}

void LatencyHistogram::reset() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  total_.store(0, std::memory_order_relaxed);
}

int64_t LatencyHistogram::value_at_percentile(double percentile) const {
  // A consistent snapshot: the total is the sum of the counts read.
  std::array<uint64_t, kCountsLen> counts;
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    counts[i] = counts_[i].load(std::memory_order_relaxed);
    total += counts[i];
  }
  double p = percentile < 100.0 ? percentile : 100.0;
  int64_t at = static_cast<int64_t>((p / 100) * static_cast<double>(total) + 0.5);
  if (at < 1) at = 1;
  int64_t value = 0;
  uint64_t sum = 0;
  for (int i = 0; i < kCountsLen; ++i) {
    sum += counts[static_cast<size_t>(i)];
    if (sum >= static_cast<uint64_t>(at)) {
      value = value_from_index(i);
      break;
    }
  }
  if (percentile == 0.0) return lowest_equivalent(value);
  return highest_equivalent(value);
}

std::vector<std::pair<int64_t, uint64_t>> LatencyHistogram::cumulative_usec() const {
  // hdr_iter_log_init(iter, h, 1024, 2) walked as Redis's fillCommandCDF walks it.
  std::array<uint64_t, kCountsLen> counts;
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    counts[i] = counts_[i].load(std::memory_order_relaxed);
    total += counts[i];
  }
  std::vector<std::pair<int64_t, uint64_t>> out;
  int idx = -1;
  int64_t value = 0, highest = 0;
  uint64_t cumulative = 0, previous = 0;
  int64_t level = 1024;
  int64_t level_lowest = lowest_equivalent(level);
  for (;;) {
    bool more =
        cumulative < total || (idx < kCountsLen && value_from_index(idx + 1) > level_lowest);
    if (!more) break;
    for (;;) {
      if (value >= level_lowest) {
        level *= 2;
        level_lowest = lowest_equivalent(level);
        break;
      }
      if (++idx >= kCountsLen) break;  // no more buckets: the values stay as they were
      cumulative += counts[static_cast<size_t>(idx)];
      value = value_from_index(idx);
      highest = highest_equivalent(value);
    }
    if (cumulative > previous) out.emplace_back(highest / 1000, cumulative);
    previous = cumulative;
    if (idx >= kCountsLen) break;
  }
  return out;
}

// ---------------------------------------------------------------- events

void LatencyMonitor::add(const std::string& event, uint32_t latency_ms, int64_t now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& ts = events_[event];
  if (latency_ms > ts.max) ts.max = latency_ms;
  // Within the same second, one sample keeps the highest latency.
  size_t prev = (static_cast<size_t>(ts.idx) + kSamples - 1) % kSamples;
  if (ts.samples[prev].time == now_s) {
    if (latency_ms > ts.samples[prev].latency_ms) ts.samples[prev].latency_ms = latency_ms;
    return;
  }
  ts.samples[static_cast<size_t>(ts.idx)] = Sample{now_s, latency_ms};
  ts.idx = (ts.idx + 1) % static_cast<int>(kSamples);
}

size_t LatencyMonitor::reset(const std::vector<std::string>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  if (events.empty()) {
    size_t n = events_.size();
    events_.clear();
    return n;
  }
  size_t n = 0;
  for (const auto& e : events) n += events_.erase(e);
  return n;
}

std::map<std::string, LatencyMonitor::Series> LatencyMonitor::snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

bool LatencyMonitor::empty() {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.empty();
}

// ---------------------------------------------------------------- GRAPH (sparkline.c)

namespace {

struct Spark {
  double value;
  std::string label;
};

// Redis's sparklineRenderRange with SPARKLINE_FILL, 4 rows.
void render_range(std::string& out, const std::vector<Spark>& seq, double min, double max,
                  bool have_labels, size_t offset, size_t len) {
  static const char kCharsetFill[] = "_o#";
  const int charset_len = 3, rows = 4, label_margin_top = 1;
  double relmax = max - min;
  int steps = charset_len * rows;
  int row = 0;
  if (relmax == 0) relmax = 1;
  std::string chars(len, ' ');
  bool loop = true;
  while (loop) {
    loop = false;
    std::fill(chars.begin(), chars.end(), ' ');
    for (size_t j = 0; j < len; ++j) {
      const Spark& s = seq[j + offset];
      double relval = s.value - min;
      int step = static_cast<int>((relval * steps) / relmax);
      if (step < 0) step = 0;
      if (step >= steps) step = steps - 1;
      if (row < rows) {
        int charidx = step - ((rows - row - 1) * charset_len);
        loop = true;
        if (charidx >= 0 && charidx < charset_len) {
          chars[j] = kCharsetFill[charidx];
        } else if (charidx >= charset_len) {
          chars[j] = '|';
        }
      } else {
        if (have_labels && row - rows < label_margin_top) {
          loop = true;
          break;
        }
        if (!s.label.empty()) {
          int label_char = row - rows - label_margin_top;
          if (static_cast<int>(s.label.size()) > label_char) {
            loop = true;
            chars[j] = s.label[static_cast<size_t>(label_char)];
          }
        }
      }
    }
    if (loop) {
      ++row;
      out += chars;
      out += '\n';
    }
  }
}

}  // namespace

std::string latency_graph(const std::string& event, const LatencyMonitor::Series& ts,
                          int64_t now_s) {
  std::vector<Spark> seq;
  double smin = 0, smax = 0;
  uint32_t min = 0, max = 0;
  for (size_t j = 0; j < LatencyMonitor::kSamples; ++j) {
    const auto& sample = ts.samples[(static_cast<size_t>(ts.idx) + j) % LatencyMonitor::kSamples];
    if (sample.time == 0) continue;
    if (seq.empty()) {
      min = max = sample.latency_ms;
    } else {
      max = std::max(max, sample.latency_ms);
      min = std::min(min, sample.latency_ms);
    }
    int64_t elapsed = now_s - sample.time;
    char buf[64];
    if (elapsed < 60)
      std::snprintf(buf, sizeof buf, "%ds", static_cast<int>(elapsed));
    else if (elapsed < 3600)
      std::snprintf(buf, sizeof buf, "%dm", static_cast<int>(elapsed / 60));
    else if (elapsed < 3600 * 24)
      std::snprintf(buf, sizeof buf, "%dh", static_cast<int>(elapsed / 3600));
    else
      std::snprintf(buf, sizeof buf, "%dd", static_cast<int>(elapsed / (3600 * 24)));
    double v = sample.latency_ms;
    if (seq.empty()) {
      smin = smax = v;
    } else if (v < smin) {
      smin = v;
    } else if (v > smax) {
      smax = v;
    }
    seq.push_back(Spark{v, buf});
  }
  char head[256];
  std::snprintf(head, sizeof head, "%s - high %lu ms, low %lu ms (all time high %lu ms)\n",
                event.c_str(), static_cast<unsigned long>(max), static_cast<unsigned long>(min),
                static_cast<unsigned long>(ts.max));
  std::string out = head;
  out.append(80, '-');
  out += '\n';
  const size_t columns = 80;
  for (size_t j = 0; j < seq.size(); j += columns) {
    size_t sublen = std::min(columns, seq.size() - j);
    if (j != 0) out += '\n';
    render_range(out, seq, smin, smax, !seq.empty(), j, sublen);
  }
  return out;
}

// ---------------------------------------------------------------- DOCTOR

std::string latency_doctor(const std::map<std::string, LatencyMonitor::Series>& events,
                           const LatencyDoctorInput& in) {
  if (events.empty() && in.threshold_ms == 0) {
    return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
           "instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in "
           "order to enable it. If we weren't in a deep space mission I'd suggest to take a look "
           "at https://redis.io/topics/latency-monitor.\n";
  }
  std::string report;
  bool advise_slowlog_enabled = false, advise_slowlog_tuning = false,
       advise_slowlog_inspect = false, advise_scheduler = false, advise_hz = false,
       advise_large_objects = false, advise_mass_eviction = false, advise_disable_thp = false;
  int advices = 0, eventnum = 0;
  char buf[512];
  for (const auto& [event, ts] : events) {
    ++eventnum;
    if (eventnum == 1) {
      report +=
          "Dave, I have observed latency spikes in this Redis instance. You don't mind "
          "talking about it, do you Dave?\n\n";
    }
    // analyzeLatencyForEvent
    uint64_t sum = 0;
    int samples = 0;
    int64_t oldest = 0;
    for (const auto& s : ts.samples) {
      if (s.time == 0) continue;
      ++samples;
      sum += s.latency_ms;
      if (oldest == 0 || s.time < oldest) oldest = s.time;
    }
    uint64_t avg = samples ? sum / static_cast<uint64_t>(samples) : 0;
    int64_t period = samples ? in.now_s - oldest : 0;
    if (samples && period == 0) period = 1;
    uint64_t mad_sum = 0;
    for (const auto& s : ts.samples) {
      if (s.time == 0) continue;
      int64_t delta = static_cast<int64_t>(avg) - static_cast<int64_t>(s.latency_ms);
      mad_sum += static_cast<uint64_t>(delta < 0 ? -delta : delta);
    }
    uint64_t mad = samples ? mad_sum / static_cast<uint64_t>(samples) : 0;
    std::snprintf(buf, sizeof buf,
                  "%d. %s: %d latency spikes (average %lums, mean deviation %lums, period %.2f "
                  "sec). Worst all time event %lums.",
                  eventnum, event.c_str(), samples, static_cast<unsigned long>(avg),
                  static_cast<unsigned long>(mad),
                  samples ? static_cast<double>(period) / samples : 0.0,
                  static_cast<unsigned long>(ts.max));
    report += buf;
    if (event == "command") {
      if (in.slowlog_slower_than_us < 0 || in.slowlog_max_len == 0) {
        advise_slowlog_enabled = true;
        ++advices;
      } else if (in.slowlog_slower_than_us / 1000 > in.threshold_ms) {
        advise_slowlog_tuning = true;
        ++advices;
      }
      advise_slowlog_inspect = true;
      advise_large_objects = true;
      advices += 2;
    }
    if (event == "fast-command") {
      advise_scheduler = true;
      ++advices;
    }
    if (event == "expire-cycle") {
      advise_hz = true;
      advise_large_objects = true;
      advices += 2;
    }
    if (event == "eviction-del") {
      advise_large_objects = true;
      ++advices;
    }
    if (event == "eviction-cycle") {
      advise_mass_eviction = true;
      ++advices;
    }
    report += '\n';
  }
  if (in.anon_huge_pages_bytes > 0) {
    advise_disable_thp = true;
    ++advices;
  }
  if (eventnum == 0 && advices == 0) {
    report +=
        "Dave, no latency spike was observed during the lifetime of this Redis instance, "
        "not in the slightest bit. I honestly think you ought to sleep.\n";
  } else if (eventnum > 0 && advices == 0) {
    report +=
        "\nWhile there are latency events logged, I'm not able to suggest any easy fix. "
        "Please use the Redis community to get some help, providing this report in your "
        "help request.\n";
  } else {
    report += "\nI have a few advices for you:\n\n";
    unsigned long long threshold_us = static_cast<unsigned long long>(in.threshold_ms) * 1000;
    if (advise_slowlog_enabled) {
      std::snprintf(buf, sizeof buf,
                    "- There are latency issues with potentially slow commands you are using. Try "
                    "to enable the Slow Log Redis feature using the command 'CONFIG SET "
                    "slowlog-log-slower-than %llu'. If the Slow log is disabled Redis is not able "
                    "to log slow commands execution for you.\n",
                    threshold_us);
      report += buf;
    }
    if (advise_slowlog_tuning) {
      std::snprintf(buf, sizeof buf,
                    "- Your current Slow Log configuration only logs events that are slower than "
                    "your configured latency monitor threshold. Please use 'CONFIG SET "
                    "slowlog-log-slower-than %llu'.\n",
                    threshold_us);
      report += buf;
    }
    if (advise_slowlog_inspect) {
      report +=
          "- Check your Slow Log to understand what are the commands you are running which "
          "are too slow to execute. Please check https://redis.io/commands/slowlog for more "
          "information.\n";
    }
    if (advise_scheduler) {
      report +=
          "- The system is slow to execute Redis code paths not containing system calls. This "
          "usually means the system does not provide Redis CPU time to run for long periods. You "
          "should try to:\n"
          "  1) Lower the system load.\n"
          "  2) Use a computer / VM just for Redis if you are running other software in the same "
          "system.\n"
          "  3) Check if you have a \"noisy neighbour\" problem.\n"
          "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in "
          "your system.\n"
          "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, "
          "if you are using Jemalloc. However this may create fragmentation problems.\n";
    }
    if (advise_hz && in.hz < 100) {
      report +=
          "- In order to make the Redis keys expiring process more incremental, try to set "
          "the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n";
    }
    if (advise_large_objects) {
      report +=
          "- Deleting, expiring or evicting (because of maxmemory policy) large objects is "
          "a blocking operation. If you have very large objects that are often deleted, "
          "expired, or evicted, try to fragment those objects into multiple smaller "
          "objects.\n";
    }
    if (advise_mass_eviction) {
      report +=
          "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of "
          "large objects via sets or sorted sets intersections, STORE option of SORT, Redis "
          "Cluster large keys migrations (RESTORE command), may create sudden memory "
          "pressure forcing the server to block trying to evict keys. \n";
    }
    if (advise_disable_thp) {
      report +=
          "- I detected a non zero amount of anonymous huge pages used by your process. "
          "This creates very serious latency events in different conditions, especially "
          "when Redis is persisting on disk. To disable THP support use the command 'echo "
          "never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it "
          "into /etc/rc.local so that the command will be executed again after a reboot. "
          "Note that even if you have already disabled THP, you still need to restart the "
          "Redis process to get rid of the huge pages already created.\n";
    }
  }
  return report;
}

// ---------------------------------------------------------------- LATENCY

namespace {

size_t anon_huge_pages_bytes() {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  size_t total = 0;
  while (std::getline(f, line)) {
    if (line.rfind("AnonHugePages:", 0) != 0) continue;
    total += static_cast<size_t>(std::strtoull(line.c_str() + 14, nullptr, 10)) * 1024;
  }
  return total;
}

void write_cdf(resp::Writer& w, const LatencyHistogram& h) {
  auto cdf = h.cumulative_usec();
  uint64_t calls = 0;
  for (auto& [usec, cum] : cdf) calls = std::max(calls, cum);
  w.map(2);
  w.bulk("calls");
  w.integer(static_cast<int64_t>(calls));
  w.bulk("histogram_usec");
  w.map(cdf.size());
  for (auto& [usec, cum] : cdf) {
    w.integer(usec);
    w.integer(static_cast<int64_t>(cum));
  }
}

}  // namespace

void cmd_latency_latest(CommandContext& ctx) {
  auto events = ctx.server.latency().snapshot();
  ctx.w.array(events.size());
  for (const auto& [event, ts] : events) {
    size_t last =
        (static_cast<size_t>(ts.idx) + LatencyMonitor::kSamples - 1) % LatencyMonitor::kSamples;
    ctx.w.array(4);
    ctx.w.bulk(event);
    ctx.w.integer(ts.samples[last].time);
    ctx.w.integer(ts.samples[last].latency_ms);
    ctx.w.integer(ts.max);
  }
}

void cmd_latency_history(CommandContext& ctx) {
  auto events = ctx.server.latency().snapshot();
  auto it = events.find(std::string(ctx.arg(2)));
  if (it == events.end()) {
    ctx.w.array(0);
    return;
  }
  const LatencyMonitor::Series& ts = it->second;
  std::vector<LatencyMonitor::Sample> samples;
  for (size_t j = 0; j < LatencyMonitor::kSamples; ++j) {
    const auto& s = ts.samples[(static_cast<size_t>(ts.idx) + j) % LatencyMonitor::kSamples];
    if (s.time != 0) samples.push_back(s);
  }
  ctx.w.array(samples.size());
  for (const auto& s : samples) {
    ctx.w.array(2);
    ctx.w.integer(s.time);
    ctx.w.integer(s.latency_ms);
  }
}

void cmd_latency_graph(CommandContext& ctx) {
  auto events = ctx.server.latency().snapshot();
  std::string event(ctx.arg(2));
  auto it = events.find(event);
  if (it == events.end()) {
    ctx.error("ERR No samples available for event '" + std::string(c_string(event)) + "'");
    return;
  }
  ctx.w.verbatim(latency_graph(event, it->second, ctx.now / 1000));
}

void cmd_latency_doctor(CommandContext& ctx) {
  config::Config& cfg = ctx.server.config();
  LatencyDoctorInput in;
  in.threshold_ms = cfg.get_int("latency-monitor-threshold");
  in.slowlog_slower_than_us = cfg.get_int("slowlog-log-slower-than");
  in.slowlog_max_len = cfg.get_int("slowlog-max-len");
  in.hz = static_cast<int>(cfg.get_int("hz"));
  in.now_s = ctx.now / 1000;
  in.anon_huge_pages_bytes = anon_huge_pages_bytes();
  ctx.w.verbatim(latency_doctor(ctx.server.latency().snapshot(), in));
}

void cmd_latency_reset(CommandContext& ctx) {
  std::vector<std::string> events;
  for (size_t i = 2; i < ctx.argc(); ++i) events.emplace_back(ctx.arg(i));
  ctx.w.integer(static_cast<int64_t>(ctx.server.latency().reset(events)));
}

void cmd_latency_histogram(CommandContext& ctx) {
  // Commands with data, each with its subcommands (as Redis: the named ones, or all).
  std::vector<std::pair<std::string, const LatencyHistogram*>> list;
  auto consider = [&](const CommandSpec& c, const CommandSpec* parent) {
    const LatencyHistogram* h = c.stats.histogram.load(std::memory_order_acquire);
    if (h != nullptr && h->total() > 0) list.emplace_back(c.full_name(parent), h);
  };
  auto with_subs = [&](const CommandSpec& c) {
    consider(c, nullptr);
    for (const CommandSpec& sub : c.subcommands) consider(sub, &c);
  };
  const CommandTable& table = CommandTable::instance();
  if (ctx.argc() == 2) {
    for (const CommandSpec& c : table.all()) with_subs(c);
  } else {
    for (size_t i = 2; i < ctx.argc(); ++i) {
      std::string_view name = ctx.arg(i);
      size_t bar = name.find('|');
      if (bar == std::string_view::npos) {
        if (const CommandSpec* c = table.find(name)) with_subs(*c);
      } else if (const CommandSpec* p = table.find(name.substr(0, bar))) {
        if (const CommandSpec* sub = table.find_sub(*p, name.substr(bar + 1))) {
          with_subs(*sub);
        }
      }
    }
  }
  ctx.w.map(list.size());
  for (auto& [name, h] : list) {
    ctx.w.bulk(name);
    write_cdf(ctx.w, *h);
  }
}

void cmd_latency_help(CommandContext& ctx) {
  static const char* kHelp[] = {
      "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "DOCTOR",
      "    Return a human readable latency analysis report.",
      "GRAPH <event>",
      "    Return an ASCII latency graph for the <event> class.",
      "HISTORY <event>",
      "    Return time-latency samples for the <event> class.",
      "LATEST",
      "    Return the latest latency samples for all events.",
      "RESET [<event> ...]",
      "    Reset latency data of one or more <event> classes.",
      "    (default: reset all data for all event classes)",
      "HISTOGRAM [COMMAND ...]",
      "    Return a cumulative distribution of latencies in the format of a histogram for the "
      "specified command names.",
      "    If no commands are specified then all histograms are replied.",
      "HELP",
      "    Prints this help.",
  };
  ctx.w.array(std::size(kHelp));
  for (const char* l : kHelp) ctx.w.simple(l);
}

}  // namespace ringkv::server
