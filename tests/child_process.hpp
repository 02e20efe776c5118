// tests/child_process.hpp: run a program as a child process and read its stdout.
#ifndef WSREG_TESTS_CHILD_PROCESS_HPP
#define WSREG_TESTS_CHILD_PROCESS_HPP

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

extern char** environ;

namespace wsreg_test {

/// A child process with its stdout on a pipe the test reads. The destructor
/// kills (SIGKILL) and reaps it if it still runs, so a failing test never
/// leaves it behind. The child inherits no descriptor but stdin, stdout
/// (the pipe) and stderr (the test's, or `stderr_fd`), so its descriptor
/// count is its own. Not thread-safe.
class ChildProcess {
 public:
  /// Starts `argv[0]` with `argv`; check started(). `stderr_fd` >= 0
  /// replaces the child's stderr.
  explicit ChildProcess(const std::vector<std::string>& argv, int stderr_fd = -1) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  ~ChildProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  /// Reads stdout until EOF or `timeout`; returns what was read.
  std::string read_all(std::chrono::milliseconds timeout) {
    return read_until(timeout, [](const std::string&) { return false; });
  }

  /// Reads stdout until a whole line (or EOF, or `timeout`); returns what was
  /// read, which ends with '\n' when a line came.
  std::string read_line(std::chrono::milliseconds timeout) {
    return read_until(timeout,
                      [](const std::string& text) { return text.find('\n') != std::string::npos; });
  }

  /// Waits for the child to exit within `timeout`; returns its exit status,
  /// 128 + the signal if a signal ended it, or -1 if it did not exit (it is
  /// then killed by the destructor).
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      pollfd none{-1, 0, 0};
      ::poll(&none, 0, 10);  // no child-exit event to wait on without a SIGCHLD handler
    }
    return -1;
  }

 private:
  template <class Done>
  std::string read_until(std::chrono::milliseconds timeout, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string text;
    char buf[4096];
    while (!done(text)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    return text;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
};

/// The number of file descriptors process `pid` has open (/proc/<pid>/fd;
/// for this process that includes the one used to list them).
inline std::size_t open_fds(pid_t pid) {
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) return 0;
  std::size_t n = 0;
  while (const dirent* entry = ::readdir(dir)) n += entry->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

/// Resident set size of this process, in KiB (VmRSS in /proc/self/status).
inline long rss_kib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib;
}

}  // namespace wsreg_test

#endif
