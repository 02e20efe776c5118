// Churn: many short-lived connections leave no registry entry, no file
// descriptor and no memory behind. Run under AddressSanitizer by make check,
// whose leak checker sees anything left at exit.
#include "wsreg/websocketpp/server.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

std::size_t open_fds() { return wsreg_test::open_fds(::getpid()); }

struct ChurnResult {
  std::uint64_t exchanged = 0;  // connections that got their echo back
  std::uint64_t failed = 0;     // connections that did not
  std::vector<long> rss_kib;    // after each quarter of the run
};

// `threads` client threads, each keeping `batch` connections open at a time:
// open them all, exchange one message on each, end half with a close frame
// and half with a TCP reset, repeat until `total` connections have been made.
template <class Registry>
ChurnResult churn(std::uint16_t port, Registry& registry, int threads, int batch, int total) {
  ChurnResult result;
  std::atomic<std::uint64_t> exchanged{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<int> made{0};
  const int quarter = total / 4;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      std::vector<RawClient> open(static_cast<std::size_t>(batch));
      while (made.fetch_add(batch) < total) {
        for (auto& c : open) {
          const bool ok = c.open(port) && c.write_all(RawClient::frame(0x1, "ping")) &&
                          c.read_message() == "ping";
          (ok ? exchanged : failed).fetch_add(1);
        }
        for (std::size_t i = 0; i < open.size(); ++i) {
          if (i % 2 == 0) {
            open[i].send_close(1000);
            open[i].wait_for_eof(std::chrono::seconds(5));
            open[i].close_now();
          } else {
            open[i].reset_now();
          }
        }
      }
    });
  }
  // Sample the server's RSS (this process) at each quarter of the run.
  for (int q = 1; q <= 4; ++q) {
    wait_until([&] { return made.load() >= q * quarter; }, std::chrono::seconds(120));
    result.rss_kib.push_back(wsreg_test::rss_kib());
  }
  for (auto& c : clients) c.join();
  result.exchanged = exchanged.load();
  result.failed = failed.load();
  (void)registry;
  return result;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("20,000 short-lived connections leave no entry, descriptor or memory "
                        "behind",
                        "[websocketpp][churn]", server_policies) {
  const std::size_t fds_before = open_fds();
  const long rss_before = wsreg_test::rss_kib();
  {
    ConnectionRegistry<TestType> registry;
    wsreg::wspp::ServerOptions options;
    options.threads = 2;
    wsreg::wspp::Server<TestType> server(registry, options);
    server.set_message_handler(
        [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
    server.listen("127.0.0.1", 0);

    constexpr int total = 20000;
    const ChurnResult result = churn(server.port(), registry, 8, 25, total);  // ~200 open at once
    CHECK(wait_until([&] { return registry.size() == 0; }));
    const auto stats = registry.stats();
    WARN("exchanged " << result.exchanged << ", failed " << result.failed << "; RSS KiB at each "
                      << "quarter " << result.rss_kib[0] << ", " << result.rss_kib[1] << ", "
                      << result.rss_kib[2] << ", " << result.rss_kib[3] << " (before "
                      << rss_before << "); open fds before " << fds_before << ", with server "
                      << open_fds());
    CHECK(result.failed == 0);
    CHECK(result.exchanged >= std::uint64_t{total});
    CHECK(stats.connections_added == result.exchanged);
    CHECK(stats.connections_removed == stats.connections_added);
#ifndef WSREG_SANITIZED
    // Plateau: the second half of the run adds (almost) nothing. (Under a
    // sanitizer the leak checker at exit judges instead.)
    CHECK(result.rss_kib[3] - result.rss_kib[1] < 4 * 1024);
#endif
  }
  // Server and registry gone: descriptors back to where they started.
  CHECK(wait_until([&] { return open_fds() <= fds_before + 2; }));
}
