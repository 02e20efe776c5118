// token_server: admits only clients with a known bearer token, given in the
// Authorization header (`Authorization: Bearer TOKEN`, RFC 6750 section 2.1)
// or, for browsers, which cannot set headers on a WebSocket, as `?token=TOKEN`
// (RFC 6750 section 2.3). The check runs in the handshake handler, before
// the connection exists in the registry: a client without a valid token is
// answered 401 with `WWW-Authenticate: Bearer` and never registered, so no
// broadcast can reach it. An admitted client's user name is its registry
// Data; each message it sends is relayed to every connection as
// "NAME: TEXT".
// Usage: token_server [--address 0.0.0.0] [--port 9002] [--threads 1] [--policy actor|mutex]
//                     [--token NAME=TOKEN ...]   (default: alice=alice-token, bob=bob-token)
//                     [--tls-cert cert.pem --tls-key key.pem]
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/example_options.hpp"
#include "common/make_server.hpp"
#include "common/wait_for_signal.hpp"
#include "wsreg/websocketpp/handshake.hpp"
#include "wsreg/websocketpp/server.hpp"

namespace wspp = wsreg::wspp;

namespace {

/// Token -> user name. Read-only once the server runs, so the io threads
/// may read it concurrently.
using Tokens = std::map<std::string, std::string, std::less<>>;

/// The bearer token of `request`: the Authorization header's, else the
/// `token` query parameter; nullopt if neither is there.
std::optional<std::string> bearer_token(const wspp::HandshakeRequest& request) {
  if (const auto auth = request.header("Authorization")) {
    constexpr std::string_view scheme = "Bearer ";
    // The scheme is case-insensitive (RFC 9110 section 11.1); compare it so.
    if (auth->size() > scheme.size() &&
        std::equal(scheme.begin(), scheme.end(), auth->begin(),
                   [](char a, char b) {
                     return std::tolower(static_cast<unsigned char>(a)) ==
                            std::tolower(static_cast<unsigned char>(b));
                   })) {
      return std::string(auth->substr(scheme.size()));
    }
    return std::nullopt;  // another scheme: not ours
  }
  return request.query("token");
}

template <class Policy>
int run(examples::StopSignals& signals, const examples::ServerArguments& args,
        const Tokens& tokens) {
  // The Data of each connection is its user name, set by the handshake.
  wsreg::ConnectionRegistry<Policy, std::string> registry;
  wspp::ServerOptions options;
  options.threads = args.threads;
  options.max_message_size = args.max_message_size;
  return examples::with_server(registry, args, options, [&](auto& server) {
    using Decision = wspp::HandshakeDecision<std::string>;

    // Runs on an io thread before anything is registered; reads only `tokens`.
    server.set_handshake_handler([&tokens](const wspp::HandshakeRequest& request) {
      const std::optional<std::string> token = bearer_token(request);
      if (!token) {
        return Decision::reject(401, "a bearer token is required\n")
            .with_header("WWW-Authenticate", "Bearer realm=\"token_server\"");
      }
      const auto user = tokens.find(*token);
      if (user == tokens.end()) {
        return Decision::reject(401, "unknown token\n")
            .with_header("WWW-Authenticate",
                         "Bearer realm=\"token_server\", error=\"invalid_token\"");
      }
      return Decision::accept(user->second);
    });
    server.set_message_handler([&registry](wsreg::ConnectionId id, wsreg::Payload message) {
      if (message.opcode() != wsreg::Opcode::text) return;
      const std::string name = registry.data(id).value_or("?");
      registry.broadcast(wsreg::Payload::text(name + ": " + std::string(message.data())));
    });

    if (!examples::listen_and_report(server, args, "token_server")) return 1;

    signals.wait();
    server.shutdown(std::chrono::seconds(5)).wait();
    std::printf("token_server: stopped\n");
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg token server: admits clients with a bearer token, relays their messages"};
  examples::ServerArguments args;
  args.add_to(app);
  args.add_message_size_to(app);
  std::vector<std::string> pairs{"alice=alice-token", "bob=bob-token"};
  app.add_option("--token", pairs, "NAME=TOKEN, repeatable: the users and their tokens")
      ->capture_default_str();
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  Tokens tokens;
  for (const std::string& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
      std::fprintf(stderr, "token_server: --token wants NAME=TOKEN, got \"%s\"\n", pair.c_str());
      return 2;
    }
    tokens[pair.substr(eq + 1)] = pair.substr(0, eq);
  }
  examples::StopSignals signals;  // before any thread and before the port is printed
  return examples::with_policy(args.policy, [&](auto tag) {
    return run<typename decltype(tag)::type>(signals, args, tokens);
  });
}
