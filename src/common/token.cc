// SHA-256 tokens on OpenSSL's EVP interface, with the digest fetched once per process.
#include "ringkv/token.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace ringkv {
namespace {

const EVP_MD* sha256() {
  // Fetching resolves the provider's implementation once instead of on every digest.
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) {
      std::fprintf(stderr, "ringkv: OpenSSL has no SHA256 implementation\n");
      std::abort();
    }
    return fetched;
  }();
  return md;
}

struct ThreadCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~ThreadCtx() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Token token_of(std::string_view bytes) {
  thread_local ThreadCtx tc;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (tc.ctx == nullptr || EVP_DigestInit_ex2(tc.ctx, sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(tc.ctx, bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(tc.ctx, digest, &len) != 1 || len < 8) {
    std::fprintf(stderr, "ringkv: SHA-256 failed\n");
    std::abort();
  }
  Token t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | digest[i];
  return t;
}

std::string token_hex(Token token) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(token));
  return std::string(buf, 16);
}

}  // namespace ringkv
