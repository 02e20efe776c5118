// load_client/options.hpp: the command line of wsreg_load_client.
#ifndef WSREG_LOAD_CLIENT_OPTIONS_HPP
#define WSREG_LOAD_CLIENT_OPTIONS_HPP

#include <cstddef>
#include <string>

#include <CLI/CLI.hpp>

#include "ws_url.hpp"

namespace load_client {

/// What one run does. Each field is one option, with the default shown.
///
/// Thread safety: a plain value.
struct Options {
  /// Server to load, `ws://host:port/path` or `wss://...` (TLS, certificate
  /// not verified); host an IPv4 literal or localhost.
  std::string url = "ws://127.0.0.1:9002/";
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
  /// Connections connecting or handshaking at once.
  std::size_t max_pending = 256;
  /// Print one JSON line instead of human-readable lines.
  bool json = false;
  /// Process id of the server under test (same host), 0 for none: its CPU
  /// time over the window and its resident memory at window start are read
  /// from /proc and reported.
  int server_pid = 0;
  /// Offer permessage-deflate (RFC 7692) and inflate compressed messages.
  bool deflate = false;

  /// Adds the options to `app`, with defaults shown in --help and the URL
  /// checked at parse time (a bad one is a usage error).
  void add_to(CLI::App& app) {
    app.add_option("--url", url,
                   "server URL, ws://host:port/path or wss://... (TLS, certificate not "
                   "verified; host: IPv4 or localhost)")
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
    app.add_option("--max-pending", max_pending, "handshakes in flight at once")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_flag("--json", json, "print one JSON line instead of human-readable lines");
    app.add_flag("--deflate", deflate,
                 "offer permessage-deflate and inflate compressed messages (wire bytes are "
                 "counted as received)");
    app.add_option("--server-pid", server_pid,
                   "server process id: report its CPU time in the window and RSS at window start")
        ->check(CLI::Range(0, 1 << 30))
        ->capture_default_str();
  }
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_OPTIONS_HPP
