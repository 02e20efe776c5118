// The header under test comes first, so it is proven to stand alone.
#include "wsreg/connection_registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <map>
#include <random>
#include <memory>
#include <optional>
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

static_assert(wsreg::is_registry_policy_v<wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>>);
static_assert(wsreg::is_registry_policy_v<wsreg::ShardedPolicy<wsreg::MutexPolicy, 1>>);
static_assert(
    wsreg::is_registry_policy_v<wsreg::ShardedPolicy<wsreg::ActorPolicy, 2, std::string>, std::string>);

// Whether a test runs under ActorPolicy, for the few checks that differ
// (one actor: holding it holds every connection); sharded policies get
// their own checks where the shards make a difference.
template <class Policy>
constexpr bool actor_v = wsreg_test::single_actor_v<Policy>;
// Whether operations are applied later on actor threads (alone or sharded).
template <class Policy>
constexpr bool later_v = wsreg_test::applies_later_v<Policy>;

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
  wsreg_test::drain(registry);  // the broadcaster's operations too

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
  if constexpr (wsreg_test::sharded_v<TestType> && later_v<TestType>) {
    // From inside a shard's callback, size() counts the other shards as
    // applied so far (waiting for them could deadlock): the sink's shard
    // may not have applied its add yet.
    CHECK(forwarder->seen_size_.load() >= 1);
    CHECK(forwarder->seen_size_.load() <= 2);
  } else {
    CHECK(forwarder->seen_size_.load() == 2);
  }
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
  auto blocker = std::make_shared<wsreg_test::BlockingSender>();
  const ConnectionId blocker_id = registry.add(blocker);
  auto sender = std::make_shared<CountingSender>();
  const ConnectionId sender_id = registry.add(sender);
  registry.flush();
  CHECK(registry.size_approx() == 2);

  // Hold the delivering thread (ActorPolicy: the actor) in a send, and queue
  // an add and a send behind it.
  std::thread holder([&] { registry.send(blocker_id, Payload::text("hold")); });
  REQUIRE(blocker->wait_entered(1) == 1);
  registry.add(std::make_shared<CountingSender>());
  registry.send(sender_id, Payload::text("x"));

  // Both answer at once while the actor is held, with only what it applied
  // (a wait would last until the release below and show the caught-up
  // figures). MutexPolicy applied the add and the send before they returned;
  // the held send is counted by neither until it returns.
  const std::size_t size_while_held = registry.size_approx();
  const auto stats_while_held = registry.stats_approx();
  if constexpr (wsreg_test::sharded_v<TestType> && later_v<TestType>) {
    // Only the blocker's shard is held: the add and the send may be in
    // another, applied already or not yet.
    CHECK(size_while_held >= 2u);
    CHECK(size_while_held <= 3u);
    CHECK(stats_while_held.messages_sent <= 1u);
  } else {
    CHECK(size_while_held == (actor_v<TestType> ? 2u : 3u));
    CHECK(stats_while_held.connections_added == (actor_v<TestType> ? 2u : 3u));
    CHECK(stats_while_held.messages_sent == (actor_v<TestType> ? 0u : 1u));
    if (actor_v<TestType>) CHECK(stats_while_held.mailbox_depth == 3);  // the held send, the add, the send
  }

  // After the release they catch up without anyone waiting for the actor.
  blocker->release();
  holder.join();
  CHECK(wsreg_test::wait_until([&] {
    return registry.size_approx() == 3 && registry.stats_approx().messages_sent == 2;
  }));
  CHECK(sender->count() == 1);
}

// The bounded mailbox (RegistryOptions::mailbox_capacity).

