// raw_wspp_server: the plain websocketpp variant of the end-to-end broadcast
// benchmark, with no wsreg in it. It is websocketpp's own
// examples/broadcast_server pattern: a std::set of connection_hdl under a
// mutex, filled by the open handler and emptied by the close handler, and a
// ticker that walks the set and calls server.send(hdl, text, opcode::text,
// ec) for each. Like every variant it skips a connection whose queued bytes
// would pass --max-buffered-bytes (websocketpp's get_buffered_amount()).
//
// Usage: raw_wspp_server [--address 127.0.0.1] [--port 0] [--threads 1]
//          [--rate 10] [--max-buffered-bytes 1048576]
//          [--read-buffer-size 16384|4096|1024] [--start-after-connections 0]
//          [--accepts 1]
// Prints "raw_wspp_server: listening on port N (...)" when ready; stops on
// SIGINT or SIGTERM and prints "stopped; sent S, dropped D".
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/example_options.hpp"
#include "common/periodic_thread.hpp"
#include "common/wait_for_signal.hpp"  // defines ASIO_STANDALONE first
#include "tick.hpp"

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

namespace ws = websocketpp;

/// websocketpp's default thread-safe Asio config with a smaller read buffer
/// per connection (the default is 16 KiB, a member array of every
/// connection), to measure what that buffer costs an idle connection.
template <std::size_t Bytes>
struct SmallReadBufferConfig : ws::config::asio {
  using type = SmallReadBufferConfig;
  static const std::size_t connection_read_buffer_size = Bytes;
};

/// The command line.
struct Arguments {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t threads = 1;
  double rate_hz = 10;
  std::size_t max_buffered_bytes = 1024 * 1024;
  std::size_t read_buffer_size = 16384;
  std::size_t start_after_connections = 0;
  /// Accept operations kept outstanding; 1 is websocketpp's own loop. A
  /// diagnostic for the connect phase under load (see README.md).
  std::size_t accepts = 1;
};

/// The broadcast server of websocketpp's examples/broadcast_server, with a
/// ticker thread instead of relayed messages.
///
/// Thread safety: start(), tick() and stop() may be called from any thread;
/// the handlers run on the io threads.
template <class Config>
class RawBroadcastServer {
 public:
  using Endpoint = ws::server<Config>;

  explicit RawBroadcastServer(const Arguments& args) : args_(args) {
    endpoint_.clear_access_channels(ws::log::alevel::all);
    endpoint_.clear_error_channels(ws::log::elevel::all);
    endpoint_.init_asio();
    endpoint_.set_reuse_addr(true);
    using std::placeholders::_1;
    endpoint_.set_open_handler(std::bind(&RawBroadcastServer::on_open, this, _1));
    endpoint_.set_close_handler(std::bind(&RawBroadcastServer::on_close, this, _1));
  }

  /// Listens, starts accepting and starts the io threads. Returns the bound
  /// port, or 0 with `ec` set.
  std::uint16_t start(std::error_code& ec) {
    const auto ip = asio::ip::make_address(args_.address, ec);
    if (ec) return 0;
    endpoint_.listen(asio::ip::tcp::endpoint(ip, args_.port), ec);
    if (ec) return 0;
    const auto local = endpoint_.get_local_endpoint(ec);
    if (ec) return 0;
    // Each start_accept() is one pending accept that restarts itself when it
    // completes (websocketpp's handle_accept), so K calls keep K pending.
    for (std::size_t i = 0; i < args_.accepts && !ec; ++i) endpoint_.start_accept(ec);
    if (ec) return 0;
    for (std::size_t i = 0; i < args_.threads; ++i) threads_.emplace_back([this] { endpoint_.run(); });
    return local.port();
  }

