// uws_server.cpp (uws_bench_server): the uWebSockets peer of the end-to-end
// broadcast benchmark, with no wsreg in it. uWebSockets' own way to reach
// many sockets: every connection subscribes to one topic in its open
// handler and each tick is app.publish()ed to it from the loop thread.
// Backpressure is uWebSockets' own: maxBackpressure = --max-buffered-bytes
// with closeOnBackpressureLimit off, so uWS drops a frame for a socket that
// already buffers more than the bound (and calls the dropped handler).
// Compression off, no idle timeout and no pings, as every variant.
//
// --threads N: N uWS::Apps, each on a thread and event loop of its own,
// listening on the same port (SO_REUSEPORT: the kernel spreads the
// connections over them). The ticker thread defers one publish into every
// loop (Loop::defer) and waits until each has run before it sleeps to the
// next tick, so the loops never queue ticks behind each other.
//
// Usage: uws_bench_server [--address 127.0.0.1] [--port 0] [--threads 1]
//          [--rate 10] [--max-buffered-bytes 1048576] [--start-after-connections 0]
// Prints "uws_bench_server: listening on port N (...)" when ready; stops on
// SIGINT or SIGTERM (1001 to every connection, at most 2 s) and prints
// "stopped; sent S, dropped D".
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <App.h>  // uWebSockets (UWS_DIR/src), on uSockets (USOCKETS_DIR/src)
#include <CLI/CLI.hpp>

#include "common/periodic_thread.hpp"
#include "tick.hpp"

namespace {

/// The command line, as every variant takes it.
struct Arguments {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t threads = 1;
  double rate_hz = 10;
  std::size_t max_buffered_bytes = 1024 * 1024;
  std::size_t start_after_connections = 0;
};

struct PerSocket {};  // uWS user data: none needed
using Socket = uWS::WebSocket<false, true, PerSocket>;
constexpr std::string_view topic = "ticks";

/// One uWS::App with its own thread and event loop.
///
/// Thread safety: publish() and begin_stop() and force_close() may be called
/// from any thread once listening() returned a port; they defer the work to
/// the loop. sent() and dropped() only after join().
class Shard {
 public:
  Shard(const Arguments& args, int port, std::atomic<std::size_t>& open_count)
      : args_(args), open_count_(open_count), thread_([this, port] { run(port); }) {}

  /// Blocks until the App listens: its port, or 0 if it could not listen.
  int listening() {
    std::unique_lock<std::mutex> lock(mutex_);
    state_changed_.wait(lock, [this] { return state_ != State::starting; });
    return port_;
  }

  /// Publishes `text` on the loop and counts down `done` once it has; `text`
  /// must live until then (publish() copies it).
  void publish(std::string_view text, std::latch& done) {
    const bool deferred = defer([this, text, &done] {
      offered_ += app_->numSubscribers(topic);
      app_->publish(topic, text, uWS::OpCode::TEXT, false);
      done.count_down();
    });
    if (!deferred) done.count_down();  // the loop has ended
  }

  /// Stops listening and closes every connection with 1001; the loop ends
  /// once the last socket is gone.
  void begin_stop() {
    defer([this] {
      us_listen_socket_close(0, listen_socket_);
      // end() runs the close handler at once, which erases from open_.
      const std::vector<Socket*> open(open_.begin(), open_.end());
      for (Socket* ws : open) ws->end(1001, "going away");
    });
  }

  /// Waits until the loop has ended or `deadline` passed; true if it ended.
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    return state_changed_.wait_until(lock, deadline, [this] { return state_ == State::ended; });
  }

  /// Closes every socket left at once (TCP close, no close frame).
  void force_close() {
    defer([this] { app_->close(); });
  }

  void join() { thread_.join(); }