TEMPLATE_LIST_TEST_CASE(
    "a producer that outruns the actor waits for room while lifecycle operations never wait",
    "[registry][mailbox]", registry_policies) {
  constexpr std::size_t capacity = 8;
  constexpr int produced = 40;
  wsreg::RegistryOptions options;
  options.mailbox_capacity = capacity;
  ConnectionRegistry<TestType, std::string> registry(options);
  auto blocker = std::make_shared<wsreg_test::BlockingSender>();
  const ConnectionId blocker_id = registry.add(blocker);
  auto listener = std::make_shared<CountingSender>();
  registry.add(listener);
  registry.flush();
  REQUIRE(wsreg_test::wait_until([&] { return registry.stats_approx().mailbox_depth == 0; }));

  // The producer's first broadcast holds the delivering thread in the
  // blocker (ActorPolicy: the actor; MutexPolicy: the producer itself).
  std::atomic<int> posted{0};
  std::thread producer([&] {
    for (int i = 0; i < produced; ++i) {
      registry.broadcast(Payload::text("tick"));
      posted.fetch_add(1);
    }
    registry.flush();
  });
  REQUIRE(blocker->wait_entered(1) == 1);

  if constexpr (later_v<TestType>) {
    // The actor (of the blocker's shard) is stuck in the first broadcast:
    // the producer gets capacity - 1 more in, then waits for room, and
    // says so. Other shards may still be applying theirs: their depth adds.
    // (Sharded: it may also have waited, briefly, for room in the others.)
    CHECK(wsreg_test::wait_until([&] {
      const auto waits = registry.stats_approx().mailbox_waits;
      return actor_v<TestType> ? waits == 1 : waits >= 1 && posted.load() == static_cast<int>(capacity);
    }));
    CHECK(posted.load() == static_cast<int>(capacity));
    const auto stats = registry.stats_approx();
    if constexpr (actor_v<TestType>) {
      CHECK(stats.mailbox_depth == capacity);
    } else {
      CHECK(stats.mailbox_depth >= capacity);
    }
    CHECK(stats.mailbox_high_water == capacity);  // per shard: the largest
  }

  // Lifecycle operations do not wait for room, even with the mailbox full
  // (a hang here would fail the test by its timeout).
  auto newcomer = std::make_shared<CountingSender>();
  const ConnectionId newcomer_id = registry.add(newcomer, "data");
  registry.subscribe(newcomer_id, "topic");
  registry.set_data(newcomer_id, "more data");
  registry.update_data(newcomer_id, [](std::string& d) { d += "!"; });
  registry.unsubscribe(newcomer_id, "topic");
  registry.remove(blocker_id);  // queued behind the full mailbox, not blocked by it
  CHECK(registry.size_approx() <= 3);

  blocker->release();
  producer.join();
  registry.flush();
  CHECK(posted.load() == produced);
  // Nothing was dropped: every broadcast reached the listener once.
  CHECK(listener->count() == static_cast<std::size_t>(produced));
  CHECK(registry.data(newcomer_id) == std::optional<std::string>("more data!"));
  CHECK(registry.size() == 2);
  const auto stats = registry.stats();
  CHECK(stats.broadcasts == static_cast<std::uint64_t>(produced));
  if constexpr (later_v<TestType>) {
    // The add waited behind at most `capacity` data operations: it missed at
    // most the broadcasts queued before it.
    CHECK(newcomer->count() + capacity >= static_cast<std::size_t>(produced));
    CHECK(stats.mailbox_waits >= 1);
    CHECK(stats.mailbox_high_water >= capacity);
    CHECK(stats.mailbox_high_water <= capacity + 8);  // + the lifecycle operations
    CHECK(wsreg_test::wait_until([&] { return registry.stats_approx().mailbox_depth == 0; }));
  } else {
    CHECK(stats.mailbox_waits == 0);
    CHECK(stats.mailbox_high_water == 0);
    CHECK(stats.mailbox_depth == 0);
  }
}

TEMPLATE_LIST_TEST_CASE("a sender may post past the mailbox capacity without deadlock",
                        "[registry][mailbox]", registry_policies) {
  wsreg::RegistryOptions options;
  options.mailbox_capacity = 2;
  ConnectionRegistry<TestType> registry(options);

  // Fans every payload out as 50 sends, from inside Sender::send: on the
  // actor thread under ActorPolicy, which must not wait for room it alone
  // can make.
  class FanOut final : public wsreg::Sender {
   public:
    FanOut(ConnectionRegistry<TestType>& r, ConnectionId to) : registry_(r), to_(to) {}
    wsreg::SendResult send(const Payload& payload) noexcept override {
      for (int i = 0; i < 50; ++i) registry_.send(to_, payload);
      return wsreg::SendResult::sent;
    }

   private:
    ConnectionRegistry<TestType>& registry_;
    ConnectionId to_;
  };

  auto sink = std::make_shared<CountingSender>();
  const ConnectionId sink_id = registry.add(sink);
  const ConnectionId fan_id = registry.add(std::make_shared<FanOut>(registry, sink_id));
  for (int i = 0; i < 10; ++i) registry.send(fan_id, Payload::text("x"));
  CHECK(wsreg_test::wait_until([&] {
    registry.flush();
    return sink->count() == 500;
  }));
}

