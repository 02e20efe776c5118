// Lifetime and shutdown of wsreg::wspp::Server over real loopback sockets:
// nothing of a Server runs after its shutdown completed and it was
// destroyed, whatever was in flight (handshakes, slow close handlers,
// connections already closing), in both the owned and the embedded mode.
// Run under AddressSanitizer by `make check`, which is what turns a handler
// running on freed memory into a failure.
#include "wsreg/websocketpp/server.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "client_pool.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::ClientPool;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::url_of;
using wsreg_test::wait_until;

namespace {

// An io_context run by `n` application threads, as an application that
// embeds the Server would have it.
class AppIo {
 public:
  explicit AppIo(std::size_t n) : work_(io_.get_executor()) {
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~AppIo() {
    work_.reset();
    for (auto& t : threads_) t.join();
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// What the close handler saw, written by io threads, read by the test
// thread after waiting.
struct CloseLog {
  std::atomic<int> opened{0};
  std::atomic<int> entered{0};
  std::atomic<int> returned{0};
};

}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "an embedded server on 2 io threads, shut down with a handshake in flight and a 300 ms close "
    "handler, completes only after every handler returned and runs nothing once destroyed",
    "[websocketpp][integration][lifetime]", server_policies) {
  AppIo app(2);
  ConnectionRegistry<TestType> registry;
  for (int round = 0; round < 20; ++round) {
    CloseLog log;
    wsreg::wspp::ServerOptions options;
    options.handshake_timeout = std::chrono::milliseconds(100);  // would fire after destruction
    auto server = std::make_unique<wsreg::wspp::Server<TestType>>(registry, app.io(), options);
    server->set_open_handler([&](ConnectionId) { log.opened.fetch_add(1); });
    bool first = true;  // the close handlers of one connection never run concurrently
    std::mutex first_mutex;
    server->set_close_handler([&](ConnectionId) {
      log.entered.fetch_add(1);
      bool slow = false;
      {
        std::lock_guard<std::mutex> lock(first_mutex);
        slow = std::exchange(first, false);
      }
      if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the slow handler
      log.returned.fetch_add(1);
    });
    server->listen("127.0.0.1", 0);
    const std::uint16_t port = server->port();

    ClientPool pool;
    pool.connect(url_of(port), 3);
    REQUIRE(wait_until([&] { return pool.opened() == 3 && log.opened.load() == 3; }));
    // Accepted, but its handshake request is only half sent.
    RawClient half;
    REQUIRE(half.connect_tcp(port));
    REQUIRE(half.write_all("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    REQUIRE(wait_until([&] { return server->stats().accepts == 4; }));

    wsreg::wspp::ShutdownFuture done = server->shutdown(std::chrono::seconds(5));
    REQUIRE(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    // Ready means every close handler has returned, the slow one included.
    CHECK(log.entered.load() == 3);
    CHECK(log.returned.load() == 3);
    CHECK(registry.size() == 0);
    server.reset();  // as documented: after the future is ready, while io runs

    // The rest of the handshake, and the time for any stale timer to fire:
    // nothing of the destroyed Server may run (AddressSanitizer watches).
    half.write_all("Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    CHECK(half.wait_for_eof(std::chrono::seconds(5)));
    std::promise<void> later;
    asio::steady_timer timer(app.io(), std::chrono::milliseconds(150));
    timer.async_wait([&](const std::error_code&) { later.set_value(); });
    REQUIRE(later.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(log.entered.load() == 3);
    REQUIRE(wait_until([&] { return pool.ended() == 3; }));
  }
}

TEMPLATE_LIST_TEST_CASE("shutdown's grace is a deadline for connections already closing for "
                        "another reason",
                        "[websocketpp][integration][lifetime]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.close_handshake_timeout = std::chrono::seconds(60);
  wsreg::wspp::Server<TestType> server(registry, options);
  server.set_message_handler([](ConnectionId, Payload) { throw std::runtime_error("bug"); });
  std::atomic<int> closed{0};
  server.set_close_handler([&](ConnectionId) { closed.fetch_add(1); });
  server.listen("127.0.0.1", 0);

  // The handler throws, so the server closes with 1011 and waits up to 60 s
  // for a close frame this client never sends.
  RawClient client;
  REQUIRE(client.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == 1; }));
  REQUIRE(client.write_all(RawClient::frame(0x1, "boom")));
  REQUIRE(wait_until([&] { return server.stats().handler_exceptions == 1; }));

  const auto start = std::chrono::steady_clock::now();
  wsreg::wspp::ShutdownFuture done = server.shutdown(std::chrono::milliseconds(200));
  REQUIRE(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took < std::chrono::seconds(5));
  CHECK(closed.load() == 1);
  CHECK(registry.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("shutdown takes any grace, milliseconds::max() included",
                        "[websocketpp][integration][lifetime]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.listen("127.0.0.1", 0);
  ClientPool pool;  // websocketpp clients answer the 1001 at once
  pool.connect(url_of(server.port()), 5);
  REQUIRE(wait_until([&] { return pool.opened() == 5 && registry.size() == 5; }));
  wsreg::wspp::ShutdownFuture done = server.shutdown(std::chrono::milliseconds::max());
  CHECK(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(registry.size() == 0);
  REQUIRE(wait_until([&] { return pool.ended() == 5; }));
  for (std::size_t i = 0; i < 5; ++i) CHECK(pool.at(i).close_code.load() == 1001);

  // A negative grace is no grace.
  ConnectionRegistry<TestType> other_registry;
  wsreg::wspp::Server<TestType> other(other_registry);
  other.listen("127.0.0.1", 0);
  CHECK(other.shutdown(std::chrono::milliseconds(-5)).wait_for(std::chrono::seconds(20)) ==
        std::future_status::ready);
}

TEMPLATE_LIST_TEST_CASE("async_shutdown works from the only io thread of an embedded server, "
                        "and a blocking wait there refuses instead of hanging",
                        "[websocketpp][integration][lifetime]", server_policies) {
  AppIo app(1);
  ConnectionRegistry<TestType> registry;
  auto server = std::make_unique<wsreg::wspp::Server<TestType>>(registry, app.io());
  std::atomic<int> closed{0};
  server->set_close_handler([&](ConnectionId) { closed.fetch_add(1); });
  server->listen("127.0.0.1", 0);
  ClientPool pool;
  pool.connect(url_of(server->port()), 2);
  REQUIRE(wait_until([&] { return pool.opened() == 2 && registry.size() == 2; }));

  std::promise<bool> refused;
  std::promise<void> destroyed;
  asio::post(app.io(), [&] {
#ifdef NDEBUG  // in a debug build the refusal is an assert, which ends the test
    try {
      server->shutdown(std::chrono::seconds(1)).wait();
      refused.set_value(false);
    } catch (const std::logic_error&) {
      refused.set_value(true);
    }
#else
    refused.set_value(true);
#endif
    server->async_shutdown(std::chrono::seconds(1), [&] {
      server.reset();  // embedded, completed: may be destroyed here, on its io thread
      destroyed.set_value();
    });
  });
  CHECK(refused.get_future().get());
  REQUIRE(destroyed.get_future().wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(closed.load() == 2);
  CHECK(registry.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("destroying a server with connections open removes each and calls its "
                        "close handler exactly once",
                        "[websocketpp][integration][lifetime]", server_policies) {
  ConnectionRegistry<TestType> registry;
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  ClientPool pool;
  {
    wsreg::wspp::ServerOptions options;
    options.threads = 2;
    wsreg::wspp::Server<TestType> server(registry, options);
    server.set_open_handler([&](ConnectionId) { opened.fetch_add(1); });
    server.set_close_handler([&](ConnectionId) { closed.fetch_add(1); });
    server.listen("127.0.0.1", 0);
    pool.connect(url_of(server.port()), 20);
    REQUIRE(wait_until([&] { return pool.opened() == 20 && opened.load() == 20; }));
  }  // no shutdown(): the destructor does it with no grace
  CHECK(closed.load() == 20);
  CHECK(registry.size() == 0);
  CHECK(registry.stats().connections_removed == 20);
}

TEMPLATE_LIST_TEST_CASE("shutdown before listen completes at once, and async_shutdown's handler "
                        "given after completion still runs",
                        "[websocketpp][lifetime]", server_policies) {
  AppIo app(1);
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry, app.io());
  CHECK(server.shutdown().ready());
  std::promise<void> ran;
  server.async_shutdown(std::chrono::seconds(1), [&] { ran.set_value(); });
  CHECK(ran.get_future().wait_for(std::chrono::seconds(20)) == std::future_status::ready);
}

namespace {

// Per-connection data whose construction fails once when asked to, as an
// allocation in the adapter's open path would.
struct FragileData {
  FragileData() {
    if (fail_next().exchange(false)) throw std::bad_alloc();
  }
  static std::atomic<bool>& fail_next() {
    static std::atomic<bool> flag{false};
    return flag;
  }
};

}  // namespace

TEMPLATE_LIST_TEST_CASE("an allocation failure in the adapter's open path closes that connection "
                        "with 1011, is counted, and affects no other",
                        "[websocketpp][integration][lifetime]", server_policies) {
  ConnectionRegistry<TestType, FragileData> registry;
  wsreg::wspp::Server<TestType, FragileData> server(registry);
  server.set_message_handler(
      [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
  server.listen("127.0.0.1", 0);
  RawClient first;
  REQUIRE(first.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == 1; }));

  FragileData::fail_next() = true;
  RawClient unlucky;
  REQUIRE(unlucky.open(server.port()));
  CHECK(unlucky.read_until_close() == 1011);
  CHECK(wait_until([&] { return server.stats().internal_errors == 1; }));
  CHECK(registry.size() == 1);

  REQUIRE(first.write_all(RawClient::frame(0x1, "unaffected")));
  CHECK(first.read_message() == "unaffected");
  RawClient next;
  REQUIRE(next.open(server.port()));
  CHECK(wait_until([&] { return registry.size() == 2; }));
}
