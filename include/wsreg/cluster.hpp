// wsreg/cluster.hpp: one ConnectionRegistry as a node of a cluster, over a Backplane.
#ifndef WSREG_CLUSTER_HPP
#define WSREG_CLUSTER_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wsreg/backplane.hpp"
#include "wsreg/detail/cluster_envelope.hpp"
#include "wsreg/detail/cluster_link.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/prometheus.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// The tunables of a Cluster. Every field has a default.
///
/// Thread safety: a plain value, copied by the Cluster's constructor.
struct ClusterOptions {
  /// The first part of every channel name (docs/cluster.md, "Channels"), so
  /// that several applications can share one broker. Nodes of one cluster
  /// must use the same prefix. Default "wsreg".
  std::string channel_prefix = "wsreg";
  /// How often a node tells the others it is alive and how many connections
  /// it holds. Cluster-wide counts lag by at most this much. Default 500 ms.
  std::chrono::milliseconds heartbeat_interval{500};
  /// A node not heard from for this long is taken as gone: it leaves
  /// nodes(), connection_count() and presence queries (a node killed with
  /// SIGKILL disappears within node_timeout + heartbeat_interval). Default 2 s.
  std::chrono::milliseconds node_timeout{2000};
  /// How long a presence query waits for the other nodes' answers; a query
  /// still missing some then completes with ClusterPresence::complete false.
  /// Default 500 ms.
  std::chrono::milliseconds presence_timeout{500};
  /// The topics whose publishes this node numbers (for gap detection) at
  /// once: publishing to one more forgets them all, and each one's
  /// numbering starts again at 1, which the other nodes take as a restart
  /// rather than a gap. Bounds the memory of an application that publishes
  /// to many short-lived topics (one per user, say). Default 65,536 topics.
  std::size_t max_topic_sequences = 65536;
};

/// A Cluster's counters (and its backplane's), as Cluster::stats() returns
/// them. Counted from the Cluster's construction.
///
/// Thread safety: a plain value.
struct ClusterStats {
  /// Broadcasts, publishes and sends this node handed to the backplane.
  std::uint64_t broadcasts_out = 0;
  std::uint64_t publishes_out = 0;
  std::uint64_t sends_out = 0;
  /// Broadcasts, publishes and sends from other nodes delivered here.
  std::uint64_t broadcasts_in = 0;
  std::uint64_t publishes_in = 0;
  std::uint64_t sends_in = 0;
  /// Publications (broadcasts, publishes, sends) the backplane did not take
  /// when they were made: its queue was full (dropped) or it was
  /// disconnected (lost). Those it took and lost afterwards (in its queue or
  /// in flight when the connection dropped) are in
  /// backplane.publish_lost, which counts every loss. The other nodes see
  /// them all as gaps (set_gap_handler).
  std::uint64_t publications_dropped = 0;
  std::uint64_t publications_lost = 0;
  /// Gaps in the sequence numbers of another node's broadcasts or of its
  /// publishes to one topic, and how many messages they skipped.
  std::uint64_t gaps = 0;
  std::uint64_t messages_missed = 0;
  /// Messages on the cluster's channels that did not parse (ignored).
  std::uint64_t malformed = 0;
  /// Heartbeats from another process with this node's node_id: two nodes
  /// share an id, and sends to it may reach either (a configuration error).
  std::uint64_t node_id_conflicts = 0;
  /// Nodes alive now, this one included.
  std::uint64_t nodes = 0;
  /// Topics this node is subscribed to on the backplane (those with a local
  /// subscriber).
  std::uint64_t topic_channels = 0;
  /// The backplane's own counters.
  BackplaneStats backplane;
};

/// Another node, as its last heartbeat described it.
struct ClusterNode {
  std::uint16_t node_id = 0;
  /// Its open connections at its last heartbeat.
  std::uint64_t connections = 0;
  /// How long ago that heartbeat arrived.
  std::chrono::milliseconds age{0};
};

/// The answer to a cluster presence query (Cluster::query_presence).
///
/// Thread safety: a plain value.
struct ClusterPresence {
  /// The ids subscribed to the topic on every node that answered, ascending.
  std::vector<ConnectionId> ids;
  /// What each one's node said of it (Cluster::set_presence_info), in the
  /// order of `ids`; empty strings where a node has no presence info.
  std::vector<std::string> info;
  /// Nodes asked (the other live nodes when the query was made) and nodes
  /// that answered within ClusterOptions::presence_timeout.
  std::size_t nodes_asked = 0;
  std::size_t nodes_answered = 0;
  /// True when every node asked answered: `ids` is then the cluster's
  /// membership as of the query, give or take the changes in flight.
  bool complete = false;
};

