// wsreg/actor_policy.hpp: one thread owns the map; every operation is a message.
#ifndef WSREG_ACTOR_POLICY_HPP
#define WSREG_ACTOR_POLICY_HPP

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wsreg/detail/stats_counters.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// Registry policy: a mailbox and a dedicated thread (the actor) that alone
/// owns the map from connection id to sender. Every operation is a message.
///
/// Ownership: the actor thread owns the map and every Sender in it; callers
/// own nothing but the messages they post, which the mailbox takes by move.
/// The thread starts in the constructor; the destructor lets it apply every
/// message already queued, then joins it.
///
/// Which calls wait: insert, erase, send and broadcast enqueue and return at
/// once (applied later, on the actor thread). flush, size and stats wait
/// until the actor has applied everything the calling thread queued before;
/// called on the actor thread itself (from inside Sender::send) they do not
/// wait, so a Sender can use them without deadlock, and then they reflect
/// only what the actor has applied so far (the operations the Sender just
/// queued come after it returns). size_approx and stats_approx never wait.
///
/// Ordering: the mailbox is one FIFO under a mutex, so it is linearizable:
/// operations apply in the order they were enqueued, and an operation that
/// happens-after another (same thread, or synchronised through any other
/// means) applies after it. Payloads from one thread to one connection keep
/// their order, and every connection sees broadcasts in the same order.
/// (moodycamel::ConcurrentQueue was considered and rejected for this: its
/// per-producer sub-queues are not linearizable, so a send(id) could overtake
/// the add that created id on another thread.)
///
/// The mailbox is unbounded: a producer that outruns the actor grows it.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe, except that
/// no member may be called concurrently with the destructor.
class ActorPolicy {
 public:
  /// Starts the actor thread. Throws std::system_error if it cannot start.
  ActorPolicy() : thread_([this] { run(); }) {}

  ActorPolicy(const ActorPolicy&) = delete;
  ActorPolicy& operator=(const ActorPolicy&) = delete;

