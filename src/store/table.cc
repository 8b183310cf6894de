#include "store/table.h"

#include <cassert>
#include <cstring>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>

#include "store/entry.h"

namespace ringkv::store {

namespace {
constexpr size_t kMapThreshold = 4096;
}

uint64_t* Table::alloc_slots(size_t n) {
  size_t bytes = n * sizeof(uint64_t);
  void* p;
  if (bytes >= kMapThreshold) {
    p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) p = nullptr;
  } else {
    p = std::calloc(n, sizeof(uint64_t));
  }
  if (p == nullptr) {
    std::fprintf(stderr, "ringkv: out of memory allocating a table of %zu slots\n", n);
    std::abort();
  }
  return static_cast<uint64_t*>(p);
}

void Table::free_slots(uint64_t* p, size_t n) {
  if (p == nullptr) return;
  size_t bytes = n * sizeof(uint64_t);
  if (bytes >= kMapThreshold)
    munmap(p, bytes);
  else
    std::free(p);
}

Table::~Table() { free_slots(slots_, phys_); }

Token Table::entry_token(uint64_t s) {
  Token t;
  std::memcpy(&t, slot_entry(s), sizeof t);
  return t;
}

Table::Probe Table::find(Token token, std::string_view key) const {
  if (cap_ == 0) return {0, false};
  const uint64_t local = local_of(token);
  const uint16_t tag = static_cast<uint16_t>(local >> 48);
  for (size_t i = home(local); i < phys_; ++i) {
    uint64_t s = slots_[i];
    if (s == 0) return {i, false};
    uint16_t st = static_cast<uint16_t>(s >> 48);
    if (st < tag) continue;
    if (st > tag) return {i, false};
    Token et = entry_token(s);
    if (et < token) continue;
    if (et > token) return {i, false};
    if (EntryView(slot_entry(s)).key() == key) return {i, true};
    // Same token, different key (a 64-bit collision): keep looking among equal tokens.
  }
  return {phys_, false};
}

size_t Table::lower_bound(Token token) const {
  if (cap_ == 0) return 0;
  const uint64_t local = local_of(token);
  const uint16_t tag = static_cast<uint16_t>(local >> 48);
  size_t i = home(local);
  for (; i < phys_; ++i) {
    uint64_t s = slots_[i];
    if (s == 0) continue;  // entries past an empty slot have homes after it: keep scanning
    uint16_t st = static_cast<uint16_t>(s >> 48);
    if (st < tag) continue;
    if (st > tag) return i;
    if (entry_token(s) >= token) return i;
  }
  return phys_;
}

bool Table::insert_at(size_t pos, const char* entry, Token token, bool is_volatile) {
  size_t j = pos;
  while (j < phys_ && slots_[j] != 0) ++j;
  if (j >= phys_) return false;
  if (j > pos) std::memmove(&slots_[pos + 1], &slots_[pos], (j - pos) * sizeof(uint64_t));
  slots_[pos] = make_slot(entry, local_of(token), is_volatile);
  ++count_;
  return true;
}

void Table::erase_at(size_t pos) {
  size_t i = pos;
  while (i + 1 < phys_) {
    uint64_t s = slots_[i + 1];
    if (s == 0) break;
    // The next entry may move back into slot i only if its home is at or before i. Its tag
    // bounds its home from both sides; look at the entry only when the bounds disagree.
    uint64_t lo = s & ~((uint64_t{1} << 48) - 1);
    uint64_t hi = lo | ((uint64_t{1} << 48) - 1);
    size_t home_lo = home(lo), home_hi = home(hi);
    if (home_lo > i) break;
    if (home_hi > i && home(local_of(entry_token(s))) > i) break;
    slots_[i] = s;
    ++i;
  }
  slots_[i] = 0;
  --count_;
}

void Table::resize_for(size_t count) {
  size_t cap = kMinCapacity;
  while (cap * 71 < count * 100) cap = cap + cap * 3 / 10;
  size_t extra = overflow_for(cap);
  for (;;) {
    size_t phys = cap + extra;
    uint64_t* fresh = alloc_slots(phys);
    size_t next = 0;
    bool fits = true;
    for (size_t i = 0; i < phys_; ++i) {
      uint64_t s = slots_[i];
      if (s == 0) continue;
      size_t h = home_in(local_of(entry_token(s)), cap);
      size_t p = h > next ? h : next;
      if (p >= phys) {
        fits = false;
        break;
      }
      fresh[p] = s;
      next = p + 1;
    }
    if (!fits) {
      free_slots(fresh, phys);
      extra *= 2;
      continue;
    }
    free_slots(slots_, phys_);
    slots_ = fresh;
    cap_ = cap;
    phys_ = phys;
    return;
  }
}

void Table::clear() {
  free_slots(slots_, phys_);
  slots_ = nullptr;
  cap_ = phys_ = count_ = 0;
}

}  // namespace ringkv::store
