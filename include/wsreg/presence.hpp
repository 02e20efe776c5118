// wsreg/presence.hpp: what a registry reports when a connection joins or leaves a topic.
#ifndef WSREG_PRESENCE_HPP
#define WSREG_PRESENCE_HPP

#include <cstddef>
#include <functional>
#include <string_view>

#include "wsreg/sender.hpp"

namespace wsreg {

/// One change in a topic's membership, as given to the presence handler
/// (ConnectionRegistry::set_presence_handler).
///
/// Thread safety: a plain value; `topic` views a string the registry owns
/// and is valid only during the handler call (copy it to keep it).
struct PresenceEvent {
  /// The topic whose membership changed.
  std::string_view topic;
  /// The connection that joined or left.
  ConnectionId id = no_connection;
  /// true: `id` subscribed. false: it unsubscribed, or was removed from the
  /// registry (a removed connection leaves every topic it was in).
  bool joined = false;
  /// The topic's subscriber count right after this change; 0 means the topic
  /// no longer exists.
  std::size_t subscribers = 0;
};

/// Called once per membership change. Which thread runs it depends on the
/// policy: ActorPolicy's actor thread, or under MutexPolicy the thread whose
/// call made the change, after the registry lock is released. It must not
/// throw (an exception is caught and ignored); it may call the registry.
using PresenceHandler = std::function<void(const PresenceEvent&)>;

}  // namespace wsreg

#endif  // WSREG_PRESENCE_HPP
