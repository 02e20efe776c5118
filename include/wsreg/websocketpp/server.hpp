// wsreg/websocketpp/server.hpp: plugs a ConnectionRegistry into a websocketpp server.
#ifndef WSREG_WEBSOCKETPP_SERVER_HPP
#define WSREG_WEBSOCKETPP_SERVER_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wsreg/websocketpp/config.hpp"  // defines ASIO_STANDALONE first

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <websocketpp/server.hpp>

#include "wsreg/connection_registry.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/prometheus.hpp"
#include "wsreg/sender.hpp"
#include "wsreg/websocketpp/detail/connection_sender.hpp"

namespace wsreg::wspp {

/// Tunables of a Server. Every field has a default that suits a server of a
/// few thousand connections.
struct ServerOptions {
  /// Threads that run the io_context the Server owns (ignored when the
  /// application passes its own io_context). More threads let websocketpp
  /// read and write several connections at once; each connection still runs
  /// on one strand. Default 1; must be at least 1.
  std::size_t threads = 1;

  /// HTTP path answered by GET with prometheus_text() of the registry;
  /// empty turns it off. Any other plain HTTP request gets 404.
  std::string metrics_path = "/metrics";

  /// Log websocketpp's error channels (all but devel) to stderr. Default
  /// off: websocketpp reports a peer that vanished mid-write as "fatal", and
  /// with thousands of clients that is routine; the registry counts what
  /// matters (RegistryStats).
  bool log_errors = false;
};

/// A websocketpp 0.8.2 WebSocket server (plain TCP, standalone Asio) whose
/// open connections are the members of a ConnectionRegistry.
///
/// What it does: a connection is added to the registry when its WebSocket
/// opens (never before: a failed handshake leaves no entry) and removed when
/// it closes or fails, however that happens (close frame, TCP FIN, reset,
/// timeout), exactly once. Each incoming message goes to the message handler
/// with the connection id. Outgoing data goes through the registry, whose
/// entries send with websocketpp's error_code overloads only.
///
/// Ownership: the Server owns the websocketpp endpoint, and in the first
/// constructor's mode the io_context and its threads. It refers to, but does
/// not own, the registry, which must outlive it. websocketpp owns each
/// connection; the registry holds only a weak reference to it.
///
/// Threads: websocketpp calls the handlers on the io_context's threads, one
/// connection's handlers never concurrently (its strand). Handlers may call
/// any registry member (ActorPolicy's size/stats/flush wait for the actor,
/// which never waits for an io thread, so that is safe). An exception thrown
/// by a handler is caught here and closes that connection with 1011 (RFC
/// 6455 section 7.4.1, internal error); it never reaches the io_context.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe, except
/// shutdown(), port() and the accessors, which are thread-safe. Set handlers
/// before listen().
template <class Policy>
class Server {
 public:
  using Registry = ConnectionRegistry<Policy>;
  /// The websocketpp endpoint type, for settings the Server does not wrap.
  using Endpoint = ::websocketpp::server<Config>;
  /// Called with the sender's id and the message: its bytes (moved, not
  /// copied, out of websocketpp's buffer) and its opcode, ready to pass on to
  /// ConnectionRegistry::send or broadcast as it is.
  using MessageHandler = std::function<void(ConnectionId, Payload)>;
  /// Called when a connection was added to (open) or removed from (close)
  /// the registry.
  using ConnectionHandler = std::function<void(ConnectionId)>;

  /// A server with its own io_context, run by `options.threads` threads that
  /// start in listen(). Throws std::system_error if websocketpp's Asio
  /// transport cannot be initialised.
  explicit Server(Registry& registry, ServerOptions options = {})
      : registry_(registry),
        options_(std::move(options)),
        owned_io_(std::make_unique<asio::io_context>()),
        io_(*owned_io_) {
    init();
  }

  /// A server on an io_context the application runs. The Server starts no
  /// thread; the application must keep running `io` until the future of
  /// shutdown() is ready, then destroy the Server, then stop `io`.
  Server(Registry& registry, asio::io_context& io, ServerOptions options = {})
      : registry_(registry), options_(std::move(options)), io_(io) {
    init();
  }

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Shuts down with no grace period if shutdown() was not called, then (own
  /// io_context) waits for it, stops the io_context and joins its threads.
  /// Connections still registered then are removed from the registry.
  /// Must not run on one of the Server's io threads.
  ~Server() {
    std::shared_future<void> done = shutdown(std::chrono::milliseconds(0));
    if (owned_io_) {
      const auto limit = std::chrono::seconds(2) + grace();
      if (!threads_.empty()) done.wait_for(limit);
      work_.reset();
      io_.stop();
      for (auto& t : threads_) t.join();
    } else if (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      std::fputs("wsreg: Server destroyed before its shutdown completed: keep the "
                 "io_context running until shutdown()'s future is ready\n",
                 stderr);
    }
    // Tear down the rest: whatever did not close in time leaves the registry.
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : open_) registry_.remove(entry.first);
    open_.clear();
  }

