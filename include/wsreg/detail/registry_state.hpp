// wsreg/detail/registry_state.hpp: connections, their data and topics; no locking.
#ifndef WSREG_DETAIL_REGISTRY_STATE_HPP
#define WSREG_DETAIL_REGISTRY_STATE_HPP

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wsreg/detail/stats_counters.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"

namespace wsreg::detail {

/// One recipient as a delivery loop sees it.
struct Member {
  ConnectionId id;
  std::shared_ptr<Sender> sender;
};
using Members = std::vector<Member>;

/// Calls Sender::send(payload) once on every recipient but `except`, then
/// adds the results to `counters` (once, not per recipient). The one
/// delivery loop of both policies, for broadcast and publish; the caller
/// holds no lock (MutexPolicy) or is the actor thread (ActorPolicy).
inline void deliver(const Members& recipients, const Payload& payload, ConnectionId except,
                    StatsCounters& counters) {
  DeliveryTally tally;
  for (const Member& m : recipients) {
    if (m.id != except) tally.record(m.sender->send(payload));
  }
  tally.flush_into(counters);
}

/// Makes room for one more element of `v` with geometric growth (so a
/// later push_back cannot throw), without changing its contents. Throws
/// std::bad_alloc, leaving `v` as it was.
template <class T>
void reserve_one(std::vector<T>& v) {
  if (v.size() == v.capacity()) v.reserve(v.capacity() < 4 ? 4 : 2 * v.capacity());
}

/// A set of recipients kept dense for delivery: a vector to iterate (no node
/// chasing on the fan-out path) plus an index for O(1) insert and erase
/// (erase swaps the last member into the hole, so order is not kept).
///
/// Snapshots (MutexPolicy delivers from them, outside its lock): once
/// view() has been called, the set also keeps `base_`, an immutable shared
/// vector of the members as they were at some point, and `log_`, the
/// changes made since, in order. Every change appends one entry to the log
/// under the lock: O(1), with no copy of the members and no release of the
/// old snapshot. view() hands out the base and the length of the log, O(1);
/// whoever needs a current vector (the next broadcast) builds it from the
/// two outside the lock (build(), O(N + changes)) and installs it (install(),
/// O(changes made meanwhile)), receiving the old base and log to release
/// outside the lock too. This is safe without atomics because nothing ever
/// changes what a view can read: the base is immutable, and the log is
/// only appended to past every length handed out (a full log is copied
/// into a bigger one, not grown in place; install switches to a new one).
/// Costs that remain under the lock, each amortised O(1) per change: the
/// first view() copies the members once; the log's geometric growth; and a
/// set changed more than size() + 64 times with no view() in between drops
/// its snapshot (instead of logging forever), so that its next view()
/// copies once again. ActorPolicy never calls view(), so it never logs.
///
/// Thread safety: Not thread-safe; the policy serialises access. What
/// view() returns may be read by any thread without the lock.
class MemberSet {
 public:
  /// One change: `sender` null means `id` left, otherwise `id` joined.
  struct Change {
    ConnectionId id = no_connection;
    std::shared_ptr<Sender> sender;
  };
  /// An append-only array of changes; entries below any length handed out
  /// in a View are never written again.
  struct ChangeLog {
    explicit ChangeLog(std::size_t n) : items(new Change[n]), capacity(n) {}
    std::unique_ptr<Change[]> items;
    std::size_t capacity;
  };
  /// A base and log no longer in use by the set, for whoever holds it to
  /// release outside the lock (it may hold the last reference to a removed
  /// Sender, whose destructor may call the registry).
  struct Retired {
    std::shared_ptr<const Members> base;
    std::shared_ptr<const ChangeLog> log;
  };
  /// What a delivery needs to know the members: `base` plus the first
  /// `changes` entries of `log`. Readable without the lock. It also carries
  /// away a snapshot the set dropped earlier, released with the View.
  struct View {
    std::shared_ptr<const Members> base;
    std::shared_ptr<const ChangeLog> log;  // null when changes == 0
    std::size_t changes = 0;
    Retired dropped;
  };

