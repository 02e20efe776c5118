// wsreg/nats_backplane.hpp: a Backplane over NATS core pub/sub, through the official NATS C client.
#ifndef WSREG_NATS_BACKPLANE_HPP
#define WSREG_NATS_BACKPLANE_HPP

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "wsreg/backplane.hpp"
#include "wsreg/detail/backplane_queue.hpp"

namespace wsreg {

/// The tunables of a NatsBackplane: the queue bounds and reconnection of
/// BackplaneOptions, and the NATS client's own. Every field has a default.
///
/// Thread safety: a plain value, copied by the constructor.
struct NatsOptions : BackplaneOptions {
  /// The NATS server: "nats://host:port", or several separated by commas
  /// (the client tries each); no TLS. Default "nats://127.0.0.1:4222".
  std::string url = "nats://127.0.0.1:4222";
  /// How often the client sends PING to the server (stall detection). Default 1 s.
  std::chrono::milliseconds ping_interval{1000};
  /// PINGs left unanswered before the connection counts as stalled and is
  /// made again (a SIGSTOPped server is noticed within about
  /// ping_interval * (max_pings_out + 1)). Default 3.
  int max_pings_out = 3;
  /// How long one write to the server's socket may block before the
  /// connection counts as stalled and is made again (bounds how long the
  /// backplane's thread, and stop(), can hang on a stalled server).
  /// Default 2 s.
  std::chrono::milliseconds write_timeout{2000};
  /// How long one connection attempt (TCP connect and the NATS handshake)
  /// may take before it counts as failed (a SIGSTOPped server accepts TCP
  /// connections but never answers). Default 2 s.
  std::chrono::milliseconds connect_timeout{2000};
};

/// A Backplane (docs/concepts/backplane.md) over NATS core pub/sub, through
/// the official NATS C client (libnats 3.4, <nats/nats.h>): one channel is
/// one NATS subject, so a channel must be a valid subject (no spaces, no
/// empty '.'-separated token) and '*' and '>' in it are wildcards; the
/// channels Cluster makes are (detail::encode_topic).
///
/// Delivery is at most once, as NATS core is: what is published while
/// disconnected is lost (PublishResult::lost, counted in
/// BackplaneStats::publish_lost), and so is what is queued when the
/// connection drops (the client's reconnect buffer is set to zero bytes, so
/// it never holds publishes back silently: they fail and are counted lost).
/// Bytes already handed to the client (BackplaneStats::published) when the
/// socket dies are lost without being counted. The server does not echo a
/// node's own publications back to it (natsOptions_SetNoEcho).
///
/// Reconnecting is the client's: it retries forever, also when the server
/// is down at start() (natsOptions_SetRetryOnFailedConnect,
/// natsOptions_SetMaxReconnect(-1)), waiting as ReconnectOptions says
/// (natsOptions_SetCustomReconnectDelay), and after a reconnect it sends
/// the server every subscription the connection has again before any
/// queued data (conn.c, _doReconnect: _resendSubscriptions then
/// _flushReconnectPendingItems), so a channel subscribed before an outage
/// delivers again after it without another subscribe(). Should the client
/// close the connection for good anyway (it does if it cannot start its
/// reconnect thread), the backplane makes a new one and subscribes again.
///
/// Ownership: owns one NATS connection and one thread (which makes the
/// connection and does every publish, subscribe and unsubscribe), from
/// start() to stop(); the handlers given to start() until stop().
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe, except
/// start() and stop(), which must not overlap each other or the
/// destructor. publish(), subscribe(), unsubscribe() and stats() never wait
/// for NATS: they queue for the backplane's thread under one short mutex.
/// on_message runs on the NATS client's global message-delivery thread
/// (one thread for all subscriptions of all connections that use it:
/// natsOptions_UseGlobalMessageDelivery, so 10,000 channels are not 10,000
/// threads; in order per channel); on_state runs on the NATS client's
/// callback thread, or, for a connection made at the first try, on the
/// backplane's own thread. A handler must not call stop() (it waits for
/// the handlers to finish).
class NatsBackplane {
 public:
  /// Checks `options.url`; throws std::invalid_argument if it is empty or
  /// one of its URLs has a scheme other than nats://. Connects nothing
  /// until start().
  explicit NatsBackplane(NatsOptions options = {})
      : options_(std::move(options)),
        queue_(options_.max_queued_messages, options_.max_queued_bytes) {
    check_url(options_.url);
  }

