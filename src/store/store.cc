#include "store/store.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <random>

#include "common/strings.h"

namespace ringkv::store {

namespace {

constexpr int kLfuInitVal = 5;
constexpr size_t kPoolSize = 16;

uint64_t thread_random() {
  thread_local uint64_t state = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ 0x9e3779b97f4a7c15ULL;
  }();
  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

uint32_t lfu_minutes(Millis now) { return static_cast<uint32_t>(now / 60000) & 0xffff; }

}  // namespace

// ---------------------------------------------------------------- change observers

namespace {
thread_local ChangeObserver* t_observer = nullptr;
}

ChangeObserver* set_thread_change_observer(ChangeObserver* observer) {
  ChangeObserver* prev = t_observer;
  t_observer = observer;
  return prev;
}

void Store::note_change(std::string_view key, Token token) {
  if (t_observer != nullptr) t_observer->note(t_observer->ctx, key, token);
}

// ---------------------------------------------------------------- policies

bool parse_eviction_policy(std::string_view name, EvictionPolicy* out) {
  static const std::pair<std::string_view, EvictionPolicy> kNames[] = {
      {"noeviction", EvictionPolicy::kNoEviction},
      {"allkeys-lru", EvictionPolicy::kAllKeysLru},
      {"volatile-lru", EvictionPolicy::kVolatileLru},
      {"allkeys-lfu", EvictionPolicy::kAllKeysLfu},
      {"volatile-lfu", EvictionPolicy::kVolatileLfu},
      {"allkeys-random", EvictionPolicy::kAllKeysRandom},
      {"volatile-random", EvictionPolicy::kVolatileRandom},
      {"volatile-ttl", EvictionPolicy::kVolatileTtl},
  };
  for (const auto& [n, p] : kNames) {
    if (equals_nocase(n, name)) {
      *out = p;
      return true;
    }
  }
  return false;
}

std::string_view eviction_policy_name(EvictionPolicy p) {
  switch (p) {
    case EvictionPolicy::kNoEviction:
      return "noeviction";
    case EvictionPolicy::kAllKeysLru:
      return "allkeys-lru";
    case EvictionPolicy::kVolatileLru:
      return "volatile-lru";
    case EvictionPolicy::kAllKeysLfu:
      return "allkeys-lfu";
    case EvictionPolicy::kVolatileLfu:
      return "volatile-lfu";
    case EvictionPolicy::kAllKeysRandom:
      return "allkeys-random";
    case EvictionPolicy::kVolatileRandom:
      return "volatile-random";
    case EvictionPolicy::kVolatileTtl:
      return "volatile-ttl";
  }
  return "noeviction";
}

// ---------------------------------------------------------------- construction

Store::Store(StoreOptions options, const Clock& clock, HybridClock& hlc)
    : options_(options), clock_(clock), hlc_(hlc) {
  assert(options_.stripe_bits >= 1 && options_.stripe_bits <= 16);
  shift_ = 64 - options_.stripe_bits;
  size_t n = size_t{1} << options_.stripe_bits;
  stripes_.reserve(n);
  for (size_t i = 0; i < n; ++i) stripes_.push_back(std::make_unique<Stripe>(options_.stripe_bits));
  used_.store(n * sizeof(Stripe), std::memory_order_relaxed);
}

Store::~Store() { clear(); }

// ---------------------------------------------------------------- memory

char* Store::alloc_entry(Stripe& s, size_t size) {
  used_.fetch_add(Arena::block_size(size), std::memory_order_relaxed);
  return static_cast<char*>(s.arena.allocate(size));
}

void Store::free_entry(Stripe& s, char* p, size_t size) {
  used_.fetch_sub(Arena::block_size(size), std::memory_order_relaxed);
  s.arena.free(p, size);
}

void Store::note_table_resize(Stripe& s, size_t before) {
  size_t after = s.table.memory_bytes();
  if (after >= before)
    used_.fetch_add(after - before, std::memory_order_relaxed);
  else
    used_.fetch_sub(before - after, std::memory_order_relaxed);
}

void Store::insert_entry(Stripe& s, Token token, std::string_view key, char* entry, bool vol) {
  if (s.table.needs_grow()) {
    size_t before = s.table.memory_bytes();
    s.table.grow();
    note_table_resize(s, before);
  }
  for (;;) {
    Table::Probe p = s.table.find(token, key);
    assert(!p.found);
    if (s.table.insert_at(p.pos, entry, token, vol)) return;
    size_t before = s.table.memory_bytes();
    s.table.grow();
    note_table_resize(s, before);
  }
}

void Store::remove_at(Stripe& s, size_t pos) {
  uint64_t slot = s.table.slot(pos);
  char* p = Table::slot_entry(slot);
  EntryView e(p);
  if (e.tombstone())
    --s.tombstones;
  else if (e.has_expire())
    --s.volatile_count;
  free_entry(s, p, e.size());
  s.table.erase_at(pos);
  if (s.table.should_shrink()) {
    size_t before = s.table.memory_bytes();
    s.table.resize_for(s.table.size());
    note_table_resize(s, before);
  }
}

void Store::delete_at(Stripe& s, size_t pos, Version version) {
  if (!options_.keep_tombstones) {
    remove_at(s, pos);
    return;
  }
  uint64_t slot = s.table.slot(pos);
  char* old = Table::slot_entry(slot);
  EntryView e(old);
  if (e.has_expire() && !e.tombstone()) --s.volatile_count;
  if (!e.tombstone()) ++s.tombstones;
  std::string_view key = e.key();
  Token token = e.token();
  size_t need = EntryView::size_for(key.size(), 0, false);
  char* fresh = alloc_entry(s, need);
  write_entry(fresh, token, version, 0, kTombstone, key, nullptr, 0, -1);
  free_entry(s, old, e.size());
  // Tombstones carry the sweep bit so active expiry finds and collects them.
  s.table.replace_at(pos, fresh, token, true);
}

// ---------------------------------------------------------------- LRU / LFU

uint32_t Store::initial_lru(Millis now) const {
  if (lfu_mode()) return (lfu_minutes(now) << 8) | kLfuInitVal;
  return lru_clock(now);
}

uint8_t Store::lfu_counter(uint32_t lru, Millis now) const {
  uint32_t ldt = (lru >> 8) & 0xffff;
  uint32_t counter = lru & 0xff;
  uint32_t nowm = lfu_minutes(now);
  uint32_t elapsed = nowm >= ldt ? nowm - ldt : 65535 - ldt + nowm;
  uint32_t periods = options_.lfu_decay_time ? elapsed / options_.lfu_decay_time : 0;
  if (periods) counter = periods > counter ? 0 : counter - periods;
  return static_cast<uint8_t>(counter);
}

uint32_t Store::updated_lru(uint32_t lru, Millis now) const {
  if (!lfu_mode()) return lru_clock(now);
  uint32_t counter = lfu_counter(lru, now);
  if (counter < 255) {
    double r = static_cast<double>(thread_random() >> 11) / static_cast<double>(1ull << 53);
    double base = counter > kLfuInitVal ? counter - kLfuInitVal : 0;
    double p = 1.0 / (base * options_.lfu_log_factor + 1);
    if (r < p) ++counter;
  }
  return (lfu_minutes(now) << 8) | counter;
}

Millis Store::idle_ms(uint32_t lru, Millis now) {
  uint32_t clock = lru_clock(now);
  uint64_t secs = clock >= lru ? clock - lru : (0xffffff - lru) + clock;
  return static_cast<Millis>(secs) * 1000;
}

// ---------------------------------------------------------------- access

Access::Access(Store& store, void* stripe, std::string_view key, Token token, Millis now)
    : store_(store), stripe_(stripe), key_(key), token_(token), now_(now) {
  reload();
  if (found_ && store_.entry_expired(view_, now_)) {
    auto& s = *static_cast<Store::Stripe*>(stripe_);
    store_.delete_at(s, probe_.pos, view_.version());
    ++s.expired;
    store_.notify_modified(key_);
    reload();
  }
}

void Access::reload() {
  auto& s = *static_cast<Store::Stripe*>(stripe_);
  probe_ = s.table.find(token_, key_);
  exists_ = probe_.found;
  found_ = false;
  if (exists_) {
    view_ = EntryView(Table::slot_entry(s.table.slot(probe_.pos)));
    found_ = !view_.tombstone();
  } else {
    view_ = EntryView();
  }
}

void Access::touch() {
  if (!found_) return;
  uint32_t lru = store_.updated_lru(view_.lru(), now_);
  set_entry_meta(const_cast<char*>(view_.data()), lru, view_.flags());
  view_ = EntryView(view_.data());
}

void Access::set_access_data(int freq, int64_t idle_seconds) {
  assert(found_);
  uint32_t lru = store_.initial_lru(now_);
  if (store_.lfu_mode() && freq >= 0) {
    lru = (lfu_minutes(now_) << 8) | static_cast<uint32_t>(freq & 0xff);
  } else if (!store_.lfu_mode() && idle_seconds >= 0) {
    // Redis's arithmetic, wrap-arounds included, so OBJECT IDLETIME reads the same: the idle
    // time scaled by 1000/1000 (in 64 bits), taken from the 24-bit clock, plus LRU_CLOCK_MAX
    // (2^24 - 1) when negative, kept to 24 bits.
    constexpr int64_t kClockMax = 0xffffff;
    const int64_t idle = static_cast<int64_t>(static_cast<uint64_t>(idle_seconds) * 1000) / 1000;
    int64_t at = static_cast<int64_t>(Store::lru_clock(now_)) - idle;
    if (at < 0) at += kClockMax;
    lru = static_cast<uint32_t>(static_cast<uint64_t>(at) & kClockMax);
  }
  set_entry_meta(const_cast<char*>(view_.data()), lru, view_.flags());
  view_ = EntryView(view_.data());
}

Version Access::set(std::string_view value, Millis expire_at) {
  std::string copy;
  if (exists_ && value.data() >= view_.data() && value.data() < view_.data() + view_.size()) {
    copy.assign(value);  // the new value lives in the entry being replaced
    value = copy;
  }
  char* dst = prepare(value.size(), expire_at);
  if (!value.empty()) std::memcpy(dst, value.data(), value.size());
  return commit();
}

char* Access::prepare(size_t len, Millis expire_at) {
  auto& s = *static_cast<Store::Stripe*>(stripe_);
  const bool vol = expire_at >= 0;
  const size_t need = EntryView::size_for(key_.size(), len, vol);
  const uint32_t lru = found_ ? store_.updated_lru(view_.lru(), now_) : store_.initial_lru(now_);
  const uint8_t flags = vol ? kHasExpire : 0;
  if (!exists_) {
    char* e = store_.alloc_entry(s, need);
    char* v = write_entry(e, token_, 0, lru, flags, key_, nullptr, len, expire_at);
    store_.insert_entry(s, token_, key_, e, vol);
    if (vol) ++s.volatile_count;
    probe_ = s.table.find(token_, key_);
    exists_ = true;
    view_ = EntryView(e);
    prev_version_ = 0;
    return v;
  }
  char* old = const_cast<char*>(view_.data());
  const size_t old_size = view_.size();
  const bool was_tomb = view_.tombstone();
  const bool was_vol = view_.has_expire() && !was_tomb;
  const size_t keep = found_ ? std::min(len, view_.value().size()) : 0;
  prev_version_ = view_.version();
  if (was_tomb) --s.tombstones;
  if (was_vol) --s.volatile_count;
  if (vol) ++s.volatile_count;
  char* e;
  char* v;
  if (Arena::is_small(need) && Arena::is_small(old_size) &&
      Arena::block_size(need) == Arena::block_size(old_size)) {
    // Same block: move the kept prefix to its new offset, then rewrite header and key.
    e = old;
    size_t new_voff = need - len;
    size_t old_voff = old_size - view_.value().size();
    if (keep > 0 && new_voff != old_voff) std::memmove(e + new_voff, e + old_voff, keep);
    v = write_entry(e, token_, 0, lru, flags, key_, nullptr, len, expire_at);
  } else {
    e = store_.alloc_entry(s, need);
    v = write_entry(e, token_, 0, lru, flags, key_, nullptr, len, expire_at);
    if (keep > 0) std::memcpy(v, view_.value().data(), keep);
    store_.free_entry(s, old, old_size);
  }
  s.table.replace_at(probe_.pos, e, token_, vol);
  view_ = EntryView(e);
  return v;
}

Version Access::commit() {
  Version v = store_.hlc_.next(prev_version_);
  set_entry_version(const_cast<char*>(view_.data()), v);
  view_ = EntryView(view_.data());
  found_ = true;
  store_.notify_modified(key_);
  Store::note_change(key_, token_);
  return v;
}

void Access::set_encoding(uint8_t bits) {
  assert(found_);
  const uint8_t flags =
      static_cast<uint8_t>((view_.flags() & ~kEncodingMask) | (bits & kEncodingMask));
  set_entry_meta(const_cast<char*>(view_.data()), view_.lru(), flags);
  view_ = EntryView(view_.data());
}

Version Access::set_expire(Millis expire_at) {
  assert(found_);
  const bool vol = expire_at >= 0;
  if (vol == view_.has_expire() && vol) {
    auto& s = *static_cast<Store::Stripe*>(stripe_);
    (void)s;
    // Same layout: rewrite the expiry in place.
    std::string_view v = view_.value();
    char* e = const_cast<char*>(view_.data());
    prev_version_ = view_.version();
    write_entry(e, token_, 0, view_.lru(), view_.flags(), key_, v.data(), v.size(), expire_at);
    view_ = EntryView(e);
    return commit();
  }
  const uint8_t enc = encoding();  // a TTL change keeps the value's encoding, as in Redis
  prepare(view_.value().size(), expire_at);
  Version v = commit();
  if (enc) set_encoding(enc);
  return v;
}

Version Access::erase() {
  assert(found_);
  auto& s = *static_cast<Store::Stripe*>(stripe_);
  Version v = store_.hlc_.next(view_.version());
  store_.delete_at(s, probe_.pos, v);
  store_.notify_modified(key_);
  Store::note_change(key_, token_);
  reload();
  return v;
}

// ---------------------------------------------------------------- replication input

bool Store::apply(std::string_view key, Token token, std::string_view value, Millis expire_at,
                  Version version, bool tombstone, Millis now) {
  Stripe& s = stripe_of(token);
  std::lock_guard<std::mutex> lock(s.mu);
  Table::Probe p = s.table.find(token, key);
  if (p.found) {
    EntryView e(Table::slot_entry(s.table.slot(p.pos)));
    if (e.version() >= version) return false;
  }
  hlc_.observe(version);
  if (!tombstone && expire_at >= 0 && expire_at <= now) tombstone = true;  // arrived expired
  if (tombstone && !options_.keep_tombstones) {
    if (p.found) remove_at(s, p.pos);
    notify_modified(key);
    return true;
  }
  bool vol = tombstone || expire_at >= 0;
  size_t need = tombstone ? EntryView::size_for(key.size(), 0, false)
                          : EntryView::size_for(key.size(), value.size(), expire_at >= 0);
  char* e = alloc_entry(s, need);
  if (tombstone)
    write_entry(e, token, version, 0, kTombstone, key, nullptr, 0, -1);
  else
    write_entry(e, token, version, initial_lru(now), 0, key, value.data(), value.size(), expire_at);
  if (p.found) {
    char* old = Table::slot_entry(s.table.slot(p.pos));
    EntryView oe(old);
    if (oe.tombstone())
      --s.tombstones;
    else if (oe.has_expire())
      --s.volatile_count;
    free_entry(s, old, oe.size());
    s.table.replace_at(p.pos, e, token, vol);
  } else {
    insert_entry(s, token, key, e, vol);
  }
  if (tombstone)
    ++s.tombstones;
  else if (expire_at >= 0)
    ++s.volatile_count;
  notify_modified(key);
  return true;
}

// ---------------------------------------------------------------- whole store

size_t Store::size() const {
  size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->table.size() - s->tombstones;
  }
  return n;
}

