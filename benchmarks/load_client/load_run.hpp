// load_client/load_run.hpp: one run's epoll loop and its three phases:
// connect, measurement window, close.
#ifndef WSREG_LOAD_CLIENT_LOAD_RUN_HPP
#define WSREG_LOAD_CLIENT_LOAD_RUN_HPP

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <vector>

#include "close_cause.hpp"
#include "latency_histogram.hpp"
#include "options.hpp"
#include "process.hpp"
#include "report.hpp"
#include "server_process.hpp"
#include "socket_stream.hpp"
#include "tick_parser.hpp"
#include "tick_tracker.hpp"
#include "ws_connection.hpp"
#include "ws_url.hpp"

namespace load_client {

/// Runs one load test: opens `connections` WebSocket connections (at most
/// `max_pending` handshakes at once; connection i to URL i mod K of the K
/// given) until all are open or the connect timeout passes, waits `warmup`
/// seconds, then counts ticks for `duration` seconds, then sends
/// every connection a close frame, waits at most close_grace for the
/// answers and closes every socket.
///
/// It is also the Handler of its WsConnections (on_open, on_message,
/// on_closed), called from inside its own loop.
///
/// Thread safety: Not thread-safe: everything runs on the thread calling run().
class LoadRun {
 public:
  /// How long the close phase waits for servers to answer close frames.
  static constexpr std::chrono::milliseconds close_grace{1000};

  /// Creates the epoll instance; throws std::system_error if it cannot.
  /// `urls` (at least one, parsed from options.urls) must outlive the run.
  LoadRun(const Options& options, const std::vector<WsUrl>& urls)
      : options_(options),
        urls_(urls),
        connections_(options.connections),
        trackers_(options.connections),
        events_(1024),
        rng_(std::random_device{}()) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    for (const WsUrl& url : urls_) {
      ConnectTarget target;
      target.epoll_fd = epoll_fd_;
      if (url.tls) target.tls = tls_ ? tls_->get() : tls_.emplace().get();
      target.server = url.address;
      target.host_header = url.host_header;
      target.path = url.path;
      if (options.deflate) target.extensions = deflate_offer;
      targets_.push_back(target);
    }
    target_ticks_.assign(targets_.size(), 0);
    target_lost_.assign(targets_.size(), 0);
    if (options.source_addresses > 1) {
      for (unsigned i = 1; i <= options.source_addresses; ++i) {
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl((127u << 24) | i);  // 127.0.0.i, port chosen at connect
        sources_.push_back(source);
      }
    }
  }

  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  ~LoadRun() {
    for (auto& connection : connections_) connection.abort();
    ::close(epoll_fd_);
  }

  /// Runs the three phases and returns what they measured. Call once.
  LoadReport run() {
    LoadReport report;
    report.connections_requested = options_.connections;
    const auto connect_start = Clock::now();
    run_connect_phase();
    report.connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
    report.connections_open = open_;
    for (std::size_t i = 0; i < causes_.size(); ++i) {
      if (!is_connect_failure(static_cast<CloseCause>(i))) continue;
      report.connect_failure_causes[i] = causes_[i];
      report.connect_failures += causes_[i];
    }
    if (open_ > 0 && options_.warmup_s > 0) {
      const auto warmup_end = Clock::now() + to_duration(options_.warmup_s);
      while (Clock::now() < warmup_end) poll_until(warmup_end);
    }
    if (open_ > 0) run_window(report);
    fill_counts(report);
    run_close_phase();
    report.client_cpu_s = process_cpu_seconds();
    return report;
  }

  // WsConnection handler interface; called only from inside run().

  /// A handshake completed.
  void on_open(WsConnection& connection) {
    trackers_[connection.token()].mark_opened();
    --pending_;
    ++open_;
  }

  /// A complete text or binary message arrived: a tick or an other frame.
  void on_message(WsConnection& connection, Opcode opcode, std::string_view payload) {
    Tick tick;
    const bool is_tick = opcode == Opcode::text && parse_tick(payload, tick);
    TickTracker& tracker = trackers_[connection.token()];
    if (phase_ == Phase::connect) {
      if (is_tick) tracker.see_before_window(tick.seq);
      return;
    }
    if (phase_ != Phase::window) return;
    if (!is_tick) {
      ++other_frames_;
      return;
    }
    const TickTracker::Outcome outcome = tracker.see_in_window(tick.seq);
    if (outcome.duplicate_or_reordered) {
      ++duplicate_or_reordered_;
      return;
    }
    ++ticks_;
    lost_ += outcome.lost;
    const std::size_t target = connection.token() % targets_.size();
    ++target_ticks_[target];
    target_lost_[target] += outcome.lost;
    histogram_.record_ns(realtime_ns() - tick.sent_ns);
  }

