// send_floor: the physical floor of a loopback broadcast. One thread makes
// M small blocking send() calls, each the size of one tick frame, round-robin
// over K loopback TCP connections to a reader process that only drains them,
// and reports sends per CPU-second of the sending thread
// (CLOCK_THREAD_CPUTIME_ID). A server that writes one frame per connection per
// tick cannot do better than this many frames per CPU-second, so
//   fan-out efficiency = delivered frames per server CPU-second / this.
//
// The reader is a child process, so K can reach the per-process descriptor
// limit (20,000 here) on each side.
//
// Usage: send_floor [--connections 1,1000] [--sends 500000] [--bytes 46]
//          [--nodelay on|off]
// Prints one JSON object: {"frame_bytes":..,"nodelay":..,"results":[{"connections":K,
//   "sends":M,"cpu_s":..,"wall_s":..,"sends_per_cpu_s":..,"sends_per_wall_s":..}, ..]}
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// Accepts `count` connections on `listener` and reads everything they send
/// until each has closed; one epoll loop (in the reader child process).
void drain(int listener, std::size_t count) {
  std::vector<int> fds;
  fds.reserve(count);
  while (fds.size() < count) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) fail("accept");
    fds.push_back(fd);
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");
  for (const int fd : fds) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl");
  }
  std::vector<char> buffer(1 << 16);
  std::vector<epoll_event> events(256);
  std::size_t open = count;
  while (open > 0) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got > 0) continue;
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      ::close(fd);
      --open;
    }
  }
  ::close(ep);
}

struct Result {
  std::size_t connections = 0;
  std::size_t sends = 0;
  double cpu_s = 0;
  double wall_s = 0;
};

/// One measurement: K connections, M sends of `bytes` each, round-robin.
Result measure(std::size_t connections, std::size_t sends, std::size_t bytes, bool nodelay) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    fail("bind");
  }
  if (::listen(listener, 4096) != 0) fail("listen");
  socklen_t length = sizeof address;
  if (::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    fail("getsockname");
  }
  const pid_t reader = ::fork();
  if (reader < 0) fail("fork");
  if (reader == 0) {
    int status = 0;
    try {
      drain(listener, connections);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "send_floor: reader: %s\n", e.what());
      status = 1;
    }
    std::fflush(stderr);
    ::_exit(status);
  }
  ::close(listener);

  std::vector<int> fds;
  fds.reserve(connections);
  const int one = 1;
  for (std::size_t i = 0; i < connections; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    if (nodelay) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      fail("connect");
    }
    fds.push_back(fd);
  }

  // A tick-sized WebSocket text frame: 2 header bytes, then JSON-like text.
  std::string frame(bytes, 'x');
  frame[0] = '\x81';
  frame[1] = static_cast<char>(bytes - 2);

  Result result;
  result.connections = connections;
  result.sends = sends;
  const double cpu_start = thread_cpu_seconds();
  const auto wall_start = std::chrono::steady_clock::now();
  std::size_t next = 0;
  for (std::size_t i = 0; i < sends; ++i) {
    if (::send(fds[next], frame.data(), frame.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(frame.size())) {
      fail("send");
    }
    if (++next == fds.size()) next = 0;
  }
  result.cpu_s = thread_cpu_seconds() - cpu_start;
  result.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  for (const int fd : fds) ::close(fd);
  int status = 0;
  if (::waitpid(reader, &status, 0) != reader) fail("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    errno = ECHILD;
    fail("reader process failed");
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"send_floor: small blocking loopback send()s per CPU-second of one thread"};
  std::vector<std::size_t> connection_counts{1, 1000};
  std::size_t sends = 500'000;
  std::size_t bytes = 46;
  std::string nodelay = "off";
  app.add_option("--connections", connection_counts, "connection counts K to measure")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{1}, std::size_t{19'000}))
      ->capture_default_str();
  app.add_option("--sends", sends, "send() calls per measurement")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000'000}))
      ->capture_default_str();
  app.add_option("--bytes", bytes, "bytes per send() (a tick frame is about 46)")
      ->check(CLI::Range(std::size_t{3}, std::size_t{125}))
      ->capture_default_str();
  app.add_option("--nodelay", nodelay,
                 "TCP_NODELAY on the sending sockets (websocketpp leaves it off, ws sets it)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.failure_message(CLI::FailureMessage::help);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  nlohmann::ordered_json report;
  report["frame_bytes"] = bytes;
  report["nodelay"] = nodelay == "on";
  report["results"] = nlohmann::ordered_json::array();
  try {
    for (const std::size_t k : connection_counts) {
      const Result r = measure(k, sends, bytes, nodelay == "on");
      nlohmann::ordered_json row;
      row["connections"] = r.connections;
      row["sends"] = r.sends;
      row["cpu_s"] = r.cpu_s;
      row["wall_s"] = r.wall_s;
      row["sends_per_cpu_s"] = r.cpu_s > 0 ? static_cast<double>(r.sends) / r.cpu_s : 0.0;
      row["sends_per_wall_s"] = r.wall_s > 0 ? static_cast<double>(r.sends) / r.wall_s : 0.0;
      report["results"].push_back(row);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "send_floor: %s\n", e.what());
    return 1;
  }
  std::printf("%s\n", report.dump().c_str());
  return 0;
}
