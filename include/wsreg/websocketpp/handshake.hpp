// wsreg/websocketpp/handshake.hpp: what the handshake handler sees and answers
// (Server::set_handshake_handler).
#ifndef WSREG_WEBSOCKETPP_HANDSHAKE_HPP
#define WSREG_WEBSOCKETPP_HANDSHAKE_HPP

#include "wsreg/websocketpp/detail/cxx_check.hpp"  // first: websocketpp 0.8.2 is C++17 only

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/ip/address.hpp>
#include <websocketpp/http/request.hpp>

namespace wsreg::wspp {

/// The opening handshake request of one WebSocket connection, as the
/// handshake handler sees it, before anything of the connection is
/// registered (RFC 6455 section 4.2.1). A read-only view over the request
/// websocketpp parsed: the string_views it returns point into that request
/// and stay valid until the handshake handler returns; copy what you keep.
///
/// Header names compare ASCII case-insensitively (RFC 9110 section 5.1). A
/// header sent on several lines reads as one value, joined with ", "
/// (websocketpp's parser does that; RFC 9110 section 5.3).
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe (every
/// member is const and allocates only what it returns).
class HandshakeRequest {
 public:
  /// A view over `request` (which must outlive it) from the peer at
  /// `address`:`port`. The Server makes these; tests may too.
  HandshakeRequest(const ::websocketpp::http::parser::request& request,
                   asio::ip::address address, std::uint16_t port) noexcept
      : request_(request), address_(std::move(address)), port_(port) {}

  /// The request method; "GET" for every WebSocket handshake (websocketpp
  /// refuses others before the handler). Thread-safe.
  std::string_view method() const noexcept { return request_.get_method(); }

  /// The request target as sent, path and query: "/chat?nick=ann". Thread-safe.
  std::string_view target() const noexcept { return request_.get_uri(); }

  /// The path part of the target, up to '?' or '#', as sent (not
  /// percent-decoded, so "/a%2Fb" stays distinct from "/a/b"). Thread-safe.
  std::string_view path() const noexcept {
    const std::string_view t = target();
    return t.substr(0, t.find_first_of("?#"));
  }

  /// The value of query parameter `name` (the first, if repeated), percent-
  /// decoded as application/x-www-form-urlencoded is ("+" is a space, "%41"
  /// is "A"; a malformed "%" escape is kept as it is). Names are matched
  /// after decoding, case-sensitively. "?a" and "?a=" both give "" for "a";
  /// nullopt if absent. Thread-safe. Allocates the decoded value.
  std::optional<std::string> query(std::string_view name) const {
    std::string_view q = target();
    const std::size_t start = q.find('?');
    if (start == std::string_view::npos) return std::nullopt;
    q = q.substr(start + 1);
    q = q.substr(0, q.find('#'));
    while (!q.empty()) {
      const std::size_t amp = q.find('&');
      const std::string_view pair = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
      if (pair.empty()) continue;
      const std::size_t eq = pair.find('=');
      const std::string_view key = pair.substr(0, eq);
      if (form_decode(key) != name) continue;
      return eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1));
    }
    return std::nullopt;
  }

  /// The value of header `name` (case-insensitive), surrounding whitespace
  /// removed; nullopt if absent. Thread-safe.
  std::optional<std::string_view> header(const std::string& name) const {
    const auto& headers = request_.get_headers();
    const auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return std::string_view(it->second);
  }

  /// The value of cookie `name` from the Cookie header (RFC 6265 section
  /// 5.4: "a=1; b=2"), without surrounding double quotes; not decoded (the
  /// RFC defines no encoding). nullopt if there is no such cookie. The first
  /// one wins when a name repeats. Thread-safe.
  std::optional<std::string_view> cookie(std::string_view name) const {
    const auto cookies = header("Cookie");
    if (!cookies) return std::nullopt;
    std::string_view rest = *cookies;
    while (!rest.empty()) {
      const std::size_t semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      const std::size_t eq = pair.find('=');
      if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
    return std::nullopt;
  }

  /// The Origin header (RFC 6454), e.g. "https://example.com": every
  /// browser sends it with a WebSocket handshake; other clients usually do
  /// not (nullopt). Thread-safe.
  std::optional<std::string_view> origin() const { return header("Origin"); }

  /// The subprotocols the client offered in Sec-WebSocket-Protocol (RFC
  /// 6455 section 4.1 item 10), in its order of preference: the header split
  /// on commas, each item trimmed, empty items skipped. Empty if none.
  /// Thread-safe. Allocates the list.
  std::vector<std::string> subprotocols() const {
    std::vector<std::string> out;
    const auto offered = header("Sec-WebSocket-Protocol");
    if (!offered) return out;
    std::string_view rest = *offered;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (!item.empty()) out.emplace_back(item);
    }
    return out;
  }

