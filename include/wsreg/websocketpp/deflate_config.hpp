// wsreg/websocketpp/deflate_config.hpp: a websocketpp server config that
// negotiates permessage-deflate (RFC 7692).
//
// Include this header (besides server.hpp) for DeflateConfig and
// DeflateServer; link zlib (the exported target wsreg::websocketpp does).
// tls_deflate_config.hpp has the same over TLS.
#ifndef WSREG_WEBSOCKETPP_DEFLATE_CONFIG_HPP
#define WSREG_WEBSOCKETPP_DEFLATE_CONFIG_HPP

#include "wsreg/websocketpp/server.hpp"  // defines ASIO_STANDALONE first

#include "wsreg/websocketpp/detail/deflate.hpp"

namespace wsreg::wspp {

/// wsreg::wspp::Config plus permessage-deflate (RFC 7692). Every connection
/// that offers the extension negotiates it, with server_no_context_takeover
/// always in the answer, so one compressed frame is valid on all of them and
/// send, broadcast and publish compress each payload once
/// (ServerOptions::deflate_threshold_bytes, deflate_level; frame_once off
/// compresses per connection instead). Inbound compressed messages are
/// inflated with ServerOptions::max_message_size applied to the inflated
/// size (1009 past it). The extension is detail::PerMessageDeflate, not
/// websocketpp's own; docs/websocketpp-adapter.md, "Compression", says what
/// is negotiated, what it costs, and what websocketpp's own could not do.
///
/// Thread safety: a compile-time config, as Config.
struct DeflateConfig : Config {
  using type = DeflateConfig;
  using permessage_deflate_type = detail::PerMessageDeflate<DeflateConfig>;
};

/// A Server that negotiates permessage-deflate:
/// `DeflateServer<ActorPolicy> server(registry, options);`
template <class Policy, class Data = std::monostate>
using DeflateServer = Server<Policy, Data, DeflateConfig>;

}  // namespace wsreg::wspp

// RFC 6455 fixes to websocketpp 0.8.2's hybi13 processor, and inflation
// bounded by max_message_size, for DeflateConfig.
WSREG_WSPP_HYBI13_FIXES(::wsreg::wspp::DeflateConfig)
WSREG_WSPP_BOUNDED_INFLATE(::wsreg::wspp::DeflateConfig)

#endif  // WSREG_WEBSOCKETPP_DEFLATE_CONFIG_HPP
