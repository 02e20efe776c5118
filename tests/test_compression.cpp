// permessage-deflate (RFC 7692) through wsreg::wspp::Server on DeflateConfig:
// negotiated per connection, a broadcast compressed once and the same frame
// on every connection that negotiated it, plain frames for the others and
// below the threshold, inbound messages inflated within max_message_size.
#include "wsreg/websocketpp/deflate_config.hpp"

#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "inflate.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"
#include "wsreg/websocketpp/server.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

// Bytes inflated so far by every DeflateConfig connection in this process.
std::uint64_t inflated_total() {
  using Extension = wsreg::wspp::DeflateConfig::permessage_deflate_type;
  return Extension::inflated_bytes_total().load();
}

using wsreg::wspp::DeflateServer;

const std::string offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

// A JSON document of about `size` bytes, compressible as real messages are.
std::string json_of(std::size_t size) {
  std::string text = "[";
  for (int seq = 0; text.size() < size; ++seq) {
    text += "{\"seq\":" + std::to_string(seq) + ",\"symbol\":\"ACME\",\"bid\":" +
            std::to_string(100 + seq % 7) + ".25},";
  }
  text.resize(size);
  return text;
}

// The Sec-WebSocket-Extensions value of a response head, or "".
std::string extensions_of(const std::string& head) {
  const std::string name = "Sec-WebSocket-Extensions: ";
  const auto at = head.find(name);
  if (at == std::string::npos) return {};
  return head.substr(at + name.size(), head.find("\r\n", at) - at - name.size());
}

// One message as a client reads it: RSV1, the payload as sent, and the
// payload inflated if RSV1 (with `window_bits`).
struct Received {
  bool ok = false;
  bool compressed = false;
  std::uint8_t opcode = 0;
  std::string wire;
  std::string bytes;
};

Received receive(RawClient& client, int window_bits = 15) {
  Received r;
  if (!client.read_data_message(r.opcode, r.wire, std::chrono::seconds(10), &r.compressed)) {
    return r;
  }
  r.ok = r.compressed ? wsreg_test::inflate_message(r.wire, r.bytes, window_bits) : true;
  if (!r.compressed) r.bytes = r.wire;
  return r;
}

// Peak resident memory of this process since the last reset_peak_rss(), KiB
// (VmHWM), and the reset (Linux: "5" to /proc/self/clear_refs).
long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}
bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  return static_cast<bool>(clear.flush());
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("a broadcast is compressed once for the connections that negotiated "
                        "deflate and sent plain to the others",
                        "[websocketpp][deflate]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  DeflateServer<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  std::vector<RawClient> deflating(3);
  for (auto& client : deflating) {
    const std::string head = client.open_with(server.port(), offer);
    REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
    // Always server_no_context_takeover (RFC 7692 7.1.1.1), so one frame
    // fits every connection.
    CHECK(extensions_of(head) == "permessage-deflate; server_no_context_takeover");
  }
  RawClient plain;
  const std::string plain_head = plain.open_with(server.port(), "");
  REQUIRE(plain_head.rfind("HTTP/1.1 101", 0) == 0);
  CHECK(extensions_of(plain_head).empty());
  REQUIRE(wait_until([&] { return registry.size() == 4; }));

  const Payload big = Payload::text(json_of(1024));
  const Payload small = Payload::text(json_of(100));  // below the 256-byte threshold
  registry.broadcast(big);
  registry.broadcast(small);

  std::string first_wire;
  for (auto& client : deflating) {
    const Received r = receive(client);
    REQUIRE(r.ok);
    CHECK(r.compressed);
    CHECK(r.opcode == 0x1);
    CHECK(r.bytes == big.data());
    CHECK(r.wire.size() < big.size() / 2);
    if (first_wire.empty()) first_wire = r.wire;
    CHECK(r.wire == first_wire);  // the same frame everywhere
    const Received s = receive(client);
    REQUIRE(s.ok);
    CHECK_FALSE(s.compressed);
    CHECK(s.bytes == small.data());
  }
  for (const Payload* sent : {&big, &small}) {
    const Received r = receive(plain);
    REQUIRE(r.ok);
    CHECK_FALSE(r.compressed);
    CHECK(r.bytes == sent->data());
  }

  // The compressed frame is the one cached in the Payload beside the plain
  // frame: made once, whatever the number of recipients.
  using Message = typename DeflateServer<TestType>::Endpoint::connection_type::message_type;
  using Frames = wsreg::wspp::detail::DeflateFrames<Message>;
  bool made_again = false;
  const auto frames = big.template encoded<Frames>([&made_again] {
    made_again = true;
    return std::make_shared<Frames>();
  });
  CHECK_FALSE(made_again);
  const auto cached = frames->compressed(big, {});
  REQUIRE(cached);
  CHECK(cached->get_payload() == first_wire);
}

