// load_client/tick_tracker.hpp: per-connection sequence bookkeeping.
#ifndef WSREG_LOAD_CLIENT_TICK_TRACKER_HPP
#define WSREG_LOAD_CLIENT_TICK_TRACKER_HPP

#include <cstdint>

namespace load_client {

/// The sequence numbers one connection has seen, to count ticks lost and
/// duplicated in the measurement window.
///
/// Before the window only the highest seq is kept, as the baseline: a gap
/// between it and the first tick of the window is loss too, so a
/// connection that stalls across the window start does not hide its loss.
/// In the window, a seq above last+1 adds seq-last-1 lost ticks; a seq at
/// or below last is a duplicate or reordered tick and is not delivered.
/// Ticks still in flight when the window ends are not counted as lost.
///
/// Thread safety: Not thread-safe: one epoll thread.
class TickTracker {
 public:
  /// What one tick inside the window was.
  struct Outcome {
    /// Ticks skipped just before this one (0 when in order).
    std::uint64_t lost = 0;
    /// True when seq <= the last one seen: not a delivery.
    bool duplicate_or_reordered = false;
  };

  /// Notes the handshake completed.
  void mark_opened() noexcept { opened_ = true; }
  /// True once the handshake completed (the connection may have closed since).
  bool opened() const noexcept { return opened_; }
  /// Marks the connection as open when the window started.
  void mark_open_at_window_start() noexcept { open_at_window_start_ = true; }
  /// True if open when the window started; only these count in min/max.
  bool open_at_window_start() const noexcept { return open_at_window_start_; }

  /// Records a tick received before the window: moves the baseline only.
  void see_before_window(std::uint64_t seq) noexcept {
    if (!has_seq_ || seq > last_seq_) last_seq_ = seq;
    has_seq_ = true;
  }

  /// Records a tick received inside the window.
  Outcome see_in_window(std::uint64_t seq) noexcept {
    Outcome outcome;
    if (has_seq_ && seq <= last_seq_) {
      outcome.duplicate_or_reordered = true;
      return outcome;
    }
    if (has_seq_) outcome.lost = seq - last_seq_ - 1;
    has_seq_ = true;
    last_seq_ = seq;
    ++window_ticks_;
    return outcome;
  }

  /// Ticks delivered inside the window (duplicates excluded).
  std::uint64_t window_ticks() const noexcept { return window_ticks_; }

 private:
  std::uint64_t last_seq_ = 0;
  std::uint64_t window_ticks_ = 0;
  bool has_seq_ = false;
  bool opened_ = false;
  bool open_at_window_start_ = false;
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_TICK_TRACKER_HPP
