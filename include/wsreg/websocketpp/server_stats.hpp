// wsreg/websocketpp/server_stats.hpp: what a Server counts about its transport.
#ifndef WSREG_WEBSOCKETPP_SERVER_STATS_HPP
#define WSREG_WEBSOCKETPP_SERVER_STATS_HPP

#include <cstdint>
#include <string>
#include <utility>

#include "wsreg/prometheus.hpp"

namespace wsreg::wspp {

/// A snapshot of a Server's counters: transport events the registry cannot
/// see. Counters start at 0 and only grow, except the high-water mark, which
/// only grows too. Thread safety: a plain value; Server::stats() returns a copy.
struct ServerStats {
  /// Connections closed with 1008 because they passed max_buffered_bytes
  /// (OverflowPolicy::close).
  std::uint64_t slow_consumer_closes = 0;
  /// Messages refused because they would pass max_buffered_bytes (both
  /// policies); also part of RegistryStats::messages_dropped.
  std::uint64_t backpressure_drops = 0;
  /// The most bytes ever seen in one connection's queue before a send, in
  /// charged bytes as max_buffered_bytes counts them (header + payload +
  /// per-message overhead; the write window handed to websocketpp is not
  /// included).
  std::uint64_t buffered_bytes_high_water = 0;
  /// Connections closed with 1009 for an inbound message over
  /// max_message_size.
  std::uint64_t oversize_closes = 0;
  /// Handshakes refused with an HTTP status: 503 past max_connections or
  /// during shutdown, 429 past max_connections_per_address, 403 for an
  /// Origin not in allowed_origins, 400 for a bad Sec-WebSocket-Key, and
  /// every rejection (or 500) by the handshake handler. Not counted in
  /// handshakes_failed.
  std::uint64_t handshakes_rejected = 0;
  /// Connections that ended before their WebSocket opened (handshake
  /// timeout, bad request, dropped mid-handshake). Never registered.
  std::uint64_t handshakes_failed = 0;
  /// Connections closed because nothing arrived for idle_timeout.
  std::uint64_t idle_closes = 0;
  /// Pings sent by the heartbeat.
  std::uint64_t pings_sent = 0;
  /// TCP connections accepted (each then either completes its handshake or
  /// is counted in handshakes_failed or handshakes_rejected, or ends as a
  /// plain HTTP exchange).
  std::uint64_t accepts = 0;
  /// Accepts that failed (any reason but shutdown).
  std::uint64_t accept_errors = 0;
  /// Times accepting paused for lack of resources (EMFILE, ...).
  std::uint64_t accept_backoffs = 0;
  /// Exceptions thrown by application handlers (each closed its
  /// connection with 1011).
  std::uint64_t handler_exceptions = 0;
  /// Exceptions (std::bad_alloc, in practice) thrown by the adapter's own
  /// code on a connection's open, message or HTTP path; each closed that
  /// connection with 1011 (or answered 500) instead of reaching websocketpp.
  std::uint64_t internal_errors = 0;
  /// Connections closed with 1002 (protocol error, RFC 6455 section 7.4.1):
  /// a malformed frame, a bad opcode or RSV bit, a non-minimal length, ...
  std::uint64_t protocol_error_closes = 0;
  /// Connections closed with 1007 (invalid frame payload data, RFC 6455
  /// section 8.1): text or a close reason that is not UTF-8.
  std::uint64_t invalid_payload_closes = 0;
  /// Pings not answered because a pong for an earlier one was still waiting
  /// to be written (a client that sends pings and does not read; RFC 6455
  /// section 5.5.3 allows answering only the most recent).
  std::uint64_t pongs_skipped = 0;
  /// Connections dropped because their opening handshake took longer than
  /// handshake_timeout (also counted in handshakes_failed).
  std::uint64_t handshake_timeouts = 0;
  /// Handshakes answered 500 because the handshake handler threw, or gave
  /// a decision the Server could not carry out (a subprotocol the client
  /// did not offer, a status outside 400-599, a bad header name). Also
  /// counted in handshakes_rejected; that connection only is refused.
  std::uint64_t handshake_handler_errors = 0;
  /// TLS Server only: connections whose TLS handshake failed (a client that
  /// speaks plain HTTP or garbage to the TLS port, no shared protocol
  /// version or cipher, a bad certificate on the client's side). Also
  /// counted in handshakes_failed; that socket only is closed.
  std::uint64_t tls_handshake_failures = 0;
};

/// Renders `stats` in the Prometheus text exposition format 0.0.4, one
/// metric per field: wsreg_slow_consumer_closes_total,
/// wsreg_backpressure_drops_total, wsreg_buffered_bytes_high_water (gauge),
/// wsreg_oversize_closes_total, wsreg_handshakes_rejected_total,
/// wsreg_handshakes_failed_total, wsreg_idle_closes_total,
/// wsreg_pings_sent_total, wsreg_accepts_total, wsreg_accept_errors_total,
/// wsreg_accept_backoffs_total, wsreg_handler_exceptions_total,
/// wsreg_internal_errors_total, wsreg_protocol_closes_total{code="1002"|"1007"|"1009"}
/// (1009 is the same count as wsreg_oversize_closes_total), and
/// wsreg_pongs_skipped_total, wsreg_handshake_timeouts_total,
/// wsreg_handshake_handler_errors_total and wsreg_tls_handshake_failures_total.
/// Thread-safe (a pure function). Throws std::bad_alloc only.
inline std::string prometheus_text(const ServerStats& stats) {
  using wsreg::detail::append_metric;
  std::string out;
  out.reserve(1536);
  append_metric(out, "wsreg_slow_consumer_closes_total", "counter",
                "Connections closed with 1008 for passing max_buffered_bytes.",
                stats.slow_consumer_closes);
  append_metric(out, "wsreg_backpressure_drops_total", "counter",
                "Messages refused because a connection was over max_buffered_bytes.",
                stats.backpressure_drops);
  append_metric(out, "wsreg_buffered_bytes_high_water", "gauge",
                "Most bytes seen waiting for one connection.", stats.buffered_bytes_high_water);
  append_metric(out, "wsreg_oversize_closes_total", "counter",
                "Connections closed with 1009 for an inbound message over max_message_size.",
                stats.oversize_closes);
  append_metric(out, "wsreg_handshakes_rejected_total", "counter",
                "Handshakes refused with an HTTP status (limits, origin, handshake handler).",
                stats.handshakes_rejected);
  append_metric(out, "wsreg_handshakes_failed_total", "counter",
                "Connections that ended before their WebSocket opened.",
                stats.handshakes_failed);
  append_metric(out, "wsreg_idle_closes_total", "counter",
                "Connections closed after idle_timeout without traffic.", stats.idle_closes);
  append_metric(out, "wsreg_pings_sent_total", "counter", "Heartbeat pings sent.",
                stats.pings_sent);
  append_metric(out, "wsreg_accepts_total", "counter", "TCP connections accepted.",
                stats.accepts);
  append_metric(out, "wsreg_accept_errors_total", "counter", "Failed TCP accepts.",
                stats.accept_errors);
  append_metric(out, "wsreg_accept_backoffs_total", "counter",
                "Pauses of the accept loop for lack of resources (EMFILE, ...).",
                stats.accept_backoffs);
  append_metric(out, "wsreg_handler_exceptions_total", "counter",
                "Exceptions thrown by application handlers (each closed its connection "
                "with 1011).",
                stats.handler_exceptions);
  append_metric(out, "wsreg_internal_errors_total", "counter",
                "Exceptions in the adapter's own code (each closed its connection with 1011).",
                stats.internal_errors);
  out += "# HELP wsreg_protocol_closes_total Connections closed by the server for a protocol "
         "violation, by close code (RFC 6455 section 7.4.1).\n"
         "# TYPE wsreg_protocol_closes_total counter\n";
  const std::pair<const char*, std::uint64_t> by_code[] = {
      {"1002", stats.protocol_error_closes},
      {"1007", stats.invalid_payload_closes},
      {"1009", stats.oversize_closes}};
  for (const auto& [code, count] : by_code) {
    out += "wsreg_protocol_closes_total{code=\"";
    out += code;
    out += "\"} ";
    out += std::to_string(count);
    out += '\n';
  }
  append_metric(out, "wsreg_pongs_skipped_total", "counter",
                "Pings left unanswered while a pong was still waiting to be written.",
                stats.pongs_skipped);
  append_metric(out, "wsreg_handshake_timeouts_total", "counter",
                "Connections dropped for not finishing the opening handshake in time.",
                stats.handshake_timeouts);
  append_metric(out, "wsreg_handshake_handler_errors_total", "counter",
                "Handshakes answered 500 because the handshake handler threw or gave an "
                "unusable decision.",
                stats.handshake_handler_errors);
  append_metric(out, "wsreg_tls_handshake_failures_total", "counter",
                "TLS Server: connections whose TLS handshake failed (plain HTTP or garbage "
                "sent to the TLS port, no common protocol or cipher).",
                stats.tls_handshake_failures);
  return out;
}

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_SERVER_STATS_HPP
