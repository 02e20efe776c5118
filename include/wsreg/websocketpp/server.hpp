// wsreg/websocketpp/server.hpp: plugs a ConnectionRegistry into a websocketpp server.
#ifndef WSREG_WEBSOCKETPP_SERVER_HPP
#define WSREG_WEBSOCKETPP_SERVER_HPP

#include <algorithm>
#include <atomic>
#include <cerrno>
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
#include <variant>
#include <vector>

#include "wsreg/websocketpp/config.hpp"  // defines ASIO_STANDALONE first

#include <asio/bind_executor.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <websocketpp/server.hpp>

#include "wsreg/connection_registry.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/prometheus.hpp"
#include "wsreg/sender.hpp"
#include "wsreg/websocketpp/detail/connection_sender.hpp"
#include "wsreg/websocketpp/detail/server_counters.hpp"
#include "wsreg/websocketpp/server_options.hpp"
#include "wsreg/websocketpp/server_stats.hpp"

namespace wsreg::wspp {

/// A websocketpp 0.8.2 WebSocket server (plain TCP, standalone Asio) whose
/// open connections are the members of a ConnectionRegistry.
///
/// What it does: a connection is added to the registry when its WebSocket
/// opens (never before: a failed or refused handshake leaves no entry) and
/// removed when it closes or fails, however that happens (close frame, TCP
/// FIN, reset, timeout), exactly once. Each incoming message goes to the
/// message handler with the connection id. Outgoing data goes through the
/// registry, whose entries send with websocketpp's error_code overloads
/// only and within ServerOptions::max_buffered_bytes per connection. The
/// limits, heartbeat and accept back-off of ServerOptions apply per
/// connection: one bad client never affects another or the process.
///
/// Ownership: the Server owns the websocketpp endpoint, and in the first
/// constructor's mode the io_context and its threads. It refers to, but does
/// not own, the registry, which must outlive it. websocketpp owns each
/// connection; the registry holds only a weak reference to it.
///
/// Threads: websocketpp calls the handlers on the io_context's threads, one
/// connection's handlers never concurrently (its strand). Handlers may call
/// any registry member, including broadcast from a close handler while many
/// connections close. ActorPolicy's size/stats/flush wait for the actor: that
/// cannot deadlock (the actor never waits for an io thread), but it holds the
/// io thread while the actor works through its mailbox; size_approx and
/// stats_approx never wait. An exception thrown by a handler is
/// caught here and closes that connection with 1011 (RFC 6455 section
/// 7.4.1, internal error); it never reaches the io_context.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe, except
/// shutdown(), stats(), port() and the accessors, which are thread-safe.
/// Set handlers before listen().
template <class Policy, class Data = std::monostate>
class Server {
 public:
  /// The registry type: `Data` is the per-connection data; a new connection
  /// is added with a default-constructed Data (set it from the open handler
  /// or later with ConnectionRegistry::set_data / update_data).
  using Registry = ConnectionRegistry<Policy, Data>;
  /// The websocketpp endpoint type, for settings the Server does not wrap.
  using Endpoint = ::websocketpp::server<Config>;
  /// Called with the sender's id and the message: its bytes (moved, not
  /// copied, out of websocketpp's buffer) and its opcode, ready to pass on to
  /// ConnectionRegistry::send or broadcast as it is.
  using MessageHandler = std::function<void(ConnectionId, Payload)>;
  /// Called when a connection was added to (open) or removed from (close)
  /// the registry.
  using ConnectionHandler = std::function<void(ConnectionId)>;
  /// Answers a plain HTTP request (one that is not a WebSocket handshake):
  /// fills in the response and returns true, or returns false to leave it
  /// to the Server (metrics_path, else 404).
  using HttpHandler = std::function<bool(const HttpRequest&, HttpResponse&)>;
  /// Called with a connection's id and its dropped_messages() total once its
  /// queue has drained after one or more messages were dropped for it under
  /// OverflowPolicy::drop_newest (see set_drop_handler).
  using DropHandler = std::function<void(ConnectionId, std::uint64_t dropped_total)>;

