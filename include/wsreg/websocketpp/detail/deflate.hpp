// wsreg/websocketpp/detail/deflate.hpp: permessage-deflate (RFC 7692) for the
// websocketpp adapter: a payload compressed once for every connection, and a
// websocketpp extension type that forces server_no_context_takeover and
// bounds inflation by the connection's max_message_size.
//
// Why not websocketpp 0.8.2's own extensions::permessage_deflate::enabled:
// - it keeps server context takeover unless the client asks otherwise, so a
//   compressed frame is valid only on the connection that made it; a frame
//   compressed once for a broadcast needs server_no_context_takeover on
//   every connection (RFC 7692 section 7.1.1.1 lets the server say so in
//   its response even when the offer did not ask);
// - its decompress() appends without limit and the processor checks
//   max_message_size on the compressed wire bytes only, so a few KiB of
//   deflated zeros inflate to any size (a "zip bomb");
// - it answers an offer of server_max_window_bits=8 or client_max_window_bits=8
//   with 9 (zlib's raw deflate cannot use an 8-bit window), a value greater
//   than the offer's, which RFC 7692 sections 7.1.2.1 and 7.1.2.2 forbid;
// - it allocates a deflate stream (with memLevel 4 and a 15-bit window,
//   about 136 KiB) and an inflate stream plus two 8 KiB buffers per
//   connection at the handshake, used or not.
// PerMessageDeflate below has the interface websocketpp's hybi13 processor
// expects of `config::permessage_deflate_type` and fixes these; it is for
// server endpoints only.
#ifndef WSREG_WEBSOCKETPP_DETAIL_DEFLATE_HPP
#define WSREG_WEBSOCKETPP_DETAIL_DEFLATE_HPP

#include "wsreg/websocketpp/detail/cxx_check.hpp"  // first: websocketpp 0.8.2 is C++17 only

#include <zlib.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <websocketpp/http/constants.hpp>
// enabled.hpp for its error codes. It needs <sstream> and http/constants.hpp
// before it, and disabled.hpp must come first: parsed after enabled.hpp,
// its `error::disabled` finds permessage_deflate::error and fails.
#include <sstream>
#include <websocketpp/extensions/permessage_deflate/disabled.hpp>
#include <websocketpp/extensions/permessage_deflate/enabled.hpp>
#include <websocketpp/frame.hpp>
#include <websocketpp/processors/base.hpp>
#include <websocketpp/processors/hybi13.hpp>
#include <websocketpp/utf8_validator.hpp>

#include "wsreg/payload.hpp"
#include "wsreg/websocketpp/detail/prepared_frame.hpp"

namespace wsreg::wspp::detail {

/// The largest LZ77 window RFC 7692 allows (section 7.1.2: 8 to 15 bits);
/// also the one a frame compressed once is made with.
inline constexpr std::uint8_t deflate_max_window_bits = 15;

/// The empty stored block that ends a flushed DEFLATE stream; RFC 7692
/// section 7.2.1 strips it from a compressed message and section 7.2.2
/// appends it back before inflating.
inline constexpr std::array<unsigned char, 4> deflate_tail = {0x00, 0x00, 0xff, 0xff};

/// One raw DEFLATE compressor (zlib, no zlib header, RFC 1951) that
/// compresses each message on its own: deflateReset before every message,
/// so no message refers to an earlier one (RFC 7692 section 7.2.1 with
/// "no context takeover", section 8.1.1.1).
///
/// `window_bits` is the negotiated server_max_window_bits (8 to 15). zlib's
/// raw deflate cannot use an 8-bit window, so 8 compresses with a 9-bit
/// window and the Z_RLE strategy, whose matches are at distance 1: valid
/// for any window. zlib allocates about 2^(window_bits+2) + 2^(mem_level+9)
/// bytes at construction.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe.
class RawDeflater {
 public:
  /// Throws std::bad_alloc if zlib cannot allocate its state.
  RawDeflater(std::uint8_t window_bits, int level, int mem_level) {
    const bool rle = window_bits < 9;
    const int bits = rle ? 9 : window_bits;
    if (deflateInit2(&stream_, level, Z_DEFLATED, -bits, mem_level,
                     rle ? Z_RLE : Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::bad_alloc();
    }
  }
  RawDeflater(const RawDeflater&) = delete;
  RawDeflater& operator=(const RawDeflater&) = delete;
  ~RawDeflater() { deflateEnd(&stream_); }

  /// Appends `in`, compressed as one message and flushed with Z_SYNC_FLUSH,
  /// to `out`; the output ends with deflate_tail (which the caller strips,
  /// RFC 7692 section 7.2.1). Returns false (with `out` as it was) on a
  /// zlib error. Throws std::bad_alloc only. Not thread-safe.
  bool compress(std::string_view in, std::string& out) {
    const std::size_t start = out.size();
    if (deflateReset(&stream_) != Z_OK) return false;
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    stream_.avail_in = static_cast<uInt>(in.size());
    // deflateBound covers Z_FINISH; a sync flush adds at most its 5-byte
    // empty block and a few bits, and the loop grows the string if not.
    std::size_t room = deflateBound(&stream_, static_cast<uLong>(in.size())) + 16;
    for (;;) {
      const std::size_t used = out.size();
      out.resize(used + room);
      stream_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      stream_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&stream_, Z_SYNC_FLUSH);
      out.resize(used + (room - stream_.avail_out));
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        out.resize(start);
        return false;
      }
      if (stream_.avail_out != 0) break;  // everything flushed
      room = 4096;
    }
    return true;
  }

