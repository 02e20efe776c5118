// wsreg/detail/registry_state.hpp: connections, their data and topics; no locking.
#ifndef WSREG_DETAIL_REGISTRY_STATE_HPP
#define WSREG_DETAIL_REGISTRY_STATE_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
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

/// A sequence number later than any operation's: "not removed (yet)".
inline constexpr std::uint64_t never = ~std::uint64_t{0};

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
/// Sequence numbers (ActorPolicy's priority lane): each member records the
/// number of the operation that added it (in a vector parallel to the
/// members; MutexPolicy leaves it 0). retire() ends a member at a number:
/// it leaves the members at once (size(), the index, a new insert of the
/// same id) and becomes a "ghost", kept with its span [added, removed) for
/// the deliveries numbered inside it, until drop_ghost() lets it go. Ghosts
/// are kept in the order retired. MutexPolicy never retires a member.
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

  /// A retired member, for the deliveries numbered in (added, removed).
  struct Ghost {
    Member member;
    std::uint64_t added;
    std::uint64_t removed;
  };

  /// Adds `id`, a member from the operation numbered `added` on; false if
  /// it is a member already. O(1) amortised. Strong exception safety: on
  /// std::bad_alloc nothing changes (the vectors and the log grow first,
  /// then the index, then the steps that cannot throw).
  bool insert(ConnectionId id, const std::shared_ptr<Sender>& sender, std::uint64_t added = 0) {
    if (index_.count(id) != 0) return false;
    reserve_one(members_);
    reserve_one(added_);
    prepare_change();
    if (!index_.emplace(id, members_.size()).second) return false;
    members_.push_back(Member{id, sender});  // capacity reserved: does not throw
    added_.push_back(added);
    if (added > newest_added_) newest_added_ = added;
    log_change(id, sender);
    return true;
  }

  /// Makes room for one more ghost, so that retire() cannot fail. Throws
  /// std::bad_alloc with nothing changed (dropped ghosts at the front are
  /// compacted away first, which changes nothing a caller sees).
  void prepare_retire() {
    if (ghosts_head_ != 0 && 2 * ghosts_head_ >= ghosts_.size()) {
      ghosts_.erase(ghosts_.begin(), ghosts_.begin() + static_cast<std::ptrdiff_t>(ghosts_head_));
      ghosts_head_ = 0;
    }
    reserve_one(ghosts_);
  }

  /// Ends member `id` at the operation numbered `removed`: it leaves the
  /// members and becomes the newest ghost. False if it is not a member.
  /// Call prepare_retire() first; then it cannot fail. O(1) average.
  bool retire(ConnectionId id, std::uint64_t removed) noexcept {
    const auto it = index_.find(id);
    if (it == index_.end()) return false;
    ghosts_.push_back(Ghost{members_[it->second], added_[it->second], removed});  // room made
    erase(id);
    return true;
  }

  /// Lets go of the ghost of `id` retired at `removed`: the oldest ghost,
  /// when ghosts are dropped in the order retired (otherwise it is searched
  /// for). Its Sender reference goes with it. noexcept.
  void drop_ghost(ConnectionId id, std::uint64_t removed) noexcept {
    for (std::size_t i = ghosts_head_; i < ghosts_.size(); ++i) {
      if (ghosts_[i].member.id != id || ghosts_[i].removed != removed) continue;
      if (i != ghosts_head_) std::swap(ghosts_[i], ghosts_[ghosts_head_]);  // out of order
      ghosts_[ghosts_head_].member.sender.reset();
      if (++ghosts_head_ == ghosts_.size()) {
        ghosts_.clear();  // keeps its capacity
        ghosts_head_ = 0;
      }
      return;
    }
  }

  /// Whether a delivery numbered `seq` reaches every member and no ghost
  /// (no member added at or after it, no ghost), so that a delivery loop
  /// may skip the checks. O(1).
  bool all_current_at(std::uint64_t seq) const noexcept {
    return newest_added_ < seq && ghosts_head_ == ghosts_.size();
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
      added_[hole] = added_.back();
      index_.find(members_[hole].id)->second = hole;  // find, not []: never allocates
    }
    members_.pop_back();
    added_.pop_back();
    log_change(id, nullptr);
    return true;
  }

  bool contains(ConnectionId id) const { return index_.count(id) != 0; }
  std::size_t size() const noexcept { return members_.size(); }
  bool empty() const noexcept { return members_.empty(); }
  /// No member and no ghost.
  bool vacant() const noexcept { return members_.empty() && ghosts_head_ == ghosts_.size(); }
  const Members& members() const noexcept { return members_; }
  /// added()[i] is the number of the operation that added members()[i].
  const std::vector<std::uint64_t>& added() const noexcept { return added_; }
  /// The ghosts not yet dropped, oldest first.
  const Ghost* ghosts_begin() const noexcept { return ghosts_.data() + ghosts_head_; }
  const Ghost* ghosts_end() const noexcept { return ghosts_.data() + ghosts_.size(); }

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
  std::vector<std::uint64_t> added_;  // added_[i] is members_[i]'s
  std::unordered_map<ConnectionId, std::size_t> index_;
  std::uint64_t newest_added_ = 0;    // the largest `added` ever inserted
  std::vector<Ghost> ghosts_;         // in the order retired; [0, ghosts_head_) dropped
  std::size_t ghosts_head_ = 0;
  std::shared_ptr<const Members> base_;  // null: no snapshot kept
  std::shared_ptr<ChangeLog> log_;       // changes since base_: [0, log_len_)
  std::size_t log_len_ = 0;
  Retired retired_;  // dropped by prepare_change(); empty while base_ is set
};

