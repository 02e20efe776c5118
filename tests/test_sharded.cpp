// What ShardedPolicy adds to the registry tests (which run over it too):
// the shards themselves. The header under test comes first, so it is proven
// to stand alone.
#include "wsreg/sharded_policy.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"
#include "wsreg/wsreg.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::CountingSender;

namespace {

using Ids = std::vector<ConnectionId>;

static_assert(wsreg::is_registry_policy_v<wsreg::ShardedPolicy<>>);
static_assert(wsreg::ShardedPolicy<>::shard_count == 4);  // the default: 4 actors

// Adds connections until it has one in each of two different shards.
template <class Registry, class Policy>
std::array<ConnectionId, 2> two_shards(Registry& registry) {
  const ConnectionId first = registry.add(std::make_shared<CountingSender>());
  for (;;) {
    const ConnectionId next = registry.add(std::make_shared<CountingSender>());
    if (Policy::shard_of(next) != Policy::shard_of(first)) return {first, next};
  }
}

}  // namespace

TEMPLATE_TEST_CASE("consecutive ids spread evenly over every shard, whatever the node id",
                   "[sharded]", (wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>),
                   (wsreg::ShardedPolicy<wsreg::MutexPolicy, 3>),
                   (wsreg::ShardedPolicy<wsreg::MutexPolicy, 8>)) {
  constexpr std::size_t n = TestType::shard_count;
  for (const std::uint16_t node : {std::uint16_t{0}, std::uint16_t{7}, std::uint16_t{65535}}) {
    wsreg::RegistryOptions options;
    options.node_id = node;
    ConnectionRegistry<TestType> registry(options);
    constexpr std::size_t connections = 1200;
    std::vector<std::size_t> per_shard(n, 0);
    for (std::size_t i = 0; i < connections; ++i) {
      ++per_shard[TestType::shard_of(registry.add(std::make_shared<CountingSender>()))];
    }
    INFO("node " << node);
    for (std::size_t k = 0; k < n; ++k) {
      INFO("shard " << k << " holds " << per_shard[k]);
      CHECK(per_shard[k] * n >= connections * 8 / 10);  // within 20 % of an even share
      CHECK(per_shard[k] * n <= connections * 12 / 10);
    }
    CHECK(registry.size() == connections);
  }
}

TEMPLATE_TEST_CASE("a topic with subscribers in two shards is one topic with their summed count",
                   "[sharded][topics]", (wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>),
                   (wsreg::ShardedPolicy<wsreg::MutexPolicy, 3>)) {
  ConnectionRegistry<TestType> registry;
  const auto [a, b] = two_shards<ConnectionRegistry<TestType>, TestType>(registry);
  registry.subscribe(a, "room");
  registry.subscribe(b, "room");
  registry.subscribe(b, "b only");
  CHECK(registry.topic_count() == 2);
  CHECK(registry.subscriber_count("room") == 2);
  CHECK(registry.subscribers("room") == Ids{a, b});  // ascending across shards

  registry.unsubscribe(a, "room");
  CHECK(registry.topic_count() == 2);
  CHECK(registry.subscriber_count("room") == 1);
  registry.remove(b);
  CHECK(registry.topic_count() == 0);
  CHECK(registry.subscriber_count("room") == 0);
  CHECK(registry.subscribers("room").empty());
}

TEMPLATE_TEST_CASE("a broadcast or publish with an except id skips it in whichever shard it is",
                   "[sharded]", (wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>),
                   (wsreg::ShardedPolicy<wsreg::MutexPolicy, 3>)) {
  ConnectionRegistry<TestType> registry;
  std::vector<std::shared_ptr<CountingSender>> senders;
  Ids ids;
  for (int i = 0; i < 24; ++i) {
    senders.push_back(std::make_shared<CountingSender>());
    ids.push_back(registry.add(senders.back()));
    registry.subscribe(ids.back(), "all");
  }
  for (const ConnectionId except : ids) {
    registry.broadcast(Payload::text("b"), except);
    registry.publish("all", Payload::text("p"), except);
  }
  registry.flush();
  // Each connection was skipped by its own broadcast and publish only.
  for (const auto& s : senders) CHECK(s->count() == 2 * (ids.size() - 1));
  const auto stats = registry.stats();
  CHECK(stats.broadcasts == ids.size());  // once per call, not once per shard
  CHECK(stats.publishes == ids.size());
  CHECK(stats.messages_sent == 2 * ids.size() * (ids.size() - 1));
}

