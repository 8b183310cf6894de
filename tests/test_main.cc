#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <csignal>

int main(int argc, char* argv[]) {
  // A server that closes a connection mid-request (a limit, a kill) must fail the check that
  // sent it, not end the test process by SIGPIPE before it stops the servers it started.
  std::signal(SIGPIPE, SIG_IGN);
  return Catch::Session().run(argc, argv);
}
