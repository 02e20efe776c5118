// chat_server: chat rooms in the browser. Serves its page at GET / and
// speaks a small JSON protocol over WebSocket on the same port (see
// README.md beside this file). Open http://127.0.0.1:9002/ in two tabs
// (https:// with --tls-cert and --tls-key: the page then speaks wss://).
// Usage: chat_server [--address 0.0.0.0] [--port 9002] [--threads 1] [--policy actor|mutex]
//                    [--tls-cert cert.pem --tls-key key.pem]
//
// The files: protocol.hpp (the JSON messages and their limits), chat.hpp
// (rooms over the registry's topics), admit.hpp (the handshake: ?nick=),
// page.hpp and index.html (the page).
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "admit.hpp"
#include "chat.hpp"
#include "common/example_options.hpp"
#include "common/make_server.hpp"
#include "common/wait_for_signal.hpp"
#include "page.hpp"
#include "protocol.hpp"

namespace {

template <class Policy>
int run(examples::StopSignals& signals, const examples::ServerArguments& args) {
  // Declared in this order so they are destroyed server first (its last
  // connections leave their rooms while the rooms still exist), then the
  // rooms, then the registry.
  wsreg::ConnectionRegistry<Policy, chat::ChatUser> registry;
  chat::ChatRooms<Policy> rooms(registry);

  wsreg::wspp::ServerOptions options;
  options.threads = args.threads;
  options.max_message_size = chat::max_frame_bytes;
  return examples::with_server(registry, args, options, [&](auto& server) {

    server.set_http_handler(chat::serve_page);
    // ws://host/?nick=ann opens with the nick "ann", checked here before the
    // connection is registered: a bad one is refused with 400 and never joins
    // anything. Without ?nick= the nick comes with the first join, as before.
    server.set_handshake_handler(chat::admit<chat::ChatUser>);
    server.set_message_handler([&rooms](wsreg::ConnectionId id, wsreg::Payload frame) {
      rooms.on_message(id, frame);
    });
    // No open or close handler: a new connection has its ?nick= (or none)
    // and no room; a closed one leaves its rooms through the presence handler.

    if (!examples::listen_and_report(server, args, "chat_server")) return 1;

    signals.wait();
    server.shutdown(std::chrono::seconds(5)).wait();
    std::printf("chat_server: stopped\n");
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg chat server: rooms over topics, with a browser page at /"};
  examples::ServerArguments args;
  args.add_to(app);
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  examples::StopSignals signals;  // before any thread and before the port is printed
  return examples::with_policy(args.policy, [&](auto tag) {
    return run<typename decltype(tag)::type>(signals, args);
  });
}
