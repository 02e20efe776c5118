// The header under test comes first, so it is proven to stand alone.
#include "wsreg/connection_registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "policies.hpp"
#include "support.hpp"
#include "topic_model.hpp"
#include "wsreg/wsreg.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg::PresenceEvent;
using wsreg_test::ChurnWorker;
using wsreg_test::CountingSender;
using wsreg_test::PresenceLog;
using wsreg_test::RecordingSender;
using wsreg_test::registry_policies;
using wsreg_test::topic_name;
using wsreg_test::TopicModel;
using wsreg_test::TopicOp;

namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<ConnectionId>;
using Entry = PresenceLog::Entry;

// Applies everything queued so far, including what callbacks queued while
// it was applied. MutexPolicy: nothing to do. ActorPolicy: the flush applies
// what this thread queued; a Sender::send or presence handler run during it
// may queue more (publish, subscribe) from the actor thread, which flush()
// does not wait for (not this thread's) and stats() does. Enough for
// callbacks that queue one level deep, as in these tests.
template <class Registry>
void settle(Registry& registry) {
  wsreg_test::drain(registry);
}

// The texts a recording sender received, in order.
Strings texts(const RecordingSender& sender) {
  Strings out;
  for (const Payload& p : sender.received()) out.emplace_back(p.data());
  return out;
}

// The first few of `problems`, one a line, for a failure message.
std::string summary(const Strings& problems) {
  std::ostringstream os;
  os << problems.size() << " problem(s)";
  for (std::size_t i = 0; i < problems.size() && i < 10; ++i) os << "\n  " << problems[i];
  return os.str();
}

template <class Registry>
std::vector<std::shared_ptr<RecordingSender>> add_recorders(Registry& registry, int n, Ids& ids) {
  std::vector<std::shared_ptr<RecordingSender>> senders;
  for (int i = 0; i < n; ++i) {
    senders.push_back(std::make_shared<RecordingSender>());
    ids.push_back(registry.add(senders.back()));
  }
  return senders;
}

// Per connection, its joins (true) and leaves (false) in report order: what
// sharded ActorPolicy keeps of the order (one connection is one shard).
std::map<ConnectionId, std::vector<bool>> per_connection(const std::vector<Entry>& entries) {
  std::map<ConnectionId, std::vector<bool>> out;
  for (const Entry& e : entries) out[e.id].push_back(e.joined);
  return out;
}

// Per-connection data for the [data] tests, with defaults that
// zero-initialisation would not produce.
struct Profile {
  std::string name = "anonymous";
  int score = -1;
};

}  // namespace

// Delivery -------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE(
    "a publish reaches each subscriber of its topic exactly once and nobody else", "[topics]",
    registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 6, ids);
  // red: 0 1 2; green: 1 2 3; blue: 4; connection 5 is in no topic.
  for (int i : {0, 1, 2}) registry.subscribe(ids[i], "red");
  for (int i : {1, 2, 3}) registry.subscribe(ids[i], "green");
  registry.subscribe(ids[4], "blue");

  registry.publish("red", Payload::text("r"));
  registry.publish("green", Payload::text("g"));
  registry.publish("blue", Payload::text("b"));
  registry.flush();

  CHECK(texts(*s[0]) == Strings{"r"});
  CHECK(texts(*s[1]) == Strings{"r", "g"});
  CHECK(texts(*s[2]) == Strings{"r", "g"});
  CHECK(texts(*s[3]) == Strings{"g"});
  CHECK(texts(*s[4]) == Strings{"b"});
  CHECK(texts(*s[5]).empty());
  const auto stats = registry.stats();
  CHECK(stats.messages_sent == 7);
  CHECK(stats.publishes == 3);
  CHECK(stats.broadcasts == 0);
}

TEMPLATE_LIST_TEST_CASE("a publish with an except id skips exactly that subscriber", "[topics]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 6, ids);
  for (int i = 0; i < 5; ++i) registry.subscribe(ids[i], "room");  // 5 is not in "room"

  registry.publish("room", Payload::text("a"), ids[2]);
  registry.publish("room", Payload::text("b"), ids[5]);  // excepts a non-subscriber: skips nobody
  registry.publish("room", Payload::text("c"), wsreg::no_connection);
  registry.flush();

  for (int i = 0; i < 5; ++i) {
    INFO("subscriber " << i);
    CHECK(texts(*s[i]) == (i == 2 ? Strings{"b", "c"} : Strings{"a", "b", "c"}));
  }
  CHECK(texts(*s[5]).empty());
  CHECK(registry.stats().messages_sent == 4 + 5 + 5);
}

TEMPLATE_LIST_TEST_CASE("a publish to a topic without subscribers delivers nothing and is counted",
                        "[topics]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  registry.subscribe(ids[0], "known");
  registry.subscribe(ids[1], "gone");
  registry.unsubscribe(ids[1], "gone");

  registry.publish("unknown", Payload::text("u"));
  registry.publish("gone", Payload::text("g"));
  registry.publish("known", Payload::text("k"));
  registry.flush();

  CHECK(texts(*s[0]) == Strings{"k"});
  CHECK(texts(*s[1]).empty());
  const auto stats = registry.stats();
  CHECK(stats.publishes == 3);
  CHECK(stats.messages_sent == 1);
  // Publishing does not create a topic.
  CHECK(registry.topic_count() == 1);
  CHECK(registry.subscriber_count("unknown") == 0);
  CHECK(registry.subscribers("unknown").empty());
}

TEMPLATE_LIST_TEST_CASE("every subscriber of a publish receives the one shared payload buffer",
                        "[topics]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 60, ids);
  for (int i = 0; i < 50; ++i) registry.subscribe(ids[i], "wide");
  const Payload payload = Payload::binary(std::string(4096, 'x'));
  registry.publish("wide", payload);
  registry.flush();

  for (int i = 0; i < 60; ++i) {
    INFO("connection " << i);
    const auto got = s[i]->received();
    if (i >= 50) {
      CHECK(got.empty());
      continue;
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0].opcode() == wsreg::Opcode::binary);
    CHECK(got[0].shares_buffer_with(payload));  // the registry copied no bytes
  }
  CHECK(registry.stats().messages_sent == 50);
}

// Membership -----------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("subscribing twice is one subscription with one presence event",
                        "[topics][presence]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  auto s = std::make_shared<RecordingSender>();
  const ConnectionId a = registry.add(s);
  registry.subscribe(a, "x");
  registry.subscribe(a, "x");
  registry.publish("x", Payload::text("once"));
  registry.flush();

  CHECK(texts(*s) == Strings{"once"});
  CHECK(registry.subscriber_count("x") == 1);
  CHECK(registry.subscribers("x") == Ids{a});
  CHECK(registry.topics_of(a) == Strings{"x"});
  CHECK(log->entries() == std::vector<Entry>{{"x", a, true, 1}});

  // Not reference counted: one unsubscribe ends it.
  registry.unsubscribe(a, "x");
  registry.flush();
  CHECK(registry.subscriber_count("x") == 0);
  CHECK(registry.topics_of(a).empty());
  CHECK(log->entries() == std::vector<Entry>{{"x", a, true, 1}, {"x", a, false, 0}});
}

