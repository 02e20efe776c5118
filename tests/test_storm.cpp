// A connect storm against a server that is busy broadcasting: every client
// that got its 101 stays open (or gets a close frame); none is dropped by a
// stale handshake timer. The load client runs as a separate process (its
// file descriptors are its own). A [.stress] test: `make stress`.
#include "wsreg/websocketpp/server.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "policies.hpp"
#include "support.hpp"

using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::server_policies;
using wsreg_test::url_of;

// 15,000 connections: this machine allows a process 20,000 descriptors, and
// the server holds one per connection.
TEMPLATE_LIST_TEST_CASE("in a storm of 15,000 connects to a server ticking at 10 Hz, no client "
                        "that got its 101 is dropped without a close frame",
                        "[.stress][websocketpp][storm]", server_policies) {
  constexpr int clients = 15000;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  // Short enough that many handshakes of the storm expire, some of them just
  // as their 101 goes out: the moment websocketpp 0.8.2's own timer got wrong.
  options.handshake_timeout = std::chrono::milliseconds(1000);
  options.ping_interval = std::chrono::milliseconds(0);
  options.idle_timeout = std::chrono::milliseconds(0);
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    auto next = std::chrono::steady_clock::now();
    for (std::uint64_t seq = 0; !stop.load(); ++seq) {
      registry.broadcast(Payload::text("{\"seq\":" + std::to_string(seq) +
                                       ",\"sent_ns\":" + std::to_string(wsreg_test::realtime_ns()) + "}"));
      next += std::chrono::milliseconds(100);
      std::this_thread::sleep_until(next);  // the 10 Hz rate, not synchronisation
    }
  });
  // Every handshake in flight at once: the storm.
  wsreg_test::ChildProcess client({WSREG_LOAD_CLIENT, "--url", url_of(server.port()),
                                   "--connections", std::to_string(clients), "--max-pending",
                                   std::to_string(clients), "--connect-timeout", "60",
                                   "--duration", "5", "--json"});
  REQUIRE(client.started());
  const std::string out = client.read_all(std::chrono::seconds(180));
  const int client_rc = client.wait(std::chrono::seconds(30));
  stop = true;
  ticker.join();
  const auto report = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(report.is_discarded());
  const auto stats = server.stats();
  WARN("storm of " << clients << ": open " << report["connections_open"] << ", connect failures "
                   << report["connect_failures"] << " " << report["connect_failure_causes"]
                   << ", errors " << report["errors"] << " " << report["error_causes"]
                   << ", closed by server " << report["closed_by_server"] << ", connect "
                   << report["connect_s"] << " s; server: handshake timeouts "
                   << stats.handshake_timeouts << ", handshakes failed " << stats.handshakes_failed
                   << ", accepts " << stats.accepts);
  // The load client exits non-zero when a connect failed, as some must here.
  CHECK((client_rc == 0 || report["connect_failures"].get<long>() > 0));
  // An open connection lost without a close frame (eof, reset) is an error.
  CHECK(report["errors"].get<long>() == 0);
  CHECK(report["closed_by_server"].get<long>() == 0);
  CHECK(report["connections_open"].get<long>() + report["connect_failures"].get<long>() ==
        clients);
  // Every connection the server registered is one the client saw open.
  CHECK(registry.stats().connections_added == report["connections_open"].get<std::uint64_t>());
}
