// The handshake handler (Server::set_handshake_handler) and the limits the
// Server checks before it (allowed_origins, max_connections_per_address,
// max_connections counted from the TCP accept), over real sockets.
#include "wsreg/websocketpp/handshake.hpp"
#include "wsreg/websocketpp/server.hpp"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "policies.hpp"
#include "raw_client.hpp"
#include "support.hpp"

using std::chrono::milliseconds;
using std::chrono::seconds;
using wsreg::ConnectionId;
using wsreg::ConnectionRegistry;
using wsreg::Payload;
using wsreg_test::RawClient;
using wsreg_test::server_policies;
using wsreg_test::wait_until;

namespace {

// The handshake request a client sends, with `extra` header lines
// ("Name: value\r\n" each) and the request target `target`.
std::string request_with(const std::string& target, const std::string& extra = "") {
  return "GET " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         extra + "\r\n";
}

// What one handshake got: the response header and, for a refusal, the body.
struct Answer {
  std::string head;
  std::string body;
  bool switched() const { return head.rfind("HTTP/1.1 101", 0) == 0; }
  bool status_is(int code) const { return head.rfind("HTTP/1.1 " + std::to_string(code), 0) == 0; }
};

// Connects (from `source` if given), sends `request`, reads the response
// header, and for anything but a 101 the body up to the server's hang-up.
Answer handshake(RawClient& client, std::uint16_t port, const std::string& request,
                 const char* source = nullptr) {
  Answer a;
  if (!client.connect_tcp(port, 0, source) || !client.write_all(request)) return a;
  a.head = client.read_http_response(seconds(10));
  if (!a.switched()) a.body = client.read_to_eof(seconds(10));
  return a;
}

// What the handshake handler saw, copied out for the main thread.
struct Seen {
  std::string method, path, nick, custom, session, origin, address;
  std::vector<std::string> subprotocols;
  std::uint16_t port = 0;
  bool no_missing = false;  // query("absent") and header("X-Absent") were nullopt
};

// The per-connection Data of these tests.
struct User {
  std::string nick;
  int level = 0;
};

}  // namespace

TEST_CASE("HandshakeRequest decodes the query and splits cookies and subprotocols",
          "[websocketpp][handshake]") {
  websocketpp::http::parser::request request;
  request.set_method("GET");
  request.set_uri("/room/a%2Fb?nick=ann%20b+c&flag&empty=&nick=second&bad=%zz%4#frag");
  request.replace_header("Cookie", "theme=dark; session=\"abc 1\" ;x=");
  request.replace_header("Sec-WebSocket-Protocol", " chat.v2 ,chat.v1,, ");
  const wsreg::wspp::HandshakeRequest r(request, asio::ip::make_address("127.0.0.1"), 4242);
  CHECK(r.method() == "GET");
  CHECK(r.path() == "/room/a%2Fb");
  CHECK(r.query("nick") == std::optional<std::string>("ann b c"));
  CHECK(r.query("flag") == std::optional<std::string>(""));
  CHECK(r.query("empty") == std::optional<std::string>(""));
  CHECK(r.query("bad") == std::optional<std::string>("%zz%4"));
  CHECK_FALSE(r.query("frag").has_value());
  CHECK_FALSE(r.query("missing").has_value());
  CHECK(r.header("cookie").has_value());
  CHECK(r.cookie("session") == std::optional<std::string_view>("abc 1"));
  CHECK(r.cookie("theme") == std::optional<std::string_view>("dark"));
  CHECK(r.cookie("x") == std::optional<std::string_view>(""));
  CHECK_FALSE(r.cookie("them").has_value());
  CHECK_FALSE(r.origin().has_value());
  CHECK(r.subprotocols() == std::vector<std::string>{"chat.v2", "chat.v1"});
  CHECK(r.remote_port() == 4242);
}

