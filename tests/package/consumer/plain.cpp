// The websocketpp adapter as an application uses it, with nothing but
// `target_link_libraries(plain PRIVATE wsreg::websocketpp)`: only
// <wsreg/websocketpp/server.hpp> for the server side (it brings both
// policies), class template argument deduction for the Server, and a
// websocketpp client that sends one message and gets it back from a
// broadcast. Exits 0 when that round trip works under both policies.
#include <wsreg/websocketpp/server.hpp>

#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <system_error>
#include <type_traits>

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include "round_trip.hpp"

namespace {


template <class Policy>
bool works() {
  wsreg::ConnectionRegistry<Policy> registry;
  wsreg::wspp::Server server(registry);  // deduced: Server<Policy>
  static_assert(std::is_same_v<decltype(server), wsreg::wspp::Server<Policy>>);
  server.set_message_handler([&](wsreg::ConnectionId, wsreg::Payload message) {
    registry.broadcast(std::move(message));
  });
  std::error_code ec;
  server.listen("127.0.0.1", 0, ec);
  if (ec) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    return false;
  }
  const std::string echoed = round_trip<websocketpp::config::asio_client>(
      "ws://127.0.0.1:" + std::to_string(server.port()) + "/");
  const bool done = server.shutdown(std::chrono::seconds(2)).wait_for(std::chrono::seconds(5)) ==
                    std::future_status::ready;
  if (echoed != "hello" || !done) {
    std::fprintf(stderr, "round trip gave \"%s\", shutdown %s\n", echoed.c_str(),
                 done ? "done" : "not done");
    return false;
  }
  return true;
}

}  // namespace

int main() { return works<wsreg::ActorPolicy>() && works<wsreg::MutexPolicy>() ? 0 : 1; }
