// tests/allocation_hooks.cpp: the replaced global allocation functions behind
// allocation_hooks.hpp. Every replaceable form of operator new and delete
// that the program may call is replaced, and each delete matches its new
// (malloc and free underneath), so no pointer crosses from our new to the
// library's delete or back. They live in their own translation unit so that
// no call site sees their bodies: inlined into a new-expression's caller,
// GCC 12 at -O3 paired our free() with that new-expression and rejected the
// program with -Werror=mismatched-new-delete (a false positive, since free
// is exactly what our operator delete must call). The aligned forms
// (std::align_val_t) are left to the library: they pair only with each other.
#include "allocation_hooks.hpp"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

std::atomic<long> allocations{0};

// Per thread: allocations left before the injected failure (0: none armed),
// whether it was injected, and how many Paused guards are alive.
thread_local long countdown = 0;
thread_local bool injected = false;
thread_local int paused = 0;

void* allocate(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (paused == 0 && countdown > 0 && --countdown == 0) {
    injected = true;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* allocate(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

namespace wsreg_test::alloc {

long count() noexcept { return allocations.load(std::memory_order_relaxed); }

void fail_nth_here(long n) noexcept {
  countdown = n < 0 ? 0 : n;
  injected = false;
}

bool disarm_here() noexcept {
  countdown = 0;
  const bool was = injected;
  injected = false;
  return was;
}

Paused::Paused() noexcept { ++paused; }
Paused::~Paused() { --paused; }

}  // namespace wsreg_test::alloc

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t& tag) noexcept {
  return allocate(size, tag);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return allocate(size, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
