// wsreg/websocketpp/detail/connection_sender.hpp: a Sender for one websocketpp connection.
#ifndef WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
#define WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP

#include <cstddef>
#include <memory>
#include <utility>

#include <websocketpp/frame.hpp>

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

/// Delivers payloads to one websocketpp connection through its error_code
/// returning send(), within a bound on the bytes waiting for it.
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
                   OverflowPolicy policy, std::shared_ptr<ServerCounters> counters)
      : connection_(std::move(connection)),
        max_buffered_bytes_(max_buffered_bytes),
        policy_(policy),
        counters_(std::move(counters)) {}

  /// Queues `payload` on the connection's write queue; dropped if the
  /// connection is gone, not open, closing, or over its bound. websocketpp
  /// copies the bytes into its own frame here.
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
  const std::shared_ptr<ServerCounters> counters_;
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
