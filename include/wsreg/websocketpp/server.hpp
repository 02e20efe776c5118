// wsreg/websocketpp/server.hpp: plugs a ConnectionRegistry into a websocketpp server.
#ifndef WSREG_WEBSOCKETPP_SERVER_HPP
#define WSREG_WEBSOCKETPP_SERVER_HPP

#include "wsreg/websocketpp/detail/cxx_check.hpp"  // first: websocketpp 0.8.2 is C++17 only

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
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

#include "wsreg/actor_policy.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/prometheus.hpp"
#include "wsreg/sender.hpp"
#include "wsreg/websocketpp/detail/connection_sender.hpp"
#include "wsreg/websocketpp/detail/server_counters.hpp"
#include "wsreg/websocketpp/handshake.hpp"
#include "wsreg/websocketpp/server_options.hpp"
#include "wsreg/websocketpp/server_stats.hpp"
#include "wsreg/websocketpp/shutdown_future.hpp"

namespace asio::ssl {
class context;  // a TLS Server's context (wsreg/websocketpp/tls.hpp)
}  // namespace asio::ssl

namespace wsreg::wspp {

/// A TLS context shared by every connection of a TLS Server
/// (wsreg/websocketpp/tls.hpp: make_tls_context, or the application's own).
using TlsContextPtr = std::shared_ptr<asio::ssl::context>;

namespace detail {
// Whether a websocketpp endpoint is TLS: its transport has a TLS init handler.
template <class Endpoint, class = void>
struct IsTlsEndpoint : std::false_type {};
template <class Endpoint>
struct IsTlsEndpoint<Endpoint, std::void_t<decltype(&Endpoint::set_tls_init_handler)>>
    : std::true_type {};
}  // namespace detail

/// A websocketpp 0.8.2 WebSocket server on standalone Asio, over plain TCP
/// (`ConfigT` = Config, the default) or TLS (`ConfigT` = TlsConfig, from
/// wsreg/websocketpp/tls.hpp; alias TlsServer), whose open connections are
/// the members of a ConnectionRegistry.
///
/// `ConfigT` is the websocketpp config: Config, TlsConfig, or an
/// application's config derived from one of them (which must then expand
/// WSREG_WSPP_HYBI13_FIXES for itself, see hybi13_fixes.hpp). Everything
/// below holds for both transports; over TLS each connection encrypts its
/// own bytes, while a broadcast is still framed once (frame_once).
///
/// What it does: a connection is added to the registry when its WebSocket
/// opens (never before: a failed or refused handshake leaves no entry) and
/// removed when it closes or fails, however that happens (close frame, TCP
/// FIN, reset, timeout, shutdown, the Server's destruction), exactly once,
/// followed by exactly one call of the close handler. Each incoming message
/// goes to the message handler with the connection id. Outgoing data goes
/// through the registry, whose entries send with websocketpp's error_code
/// overloads only and within ServerOptions::max_buffered_bytes per
/// connection. The limits, heartbeat, handshake deadline and accept back-off
/// of ServerOptions apply per connection: one bad client never affects
/// another or the process.
///
/// Ownership: the Server owns, in the first constructor's mode, the
/// io_context and its threads. Everything its handlers touch (the
/// websocketpp endpoint, the counters, the handlers you set, the table of
/// connections) lives in a shared state that every websocketpp connection
/// keeps alive from its creation to its destruction, and that every timer
/// and posted task of the Server keeps alive until it has run (the model of
/// Boost.Beast's chat-multi sessions and their shared_from_this): no
/// websocketpp handler, timer or task can run on freed memory, whatever
/// order things are destroyed in. The Server refers to, but does not own,
/// the registry, which must outlive it; after the Server's destructor
/// returns, nothing of it calls the registry or an application handler
/// again. websocketpp owns each connection; the registry holds only a weak
/// reference to it.
///
/// Threads: websocketpp calls the handlers on the io_context's threads, one
/// connection's handlers never concurrently (its strand). Handlers may call
/// any registry member, including broadcast from a close handler while many
/// connections close. ActorPolicy's size/stats/flush wait for the actor: that
/// cannot deadlock (the actor never waits for an io thread), but it holds the
/// io thread while the actor works through its mailbox; size_approx and
/// stats_approx never wait. An exception thrown by a handler is caught here
/// and closes that connection with 1011 (RFC 6455 section 7.4.1, internal
/// error); so is one from the Server's own code on a connection's path (a
/// std::bad_alloc); neither ever reaches websocketpp or the io_context.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Unsafe, except
/// shutdown(), async_shutdown(), stats(), port() and the accessors, which are
/// thread-safe. Set handlers before listen().
template <class Policy, class Data = std::monostate, class ConfigT = Config>
class Server {
 public:
  /// The registry type: `Data` is the per-connection data; a new connection
  /// is added with the Data its handshake handler chose (see
  /// set_handshake_handler), default-constructed without one (set it later
  /// with ConnectionRegistry::set_data / update_data).
  using Registry = ConnectionRegistry<Policy, Data>;
  /// What a handshake handler answers: HandshakeDecision<Data>::accept(),
  /// accept(data), accept_with_subprotocol(...), reject(status, body).
  using Decision = HandshakeDecision<Data>;
  /// Sees each WebSocket upgrade request before anything of its connection
  /// exists in the registry, and decides (see set_handshake_handler).
  using HandshakeHandler = std::function<Decision(const HandshakeRequest&)>;
  /// The websocketpp endpoint type, for settings the Server does not wrap.
  using Endpoint = ::websocketpp::server<ConfigT>;
  /// Whether this Server speaks TLS (wss://): ConfigT's transport is
  /// websocketpp's asio_tls.
  static constexpr bool is_tls = detail::IsTlsEndpoint<Endpoint>::value;
  /// Called with the sender's id and the message: its bytes (moved, not
  /// copied, out of websocketpp's buffer) and its opcode, ready to pass on to
  /// ConnectionRegistry::send or broadcast as it is. A text message is valid
  /// UTF-8 (websocketpp checks it, and the Server completes its check).
  using MessageHandler = std::function<void(ConnectionId, Payload)>;
  /// Called when a connection was added to (open) or removed from (close)
  /// the registry.
  using ConnectionHandler = std::function<void(ConnectionId)>;
  /// Answers a plain HTTP request (one that is not a WebSocket handshake):
  /// fills in the response (status, Content-Type, body, extra headers such
  /// as Cache-Control or Allow) and returns true, or returns false to leave
  /// it to the Server (GET metrics_path; another method there gets 405 with
  /// Allow: GET; else 404).
  using HttpHandler = std::function<bool(const HttpRequest&, HttpResponse&)>;
  /// Called once, on an io thread, when the shutdown that async_shutdown()
  /// asked for has completed.
  using ShutdownHandler = std::function<void()>;
  /// Called with a connection's id and its dropped_messages() total once its
  /// queue has drained after one or more messages were dropped for it under
  /// OverflowPolicy::drop_newest (see set_drop_handler).
  using DropHandler = std::function<void(ConnectionId, std::uint64_t dropped_total)>;

  /// A server with its own io_context, run by `options.threads` threads that
  /// start in listen(). Throws std::invalid_argument for options that
  /// cannot work (see ServerOptions::idle_timeout), std::system_error if
  /// websocketpp's Asio transport cannot be initialised.
  explicit Server(Registry& registry, ServerOptions options = {})
      : owned_io_(std::make_unique<asio::io_context>()),
        core_(std::make_shared<Core>(registry, *owned_io_, std::move(options), nullptr)) {
    static_assert(!is_tls, "a TLS Server needs its TLS context: Server(registry, tls, options)");
  }

