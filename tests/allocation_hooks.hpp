// tests/allocation_hooks.hpp: counts every allocation made through the
// replaced global operator new (allocation_hooks.cpp), and fails chosen ones.
// Link allocation_hooks.cpp into exactly one test executable: it replaces
// operator new and delete for the whole program.
#ifndef WSREG_TESTS_ALLOCATION_HOOKS_HPP
#define WSREG_TESTS_ALLOCATION_HOOKS_HPP

namespace wsreg_test::alloc {

/// Allocations made so far by any thread (every operator new and new[]
/// form, the nothrow ones included). Thread-safe.
long count() noexcept;

/// Arms the calling thread: its `n`th allocation from now on (n >= 1) throws
/// std::bad_alloc, once; the others succeed. n = 0 disarms. Only this
/// thread's allocations count down. Not thread-safe across threads by
/// design: each thread has its own countdown.
void fail_nth_here(long n) noexcept;

/// Disarms the calling thread and tells whether its armed failure was
/// injected since the last fail_nth_here().
bool disarm_here() noexcept;

/// While one lives, the calling thread's allocations neither count down nor
/// fail: for test code that must allocate while a failure is armed.
class Paused {
 public:
  Paused() noexcept;
  ~Paused();
  Paused(const Paused&) = delete;
  Paused& operator=(const Paused&) = delete;
};

}  // namespace wsreg_test::alloc

#endif
