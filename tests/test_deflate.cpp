// permessage-deflate building blocks (RFC 7692): a payload compressed once
// into a frame that any no-context-takeover inflater reads back byte for
// byte, the negotiation's answers, and inflation bounded by the limit.
#include "wsreg/websocketpp/detail/deflate.hpp"

#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <websocketpp/message_buffer/alloc.hpp>
#include <websocketpp/message_buffer/message.hpp>

#include "inflate.hpp"

namespace wspp_detail = wsreg::wspp::detail;
using wsreg::Payload;
using wsreg_test::inflate_message;

namespace {

using Message = websocketpp::message_buffer::message<websocketpp::message_buffer::alloc::con_msg_manager>;
struct NoConfig {};
using Extension = wspp_detail::PerMessageDeflate<NoConfig>;

// A JSON tick about `size` bytes long: compressible as real ticks are.
std::string json_ticks(std::size_t size) {
  std::string text = "[";
  for (int seq = 0; text.size() < size; ++seq) {
    text += "{\"seq\":" + std::to_string(seq) + ",\"symbol\":\"ACME\",\"bid\":" +
            std::to_string(100 + seq % 7) + ".25,\"ask\":" + std::to_string(101 + seq % 5) +
            ".5},";
  }
  text.resize(size);
  return text;
}

std::string random_bytes(std::size_t size) {
  std::mt19937 rng(42);
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(rng());
  return bytes;
}

// The payload length a server frame's header announces (RFC 6455 5.2).
std::uint64_t header_length(const std::string& header) {
  const std::uint8_t code = static_cast<std::uint8_t>(header[1]) & 0x7f;
  std::size_t bytes = code == 126 ? 2 : code == 127 ? 8 : 0;
  if (bytes == 0) return code;
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < bytes; ++i) length = length << 8 | static_cast<std::uint8_t>(header[2 + i]);
  return length;
}

wspp_detail::DeflateOnceOptions options_with(std::size_t threshold) {
  wspp_detail::DeflateOnceOptions options;
  options.threshold_bytes = threshold;
  return options;
}

}  // namespace

TEST_CASE("a payload compressed once inflates back byte for byte under a fresh inflater",
          "[deflate]") {
  const std::size_t size = GENERATE(256, 1024, 65535, 65536, 200000, 1 << 20);
  const bool text = GENERATE(true, false);
  CAPTURE(size, text);
  const std::string bytes = json_ticks(size);
  const Payload payload = text ? Payload::text(bytes) : Payload::binary(bytes);
  const auto message = wspp_detail::deflate_once<Message>(payload, options_with(256));
  REQUIRE(message);
  CHECK(message->get_prepared());
  CHECK(message->get_compressed());

  // FIN and RSV1 set, RSV2/RSV3 clear, the payload's opcode, unmasked
  // (RFC 6455 5.2, RFC 7692 6), and the length of what follows.
  const std::string& header = message->get_header();
  REQUIRE(header.size() >= 2);
  CHECK(static_cast<std::uint8_t>(header[0]) == (0x80 | 0x40 | (text ? 0x1 : 0x2)));
  CHECK((static_cast<std::uint8_t>(header[1]) & 0x80) == 0);
  const std::string& compressed = message->get_payload();
  CHECK(header_length(header) == compressed.size());
  CHECK(compressed.size() < bytes.size());
  // The empty stored block that ends the flush is not sent (RFC 7692 7.2.1).
  CHECK_FALSE(wspp_detail::ends_with_deflate_tail(compressed));

  std::string inflated;
  REQUIRE(inflate_message(compressed, inflated));
  CHECK(inflated == bytes);
}

TEST_CASE("each compression is independent of the ones before it (no context takeover)",
          "[deflate]") {
  // The same payload compressed again on the same thread's compressor gives
  // the same bytes: nothing of the first message is referred to.
  const Payload first = Payload::text(json_ticks(4096));
  const Payload second = Payload::text(json_ticks(4096));
  const auto a = wspp_detail::deflate_once<Message>(first, options_with(256));
  const auto b = wspp_detail::deflate_once<Message>(second, options_with(256));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->get_payload() == b->get_payload());
  CHECK(a->get_header() == b->get_header());
}

TEST_CASE("small, incompressible and invalid text payloads are not compressed", "[deflate]") {
  const auto options = options_with(256);
  CHECK_FALSE(wspp_detail::deflate_once<Message>(Payload::text(json_ticks(255)), options));
  CHECK(wspp_detail::deflate_once<Message>(Payload::text(json_ticks(256)), options));
  CHECK_FALSE(wspp_detail::deflate_once<Message>(Payload::text(std::string()), options_with(0)));
  CHECK_FALSE(wspp_detail::deflate_once<Message>(Payload::binary(random_bytes(4096)), options));
  std::string invalid = json_ticks(1024);
  invalid[500] = '\xff';
  CHECK_FALSE(wspp_detail::deflate_once<Message>(Payload::text(invalid), options));
  CHECK(wspp_detail::deflate_once<Message>(Payload::binary(invalid), options));
}

