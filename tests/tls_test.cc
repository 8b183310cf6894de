// TLS on client connections (tls-port and the tls-* directives), with real TLS clients: the same
// requests and replies as on the plain port, client certificates checked as Redis checks them
// (the same cases run against redis-server), bad input and bad configuration refused clearly,
// certificates swapped with CONFIG SET, and keys another node owns reached over TLS.
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "cluster_harness.h"
#include "server_harness.h"
#include "tls_support.h"

using namespace ringkv::testing;

namespace {

// Runs the binary to its exit (10 s at most) and returns its exit status and output.
std::pair<int, std::string> run_to_exit(const std::string& binary,
                                        const std::vector<std::string>& args) {
  std::string cmd = "timeout 10 '" + binary + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Whether a TLS client with this certificate (and TLS version) gets a PONG.
bool pong(int port, const TestPki& pki, const std::string& cert, const std::string& key,
          const std::string& protocol = "") {
  TlsClient c(port, pki.path("ca.pem"), cert.empty() ? "" : pki.path(cert),
              key.empty() ? "" : pki.path(key), protocol);
  if (!c.connected()) return false;
  Reply r = c.command({"PING"});
  return r && show(r.get()) == "+PONG";
}

}  // namespace

TEST_CASE("tls: a TLS client reads and writes through tls-port as through port") {
  TestPki pki;
  const int tls_port = free_port();
  ServerProcess server(pki.server_flags(tls_port));
  TlsClient c(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
  REQUIRE(c.connected());
  CHECK(c.server_cn() == "server");

  CHECK(show(c.command({"SET", "greeting", "hello"}).get()) == "+OK");
  CHECK(show(c.command({"GET", "greeting"}).get()) == "$hello");
  // A value of many TLS records, both ways, byte for byte.
  std::string big(5 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  CHECK(show(c.command({"SET", "big", big}).get()) == "+OK");
  Reply got = c.command({"GET", "big"});
  REQUIRE(got);
  REQUIRE(got->type == REDIS_REPLY_STRING);
  CHECK(std::string(got->str, got->len) == big);

  // A pipeline of 2,000 requests in one write: every reply, in order.
  std::string pipeline;
  for (int i = 0; i < 2000; ++i) pipeline += TlsClient::encode({"INCR", "counter"});
  REQUIRE(c.send_raw(pipeline));
  for (int i = 1; i <= 2000; ++i) {
    Reply r = c.read_reply();
    REQUIRE(r);
    REQUIRE(show(r.get()) == ":" + std::to_string(i));
  }
  // An error reply, then a protocol error: its reply, then the connection closes, as on the
  // plain port.
  CHECK(show(c.command({"INCR", "greeting"}).get()) ==
        "-ERR value is not an integer or out of range");
  REQUIRE(c.send_raw("*1\r\n$foo\r\n"));
  CHECK(show(c.read_reply().get()) == "-ERR Protocol error: invalid bulk length");
  CHECK(c.read_reply() == nullptr);

  // The plain port sees the same data.
  Context plain = server.client();
  CHECK(q(plain.get(), {"GET", "greeting"}) == "$hello");
  CHECK(q(plain.get(), {"STRLEN", "big"}) == ":" + std::to_string(big.size()));
  CHECK(q(plain.get(), {"GET", "counter"}) == "$2000");
  // tls-port is fixed at start, as the plain port.
  CHECK(q(plain.get(), {"CONFIG", "SET", "tls-port", "1"}) ==
        "-ERR CONFIG SET failed (possibly related to argument 'tls-port') - can't set immutable "
        "config");
}

TEST_CASE("tls: tls-auth-clients decides which client certificates get in as Redis does") {
  TestPki pki;
  struct Case {
    std::string auth;
    bool with_cert, no_cert, stranger;
  };
  const std::vector<Case> cases = {
      {"yes", true, false, false}, {"optional", true, true, false}, {"no", true, true, true}};
  for (const std::string& binary :
       {std::string(RINGKV_SERVER_PATH), std::string(REDIS_SERVER_PATH)}) {
    for (const Case& k : cases) {
      INFO(binary << " tls-auth-clients " << k.auth);
      const int tls_port = free_port();
      std::vector<std::string> flags = pki.server_flags(tls_port);
      flags.insert(flags.end(), {"--tls-auth-clients", k.auth});
      ServerProcess server(flags, binary);
      CHECK(pong(tls_port, pki, "client.pem", "client-key.pem") == k.with_cert);
      CHECK(pong(tls_port, pki, "", "") == k.no_cert);
      CHECK(pong(tls_port, pki, "stranger.pem", "stranger-key.pem") == k.stranger);
      // Refused clients leave the server serving.
      CHECK(q(server.client().get(), {"PING"}) == "+PONG");
    }
  }
}

TEST_CASE("tls: plaintext and garbage on tls-port close that connection and nothing else") {
  TestPki pki;
  const int tls_port = free_port();
  ServerProcess server(pki.server_flags(tls_port));
  TlsClient good(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
  REQUIRE(good.connected());
  REQUIRE(show(good.command({"SET", "kept", "yes"}).get()) == "+OK");

  // A Redis client that forgot --tls: its request is not a TLS record.
  Context plain = connect(tls_port);
  REQUIRE(plain);
  REQUIRE(plain->err == 0);
  Reply r = command(plain.get(), {"PING"});
  CHECK(r == nullptr);  // closed, with no reply

  // Random bytes, then a ClientHello cut short, then a record header claiming 16 MB.
  const std::vector<std::string> garbage = {
      std::string("\x9c\x01\xff\x00garbage\r\n", 13),
      std::string("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11),
      std::string("\x17\x03\x03\xff\xff", 5) + std::string(70000, 'A')};
  for (const std::string& g : garbage) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(tls_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ssize_t w = ::write(fd, g.data(), g.size());
    CHECK(w > 0);
    ::shutdown(fd, SHUT_WR);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    // The server closes it (an alert at most comes first): read reaches end of file.
    ssize_t n;
    std::string got;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    // Closed (a reset when the server closes with bytes it did not read), not timed out.
    CHECK((n == 0 || errno == ECONNRESET));
    CHECK(got.find("PONG") == std::string::npos);
    ::close(fd);
  }
  CHECK(show(good.command({"GET", "kept"}).get()) == "$yes");
  CHECK(q(server.client().get(), {"GET", "kept"}) == "$yes");
  CHECK(server.alive());
}

TEST_CASE("tls: a bad TLS configuration stops the server with the reason") {
  TestPki pki;
  const std::string port = std::to_string(free_port());
  const std::string tls_port = std::to_string(free_port());
  const std::vector<std::string> base = {"--port",    port,         "--bind",
                                         "127.0.0.1", "--tls-port", tls_port};
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{}, "tls-cert-file is not set"},
      {{"--tls-cert-file", pki.path("server.pem")}, "tls-key-file is not set"},
      {{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem")},
       "Either tls-ca-cert-file or tls-ca-cert-dir must be specified"},
      {{"--tls-cert-file", pki.path("missing.pem"), "--tls-key-file", pki.path("server-key.pem"),
        "--tls-auth-clients", "no"},
       "Failed to load certificate: " + pki.path("missing.pem")},
      {{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("client-key.pem"),
        "--tls-auth-clients", "no"},
       "does not match the certificate"},
      {{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key-enc.pem"),
        "--tls-auth-clients", "no"},
       "Failed to load private key"},
      {{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"),
        "--tls-auth-clients", "no", "--tls-protocols", "SSLv3"},
       "Invalid tls-protocols specified"},
      {{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"),
        "--tls-auth-clients", "maybe"},
       "tls-auth-clients"},
      {{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"),
        "--tls-auth-clients", "no", "--tls-port", port},
       "tls-port " + port + " is also port"},
  };
  for (const Case& k : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), k.flags.begin(), k.flags.end());
    auto [status, out] = run_to_exit(RINGKV_SERVER_PATH, args);
    std::string flags;
    for (const auto& a : k.flags) flags += a + " ";
    INFO("flags: " << flags << "output: " << out);
    CHECK(status == 1);
    CHECK(contains(out, k.says));
  }
  // A tls-port another ringkv-server holds (it could share it through SO_REUSEPORT).
  {
    ServerProcess holder;
    std::vector<std::string> args = {"--port",
                                     port,
                                     "--bind",
                                     "127.0.0.1",
                                     "--tls-port",
                                     std::to_string(holder.port()),
                                     "--tls-cert-file",
                                     pki.path("server.pem"),
                                     "--tls-key-file",
                                     pki.path("server-key.pem"),
                                     "--tls-auth-clients",
                                     "no"};
    auto [status, out] = run_to_exit(RINGKV_SERVER_PATH, args);
    INFO(out);
    CHECK(status == 1);
    CHECK(contains(out, "Could not create server TCP listening socket 127.0.0.1:" +
                            std::to_string(holder.port())));
  }
  // DH parameters: a file that is not one is refused; the ffdhe2048 group loads.
  {
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--tls-cert-file", pki.path("server.pem"), "--tls-key-file",
                             pki.path("server-key.pem"), "--tls-auth-clients", "no",
                             "--tls-dh-params-file", pki.path("ca.pem")});
    auto [status, out] = run_to_exit(RINGKV_SERVER_PATH, args);
    CHECK(status == 1);
    CHECK(contains(out, "Failed to load DH parameters: " + pki.path("ca.pem")));
  }
  // The encrypted key with its passphrase is fine.
  const int tls = free_port();
  ServerProcess server({"--tls-port", std::to_string(tls), "--tls-cert-file",
                        pki.path("server.pem"), "--tls-key-file", pki.path("server-key-enc.pem"),
                        "--tls-key-file-pass", "secret", "--tls-auth-clients", "no",
                        "--tls-dh-params-file", pki.path("dh.pem")});
  CHECK(pong(tls, pki, "", ""));
}

