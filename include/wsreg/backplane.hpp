// wsreg/backplane.hpp: the Backplane requirements (docs/concepts/backplane.md), checked at compile time.
#ifndef WSREG_BACKPLANE_HPP
#define WSREG_BACKPLANE_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace wsreg {

/// What Backplane::publish did with one message.
enum class PublishResult : std::uint8_t {
  queued,   ///< In the backplane's outgoing queue, to be sent in order.
  dropped,  ///< Not queued: the outgoing queue was full (BackplaneStats::publish_dropped).
  lost,     ///< Not queued: the backplane was disconnected (BackplaneStats::publish_lost).
};

/// A backplane's counters, as Backplane::stats() returns them. Every field
/// counts from the backplane's construction.
///
/// Thread safety: a plain value.
struct BackplaneStats {
  /// 1 while connected to the broker (both connections, for Redis), else 0.
  std::uint64_t connected = 0;
  /// Connections made again after a loss (the first connect not counted).
  std::uint64_t reconnects = 0;
  /// Failed connection attempts (each one retried after the back-off).
  std::uint64_t connect_failures = 0;
  /// Messages handed to the broker.
  std::uint64_t published = 0;
  /// Messages refused because the outgoing queue was full (PublishResult::dropped).
  std::uint64_t publish_dropped = 0;
  /// Messages refused while disconnected, or queued or in flight when the
  /// connection was lost (PublishResult::lost, and after the fact).
  std::uint64_t publish_lost = 0;
  /// Messages received on subscribed channels and given to the message handler.
  std::uint64_t received = 0;
  /// Channels subscribed (wanted by the application, whether or not the
  /// broker has confirmed them yet).
  std::uint64_t channels = 0;
  /// Channels the broker has confirmed subscribed on the current
  /// connection: after a reconnect it climbs back to `channels` as the
  /// resubscription goes through (0 while disconnected).
  std::uint64_t subscribed = 0;
  /// Messages waiting in the outgoing queue now.
  std::uint64_t queue_depth = 0;
};

/// Called with each message that arrives on a subscribed channel: its
/// channel and bytes, valid only during the call. Runs on the backplane's
/// own thread (RedisBackplane: its one I/O thread; NatsBackplane: the NATS
/// client's delivery thread); must not throw.
using BackplaneMessageHandler = std::function<void(std::string_view channel, std::string_view message)>;

/// Called when the backplane connects (true) or loses its connection
/// (false), on the backplane's own thread; must not throw.
using BackplaneStateHandler = std::function<void(bool connected)>;

/// The handlers a Cluster gives Backplane::start().
struct BackplaneHandlers {
  BackplaneMessageHandler on_message;
  BackplaneStateHandler on_state;
};

/// How a backplane reconnects: capped exponential back-off, forever. After
/// a loss it waits `reconnect_initial`, then twice as long after each
/// failed attempt up to `reconnect_max`, each wait shortened by up to a
/// quarter at random so that nodes do not reconnect in step; a connection
/// that succeeds resets the wait to `reconnect_initial`. It never gives up
/// (a node that stops trying is deaf with a green health check:
/// centrifugal/centrifugo#1189).
struct ReconnectOptions {
  /// The first wait after a loss. Default 100 ms.
  std::chrono::milliseconds reconnect_initial{100};
  /// The longest wait between attempts, and so about how long a node stays
  /// away after the broker is back (plus one connect and the
  /// resubscription): the default keeps that under 2 s. Default 1 s.
  std::chrono::milliseconds reconnect_max{1000};
};

/// What the shipped backplanes bound and how they reconnect: the fields
/// RedisOptions and NatsOptions share (each adds its URL and the broker's
/// own settings).
///
/// Thread safety: a plain value, copied by a backplane's constructor.
struct BackplaneOptions {
  /// Publishes the outgoing queue holds before publish() drops (a stalled
  /// broker costs at most this much memory, and never blocks a caller).
  /// Default 65,536 messages.
  std::size_t max_queued_messages = 65536;
  /// The same bound in bytes (channel plus message). Default 64 MiB.
  std::size_t max_queued_bytes = 64u << 20;
  /// How the backplane reconnects after a loss (capped exponential back-off, forever).
  ReconnectOptions reconnect;
};

