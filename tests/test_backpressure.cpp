// Backpressure: a client that stops reading costs bounded memory and never
// delays the others, under both overflow policies and both registry policies.
#include "wsreg/websocketpp/server.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "client_pool.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"

using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg::wspp::OverflowPolicy;
using wsreg_test::ClientPool;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

using wsreg_test::url_of;

// Small kernel buffers on both sides so that a client that stops reading
// pushes back into websocketpp's queue within a few dozen messages.
wsreg::wspp::ServerOptions small_buffers(OverflowPolicy policy) {
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  options.max_buffered_bytes = 64 * 1024;
  options.overflow_policy = policy;
  options.socket_send_buffer_bytes = 16 * 1024;
  options.close_handshake_timeout = std::chrono::milliseconds(500);
  return options;
}

std::size_t fewest_messages(ClientPool& pool) {
  std::size_t fewest = SIZE_MAX;
  for (std::size_t i = 0; i < pool.size(); ++i) fewest = std::min(fewest, pool.at(i).messages.load());
  return fewest;
}

// Broadcasts `count` payloads of `bytes`, never more than `window` ahead of
// the slowest reading client, as a real feed at a steady rate would be.
template <class Registry>
bool paced_broadcasts(Registry& registry, ClientPool& readers, std::size_t count,
                      std::size_t bytes, std::size_t window) {
  const Payload payload = Payload::binary(std::string(bytes, 'b'));
  for (std::size_t i = 1; i <= count; ++i) {
    registry.broadcast(payload);
    if (i > window && !wait_until([&] { return fewest_messages(readers) >= i - window; })) {
      return false;
    }
  }
  return true;
}

// What one 4 KiB broadcast costs in a connection's queue: its frame header
// (4 bytes at this size) plus payload plus the per-message overhead.
constexpr std::size_t charged_4k = 4 + 4096 + wsreg::wspp::detail::message_overhead_bytes;

}  // namespace

TEMPLATE_LIST_TEST_CASE("a client that stops reading is closed with 1008 and the others get "
                        "every message",
                        "[websocketpp][backpressure]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry, small_buffers(OverflowPolicy::close));
  server.listen("127.0.0.1", 0);

  RawClient stalled;  // handshakes, then never reads again
  REQUIRE(stalled.open(server.port(), 4096));
  constexpr std::size_t readers = 10;
  ClientPool pool;
  pool.connect(url_of(server.port()), readers);
  REQUIRE(wait_until([&] { return registry.size() == readers + 1; }));

  constexpr std::size_t messages = 300;  // 1.2 MB per connection, far past 64 KiB + buffers
  REQUIRE(paced_broadcasts(registry, pool, messages, 4096, 8));
  CHECK(wait_until([&] { return fewest_messages(pool) == messages; }));
  CHECK(wait_until([&] { return registry.size() == readers; }));  // the stalled one is gone

  const auto server_stats = server.stats();
  const auto stats = registry.stats();
  CHECK(server_stats.slow_consumer_closes == 1);
  CHECK(server_stats.backpressure_drops >= 1);
  // The queue really filled to its bound before the first refusal (a bound
  // that tripped early, or never, fails this).
  CHECK(server_stats.buffered_bytes_high_water >= 64 * 1024 - 2 * charged_4k);
  CHECK(stats.messages_dropped >= 1);
  // Until it is removed (at the close handshake timeout) the stalled one is
  // still a recipient, whose messages are dropped; after, it is none.
  CHECK(stats.messages_sent + stats.messages_dropped >= messages * readers);
  CHECK(stats.messages_sent + stats.messages_dropped <= messages * (readers + 1));
  CHECK(stats.connections_removed == 1);
  for (std::size_t i = 0; i < readers; ++i) CHECK(pool.at(i).ended.load() == false);
}

