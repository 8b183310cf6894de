// The in-memory engine: a thread-safe map from byte keys to byte values with expiry, versions,
// LRU/LFU data, memory accounting and eviction. It knows nothing of sockets or commands.
//
// The store is split into lock stripes by token (the top bits choose the stripe). Every
// operation on a key runs under that key's stripe lock for as short a time as it takes, and
// never across I/O. Each stripe owns an Arena (its entries' memory) and a Table (token-ordered
// slots), so two keys on different stripes never contend.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "ringkv/token.h"
#include "store/arena.h"
#include "store/entry.h"
#include "store/table.h"

namespace ringkv::store {

enum class EvictionPolicy {
  kNoEviction,
  kAllKeysLru,
  kVolatileLru,
  kAllKeysLfu,
  kVolatileLfu,
  kAllKeysRandom,
  kVolatileRandom,
  kVolatileTtl,
};
// "allkeys-lru" ... as in redis.conf; false when the name is unknown.
bool parse_eviction_policy(std::string_view name, EvictionPolicy* out);
std::string_view eviction_policy_name(EvictionPolicy p);

struct StoreOptions {
  int stripe_bits = 8;  // 256 stripes
  // Keep a tombstone for each deletion (the cluster turns this on when other copies exist), and
  // collect tombstones this long after they were written.
  bool keep_tombstones = false;
  Millis tombstone_ttl_ms = 10 * 60 * 1000;
  EvictionPolicy policy = EvictionPolicy::kNoEviction;
  int lfu_log_factor = 10;
  int lfu_decay_time = 1;  // minutes
};

struct StoreStats {
  uint64_t expired_keys = 0;
  uint64_t evicted_keys = 0;
};

class Store;

// While installed on a thread, every change a command makes through Access on that thread is
// reported (not replication input, expiry or eviction). The cluster uses it to learn what a
// command modified, so it can replicate exactly that.
struct ChangeObserver {
  void (*note)(void* ctx, std::string_view key, Token token);
  void* ctx;
};
// Returns the previous observer (restore it afterwards).
ChangeObserver* set_thread_change_observer(ChangeObserver* observer);

// The key a command holds while its stripe is locked; see Store::access(). Valid only inside
// the callback. "Found" means a live entry: expired entries are removed before the callback
// sees them, and tombstones read as absent.
class Access {
 public:
  bool found() const { return found_; }
  // REQUIRES: found().
  std::string_view value() const { return view_.value(); }
  Millis expire_at() const { return view_.expire_at(); }
  uint32_t lru() const { return view_.lru(); }
  // The version of the live entry or of its tombstone; 0 when the key has neither.
  Version version() const { return exists_ ? view_.version() : 0; }

  // Records a read for LRU/LFU.
  void touch();
  // REQUIRES: found(). Gives the value the LRU/LFU data of a value just created (RESTORE
  // replaces a key, it does not write it), then applies RESTORE's IDLETIME and FREQ as Redis's
  // objectSetLRUOrLFU does: under an LFU policy the counter `freq` (0-255) when >= 0, under an
  // LRU one the idle time `idle_seconds` when >= 0.
  void set_access_data(int freq, int64_t idle_seconds);

  // Creates or replaces the value; `expire_at` < 0 means no expiry. Returns the new version.
  Version set(std::string_view value, Millis expire_at);
  // Makes room for a value of `len` bytes and returns where to write it. The first
  // min(len, old length) bytes hold the old value (for APPEND and SETRANGE); the rest is
  // uninitialised. Call commit() after writing.
  char* prepare(size_t len, Millis expire_at);
  Version commit();
  // REQUIRES: found(). Changes only the expiry.
  Version set_expire(Millis expire_at);
  // REQUIRES: found(). The value's encoding flags (kEncodingRaw, kEncodingNoInt; see entry.h),
  // set after the write that produced it. No version change, no notification.
  void set_encoding(uint8_t bits);
  uint8_t encoding() const {
    return found_ ? static_cast<uint8_t>(view_.flags() & kEncodingMask) : 0;
  }
  // REQUIRES: found(). Deletes the key (leaving a tombstone when the store keeps them).
  Version erase();