TEMPLATE_LIST_TEST_CASE("a connection the handshake handler accepts is registered with the Data "
                        "it chose, and the handler saw the whole request",
                        "[websocketpp][integration][handshake]", server_policies) {
  ConnectionRegistry<TestType, User> registry;
  wsreg::wspp::Server<TestType, User> server(registry);
  std::mutex mutex;
  // This mutex synchronizes all access to seen and opened_with.
  Seen seen;
  std::optional<User> opened_with;
  std::atomic<int> opens{0};
  std::atomic<ConnectionId> opened_id{wsreg::no_connection};
  server.set_handshake_handler([&](const wsreg::wspp::HandshakeRequest& r) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.method = std::string(r.method());
    seen.path = std::string(r.path());
    seen.nick = r.query("nick").value_or("");
    seen.custom = std::string(r.header("x-custom-header").value_or(""));
    seen.session = std::string(r.cookie("session").value_or(""));
    seen.origin = std::string(r.origin().value_or(""));
    seen.subprotocols = r.subprotocols();
    seen.address = r.remote_address().to_string();
    seen.port = r.remote_port();
    seen.no_missing = !r.query("absent") && !r.header("X-Absent");
    return wsreg::wspp::HandshakeDecision<User>::accept(User{seen.nick, 7});
  });
  server.set_open_handler([&](ConnectionId id) {
    std::lock_guard<std::mutex> lock(mutex);
    opened_with = registry.data(id);  // the open handler reads what the hook decided
    opened_id.store(id);
    opens.fetch_add(1);
  });
  server.listen("127.0.0.1", 0);

  RawClient client;
  const Answer a = handshake(client, server.port(),
                             request_with("/chat?nick=ann%C3%A9+x",
                                          "X-Custom-Header: yes\r\nCookie: a=1; session=s3cr3t\r\n"
                                          "Origin: https://chat.example\r\n"
                                          "Sec-WebSocket-Protocol: p1, p2\r\n"));
  INFO(a.head);
  REQUIRE(a.switched());
  CHECK(a.head.find("Sec-WebSocket-Protocol") == std::string::npos);  // none chosen
  REQUIRE(wait_until([&] { return opens.load() == 1; }));
  REQUIRE(registry.size() == 1);
  const std::optional<User> user = registry.data(opened_id.load());
  REQUIRE(user.has_value());
  CHECK(user->nick == "ann\xc3\xa9 x");
  CHECK(user->level == 7);
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(opened_with.has_value());
  CHECK(opened_with->nick == "ann\xc3\xa9 x");
  CHECK(seen.method == "GET");
  CHECK(seen.path == "/chat");
  CHECK(seen.custom == "yes");
  CHECK(seen.session == "s3cr3t");
  CHECK(seen.origin == "https://chat.example");
  CHECK(seen.subprotocols == std::vector<std::string>{"p1", "p2"});
  CHECK(seen.address == "127.0.0.1");
  CHECK(seen.port == client.local_port());
  CHECK(seen.no_missing);
}

TEMPLATE_LIST_TEST_CASE("a rejected handshake gets its status, headers and body, and nothing is "
                        "registered",
                        "[websocketpp][integration][handshake]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  std::atomic<int> opens{0};
  std::atomic<int> closes{0};
  using Decision = wsreg::wspp::HandshakeDecision<std::monostate>;
  server.set_handshake_handler([](const wsreg::wspp::HandshakeRequest& r) {
    const int status = std::stoi(r.query("status").value_or("0"));
    if (status == 401) {
      return Decision::reject(401, "token required\n")
          .with_header("WWW-Authenticate", "Bearer realm=\"test\"");
    }
    if (status != 0) return Decision::reject(status, "refused with " + std::to_string(status));
    return Decision::accept();
  });
  server.set_open_handler([&](ConnectionId) { opens.fetch_add(1); });
  server.set_close_handler([&](ConnectionId) { closes.fetch_add(1); });
  server.listen("127.0.0.1", 0);

  RawClient c401;
  const Answer a401 = handshake(c401, server.port(), request_with("/?status=401"));
  INFO(a401.head);
  CHECK(a401.status_is(401));
  CHECK_THAT(a401.head, Catch::Contains("WWW-Authenticate: Bearer realm=\"test\"\r\n"));
  CHECK_THAT(a401.head, Catch::Contains("Content-Type: text/plain; charset=utf-8\r\n"));
  CHECK(a401.body == "token required\n");
  for (int status : {403, 429}) {
    RawClient c;
    const Answer a = handshake(c, server.port(), request_with("/?status=" + std::to_string(status)));
    INFO(a.head);
    CHECK(a.status_is(status));
    CHECK(a.body == "refused with " + std::to_string(status));
  }
  CHECK(wait_until([&] { return server.stats().handshakes_rejected == 3; }));
  CHECK(registry.size() == 0);
  CHECK(registry.stats().connections_added == 0);
  CHECK(opens.load() == 0);
  CHECK(closes.load() == 0);
  CHECK(server.stats().handshakes_failed == 0);
  CHECK(server.stats().handshake_handler_errors == 0);

  RawClient ok;  // an accepted one afterwards
  CHECK(handshake(ok, server.port(), request_with("/")).switched());
  CHECK(wait_until([&] { return registry.size() == 1 && opens.load() == 1; }));
}

