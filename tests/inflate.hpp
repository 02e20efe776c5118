// tests/inflate.hpp: a test's own permessage-deflate receiver and sender
// (RFC 7692 section 7.2), straight on zlib, to check the server's frames
// independently of the code under test.
#ifndef WSREG_TESTS_INFLATE_HPP
#define WSREG_TESTS_INFLATE_HPP

#include <zlib.h>

#include <string>

namespace wsreg_test {

/// Inflates one message as a receiver does (RFC 7692 section 7.2.2): a
/// fresh raw inflater with `window_bits` (so a back reference farther than
/// the window fails), the 00 00 ff ff tail appended. Returns false on a
/// zlib error.
inline bool inflate_message(std::string compressed, std::string& out, int window_bits = 15) {
  compressed.append("\x00\x00\xff\xff", 4);
  z_stream stream{};
  if (inflateInit2(&stream, -window_bits) != Z_OK) return false;
  stream.next_in = reinterpret_cast<Bytef*>(compressed.data());
  stream.avail_in = static_cast<uInt>(compressed.size());
  unsigned char chunk[4096];
  int rc = Z_OK;
  do {
    stream.next_out = chunk;
    stream.avail_out = sizeof(chunk);
    rc = inflate(&stream, Z_SYNC_FLUSH);
    out.append(reinterpret_cast<char*>(chunk), sizeof(chunk) - stream.avail_out);
  } while (rc == Z_OK && (stream.avail_out == 0 || stream.avail_in != 0));
  inflateEnd(&stream);
  return rc == Z_OK || rc == Z_BUF_ERROR;
}

/// Compresses `bytes` as one message as a sender does (RFC 7692 section
/// 7.2.1): raw DEFLATE, flushed, the 00 00 ff ff tail removed. Empty on a
/// zlib error.
inline std::string deflate_message(const std::string& bytes, int level = 9) {
  z_stream stream{};
  if (deflateInit2(&stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&stream, static_cast<uLong>(bytes.size())) + 16, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_SYNC_FLUSH);
  out.resize(out.size() - stream.avail_out);
  deflateEnd(&stream);
  if (rc != Z_OK || out.size() < 4) return {};
  out.resize(out.size() - 4);
  return out;
}

}  // namespace wsreg_test

#endif  // WSREG_TESTS_INFLATE_HPP
