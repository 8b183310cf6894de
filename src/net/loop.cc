#include "net/loop.h"

#include <pthread.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>

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
  while (!self->end_of_turn_.empty()) {
    auto batch = std::move(self->end_of_turn_);
    self->end_of_turn_.clear();
    for (auto& fn : batch) fn();
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