TEMPLATE_LIST_TEST_CASE("the mailbox gauges are on the metrics page", "[registry][mailbox][metrics]",
                        registry_policies) {
  wsreg::RegistryOptions options;
  options.mailbox_capacity = 4;
  ConnectionRegistry<TestType> registry(options);
  auto blocker = std::make_shared<wsreg_test::BlockingSender>();
  registry.add(blocker);
  registry.flush();
  // The add is applied and out of the count (the actor releases what it
  // applied before it takes more) before the producer starts.
  REQUIRE(wsreg_test::wait_until([&] { return registry.stats_approx().mailbox_depth == 0; }));
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) registry.broadcast(Payload::text("tick"));
  });
  REQUIRE(blocker->wait_entered(1) == 1);
  if constexpr (later_v<TestType>) {
    // Sharded: the other shards, not held, drain theirs meanwhile (the
    // producer may have waited for room in them too, briefly).
    CHECK(wsreg_test::wait_until([&] {
      const auto s = registry.stats_approx();
      return s.mailbox_waits >= 1 && s.mailbox_depth == 4 &&
             (wsreg_test::sharded_v<TestType> || s.mailbox_waits == 1);
    }));
  }
  const auto shown = registry.stats_approx();
  const std::string text = wsreg::prometheus_text(shown, registry.size_approx());
  blocker->release();
  producer.join();
  registry.flush();
  const std::string depth = later_v<TestType> ? "4" : "0";
  const std::string waits = later_v<TestType> ? std::to_string(shown.mailbox_waits) : "0";
  if constexpr (later_v<TestType>) CHECK(shown.mailbox_waits >= 1);
  CHECK(text.find("# TYPE wsreg_mailbox_depth gauge\nwsreg_mailbox_depth " + depth + "\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE wsreg_mailbox_high_water gauge\nwsreg_mailbox_high_water " + depth +
                  "\n") != std::string::npos);
  CHECK(text.find("# TYPE wsreg_mailbox_waits_total counter\nwsreg_mailbox_waits_total " + waits +
                  "\n") != std::string::npos);
}

TEMPLATE_LIST_TEST_CASE("a registry built with options swaps policies with one token",
                        "[registry][mailbox]", registry_policies) {
  wsreg::RegistryOptions options;
  options.mailbox_capacity = 0;  // taken as 1
  ConnectionRegistry<TestType> registry(options);
  auto sender = std::make_shared<CountingSender>();
  const ConnectionId id = registry.add(sender);
  for (int i = 0; i < 100; ++i) registry.send(id, Payload::text("x"));
  registry.flush();
  CHECK(sender->count() == 100);
  static_assert(wsreg::policy_requirements::has_options_constructor<TestType>::value);
}

// flush()'s fast path: no round trip to the actor when everything the
// calling thread posted has been applied.