TEMPLATE_LIST_TEST_CASE("after unsubscribe a connection receives no more publishes of that topic",
                        "[topics]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  registry.subscribe(ids[0], "news");
  registry.subscribe(ids[1], "news");
  registry.subscribe(ids[0], "sport");
  registry.publish("news", Payload::text("1"));
  registry.unsubscribe(ids[0], "news");
  registry.publish("news", Payload::text("2"));
  registry.publish("sport", Payload::text("s"));  // its other topic still delivers
  registry.flush();

  CHECK(texts(*s[0]) == Strings{"1", "s"});
  CHECK(texts(*s[1]) == Strings{"1", "2"});
  CHECK(registry.topics_of(ids[0]) == Strings{"sport"});
  CHECK(registry.subscribers("news") == Ids{ids[1]});
}

TEMPLATE_LIST_TEST_CASE(
    "subscribe and unsubscribe ignore unknown ids, unknown topics and non-members",
    "[topics][presence]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  Ids ids;
  auto s = add_recorders(registry, 3, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  const ConnectionId removed = ids[2];
  registry.remove(removed);
  registry.subscribe(a, "x");
  registry.subscribe(b, "y");

  registry.subscribe(9999, "x");
  registry.subscribe(wsreg::no_connection, "x");
  registry.subscribe(removed, "z");
  registry.unsubscribe(9999, "x");
  registry.unsubscribe(a, "never");  // unknown topic
  registry.unsubscribe(a, "y");      // a topic a is not in (b is)
  registry.unsubscribe(removed, "x");
  registry.flush();

  CHECK(registry.topic_count() == 2);
  CHECK(registry.subscribers("x") == Ids{a});
  CHECK(registry.subscribers("y") == Ids{b});
  CHECK(registry.subscriber_count("z") == 0);
  CHECK(registry.subscriber_count("never") == 0);
  CHECK(registry.topics_of(a) == Strings{"x"});
  CHECK(registry.topics_of(9999).empty());
  CHECK(registry.topics_of(removed).empty());
  if (wsreg_test::sharded_v<TestType> && wsreg_test::applies_later_v<TestType>) {
    // Sharded ActorPolicy: a and b may be in two shards, reported in either order.
    auto entries = log->entries();
    std::sort(entries.begin(), entries.end(),
              [](const Entry& l, const Entry& r) { return l.topic < r.topic; });
    CHECK(entries == std::vector<Entry>{{"x", a, true, 1}, {"y", b, true, 1}});
  } else {
    CHECK(log->entries() == std::vector<Entry>{{"x", a, true, 1}, {"y", b, true, 1}});
  }
}

TEMPLATE_LIST_TEST_CASE("a topic disappears when its last subscriber leaves", "[topics][presence]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  registry.subscribe(ids[0], "room");
  registry.subscribe(ids[1], "room");
  CHECK(registry.topic_count() == 1);
  CHECK(registry.subscriber_count("room") == 2);

  registry.unsubscribe(ids[0], "room");
  CHECK(registry.topic_count() == 1);
  CHECK(registry.subscriber_count("room") == 1);

  registry.unsubscribe(ids[1], "room");
  CHECK(registry.topic_count() == 0);
  CHECK(registry.subscriber_count("room") == 0);
  CHECK(registry.subscribers("room").empty());
  CHECK(registry.topics_of(ids[1]).empty());
  const auto entries = log->entries();
  REQUIRE(entries.size() == 4);
  CHECK(entries.back() == Entry{"room", ids[1], false, 0});

  // It comes back with its next subscriber.
  registry.subscribe(ids[0], "room");
  CHECK(registry.topic_count() == 1);
  CHECK(registry.subscribers("room") == Ids{ids[0]});
}

TEMPLATE_LIST_TEST_CASE("a removed connection leaves every topic it was in", "[topics][presence]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  for (const char* topic : {"x", "y", "z"}) registry.subscribe(a, topic);
  registry.subscribe(b, "x");
  registry.remove(a);
  registry.flush();

  CHECK(registry.topics_of(a).empty());
  CHECK(registry.topic_count() == 1);
  CHECK(registry.subscribers("x") == Ids{b});
  CHECK(registry.subscriber_count("y") == 0);
  CHECK(registry.subscriber_count("z") == 0);

  // One leave per topic, each with the count right after it (order unspecified).
  auto entries = log->entries();
  REQUIRE(entries.size() == 4 + 3);
  std::vector<Entry> leaves(entries.begin() + 4, entries.end());
  if (wsreg_test::sharded_v<TestType> && wsreg_test::applies_later_v<TestType> &&
      !wsreg_test::same_shard<TestType>(a, b)) {
    // Sharded ActorPolicy, a and b in two shards: b's join may be reported
    // among a's leaves, and a's leave of x then counts 0 (b not in yet).
    leaves.clear();
    for (const Entry& e : entries) {
      if (!e.joined) leaves.push_back(e);
    }
    REQUIRE(leaves.size() == 3);
    for (Entry& e : leaves) {
      if (e.topic == "x" && e.subscribers == 0) e.subscribers = 1;
    }
  }
  std::sort(leaves.begin(), leaves.end(),
            [](const Entry& l, const Entry& r) { return l.topic < r.topic; });
  CHECK(leaves == std::vector<Entry>{{"x", a, false, 1}, {"y", a, false, 0}, {"z", a, false, 0}});

  for (const char* topic : {"x", "y", "z"}) registry.publish(topic, Payload::text(topic));
  registry.remove(a);  // again: no event, not counted
  registry.flush();
  CHECK(s[0]->count() == 0);
  CHECK(texts(*s[1]) == Strings{"x"});
  CHECK(log->entries().size() == 7);
  CHECK(registry.stats().connections_removed == 1);
}

TEMPLATE_LIST_TEST_CASE("topics_of is sorted and subscribers are ascending", "[topics]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 8, ids);
  for (const char* topic : {"zeta", "alpha", "mid", "Beta", "beta", "alpha-2"}) {
    registry.subscribe(ids[0], topic);
  }
  CHECK(registry.topics_of(ids[0]) == Strings{"Beta", "alpha", "alpha-2", "beta", "mid", "zeta"});
  registry.unsubscribe(ids[0], "alpha");
  CHECK(registry.topics_of(ids[0]) == Strings{"Beta", "alpha-2", "beta", "mid", "zeta"});

  for (int i : {5, 2, 7, 0, 3}) registry.subscribe(ids[i], "room");
  registry.unsubscribe(ids[2], "room");  // a hole in the middle of the member set
  for (int i : {6, 1}) registry.subscribe(ids[i], "room");
  CHECK(registry.subscribers("room") == Ids{ids[0], ids[1], ids[3], ids[5], ids[6], ids[7]});
  CHECK(registry.subscriber_count("room") == 6);
}

TEMPLATE_LIST_TEST_CASE(
    "a publish that starts after unsubscribe or remove returned never reaches that connection",
    "[topics][concurrency]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  constexpr int connections = 100;
  Ids ids;
  auto s = add_recorders(registry, connections, ids);
  for (ConnectionId id : ids) registry.subscribe(id, "news");

  // Each publish carries a number taken just before it is issued. After the
  // unsubscribe (even connections) or remove (odd ones) returns, the main
  // thread notes the next number: a publish numbered at or above it started
  // later and must miss that connection.
  std::atomic<std::uint64_t> next_seq{0};
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> cut(connections, 0);
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&] {
      while (!stop.load()) {
        const std::uint64_t seq = next_seq.fetch_add(1);
        registry.publish("news", Payload::text(std::to_string(seq)));
        if (seq % 64 == 0) registry.flush();  // keeps ActorPolicy's mailbox short
      }
    });
  }
  const bool started = wsreg_test::wait_until([&] { return next_seq.load() > 100; });
  for (int i = 0; i < connections; ++i) {
    if (i % 2 == 0) {
      registry.unsubscribe(ids[i], "news");
    } else {
      registry.remove(ids[i]);
    }
    cut[i] = next_seq.load();
  }
  stop = true;
  for (auto& p : publishers) p.join();
  wsreg_test::drain(registry);  // the workers' operations too

  CHECK(started);
  int late = 0;
  for (int i = 0; i < connections; ++i) {
    for (const Payload& p : s[i]->received()) {
      if (wsreg_test::tag_of(p) >= cut[i]) ++late;
    }
  }
  CHECK(late == 0);
  CHECK(registry.topic_count() == 0);
  CHECK(registry.subscriber_count("news") == 0);
  CHECK(registry.size() == std::size_t{connections / 2});
}