  /// Sets the handler for incoming data messages. Not thread-safe: call
  /// before listen(). Runs on an io thread.
  void set_message_handler(MessageHandler handler) { on_message_ = std::move(handler); }
  /// Sets the handler called after a connection was added. Not thread-safe:
  /// call before listen(). Runs on an io thread.
  void set_open_handler(ConnectionHandler handler) { on_open_ = std::move(handler); }
  /// Sets the handler called after a connection was removed. Not
  /// thread-safe: call before listen(). Runs on an io thread.
  void set_close_handler(ConnectionHandler handler) { on_close_ = std::move(handler); }

  /// Binds `address`:`port` (port 0 picks an ephemeral port; read it with
  /// port()), starts accepting, and starts the owned io threads. Reports
  /// errors (bad address, port in use, ...) in `ec`; nothing throws.
  /// Not thread-safe; call once.
  void listen(const std::string& address, std::uint16_t port, std::error_code& ec) {
    ec.clear();
    const asio::ip::address ip = asio::ip::make_address(address, ec);
    if (ec) return;
    endpoint_.listen(asio::ip::tcp::endpoint(ip, port), ec);
    if (ec) return;
    const auto local = endpoint_.get_local_endpoint(ec);
    if (ec) return;
    port_.store(local.port(), std::memory_order_release);
    endpoint_.start_accept(ec);
    if (ec) return;
    if (owned_io_ && threads_.empty()) {
      work_.emplace(io_.get_executor());
      const std::size_t n = std::max<std::size_t>(1, options_.threads);
      for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
    }
  }

  /// As listen(address, port, ec), but throws std::system_error on error.
  void listen(const std::string& address, std::uint16_t port) {
    std::error_code ec;
    listen(address, port, ec);
    if (ec) throw std::system_error(ec, "wsreg: listen on " + address);
  }

  /// The bound TCP port, or 0 before listen() succeeded. Thread-safe.
  std::uint16_t port() const noexcept { return port_.load(std::memory_order_acquire); }

