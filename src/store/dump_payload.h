// Redis's DUMP/RESTORE payload for a string value, so that values move between ringkv and Redis
// with DUMP, RESTORE and Redis's MIGRATE (which sends RESTORE to its target).
//
// Layout (Redis's createDumpPayload / verifyDumpPayload): the RDB object type (0, string), the
// value as an RDB string, the RDB version (2 bytes, little-endian), and a CRC-64 (Jones
// polynomial, reflected, initial value 0) of everything before it (8 bytes, little-endian).
// An RDB string is a length-prefixed byte string, an integer in 1, 2 or 4 bytes, or an LZF
// block. ringkv reads all three and writes the first two (as Redis does for values it cannot
// compress); Redis reads them all.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringkv::store {

// What DUMP writes: Redis 7.0's RDB version, so that every Redis from 7.0 on restores it.
inline constexpr uint16_t kDumpRdbVersion = 10;
// The newest RDB version RESTORE reads (Redis 7.4's and 8's). Strings are encoded the same way
// in every version up to it; Redis 7.0 itself refuses anything newer than 10.
inline constexpr uint16_t kMaxRestoreRdbVersion = 12;

// CRC-64 as Redis computes it (crc64.c): crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
uint64_t crc64(uint64_t crc, std::string_view data);

// The payload DUMP replies for a string value.
std::string encode_dump(std::string_view value);

enum class DumpStatus {
  kOk,
  kBadFooter,  // too short, a newer RDB version, or a checksum that does not match
  kBadFormat,  // not an RDB object, or one that does not decode
  kNotString,  // a valid object of a type ringkv does not store (type_name says which)
};

struct DecodedDump {
  DumpStatus status = DumpStatus::kOk;
  std::string value;           // kOk: the string
  std::string_view type_name;  // kNotString: "hash", "list", "set", "zset", "stream", "module"
};

// Checks the footer, then decodes the object. Reads no byte beyond the payload, whatever it
// holds.
DecodedDump decode_dump(std::string_view payload);

}  // namespace ringkv::store