  /// One tick to every connection in the set, as websocketpp's example does
  /// it: under the set's mutex (send() only queues and posts the write, it
  /// does no I/O), one send per connection, each copying and framing the text.
  /// Skipped until --start-after-connections connections are open.
  void tick(std::uint64_t seq) {
    e2e::TickText text;
    const std::string payload(text.format(seq));
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_) {
      if (connections_.size() < args_.start_after_connections) return;
      started_ = true;
    }
    for (const ws::connection_hdl& hdl : connections_) {
      std::error_code ec;
      const auto con = endpoint_.get_con_from_hdl(hdl, ec);
      if (ec) {
        ++dropped_;
        continue;
      }
      const std::size_t buffered = con->get_buffered_amount();
      if (buffered != 0 && buffered + payload.size() > args_.max_buffered_bytes) {
        ++dropped_;
        continue;
      }
      endpoint_.send(hdl, payload, ws::frame::opcode::text, ec);
      if (ec) {
        ++dropped_;
      } else {
        ++sent_;
      }
    }
  }

  /// Stops accepting, closes every connection with 1001 and gives them
  /// `grace` to finish, then stops the io_context and joins its threads.
  void stop(std::chrono::milliseconds grace) {
    asio::post(endpoint_.get_io_service(), [this] {
      std::error_code ignored;
      endpoint_.stop_listening(ignored);
      std::vector<ws::connection_hdl> open;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        open.assign(connections_.begin(), connections_.end());
      }
      for (const auto& hdl : open) endpoint_.close(hdl, ws::close::status::going_away, "", ignored);
    });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      emptied_.wait_for(lock, grace, [this] { return connections_.empty(); });
    }
    endpoint_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  /// Sends and drops so far (drops: over the bound, or refused by websocketpp).
  /// Call from the ticker thread or after stop().
  std::uint64_t sent() const { return sent_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  void on_open(ws::connection_hdl hdl) {
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.insert(std::move(hdl));
  }

  void on_close(ws::connection_hdl hdl) {
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.erase(hdl);
    if (connections_.empty()) emptied_.notify_all();
  }

  const Arguments args_;
  Endpoint endpoint_;
  std::vector<std::thread> threads_;
  // This mutex synchronizes all access to connections_.
  std::mutex mutex_;
  std::set<ws::connection_hdl, std::owner_less<ws::connection_hdl>> connections_;
  std::condition_variable emptied_;
  std::uint64_t sent_ = 0;     // ticker thread only
  std::uint64_t dropped_ = 0;  // ticker thread only
  bool started_ = false;       // ticker thread only: --start-after-connections reached
};

template <class Config>
int run(examples::StopSignals& signals, const Arguments& args) {
  RawBroadcastServer<Config> server(args);
  std::error_code ec;
  const std::uint16_t port = server.start(ec);
  if (ec) {
    std::fprintf(stderr, "raw_wspp_server: cannot listen on %s:%u: %s\n", args.address.c_str(),
                 static_cast<unsigned>(args.port), ec.message().c_str());
    return 1;
  }
  std::printf(
      "raw_wspp_server: listening on port %u (threads %zu, rate %g Hz, max-buffered-bytes %zu, "
      "read-buffer-size %zu)\n",
      static_cast<unsigned>(port), args.threads, args.rate_hz, args.max_buffered_bytes,
      args.read_buffer_size);
  std::fflush(stdout);

  std::unique_ptr<examples::PeriodicThread> ticker;  // --rate 0: never tick
  if (args.rate_hz > 0) {
    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / args.rate_hz));
    ticker = std::make_unique<examples::PeriodicThread>(
        period, [&server](std::uint64_t seq) { server.tick(seq); });
  }
  signals.wait();
  if (ticker) ticker->stop();
  server.stop(std::chrono::seconds(2));
  std::printf("raw_wspp_server: stopped; sent %llu, dropped %llu\n",
              static_cast<unsigned long long>(server.sent()),
              static_cast<unsigned long long>(server.dropped()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"plain websocketpp broadcast server (websocketpp's example pattern), ticks to all"};
  Arguments args;
  app.add_option("--address", args.address, "IP address to listen on")->capture_default_str();
  app.add_option("--port", args.port, "TCP port to listen on (0: any free port)")
      ->capture_default_str();
  app.add_option("--threads", args.threads, "io threads running the server")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--rate", args.rate_hz, "ticks per second to every connection; 0: never tick")
      ->check(CLI::Range(0.0, 1'000'000.0))
      ->capture_default_str();
  app.add_option("--max-buffered-bytes", args.max_buffered_bytes,
                 "per-connection bound on queued bytes; a tick past it is dropped")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--read-buffer-size", args.read_buffer_size,
                 "websocketpp's connection_read_buffer_size (16384 is its default)")
      ->check(CLI::IsMember({std::size_t{16384}, std::size_t{4096}, std::size_t{1024}}))
      ->capture_default_str();
  app.add_option("--start-after-connections", args.start_after_connections,
                 "tick only once this many connections are open (0: from the start)")
      ->capture_default_str();
  app.add_option("--accepts", args.accepts,
                 "accept operations kept pending (1: websocketpp's own accept loop)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  examples::StopSignals signals;  // before any thread and before the port is printed
  switch (args.read_buffer_size) {
    case 4096:
      return run<SmallReadBufferConfig<4096>>(signals, args);
    case 1024:
      return run<SmallReadBufferConfig<1024>>(signals, args);
    default:
      return run<ws::config::asio>(signals, args);  // websocketpp's own default config
  }
}
