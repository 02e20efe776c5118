// tests/emfile_server.cpp: an echo server that runs with a low file
// descriptor limit, for test_limits' EMFILE test, which starts it as a child
// process so that running out of descriptors cannot hurt the test itself.
//
// Usage: emfile_server FD_LIMIT
//
// Lowers its own RLIMIT_NOFILE soft limit to FD_LIMIT, serves WebSocket echo
// (through a MutexPolicy registry) on 127.0.0.1 on an ephemeral port, prints
// "port N" on stdout once listening, and on SIGTERM or SIGINT shuts down with
// a 1 s grace period and exits. The Server logs each accept back-off to
// stderr. Exit status: 0 after a clean shutdown, 1 if the shutdown did not
// complete in time, 2 for bad usage or a setup failure.
#include "wsreg/websocketpp/server.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <system_error>
#include <utility>

#include "wsreg/mutex_policy.hpp"

namespace {

int usage() {
  std::fputs("usage: emfile_server FD_LIMIT   (FD_LIMIT >= 16)\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return usage();
  char* end = nullptr;
  const unsigned long limit = std::strtoul(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || limit < 16) return usage();

  // Block the stop signals before any thread starts: every io thread
  // inherits the mask, so only sigwait() below ever receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (const int err = pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); err != 0) {
    std::fprintf(stderr, "emfile_server: pthread_sigmask: %s\n", std::strerror(err));
    return 2;
  }

  rlimit fds{};
  if (getrlimit(RLIMIT_NOFILE, &fds) != 0) {
    std::perror("emfile_server: getrlimit");
    return 2;
  }
  fds.rlim_cur = static_cast<rlim_t>(limit);
  if (fds.rlim_max != RLIM_INFINITY && fds.rlim_cur > fds.rlim_max) fds.rlim_cur = fds.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &fds) != 0) {
    std::perror("emfile_server: setrlimit");
    return 2;
  }

  // The registry outlives the server that refers to it.
  wsreg::ConnectionRegistry<wsreg::MutexPolicy> registry;
  wsreg::wspp::Server<wsreg::MutexPolicy> server(registry);
  server.set_message_handler([&registry](wsreg::ConnectionId id, wsreg::Payload message) {
    registry.send(id, std::move(message));
  });
  std::error_code ec;
  server.listen("127.0.0.1", 0, ec);
  if (ec) {
    std::fprintf(stderr, "emfile_server: listen: %s\n", ec.message().c_str());
    return 2;
  }
  std::printf("port %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  int signal_number = 0;
  if (const int err = sigwait(&stop_signals, &signal_number); err != 0) {
    std::fprintf(stderr, "emfile_server: sigwait: %s\n", std::strerror(err));
    return 2;
  }
  const bool done = server.shutdown(std::chrono::seconds(1)).wait_for(std::chrono::seconds(5)) ==
                    std::future_status::ready;
  if (!done) std::fputs("emfile_server: shutdown did not complete within 5 s\n", stderr);
  return done ? 0 : 1;
}
