// wss:// (TlsServer): websocketpp's asio_tls transport on OpenSSL, with a
// self-signed certificate made at test time by the openssl command line.
#include "wsreg/websocketpp/tls.hpp"

#include <chrono>
#include <future>
#include <thread>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"
#include "tls_support.hpp"

using std::chrono::milliseconds;
using std::chrono::seconds;
using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::TestCertificate;
using wsreg_test::TlsClientPool;
using wsreg_test::wait_until;

namespace {

std::string wss_url(std::uint16_t port) { return "wss://127.0.0.1:" + std::to_string(port) + "/"; }

wsreg::wspp::TlsOptions tls_options(const TestCertificate& cert) {
  wsreg::wspp::TlsOptions tls;
  tls.certificate_chain_file = cert.certificate_file();
  tls.private_key_file = cert.key_file();
  return tls;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("wss clients are registered, receive every broadcast and are echoed",
                        "[websocketpp][tls]", server_policies) {
  const TestCertificate cert;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  wsreg::wspp::TlsServer<TestType> server(
      registry, wsreg::wspp::make_tls_context(tls_options(cert)), options);
  server.set_message_handler(
      [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
  server.listen("127.0.0.1", 0);
  REQUIRE(server.port() != 0);

  constexpr std::size_t clients = 50;
  TlsClientPool pool;
  pool.connect(wss_url(server.port()), clients);
  REQUIRE(wait_until([&] { return pool.opened() == clients && registry.size() == clients; }));

  constexpr std::size_t broadcasts = 20;
  const std::string big(100000, 'x');  // several TLS records
  for (std::size_t i = 0; i < broadcasts; ++i) {
    registry.broadcast(Payload::text(i == 0 ? big : "tick " + std::to_string(i)));
  }
  REQUIRE(wait_until([&] { return pool.messages() == clients * broadcasts; }));
  std::size_t exact = 0;
  for (std::size_t i = 0; i < clients; ++i) exact += pool.at(i).messages.load() == broadcasts;
  CHECK(exact == clients);

  pool.send(0, "over tls", websocketpp::frame::opcode::text);
  REQUIRE(wait_until([&] { return pool.at(0).messages.load() == broadcasts + 1; }));
  {
    std::lock_guard<std::mutex> lock(pool.at(0).mutex);
    CHECK(pool.at(0).last_payload == "over tls");
  }

  // Shutdown closes every wss connection with 1001 (RFC 6455 section 7.4.1).
  REQUIRE(server.shutdown(seconds(5)).wait_for(seconds(10)) == std::future_status::ready);
  REQUIRE(wait_until([&] { return pool.ended() == clients; }));
  std::size_t going_away = 0;
  for (std::size_t i = 0; i < clients; ++i) going_away += pool.at(i).close_code.load() == 1001;
  CHECK(going_away == clients);
  CHECK(registry.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("plain HTTP or garbage sent to the TLS port closes that socket alone, "
                        "counted",
                        "[websocketpp][tls]", server_policies) {
  const TestCertificate cert;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::TlsServer<TestType> server(registry,
                                          wsreg::wspp::make_tls_context(tls_options(cert)));
  server.listen("127.0.0.1", 0);

  TlsClientPool pool;
  pool.connect(wss_url(server.port()), 1);
  REQUIRE(wait_until([&] { return pool.opened() == 1 && registry.size() == 1; }));

  RawClient http;
  REQUIRE(http.connect_tcp(server.port()));
  REQUIRE(http.write_all(RawClient::handshake_request()));
  CHECK(http.wait_for_eof(seconds(10)));

  RawClient garbage;
  REQUIRE(garbage.connect_tcp(server.port()));
  REQUIRE(garbage.write_all(std::string(4096, '\x16') + "\x03\x03 not a client hello"));
  CHECK(garbage.wait_for_eof(seconds(10)));

  REQUIRE(wait_until([&] { return server.stats().tls_handshake_failures == 2; }));
  CHECK(server.stats().handshakes_failed == 2);
  CHECK(server.stats().internal_errors == 0);
  const std::string metrics = wsreg::wspp::prometheus_text(server.stats());
  CHECK(metrics.find("wsreg_tls_handshake_failures_total 2\n") != std::string::npos);

  // The wss client never noticed.
  registry.broadcast(Payload::text("still here"));
  REQUIRE(wait_until([&] { return pool.messages() == 1; }));
  CHECK(registry.size() == 1);
  CHECK(pool.ended() == 0);
}

TEMPLATE_LIST_TEST_CASE("a TCP client that never starts TLS is dropped at handshake_timeout",
                        "[websocketpp][tls]", server_policies) {
  const TestCertificate cert;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.handshake_timeout = milliseconds(300);
  wsreg::wspp::TlsServer<TestType> server(
      registry, wsreg::wspp::make_tls_context(tls_options(cert)), options);
  server.listen("127.0.0.1", 0);

  RawClient silent;
  REQUIRE(silent.connect_tcp(server.port()));
  // Half a ClientHello: the TLS handshake has started and stalls.
  RawClient stalled;
  REQUIRE(stalled.connect_tcp(server.port()));
  REQUIRE(stalled.write_all(std::string("\x16\x03\x01\x02\x00", 5)));

  const auto started = std::chrono::steady_clock::now();
  CHECK(silent.wait_for_eof(seconds(10)));
  CHECK(stalled.wait_for_eof(seconds(10)));
  // Well before websocketpp's own 5 s TLS handshake timer.
  CHECK(std::chrono::steady_clock::now() - started < seconds(4));
  REQUIRE(wait_until([&] { return server.stats().handshake_timeouts == 2; }));
  CHECK(registry.size() == 0);

  // And the server goes on accepting.
  TlsClientPool pool;
  pool.connect(wss_url(server.port()), 1);
  CHECK(wait_until([&] { return pool.opened() == 1 && registry.size() == 1; }));
}

TEMPLATE_LIST_TEST_CASE("shutdown ends a connection still in its TLS handshake",
                        "[websocketpp][tls]", server_policies) {
  const TestCertificate cert;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.handshake_timeout = seconds(60);
  wsreg::wspp::TlsServer<TestType> server(
      registry, wsreg::wspp::make_tls_context(tls_options(cert)), options);
  server.listen("127.0.0.1", 0);

  RawClient stalled;
  REQUIRE(stalled.connect_tcp(server.port()));
  REQUIRE(stalled.write_all(std::string("\x16\x03\x01\x02\x00", 5)));
  REQUIRE(wait_until([&] { return server.stats().accepts == 1; }));
  CHECK(server.shutdown(seconds(30)).wait_for(seconds(10)) == std::future_status::ready);
  CHECK(stalled.wait_for_eof(seconds(10)));
}

TEST_CASE("make_tls_context loads a chain and key, with a password, and names what is wrong",
          "[websocketpp][tls]") {
  const TestCertificate plain;
  CHECK(wsreg::wspp::make_tls_context(tls_options(plain)) != nullptr);

  const TestCertificate locked("s3cret");
  auto tls = tls_options(locked);
  tls.private_key_password = "s3cret";
  CHECK(wsreg::wspp::make_tls_context(tls) != nullptr);

  tls.private_key_password = "wrong";
  CHECK_THROWS_AS(wsreg::wspp::make_tls_context(tls), std::system_error);

  auto missing = tls_options(plain);
  missing.certificate_chain_file = "/nonexistent/cert.pem";
  CHECK_THROWS_WITH(wsreg::wspp::make_tls_context(missing),
                    Catch::Contains("/nonexistent/cert.pem"));

  auto mismatched = tls_options(plain);
  mismatched.private_key_file = locked.key_file();
  mismatched.private_key_password = "s3cret";
  CHECK_THROWS_WITH(wsreg::wspp::make_tls_context(mismatched), Catch::Contains(locked.key_file()));

  auto ciphers = tls_options(plain);
  ciphers.cipher_list = "NO-SUCH-CIPHER";
  CHECK_THROWS_AS(wsreg::wspp::make_tls_context(ciphers), std::system_error);

  ConnectionRegistry<wsreg::MutexPolicy> registry;
  CHECK_THROWS_AS(wsreg::wspp::TlsServer<wsreg::MutexPolicy>(registry, nullptr),
                  std::invalid_argument);
}

TEMPLATE_LIST_TEST_CASE("a TlsServer runs on an io_context the application runs",
                        "[websocketpp][tls]", server_policies) {
  const TestCertificate cert;
  ConnectionRegistry<TestType> registry;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work(io.get_executor());
  std::thread runner([&] { io.run(); });
  {
    wsreg::wspp::TlsServer<TestType> server(registry, io,
                                            wsreg::wspp::make_tls_context(tls_options(cert)));
    server.listen("127.0.0.1", 0);
    TlsClientPool pool;
    pool.connect(wss_url(server.port()), 3);
    REQUIRE(wait_until([&] { return registry.size() == 3; }));
    registry.broadcast(Payload::binary("b"));
    REQUIRE(wait_until([&] { return pool.messages() == 3; }));
    CHECK(server.shutdown(seconds(5)).wait_for(seconds(10)) == std::future_status::ready);
  }
  work.reset();
  runner.join();
  CHECK(registry.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("a wss broadcast is framed once: one frame in the payload, shared by "
                        "every recipient",
                        "[websocketpp][tls][frame_once]", server_policies) {
  using Message = wsreg::wspp::TlsConfig::message_type;
  using Tag = wsreg::wspp::detail::FramedMessage<Message>;
  const TestCertificate cert;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::TlsServer<TestType> server(registry,
                                          wsreg::wspp::make_tls_context(tls_options(cert)));
  server.listen("127.0.0.1", 0);
  TlsClientPool pool;
  pool.connect(wss_url(server.port()), 4);
  REQUIRE(wait_until([&] { return registry.size() == 4; }));

  const Payload payload = Payload::text("one frame for all");
  registry.broadcast(payload);
  REQUIRE(wait_until([&] { return pool.messages() == 4; }));
  bool made_again = false;
  const auto framed = payload.encoded<Tag>([&] {
    made_again = true;
    return std::shared_ptr<Message>();
  });
  CHECK_FALSE(made_again);  // the broadcast already framed it, once, for all four
  REQUIRE(framed);
  CHECK(framed->get_prepared());
  CHECK(framed->get_header() == std::string("\x81\x11", 2));  // FIN + text, length 17
}
