// RFC 6455 details websocketpp 0.8.2 gets wrong, fixed by the adapter
// (include/wsreg/websocketpp/detail/hybi13_fixes.hpp and the validate
// handler), over real sockets with hand-made frames; and the handshake
// deadline the Server runs itself. The Autobahn|Testsuite covers the rest
// (scripts/conformance.sh).
#include "wsreg/websocketpp/server.hpp"

#include <atomic>
#include <chrono>
#include <string>

#include <catch2/catch.hpp>

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

// A server that counts what reaches its message handler (and echoes it).
template <class Policy>
struct CountingServer {
  explicit CountingServer(wsreg::wspp::ServerOptions options = {}) : server(registry, options) {
    server.set_message_handler([this](ConnectionId id, Payload message) {
      messages.fetch_add(1);
      registry.send(id, std::move(message));
    });
    server.listen("127.0.0.1", 0);
  }
  ConnectionRegistry<Policy> registry;
  wsreg::wspp::Server<Policy> server;
  std::atomic<int> messages{0};
};

std::string handshake_with_key(const std::string& key) {
  return "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

// A masked frame whose 5-byte payload length is sent in the 16-bit form,
// which RFC 6455 section 5.2 forbids ("the minimal number of bytes MUST be
// used").
std::string non_minimal_frame() {
  std::string out;
  out += static_cast<char>(0x81);        // FIN, text
  out += static_cast<char>(0x80 | 126);  // masked, 16-bit length follows
  out += '\0';
  out += static_cast<char>(5);
  const char mask[4] = {0, 0, 0, 0};
  out.append(mask, 4);
  out += "hello";
  return out;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("fragmented text whose UTF-8 is cut short at its end closes with 1007 and "
                        "never reaches the message handler",
                        "[websocketpp][integration][conformance]", server_policies) {
  CountingServer<TestType> s;
  RawClient client;
  REQUIRE(client.open(s.server.port()));
  // "κ" then the first byte of a three-byte sequence, in two fragments.
  REQUIRE(client.write_all(RawClient::frame(0x1, "\xce\xba", false) +
                           RawClient::frame(0x0, "\xe1", true)));
  CHECK(client.read_until_close() == 1007);
  CHECK(s.messages.load() == 0);
  CHECK(wait_until([&] { return s.server.stats().invalid_payload_closes == 1; }));

  // A whole valid message over fragments still arrives.
  RawClient good;
  REQUIRE(good.open(s.server.port()));
  REQUIRE(good.write_all(RawClient::frame(0x1, "\xce\xba", false) +
                         RawClient::frame(0x0, "\xe1\xbd\xb9", true)));
  CHECK(good.read_message() == "\xce\xba\xe1\xbd\xb9");
}

TEMPLATE_LIST_TEST_CASE("a close reason that is not UTF-8 gets 1007",
                        "[websocketpp][integration][conformance]", server_policies) {
  CountingServer<TestType> s;
  RawClient client;
  REQUIRE(client.open(s.server.port()));
  REQUIRE(client.write_all(RawClient::frame(0x8, std::string("\x03\xe8") + "\xff\xfe")));
  CHECK(client.read_until_close() == 1007);
  CHECK(wait_until([&] { return s.server.stats().invalid_payload_closes == 1; }));
  // A valid reason is echoed as usual.
  RawClient polite;
  REQUIRE(polite.open(s.server.port()));
  REQUIRE(polite.write_all(RawClient::frame(0x8, std::string("\x03\xe8") + "bye")));
  CHECK(polite.read_until_close() == 1000);
}

TEMPLATE_LIST_TEST_CASE("a payload length not in its minimal encoding gets 1002, not 1011",
                        "[websocketpp][integration][conformance]", server_policies) {
  CountingServer<TestType> s;
  RawClient client;
  REQUIRE(client.open(s.server.port()));
  REQUIRE(client.write_all(non_minimal_frame()));
  CHECK(client.read_until_close() == 1002);
  CHECK(s.messages.load() == 0);
  CHECK(wait_until([&] { return s.server.stats().protocol_error_closes == 1; }));
}

TEMPLATE_LIST_TEST_CASE("protocol-error closes are counted on /metrics with their code",
                        "[websocketpp][integration][conformance]", server_policies) {
  CountingServer<TestType> s;
  RawClient bad_rsv;  // RSV1 set without an extension: 1002
  REQUIRE(bad_rsv.open(s.server.port()));
  std::string frame = RawClient::frame(0x1, "x");
  frame[0] = static_cast<char>(frame[0] | 0x40);
  REQUIRE(bad_rsv.write_all(frame));
  CHECK(bad_rsv.read_until_close() == 1002);
  RawClient bad_utf8;  // invalid UTF-8 in one frame: 1007
  REQUIRE(bad_utf8.open(s.server.port()));
  REQUIRE(bad_utf8.write_all(RawClient::frame(0x1, "\xc3\x28")));
  CHECK(bad_utf8.read_until_close() == 1007);
  REQUIRE(wait_until([&] {
    const auto stats = s.server.stats();
    return stats.protocol_error_closes == 1 && stats.invalid_payload_closes == 1;
  }));
  const std::string text = wsreg::wspp::prometheus_text(s.server.stats());
  CHECK_THAT(text, Catch::Contains("wsreg_protocol_closes_total{code=\"1002\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("wsreg_protocol_closes_total{code=\"1007\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("wsreg_protocol_closes_total{code=\"1009\"} 0\n"));
}

TEMPLATE_LIST_TEST_CASE("a Sec-WebSocket-Key that is not base64 of 16 bytes gets 400",
                        "[websocketpp][integration][conformance]", server_policies) {
  CountingServer<TestType> s;
  const char* bad_keys[] = {
      "dGhlIHNhbXBsZSBub25jZQ",      // no padding
      "dGhlIHNhbXBsZSBub25jZQ=",     // 23 characters
      "dGhlIHNhbXBsZSBub25jZR==",    // stray bits past the 16th byte
      "dGhl*HNhbXBsZSBub25jZQ==",    // not base64
      "dGhlIHNhbXBsZSBub25jZSE=",    // 17 bytes
      "c2hvcnQ=",                    // 5 bytes
  };
  for (const char* key : bad_keys) {
    INFO("key " << key);
    RawClient client;
    REQUIRE(client.connect_tcp(s.server.port()));
    REQUIRE(client.write_all(handshake_with_key(key)));
    CHECK(client.read_http_response().rfind("HTTP/1.1 400", 0) == 0);
  }
  CHECK(s.registry.size() == 0);
  RawClient good;  // RFC 6455's own example key
  REQUIRE(good.connect_tcp(s.server.port()));
  REQUIRE(good.write_all(handshake_with_key("dGhlIHNhbXBsZSBub25jZQ==")));
  CHECK(good.read_http_response().rfind("HTTP/1.1 101", 0) == 0);
}

TEMPLATE_LIST_TEST_CASE("a connection that does not finish its handshake in time is dropped and "
                        "counted; one that did is never dropped by the deadline",
                        "[websocketpp][integration][conformance]", server_policies) {
  wsreg::wspp::ServerOptions options;
  options.handshake_timeout = std::chrono::milliseconds(200);
  CountingServer<TestType> s(options);
  RawClient silent;  // connects and sends nothing
  REQUIRE(silent.connect_tcp(s.server.port()));
  RawClient opened;
  REQUIRE(opened.open(s.server.port()));
  CHECK(silent.wait_for_eof(std::chrono::seconds(5)));
  CHECK(wait_until([&] { return s.server.stats().handshake_timeouts == 1; }));
  CHECK(s.server.stats().handshakes_failed == 1);
  // Well past the deadline, the opened connection still echoes.
  REQUIRE(opened.write_all(RawClient::frame(0x1, "still open")));
  CHECK(opened.read_message() == "still open");
  CHECK(s.registry.size() == 1);
}
