#include "server/hot_cache.h"

namespace ringkv::server {

std::string_view HotCache::find(std::string_view key, uint64_t epoch, uint32_t owner, Millis now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  if (it->second.expires_ms <= now || it->second.epoch != epoch || it->second.owner != owner) {
    erase(it);
    publish();
    misses_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second.reply;
}

void HotCache::fetching(std::string_view key) {
  auto it = fetching_.find(key);
  if (it == fetching_.end()) it = fetching_.emplace(std::string(key), Fetch{}).first;
  ++it->second.count;
}

void HotCache::fetched(std::string_view key, std::string_view reply, uint64_t epoch, uint32_t owner,
                       Millis now, Millis ttl_ms, size_t capacity) {
  auto f = fetching_.find(key);
  if (f == fetching_.end()) return;  // no fetching() before it: nothing to pair with
  const bool written = f->second.written;
  if (--f->second.count == 0) fetching_.erase(f);
  // Only values: a missing key's reply differs between RESP2 and RESP3, and errors are not
  // the key's value.
  if (written || ttl_ms <= 0 || reply.empty() || reply[0] != '$' || reply.substr(0, 3) == "$-1")
    return;
  const size_t need = cost(key.size(), reply.size());
  if (need > capacity) return;  // larger than the whole cache
  // The oldest go first: expired ones, then as many as the new entry needs.
  while (!order_.empty()) {
    auto& [k, seq] = order_.front();
    auto it = entries_.find(k);
    const bool stale = it == entries_.end() || it->second.seq != seq;
    if (!stale && it->second.expires_ms > now && used_ + need <= capacity) break;
    if (!stale) erase(it);
    order_.pop_front();
  }
  auto it = entries_.find(key);
  if (it != entries_.end()) erase(it);
  const uint64_t seq = next_seq_++;
  it =
      entries_.emplace(std::string(key), Entry{std::string(reply), now + ttl_ms, epoch, owner, seq})
          .first;
  used_ += need;
  order_.emplace_back(it->first, seq);
  publish();
}

void HotCache::invalidate(std::string_view key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    erase(it);
    publish();
  }
  auto f = fetching_.find(key);
  if (f != fetching_.end()) f->second.written = true;
}

void HotCache::clear() {
  entries_.clear();
  order_.clear();
  // GETs under way are not cached when they return.
  for (auto& [k, f] : fetching_) f.written = true;
  used_ = 0;
  publish();
}

void HotCache::erase(std::unordered_map<std::string, Entry, Hash, std::equal_to<>>::iterator it) {
  used_ -= cost(it->first.size(), it->second.reply.size());
  entries_.erase(it);
}

void HotCache::publish() {
  keys_.store(entries_.size(), std::memory_order_relaxed);
  bytes_.store(used_, std::memory_order_relaxed);
}

}  // namespace ringkv::server
