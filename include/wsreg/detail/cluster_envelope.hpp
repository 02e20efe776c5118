// wsreg/detail/cluster_envelope.hpp: the messages cluster nodes exchange over a backplane.
#ifndef WSREG_DETAIL_CLUSTER_ENVELOPE_HPP
#define WSREG_DETAIL_CLUSTER_ENVELOPE_HPP

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsreg::detail {

// Every message is one header line of space-separated fields, a '\n', then
// a body of raw bytes (docs/cluster.md, "Messages"):
//   b <origin> <instance> <seq> <except> <opcode>\n<payload>              broadcast
//   p <origin> <instance> <seq> <except> <opcode> <topic bytes>\n<topic><payload>
//   s <origin> <id> <opcode>\n<payload>                                    send to id
//   h <origin> <instance> <connections>\n                                  heartbeat
//   x <origin> <instance>\n                                                a node leaves
//   q <origin> <request>\n<topic>                                          presence query
//   r <origin> <request>\n<id> <id> ...                                    its reply
// Numbers are decimal. The header is text so that a message can be read in
// redis-cli MONITOR or nats sub; the payload is never re-encoded.

/// Reads the header fields of an envelope one by one.
class EnvelopeReader {
 public:
  explicit EnvelopeReader(std::string_view message) noexcept {
    const std::size_t eol = message.find('\n');
    if (eol == std::string_view::npos) {
      ok_ = false;
      return;
    }
    header_ = message.substr(0, eol);
    body_ = message.substr(eol + 1);
  }

  /// The kind letter (b, p, s, h, x, q, r), or '\0' for a malformed message.
  char kind() noexcept {
    std::string_view field = next();
    return ok_ && field.size() == 1 ? field[0] : '\0';
  }

  /// The next header field as an unsigned number; sets !ok() if it is not one.
  template <class Unsigned>
  Unsigned number() noexcept {
    std::string_view field = next();
    Unsigned value{};
    const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (error != std::errc() || end != field.data() + field.size() || field.empty()) ok_ = false;
    return value;
  }

  /// Everything after the header line.
  std::string_view body() const noexcept { return body_; }

  /// True while every field read so far was well-formed.
  bool ok() const noexcept { return ok_; }

 private:
  std::string_view next() noexcept {
    if (!ok_) return {};
    if (pos_ > header_.size()) {
      ok_ = false;
      return {};
    }
    std::size_t end = header_.find(' ', pos_);
    if (end == std::string_view::npos) end = header_.size();
    std::string_view field = header_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return field;
  }

  std::string_view header_;
  std::string_view body_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// Appends the decimal form of `value` and a space.
inline void append_field(std::string& out, std::uint64_t value) {
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
  (void)error;  // 24 digits hold any 64-bit value
  out.append(digits, end);
  out += ' ';
}

/// Ends the header line that the append_field calls began (dropping their
/// last space).
inline void end_header(std::string& out) {
  if (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
}

/// A topic as the last part of a channel name that Redis and NATS both take:
/// A-Z a-z 0-9 _ - stay, every other byte becomes %XX (so '.', '*', '>' and
/// spaces, which NATS subjects reserve, never appear), and the empty topic
/// is "%" (which no other topic gives).
inline std::string encode_topic(std::string_view topic) {
  if (topic.empty()) return "%";
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(topic.size());
  for (const char c : topic) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
        (byte >= '0' && byte <= '9') || byte == '_' || byte == '-') {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
    }
  }
  return out;
}

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_CLUSTER_ENVELOPE_HPP
