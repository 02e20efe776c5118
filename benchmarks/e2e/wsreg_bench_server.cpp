// wsreg_bench_server: the wsreg variant of the end-to-end broadcast
// benchmark. Sends every connection a tick {"seq":N,"sent_ns":T} at --rate
// ticks per second through a ConnectionRegistry and wsreg::wspp::Server,
// with a per-connection bound of --max-buffered-bytes (drop_newest).
//
// Usage: wsreg_bench_server [--address 127.0.0.1] [--port 0] [--threads 1]
//          [--policy actor|mutex] [--rate 10] [--max-buffered-bytes 1048576]
//          [--frame-once on|off] [--write-lanes on|off] [--start-after-connections 0]
//          [--publish]
//          [--compression none|once|per-connection|websocketpp] [--tick-bytes 0]
//          [--redis redis://HOST:PORT | --nats nats://HOST:PORT] [--node-id 0]
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
// --redis URL (or --nats URL, where wsreg::nats was built) --node-id N: the
// registry (RegistryOptions::node_id N) is one node of a wsreg::Cluster
// over that broker, so this node's ticks reach every node's connections,
// and other nodes' ticks reach this node's. Run the other nodes with
// --rate 0: only one node ticks, so sent_ns comes from one clock. In a
// cluster --start-after-connections counts the whole cluster's
// connections (Cluster::connection_count(), heartbeats included, so up to
// 500 ms late), and no tick is made before the backplane is connected. At
// exit a second line gives the ClusterStats:
// "cluster: broadcasts_out B ... gaps G, messages_missed M, ...".
// Threads are named for per-thread CPU time (/proc/PID/task/TID/comm):
// actor (ActorPolicy's), backplane (what the Cluster started: the
// backplane's own thread and, last, the Cluster's timer, named cluster),
// nats-lib (threads libnats starts with its connection, its delivery
// thread among them), io (websocketpp's), ticker.
#include <dirent.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/example_options.hpp"
#include "common/make_server.hpp"
#include "common/periodic_thread.hpp"
#include "common/wait_for_signal.hpp"
#include "tick.hpp"
#include "wsreg/cluster.hpp"
#if WSREG_BENCH_HAVE_REDIS
#include "wsreg/redis_backplane.hpp"
#endif
#if WSREG_BENCH_HAVE_NATS
#include "wsreg/nats_backplane.hpp"
#endif
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
  std::string write_lanes = "on";
  std::size_t start_after_connections = 0;
  bool publish = false;
  std::string compression = "none";
  std::size_t tick_bytes = 0;
  std::string redis_url;
  std::string nats_url;
  std::uint16_t node_id = 0;
};

/// What serve() needs of a Cluster, whatever its backplane: null outside a
/// cluster.
struct ClusterView {
  std::function<std::uint64_t()> connection_count;
  std::function<bool()> connected;
  std::function<wsreg::ClusterStats()> stats;
  std::string backplane;
};

/// Names this process's threads after what started them, for per-thread
/// CPU time: remembers the threads that exist, and name_new() writes a
/// name into /proc/self/task/TID/comm of each thread started since.
/// Not thread-safe (the main thread only).
class ThreadNamer {
 public:
  ThreadNamer() : known_(tids()) {}

  /// Names the threads started since the last call `name`, the last of
  /// them (by thread id, so by creation order) `last_name` if not empty.
  void name_new(const char* name, const char* last_name = "") {
    std::vector<long> fresh;
    for (const long tid : tids()) {
      if (known_.insert(tid).second) fresh.push_back(tid);
    }
    std::sort(fresh.begin(), fresh.end());
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      const bool last = i + 1 == fresh.size() && fresh.size() > 1 && last_name[0] != '\0';
      set_name(fresh[i], last ? last_name : name);
    }
  }

  /// Names the calling thread (at most 15 characters kept).
  static void name_this(const char* name) { ::pthread_setname_np(::pthread_self(), name); }

 private:
  static std::set<long> tids() {
    std::set<long> out;
    if (DIR* dir = ::opendir("/proc/self/task")) {
      while (const dirent* entry = ::readdir(dir)) {
        char* end = nullptr;
        const long tid = std::strtol(entry->d_name, &end, 10);
        if (end != entry->d_name && *end == '\0') out.insert(tid);
      }
      ::closedir(dir);
    }
    return out;
  }

  static void set_name(long tid, const char* name) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    if (std::FILE* file = std::fopen(path, "w")) {
      std::fputs(name, file);
      std::fclose(file);
    }
  }

  std::set<long> known_;
};

