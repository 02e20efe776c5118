// wsreg/websocketpp/server_options.hpp: the tunables of wsreg::wspp::Server.
#ifndef WSREG_WEBSOCKETPP_SERVER_OPTIONS_HPP
#define WSREG_WEBSOCKETPP_SERVER_OPTIONS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsreg::wspp {

/// What a connection's sender does with a message that would take the bytes
/// waiting for that connection past ServerOptions::max_buffered_bytes.
enum class OverflowPolicy : std::uint8_t {
  /// The message is not queued for that connection and is counted in
  /// RegistryStats::messages_dropped; the connection stays open. Suits
  /// feeds where the next message supersedes the last (a price, a position).
  drop_newest,
  /// The connection is closed with 1008 "slow consumer" (RFC 6455 section
  /// 7.4.1, policy violation) and removed from the registry; this and later
  /// messages for it count as dropped. The default: a client that silently
  /// misses messages has a wrong view it cannot detect, while a closed one
  /// reconnects and resynchronises. 1008 rather than 1013 (try again later)
  /// because the server is not overloaded; this client broke the rule that a
  /// client keeps reading.
  close,
};

/// A plain HTTP request (one that is not a WebSocket upgrade) as the HTTP
/// handler sees it (Server::set_http_handler): copies of websocketpp's
/// parsed request line.
///
/// Thread safety: a plain value.
struct HttpRequest {
  std::string method;  ///< "GET", "POST", ... as sent (HTTP methods are case-sensitive).
  std::string target;  ///< The request target as sent, e.g. "/" or "/chat?room=a".
};

/// The answer an HTTP handler fills in: status, Content-Type, body and any
/// extra headers. websocketpp adds Content-Length (and Server) itself.
///
///     server.set_http_handler([](const HttpRequest& req, HttpResponse& res) {
///       if (req.target != "/") return false;              // the Server answers
///       if (req.method != "GET") {
///         res.status = 405;                               // RFC 9110 15.5.6
///         res.with_header("Allow", "GET");
///         return true;
///       }
///       res.content_type = "text/html; charset=utf-8";
///       res.body = page;
///       res.with_header("Cache-Control", "no-cache");
///       return true;
///     });
///
/// Thread safety: a plain value.
struct HttpResponse {
  int status = 200;  ///< HTTP status code.
  std::string content_type = "text/plain; charset=utf-8";  ///< Empty: no Content-Type header.
  std::string body;  ///< The body, sent as is.
  /// Extra response headers, in order (Cache-Control, Allow, Location,
  /// Set-Cookie, ...). A name must be an HTTP token (RFC 9110 section
  /// 5.6.2) and a value must hold no CR, LF or NUL (no header injection):
  /// otherwise the Server answers 500 instead, counted in
  /// ServerStats::handler_exceptions. A name given twice is sent once with
  /// the values joined by ", " (websocketpp keeps one value per name), so
  /// Set-Cookie can carry one cookie per response. Content-Type belongs in
  /// `content_type`, Content-Length is websocketpp's.
  /// (`{}` so that `HttpResponse{status, type, body}` stays free of
  /// -Wmissing-field-initializers.)
  std::vector<std::pair<std::string, std::string>> headers{};

  /// Adds a header to `headers`; chainable:
  /// `res.with_header("Cache-Control", "no-store").with_header("Allow", "GET")`.
  HttpResponse& with_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

namespace detail {

/// Whether every header of `headers` (name, value pairs) can be sent as
/// given: names are HTTP tokens (RFC 9110 section 5.6.2: letters, digits
/// and !#$%&'*+-.^_`|~), values hold no CR, LF or NUL (no header injection).
/// Thread-safe (pure).
template <class Headers>
bool sendable_header_list(const Headers& headers) noexcept {
  const auto token_char = [](char c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return alnum || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  };
  for (const auto& [name, value] : headers) {
    if (name.empty()) return false;
    for (const char c : name) {
      if (!token_char(c)) return false;
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) return false;
  }
  return true;
}

/// Whether every extra header of `response` can be sent as given
/// (sendable_header_list). Thread-safe (pure).
inline bool sendable_headers(const HttpResponse& response) noexcept {
  return sendable_header_list(response.headers);
}

}  // namespace detail

/// Tunables of a Server. Every limit has a default that suits a server of a
/// few thousand connections, a unit in its name, and 0 meaning "off" where
/// said. Durations are std::chrono types; websocketpp takes milliseconds.
struct ServerOptions {
  /// Threads that run the io_context the Server owns. With an io_context of
  /// the application's, it runs none, and this is only the number of write
  /// lanes (write_lanes). Default 1; 0 is taken as 1.
  std::size_t threads = 1;