 private:
  z_stream stream_{};
};

/// Whether `bytes` ends with deflate_tail. Thread-safe.
inline bool ends_with_deflate_tail(std::string_view bytes) noexcept {
  if (bytes.size() < deflate_tail.size()) return false;
  const auto* end = reinterpret_cast<const unsigned char*>(bytes.data() + bytes.size());
  return end[-4] == 0x00 && end[-3] == 0x00 && end[-2] == 0xff && end[-1] == 0xff;
}

/// Settings of the compress-once path (ServerOptions gives them).
struct DeflateOnceOptions {
  /// Payloads smaller than this are sent uncompressed.
  std::size_t threshold_bytes = 256;
  /// zlib's level: 1 (fastest) to 9 (smallest), or Z_DEFAULT_COMPRESSION (6).
  int level = Z_DEFAULT_COMPRESSION;
};

/// The compressor compress-once uses on this thread, one per zlib level:
/// made on the thread's first compression at that level (about 256 KiB:
/// 15-bit window, memLevel 8) and kept for the thread's life.
/// Thread safety: each thread has its own. Throws std::bad_alloc only.
inline RawDeflater& thread_deflater(int level) {
  if (level < 0 || level > 9) level = 6;  // Z_DEFAULT_COMPRESSION
  thread_local std::array<std::unique_ptr<RawDeflater>, 10> deflaters;
  auto& slot = deflaters[static_cast<std::size_t>(level)];
  if (!slot) slot = std::make_unique<RawDeflater>(deflate_max_window_bits, level, 8);
  return *slot;
}

/// Compresses `payload` once as one unmasked, unfragmented server data
/// frame of a connection that negotiated permessage-deflate: FIN and RSV1
/// set (RFC 7692 section 6: "Per-Message Compressed" bit), the payload
/// compressed with raw DEFLATE and no context takeover, flushed, and its
/// trailing 00 00 ff ff removed (RFC 7692 section 7.2.1). The message is
/// marked prepared, so websocketpp's connection::send(message_ptr) queues
/// it as is, and one such frame is valid on every connection whose
/// negotiation includes server_no_context_takeover (which PerMessageDeflate
/// always answers) and whose server_max_window_bits is 15 or at least
/// log2(payload size): a back reference cannot reach before the message's
/// own first byte. The header is built as frame_once() builds it.
///
/// Returns null if the payload is smaller than `options.threshold_bytes`,
/// if compressing does not make it smaller, if it is text that is not
/// UTF-8 (RFC 6455 section 8.1: such a payload is not sent at all), or on
/// a zlib error. Throws std::bad_alloc only. Thread-safe: uses this
/// thread's compressor (thread_deflater()).
template <class Message>
std::shared_ptr<Message> deflate_once(const Payload& payload, const DeflateOnceOptions& options) {
  const auto bytes = payload.data();
  if (bytes.size() < options.threshold_bytes || bytes.empty()) return nullptr;
  if (!sendable_payload(payload)) return nullptr;
  std::string compressed;
  if (!thread_deflater(options.level).compress(bytes, compressed)) return nullptr;
  if (!ends_with_deflate_tail(compressed)) return nullptr;  // zlib always ends a sync flush so
  compressed.resize(compressed.size() - deflate_tail.size());
  if (compressed.size() >= bytes.size()) return nullptr;
  return prepared_frame<Message>(payload.opcode(), std::move(compressed), /*compressed=*/true);
}

