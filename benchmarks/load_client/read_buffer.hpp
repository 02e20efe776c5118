// load_client/read_buffer.hpp: a connection's reusable receive buffer.
#ifndef WSREG_LOAD_CLIENT_READ_BUFFER_HPP
#define WSREG_LOAD_CLIENT_READ_BUFFER_HPP

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

namespace load_client {

/// Bytes received but not parsed yet, with room for the next recv().
///
/// Layout: [0, begin_) parsed, [begin_, end_) unread, [end_, size) free.
/// prepare() drops parsed bytes by moving the unread tail to the front only
/// when the free space runs short, and grows the buffer only when a frame
/// larger than the buffer is announced; it never shrinks. So in steady
/// state a frame costs no allocation and, usually, no copy.
///
/// Thread safety: Not thread-safe: one epoll thread.
class ReadBuffer {
 public:
  /// Allocates `initial_bytes` (at start of a connection) and empties it.
  void reset(std::size_t initial_bytes) {
    bytes_.resize(initial_bytes);
    begin_ = end_ = 0;
  }

  /// Makes at least `min_free_bytes` of free space, and enough room that a
  /// message of `whole_bytes` (0 if unknown) fits from the start of the
  /// unread bytes. May move the unread bytes, invalidating views of them.
  void prepare(std::size_t whole_bytes, std::size_t min_free_bytes) {
    if (begin_ == end_) begin_ = end_ = 0;
    const std::size_t unread = end_ - begin_;
    const std::size_t want = std::max(whole_bytes, unread) + min_free_bytes;
    if (bytes_.size() - begin_ >= want) return;
    if (begin_ > 0) {
      std::memmove(bytes_.data(), bytes_.data() + begin_, unread);
      begin_ = 0;
      end_ = unread;
    }
    if (bytes_.size() < want) bytes_.resize(std::max(want, bytes_.size() * 2));
  }

  /// Where the next recv() writes, and how much it may write.
  char* free_data() noexcept { return bytes_.data() + end_; }
  std::size_t free_bytes() const noexcept { return bytes_.size() - end_; }
  /// Marks `n` bytes after free_data() as received.
  void commit(std::size_t n) noexcept { end_ += n; }

  /// The unread bytes; valid until the next prepare().
  std::string_view unread() const noexcept {
    return std::string_view(bytes_.data() + begin_, end_ - begin_);
  }
  /// Marks the first `n` unread bytes as parsed.
  void consume(std::size_t n) noexcept { begin_ += n; }

 private:
  std::vector<char> bytes_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_READ_BUFFER_HPP
