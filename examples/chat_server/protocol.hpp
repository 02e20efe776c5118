// examples/chat_server/protocol.hpp: the chat's JSON messages, both ways.
//
// Inbound (client to server), one JSON object per WebSocket text frame:
//   {"type":"join","room":R,"nick":N}   {"type":"leave","room":R}
//   ("nick" may be left out by a connection opened with /?nick=N)
//   {"type":"say","room":R,"text":T}    {"type":"members","room":R}
// Outbound (server to client):
//   {"type":"joined","room":R,"nick":N}  {"type":"left","room":R,"nick":N}
//   {"type":"message","room":R,"nick":N,"text":T}
//   {"type":"members","room":R,"members":[N, ...]}
//   {"type":"error","error":CODE}
// The limits and error codes are below; README.md beside this file has the
// same as tables.
#ifndef WSREG_EXAMPLES_CHAT_PROTOCOL_HPP
#define WSREG_EXAMPLES_CHAT_PROTOCOL_HPP

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "wsreg/payload.hpp"

namespace chat {

// Limits, in bytes of UTF-8. A field past its limit is refused with an
// error frame; nothing is truncated (a cut could split a character).
inline constexpr std::size_t max_nick_bytes = 32;
inline constexpr std::size_t max_room_bytes = 64;
inline constexpr std::size_t max_text_bytes = 2000;
/// Rooms one connection may be in at once.
inline constexpr std::size_t max_rooms_per_connection = 16;
/// Largest inbound frame; the server closes a connection that sends a larger
/// one with 1009 (ServerOptions::max_message_size). Well above the largest
/// valid message, so an oversize field gets an error frame, not a close.
inline constexpr std::size_t max_frame_bytes = 16 * 1024;

// Error codes, the value of "error" in {"type":"error","error":CODE}. The
// offending message changed nothing; the connection stays open.
namespace errors {
inline constexpr const char* binary_frame = "binary_frame";      // only text frames are read
inline constexpr const char* malformed_json = "malformed_json";  // not parseable as JSON
inline constexpr const char* not_an_object = "not_an_object";    // JSON, but not {...}
inline constexpr const char* unknown_type = "unknown_type";      // "type" missing or unknown
inline constexpr const char* bad_room = "bad_room";  // "room" missing, not a string, bad length
inline constexpr const char* bad_nick = "bad_nick";  // "nick" missing, not a string, bad length
inline constexpr const char* bad_text = "bad_text";  // "text" missing, not a string, bad length
inline constexpr const char* already_in_room = "already_in_room";  // join twice
inline constexpr const char* not_in_room = "not_in_room";  // leave or say without joining
inline constexpr const char* too_many_rooms = "too_many_rooms";  // past max_rooms_per_connection
inline constexpr const char* nick_mismatch = "nick_mismatch";  // another nick while in a room
}  // namespace errors

// One inbound request, validated.
struct Join {
  std::string room;
  std::string nick;  // empty: not given (the connection's ?nick= applies)
};
struct Leave {
  std::string room;
};
struct Say {
  std::string room;
  std::string text;
};
struct ListMembers {
  std::string room;
};
/// A message that is not a valid request; `error` is one of errors::.
struct Invalid {
  const char* error;
};
using Request = std::variant<Invalid, Join, Leave, Say, ListMembers>;

namespace detail {

using json = nlohmann::json;

// A name (room or nick): 1 to `max_bytes` bytes, no control characters, so
// member lists and logs print as one clean line.
inline bool valid_name(std::string_view name, std::size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return false;
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return false;
  }
  return true;
}

// True if `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF).
inline bool valid_utf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;                 // continuation bytes
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the first of them
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return false;
    }
    if (i + n >= bytes.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(bytes[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

// Reads string field `key` of `object` into `out`; false if it is missing
// or not a string.
inline bool read_string(const json& object, const char* key, std::string& out) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

inline bool read_room(const json& object, std::string& room) {
  return read_string(object, "room", room) && valid_name(room, max_room_bytes);
}

// Outbound JSON keeps "type" first for readers of the wire; dump() replaces
// invalid UTF-8 instead of throwing (the strings come from parsed, hence
// valid, input, but a frame builder should not be able to throw on it).
using ordered = nlohmann::ordered_json;
inline wsreg::Payload frame(const ordered& message) {
  return wsreg::Payload::text(message.dump(-1, ' ', false, ordered::error_handler_t::replace));
}

}  // namespace detail

/// Checks a nickname given as ?nick= in the WebSocket URL (already
/// percent-decoded): the join limits, and well-formed UTF-8 (JSON input is
/// by construction; a URL is not).
inline bool valid_query_nick(std::string_view nick) {
  return detail::valid_name(nick, max_nick_bytes) && detail::valid_utf8(nick);
}

/// Parses and validates one inbound frame. Never throws except
/// std::bad_alloc. Unknown extra fields are ignored.
inline Request parse_request(const wsreg::Payload& frame) {
  using detail::json;
  if (frame.opcode() != wsreg::Opcode::text) return Invalid{errors::binary_frame};
  const std::string_view bytes = frame.data();
  const json message = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) return Invalid{errors::malformed_json};
  if (!message.is_object()) return Invalid{errors::not_an_object};

  std::string type;
  if (!detail::read_string(message, "type", type)) return Invalid{errors::unknown_type};
  std::string room;
  if (type == "join") {
    std::string nick;
    if (!detail::read_room(message, room)) return Invalid{errors::bad_room};
    if (message.contains("nick") &&
        (!detail::read_string(message, "nick", nick) || !detail::valid_name(nick, max_nick_bytes))) {
      return Invalid{errors::bad_nick};
    }
    return Join{std::move(room), std::move(nick)};  // a missing nick is checked by ChatRooms
  }
  if (type == "leave") {
    if (!detail::read_room(message, room)) return Invalid{errors::bad_room};
    return Leave{std::move(room)};
  }
  if (type == "say") {
    std::string text;
    if (!detail::read_room(message, room)) return Invalid{errors::bad_room};
    if (!detail::read_string(message, "text", text) || text.empty() ||
        text.size() > max_text_bytes) {
      return Invalid{errors::bad_text};
    }
    return Say{std::move(room), std::move(text)};
  }
  if (type == "members") {
    if (!detail::read_room(message, room)) return Invalid{errors::bad_room};
    return ListMembers{std::move(room)};
  }
  return Invalid{errors::unknown_type};
}

// Outbound frames.

inline wsreg::Payload joined_frame(std::string_view room, std::string_view nick) {
  return detail::frame({{"type", "joined"}, {"room", room}, {"nick", nick}});
}

inline wsreg::Payload left_frame(std::string_view room, std::string_view nick) {
  return detail::frame({{"type", "left"}, {"room", room}, {"nick", nick}});
}

inline wsreg::Payload message_frame(std::string_view room, std::string_view nick,
                                    std::string_view text) {
  return detail::frame({{"type", "message"}, {"room", room}, {"nick", nick}, {"text", text}});
}

inline wsreg::Payload members_frame(std::string_view room, const std::vector<std::string>& nicks) {
  return detail::frame({{"type", "members"}, {"room", room}, {"members", nicks}});
}

inline wsreg::Payload error_frame(const char* code) {
  return detail::frame({{"type", "error"}, {"error", code}});
}

}  // namespace chat

#endif  // WSREG_EXAMPLES_CHAT_PROTOCOL_HPP
