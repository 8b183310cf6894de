#include "common/clock.h"

#include <cassert>
#include <ctime>

namespace ringkv {

Micros SystemClock::now_us() const {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

HybridClock::HybridClock(const Clock& clock, uint32_t node) : clock_(clock), node_(node) {
  assert(node <= kMaxNode);
}

void HybridClock::set_node(uint32_t node) {
  assert(node <= kMaxNode);
  node_.store(node, std::memory_order_relaxed);
}

Version HybridClock::next(Version above) {
  constexpr uint64_t kTick = uint64_t{1} << kNodeBits;
  constexpr uint64_t kTimeMask = ~uint64_t{kMaxNode};
  Millis ms = clock_.now_ms() - kEpochMs;
  uint64_t physical = ms > 0 ? static_cast<uint64_t>(ms) << (kNodeBits + kCounterBits) : 0;
  uint64_t floor = (above & kTimeMask) + kTick;
  uint64_t cur = last_.load(std::memory_order_relaxed);
  uint64_t cand;
  do {
    cand = cur + kTick;
    if (cand < physical) cand = physical;
    if (cand < floor) cand = floor;
  } while (!last_.compare_exchange_weak(cur, cand, std::memory_order_relaxed));
  return cand | node_.load(std::memory_order_relaxed);
}

void HybridClock::observe(Version v) {
  uint64_t t = v & ~uint64_t{kMaxNode};
  uint64_t cur = last_.load(std::memory_order_relaxed);
  while (cur < t && !last_.compare_exchange_weak(cur, t, std::memory_order_relaxed)) {
  }
}

}  // namespace ringkv
