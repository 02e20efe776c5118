// Proves that a broadcast allocates nothing per recipient: the payload is
// shared, not copied. Counts allocations through the replaced global
// operator new of allocation_hooks.cpp, so it lives in its own executable.
#include "wsreg/connection_registry.hpp"

#include <memory>
#include <string>
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
  // constant: ActorPolicy's flush (its promise) and mailbox growth.
  CHECK(to_ten <= 8);
  CHECK(to_ten_thousand <= 8);
}
