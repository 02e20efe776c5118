// examples/chat_server/chat.hpp: chat rooms over a registry's topics.
#ifndef WSREG_EXAMPLES_CHAT_CHAT_HPP
#define WSREG_EXAMPLES_CHAT_CHAT_HPP

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "protocol.hpp"
#include "roster.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/presence.hpp"

namespace chat {

/// What the registry keeps per connection: its nickname, and whether it is
/// fixed. A connection opened with /?nick=N starts with N, fixed: its joins
/// may leave "nick" out, and a join with another nick is a nick_mismatch.
/// Otherwise the nick is empty until the first join, and may change while
/// the connection is in no room. One nickname per connection, in all its rooms.
struct ChatUser {
  std::string nick;
  bool fixed = false;  ///< set by the handshake (?nick=); never changes
};

/// The chat's logic. A room is a registry topic: joining subscribes, saying
/// publishes, leaving unsubscribes, and a closed connection leaves all its
/// rooms because the registry removes it. The registry's presence handler
/// announces every join and leave, however it happened, to the room with a
/// "joined" or "left" frame and the room's new member list.
///
/// Names come from the registry alone: a presence event carries the
/// connection's ChatUser (a leave by a closed connection its last one, so
/// the "left" frame names the leaver), and a member list is the room's
/// subscribers() with each one's data(). The presence handler publishes
/// under mutex_, so the lists reach every client in the order of the
/// changes and the last one a client gets is current. A "members" request
/// cannot read the registry under mutex_ (under ActorPolicy that waits for
/// the actor, whose presence handler may be waiting for mutex_), so it reads
/// outside it and sends only if the room's stamp (bumped under mutex_ by
/// every change) did not move meanwhile; otherwise it reads again.
///
/// Threads: on_message() runs on the server's io threads (one connection's
/// messages one at a time, in order). on_presence() runs on ActorPolicy's
/// actor thread, or under MutexPolicy on the io thread whose call changed
/// the membership. Under ActorPolicy, on_message() calls registry members
/// that wait for the actor (topics_of, subscribers, data, flush); it never
/// waits for the actor while holding mutex_, which the actor's presence
/// handler takes, so the two cannot deadlock. The presence handler's
/// queries answer at once on the actor thread; under MutexPolicy they take
/// the registry's lock inside mutex_, never the other way round (the
/// handler runs after the registry released its lock).
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe.
template <class Policy>
class ChatRooms {
 public:
  using Registry = wsreg::ConnectionRegistry<Policy, ChatUser>;

  /// Installs the presence handler on `registry`, which must outlive this
  /// object. Construct it before the server starts listening.
  explicit ChatRooms(Registry& registry) : registry_(registry) {
    registry_.set_presence_handler(
        [this](const wsreg::PresenceEvent<ChatUser>& e) { on_presence(e); });
  }

  /// Removes the presence handler and waits until the actor has applied
  /// that (ActorPolicy), so it no longer runs. Destroy it only when no other
  /// thread changes the registry's topics any more (main.cpp: after the
  /// server), or a change in flight on such a thread (MutexPolicy) could
  /// still call the handler.
  ~ChatRooms() {
    registry_.set_presence_handler(nullptr);
    registry_.flush();
  }

  ChatRooms(const ChatRooms&) = delete;
  ChatRooms& operator=(const ChatRooms&) = delete;

  /// On several servers (cluster_roster.hpp): member lists come from
  /// `roster`, which spans them, instead of this server's registry alone.
  /// Call before the server starts; `roster` must outlive this object's use.
  void set_roster(Roster* roster) { roster_ = roster; }

  /// Handles one inbound frame from connection `id`: a valid request acts,
  /// anything else gets an error frame back and changes nothing. Thread-safe;
  /// call it from the server's message handler.
  void on_message(wsreg::ConnectionId id, const wsreg::Payload& frame) {
    Request request = parse_request(frame);
    std::visit([&](auto& valid_or_not) { handle(id, valid_or_not); }, request);
  }

 private:
  void handle(wsreg::ConnectionId id, const Invalid& invalid) { reply_error(id, invalid.error); }

  void handle(wsreg::ConnectionId id, Join& join) {
    // The registry is the truth about this connection's rooms and nick.
    // (ActorPolicy: both calls wait for the actor, so they see every change
    // this connection's earlier messages made.)
    const std::vector<std::string> rooms = registry_.topics_of(id);
    if (contains(rooms, join.room)) return reply_error(id, errors::already_in_room);
    if (rooms.size() >= max_rooms_per_connection) return reply_error(id, errors::too_many_rooms);
    const ChatUser user = registry_.data(id).value_or(ChatUser{});
    if (join.nick.empty()) {  // left out: only a nick from ?nick= stands in
      if (!user.fixed) return reply_error(id, errors::bad_nick);
      join.nick = user.nick;
    }
    if ((user.fixed || !rooms.empty()) && user.nick != join.nick) {
      return reply_error(id, errors::nick_mismatch);
    }
    // In this order: the presence handler, told of the subscription, reads
    // the nick from the data (ActorPolicy applies both in this order).
    registry_.set_data(id, ChatUser{join.nick, user.fixed});
    registry_.subscribe(id, std::move(join.room));
  }