  /// Adds `id`; false if it was already there. O(1) amortised. Strong
  /// exception safety: on std::bad_alloc nothing changes (the vector and
  /// the log grow first, then the index, then the steps that cannot throw).
  bool insert(ConnectionId id, const std::shared_ptr<Sender>& sender) {
    if (index_.count(id) != 0) return false;
    reserve_one(members_);
    prepare_change();
    if (!index_.emplace(id, members_.size()).second) return false;
    members_.push_back(Member{id, sender});  // capacity reserved: does not throw
    log_change(id, sender);
    return true;
  }

  /// Makes room for one more change (the log entry an erase() appends), so
  /// that erase() cannot fail. Throws std::bad_alloc with nothing changed.
  void prepare_change() {
    if (!base_) return;  // no snapshot: nothing to log
    if (log_len_ >= members_.size() + 64) {
      // Changed more than it holds since the last view(): rebuilding from
      // the log would cost more than copying, so drop the snapshot. It is
      // kept aside (nothing is logged, so nothing is dropped again, until
      // the next view(), which hands it out to be released without the lock).
      retired_ = Retired{std::move(base_), std::move(log_)};
      log_len_ = 0;
      return;
    }
    if (log_ && log_len_ < log_->capacity) return;
    auto bigger = std::make_shared<ChangeLog>(log_ ? 2 * log_->capacity : 16);
    for (std::size_t i = 0; i < log_len_; ++i) bigger->items[i] = log_->items[i];
    log_ = std::move(bigger);
  }

  /// Removes `id`; false if it was not there. O(1) average. Call
  /// prepare_change() first; then it does not allocate and cannot fail.
  bool erase(ConnectionId id) noexcept {
    const auto it = index_.find(id);
    if (it == index_.end()) return false;
    const std::size_t hole = it->second;
    index_.erase(it);
    if (hole + 1 != members_.size()) {
      members_[hole] = std::move(members_.back());
      index_.find(members_[hole].id)->second = hole;  // find, not []: never allocates
    }
    members_.pop_back();
    log_change(id, nullptr);
    return true;
  }

  bool contains(ConnectionId id) const { return index_.count(id) != 0; }
  std::size_t size() const noexcept { return members_.size(); }
  bool empty() const noexcept { return members_.empty(); }
  const Members& members() const noexcept { return members_; }

  /// The members as base + changes, O(1) (the first call copies them once,
  /// O(N)). Throws std::bad_alloc (first call only) with nothing changed.
  View view() {
    if (!base_) {
      base_ = std::make_shared<const Members>(members_);
      log_.reset();
      log_len_ = 0;
    }
    return View{base_, log_len_ == 0 ? nullptr : log_, log_len_, std::move(retired_)};
  }

  /// Whether the set holds a snapshot (current or dropped): what it would
  /// take to release it if the set were destroyed.
  bool holds_snapshot() const noexcept { return base_ || retired_.base; }

  /// Moves out every snapshot the set holds, current and dropped (the set
  /// then keeps none), for release outside the lock. noexcept.
  std::pair<Retired, Retired> take_snapshots() noexcept {
    std::pair<Retired, Retired> out{Retired{std::move(base_), std::move(log_)}, std::move(retired_)};
    log_len_ = 0;
    return out;
  }

