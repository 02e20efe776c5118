// wsreg/registry_options.hpp: the tunables of a ConnectionRegistry.
#ifndef WSREG_REGISTRY_OPTIONS_HPP
#define WSREG_REGISTRY_OPTIONS_HPP

#include <cstddef>

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
};

}  // namespace wsreg

#endif  // WSREG_REGISTRY_OPTIONS_HPP
