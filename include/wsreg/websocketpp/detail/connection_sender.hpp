// wsreg/websocketpp/detail/connection_sender.hpp: a Sender for one websocketpp connection.
#ifndef WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
#define WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP

#include <cstddef>
#include <memory>
#include <utility>

#include <websocketpp/frame.hpp>
#include <websocketpp/utf8_validator.hpp>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"
#include "wsreg/websocketpp/config.hpp"
#include "wsreg/websocketpp/detail/server_counters.hpp"
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
  namespace frame = ::websocketpp::frame;
  const auto bytes = payload.data();
  if (payload.opcode() == Opcode::text) {
    ::websocketpp::utf8_validator::validator utf8;
    if (!utf8.decode(bytes.begin(), bytes.end()) || !utf8.complete()) return nullptr;
  }
  const auto opcode = static_cast<frame::opcode::value>(payload.opcode());
  auto message = std::make_shared<Message>(typename Message::con_msg_man_ptr(), opcode, 0);
  const frame::basic_header header(opcode, bytes.size(), /*fin=*/true, /*masked=*/false);
  message->set_header(frame::prepare_header(header, frame::extended_header(bytes.size())));
  message->set_payload(bytes.data(), bytes.size());
  message->set_prepared(true);
  return message;
}

/// Delivers payloads to one websocketpp connection through its error_code
/// returning send(), within a bound on the bytes waiting for it.
///
/// Framing: with `frame_once`, a payload is framed once (frame_once()
/// above, cached in the Payload) and the same prepared message is queued on
/// every recipient, so a broadcast to N connections costs one frame and one
/// copy of the bytes instead of N. Without it (or for a hybi00 connection,
/// whose framing differs), websocketpp's send() copies and frames per
/// connection.
///
/// Backpressure: before each send it reads websocketpp's
/// get_buffered_amount(); if something is waiting and the payload would take
/// it past `max_buffered_bytes`, the payload is refused (dropped) and, under
/// OverflowPolicy::close, the strand is asked to close with 1008. So one
/// slow connection costs the sending thread one refused call, never a wait.
///
/// Ownership: holds the connection weakly, so a registry entry never keeps
/// a closed connection (and its buffers) alive, and the server's counters
/// strongly, since the registry may hold this past the Server's life.
///
/// Thread safety: send() is thread-safe (websocketpp's connection::send
/// locks the connection's state and write queue, then posts the write to
/// the strand). It never blocks on the socket. get_buffered_amount() reads
/// a size_t websocketpp updates under its write lock without taking it: the
/// value may be a moment old, which only shifts the bound by one message.
template <class Connection>
class ConnectionSender final : public Sender {
 public:
  ConnectionSender(std::weak_ptr<Connection> connection, std::size_t max_buffered_bytes,
                   OverflowPolicy policy, bool frame_once,
                   std::shared_ptr<ServerCounters> counters)
      : connection_(std::move(connection)),
        max_buffered_bytes_(max_buffered_bytes),
        policy_(policy),
        frame_once_(frame_once),
        counters_(std::move(counters)) {}

  /// Queues `payload` on the connection's write queue; dropped if the
  /// connection is gone, not open, closing, or over its bound, or if it is
  /// text that is not valid UTF-8. With frame_once the first recipient frames
  /// the payload and the others share that frame; otherwise websocketpp
  /// copies the bytes into a frame of its own here.
  SendResult send(const Payload& payload) noexcept override {
    try {
      auto connection = connection_.lock();
      if (!connection) return SendResult::dropped;
      constexpr std::uint8_t closing =
          request_shutdown_close | request_slow_close | request_idle_close;
      if (connection->requests.load(std::memory_order_relaxed) & closing) {
        return SendResult::dropped;
      }
      const std::size_t buffered = connection->get_buffered_amount();
      counters_->note_buffered(buffered);
      // A message larger than the bound still goes to an idle connection.
      if (buffered != 0 && buffered + payload.size() > max_buffered_bytes_) {
        ServerCounters::bump(counters_->backpressure_drops);
        if (policy_ == OverflowPolicy::close) ask_strand(connection, request_slow_close);
        return SendResult::dropped;
      }
      if (frame_once_) {
        using Message = typename Connection::message_type;
        auto framed = payload.template encoded<FramedMessage<Message>>(
            [&payload] { return frame_once<Message>(payload); });
        if (!framed) return SendResult::dropped;
        return connection->send(std::move(framed)) ? SendResult::dropped : SendResult::sent;
      }
      const auto opcode = static_cast<::websocketpp::frame::opcode::value>(payload.opcode());
      const auto ec = connection->send(payload.data().data(), payload.size(), opcode);
      return ec ? SendResult::dropped : SendResult::sent;
    } catch (...) {  // std::bad_alloc from websocketpp's message allocation
      return SendResult::dropped;
    }
  }

 private:
  std::weak_ptr<Connection> connection_;
  const std::size_t max_buffered_bytes_;
  const OverflowPolicy policy_;
  const bool frame_once_;
  const std::shared_ptr<ServerCounters> counters_;
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