TEMPLATE_LIST_TEST_CASE("under drop_newest a client that stops reading stays and misses "
                        "messages, counted, while the others get every message",
                        "[websocketpp][backpressure]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry, small_buffers(OverflowPolicy::drop_newest));
  server.listen("127.0.0.1", 0);

  RawClient stalled;
  REQUIRE(stalled.open(server.port(), 4096));
  constexpr std::size_t readers = 10;
  ClientPool pool;
  pool.connect(url_of(server.port()), readers);
  REQUIRE(wait_until([&] { return registry.size() == readers + 1; }));

  constexpr std::size_t messages = 300;
  REQUIRE(paced_broadcasts(registry, pool, messages, 4096, 8));
  CHECK(wait_until([&] { return fewest_messages(pool) == messages; }));

  const auto server_stats = server.stats();
  const auto stats = registry.stats();
  CHECK(registry.size() == readers + 1);  // still registered
  CHECK(server_stats.slow_consumer_closes == 0);
  CHECK(server_stats.backpressure_drops == stats.messages_dropped);
  CHECK(stats.messages_dropped > messages / 2);  // most of what it was sent after it stalled
  CHECK(stats.messages_sent + stats.messages_dropped == messages * (readers + 1));
  CHECK(server_stats.buffered_bytes_high_water >= 64 * 1024 - 2 * charged_4k);
  // What the server accepted for the stalled client, counted from the
  // outside (everything sent, less what the readers got): no more than its
  // bound, the window handed to websocketpp and the kernel's buffers on the
  // way (SO_SNDBUF 16 KiB and SO_RCVBUF 4 KiB, each doubled by Linux) hold.
  const std::uint64_t accepted_for_stalled = stats.messages_sent - messages * readers;
  const std::uint64_t can_hold =
      (64 * 1024 + wsreg::wspp::ServerOptions{}.write_window_bytes + 2 * 16 * 1024 +
       2 * 4096) / 4096 + 2;
  INFO("accepted for the stalled client: " << accepted_for_stalled << " messages of 4 KiB");
  CHECK(accepted_for_stalled >= (64 * 1024) / charged_4k);
  CHECK(accepted_for_stalled <= can_hold);
}

#ifdef WSREG_LOAD_CLIENT

// Issue scenario 3: 50 clients get a 10 Hz broadcast of 4 KiB; one stops
// reading entirely. The 49 others, in a separate process (the load client),
// must get every tick with p99 latency under 50 ms while the server's RSS
// stays flat and the stalled one is closed (default policy) and counted.
TEMPLATE_LIST_TEST_CASE("a stalled client does not delay the others at 10 Hz for 10 s",
                        "[.stress][websocketpp][backpressure]", server_policies) {
  ConnectionRegistry<TestType> registry;
  // The scenario sends 4 KiB x 10 Hz x 10 s = 400 KiB to the stalled client,
  // less than the default 1 MiB bound plus the kernel's autotuned buffers, so
  // the bound and the socket buffer are lowered to make it trip in ~5 s.
  wsreg::wspp::ServerOptions options;  // default overflow policy: close
  options.threads = 2;
  options.max_buffered_bytes = 128 * 1024;
  options.socket_send_buffer_bytes = 32 * 1024;
  options.close_handshake_timeout = std::chrono::milliseconds(1000);
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  RawClient stalled;
  REQUIRE(stalled.open(server.port(), 4096));

  std::atomic<bool> stop{false};
  std::atomic<long> rss_at_2s{0};
  std::atomic<long> rss_peak{0};
  std::thread ticker([&] {
    const std::string pad(4096 - 64, 'x');
    auto next = std::chrono::steady_clock::now();
    const auto start = next;
    for (std::uint64_t seq = 0; !stop.load(); ++seq) {
      registry.broadcast(Payload::text("{\"seq\":" + std::to_string(seq) + ",\"sent_ns\":" +
                                       std::to_string(wsreg_test::realtime_ns()) + ",\"pad\":\"" + pad + "\"}"));
      const long rss = wsreg_test::rss_kib();
      rss_peak = std::max(rss_peak.load(), rss);
      if (rss_at_2s.load() == 0 && next - start >= std::chrono::seconds(2)) rss_at_2s = rss;
      next += std::chrono::milliseconds(100);
      std::this_thread::sleep_until(next);  // pacing the feed, not synchronisation
    }
  });

  wsreg_test::ChildProcess client({WSREG_LOAD_CLIENT, "--url", url_of(server.port()),
                                   "--connections", "49", "--duration", "10", "--json"});
  REQUIRE(client.started());
  const std::string out = client.read_all(std::chrono::seconds(60));
  const int client_rc = client.wait(std::chrono::seconds(10));
  stop = true;
  ticker.join();

  const auto report = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(report.is_discarded());
  const double p99 = report["latency_ms"]["p99"].get<double>();
  const long growth_kib = rss_peak.load() - rss_at_2s.load();
  WARN("49 readers: " << report["ticks"] << " ticks, lost " << report["lost"] << ", min per connection "
                      << report["min_ticks_per_connection"] << ", p50 " << report["latency_ms"]["p50"]
                      << " ms, p99 " << p99 << " ms, max " << report["latency_ms"]["max"]
                      << " ms; server+test RSS at 2 s " << rss_at_2s.load() << " KiB, peak "
                      << rss_peak.load() << " KiB; slow-consumer closes "
                      << server.stats().slow_consumer_closes << ", dropped "
                      << registry.stats().messages_dropped);
  CHECK(client_rc == 0);
  CHECK(report["connections_open"].get<int>() == 49);
  CHECK(report["lost"].get<long>() == 0);
  CHECK(report["min_ticks_per_connection"].get<long>() >= 95);
  CHECK(p99 < 50.0);
  CHECK(growth_kib < 16 * 1024);  // flat: no queue grows with time
  CHECK(server.stats().slow_consumer_closes == 1);
  CHECK(registry.stats().messages_dropped >= 1);
}

