// wsreg/detail/backplane_queue.hpp: the bounded outgoing queue of a backplane.
#ifndef WSREG_DETAIL_BACKPLANE_QUEUE_HPP
#define WSREG_DETAIL_BACKPLANE_QUEUE_HPP

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "wsreg/backplane.hpp"

namespace wsreg::detail {

/// One operation for a backplane's I/O thread, in the order the callers made them.
struct BackplaneOp {
  enum class Kind : std::uint8_t { publish, subscribe, unsubscribe };
  Kind kind = Kind::publish;
  std::string channel;
  std::string message;  // publish only
};

/// The operations callers hand a backplane's I/O thread: publishes, bounded
/// in messages and bytes (a caller never waits: a full queue drops and the
/// caller is told), and subscribes and unsubscribes, never dropped and not
/// counted against the bound (there is one per topic change, not per
/// message). A publish larger than the byte bound on its own is always
/// dropped; a byte bound of 0 drops every publish (a message bound of 0 is
/// taken as 1).
///
/// Thread safety: Shared objects: Safe.
class BackplaneQueue {
 public:
  BackplaneQueue(std::size_t max_messages, std::size_t max_bytes) noexcept
      : max_messages_(max_messages == 0 ? 1 : max_messages), max_bytes_(max_bytes) {}

  /// Queues a publish unless that would pass a bound. `was_empty` is set
  /// when the queue held nothing before (the I/O thread may need waking).
  /// O(1).
  PublishResult push_publish(std::string channel, std::string message, bool& was_empty) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t bytes = channel.size() + message.size();
    if (messages_ >= max_messages_ || bytes_ + bytes > max_bytes_) {
      was_empty = false;
      return PublishResult::dropped;
    }
    was_empty = ops_.empty();
    ops_.push_back(BackplaneOp{BackplaneOp::Kind::publish, std::move(channel), std::move(message)});
    ++messages_;
    bytes_ += bytes;
    return PublishResult::queued;
  }

  /// Queues a subscribe or unsubscribe. O(1).
  void push_control(BackplaneOp::Kind kind, std::string channel, bool& was_empty) {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = ops_.empty();
    ops_.push_back(BackplaneOp{kind, std::move(channel), std::string()});
  }

  /// Takes the first operation into `op`, unless the queue is empty or the
  /// first is a publish and `publish_ok` is false (the I/O thread has no
  /// room for it yet: order is kept). O(1).
  bool pop(BackplaneOp& op, bool publish_ok) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ops_.empty()) return false;
    if (ops_.front().kind == BackplaneOp::Kind::publish) {
      if (!publish_ok) return false;
      --messages_;
      bytes_ -= ops_.front().channel.size() + ops_.front().message.size();
    }
    op = std::move(ops_.front());
    ops_.pop_front();
    return true;
  }

  /// Publishes queued now. Thread-safe.
  std::size_t depth() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }

 private:
  const std::size_t max_messages_;
  const std::size_t max_bytes_;
  // Guards ops_, messages_ and bytes_ (the publishes among ops_ and their size).
  mutable std::mutex mutex_;
  std::deque<BackplaneOp> ops_;
  std::size_t messages_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_BACKPLANE_QUEUE_HPP