  // The entry as stored (for replication and MIGRATE-style copies). REQUIRES: found().
  const EntryView& entry() const { return view_; }

 private:
  friend class Store;
  Access(Store& store, void* stripe, std::string_view key, Token token, Millis now);
  void reload();

  Store& store_;
  void* stripe_;  // Store::Stripe
  std::string_view key_;
  Token token_;
  Millis now_;
  Table::Probe probe_{0, false};
  bool exists_ = false;       // an entry (live or tombstone) is in the table
  bool found_ = false;        // a live entry
  Version prev_version_ = 0;  // of the entry being replaced (prepare -> commit)
  EntryView view_;
};

class Store {
 public:
  Store(StoreOptions options, const Clock& clock, HybridClock& hlc);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs f(Access&) with the key's stripe locked and returns what f returns. f must not block,
  // do I/O, or access another key of this store.
  template <class F>
  decltype(auto) access(std::string_view key, Token token, Millis now, F&& f);

  // Applies an entry copied from another node (replication, migration, hint, repair): it is kept
  // only if its version is higher than what is stored here (live or tombstone). Returns whether
  // it was applied.
  bool apply(std::string_view key, Token token, std::string_view value, Millis expire_at,
             Version version, bool tombstone, Millis now);

  // ---- whole-store operations (each stripe is locked in turn, never two at once)

  size_t size() const;           // live keys (tombstones excluded)
  size_t volatile_size() const;  // live keys with an expiry
  size_t tombstone_count() const;
  size_t memory_used() const { return used_.load(std::memory_order_relaxed); }
  StoreStats stats() const;
  void reset_stats();

  void clear();

  // Calls f(entry) with the key's entry as stored, tombstones and expired entries included,
  // without expiring or touching it. False (f not called) when the key has no entry at all.
  template <class F>
  bool peek(std::string_view key, Token token, F&& f) const;

  // Visits live entries with token >= cursor in token order, at most `count` of them (more only
  // when several share one token), and returns the token to continue from, or 0 when the end of
  // the token space was reached. Entries present for a whole iteration are visited exactly once.
  using Visitor = std::function<void(const EntryView&)>;
  Token scan(Token cursor, size_t count, Millis now, const Visitor& visit) const;
  // Visits every live entry with first <= token <= last, up to `limit`; returns the token to
  // resume from (or `last + 1`, wrapping to 0, when the range is done).
  Token scan_range(Token first, Token last, size_t limit, Millis now, bool include_tombstones,
                   const Visitor& visit) const;
  // Deletes every entry (live or tombstone) in [first, last], without leaving tombstones.
  size_t drop_range(Token first, Token last);

  // A random live key; false when the store is empty.
  bool random_key(Millis now, std::string* out);

  // One bounded step of active expiry: looks at up to `budget` volatile entries, removes the
  // expired ones, and collects old tombstones. Returns how many keys expired.
  size_t active_expire(Millis now, size_t budget);

  // Evicts keys by the configured policy until memory_used() <= limit. Returns false when it
  // cannot get there (noeviction, or nothing evictable).
  bool evict_to(size_t limit, Millis now, int samples);

  void set_policy(EvictionPolicy p) { options_.policy = p; }
  EvictionPolicy policy() const { return options_.policy; }
  void set_keep_tombstones(bool keep) { options_.keep_tombstones = keep; }
  bool keep_tombstones() const { return options_.keep_tombstones; }
  void set_lfu(int log_factor, int decay_time) {
    options_.lfu_log_factor = log_factor;
    options_.lfu_decay_time = decay_time;
  }
  int stripe_bits() const { return options_.stripe_bits; }