  /// HTTP path answered by GET with the Prometheus text of the registry and
  /// server counters (another method on it gets 405 with `Allow: GET`);
  /// empty turns it off. Other plain HTTP requests get 404.
  std::string metrics_path = "/metrics";

  /// Log websocketpp's error channels (all but devel) to stderr. Default
  /// off: websocketpp reports a peer that vanished mid-write as "fatal",
  /// routine with thousands of clients; the counters record what matters.
  bool log_errors = false;

  // Backpressure

  /// Bound on the memory that data waiting to be written to one connection
  /// costs, in charged bytes, in the adapter's own queue; what it has handed
  /// websocketpp (write_window_bytes at most, or one larger message) comes
  /// on top. Each message is charged
  ///
  ///     header bytes + payload bytes + detail::message_overhead_bytes
  ///
  /// where the overhead is what a queued message costs besides its bytes:
  /// sizeof(websocketpp message) + the shared_ptr control block and malloc
  /// headers + the queue slot + the payload allocation's rounding; 200 bytes
  /// with websocketpp 0.8.2 on x86-64 libstdc++ (computed from sizeof at
  /// compile time). A 10-byte message thus counts 212 bytes, so a client
  /// sent tiny messages trips the bound after ~5,000 of them, not 100,000.
  /// A frame-once message shared by many connections is charged in full to
  /// each (an upper bound). A message that would pass the bound triggers
  /// overflow_policy; a single message larger than the bound still goes to
  /// a connection with nothing waiting. What one stalled connection holds in
  /// user space is then at most about this plus write_window_bytes (plus one
  /// message), plus the kernel's socket buffers. Default 1 MiB.
  std::size_t max_buffered_bytes = 1024 * 1024;

  /// What happens past max_buffered_bytes. Default: close (see OverflowPolicy).
  OverflowPolicy overflow_policy = OverflowPolicy::close;

  /// Charged bytes (as max_buffered_bytes counts them) of data handed to
  /// websocketpp at once per connection; the rest waits in the adapter's own
  /// queue. websocketpp writes control frames (pong, ping, close) behind
  /// everything handed to it, so this bounds how much data a control frame
  /// waits behind in user space: it leaves after at most this much (or one
  /// larger message), plus what the kernel's socket buffers already hold.
  /// Smaller: control frames sooner; larger: fewer refills (one strand
  /// round trip and one sentinel message each) for a fast reader. Measured
  /// (tests/test_send_queue, 1 KiB messages, queue at its 1 MiB bound,
  /// reader at 1 MiB/s through a 4 KiB SO_RCVBUF, socket_send_buffer_bytes
  /// 16 KiB): client ping to pong max 36-48 ms at 16 KiB, 47-50 ms at
  /// 32 KiB, 71-78 ms at 64 KiB, of which ~30 ms are the kernel's buffers;
  /// 1.1-1.3 s with websocketpp's queue alone. Default 32 KiB; taken as
  /// max_buffered_bytes if larger.
  std::size_t write_window_bytes = 32 * 1024;

  /// SO_SNDBUF for accepted sockets, in bytes; 0 keeps the kernel's
  /// autotuned default (up to net.ipv4.tcp_wmem's maximum, 4 MiB on Debian).
  /// A smaller value makes backpressure reach max_buffered_bytes sooner.
  int socket_send_buffer_bytes = 0;

  /// Frame each payload once and queue that one frame on every connection it
  /// goes to (websocketpp's prepared-message path), instead of letting
  /// websocketpp copy and frame it per connection as its send() does.
  /// Default true. false exists to measure the difference (see
  /// docs/benchmarks.md); the bytes on the wire are the same either way.
  /// Connections speaking the pre-RFC hybi00 protocol are always framed per
  /// connection.
  bool frame_once = true;