namespace {

// Runs `call` on a thread of its own; done() tells whether it returned.
class Background {
 public:
  template <class Call>
  explicit Background(Call call) : thread_([this, call] {
      call();
      done_.store(true);
    }) {}
  ~Background() { thread_.join(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  /// Whether it returns within `timeout` (a deadline, not a sleep).
  bool returns_within(std::chrono::milliseconds timeout) {
    return wsreg_test::wait_until([this] { return done_.load(); }, timeout);
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// A latch: threads wait until it is opened.
class Gate {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
  }

 private:
  // This mutex synchronizes all access to open_.
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "flush returns at once when this thread's operations are applied and waits while one is pending",
    "[registry][flush]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto blocker = std::make_shared<wsreg_test::BlockingSender>();
  const ConnectionId blocker_id = registry.add(blocker);
  auto other = std::make_shared<CountingSender>();
  const ConnectionId other_id = registry.add(other);
  registry.flush();

  // A thread that posted earlier, all of it applied before the actor is held.
  Gate posted_early;
  Gate go;
  Background early([&] {
    registry.send(other_id, Payload::text("early"));
    registry.flush();
    posted_early.open();
    go.wait();
    registry.flush();  // everything it posted is applied: no wait
  });
  posted_early.wait();

  // The delivering thread is now held in the blocker (ActorPolicy: the
  // actor; MutexPolicy: the holder itself).
  Background holder([&] { registry.send(blocker_id, Payload::text("hold")); });
  REQUIRE(blocker->wait_entered(1) == 1);

  constexpr auto prompt = std::chrono::seconds(5);
  go.open();
  CHECK(early.returns_within(prompt));
  Background never_posted([&] { registry.flush(); });
  CHECK(never_posted.returns_within(prompt));
  registry.flush();  // this thread's operations were applied before the hold

  // A thread whose send is queued behind the held one: its flush waits
  // under ActorPolicy (until the release), and not under MutexPolicy, whose
  // send was applied before it returned.
  Background pending([&] {
    registry.send(other_id, Payload::text("late"));
    registry.flush();
  });
  // Sharded: only if its send went to the held shard.
  const bool held = later_v<TestType> && wsreg_test::same_shard<TestType>(other_id, blocker_id);
  const bool returned_while_held = pending.returns_within(std::chrono::milliseconds(200));
  CHECK(returned_while_held == !held);
  CHECK(other->count() == (held ? 1u : 2u));

  blocker->release();
  CHECK(pending.returns_within(prompt));
  CHECK(other->count() == 2);  // the pending flush returned after the send was made
}

TEMPLATE_LIST_TEST_CASE("flush is not misled by a registry that lived at the same address before",
                        "[registry][flush]", registry_policies) {
  std::optional<ConnectionRegistry<TestType>> slot;
  slot.emplace();
  const void* const address = &*slot;
  Gate posted;
  Gate replaced;
  // This thread posts many operations to the first registry, then (never
  // having posted to the second) flushes the second while its actor is held.
  Background worker([&] {
    auto sender = std::make_shared<CountingSender>();
    const ConnectionId id = slot->add(sender);
    for (int i = 0; i < 1000; ++i) slot->send(id, Payload::text("x"));
    slot->flush();
    posted.open();
    replaced.wait();
    slot->flush();
  });
  posted.wait();
  slot.reset();
  slot.emplace();
  REQUIRE(&*slot == address);  // the same storage: only an instance id tells them apart
  auto blocker = std::make_shared<wsreg_test::BlockingSender>();
  const ConnectionId blocker_id = slot->add(blocker);
  Background holder([&] { slot->send(blocker_id, Payload::text("hold")); });
  REQUIRE(blocker->wait_entered(1) == 1);
  replaced.open();
  CHECK(worker.returns_within(std::chrono::seconds(5)));
  blocker->release();
}

TEMPLATE_LIST_TEST_CASE("size and stats include what other threads queued before",
                        "[registry][flush]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) registry.add(std::make_shared<CountingSender>());
    });
  }
  for (auto& w : workers) w.join();
  // This thread posted nothing, but joined the workers: size() sees them all.
  CHECK(registry.size() == 2000);
  CHECK(registry.stats().connections_added == 2000);
}

// Snapshots: MutexPolicy rebuilds its delivery snapshot outside the lock
// from the previous one and a log of changes; these check the result.

TEMPLATE_LIST_TEST_CASE("broadcast and publish reach exactly the members after any sequence of changes",
                        "[registry][topics]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  std::mt19937 random(20240611);
  struct Connection {
    std::shared_ptr<CountingSender> sender;
    bool in_topic = false;
    std::size_t expected = 0;  // deliveries it must have had
  };
  std::map<ConnectionId, Connection> live;
  std::vector<std::shared_ptr<CountingSender>> gone;  // removed: must get nothing more
  std::vector<std::size_t> gone_counts;
  const std::string topic = "topic";
  int checks = 0;
  for (int step = 0; step < 4000; ++step) {
    const int dice = static_cast<int>(random() % 100);
    // Long runs of changes between deliveries now and then (more than the
    // set holds, which makes a snapshot be dropped and copied anew).
    const bool quiet = (step / 500) % 2 == 1;
    if (dice < 30 || live.size() < 3) {
      auto s = std::make_shared<CountingSender>();
      live[registry.add(s)] = Connection{s};
    } else if (dice < 50) {
      auto it = std::next(live.begin(), static_cast<long>(random() % live.size()));
      registry.remove(it->first);
      gone.push_back(it->second.sender);
      gone_counts.push_back(it->second.expected);
      live.erase(it);
    } else if (dice < 70) {
      // Join or leave the topic, the same ids again and again.
      auto it = std::next(live.begin(), static_cast<long>(random() % live.size()));
      if (it->second.in_topic) {
        registry.unsubscribe(it->first, topic);
      } else {
        registry.subscribe(it->first, topic);
      }
      it->second.in_topic = !it->second.in_topic;
    } else if (!quiet && dice < 85) {
      registry.broadcast(Payload::text("all"));
      for (auto& [id, c] : live) ++c.expected;
    } else if (!quiet) {
      registry.publish(topic, Payload::text("topic"));
      for (auto& [id, c] : live) c.expected += c.in_topic ? 1 : 0;
    }
    if (step % 97 == 0) {
      registry.flush();
      std::size_t wrong = 0;
      for (const auto& [id, c] : live) wrong += c.sender->count() != c.expected ? 1 : 0;
      for (std::size_t i = 0; i < gone.size(); ++i) {
        wrong += gone[i]->count() != gone_counts[i] ? 1 : 0;
      }
      INFO("step " << step);
      CHECK(wrong == 0);
      ++checks;
    }
  }
  CHECK(checks > 40);
}

TEMPLATE_LIST_TEST_CASE("a sender the registry lets go of may call the registry from its destructor",
                        "[registry]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  // Asks the registry for its size when destroyed: a deadlock if the
  // registry released it with its lock held.
  class Caller final : public wsreg::Sender {
   public:
    Caller(ConnectionRegistry<TestType>& r, std::atomic<int>& destroyed)
        : registry_(r), destroyed_(destroyed) {}
    ~Caller() override {
      static_cast<void>(registry_.size_approx());
      destroyed_.fetch_add(1);
    }
    wsreg::SendResult send(const Payload&) noexcept override { return wsreg::SendResult::sent; }

   private:
    ConnectionRegistry<TestType>& registry_;
    std::atomic<int>& destroyed_;
  };

  std::atomic<int> destroyed{0};
  auto keep = std::make_shared<CountingSender>();
  const ConnectionId keep_id = registry.add(keep);
  registry.subscribe(keep_id, "topic");

  // 1. Held last by the broadcast snapshot, replaced by the next broadcast.
  ConnectionId id = registry.add(std::make_shared<Caller>(registry, destroyed));
  registry.broadcast(Payload::text("x"));
  registry.remove(id);
  registry.broadcast(Payload::text("y"));
  registry.flush();
  CHECK(wsreg_test::wait_until([&] { return destroyed.load() == 1; }));

  // 2. Held last by a topic's snapshot when the topic disappears.
  id = registry.add(std::make_shared<Caller>(registry, destroyed));
  registry.subscribe(id, "topic");
  registry.publish("topic", Payload::text("x"));
  registry.broadcast(Payload::text("x"));
  registry.remove(id);
  registry.broadcast(Payload::text("x"));  // the broadcast snapshot lets go of it
  registry.unsubscribe(keep_id, "topic");  // the topic goes, with its snapshot
  registry.flush();
  CHECK(wsreg_test::wait_until([&] { return destroyed.load() == 2; }));

  // 3. Held last by a snapshot dropped after many changes with no broadcast.
  id = registry.add(std::make_shared<Caller>(registry, destroyed));
  registry.broadcast(Payload::text("x"));
  registry.remove(id);
  for (int i = 0; i < 200; ++i) registry.remove(registry.add(std::make_shared<CountingSender>()));
  registry.broadcast(Payload::text("x"));
  registry.flush();
  CHECK(wsreg_test::wait_until([&] { return destroyed.load() == 3; }));
  CHECK(keep->count() == 7);
}

// The lifecycle lane: ActorPolicy applies lifecycle operations ahead of the
// data operations queued before them, with the results of applying all of
// them in order. These run over both policies; the checks are the same.

TEMPLATE_LIST_TEST_CASE(
    "an add behind a backlog of broadcasts counts in size at once, and only broadcasts issued "
    "after it reach it",
    "[registry][lanes]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto holder = std::make_shared<wsreg_test::StagedSender>(2);
  registry.add(holder);
  auto listener = std::make_shared<RecordingSender>();
  registry.add(listener);
  registry.flush();

  // The producer's first broadcast holds the delivering thread in the
  // holder (ActorPolicy: the actor; MutexPolicy: the producer itself), and
  // so does its second; under ActorPolicy the others queue behind them.
  constexpr int backlog = 100;
  std::atomic<int> started{0};
  std::atomic<int> returned{0};
  std::thread producer([&] {
    for (int i = 1; i <= backlog; ++i) {
      started.store(i);
      registry.broadcast(Payload::text(std::to_string(i)));
      returned.store(i);
    }
  });
  REQUIRE(holder->wait_entered(1) == 1);
  if constexpr (later_v<TestType>) {
    REQUIRE(wsreg_test::wait_until([&] { return returned.load() == backlog; }));
  }

  auto newcomer = std::make_shared<RecordingSender>();
  registry.add(newcomer);
  const int issued_before = started.load();  // the producer's broadcasts begun before the add
  holder->let_go(1);
  // Held again, in the second broadcast. ActorPolicy applied the add in
  // between, ahead of the broadcasts still queued: size() and this
  // thread's flush() answer without waiting for them (a wait would last
  // until the holder's 30 s safety deadline).
  REQUIRE(holder->wait_entered(2) == 2);
  const auto asked = std::chrono::steady_clock::now();
  CHECK(registry.size() == 3);
  registry.flush();
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(5));

