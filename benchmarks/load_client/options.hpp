// load_client/options.hpp: the command line of wsreg_load_client.
#ifndef WSREG_LOAD_CLIENT_OPTIONS_HPP
#define WSREG_LOAD_CLIENT_OPTIONS_HPP

#include <cstddef>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ws_url.hpp"

namespace load_client {

/// What one run does. Each field is one option, with the default shown.
///
/// Thread safety: a plain value.
struct Options {
  /// Servers to load, `ws://host:port/path` or `wss://...` (TLS, certificate
  /// not verified); host an IPv4 literal or localhost. `--url` may be given
  /// several times (the nodes of a cluster): connection i goes to URL
  /// i mod K, so each of K servers gets N/K connections, and one latency
  /// histogram covers them all.
  std::vector<std::string> urls{"ws://127.0.0.1:9002/"};
  /// WebSocket connections to open.
  std::size_t connections = 1000;
  /// Length of the measurement window, in seconds.
  double duration_s = 10.0;
  /// Time allowed to open all connections, in seconds; the window starts
  /// when all are open or this passes, whichever is first.
  double connect_timeout_s = 30.0;
  /// K: sockets are bound round-robin to 127.0.0.1 … 127.0.0.K, each
  /// address giving its own ~28k ephemeral ports. 1: no bind, the kernel picks.
  unsigned source_addresses = 1;
  /// Seconds between the connect phase and the window: ticks that arrive
  /// then only set each connection's baseline seq (as in the connect
  /// phase), so a server that starts ticking a moment after the last
  /// connection opened (a cluster waiting for its heartbeats) is not
  /// counted as loss. 0: the window starts at once.
  double warmup_s = 0;
  /// Connections connecting or handshaking at once.
  std::size_t max_pending = 256;
  /// Print one JSON line instead of human-readable lines.
  bool json = false;
  /// Process ids of the servers under test (same host), none by default:
  /// their CPU time over the window (per process, per thread name, and
  /// summed) and their resident memory at window start are read from /proc
  /// and reported. `--server-pid` may be given several times; 0 is ignored.
  std::vector<int> server_pids;
  /// Other processes (a broker) whose CPU time over the window, per process
  /// and per thread name, is reported apart from the servers'.
  std::vector<int> watch_pids;
  /// Offer permessage-deflate (RFC 7692) and inflate compressed messages.
  bool deflate = false;

  /// Adds the options to `app`, with defaults shown in --help and the URL
  /// checked at parse time (a bad one is a usage error).
  void add_to(CLI::App& app) {
    app.add_option("--url", urls,
                   "server URL, ws://host:port/path or wss://... (TLS, certificate not "
                   "verified; host: IPv4 or localhost); repeat for several servers, "
                   "connections round-robin over them")
        ->check(CLI::Validator(
            [](std::string& text) {
              WsUrl parsed;
              return parse_ws_url(text, parsed);
            },
            "WS_URL"))
        ->capture_default_str();
    app.add_option("--connections", connections, "WebSocket connections to open")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_option("--duration", duration_s, "measurement window, seconds")
        ->check(CLI::Range(0.001, 86400.0))
        ->capture_default_str();
    app.add_option("--connect-timeout", connect_timeout_s, "time to open all connections, seconds")
        ->check(CLI::Range(0.001, 86400.0))
        ->capture_default_str();
    app.add_option("--source-addresses", source_addresses,
                   "bind sockets round-robin to 127.0.0.1..127.0.0.K (past ~28k ports per address)")
        ->check(CLI::Range(1u, 254u))
        ->capture_default_str();
    app.add_option("--warmup", warmup_s,
                   "seconds after the connect phase before the window (ticks then set the "
                   "baseline only)")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
    app.add_option("--max-pending", max_pending, "handshakes in flight at once")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_flag("--json", json, "print one JSON line instead of human-readable lines");
    app.add_flag("--deflate", deflate,
                 "offer permessage-deflate and inflate compressed messages (wire bytes are "
                 "counted as received)");
    app.add_option("--server-pid", server_pids,
                   "server process id: report its CPU time in the window and RSS at window "
                   "start; repeat for several servers (summed, and listed per process)")
        ->check(CLI::Range(0, 1 << 30));
    app.add_option("--watch-pid", watch_pids,
                   "another process (a broker): report its CPU time in the window apart from "
                   "the servers'; may be repeated")
        ->check(CLI::Range(0, 1 << 30));
  }
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_OPTIONS_HPP