  // LRU clock in seconds, 24 bits, as Redis's LRU_CLOCK().
  static uint32_t lru_clock(Millis now) { return static_cast<uint32_t>(now / 1000) & 0xffffff; }
  // Idle time in ms of an entry with this LRU field (OBJECT IDLETIME).
  static Millis idle_ms(uint32_t lru, Millis now);
  // The LFU counter after decay (OBJECT FREQ).
  uint8_t lfu_counter(uint32_t lru, Millis now) const;
  bool lfu_mode() const {
    return options_.policy == EvictionPolicy::kAllKeysLfu ||
           options_.policy == EvictionPolicy::kVolatileLfu;
  }

  // A called-back hook for every change (WATCH support): token and key of the modified entry.
  // Called under the stripe lock: it must be quick and must not touch the store.
  using ModifyHook = std::function<void(std::string_view key)>;
  void set_modify_hook(ModifyHook hook) { modify_hook_ = std::move(hook); }
  // Turns the hook on or off cheaply (the hook runs only while someone WATCHes).
  void set_modify_hook_enabled(bool on) { hook_enabled_.store(on, std::memory_order_relaxed); }

 private:
  friend class Access;
  struct Stripe {
    explicit Stripe(int shift) : table(shift) {}
    mutable std::mutex mu;
    Table table;
    Arena arena;
    size_t volatile_count = 0;
    size_t tombstones = 0;
    size_t expire_cursor = 0;
    uint64_t expired = 0;
    uint64_t evicted = 0;
  };
  Stripe& stripe_of(Token token) { return *stripes_[token >> shift_]; }

  // Entry memory, with the global counter kept in step.
  char* alloc_entry(Stripe& s, size_t size);
  void free_entry(Stripe& s, char* p, size_t size);
  // Removes the entry at `pos` without a tombstone.
  void remove_at(Stripe& s, size_t pos);
  // Turns the entry at `pos` into a tombstone with `version` (or removes it when tombstones
  // are off).
  void delete_at(Stripe& s, size_t pos, Version version);
  void insert_entry(Stripe& s, Token token, std::string_view key, char* entry, bool vol);
  void note_table_resize(Stripe& s, size_t before);
  void notify_modified(std::string_view key) {
    if (hook_enabled_.load(std::memory_order_relaxed) && modify_hook_) modify_hook_(key);
  }
  static void note_change(std::string_view key, Token token);
  uint32_t initial_lru(Millis now) const;
  uint32_t updated_lru(uint32_t lru, Millis now) const;
  bool entry_expired(const EntryView& e, Millis now) const {
    return e.has_expire() && e.expire_at() <= now;
  }

  StoreOptions options_;
  const Clock& clock_;
  HybridClock& hlc_;
  int shift_;
  std::vector<std::unique_ptr<Stripe>> stripes_;
  std::atomic<size_t> used_{0};
  std::atomic<uint64_t> rng_{0x9e3779b97f4a7c15ULL};
  size_t expire_stripe_cursor_ = 0;  // guarded by expire_mu_
  std::mutex expire_mu_;
  ModifyHook modify_hook_;
  std::atomic<bool> hook_enabled_{false};

  struct PoolEntry {
    std::string key;
    Token token = 0;
    uint64_t score = 0;
  };
  std::mutex evict_mu_;
  std::vector<PoolEntry> pool_;  // guarded by evict_mu_
};

template <class F>
decltype(auto) Store::access(std::string_view key, Token token, Millis now, F&& f) {
  Stripe& s = stripe_of(token);
  std::lock_guard<std::mutex> lock(s.mu);
  Access a(*this, &s, key, token, now);
  return f(a);
}

template <class F>
bool Store::peek(std::string_view key, Token token, F&& f) const {
  const Stripe& s = *stripes_[token >> shift_];
  std::lock_guard<std::mutex> lock(s.mu);
  Table::Probe p = s.table.find(token, key);
  if (!p.found) return false;
  f(EntryView(Table::slot_entry(s.table.slot(p.pos))));
  return true;
}

}  // namespace ringkv::store