  /// A server with its own io_context, run by `options.threads` threads that
  /// start in listen(). Throws std::system_error if websocketpp's Asio
  /// transport cannot be initialised.
  explicit Server(Registry& registry, ServerOptions options = {})
      : registry_(registry),
        options_(std::move(options)),
        owned_io_(std::make_unique<asio::io_context>()),
        io_(*owned_io_),
        strand_(asio::make_strand(io_)),
        accept_timer_(io_),
        heartbeat_timer_(io_) {
    init();
  }

  /// A server on an io_context the application runs. The Server starts no
  /// thread; the application must keep running `io` until the future of
  /// shutdown() is ready, then destroy the Server, then stop `io`.
  Server(Registry& registry, asio::io_context& io, ServerOptions options = {})
      : registry_(registry),
        options_(std::move(options)),
        io_(io),
        strand_(asio::make_strand(io_)),
        accept_timer_(io_),
        heartbeat_timer_(io_) {
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
      if (!threads_.empty()) done.wait_for(std::chrono::seconds(2) + grace_left());
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
  /// Sets the handler for plain HTTP requests (serving a page at "/", say).
  /// It is asked first, before metrics_path. Not thread-safe: call before
  /// listen(). Runs on an io thread; an exception from it answers 500.
  void set_http_handler(HttpHandler handler) { on_http_ = std::move(handler); }
  /// Sets the handler called after a connection was added. Not thread-safe:
  /// call before listen(). Runs on an io thread.
  void set_open_handler(ConnectionHandler handler) { on_open_ = std::move(handler); }
  /// Sets the handler called after a connection was removed. Not
  /// thread-safe: call before listen(). Runs on an io thread.
  void set_close_handler(ConnectionHandler handler) { on_close_ = std::move(handler); }
  /// Sets the handler told that a connection lost messages to
  /// OverflowPolicy::drop_newest. Coalesced: it is called once when that
  /// connection's queue has drained after one or more drops (not once per
  /// dropped message, and not while the client stays at its bound), with the
  /// connection's running total, so a notice it sends (ConnectionRegistry::send)
  /// waits behind little. Never called under OverflowPolicy::close. Not
  /// thread-safe: call before listen(). Runs on the connection's strand (an
  /// io thread); an exception from it closes that connection with 1011.
  void set_drop_handler(DropHandler handler) { on_drop_ = std::move(handler); }

  /// How many messages for connection `id` were refused by its bound
  /// (max_buffered_bytes) so far, under either overflow policy; nullopt if
  /// `id` is not open here. Thread-safe; exact at the moment it reads.
  std::optional<std::uint64_t> dropped_messages(ConnectionId id) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = open_.find(id);
    if (it == open_.end()) return std::nullopt;
    const ConnectionPtr con = it->second.lock();
    if (!con) return std::nullopt;
    return con->dropped_messages.load(std::memory_order_relaxed);
  }

