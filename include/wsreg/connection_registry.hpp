// wsreg/connection_registry.hpp: who is connected, and delivery to them.
#ifndef WSREG_CONNECTION_REGISTRY_HPP
#define WSREG_CONNECTION_REGISTRY_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "wsreg/detail/cluster_link.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/policy_traits.hpp"
#include "wsreg/presence.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

template <class Registry, class Backplane>
class Cluster;

/// The set of open connections of an application, and delivery to them.
///
/// `Policy` decides how concurrent calls are serialised: ActorPolicy (a
/// thread owns the map; calls are messages) or MutexPolicy (a mutex guards
/// the map; calls apply in the caller). Both give the same results for the
/// same program, so swapping one for the other changes no other line; they
/// differ in which calls wait and in cost (docs/policies.md). One exception:
/// inside Sender::send under ActorPolicy, size, stats and flush do not wait,
/// so they do not yet see what that Sender itself just queued (and a query
/// there may see lifecycle operations queued after the delivery it is in,
/// which ActorPolicy applies ahead of queued data operations).
/// Requirements on a Policy: docs/concepts/policy.md, checked at compile time.
///
/// `Data` is the application's per-connection data (a user name, an account
/// id, ...), given to add() and read or changed later with data(),
/// set_data() and update_data(). It must be default-constructible and
/// copyable; the default, std::monostate, holds nothing and costs nothing.
///
/// Topics (publish/subscribe): a connection subscribes to any number of
/// named topics; publish() delivers to a topic's subscribers exactly as
/// broadcast() does to everyone (one shared Payload, no I/O under a lock).
/// A topic exists while it has subscribers; a removed connection leaves all
/// its topics. Presence: subscriber_count(), subscribers(), and a handler
/// told of every join and leave (set_presence_handler()).
///
/// Ownership: the registry owns the Policy and, through it, one
/// std::shared_ptr<Sender> and one Data per connection from add() until
/// remove(), and the topic table. It owns no socket: a transport adapter (wsreg::wspp::Server) owns the connections
/// and must be destroyed, or shut down, before the registry.
///
/// Ids: add() assigns 1, 2, 3, ... from one atomic counter in the calling
/// thread, so ids are unique and never reused during the registry's lifetime
/// (64 bits: no wrap in practice), with no race and no wait. In a cluster
/// the high 16 bits hold RegistryOptions::node_id (node_of(id)), so ids are
/// unique across nodes.
///
/// Cluster: a Cluster (wsreg/cluster.hpp) attached to the registry makes
/// broadcast() and publish() reach the other nodes' connections too, and
/// send() to an id of another node travel to that node; without one (the
/// default) the registry is on its own and links no backplane.
///
/// Errors: no member throws except std::bad_alloc (and std::system_error
/// from ActorPolicy's constructor). A send to an unknown or removed id is
/// delivered nowhere and counted in RegistryStats::send_unknown.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe; every member
/// but the destructor may be called from any thread, including from inside
/// Sender::send and from the adapter's callbacks.
template <class Policy, class Data = std::monostate>
class ConnectionRegistry {
 public:
  /// The policy instance the registry holds: `Policy` rebound to `Data`.
  using policy_type = typename Policy::template rebind<Data>;
  /// The per-connection data type.
  using data_type = Data;
  /// What the presence handler is given: a join or leave, with the
  /// connection's Data.
  using presence_event = PresenceEvent<Data>;
  /// The presence handler's type: std::function<void(const presence_event&)>.
  using presence_handler = PresenceHandler<Data>;

 private:
  static_assert(detail::check_policy<policy_type, Data>(), "wsreg: Policy requirements not met");

 public:
  /// Creates an empty registry with the default RegistryOptions
  /// (ActorPolicy: starts its thread; throws std::system_error if it cannot).
  ConnectionRegistry() = default;

