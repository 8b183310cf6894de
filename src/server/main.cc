// ringkv-server: ringkv-server [/path/to/ringkv.conf] [--<directive> <value> ...]
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cluster/ring_config.h"
#include "common/log.h"
#include "config/config.h"
#include "server/server.h"
#include "server/version.h"

using namespace ringkv;

namespace {

void usage() {
  std::fprintf(stderr,
               "Usage: ringkv-server [/path/to/ringkv.conf] [options]\n"
               "       ringkv-server -v or --version\n"
               "       ringkv-server -h or --help\n\n"
               "Options are configuration directives as flags, for example:\n"
               "       ringkv-server --port 7000\n"
               "       ringkv-server /etc/ringkv/ringkv.conf --loglevel verbose --maxmemory 2gb\n\n"
               "Every directive, with its default, is documented in conf/ringkv.conf.\n");
}

// Settings that are each valid alone but not together, or that RING ADDSERVER would refuse later.
Status check_cluster_settings(const config::Config& cfg) {
  const std::string id = cfg.get("node-id");
  if (!id.empty()) {
    Status st = cluster::validate_server_id(id);
    if (!st.is_ok()) return Status::invalid_argument("node-id: " + st.message());
  }
  const int64_t n = cfg.get_int("replicas");
  // The default write quorum (2) is capped at the copies there are; one given explicitly must fit.
  const int64_t w = cfg.get_int("write-quorum"), r = cfg.get_int("read-quorum");
  if (w > n && cfg.get("write-quorum") != config::find_directive("write-quorum")->default_value)
    return Status::invalid_argument("write-quorum " + std::to_string(w) +
                                    " is more than replicas " + std::to_string(n) +
                                    ": a write could never be held by that many copies");
  if (r > n)
    return Status::invalid_argument("read-quorum " + std::to_string(r) + " is more than replicas " +
                                    std::to_string(n) +
                                    ": a read could never find that many copies");
  return Status::ok();
}

LogLevel parse_level(const std::string& v) {
  if (v == "debug") return LogLevel::kDebug;
  if (v == "verbose") return LogLevel::kVerbose;
  if (v == "warning") return LogLevel::kWarning;
  if (v == "nothing") return LogLevel::kNothing;
  return LogLevel::kNotice;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-v" || args[0] == "--version")) {
    std::printf("ringkv server v=%s (Redis protocol %s compatible)\n", server::kRingkvVersion,
                server::kRedisCompatVersion);
    return 0;
  }
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
    usage();
    return 0;
  }
  config::Config cfg;
  size_t first_flag = 0;
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    Status st = cfg.load_file(args[0]);
    if (!st.is_ok()) {
      std::fprintf(stderr, "\n*** FATAL CONFIG FILE ERROR (ringkv %s) ***\n%s\n",
                   server::kRingkvVersion, st.message().c_str());
      return 1;
    }
    first_flag = 1;
  }
  Status st = cfg.load_args(
      std::vector<std::string>(args.begin() + static_cast<long>(first_flag), args.end()));
  if (st.is_ok()) st = check_cluster_settings(cfg);
  if (!st.is_ok()) {
    std::fprintf(stderr, "\n*** FATAL CONFIG ERROR (ringkv %s) ***\n%s\n", server::kRingkvVersion,
                 st.message().c_str());
    return 1;
  }
  std::string err;
  if (!log_setup(cfg.get("logfile"), parse_level(cfg.get("loglevel")), &err)) {
    std::fprintf(stderr, "ringkv: %s\n", err.c_str());
    return 1;
  }
  if (cfg.get_bool("daemonize")) {
    // As Redis does: standard input, output and error go to /dev/null (so a shell pipe or
    // $(...) that started the server is not held open); the log goes to `logfile`.
    if (daemon(1, 0) != 0) {
      std::fprintf(stderr, "ringkv: daemonize failed: %s\n", std::strerror(errno));
      return 1;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  server::Server srv(cfg);
  st = srv.start();
  if (!st.is_ok()) {
    LOG_WARNING("%s", st.message().c_str());
    std::fprintf(stderr, "ringkv: %s\n", st.message().c_str());
    return 1;
  }
  std::string pidfile = cfg.get("pidfile");
  if (!pidfile.empty()) {
    std::ofstream f(pidfile);
    f << getpid() << "\n";
    f.close();
    if (!f) LOG_WARNING("Failed to write PID file '%s': %s", pidfile.c_str(), std::strerror(errno));
  }
  LOG_NOTICE("ringkv %s started, pid=%d, port=%d, io-threads=%d", server::kRingkvVersion,
             static_cast<int>(getpid()), srv.port(), srv.io_threads());
  LOG_NOTICE("Ready to accept connections tcp");
  srv.run();
  if (!pidfile.empty()) unlink(pidfile.c_str());
  LOG_NOTICE("ringkv stopped");
  return 0;
}
