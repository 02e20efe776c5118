// benchmarks/e2e/tick.hpp: the tick every end-to-end benchmark server sends.
#ifndef WSREG_BENCHMARKS_E2E_TICK_HPP
#define WSREG_BENCHMARKS_E2E_TICK_HPP

#include <time.h>

#include <cstdint>
#include <cstdio>
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

}  // namespace e2e

#endif  // WSREG_BENCHMARKS_E2E_TICK_HPP
