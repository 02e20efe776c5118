#!/usr/bin/env bash
# Installs the Debian 12 packages that wsreg needs, when one is missing.
# Idempotent: does nothing when all are present. As root it runs apt-get;
# otherwise it prints the command to run and exits 1.
#   scripts/install-deps.sh        everything: build, tests, examples, benchmarks
#   scripts/install-deps.sh demo   only what `make demo` builds and runs
set -euo pipefail

# What make demo needs: broadcast_server, the load client, and the demo
# script's jq and curl.
demo_packages=(
  cmake make g++
  libasio-dev          # standalone Asio 1.22.1
  libwebsocketpp-dev   # websocketpp 0.8.2
  libssl-dev           # OpenSSL: wsreg::websocketpp links it (websocketpp's TLS transport)
  zlib1g-dev           # zlib: wsreg::websocketpp links it (permessage-deflate)
  libcli11-dev         # CLI11 (command-line arguments of examples and tools)
  nlohmann-json3-dev   # nlohmann/json (load client report, tests that read it)
  jq                   # reads the load client's JSON report in scripts/demo.sh
  curl                 # scripts/demo.sh reads /metrics
)
# The rest of the build: tests, e2e tests, sanitizers, benchmarks.
more_packages=(
  catch2               # Catch2 2.13.10 (tests)
  openssl              # the openssl command: TLS tests make their certificate with it
  chromium             # Debian's Chromium: the browser of the chat e2e test (tests/e2e)
  nodejs               # Node.js: runs the e2e tests (tests/e2e)
  npm                  # installs their npm modules (scripts/install-npm-deps.sh)
  libtsan2 libasan8 libubsan1  # sanitizer runtimes for make check
  libbenchmark-dev     # Google Benchmark (benchmarks/inproc)
  gnuplot-nox          # plots of make bench (docs/img)
  libhiredis-dev       # hiredis 0.14: the Redis backplane (wsreg/redis_backplane.hpp)
  redis-server         # Redis 7.0: the cluster tests start their own on an ephemeral port
  libnats-dev          # the NATS C client 3.4: the NATS backplane (wsreg/nats_backplane.hpp)
  nats-server          # NATS 2.9: the cluster tests start their own on an ephemeral port
)

case "${1:-all}" in
  demo) packages=("${demo_packages[@]}") ;;
  all) packages=("${demo_packages[@]}" "${more_packages[@]}") ;;
  *) echo "usage: $0 [all|demo]" >&2; exit 2 ;;
esac

# These two count as present when their command is: a Node.js from elsewhere
# will do (NodeSource's nodejs package bundles npm and conflicts with
# Debian's npm package, which apt-get would then try to swap in).
declare -A present_as_command=([nodejs]=node [npm]=npm)

missing=()
for p in "${packages[@]}"; do
  if [ -n "${present_as_command[$p]:-}" ] && command -v "${present_as_command[$p]}" >/dev/null; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "wsreg: missing packages: ${missing[*]}" >&2
  echo "wsreg: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "wsreg: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