  /// Creates an empty registry whose policy is built from `options`
  /// (ActorPolicy: its mailbox capacity; MutexPolicy ignores them), so
  /// `ConnectionRegistry<ActorPolicy> r(options)` and
  /// `ConnectionRegistry<MutexPolicy> r(options)` differ by one token.
  /// Requires `policy_type` to be constructible from `const
  /// RegistryOptions&` (docs/concepts/policy.md). Throws what the policy's
  /// constructor throws (ActorPolicy: std::system_error).
  explicit ConnectionRegistry(const RegistryOptions& options)
      : node_id_(options.node_id),
        next_id_((static_cast<ConnectionId>(options.node_id) << node_id_shift) | 1),
        policy_(options) {
    static_assert(policy_requirements::has_options_constructor<policy_type>::value,
                  "wsreg: Policy requirements not met: ConnectionRegistry(RegistryOptions) needs "
                  "P(const RegistryOptions&)");
  }
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  /// Registers a connection with its `data` and returns its new id (>= 1),
  /// or no_connection if `sender` is null (nothing is registered, nothing
  /// counted). Thread-safe. ActorPolicy: applied later, but any later call
  /// that happens-after this one (e.g. a send to the returned id) sees it;
  /// never waits, not even for room in a full mailbox; applied ahead of the
  /// data operations already queued (which still miss the new connection).
  ConnectionId add(std::shared_ptr<Sender> sender, Data data = Data()) {
    if (!sender) return no_connection;
    const ConnectionId id = next_id_.fetch_add(1, std::memory_order_relaxed);
    policy_.insert(id, std::move(sender), std::move(data));
    return id;
  }

  /// Unregisters `id`; it leaves every topic it was subscribed to (one
  /// presence event per topic). Idempotent: an unknown or already removed id
  /// is ignored. A send, broadcast or publish that starts after remove()
  /// returned never reaches `id`. Thread-safe. ActorPolicy: applied later,
  /// ahead of the data operations already queued, which still reach `id`
  /// (a send(id, bye) then remove(id) delivers the bye).
  void remove(ConnectionId id) { policy_.erase(id); }

  /// Delivers `payload` to connection `id` (one Sender::send), or counts
  /// send_unknown if there is no such connection. Never throws for a bad id.
  /// In a cluster, an id of another node (node_of(id) != node_id()) is
  /// handed to the Cluster, which routes it to that node (counted there if
  /// unknown); without a cluster such an id is unknown here. Thread-safe. Payloads from one thread to one connection arrive in the
  /// order sent. ActorPolicy: applied later on the actor thread, after
  /// waiting for room if the mailbox is full (see broadcast()); MutexPolicy:
  /// on this thread, outside the registry lock.
  void send(ConnectionId id, Payload payload) {
    if (node_of(id) != node_id_) {
      if (detail::ClusterLink* link = link_.load(std::memory_order_acquire)) {
        link->send(id, payload);
        return;
      }
    }
    policy_.send(id, std::move(payload));
  }

  /// Delivers `payload` to every connection except `except` (pass
  /// no_connection to skip nobody). All recipients share the one Payload:
  /// nothing is copied per connection. Thread-safe. O(N) Sender::send calls.
  /// ActorPolicy: applied later on the actor thread; MutexPolicy: on this
  /// thread, outside the registry lock.
  ///
  /// ActorPolicy: send, broadcast and publish wait for room while the
  /// mailbox holds RegistryOptions::mailbox_capacity data operations
  /// (backpressure; never on the actor thread itself); nothing is dropped.
  ///
  /// In a cluster it reaches every connection of every node, `except`
  /// included whatever its node (docs/cluster.md); local_broadcast() stays
  /// on this node.
  void broadcast(Payload payload, ConnectionId except = no_connection) {
    if (detail::ClusterLink* link = link_.load(std::memory_order_acquire)) {
      link->broadcast(payload, except);
    }
    policy_.broadcast(std::move(payload), except);
  }

  /// broadcast() to this node's connections only, even in a cluster (what
  /// the Cluster calls for a broadcast that came from another node).
  /// Thread-safe, as broadcast().
  void local_broadcast(Payload payload, ConnectionId except = no_connection) {
    policy_.broadcast(std::move(payload), except);
  }

  // Topics (publish/subscribe) and presence

