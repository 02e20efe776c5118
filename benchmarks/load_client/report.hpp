// load_client/report.hpp: the figures of one run, as text or as one JSON line.
#ifndef WSREG_LOAD_CLIENT_REPORT_HPP
#define WSREG_LOAD_CLIENT_REPORT_HPP

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "close_cause.hpp"

namespace load_client {

/// One other process's CPU time over the window (--server-pid, --watch-pid).
///
/// Thread safety: a plain value.
struct ProcessReport {
  int pid = 0;
  /// User + system CPU seconds over the window; empty if /proc was unreadable.
  std::optional<double> cpu_window_s;
  /// Resident set at window start, KiB (--server-pid only).
  std::optional<std::uint64_t> rss_kib;
  /// CPU seconds over the window by thread name (threads of one name summed).
  std::map<std::string, double> threads;
};

/// What one of several --url targets received (connections i mod K).
///
/// Thread safety: a plain value.
struct TargetReport {
  std::string url;
  std::uint64_t connections_open = 0;
  std::uint64_t ticks = 0;
  std::uint64_t lost = 0;
  std::uint64_t min_ticks_per_connection = 0;
};

/// What a run measured. Counts of ticks and frames cover the measurement
/// window only; closed_by_server and errors cover the whole run up to the
/// window's end.
///
/// Thread safety: a plain value.
struct LoadReport {
  std::uint64_t connections_requested = 0;
  /// Connections open when the window started.
  std::uint64_t connections_open = 0;
  /// Connections that never completed their handshake, by cause.
  std::uint64_t connect_failures = 0;
  std::array<std::uint64_t, close_cause_count> connect_failure_causes{};
  /// Ticks delivered in the window (duplicates excluded).
  std::uint64_t ticks = 0;
  /// Sequence gaps summed over connections (see TickTracker).
  std::uint64_t lost = 0;
  std::uint64_t duplicate_or_reordered = 0;
  /// Fewest and most ticks one connection open at window start received
  /// (0 when some connection got none).
  std::uint64_t min_ticks_per_connection = 0;
  std::uint64_t max_ticks_per_connection = 0;
  /// Text frames that are not ticks, and binary frames, in the window.
  std::uint64_t other_frames = 0;
  /// Wire bytes (frame headers and payloads as sent, before inflation) of
  /// the data frames received in the window, and of those that belonged
  /// to compressed messages (permessage-deflate, --deflate).
  std::uint64_t data_bytes = 0;
  std::uint64_t compressed_bytes = 0;
  /// Open connections ended by a server close frame.
  std::uint64_t closed_by_server = 0;
  /// Open connections lost to protocol errors, socket errors or a TCP close
  /// without a close frame, by cause.
  std::uint64_t errors = 0;
  std::array<std::uint64_t, close_cause_count> error_causes{};
  /// Length of the connect phase as measured, in seconds: from the first
  /// connect() until all connections were open, failed or timed out.
  double connect_s = 0;
  /// Length of the window as measured, in seconds.
  double window_s = 0;
  /// Latency percentiles and maximum over the window's ticks, milliseconds.
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  double latency_p999_ms = 0;
  double latency_max_ms = 0;
  /// This process's CPU time (user + system), seconds: whole run, window only.
  double client_cpu_s = 0;
  double client_cpu_window_s = 0;
  /// With --server-pid: the servers' CPU time (user + system) over the
  /// window, seconds, and their resident sets at window start, KiB, summed
  /// over the --server-pid processes. Empty without --server-pid or when
  /// /proc could not be read for one of them.
  std::optional<double> server_cpu_window_s;
  std::optional<std::uint64_t> server_rss_kib;
  /// Busy CPU time of the whole host (all processes, all CPUs) over the
  /// window, seconds; minus client and server, what other processes took.
  std::optional<double> host_cpu_window_s;
  /// Bytes the loopback interface carried over the window (/proc/net/dev,
  /// all traffic on 127/8 of the host, TCP/IP headers and both directions
  /// included): the run's wire bytes plus whatever else used loopback.
  std::optional<std::uint64_t> loopback_bytes_window;
  /// Each --server-pid and --watch-pid process, in the order given.
  std::vector<ProcessReport> servers;
  std::vector<ProcessReport> watched;
  /// Each --url, in the order given.
  std::vector<TargetReport> targets;
};

namespace detail {

/// Rounds to 3 decimals, for milliseconds and seconds in the report.
inline double round3(double value) noexcept { return std::round(value * 1000.0) / 1000.0; }

/// " (cause=count cause=count)" for the non-zero entries of `causes`, or
/// "" when all are zero.
inline std::string causes_text(const std::array<std::uint64_t, close_cause_count>& causes) {
  std::string text;
  for (std::size_t i = 0; i < causes.size(); ++i) {
    if (causes[i] == 0) continue;
    text += text.empty() ? " (" : " ";
    text += to_string(static_cast<CloseCause>(i));
    text += '=' + std::to_string(causes[i]);
  }
  return text.empty() ? text : text + ')';
}

inline nlohmann::ordered_json causes_json(const std::array<std::uint64_t, close_cause_count>& causes) {
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < causes.size(); ++i) {
    if (causes[i] != 0) object[std::string(to_string(static_cast<CloseCause>(i)))] = causes[i];
  }
  return object;
}

inline nlohmann::ordered_json processes_json(const std::vector<ProcessReport>& processes) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const ProcessReport& p : processes) {
    nlohmann::ordered_json j;
    j["pid"] = p.pid;
    if (p.cpu_window_s) {
      j["cpu_window_s"] = round3(*p.cpu_window_s);
    } else {
      j["cpu_window_s"] = nullptr;
    }
    if (p.rss_kib) j["rss_kib"] = *p.rss_kib;
    nlohmann::ordered_json threads = nlohmann::ordered_json::object();
    for (const auto& [name, cpu] : p.threads) threads[name] = round3(cpu);
    j["threads_cpu_window_s"] = std::move(threads);
    array.push_back(std::move(j));
  }
  return array;
}

}  // namespace detail

