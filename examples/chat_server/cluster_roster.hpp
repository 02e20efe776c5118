// cluster_roster.hpp: one member list per room across the chat servers of a cluster.
#ifndef WSREG_EXAMPLES_CHAT_CLUSTER_ROSTER_HPP
#define WSREG_EXAMPLES_CHAT_CLUSTER_ROSTER_HPP

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "protocol.hpp"
#include "roster.hpp"
#include "wsreg/cluster.hpp"

namespace chat {

/// Keeps the member list of every room with a member on this server
/// current for this server's members, across the cluster: a thread asks
/// the cluster for the room's members (Cluster::presence, with each
/// connection's nick as its presence info) when a local member joins or
/// leaves, and every `period` for every room, so that joins and leaves on
/// the other servers show within `period` plus a round trip; a list that
/// changed goes to this server's members only (local_publish), so each
/// server's lists reach its own clients in the order it made them.
/// "joined" and "left" notices need nothing of this: ChatRooms publishes
/// them, and the cluster carries them to every server.
///
/// Ownership: refers to the registry and the cluster, which must outlive
/// it; owns its thread, joined by the destructor.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe.
template <class Registry, class Cluster>
class ClusterRoster final : public Roster {
 public:
  ClusterRoster(Registry& registry, Cluster& cluster,
                std::chrono::milliseconds period = std::chrono::milliseconds(1000))
      : registry_(registry), cluster_(cluster), period_(period) {
    cluster_.set_presence_info([this](wsreg::ConnectionId id) {
      const auto user = registry_.data(id);
      return user ? user->nick : std::string();
    });
    thread_ = std::thread([this] { run(); });
  }

  ~ClusterRoster() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    cluster_.set_presence_info(nullptr);
  }

  ClusterRoster(const ClusterRoster&) = delete;
  ClusterRoster& operator=(const ClusterRoster&) = delete;

  void changed(const std::string& room, bool gone) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (gone) {
        rooms_.erase(room);
        dirty_.erase(room);
      } else {
        rooms_.try_emplace(room);
        dirty_.insert(room);
      }
    }
    wake_.notify_all();
  }

  std::vector<std::string> members(const std::string& room) override {
    std::vector<std::string> nicks = cluster_.presence(room).info;
    nicks.erase(std::remove(nicks.begin(), nicks.end(), std::string()), nicks.end());
    std::sort(nicks.begin(), nicks.end());
    return nicks;
  }

 private:
  void run() {
    auto next_sweep = std::chrono::steady_clock::now() + period_;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      wake_.wait_until(lock, next_sweep, [&] { return stopping_ || !dirty_.empty(); });
      if (stopping_) break;
      std::map<std::string, bool> due;  // room -> send even if unchanged
      if (std::chrono::steady_clock::now() >= next_sweep) {
        for (const auto& [room, last] : rooms_) due.emplace(room, false);
        next_sweep = std::chrono::steady_clock::now() + period_;
      }
      for (const std::string& room : dirty_) due[room] = true;
      dirty_.clear();
      lock.unlock();
      for (const auto& [room, always] : due) refresh(room, always);
      lock.lock();
    }
  }

  // Asks the cluster for `room`'s members; sends the list to this server's
  // members if it differs from the last one they got, or `always` (a local
  // member just joined: it has no list yet).
  void refresh(const std::string& room, bool always) {
    std::vector<std::string> nicks = members(room);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = rooms_.find(room);
      if (it == rooms_.end() || (!always && it->second == nicks)) return;  // gone, or unchanged
      it->second = nicks;
    }
    // Only this thread sends lists, so they go out in the order made.
    registry_.local_publish(room, members_frame(room, nicks));
  }

  Registry& registry_;
  Cluster& cluster_;
  const std::chrono::milliseconds period_;
  // Guards rooms_ (the rooms with a local member, and the last list sent
  // to them), dirty_ (rooms to refresh now) and stopping_.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, std::vector<std::string>> rooms_;
  std::set<std::string> dirty_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace chat

#endif  // WSREG_EXAMPLES_CHAT_CLUSTER_ROSTER_HPP