  /// The members `view` describes, as one vector: its base when it has no
  /// changes (O(1)), otherwise a new vector (O(N + changes)). For use
  /// without the lock. Throws std::bad_alloc.
  static std::shared_ptr<const Members> build(const View& view) {
    if (view.changes == 0) return view.base;
    const Change* const changes = view.log->items.get();
    bool any_left = false;
    for (std::size_t i = 0; i < view.changes && !any_left; ++i) any_left = !changes[i].sender;
    auto fresh = std::make_shared<Members>();
    fresh->reserve(view.base->size() + view.changes);
    if (!any_left) {  // joins only (ids are never reused, so no duplicates)
      *fresh = *view.base;
      for (std::size_t i = 0; i < view.changes; ++i) {
        fresh->push_back(Member{changes[i].id, changes[i].sender});
      }
      return fresh;
    }
    // A member of the base that left is out (if it joined again, its last
    // join puts it back below). The ids that left, sorted, are searched once
    // per member of the base: the O(N) part, kept to a few comparisons.
    std::vector<ConnectionId> gone;
    for (std::size_t i = 0; i < view.changes; ++i) {
      if (!changes[i].sender) gone.push_back(changes[i].id);
    }
    std::sort(gone.begin(), gone.end());
    gone.erase(std::unique(gone.begin(), gone.end()), gone.end());
    if (gone.size() <= 4) {
      for (const Member& m : *view.base) {
        if (std::find(gone.begin(), gone.end(), m.id) == gone.end()) fresh->push_back(m);
      }
    } else {
      for (const Member& m : *view.base) {
        if (!std::binary_search(gone.begin(), gone.end(), m.id)) fresh->push_back(m);
      }
    }
    // A join is in if it is the last change of its id.
    std::unordered_map<ConnectionId, std::size_t> last;
    last.reserve(view.changes);
    for (std::size_t i = 0; i < view.changes; ++i) last[changes[i].id] = i;
    for (std::size_t i = 0; i < view.changes; ++i) {
      if (changes[i].sender && last[changes[i].id] == i) {
        fresh->push_back(Member{changes[i].id, changes[i].sender});
      }
    }
    return fresh;
  }

  /// An empty log for install(), sized for about `changes` more changes.
  /// Allocate it outside the lock. Throws std::bad_alloc.
  static std::shared_ptr<ChangeLog> make_log(std::size_t changes) {
    return std::make_shared<ChangeLog>(changes < 16 ? 16 : changes);
  }

  /// Makes `fresh` (built from `view`) the new base if `view` is still of
  /// the current base and log, carrying the changes made since `view` over
  /// into `spare`; returns what it replaced, to be released outside the
  /// lock. Does nothing if another install came first, or if `spare` is
  /// too small for the changes made meanwhile (the next view() then builds
  /// from the old base). O(changes since `view`), noexcept.
  Retired install(const View& view, std::shared_ptr<const Members> fresh,
                  std::shared_ptr<ChangeLog> spare) noexcept {
    if (base_ != view.base || (view.changes != 0 && log_ != view.log)) return {};
    if (view.changes == 0 && log_len_ == 0) return {};  // nothing to do
    const std::size_t suffix = log_len_ - view.changes;
    if (suffix > spare->capacity) return {};
    for (std::size_t i = 0; i < suffix; ++i) spare->items[i] = log_->items[view.changes + i];
    Retired old{std::move(base_), std::move(log_)};
    base_ = std::move(fresh);
    log_ = std::move(spare);
    log_len_ = suffix;
    return old;
  }

 private:
  // Appends a change, if a snapshot is kept; prepare_change() made room.
  void log_change(ConnectionId id, const std::shared_ptr<Sender>& sender) noexcept {
    if (!base_) return;
    Change& c = log_->items[log_len_++];
    c.id = id;
    c.sender = sender;
  }

