// load_client/ws_frame.hpp: RFC 6455 frame headers: decoding server frames,
// encoding masked client frames.
#ifndef WSREG_LOAD_CLIENT_WS_FRAME_HPP
#define WSREG_LOAD_CLIENT_WS_FRAME_HPP

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace load_client {

/// Frame opcodes of RFC 6455 section 5.2; other values are protocol errors.
enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// Largest frame payload, and largest reassembled message, accepted from a
/// server, in bytes (16 MiB). Larger ones drop the connection as an error.
inline constexpr std::uint64_t max_message_bytes = std::uint64_t{16} * 1024 * 1024;

/// The decoded fixed part of one frame.
///
/// Thread safety: a plain value.
struct FrameHeader {
  bool fin = false;
  bool masked = false;
  /// RSV1..RSV3 bits as they sit in the first byte (0 without extensions).
  std::uint8_t reserved_bits = 0;
  /// Raw 4-bit opcode; check_server_frame() rejects unknown values.
  std::uint8_t opcode = 0;
  /// Payload length in bytes.
  std::uint64_t payload_bytes = 0;
  /// Bytes before the payload: 2, 4 or 10, plus 4 for a masking key.
  std::size_t header_bytes = 0;
};

/// Why a server frame is refused.
enum class FrameError : std::uint8_t {
  none,
  masked,             ///< Servers must not mask (RFC 6455 5.1).
  reserved_bits,      ///< RSV set, but no extension was negotiated.
  bad_opcode,         ///< Reserved opcode 3-7 or 0xB-0xF.
  bad_control_frame,  ///< Control frame fragmented or longer than 125 bytes.
  too_large,          ///< Payload over max_message_bytes.
};

/// Decodes the header at the start of `data` (`size` bytes available).
/// Returns false when the header is not complete yet.
///
/// Thread safety: a pure function; safe from any thread.
inline bool decode_frame_header(const std::uint8_t* data, std::size_t size,
                                FrameHeader& out) noexcept {
  if (size < 2) return false;
  out.fin = (data[0] & 0x80) != 0;
  out.reserved_bits = data[0] & 0x70;
  out.opcode = data[0] & 0x0F;
  out.masked = (data[1] & 0x80) != 0;
  std::uint64_t length = data[1] & 0x7F;
  std::size_t header = 2;
  if (length == 126) {
    if (size < 4) return false;
    length = (std::uint64_t{data[2]} << 8) | data[3];
    header = 4;
  } else if (length == 127) {
    if (size < 10) return false;
    length = 0;
    for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | data[i];
    header = 10;
  }
  if (out.masked) header += 4;
  if (size < header) return false;
  out.payload_bytes = length;
  out.header_bytes = header;
  return true;
}

/// Checks the rules a server frame must follow, in isolation (message-level
/// rules such as "continuation needs a started message" are the parser's).
///
/// Thread safety: a pure function; safe from any thread.
/// `deflate`: permessage-deflate was negotiated, so RSV1 may mark the first
/// frame of a data message as compressed (RFC 7692 section 6).
inline FrameError check_server_frame(const FrameHeader& h, bool deflate = false) noexcept {
  if (h.masked) return FrameError::masked;
  const bool compressed_start = deflate && h.reserved_bits == 0x40 &&
                                (h.opcode == 0x1 || h.opcode == 0x2);
  if (h.reserved_bits != 0 && !compressed_start) return FrameError::reserved_bits;
  switch (static_cast<Opcode>(h.opcode)) {
    case Opcode::continuation:
    case Opcode::text:
    case Opcode::binary:
      return h.payload_bytes > max_message_bytes ? FrameError::too_large : FrameError::none;
    case Opcode::close:
    case Opcode::ping:
    case Opcode::pong:
      return h.fin && h.payload_bytes <= 125 ? FrameError::none : FrameError::bad_control_frame;
  }
  return FrameError::bad_opcode;
}

/// Appends one complete (FIN) client frame to `out`, its payload masked with
/// `mask_key` as RFC 6455 5.3 requires of clients. `out` keeps its capacity
/// between uses, so steady-state appends do not allocate.
///
/// Thread safety: touches only `out`.
inline void append_masked_frame(std::vector<char>& out, Opcode opcode, std::string_view payload,
                                std::uint32_t mask_key) {
  const std::uint64_t size = payload.size();
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(opcode)));
  if (size < 126) {
    out.push_back(static_cast<char>(0x80 | size));
  } else if (size <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(size >> 8));
    out.push_back(static_cast<char>(size & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(size >> shift));
  }
  const char key[4] = {static_cast<char>(mask_key >> 24), static_cast<char>(mask_key >> 16),
                       static_cast<char>(mask_key >> 8), static_cast<char>(mask_key)};
  out.insert(out.end(), key, key + 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
  }
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_WS_FRAME_HPP
