// NatsBackplane against a nats-server of the test's own (tests/broker_process.hpp):
// delivery, unsubscribe, outages, a server that starts late, a stalled
// server, and many subscriptions across a restart.
#include "wsreg/nats_backplane.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "broker_process.hpp"
#include "support.hpp"

using std::chrono::milliseconds;
using std::chrono::seconds;
using wsreg::NatsBackplane;
using wsreg::NatsOptions;
using wsreg::PublishResult;
using wsreg_test::BrokerProcess;
using wsreg_test::wait_until;

static_assert(wsreg::is_backplane_v<NatsBackplane>, "NatsBackplane is a Backplane");

namespace {

using clock_type = std::chrono::steady_clock;

/// What one backplane's handlers were given: the messages per channel, in
/// order, and each connection state reported. Thread-safe (the handlers run
/// on the NATS client's threads; the test reads on the main thread).
class Inbox {
 public:
  wsreg::BackplaneHandlers handlers() {
    return wsreg::BackplaneHandlers{
        [this](std::string_view channel, std::string_view message) {
          std::lock_guard<std::mutex> lock(mutex_);
          messages_[std::string(channel)].emplace_back(message);
          ++total_;
        },
        [this](bool connected) {
          std::lock_guard<std::mutex> lock(mutex_);
          states_.push_back(connected);
        }};
  }

  std::size_t count(const std::string& channel) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = messages_.find(channel);
    return it == messages_.end() ? 0 : it->second.size();
  }

  std::vector<std::string> messages(const std::string& channel) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = messages_.find(channel);
    return it == messages_.end() ? std::vector<std::string>{} : it->second;
  }

  /// Channels that received at least one message.
  std::set<std::string> channels() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::set<std::string> out;
    for (const auto& entry : messages_) out.insert(entry.first);
    return out;
  }

  std::size_t channel_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_.size();
  }

  std::size_t total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_;
  }

  /// on_state calls with `connected`, so far.
  std::size_t states(bool connected) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const bool s : states_) n += s == connected;
    return n;
  }

  std::vector<bool> state_history() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return states_;
  }

 private:
  // This mutex synchronizes all access to messages_, total_ and states_.
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::string>> messages_;
  std::size_t total_ = 0;
  std::vector<bool> states_;
};

/// Options for a backplane of `broker`. The longest reconnect wait is cut
/// to 500 ms so that "within 2 s of the restart" tests the replay of
/// subscriptions, not where the back-off happened to be.
NatsOptions options_for(const BrokerProcess& broker) {
  NatsOptions options;
  options.url = broker.url();
  options.reconnect.reconnect_max = milliseconds(500);
  return options;
}

/// Publishes on `channel` from `from` until `inbox` has a new message on
/// it: proof that the subscriber's SUB, and everything its connection sent
/// before, reached the server (which handles a connection's protocol in
/// order), and that everything `from` published before arrived. True if
/// that happened by `deadline`.
bool probe(NatsBackplane& from, const Inbox& inbox, const std::string& channel,
           clock_type::time_point deadline) {
  const std::size_t before = inbox.count(channel);
  while (clock_type::now() < deadline) {
    from.publish(channel, "probe");
    if (wait_until([&] { return inbox.count(channel) > before; }, milliseconds(50))) return true;
  }
  return inbox.count(channel) > before;
}

bool probe(NatsBackplane& from, const Inbox& inbox, const std::string& channel) {
  return probe(from, inbox, channel, clock_type::now() + seconds(10));
}

}  // namespace

TEST_CASE("a URL with a scheme other than nats:// is refused at construction", "[backplane][nats]") {
  NatsOptions options;
  options.url = "redis://127.0.0.1:6379";
  CHECK_THROWS_AS(NatsBackplane(options), std::invalid_argument);
  options.url = "nats://127.0.0.1:4222,tls://127.0.0.1:4223";
  CHECK_THROWS_AS(NatsBackplane(options), std::invalid_argument);
  options.url = "";
  CHECK_THROWS_AS(NatsBackplane(options), std::invalid_argument);
  options.url = "nats://127.0.0.1:4222,127.0.0.1:4223";
  CHECK_NOTHROW(NatsBackplane(options));
  NatsBackplane unstarted(NatsOptions{});
  CHECK(unstarted.name() == "nats");
  CHECK_FALSE(unstarted.connected());
  unstarted.stop();  // stop without start, and twice (the destructor), is fine
}

