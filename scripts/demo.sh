#!/usr/bin/env bash
# For each policy: start broadcast_server, drive real WebSocket connections
# with the load client, stop the server with SIGTERM, and print one table.
# Exits non-zero on any lost tick, starved connection or connection failure.
#   scripts/demo.sh [BUILD_DIR]   (env: CONNECTIONS=1000 DURATION=10 RATE=10 THREADS=1)
set -euo pipefail

build=${1:-build}
connections=${CONNECTIONS:-1000}
duration=${DURATION:-10}
rate=${RATE:-10}
threads=${THREADS:-1}
server_bin="$build/examples/broadcast_server"
client_bin="$build/benchmarks/wsreg_load_client"
for bin in "$server_bin" "$client_bin"; do
  [ -x "$bin" ] || { echo "demo: $bin is missing; run 'make build' first" >&2; exit 1; }
done

workdir=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

failed=0
rows=()
for policy in actor mutex; do
  log="$workdir/server-$policy.log"
  "$server_bin" --address 127.0.0.1 --port 0 --policy "$policy" --threads "$threads" \
    --rate "$rate" >"$log" 2>&1 &
  server_pid=$!

  # The server prints its port once it listens; wait for it (10 s deadline).
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "demo: broadcast_server ($policy) did not start:" >&2
    cat "$log" >&2
    exit 1
  fi

  echo "demo: $policy: $connections connections for ${duration} s at ${rate} Hz on port $port ..." >&2
  report="$workdir/report-$policy.json"
  client_rc=0
  "$client_bin" --url "ws://127.0.0.1:$port/" --connections "$connections" \
    --duration "$duration" --json >"$report" || client_rc=$?
  metrics=$(curl -s "http://127.0.0.1:$port/metrics" || true)

  kill -TERM "$server_pid"
  server_rc=0
  wait "$server_pid" || server_rc=$?
  server_pid=""
  if [ "$server_rc" -ne 0 ]; then
    echo "demo: broadcast_server ($policy) exited with $server_rc:" >&2
    cat "$log" >&2
    failed=1
  fi
  if [ "$client_rc" -ne 0 ] || ! jq -e . "$report" >/dev/null 2>&1; then
    echo "demo: load client ($policy) failed with $client_rc" >&2
    cat "$report" >&2
    failed=1
    rows+=("$(printf '%-7s %11s %16s %8s %9s %9s' "$policy" "-" "-" "-" "-" "-")")
    continue
  fi

  read -r open ticks lost min_ticks p50 p99 < <(jq -r \
    '[.connections_open, .ticks, .lost, .min_ticks_per_connection,
      .latency_ms.p50, .latency_ms.p99] | @tsv' "$report")
  rows+=("$(printf '%-7s %11s %16s %8s %9.3f %9.3f' "$policy" "$open" "$ticks" "$lost" "$p50" "$p99")")
  dropped=$(sed -n 's/^wsreg_messages_dropped_total \([0-9]*\)$/\1/p' <<<"$metrics")
  if [ "$lost" -ne 0 ] || [ "$open" -ne "$connections" ] || [ "$min_ticks" -eq 0 ]; then
    echo "demo: $policy: lost $lost ticks, $open of $connections open, min ticks per connection $min_ticks" >&2
    failed=1
  fi
  # Ticks sent while the client was leaving meet connections already closing:
  # websocketpp refuses them and the registry counts them as dropped.
  [ -z "$dropped" ] || echo "demo: $policy: server /metrics after the client left: ${dropped} messages dropped" >&2
done

echo
printf '%-7s %11s %16s %8s %9s %9s\n' policy connections "ticks delivered" lost "p50 ms" "p99 ms"
printf '%s\n' "${rows[@]}"
if [ "$failed" -ne 0 ]; then
  echo "demo: FAILED (see above)" >&2
  exit 1
fi
