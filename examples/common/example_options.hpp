// examples/common/example_options.hpp: the arguments every example takes.
#ifndef WSREG_EXAMPLES_EXAMPLE_OPTIONS_HPP
#define WSREG_EXAMPLES_EXAMPLE_OPTIONS_HPP

#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>

#include "wsreg/actor_policy.hpp"
#include "wsreg/mutex_policy.hpp"

namespace examples {

/// --address, --port, --threads and --policy, as every example takes them.
struct ServerArguments {
  std::string address = "0.0.0.0";
  std::uint16_t port = 9002;
  std::size_t threads = 1;
  std::string policy = "actor";
  std::size_t max_message_size = 1024 * 1024;
  std::string tls_cert;  ///< PEM certificate chain; with tls_key: serve wss:// and https://
  std::string tls_key;   ///< PEM private key of tls_cert
  bool deflate = false;  ///< --deflate: negotiate permessage-deflate (see add_deflate_to)

  /// Whether --tls-cert and --tls-key were given.
  bool tls() const { return !tls_cert.empty(); }

  /// Adds the options to `app`, with their defaults shown in --help.
  void add_to(CLI::App& app) {
    app.add_option("--address", address, "IP address to listen on")->capture_default_str();
    app.add_option("--port", port, "TCP port to listen on (0: any free port)")
        ->capture_default_str();
    app.add_option("--threads", threads, "io threads running the server")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--policy", policy, "registry policy: actor or mutex")
        ->check(CLI::IsMember({"actor", "mutex"}))
        ->capture_default_str();
    auto* cert = app.add_option("--tls-cert", tls_cert,
                                "PEM certificate chain: serve wss:// (and https://) instead of ws://")
                     ->check(CLI::ExistingFile);
    auto* key = app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")
                    ->check(CLI::ExistingFile);
    cert->needs(key);
    key->needs(cert);
  }

  /// Adds --max-message-size (bytes; ServerOptions::max_message_size, past
  /// which an inbound message closes its connection with 1009), for the
  /// examples that take any message.
  void add_message_size_to(CLI::App& app) {
    app.add_option("--max-message-size", max_message_size,
                   "largest inbound message in bytes (larger: close with 1009)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
        ->capture_default_str();
  }

  /// Adds --deflate: negotiate permessage-deflate (RFC 7692) with clients
  /// that offer it, for the examples that pass Deflate = true to
  /// with_server (the Server then runs on DeflateConfig or TlsDeflateConfig).
  void add_deflate_to(CLI::App& app) {
    app.add_flag("--deflate", deflate,
                 "negotiate permessage-deflate (RFC 7692) with clients that offer it");
  }
};

/// Parses the command line. Returns true to go on; false with `exit_code`
/// set when the program should exit: 0 after --help, 2 after a bad argument
/// (the error and the full usage are printed to stderr).
inline bool parse_arguments(CLI::App& app, int argc, char** argv, int& exit_code) {
  app.failure_message(CLI::FailureMessage::help);
  try {
    app.parse(argc, argv);
    return true;
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e) == 0 ? 0 : 2;
    return false;
  }
}

/// Listens on args.address:args.port. On success prints "NAME: listening on
/// port N (policy P, threads T[, tls]EXTRA)" to stdout, flushed, for scripts that
/// wait for it, and returns true; on failure prints the error to stderr and
/// returns false.
template <class Server>
bool listen_and_report(Server& server, const ServerArguments& args, const char* name,
                       const std::string& extra = "") {
  std::error_code ec;
  server.listen(args.address, args.port, ec);
  if (ec) {
    std::fprintf(stderr, "%s: cannot listen on %s:%u: %s\n", name, args.address.c_str(),
                 static_cast<unsigned>(args.port), ec.message().c_str());
    return false;
  }
  std::printf("%s: listening on port %u (policy %s, threads %zu%s%s)\n", name,
              static_cast<unsigned>(server.port()), args.policy.c_str(), args.threads,
              args.tls() ? ", tls" : "", extra.c_str());
  std::fflush(stdout);
  return true;
}

/// Names a policy type without constructing one.
template <class Policy>
struct PolicyTag {
  using type = Policy;
};

/// Calls `f(PolicyTag<P>{})` with the policy named "actor" or "mutex": the
/// one place where the examples choose a policy at run time. Everything
/// else is the same code for both.
template <class F>
int with_policy(const std::string& name, F&& f) {
  if (name == "mutex") return f(PolicyTag<wsreg::MutexPolicy>{});
  return f(PolicyTag<wsreg::ActorPolicy>{});
}

}  // namespace examples

#endif
