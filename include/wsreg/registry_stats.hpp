// wsreg/registry_stats.hpp: counters a registry keeps about itself.
#ifndef WSREG_REGISTRY_STATS_HPP
#define WSREG_REGISTRY_STATS_HPP

#include <cstdint>

namespace wsreg {

/// A snapshot of a registry's counters. All counters start at 0 and only grow
/// (monotonic, as Prometheus counters) during the registry's lifetime, except
/// the gauge mailbox_depth, which goes up and down.
///
/// Thread safety: a plain value; ConnectionRegistry::stats() returns a copy.
/// The fields are read one by one, so a snapshot taken while other threads
/// work is not atomic across fields (each field is exact on its own).
struct RegistryStats {
  /// Connections added (add() calls that returned an id).
  std::uint64_t connections_added = 0;
  /// Connections removed (remove() calls that found their id; repeated
  /// removes of one id count once).
  std::uint64_t connections_removed = 0;
  /// Payloads a Sender accepted, one per recipient: a broadcast to 10
  /// connections counts 10.
  std::uint64_t messages_sent = 0;
  /// Payloads a Sender refused (SendResult::dropped), one per recipient.
  std::uint64_t messages_dropped = 0;
  /// send() calls whose id was unknown or already removed; delivered nowhere.
  std::uint64_t send_unknown = 0;
  /// broadcast() calls applied (one per call, whatever the recipient count).
  std::uint64_t broadcasts = 0;
  /// publish() calls applied (one per call, whatever the subscriber count,
  /// including publishes to a topic with no subscriber).
  std::uint64_t publishes = 0;
  /// Gauge. ActorPolicy: operations (data and lifecycle) posted to the
  /// actor and not yet applied, as the actor last reported it (it reports
  /// when it takes a batch and at least every quarter of mailbox_capacity
  /// data operations applied, so while it works the figure may be high by
  /// up to that; it is exact when the actor is idle). MutexPolicy: always 0.
  std::uint64_t mailbox_depth = 0;
  /// The largest mailbox_depth seen (posted and not yet applied at the
  /// moment of a post). MutexPolicy: always 0.
  std::uint64_t mailbox_high_water = 0;
  /// Data operations whose posting thread had to wait for room in a full
  /// mailbox (RegistryOptions::mailbox_capacity), one per wait.
  /// MutexPolicy: always 0.
  std::uint64_t mailbox_waits = 0;
};

}  // namespace wsreg

#endif  // WSREG_REGISTRY_STATS_HPP
