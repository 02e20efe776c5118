// wsreg/websocketpp/detail/hybi13_fixes.hpp: RFC 6455 fixes to websocketpp 0.8.2's
// hybi13 frame processor, for the configs wsreg provides.
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
// The fixes are explicit specializations of two hybi13 members for each
// config wsreg provides (WSREG_WSPP_HYBI13_FIXES below), so they apply to
// every connection of wsreg's Server (hybi07 and hybi08 derive from hybi13)
// and to nothing else in the program. They must be seen before
// websocketpp's connection code is instantiated, which is why config.hpp
// expands them right after the configs.
#ifndef WSREG_WEBSOCKETPP_DETAIL_HYBI13_FIXES_HPP
#define WSREG_WEBSOCKETPP_DETAIL_HYBI13_FIXES_HPP

#include <cstdint>
#include <string>
#include <system_error>

#include <websocketpp/frame.hpp>
#include <websocketpp/processors/hybi13.hpp>
#include <websocketpp/utf8_validator.hpp>

// WSREG_WSPP_HYBI13_FIXES(cfg): the fixes for the websocketpp config `cfg`
// (a complete type, named so that it is valid in namespace
// websocketpp::processor, e.g. ::wsreg::wspp::Config). Expand it once per
// config, at namespace scope, after the config is defined and before any
// websocketpp connection of it is instantiated; config.hpp does so for the
// configs wsreg provides. An application with a config of its own expands it
// for that config too (an explicit specialization must be seen before the
// member's first use).
//
// finalize_message() is called once a message's last frame has been read.
// As in websocketpp, a compressed message (permessage-deflate negotiated,
// RSV1 set) gets the 00 00 ff ff tail (RFC 7692 section 7.2.2) inflated
// first, through the config's extension type.
#define WSREG_WSPP_HYBI13_FIXES(cfg)                                                          \
  namespace websocketpp::processor {                                                          \
  template <>                                                                                 \
  inline lib::error_code hybi13<cfg>::finalize_message() {                                    \
    std::string& out = m_current_msg->msg_ptr->get_raw_payload();                             \
    if (m_permessage_deflate.is_enabled() && m_current_msg->msg_ptr->get_compressed()) {      \
      std::uint8_t trailer[4] = {0x00, 0x00, 0xff, 0xff};                                     \
      const std::size_t offset = out.size();                                                  \
      lib::error_code ec = m_permessage_deflate.decompress(trailer, 4, out);                  \
      if (ec) return ec;                                                                      \
      /* what the tail inflated to is checked as every frame's bytes were */                  \
      if (m_current_msg->msg_ptr->get_opcode() == frame::opcode::TEXT &&                      \
          !m_current_msg->validator.decode(out.begin() + offset, out.end())) {                \
        return make_error_code(error::invalid_utf8);                                          \
      }                                                                                       \
    }                                                                                         \
    return ::wsreg::wspp::detail::finalize_checks(                                            \
        m_current_msg->msg_ptr->get_opcode(), out, m_current_msg->validator, m_state, READY); \
  }                                                                                           \
  template <>                                                                                 \
  inline lib::error_code hybi13<cfg>::validate_incoming_extended_header(                      \
      frame::basic_header h, frame::extended_header e) const {                                \
    return ::wsreg::wspp::detail::check_extended_header(h, e);                                \
  }                                                                                           \
  }  // namespace websocketpp::processor

namespace wsreg::wspp::detail {

// Fixes 1 and 2, once the message is whole (and inflated): sets `state` to
// `ready` and returns no error, or returns the error that fails the connection.
template <class State, class Validator>
inline std::error_code finalize_checks(::websocketpp::frame::opcode::value op,
                                       const std::string& payload, Validator& validator,
                                       State& state, State ready) {
  namespace frame = ::websocketpp::frame;
  namespace error = ::websocketpp::processor::error;
  // Fix 1: the message's opcode decides, whatever the last frame's was.
  if (op == frame::opcode::TEXT && !validator.complete()) {
    return error::make_error_code(error::invalid_utf8);
  }
  // Fix 2: a close reason (after the 2-byte code) must be UTF-8.
  if (op == frame::opcode::CLOSE && payload.size() > 2) {
    ::websocketpp::utf8_validator::validator reason;
    if (!reason.decode(payload.begin() + 2, payload.end()) || !reason.complete()) {
      return error::make_error_code(error::invalid_utf8);
    }
  }
  state = ready;
  return std::error_code();
}

// Fix 3: a non-minimal length is a protocol violation (1002).
inline std::error_code check_extended_header(::websocketpp::frame::basic_header h,
                                             ::websocketpp::frame::extended_header e) {
  namespace frame = ::websocketpp::frame;
  namespace error = ::websocketpp::processor::error;
  const std::uint8_t code = frame::get_basic_size(h);
  const std::uint64_t length = frame::get_payload_size(h, e);
  const bool minimal =
      (code != frame::payload_size_code_16bit || length > frame::limits::payload_size_basic) &&
      (code != frame::payload_size_code_64bit || length > frame::limits::payload_size_extended);
  if (!minimal) return error::make_error_code(error::protocol_violation);
  if (sizeof(std::size_t) == 4 && (length >> 32) != 0) {
    return error::make_error_code(error::requires_64bit);
  }
  return std::error_code();
}

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_HYBI13_FIXES_HPP