TEMPLATE_TEST_CASE(
    "presence events come for members of every shard, one at a time, counted over all shards",
    "[sharded][presence]", (wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>),
    (wsreg::ShardedPolicy<wsreg::MutexPolicy, 3>)) {
  // This mutex synchronizes all access to counts and shards_seen.
  std::mutex mutex;
  std::vector<std::size_t> counts;  // PresenceEvent::subscribers, in report order
  std::vector<bool> shards_seen(TestType::shard_count, false);
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  ConnectionRegistry<TestType> registry;  // after what its handler uses, so it goes first
  registry.set_presence_handler([&](const wsreg::PresenceEvent<>& e) {
    if (inside.fetch_add(1) != 0) overlapped = true;
    {
      std::lock_guard<std::mutex> lock(mutex);
      counts.push_back(e.joined ? e.subscribers : 1000 + e.subscribers);
      shards_seen[TestType::shard_of(e.id)] = true;
    }
    std::this_thread::yield();  // widens the window for an overlap
    inside.fetch_sub(1);
  });

  // Four threads subscribe their own connections, then remove them.
  constexpr int threads = 4;
  constexpr int per_thread = 25;
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      Ids mine;
      for (int i = 0; i < per_thread; ++i) mine.push_back(registry.add(std::make_shared<CountingSender>()));
      while (!go.load()) std::this_thread::yield();
      for (const ConnectionId id : mine) registry.subscribe(id, "room");
      registry.flush();
    });
  }
  go = true;
  for (auto& w : workers) w.join();
  CHECK(registry.subscriber_count("room") == std::size_t{threads * per_thread});

  std::lock_guard<std::mutex> lock(mutex);
  CHECK_FALSE(overlapped.load());
  CHECK(std::all_of(shards_seen.begin(), shards_seen.end(), [](bool seen) { return seen; }));
  // One total order: the joins count 1, 2, 3, ... over all shards.
  REQUIRE(counts.size() == std::size_t{threads * per_thread});
  for (std::size_t i = 0; i < counts.size(); ++i) {
    INFO("event " << i);
    CHECK(counts[i] == i + 1);
  }
}

TEST_CASE("shards that send to each other from inside Sender::send never wait for room in a cycle",
          "[sharded][mailbox]") {
  using Policy = wsreg::ShardedPolicy<wsreg::ActorPolicy, 2>;
  wsreg::RegistryOptions options;
  options.mailbox_capacity = 1;
  ConnectionRegistry<Policy> registry(options);

  // Each forwards every payload 20 times to its partner (in the other
  // shard), until a hop count runs out: both actors post to each other's
  // full mailbox at once.
  class Relay final : public wsreg::Sender {
   public:
    explicit Relay(ConnectionRegistry<Policy>& r) : registry_(r) {}
    void set_partner(ConnectionId id) { partner_.store(id); }
    wsreg::SendResult send(const Payload& payload) noexcept override {
      received_.fetch_add(1);
      const int hops = std::stoi(std::string(payload.data()));
      if (hops > 0) {
        for (int i = 0; i < 20; ++i) registry_.send(partner_.load(), Payload::text(std::to_string(hops - 1)));
      }
      return wsreg::SendResult::sent;
    }
    std::atomic<long> received_{0};

   private:
    ConnectionRegistry<Policy>& registry_;
    std::atomic<ConnectionId> partner_{wsreg::no_connection};
  };

  auto first = std::make_shared<Relay>(registry);
  auto second = std::make_shared<Relay>(registry);
  ConnectionId a = registry.add(first);
  ConnectionId b = registry.add(second);
  while (Policy::shard_of(b) == Policy::shard_of(a)) b = registry.add(second);
  first->set_partner(b);
  second->set_partner(a);
  registry.send(a, Payload::text("2"));
  registry.send(b, Payload::text("2"));
  // 1 + 20 + 400 deliveries each (a hang fails the test by its timeout).
  CHECK(wsreg_test::wait_until([&] { return first->received_.load() + second->received_.load() == 2 * 421; }));
}

TEST_CASE("destroying a sharded registry applies what its shards queue into each other meanwhile",
          "[sharded][lifetime]") {
  using Policy = wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>;
  // Forwards every payload to its partner (another shard) until the hop
  // count runs out; counts what it got, in a counter that outlives the
  // registry.
  class Relay final : public wsreg::Sender {
   public:
    Relay(ConnectionRegistry<Policy>& r, std::atomic<long>& received) : registry_(r), received_(received) {}
    void set_partner(ConnectionId id) { partner_.store(id); }
    wsreg::SendResult send(const Payload& payload) noexcept override {
      received_.fetch_add(1);
      const int hops = std::stoi(std::string(payload.data()));
      if (hops > 0) registry_.send(partner_.load(), Payload::text(std::to_string(hops - 1)));
      return wsreg::SendResult::sent;
    }

   private:
    ConnectionRegistry<Policy>& registry_;
    std::atomic<long>& received_;
    std::atomic<ConnectionId> partner_{wsreg::no_connection};
  };

  std::atomic<long> received{0};
  constexpr int pairs = 8;
  constexpr int hops = 200;
  {
    ConnectionRegistry<Policy> registry;
    std::vector<std::shared_ptr<Relay>> relays;
    Ids ids;
    while (ids.size() < 2 * pairs) {
      relays.push_back(std::make_shared<Relay>(registry, received));
      const ConnectionId id = registry.add(relays.back());
      // Every second one in another shard than its predecessor.
      if (ids.size() % 2 == 1 && Policy::shard_of(id) == Policy::shard_of(ids.back())) {
        registry.remove(id);
        relays.pop_back();
        continue;
      }
      ids.push_back(id);
    }
    for (int p = 0; p < pairs; ++p) {
      relays[2 * p]->set_partner(ids[2 * p + 1]);
      relays[2 * p + 1]->set_partner(ids[2 * p]);
      registry.send(ids[2 * p], Payload::text(std::to_string(hops)));
    }
  }  // destroyed here, with most of the relaying still to come
  CHECK(received.load() == long{pairs} * (hops + 1));
}
