// wsreg/sender.hpp: the per-connection output the registry delivers to.
#ifndef WSREG_SENDER_HPP
#define WSREG_SENDER_HPP

#include <cstdint>

#include "wsreg/payload.hpp"

namespace wsreg {

/// A connection id: assigned by ConnectionRegistry::add, starting at 1,
/// never reused during the registry's lifetime. 0 is never a valid id.
using ConnectionId = std::uint64_t;

/// The id that names no connection: add() returns it for a rejected sender,
/// and broadcast() takes it to mean "except nobody".
inline constexpr ConnectionId no_connection = 0;

/// What a Sender did with one payload.
enum class SendResult : std::uint8_t {
  sent,     ///< Queued for the connection; counted in RegistryStats::messages_sent.
  dropped,  ///< Not queued (connection closing, buffer full, ...); counted in
            ///< RegistryStats::messages_dropped. The connection stays registered.
};

/// The output side of one connection, as the registry sees it.
///
/// Ownership: the registry holds each Sender by std::shared_ptr from add()
/// until remove() has been applied and no delivery in flight still uses it;
/// a transport adapter (such as wsreg::wspp::Server) creates one per
/// connection. A Sender must not own the registry.
///
/// Thread safety: send() may be called from several threads at once under
/// MutexPolicy (concurrent broadcasts) and from the actor thread under
/// ActorPolicy, so implementations must be thread-safe. The registry never
/// calls send() while holding a registry lock.
class Sender {
 public:
  virtual ~Sender() = default;

  /// Queues `payload` for this connection and returns at once: it must never
  /// block on the socket, never throw, and should keep a reference to the
  /// payload rather than copy its bytes. Under ActorPolicy it runs on the
  /// actor thread: it may call ConnectionRegistry::add, remove, send and
  /// broadcast (they are queued), and flush, size and stats do not wait there.
  virtual SendResult send(const Payload& payload) noexcept = 0;

 protected:
  Sender() = default;
  Sender(const Sender&) = default;
  Sender& operator=(const Sender&) = default;
};

}  // namespace wsreg

#endif  // WSREG_SENDER_HPP
