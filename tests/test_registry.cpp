// The header under test comes first, so it is proven to stand alone.
#include "wsreg/connection_registry.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <variant>

#include <catch2/catch.hpp>

#include "policies.hpp"
#include "support.hpp"
#include "wsreg/wsreg.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::CountingSender;
using wsreg_test::RecordingSender;
using wsreg_test::registry_policies;

namespace {

struct NotAPolicy {
  void insert(ConnectionId, std::shared_ptr<wsreg::Sender>) {}
};

static_assert(wsreg::is_registry_policy_v<wsreg::ActorPolicy>);
static_assert(wsreg::is_registry_policy_v<wsreg::MutexPolicy>);
static_assert(!wsreg::is_registry_policy_v<NotAPolicy>);
static_assert(!wsreg::policy_requirements::has_erase<NotAPolicy, std::monostate>::value);
static_assert(wsreg::is_registry_policy_v<wsreg::BasicActorPolicy<std::string>, std::string>);
static_assert(wsreg::is_registry_policy_v<wsreg::BasicMutexPolicy<std::string>, std::string>);

std::uint64_t number_of(const Payload& p) { return std::stoull(std::string(p.data())); }

}  // namespace

TEMPLATE_LIST_TEST_CASE("ids start at 1 and are never reused under concurrent adds and removes",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  constexpr int threads = 8;
  constexpr int per_thread = 10000;
  std::vector<std::vector<ConnectionId>> seen(threads);
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      auto sender = std::make_shared<CountingSender>();
      for (int i = 0; i < per_thread; ++i) {
        const ConnectionId id = registry.add(sender);
        seen[t].push_back(id);
        if (i % 2 == 1) registry.remove(seen[t][i - 1]);  // remove while others add
      }
      for (int i = 0; i < per_thread; i += 2) registry.remove(seen[t][i + 1]);
    });
  }
  go = true;
  for (auto& w : workers) w.join();

  std::vector<ConnectionId> all;
  for (const auto& ids : seen) all.insert(all.end(), ids.begin(), ids.end());
  std::sort(all.begin(), all.end());
  REQUIRE(all.size() == std::size_t{threads * per_thread});
  CHECK(all.front() == 1);
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  CHECK(all.back() == ConnectionId{threads * per_thread});
  CHECK(registry.size() == 0);
  const auto stats = registry.stats();
  CHECK(stats.connections_added == std::uint64_t{threads * per_thread});
  CHECK(stats.connections_removed == std::uint64_t{threads * per_thread});

  // After everyone left, a new connection still gets a fresh id.
  CHECK(registry.add(std::make_shared<CountingSender>()) == ConnectionId{threads * per_thread + 1});
}

TEMPLATE_LIST_TEST_CASE("a null sender is rejected with no_connection", "[registry]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  CHECK(registry.add(nullptr) == wsreg::no_connection);
  CHECK(registry.size() == 0);
  CHECK(registry.stats().connections_added == 0);
}

TEMPLATE_LIST_TEST_CASE("a send to an unknown or removed id is counted and delivered nowhere",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto a = std::make_shared<RecordingSender>();
  auto b = std::make_shared<RecordingSender>();
  const ConnectionId id_a = registry.add(a);
  const ConnectionId id_b = registry.add(b);
  registry.remove(id_b);
  registry.remove(id_b);  // idempotent

  registry.send(id_b, Payload::text("to the removed"));
  registry.send(9999, Payload::text("to nobody"));
  registry.send(wsreg::no_connection, Payload::text("to id 0"));
  registry.send(id_a, Payload::text("to a"));

  const auto stats = registry.stats();
  CHECK(stats.send_unknown == 3);
  CHECK(stats.messages_sent == 1);
  CHECK(stats.connections_removed == 1);
  CHECK(b->count() == 0);
  REQUIRE(a->count() == 1);
  CHECK(a->received()[0].data() == "to a");
}

