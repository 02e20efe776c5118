// wsreg/websocketpp/config.hpp: the websocketpp server config the adapter uses.
#ifndef WSREG_WEBSOCKETPP_CONFIG_HPP
#define WSREG_WEBSOCKETPP_CONFIG_HPP

#include "wsreg/websocketpp/detail/cxx_check.hpp"  // first: websocketpp 0.8.2 is C++17 only

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include <asio/ip/address.hpp>
#include <websocketpp/config/asio_no_tls.hpp>

#include "wsreg/sender.hpp"
#include "wsreg/websocketpp/detail/strand_transport.hpp"

namespace wsreg::wspp {

/// Work a thread other than the connection's strand asks the strand to do
/// (bits of ConnectionState::requests; see Server's interrupt handler).
enum Request : std::uint8_t {
  request_shutdown_close = 1,  ///< close with 1001 "server shutdown"
  request_slow_close = 2,      ///< close with 1008 "slow consumer"
  request_idle_close = 4,      ///< close with 1001 "idle timeout"
  request_ping = 8,            ///< send a ping
  request_terminate = 16,      ///< drop the TCP connection now (shutdown deadline)
  request_handshake_timeout = 32,  ///< drop it if its opening handshake is still going on
  request_drain = 64,          ///< refill websocketpp's queue from SendQueue
};

/// The adapter's own queue of data messages for one connection, in front of
/// websocketpp's send queue (see detail::ConnectionSender, which owns the
/// logic). websocketpp writes control frames (pong, ping, close) behind
/// everything in its queue, so data waits here and websocketpp is handed
/// at most ServerOptions::write_window_bytes of it at a time.
///
/// Sizes are "charged" bytes: header plus payload plus a per-message
/// overhead (detail::message_overhead_bytes), what a queued message really
/// costs in memory.
///
/// Thread safety: the fields above `written_total` are guarded by `mutex`;
/// `written_total` and `sentinel_pending` are atomics that sentinel
/// deleters (any thread) write without the mutex.
struct SendQueue {
  /// websocketpp's message pointer for wsreg::wspp::Config (a std::shared_ptr).
  using MessagePtr = ::websocketpp::config::asio::message_type::ptr;

  // This mutex synchronizes all access to messages, queued_bytes,
  // handed_total, closed, dropped_since_notice and lane_pending, and is held while
  // messages are handed to websocketpp's connection::send (which only takes
  // websocketpp's locks and posts the write), so handoffs keep FIFO order.
  std::mutex mutex;
  /// Messages not yet handed to websocketpp; created on first use, so an
  /// idle connection pays no deque, and released when the connection closes.
  std::unique_ptr<std::deque<MessagePtr>> messages;
  /// Charged bytes in `messages`.
  std::size_t queued_bytes = 0;
  /// Charged bytes ever handed to websocketpp (fast path and refills).
  std::uint64_t handed_total = 0;
  /// The connection is closing or closed: nothing more is queued.
  bool closed = false;
  /// A message was dropped since the application was last told
  /// (Server::set_drop_handler).
  bool dropped_since_notice = false;
  /// Handoffs of this connection waiting in the Server's write lanes
  /// (detail::WriteLanes); while not 0, later handoffs queue behind them.
  std::uint32_t lane_pending = 0;

