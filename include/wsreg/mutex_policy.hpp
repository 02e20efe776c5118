// wsreg/mutex_policy.hpp: a std::mutex-guarded map; operations apply in the caller.
#ifndef WSREG_MUTEX_POLICY_HPP
#define WSREG_MUTEX_POLICY_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "wsreg/detail/registry_state.hpp"
#include "wsreg/detail/stats_counters.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/presence.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// Registry policy: a std::mutex-guarded std::unordered_map from connection
/// id to sender (and per-connection Data), plus the topic table. Every
/// operation runs to completion on the calling thread. Use it through
/// ConnectionRegistry<MutexPolicy, Data>, which rebinds it to `Data`.
///
/// Ownership: the map owns one std::shared_ptr<Sender> and one Data per
/// connection. Broadcast and publish hold a shared snapshot of their
/// recipients: a delivery to a stable set takes the lock for O(1) and
/// delivers without it. After that set changed, the next delivery rebuilds
/// the snapshot outside the lock, from the previous one and a log of the
/// changes (detail::MemberSet), so neither a change nor the rebuild does
/// O(N) work under the lock, and the old snapshot is released outside it.
/// A removed Sender may therefore live on in the previous snapshot until
/// the next broadcast (or publish, for a topic) rebuilds it, until its set
/// changes more than N + 64 times more, or until the registry is destroyed.
///
/// Which calls wait: none waits for anything but the mutex. send(),
/// broadcast() and publish() call the recipients' Sender::send on the
/// calling thread, outside the lock, and return when every recipient has
/// queued the payload (the socket writes happen later, on the transport's
/// threads). update_data() runs its function under the lock. The presence
/// handler runs on the thread whose call changed a topic, after the lock is
/// released; two threads changing topics at once may report in either order.
///
/// Ordering: payloads from one thread to one connection reach its Sender in
/// call order. Calls from different threads are not ordered with each other:
/// two threads broadcasting at once may reach two connections in different
/// orders (ActorPolicy gives one order to all).
///
/// Linearization: every change applies under the lock; a send, broadcast or
/// publish acts on the membership it saw under the lock, so one that starts
/// after erase(id) or unsubscribe(id, topic) returned never reaches id there,
/// while one that overlaps it may.
///
/// Exception safety: strong. A std::bad_alloc from any member reaches the
/// caller and leaves the registry exactly as it was (no ghost entry, no lost
/// subscription, no partial delivery: broadcast and publish allocate only
/// before their first Sender::send). Presence reports are prepared before
/// the change, so reporting cannot fail after it.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe; every member
/// may be called from any thread, including from inside Sender::send and the
/// presence handler (but not from inside an update_data function).
template <class Data>
class BasicMutexPolicy {
 public:
  /// This policy for another per-connection data type (used by
  /// ConnectionRegistry<Policy, Data>).
  template <class Other>
  using rebind = BasicMutexPolicy<Other>;

  /// An empty registry. Thread-safe to use from the moment it exists.
  BasicMutexPolicy() = default;

  /// The same: MutexPolicy has no mailbox, so it ignores every field of
  /// `options` (accepted so that a registry built with options can swap
  /// policies with one token). Does not throw.
  explicit BasicMutexPolicy(const RegistryOptions& /*options*/) noexcept {}

  BasicMutexPolicy(const BasicMutexPolicy&) = delete;
  BasicMutexPolicy& operator=(const BasicMutexPolicy&) = delete;