TEMPLATE_LIST_TEST_CASE("a sender may subscribe and publish from inside send", "[topics]",
                        registry_policies) {
  using Registry = ConnectionRegistry<TestType>;
  Registry registry;

  // On "join second", subscribes itself to "second" and publishes there.
  class Joiner final : public wsreg::Sender {
   public:
    explicit Joiner(Registry& r) : registry_(r) {}
    void set_id(ConnectionId id) { id_.store(id); }
    wsreg::SendResult send(const Payload& payload) noexcept override {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        received_.emplace_back(payload.data());
      }
      if (payload.data() == "join second") {
        registry_.subscribe(id_.load(), "second");
        registry_.publish("second", Payload::text("hello"));
      }
      return wsreg::SendResult::sent;
    }
    Strings received() const {
      std::lock_guard<std::mutex> lock(mutex_);
      return received_;
    }

   private:
    Registry& registry_;
    std::atomic<ConnectionId> id_{wsreg::no_connection};
    // This mutex synchronizes all access to received_.
    mutable std::mutex mutex_;
    Strings received_;
  };

  auto joiner = std::make_shared<Joiner>(registry);
  const ConnectionId id = registry.add(joiner);
  joiner->set_id(id);
  registry.subscribe(id, "first");
  registry.publish("first", Payload::text("join second"));
  settle(registry);

  CHECK(joiner->received() == Strings{"join second", "hello"});
  CHECK(registry.topics_of(id) == Strings{"first", "second"});
  CHECK(registry.stats().publishes == 2);
}

// Presence -------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE(
    "the presence handler sees every join and leave with its topic, id and count after the change",
    "[presence]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  Ids ids;
  auto s = add_recorders(registry, 3, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  const ConnectionId c = ids[2];
  registry.subscribe(c, "early");  // before the handler: not reported to it

  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  registry.subscribe(a, "chat");
  registry.subscribe(b, "chat");
  registry.unsubscribe(a, "chat");
  registry.remove(b);
  registry.unsubscribe(c, "early");
  registry.flush();

  const std::vector<Entry> in_order{{"chat", a, true, 1},
                                    {"chat", b, true, 2},
                                    {"chat", a, false, 1},
                                    {"chat", b, false, 0},
                                    {"early", c, false, 0}};
  if (wsreg_test::sharded_v<TestType> && wsreg_test::applies_later_v<TestType>) {
    // Sharded ActorPolicy: each connection's events in call order, but the
    // shards' events interleave in the order the shards applied them.
    CHECK(per_connection(log->entries()) == per_connection(in_order));
  } else {
    CHECK(log->entries() == in_order);
  }
}

TEMPLATE_LIST_TEST_CASE(
    "a presence event carries the connection's data, and a leave by removal its last data",
    "[presence][data]", registry_policies) {
  ConnectionRegistry<TestType, std::string> registry;
  const ConnectionId ann = registry.add(std::make_shared<RecordingSender>(), "ann");
  const ConnectionId bob = registry.add(std::make_shared<RecordingSender>(), "bob");

  struct Seen {
    std::string topic;
    ConnectionId id;
    bool joined;
    std::string data;
    bool still_registered;  // registry.data(id) from inside the handler
    bool operator==(const Seen& o) const {
      return topic == o.topic && id == o.id && joined == o.joined && data == o.data &&
             still_registered == o.still_registered;
    }
  };
  // This mutex synchronizes all access to seen (the handler runs on the
  // actor thread under ActorPolicy).
  std::mutex mutex;
  std::vector<Seen> seen;
  registry.set_presence_handler([&](const wsreg::PresenceEvent<std::string>& e) {
    const bool registered = registry.data(e.id).has_value();
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(Seen{std::string(e.topic), e.id, e.joined, e.data, registered});
  });

  registry.subscribe(ann, "chat");
  registry.subscribe(bob, "chat");
  registry.subscribe(bob, "news");
  registry.set_data(ann, "ann 2");
  registry.unsubscribe(ann, "chat");
  registry.update_data(bob, [](std::string& d) { d += " (away)"; });
  registry.remove(bob);  // leaves chat and news: each leave names bob, who is gone
  settle(registry);

  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(seen.size() == 6);
  if (wsreg_test::sharded_v<TestType> && wsreg_test::applies_later_v<TestType>) {
    // Sharded ActorPolicy: ann's events and bob's each in call order, but
    // the two shards' interleaved as they applied them: put them back in
    // the call order (ann join, bob's two joins, ann leave, bob's leaves).
    std::stable_partition(seen.begin(), seen.end(), [&](const Seen& v) { return v.id == ann; });
    REQUIRE(seen[1].id == ann);
    seen = {seen[0], seen[2], seen[3], seen[1], seen[4], seen[5]};
  }
  CHECK(seen[0] == Seen{"chat", ann, true, "ann", true});
  CHECK(seen[1] == Seen{"chat", bob, true, "bob", true});
  CHECK(seen[2] == Seen{"news", bob, true, "bob", true});
  CHECK(seen[3] == Seen{"chat", ann, false, "ann 2", true});
  // The order of a removal's leaves is the order of its topics in the state.
  const bool chat_first = seen[4].topic == "chat";
  CHECK(seen[chat_first ? 4 : 5] == Seen{"chat", bob, false, "bob (away)", false});
  CHECK(seen[chat_first ? 5 : 4] == Seen{"news", bob, false, "bob (away)", false});
}

