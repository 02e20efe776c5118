// Integration tests: wsreg::wspp::Server over real loopback sockets, each on
// an ephemeral port, with websocketpp clients in the same process.
#include "wsreg/websocketpp/server.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <catch2/catch.hpp>

#include "client_pool.hpp"
#include "policies.hpp"
#include "support.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::ClientPool;
using wsreg_test::ClientRecord;
using wsreg_test::server_policies;
// The one representative server case that also runs over a sharded policy
// (the registry tests cover the rest; each server case costs seconds).
using server_and_sharded_policies =
    std::tuple<wsreg::ActorPolicy, wsreg::MutexPolicy, wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>>;
using wsreg_test::wait_until;

namespace {

using wsreg_test::url_of;

// One plain HTTP request on a fresh TCP connection; returns the whole response.
std::string http_request(std::uint16_t port, const std::string& method, const std::string& path) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const std::string request = method + " " + path +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  std::string response;
  std::error_code ec;
  asio::read(socket, asio::dynamic_buffer(response), ec);  // until the server closes
  return response;
}

std::string http_get(std::uint16_t port, const std::string& path) {
  return http_request(port, "GET", path);
}

// The response's head (status line and headers), up to the blank line.
std::string head_of(const std::string& response) {
  return response.substr(0, response.find("\r\n\r\n") + 2);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("200 real clients each receive every broadcast, and every way of leaving "
                        "brings the count back to 0",
                        "[websocketpp][integration]", server_and_sharded_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);
  REQUIRE(server.port() != 0);

  constexpr std::size_t clients = 200;
  ClientPool pool;
  pool.connect(url_of(server.port()), clients);
  REQUIRE(wait_until([&] { return pool.opened() == clients && registry.size() == clients; }));

  constexpr std::size_t broadcasts = 10;
  for (std::size_t i = 0; i < broadcasts; ++i) {
    registry.broadcast(Payload::text("tick " + std::to_string(i)));
  }
  REQUIRE(wait_until([&] { return pool.messages() == clients * broadcasts; }));
  std::size_t exact = 0;
  for (std::size_t i = 0; i < clients; ++i) exact += pool.at(i).messages.load() == broadcasts;
  CHECK(exact == clients);
  CHECK(registry.stats().messages_sent == clients * broadcasts);

  // Half leave with a close frame, half drop the TCP socket without one.
  for (std::size_t i = 0; i < clients; ++i) {
    if (i % 2 == 0) {
      pool.close_cleanly(i);
    } else {
      pool.drop(i);
    }
  }
  CHECK(wait_until([&] { return registry.size() == 0; }));
  const auto stats = registry.stats();
  CHECK(stats.connections_added == clients);
  CHECK(stats.connections_removed == clients);
}