TEST_CASE("every zlib level gives a frame that inflates back", "[deflate]") {
  const int level = GENERATE(1, 6, 9, Z_DEFAULT_COMPRESSION);
  CAPTURE(level);
  wspp_detail::DeflateOnceOptions options;
  options.level = level;
  const std::string bytes = json_ticks(10000);
  const auto message = wspp_detail::deflate_once<Message>(Payload::binary(bytes), options);
  REQUIRE(message);
  std::string inflated;
  REQUIRE(inflate_message(message->get_payload(), inflated));
  CHECK(inflated == bytes);
}

TEST_CASE("negotiation always answers server_no_context_takeover and honours the offer's window",
          "[deflate][negotiation]") {
  using Attributes = websocketpp::http::attribute_list;
  struct Case {
    Attributes offer;
    std::string response;  // empty: declined
  };
  const std::vector<Case> cases = {
      {{}, "permessage-deflate; server_no_context_takeover"},
      {{{"client_max_window_bits", ""}}, "permessage-deflate; server_no_context_takeover"},
      {{{"client_max_window_bits", "10"}}, "permessage-deflate; server_no_context_takeover"},
      {{{"client_no_context_takeover", ""}, {"client_max_window_bits", ""}},
       "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
      {{{"server_no_context_takeover", ""}}, "permessage-deflate; server_no_context_takeover"},
      {{{"server_max_window_bits", "9"}},
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"},
      // websocketpp's own extension answers 9 here, more than offered.
      {{{"server_max_window_bits", "8"}},
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=8"},
      {{{"server_max_window_bits", "15"}},
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=15"},
      {{{"server_max_window_bits", ""}}, ""},
      {{{"server_max_window_bits", "7"}}, ""},
      {{{"server_max_window_bits", "16"}}, ""},
      {{{"server_max_window_bits", "09"}}, ""},
      {{{"server_max_window_bits", "1x"}}, ""},
      {{{"client_max_window_bits", "20"}}, ""},
      {{{"server_no_context_takeover", "1"}}, ""},
      {{{"x_unknown", ""}}, ""},
  };
  for (const auto& c : cases) {
    Extension extension;
    const auto [error, response] = extension.negotiate(c.offer);
    CAPTURE(c.response, response, error.message());
    if (c.response.empty()) {
      CHECK(error);
      CHECK_FALSE(extension.is_enabled());
    } else {
      CHECK_FALSE(error);
      CHECK(extension.is_enabled());
      CHECK(response == c.response);
      CHECK_FALSE(extension.init(true));
      CHECK(wspp_detail::negotiated_window_bits(response) == extension.server_window_bits());
    }
  }
}

TEST_CASE("the negotiated window is read back from the response header", "[deflate][negotiation]") {
  CHECK(wspp_detail::negotiated_window_bits("") == 0);
  CHECK(wspp_detail::negotiated_window_bits("x-other") == 0);
  CHECK(wspp_detail::negotiated_window_bits("permessage-deflate; server_no_context_takeover") ==
        15);
  CHECK(wspp_detail::negotiated_window_bits(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9") == 9);
  CHECK(wspp_detail::shared_frame_fits(15, 1 << 20));
  CHECK(wspp_detail::shared_frame_fits(9, 512));
  CHECK_FALSE(wspp_detail::shared_frame_fits(9, 513));
  CHECK_FALSE(wspp_detail::shared_frame_fits(0, 1));
}

TEST_CASE("per-connection compression honours a small negotiated window, 8 bits included",
          "[deflate][negotiation]") {
  const std::string bits = GENERATE("8", "9", "12", "15");
  CAPTURE(bits);
  Extension extension;
  REQUIRE_FALSE(extension.negotiate({{"server_max_window_bits", bits}}).first);
  REQUIRE_FALSE(extension.init(true));
  const std::string bytes = json_ticks(100000);
  for (int round = 0; round < 2; ++round) {  // the compressor is reused, reset per message
    std::string compressed;
    REQUIRE_FALSE(extension.compress(bytes, compressed));
    REQUIRE(wspp_detail::ends_with_deflate_tail(compressed));
    compressed.resize(compressed.size() - 4);
    CHECK(compressed.size() < bytes.size());
    // An inflater with exactly the negotiated window reads it: no back
    // reference is farther than the window.
    std::string inflated;
    REQUIRE(inflate_message(compressed, inflated, std::stoi(bits)));
    CHECK(inflated == bytes);
  }
}

TEST_CASE("inflation stops at the limit: 16 MiB of zeros in a few KiB never inflate past it",
          "[deflate][limits]") {
  const std::string zeros(16u << 20, '\0');
  std::string compressed;
  wspp_detail::RawDeflater deflater(15, 9, 8);
  REQUIRE(deflater.compress(zeros, compressed));
  compressed.resize(compressed.size() - 4);
  CHECK(compressed.size() < 32 * 1024);

  constexpr std::size_t limit = 1u << 20;
  Extension extension;
  REQUIRE_FALSE(extension.negotiate({}).first);
  REQUIRE_FALSE(extension.init(true));
  std::string out;
  std::error_code error;
  std::size_t fed = 0;
  // In 512-byte reads, as wsreg's Config reads the socket.
  while (fed < compressed.size() && !error) {
    const std::size_t n = std::min<std::size_t>(512, compressed.size() - fed);
    std::vector<std::uint8_t> chunk(compressed.begin() + static_cast<std::ptrdiff_t>(fed),
                                    compressed.begin() + static_cast<std::ptrdiff_t>(fed + n));
    error = extension.decompress(chunk.data(), chunk.size(), out, limit);
    fed += n;
  }
  CHECK(error == websocketpp::processor::error::make_error_code(
                     websocketpp::processor::error::message_too_big));
  CHECK(websocketpp::processor::error::to_ws(error) == 1009);
  CHECK(out.size() <= limit);
  CHECK(fed < compressed.size());  // it stopped early, not at the end of the input
}

TEST_CASE("a message at the limit inflates whole, trailer and all, on a reused inflater",
          "[deflate][limits]") {
  Extension extension;
  REQUIRE_FALSE(extension.negotiate({}).first);
  REQUIRE_FALSE(extension.init(true));
  const std::string bytes = json_ticks(300000);
  wspp_detail::RawDeflater deflater(15, 6, 8);
  for (int round = 0; round < 3; ++round) {
    std::string compressed;
    REQUIRE(deflater.compress(bytes, compressed));
    compressed.resize(compressed.size() - 4);
    std::string out;
    std::vector<std::uint8_t> wire(compressed.begin(), compressed.end());
    REQUIRE_FALSE(extension.decompress(wire.data(), wire.size(), out, bytes.size()));
    std::uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    REQUIRE_FALSE(extension.decompress(tail, 4, out));  // the processor's trailer call
    CHECK(out == bytes);
  }
  // One byte less allowed: refused.
  std::string compressed;
  REQUIRE(deflater.compress(bytes, compressed));
  std::string out;
  std::vector<std::uint8_t> wire(compressed.begin(), compressed.end());
  CHECK(extension.decompress(wire.data(), wire.size(), out, bytes.size() - 1));
}

TEST_CASE("corrupt compressed data is an invalid payload (1007)", "[deflate][limits]") {
  Extension extension;
  REQUIRE_FALSE(extension.negotiate({}).first);
  REQUIRE_FALSE(extension.init(true));
  std::uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x12};
  std::string out;
  const auto error = extension.decompress(garbage, sizeof(garbage), out, 1 << 20);
  CHECK(websocketpp::processor::error::to_ws(error) == 1007);
}

TEST_CASE("both frames of a payload are made once however many threads ask at once",
          "[deflate][frames]") {
  using Frames = wspp_detail::DeflateFrames<Message>;
  const Payload payload = Payload::text(json_ticks(2048));
  std::atomic<int> plain_made{0};
  std::atomic<bool> start{false};
  std::vector<std::shared_ptr<Message>> plain(8), compressed(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    threads.emplace_back([&, i] {
      while (!start.load()) std::this_thread::yield();
      const auto frames = payload.encoded<Frames>([] { return std::make_shared<Frames>(); });
      compressed[i] = frames->compressed(payload, options_with(256));
      plain[i] = frames->plain([&] {
        plain_made.fetch_add(1);
        return std::make_shared<Message>(Message::con_msg_man_ptr(), websocketpp::frame::opcode::text, 0);
      });
    });
  }
  start.store(true);
  for (auto& thread : threads) thread.join();
  CHECK(plain_made.load() == 1);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    CHECK(plain[i] == plain[0]);
    CHECK(compressed[i] == compressed[0]);
  }
  REQUIRE(compressed[0]);
  std::string inflated;
  REQUIRE(inflate_message(compressed[0]->get_payload(), inflated));
  CHECK(inflated == payload.data());
}

TEST_CASE("a payload not worth compressing is remembered as such", "[deflate][frames]") {
  const Payload payload = Payload::binary(random_bytes(4096));
  wspp_detail::DeflateFrames<Message> frames;
  CHECK_FALSE(frames.compressed(payload, options_with(256)));
  CHECK_FALSE(frames.compressed(payload, options_with(256)));
}
