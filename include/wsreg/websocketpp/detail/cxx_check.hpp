// wsreg/websocketpp/detail/cxx_check.hpp: stops a build that websocketpp
// 0.8.2 cannot survive, with one message saying why and what to do.
//
// Included first by every adapter header that brings websocketpp in.
// websocketpp 0.8.2 spells constructors and destructors with template
// arguments (`basic<concurrency, names>::basic(...)`, logger/basic.hpp and
// others), which C++20 forbids (CWG 2237) and GCC enforces from GCC 11:
// compiled as C++20, GCC 12 reports 13 errors inside websocketpp's headers.
// Clang (14) accepts them, so the check is for GCC only. Define
// WSREG_SKIP_CXX20_CHECK if you build against a websocketpp patched for C++20.
#ifndef WSREG_WEBSOCKETPP_DETAIL_CXX_CHECK_HPP
#define WSREG_WEBSOCKETPP_DETAIL_CXX_CHECK_HPP

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && __cplusplus > 201703L && \
    !defined(WSREG_SKIP_CXX20_CHECK)
#error "wsreg: websocketpp 0.8.2 does not compile as C++20 with GCC 11 or later; compile this file as C++17 (-std=c++17; with CMake: set_target_properties(app PROPERTIES CXX_STANDARD 17))"
// #error does not stop GCC: without this, websocketpp's 13 errors would
// follow. A missing header is fatal, so compilation ends here.
#include "wsreg/websocketpp/detail/compilation-stopped-by-the-error-above"
#endif

#endif  // WSREG_WEBSOCKETPP_DETAIL_CXX_CHECK_HPP
