// load_client/inflater.hpp: the client side of permessage-deflate (RFC 7692):
// inflating one compressed message.
#ifndef WSREG_LOAD_CLIENT_INFLATER_HPP
#define WSREG_LOAD_CLIENT_INFLATER_HPP

#include <zlib.h>

#include <cstddef>
#include <string_view>
#include <vector>

namespace load_client {

/// One raw DEFLATE inflater (RFC 1951, zlib without its header) for the
/// messages of one connection: appends the 00 00 ff ff tail each
/// compressed message lost (RFC 7692 section 7.2.2) and inflates with a
/// 15-bit window, which reads any smaller window too. Context is kept
/// between messages (the server may use context takeover) unless reset()
/// is called before each (server_no_context_takeover). zlib's state is
/// made on the first message.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe.
class Inflater {
 public:
  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (ready_) inflateEnd(&stream_);
  }

  /// Forgets the previous messages (for server_no_context_takeover).
  void reset() noexcept {
    if (ready_) inflateReset(&stream_);
  }

  /// Inflates one message's payload into `out` (replacing its content),
  /// refusing to produce more than `limit` bytes. Returns false on corrupt
  /// data or past the limit.
  bool inflate_message(std::string_view compressed, std::vector<char>& out, std::size_t limit) {
    if (!ready_) {
      if (inflateInit2(&stream_, -15) != Z_OK) return false;
      ready_ = true;
    }
    out.clear();
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    return run(reinterpret_cast<const unsigned char*>(compressed.data()), compressed.size(), out,
               limit) &&
           run(tail, sizeof tail, out, limit);
  }

 private:
  bool run(const unsigned char* data, std::size_t size, std::vector<char>& out, std::size_t limit) {
    stream_.next_in = const_cast<Bytef*>(data);
    stream_.avail_in = static_cast<uInt>(size);
    for (;;) {
      const std::size_t used = out.size();
      if (out.capacity() - used < 1024) out.reserve(used + 1024 + used / 2);
      out.resize(out.capacity());
      stream_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      stream_.avail_out = static_cast<uInt>(out.size() - used);
      const int rc = inflate(&stream_, Z_SYNC_FLUSH);
      out.resize(out.size() - stream_.avail_out);
      if (rc == Z_STREAM_END) {
        inflateReset(&stream_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return false;
      }
      if (out.size() > limit) return false;
      if (stream_.avail_out != 0 && (stream_.avail_in == 0 || rc != Z_STREAM_END)) return true;
    }
  }

  bool ready_ = false;
  z_stream stream_{};
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_INFLATER_HPP
