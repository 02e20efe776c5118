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
/// Thread safety: Not thread-safe; the policy serialises access.
class MemberSet {
 public:
  /// Adds `id`; false if it was already there. O(1) amortised. Strong
  /// exception safety: on std::bad_alloc nothing changes (the vector grows
  /// first, then the index, then the push_back that can no longer throw).
  bool insert(ConnectionId id, const std::shared_ptr<Sender>& sender) {
    if (index_.count(id) != 0) return false;
    reserve_one(members_);
    if (!index_.emplace(id, members_.size()).second) return false;
    members_.push_back(Member{id, sender});  // capacity reserved: does not throw
    snapshot_.reset();
    return true;
  }

  /// Removes `id`; false if it was not there. O(1) average. Does not
  /// allocate, so it cannot fail halfway.
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
    snapshot_.reset();
    return true;
  }

  bool contains(ConnectionId id) const { return index_.count(id) != 0; }
  std::size_t size() const noexcept { return members_.size(); }
  bool empty() const noexcept { return members_.empty(); }
  const Members& members() const noexcept { return members_; }

  /// The members as an immutable shared copy, made on the first call after
  /// a change (O(N)) and shared until the next change (O(1)): what lets
  /// MutexPolicy deliver outside its lock.
  std::shared_ptr<const Members> snapshot() const {
    if (!snapshot_) snapshot_ = std::make_shared<const Members>(members_);
    return snapshot_;
  }

 private:
  Members members_;
  std::unordered_map<ConnectionId, std::size_t> index_;
  mutable std::shared_ptr<const Members> snapshot_;  // null when stale
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

  /// The subscribers of `topic`, or null if it has none.
  const MemberSet* topic(const std::string& name) const {
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
  /// Does not allocate; `emit` must not throw.
  template <class Emit>
  bool unsubscribe(ConnectionId id, const std::string& name, Emit&& emit) {
    const auto conn = connections_.find(id);
    if (conn == connections_.end()) return false;
    auto& names = conn->second.topics;
    const auto mine = std::find(names.begin(), names.end(), name);
    if (mine == names.end()) return false;
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
    if (left == 0) topics_.erase(topic);
    return left;
  }

  std::unordered_map<ConnectionId, Connection> connections_;
  MemberSet all_;
  std::unordered_map<std::string, MemberSet> topics_;
};

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_REGISTRY_STATE_HPP