TEMPLATE_LIST_TEST_CASE("echo through the registry preserves payload and opcode",
                        "[websocketpp][integration]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.set_message_handler(
      [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
  server.listen("127.0.0.1", 0);

  ClientPool pool;
  pool.connect(url_of(server.port()), 2);
  REQUIRE(wait_until([&] { return pool.opened() == 2; }));

  const std::string binary("\x00\x01\xff binary", 10);
  pool.send(0, "hello", websocketpp::frame::opcode::text);
  pool.send(1, binary, websocketpp::frame::opcode::binary);
  REQUIRE(wait_until([&] { return pool.messages() == 2; }));
  {
    auto& r = pool.at(0);
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(r.last_payload == "hello");
    CHECK(r.last_opcode == websocketpp::frame::opcode::text);
  }
  {
    auto& r = pool.at(1);
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(r.last_payload == binary);
    CHECK(r.last_opcode == websocketpp::frame::opcode::binary);
  }
}

TEMPLATE_LIST_TEST_CASE("GET /metrics answers in the Prometheus text format",
                        "[websocketpp][integration][metrics]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.listen("127.0.0.1", 0);
  ClientPool pool;
  pool.connect(url_of(server.port()), 3);
  REQUIRE(wait_until([&] { return registry.size() == 3; }));
  registry.send(12345, Payload::text("nobody"));
  registry.flush();  // /metrics reads stats_approx, which does not wait for the actor

  const std::string metrics = http_get(server.port(), "/metrics");
  CHECK(metrics.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(metrics.find("text/plain; version=0.0.4") != std::string::npos);
  CHECK(metrics.find("\nwsreg_connections 3\n") != std::string::npos);
  CHECK(metrics.find("\nwsreg_send_unknown_total 1\n") != std::string::npos);
  CHECK(metrics.find("\nwsreg_messages_sent_total 0\n") != std::string::npos);
  CHECK(metrics.find("\nwsreg_messages_dropped_total 0\n") != std::string::npos);

  CHECK(http_get(server.port(), "/other").rfind("HTTP/1.1 404", 0) == 0);
}

TEMPLATE_LIST_TEST_CASE("an HTTP handler's status, Content-Type and extra headers reach the client",
                        "[websocketpp][integration][http]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.set_http_handler([](const wsreg::wspp::HttpRequest& req, wsreg::wspp::HttpResponse& res) {
    if (req.target != "/page") return false;
    if (req.method != "GET") {
      res.status = 405;
      res.with_header("Allow", "GET");
      res.body = "use GET\n";
      return true;
    }
    res.content_type = "text/html; charset=utf-8";
    res.body = "<p>page</p>";
    res.with_header("Cache-Control", "no-cache").with_header("X-Content-Type-Options", "nosniff");
    return true;
  });
  server.listen("127.0.0.1", 0);

  const std::string page = http_get(server.port(), "/page");
  const std::string head = head_of(page);
  CHECK(page.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(head.find("\r\nContent-Type: text/html; charset=utf-8\r\n") != std::string::npos);
  CHECK(head.find("\r\nCache-Control: no-cache\r\n") != std::string::npos);
  CHECK(head.find("\r\nX-Content-Type-Options: nosniff\r\n") != std::string::npos);
  CHECK(page.substr(page.size() - 11) == "<p>page</p>");

  const std::string posted = http_request(server.port(), "POST", "/page");
  CHECK(posted.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(head_of(posted).find("\r\nAllow: GET\r\n") != std::string::npos);
  CHECK(server.stats().handler_exceptions == 0);
}

TEMPLATE_LIST_TEST_CASE("another method than GET on metrics_path gets 405 with Allow: GET",
                        "[websocketpp][integration][http][metrics]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.listen("127.0.0.1", 0);
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    const std::string response = http_request(server.port(), method, "/metrics");
    INFO(method << ": " << response);
    CHECK(response.rfind("HTTP/1.1 405", 0) == 0);
    CHECK(head_of(response).find("\r\nAllow: GET\r\n") != std::string::npos);
    CHECK(response.find("wsreg_connections") == std::string::npos);
  }
  CHECK(http_request(server.port(), "POST", "/other").rfind("HTTP/1.1 404", 0) == 0);
  CHECK(http_get(server.port(), "/metrics").rfind("HTTP/1.1 200", 0) == 0);
}

TEMPLATE_LIST_TEST_CASE("a response header that cannot be sent safely answers 500, counted",
                        "[websocketpp][integration][http]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.set_http_handler([](const wsreg::wspp::HttpRequest& req, wsreg::wspp::HttpResponse& res) {
    if (req.target == "/split") res.with_header("X-Note", "a\r\nSet-Cookie: evil=1");
    if (req.target == "/name") res.with_header("Bad Name", "x");
    res.body = "should not be sent";
    return true;
  });
  server.listen("127.0.0.1", 0);

  const std::string split = http_get(server.port(), "/split");
  CHECK(split.rfind("HTTP/1.1 500", 0) == 0);
  CHECK(split.find("evil") == std::string::npos);
  CHECK(split.find("should not be sent") == std::string::npos);
  const std::string name = http_get(server.port(), "/name");
  CHECK(name.rfind("HTTP/1.1 500", 0) == 0);
  CHECK(name.find("Bad Name") == std::string::npos);
  CHECK(server.stats().handler_exceptions == 2);
  CHECK(http_get(server.port(), "/fine").rfind("HTTP/1.1 200", 0) == 0);
}

