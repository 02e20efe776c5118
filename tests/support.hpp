// tests/support.hpp: waiting with deadlines and instrumented senders.
#ifndef WSREG_TESTS_SUPPORT_HPP
#define WSREG_TESTS_SUPPORT_HPP

#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"

namespace wsreg_test {

/// The WebSocket URL of a test server on 127.0.0.1:`port`.
inline std::string url_of(std::uint16_t port) {
  return "ws://127.0.0.1:" + std::to_string(port) + "/";
}

/// CLOCK_REALTIME in ns: the clock of the `sent_ns` field the load client
/// reads in ticks (`{"seq":N,"sent_ns":T}`).
inline std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Polls `condition` until it holds or `timeout` passes; returns its last
/// value. A wait on a condition with a deadline, never a fixed sleep.
template <class Condition>
bool wait_until(Condition condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// Waits until `registry` has applied every operation queued so far by any
/// thread, for checks made after joining other producers. flush() waits only
/// for the calling thread's own operations; stats() waits for everything
/// queued before it, including what callbacks on the actor thread queued
/// while this thread's operations were applied. (size() is not enough: it
/// waits for the lifecycle operations queued before it, not for data.)
template <class Registry>
void drain(Registry& registry) {
  registry.flush();
  static_cast<void>(registry.stats());
}

/// Counts the Sender objects alive, to catch leaks.
struct LiveCount {
  static std::atomic<long>& value() {
    static std::atomic<long> live{0};
    return live;
  }
};

/// Records every payload it is given, in order. Thread-safe.
class RecordingSender final : public wsreg::Sender {
 public:
  RecordingSender() { LiveCount::value().fetch_add(1); }
  ~RecordingSender() override { LiveCount::value().fetch_sub(1); }

  wsreg::SendResult send(const wsreg::Payload& payload) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    received_.push_back(payload);
    return result_;
  }

  /// What the next sends return.
  void answer(wsreg::SendResult result) {
    std::lock_guard<std::mutex> lock(mutex_);
    result_ = result;
  }

  std::vector<wsreg::Payload> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

  std::size_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_.size();
  }

 private:
  // This mutex synchronizes all access to received_ and result_.
  mutable std::mutex mutex_;
  std::vector<wsreg::Payload> received_;
  wsreg::SendResult result_ = wsreg::SendResult::sent;
};

/// Counts deliveries and allocates nothing. Thread-safe.
class CountingSender final : public wsreg::Sender {
 public:
  CountingSender() { LiveCount::value().fetch_add(1); }
  ~CountingSender() override { LiveCount::value().fetch_sub(1); }

  wsreg::SendResult send(const wsreg::Payload& payload) noexcept override {
    last_data_.store(payload.data().data(), std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    return wsreg::SendResult::sent;
  }

  std::size_t count() const { return count_.load(); }
  /// Address of the bytes of the last payload received.
  const char* last_data() const { return last_data_.load(); }

 private:
  std::atomic<std::size_t> count_{0};
  std::atomic<const char*> last_data_{nullptr};
};

/// Holds every send() until release(): lets a test keep the delivering
/// thread (ActorPolicy's actor) busy for as long as it needs. A safety
/// deadline of 30 s lets a failed test end instead of hanging. Thread-safe.
class BlockingSender final : public wsreg::Sender {
 public:
  wsreg::SendResult send(const wsreg::Payload&) noexcept override {
    std::unique_lock<std::mutex> lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(30), [this] { return released_; });
    ++returned_;
    return wsreg::SendResult::sent;
  }

  /// Lets every send, current and future, return.
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

  /// Waits (up to `timeout`) until `n` sends have started; their number.
  std::size_t wait_entered(std::size_t n,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return entered_ >= n; });
    return entered_;
  }

  /// Sends that have returned.
  std::size_t returned() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return returned_;
  }

 private:
  // This mutex synchronizes all access to released_, entered_ and returned_.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool released_ = false;
  std::size_t entered_ = 0;
  std::size_t returned_ = 0;
};

/// Holds each of its first `stages` sends until that stage is let go
/// (let_go(k) lets sends 1..k return; a safety deadline of 30 s lets a
/// failed test end instead of hanging); later sends return at once. Lets a
/// test hold the delivering thread (ActorPolicy's actor) twice, to look at
/// the registry between two data operations. Thread-safe.
class StagedSender final : public wsreg::Sender {
 public:
  explicit StagedSender(std::size_t stages) : stages_(stages) {}

  wsreg::SendResult send(const wsreg::Payload&) noexcept override {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::size_t mine = ++entered_;
    changed_.notify_all();
    if (mine <= stages_) {
      changed_.wait_for(lock, std::chrono::seconds(30), [&] { return released_ >= mine; });
    }
    return wsreg::SendResult::sent;
  }

  /// Lets the sends of stages 1..`stage` return, current and future.
  void let_go(std::size_t stage) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stage > released_) released_ = stage;
    changed_.notify_all();
  }

  /// Waits (up to `timeout`) until `n` sends have started; their number.
  std::size_t wait_entered(std::size_t n,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return entered_ >= n; });
    return entered_;
  }

 private:
  const std::size_t stages_;
  // This mutex synchronizes all access to entered_ and released_.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t entered_ = 0;
  std::size_t released_ = 0;
};

/// The texts a recording sender received, in order.
inline std::vector<std::string> texts_of(const RecordingSender& sender) {
  std::vector<std::string> out;
  for (const wsreg::Payload& p : sender.received()) out.emplace_back(p.data());
  return out;
}

}  // namespace wsreg_test

#endif
