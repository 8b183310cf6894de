#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <sstream>

namespace ringkv::net {

namespace {

// The first error OpenSSL queued on this thread (the others only say where it went up through
// its layers), and the queue emptied.
unsigned long take_error() {
  unsigned long first = ERR_get_error();
  while (ERR_get_error() != 0) {
  }
  return first;
}

std::string reason(unsigned long e) {
  if (e == 0) return "unknown error";
  if (ERR_SYSTEM_ERROR(e)) return std::strerror(ERR_GET_REASON(e));
  if (const char* r = ERR_reason_error_string(e)) return r;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string ssl_errors() { return reason(take_error()); }

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

int password_cb(char* buf, int size, int, void* userdata) {
  const auto* pass = static_cast<const std::string*>(userdata);
  if (pass == nullptr || size <= 0) return 0;
  int n = static_cast<int>(pass->size()) < size ? static_cast<int>(pass->size()) : size;
  pass->copy(buf, static_cast<size_t>(n));
  return n;
}

// Redis's tls-protocols: the versions listed, each "TLSv1", "TLSv1.1", "TLSv1.2" or "TLSv1.3".
Status set_protocols(SSL_CTX* ctx, const std::string& list) {
  static const std::string kInvalid =
      "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' "
      "and 'TLSv1.3'.";
  int lo = 0, hi = 0;
  auto widen = [&](int v) {
    lo = lo == 0 || v < lo ? v : lo;
    hi = v > hi ? v : hi;
  };
  if (list.empty()) {
    widen(TLS1_2_VERSION);
    widen(TLS1_3_VERSION);
  }
  std::istringstream in(list);
  std::string p;
  while (in >> p) {
    for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (p == "tlsv1")
      widen(TLS1_VERSION);
    else if (p == "tlsv1.1")
      widen(TLS1_1_VERSION);
    else if (p == "tlsv1.2")
      widen(TLS1_2_VERSION);
    else if (p == "tlsv1.3")
      widen(TLS1_3_VERSION);
    else
      return Status::invalid_argument(kInvalid);
  }
  if (lo == 0) return Status::invalid_argument(kInvalid);
  // A range, as OpenSSL takes it: "TLSv1 TLSv1.3" enables the versions between as well.
  if (SSL_CTX_set_min_proto_version(ctx, lo) != 1 || SSL_CTX_set_max_proto_version(ctx, hi) != 1)
    return Status::invalid_argument(kInvalid + " (" + ssl_errors() + ")");
  return Status::ok();
}

}  // namespace

// ---------------------------------------------------------------- TlsContext

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsOptions& o) {
  ERR_clear_error();
  if (o.cert_file.empty()) return Status::invalid_argument("tls-cert-file is not set");
  if (o.key_file.empty()) return Status::invalid_argument("tls-key-file is not set");
  const bool verify = o.auth_clients != TlsOptions::AuthClients::kNo;
  if (verify && o.ca_cert_file.empty() && o.ca_cert_dir.empty()) {
    return Status::invalid_argument(
        "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is "
        "enabled");
  }
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Status::internal("SSL_CTX_new: " + ssl_errors());
  SSL_CTX* c = ctx.get();
  Status st = set_protocols(c, o.protocols);
  if (!st.is_ok()) return st;
  // No renegotiation (a client could make the server do handshakes at will); no compression.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                             (o.prefer_server_ciphers ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  // The session's BIO takes every record at once, so SSL_write never writes part of a chunk;
  // an idle connection gives its read and write buffers back.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  // The session id context also ties client certificates to sessions: it is set either way.
  static const unsigned char kSessionId[] = "ringkv";
  SSL_CTX_set_session_id_context(c, kSessionId, sizeof kSessionId - 1);
  if (o.session_caching) {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(c, o.session_cache_size);
    SSL_CTX_set_timeout(c, o.session_cache_timeout);
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
  }
  if (o.dh_params_file.empty()) {
    SSL_CTX_set_dh_auto(c, 1);
  } else {
    BIO* f = BIO_new_file(o.dh_params_file.c_str(), "r");
    EVP_PKEY* dh = f != nullptr ? PEM_read_bio_Parameters(f, nullptr) : nullptr;
    if (f != nullptr) BIO_free(f);
    if (dh == nullptr || SSL_CTX_set0_tmp_dh_pkey(c, dh) != 1) {
      if (dh != nullptr) EVP_PKEY_free(dh);
      return Status::invalid_argument("Failed to load DH parameters: " + o.dh_params_file + ": " +
                                      ssl_errors());
    }
  }

  if (SSL_CTX_use_certificate_chain_file(c, o.cert_file.c_str()) != 1) {
    return Status::invalid_argument("Failed to load certificate: " + o.cert_file + ": " +
                                    ssl_errors());
  }
  std::string pass = o.key_file_pass;
  SSL_CTX_set_default_passwd_cb(c, &password_cb);
  SSL_CTX_set_default_passwd_cb_userdata(c, &pass);
  int key_ok = SSL_CTX_use_PrivateKey_file(c, o.key_file.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(c, nullptr);
  if (key_ok != 1 || SSL_CTX_check_private_key(c) != 1) {
    unsigned long e = take_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
      return Status::invalid_argument("The private key in " + o.key_file +
                                      " does not match the certificate in " + o.cert_file);
    }
    return Status::invalid_argument("Failed to load private key: " + o.key_file + ": " + reason(e));
  }
  if (!o.ca_cert_file.empty() || !o.ca_cert_dir.empty()) {
    if (SSL_CTX_load_verify_locations(c, o.ca_cert_file.empty() ? nullptr : o.ca_cert_file.c_str(),
                                      o.ca_cert_dir.empty() ? nullptr : o.ca_cert_dir.c_str()) !=
        1) {
      return Status::invalid_argument("Failed to configure CA certificate(s) file/directory: " +
                                      ssl_errors());
    }
  }
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(c, o.ciphers.c_str()) != 1)
    return Status::invalid_argument("Failed to configure ciphers: " + ssl_errors());
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(c, o.ciphersuites.c_str()) != 1)
    return Status::invalid_argument("Failed to configure ciphersuites: " + ssl_errors());
  int mode = SSL_VERIFY_NONE;
  if (o.auth_clients == TlsOptions::AuthClients::kYes)
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  else if (o.auth_clients == TlsOptions::AuthClients::kOptional)
    mode = SSL_VERIFY_PEER;
  SSL_CTX_set_verify(c, mode, nullptr);
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release()));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

