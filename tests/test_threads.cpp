// Threads and stale ids: application threads outside the io_context send to
// ids while clients come and go; a message for an old id never reaches a
// newer connection, and every attempt is counted.
#include "wsreg/websocketpp/server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <asio/steady_timer.hpp>
#include <catch2/catch.hpp>

#include "client_pool.hpp"
#include "policies.hpp"
#include "support.hpp"

using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

// "<kind>:<id>:<n>": every message the server sends names the connection it
// is meant for, so a client can tell when it got someone else's.
std::string addressed(const char* kind, ConnectionId id, std::uint64_t n = 0) {
  return std::string(kind) + ":" + std::to_string(id) + ":" + std::to_string(n);
}

ConnectionId target_of(const std::string& text) {
  const auto first = text.find(':');
  return first == std::string::npos ? 0 : std::stoull(text.substr(first + 1));
}

// Replies that fire later, as an application's slow work would: a thread
// that sends each queued reply once its time has come.
template <class Registry>
class DelayedReplies {
 public:
  explicit DelayedReplies(Registry& registry) : registry_(registry), thread_([this] { run(); }) {}
  ~DelayedReplies() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void later(std::chrono::milliseconds delay, ConnectionId id, std::string text) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      due_.emplace(std::chrono::steady_clock::now() + delay, std::make_pair(id, std::move(text)));
    }
    wake_.notify_all();
  }
  std::uint64_t sent() const { return sent_.load(); }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      if (due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto when = due_.begin()->first;
      if (std::chrono::steady_clock::now() < when) {
        wake_.wait_until(lock, when);
        continue;
      }
      auto [id, text] = std::move(due_.begin()->second);
      due_.erase(due_.begin());
      lock.unlock();
      registry_.send(id, Payload::text(std::move(text)));
      sent_.fetch_add(1);
      lock.lock();
    }
  }

  Registry& registry_;
  // This mutex synchronizes all access to due_ and stopping_.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<std::chrono::steady_clock::time_point, std::pair<ConnectionId, std::string>> due_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> sent_{0};
  std::thread thread_;
};

// `slots` websocketpp clients that each connect, live for a random time
// (exponential, mean `mean_life`), close or drop, and connect again, until
// stop(). Each learns its id from the server's "hello" and checks that every
// later message names that id. Everything runs on the churner's io thread.
class Churner {
 public:
  using Client = websocketpp::client<wsreg_test::ClientConfig>;

  Churner(std::string uri, std::size_t slots, std::chrono::milliseconds mean_life)
      : uri_(std::move(uri)), life_(1.0 / static_cast<double>(mean_life.count())), slots_(slots) {
    client_.init_asio(&io_);
    client_.clear_access_channels(websocketpp::log::alevel::all);
    client_.clear_error_channels(websocketpp::log::elevel::all);
    client_.set_message_handler([this](websocketpp::connection_hdl h, Client::message_ptr m) {
      Slot& slot = slots_[client_.get_con_from_hdl(h)->pool_index];
      const std::string& text = m->get_payload();
      const ConnectionId target = target_of(text);
      if (text.rfind("hello:", 0) == 0) {
        slot.id = target;
      } else if (target != slot.id) {
        misdelivered_.fetch_add(1);  // another connection's message
      }
      received_.fetch_add(1);
      if (text.rfind("hello:", 0) == 0 || text.rfind("reply:", 0) == 0) {
        slot.con->send(std::string("req"), websocketpp::frame::opcode::text);  // asks for a delayed reply
      }
    });
    auto ended = [this](websocketpp::connection_hdl h) {
      const std::size_t i = client_.get_con_from_hdl(h)->pool_index;
      slots_[i].timer.reset();
      if (!stopping_.load()) connect(i);
    };
    client_.set_close_handler(ended);
    client_.set_fail_handler(ended);
    client_.set_open_handler([this](websocketpp::connection_hdl h) {
      const std::size_t i = client_.get_con_from_hdl(h)->pool_index;
      opened_.fetch_add(1);
      if (stopping_.load()) {
        // A reconnect that was still resolving or connecting when stop()
        // closed the sockets: close it too, or the io thread never runs out
        // of work and stop() waits for ever.
        std::error_code ignored;
        client_.get_con_from_hdl(h)->get_raw_socket().close(ignored);
        return;
      }
      std::exponential_distribution<double> life(life_);
      auto& timer = slots_[i].timer;
      timer = std::make_unique<asio::steady_timer>(io_);
      timer->expires_after(std::chrono::milliseconds(static_cast<long>(life(rng_)) + 1));
      timer->async_wait([this, i, con = slots_[i].con](const std::error_code& ec) {
        if (ec || stopping_.load()) return;
        std::error_code ignored;
        if (rng_() % 2 == 0) {
          con->close(websocketpp::close::status::normal, "bye", ignored);
        } else {
          con->get_raw_socket().close(ignored);  // vanish without a close frame
        }
      });
    });
    asio::post(io_, [this] {
      for (std::size_t i = 0; i < slots_.size(); ++i) connect(i);
    });
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Churner() { stop(); }

  /// Stops reconnecting, closes everything and joins the io thread.
  void stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    asio::post(io_, [this] {
      for (auto& slot : slots_) {
        slot.timer.reset();
        std::error_code ignored;
        if (slot.con) slot.con->get_raw_socket().close(ignored);
      }
      work_.reset();
    });
    thread_.join();
  }

