// benchmarks/inproc/publish.hpp: one publish to a topic of S subscribers,
// beside broadcast, for the two policies.
#ifndef WSREG_BENCH_INPROC_PUBLISH_HPP
#define WSREG_BENCH_INPROC_PUBLISH_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "broadcast.hpp"
#include "null_sender.hpp"

namespace inproc {

/// One iteration: one publish to a topic of range(0) subscribers, in a
/// registry that also holds `preregistered` connections subscribed to
/// nothing (so the topic is a subset, as in an application), with the same
/// flush cadence as bm_broadcast. Reports ns_per_recipient over the
/// subscribers only.
template <class Registry>
void bm_publish(benchmark::State& state, std::int64_t flush_every) {
  const auto subscribers = static_cast<std::size_t>(state.range(0));
  const NullSenders members = make_senders(subscribers);
  const NullSenders others = make_senders(preregistered);
  Registry registry;
  add_all(registry, others);
  const std::string topic = "bench/topic";
  for (const auto id : add_all(registry, members)) registry.subscribe(id, topic);
  const wsreg::Payload payload = make_payload();
  registry.publish(topic, payload);  // untimed warm-up, as for broadcast
  registry.flush();
  FlushCadence cadence(state, flush_every);
  const LoopClock clock;
  for (auto _ : state) {
    registry.publish(topic, payload);
    cadence.after_operation(registry);
  }
  report_broadcasts(state, subscribers, clock);
  check_delivered(state, members, static_cast<std::uint64_t>(state.iterations() + 1) * subscribers);
  check_delivered(state, others, 0);
}

/// publish/{actor,actor_roundtrip,mutex}/subscribers:S.
inline void register_publishes() {
  auto sizes = [](benchmark::internal::Benchmark* b) {
    b->ArgName("subscribers")->Arg(10)->Arg(1'000)->Arg(10'000);
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  sizes(benchmark::RegisterBenchmark("publish/actor", [](benchmark::State& state) {
    bm_publish<ActorRegistry>(state, default_flush_every);
  }));
  sizes(benchmark::RegisterBenchmark("publish/actor_roundtrip", [](benchmark::State& state) {
    bm_publish<ActorRegistry>(state, 1);
  }));
  sizes(benchmark::RegisterBenchmark("publish/mutex", [](benchmark::State& state) {
    bm_publish<MutexRegistry>(state, default_flush_every);
  }));
}

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_PUBLISH_HPP
