// load_client/ws_handshake.hpp: the client side of the RFC 6455 opening handshake.
#ifndef WSREG_LOAD_CLIENT_WS_HANDSHAKE_HPP
#define WSREG_LOAD_CLIENT_WS_HANDSHAKE_HPP

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "base64.hpp"
#include "sha1.hpp"

namespace load_client {

/// What check_upgrade_response() found wrong, if anything.
enum class HandshakeResult : std::uint8_t {
  ok,           ///< "HTTP/1.x 101" and the expected Sec-WebSocket-Accept.
  bad_status,   ///< A well-formed status line whose code is not 101.
  bad_accept,   ///< 101, but Sec-WebSocket-Accept missing or wrong.
  malformed,    ///< Not an HTTP/1.x status line.
};

/// A fresh Sec-WebSocket-Key: 16 random bytes from `rng`, base64-encoded
/// (24 characters).
///
/// Thread safety: uses `rng`; callers must not share it across threads.
inline std::string make_websocket_key(std::mt19937_64& rng) {
  std::array<std::uint8_t, 16> nonce{};
  for (std::size_t i = 0; i < nonce.size(); i += 8) {
    const std::uint64_t r = rng();
    for (std::size_t j = 0; j < 8; ++j) nonce[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
  }
  return base64_encode(nonce.data(), nonce.size());
}

/// The Sec-WebSocket-Accept a server must answer to `key`:
/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
///
/// Thread safety: a pure function; safe from any thread.
inline std::string websocket_accept_for(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const auto digest = sha1(input);
  return base64_encode(digest.data(), digest.size());
}

/// The permessage-deflate offer of `--deflate` (RFC 7692 section 7.1): no
/// parameters the server must honour, and a hint that this client can do
/// without client context takeover (it sends no data messages anyway).
inline constexpr std::string_view deflate_offer = "permessage-deflate; client_no_context_takeover";

/// The HTTP/1.1 upgrade request for `path` on `host` with `key`, offering
/// `extensions` (Sec-WebSocket-Extensions) when not empty.
///
/// Thread safety: a pure function; safe from any thread.
inline std::string make_upgrade_request(std::string_view host, std::string_view path,
                                        std::string_view key, std::string_view extensions = {}) {
  std::string request;
  request.reserve(160 + host.size() + path.size() + extensions.size());
  request.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  request.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
  request.append(key).append("\r\nSec-WebSocket-Version: 13\r\n");
  if (!extensions.empty()) {
    request.append("Sec-WebSocket-Extensions: ").append(extensions).append("\r\n");
  }
  request.append("\r\n");
  return request;
}

namespace detail {

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `visit(name, value)`, both trimmed, for each header line of `head`
// (a response head from its status line on) in order, until it returns
// true. Lines without a colon are skipped.
template <class Visit>
void for_each_header(std::string_view head, Visit&& visit) noexcept {
  std::string_view rest = head.substr(std::min(head.size(), head.find("\r\n") + 2));
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (visit(trim(line.substr(0, colon)), trim(line.substr(colon + 1)))) return;
  }
}

}  // namespace detail

/// Checks a server's response head: `head` runs from the status line up to
/// and including the blank line ("\r\n\r\n"). Header names compare
/// case-insensitively; the accept value must match exactly.
///
/// Thread safety: a pure function; safe from any thread.
inline HandshakeResult check_upgrade_response(std::string_view head,
                                              std::string_view expected_accept) noexcept {
  const std::size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  // "HTTP/1.1 101 Switching Protocols": the code sits at offsets 9..11.
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
    return HandshakeResult::malformed;
  }
  if (status_line.substr(9, 3) != "101") return HandshakeResult::bad_status;

  HandshakeResult result = HandshakeResult::bad_accept;
  detail::for_each_header(head, [&](std::string_view name, std::string_view value) {
    if (!detail::iequals(name, "Sec-WebSocket-Accept")) return false;
    result = value == expected_accept ? HandshakeResult::ok : HandshakeResult::bad_accept;
    return true;
  });
  return result;
}

/// What a response head says of permessage-deflate (RFC 7692 section 7.1).
///
/// Thread safety: a plain value.
struct DeflateAnswer {
  /// The server accepted the extension: its messages may have RSV1 set.
  bool negotiated = false;
  /// The server compresses each message on its own (server_no_context_takeover).
  bool server_no_context_takeover = false;
};

/// Reads the Sec-WebSocket-Extensions header of `head` (as
/// check_upgrade_response takes it).
///
/// Thread safety: a pure function; safe from any thread.
inline DeflateAnswer read_deflate_answer(std::string_view head) noexcept {
  DeflateAnswer answer;
  detail::for_each_header(head, [&](std::string_view name, std::string_view value) {
    if (!detail::iequals(name, "Sec-WebSocket-Extensions")) return false;
    if (value.substr(0, 18) != "permessage-deflate") return false;
    answer.negotiated = true;
    answer.server_no_context_takeover =
        value.find("server_no_context_takeover") != std::string_view::npos;
    return false;  // a later header may answer again: the last one counts, as before
  });
  return answer;
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_WS_HANDSHAKE_HPP