  /// Binds `address`:`port` (port 0 picks an ephemeral port; read it with
  /// port()), starts accepting and the heartbeat, and starts the owned io
  /// threads. Reports errors (bad address, port in use, ...) in `ec`;
  /// nothing throws. Not thread-safe; call once.
  void listen(const std::string& address, std::uint16_t port, std::error_code& ec) {
    ec.clear();
    const asio::ip::address ip = asio::ip::make_address(address, ec);
    if (ec) return;
    endpoint_.listen(asio::ip::tcp::endpoint(ip, port), ec);
    if (ec) return;
    const auto local = endpoint_.get_local_endpoint(ec);
    if (ec) return;
    port_.store(local.port(), std::memory_order_release);
    asio::post(strand_, [this] {
      const std::size_t accepts = std::max<std::size_t>(1, options_.pending_accepts);
      for (std::size_t i = 0; i < accepts; ++i) accept_next();
      arm_heartbeat();
    });
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

  /// The transport counters. Thread-safe; each field exact on its own.
  ServerStats stats() const noexcept { return counters_->snapshot(); }

  /// Stops accepting and closes every open connection with 1001 "going away"
  /// (RFC 6455 section 7.4.1). A connection that has not finished the close
  /// handshake `grace` later is dropped (websocketpp's close handshake
  /// timeout, set per connection to what is left of `grace`). Connections
  /// whose handshake completes during shutdown are closed at once and never
  /// registered; new handshakes get HTTP 503. The returned future becomes
  /// ready when the last connection has left the registry and the accept
  /// loop and heartbeat have stopped. Thread-safe and idempotent: later calls
  /// return the first call's future. Never blocks.
  std::shared_future<void> shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    std::vector<ConnectionPtr> to_close;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return done_future_;
      shutting_down_ = true;
      deadline_ = std::chrono::steady_clock::now() + grace;
      if (port() == 0) {  // never listened: nothing runs, nothing to stop
        done_set_ = true;
        done_.set_value();
        return done_future_;
      }
      to_close.reserve(open_.size());
      for (const auto& entry : open_) {
        if (ConnectionPtr con = entry.second.lock()) to_close.push_back(std::move(con));
      }
      ++pending_;  // the stop step below
    }
    asio::post(strand_, [this] {
      std::error_code ignored;
      endpoint_.stop_listening(ignored);  // the pending accept completes as cancelled
      accept_timer_.cancel();
      heartbeat_timer_.cancel();
      finish_pending();
    });
    for (const auto& con : to_close) detail::ask_strand(con, request_shutdown_close);
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
  using Connection = typename Endpoint::connection_type;
  using Hdl = ::websocketpp::connection_hdl;
  using Clock = std::chrono::steady_clock;

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }

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
    endpoint_.set_open_handshake_timeout(static_cast<long>(options_.handshake_timeout.count()));
    endpoint_.set_close_handshake_timeout(
        static_cast<long>(options_.close_handshake_timeout.count()));
    endpoint_.set_max_message_size(options_.max_message_size);

