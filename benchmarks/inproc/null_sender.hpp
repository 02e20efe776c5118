// benchmarks/inproc/null_sender.hpp: a Sender that only counts, and the
// fixtures every benchmark shares (the senders, the payload).
#ifndef WSREG_BENCH_INPROC_NULL_SENDER_HPP
#define WSREG_BENCH_INPROC_NULL_SENDER_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"

namespace inproc {

/// Bytes in the payload of every benchmark: one small message, the same for
/// every variant, so only the delivery path differs.
inline constexpr std::size_t payload_bytes = 64;

/// A Sender that does no I/O: it counts the payloads it is given and
/// accepts them all. What is left of a delivery is what the registry costs.
///
/// Thread safety: Distinct objects: Safe. Shared objects: Safe (one relaxed
/// atomic per sender, so concurrent deliveries to different senders share
/// no cache line but the payload's).
class NullSender final : public wsreg::Sender {
 public:
  /// Counts one delivery. Thread-safe, never blocks.
  wsreg::SendResult send(const wsreg::Payload& /*payload*/) noexcept override {
    count_.fetch_add(1, std::memory_order_relaxed);
    return wsreg::SendResult::sent;
  }

  /// Deliveries so far. Thread-safe; exact once the deliveries are ordered
  /// before the call (after ActorPolicy's flush, or a thread join).
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> count_{0};
};

using NullSenders = std::vector<std::shared_ptr<NullSender>>;

/// `n` fresh senders, allocated one after the other (as the registry's
/// users would, one per accepted connection).
inline NullSenders make_senders(std::size_t n) {
  NullSenders senders;
  senders.reserve(n);
  for (std::size_t i = 0; i < n; ++i) senders.push_back(std::make_shared<NullSender>());
  return senders;
}

/// The sum of the senders' counts: every delivery made to them.
inline std::uint64_t delivered(const NullSenders& senders) {
  std::uint64_t total = 0;
  for (const auto& s : senders) total += s->count();
  return total;
}

/// The benchmark payload: payload_bytes of binary data.
inline wsreg::Payload make_payload() {
  return wsreg::Payload::binary(std::string(payload_bytes, 'x'));
}

}  // namespace inproc

#endif  // WSREG_BENCH_INPROC_NULL_SENDER_HPP
