// wsreg/registry_options.hpp: the tunables of a ConnectionRegistry.
#ifndef WSREG_REGISTRY_OPTIONS_HPP
#define WSREG_REGISTRY_OPTIONS_HPP

#include <cstddef>
#include <cstdint>

namespace wsreg {

/// The tunables of a ConnectionRegistry, given to its constructor
/// (ConnectionRegistry(RegistryOptions)) and passed on to its policy. Every
/// field has a default; a policy ignores the fields that do not apply to it
/// (MutexPolicy ignores them all), so swapping the policy of a registry
/// built with options is still a one-token change.
///
/// Thread safety: a plain value; the registry copies what it needs in its
/// constructor.
struct RegistryOptions {
  /// ActorPolicy: how many data operations (send, broadcast, publish) may be
  /// queued for the actor, counted from when they are posted until the
  /// actor has applied them. A thread that posts one more waits until there
  /// is room (counted in RegistryStats::mailbox_waits), so a producer that
  /// outruns the actor is slowed to the actor's pace instead of growing the
  /// mailbox without bound, and nothing is lost. The actor thread itself
  /// never waits (calls made from inside Sender::send or the presence
  /// handler are taken over capacity), and lifecycle operations (add,
  /// remove, subscribe, unsubscribe, set_data, update_data,
  /// set_presence_handler, flush and the queries) never wait for room and do
  /// not count. Nor do they queue behind the data operations: the actor
  /// applies them ahead (its lifecycle lane, with the results of applying
  /// everything in order), behind at most the one it is applying, so this
  /// does not bound how long an add or remove takes. The trade-off: larger
  /// absorbs longer bursts without making the producer wait; smaller bounds
  /// memory (one Payload handle per operation; the bytes are shared) and how
  /// long stats() and a flush() after a send wait behind other threads'
  /// data. 0 is taken as 1. MutexPolicy ignores it: it has no mailbox, and
  /// delivers on the calling thread. Default 256 (operations).
  std::size_t mailbox_capacity = 256;

  /// This registry's node number in a cluster (wsreg/cluster.hpp), 0 to
  /// 65,535: the high 16 bits of every id add() assigns, so that ids are
  /// unique across the nodes of a cluster as long as every node has its own
  /// node_id, and a Cluster can route a send to the node that owns an id
  /// (node_of()). The low 48 bits count 1, 2, 3, ... per registry, so a node
  /// may add 2^48 - 1 connections in its lifetime. A node restarted with the
  /// same node_id counts from 1 again: an id that a peer kept from the
  /// earlier process may then name a new connection (keep ids no longer
  /// than the connection they name). Default 0: ids 1, 2, 3, ..., as a
  /// registry outside a cluster has always given.
  std::uint16_t node_id = 0;
};

/// How many low bits of a ConnectionId count connections within one node.
inline constexpr unsigned node_id_shift = 48;

/// The node number (RegistryOptions::node_id) encoded in the high 16 bits
/// of `id`. Thread-safe; O(1).
constexpr std::uint16_t node_of(std::uint64_t id) noexcept {
  return static_cast<std::uint16_t>(id >> node_id_shift);
}

}  // namespace wsreg

#endif  // WSREG_REGISTRY_OPTIONS_HPP