  /// The peer's IP address (IPv4-mapped IPv6 addresses given as IPv4);
  /// unspecified if the socket could not tell (the peer already left).
  /// Thread-safe.
  const asio::ip::address& remote_address() const noexcept { return address_; }

  /// The peer's TCP port; 0 if the socket could not tell. Thread-safe.
  std::uint16_t remote_port() const noexcept { return port_; }

  /// The websocketpp request itself, for what the accessors above do not
  /// cover (the HTTP version, the raw header list). Thread-safe.
  const ::websocketpp::http::parser::request& raw() const noexcept { return request_; }

 private:
  static std::string_view trim(std::string_view s) noexcept {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t");
    return s.substr(first, last - first + 1);
  }

  static int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  static std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '+') {
        out += ' ';
      } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
                 hex_value(s[i + 2]) >= 0) {
        out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
        i += 2;
      } else {
        out += c;
      }
    }
    return out;
  }

  const ::websocketpp::http::parser::request& request_;
  asio::ip::address address_;
  std::uint16_t port_ = 0;
};

/// What a handshake handler answers: accept (optionally choosing one of the
/// offered subprotocols and giving the connection's initial Data, with
/// which it is registered), or reject with an HTTP status and body. Extra
/// response headers (WWW-Authenticate on a 401, Retry-After on a 429,
/// Set-Cookie on a 101) go on either with with_header().
///
///     server.set_handshake_handler([](const wspp::HandshakeRequest& req) {
///       using Decision = wspp::HandshakeDecision<User>;
///       auto nick = req.query("nick");
///       if (!nick) return Decision::reject(400, "nick missing\n");
///       return Decision::accept(User{*nick});
///     });
///
/// Thread safety: a plain value.
template <class Data>
class HandshakeDecision {
 public:
  /// Accepts with a default-constructed Data and no subprotocol.
  static HandshakeDecision accept() { return HandshakeDecision(true, Data()); }

  /// Accepts; the connection is registered with `data`
  /// (ConnectionRegistry::add(sender, data)).
  static HandshakeDecision accept(Data data) { return HandshakeDecision(true, std::move(data)); }

  /// Accepts and answers Sec-WebSocket-Protocol: `subprotocol` in the 101.
  /// It must be one the client offered (HandshakeRequest::subprotocols(),
  /// RFC 6455 section 4.2.2 item 5.4): otherwise the Server answers 500 and
  /// counts a handshake handler error, since a client must fail a
  /// connection whose subprotocol it did not offer.
  static HandshakeDecision accept_with_subprotocol(std::string subprotocol, Data data = Data()) {
    HandshakeDecision d(true, std::move(data));
    d.subprotocol_ = std::move(subprotocol);
    return d;
  }

  /// Rejects with HTTP `status` (400 to 599: 401, 403, 429, ...; anything
  /// else answers 500 and counts a handshake handler error) and `body`, sent
  /// as text/plain. Nothing of the connection is registered.
  static HandshakeDecision reject(int status, std::string body = std::string()) {
    HandshakeDecision d(false, Data());
    d.status_ = status;
    d.body_ = std::move(body);
    return d;
  }

  /// Adds a response header (sent with the 101 or with the rejection);
  /// chainable. websocketpp refuses names that are not HTTP tokens: such a
  /// decision answers 500, counted.
  HandshakeDecision& with_header(std::string name, std::string value) & {
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  /// As above, on a temporary: `return Decision::reject(401).with_header(...);`
  HandshakeDecision&& with_header(std::string name, std::string value) && {
    headers_.emplace_back(std::move(name), std::move(value));
    return std::move(*this);
  }

  /// Whether this accepts the upgrade.
  bool accepted() const noexcept { return accepted_; }
  /// The rejection status (0 when accepted).
  int status() const noexcept { return status_; }
  /// The rejection body.
  const std::string& body() const noexcept { return body_; }
  /// The chosen subprotocol; empty for none.
  const std::string& subprotocol() const noexcept { return subprotocol_; }
  /// The extra response headers, in order.
  const std::vector<std::pair<std::string, std::string>>& headers() const noexcept {
    return headers_;
  }
  /// The initial Data of an accepted connection; moved out by the Server.
  Data& data() noexcept { return data_; }

 private:
  HandshakeDecision(bool accepted, Data data) : accepted_(accepted), data_(std::move(data)) {}

  bool accepted_ = false;
  int status_ = 0;
  std::string body_;
  std::string subprotocol_;
  std::vector<std::pair<std::string, std::string>> headers_;
  Data data_;
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_HANDSHAKE_HPP
