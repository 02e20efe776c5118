// benchmarks/inproc/naive_registry.hpp: the design wsreg is measured against.
#ifndef WSREG_BENCH_INPROC_NAIVE_REGISTRY_HPP
#define WSREG_BENCH_INPROC_NAIVE_REGISTRY_HPP

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include <benchmark/benchmark.h>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"

namespace inproc {

/// The naive registry a first version would write: one std::mutex around a
/// std::unordered_map, a fresh copy of the payload bytes for every recipient,
/// and every Sender::send called while the lock is held. It is a reference
/// line for the benchmarks, not a design to copy: a slow Sender stalls every
/// other thread, and a broadcast allocates twice per recipient.
///
/// Same calls as wsreg::ConnectionRegistry where the benchmarks need them,
/// so one benchmark template measures both.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe.
class NaiveRegistry {
 public:
  /// Registers `sender` under a new id. Thread-safe.
  wsreg::ConnectionId add(std::shared_ptr<wsreg::Sender> sender) {
    std::lock_guard<std::mutex> lock(mutex_);
    const wsreg::ConnectionId id = next_id_++;
    senders_.emplace(id, std::move(sender));
    return id;
  }

  /// Forgets `id` (the Sender is released under the lock). Thread-safe.
  void remove(wsreg::ConnectionId id) {
    std::lock_guard<std::mutex> lock(mutex_);
    senders_.erase(id);
  }

  /// Copies the payload and delivers the copy to `id`, under the lock.
  /// Thread-safe.
  void send(wsreg::ConnectionId id, const wsreg::Payload& payload) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = senders_.find(id);
    if (it != senders_.end()) deliver_copy(*it->second, payload);
  }

  /// Delivers a fresh copy of the payload to every connection, under the
  /// lock. Thread-safe.
  void broadcast(const wsreg::Payload& payload) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : senders_) deliver_copy(*entry.second, payload);
  }

  /// Does nothing: every call is applied before it returns. Thread-safe.
  void flush() noexcept {}

  /// The number of registered connections. Thread-safe.
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return senders_.size();
  }

 private:
  // A new Payload from a new std::string: two allocations and a copy of the
  // bytes, as a registry that stores std::string messages per client does.
  static void deliver_copy(wsreg::Sender& sender, const wsreg::Payload& payload) {
    wsreg::Payload copy(payload.opcode(), std::string(payload.data()));
    benchmark::DoNotOptimize(copy);  // the copy must happen even if send() is inlined
    sender.send(copy);
  }

  // This mutex synchronizes all access to senders_ and next_id_.
  std::mutex mutex_;
  std::unordered_map<wsreg::ConnectionId, std::shared_ptr<wsreg::Sender>> senders_;
  wsreg::ConnectionId next_id_ = 1;
};

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_NAIVE_REGISTRY_HPP
