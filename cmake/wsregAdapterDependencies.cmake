# What the websocketpp adapter target (wsreg::websocketpp) needs, found the
# same way by wsreg's own build and by its installed package config
# (wsregConfig.cmake), so the exported target names the same things:
#   websocketpp::websocketpp  websocketpp 0.8.2's own package (headers)
#   wsreg::asio               standalone Asio's headers (Asio ships no CMake
#                             package; found here by asio.hpp)
#   OpenSSL::SSL, OpenSSL::Crypto  websocketpp's TLS transport (asio_tls)
#   ZLIB::ZLIB                websocketpp's permessage-deflate extension
#   Threads::Threads          (through wsreg::wsreg)
# Sets WSREG_ADAPTER_DEPENDENCIES_FOUND, and WSREG_ADAPTER_DEPENDENCIES_MISSING
# to the list of what was not found. Never fails by itself: the caller
# decides (the build stops; the package config leaves the component out).
include_guard(DIRECTORY)

set(WSREG_ADAPTER_DEPENDENCIES_MISSING "")

find_package(Threads QUIET)
if(NOT Threads_FOUND)
  list(APPEND WSREG_ADAPTER_DEPENDENCIES_MISSING "Threads")
endif()

# Exactly 0.8.2: its package accepts only its own version, and the adapter
# patches 0.8.2 (detail/hybi13_fixes.hpp).
find_package(websocketpp 0.8.2 QUIET)
if(NOT websocketpp_FOUND OR NOT TARGET websocketpp::websocketpp)
  list(APPEND WSREG_ADAPTER_DEPENDENCIES_MISSING "websocketpp 0.8.2 (Debian: libwebsocketpp-dev)")
endif()

if(NOT TARGET wsreg::asio)
  find_path(WSREG_ASIO_INCLUDE_DIR asio.hpp
            DOC "Directory holding standalone Asio's asio.hpp (Debian: libasio-dev)")
  if(WSREG_ASIO_INCLUDE_DIR)
    add_library(wsreg::asio INTERFACE IMPORTED)
    set_target_properties(wsreg::asio PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${WSREG_ASIO_INCLUDE_DIR}")
  else()
    list(APPEND WSREG_ADAPTER_DEPENDENCIES_MISSING "standalone Asio (Debian: libasio-dev)")
  endif()
endif()

find_package(OpenSSL QUIET)
if(NOT TARGET OpenSSL::SSL OR NOT TARGET OpenSSL::Crypto)
  list(APPEND WSREG_ADAPTER_DEPENDENCIES_MISSING "OpenSSL (Debian: libssl-dev)")
endif()

find_package(ZLIB QUIET)
if(NOT TARGET ZLIB::ZLIB)
  list(APPEND WSREG_ADAPTER_DEPENDENCIES_MISSING "ZLIB (Debian: zlib1g-dev)")
endif()

if(WSREG_ADAPTER_DEPENDENCIES_MISSING)
  set(WSREG_ADAPTER_DEPENDENCIES_FOUND FALSE)
else()
  set(WSREG_ADAPTER_DEPENDENCIES_FOUND TRUE)
endif()
