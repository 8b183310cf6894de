// Tests for src/net: the event loop's busy polling (how long a loop stays awake after serving
// requests, and that it gives up polling when its thread does not get a core to itself or when
// polling seldom catches a request), and its yielding of a core it has to share.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "net/loop.h"

using namespace ringkv;
using Clock = std::chrono::steady_clock;

namespace {

// Runs fn on the loop thread and returns its result.
template <typename F>
auto on_loop(net::EventLoop& loop, F fn) {
  std::promise<decltype(fn())> p;
  auto f = p.get_future();
  loop.post([&] { p.set_value(fn()); });
  return f.get();
}

// One "turn that served requests", as a connection makes it: work queued for the end of the turn.
// Returns whether the loop is busy-polling once that turn is over.
bool serve(net::EventLoop& loop) {
  std::promise<bool> p;
  auto f = p.get_future();
  loop.post([&] { loop.at_end_of_turn([&] { p.set_value(loop.busy_polling()); }); });
  return f.get();
}

// Serves (bounded) until a turn that served starts polling: polling is allowed only from the
// loop's second 100 ms window on, once the thread is seen not to wait for a CPU.
bool serve_until_polling(net::EventLoop& loop, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline)
    if (serve(loop)) return true;
  return false;
}

// Waits (bounded) until the loop no longer polls; returns whether it stopped.
bool stops_polling(net::EventLoop& loop, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline)
    if (!on_loop(loop, [&] { return loop.busy_polling(); })) return true;
  return false;
}

struct RunningLoop {
  net::EventLoop loop;
  RunningLoop() {
    // A test machine running other tests meanwhile would often keep polling off; the contention
    // test sets the limit back to what servers use.
    loop.set_busy_poll_max_wait_percent(100);
    loop.start("net-test");
  }
  ~RunningLoop() {
    loop.stop();
    loop.join();
  }
};

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0);
}

}  // namespace

TEST_CASE("busy polling: on after a turn that served requests, off after the window") {
  RunningLoop r;
  SECTION("a loop that has served nothing sleeps") {
    r.loop.set_busy_poll_us(1'000'000);
    CHECK_FALSE(on_loop(r.loop, [&] { return r.loop.busy_polling(); }));
  }
  SECTION("after serving it polls, and stops once the window has passed without requests") {
    r.loop.set_busy_poll_us(20'000);  // 20 ms
    uint64_t backoffs = r.loop.busy_poll_backoffs();
    auto start = Clock::now();
    REQUIRE(serve_until_polling(r.loop, std::chrono::seconds(10)));
    CHECK(stops_polling(r.loop, std::chrono::seconds(10)));
    // Not before the window is over, unless the machine is so loaded that the loop's thread
    // waited for a CPU while polling, which stops polling early (and is counted).
    CHECK((Clock::now() - start >= std::chrono::milliseconds(20) ||
           r.loop.busy_poll_backoffs() > backoffs));
  }
  SECTION("busy-poll 0: never polls") {
    r.loop.set_busy_poll_us(0);
    CHECK_FALSE(serve(r.loop));
    CHECK_FALSE(serve(r.loop));
  }
  SECTION("setting it to 0 while polling stops at the next turn") {
    r.loop.set_busy_poll_us(60'000'000);  // a minute: only the change can stop it in time
    REQUIRE(serve_until_polling(r.loop, std::chrono::seconds(10)));
    r.loop.set_busy_poll_us(0);
    CHECK(stops_polling(r.loop, std::chrono::seconds(10)));
  }
}

TEST_CASE("busy polling: a loop that has to share its core with a busy thread stops polling") {
  RunningLoop r;
  // The window is a minute and requests keep coming: only the contention check can end polling.
  r.loop.set_busy_poll_us(60'000'000);
  int cpu = sched_getcpu();
  REQUIRE(cpu >= 0);
  on_loop(r.loop, [&] {
    pin_to_cpu(cpu);
    return 0;
  });
  REQUIRE(serve_until_polling(r.loop, std::chrono::seconds(10)));
  uint64_t backoffs = r.loop.busy_poll_backoffs();
  r.loop.set_busy_poll_max_wait_percent(10);
  std::atomic<bool> done{false};
  std::thread burner([&] {
    pin_to_cpu(cpu);
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!done.load(std::memory_order_relaxed) && Clock::now() < deadline) {
    }
  });
  bool stopped = false;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!stopped && Clock::now() < deadline) stopped = !serve(r.loop);
  done = true;
  burner.join();
  CHECK(stopped);
  CHECK(r.loop.busy_poll_backoffs() > backoffs);
}

