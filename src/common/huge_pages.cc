#include "common/huge_pages.h"

#include <sys/mman.h>

namespace ringkv {

AddressRange huge_page_range(uintptr_t p, size_t n) {
  if (n < kHugePageAdviceMin) return {};
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  AddressRange r{(p + kHuge - 1) & ~(kHuge - 1), (p + n) & ~(kHuge - 1)};
  return r.empty() ? AddressRange{} : r;
}

void advise_huge_pages(void* p, size_t n) {
  AddressRange r = huge_page_range(reinterpret_cast<uintptr_t>(p), n);
  if (p == nullptr || r.empty()) return;
#ifdef MADV_HUGEPAGE
  ::madvise(reinterpret_cast<void*>(r.first), r.last - r.first, MADV_HUGEPAGE);
#endif
}

void append_advised(std::string* out, std::string_view data) {
  if (data.size() >= kHugePageAdviceMin && out->capacity() - out->size() < data.size()) {
    out->reserve(out->size() + data.size());
    advise_huge_pages(out->data() + out->size(), data.size());
  }
  out->append(data);
}

}  // namespace ringkv