TEMPLATE_LIST_TEST_CASE("the presence handler may call back into the registry without deadlock",
                        "[presence]", registry_policies) {
  struct Seen {
    std::size_t count;
    Ids subscribers;
    bool has_data;
    std::size_t size;
  };
  // This mutex synchronizes all access to seen (the handler runs on another
  // thread under ActorPolicy).
  std::mutex mutex;
  std::vector<Seen> seen;
  ConnectionRegistry<TestType> registry;  // after what its handler uses, so it goes first

  // On a join of "room": welcomes the newcomer with a publish to the room
  // and subscribes it to "echo" too; on every "room" event, reads back.
  registry.set_presence_handler([&](const PresenceEvent<>& e) {
    if (e.topic != "room") return;
    const std::string topic(e.topic);
    if (e.joined) {
      registry.publish(topic, Payload::text("welcome " + std::to_string(e.id)));
      registry.subscribe(e.id, "echo");
    }
    registry.flush();
    registry.stats();
    registry.topic_count();
    registry.topics_of(e.id);
    Seen view{registry.subscriber_count(topic), registry.subscribers(topic),
              registry.data(e.id).has_value(), registry.size()};
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(std::move(view));
  });

  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  registry.subscribe(a, "room");
  settle(registry);
  registry.subscribe(b, "room");
  settle(registry);
  registry.unsubscribe(a, "room");
  settle(registry);

  const std::string welcome_a = "welcome " + std::to_string(a);
  const std::string welcome_b = "welcome " + std::to_string(b);
  CHECK(texts(*s[0]) == Strings{welcome_a, welcome_b});
  CHECK(texts(*s[1]) == Strings{welcome_b});
  CHECK(registry.topics_of(a) == Strings{"echo"});
  CHECK(registry.topics_of(b) == Strings{"echo", "room"});
  CHECK(registry.subscriber_count("echo") == 2);

  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].count == 1);
  CHECK(seen[0].subscribers == Ids{a});
  CHECK(seen[1].count == 2);
  CHECK(seen[1].subscribers == Ids{a, b});
  CHECK(seen[2].count == 1);
  CHECK(seen[2].subscribers == Ids{b});
  for (const Seen& v : seen) {
    CHECK(v.has_data);
    if (wsreg_test::sharded_v<TestType> && wsreg_test::applies_later_v<TestType>) {
      // Sharded ActorPolicy: from a shard's handler, size() counts the
      // other shards as applied so far (waiting could deadlock), and b's
      // add may not be applied in its shard when a's join is reported.
      CHECK(v.size >= 1);
      CHECK(v.size <= 2);
    } else {
      CHECK(v.size == 2);
    }
  }
}

TEMPLATE_LIST_TEST_CASE(
    "the presence handler sees the registry as it is after the change it reports", "[presence]",
    registry_policies) {
  struct View {
    Entry event;
    bool in_topics_of;    // the topic is among topics_of(event.id)
    bool in_subscribers;  // the id is among subscribers(event.topic)
    std::size_t count;    // subscriber_count(event.topic)
    std::size_t topics;   // topic_count()
  };
  // This mutex synchronizes all access to views.
  std::mutex mutex;
  std::vector<View> views;
  ConnectionRegistry<TestType> registry;  // after what its handler uses, so it goes first
  registry.set_presence_handler([&](const PresenceEvent<>& e) {
    const std::string topic(e.topic);
    const Strings mine = registry.topics_of(e.id);
    const Ids members = registry.subscribers(topic);
    View v{Entry{topic, e.id, e.joined, e.subscribers},
           std::find(mine.begin(), mine.end(), topic) != mine.end(),
           std::find(members.begin(), members.end(), e.id) != members.end(),
           registry.subscriber_count(topic), registry.topic_count()};
    std::lock_guard<std::mutex> lock(mutex);
    views.push_back(std::move(v));
  });

  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  registry.subscribe(a, "solo");
  registry.flush();
  registry.unsubscribe(a, "solo");  // its last member: the topic is gone
  registry.flush();
  registry.subscribe(a, "p");
  registry.subscribe(a, "q");
  registry.subscribe(b, "p");
  registry.flush();
  registry.remove(a);  // leaves p (1 left) and q (gone)
  registry.flush();

  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(views.size() == 7);
  for (const View& v : views) {
    INFO("event " << v.event);
    CHECK(v.in_topics_of == v.event.joined);
    CHECK(v.in_subscribers == v.event.joined);
    CHECK(v.count == v.event.subscribers);
  }
  // "0 means the topic no longer exists" (PresenceEvent::subscribers).
  CHECK(views[0].topics == 1);
  CHECK(views[1].event == Entry{"solo", a, false, 0});
  CHECK(views[1].topics == 0);
}

TEMPLATE_LIST_TEST_CASE("an empty presence handler stops the reports", "[presence]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto first = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(first));
  Ids ids;
  auto s = add_recorders(registry, 3, ids);
  registry.subscribe(ids[0], "x");
  registry.flush();
  REQUIRE(first->entries().size() == 1);

  registry.set_presence_handler(wsreg::PresenceHandler<>{});
  registry.subscribe(ids[1], "x");
  registry.unsubscribe(ids[0], "x");
  registry.remove(ids[1]);
  registry.flush();
  CHECK(first->entries().size() == 1);
  CHECK(first.use_count() == 1);  // the registry let go of the old handler
  CHECK(registry.topic_count() == 0);

  // A new handler resumes the reports, to itself only.
  auto second = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(second));
  registry.subscribe(ids[2], "y");
  registry.flush();
  CHECK(second->entries() == std::vector<Entry>{{"y", ids[2], true, 1}});
  CHECK(first->entries().size() == 1);
}

TEMPLATE_LIST_TEST_CASE("a throwing presence handler breaks nothing", "[presence]",
                        registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto calls = std::make_shared<std::atomic<int>>(0);
  registry.set_presence_handler([calls](const PresenceEvent<>&) {
    calls->fetch_add(1);
    throw std::runtime_error("presence handler failure");
  });
  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  registry.subscribe(a, "x");
  registry.subscribe(a, "y");
  registry.subscribe(b, "x");
  registry.publish("x", Payload::text("1"));
  registry.remove(a);  // two leaves: the second is reported although the first threw
  registry.publish("x", Payload::text("2"));
  registry.flush();

  CHECK(calls->load() == 5);
  CHECK(texts(*s[0]) == Strings{"1"});
  CHECK(texts(*s[1]) == Strings{"1", "2"});
  CHECK(registry.topic_count() == 1);
  CHECK(registry.subscribers("x") == Ids{b});
  CHECK(registry.size() == 1);
  CHECK(registry.stats().connections_removed == 1);
}