size_t Store::volatile_size() const {
  size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->volatile_count;
  }
  return n;
}

size_t Store::tombstone_count() const {
  size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->tombstones;
  }
  return n;
}

StoreStats Store::stats() const {
  StoreStats st;
  for (const auto& s : stripes_) {
    std::lock_guard<std::mutex> lock(s->mu);
    st.expired_keys += s->expired;
    st.evicted_keys += s->evicted;
  }
  return st;
}

void Store::reset_stats() {
  for (auto& s : stripes_) {
    std::lock_guard<std::mutex> lock(s->mu);
    s->expired = s->evicted = 0;
  }
}

void Store::clear() {
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    std::lock_guard<std::mutex> lock(s.mu);
    size_t before = s.table.memory_bytes();
    for (size_t i = 0; i < s.table.slot_count(); ++i) {
      uint64_t slot = s.table.slot(i);
      if (slot == 0) continue;
      char* p = Table::slot_entry(slot);
      size_t size = EntryView(p).size();
      if (!Arena::is_small(size))
        free_entry(s, p, size);  // small blocks go with their pages
      else
        used_.fetch_sub(Arena::block_size(size), std::memory_order_relaxed);
    }
    s.arena.clear();
    s.table.clear();
    note_table_resize(s, before);
    s.volatile_count = 0;
    s.tombstones = 0;
    s.expire_cursor = 0;
  }
}

