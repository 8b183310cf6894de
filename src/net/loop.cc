#include "net/loop.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/strings.h"

namespace ringkv::net {

namespace {
// How long the longest recent turn is remembered for stalled_for (longer than any `ms` it is
// asked about).
constexpr uint64_t kLongTurnMemoryNs = 2'000'000'000;

void spin_noop(uv_idle_t*) {}

void check_uv(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "ringkv: %s failed: %s\n", what, uv_strerror(rc));
    std::abort();
  }
}
}  // namespace

EventLoop::EventLoop(int index) : index_(index) {
  check_uv(uv_loop_init(&loop_), "uv_loop_init");
  loop_.data = this;
  async_ = new uv_async_t;
  check_uv(uv_async_init(&loop_, async_, &EventLoop::on_async), "uv_async_init");
  async_->data = this;
  check_ = new uv_check_t;
  check_uv(uv_check_init(&loop_, check_), "uv_check_init");
  check_->data = this;
  uv_check_start(check_, &EventLoop::on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  spin_ = new uv_idle_t;
  check_uv(uv_idle_init(&loop_, spin_), "uv_idle_init");
  spin_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(spin_));
  due_idle_ = new uv_idle_t;
  check_uv(uv_idle_init(&loop_, due_idle_), "uv_idle_init");
  uv_unref(reinterpret_cast<uv_handle_t*>(due_idle_));
}

EventLoop::~EventLoop() {
  join();
  // Close whatever is left (the async and check handles, handles of owners that never closed).
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  (void)rc;
  // async_/check_ were closed by the walk with no callback; free them now that the loop is done.
  delete async_;
  delete check_;
  delete spin_;
  delete due_idle_;
  if (schedstat_fd_ >= 0) ::close(schedstat_fd_);
}

void EventLoop::start(std::string name) {
  thread_ = std::thread([this, name] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    run();
  });
}

void EventLoop::run() {
  thread_id_.store(std::this_thread::get_id());
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void EventLoop::join() {
  if (thread_.joinable()) thread_.join();
}

void EventLoop::stop() {
  post([this] {
    if (stopping_.exchange(true)) return;
    // One at a time from the live list: a hook may destroy objects whose own hooks are still
    // registered (and they unregister themselves on destruction).
    while (!stop_hooks_.empty()) {
      auto hook = std::move(stop_hooks_.front().second);
      stop_hooks_.erase(stop_hooks_.begin());
      hook();
    }
    // The loop ends by itself once every handle's close callback has run: nothing else keeps
    // it alive when the async handle is unreferenced.
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  });
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(fn));
  }
  uv_async_send(async_);
}

void EventLoop::on_async(uv_async_t* h) { static_cast<EventLoop*>(h->data)->drain_posted(); }

void EventLoop::drain_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

size_t EventLoop::add_stop_hook(std::function<void()> hook) {
  size_t id = next_hook_id_++;
  stop_hooks_.emplace_back(id, std::move(hook));
  return id;
}

void EventLoop::remove_stop_hook(size_t id) {
  for (size_t i = 0; i < stop_hooks_.size(); ++i) {
    if (stop_hooks_[i].first == id) {
      stop_hooks_.erase(stop_hooks_.begin() + static_cast<long>(i));
      return;
    }
  }
}

void EventLoop::at_end_of_turn(std::function<void()> fn) {
  end_of_turn_.push_back(std::move(fn));
  // A referenced check handle would keep the loop alive; an idle-free turn is enough here
  // because the callbacks are queued from inside I/O callbacks of the same turn.
}

void EventLoop::on_check(uv_check_t* h) {
  auto* self = static_cast<EventLoop*>(h->data);
  const uint64_t now = uv_hrtime();
  const uint64_t turn = self->last_check_ns_ != 0 ? now - self->last_check_ns_ : 0;
  self->last_check_ns_ = now;
  // Remembered for a while (see stalled_for), unless a longer turn comes.
  if (turn >= self->long_turn_ns_ || now - self->long_turn_end_ns_ > kLongTurnMemoryNs) {
    self->long_turn_ns_ = turn;
    self->long_turn_end_ns_ = now;
  }
  self->measure_window(now);
  self->busy_poll_turn(!self->end_of_turn_.empty());
  self->events_ready_ = -1;
  for (auto& fn : self->due_) self->end_of_turn_.push_back(std::move(fn));
  self->due_.clear();
  while (!self->end_of_turn_.empty()) {
    auto batch = std::move(self->end_of_turn_);
    self->end_of_turn_.clear();
    for (auto& fn : batch) fn();
  }
  self->due_.swap(self->next_turn_);
  if (self->due_.empty()) uv_idle_stop(self->due_idle_);
  // The turn's replies and forwarded requests are written: on a contended core, the threads they
  // woke run before this one polls again, so the next poll finds more of their traffic at once.
  // (Not while yields have been found to hand the core to a thread that keeps it.)
  if (self->contended_ && self->yield_windows_to_wait_ == 0 &&
      self->yield_when_contended_.load(std::memory_order_relaxed)) {
    const uint64_t t0 = uv_hrtime();
    sched_yield();
    const uint64_t took = uv_hrtime() - t0;
    ++self->window_yields_;
    self->window_yield_ns_ += took;
    self->yield_ns_.fetch_add(took, std::memory_order_relaxed);
    self->yields_.fetch_add(1, std::memory_order_relaxed);
  }
}