TEMPLATE_LIST_TEST_CASE("presence counts stay exact under concurrent churn",
                        "[presence][concurrency]", registry_policies) {
  using Registry = ConnectionRegistry<TestType>;
  using Worker = ChurnWorker<Registry>;
  Registry registry;
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));

  constexpr int threads = 8;
  constexpr int topics = 4;
  constexpr std::size_t calls = 10000;
  const std::uint32_t seed = Catch::rngSeed() + 101;
  INFO("worker seeds " << seed << " + worker index");
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    workers.push_back(
        std::make_unique<Worker>(registry, t, seed + static_cast<std::uint32_t>(t), topics));
  }
  std::atomic<bool> go{false};
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&go, worker = w.get()] { worker->run(calls, go); });
  go = true;
  for (auto& r : running) r.join();
  wsreg_test::drain(registry);  // the workers' operations too

  // The model: each (topic, id) pair belongs to one worker, so its sequence
  // of joins and leaves follows from that worker's calls alone.
  TopicModel model;
  std::map<std::pair<std::string, ConnectionId>, std::vector<bool>> expected_pairs;
  const auto replay = [&](const TopicOp& op) {
    for (const auto& [topic, joined] : model.apply(op).presence) {
      expected_pairs[{topic_name(topic), op.id}].push_back(joined);
    }
  };
  for (const auto& w : workers) {
    for (const TopicOp& op : w->ops()) replay(op);
  }

  // Checks the log against the model and the registry; returns what is wrong.
  const auto presence_problems = [&] {
    Strings problems;
    const auto entries = log->entries();
    std::map<std::pair<std::string, ConnectionId>, std::vector<bool>> pairs;
    for (const Entry& e : entries) pairs[{e.topic, e.id}].push_back(e.joined);
    if (pairs != expected_pairs) {
      problems.push_back("the joins and leaves per (topic, id) differ from the model's");
    }
    for (int t = 0; t <= topics; ++t) {
      const std::string name = topic_name(t);
      // Order-independent count check (MutexPolicy may report in any order):
      // the counts walk from 0 to `now` in steps of one; a join reporting c
      // crosses c-1 -> c upward, a leave reporting c-1 crosses it downward.
      std::map<std::size_t, long> ups;
      std::map<std::size_t, long> downs;
      long net = 0;
      std::size_t highest = 0;
      for (const Entry& e : entries) {
        if (e.topic != name) continue;
        net += e.joined ? 1 : -1;
        (e.joined ? ups : downs)[e.subscribers] += 1;
        highest = std::max(highest, e.subscribers);
        if (e.joined && e.subscribers == 0) problems.push_back(name + ": a join reported 0");
      }
      const std::size_t now = registry.subscriber_count(name);
      if (now != model.subscribers(t).size())
        problems.push_back(name + ": count differs from model");
      if (net != static_cast<long>(now)) {
        problems.push_back(name + ": joins - leaves = " + std::to_string(net) +
                           ", subscriber_count " + std::to_string(now));
      }
      for (std::size_t c = 1; c <= highest + 1; ++c) {
        if (ups[c] - downs[c - 1] != (c <= now ? 1 : 0)) {
          problems.push_back(name + ": reported counts do not form a walk at " + std::to_string(c));
        }
      }
    }
    return problems;
  };

  {
    const Strings during = presence_problems();
    INFO("after churn: " << summary(during));
    CHECK(during.empty());
  }
  CHECK(registry.topic_count() == model.topic_count());

  // Everyone leaves: every topic goes, every count returns to 0.
  for (ConnectionId id : model.connections()) {
    registry.remove(id);
    replay(TopicOp{TopicOp::Kind::remove, id});
  }
  registry.flush();
  {
    const Strings after = presence_problems();
    INFO("after removing everyone: " << summary(after));
    CHECK(after.empty());
  }
  CHECK(registry.topic_count() == 0);
  CHECK(registry.size() == 0);
}

// Per-connection data --------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("a connection added without data holds a default-constructed Data",
                        "[data]", registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  const ConnectionId id = registry.add(std::make_shared<CountingSender>());
  const std::optional<Profile> d = registry.data(id);
  REQUIRE(d.has_value());
  CHECK(d->name == "anonymous");
  CHECK(d->score == -1);

  // With no Data type, data() still tells a known id from an unknown one.
  ConnectionRegistry<TestType> plain;
  const ConnectionId p = plain.add(std::make_shared<CountingSender>());
  CHECK(plain.data(p).has_value());
  CHECK_FALSE(plain.data(p + 1).has_value());
}

TEMPLATE_LIST_TEST_CASE("add stores the given data and data() returns a copy of it", "[data]",
                        registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  const ConnectionId ada = registry.add(std::make_shared<CountingSender>(), Profile{"ada", 36});
  const ConnectionId bob = registry.add(std::make_shared<CountingSender>(), Profile{"bob", 7});

  std::optional<Profile> d = registry.data(ada);
  REQUIRE(d.has_value());
  CHECK(d->name == "ada");
  CHECK(d->score == 36);
  d->name = "changed";  // the copy, not the registry's
  CHECK(registry.data(ada)->name == "ada");
  CHECK(registry.data(bob)->name == "bob");
  CHECK(registry.data(bob)->score == 7);
}

TEMPLATE_LIST_TEST_CASE("data is nullopt for unknown and removed ids", "[data]",
                        registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  CHECK_FALSE(registry.data(9999).has_value());
  CHECK_FALSE(registry.data(wsreg::no_connection).has_value());

  const ConnectionId id = registry.add(std::make_shared<CountingSender>(), Profile{"x", 1});
  registry.remove(id);
  CHECK_FALSE(registry.data(id).has_value());
  registry.set_data(id, Profile{"ghost", 2});  // ignored: it does not come back
  CHECK_FALSE(registry.data(id).has_value());
  CHECK(registry.size() == 0);

  // A new connection gets its own data, not the removed one's.
  const ConnectionId next = registry.add(std::make_shared<CountingSender>());
  REQUIRE(registry.data(next).has_value());
  CHECK(registry.data(next)->name == "anonymous");
}

TEMPLATE_LIST_TEST_CASE("a data read sees the set_data and update_data this thread made before",
                        "[data]", registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  const ConnectionId id = registry.add(std::make_shared<CountingSender>(), Profile{"start", 0});
  const ConnectionId other = registry.add(std::make_shared<CountingSender>(), Profile{"other", 9});

  int stale = 0;
  for (int i = 0; i < 200; ++i) {
    registry.set_data(id, Profile{"v" + std::to_string(i), i});
    const auto after_set = registry.data(id);
    if (!after_set || after_set->score != i || after_set->name != "v" + std::to_string(i)) ++stale;
    registry.update_data(id, [](Profile& p) { p.score += 1000; });
    const auto after_update = registry.data(id);
    if (!after_update || after_update->score != i + 1000) ++stale;
  }
  CHECK(stale == 0);
  CHECK(registry.data(other)->name == "other");  // the others' data is untouched
  CHECK(registry.data(other)->score == 9);
}

TEMPLATE_LIST_TEST_CASE("update_data on an unknown or removed id does not call the function",
                        "[data]", registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  auto calls = std::make_shared<std::atomic<int>>(0);
  const auto count_call = [calls](Profile&) { calls->fetch_add(1); };

  registry.update_data(9999, count_call);
  const ConnectionId removed = registry.add(std::make_shared<CountingSender>());
  registry.remove(removed);
  registry.update_data(removed, count_call);
  const ConnectionId live = registry.add(std::make_shared<CountingSender>());
  registry.update_data(live, count_call);
  registry.flush();
  CHECK(calls->load() == 1);
}

TEMPLATE_LIST_TEST_CASE(
    "an update_data function that throws is ignored and the registry carries on", "[data]",
    registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  auto s = std::make_shared<RecordingSender>();
  const ConnectionId id = registry.add(s, Profile{"before", 0});
  registry.update_data(id, [](Profile& p) {
    p.score = 5;
    throw std::runtime_error("update failure");
  });
  registry.update_data(id, [](Profile& p) { p.name = "after"; });
  const auto d = registry.data(id);
  REQUIRE(d.has_value());
  CHECK(d->name == "after");
  CHECK(d->score == 5);  // what it changed before throwing stays
  registry.subscribe(id, "t");
  registry.publish("t", Payload::text("still here"));
  registry.flush();
  CHECK(texts(*s) == Strings{"still here"});
}

