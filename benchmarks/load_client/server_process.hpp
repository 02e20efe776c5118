// load_client/server_process.hpp: CPU time and resident memory of another
// process (the server under test), and the host's busy CPU time, from /proc.
#ifndef WSREG_LOAD_CLIENT_SERVER_PROCESS_HPP
#define WSREG_LOAD_CLIENT_SERVER_PROCESS_HPP

#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace load_client {

namespace detail {

/// Reads up to `size - 1` bytes of `path` into `buffer` with one open/read;
/// returns the text read, or nullopt if the file cannot be read.
inline std::optional<std::string_view> read_small_file(const char* path, char* buffer,
                                                       std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::size_t used = 0;
  while (used + 1 < size) {
    const ssize_t n = ::read(fd, buffer + used, size - 1 - used);
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (used == 0) return std::nullopt;
  return std::string_view(buffer, used);
}

}  // namespace detail

/// The command name (field 2, without its parentheses) and user plus
/// system CPU time in seconds (fields 14 and 15, utime and stime, in clock
/// ticks of sysconf(_SC_CLK_TCK), 10 ms on Linux) of a /proc/.../stat line.
struct StatCpu {
  std::string name;
  double cpu_s = 0;
};

/// Reads a /proc/PID/stat or /proc/PID/task/TID/stat file; nullopt if it
/// is gone or does not parse.
///
/// Thread safety: a pure function of the file; safe from any thread.
inline std::optional<StatCpu> read_stat_cpu(const char* path) {
  char buffer[1024];
  const auto text = detail::read_small_file(path, buffer, sizeof buffer);
  if (!text) return std::nullopt;
  // Field 2, the command name, may hold spaces and parentheses: count
  // fields from the last ')'. Field 3 (state) follows it.
  const std::size_t open = text->find('(');
  const std::size_t at = text->rfind(')');
  if (open == std::string_view::npos || at == std::string_view::npos || at < open) {
    return std::nullopt;
  }
  StatCpu out;
  out.name = std::string(text->substr(open + 1, at - open - 1));
  const char* p = text->data() + at + 1;
  const char* end = text->data() + text->size();
  std::uint64_t ticks[2] = {0, 0};
  for (int field = 3; field <= 15 && p != end; ++field) {
    while (p != end && *p == ' ') ++p;
    const char* token_end = p;
    while (token_end != end && *token_end != ' ') ++token_end;
    if (field >= 14) {
      const auto result = std::from_chars(p, token_end, ticks[field - 14]);
      if (result.ec != std::errc()) return std::nullopt;
    }
    p = token_end;
  }
  const long ticks_per_s = ::sysconf(_SC_CLK_TCK);
  if (ticks_per_s <= 0) return std::nullopt;
  out.cpu_s = static_cast<double>(ticks[0] + ticks[1]) / static_cast<double>(ticks_per_s);
  return out;
}

/// User plus system CPU time `pid` has used so far, in seconds (all its
/// threads, from /proc/PID/stat). nullopt if the process is gone.
///
/// Thread safety: a pure function of the file; safe from any thread.
inline std::optional<double> process_cpu_seconds_of(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const auto stat = read_stat_cpu(path);
  if (!stat) return std::nullopt;
  return stat->cpu_s;
}

/// Every thread of `pid` now, by thread id: its name (comm, which a thread
/// may set with pthread_setname_np) and CPU time so far, in seconds, from
/// /proc/PID/task/TID/stat. Empty if the process is gone. Threads that
/// exit between two readings drop out of a difference of the two.
///
/// Thread safety: a pure function of /proc; safe from any thread.
inline std::map<long, StatCpu> thread_cpu_seconds_of(pid_t pid) {
  std::map<long, StatCpu> out;
  char path[96];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  DIR* dir = ::opendir(path);
  if (dir == nullptr) return out;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long tid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;  // "." and ".."
    std::snprintf(path, sizeof path, "/proc/%d/task/%ld/stat", static_cast<int>(pid), tid);
    if (auto stat = read_stat_cpu(path)) out.emplace(tid, std::move(*stat));
  }
  ::closedir(dir);
  return out;
}