TEST_CASE("tls: CONFIG SET swaps the certificate for new connections and refuses a broken one") {
  TestPki pki;
  const int tls_port = free_port();
  // Two event loops accept TLS connections while the context is swapped.
  std::vector<std::string> flags = pki.server_flags(tls_port);
  flags.insert(flags.end(), {"--io-threads", "2"});
  ServerProcess server(flags);
  Context plain = server.client();
  TlsClient before(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
  REQUIRE(before.connected());
  REQUIRE(before.server_cn() == "server");

  // A certificate and its key change together in one CONFIG SET.
  CHECK(q(plain.get(), {"CONFIG", "SET", "tls-cert-file", pki.path("server2.pem"), "tls-key-file",
                        pki.path("server2-key.pem")}) == "+OK");
  TlsClient after(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
  REQUIRE(after.connected());
  CHECK(after.server_cn() == "server2");
  CHECK(show(after.command({"PING"}).get()) == "+PONG");
  CHECK(show(before.command({"PING"}).get()) == "+PONG");  // kept its session

  // One without the other does not load: refused, nothing changed.
  std::string refused = q(plain.get(), {"CONFIG", "SET", "tls-cert-file", pki.path("server.pem")});
  CHECK(contains(refused,
                 "-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable "
                 "to update TLS configuration: The private key in "));
  refused = q(plain.get(), {"CONFIG", "SET", "maxclients", "500", "tls-ca-cert-file",
                            pki.path("nothing-here.pem")});
  CHECK(contains(refused,
                 "(possibly related to argument 'tls-ca-cert-file') - Unable to update "
                 "TLS configuration: Failed to configure CA certificate"));
  CHECK(q(plain.get(), {"CONFIG", "GET", "maxclients"}) == "[$maxclients, $10000]");
  CHECK(q(plain.get(), {"CONFIG", "GET", "tls-cert-file"}) ==
        "[$tls-cert-file, $" + pki.path("server2.pem") + "]");
  TlsClient still(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
  REQUIRE(still.connected());
  CHECK(still.server_cn() == "server2");

  // Client certificates become optional for new connections; TLS 1.2 can be turned off.
  CHECK(!pong(tls_port, pki, "", ""));
  CHECK(q(plain.get(), {"CONFIG", "SET", "tls-auth-clients", "optional"}) == "+OK");
  CHECK(pong(tls_port, pki, "", ""));
  CHECK(pong(tls_port, pki, "client.pem", "client-key.pem", "TLSv1.2"));
  CHECK(q(plain.get(), {"CONFIG", "SET", "tls-protocols", "TLSv1.3"}) == "+OK");
  CHECK(!pong(tls_port, pki, "client.pem", "client-key.pem", "TLSv1.2"));
  CHECK(pong(tls_port, pki, "client.pem", "client-key.pem"));
}

TEST_CASE("tls: a TLS client of one node reaches the keys another node owns") {
  TestPki pki;
  const int tls_port = free_port();
  // Node 0 serves TLS clients; node 1 owns part of the keys; peers talk on the plain ports.
  std::vector<std::string> flags = {"--replicas", "1"};
  Cluster cluster(1, false, flags);
  // Cluster starts node 0 itself: a TLS-enabled entry node is started as a second ring member.
  std::vector<std::string> entry = pki.server_flags(tls_port);
  entry.insert(entry.end(),
               {"--replicas", "1", "--node-id", "tls-entry", "--discovery", cluster.discovery()});
  ServerProcess node(entry);
  {
    auto c = cluster.client(0);
    REQUIRE(q(c.get(), {"RING", "ADDSERVER", "tls-entry",
                        "127.0.0.1:" + std::to_string(node.port())}) == "+OK");
  }
  REQUIRE(cluster.wait_idle());
  TlsClient c(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
  REQUIRE(c.connected());
  // 200 keys through the TLS port, in one pipeline: about half are forwarded to n1.
  std::string pipeline;
  for (int i = 0; i < 200; ++i)
    pipeline += TlsClient::encode({"SET", "k" + std::to_string(i), "v" + std::to_string(i)});
  REQUIRE(c.send_raw(pipeline));
  for (int i = 0; i < 200; ++i) REQUIRE(show(c.read_reply().get()) == "+OK");
  int elsewhere = 0;
  Context n1 = cluster.client(0);
  for (int i = 0; i < 200; ++i) {
    std::string k = "k" + std::to_string(i);
    if (q(n1.get(), {"RING", "OWNERS", k}) == "[$n1]") ++elsewhere;
    CHECK(show(c.command({"GET", k}).get()) == "$v" + std::to_string(i));
  }
  CHECK(elsewhere > 50);
  CHECK(elsewhere < 150);
  // A multi-key command split across both nodes.
  Reply m = c.command({"MGET", "k0", "k1", "k2", "k3", "k4", "missing"});
  CHECK(show(m.get()) == "[$v0, $v1, $v2, $v3, $v4, (nil)]");
  CHECK(show(c.command({"DBSIZE"}).get()) == ":200");
}

TEST_CASE("tls: a TLS client over maxclients gets the error and is closed") {
  TestPki pki;
  const int tls_port = free_port();
  ServerProcess server(pki.server_flags(tls_port));
  Context plain = server.client();
  REQUIRE(q(plain.get(), {"CONFIG", "SET", "maxclients", "1"}) == "+OK");
  {
    TlsClient c(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
    REQUIRE(c.connected());
    // The refusal waits for the handshake, then comes over TLS; nothing else is read.
    Reply r = c.read_reply();
    CHECK(show(r.get()) == "-ERR max number of clients reached");
    CHECK(c.command({"PING"}) == nullptr);
  }
  // The refused connection is gone from the server, not held open.
  CHECK(eventually([&] {
    return contains(q(plain.get(), {"INFO", "clients"}), "connected_clients:1\r\n");
  }));
  CHECK(contains(q(plain.get(), {"INFO", "stats"}), "rejected_connections:1\r\n"));
}

TEST_CASE("tls: a client reading a long reply slowly is not closed as idle by timeout") {
  // Redis counts the output a client takes as activity: `timeout` closes clients that neither
  // send nor receive. The reader below takes 24 MB, 16 MB of it slowly (about 3 s, past the 1 s
  // timeout: the server's cron checks it every second), then the rest at full speed.
  TestPki pki;
  const int tls_port = free_port();
  ServerProcess server(pki.server_flags(tls_port));
  Context plain = server.client();
  const std::string big(24 << 20, 'v');
  REQUIRE(q(plain.get(), {"SET", "big", big}) == "+OK");
  REQUIRE(q(plain.get(), {"CONFIG", "SET", "timeout", "1"}) == "+OK");
  const size_t reply_size = big.size() + std::to_string(big.size()).size() + 5;
  const size_t slow_part = reply_size - (8 << 20);

  // Reads the reply through `read` (returns bytes read, <= 0 when the connection ended).
  auto read_reply = [&](auto&& read) {
    size_t got = 0;
    char buf[16384];
    while (got < reply_size) {
      long n = read(buf, got < slow_part ? 8192 : sizeof buf);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
      if (got < slow_part) std::this_thread::sleep_for(std::chrono::microseconds(800));
    }
    return got;
  };
  SECTION("over TLS") {
    TlsClient c(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key());
    REQUIRE(c.connected());
    REQUIRE(c.send_raw(TlsClient::encode({"GET", "big"})));
    size_t got = read_reply([&](char* b, int n) { return SSL_read(c.ssl(), b, n); });
    CHECK(got == reply_size);
  }
  SECTION("on the plain port") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 64 * 1024;  // the server's writes follow the reader, not a large window
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server.port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    std::string req = TlsClient::encode({"GET", "big"});
    REQUIRE(::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
    size_t got = read_reply([&](char* b, int n) { return static_cast<long>(::read(fd, b, n)); });
    ::close(fd);
    CHECK(got == reply_size);
  }
  CHECK(server.alive());
}

TEST_CASE("tls: sessions are resumed unless tls-session-caching is no") {
  TestPki pki;
  const int tls_port = free_port();
  ServerProcess server(pki.server_flags(tls_port));
  Context plain = server.client();
  for (const std::string protocol : {"TLSv1.2", "TLSv1.3"}) {
    for (const bool caching : {true, false}) {
      INFO(protocol << " tls-session-caching " << (caching ? "yes" : "no"));
      REQUIRE(q(plain.get(), {"CONFIG", "SET", "tls-session-caching", caching ? "yes" : "no"}) ==
              "+OK");
      SSL_SESSION* session = nullptr;
      {
        TlsClient first(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key(),
                        protocol == "TLSv1.2" ? protocol : "");
        REQUIRE(show(first.command({"PING"}).get()) == "+PONG");
        CHECK(!first.resumed());
        session = first.session();
      }
      REQUIRE(session != nullptr);
      TlsClient again(tls_port, pki.path("ca.pem"), pki.client_cert(), pki.client_key(),
                      protocol == "TLSv1.2" ? protocol : "", session);
      SSL_SESSION_free(session);
      CHECK(show(again.command({"PING"}).get()) == "+PONG");
      CHECK(again.resumed() == caching);
    }
  }
  // Redis's directives for TLS between its own nodes take their default only.
  CHECK(q(plain.get(), {"CONFIG", "GET", "tls-cluster"}) == "[$tls-cluster, $no]");
  auto [status, out] = run_to_exit(
      RINGKV_SERVER_PATH, {"--port", std::to_string(free_port()), "--tls-replication", "yes"});
  CHECK(status == 1);
  CHECK(contains(out, "peer links (forwarding, replication) do not speak TLS"));
}
