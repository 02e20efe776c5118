#!/usr/bin/env bash
# RFC 6455 conformance: the Autobahn|Testsuite fuzzingclient (cases 1.* to
# 10.* by default) against build/examples/echo_server under ActorPolicy,
# under MutexPolicy, and under each with 2 io threads. Fails on any FAILED or
# NON-STRICT case, or if the server exits.
#
#   scripts/conformance.sh [BUILD_DIR]   (env: AUTOBAHN=../shared/autobahn, CASES=...)
#
# The suite is not part of wsreg: it is looked for in $AUTOBAHN (default
# ../shared/autobahn beside the repository, where this project's CI machines
# have it). Without it this prints why and exits 0.
set -uo pipefail

build=${1:-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
autobahn=${AUTOBAHN:-$here/../shared/autobahn}
server="$build/examples/echo_server"

if [ ! -x "$autobahn/run.sh" ]; then
  echo "conformance: skipped: no Autobahn|Testsuite at $autobahn (set AUTOBAHN to its run.sh's folder)"
  exit 0
fi
[ -x "$server" ] || { echo "conformance: $server is missing; run 'make build' first" >&2; exit 1; }

failed=()
for policy in actor mutex; do
  for threads in 1 2; do
    name="$policy, $threads io thread(s)"
    echo "conformance: $name"
    # 9.* sends messages of up to 16 MiB: echo_server must take them.
    log=$(mktemp)
    out=$(mktemp -d)
    OUT=$out "$autobahn/run.sh" "$server" --policy "$policy" --threads "$threads" \
      --max-message-size 16777216 >"$log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
      grep -E '^autobahn: [0-9]+ cases' "$log"
    else
      cat "$log"
      failed+=("$name")
    fi
    rm -rf "$log" "$out"
  done
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "conformance: FAILED under: ${failed[*]}"
  exit 1
fi
echo "conformance: every case OK or INFORMATIONAL under both policies, 1 and 2 io threads"
