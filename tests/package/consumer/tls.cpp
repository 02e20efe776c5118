// websocketpp's TLS transport (config::asio_tls) next to the adapter, with
// nothing but `target_link_libraries(tls PRIVATE wsreg::websocketpp)`: it
// compiles (websocketpp's and Asio's headers, ASIO_STANDALONE) and links
// (OpenSSL::SSL and OpenSSL::Crypto come with the target). Builds a TLS
// endpoint and the asio::ssl::context its TLS init handler would hand out,
// and exits 0 when OpenSSL accepted the context's settings.
//
// When the adapter gains a TLS Server, its consumer goes here (or next to
// it): include its header, build a Server on its TLS config, listen.
#include <wsreg/websocketpp/server.hpp>

#include <cstdio>
#include <memory>
#include <system_error>

#include <asio/ssl/context.hpp>
#include <websocketpp/config/asio.hpp>
#include <websocketpp/server.hpp>

namespace {

using TlsEndpoint = websocketpp::server<websocketpp::config::asio_tls>;
using SslContext = std::shared_ptr<asio::ssl::context>;

SslContext make_context(std::error_code& ec) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use,
                       ec);
  return context;
}

}  // namespace

int main() {
  TlsEndpoint endpoint;
  endpoint.clear_access_channels(websocketpp::log::alevel::all);
  std::error_code ec;
  endpoint.init_asio(ec);
  if (ec) {
    std::fprintf(stderr, "init_asio: %s\n", ec.message().c_str());
    return 1;
  }
  endpoint.set_tls_init_handler([](websocketpp::connection_hdl) {
    std::error_code ignored;
    return make_context(ignored);
  });
  const SslContext context = make_context(ec);
  if (ec || !context || !context->native_handle()) {
    std::fprintf(stderr, "asio::ssl::context: %s\n", ec.message().c_str());
    return 1;
  }
  // A call into libssl itself, so the link is proven, not just the headers.
  return SSL_CTX_get_options(context->native_handle()) != 0 ? 0 : 1;
}