TEMPLATE_LIST_TEST_CASE("class template argument deduction gives Server<Policy, Data> from the "
                        "registry",
                        "[websocketpp][ctad]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server owning(registry);
  STATIC_REQUIRE(std::is_same_v<decltype(owning), wsreg::wspp::Server<TestType>>);

  ConnectionRegistry<TestType, std::string> named;
  asio::io_context io;
  wsreg::wspp::Server embedded(named, io, wsreg::wspp::ServerOptions{});
  STATIC_REQUIRE(std::is_same_v<decltype(embedded), wsreg::wspp::Server<TestType, std::string>>);
  CHECK(&embedded.registry() == &named);
  CHECK(&embedded.io_context() == &io);
}

TEMPLATE_LIST_TEST_CASE("shutdown closes every connection with 1001 and completes",
                        "[websocketpp][integration][shutdown]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);
  constexpr std::size_t clients = 50;
  ClientPool pool;
  pool.connect(url_of(server.port()), clients);
  REQUIRE(wait_until([&] { return registry.size() == clients; }));

  auto done = server.shutdown(std::chrono::seconds(2));
  CHECK(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(registry.size() == 0);
  REQUIRE(wait_until([&] { return pool.ended() == clients; }));
  std::size_t going_away = 0;
  for (std::size_t i = 0; i < clients; ++i) going_away += pool.at(i).close_code.load() == 1001;
  CHECK(going_away == clients);
  // A second call returns the same, completed future.
  CHECK(server.shutdown().wait_for(std::chrono::seconds(0)) == std::future_status::ready);
}

TEMPLATE_LIST_TEST_CASE("the server runs on an io_context the application already runs",
                        "[websocketpp][integration][embedding]", server_policies) {
  asio::io_context app_io;
  auto work = asio::make_work_guard(app_io);
  std::thread app_thread([&] { app_io.run(); });
  {
    ConnectionRegistry<TestType> registry;
    wsreg::wspp::Server<TestType> server(registry, app_io);
    server.set_message_handler(
        [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
    server.listen("127.0.0.1", 0);
    CHECK(&server.io_context() == &app_io);

    ClientPool pool;
    pool.connect(url_of(server.port()), 1);
    REQUIRE(wait_until([&] { return pool.opened() == 1; }));
    pool.send(0, "embedded", websocketpp::frame::opcode::text);
    REQUIRE(wait_until([&] { return pool.messages() == 1; }));

    CHECK(server.shutdown(std::chrono::seconds(2)).wait_for(std::chrono::seconds(10)) ==
          std::future_status::ready);
    CHECK(registry.size() == 0);
  }
  work.reset();
  app_thread.join();  // returns once nothing is left on the application's io_context
}

TEMPLATE_LIST_TEST_CASE("an exception from a handler closes only that connection with 1011",
                        "[websocketpp][integration]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.set_message_handler([&](ConnectionId id, Payload message) {
    if (message.data() == "throw") throw std::runtime_error("application bug");
    registry.send(id, std::move(message));
  });
  server.listen("127.0.0.1", 0);
  ClientPool pool;
  pool.connect(url_of(server.port()), 2);
  // Both sides open: the server registers a connection before the client
  // has read the 101, and a client send before that is refused.
  REQUIRE(wait_until([&] { return pool.opened() == 2 && registry.size() == 2; }));

  pool.send(0, "throw", websocketpp::frame::opcode::text);
  REQUIRE(wait_until([&] { return pool.ended() == 1; }));
  CHECK(pool.at(0).close_code.load() == 1011);
  pool.send(1, "still here", websocketpp::frame::opcode::text);
  CHECK(wait_until([&] { return pool.at(1).messages.load() == 1; }));
  CHECK(wait_until([&] { return registry.size() == 1; }));
}

TEMPLATE_LIST_TEST_CASE("an embedded server shut down with no connection leaves nothing behind on "
                        "the application's io_context",
                        "[websocketpp][integration][embedding]", server_policies) {
  asio::io_context app_io;
  auto work = asio::make_work_guard(app_io);
  std::thread app_thread([&] { app_io.run(); });
  ConnectionRegistry<TestType> registry;
  for (int round = 0; round < 20; ++round) {  // the race this guards against was timing-dependent
    auto server = std::make_unique<wsreg::wspp::Server<TestType>>(registry, app_io);
    server->listen("127.0.0.1", 0);
    // Keep the io thread busy so that anything the Server posted runs late.
    asio::post(app_io, [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
    REQUIRE(server->shutdown().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    server.reset();  // as documented: after the future is ready, while io runs
  }
  // Everything the Servers posted has run by now (AddressSanitizer would
  // report a use after free otherwise); the io_context is still healthy.
  std::promise<void> ran;
  asio::post(app_io, [&] { ran.set_value(); });
  CHECK(ran.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  work.reset();
  app_thread.join();
  CHECK(registry.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("on 2 io threads, what two application threads send reaches every "
                        "connection complete and in each thread's order, with write lanes on "
                        "and off",
                        "[websocketpp][integration][order]", server_and_sharded_policies) {
  for (const bool lanes : {true, false}) {
    ConnectionRegistry<TestType> registry;
    wsreg::wspp::ServerOptions options;
    options.threads = 2;
    options.write_lanes = lanes;
    options.max_buffered_bytes = 64 * 1024 * 1024;  // nothing dropped: order is the question
    wsreg::wspp::Server<TestType> server(registry, options);
    server.listen("127.0.0.1", 0);

    constexpr std::size_t clients = 20;
    ClientPool pool;
    pool.keep_payloads();
    pool.connect(url_of(server.port()), clients);
    REQUIRE(wait_until([&] { return pool.opened() == clients && registry.size() == clients; }));

    // Thread A broadcasts, thread B sends to each id in turn; every 50th
    // message is 256 KiB, more than a loopback socket takes at once, so
    // some writes are partial and continue asynchronously.
#ifdef WSREG_SANITIZED
    constexpr int count = 150;  // 20 s a policy otherwise under ThreadSanitizer
#else
    constexpr int count = 400;
#endif
    const auto payload = [](char thread, int i) {
      std::string text = std::string(1, thread) + ":" + std::to_string(i) + ":";
      if (i % 50 == 0) text.append(256 * 1024, 'x');
      return text;
    };
    std::atomic<bool> go{false};
    std::thread a([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < count; ++i) registry.broadcast(Payload::text(payload('A', i)));
    });
    std::thread b([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < count; ++i) {
        const Payload p = Payload::text(payload('B', i));
        for (ConnectionId id = 1; id <= clients; ++id) registry.send(id, p);
      }
    });
    go.store(true);
    a.join();
    b.join();
    registry.flush();
    const bool all = wait_until([&] { return pool.messages() == clients * 2 * count; },
                                std::chrono::seconds(30));
    INFO("write lanes " << (lanes ? "on" : "off") << ": " << pool.messages() << " of "
                        << clients * 2 * count << " messages");
    CHECK(all);
    std::size_t in_order = 0;
    for (std::size_t c = 0; c < clients; ++c) {
      ClientRecord& record = pool.at(c);
      std::lock_guard<std::mutex> lock(record.mutex);
      int next_a = 0;
      int next_b = 0;
      bool ok = true;
      for (const std::string& text : record.payloads) {
        int& next = text[0] == 'A' ? next_a : next_b;
        ok = ok && text == payload(text[0], next);
        ++next;
      }
      in_order += ok && next_a == count && next_b == count;
    }
    CHECK(in_order == clients);
    CHECK(registry.stats().messages_dropped == 0);
  }
}