Token Store::scan(Token cursor, size_t count, Millis now, const Visitor& visit) const {
  if (count == 0) count = 1;
  size_t visited = 0;
  Token cur = cursor;
  for (;;) {
    size_t si = cur >> shift_;
    const Stripe& s = *stripes_[si];
    {
      std::lock_guard<std::mutex> lock(s.mu);
      bool have_last = false;
      Token last = 0;
      for (size_t i = s.table.lower_bound(cur); i < s.table.slot_count(); ++i) {
        uint64_t slot = s.table.slot(i);
        if (slot == 0) continue;
        EntryView e(Table::slot_entry(slot));
        if (visited >= count && (!have_last || e.token() != last)) return e.token();
        if (e.tombstone() || entry_expired(e, now)) continue;
        visit(e);
        ++visited;
        have_last = true;
        last = e.token();
      }
    }
    if (si + 1 == stripes_.size()) return 0;
    cur = static_cast<Token>(si + 1) << shift_;
    if (visited >= count) return cur;
  }
}

Token Store::scan_range(Token first, Token last, size_t limit, Millis now, bool include_tombstones,
                        const Visitor& visit) const {
  size_t visited = 0;
  Token cur = first;
  for (;;) {
    size_t si = cur >> shift_;
    const Stripe& s = *stripes_[si];
    {
      std::lock_guard<std::mutex> lock(s.mu);
      bool have_prev = false;
      Token prev = 0;
      for (size_t i = s.table.lower_bound(cur); i < s.table.slot_count(); ++i) {
        uint64_t slot = s.table.slot(i);
        if (slot == 0) continue;
        EntryView e(Table::slot_entry(slot));
        if (e.token() > last) return last + 1;
        if (visited >= limit && (!have_prev || e.token() != prev)) return e.token();
        have_prev = true;
        prev = e.token();
        if (!include_tombstones && (e.tombstone() || entry_expired(e, now))) continue;
        visit(e);
        ++visited;
      }
    }
    Token stripe_last =
        si + 1 == stripes_.size() ? ~Token{0} : (static_cast<Token>(si + 1) << shift_) - 1;
    if (stripe_last >= last) return last + 1;
    cur = stripe_last + 1;
    if (visited >= limit) return cur;
  }
}