/// A value made once, on first use, by whichever thread asks first; the
/// same double-checked pattern as Payload::encoded (not std::call_once,
/// for the reason given there). A make() that throws leaves it unmade.
///
/// Thread safety: get() is thread-safe: concurrent first calls run make()
/// once and the others wait for it; afterwards one acquire load, no lock.
template <class T>
class MadeOnce {
 public:
  /// The value, made by `make()` (returning std::shared_ptr<T>, possibly
  /// null, which is kept too) on the first call.
  template <class Make>
  std::shared_ptr<T> get(Make&& make) const {
    if (!ready_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!ready_.load(std::memory_order_relaxed)) {
        value_ = make();
        ready_.store(true, std::memory_order_release);
      }
    }
    return value_;
  }

 private:
  // Guards the one write of value_, before ready_ is set (release).
  mutable std::mutex mutex_;
  mutable std::atomic<bool> ready_{false};
  mutable std::shared_ptr<T> value_;
};

/// The encoding a deflate-enabled Server caches in each Payload
/// (Payload::encoded caches one encoding per payload, so both frames live
/// in this one object): the plain frame (frame_once()) for connections
/// without the extension, and the frame compressed once (deflate_once())
/// for those with it, each made on first need only. A broadcast that
/// reaches no deflate connection never compresses; one that reaches only
/// deflate connections never copies the plain bytes. A Server without
/// deflate keeps caching its plain frame directly (tag FramedMessage), so
/// it pays nothing for this.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe (both
/// members are MadeOnce).
template <class Message>
class DeflateFrames {
 public:
  /// The plain frame, made by `make()` on first call. Thread-safe.
  template <class Make>
  std::shared_ptr<Message> plain(Make&& make) const {
    return plain_.get(std::forward<Make>(make));
  }

  /// The compressed frame of `payload` (deflate_once(payload, options) on
  /// first call; null if compression does not pay). Every call on one
  /// object must pass the same payload and options. Thread-safe.
  std::shared_ptr<Message> compressed(const Payload& payload,
                                      const DeflateOnceOptions& options) const {
    return compressed_.get([&] { return deflate_once<Message>(payload, options); });
  }

 private:
  MadeOnce<Message> plain_;
  MadeOnce<Message> compressed_;
};

/// The server_max_window_bits a connection negotiated, read from the
/// Sec-WebSocket-Extensions value of its handshake response (which
/// PerMessageDeflate::negotiate() wrote): 0 if permessage-deflate was not
/// negotiated, 15 if the response names no server_max_window_bits.
/// Thread-safe.
inline std::uint8_t negotiated_window_bits(std::string_view response_extensions) noexcept {
  constexpr std::string_view name = "permessage-deflate";
  if (response_extensions.substr(0, name.size()) != name) return 0;
  constexpr std::string_view key = "server_max_window_bits=";
  const auto at = response_extensions.find(key);
  if (at == std::string_view::npos) return deflate_max_window_bits;
  const auto digits = response_extensions.substr(at + key.size());
  unsigned bits = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), bits);
  return bits >= 8 && bits <= deflate_max_window_bits ? static_cast<std::uint8_t>(bits)
                                                      : deflate_max_window_bits;
}

/// Whether a frame made by deflate_once() for a payload of `payload_bytes`
/// is valid on a connection that negotiated `window_bits`
/// (negotiated_window_bits()): with no context takeover a back reference
/// reaches at most the message's own start, so a window of 2^window_bits
/// bytes holds any message no longer than that. Thread-safe.
inline bool shared_frame_fits(std::uint8_t window_bits, std::size_t payload_bytes) noexcept {
  return window_bits >= deflate_max_window_bits ||
         (window_bits != 0 && payload_bytes <= (std::size_t{1} << window_bits));
}

