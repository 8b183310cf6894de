// A small, fixed set of threads that run the per-server groups of a batch in parallel. The calling
// thread works too: it claims items like any worker, so a call never waits for a busy pool to
// start its work, and it returns once every item of its own call is done.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ringkv::client {

class Workers {
 public:
  // threads may be 0: run() then does everything on the caller.
  explicit Workers(size_t threads);
  // Joins the threads. REQUIRES: no run() in progress.
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Calls task(i) once for every i in [0, n), on the caller and the workers, and returns when all
  // calls have returned. task must not throw. Safe to call from many threads at once.
  void run(size_t n, const std::function<void(size_t)>& task);

 private:
  struct Job;
  static void work_on(Job& job);
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_; one entry per helper wanted
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace ringkv::client
