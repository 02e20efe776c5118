// wsreg/websocketpp/shutdown_future.hpp: the completion of Server::shutdown, which
// refuses to be waited for on a thread that would have to complete it.
#ifndef WSREG_WEBSOCKETPP_SHUTDOWN_FUTURE_HPP
#define WSREG_WEBSOCKETPP_SHUTDOWN_FUTURE_HPP

#include <cassert>
#include <chrono>
#include <future>
#include <stdexcept>
#include <utility>

#include "wsreg/websocketpp/config.hpp"  // defines ASIO_STANDALONE first

#include <asio/io_context.hpp>

namespace wsreg::wspp {

/// Becomes ready when a Server's shutdown has completed: every connection
/// the Server accepted has ended (its close or fail handler has returned),
/// the accept loop and the sweep have stopped, and no handler of the Server
/// can run again. Then the Server may be destroyed.
///
/// Blocking on an io thread: shutdown completes on the io_context's threads,
/// so a blocking wait (wait(), or wait_for() with a non-zero timeout) on a
/// thread that is running that io_context could never see it complete (with
/// one io thread it deadlocks; with several it holds one hostage). Such a
/// call asserts in debug builds and throws std::logic_error otherwise,
/// instead of hanging. From an io thread use Server::async_shutdown(), or
/// poll with ready().
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe (a copyable
/// handle on one std::shared_future).
class ShutdownFuture {
 public:
  /// An invalid future (valid() is false); Server::shutdown returns real ones.
  ShutdownFuture() = default;

  /// `future` completes the shutdown of a Server running on `io`.
  ShutdownFuture(std::shared_future<void> future, asio::io_context& io)
      : future_(std::move(future)), io_(&io) {}

  /// Whether this refers to a shutdown. Thread-safe.
  bool valid() const noexcept { return future_.valid(); }

  /// Whether the shutdown has completed, without waiting. Thread-safe; may
  /// be called from any thread, io threads included.
  bool ready() const {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

  /// Waits until the shutdown has completed. Must not be called on a thread
  /// running the Server's io_context (see the class comment): asserts in
  /// debug builds, throws std::logic_error otherwise.
  void wait() const {
    refuse_on_io_thread();
    future_.wait();
  }

  /// Waits at most `timeout`; returns whether the shutdown completed
  /// (std::future_status::ready) or not (timeout). A zero timeout polls and
  /// is allowed anywhere; a longer one must not be called on an io thread
  /// (as wait()).
  template <class Rep, class Period>
  std::future_status wait_for(const std::chrono::duration<Rep, Period>& timeout) const {
    if (timeout > timeout.zero()) refuse_on_io_thread();
    return future_.wait_for(timeout);
  }

  /// Waits until `deadline` at most; as wait_for().
  template <class Clock, class Duration>
  std::future_status wait_until(const std::chrono::time_point<Clock, Duration>& deadline) const {
    if (deadline > Clock::now()) refuse_on_io_thread();
    return future_.wait_until(deadline);
  }

 private:
  void refuse_on_io_thread() const {
    const bool on_io_thread = io_ != nullptr && io_->get_executor().running_in_this_thread();
    assert(!on_io_thread &&
           "wsreg: waiting for Server::shutdown on one of its io threads would deadlock; "
           "use async_shutdown");
    if (on_io_thread) {
      throw std::logic_error(
          "wsreg: waiting for Server::shutdown on one of its io threads would deadlock; use "
          "Server::async_shutdown or ShutdownFuture::ready()");
    }
  }

  std::shared_future<void> future_;
  asio::io_context* io_ = nullptr;
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_SHUTDOWN_FUTURE_HPP
