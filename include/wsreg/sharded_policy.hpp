// wsreg/sharded_policy.hpp: N inner policies, each owning the connections whose id hashes to it.
#ifndef WSREG_SHARDED_POLICY_HPP
#define WSREG_SHARDED_POLICY_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "wsreg/actor_policy.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/presence.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// Registry policy: `N` shards, each an instance of the policy `Inner`
/// (ActorPolicy or MutexPolicy) rebound to the registry's Data, and each
/// owning the connections whose id hashes to it (shard_of()), so that
/// neither one actor thread nor one mutex is the ceiling. Use it through
/// `ConnectionRegistry<ShardedPolicy<ActorPolicy, 4>, Data>`: a one-token
/// change from the other policies.
///
/// Ownership: shard k owns the Senders, the Data and the subscriptions of
/// the connections with shard_of(id) == k, exactly as `Inner` owns them
/// (ActorPolicy: on its own actor thread, so N threads; MutexPolicy: under
/// its own mutex, so N mutexes). The wrapper itself owns the application's
/// presence handler and a table of every topic across the shards (its
/// subscribers and their total count), kept from the shards' presence
/// events, from which subscribers(), subscriber_count() and topic_count()
/// answer: a topic with subscribers in two shards is one topic.
///
/// Routing: insert, erase, send, subscribe, unsubscribe, topics_of, data,
/// set_data and update_data go to the shard of the id only (O(1) more than
/// `Inner`). broadcast and publish go to every shard in turn, each
/// delivering to its own members with the one shared Payload (O(N) posts or
/// lock takes more than `Inner`; `except` is excluded by its own shard and
/// ignored by the others). flush, size and stats visit every shard.
///
/// Shard choice: a multiply-shift (Fibonacci) hash of the whole 64-bit id,
/// then a multiply-shift reduction to [0, N): cheap (two multiplications),
/// and consecutive ids, which is what a registry hands out, with the node id
/// in the high 16 bits, spread evenly over the shards.
///
/// Which calls wait: as `Inner`, per shard. Under ActorPolicy shards:
/// size(), stats(), flush(), subscribers(), subscriber_count(),
/// topic_count() and set_presence_handler() wait for every shard's actor to
/// apply what it was given before (at once for a shard that has);
/// topics_of() and data() wait for the one shard. From a callback (on any
/// shard's actor thread: inside Sender::send, the presence handler, a
/// Sender's destructor) size(), stats() and flush() wait for nothing and
/// answer as applied so far (as ActorPolicy does on its own thread), and
/// subscribers(), subscriber_count() and topic_count() answer from the
/// table without waiting; data() and topics_of() of a connection of the
/// callback's own shard answer at once, those of another shard wait for
/// that shard's actor (see "Limitation" below). A post made from any
/// shard's actor thread never waits for room in any shard's mailbox
/// (detail::actor_group_of_thread), so shards that post to each other from
/// callbacks never wait for each other in a cycle.
///
/// Ordering: per connection, as `Inner` gives it: operations of one thread
/// on one connection apply in call order, and payloads from one thread to
/// one connection (sends, broadcasts and publishes alike) arrive in call
/// order. Within a shard, ActorPolicy's total order holds. Across shards
/// there is no total order: two threads broadcasting at once may reach two
/// connections of different shards in different orders (ActorPolicy alone
/// gives one order to all), and with ActorPolicy shards the operations of
/// one thread on two connections of different shards may apply (and be
/// reported) in either order.
///
/// Presence: the wrapper's handler, installed on every shard at
/// construction, updates the topic table and then calls the application's
/// handler, all under one recursive mutex: handlers are never called
/// concurrently, the events form one total order that keeps each shard's
/// order (so the joins and leaves of one connection come in call order), and
/// PresenceEvent::subscribers is the topic's count over all shards right
/// after the change in that order. A handler may call the registry (under
/// MutexPolicy shards it runs on the caller's thread and may nest).
///
/// Limitation: under ActorPolicy shards, a callback that calls data(id) or
/// topics_of(id) for a connection of another shard waits for that shard's
/// actor; if that actor is at that moment waiting to report a presence
/// event (which the serialised handlers make it do while this callback is
/// a presence handler), the two wait for each other. Callbacks should ask
/// data() and topics_of() of the connection they are about (always its own
/// shard, so no wait), or of connections they know share their shard.
///
/// Counters: stats() sums the shards' counters, except broadcasts and
/// publishes, which every shard counts for every call and which are
/// therefore the smallest shard's (the calls every shard has applied), and
/// mailbox_high_water, the largest shard's (comparable with
/// RegistryOptions::mailbox_capacity, which is per shard).
///
/// Exception safety: what `Inner` gives per shard. An operation that
/// visits several shards (broadcast, publish) is not all-or-nothing across
/// them: a std::bad_alloc in one shard (thrown to the caller by a
/// MutexPolicy shard, swallowed by an ActorPolicy shard's actor) leaves the
/// delivery made by the shards before it. A std::bad_alloc while the topic
/// table grows (in the presence handler of a shard) leaves that change out
/// of subscribers(), subscriber_count() and topic_count().
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe, except that
/// no member may be called concurrently with the destructor.
template <class Inner = ActorPolicy, std::size_t N = 4, class Data = std::monostate>
class ShardedPolicy {
  static_assert(N >= 1, "wsreg::ShardedPolicy needs at least one shard");

