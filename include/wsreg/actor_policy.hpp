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
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "wsreg/detail/registry_state.hpp"
#include "wsreg/detail/stats_counters.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/presence.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

namespace detail {

/// Gives every ActorPolicy instance an id that is never reused, so that
/// per-thread records of "my last post to this instance" cannot be confused
/// with those of an instance that lived at the same address before.
inline std::uint64_t next_actor_instance() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// What the calling thread last posted, per ActorPolicy instance: a few
/// slots (a thread talks to few registries), replaced round-robin. Lets
/// flush() tell that everything this thread posted has been applied without
/// asking the actor.
///
/// Thread safety: thread_local; each thread touches only its own.
struct ThreadPosts {
  static constexpr std::size_t slots = 8;
  std::uint64_t instance[slots] = {};  // 0: free
  std::uint64_t seq[slots] = {};       // the sequence number of the last post
  std::size_t next = 0;                // the slot to replace next
  bool forgot = false;                 // a slot in use was replaced

  /// Notes that this thread's post `s` to `id` is the latest. Never
  /// allocates, never throws.
  void record(std::uint64_t id, std::uint64_t s) noexcept {
    for (std::size_t i = 0; i < slots; ++i) {
      if (instance[i] == id) {
        seq[i] = s;
        return;
      }
    }
    if (instance[next] != 0) forgot = true;
    instance[next] = id;
    seq[next] = s;
    next = (next + 1) % slots;
  }

  /// The sequence number of this thread's last post to `id`: 0 if it never
  /// posted there, `unknown` if its record was replaced.
  static constexpr std::uint64_t unknown = ~std::uint64_t{0};
  std::uint64_t last(std::uint64_t id) const noexcept {
    for (std::size_t i = 0; i < slots; ++i) {
      if (instance[i] == id) return seq[i];
    }
    return forgot ? unknown : 0;
  }
};

inline thread_local ThreadPosts thread_posts;

}  // namespace detail

/// Registry policy: a mailbox and a dedicated thread (the actor) that alone
/// owns the map from connection id to sender (and per-connection Data) and
/// the topic table. Every operation is a message. Use it through
/// ConnectionRegistry<ActorPolicy, Data>, which rebinds it to `Data`.
///
/// Ownership: the actor thread owns the map, every Sender and Data in it,
/// and the topics; callers own nothing but the messages they post, which the
/// mailbox takes by move. The actor never hands out a reference into its
/// state: data() returns a copy, update_data() sends a function to the data.
/// The thread starts in the constructor; the destructor lets it apply every
/// message already queued, then joins it.
///
/// Which calls wait: insert, erase, subscribe, unsubscribe, set_data,
/// update_data and set_presence_handler enqueue and return at once (applied
/// later, on the actor thread, which also runs the presence handler and
/// update_data's function). send, broadcast and publish enqueue and return
/// at once while the mailbox holds fewer than
/// RegistryOptions::mailbox_capacity data operations, and otherwise wait
/// for room first (see "The mailbox is bounded" below). flush waits until
/// the actor has applied everything the calling thread queued before, and
/// returns at once if it already has. size and stats wait until it has
/// applied everything queued before the call by any thread (at once if it
/// has). data, topics_of, subscribers, subscriber_count and topic_count are
/// answered by the actor after everything queued before them; called on
/// the actor thread itself (from inside Sender::send or the presence
/// handler) they do not wait, so a callback can use them without deadlock,
/// and then they reflect only what the actor has applied so far (the
/// operations the callback just queued come after it returns). size_approx
/// and stats_approx never wait.
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
/// The mailbox is bounded, for data operations: at most
/// RegistryOptions::mailbox_capacity sends, broadcasts and publishes are
/// queued (posted and not yet applied) at once. A thread that posts one
/// more waits until the actor has applied enough of them (counted in
/// RegistryStats::mailbox_waits): backpressure, as a bounded channel gives,
/// so a producer in a tight loop runs at the actor's pace, as it would under
/// MutexPolicy (which delivers on the producer's own thread), and nothing is
/// dropped. Two exceptions keep this free of deadlock: the actor thread
/// itself never waits (a Sender or presence handler that posts is taken
/// over capacity), and lifecycle operations (insert, erase, subscribe,
/// unsubscribe, set_data, update_data, set_presence_handler, flush and the
/// queries) never wait for room. There is one FIFO, not a priority lane for
/// lifecycle operations: an add or remove applies behind at most
/// mailbox_capacity data operations (plus the lifecycle operations ahead of
/// it), and every ordering guarantee above holds unchanged.
///
/// Exception safety: a std::bad_alloc while posting (on the caller's
/// thread: the message, its std::function, the mailbox's growth) reaches
/// the caller, and nothing is queued. One on the actor thread, while an
/// operation is applied, is swallowed there and that operation is not
/// applied at all: the state stays exactly as it was (RegistryState's
/// mutations are all-or-nothing), and a query answers with the exception.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe, except that
/// no member may be called concurrently with the destructor.
template <class Data>
class BasicActorPolicy {
 public:
  /// This policy for another per-connection data type (used by
  /// ConnectionRegistry<Policy, Data>).
  template <class Other>
  using rebind = BasicActorPolicy<Other>;

