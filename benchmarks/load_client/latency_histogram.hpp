// load_client/latency_histogram.hpp: fixed log-linear latency histogram.
#ifndef WSREG_LOAD_CLIENT_LATENCY_HISTOGRAM_HPP
#define WSREG_LOAD_CLIENT_LATENCY_HISTOGRAM_HPP

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace load_client {

/// Latency histogram in the HdrHistogram style, with a fixed bucket array so
/// record_ns() never allocates.
///
/// Resolution: samples are kept in whole microseconds. Below 256 µs every
/// microsecond has its own bucket (error under 1 µs); above, each power of
/// two is split into 128 linear buckets, so a bucket spans at most 1/128 of
/// its values (relative error under 0.8 %). Range: up to 2^36 µs (about 19
/// hours); longer samples go to an overflow bucket. max_ns() is exact,
/// overflow included. Negative samples (clock skew between the sender's
/// and our CLOCK_REALTIME) count as 0.
///
/// Thread safety: Not thread-safe: one epoll thread.
class LatencyHistogram {
 public:
  /// Adds one sample, in nanoseconds.
  void record_ns(std::int64_t ns) noexcept {
    if (ns < 0) ns = 0;
    ++total_;
    max_ns_ = std::max(max_ns_, ns);
    const auto us = static_cast<std::uint64_t>(ns) / 1000;
    if (us >= range_limit_us) {
      ++overflow_;
      return;
    }
    ++counts_[index_of(us)];
  }

  /// Number of samples recorded.
  std::uint64_t count() const noexcept { return total_; }

  /// Samples at or beyond the range (2^36 µs), counted but not bucketed.
  std::uint64_t overflow_count() const noexcept { return overflow_; }

  /// Largest sample, in nanoseconds (0 when empty).
  std::int64_t max_ns() const noexcept { return max_ns_; }

  /// The value at `percentile` (0..100], in nanoseconds: the highest value
  /// of the bucket holding that rank, capped at max_ns(). 0 when empty.
  std::int64_t percentile_ns(double percentile) const noexcept {
    if (total_ == 0) return 0;
    const double wanted = std::ceil(percentile / 100.0 * static_cast<double>(total_));
    const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const auto highest_ns = static_cast<std::int64_t>(bucket_end_us(i) * 1000) - 1;
        return std::min(highest_ns, max_ns_);
      }
    }
    return max_ns_;  // the rank lies in the overflow bucket
  }

 private:
  /// Linear sub-buckets per power of two above the exact range: 2^7 = 128.
  static constexpr unsigned sub_bucket_bits = 7;
  /// Values below this many µs get one bucket each.
  static constexpr std::uint64_t exact_limit_us = std::uint64_t{1} << (sub_bucket_bits + 1);
  /// Exclusive upper end of the range, in µs.
  static constexpr unsigned max_exponent = 36;
  static constexpr std::uint64_t range_limit_us = std::uint64_t{1} << max_exponent;
  static constexpr std::size_t bucket_count =
      exact_limit_us + (max_exponent - sub_bucket_bits - 1) * (std::size_t{1} << sub_bucket_bits);

  static std::size_t index_of(std::uint64_t us) noexcept {
    if (us < exact_limit_us) return static_cast<std::size_t>(us);
    unsigned exponent = 63;  // floor(log2(us)), at least sub_bucket_bits + 1
    while ((us >> exponent) == 0) --exponent;
    const unsigned shift = exponent - sub_bucket_bits;
    const std::uint64_t mantissa = us >> shift;  // in [128, 256)
    const std::size_t per_exponent = std::size_t{1} << sub_bucket_bits;
    return static_cast<std::size_t>(exact_limit_us) +
           std::size_t{exponent - sub_bucket_bits - 1} * per_exponent +
           static_cast<std::size_t>(mantissa - per_exponent);
  }

  /// Exclusive upper end of bucket `index`, in µs.
  static std::uint64_t bucket_end_us(std::size_t index) noexcept {
    if (index < exact_limit_us) return index + 1;
    const std::size_t k = index - exact_limit_us;
    const std::size_t per_exponent = std::size_t{1} << sub_bucket_bits;
    const unsigned shift = static_cast<unsigned>(k / per_exponent) + 1;
    const std::uint64_t mantissa = per_exponent + k % per_exponent;
    return (mantissa + 1) << shift;
  }

  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t overflow_ = 0;
  std::uint64_t total_ = 0;
  std::int64_t max_ns_ = 0;
};

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_LATENCY_HISTOGRAM_HPP