  /// A server on an io_context the application runs. The Server starts no
  /// thread; the application must keep running `io` until the shutdown has
  /// completed (shutdown()'s future is ready, or async_shutdown()'s handler
  /// has run), then destroy the Server, then may stop `io`. Throws as the
  /// other constructor.
  Server(Registry& registry, asio::io_context& io, ServerOptions options = {})
      : core_(std::make_shared<Core>(registry, io, std::move(options), nullptr)) {
    static_assert(!is_tls, "a TLS Server needs its TLS context: Server(registry, io, tls, options)");
  }

  /// A TLS Server (ConfigT = TlsConfig) with its own io_context, as the
  /// first constructor. `tls` is the context every connection's TLS session
  /// is made from (certificate chain, private key, protocol versions):
  /// make_tls_context(TlsOptions) builds one, or pass the application's own.
  /// The TLS handshake counts against ServerOptions::handshake_timeout; a
  /// client whose TLS handshake fails (plain HTTP or garbage sent to the TLS
  /// port) loses its socket alone and is counted in
  /// ServerStats::tls_handshake_failures. Throws std::invalid_argument if
  /// `tls` is null, else as the first constructor.
  Server(Registry& registry, TlsContextPtr tls, ServerOptions options = {})
      : owned_io_(std::make_unique<asio::io_context>()),
        core_(std::make_shared<Core>(registry, *owned_io_, std::move(options), std::move(tls))) {
    static_assert(is_tls, "a TLS context is for a TLS Server: Server<Policy, Data, TlsConfig>");
  }

  /// A TLS Server on an io_context the application runs; as the second
  /// constructor, with `tls` as in the third.
  Server(Registry& registry, asio::io_context& io, TlsContextPtr tls, ServerOptions options = {})
      : core_(std::make_shared<Core>(registry, io, std::move(options), std::move(tls))) {
    static_assert(is_tls, "a TLS context is for a TLS Server: Server<Policy, Data, TlsConfig>");
  }

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Ends whatever is still running: starts shutdown() with no grace period
  /// if it was not called, and cuts short the grace of one that was (every
  /// connection still open is dropped now). Own io_context: waits (at most
  /// about 2 s) for the connections to end, stops the io_context and joins
  /// its threads; must not run on one of those threads (that would join
  /// itself: the process is aborted with a message). Embedded: the
  /// shutdown should have completed already (a message on stderr says when
  /// it has not). Either way, every connection still registered is then
  /// removed from the registry and gets its close handler call, on this
  /// thread, and nothing of the Server calls the registry or a handler again.
  ~Server() {
    ShutdownFuture done = core_->shutdown(std::chrono::milliseconds(0));
    core_->expedite();
    if (owned_io_) {
      if (owned_io_->get_executor().running_in_this_thread()) {
        std::fputs("wsreg: Server destroyed on one of its own io threads; it cannot join "
                   "itself\n",
                   stderr);
        std::abort();
      }
      if (!threads_.empty()) done.wait_for(std::chrono::seconds(2));
      work_.reset();
      owned_io_->stop();
      for (auto& t : threads_) t.join();
    } else if (!done.ready()) {
      std::fputs("wsreg: Server destroyed before its shutdown completed: keep the "
                 "io_context running until shutdown()'s future is ready\n",
                 stderr);
    }
    core_->retire();
  }

  /// Sets the handler that decides each WebSocket upgrade: it sees the
  /// request (method, path, query, headers, cookies, Origin, offered
  /// subprotocols, peer address and port) after the Server's own checks
  /// (shutdown, Sec-WebSocket-Key, max_connections,
  /// max_connections_per_address, allowed_origins) passed, and before
  /// anything of the connection is registered: until it accepts, the
  /// connection is in no registry, has no id, and no broadcast reaches it.
  /// Accepting registers the connection, when its 101 has been written,
  /// with the Data given (ConnectionRegistry::add(sender, data)), then
  /// calls the open handler, which can read that Data with
  /// ConnectionRegistry::data(id). Rejecting answers the status and body
  /// and closes the TCP connection; nothing is registered and neither the
  /// open nor the close handler runs. An exception from the handler answers
  /// 500 for that connection only, counted in
  /// ServerStats::handshake_handler_errors (and handshakes_rejected).
  ///
  /// Runs on the connection's strand, on an io thread, synchronously: while
  /// it runs, that io thread serves nothing else (a slow check, such as a
  /// call to an authentication service, holds it; use several io threads or
  /// keep the check local). The handshake deadline (handshake_timeout)
  /// still counts while it runs. Without a handler, every upgrade that passes
  /// the Server's checks is accepted with a default-constructed Data. Not
  /// thread-safe: call before listen().
  void set_handshake_handler(HandshakeHandler handler) {
    core_->on_handshake_ = std::move(handler);
  }
  /// Sets the handler for incoming data messages. Not thread-safe: call
  /// before listen(). Runs on an io thread.
  void set_message_handler(MessageHandler handler) { core_->on_message_ = std::move(handler); }
  /// Sets the handler for plain HTTP requests (serving a page at "/", say).
  /// It is asked first, before metrics_path. Not thread-safe: call before
  /// listen(). Runs on the connection's strand (an io thread); an exception
  /// from it, or a response with a header that cannot be sent (see
  /// HttpResponse::headers), answers 500, counted in handler_exceptions.
  void set_http_handler(HttpHandler handler) { core_->on_http_ = std::move(handler); }
  /// Sets the handler called after a connection was added. Not thread-safe:
  /// call before listen(). Runs on an io thread.
  void set_open_handler(ConnectionHandler handler) { core_->on_open_ = std::move(handler); }
  /// Sets the handler called after a connection was removed: exactly once
  /// for every connection the open handler saw. Not thread-safe: call before
  /// listen(). Runs on an io thread, or on the thread that destroys the
  /// Server for connections still open then.
  void set_close_handler(ConnectionHandler handler) { core_->on_close_ = std::move(handler); }
  /// Sets the handler told that a connection lost messages to
  /// OverflowPolicy::drop_newest. Coalesced: it is called once when that
  /// connection's queue has drained after one or more drops (not once per
  /// dropped message, and not while the client stays at its bound), with the
  /// connection's running total, so a notice it sends (ConnectionRegistry::send)
  /// waits behind little. Never called under OverflowPolicy::close. Not
  /// thread-safe: call before listen(). Runs on the connection's strand (an
  /// io thread); an exception from it closes that connection with 1011.
  void set_drop_handler(DropHandler handler) { core_->on_drop_ = std::move(handler); }

  /// How many messages for connection `id` were refused by its bound
  /// (max_buffered_bytes) so far, under either overflow policy; nullopt if
  /// `id` is not open here. Thread-safe; exact at the moment it reads.
  /// O(1) average (a lookup under the Server's mutex).
  std::optional<std::uint64_t> dropped_messages(ConnectionId id) const {
    return core_->dropped_messages(id);
  }

  /// Binds `address`:`port` (port 0 picks an ephemeral port; read it with
  /// port()), starts accepting and the sweep (heartbeat and handshake
  /// deadline), and starts the owned io threads. Reports errors (bad
  /// address, port in use, ...) in `ec`; nothing throws. Not thread-safe;
  /// call once.
  void listen(const std::string& address, std::uint16_t port, std::error_code& ec) {
    core_->listen(address, port, ec);
    if (ec || !owned_io_ || !threads_.empty()) return;
    work_.emplace(owned_io_->get_executor());
    const std::size_t n = std::max<std::size_t>(1, core_->options_.threads);
    for (std::size_t i = 0; i < n; ++i) {
      threads_.emplace_back([io = owned_io_.get(), counters = core_->counters_] {
        run_io(*io, *counters);
      });
    }
  }