  Members members_;
  std::unordered_map<ConnectionId, std::size_t> index_;
  std::shared_ptr<const Members> base_;  // null: no snapshot kept
  std::shared_ptr<ChangeLog> log_;       // changes since base_: [0, log_len_)
  std::size_t log_len_ = 0;
  Retired retired_;  // dropped by prepare_change(); empty while base_ is set
};

/// Everything a registry knows, with the operations both policies share, so
/// that ActorPolicy and MutexPolicy give the same answers by construction.
/// They differ only in who may touch it when (the actor thread alone, or
/// whoever holds the mutex) and in where deliveries happen.
///
/// Presence: operations that change a topic's membership call
/// `emit(const std::string& topic, ConnectionId id, bool joined,
/// std::size_t subscribers_after)` once per change, after the whole
/// operation is applied, so what the handler sees is consistent with it.
///
/// Ownership: owns one Sender reference and one Data per connection, and
/// every topic; a topic with no member is erased at once.
///
/// Thread safety: Not thread-safe.
template <class Data>
class RegistryState {
 public:
  /// Registers `id`; false if it exists already (never, with fresh ids).
  /// Strong exception safety: on std::bad_alloc (or an exception from
  /// Data's move assignment) the registry is as it was.
  bool insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data) {
    auto [it, fresh] = connections_.try_emplace(id);
    if (!fresh) return false;
    try {
      it->second.data = std::move(data);
      all_.insert(id, sender);
    } catch (...) {
      connections_.erase(it);  // no ghost entry with a null Sender
      throw;
    }
    it->second.sender = std::move(sender);
    return true;
  }