size_t Store::drop_range(Token first, Token last) {
  size_t dropped = 0;
  size_t s_first = first >> shift_, s_last = last >> shift_;
  for (size_t si = s_first; si <= s_last; ++si) {
    Stripe& s = *stripes_[si];
    std::lock_guard<std::mutex> lock(s.mu);
    // The search must start from a token of this stripe: the table orders tokens with the
    // stripe bits shifted out.
    const Token stripe_first = static_cast<Token>(si) << shift_;
    const Token lo = std::max(first, stripe_first);
    size_t i = s.table.lower_bound(lo);
    while (i < s.table.slot_count()) {
      uint64_t slot = s.table.slot(i);
      if (slot == 0) {
        ++i;
        continue;
      }
      EntryView e(Table::slot_entry(slot));
      if (e.token() > last) break;
      if (e.token() < first) {
        ++i;
        continue;
      }
      notify_modified(e.key());
      remove_at(s, i);  // the next entry may now sit at i
      ++dropped;
      if (s.table.slot_count() == 0) break;
      // remove_at may have shrunk the table: find our place again.
      i = s.table.lower_bound(lo);
    }
  }
  return dropped;
}

bool Store::random_key(Millis now, std::string* out) {
  const size_t n = stripes_.size();
  for (int attempt = 0; attempt < 64; ++attempt) {
    Stripe& s = *stripes_[thread_random() % n];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.table.size() == s.tombstones) continue;
    size_t slots = s.table.slot_count();
    size_t start = thread_random() % slots;
    for (size_t k = 0; k < slots; ++k) {
      uint64_t slot = s.table.slot((start + k) % slots);
      if (slot == 0) continue;
      EntryView e(Table::slot_entry(slot));
      if (e.tombstone() || entry_expired(e, now)) continue;
      out->assign(e.key());
      return true;
    }
  }
  // Sparse store: walk every stripe once.
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    std::lock_guard<std::mutex> lock(s.mu);
    for (size_t i = 0; i < s.table.slot_count(); ++i) {
      uint64_t slot = s.table.slot(i);
      if (slot == 0) continue;
      EntryView e(Table::slot_entry(slot));
      if (e.tombstone() || entry_expired(e, now)) continue;
      out->assign(e.key());
      return true;
    }
  }
  return false;
}