  /// As listen(address, port, ec), but throws std::system_error on error.
  void listen(const std::string& address, std::uint16_t port) {
    std::error_code ec;
    listen(address, port, ec);
    if (ec) throw std::system_error(ec, "wsreg: listen on " + address);
  }

  /// The bound TCP port, or 0 before listen() succeeded. Thread-safe.
  std::uint16_t port() const noexcept { return core_->port_.load(std::memory_order_acquire); }

  /// The transport counters. Thread-safe; each field exact on its own.
  ServerStats stats() const noexcept { return core_->counters_->snapshot(); }

  /// Stops accepting and closes every open connection with 1001 "going away"
  /// (RFC 6455 section 7.4.1); a connection still in its opening handshake
  /// is dropped at once (it was never registered). `grace` is a deadline
  /// for every connection, those already closing for another reason
  /// included: whatever has not ended `grace` after this call is dropped.
  /// Any duration works (milliseconds::max() waits for ever; 0 or less drops
  /// everything at once). Connections whose handshake completes during
  /// shutdown are closed at once and never registered; new handshakes get
  /// HTTP 503. The returned future becomes ready when every connection the
  /// Server accepted has ended (its close handler has returned) and the
  /// accept loop and the sweep have stopped; after that no handler of the
  /// Server can run, and it may be destroyed. Thread-safe and idempotent:
  /// later calls return the first call's future. Never blocks. Do not wait
  /// for the future on an io thread (it refuses: see ShutdownFuture); use
  /// async_shutdown() there.
  ShutdownFuture shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    return core_->shutdown(grace);
  }

  /// As shutdown(grace), and calls `handler` once when it has completed,
  /// posted to the io_context (so never inside this call, and on an io
  /// thread: from there the application may destroy an embedded Server). A
  /// handler given after completion is posted at once. If the io_context
  /// never runs again, the handler never runs. Thread-safe: may be called
  /// from an io thread, unlike a blocking wait on shutdown()'s future.
  void async_shutdown(std::chrono::milliseconds grace, ShutdownHandler handler) {
    core_->on_done(std::move(handler));
    core_->shutdown(grace);
  }

  /// The io_context the endpoint runs on (owned or the application's).
  /// Thread-safe.
  asio::io_context& io_context() noexcept { return core_->io_; }
  /// The websocketpp endpoint, for settings the Server does not wrap; its
  /// handlers belong to the Server and must not be replaced. Thread-safe.
  Endpoint& endpoint() noexcept { return core_->endpoint_; }
  /// The registry this server adds its connections to. Thread-safe.
  Registry& registry() noexcept { return core_->registry_; }

 private:
  using ConnectionPtr = typename Endpoint::connection_ptr;
  using Connection = typename Endpoint::connection_type;
  using Hdl = ::websocketpp::connection_hdl;
  using Clock = std::chrono::steady_clock;

