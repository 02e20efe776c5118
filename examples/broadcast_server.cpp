// broadcast_server: sends every connection a tick {"seq":N,"sent_ns":T} at
// --rate Hz, and relays each text message a client sends to every
// connection, the sender included. With --overflow drop_newest a client that
// falls behind by more than max_buffered_bytes misses ticks instead of being
// closed, and is sent {"dropped":N} (its running total) once it has caught up.
// Usage: broadcast_server [--address 0.0.0.0] [--port 9002] [--threads 1]
//                         [--policy actor|mutex] [--rate 10] [--overflow close|drop_newest]
//                         [--tls-cert cert.pem --tls-key key.pem] [--deflate]
// --deflate: permessage-deflate (RFC 7692) for clients that offer it; each
// message of 256 bytes or more is compressed once for all of them (a tick is
// smaller and goes plain; relayed text may not be).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/example_options.hpp"
#include "common/periodic_thread.hpp"
#include "common/make_server.hpp"
#include "common/wait_for_signal.hpp"

namespace {

// CLOCK_REALTIME in nanoseconds: comparable across processes on this host,
// so the load client can compute latency from it.
std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <class Policy>
int run(examples::StopSignals& signals, const examples::ServerArguments& args, double rate_hz,
        wsreg::wspp::OverflowPolicy overflow) {
  wsreg::ConnectionRegistry<Policy> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = args.threads;
  options.max_message_size = args.max_message_size;
  options.overflow_policy = overflow;
  return examples::with_server<true>(registry, args, options, [&](auto& server) {
    // Under drop_newest: called on the connection's io thread once its queue
    // has drained after it lost ticks (not once per lost tick), so the notice
    // arrives right after the ticks it did get. A client can resynchronise.
    server.set_drop_handler([&registry](wsreg::ConnectionId id, std::uint64_t dropped_total) {
      nlohmann::ordered_json notice;
      notice["dropped"] = dropped_total;
      registry.send(id, wsreg::Payload::text(notice.dump()));
    });

    server.set_message_handler([&registry](wsreg::ConnectionId, wsreg::Payload message) {
      if (message.opcode() == wsreg::Opcode::text) registry.broadcast(std::move(message));
    });

    char rate[64];
    std::snprintf(rate, sizeof rate, ", rate %g Hz%s", rate_hz,
                  args.deflate ? ", permessage-deflate" : "");
    if (!examples::listen_and_report(server, args, "broadcast_server", rate)) return 1;

    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate_hz));
    examples::PeriodicThread ticker(period, [&registry](std::uint64_t seq) {
      nlohmann::ordered_json tick;
      tick["seq"] = seq;
      tick["sent_ns"] = realtime_ns();
      registry.broadcast(wsreg::Payload::text(tick.dump()));
    });

    signals.wait();
    ticker.stop();
    server.shutdown(std::chrono::seconds(5)).wait();
    const auto stats = registry.stats();
    std::printf("broadcast_server: stopped; %llu messages sent, %llu dropped\n",
                static_cast<unsigned long long>(stats.messages_sent),
                static_cast<unsigned long long>(stats.messages_dropped));
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wsreg broadcast server: ticks to every connection, relays text to all"};
  examples::ServerArguments args;
  args.add_to(app);
  args.add_message_size_to(app);
  args.add_deflate_to(app);
  std::string overflow = "close";
  app.add_option("--overflow", overflow,
                 "past max_buffered_bytes: close the client (1008) or drop_newest (drop ticks, "
                 "then send it {\"dropped\":N})")
      ->check(CLI::IsMember({"close", "drop_newest"}))
      ->capture_default_str();
  double rate_hz = 10;
  app.add_option("--rate", rate_hz, "ticks per second sent to every connection")
      ->check(CLI::Range(0.01, 100000.0))
      ->capture_default_str();
  int exit_code = 0;
  if (!examples::parse_arguments(app, argc, argv, exit_code)) return exit_code;
  examples::StopSignals signals;  // before any thread and before the port is printed
  return examples::with_policy(args.policy, [&](auto tag) {
    return run<typename decltype(tag)::type>(signals, args, rate_hz,
                                             overflow == "drop_newest"
                                                 ? wsreg::wspp::OverflowPolicy::drop_newest
                                                 : wsreg::wspp::OverflowPolicy::close);
  });
}