#endif  // WSREG_LOAD_CLIENT

// Issue scenario 4: an N-squared chat load. 200 clients each send one 1 KiB
// message per second and the server relays each to all: 40,000 deliveries a
// second. Memory must plateau; if a bound trips, it trips per connection.
TEMPLATE_LIST_TEST_CASE("an N-squared chat load keeps memory bounded", "[.stress][websocketpp][chat]",
                        server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.set_message_handler(
      [&](wsreg::ConnectionId, Payload message) { registry.broadcast(std::move(message)); });
  server.listen("127.0.0.1", 0);

  constexpr std::size_t clients = 200;
  ClientPool pool;
  pool.connect(url_of(server.port()), clients);
  REQUIRE(wait_until([&] { return registry.size() == clients; }));

  // Each client sends once a second, spread evenly over the second.
  const std::string line(1024, 'c');
  std::vector<long> rss;
  const auto start = std::chrono::steady_clock::now();
  constexpr int seconds = 20;
  for (int s = 0; s < seconds; ++s) {
    for (std::size_t i = 0; i < clients; ++i) {
      pool.send(i, line, websocketpp::frame::opcode::text);
      std::this_thread::sleep_until(start + std::chrono::seconds(s) +
                                    std::chrono::milliseconds(1000 * (i + 1) / clients));
    }
    rss.push_back(wsreg_test::rss_kib());  // server and clients share this process
  }
  const auto sent = static_cast<std::size_t>(seconds) * clients;
  const bool all_relayed = wait_until([&] { return pool.messages() >= sent * registry.size(); },
                                      std::chrono::seconds(30));
  const long first_half_peak = *std::max_element(rss.begin(), rss.begin() + seconds / 2);
  const long second_half_peak = *std::max_element(rss.begin() + seconds / 2, rss.end());
  const auto stats = registry.stats();
  const auto server_stats = server.stats();
  WARN("chat: " << pool.messages() << " deliveries of " << sent * clients << " expected; RSS KiB "
                << rss.front() << " after 1 s, peak " << first_half_peak << " in the first half, "
                << second_half_peak << " in the second; high-water buffered "
                << server_stats.buffered_bytes_high_water << " B, slow-consumer closes "
                << server_stats.slow_consumer_closes << ", dropped " << stats.messages_dropped);
  CHECK(all_relayed);
  CHECK(second_half_peak - first_half_peak < 32 * 1024);  // plateau
  CHECK(server_stats.buffered_bytes_high_water <= options.max_buffered_bytes + 1024);
  // Any bound that tripped closed single connections; the rest are all here.
  CHECK(registry.size() + server_stats.slow_consumer_closes == clients);
}

