// benchmarks/inproc/broadcast.hpp: one broadcast to N connections, for the
// two policies and the two references (the floor and the naive design).
#ifndef WSREG_BENCH_INPROC_BROADCAST_HPP
#define WSREG_BENCH_INPROC_BROADCAST_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "naive_registry.hpp"
#include "null_sender.hpp"

namespace inproc {

/// Reports one broadcast to `recipients` connections per iteration:
/// items_per_second (broadcasts per second) and ns_per_recipient (wall
/// nanoseconds of the timed loop per delivery).
inline void report_broadcasts(benchmark::State& state, std::size_t recipients,
                              const LoopClock& clock) {
  const double loop_ns = clock.elapsed_ns();
  state.SetItemsProcessed(state.iterations());
  state.counters["recipients"] = static_cast<double>(recipients);
  state.counters["ns_per_recipient"] =
      loop_ns / (static_cast<double>(state.iterations()) * static_cast<double>(recipients));
}

/// One iteration: one broadcast to range(0) connections, through `Registry`,
/// with a flush every `flush_every` iterations and at the end (so
/// ActorPolicy's deliveries are all inside the timed loop). flush_every = 1
/// is a round trip: post, wake the actor, wait for it.
template <class Registry>
void bm_broadcast(benchmark::State& state, std::int64_t flush_every) {
  const auto recipients = static_cast<std::size_t>(state.range(0));
  const NullSenders senders = make_senders(recipients);
  Registry registry;
  add_all(registry, senders);
  const wsreg::Payload payload = make_payload();
  // Untimed warm-up: MutexPolicy builds its snapshot on the first broadcast
  // after a membership change; every variant gets the same pass.
  registry.broadcast(payload);
  registry.flush();
  FlushCadence cadence(state, flush_every);
  const LoopClock clock;
  for (auto _ : state) {
    registry.broadcast(payload);
    cadence.after_operation(registry);
  }
  report_broadcasts(state, recipients, clock);
  check_delivered(state, senders, static_cast<std::uint64_t>(state.iterations() + 1) * recipients);
}

/// The floor: the same senders in a std::vector, the same payload, one
/// Sender::send each, no registry at all.
inline void bm_broadcast_floor(benchmark::State& state) {
  const auto recipients = static_cast<std::size_t>(state.range(0));
  const NullSenders senders = make_senders(recipients);
  const std::vector<std::shared_ptr<wsreg::Sender>> targets(senders.begin(), senders.end());
  const wsreg::Payload payload = make_payload();
  auto deliver = [&] {
    for (const auto& target : targets) benchmark::DoNotOptimize(target->send(payload));
  };
  deliver();  // the same untimed warm-up pass as the registries get
  const LoopClock clock;
  for (auto _ : state) {
    deliver();
    benchmark::ClobberMemory();
  }
  report_broadcasts(state, recipients, clock);
  check_delivered(state, senders, static_cast<std::uint64_t>(state.iterations() + 1) * recipients);
}

/// broadcast/{floor,actor,actor_roundtrip,mutex,sharded_actor_2,sharded_actor_4,sharded_mutex_4,naive}/recipients:N.
inline void register_broadcasts() {
  auto sizes = [](benchmark::internal::Benchmark* b) {
    b->ArgName("recipients")->Arg(1'000)->Arg(10'000)->Arg(100'000);
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  sizes(benchmark::RegisterBenchmark("broadcast/floor", bm_broadcast_floor));
  sizes(benchmark::RegisterBenchmark("broadcast/actor", [](benchmark::State& state) {
    bm_broadcast<ActorRegistry>(state, default_flush_every);
  }));
  sizes(benchmark::RegisterBenchmark("broadcast/actor_roundtrip", [](benchmark::State& state) {
    bm_broadcast<ActorRegistry>(state, 1);
  }));
  // MutexPolicy and the naive design deliver before broadcast() returns:
  // their flush is a no-op, and each iteration is already a round trip.
  sizes(benchmark::RegisterBenchmark("broadcast/mutex", [](benchmark::State& state) {
    bm_broadcast<MutexRegistry>(state, default_flush_every);
  }));
  // Sharded: each shard delivers to its own members (ActorPolicy shards: on
  // their own threads, in parallel; MutexPolicy shards: one after another
  // on the caller's thread).
  sizes(benchmark::RegisterBenchmark("broadcast/sharded_actor_2", [](benchmark::State& state) {
    bm_broadcast<ShardedRegistry<wsreg::ActorPolicy, 2>>(state, default_flush_every);
  }));
  sizes(benchmark::RegisterBenchmark("broadcast/sharded_actor_4", [](benchmark::State& state) {
    bm_broadcast<ShardedRegistry<wsreg::ActorPolicy, 4>>(state, default_flush_every);
  }));
  sizes(benchmark::RegisterBenchmark("broadcast/sharded_mutex_4", [](benchmark::State& state) {
    bm_broadcast<ShardedRegistry<wsreg::MutexPolicy, 4>>(state, default_flush_every);
  }));
  sizes(benchmark::RegisterBenchmark("broadcast/naive", [](benchmark::State& state) {
    bm_broadcast<NaiveRegistry>(state, default_flush_every);
  }));
}

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_BROADCAST_HPP