/// A websocketpp 0.8.2 permessage-deflate extension (RFC 7692) for server
/// endpoints, the `permessage_deflate_type` of wsreg's deflate configs. It
/// has the members websocketpp's hybi13 processor calls (is_implemented,
/// is_enabled, negotiate, init, generate_offer, validate_offer, compress,
/// decompress) and differs from websocketpp's `enabled<>` in what the file
/// comment above lists:
///
/// - Negotiation (RFC 7692 section 5, 7.1): accepts the first offer whose
///   parameters it understands (server_no_context_takeover,
///   client_no_context_takeover, server_max_window_bits with a value 8 to
///   15, client_max_window_bits with no value or 8 to 15; anything else
///   declines that offer and the next is tried). Its response always has
///   server_no_context_takeover; client_no_context_takeover if offered;
///   server_max_window_bits=N if the offer had it (and then this
///   connection compresses with at most that window). It never limits the
///   client's window: the inflater uses 15 bits, which inflates any smaller
///   window.
/// - Compression (RFC 7692 section 7.2.1), for messages websocketpp frames
///   itself (connection::send of an unprepared message marked compressed):
///   raw DEFLATE with no context takeover, the compressor made on first use
///   (so a connection served only by compress-once frames never has one).
/// - Inflation (section 7.2.2): the inflater is made on the first
///   compressed message. decompress() stops and reports
///   processor::error::message_too_big (close code 1009) as soon as the
///   message's inflated size would pass the limit given by the processor
///   (max_message_size, see WSREG_WSPP_BOUNDED_INFLATE), having inflated
///   at most that limit plus one buffer (4 KiB); corrupt data reports
///   processor::error::invalid_payload (1007).
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe; the
/// processor of one connection owns it and calls it on that connection's
/// strand (and, for compress, under its write lock).
template <class config>
class PerMessageDeflate {
 public:
  using err_str_pair = std::pair<std::error_code, std::string>;

  PerMessageDeflate() = default;
  PerMessageDeflate(const PerMessageDeflate&) = delete;
  PerMessageDeflate& operator=(const PerMessageDeflate&) = delete;
  ~PerMessageDeflate() {
    if (inflating_) inflateEnd(&inflate_);
  }

  /// True: websocketpp negotiates this extension. Thread-safe.
  bool is_implemented() const noexcept { return true; }

  /// Whether negotiate() accepted an offer. Not thread-safe (strand).
  bool is_enabled() const noexcept { return enabled_; }

  /// The server_max_window_bits this connection compresses with (15 unless
  /// the accepted offer asked for less). Not thread-safe (strand).
  std::uint8_t server_window_bits() const noexcept { return server_window_bits_; }

  /// Client side only; wsreg's configs are servers: offers nothing.
  std::string generate_offer() const { return std::string(); }

  /// Client side only; never called for a server.
  std::error_code validate_offer(const ::websocketpp::http::attribute_list&) {
    return std::error_code();
  }

  /// Negotiates one offer (RFC 7692 section 7.1): on success `first` is
  /// empty, `second` the response's extension (see the class comment) and
  /// the extension is enabled; on an unsupported or invalid parameter
  /// `first` is an error and nothing changes (websocketpp then tries the
  /// client's next offer). Not thread-safe (strand). Throws std::bad_alloc.
  err_str_pair negotiate(const ::websocketpp::http::attribute_list& offer) {
    namespace pd = ::websocketpp::extensions::permessage_deflate::error;
    bool client_no_context_takeover = false;
    std::uint8_t server_bits = 0;  // 0: not in the offer
    for (const auto& [name, value] : offer) {
      if (name == "server_no_context_takeover" || name == "client_no_context_takeover") {
        if (!value.empty()) return {pd::make_error_code(pd::invalid_attribute_value), {}};
        if (name == "client_no_context_takeover") client_no_context_takeover = true;
      } else if (name == "server_max_window_bits") {
        server_bits = parse_window_bits(value);
        if (server_bits == 0) return {pd::make_error_code(pd::invalid_attribute_value), {}};
      } else if (name == "client_max_window_bits") {
        if (!value.empty() && parse_window_bits(value) == 0) {
          return {pd::make_error_code(pd::invalid_attribute_value), {}};
        }
      } else {
        return {pd::make_error_code(pd::invalid_attributes), {}};
      }
    }
    std::string response = "permessage-deflate; server_no_context_takeover";
    if (client_no_context_takeover) response += "; client_no_context_takeover";
    if (server_bits != 0) {
      response += "; server_max_window_bits=";
      response += std::to_string(server_bits);
      server_window_bits_ = server_bits;
    }
    enabled_ = true;
    return {std::error_code(), std::move(response)};
  }