TEST_CASE("a message published through nats-server reaches the other backplane's subscriber "
          "exactly once and in order",
          "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox_a, inbox_b;
  NatsBackplane a(options_for(broker));
  NatsBackplane b(options_for(broker));
  b.subscribe("data");
  b.subscribe("ready");
  a.subscribe("data");  // no echo: a never receives its own publications
  a.start(inbox_a.handlers());
  b.start(inbox_b.handlers());
  REQUIRE(wait_until([&] { return a.connected() && b.connected(); }));
  REQUIRE(probe(a, inbox_b, "ready"));  // b's SUB data, sent before SUB ready, is in place

  constexpr int messages = 1000;
  std::size_t queued = 0;
  for (int i = 0; i < messages; ++i) queued += a.publish("data", std::to_string(i)) == PublishResult::queued;
  CHECK(queued == messages);
  REQUIRE(wait_until([&] { return inbox_b.count("data") >= messages; }));
  REQUIRE(probe(a, inbox_b, "ready"));  // whatever a sent before this has arrived

  const std::vector<std::string> received = inbox_b.messages("data");
  REQUIRE(received.size() == messages);
  std::size_t in_place = 0;
  for (int i = 0; i < messages; ++i) in_place += received[static_cast<std::size_t>(i)] == std::to_string(i);
  CHECK(in_place == messages);
  CHECK(inbox_a.count("data") == 0);

  const wsreg::BackplaneStats sa = a.stats();
  const wsreg::BackplaneStats sb = b.stats();
  CHECK(sa.connected == 1);
  CHECK(sa.published >= messages);
  CHECK(sa.publish_dropped == 0);
  CHECK(sa.publish_lost == 0);
  CHECK(sa.reconnects == 0);
  CHECK(sa.channels == 1);
  CHECK(sb.channels == 2);
  CHECK(sb.received == inbox_b.total());
  CHECK(inbox_a.state_history() == std::vector<bool>{true});
  CHECK(inbox_b.state_history() == std::vector<bool>{true});

  a.stop();
  b.stop();
  CHECK_FALSE(a.connected());
  const std::size_t after_stop = inbox_b.total();
  b.stop();  // idempotent
  CHECK(inbox_b.total() == after_stop);
}

TEST_CASE("unsubscribe stops delivery from nats-server", "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox_a, inbox_b;
  NatsBackplane a(options_for(broker));
  NatsBackplane b(options_for(broker));
  b.subscribe("data");
  b.subscribe("ready");
  a.start(inbox_a.handlers());
  b.start(inbox_b.handlers());
  REQUIRE(wait_until([&] { return a.connected() && b.connected(); }));
  REQUIRE(probe(a, inbox_b, "ready"));
  REQUIRE(a.publish("data", "before") == PublishResult::queued);
  REQUIRE(wait_until([&] { return inbox_b.count("data") == 1; }));

  b.unsubscribe("data");
  b.unsubscribe("data");  // idempotent
  REQUIRE(wait_until([&] { return b.stats().channels == 1; }));
  b.subscribe("fence");
  REQUIRE(probe(a, inbox_b, "fence"));  // b's UNSUB data, sent before SUB fence, is in place

  for (int i = 0; i < 100; ++i) a.publish("data", "after " + std::to_string(i));
  REQUIRE(probe(a, inbox_b, "ready"));  // a's 100 have passed the server
  CHECK(inbox_b.count("data") == 1);
  CHECK(b.stats().channels == 2);
}

TEST_CASE("a publish while nats-server is killed returns lost and is counted", "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox;
  NatsBackplane a(options_for(broker));
  a.start(inbox.handlers());
  REQUIRE(wait_until([&] { return a.connected(); }));

  broker.kill();
  REQUIRE(wait_until([&] { return inbox.states(false) == 1; }));  // on_state(false) came
  CHECK_FALSE(a.connected());
  const wsreg::BackplaneStats before = a.stats();
  CHECK(before.connected == 0);
  CHECK(a.publish("data", "into the void") == PublishResult::lost);
  const wsreg::BackplaneStats after = a.stats();
  CHECK(after.publish_lost == before.publish_lost + 1);
  CHECK(after.queue_depth == 0);
}

