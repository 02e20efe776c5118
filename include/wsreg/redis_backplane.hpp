// wsreg/redis_backplane.hpp: a Backplane over Redis pub/sub, through hiredis.
#ifndef WSREG_REDIS_BACKPLANE_HPP
#define WSREG_REDIS_BACKPLANE_HPP

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "wsreg/backplane.hpp"
#include "wsreg/detail/backplane_queue.hpp"

namespace wsreg {

/// The tunables of a RedisBackplane: the queue bounds and reconnection of
/// BackplaneOptions, and Redis's own. Every field has a default.
///
/// Thread safety: a plain value, copied by the constructor.
struct RedisOptions : BackplaneOptions {
  /// The Redis server: "redis://host:port" (port 6379 if left out) or
  /// "host:port". No password, TLS or database number: pub/sub ignores the
  /// database, and the test and benchmark servers are on loopback.
  std::string url = "redis://127.0.0.1:6379";
  /// PUBLISH commands written to Redis and not yet answered (the pipeline
  /// depth): more are left in the queue. Default 1,024.
  std::size_t max_in_flight = 1024;
  /// Channels per SUBSCRIBE command when many are (re)subscribed at once.
  /// Default 1,000.
  std::size_t subscribe_batch = 1000;
  /// How often the publishing connection sends PING. Default 1 s.
  std::chrono::milliseconds ping_interval{1000};
  /// A PING unanswered this long, or a connect not done this long, means
  /// Redis is stalled (SIGSTOP, a full host): both connections are dropped
  /// and made again. Default 3 s.
  std::chrono::milliseconds stall_timeout{3000};
};

/// A Backplane (docs/concepts/backplane.md) over Redis pub/sub (PUBLISH,
/// SUBSCRIBE, UNSUBSCRIBE), through hiredis's asynchronous API (Debian
/// libhiredis-dev 0.14) driven by a poll() loop on the backplane's own
/// thread, with two connections: one subscribed (in RESP2 a subscribed
/// connection can issue no other command), one for PUBLISH and PING.
///
/// Delivery is at most once, as Redis pub/sub is: what is published while
/// either connection is down is lost (PublishResult::lost, counted in
/// BackplaneStats::publish_lost), and so are the PUBLISH commands in flight
/// when a connection drops. After a loss it reconnects forever with capped
/// exponential back-off (RedisOptions::reconnect) and subscribes again to
/// every channel wanted, in batches (RedisOptions::subscribe_batch).
///
/// Ownership: owns its two hiredis contexts, an eventfd, and one thread,
/// from start() to stop(); the handlers given to start() until stop().
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe, except
/// start() and stop(), which must not overlap each other or the
/// destructor. publish(), subscribe() and unsubscribe() never wait for
/// Redis: they queue for the backplane's thread under one short mutex. The
/// handlers run on the backplane's thread.
class RedisBackplane {
 public:
  /// Parses `options.url`; throws std::invalid_argument if it is not a
  /// redis:// URL or host:port. Connects nothing until start().
  explicit RedisBackplane(RedisOptions options = {})
      : options_(std::move(options)),
        queue_(options_.max_queued_messages, options_.max_queued_bytes) {
    parse_url(options_.url);
  }

  RedisBackplane(const RedisBackplane&) = delete;
  RedisBackplane& operator=(const RedisBackplane&) = delete;

  /// stop().
  ~RedisBackplane() { stop(); }

  /// Starts the backplane's thread, which connects (and keeps trying), then
  /// calls `handlers` on that thread. Throws std::system_error if the
  /// eventfd or the thread cannot be made. Calling it twice is an error
  /// (std::logic_error).
  void start(BackplaneHandlers handlers) {
    if (thread_.joinable()) throw std::logic_error("wsreg::RedisBackplane: started twice");
    handlers_ = std::move(handlers);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    stopping_.store(false);
    stop_began_ = {};
    thread_ = std::thread([this] { run(); });
  }

