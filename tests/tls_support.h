// TLS for tests: a throwaway PKI written to a temporary directory (made with OpenSSL's API, so
// no openssl binary is needed), and a blocking TLS client that speaks RESP.
#pragma once

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <openssl/dh.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "server_harness.h"

namespace ringkv::testing {

// CA, server and client certificates in a temporary directory, removed at the end.
//   ca.pem                          the CA the server trusts for clients, and clients for it
//   server.pem server-key.pem       CN=server, signed by ca, for 127.0.0.1 and localhost
//   server2.pem server2-key.pem     CN=server2, signed by ca (to swap certificates)
//   server-key-enc.pem              server-key.pem encrypted with the passphrase "secret"
//   client.pem client-key.pem       CN=client, signed by ca
//   other-ca.pem                    another CA
//   stranger.pem stranger-key.pem   CN=stranger, signed by other-ca
//   dh.pem                          DH parameters (the ffdhe2048 group)
class TestPki {
 public:
  TestPki() {
    char tmpl[] = "/tmp/ringkv_tls_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    EVP_PKEY* ca_key = new_key();
    X509* ca = make_cert(ca_key, "ringkv test CA", nullptr, nullptr, true);
    write_cert(ca, "ca.pem");
    EVP_PKEY* other_key = new_key();
    X509* other = make_cert(other_key, "another CA", nullptr, nullptr, true);
    write_cert(other, "other-ca.pem");
    leaf("server", ca, ca_key);
    leaf("server2", ca, ca_key);
    leaf("client", ca, ca_key);
    leaf("stranger", other, other_key);
    {
      EVP_PKEY* k = read_key("server-key.pem");
      FILE* f = std::fopen(path("server-key-enc.pem").c_str(), "w");
      static const char kPass[] = "secret";
      PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), reinterpret_cast<const unsigned char*>(kPass),
                           sizeof kPass - 1, nullptr, nullptr);
      std::fclose(f);
      EVP_PKEY_free(k);
    }
    {
      // dh.pem: the RFC 7919 ffdhe2048 group, for tls-dh-params-file.
      EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr);
      EVP_PKEY* params = nullptr;
      if (pctx == nullptr || EVP_PKEY_paramgen_init(pctx) != 1 ||
          EVP_PKEY_CTX_set_dh_nid(pctx, NID_ffdhe2048) != 1 ||
          EVP_PKEY_paramgen(pctx, &params) != 1)
        throw std::runtime_error("DH parameters");
      BIO* f = BIO_new_file(path("dh.pem").c_str(), "w");
      PEM_write_bio_Parameters(f, params);
      BIO_free(f);
      EVP_PKEY_free(params);
      EVP_PKEY_CTX_free(pctx);
    }
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
  }
  ~TestPki() {
    std::string cmd = "rm -rf '" + dir_ + "'";
    int rc = std::system(cmd.c_str());
    (void)rc;
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string client_cert() const { return path("client.pem"); }
  std::string client_key() const { return path("client-key.pem"); }

  // The server flags for tls-port with server.pem, trusting ca.pem for client certificates.
  std::vector<std::string> server_flags(int tls_port) const {
    return {"--tls-port",     std::to_string(tls_port), "--tls-cert-file",    path("server.pem"),
            "--tls-key-file", path("server-key.pem"),   "--tls-ca-cert-file", path("ca.pem")};
  }

 private:
  static EVP_PKEY* new_key() {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    if (k == nullptr) throw std::runtime_error("EVP_EC_gen");
    return k;
  }
  static void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error("X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509* make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                  bool ca) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    if (ca) {
      add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
      add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
      add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
      add_ext(x, issuer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    }
    X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
    return x;
  }
  void leaf(const std::string& name, X509* issuer, EVP_PKEY* issuer_key) {
    EVP_PKEY* k = new_key();
    X509* x = make_cert(k, name, issuer, issuer_key, false);
    write_cert(x, name + ".pem");
    FILE* f = std::fopen(path(name + "-key.pem").c_str(), "w");
    PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
  }
  void write_cert(X509* x, const std::string& name) {
    FILE* f = std::fopen(path(name).c_str(), "w");
    if (f == nullptr) throw std::runtime_error("fopen " + name);
    PEM_write_X509(f, x);
    std::fclose(f);
  }
  EVP_PKEY* read_key(const std::string& name) {
    FILE* f = std::fopen(path(name).c_str(), "r");
    EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return k;
  }

  std::string dir_;
  long serial_ = 0;
};

