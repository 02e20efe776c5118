// Tests of wsreg::Cluster: three nodes (registries in this process, each
// with its own backplane connection) over a redis-server and a nats-server
// that the test starts on ephemeral ports.
#include "wsreg/cluster.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "child_process.hpp"
#include "cluster_support.hpp"
#include "wsreg/redis_backplane.hpp"
#ifdef WSREG_TEST_NATS
#include "wsreg/nats_backplane.hpp"
#endif

namespace wsreg_test {

template <>
struct BackplaneTraits<wsreg::RedisBackplane> {
  static constexpr BrokerProcess::Kind broker = BrokerProcess::Kind::redis;
  static std::unique_ptr<wsreg::RedisBackplane> make(const std::string& url) {
    wsreg::RedisOptions options;
    options.url = url;
    options.reconnect.reconnect_initial = std::chrono::milliseconds(50);
    options.reconnect.reconnect_max = std::chrono::milliseconds(500);
    return std::make_unique<wsreg::RedisBackplane>(options);
  }
};

#ifdef WSREG_TEST_NATS
template <>
struct BackplaneTraits<wsreg::NatsBackplane> {
  static constexpr BrokerProcess::Kind broker = BrokerProcess::Kind::nats;
  static std::unique_ptr<wsreg::NatsBackplane> make(const std::string& url) {
    wsreg::NatsOptions options;
    options.url = url;
    options.reconnect.reconnect_initial = std::chrono::milliseconds(50);
    options.reconnect.reconnect_max = std::chrono::milliseconds(500);
    return std::make_unique<wsreg::NatsBackplane>(options);
  }
};
#endif

using cluster_setups = std::tuple<ClusterSetup<wsreg::ActorPolicy, wsreg::RedisBackplane>,
                                  ClusterSetup<wsreg::MutexPolicy, wsreg::RedisBackplane>
#ifdef WSREG_TEST_NATS
                                  ,
                                  ClusterSetup<wsreg::ActorPolicy, wsreg::NatsBackplane>,
                                  ClusterSetup<wsreg::MutexPolicy, wsreg::NatsBackplane>
#endif
                                  >;

}  // namespace wsreg_test

using namespace std::chrono_literals;
using wsreg_test::BrokerProcess;
using wsreg_test::TestNode;
using wsreg_test::wait_until;

static_assert(wsreg::is_backplane_v<wsreg::RedisBackplane>);
static_assert(!wsreg::is_backplane_v<int>);

TEST_CASE("node_of reads the node id that RegistryOptions::node_id puts in the high bits",
          "[cluster]") {
  wsreg::RegistryOptions options;
  options.node_id = 513;
  wsreg::ConnectionRegistry<wsreg::MutexPolicy> registry(options);
  const auto id = registry.add(std::make_shared<wsreg_test::RecordingSender>());
  CHECK(wsreg::node_of(id) == 513);
  CHECK((id & ((wsreg::ConnectionId{1} << wsreg::node_id_shift) - 1)) == 1);
  CHECK(registry.node_id() == 513);
  wsreg::ConnectionRegistry<wsreg::MutexPolicy> plain;
  CHECK(plain.add(std::make_shared<wsreg_test::RecordingSender>()) == 1);
}

TEST_CASE("a topic's channel name keeps letters, digits, _ and - and escapes every other byte",
          "[cluster]") {
  CHECK(wsreg::detail::encode_topic("room-1_a") == "room-1_a");
  CHECK(wsreg::detail::encode_topic("a.b c*>") == "a%2Eb%20c%2A%3E");
  CHECK(wsreg::detail::encode_topic("") == "%");
  CHECK(wsreg::detail::encode_topic("%") == "%25");
}

