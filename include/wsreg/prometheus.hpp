// wsreg/prometheus.hpp: registry counters in the Prometheus text format.
#ifndef WSREG_PROMETHEUS_HPP
#define WSREG_PROMETHEUS_HPP

#include <cstddef>
#include <cstdint>
#include <string>

#include "wsreg/registry_stats.hpp"

namespace wsreg {

namespace detail {

/// Appends one metric without labels, with its HELP and TYPE lines, in the
/// Prometheus text exposition format 0.0.4.
inline void append_metric(std::string& out, const char* name, const char* type,
                          const char* help, std::uint64_t value) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace detail

/// Renders `stats` and the open-connection count `connections` in the
/// Prometheus text exposition format, version 0.0.4 (content type
/// "text/plain; version=0.0.4"). Metrics, all without labels:
///
/// | name                               | type    | meaning                          |
/// |------------------------------------|---------|----------------------------------|
/// | wsreg_connections                  | gauge   | open connections                 |
/// | wsreg_connections_added_total      | counter | RegistryStats::connections_added |
/// | wsreg_connections_removed_total    | counter | RegistryStats::connections_removed |
/// | wsreg_messages_sent_total          | counter | RegistryStats::messages_sent     |
/// | wsreg_messages_dropped_total       | counter | RegistryStats::messages_dropped  |
/// | wsreg_send_unknown_total           | counter | RegistryStats::send_unknown      |
/// | wsreg_broadcasts_total             | counter | RegistryStats::broadcasts        |
/// | wsreg_publishes_total              | counter | RegistryStats::publishes         |
/// | wsreg_mailbox_depth                | gauge   | RegistryStats::mailbox_depth     |
/// | wsreg_mailbox_high_water           | gauge   | RegistryStats::mailbox_high_water |
/// | wsreg_mailbox_waits_total          | counter | RegistryStats::mailbox_waits     |
///
/// Thread-safe (a pure function). Throws std::bad_alloc only.
inline std::string prometheus_text(const RegistryStats& stats, std::size_t connections) {
  std::string out;
  out.reserve(1024);
  detail::append_metric(out, "wsreg_connections", "gauge",
                        "Open WebSocket connections in the registry.", connections);
  detail::append_metric(out, "wsreg_connections_added_total", "counter",
                        "Connections added to the registry.", stats.connections_added);
  detail::append_metric(out, "wsreg_connections_removed_total", "counter",
                        "Connections removed from the registry.", stats.connections_removed);
  detail::append_metric(out, "wsreg_messages_sent_total", "counter",
                        "Messages queued for a connection, one per recipient.",
                        stats.messages_sent);
  detail::append_metric(
      out, "wsreg_messages_dropped_total", "counter",
      "Messages a connection refused (closing or over its limit), one per recipient.",
      stats.messages_dropped);
  detail::append_metric(out, "wsreg_send_unknown_total", "counter",
                        "Sends to an unknown or removed connection id.", stats.send_unknown);
  detail::append_metric(out, "wsreg_broadcasts_total", "counter", "Broadcast calls applied.",
                        stats.broadcasts);
  detail::append_metric(out, "wsreg_publishes_total", "counter",
                        "Publish calls applied (to a topic).", stats.publishes);
  detail::append_metric(out, "wsreg_mailbox_depth", "gauge",
                        "Operations queued for the registry's actor thread, not yet applied "
                        "(0 without one).",
                        stats.mailbox_depth);
  detail::append_metric(out, "wsreg_mailbox_high_water", "gauge",
                        "The largest number of operations queued for the actor thread at once.",
                        stats.mailbox_high_water);
  detail::append_metric(out, "wsreg_mailbox_waits_total", "counter",
                        "Sends, broadcasts and publishes that waited for room in a full mailbox.",
                        stats.mailbox_waits);
  return out;
}

}  // namespace wsreg

#endif  // WSREG_PROMETHEUS_HPP
