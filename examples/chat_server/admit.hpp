// examples/chat_server/admit.hpp: the chat's handshake handler (?nick=).
#ifndef WSREG_EXAMPLES_CHAT_ADMIT_HPP
#define WSREG_EXAMPLES_CHAT_ADMIT_HPP

#include <optional>
#include <string>

#include "protocol.hpp"
#include "wsreg/websocketpp/handshake.hpp"

namespace chat {

/// The server's handshake handler: a connection to /?nick=N (N
/// percent-encoded, as a browser's encodeURIComponent or URLSearchParams
/// writes it) starts with the fixed nickname N, which is its registry Data
/// from the start; an N outside the join limits (1 to 32 bytes of UTF-8, no
/// control characters) is refused with 400 and a body saying why, before
/// anything is registered. Without ?nick= the connection is admitted with
/// no nick (the first join gives it). `User` is ChatUser (a template only
/// so this header needs nothing from chat.hpp). Runs on an io thread;
/// thread-safe (no state).
template <class User>
wsreg::wspp::HandshakeDecision<User> admit(const wsreg::wspp::HandshakeRequest& request) {
  using Decision = wsreg::wspp::HandshakeDecision<User>;
  const std::optional<std::string> nick = request.query("nick");
  if (!nick) return Decision::accept();
  if (!valid_query_nick(*nick)) {
    return Decision::reject(400,
                            "bad nick: 1 to 32 bytes of UTF-8, no control characters\n");
  }
  return Decision::accept(User{*nick, true});
}

}  // namespace chat

#endif  // WSREG_EXAMPLES_CHAT_ADMIT_HPP