 public:
  /// This policy for another per-connection data type (used by
  /// ConnectionRegistry<Policy, Data>).
  template <class Other>
  using rebind = ShardedPolicy<Inner, N, Other>;

  /// The policy of one shard.
  using shard_type = typename Inner::template rebind<Data>;

  /// The number of shards.
  static constexpr std::size_t shard_count = N;

  /// The shard that owns `id`, in [0, N). Thread-safe; O(1); the same for
  /// the same id in every instance.
  static constexpr std::size_t shard_of(ConnectionId id) noexcept {
    const std::uint64_t mixed = id * 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio
    return static_cast<std::size_t>(((mixed >> 32) * N) >> 32);
  }

  /// N shards built with the default RegistryOptions. Throws what `Inner`'s
  /// constructor throws (ActorPolicy: std::system_error).
  ShardedPolicy() : ShardedPolicy(RegistryOptions()) {}

  /// N shards, each built from `options` (ActorPolicy: each its own mailbox
  /// of options.mailbox_capacity data operations; ids and node_id are the
  /// registry's, not the shards' business). Throws what `Inner`'s
  /// constructor throws.
  explicit ShardedPolicy(const RegistryOptions& options)
      : shards_(make_shards(options, std::make_index_sequence<N>())) {
    for (std::size_t k = 0; k < N; ++k) {
      shards_[k].set_presence_handler([this](const PresenceEvent<Data>& e) { report(e); });
    }
    // ActorPolicy shards apply it later: make sure it is, before any change.
    barrier();
  }

  ShardedPolicy(const ShardedPolicy&) = delete;
  ShardedPolicy& operator=(const ShardedPolicy&) = delete;

  /// Lets every shard apply what is queued, including what the shards'
  /// callbacks queue into each other meanwhile, until all are idle twice in
  /// a row; then destroys them (each releasing its Senders as `Inner`
  /// does). Without this, a Sender of one shard could post to a shard
  /// already destroyed. As under ActorPolicy, callbacks that keep posting
  /// forever keep it waiting. Not thread-safe (no call may overlap it).
  ~ShardedPolicy() {
    if constexpr (grouped) {
      for (int idle_scans = 0; idle_scans < 2;) {
        for (auto& s : shards_) static_cast<void>(s.stats());  // waits for what is queued
        bool idle = true;
        for (auto& s : shards_) idle = idle && s.stats_approx().mailbox_depth == 0;
        idle_scans = idle ? idle_scans + 1 : 0;
      }
    }
  }