  /// Subscribes `id` to `topic`, creating the topic if it is new. Idempotent
  /// (subscribing twice is one subscription, one presence event); an
  /// unknown id is ignored. Thread-safe. O(1) average. ActorPolicy: applied
  /// later, in order with the other lifecycle operations and ahead of the
  /// publishes already queued (which still miss `id`; for unsubscribe,
  /// still reach it); MutexPolicy: before it returns, and the presence
  /// handler runs on this thread after the lock is released.
  void subscribe(ConnectionId id, std::string topic) {
    policy_.subscribe(id, std::move(topic));
  }

  /// Unsubscribes `id` from `topic`; a topic left with no subscriber
  /// disappears. Not subscribed, unknown id or unknown topic: ignored.
  /// Thread-safe. O(topics of id). Applied as subscribe() is.
  void unsubscribe(ConnectionId id, std::string topic) {
    policy_.unsubscribe(id, std::move(topic));
  }

  /// Delivers `payload` to every subscriber of `topic` except `except`, as
  /// broadcast() does: one shared Payload, each subscriber exactly once,
  /// outside any lock. A topic with no subscriber: nothing is delivered (the
  /// publish is still counted). Thread-safe. O(subscribers) Sender::send
  /// calls. ActorPolicy: applied later on the actor thread, after waiting
  /// for room if the mailbox is full (see broadcast()); MutexPolicy: on this
  /// thread.
  ///
  /// In a cluster it also reaches the subscribers of `topic` on every other
  /// node (docs/cluster.md); local_publish() stays on this node.
  void publish(std::string topic, Payload payload, ConnectionId except = no_connection) {
    if (detail::ClusterLink* link = link_.load(std::memory_order_acquire)) {
      link->publish(topic, payload, except);
    }
    policy_.publish(std::move(topic), std::move(payload), except);
  }

  /// publish() to this node's subscribers only, even in a cluster.
  /// Thread-safe, as publish().
  void local_publish(std::string topic, Payload payload, ConnectionId except = no_connection) {
    policy_.publish(std::move(topic), std::move(payload), except);
  }

  /// The topics `id` is subscribed to, sorted; empty for an unknown id.
  /// Thread-safe. ActorPolicy: waits for the actor (except on its thread).
  std::vector<std::string> topics_of(ConnectionId id) { return policy_.topics_of(id); }

  /// The ids subscribed to `topic`, ascending; empty for an unknown topic.
  /// Thread-safe. O(subscribers log subscribers). ActorPolicy: waits.
  std::vector<ConnectionId> subscribers(const std::string& topic) {
    return policy_.subscribers(topic);
  }

  /// The number of subscribers of `topic` (0: no such topic). Thread-safe.
  /// O(1) average. ActorPolicy: waits for the actor (except on its thread).
  std::size_t subscriber_count(const std::string& topic) {
    return policy_.subscriber_count(topic);
  }

  /// The number of topics that have at least one subscriber. Thread-safe.
  /// O(1). ActorPolicy: waits for the actor (except on its thread).
  std::size_t topic_count() { return policy_.topic_count(); }

  /// Sets the handler told of every join and leave of every topic (see
  /// PresenceHandler for its thread, PresenceEvent for what it gets); an
  /// empty function removes it. Each event is reported after its whole
  /// change is applied, so the registry the handler sees already reflects it. Thread-safe. Changes applied
  /// before this call are not reported to it. The old handler may still be
  /// called by a change that overlaps this call (ActorPolicy: until a
  /// flush() after it returns; MutexPolicy: until the other thread's call
  /// returns), so keep what it uses alive until then.
  /// The handler gets a PresenceEvent<Data>, which carries the connection's
  /// Data, so a leave can name who left.
  void set_presence_handler(PresenceHandler<Data> handler) {
    std::lock_guard<std::mutex> lock(presence_mutex_);
    presence_handler_ = std::move(handler);
    install_presence_handler_locked();
  }

  // Per-connection data

  /// A copy of `id`'s data, or std::nullopt for an unknown id. Thread-safe.
  /// ActorPolicy: waits for the actor (except on its thread), since the
  /// actor cannot hand out a reference into its own state; MutexPolicy:
  /// copies under the lock.
  std::optional<Data> data(ConnectionId id) { return policy_.data(id); }