TEMPLATE_LIST_TEST_CASE("broadcast on any node reaches every connection of every node exactly once, "
                        "except the one excepted whatever its node",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  wsreg_test::ThreeNodes<TestType> mesh(3);
  REQUIRE(mesh.ready());
  Node& a = mesh.a;
  Node& b = mesh.b;
  Node& c = mesh.c;
  std::vector<Node*>& nodes = mesh.all;

  a.registry().broadcast(wsreg::Payload::text("one"));
  b.registry().broadcast(wsreg::Payload::text("two"), c.id(1));  // except a connection of node 3
  c.registry().broadcast(wsreg::Payload::binary("three"), a.id(0));
  const auto all_arrived = [&] {
    for (Node* node : nodes) {
      for (std::size_t i = 0; i < node->connections(); ++i) {
        const std::size_t expected = 3 - (node == &c && i == 1 ? 1 : 0) - (node == &a && i == 0 ? 1 : 0);
        if (node->texts(i).size() < expected) return false;
      }
    }
    return true;
  };
  REQUIRE(wait_until(all_arrived, 10s));
  for (Node* node : nodes) wsreg_test::drain(node->registry());
  for (Node* node : nodes) {
    for (std::size_t i = 0; i < node->connections(); ++i) {
      INFO("node " << node->registry().node_id() << " connection " << i);
      CHECK(node->count_of(i, "one") == 1);
      CHECK(node->count_of(i, "two") == (node == &c && i == 1 ? 0u : 1u));
      CHECK(node->count_of(i, "three") == (node == &a && i == 0 ? 0u : 1u));
    }
  }
  // The binary opcode travelled with the payload.
  bool saw_binary = false;
  for (const wsreg::Payload& p : b.sender(0).received()) {
    if (p.data() == "three") saw_binary = p.opcode() == wsreg::Opcode::binary;
  }
  CHECK(saw_binary);
  CHECK(a.cluster().stats().broadcasts_out == 1);
  CHECK(a.cluster().stats().broadcasts_in == 2);
}

TEMPLATE_LIST_TEST_CASE("publish reaches a topic's subscribers on every node once, and a node "
                        "without subscribers is not subscribed to the topic's channel",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  wsreg_test::ThreeNodes<TestType> mesh(2);
  REQUIRE(mesh.ready());
  Node& a = mesh.a;
  Node& b = mesh.b;
  Node& c = mesh.c;
  std::vector<Node*>& nodes = mesh.all;
  a.registry().subscribe(a.id(0), "room");
  b.registry().subscribe(b.id(1), "room");
  // Node c has no subscriber of "room".
  REQUIRE(wait_until([&] { return a.cluster().stats().topic_channels == 1 &&
                                  b.cluster().stats().topic_channels == 1; }, 5s));
  CHECK(c.cluster().stats().topic_channels == 0);
  REQUIRE(wsreg_test::wait_for_route(c, "room", b, 1));
  REQUIRE(wsreg_test::wait_for_route(c, "room", a, 0));

  c.registry().publish("room", wsreg::Payload::text("from c"));
  a.registry().publish("room", wsreg::Payload::text("from a"), b.id(1));
  b.registry().publish("room", wsreg::Payload::text("from b"));
  REQUIRE(wait_until([&] { return a.texts(0).size() == 3 && b.texts(1).size() == 2; }, 10s));
  for (Node* node : nodes) wsreg_test::drain(node->registry());
  CHECK(a.count_of(0, "from c") == 1);
  CHECK(a.count_of(0, "from a") == 1);
  CHECK(a.count_of(0, "from b") == 1);
  CHECK(b.count_of(1, "from c") == 1);
  CHECK(b.count_of(1, "from a") == 0);  // excepted, from another node
  CHECK(b.count_of(1, "from b") == 1);
  CHECK(a.texts(1).empty());  // not subscribed
  CHECK(b.texts(0).empty());
  CHECK(c.texts(0).empty());
  CHECK(c.texts(1).empty());
  // c received no publish of "room": its backplane got heartbeats only.
  CHECK(c.cluster().stats().publishes_in == 0);

  // The last local subscriber leaves: the node unsubscribes the channel.
  a.registry().unsubscribe(a.id(0), "room");
  REQUIRE(wait_until([&] { return a.cluster().stats().topic_channels == 0; }, 5s));
}

