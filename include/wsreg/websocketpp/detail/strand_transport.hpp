// wsreg/websocketpp/detail/strand_transport.hpp: websocketpp's Asio transport with
// one hop less per write.
#ifndef WSREG_WEBSOCKETPP_DETAIL_STRAND_TRANSPORT_HPP
#define WSREG_WEBSOCKETPP_DETAIL_STRAND_TRANSPORT_HPP

#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <websocketpp/transport/asio/connection.hpp>
#include <websocketpp/transport/asio/endpoint.hpp>
#include <websocketpp/transport/asio/security/none.hpp>

namespace wsreg::wspp::detail {

/// websocketpp 0.8.2's Asio transport connection, with dispatch() through
/// the connection's strand instead of a post to the io_context.
///
/// websocketpp's connection::send() (data, pings, pongs, close frames) and
/// its write completion hand the next write to transport dispatch(), which
/// in 0.8.2 always does `io_service->post(strand->wrap(handler))`: a trip
/// through the io_context's queue, then a second dispatch onto the strand,
/// for every write, even when the caller is already on an io thread or on
/// the connection's own strand. Here dispatch() is
/// asio::io_context::strand::dispatch: the handler runs at once when the
/// calling thread runs the io_context and the strand is free (or the caller
/// is in the strand, as websocketpp's write completion is); otherwise it is
/// queued on the strand, which is what the post did, in one hop instead of
/// two. The handlers websocketpp dispatches (write_frame, pause and resume
/// of reading) are strand handlers that take websocketpp's own locks and
/// start an asynchronous operation at most, never call back into the
/// application, so running them inline is safe under any lock the caller
/// holds that they do not take.
///
/// It also records when a write websocketpp started is in flight
/// (writing()), so that WriteLanes can tell when websocketpp has nothing
/// ahead of a frame and write it to the socket itself.
///
/// Thread safety: as websocketpp's transport connection.
template <class TransportConfig>
class StrandConnection : public ::websocketpp::transport::asio::connection<TransportConfig> {
 public:
  using base = ::websocketpp::transport::asio::connection<TransportConfig>;
  using type = StrandConnection<TransportConfig>;
  using ptr = std::shared_ptr<type>;
  using dispatch_handler = ::websocketpp::transport::dispatch_handler;

  /// Whether connections write to a plain TCP socket (not through TLS), so
  /// WriteLanes may write a frame's bytes to it directly.
  static constexpr bool plain_socket =
      std::is_same_v<typename TransportConfig::socket_type,
                     ::websocketpp::transport::asio::basic_socket::endpoint>;

  using base::base;

  /// Runs `handler` on this connection's strand: inline where the strand
  /// allows (see the class comment), otherwise queued. Never fails.
  std::error_code dispatch(dispatch_handler handler) {
    if constexpr (TransportConfig::enable_multithreading) {
      this->get_strand()->dispatch(std::move(handler));
      return std::error_code();
    } else {
      return base::dispatch(std::move(handler));
    }
  }

  using base::async_write;

  /// websocketpp's write of its queued frames (connection::write_frame),
  /// recording that it is in flight until its handler runs (writing()).
  /// Strand only, as websocketpp calls it.
  void async_write(const std::vector<::websocketpp::transport::buffer>& buffers,
                   ::websocketpp::transport::write_handler handler) {
    writing_ = true;
    // `this` lives as long as the handler: websocketpp binds its own
    // shared_ptr to the connection into it.
    base::async_write(buffers, [this, handler = std::move(handler)](const std::error_code& ec) {
      writing_ = false;
      handler(ec);
    });
  }

  /// Whether a write websocketpp started is still in flight. Strand only.
  bool writing() const noexcept { return writing_; }

 private:
  bool writing_ = false;  // strand only
};

/// websocketpp's Asio transport endpoint whose connections are
/// StrandConnection. Everything else is websocketpp's.
///
/// Thread safety: as websocketpp's transport endpoint.
template <class TransportConfig>
class StrandEndpoint : public ::websocketpp::transport::asio::endpoint<TransportConfig> {
 public:
  using type = StrandEndpoint<TransportConfig>;
  using transport_con_type = StrandConnection<TransportConfig>;
  using transport_con_ptr = typename transport_con_type::ptr;
};

}  // namespace wsreg::wspp::detail

#endif  // WSREG_WEBSOCKETPP_DETAIL_STRAND_TRANSPORT_HPP
