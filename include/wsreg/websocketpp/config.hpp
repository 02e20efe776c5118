// wsreg/websocketpp/config.hpp: the websocketpp server config the adapter uses.
#ifndef WSREG_WEBSOCKETPP_CONFIG_HPP
#define WSREG_WEBSOCKETPP_CONFIG_HPP

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <websocketpp/config/asio_no_tls.hpp>

#include "wsreg/sender.hpp"

namespace wsreg::wspp {

/// websocketpp 0.8.2 server config: plain TCP on standalone Asio, thread-safe
/// (websocketpp's `config::asio`), plus one field per connection: its
/// registry id. Everything else keeps websocketpp's defaults, including the
/// 16 KiB `connection_read_buffer_size` and 5 s open and close handshake
/// timeouts.
///
/// Thread safety: a compile-time config; the per-connection field is written
/// and read only on that connection's strand (its websocketpp handlers).
struct Config : ::websocketpp::config::asio {
  using type = Config;
  using base = ::websocketpp::config::asio;

  /// Base class of every websocketpp connection of this config.
  struct connection_base {
    /// The registry id while the connection is registered; no_connection
    /// before its open handler ran and after its close handler ran.
    ConnectionId wsreg_id = no_connection;
  };
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_CONFIG_HPP
