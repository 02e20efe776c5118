// The TLS Server as an application uses it, with nothing but
// `target_link_libraries(tls PRIVATE wsreg::websocketpp)` (OpenSSL comes with
// the target): <wsreg/websocketpp/tls.hpp>, a certificate made for the run
// by the openssl command line, make_tls_context, a TlsServer, and a
// websocketpp wss:// client that sends one message and gets it back from a
// broadcast. Exits 0 when that round trip works.
#include <wsreg/websocketpp/tls.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <system_error>

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_client.hpp>

#include "round_trip.hpp"

namespace {

// A wss client that does not verify the test's own certificate.
void trust_anything(websocketpp::client<websocketpp::config::asio_tls_client>& client) {
  client.set_tls_init_handler([](websocketpp::connection_hdl) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    context->set_verify_mode(asio::ssl::verify_none);
    return context;
  });
}

}  // namespace

int main() {
  char dir[] = "/tmp/wsreg-consumer-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  const std::string cert = std::string(dir) + "/cert.pem";
  const std::string key = std::string(dir) + "/key.pem";
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 1 -nodes"
      " -subj /CN=localhost -keyout " + key + " -out " + cert + " 2>/dev/null";
  const bool made = std::system(command.c_str()) == 0;
  int result = 1;
  if (!made) {
    std::fprintf(stderr, "could not run: %s\n", command.c_str());
  } else {
    try {
      wsreg::wspp::TlsOptions options;
      options.certificate_chain_file = cert;
      options.private_key_file = key;
      wsreg::ConnectionRegistry<wsreg::ActorPolicy> registry;
      wsreg::wspp::TlsServer<wsreg::ActorPolicy> server(registry,
                                                        wsreg::wspp::make_tls_context(options));
      server.set_message_handler([&](wsreg::ConnectionId, wsreg::Payload message) {
        registry.broadcast(std::move(message));
      });
      server.listen("127.0.0.1", 0);
      const std::string echoed = round_trip<websocketpp::config::asio_tls_client>(
          "wss://127.0.0.1:" + std::to_string(server.port()) + "/", trust_anything);
      const bool done = server.shutdown(std::chrono::seconds(2))
                            .wait_for(std::chrono::seconds(5)) == std::future_status::ready;
      if (echoed == "hello" && done) {
        result = 0;
      } else {
        std::fprintf(stderr, "wss round trip gave \"%s\", shutdown %s\n", echoed.c_str(),
                     done ? "done" : "not done");
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
  }
  std::remove(cert.c_str());
  std::remove(key.c_str());
  ::rmdir(dir);
  return result;
}
