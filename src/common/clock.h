// Time: one injectable wall clock, and the hybrid logical clock that stamps versions.
//
// Everything that depends on time (expiry, LRU, heartbeats, versions) takes its time from a Clock,
// so tests can drive it by hand.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringkv {

using Millis = int64_t;  // milliseconds since the Unix epoch
using Micros = int64_t;  // microseconds since the Unix epoch

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Micros now_us() const = 0;
  Millis now_ms() const { return now_us() / 1000; }
};

// The real wall clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  Micros now_us() const override;
};

// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Micros start_us = 1'700'000'000'000'000) : now_(start_us) {}
  Micros now_us() const override { return now_.load(std::memory_order_relaxed); }
  void set_ms(Millis ms) { now_.store(ms * 1000, std::memory_order_relaxed); }
  void advance_ms(Millis ms) { now_.fetch_add(ms * 1000, std::memory_order_relaxed); }

 private:
  std::atomic<Micros> now_;
};

// The process-wide system clock.
const Clock& system_clock();

// A version orders the writes to one key across the cluster. Layout, most significant first:
//   42 bits  milliseconds since 2020-01-01 (good until 2159)
//   10 bits  logical counter within the millisecond
//   12 bits  ordinal of the node that issued it (assigned by the configuration service)
// Comparing two versions as integers compares (hybrid time, node): the highest version wins.
using Version = uint64_t;

class HybridClock {
 public:
  static constexpr int kNodeBits = 12;
  static constexpr int kCounterBits = 10;
  static constexpr uint32_t kMaxNode = (1u << kNodeBits) - 1;
  static constexpr Millis kEpochMs = 1'577'836'800'000;  // 2020-01-01T00:00:00Z

  // REQUIRES: node <= kMaxNode.
  HybridClock(const Clock& clock, uint32_t node);

  // A version greater than every version this clock issued or observed, and greater than
  // `above`. Thread-safe.
  Version next(Version above = 0);
  // Moves the clock past a version received from another node (the HLC receive rule), so that
  // later writes here order after it.
  void observe(Version v);

  uint32_t node() const { return node_; }
  void set_node(uint32_t node);

  static Millis physical_ms(Version v) { return static_cast<Millis>(v >> (kNodeBits + kCounterBits)) + kEpochMs; }
  static uint32_t node_of(Version v) { return static_cast<uint32_t>(v & kMaxNode); }

 private:
  const Clock& clock_;
  std::atomic<uint32_t> node_;
  std::atomic<uint64_t> last_{0};  // the last time part issued or observed (node bits zero)
};

}  // namespace ringkv
