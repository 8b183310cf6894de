// The per-stripe hash table: open addressing, kept sorted by token.
//
// A key's home slot is mulhi(local, capacity), where local is its token with the stripe bits
// shifted out. Home slots are therefore monotone in the token, and insertion keeps every run of
// occupied slots sorted by token (Robin Hood order), so the whole slot array is the stripe's
// entries in token order with gaps. That gives three things for free:
//   - a miss stops at the first larger token, not at the end of the run;
//   - iteration "from token t" starts at t's home slot, and stays correct across resizes, so SCAN
//     cursors and migration ranges are plain token positions;
//   - resizing is one sequential pass with no comparisons.
// Runs never wrap around: the array has an overflow tail past `capacity` slots.
//
// A slot is 8 bytes: the entry pointer (48 bits, 8-aligned), bit 0 set when the entry has an
// expiry, and the top 16 bits of `local` as a tag that orders and filters most probes without
// touching the entry. Not thread-safe: the stripe lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringkv/token.h"

namespace ringkv::store {

class Table {
 public:
  static constexpr uint64_t kPtrMask = ((uint64_t{1} << 48) - 1) & ~uint64_t{7};
  static constexpr uint64_t kVolatileBit = 1;
  static constexpr size_t kNpos = ~size_t{0};

  // `shift`: how many top bits of a token choose the stripe.
  explicit Table(int shift) : shift_(shift) {}
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  size_t size() const { return count_; }
  size_t capacity() const { return cap_; }
  size_t slot_count() const { return phys_; }
  size_t memory_bytes() const { return phys_ * sizeof(uint64_t); }

  uint64_t local_of(Token token) const { return shift_ == 0 ? token : token << shift_; }

  struct Probe {
    size_t pos;  // the entry's slot when found, else where it would be inserted
    bool found;
  };
  Probe find(Token token, std::string_view key) const;

  // Inserts at a position returned by find() (not found). Returns false when the run would pass
  // the end of the array: grow() and find() again.
  bool insert_at(size_t pos, const char* entry, Token token, bool is_volatile);
  void replace_at(size_t pos, const char* entry, Token token, bool is_volatile) {
    slots_[pos] = make_slot(entry, local_of(token), is_volatile);
  }
  void set_volatile(size_t pos, bool v) {
    slots_[pos] = v ? (slots_[pos] | kVolatileBit) : (slots_[pos] & ~kVolatileBit);
  }
  void erase_at(size_t pos);

  // Memory per key is dominated by slots / load, so the load stays high: growth at 0.92 by a
  // factor of 1.3 leaves 0.71 after growing. Sorted Robin Hood runs keep probes short there.
  bool needs_grow() const { return cap_ == 0 || (count_ + 1) * 100 > cap_ * 92; }
  // Worth shrinking? (after deletions)
  bool should_shrink() const { return cap_ > kMinCapacity && count_ * 5 < cap_; }
  // Rebuilds with the smallest capacity that holds `count` entries at a load of at most 0.71.
  void resize_for(size_t count);
  void grow() { resize_for(count_ + 1 > cap_ * 92 / 100 ? count_ + 1 : cap_ * 92 / 100 + 1); }
  void clear();

  // Slot access for iteration: 0 is empty.
  uint64_t slot(size_t i) const { return slots_[i]; }
  static char* slot_entry(uint64_t s) { return reinterpret_cast<char*>(s & kPtrMask); }
  static bool slot_volatile(uint64_t s) { return s & kVolatileBit; }
  // The first slot whose entry's token is >= token (or slot_count()).
  size_t lower_bound(Token token) const;

 private:
  static constexpr size_t kMinCapacity = 16;
  static uint64_t make_slot(const char* e, uint64_t local, bool vol) {
    return reinterpret_cast<uint64_t>(e) | (local & ~((uint64_t{1} << 48) - 1)) |
           (vol ? kVolatileBit : 0);
  }
  static size_t home_in(uint64_t local, size_t cap) {
    return static_cast<size_t>((static_cast<unsigned __int128>(local) * cap) >> 64);
  }
  size_t home(uint64_t local) const { return home_in(local, cap_); }
  static size_t overflow_for(size_t cap) { return 32 + cap / 32; }
  // Slot arrays of a page and more are mapped directly, so that freeing one after a resize
  // returns it to the kernel instead of leaving a hole in malloc's heap.
  static uint64_t* alloc_slots(size_t n);
  static void free_slots(uint64_t* p, size_t n);
  static Token entry_token(uint64_t s);

  int shift_;
  uint64_t* slots_ = nullptr;
  size_t cap_ = 0;   // home slots
  size_t phys_ = 0;  // home slots + overflow tail
  size_t count_ = 0;
};

}  // namespace ringkv::store
