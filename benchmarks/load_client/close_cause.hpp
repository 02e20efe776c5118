// load_client/close_cause.hpp: why a client connection ended.
#ifndef WSREG_LOAD_CLIENT_CLOSE_CAUSE_HPP
#define WSREG_LOAD_CLIENT_CLOSE_CAUSE_HPP

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace load_client {

/// Why a connection ended. The first group ends a connection before its
/// handshake completed (a connect failure); the second ends an open one.
enum class CloseCause : std::uint8_t {
  // Connect failures.
  not_started,          ///< Connect phase timed out before this one was tried.
  socket_error,         ///< socket(), bind() or epoll_ctl() failed (e.g. EMFILE).
  connect_refused,      ///< ECONNREFUSED: nothing listening.
  no_local_port,        ///< EADDRNOTAVAIL: out of ephemeral ports; add --source-addresses.
  connect_error,        ///< Any other TCP connect error.
  tls_handshake,        ///< wss://: the TLS handshake failed, or the server closed during it.
  handshake_closed,     ///< Server closed or reset the socket during the handshake.
  handshake_status,     ///< Response status was not 101.
  handshake_accept,     ///< Sec-WebSocket-Accept missing or wrong.
  handshake_malformed,  ///< Response not HTTP or its head over 8 KiB.
  connect_timeout,      ///< Still connecting or handshaking when the connect phase ended.
  // Ends of open connections.
  server_close,         ///< Server sent a close frame (answered, then socket closed).
  eof,                  ///< Server closed TCP without a close frame.
  io_error,             ///< recv()/send() failed (e.g. ECONNRESET).
  protocol_error,       ///< Masked, reserved-bit, bad-opcode or misplaced frame.
  message_too_large,    ///< Frame or message over 16 MiB.
  local_close,          ///< We closed it at the end of the run.
};

/// Number of CloseCause values, for per-cause counters.
inline constexpr std::size_t close_cause_count = static_cast<std::size_t>(CloseCause::local_close) + 1;

/// True for causes that end a connection before it opened.
///
/// Thread safety: a pure function.
inline constexpr bool is_connect_failure(CloseCause c) noexcept {
  return c <= CloseCause::connect_timeout;
}

/// True for causes counted as `errors` in the report: an open connection
/// lost other than by a server close frame or by our own close.
///
/// Thread safety: a pure function.
inline constexpr bool is_connection_error(CloseCause c) noexcept {
  return c == CloseCause::eof || c == CloseCause::io_error || c == CloseCause::protocol_error ||
         c == CloseCause::message_too_large;
}

/// The snake_case name of `c`, as used in the report.
///
/// Thread safety: a pure function.
inline constexpr std::string_view to_string(CloseCause c) noexcept {
  switch (c) {
    case CloseCause::not_started: return "not_started";
    case CloseCause::socket_error: return "socket_error";
    case CloseCause::connect_refused: return "connect_refused";
    case CloseCause::no_local_port: return "no_local_port";
    case CloseCause::connect_error: return "connect_error";
    case CloseCause::tls_handshake: return "tls_handshake";
    case CloseCause::handshake_closed: return "handshake_closed";
    case CloseCause::handshake_status: return "handshake_status";
    case CloseCause::handshake_accept: return "handshake_accept";
    case CloseCause::handshake_malformed: return "handshake_malformed";
    case CloseCause::connect_timeout: return "connect_timeout";
    case CloseCause::server_close: return "server_close";
    case CloseCause::eof: return "eof";
    case CloseCause::io_error: return "io_error";
    case CloseCause::protocol_error: return "protocol_error";
    case CloseCause::message_too_large: return "message_too_large";
    case CloseCause::local_close: return "local_close";
  }
  return "unknown";
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_CLOSE_CAUSE_HPP
