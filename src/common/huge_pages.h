// Transparent huge pages for large buffers: a value of hundreds of MB is copied a few times on
// its way (read buffer, store, replication record, each replica's request), into fresh memory
// whose every 4 KiB page faults on first touch; on a VM each fault is costly (a 256 MB SET
// through a non-owner kept the owner's loop busy for 5 s, long enough to be marked down). Asked
// for huge pages, the kernel faults 2 MiB at a time where its THP mode allows (`madvise`, the
// default on Debian, or `always`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringkv {

// Buffers smaller than this are left alone: small ones are the common case, and a huge page
// there would only waste memory.
inline constexpr size_t kHugePageAdviceMin = size_t{4} << 20;

// [first, last): addresses.
struct AddressRange {
  uintptr_t first = 0;
  uintptr_t last = 0;
  bool empty() const { return last <= first; }
};
// The whole 2 MiB pages inside [p, p + n); empty when n < kHugePageAdviceMin.
AddressRange huge_page_range(uintptr_t p, size_t n);

// Asks for huge pages on huge_page_range(p, n), best effort (errors are ignored). Call it before
// the memory is first written.
void advise_huge_pages(void* p, size_t n);

// out->append(data); a large data goes into room reserved and advised for huge pages first.
void append_advised(std::string* out, std::string_view data);

}  // namespace ringkv
