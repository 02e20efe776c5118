// echo_server: echoes each message to its sender, opcode preserved, through
// the registry.
// Usage: echo_server [--address 0.0.0.0] [--port 9002] [--threads 1] [--policy actor|mutex]
//                    [--max-message-size 1048576] [--tls-cert cert.pem --tls-key key.pem]
//                    [--deflate]
// --deflate: permessage-deflate (RFC 7692) with clients that offer it; what
// such a client sends compressed arrives inflated (within --max-message-size)
// and its echo goes back compressed once it is 256 bytes or more.
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/example_options.hpp"
#include "common/make_server.hpp"
#include "common/wait_for_signal.hpp"

namespace {

template <class Policy>
int run(examples::StopSignals& signals, const examples::ServerArguments& args) {
  wsreg::ConnectionRegistry<Policy> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = args.threads;
  options.max_message_size = args.max_message_size;
  return examples::with_server<true>(registry, args, options, [&](auto& server) {
    // The message arrives as a Payload that took websocketpp's buffer by
    // move; the registry passes it on without copying.
    server.set_message_handler([&registry](wsreg::ConnectionId id, wsreg::Payload message) {
      registry.send(id, std::move(message));
    });

    if (!examples::listen_and_report(server, args, "echo_server",
                                     args.deflate ? ", permessage-deflate" : "")) {
      return 1;
    }

    signals.wait();
    server.shutdown(std::chrono::seconds(5)).wait();
    std::printf("echo_server: stopped\n");
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg echo server: echoes each WebSocket message to its sender"};
  examples::ServerArguments args;
  args.add_to(app);
  args.add_message_size_to(app);
  args.add_deflate_to(app);
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  examples::StopSignals signals;  // before any thread and before the port is printed
  return examples::with_policy(args.policy, [&](auto tag) {
    return run<typename decltype(tag)::type>(signals, args);
  });
}