TEMPLATE_LIST_TEST_CASE("concurrent update_data calls on one connection lose no update",
                        "[data][concurrency]", registry_policies) {
  ConnectionRegistry<TestType, Profile> registry;
  const ConnectionId id = registry.add(std::make_shared<CountingSender>(), Profile{"counter", 0});
  constexpr int threads = 8;
  constexpr int per_thread = 5000;
  std::atomic<bool> go{false};
  std::atomic<int> done{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) registry.update_data(id, [](Profile& p) { ++p.score; });
      done.fetch_add(1);
    });
  }
  // A reader meanwhile: each read is one consistent value, so they never go back.
  std::vector<int> reads;
  std::thread reader([&] {
    while (!go.load()) std::this_thread::yield();
    while (done.load() < threads) {
      const auto d = registry.data(id);
      reads.push_back(d ? d->score : -2);
    }
  });
  go = true;
  for (auto& w : workers) w.join();
  reader.join();

  const auto d = registry.data(id);
  REQUIRE(d.has_value());
  CHECK(d->score == threads * per_thread);
  CHECK(std::is_sorted(reads.begin(), reads.end()));
  CHECK(std::all_of(reads.begin(), reads.end(),
                    [](int v) { return v >= 0 && v <= threads * per_thread; }));
}

// Everything at once ---------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("concurrent topic churn ends in the state a sequential model predicts",
                        "[topics][concurrency]", registry_policies) {
  using Registry = ConnectionRegistry<TestType>;
  using Worker = ChurnWorker<Registry>;
  Registry registry;
  constexpr int threads = 8;
  constexpr int topics = 5;  // topic number 5 is never joined
  constexpr std::size_t calls = 20000;
  const std::uint32_t seed = Catch::rngSeed() + 1;
  INFO("worker seeds " << seed << " + worker index");

  // Phase one: every worker adds, removes, subscribes, unsubscribes and
  // publishes at once over its own few connections and the shared topics.
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    workers.push_back(
        std::make_unique<Worker>(registry, t, seed + static_cast<std::uint32_t>(t), topics));
  }
  std::atomic<bool> go{false};
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&go, worker = w.get()] { worker->run(calls, go); });
  go = true;
  for (auto& r : running) r.join();
  wsreg_test::drain(registry);  // the workers' operations too

  // Replay. Which of a worker's own publishes reach its own connections is
  // fixed by its call order; another worker's publish may or may not reach a
  // connection whose membership changed meanwhile, but only if it was ever a
  // member of that topic, never if excepted, never twice.
  TopicModel model;
  std::map<ConnectionId, int> owner;
  std::map<ConnectionId, std::vector<std::uint64_t>> expected_own;
  std::map<ConnectionId, std::set<int>> ever;
  std::map<std::uint64_t, TopicOp> publish_of;
  std::uint64_t adds = 0;
  std::uint64_t removes = 0;
  std::uint64_t publishes = 0;
  for (const auto& w : workers) {
    for (const TopicOp& op : w->ops()) {
      if (op.kind == TopicOp::Kind::remove && model.alive(op.id)) ++removes;
      const TopicModel::Outcome out = model.apply(op);
      switch (op.kind) {
        case TopicOp::Kind::add:
          owner[op.id] = w->index();
          ++adds;
          break;
        case TopicOp::Kind::subscribe:
          if (!out.presence.empty()) ever[op.id].insert(op.topic);
          break;
        case TopicOp::Kind::publish:
          ++publishes;
          publish_of[op.tag] = op;
          for (ConnectionId r : out.recipients) {
            if (owner.at(r) == w->index()) expected_own[r].push_back(op.tag);
          }
          break;
        default:
          break;
      }
    }
  }

  Strings delivery;
  std::uint64_t delivered = 0;
  std::map<ConnectionId, std::size_t> phase_one_count;
  for (const auto& w : workers) {
    for (const auto& [id, sender] : w->senders()) {
      const auto received = sender->received();
      phase_one_count[id] = received.size();
      delivered += received.size();
      std::set<std::uint64_t> seen;
      std::vector<std::uint64_t> own;
      for (const Payload& p : received) {
        const std::uint64_t tag = wsreg_test::tag_of(p);
        const std::string where =
            "connection " + std::to_string(id) + ", publish " + std::to_string(tag);
        if (!seen.insert(tag).second) delivery.push_back(where + ": delivered twice");
        const TopicOp& op = publish_of.at(tag);
        if (op.id == id) delivery.push_back(where + ": delivered to its except id");
        if (Worker::publisher_of(tag) == w->index()) {
          own.push_back(tag);
        } else if (ever[id].count(op.topic) == 0) {
          delivery.push_back(where + ": never subscribed to topic " + std::to_string(op.topic));
        }
      }
      if (own != expected_own[id]) {
        delivery.push_back("connection " + std::to_string(id) + ": got " +
                           std::to_string(own.size()) +
                           " of its own worker's publishes, the model says " +
                           std::to_string(expected_own[id].size()));
      }
    }
  }
  {
    INFO("deliveries: " << summary(delivery));
    CHECK(delivery.empty());
  }

  Strings state;
  for (const auto& [id, worker] : owner) {
    if (registry.topics_of(id) != model.topics_of(id)) {
      state.push_back("topics_of(" + std::to_string(id) + ") differs from the model");
    }
  }
  {
    INFO("membership: " << summary(state));
    CHECK(state.empty());
  }
  for (int t = 0; t <= topics; ++t) {
    INFO("topic " << t);
    CHECK(registry.subscribers(topic_name(t)) == model.subscribers(t));
    CHECK(registry.subscriber_count(topic_name(t)) == model.subscribers(t).size());
  }
  CHECK(registry.topic_count() == model.topic_count());
  CHECK(registry.size() == model.size());
  const auto stats = registry.stats();
  CHECK(stats.connections_added == adds);
  CHECK(stats.connections_removed == removes);
  CHECK(stats.publishes == publishes);
  CHECK(stats.messages_sent == delivered);
  CHECK(stats.messages_dropped == 0);

  // Phase two: memberships hold still while every worker publishes at once,
  // so each connection must get exactly the publishes of its topics.
  struct Sent {
    int topic;
    ConnectionId except;
    Payload payload;
  };
  constexpr int per_thread = 2000;
  Ids everyone;
  for (const auto& entry : owner) everyone.push_back(entry.first);
  std::vector<std::vector<Sent>> sent(threads);
  std::atomic<bool> go_again{false};
  running.clear();
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      std::mt19937 rng(seed + 1000 + static_cast<std::uint32_t>(t));
      const auto pick = [&rng](std::size_t bound) {
        return std::uniform_int_distribution<std::size_t>(0, bound - 1)(rng);
      };
      while (!go_again.load()) std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) {
        const int topic = static_cast<int>(pick(topics + 1));
        const ConnectionId except =
            pick(2) == 0 ? everyone[pick(everyone.size())] : wsreg::no_connection;
        Payload payload =
            Payload::text(std::to_string(Worker::tag(threads + t, static_cast<std::uint64_t>(i))));
        sent[t].push_back(Sent{topic, except, payload});
        registry.publish(topic_name(topic), std::move(payload), except);
      }
    });
  }
  go_again = true;
  for (auto& r : running) r.join();
  wsreg_test::drain(registry);  // the workers' operations too

  std::map<ConnectionId, std::size_t> expected_count;
  std::map<std::uint64_t, const Sent*> sent_by_tag;
  for (int t = 0; t < threads; ++t) {
    for (const Sent& p : sent[t]) {
      sent_by_tag[wsreg_test::tag_of(p.payload)] = &p;
      for (ConnectionId r : model.subscribers(p.topic)) {
        if (r != p.except) ++expected_count[r];
      }
    }
  }
  Strings stable;
  for (const auto& w : workers) {
    for (const auto& [id, sender] : w->senders()) {
      const auto received = sender->received();
      const std::size_t got = received.size() - phase_one_count[id];
      if (got != expected_count[id]) {
        stable.push_back("connection " + std::to_string(id) + ": " + std::to_string(got) +
                         " publishes, expected " + std::to_string(expected_count[id]));
      }
      std::set<std::uint64_t> seen;
      for (std::size_t i = phase_one_count[id]; i < received.size(); ++i) {
        const std::uint64_t tag = wsreg_test::tag_of(received[i]);
        const auto it = sent_by_tag.find(tag);
        if (it == sent_by_tag.end() || !seen.insert(tag).second ||
            !received[i].shares_buffer_with(it->second->payload) || it->second->except == id) {
          stable.push_back("connection " + std::to_string(id) + ": unexpected publish " +
                           std::to_string(tag));
        }
      }
    }
  }
  {
    INFO("stable phase: " << summary(stable));
    CHECK(stable.empty());
  }
  CHECK(registry.stats().publishes == publishes + threads * per_thread);
}

