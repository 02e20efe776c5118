// load_client/base64.hpp: base64 encoding (RFC 4648, with padding).
#ifndef WSREG_LOAD_CLIENT_BASE64_HPP
#define WSREG_LOAD_CLIENT_BASE64_HPP

#include <cstddef>
#include <cstdint>
#include <string>

namespace load_client {

/// Encodes `size` bytes at `data` as base64 with `=` padding: 4 characters
/// per 3 bytes. Used for Sec-WebSocket-Key and Sec-WebSocket-Accept.
///
/// Thread safety: a pure function; safe from any thread.
inline std::string base64_encode(const std::uint8_t* data, std::size_t size) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                            std::uint32_t{data[i + 2]};
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = size - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t{data[i]} << 16;
    if (rest == 2) v |= std::uint32_t{data[i + 1]} << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_BASE64_HPP