// Inbound flow control: clients that flood the server with messages the
// handler relays to everyone cannot grow the actor's mailbox: with
// flush_after_message (the default) each io thread has at most one
// handler's work queued, and without it the capacity still holds (the io
// threads wait for room, and so stop reading). Nothing is lost on the way.
TEMPLATE_LIST_TEST_CASE("a flood of inbound messages relayed to everyone never grows the mailbox, "
                        "and every message arrives",
                        "[websocketpp][backpressure][mailbox]", server_policies) {
  for (const bool flush_after_message : {true, false}) {
    INFO("flush_after_message " << flush_after_message);
    wsreg::RegistryOptions registry_options;
    registry_options.mailbox_capacity = 32;
    ConnectionRegistry<TestType> registry(registry_options);
    wsreg::wspp::ServerOptions options;
    options.threads = 2;
    options.flush_after_message = flush_after_message;
    options.max_buffered_bytes = 64 * 1024 * 1024;  // a test of the mailbox, not of the bound
    wsreg::wspp::Server<TestType> server(registry, options);
    server.set_message_handler(
        [&](wsreg::ConnectionId, Payload message) { registry.broadcast(std::move(message)); });
    server.listen("127.0.0.1", 0);

    constexpr std::size_t clients = 10;
    constexpr std::size_t per_client = 500;
    ClientPool pool;
    pool.connect(url_of(server.port()), clients);
    REQUIRE(wait_until([&] { return pool.opened() == clients && registry.size() == clients; }));
    for (std::size_t i = 0; i < clients; ++i) {
      for (std::size_t m = 0; m < per_client; ++m) {
        pool.send(i, "m" + std::to_string(m), websocketpp::frame::opcode::text);
      }
    }
    CHECK(wait_until([&] { return pool.messages() == clients * clients * per_client; },
                     std::chrono::seconds(60)));
    const auto stats = registry.stats();
    std::printf("[backpressure] %s, flush_after_message %d: %zu x %zu relayed messages, mailbox "
                "high water %llu (capacity %zu), producer waits %llu\n",
                wsreg_test::policy_name<TestType>(), flush_after_message ? 1 : 0, clients,
                per_client, static_cast<unsigned long long>(stats.mailbox_high_water),
                registry_options.mailbox_capacity,
                static_cast<unsigned long long>(stats.mailbox_waits));
    // The adds, plus per io thread one broadcast and one flush marker; or,
    // without the flush, the capacity's worth of data operations.
    const std::size_t most =
        clients + 2 * 2 + (flush_after_message ? 0 : registry_options.mailbox_capacity);
    CHECK(stats.mailbox_high_water <= most);
    CHECK(stats.broadcasts == clients * per_client);
    CHECK(stats.messages_dropped == 0);
  }
}

// RFC 6455 section 5.5.3 makes a server answer pings; a client that sends
// them as fast as it can and reads nothing must not make it queue pongs
// without bound.
TEMPLATE_LIST_TEST_CASE("a client that floods pings and never reads gets a bounded backlog of pongs",
                        "[websocketpp][backpressure][ping]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.socket_send_buffer_bytes = 16 * 1024;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);
  RawClient flooder;
  REQUIRE(flooder.open(server.port(), 4096));
  REQUIRE(wait_until([&] { return registry.size() == 1; }));

  constexpr std::size_t pings = 20000;
  const std::string ping = RawClient::frame(0x9, std::string(125, 'p'));
  std::string burst;
  for (std::size_t i = 0; i < 100; ++i) burst += ping;
  for (std::size_t i = 0; i < pings / 100; ++i) REQUIRE(flooder.write_all(burst));
  // Every ping is read (the server keeps reading); all but about one
  // window's worth plus the kernel's buffers are left unanswered (measured:
  // 569 answered; allowed: twice that estimate, against 20,000 unbounded).
  const std::size_t answerable =
      2 * ((wsreg::wspp::ServerOptions{}.write_window_bytes + 4096 + 2 * 16 * 1024 + 2 * 4096) /
               127 +
           1);
  CHECK(wait_until([&] { return server.stats().pongs_skipped >= pings - answerable; }));
  INFO("pongs skipped " << server.stats().pongs_skipped << " of " << pings);
  CHECK(registry.size() == 1);  // a ping flood is not a reason to close
}
