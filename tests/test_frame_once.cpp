// Frame once, send many: a broadcast is framed once and the same frame
// reaches every connection intact, at every payload-length encoding of
// RFC 6455 section 5.2, with ServerOptions::frame_once on and off.
#include "wsreg/websocketpp/server.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"

using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

// Bytes 0..255 repeating, so a misplaced offset shows in the comparison.
std::string pattern(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i % 251);
  return bytes;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("every payload length reaches every connection byte for byte, framed once "
                        "or per connection",
                        "[websocketpp][frame_once]", server_policies) {
  const bool frame_once = GENERATE(true, false);
  CAPTURE(frame_once);
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.frame_once = frame_once;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  std::vector<RawClient> clients(3);
  for (auto& client : clients) REQUIRE(client.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == clients.size(); }));

  // 7-bit, 16-bit and 64-bit lengths and their edges (RFC 6455 5.2).
  const std::vector<std::size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 200000};
  for (const std::size_t size : sizes) {
    CAPTURE(size);
    const Payload binary = Payload::binary(pattern(size));
    const Payload text = Payload::text(std::string(size, 'a'));
    registry.broadcast(binary);
    registry.broadcast(text);
    for (auto& client : clients) {
      std::uint8_t opcode = 0;
      std::string received;
      REQUIRE(client.read_data_message(opcode, received));
      CHECK(opcode == 0x2);
      CHECK(received == binary.data());
      REQUIRE(client.read_data_message(opcode, received));
      CHECK(opcode == 0x1);
      CHECK(received == text.data());
    }
  }
  CHECK(registry.stats().messages_dropped == 0);
}

TEMPLATE_LIST_TEST_CASE("a broadcast leaves one frame in the payload, shared by every recipient",
                        "[websocketpp][frame_once]", server_policies) {
  using Message = wsreg::wspp::Config::message_type;
  using Tag = wsreg::wspp::detail::FramedMessage<Message>;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry, wsreg::wspp::ServerOptions{});
  server.listen("127.0.0.1", 0);
  std::vector<RawClient> clients(4);
  for (auto& client : clients) REQUIRE(client.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == clients.size(); }));

  const Payload payload = Payload::text("one frame for all");
  registry.broadcast(payload);
  for (auto& client : clients) CHECK(client.read_message() == "one frame for all");

  bool made_again = false;
  const auto framed = payload.encoded<Tag>([&] {
    made_again = true;
    return std::shared_ptr<Message>();
  });
  CHECK_FALSE(made_again);  // the broadcast already framed it, once
  REQUIRE(framed);
  CHECK(framed->get_prepared());
  CHECK(framed->get_payload() == "one frame for all");
  CHECK(framed->get_header() == std::string("\x81\x11", 2));  // FIN + text, length 17
}

TEMPLATE_LIST_TEST_CASE("text that is not UTF-8 is dropped and counted, and the next message "
                        "still arrives",
                        "[websocketpp][frame_once]", server_policies) {
  const bool frame_once = GENERATE(true, false);
  CAPTURE(frame_once);
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.frame_once = frame_once;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);
  std::vector<RawClient> clients(2);
  for (auto& client : clients) REQUIRE(client.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == clients.size(); }));

  registry.broadcast(Payload::text("\xC3\x28 is not UTF-8"));  // RFC 3629: bad continuation
  registry.broadcast(Payload::text("valid"));
  for (auto& client : clients) CHECK(client.read_message() == "valid");
  const auto stats = registry.stats();
  CHECK(stats.messages_dropped == clients.size());
  CHECK(stats.messages_sent == clients.size());
  CHECK(registry.size() == clients.size());
}
