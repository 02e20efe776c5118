// cluster_node: one cluster node as a process of its own, for the tests
// of test_cluster that run nodes as processes. A registry with
// --connections connections (senders that record what they get), each
// subscribed to --topic, joined to a cluster over --redis URL or --nats
// URL. Prints "ready <node>" once connected to the backplane, then runs
// until killed (the test's ChildProcess kills it at the latest when the
// test ends).
//   cluster_node --node 7 --redis redis://127.0.0.1:6379 --connections 5 --topic t
//
// --script: one of three nodes 1, 2, 3, each with 3 connections, the first
// two subscribed to "t". Prints "subscribed <node>" once the broker has
// confirmed its channels, waits for SIGUSR1, then: broadcasts "b<node>"
// except connection 1 of the next node (1 -> 2 -> 3 -> 1), publishes
// "p<node>" to "t" except connection 2 of the previous node, sends
// "s<node>" to connection 3 of the next node and "u<node>" to an id the
// next node never assigned. Once its connections have the 14 deliveries
// the other nodes' scripts make, and nothing more came for 300 ms, prints
// "got <connection> <texts, sorted, comma-separated>" per connection,
// "unknown <send_unknown>" and "done".
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>

#include "wsreg/cluster.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"
#include "wsreg/redis_backplane.hpp"
#ifdef WSREG_TEST_NATS
#include "wsreg/nats_backplane.hpp"
#endif

namespace {

std::atomic<std::uint64_t> delivered{0};

class RecordingSender final : public wsreg::Sender {
 public:
  wsreg::SendResult send(const wsreg::Payload& payload) noexcept override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      texts_.emplace_back(payload.data());
    }
    delivered.fetch_add(1, std::memory_order_relaxed);
    return wsreg::SendResult::sent;
  }

  std::string sorted() const {
    std::vector<std::string> texts;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      texts = texts_;
    }
    std::sort(texts.begin(), texts.end());
    std::string out;
    for (const std::string& t : texts) out += (out.empty() ? "" : ",") + t;
    return out;
  }

 private:
  mutable std::mutex mutex_;  // guards texts_
  std::vector<std::string> texts_;
};

wsreg::ConnectionId id_of(std::uint16_t node, std::uint64_t n) {
  return (static_cast<wsreg::ConnectionId>(node) << wsreg::node_id_shift) | n;
}

template <class Registry, class Cluster>
int script(std::uint16_t node, Registry& registry, Cluster& cluster,
           const std::vector<std::shared_ptr<RecordingSender>>& senders) {
  while (cluster.stats().backplane.subscribed < cluster.stats().backplane.channels ||
         cluster.nodes().size() < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a state
  }
  std::printf("subscribed %u\n", static_cast<unsigned>(node));
  std::fflush(stdout);
  sigset_t go;
  sigemptyset(&go);
  sigaddset(&go, SIGUSR1);
  int signal = 0;
  sigwait(&go, &signal);
  const auto next = static_cast<std::uint16_t>(node % 3 + 1);
  const auto previous = static_cast<std::uint16_t>((node + 1) % 3 + 1);
  const std::string me = std::to_string(node);
  registry.broadcast(wsreg::Payload::text("b" + me), id_of(next, 1));
  registry.publish("t", wsreg::Payload::text("p" + me), id_of(previous, 2));
  registry.send(id_of(next, 3), wsreg::Payload::text("s" + me));
  registry.send(id_of(next, 999), wsreg::Payload::text("u" + me));
  // 3 broadcasts but one, 3 publishes to 2 subscribers but one, one send.
  constexpr std::uint64_t expected = 3 * 3 - 1 + 3 * 2 - 1 + 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (delivered.load() < expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a count
  }
  // A quiet period in which a duplicate would show.
  for (std::uint64_t seen = delivered.load();;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::uint64_t now = delivered.load();
    if (now == seen) break;
    seen = now;
  }
  for (std::size_t i = 0; i < senders.size(); ++i) {
    std::printf("got %zu %s\n", i + 1, senders[i]->sorted().c_str());
  }
  std::printf("unknown %llu\ndone\n", static_cast<unsigned long long>(registry.stats().send_unknown));
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // until killed
}

template <class Backplane, class Options>
int run(std::uint16_t node, const std::string& url, int connections, const std::string& topic,
        bool scripted) {
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
  std::vector<std::shared_ptr<RecordingSender>> senders;
  for (int i = 0; i < (scripted ? 3 : connections); ++i) {
    senders.push_back(std::make_shared<RecordingSender>());
    const wsreg::ConnectionId id = registry.add(senders.back());
    if (!scripted || i < 2) registry.subscribe(id, scripted ? std::string("t") : topic);
  }
  while (!cluster.connected()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::printf("ready %u\n", static_cast<unsigned>(node));
  std::fflush(stdout);
  if (scripted) return script(node, registry, cluster, senders);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // until killed
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t node = 1;
  std::string redis, nats, topic = "t";
  int connections = 1;
  bool scripted = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--script") scripted = true;
  }
  // SIGUSR1 is the script's start signal: blocked in every thread, taken by sigwait.
  sigset_t go;
  sigemptyset(&go);
  sigaddset(&go, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &go, nullptr);
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--script") {
      --i;  // takes no value
      continue;
    }
    if (flag == "--node") node = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
    if (flag == "--redis") redis = argv[i + 1];
    if (flag == "--nats") nats = argv[i + 1];
    if (flag == "--connections") connections = std::atoi(argv[i + 1]);
    if (flag == "--topic") topic = argv[i + 1];
  }
  if (!redis.empty()) {
    return run<wsreg::RedisBackplane, wsreg::RedisOptions>(node, redis, connections, topic, scripted);
  }
#ifdef WSREG_TEST_NATS
  if (!nats.empty()) {
    return run<wsreg::NatsBackplane, wsreg::NatsOptions>(node, nats, connections, topic, scripted);
  }
#endif
  std::fprintf(stderr, "usage: cluster_node --node N (--redis URL | --nats URL) [--connections K] [--topic T]\n");
  return 2;
}
