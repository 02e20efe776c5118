// tests/raw_client.hpp: a blocking raw-socket WebSocket client for tests that
// need to misbehave: never read, stall a handshake, reset, vanish.
#ifndef WSREG_TESTS_RAW_CLIENT_HPP
#define WSREG_TESTS_RAW_CLIENT_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

namespace wsreg_test {

/// One TCP connection to 127.0.0.1:port, driven by hand. Every call is
/// blocking with a deadline, or says so. Not thread-safe: one thread per
/// RawClient. Close codes and frames follow RFC 6455 section 5.
class RawClient {
 public:
  RawClient() = default;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  RawClient(RawClient&& other) noexcept : fd_(other.fd_), pending_(std::move(other.pending_)) {
    other.fd_ = -1;
  }
  RawClient& operator=(RawClient&& other) noexcept {
    if (this != &other) {
      close_now();
      fd_ = other.fd_;
      pending_ = std::move(other.pending_);
      other.fd_ = -1;
    }
    return *this;
  }
  ~RawClient() { close_now(); }

  /// Connects to 127.0.0.1:port. `receive_buffer_bytes` > 0 sets SO_RCVBUF
  /// before connecting, so the TCP window stays small. `source_address`,
  /// if given, is the local IPv4 address to connect from (any of 127/8 on
  /// Linux loopback, say "127.0.0.2"), with an ephemeral port. Returns success.
  bool connect_tcp(std::uint16_t port, int receive_buffer_bytes = 0,
                   const char* source_address = nullptr) {
    close_now();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    if (receive_buffer_bytes > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
    }
    if (source_address != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      local.sin_port = 0;
      if (::inet_pton(AF_INET, source_address, &local.sin_addr) != 1 ||
          ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        close_now();
        return false;
      }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close_now();
      return false;
    }
    return true;
  }

  /// The opening handshake request, as a client sends it (RFC 6455 4.1),
  /// with `extra_headers` (each line ending in CRLF) before the blank line.
  static std::string handshake_request(const std::string& path = "/",
                                       const std::string& extra_headers = std::string()) {
    return "GET " + path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           extra_headers + "\r\n";
  }

  /// Connects and sends the handshake with `extra_headers` (say
  /// "Sec-WebSocket-Extensions: permessage-deflate\r\n"); returns the
  /// response header, empty if the connection failed.
  std::string open_with(std::uint16_t port, const std::string& extra_headers,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    if (!connect_tcp(port) || !write_all(handshake_request("/", extra_headers))) return {};
    return read_http_response(timeout);
  }

  /// Connects and completes the opening handshake; returns true on "101".
  /// Reads exactly the response header, nothing after it.
  bool open(std::uint16_t port, int receive_buffer_bytes = 0,
            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    if (!connect_tcp(port, receive_buffer_bytes)) return false;
    if (!write_all(handshake_request())) return false;
    return read_http_response(timeout).rfind("HTTP/1.1 101", 0) == 0;
  }

  /// Reads an HTTP response header byte by byte up to the blank line.
  std::string read_http_response(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::string head;
    char c = 0;
    while (head.size() < 8192 && head.find("\r\n\r\n") == std::string::npos) {
      if (!wait_readable(timeout) || ::recv(fd_, &c, 1, 0) != 1) break;
      head += c;
    }
    return head;
  }

  /// Writes all of `bytes`; false on error.
  bool write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// A masked client frame (RFC 6455 5.2, 5.3): `opcode` with FIN set or
  /// not, and RSV1 (RFC 7692: compressed) if `rsv1`.
  static std::string frame(std::uint8_t opcode, const std::string& payload, bool fin = true,
                           bool rsv1 = false) {
    std::string out;
    out += static_cast<char>((fin ? 0x80 : 0x00) | (rsv1 ? 0x40 : 0x00) | opcode);
    const std::size_t n = payload.size();
    if (n < 126) {
      out += static_cast<char>(0x80 | n);
    } else if (n <= 0xFFFF) {
      out += static_cast<char>(0x80 | 126);
      out += static_cast<char>((n >> 8) & 0xFF);
      out += static_cast<char>(n & 0xFF);
    } else {
      out += static_cast<char>(0x80 | 127);
      for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    for (unsigned char m : mask) out += static_cast<char>(m);
    for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ mask[i % 4]);
    return out;
  }

  /// Sends a close frame with `code` (RFC 6455 5.5.1).
  bool send_close(std::uint16_t code = 1000) {
    std::string body;
    body += static_cast<char>(code >> 8);
    body += static_cast<char>(code & 0xFF);
    return write_all(frame(0x8, body));
  }