// The lifecycle lane -----------------------------------------------------------
// ActorPolicy applies subscribe and unsubscribe ahead of the publishes
// queued before them, with the results of applying everything in order.

namespace {

// Holds the delivering thread twice from a thread of its own, sending to
// `holder` (ActorPolicy: the actor, with the second hold queued behind the
// first before this returns; MutexPolicy: that thread only).
template <class Registry>
class Hold {
 public:
  Hold(Registry& registry, ConnectionId holder_id,
       std::shared_ptr<wsreg_test::StagedSender> holder, bool actor)
      : holder_(std::move(holder)), thread_([this, &registry, holder_id] {
          registry.send(holder_id, Payload::text("hold 1"));
          registry.send(holder_id, Payload::text("hold 2"));
          second_posted_.store(true);
        }) {
    REQUIRE(holder_->wait_entered(1) == 1);
    if (actor) REQUIRE(wsreg_test::wait_until([this] { return second_posted_.load(); }));
  }
  ~Hold() {
    holder_->let_go(2);
    thread_.join();
  }
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;

  /// Ends the first hold and waits until the second one holds.
  void step() {
    holder_->let_go(1);
    REQUIRE(holder_->wait_entered(2) == 2);
  }

 private:
  std::shared_ptr<wsreg_test::StagedSender> holder_;
  std::atomic<bool> second_posted_{false};
  std::thread thread_;
};

// Whether the hold holds every connection: one actor (ActorPolicy).
template <class Policy>
constexpr bool is_actor_policy() {
  return wsreg_test::single_actor_v<Policy>;
}

// Whether operations apply later on actor threads (ActorPolicy, alone or
// sharded): then the hold's second send is queued before it returns.
template <class Policy>
constexpr bool applies_later() {
  return wsreg_test::applies_later_v<Policy>;
}


}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "a publish queued before unsubscribe reaches the subscriber, one queued after does not",
    "[topics][lanes][presence]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto holder = std::make_shared<wsreg_test::StagedSender>(2);
  const ConnectionId holder_id = registry.add(holder);
  Ids ids;
  auto s = add_recorders(registry, 2, ids);
  registry.subscribe(ids[0], "news");
  registry.subscribe(ids[1], "news");
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  registry.flush();
  {
    Hold<ConnectionRegistry<TestType>> hold(registry, holder_id, holder, applies_later<TestType>());
    registry.publish("news", Payload::text("before"));
    registry.unsubscribe(ids[0], "news");
    registry.publish("news", Payload::text("after"));
    hold.step();
    // ActorPolicy: the unsubscribe is applied, both publishes still queued.
    if constexpr (is_actor_policy<TestType>()) CHECK(s[0]->count() == 0);
    // Sharded ActorPolicy: in another shard than the holder's, the
    // unsubscribe may not be applied yet; checked after the drain.
    if (!wsreg_test::sharded_v<TestType> || !applies_later<TestType>()) {
      CHECK(log->entries() == std::vector<Entry>{{"news", ids[0], false, 1}});
    }
  }
  wsreg_test::drain(registry);
  CHECK(log->entries() == std::vector<Entry>{{"news", ids[0], false, 1}});
  CHECK(texts(*s[0]) == Strings{"before"});
  CHECK(texts(*s[1]) == Strings{"before", "after"});
  CHECK(registry.subscribers("news") == Ids{ids[1]});
  CHECK(registry.topics_of(ids[0]).empty());
  CHECK(registry.stats().messages_sent == 3 + 2);  // + the two holds
}

TEMPLATE_LIST_TEST_CASE(
    "unsubscribe and subscribe again behind a backlog give the in-order result",
    "[topics][lanes][presence]", registry_policies) {
  ConnectionRegistry<TestType> registry;
  auto holder = std::make_shared<wsreg_test::StagedSender>(2);
  const ConnectionId holder_id = registry.add(holder);
  Ids ids;
  auto s = add_recorders(registry, 3, ids);
  const ConnectionId a = ids[0];
  const ConnectionId b = ids[1];
  const ConnectionId c = ids[2];
  registry.subscribe(a, "t");
  registry.subscribe(b, "t");
  auto log = std::make_shared<PresenceLog>();
  registry.set_presence_handler(PresenceLog::handler(log));
  registry.flush();
  {
    Hold<ConnectionRegistry<TestType>> hold(registry, holder_id, holder, applies_later<TestType>());
    registry.publish("t", Payload::text("1"));
    registry.unsubscribe(a, "t");
    registry.publish("t", Payload::text("2"));
    registry.subscribe(a, "t");  // its leave is still logical (ActorPolicy): catches up first
    registry.publish("t", Payload::text("3"));
    registry.unsubscribe(a, "t");
    registry.subscribe(a, "t");  // again, with no publish in between
    registry.unsubscribe(b, "t");
    registry.subscribe(b, "t");
    registry.subscribe(c, "t");
    registry.publish("t", Payload::text("4"));
    registry.unsubscribe(c, "t");
    registry.remove(b);
    registry.publish("t", Payload::text("5"));
    registry.subscribe(c, "t");
    hold.step();
    // ActorPolicy: every change is applied, with the publishes still queued
    // behind the hold; a subscribe that rejoins while its leave is still
    // logical waits for nothing either (a wait would last until the
    // holder's 30 s safety deadline). (The other queries would wait for the
    // hold: the actor thread answers them.)
    const auto asked = std::chrono::steady_clock::now();
    CHECK(registry.size() == 3);
    CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(5));
    if constexpr (is_actor_policy<TestType>()) CHECK(s[0]->count() == 0);
  }
  wsreg_test::drain(registry);
  CHECK(texts(*s[0]) == Strings{"1", "3", "4", "5"});
  CHECK(texts(*s[1]) == Strings{"1", "2", "3", "4"});
  CHECK(texts(*s[2]) == Strings{"4"});
  const std::vector<Entry> in_order{{"t", a, false, 1},
                                    {"t", a, true, 2},
                                    {"t", a, false, 1},
                                    {"t", a, true, 2},
                                    {"t", b, false, 1},
                                    {"t", b, true, 2},
                                    {"t", c, true, 3},
                                    {"t", c, false, 2},
                                    {"t", b, false, 1},
                                    {"t", c, true, 2}};
  if (wsreg_test::sharded_v<TestType> && applies_later<TestType>()) {
    // Sharded ActorPolicy: one order per shard, not across them (the counts
    // then follow the order the shards reported in).
    CHECK(per_connection(log->entries()) == per_connection(in_order));
  } else CHECK(log->entries() == std::vector<Entry>{{"t", a, false, 1},
                                             {"t", a, true, 2},
                                             {"t", a, false, 1},
                                             {"t", a, true, 2},
                                             {"t", b, false, 1},
                                             {"t", b, true, 2},
                                             {"t", c, true, 3},
                                             {"t", c, false, 2},
                                             {"t", b, false, 1},
                                             {"t", c, true, 2}});
  CHECK(registry.subscribers("t") == Ids{a, c});
  CHECK(registry.topic_count() == 1);
  CHECK(registry.stats().messages_sent == 9 + 2);  // + the two holds
}

