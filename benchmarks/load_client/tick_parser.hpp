// load_client/tick_parser.hpp: reads seq and sent_ns out of a tick payload.
#ifndef WSREG_LOAD_CLIENT_TICK_PARSER_HPP
#define WSREG_LOAD_CLIENT_TICK_PARSER_HPP

#include <charconv>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace load_client {

/// One tick as the broadcast server sends it: `{"seq":N,"sent_ns":T}`.
///
/// Thread safety: a plain value.
struct Tick {
  /// Tick number; the server counts from 0, one per tick, for all connections alike.
  std::uint64_t seq = 0;
  /// CLOCK_REALTIME at send time, nanoseconds since the epoch.
  std::int64_t sent_ns = 0;
};

namespace detail {

/// Parses the integer following `"key":` in `text` (spaces and one opening
/// quote allowed before it, so `"sent_ns":"123"` parses too).
template <class Integer>
bool find_integer(std::string_view text, std::string_view key, Integer& out) noexcept {
  const std::size_t at = text.find(key);
  if (at == std::string_view::npos) return false;
  const char* p = text.data() + at + key.size();
  const char* end = text.data() + text.size();
  while (p != end && *p == ' ') ++p;
  if (p != end && *p == '"') ++p;
  const auto result = std::from_chars(p, end, out);
  return result.ec == std::errc() && result.ptr != p;
}

}  // namespace detail

/// Finds `"seq":` and `"sent_ns":` in a text frame and parses both with
/// std::from_chars, in any key order, without allocating. Returns false
/// unless both are present (then the frame is not a tick).
///
/// Thread safety: a pure function; safe from any thread.
inline bool parse_tick(std::string_view text, Tick& out) noexcept {
  return detail::find_integer(text, "\"seq\":", out.seq) &&
         detail::find_integer(text, "\"sent_ns\":", out.sent_ns);
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_TICK_PARSER_HPP
