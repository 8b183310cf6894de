// Uses every installed header through the installed package: the client (its error values), the
// ring (building one and looking a key up) and tokens (SHA-256, so OpenSSL is linked).
// Exits 0 and prints "ok" when everything behaves.
#include <cstdio>
#include <string>

#include "ringkv/client.h"
#include "ringkv/ring.h"
#include "ringkv/token.h"

int main() {
  int failures = 0;
  auto expect = [&](bool cond, const char* what) {
    if (!cond) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };

  ringkv::ClientOptions options;
  auto none = ringkv::Client::open(options);
  expect(!none && none.status().code() == ringkv::Code::kInvalidArgument,
         "open() without seeds is kInvalidArgument");

  options.seeds = {"127.0.0.1:1"};  // nothing listens on port 1
  options.connect_timeout_ms = 500;
  auto unreachable = ringkv::Client::open(options);
  expect(!unreachable && unreachable.status().code() == ringkv::Code::kUnreachable,
         "open() of a closed port is kUnreachable");

  // SHA-256("") starts e3b0c44298fc1c14.
  expect(ringkv::token_hex(ringkv::token_of("")) == "e3b0c44298fc1c14", "token_of(\"\")");

  auto ring = ringkv::ring::Ring::build({{"a", 1}, {"b", 1}, {"c", 1}});
  expect(ring.is_ok(), "Ring::build");
  if (ring) {
    auto owners = (*ring)->preference_ids(ringkv::token_of("key"), 3);
    expect(owners.is_ok() && owners->size() == 3, "preference_ids");
  }
  if (failures == 0) std::printf("ok\n");
  return failures == 0 ? 0 : 1;
}
