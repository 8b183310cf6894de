// TLS for client connections: the connection keeps reading and writing its libuv stream as
// before and passes the bytes through a TlsSession, which does no I/O (the parser's rule) and
// whose BIO works on the connection's own buffers. A TlsContext holds the certificates and settings
// (Redis's tls-* directives); TlsContextRef is the current one, swapped whole by CONFIG SET, so
// connections accepted after a change use the new certificates and those already open keep theirs.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "ringkv/status.h"

namespace ringkv::net {

struct TlsOptions {
  std::string cert_file;  // PEM certificate chain of this server
  std::string key_file;   // PEM private key
  std::string key_file_pass;
  std::string ca_cert_file;  // CAs that sign client certificates
  std::string ca_cert_dir;
  enum class AuthClients { kYes, kNo, kOptional } auth_clients = AuthClients::kYes;
  std::string protocols;     // "TLSv1.2 TLSv1.3"; empty: TLS 1.2 and 1.3
  std::string ciphers;       // TLS 1.2 and below (OpenSSL cipher list)
  std::string ciphersuites;  // TLS 1.3
  bool prefer_server_ciphers = false;
  bool session_caching = true;
  long session_cache_size = 20480;
  long session_cache_timeout = 300;  // seconds
  std::string dh_params_file;        // empty: OpenSSL's built-in groups
};

// An SSL_CTX built from TlsOptions. Thread-safe once built (sessions are made on any loop).
class TlsContext {
 public:
  // Loads and checks everything: a missing file, a key that does not match the certificate,
  // an unknown protocol name or an empty cipher list is an error naming it.
  static Result<std::shared_ptr<TlsContext>> create(const TlsOptions& o);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The context new connections get. Any thread.
class TlsContextRef {
 public:
  std::shared_ptr<TlsContext> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ctx_;
  }
  void set(std::shared_ptr<TlsContext> c) {
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = std::move(c);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<TlsContext> ctx_;
};

// The server side of one TLS connection. Bytes from the socket go in with feed() and are
// decrypted by read() into buffers the caller gives; plaintext to send goes in with write(); what
// must go on the socket (records, handshake messages, alerts) comes out of take_output(). Neither
// side is copied into OpenSSL's memory BIOs: the session's BIO reads the fed bytes in place and
// appends its output to one string, so an idle session holds no buffers. One thread at a time.
class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<TlsContext> ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // The bytes the socket gave. They are read in place: call read() until it returns anything
  // but kData before they go away. REQUIRES: the previous bytes fed were all read.
  void feed(const char* data, size_t len);

  enum class ReadStatus {
    kData,      // plaintext was put in the buffer (more may follow)
    kNeedMore,  // everything fed was consumed (the handshake may have progressed)
    kClosed,    // the peer sent close_notify
    kError,     // the handshake or a record failed: error() says why
  };
  struct ReadResult {
    ReadStatus status;
    size_t bytes = 0;  // with kData
  };
  ReadResult read(char* buf, size_t cap);

  // Encrypts `plain`. REQUIRES: handshake_done().
  void write(std::string_view plain);
  // Moves the bytes waiting to go on the socket to the end of `out`.
  void take_output(std::string& out);
  bool has_output() const { return !output_.empty(); }

  bool handshake_done() const;
  const std::string& error() const { return error_; }

 private:
  static BIO_METHOD* bio_method();
  static int bio_read(BIO* b, char* buf, int len);
  static int bio_write(BIO* b, const char* buf, int len);
  static long bio_ctrl(BIO* b, int cmd, long num, void* ptr);

  std::shared_ptr<TlsContext> ctx_;  // outlives ssl_
  SSL* ssl_;
  const char* input_ = nullptr;  // fed, not yet read by OpenSSL
  size_t input_len_ = 0;
  std::string output_;  // records for the socket
  std::string error_;
};

}  // namespace ringkv::net