  /// Registers `sender` and `data` under `id` in its shard. Thread-safe; as
  /// `Inner::insert`.
  void insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data = Data()) {
    shard(id).insert(id, std::move(sender), std::move(data));
  }

  /// Unregisters `id` (and its subscriptions) in its shard. Thread-safe; as
  /// `Inner::erase`.
  void erase(ConnectionId id) { shard(id).erase(id); }

  /// Delivers `payload` to `id` through its shard. Thread-safe; as
  /// `Inner::send`.
  void send(ConnectionId id, Payload payload) { shard(id).send(id, std::move(payload)); }

  /// Delivers `payload` to every connection but `except`: each shard to its
  /// own, in shard order, all sharing the one Payload. Thread-safe. O(N)
  /// `Inner::broadcast` calls (ActorPolicy: N posts, each of which may wait
  /// for room in its shard's mailbox).
  void broadcast(Payload payload, ConnectionId except) {
    for (std::size_t k = 0; k + 1 < N; ++k) shards_[k].broadcast(payload, except);
    shards_[N - 1].broadcast(std::move(payload), except);
  }

  /// Delivers `payload` to every subscriber of `topic` but `except`: each
  /// shard to its own subscribers. Thread-safe. O(N) `Inner::publish` calls.
  void publish(std::string topic, Payload payload, ConnectionId except) {
    for (std::size_t k = 0; k + 1 < N; ++k) shards_[k].publish(topic, payload, except);
    shards_[N - 1].publish(std::move(topic), std::move(payload), except);
  }

  /// Subscribes `id` to `topic` in its shard. Thread-safe; as
  /// `Inner::subscribe`, plus the presence handler's table update (under
  /// the wrapper's mutexes, when the shard reports the join).
  void subscribe(ConnectionId id, std::string topic) {
    shard(id).subscribe(id, std::move(topic));
  }

  /// Ends `id`'s subscription to `topic` in its shard. Thread-safe; as
  /// `Inner::unsubscribe`.
  void unsubscribe(ConnectionId id, std::string topic) {
    shard(id).unsubscribe(id, std::move(topic));
  }

  /// `id`'s topics, sorted, from its shard. Thread-safe; as
  /// `Inner::topics_of` (see "Limitation" for callbacks).
  std::vector<std::string> topics_of(ConnectionId id) { return shard(id).topics_of(id); }

  /// `topic`'s subscribers over all shards, ascending. Thread-safe; waits
  /// as size() does; O(S) under the table's mutex.
  std::vector<ConnectionId> subscribers(const std::string& topic) {
    barrier();
    std::vector<ConnectionId> out;
    std::lock_guard<std::mutex> lock(topics_mutex_);
    const auto it = topics_.find(topic);
    if (it == topics_.end()) return out;
    out.reserve(it->second.members.size());
    for (const auto& [id, joins] : it->second.members) {
      if (joins > 0) out.push_back(id);
    }
    return out;
  }

  /// `topic`'s subscriber count over all shards. Thread-safe; waits as
  /// size() does; O(1) average.
  std::size_t subscriber_count(const std::string& topic) {
    barrier();
    std::lock_guard<std::mutex> lock(topics_mutex_);
    const auto it = topics_.find(topic);
    return it == topics_.end() || it->second.count < 0 ? 0
                                                       : static_cast<std::size_t>(it->second.count);
  }

  /// The number of distinct topics with a subscriber in any shard (a topic
  /// in two shards counts once). Thread-safe; waits as size() does; O(1).
  std::size_t topic_count() {
    barrier();
    std::lock_guard<std::mutex> lock(topics_mutex_);
    return live_topics_;
  }

  /// Replaces the presence handler (empty: none), once every shard has
  /// applied what it was given before (so that those changes are not
  /// reported to it). Thread-safe; waits as size() does. The old handler is
  /// released here, unless a report in flight on another thread still runs
  /// it (until that report returns).
  void set_presence_handler(PresenceHandler<Data> handler) {
    barrier();
    auto shared =
        handler ? std::make_shared<const PresenceHandler<Data>>(std::move(handler)) : nullptr;
    std::lock_guard<std::recursive_mutex> lock(report_mutex_);
    handler_.swap(shared);
  }

  /// A copy of `id`'s data, from its shard. Thread-safe; as `Inner::data`
  /// (see "Limitation" for callbacks).
  std::optional<Data> data(ConnectionId id) { return shard(id).data(id); }

  /// Replaces `id`'s data in its shard. Thread-safe; as `Inner::set_data`.
  void set_data(ConnectionId id, Data data) { shard(id).set_data(id, std::move(data)); }

  /// Runs `change` on `id`'s data in its shard. Thread-safe; as
  /// `Inner::update_data`.
  void update_data(ConnectionId id, const std::function<void(Data&)>& change) {
    shard(id).update_data(id, change);
  }

  /// The number of registered connections over all shards: each shard's
  /// size() (which reflects every insert and erase made before by any
  /// thread), or, from a callback, each shard's size_approx(). Thread-safe.
  /// O(N) plus the waits.
  std::size_t size() {
    std::size_t total = 0;
    const bool callback = in_callback();
    for (auto& s : shards_) total += callback ? s.size_approx() : s.size();
    return total;
  }

  /// The shards' counters combined (see "Counters"), each shard's reflecting
  /// every operation made before the call; from a callback, as applied so
  /// far. Thread-safe. O(N) plus the waits.
  RegistryStats stats() {
    const bool callback = in_callback();
    RegistryStats total{};
    for (std::size_t k = 0; k < N; ++k) {
      combine(total, callback ? shards_[k].stats_approx() : shards_[k].stats(), k == 0);
    }
    return total;
  }

  /// The sum of the shards' size_approx(). Thread-safe, waits for nothing
  /// but the shards' short locks. O(N).
  std::size_t size_approx() {
    std::size_t total = 0;
    for (auto& s : shards_) total += s.size_approx();
    return total;
  }

  /// The shards' stats_approx() combined (see "Counters"). Thread-safe,
  /// never waits. O(N).
  RegistryStats stats_approx() {
    RegistryStats total{};
    for (std::size_t k = 0; k < N; ++k) combine(total, shards_[k].stats_approx(), k == 0);
    return total;
  }

  /// Returns once every shard has applied what this thread gave it before:
  /// each shard's flush() in turn (ActorPolicy: at once for a shard this
  /// thread has nothing pending in). From a callback returns at once.
  /// Thread-safe.
  void flush() {
    if (in_callback()) return;
    for (auto& s : shards_) s.flush();
  }

 private:
  // A topic as the shards reported it: the net joins per connection (1 while
  // subscribed; 0 or -1 for a moment only when two threads' reports about
  // one subscription arrive out of order, which MutexPolicy allows), and
  // their sum, the topic's count.
  struct Topic {
    std::map<ConnectionId, long> members;
    long count = 0;
  };

  // ActorPolicy (and any policy that takes a group): the shards form one
  // group, so that their actors never wait for room in each other's
  // mailboxes, and the wrapper can tell when it is called from one of them.
  static constexpr bool grouped = std::is_constructible_v<shard_type, const RegistryOptions&,
                                                          const void*>;

  template <std::size_t... I>
  std::array<shard_type, N> make_shards(const RegistryOptions& options,
                                        std::index_sequence<I...>) {
    if constexpr (grouped) {
      return {{((void)I, shard_type(options, static_cast<const void*>(this)))...}};
    } else {
      return {{((void)I, shard_type(options))...}};
    }
  }

  shard_type& shard(ConnectionId id) noexcept { return shards_[shard_of(id)]; }

  // Whether the calling thread is one of the shards' actor threads (inside
  // one of their callbacks), where waiting for another shard could deadlock.
  bool in_callback() const noexcept {
    if constexpr (grouped) {
      return detail::actor_group_of_thread == static_cast<const void*>(this);
    } else {
      return false;
    }
  }

  // Waits until every shard has applied the lifecycle operations (and so
  // reported the presence events) queued before the call, by any thread:
  // each shard's size() does exactly that, at once where nothing is
  // pending. Nothing to wait for under MutexPolicy, which reports before it
  // returns, nor from a callback.
  void barrier() {
    if constexpr (grouped) {
      if (in_callback()) return;
      for (auto& s : shards_) static_cast<void>(s.size());
    }
  }

  static void combine(RegistryStats& total, const RegistryStats& s, bool first) noexcept {
    total.connections_added += s.connections_added;
    total.connections_removed += s.connections_removed;
    total.messages_sent += s.messages_sent;
    total.messages_dropped += s.messages_dropped;
    total.send_unknown += s.send_unknown;
    // Every shard counts every broadcast and publish: the calls all have applied.
    total.broadcasts = first ? s.broadcasts : std::min(total.broadcasts, s.broadcasts);
    total.publishes = first ? s.publishes : std::min(total.publishes, s.publishes);
    total.mailbox_depth += s.mailbox_depth;
    total.mailbox_high_water = std::max(total.mailbox_high_water, s.mailbox_high_water);
    total.mailbox_waits += s.mailbox_waits;
  }

  // Every shard's presence handler: updates the topic table, then tells the
  // application with the count over all shards. On the shard's actor thread
  // (ActorPolicy) or the caller's (MutexPolicy), never under a shard's lock.
  void report(const PresenceEvent<Data>& e) {
    std::lock_guard<std::recursive_mutex> serial(report_mutex_);
    std::size_t count = 0;
    {
      std::lock_guard<std::mutex> lock(topics_mutex_);
      // May throw std::bad_alloc (the name, a new topic, a new member):
      // the change is then not recorded, and the shard swallows the throw.
      auto it = topics_.try_emplace(std::string(e.topic)).first;
      Topic& topic = it->second;
      const long before = topic.count;
      auto member = topic.members.try_emplace(e.id, 0).first;
      member->second += e.joined ? 1 : -1;
      topic.count += e.joined ? 1 : -1;
      if (member->second == 0) topic.members.erase(member);
      if (before <= 0 && topic.count > 0) ++live_topics_;
      if (before > 0 && topic.count <= 0) --live_topics_;
      count = topic.count > 0 ? static_cast<std::size_t>(topic.count) : 0;
      if (topic.count == 0 && topic.members.empty()) topics_.erase(it);
    }
    if (!handler_) return;
    const std::shared_ptr<const PresenceHandler<Data>> handler = handler_;  // survives a swap
    (*handler)(PresenceEvent<Data>{e.topic, e.id, e.joined, count, e.data});  // a throw: the shard swallows it
  }

  // Constructed last, destroyed first: a shard's destructor may still
  // report (ActorPolicy applies what was queued), into the members below.
  // This mutex serialises report() (the table update and the application's
  // handler, so that handlers never run concurrently) and guards handler_.
  // Recursive: under MutexPolicy a handler that subscribes reports again on
  // its own thread.
  std::recursive_mutex report_mutex_;
  std::shared_ptr<const PresenceHandler<Data>> handler_;
  // This mutex synchronizes all access to topics_ and live_topics_.
  mutable std::mutex topics_mutex_;
  std::unordered_map<std::string, Topic> topics_;
  std::size_t live_topics_ = 0;  // topics whose count is above 0
  std::array<shard_type, N> shards_;
};

}  // namespace wsreg

#endif  // WSREG_SHARDED_POLICY_HPP
