// wsreg/websocketpp/detail/write_lanes.hpp: handoffs to websocketpp batched per io
// thread, so a broadcast from outside the io threads costs one task per lane.
#ifndef WSREG_WEBSOCKETPP_DETAIL_WRITE_LANES_HPP
#define WSREG_WEBSOCKETPP_DETAIL_WRITE_LANES_HPP

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "wsreg/websocketpp/config.hpp"

namespace wsreg::wspp::detail {

/// Drops everything in `queue` and refuses what comes later. Call with
/// queue.mutex held. Not thread-safe otherwise.
inline void release_locked(SendQueue& queue) noexcept {
  queue.closed = true;
  queue.messages.reset();
  queue.queued_bytes = 0;
}

/// Where a Server's connections hand their outgoing messages to websocketpp
/// when the sending thread is not one of the io_context's threads (the
/// actor thread, a ticker, any application thread).
///
/// Why: websocketpp's connection::send() starts a write by posting to the
/// io_context (see StrandConnection): called from outside, every recipient
/// of a broadcast is one cross-thread post (an allocation, the scheduler's
/// lock, often a wake-up of an io thread), and each write then waits its
/// turn in the io_context's queue. Here such a handoff is appended to one of
/// `lane_count` lanes instead, and a lane posts one task when it goes from
/// empty to not empty; that task, on an io thread, hands the lane's
/// messages to their connections in order, and since it runs on an io
/// thread with their strands free, each write starts at once
/// (strand::dispatch runs inline). A broadcast to N connections thus costs
/// one task per lane instead of N posts. Over plain TCP the task writes the
/// frames itself where websocketpp has nothing ahead of them, all of one
/// connection's frames of the batch with one sendmsg (write_now_locked), as
/// uWebSockets writes from its loop with its cork buffer. A send from an io
/// thread skips the lanes: it starts the write itself.
///
/// Order: every connection always uses the same lane (chosen from its
/// address), and once one of its handoffs waits in a lane
/// (SendQueue::lane_pending), its later ones go there too, so a
/// connection's messages reach websocketpp in the order they were accepted.
///
/// Ownership: the Server's shared state owns the lanes, and every
/// ConnectionSender holds them too; each posted task holds them until it
/// has run. Items hold their connection and message strongly, from the
/// handoff to the task; a task that never runs (its io_context destroyed
/// with it still queued) releases its lane's items when it is destroyed,
/// so no connection is kept alive by the lanes.
///
/// Thread safety: push() and the tasks are thread-safe (each lane has a
/// mutex; a connection's SendQueue mutex orders its own handoffs).
template <class Connection>
class WriteLanes : public std::enable_shared_from_this<WriteLanes<Connection>> {
 public:
  using ConnectionPtr = std::shared_ptr<Connection>;
  using MessagePtr = typename Connection::message_ptr;

  /// `lane_count` lanes (at least 1), their tasks posted to `io`, which
  /// must outlive every task (it does: a task is destroyed with its
  /// io_context at the latest).
  WriteLanes(asio::io_context& io, std::size_t lane_count)
      : io_(io), lanes_(std::max<std::size_t>(1, lane_count)) {}

  WriteLanes(const WriteLanes&) = delete;
  WriteLanes& operator=(const WriteLanes&) = delete;

  /// Whether handoffs of `connection` wait in a lane. Thread-safe (takes
  /// its SendQueue mutex).
  static bool pending(Connection& connection) {
    std::lock_guard<std::mutex> lock(connection.send_queue.mutex);
    // (A closed queue has nothing more to hand, whatever lane_pending says:
    // a Run that could not be made is not counted back.)
    return connection.send_queue.lane_pending != 0 && !connection.send_queue.closed;
  }

  /// Hands `message` to `connection` (websocketpp's connection::send): at
  /// once when called on an io thread and nothing of the connection waits
  /// in a lane, returning websocketpp's error; otherwise appended to the
  /// connection's lane (returns no error; one that occurs later closes the
  /// queue, as a failed handoff does here). Call with
  /// connection->send_queue.mutex held. Throws std::bad_alloc only.
  ///
  /// `mark` is the queue's handed_total with this message counted: a
  /// message the lane's task writes to the socket itself (plain TCP, see
  /// write_now_locked) marks everything up to it written, as a sentinel does.
  std::error_code hand_locked(const ConnectionPtr& connection, MessagePtr message,
                              std::uint64_t mark) {
    SendQueue& queue = connection->send_queue;
    if (queue.lane_pending == 0 && io_.get_executor().running_in_this_thread()) {
      return connection->send(message);
    }
    const std::size_t index = lane_of(connection.get());
    Lane& lane = lanes_[index];
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(lane.mutex);
      lane.items.push_back(Item{connection, std::move(message), mark});
      post = !lane.posted;
      lane.posted = true;
    }
    ++queue.lane_pending;
    if (post) {
      try {
        asio::post(io_, Task{this->shared_from_this(), index});
      } catch (...) {  // std::bad_alloc: the items wait for the next push's task
        std::lock_guard<std::mutex> lock(lane.mutex);
        lane.posted = false;
        throw;
      }
    }
    return std::error_code();
  }

