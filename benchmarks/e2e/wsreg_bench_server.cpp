// wsreg_bench_server: the wsreg variant of the end-to-end broadcast
// benchmark. Sends every connection a tick {"seq":N,"sent_ns":T} at --rate
// ticks per second through a ConnectionRegistry and wsreg::wspp::Server,
// with a per-connection bound of --max-buffered-bytes (drop_newest).
//
// Usage: wsreg_bench_server [--address 127.0.0.1] [--port 0] [--threads 1]
//          [--policy actor|mutex] [--rate 10] [--max-buffered-bytes 1048576]
//          [--frame-once on|off] [--start-after-connections 0] [--publish]
//          [--compression none|once|per-connection|websocketpp] [--tick-bytes 0]
// --publish: every connection subscribes to one topic when it opens, and
// each tick is published to that topic instead of broadcast (the same
// recipients, through the topic path).
// --compression (permessage-deflate, RFC 7692, for clients that offer it):
//   none            wsreg::wspp::Config, no extension (the default)
//   once            DeflateConfig with frame_once: each tick compressed once
//                   and the same frame queued on every connection
//   per-connection  DeflateConfig, frame_once off: websocketpp compresses a
//                   copy per connection with wsreg's extension (no context
//                   takeover, as `once`)
//   websocketpp     websocketpp 0.8.2's own extension (enabled<>), frame_once
//                   off: compressed per connection, with context takeover
//                   unless the client asks otherwise
// --tick-bytes N: ticks of about N bytes of JSON (e2e::JsonTick) instead of
// the 46-byte {"seq":N,"sent_ns":T}.
// Prints "wsreg_bench_server: listening on port N (...)" when ready; stops
// on SIGINT or SIGTERM and prints "stopped; sent S, dropped D".
// --tls-cert FILE --tls-key FILE (as every example takes them): wss://
// through wsreg::wspp::TlsServer, the same ticker and options otherwise.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>

#include <CLI/CLI.hpp>

#include "common/example_options.hpp"
#include "common/make_server.hpp"
#include "common/periodic_thread.hpp"
#include "common/wait_for_signal.hpp"
#include "tick.hpp"
#include "wsreg/websocketpp/deflate_config.hpp"
#include "wsreg/websocketpp/server.hpp"
// After wsreg's headers (which include it in the order it needs).
#include <websocketpp/extensions/permessage_deflate/enabled.hpp>

