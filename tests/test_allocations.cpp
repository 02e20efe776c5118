// Proves that a broadcast allocates nothing per recipient: the payload is
// shared, not copied. Counts allocations through the replaced global
// operator new of allocation_hooks.cpp, so it lives in its own executable.
#include "wsreg/connection_registry.hpp"

#include <atomic>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "allocation_hooks.hpp"
#include "policies.hpp"
#include "support.hpp"

using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::CountingSender;

namespace {

// Allocations made (by any thread) while one broadcast of `payload` to
// `recipients` connections is issued and applied.
template <class Policy>
long allocations_for_broadcast(std::size_t recipients, const Payload& payload) {
  ConnectionRegistry<Policy> registry;
  std::vector<std::shared_ptr<CountingSender>> senders;
  for (std::size_t i = 0; i < recipients; ++i) {
    senders.push_back(std::make_shared<CountingSender>());
    registry.add(senders.back());
  }
  registry.broadcast(payload);  // warm-up: snapshots, mailbox capacity
  registry.flush();
  const long before = wsreg_test::alloc::count();
  registry.broadcast(payload);
  registry.flush();
  const long used = wsreg_test::alloc::count() - before;
  for (const auto& s : senders) {
    if (s->count() != 2 || s->last_data() != payload.data().data()) return -1;
  }
  return used;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("a broadcast allocates nothing per recipient and shares one buffer",
                        "[registry][payload]", wsreg_test::registry_policies) {
  const Payload payload = Payload::text(std::string(1024, 'p'));
  const long to_ten = allocations_for_broadcast<TestType>(10, payload);
  const long to_ten_thousand = allocations_for_broadcast<TestType>(10000, payload);
  INFO("allocations for 10 recipients: " << to_ten << ", for 10,000: " << to_ten_thousand);
  REQUIRE(to_ten >= 0);  // -1: a recipient missed the broadcast or saw another buffer
  REQUIRE(to_ten_thousand >= 0);
  // A per-recipient copy would cost at least 10,000 here. What remains is a
  // constant: ActorPolicy's flush (its promise) and mailbox growth, once
  // per shard under ShardedPolicy.
  constexpr long per_shard = 8;
  CHECK(to_ten <= per_shard * long{wsreg_test::sharding<TestType>::shards});
  CHECK(to_ten_thousand <= per_shard * long{wsreg_test::sharding<TestType>::shards});
}

// Exception safety: a std::bad_alloc at any allocation of an operation
// leaves the registry exactly as it was. The failure is injected at the Nth
// allocation of the thread that applies the operation, for N = 1, 2, ...
// until the operation goes through without reaching N.

namespace {

using wsreg::ConnectionId;
namespace alloc = wsreg_test::alloc;

constexpr std::string_view arm_text = "arm the fault";
constexpr std::string_view disarm_text = "disarm the fault";

// Arms the injected failure on the thread that calls its send(): the thread
// that applies the registry's operations (ActorPolicy: the actor thread;
// MutexPolicy: the caller). Reacts only to arm_text, not to broadcasts.
class FaultArmer final : public wsreg::Sender {
 public:
  void at(long n) { n_.store(n); }
  wsreg::SendResult send(const Payload& payload) noexcept override {
    if (payload.data() == arm_text) alloc::fail_nth_here(n_.load());
    return wsreg::SendResult::sent;
  }

 private:
  std::atomic<long> n_{0};
};

// Disarms it on that thread, and records whether the failure was injected.
class FaultDisarmer final : public wsreg::Sender {
 public:
  bool injected() const { return injected_.load(); }
  wsreg::SendResult send(const Payload& payload) noexcept override {
    if (payload.data() == disarm_text) injected_.store(alloc::disarm_here());
    return wsreg::SendResult::sent;
  }

 private:
  std::atomic<bool> injected_{false};
};

// Strings longer than any small-string buffer, so that copying one allocates.
std::string long_text(const std::string& what) { return what + std::string(40, '.'); }

const std::string topic = long_text("a topic");
const std::string other_topic = long_text("another topic");

// A registry of three connections with data (0 and 1 subscribed to `topic`),
// the armer and the disarmer, a presence handler that allocates nothing,
// and the operands of the operation under test, made before anything is
// armed so that the test's own allocations are not counted.
template <class Policy>
struct Fixture {
  ConnectionRegistry<Policy, std::string> registry;
  std::vector<std::shared_ptr<CountingSender>> senders;
  std::vector<ConnectionId> ids;
  std::shared_ptr<FaultArmer> armer = std::make_shared<FaultArmer>();
  std::shared_ptr<FaultDisarmer> disarmer = std::make_shared<FaultDisarmer>();
  ConnectionId armer_id = wsreg::no_connection;
  ConnectionId disarmer_id = wsreg::no_connection;
  std::atomic<int> joins{0};
  std::atomic<int> leaves{0};
  // Operands, moved into the operation.
  std::shared_ptr<CountingSender> newcomer = std::make_shared<CountingSender>();
  std::string newcomer_data = long_text("data of the newcomer");
  std::string new_data = long_text("new data of connection 2");
  std::string newcomer_data_operand = newcomer_data;
  std::string new_data_operand = new_data;
  std::string topic_operand = topic;
  std::string other_topic_operand = other_topic;
  Payload payload = Payload::text("to everyone");
  Payload arm = Payload::text(std::string(arm_text));
  Payload disarm = Payload::text(std::string(disarm_text));
  ConnectionId newcomer_id = wsreg::no_connection;  // set by the add

  Fixture() {
    for (int i = 0; i < 3; ++i) {
      senders.push_back(std::make_shared<CountingSender>());
      ids.push_back(registry.add(senders.back(), data_of(i)));
    }
    registry.subscribe(ids[0], topic);
    registry.subscribe(ids[1], topic);
    // Deliveries before the changes below, so that MutexPolicy's snapshots
    // exist and are out of date: the operations then log their changes, and
    // a broadcast rebuilds its snapshot (allocations that can fail too).
    registry.broadcast(Payload::text("warm-up"));
    registry.publish(topic, Payload::text("warm-up"));
    armer_id = registry.add(armer);
    disarmer_id = registry.add(disarmer);
    registry.set_presence_handler([this](const wsreg::PresenceEvent<std::string>& e) {
      (e.joined ? joins : leaves).fetch_add(1);
    });
    registry.flush();
  }

  // What connection i received in the constructor.
  static std::size_t warm_up(int i) { return i < 2 ? 2 : 1; }

  static std::string data_of(int i) { return long_text("data of connection " + std::to_string(i)); }

  // Runs `operation` with the Nth allocation of the applying thread failing.
  // Returns whether the failure was injected; `threw` tells whether the
  // operation threw std::bad_alloc to this thread.
  template <class Operation>
  bool run_failing_applied(long n, Operation operation, bool& threw) {
    armer->at(n);
    registry.send(armer_id, arm);
    // Applied before the operation under test: ActorPolicy applies a
    // lifecycle operation (add, subscribe, set_data) ahead of data
    // operations queued before it (unobservably, but not for a fault armed
    // on its thread by one of them).
    registry.flush();
    threw = false;
    try {
      operation(*this);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    registry.send(disarmer_id, disarm);  // made before: allocates nothing
    registry.flush();
    return disarmer->injected();
  }

  // The same with the Nth allocation of this (the posting) thread failing.
  template <class Operation>
  bool run_failing_here(long n, Operation operation, bool& threw) {
    threw = false;
    alloc::fail_nth_here(n);
    try {
      operation(*this);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    const bool injected = alloc::disarm_here();
    registry.flush();
    return injected;
  }
};

// What an operation under test changes when it succeeds.
struct Effect {
  bool adds = false;        // the newcomer is registered with its data
  bool subscribes = false;  // connection 2 joined `topic`
  bool creates = false;     // connection 2 joined the new topic other_topic
  bool sets_data = false;   // connection 2 holds new_data
  bool broadcasts = false;  // every connection received `payload` once
};

// Checks the registry is as the fixture made it, plus `effect` if the
// operation succeeded; then that delivery and erasure still work.
template <class Policy>
void check_state(Fixture<Policy>& f, const Effect& effect) {
  auto& r = f.registry;
  const std::size_t connections = 5 + (effect.adds ? 1 : 0);
  CHECK(r.size() == connections);
  CHECK(r.stats().connections_added == connections);
  for (int i = 0; i < 3; ++i) {
    const std::string expected = (i == 2 && effect.sets_data) ? f.new_data : f.data_of(i);
    CHECK(r.data(f.ids[i]) == std::optional<std::string>(expected));
  }
  if (f.newcomer_id != wsreg::no_connection) {
    CHECK(r.data(f.newcomer_id) ==
          (effect.adds ? std::optional<std::string>(f.newcomer_data) : std::nullopt));
  }
  std::vector<ConnectionId> subscribed = {f.ids[0], f.ids[1]};
  if (effect.subscribes) subscribed.push_back(f.ids[2]);
  CHECK(r.subscribers(topic) == subscribed);
  CHECK(r.topic_count() == (effect.creates ? 2u : 1u));
  CHECK(r.subscribers(other_topic) ==
        (effect.creates ? std::vector<ConnectionId>{f.ids[2]} : std::vector<ConnectionId>{}));
  CHECK(f.joins.load() == (effect.subscribes || effect.creates ? 1 : 0));

  // Delivery to the others: the operation's own broadcast, then this one.
  const std::size_t before = effect.broadcasts ? 1 : 0;
  for (int i = 0; i < 3; ++i) CHECK(f.senders[i]->count() == f.warm_up(i) + before);
  CHECK(f.newcomer->count() == 0);
  r.broadcast(Payload::text("check"));
  r.publish(topic, Payload::text("check topic"));
  if (f.newcomer_id != wsreg::no_connection) r.send(f.newcomer_id, Payload::text("direct"));
  r.flush();
  for (int i = 0; i < 3; ++i) {
    const bool in_topic = i < 2 || effect.subscribes;
    CHECK(f.senders[i]->count() == f.warm_up(i) + before + 1 + (in_topic ? 1 : 0));
  }
  CHECK(f.newcomer->count() == (effect.adds ? 2u : 0u));
  CHECK(r.stats().send_unknown == (f.newcomer_id != wsreg::no_connection && !effect.adds ? 1u : 0u));

  // Erasure: every connection leaves, every topic empties, nothing is left over.
  for (const ConnectionId id : f.ids) r.remove(id);
  r.remove(f.armer_id);
  r.remove(f.disarmer_id);
  if (f.newcomer_id != wsreg::no_connection) r.remove(f.newcomer_id);
  CHECK(r.size() == 0);
  CHECK(r.topic_count() == 0);
  CHECK(r.stats().connections_removed == connections);
  CHECK(f.leaves.load() == 2 + (effect.subscribes || effect.creates ? 1 : 0));
}

template <class Policy>
using Operation = void (*)(Fixture<Policy>&);

template <class Policy>
struct Case {
  const char* name;
  Operation<Policy> operation;
  Effect effect;
};

template <class Policy>
std::vector<Case<Policy>> cases() {
  using F = Fixture<Policy>;
  return {
      {"add", [](F& f) { f.newcomer_id = f.registry.add(f.newcomer, std::move(f.newcomer_data_operand)); },
       Effect{true, false, false, false, false}},
      {"subscribe to an existing topic",
       [](F& f) { f.registry.subscribe(f.ids[2], std::move(f.topic_operand)); },
       Effect{false, true, false, false, false}},
      {"subscribe to a new topic",
       [](F& f) { f.registry.subscribe(f.ids[2], std::move(f.other_topic_operand)); },
       Effect{false, false, true, false, false}},
      {"set_data", [](F& f) { f.registry.set_data(f.ids[2], std::move(f.new_data_operand)); },
       Effect{false, false, false, true, false}},
      {"broadcast", [](F& f) { f.registry.broadcast(f.payload); },
       Effect{false, false, false, false, true}},
  };
}

// Runs every case with the failure injected at the Nth allocation, N = 1, 2,
// ..., on the applying thread (`applied`) or on the posting thread.
template <class Policy>
void check_every_allocation_of_every_case(bool applied) {
  for (const Case<Policy>& c : cases<Policy>()) {
    bool succeeded = false;
    long failed = 0;  // runs in which the fault was injected
    for (long n = 1; n <= 200 && !succeeded; ++n) {
      INFO(c.name << ", allocation " << n << (applied ? " of the applying thread" : " of the caller"));
      Fixture<Policy> f;
      bool threw = false;
      const bool injected = applied ? f.run_failing_applied(n, c.operation, threw)
                                    : f.run_failing_here(n, c.operation, threw);
      // The caller sees the failure exactly when it happened on its own
      // thread; ActorPolicy's actor swallows the failures it meets.
      const bool on_caller = !applied || std::is_same_v<Policy, wsreg::MutexPolicy>;
      CHECK(threw == (injected && on_caller));
      succeeded = !injected;
      if (injected) ++failed;
      check_state(f, succeeded ? c.effect : Effect{});
    }
    INFO(c.name);
    CHECK(succeeded);
    // An add and a subscribe to a new topic allocate (a map node) on both
    // threads: a run that never met the fault would mean it was armed too
    // late, after the operation was applied.
    if (c.effect.adds || c.effect.creates) CHECK(failed > 0);
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "a bad_alloc where add, subscribe, set_data or broadcast is applied leaves the registry as it was",
    "[registry][exceptions]", wsreg_test::unsharded_policies) {
  check_every_allocation_of_every_case<TestType>(true);
}

TEMPLATE_LIST_TEST_CASE(
    "a bad_alloc while add, subscribe, set_data or broadcast is posted reaches the caller and changes "
    "nothing",
    "[registry][exceptions]", wsreg_test::unsharded_policies) {
  check_every_allocation_of_every_case<TestType>(false);
}