  /// Hand a message sent from a thread that does not run the io_context
  /// (the actor thread, a ticker, any application thread) to websocketpp
  /// through one of `threads` write lanes: one task per lane per batch on an
  /// io thread starts each connection's write at once, instead of one
  /// cross-thread post per recipient (detail::WriteLanes). Sends from an io
  /// thread start their write directly either way. It halves the server
  /// CPU of a broadcast-heavy server (docs/benchmarks.md, "Ahead of
  /// uWebSockets"). Default false, because of one ordering it does not keep:
  /// a message accepted from another thread shortly before websocketpp
  /// itself starts a close (the peer sent a close frame or broke the
  /// protocol) may still wait in its lane when the close frame goes, and is
  /// then dropped instead of going before it (without lanes it is already
  /// in websocketpp's queue). Closes the Server starts (shutdown, slow or
  /// idle consumers) wait for the lane. Turn it on where that edge does not
  /// matter, as for broadcasts and feeds. With an io_context of the
  /// application's, set `threads` to the number of threads running it to
  /// get one lane per thread.
  bool write_lanes = false;

  // Compression (permessage-deflate, RFC 7692). These apply only to a
  // Server whose config negotiates the extension (DeflateConfig); with any
  // other config they are ignored and nothing is ever compressed.

  /// Payloads smaller than this many bytes are sent uncompressed even to a
  /// connection that negotiated permessage-deflate (RFC 7692 allows any
  /// message to go uncompressed, RSV1 clear). Below a few hundred bytes
  /// DEFLATE saves little (a 46-byte tick does not shrink at all) and costs
  /// a compression call per payload. Default 256; 0 compresses everything.
  std::size_t deflate_threshold_bytes = 256;

  /// zlib compression level for outgoing messages: 1 (fastest) to 9
  /// (smallest); zlib's default is 6. Another value makes the Server's
  /// constructor throw std::invalid_argument. Default 6.
  int deflate_level = 6;

  // Limits

  /// TCP connections the Server serves at once, counted from the TCP
  /// accept (not from the handshake request) until the connection ends: a
  /// client that connects and never sends its request holds a slot as
  /// surely as an open WebSocket, so idle sockets cannot crowd out the
  /// limit's accounting. A connection accepted while every slot is taken
  /// holds none and has its handshake refused with HTTP 503 as soon as its
  /// request arrives, before any registry entry exists (or is dropped at
  /// handshake_timeout if it never sends one). Why 503 after the request
  /// rather than dropping the socket at accept: the client learns the
  /// server is full (and may retry later) instead of seeing a reset it
  /// cannot tell from a network fault, and each such socket lives only
  /// until its request or handshake_timeout, whichever comes first; lower
  /// handshake_timeout to shorten that. 0: no limit. Default 0, since the
  /// process's file descriptor limit already bounds it; set it below that
  /// limit to refuse politely.
  std::size_t max_connections = 0;

  /// TCP connections one peer IP address may have at once, counted as
  /// max_connections counts (from the accept until the end). Past it a
  /// handshake is refused with HTTP 429 Too Many Requests (RFC 6585 section
  /// 4), not 503: the server is not overloaded, this one client is over its
  /// share, and 429 says so to that client alone. Addresses compare exactly
  /// (an IPv6 client may hold many; IPv4-mapped IPv6 counts as IPv4); clients
  /// behind one NAT or proxy share the limit. 0: no limit. Default 0.
  std::size_t max_connections_per_address = 0;

  /// Origins (RFC 6454, as the Origin header carries them:
  /// "https://example.com", "http://localhost:8080") allowed to open a
  /// WebSocket; a handshake whose Origin is not listed is refused with HTTP
  /// 403 before the handshake handler runs. This is the defence against
  /// cross-site WebSocket hijacking: a page on another site can make the
  /// victim's browser open a WebSocket here, with the victim's cookies, and
  /// only the Origin header tells the two apart. Compared ASCII
  /// case-insensitively. A handshake without an Origin header (a non-browser
  /// client; browsers always send it) is allowed. Empty: any origin.
  /// Default empty.
  std::vector<std::string> allowed_origins;

  /// Largest inbound message, in bytes, whole or as the sum of its
  /// fragments. A larger one closes that connection with 1009 (RFC 6455
  /// section 7.4.1, message too big), through websocketpp's
  /// set_max_message_size. For a compressed message (permessage-deflate)
  /// the limit is on its inflated size: inflation stops as soon as the
  /// message would pass it, having inflated at most the limit plus 4 KiB,
  /// so a few KiB of deflated zeros cannot make the server allocate
  /// 16 MiB. Default 1 MiB.
  std::size_t max_message_size = 1024 * 1024;