void EventLoop::at_end_of_next_turn(std::function<void()> fn) {
  next_turn_.push_back(std::move(fn));
  uv_idle_start(due_idle_, &spin_noop);
}

bool EventLoop::events_ready() {
  // The backend (epoll) descriptor is readable while it has events ready; poll does not take them.
  if (events_ready_ < 0) {
    pollfd p{uv_backend_fd(&loop_), POLLIN, 0};
    events_ready_ = ::poll(&p, 1, 0) > 0 ? 1 : 0;
  }
  return events_ready_ == 1;
}

// ---------------------------------------------------------------- busy polling

namespace {
// Polling is allowed while the loop's thread seldom waits for a CPU: every kWindowNs the loop
// reads how long its thread sat runnable on a run queue (the kernel's schedstat run_delay) and
// allows polling for the next window only if that was under a share of the window (10 % unless a
// test changes it). A thread that waits for a CPU shares its core with other busy threads (more
// busy servers than cores, as in a local cluster); polling would only take CPU time from them.
constexpr uint64_t kWindowNs = 100'000'000;
// After a window over that share, polling stays off for this many clean windows (a second).
constexpr int kBackoffWindows = 10;
// Polling must catch the next request kHitsPerMiss times for each time it runs out without one
// (judged once a window has kMinPolls misses): a miss costs the whole polling time in CPU, a
// catch saves one wake-up of a sleeping thread.
constexpr uint64_t kHitsPerMiss = 2;
constexpr uint64_t kMinPolls = 16;
// Yields that took over this share of a window (percent) handed the core to a thread that kept
// it (a CPU-bound process, for a whole time slice each time) rather than to the short request
// handlers they woke: yielding then mostly delays this loop's requests, so it stops for
// kBackoffWindows windows, twice as many after each such window in a row, up to
// kMaxYieldBackoffWindows. (Measured on a 2-core VM: the loops of a busy local cluster spend
// about 11 % of their time in yields, of 10-110 µs each on average; a loop beside a process
// spinning on its core, nearly all of it, 1.25 ms per yield on average.)
constexpr uint64_t kMaxYieldPercent = 75;
constexpr int kMaxYieldBackoffWindows = 160;
}  // namespace

bool EventLoop::busy_polling() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(spin_)) != 0;
}

bool EventLoop::run_delay_ns(uint64_t* out) {
  if (schedstat_fd_ == -1) {
    schedstat_fd_ = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (schedstat_fd_ < 0) schedstat_fd_ = -2;  // not available: never poll
  }
  if (schedstat_fd_ < 0) return false;
  char buf[96];
  ssize_t n = ::pread(schedstat_fd_, buf, sizeof(buf), 0);
  if (n <= 0) return false;
  // "<time on cpu> <time waiting on a run queue> <timeslices>", nanoseconds.
  std::string_view text(buf, static_cast<size_t>(n));
  size_t a = text.find(' ');
  if (a == std::string_view::npos) return false;
  size_t b = text.find(' ', a + 1);
  if (b == std::string_view::npos) return false;
  return parse_uint64(text.substr(a + 1, b - a - 1), out);
}

