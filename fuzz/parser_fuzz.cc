// libFuzzer target for resp::RequestParser, driven exactly as a connection drives it: bytes
// arrive in chunks (sizes chosen by the input), the unconsumed bytes stay at the front and are
// passed again with the next chunk appended, and they may sit at a different address on every
// call (a connection moves them from its loop's shared read buffer into its own).
//
// Invariants checked on every call:
//  - consumed <= len; consumed == 0 unless a request (or an empty one) was read;
//  - a multibulk request's arguments lie inside the bytes it consumed, and `consumed` is exactly
//    the canonical encoding of those arguments (Redis accepts only canonical lengths);
//  - the same request (or the same bytes, up to an error) parsed in one go gives the same result:
//    chunking never changes what is read, nor which error is found;
//  - errors are Redis protocol errors, and after one the parser starts afresh.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"

using ringkv::resp::ParserLimits;
using ringkv::resp::ParseStatus;
using ringkv::resp::RequestParser;

namespace {

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

struct Result {
  ParseStatus status;
  size_t consumed;
  std::vector<std::string> args;
  std::string error;
};

// Parses `bytes` from a private heap copy (so ASan sees any read past them or of an old copy).
Result parse_copy(RequestParser& p, const std::string& bytes, bool authenticated) {
  std::unique_ptr<char[]> copy(new char[bytes.size() + 1]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  Result r;
  r.consumed = static_cast<size_t>(-1);
  r.status = p.parse(copy.get(), bytes.size(), authenticated, &r.consumed);
  FUZZ_CHECK(r.consumed <= bytes.size());
  switch (r.status) {
    case ParseStatus::kNeedMore:
    case ParseStatus::kError:
      FUZZ_CHECK(r.consumed == 0);
      break;
    case ParseStatus::kEmpty:
      FUZZ_CHECK(r.consumed > 0);
      break;
    case ParseStatus::kCommand: {
      FUZZ_CHECK(r.consumed > 0);
      FUZZ_CHECK(!p.args().empty());
      const bool multibulk = bytes[0] == '*';
      size_t encoded = 1 + std::to_string(p.args().size()).size() + 2;
      for (std::string_view a : p.args()) {
        if (multibulk) {
          // Views into the caller's bytes, within the request.
          FUZZ_CHECK(a.data() >= copy.get());
          FUZZ_CHECK(a.data() + a.size() <= copy.get() + r.consumed);
        }
        encoded += 1 + std::to_string(a.size()).size() + 2 + a.size() + 2;
        r.args.emplace_back(a);  // reads every byte of every view
      }
      if (multibulk) FUZZ_CHECK(encoded == r.consumed);
      break;
    }
  }
  if (r.status == ParseStatus::kError) {
    r.error = p.error();
    FUZZ_CHECK(r.error.rfind("ERR Protocol error: ", 0) == 0);
  }
  return r;
}

// After an error (or between connections) the parser must read a fresh request correctly.
void check_fresh(RequestParser& p) {
  static const std::string kPing = "*1\r\n$4\r\nPING\r\n";
  Result r = parse_copy(p, kPing, true);
  FUZZ_CHECK(r.status == ParseStatus::kCommand);
  FUZZ_CHECK(r.consumed == kPing.size());
  FUZZ_CHECK(r.args.size() == 1 && r.args[0] == "PING");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Control values come from the end of the input, the byte stream from the front.
  const bool authenticated = fdp.ConsumeBool();
  ParserLimits limits;
  // Small limits too, so that the "too big" and "invalid bulk length" paths are reachable by
  // inputs of fuzzer size.
  static const size_t kInline[] = {8, 64, 1024, 64 * 1024};
  static const int64_t kBulk[] = {4, 100, 16384, 512ll * 1024 * 1024};
  static const int64_t kMulti[] = {3, 1024, 2147483647, 2147483647};
  limits.max_inline = kInline[fdp.ConsumeIntegralInRange<int>(0, 3)];
  limits.max_bulk_len = kBulk[fdp.ConsumeIntegralInRange<int>(0, 3)];
  limits.max_multibulk = kMulti[fdp.ConsumeIntegralInRange<int>(0, 3)];
  std::vector<size_t> chunks;
  const size_t nchunks = fdp.ConsumeIntegralInRange<size_t>(1, 16);
  for (size_t i = 0; i < nchunks; ++i) chunks.push_back(fdp.ConsumeIntegralInRange<size_t>(1, 300));
  const std::string stream = fdp.ConsumeRemainingBytesAsString();

  RequestParser parser(limits);
  RequestParser whole(limits);  // the reference: each request from its own bytes, in one go
  std::string pending;          // unconsumed bytes, as a connection keeps them
  size_t pos = 0, ci = 0;
  while (pos < stream.size()) {
    size_t n = std::min(chunks[ci++ % chunks.size()], stream.size() - pos);
    pending.append(stream, pos, n);
    pos += n;
    for (;;) {
      Result r = parse_copy(parser, pending, authenticated);
      if (r.status == ParseStatus::kNeedMore) break;
      if (r.status == ParseStatus::kError) {
        // The same bytes in one go fail the same way: how they were split never matters.
        Result ref = parse_copy(whole, pending, authenticated);
        FUZZ_CHECK(ref.status == ParseStatus::kError);
        FUZZ_CHECK(ref.error == r.error);
        // The connection replies and closes; the parser must not carry anything over. What
        // follows in the stream is read as a new connection's bytes.
        check_fresh(parser);
        check_fresh(whole);
        pending.clear();
        break;
      }
      // Chunking never changes what is read: the request's bytes alone, in one call, agree.
      Result ref = parse_copy(whole, pending.substr(0, r.consumed), authenticated);
      FUZZ_CHECK(ref.status == r.status);
      FUZZ_CHECK(ref.consumed == r.consumed);
      FUZZ_CHECK(ref.args == r.args);
      pending.erase(0, r.consumed);
    }
  }
  // A connection that ends here forgets its partial request.
  parser.reset();
  check_fresh(parser);
  return 0;
}