TEMPLATE_LIST_TEST_CASE("send to an id of another node reaches it, and an unknown id is counted on "
                        "the node that owns it",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  wsreg_test::ThreeNodes<TestType> mesh(1);
  REQUIRE(mesh.ready());
  Node& a = mesh.a;
  Node& b = mesh.b;
  Node& c = mesh.c;

  a.registry().send(b.id(0), wsreg::Payload::text("a to b"));
  c.registry().send(b.id(0), wsreg::Payload::text("c to b"));
  b.registry().send(a.id(0), wsreg::Payload::text("b to a"));
  const wsreg::ConnectionId unknown_on_c = (wsreg::ConnectionId{3} << wsreg::node_id_shift) | 999;
  a.registry().send(unknown_on_c, wsreg::Payload::text("nobody"));
  REQUIRE(wait_until([&] { return b.texts(0).size() == 2 && a.texts(0).size() == 1; }, 10s));
  REQUIRE(wait_until([&] { return c.registry().stats().send_unknown == 1; }, 10s));
  CHECK(b.count_of(0, "a to b") == 1);
  CHECK(b.count_of(0, "c to b") == 1);
  CHECK(a.count_of(0, "b to a") == 1);
  CHECK(c.texts(0).empty());
  CHECK(a.registry().stats().send_unknown == 0);
  CHECK(a.cluster().stats().sends_out == 2);
}

TEMPLATE_LIST_TEST_CASE("publishes from one thread to one topic arrive in order at every "
                        "subscriber of every node",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  wsreg_test::ThreeNodes<TestType> mesh(1, "ticks");
  REQUIRE(mesh.ready());
  Node& a = mesh.a;
  Node& b = mesh.b;
  Node& c = mesh.c;
  std::vector<Node*>& nodes = mesh.all;
  REQUIRE(wsreg_test::wait_for_route(a, "ticks", b, 0));
  REQUIRE(wsreg_test::wait_for_route(a, "ticks", c, 0));
  constexpr int count = 2000;
  std::thread producer([&] {
    for (int i = 0; i < count; ++i) a.registry().publish("ticks", wsreg::Payload::text(std::to_string(i)));
  });
  producer.join();
  REQUIRE(wait_until([&] { return b.texts(0).size() == count && c.texts(0).size() == count; }, 20s));
  for (Node* node : nodes) {
    const auto texts = node->texts(0);
    REQUIRE(texts.size() == count);
    bool in_order = true;
    for (int i = 0; i < count; ++i) in_order = in_order && texts[static_cast<std::size_t>(i)] == std::to_string(i);
    CHECK(in_order);
  }
  CHECK(b.cluster().stats().gaps == 0);
}

TEMPLATE_LIST_TEST_CASE("cluster presence counts subscribers and connections on every node, and a "
                        "node that leaves drops out of the counts",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  BrokerProcess broker(wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker);
  REQUIRE(broker.ready());
  Node a(1, broker.url()), b(2, broker.url());
  auto c = std::make_unique<Node>(3, broker.url());
  std::vector<Node*> nodes{&a, &b, c.get()};
  for (Node* node : nodes) {
    for (int i = 0; i < 4; ++i) node->add();
  }
  a.registry().subscribe(a.id(0), "lobby");
  b.registry().subscribe(b.id(2), "lobby");
  b.registry().subscribe(b.id(3), "lobby");
  c->registry().subscribe(c->id(1), "lobby");
  REQUIRE(wsreg_test::wait_for_mesh(nodes));
  REQUIRE(wait_until([&] { return a.cluster().connection_count() == 12; }, 5s));

  for (Node* node : nodes) {
    node->cluster().set_presence_info([](wsreg::ConnectionId id) {
      return "user " + std::to_string(wsreg::node_of(id)) + "/" + std::to_string(id & 0xFF);
    });
  }
  wsreg::ClusterPresence presence = a.cluster().presence("lobby");
  CHECK(presence.complete);
  CHECK(presence.info == std::vector<std::string>{"user 1/1", "user 2/3", "user 2/4", "user 3/2"});
  CHECK(presence.nodes_asked == 2);
  CHECK(presence.nodes_answered == 2);
  CHECK(presence.ids == std::vector<wsreg::ConnectionId>{a.id(0), b.id(2), b.id(3), c->id(1)});
  CHECK(b.cluster().subscriber_count("lobby") == 4);
  CHECK(b.cluster().subscriber_count("nobody here") == 0);

  c.reset();  // leaves: tells the others at once
  REQUIRE(wait_until([&] { return a.cluster().nodes().size() == 1; }, 5s));
  CHECK(a.cluster().connection_count() == 8);
  presence = a.cluster().presence("lobby");
  CHECK(presence.complete);
  CHECK(presence.ids == std::vector<wsreg::ConnectionId>{a.id(0), b.id(2), b.id(3)});
}

