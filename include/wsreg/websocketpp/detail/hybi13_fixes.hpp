// wsreg/websocketpp/detail/hybi13_fixes.hpp: RFC 6455 fixes to websocketpp 0.8.2's
// hybi13 frame processor, for wsreg::wspp::Config only.
//
// websocketpp 0.8.2 gets three conformance details wrong (each found by the
// project's adversarial tests):
//
// 1. A fragmented text message whose last frame is a continuation is never
//    checked for a truncated UTF-8 sequence at its end: finalize_message()
//    tests the opcode of the *last frame* (continuation) instead of the
//    message's, so "\xce\xba\xe1" in two fragments reached the message
//    handler as text. RFC 6455 section 8.1 says to fail the connection;
//    section 7.4.1 gives 1007.
// 2. A close frame whose reason is not UTF-8 is answered with 1002; RFC 6455
//    section 5.5.1 says the reason is UTF-8 and section 8.1 makes invalid
//    UTF-8 a 1007 failure.
// 3. A payload length not in its minimal encoding (RFC 6455 section 5.2:
//    "the minimal number of bytes MUST be used") is reported as
//    error::non_minimal_encoding, which processor::error::to_ws() maps to
//    1011 (internal error) instead of 1002 (protocol error).
//
// The fixes are explicit specializations of two hybi13 members for our
// Config, so they apply to every connection of wsreg's Server (hybi07 and
// hybi08 derive from hybi13) and to nothing else in the program. They must
// be seen before websocketpp's connection code is instantiated, which is
// why config.hpp includes this file.
#ifndef WSREG_WEBSOCKETPP_DETAIL_HYBI13_FIXES_HPP
#define WSREG_WEBSOCKETPP_DETAIL_HYBI13_FIXES_HPP

#include <cstdint>
#include <string>

#include <websocketpp/frame.hpp>
#include <websocketpp/processors/hybi13.hpp>
#include <websocketpp/utf8_validator.hpp>

namespace websocketpp::processor {

// Called once a message's last frame has been read. wsreg::wspp::Config
// negotiates no extension (its permessage_deflate_type is the disabled
// one), so unlike the generic version there is no deflate trailer to
// inflate here; a Config with compression needs a specialization of its own.
template <>
inline lib::error_code hybi13<wsreg::wspp::Config>::finalize_message() {
  const frame::opcode::value op = m_current_msg->msg_ptr->get_opcode();
  const std::string& payload = m_current_msg->msg_ptr->get_payload();
  if (m_permessage_deflate.is_enabled() && m_current_msg->msg_ptr->get_compressed()) {
    return make_error_code(error::not_implemented);  // never negotiated
  }
  // Fix 1: the message's opcode decides, whatever the last frame's was.
  if (op == frame::opcode::TEXT && !m_current_msg->validator.complete()) {
    return make_error_code(error::invalid_utf8);
  }
  // Fix 2: a close reason (after the 2-byte code) must be UTF-8.
  if (op == frame::opcode::CLOSE && payload.size() > 2) {
    utf8_validator::validator reason;
    if (!reason.decode(payload.begin() + 2, payload.end()) || !reason.complete()) {
      return make_error_code(error::invalid_utf8);
    }
  }
  m_state = READY;
  return lib::error_code();
}

// Fix 3: a non-minimal length is a protocol violation (1002).
template <>
inline lib::error_code hybi13<wsreg::wspp::Config>::validate_incoming_extended_header(
    frame::basic_header h, frame::extended_header e) const {
  const std::uint8_t code = frame::get_basic_size(h);
  const std::uint64_t length = frame::get_payload_size(h, e);
  const bool minimal =
      (code != frame::payload_size_code_16bit || length > frame::limits::payload_size_basic) &&
      (code != frame::payload_size_code_64bit || length > frame::limits::payload_size_extended);
  if (!minimal) return make_error_code(error::protocol_violation);
  if (sizeof(std::size_t) == 4 && (length >> 32) != 0) {
    return make_error_code(error::requires_64bit);
  }
  return lib::error_code();
}

}  // namespace websocketpp::processor

#endif  // WSREG_WEBSOCKETPP_DETAIL_HYBI13_FIXES_HPP