  /// Called by the processor once an offer is accepted. A server allocates
  /// nothing here (compressor and inflater are made on first use); a
  /// client endpoint is refused (websocketpp then continues without the
  /// extension). Not thread-safe (strand).
  std::error_code init(bool is_server) {
    namespace pd = ::websocketpp::extensions::permessage_deflate::error;
    if (!is_server) {
      enabled_ = false;
      return pd::make_error_code(pd::invalid_mode);
    }
    return std::error_code();
  }

  /// Appends `in` compressed as one message, ending with deflate_tail
  /// (which the processor strips), to `out`. On failure `out` is left as it
  /// was and the processor refuses the message. Not thread-safe (called
  /// under the connection's write lock).
  std::error_code compress(const std::string& in, std::string& out) {
    namespace pd = ::websocketpp::extensions::permessage_deflate::error;
    try {
      if (!deflater_) {
        deflater_ = std::make_unique<RawDeflater>(server_window_bits_, level, mem_level);
      }
      if (deflater_->compress(in, out)) return std::error_code();
    } catch (const std::bad_alloc&) {
    }
    return pd::make_error_code(pd::zlib_error);
  }

  /// Inflates `len` bytes of a compressed message, appending to `out` (the
  /// message so far), with `limit` bytes of inflated message allowed in
  /// all; the limit is kept for the next call without one (the processor's
  /// trailer, see decompress(buf, len, out)). Errors: message_too_big once
  /// out would exceed `limit` (out is then cut to at most limit + 4 KiB),
  /// invalid_payload for corrupt data (both processor::error). Not
  /// thread-safe (strand).
  std::error_code decompress(const std::uint8_t* buf, std::size_t len, std::string& out,
                             std::size_t limit) {
    limit_ = limit;
    return decompress(buf, len, out);
  }

  /// As above with the last limit given (none before the first: unlimited).
  std::error_code decompress(const std::uint8_t* buf, std::size_t len, std::string& out) {
    namespace perr = ::websocketpp::processor::error;
    if (!inflating_) {
      if (inflateInit2(&inflate_, -static_cast<int>(deflate_max_window_bits)) != Z_OK) {
        return perr::make_error_code(perr::general);
      }
      inflating_ = true;
    }
    inflate_.next_in = const_cast<Bytef*>(buf);
    inflate_.avail_in = static_cast<uInt>(len);
    std::array<unsigned char, 4096> chunk;
    for (;;) {
      inflate_.next_out = chunk.data();
      inflate_.avail_out = static_cast<uInt>(chunk.size());
      const int rc = inflate(&inflate_, Z_SYNC_FLUSH);
      const std::size_t produced = chunk.size() - inflate_.avail_out;
      if (rc == Z_STREAM_END) {
        // A final block (BFINAL=1): allowed; what follows starts anew.
        inflateReset(&inflate_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return perr::make_error_code(perr::invalid_payload);
      }
      inflated_bytes_total().fetch_add(produced, std::memory_order_relaxed);
      if (produced > limit_ || out.size() > limit_ - produced) {
        return perr::make_error_code(perr::message_too_big);
      }
      out.append(reinterpret_cast<const char*>(chunk.data()), produced);
      // A full chunk may have more behind it; a final block may have input
      // behind it. Otherwise zlib has given all that this input holds.
      const bool more = inflate_.avail_out == 0 || (rc == Z_STREAM_END && inflate_.avail_in != 0);
      if (!more) break;
    }
    return std::error_code();
  }

  /// Bytes ever inflated by the connections of every endpoint on `config`
  /// in this process: a diagnostic (tests prove with it that a compressed
  /// message past the limit is not inflated further). Thread-safe (a
  /// relaxed atomic, one addition per inflate step).
  static std::atomic<std::uint64_t>& inflated_bytes_total() noexcept {
    static std::atomic<std::uint64_t> total{0};
    return total;
  }

  /// zlib level of websocketpp's per-connection compression (compress()).
  static constexpr int level = Z_DEFAULT_COMPRESSION;
  /// zlib memLevel of the per-connection compressor: 4, as websocketpp's
  /// own extension, since one exists per connection that needs it: about
  /// 2^(window_bits+2) + 8 KiB allocated (136 KiB at 15 bits), and 4 KiB of
  /// hash table cleared per message. Compress-once uses 8 (one per thread).
  static constexpr int mem_level = 4;

 private:
  // "8" to "15", no sign, no leading zero (RFC 7692 section 7.1.2.1);
  // 0 for anything else.
  static std::uint8_t parse_window_bits(const std::string& value) noexcept {
    if (value.empty() || value.size() > 2 || value[0] == '0') return 0;
    unsigned bits = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bits);
    if (ec != std::errc() || end != value.data() + value.size()) return 0;
    return bits >= 8 && bits <= deflate_max_window_bits ? static_cast<std::uint8_t>(bits) : 0;
  }