TEMPLATE_LIST_TEST_CASE("after the broker is killed and restarted on the same port, delivery "
                        "resumes on every node within 2 s, and the outage is counted as lost "
                        "and seen as a gap",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  wsreg_test::ThreeNodes<TestType> mesh(1, "feed");
  REQUIRE(mesh.ready());
  Node& a = mesh.a;
  Node& b = mesh.b;
  Node& c = mesh.c;
  BrokerProcess& broker = mesh.broker;
  std::atomic<std::uint64_t> gaps_seen{0};
  b.cluster().set_gap_handler([&](const wsreg::GapEvent& gap) {
    if (!gap.broadcast && gap.topic == "feed" && gap.node_id == 1) gaps_seen += gap.missed;
  });
  REQUIRE(wsreg_test::wait_for_route(a, "feed", b, 0));
  REQUIRE(wsreg_test::wait_for_route(a, "feed", c, 0));
  a.registry().publish("feed", wsreg::Payload::text("before"));
  REQUIRE(wait_until([&] { return b.count_of(0, "before") == 1 && c.count_of(0, "before") == 1; }, 5s));

  broker.kill();
  REQUIRE(wait_until([&] { return !a.cluster().connected() && !b.cluster().connected(); }, 10s));
  a.registry().publish("feed", wsreg::Payload::text("during"));  // lost: nobody is connected
  // Lost at once (PublishResult::lost), or, when the client library had
  // not yet told the backplane of the loss, when the backplane's thread
  // found the connection gone: BackplaneStats::publish_lost counts both.
  CHECK(wait_until([&] { return a.cluster().stats().backplane.publish_lost >= 1; }, 5s));
  // Local delivery goes on while the backplane is down.
  REQUIRE(wait_until([&] { return a.count_of(0, "during") == 1; }, 5s));

  REQUIRE(broker.start());
  const auto restarted = std::chrono::steady_clock::now();
  // Delivery resumes: publish until every other node gets one.
  bool resumed = false;
  int sent = 0;
  while (!resumed && std::chrono::steady_clock::now() - restarted < 10s) {
    a.registry().publish("feed", wsreg::Payload::text("after " + std::to_string(sent++)));
    resumed = wait_until([&] { return b.count_of(0, "after " + std::to_string(sent - 1)) == 1 &&
                                      c.count_of(0, "after " + std::to_string(sent - 1)) == 1; },
                         20ms);
  }
  const auto took = std::chrono::steady_clock::now() - restarted;
  REQUIRE(resumed);
  INFO("delivery resumed "
       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after the restart");
  CHECK(took < 2s);
  CHECK(a.count_of(0, "during") == 1);
  CHECK(b.count_of(0, "during") == 0);
  CHECK(a.cluster().stats().backplane.reconnects >= 1);
  CHECK(b.cluster().stats().backplane.reconnects >= 1);
  // b missed at least "during" (and the publishes made before a reconnected).
  CHECK(wait_until([&] { return gaps_seen.load() >= 1; }, 5s));
  CHECK(b.cluster().stats().gaps >= 1);
}

TEMPLATE_LIST_TEST_CASE("a node with 10,000 topics subscribes all of them again after the broker "
                        "restarts",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  BrokerProcess broker(wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker);
  REQUIRE(broker.ready());
  Node a(1, broker.url()), b(2, broker.url());
  std::vector<Node*> nodes{&a, &b};
  a.add();
  b.add();
  constexpr int topics = 10000;
  for (int t = 0; t < topics; ++t) b.registry().subscribe(b.id(0), "t" + std::to_string(t));
  REQUIRE(wsreg_test::wait_for_mesh(nodes));
  REQUIRE(wait_until([&] { return b.cluster().stats().topic_channels == topics; }, 10s));
  REQUIRE(wsreg_test::wait_for_route(a, "t9999", b, 0));

  broker.kill();
  REQUIRE(wait_until([&] { return !b.cluster().connected(); }, 10s));
  REQUIRE(broker.start());
  REQUIRE(wait_until([&] { return a.cluster().connected() && b.cluster().connected(); }, 10s));
  // The broker confirms the 10,003 channels (the topics, and the
  // broadcast, control and node channels) again.
  REQUIRE(wait_until([&] { return b.cluster().stats().backplane.subscribed == topics + 3; }, 10s));
  REQUIRE(wsreg_test::wait_for_route(a, "t0", b, 0, 5s));
  // Every topic's channel is subscribed again: one publish to each arrives.
  const std::size_t before = b.texts(0).size();
  for (int t = 0; t < topics; ++t) {
    a.registry().publish("t" + std::to_string(t), wsreg::Payload::text("x" + std::to_string(t)));
  }
  const bool all = wait_until([&] { return b.texts(0).size() == before + topics; }, 30s);
  const wsreg::ClusterStats a_stats = a.cluster().stats();
  const wsreg::ClusterStats b_stats = b.cluster().stats();
  INFO("b got " << b.texts(0).size() - before << " of " << topics << "; a published "
                << a_stats.publishes_out << ", dropped " << a_stats.publications_dropped << ", lost "
                << a_stats.publications_lost << ", backplane published " << a_stats.backplane.published
                << "; b received " << b_stats.backplane.received << ", publishes in " << b_stats.publishes_in);
  CHECK(all);
  CHECK(b_stats.topic_channels == topics);
}

TEMPLATE_LIST_TEST_CASE("a stalled broker never blocks a publishing caller, and every publication "
                        "is either queued, dropped or lost",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  BrokerProcess broker(wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker);
  REQUIRE(broker.ready());
  Node a(1, broker.url()), b(2, broker.url());
  std::vector<Node*> nodes{&a, &b};
  REQUIRE(wsreg_test::wait_for_mesh(nodes));
  broker.pause(true);
  const std::string big(4 * 1024, 'x');
  const auto began = std::chrono::steady_clock::now();
  constexpr int count = 20000;  // 80 MiB: more than the queue holds
  for (int i = 0; i < count; ++i) a.registry().broadcast(wsreg::Payload::text(big));
  const auto took = std::chrono::steady_clock::now() - began;
  broker.pause(false);
  const wsreg::ClusterStats stats = a.cluster().stats();
  INFO("20,000 broadcasts took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                 << " ms with the broker stopped");
  CHECK(took < 10s);
  CHECK(stats.broadcasts_out + stats.publications_dropped + stats.publications_lost == count);
  CHECK(stats.publications_dropped > 0);
}

TEMPLATE_LIST_TEST_CASE("a node killed with SIGKILL leaves the cluster's connection count and "
                        "presence within node_timeout plus heartbeat_interval",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  BrokerProcess broker(wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker);
  REQUIRE(broker.ready());
  const char* flag = wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker ==
                             BrokerProcess::Kind::redis
                         ? "--redis"
                         : "--nats";
  std::vector<std::unique_ptr<wsreg_test::ChildProcess>> processes;
  for (int n = 2; n <= 4; ++n) {
    processes.push_back(std::make_unique<wsreg_test::ChildProcess>(std::vector<std::string>{
        WSREG_CLUSTER_NODE, "--node", std::to_string(n), flag, broker.url(), "--connections",
        std::to_string(n), "--topic", "lobby"}));
    REQUIRE(processes.back()->started());
    REQUIRE(processes.back()->read_line(15s).rfind("ready", 0) == 0);
  }
  Node observer(1, broker.url());
  observer.add();
  observer.registry().subscribe(observer.id(0), "lobby");
  REQUIRE(wait_until([&] { return observer.cluster().nodes().size() == 3; }, 10s));
  REQUIRE(wait_until([&] { return observer.cluster().connection_count() == 1 + 2 + 3 + 4; }, 5s));
  CHECK(observer.cluster().subscriber_count("lobby") == 10);

  ::kill(processes[2]->pid(), SIGKILL);  // node 4, with 4 connections
  const auto killed = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] { return observer.cluster().nodes().size() == 2; }, 10s));
  const auto took = std::chrono::steady_clock::now() - killed;
  INFO("node 4 left the counts "
       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after SIGKILL");
  CHECK(took < wsreg_test::quick_cluster_options().node_timeout +
                   wsreg_test::quick_cluster_options().heartbeat_interval + 500ms);
  CHECK(observer.cluster().connection_count() == 1 + 2 + 3);
  const wsreg::ClusterPresence presence = observer.cluster().presence("lobby");
  CHECK(presence.complete);
  CHECK(presence.ids.size() == 6);
}

