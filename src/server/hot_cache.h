// The hot-key cache of one event loop (hot-key-cache-ms, off by default): the value of a key
// read from another node (a GET forwarded to the key's primary) is kept for that many
// milliseconds and served here, without the hop. A key read more often than once in that time
// is served from the cache; other keys pass through it.
//
// What it keeps consistent: a write through this loop (any write command, and EXEC, FLUSHALL)
// drops the keys it writes first, and a read under way when a write of its key is routed here
// is not cached, so a client always reads its own writes. A write through another node, or
// through another io-thread of this node, is seen here up to hot-key-cache-ms late. An entry
// is used only while the ring epoch and the key's primary are those it was read with.
//
// Loop thread only, except the counters (relaxed atomics, read by INFO).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"

namespace ringkv::server {

class HotCache {
 public:
  // The cached reply for key (a RESP bulk string) if fresh and read from `owner` at `epoch`;
  // else empty. Counts a hit or a miss.
  std::string_view find(std::string_view key, uint64_t epoch, uint32_t owner, Millis now);
  // A GET of key is being forwarded. Every call is followed by one fetched() of the same key.
  void fetching(std::string_view key);
  // The forwarded GET's reply (empty if it failed): cached until now + ttl_ms if it is a value
  // and no write of the key was routed here since its fetching(). At most capacity bytes are
  // kept: the oldest entries go first.
  void fetched(std::string_view key, std::string_view reply, uint64_t epoch, uint32_t owner,
               Millis now, Millis ttl_ms, size_t capacity);
  // A write of key is routed through this loop.
  void invalidate(std::string_view key);
  void clear();
  // Empties the cache if the settings changed (generation) since it last saw them.
  void settings(uint64_t generation) {
    if (generation == generation_) return;
    clear();
    generation_ = generation;
  }

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  uint64_t keys() const { return keys_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Entry {
    std::string reply;
    Millis expires_ms;
    uint64_t epoch;
    uint32_t owner;
    uint64_t seq;  // matches its record in order_
  };
  struct Fetch {
    uint32_t count = 0;  // GETs of the key under way
    bool written = false;
  };
  // Bytes an entry is charged: its key and reply, and the map's and queue's overhead.
  static size_t cost(size_t key_len, size_t reply_len) { return key_len * 2 + reply_len + 96; }
  void erase(std::unordered_map<std::string, Entry, Hash, std::equal_to<>>::iterator it);
  void publish();

  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  // Entries in the order they were cached (key, seq): a record whose seq no longer matches its
  // entry is stale and skipped.
  std::deque<std::pair<std::string, uint64_t>> order_;
  std::unordered_map<std::string, Fetch, Hash, std::equal_to<>> fetching_;
  uint64_t next_seq_ = 0;
  uint64_t generation_ = 0;
  size_t used_ = 0;
  std::atomic<uint64_t> hits_{0}, misses_{0}, keys_{0}, bytes_{0};
};

}  // namespace ringkv::server