  bool enabled_ = false;
  std::uint8_t server_window_bits_ = deflate_max_window_bits;
  std::unique_ptr<RawDeflater> deflater_;
  bool inflating_ = false;
  std::size_t limit_ = std::numeric_limits<std::size_t>::max();
  z_stream inflate_{};
};

}  // namespace wsreg::wspp::detail

/// Makes websocketpp's hybi13 processor for `cfg` (a config whose
/// permessage_deflate_type is wsreg::wspp::detail::PerMessageDeflate<cfg>)
/// inflate each compressed message with the connection's max_message_size
/// as the limit on its inflated size (see PerMessageDeflate::decompress):
/// an explicit specialization of hybi13<cfg>::process_payload_bytes, which
/// is websocketpp 0.8.2's own but for that one call. Use once per config,
/// at global scope, before websocketpp's connection code is instantiated
/// for it. hybi07 and hybi08 derive from hybi13 and are covered too.
///
/// websocketpp checks max_message_size itself only on the wire bytes (a
/// first frame longer than the limit, or one whose wire size plus the
/// message so far would pass it); those checks stay.
#define WSREG_WSPP_BOUNDED_INFLATE(cfg)                                                        \
  template <>                                                                                  \
  inline std::size_t websocketpp::processor::hybi13<cfg>::process_payload_bytes(              \
      std::uint8_t* buf, std::size_t len, lib::error_code& ec) {                               \
    if (frame::get_masked(m_basic_header)) {                                                   \
      m_current_msg->prepared_key = frame::byte_mask_circ(buf, len, m_current_msg->prepared_key); \
    }                                                                                          \
    std::string& out = m_current_msg->msg_ptr->get_raw_payload();                              \
    const std::size_t offset = out.size();                                                     \
    if (m_permessage_deflate.is_enabled() && m_current_msg->msg_ptr->get_compressed()) {       \
      ec = m_permessage_deflate.decompress(buf, len, out, base::m_max_message_size);           \
      if (ec) return 0;                                                                        \
    } else {                                                                                   \
      out.append(reinterpret_cast<char*>(buf), len);                                           \
    }                                                                                          \
    if (m_current_msg->msg_ptr->get_opcode() == frame::opcode::TEXT &&                         \
        !m_current_msg->validator.decode(out.begin() + offset, out.end())) {                   \
      ec = make_error_code(error::invalid_utf8);                                               \
      return 0;                                                                                \
    }                                                                                          \
    m_bytes_needed -= len;                                                                     \
    return len;                                                                                \
  }

#endif  // WSREG_WEBSOCKETPP_DETAIL_DEFLATE_HPP
