// examples/common/make_server.hpp: a plain or a TLS Server, as the command line says.
#ifndef WSREG_EXAMPLES_MAKE_SERVER_HPP
#define WSREG_EXAMPLES_MAKE_SERVER_HPP

#include <cstdio>
#include <exception>
#include <utility>

#include "common/example_options.hpp"
#include "wsreg/websocketpp/tls.hpp"

namespace examples {

/// Constructs the Server for `registry` (wsreg::wspp::Server, or TlsServer
/// when args has --tls-cert and --tls-key) and returns `run(server)`, so an
/// example is written once for both transports (its body is a generic
/// lambda). A certificate or key that cannot be loaded is reported on stderr
/// and gives exit code 1. Runs on the calling thread.
template <class Policy, class Data, class Run>
int with_server(wsreg::ConnectionRegistry<Policy, Data>& registry, const ServerArguments& args,
                const wsreg::wspp::ServerOptions& options, Run&& run) {
  if (args.tls()) {
    wsreg::wspp::TlsOptions tls;
    tls.certificate_chain_file = args.tls_cert;
    tls.private_key_file = args.tls_key;
    wsreg::wspp::TlsContextPtr context;
    try {
      context = wsreg::wspp::make_tls_context(tls);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    wsreg::wspp::TlsServer<Policy, Data> server(registry, std::move(context), options);
    return run(server);
  }
  wsreg::wspp::Server<Policy, Data> server(registry, options);
  return run(server);
}

}  // namespace examples

#endif