size_t Store::active_expire(Millis now, size_t budget) {
  std::lock_guard<std::mutex> guard(expire_mu_);
  size_t examined = 0, slots_seen = 0, expired = 0;
  const size_t slot_budget = budget * 16;
  for (size_t visited = 0;
       visited < stripes_.size() && examined < budget && slots_seen < slot_budget; ++visited) {
    Stripe& s = *stripes_[expire_stripe_cursor_];
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.volatile_count == 0 && s.tombstones == 0) {
        s.expire_cursor = 0;
      } else {
        size_t i = s.expire_cursor;
        while (i < s.table.slot_count() && examined < budget && slots_seen < slot_budget) {
          ++slots_seen;
          uint64_t slot = s.table.slot(i);
          if (slot == 0 || !Table::slot_volatile(slot)) {
            ++i;
            continue;
          }
          ++examined;
          EntryView e(Table::slot_entry(slot));
          if (e.tombstone()) {
            if (HybridClock::physical_ms(e.version()) + options_.tombstone_ttl_ms <= now) {
              remove_at(s, i);
              if (i >= s.table.slot_count()) break;
              continue;
            }
          } else if (entry_expired(e, now)) {
            std::string key(e.key());
            delete_at(s, i, e.version());
            ++s.expired;
            ++expired;
            notify_modified(key);
            if (!options_.keep_tombstones) {
              if (i >= s.table.slot_count()) break;
              continue;
            }
          }
          ++i;
        }
        if (i >= s.table.slot_count()) {
          s.expire_cursor = 0;
        } else {
          s.expire_cursor = i;
          break;  // budget spent inside this stripe: resume here next time
        }
      }
    }
    expire_stripe_cursor_ = (expire_stripe_cursor_ + 1) % stripes_.size();
  }
  return expired;
}