TEMPLATE_LIST_TEST_CASE("three node processes: broadcast, publish, send to an id and except across "
                        "them deliver exactly the expected messages, each once",
                        "[cluster]", wsreg_test::cluster_setups) {
  // Only the backplane matters here (the node processes run MutexPolicy).
  if (!std::is_same_v<typename TestType::Policy, wsreg::MutexPolicy>) return;
  BrokerProcess broker(wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker);
  REQUIRE(broker.ready());
  const char* flag = wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker ==
                             BrokerProcess::Kind::redis
                         ? "--redis"
                         : "--nats";
  std::vector<std::unique_ptr<wsreg_test::ChildProcess>> nodes;
  std::string output[3];  // what each node printed so far (one read may hold several lines)
  const auto printed = [&](std::size_t n, const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (output[n].find(what) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      output[n] += nodes[n]->read_line(1s);
    }
    return output[n].find(what) != std::string::npos;
  };
  for (int n = 1; n <= 3; ++n) {
    nodes.push_back(std::make_unique<wsreg_test::ChildProcess>(std::vector<std::string>{
        WSREG_CLUSTER_NODE, "--node", std::to_string(n), flag, broker.url(), "--script"}));
    REQUIRE(nodes.back()->started());
  }
  for (std::size_t n = 0; n < 3; ++n) REQUIRE(printed(n, "subscribed"));
  for (auto& node : nodes) ::kill(node->pid(), SIGUSR1);
  // Node n: connections 1 and 2 in "t"; the next node of n is n % 3 + 1.
  const std::vector<std::string> expected[3] = {
      // node 1: b3 excepts its connection 1, p2 its connection 2, s3 reaches its connection 3
      {"got 1 b1,b2,p1,p2,p3", "got 2 b1,b2,b3,p1,p3", "got 3 b1,b2,b3,s3", "unknown 1", "done"},
      {"got 1 b2,b3,p1,p2,p3", "got 2 b1,b2,b3,p1,p2", "got 3 b1,b2,b3,s1", "unknown 1", "done"},
      {"got 1 b1,b3,p1,p2,p3", "got 2 b1,b2,b3,p2,p3", "got 3 b1,b2,b3,s2", "unknown 1", "done"},
  };
  for (std::size_t n = 0; n < 3; ++n) {
    REQUIRE(printed(n, "done\n"));
    std::vector<std::string> lines;
    const std::string& text = output[n];
    for (std::size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
      const std::string line = text.substr(at, end - at);
      if (line.rfind("ready", 0) != 0 && line.rfind("subscribed", 0) != 0) lines.push_back(line);
    }
    INFO("node " << n + 1);
    CHECK(lines == expected[n]);
  }
}

