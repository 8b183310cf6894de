#include "client/workers.h"

#include <algorithm>
#include <atomic>

namespace ringkv::client {

struct Workers::Job {
  const std::function<void(size_t)>* task = nullptr;  // valid until done == n
  size_t n = 0;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;  // guarded by mu
};

Workers::Workers(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

Workers::~Workers() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Workers::work_on(Job& job) {
  // task is only dereferenced for a claimed index below n, and the caller waits for every claimed
  // index to finish before its task goes away.
  for (;;) {
    size_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.n) return;
    (*job.task)(i);
    std::lock_guard lock(job.mu);
    if (++job.done == job.n) job.cv.notify_all();
  }
}

void Workers::loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    work_on(*job);
  }
}

void Workers::run(size_t n, const std::function<void(size_t)>& task) {
  if (n == 0) return;
  auto job = std::make_shared<Job>();
  job->task = &task;
  job->n = n;
  size_t helpers = std::min(n - 1, threads_.size());
  if (helpers > 0) {
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    if (helpers == 1)
      cv_.notify_one();
    else
      cv_.notify_all();
  }
  work_on(*job);
  std::unique_lock lock(job->mu);
  job->cv.wait(lock, [&] { return job->done == job->n; });
}

}  // namespace ringkv::client