/// The report as one JSON object, keys in a fixed order. Besides the
/// documented keys it carries `connect_failure_causes` and `error_causes`
/// (objects of non-zero counts by cause), `servers` and `watched` (one
/// object per --server-pid and --watch-pid: pid, cpu_window_s, rss_kib for
/// servers, threads_cpu_window_s by thread name) and `targets` (one object
/// per --url: connections_open, ticks, lost, min_ticks_per_connection).
///
/// Thread safety: a pure function.
inline std::string to_json_line(const LoadReport& r) {
  nlohmann::ordered_json j;
  j["connections_requested"] = r.connections_requested;
  j["connections_open"] = r.connections_open;
  j["connect_failures"] = r.connect_failures;
  j["ticks"] = r.ticks;
  j["lost"] = r.lost;
  j["duplicate_or_reordered"] = r.duplicate_or_reordered;
  j["min_ticks_per_connection"] = r.min_ticks_per_connection;
  j["max_ticks_per_connection"] = r.max_ticks_per_connection;
  j["other_frames"] = r.other_frames;
  j["data_bytes"] = r.data_bytes;
  j["compressed_bytes"] = r.compressed_bytes;
  j["closed_by_server"] = r.closed_by_server;
  j["errors"] = r.errors;
  j["connect_s"] = detail::round3(r.connect_s);
  j["window_s"] = detail::round3(r.window_s);
  j["latency_ms"] = {{"p50", detail::round3(r.latency_p50_ms)},
                     {"p99", detail::round3(r.latency_p99_ms)},
                     {"p999", detail::round3(r.latency_p999_ms)},
                     {"max", detail::round3(r.latency_max_ms)}};
  j["client_cpu_s"] = detail::round3(r.client_cpu_s);
  j["client_cpu_window_s"] = detail::round3(r.client_cpu_window_s);
  if (r.server_cpu_window_s) {
    j["server_cpu_window_s"] = detail::round3(*r.server_cpu_window_s);
  } else {
    j["server_cpu_window_s"] = nullptr;
  }
  if (r.server_rss_kib) {
    j["server_rss_kib"] = *r.server_rss_kib;
  } else {
    j["server_rss_kib"] = nullptr;
  }
  if (r.host_cpu_window_s) {
    j["host_cpu_window_s"] = detail::round3(*r.host_cpu_window_s);
  } else {
    j["host_cpu_window_s"] = nullptr;
  }
  if (r.loopback_bytes_window) {
    j["loopback_bytes_window"] = *r.loopback_bytes_window;
  } else {
    j["loopback_bytes_window"] = nullptr;
  }
  j["connect_failure_causes"] = detail::causes_json(r.connect_failure_causes);
  j["error_causes"] = detail::causes_json(r.error_causes);
  j["servers"] = detail::processes_json(r.servers);
  j["watched"] = detail::processes_json(r.watched);
  nlohmann::ordered_json targets = nlohmann::ordered_json::array();
  for (const TargetReport& t : r.targets) {
    targets.push_back({{"url", t.url},
                       {"connections_open", t.connections_open},
                       {"ticks", t.ticks},
                       {"lost", t.lost},
                       {"min_ticks_per_connection", t.min_ticks_per_connection}});
  }
  j["targets"] = std::move(targets);
  return j.dump();
}

