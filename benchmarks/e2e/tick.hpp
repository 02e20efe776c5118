// benchmarks/e2e/tick.hpp: the tick every end-to-end benchmark server sends.
#ifndef WSREG_BENCHMARKS_E2E_TICK_HPP
#define WSREG_BENCHMARKS_E2E_TICK_HPP

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace e2e {

/// CLOCK_REALTIME in nanoseconds since the epoch: comparable across
/// processes on one host, so the load client can compute latency.
///
/// Thread safety: safe from any thread.
inline std::int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Formats the tick `{"seq":N,"sent_ns":T}` (T = realtime_ns() now) into a
/// buffer of its own, without allocating; the same bytes in every variant,
/// ws_server.js included.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe.
class TickText {
 public:
  /// Formats tick `seq` stamped now; the view is valid until the next call.
  std::string_view format(std::uint64_t seq) noexcept {
    const int n = std::snprintf(buffer_, sizeof buffer_, "{\"seq\":%llu,\"sent_ns\":%lld}",
                                static_cast<unsigned long long>(seq),
                                static_cast<long long>(realtime_ns()));
    return std::string_view(buffer_, n > 0 ? static_cast<std::size_t>(n) : 0);
  }

 private:
  char buffer_[64];  // 2 x 20 digits + 20 bytes of keys and punctuation fit
};

/// Formats a tick of about `bytes` bytes of JSON for the compression
/// benchmark: `{"seq":N,"sent_ns":T,"quotes":[{"s":"SYM","b":B,"a":A,"v":V},
/// ...]}`, quotes added until the size is reached (so the last quote may
/// make it up to ~45 bytes longer). The quotes' symbols repeat and their
/// prices and volumes change with `seq`, as a market feed's do: DEFLATE
/// shrinks it about as much as real JSON feeds (3-4x at 1 KiB), unlike
/// padding of one repeated character. The load client reads seq and
/// sent_ns as from TickText's ticks.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe.
class JsonTick {
 public:
  explicit JsonTick(std::size_t bytes) : bytes_(bytes) { text_.reserve(bytes + 128); }

  /// Formats tick `seq` stamped now; the view is valid until the next call.
  std::string_view format(std::uint64_t seq) {
    static constexpr const char* symbols[] = {"ACME", "GLOBX", "INITEC", "UMBRL", "STARK",
                                              "WAYNE", "OSCRP", "CYBDN", "TYRLL", "SOYLN"};
    char piece[96];
    int n = std::snprintf(piece, sizeof piece, "{\"seq\":%llu,\"sent_ns\":%lld,\"quotes\":[",
                          static_cast<unsigned long long>(seq),
                          static_cast<long long>(realtime_ns()));
    text_.assign(piece, n > 0 ? static_cast<std::size_t>(n) : 0);
    std::uint64_t state = seq * 0x9E3779B97F4A7C15ull + 1;
    for (unsigned i = 0; text_.size() + 2 < bytes_; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      const unsigned price = 10000 + static_cast<unsigned>(state % 90000);  // cents
      n = std::snprintf(piece, sizeof piece, "%s{\"s\":\"%s\",\"b\":%u.%02u,\"a\":%u.%02u,\"v\":%u}",
                        i == 0 ? "" : ",", symbols[i % 10], price / 100, price % 100,
                        (price + 3) / 100, (price + 3) % 100,
                        static_cast<unsigned>((state >> 20) % 5000) * 10);
      if (n > 0) text_.append(piece, static_cast<std::size_t>(n));
    }
    text_ += "]}";
    return text_;
  }

 private:
  std::size_t bytes_;
  std::string text_;
};

}  // namespace e2e

#endif  // WSREG_BENCHMARKS_E2E_TICK_HPP
