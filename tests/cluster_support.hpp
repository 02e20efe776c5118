// tests/cluster_support.hpp: cluster nodes in one test process, each with its own backplane connection.
#ifndef WSREG_TESTS_CLUSTER_SUPPORT_HPP
#define WSREG_TESTS_CLUSTER_SUPPORT_HPP

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "broker_process.hpp"
#include "support.hpp"
#include "wsreg/actor_policy.hpp"
#include "wsreg/cluster.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"

namespace wsreg_test {

/// How a test builds a backplane of type B for a broker URL, and which broker it needs.
template <class B>
struct BackplaneTraits;

/// One cell of the test matrix: a registry policy and a backplane.
template <class PolicyT, class BackplaneT>
struct ClusterSetup {
  using Policy = PolicyT;
  using Backplane = BackplaneT;
};

/// Short heartbeats and timeouts, so that tests about node liveness are quick.
inline wsreg::ClusterOptions quick_cluster_options() {
  wsreg::ClusterOptions options;
  options.heartbeat_interval = std::chrono::milliseconds(100);
  options.node_timeout = std::chrono::milliseconds(800);
  options.presence_timeout = std::chrono::milliseconds(2000);
  return options;
}

/// A registry, its backplane and its Cluster: one node. Connections are
/// RecordingSenders. Not thread-safe (the test's main thread drives it).
template <class Setup>
class TestNode {
 public:
  using Registry = wsreg::ConnectionRegistry<typename Setup::Policy>;
  using Backplane = typename Setup::Backplane;
  using Cluster = wsreg::Cluster<Registry, Backplane>;

  TestNode(std::uint16_t node_id, const std::string& url,
           wsreg::ClusterOptions options = quick_cluster_options())
      : registry_(registry_options(node_id)),
        backplane_(BackplaneTraits<Backplane>::make(url)),
        cluster_(std::make_unique<Cluster>(registry_, *backplane_, std::move(options))) {}

  ~TestNode() {
    cluster_.reset();  // before the registry and backplane, as documented
  }

  /// Adds a connection; returns its id.
  wsreg::ConnectionId add() {
    auto sender = std::make_shared<RecordingSender>();
    const wsreg::ConnectionId id = registry_.add(sender);
    senders_.push_back(sender);
    ids_.push_back(id);
    return id;
  }

  Registry& registry() { return registry_; }
  Cluster& cluster() { return *cluster_; }
  Backplane& backplane() { return *backplane_; }
  wsreg::ConnectionId id(std::size_t i) const { return ids_.at(i); }
  const RecordingSender& sender(std::size_t i) const { return *senders_.at(i); }
  std::size_t connections() const { return senders_.size(); }

  /// The texts connection `i` received that are not probes.
  std::vector<std::string> texts(std::size_t i) const {
    std::vector<std::string> out;
    for (const std::string& text : texts_of(*senders_.at(i))) {
      if (text.rfind("probe", 0) != 0) out.push_back(text);
    }
    return out;
  }

  /// How many times connection `i` received `text`.
  std::size_t count_of(std::size_t i, const std::string& text) const {
    std::size_t n = 0;
    for (const std::string& t : texts_of(*senders_.at(i))) n += t == text ? 1 : 0;
    return n;
  }

  /// True when connection `i` received any probe.
  bool got_probe(std::size_t i) const {
    for (const std::string& t : texts_of(*senders_.at(i))) {
      if (t.rfind("probe", 0) == 0) return true;
    }
    return false;
  }

 private:
  static wsreg::RegistryOptions registry_options(std::uint16_t node_id) {
    wsreg::RegistryOptions options;
    options.node_id = node_id;
    return options;
  }

  Registry registry_;
  std::unique_ptr<Backplane> backplane_;
  std::unique_ptr<Cluster> cluster_;
  std::vector<std::shared_ptr<RecordingSender>> senders_;
  std::vector<wsreg::ConnectionId> ids_;
};

/// Waits until every node is connected and knows every other one (their
/// heartbeats arrive: the control channel's subscription works).
template <class Node>
bool wait_for_mesh(const std::vector<Node*>& nodes,
                   std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  return wait_until(
      [&] {
        for (Node* node : nodes) {
          if (!node->cluster().connected() || node->cluster().nodes().size() != nodes.size() - 1) {
            return false;
          }
        }
        return true;
      },
      timeout);
}

/// A broker of the setup's kind and three nodes on it (node ids 1, 2, 3),
/// each with `connections` connections; with a `topic`, each node's first
/// connection subscribes to it. ready() waits for the mesh.
template <class Setup>
struct ThreeNodes {
  using Node = TestNode<Setup>;

  explicit ThreeNodes(std::size_t connections, const std::string& topic = std::string())
      : broker(BackplaneTraits<typename Setup::Backplane>::broker),
        a(1, broker.url()),
        b(2, broker.url()),
        c(3, broker.url()),
        all{&a, &b, &c} {
    for (Node* node : all) {
      for (std::size_t i = 0; i < connections; ++i) node->add();
      if (!topic.empty()) node->registry().subscribe(node->id(0), topic);
    }
  }

  /// True once the broker runs and every node is connected and knows the others.
  bool ready() { return broker.ready() && wait_for_mesh(all); }

  BrokerProcess broker;
  Node a, b, c;
  std::vector<Node*> all;
};

/// Publishes probes to `topic` from `from` until connection `i` of `to` has
/// one: the topic's channel subscription of `to` is then in place at the
/// broker (a broker confirms a subscription asynchronously).
template <class From, class To>
bool wait_for_route(From& from, const std::string& topic, To& to, std::size_t i,
                    std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    from.registry().publish(topic, wsreg::Payload::text("probe"));
    if (wait_until([&] { return to.got_probe(i); }, std::chrono::milliseconds(100))) return true;
  }
  return false;
}

}  // namespace wsreg_test

#endif  // WSREG_TESTS_CLUSTER_SUPPORT_HPP