  /// Replaces `id`'s data; an unknown id is ignored. Thread-safe.
  /// ActorPolicy: applied later, in order; MutexPolicy: under the lock.
  void set_data(ConnectionId id, Data data) { policy_.set_data(id, std::move(data)); }

  /// Calls `change(Data&)` on `id`'s data in place; an unknown id is
  /// ignored (`change` is not called). Thread-safe. ActorPolicy: `change`
  /// runs later on the actor thread, in order with the other operations;
  /// MutexPolicy: it runs on this thread under the registry lock, so it must
  /// be short and must not call the registry (that would deadlock). It must
  /// not throw (an exception is caught and ignored). `Change` must be
  /// copyable (it travels in a std::function).
  template <class Change>
  void update_data(ConnectionId id, Change change) {
    policy_.update_data(id, std::function<void(Data&)>(std::move(change)));
  }

  // Size, counters and flush

  /// The number of registered connections, counting every add and remove
  /// made before the call by this thread or by any other (a thread that
  /// joined the producers sees their work). Thread-safe. ActorPolicy: waits
  /// for the actor to apply the lifecycle operations queued before the
  /// call, unless it already has, but not for queued sends, broadcasts and
  /// publishes (no wait on the actor thread, where it returns the count as
  /// applied so far).
  std::size_t size() { return policy_.size(); }

  /// The counters, including every operation made before the call by any
  /// thread, and under ActorPolicy the mailbox gauges
  /// (RegistryStats::mailbox_depth, mailbox_high_water, mailbox_waits).
  /// Thread-safe. ActorPolicy: waits for the actor to apply everything
  /// queued before the call, data operations included (except on its
  /// thread).
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
  /// once. ActorPolicy: returns at once, with no round trip to the actor,
  /// when they all are already (so a thread that queued nothing pays
  /// nothing), and on the actor thread; otherwise waits for the actor. It
  /// covers this thread's operations only: not those of other threads, nor
  /// what callbacks queued on the actor thread while this thread's were
  /// applied. To wait for everything queued so far (after joining the
  /// producers, say), call stats(), which waits for that.
  void flush() { policy_.flush(); }

  /// RegistryOptions::node_id: the high 16 bits of the ids this registry
  /// assigns. Thread-safe.
  std::uint16_t node_id() const noexcept { return node_id_; }

  /// The attached Cluster's Prometheus metrics (docs/cluster.md), or an
  /// empty string without one. Thread-safe; never waits for the actor.
  std::string cluster_metrics() const {
    std::string out;
    if (const detail::ClusterLink* link = link_.load(std::memory_order_acquire)) {
      link->append_metrics(out);
    }
    return out;
  }

 private:
  template <class Registry, class Backplane>
  friend class Cluster;

  // Called by Cluster's constructor (link) and destructor (nullptr), while
  // no other thread uses the registry (Cluster's documented contract).
  void attach_cluster(detail::ClusterLink* link) {
    std::lock_guard<std::mutex> lock(presence_mutex_);
    link_.store(link, std::memory_order_release);
    install_presence_handler_locked();
  }

  // Gives the policy the application's presence handler, or, with a
  // cluster attached, one that first tells the cluster (which subscribes a
  // node to a topic's backplane channel while it has a local subscriber).
  void install_presence_handler_locked() {
    detail::ClusterLink* link = link_.load(std::memory_order_relaxed);
    if (link == nullptr) {
      policy_.set_presence_handler(presence_handler_);
      return;
    }
    policy_.set_presence_handler(
        [link, user = presence_handler_](const PresenceEvent<Data>& event) {
          link->topic_changed(event.topic, event.joined);
          if (user) user(event);
        });
  }

  const std::uint16_t node_id_ = 0;
  std::atomic<ConnectionId> next_id_{1};
  // The attached Cluster, or nullptr (the default: no cluster).
  std::atomic<detail::ClusterLink*> link_{nullptr};
  // Guards presence_handler_ (the application's handler, kept so that
  // attaching a cluster can wrap it) and the policy's handler installs.
  std::mutex presence_mutex_;
  PresenceHandler<Data> presence_handler_;
  policy_type policy_;
};

}  // namespace wsreg

#endif  // WSREG_CONNECTION_REGISTRY_HPP
