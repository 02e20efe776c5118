# What the cluster backplane targets need, found the same way by wsreg's own
# build and by its installed package config (wsregConfig.cmake), so the
# exported targets name the same things:
#   PkgConfig::WSREG_HIREDIS  hiredis (Debian libhiredis-dev 0.14): wsreg::redis
#   PkgConfig::WSREG_LIBNATS  the NATS C client (Debian libnats-dev 3.4): wsreg::nats
# Both through pkg-config: Debian's cnats CMake config names a
# libnats_static.a that the package does not ship, so find_package(cnats)
# fails, and hiredis 0.14's config defines variables, not a target. Sets
# WSREG_HIREDIS_FOUND and WSREG_LIBNATS_FOUND; never fails by itself.
include_guard(DIRECTORY)

find_package(Threads QUIET)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  if(NOT TARGET PkgConfig::WSREG_HIREDIS)
    pkg_check_modules(WSREG_HIREDIS QUIET IMPORTED_TARGET GLOBAL hiredis)
  else()
    set(WSREG_HIREDIS_FOUND TRUE)
  endif()
  if(NOT TARGET PkgConfig::WSREG_LIBNATS)
    pkg_check_modules(WSREG_LIBNATS QUIET IMPORTED_TARGET GLOBAL libnats)
  else()
    set(WSREG_LIBNATS_FOUND TRUE)
  endif()
endif()
