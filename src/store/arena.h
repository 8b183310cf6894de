// The entry allocator: size classes 8 bytes apart, carved from 8 KiB pages.
//
// Why not malloc: an entry of 68 bytes costs 80 in glibc (16-byte alignment plus an 8-byte
// header) and 80 in jemalloc (its classes are 16 bytes apart in that range); here it costs 72.
// At a million small keys that is the difference between meeting and missing our memory target.
//
// A PageHeap (one per process, thread-safe) hands out 8 KiB pages aligned to 8 KiB. An Arena
// (one per store stripe, used under the stripe's lock, so not thread-safe itself) keeps, per size
// class, the page it allocates from and a list of pages that have free blocks; each page keeps
// its own free list and count of live blocks, so a page whose last block is freed goes back to
// the heap, where any stripe and any class can reuse it, and idle pages are returned to the
// kernel. Blocks larger than kMaxSmall come from malloc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace ringkv::store {

inline constexpr size_t kPageSize = 8192;
inline constexpr size_t kMaxSmall = 1024;  // larger blocks come from malloc
inline constexpr size_t kClassCount = kMaxSmall / 8;

// Process-wide source of pages. Thread-safe.
class PageHeap {
 public:
  static PageHeap& instance();

  void* allocate_page();
  void free_page(void* page);

  // Bytes of pages handed out and not returned.
  size_t pages_in_use_bytes() const { return in_use_.load(std::memory_order_relaxed) * kPageSize; }
  // Bytes mapped from the kernel and still resident (in use or cached).
  size_t resident_bytes() const;

 private:
  PageHeap() = default;
  static constexpr size_t kRegionSize = 2 * 1024 * 1024;
  static constexpr size_t kMaxCachedPages = 256;  // beyond this, freed pages go back to the kernel

  std::mutex mu_;
  std::vector<void*> free_;       // pages ready for reuse, resident
  std::vector<void*> released_;   // pages given back with MADV_DONTNEED (not resident)
  char* region_cur_ = nullptr;    // carving position in the newest region
  char* region_end_ = nullptr;
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> mapped_{0};
  std::atomic<size_t> released_count_{0};
};

class Arena {
 public:
  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // The size a block of `size` bytes really takes (its class size, or malloc's usable size).
  static size_t block_size(size_t size);
  static bool is_small(size_t size) { return size <= kMaxSmall; }

  // Returns 8-byte-aligned memory of at least `size` bytes. Never fails (aborts on OOM).
  void* allocate(size_t size);
  // REQUIRES: p came from allocate(size) on this arena, with the same size.
  void free(void* p, size_t size);

  // Bytes of live blocks (class sizes; malloc'd blocks by their usable size).
  size_t used_bytes() const { return used_; }

  // Returns every page. REQUIRES: every block larger than kMaxSmall was freed.
  void clear();

  struct Page;  // public so arena.cc can size it; opaque to everyone else

 private:
  struct ClassState {
    Page* current = nullptr;  // the page allocations come from
    Page* partial = nullptr;  // other pages with at least one free block (doubly linked)
  };
  void* allocate_small(size_t cls);
  void unlink_partial(ClassState& cs, Page* page);
  void link_partial(ClassState& cs, Page* page);

  ClassState classes_[kClassCount];
  std::vector<Page*> all_pages_;  // for clear(); unordered, O(1) removal via index in Page
  size_t used_ = 0;
};

}  // namespace ringkv::store
