// examples/common/make_server.hpp: a plain or a TLS Server, as the command line says.
#ifndef WSREG_EXAMPLES_MAKE_SERVER_HPP
#define WSREG_EXAMPLES_MAKE_SERVER_HPP

#include <cstdio>
#include <exception>
#include <utility>

#include "common/example_options.hpp"
#include "wsreg/websocketpp/deflate_config.hpp"
#include "wsreg/websocketpp/tls.hpp"
#include "wsreg/websocketpp/tls_deflate_config.hpp"

namespace examples {

/// Constructs the Server for `registry` (wsreg::wspp::Server, or TlsServer
/// when args has --tls-cert and --tls-key; with `Deflate` and --deflate,
/// DeflateServer or TlsDeflateServer) and returns `run(server)`, so an
/// example is written once for every transport (its body is a generic
/// lambda). `Deflate` is a template parameter so that examples without
/// --deflate do not compile two more Server types. A certificate or key
/// that cannot be loaded is reported on stderr and gives exit code 1. Runs
/// on the calling thread.
template <bool Deflate = false, class Policy, class Data, class Run>
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
    if constexpr (Deflate) {
      if (args.deflate) {
        wsreg::wspp::TlsDeflateServer<Policy, Data> server(registry, std::move(context), options);
        return run(server);
      }
    }
    wsreg::wspp::TlsServer<Policy, Data> server(registry, std::move(context), options);
    return run(server);
  }
  if constexpr (Deflate) {
    if (args.deflate) {
      wsreg::wspp::DeflateServer<Policy, Data> server(registry, options);
      return run(server);
    }
  }
  wsreg::wspp::Server<Policy, Data> server(registry, options);
  return run(server);
}

}  // namespace examples

#endif
