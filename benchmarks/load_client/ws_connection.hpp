// load_client/ws_connection.hpp: one client WebSocket connection's state
// machine: TCP connect (and TLS handshake), opening handshake, frame parser,
// masked writes.
#ifndef WSREG_LOAD_CLIENT_WS_CONNECTION_HPP
#define WSREG_LOAD_CLIENT_WS_CONNECTION_HPP

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "close_cause.hpp"
#include "inflater.hpp"
#include "read_buffer.hpp"
#include "socket_stream.hpp"
#include "ws_frame.hpp"
#include "ws_handshake.hpp"

namespace load_client {

/// Where and how a connection connects; shared by all connections of a run.
///
/// Thread safety: a plain value.
struct ConnectTarget {
  int epoll_fd = -1;
  sockaddr_in server{};
  /// wss://: the TLS context of every connection's session; null for ws://.
  SSL_CTX* tls = nullptr;
  /// Host header and request target of the upgrade request.
  std::string_view host_header;
  std::string_view path;
  /// Sec-WebSocket-Extensions to offer (deflate_offer or empty).
  std::string_view extensions;
};

/// One client WebSocket connection on a nonblocking TCP socket registered in
/// an epoll instance (level-triggered, `data.u64` = the connection's token).
/// With ConnectTarget::tls, its bytes go through a TLS session (SocketStream)
/// whose handshake is part of the `connecting` state.
///
/// It reports to a Handler passed to each call, which provides:
/// - `void on_open(WsConnection&)` after a valid 101 response;
/// - `void on_message(WsConnection&, Opcode, std::string_view payload)` for
///   each complete text or binary message (payload valid during the call);
/// - `void on_closed(WsConnection&, CloseCause)` exactly once per start(),
///   after the socket is closed;
/// - `void on_received(WsConnection&, std::size_t bytes, bool compressed)`
///   for the wire bytes of each data frame (header and payload as sent,
///   before inflation), `compressed` for those of a compressed message.
/// Handlers must not call start() or on_events() on the connection they are
/// called for.
///
/// Memory: the read, write and reassembly buffers are allocated by start()
/// and reused, so a frame costs no heap allocation unless it is larger than
/// every frame before it on this connection. Pings are answered with masked
/// pongs; a server close frame with a masked close echoing its code.
/// With permessage-deflate negotiated (ConnectTarget::extensions), messages
/// with RSV1 are inflated (RFC 7692 section 7.2.2) before on_message.
///
/// Thread safety: Not thread-safe: one epoll thread owns every connection.
class WsConnection {
 public:
  enum class State : std::uint8_t { idle, connecting, handshaking, open, closing, closed };

  WsConnection() = default;
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;
  ~WsConnection() { close_socket(); }

  /// Current state.
  State state() const noexcept { return state_; }
  /// The token given to start(): the index the owner knows it by.
  std::uint64_t token() const noexcept { return token_; }
  /// True while connecting or handshaking.
  bool pending() const noexcept {
    return state_ == State::connecting || state_ == State::handshaking;
  }