  /// Reads server frames until a close frame arrives or `timeout` passes;
  /// returns its code, 1005 for a close without a code, or 0 for none (EOF,
  /// timeout). Data frames are skipped.
  int read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::uint8_t opcode = 0;
    std::string payload;
    while (read_frame(opcode, payload, timeout)) {
      if (opcode != 0x8) continue;
      if (payload.size() < 2) return 1005;
      return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
    }
    return 0;
  }

  /// Reads the next whole data message (RFC 6455 5.4: its fragments
  /// joined), skipping pings and pongs; false on a close frame, EOF or
  /// timeout. `opcode` is the first fragment's (text 0x1 or binary 0x2),
  /// `*rsv1` (if given) its RSV1 bit (RFC 7692: the payload is compressed).
  bool read_data_message(std::uint8_t& opcode, std::string& payload,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10),
                         bool* rsv1 = nullptr) {
    payload.clear();
    std::uint8_t frame_opcode = 0;
    std::string part;
    bool fin = false;
    bool started = false;
    bool frame_rsv1 = false;
    while (read_frame(frame_opcode, part, timeout, &fin, &frame_rsv1)) {
      if (frame_opcode == 0x8) return false;
      if (frame_opcode == 0x9 || frame_opcode == 0xA) continue;
      if (!started) {
        opcode = frame_opcode;
        if (rsv1 != nullptr) *rsv1 = frame_rsv1;
      }
      started = true;
      payload += part;
      if (fin) return true;
    }
    return false;
  }

  /// The next data message's payload; empty on close, EOF or timeout.
  std::string read_message(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::uint8_t opcode = 0;
    std::string payload;
    return read_data_message(opcode, payload, timeout) ? payload : std::string();
  }

  /// Reads one whole server frame (unmasked, RFC 6455 5.2) into `opcode`
  /// and `payload`, its FIN bit into `*fin` and its RSV1 bit into `*rsv1`
  /// if given; false on EOF, error or timeout.
  bool read_frame(std::uint8_t& opcode, std::string& payload, std::chrono::milliseconds timeout,
                  bool* fin = nullptr, bool* rsv1 = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[65536];
    for (;;) {
      if (pending_.size() >= 2) {
        const auto b0 = static_cast<unsigned char>(pending_[0]);
        const auto b1 = static_cast<unsigned char>(pending_[1]);
        std::size_t header = 2;
        std::uint64_t length = b1 & 0x7F;
        bool complete = true;
        if (length == 126) {
          complete = pending_.size() >= 4;
          if (complete) {
            length = (static_cast<unsigned char>(pending_[2]) << 8) |
                     static_cast<unsigned char>(pending_[3]);
          }
          header = 4;
        } else if (length == 127) {
          complete = pending_.size() >= 10;
          length = 0;
          for (int i = 2; complete && i < 10; ++i) {
            length = (length << 8) | static_cast<unsigned char>(pending_[i]);
          }
          header = 10;
        }
        if (complete && pending_.size() >= header + length) {
          opcode = b0 & 0x0F;
          if (fin != nullptr) *fin = (b0 & 0x80) != 0;
          if (rsv1 != nullptr) *rsv1 = (b0 & 0x40) != 0;
          payload.assign(pending_, header, length);
          pending_.erase(0, header + length);
          return true;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(left)) return false;
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      pending_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Reads everything until the server closes the connection (EOF or
  /// reset) or `timeout` passes; returns what arrived (the body after a
  /// response header read with read_http_response, say).
  std::string read_to_eof(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::string out = std::move(pending_);
    pending_.clear();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[4096];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(left)) return out;
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return out;
      out.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// The local port of the connection (getsockname), 0 if not connected.
  std::uint16_t local_port() const {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) != 0) return 0;
    return ntohs(local.sin_port);
  }

  /// True when the server has closed the TCP connection (EOF or reset)
  /// within `timeout`. Reads and discards anything before that.
  bool wait_for_eof(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[65536];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(left)) return false;
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return true;
    }
  }

  /// Closes the socket with a FIN and no close frame.
  void close_now() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    pending_.clear();
  }

  /// Closes the socket with a TCP reset (SO_LINGER 0), as a killed client's
  /// kernel may.
  void reset_now() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close_now();
  }

  int fd() const { return fd_; }

 private:
  bool wait_readable(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
  }

  int fd_ = -1;
  std::string pending_;  // bytes received but not yet parsed into frames
};

}  // namespace wsreg_test

#endif
