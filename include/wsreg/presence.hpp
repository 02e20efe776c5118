// wsreg/presence.hpp: what a registry reports when a connection joins or leaves a topic.
#ifndef WSREG_PRESENCE_HPP
#define WSREG_PRESENCE_HPP

#include <cstddef>
#include <functional>
#include <string_view>
#include <variant>

#include "wsreg/sender.hpp"

namespace wsreg {

/// One change in a topic's membership, as given to the presence handler
/// (ConnectionRegistry::set_presence_handler), with the connection's Data
/// (ConnectionRegistry<Policy, Data>), so that a leave can name who left:
///
///     registry.set_presence_handler([&](const wsreg::PresenceEvent<User>& e) {
///       if (!e.joined) log("%s left %.*s", e.data.name.c_str(), int(e.topic.size()), e.topic.data());
///     });
///
/// Thread safety: a plain value; `topic` and `data` refer to what the
/// registry owns (or, under MutexPolicy, a copy made for this report) and
/// are valid only during the handler call: copy what you keep.
template <class Data = std::monostate>
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
  /// The connection's Data as it was when the change was applied: for a
  /// leave because the connection was removed, its last Data (already
  /// gone from the registry, so data(id) would say nullopt). Under
  /// MutexPolicy a copy taken under the registry lock, once per operation
  /// that may report (so a Data that is costly to copy costs that much more
  /// per subscribe, unsubscribe and remove while a handler is set); under
  /// ActorPolicy the registry's own, read on the actor thread.
  const Data& data;
};

/// Called once per membership change. Which thread runs it depends on the
/// policy: ActorPolicy's actor thread, or under MutexPolicy the thread whose
/// call made the change, after the registry lock is released. It must not
/// throw (an exception is caught and ignored); it may call the registry.
template <class Data = std::monostate>
using PresenceHandler = std::function<void(const PresenceEvent<Data>&)>;

}  // namespace wsreg

#endif  // WSREG_PRESENCE_HPP