TEMPLATE_LIST_TEST_CASE("nothing is registered and no broadcast reaches a connection before its "
                        "handshake handler accepts it",
                        "[websocketpp][integration][handshake]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.threads = 2;  // one io thread waits in the handler; the other serves
  wsreg::wspp::Server<TestType> server(registry, options);

  // The gate the handler waits at for "/slow", with a safety deadline.
  std::mutex mutex;
  std::condition_variable changed;
  bool entered = false;  // guarded by mutex
  bool released = false;  // guarded by mutex
  server.set_handshake_handler([&](const wsreg::wspp::HandshakeRequest& r) {
    if (r.path() == "/slow") {
      std::unique_lock<std::mutex> lock(mutex);
      entered = true;
      changed.notify_all();
      changed.wait_for(lock, seconds(30), [&] { return released; });
    }
    return wsreg::wspp::HandshakeDecision<std::monostate>::accept();
  });
  server.listen("127.0.0.1", 0);

  RawClient early;
  REQUIRE(early.open(server.port()));
  REQUIRE(wait_until([&] { return registry.size() == 1; }));

  RawClient slow;
  REQUIRE(slow.connect_tcp(server.port()));
  REQUIRE(slow.write_all(request_with("/slow")));
  {
    std::unique_lock<std::mutex> lock(mutex);
    REQUIRE(changed.wait_for(lock, seconds(10), [&] { return entered; }));
  }
  // While the handler holds the slow one, broadcasts go to the open one only.
  constexpr int before = 20;
  for (int i = 0; i < before; ++i) registry.broadcast(Payload::text("before " + std::to_string(i)));
  for (int i = 0; i < before; ++i) CHECK(early.read_message() == "before " + std::to_string(i));
  CHECK(registry.size() == 1);
  CHECK(registry.stats().connections_added == 1);
  {
    std::lock_guard<std::mutex> lock(mutex);
    released = true;
    changed.notify_all();
  }
  REQUIRE(slow.read_http_response().rfind("HTTP/1.1 101", 0) == 0);
  REQUIRE(wait_until([&] { return registry.size() == 2; }));
  registry.broadcast(Payload::text("after"));
  // Its first message is the one sent after it was registered: none of the
  // earlier broadcasts was queued for it.
  CHECK(slow.read_message() == "after");
  CHECK(early.read_message() == "after");
}

TEMPLATE_LIST_TEST_CASE("a handshake handler that throws answers 500, is counted, and affects "
                        "that connection only",
                        "[websocketpp][integration][handshake]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.set_handshake_handler([](const wsreg::wspp::HandshakeRequest& r) {
    if (r.query("boom")) throw std::runtime_error("boom");
    return wsreg::wspp::HandshakeDecision<std::monostate>::accept();
  });
  server.set_message_handler(
      [&](ConnectionId id, Payload message) { registry.send(id, std::move(message)); });
  server.listen("127.0.0.1", 0);

  RawClient before;
  REQUIRE(before.open(server.port()));
  for (int i = 0; i < 3; ++i) {
    RawClient failing;
    const Answer a = handshake(failing, server.port(), request_with("/?boom=1"));
    INFO(a.head);
    CHECK(a.status_is(500));
  }
  CHECK(wait_until([&] { return server.stats().handshake_handler_errors == 3; }));
  CHECK(server.stats().handshakes_rejected == 3);
  CHECK(server.stats().internal_errors == 0);
  CHECK(server.stats().handler_exceptions == 0);
  CHECK_THAT(wsreg::wspp::prometheus_text(server.stats()),
             Catch::Contains("wsreg_handshake_handler_errors_total 3\n"));
  // The open one still echoes, and a new one opens.
  REQUIRE(before.write_all(RawClient::frame(0x1, "still here")));
  CHECK(before.read_message() == "still here");
  RawClient after;
  CHECK(after.open(server.port()));
  CHECK(wait_until([&] { return registry.size() == 2; }));
}

