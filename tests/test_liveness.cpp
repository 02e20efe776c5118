// Liveness tests for wsreg::wspp::Server over real loopback sockets, each on
// an ephemeral port: the heartbeat and idle timeout, removal exactly once
// however a connection ends, shutdown with stalled clients, and handlers
// that call back into the registry while connections come and go.
#include "wsreg/websocketpp/server.hpp"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "client_pool.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg::wspp::Server;
using wsreg::wspp::ServerOptions;
using wsreg_test::ClientPool;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::policy_name;
using wsreg_test::wait_until;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

using wsreg_test::url_of;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

/// The threads of this process, as /proc/self/task lists them.
std::size_t threads_in_process() {
  std::size_t n = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (const dirent* entry = ::readdir(dir)) n += entry->d_name[0] != '.';
    ::closedir(dir);
  }
  return n;
}

/// Records the open and close handler calls a Server makes on its io
/// threads, for the test thread to check after waiting on summary(). A
/// close for an id that is not open (closed twice, or never opened) and a
/// second open of one id are counted, not asserted, so that assertions stay
/// on the test thread. Thread-safe.
class HandlerLog {
 public:
  struct Summary {
    std::size_t opens = 0;
    std::size_t closes = 0;
    std::size_t still_open = 0;
    std::size_t reopened = 0;      // an open handler call for an id seen before
    std::size_t stray_closes = 0;  // a close handler call for an id not open
  };
  struct Times {
    Clock::time_point opened;
    std::optional<Clock::time_point> closed;
  };

  /// Installs handlers that only record.
  template <class Policy>
  void attach(Server<Policy>& server) {
    server.set_open_handler([this](ConnectionId id) { opened(id); });
    server.set_close_handler([this](ConnectionId id) { closed(id); });
  }

  void opened(ConnectionId id) {
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    ++summary_.opens;
    if (!times_.emplace(id, Times{now, std::nullopt}).second) ++summary_.reopened;
    open_.insert(id);
    order_.push_back(id);
  }

  void closed(ConnectionId id) {
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    ++summary_.closes;
    if (open_.erase(id) == 0) {
      ++summary_.stray_closes;
      return;
    }
    times_[id].closed = now;
  }

  Summary summary() const {
    std::lock_guard<std::mutex> lock(mutex_);
    Summary s = summary_;
    s.still_open = open_.size();
    return s;
  }

  /// The ids in the order their open handler ran.
  std::vector<ConnectionId> opened_ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return order_;
  }

  /// When `id`'s open and close handlers ran (nullopt if it never opened).
  std::optional<Times> times(ConnectionId id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = times_.find(id);
    if (it == times_.end()) return std::nullopt;
    return it->second;
  }

 private:
  // This mutex synchronizes all access to summary_, open_, times_ and order_.
  mutable std::mutex mutex_;
  Summary summary_;
  std::unordered_set<ConnectionId> open_;
  std::unordered_map<ConnectionId, Times> times_;
  std::vector<ConnectionId> order_;
};

/// Opens every client in `clients` to 127.0.0.1:`port` with overlapping
/// handshakes: all connect and send their request, then all read their
/// response. Returns how many got "101 Switching Protocols".
std::size_t open_all(std::vector<RawClient>& clients, std::uint16_t port,
                     int receive_buffer_bytes = 0) {
  const std::string request = RawClient::handshake_request();
  std::vector<char> sent(clients.size(), 0);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    sent[i] = clients[i].connect_tcp(port, receive_buffer_bytes) && clients[i].write_all(request);
  }
  std::size_t opened = 0;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    if (sent[i]) opened += clients[i].read_http_response().rfind("HTTP/1.1 101", 0) == 0;
  }
  return opened;
}

/// How a client ends its connection.
enum class Ending {
  close_frame,       // a close frame (1000), then waits for the server's close and EOF
  fin,               // TCP FIN without a close frame
  reset,             // TCP RST
  broken_handshake,  // half the opening handshake request, then FIN or RST
};

const char* name_of(Ending ending) {
  switch (ending) {
    case Ending::close_frame: return "a clean close frame";
    case Ending::fin: return "a TCP FIN without a close frame";
    case Ending::reset: return "a TCP reset";
    case Ending::broken_handshake: return "a handshake that fails midway";
  }
  return "?";
}