  /// Charged bytes known written: the handed_total a sentinel recorded,
  /// stored by its deleter once websocketpp released it after its write.
  /// handed_total - written_total bounds what websocketpp holds.
  std::atomic<std::uint64_t> written_total{0};
  /// A sentinel is in websocketpp's queue (or being written) and will ask
  /// the strand to refill when released.
  std::atomic<bool> sentinel_pending{false};
};

/// Per-connection state the adapter keeps inside each websocketpp
/// connection (websocketpp's `connection_base` hook), so that no side map
/// is needed to go from a connection to its id.
struct ConnectionState {
  /// The registry id while registered; no_connection before the open
  /// handler and after the close or fail handler. Set on the strand; taken
  /// (exchanged for no_connection) by whichever of the close/fail handler
  /// and the Server's destructor comes first, so a connection is removed
  /// and its close handler called exactly once.
  std::atomic<ConnectionId> wsreg_id{no_connection};
  /// The Server's shared state, kept alive by every connection it created
  /// (from get_connection() to the connection object's destruction), so no
  /// websocketpp handler or timer of a connection can outlive what it calls.
  std::shared_ptr<void> owner;
  /// steady_clock time, in ns since its epoch, of the TCP accept; 0 before.
  /// The Server's handshake deadline counts from it. Written on the
  /// strand, read by the sweep.
  std::atomic<std::int64_t> accepted_ns{0};
  /// The opening handshake completed (the open handler ran). Written on
  /// the strand, read by the sweep.
  std::atomic<bool> opened{false};
  /// The validate handler accepted the upgrade: the 101 response is being
  /// written, so the handshake deadline no longer applies (dropping it now
  /// could cut a connection whose client has already read its 101).
  /// Written on the strand, read by the sweep.
  std::atomic<bool> upgrading{false};
  /// Holds one of the ServerOptions::max_connections slots, taken at the
  /// TCP accept and given back when the connection ends. Strand only.
  bool admitted = false;
  /// Accepted while every max_connections slot was taken: its handshake is
  /// refused with 503. Strand only.
  bool over_limit = false;
  /// Counted against ServerOptions::max_connections_per_address for
  /// `peer_address`, from the TCP accept until the connection ends. Strand only.
  bool address_counted = false;
  /// Accepted while its address had all its max_connections_per_address
  /// slots: its handshake is refused with 429. Strand only.
  bool address_over_limit = false;
  /// The peer's address, read once at the TCP accept. Strand only.
  asio::ip::address peer_address;
  /// The peer's port, read once at the TCP accept. Strand only.
  std::uint16_t peer_port = 0;
  /// The initial Data the handshake handler chose, type-erased (the
  /// connection type does not know the registry's Data): set by the
  /// validate handler when it accepts, moved into the registry by the open
  /// handler, released if the connection ends before it opens. Strand only.
  std::shared_ptr<void> initial_data;
  /// The TCP accept succeeded (so an early end is a failed handshake, not a
  /// failed accept). Strand only.
  bool accepted = false;
  /// Refused with an HTTP status by the validate handler (the Server's own
  /// checks or the handshake handler). Strand only.
  bool rejected = false;
  /// steady_clock time, in ns since its epoch, when anything last arrived
  /// (open, message, ping, pong). Written on the strand, read by the
  /// heartbeat thread.
  std::atomic<std::int64_t> last_arrival_ns{0};
  /// When the heartbeat last asked for a ping, same clock. Heartbeat only.
  std::atomic<std::int64_t> last_ping_ns{0};
  /// Pending Request bits; any thread sets, the strand acts on them.
  std::atomic<std::uint8_t> requests{0};
  /// Messages for this connection refused by its bound (max_buffered_bytes),
  /// under either overflow policy. Any thread reads (Server::dropped_messages);
  /// the sender increments.
  std::atomic<std::uint64_t> dropped_messages{0};
  /// wsreg's data queue for this connection (detail::ConnectionSender).
  SendQueue send_queue;
};

/// websocketpp 0.8.2 server config: plain TCP on standalone Asio, thread-safe
/// (websocketpp's `config::asio`), with ConnectionState in every
/// connection, writes dispatched in one hop (transport_type) and a smaller
/// read buffer (below). Everything else keeps
/// websocketpp's defaults; the Server sets its timeouts and message size
/// limit at run time from ServerOptions.
///
/// Thread safety: a compile-time config; see ConnectionState for its fields.
struct Config : ::websocketpp::config::asio {
  using type = Config;
  using base = ::websocketpp::config::asio;
  using connection_base = ConnectionState;
  /// websocketpp's Asio transport, with writes dispatched through each
  /// connection's strand in one hop (detail::StrandConnection): a send from
  /// an io thread, and the next write after a completion, start at once
  /// instead of waiting a pass of the io_context's queue.
  using transport_type = detail::StrandEndpoint<base::transport_config>;

  /// Bytes websocketpp reads from the socket at most per read, in a buffer
  /// that is an array inside every connection object. websocketpp's default
  /// is 16384: each connection object is then ~20 KiB, and an idle
  /// connection costs ~11-12 KiB of resident memory here. Measured with
  /// 10,000 idle connections (bench-e2e, kind idle): 16384 → 11.2 KiB per
  /// connection (raw websocketpp), 4096 → 11.0, 1024 → 8.6 (wsreg), 512 →
  /// 8.05 (wsreg). The cost of 512: an inbound message larger than this
  /// takes several reads (a 1 MiB message, ~2,000 reads instead of 64),
  /// which matters only to servers that receive large messages fast; such a
  /// server can use a Config of its own with a larger value.
  static const std::size_t connection_read_buffer_size = 512;
};

}  // namespace wsreg::wspp

// RFC 6455 fixes to websocketpp 0.8.2's hybi13 processor, for this Config.
#include "wsreg/websocketpp/detail/hybi13_fixes.hpp"
WSREG_WSPP_HYBI13_FIXES(::wsreg::wspp::Config)

#endif  // WSREG_WEBSOCKETPP_CONFIG_HPP