// ---------------------------------------------------------------- TlsSession

BIO_METHOD* TlsSession::bio_method() {
  static BIO_METHOD* const kMethod = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringkv session");
    BIO_meth_set_read(m, &TlsSession::bio_read);
    BIO_meth_set_write(m, &TlsSession::bio_write);
    BIO_meth_set_ctrl(m, &TlsSession::bio_ctrl);
    BIO_meth_set_create(m, [](BIO* b) {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return kMethod;
}

int TlsSession::bio_read(BIO* b, char* buf, int len) {
  auto* s = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (s->input_len_ == 0) {
    BIO_set_retry_read(b);  // "come back with more", not end of file
    return -1;
  }
  size_t n = std::min(s->input_len_, static_cast<size_t>(len));
  std::memcpy(buf, s->input_, n);
  s->input_ += n;
  s->input_len_ -= n;
  return static_cast<int>(n);
}

int TlsSession::bio_write(BIO* b, const char* buf, int len) {
  auto* s = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  s->output_.append(buf, static_cast<size_t>(len));
  return len;
}

long TlsSession::bio_ctrl(BIO*, int cmd, long, void*) {
  // OpenSSL flushes after each flight of handshake messages: the output is the string already.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx) : ctx_(std::move(ctx)) {
  ssl_ = SSL_new(ctx_->ctx());
  BIO* bio = BIO_new(bio_method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways, owned by ssl_
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::feed(const char* data, size_t len) {
  assert(input_len_ == 0);
  input_ = data;
  input_len_ = len;
}

TlsSession::ReadResult TlsSession::read(char* buf, size_t cap) {
  if (!error_.empty()) return {ReadStatus::kError};
  ERR_clear_error();
  int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
  if (n > 0) return {ReadStatus::kData, static_cast<size_t>(n)};
  int e = SSL_get_error(ssl_, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    input_len_ = 0;  // all consumed (the BIO said so), nothing to point at any more
    return {ReadStatus::kNeedMore};
  }
  input_len_ = 0;
  if (e == SSL_ERROR_ZERO_RETURN) return {ReadStatus::kClosed};
  error_ = e == SSL_ERROR_SSL ? ssl_errors() : "TLS error " + std::to_string(e);
  if (!SSL_is_init_finished(ssl_)) {
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) error_ += " (" + std::string(X509_verify_cert_error_string(v)) + ")";
  }
  return {ReadStatus::kError};
}

void TlsSession::write(std::string_view plain) {
  ERR_clear_error();
  while (!plain.empty() && error_.empty()) {
    int n =
        SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), INT_MAX)));
    if (n <= 0) {
      error_ = "SSL_write: " + ssl_errors();
      return;
    }
    plain.remove_prefix(static_cast<size_t>(n));
  }
}

void TlsSession::take_output(std::string& out) {
  if (out.empty()) {
    out.swap(output_);
  } else {
    out.append(output_);
  }
  output_.clear();
  if (output_.capacity() > 64 * 1024) output_.shrink_to_fit();
}

bool TlsSession::handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }

}  // namespace ringkv::net