  for (int i = 1; i <= 5; ++i) registry.broadcast(Payload::text(std::to_string(1000 + i)));
  holder->let_go(2);
  producer.join();
  wsreg_test::drain(registry);

  // The newcomer got exactly the broadcasts issued after the add (in
  // either order under MutexPolicy, whose producer is still in its second
  // broadcast when this thread's are made), the listener all of them.
  std::vector<std::uint64_t> expected;
  for (int i = issued_before + 1; i <= backlog; ++i) expected.push_back(static_cast<std::uint64_t>(i));
  for (int i = 1; i <= 5; ++i) expected.push_back(static_cast<std::uint64_t>(1000 + i));
  std::vector<std::uint64_t> got;
  for (const Payload& p : newcomer->received()) got.push_back(number_of(p));
  std::sort(got.begin(), got.end());
  if (wsreg_test::sharded_v<TestType> && !later_v<TestType> && !got.empty() &&
      got.front() == static_cast<std::uint64_t>(issued_before)) {
    // Sharded MutexPolicy: the broadcast in flight during the add visits the
    // shards in turn, and may reach the newcomer's shard after the add.
    got.erase(got.begin());
  }
  CHECK(got == expected);
  if constexpr (later_v<TestType>) CHECK(got.size() == 5);  // the backlog was queued before the add
  CHECK(listener->count() == static_cast<std::size_t>(backlog + 5));
  CHECK(registry.size() == 3);
}