  /// Stops accepting and closes every open connection with 1001 "going away"
  /// (RFC 6455 section 7.4.1). A connection that has not finished the close
  /// handshake `grace` later is dropped (websocketpp's close handshake
  /// timeout, set per connection to what is left of `grace`). Connections
  /// whose handshake completes during shutdown are closed at once and never
  /// registered. The returned future becomes ready when the last connection
  /// has left the registry (at once if there is none). Thread-safe and
  /// idempotent: later calls return the first call's future. Never blocks.
  std::shared_future<void> shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    std::vector<::websocketpp::connection_hdl> to_close;
    bool nothing_open = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return done_future_;
      shutting_down_ = true;
      deadline_ = std::chrono::steady_clock::now() + grace;
      to_close.reserve(open_.size());
      for (const auto& entry : open_) to_close.push_back(entry.second);
      nothing_open = open_.empty();
    }
    asio::post(io_, [this] {
      std::error_code ignored;
      endpoint_.stop_listening(ignored);  // an acceptor is touched on an io thread only
    });
    for (const auto& hdl : to_close) {
      std::error_code ignored;  // a connection already gone needs no close
      endpoint_.interrupt(hdl, ignored);  // on_interrupt closes it on its strand
    }
    if (nothing_open) complete_shutdown();
    return done_future_;
  }

  /// The io_context the endpoint runs on (owned or the application's).
  /// Thread-safe.
  asio::io_context& io_context() noexcept { return io_; }
  /// The websocketpp endpoint, for settings the Server does not wrap; its
  /// handlers belong to the Server and must not be replaced. Thread-safe.
  Endpoint& endpoint() noexcept { return endpoint_; }
  /// The registry this server adds its connections to. Thread-safe.
  Registry& registry() noexcept { return registry_; }

 private:
  using ConnectionPtr = typename Endpoint::connection_ptr;
  using Hdl = ::websocketpp::connection_hdl;

  void init() {
    std::error_code ec;
    endpoint_.init_asio(&io_, ec);
    if (ec) throw std::system_error(ec, "wsreg: websocketpp init_asio");
    endpoint_.set_reuse_addr(true);
    endpoint_.clear_access_channels(::websocketpp::log::alevel::all);
    endpoint_.clear_error_channels(::websocketpp::log::elevel::all);
    if (options_.log_errors) {
      endpoint_.set_error_channels(::websocketpp::log::elevel::all ^
                                   ::websocketpp::log::elevel::devel);
    }
    using std::placeholders::_1;
    using std::placeholders::_2;
    endpoint_.set_open_handler(std::bind(&Server::on_open, this, _1));
    endpoint_.set_close_handler(std::bind(&Server::on_end, this, _1));
    endpoint_.set_fail_handler(std::bind(&Server::on_end, this, _1));
    endpoint_.set_message_handler(std::bind(&Server::on_message, this, _1, _2));
    endpoint_.set_http_handler(std::bind(&Server::on_http, this, _1));
    endpoint_.set_interrupt_handler(std::bind(&Server::on_interrupt, this, _1));
  }

  std::chrono::milliseconds grace() {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto left = deadline_ - std::chrono::steady_clock::now();
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(left));
  }

  ConnectionPtr connection(Hdl hdl) {
    std::error_code ec;
    ConnectionPtr con = endpoint_.get_con_from_hdl(std::move(hdl), ec);
    return ec ? nullptr : con;
  }

  // The WebSocket opened: register it, unless the server is shutting down.
  void on_open(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!shutting_down_) {
        con->wsreg_id = registry_.add(
            std::make_shared<detail::ConnectionSender<typename Endpoint::connection_type>>(con));
        open_.emplace(con->wsreg_id, hdl);
      }
    }
    if (con->wsreg_id == no_connection) {
      std::error_code ignored;
      con->close(::websocketpp::close::status::going_away, "server shutdown", ignored);
      return;
    }
    guard(con, on_open_, con->wsreg_id);
  }

  // Close and fail both end here, so an entry is removed however the
  // connection ends; wsreg_id is cleared so it is removed exactly once.
  void on_end(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con || con->wsreg_id == no_connection) return;  // never registered
    const ConnectionId id = std::exchange(con->wsreg_id, no_connection);
    registry_.remove(id);
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_.erase(id);
      last = shutting_down_ && open_.empty();
    }
    guard(con, on_close_, id);
    if (last) complete_shutdown();
  }

  void on_message(Hdl hdl, typename Endpoint::message_ptr message) {
    if (!on_message_) return;
    ConnectionPtr con = connection(hdl);
    if (!con || con->wsreg_id == no_connection) return;
    // websocketpp delivers only text and binary here (RFC 6455 section 5.6).
    Payload payload(static_cast<Opcode>(message->get_opcode()),
                    std::move(message->get_raw_payload()));
    guard(con, on_message_, con->wsreg_id, std::move(payload));
  }

  void on_http(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    const auto& request = con->get_request();
    if (!options_.metrics_path.empty() && request.get_method() == "GET" &&
        request.get_uri() == options_.metrics_path) {
      con->set_status(::websocketpp::http::status_code::ok);
      con->append_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      con->set_body(prometheus_text(registry_.stats(), registry_.size()));
      return;
    }
    con->set_status(::websocketpp::http::status_code::not_found);
    con->set_body("not found\n");
  }

  // Runs on the connection's strand after shutdown() asked for it.
  void on_interrupt(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    con->set_close_handshake_timeout(std::max<long>(1, static_cast<long>(grace().count())));
    std::error_code ignored;  // already closing: it ends on its own
    con->close(::websocketpp::close::status::going_away, "server shutdown", ignored);
  }

  // Calls an application handler; what it throws closes that connection
  // with 1011 instead of unwinding into websocketpp and the io_context.
  template <class Handler, class... Args>
  void guard(const ConnectionPtr& con, Handler& handler, Args&&... args) {
    if (!handler) return;
    try {
      handler(std::forward<Args>(args)...);
    } catch (...) {
      std::error_code ignored;
      con->close(::websocketpp::close::status::internal_endpoint_error, "internal error",
                 ignored);
    }
  }

  void complete_shutdown() {
    std::call_once(done_once_, [this] { done_.set_value(); });
  }

  Registry& registry_;
  const ServerOptions options_;
  std::unique_ptr<asio::io_context> owned_io_;  // null when embedded
  asio::io_context& io_;
  Endpoint endpoint_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint16_t> port_{0};

  MessageHandler on_message_;
  ConnectionHandler on_open_;
  ConnectionHandler on_close_;

  // This mutex synchronizes all access to open_, shutting_down_ and deadline_.
  std::mutex mutex_;
  std::unordered_map<ConnectionId, Hdl> open_;  // registered connections
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point deadline_{};

  std::promise<void> done_;
  std::shared_future<void> done_future_ = done_.get_future().share();
  std::once_flag done_once_;
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_SERVER_HPP
