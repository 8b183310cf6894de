// Latency monitoring, as Redis 7.0's latency.c and its per-command latency histograms:
//   - LatencyMonitor keeps, per event ("command", "fast-command", "expire-cycle",
//     "eviction-cycle"), the last 160 one-second samples of events that took at least
//     latency-monitor-threshold ms (LATENCY LATEST/HISTORY/RESET/GRAPH/DOCTOR);
//   - LatencyHistogram is a lock-free copy of the HdrHistogram Redis keeps per command
//     (1 ns .. 1 s, 2 significant digits), for INFO latencystats and LATENCY HISTOGRAM, so the
//     percentiles and buckets print exactly as Redis prints them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ringkv::server {

class LatencyHistogram {
 public:
  // Redis: hdr_init(LATENCY_HISTOGRAM_MIN_VALUE=1, MAX=1e9 ns, 2 significant figures).
  static constexpr int64_t kMin = 1, kMax = 1000000000;
  static constexpr int kSubBucketCount = 256, kSubBucketHalfCount = 128;
  static constexpr int kSubBucketHalfCountMagnitude = 7;
  static constexpr int kBucketCount = 23;
  static constexpr int kCountsLen = (kBucketCount + 1) * kSubBucketHalfCount;

  // Thread-safe (relaxed atomics). Values are clamped to [kMin, kMax] as Redis does.
  void record(int64_t ns);
  void reset();
  uint64_t total() const { return total_.load(std::memory_order_relaxed); }
  // hdr_value_at_percentile.
  int64_t value_at_percentile(double percentile) const;
  // The cumulative distribution LATENCY HISTOGRAM prints: (usec bucket, cumulative count) for
  // every power-of-two bucket from 1024 ns whose count grew.
  std::vector<std::pair<int64_t, uint64_t>> cumulative_usec() const;

  static int counts_index_for(int64_t value);
  static int64_t value_from_index(int index);
  static int64_t lowest_equivalent(int64_t value);
  static int64_t highest_equivalent(int64_t value);

 private:
  std::array<std::atomic<uint64_t>, kCountsLen> counts_{};
  std::atomic<uint64_t> total_{0};
};

class LatencyMonitor {
 public:
  static constexpr size_t kSamples = 160;  // LATENCY_TS_LEN
  struct Sample {
    int64_t time = 0;  // Unix seconds; 0: unused
    uint32_t latency_ms = 0;
  };
  struct Series {
    int idx = 0;  // next sample slot
    uint32_t max = 0;
    std::array<Sample, kSamples> samples{};
  };

  // Thread-safe.
  void add(const std::string& event, uint32_t latency_ms, int64_t now_s);
  // Events reset (all when `events` is empty).
  size_t reset(const std::vector<std::string>& events);
  std::map<std::string, Series> snapshot();
  bool empty();

 private:
  std::mutex mu_;
  std::map<std::string, Series> events_;
};

// LATENCY GRAPH's text for one event (Redis's latencyCommandGenSparkeline).
std::string latency_graph(const std::string& event, const LatencyMonitor::Series& s, int64_t now_s);
// LATENCY DOCTOR's report (Redis's createLatencyReport, for the events ringkv records).
struct LatencyDoctorInput {
  int64_t threshold_ms;
  int64_t slowlog_slower_than_us;
  int64_t slowlog_max_len;
  int hz;
  int64_t now_s;
  size_t anon_huge_pages_bytes;
};
std::string latency_doctor(const std::map<std::string, LatencyMonitor::Series>& events,
                           const LatencyDoctorInput& in);

}  // namespace ringkv::server
