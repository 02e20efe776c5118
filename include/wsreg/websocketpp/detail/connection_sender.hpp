// wsreg/websocketpp/detail/connection_sender.hpp: a Sender for one websocketpp connection.
#ifndef WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
#define WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include <websocketpp/connection.hpp>
#include <websocketpp/frame.hpp>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"
#include "wsreg/websocketpp/config.hpp"
#include "wsreg/websocketpp/detail/deflate.hpp"
#include "wsreg/websocketpp/detail/prepared_frame.hpp"
#include "wsreg/websocketpp/detail/server_counters.hpp"
#include "wsreg/websocketpp/detail/write_lanes.hpp"
#include "wsreg/websocketpp/server_options.hpp"

namespace wsreg::wspp::detail {

/// Asks `connection`'s strand to do `request` (once per request kind):
/// sets the bit and, if it was not set, posts websocketpp's interrupt.
/// Thread-safe (connection::interrupt posts to the strand).
template <class ConnectionPtr>
void ask_strand(const ConnectionPtr& connection, Request request) {
  const auto before = connection->requests.fetch_or(request, std::memory_order_acq_rel);
  if ((before & request) == 0) connection->interrupt();
}

/// The Payload::encoded tag of a websocketpp message framed once for every
/// connection of one Config.
template <class Message>
struct FramedMessage {};

/// Frames `payload` as one unmasked, unfragmented, uncompressed server data
/// frame (RFC 6455 section 5.2: FIN set, no RSV bits, payload length in 7,
/// 7+16 or 7+64 bits) and marks it prepared, so websocketpp's
/// connection::send(message_ptr) queues it as is on every connection
/// instead of copying and framing it per connection. The header comes from
/// websocketpp's own frame::prepare_header, as in its hybi13 processor.
///
/// Returns null for a text payload that is not valid UTF-8 (RFC 6455
/// section 8.1), which websocketpp's own send() would refuse too. Throws
/// std::bad_alloc only. Thread-safe (touches nothing shared).
template <class Message>
std::shared_ptr<Message> frame_once(const Payload& payload) {
  if (!sendable_payload(payload)) return nullptr;
  return prepared_frame<Message>(payload.opcode(), std::string(payload.data()), false);
}

/// What a queued websocketpp message costs besides its header and payload
/// bytes: the message object with its shared_ptr control block (one
/// make_shared allocation, 16 bytes of malloc header), the queue slot (one
/// shared_ptr), and the payload allocation's malloc header and rounding (up
/// to 32 bytes). 200 bytes with websocketpp 0.8.2 on x86-64 libstdc++;
/// ServerOptions::max_buffered_bytes documents the formula.
inline constexpr std::size_t message_overhead_bytes =
    sizeof(::websocketpp::config::asio::message_type) + 2 * sizeof(void*) + 16 +
    sizeof(SendQueue::MessagePtr) + 32;

/// ServerOptions::write_window_bytes as the adapter uses it: at most
/// max_buffered_bytes. Thread-safe.
inline std::size_t write_window_bytes(const ServerOptions& options) noexcept {
  return std::min(options.write_window_bytes, options.max_buffered_bytes);
}

/// The charged size of `message`: header + payload + message_overhead_bytes.
template <class Message>
std::size_t charged_bytes(const Message& message) noexcept {
  return message.get_header().size() + message.get_payload().size() + message_overhead_bytes;
}

/// Deleter of a sentinel: a zero-byte prepared message queued behind data in
/// websocketpp's queue. websocketpp's handle_write_frame releases the
/// messages of a write once it completed (m_current_msgs.clear()), so this
/// runs when everything handed before the sentinel has been written; it
/// records that and asks the strand to refill (request_drain). It also runs
/// when the connection is destroyed with the sentinel still queued, or when
/// connection::send refused it: then the connection cannot be locked (or is
/// closing) and nothing is done. It keeps alive only what it touches: the
/// connection's control block (a weak_ptr), and the connection itself while
/// it uses it. Takes no lock, so it may run on any thread, under any lock.
template <class Connection>
struct SentinelDeleter {
  std::weak_ptr<Connection> connection;
  std::uint64_t mark = 0;  ///< SendQueue::handed_total when it was queued