/// CPU seconds each thread name of a process used between two readings of
/// thread_cpu_seconds_of: threads of one name (an io pool) summed; threads
/// not in both readings left out.
///
/// Thread safety: a pure function.
inline std::map<std::string, double> thread_cpu_difference(const std::map<long, StatCpu>& before,
                                                           const std::map<long, StatCpu>& after) {
  std::map<std::string, double> out;
  for (const auto& [tid, now] : after) {
    const auto then = before.find(tid);
    if (then == before.end()) continue;
    out[now.name] += now.cpu_s - then->second.cpu_s;
  }
  return out;
}

/// Resident set size of `pid`, in KiB: the VmRSS line of /proc/PID/status.
/// nullopt if the process is gone.
///
/// Thread safety: a pure function of the file; safe from any thread.
inline std::optional<std::uint64_t> process_rss_kib_of(pid_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  char buffer[4096];
  const auto text = detail::read_small_file(path, buffer, sizeof buffer);
  if (!text) return std::nullopt;
  constexpr std::string_view key = "\nVmRSS:";
  const std::size_t at = text->find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const char* p = text->data() + at + key.size();
  const char* end = text->data() + text->size();
  while (p != end && (*p == ' ' || *p == '\t')) ++p;
  std::uint64_t kib = 0;
  const auto result = std::from_chars(p, end, kib);
  if (result.ec != std::errc()) return std::nullopt;
  return kib;
}

/// CPU time all processes on this host have used so far, in seconds summed
/// over CPUs: the first line of /proc/stat less its idle and iowait fields.
/// Over a window, what it grows by beyond the server's and the client's own
/// CPU time is what other processes took. nullopt if /proc/stat is unreadable.
///
/// Thread safety: a pure function of the file; safe from any thread.
inline std::optional<double> host_busy_cpu_seconds() noexcept {
  char buffer[512];
  const auto text = detail::read_small_file("/proc/stat", buffer, sizeof buffer);
  if (!text || text->substr(0, 4) != "cpu ") return std::nullopt;
  const char* p = text->data() + 4;
  const char* end = text->data() + text->size();
  std::uint64_t busy = 0;
  // user nice system idle iowait irq softirq steal (guest time is inside user)
  for (int field = 0; field < 8; ++field) {
    while (p != end && *p == ' ') ++p;
    std::uint64_t ticks = 0;
    const auto result = std::from_chars(p, end, ticks);
    if (result.ec != std::errc()) return std::nullopt;
    p = result.ptr;
    if (field != 3 && field != 4) busy += ticks;
  }
  const long ticks_per_s = ::sysconf(_SC_CLK_TCK);
  if (ticks_per_s <= 0) return std::nullopt;
  return static_cast<double>(busy) / static_cast<double>(ticks_per_s);
}

/// Bytes the loopback interface has carried (`lo` in /proc/net/dev, its
/// receive counter, which on loopback equals its transmit counter): every
/// byte of every TCP segment on 127/8, headers included, both directions,
/// from every process of the host's network namespace. nullopt if the file
/// is unreadable or has no `lo` line.
///
/// Thread safety: a pure function of the file; safe from any thread.
inline std::optional<std::uint64_t> loopback_bytes() noexcept {
  char buffer[4096];
  const auto text = detail::read_small_file("/proc/net/dev", buffer, sizeof buffer);
  if (!text) return std::nullopt;
  const std::size_t at = text->find("lo:");
  if (at == std::string_view::npos) return std::nullopt;
  const char* p = text->data() + at + 3;
  const char* end = text->data() + text->size();
  while (p != end && *p == ' ') ++p;
  std::uint64_t bytes = 0;
  if (std::from_chars(p, end, bytes).ec != std::errc()) return std::nullopt;
  return bytes;
}

}  // namespace load_client

#endif  // WSREG_LOAD_CLIENT_SERVER_PROCESS_HPP
