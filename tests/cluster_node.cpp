// cluster_node: one cluster node as a process of its own, for the tests
// that SIGKILL a node (test_cluster). A registry with --connections
// connections (senders that count deliveries), each subscribed to --topic,
// joined to a cluster over --redis URL or --nats URL. Prints "ready <node>"
// once connected to the backplane, then runs until killed (the test's
// ChildProcess kills it at the latest when the test ends).
//   cluster_node --node 7 --redis redis://127.0.0.1:6379 --connections 5 --topic t
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "wsreg/cluster.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"
#include "wsreg/redis_backplane.hpp"
#ifdef WSREG_TEST_NATS
#include "wsreg/nats_backplane.hpp"
#endif

namespace {

std::atomic<std::uint64_t> delivered{0};

class CountingSender final : public wsreg::Sender {
 public:
  wsreg::SendResult send(const wsreg::Payload&) noexcept override {
    delivered.fetch_add(1, std::memory_order_relaxed);
    return wsreg::SendResult::sent;
  }
};

template <class Backplane, class Options>
int run(std::uint16_t node, const std::string& url, int connections, const std::string& topic) {
  wsreg::RegistryOptions registry_options;
  registry_options.node_id = node;
  wsreg::ConnectionRegistry<wsreg::MutexPolicy> registry(registry_options);
  Options options;
  options.url = url;
  Backplane backplane(options);
  wsreg::ClusterOptions cluster_options;
  cluster_options.heartbeat_interval = std::chrono::milliseconds(100);
  cluster_options.node_timeout = std::chrono::milliseconds(800);
  wsreg::Cluster cluster(registry, backplane, cluster_options);
  for (int i = 0; i < connections; ++i) {
    const wsreg::ConnectionId id = registry.add(std::make_shared<CountingSender>());
    registry.subscribe(id, topic);
  }
  while (!cluster.connected()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::printf("ready %u\n", static_cast<unsigned>(node));
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // until killed
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t node = 1;
  std::string redis, nats, topic = "t";
  int connections = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--node") node = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
    if (flag == "--redis") redis = argv[i + 1];
    if (flag == "--nats") nats = argv[i + 1];
    if (flag == "--connections") connections = std::atoi(argv[i + 1]);
    if (flag == "--topic") topic = argv[i + 1];
  }
  if (!redis.empty()) return run<wsreg::RedisBackplane, wsreg::RedisOptions>(node, redis, connections, topic);
#ifdef WSREG_TEST_NATS
  if (!nats.empty()) return run<wsreg::NatsBackplane, wsreg::NatsOptions>(node, nats, connections, topic);
#endif
  std::fprintf(stderr, "usage: cluster_node --node N (--redis URL | --nats URL) [--connections K] [--topic T]\n");
  return 2;
}
