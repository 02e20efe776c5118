// benchmarks/inproc/single_ops.hpp: add/remove churn and single sends, one
// thread, against a registry of `preregistered` connections.
#ifndef WSREG_BENCH_INPROC_SINGLE_OPS_HPP
#define WSREG_BENCH_INPROC_SINGLE_OPS_HPP

#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "null_sender.hpp"

namespace inproc {

/// One iteration: add a connection, then remove it (one item = the pair).
template <class Registry>
void bm_churn(benchmark::State& state) {
  Registry registry;
  const NullSenders senders = make_senders(preregistered);
  add_all(registry, senders);
  const auto newcomer = std::make_shared<NullSender>();
  FlushCadence cadence(state, default_flush_every);
  for (auto _ : state) {
    registry.remove(registry.add(newcomer));
    cadence.after_operation(registry);
  }
  state.SetItemsProcessed(state.iterations());
  if (registry.size() != preregistered) state.SkipWithError("churn changed the registry's size");
}

/// One iteration: a send to one registered id.
template <class Registry>
void bm_send_existing(benchmark::State& state) {
  Registry registry;
  const NullSenders senders = make_senders(preregistered);
  const auto ids = add_all(registry, senders);
  const wsreg::ConnectionId target = ids[ids.size() / 2];
  const wsreg::Payload payload = make_payload();
  FlushCadence cadence(state, default_flush_every);
  for (auto _ : state) {
    registry.send(target, payload);
    cadence.after_operation(registry);
  }
  state.SetItemsProcessed(state.iterations());
  check_delivered(state, senders, static_cast<std::uint64_t>(state.iterations()));
}

/// One iteration: a send to an id that was never issued (counted as
/// send_unknown, delivered nowhere).
template <class Registry>
void bm_send_unknown(benchmark::State& state) {
  Registry registry;
  const NullSenders senders = make_senders(preregistered);
  add_all(registry, senders);
  const wsreg::ConnectionId unknown = wsreg::ConnectionId{1} << 62;
  const wsreg::Payload payload = make_payload();
  FlushCadence cadence(state, default_flush_every);
  for (auto _ : state) {
    registry.send(unknown, payload);
    cadence.after_operation(registry);
  }
  state.SetItemsProcessed(state.iterations());
  check_delivered(state, senders, 0);
  if (registry.stats().send_unknown != static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("send_unknown does not match the sends made");
  }
}

/// churn/<policy>, send_existing/<policy>, send_unknown/<policy>.
inline void register_single_ops() {
  benchmark::RegisterBenchmark("churn/actor", bm_churn<ActorRegistry>)->UseRealTime();
  benchmark::RegisterBenchmark("churn/mutex", bm_churn<MutexRegistry>)->UseRealTime();
  benchmark::RegisterBenchmark("send_existing/actor", bm_send_existing<ActorRegistry>)->UseRealTime();
  benchmark::RegisterBenchmark("send_existing/mutex", bm_send_existing<MutexRegistry>)->UseRealTime();
  benchmark::RegisterBenchmark("send_unknown/actor", bm_send_unknown<ActorRegistry>)->UseRealTime();
  benchmark::RegisterBenchmark("send_unknown/mutex", bm_send_unknown<MutexRegistry>)->UseRealTime();
}

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_SINGLE_OPS_HPP