  /// The wire bytes of one data frame arrived (counted in the window only).
  void on_received(WsConnection&, std::size_t bytes, bool compressed) {
    if (phase_ != Phase::window) return;
    data_bytes_ += bytes;
    if (compressed) compressed_bytes_ += bytes;
  }

  /// A connection ended (exactly once per started connection).
  void on_closed(WsConnection& connection, CloseCause cause) {
    if (trackers_[connection.token()].opened()) {
      --open_;
    } else {
      --pending_;
    }
    ++causes_[static_cast<std::size_t>(cause)];
  }

 private:
  enum class Phase { connect, window, closing };
  using Clock = std::chrono::steady_clock;

  void run_connect_phase() {
    phase_ = Phase::connect;
    const auto deadline = Clock::now() + to_duration(options_.connect_timeout_s);
    while (true) {
      start_more();
      if (pending_ == 0 && next_to_start_ == connections_.size()) break;
      if (Clock::now() >= deadline) break;
      poll_until(deadline);
    }
    for (auto& connection : connections_) connection.expire(*this);
    causes_[static_cast<std::size_t>(CloseCause::not_started)] +=
        connections_.size() - next_to_start_;
    next_to_start_ = connections_.size();
  }

  /// Starts connections until max_pending are in flight or all are started.
  void start_more() {
    while (pending_ < options_.max_pending && next_to_start_ < connections_.size()) {
      const std::size_t index = next_to_start_++;
      const sockaddr_in* source =
          sources_.empty() ? nullptr : &sources_[index % sources_.size()];
      ++pending_;
      connections_[index].start(targets_[index % targets_.size()], source, index, rng_, *this);
    }
  }