namespace {

// Costs about `cost` per send (a busy wait), so that deliveries lag behind
// the calls that queue them (ActorPolicy), by a varying amount.
class SlowSender final : public wsreg::Sender {
 public:
  explicit SlowSender(std::chrono::microseconds cost) : cost_(cost) {}
  wsreg::SendResult send(const Payload&) noexcept override {
    const auto until = std::chrono::steady_clock::now() + cost_;
    while (std::chrono::steady_clock::now() < until) {
    }
    return wsreg::SendResult::sent;
  }

 private:
  std::chrono::microseconds cost_;
};

}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "calls from one thread give the in-order result however far the deliveries lag behind",
    "[topics][lanes][presence]", registry_policies) {
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    INFO("seed " << seed);
    ConnectionRegistry<TestType> registry;
    auto log = std::make_shared<PresenceLog>();
    registry.set_presence_handler(PresenceLog::handler(log));
    TopicModel model;
    const ConnectionId slow_id = registry.add(std::make_shared<SlowSender>(std::chrono::microseconds(20)));
    model.apply({TopicOp::Kind::add, slow_id});
    std::map<ConnectionId, std::shared_ptr<RecordingSender>> senders;
    std::map<ConnectionId, std::vector<std::uint64_t>> expected;
    std::map<std::string, std::vector<Entry>> expected_presence;  // per topic: exactly ordered
    Ids added;
    std::uint64_t adds = 1;
    std::uint64_t removes = 0;
    std::uint64_t unknown = 0;
    std::uint64_t tag = 0;
    std::mt19937 rng(seed);
    const auto pick = [&rng](int bound) { return std::uniform_int_distribution<int>(0, bound - 1)(rng); };
    // A target among the last few ids added (some removed): the same ones
    // join and leave again and again.
    const auto some_id = [&] {
      const int window = std::min<int>(static_cast<int>(added.size()), 6);
      return added[added.size() - 1 - static_cast<std::size_t>(pick(window))];
    };
    const auto note_presence = [&](const TopicOp& op, const TopicModel::Outcome& out) {
      for (const auto& [topic, joined] : out.presence) {
        expected_presence[topic_name(topic)].push_back(
            Entry{topic_name(topic), op.id, joined, model.subscribers(topic).size()});
      }
    };
    for (int step = 0; step < 3000; ++step) {
      const int roll = pick(100);
      if (added.size() < 3 || roll < 8) {
        auto sender = std::make_shared<RecordingSender>();
        const ConnectionId id = registry.add(sender);
        senders.emplace(id, sender);
        added.push_back(id);
        model.apply({TopicOp::Kind::add, id});
        ++adds;
      } else if (roll < 14) {
        const TopicOp op{TopicOp::Kind::remove, some_id()};
        if (model.alive(op.id)) ++removes;
        registry.remove(op.id);
        note_presence(op, model.apply(op));
      } else if (roll < 38) {
        const TopicOp op{TopicOp::Kind::subscribe, some_id(), pick(3)};
        registry.subscribe(op.id, topic_name(op.topic));
        note_presence(op, model.apply(op));
      } else if (roll < 60) {
        const TopicOp op{TopicOp::Kind::unsubscribe, some_id(), pick(3)};
        registry.unsubscribe(op.id, topic_name(op.topic));
        note_presence(op, model.apply(op));
      } else if (roll < 76) {
        const TopicOp op{TopicOp::Kind::publish, pick(2) == 0 ? some_id() : wsreg::no_connection,
                         pick(3), ++tag};
        registry.publish(topic_name(op.topic), Payload::text(std::to_string(op.tag)), op.id);
        for (ConnectionId r : model.apply(op).recipients) expected[r].push_back(op.tag);
      } else if (roll < 88) {
        const ConnectionId except = pick(2) == 0 ? some_id() : wsreg::no_connection;
        registry.broadcast(Payload::text(std::to_string(++tag)), except);
        for (ConnectionId r : model.connections()) {
          if (r != except) expected[r].push_back(tag);
        }
      } else {
        const ConnectionId id = some_id();
        registry.send(id, Payload::text(std::to_string(++tag)));
        if (model.alive(id)) {
          expected[id].push_back(tag);
        } else {
          ++unknown;
        }
      }
      if (pick(200) == 0) registry.flush();  // lets the deliveries catch up now and then
    }
    // Before the deliveries are made (ActorPolicy: probably), the
    // membership already answers in full.
    CHECK(registry.size() == model.size());
    for (int t = 0; t < 3; ++t) {
      CHECK(registry.subscribers(topic_name(t)) == model.subscribers(t));
    }
    wsreg_test::drain(registry);

    Strings wrong;
    for (const auto& [id, sender] : senders) {
      std::vector<std::uint64_t> got;
      for (const Payload& p : sender->received()) got.push_back(wsreg_test::tag_of(p));
      if (got != expected[id]) {
        wrong.push_back("connection " + std::to_string(id) + ": " + std::to_string(got.size()) +
                        " deliveries, the model says " + std::to_string(expected[id].size()));
      }
      if (registry.topics_of(id) != model.topics_of(id)) {
        wrong.push_back("topics_of(" + std::to_string(id) + ") differs from the model");
      }
    }
    std::map<std::string, std::vector<Entry>> presence;
    for (const Entry& e : log->entries()) presence[e.topic].push_back(e);
    {
      INFO(summary(wrong));
      CHECK(wrong.empty());
    }
    if (wsreg_test::sharded_v<TestType> && wsreg_test::applies_later_v<TestType>) {
      // Sharded ActorPolicy: per (topic, connection) in call order; the
      // shards interleave (and the counts follow their interleaving).
      std::map<std::pair<std::string, ConnectionId>, std::vector<bool>> got_pairs, want_pairs;
      for (const auto& [name, entries] : presence) {
        for (const Entry& e : entries) got_pairs[{name, e.id}].push_back(e.joined);
      }
      for (const auto& [name, entries] : expected_presence) {
        for (const Entry& e : entries) want_pairs[{name, e.id}].push_back(e.joined);
      }
      CHECK(got_pairs == want_pairs);
    } else {
      CHECK(presence == expected_presence);
    }
    CHECK(registry.topic_count() == model.topic_count());
    const auto stats = registry.stats();
    CHECK(stats.connections_added == adds);
    CHECK(stats.connections_removed == removes);
    CHECK(stats.send_unknown == unknown);
  }
}
