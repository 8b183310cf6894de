// Tokens: where a key sits on the ring.
//
// A key's token is the first 8 bytes, read big-endian, of SHA-256(key). The ring space is the full
// range of uint64_t (2^64 positions). Every node and every client computes the same token from the
// same bytes; tests/golden/tokens.txt holds reference vectors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringkv {

using Token = uint64_t;

// The token of arbitrary bytes. Thread-safe; costs well under a microsecond for short keys (the
// SHA-256 implementation is fetched from OpenSSL once per process, the context once per thread).
Token token_of(std::string_view bytes);

// 16 lowercase hex digits, most significant first (the form RING TOKEN replies with).
std::string token_hex(Token token);

}  // namespace ringkv