TEMPLATE_LIST_TEST_CASE("garbage on the cluster's channels is counted as malformed and harms "
                        "nothing: the nodes go on delivering",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  wsreg_test::ThreeNodes<TestType> mesh(1, "room");
  REQUIRE(mesh.ready());
  Node& a = mesh.a;
  Node& b = mesh.b;
  REQUIRE(wsreg_test::wait_for_route(a, "room", b, 0));
  // An attacker with access to the broker publishes on every channel.
  auto attacker = wsreg_test::BackplaneTraits<typename TestType::Backplane>::make(mesh.broker.url());
  attacker->start(wsreg::BackplaneHandlers{});
  REQUIRE(wait_until([&] { return attacker->connected(); }, 10s));
  const std::vector<std::string> garbage = {
      "", "\n", "b", "b\n", "b 1 2 3 4 1", "b x 1 1 0 1\npayload", "b 2 1 1 0 9\nbad opcode",
      "b 99999 1 1 0 1\nnode id too large", "p 2 1 1 0 1 999999\nroom", "p 2 1 1 0 1 -1\nroom",
      "s 2 1\n", "s 2 281474976710657 1\nnot an id of node 1's? it is: node 1, n 1",
      "h 2 1 18446744073709551615\n", "x 2\n", "q 2\n", "r 2 1\n1 5 ab", "r 2 1\n1 2 ab 7",
      "r 2 1\n1 x ab ", "z 1 2 3\n", std::string(1 << 20, 'b'), std::string("b 2 1 1 0 1\n\0\0", 15)};
  const std::vector<std::string> channels = {"wsreg.b", "wsreg.c", "wsreg.n.1", "wsreg.n.2",
                                             "wsreg.t.room"};
  for (int round = 0; round < 20; ++round) {
    for (const std::string& channel : channels) {
      for (const std::string& message : garbage) attacker->publish(channel, message);
    }
  }
  // Random bytes too.
  std::uint64_t seed = 12345;
  for (int i = 0; i < 2000; ++i) {
    std::string message(static_cast<std::size_t>(seed % 200), '\0');
    for (char& ch : message) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      ch = static_cast<char>(seed >> 56);
    }
    attacker->publish(channels[static_cast<std::size_t>(i) % channels.size()], message);
  }
  REQUIRE(wait_until([&] { return a.cluster().stats().malformed > 100 && b.cluster().stats().malformed > 100; },
                     20s));
  // The nodes still deliver, each message once.
  a.registry().publish("room", wsreg::Payload::text("after the garbage"));
  REQUIRE(wait_until([&] { return b.count_of(0, "after the garbage") == 1; }, 10s));
  a.registry().broadcast(wsreg::Payload::text("broadcast after"));
  REQUIRE(wait_until([&] { return b.count_of(0, "broadcast after") == 1; }, 10s));
  CHECK(a.cluster().connected());
  CHECK(b.cluster().connected());
  attacker->stop();
}

