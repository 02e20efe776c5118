// load_client/socket_stream.hpp: a connection's byte stream: the TCP socket
// itself (ws://) or a TLS session over it (wss://), and the TLS client
// context a run shares.
#ifndef WSREG_LOAD_CLIENT_SOCKET_STREAM_HPP
#define WSREG_LOAD_CLIENT_SOCKET_STREAM_HPP

#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace load_client {

/// What one read, one write or one TLS handshake step did.
enum class IoStatus : std::uint8_t {
  ok,          ///< `bytes` moved (a handshake step: the handshake is complete).
  want_read,   ///< Nothing moved; call again once the socket is readable.
  want_write,  ///< Nothing moved; call again once the socket is writable.
  eof,         ///< The peer closed the stream (reads only).
  error,       ///< The socket or the TLS session failed.
};

/// The outcome of a SocketStream call.
///
/// Thread safety: a plain value.
struct IoResult {
  IoStatus status = IoStatus::ok;
  /// Bytes read or written when status is ok; else 0.
  std::size_t bytes = 0;
};

/// The client side of wss:// for all connections of a run: one OpenSSL
/// SSL_CTX, TLS 1.2 or later, with no certificate verification (the
/// benchmark's server has a self-signed certificate made for the run; this
/// client measures, it does not authenticate). Renegotiation is refused, so
/// after the handshake a read never needs a write and a write never needs a
/// read, except for TLS 1.3's rare KeyUpdate. SSL_MODE_RELEASE_BUFFERS keeps
/// an idle connection's buffers small, as on the server
/// (wsreg::wspp::make_tls_context).
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe to share
/// between the sessions of one thread (OpenSSL's SSL_CTX is thread-safe
/// once configured); not copyable.
class TlsClientContext {
 public:
  /// Makes the context. Throws std::runtime_error if OpenSSL cannot.
  TlsClientContext() : context_(SSL_CTX_new(TLS_client_method())) {
    if (context_ == nullptr) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(context_, TLS1_2_VERSION);
    SSL_CTX_set_verify(context_, SSL_VERIFY_NONE, nullptr);
    // An EOF without close_notify reads as EOF (SSL_ERROR_ZERO_RETURN), as
    // on a plain socket, not as a protocol error.
    SSL_CTX_set_options(context_, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Partial writes: a write returns what went out, as send() does; the
    // rest is retried from a buffer that may have moved or grown.
    SSL_CTX_set_mode(context_, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
  }
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ~TlsClientContext() { SSL_CTX_free(context_); }

  /// The OpenSSL context, for SocketStream::open(). Thread-safe.
  SSL_CTX* get() const noexcept { return context_; }

 private:
  SSL_CTX* context_;
};

/// The bytes of one connection: plain send()/recv() on its nonblocking
/// socket, or SSL_write()/SSL_read() of a TLS session over it. One branch
/// per call picks the path, so the plain path is the same system calls as
/// before TLS existed. The socket stays the caller's: it is created,
/// connected, polled and closed by WsConnection.
///
/// A TLS session reads whole records: the bytes of a record that did not
/// fit the caller's buffer stay in the session, where epoll does not see
/// them; buffered() says so, and the caller reads again before waiting.
///
/// Thread safety: Not thread-safe: one epoll thread owns every connection.
class SocketStream {
 public:
  SocketStream() = default;
  SocketStream(const SocketStream&) = delete;
  SocketStream& operator=(const SocketStream&) = delete;
  ~SocketStream() { close(); }

  /// Starts a stream over `fd`: plain when `tls` is null, else a TLS client
  /// session of `tls`, whose handshake() runs once TCP is connected.
  /// Returns false if the session could not be made. Not thread-safe.
  bool open(int fd, SSL_CTX* tls) noexcept {
    close();
    fd_ = fd;
    if (tls == nullptr) return true;
    ssl_ = SSL_new(tls);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd) != 1) {
      ERR_clear_error();
      return false;
    }
    SSL_set_connect_state(ssl_);
    return true;
  }

  /// Frees the TLS session (no close_notify is sent); the socket is left
  /// open. Not thread-safe.
  void close() noexcept {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    fd_ = -1;
  }

  /// One step of the TLS handshake on a connected socket: ok when done,
  /// want_read or want_write to be called again then, or error. A plain
  /// stream is done at once. Not thread-safe.
  IoResult handshake() noexcept {
    if (ssl_ == nullptr) return {IoStatus::ok, 0};
    return tls_result(SSL_do_handshake(ssl_));
  }

  /// Reads at most `size` bytes into `data`. Not thread-safe.
  IoResult read(char* data, std::size_t size) noexcept {
    if (ssl_ != nullptr) return tls_result(SSL_read(ssl_, data, clamp(size)));
    while (true) {
      const ssize_t n = ::recv(fd_, data, size, 0);
      if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
      if (n == 0) return {IoStatus::eof, 0};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::want_read, 0};
      return {IoStatus::error, 0};
    }
  }

  /// Writes at most `size` bytes of `data`; after want_write, call again
  /// with the same bytes first (the buffer may have moved or grown).
  /// Not thread-safe.
  IoResult write(const char* data, std::size_t size) noexcept {
    if (ssl_ != nullptr) return tls_result(SSL_write(ssl_, data, clamp(size)));
    while (true) {
      const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {IoStatus::want_write, 0};
      return {IoStatus::error, 0};
    }
  }

  /// True when the TLS session holds decrypted bytes not read yet (always
  /// false for a plain stream). Not thread-safe.
  bool buffered() const noexcept { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }

 private:
  static int clamp(std::size_t size) noexcept {
    return size > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(size);
  }

  /// Maps an SSL_* return value. The thread's OpenSSL error queue is
  /// emptied after every failure, as the next SSL_get_error() requires.
  IoResult tls_result(int n) noexcept {
    if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
    const int error = SSL_get_error(ssl_, n);
    switch (error) {
      case SSL_ERROR_WANT_READ: return {IoStatus::want_read, 0};
      case SSL_ERROR_WANT_WRITE: return {IoStatus::want_write, 0};
      case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return {IoStatus::eof, 0};
      default: ERR_clear_error(); return {IoStatus::error, 0};
    }
  }

  int fd_ = -1;
  /// The TLS session; null for a plain stream.
  SSL* ssl_ = nullptr;
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_SOCKET_STREAM_HPP
