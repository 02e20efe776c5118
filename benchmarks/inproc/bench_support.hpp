// benchmarks/inproc/bench_support.hpp: what the benchmark families share.
#ifndef WSREG_BENCH_INPROC_BENCH_SUPPORT_HPP
#define WSREG_BENCH_INPROC_BENCH_SUPPORT_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "null_sender.hpp"
#include "wsreg/actor_policy.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"
#include "wsreg/sharded_policy.hpp"

namespace inproc {

using ActorRegistry = wsreg::ConnectionRegistry<wsreg::ActorPolicy>;
using MutexRegistry = wsreg::ConnectionRegistry<wsreg::MutexPolicy>;
template <class Inner, std::size_t N>
using ShardedRegistry = wsreg::ConnectionRegistry<wsreg::ShardedPolicy<Inner, N>>;

/// Connections registered before the single-operation and mixed-load
/// benchmarks start, so lookups hit a map of realistic size.
inline constexpr std::size_t preregistered = 10'000;

/// How many asynchronous operations a throughput benchmark posts between two
/// flushes. Bounds ActorPolicy's mailbox while letting the actor work in
/// batches; a no-op for the synchronous designs.
inline constexpr std::int64_t default_flush_every = 16;

/// Calls flush() on a registry every `every` iterations and on the last
/// iteration, inside the timed loop, so that work ActorPolicy applies later
/// on its own thread is counted in the time. Not thread-safe: one per thread.
class FlushCadence {
 public:
  FlushCadence(const benchmark::State& state, std::int64_t every)
      : every_(every), last_(state.max_iterations) {}

  /// To be called once per iteration, after the operation.
  template <class Registry>
  void after_operation(Registry& registry) {
    ++done_;
    if (done_ % every_ == 0 || done_ == last_) registry.flush();
  }

 private:
  std::int64_t every_;
  std::int64_t last_;
  std::int64_t done_ = 0;
};

/// Wall-clock time around a timed loop, for counters in nanoseconds.
/// Google Benchmark does not expose its own timer, and an inverted rate
/// counter would hold seconds per item (printed as "3.1s" for 3.1 ns).
/// Construct it right before the loop; it differs from Google Benchmark's
/// real time only by the loop's start-up, well under a microsecond.
class LoopClock {
 public:
  LoopClock() : start_(std::chrono::steady_clock::now()) {}

  /// Nanoseconds since construction.
  double elapsed_ns() const {
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Registers every sender and returns their ids, in order.
template <class Registry>
std::vector<wsreg::ConnectionId> add_all(Registry& registry, const NullSenders& senders) {
  std::vector<wsreg::ConnectionId> ids;
  ids.reserve(senders.size());
  for (const auto& sender : senders) ids.push_back(registry.add(sender));
  registry.flush();
  return ids;
}

/// Marks the run as failed unless the senders saw exactly `expected`
/// deliveries: proof that the timed loop counted all the work it asked for.
inline void check_delivered(benchmark::State& state, const NullSenders& senders,
                            std::uint64_t expected) {
  if (delivered(senders) != expected) state.SkipWithError("deliveries lost or not yet applied");
}

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_BENCH_SUPPORT_HPP