TEMPLATE_LIST_TEST_CASE("a publisher that forgets its topics' numbering (max_topic_sequences) "
                        "starts again at 1, which is no gap",
                        "[cluster]", wsreg_test::cluster_setups) {
  using Node = TestNode<TestType>;
  BrokerProcess broker(wsreg_test::BackplaneTraits<typename TestType::Backplane>::broker);
  REQUIRE(broker.ready());
  wsreg::ClusterOptions small = wsreg_test::quick_cluster_options();
  small.max_topic_sequences = 4;
  Node a(1, broker.url(), small), b(2, broker.url());
  std::vector<Node*> nodes{&a, &b};
  b.add();
  b.registry().subscribe(b.id(0), "kept");
  REQUIRE(wsreg_test::wait_for_mesh(nodes));
  REQUIRE(wsreg_test::wait_for_route(a, "kept", b, 0));
  for (int round = 0; round < 5; ++round) {
    a.registry().publish("kept", wsreg::Payload::text("k" + std::to_string(round)));
    // Five other topics: more than a numbers at once, so it forgets "kept".
    for (int t = 0; t < 5; ++t) a.registry().publish("other" + std::to_string(t), wsreg::Payload::text("x"));
  }
  REQUIRE(wait_until([&] { return b.texts(0).size() == 5; }, 10s));
  CHECK(b.cluster().stats().gaps == 0);
}