TEMPLATE_LIST_TEST_CASE("a decision header with CR, LF or NUL in its value, or a name that is "
                        "not a token, answers 500 and injects nothing",
                        "[websocketpp][integration][handshake]", server_policies) {
  using Decision = wsreg::wspp::HandshakeDecision<std::monostate>;
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.set_handshake_handler([](const wsreg::wspp::HandshakeRequest& r) {
    const std::string value = r.query("v").value_or("");
    if (r.query("accept")) return Decision::accept().with_header("X-Note", value);
    return Decision::reject(401, "no\n").with_header(r.query("name") ? "Bad Name" : "X-Note", value);
  });
  server.listen("127.0.0.1", 0);

  // The value arrives decoded from the query: %0D%0A is CR LF, %00 NUL.
  const char* const targets[] = {"/?accept=1&v=a%0D%0ASet-Cookie:%20evil=1",
                                 "/?v=a%0D%0ASet-Cookie:%20evil=1", "/?v=a%0Ab", "/?v=a%00b",
                                 "/?name=1&v=fine"};
  for (const char* target : targets) {
    CAPTURE(target);
    RawClient client;
    const Answer a = handshake(client, server.port(), request_with(target));
    INFO(a.head);
    CHECK(a.status_is(500));
    CHECK(a.head.find("evil") == std::string::npos);
  }
  CHECK(wait_until([&] { return server.stats().handshake_handler_errors == 5; }));
  CHECK(registry.size() == 0);
  RawClient fine;  // a clean value goes through
  const Answer ok = handshake(fine, server.port(), request_with("/?accept=1&v=plain"));
  CHECK(ok.switched());
  CHECK(ok.head.find("X-Note: plain") != std::string::npos);
}

TEMPLATE_LIST_TEST_CASE("the subprotocol the handler chooses is answered in the 101, and one the "
                        "client did not offer answers 500",
                        "[websocketpp][integration][handshake]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  using Decision = wsreg::wspp::HandshakeDecision<std::monostate>;
  server.set_handshake_handler([](const wsreg::wspp::HandshakeRequest& r) {
    if (r.query("cheat")) return Decision::accept_with_subprotocol("not.offered");
    for (const auto& p : r.subprotocols()) {
      if (p == "chat.v1") return Decision::accept_with_subprotocol(p);
    }
    return Decision::reject(400, "no supported subprotocol\n");
  });
  server.listen("127.0.0.1", 0);

  RawClient chosen;
  const Answer a =
      handshake(chosen, server.port(), request_with("/", "Sec-WebSocket-Protocol: chat.v2, chat.v1\r\n"));
  INFO(a.head);
  CHECK(a.switched());
  CHECK_THAT(a.head, Catch::Contains("Sec-WebSocket-Protocol: chat.v1\r\n"));

  RawClient none;
  const Answer b = handshake(none, server.port(), request_with("/", "Sec-WebSocket-Protocol: x\r\n"));
  CHECK(b.status_is(400));
  CHECK(b.body == "no supported subprotocol\n");

  RawClient cheat;
  const Answer c =
      handshake(cheat, server.port(), request_with("/?cheat=1", "Sec-WebSocket-Protocol: chat.v1\r\n"));
  CHECK(c.status_is(500));
  CHECK(wait_until([&] { return server.stats().handshake_handler_errors == 1; }));
  CHECK(wait_until([&] { return registry.size() == 1; }));
}