 private:
  struct Item {
    ConnectionPtr connection;
    MessagePtr message;
    std::uint64_t mark;  // SendQueue::handed_total with this message counted
  };

  // The handoffs of one connection from one batch, in order. Run on the
  // connection's strand (plain TCP) or at once (TLS): as many as one
  // sendmsg takes are written to the socket at once where
  // write_now_locked can (several frames of a connection in one system
  // call: corking), the rest go to websocketpp, which writes what it holds
  // with one writev.
  struct Run {
    ConnectionPtr connection;
    std::vector<Item> items;

    void operator()() {
      SendQueue& queue = connection->send_queue;
      std::lock_guard<std::mutex> lock(queue.mutex);
      queue.lane_pending -= static_cast<std::uint32_t>(items.size());
      if (queue.closed) return;
      std::size_t next = 0;
      if constexpr (Connection::plain_socket) {
        while (next < items.size()) {
          const std::size_t taken = write_now_locked(*connection, items, next, queue);
          if (taken == 0) break;
          next += taken;
        }
      }
      for (; next < items.size(); ++next) {
        // A refusal because the connection is closing ends its queue, as
        // one at the handoff itself does. (Payloads websocketpp would
        // refuse on an open connection, text that is not UTF-8, never get
        // here: ConnectionSender checks them.)
        if (connection->send(items[next].message) &&
            connection->get_state() != ::websocketpp::session::state::open) {
          release_locked(queue);
          return;
        }
      }
    }
  };

  struct Lane {
    // This mutex synchronizes access to items and posted.
    std::mutex mutex;
    std::vector<Item> items;
    /// A task for this lane is posted and has not yet found it empty.
    bool posted = false;
  };

  // The posted task: drains its lane; if destroyed without having run, it
  // releases the lane's items instead (see the class comment).
  struct Task {
    std::shared_ptr<WriteLanes> lanes;
    std::size_t index;

    Task(std::shared_ptr<WriteLanes> l, std::size_t i) : lanes(std::move(l)), index(i) {}
    Task(Task&&) noexcept = default;
    Task& operator=(Task&&) noexcept = default;
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() {
      if (lanes) lanes->discard(index);
    }
    void operator()() {
      const std::shared_ptr<WriteLanes> self = std::move(lanes);
      self->drain(index);
    }
  };

  std::size_t lane_of(const Connection* connection) const noexcept {
    // Connection objects are a few KiB apart; Fibonacci hashing spreads them.
    const auto bits = reinterpret_cast<std::uintptr_t>(connection) >> 4;
    return static_cast<std::size_t>((bits * 0x9E3779B97F4A7C15ull) >> 32) % lanes_.size();
  }

