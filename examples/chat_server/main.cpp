// chat_server: chat rooms in the browser. Serves its page at GET / and
// speaks a small JSON protocol over WebSocket on the same port (see
// README.md beside this file). Open http://127.0.0.1:9002/ in two tabs
// (https:// with --tls-cert and --tls-key: the page then speaks wss://).
// Usage: chat_server [--address 0.0.0.0] [--port 9002] [--threads 1] [--policy actor|mutex]
//                    [--tls-cert cert.pem --tls-key key.pem]
//                    [--redis redis://127.0.0.1:6379 | --nats nats://127.0.0.1:4222] [--node-id 1]
// With --redis or --nats, several chat servers (each its own --node-id) are
// one chat: rooms, notices and member lists span them (cluster_roster.hpp).
//
// The files: protocol.hpp (the JSON messages and their limits), chat.hpp
// (rooms over the registry's topics), admit.hpp (the handshake: ?nick=),
// page.hpp and index.html (the page).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "admit.hpp"
#include "chat.hpp"
#include "common/example_options.hpp"
#include "common/make_server.hpp"
#include "common/wait_for_signal.hpp"
#include "page.hpp"
#include "protocol.hpp"
#if WSREG_CHAT_CLUSTER
#include "cluster_roster.hpp"
#include "wsreg/nats_backplane.hpp"
#include "wsreg/redis_backplane.hpp"
#endif

namespace {

/// The cluster flags: at most one of --redis and --nats.
struct ClusterArguments {
  std::string redis;
  std::string nats;
  std::uint16_t node_id = 0;
};

/// Calls `run(roster)` with no roster (one server), or with the registry
/// joined to a cluster over Redis or NATS and a roster over it. The
/// backplane, cluster and roster are destroyed after `run` returns (after
/// the server and the rooms it made), before the registry.
template <class Registry, class Run>
int with_cluster(Registry& registry, const ClusterArguments& cluster_args, Run run) {
#if WSREG_CHAT_CLUSTER
  const auto joined = [&](auto& backplane) {
    wsreg::Cluster cluster(registry, backplane);
    chat::ClusterRoster roster(registry, cluster);
    std::printf("chat_server: node %u of a cluster over %s\n", static_cast<unsigned>(registry.node_id()),
                std::string(backplane.name()).c_str());
    return run(static_cast<chat::Roster*>(&roster));
  };
  if (!cluster_args.redis.empty()) {
    wsreg::RedisOptions options;
    options.url = cluster_args.redis;
    wsreg::RedisBackplane backplane(options);
    return joined(backplane);
  }
  if (!cluster_args.nats.empty()) {
    wsreg::NatsOptions options;
    options.url = cluster_args.nats;
    wsreg::NatsBackplane backplane(options);
    return joined(backplane);
  }
#else
  static_cast<void>(registry);
  if (!cluster_args.redis.empty() || !cluster_args.nats.empty()) {
    std::fprintf(stderr, "chat_server: built without hiredis and libnats: no --redis or --nats\n");
    return 2;
  }
#endif
  return run(static_cast<chat::Roster*>(nullptr));
}

template <class Policy>
int run(examples::StopSignals& signals, const examples::ServerArguments& args,
        const ClusterArguments& cluster_args) {
  // Declared in this order so they are destroyed server first (its last
  // connections leave their rooms while the rooms still exist), then the
  // rooms, then (with a cluster) the roster, cluster and backplane, then
  // the registry.
  wsreg::RegistryOptions registry_options;
  registry_options.node_id = cluster_args.node_id;
  wsreg::ConnectionRegistry<Policy, chat::ChatUser> registry(registry_options);
  return with_cluster(registry, cluster_args, [&](chat::Roster* roster) {
    chat::ChatRooms<Policy> rooms(registry);
    rooms.set_roster(roster);

    wsreg::wspp::ServerOptions options;
    options.threads = args.threads;
    options.max_message_size = chat::max_frame_bytes;
    return examples::with_server(registry, args, options, [&](auto& server) {

      server.set_http_handler(chat::serve_page);
      // ws://host/?nick=ann opens with the nick "ann", checked here before the
      // connection is registered: a bad one is refused with 400 and never joins
      // anything. Without ?nick= the nick comes with the first join, as before.
      server.set_handshake_handler(chat::admit<chat::ChatUser>);
      server.set_message_handler([&rooms](wsreg::ConnectionId id, wsreg::Payload frame) {
        rooms.on_message(id, frame);
      });
      // No open or close handler: a new connection has its ?nick= (or none)
      // and no room; a closed one leaves its rooms through the presence handler.

      if (!examples::listen_and_report(server, args, "chat_server")) return 1;

      signals.wait();
      server.shutdown(std::chrono::seconds(5)).wait();
      std::printf("chat_server: stopped\n");
      return 0;
    });
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg chat server: rooms over topics, with a browser page at /"};
  examples::ServerArguments args;
  args.add_to(app);
  ClusterArguments cluster_args;
  auto* redis = app.add_option("--redis", cluster_args.redis,
                               "join the chat servers on this Redis (redis://host:port) into one chat");
  auto* nats = app.add_option("--nats", cluster_args.nats,
                              "join the chat servers on this NATS server (nats://host:port) into one chat");
  redis->excludes(nats);
  app.add_option("--node-id", cluster_args.node_id,
                 "this server's node number in the cluster, unique per server (0-65535)")
      ->capture_default_str();
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  examples::StopSignals signals;  // before any thread and before the port is printed
  return examples::with_policy(args.policy, [&](auto tag) {
    return run<typename decltype(tag)::type>(signals, args, cluster_args);
  });
}
