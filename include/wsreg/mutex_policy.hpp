// wsreg/mutex_policy.hpp: a std::mutex-guarded map; operations apply in the caller.
#ifndef WSREG_MUTEX_POLICY_HPP
#define WSREG_MUTEX_POLICY_HPP

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wsreg/detail/stats_counters.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// Registry policy: a std::mutex-guarded std::unordered_map from connection
/// id to sender. Every operation runs to completion on the calling thread.
///
/// Ownership: the map owns one std::shared_ptr per connection. A broadcast
/// also holds a shared snapshot of the senders, rebuilt under the lock only
/// after the membership changed, so a broadcast to a stable set takes the
/// lock for O(1) and delivers without it.
///
/// Which calls wait: none waits for anything but the mutex. send() and
/// broadcast() call the recipients' Sender::send on the calling thread,
/// outside the lock, and return when every recipient has queued the payload
/// (the socket writes happen later, on the transport's threads).
///
/// Ordering: payloads from one thread to one connection reach its Sender in
/// call order. Calls from different threads are not ordered with each other:
/// two threads broadcasting at once may reach two connections in different
/// orders (ActorPolicy gives one order to all).
///
/// Linearization: insert/erase apply under the lock; a send or broadcast
/// acts on the membership it saw under the lock, so one that starts after
/// erase(id) returned never reaches id, while one that overlaps it may.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe; every member
/// may be called from any thread, including from inside Sender::send.
class MutexPolicy {
 public:
  MutexPolicy() = default;
  MutexPolicy(const MutexPolicy&) = delete;
  MutexPolicy& operator=(const MutexPolicy&) = delete;

  /// Registers `sender` under the fresh id `id`. Thread-safe. O(1) average.
  void insert(ConnectionId id, std::shared_ptr<Sender> sender) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      senders_.emplace(id, std::move(sender));
      snapshot_.reset();
    }
    detail::StatsCounters::bump(counters_.connections_added);
  }

  /// Forgets `id`; does nothing if it is unknown. Thread-safe. O(1) average.
  /// The Sender is destroyed here unless a delivery in flight still holds it.
  void erase(ConnectionId id) {
    std::shared_ptr<Sender> doomed;  // destroyed after the lock is released
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = senders_.find(id);
      if (it == senders_.end()) return;
      doomed = std::move(it->second);
      senders_.erase(it);
      snapshot_.reset();
    }
    detail::StatsCounters::bump(counters_.connections_removed);
  }

  /// Delivers `payload` to `id` on this thread, or counts send_unknown.
  /// Thread-safe. O(1) average plus one Sender::send.
  void send(ConnectionId id, const Payload& payload) {
    std::shared_ptr<Sender> target;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = senders_.find(id);
      if (it != senders_.end()) target = it->second;
    }
    if (!target) {
      detail::StatsCounters::bump(counters_.send_unknown);
      return;
    }
    detail::DeliveryTally tally;
    tally.record(target->send(payload));
    tally.flush_into(counters_);
  }

  /// Delivers `payload` to every connection but `except` on this thread.
  /// Thread-safe. O(N) Sender::send calls outside the lock; the lock is held
  /// O(1), or O(N) once after the membership changed (snapshot rebuild).
  void broadcast(const Payload& payload, ConnectionId except) {
    std::shared_ptr<const Snapshot> snapshot;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!snapshot_) snapshot_ = make_snapshot();
      snapshot = snapshot_;
    }
    // No lock from here on: a Sender may block briefly on its own mutex, or
    // call back into the registry, without stalling other registry calls.
    detail::DeliveryTally tally;
    for (const auto& [id, sender] : *snapshot) {
      if (id != except) tally.record(sender->send(payload));
    }
    tally.flush_into(counters_);
    detail::StatsCounters::bump(counters_.broadcasts);
  }

  /// The number of registered connections. Thread-safe. O(1).
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return senders_.size();
  }

  /// A snapshot of the counters. Thread-safe. Every operation that returned
  /// before this call is counted.
  RegistryStats stats() const noexcept { return counters_.snapshot(); }

  /// Same as size(): nothing is ever queued. Thread-safe. O(1).
  std::size_t size_approx() const { return size(); }

  /// Same as stats(): nothing is ever queued. Thread-safe, never waits.
  RegistryStats stats_approx() const noexcept { return counters_.snapshot(); }

  /// Does nothing: every operation is applied before it returns. Thread-safe.
  void flush() noexcept {}

 private:
  using Snapshot = std::vector<std::pair<ConnectionId, std::shared_ptr<Sender>>>;

  std::shared_ptr<const Snapshot> make_snapshot() const {
    auto fresh = std::make_shared<Snapshot>(senders_.begin(), senders_.end());
    return fresh;
  }

  // This mutex synchronizes all access to senders_ and snapshot_.
  mutable std::mutex mutex_;
  std::unordered_map<ConnectionId, std::shared_ptr<Sender>> senders_;
  // The senders as of the last membership change; null when stale.
  std::shared_ptr<const Snapshot> snapshot_;
  detail::StatsCounters counters_;
};

}  // namespace wsreg

#endif  // WSREG_MUTEX_POLICY_HPP