TEMPLATE_LIST_TEST_CASE(
    "a send and a broadcast queued before remove reach the connection, a broadcast after it does "
    "not",
    "[registry][lanes]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto holder = std::make_shared<wsreg_test::StagedSender>(2);
  const ConnectionId holder_id = registry.add(holder);
  auto leaving = std::make_shared<RecordingSender>();
  const ConnectionId leaving_id = registry.add(leaving);
  auto staying = std::make_shared<RecordingSender>();
  registry.add(staying);
  registry.flush();

  // Another thread holds the delivering thread twice (ActorPolicy: the
  // actor, and its second hold is queued; MutexPolicy: that thread only).
  std::atomic<bool> second_posted{false};
  std::thread holding([&] {
    registry.send(holder_id, Payload::text("hold 1"));
    registry.send(holder_id, Payload::text("hold 2"));
    second_posted.store(true);
  });
  REQUIRE(holder->wait_entered(1) == 1);
  if constexpr (later_v<TestType>) {
    REQUIRE(wsreg_test::wait_until([&] { return second_posted.load(); }));
  }
  registry.broadcast(Payload::text("before"), holder_id);
  registry.send(leaving_id, Payload::text("bye"));
  registry.remove(leaving_id);
  registry.broadcast(Payload::text("after"), holder_id);
  registry.send(leaving_id, Payload::text("too late"));

  holder->let_go(1);
  REQUIRE(holder->wait_entered(2) == 2);
  // ActorPolicy applied the remove ahead of "before" and "bye", which are
  // still queued behind the second hold: size() sees it at once.
  const auto asked = std::chrono::steady_clock::now();
  CHECK(registry.size() == 2);
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(5));
  // Still queued behind the hold: in the holder's shard only.
  if (later_v<TestType> && wsreg_test::same_shard<TestType>(leaving_id, holder_id)) {
    CHECK(leaving->count() == 0);
  }

  holder->let_go(2);
  holding.join();
  wsreg_test::drain(registry);
  CHECK(wsreg_test::texts_of(*leaving) == std::vector<std::string>{"before", "bye"});
  CHECK(wsreg_test::texts_of(*staying) == std::vector<std::string>{"before", "after"});
  const auto stats = registry.stats();
  CHECK(stats.send_unknown == 1);
  CHECK(stats.connections_removed == 1);
  CHECK(registry.size() == 2);

  // The registry let go of the removed Sender once what was queued for it
  // before the remove was delivered.
  std::weak_ptr<RecordingSender> watch = leaving;
  leaving.reset();
  CHECK(wsreg_test::wait_until([&] { return watch.expired(); }));
}