TEMPLATE_LIST_TEST_CASE("an Origin not in allowed_origins gets 403 before the handshake handler "
                        "runs",
                        "[websocketpp][integration][handshake]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.allowed_origins = {"https://good.example", "http://localhost:8080"};
  wsreg::wspp::Server<TestType> server(registry, options);
  std::atomic<int> asked{0};
  server.set_handshake_handler([&](const wsreg::wspp::HandshakeRequest&) {
    asked.fetch_add(1);
    return wsreg::wspp::HandshakeDecision<std::monostate>::accept();
  });
  server.listen("127.0.0.1", 0);

  RawClient evil;
  const Answer a = handshake(evil, server.port(), request_with("/", "Origin: https://evil.example\r\n"));
  INFO(a.head);
  CHECK(a.status_is(403));
  CHECK(a.body == "origin not allowed\n");
  RawClient lookalike;  // a prefix is not a match
  CHECK(handshake(lookalike, server.port(), request_with("/", "Origin: https://good.example.evil\r\n"))
            .status_is(403));
  CHECK(asked.load() == 0);

  RawClient good;  // scheme and host compare case-insensitively
  CHECK(handshake(good, server.port(), request_with("/", "Origin: HTTPS://Good.Example\r\n")).switched());
  RawClient native;  // no Origin: not a browser, allowed
  CHECK(handshake(native, server.port(), request_with("/")).switched());
  CHECK(wait_until([&] { return registry.size() == 2; }));
  CHECK(asked.load() == 2);
  CHECK(server.stats().handshakes_rejected == 2);
}

TEMPLATE_LIST_TEST_CASE("max_connections_per_address refuses one address past its limit with "
                        "429 and not another, counting sockets from their accept",
                        "[websocketpp][integration][handshake][limits]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.max_connections_per_address = 2;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  RawClient first;
  REQUIRE(first.open(server.port()));
  RawClient silent;  // connects and sends nothing: holds a slot all the same
  REQUIRE(silent.connect_tcp(server.port()));
  REQUIRE(wait_until([&] { return server.stats().accepts == 2; }));

  RawClient third;
  const Answer a = handshake(third, server.port(), request_with("/"));
  INFO(a.head);
  CHECK(a.status_is(429));
  CHECK(a.body == "too many connections from your address\n");

  RawClient other;  // another address has its own count
  const Answer b = handshake(other, server.port(), request_with("/"), "127.0.0.2");
  INFO(b.head);
  CHECK(b.switched());
  CHECK(wait_until([&] { return registry.size() == 2; }));

  // The silent one leaves; its slot admits the next client from 127.0.0.1.
  silent.close_now();
  REQUIRE(wait_until([&] { return server.stats().handshakes_failed == 1; }));
  RawClient next;
  CHECK(handshake(next, server.port(), request_with("/")).switched());
  CHECK(wait_until([&] { return registry.size() == 3; }));
  CHECK(server.stats().handshakes_rejected == 1);
}

TEMPLATE_LIST_TEST_CASE("max_connections counts from the TCP accept: sockets that never send a "
                        "request take slots",
                        "[websocketpp][integration][handshake][limits]", server_policies) {
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::ServerOptions options;
  options.max_connections = 3;
  wsreg::wspp::Server<TestType> server(registry, options);
  server.listen("127.0.0.1", 0);

  RawClient opened;
  REQUIRE(opened.open(server.port()));
  RawClient silent[2];
  for (auto& s : silent) REQUIRE(s.connect_tcp(server.port()));
  REQUIRE(wait_until([&] { return server.stats().accepts == 3; }));

  RawClient refused;
  const Answer a = handshake(refused, server.port(), request_with("/"));
  INFO(a.head);
  CHECK(a.status_is(503));
  CHECK(a.body == "server full\n");
  CHECK(registry.size() == 1);

  for (auto& s : silent) s.close_now();
  REQUIRE(wait_until([&] { return server.stats().handshakes_failed == 2; }));
  RawClient next[2];
  for (auto& c : next) CHECK(c.open(server.port()));
  CHECK(wait_until([&] { return registry.size() == 3; }));
  RawClient fourth;  // full again
  CHECK(handshake(fourth, server.port(), request_with("/")).status_is(503));
  CHECK(server.stats().handshakes_rejected == 2);
}