/// Calls Sender::send(payload) once on every member and ghost of `set` but
/// `except` that the delivery numbered `seq` reaches (added before it, and
/// for a ghost removed after it), then adds the results to `counters`.
/// ActorPolicy's delivery loop, on the actor thread. When every member is
/// current and there is no ghost (the usual case, with no backlog) it is
/// detail::deliver's loop.
inline void deliver_at(const MemberSet& set, const Payload& payload, ConnectionId except,
                       std::uint64_t seq, StatsCounters& counters) {
  if (set.all_current_at(seq)) {
    deliver(set.members(), payload, except, counters);
    return;
  }
  DeliveryTally tally;
  const Members& members = set.members();
  const std::uint64_t* const added = set.added().data();
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].id != except && added[i] < seq) tally.record(members[i].sender->send(payload));
  }
  for (const MemberSet::Ghost* g = set.ghosts_begin(); g != set.ghosts_end(); ++g) {
    if (g->member.id != except && g->added < seq && seq < g->removed) {
      tally.record(g->member.sender->send(payload));
    }
  }
  tally.flush_into(counters);
}

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
/// Logical removal (ActorPolicy): retire() and retire_subscription() end a
/// connection, or one of its subscriptions, at a sequence number. Every
/// query, count and later change (a new subscription of the same id to the
/// same topic included) sees it gone at once; only deliveries numbered
/// before the removal (send_target_at(), deliver_at()) still reach it, as
/// a ghost in its sets. Each such removal is queued (its "retirement"), in
/// the order applied, which is sequence order, and purge_one() makes the
/// oldest one physical once the caller has applied every delivery numbered
/// before it. MutexPolicy uses erase() and unsubscribe(), physical at once.
///
/// Ownership: owns one Sender reference and one Data per connection, and
/// every topic; a topic with no member is erased at once (with no live
/// member, it is gone for every query at once).
///
/// Thread safety: Not thread-safe.
template <class Data>
class RegistryState {
 public:
  /// Registers `id`, live from the operation numbered `seq` (0: always);
  /// false if it exists already (never, with fresh ids). Strong exception
  /// safety: on std::bad_alloc (or an exception from Data's move
  /// assignment) the registry is as it was.
  bool insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data, std::uint64_t seq = 0) {
    auto [it, fresh] = connections_.try_emplace(id);
    if (!fresh) return false;
    try {
      it->second.data = std::move(data);
      all_.insert(id, sender, seq);
    } catch (...) {
      connections_.erase(it);  // no ghost entry with a null Sender
      throw;
    }
    it->second.sender = std::move(sender);
    it->second.added = seq;
    return true;
  }

  /// Removes `id` from every topic it is in, then from the registry, and
  /// only then emits one leave per topic, so a presence handler that looks
  /// at the registry sees the change complete. Returns its Sender (null if
  /// `id` was unknown) so the caller can let it go outside any lock. Strong
  /// exception safety: the one allocation comes before any change. `emit`
  /// must not throw. Physical at once (MutexPolicy).
  template <class Emit>
  std::shared_ptr<Sender> erase(ConnectionId id, Emit&& emit) {
    const auto it = connections_.find(id);
    if (it == connections_.end() || it->second.removed != never) return nullptr;
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

  /// Ends `id` logically at the operation numbered `seq` (ActorPolicy): it
  /// leaves every topic it is in, then the registry, and then one leave per
  /// topic is emitted, as erase() does; but it stays, retired, for the
  /// deliveries numbered before `seq`, until purge_one() reaches this
  /// retirement. False if `id` is unknown or already removed. Strong
  /// exception safety: the one allocation comes first. `emit` must not throw.
  template <class Emit>
  bool retire(ConnectionId id, std::uint64_t seq, Emit&& emit) {
    const auto it = connections_.find(id);
    if (it == connections_.end() || it->second.removed != never) return false;
    Connection& conn = it->second;
    make_room_for_retirement();  // these may throw: nothing changed yet
    all_.prepare_retire();
    for (const std::string& name : conn.topics) {
      const auto topic = topics_.find(name);
      if (topic != topics_.end()) topic->second.prepare_retire();
    }
    for (const std::string& name : conn.topics) {
      const auto topic = topics_.find(name);
      if (topic != topics_.end() && topic->second.retire(id, seq) && topic->second.empty()) {
        --live_topics_;
      }
    }
    all_.retire(id, seq);
    conn.removed = seq;
    ++retired_connections_;
    retirements_.push_back(Retirement{seq, id, true, std::string()});  // room made: no throw
    for (const std::string& name : conn.topics) emit(name, id, false, subscriber_count(name));
    return true;
  }

  /// Ends `id`'s subscription to `name` logically at the operation numbered
  /// `seq` (ActorPolicy), then emits the leave, as unsubscribe() does; the
  /// membership stays, retired, for the publishes numbered before `seq`.
  /// False if `id` is unknown, removed, or not subscribed. Strong exception
  /// safety. `emit` must not throw.
  template <class Emit>
  bool retire_subscription(ConnectionId id, const std::string& name, std::uint64_t seq,
                           Emit&& emit) {
    const auto conn = connections_.find(id);
    if (conn == connections_.end() || conn->second.removed != never) return false;
    auto& names = conn->second.topics;
    const auto mine = std::find(names.begin(), names.end(), name);
    if (mine == names.end()) return false;
    const auto topic = topics_.find(name);
    if (topic == topics_.end()) return false;  // not reached: a subscription has its topic
    make_room_for_retirement();  // these may throw: nothing changed yet
    topic->second.prepare_retire();
    Retirement retirement{seq, id, false, std::move(*mine)};  // moves: no throw
    *mine = std::move(names.back());
    names.pop_back();
    if (topic->second.retire(id, seq) && topic->second.empty()) --live_topics_;
    retirements_.push_back(std::move(retirement));
    emit(topic->first, id, false, topic->second.size());
    return true;
  }

  /// Whether a retirement waits for purge_one().
  bool retiring() const noexcept { return retirements_head_ != retirements_.size(); }

  /// The sequence number of the oldest retirement, or `never` if none waits.
  std::uint64_t oldest_retirement() const noexcept {
    return retiring() ? retirements_[retirements_head_].seq : never;
  }

  /// Makes the oldest retirement physical: its ghosts leave their sets (a
  /// set left with no member and no ghost goes), and a retired connection
  /// its entry. Returns the connection's Sender (null for a subscription)
  /// for the caller to let go once the state is consistent again: its
  /// destructor may call the registry. Call only if retiring(), once every
  /// delivery numbered before oldest_retirement() has been made. noexcept.
  std::shared_ptr<Sender> purge_one() noexcept {
    Retirement& oldest = retirements_[retirements_head_];
    std::shared_ptr<Sender> sender;
    if (oldest.connection) {
      const auto it = connections_.find(oldest.id);
      if (it != connections_.end()) {
        for (const std::string& name : it->second.topics) unlink(name, oldest.id, oldest.seq);
        all_.drop_ghost(oldest.id, oldest.seq);
        sender = std::move(it->second.sender);
        connections_.erase(it);
        --retired_connections_;
      }
    } else {
      unlink(oldest.topic, oldest.id, oldest.seq);
    }
    if (++retirements_head_ == retirements_.size()) {
      retirements_.clear();  // keeps its capacity
      retirements_head_ = 0;
    }
    return sender;
  }

  /// The Sender of live `id`, or null.
  const std::shared_ptr<Sender>* find(ConnectionId id) const {
    const auto it = connections_.find(id);
    return it == connections_.end() || it->second.removed != never ? nullptr : &it->second.sender;
  }

  /// The Sender of `id` for the delivery numbered `seq`: null unless `id`
  /// was added before it and not removed before it (ActorPolicy).
  const std::shared_ptr<Sender>* send_target_at(ConnectionId id, std::uint64_t seq) const {
    const auto it = connections_.find(id);
    if (it == connections_.end()) return nullptr;
    const Connection& conn = it->second;
    return conn.added < seq && seq < conn.removed ? &conn.sender : nullptr;
  }

  /// Every connection, for broadcast (retired ones as ghosts).
  const MemberSet& everyone() const noexcept { return all_; }
  MemberSet& everyone() noexcept { return all_; }

  /// The members of `topic`, or null if it has none (members or ghosts).
  const MemberSet* topic(const std::string& name) const {
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : &it->second;
  }
  MemberSet* topic(const std::string& name) {
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : &it->second;
  }

  /// Subscribes `id` to `name` from the operation numbered `seq` (0:
  /// always), then emits the join; false if `id` is unknown or removed, or
  /// already there (a ghost of an earlier subscription does not count).
  /// Strong exception safety: on
  /// std::bad_alloc nothing changes (a topic created for it is erased
  /// again). `emit` must not throw.
  template <class Emit>
  bool subscribe(ConnectionId id, std::string name, Emit&& emit, std::uint64_t seq = 0) {
    const auto conn = connections_.find(id);
    if (conn == connections_.end() || conn->second.removed != never) return false;
    auto& names = conn->second.topics;
    reserve_one(names);  // so the push_back below cannot throw
    auto [topic, created] = topics_.try_emplace(std::move(name));
    std::string mine;
    try {
      mine = topic->first;
      if (!topic->second.insert(id, conn->second.sender, seq)) return false;
    } catch (...) {
      if (created) topics_.erase(topic);
      throw;
    }
    names.push_back(std::move(mine));
    if (topic->second.size() == 1) ++live_topics_;
    emit(topic->first, id, true, topic->second.size());
    return true;
  }

  /// Unsubscribes `id` from `name` (erasing the topic if it is left empty),
  /// then emits the leave; false if it was not subscribed. O(topics of id).
  /// Strong exception safety (the one allocation, for a snapshot's log,
  /// comes first); `emit` must not throw. Physical at once (MutexPolicy).
  template <class Emit>
  bool unsubscribe(ConnectionId id, const std::string& name, Emit&& emit) {
    const auto conn = connections_.find(id);
    if (conn == connections_.end() || conn->second.removed != never) return false;
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

  /// The topics of live `id` in the order erase() emits their leaves, or
  /// null for an unknown or removed id (for a caller that prepares its
  /// reports up front).
  const std::vector<std::string>* subscriptions(ConnectionId id) const {
    const auto conn = connections_.find(id);
    return conn == connections_.end() || conn->second.removed != never ? nullptr
                                                                       : &conn->second.topics;
  }

  /// The topics of `id`, sorted (none for an unknown or removed id).
  std::vector<std::string> topics_of(ConnectionId id) const {
    const auto* names = subscriptions(id);
    if (names == nullptr) return {};
    std::vector<std::string> sorted = *names;
    std::sort(sorted.begin(), sorted.end());
    return sorted;
  }

  /// The live subscribers of `name`, ascending.
  std::vector<ConnectionId> subscribers(const std::string& name) const {
    std::vector<ConnectionId> ids;
    if (const MemberSet* set = topic(name)) {
      ids.reserve(set->size());
      for (const Member& m : set->members()) ids.push_back(m.id);
      std::sort(ids.begin(), ids.end());
    }
    return ids;
  }

  /// The live subscribers of `name`, counted.
  std::size_t subscriber_count(const std::string& name) const {
    const MemberSet* set = topic(name);
    return set ? set->size() : 0;
  }

  /// The topics with a live subscriber.
  std::size_t topic_count() const noexcept { return live_topics_; }
  /// The live connections.
  std::size_t size() const noexcept { return connections_.size() - retired_connections_; }

  /// `id`'s data while its entry exists, retired included (until
  /// purge_one() reaches it), or null: what ActorPolicy's presence report
  /// of a removal gives the handler.
  const Data* entry_data(ConnectionId id) const {
    const auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : &it->second.data;
  }

  /// Live `id`'s data, or null.
  Data* data(ConnectionId id) {
    const auto it = connections_.find(id);
    return it == connections_.end() || it->second.removed != never ? nullptr : &it->second.data;
  }

  /// Snapshots of topics that disappeared (MutexPolicy's), to be moved out
  /// under the lock after an erase or unsubscribe and released after it.
  std::vector<MemberSet::Retired>& graveyard() noexcept { return graveyard_; }

  /// Forgets everything (ActorPolicy's thread, on exit).
  void clear() {
    topics_.clear();
    all_ = MemberSet();
    connections_.clear();
    retirements_.clear();
    retirements_head_ = 0;
    retired_connections_ = 0;
    live_topics_ = 0;
  }

 private:
  struct Connection {
    std::shared_ptr<Sender> sender;
    Data data;
    std::vector<std::string> topics;  // live subscriptions, as keys of topics_; few per connection
    std::uint64_t added = 0;          // the number of the operation that added it,
    std::uint64_t removed = never;    // and of the one that removed it (never: live)
  };

  // A logical removal not yet made physical: of the connection `id` (and
  // of the subscriptions it still had), or of its subscription to `topic`.
  struct Retirement {
    std::uint64_t seq;
    ConnectionId id;
    bool connection;
    std::string topic;
  };

  // Makes room for one more retirement, so that the push_back after the
  // change cannot throw: first by dropping the purged ones at the front
  // (moves, no allocation) once they are half the vector, then by growth.
  // Throws std::bad_alloc with nothing changed.
  void make_room_for_retirement() {
    if (retirements_head_ != 0 && 2 * retirements_head_ >= retirements_.size()) {
      retirements_.erase(retirements_.begin(),
                         retirements_.begin() + static_cast<std::ptrdiff_t>(retirements_head_));
      retirements_head_ = 0;
    }
    reserve_one(retirements_);
  }

  // Drops the ghost of `id` retired at `seq` from topic `name`, erasing the
  // topic if that leaves it vacant (ActorPolicy's purge; it keeps no
  // snapshots, so there are none to retire).
  void unlink(const std::string& name, ConnectionId id, std::uint64_t seq) noexcept {
    const auto topic = topics_.find(name);
    if (topic == topics_.end()) return;
    topic->second.drop_ghost(id, seq);
    if (topic->second.vacant()) topics_.erase(topic);
  }

  // Takes `id` out of topic `name`, erasing the topic if it is left empty;
  // returns the subscribers left. Physical at once (MutexPolicy).
  std::size_t drop_member(const std::string& name, ConnectionId id) noexcept {
    const auto topic = topics_.find(name);
    if (topic == topics_.end()) return 0;
    if (!topic->second.erase(id)) return topic->second.size();
    const std::size_t left = topic->second.size();
    if (left == 0) --live_topics_;
    if (topic->second.vacant()) {
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
  std::size_t live_topics_ = 0;          // topics with a live member
  std::size_t retired_connections_ = 0;  // entries of connections_ retired, not yet purged
  // Retirements in the order applied (ascending seq); [0, head) are purged.
  std::vector<Retirement> retirements_;
  std::size_t retirements_head_ = 0;
};

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_REGISTRY_STATE_HPP
