// tests/package/consumer/round_trip.hpp: the websocketpp client side of the
// adapter consumers (plain.cpp over ws://, tls.cpp over wss://).
#ifndef WSREG_CONSUMER_ROUND_TRIP_HPP
#define WSREG_CONSUMER_ROUND_TRIP_HPP

#include <chrono>
#include <functional>
#include <string>
#include <system_error>

#include <asio/steady_timer.hpp>
#include <websocketpp/client.hpp>

/// Connects a websocketpp client of `Config` to `url`, sends "hello", and
/// returns what comes back first (empty on failure or after 10 s).
/// `configure`, if given, is called with the initialised client (a wss
/// client sets its TLS init handler there). Runs the client on the calling
/// thread.
template <class Config>
std::string round_trip(const std::string& url,
                       const std::function<void(websocketpp::client<Config>&)>& configure = {}) {
  using Client = websocketpp::client<Config>;
  Client client;
  client.clear_access_channels(websocketpp::log::alevel::all);
  client.clear_error_channels(websocketpp::log::elevel::all);
  std::error_code ec;
  client.init_asio(ec);
  if (ec) return {};
  if (configure) configure(client);
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
  client.set_message_handler(
      [&](websocketpp::connection_hdl hdl, typename Client::message_ptr msg) {
        received = msg->get_payload();
        std::error_code ignored;
        client.close(hdl, websocketpp::close::status::normal, "done", ignored);
      });
  client.set_close_handler([&](websocketpp::connection_hdl) { deadline.cancel(); });
  client.set_fail_handler([&](websocketpp::connection_hdl) { deadline.cancel(); });
  auto con = client.get_connection(url, ec);
  if (ec) return {};
  client.connect(con);
  client.run();
  return received;
}

#endif