TEST_CASE("busy polling: a loop whose polling seldom catches a request stops polling") {
  RunningLoop r;
  // Each request comes only after polling ran out (a lightly loaded node): every poll is a miss.
  r.loop.set_busy_poll_us(1'000);
  REQUIRE(serve_until_polling(r.loop, std::chrono::seconds(10)));
  uint64_t backoffs = r.loop.busy_poll_backoffs();
  bool stopped = false;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!stopped && Clock::now() < deadline) {
    REQUIRE(stops_polling(r.loop, std::chrono::seconds(10)));
    stopped = !serve(r.loop);
  }
  CHECK(stopped);
  CHECK(r.loop.busy_poll_idle_stops() > 0);
  CHECK(r.loop.busy_poll_backoffs() == backoffs);  // not counted as contention
}

namespace {

// A thread spinning on one CPU until stopped (at most 30 s).
struct Burner {
  std::atomic<bool> done{false};
  std::thread t;
  explicit Burner(int cpu)
      : t([this, cpu] {
          pin_to_cpu(cpu);
          auto deadline = Clock::now() + std::chrono::seconds(30);
          while (!done.load(std::memory_order_relaxed) && Clock::now() < deadline) {
          }
        }) {}
  ~Burner() {
    done = true;
    t.join();
  }
};

// A running loop without busy polling, pinned to the test's CPU beside a thread spinning there:
// its thread waits for that CPU about half the time (contended).
struct LoopBesideBurner {
  RunningLoop running;
  net::EventLoop& loop = running.loop;
  std::unique_ptr<Burner> burner;
  LoopBesideBurner() {
    loop.set_busy_poll_us(0);
    loop.set_busy_poll_max_wait_percent(10);
    int cpu = sched_getcpu();
    REQUIRE(cpu >= 0);
    on_loop(loop, [&] {
      pin_to_cpu(cpu);
      return 0;
    });
    burner = std::make_unique<Burner>(cpu);
  }
};

// Serves (bounded) until pred() holds on the loop thread after a turn; returns whether it did.
template <typename P>
bool serve_until(net::EventLoop& loop, P pred, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    serve(loop);
    if (on_loop(loop, pred)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a loop that has to share its core with a busy thread yields it after each turn") {
  LoopBesideBurner r;
  SECTION("yield-when-contended yes (the default)") {
    uint64_t before = r.loop.contended_yields();
    REQUIRE(serve_until(
        r.loop, [&] { return r.loop.contended(); }, std::chrono::seconds(10)));
    serve(r.loop);
    serve(r.loop);
    CHECK(r.loop.contended_yields() > before);
  }
  SECTION("yield-when-contended no: contended, yet no yield") {
    r.loop.set_yield_when_contended(false);
    REQUIRE(serve_until(
        r.loop, [&] { return r.loop.contended(); }, std::chrono::seconds(10)));
    uint64_t before = r.loop.contended_yields();
    for (int i = 0; i < 20; ++i) serve(r.loop);
    CHECK(r.loop.contended_yields() == before);
    r.loop.set_yield_when_contended(true);
    REQUIRE(serve_until(
        r.loop, [&] { return r.loop.contended(); }, std::chrono::seconds(10)));
    serve(r.loop);
    CHECK(r.loop.contended_yields() > before);
  }
}

TEST_CASE("a loop whose yields hand its core to a spinning thread stops yielding for a while") {
  LoopBesideBurner r;
  // Each yield gives the spinning thread a whole time slice: the window is spent in yields.
  REQUIRE(serve_until(
      r.loop, [&] { return r.loop.yield_backoffs() > 0; }, std::chrono::seconds(10)));
  CHECK(r.loop.contended_yields() > 0);
  // The back-off lasts ten windows (1 s): turns for three of them yield no more.
  uint64_t yields = r.loop.contended_yields();
  auto until = Clock::now() + std::chrono::milliseconds(300);
  for (int i = 0; i < 1'000'000 && Clock::now() < until; ++i) serve(r.loop);
  CHECK(on_loop(r.loop, [&] { return r.loop.contended(); }));
  CHECK(r.loop.contended_yields() == yields);
}

TEST_CASE("a loop that does not wait for a CPU never yields") {
  RunningLoop r;  // a wait share of 100 %: never contended, whatever else the machine runs
  r.loop.set_busy_poll_us(0);
  // Turns over at least three 100 ms windows (bounded in count too).
  auto until = Clock::now() + std::chrono::milliseconds(350);
  for (int i = 0; i < 1'000'000 && Clock::now() < until; ++i) serve(r.loop);
  CHECK_FALSE(on_loop(r.loop, [&] { return r.loop.contended(); }));
  CHECK(r.loop.contended_yields() == 0);
}