  // Hands everything in lane `index` to websocketpp, batch by batch, until
  // the lane is found empty. On an io thread.
  void drain(std::size_t index) noexcept {
    Lane& lane = lanes_[index];
    std::vector<Item> batch;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(lane.mutex);
        if (lane.items.empty()) {
          lane.posted = false;
          return;
        }
        batch.swap(lane.items);
      }
      // Each connection's handoffs of this batch together, in their order
      // (a stable sort keeps it), so that they can go out in one write.
      std::stable_sort(batch.begin(), batch.end(), [](const Item& a, const Item& b) {
        return std::less<const Connection*>()(a.connection.get(), b.connection.get());
      });
      for (std::size_t first = 0; first < batch.size();) {
        std::size_t end = first + 1;
        while (end < batch.size() && batch[end].connection == batch[first].connection) ++end;
        hand_run(batch, first, end);
        first = end;
      }
      // Releases the items' references (a refused sentinel's deleter runs
      // here: it takes no lock of ours).
      batch.clear();
    }
  }

  // Hands batch[first, end), one connection's, over as a Run: on the
  // connection's strand, at once when the strand is free (no allocation for
  // the dispatch), queued on it after what it is running otherwise. If the
  // Run cannot be made (std::bad_alloc), the connection's queue is closed
  // and these handoffs are lost, as a failed handoff loses them.
  static void hand_run(std::vector<Item>& batch, std::size_t first, std::size_t end) noexcept {
    const ConnectionPtr connection = batch[first].connection;
    try {
      Run run{connection, {}};
      run.items.reserve(end - first);
      for (std::size_t i = first; i < end; ++i) run.items.push_back(std::move(batch[i]));
      if constexpr (Connection::plain_socket) {
        connection->get_strand()->dispatch(std::move(run));
      } else {
        run();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(connection->send_queue.mutex);
      std::uint32_t& pending = connection->send_queue.lane_pending;
      for (std::size_t i = first; i < end; ++i) {
        if (batch[i].connection) --pending;  // not yet moved into the Run
      }
      release_locked(connection->send_queue);
    }
  }

  // Empties lane `index` without handing anything (its task will not run).
  void discard(std::size_t index) noexcept {
    std::vector<Item> lost;
    {
      std::lock_guard<std::mutex> lock(lanes_[index].mutex);
      lost.swap(lanes_[index].items);
      lanes_[index].posted = false;
    }
    for (Item& item : lost) {
      std::lock_guard<std::mutex> lock(item.connection->send_queue.mutex);
      --item.connection->send_queue.lane_pending;
      release_locked(item.connection->send_queue);
    }
  }

  // Writes items[from...] (prepared frames: header and payload as they go
  // on the wire), as many as one non-blocking sendmsg takes (up to
  // max_frames_per_write, stopping at the first frame that is not
  // prepared), to `connection`'s socket, when nothing of websocketpp's could
  // be ahead of them: the connection is open (so no close frame has gone),
  // websocketpp has nothing queued (get_buffered_amount) and no write in
  // flight (StrandConnection::writing). Frames written whole mark
  // everything up to theirs written, as a sentinel would. A frame written in
  // part: its rest goes to websocketpp as a prepared message of its own, in
  // order, and websocketpp is then writing. Returns how many items it took
  // (written, or handed over in part); 0 when it wrote nothing (not
  // possible now, the socket buffer full, or an error, which websocketpp's
  // own write then meets): the caller hands them to websocketpp. On the
  // connection's strand, with queue.mutex held, so that neither websocketpp
  // nor another handoff can write to the socket meanwhile. Throws
  // std::bad_alloc only (a partial write's rest).
  static std::size_t write_now_locked(Connection& connection, const std::vector<Item>& items,
                                      std::size_t from, SendQueue& queue) {
    if (connection.writing() || connection.get_buffered_amount() != 0 ||
        connection.get_state() != ::websocketpp::session::state::open) {
      return 0;
    }
    ::iovec parts[2 * max_frames_per_write];
    std::size_t frames = 0;
    std::size_t total = 0;
    while (from + frames < items.size() && frames < max_frames_per_write) {
      const auto& message = *items[from + frames].message;
      if (!message.get_prepared()) break;
      const std::string& header = message.get_header();
      const std::string& payload = message.get_payload();
      parts[2 * frames] = {const_cast<char*>(header.data()), header.size()};
      parts[2 * frames + 1] = {const_cast<char*>(payload.data()), payload.size()};
      total += header.size() + payload.size();
      ++frames;
    }
    if (frames == 0) return 0;
    std::size_t written = 0;
    if (total != 0) {
      ::msghdr out{};
      out.msg_iov = parts;
      out.msg_iovlen = 2 * frames;
      const ::ssize_t n = ::sendmsg(connection.get_raw_socket().native_handle(), &out,
                                    MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n <= 0) return 0;
      written = static_cast<std::size_t>(n);
    }
    // The frames written whole, then the one written in part, if any.
    std::size_t whole = 0;
    std::size_t left = written;
    while (whole < frames) {
      const auto& message = *items[from + whole].message;
      const std::size_t size = message.get_header().size() + message.get_payload().size();
      if (size > left) break;
      left -= size;
      ++whole;
    }
    if (whole != 0) {
      const std::uint64_t mark = items[from + whole - 1].mark;
      std::uint64_t seen = queue.written_total.load(std::memory_order_relaxed);
      while (seen < mark && !queue.written_total.compare_exchange_weak(
                                seen, mark, std::memory_order_release, std::memory_order_relaxed)) {
      }
    }
    if (whole == frames) return whole;
    if (left == 0) return whole;  // the next frame not started: it goes through websocketpp
    const auto& message = *items[from + whole].message;
    const std::string& header = message.get_header();
    const std::string& payload = message.get_payload();
    std::string rest;
    rest.reserve(header.size() + payload.size() - left);
    if (left < header.size()) rest.append(header, left, std::string::npos);
    rest.append(payload, left > header.size() ? left - header.size() : 0, std::string::npos);
    auto message_rest = std::make_shared<typename Connection::message_type>(
        typename Connection::message_type::con_msg_man_ptr(), message.get_opcode(), 0);
    message_rest->set_payload(rest);
    message_rest->set_prepared(true);
    if (connection.send(message_rest)) release_locked(queue);
    return whole + 1;
  }

  // Frames one direct write takes at most (two iovecs each; IOV_MAX is 1024).
  static constexpr std::size_t max_frames_per_write = 64;

  asio::io_context& io_;
  std::vector<Lane> lanes_;
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_WRITE_LANES_HPP
