// tests/client_pool.hpp: many websocketpp client connections on one io thread.
#ifndef WSREG_TESTS_CLIENT_POOL_HPP
#define WSREG_TESTS_CLIENT_POOL_HPP

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

namespace wsreg_test {

/// websocketpp client config whose connections carry their pool index.
struct ClientConfig : websocketpp::config::asio_client {
  using type = ClientConfig;
  struct connection_base {
    std::size_t pool_index = 0;
  };
};

/// What one client connection has seen. Read by the test thread only after
/// waiting on the pool's counters, so the fields are atomics.
struct ClientRecord {
  std::atomic<bool> open{false};
  std::atomic<bool> ended{false};
  std::atomic<std::size_t> messages{0};
  std::atomic<int> close_code{0};  // the code the server sent, 0 if none
  // This mutex synchronizes all access to last_payload and last_opcode.
  std::mutex mutex;
  std::string last_payload;
  int last_opcode = 0;
  /// Every payload received, in order, when the pool keeps them
  /// (BasicClientPool::keep_payloads); guarded by `mutex`.
  std::vector<std::string> payloads;
};

/// N client connections to one server, all on one io thread owned by the
/// pool. Every operation is posted to that thread, so the test thread never
/// touches websocketpp directly. `Config` is a websocketpp client config
/// whose connection_base has `pool_index` (ClientConfig; tls_support.hpp
/// has a TLS one). Thread safety: the public members are thread-safe;
/// handlers run on the pool's io thread.
template <class Config>
class BasicClientPool {
 public:
  using Client = websocketpp::client<Config>;

  /// `configure`, if given, is called with the client endpoint once it is
  /// initialised (a TLS pool sets its TLS init handler there).
  explicit BasicClientPool(const std::function<void(Client&)>& configure = {})
      : work_(io_.get_executor()) {
    client_.init_asio(&io_);
    if (configure) configure(client_);
    client_.clear_access_channels(websocketpp::log::alevel::all);
    client_.clear_error_channels(websocketpp::log::elevel::all);
    client_.set_open_handler([this](websocketpp::connection_hdl h) {
      record(h).open = true;
      opened_.fetch_add(1);
    });
    client_.set_message_handler([this](websocketpp::connection_hdl h,
                                       typename Client::message_ptr m) {
      ClientRecord& r = record(h);
      {
        std::lock_guard<std::mutex> lock(r.mutex);
        r.last_payload = m->get_payload();
        r.last_opcode = m->get_opcode();
        if (keep_payloads_) r.payloads.push_back(m->get_payload());
      }
      r.messages.fetch_add(1);
      messages_.fetch_add(1);
    });
    auto ended = [this](websocketpp::connection_hdl h) {
      ClientRecord& r = record(h);
      auto con = client_.get_con_from_hdl(h);
      r.close_code = con->get_remote_close_code();
      if (!r.ended.exchange(true)) ended_.fetch_add(1);
    };
    client_.set_close_handler(ended);
    client_.set_fail_handler(ended);
    thread_ = std::thread([this] { io_.run(); });
  }

  /// Stops the io thread; connections still open are dropped with it.
  ~BasicClientPool() {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  /// Makes every record keep all its payloads (ClientRecord::payloads).
  /// Call before connect().
  void keep_payloads() { keep_payloads_ = true; }

  /// Opens `n` connections to `uri`; returns at once. Call once per pool.
  void connect(const std::string& uri, std::size_t n) {
    const std::size_t first = records_.size();
    for (std::size_t i = 0; i < n; ++i) records_.push_back(std::make_unique<ClientRecord>());
    connections_.resize(records_.size());
    asio::post(io_, [this, uri, first, n] {
      for (std::size_t i = first; i < first + n; ++i) {
        std::error_code ec;
        auto con = client_.get_connection(uri, ec);
        if (ec) {
          records_[i]->ended = true;
          ended_.fetch_add(1);
          continue;
        }
        con->pool_index = i;
        connections_[i] = con;
        client_.connect(con);
      }
    });
  }

  /// Sends a message on connection `i`.
  void send(std::size_t i, std::string payload, websocketpp::frame::opcode::value op) {
    asio::post(io_, [this, i, payload = std::move(payload), op] {
      connections_[i]->send(payload, op);  // returns an error_code; a test checks delivery
    });
  }

  /// Closes connection `i` with a close frame (1000).
  void close_cleanly(std::size_t i) {
    asio::post(io_, [this, i] {
      std::error_code ignored;
      connections_[i]->close(websocketpp::close::status::normal, "bye", ignored);
    });
  }

  /// Drops connection `i`'s TCP socket without a close frame, as a client
  /// whose process died or whose network went away would.
  void drop(std::size_t i) {
    asio::post(io_, [this, i] {
      std::error_code ignored;
      connections_[i]->get_raw_socket().close(ignored);
    });
  }

  std::size_t opened() const { return opened_.load(); }
  std::size_t ended() const { return ended_.load(); }
  std::size_t messages() const { return messages_.load(); }
  std::size_t size() const { return records_.size(); }
  ClientRecord& at(std::size_t i) { return *records_[i]; }

 private:
  ClientRecord& record(websocketpp::connection_hdl h) {
    return *records_[client_.get_con_from_hdl(h)->pool_index];
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  Client client_;
  // records_ and connections_ grow only in connect(), before the posted
  // work that uses the new entries runs.
  std::vector<std::unique_ptr<ClientRecord>> records_;
  std::vector<typename Client::connection_ptr> connections_;
  std::atomic<std::size_t> opened_{0};
  std::atomic<std::size_t> ended_{0};
  std::atomic<std::size_t> messages_{0};
  bool keep_payloads_ = false;  // set before the io thread reads it (connect)
  std::thread thread_;
};

/// The plain ws:// pool most tests use.
using ClientPool = BasicClientPool<ClientConfig>;

}  // namespace wsreg_test

#endif
