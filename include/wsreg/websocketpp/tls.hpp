// wsreg/websocketpp/tls.hpp: wss:// for wsreg::wspp::Server (websocketpp's
// asio_tls transport on OpenSSL).
//
// Include this header (instead of, or besides, server.hpp) for TlsConfig,
// TlsServer and make_tls_context; link OpenSSL (the exported target
// wsreg::websocketpp does). A plain Server needs neither this header nor
// OpenSSL.
#ifndef WSREG_WEBSOCKETPP_TLS_HPP
#define WSREG_WEBSOCKETPP_TLS_HPP

#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "wsreg/websocketpp/server.hpp"  // defines ASIO_STANDALONE first

#include <asio/ssl/context.hpp>
#include <openssl/ssl.h>
#include <websocketpp/config/asio.hpp>

namespace wsreg::wspp {

/// websocketpp 0.8.2 server config for wss://: websocketpp's `config::asio_tls`
/// (TLS through asio::ssl::stream on OpenSSL, thread-safe) with what
/// Config has: ConnectionState in every connection, writes dispatched in one
/// hop (Config::transport_type) and a 512-byte read
/// buffer (see Config::connection_read_buffer_size for the measurements).
/// websocketpp's own TLS handshake timer (5 s, timeout_socket_post_init)
/// stays; the Server's handshake_timeout, counted from the TCP accept,
/// bounds the TLS handshake and the HTTP upgrade together.
///
/// Thread safety: a compile-time config.
struct TlsConfig : ::websocketpp::config::asio_tls {
  using type = TlsConfig;
  using base = ::websocketpp::config::asio_tls;
  using connection_base = ConnectionState;
  /// As Config::transport_type: writes dispatched in one hop.
  using transport_type = detail::StrandEndpoint<base::transport_config>;
  static const std::size_t connection_read_buffer_size = 512;
};

/// A Server over TLS, as uWebSockets has SSLApp beside App:
/// `TlsServer<ActorPolicy> server(registry, make_tls_context(tls), options);`
template <class Policy, class Data = std::monostate>
using TlsServer = Server<Policy, Data, TlsConfig>;

/// What make_tls_context() loads. Files are PEM.
///
/// Thread safety: a plain value.
struct TlsOptions {
  /// The server's certificate followed by any intermediate certificates
  /// (OpenSSL's SSL_CTX_use_certificate_chain_file).
  std::string certificate_chain_file;
  /// The private key of the certificate.
  std::string private_key_file;
  /// The key's passphrase, if it is encrypted; empty for none.
  std::string private_key_password;
  /// OpenSSL cipher list for TLS 1.2 (SSL_CTX_set_cipher_list); empty keeps
  /// OpenSSL's defaults. TLS 1.3 suites are OpenSSL's defaults.
  std::string cipher_list;
};

/// Makes the TLS context a TlsServer shares among its connections: TLS 1.2
/// at least (SSLv2/3, TLS 1.0 and 1.1 refused), the certificate chain and
/// private key of `options` (checked against each other), and OpenSSL's
/// SSL_MODE_RELEASE_BUFFERS, which frees an idle connection's 16 KiB read
/// and write buffers between records (what makes thousands of idle wss
/// connections affordable; uSockets sets it too).
///
/// Thread safety: safe to call from any thread; the context it returns is
/// then used by many connections at once, which OpenSSL allows once it is
/// set up: configure it before passing it to the Server, not after.
/// Errors: throws std::system_error (Asio's ssl category, with the file
/// named in what()) if a file cannot be read, the password is wrong, or
/// the key does not match the certificate; std::bad_alloc.
inline TlsContextPtr make_tls_context(const TlsOptions& options) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  SSL_CTX* const native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (!options.private_key_password.empty()) {
    context->set_password_callback(
        [password = options.private_key_password](std::size_t, asio::ssl::context::password_purpose) {
          return password;
        });
  }
  const auto load = [](auto&& step, const std::string& what, const std::string& file) {
    std::error_code ec;
    step(ec);
    if (ec) throw std::system_error(ec, "wsreg: TLS " + what + " '" + file + "'");
  };
  load([&](std::error_code& ec) { context->use_certificate_chain_file(options.certificate_chain_file, ec); },
       "certificate chain file", options.certificate_chain_file);
  load([&](std::error_code& ec) {
         context->use_private_key_file(options.private_key_file, asio::ssl::context::pem, ec);
       },
       "private key file", options.private_key_file);
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::system_error(
        std::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
        "wsreg: TLS private key '" + options.private_key_file +
            "' does not match the certificate '" + options.certificate_chain_file + "'");
  }
  if (!options.cipher_list.empty() &&
      SSL_CTX_set_cipher_list(native, options.cipher_list.c_str()) != 1) {
    throw std::system_error(
        std::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
        "wsreg: TLS cipher list '" + options.cipher_list + "' selects no cipher");
  }
  return context;
}

}  // namespace wsreg::wspp

// RFC 6455 fixes to websocketpp 0.8.2's hybi13 processor for TlsConfig.
WSREG_WSPP_HYBI13_FIXES(::wsreg::wspp::TlsConfig)

#endif  // WSREG_WEBSOCKETPP_TLS_HPP
