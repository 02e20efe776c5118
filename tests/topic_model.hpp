// tests/topic_model.hpp: a sequential model of topic membership, a worker that
// churns a registry's topics from one thread and records every call it made,
// and a thread-safe log of presence events.
#ifndef WSREG_TESTS_TOPIC_MODEL_HPP
#define WSREG_TESTS_TOPIC_MODEL_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/presence.hpp"
#include "wsreg/sender.hpp"

namespace wsreg_test {

/// The name of topic number `index`.
inline std::string topic_name(int index) { return "topic-" + std::to_string(index); }

/// The number a payload's text carries (publishes are numbered by tags).
inline std::uint64_t tag_of(const wsreg::Payload& payload) {
  return std::stoull(std::string(payload.data()));
}

/// One registry call a ChurnWorker made, as TopicModel replays it.
struct TopicOp {
  enum class Kind { add, remove, subscribe, unsubscribe, publish };
  Kind kind = Kind::add;
  /// add: the id add() returned; remove, subscribe, unsubscribe: the target;
  /// publish: the except id (no_connection: nobody).
  wsreg::ConnectionId id = wsreg::no_connection;
  /// subscribe, unsubscribe and publish: the topic's number.
  int topic = -1;
  /// publish: the number the payload carries, unique within a test.
  std::uint64_t tag = 0;
};

/// What a registry should do, one call at a time: which connections exist,
/// which topics each is in, who a publish reaches and which presence events a
/// call makes. Plain sets, no cleverness, so that it is obviously right.
///
/// Thread safety: Not thread-safe (the main thread replays after join()).
class TopicModel {
 public:
  struct Outcome {
    /// publish: the recipients, ascending.
    std::vector<wsreg::ConnectionId> recipients;
    /// The presence changes the call made for op.id: (topic, joined).
    std::vector<std::pair<int, bool>> presence;
  };

  Outcome apply(const TopicOp& op) {
    Outcome out;
    switch (op.kind) {
      case TopicOp::Kind::add:
        connections_.emplace(op.id, std::set<int>());
        break;
      case TopicOp::Kind::remove: {
        const auto conn = connections_.find(op.id);
        if (conn == connections_.end()) break;
        for (int topic : conn->second) {
          leave(topic, op.id);
          out.presence.emplace_back(topic, false);
        }
        connections_.erase(conn);
        break;
      }
      case TopicOp::Kind::subscribe: {
        const auto conn = connections_.find(op.id);
        if (conn == connections_.end() || !conn->second.insert(op.topic).second) break;
        topics_[op.topic].insert(op.id);
        out.presence.emplace_back(op.topic, true);
        break;
      }
      case TopicOp::Kind::unsubscribe: {
        const auto conn = connections_.find(op.id);
        if (conn == connections_.end() || conn->second.erase(op.topic) == 0) break;
        leave(op.topic, op.id);
        out.presence.emplace_back(op.topic, false);
        break;
      }
      case TopicOp::Kind::publish: {
        const auto topic = topics_.find(op.topic);
        if (topic == topics_.end()) break;
        for (wsreg::ConnectionId id : topic->second) {
          if (id != op.id) out.recipients.push_back(id);
        }
        break;
      }
    }
    return out;
  }

  bool alive(wsreg::ConnectionId id) const { return connections_.count(id) != 0; }