  /// Registers `sender` and `data` under the fresh id `id`. Thread-safe.
  /// O(1) average.
  void insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data = Data()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!state_.insert(id, std::move(sender), std::move(data))) return;
    }
    detail::StatsCounters::bump(counters_.connections_added);
  }

  /// Forgets `id` and its subscriptions; does nothing if it is unknown.
  /// Thread-safe. O(1 + topics of id) average. The registry's references to
  /// the Sender are released outside the lock: here, unless a delivery in
  /// flight or the last broadcast snapshot still holds it (then by that
  /// delivery, or by the broadcast or publish that replaces the snapshot).
  void erase(ConnectionId id) {
    std::shared_ptr<Sender> doomed;  // destroyed after the lock is released
    std::vector<detail::MemberSet::Retired> old_snapshots;  // likewise
    Events events;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (const auto* names = state_.subscriptions(id)) {
        events.prepare(handler_, names->begin(), names->end(), state_.data(id));
      }
      doomed = state_.erase(id, events.recorder());
      if (!state_.graveyard().empty()) old_snapshots.swap(state_.graveyard());
    }
    if (!doomed) return;
    detail::StatsCounters::bump(counters_.connections_removed);
    report(events);
  }

  /// Delivers `payload` to `id` on this thread, or counts send_unknown.
  /// Thread-safe. O(1) average plus one Sender::send.
  void send(ConnectionId id, const Payload& payload) {
    std::shared_ptr<Sender> target;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (const auto* sender = state_.find(id)) target = *sender;
    }
    if (!target) {
      detail::StatsCounters::bump(counters_.send_unknown);
      return;
    }
    detail::DeliveryTally tally;
    tally.record(target->send(payload));
    tally.flush_into(counters_);
  }

  /// Delivers `payload` to every connection but `except` on this thread.
  /// Thread-safe. O(N) Sender::send calls outside the lock; the lock is held
  /// O(1) (plus O(changes) once after the membership changed, to install the
  /// rebuilt snapshot; the rebuild itself, O(N), runs outside the lock, as
  /// does the release of the old one). The first broadcast ever, and the
  /// first after more than N + 64 changes with no broadcast, copy the
  /// members once under the lock (amortised O(1) per change). Throws
  /// std::bad_alloc before delivering to anyone.
  void broadcast(const Payload& payload, ConnectionId except) {
    detail::MemberSet::View view;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      view = state_.everyone().view();
    }
    const auto recipients =
        current(view, [this]() -> detail::MemberSet* { return &state_.everyone(); });
    deliver(*recipients, payload, except);
    detail::StatsCounters::bump(counters_.broadcasts);
  }

  /// Delivers `payload` to every subscriber of `topic` but `except` on this
  /// thread. Thread-safe. As broadcast(), over the topic's subscribers.
  void publish(const std::string& topic, const Payload& payload, ConnectionId except) {
    detail::MemberSet::View view;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto* set = state_.topic(topic)) view = set->view();
    }
    if (view.base) {
      const auto recipients =
          current(view, [this, &topic]() -> detail::MemberSet* { return state_.topic(topic); });
      deliver(*recipients, payload, except);
    }
    detail::StatsCounters::bump(counters_.publishes);
  }

  /// Subscribes `id` to `topic`. Thread-safe. O(1) average; the presence
  /// handler runs here after the lock is released.
  void subscribe(ConnectionId id, std::string topic) {
    Events events;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events.prepare(handler_, &topic, &topic + 1, state_.data(id));
      state_.subscribe(id, std::move(topic), events.recorder());
    }
    report(events);
  }

  /// Unsubscribes `id` from `topic`. Thread-safe. O(1 + topics of id).
  void unsubscribe(ConnectionId id, const std::string& topic) {
    std::vector<detail::MemberSet::Retired> old_snapshots;  // released after the lock
    Events events;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events.prepare(handler_, &topic, &topic + 1, state_.data(id));
      state_.unsubscribe(id, topic, events.recorder());
      if (!state_.graveyard().empty()) old_snapshots.swap(state_.graveyard());
    }
    report(events);
  }

  /// `id`'s topics, sorted. Thread-safe.
  std::vector<std::string> topics_of(ConnectionId id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.topics_of(id);
  }

  /// `topic`'s subscribers, ascending. Thread-safe. O(S log S) under the lock.
  std::vector<ConnectionId> subscribers(const std::string& topic) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.subscribers(topic);
  }

  /// `topic`'s subscriber count. Thread-safe. O(1) average.
  std::size_t subscriber_count(const std::string& topic) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.subscriber_count(topic);
  }

  /// The number of topics with a subscriber. Thread-safe. O(1).
  std::size_t topic_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.topic_count();
  }

  /// Sets (or, if empty, clears) the presence handler. Thread-safe. A change
  /// made concurrently on another thread may still report to the old
  /// handler after this returns (it took a copy under the lock): keep what
  /// the old handler uses alive until such calls have returned.
  void set_presence_handler(PresenceHandler<Data> handler) {
    auto shared =
        handler ? std::make_shared<const PresenceHandler<Data>>(std::move(handler)) : nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    handler_ = std::move(shared);
  }

  /// A copy of `id`'s data, made under the lock. Thread-safe.
  std::optional<Data> data(ConnectionId id) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const Data* d = state_.data(id)) return *d;
    return std::nullopt;
  }

  /// Replaces `id`'s data under the lock. Thread-safe.
  void set_data(ConnectionId id, Data data) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Data* d = state_.data(id)) *d = std::move(data);
  }

  /// Runs `change` on `id`'s data under the lock, on this thread. An
  /// exception from it is caught and ignored. Thread-safe.
  void update_data(ConnectionId id, const std::function<void(Data&)>& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Data* d = state_.data(id)) {
      try {
        change(*d);
      } catch (...) {  // documented: ignored; the data keeps whatever it got
      }
    }
  }

  /// The number of registered connections. Thread-safe. O(1).
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.size();
  }

  /// A snapshot of the counters. Thread-safe. Every operation that returned
  /// before this call is counted. The mailbox fields are always 0.
  RegistryStats stats() const noexcept { return counters_.snapshot(); }

  /// Same as size(): nothing is ever queued. Thread-safe. O(1).
  std::size_t size_approx() const { return size(); }

  /// Same as stats(): nothing is ever queued. Thread-safe, never waits.
  RegistryStats stats_approx() const noexcept { return counters_.snapshot(); }

  /// Does nothing: every operation is applied before it returns. Thread-safe.
  void flush() noexcept {}

 private:
  // A presence change recorded under the lock, reported after it.
  struct Event {
    std::string topic;
    ConnectionId id = no_connection;
    bool joined = false;
    std::size_t subscribers = 0;
  };

  // The presence changes of one operation, all about one connection.
  // Everything they need is allocated by prepare(), before the operation
  // changes the state, so that recording them afterwards cannot throw and
  // the operation stays all-or-nothing.
  struct Events {
    std::shared_ptr<const PresenceHandler<Data>> handler;
    std::vector<Event> list;  // one slot per change the operation may make
    std::size_t used = 0;
    // The connection's Data, copied under the lock before the change: the
    // handler runs after the lock, when the registry's copy may have changed
    // or (after erase) be gone.
    std::optional<Data> data;

    // Called under the lock, before the change: one slot per topic in
    // [first, last), in the order the state emits them, and a copy of
    // `*d`; nothing without a handler, a topic or a connection (`d` null).
    // Throws std::bad_alloc (or what copying Data throws) with nothing changed.
    template <class It>
    void prepare(const std::shared_ptr<const PresenceHandler<Data>>& h, It first, It last,
                 const Data* d) {
      if (!h || first == last || !d) return;
      data.emplace(*d);
      for (; first != last; ++first) list.push_back(Event{*first});
      handler = h;
    }

    // Fills the next prepared slot; never allocates.
    auto recorder() noexcept {
      return [this](const std::string&, ConnectionId id, bool joined, std::size_t count) noexcept {
        if (used == list.size()) return;  // no handler: nothing prepared
        Event& e = list[used++];
        e.id = id;
        e.joined = joined;
        e.subscribers = count;
      };
    }
  };

  // Called without the lock.
  static void report(const Events& events) {
    for (std::size_t i = 0; i < events.used; ++i) {
      const Event& e = events.list[i];
      try {
        (*events.handler)(PresenceEvent<Data>{e.topic, e.id, e.joined, e.subscribers, *events.data});
      } catch (...) {  // documented: a throwing presence handler is ignored
      }
    }
  }

  // Called without the lock: the members `view` describes as one vector.
  // After a change that means building a new one from the view's base and
  // changes, here, outside the lock (O(N)), then, under the lock for
  // O(changes since the view), installing it in the set `locate()` finds
  // (if it is still the one the view came from) so that the next delivery
  // starts from it. The replaced base and log are released here too, after
  // the lock. Throws std::bad_alloc with nothing changed.
  template <class Locate>
  std::shared_ptr<const detail::Members> current(const detail::MemberSet::View& view,
                                                 Locate locate) {
    if (view.changes == 0) return view.base;
    std::shared_ptr<const detail::Members> fresh = detail::MemberSet::build(view);
    std::shared_ptr<detail::MemberSet::ChangeLog> spare = detail::MemberSet::make_log(view.changes);
    detail::MemberSet::Retired retired;  // destroyed after the lock is released
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (detail::MemberSet* set = locate()) retired = set->install(view, fresh, std::move(spare));
    }
    return fresh;
  }

  void deliver(const detail::Members& recipients, const Payload& payload, ConnectionId except) {
    // No lock here: a Sender may block briefly on its own mutex, or call
    // back into the registry, without stalling other registry calls.
    detail::deliver(recipients, payload, except, counters_);
  }

  // This mutex synchronizes all access to state_ and handler_.
  mutable std::mutex mutex_;
  detail::RegistryState<Data> state_;
  std::shared_ptr<const PresenceHandler<Data>> handler_;
  detail::StatsCounters counters_;
};

/// The mutex policy with no per-connection data; ConnectionRegistry rebinds
/// it to the registry's Data.
using MutexPolicy = BasicMutexPolicy<std::monostate>;

}  // namespace wsreg

#endif  // WSREG_MUTEX_POLICY_HPP
