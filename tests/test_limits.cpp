// Limits of wsreg::wspp::Server over real loopback sockets, each test on an
// ephemeral port: max_connections, max_message_size, handshake_timeout, and
// running out of file descriptors (in a child process, emfile_server).
#include "wsreg/websocketpp/server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "client_pool.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"


using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::ClientPool;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

using wsreg_test::url_of;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

struct Message {
  int opcode = 0;
  std::string payload;
};

// One whole data message from `client`, or nullopt on close, EOF or timeout.
std::optional<Message> read_data_message(RawClient& client, milliseconds timeout) {
  std::uint8_t opcode = 0;
  Message message;
  if (!client.read_data_message(opcode, message.payload, timeout)) return std::nullopt;
  message.opcode = opcode;
  return message;
}

// Reads everything until the peer closes or `timeout` passes.
std::string read_to_eof(int fd, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  char chunk[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) != 1) return out;
    const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return out;
    out.append(chunk, static_cast<std::size_t>(got));
  }
}

// A blocking send that gives up after `timeout` (SO_SNDTIMEO), so a server
// that stops reading cannot hang the test in RawClient::write_all.
void limit_send_time(RawClient& client, milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(client.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A message of `total` bytes as `piece`-byte fragments (RFC 6455 5.4): the
// first with `opcode`, the rest continuation frames, FIN on the last one only
// if `finish`.
std::string fragmented(std::uint8_t opcode, std::size_t total, std::size_t piece, bool finish) {
  std::string out;
  for (std::size_t sent = 0; sent < total; sent += piece) {
    const std::size_t n = std::min(piece, total - sent);
    const bool last = sent + n == total;
    out += RawClient::frame(sent == 0 ? opcode : 0x0, std::string(n, 'f'), last && finish);
  }
  return out;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

// --- max_connections --------------------------------------------------------

TEMPLATE_LIST_TEST_CASE(
    "a handshake past max_connections gets HTTP 503 and never reaches the "
    "registry, and a freed slot admits the next client",
    "[websocketpp][limits][max_connections]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  options.max_connections = 5;
  wsreg::wspp::Server<TestType> server(registry, options);
  std::atomic<int> opens{0};
  server.set_open_handler([&](ConnectionId) { opens.fetch_add(1); });
  server.listen("127.0.0.1", 0);

  ClientPool pool;
  pool.connect(url_of(server.port()), 5);
  REQUIRE(wait_until([&] { return pool.opened() == 5 && registry.size() == 5; }));

  RawClient sixth;
  REQUIRE(sixth.connect_tcp(server.port()));
  REQUIRE(sixth.write_all(RawClient::handshake_request()));
  const std::string response = sixth.read_http_response(seconds(5));
  INFO("response to the sixth handshake:\n" << response);
  CHECK(response.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(sixth.wait_for_eof(seconds(5)));  // the server hangs up after the 503
  CHECK(server.stats().handshakes_rejected == 1);
  CHECK(registry.size() == 5);
  CHECK(registry.stats().connections_added == 5);
  CHECK(opens.load() == 5);

  // The five admitted connections are untouched by the refusal.
  registry.broadcast(Payload::text("still five"));
  REQUIRE(wait_until([&] { return pool.messages() == 5; }, seconds(5)));
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(pool.at(i).messages.load() == 1);
    CHECK_FALSE(pool.at(i).ended.load());
  }

  // One leaves; its slot admits the next client.
  pool.close_cleanly(0);
  REQUIRE(wait_until([&] { return pool.ended() == 1 && registry.size() == 4; }, seconds(5)));
  RawClient next;
  CHECK(next.open(server.port(), 0, seconds(5)));
  CHECK(wait_until([&] { return registry.size() == 5; }, seconds(5)));
  CHECK(registry.stats().connections_added == 6);
  CHECK(server.stats().handshakes_rejected == 1);
}

TEMPLATE_LIST_TEST_CASE(
    "clients racing for the slots never push the registry past "
    "max_connections",
    "[websocketpp][limits][max_connections]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  options.max_connections = 5;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  constexpr std::size_t clients = 40;
  ClientPool pool;
  pool.connect(url_of(server.port()), clients);
  REQUIRE(wait_until([&] { return pool.opened() + pool.ended() == clients; }, seconds(10)));
  CHECK(pool.opened() == 5);
  CHECK(pool.ended() == clients - 5);
  CHECK(registry.size() == 5);
  CHECK(registry.stats().connections_added == 5);
  CHECK(server.stats().handshakes_rejected == clients - 5);
}

// --- max_message_size -------------------------------------------------------

TEMPLATE_LIST_TEST_CASE(
    "an inbound message over max_message_size, whole or in small fragments, "
    "closes only its own connection with 1009",
    "[websocketpp][limits][max_message_size]", server_policies) {
  constexpr std::size_t limit = 64 * 1024;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  options.max_message_size = limit;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.set_message_handler(
      [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
  server.listen("127.0.0.1", 0);

  ClientPool bystander;
  bystander.connect(url_of(server.port()), 1);
  RawClient whole;
  RawClient pieces;
  REQUIRE(whole.open(server.port()));
  REQUIRE(pieces.open(server.port()));
  REQUIRE(wait_until([&] { return bystander.opened() == 1 && registry.size() == 3; }));
  limit_send_time(whole, seconds(5));
  limit_send_time(pieces, seconds(5));

  // (a) One frame of limit + 1 bytes. (b) 1 KiB fragments, none of them
  // near the limit, that add up to more than it.
  // Either write may fail part way: the server hangs up once past the limit.
  whole.write_all(RawClient::frame(0x1, std::string(limit + 1, 'w')));
  pieces.write_all(fragmented(0x1, limit + 1024, 1024, false));
  const int whole_code = whole.read_until_close(seconds(5));
  const int pieces_code = pieces.read_until_close(seconds(5));
  const auto closed = Clock::now();
  CHECK(whole_code == 1009);
  CHECK(pieces_code == 1009);
  // Answer the close as a well-behaved client does (RFC 6455 5.5.1); the
  // server may already have dropped the TCP connection, so this may fail.
  whole.send_close(1009);
  pieces.send_close(1009);

  // Meanwhile the other connection still echoes through the registry.
  bystander.send(0, "still here", websocketpp::frame::opcode::text);
  REQUIRE(wait_until([&] { return bystander.at(0).messages.load() == 1; }, seconds(5)));
  {
    auto& r = bystander.at(0);
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(r.last_payload == "still here");
  }

  const bool removed = wait_until([&] { return registry.size() == 1; }, seconds(10));
  const double removal_s = seconds_between(closed, Clock::now());
  CHECK(removed);
  const bool whole_eof = whole.wait_for_eof(seconds(2));
  const bool pieces_eof = pieces.wait_for_eof(seconds(2));
  WARN("max_message_size: both 1009-closed connections left the registry "
       << removal_s << " s after their close frames arrived");
  CHECK(whole_eof);
  CHECK(pieces_eof);
  // 1009 ends the connection at once (websocketpp treats it as terminal):
  // the entry does not linger for close_handshake_timeout (5 s).
  CHECK(removal_s < 2.0);
  const bool counted = wait_until([&] { return server.stats().oversize_closes == 2; }, seconds(2));
  INFO("oversize_closes " << server.stats().oversize_closes);
  CHECK(counted);
  CHECK(registry.stats().connections_removed == 2);

  // The bystander is still open and registered, and still echoes.
  CHECK_FALSE(bystander.at(0).ended.load());
  bystander.send(0, "after", websocketpp::frame::opcode::text);
  CHECK(wait_until([&] { return bystander.at(0).messages.load() == 2; }, seconds(5)));
}

TEMPLATE_LIST_TEST_CASE(
    "a message of exactly max_message_size bytes is delivered, whole or in "
    "fragments",
    "[websocketpp][limits][max_message_size]", server_policies) {
  constexpr std::size_t limit = 64 * 1024;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.max_message_size = limit;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.set_message_handler(
      [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
  server.listen("127.0.0.1", 0);

  RawClient client;
  REQUIRE(client.open(server.port()));
  limit_send_time(client, seconds(5));

  REQUIRE(client.write_all(RawClient::frame(0x2, std::string(limit, 'b'))));
  auto echo = read_data_message(client, seconds(5));
  REQUIRE(echo);
  CHECK(echo->opcode == 0x2);
  CHECK(echo->payload == std::string(limit, 'b'));

  REQUIRE(client.write_all(fragmented(0x1, limit, 1024, true)));
  echo = read_data_message(client, seconds(5));
  REQUIRE(echo);
  CHECK(echo->opcode == 0x1);
  CHECK(echo->payload == std::string(limit, 'f'));

  CHECK(registry.size() == 1);
  CHECK(server.stats().oversize_closes == 0);
}

// --- handshake_timeout ------------------------------------------------------

TEMPLATE_LIST_TEST_CASE(
    "handshakes that trickle in one byte a second are dropped at "
    "handshake_timeout, never registered, and do not block other clients",
    "[websocketpp][limits][handshake_timeout]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  options.handshake_timeout = seconds(1);
  wsreg::wspp::Server<TestType> server(registry, options);
  std::atomic<int> opens{0};
  server.set_open_handler([&](ConnectionId) { opens.fetch_add(1); });
  server.listen("127.0.0.1", 0);
  const std::uint16_t port = server.port();

  // One helper thread drives all the slow connections: it connects them,
  // sends one byte of the handshake request on each about once a second,
  // and notes when each sees the server hang up. It makes no assertion; the
  // main thread checks what it recorded after join().
  constexpr std::size_t slow = 300;
  std::atomic<bool> all_connected{false};
  std::atomic<std::size_t> reaped{0};
  std::vector<double> reap_s(slow, -1.0);  // helper only until join()
  std::size_t connect_failures = 0;        // helper only until join()
  std::thread dripper([&] {
    const std::string request = RawClient::handshake_request();
    std::vector<RawClient> clients(slow);
    std::vector<Clock::time_point> connected_at(slow);
    std::vector<bool> done(slow, false);
    std::size_t finished = 0;
    for (std::size_t i = 0; i < slow; ++i) {
      if (!clients[i].connect_tcp(port)) {
        ++connect_failures;
        done[i] = true;
        ++finished;
        continue;
      }
      connected_at[i] = Clock::now();
      ::send(clients[i].fd(), request.data(), 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    all_connected = true;
    const auto start = Clock::now();
    const auto give_up = start + seconds(6);
    auto next_byte_at = start + seconds(1);
    std::size_t next_byte = 1;
    std::vector<pollfd> fds;
    std::vector<std::size_t> index;
    while (finished < slow && Clock::now() < give_up) {
      fds.clear();
      index.clear();
      for (std::size_t i = 0; i < slow; ++i) {
        if (done[i]) continue;
        fds.push_back(pollfd{clients[i].fd(), POLLIN, 0});
        index.push_back(i);
      }
      const auto wake = std::min(next_byte_at, give_up);
      const auto wait_ms = std::max<long long>(
          0, std::chrono::duration_cast<milliseconds>(wake - Clock::now()).count());
      const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
      const auto now = Clock::now();
      for (std::size_t k = 0; ready > 0 && k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        char sink[256];
        const ssize_t got = ::recv(fds[k].fd, sink, sizeof sink, MSG_DONTWAIT);
        if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR))) continue;
        const std::size_t i = index[k];
        done[i] = true;
        ++finished;
        reap_s[i] = seconds_between(connected_at[i], now);
        clients[i].close_now();
        reaped.fetch_add(1);
      }
      if (now >= next_byte_at && next_byte < request.size()) {
        for (std::size_t i = 0; i < slow; ++i) {
          if (!done[i]) {
            ::send(clients[i].fd(), request.data() + next_byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          }
        }
        ++next_byte;
        next_byte_at += seconds(1);
      }
    }
  });

  bool connected = wait_until([&] { return all_connected.load(); }, seconds(10));
  // While they hang, a normal client gets in and is registered.
  RawClient normal;
  bool normal_open = false;
  bool normal_registered = false;
  std::size_t reaped_when_registered = 0;
  if (connected) {
    normal_open = normal.open(port, 0, seconds(2));
    normal_registered = wait_until([&] { return registry.size() == 1; }, seconds(2));
    reaped_when_registered = reaped.load();
  }
  dripper.join();
  REQUIRE(connected);
  CHECK(normal_open);
  CHECK(normal_registered);
  INFO("slow connections already reaped when the normal client was registered: "
       << reaped_when_registered);
  CHECK(reaped_when_registered < slow);

  CHECK(connect_failures == 0);
  std::vector<double> times;
  for (double t : reap_s) {
    if (t >= 0) times.push_back(t);
  }
  CHECK(times.size() == slow - connect_failures);
  if (!times.empty()) {
    const auto [lo, hi] = std::minmax_element(times.begin(), times.end());
    WARN("handshake_timeout 1 s: " << times.size() << " of " << slow
                                   << " trickling connections closed by the server; seconds "
                                      "from connect to EOF: min "
                                   << *lo << ", median " << median(times) << ", max " << *hi);
    CHECK(*lo >= 0.9);
    CHECK(*hi <= 3.0);
  }
  const bool all_failed =
      wait_until([&] { return server.stats().handshakes_failed == slow; }, seconds(5));
  INFO("handshakes_failed " << server.stats().handshakes_failed);
  CHECK(all_failed);
  CHECK(registry.size() == 1);
  CHECK(registry.stats().connections_added == 1);
  CHECK(opens.load() == 1);
  CHECK(server.stats().handshakes_rejected == 0);
}

// --- EMFILE -----------------------------------------------------------------

namespace {

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The whole content of the file open on `fd`, read with pread.
std::string read_file(int fd) {
  std::string out;
  char chunk[4096];
  for (;;) {
    const ssize_t got = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(out.size()));
    if (got <= 0) return out;
    out.append(chunk, static_cast<std::size_t>(got));
  }
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// User plus system CPU time of process `pid` in seconds (/proc/<pid>/stat
// fields 14 and 15), or -1 if unreadable.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(line.substr(paren + 2));  // from field 3, the state
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  long long utime = 0;
  long long stime = 0;
  fields >> utime >> stime;
  if (!fields) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The port in a "port N" line, or 0.
std::uint16_t port_in(const std::string& line) {
  unsigned port = 0;
  if (std::sscanf(line.c_str(), "port %u", &port) != 1 || port > 65535) return 0;
  return static_cast<std::uint16_t>(port);
}

// The value of a metric line "name value" in Prometheus text, or -1.
long long metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atoll(text.c_str() + at + name.size() + 2);
}

}  // namespace

TEST_CASE(
    "out of file descriptors, the server backs off instead of spinning and resumes "
    "accepting by itself",
    "[websocketpp][limits][emfile]") {
  constexpr int fd_limit = 64;
  constexpr std::size_t connections = 120;  // well past the child's limit

  char log_path[] = "/tmp/wsreg_emfile_log_XXXXXX";
  Fd log_file(::mkostemp(log_path, O_CLOEXEC));
  REQUIRE(log_file.fd >= 0);
  ::unlink(log_path);  // gone once both processes close it

  wsreg_test::ChildProcess child({WSREG_EMFILE_SERVER, std::to_string(fd_limit)}, log_file.fd);
  REQUIRE(child.started());
  const std::uint16_t port = port_in(child.read_line(seconds(10)));
  {
    INFO("emfile_server stderr:\n" << read_file(log_file.fd));
    REQUIRE(port != 0);
  }

  // Far more connections than the child has descriptors: the kernel
  // completes them all (listen backlog), the server accepts until EMFILE.
  std::vector<RawClient> held(connections);
  for (auto& c : held) REQUIRE(c.connect_tcp(port));
  // The child is out of descriptors once it holds fd_limit of them.
  const bool exhausted = wait_until(
      [&] { return wsreg_test::open_fds(child.pid()) >= static_cast<std::size_t>(fd_limit); }, seconds(5));
  {
    INFO("child descriptors in use: " << wsreg_test::open_fds(child.pid()));
    REQUIRE(exhausted);
  }

  // Measure the child over 2 s of EMFILE (a measurement window, not a wait
  // for a condition): a busy accept loop would burn about 2 s of CPU and
  // log thousands of lines.
  constexpr auto window = seconds(2);
  const double cpu_before = cpu_seconds(child.pid());
  const std::size_t lines_before = count_lines(read_file(log_file.fd));
  const auto window_start = Clock::now();
  std::this_thread::sleep_for(window);
  const double cpu_after = cpu_seconds(child.pid());
  const double window_s = seconds_between(window_start, Clock::now());
  const std::string log_after = read_file(log_file.fd);
  const std::size_t lines_in_window = count_lines(log_after) - lines_before;
  const std::size_t fds_in_use = wsreg_test::open_fds(child.pid());
  const double cpu = cpu_after - cpu_before;
  WARN("EMFILE (RLIMIT_NOFILE " << fd_limit << ", " << connections << " connections, child using "
                                << fds_in_use << " fds): child CPU " << cpu << " s in " << window_s
                                << " s; " << lines_in_window << " log lines in the window, "
                                << count_lines(log_after) << " in all:\n"
                                << log_after.substr(0, 2000));
  REQUIRE(cpu_before >= 0);
  REQUIRE(cpu_after >= 0);
  CHECK(cpu < 0.5);
  CHECK(lines_in_window <= 2 * static_cast<std::size_t>(window.count()) + 2);
  // Each pause is logged, with the reason.
  CHECK(log_after.find("wsreg: accept failed (Too many open files); pausing accepts for") !=
        std::string::npos);
  CHECK(fds_in_use <= static_cast<std::size_t>(fd_limit));

  // Free the descriptors: the server resumes accepting by itself, and a new
  // client gets a WebSocket and an echo.
  for (std::size_t i = 10; i < connections; ++i) held[i].close_now();
  const auto freed = Clock::now();
  RawClient client;
  REQUIRE(client.open(port, 0, seconds(5)));
  const double resume_s = seconds_between(freed, Clock::now());
  REQUIRE(client.write_all(RawClient::frame(0x1, "echo after EMFILE")));
  const auto echo = read_data_message(client, seconds(5));
  REQUIRE(echo);
  CHECK(echo->payload == "echo after EMFILE");

  // The server's own counters agree with its log: one line per back-off.
  RawClient metrics_client;
  REQUIRE(metrics_client.connect_tcp(port));
  REQUIRE(metrics_client.write_all(
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  const std::string metrics = read_to_eof(metrics_client.fd(), seconds(5));
  const long long backoffs = metric(metrics, "wsreg_accept_backoffs_total");
  const long long accept_errors = metric(metrics, "wsreg_accept_errors_total");
  const std::size_t log_lines = count_lines(read_file(log_file.fd));
  WARN("EMFILE: accepting resumed " << resume_s << " s after the descriptors were freed; "
                                    << "accept_backoffs_total " << backoffs
                                    << ", accept_errors_total " << accept_errors << ", log lines "
                                    << log_lines);
  CHECK(backoffs >= 1);
  CHECK(static_cast<std::size_t>(backoffs) == log_lines);
  CHECK(accept_errors >= backoffs);

  // SIGTERM: the registered client gets 1001, the child exits 0.
  REQUIRE(::kill(child.pid(), SIGTERM) == 0);
  const auto term_sent = Clock::now();
  CHECK(client.read_until_close(seconds(5)) == 1001);
  client.send_close(1001);
  const int status = child.wait(seconds(5));
  const double exit_s = seconds_between(term_sent, Clock::now());
  INFO("emfile_server stderr:\n" << read_file(log_file.fd));
  WARN("EMFILE: emfile_server exited " << exit_s << " s after SIGTERM");
  CHECK(status == 0);  // exited by itself, with 0 (-1: still running; 128+n: signal n)
}
