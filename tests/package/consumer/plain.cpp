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

namespace {

using Client = websocketpp::client<websocketpp::config::asio_client>;

// Connects to 127.0.0.1:port, sends "hello", and returns what comes back
// first (empty on failure or after 10 s).
std::string round_trip(std::uint16_t port) {
  Client client;
  client.clear_access_channels(websocketpp::log::alevel::all);
  client.clear_error_channels(websocketpp::log::elevel::all);
  std::error_code ec;
  client.init_asio(ec);
  if (ec) return {};
  std::string received;
  // Ends the run after 10 s if the exchange has not; cancelled when the
  // connection ends, so run() returns as soon as there is nothing left.
  asio::steady_timer deadline(client.get_io_service(), std::chrono::seconds(10));
  deadline.async_wait([&](const std::error_code& e) {
    if (!e) client.stop();
  });
  client.set_open_handler([&](websocketpp::connection_hdl hdl) {
    std::error_code ignored;
    client.send(hdl, "hello", websocketpp::frame::opcode::text, ignored);
  });
  client.set_message_handler([&](websocketpp::connection_hdl hdl, Client::message_ptr msg) {
    received = msg->get_payload();
    std::error_code ignored;
    client.close(hdl, websocketpp::close::status::normal, "done", ignored);
  });
  client.set_close_handler([&](websocketpp::connection_hdl) { deadline.cancel(); });
  client.set_fail_handler([&](websocketpp::connection_hdl) { deadline.cancel(); });
  auto con = client.get_connection("ws://127.0.0.1:" + std::to_string(port) + "/", ec);
  if (ec) return {};
  client.connect(con);
  client.run();
  return received;
}

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
  const std::string echoed = round_trip(server.port());
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
