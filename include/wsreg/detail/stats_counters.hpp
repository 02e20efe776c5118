// wsreg/detail/stats_counters.hpp: the live counters behind RegistryStats.
#ifndef WSREG_DETAIL_STATS_COUNTERS_HPP
#define WSREG_DETAIL_STATS_COUNTERS_HPP

#include <atomic>
#include <cstdint>

#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg::detail {

/// Atomic counters, written by whichever thread applies an operation and read
/// by any thread. Relaxed ordering: each counter is exact on its own; callers
/// that need "after my operations" order it themselves (ActorPolicy::stats
/// flushes first). Writers add once per operation, not once per recipient,
/// so concurrent broadcasts do not fight over a cache line per delivery.
struct StatsCounters {
  std::atomic<std::uint64_t> connections_added{0};
  std::atomic<std::uint64_t> connections_removed{0};
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> messages_dropped{0};
  std::atomic<std::uint64_t> send_unknown{0};
  std::atomic<std::uint64_t> broadcasts{0};
  std::atomic<std::uint64_t> publishes{0};
  // Written by ActorPolicy under its mailbox lock; read by anyone.
  std::atomic<std::uint64_t> mailbox_depth{0};
  std::atomic<std::uint64_t> mailbox_high_water{0};
  std::atomic<std::uint64_t> mailbox_waits{0};

  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    if (n != 0) counter.fetch_add(n, std::memory_order_relaxed);
  }

  RegistryStats snapshot() const noexcept {
    RegistryStats s;
    s.connections_added = connections_added.load(std::memory_order_relaxed);
    s.connections_removed = connections_removed.load(std::memory_order_relaxed);
    s.messages_sent = messages_sent.load(std::memory_order_relaxed);
    s.messages_dropped = messages_dropped.load(std::memory_order_relaxed);
    s.send_unknown = send_unknown.load(std::memory_order_relaxed);
    s.broadcasts = broadcasts.load(std::memory_order_relaxed);
    s.publishes = publishes.load(std::memory_order_relaxed);
    s.mailbox_depth = mailbox_depth.load(std::memory_order_relaxed);
    s.mailbox_high_water = mailbox_high_water.load(std::memory_order_relaxed);
    s.mailbox_waits = mailbox_waits.load(std::memory_order_relaxed);
    return s;
  }
};

/// Tally of one delivery pass, added to the counters once at its end.
struct DeliveryTally {
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;

  void record(SendResult r) noexcept { (r == SendResult::sent ? sent : dropped) += 1; }

  void flush_into(StatsCounters& c) const noexcept {
    StatsCounters::bump(c.messages_sent, sent);
    StatsCounters::bump(c.messages_dropped, dropped);
  }
};

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_STATS_COUNTERS_HPP
