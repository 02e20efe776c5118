// examples/common/wait_for_signal.hpp: block until SIGINT or SIGTERM.
#ifndef WSREG_EXAMPLES_WAIT_FOR_SIGNAL_HPP
#define WSREG_EXAMPLES_WAIT_FOR_SIGNAL_HPP

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <csignal>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace examples {

/// Blocks the calling thread until the process receives SIGINT or SIGTERM;
/// returns the signal number. Uses Asio's signal_set, so the handler runs
/// as ordinary code, not in signal context.
inline int wait_for_signal() {
  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  int received = 0;
  signals.async_wait([&](const std::error_code&, int signal) { received = signal; });
  io.run();
  return received;
}

}  // namespace examples

#endif