/// Prints the report as aligned human-readable lines to `out`.
///
/// Thread safety: writes to `out`; callers serialize use of the stream.
inline void print_human(const LoadReport& r, std::FILE* out) {
  const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::fprintf(out, "connections requested:    %llu\n", u(r.connections_requested));
  std::fprintf(out, "connections open:         %llu (at window start)\n", u(r.connections_open));
  std::fprintf(out, "connect failures:         %llu%s\n", u(r.connect_failures),
               detail::causes_text(r.connect_failure_causes).c_str());
  std::fprintf(out, "connect phase:            %.3f s\n", r.connect_s);
  std::fprintf(out, "window:                   %.3f s\n", r.window_s);
  std::fprintf(out, "ticks delivered:          %llu\n", u(r.ticks));
  std::fprintf(out, "ticks lost:               %llu\n", u(r.lost));
  std::fprintf(out, "duplicate or reordered:   %llu\n", u(r.duplicate_or_reordered));
  std::fprintf(out, "ticks per connection:     min %llu, max %llu\n",
               u(r.min_ticks_per_connection), u(r.max_ticks_per_connection));
  std::fprintf(out, "other frames:             %llu\n", u(r.other_frames));
  std::fprintf(out, "data bytes on the wire:   %llu (%llu of compressed messages)\n",
               u(r.data_bytes), u(r.compressed_bytes));
  std::fprintf(out, "closed by server:         %llu\n", u(r.closed_by_server));
  std::fprintf(out, "errors:                   %llu%s\n", u(r.errors),
               detail::causes_text(r.error_causes).c_str());
  std::fprintf(out, "latency ms:               p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f\n",
               r.latency_p50_ms, r.latency_p99_ms, r.latency_p999_ms, r.latency_max_ms);
  std::fprintf(out, "client cpu s:             %.3f total, %.3f in window\n", r.client_cpu_s,
               r.client_cpu_window_s);
  if (r.server_cpu_window_s) {
    std::fprintf(out, "server cpu s:             %.3f in window\n", *r.server_cpu_window_s);
  }
  if (r.server_rss_kib) {
    std::fprintf(out, "server rss KiB:           %llu at window start\n", u(*r.server_rss_kib));
  }
  if (r.host_cpu_window_s) {
    std::fprintf(out, "host cpu s:               %.3f in window (all processes)\n",
                 *r.host_cpu_window_s);
  }
  for (const ProcessReport& p : r.servers) {
    std::fprintf(out, "server %-8d cpu s:      %.3f in window\n", p.pid, p.cpu_window_s.value_or(-1));
  }
  for (const ProcessReport& p : r.watched) {
    std::fprintf(out, "watched %-7d cpu s:      %.3f in window\n", p.pid, p.cpu_window_s.value_or(-1));
  }
  if (r.targets.size() > 1) {
    for (const TargetReport& t : r.targets) {
      std::fprintf(out, "target %s: open %llu, ticks %llu, lost %llu, min/connection %llu\n",
                   t.url.c_str(), u(t.connections_open), u(t.ticks), u(t.lost),
                   u(t.min_ticks_per_connection));
    }
  }
  if (r.loopback_bytes_window) {
    std::fprintf(out, "loopback bytes:           %llu in window (all of 127/8, headers included)\n",
                 u(*r.loopback_bytes_window));
  }
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_REPORT_HPP
