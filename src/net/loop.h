// libuv event loops and timers wrapped in RAII types that respect libuv's lifecycle: a handle's
// memory is freed in its close callback, never before.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ringkv::net {

class EventLoop {
 public:
  explicit EventLoop(int index = 0);
  // REQUIRES: the loop has stopped (stop() and join(), or run() returned).
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  uv_loop_t* uv() { return &loop_; }
  int index() const { return index_; }

  // Runs the loop on a new thread / on the calling thread until stop().
  void start(std::string name);
  void run();
  void join();
  // Thread-safe: runs every stop hook on the loop thread (they close their handles), after
  // which the loop ends once the handles' close callbacks have run.
  void stop();
  bool stopping() const { return stopping_.load(); }

  // Thread-safe: runs fn on the loop thread, in the order posted.
  void post(std::function<void()> fn);
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_id_.load(); }

  // Loop thread only. Hooks run once, when the loop stops; the returned id removes one.
  size_t add_stop_hook(std::function<void()> hook);
  void remove_stop_hook(size_t id);
  // Loop thread only. fn runs at the end of the current loop turn (after I/O callbacks), once
  // per call; used to coalesce writes.
  void at_end_of_turn(std::function<void()> fn);
  // Loop thread only: fn runs at the end of the next turn, which comes without waiting for I/O.
  void at_end_of_next_turn(std::function<void()> fn);
  // Loop thread only: whether the loop's poll has events ready now, so the next turn will not
  // sleep (asked once per turn; later calls in the same turn give the first answer).
  bool events_ready();

  // Loop thread only: the time the current turn started (libuv's cached clock, ms).
  uint64_t now_ms() { return uv_now(&loop_); }

  // Thread-safe. After a turn that served requests the loop keeps polling with a zero timeout for
  // up to `us` microseconds before it sleeps in epoll_wait again (0: never), so that a request
  // arriving meanwhile finds it awake: the sender's kernel then has no sleeping thread to wake,
  // which on a request/reply workload is a large part of each round trip. Polling is allowed
  // only while the loop's thread seldom waits for a CPU (see busy_poll_turn).
  void set_busy_poll_us(uint32_t us) { busy_poll_ns_.store(uint64_t{us} * 1000); }
  // Thread-safe: the share of its time (percent) the loop's thread may wait for a CPU and still
  // poll (default 10; 100: any).
  void set_busy_poll_max_wait_percent(uint32_t p) { max_wait_percent_.store(p); }
  // How many times polling was stopped because the thread had to wait for a CPU.
  uint64_t busy_poll_backoffs() const { return backoffs_.load(std::memory_order_relaxed); }
  // How many times polling was stopped because it seldom caught a request.
  uint64_t busy_poll_idle_stops() const { return idle_stops_.load(std::memory_order_relaxed); }
  // Thread-safe. While the loop's thread has to wait for a CPU (the share above; measured every
  // 100 ms), it yields its core (sched_yield) at the end of each turn, once the turn's writes are
  // out: the threads those woke (clients, peers) run first, and the next poll finds more of
  // their requests ready at once, so every process wakes less often per request. On an idle core
  // the yield returns at once. A window whose yields took over 75 % of it (the core went to a
  // thread that kept it for a time slice each time, such as a CPU-bound process: the yields only
  // delayed this loop) stops yielding for 1 s, twice as long after each such window in a row, up
  // to 16 s. Default on.
  void set_yield_when_contended(bool on) { yield_when_contended_.store(on); }
  // How many turns ended with such a yield, and the time they took in all (ns).
  uint64_t contended_yields() const { return yields_.load(std::memory_order_relaxed); }
  uint64_t contended_yield_ns() const { return yield_ns_.load(std::memory_order_relaxed); }
  // How many times yielding stopped because its yields took too long.
  uint64_t yield_backoffs() const { return yield_backoffs_.load(std::memory_order_relaxed); }
  // Loop thread only: whether the last full window found the thread waiting for a CPU.
  bool contended() const { return contended_; }
  // Loop thread only: whether the loop is polling without sleeping now.
  bool busy_polling() const;
  // Loop thread only. True when the current turn has run for more than `ms`, or a turn that
  // ended less than `ms` ago ran that long (the process was stopped, a callback was busy, or the
  // loop slept that long): data read now may have waited in the kernel that long, and a peer may
  // have given up on it. (Not only the previous turn: a connection accepted as the loop resumes
  // is read a turn or two later.)
  bool stalled_for(uint64_t ms) const {
    const uint64_t now = uv_hrtime(), limit = ms * 1'000'000;
    return last_check_ns_ != 0 && (now - last_check_ns_ > limit ||
                                   (long_turn_ns_ > limit && now - long_turn_end_ns_ <= limit));
  }

 private:
  static void on_async(uv_async_t* h);
  static void on_check(uv_check_t* h);
  void drain_posted();
  void measure_window(uint64_t now);
  void busy_poll_turn(bool served);
  bool run_delay_ns(uint64_t* out);

  int index_;
  uv_loop_t loop_;
  uv_async_t* async_;  // freed in its close callback
  uv_check_t* check_;
  // Active while busy-polling: an active idle handle makes libuv poll with a zero timeout.
  uv_idle_t* spin_;
  std::atomic<uint64_t> busy_poll_ns_{0};
  std::atomic<uint64_t> backoffs_{0};
  std::atomic<uint64_t> idle_stops_{0};
  std::atomic<uint64_t> max_wait_percent_{10};
  int schedstat_fd_ = -1;  // /proc/thread-self/schedstat of the loop thread; -2: unavailable
  std::atomic<bool> yield_when_contended_{true};
  std::atomic<uint64_t> yields_{0};
  std::atomic<uint64_t> yield_ns_{0};
  std::atomic<uint64_t> yield_backoffs_{0};
  uint64_t window_yields_ = 0;     // this window: yields...
  uint64_t window_yield_ns_ = 0;   // ...and the time they took
  int yield_windows_to_wait_ = 0;  // windows still to pass before yielding again
  int yield_backoff_ = 10;         // the next back-off's length, in windows (kBackoffWindows first)
  bool contended_ = false;         // the last full window's run-queue wait was over the share
  bool poll_allowed_ = false;
  int windows_to_wait_ = 0;  // clean windows still needed before polling again
  uint64_t window_start_ns_ = 0;
  uint64_t window_delay_ns_ = 0;   // the thread's run-queue wait at window_start_ns_
  uint64_t last_served_ns_ = 0;    // end of the last turn that served requests
  uint64_t window_hits_ = 0;       // this window: turns that served requests while polling
  uint64_t window_misses_ = 0;     // this window: polling that ran out without a request
  uint64_t last_check_ns_ = 0;     // end of the previous turn (see stalled_for)
  uint64_t long_turn_ns_ = 0;      // the longest turn of the last ones, end to end...
  uint64_t long_turn_end_ns_ = 0;  // ...and when it ended
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> end_of_turn_;
  std::vector<std::function<void()>> next_turn_;  // at_end_of_next_turn calls of this turn...
  std::vector<std::function<void()>> due_;        // ...and of the previous one, to run now
  uv_idle_t* due_idle_;    // active while due_ or next_turn_ holds any: the next poll does not wait
  int events_ready_ = -1;  // events_ready's answer this turn; -1: not asked yet
  std::vector<std::pair<size_t, std::function<void()>>> stop_hooks_;
  size_t next_hook_id_ = 1;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::atomic<bool> stopping_{false};
};

// A repeating or one-shot timer. Loop thread only.
class Timer {
 public:
  explicit Timer(EventLoop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb);
  void stop();
  void close();  // idempotent; the timer never fires after it

 private:
  struct Handle {
    uv_timer_t timer;
    std::function<void()> cb;
  };
  EventLoop& loop_;
  Handle* h_;
  size_t hook_ = 0;
};

// Runs a callback on the loop when the process receives a signal. Loop thread only.
class SignalWatcher {
 public:
  SignalWatcher(EventLoop& loop, int signum, std::function<void()> cb);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  void close();

 private:
  struct Handle {
    uv_signal_t sig;
    std::function<void()> cb;
  };
  EventLoop& loop_;
  Handle* h_;
  size_t hook_ = 0;
};

}  // namespace ringkv::net