namespace {

/// What this benchmark server takes besides examples::ServerArguments.
struct BenchArguments {
  double rate_hz = 10;
  std::size_t max_buffered_bytes = 1024 * 1024;
  std::string frame_once = "on";
  std::size_t start_after_connections = 0;
  bool publish = false;
  std::string compression = "none";
  std::size_t tick_bytes = 0;
};

/// wsreg's Config with websocketpp 0.8.2's own permessage-deflate extension,
/// for the `--compression websocketpp` comparison only: it inflates without
/// a limit and keeps a compressor per connection (see deflate.hpp's header).
struct StockDeflateConfig : wsreg::wspp::Config {
  using type = StockDeflateConfig;
  struct permessage_deflate_config {};
  using permessage_deflate_type =
      ::websocketpp::extensions::permessage_deflate::enabled<permessage_deflate_config>;
};

/// The one topic of --publish runs.
const std::string topic = "ticks";

template <class Policy, class Server>
int serve(Server& server, wsreg::ConnectionRegistry<Policy>& registry,
          examples::StopSignals& signals, const examples::ServerArguments& args,
          const BenchArguments& bench, const wsreg::wspp::ServerOptions& options);

template <class Policy, class Config>
int run(examples::StopSignals& signals, const examples::ServerArguments& args,
        const BenchArguments& bench) {
  wsreg::ConnectionRegistry<Policy> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = args.threads;
  options.max_buffered_bytes = bench.max_buffered_bytes;
  options.overflow_policy = wsreg::wspp::OverflowPolicy::drop_newest;
  options.frame_once = bench.frame_once == "on";
  if (bench.compression == "once") options.frame_once = true;
  if (bench.compression == "per-connection" || bench.compression == "websocketpp") {
    options.frame_once = false;
  }
  // The other variants have no heartbeat; neither does this one, so every
  // variant puts the same frames on the wire.
  options.ping_interval = std::chrono::milliseconds(0);
  options.idle_timeout = std::chrono::milliseconds(0);
  if constexpr (std::is_same_v<Config, wsreg::wspp::Config>) {
    // wsreg::wspp::Server, or TlsServer with --tls-cert and --tls-key.
    return examples::with_server(registry, args, options, [&](auto& server) {
      return serve(server, registry, signals, args, bench, options);
    });
  } else {
    if (args.tls()) {
      std::fprintf(stderr, "wsreg_bench_server: --compression with --tls-cert is not offered\n");
      return 2;
    }
    wsreg::wspp::Server<Policy, std::monostate, Config> server(registry, options);
    return serve(server, registry, signals, args, bench, options);
  }
}

/// Ticks to every connection of `server` until SIGINT or SIGTERM, then
/// stops it and prints what the registry sent and dropped.
template <class Policy, class Server>
int serve(Server& server, wsreg::ConnectionRegistry<Policy>& registry,
          examples::StopSignals& signals, const examples::ServerArguments& args,
          const BenchArguments& bench, const wsreg::wspp::ServerOptions& options) {
  if (bench.publish) {
    server.set_open_handler([&registry](wsreg::ConnectionId id) { registry.subscribe(id, topic); });
  }

  char extra[192];
  std::snprintf(extra, sizeof extra,
                ", rate %g Hz, max-buffered-bytes %zu, frame-once %s%s, compression %s, "
                "tick-bytes %zu",
                bench.rate_hz, bench.max_buffered_bytes, options.frame_once ? "on" : "off",
                bench.publish ? ", publish" : "", bench.compression.c_str(), bench.tick_bytes);
  if (!examples::listen_and_report(server, args, "wsreg_bench_server", extra)) return 1;

  // --rate 0: no ticker at all (idle-memory runs). Ticks before
  // --start-after-connections connections are open are skipped (seq goes on).
  bool started = false;  // ticker thread only
  e2e::TickText text;    // ticker thread only
  e2e::JsonTick json(bench.tick_bytes);
  std::unique_ptr<examples::PeriodicThread> ticker;
  if (bench.rate_hz > 0) {
    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / bench.rate_hz));
    ticker = std::make_unique<examples::PeriodicThread>(period, [&](std::uint64_t seq) {
      if (!started) {
        if (registry.size_approx() < bench.start_after_connections) return;
        started = true;
      }
      wsreg::Payload tick =
          bench.tick_bytes == 0 ? wsreg::Payload::text(std::string(text.format(seq)))
                                : wsreg::Payload::text(std::string(json.format(seq)));
      if (bench.publish) {
        registry.publish(topic, std::move(tick));
      } else {
        registry.broadcast(std::move(tick));
      }
      // Under ActorPolicy this waits until the actor has handed the tick to
      // every connection, so its mailbox never runs ahead of the sockets;
      // under MutexPolicy broadcast has already done so and flush is a no-op.
      registry.flush();
    });
  }

  signals.wait();
  if (ticker) ticker->stop();
  server.shutdown(std::chrono::seconds(2)).wait();
  const wsreg::RegistryStats stats = registry.stats();
  std::printf("wsreg_bench_server: stopped; sent %llu, dropped %llu\n",
              static_cast<unsigned long long>(stats.messages_sent),
              static_cast<unsigned long long>(stats.messages_dropped));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg end-to-end benchmark server: ticks to every connection"};
  examples::ServerArguments args;
  args.address = "127.0.0.1";
  args.port = 0;
  args.add_to(app);
  BenchArguments bench;
  app.add_option("--rate", bench.rate_hz, "ticks per second to every connection; 0: never tick")
      ->check(CLI::Range(0.0, 1'000'000.0))
      ->capture_default_str();
  app.add_option("--max-buffered-bytes", bench.max_buffered_bytes,
                 "per-connection bound on queued bytes; a tick past it is dropped")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--frame-once", bench.frame_once,
                 "on: frame each tick once for all connections; off: websocketpp frames a copy "
                 "per connection")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--start-after-connections", bench.start_after_connections,
                 "tick only once this many connections are open (0: from the start)")
      ->capture_default_str();
  app.add_option("--compression", bench.compression,
                 "permessage-deflate: none, once (compress once for all), per-connection "
                 "(websocketpp compresses per connection, wsreg's extension), websocketpp "
                 "(websocketpp's own extension, per connection)")
      ->check(CLI::IsMember({"none", "once", "per-connection", "websocketpp"}))
      ->capture_default_str();
  app.add_option("--tick-bytes", bench.tick_bytes,
                 "ticks of about this many bytes of JSON; 0: the 46-byte tick")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 24))
      ->capture_default_str();
  app.add_flag("--publish", bench.publish,
               "subscribe every connection to one topic and publish ticks to it instead of "
               "broadcasting");
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  examples::StopSignals signals;  // before any thread and before the port is printed
  return examples::with_policy(args.policy, [&](auto tag) {
    using Policy = typename decltype(tag)::type;
    if (bench.compression == "once" || bench.compression == "per-connection") {
      return run<Policy, wsreg::wspp::DeflateConfig>(signals, args, bench);
    }
    if (bench.compression == "websocketpp") return run<Policy, StockDeflateConfig>(signals, args, bench);
    return run<Policy, wsreg::wspp::Config>(signals, args, bench);
  });
}