void EventLoop::measure_window(uint64_t now) {
  if (now - window_start_ns_ < kWindowNs) return;
  uint64_t delay = 0;
  const bool first = window_start_ns_ == 0;
  const bool measured = run_delay_ns(&delay) && !first;
  const uint64_t percent = max_wait_percent_.load(std::memory_order_relaxed);
  const bool clean = measured && (percent >= 100 || (delay - window_delay_ns_) * 100 <
                                                        (now - window_start_ns_) * percent);
  contended_ = measured && !clean;
  if (window_yields_ > 0) {
    if (window_yield_ns_ * 100 > (now - window_start_ns_) * kMaxYieldPercent) {
      yield_windows_to_wait_ = yield_backoff_;
      yield_backoff_ = std::min(yield_backoff_ * 2, kMaxYieldBackoffWindows);
      yield_backoffs_.fetch_add(1, std::memory_order_relaxed);
    } else {
      yield_backoff_ = kBackoffWindows;
    }
  } else if (yield_windows_to_wait_ > 0) {
    --yield_windows_to_wait_;
  }
  window_yields_ = window_yield_ns_ = 0;
  // Polling that seldom caught a request only spent CPU time: requests come further apart than
  // the polling time (a lightly loaded node, such as a peer that receives a batch now and then).
  // It stops like a contended window does, so it is tried again a second later.
  const bool caught = window_misses_ < kMinPolls || window_hits_ >= window_misses_ * kHitsPerMiss;
  const bool was_allowed = poll_allowed_ && busy_poll_ns_.load(std::memory_order_relaxed) != 0;
  window_delay_ns_ = delay;
  window_start_ns_ = now;
  window_hits_ = window_misses_ = 0;
  if (first) {
    // The first window only starts the measurement.
  } else if (!clean || !caught) {
    windows_to_wait_ = kBackoffWindows;
    if (was_allowed) (clean ? idle_stops_ : backoffs_).fetch_add(1, std::memory_order_relaxed);
  } else if (windows_to_wait_ > 0) {
    --windows_to_wait_;
  }
  poll_allowed_ = clean && caught && windows_to_wait_ == 0;
}

void EventLoop::busy_poll_turn(bool served) {
  uint64_t limit = busy_poll_ns_.load(std::memory_order_relaxed);
  bool polling = busy_polling();
  if (limit == 0) {
    if (polling) uv_idle_stop(spin_);
    return;
  }
  uint64_t now = uv_hrtime();
  if (served && polling) ++window_hits_;
  if (served) last_served_ns_ = now;
  if (!poll_allowed_) {
    if (polling) uv_idle_stop(spin_);
    return;
  }
  if (served) {
    if (!polling) uv_idle_start(spin_, &spin_noop);
  } else if (polling && now - last_served_ns_ > limit) {
    uv_idle_stop(spin_);
    ++window_misses_;
  }
}

// ---------------------------------------------------------------- Timer

Timer::Timer(EventLoop& loop) : loop_(loop), h_(new Handle) {
  uv_timer_init(loop.uv(), &h_->timer);
  h_->timer.data = h_;
  hook_ = loop_.add_stop_hook([this] {
    hook_ = 0;
    close();
  });
}

Timer::~Timer() {
  if (hook_ != 0) loop_.remove_stop_hook(hook_);
  close();
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb) {
  if (h_ == nullptr) return;
  h_->cb = std::move(cb);
  uv_timer_start(
      &h_->timer,
      [](uv_timer_t* t) {
        auto* h = static_cast<Handle*>(t->data);
        if (h->cb) h->cb();
      },
      timeout_ms, repeat_ms);
}

void Timer::stop() {
  if (h_ != nullptr) uv_timer_stop(&h_->timer);
}

void Timer::close() {
  if (h_ == nullptr) return;
  Handle* h = h_;
  h_ = nullptr;
  uv_timer_stop(&h->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->timer),
           [](uv_handle_t* handle) { delete static_cast<Handle*>(handle->data); });
}

// ---------------------------------------------------------------- SignalWatcher

SignalWatcher::SignalWatcher(EventLoop& loop, int signum, std::function<void()> cb)
    : loop_(loop), h_(new Handle) {
  h_->cb = std::move(cb);
  uv_signal_init(loop.uv(), &h_->sig);
  h_->sig.data = h_;
  uv_signal_start(
      &h_->sig,
      [](uv_signal_t* s, int) {
        auto* h = static_cast<Handle*>(s->data);
        if (h->cb) h->cb();
      },
      signum);
  // A signal watcher alone must not keep the loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(&h_->sig));
  hook_ = loop_.add_stop_hook([this] {
    hook_ = 0;
    close();
  });
}

SignalWatcher::~SignalWatcher() {
  if (hook_ != 0) loop_.remove_stop_hook(hook_);
  close();
}

void SignalWatcher::close() {
  if (h_ == nullptr) return;
  Handle* h = h_;
  h_ = nullptr;
  uv_signal_stop(&h->sig);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->sig),
           [](uv_handle_t* handle) { delete static_cast<Handle*>(handle->data); });
}

}  // namespace ringkv::net
