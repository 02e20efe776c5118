// wsreg_snapshot_bench: what MutexPolicy's add and remove cost right after a
// broadcast (when its broadcast snapshot has just been used) against the
// same calls with no broadcast between them, at 1,000, 10,000 and 100,000
// connections; and what the broadcast that follows a change costs against
// one over an unchanged set. One thread, null senders, each call timed on
// its own with steady_clock (about 20 ns of the figures is the clock).
// See README.md next to this file.
//   wsreg_snapshot_bench [--smoke]     (--smoke: fewer rounds, up to 10,000)

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "null_sender.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Registry = wsreg::ConnectionRegistry<wsreg::MutexPolicy>;

struct Summary {
  double median_ns = 0;
  double mean_ns = 0;
};

Summary summarise(std::vector<double> ns) {
  Summary s;
  if (ns.empty()) return s;
  s.mean_ns = std::accumulate(ns.begin(), ns.end(), 0.0) / static_cast<double>(ns.size());
  std::nth_element(ns.begin(), ns.begin() + static_cast<long>(ns.size() / 2), ns.end());
  s.median_ns = ns[ns.size() / 2];
  return s;
}

template <class F>
double time_ns(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

struct Row {
  std::size_t connections = 0;
  Summary add_plain, add_after, remove_plain, remove_after, broadcast_plain, broadcast_after;
};

Row measure(std::size_t connections, int rounds) {
  Row row;
  row.connections = connections;
  Registry registry;
  const inproc::NullSenders senders = inproc::make_senders(connections);
  for (const auto& s : senders) registry.add(s);
  const auto newcomer = std::make_shared<inproc::NullSender>();
  const wsreg::Payload payload = inproc::make_payload();
  registry.broadcast(payload);  // the first snapshot of the set

  std::vector<double> add_plain, add_after, remove_plain, remove_after, bc_plain, bc_after;
  wsreg::ConnectionId id = registry.add(newcomer);  // the snapshot is now out of date
  registry.remove(id);
  // With no broadcast anywhere between the changes.
  for (int i = 0; i < rounds; ++i) {
    add_plain.push_back(time_ns([&] { id = registry.add(newcomer); }));
    remove_plain.push_back(time_ns([&] { registry.remove(id); }));
  }
  // Right after a broadcast: each change is the first since one.
  for (int i = 0; i < rounds; ++i) {
    bc_after.push_back(time_ns([&] { registry.broadcast(payload); }));  // follows a change
    bc_plain.push_back(time_ns([&] { registry.broadcast(payload); }));  // over an unchanged set
    add_after.push_back(time_ns([&] { id = registry.add(newcomer); }));
    registry.broadcast(payload);
    remove_after.push_back(time_ns([&] { registry.remove(id); }));
  }
  row.add_plain = summarise(add_plain);
  row.add_after = summarise(add_after);
  row.remove_plain = summarise(remove_plain);
  row.remove_after = summarise(remove_after);
  row.broadcast_plain = summarise(bc_plain);
  row.broadcast_after = summarise(bc_after);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      smoke = true;
    } else {
      std::fprintf(stderr, "usage: %s [--smoke]\n", argv[0]);
      return 2;
    }
  }
  std::vector<std::size_t> sizes = {1'000, 10'000, 100'000};
  if (smoke) sizes.pop_back();
  std::printf("MutexPolicy, one thread: ns per call, median (mean) over the rounds;\n"
              "\"after\" = the first change after a broadcast, or the broadcast after a change\n");
  std::printf("%11s %20s %20s %7s %20s %20s %7s %22s %22s\n", "connections", "add", "add_after_bcast",
              "ratio", "remove", "remove_after_bcast", "ratio", "broadcast_unchanged",
              "broadcast_after_change");
  for (const std::size_t n : sizes) {
    const int rounds = smoke ? 50 : static_cast<int>(std::max<std::size_t>(200, 2'000'000 / n));
    const Row r = measure(n, rounds);
    auto cell = [](const Summary& s) {
      static char buf[8][40];
      static int k = 0;
      char* b = buf[k++ % 8];
      std::snprintf(b, 40, "%.0f (%.0f)", s.median_ns, s.mean_ns);
      return b;
    };
    std::printf("%11zu %20s %20s %6.2fx %20s %20s %6.2fx %22s %22s\n", r.connections,
                cell(r.add_plain), cell(r.add_after), r.add_after.median_ns / r.add_plain.median_ns,
                cell(r.remove_plain), cell(r.remove_after),
                r.remove_after.median_ns / r.remove_plain.median_ns, cell(r.broadcast_plain),
                cell(r.broadcast_after));
    std::fflush(stdout);
  }
  return 0;
}
