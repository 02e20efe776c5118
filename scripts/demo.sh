#!/usr/bin/env bash
# For each policy: start broadcast_server, drive real WebSocket connections
# with the load client, stop the server with SIGTERM, and print one table.
# Exits non-zero on any lost tick, starved connection, connection failure or
# message dropped for backpressure; the last line of its output says whether
# the run passed. `make demo` builds the two programs it needs first.
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
  [ -x "$bin" ] || { echo "demo: FAILED: $bin is missing; run 'make demo', which builds it"; exit 1; }
done

workdir=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

failed=0
reasons=()   # why the run failed, one phrase each
rows=()
refused_total=0
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
    echo "demo: FAILED: broadcast_server ($policy) did not start"
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
    reasons+=("$policy: server exited with $server_rc")
  fi
  if [ "$client_rc" -ne 0 ] || ! jq -e . "$report" >/dev/null 2>&1; then
    echo "demo: load client ($policy) failed with $client_rc" >&2
    cat "$report" >&2
    failed=1
    reasons+=("$policy: load client failed with $client_rc")
    rows+=("$(printf '%-7s %11s %16s %8s %9s %9s %9s' "$policy" "-" "-" "-" "-" "-" "-")")
    continue
  fi

  read -r open ticks lost min_ticks p50 p99 < <(jq -r \
    '[.connections_open, .ticks, .lost, .min_ticks_per_connection,
      .latency_ms.p50, .latency_ms.p99] | @tsv' "$report")
  # From the server's /metrics, read after the client left: every message
  # the registry did not deliver (wsreg_messages_dropped_total), of which
  # those refused by a connection's bound (backpressure, real loss for a
  # client that stayed); the rest met connections already closing.
  metric() { sed -n "s/^$1 \([0-9]*\)$/\1/p" <<<"$metrics"; }
  dropped=$(metric wsreg_messages_dropped_total)
  backpressure=$(metric wsreg_backpressure_drops_total)
  slow_closes=$(metric wsreg_slow_consumer_closes_total)
  refused="-"
  if [ -n "$dropped" ] && [ -n "$backpressure" ]; then
    refused=$((dropped - backpressure))
    refused_total=$((refused_total + refused))
  else
    echo "demo: $policy: could not read the server's /metrics" >&2
  fi
  rows+=("$(printf '%-7s %11s %16s %8s %9.3f %9.3f %9s' "$policy" "$open" "$ticks" "$lost" "$p50" "$p99" "$refused")")
  if [ "$lost" -ne 0 ] || [ "$open" -ne "$connections" ] || [ "$min_ticks" -eq 0 ]; then
    echo "demo: $policy: lost $lost ticks, $open of $connections open, min ticks per connection $min_ticks" >&2
    failed=1
    reasons+=("$policy: $lost ticks lost, $open of $connections connections open, fewest ticks to one connection $min_ticks")
  fi
  if [ "${backpressure:-0}" -ne 0 ] || [ "${slow_closes:-0}" -ne 0 ]; then
    failed=1
    reasons+=("$policy: $backpressure messages dropped for backpressure, $slow_closes slow-consumer closes")
  fi
done

echo
printf '%-7s %11s %16s %8s %9s %9s %9s\n' policy connections "ticks delivered" lost "p50 ms" "p99 ms" "refused*"
printf '%s\n' "${rows[@]}"
echo
echo "* refused: ticks the server broadcast while the load client was closing its"
echo "  connections at the end of the run. Those connections were already closing, so"
echo "  they refused the ticks and the registry counted them as dropped"
echo "  (wsreg_messages_dropped_total). That is not loss: the client had stopped"
echo "  reading, and 'lost' counts the gaps in what each connection received."
echo "  Drops for backpressure (a client that could not keep up) would fail the run."
echo
if [ "$failed" -ne 0 ]; then
  summary=$(IFS=';'; echo "${reasons[*]}")
  echo "demo: FAILED: ${summary//;/; }"
  exit 1
fi
echo "demo: PASSED: actor and mutex each delivered every tick to all $connections connections for ${duration} s, 0 lost (${refused_total} refused while closing, not loss)"