TEMPLATE_LIST_TEST_CASE("10,000 rejected handshakes leave no file descriptor behind and do not "
                        "grow memory",
                        "[websocketpp][integration][handshake][leak]", server_policies) {
  ConnectionRegistry<TestType, User> registry;
  wsreg::wspp::Server<TestType, User> server(registry);
  using Decision = wsreg::wspp::HandshakeDecision<User>;
  server.set_handshake_handler([](const wsreg::wspp::HandshakeRequest& r) {
    // Builds a Data, then refuses: the Data must not be kept.
    Decision d = Decision::accept(User{std::string(r.header("Authorization").value_or("")), 1});
    static_cast<void>(d);
    return Decision::reject(401, "no\n").with_header("WWW-Authenticate", "Bearer");
  });
  server.listen("127.0.0.1", 0);
  const std::string request = request_with("/?token=x", "Authorization: Bearer wrong\r\n");

  const auto reject_n = [&](int n) {
    int refused = 0;
    for (int i = 0; i < n; ++i) {
      RawClient c;
      refused += handshake(c, server.port(), request).status_is(401) ? 1 : 0;
    }
    return refused;
  };
  const pid_t self = ::getpid();
  const std::size_t baseline = wsreg_test::open_fds(self);  // listening, before any client
  REQUIRE(reject_n(500) == 500);  // warms up the allocator's pools
  REQUIRE(wait_until([&] { return server.stats().handshakes_rejected == 500; }));
  REQUIRE(wait_until([&] { return wsreg_test::open_fds(self) <= baseline; }));
  const std::uint64_t warm = 500;
  const long rss_before = wsreg_test::rss_kib();

  constexpr int attempts = 10000;
  CHECK(reject_n(attempts) == attempts);
  CHECK(wait_until([&] { return server.stats().handshakes_rejected == warm + attempts; }));
  const bool fds_back = wait_until([&] { return wsreg_test::open_fds(self) <= baseline; });
  const long rss_after = wsreg_test::rss_kib();
  WARN(wsreg_test::policy_name<TestType>()
       << ": fds " << baseline << " before, " << wsreg_test::open_fds(self) << " after; RSS "
       << rss_before << " KiB before, " << rss_after << " KiB after " << attempts
       << " rejections");
  CHECK(fds_back);
  CHECK(registry.size() == 0);
  CHECK(registry.stats().connections_added == 0);
#ifndef WSREG_SANITIZED
  CHECK(rss_after - rss_before < 2048);
#endif
}

#ifndef WSREG_SANITIZED
TEMPLATE_LIST_TEST_CASE("an open connection does not keep its upgrade request: a 12 KB Cookie "
                        "costs nothing once the WebSocket is open",
                        "[websocketpp][integration][handshake][memory]", server_policies) {
  // websocketpp keeps the parsed request (a map of its headers) and the
  // response's headers inside the connection; the Server releases both at
  // the open. The sanitizers' allocators do not report to mallinfo2.
  ConnectionRegistry<TestType> registry;
  wsreg::wspp::Server<TestType> server(registry);
  server.listen("127.0.0.1", 0);
  const std::string request =
      request_with("/", "Cookie: session=" + std::string(12000, 'c') + "\r\n");
  const auto heap_bytes = [] { return static_cast<long long>(::mallinfo2().uordblks); };

  constexpr std::size_t warm = 20;
  constexpr std::size_t count = 200;
  std::vector<RawClient> clients(warm + count);
  for (std::size_t i = 0; i < warm; ++i) {  // the allocator's and the server's first growth
    REQUIRE(handshake(clients[i], server.port(), request).switched());
  }
  REQUIRE(wait_until([&] { return registry.size() == warm; }));
  const long long before = heap_bytes();
  for (std::size_t i = warm; i < warm + count; ++i) {
    REQUIRE(handshake(clients[i], server.port(), request).switched());
  }
  REQUIRE(wait_until([&] { return registry.size() == warm + count; }));
  const long long per_connection = (heap_bytes() - before) / static_cast<long long>(count);
  INFO(wsreg_test::policy_name<TestType>() << ": " << per_connection
                                           << " bytes of heap per open connection");
  // Kept, the request alone would be more than 12,000 bytes each, on top of
  // the ~7 KB an open connection costs.
  CHECK(per_connection < 12000);
}
#endif