/// A gap detected in another node's publications (ClusterStats::gaps).
struct GapEvent {
  /// The topic, or empty for broadcasts.
  std::string_view topic;
  /// True for broadcasts (topic then empty), false for a topic's publishes.
  bool broadcast = false;
  /// The publishing node.
  std::uint16_t node_id = 0;
  /// The first sequence number missing, and how many are missing.
  std::uint64_t first_missing = 0;
  std::uint64_t missed = 0;
};

/// Makes a ConnectionRegistry one node of a cluster: while the Cluster
/// exists, the registry's broadcast() and publish() also reach the matching
/// connections of every other node, each exactly once, and send() to an id
/// of another node is routed to that node (docs/cluster.md). The transport
/// is a Backplane: RedisBackplane (wsreg/redis_backplane.hpp) or
/// NatsBackplane (wsreg/nats_backplane.hpp), or any type that meets
/// docs/concepts/backplane.md (checked at compile time).
///
///     wsreg::RegistryOptions options;
///     options.node_id = 2;  // unique per node
///     wsreg::ConnectionRegistry<wsreg::ActorPolicy> registry(options);
///     wsreg::RedisOptions redis_options;
///     redis_options.url = "redis://127.0.0.1:6379";
///     wsreg::RedisBackplane redis(redis_options);
///     wsreg::Cluster cluster(registry, redis);
///     wsreg::wspp::Server server(registry, handlers, server_options);
///
/// What it promises (docs/cluster.md, "Guarantees"): delivery to every
/// matching connection of every node that is connected to the backplane,
/// once; `except` honoured whatever node its id is on; a node subscribes to
/// a topic's channel only while it has a local subscriber, and never
/// delivers its own publications twice; publications from one thread to one
/// topic arrive in order at every subscriber. Not promised: an order across
/// nodes, or between a topic and broadcasts, even under ActorPolicy;
/// delivery of what is published while the backplane is disconnected (lost,
/// counted, and seen by the other nodes as a gap: set_gap_handler).
///
/// Ownership: the Cluster refers to the registry and the backplane, owns
/// neither, and must be destroyed before either. It starts the backplane
/// (Backplane::start) in its constructor and stops it (Backplane::stop) in
/// its destructor, so one backplane serves one Cluster. It owns one thread
/// of its own (heartbeats, node expiry, presence timeouts).
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe, except the
/// constructor and destructor, which must not overlap any use of the
/// registry from another thread: build the Cluster before the transport
/// adapter starts, and destroy it after the adapter has shut down. The
/// handlers (set_gap_handler, set_state_handler) run on the backplane's
/// thread.
template <class Registry, class Backplane>
class Cluster final : private detail::ClusterLink {
  static_assert(detail::check_backplane<Backplane>(), "wsreg: Backplane requirements not met");

 public:
  /// Called for each gap in another node's publications, on the backplane's thread.
  using gap_handler = std::function<void(const GapEvent&)>;
  /// Called when the backplane connects (true) or is lost (false), on its thread.
  using state_handler = std::function<void(bool connected)>;

