// wsreg_load_client: opens N WebSocket connections to a broadcast server,
// counts the ticks {"seq":N,"sent_ns":T} they receive during a measurement
// window, and reports delivered and lost ticks, latency and its own CPU time.
// Single-threaded: one epoll loop over nonblocking sockets (see load_run.hpp);
// wss:// URLs run TLS (OpenSSL) over them, without verifying the certificate.
//
// Usage: wsreg_load_client [--url ws://127.0.0.1:9002/ | wss://...]... [--connections 1000]
//          [--duration 10] [--connect-timeout 30] [--warmup 0] [--source-addresses 1]
//          [--max-pending 256] [--server-pid PID]... [--watch-pid PID]... [--json]
// Several --url: connection i goes to URL i mod K (the nodes of a cluster).
// Exit: 0 when the run completed (loss is for the caller to judge), 1 when
// fewer connections than requested were open at window start, 2 on usage errors.
#include <csignal>
#include <cstdio>
#include <exception>
#include <vector>

#include <CLI/CLI.hpp>

#include "load_run.hpp"
#include "options.hpp"
#include "process.hpp"
#include "report.hpp"
#include "ws_url.hpp"

int main(int argc, char** argv) {
  namespace lc = load_client;

  CLI::App app{"wsreg_load_client: opens N WebSocket connections and measures tick delivery"};
  lc::Options options;
  options.add_to(app);
  app.failure_message(CLI::FailureMessage::help);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help exits 0; any usage error exits 2
  }

  std::vector<lc::WsUrl> urls(options.urls.size());
  bool any_tls = false;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    if (const std::string error = lc::parse_ws_url(options.urls[i], urls[i]); !error.empty()) {
      std::fprintf(stderr, "wsreg_load_client: %s\n", error.c_str());  // checked by CLI11 already
      return 2;
    }
    any_tls = any_tls || urls[i].tls;
  }
  if (urls.empty()) {
    std::fprintf(stderr, "wsreg_load_client: no --url\n");
    return 2;
  }

  // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a peer's reset
  // must fail that write, not kill the process.
  if (any_tls) std::signal(SIGPIPE, SIG_IGN);

  const std::uint64_t fd_limit = lc::raise_open_file_limit();
  if (options.connections + 16 > fd_limit) {
    std::fprintf(stderr,
                 "wsreg_load_client: warning: %zu connections but only %llu file descriptors "
                 "(RLIMIT_NOFILE); expect socket_error failures\n",
                 options.connections, static_cast<unsigned long long>(fd_limit));
  }

  lc::LoadReport report;
  try {
    lc::LoadRun run(options, urls);
    report = run.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wsreg_load_client: %s\n", e.what());
    return 1;
  }

  if (options.json) {
    std::printf("%s\n", lc::to_json_line(report).c_str());
  } else {
    lc::print_human(report, stdout);
  }
  return report.connections_open < report.connections_requested ? 1 : 0;
}