  /// Starts the actor thread, with the default RegistryOptions. Throws
  /// std::system_error if it cannot start.
  BasicActorPolicy() : BasicActorPolicy(RegistryOptions()) {}

  /// Starts the actor thread with `options` (mailbox_capacity). Throws
  /// std::system_error if it cannot start.
  explicit BasicActorPolicy(const RegistryOptions& options)
      : capacity_(options.mailbox_capacity == 0 ? 1 : options.mailbox_capacity),
        release_every_(capacity_ / 4 == 0 ? 1 : capacity_ / 4),
        thread_([this] { run(); }) {}

  BasicActorPolicy(const BasicActorPolicy&) = delete;
  BasicActorPolicy& operator=(const BasicActorPolicy&) = delete;

  /// Applies every message already queued, then joins the actor thread.
  /// Senders still registered are released on the actor thread.
  ~BasicActorPolicy() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }

  /// Queues the registration of `sender` and `data` under `id`. Thread-safe,
  /// does not wait. O(1) amortised.
  void insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data = Data()) {
    if constexpr (std::is_empty_v<Data>) {
      post(Command{Kind::insert, id, std::move(sender)});
    } else {
      post(Command{Kind::task, id, nullptr, Payload(), std::string(),
                   [this, id, sender = std::move(sender), data = std::move(data)]() mutable {
                     apply_insert(id, std::move(sender), std::move(data));
                   }});
    }
  }

  /// Queues the removal of `id` (and of its subscriptions); removing an
  /// unknown id does nothing. Thread-safe, does not wait. O(1) amortised.
  void erase(ConnectionId id) { post(Command{Kind::erase, id}); }

  /// Queues `payload` for `id` (or counts send_unknown when applied).
  /// Thread-safe; waits for room while the mailbox is full of data
  /// operations (not on the actor thread). O(1) amortised; copies the
  /// payload handle, never the bytes.
  void send(ConnectionId id, Payload payload) {
    post(Command{Kind::send, id, nullptr, std::move(payload)});
  }

  /// Queues `payload` for every connection but `except`. Thread-safe; waits
  /// for room as send() does. O(1) here, O(N) Sender::send calls on the
  /// actor thread.
  void broadcast(Payload payload, ConnectionId except) {
    post(Command{Kind::broadcast, except, nullptr, std::move(payload)});
  }

  /// Queues `payload` for every subscriber of `topic` but `except`.
  /// Thread-safe; waits for room as send() does. O(1) here,
  /// O(subscribers) Sender::send calls on the actor thread.
  void publish(std::string topic, Payload payload, ConnectionId except) {
    post(Command{Kind::publish, except, nullptr, std::move(payload), std::move(topic)});
  }

  /// Queues the subscription of `id` to `topic`. Thread-safe, does not wait.
  /// The presence handler runs on the actor thread when it is applied.
  void subscribe(ConnectionId id, std::string topic) {
    post(Command{Kind::subscribe, id, nullptr, Payload(), std::move(topic)});
  }

  /// Queues the end of `id`'s subscription to `topic`. Thread-safe, does
  /// not wait.
  void unsubscribe(ConnectionId id, std::string topic) {
    post(Command{Kind::unsubscribe, id, nullptr, Payload(), std::move(topic)});
  }

  /// `id`'s topics, sorted, once everything this thread queued before is
  /// applied. Thread-safe; waits for the actor (not on the actor thread).
  std::vector<std::string> topics_of(ConnectionId id) {
    return ask([this, id] { return state_.topics_of(id); });
  }

  /// `topic`'s subscribers, ascending. Thread-safe; waits for the actor.
  std::vector<ConnectionId> subscribers(const std::string& topic) {
    return ask([this, &topic] { return state_.subscribers(topic); });
  }

  /// `topic`'s subscriber count. Thread-safe; waits for the actor.
  std::size_t subscriber_count(const std::string& topic) {
    return ask([this, &topic] { return state_.subscriber_count(topic); });
  }

  /// The number of topics with a subscriber. Thread-safe; waits for the actor.
  std::size_t topic_count() {
    return ask([this] { return state_.topic_count(); });
  }

  /// Queues the replacement of the presence handler (empty: none).
  /// Thread-safe, does not wait; changes applied after it are reported, on
  /// the actor thread. The old handler may still be called until the
  /// replacement is applied: after a flush() that follows this call, it
  /// never is again.
  void set_presence_handler(PresenceHandler handler) {
    post_task([this, handler = std::move(handler)]() mutable { handler_ = std::move(handler); });
  }

  /// A copy of `id`'s data, made on the actor thread (the actor hands out no
  /// reference into its state). Thread-safe; waits for the actor.
  std::optional<Data> data(ConnectionId id) {
    return ask([this, id]() -> std::optional<Data> {
      if (const Data* d = state_.data(id)) return *d;
      return std::nullopt;
    });
  }

  /// Queues the replacement of `id`'s data. Thread-safe, does not wait.
  void set_data(ConnectionId id, Data data) {
    post_task([this, id, data = std::move(data)]() mutable {
      if (Data* d = state_.data(id)) *d = std::move(data);
    });
  }

  /// Queues `change(data)` for `id`'s data, to run on the actor thread in
  /// order with everything else; an exception from it is ignored.
  /// Thread-safe, does not wait.
  void update_data(ConnectionId id, std::function<void(Data&)> change) {
    post_task([this, id, change = std::move(change)] {
      if (Data* d = state_.data(id)) {
        try {
          change(*d);
        } catch (...) {  // documented: ignored
        }
      }
    });
  }

  /// The number of registered connections once everything queued before
  /// the call, by this thread or any other, has been applied. Thread-safe;
  /// waits for the actor (not on the actor thread), unless it has applied
  /// everything already. O(1) plus the wait.
  std::size_t size() {
    catch_up();
    return size_.load(std::memory_order_acquire);
  }

  /// The counters once everything queued before the call has been applied,
  /// as size(). Thread-safe; waits for the actor (not on the actor thread)
  /// unless it is idle.
  RegistryStats stats() {
    catch_up();
    return counters_.snapshot();
  }

  /// The number of registered connections as the actor last applied it,
  /// without waiting: operations still in the mailbox are not included.
  /// Thread-safe, never waits. O(1).
  std::size_t size_approx() const noexcept { return size_.load(std::memory_order_acquire); }

  /// The counters as applied so far, without waiting (the mailbox gauges
  /// as last reported). Thread-safe, never waits.
  RegistryStats stats_approx() const noexcept { return counters_.snapshot(); }

  /// Returns once the actor has applied every message this thread queued
  /// before the call (and so made their Sender::send calls). Thread-safe.
  /// Returns at once, without a round trip to the actor, on the actor
  /// thread, and when everything this thread posted to this registry has
  /// already been applied (a thread that never posted pays nothing): the
  /// thread keeps the sequence number of its last post, and the actor
  /// publishes how far it has applied. Otherwise it posts a marker and waits
  /// for the actor to reach it. Operations other threads posted are not
  /// waited for unless they were posted before the marker (size() and
  /// stats() wait for everything queued before them; see there).
  void flush() {
    if (on_actor_thread()) return;
    const std::uint64_t mine = detail::thread_posts.last(instance_);
    const std::uint64_t applied = applied_seq_.load(std::memory_order_acquire);
    if (mine == 0) return;  // this thread never posted here
    if (mine != detail::ThreadPosts::unknown && applied >= mine) return;
    if (applied >= posted_seq_.load(std::memory_order_acquire)) return;  // all of it applied
    round_trip();
  }

 private:
  enum class Kind : std::uint8_t {
    insert, erase, send, broadcast, publish, subscribe, unsubscribe, task, flush
  };

  // Data operations count against the mailbox's capacity; the rest never wait.
  static bool is_data(Kind kind) noexcept {
    return kind == Kind::send || kind == Kind::broadcast || kind == Kind::publish;
  }

  struct Command {
    explicit Command(Kind k, ConnectionId target = no_connection,
                     std::shared_ptr<Sender> s = nullptr, Payload p = Payload(),
                     std::string t = std::string(), std::function<void()> f = nullptr)
        : kind(k),
          id(target),
          sender(std::move(s)),
          payload(std::move(p)),
          topic(std::move(t)),
          task(std::move(f)) {}

    Kind kind;
    ConnectionId id = no_connection;  // target, or the except-id of a broadcast/publish
    std::shared_ptr<Sender> sender;   // insert only
    Payload payload;                  // send, broadcast and publish
    std::string topic;                // publish, subscribe and unsubscribe
    std::function<void()> task;       // task: runs on the actor thread
    std::unique_ptr<std::promise<void>> done;  // flush only; the poster waits on it
  };

  // Waits until the actor has applied everything posted (by any thread)
  // before the call: what size() and stats() promise, so that a thread that
  // joined the producers sees their work. At once when the actor is idle.
  void catch_up() {
    if (on_actor_thread()) return;
    if (applied_seq_.load(std::memory_order_acquire) >= posted_seq_.load(std::memory_order_acquire)) {
      return;
    }
    round_trip();
  }

  // Posts a marker and waits until the actor has applied it.
  void round_trip() {
    // The promise travels in the message and dies on the actor thread; this
    // thread keeps only the future, so neither outlives what it touches.
    auto done = std::make_unique<std::promise<void>>();
    std::future<void> applied = done->get_future();
    Command command{Kind::flush};
    command.done = std::move(done);
    post(std::move(command));
    applied.wait();
  }

  bool on_actor_thread() const noexcept {
    return std::this_thread::get_id() == actor_id_.load(std::memory_order_acquire);
  }

  template <class Task>
  void post_task(Task&& task) {
    post(Command{Kind::task, no_connection, nullptr, Payload(), std::string(),
                 std::function<void()>(std::forward<Task>(task))});
  }

  // Runs `query` on the actor thread after everything queued before, and
  // returns its result; on the actor thread it runs at once.
  template <class Query>
  auto ask(Query&& query) -> decltype(query()) {
    using Result = decltype(query());
    if (on_actor_thread()) return query();
    auto answer = std::make_shared<std::promise<Result>>();
    std::future<Result> result = answer->get_future();
    post_task([answer, &query] {
      try {
        answer->set_value(query());
      } catch (...) {  // std::bad_alloc while copying the answer
        answer->set_exception(std::current_exception());
      }
    });
    return result.get();
  }

  void post(Command&& command) {
    const bool data = is_data(command.kind);
    bool was_empty = false;
    std::uint64_t seq = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (data && unapplied_data_ >= capacity_ && !exited_ && !on_actor_thread()) {
        detail::StatsCounters::bump(counters_.mailbox_waits);
        room_.wait(lock, [this] { return unapplied_data_ < capacity_ || exited_; });
      }
      if (exited_) {  // only reachable from a Sender released after the actor exited
        if (command.done) command.done->set_value();
        // The state is empty and the actor gone: answer queries from here.
        if (command.kind == Kind::task) command.task();
        return;
      }
      was_empty = mailbox_.empty();
      mailbox_.push_back(std::move(command));  // may throw: nothing changed
      seq = posted_seq_.load(std::memory_order_relaxed) + 1;  // written only here, under the lock
      posted_seq_.store(seq, std::memory_order_release);
      if (data) ++unapplied_data_;
      ++unapplied_;
      counters_.mailbox_depth.store(unapplied_, std::memory_order_relaxed);
      if (unapplied_ > counters_.mailbox_high_water.load(std::memory_order_relaxed)) {
        counters_.mailbox_high_water.store(unapplied_, std::memory_order_relaxed);
      }
    }
    detail::thread_posts.record(instance_, seq);
    // The actor takes the whole mailbox at once, so it needs waking only when
    // the mailbox was empty: otherwise a wake-up is already on its way.
    if (was_empty) ready_.notify_one();
  }

  // Called by the actor with the mailbox lock held: `done` operations, of
  // which `done_data` data operations, have been applied; makes room for
  // the producers waiting for it.
  void release_locked(std::size_t done, std::size_t done_data) noexcept {
    unapplied_ -= done;
    unapplied_data_ -= done_data;
    counters_.mailbox_depth.store(unapplied_, std::memory_order_relaxed);
    if (done_data != 0) room_.notify_all();
  }

  void run() {
    actor_id_.store(std::this_thread::get_id(), std::memory_order_release);
    std::vector<Command> batch;
    std::size_t done = 0;       // applied, not yet released
    std::size_t done_data = 0;  // of which data operations
    std::uint64_t first = 0;    // the sequence number of the next command to apply
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        release_locked(done, done_data);
        done = done_data = 0;
        ready_.wait(lock, [this] { return !mailbox_.empty() || stopping_; });
        if (mailbox_.empty()) break;  // stopping_, and nothing left to apply
        batch.swap(mailbox_);  // the mailbox keeps batch's capacity: no allocation
        // The batch holds the posts numbered (first - 1, posted_seq_], in order.
        first = posted_seq_.load(std::memory_order_relaxed) - batch.size() + 1;
      }
      for (Command& command : batch) {
        apply(command);
        // Published after each command: a flush() that sees it needs no round trip.
        applied_seq_.store(first++, std::memory_order_release);
        ++done;
        if (is_data(command.kind) && ++done_data == release_every_) {
          // A long batch makes room as it goes, so that waiting producers
          // refill the mailbox while the actor still works.
          std::lock_guard<std::mutex> lock(mutex_);
          release_locked(done, done_data);
          done = done_data = 0;
        }
      }
      batch.clear();  // releases payloads and senders outside the lock
    }
    // Still the only thread that touches the state. The state is moved out
    // before it is destroyed: a Sender destroyed with it may call the
    // registry (queries answer at once on this thread, from the now empty
    // state_; the rest is queued and dropped below).
    {
      detail::RegistryState<Data> doomed(std::move(state_));
      state_.clear();
      PresenceHandler old_handler = std::move(handler_);
      handler_ = nullptr;
    }
    size_.store(0, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      exited_ = true;
      batch.swap(mailbox_);
      release_locked(unapplied_, unapplied_data_);
    }
    room_.notify_all();
    for (Command& command : batch) {
      if (command.done) command.done->set_value();
    }
  }

  void apply_insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data) noexcept {
    try {
      if (!state_.insert(id, std::move(sender), std::move(data))) return;
    } catch (...) {  // std::bad_alloc: the connection stays unregistered
      return;
    }
    detail::StatsCounters::bump(counters_.connections_added);
    size_.store(state_.size(), std::memory_order_release);
  }

  // Reports one presence change, on the actor thread.
  auto reporter() {
    return [this](const std::string& topic, ConnectionId id, bool joined, std::size_t count) {
      if (!handler_) return;
      try {
        handler_(PresenceEvent{topic, id, joined, count});
      } catch (...) {  // documented: a throwing presence handler is ignored
      }
    };
  }

  void deliver(const detail::Members& recipients, const Payload& payload, ConnectionId except) {
    // Sender::send cannot change the recipients during this loop: registry
    // calls made from inside it are queued, not applied.
    detail::deliver(recipients, payload, except, counters_);
  }

  void apply(Command& command) noexcept {
    try {
      switch (command.kind) {
        case Kind::insert:
          apply_insert(command.id, std::move(command.sender), Data());
          break;
        case Kind::erase:
          if (state_.erase(command.id, reporter())) {
            detail::StatsCounters::bump(counters_.connections_removed);
            size_.store(state_.size(), std::memory_order_release);
          }
          break;
        case Kind::send: {
          const auto* sender = state_.find(command.id);
          if (!sender) {
            detail::StatsCounters::bump(counters_.send_unknown);
            break;
          }
          detail::DeliveryTally tally;
          tally.record((*sender)->send(command.payload));
          tally.flush_into(counters_);
          break;
        }
        case Kind::broadcast:
          deliver(state_.everyone().members(), command.payload, command.id);
          detail::StatsCounters::bump(counters_.broadcasts);
          break;
        case Kind::publish:
          if (const auto* set = state_.topic(command.topic)) {
            deliver(set->members(), command.payload, command.id);
          }
          detail::StatsCounters::bump(counters_.publishes);
          break;
        case Kind::subscribe:
          state_.subscribe(command.id, std::move(command.topic), reporter());
          break;
        case Kind::unsubscribe:
          state_.unsubscribe(command.id, command.topic, reporter());
          break;
        case Kind::task:
          command.task();
          break;
        case Kind::flush:
          command.done->set_value();
          break;
      }
    } catch (...) {  // std::bad_alloc: this operation is not applied, the state is unchanged
    }
  }

  // Fixed at construction: RegistryOptions::mailbox_capacity (at least 1),
  // and how many data operations the actor applies between two releases of
  // room within one batch.
  const std::size_t capacity_;
  const std::size_t release_every_;

  // This mutex synchronizes all access to mailbox_, unapplied_,
  // unapplied_data_, stopping_ and exited_.
  std::mutex mutex_;
  std::condition_variable ready_;  // the actor waits on it for work
  std::condition_variable room_;   // producers wait on it for room
  std::vector<Command> mailbox_;
  // Operations posted and not yet released by the actor (queued, in its
  // batch, or applied since its last release), and the data operations
  // among them: the count the capacity bounds.
  std::size_t unapplied_ = 0;
  std::size_t unapplied_data_ = 0;
  bool stopping_ = false;
  bool exited_ = false;

  // Owned by the actor thread alone: no lock.
  detail::RegistryState<Data> state_;
  PresenceHandler handler_;

  // This instance's id for the per-thread records of flush(), never reused.
  const std::uint64_t instance_ = detail::next_actor_instance();
  // Posts so far (the sequence number of the last; written under mutex_),
  // and how many of them the actor has applied (written by the actor after
  // each). Release stores, acquire loads: seeing applied_seq_ >= n means
  // seeing every effect of post n.
  std::atomic<std::uint64_t> posted_seq_{0};
  std::atomic<std::uint64_t> applied_seq_{0};

  // Written by the actor when the membership changes, read by anyone.
  std::atomic<std::size_t> size_{0};
  std::atomic<std::thread::id> actor_id_{};
  detail::StatsCounters counters_;

  // Last member: the thread starts only after every member above exists.
  std::thread thread_;
};

/// The actor policy with no per-connection data; ConnectionRegistry rebinds
/// it to the registry's Data.
using ActorPolicy = BasicActorPolicy<std::monostate>;

}  // namespace wsreg

#endif  // WSREG_ACTOR_POLICY_HPP
