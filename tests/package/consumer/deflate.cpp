// websocketpp's permessage-deflate extension (RFC 7692) with nothing but
// `target_link_libraries(deflate PRIVATE wsreg::websocketpp)`: its zlib
// calls link (ZLIB::ZLIB comes with the target). Initialises a server-side
// extension, negotiates the offer a browser sends, and exits 0 when zlib
// accepted both.
#include <wsreg/websocketpp/server.hpp>

#include <cstdio>
#include <system_error>

#include <websocketpp/extensions/permessage_deflate/enabled.hpp>
#include <websocketpp/http/request.hpp>

namespace {

struct DeflateConfig : websocketpp::config::asio {
  using type = DeflateConfig;
  using request_type = websocketpp::config::asio::request_type;
};
using Deflate = websocketpp::extensions::permessage_deflate::enabled<DeflateConfig>;

}  // namespace

int main() {
  Deflate deflate;
  websocketpp::http::attribute_list offer;
  offer["client_max_window_bits"] = "";
  const auto answer = deflate.negotiate(offer);
  if (answer.first) {
    std::fprintf(stderr, "negotiate: %s\n", answer.first.message().c_str());
    return 1;
  }
  const std::error_code ec = deflate.init(true);
  if (ec) {
    std::fprintf(stderr, "init: %s\n", ec.message().c_str());
    return 1;
  }
  std::printf("permessage-deflate: %s\n", answer.second.c_str());
  return deflate.is_enabled() ? 0 : 1;
}