TEMPLATE_LIST_TEST_CASE("with frame_once off websocketpp compresses per connection, same bytes "
                        "after inflation",
                        "[websocketpp][deflate]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.frame_once = false;
  DeflateServer<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);
  RawClient client;
  REQUIRE(client.open_with(server.port(), offer).rfind("HTTP/1.1 101", 0) == 0);
  RawClient plain;
  REQUIRE(plain.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == 2; }));

  for (const std::size_t size : {100, 1024, 70000}) {
    CAPTURE(size);
    const Payload payload = Payload::binary(json_of(size));
    registry.broadcast(payload);
    const Received r = receive(client);
    REQUIRE(r.ok);
    CHECK(r.compressed == (size >= options.deflate_threshold_bytes));
    CHECK(r.bytes == payload.data());
    const Received p = receive(plain);
    CHECK_FALSE(p.compressed);
    CHECK(p.bytes == payload.data());
  }
}

TEMPLATE_LIST_TEST_CASE("a connection that asked for a small server window gets frames that "
                        "window can inflate",
                        "[websocketpp][deflate]", server_policies) {
  const int bits = GENERATE(8, 9, 12);
  CAPTURE(bits);
  ConnectionRegistry<TestType> registry;
  DeflateServer<TestType> server(registry, wsreg::wspp::ServerOptions{});
  server.listen("127.0.0.1", 0);
  RawClient small_window;
  const std::string head = small_window.open_with(
      server.port(), "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=" +
                         std::to_string(bits) + "\r\n");
  REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
  // Honoured as offered, 8 included (websocketpp's own extension answers 9).
  CHECK(extensions_of(head) == "permessage-deflate; server_no_context_takeover; "
                               "server_max_window_bits=" + std::to_string(bits));
  RawClient full_window;
  REQUIRE(full_window.open_with(server.port(), offer).rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(wait_until([&] { return registry.size() == 2; }));

  // 300 bytes fits any window (the shared frame); 20000 does not fit a
  // small one (compressed for that connection alone).
  for (const std::size_t size : {300, 20000}) {
    CAPTURE(size);
    const Payload payload = Payload::text(json_of(size));
    registry.broadcast(payload);
    const Received r = receive(small_window, bits);
    REQUIRE(r.ok);
    CHECK(r.compressed);
    CHECK(r.bytes == payload.data());
    const Received f = receive(full_window);
    REQUIRE(f.ok);
    CHECK(f.compressed);
    CHECK(f.bytes == payload.data());
  }
}

TEMPLATE_LIST_TEST_CASE("inbound compressed messages arrive inflated, whole or fragmented",
                        "[websocketpp][deflate]", server_policies) {
  ConnectionRegistry<TestType> registry;
  DeflateServer<TestType> server(registry, wsreg::wspp::ServerOptions{});
  std::mutex mutex;
  std::vector<std::string> received;
  server.set_message_handler([&](ConnectionId, Payload message) {
    std::lock_guard<std::mutex> lock(mutex);
    received.emplace_back(message.data());
  });
  server.listen("127.0.0.1", 0);
  RawClient client;
  REQUIRE(client.open_with(server.port(), offer).rfind("HTTP/1.1 101", 0) == 0);

  const std::string text = json_of(50000);
  const std::string compressed = wsreg_test::deflate_message(text);
  REQUIRE(client.write_all(RawClient::frame(0x1, compressed, true, /*rsv1=*/true)));
  // Fragmented: RSV1 on the first frame only (RFC 7692 section 6.1).
  const std::size_t half = compressed.size() / 2;
  REQUIRE(client.write_all(RawClient::frame(0x1, compressed.substr(0, half), false, true)));
  REQUIRE(client.write_all(RawClient::frame(0x0, compressed.substr(half), true, false)));
  // An uncompressed message on the same connection.
  REQUIRE(client.write_all(RawClient::frame(0x1, "plain")));
  REQUIRE(wait_until([&] {
    std::lock_guard<std::mutex> lock(mutex);
    return received.size() == 3;
  }));
  std::lock_guard<std::mutex> lock(mutex);
  CHECK(received[0] == text);
  CHECK(received[1] == text);
  CHECK(received[2] == "plain");
}

TEMPLATE_LIST_TEST_CASE("compressed invalid UTF-8 text closes with 1007", "[websocketpp][deflate]",
                        server_policies) {
  ConnectionRegistry<TestType> registry;
  DeflateServer<TestType> server(registry, wsreg::wspp::ServerOptions{});
  server.listen("127.0.0.1", 0);
  RawClient client;
  REQUIRE(client.open_with(server.port(), offer).rfind("HTTP/1.1 101", 0) == 0);
  std::string text = json_of(2000);
  text[1500] = '\xff';
  REQUIRE(client.write_all(RawClient::frame(0x1, wsreg_test::deflate_message(text), true, true)));
  CHECK(client.read_until_close() == 1007);
}

TEMPLATE_LIST_TEST_CASE("16 MiB of zeros sent compressed closes with 1009 without inflating past "
                        "the limit",
                        "[websocketpp][deflate][limits]", server_policies) {
  const bool fragmented = GENERATE(false, true);
  CAPTURE(fragmented);
  const std::string bomb = wsreg_test::deflate_message(std::string(16u << 20, '\0'));
  REQUIRE(!bomb.empty());
  CHECK(bomb.size() < 32 * 1024);  // "a few KiB" on the wire

  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.max_message_size = 1024 * 1024;
  DeflateServer<TestType> server(registry, options);
  std::atomic<int> messages{0};
  server.set_message_handler([&](ConnectionId, Payload) { messages.fetch_add(1); });
  server.listen("127.0.0.1", 0);
  RawClient client;
  REQUIRE(client.open_with(server.port(), offer).rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(wait_until([&] { return registry.size() == 1; }));

  const bool measured = reset_peak_rss();
  const long before_kib = peak_rss_kib();
  const std::uint64_t inflated_before = inflated_total();
  std::string frames;
  if (fragmented) {
    const std::size_t third = bomb.size() / 3;
    frames = RawClient::frame(0x2, bomb.substr(0, third), false, true) +
             RawClient::frame(0x0, bomb.substr(third, third), false) +
             RawClient::frame(0x0, bomb.substr(2 * third), true);
  } else {
    frames = RawClient::frame(0x2, bomb, true, true);
  }
  // The server may close before it has read everything (that is the
  // point), so a failed write is no failure; the close code says.
  static_cast<void>(client.write_all(frames));
  CHECK(client.read_until_close() == 1009);
  const long growth_kib = peak_rss_kib() - before_kib;
  CHECK(messages.load() == 0);
  REQUIRE(wait_until([&] { return registry.size() == 0; }));
  // Inflated: past the limit (that is how it knew), by at most one 4 KiB
  // inflate step, of the 16 MiB the message holds.
  const std::uint64_t inflated = inflated_total() - inflated_before;
  CHECK(inflated > options.max_message_size);
  CHECK(inflated <= options.max_message_size + 4096);
  // Resident memory: at most the 1 MiB limit (in a std::string that
  // doubles: 2 MiB) plus slack; inflating it all would take 16 MiB or more.
  // (An upper bound only: the allocator may reuse memory freed earlier.)
  INFO("peak RSS growth while the bomb was read: " << growth_kib << " KiB");
#ifndef WSREG_SANITIZED
  if (measured && before_kib > 0) CHECK(growth_kib < 6 * 1024);
#else
  static_cast<void>(measured);  // memory figures mean nothing under a sanitizer
#endif
}

TEMPLATE_LIST_TEST_CASE("the inflation counter of the 1009 test sees a message inflated whole",
                        "[websocketpp][deflate][limits]", server_policies) {
  // The control: with a limit above 16 MiB the same bomb is inflated and
  // delivered, and the counter shows it.
  const std::string bomb = wsreg_test::deflate_message(std::string(16u << 20, '\0'));
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.max_message_size = 32u << 20;
  DeflateServer<TestType> server(registry, options);
  std::atomic<std::size_t> delivered{0};
  server.set_message_handler([&](ConnectionId, Payload message) { delivered = message.size(); });
  server.listen("127.0.0.1", 0);
  RawClient client;
  REQUIRE(client.open_with(server.port(), offer).rfind("HTTP/1.1 101", 0) == 0);
  const std::uint64_t inflated_before = inflated_total();
  REQUIRE(client.write_all(RawClient::frame(0x2, bomb, true, true)));
  REQUIRE(wait_until([&] { return delivered.load() != 0; }));
  CHECK(delivered.load() == (16u << 20));
  CHECK(inflated_total() - inflated_before == (16u << 20));
}

TEMPLATE_LIST_TEST_CASE("a server on the default Config declines every deflate offer",
                        "[websocketpp][deflate]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry, wsreg::wspp::ServerOptions{});
  server.listen("127.0.0.1", 0);
  RawClient client;
  const std::string head = client.open_with(server.port(), offer);
  REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
  CHECK(extensions_of(head).empty());
  REQUIRE(wait_until([&] { return registry.size() == 1; }));
  const Payload payload = Payload::text(json_of(4096));
  registry.broadcast(payload);
  const Received r = receive(client);
  CHECK_FALSE(r.compressed);
  CHECK(r.bytes == payload.data());
}