  void handle(wsreg::ConnectionId id, Leave& leave) {
    if (!contains(registry_.topics_of(id), leave.room)) return reply_error(id, errors::not_in_room);
    // The others hear of it from the presence handler; the leaver is no
    // longer subscribed, so it is told here.
    const std::string nick = current_nick(id);
    registry_.unsubscribe(id, leave.room);
    registry_.send(id, left_frame(leave.room, nick));
  }

  void handle(wsreg::ConnectionId id, Say& say) {
    if (!contains(registry_.topics_of(id), say.room)) return reply_error(id, errors::not_in_room);
    // To every member, the sayer included: one shared frame.
    registry_.publish(say.room, message_frame(say.room, current_nick(id), say.text));
  }

  void handle(wsreg::ConnectionId id, ListMembers& list) {
    // ActorPolicy: let the actor apply this connection's earlier changes
    // (and so run their presence events) first, so that a join followed by
    // "members" lists the joiner.
    registry_.flush();
    if (roster_ != nullptr) {  // on several servers: ask them all
      registry_.send(id, members_frame(list.room, roster_->members(list.room)));
      return;
    }
    for (;;) {
      const std::uint64_t before = stamp_of(list.room);
      std::vector<std::string> nicks = nicks_in(list.room);  // may wait for the actor: no lock
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = stamps_.find(list.room);
      const std::uint64_t after = it == stamps_.end() ? 0 : it->second;
      // Unchanged since before the read: no newer list can have gone out.
      // (A room absent both times could have come and gone in between:
      // then only an empty list is certainly current.)
      if (before == after && (after != 0 || nicks.empty())) {
        registry_.send(id, members_frame(list.room, nicks));  // under mutex_: see on_presence
        return;
      }
    }
  }

  // Every join and leave of every room: tells the room, under mutex_, so
  // every client receives a room's member lists in the order of the
  // changes, and the last list it gets is the current one. This sends while
  // holding a lock, which the library otherwise avoids; here it is what
  // keeps the lists in order, and it is cheap: publish() only queues (under
  // ActorPolicy for the actor, under MutexPolicy on each connection's write
  // queue, which never blocks).
  void on_presence(const wsreg::PresenceEvent<ChatUser>& event) {
    const std::string room(event.topic);
    if (roster_ != nullptr) {
      // On several servers: the notice goes to the room on every server
      // (publish is cluster-wide; even when this server has no member left,
      // the others may); the roster sends the lists.
      registry_.publish(room, event.joined ? joined_frame(room, event.data.nick)
                                           : left_frame(room, event.data.nick));
      roster_->changed(room, event.subscribers == 0);
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (event.subscribers == 0) {  // the last one left: the room (and its topic) is gone
      stamps_.erase(room);
      return;
    }
    stamps_[room] = ++clock_;
    const std::string& nick = event.data.nick;  // the leaver's too, though it is gone
    registry_.publish(room, event.joined ? joined_frame(room, nick) : left_frame(room, nick));
    registry_.publish(room, members_frame(room, nicks_in(room)));
  }

  // The nicks in `room` now, sorted, from the registry: its subscribers and
  // each one's data (one that left meanwhile is skipped). Under ActorPolicy
  // it waits for the actor, except on the actor thread.
  std::vector<std::string> nicks_in(const std::string& room) {
    std::vector<std::string> nicks;
    for (const wsreg::ConnectionId member : registry_.subscribers(room)) {
      if (std::optional<ChatUser> user = registry_.data(member)) {
        nicks.push_back(std::move(user->nick));
      }
    }
    std::sort(nicks.begin(), nicks.end());
    return nicks;
  }

  // The room's stamp: 0 while it has no member.
  std::uint64_t stamp_of(const std::string& room) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = stamps_.find(room);
    return it == stamps_.end() ? 0 : it->second;
  }

  std::string current_nick(wsreg::ConnectionId id) {
    const std::optional<ChatUser> user = registry_.data(id);
    return user ? user->nick : std::string();
  }

  void reply_error(wsreg::ConnectionId id, const char* code) {
    registry_.send(id, error_frame(code));
  }

  static bool contains(const std::vector<std::string>& rooms, const std::string& room) {
    return std::find(rooms.begin(), rooms.end(), room) != rooms.end();
  }

  Registry& registry_;
  Roster* roster_ = nullptr;  // set before the server starts, then only read
  // This mutex synchronizes all access to stamps_ and clock_, and orders
  // the member lists sent to clients (see on_presence).
  std::mutex mutex_;
  // Per room with members: the clock_ value of its last change (unique, so
  // a room that emptied and came back never shows an old stamp).
  std::unordered_map<std::string, std::uint64_t> stamps_;
  std::uint64_t clock_ = 0;
};

}  // namespace chat

#endif  // WSREG_EXAMPLES_CHAT_CHAT_HPP
