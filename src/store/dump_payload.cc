#include "store/dump_payload.h"

#include <array>
#include <cstring>
#include <iterator>

#include "common/strings.h"

namespace ringkv::store {

namespace {

// RDB constants (Redis's rdb.h).
constexpr uint8_t kRdbTypeString = 0;
constexpr uint8_t kRdbEncVal = 3;  // the top two bits of a length byte: an encoded string
constexpr uint8_t kRdbEncInt8 = 0, kRdbEncInt16 = 1, kRdbEncInt32 = 2, kRdbEncLzf = 3;
constexpr uint8_t kRdb32BitLen = 0x80, kRdb64BitLen = 0x81;
constexpr size_t kFooter = 10;                    // version (2) + CRC-64 (8)
constexpr uint64_t kMaxStringLen = 512ull << 20;  // Redis's largest string value

// ---------------------------------------------------------------- CRC-64 (Jones)

constexpr uint64_t kCrc64ReflectedPoly = 0x95ac9329ac4bc9b5ULL;  // 0xad93d23594c935a9 reflected

constexpr std::array<uint64_t, 256> make_crc64_table() {
  std::array<uint64_t, 256> t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t crc = i;
    for (int b = 0; b < 8; ++b) crc = (crc & 1) ? (crc >> 1) ^ kCrc64ReflectedPoly : crc >> 1;
    t[i] = crc;
  }
  return t;
}
constexpr std::array<uint64_t, 256> kCrc64Table = make_crc64_table();

// ---------------------------------------------------------------- writing

void put_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_be(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// rdbSaveLen.
void put_len(std::string* out, uint64_t len) {
  if (len < (1 << 6)) {
    out->push_back(static_cast<char>(len));
  } else if (len < (1 << 14)) {
    out->push_back(static_cast<char>(((len >> 8) & 0xff) | (1 << 6)));
    out->push_back(static_cast<char>(len & 0xff));
  } else if (len <= UINT32_MAX) {
    out->push_back(static_cast<char>(kRdb32BitLen));
    put_be(out, len, 4);
  } else {
    out->push_back(static_cast<char>(kRdb64BitLen));
    put_be(out, len, 8);
  }
}

// rdbTryIntegerEncoding + rdbEncodeInteger: a short canonical decimal that fits in 32 bits is
// written as the integer.
bool put_int_encoded(std::string* out, std::string_view s) {
  int64_t v;
  if (s.size() > 11 || !parse_int64(s, &v)) return false;
  char buf[24];
  if (std::string_view(buf, format_int64(buf, v)) != s) return false;  // "+1", "01", "-0"
  auto enc = [](uint8_t e) { return static_cast<char>((kRdbEncVal << 6) | e); };
  if (v >= INT8_MIN && v <= INT8_MAX) {
    out->push_back(enc(kRdbEncInt8));
    put_le(out, static_cast<uint64_t>(v), 1);
  } else if (v >= INT16_MIN && v <= INT16_MAX) {
    out->push_back(enc(kRdbEncInt16));
    put_le(out, static_cast<uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    out->push_back(enc(kRdbEncInt32));
    put_le(out, static_cast<uint64_t>(v), 4);
  } else {
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- reading

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool byte(uint8_t* b) {
    if (pos_ >= in_.size()) return false;
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool bytes(size_t n, std::string_view* out) {
    if (n > in_.size() - pos_) return false;
    *out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool uint(int n, bool big_endian, uint64_t* out) {
    std::string_view b;
    if (!bytes(static_cast<size_t>(n), &b)) return false;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      uint64_t byte = static_cast<uint8_t>(b[static_cast<size_t>(i)]);
      v |= byte << (8 * (big_endian ? n - 1 - i : i));
    }
    *out = v;
    return true;
  }

  // rdbLoadLenByRef: a length, or (encoded) the encoding of a special string.
  bool len(uint64_t* out, bool* encoded) {
    uint8_t b;
    if (!byte(&b)) return false;
    *encoded = false;
    switch (b >> 6) {
      case 0:
        *out = b & 0x3f;
        return true;
      case 1: {
        uint8_t low;
        if (!byte(&low)) return false;
        *out = (static_cast<uint64_t>(b & 0x3f) << 8) | low;
        return true;
      }
      case kRdbEncVal:
        *encoded = true;
        *out = b & 0x3f;
        return true;
      default:
        if (b == kRdb32BitLen) return uint(4, true, out);
        if (b == kRdb64BitLen) return uint(8, true, out);
        return false;
    }
  }

  // rdbGenericLoadStringObject.
  bool string(std::string* out) {
    uint64_t n;
    bool encoded;
    if (!len(&n, &encoded)) return false;
    if (!encoded) {
      std::string_view b;
      if (!bytes(n, &b)) return false;
      out->assign(b);
      return true;
    }
    if (n == kRdbEncLzf) return lzf(out);
    int width = n == kRdbEncInt8 ? 1 : n == kRdbEncInt16 ? 2 : n == kRdbEncInt32 ? 4 : 0;
    uint64_t raw;
    if (width == 0 || !uint(width, false, &raw)) return false;
    int shift = 64 - 8 * width;  // sign-extend
    int64_t v = static_cast<int64_t>(raw << shift) >> shift;
    char buf[24];
    out->assign(buf, format_int64(buf, v));
    return true;
  }

 private:
  // rdbLoadLzfStringObject: compressed length, length, then liblzf's format.
  bool lzf(std::string* out) {
    uint64_t clen, len;
    bool enc;
    std::string_view in;
    if (!this->len(&clen, &enc) || enc || !this->len(&len, &enc) || enc || !bytes(clen, &in))
      return false;
    // Three compressed bytes yield at most 264 (the longest back reference): a larger claimed
    // length is a lie, and neither it nor one over Redis's string limit may size an allocation.
    if (len > clen * 88 || len > kMaxStringLen) return false;
    out->assign(len, '\0');
    return lzf_decompress(in, out) == len;
  }

  // liblzf's lzf_decompress: literal runs (control < 32: control + 1 bytes follow) and back
  // references (length in the top 3 bits, extended by a byte when 7; offset in the low 5 bits
  // and the next byte). Returns the bytes written, or a value != out->size() on bad input.
  static uint64_t lzf_decompress(std::string_view in, std::string* out) {
    size_t ip = 0, op = 0;
    const size_t out_len = out->size();
    char* o = out->data();
    while (ip < in.size()) {
      unsigned ctrl = static_cast<uint8_t>(in[ip++]);
      if (ctrl < (1 << 5)) {
        size_t run = ctrl + 1;
        if (run > out_len - op || run > in.size() - ip) return 0;
        std::memcpy(o + op, in.data() + ip, run);
        op += run;
        ip += run;
        continue;
      }
      size_t len = ctrl >> 5;
      size_t back = static_cast<size_t>(ctrl & 0x1f) << 8;
      if (ip >= in.size()) return 0;
      if (len == 7) {
        len += static_cast<uint8_t>(in[ip++]);
        if (ip >= in.size()) return 0;
      }
      back += static_cast<uint8_t>(in[ip++]) + 1;
      len += 2;
      if (back > op || len > out_len - op) return 0;
      for (size_t i = 0; i < len; ++i, ++op) o[op] = o[op - back];  // may overlap: byte by byte
    }
    return op;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

// Redis's RDB object types other than strings, by name (rdb.h, up to Redis 8); "" where the
// number is no object type.
std::string_view type_name(uint8_t type) {
  static constexpr std::string_view kNames[] = {
      "",     "list",   "set", "zset",   "hash", "zset", "module", "module", "",
      "hash", "list",   "set", "zset",   "hash", "list", "stream", "hash",   "zset",
      "list", "stream", "set", "stream", "hash", "hash", "hash",   "hash"};
  return type < std::size(kNames) ? kNames[type] : std::string_view();
}

}  // namespace

// ---------------------------------------------------------------- public

uint64_t crc64(uint64_t crc, std::string_view data) {
  for (char c : data) crc = kCrc64Table[(crc ^ static_cast<uint8_t>(c)) & 0xff] ^ (crc >> 8);
  return crc;
}

std::string encode_dump(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 1 + 9 + kFooter);
  out.push_back(static_cast<char>(kRdbTypeString));
  if (!put_int_encoded(&out, value)) {
    put_len(&out, value.size());
    out.append(value);
  }
  put_le(&out, kDumpRdbVersion, 2);
  put_le(&out, crc64(0, out), 8);
  return out;
}

DecodedDump decode_dump(std::string_view payload) {
  DecodedDump d;
  // verifyDumpPayload.
  if (payload.size() < kFooter) {
    d.status = DumpStatus::kBadFooter;
    return d;
  }
  std::string_view footer = payload.substr(payload.size() - kFooter);
  uint16_t version = static_cast<uint16_t>(static_cast<uint8_t>(footer[0]) |
                                           (static_cast<uint8_t>(footer[1]) << 8));
  uint64_t crc = 0;
  for (int i = 0; i < 8; ++i)
    crc |= static_cast<uint64_t>(static_cast<uint8_t>(footer[2 + i])) << (8 * i);
  if (version > kMaxRestoreRdbVersion || crc64(0, payload.substr(0, payload.size() - 8)) != crc) {
    d.status = DumpStatus::kBadFooter;
    return d;
  }
  // The object, within the bytes before the footer (bytes left over are ignored, as Redis does).
  Reader r(payload.substr(0, payload.size() - kFooter));
  uint8_t type;
  if (!r.byte(&type)) {
    d.status = DumpStatus::kBadFormat;
    return d;
  }
  if (type != kRdbTypeString) {
    d.type_name = type_name(type);
    d.status = d.type_name.empty() ? DumpStatus::kBadFormat : DumpStatus::kNotString;
    return d;
  }
  if (!r.string(&d.value)) {
    d.value.clear();
    d.status = DumpStatus::kBadFormat;
  }
  return d;
}

}  // namespace ringkv::store