  std::uint64_t opened() const { return opened_.load(); }
  std::uint64_t received() const { return received_.load(); }
  std::uint64_t misdelivered() const { return misdelivered_.load(); }

 private:
  struct Slot {
    Client::connection_ptr con;
    ConnectionId id = 0;
    std::unique_ptr<asio::steady_timer> timer;
  };

  void connect(std::size_t i) {
    std::error_code ec;
    auto con = client_.get_connection(uri_, ec);
    if (ec) return;
    con->pool_index = i;
    slots_[i].con = con;
    slots_[i].id = 0;
    client_.connect(con);
  }

  std::string uri_;
  double life_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  Client client_;
  std::vector<Slot> slots_;  // io thread only
  std::mt19937_64 rng_{42};  // io thread only
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> misdelivered_{0};
  std::thread thread_;
};

template <class Policy>
void run_churn(std::chrono::milliseconds duration) {
  ConnectionRegistry<Policy> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;
  wsreg::wspp::Server<Policy> server(registry, options);

  // Every id ever issued, for the workers to aim at, stale ones included.
  std::mutex ids_mutex;  // This mutex synchronizes all access to ids.
  std::vector<ConnectionId> ids;
  std::atomic<std::uint64_t> requests{0};
  DelayedReplies<ConnectionRegistry<Policy>> replies(registry);

  server.set_open_handler([&](ConnectionId id) {
    // Hello first, then publish the id: a worker's send to it then happens
    // after the hello, so the client always learns its id first.
    registry.send(id, Payload::text(addressed("hello", id)));
    std::lock_guard<std::mutex> lock(ids_mutex);
    ids.push_back(id);
  });
  server.set_message_handler([&](ConnectionId id, Payload) {
    const std::uint64_t n = requests.fetch_add(1);
    thread_local std::mt19937 rng{std::random_device{}()};
    replies.later(std::chrono::milliseconds(rng() % 501), id, addressed("reply", id, n));
  });
  server.listen("127.0.0.1", 0);

  // Two application threads, outside the io_context, each sending to a
  // random known id (often one that has gone) at 100 Hz.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> worker_sends{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(w) + 7);
      auto next = std::chrono::steady_clock::now();
      while (!stop.load()) {
        ConnectionId id = 0;
        {
          std::lock_guard<std::mutex> lock(ids_mutex);
          if (!ids.empty()) id = ids[rng() % ids.size()];
        }
        if (id != 0) {
          registry.send(id, Payload::text(addressed("push", id, worker_sends.fetch_add(1))));
        }
        next += std::chrono::milliseconds(10);
        std::this_thread::sleep_until(next);  // the 100 Hz rate, not synchronisation
      }
    });
  }

  Churner churner("ws://127.0.0.1:" + std::to_string(server.port()) + "/", 200,
                  std::chrono::milliseconds(1000));
  std::this_thread::sleep_for(duration);  // the length of the run, not synchronisation
  stop = true;
  for (auto& w : workers) w.join();
  churner.stop();
  const bool drained = wait_until([&] { return registry.size() == 0; });
  // Every reply still queued goes out (to ids that are gone) before counting.
  wait_until([&] { return replies.sent() == requests.load(); });
  const std::uint64_t replies_sent = replies.sent();
  registry.flush();
  const auto stats = registry.stats();
  const auto server_stats = server.stats();

  INFO("connections opened " << churner.opened() << ", messages received " << churner.received()
                             << ", worker sends " << worker_sends.load() << ", replies "
                             << replies_sent << ", send_unknown " << stats.send_unknown
                             << ", dropped " << stats.messages_dropped);
  CHECK(drained);
  CHECK(churner.opened() > 200);  // the clients really came and went
  CHECK(churner.misdelivered() == 0);
  // A handler that threw would have closed its connection with 1011 and
  // been counted here (Server's guard).
  CHECK(server_stats.handler_exceptions == 0);
  // Every send made (hello, push, reply) is counted exactly once.
  const std::uint64_t attempts = stats.connections_added + worker_sends.load() + replies_sent;
  CHECK(stats.messages_sent + stats.messages_dropped + stats.send_unknown == attempts);
  CHECK(stats.send_unknown > 0);  // stale ids were tried, and counted
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("a message for an old id never reaches a newer connection while "
                        "clients churn and workers send",
                        "[websocketpp][threads]", server_policies) {
  run_churn<TestType>(std::chrono::seconds(4));
}

TEMPLATE_LIST_TEST_CASE("a message for an old id never reaches a newer connection over a long "
                        "churn",
                        "[.stress][websocketpp][threads]", server_policies) {
  run_churn<TestType>(std::chrono::seconds(30));
}