  /// Opens the socket, binds it to `source` (if not null; the port is picked
  /// at connect time, IP_BIND_ADDRESS_NO_PORT) and starts a nonblocking
  /// connect. Failures are reported through handler.on_closed().
  template <class Handler>
  void start(const ConnectTarget& target, const sockaddr_in* source, std::uint64_t token,
             std::mt19937_64& rng, Handler& handler) {
    token_ = token;
    epoll_fd_ = target.epoll_fd;
    state_ = State::connecting;
    in_.reset(initial_read_bytes);
    need_bytes_ = 0;
    out_.clear();
    out_.reserve(256);
    out_begin_ = 0;
    in_message_ = false;
    message_.clear();
    deflate_ = DeflateAnswer{};
    mask_state_ = rng() | 1;

    const std::string key = make_websocket_key(rng);
    expected_accept_ = websocket_accept_for(key);
    const std::string request =
        make_upgrade_request(target.host_header, target.path, key, target.extensions);
    out_.assign(request.begin(), request.end());

    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || !stream_.open(fd_, target.tls)) {
      return fail(CloseCause::socket_error, handler);
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (source != nullptr) {
      ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (::bind(fd_, reinterpret_cast<const sockaddr*>(source), sizeof *source) != 0) {
        return fail(CloseCause::socket_error, handler);
      }
    }
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&target.server), sizeof target.server) !=
            0 &&
        errno != EINPROGRESS) {
      return fail(connect_cause(errno), handler);
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = token_;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd_, &ev) != 0) {
      return fail(CloseCause::socket_error, handler);
    }
    registered_events_ = EPOLLOUT;
  }

  /// Handles the events epoll reported for this connection.
  template <class Handler>
  void on_events(std::uint32_t events, Handler& handler) {
    if (state_ == State::connecting) return finish_connect(handler);
    if (state_ == State::idle || state_ == State::closed) return;
    if ((events & EPOLLOUT) != 0 && !flush(handler)) return;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) read_available(handler);
  }

  /// Ends a pending connection as connect_timeout.
  template <class Handler>
  void expire(Handler& handler) {
    if (pending()) fail(CloseCause::connect_timeout, handler);
  }

  /// Starts our close of an open connection: sends a masked close frame with
  /// status 1000; the connection ends when the server answers or closes.
  template <class Handler>
  void begin_close(Handler& handler) {
    if (state_ != State::open) return;
    static constexpr char normal_closure[2] = {0x03, static_cast<char>(0xE8)};  // 1000
    append_masked_frame(out_, Opcode::close, std::string_view(normal_closure, 2), next_mask());
    state_ = State::closing;
    flush(handler);
  }

  /// Closes the socket now, without telling the handler. For the end of a run.
  void abort() noexcept {
    close_socket();
    if (state_ != State::idle) state_ = State::closed;
  }

 private:
  /// Bytes of read buffer a connection starts with; grows for larger frames.
  static constexpr std::size_t initial_read_bytes = 4096;
  /// Free space kept at the end of the read buffer before each recv().
  static constexpr std::size_t min_free_read_bytes = 512;
  /// Largest response head (status line and headers) accepted, in bytes.
  static constexpr std::size_t max_handshake_bytes = 8192;
  /// recv() calls per readiness event before yielding to other connections.
  static constexpr int max_reads_per_event = 16;

  static CloseCause connect_cause(int error) noexcept {
    if (error == ECONNREFUSED) return CloseCause::connect_refused;
    if (error == EADDRNOTAVAIL) return CloseCause::no_local_port;
    return CloseCause::connect_error;
  }

  /// The cause to report when the socket fails or reaches EOF in this state.
  CloseCause socket_end_cause(bool eof) const noexcept {
    if (state_ == State::handshaking) return CloseCause::handshake_closed;
    if (state_ == State::closing) return CloseCause::local_close;
    return eof ? CloseCause::eof : CloseCause::io_error;
  }

  std::uint32_t next_mask() noexcept {  // xorshift64: cheap, unpredictable enough for a load tool
    mask_state_ ^= mask_state_ << 13;
    mask_state_ ^= mask_state_ >> 7;
    mask_state_ ^= mask_state_ << 17;
    return static_cast<std::uint32_t>(mask_state_ >> 32);
  }

  void close_socket() noexcept {
    stream_.close();
    if (fd_ >= 0) ::close(fd_);  // also removes it from the epoll set
    fd_ = -1;
  }

  template <class Handler>
  void fail(CloseCause cause, Handler& handler) {
    close_socket();
    state_ = State::closed;
    handler.on_closed(*this, cause);
  }

  void set_want_write(bool want) noexcept {
    const std::uint32_t events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    if (events == registered_events_) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_, &ev);
    registered_events_ = events;
  }

  template <class Handler>
  void finish_connect(Handler& handler) {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) return fail(connect_cause(error), handler);
    // wss://: the TLS handshake, one step per readiness event (ws:// is done at once).
    const IoResult tls = stream_.handshake();
    if (tls.status == IoStatus::want_read || tls.status == IoStatus::want_write) {
      return set_want_write(tls.status == IoStatus::want_write);
    }
    if (tls.status != IoStatus::ok) return fail(CloseCause::tls_handshake, handler);
    state_ = State::handshaking;
    flush(handler);  // sends the upgrade request; sets EPOLLIN (and EPOLLOUT if partial)
  }

  /// Writes out_ as far as the socket takes it. Returns false if the
  /// connection ended.
  template <class Handler>
  bool flush(Handler& handler) {
    while (out_begin_ < out_.size()) {
      const IoResult r = stream_.write(out_.data() + out_begin_, out_.size() - out_begin_);
      if (r.status == IoStatus::ok) {
        out_begin_ += r.bytes;
      } else if (r.status == IoStatus::want_write || r.status == IoStatus::want_read) {
        set_want_write(true);  // want_read: only a TLS 1.3 KeyUpdate; renegotiation is off
        return true;
      } else {
        fail(socket_end_cause(false), handler);
        return false;
      }
    }
    out_.clear();
    out_begin_ = 0;
    set_want_write(false);
    return true;
  }

  template <class Handler>
  void read_available(Handler& handler) {
    // Past the round limit only while the TLS session holds bytes epoll cannot see.
    for (int round = 0; round < max_reads_per_event || stream_.buffered(); ++round) {
      in_.prepare(need_bytes_, min_free_read_bytes);
      const std::size_t space = in_.free_bytes();
      const IoResult r = stream_.read(in_.free_data(), space);
      if (r.status == IoStatus::ok) {
        in_.commit(r.bytes);
        if (!consume(handler)) return;
        // Drained; level-triggered epoll recalls us.
        if (r.bytes < space && !stream_.buffered()) return;
      } else if (r.status == IoStatus::eof) {
        return fail(socket_end_cause(true), handler);
      } else if (r.status == IoStatus::want_read) {
        return;
      } else if (r.status == IoStatus::want_write) {
        return set_want_write(true);  // a TLS 1.3 KeyUpdate answer waits for room
      } else {
        return fail(socket_end_cause(false), handler);
      }
    }
  }

  /// Processes the bytes in in_. Returns false if the connection ended.
  template <class Handler>
  bool consume(Handler& handler) {
    if (state_ == State::handshaking) {
      const std::string_view data = in_.unread();
      const std::size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (data.size() <= max_handshake_bytes) return true;
        fail(CloseCause::handshake_malformed, handler);
        return false;
      }
      switch (check_upgrade_response(data.substr(0, end + 4), expected_accept_)) {
        case HandshakeResult::ok: break;
        case HandshakeResult::bad_status: fail(CloseCause::handshake_status, handler); return false;
        case HandshakeResult::bad_accept: fail(CloseCause::handshake_accept, handler); return false;
        case HandshakeResult::malformed: fail(CloseCause::handshake_malformed, handler); return false;
      }
      deflate_ = read_deflate_answer(data.substr(0, end + 4));
      in_.consume(end + 4);  // any bytes after the head are the first frame bytes
      state_ = State::open;
      handler.on_open(*this);
    }
    return parse_frames(handler);
  }

  template <class Handler>
  bool parse_frames(Handler& handler) {
    need_bytes_ = 0;
    while (state_ == State::open || state_ == State::closing) {
      const std::string_view data = in_.unread();
      FrameHeader header;
      if (!decode_frame_header(reinterpret_cast<const std::uint8_t*>(data.data()), data.size(),
                               header)) {
        return true;
      }
      const FrameError error = check_server_frame(header, deflate_.negotiated);
      if (error != FrameError::none) {
        fail(error == FrameError::too_large ? CloseCause::message_too_large
                                            : CloseCause::protocol_error,
             handler);
        return false;
      }
      const std::size_t total = header.header_bytes + static_cast<std::size_t>(header.payload_bytes);
      if (data.size() < total) {
        need_bytes_ = total;
        return true;
      }
      const std::string_view payload = data.substr(header.header_bytes, total - header.header_bytes);
      in_.consume(total);  // payload stays valid: in_ does not move until the next prepare()
      if (header.opcode < 0x8) {
        const bool compressed =
            header.reserved_bits != 0 || (header.opcode == 0 && message_compressed_);
        handler.on_received(*this, total, compressed);
      }
      if (!dispatch(header, payload, handler)) return false;
    }
    return state_ != State::closed;
  }

  /// Acts on one complete frame. Returns false if the connection ended.
  template <class Handler>
  bool dispatch(const FrameHeader& header, std::string_view payload, Handler& handler) {
    const auto opcode = static_cast<Opcode>(header.opcode);
    switch (opcode) {
      case Opcode::ping:  // answered while closing too: RFC 6455 5.5.2 until a close is received
        append_masked_frame(out_, Opcode::pong, payload, next_mask());
        return flush(handler);
      case Opcode::pong:
        return true;
      case Opcode::close:
        if (state_ == State::open) {
          // Echo the status code (if any); best effort, the socket closes next.
          append_masked_frame(out_, Opcode::close, payload.substr(0, payload.size() >= 2 ? 2 : 0),
                              next_mask());
          (void)stream_.write(out_.data() + out_begin_, out_.size() - out_begin_);
          fail(CloseCause::server_close, handler);
        } else {
          fail(CloseCause::local_close, handler);  // the answer to our close
        }
        return false;
      case Opcode::continuation:
        if (!in_message_) break;
        if (message_.size() + payload.size() > max_message_bytes) {
          fail(CloseCause::message_too_large, handler);
          return false;
        }
        message_.insert(message_.end(), payload.begin(), payload.end());
        if (!header.fin) return true;
        in_message_ = false;
        if (!deliver_whole(message_opcode_, message_compressed_,
                           std::string_view(message_.data(), message_.size()), handler)) {
          return false;
        }
        message_.clear();  // keeps capacity for the next fragmented message
        return state_ != State::closed;
      case Opcode::text:
      case Opcode::binary:
        if (in_message_) break;  // a new message inside a fragmented one
        if (header.fin) {
          if (!deliver_whole(opcode, header.reserved_bits != 0, payload, handler)) return false;
          return state_ != State::closed;
        }
        in_message_ = true;
        message_opcode_ = opcode;
        message_compressed_ = header.reserved_bits != 0;
        message_.assign(payload.begin(), payload.end());
        return true;
    }
    fail(CloseCause::protocol_error, handler);
    return false;
  }

  /// Delivers one whole message, inflated first if `compressed`. Returns
  /// false if the connection ended (corrupt or oversized compressed data).
  template <class Handler>
  bool deliver_whole(Opcode opcode, bool compressed, std::string_view payload, Handler& handler) {
    if (!compressed) {
      deliver(opcode, payload, handler);
      return true;
    }
    if (deflate_.server_no_context_takeover) inflater_.reset();
    if (!inflater_.inflate_message(payload, inflated_, max_message_bytes)) {
      fail(CloseCause::protocol_error, handler);
      return false;
    }
    deliver(opcode, std::string_view(inflated_.data(), inflated_.size()), handler);
    return true;
  }

  template <class Handler>
  void deliver(Opcode opcode, std::string_view payload, Handler& handler) {
    if (state_ == State::open) handler.on_message(*this, opcode, payload);
  }

  int fd_ = -1;
  /// The bytes of fd_: plain, or TLS over it.
  SocketStream stream_;
  int epoll_fd_ = -1;
  std::uint64_t token_ = 0;
  State state_ = State::idle;
  std::uint32_t registered_events_ = 0;
  std::uint64_t mask_state_ = 1;
  std::string expected_accept_;

  /// Received bytes not yet parsed.
  ReadBuffer in_;
  /// Size of the frame being parsed once its header is known, else 0.
  std::size_t need_bytes_ = 0;

  /// Bytes to send; [out_begin_, size) not yet written.
  std::vector<char> out_;
  std::size_t out_begin_ = 0;

  /// Reassembly of a fragmented message.
  std::vector<char> message_;
  Opcode message_opcode_ = Opcode::text;
  bool in_message_ = false;
  bool message_compressed_ = false;

  /// permessage-deflate as the handshake response settled it.
  DeflateAnswer deflate_;
  /// Made on the first compressed message; inflated_ keeps its capacity.
  Inflater inflater_;
  std::vector<char> inflated_;
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_WS_CONNECTION_HPP