  /// Attaches to `registry` (which must have no topic yet, and a node_id of
  /// its own in the cluster: RegistryOptions::node_id), subscribes this
  /// node's channels, starts `backplane` and the heartbeat thread. Throws
  /// std::logic_error if the registry already has topics or a cluster, and
  /// what starting a thread throws (std::system_error).
  Cluster(Registry& registry, Backplane& backplane, ClusterOptions options = {})
      : registry_(registry),
        backplane_(backplane),
        options_(std::move(options)),
        node_id_(registry.node_id()),
        instance_(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)),
        broadcast_channel_(options_.channel_prefix + ".b"),
        control_channel_(options_.channel_prefix + ".c"),
        node_channel_(node_channel(node_id_)) {
    if (registry_.topic_count() != 0) {
      throw std::logic_error("wsreg::Cluster: attach to a registry before it has topics");
    }
    if (registry_.link_.load(std::memory_order_acquire) != nullptr) {
      throw std::logic_error("wsreg::Cluster: the registry already has a cluster");
    }
    backplane_.subscribe(broadcast_channel_);
    backplane_.subscribe(control_channel_);
    backplane_.subscribe(node_channel_);
    registry_.attach_cluster(this);
    backplane_.start(BackplaneHandlers{
        [this](std::string_view channel, std::string_view message) { on_message(channel, message); },
        [this](bool connected) { on_state(connected); }});
    timer_ = std::thread([this] { run_timer(); });
  }

  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// Tells the other nodes this one leaves (so they drop it from counts at
  /// once rather than after node_timeout), detaches from the registry (its
  /// broadcast and publish are local again), and stops the backplane: after
  /// it returns no handler of this Cluster runs. Not thread-safe (see the
  /// class comment).
  ~Cluster() {
    {
      std::lock_guard<std::mutex> lock(timer_mutex_);
      stopping_ = true;
    }
    timer_wake_.notify_all();
    timer_.join();
    std::string leave = "x ";
    detail::append_field(leave, node_id_);
    detail::append_field(leave, instance_);
    detail::end_header(leave);
    backplane_.publish(control_channel_, std::move(leave));
    registry_.attach_cluster(nullptr);
    registry_.flush();  // ActorPolicy: presence events already queued ran
    backplane_.stop();
    fail_pending_queries();
  }

  /// This node's number (the registry's RegistryOptions::node_id). Thread-safe.
  std::uint16_t node_id() const noexcept { return node_id_; }

  /// True while the backplane is connected. Thread-safe.
  bool connected() const { return backplane_.connected(); }

  /// The open connections of the whole cluster: this node's now, plus each
  /// other live node's at its last heartbeat (so within
  /// ClusterOptions::heartbeat_interval of the truth, plus delivery time).
  /// Thread-safe; never waits for the actor.
  std::uint64_t connection_count() {
    std::uint64_t total = registry_.size_approx();
    std::lock_guard<std::mutex> lock(nodes_mutex_);
    for (const auto& [id, node] : nodes_) total += node.connections;
    return total;
  }

  /// The other nodes alive now (heard from within node_timeout), by node id.
  /// Thread-safe.
  std::vector<ClusterNode> nodes() {
    std::vector<ClusterNode> out;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(nodes_mutex_);
    out.reserve(nodes_.size());
    for (const auto& [id, node] : nodes_) {
      out.push_back(ClusterNode{id, node.connections,
                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                    now - node.last_seen)});
    }
    return out;
  }

  /// Asks every live node for its subscribers of `topic` and calls `done`
  /// with the union and this node's own: at once, on this thread, if there
  /// is no other node; otherwise on the backplane's thread when the last
  /// answer arrives, or on the Cluster's thread at presence_timeout with
  /// ClusterPresence::complete false. `done` must not throw. Thread-safe,
  /// but not from the registry's actor thread, where reading this node's
  /// subscribers would wait for itself. O(subscribers) per node.
  void query_presence(const std::string& topic, std::function<void(ClusterPresence)> done) {
    std::vector<std::pair<ConnectionId, std::string>> local = local_members(topic);
    const auto now = std::chrono::steady_clock::now();
    std::uint64_t request = 0;
    {
      std::unique_lock<std::mutex> lock(nodes_mutex_);
      if (nodes_.empty()) {
        lock.unlock();
        ClusterPresence result;
        for (auto& [id, info] : local) {
          result.ids.push_back(id);
          result.info.push_back(std::move(info));
        }
        result.complete = true;
        done(std::move(result));
        return;
      }
      request = next_request_++;
      Query& query = queries_[request];
      for (const auto& [id, node] : nodes_) query.waiting.push_back(id);
      query.result.nodes_asked = query.waiting.size();
      query.members = std::move(local);
      query.deadline = now + options_.presence_timeout;
      query.done = std::move(done);
    }
    std::string message = "q ";
    detail::append_field(message, node_id_);
    detail::append_field(message, request);
    detail::end_header(message);
    message += topic;
    backplane_.publish(control_channel_, std::move(message));
    {
      std::lock_guard<std::mutex> lock(timer_mutex_);
      ++timer_generation_;  // the new deadline may be the earliest
    }
    timer_wake_.notify_all();
  }

  /// query_presence(), waiting for its answer (at most
  /// ClusterOptions::presence_timeout). Thread-safe, but not from the
  /// backplane's thread (the answers arrive there) nor the actor thread.
  ClusterPresence presence(const std::string& topic) {
    auto promise = std::make_shared<std::promise<ClusterPresence>>();
    std::future<ClusterPresence> answer = promise->get_future();
    query_presence(topic, [promise](ClusterPresence result) { promise->set_value(std::move(result)); });
    return answer.get();
  }

  /// The number of subscribers of `topic` on every node (presence(topic).ids.size()).
  /// Thread-safe, with presence()'s limits.
  std::size_t subscriber_count(const std::string& topic) { return presence(topic).ids.size(); }

  /// Sets what this node says of each of its connections in answers to
  /// presence queries (ClusterPresence::info: a user name, say, as
  /// Centrifuge's ClientInfo), called with the id on the thread that
  /// answers (the backplane's, or query_presence's caller for this node's
  /// own); it may read the registry (registry.data(id)) and must not throw.
  /// An empty function (the default) answers empty strings. Thread-safe.
  void set_presence_info(std::function<std::string(ConnectionId)> info) {
    std::lock_guard<std::mutex> lock(handler_mutex_);
    presence_info_ = std::make_shared<std::function<std::string(ConnectionId)>>(std::move(info));
  }

  /// Sets the handler told of every gap in another node's publications
  /// (what a subscriber may have missed: a backplane outage, a full queue);
  /// an empty function removes it. Thread-safe.
  void set_gap_handler(gap_handler handler) {
    std::lock_guard<std::mutex> lock(handler_mutex_);
    gap_handler_ = std::make_shared<gap_handler>(std::move(handler));
  }

  /// Sets the handler told when the backplane connects or is lost; an
  /// empty function removes it. Thread-safe.
  void set_state_handler(state_handler handler) {
    std::lock_guard<std::mutex> lock(handler_mutex_);
    state_handler_ = std::make_shared<state_handler>(std::move(handler));
  }

  /// The counters. Thread-safe; never waits for the actor.
  ClusterStats stats() const {
    ClusterStats out;
    out.broadcasts_out = broadcasts_out_.load(std::memory_order_relaxed);
    out.publishes_out = publishes_out_.load(std::memory_order_relaxed);
    out.sends_out = sends_out_.load(std::memory_order_relaxed);
    out.broadcasts_in = broadcasts_in_.load(std::memory_order_relaxed);
    out.publishes_in = publishes_in_.load(std::memory_order_relaxed);
    out.sends_in = sends_in_.load(std::memory_order_relaxed);
    out.publications_dropped = publications_dropped_.load(std::memory_order_relaxed);
    out.publications_lost = publications_lost_.load(std::memory_order_relaxed);
    out.gaps = gaps_.load(std::memory_order_relaxed);
    out.messages_missed = messages_missed_.load(std::memory_order_relaxed);
    out.malformed = malformed_.load(std::memory_order_relaxed);
    out.node_id_conflicts = node_id_conflicts_.load(std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(nodes_mutex_);
      out.nodes = nodes_.size() + 1;
    }
    {
      std::lock_guard<std::mutex> lock(topics_mutex_);
      out.topic_channels = topic_channels_;
    }
    out.backplane = backplane_.stats();
    return out;
  }

  /// The channel that carries sends to the ids of node `node`. Thread-safe.
  std::string node_channel(std::uint16_t node) const {
    return options_.channel_prefix + ".n." + std::to_string(node);
  }

  /// The channel that carries publishes to `topic`. Thread-safe.
  std::string topic_channel(std::string_view topic) const {
    return options_.channel_prefix + ".t." + detail::encode_topic(topic);
  }

 private:
  struct NodeState {
    std::uint64_t instance = 0;
    std::uint64_t connections = 0;
    std::chrono::steady_clock::time_point last_seen;
  };

  struct Query {
    std::vector<std::uint16_t> waiting;
    ClusterPresence result;
    std::vector<std::pair<ConnectionId, std::string>> members;  // ids and info so far
    std::chrono::steady_clock::time_point deadline;
    std::function<void(ClusterPresence)> done;
  };

  // The sequence last seen from one publisher on one stream.
  struct Seen {
    std::uint64_t instance = 0;
    std::uint64_t seq = 0;
  };

  // detail::ClusterLink: what the registry forwards.

  void broadcast(const Payload& payload, ConnectionId except) noexcept override {
    std::lock_guard<std::mutex> lock(publish_mutex_);  // seq order is queue order
    std::string message;
    message.reserve(payload.size() + 64);
    message += "b ";
    detail::append_field(message, node_id_);
    detail::append_field(message, instance_);
    detail::append_field(message, ++broadcast_seq_);
    detail::append_field(message, except);
    detail::append_field(message, static_cast<unsigned>(payload.opcode()));
    detail::end_header(message);
    message += payload.data();
    count(backplane_.publish(broadcast_channel_, std::move(message)), broadcasts_out_);
  }

  void publish(std::string_view topic, const Payload& payload, ConnectionId except) noexcept override {
    std::string channel = topic_channel(topic);
    std::lock_guard<std::mutex> lock(publish_mutex_);
    std::string message;
    message.reserve(payload.size() + topic.size() + 64);
    message += "p ";
    detail::append_field(message, node_id_);
    detail::append_field(message, instance_);
    if (topic_seq_.size() >= options_.max_topic_sequences && topic_seq_.count(std::string(topic)) == 0) {
      topic_seq_.clear();  // bounded memory: every topic's numbering starts again at 1
    }
    detail::append_field(message, ++topic_seq_[std::string(topic)]);
    detail::append_field(message, except);
    detail::append_field(message, static_cast<unsigned>(payload.opcode()));
    detail::append_field(message, topic.size());
    detail::end_header(message);
    message += topic;
    message += payload.data();
    count(backplane_.publish(std::move(channel), std::move(message)), publishes_out_);
  }

  void send(ConnectionId id, const Payload& payload) noexcept override {
    std::string message;
    message.reserve(payload.size() + 48);
    message += "s ";
    detail::append_field(message, node_id_);
    detail::append_field(message, id);
    detail::append_field(message, static_cast<unsigned>(payload.opcode()));
    detail::end_header(message);
    message += payload.data();
    count(backplane_.publish(node_channel(node_of(id)), std::move(message)), sends_out_);
  }

  // Called in each presence event of this node; the counts are the
  // Cluster's own (under MutexPolicy two threads' events may arrive out of
  // order, so a count may dip below zero for a moment, and the channel is
  // subscribed exactly while it is above zero).
  void topic_changed(std::string_view topic, bool joined) noexcept override {
    std::lock_guard<std::mutex> lock(topics_mutex_);
    auto [it, inserted] = topic_counts_.try_emplace(std::string(topic), 0);
    const long before = it->second;
    it->second += joined ? 1 : -1;
    if (before <= 0 && it->second > 0) {
      ++topic_channels_;
      backplane_.subscribe(topic_channel(topic));
    } else if (before > 0 && it->second <= 0) {
      --topic_channels_;
      backplane_.unsubscribe(topic_channel(topic));
      forget_topic(topic);
    }
    if (it->second == 0) topic_counts_.erase(it);
  }

  void append_metrics(std::string& out) const override {
    const ClusterStats s = stats();
    using detail::append_metric;
    append_metric(out, "wsreg_backplane_connected", "gauge",
                  "1 while the cluster backplane is connected.", s.backplane.connected);
    append_metric(out, "wsreg_backplane_reconnects_total", "counter",
                  "Backplane connections made again after a loss.", s.backplane.reconnects);
    append_metric(out, "wsreg_backplane_connect_failures_total", "counter",
                  "Failed backplane connection attempts.", s.backplane.connect_failures);
    append_metric(out, "wsreg_backplane_published_total", "counter",
                  "Messages handed to the backplane broker.", s.backplane.published);
    append_metric(out, "wsreg_backplane_received_total", "counter",
                  "Messages received from the backplane broker.", s.backplane.received);
    append_metric(out, "wsreg_backplane_publications_lost_total", "counter",
                  "Publications lost because the backplane was disconnected.",
                  s.backplane.publish_lost);
    append_metric(out, "wsreg_backplane_publications_dropped_total", "counter",
                  "Publications dropped because the backplane queue was full.",
                  s.backplane.publish_dropped);
    append_metric(out, "wsreg_backplane_queue_depth", "gauge",
                  "Messages waiting in the backplane's outgoing queue.", s.backplane.queue_depth);
    append_metric(out, "wsreg_cluster_nodes", "gauge", "Live cluster nodes, this one included.",
                  s.nodes);
    append_metric(out, "wsreg_cluster_topic_channels", "gauge",
                  "Topics this node is subscribed to on the backplane.", s.topic_channels);
    append_metric(out, "wsreg_cluster_gaps_total", "counter",
                  "Gaps detected in other nodes' publications.", s.gaps);
    append_metric(out, "wsreg_cluster_messages_missed_total", "counter",
                  "Publications of other nodes missed (the sum of the gaps).", s.messages_missed);
    append_metric(out, "wsreg_cluster_malformed_total", "counter",
                  "Messages on cluster channels that did not parse.", s.malformed);
  }

  void count(PublishResult result, std::atomic<std::uint64_t>& counter) noexcept {
    switch (result) {
      case PublishResult::queued:
        counter.fetch_add(1, std::memory_order_relaxed);
        break;
      case PublishResult::dropped:
        publications_dropped_.fetch_add(1, std::memory_order_relaxed);
        break;
      case PublishResult::lost:
        publications_lost_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }

  // The backplane's handlers (its thread).

  void on_message(std::string_view channel, std::string_view message) {
    (void)channel;
    detail::EnvelopeReader in(message);
    const char kind = in.kind();
    const auto origin = in.number<std::uint16_t>();
    if (!in.ok()) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    bool handled = false;
    switch (kind) {
      case 'b':
        handled = on_broadcast(in, origin);
        break;
      case 'p':
        handled = on_publish(in, origin);
        break;
      case 's':
        handled = on_send(in);
        break;
      case 'h':
        handled = on_heartbeat(in, origin);
        break;
      case 'x':
        handled = on_leave(in, origin);
        break;
      case 'q':
        handled = on_query(in, origin);
        break;
      case 'r':
        handled = on_reply(in, origin);
        break;
      default:
        break;
    }
    if (!handled) malformed_.fetch_add(1, std::memory_order_relaxed);
  }

  static bool opcode_of(unsigned value, Opcode& opcode) noexcept {
    if (value == static_cast<unsigned>(Opcode::text) || value == static_cast<unsigned>(Opcode::binary)) {
      opcode = static_cast<Opcode>(value);
      return true;
    }
    return false;
  }

  bool on_broadcast(detail::EnvelopeReader& in, std::uint16_t origin) {
    const auto instance = in.number<std::uint64_t>();
    const auto seq = in.number<std::uint64_t>();
    const auto except = in.number<ConnectionId>();
    Opcode opcode{};
    if (!in.ok() || !opcode_of(in.number<unsigned>(), opcode) || !in.ok()) return false;
    if (origin == node_id_ && instance == instance_) return true;  // our own, delivered already
    check_sequence(origin, instance, seq, std::string_view(), true);
    broadcasts_in_.fetch_add(1, std::memory_order_relaxed);  // before: a delivery seen is counted
    registry_.local_broadcast(Payload(opcode, std::string(in.body())), except);
    return true;
  }

  bool on_publish(detail::EnvelopeReader& in, std::uint16_t origin) {
    const auto instance = in.number<std::uint64_t>();
    const auto seq = in.number<std::uint64_t>();
    const auto except = in.number<ConnectionId>();
    Opcode opcode{};
    if (!in.ok() || !opcode_of(in.number<unsigned>(), opcode)) return false;
    const auto topic_size = in.number<std::size_t>();
    if (!in.ok() || topic_size > in.body().size()) return false;
    if (origin == node_id_ && instance == instance_) return true;
    const std::string_view topic = in.body().substr(0, topic_size);
    check_sequence(origin, instance, seq, topic, false);
    publishes_in_.fetch_add(1, std::memory_order_relaxed);
    registry_.local_publish(std::string(topic), Payload(opcode, std::string(in.body().substr(topic_size))),
                            except);
    return true;
  }

  bool on_send(detail::EnvelopeReader& in) {
    const auto id = in.number<ConnectionId>();
    Opcode opcode{};
    if (!in.ok() || !opcode_of(in.number<unsigned>(), opcode)) return false;
    if (node_of(id) != node_id_) return false;  // not one of ours: never routed on
    sends_in_.fetch_add(1, std::memory_order_relaxed);
    registry_.send(id, Payload(opcode, std::string(in.body())));  // unknown: counted there
    return true;
  }

  bool on_heartbeat(detail::EnvelopeReader& in, std::uint16_t origin) {
    const auto instance = in.number<std::uint64_t>();
    const auto connections = in.number<std::uint64_t>();
    if (!in.ok()) return false;
    if (origin == node_id_) {
      if (instance != instance_) node_id_conflicts_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    std::lock_guard<std::mutex> lock(nodes_mutex_);
    NodeState& node = nodes_[origin];
    node.instance = instance;
    node.connections = connections;
    node.last_seen = std::chrono::steady_clock::now();
    return true;
  }

  bool on_leave(detail::EnvelopeReader& in, std::uint16_t origin) {
    const auto instance = in.number<std::uint64_t>();
    if (!in.ok()) return false;
    if (origin == node_id_) return true;
    std::vector<std::function<void()>> completed;
    {
      std::lock_guard<std::mutex> lock(nodes_mutex_);
      auto it = nodes_.find(origin);
      if (it != nodes_.end() && it->second.instance == instance) {
        nodes_.erase(it);
        stop_waiting_for_locked(origin, completed);
      }
    }
    for (auto& call : completed) call();
    return true;
  }

  bool on_query(detail::EnvelopeReader& in, std::uint16_t origin) {
    const auto request = in.number<std::uint64_t>();
    if (!in.ok()) return false;
    if (origin == node_id_) return true;
    // The body: "<id> <info bytes> <info>" per member, space-separated.
    std::string reply = "r ";
    detail::append_field(reply, node_id_);
    detail::append_field(reply, request);
    detail::end_header(reply);
    for (const auto& [id, info] : local_members(std::string(in.body()))) {
      detail::append_field(reply, id);
      detail::append_field(reply, info.size());
      reply += info;
      reply += ' ';
    }
    backplane_.publish(node_channel(origin), std::move(reply));
    return true;
  }

  // This node's subscribers of `topic`, with their presence info.
  std::vector<std::pair<ConnectionId, std::string>> local_members(const std::string& topic) {
    std::shared_ptr<std::function<std::string(ConnectionId)>> info;
    {
      std::lock_guard<std::mutex> lock(handler_mutex_);
      info = presence_info_;
    }
    std::vector<std::pair<ConnectionId, std::string>> members;
    for (const ConnectionId id : registry_.subscribers(topic)) {
      members.emplace_back(id, info && *info ? (*info)(id) : std::string());
    }
    return members;
  }

  bool on_reply(detail::EnvelopeReader& in, std::uint16_t origin) {
    const auto request = in.number<std::uint64_t>();
    if (!in.ok()) return false;
    std::vector<std::pair<ConnectionId, std::string>> members;
    std::string_view body = in.body();
    const auto number = [&body](std::uint64_t& value) {
      const std::size_t end = body.find(' ');
      if (end == std::string_view::npos) return false;
      const auto [ptr, error] = std::from_chars(body.data(), body.data() + end, value);
      if (error != std::errc() || ptr != body.data() + end || end == 0) return false;
      body.remove_prefix(end + 1);
      return true;
    };
    while (!body.empty()) {
      std::uint64_t id = 0;
      std::uint64_t size = 0;
      if (!number(id) || !number(size) || size >= body.size() || body[size] != ' ') return false;
      members.emplace_back(id, std::string(body.substr(0, size)));
      body.remove_prefix(size + 1);
    }
    std::function<void()> completed;
    {
      std::lock_guard<std::mutex> lock(nodes_mutex_);
      auto it = queries_.find(request);
      if (it == queries_.end()) return true;  // timed out already
      Query& query = it->second;
      auto waiting = std::find(query.waiting.begin(), query.waiting.end(), origin);
      if (waiting == query.waiting.end()) return true;  // a duplicate, or not asked
      query.waiting.erase(waiting);
      ++query.result.nodes_answered;
      for (auto& member : members) query.members.push_back(std::move(member));
      if (query.waiting.empty()) completed = take_query_locked(it, true);
    }
    if (completed) completed();
    return true;
  }

  void on_state(bool connected) {
    if (connected) send_heartbeat();
    std::shared_ptr<state_handler> handler;
    {
      std::lock_guard<std::mutex> lock(handler_mutex_);
      handler = state_handler_;
    }
    if (handler && *handler) (*handler)(connected);
  }

  // Counts and reports a gap in (origin, stream). A new instance of the
  // origin (a restarted process) starts afresh.
  void check_sequence(std::uint16_t origin, std::uint64_t instance, std::uint64_t seq,
                      std::string_view topic, bool broadcast) {
    std::uint64_t first_missing = 0;
    std::uint64_t missed = 0;
    {
      std::lock_guard<std::mutex> lock(seen_mutex_);
      auto& streams = seen_[origin];
      std::string key = broadcast ? std::string("b") : "p" + std::string(topic);
      auto [it, inserted] = streams.try_emplace(std::move(key));
      Seen& seen = it->second;
      if (!inserted && seen.instance == instance && seq > seen.seq + 1) {
        first_missing = seen.seq + 1;
        missed = seq - seen.seq - 1;
      }
      // A number not above the last one is the publisher's numbering of
      // this topic starting again (it forgot the topic: max_topic_sequences),
      // or a duplicate: taken as the new last, never as a gap.
      seen.instance = instance;
      seen.seq = seq;
    }
    if (missed == 0) return;
    gaps_.fetch_add(1, std::memory_order_relaxed);
    messages_missed_.fetch_add(missed, std::memory_order_relaxed);
    std::shared_ptr<gap_handler> handler;
    {
      std::lock_guard<std::mutex> lock(handler_mutex_);
      handler = gap_handler_;
    }
    if (handler && *handler) (*handler)(GapEvent{topic, broadcast, origin, first_missing, missed});
  }

  // A topic this node no longer listens to: what it saw of it is forgotten,
  // so that listening again later does not report the silence as a gap.
  void forget_topic(std::string_view topic) {
    std::lock_guard<std::mutex> lock(seen_mutex_);
    const std::string key = "p" + std::string(topic);
    for (auto& [origin, streams] : seen_) streams.erase(key);
  }

  void send_heartbeat() {
    std::string message = "h ";
    detail::append_field(message, node_id_);
    detail::append_field(message, instance_);
    detail::append_field(message, registry_.size_approx());
    detail::end_header(message);
    backplane_.publish(control_channel_, std::move(message));
  }

  // Removes `origin` from the queries waiting for it; those it completes
  // are appended to `completed`, to be called outside nodes_mutex_.
  void stop_waiting_for_locked(std::uint16_t origin, std::vector<std::function<void()>>& completed) {
    for (auto it = queries_.begin(); it != queries_.end();) {
      auto& waiting = it->second.waiting;
      waiting.erase(std::remove(waiting.begin(), waiting.end(), origin), waiting.end());
      if (waiting.empty()) {
        completed.push_back(take_query_locked(it++, true));
      } else {
        ++it;
      }
    }
  }

  std::function<void()> take_query_locked(typename std::map<std::uint64_t, Query>::iterator it,
                                          bool complete) {
    Query query = std::move(it->second);
    queries_.erase(it);
    query.result.complete = complete && query.waiting.empty();
    std::sort(query.members.begin(), query.members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, info] : query.members) {
      query.result.ids.push_back(id);
      query.result.info.push_back(std::move(info));
    }
    return [done = std::move(query.done), result = std::move(query.result)]() mutable {
      done(std::move(result));
    };
  }

  void fail_pending_queries() {
    std::vector<std::function<void()>> completed;
    {
      std::lock_guard<std::mutex> lock(nodes_mutex_);
      while (!queries_.empty()) completed.push_back(take_query_locked(queries_.begin(), false));
    }
    for (auto& call : completed) call();
  }

  // The Cluster's thread: heartbeats, node expiry, presence timeouts.
  void run_timer() {
    auto next_heartbeat = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(timer_mutex_);
    while (!stopping_) {
      const std::uint64_t generation = timer_generation_;
      lock.unlock();
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_heartbeat) {
        send_heartbeat();
        next_heartbeat = now + options_.heartbeat_interval;
      }
      auto wake = next_heartbeat;
      std::vector<std::function<void()>> completed;
      {
        std::lock_guard<std::mutex> nodes_lock(nodes_mutex_);
        for (auto it = nodes_.begin(); it != nodes_.end();) {
          if (now - it->second.last_seen >= options_.node_timeout) {
            const std::uint16_t gone = it->first;
            it = nodes_.erase(it);
            stop_waiting_for_locked(gone, completed);
          } else {
            wake = std::min(wake, it->second.last_seen + options_.node_timeout);
            ++it;
          }
        }
        for (auto it = queries_.begin(); it != queries_.end();) {
          if (now >= it->second.deadline) {
            completed.push_back(take_query_locked(it++, false));
          } else {
            wake = std::min(wake, it->second.deadline);
            ++it;
          }
        }
      }
      for (auto& call : completed) call();
      lock.lock();
      timer_wake_.wait_until(lock, wake,
                             [&] { return stopping_ || timer_generation_ != generation; });
    }
  }

  Registry& registry_;
  Backplane& backplane_;
  const ClusterOptions options_;
  const std::uint16_t node_id_;
  // Random per process: tells a restarted node (same node_id) from the old one.
  const std::uint64_t instance_;
  const std::string broadcast_channel_;
  const std::string control_channel_;
  const std::string node_channel_;

  // Guards the sequence numbers, held while a publication is queued so
  // that the queue holds them in order.
  std::mutex publish_mutex_;
  std::uint64_t broadcast_seq_ = 0;
  std::unordered_map<std::string, std::uint64_t> topic_seq_;

  // Guards topic_counts_ and topic_channels_: this node's subscribers per
  // topic, and the topics subscribed on the backplane.
  mutable std::mutex topics_mutex_;
  std::unordered_map<std::string, long> topic_counts_;
  std::uint64_t topic_channels_ = 0;

  // Guards seen_: the last sequence number per other node and stream.
  std::mutex seen_mutex_;
  std::unordered_map<std::uint16_t, std::unordered_map<std::string, Seen>> seen_;

  // Guards nodes_ (the other live nodes), queries_ and next_request_.
  mutable std::mutex nodes_mutex_;
  std::map<std::uint16_t, NodeState> nodes_;
  std::map<std::uint64_t, Query> queries_;
  std::uint64_t next_request_ = 1;

  // Guards the handlers (copied out before a call, so a call runs unlocked).
  std::mutex handler_mutex_;
  std::shared_ptr<gap_handler> gap_handler_;
  std::shared_ptr<state_handler> state_handler_;
  std::shared_ptr<std::function<std::string(ConnectionId)>> presence_info_;

  // Guards stopping_ and timer_generation_ (bumped by each new query);
  // timer_wake_ wakes the Cluster's thread.
  std::mutex timer_mutex_;
  std::condition_variable timer_wake_;
  bool stopping_ = false;
  std::uint64_t timer_generation_ = 0;
  std::thread timer_;

  std::atomic<std::uint64_t> broadcasts_out_{0}, publishes_out_{0}, sends_out_{0};
  std::atomic<std::uint64_t> broadcasts_in_{0}, publishes_in_{0}, sends_in_{0};
  std::atomic<std::uint64_t> publications_dropped_{0}, publications_lost_{0};
  std::atomic<std::uint64_t> gaps_{0}, messages_missed_{0}, malformed_{0}, node_id_conflicts_{0};
};

template <class Registry, class Backplane>
Cluster(Registry&, Backplane&) -> Cluster<Registry, Backplane>;
template <class Registry, class Backplane>
Cluster(Registry&, Backplane&, ClusterOptions) -> Cluster<Registry, Backplane>;

}  // namespace wsreg

#endif  // WSREG_CLUSTER_HPP
