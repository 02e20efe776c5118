// wsreg/websocketpp/detail/server_counters.hpp: the live counters behind ServerStats.
#ifndef WSREG_WEBSOCKETPP_DETAIL_SERVER_COUNTERS_HPP
#define WSREG_WEBSOCKETPP_DETAIL_SERVER_COUNTERS_HPP

#include <atomic>
#include <cstdint>

#include "wsreg/websocketpp/server_stats.hpp"

namespace wsreg::wspp::detail {

/// Atomic counters shared by a Server and its connections' senders (which
/// may outlive the Server inside a registry, hence shared ownership).
/// Relaxed ordering: each counter is exact on its own. Thread-safe.
struct ServerCounters {
  std::atomic<std::uint64_t> slow_consumer_closes{0};
  std::atomic<std::uint64_t> backpressure_drops{0};
  std::atomic<std::uint64_t> buffered_bytes_high_water{0};
  std::atomic<std::uint64_t> oversize_closes{0};
  std::atomic<std::uint64_t> handshakes_rejected{0};
  std::atomic<std::uint64_t> handshakes_failed{0};
  std::atomic<std::uint64_t> idle_closes{0};
  std::atomic<std::uint64_t> pings_sent{0};
  std::atomic<std::uint64_t> accepts{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> accept_backoffs{0};
  std::atomic<std::uint64_t> handler_exceptions{0};
  std::atomic<std::uint64_t> internal_errors{0};
  std::atomic<std::uint64_t> protocol_error_closes{0};
  std::atomic<std::uint64_t> invalid_payload_closes{0};
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> tls_handshake_failures{0};
  std::atomic<std::uint64_t> pongs_skipped{0};
  std::atomic<std::uint64_t> handshake_handler_errors{0};

  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.fetch_add(1, std::memory_order_relaxed);
  }

  /// Raises the high-water mark to `bytes` if higher. The common case (not
  /// higher) is one relaxed load, no write.
  void note_buffered(std::uint64_t bytes) noexcept {
    std::uint64_t seen = buffered_bytes_high_water.load(std::memory_order_relaxed);
    while (bytes > seen &&
           !buffered_bytes_high_water.compare_exchange_weak(seen, bytes,
                                                            std::memory_order_relaxed)) {
    }
  }

  ServerStats snapshot() const noexcept {
    ServerStats s;
    s.slow_consumer_closes = slow_consumer_closes.load(std::memory_order_relaxed);
    s.backpressure_drops = backpressure_drops.load(std::memory_order_relaxed);
    s.buffered_bytes_high_water = buffered_bytes_high_water.load(std::memory_order_relaxed);
    s.oversize_closes = oversize_closes.load(std::memory_order_relaxed);
    s.handshakes_rejected = handshakes_rejected.load(std::memory_order_relaxed);
    s.handshakes_failed = handshakes_failed.load(std::memory_order_relaxed);
    s.idle_closes = idle_closes.load(std::memory_order_relaxed);
    s.pings_sent = pings_sent.load(std::memory_order_relaxed);
    s.accepts = accepts.load(std::memory_order_relaxed);
    s.accept_errors = accept_errors.load(std::memory_order_relaxed);
    s.accept_backoffs = accept_backoffs.load(std::memory_order_relaxed);
    s.handler_exceptions = handler_exceptions.load(std::memory_order_relaxed);
    s.internal_errors = internal_errors.load(std::memory_order_relaxed);
    s.protocol_error_closes = protocol_error_closes.load(std::memory_order_relaxed);
    s.invalid_payload_closes = invalid_payload_closes.load(std::memory_order_relaxed);
    s.handshake_timeouts = handshake_timeouts.load(std::memory_order_relaxed);
    s.tls_handshake_failures = tls_handshake_failures.load(std::memory_order_relaxed);
    s.pongs_skipped = pongs_skipped.load(std::memory_order_relaxed);
    s.handshake_handler_errors = handshake_handler_errors.load(std::memory_order_relaxed);
    return s;
  }
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_SERVER_COUNTERS_HPP