  /// Time from TCP accept to the end of the opening handshake; a connection
  /// that has not finished by then is dropped (never registered; counted in
  /// ServerStats::handshake_timeouts). The Server runs this deadline itself,
  /// from its sweep, which checks about every quarter of the shortest of
  /// this, ping_interval and idle_timeout (5 ms to 1 s): a connection is
  /// dropped between handshake_timeout and about 1.25 x handshake_timeout
  /// after its accept. (websocketpp's own open handshake timer is turned
  /// off: in 0.8.2 its expiry, once queued, terminated connections that had
  /// just opened, without a close frame.) The deadline also covers plain
  /// HTTP requests. 0: no deadline. Default 5 s.
  std::chrono::milliseconds handshake_timeout{5000};

  /// Time a close handshake may take before the TCP connection is dropped
  /// (websocketpp's close handshake timer): bounds how long a client that
  /// does not read can hold a closing connection. Default 5 s.
  std::chrono::milliseconds close_handshake_timeout{5000};

  // Liveness

  /// A connection from which nothing has arrived for this long gets a ping
  /// (RFC 6455 section 5.5.2), and another each interval after. 0: never
  /// ping. Default 20 s.
  std::chrono::milliseconds ping_interval{20000};

  /// A connection from which nothing at all has arrived (no message, no
  /// ping, no pong) for this long is closed with 1001 "idle timeout"; it is
  /// dropped and removed when it answers, or at most one ping_interval (or
  /// close_handshake_timeout, if shorter) later. 0: never. Default 60 s.
  ///
  /// With both set, idle_timeout must be at least twice ping_interval, or
  /// the Server's constructor throws std::invalid_argument naming both. The
  /// rule: a ping goes out between ping_interval and ping_interval plus one
  /// sweep period (at most a quarter of ping_interval) after the last
  /// arrival, so a client that answers every ping then has at least three
  /// quarters of ping_interval for its pong to arrive before idle_timeout;
  /// with a shorter idle_timeout a live client can be closed as idle (with
  /// idle_timeout <= ping_interval it always is, before any ping).
  std::chrono::milliseconds idle_timeout{60000};

  // Ordering

  /// After the message handler returns, wait until the registry has applied
  /// what the handler queued (ConnectionRegistry::flush()), before
  /// websocketpp reads that connection's next frame. Under ActorPolicy this
  /// costs one round trip to the actor thread per inbound message that
  /// queued something (nothing when the handler queued nothing); under
  /// MutexPolicy, whose calls apply before they return, it costs nothing.
  /// What it buys: a reply the handler sent goes out before anything that
  /// follows on that connection, such as the 1002 close frame for a protocol
  /// violation that arrived right behind the message (RFC 6455 section 7.1.7
  /// lets an endpoint fail at once; the reply would otherwise be lost), and
  /// an io thread never has more than one message handler's work waiting in
  /// the actor's mailbox: inbound traffic cannot outrun the actor, so a
  /// flood of client messages slows the reading of those clients instead of
  /// growing the mailbox. false trades both for throughput. Default true.
  bool flush_after_message = true;

  // Accepting

  /// Accept operations kept pending at once. websocketpp's own loop keeps
  /// one and starts the next from its completion handler; on a busy io
  /// thread that handler waits behind every queued write, so a server
  /// saturated by broadcasts accepts about one connection per pass through
  /// its queue (measured: 10 Hz ticks to ~10k connections on one io
  /// thread, 15,000 clients connecting: websocketpp's loop opened 9,636 in
  /// 60 s; 64 pending accepts opened all 15,000 in 14.8 s). Default 16;
  /// 0 is taken as 1.
  std::size_t pending_accepts = 16;

  // Accept errors

  /// When accept fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
  /// ENOMEM), the server waits this long before the next accept, doubling
  /// each time up to accept_backoff_max, and logs at most once per wait.
  /// Default 100 ms.
  std::chrono::milliseconds accept_backoff_min{100};
  /// Upper bound of that wait. Default 1 s.
  std::chrono::milliseconds accept_backoff_max{1000};
};

}  // namespace wsreg::wspp

#endif  // WSREG_WEBSOCKETPP_SERVER_OPTIONS_HPP