/// Calls `run(cluster)` with the registry joined to a Cluster over the
/// backplane --redis or --nats names (ClusterView of it), or with null
/// when neither is given; the Cluster is destroyed after `run` returns
/// (so after the server it makes has shut down), then the backplane.
template <class Registry, class Run>
int with_cluster(Registry& registry, const BenchArguments& bench, ThreadNamer& namer, Run&& run) {
  const auto joined = [&](auto& backplane) {
    wsreg::Cluster cluster(registry, backplane);
    namer.name_new("backplane", "cluster");  // the Cluster's timer starts last
    // Listen once connected (at most 5 s): the first connections' nodes
    // are then known. A client library's own threads (libnats: delivery,
    // flusher, reader) start with the connection: named "<backplane>-lib".
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!cluster.connected() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a flag, bounded
    }
    const std::string lib = std::string(backplane.name()) + "-lib";
    namer.name_new(lib.c_str());
    ClusterView view{[&cluster] { return cluster.connection_count(); },
                     [&cluster] { return cluster.connected(); },
                     [&cluster] { return cluster.stats(); }, std::string(backplane.name())};
    return run(&view);
  };
#if WSREG_BENCH_HAVE_REDIS
  if (!bench.redis_url.empty()) {
    wsreg::RedisOptions options;
    options.url = bench.redis_url;
    wsreg::RedisBackplane backplane(options);
    return joined(backplane);
  }
#endif
#if WSREG_BENCH_HAVE_NATS
  if (!bench.nats_url.empty()) {
    wsreg::NatsOptions options;
    options.url = bench.nats_url;
    wsreg::NatsBackplane backplane(options);
    return joined(backplane);
  }
#endif
  return run(static_cast<ClusterView*>(nullptr));
}

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
          const BenchArguments& bench, const wsreg::wspp::ServerOptions& options,
          ClusterView* cluster);

template <class Policy, class Config>
int run_server(wsreg::ConnectionRegistry<Policy>& registry, examples::StopSignals& signals,
               const examples::ServerArguments& args, const BenchArguments& bench,
               ClusterView* cluster);

template <class Policy, class Config>
int run(examples::StopSignals& signals, const examples::ServerArguments& args,
        const BenchArguments& bench) {
  ThreadNamer namer;
  wsreg::RegistryOptions registry_options;
  registry_options.node_id = bench.node_id;
  wsreg::ConnectionRegistry<Policy> registry(registry_options);
  namer.name_new("actor");
  return with_cluster(registry, bench, namer, [&](ClusterView* cluster) {
    return run_server<Policy, Config>(registry, signals, args, bench, cluster);
  });
}

template <class Policy, class Config>
int run_server(wsreg::ConnectionRegistry<Policy>& registry, examples::StopSignals& signals,
               const examples::ServerArguments& args, const BenchArguments& bench,
               ClusterView* cluster) {
  wsreg::wspp::ServerOptions options;
  options.threads = args.threads;
  options.max_buffered_bytes = bench.max_buffered_bytes;
  options.overflow_policy = wsreg::wspp::OverflowPolicy::drop_newest;
  options.frame_once = bench.frame_once == "on";
  options.write_lanes = bench.write_lanes == "on";
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
      return serve(server, registry, signals, args, bench, options, cluster);
    });
  } else {
    if (args.tls()) {
      std::fprintf(stderr, "wsreg_bench_server: --compression with --tls-cert is not offered\n");
      return 2;
    }
    wsreg::wspp::Server<Policy, std::monostate, Config> server(registry, options);
    return serve(server, registry, signals, args, bench, options, cluster);
  }
}