  void run_window(LoadReport& report) {
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      if (connections_[i].state() == WsConnection::State::open) {
        trackers_[i].mark_open_at_window_start();
      }
    }
    phase_ = Phase::window;
    // The other processes, read at the window's edges only.
    struct Watch {
      ProcessReport* report;
      std::optional<double> cpu_start;
      std::map<long, StatCpu> threads_start;
    };
    std::vector<Watch> watches;
    for (const int pid : options_.server_pids) {
      if (pid > 0) report.servers.push_back(ProcessReport{pid, {}, process_rss_kib_of(pid), {}});
    }
    for (const int pid : options_.watch_pids) {
      if (pid > 0) report.watched.push_back(ProcessReport{pid, {}, {}, {}});
    }
    for (auto* list : {&report.servers, &report.watched}) {
      for (ProcessReport& process : *list) {
        watches.push_back(Watch{&process, process_cpu_seconds_of(process.pid),
                                thread_cpu_seconds_of(process.pid)});
      }
    }
    const std::optional<double> host_cpu_start = host_busy_cpu_seconds();
    const std::optional<std::uint64_t> loopback_start = loopback_bytes();
    const double cpu_start = process_cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + to_duration(options_.duration_s);
    auto now = start;
    while (now < end) {
      poll_until(end);
      now = Clock::now();
    }
    phase_ = Phase::closing;
    report.window_s = std::chrono::duration<double>(now - start).count();
    report.client_cpu_window_s = process_cpu_seconds() - cpu_start;
    if (const auto loopback_end = loopback_bytes(); loopback_start && loopback_end) {
      report.loopback_bytes_window = *loopback_end - *loopback_start;
    }
    if (const auto host_cpu_end = host_busy_cpu_seconds(); host_cpu_start && host_cpu_end) {
      report.host_cpu_window_s = *host_cpu_end - *host_cpu_start;
    }
    for (Watch& watch : watches) {
      const auto cpu_end = process_cpu_seconds_of(watch.report->pid);
      if (watch.cpu_start && cpu_end) watch.report->cpu_window_s = *cpu_end - *watch.cpu_start;
      watch.report->threads =
          thread_cpu_difference(watch.threads_start, thread_cpu_seconds_of(watch.report->pid));
    }
    if (!report.servers.empty()) {
      double cpu = 0;
      std::uint64_t rss = 0;
      bool cpu_known = true;
      bool rss_known = true;
      for (const ProcessReport& server : report.servers) {
        cpu_known = cpu_known && server.cpu_window_s.has_value();
        rss_known = rss_known && server.rss_kib.has_value();
        cpu += server.cpu_window_s.value_or(0);
        rss += server.rss_kib.value_or(0);
      }
      if (cpu_known) report.server_cpu_window_s = cpu;
      if (rss_known) report.server_rss_kib = rss;
    }
  }

  void fill_counts(LoadReport& report) const {
    report.ticks = ticks_;
    report.lost = lost_;
    report.duplicate_or_reordered = duplicate_or_reordered_;
    report.other_frames = other_frames_;
    report.data_bytes = data_bytes_;
    report.compressed_bytes = compressed_bytes_;
    report.closed_by_server = causes_[static_cast<std::size_t>(CloseCause::server_close)];
    for (std::size_t i = 0; i < causes_.size(); ++i) {
      if (!is_connection_error(static_cast<CloseCause>(i))) continue;
      report.error_causes[i] = causes_[i];
      report.errors += causes_[i];
    }
    bool any = false;
    report.targets.resize(targets_.size());
    std::vector<bool> target_any(targets_.size(), false);
    for (std::size_t i = 0; i < trackers_.size(); ++i) {
      const TickTracker& tracker = trackers_[i];
      if (!tracker.open_at_window_start()) continue;
      const std::uint64_t n = tracker.window_ticks();
      report.min_ticks_per_connection = any ? std::min(report.min_ticks_per_connection, n) : n;
      report.max_ticks_per_connection = std::max(report.max_ticks_per_connection, n);
      any = true;
      const std::size_t t = i % targets_.size();
      TargetReport& target = report.targets[t];
      ++target.connections_open;
      target.min_ticks_per_connection =
          target_any[t] ? std::min(target.min_ticks_per_connection, n) : n;
      target_any[t] = true;
    }
    for (std::size_t t = 0; t < targets_.size(); ++t) {
      report.targets[t].url = options_.urls[t];
      report.targets[t].ticks = target_ticks_[t];
      report.targets[t].lost = target_lost_[t];
    }
    constexpr double ns_per_ms = 1e6;
    report.latency_p50_ms = static_cast<double>(histogram_.percentile_ns(50.0)) / ns_per_ms;
    report.latency_p99_ms = static_cast<double>(histogram_.percentile_ns(99.0)) / ns_per_ms;
    report.latency_p999_ms = static_cast<double>(histogram_.percentile_ns(99.9)) / ns_per_ms;
    report.latency_max_ms = static_cast<double>(histogram_.max_ns()) / ns_per_ms;
  }

  /// Sends close frames, gives servers close_grace to answer, then closes
  /// every socket still open.
  void run_close_phase() {
    phase_ = Phase::closing;
    for (auto& connection : connections_) connection.begin_close(*this);
    const auto deadline = Clock::now() + close_grace;
    while (open_ > 0 && Clock::now() < deadline) poll_until(deadline);
    for (auto& connection : connections_) connection.abort();
  }

  /// One epoll_wait, at most until `deadline`, and dispatch of its events.
  void poll_until(Clock::time_point deadline) {
    const auto remaining = deadline - Clock::now();
    // Round up so the loop never spins on a 0 ms timeout before the deadline.
    const auto timeout_ms = std::max<std::int64_t>(
        0, std::chrono::ceil<std::chrono::milliseconds>(remaining).count());
    const int n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()),
                               static_cast<int>(std::min<std::int64_t>(timeout_ms, 1000)));
    if (n < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t token = events_[static_cast<std::size_t>(i)].data.u64;
      connections_[token].on_events(events_[static_cast<std::size_t>(i)].events, *this);
    }
  }

  static Clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

  const Options& options_;
  const std::vector<WsUrl>& urls_;
  int epoll_fd_ = -1;
  /// wss:// only: the TLS context every connection's session is made from.
  std::optional<TlsClientContext> tls_;
  /// One per URL; connection i connects to targets_[i % size].
  std::vector<ConnectTarget> targets_;
  /// Ticks delivered and lost in the window, per target.
  std::vector<std::uint64_t> target_ticks_;
  std::vector<std::uint64_t> target_lost_;
  /// Local addresses to bind, round-robin; empty when not binding.
  std::vector<sockaddr_in> sources_;
  /// One per requested connection; the index is the epoll token.
  std::vector<WsConnection> connections_;
  std::vector<TickTracker> trackers_;
  std::vector<epoll_event> events_;
  std::mt19937_64 rng_;
  LatencyHistogram histogram_;

  Phase phase_ = Phase::connect;
  std::size_t next_to_start_ = 0;
  std::size_t pending_ = 0;
  std::size_t open_ = 0;
  std::array<std::uint64_t, close_cause_count> causes_{};
  std::uint64_t ticks_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t duplicate_or_reordered_ = 0;
  std::uint64_t other_frames_ = 0;
  std::uint64_t data_bytes_ = 0;
  std::uint64_t compressed_bytes_ = 0;
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_LOAD_RUN_HPP