  template <class Message>
  void operator()(Message* message) const noexcept {
    delete message;
    try {
      auto con = connection.lock();  // null while the connection is being destroyed
      if (!con) return;
      SendQueue& queue = con->send_queue;
      std::uint64_t seen = queue.written_total.load(std::memory_order_relaxed);
      while (seen < mark && !queue.written_total.compare_exchange_weak(
                                seen, mark, std::memory_order_release, std::memory_order_relaxed)) {
      }
      queue.sentinel_pending.store(false, std::memory_order_release);
      ask_strand(con, request_drain);
    } catch (...) {  // std::bad_alloc posting the interrupt: the queue waits for the next send
    }
  }
};

/// Releases `connection`'s queue when it closes. Thread-safe.
template <class ConnectionState>
void release_queue(ConnectionState& connection) noexcept {
  std::lock_guard<std::mutex> lock(connection.send_queue.mutex);
  release_locked(connection.send_queue);
}

/// Hands `message` to websocketpp's connection::send: through `lanes`
/// (WriteLanes::hand_locked, `mark` being the queue's handed_total with the
/// message counted) when there are lanes, directly otherwise. Returns
/// websocketpp's error (none for a message left in a lane). Call with
/// connection->send_queue.mutex held. Throws std::bad_alloc only.
template <class ConnectionPtr>
std::error_code hand_locked(const ConnectionPtr& connection,
                            typename ConnectionPtr::element_type::message_ptr message,
                            WriteLanes<typename ConnectionPtr::element_type>* lanes,
                            std::uint64_t mark) {
  if (lanes) return lanes->hand_locked(connection, std::move(message), mark);
  return connection->send(message);
}

/// Queues a sentinel behind what was handed to websocketpp so far, unless
/// one is pending already. Call with queue.mutex held. On refusal (the
/// connection is closing) the queue is released.
template <class ConnectionPtr>
void ensure_sentinel_locked(const ConnectionPtr& connection, SendQueue& queue,
                            WriteLanes<typename ConnectionPtr::element_type>* lanes) {
  using Connection = typename ConnectionPtr::element_type;
  using Message = typename Connection::message_type;
  if (queue.sentinel_pending.exchange(true, std::memory_order_acq_rel)) return;
  std::shared_ptr<Message> sentinel(
      new Message(typename Message::con_msg_man_ptr(), ::websocketpp::frame::opcode::binary, 0),
      SentinelDeleter<Connection>{connection, queue.handed_total});
  sentinel->set_prepared(true);  // empty header and payload: zero bytes on the wire
  if (hand_locked(connection, std::move(sentinel), lanes, queue.handed_total)) {
    queue.sentinel_pending.store(false, std::memory_order_release);
    release_locked(queue);
  }
}

/// Does the queue work of an interrupt on `connection`'s strand, given the
/// Request bits that were set: under request_shutdown_close it hands
/// websocketpp everything queued (the close frame goes after it, as before
/// this queue existed); under request_slow_close or request_idle_close it
/// releases the queue (the peer is not reading; the close frame should not
/// wait); under request_drain it refills websocketpp up to `window_bytes`
/// and queues a sentinel behind the refill if data is still waiting.
/// Returns the connection's dropped_messages total when the queue has just
/// drained after one or more drops (the drop notice, once per episode).
/// Strand only.
template <class ConnectionPtr>
std::optional<std::uint64_t> service_queue(const ConnectionPtr& connection, std::uint8_t requests,
                                           std::size_t window_bytes,
                                           WriteLanes<typename ConnectionPtr::element_type>* lanes) {
  constexpr std::uint8_t discard = request_slow_close | request_idle_close;
  SendQueue& queue = connection->send_queue;
  std::lock_guard<std::mutex> lock(queue.mutex);
  if (queue.closed) return std::nullopt;
  if ((requests & discard) && !(requests & request_shutdown_close)) {
    release_locked(queue);
    return std::nullopt;
  }
  if (!(requests & (request_drain | request_shutdown_close))) return std::nullopt;
  const bool everything = (requests & request_shutdown_close) != 0;
  try {
    while (queue.messages && !queue.messages->empty()) {
      const auto& front = queue.messages->front();
      const std::size_t charge = charged_bytes(*front);
      const std::uint64_t in_flight =
          queue.handed_total - queue.written_total.load(std::memory_order_acquire);
      if (!everything && in_flight != 0 && in_flight + charge > window_bytes) break;
      if (hand_locked(connection, front, lanes, queue.handed_total + charge)) {
        release_locked(queue);  // closing: nothing more will be written
        return std::nullopt;
      }
      queue.handed_total += charge;
      queue.queued_bytes -= charge;
      queue.messages->pop_front();
    }
    if (everything) {
      release_locked(queue);  // shutting down: the close frame is next
      return std::nullopt;
    }
    if (queue.messages && !queue.messages->empty()) {
      ensure_sentinel_locked(connection, queue, lanes);
      return std::nullopt;
    }
  } catch (...) {  // std::bad_alloc: the queue is dropped, the connection will close
    release_locked(queue);
    return std::nullopt;
  }
  if (!queue.dropped_since_notice) return std::nullopt;
  queue.dropped_since_notice = false;
  return connection->dropped_messages.load(std::memory_order_relaxed);
}

/// Whether websocketpp connections of type `Connection` negotiate
/// permessage-deflate with wsreg's extension (their config's
/// permessage_deflate_type is PerMessageDeflate): then a Payload caches
/// DeflateFrames (plain and compressed frame) instead of the plain frame
/// alone. Thread-safe (a constant).
template <class Connection>
struct uses_per_message_deflate : std::false_type {};
template <class Cfg>
struct uses_per_message_deflate<::websocketpp::connection<Cfg>>
    : std::is_same<typename Cfg::permessage_deflate_type, PerMessageDeflate<Cfg>> {};

/// Delivers payloads to one websocketpp connection through its own bounded
/// queue (ConnectionState::send_queue) in front of websocketpp's.
///
/// Framing: with `frame_once`, a payload is framed once (frame_once()
/// above, cached in the Payload) and the same prepared message is queued on
/// every recipient, so a broadcast to N connections costs one frame and one
/// copy of the bytes instead of N. Without it (or for a hybi00 connection,
/// whose framing differs), websocketpp's send() copies and frames per
/// connection.
///
/// Queueing: websocketpp writes a control frame (pong, ping, close) behind
/// everything in its send queue, so data is handed to it only while less
/// than `window_bytes` of it is unconfirmed; the rest waits in the
/// SendQueue. When nothing waits there and the window has room, a message
/// goes straight to websocketpp (the fast path, as without the queue). When
/// data waits, a zero-byte sentinel message follows the last handoff in
/// websocketpp's queue; websocketpp releases it once the write that
/// contained it completed, and its deleter asks the strand (request_drain)
/// to refill the window (service_queue()). So a control frame waits behind
/// at most about `window_bytes` of data, plus the kernel's socket buffers.
///
/// Backpressure: the SendQueue is counted in charged bytes (charged_bytes():
/// header, payload and message_overhead_bytes); if something waits and the
/// payload would take the queue past `max_buffered_bytes`, it is refused
/// (dropped, counted in ConnectionState::dropped_messages) and, under
/// OverflowPolicy::close, the strand is asked to close with 1008. So one
/// slow connection costs the sending thread one refused call, never a wait.
///
/// Compression (configs with PerMessageDeflate only, see
/// uses_per_message_deflate): `deflate_window_bits` is the
/// server_max_window_bits the connection negotiated, 0 if it did not
/// negotiate permessage-deflate. A payload of at least
/// DeflateOnceOptions::threshold_bytes to such a connection is compressed:
/// with `frame_once`, once for all connections (DeflateFrames, cached in the
/// Payload beside the plain frame), when that one frame is valid for this
/// connection's window (shared_frame_fits); otherwise websocketpp
/// compresses it for this connection alone (an unprepared message marked
/// compressed, which the processor hands to the extension's compress()).
/// A payload that does not shrink goes uncompressed (RSV1 clear). Below
/// the threshold, and on connections without the extension, the plain
/// frame goes, so those cost what they cost without deflate plus, per
/// payload, one DeflateFrames object.
///
/// Handoff: with `lanes` (the Server's WriteLanes), a message sent from a
/// thread that does not run the io_context waits in the connection's lane
/// and an io thread hands it to websocketpp, so a broadcast costs one task
/// per lane rather than one post per recipient; from an io thread it goes
/// to websocketpp at once. Without lanes, always at once.
///
/// Ownership: holds the connection weakly, so a registry entry never keeps
/// a closed connection (and its buffers) alive, and the server's counters
/// strongly, since the registry may hold this past the Server's life.
///
/// Thread safety: send() is thread-safe: it takes the SendQueue's mutex,
/// under which it hands messages to a write lane or to websocketpp's
/// connection::send (which takes websocketpp's own locks and starts or
/// queues the write on the strand, never waiting for the socket). It never
/// blocks on the socket.
template <class Connection>
class ConnectionSender final : public Sender {
 public:
  ConnectionSender(std::weak_ptr<Connection> connection, std::size_t max_buffered_bytes,
                   std::size_t window_bytes, OverflowPolicy policy, bool frame_once,
                   std::shared_ptr<ServerCounters> counters, std::uint8_t deflate_window_bits = 0,
                   DeflateOnceOptions deflate = {},
                   std::shared_ptr<WriteLanes<Connection>> lanes = nullptr)
      : connection_(std::move(connection)),
        max_buffered_bytes_(max_buffered_bytes),
        window_bytes_(window_bytes),
        policy_(policy),
        frame_once_(frame_once),
        counters_(std::move(counters)),
        deflate_window_bits_(deflate_window_bits),
        deflate_(deflate),
        lanes_(std::move(lanes)) {}

