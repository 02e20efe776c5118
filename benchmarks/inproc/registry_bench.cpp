// wsreg_registry_bench: in-process benchmarks of ConnectionRegistry under
// ActorPolicy and MutexPolicy, with a null Sender, against two references
// (a plain loop over the senders, and a naive mutex-and-copy registry).
// What each measures and how to read it: README.md next to this file.
// Run them all, with the CSV and the plots: scripts/bench-inproc.sh.

#include <benchmark/benchmark.h>

#include "broadcast.hpp"
#include "mixed_load.hpp"
#include "publish.hpp"
#include "single_ops.hpp"

int main(int argc, char** argv) {
  inproc::register_single_ops();
  inproc::register_broadcasts();
  inproc::register_publishes();
  inproc::register_mixed_loads();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