  /// The topic names of `id`, sorted as strings (the registry's order).
  std::vector<std::string> topics_of(wsreg::ConnectionId id) const {
    std::vector<std::string> names;
    const auto conn = connections_.find(id);
    if (conn != connections_.end()) {
      for (int topic : conn->second) names.push_back(topic_name(topic));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  /// The subscribers of topic number `topic`, ascending.
  std::vector<wsreg::ConnectionId> subscribers(int topic) const {
    const auto it = topics_.find(topic);
    if (it == topics_.end()) return {};
    return std::vector<wsreg::ConnectionId>(it->second.begin(), it->second.end());
  }

  std::size_t topic_count() const { return topics_.size(); }
  std::size_t size() const { return connections_.size(); }

  /// Every connection alive, ascending.
  std::vector<wsreg::ConnectionId> connections() const {
    std::vector<wsreg::ConnectionId> ids;
    for (const auto& conn : connections_) ids.push_back(conn.first);
    return ids;
  }

 private:
  void leave(int topic, wsreg::ConnectionId id) {
    const auto it = topics_.find(topic);
    it->second.erase(id);
    if (it->second.empty()) topics_.erase(it);  // a topic exists while it has members
  }

  std::map<wsreg::ConnectionId, std::set<int>> connections_;
  std::map<int, std::set<wsreg::ConnectionId>> topics_;
};

/// Drives one registry from one thread with a random mix of add, remove,
/// subscribe, unsubscribe and publish over a few connections of its own and
/// `topics` shared topics (plus topic number `topics`, which nobody ever
/// joins), and records every call in order.
///
/// Only this worker changes the memberships of its own connections, so their
/// end state, and which of this worker's own publishes reach them, follow
/// from its own calls alone, whatever the interleaving with other workers:
/// replaying every worker's record through one TopicModel predicts them.
///
/// Thread safety: run() on one thread; the accessors after it was joined.
template <class Registry>
class ChurnWorker {
 public:
  /// Connections of its own a worker has at most at once.
  static constexpr std::size_t max_live = 4;
  /// A subscribe, unsubscribe or remove targets one of the last this many of
  /// its connections (some already removed, to exercise the ignored cases).
  static constexpr std::size_t recent = 6;

  ChurnWorker(Registry& registry, int index, std::uint32_t seed, int topics)
      : registry_(registry), index_(index), rng_(seed), topics_(topics) {}

  /// Spins until `go`, then makes `count` calls.
  void run(std::size_t count, const std::atomic<bool>& go) {
    while (!go.load()) std::this_thread::yield();
    for (std::size_t i = 0; i < count; ++i) step();
  }

  int index() const { return index_; }
  const std::vector<TopicOp>& ops() const { return ops_; }
  /// Every connection this worker added, with its sender.
  const std::map<wsreg::ConnectionId, std::shared_ptr<RecordingSender>>& senders() const {
    return senders_;
  }

  /// The tag of this worker's publish number `seq`: unique across workers.
  static std::uint64_t tag(int index, std::uint64_t seq) {
    return (static_cast<std::uint64_t>(index) + 1) << 32 | seq;
  }
  /// The worker that made the publish tagged `tag`.
  static int publisher_of(std::uint64_t tag) { return static_cast<int>(tag >> 32) - 1; }

 private:
  void step() {
    const int roll = pick(100);
    if (mine_.empty() || (roll < 12 && live_.size() < max_live)) {
      add();
    } else if (roll < 22) {
      record({TopicOp::Kind::remove, some_connection()});
      registry_.remove(ops_.back().id);
      live_.erase(ops_.back().id);
    } else if (roll < 52) {
      record({TopicOp::Kind::subscribe, some_connection(), pick(topics_)});
      registry_.subscribe(ops_.back().id, topic_name(ops_.back().topic));
    } else if (roll < 54) {
      // An id no add() ever returned: ignored.
      record({TopicOp::Kind::subscribe, wsreg::ConnectionId{1} << 48, pick(topics_)});
      registry_.subscribe(ops_.back().id, topic_name(ops_.back().topic));
    } else if (roll < 74) {
      // Topic number topics_ never exists: an unknown topic, ignored.
      record({TopicOp::Kind::unsubscribe, some_connection(), pick(topics_ + 1)});
      registry_.unsubscribe(ops_.back().id, topic_name(ops_.back().topic));
    } else {
      const wsreg::ConnectionId except = pick(2) == 0 ? some_connection() : wsreg::no_connection;
      record({TopicOp::Kind::publish, except, pick(topics_ + 1), tag(index_, next_seq_++)});
      registry_.publish(topic_name(ops_.back().topic),
                        wsreg::Payload::text(std::to_string(ops_.back().tag)), except);
    }
  }

  void add() {
    auto sender = std::make_shared<RecordingSender>();
    const wsreg::ConnectionId id = registry_.add(sender);
    senders_.emplace(id, std::move(sender));
    mine_.push_back(id);
    live_.insert(id);
    record({TopicOp::Kind::add, id});
  }

  wsreg::ConnectionId some_connection() {
    const std::size_t window = std::min(mine_.size(), recent);
    return mine_[mine_.size() - 1 - static_cast<std::size_t>(pick(static_cast<int>(window)))];
  }

  int pick(int bound) { return std::uniform_int_distribution<int>(0, bound - 1)(rng_); }

  void record(const TopicOp& op) { ops_.push_back(op); }

  Registry& registry_;
  const int index_;
  std::mt19937 rng_;
  const int topics_;
  std::uint64_t next_seq_ = 0;
  std::vector<TopicOp> ops_;
  std::vector<wsreg::ConnectionId> mine_;
  std::set<wsreg::ConnectionId> live_;
  std::map<wsreg::ConnectionId, std::shared_ptr<RecordingSender>> senders_;
};

/// Every presence event a handler was given, copied (an event's topic view
/// dies with the call). Thread-safe: under MutexPolicy the handler runs on
/// whichever threads change topics, several at once.
class PresenceLog {
 public:
  struct Entry {
    std::string topic;
    wsreg::ConnectionId id;
    bool joined;
    std::size_t subscribers;

    bool operator==(const Entry& o) const {
      return topic == o.topic && id == o.id && joined == o.joined && subscribers == o.subscribers;
    }
  };

  /// A handler that appends to `log`, keeping it alive as long as it is
  /// held; for a registry of any Data (it converts to PresenceHandler<Data>).
  static auto handler(std::shared_ptr<PresenceLog> log) {
    return [log = std::move(log)](const auto& e) {
      std::lock_guard<std::mutex> lock(log->mutex_);
      log->entries_.push_back(Entry{std::string(e.topic), e.id, e.joined, e.subscribers});
    };
  }

  std::vector<Entry> entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_;
  }

 private:
  // This mutex synchronizes all access to entries_.
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

/// For Catch2's failure messages.
inline std::ostream& operator<<(std::ostream& os, const PresenceLog::Entry& e) {
  return os << "{" << e.topic << ", id " << e.id << ", " << (e.joined ? "joined" : "left") << ", "
            << e.subscribers << "}";
}

}  // namespace wsreg_test

#endif
