// echo_server: echoes each message to its sender, opcode preserved, through
// the registry. Usage: echo_server [--port 9002] [--threads 1] [--policy actor|mutex]
#include <chrono>
#include <cstdio>
#include <system_error>

#include <CLI/CLI.hpp>

#include "common/example_options.hpp"
#include "common/wait_for_signal.hpp"
#include "wsreg/websocketpp/server.hpp"

namespace {

template <class Policy>
int run(const examples::ServerArguments& args) {
  wsreg::ConnectionRegistry<Policy> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = args.threads;
  wsreg::wspp::Server<Policy> server(registry, options);

  // The message arrives as a Payload; sending it back shares its bytes.
  server.set_message_handler([&registry](wsreg::ConnectionId id, wsreg::Payload message) {
    registry.send(id, std::move(message));
  });

  std::error_code ec;
  server.listen(args.address, args.port, ec);
  if (ec) {
    std::fprintf(stderr, "echo_server: cannot listen on %s:%u: %s\n", args.address.c_str(),
                 static_cast<unsigned>(args.port), ec.message().c_str());
    return 1;
  }
  std::printf("echo_server: listening on port %u (policy %s, threads %zu)\n",
              static_cast<unsigned>(server.port()), args.policy.c_str(), args.threads);
  std::fflush(stdout);

  examples::wait_for_signal();
  server.shutdown(std::chrono::seconds(5)).wait();
  std::printf("echo_server: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg echo server: echoes each WebSocket message to its sender"};
  examples::ServerArguments args;
  args.add_to(app);
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  return examples::with_policy(args.policy, [&](auto tag) {
    return run<typename decltype(tag)::type>(args);
  });
}