  NatsBackplane(const NatsBackplane&) = delete;
  NatsBackplane& operator=(const NatsBackplane&) = delete;

  /// stop().
  ~NatsBackplane() { stop(); }

  /// Starts the backplane's thread, which connects (and keeps trying),
  /// subscribes to the channels wanted so far, then takes what callers
  /// queue. Returns at once. Throws std::system_error if the thread cannot
  /// be started; std::logic_error if already started. Failures of the NATS
  /// client are never thrown: they are counted in
  /// BackplaneStats::connect_failures and retried.
  void start(BackplaneHandlers handlers) {
    if (thread_.joinable()) throw std::logic_error("wsreg::NatsBackplane: started twice");
    handlers_ = std::move(handlers);
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      stopping_ = false;
      wake_ = true;  // take what was queued before start()
    }
    closing_.store(false);
    thread_ = std::thread([this] { run(); });
  }

  /// Publishes what is queued (for at most 200 ms, and only if connected;
  /// the rest is counted lost), closes the connection and joins the
  /// thread. After it returns no handler runs: it waits for the NATS
  /// client's closed callback, the last the client posts for a connection
  /// (after its reconnect thread has ended), and for each subscription's
  /// completion callback (natsSubscription_SetOnCompleteCB: "invoked after
  /// the subscription is closed and the message handler has returned").
  /// With a stalled server it may take up to write_timeout (a write in
  /// progress) plus connect_timeout (the client's reconnect thread in a
  /// handshake, which natsConnection_Close waits for) plus 200 ms.
  /// Idempotent. Must not be called from a handler.
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      stopping_ = true;
    }
    wake_changed_.notify_one();
    thread_.join();
    set_connected(false, false);
  }

  /// Wants `channel`: subscribed now if connected, and by the client again
  /// after every reconnect. Idempotent. Thread-safe; never waits for NATS.
  void subscribe(std::string channel) { control(detail::BackplaneOp::Kind::subscribe, std::move(channel)); }

  /// No longer wants `channel`. A message already on its way may still be
  /// delivered. Idempotent. Thread-safe; never waits for NATS.
  void unsubscribe(std::string channel) {
    control(detail::BackplaneOp::Kind::unsubscribe, std::move(channel));
  }

  /// Queues `message` for publication on `channel`: queued, dropped (the
  /// queue is full) or lost (disconnected now, as the NATS client's
  /// callbacks last said; nothing is queued). A queued message the client
  /// refuses later (disconnected by then, larger than the server's
  /// max_payload, an invalid subject) is counted lost. Thread-safe; O(1);
  /// never waits for NATS.
  PublishResult publish(std::string channel, std::string message) {
    if (!connected_.load(std::memory_order_acquire)) {
      lost_.fetch_add(1, std::memory_order_relaxed);
      return PublishResult::lost;
    }
    bool was_empty = false;
    const PublishResult result = queue_.push_publish(std::move(channel), std::move(message), was_empty);
    if (result == PublishResult::dropped) dropped_.fetch_add(1, std::memory_order_relaxed);
    if (was_empty) wake();
    return result;
  }

  /// True while connected: the NATS client has called back that it is
  /// connected, and natsConnection_Status says NATS_CONN_STATUS_CONNECTED
  /// now. Thread-safe. May wait for the NATS connection's lock, which the
  /// client holds while it makes a TCP connection and handshake (up to
  /// NatsOptions::connect_timeout) or writes to a stalled server (up to
  /// NatsOptions::write_timeout); publish() and stats() do not.
  bool connected() const {
    if (!connected_.load(std::memory_order_acquire)) return false;
    std::lock_guard<std::mutex> lock(connection_mutex_);
    return connection_ != nullptr && natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
  }

  /// The counters. `connected` follows the NATS client's callbacks (as
  /// publish() does), without asking the connection. `connect_failures`
  /// counts the client's failed attempts (each one retried after the
  /// back-off). Thread-safe; never waits for NATS.
  BackplaneStats stats() const {
    BackplaneStats out;
    out.connected = connected_.load(std::memory_order_acquire) ? 1 : 0;
    out.reconnects = reconnects_.load(std::memory_order_relaxed);
    out.connect_failures = connect_failures_.load(std::memory_order_relaxed);
    out.published = published_.load(std::memory_order_relaxed);
    out.publish_dropped = dropped_.load(std::memory_order_relaxed);
    out.publish_lost = lost_.load(std::memory_order_relaxed);
    out.received = received_.load(std::memory_order_relaxed);
    out.channels = channels_count_.load(std::memory_order_relaxed);
    out.queue_depth = queue_.depth();
    out.subscribed = out.connected != 0 ? subscribed_.load(std::memory_order_relaxed) : 0;
    return out;
  }

  /// "nats". Thread-safe.
  std::string_view name() const noexcept { return "nats"; }

 private:
  using clock = std::chrono::steady_clock;

  static void check_url(std::string_view urls) {
    if (urls.empty()) throw std::invalid_argument("wsreg::NatsBackplane: no URL");
    while (true) {
      const std::size_t comma = urls.find(',');
      std::string_view url = urls.substr(0, comma);
      while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
      const std::size_t scheme = url.find("://");
      if (url.empty() || (scheme != std::string_view::npos && url.substr(0, scheme) != "nats")) {
        throw std::invalid_argument("wsreg::NatsBackplane: not a nats:// URL: " + std::string(url));
      }
      if (comma == std::string_view::npos) break;
      urls.remove_prefix(comma + 1);
    }
  }

  void control(detail::BackplaneOp::Kind kind, std::string channel) {
    bool was_empty = false;
    queue_.push_control(kind, std::move(channel), was_empty);
    if (was_empty) wake();
  }

  void wake() {
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      wake_ = true;
    }
    wake_changed_.notify_one();
  }

  // The one place connected_ changes; on_state is told of each change
  // (unless `tell` is false), in order, whichever thread makes it.
  void set_connected(bool now, bool tell) {
    std::lock_guard<std::mutex> lock(state_mutex_);
    const bool before = connected_.exchange(now, std::memory_order_acq_rel);
    if (before == now) return;
    if (!now) subscribed_.store(0, std::memory_order_relaxed);
    if (now) {
      confirm_.store(true, std::memory_order_relaxed);  // the worker confirms the subscriptions
      wake();
      if (ever_connected_) reconnects_.fetch_add(1, std::memory_order_relaxed);
      ever_connected_ = true;
    }
    if (tell && !closing_.load() && handlers_.on_state) {
      try {
        handlers_.on_state(now);
      } catch (...) {  // must not throw; never let it unwind into the C client
      }
    }
  }

  std::chrono::milliseconds backoff(unsigned attempt) {
    const std::chrono::milliseconds delay = reconnect_delay(options_.reconnect, attempt);
    std::lock_guard<std::mutex> lock(random_mutex_);
    std::uniform_int_distribution<long long> shorten(0, delay.count() / 4);
    return delay - std::chrono::milliseconds(shorten(random_));
  }

  // --- NATS client callbacks (closure: this) ---

  // The connection's reconnect thread, before attempt `attempts` (1 for the
  // first after a loss); attempts > 1 means the one before failed.
  static int64_t on_reconnect_delay(natsConnection* /*nc*/, int attempts, void* closure) {
    auto* self = static_cast<NatsBackplane*>(closure);
    if (attempts > 1) self->connect_failures_.fetch_add(1, std::memory_order_relaxed);
    const unsigned attempt = attempts > 1 ? static_cast<unsigned>(attempts - 1) : 0u;
    return static_cast<int64_t>(self->backoff(attempt).count());
  }

  // The client's callback thread: a connection made after a failed first try.
  static void on_connected(natsConnection* /*nc*/, void* closure) {
    static_cast<NatsBackplane*>(closure)->set_connected(true, true);
  }

  static void on_reconnected(natsConnection* /*nc*/, void* closure) {
    static_cast<NatsBackplane*>(closure)->set_connected(true, true);
  }

  static void on_disconnected(natsConnection* /*nc*/, void* closure) {
    auto* self = static_cast<NatsBackplane*>(closure);
    {
      std::lock_guard<std::mutex> lock(self->state_mutex_);
      ++self->losses_;
    }
    self->set_connected(false, true);
  }

  // The last callback the client posts for a connection.
  static void on_closed(natsConnection* /*nc*/, void* closure) {
    auto* self = static_cast<NatsBackplane*>(closure);
    {
      std::lock_guard<std::mutex> lock(self->state_mutex_);
      ++self->losses_;
    }
    self->set_connected(false, true);
    if (!self->closing_.load()) {  // closed by the client itself: make a new one
      self->reopen_.store(true);
      self->wake();
    }
    // The last touch of *self: once closed_seen_ is set, stop() may return
    // and the backplane be destroyed.
    std::lock_guard<std::mutex> lock(self->callbacks_mutex_);
    self->closed_seen_ = true;
    self->callbacks_done_.notify_all();
  }

  // The global delivery thread, one message at a time per subscription.
  static void on_nats_message(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsMsg* msg,
                              void* closure) {
    auto* self = static_cast<NatsBackplane*>(closure);
    if (!self->closing_.load(std::memory_order_relaxed)) {
      self->received_.fetch_add(1, std::memory_order_relaxed);
      if (self->handlers_.on_message) {
        const char* subject = natsMsg_GetSubject(msg);
        const char* data = natsMsg_GetData(msg);
        const int length = natsMsg_GetDataLength(msg);
        try {
          self->handlers_.on_message(
              std::string_view(subject, std::strlen(subject)),
              std::string_view(data != nullptr ? data : "", length > 0 ? static_cast<std::size_t>(length) : 0));
        } catch (...) {  // must not throw; never let it unwind into the C client
        }
      }
    }
    natsMsg_Destroy(msg);
  }

  // The global delivery thread, after a subscription's last message handler.
  static void on_subscription_done(void* closure) {
    auto* self = static_cast<NatsBackplane*>(closure);
    std::lock_guard<std::mutex> lock(self->callbacks_mutex_);
    --self->live_subscriptions_;
    self->callbacks_done_.notify_all();
  }

  // --- the backplane's thread ---

  // Makes the connection (the client keeps trying in the background if the
  // server does not answer now). False if the client failed outright.
  bool open_connection() {
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, options_.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);  // forever (srvpool.c: maxReconnect < 0)
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, this);
    if (s == NATS_OK) s = natsOptions_SetCustomReconnectDelay(opts, on_reconnect_delay, this);
    // Zero bytes: a publish while reconnecting fails (NATS_INSUFFICIENT_BUFFER)
    // instead of waiting in the client's buffer. nats.h says 0 means the 8 MB
    // default, but the code keeps 0 as 0 (3.4.1 and today: opts.c rejects
    // only < 0, pub.c refuses when natsBuf_Len(pending) >= reconnectBufSize).
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, 0);
    if (s == NATS_OK) s = natsOptions_SetNoEcho(opts, true);
    if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(opts, true);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, options_.ping_interval.count());
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, options_.max_pings_out);
    if (s == NATS_OK) s = natsOptions_SetWriteDeadline(opts, options_.write_timeout.count());
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, options_.connect_timeout.count());
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, this);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, this);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, on_closed, this);
    natsConnection* nc = nullptr;
    std::uint64_t losses = 0;
    if (s == NATS_OK) {
      {
        std::lock_guard<std::mutex> lock(callbacks_mutex_);
        closed_seen_ = false;
      }
      {
        std::lock_guard<std::mutex> lock(state_mutex_);
        losses = losses_;
      }
      s = natsConnection_Connect(&nc, opts);  // clones opts
    }
    if (opts != nullptr) natsOptions_Destroy(opts);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) return false;
    {
      std::lock_guard<std::mutex> lock(connection_mutex_);
      connection_ = nc;
    }
    if (s == NATS_NOT_YET_CONNECTED) {
      connect_failures_.fetch_add(1, std::memory_order_relaxed);  // its first try; on_connected follows
    }
    // Every channel wanted so far. Made while not yet connected, the client
    // sends them once it is (conn.c: subscriptions made while reconnecting
    // are sent by _resendSubscriptions).
    for (auto& [channel, sub] : channels_) {
      if (sub == nullptr) sub = subscribe_now(channel);
    }
    if (s == NATS_OK) {
      // Connected at the first try: no callback says so. Unless the
      // connection was lost again already (its callback came first).
      bool lost_since = false;
      {
        std::lock_guard<std::mutex> lock(state_mutex_);
        lost_since = losses_ != losses;
      }
      if (!lost_since) set_connected(true, true);
    }
    return true;
  }

  natsSubscription* subscribe_now(const std::string& channel) {
    natsSubscription* sub = nullptr;
    if (natsConnection_Subscribe(&sub, connection_, channel.c_str(), on_nats_message, this) != NATS_OK) {
      return nullptr;  // tried again with the next connection
    }
    {
      std::lock_guard<std::mutex> lock(callbacks_mutex_);
      ++live_subscriptions_;
    }
    if (natsSubscription_SetOnCompleteCB(sub, on_subscription_done, this) != NATS_OK) {
      {
        std::lock_guard<std::mutex> lock(callbacks_mutex_);
        --live_subscriptions_;
      }
      natsSubscription_Destroy(sub);  // closed already: cannot happen while we hold the connection
      return nullptr;
    }
    return sub;
  }

  // Closes the connection and waits until the client will call none of
  // our callbacks for it again, then frees it and its subscriptions.
  void close_connection() {
    if (connection_ == nullptr) return;
    // Closes every subscription too (each posts its completion) and posts
    // the closed callback after the reconnect thread has ended.
    natsConnection_Close(connection_);
    {
      std::unique_lock<std::mutex> lock(callbacks_mutex_);
      callbacks_done_.wait(lock, [&] { return closed_seen_ && live_subscriptions_ == 0; });
    }
    for (auto& entry : channels_) {
      if (entry.second != nullptr) natsSubscription_Destroy(entry.second);
      entry.second = nullptr;
    }
    natsConnection* nc = nullptr;
    {
      std::lock_guard<std::mutex> lock(connection_mutex_);
      nc = connection_;
      connection_ = nullptr;
    }
    natsConnection_Destroy(nc);
  }

  void apply(detail::BackplaneOp& op) {
    switch (op.kind) {
      case detail::BackplaneOp::Kind::publish: {
        const bool sendable = connection_ != nullptr && connected_.load(std::memory_order_acquire) &&
                              op.message.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max());
        if (sendable && natsConnection_Publish(connection_, op.channel.c_str(), op.message.data(),
                                               static_cast<int>(op.message.size())) == NATS_OK) {
          published_.fetch_add(1, std::memory_order_relaxed);
        } else {
          lost_.fetch_add(1, std::memory_order_relaxed);
        }
        break;
      }
      case detail::BackplaneOp::Kind::subscribe: {
        confirm_.store(true, std::memory_order_relaxed);
        auto [it, inserted] = channels_.emplace(std::move(op.channel), nullptr);
        if (inserted && connection_ != nullptr) it->second = subscribe_now(it->first);
        break;
      }
      case detail::BackplaneOp::Kind::unsubscribe: {
        auto it = channels_.find(op.channel);
        if (it == channels_.end()) break;
        confirm_.store(true, std::memory_order_relaxed);
        if (it->second != nullptr) {
          // UNSUB to the server; the completion callback follows the
          // subscription's last message handler.
          natsSubscription_Unsubscribe(it->second);
          natsSubscription_Destroy(it->second);
        }
        channels_.erase(it);
        break;
      }
    }
    channels_count_.store(channels_.size(), std::memory_order_relaxed);
  }

  // Applies what callers queued, until the queue is empty, stop() is
  // called (unless `final`) or `deadline` passes.
  void drain(bool final, clock::time_point deadline) {
    detail::BackplaneOp op;
    std::size_t n = 0;
    while (queue_.pop(op, true)) {
      apply(op);
      if ((++n & 63) == 0) {
        if (clock::now() >= deadline) return;
        if (!final) {
          std::lock_guard<std::mutex> lock(wake_mutex_);
          if (stopping_) return;
        }
      }
    }
  }

  // After subscription changes or a (re)connect: a PING/PONG round trip
  // (natsConnection_FlushTimeout) proves the server has processed every
  // SUB sent before it, so BackplaneStats::subscribed can say they hold.
  void confirm_subscriptions() {
    if (connection_ == nullptr || !connected_.load(std::memory_order_acquire)) return;
    if (!confirm_.exchange(false, std::memory_order_relaxed)) return;
    const std::size_t wanted = channels_.size();
    if (natsConnection_FlushTimeout(connection_, 1000) == NATS_OK) {
      subscribed_.store(wanted, std::memory_order_relaxed);
    } else {
      confirm_.store(true, std::memory_order_relaxed);  // again at the next wake
    }
  }

  void run() {
    unsigned failures = 0;
    auto next_attempt = clock::now();
    while (true) {
      {
        std::unique_lock<std::mutex> lock(wake_mutex_);
        const auto woken = [&] { return wake_ || stopping_; };
        if (connection_ == nullptr) {
          wake_changed_.wait_until(lock, next_attempt, woken);
        } else {
          wake_changed_.wait(lock, woken);
        }
        if (stopping_) break;
        wake_ = false;
      }
      if (reopen_.exchange(false)) {  // the client closed the connection for good
        close_connection();
        connect_failures_.fetch_add(1, std::memory_order_relaxed);
        next_attempt = clock::now() + backoff(failures++);
      }
      if (connection_ == nullptr && clock::now() >= next_attempt) {
        if (open_connection()) {
          failures = 0;
        } else {
          connect_failures_.fetch_add(1, std::memory_order_relaxed);
          next_attempt = clock::now() + backoff(failures++);
        }
      }
      drain(false, clock::time_point::max());
      confirm_subscriptions();
    }
    // Stopping: publish what is queued for at most 200 ms if connected,
    // then close; what is left is counted lost.
    const auto deadline = clock::now() + std::chrono::milliseconds(200);
    if (connection_ != nullptr && connected_.load()) {
      drain(true, deadline);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() > 0) static_cast<void>(natsConnection_FlushTimeout(connection_, left.count()));
    }
    closing_.store(true);
    close_connection();
    detail::BackplaneOp op;
    while (queue_.pop(op, true)) apply(op);  // not connected: publishes count lost
    reopen_.store(false);
    nats_ReleaseThreadMemory();
  }

  const NatsOptions options_;
  detail::BackplaneQueue queue_;
  BackplaneHandlers handlers_;
  std::thread thread_;

  // Guards wake_ (the queue went from empty to not, or the connection must
  // be made again) and stopping_ (stop() was called).
  std::mutex wake_mutex_;
  std::condition_variable wake_changed_;
  bool wake_ = false;
  bool stopping_ = false;

  // Guards connection_ for connected() on other threads: the backplane's
  // thread, which alone sets it, reads it without the lock.
  mutable std::mutex connection_mutex_;
  natsConnection* connection_ = nullptr;

  // Guards losses_ (disconnected and closed callbacks so far) and
  // ever_connected_, and makes each change of connected_ and its on_state
  // call one step.
  std::mutex state_mutex_;
  std::uint64_t losses_ = 0;
  bool ever_connected_ = false;
  std::atomic<bool> connected_{false};

  // Guards closed_seen_ (the closed callback of the current connection ran)
  // and live_subscriptions_ (subscriptions whose completion callback has
  // not run yet).
  std::mutex callbacks_mutex_;
  std::condition_variable callbacks_done_;
  bool closed_seen_ = false;
  std::size_t live_subscriptions_ = 0;

  // Guards random_ (the back-off's shortening), used by the backplane's
  // thread and the client's reconnect thread.
  std::mutex random_mutex_;
  std::minstd_rand random_{std::random_device{}()};

  std::atomic<bool> closing_{false};  // stop() is closing: handlers are no longer called
  std::atomic<bool> reopen_{false};   // the client closed the connection by itself

  // The backplane's thread alone touches this: each channel wanted, with
  // its subscription on the current connection (null if none).
  std::map<std::string, natsSubscription*> channels_;

  std::atomic<std::uint64_t> reconnects_{0}, connect_failures_{0}, published_{0};
  std::atomic<std::uint64_t> dropped_{0}, lost_{0}, received_{0}, channels_count_{0};
  // Channels confirmed by a flush round trip (confirm_subscriptions), and
  // whether a change or a reconnect since asks for another.
  std::atomic<std::uint64_t> subscribed_{0};
  std::atomic<bool> confirm_{false};
};

}  // namespace wsreg

#endif  // WSREG_NATS_BACKPLANE_HPP