TEST_CASE("after nats-server restarts on the same port both reconnect and an old subscription delivers "
          "again within 2 s",
          "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox_a, inbox_b;
  NatsBackplane a(options_for(broker));
  NatsBackplane b(options_for(broker));
  b.subscribe("data");
  a.start(inbox_a.handlers());
  b.start(inbox_b.handlers());
  REQUIRE(wait_until([&] { return a.connected() && b.connected(); }));
  REQUIRE(probe(a, inbox_b, "data"));

  broker.kill();
  REQUIRE(wait_until([&] { return inbox_a.states(false) == 1 && inbox_b.states(false) == 1; }));
  REQUIRE(broker.start());
  const auto restarted = clock_type::now();
  REQUIRE(probe(a, inbox_b, "data", restarted + seconds(2)));  // no subscribe() since
  const auto took = std::chrono::duration_cast<milliseconds>(clock_type::now() - restarted);
  INFO("delivered again " << took.count() << " ms after the restart");
  CHECK(took < seconds(2));

  REQUIRE(wait_until([&] { return a.connected() && b.connected(); }));
  CHECK(a.stats().reconnects >= 1);
  CHECK(b.stats().reconnects >= 1);
  CHECK(b.stats().channels == 1);
  CHECK(inbox_b.state_history() == std::vector<bool>{true, false, true});
}

TEST_CASE("a backplane started while no nats-server listens connects once the server starts",
          "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  broker.kill();
  REQUIRE_FALSE(wsreg_test::accepts_connections(broker.port()));
  Inbox inbox_a, inbox_b;
  NatsBackplane a(options_for(broker));
  a.subscribe("data");
  a.start(inbox_a.handlers());
  REQUIRE(wait_until([&] { return a.stats().connect_failures >= 2; }));  // it keeps trying
  CHECK_FALSE(a.connected());
  CHECK(a.publish("data", "too early") == PublishResult::lost);
  CHECK(inbox_a.states(true) == 0);

  REQUIRE(broker.start());
  REQUIRE(wait_until([&] { return a.connected(); }, seconds(10)));
  CHECK(inbox_a.state_history() == std::vector<bool>{true});
  CHECK(a.stats().reconnects == 0);  // the first connection is not a reconnect

  NatsBackplane b(options_for(broker));
  b.start(inbox_b.handlers());
  REQUIRE(wait_until([&] { return b.connected(); }));
  CHECK(probe(b, inbox_a, "data"));  // the subscription made before the server existed
}

TEST_CASE("with nats-server stopped (SIGSTOP) a publishing caller never blocks and every publish is "
          "accounted for",
          "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox;
  NatsOptions options = options_for(broker);
  options.max_queued_messages = 1000;
  NatsBackplane a(options);
  a.start(inbox.handlers());
  REQUIRE(wait_until([&] { return a.connected(); }));

  broker.pause(true);
  // 4 KiB each, 40 MB in all: far more than the socket buffers hold, so
  // the backplane's thread stalls in a write and the queue fills.
  const std::string message(4096, 'x');
  constexpr std::size_t publishes = 10000;
  std::size_t queued = 0, dropped = 0, lost = 0;
  clock_type::duration longest{};
  const auto began = clock_type::now();
  for (std::size_t i = 0; i < publishes; ++i) {
    const auto t0 = clock_type::now();
    const PublishResult r = a.publish("data", message);
    const auto t = clock_type::now() - t0;
    if (t > longest) longest = t;
    queued += r == PublishResult::queued;
    dropped += r == PublishResult::dropped;
    lost += r == PublishResult::lost;
  }
  const auto took = std::chrono::duration_cast<milliseconds>(clock_type::now() - began);
  const wsreg::BackplaneStats during = a.stats();
  broker.pause(false);

  INFO("10,000 publishes took " << took.count() << " ms, the longest "
       << std::chrono::duration_cast<std::chrono::microseconds>(longest).count() << " us; queued "
       << queued << ", dropped " << dropped << ", lost " << lost);
  CHECK(queued + dropped + lost == publishes);
  CHECK(dropped > 0);  // the queue did fill: the stall was real
  CHECK(during.publish_dropped == dropped);
  CHECK(during.queue_depth <= options.max_queued_messages);
  CHECK(took < seconds(2));
  CHECK(longest < milliseconds(200));

  a.stop();
  const wsreg::BackplaneStats after = a.stats();
  // Each queued publish was handed to the client or counted lost.
  CHECK(after.published + after.publish_dropped + after.publish_lost == publishes);
  CHECK(after.publish_lost >= lost);
  CHECK(after.queue_depth == 0);
}

