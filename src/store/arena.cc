#include "store/arena.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/huge_pages.h"

namespace ringkv::store {

// ---------------------------------------------------------------- page heap

PageHeap& PageHeap::instance() {
  static PageHeap* heap = new PageHeap();  // never destroyed: pages may outlive static teardown
  return *heap;
}

void* PageHeap::allocate_page() {
  std::lock_guard<std::mutex> lock(mu_);
  void* page = nullptr;
  if (!free_.empty()) {
    page = free_.back();
    free_.pop_back();
  } else if (!released_.empty()) {
    page = released_.back();
    released_.pop_back();
    released_count_.fetch_sub(1, std::memory_order_relaxed);
  } else {
    if (region_cur_ == region_end_) {
      // Over-map by one page so the region can be aligned to kPageSize.
      size_t len = kRegionSize + kPageSize;
      void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) {
        std::fprintf(stderr, "ringkv: out of memory mapping %zu bytes\n", len);
        std::abort();
      }
      uintptr_t base = reinterpret_cast<uintptr_t>(m);
      uintptr_t aligned = (base + kPageSize - 1) & ~(uintptr_t{kPageSize} - 1);
      if (aligned != base) munmap(m, aligned - base);
      uintptr_t end = aligned + kRegionSize;
      uintptr_t map_end = base + len;
      if (map_end > end) munmap(reinterpret_cast<void*>(end), map_end - end);
      region_cur_ = reinterpret_cast<char*>(aligned);
      region_end_ = reinterpret_cast<char*>(end);
      mapped_.fetch_add(kRegionSize, std::memory_order_relaxed);
    }
    page = region_cur_;
    region_cur_ += kPageSize;
  }
  in_use_.fetch_add(1, std::memory_order_relaxed);
  return page;
}

void PageHeap::free_page(void* page) {
  std::lock_guard<std::mutex> lock(mu_);
  in_use_.fetch_sub(1, std::memory_order_relaxed);
  if (free_.size() < kMaxCachedPages) {
    free_.push_back(page);
  } else {
    madvise(page, kPageSize, MADV_DONTNEED);
    released_.push_back(page);
    released_count_.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t PageHeap::resident_bytes() const {
  size_t released = released_count_.load(std::memory_order_relaxed) * kPageSize;
  size_t mapped = mapped_.load(std::memory_order_relaxed);
  return mapped > released ? mapped - released : 0;
}

// ---------------------------------------------------------------- arena

struct Arena::Page {
  Page* next;          // in the class's partial list
  Page* prev;
  uint32_t free_head;  // offset of the first free block, 0 = none
  uint32_t bump;       // offset of the first block never handed out
  uint32_t live;       // blocks in use
  uint32_t index;      // position in Arena::all_pages_
  uint16_t cls;
  uint16_t block;      // block size in bytes
  bool in_partial;
};

namespace {
inline size_t class_of(size_t size) { return size == 0 ? 0 : (size - 1) / 8; }
inline size_t class_size(size_t cls) { return (cls + 1) * 8; }
}  // namespace

static constexpr size_t kHeader = (sizeof(Arena::Page) + 7) & ~size_t{7};

Arena::~Arena() { clear(); }

size_t Arena::block_size(size_t size) {
  if (size <= kMaxSmall) return class_size(class_of(size));
  return size;  // malloc'd: accounted by the size asked for (close to usable size)
}

void Arena::link_partial(ClassState& cs, Page* page) {
  page->prev = nullptr;
  page->next = cs.partial;
  if (cs.partial) cs.partial->prev = page;
  cs.partial = page;
  page->in_partial = true;
}

void Arena::unlink_partial(ClassState& cs, Page* page) {
  if (page->prev)
    page->prev->next = page->next;
  else
    cs.partial = page->next;
  if (page->next) page->next->prev = page->prev;
  page->next = page->prev = nullptr;
  page->in_partial = false;
}

void* Arena::allocate_small(size_t cls) {
  ClassState& cs = classes_[cls];
  for (;;) {
    Page* page = cs.current;
    if (page != nullptr) {
      char* base = reinterpret_cast<char*>(page);
      if (page->free_head != 0) {
        char* block = base + page->free_head;
        uint32_t next;
        std::memcpy(&next, block, sizeof next);
        page->free_head = next;
        ++page->live;
        return block;
      }
      if (page->bump + page->block <= kPageSize) {
        char* block = base + page->bump;
        page->bump += page->block;
        ++page->live;
        return block;
      }
      cs.current = nullptr;  // full: it re-enters the partial list when a block is freed
    }
    if (cs.partial != nullptr) {
      Page* p = cs.partial;
      unlink_partial(cs, p);
      cs.current = p;
      continue;
    }
    void* mem = PageHeap::instance().allocate_page();
    Page* p = static_cast<Page*>(mem);
    p->next = p->prev = nullptr;
    p->free_head = 0;
    p->bump = static_cast<uint32_t>(kHeader);
    p->live = 0;
    p->cls = static_cast<uint16_t>(cls);
    p->block = static_cast<uint16_t>(class_size(cls));
    p->in_partial = false;
    p->index = static_cast<uint32_t>(all_pages_.size());
    all_pages_.push_back(p);
    cs.current = p;
  }
}

void* Arena::allocate(size_t size) {
  if (size > kMaxSmall) {
    void* p = std::malloc(size);
    if (p == nullptr) {
      std::fprintf(stderr, "ringkv: out of memory allocating %zu bytes\n", size);
      std::abort();
    }
    advise_huge_pages(p, size);
    used_ += size;
    return p;
  }
  size_t cls = class_of(size);
  used_ += class_size(cls);
  return allocate_small(cls);
}

void Arena::free(void* ptr, size_t size) {
  if (size > kMaxSmall) {
    used_ -= size;
    std::free(ptr);
    return;
  }
  size_t cls = class_of(size);
  used_ -= class_size(cls);
  Page* page = reinterpret_cast<Page*>(reinterpret_cast<uintptr_t>(ptr) &
                                       ~(uintptr_t{kPageSize} - 1));
  assert(page->cls == cls);
  char* base = reinterpret_cast<char*>(page);
  uint32_t off = static_cast<uint32_t>(static_cast<char*>(ptr) - base);
  std::memcpy(ptr, &page->free_head, sizeof(uint32_t));
  page->free_head = off;
  --page->live;
  ClassState& cs = classes_[cls];
  if (page == cs.current) return;
  if (page->live == 0) {
    if (page->in_partial) unlink_partial(cs, page);
    // Swap-remove from all_pages_.
    Page* last = all_pages_.back();
    all_pages_[page->index] = last;
    last->index = page->index;
    all_pages_.pop_back();
    PageHeap::instance().free_page(page);
    return;
  }
  if (!page->in_partial) link_partial(cs, page);
}

void Arena::clear() {
  for (Page* p : all_pages_) PageHeap::instance().free_page(p);
  all_pages_.clear();
  for (ClassState& cs : classes_) cs = ClassState{};
  used_ = 0;
}

}  // namespace ringkv::store
