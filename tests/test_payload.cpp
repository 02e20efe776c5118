// Payload: one shared buffer, and one transport encoding made once for all
// copies (what lets the websocketpp adapter frame a broadcast once).
#include "wsreg/payload.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using wsreg::Payload;

namespace {
struct FrameTag {};
struct OtherTag {};
}  // namespace

TEST_CASE("copies of a payload share one buffer and keep bytes and opcode", "[payload]") {
  const Payload original = Payload::binary(std::string("\0\1\2", 3));
  const Payload copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(copy.shares_buffer_with(original));
  CHECK(copy.data().data() == original.data().data());
  CHECK(copy.opcode() == wsreg::Opcode::binary);
  CHECK(copy.size() == 3);
  CHECK_FALSE(Payload::binary("x").shares_buffer_with(original));
  CHECK_FALSE(Payload().shares_buffer_with(Payload()));
  CHECK(Payload().size() == 0);
}

TEST_CASE("an encoding is made once and shared by every copy of the payload", "[payload]") {
  const Payload payload = Payload::text("hello");
  int made = 0;
  auto make = [&] {
    ++made;
    return std::make_shared<std::string>("framed hello");
  };
  const auto first = payload.encoded<FrameTag>(make);
  const Payload copy = payload;  // NOLINT(performance-unnecessary-copy-initialization)
  const auto second = copy.encoded<FrameTag>(make);
  CHECK(made == 1);
  CHECK(first == second);
  CHECK(*second == "framed hello");

  // Another tag is made afresh each time and not cached.
  const auto other1 = payload.encoded<OtherTag>([] { return std::make_shared<int>(1); });
  const auto other2 = payload.encoded<OtherTag>([] { return std::make_shared<int>(2); });
  CHECK(*other1 == 1);
  CHECK(*other2 == 2);
  CHECK(payload.encoded<FrameTag>(make) == first);
  CHECK(made == 1);

  // An empty payload has nowhere to cache: make runs every time.
  const Payload empty;
  empty.encoded<FrameTag>(make);
  empty.encoded<FrameTag>(make);
  CHECK(made == 3);
}

TEST_CASE("concurrent first uses of an encoding make it exactly once", "[payload]") {
  constexpr int threads = 8;
  for (int round = 0; round < 50; ++round) {
    const Payload payload = Payload::text("round " + std::to_string(round));
    std::atomic<int> made{0};
    std::atomic<bool> go{false};
    std::vector<const std::string*> seen(threads, nullptr);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        seen[t] = payload
                      .encoded<FrameTag>([&] {
                        made.fetch_add(1);
                        return std::make_shared<std::string>(payload.data());
                      })
                      .get();
      });
    }
    go.store(true, std::memory_order_release);
    for (auto& w : workers) w.join();
    REQUIRE(made.load() == 1);
    for (const auto* p : seen) REQUIRE(p == seen[0]);
  }
}

TEST_CASE("an encoding that throws is tried again on the next use", "[payload]") {
  const Payload payload = Payload::text("retry");
  CHECK_THROWS_AS(payload.encoded<FrameTag>([]() -> std::shared_ptr<int> { throw std::bad_alloc(); }),
                  std::bad_alloc);
  const auto made = payload.encoded<FrameTag>([] { return std::make_shared<int>(7); });
  REQUIRE(made);
  CHECK(*made == 7);
}
