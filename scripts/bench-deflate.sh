#!/usr/bin/env bash
# permessage-deflate benchmark (RFC 7692): JSON ticks of TICK_BYTES to N
# connections, with no compression, websocketpp compressing per connection,
# and wsreg compressing once for all.
#   scripts/bench-deflate.sh [BUILD_DIR]        (BUILD_DIR defaults to build)
#
# Variants (wsreg_bench_server --compression C, see benchmarks/e2e/README.md):
#   none            wsreg::wspp::Config: nothing negotiated, ticks framed once
#   websocketpp     websocketpp 0.8.2's own extension (enabled<>), compressed
#                   per connection, context takeover kept (the load client
#                   does not ask for server_no_context_takeover)
#   per-connection  wsreg's extension, frame_once off: websocketpp compresses
#                   a copy per connection, no context takeover
#   once            wsreg's extension, frame_once on: compressed once, the same
#                   frame on every connection
# Kinds: latency (--rate LATENCY_RATE, bound 1 MiB) and throughput (--rate
# OFFERED/N, bound 65536); both start ticking once all N are open.
# The load client always offers permessage-deflate (--deflate) and reports
# ticks, data_bytes (wire bytes of the data frames it read, headers included,
# before inflation), the server's CPU over the window, and loopback_bytes_window
# (/proc/net/dev lo: everything on 127/8, TCP/IP headers and acks included).
#
# Environment: N (5000), TICK_BYTES (1024), VARIANTS ("none websocketpp
# per-connection once"), KINDS ("latency throughput"), RUNS (1), DURATION (10),
# LATENCY_RATE (10), OFFERED (1000000), POLICY (mutex), SOURCE_ADDRESSES (3),
# OUT (benchmarks/results/deflate.csv), KEEP_JSON (0; 1 keeps each run's client
# report and server log beside OUT).
# Prints one table row per run and appends it to OUT as CSV. Exit status 1 if a
# server or client failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build="$PWD/$build" ;; esac
server_bin=$build/benchmarks/e2e/wsreg_bench_server
client_bin=$build/benchmarks/wsreg_load_client
for bin in "$server_bin" "$client_bin"; do
  [ -x "$bin" ] || { echo "bench-deflate: $bin missing (build wsreg_bench_server wsreg_load_client)" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "bench-deflate: needs jq" >&2; exit 2; }

n=${N:-5000}
tick_bytes=${TICK_BYTES:-1024}
variants=${VARIANTS:-"none websocketpp per-connection once"}
kinds=${KINDS:-"latency throughput"}
runs=${RUNS:-1}
duration=${DURATION:-10}
latency_rate=${LATENCY_RATE:-10}
offered=${OFFERED:-1000000}
policy=${POLICY:-mutex}
source_addresses=${SOURCE_ADDRESSES:-3}
out=${OUT:-$root/benchmarks/results/deflate.csv}
work=$(mktemp -d "${TMPDIR:-/tmp}/wsreg-bench-deflate.XXXXXX")
server_pid=""
trap '[ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

mkdir -p "$(dirname "$out")"
[ -s "$out" ] || echo "kind,variant,n,tick_bytes,run,rate,ticks,lost,errors,server_cpu_s,server_rss_kib,data_bytes,compressed_bytes,loopback_bytes,us_cpu_per_frame,wire_bytes_per_frame,loopback_bytes_per_frame" >"$out"
printf '%-10s %-15s %6s %10s %6s %8s %11s %10s %10s %9s\n' kind variant n ticks lost cpu_s us/frame wire_B/fr lo_B/fr rss_MiB
failures=0
for kind in $kinds; do
  case $kind in
    latency) rate=$latency_rate bound=1048576 ;;
    throughput) rate=$(awk -v o="$offered" -v n="$n" 'BEGIN {printf "%.6g", o / n}') bound=65536 ;;
    *) echo "bench-deflate: unknown kind $kind" >&2; exit 2 ;;
  esac
  for variant in $variants; do
    for run in $(seq "$runs"); do
      log=$work/server.log report=$work/client.json
      "$server_bin" --policy "$policy" --address 127.0.0.1 --port 0 --rate "$rate" \
        --max-buffered-bytes "$bound" --start-after-connections "$n" \
        --compression "$variant" --tick-bytes "$tick_bytes" >"$log" 2>&1 &
      server_pid=$!
      port=""
      for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        sleep 0.1
      done
      [ -n "$port" ] || { echo "bench-deflate: server did not start" >&2; cat "$log" >&2; exit 1; }
      # As bench-e2e.sh: let the server settle. Without it a run right after a
      # heavy one was refused whole (5000 connect_refused) once in 24 runs.
      sleep 0.2
      rc=0
      timeout 300 "$client_bin" --url "ws://127.0.0.1:$port/" --connections "$n" \
        --duration "$duration" --connect-timeout 60 --source-addresses "$source_addresses" \
        --server-pid "$server_pid" --deflate --json >"$report" || rc=$?
      kill -TERM "$server_pid" 2>/dev/null || true
      wait "$server_pid" || true
      server_pid=""
      if [ "$rc" -gt 1 ] || ! jq -e . "$report" >/dev/null 2>&1 ||
         [ "$(jq .connections_open "$report")" -eq 0 ]; then
        echo "bench-deflate: $kind $variant run $run: client failed ($rc)" >&2
        failures=$((failures + 1))
        continue
      fi
      row=$(jq -r --arg k "$kind" --arg v "$variant" --arg n "$n" --arg t "$tick_bytes" \
        --arg r "$run" --arg rate "$rate" '
        def per(x): if .ticks > 0 then x / .ticks else 0 end;
        [$k, $v, $n, $t, $r, $rate, .ticks, .lost, .errors, .server_cpu_window_s,
         .server_rss_kib, .data_bytes, .compressed_bytes, .loopback_bytes_window,
         (per(.server_cpu_window_s * 1e6) * 100 | round / 100),
         (per(.data_bytes) * 10 | round / 10),
         (per(.loopback_bytes_window // 0) * 10 | round / 10)] | @csv' "$report" | tr -d '"')
      echo "$row" >>"$out"
      if [ "${KEEP_JSON:-0}" = 1 ]; then
        cp "$report" "${out%.csv}-$kind-$variant-$n-$run.json"
        cp "$log" "${out%.csv}-$kind-$variant-$n-$run.server.log"
      fi
      IFS=, read -r k v nn _ _ _ ticks lost _ cpu rss _ _ _ us wire lo <<<"$row"
      printf '%-10s %-15s %6s %10s %6s %8s %11s %10s %10s %9s\n' "$k" "$v" "$nn" "$ticks" \
        "$lost" "$cpu" "$us" "$wire" "$lo" "$(awk -v r="$rss" 'BEGIN {printf "%.0f", r / 1024}')"
    done
  done
done
[ "$failures" -eq 0 ]