  /// Frames queued on a connection and frames uWS dropped over the bound.
  std::uint64_t sent() const { return offered_ - dropped_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  enum class State { starting, running, ended };

  void run(int port) {
    const auto bound = std::min<std::size_t>(args_.max_buffered_bytes, UINT_MAX);
    uWS::App app;
    app.ws<PerSocket>("/*", {
        .compression = uWS::DISABLED,
        .maxPayloadLength = 1024 * 1024,  // as wsreg's ServerOptions::max_message_size
        .idleTimeout = 0,                 // no timeout, hence no pings: the others send none
        .maxBackpressure = static_cast<unsigned>(bound),
        .closeOnBackpressureLimit = false,  // drop the frame, keep the connection
        .resetIdleTimeoutOnSend = false,
        .sendPingsAutomatically = false,
        .open = [this](Socket* ws) {
          ws->subscribe(topic);
          open_.insert(ws);
          open_count_.fetch_add(1, std::memory_order_relaxed);
        },
        .dropped = [this](Socket*, std::string_view, uWS::OpCode) { ++dropped_; },
        .close = [this](Socket* ws, int, std::string_view) {
          open_.erase(ws);
          open_count_.fetch_sub(1, std::memory_order_relaxed);
        },
    });
    // One App: its port alone, as the other variants (a second process
    // cannot bind it). Several: SO_REUSEPORT, which uSockets sets by default.
    const int options = args_.threads == 1 ? LIBUS_LISTEN_EXCLUSIVE_PORT : LIBUS_LISTEN_DEFAULT;
    app.listen(args_.address, port, options,
               [this](us_listen_socket_t* s) { listen_socket_ = s; });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      app_ = &app;
      loop_ = uWS::Loop::get();
      port_ = listen_socket_ != nullptr
                  ? us_socket_local_port(0, reinterpret_cast<us_socket_t*>(listen_socket_))
                  : 0;
      state_ = listen_socket_ != nullptr ? State::running : State::ended;
    }
    state_changed_.notify_all();
    if (listen_socket_ == nullptr) return;
    app.run();  // until the listen socket and every connection are closed
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = State::ended;  // before app and loop go: defer() no longer touches them
    }
    state_changed_.notify_all();
  }

  /// Runs `f` on the loop, unless the loop has ended; whether it will.
  bool defer(uWS::MoveOnlyFunction<void()> f) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ != State::running) return false;
    loop_->defer(std::move(f));
    return true;
  }

  const Arguments& args_;
  std::atomic<std::size_t>& open_count_;  // connections open over all shards
  // This mutex synchronizes all access to state_, port_, app_ and loop_ from
  // other threads, so that nothing is deferred into a loop that has ended.
  std::mutex mutex_;
  std::condition_variable state_changed_;
  State state_ = State::starting;
  int port_ = 0;
  uWS::App* app_ = nullptr;
  uWS::Loop* loop_ = nullptr;
  // Loop thread only:
  us_listen_socket_t* listen_socket_ = nullptr;
  std::unordered_set<Socket*> open_;  // to close them on stop
  std::uint64_t offered_ = 0;         // subscribers at each publish
  std::uint64_t dropped_ = 0;         // dropped-handler calls
  std::thread thread_;                // last: starts after the members above exist
};

/// With --port 0 and several Apps, all need the same port: binds a
/// placeholder socket with SO_REUSEPORT to a free one (uSockets sets
/// SO_REUSEPORT only for a nonzero port), kept bound, not listening, until
/// the Apps listen. Returns the fd (or -1) and sets `port`.
int reserve_port(const std::string& address, int& port) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (::getaddrinfo(address.c_str(), "0", &hints, &result) != 0) return -1;
  const int fd = ::socket(result->ai_family, SOCK_STREAM, 0);
  const int on = 1;
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  const bool ok = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
                  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0 &&
                  ::bind(fd, result->ai_addr, result->ai_addrlen) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0;
  ::freeaddrinfo(result);
  if (!ok) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(&bound);  // port at the same offset in v6
  port = ntohs(in->sin_port);
  return fd;
}