  /// Queues `payload` for the connection; dropped if the connection is
  /// gone, not open, closing, or over its bound, or if it is text that is
  /// not valid UTF-8. With frame_once the first recipient frames the payload
  /// and the others share that frame; otherwise the bytes are copied into a
  /// message of this connection's own. Thread-safe; never blocks.
  SendResult send(const Payload& payload) noexcept override {
    try {
      auto connection = connection_.lock();
      if (!connection) return SendResult::dropped;
      constexpr std::uint8_t closing =
          request_shutdown_close | request_slow_close | request_idle_close;
      if (connection->requests.load(std::memory_order_relaxed) & closing) {
        return SendResult::dropped;
      }
      using Message = typename Connection::message_type;
      std::shared_ptr<Message> message;
      std::size_t charge = payload.size() + message_overhead_bytes;
      if constexpr (uses_per_message_deflate<Connection>::value) {
        message = deflate_message(payload);
        if (!message) return SendResult::dropped;
        if (message->get_prepared()) charge = charged_bytes(*message);
      } else if (frame_once_) {
        message = payload.template encoded<FramedMessage<Message>>(
            [&payload] { return frame_once<Message>(payload); });
        if (!message) return SendResult::dropped;
        charge = charged_bytes(*message);
      }
      // A message websocketpp frames itself (a copy of the payload) is
      // checked here, where the refusal can still be counted, rather than
      // by websocketpp's send(), which may run later in a write lane.
      // (Prepared frames were checked once, when framed.)
      if ((!message || !message->get_prepared()) && !sendable_payload(payload)) {
        return SendResult::dropped;
      }
      SendQueue& queue = connection->send_queue;
      std::lock_guard<std::mutex> lock(queue.mutex);
      if (queue.closed) return SendResult::dropped;
      const std::uint64_t in_flight =
          queue.handed_total - queue.written_total.load(std::memory_order_acquire);
      const bool queue_empty = !queue.messages || queue.messages->empty();
      // The fast path: nothing waits here and the window has room (a message
      // larger than the window goes alone).
      if (queue_empty && (in_flight == 0 || in_flight + charge <= window_bytes_)) {
        // (An unprepared message is framed, and compressed if marked so,
        // by websocketpp's send().)
        if (!message) message = copy_of(payload);
        if (hand_locked(connection, std::move(message), lanes_.get(), queue.handed_total + charge)) {
          return SendResult::dropped;
        }
        queue.handed_total += charge;
        return SendResult::sent;
      }
      // The bound is on the queue; the window (what websocketpp holds) comes
      // on top. in_flight is only confirmed by sentinels, so it may count
      // data already written: charging it here would shrink the bound by up
      // to a window for a reader that keeps up. A message larger than the
      // bound still goes to a connection with nothing waiting.
      counters_->note_buffered(queue.queued_bytes);
      if ((queue.queued_bytes != 0 || in_flight != 0) &&
          queue.queued_bytes + charge > max_buffered_bytes_) {
        ServerCounters::bump(counters_->backpressure_drops);
        connection->dropped_messages.fetch_add(1, std::memory_order_relaxed);
        if (policy_ == OverflowPolicy::close) {
          ask_strand(connection, request_slow_close);
        } else {
          queue.dropped_since_notice = true;
          ensure_sentinel_locked(connection, queue, lanes_.get());  // so a drain (and the notice) follows
        }
        return SendResult::dropped;
      }
      if (!message) message = copy_of(payload);
      if (!queue.messages) queue.messages = std::make_unique<std::deque<SendQueue::MessagePtr>>();
      queue.messages->push_back(std::move(message));
      queue.queued_bytes += charge;
      ensure_sentinel_locked(connection, queue, lanes_.get());
      return queue.closed ? SendResult::dropped : SendResult::sent;
    } catch (...) {  // std::bad_alloc from a message or queue allocation
      return SendResult::dropped;
    }
  }

