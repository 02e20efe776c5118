// wsreg/websocketpp/tls_deflate_config.hpp: wss:// with permessage-deflate
// (RFC 7692): TlsConfig plus the extension of DeflateConfig.
//
// Link OpenSSL and zlib (the exported target wsreg::websocketpp does).
#ifndef WSREG_WEBSOCKETPP_TLS_DEFLATE_CONFIG_HPP
#define WSREG_WEBSOCKETPP_TLS_DEFLATE_CONFIG_HPP

#include "wsreg/websocketpp/tls.hpp"  // defines ASIO_STANDALONE first

#include "wsreg/websocketpp/detail/deflate.hpp"

namespace wsreg::wspp {

/// TlsConfig plus permessage-deflate, negotiated, compressed once and
/// inflated within max_message_size exactly as with DeflateConfig (see
/// there). Compression runs before encryption: with secrets and
/// attacker-chosen text in one message, compressed sizes can leak the
/// secret (CRIME/BREACH); keep them in separate messages or leave the
/// threshold above such messages.
///
/// Thread safety: a compile-time config, as TlsConfig.
struct TlsDeflateConfig : TlsConfig {
  using type = TlsDeflateConfig;
  using permessage_deflate_type = detail::PerMessageDeflate<TlsDeflateConfig>;
};

/// A Server over TLS that negotiates permessage-deflate:
/// `TlsDeflateServer<ActorPolicy> server(registry, make_tls_context(tls), options);`
template <class Policy, class Data = std::monostate>
using TlsDeflateServer = Server<Policy, Data, TlsDeflateConfig>;

}  // namespace wsreg::wspp

// RFC 6455 fixes to websocketpp 0.8.2's hybi13 processor, and inflation
// bounded by max_message_size, for TlsDeflateConfig.
WSREG_WSPP_HYBI13_FIXES(::wsreg::wspp::TlsDeflateConfig)
WSREG_WSPP_BOUNDED_INFLATE(::wsreg::wspp::TlsDeflateConfig)

#endif  // WSREG_WEBSOCKETPP_TLS_DEFLATE_CONFIG_HPP
