// benchmarks/inproc/mixed_load.hpp: 95 % sends, 5 % add/remove, from 1 to 8
// producer threads sharing one registry.
#ifndef WSREG_BENCH_INPROC_MIXED_LOAD_HPP
#define WSREG_BENCH_INPROC_MIXED_LOAD_HPP

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "naive_registry.hpp"
#include "null_sender.hpp"

namespace inproc {

/// One operation in this many is an add or a remove (alternately, per
/// thread); the rest are sends: 1 in 20 is the 5 % of the mixed load.
inline constexpr std::int64_t churn_period = 20;

/// What the threads of one mixed-load run share. Thread 0 writes it before
/// its timed loop and tears it down after; the others touch it only inside
/// theirs. Google Benchmark starts no thread's loop until every thread has
/// reached it and lets none leave until every thread has finished, and that
/// barrier orders the set-up and tear-down with the other threads' use.
template <class Registry>
struct MixedShared {
  static inline std::unique_ptr<Registry> registry;
  static inline NullSenders senders;
  static inline std::vector<wsreg::ConnectionId> ids;
  // Sends made by all threads, added by each on its last iteration.
  static inline std::atomic<std::uint64_t> sends{0};
};

/// A small, fast per-thread generator (splitmix64): which id to send to.
class IdPicker {
 public:
  explicit IdPicker(std::uint64_t seed) : state_(seed) {}

  /// A number in [0, n), n < 2^32 (Lemire's multiply-shift, no division).
  std::size_t below(std::size_t n) noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<std::size_t>(((z & 0xffffffffULL) * n) >> 32);
  }

 private:
  std::uint64_t state_;
};

/// Each thread: 19 sends to random pre-registered ids, then an add (or the
/// remove of what it added last time), repeated; one item per operation.
/// On its last iteration it flushes, so ActorPolicy's work is in the time.
template <class Registry>
void bm_mixed(benchmark::State& state) {
  using Shared = MixedShared<Registry>;
  if (state.thread_index() == 0) {
    Shared::senders = make_senders(preregistered);
    Shared::registry = std::make_unique<Registry>();
    Shared::ids = add_all(*Shared::registry, Shared::senders);
    Shared::sends.store(0, std::memory_order_relaxed);
  }
  // This thread's own: nothing shared is touched before the loop.
  const wsreg::Payload payload = make_payload();
  const auto newcomer = std::make_shared<NullSender>();
  IdPicker picker(static_cast<std::uint64_t>(state.thread_index()) + 1);
  wsreg::ConnectionId added = wsreg::no_connection;
  std::uint64_t sends = 0;
  std::int64_t done = 0;

  for (auto _ : state) {
    Registry& registry = *Shared::registry;
    if (++done % churn_period == 0) {
      if (added == wsreg::no_connection) {
        added = registry.add(newcomer);
      } else {
        registry.remove(added);
        added = wsreg::no_connection;
      }
    } else {
      registry.send(Shared::ids[picker.below(Shared::ids.size())], payload);
      ++sends;
    }
    if (done == state.max_iterations) {
      Shared::sends.fetch_add(sends, std::memory_order_relaxed);
      registry.flush();
    }
  }
  state.SetItemsProcessed(state.iterations());

  if (state.thread_index() == 0) {
    if (delivered(Shared::senders) != Shared::sends.load(std::memory_order_relaxed)) {
      state.SkipWithError("deliveries lost or not yet applied");
    }
    Shared::registry.reset();
    Shared::ids.clear();
    Shared::senders.clear();
  }
}

/// mixed/{actor,mutex,sharded_actor_2,sharded_actor_4,sharded_mutex_4,naive}/real_time/threads:{1,2,4,8}.
inline void register_mixed_loads() {
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->Threads(1)->Threads(2)->Threads(4)->Threads(8)->UseRealTime();
  };
  threads(benchmark::RegisterBenchmark("mixed/actor", bm_mixed<ActorRegistry>));
  threads(benchmark::RegisterBenchmark("mixed/mutex", bm_mixed<MutexRegistry>));
  threads(benchmark::RegisterBenchmark("mixed/sharded_actor_2",
                                       bm_mixed<ShardedRegistry<wsreg::ActorPolicy, 2>>));
  threads(benchmark::RegisterBenchmark("mixed/sharded_actor_4",
                                       bm_mixed<ShardedRegistry<wsreg::ActorPolicy, 4>>));
  threads(benchmark::RegisterBenchmark("mixed/sharded_mutex_4",
                                       bm_mixed<ShardedRegistry<wsreg::MutexPolicy, 4>>));
  threads(benchmark::RegisterBenchmark("mixed/naive", bm_mixed<NaiveRegistry>));
}

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_MIXED_LOAD_HPP