 private:
  // The message for `payload` on this connection of a deflate config (see
  // the class comment): a prepared frame shared through the Payload, or an
  // unprepared copy that websocketpp frames (and compresses if marked) per
  // connection. Null for text that is not UTF-8.
  typename Connection::message_ptr deflate_message(const Payload& payload) const {
    using Message = typename Connection::message_type;
    const bool compress = deflate_window_bits_ != 0 && payload.size() != 0 &&
                          payload.size() >= deflate_.threshold_bytes;
    // A window too small for the shared compressed frame: compressed for
    // this connection alone, below.
    const bool own_compression =
        compress && !shared_frame_fits(deflate_window_bits_, payload.size());
    if (frame_once_ && !own_compression) {
      const auto frames = payload.template encoded<DeflateFrames<Message>>(
          [] { return std::make_shared<DeflateFrames<Message>>(); });
      if (compress) {
        if (auto compressed = frames->compressed(payload, deflate_)) return compressed;
      }
      return frames->plain([&payload] { return frame_once<Message>(payload); });
    }
    auto message = copy_of(payload);
    message->set_compressed(compress);
    return message;
  }

  // An unprepared message holding a copy of the payload, for a connection
  // that is framed per connection: websocketpp frames it when it is handed.
  // Marked compressed, as websocketpp's own send(std::string, op) marks
  // its messages, so a queued message is treated as one handed at once: a
  // config with a compression extension compresses it, others ignore the
  // mark.
  static typename Connection::message_ptr copy_of(const Payload& payload) {
    using Message = typename Connection::message_type;
    const auto opcode = static_cast<::websocketpp::frame::opcode::value>(payload.opcode());
    auto message = std::make_shared<Message>(typename Message::con_msg_man_ptr(), opcode,
                                             payload.size());
    message->set_payload(payload.data().data(), payload.size());
    message->set_compressed(true);
    return message;
  }

  std::weak_ptr<Connection> connection_;
  const std::size_t max_buffered_bytes_;
  const std::size_t window_bytes_;
  const OverflowPolicy policy_;
  const bool frame_once_;
  const std::shared_ptr<ServerCounters> counters_;
  const std::uint8_t deflate_window_bits_;
  const DeflateOnceOptions deflate_;
  // Where handoffs go from threads other than the io threads; null: straight
  // to websocketpp.
  const std::shared_ptr<WriteLanes<Connection>> lanes_;
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
