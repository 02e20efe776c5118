// wsreg/payload.hpp: an immutable message body shared by every recipient.
#ifndef WSREG_PAYLOAD_HPP
#define WSREG_PAYLOAD_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace wsreg {

namespace detail {
// One address per encoding Tag: the key Payload::encoded caches under.
template <class Tag>
inline constexpr char encoding_key = 0;
}  // namespace detail

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
/// The bytes never change after construction. The same block can also hold
/// one transport encoding of the bytes (see encoded()), made once and shared
/// by every recipient: a transport frames a broadcast once, not N times.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe (every member
/// is const; encoded() synchronises its one-time construction), as for
/// std::shared_ptr<const T>.
class Payload {
 public:
  /// An empty text payload. Allocates nothing. Not thread-safe to assign to
  /// while another thread reads the same object (as any value type).
  Payload() noexcept = default;

  /// Takes `bytes` (moved, not copied) as a payload with opcode `op`.
  /// Allocates one block. Throws std::bad_alloc only.
  Payload(Opcode op, std::string bytes) : block_(std::make_shared<Block>(op, std::move(bytes))) {}

  /// A text payload. The caller vouches that `bytes` is UTF-8 (RFC 6455
  /// section 8.1). The registry does not check; the websocketpp adapter
  /// checks once per payload and drops text that is not UTF-8 (counted in
  /// RegistryStats::messages_dropped), as websocketpp's own send() does.
  static Payload text(std::string bytes) { return Payload(Opcode::text, std::move(bytes)); }

  /// A binary payload.
  static Payload binary(std::string bytes) { return Payload(Opcode::binary, std::move(bytes)); }

  /// The opcode the frame will carry. Thread-safe.
  Opcode opcode() const noexcept { return block_ ? block_->opcode : Opcode::text; }

  /// The bytes; the view stays valid while any copy of this Payload lives.
  /// Thread-safe.
  std::string_view data() const noexcept {
    return block_ ? std::string_view(block_->bytes) : std::string_view();
  }

  /// Size of the body in bytes (not counting framing). Thread-safe.
  std::size_t size() const noexcept { return block_ ? block_->bytes.size() : 0; }

  /// Whether two payloads share one buffer: true for copies of one Payload.
  /// Thread-safe. Used by tests to prove a broadcast did not copy.
  bool shares_buffer_with(const Payload& other) const noexcept {
    return block_ != nullptr && block_ == other.block_;
  }

  /// A transport's encoding of this payload (for the websocketpp adapter: the
  /// framed message), made by `make()` on the first call and returned to
  /// every later call on any copy of this Payload, so N recipients share one
  /// encoding. `Tag` names the encoding: one Payload caches one encoding, the
  /// first Tag asked for; a call with another Tag (or on an empty Payload)
  /// calls make() and caches nothing. `make` returns a std::shared_ptr<T>
  /// and runs at most once per Payload for the cached Tag; callers must treat
  /// the result as immutable.
  ///
  /// Thread-safe: concurrent first calls run make() once (under a mutex in
  /// the shared block); the others wait for it. Afterwards O(1): one acquire
  /// load, no lock. If make() throws, the exception propagates and a later
  /// call tries again. (Not std::call_once: libstdc++ builds it on
  /// pthread_once, and an exception from the function left the flag stuck,
  /// and the next call hanging, under ThreadSanitizer here; GCC bug 66146.)
  template <class Tag, class Make>
  auto encoded(Make&& make) const -> decltype(make()) {
    using Ptr = decltype(make());
    if (!block_) return make();
    const void* const key = &detail::encoding_key<Tag>;
    if (!block_->encoded_ready.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(block_->encoded_mutex);
      if (!block_->encoded_ready.load(std::memory_order_relaxed)) {
        block_->encoded = make();  // if it throws, nothing is set
        block_->encoded_tag = key;
        block_->encoded_ready.store(true, std::memory_order_release);
      }
    }
    if (block_->encoded_tag != key) return make();
    return std::static_pointer_cast<typename Ptr::element_type>(block_->encoded);
  }

 private:
  // The shared state of every copy of one Payload.
  struct Block {
    Block(Opcode op, std::string b) : bytes(std::move(b)), opcode(op) {}
    const std::string bytes;
    const Opcode opcode;
    // encoded and encoded_tag are written once, under encoded_mutex, before
    // encoded_ready is set (release); read only after it was seen set (acquire).
    mutable std::mutex encoded_mutex;
    mutable std::atomic<bool> encoded_ready{false};
    mutable std::shared_ptr<void> encoded;
    mutable const void* encoded_tag = nullptr;
  };

  std::shared_ptr<const Block> block_;
};

}  // namespace wsreg

#endif  // WSREG_PAYLOAD_HPP
