// roster.hpp: what ChatRooms asks of member lists that span several servers.
#ifndef WSREG_EXAMPLES_CHAT_ROSTER_HPP
#define WSREG_EXAMPLES_CHAT_ROSTER_HPP

#include <string>
#include <vector>

namespace chat {

/// What ChatRooms asks of a roster when the chat runs on several servers:
/// member lists that span them.
///
/// Thread safety: both members may be called from any thread at once.
class Roster {
 public:
  virtual ~Roster() = default;
  /// A local member joined or left `room` (`gone`: the room has no local
  /// member any more). Never waits: may be called on the actor thread.
  virtual void changed(const std::string& room, bool gone) = 0;
  /// The nicks in `room` on every server, sorted. Waits for the other
  /// servers' answers (at most ClusterOptions::presence_timeout); not on
  /// the actor thread.
  virtual std::vector<std::string> members(const std::string& room) = 0;
};

}  // namespace chat

#endif  // WSREG_EXAMPLES_CHAT_ROSTER_HPP
