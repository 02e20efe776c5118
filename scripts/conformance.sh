#!/usr/bin/env bash
# RFC 6455 conformance: the Autobahn|Testsuite fuzzingclient (cases 1.* to
# 10.* by default) against build/examples/echo_server under ActorPolicy,
# under MutexPolicy, and under each with 2 io threads, those two on
# DeflateConfig (--deflate: the suite's 1.*-10.* offer no extension, so they
# check its framing fixes); then permessage-deflate (RFC 7692) against
# echo_server --deflate under each policy: by default the 12.* and 13.* cases
# X.Y.1, X.Y.4 and X.Y.11 (16-byte, 1 KiB and 8 KiB-in-256-byte-fragments
# messages, for every payload kind of 12.* and every parameter set of 13.*:
# 36 cases, ~25 s; the suite's patterns are regular expressions matched at
# the start of a case id, so "12.*.1" alone would take 12.1.10-18 too, hence
# the "$"); DEFLATE_CASES="12.*,13.*" runs all 216 (~22 minutes per policy,
# most of it the suite's Python client on the 128 KiB messages).
# Fails on any FAILED or NON-STRICT case, or if the server exits.
#
#   scripts/conformance.sh [BUILD_DIR]
#   (env: AUTOBAHN=../shared/autobahn, CASES=..., DEFLATE_CASES=...; none skips them)
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
# One run of the suite against echo_server: `name` for the report, `cases`
# for run.sh's CASES (empty: its default, 1.*-10.*), then echo_server's
# arguments. Prints the summary line, or the whole log and records `name`
# as failed.
run_suite() {
  local name=$1 cases=$2 log out
  shift 2
  echo "conformance: $name"
  log=$(mktemp)
  out=$(mktemp -d)
  if CASES=$cases OUT=$out "$autobahn/run.sh" "$server" "$@" >"$log" 2>&1; then
    grep -E '^autobahn: [0-9]+ cases' "$log"
  else
    cat "$log"
    failed+=("$name")
  fi
  rm -rf "$log" "$out"
}

for policy in actor mutex; do
  for threads in 1 2; do
    deflate=()
    [ "$threads" = 2 ] && deflate=(--deflate)
    # 9.* sends messages of up to 16 MiB: echo_server must take them.
    run_suite "$policy, $threads io thread(s)${deflate:+, DeflateConfig}" "${CASES:-}" \
      --policy "$policy" --threads "$threads" --max-message-size 16777216 "${deflate[@]}"
  done
done

deflate_cases=${DEFLATE_CASES:-12.*.1$,12.*.4$,12.*.11$,13.*.1$,13.*.4$,13.*.11$}
if [ "$deflate_cases" != none ]; then
  for policy in actor mutex; do
    run_suite "$policy, permessage-deflate ($deflate_cases)" "$deflate_cases" \
      --policy "$policy" --deflate
  done
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "conformance: FAILED under: ${failed[*]}"
  exit 1
fi
echo "conformance: every case OK or INFORMATIONAL under both policies, 1 and 2 io threads" \
  "$([ "$deflate_cases" != none ] && echo "(and $deflate_cases with permessage-deflate)")"