int run(const Arguments& args, const sigset_t& stop_signals) {
  int port = args.port;
  int placeholder = -1;
  if (port == 0 && args.threads > 1) {
    placeholder = reserve_port(args.address, port);
    if (placeholder < 0) {
      std::fprintf(stderr, "uws_bench_server: no free port on %s\n", args.address.c_str());
      return 1;
    }
  }
  std::atomic<std::size_t> open_count{0};
  std::vector<std::unique_ptr<Shard>> shards;
  bool listening = true;
  for (std::size_t i = 0; i < args.threads; ++i) {
    shards.push_back(std::make_unique<Shard>(args, port, open_count));
    const int bound = shards.back()->listening();
    if (bound == 0) {
      listening = false;
      break;
    }
    port = bound;  // the same, or the one --port 0 got
  }
  if (placeholder >= 0) ::close(placeholder);
  if (!listening) {
    std::fprintf(stderr, "uws_bench_server: cannot listen on %s:%u\n", args.address.c_str(),
                 static_cast<unsigned>(args.port));
    for (auto& shard : shards) shard->begin_stop();
    for (auto& shard : shards) shard->join();
    return 1;
  }
  std::printf(
      "uws_bench_server: listening on port %d (uWebSockets, threads %zu, rate %g Hz, "
      "max-buffered-bytes %zu)\n",
      port, args.threads, args.rate_hz, args.max_buffered_bytes);
  std::fflush(stdout);

  // --rate 0: no ticker. Ticks before --start-after-connections connections
  // are open are skipped (seq goes on). Each tick is formatted once, handed
  // to every loop, and the ticker waits for all of them.
  bool started = false;  // ticker thread only
  e2e::TickText text;    // ticker thread only
  std::unique_ptr<examples::PeriodicThread> ticker;
  if (args.rate_hz > 0) {
    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / args.rate_hz));
    ticker = std::make_unique<examples::PeriodicThread>(period, [&](std::uint64_t seq) {
      if (!started) {
        if (open_count.load(std::memory_order_relaxed) < args.start_after_connections) return;
        started = true;
      }
      const std::string_view tick = text.format(seq);
      std::latch done(static_cast<std::ptrdiff_t>(shards.size()));
      for (auto& shard : shards) shard->publish(tick, done);
      done.wait();
    });
  }

  int signal = 0;
  ::sigwait(&stop_signals, &signal);
  ticker.reset();  // stops and joins: no publish after this
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& shard : shards) shard->begin_stop();
  for (auto& shard : shards) {
    if (!shard->wait_until(deadline)) shard->force_close();
  }
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;
  for (auto& shard : shards) {
    shard->join();
    sent += shard->sent();
    dropped += shard->dropped();
  }
  std::printf("uws_bench_server: stopped; sent %llu, dropped %llu\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(dropped));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"uWebSockets broadcast server (publish to one topic), ticks to all"};
  Arguments args;
  app.add_option("--address", args.address, "IP address to listen on")->capture_default_str();
  app.add_option("--port", args.port, "TCP port to listen on (0: any free port)")
      ->capture_default_str();
  app.add_option("--threads", args.threads, "uWS Apps, each with its own thread and loop")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--rate", args.rate_hz, "ticks per second to every connection; 0: never tick")
      ->check(CLI::Range(0.0, 1'000'000.0))
      ->capture_default_str();
  app.add_option("--max-buffered-bytes", args.max_buffered_bytes,
                 "uWS maxBackpressure: a frame for a socket buffering more is dropped")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--start-after-connections", args.start_after_connections,
                 "tick only once this many connections are open (0: from the start)")
      ->capture_default_str();
  app.failure_message(CLI::FailureMessage::help);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // SIGINT and SIGTERM blocked before any thread starts (all inherit the
  // mask), then taken with sigwait(): a signal that comes early is kept.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return run(args, stop_signals);
}
