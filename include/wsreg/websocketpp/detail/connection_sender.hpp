// wsreg/websocketpp/detail/connection_sender.hpp: a Sender for one websocketpp connection.
#ifndef WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
#define WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP

#include <memory>
#include <utility>

#include <websocketpp/frame.hpp>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"

namespace wsreg::wspp::detail {

/// Delivers payloads to one websocketpp connection through its error_code
/// returning send(): nothing websocketpp throws or reports reaches the
/// registry as an exception.
///
/// Ownership: holds the connection weakly, so a registry entry never keeps a
/// closed connection (and its buffers) alive.
///
/// Thread safety: send() is thread-safe (websocketpp's connection::send locks
/// the connection's state and write queue, then posts the write to the
/// connection's strand). It never blocks on the socket.
template <class Connection>
class ConnectionSender final : public Sender {
 public:
  explicit ConnectionSender(std::weak_ptr<Connection> connection)
      : connection_(std::move(connection)) {}

  /// Queues `payload` on the connection's write queue; dropped if the
  /// connection is gone or not open (websocketpp error::invalid_state).
  /// websocketpp copies the bytes into its own frame here.
  SendResult send(const Payload& payload) noexcept override {
    try {
      auto connection = connection_.lock();
      if (!connection) return SendResult::dropped;
      const auto opcode = static_cast<::websocketpp::frame::opcode::value>(payload.opcode());
      const auto ec = connection->send(payload.data().data(), payload.size(), opcode);
      return ec ? SendResult::dropped : SendResult::sent;
    } catch (...) {  // std::bad_alloc from websocketpp's message allocation
      return SendResult::dropped;
    }
  }

 private:
  std::weak_ptr<Connection> connection_;
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_CONNECTION_SENDER_HPP
