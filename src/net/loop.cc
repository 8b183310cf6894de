#include "net/loop.h"

#include <pthread.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace ringkv::net {

namespace {
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
  self->busy_poll_turn(!self->end_of_turn_.empty());
  while (!self->end_of_turn_.empty()) {
    auto batch = std::move(self->end_of_turn_);
    self->end_of_turn_.clear();
    for (auto& fn : batch) fn();
  }
}

// ---------------------------------------------------------------- busy polling

namespace {
// A window this long of polling is checked for contention: if the thread got less than
// kMinCpuShare of it on a CPU, other threads want the core (more servers than cores, say), and
// polling would only take time from them and delay this loop's own wake-ups; it pauses for
// kBackoffNs.
constexpr uint64_t kWindowNs = 10'000'000;
constexpr double kMinCpuShare = 0.9;
constexpr uint64_t kBackoffNs = 1'000'000'000;

uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

void spin_noop(uv_idle_t*) {}
}  // namespace

bool EventLoop::busy_polling() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(spin_)) != 0;
}

void EventLoop::busy_poll_turn(bool served) {
  uint64_t limit = busy_poll_ns_.load(std::memory_order_relaxed);
  bool polling = busy_polling();
  if (limit == 0) {
    if (polling) uv_idle_stop(spin_);
    return;
  }
  uint64_t now = uv_hrtime();
  if (served) last_served_ns_ = now;
  if (!polling) {
    if (!served || now < backoff_until_ns_) return;
    uv_idle_start(spin_, &spin_noop);
    window_wall_ns_ = now;
    window_cpu_ns_ = thread_cpu_ns();
    return;
  }
  if (now - last_served_ns_ > limit) {
    uv_idle_stop(spin_);
    return;
  }
  if (now - window_wall_ns_ < kWindowNs) return;
  uint64_t cpu = thread_cpu_ns();
  double share =
      static_cast<double>(cpu - window_cpu_ns_) / static_cast<double>(now - window_wall_ns_);
  if (share < kMinCpuShare) {
    uv_idle_stop(spin_);
    backoff_until_ns_ = now + kBackoffNs;
    return;
  }
  window_wall_ns_ = now;
  window_cpu_ns_ = cpu;
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