    using std::placeholders::_1;
    using std::placeholders::_2;
    endpoint_.set_validate_handler(std::bind(&Server::on_validate, this, _1));
    endpoint_.set_open_handler(std::bind(&Server::on_open, this, _1));
    endpoint_.set_close_handler(std::bind(&Server::on_end, this, _1, false));
    endpoint_.set_fail_handler(std::bind(&Server::on_end, this, _1, true));
    endpoint_.set_message_handler(std::bind(&Server::on_message, this, _1, _2));
    endpoint_.set_ping_handler(std::bind(&Server::on_ping, this, _1, _2));
    endpoint_.set_pong_handler(std::bind(&Server::on_pong, this, _1, _2));
    endpoint_.set_http_handler(std::bind(&Server::on_http, this, _1));
    endpoint_.set_interrupt_handler(std::bind(&Server::on_interrupt, this, _1));
  }

  std::chrono::milliseconds grace_left() {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto left = deadline_ - Clock::now();
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(left));
  }

  ConnectionPtr connection(Hdl hdl) {
    std::error_code ec;
    ConnectionPtr con = endpoint_.get_con_from_hdl(std::move(hdl), ec);
    return ec ? nullptr : con;
  }

  // --- accept loop (server strand) ---------------------------------------

  // Replaces websocketpp's server::start_accept, which retries at once on
  // every error (out of file descriptors, that is a busy loop) and keeps a
  // single accept pending. Here ServerOptions::pending_accepts accepts are
  // pending at once; each completion starts one more.
  void accept_next() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return;
      ++pending_;
    }
    ConnectionPtr con = endpoint_.get_connection();
    std::error_code ec;
    if (con) {
      endpoint_.async_accept(con, std::bind(&Server::on_accept, this, con, std::placeholders::_1),
                             ec);
    }
    if (!con || ec) {  // not listening (shutdown) or out of memory
      if (con) con->terminate(ec);
      finish_pending();
    }
  }

  // Runs on the new connection's strand.
  void on_accept(ConnectionPtr con, const std::error_code& ec) {
    if (!ec) {
      con->accepted = true;
      if (options_.socket_send_buffer_bytes > 0) {
        std::error_code ignored;  // the kernel's default is a fine fallback
        con->get_raw_socket().set_option(
            asio::socket_base::send_buffer_size(options_.socket_send_buffer_bytes), ignored);
      }
      con->start();
    } else {
      con->terminate(ec);
    }
    // Every strand handler below starts its successor (which counts itself
    // in pending_) before finish_pending(), and touches nothing after it:
    // that call may complete the shutdown and let the Server be destroyed.
    asio::post(strand_, [this, ec] {
      after_accept(ec);
      finish_pending();
    });
  }

  void after_accept(const std::error_code& ec) {
    if (ec == ::websocketpp::error::operation_canceled || ec == asio::error::operation_aborted) {
      return;  // stop_listening
    }
    if (!ec) {
      backoff_ = std::chrono::milliseconds(0);
      accept_next();
      return;
    }
    detail::ServerCounters::bump(counters_->accept_errors);
    if (!is_resource_exhaustion(ec)) {
      accept_next();  // ECONNABORTED and the like: that client only
      return;
    }
    // This accept slot waits for the back-off timer; if it is already
    // running (another slot failed first), it waits with it.
    if (++paused_accepts_ > 1) return;
    backoff_ = std::clamp(backoff_ * 2, options_.accept_backoff_min, options_.accept_backoff_max);
    detail::ServerCounters::bump(counters_->accept_backoffs);
    std::fprintf(stderr, "wsreg: accept failed (%s); pausing accepts for %lld ms\n",
                 ec.message().c_str(), static_cast<long long>(backoff_.count()));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return;
      ++pending_;
    }
    accept_timer_.expires_after(backoff_);
    accept_timer_.async_wait(asio::bind_executor(strand_, [this](const std::error_code& wait_ec) {
      const std::size_t paused = std::exchange(paused_accepts_, 0);
      if (!wait_ec) {
        for (std::size_t i = 0; i < paused; ++i) accept_next();
      }
      finish_pending();
    }));
  }

  static bool is_resource_exhaustion(const std::error_code& ec) {
    // Standalone Asio reports socket errors in its own category
    // ("asio.system"), which websocketpp passes through unchanged.
    if (ec.category() != asio::error::get_system_category() &&
        ec.category() != std::system_category() && ec.category() != std::generic_category()) {
      return false;
    }
    const int e = ec.value();
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
  }

  // --- heartbeat (server strand) ------------------------------------------

  std::chrono::milliseconds heartbeat_period() const {
    auto shortest = std::chrono::milliseconds(0);
    for (auto d : {options_.ping_interval, options_.idle_timeout}) {
      if (d.count() > 0 && (shortest.count() == 0 || d < shortest)) shortest = d;
    }
    if (shortest.count() == 0) return shortest;
    return std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  }

  void arm_heartbeat() {
    const auto period = heartbeat_period();
    if (period.count() == 0) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return;
      ++pending_;
    }
    heartbeat_timer_.expires_after(period);
    heartbeat_timer_.async_wait(asio::bind_executor(strand_, [this](const std::error_code& ec) {
      if (!ec) {
        sweep();
        arm_heartbeat();
      }
      finish_pending();  // last: see on_accept
    }));
  }

  // Asks each connection that has been quiet too long for a ping or a close.
  // O(open connections) under the mutex, no I/O there: the requests go out
  // after it is released.
  void sweep() {
    const std::int64_t now = now_ns();
    const std::int64_t ping_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(options_.ping_interval).count();
    const std::int64_t idle_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(options_.idle_timeout).count();
    sweep_work_.clear();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& entry : open_) {
        ConnectionPtr con = entry.second.lock();
        if (!con) continue;
        const std::int64_t arrived = con->last_arrival_ns.load(std::memory_order_relaxed);
        if (idle_ns > 0 && now - arrived >= idle_ns) {
          sweep_work_.emplace_back(std::move(con), request_idle_close);
          continue;
        }
        const std::int64_t pinged = con->last_ping_ns.load(std::memory_order_relaxed);
        if (ping_ns > 0 && now - std::max(arrived, pinged) >= ping_ns) {
          con->last_ping_ns.store(now, std::memory_order_relaxed);
          sweep_work_.emplace_back(std::move(con), request_ping);
        }
      }
    }
    for (const auto& [con, request] : sweep_work_) detail::ask_strand(con, request);
    sweep_work_.clear();
  }

  // --- connection handlers (connection strand) ---------------------------

  bool on_validate(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return false;
    bool refuse = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      refuse = shutting_down_;
    }
    if (!refuse && options_.max_connections != 0) {
      std::size_t n = admitted_.load(std::memory_order_relaxed);
      do {
        refuse = n >= options_.max_connections;
      } while (!refuse && !admitted_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
      con->admitted = !refuse;
    }
    if (refuse) {
      con->rejected = true;  // its fail handler is not a failed handshake
      detail::ServerCounters::bump(counters_->handshakes_rejected);
      con->set_status(::websocketpp::http::status_code::service_unavailable);
      con->set_body("server full\n");
      return false;
    }
    return true;
  }

  // The WebSocket opened: register it, unless the server is shutting down.
  void on_open(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!shutting_down_) {
        // hybi00 (no Sec-WebSocket-Version) frames differently from RFC 6455.
        const bool frame_once =
            options_.frame_once && !con->get_request_header("Sec-WebSocket-Version").empty();
        con->wsreg_id = registry_.add(std::make_shared<detail::ConnectionSender<Connection>>(
            con, options_.max_buffered_bytes, detail::write_window_bytes(options_),
            options_.overflow_policy, frame_once, counters_));
        open_.emplace(con->wsreg_id, con);
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
  void on_end(Hdl hdl, bool failed) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    if (con->admitted) {
      con->admitted = false;
      admitted_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (con->wsreg_id == no_connection) {  // never registered
      if (failed && con->accepted && !con->rejected) {
        detail::ServerCounters::bump(counters_->handshakes_failed);
      }
      return;
    }
    const ConnectionId id = std::exchange(con->wsreg_id, no_connection);
    registry_.remove(id);
    detail::release_queue(*con);
    if (con->get_local_close_code() == ::websocketpp::close::status::message_too_big) {
      detail::ServerCounters::bump(counters_->oversize_closes);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_.erase(id);
    }
    guard(con, on_close_, id);
    maybe_complete();
  }

  void on_message(Hdl hdl, typename Endpoint::message_ptr message) {
    ConnectionPtr con = connection(hdl);
    if (!con || con->wsreg_id == no_connection) return;
    con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
    if (!on_message_) return;
    // websocketpp delivers only text and binary here (RFC 6455 section 5.6).
    Payload payload(static_cast<Opcode>(message->get_opcode()),
                    std::move(message->get_raw_payload()));
    guard(con, on_message_, con->wsreg_id, std::move(payload));
  }

  bool on_ping(Hdl hdl, std::string) {
    if (ConnectionPtr con = connection(hdl)) {
      con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
    }
    return true;  // websocketpp answers with a pong (RFC 6455 section 5.5.3)
  }

  void on_pong(Hdl hdl, std::string) {
    if (ConnectionPtr con = connection(hdl)) {
      con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
    }
  }

  void on_http(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    const auto& request = con->get_request();
    if (on_http_) {
      HttpRequest asked{request.get_method(), request.get_uri()};
      HttpResponse answer;
      bool answered = false;
      try {
        answered = on_http_(asked, answer);
      } catch (...) {
        detail::ServerCounters::bump(counters_->handler_exceptions);
        answered = true;
        answer = HttpResponse{500, "text/plain; charset=utf-8", "internal error\n"};
      }
      if (answered) {
        con->set_status(static_cast<::websocketpp::http::status_code::value>(answer.status));
        if (!answer.content_type.empty()) con->append_header("Content-Type", answer.content_type);
        con->set_body(std::move(answer.body));
        return;
      }
    }
    if (!options_.metrics_path.empty() && request.get_method() == "GET" &&
        request.get_uri() == options_.metrics_path) {
      con->set_status(::websocketpp::http::status_code::ok);
      con->append_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      // The _approx reads never wait: under ActorPolicy a busy actor must
      // not hold an io thread (and every connection on it) hostage.
      con->set_body(prometheus_text(registry_.stats_approx(), registry_.size_approx()) +
                    prometheus_text(counters_->snapshot()));
      return;
    }
    con->set_status(::websocketpp::http::status_code::not_found);
    con->set_body("not found\n");
  }

  // Does on the connection's strand what other threads asked for
  // (ConnectionState::requests). Close requests stay set, so the sender
  // refuses everything after them.
  void on_interrupt(Hdl hdl) {
    ConnectionPtr con = connection(hdl);
    if (!con) return;
    const std::uint8_t requests = con->requests.fetch_and(
        static_cast<std::uint8_t>(~(request_ping | request_drain)), std::memory_order_acq_rel);
    // The adapter's send queue first: refilled, handed over before a
    // shutdown close, or released before another close.
    if (const auto dropped = detail::service_queue(con, requests, detail::write_window_bytes(options_))) {
      if (con->wsreg_id != no_connection) guard(con, on_drop_, con->wsreg_id, *dropped);
    }
    std::error_code ec;
    namespace status = ::websocketpp::close::status;
    if (requests & request_shutdown_close) {
      con->set_close_handshake_timeout(std::max<long>(1, static_cast<long>(grace_left().count())));
      con->close(status::going_away, "server shutdown", ec);
    } else if (requests & request_slow_close) {
      con->close(status::policy_violation, "slow consumer", ec);
      if (!ec) detail::ServerCounters::bump(counters_->slow_consumer_closes);
    } else if (requests & request_idle_close) {
      // A peer that sent nothing, not even a pong, will not answer the close
      // either: wait one ping interval at most, not the full close timeout.
      const auto reply_window = options_.ping_interval.count() > 0
                                    ? std::min(options_.ping_interval,
                                               options_.close_handshake_timeout)
                                    : options_.close_handshake_timeout;
      con->set_close_handshake_timeout(std::max<long>(1, static_cast<long>(reply_window.count())));
      con->close(status::going_away, "idle timeout", ec);
      if (!ec) detail::ServerCounters::bump(counters_->idle_closes);
    } else if (requests & request_ping) {
      con->ping("", ec);
      if (!ec) detail::ServerCounters::bump(counters_->pings_sent);
    }
  }

  // Calls an application handler; what it throws closes that connection
  // with 1011 instead of unwinding into websocketpp and the io_context.
  template <class Handler, class... Args>
  void guard(const ConnectionPtr& con, Handler& handler, Args&&... args) {
    if (!handler) return;
    try {
      handler(std::forward<Args>(args)...);
    } catch (...) {
      detail::ServerCounters::bump(counters_->handler_exceptions);
      std::error_code ignored;
      con->close(::websocketpp::close::status::internal_endpoint_error, "internal error",
                 ignored);
    }
  }

  // --- shutdown bookkeeping ------------------------------------------------

  // An accept, timer wait or the shutdown step has finished.
  void finish_pending() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --pending_;
    }
    maybe_complete();
  }

  // Sets the future once nothing is open or pending. Under the mutex, so the
  // destructor, which takes the mutex after the future is ready, cannot run
  // while this is still inside the Server.
  void maybe_complete() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!shutting_down_ || !open_.empty() || pending_ != 0 || done_set_) return;
    done_set_ = true;
    done_.set_value();
  }

  Registry& registry_;
  const ServerOptions options_;
  std::unique_ptr<asio::io_context> owned_io_;  // null when embedded
  asio::io_context& io_;
  // Serialises the accept loop, the heartbeat and the shutdown step.
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer accept_timer_;     // strand_ only
  asio::steady_timer heartbeat_timer_;  // strand_ only
  std::chrono::milliseconds backoff_{0};  // strand_ only
  std::size_t paused_accepts_ = 0;        // strand_ only: slots waiting for accept_timer_
  std::vector<std::pair<ConnectionPtr, Request>> sweep_work_;  // strand_ only
  Endpoint endpoint_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::size_t> admitted_{0};
  const std::shared_ptr<detail::ServerCounters> counters_ =
      std::make_shared<detail::ServerCounters>();

  MessageHandler on_message_;
  HttpHandler on_http_;
  ConnectionHandler on_open_;
  ConnectionHandler on_close_;
  DropHandler on_drop_;

  // This mutex synchronizes all access to open_, shutting_down_, deadline_,
  // pending_, done_set_ and done_.
  std::mutex mutex_;
  std::unordered_map<ConnectionId, std::weak_ptr<Connection>> open_;  // registered
  bool shutting_down_ = false;
  Clock::time_point deadline_{};
  int pending_ = 0;  // accepts, timer waits and shutdown steps in flight

  bool done_set_ = false;  // guarded by mutex_
  std::promise<void> done_;
  std::shared_future<void> done_future_ = done_.get_future().share();
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_SERVER_HPP