  /// Applies every message already queued, then joins the actor thread.
  /// Senders still registered are released on the actor thread.
  ~ActorPolicy() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }

  /// Queues the registration of `sender` under `id`. Thread-safe, does not
  /// wait. O(1) amortised.
  void insert(ConnectionId id, std::shared_ptr<Sender> sender) {
    post(Command{Kind::insert, id, std::move(sender), Payload(), nullptr});
  }

  /// Queues the removal of `id`; removing an unknown id does nothing.
  /// Thread-safe, does not wait. O(1) amortised.
  void erase(ConnectionId id) { post(Command{Kind::erase, id, nullptr, Payload(), nullptr}); }

  /// Queues `payload` for `id` (or counts send_unknown when applied).
  /// Thread-safe, does not wait. O(1) amortised; copies the payload handle,
  /// never the bytes.
  void send(ConnectionId id, Payload payload) {
    post(Command{Kind::send, id, nullptr, std::move(payload), nullptr});
  }

  /// Queues `payload` for every connection but `except`. Thread-safe, does
  /// not wait. O(1) here, O(N) Sender::send calls on the actor thread.
  void broadcast(Payload payload, ConnectionId except) {
    post(Command{Kind::broadcast, except, nullptr, std::move(payload), nullptr});
  }

  /// The number of registered connections once everything this thread queued
  /// before has been applied. Thread-safe; waits for the actor (not on the
  /// actor thread). O(1) plus the wait.
  std::size_t size() {
    flush();
    return size_.load(std::memory_order_acquire);
  }

  /// The counters once everything this thread queued before has been
  /// applied. Thread-safe; waits for the actor (not on the actor thread).
  RegistryStats stats() {
    flush();
    return counters_.snapshot();
  }

  /// The number of registered connections as the actor last applied it,
  /// without waiting: operations still in the mailbox are not included.
  /// Thread-safe, never waits. O(1).
  std::size_t size_approx() const noexcept { return size_.load(std::memory_order_acquire); }

  /// The counters as applied so far, without waiting. Thread-safe, never waits.
  RegistryStats stats_approx() const noexcept { return counters_.snapshot(); }

  /// Returns once the actor has applied every message this thread queued
  /// before the call. Thread-safe; returns at once on the actor thread.
  void flush() {
    if (std::this_thread::get_id() == actor_id_.load(std::memory_order_acquire)) return;
    // The promise travels in the message and dies on the actor thread; this
    // thread keeps only the future, so neither outlives what it touches.
    auto done = std::make_unique<std::promise<void>>();
    std::future<void> applied = done->get_future();
    post(Command{Kind::flush, no_connection, nullptr, Payload(), std::move(done)});
    applied.wait();
  }

 private:
  enum class Kind : std::uint8_t { insert, erase, send, broadcast, flush };

  struct Command {
    Kind kind;
    ConnectionId id;                  // target, or the except-id of a broadcast
    std::shared_ptr<Sender> sender;   // insert only
    Payload payload;                  // send and broadcast only
    std::unique_ptr<std::promise<void>> done;  // flush only; the poster waits on it
  };

  void post(Command&& command) {
    bool was_empty = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (exited_) {  // only reachable from a Sender destroyed after the drain
        if (command.done) command.done->set_value();
        return;
      }
      was_empty = mailbox_.empty();
      mailbox_.push_back(std::move(command));
    }
    // The actor takes the whole mailbox at once, so it needs waking only when
    // the mailbox was empty: otherwise a wake-up is already on its way.
    if (was_empty) ready_.notify_one();
  }

  void run() {
    actor_id_.store(std::this_thread::get_id(), std::memory_order_release);
    std::vector<Command> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !mailbox_.empty() || stopping_; });
        if (mailbox_.empty()) {  // stopping_, and nothing left to apply
          exited_ = true;
          break;
        }
        batch.swap(mailbox_);  // the mailbox keeps batch's capacity: no allocation
      }
      for (Command& command : batch) apply(command);
      batch.clear();  // releases payloads and senders outside the lock
    }
    senders_.clear();
    size_.store(0, std::memory_order_release);
  }

  void apply(Command& command) noexcept {
    switch (command.kind) {
      case Kind::insert:
        try {
          senders_.emplace(command.id, std::move(command.sender));
        } catch (...) {  // std::bad_alloc: the connection stays unregistered
          return;
        }
        detail::StatsCounters::bump(counters_.connections_added);
        size_.store(senders_.size(), std::memory_order_release);
        break;
      case Kind::erase:
        if (senders_.erase(command.id) != 0) {
          detail::StatsCounters::bump(counters_.connections_removed);
          size_.store(senders_.size(), std::memory_order_release);
        }
        break;
      case Kind::send: {
        auto it = senders_.find(command.id);
        if (it == senders_.end()) {
          detail::StatsCounters::bump(counters_.send_unknown);
          break;
        }
        detail::DeliveryTally tally;
        tally.record(it->second->send(command.payload));
        tally.flush_into(counters_);
        break;
      }
      case Kind::broadcast: {
        // Sender::send cannot change senders_ during this loop: registry
        // calls made from inside it are queued, not applied.
        detail::DeliveryTally tally;
        for (const auto& [id, sender] : senders_) {
          if (id != command.id) tally.record(sender->send(command.payload));
        }
        tally.flush_into(counters_);
        detail::StatsCounters::bump(counters_.broadcasts);
        break;
      }
      case Kind::flush:
        command.done->set_value();
        break;
    }
  }

  // This mutex synchronizes all access to mailbox_, stopping_ and exited_.
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Command> mailbox_;
  bool stopping_ = false;
  bool exited_ = false;

  // Owned by the actor thread alone: no lock.
  std::unordered_map<ConnectionId, std::shared_ptr<Sender>> senders_;

  // Written by the actor when the membership changes, read by anyone.
  std::atomic<std::size_t> size_{0};
  std::atomic<std::thread::id> actor_id_{};
  detail::StatsCounters counters_;

  // Last member: the thread starts only after every member above exists.
  std::thread thread_;
};

}  // namespace wsreg

#endif  // WSREG_ACTOR_POLICY_HPP
