// wsreg/connection_registry.hpp: who is connected, and delivery to them.
#ifndef WSREG_CONNECTION_REGISTRY_HPP
#define WSREG_CONNECTION_REGISTRY_HPP

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

#include "wsreg/payload.hpp"
#include "wsreg/policy_traits.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// The set of open connections of an application, and delivery to them.
///
/// `Policy` decides how concurrent calls are serialised: ActorPolicy (a
/// thread owns the map; calls are messages) or MutexPolicy (a mutex guards
/// the map; calls apply in the caller). Both give the same results for the
/// same program, so swapping one for the other changes no other line; they
/// differ in which calls wait and in cost (docs/policies.md). One exception:
/// inside Sender::send under ActorPolicy, size, stats and flush do not wait,
/// so they do not yet see what that Sender itself just queued.
/// Requirements on a Policy: docs/concepts/policy.md, checked at compile time.
///
/// Ownership: the registry owns the Policy and, through it, one
/// std::shared_ptr<Sender> per connection from add() until remove(). It owns
/// no socket: a transport adapter (wsreg::wspp::Server) owns the connections
/// and must be destroyed, or shut down, before the registry.
///
/// Ids: add() assigns 1, 2, 3, ... from one atomic counter in the calling
/// thread, so ids are unique and never reused during the registry's lifetime
/// (64 bits: no wrap in practice), with no race and no wait.
///
/// Errors: no member throws except std::bad_alloc (and std::system_error
/// from ActorPolicy's constructor). A send to an unknown or removed id is
/// delivered nowhere and counted in RegistryStats::send_unknown.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe; every member
/// but the destructor may be called from any thread, including from inside
/// Sender::send and from the adapter's callbacks.
template <class Policy>
class ConnectionRegistry {
  static_assert(detail::check_policy<Policy>(), "wsreg: Policy requirements not met");

 public:
  using policy_type = Policy;

  /// Creates an empty registry (ActorPolicy: starts its thread).
  ConnectionRegistry() = default;
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  /// Registers a connection and returns its new id (>= 1), or no_connection
  /// if `sender` is null (nothing is registered, nothing counted).
  /// Thread-safe. ActorPolicy: applied later, but any later call that
  /// happens-after this one (e.g. a send to the returned id) sees it.
  ConnectionId add(std::shared_ptr<Sender> sender) {
    if (!sender) return no_connection;
    const ConnectionId id = next_id_.fetch_add(1, std::memory_order_relaxed);
    policy_.insert(id, std::move(sender));
    return id;
  }

  /// Unregisters `id`. Idempotent: an unknown or already removed id is
  /// ignored. A send or broadcast that starts after remove() returned never
  /// reaches `id`. Thread-safe. ActorPolicy: applied later, in order.
  void remove(ConnectionId id) { policy_.erase(id); }

  /// Delivers `payload` to connection `id` (one Sender::send), or counts
  /// send_unknown if there is no such connection. Never throws for a bad id.
  /// Thread-safe. Payloads from one thread to one connection arrive in the
  /// order sent. ActorPolicy: applied later on the actor thread; MutexPolicy:
  /// on this thread, outside the registry lock.
  void send(ConnectionId id, Payload payload) { policy_.send(id, std::move(payload)); }

  /// Delivers `payload` to every connection except `except` (pass
  /// no_connection to skip nobody). All recipients share the one Payload:
  /// nothing is copied per connection. Thread-safe. O(N) Sender::send calls.
  /// ActorPolicy: applied later on the actor thread; MutexPolicy: on this
  /// thread, outside the registry lock.
  void broadcast(Payload payload, ConnectionId except = no_connection) {
    policy_.broadcast(std::move(payload), except);
  }

  /// The number of registered connections, counting every add and remove
  /// this thread made before. Thread-safe. ActorPolicy: waits for the actor
  /// (except on the actor thread).
  std::size_t size() { return policy_.size(); }

  /// The counters, including every operation this thread made before.
  /// Thread-safe. ActorPolicy: waits for the actor (except on its thread).
  RegistryStats stats() { return policy_.stats(); }

  /// The number of registered connections without waiting: under
  /// ActorPolicy operations still queued are not included. For monitoring
  /// from threads that must not block (an HTTP /metrics handler). Thread-safe.
  std::size_t size_approx() { return policy_.size_approx(); }

  /// The counters without waiting, with the same caveat as size_approx().
  /// Thread-safe.
  RegistryStats stats_approx() { return policy_.stats_approx(); }

  /// Returns once every operation this thread made before has been applied
  /// (its Sender::send calls made). Thread-safe. MutexPolicy: returns at
  /// once. ActorPolicy: waits for the actor (except on the actor thread).
  void flush() { policy_.flush(); }

 private:
  std::atomic<ConnectionId> next_id_{1};
  Policy policy_;
};

}  // namespace wsreg

#endif  // WSREG_CONNECTION_REGISTRY_HPP