/// The wait before reconnect attempt `attempt` (0 for the first after a
/// loss), as ReconnectOptions describes, before the random shortening. A
/// reconnect_initial below 1 ms is taken as 1 ms (a zero wait would spin).
/// Thread-safe; O(log(reconnect_max / reconnect_initial)).
inline std::chrono::milliseconds reconnect_delay(const ReconnectOptions& options,
                                                 unsigned attempt) noexcept {
  std::chrono::milliseconds delay = std::max(options.reconnect_initial, std::chrono::milliseconds(1));
  for (unsigned i = 0; i < attempt && delay < options.reconnect_max; ++i) delay *= 2;
  return delay < options.reconnect_max ? delay : options.reconnect_max;
}

/// One trait per valid expression of docs/concepts/backplane.md, so a
/// static_assert can name the one that is missing; `b` is a B lvalue.
namespace backplane_requirements {

#define WSREG_BACKPLANE_REQUIREMENT(name, Result, expression)                       \
  template <class B, class = void>                                                  \
  struct name : std::false_type {};                                                 \
  template <class B>                                                                \
  struct name<B, std::void_t<decltype(expression)>>                                 \
      : std::bool_constant<std::is_void_v<Result> ||                                \
                           std::is_convertible_v<decltype(expression), Result>> {};

WSREG_BACKPLANE_REQUIREMENT(has_start, void,
                            std::declval<B&>().start(std::declval<BackplaneHandlers>()))
WSREG_BACKPLANE_REQUIREMENT(has_stop, void, std::declval<B&>().stop())
WSREG_BACKPLANE_REQUIREMENT(has_subscribe, void,
                            std::declval<B&>().subscribe(std::declval<std::string>()))
WSREG_BACKPLANE_REQUIREMENT(has_unsubscribe, void,
                            std::declval<B&>().unsubscribe(std::declval<std::string>()))
WSREG_BACKPLANE_REQUIREMENT(has_publish, PublishResult,
                            std::declval<B&>().publish(std::declval<std::string>(),
                                                       std::declval<std::string>()))
WSREG_BACKPLANE_REQUIREMENT(has_connected, bool, std::declval<const B&>().connected())
WSREG_BACKPLANE_REQUIREMENT(has_stats, BackplaneStats, std::declval<const B&>().stats())
WSREG_BACKPLANE_REQUIREMENT(has_name, std::string_view, std::declval<const B&>().name())

#undef WSREG_BACKPLANE_REQUIREMENT

}  // namespace backplane_requirements

/// True when B meets every requirement of a Backplane
/// (docs/concepts/backplane.md). Usable in static_assert and enable_if.
template <class B>
struct is_backplane
    : std::bool_constant<backplane_requirements::has_start<B>::value &&
                         backplane_requirements::has_stop<B>::value &&
                         backplane_requirements::has_subscribe<B>::value &&
                         backplane_requirements::has_unsubscribe<B>::value &&
                         backplane_requirements::has_publish<B>::value &&
                         backplane_requirements::has_connected<B>::value &&
                         backplane_requirements::has_stats<B>::value &&
                         backplane_requirements::has_name<B>::value> {};

template <class B>
inline constexpr bool is_backplane_v = is_backplane<B>::value;

namespace detail {

/// Fails compilation with one message per unmet requirement; true when B
/// is a Backplane. Instantiated by Cluster<Registry, B>.
template <class B>
constexpr bool check_backplane() {
  using namespace backplane_requirements;
  static_assert(has_start<B>::value,
                "wsreg: Backplane requirements not met: missing b.start(BackplaneHandlers)");
  static_assert(has_stop<B>::value, "wsreg: Backplane requirements not met: missing b.stop()");
  static_assert(has_subscribe<B>::value,
                "wsreg: Backplane requirements not met: missing b.subscribe(std::string channel)");
  static_assert(has_unsubscribe<B>::value,
                "wsreg: Backplane requirements not met: missing b.unsubscribe(std::string channel)");
  static_assert(has_publish<B>::value,
                "wsreg: Backplane requirements not met: missing "
                "b.publish(std::string channel, std::string message) -> PublishResult");
  static_assert(has_connected<B>::value,
                "wsreg: Backplane requirements not met: missing b.connected() const -> bool");
  static_assert(has_stats<B>::value,
                "wsreg: Backplane requirements not met: missing b.stats() const -> BackplaneStats");
  static_assert(has_name<B>::value,
                "wsreg: Backplane requirements not met: missing b.name() const -> std::string_view");
  return true;
}

}  // namespace detail
}  // namespace wsreg

#endif  // WSREG_BACKPLANE_HPP