TEMPLATE_LIST_TEST_CASE("a broadcast reaches each connection exactly once", "[registry]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  std::vector<std::shared_ptr<RecordingSender>> senders;
  std::vector<ConnectionId> ids;
  for (int i = 0; i < 100; ++i) {
    senders.push_back(std::make_shared<RecordingSender>());
    ids.push_back(registry.add(senders.back()));
  }
  const Payload payload = Payload::binary(std::string(4096, 'x'));
  registry.broadcast(payload);
  registry.flush();

  for (const auto& s : senders) {
    const auto got = s->received();
    REQUIRE(got.size() == 1);
    CHECK(got[0].opcode() == wsreg::Opcode::binary);
    // One buffer for every recipient: the registry copied nothing.
    CHECK(got[0].shares_buffer_with(payload));
  }
  const auto stats = registry.stats();
  CHECK(stats.messages_sent == 100);
  CHECK(stats.broadcasts == 1);
}

TEMPLATE_LIST_TEST_CASE("a broadcast with an except id skips exactly that connection",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  std::vector<std::shared_ptr<RecordingSender>> senders;
  std::vector<ConnectionId> ids;
  for (int i = 0; i < 10; ++i) {
    senders.push_back(std::make_shared<RecordingSender>());
    ids.push_back(registry.add(senders.back()));
  }
  registry.broadcast(Payload::text("relay"), ids[3]);
  registry.flush();
  for (std::size_t i = 0; i < senders.size(); ++i) {
    CHECK(senders[i]->count() == (i == 3 ? 0u : 1u));
  }
  CHECK(registry.stats().messages_sent == 9);
}

TEMPLATE_LIST_TEST_CASE("a sender's refusal is counted as dropped and the connection stays",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto full = std::make_shared<RecordingSender>();
  full->answer(wsreg::SendResult::dropped);
  auto ok = std::make_shared<RecordingSender>();
  const ConnectionId id_full = registry.add(full);
  registry.add(ok);
  registry.broadcast(Payload::text("x"));
  registry.send(id_full, Payload::text("y"));
  const auto stats = registry.stats();
  CHECK(stats.messages_dropped == 2);
  CHECK(stats.messages_sent == 1);
  CHECK(registry.size() == 2);
}

TEMPLATE_LIST_TEST_CASE("messages from one thread to one connection keep their order",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto target = std::make_shared<RecordingSender>();
  const ConnectionId id = registry.add(target);
  auto other = std::make_shared<CountingSender>();
  registry.add(other);

  // Two producers: each one's own sequence must arrive in order, interleaved
  // with broadcasts from the other.
  constexpr std::uint64_t n = 10000;
  std::thread broadcaster([&] {
    for (std::uint64_t i = 0; i < n; ++i) registry.broadcast(Payload::text(std::to_string(n + i)));
  });
  for (std::uint64_t i = 0; i < n; ++i) registry.send(id, Payload::text(std::to_string(i)));
  broadcaster.join();
  registry.flush();

  std::uint64_t next_direct = 0;
  std::uint64_t next_broadcast = n;
  bool in_order = true;
  for (const auto& p : target->received()) {
    const std::uint64_t v = number_of(p);
    std::uint64_t& next = v < n ? next_direct : next_broadcast;
    in_order = in_order && v == next;
    next = v + 1;
  }
  CHECK(in_order);
  CHECK(next_direct == n);
  CHECK(next_broadcast == 2 * n);
}

