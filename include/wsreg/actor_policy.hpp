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
#include <initializer_list>
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

/// What the calling thread last posted, per ActorPolicy instance and lane:
/// a few slots (a thread talks to few registries), replaced round-robin.
/// Lets flush() tell that everything this thread posted has been applied
/// without asking the actor.
///
/// Thread safety: thread_local; each thread touches only its own.
struct ThreadPosts {
  static constexpr std::size_t slots = 8;
  std::uint64_t instance[slots] = {};   // 0: free
  std::uint64_t data[slots] = {};       // the sequence number of the last data-lane post (0: none)
  std::uint64_t lifecycle[slots] = {};  // and of the last lifecycle-lane post
  std::size_t next = 0;                 // the slot to replace next
  bool forgot = false;                  // a slot in use was replaced

  /// Notes that this thread's post `s` to `id`, in the data lane or the
  /// lifecycle lane, is its latest there. Never allocates, never throws.
  void record(std::uint64_t id, std::uint64_t s, bool data_lane) noexcept {
    for (std::size_t i = 0; i < slots; ++i) {
      if (instance[i] == id) {
        (data_lane ? data[i] : lifecycle[i]) = s;
        return;
      }
    }
    if (instance[next] != 0) forgot = true;
    instance[next] = id;
    data[next] = data_lane ? s : 0;
    lifecycle[next] = data_lane ? 0 : s;
    next = (next + 1) % slots;
  }

  /// This thread's last posts to one instance.
  struct Last {
    bool posted = false;  // it posted there (or may have: !known)
    bool known = true;    // false: its record was replaced
    std::uint64_t data = 0;
    std::uint64_t lifecycle = 0;
  };
  Last last(std::uint64_t id) const noexcept {
    for (std::size_t i = 0; i < slots; ++i) {
      if (instance[i] == id) return Last{true, true, data[i], lifecycle[i]};
    }
    return forgot ? Last{true, false, 0, 0} : Last{};
  }
};

inline thread_local ThreadPosts thread_posts;