  // Runs the owned io_context; an exception that escapes a handler (none of
  // the Server's own should) is counted and the thread goes on serving, as
  // Asio's documentation recommends, instead of ending the process.
  static void run_io(asio::io_context& io, detail::ServerCounters& counters) {
    for (;;) {
      try {
        io.run();
        return;
      } catch (...) {
        detail::ServerCounters::bump(counters.internal_errors);
      }
    }
  }

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }

  static std::int64_t to_ns(std::chrono::milliseconds d) {
    return d.count() <= 0 ? 0
                          : std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

  // Everything the handlers touch. Shared by the Server and by every
  // connection (ConnectionState::owner), timer wait and posted task, so it
  // lives until the last of them is gone.
  class Core : public std::enable_shared_from_this<Core> {
   public:
    Core(Registry& registry, asio::io_context& io, ServerOptions options, TlsContextPtr tls)
        : registry_(registry),
          options_(checked(std::move(options))),
          io_(io),
          strand_(asio::make_strand(io_)),
          accept_timer_(io_),
          sweep_timer_(io_),
          shutdown_timer_(io_) {
      init(std::move(tls));
    }

    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    void listen(const std::string& address, std::uint16_t port, std::error_code& ec) {
      ec.clear();
      const asio::ip::address ip = asio::ip::make_address(address, ec);
      if (ec) return;
      endpoint_.listen(asio::ip::tcp::endpoint(ip, port), ec);
      if (ec) return;
      const auto local = endpoint_.get_local_endpoint(ec);
      if (ec) return;
      port_.store(local.port(), std::memory_order_release);
      asio::post(strand_, [self = this->shared_from_this()] {
        const std::size_t accepts = std::max<std::size_t>(1, self->options_.pending_accepts);
        for (std::size_t i = 0; i < accepts; ++i) self->accept_next();
        self->arm_sweep();
      });
    }

    ShutdownFuture shutdown(std::chrono::milliseconds grace) {
      std::vector<ConnectionPtr> to_close;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (shutting_down_.load(std::memory_order_relaxed)) return future();
        shutting_down_.store(true, std::memory_order_relaxed);
        deadline_ = deadline_after(grace);
        if (port_.load(std::memory_order_acquire) == 0) {
          // Never listened: no connection, accept or timer exists.
          complete_locked();
          return future();
        }
        to_close = accepted_locked();
        ++pending_;  // the stop step below
      }
      asio::post(strand_, [self = this->shared_from_this()] {
        std::error_code ignored;
        self->endpoint_.stop_listening(ignored);  // pending accepts complete as cancelled
        self->accept_timer_.cancel();
        self->sweep_timer_.cancel();
        self->arm_shutdown_deadline();
        self->finish_pending();
      });
      for (const auto& con : to_close) detail::ask_strand(con, request_shutdown_close);
      return future();
    }

    // Moves the shutdown deadline to now: every connection still there is
    // dropped. For the destructor.
    void expedite() {
      std::vector<ConnectionPtr> to_drop;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        deadline_ = std::min(deadline_, Clock::now());
        to_drop = accepted_locked();
      }
      for (const auto& con : to_drop) detail::ask_strand(con, request_terminate);
    }

    void on_done(ShutdownHandler handler) {
      if (!handler) return;
      std::lock_guard<std::mutex> lock(mutex_);
      if (done_set_) {
        asio::post(io_, std::move(handler));
      } else {
        done_handlers_.push_back(std::move(handler));
      }
    }

    // The Server is going away: connections still registered leave the
    // registry and get their close handler here, once (whoever exchanges
    // wsreg_id first does it), and from now on no handler calls the registry
    // or the application. Called without the mutex held.
    void retire() {
      std::vector<ConnectionPtr> left;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        retired_.store(true, std::memory_order_release);
        for (const auto& entry : live_) {
          if (ConnectionPtr con = entry.second.lock()) left.push_back(std::move(con));
        }
      }
      for (const auto& con : left) {
        const ConnectionId id = con->wsreg_id.exchange(no_connection, std::memory_order_acq_rel);
        if (id == no_connection) continue;
        try {
          registry_.remove(id);
        } catch (...) {  // std::bad_alloc while queueing the removal
          detail::ServerCounters::bump(counters_->internal_errors);
        }
        if (on_close_) {
          try {
            on_close_(id);
          } catch (...) {
            detail::ServerCounters::bump(counters_->handler_exceptions);
          }
        }
      }
    }

    Registry& registry_;
    const ServerOptions options_;
    asio::io_context& io_;
    Endpoint endpoint_;
    std::atomic<std::uint16_t> port_{0};
    const std::shared_ptr<detail::ServerCounters> counters_ =
        std::make_shared<detail::ServerCounters>();
    // Handoffs from threads that do not run io_ (ServerOptions::write_lanes):
    // one lane per io thread; null when off.
    const std::shared_ptr<detail::WriteLanes<Connection>> lanes_ =
        options_.write_lanes
            ? std::make_shared<detail::WriteLanes<Connection>>(io_, std::max<std::size_t>(1, options_.threads))
            : nullptr;

    MessageHandler on_message_;
    HandshakeHandler on_handshake_;
    HttpHandler on_http_;
    ConnectionHandler on_open_;
    ConnectionHandler on_close_;
    DropHandler on_drop_;

    std::optional<std::uint64_t> dropped_messages(ConnectionId id) const {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = by_id_.find(id);
      if (it == by_id_.end()) return std::nullopt;
      const ConnectionPtr con = it->second.lock();
      if (!con) return std::nullopt;
      return con->dropped_messages.load(std::memory_order_relaxed);
    }

   private:
    static ServerOptions checked(ServerOptions options) {
      const auto ping = options.ping_interval.count();
      const auto idle = options.idle_timeout.count();
      if (ping > 0 && idle > 0 && idle / 2 < ping) {
        throw std::invalid_argument(
            "wsreg: ServerOptions::idle_timeout (" + std::to_string(idle) +
            " ms) must be at least twice ServerOptions::ping_interval (" + std::to_string(ping) +
            " ms), or a client that answers every ping can be closed as idle; raise "
            "idle_timeout, lower ping_interval, or set one of them to 0");
      }
      if (options.deflate_level < 1 || options.deflate_level > 9) {
        throw std::invalid_argument("wsreg: ServerOptions::deflate_level (" +
                                    std::to_string(options.deflate_level) +
                                    ") must be a zlib level from 1 to 9");
      }
      return options;
    }

    // now + grace, saturating: any grace works, milliseconds::max() included.
    static Clock::time_point deadline_after(std::chrono::milliseconds grace) {
      const Clock::time_point now = Clock::now();
      if (grace.count() <= 0) return now;
      const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(
          Clock::time_point::max() - now);
      if (grace >= room) return Clock::time_point::max();
      return now + grace;
    }

    ShutdownFuture future() const { return ShutdownFuture(done_future_, io_); }

    // `tls`: the context of a TLS Server (null for a plain one), handed to
    // every connection by websocketpp's TLS init handler.
    void init([[maybe_unused]] TlsContextPtr tls) {
      std::error_code ec;
      endpoint_.init_asio(&io_, ec);
      if (ec) throw std::system_error(ec, "wsreg: websocketpp init_asio");
      if constexpr (is_tls) {
        if (!tls) throw std::invalid_argument("wsreg: a TLS Server needs a TLS context");
        // websocketpp asks for the context once per connection, at
        // get_connection(); every connection shares this one.
        endpoint_.set_tls_init_handler([tls = std::move(tls)](Hdl) { return tls; });
      }
      endpoint_.set_reuse_addr(true);
      endpoint_.clear_access_channels(::websocketpp::log::alevel::all);
      endpoint_.clear_error_channels(::websocketpp::log::elevel::all);
      if (options_.log_errors) {
        endpoint_.set_error_channels(::websocketpp::log::elevel::all ^
                                     ::websocketpp::log::elevel::devel);
      }
      // The Server runs the handshake deadline itself (sweep()): websocketpp's
      // timer could terminate a connection that had just opened.
      endpoint_.set_open_handshake_timeout(0);
      endpoint_.set_close_handshake_timeout(
          static_cast<long>(options_.close_handshake_timeout.count()));
      endpoint_.set_max_message_size(options_.max_message_size);

      // Raw `this`: every connection, which is what calls these, keeps this
      // object alive (ConnectionState::owner).
      using std::placeholders::_1;
      using std::placeholders::_2;
      endpoint_.set_validate_handler(std::bind(&Core::on_validate, this, _1));
      endpoint_.set_open_handler(std::bind(&Core::on_open, this, _1));
      endpoint_.set_close_handler(std::bind(&Core::on_end, this, _1, false));
      endpoint_.set_fail_handler(std::bind(&Core::on_end, this, _1, true));
      endpoint_.set_message_handler(std::bind(&Core::on_message, this, _1, _2));
      endpoint_.set_ping_handler(std::bind(&Core::on_ping, this, _1, _2));
      endpoint_.set_pong_handler(std::bind(&Core::on_pong, this, _1, _2));
      endpoint_.set_http_handler(std::bind(&Core::on_http, this, _1));
      endpoint_.set_interrupt_handler(std::bind(&Core::on_interrupt, this, _1));
    }

    // What is left of the shutdown grace, for websocketpp's close handshake
    // timer (milliseconds in a long): at least 1 ms, at most ~24 days.
    long grace_left_ms() {
      std::lock_guard<std::mutex> lock(mutex_);
      if (deadline_ == Clock::time_point::max()) return std::numeric_limits<std::int32_t>::max();
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      return static_cast<long>(
          std::clamp<std::int64_t>(left, 1, std::numeric_limits<std::int32_t>::max()));
    }

    ConnectionPtr connection(Hdl hdl) {
      std::error_code ec;
      ConnectionPtr con = endpoint_.get_con_from_hdl(std::move(hdl), ec);
      return ec ? nullptr : con;
    }

    // Every live connection whose TCP accept has completed (mutex_ held).
    std::vector<ConnectionPtr> accepted_locked() const {
      std::vector<ConnectionPtr> out;
      out.reserve(live_.size());
      for (const auto& entry : live_) {
        ConnectionPtr con = entry.second.lock();
        if (con && con->accepted_ns.load(std::memory_order_acquire) != 0) {
          out.push_back(std::move(con));
        }
      }
      return out;
    }

    // --- accept loop (server strand) -------------------------------------

    // Replaces websocketpp's server::start_accept, which retries at once on
    // every error (out of file descriptors, that is a busy loop) and keeps a
    // single accept pending. Here ServerOptions::pending_accepts accepts are
    // pending at once; each completion starts one more. Each connection is
    // in live_ from here until its termination handler has run.
    void accept_next() {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (shutting_down_.load(std::memory_order_relaxed)) return;
        ++pending_;
      }
      ConnectionPtr con;
      std::error_code ec;
      try {
        con = endpoint_.get_connection();
        if (con) {
          con->owner = this->shared_from_this();
          con->set_termination_handler(std::bind(&Core::on_terminated, this, std::placeholders::_1));
          std::lock_guard<std::mutex> lock(mutex_);
          live_.emplace(con.get(), con);
        }
      } catch (...) {  // std::bad_alloc: try again on the next completion
        detail::ServerCounters::bump(counters_->internal_errors);
        if (con) {
          std::lock_guard<std::mutex> lock(mutex_);
          live_.erase(con.get());
        }
        con.reset();
      }
      if (con) {
        try {
          endpoint_.async_accept(
              con, std::bind(&Core::on_accept, this, con, std::placeholders::_1), ec);
        } catch (...) {  // std::bad_alloc for the operation
          detail::ServerCounters::bump(counters_->internal_errors);
          ec = ::websocketpp::error::make_error_code(::websocketpp::error::general);
        }
      }
      if (!con || ec) {  // not listening (shutdown) or out of memory
        if (con) con->terminate(ec);
        finish_pending();
      }
    }

    // Runs on the new connection's strand. Nothing thrown here may reach
    // Asio: an allocation failure drops this connection and stops one
    // accept slot (counted); the others go on.
    void on_accept(ConnectionPtr con, const std::error_code& ec) {
      try {
        start_accepted(con, ec);
      } catch (...) {
        detail::ServerCounters::bump(counters_->internal_errors);
        try {
          con->terminate(::websocketpp::error::make_error_code(::websocketpp::error::general));
        } catch (...) {
        }
        finish_pending();  // this slot's after_accept never runs
      }
    }

    void start_accepted(const ConnectionPtr& con, const std::error_code& ec) {
      if (!ec) {
        con->accepted = true;
        con->accepted_ns.store(now_ns(), std::memory_order_release);
        detail::ServerCounters::bump(counters_->accepts);
        take_slots(*con);
        if (shutting_down_locked()) {
          // shutdown() may have taken its list before accepted_ns was set.
          con->terminate(::websocketpp::error::make_error_code(
              ::websocketpp::error::operation_canceled));
        } else {
          if (options_.socket_send_buffer_bytes > 0) {
            std::error_code ignored;  // the kernel's default is a fine fallback
            con->get_raw_socket().set_option(
                asio::socket_base::send_buffer_size(options_.socket_send_buffer_bytes), ignored);
          }
          con->start();
        }
      } else {
        con->terminate(ec);
      }
      // Every strand handler below starts its successor (which counts itself
      // in pending_) before finish_pending(), and touches nothing after it.
      asio::post(strand_, [self = this->shared_from_this(), ec] {
        try {
          self->after_accept(ec);
        } catch (...) {  // std::bad_alloc starting the next accept: one slot fewer
          detail::ServerCounters::bump(self->counters_->internal_errors);
        }
        self->finish_pending();
      });
    }

    bool shutting_down_locked() {
      std::lock_guard<std::mutex> lock(mutex_);
      return shutting_down_.load(std::memory_order_relaxed);
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
        if (shutting_down_.load(std::memory_order_relaxed)) return;
      }
      // Counted once started (on the strand, so its handler cannot run
      // first): a wait that cannot start leaves nothing pending.
      accept_timer_.expires_after(backoff_);
      accept_timer_.async_wait(asio::bind_executor(
          strand_, [self = this->shared_from_this()](const std::error_code& wait_ec) {
            const std::size_t paused = std::exchange(self->paused_accepts_, 0);
            if (!wait_ec) {
              for (std::size_t i = 0; i < paused; ++i) self->accept_next();
            }
            self->finish_pending();
          }));
      std::lock_guard<std::mutex> lock(mutex_);
      ++pending_;
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

    // --- sweep: heartbeat and handshake deadline (server strand) ----------

    std::chrono::milliseconds sweep_period() const {
      auto shortest = std::chrono::milliseconds(0);
      for (auto d : {options_.ping_interval, options_.idle_timeout, options_.handshake_timeout}) {
        if (d.count() > 0 && (shortest.count() == 0 || d < shortest)) shortest = d;
      }
      if (shortest.count() == 0) return shortest;
      return std::clamp(shortest / 4, std::chrono::milliseconds(5),
                        std::chrono::milliseconds(1000));
    }

    // On the strand, so the wait's handler cannot run (and finish_pending)
    // before pending_ counts it; and the shutdown step, also on the strand,
    // cannot run in between. If the wait cannot be started (std::bad_alloc)
    // the sweep stops, counted, and nothing is left pending.
    void arm_sweep() noexcept {
      const auto period = sweep_period();
      if (period.count() == 0) return;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (shutting_down_.load(std::memory_order_relaxed)) return;
      }
      try {
        sweep_timer_.expires_after(period);
        sweep_timer_.async_wait(asio::bind_executor(
            strand_, [self = this->shared_from_this()](const std::error_code& ec) {
              if (!ec) {
                try {
                  self->sweep();
                } catch (...) {  // std::bad_alloc: this round is skipped
                  detail::ServerCounters::bump(self->counters_->internal_errors);
                }
                self->arm_sweep();
              }
              self->finish_pending();  // last: see on_accept
            }));
      } catch (...) {
        detail::ServerCounters::bump(counters_->internal_errors);
        return;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      ++pending_;
    }

    // Asks each connection whose handshake is overdue to be dropped, and
    // each open one that has been quiet too long for a ping or a close.
    // O(live connections) under the mutex, no I/O there: the requests go
    // out after it is released, and each is acted on by the connection's
    // own strand, which checks the connection's state first.
    void sweep() {
      const std::int64_t now = now_ns();
      const std::int64_t ping_ns = to_ns(options_.ping_interval);
      const std::int64_t idle_ns = to_ns(options_.idle_timeout);
      const std::int64_t handshake_ns = to_ns(options_.handshake_timeout);
      sweep_work_.clear();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& entry : live_) {
          ConnectionPtr con = entry.second.lock();
          if (!con) continue;
          if (!con->opened.load(std::memory_order_acquire)) {
            const std::int64_t accepted = con->accepted_ns.load(std::memory_order_acquire);
            if (handshake_ns > 0 && accepted != 0 && now - accepted >= handshake_ns &&
                !con->upgrading.load(std::memory_order_acquire)) {
              sweep_work_.emplace_back(std::move(con), request_handshake_timeout);
            }
            continue;
          }
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

    // --- shutdown deadline (server strand) -------------------------------

    // Not counted in pending_: the shutdown completes as soon as every
    // connection has ended, without waiting for this timer. If it fires
    // after completion it finds nothing to drop and calls nothing.
    void arm_shutdown_deadline() {
      Clock::time_point deadline;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        deadline = deadline_;
      }
      if (deadline == Clock::time_point::max()) return;  // grace for ever
      shutdown_timer_.expires_at(deadline);
      shutdown_timer_.async_wait(asio::bind_executor(
          strand_, [self = this->shared_from_this()](const std::error_code& ec) {
            if (!ec) self->expedite();
          }));
    }

    // --- connection handlers (connection strand) -------------------------

    bool on_validate(Hdl hdl) {
      ConnectionPtr con = connection(hdl);
      if (!con) return false;
      return protect_http(con, [&] { return validate(*con); });
    }

    bool validate(Connection& con) {
      namespace status = ::websocketpp::http::status_code;
      if (shutting_down_locked() || retired_.load(std::memory_order_acquire)) {
        return refuse(con, status::service_unavailable, "server shutting down\n");
      }
      // RFC 6455 section 4.2.1 item 5: base64 of a 16-byte nonce. (The
      // Sec-WebSocket-Version 13 path is the only one that carries it.)
      if (!con.get_request_header("Sec-WebSocket-Version").empty() &&
          !is_websocket_key(con.get_request_header("Sec-WebSocket-Key"))) {
        return refuse(con, status::bad_request, "bad Sec-WebSocket-Key\n");
      }
      if (con.over_limit) return refuse(con, status::service_unavailable, "server full\n");
      if (con.address_over_limit) {
        return refuse(con, status::too_many_requests, "too many connections from your address\n");
      }
      if (!options_.allowed_origins.empty()) {
        const std::string& origin = con.get_request_header("Origin");
        if (!origin.empty() && !origin_allowed(origin)) {
          return refuse(con, status::forbidden, "origin not allowed\n");
        }
      }
      if (on_handshake_ && !decide(con)) return false;
      con.upgrading.store(true, std::memory_order_release);
      return true;
    }

    // Asks the handshake handler and carries out its decision; false if the
    // upgrade is refused (the response is set).
    bool decide(Connection& con) {
      namespace status = ::websocketpp::http::status_code;
      std::optional<Decision> decision;
      try {
        decision.emplace(
            on_handshake_(HandshakeRequest(con.get_request(), con.peer_address, con.peer_port)));
      } catch (...) {
        return handler_error(con);
      }
      // A name that is not a token, or a value with CR, LF or NUL (header
      // injection), is the handler's mistake: 500, as for an exception.
      if (!detail::sendable_header_list(decision->headers())) return handler_error(con);
      try {
        for (const auto& [name, value] : decision->headers()) con.append_header(name, value);
      } catch (...) {  // std::bad_alloc
        return handler_error(con);
      }
      if (!decision->accepted()) {
        const int code = decision->status();
        if (code < 400 || code > 599) return handler_error(con);
        con.append_header("Content-Type", "text/plain; charset=utf-8");
        return refuse(con, static_cast<status::value>(code), decision->body());
      }
      if (!decision->subprotocol().empty()) {
        const std::vector<std::string> offered =
            HandshakeRequest(con.get_request(), con.peer_address, con.peer_port).subprotocols();
        if (std::find(offered.begin(), offered.end(), decision->subprotocol()) == offered.end()) {
          return handler_error(con);
        }
        std::error_code ec;
        con.select_subprotocol(decision->subprotocol(), ec);
        // websocketpp's own parse of the header may not have listed it (it
        // stops at the first item it cannot parse): answer it ourselves.
        if (ec) con.replace_header("Sec-WebSocket-Protocol", decision->subprotocol());
      }
      con.initial_data = std::make_shared<Data>(std::move(decision->data()));
      return true;
    }

    // The handshake handler threw or decided something the Server cannot
    // do: 500 for this connection only, counted.
    bool handler_error(Connection& con) {
      detail::ServerCounters::bump(counters_->handshake_handler_errors);
      return refuse(con, ::websocketpp::http::status_code::internal_server_error,
                    "internal error\n");
    }

    bool origin_allowed(const std::string& origin) const {
      const auto same = [&](const std::string& allowed) {
        return allowed.size() == origin.size() &&
               std::equal(allowed.begin(), allowed.end(), origin.begin(), [](char a, char b) {
                 const auto lower = [](char c) {
                   return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
                 };
                 return lower(a) == lower(b);
               });
      };
      return std::any_of(options_.allowed_origins.begin(), options_.allowed_origins.end(), same);
    }

    // At the TCP accept (strand): reads the peer's address once, and takes
    // this connection's max_connections and per-address slots, or marks it
    // over the limit so that validate() refuses it. Nothing thrown here
    // escapes without the slots being consistent: the map insertion is the
    // only allocation, and it is done before the count is raised.
    void take_slots(Connection& con) {
      std::error_code ec;
      const asio::ip::tcp::endpoint peer = con.get_raw_socket().remote_endpoint(ec);
      if (!ec) {
        asio::ip::address address = peer.address();
        if (address.is_v6() && address.to_v6().is_v4_mapped()) {
          address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
        }
        con.peer_address = address;
        con.peer_port = peer.port();
      }
      if (options_.max_connections != 0) {
        std::size_t n = admitted_.load(std::memory_order_relaxed);
        bool full = false;
        do {
          full = n >= options_.max_connections;
        } while (!full && !admitted_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
        con.admitted = !full;
        con.over_limit = full;
      }
      if (options_.max_connections_per_address != 0 && !ec) {
        std::lock_guard<std::mutex> lock(address_mutex_);
        std::size_t& count = per_address_[con.peer_address];
        if (count >= options_.max_connections_per_address) {
          con.address_over_limit = true;
        } else {
          ++count;
          con.address_counted = true;
        }
      }
    }

    // Gives back what take_slots() took and releases a Data the handshake
    // handler chose for a connection that never opened. Called from the
    // close/fail handler (first, so a client that sees the registry shrink
    // finds the slot free) and from the termination handler (for the rest);
    // the flags make the second call a no-op. Strand only. Never throws.
    void release_slots(Connection& con) noexcept {
      con.initial_data.reset();
      if (con.admitted) {
        con.admitted = false;
        admitted_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (con.address_counted) {
        con.address_counted = false;
        std::lock_guard<std::mutex> lock(address_mutex_);
        const auto it = per_address_.find(con.peer_address);
        if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
      }
    }

    bool refuse(Connection& con, ::websocketpp::http::status_code::value status,
                const std::string& body) {
      con.rejected = true;  // its fail handler is not a failed handshake
      detail::ServerCounters::bump(counters_->handshakes_rejected);
      con.set_status(status);
      con.set_body(body);
      return false;
    }

    // 24 characters of the base64 alphabet ending in "==", whose last data
    // character leaves no stray bits: exactly what 16 bytes encode to.
    static bool is_websocket_key(const std::string& key) {
      static constexpr char alphabet[] =
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
      for (std::size_t i = 0; i < 22; ++i) {
        if (std::char_traits<char>::find(alphabet, 64, key[i]) == nullptr) return false;
      }
      const char* last = std::char_traits<char>::find(alphabet, 64, key[21]);
      return ((last - alphabet) & 0x0f) == 0;  // the 4 bits beyond 16 bytes are zero
    }

    // The WebSocket opened: register it, unless the server is shutting down.
    void on_open(Hdl hdl) {
      ConnectionPtr con = connection(hdl);
      if (!con) return;
      con->opened.store(true, std::memory_order_release);
      con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
      if (shutting_down_locked() || retired_.load(std::memory_order_acquire)) {
        close(*con, ::websocketpp::close::status::going_away, "server shutdown");
        return;
      }
      ConnectionId id = no_connection;
      try {
        // hybi00 (no Sec-WebSocket-Version) frames differently from RFC 6455.
        const bool frame_once =
            options_.frame_once && !con->get_request_header("Sec-WebSocket-Version").empty();
        // permessage-deflate (configs with wsreg's extension): what this
        // connection negotiated, as the extension's answer in the 101
        // response says; 0 if it did not.
        std::uint8_t deflate_window_bits = 0;
        if constexpr (detail::uses_per_message_deflate<Connection>::value) {
          deflate_window_bits =
              detail::negotiated_window_bits(con->get_response_header("Sec-WebSocket-Extensions"));
        }
        auto sender = std::make_shared<detail::ConnectionSender<Connection>>(
            con, options_.max_buffered_bytes, detail::write_window_bytes(options_),
            options_.overflow_policy, frame_once, counters_, deflate_window_bits,
            detail::DeflateOnceOptions{options_.deflate_threshold_bytes, options_.deflate_level},
            lanes_);
        release_handshake(*con);
        // Registered under mutex_, so by_id_ (dropped_messages()) and the
        // registry agree at every moment: add() never waits and calls
        // nothing back (a lifecycle operation under either policy). by_id_'s
        // node is made first, so nothing can fail after the add.
        std::lock_guard<std::mutex> lock(mutex_);
        by_id_.reserve(by_id_.size() + 1);
        auto node = by_id_.extract(by_id_.emplace(no_connection, con).first);
        if (con->initial_data) {
          // The handshake handler's Data, moved into the registry entry.
          const std::shared_ptr<void> data = std::move(con->initial_data);
          id = registry_.add(std::move(sender), std::move(*static_cast<Data*>(data.get())));
        } else {
          id = registry_.add(std::move(sender));
        }
        node.key() = id;
        by_id_.insert(std::move(node));
        con->wsreg_id.store(id, std::memory_order_release);
      } catch (...) {  // std::bad_alloc: never registered
        internal_error(*con);
        return;
      }
      if (retired_.load(std::memory_order_acquire)) {
        // The Server's destructor ran meanwhile (embedded, before its
        // shutdown completed): take the registration back.
        if (con->wsreg_id.exchange(no_connection, std::memory_order_acq_rel) != no_connection) {
          remove(id);
        }
        return;
      }
      guard(*con, on_open_, id);
    }

    // Frees the parsed upgrade request and the response's headers, which
    // nothing reads once the WebSocket is open (websocketpp 0.8.2 reads them
    // after the open only to log a failed handshake, which this no longer
    // is; the handshake handler saw them in on_validate): about 1 KiB per
    // idle connection (docs/benchmarks.md, "Memory by component"). Moved
    // out, they are left empty (their maps, strings and buffer pointer
    // moved-from) and are freed here. The objects are not const
    // (websocketpp's accessors only return them so).
    static void release_handshake(Connection& con) noexcept {
      using Request = typename Connection::request_type;
      using Response = typename Connection::response_type;
      const Request request(std::move(const_cast<Request&>(con.get_request())));
      const Response response(std::move(const_cast<Response&>(con.get_response())));
    }

    // Close and fail both end here, so an entry is removed however the
    // connection ends; wsreg_id is exchanged so it is removed exactly once.
    void on_end(Hdl hdl, bool failed) {
      ConnectionPtr con = connection(hdl);
      if (!con) return;
      release_slots(*con);
      const ConnectionId id = con->wsreg_id.exchange(no_connection, std::memory_order_acq_rel);
      if (id == no_connection) {  // never registered, or taken by retire()
        if (failed && con->accepted && !con->rejected && !con->opened.load()) {
          detail::ServerCounters::bump(counters_->handshakes_failed);
          if constexpr (is_tls) {
            namespace socket = ::websocketpp::transport::asio::socket;
            if (con->get_ec() == socket::make_error_code(socket::error::tls_handshake_failed)) {
              detail::ServerCounters::bump(counters_->tls_handshake_failures);
            }
          }
        }
        return;
      }
      remove(id);
      detail::release_queue(*con);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        by_id_.erase(id);
      }
      namespace status = ::websocketpp::close::status;
      switch (con->get_local_close_code()) {
        case status::message_too_big:
          detail::ServerCounters::bump(counters_->oversize_closes);
          break;
        case status::protocol_error:
          detail::ServerCounters::bump(counters_->protocol_error_closes);
          break;
        case status::invalid_payload:
          detail::ServerCounters::bump(counters_->invalid_payload_closes);
          break;
        default:
          break;
      }
      if (!retired_.load(std::memory_order_acquire)) guard(*con, on_close_, id);
    }

    // The last thing websocketpp does with a connection: no handler of it
    // runs after this. Only now does it stop counting for shutdown.
    void on_terminated(ConnectionPtr con) {
      release_slots(*con);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        live_.erase(con.get());
      }
      maybe_complete();
    }

    void on_message(Hdl hdl, typename Endpoint::message_ptr message) {
      ConnectionPtr con = connection(hdl);
      if (!con || retired_.load(std::memory_order_acquire)) return;
      const ConnectionId id = con->wsreg_id.load(std::memory_order_acquire);
      if (id == no_connection) return;
      con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
      if (!on_message_) return;
      // websocketpp delivers only text and binary here (RFC 6455 section
      // 5.6), text checked for UTF-8 (with hybi13_fixes.hpp, to the end).
      std::optional<Payload> payload;
      try {
        payload.emplace(static_cast<Opcode>(message->get_opcode()),
                        std::move(message->get_raw_payload()));
      } catch (...) {  // std::bad_alloc
        internal_error(*con);
        return;
      }
      guard(*con, on_message_, id, std::move(*payload));
      if (options_.flush_after_message) {
        try {
          registry_.flush();
        } catch (...) {  // std::bad_alloc while queueing the flush
          internal_error(*con);
        }
      }
    }

    // websocketpp answers each ping with a pong (RFC 6455 section 5.5.3),
    // queued behind whatever it already holds for the connection. A client
    // that floods pings and reads nothing would grow that queue without
    // bound, so once websocketpp holds more than the data window plus
    // pong_backlog_bytes, a ping is not answered: a pong is already waiting
    // to go out, and section 5.5.3 lets an endpoint answer only the most
    // recent of several pings it has not yet answered. Counted in
    // ServerStats::pongs_skipped.
    static constexpr std::size_t pong_backlog_bytes = 4096;

    bool on_ping(Hdl hdl, std::string) {
      ConnectionPtr con = connection(hdl);
      if (!con) return true;
      con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
      if (con->get_buffered_amount() > detail::write_window_bytes(options_) + pong_backlog_bytes) {
        detail::ServerCounters::bump(counters_->pongs_skipped);
        return false;
      }
      return true;
    }

    void on_pong(Hdl hdl, std::string) {
      if (ConnectionPtr con = connection(hdl)) {
        con->last_arrival_ns.store(now_ns(), std::memory_order_relaxed);
      }
    }

    void on_http(Hdl hdl) {
      ConnectionPtr con = connection(hdl);
      if (!con) return;
      protect_http(con, [&] {
        answer_http(*con);
        return true;
      });
    }

    void answer_http(Connection& con) {
      const auto& request = con.get_request();
      if (on_http_ && !retired_.load(std::memory_order_acquire)) {
        HttpRequest asked{request.get_method(), request.get_uri()};
        HttpResponse answer;
        bool answered = false;
        bool failed = false;  // it threw, or gave a header that cannot be sent
        try {
          answered = on_http_(asked, answer);
          failed = answered && !detail::sendable_headers(answer);
        } catch (...) {
          answered = failed = true;
        }
        if (failed) {
          detail::ServerCounters::bump(counters_->handler_exceptions);
          answer = HttpResponse{500, "text/plain; charset=utf-8", "internal error\n"};
        }
        if (answered) {
          con.set_status(static_cast<::websocketpp::http::status_code::value>(answer.status));
          if (!answer.content_type.empty()) con.append_header("Content-Type", answer.content_type);
          for (const auto& [name, value] : answer.headers) con.append_header(name, value);
          con.set_body(std::move(answer.body));
          return;
        }
      }
      if (!options_.metrics_path.empty() && request.get_method() != "GET" &&
          request.get_uri() == options_.metrics_path) {
        // RFC 9110 section 15.5.6: a 405 says which methods the target has.
        con.set_status(::websocketpp::http::status_code::method_not_allowed);
        con.append_header("Allow", "GET");
        con.append_header("Content-Type", "text/plain; charset=utf-8");
        con.set_body("method not allowed\n");
        return;
      }
      if (!options_.metrics_path.empty() && request.get_method() == "GET" &&
          request.get_uri() == options_.metrics_path && !retired_.load(std::memory_order_acquire)) {
        con.set_status(::websocketpp::http::status_code::ok);
        con.append_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        // The _approx reads never wait: under ActorPolicy a busy actor must
        // not hold an io thread (and every connection on it) hostage.
        con.set_body(prometheus_text(registry_.stats_approx(), registry_.size_approx()) +
                     prometheus_text(counters_->snapshot()) + registry_.cluster_metrics());
        return;
      }
      con.set_status(::websocketpp::http::status_code::not_found);
      con.set_body("not found\n");
    }

    // Does on the connection's strand what other threads asked for
    // (ConnectionState::requests), checking the connection's state first: a
    // request queued before the connection changed state is ignored. Close
    // requests stay set, so the sender refuses everything after them.
    void on_interrupt(Hdl hdl) {
      ConnectionPtr con = connection(hdl);
      if (!con) return;
      try {
        act_on_requests(con);
      } catch (...) {  // std::bad_alloc (a close or ping frame): drop the connection
        detail::ServerCounters::bump(counters_->internal_errors);
        try {
          con->terminate(::websocketpp::error::make_error_code(::websocketpp::error::general));
        } catch (...) {  // nothing left to do; its close timer or the peer ends it
        }
      }
    }

    void act_on_requests(const ConnectionPtr& con) {
      const std::uint8_t requests = con->requests.fetch_and(
          static_cast<std::uint8_t>(~(request_ping | request_drain)), std::memory_order_acq_rel);
      namespace state = ::websocketpp::session::state;
      namespace status = ::websocketpp::close::status;
      namespace error = ::websocketpp::error;
      const auto now = con->get_state();
      if (now == state::closed) return;
      if constexpr (is_tls) {
        // A TLS handshake in progress is an operation on the socket that
        // websocketpp's terminate (an async TLS shutdown) would not end:
        // cancel the socket's operations first, as websocketpp's own
        // handshake timers do.
        const bool ends_handshake =
            (requests & (request_terminate | request_shutdown_close)) ||
            ((requests & request_handshake_timeout) &&
             !con->upgrading.load(std::memory_order_acquire));
        if (now == state::connecting && ends_handshake) {
          std::error_code ignored;
          con->get_raw_socket().cancel(ignored);
        }
      }
      if (requests & request_terminate) {
        con->terminate(error::make_error_code(error::close_handshake_timeout));
        return;
      }
      if (now == state::connecting) {
        if (requests & request_shutdown_close) {
          con->terminate(error::make_error_code(error::operation_canceled));
        } else if ((requests & request_handshake_timeout) &&
                   !con->upgrading.load(std::memory_order_acquire)) {
          detail::ServerCounters::bump(counters_->handshake_timeouts);
          con->terminate(error::make_error_code(error::open_handshake_timeout));
        }
        return;
      }
      if (now != state::open) return;  // closing: its close timer or the shutdown deadline ends it
      if ((requests & request_shutdown_close) && lanes_ && lanes_->pending(*con)) {
        // Data for this connection still waits in a write lane, and the
        // close frame must follow it: asked again (the close bit stays
        // set), behind the lane's task, which was posted before.
        con->requests.fetch_or(requests & (request_ping | request_drain), std::memory_order_acq_rel);
        con->interrupt();
        return;
      }
      // The adapter's send queue first: refilled, handed over before a
      // shutdown close, or released before another close.
      if (const auto dropped =
              detail::service_queue(con, requests, detail::write_window_bytes(options_),
                                    lanes_.get())) {
        const ConnectionId id = con->wsreg_id.load(std::memory_order_acquire);
        if (id != no_connection && !retired_.load(std::memory_order_acquire)) {
          guard(*con, on_drop_, id, *dropped);
        }
      }
      std::error_code ec;
      if (requests & request_shutdown_close) {
        con->set_close_handshake_timeout(grace_left_ms());
        con->close(status::going_away, "server shutdown", ec);
      } else if (requests & request_slow_close) {
        con->close(status::policy_violation, "slow consumer", ec);
        if (!ec) detail::ServerCounters::bump(counters_->slow_consumer_closes);
      } else if (requests & request_idle_close) {
        // A peer that sent nothing, not even a pong, will not answer the
        // close either: wait one ping interval at most, not the full close
        // timeout.
        const auto reply_window = options_.ping_interval.count() > 0
                                      ? std::min(options_.ping_interval,
                                                 options_.close_handshake_timeout)
                                      : options_.close_handshake_timeout;
        con->set_close_handshake_timeout(
            std::max<long>(1, static_cast<long>(reply_window.count())));
        con->close(status::going_away, "idle timeout", ec);
        if (!ec) detail::ServerCounters::bump(counters_->idle_closes);
      } else if (requests & request_ping) {
        con->ping("", ec);
        if (!ec) detail::ServerCounters::bump(counters_->pings_sent);
      }
    }

    // --- errors ------------------------------------------------------------

    // Calls an application handler; what it throws closes that connection
    // with 1011 instead of unwinding into websocketpp and the io_context.
    template <class Handler, class... Args>
    void guard(Connection& con, Handler& handler, Args&&... args) {
      if (!handler) return;
      try {
        handler(std::forward<Args>(args)...);
      } catch (...) {
        detail::ServerCounters::bump(counters_->handler_exceptions);
        close(con, ::websocketpp::close::status::internal_endpoint_error, "internal error");
      }
    }

    // Runs the Server's own part of an HTTP exchange (validate, answer):
    // an exception answers 500 and refuses the upgrade.
    template <class F>
    bool protect_http(const ConnectionPtr& con, F&& f) {
      try {
        return f();
      } catch (...) {  // std::bad_alloc
        detail::ServerCounters::bump(counters_->internal_errors);
        try {
          con->set_status(::websocketpp::http::status_code::internal_server_error);
          con->set_body(std::string());
        } catch (...) {  // nothing more to do: websocketpp answers what it has
        }
        return false;
      }
    }

    // The Server's own code failed on an open connection: 1011, counted.
    void internal_error(Connection& con) {
      detail::ServerCounters::bump(counters_->internal_errors);
      close(con, ::websocketpp::close::status::internal_endpoint_error, "internal error");
    }

    // Closes with websocketpp's error_code overload; if even that fails
    // (not open, or no memory for the close frame), drops the connection.
    void close(Connection& con, ::websocketpp::close::status::value code, const char* reason) {
      std::error_code ec;
      try {
        con.close(code, reason, ec);
      } catch (...) {
        ec = ::websocketpp::error::make_error_code(::websocketpp::error::general);
      }
      if (ec && con.get_state() == ::websocketpp::session::state::open) {
        con.terminate(ec);
      }
    }

    void remove(ConnectionId id) {
      try {
        registry_.remove(id);
      } catch (...) {  // std::bad_alloc while queueing the removal
        detail::ServerCounters::bump(counters_->internal_errors);
      }
    }

    // --- shutdown bookkeeping ----------------------------------------------

    // An accept, timer wait or the shutdown step has finished.
    void finish_pending() {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      maybe_complete();
    }

    void maybe_complete() {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!shutting_down_.load(std::memory_order_relaxed) || !live_.empty() || pending_ != 0 ||
          done_set_) {
        return;
      }
      complete_locked();
    }

    // The handlers are posted before the future is set: once it is, the
    // application may stop and destroy the io_context.
    void complete_locked() noexcept {
      done_set_ = true;
      for (auto& handler : done_handlers_) {
        try {
          asio::post(io_, std::move(handler));
        } catch (...) {  // std::bad_alloc: that handler is lost, counted
          detail::ServerCounters::bump(counters_->internal_errors);
        }
      }
      done_handlers_.clear();
      done_.set_value();
    }

    // Serialises the accept loop, the sweep and the shutdown step.
    asio::strand<asio::io_context::executor_type> strand_;
    asio::steady_timer accept_timer_;    // strand_ only
    asio::steady_timer sweep_timer_;     // strand_ only
    asio::steady_timer shutdown_timer_;  // strand_ only
    std::chrono::milliseconds backoff_{0};  // strand_ only
    std::size_t paused_accepts_ = 0;        // strand_ only: slots waiting for accept_timer_
    std::vector<std::pair<ConnectionPtr, Request>> sweep_work_;  // strand_ only
    // Connections holding a max_connections slot (ConnectionState::admitted).
    std::atomic<std::size_t> admitted_{0};
    // This mutex synchronizes all access to per_address_.
    std::mutex address_mutex_;
    // Connections counted per peer address, for max_connections_per_address;
    // an address leaves the map when its last connection ends.
    std::unordered_map<asio::ip::address, std::size_t> per_address_;
    // Set once by retire(): no handler calls the registry or the
    // application after it.
    std::atomic<bool> retired_{false};

    // This mutex synchronizes all access to live_, by_id_, deadline_, pending_,
    // done_set_, done_handlers_ and done_, and every write of
    // shutting_down_ (which handlers may also read without it).
    mutable std::mutex mutex_;
    // Every connection from get_connection() until its termination handler.
    std::unordered_map<const Connection*, std::weak_ptr<Connection>> live_;
    // The registered ones by id, for dropped_messages().
    std::unordered_map<ConnectionId, std::weak_ptr<Connection>> by_id_;
    std::atomic<bool> shutting_down_{false};
    Clock::time_point deadline_ = Clock::time_point::max();
    int pending_ = 0;  // accepts, timer waits and shutdown steps in flight
    bool done_set_ = false;
    std::vector<ShutdownHandler> done_handlers_;
    std::promise<void> done_;
    std::shared_future<void> done_future_ = done_.get_future().share();
  };

  // Declared first: destroyed last, after core_ and the threads.
  std::unique_ptr<asio::io_context> owned_io_;  // null when embedded
  std::shared_ptr<Core> core_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_SERVER_HPP
