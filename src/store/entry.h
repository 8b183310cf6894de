// The layout of one stored entry: a single allocation holding header, key and value.
//
//   offset  size  field
//   0       8     token     SHA-256 token of the key (routing, table order, migration ranges)
//   8       8     version   (hybrid time, node) of the write that produced this entry
//   16      4     meta      bits 0-23: LRU clock or LFU data; bits 24-31: flags
//   20      1-5   key length   (LEB128)
//   ..      1-5   value length (LEB128)
//   ..      0/8   expiry    absolute Unix ms, present only with kHasExpire
//   ..      klen  key bytes
//   ..      vlen  value bytes
//
// No std::string, no shared_ptr, no padding beyond the arena's 8-byte classes: a 14-byte key
// with a 32-byte value takes 68 bytes, stored in a 72-byte block.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/clock.h"
#include "ringkv/token.h"

namespace ringkv::store {

enum EntryFlags : uint8_t {
  kHasExpire = 1,
  kTombstone = 2,  // a deletion kept so that an older copy arriving later cannot revive the key
  // How Redis would have encoded the value (OBJECT ENCODING), when not as SET would: built in
  // place (APPEND to a key, SETRANGE, SETBIT, BITFIELD, BITOP), or never an integer
  // (INCRBYFLOAT). A write clears them; local only (not replicated, not in digests).
  kEncodingRaw = 4,
  kEncodingNoInt = 8,
  kEncodingMask = kEncodingRaw | kEncodingNoInt,
};

struct EntryHeader {
  Token token;
  Version version;
  uint32_t meta;
};
static_assert(sizeof(EntryHeader) == 24);  // 20 used; the struct is only for offsets
inline constexpr size_t kFixedHeader = 20;

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline char* put_varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline const char* get_varint(const char* p, uint64_t* v) {
  uint64_t r = 0;
  int shift = 0;
  while (true) {
    uint8_t b = static_cast<uint8_t>(*p++);
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
    shift += 7;
  }
  *v = r;
  return p;
}

// A read view of an entry in memory. Cheap to build; valid while the stripe lock is held.
class EntryView {
 public:
  EntryView() = default;
  explicit EntryView(const char* p) : p_(p) {
    const char* q = get_varint(p + kFixedHeader, &klen_);
    q = get_varint(q, &vlen_);
    if (flags() & kHasExpire) {
      std::memcpy(&expire_, q, 8);
      q += 8;
    }
    key_ = q;
  }
  static size_t size_for(size_t klen, size_t vlen, bool has_expire) {
    return kFixedHeader + varint_size(klen) + varint_size(vlen) + (has_expire ? 8 : 0) + klen +
           vlen;
  }

  const char* data() const { return p_; }
  size_t size() const { return size_for(klen_, vlen_, has_expire()); }
  Token token() const {
    Token t;
    std::memcpy(&t, p_, 8);
    return t;
  }
  Version version() const {
    Version v;
    std::memcpy(&v, p_ + 8, 8);
    return v;
  }
  uint32_t meta() const {
    uint32_t m;
    std::memcpy(&m, p_ + 16, 4);
    return m;
  }
  uint8_t flags() const { return static_cast<uint8_t>(meta() >> 24); }
  uint32_t lru() const { return meta() & 0xffffff; }
  bool has_expire() const { return flags() & kHasExpire; }
  bool tombstone() const { return flags() & kTombstone; }
  Millis expire_at() const { return has_expire() ? expire_ : -1; }
  std::string_view key() const { return {key_, klen_}; }
  std::string_view value() const { return {key_ + klen_, vlen_}; }
  char* mutable_value() const { return const_cast<char*>(key_ + klen_); }

 private:
  const char* p_ = nullptr;
  const char* key_ = nullptr;
  uint64_t klen_ = 0;
  uint64_t vlen_ = 0;
  Millis expire_ = -1;
};

// Writes an entry into `p`, which has room for EntryView::size_for(...). Returns a pointer to the
// value bytes (already filled when value.data() is non-null, left for the caller otherwise).
inline char* write_entry(char* p, Token token, Version version, uint32_t lru, uint8_t flags,
                         std::string_view key, const char* value, size_t vlen, Millis expire_at) {
  if (expire_at >= 0)
    flags |= kHasExpire;
  else
    flags &= static_cast<uint8_t>(~kHasExpire);
  uint32_t meta = (lru & 0xffffff) | (static_cast<uint32_t>(flags) << 24);
  std::memcpy(p, &token, 8);
  std::memcpy(p + 8, &version, 8);
  std::memcpy(p + 16, &meta, 4);
  char* q = put_varint(p + kFixedHeader, key.size());
  q = put_varint(q, vlen);
  if (expire_at >= 0) {
    std::memcpy(q, &expire_at, 8);
    q += 8;
  }
  if (!key.empty()) std::memcpy(q, key.data(), key.size());
  q += key.size();
  if (value != nullptr && vlen > 0) std::memmove(q, value, vlen);
  return q;
}

inline void set_entry_meta(char* p, uint32_t lru, uint8_t flags) {
  uint32_t meta = (lru & 0xffffff) | (static_cast<uint32_t>(flags) << 24);
  std::memcpy(p + 16, &meta, 4);
}
inline void set_entry_version(char* p, Version v) { std::memcpy(p + 8, &v, 8); }

}  // namespace ringkv::store