/// The group of the ActorPolicy whose actor runs on this thread (nullptr on
/// any other thread). A group is the set of actors that post to each other
/// from their callbacks, and must therefore never wait for room in each
/// other's mailboxes: an ActorPolicy alone is its own group; the shards of
/// one ShardedPolicy share the wrapper's (wsreg/sharded_policy.hpp).
///
/// Thread safety: thread_local; written once by the actor thread at start.
inline thread_local const void* actor_group_of_thread = nullptr;

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
/// returns at once if it already has. stats waits until it has applied
/// everything queued before the call by any thread (at once if it has).
/// size, data, topics_of, subscribers, subscriber_count and topic_count
/// wait until the actor has applied every lifecycle operation queued before
/// them by any thread, but not for data operations (see "Two lanes"):
/// behind a backlog of broadcasts they wait for at most the one the actor
/// is applying. Called on the actor thread itself (from inside Sender::send
/// or the presence handler) none of them waits, so a callback can use them
/// without deadlock, and then they reflect what the actor has applied so
/// far (the operations the callback just queued come after it returns).
/// size_approx and stats_approx never wait.
///
/// Ordering: every post takes a sequence number from one counter, under the
/// mailbox mutex, so sequence order is enqueue order, and the results are
/// exactly those of applying every operation in that order (it is
/// linearizable): an operation that happens-after another (same thread, or
/// synchronised through any other means) applies after it. Payloads from
/// one thread to one connection keep their order, and every connection
/// sees broadcasts in the same order. (moodycamel::ConcurrentQueue was
/// considered and rejected for this: its per-producer sub-queues are not
/// linearizable, so a send(id) could overtake the add that created id on
/// another thread.)
///
/// Two lanes: the mailbox has a data lane (send, broadcast, publish, and
/// the markers of flush and stats) and a lifecycle lane (everything else),
/// each a FIFO in sequence order. The actor applies lifecycle operations as
/// soon as they arrive: it looks at an atomic "lifecycle pending" flag
/// before each data operation (no extra lock on the data path), so an add
/// or remove waits behind at most the data operation being applied, not
/// behind the backlog. That is unobservable, because a data operation
/// numbered d acts on the membership as of d, whatever was applied since:
/// - every membership (a connection in the set of all connections, a
///   subscription in its topic) records the number of the operation that
///   made it; a delivery skips members added after it (detail::Span);
/// - a remove or unsubscribe numbered r is logical when applied: queries,
///   counts, presence events and later lifecycle operations see it gone at
///   once, while deliveries numbered below r still reach it (a send queued
///   before remove(id) is delivered, as under MutexPolicy). It becomes
///   physical (the entry erased, the Sender released, on the actor thread,
///   outside any lock) once the data lane has applied every operation
///   numbered below r; they are all queued when r is taken, since numbers
///   are handed out at enqueue;
/// - a membership removed logically stays in its set as a "ghost" with
///   its span, apart from the members, so a subscription can end and start
///   again (unsubscribe, then subscribe) while the end is still logical:
///   the new membership and the ghost each get exactly the publishes of
///   their own span, and the subscribe waits for nothing either; ids are
///   never reused, so a connection has one span;
/// - lifecycle operations, and with them the presence handler and
///   update_data's functions, run in sequence order among themselves; each
///   data operation runs after every lifecycle operation numbered below it.
/// What a caller can see differ is timing on the actor thread only: a
/// presence handler or update_data function may run before the
/// Sender::send calls of data operations queued ahead of its operation (as
/// MutexPolicy makes no promise about callbacks on different threads), and
/// a query made from inside Sender::send may reflect lifecycle operations
/// queued after that delivery.
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
/// over capacity; so does the actor of any policy of its group, the other
/// shards of a ShardedPolicy), and lifecycle operations (insert, erase, subscribe,
/// unsubscribe, set_data, update_data, set_presence_handler, flush and the
/// queries) never wait for room. mailbox_depth counts both lanes.
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
      : BasicActorPolicy(options, nullptr) {}

  /// The same, as one actor of a group (`group`, not null, identifies it;
  /// nullptr: a group of its own): a post made from the actor thread of any
  /// member of the group never waits for room, as a post from this actor's
  /// own thread does not, so that actors that post to each other from their
  /// callbacks cannot wait for each other in a cycle. Used by ShardedPolicy
  /// for its shards. Throws std::system_error if the thread cannot start.
  BasicActorPolicy(const RegistryOptions& options, const void* group)
      : capacity_(options.mailbox_capacity == 0 ? 1 : options.mailbox_capacity),
        release_every_(capacity_ / 4 == 0 ? 1 : capacity_ / 4),
        group_(group != nullptr ? group : this),
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

  /// Queues the registration of `sender` and `data` under `id` (lifecycle
  /// lane). Thread-safe, does not wait. O(1) amortised.
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
  /// unknown id does nothing. Lifecycle lane: applied ahead of queued data
  /// operations, which still reach `id` if queued before it. Thread-safe,
  /// does not wait. O(1) amortised.
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

  /// Queues the subscription of `id` to `topic` (lifecycle lane).
  /// Thread-safe, does not wait. The presence handler runs on the actor
  /// thread when it is applied.
  void subscribe(ConnectionId id, std::string topic) {
    post(Command{Kind::subscribe, id, nullptr, Payload(), std::move(topic)});
  }

  /// Queues the end of `id`'s subscription to `topic` (lifecycle lane).
  /// Thread-safe, does not wait.
  void unsubscribe(ConnectionId id, std::string topic) {
    post(Command{Kind::unsubscribe, id, nullptr, Payload(), std::move(topic)});
  }

  /// `id`'s topics, sorted, once every lifecycle operation queued before is
  /// applied. Thread-safe; waits for the actor (not on the actor thread),
  /// not for queued data operations.
  std::vector<std::string> topics_of(ConnectionId id) {
    return ask([this, id] { return state_.topics_of(id); });
  }

  /// `topic`'s subscribers, ascending. Thread-safe; waits as topics_of().
  std::vector<ConnectionId> subscribers(const std::string& topic) {
    return ask([this, &topic] { return state_.subscribers(topic); });
  }

  /// `topic`'s subscriber count. Thread-safe; waits as topics_of().
  std::size_t subscriber_count(const std::string& topic) {
    return ask([this, &topic] { return state_.subscriber_count(topic); });
  }

  /// The number of topics with a subscriber. Thread-safe; waits as
  /// topics_of().
  std::size_t topic_count() {
    return ask([this] { return state_.topic_count(); });
  }

  /// Queues the replacement of the presence handler (empty: none).
  /// Thread-safe, does not wait; changes applied after it are reported, on
  /// the actor thread. The old handler may still be called until the
  /// replacement is applied: after a flush() that follows this call, it
  /// never is again.
  void set_presence_handler(PresenceHandler<Data> handler) {
    post_task([this, handler = std::move(handler)]() mutable { handler_ = std::move(handler); });
  }

  /// A copy of `id`'s data, made on the actor thread (the actor hands out no
  /// reference into its state). Thread-safe; waits as topics_of().
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
  /// order with the other lifecycle operations; an exception from it is
  /// ignored. Thread-safe, does not wait.
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

  /// The number of registered connections once every lifecycle operation
  /// queued before the call, by this thread or any other, has been applied
  /// (data operations do not change it, and are not waited for).
  /// Thread-safe; waits for the actor (not on the actor thread), unless it
  /// has applied them all already. O(1) plus the wait.
  std::size_t size() {
    if (!on_actor_thread() &&
        applied_lifecycle_seq_.load(std::memory_order_acquire) <
            posted_lifecycle_seq_.load(std::memory_order_acquire)) {
      round_trip(Lane::lifecycle);
    }
    return size_.load(std::memory_order_acquire);
  }

  /// The counters once everything queued before the call (both lanes) has
  /// been applied. Thread-safe; waits for the actor (not on the actor
  /// thread) unless it has applied it all.
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
  /// thread keeps the sequence numbers of its last post in each lane, and
  /// the actor publishes how far it has applied each. Otherwise it posts a
  /// marker and waits for the actor to reach it: in the data lane if one of
  /// this thread's data operations is pending (the marker then also waits
  /// for the data operations other threads queued before it), in the
  /// lifecycle lane if only lifecycle operations are (it then does not wait
  /// behind data). size() and stats() wait for what any thread queued
  /// before them; see there.
  void flush() {
    if (on_actor_thread()) return;
    const detail::ThreadPosts::Last mine = detail::thread_posts.last(instance_);
    if (!mine.posted) return;  // this thread never posted here
    if (mine.known) {
      const bool data_done = applied_data_seq_.load(std::memory_order_acquire) >= mine.data;
      if (data_done && applied_lifecycle_seq_.load(std::memory_order_acquire) >= mine.lifecycle) {
        return;
      }
      round_trip(data_done ? Lane::lifecycle : Lane::data);
      return;
    }
    catch_up();  // its record was replaced: wait for everything queued so far
  }

 private:
  enum class Kind : std::uint8_t {
    // The lifecycle lane.
    insert, erase, subscribe, unsubscribe, task, sync,
    // The data lane.
    send, broadcast, publish, flush
  };
  enum class Lane : std::uint8_t { lifecycle, data };

  static bool in_data_lane(Kind kind) noexcept { return kind >= Kind::send; }

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
    std::uint64_t seq = 0;            // set by post(), under the mailbox mutex
    ConnectionId id = no_connection;  // target, or the except-id of a broadcast/publish
    std::shared_ptr<Sender> sender;   // insert only
    Payload payload;                  // send, broadcast and publish
    std::string topic;                // publish, subscribe and unsubscribe
    std::function<void()> task;       // task: runs on the actor thread
    std::unique_ptr<std::promise<void>> done;  // sync and flush; the poster waits on it
  };

  // Waits until the actor has applied everything posted (by any thread, in
  // either lane) before the call: what stats() promises, so that a thread
  // that joined the producers sees their work. At once when it has.
  void catch_up() {
    if (on_actor_thread()) return;
    const bool data_done = applied_data_seq_.load(std::memory_order_acquire) >=
                           posted_data_seq_.load(std::memory_order_acquire);
    if (data_done && applied_lifecycle_seq_.load(std::memory_order_acquire) >=
                         posted_lifecycle_seq_.load(std::memory_order_acquire)) {
      return;
    }
    // A marker in the data lane is applied after every data operation and
    // every lifecycle operation posted before it.
    round_trip(data_done ? Lane::lifecycle : Lane::data);
  }

  // Posts a marker in `lane` and waits until the actor has applied it.
  void round_trip(Lane lane) {
    // The promise travels in the message and dies on the actor thread; this
    // thread keeps only the future, so neither outlives what it touches.
    auto done = std::make_unique<std::promise<void>>();
    std::future<void> applied = done->get_future();
    Command command{lane == Lane::data ? Kind::flush : Kind::sync};
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

  // Runs `query` on the actor thread after every lifecycle operation queued
  // before, and returns its result; on the actor thread it runs at once.
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
    const bool data_lane = in_data_lane(command.kind);
    const bool data = is_data(command.kind);
    bool was_idle = false;
    std::uint64_t seq = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (data && unapplied_data_ >= capacity_ && !exited_ &&
          detail::actor_group_of_thread != group_) {
        detail::StatsCounters::bump(counters_.mailbox_waits);
        room_.wait(lock, [this] { return unapplied_data_ < capacity_ || exited_; });
      }
      if (exited_) {  // only reachable from a Sender released after the actor exited
        if (command.done) command.done->set_value();
        // The state is empty and the actor gone: answer queries from here.
        if (command.kind == Kind::task) command.task();
        return;
      }
      was_idle = data_.empty() && lifecycle_.empty();
      seq = last_seq_ + 1;
      command.seq = seq;
      (data_lane ? data_ : lifecycle_).push_back(std::move(command));  // may throw: nothing changed
      last_seq_ = seq;
      if (data_lane) {
        posted_data_seq_.store(seq, std::memory_order_release);
      } else {
        posted_lifecycle_seq_.store(seq, std::memory_order_release);
        lifecycle_pending_.store(true, std::memory_order_relaxed);
      }
      if (data) ++unapplied_data_;
      ++unapplied_;
      counters_.mailbox_depth.store(unapplied_, std::memory_order_relaxed);
      if (unapplied_ > counters_.mailbox_high_water.load(std::memory_order_relaxed)) {
        counters_.mailbox_high_water.store(unapplied_, std::memory_order_relaxed);
      }
    }
    detail::thread_posts.record(instance_, seq, data_lane);
    // The actor takes both lanes at once when it waits for work, so it
    // needs waking only when both were empty: otherwise a wake-up is on its
    // way, or it is working and will see the lifecycle flag or the data.
    if (was_idle) ready_.notify_one();
  }

  // Called by the actor with the mailbox lock held: done_ operations, of
  // which done_data_ data operations, have been applied; makes room for the
  // producers waiting for it.
  void release_locked() noexcept {
    unapplied_ -= done_;
    unapplied_data_ -= done_data_;
    counters_.mailbox_depth.store(unapplied_, std::memory_order_relaxed);
    if (done_data_ != 0) room_.notify_all();
    done_ = done_data_ = 0;
  }

  // With the mailbox lock held: the lowest sequence number a data-lane
  // entry not yet applied can have (a lower bound; `never` if none is
  // queued). Every lifecycle operation taken so far was posted before any
  // data operation still to be posted, so the bound holds for them too.
  void note_data_front_locked() noexcept {
    if (data_next_ < data_batch_.size()) {
      data_front_ = data_batch_[data_next_].seq;
    } else {
      data_front_ = data_.empty() ? detail::never : data_.front().seq;
    }
  }

  // With the mailbox lock held: moves the lifecycle lane into the local
  // batch (which is empty: swapping allocates nothing).
  void take_lifecycle_locked() noexcept {
    lifecycle_batch_.swap(lifecycle_);
    lifecycle_pending_.store(false, std::memory_order_relaxed);
    note_data_front_locked();
  }

  // With the mailbox lock held, the local data batch used up and cleared:
  // moves the data lane into it.
  void take_data_locked() noexcept {
    data_batch_.swap(data_);
    data_next_ = 0;
    note_data_front_locked();
  }

  void run() {
    detail::actor_group_of_thread = group_;
    actor_id_.store(std::this_thread::get_id(), std::memory_order_release);
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        release_locked();
        ready_.wait(lock, [this] {
          return !lifecycle_.empty() || !data_.empty() || stopping_ || state_.retiring();
        });
        if (lifecycle_.empty() && data_.empty() && !state_.retiring()) break;  // stopping_
        take_lifecycle_locked();
        take_data_locked();
      }
      // Every data operation numbered below the lifecycle batch is in the
      // data batch or applied: the batch applies first, then the data.
      purge();
      apply_lifecycle_batch();
      apply_data_batch();
    }
    // Still the only thread that touches the state. The state is moved out
    // before it is destroyed: a Sender destroyed with it may call the
    // registry (queries answer at once on this thread, from the now empty
    // state_; the rest is queued and dropped below).
    {
      detail::RegistryState<Data> doomed(std::move(state_));
      state_.clear();
      PresenceHandler<Data> old_handler = std::move(handler_);
      handler_ = nullptr;
    }
    size_.store(0, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      exited_ = true;
      lifecycle_batch_.swap(lifecycle_);
      data_batch_.swap(data_);
      done_ = unapplied_;
      done_data_ = unapplied_data_;
      release_locked();
    }
    room_.notify_all();
    for (auto* dropped : {&lifecycle_batch_, &data_batch_}) {
      for (Command& command : *dropped) {
        if (command.done) command.done->set_value();
      }
    }
  }

  // Applies the local lifecycle batch, in order.
  void apply_lifecycle_batch() noexcept {
    for (Command& command : lifecycle_batch_) {
      current_seq_ = command.seq;
      apply(command);
      applied_lifecycle_seq_.store(command.seq, std::memory_order_release);
      ++done_;
      if (state_.retiring()) purge();  // a remove with no data before it: released at once
    }
    lifecycle_batch_.clear();  // releases what the commands held, outside the lock
  }

  // Applies the local data batch, taking the lifecycle lane in between
  // whenever it has something (the priority lane).
  void apply_data_batch() noexcept {
    for (;;) {
      // A relaxed load suffices: a lifecycle operation numbered below the
      // next data operation was posted, flag set, under the mutex before
      // that data operation was, so before this thread took it under the
      // same mutex; only this thread clears the flag, when it takes them.
      if (lifecycle_pending_.load(std::memory_order_relaxed)) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          release_locked();
          take_lifecycle_locked();
        }
        apply_lifecycle_batch();
      }
      if (data_next_ == data_batch_.size()) break;
      apply_next_data();
    }
    data_batch_.clear();  // releases payloads outside the lock
    data_next_ = 0;
  }

  // Applies the next entry of the local data batch.
  void apply_next_data() noexcept {
    Command& command = data_batch_[data_next_++];
    current_seq_ = command.seq;
    apply(command);
    // Published after each: a flush() that sees it needs no round trip.
    applied_data_seq_.store(command.seq, std::memory_order_release);
    data_front_ = data_next_ < data_batch_.size() ? data_batch_[data_next_].seq : command.seq + 1;
    ++done_;
    if (is_data(command.kind) && ++done_data_ == release_every_) {
      // A long batch makes room as it goes, so that waiting producers
      // refill the mailbox while the actor still works.
      std::lock_guard<std::mutex> lock(mutex_);
      release_locked();
    }
    if (state_.retiring()) purge();
  }

  // Makes physical every logical removal that no data operation still to
  // be applied can reach: those numbered below data_front_. Each Sender is
  // released here, on the actor thread, with no lock held, once the state
  // is consistent again (its destructor may call the registry).
  void purge() noexcept {
    while (state_.oldest_retirement() < data_front_) {
      std::shared_ptr<Sender> released = state_.purge_one();
    }
  }

  void apply_insert(ConnectionId id, std::shared_ptr<Sender> sender, Data data) noexcept {
    try {
      if (!state_.insert(id, std::move(sender), std::move(data), current_seq_)) return;
    } catch (...) {  // std::bad_alloc: the connection stays unregistered
      return;
    }
    detail::StatsCounters::bump(counters_.connections_added);
    size_.store(state_.size(), std::memory_order_release);
  }

  // Reports one presence change, on the actor thread, with the connection's
  // Data (still in the state: a removed connection is retired, not yet
  // purged, while its leaves are reported).
  auto reporter() {
    return [this](const std::string& topic, ConnectionId id, bool joined, std::size_t count) {
      if (!handler_) return;
      const Data* data = state_.entry_data(id);
      if (!data) return;  // not reached: every change is of a connection in the state
      try {
        handler_(PresenceEvent<Data>{topic, id, joined, count, *data});
      } catch (...) {  // documented: a throwing presence handler is ignored
      }
    };
  }

  void apply(Command& command) noexcept {
    // Sender::send cannot change the recipients during a delivery below:
    // registry calls made from inside it are queued, not applied.
    try {
      switch (command.kind) {
        case Kind::insert:
          apply_insert(command.id, std::move(command.sender), Data());
          break;
        case Kind::erase:
          if (state_.retire(command.id, command.seq, reporter())) {
            detail::StatsCounters::bump(counters_.connections_removed);
            size_.store(state_.size(), std::memory_order_release);
          }
          break;
        case Kind::send: {
          const auto* sender = state_.send_target_at(command.id, command.seq);
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
          detail::deliver_at(state_.everyone(), command.payload, command.id, command.seq,
                             counters_);
          detail::StatsCounters::bump(counters_.broadcasts);
          break;
        case Kind::publish:
          if (const auto* set = state_.topic(command.topic)) {
            detail::deliver_at(*set, command.payload, command.id, command.seq, counters_);
          }
          detail::StatsCounters::bump(counters_.publishes);
          break;
        case Kind::subscribe:
          state_.subscribe(command.id, std::move(command.topic), reporter(), command.seq);
          break;
        case Kind::unsubscribe:
          state_.retire_subscription(command.id, command.topic, command.seq, reporter());
          break;
        case Kind::task:
          command.task();
          break;
        case Kind::sync:
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
  // The group this actor belongs to (see detail::actor_group_of_thread):
  // `this`, or the ShardedPolicy whose shard it is.
  const void* const group_;

  // This mutex synchronizes all access to lifecycle_, data_, last_seq_,
  // unapplied_, unapplied_data_, stopping_ and exited_.
  std::mutex mutex_;
  std::condition_variable ready_;  // the actor waits on it for work
  std::condition_variable room_;   // producers wait on it for room
  // The two lanes, each in sequence order.
  std::vector<Command> lifecycle_;
  std::vector<Command> data_;
  std::uint64_t last_seq_ = 0;  // the sequence number of the last post
  // Operations posted and not yet released by the actor (queued, in its
  // batches, or applied since its last release), and the data operations
  // among them: the count the capacity bounds.
  std::size_t unapplied_ = 0;
  std::size_t unapplied_data_ = 0;
  bool stopping_ = false;
  bool exited_ = false;
  // Whether lifecycle_ may be non-empty: set by post() under mutex_,
  // cleared by the actor under mutex_ when it takes lifecycle_, read by the
  // actor without the lock before each data operation.
  std::atomic<bool> lifecycle_pending_{false};

  // Owned by the actor thread alone: no lock.
  detail::RegistryState<Data> state_;
  PresenceHandler<Data> handler_;
  std::vector<Command> lifecycle_batch_;  // taken from lifecycle_, being applied
  std::vector<Command> data_batch_;       // taken from data_; [data_next_, end) not applied
  std::size_t data_next_ = 0;
  std::uint64_t data_front_ = detail::never;  // see note_data_front_locked()
  std::uint64_t current_seq_ = 0;            // of the operation being applied
  std::size_t done_ = 0;                     // applied, not yet released
  std::size_t done_data_ = 0;                // of which data operations

  // This instance's id for the per-thread records of flush(), never reused.
  const std::uint64_t instance_ = detail::next_actor_instance();
  // The sequence number of the last post in each lane (written under
  // mutex_), and of the last applied in each (written by the actor after
  // each). Each lane is applied in sequence order, so seeing applied >= n
  // means every post of that lane numbered n or less is applied. Release
  // stores, acquire loads: seeing it means seeing every effect.
  std::atomic<std::uint64_t> posted_data_seq_{0};
  std::atomic<std::uint64_t> posted_lifecycle_seq_{0};
  std::atomic<std::uint64_t> applied_data_seq_{0};
  std::atomic<std::uint64_t> applied_lifecycle_seq_{0};

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