TEST_CASE("10,000 subscriptions on one backplane all deliver after nats-server restarts",
          "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox_a, inbox_b;
  NatsBackplane a(options_for(broker));
  NatsBackplane b(options_for(broker));
  constexpr std::size_t channels = 10000;
  const auto name = [](std::size_t i) { return "s." + std::to_string(i); };
  for (std::size_t i = 0; i < channels; ++i) b.subscribe(name(i));
  a.start(inbox_a.handlers());
  b.start(inbox_b.handlers());
  REQUIRE(wait_until([&] { return a.connected() && b.connected() && b.stats().channels == channels; }));

  // Publishes on every channel not heard on yet, until each has delivered
  // at least once, by `deadline`.
  const auto every_channel_delivers = [&](clock_type::time_point deadline) {
    std::vector<std::size_t> seen_before(channels);
    for (std::size_t i = 0; i < channels; ++i) seen_before[i] = inbox_b.count(name(i));
    std::vector<bool> done(channels, false);
    std::size_t remaining = channels;
    while (remaining > 0 && clock_type::now() < deadline) {
      const std::size_t round_base = inbox_b.total();
      for (std::size_t i = 0; i < channels; ++i) {
        if (!done[i]) a.publish(name(i), "hello");
      }
      wait_until([&] { return inbox_b.total() >= round_base + remaining; }, milliseconds(500));
      for (std::size_t i = 0; i < channels; ++i) {
        if (!done[i] && inbox_b.count(name(i)) > seen_before[i]) {
          done[i] = true;
          --remaining;
        }
      }
    }
    return remaining;
  };

  CHECK(every_channel_delivers(clock_type::now() + seconds(20)) == 0);

  broker.kill();
  REQUIRE(wait_until([&] { return inbox_a.states(false) == 1 && inbox_b.states(false) == 1; }));
  REQUIRE(broker.start());
  REQUIRE(wait_until([&] { return a.connected() && b.connected(); }));
  CHECK(every_channel_delivers(clock_type::now() + seconds(20)) == 0);
  CHECK(b.stats().reconnects >= 1);
  CHECK(b.stats().channels == channels);
}

TEST_CASE("stop() returns within a bound while nats-server is stopped (SIGSTOP), and no handler "
          "runs after it",
          "[backplane][nats]") {
  BrokerProcess broker(BrokerProcess::Kind::nats);
  REQUIRE(broker.ready());
  Inbox inbox_a, inbox_b;
  NatsBackplane a(options_for(broker));
  auto b = std::make_unique<NatsBackplane>(options_for(broker));
  b->subscribe("data");
  a.start(inbox_a.handlers());
  b->start(inbox_b.handlers());
  REQUIRE(wait_until([&] { return a.connected() && b->connected(); }));
  REQUIRE(probe(a, inbox_b, "data"));
  // b is receiving a stream when the server stalls.
  for (int i = 0; i < 1000; ++i) a.publish("data", std::string(1024, 'y'));
  broker.pause(true);
  for (int i = 0; i < 2000; ++i) b->publish("data", std::string(4096, 'z'));

  const auto began = clock_type::now();
  b->stop();
  const auto took = std::chrono::duration_cast<milliseconds>(clock_type::now() - began);
  const std::size_t after_stop = inbox_b.total();
  const std::size_t states_after_stop = inbox_b.state_history().size();
  b.reset();  // the destructor: stop() again, then the memory is gone
  broker.pause(false);
  INFO("stop() took " << took.count() << " ms");
  // The bound: one write blocked for write_timeout, the client's reconnect
  // thread in a handshake for connect_timeout, and the 200 ms of flushing.
  const NatsOptions defaults;
  CHECK(took < defaults.write_timeout + defaults.connect_timeout + seconds(1));

  // The server runs again, and a publishes to the channel b wanted until a
  // new subscriber hears it: nothing more may reach b's handlers.
  Inbox inbox_c;
  NatsBackplane c(options_for(broker));
  c.subscribe("data");
  c.start(inbox_c.handlers());
  REQUIRE(wait_until([&] { return c.connected(); }));
  REQUIRE(probe(a, inbox_c, "data"));
  CHECK(inbox_b.total() == after_stop);
  CHECK(inbox_b.state_history().size() == states_after_stop);
}
