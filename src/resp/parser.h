// The request parser: bytes in, commands out. It does no I/O and owns no buffer.
//
// The caller keeps the unconsumed bytes contiguous and passes them again with more data appended;
// the parser remembers how far it got, so a large bulk string arriving in many reads is scanned
// once. Requests are RESP multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or inline ("GET k\r\n"),
// exactly as Redis 7 reads them, with Redis's limits and error texts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv::resp {

struct ParserLimits {
  int64_t max_bulk_len = 512ll * 1024 * 1024;  // proto-max-bulk-len
  size_t max_inline = 64 * 1024;                // PROTO_INLINE_MAX_SIZE
  int64_t max_multibulk = 2147483647;           // INT_MAX, as Redis
};

enum class ParseStatus {
  kCommand,   // a whole request was read: see args(); `consumed` bytes belong to it
  kEmpty,     // a request with no arguments ("*0", a blank inline line): `consumed` bytes skip it
  kNeedMore,  // the bytes end inside a request; call again with the same start and more bytes
  kError,     // a protocol error: see error(); the connection must reply it and close
};

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Parses the request that starts at data[0]. `authenticated` applies Redis's tighter limits to
  // clients that have not authenticated yet (requirepass).
  ParseStatus parse(const char* data, size_t len, bool authenticated, size_t* consumed);

  // Valid after kCommand until the next call to parse() or until the bytes passed are moved.
  const std::vector<std::string_view>& args() const { return args_; }
  // After kError: the full error text ("ERR Protocol error: ...").
  const std::string& error() const { return error_; }

  // While kNeedMore inside a bulk string: how many bytes the whole request needs at least, so
  // the caller can reserve once instead of growing the buffer many times. 0 when unknown.
  size_t bytes_wanted() const { return wanted_; }

  void set_limits(const ParserLimits& limits) { limits_ = limits; }
  // Forgets a partial request (after the caller discarded its bytes).
  void reset();

 private:
  ParseStatus parse_multibulk(const char* data, size_t len, bool authenticated, size_t* consumed);
  ParseStatus parse_inline(const char* data, size_t len, size_t* consumed);
  ParseStatus fail(std::string message);

  ParserLimits limits_;
  // Progress through a multibulk request, as offsets from its first byte.
  bool in_multibulk_ = false;
  int64_t argc_ = 0;        // arguments announced by the '*' line
  int64_t bulk_len_ = -1;   // length of the bulk being read, -1 before its '$' line
  size_t pos_ = 0;          // where parsing resumes
  size_t wanted_ = 0;
  std::vector<std::pair<size_t, size_t>> spans_;  // (offset, length) of each argument read
  std::vector<std::string_view> args_;
  std::vector<std::string> inline_args_;  // unescaped inline arguments (args_ points here)
  std::string error_;
};

}  // namespace ringkv::resp
