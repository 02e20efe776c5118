// wsreg/payload.hpp: an immutable message body shared by every recipient.
#ifndef WSREG_PAYLOAD_HPP
#define WSREG_PAYLOAD_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace wsreg {

/// The opcode of a WebSocket data frame (RFC 6455 section 5.2, section 5.6).
/// Only data opcodes are listed: control frames (close, ping, pong) are the
/// transport's business, never the registry's.
enum class Opcode : std::uint8_t {
  text = 0x1,    ///< UTF-8 text (RFC 6455 section 5.6).
  binary = 0x2,  ///< Arbitrary bytes.
};

/// An immutable message body plus its opcode, shared by reference.
///
/// Ownership: the bytes live in one heap block owned jointly by every copy of
/// the Payload. Copying a Payload copies a pointer (one atomic increment),
/// never the bytes, so a broadcast to N connections holds one buffer, not N.
/// The bytes never change after construction.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe (every member
/// is const), as for std::shared_ptr<const T>.
class Payload {
 public:
  /// An empty text payload. Allocates nothing. Not thread-safe to assign to
  /// while another thread reads the same object (as any value type).
  Payload() noexcept = default;

  /// Takes `bytes` (moved, not copied) as a payload with opcode `op`.
  /// Allocates one block for the shared string. Throws std::bad_alloc only.
  Payload(Opcode op, std::string bytes)
      : bytes_(std::make_shared<const std::string>(std::move(bytes))), opcode_(op) {}

  /// A text payload. The caller vouches that `bytes` is UTF-8 (RFC 6455
  /// section 8.1); wsreg does not validate outgoing text.
  static Payload text(std::string bytes) { return Payload(Opcode::text, std::move(bytes)); }

  /// A binary payload.
  static Payload binary(std::string bytes) { return Payload(Opcode::binary, std::move(bytes)); }

  /// The opcode the frame will carry. Thread-safe.
  Opcode opcode() const noexcept { return opcode_; }

  /// The bytes; the view stays valid while any copy of this Payload lives.
  /// Thread-safe.
  std::string_view data() const noexcept {
    return bytes_ ? std::string_view(*bytes_) : std::string_view();
  }

  /// Size of the body in bytes (not counting framing). Thread-safe.
  std::size_t size() const noexcept { return bytes_ ? bytes_->size() : 0; }

  /// Whether two payloads share one buffer: true for copies of one Payload.
  /// Thread-safe. Used by tests to prove a broadcast did not copy.
  bool shares_buffer_with(const Payload& other) const noexcept {
    return bytes_ != nullptr && bytes_ == other.bytes_;
  }

 private:
  std::shared_ptr<const std::string> bytes_;
  Opcode opcode_ = Opcode::text;
};

}  // namespace wsreg

#endif  // WSREG_PAYLOAD_HPP
