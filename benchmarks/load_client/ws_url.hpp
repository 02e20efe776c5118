// load_client/ws_url.hpp: the ws:// and wss:// URLs the load client accepts.
#ifndef WSREG_LOAD_CLIENT_WS_URL_HPP
#define WSREG_LOAD_CLIENT_WS_URL_HPP

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace load_client {

/// A parsed `ws://host[:port][/path]` or `wss://host[:port][/path]` URL.
/// The host is an IPv4 literal or `localhost` (127.0.0.1): the client does
/// no DNS look-up, so a run never waits on a resolver.
///
/// Thread safety: a plain value.
struct WsUrl {
  /// The `host[:port]` text exactly as given, sent as the Host header.
  std::string host_header;
  /// Request target of the upgrade request; "/" when the URL has no path.
  std::string path = "/";
  /// Server address and port (network byte order inside).
  sockaddr_in address{};
  /// wss://: every connection runs TLS over its socket.
  bool tls = false;
};

/// Parses `text` into `out`. Returns an empty string on success, otherwise
/// a one-line reason, and then leaves `out` unspecified. The port defaults
/// to 80 (ws://) or 443 (wss://) when absent.
///
/// Thread safety: a pure function; safe from any thread.
inline std::string parse_ws_url(std::string_view text, WsUrl& out) {
  constexpr std::string_view plain_scheme = "ws://";
  constexpr std::string_view tls_scheme = "wss://";
  std::string_view rest;
  if (text.substr(0, plain_scheme.size()) == plain_scheme) {
    out.tls = false;
    rest = text.substr(plain_scheme.size());
  } else if (text.substr(0, tls_scheme.size()) == tls_scheme) {
    out.tls = true;
    rest = text.substr(tls_scheme.size());
  } else {
    return "URL must start with ws:// or wss://";
  }
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  out.path = slash == std::string_view::npos ? std::string("/") : std::string(rest.substr(slash));
  if (authority.empty()) return "URL has no host";

  std::string_view host = authority;
  std::uint16_t port = out.tls ? 443 : 80;
  if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    const std::string_view port_text = authority.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return "URL port must be a number in 1..65535";
    }
    port = static_cast<std::uint16_t>(value);
  }

  out.address = sockaddr_in{};
  out.address.sin_family = AF_INET;
  out.address.sin_port = htons(port);
  const std::string host_text(host == "localhost" ? std::string_view("127.0.0.1") : host);
  if (inet_pton(AF_INET, host_text.c_str(), &out.address.sin_addr) != 1) {
    return "URL host must be an IPv4 address or localhost";
  }
  out.host_header = std::string(authority);
  return {};
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_WS_URL_HPP