/// Ticks to every connection of `server` (and, in a cluster, of every
/// node) until SIGINT or SIGTERM, then stops it and prints what the
/// registry sent and dropped, and the cluster's counters.
template <class Policy, class Server>
int serve(Server& server, wsreg::ConnectionRegistry<Policy>& registry,
          examples::StopSignals& signals, const examples::ServerArguments& args,
          const BenchArguments& bench, const wsreg::wspp::ServerOptions& options,
          ClusterView* cluster) {
  const bool publish = bench.publish;
  server.set_open_handler([&registry, publish](wsreg::ConnectionId id) {
    thread_local bool named = false;  // once per io thread
    if (!named) {
      ThreadNamer::name_this("io");
      named = true;
    }
    if (publish) registry.subscribe(id, topic);
  });

  char extra[256];
  std::snprintf(extra, sizeof extra,
                ", rate %g Hz, max-buffered-bytes %zu, frame-once %s, write-lanes %s%s, "
                "compression %s, tick-bytes %zu%s%s, node %u",
                bench.rate_hz, bench.max_buffered_bytes, options.frame_once ? "on" : "off",
                options.write_lanes ? "on" : "off",
                bench.publish ? ", publish" : "", bench.compression.c_str(), bench.tick_bytes,
                cluster != nullptr ? ", cluster over " : "",
                cluster != nullptr ? cluster->backplane.c_str() : "",
                static_cast<unsigned>(bench.node_id));
  if (!examples::listen_and_report(server, args, "wsreg_bench_server", extra)) return 1;

  // --rate 0: no ticker at all (idle-memory runs). Ticks before
  // --start-after-connections connections are open are skipped (seq goes on);
  // in a cluster, connections of every node, and only once connected.
  bool started = false;  // ticker thread only
  e2e::TickText text;    // ticker thread only
  e2e::JsonTick json(bench.tick_bytes);
  std::unique_ptr<examples::PeriodicThread> ticker;
  if (bench.rate_hz > 0) {
    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / bench.rate_hz));
    ticker = std::make_unique<examples::PeriodicThread>(period, [&](std::uint64_t seq) {
      if (!started) {
        ThreadNamer::name_this("ticker");
        if (cluster != nullptr) {
          if (!cluster->connected() ||
              cluster->connection_count() < bench.start_after_connections) {
            return;
          }
        } else if (registry.size_approx() < bench.start_after_connections) {
          return;
        }
        started = true;
        std::printf("wsreg_bench_server: ticking from seq %llu\n",
                    static_cast<unsigned long long>(seq));
        std::fflush(stdout);
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
  if (cluster != nullptr) {
    const wsreg::ClusterStats c = cluster->stats();
    const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "wsreg_bench_server: cluster: broadcasts_out %llu, publishes_out %llu, broadcasts_in %llu, "
        "publishes_in %llu, publications_dropped %llu, publications_lost %llu, gaps %llu, "
        "messages_missed %llu, malformed %llu, nodes %llu, backplane_published %llu, "
        "backplane_received %llu, backplane_reconnects %llu, backplane_queue_depth %llu\n",
        u(c.broadcasts_out), u(c.publishes_out), u(c.broadcasts_in), u(c.publishes_in),
        u(c.publications_dropped), u(c.publications_lost), u(c.gaps), u(c.messages_missed),
        u(c.malformed), u(c.nodes), u(c.backplane.published), u(c.backplane.received),
        u(c.backplane.reconnects), u(c.backplane.queue_depth));
  }
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
  app.add_option("--write-lanes", bench.write_lanes,
                 "on: the ticker's handoffs reach the io threads in one task per lane "
                 "(ServerOptions::write_lanes); off: one post per connection")
      ->check(CLI::IsMember({"on", "off"}));
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
#if WSREG_BENCH_HAVE_REDIS
  app.add_option("--redis", bench.redis_url,
                 "join a wsreg::Cluster over Redis pub/sub at this URL (redis://host:port)");
#endif
#if WSREG_BENCH_HAVE_NATS
  app.add_option("--nats", bench.nats_url,
                 "join a wsreg::Cluster over NATS at this URL (nats://host:port)");
#endif
  app.add_option("--node-id", bench.node_id,
                 "this node's RegistryOptions::node_id in the cluster, unique per node")
      ->capture_default_str();
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  if (!bench.redis_url.empty() && !bench.nats_url.empty()) {
    std::fprintf(stderr, "wsreg_bench_server: --redis or --nats, not both\n");
    return 2;
  }
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