  /// Writes what is queued (for at most 200 ms, if connected), closes both
  /// connections and joins the thread; after it returns no handler runs.
  /// Idempotent.
  void stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true);
    wake();
    thread_.join();
    ::close(wake_fd_);
    wake_fd_ = -1;
    set_connected(false, false);
  }

  /// Wants `channel`: subscribed now if connected, and again after every
  /// reconnect. Idempotent. Thread-safe; never waits for Redis.
  void subscribe(std::string channel) { control(detail::BackplaneOp::Kind::subscribe, std::move(channel)); }

  /// No longer wants `channel`. Idempotent. Thread-safe; never waits for Redis.
  void unsubscribe(std::string channel) {
    control(detail::BackplaneOp::Kind::unsubscribe, std::move(channel));
  }

  /// Queues `message` for PUBLISH on `channel`: queued, dropped (the queue
  /// is full) or lost (disconnected now). Thread-safe; O(1); never waits
  /// for Redis.
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

  /// True while both connections are up. Thread-safe.
  bool connected() const { return connected_.load(std::memory_order_acquire); }

  /// The counters. Thread-safe.
  BackplaneStats stats() const {
    BackplaneStats out;
    out.connected = connected() ? 1 : 0;
    out.reconnects = reconnects_.load(std::memory_order_relaxed);
    out.connect_failures = connect_failures_.load(std::memory_order_relaxed);
    out.published = published_.load(std::memory_order_relaxed);
    out.publish_dropped = dropped_.load(std::memory_order_relaxed);
    out.publish_lost = lost_.load(std::memory_order_relaxed);
    out.received = received_.load(std::memory_order_relaxed);
    out.channels = channels_count_.load(std::memory_order_relaxed);
    out.subscribed = out.connected != 0 ? subscribed_.load(std::memory_order_relaxed) : 0;
    out.queue_depth = queue_.depth();
    return out;
  }

  /// "redis". Thread-safe.
  std::string_view name() const noexcept { return "redis"; }

 private:
  // One hiredis asynchronous connection and what its event hooks asked for.
  struct Link {
    RedisBackplane* owner = nullptr;
    redisAsyncContext* context = nullptr;  // null once hiredis freed it
    bool connected = false;
    bool reading = false;
    bool writing = false;
  };

  void parse_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (url.substr(0, scheme.size()) == scheme) {
      url.remove_prefix(scheme.size());
    } else if (url.find("://") != std::string_view::npos) {
      throw std::invalid_argument("wsreg::RedisBackplane: not a redis:// URL: " + options_.url);
    }
    url = url.substr(0, url.find('/'));
    const std::size_t colon = url.rfind(':');
    host_ = std::string(url.substr(0, colon));
    port_ = 6379;
    if (colon != std::string_view::npos) {
      const std::string port(url.substr(colon + 1));
      char* end = nullptr;
      const long value = std::strtol(port.c_str(), &end, 10);
      if (port.empty() || *end != '\0' || value <= 0 || value > 65535) {
        throw std::invalid_argument("wsreg::RedisBackplane: bad port in " + options_.url);
      }
      port_ = static_cast<int>(value);
    }
    if (host_.empty()) throw std::invalid_argument("wsreg::RedisBackplane: no host in " + options_.url);
  }

  void control(detail::BackplaneOp::Kind kind, std::string channel) {
    bool was_empty = false;
    queue_.push_control(kind, std::move(channel), was_empty);
    if (was_empty) wake();
  }

  void wake() {
    if (wake_fd_ < 0) return;  // not started: the thread reads the queue when it starts
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  void set_connected(bool now, bool tell) {
    const bool before = connected_.exchange(now, std::memory_order_acq_rel);
    if (before != now && tell && handlers_.on_state) handlers_.on_state(now);
  }

  // hiredis event hooks: they only record what hiredis wants; run() polls.
  static void add_read(void* data) { static_cast<Link*>(data)->reading = true; }
  static void del_read(void* data) { static_cast<Link*>(data)->reading = false; }
  static void add_write(void* data) { static_cast<Link*>(data)->writing = true; }
  static void del_write(void* data) { static_cast<Link*>(data)->writing = false; }
  static void cleanup(void* data) {
    auto* link = static_cast<Link*>(data);
    link->reading = link->writing = false;
  }

  static void on_connect(const redisAsyncContext* context, int status) {
    auto* link = static_cast<Link*>(context->ev.data);
    if (status == REDIS_OK) {
      link->connected = true;
    } else {
      link->context = nullptr;  // hiredis frees it after this callback
    }
  }

  static void on_disconnect(const redisAsyncContext* context, int /*status*/) {
    auto* link = static_cast<Link*>(context->ev.data);
    link->context = nullptr;  // hiredis frees it after this callback
    link->connected = false;
  }

  static void on_published(redisAsyncContext* /*context*/, void* reply, void* data) {
    auto* self = static_cast<RedisBackplane*>(data);
    --self->in_flight_;
    const auto* r = static_cast<const redisReply*>(reply);
    if (r != nullptr && r->type != REDIS_REPLY_ERROR) {
      self->published_.fetch_add(1, std::memory_order_relaxed);
    } else {
      self->lost_.fetch_add(1, std::memory_order_relaxed);  // dropped with the connection
    }
  }

  static void on_pong(redisAsyncContext* /*context*/, void* reply, void* data) {
    auto* self = static_cast<RedisBackplane*>(data);
    if (reply != nullptr) self->ping_sent_ = {};
  }

  // Every reply on the subscribed connection: confirmations and messages.
  static void on_subscription(redisAsyncContext* /*context*/, void* reply, void* data) {
    auto* self = static_cast<RedisBackplane*>(data);
    const auto* r = static_cast<const redisReply*>(reply);
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
    const redisReply* kind = r->element[0];
    const redisReply* channel = r->element[1];
    const redisReply* message = r->element[2];
    if (message->type == REDIS_REPLY_INTEGER && message->integer >= 0) {
      // A SUBSCRIBE or UNSUBSCRIBE confirmation: how many channels this
      // connection is subscribed to now.
      self->subscribed_.store(static_cast<std::uint64_t>(message->integer), std::memory_order_relaxed);
      return;
    }
    if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING ||
        message->type != REDIS_REPLY_STRING ||
        std::string_view(kind->str, kind->len) != "message") {
      return;
    }
    self->received_.fetch_add(1, std::memory_order_relaxed);
    if (self->handlers_.on_message) {
      self->handlers_.on_message(std::string_view(channel->str, channel->len),
                                 std::string_view(message->str, message->len));
    }
  }

  bool open(Link& link) {
    link = Link{this};
    redisAsyncContext* context = redisAsyncConnect(host_.c_str(), port_);
    if (context == nullptr) return false;
    if (context->err != 0) {
      redisAsyncFree(context);
      return false;
    }
    link.context = context;
    context->ev.data = &link;
    context->ev.addRead = add_read;
    context->ev.delRead = del_read;
    context->ev.addWrite = add_write;
    context->ev.delWrite = del_write;
    context->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(context, on_connect);
    redisAsyncSetDisconnectCallback(context, on_disconnect);
    link.writing = true;  // the connect completes when the socket is writable
    return true;
  }

  // Closes what is left of both connections (at the loop's top level,
  // never inside a hiredis callback). Pending PUBLISH callbacks run with a
  // null reply (counted lost).
  void close_links() {
    subscribed_.store(0, std::memory_order_relaxed);
    for (Link* link : {&pub_, &sub_}) {
      if (link->context != nullptr) redisAsyncFree(link->context);
      link->context = nullptr;
      link->connected = false;
    }
  }

  void subscribe_channels(const std::vector<const std::string*>& channels, const char* verb) {
    for (std::size_t first = 0; first < channels.size(); first += options_.subscribe_batch) {
      const std::size_t count = std::min(options_.subscribe_batch, channels.size() - first);
      std::vector<const char*> argv{verb};
      std::vector<std::size_t> lengths{std::strlen(verb)};
      for (std::size_t i = first; i < first + count; ++i) {
        argv.push_back(channels[i]->data());
        lengths.push_back(channels[i]->size());
      }
      redisAsyncCommandArgv(sub_.context, on_subscription, this, static_cast<int>(argv.size()),
                            argv.data(), lengths.data());
    }
  }

  // Takes what the callers queued: channel changes always (the wanted set
  // is kept whether or not connected), publishes while there is room in
  // the pipeline, or counted lost while disconnected.
  void drain_queue() {
    std::vector<const std::string*> subscribes;
    detail::BackplaneOp op;
    const bool up = pub_.connected && sub_.connected;
    while (queue_.pop(op, !up || in_flight_ < options_.max_in_flight)) {
      switch (op.kind) {
        case detail::BackplaneOp::Kind::publish:
          if (up) {
            const char* argv[] = {"PUBLISH", op.channel.data(), op.message.data()};
            const std::size_t lengths[] = {7, op.channel.size(), op.message.size()};
            if (redisAsyncCommandArgv(pub_.context, on_published, this, 3, argv, lengths) == REDIS_OK) {
              ++in_flight_;
            } else {
              lost_.fetch_add(1, std::memory_order_relaxed);
            }
          } else {
            lost_.fetch_add(1, std::memory_order_relaxed);
          }
          break;
        case detail::BackplaneOp::Kind::subscribe: {
          auto [it, inserted] = channels_.insert(std::move(op.channel));
          if (inserted && up) subscribes.push_back(&*it);
          break;
        }
        case detail::BackplaneOp::Kind::unsubscribe: {
          if (!subscribes.empty()) {  // keep the order: send the subscribes before
            subscribe_channels(subscribes, "SUBSCRIBE");
            subscribes.clear();
          }
          auto it = channels_.find(op.channel);
          if (it != channels_.end()) {
            if (up) subscribe_channels({&*it}, "UNSUBSCRIBE");
            channels_.erase(it);
          }
          break;
        }
      }
    }
    if (!subscribes.empty()) subscribe_channels(subscribes, "SUBSCRIBE");
    channels_count_.store(channels_.size(), std::memory_order_relaxed);
  }

  std::chrono::milliseconds backoff() {
    const std::chrono::milliseconds delay = reconnect_delay(options_.reconnect, attempt_++);
    std::uniform_int_distribution<long long> shorten(0, delay.count() / 4);
    return delay - std::chrono::milliseconds(shorten(random_));
  }

  // The backplane's thread: connect, poll, dispatch, reconnect.
  void run() {
    using clock = std::chrono::steady_clock;
    auto next_attempt = clock::now();
    clock::time_point opened;
    clock::time_point next_ping;
    bool ever_connected = false;
    while (true) {
      const auto now = clock::now();
      const bool stopping = stopping_.load();
      const bool up = pub_.connected && sub_.connected;
      if (stopping) {
        // Write what is queued first, for a bounded time.
        if (stop_began_ == clock::time_point{}) stop_began_ = now;
        const bool flushed = queue_.depth() == 0 && in_flight_ == 0;
        if (!up || flushed || now - stop_began_ > std::chrono::milliseconds(200)) break;
      }
      // One side lost, or stalled: drop both, and come back after the back-off.
      const bool half = (pub_.context == nullptr) != (sub_.context == nullptr);
      const bool stalled = pub_.context != nullptr &&
                           ((!up && now - opened > options_.stall_timeout) ||
                            (ping_sent_ != clock::time_point{} && now - ping_sent_ > options_.stall_timeout));
      if (half || stalled || (pub_.context == nullptr && sub_.context == nullptr && was_open_)) {
        close_links();
        was_open_ = false;
        ping_sent_ = {};
        if (connected_.load()) {
          set_connected(false, true);  // attempt_ is 0 again: the first wait is the shortest
        } else {
          connect_failures_.fetch_add(1, std::memory_order_relaxed);
        }
        next_attempt = now + backoff();
        in_flight_ = 0;
      }
      if (!stopping && pub_.context == nullptr && sub_.context == nullptr && now >= next_attempt) {
        if (open(pub_) && open(sub_)) {
          was_open_ = true;
          opened = now;
        } else {
          close_links();
          connect_failures_.fetch_add(1, std::memory_order_relaxed);
          next_attempt = now + backoff();
        }
      }
      if (pub_.connected && sub_.connected && !connected_.load()) {
        // Both up: subscribe again to everything wanted, then tell the owner.
        std::vector<const std::string*> all;
        all.reserve(channels_.size());
        for (const std::string& channel : channels_) all.push_back(&channel);
        if (!all.empty()) subscribe_channels(all, "SUBSCRIBE");
        if (ever_connected) reconnects_.fetch_add(1, std::memory_order_relaxed);
        ever_connected = true;
        attempt_ = 0;
        next_ping = now + options_.ping_interval;
        set_connected(true, true);
      }
      drain_queue();
      if (pub_.connected && now >= next_ping) {
        redisAsyncCommand(pub_.context, on_pong, this, "PING");
        if (ping_sent_ == clock::time_point{}) ping_sent_ = now;
        next_ping = now + options_.ping_interval;
      }

      pollfd fds[3];
      nfds_t count = 0;
      fds[count++] = pollfd{wake_fd_, POLLIN, 0};
      Link* polled[2] = {nullptr, nullptr};
      for (Link* link : {&pub_, &sub_}) {
        if (link->context == nullptr) continue;
        short events = 0;
        if (link->reading) events |= POLLIN;
        if (link->writing) events |= POLLOUT;
        polled[count - 1] = link;
        fds[count++] = pollfd{link->context->c.fd, events, 0};
      }
      auto timeout = std::chrono::milliseconds(100);
      if (pub_.context == nullptr && !stopping) {
        timeout = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt - now),
                             std::chrono::milliseconds(0), timeout);
      }
      if (stopping) timeout = std::chrono::milliseconds(10);
      const int ready = ::poll(fds, count, static_cast<int>(timeout.count()));
      if (ready <= 0) continue;
      if (fds[0].revents != 0) {
        std::uint64_t ignored = 0;
        [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &ignored, sizeof ignored);
      }
      for (nfds_t i = 1; i < count; ++i) {
        Link* link = polled[i - 1];
        if (link->context == nullptr) continue;
        if ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0) redisAsyncHandleRead(link->context);
        if (link->context != nullptr && (fds[i].revents & POLLOUT) != 0) {
          redisAsyncHandleWrite(link->context);
        }
      }
    }
    close_links();
    was_open_ = false;
  }

  const RedisOptions options_;
  std::string host_;
  int port_ = 6379;
  detail::BackplaneQueue queue_;
  BackplaneHandlers handlers_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;

  // The backplane's thread alone touches these.
  Link pub_;
  Link sub_;
  bool was_open_ = false;
  std::set<std::string> channels_;  // wanted, subscribed again after each reconnect
  std::size_t in_flight_ = 0;
  unsigned attempt_ = 0;
  std::chrono::steady_clock::time_point ping_sent_{};
  std::chrono::steady_clock::time_point stop_began_{};
  std::minstd_rand random_{std::random_device{}()};

  std::atomic<std::uint64_t> reconnects_{0}, connect_failures_{0}, published_{0};
  std::atomic<std::uint64_t> dropped_{0}, lost_{0}, received_{0}, channels_count_{0};
  std::atomic<std::uint64_t> subscribed_{0};
};

}  // namespace wsreg

#endif  // WSREG_REDIS_BACKPLANE_HPP