// ---------------------------------------------------------------- eviction

bool Store::evict_to(size_t limit, Millis now, int samples) {
  if (memory_used() <= limit) return true;
  const EvictionPolicy policy = options_.policy;
  if (policy == EvictionPolicy::kNoEviction) return false;
  const bool volatile_only =
      policy == EvictionPolicy::kVolatileLru || policy == EvictionPolicy::kVolatileLfu ||
      policy == EvictionPolicy::kVolatileRandom || policy == EvictionPolicy::kVolatileTtl;
  const bool random =
      policy == EvictionPolicy::kAllKeysRandom || policy == EvictionPolicy::kVolatileRandom;
  if (samples < 1) samples = 1;
  std::lock_guard<std::mutex> guard(evict_mu_);
  const size_t n = stripes_.size();
  int fruitless = 0;
  while (memory_used() > limit) {
    // Sample candidates into the pool (or, for random policies, take the first one found).
    bool sampled_any = false;
    for (int k = 0; k < samples; ++k) {
      // From a random stripe, the first one that has candidates (bounded by the stripe count).
      size_t start_stripe = thread_random() % n;
      Stripe* chosen = nullptr;
      std::unique_lock<std::mutex> lock;
      for (size_t d = 0; d < n && chosen == nullptr; ++d) {
        Stripe& c = *stripes_[(start_stripe + d) % n];
        std::unique_lock<std::mutex> l(c.mu);
        size_t live = c.table.size() - c.tombstones;
        if (live == 0 || (volatile_only && c.volatile_count == 0)) continue;
        chosen = &c;
        lock = std::move(l);
      }
      if (chosen == nullptr) break;
      Stripe& s = *chosen;
      size_t slots = s.table.slot_count();
      size_t start = thread_random() % slots;
      for (size_t step = 0; step < slots; ++step) {
        uint64_t slot = s.table.slot((start + step) % slots);
        if (slot == 0) continue;
        if (volatile_only && !Table::slot_volatile(slot)) continue;
        EntryView e(Table::slot_entry(slot));
        if (e.tombstone()) continue;
        uint64_t score;
        switch (policy) {
          case EvictionPolicy::kAllKeysLru:
          case EvictionPolicy::kVolatileLru:
            score = static_cast<uint64_t>(idle_ms(e.lru(), now));
            break;
          case EvictionPolicy::kAllKeysLfu:
          case EvictionPolicy::kVolatileLfu:
            score = 255 - lfu_counter(e.lru(), now);
            break;
          case EvictionPolicy::kVolatileTtl:
            score = ~static_cast<uint64_t>(e.expire_at());
            break;
          default:
            score = thread_random();
            break;
        }
        sampled_any = true;
        // Keep the pool sorted by score, best (highest) last; skip duplicates.
        bool dup = false;
        for (const PoolEntry& pe : pool_) {
          if (pe.token == e.token() && pe.key == e.key()) {
            dup = true;
            break;
          }
        }
        if (!dup && (pool_.size() < kPoolSize || score > pool_.front().score)) {
          PoolEntry pe{std::string(e.key()), e.token(), score};
          auto it = std::upper_bound(pool_.begin(), pool_.end(), score,
                                     [](uint64_t sc, const PoolEntry& x) { return sc < x.score; });
          pool_.insert(it, std::move(pe));
          if (pool_.size() > kPoolSize) pool_.erase(pool_.begin());
        }
        break;
      }
      if (random && sampled_any) break;
    }
    // Evict the best candidate that still exists.
    bool evicted = false;
    while (!pool_.empty() && !evicted) {
      PoolEntry best = std::move(pool_.back());
      pool_.pop_back();
      Stripe& s = stripe_of(best.token);
      std::lock_guard<std::mutex> lock(s.mu);
      Table::Probe p = s.table.find(best.token, best.key);
      if (!p.found) continue;
      EntryView e(Table::slot_entry(s.table.slot(p.pos)));
      if (e.tombstone()) continue;
      if (volatile_only && !e.has_expire()) continue;
      // Each node evicts on its own. With tombstones on (cluster), the eviction is a deletion
      // with a new version, so anti-entropy spreads it instead of copying the key back.
      if (options_.keep_tombstones)
        delete_at(s, p.pos, hlc_.next(e.version()));
      else
        remove_at(s, p.pos);
      ++s.evicted;
      notify_modified(best.key);
      evicted = true;
    }
    if (!evicted) {
      if (!sampled_any && ++fruitless > 16) return false;
      if (sampled_any) fruitless = 0;
    }
  }
  return true;
}

}  // namespace ringkv::store
