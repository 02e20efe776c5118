// wsreg/websocketpp/detail/prepared_frame.hpp: a server data frame built once
// by wsreg and handed to websocketpp as is (frame_once, deflate_once).
#ifndef WSREG_WEBSOCKETPP_DETAIL_PREPARED_FRAME_HPP
#define WSREG_WEBSOCKETPP_DETAIL_PREPARED_FRAME_HPP

#include <memory>
#include <string>
#include <utility>

#include <websocketpp/frame.hpp>
#include <websocketpp/utf8_validator.hpp>

#include "wsreg/payload.hpp"

namespace wsreg::wspp::detail {

/// Whether `payload` may go on the wire: binary, or text that is valid
/// UTF-8 (RFC 6455 section 8.1; websocketpp's own send() refuses the rest
/// too). O(size). Thread-safe (touches nothing shared).
inline bool sendable_payload(const Payload& payload) {
  if (payload.opcode() != Opcode::text) return true;
  const auto bytes = payload.data();
  ::websocketpp::utf8_validator::validator utf8;
  return utf8.decode(bytes.begin(), bytes.end()) && utf8.complete();
}

/// One unmasked, unfragmented server data frame of opcode `opcode` whose
/// payload is `body` (RFC 6455 section 5.2: FIN set, length in 7, 7+16 or
/// 7+64 bits; RSV1 set when `compressed`, RFC 7692 section 6), marked
/// prepared so that websocketpp's connection::send(message_ptr) queues it
/// as is, on any number of connections. The header comes from websocketpp's
/// own frame::prepare_header, as in its hybi13 processor; `body` is moved
/// in, not copied. Throws std::bad_alloc only. Thread-safe.
template <class Message>
std::shared_ptr<Message> prepared_frame(Opcode opcode, std::string body, bool compressed) {
  namespace frame = ::websocketpp::frame;
  const auto op = static_cast<frame::opcode::value>(opcode);
  auto message = std::make_shared<Message>(typename Message::con_msg_man_ptr(), op, 0);
  const frame::basic_header header(op, body.size(), /*fin=*/true, /*masked=*/false, compressed);
  message->set_header(frame::prepare_header(header, frame::extended_header(body.size())));
  message->get_raw_payload() = std::move(body);
  message->set_compressed(compressed);
  message->set_prepared(true);
  return message;
}

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_PREPARED_FRAME_HPP