  /// Removes `id` from every topic it is in, then from the registry, and
  /// only then emits one leave per topic, so a presence handler that looks
  /// at the registry sees the change complete. Returns its Sender (null if
  /// `id` was unknown) so the caller can let it go outside any lock. Strong
  /// exception safety: the one allocation comes before any change. `emit`
  /// must not throw.
  template <class Emit>
  std::shared_ptr<Sender> erase(ConnectionId id, Emit&& emit) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) return nullptr;
    std::vector<std::size_t> left;
    left.reserve(it->second.topics.size());  // may throw: nothing changed yet
    all_.prepare_change();                   // so may these
    std::size_t dying = 0;
    for (const std::string& name : it->second.topics) {
      const auto topic = topics_.find(name);
      if (topic == topics_.end()) continue;
      topic->second.prepare_change();
      if (topic->second.size() == 1 && topic->second.holds_snapshot()) ++dying;
    }
    graveyard_.reserve(graveyard_.size() + 2 * dying);
    std::vector<std::string> names = std::move(it->second.topics);
    std::shared_ptr<Sender> sender = std::move(it->second.sender);
    connections_.erase(it);
    all_.erase(id);
    for (const std::string& name : names) left.push_back(drop_member(name, id));
    for (std::size_t i = 0; i < names.size(); ++i) emit(names[i], id, false, left[i]);
    return sender;
  }

  /// The Sender of `id`, or null.
  const std::shared_ptr<Sender>* find(ConnectionId id) const {
    const auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : &it->second.sender;
  }

  /// Every connection, for broadcast.
  const MemberSet& everyone() const noexcept { return all_; }
  MemberSet& everyone() noexcept { return all_; }

  /// The subscribers of `topic`, or null if it has none.
  const MemberSet* topic(const std::string& name) const {
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : &it->second;
  }
  MemberSet* topic(const std::string& name) {
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : &it->second;
  }

  /// Subscribes `id` to `name`, then emits the join; false if `id` is
  /// unknown or already there. Strong exception safety: on std::bad_alloc
  /// nothing changes (a topic created for it is erased again). `emit` must
  /// not throw.
  template <class Emit>
  bool subscribe(ConnectionId id, std::string name, Emit&& emit) {
    const auto conn = connections_.find(id);
    if (conn == connections_.end()) return false;
    auto& names = conn->second.topics;
    reserve_one(names);  // so the push_back below cannot throw
    auto [topic, created] = topics_.try_emplace(std::move(name));
    std::string mine;
    try {
      mine = topic->first;
      if (!topic->second.insert(id, conn->second.sender)) return false;
    } catch (...) {
      if (created) topics_.erase(topic);
      throw;
    }
    names.push_back(std::move(mine));
    emit(topic->first, id, true, topic->second.size());
    return true;
  }

  /// Unsubscribes `id` from `name` (erasing the topic if it is left empty),
  /// then emits the leave; false if it was not subscribed. O(topics of id).
  /// Strong exception safety (the one allocation, for a snapshot's log,
  /// comes first); `emit` must not throw.
  template <class Emit>
  bool unsubscribe(ConnectionId id, const std::string& name, Emit&& emit) {
    const auto conn = connections_.find(id);
    if (conn == connections_.end()) return false;
    auto& names = conn->second.topics;
    const auto mine = std::find(names.begin(), names.end(), name);
    if (mine == names.end()) return false;
    const auto topic = topics_.find(name);
    if (topic != topics_.end()) {  // may throw: nothing changed yet
      topic->second.prepare_change();
      if (topic->second.size() == 1 && topic->second.holds_snapshot()) {
        graveyard_.reserve(graveyard_.size() + 2);
      }
    }
    std::string taken = std::move(*mine);
    *mine = std::move(names.back());
    names.pop_back();
    const std::size_t left = drop_member(taken, id);
    emit(taken, id, false, left);
    return true;
  }

  /// The topics of `id` in the order erase() emits their leaves, or null
  /// for an unknown id (for a caller that prepares its reports up front).
  const std::vector<std::string>* subscriptions(ConnectionId id) const {
    const auto conn = connections_.find(id);
    return conn == connections_.end() ? nullptr : &conn->second.topics;
  }

  /// The topics of `id`, sorted.
  std::vector<std::string> topics_of(ConnectionId id) const {
    const auto conn = connections_.find(id);
    if (conn == connections_.end()) return {};
    std::vector<std::string> names = conn->second.topics;
    std::sort(names.begin(), names.end());
    return names;
  }

  /// The subscribers of `name`, ascending.
  std::vector<ConnectionId> subscribers(const std::string& name) const {
    std::vector<ConnectionId> ids;
    if (const MemberSet* set = topic(name)) {
      ids.reserve(set->size());
      for (const Member& m : set->members()) ids.push_back(m.id);
      std::sort(ids.begin(), ids.end());
    }
    return ids;
  }

  std::size_t subscriber_count(const std::string& name) const {
    const MemberSet* set = topic(name);
    return set ? set->size() : 0;
  }

  std::size_t topic_count() const noexcept { return topics_.size(); }
  std::size_t size() const noexcept { return connections_.size(); }

  /// `id`'s data, or null.
  Data* data(ConnectionId id) {
    const auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : &it->second.data;
  }

  /// Snapshots of topics that disappeared (MutexPolicy's), to be moved out
  /// under the lock after an erase or unsubscribe and released after it.
  std::vector<MemberSet::Retired>& graveyard() noexcept { return graveyard_; }

  /// Forgets everything (ActorPolicy's thread, on exit).
  void clear() {
    topics_.clear();
    all_ = MemberSet();
    connections_.clear();
  }

 private:
  struct Connection {
    std::shared_ptr<Sender> sender;
    Data data;
    std::vector<std::string> topics;  // names, as keys of topics_; few per connection
  };

  // Takes `id` out of topic `name`, erasing the topic if it is left empty;
  // returns the subscribers left.
  std::size_t drop_member(const std::string& name, ConnectionId id) noexcept {
    const auto topic = topics_.find(name);
    if (topic == topics_.end()) return 0;
    topic->second.erase(id);
    const std::size_t left = topic->second.size();
    if (left == 0) {
      if (topic->second.holds_snapshot()) {  // room reserved by the caller
        auto snapshots = topic->second.take_snapshots();
        graveyard_.push_back(std::move(snapshots.first));
        graveyard_.push_back(std::move(snapshots.second));
      }
      topics_.erase(topic);
    }
    return left;
  }

  std::unordered_map<ConnectionId, Connection> connections_;
  std::vector<MemberSet::Retired> graveyard_;
  MemberSet all_;
  std::unordered_map<std::string, MemberSet> topics_;
};

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_REGISTRY_STATE_HPP