// A blocking TLS client on 127.0.0.1 (5 s timeouts). The handshake runs in the constructor:
// connected() says whether it completed. With TLS 1.3 a server that refuses the client's
// certificate says so after the client's side of the handshake is done, so the refusal shows as
// a failed first command.
class TlsClient {
 public:
  // cert/key: the client certificate to present ("" for none); ca: the CA to verify the server.
  // resume: a session of an earlier client to resume (see session()).
  TlsClient(int port, const std::string& ca, const std::string& cert = "",
            const std::string& key = "", const std::string& protocol = "",
            SSL_SESSION* resume = nullptr) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (protocol == "TLSv1.2") SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
    if (!cert.empty()) {
      SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    }
    fd_ = raw_connect(port);
    if (fd_ < 0) {
      error_ = "connect failed";
      return;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "127.0.0.1");
    if (resume != nullptr) SSL_set_session(ssl_, resume);
    ERR_clear_error();
    if (SSL_connect(ssl_) == 1) {
      connected_ = true;
    } else {
      error_ = errors();
    }
    reader_ = redisReaderCreate();
  }
  ~TlsClient() {
    // close_notify, as a client closing cleanly sends it (a session is resumable only then).
    if (ssl_ != nullptr && connected_) SSL_shutdown(ssl_);
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
    if (reader_ != nullptr) redisReaderFree(reader_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool connected() const { return connected_; }
  // This connection's session, for a later client to resume (the caller frees it with
  // SSL_SESSION_free). With TLS 1.3 it comes after the handshake: read a reply first.
  SSL_SESSION* session() { return SSL_get1_session(ssl_); }
  bool resumed() { return SSL_session_reused(ssl_) == 1; }
  const std::string& error() const { return error_; }
  SSL* ssl() { return ssl_; }

  // The common name of the certificate the server presented.
  std::string server_cn() {
    X509* x = SSL_get1_peer_certificate(ssl_);
    if (x == nullptr) return "";
    char buf[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    X509_free(x);
    return buf;
  }

  bool send_raw(const std::string& bytes) {
    if (!connected_) return false;
    size_t off = 0;
    while (off < bytes.size()) {
      int n = SSL_write(ssl_, bytes.data() + off, static_cast<int>(bytes.size() - off));
      if (n <= 0) {
        error_ = errors();
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  static std::string encode(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
  }

  // The next reply, or null when the connection failed or closed (error() says how).
  Reply read_reply() {
    for (;;) {
      void* r = nullptr;
      if (redisReaderGetReply(reader_, &r) != REDIS_OK) return nullptr;
      if (r != nullptr) return Reply(static_cast<redisReply*>(r));
      if (!connected_) return nullptr;
      char buf[16384];
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        error_ = SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? "closed" : errors();
        connected_ = false;
        return nullptr;
      }
      redisReaderFeed(reader_, buf, static_cast<size_t>(n));
    }
  }

  Reply command(const std::vector<std::string>& args) {
    if (!send_raw(encode(args))) return nullptr;
    return read_reply();
  }

 private:
  static int raw_connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  static std::string errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      if (!out.empty()) out += "; ";
      out += buf;
    }
    return out.empty() ? "failed (no OpenSSL reason)" : out;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
  std::string error_;
  redisReader* reader_ = nullptr;
};

}  // namespace ringkv::testing
