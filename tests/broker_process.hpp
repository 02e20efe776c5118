// tests/broker_process.hpp: a redis-server or nats-server of the test's own, on an ephemeral port.
#ifndef WSREG_TESTS_BROKER_PROCESS_HPP
#define WSREG_TESTS_BROKER_PROCESS_HPP

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"

// The brokers' programs: where CMake found them, else where Debian puts them.
#ifndef WSREG_REDIS_SERVER
#define WSREG_REDIS_SERVER "/usr/bin/redis-server"
#endif
#ifndef WSREG_NATS_SERVER
#define WSREG_NATS_SERVER "/usr/sbin/nats-server"
#endif

namespace wsreg_test {

/// A free TCP port on 127.0.0.1, as the kernel picks one for a bind to port
/// 0 (free when returned; a broker then binds it with SO_REUSEADDR).
inline std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  std::uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
inline bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

/// A broker process (redis-server or nats-server) that the test starts on
/// an ephemeral loopback port, never a system service, and that is killed
/// with the object. kill() and start() again on the same port model a
/// broker crash and restart. Not thread-safe.
class BrokerProcess {
 public:
  enum class Kind { redis, nats };

  explicit BrokerProcess(Kind kind) : kind_(kind), port_(free_loopback_port()) { ready_ = start(); }

  /// True when the first start() succeeded.
  bool ready() const { return ready_; }

  /// Starts the broker on port() (again, after kill()); true once it accepts
  /// connections, within 10 s.
  bool start() {
    std::vector<std::string> argv;
    if (kind_ == Kind::redis) {
      argv = {WSREG_REDIS_SERVER, "--port", std::to_string(port_), "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "no", "--loglevel", "warning", "--dir", "/tmp"};
    } else {
      argv = {WSREG_NATS_SERVER, "-a", "127.0.0.1", "-p", std::to_string(port_)};
    }
    const int quiet = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    process_ = std::make_unique<ChildProcess>(argv, quiet);
    if (quiet >= 0) ::close(quiet);
    if (!process_->started()) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (accepts_connections(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a port, not a sync
    }
    return false;
  }

  /// SIGKILLs the broker and waits until it has exited.
  void kill() {
    if (process_) {
      ::kill(process_->pid(), SIGKILL);
      process_->wait(std::chrono::seconds(10));
      process_.reset();
    }
  }

  /// SIGSTOPs (true) or SIGCONTs (false) the broker: a stalled broker.
  void pause(bool stop) {
    if (process_) ::kill(process_->pid(), stop ? SIGSTOP : SIGCONT);
  }

  std::uint16_t port() const { return port_; }

  /// The URL a backplane is given: redis://127.0.0.1:P or nats://127.0.0.1:P.
  std::string url() const {
    return std::string(kind_ == Kind::redis ? "redis" : "nats") + "://127.0.0.1:" +
           std::to_string(port_);
  }

 private:
  Kind kind_;
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
  bool ready_ = false;
};

}  // namespace wsreg_test

#endif  // WSREG_TESTS_BROKER_PROCESS_HPP
