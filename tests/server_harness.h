// Starts ringkv-server (or redis-server) as a child process on a free loopback port for a test,
// and always stops it: the destructor kills the process, even when the test fails.
#pragma once

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef RINGKV_SERVER_PATH
#error "RINGKV_SERVER_PATH must point at the ringkv-server binary"
#endif

namespace ringkv::testing {

// A port the kernel considers free right now (bind to 0, read it back, close).
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

struct RedisReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, RedisReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

inline Context connect(int port, int timeout_ms = 5000) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c != nullptr && c->err == 0) redisSetTimeout(c, tv);
  return Context(c);
}

// Sends one command given as separate arguments (binary-safe).
inline Reply command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data())));
}

// Resumes SIGSTOPped processes whatever happens in the test.
struct ContinueOnExit {
  std::vector<pid_t> pids;
  ~ContinueOnExit() {
    for (pid_t p : pids) ::kill(p, SIGCONT);
  }
};

// A server process for one test. Extra flags are passed as "--name value" pairs.
class ServerProcess {
 public:
  // port 0: a free port, picked again at each start(); otherwise always that port.
  explicit ServerProcess(std::vector<std::string> flags = {},
                         std::string binary = RINGKV_SERVER_PATH, int port = 0)
      : binary_(std::move(binary)), flags_(std::move(flags)), fixed_port_(port) {
    start();
  }
  // A server that does not exit cleanly when the test is done with it (a crash, a sanitizer's
  // report at exit, a hang at shutdown) fails the test that ran it.
  ~ServerProcess() {
    const bool running = pid_ > 0;
    stop();
    if (running && std::uncaught_exceptions() == 0) {
      INFO(binary_ << " on port " << port_ << ": exit status " << exit_status_
                   << (killed_ ? " (did not stop within 5 s of SIGTERM: killed)" : ""));
      CHECK(clean_exit());
    }
  }
  bool clean_exit() const {
    return !killed_ && WIFEXITED(exit_status_) && WEXITSTATUS(exit_status_) == 0;
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  Context client() const { return connect(port_); }

  void start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = fixed_port_ > 0 ? fixed_port_ : free_port();
      std::vector<std::string> args = {
          binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--loglevel", "warning"};
      if (binary_.find("redis-server") != std::string::npos) {
        args.insert(args.end(), {"--save", "", "--appendonly", "no"});
      }
      args.insert(args.end(), flags_.begin(), flags_.end());
      pid_ = ::fork();
      if (pid_ == 0) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(binary_.c_str(), argv.data());
        std::perror("execv");
        ::_exit(127);
      }
      if (wait_ready()) return;
      stop();
    }
    throw std::runtime_error("server did not start: " + binary_);
  }

  // Stops the process (if it runs) and starts it again with the same flags on the same port, as
  // an operator restarts a node at its address.
  void restart_same_port() {
    stop();
    fixed_port_ = port_;
    start();
  }

  // SIGKILL, as a crash would.
  void kill_hard() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      killed_ = true;
    }
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {  // up to 5 s for a clean exit, then SIGKILL
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = status;
        killed_ = false;
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_hard();
  }

  // True if the process is still running (it has not crashed).
  bool alive() {
    if (pid_ <= 0) return false;
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }
  int exit_status() const { return exit_status_; }

 private:
  // Polls with PING until the server answers (this is readiness, not a timing assumption).
  bool wait_ready() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // exited (port taken, bad flag)
      }
      Context c = connect(port_, 200);
      if (c && c->err == 0) {
        Reply r = command(c.get(), {"PING"});
        if (r && r->type == REDIS_REPLY_STATUS) return true;
        // With requirepass the server answers, but with NOAUTH: it is up all the same.
        if (r && r->type == REDIS_REPLY_ERROR &&
            std::string(r->str, r->len).rfind("NOAUTH", 0) == 0)
          return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::string binary_;
  std::vector<std::string> flags_;
  int port_ = 0;
  pid_t pid_ = -1;
  int exit_status_ = 0;
  bool killed_ = false;  // the last stop needed SIGKILL
  int fixed_port_ = 0;
};

// A reply as one comparable string: +status, -error, :integer, $bulk, (nil), [a, b, ...].
inline std::string show(const redisReply* r) {
  if (r == nullptr) return "(no reply)";
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return "+" + std::string(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return "-" + std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return ":" + std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_STRING:
      return "$" + std::string(r->str, r->len);
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < r->elements; ++i) out += (i ? ", " : "") + show(r->element[i]);
      return out + "]";
    }
  }
  return "(unknown reply type)";
}

// Sends one command and returns its reply rendered by show().
inline std::string q(redisContext* c, const std::vector<std::string>& args) {
  Reply r = command(c, args);
  if (!r) return "(io error: " + std::string(c->errstr) + ")";
  return show(r.get());
}

}  // namespace ringkv::testing
