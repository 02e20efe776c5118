// examples/common/wait_for_signal.hpp: catch SIGINT and SIGTERM from the start.
#ifndef WSREG_EXAMPLES_WAIT_FOR_SIGNAL_HPP
#define WSREG_EXAMPLES_WAIT_FOR_SIGNAL_HPP

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <csignal>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace examples {

/// Takes over SIGINT and SIGTERM when constructed, so a signal that arrives
/// before wait() (say, right after the program printed its port) is kept,
/// not fatal. Uses Asio's signal_set: the handler runs as ordinary code, not
/// in signal context. Construct it first, before any thread starts. Not
/// thread-safe.
class StopSignals {
 public:
  StopSignals() : signals_(io_, SIGINT, SIGTERM) {
    signals_.async_wait([this](const std::error_code&, int signal) { received_ = signal; });
  }

  /// Blocks until SIGINT or SIGTERM (at once if one already came); returns
  /// the signal number.
  int wait() {
    io_.run();
    return received_;
  }

 private:
  asio::io_context io_;
  asio::signal_set signals_;
  int received_ = 0;
};

}  // namespace examples

#endif
