// examples/common/periodic_thread.hpp: call a function at a fixed rate on its own thread.
#ifndef WSREG_EXAMPLES_PERIODIC_THREAD_HPP
#define WSREG_EXAMPLES_PERIODIC_THREAD_HPP

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace examples {

/// Calls `tick(n)` with n = 0, 1, 2, ... every `period` on a thread of its
/// own, against absolute deadlines so the rate does not drift; a late tick
/// is not repeated to catch up. stop() (or the destructor) wakes the thread
/// at once and joins it. Thread safety: stop() is thread-safe.
class PeriodicThread {
 public:
  PeriodicThread(std::chrono::nanoseconds period, std::function<void(std::uint64_t)> tick)
      : period_(period), tick_(std::move(tick)), thread_([this] { run(); }) {}

  ~PeriodicThread() { stop(); }

  /// Stops ticking and joins the thread; no tick runs after it returns.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  void run() {
    auto next = std::chrono::steady_clock::now();
    for (std::uint64_t n = 0;; ++n) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
      }
      tick_(n);
      next += period_;
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now;  // fell behind: skip, do not burst
    }
  }

  const std::chrono::nanoseconds period_;
  const std::function<void(std::uint64_t)> tick_;
  // This mutex synchronizes all access to stopping_.
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

}  // namespace examples

#endif
