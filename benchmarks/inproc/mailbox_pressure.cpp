// wsreg_mailbox_bench: a producer broadcasts in a tight loop to 1,000 slow
// senders (each send() busy-waits about 1 us, then reports dropped) for a
// few seconds, under each policy. Prints how much the process's resident
// memory grew (from /proc/self/statm) and how long an add() issued in the
// middle of it took to take effect: until size_approx() counted it
// ("applied") and until the new Sender received its first broadcast
// ("delivered"). See README.md next to this file.
//   wsreg_mailbox_bench [--seconds S] [--senders N] [--smoke]
// --smoke: 0.2 s and 100 senders, for `make bench-smoke`.
//
// Exits with std::_Exit after printing, without destroying the last
// registry: on an unbounded mailbox (ActorPolicy before it was bounded)
// draining the backlog would take minutes.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "wsreg/actor_policy.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"

#if __has_include("wsreg/registry_options.hpp")
#define WSREG_BENCH_HAS_MAILBOX_STATS 1
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Resident set size of this process in bytes (/proc/self/statm, field 2).
double rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

/// A Sender that costs about `cost` per send (a busy wait: a slow
/// transport's work, not a sleep) and refuses the payload. Thread-safe.
class SlowSender final : public wsreg::Sender {
 public:
  explicit SlowSender(std::chrono::nanoseconds cost) : cost_(cost) {}
  wsreg::SendResult send(const wsreg::Payload&) noexcept override {
    const auto until = Clock::now() + cost_;
    while (Clock::now() < until) {
    }
    return wsreg::SendResult::dropped;
  }

 private:
  std::chrono::nanoseconds cost_;
};

/// Notes when it first received a payload. Thread-safe.
class ProbeSender final : public wsreg::Sender {
 public:
  wsreg::SendResult send(const wsreg::Payload&) noexcept override {
    std::int64_t expected = 0;
    first_.compare_exchange_strong(expected, Clock::now().time_since_epoch().count());
    return wsreg::SendResult::sent;
  }
  /// Clock ticks of the first send, or 0.
  std::int64_t first() const { return first_.load(); }

 private:
  std::atomic<std::int64_t> first_{0};
};

struct Result {
  double seconds = 0;
  double broadcasts_posted = 0;
  double rss_growth_mb = 0;
  double applied_ms = -1;    // -1: not within the deadline
  double delivered_ms = -1;  // -1: not within the deadline
  std::uint64_t high_water = 0;
  std::uint64_t waits = 0;
};

template <class Policy>
Result run(double seconds, std::size_t senders, double deadline_s) {
  auto* registry = new wsreg::ConnectionRegistry<Policy>();  // never destroyed: see the top
  for (std::size_t i = 0; i < senders; ++i) {
    registry->add(std::make_shared<SlowSender>(std::chrono::microseconds(1)));
  }
  registry->flush();
  const wsreg::Payload payload = wsreg::Payload::text(std::string(64, 'x'));

  Result result;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> posted{0};
  const double rss_before = rss_bytes();
  const auto start = Clock::now();
  std::thread producer([&] {
    std::uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      registry->broadcast(payload);
      posted.store(++n, std::memory_order_relaxed);
      // Do not let an unbounded mailbox eat the machine: stop at 2 GB.
      if ((n & 0xffff) == 0 && rss_bytes() - rss_before > 2e9) break;
    }
  });

  // Halfway through, a new connection arrives.
  while (seconds_since(start) < seconds / 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto probe = std::make_shared<ProbeSender>();
  const std::size_t size_before = registry->size_approx();
  const auto added = Clock::now();
  registry->add(probe);
  // Poll (this is a measurement, not a synchronisation) until the add shows,
  // stopping the producer when its time is up: the add may still be queued
  // behind the backlog then, and is waited for until the deadline.
  auto stop_producer = [&] {
    if (stop.load()) return;
    result.rss_growth_mb = (rss_bytes() - rss_before) / 1e6;
    result.seconds = seconds_since(start);
    stop = true;
    producer.join();
  };
  while (seconds_since(added) < deadline_s) {
    if (seconds_since(start) >= seconds) stop_producer();
    if (result.applied_ms < 0 && registry->size_approx() > size_before) {
      result.applied_ms = seconds_since(added) * 1e3;
    }
    if (probe->first() != 0) {
      result.delivered_ms =
          std::chrono::duration<double, std::milli>(Clock::time_point(Clock::duration(probe->first())) - added)
              .count();
      if (result.applied_ms < 0) result.applied_ms = result.delivered_ms;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  while (seconds_since(start) < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop_producer();
  result.broadcasts_posted = static_cast<double>(posted.load());
#ifdef WSREG_BENCH_HAS_MAILBOX_STATS
  const wsreg::RegistryStats stats = registry->stats_approx();
  result.high_water = stats.mailbox_high_water;
  result.waits = stats.mailbox_waits;
#endif
  return result;
}

void print(const char* policy, const Result& r, double deadline_s) {
  auto ms = [&](double v) {
    char buf[32];
    if (v < 0) {
      std::snprintf(buf, sizeof buf, "> %.0f s", deadline_s);
    } else {
      std::snprintf(buf, sizeof buf, "%.2f ms", v);
    }
    return std::string(buf);
  };
  std::printf("%-6s %10.0f %12.1f %10.1f %14s %14s %10llu %10llu\n", policy,
              r.broadcasts_posted / r.seconds, r.rss_growth_mb, r.rss_growth_mb / r.seconds,
              ms(r.applied_ms).c_str(), ms(r.delivered_ms).c_str(),
              static_cast<unsigned long long>(r.high_water),
              static_cast<unsigned long long>(r.waits));
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  std::size_t senders = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      seconds = 0.2;
      senders = 100;
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--senders") == 0 && i + 1 < argc) {
      senders = static_cast<std::size_t>(std::atol(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--senders N] [--smoke]\n", argv[0]);
      return 2;
    }
  }
  const double deadline_s = seconds * 5;  // after the add, which comes at seconds / 2
  std::printf("A producer broadcasting in a tight loop for %.1f s to %zu senders of ~1 us each;\n"
              "an add() issued after %.1f s: time until size_approx() counts it (applied) and\n"
              "until the new sender gets its first broadcast (delivered).\n",
              seconds, senders, seconds / 2);
  std::printf("%-6s %10s %12s %10s %14s %14s %10s %10s\n", "policy", "posted/s", "rss_grow_MB",
              "MB/s", "add_applied", "add_delivered", "high_water", "waits");
  std::fflush(stdout);
  // The mutex policy first: the actor's registry is left running at the end.
  const Result mutex = run<wsreg::MutexPolicy>(seconds, senders, deadline_s);
  print("mutex", mutex, deadline_s);
  std::fflush(stdout);
  const Result actor = run<wsreg::ActorPolicy>(seconds, senders, deadline_s);
  print("actor", actor, deadline_s);
  std::fflush(stdout);
  std::_Exit(0);
}
