// Frames replies coming back from a peer: tells where one complete RESP2 or RESP3 reply ends,
// without building it. Peers' replies are passed to clients byte for byte, so they are never
// decoded and re-encoded (hiredis 0.14, the Debian version, cannot parse RESP3 at all).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ringkv::resp {

// Returns the length of the complete reply at data[0..len), 0 when more bytes are needed, or
// -1 when the bytes are not a valid reply.
int64_t scan_reply(const char* data, size_t len);

// For an array reply (or RESP3 set/push/map) whose bytes are `reply`: the element replies'
// byte ranges (a map yields keys and values alternately). False if `reply` is not one.
bool split_aggregate(std::string_view reply, std::vector<std::string_view>* elements);

// The integer of a ':' reply; false otherwise.
bool reply_integer(std::string_view reply, int64_t* out);
// The payload of a '$' bulk or '+' simple reply; false otherwise (including null).
bool reply_string(std::string_view reply, std::string_view* out);
inline bool reply_is_error(std::string_view reply) { return !reply.empty() && reply[0] == '-'; }

}  // namespace ringkv::resp