/// Runs `total` connections, `batch` at a time, that all end the same way,
/// against a fresh server, and checks that each one that opened was added
/// and removed exactly once and that none that did not open was added.
template <class Policy>
void check_every_ending_removed_once(Ending ending, std::size_t total, std::size_t batch) {
  INFO(policy_name<Policy>() << ", " << total << " connections ending with " << name_of(ending));
  ConnectionRegistry<Policy> registry;
  HandlerLog log;
  const bool opens = ending != Ending::broken_handshake;
  std::size_t started = 0;    // TCP connections that sent their (half) request
  std::size_t opened = 0;     // of those, how many got 101
  std::size_t echoed = 0;     // close_frame: the server answered with 1000
  std::size_t eofs = 0;       // close_frame: then the server closed the TCP connection
  bool settled = true;        // every batch was gone before its deadline
  const auto start = Clock::now();
  {
    ServerOptions options;
    options.threads = 2;
    Server<Policy> server(registry, options);
    log.attach(server);
    server.listen("127.0.0.1", 0);
    REQUIRE(server.port() != 0);
    const std::uint16_t port = server.port();

    const std::string request = RawClient::handshake_request();
    const std::string half_request = request.substr(0, request.size() / 2);
    for (std::size_t done = 0; done < total && settled; done += batch) {
      std::vector<RawClient> clients(std::min(batch, total - done));
      if (opens) {
        started += clients.size();
        opened += open_all(clients, port);
        // The open handler runs just after the 101 is written: wait for it,
        // so that each connection ends only after it was added.
        settled = wait_until([&] { return log.summary().opens == opened; }, std::chrono::seconds(10));
      } else {
        for (auto& client : clients) {
          started += client.connect_tcp(port) && client.write_all(half_request);
        }
      }
      switch (ending) {
        case Ending::close_frame:
          for (auto& client : clients) client.send_close(1000);
          for (auto& client : clients) {
            echoed += client.read_until_close(std::chrono::seconds(5)) == 1000;
            eofs += client.wait_for_eof(std::chrono::seconds(5));
          }
          break;
        case Ending::fin:
          for (auto& client : clients) client.close_now();
          break;
        case Ending::reset:
          for (auto& client : clients) client.reset_now();
          break;
        case Ending::broken_handshake:
          for (std::size_t i = 0; i < clients.size(); ++i) {
            if (i % 2 == 0) {
              clients[i].close_now();
            } else {
              clients[i].reset_now();
            }
          }
          break;
      }
      // This batch is gone (removed, or counted as a failed handshake)
      // before the next one starts, which keeps the descriptors in use low.
      const std::uint64_t failed_expected = opens ? 0 : started;
      settled = settled && wait_until(
                               [&] {
                                 return log.summary().closes == opened && registry.size() == 0 &&
                                        server.stats().handshakes_failed == failed_expected;
                               },
                               std::chrono::seconds(10));
    }

    CHECK(settled);
    CHECK(started == total);
    CHECK(opened == (opens ? total : 0));
    CHECK(registry.size() == 0);
    const auto stats = registry.stats();
    CHECK(stats.connections_added == opened);
    CHECK(stats.connections_removed == opened);
    CHECK(server.stats().handshakes_failed == (opens ? 0 : started));
    if (ending == Ending::close_frame) {
      CHECK(echoed == total);
      CHECK(eofs == total);
    }
  }
  // The Server is gone and its threads joined: no handler call can still
  // come, so the log is final.
  const auto s = log.summary();
  CHECK(s.opens == opened);
  CHECK(s.closes == opened);
  CHECK(s.still_open == 0);
  CHECK(s.reopened == 0);
  CHECK(s.stray_closes == 0);
  std::printf("[liveness] %s: %zu connections ending with %s: %.0f ms\n", policy_name<Policy>(),
              total, name_of(ending), ms_between(start, Clock::now()));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("a client that answers pings stays registered while one that sends "
                        "nothing is closed and removed about idle_timeout after its last activity",
                        "[websocketpp][liveness][heartbeat]", server_policies) {
  ConnectionRegistry<TestType> registry;
  HandlerLog log;
  ServerOptions options;
  options.threads = 2;
  options.ping_interval = milliseconds(50);
#ifdef WSREG_SANITIZED
  // Sanitized code runs 5-15 times slower: the client's pong can take
  // longer than 300 ms to come back, which would close it as idle.
  options.idle_timeout = milliseconds(1200);
#else
  options.idle_timeout = milliseconds(300);
#endif
  Server<TestType> server(registry, options);
  log.attach(server);
  server.listen("127.0.0.1", 0);
  REQUIRE(server.port() != 0);

  // A websocketpp client: it sends nothing, but answers every ping.
  ClientPool answering;
  answering.connect(url_of(server.port()), 1);
  REQUIRE(wait_until([&] { return answering.opened() == 1 && log.summary().opens == 1; }));
  const auto answering_since = Clock::now();

  // A raw client that completes the handshake, then never sends or reads.
  RawClient silent;
  REQUIRE(silent.open(server.port()));
  REQUIRE(wait_until([&] { return log.summary().opens == 2; }));
  const ConnectionId silent_id = log.opened_ids().at(1);

  // It is removed once idle_timeout has passed without even a pong.
  REQUIRE(wait_until([&] { return log.summary().closes == 1 && registry.size() == 1; },
                     std::chrono::seconds(10)));
  const auto silent_times = log.times(silent_id);
  REQUIRE(silent_times);
  REQUIRE(silent_times->closed);
  // Its last activity is the handshake, just before its open handler ran.
  const double idle_to_removal_ms = ms_between(silent_times->opened, *silent_times->closed);
  // Removal follows idle_timeout by the sweep period and a short wait for a
  // close reply that cannot come; not by close_handshake_timeout (5 s by
  // default), which is for peers that are alive.
  CHECK(idle_to_removal_ms >= options.idle_timeout.count() - 20);
  CHECK(idle_to_removal_ms < options.idle_timeout.count() + 1000);
  CHECK(server.stats().idle_closes == 1);
  // It was told why, behind the pings it never answered.
  CHECK(silent.read_until_close(std::chrono::seconds(2)) == 1001);

  // The answering client keeps being pinged (at most one ping per
  // ping_interval) and stays: 24 more pings take at least 1.2 s.
  const auto pings_after_removal = server.stats().pings_sent;
  CHECK(wait_until([&] { return server.stats().pings_sent >= pings_after_removal + 24; },
                   std::chrono::seconds(10)));
  const double answering_ms = ms_between(answering_since, Clock::now());
  CHECK(answering_ms >= 1500);
  CHECK(registry.size() == 1);
  CHECK(answering.ended() == 0);
  CHECK(server.stats().idle_closes == 1);
  const auto s = log.summary();
  CHECK(s.closes == 1);
  CHECK(s.still_open == 1);
  CHECK(s.stray_closes == 0);
  std::printf("[liveness] %s: silent client removed %.0f ms after its last activity "
              "(idle_timeout %lld ms); answering client still registered after %.0f ms, "
              "%llu pings sent\n",
              policy_name<TestType>(), idle_to_removal_ms,
              static_cast<long long>(options.idle_timeout.count()), answering_ms,
              static_cast<unsigned long long>(server.stats().pings_sent));
}

TEMPLATE_LIST_TEST_CASE("however a connection ends it is removed exactly once, and one that "
                        "never opened is never added",
                        "[websocketpp][liveness][removal]", server_policies) {
  for (const Ending ending :
       {Ending::close_frame, Ending::fin, Ending::reset, Ending::broken_handshake}) {
    DYNAMIC_SECTION(name_of(ending)) {
      check_every_ending_removed_once<TestType>(ending, 1000, 200);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("however 10,000 connections end each is removed exactly once, and one "
                        "that never opened is never added",
                        "[websocketpp][liveness][removal][.stress]", server_policies) {
  for (const Ending ending :
       {Ending::close_frame, Ending::fin, Ending::reset, Ending::broken_handshake}) {
    DYNAMIC_SECTION(name_of(ending)) {
      check_every_ending_removed_once<TestType>(ending, 10000, 1000);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("shutdown with 1000 open connections, 10 of them stalled, completes by "
                        "its grace deadline and leaves no thread running",
                        "[websocketpp][liveness][shutdown]", server_policies) {
  constexpr std::size_t stalled_clients = 10;
  constexpr std::size_t answering_clients = 990;
  constexpr std::size_t chunk_bytes = 64 * 1024;
  constexpr std::size_t chunks = 32;  // 2 MiB for each stalled client
  const milliseconds grace(1000);

  ConnectionRegistry<TestType> registry;
  HandlerLog log;
  std::vector<RawClient> stalled(stalled_clients);
  std::vector<RawClient> answering(answering_clients);
  // A sanitizer runtime may start a helper thread of its own at the first
  // thread creation: start and join one first so it is counted on both sides.
  std::thread([] {}).join();
  const std::size_t threads_before = threads_in_process();
  double shutdown_ms = 0;
  std::uint64_t high_water = 0;
  {
    ServerOptions options;
    options.threads = 2;
    options.socket_send_buffer_bytes = 16 * 1024;
    options.max_buffered_bytes = 64 * 1024 * 1024;  // not closed as slow consumers first
    Server<TestType> server(registry, options);
    log.attach(server);
    server.listen("127.0.0.1", 0);
    REQUIRE(server.port() != 0);

    // The stalled clients never read, with a 4 KiB receive window; while
    // they are the only ones connected, fill every buffer on the way to them.
    REQUIRE(open_all(stalled, server.port(), 4 * 1024) == stalled_clients);
    REQUIRE(wait_until([&] { return registry.size() == stalled_clients; }));
    const Payload chunk = Payload::binary(std::string(chunk_bytes, 'x'));
    for (std::size_t i = 0; i < chunks; ++i) registry.broadcast(chunk);
    registry.flush();
    CHECK(registry.stats().messages_sent == stalled_clients * chunks);
    CHECK(server.stats().backpressure_drops == 0);
    // (buffered_bytes_high_water is no measure of the backlog here: each
    // websocketpp write takes every queued message along, and what is in
    // flight is no longer counted. That the stalled clients are stalled shows
    // below: they hold the shutdown until its deadline.)
    high_water = server.stats().buffered_bytes_high_water;

    // Clients that read, and answer the server's close.
    std::size_t opened = 0;
    for (std::size_t first = 0; first < answering.size(); first += 200) {
      std::vector<RawClient> batch(std::min<std::size_t>(200, answering.size() - first));
      opened += open_all(batch, server.port());
      std::move(batch.begin(), batch.end(), answering.begin() + static_cast<std::ptrdiff_t>(first));
    }
    REQUIRE(opened == answering_clients);
    REQUIRE(wait_until([&] { return registry.size() == stalled_clients + answering_clients; }));
    CHECK(server.stats().slow_consumer_closes == 0);

    const auto start = Clock::now();
    wsreg::wspp::ShutdownFuture done = server.shutdown(grace);
    std::size_t going_away = 0;
    for (auto& client : answering) {
      if (client.read_until_close(std::chrono::seconds(5)) == 1001) {
        ++going_away;
        client.send_close(1001);
      }
    }
    const bool ready = done.wait_until(start + grace + std::chrono::seconds(2)) ==
                       std::future_status::ready;
    shutdown_ms = ms_between(start, Clock::now());
    CHECK(ready);
    // Not before the deadline either: a stalled client cannot answer the
    // close, so it is dropped only when its grace runs out.
    CHECK(shutdown_ms >= grace.count() - 10);
    CHECK(registry.size() == 0);
    CHECK(going_away == answering_clients);
    const auto stats = registry.stats();
    CHECK(stats.connections_added == stalled_clients + answering_clients);
    CHECK(stats.connections_removed == stalled_clients + answering_clients);
    // The stalled clients were dropped: after what reached them, EOF.
    std::size_t dropped = 0;
    for (auto& client : stalled) dropped += client.wait_for_eof(std::chrono::seconds(5));
    CHECK(dropped == stalled_clients);
  }
  // The Server is destroyed: its io threads must be gone. (join() returns
  // when a thread has exited; the kernel may list it a moment longer.)
  const std::size_t threads_right_after = threads_in_process();
  CHECK(wait_until([&] { return threads_in_process() == threads_before; }, milliseconds(1000)));
  const std::size_t threads_after = threads_in_process();
  CHECK(threads_after == threads_before);
  const auto s = log.summary();
  CHECK(s.opens == stalled_clients + answering_clients);
  CHECK(s.closes == stalled_clients + answering_clients);
  CHECK(s.stray_closes == 0);
  std::printf("[liveness] %s: shutdown(%lld ms) of %zu connections (%zu stalled) ready after "
              "%.0f ms; threads before %zu, right after destruction %zu, after %zu; "
              "buffered_bytes_high_water %llu\n",
              policy_name<TestType>(), static_cast<long long>(grace.count()),
              stalled_clients + answering_clients, stalled_clients, shutdown_ms, threads_before,
              threads_right_after, threads_after, static_cast<unsigned long long>(high_water));
}

TEMPLATE_LIST_TEST_CASE("a close handler may broadcast to everyone still connected while 300 "
                        "connections close at once",
                        "[websocketpp][liveness][reentrancy]", server_policies) {
  constexpr std::size_t leaving = 300;
  constexpr std::size_t staying = 10;
  ConnectionRegistry<TestType> registry;
  HandlerLog log;
  std::atomic<std::size_t> handler_calls{0};
  ServerOptions options;
  options.threads = 2;
  Server<TestType> server(registry, options);
  server.set_open_handler([&](ConnectionId id) { log.opened(id); });
  server.set_close_handler([&](ConnectionId id) {
    log.closed(id);
    registry.broadcast(Payload::text("left " + std::to_string(id)));
    // ActorPolicy: size() and stats() wait for the actor from an io thread.
    (void)registry.size();
    (void)registry.stats();
    handler_calls.fetch_add(1);
  });
  server.listen("127.0.0.1", 0);
  REQUIRE(server.port() != 0);

  ClientPool stayers;
  stayers.connect(url_of(server.port()), staying);
  REQUIRE(wait_until([&] { return stayers.opened() == staying && registry.size() == staying; }));
  std::vector<RawClient> leavers(leaving);
  REQUIRE(open_all(leavers, server.port()) == leaving);
  REQUIRE(wait_until([&] { return registry.size() == staying + leaving; }));

  // All 300 go at once, half with a reset, half with a FIN.
  const auto start = Clock::now();
  for (std::size_t i = 0; i < leavers.size(); ++i) {
    if (i % 2 == 0) {
      leavers[i].reset_now();
    } else {
      leavers[i].close_now();
    }
  }
  const bool settled = wait_until(
      [&] { return handler_calls.load() == leaving && registry.size() == staying; },
      std::chrono::seconds(20));
  const double settle_ms = ms_between(start, Clock::now());
  CHECK(settled);
  CHECK(handler_calls.load() == leaving);
  // Every close handler's broadcast reached every client still connected.
  CHECK(wait_until([&] { return stayers.messages() == staying * leaving; },
                   std::chrono::seconds(20)));
  std::size_t exact = 0;
  for (std::size_t i = 0; i < staying; ++i) exact += stayers.at(i).messages.load() == leaving;
  CHECK(exact == staying);
  CHECK(stayers.ended() == 0);

  // Then the rest leave too, each close handler broadcasting to fewer.
  for (std::size_t i = 0; i < staying; ++i) stayers.close_cleanly(i);
  CHECK(wait_until([&] { return registry.size() == 0 && handler_calls.load() == leaving + staying; },
                   std::chrono::seconds(20)));
  CHECK(handler_calls.load() == leaving + staying);
  const auto s = log.summary();
  CHECK(s.opens == leaving + staying);
  CHECK(s.closes == leaving + staying);
  CHECK(s.stray_closes == 0);
  CHECK(registry.stats().connections_removed == leaving + staying);
  std::printf("[liveness] %s: %zu close handlers broadcasting to the rest done in %.0f ms\n",
              policy_name<TestType>(), leaving, settle_ms);
}

TEMPLATE_LIST_TEST_CASE("an open handler may send to its own id and read the registry's size and "
                        "stats",
                        "[websocketpp][liveness][reentrancy]", server_policies) {
  constexpr std::size_t clients = 50;
  struct Seen {
    ConnectionId id;
    std::size_t size;
    std::uint64_t added;
  };
  ConnectionRegistry<TestType> registry;
  // This mutex synchronizes all access to seen.
  std::mutex mutex;
  std::vector<Seen> seen;
  ServerOptions options;
  options.threads = 2;
  Server<TestType> server(registry, options);
  server.set_open_handler([&](ConnectionId id) {
    registry.send(id, Payload::text("welcome " + std::to_string(id)));
    const std::size_t size = registry.size();
    const auto stats = registry.stats();
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(Seen{id, size, stats.connections_added});
  });
  server.listen("127.0.0.1", 0);
  REQUIRE(server.port() != 0);

  ClientPool pool;
  pool.connect(url_of(server.port()), clients);
  REQUIRE(wait_until([&] { return pool.opened() == clients && pool.messages() == clients; }));
  CHECK(wait_until([&] { return registry.stats().messages_sent == clients; }));
  const auto stats = registry.stats();
  CHECK(stats.send_unknown == 0);  // each open handler found its own id registered
  CHECK(stats.messages_dropped == 0);

  std::vector<Seen> observed;
  {
    std::lock_guard<std::mutex> lock(mutex);
    observed = seen;
  }
  REQUIRE(observed.size() == clients);
  std::set<std::string> expected;
  std::size_t saw_itself = 0;
  for (const Seen& s : observed) {
    expected.insert("welcome " + std::to_string(s.id));
    saw_itself += s.size >= 1 && s.added >= 1;
  }
  CHECK(saw_itself == clients);
  std::set<std::string> received;
  for (std::size_t i = 0; i < clients; ++i) {
    auto& record = pool.at(i);
    CHECK(record.messages.load() == 1);
    std::lock_guard<std::mutex> lock(record.mutex);
    received.insert(record.last_payload);
  }
  CHECK(received == expected);  // each connection got its own welcome, and only that
}

TEMPLATE_LIST_TEST_CASE("heartbeat settings that could close a live client are refused when the "
                        "Server is constructed, with an error naming both",
                        "[websocketpp][liveness][heartbeat]", server_policies) {
  ConnectionRegistry<TestType> registry;
  const std::pair<long, long> refused[] = {{3000, 1000}, {2000, 2000}, {1000, 1250}, {1000, 1100},
                                           {1000, 1999}};
  for (const auto& [ping, idle] : refused) {
    INFO("ping_interval " << ping << " ms, idle_timeout " << idle << " ms");
    ServerOptions options;
    options.ping_interval = milliseconds(ping);
    options.idle_timeout = milliseconds(idle);
    try {
      Server<TestType> server(registry, options);
      FAIL("constructed");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains("idle_timeout (" + std::to_string(idle) + " ms)"));
      CHECK_THAT(e.what(), Catch::Contains("ping_interval (" + std::to_string(ping) + " ms)"));
    }
  }
  const std::pair<long, long> accepted[] = {{1000, 2000}, {0, 1000}, {1000, 0}, {0, 0}};
  for (const auto& [ping, idle] : accepted) {
    INFO("ping_interval " << ping << " ms, idle_timeout " << idle << " ms");
    ServerOptions options;
    options.ping_interval = milliseconds(ping);
    options.idle_timeout = milliseconds(idle);
    CHECK_NOTHROW(Server<TestType>(registry, options));
  }
}

TEMPLATE_LIST_TEST_CASE("clients that send nothing but pong replies are never closed as idle at "
                        "the tightest heartbeat allowed",
                        "[websocketpp][liveness][heartbeat]", server_policies) {
  ConnectionRegistry<TestType> registry;
  ServerOptions options;
  options.threads = 2;
#ifdef WSREG_SANITIZED
  options.ping_interval = milliseconds(300);  // sanitized code answers 5-15 times slower
#else
  options.ping_interval = milliseconds(100);
#endif
  options.idle_timeout = options.ping_interval * 2;  // the rule's limit
  Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);
  constexpr std::size_t clients = 50;
  ClientPool pool;  // websocketpp clients: they send nothing but pongs
  pool.connect(url_of(server.port()), clients);
  REQUIRE(wait_until([&] { return pool.opened() == clients && registry.size() == clients; }));
  // 20 pings each: 20 ping intervals of nothing but pings and pongs.
  CHECK(wait_until([&] { return server.stats().pings_sent >= clients * 20; },
                   std::chrono::seconds(60)));
  CHECK(server.stats().idle_closes == 0);
  CHECK(pool.ended() == 0);
  CHECK(registry.size() == clients);
  std::printf("[liveness] %s: %zu pong-only clients, ping_interval %lld ms, idle_timeout %lld ms: "
              "%llu pings, %llu idle closes\n",
              policy_name<TestType>(), clients,
              static_cast<long long>(options.ping_interval.count()),
              static_cast<long long>(options.idle_timeout.count()),
              static_cast<unsigned long long>(server.stats().pings_sent),
              static_cast<unsigned long long>(server.stats().idle_closes));
}
