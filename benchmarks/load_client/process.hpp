// load_client/process.hpp: process-wide facts: open-file limit, CPU time, clocks.
#ifndef WSREG_LOAD_CLIENT_PROCESS_HPP
#define WSREG_LOAD_CLIENT_PROCESS_HPP

#include <sys/resource.h>
#include <time.h>

#include <cstdint>

namespace load_client {

/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit and
/// returns the soft limit in force afterwards (one descriptor per connection).
///
/// Thread safety: changes a process-wide limit; call once at start.
inline std::uint64_t raise_open_file_limit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

/// CPU time this process has used so far, user plus system, in seconds
/// (getrusage RUSAGE_SELF).
///
/// Thread safety: safe from any thread.
inline double process_cpu_seconds() noexcept {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// CLOCK_REALTIME in nanoseconds since the epoch: the clock the server
/// stamps ticks with, so latency compares like with like on one host.
///
/// Thread safety: safe from any thread.
inline std::int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_PROCESS_HPP