TEMPLATE_LIST_TEST_CASE(
    "removing connections while broadcasts are in flight never delivers to the removed",
    "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  constexpr int connections = 200;
  std::vector<std::shared_ptr<RecordingSender>> senders;
  std::vector<ConnectionId> ids;
  for (int i = 0; i < connections; ++i) {
    senders.push_back(std::make_shared<RecordingSender>());
    ids.push_back(registry.add(senders.back()));
  }

  // Each broadcast carries a number taken just before it is issued. After
  // remove(id) returns, the remover notes the next number: any broadcast
  // numbered at or above it started after the removal and must miss `id`.
  std::atomic<std::uint64_t> next_seq{0};
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> cut(connections, 0);
  std::vector<std::thread> broadcasters;
  for (int t = 0; t < 3; ++t) {
    broadcasters.emplace_back([&] {
      while (!stop.load()) {
        const std::uint64_t seq = next_seq.fetch_add(1);
        registry.broadcast(Payload::text(std::to_string(seq)));
      }
    });
  }
  wsreg_test::wait_until([&] { return next_seq.load() > 100; });
  for (int i = 0; i < connections; ++i) {
    registry.remove(ids[i]);
    cut[i] = next_seq.load();
  }
  stop = true;
  for (auto& b : broadcasters) b.join();
  registry.flush();

  int late_deliveries = 0;
  for (int i = 0; i < connections; ++i) {
    for (const auto& p : senders[i]->received()) {
      if (number_of(p) >= cut[i]) ++late_deliveries;
    }
  }
  CHECK(late_deliveries == 0);
  CHECK(registry.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("destroying a registry with queued work neither hangs nor leaks",
                        "[registry]", registry_policies) {
  const long live_before = wsreg_test::LiveCount::value().load();
  std::vector<std::weak_ptr<CountingSender>> watch;
  std::shared_ptr<CountingSender> first;
  {
    ConnectionRegistry<TestType> registry;
    std::vector<ConnectionId> ids;
    for (int i = 0; i < 100; ++i) {
      auto s = std::make_shared<CountingSender>();
      if (i == 0) first = s;
      watch.push_back(s);
      ids.push_back(registry.add(std::move(s)));
    }
    for (int i = 0; i < 20000; ++i) registry.send(ids[i % 100], Payload::text("queued"));
    for (int i = 0; i < 100; ++i) registry.broadcast(Payload::text("queued broadcast"));
    // Destroyed here with (for ActorPolicy) most of this still in the mailbox.
  }
  // Everything queued was applied before the actor stopped ...
  CHECK(first->count() == 20000 / 100 + 100);
  first.reset();
  // ... and the registry released every sender it held.
  CHECK(std::all_of(watch.begin(), watch.end(), [](const auto& w) { return w.expired(); }));
  CHECK(wsreg_test::LiveCount::value().load() == live_before);
}

TEMPLATE_LIST_TEST_CASE("a sender may call back into the registry without deadlock",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;

  // Answers every payload by asking the registry for its size and stats and
  // forwarding to a second connection, from inside Sender::send.
  class Forwarder final : public wsreg::Sender {
   public:
    Forwarder(ConnectionRegistry<TestType>& r, ConnectionId to) : registry_(r), to_(to) {}
    wsreg::SendResult send(const Payload& payload) noexcept override {
      seen_size_.store(registry_.size());
      registry_.stats();
      registry_.flush();
      registry_.send(to_, payload);
      return wsreg::SendResult::sent;
    }
    std::atomic<std::size_t> seen_size_{0};

   private:
    ConnectionRegistry<TestType>& registry_;
    ConnectionId to_;
  };

  auto sink = std::make_shared<RecordingSender>();
  const ConnectionId sink_id = registry.add(sink);
  auto forwarder = std::make_shared<Forwarder>(registry, sink_id);
  const ConnectionId forwarder_id = registry.add(forwarder);
  registry.send(forwarder_id, Payload::text("ping"));
  registry.flush();
  // The forward was queued from inside the actor (ActorPolicy) or applied
  // at once (MutexPolicy); a second flush covers both.
  CHECK(wsreg_test::wait_until([&] {
    registry.flush();
    return sink->count() == 1;
  }));
  CHECK(forwarder->seen_size_.load() == 2);
}

TEMPLATE_LIST_TEST_CASE("counters stay consistent under concurrent adds, sends and removes",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  std::atomic<std::uint64_t> sends{0};
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 2000; ++i) {
        const ConnectionId id = registry.add(std::make_shared<CountingSender>());
        registry.send(id, Payload::text("a"));
        registry.send(id + 1, Payload::text("b"));  // may or may not exist yet
        sends += 2;
        if (i % 3 != 0) registry.remove(id);
      }
    });
  }
  go = true;
  for (auto& w : workers) w.join();
  const auto stats = registry.stats();
  const std::size_t size = registry.size();
  CHECK(stats.connections_added - stats.connections_removed == size);
  CHECK(stats.messages_sent + stats.send_unknown + stats.messages_dropped == sends.load());
  CHECK(stats.messages_dropped == 0);
}

TEMPLATE_LIST_TEST_CASE("size_approx and stats_approx answer without waiting and catch up",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto sender = std::make_shared<CountingSender>();
  registry.add(sender);
  registry.broadcast(Payload::text("x"));
  CHECK(registry.size_approx() <= 1);
  registry.flush();
  CHECK(registry.size_approx() == 1);
  CHECK(registry.stats_approx().messages_sent == 1);
}
