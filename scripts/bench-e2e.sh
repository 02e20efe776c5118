#!/usr/bin/env bash
# End-to-end broadcast benchmark: which server delivers a broadcast best.
#   scripts/bench-e2e.sh [BUILD_DIR]        (BUILD_DIR defaults to build)
#
# Variants (each its own process, same CLI, same tick, same backpressure check;
# see benchmarks/e2e/README.md):
#   actor, mutex             wsreg_bench_server --policy P --frame-once on
#   actor-copy, mutex-copy   wsreg_bench_server --policy P --frame-once off
#   actor-publish, mutex-publish  wsreg_bench_server --policy P --publish: every
#                            connection in one topic, ticks published to it
#   actor-nolanes, mutex-nolanes  the same with --write-lanes off (ServerOptions::write_lanes:
#                            one post per recipient, no direct socket writes; not by default)
#   raw                      raw_wspp_server (websocketpp's own broadcast pattern)
#   node                     node benchmarks/e2e/ws_server.js (npm ws)
#   uws                      uws_bench_server (uWebSockets' own publish to one topic); only
#                            where it was built (CMake UWS_DIR and USOCKETS_DIR, see
#                            benchmarks/e2e/README.md): in the default set when
#                            BUILD_DIR/benchmarks/e2e/uws_bench_server exists, else skipped
#                            with a message
#   raw-rb4096, raw-rb1024   raw_wspp_server --read-buffer-size 4096 / 1024 (not by default)
#   raw-acc64                raw_wspp_server --accepts 64 (not by default)
#   VARIANT-wss              any wsreg variant above over wss://: the same server with
#                            --tls-cert/--tls-key (a self-signed EC P-256 certificate made
#                            with openssl for this invocation), the client on wss://
#                            (e.g. actor-wss, mutex-wss; not by default, except
#                            actor-wss in SMOKE=1)
# Run kinds, each a fresh server process per run, the load client with
# --server-pid and --source-addresses:
#   idle        --rate 0, window IDLE_DURATION: server RSS per connection
#   latency     --rate LATENCY_RATE, window DURATION: p50/p99/p99.9, loss
#   throughput  --rate OFFERED/N (1M frames/s offered), --max-buffered-bytes
#               65536, window DURATION: delivered frames/s, CPU, efficiency
#   connect     (not by default) --rate LATENCY_RATE ticking from the start,
#               window 1 s: how long N connections take to open under load
# latency and throughput servers start ticking once all N are open
# (--start-after-connections N), so the window measures the steady state.
#
# Environment: SIZES ("1000 5000 10000 15000"), VARIANTS ("actor mutex raw node
# actor-copy mutex-copy actor-publish mutex-publish", and uws where built), COPY_SIZES ("1000 10000":
# sizes the -copy variants run at), PUBLISH_SIZES ("10 1000 10000": the only
# sizes the -publish variants run at, added to SIZES for them alone), KINDS ("idle latency throughput"), RUNS (3), DURATION (10),
# IDLE_DURATION (2), THREADS (1), SOURCE_ADDRESSES (3), LATENCY_RATE (10),
# OFFERED (1000000), CONNECT_TIMEOUT (60), QUIET_WAIT (30: seconds to wait for
# other processes to leave the CPU before each run), QUIET_MAX_CORES (0.25),
# PLOT (1), OUT_DIR (benchmarks/results).
# SMOKE=1: sizes 100, 2 s windows, one run, all variants and actor-wss, results in a temporary
# directory (kept with KEEP_RESULTS=1), no plots; for CI.
# REPORT_ONLY=1: no runs; the tables, the efficiency column and the plots are
# made again from OUT_DIR/e2e.csv and e2e-send-floor.json (pass the VARIANTS
# that were run).
#
# Exit status: 0 when every run completed; 1 when a server or client crashed,
# failed to start or stop, or a ticking run delivered nothing (missed
# performance targets never fail). Full mode writes OUT_DIR/e2e.csv (one row
# per run), e2e-send-floor.json, e2e-tables.txt and e2e-summary-*.tsv, and
# draws docs/img/e2e-{latency,throughput,memory}.png with gnuplot.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build="$PWD/$build" ;; esac

smoke=${SMOKE:-0}
if [ "$smoke" = 1 ]; then
  sizes=${SIZES:-100}
  copy_sizes=${COPY_SIZES:-$sizes}
  publish_sizes=${PUBLISH_SIZES:-$sizes}
  runs=${RUNS:-1}
  duration=${DURATION:-2}
  idle_duration=${IDLE_DURATION:-2}
  quiet_wait=${QUIET_WAIT:-0}
  floor_sends=${FLOOR_SENDS:-50000}
  floor_connections=${FLOOR_CONNECTIONS:-1,100}
  plot=${PLOT:-0}
  out_dir=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/wsreg-bench-e2e-smoke.XXXXXX")}
  keep_out=${KEEP_RESULTS:-0}
  default_variants="actor mutex raw node actor-copy mutex-copy actor-publish mutex-publish actor-wss"
else
  sizes=${SIZES:-"1000 5000 10000 15000"}
  copy_sizes=${COPY_SIZES:-"1000 10000"}
  publish_sizes=${PUBLISH_SIZES:-"10 1000 10000"}
  runs=${RUNS:-3}
  duration=${DURATION:-10}
  idle_duration=${IDLE_DURATION:-2}
  quiet_wait=${QUIET_WAIT:-30}
  floor_sends=${FLOOR_SENDS:-500000}
  floor_connections=${FLOOR_CONNECTIONS:-1,1000,5000,10000,15000}
  plot=${PLOT:-1}
  out_dir=${OUT_DIR:-$root/benchmarks/results}
  keep_out=1
  default_variants="actor mutex raw node actor-copy mutex-copy actor-publish mutex-publish"
fi
uws_bin="$build/benchmarks/e2e/uws_bench_server"
if [ -x "$uws_bin" ]; then
  default_variants+=" uws"
elif [ -z "${VARIANTS:-}" ] && [ "${REPORT_ONLY:-0}" != 1 ]; then
  echo "bench-e2e: variant uws skipped: $uws_bin not built (configure with -DUWS_DIR=... -DUSOCKETS_DIR=...)" >&2
fi
variants=${VARIANTS:-$default_variants}
kinds=${KINDS:-"idle latency throughput"}
threads=${THREADS:-1}
source_addresses=${SOURCE_ADDRESSES:-3}
latency_rate=${LATENCY_RATE:-10}
offered=${OFFERED:-1000000}
latency_bound=${LATENCY_MAX_BUFFERED:-1048576}
throughput_bound=${THROUGHPUT_MAX_BUFFERED:-65536}
connect_timeout=${CONNECT_TIMEOUT:-60}
quiet_max_cores=${QUIET_MAX_CORES:-0.25}
img_dir=${IMG_DIR:-$root/docs/img}

wsreg_bin="$build/benchmarks/e2e/wsreg_bench_server"
raw_bin="$build/benchmarks/e2e/raw_wspp_server"
floor_bin="$build/benchmarks/e2e/send_floor"
client_bin="$build/benchmarks/wsreg_load_client"
node_server="$root/benchmarks/e2e/ws_server.js"

say() { echo "bench-e2e: $*" >&2; }
die() { say "$*"; exit 1; }

# --- prerequisites -------------------------------------------------------------

report_only=${REPORT_ONLY:-0}
if [ "$report_only" = 1 ]; then
  keep_out=1
else
  for bin in "$wsreg_bin" "$raw_bin" "$floor_bin" "$client_bin"; do
    [ -x "$bin" ] || die "$bin is missing; build first: cmake --build $build -j2"
  done
  case " $variants " in
    *" uws "*) [ -x "$uws_bin" ] ||
      die "$uws_bin is missing: configure $build with -DUWS_DIR=... -DUSOCKETS_DIR=... (benchmarks/e2e/README.md) and build uws_bench_server" ;;
  esac
fi
wants_node=0
[ "$report_only" = 1 ] || case " $variants " in *" node "*) wants_node=1 ;; esac
wants_tls=0
[ "$report_only" = 1 ] || case " $variants " in *"-wss "*) wants_tls=1 ;; esac
missing=()
command -v jq >/dev/null || missing+=(jq)
command -v ss >/dev/null || missing+=(iproute2)
if [ "$wants_tls" = 1 ]; then command -v openssl >/dev/null || missing+=(openssl); fi
if [ "$wants_node" = 1 ]; then command -v node >/dev/null || missing+=(nodejs npm); fi
if [ "$plot" = 1 ]; then command -v gnuplot >/dev/null || missing+=(gnuplot-nox); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}"
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$wants_node" = 1 ] && [ ! -d "$root/benchmarks/e2e/node_modules/ws" ]; then
  say "installing the ws package (npm ci)"
  npm ci --prefix "$root/benchmarks/e2e" --no-audit --no-fund --loglevel=error >&2
fi

# --- processes: every child is killed on exit --------------------------------

# Logs and reports of the runs: a directory of this invocation's own in the
# build directory (another invocation's cleanup must not take it), removed on exit.
work=$(mktemp -d "$build/bench-e2e-work.XXXXXX")
server_pid=""
client_pid=""
cleanup() {
  local pid
  for pid in "$client_pid" "$server_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
  rm -rf "$work"
  if [ "$keep_out" != 1 ]; then rm -rf "$out_dir"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# The -wss variants' certificate: self-signed, EC P-256 (made in
# milliseconds, as tests/tls_support.hpp does), for this invocation only.
tls_cert="$work/tls-cert.pem"
tls_key="$work/tls-key.pem"
if [ "$wants_tls" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 1 -nodes \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tls_key" -out "$tls_cert" 2>"$work/openssl.err" ||
    { cat "$work/openssl.err" >&2; die "openssl could not make the -wss variants' certificate"; }
fi

mkdir -p "$out_dir"
csv="$out_dir/e2e.csv"
floor_json="$out_dir/e2e-send-floor.json"
tables="$out_dir/e2e-tables.txt"
clk_tck=$(getconf CLK_TCK)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }

# Busy CPU of the whole host, in cores, over `$1` seconds.
host_busy_cores() {
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat)
  sleep "$1"
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v t="$clk_tck" -v s="$1" 'BEGIN {printf "%.2f", (b - a) / t / s}'
}

# Waits (at most QUIET_WAIT s) until other processes leave the CPU, so that a
# run does not share the 2 cores with a compiler. Goes on regardless after that.
wait_quiet() {
  [ "$quiet_wait" -gt 0 ] || return 0
  local deadline=$((SECONDS + quiet_wait)) busy
  while :; do
    busy=$(host_busy_cores 0.5)
    if awk -v b="$busy" -v m="$quiet_max_cores" 'BEGIN {exit !(b < m)}'; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "host still busy ($busy cores used by others) after ${quiet_wait} s; going on"
      return 0
    fi
    sleep 1
  done
}

# Waits until no socket but TIME-WAIT ones uses TCP port $1 (at most 10 s).
wait_port_free() {
  local i
  for i in $(seq 100); do
    [ "$(ss -tanH "( sport = :$1 or dport = :$1 )" | grep -vc TIME-WAIT)" -eq 0 ] && return 0
    sleep 0.1
  done
  say "port $1 still has open sockets after 10 s"
}

# Sends SIGTERM to the server and waits for it (10 s, then SIGKILL).
# Sets server_rc (137 when it had to be killed).
stop_server() {
  local i
  server_rc=0
  kill -TERM "$server_pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_rc=137
  else
    wait "$server_pid" || server_rc=$?
  fi
  server_pid=""
}

# Fills the array `cmd` with the server command line of variant $1 (a
# -wss variant: its plain variant's, with the certificate).
server_command() {
  local variant=$1 rate=$2 bound=$3 start_after=$4
  case $variant in
    *-wss)
      server_command "${variant%-wss}" "$rate" "$bound" "$start_after"
      [ "${cmd[0]}" = "$wsreg_bin" ] || die "$variant: only wsreg_bench_server variants serve wss://"
      cmd+=(--tls-cert "$tls_cert" --tls-key "$tls_key")
      return ;;
  esac
  local common=(--address 127.0.0.1 --port 0 --threads "$threads" --rate "$rate"
                --max-buffered-bytes "$bound" --start-after-connections "$start_after")
  case $variant in
    actor | mutex) cmd=("$wsreg_bin" --policy "$variant" --frame-once on "${common[@]}") ;;
    actor-copy | mutex-copy)
      cmd=("$wsreg_bin" --policy "${variant%-copy}" --frame-once off "${common[@]}") ;;
    actor-publish | mutex-publish)
      cmd=("$wsreg_bin" --policy "${variant%-publish}" --frame-once on --publish "${common[@]}") ;;
    actor-nolanes | mutex-nolanes)
      cmd=("$wsreg_bin" --policy "${variant%-nolanes}" --frame-once on --write-lanes off "${common[@]}") ;;
    raw) cmd=("$raw_bin" "${common[@]}") ;;
    raw-rb4096) cmd=("$raw_bin" --read-buffer-size 4096 "${common[@]}") ;;
    raw-rb1024) cmd=("$raw_bin" --read-buffer-size 1024 "${common[@]}") ;;
    raw-acc64) cmd=("$raw_bin" --accepts 64 "${common[@]}") ;;
    node) cmd=(node "$node_server" "${common[@]}") ;;
    uws) cmd=("$uws_bin" "${common[@]}") ;;
    *) die "unknown variant $variant" ;;
  esac
}

# --- the send() floor ----------------------------------------------------------

if [ "$report_only" != 1 ]; then
say "send floor: $floor_sends sends at K = $floor_connections, TCP_NODELAY off and on"
wait_quiet
floor_off=$("$floor_bin" --connections "$floor_connections" --sends "$floor_sends" --nodelay off) ||
  die "send_floor failed"
wait_quiet
floor_on=$("$floor_bin" --connections "$floor_connections" --sends "$floor_sends" --nodelay on) ||
  die "send_floor failed"
jq -n --argjson off "$floor_off" --argjson on "$floor_on" '{nodelay_off: $off, nodelay_on: $on}' \
  >"$floor_json"
fi

# The reference of the efficiency figure: sends per CPU-second at the largest
# K <= N (the smallest K if none) with TCP_NODELAY on, where every send() puts
# one segment on the wire. (Without TCP_NODELAY, Nagle merges consecutive
# sends to a socket whose last segment is not yet acknowledged; how often
# depends on how far the reader lags, so that figure swings with the load on
# the machine, from 160k to 830k at K = 1,000.) Same reference for every variant.
floor_for() {
  local n=$1 key=nodelay_on
  jq -r --argjson n "$n" --arg key "$key" '
    .[$key].results as $r
    | ([$r[] | select(.connections <= $n)] | max_by(.connections)) // ($r | min_by(.connections))
    | .sends_per_cpu_s | floor' "$floor_json"
}

# --- one run -------------------------------------------------------------------

columns="kind,variant,connections,run,rate_hz,max_buffered_bytes,status,connections_open,connect_s"
columns+=",window_s,ticks,lost,min_ticks_per_connection,max_ticks_per_connection,errors"
columns+=",closed_by_server,latency_p50_ms,latency_p99_ms,latency_p999_ms,latency_max_ms"
columns+=",client_cpu_window_s,server_cpu_window_s,host_cpu_window_s,other_cpu_window_s"
columns+=",server_rss_base_kib,server_rss_kib,rss_per_connection_kib,offered_per_s"
columns+=",delivered_per_s,frames_per_server_cpu_s,send_floor_per_cpu_s,efficiency"
columns+=",server_sent,server_dropped"
failures=0

run_one() {
  local kind=$1 variant=$2 n=$3 run=$4
  local rate bound window start_after timeout_s=$connect_timeout
  case $kind in
    idle) rate=0 bound=$latency_bound window=$idle_duration start_after=0 ;;
    latency) rate=$latency_rate bound=$latency_bound window=$duration start_after=$n ;;
    throughput)
      rate=$(awk -v o="$offered" -v n="$n" 'BEGIN {printf "%.6g", o / n}')
      bound=$throughput_bound window=$duration start_after=$n ;;
    connect) rate=$latency_rate bound=$latency_bound window=1 start_after=0 ;;
    *) die "unknown kind $kind" ;;
  esac
  local tag="$kind-$variant-$n-$run"
  local log="$work/$tag.server.log" report="$work/$tag.json" client_err="$work/$tag.client.err"
  local status=ok

  wait_quiet
  mkdir -p "$work"
  server_command "$variant" "$rate" "$bound" "$start_after"
  "${cmd[@]}" >"$log" 2>&1 &
  server_pid=$!
  local port="" i
  for i in $(seq 100); do  # 10 s to print its port
    port=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$log" 2>/dev/null || true)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    say "$tag: server did not start:"
    sed 's/^/  /' "$log" >&2
    stop_server
    failures=$((failures + 1))
    echo "$kind,$variant,$n,$run,$rate,$bound,fail:server_start" >>"$csv"
    return
  fi
  sleep 0.2  # let the server settle (Node compiles lazily) before reading its RSS
  local base_rss
  base_rss=$(rss_kib "$server_pid")

  local client_rc=0 scheme=ws
  case $variant in *-wss) scheme=wss ;; esac
  timeout --kill-after=5 $((timeout_s + ${window%.*} + 30)) "$client_bin" \
    --url "$scheme://127.0.0.1:$port/" --connections "$n" --duration "$window" \
    --connect-timeout "$timeout_s" --source-addresses "$source_addresses" \
    --server-pid "$server_pid" --json >"$report" 2>"$client_err" &
  client_pid=$!
  wait "$client_pid" || client_rc=$?
  client_pid=""

  local alive=1
  kill -0 "$server_pid" 2>/dev/null || alive=0
  stop_server
  wait_port_free "$port"

  if [ "$alive" = 0 ]; then
    status="fail:server_died(rc=$server_rc)"
  elif [ "$server_rc" -ne 0 ]; then
    status="fail:server_exit(rc=$server_rc)"
  elif [ "$client_rc" -ne 0 ] && [ "$client_rc" -ne 1 ]; then
    status="fail:client(rc=$client_rc)"
  elif ! jq -e . "$report" >/dev/null 2>&1; then
    status="fail:client_report"
  elif [ "$(jq .connections_open "$report")" -eq 0 ]; then
    status="fail:no_connection"
  elif [ "$kind" != idle ] && [ "$(jq .ticks "$report")" -eq 0 ]; then
    status="fail:nothing_delivered"
  elif [ "$client_rc" -eq 1 ]; then
    status="warn:$(jq .connections_open "$report")_of_${n}_open"
  fi

  local sent dropped
  sent=$(sed -n 's/.*stopped; sent \([0-9]*\), dropped \([0-9]*\).*/\1/p' "$log")
  dropped=$(sed -n 's/.*stopped; sent \([0-9]*\), dropped \([0-9]*\).*/\2/p' "$log")
  if [ "${status%%:*}" = fail ]; then
    failures=$((failures + 1))
    say "$tag: $status"
    sed 's/^/  server: /' "$log" | tail -n 20 >&2
    sed 's/^/  client: /' "$client_err" | tail -n 20 >&2
    head -c 2000 "$report" | sed 's/^/  report: /' >&2
  fi
  if ! jq -e . "$report" >/dev/null 2>&1; then
    echo "$kind,$variant,$n,$run,$rate,$bound,$status" >>"$csv"
    return
  fi

  local floor offered_per_s=0
  floor=$(floor_for "$n" "$variant")
  [ "$kind" = idle ] || offered_per_s=$(awk -v r="$rate" -v n="$n" 'BEGIN {printf "%.0f", r * n}')
  jq -r --arg kind "$kind" --arg variant "$variant" --argjson n "$n" --argjson run "$run" \
    --arg rate "$rate" --arg bound "$bound" --arg status "$status" --arg base "$base_rss" \
    --argjson floor "$floor" --argjson offered "$offered_per_s" --arg sent "${sent:-}" \
    --arg dropped "${dropped:-}" '
    def r(x): if x == null then "" else x end;
    def fix(x; d): if x == null then "" else (x * pow(10; d) | round) / pow(10; d) end;
    ($base | tonumber? // null) as $b
    | (if .window_s > 0 then .ticks / .window_s else null end) as $delivered
    | (if (.server_cpu_window_s // 0) > 0 then .ticks / .server_cpu_window_s else null end) as $per_cpu
    | [$kind, $variant, $n, $run, $rate, $bound, $status, .connections_open, .connect_s,
       .window_s, .ticks, .lost, .min_ticks_per_connection, .max_ticks_per_connection, .errors,
       .closed_by_server, .latency_ms.p50, .latency_ms.p99, .latency_ms.p999, .latency_ms.max,
       .client_cpu_window_s, r(.server_cpu_window_s), r(.host_cpu_window_s),
       (if .host_cpu_window_s != null and .server_cpu_window_s != null
        then fix(.host_cpu_window_s - .server_cpu_window_s - .client_cpu_window_s; 3) else "" end),
       r($b), r(.server_rss_kib),
       (if $b != null and .server_rss_kib != null and .connections_open > 0
        then fix((.server_rss_kib - $b) / .connections_open; 3) else "" end),
       $offered, fix($delivered; 0), fix($per_cpu; 0), $floor,
       (if $per_cpu != null then fix($per_cpu / $floor; 3) else "" end),
       $sent, $dropped]
    | map(tostring) | join(",")' "$report" >>"$csv"
  say "$(printf '%-10s %-10s %6s run %s: %s' "$kind" "$variant" "$n" "$run" "$status") $(jq -r \
    '"open \(.connections_open) connect \(.connect_s) s, ticks \(.ticks), lost \(.lost), min/conn \(.min_ticks_per_connection), p99 \(.latency_ms.p99) ms, server cpu \(.server_cpu_window_s) s, rss \(.server_rss_kib) KiB"' "$report")"
}

# --- all runs --------------------------------------------------------------------

if [ "$report_only" != 1 ]; then
echo "$columns" >"$csv"
start_time=$SECONDS
all_sizes=$(printf '%s\n' $sizes $publish_sizes | sort -n -u | tr '\n' ' ')
for n in $all_sizes; do
  for kind in $kinds; do
    for run in $(seq "$runs"); do
      for variant in $variants; do
        case $variant in
          *-publish | *-publish-wss) case " $publish_sizes " in *" $n "*) ;; *) continue ;; esac ;;
          *) case " $sizes " in *" $n "*) ;; *) continue ;; esac ;;
        esac
        case $variant in
          *-copy | *-copy-wss) case " $copy_sizes " in *" $n "*) ;; *) continue ;; esac ;;
        esac
        # Framing does not change an idle connection: -copy idles as its policy does.
        case $kind/$variant in idle/*-copy | idle/*-copy-wss) continue ;; esac
        run_one "$kind" "$variant" "$n" "$run"
      done
    done
  done
done
say "all runs done in $((SECONDS - start_time)) s; $failures failed"
fi
[ -s "$csv" ] && [ -s "$floor_json" ] || die "no results in $out_dir"

# The efficiency columns again from the floor file, so that a change of
# reference (floor_for) applies to old results too (REPORT_ONLY=1).
floors=""
for n in $(awk -F, 'NR > 1 {print $3}' "$csv" | sort -n -u); do
  floors+="$n:$(floor_for "$n" any) "
done
awk -F, -v OFS=, -v floors="$floors" '
  BEGIN { n = split(floors, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, ":"); floor[kv[1]] = kv[2] } }
  NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; print; next }
  NF >= idx["efficiency"] {
    $idx["send_floor_per_cpu_s"] = floor[$idx["connections"]]
    fpc = $idx["frames_per_server_cpu_s"]
    $idx["efficiency"] = (fpc != "" && floor[$idx["connections"]] > 0) ? sprintf("%.3f", fpc / floor[$idx["connections"]]) : ""
  }
  { print }' "$csv" >"$csv.tmp" && mv "$csv.tmp" "$csv"

# --- tables ----------------------------------------------------------------------

# table KIND COLUMN AGG FORMAT TITLE: rows = connections, columns = variants,
# AGG (median | min | max | sum) over the runs that did not fail, "(x.xx)" the
# ratio to raw in the same row.
table() {
  awk -F, -v kind="$1" -v col="$2" -v agg="$3" -v fmt="$4" -v title="$5" -v order="$variants" '
    function aggregate(list,   v, n, i, j, t, s) {
      n = split(list, v, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
      }
      if (agg == "min") return v[1]
      if (agg == "max") return v[n]
      if (agg == "sum") { s = 0; for (i = 1; i <= n; i++) s += v[i]; return s }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["kind"] == kind && $idx["status"] !~ /^fail/ && $idx[col] != "" {
      key = $idx["variant"] SUBSEP $idx["connections"]
      values[key] = values[key] " " $idx[col]
      if (!($idx["connections"] in seen_n)) { seen_n[$idx["connections"]] = 1; ns[++nn] = $idx["connections"] }
    }
    END {
      if (nn == 0) exit
      nv = split(order, vs, " ")
      printf "\n%s\n%-12s", title, "connections"
      for (i = 1; i <= nv; i++) printf " %17s", vs[i]
      printf "\n"
      for (r = 1; r <= nn; r++) {
        n = ns[r]
        base = aggregate(values["raw" SUBSEP n])
        printf "%-12s", n
        for (i = 1; i <= nv; i++) {
          a = aggregate(values[vs[i] SUBSEP n])
          if (a == "") { printf " %17s", "-"; continue }
          cell = sprintf(fmt, a)
          if (base != "" && base + 0 != 0 && vs[i] != "raw") cell = cell sprintf(" (%.2f)", a / base)
          printf " %17s", cell
        }
        printf "\n"
      }
    }' "$csv"
}

# table_wss KIND COLUMN FORMAT TITLE: rows = connections, one column per
# -wss variant whose plain variant ran too: "ws -> wss (wss/ws)", medians
# over the runs that did not fail. COLUMN "us_per_frame" is server CPU per
# delivered frame, in microseconds (server_cpu_window_s / ticks).
table_wss() {
  awk -F, -v kind="$1" -v col="$2" -v fmt="$3" -v title="$4" -v order="$variants" '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
      }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["kind"] == kind && $idx["status"] !~ /^fail/ {
      if (col == "us_per_frame") {
        if ($idx["server_cpu_window_s"] == "" || $idx["ticks"] + 0 == 0) next
        value = $idx["server_cpu_window_s"] * 1e6 / $idx["ticks"]
      } else {
        if ($idx[col] == "") next
        value = $idx[col]
      }
      key = $idx["variant"] SUBSEP $idx["connections"]
      values[key] = values[key] " " value
      if (!($idx["connections"] in seen_n)) { seen_n[$idx["connections"]] = 1; ns[++nn] = $idx["connections"] }
    }
    END {
      nv = split(order, vs, " ")
      for (i = 1; i <= nv; i++) present[vs[i]] = 1
      np = 0
      for (i = 1; i <= nv; i++) if (vs[i] ~ /-wss$/ && (substr(vs[i], 1, length(vs[i]) - 4) in present)) pairs[++np] = vs[i]
      if (nn == 0 || np == 0) exit
      printf "\n%s\n%-12s", title, "connections"
      for (i = 1; i <= np; i++) printf " %32s", substr(pairs[i], 1, length(pairs[i]) - 4) " -> " pairs[i]
      printf "\n"
      for (r = 1; r <= nn; r++) {
        n = ns[r]
        printf "%-12s", n
        for (i = 1; i <= np; i++) {
          plain = median(values[substr(pairs[i], 1, length(pairs[i]) - 4) SUBSEP n])
          tls = median(values[pairs[i] SUBSEP n])
          if (plain == "" || tls == "") { printf " %32s", "-"; continue }
          cell = sprintf(fmt " -> " fmt, plain, tls)
          if (plain + 0 != 0) cell = cell sprintf(" (%.2f)", tls / plain)
          printf " %32s", cell
        }
        printf "\n"
      }
    }' "$csv"
}

# summary KIND COLUMN FILE: median per variant and size as a TSV for gnuplot,
# "?" where a variant did not run.
summary() {
  awk -F, -v kind="$1" -v col="$2" -v order="$variants" '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      if (n == 0) return "?"
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
      }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["kind"] == kind && $idx["status"] !~ /^fail/ && $idx[col] != "" {
      values[$idx["variant"] SUBSEP $idx["connections"]] = values[$idx["variant"] SUBSEP $idx["connections"]] " " $idx[col]
      if (!($idx["connections"] in seen)) { seen[$idx["connections"]] = 1; ns[++nn] = $idx["connections"] }
    }
    END {
      nv = split(order, vs, " ")
      printf "connections"
      for (i = 1; i <= nv; i++) printf "\t%s", vs[i]
      printf "\n"
      for (r = 1; r <= nn; r++) {
        printf "%s", ns[r]
        for (i = 1; i <= nv; i++) printf "\t%s", median(values[vs[i] SUBSEP ns[r]])
        printf "\n"
      }
    }' "$csv" >"$3"
}

{
  if [ "$report_only" = 1 ]; then
    echo "End-to-end broadcast benchmark: tables made $(date -u +%Y-%m-%dT%H:%MZ) from $csv,"
  else
    echo "End-to-end broadcast benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, threads $threads,"
  fi
  echo "$runs run(s) per cell; each cell is the median of the runs (min/sum where said),"
  echo "(x.xx) = ratio to raw in the same row."
  echo
  echo "Send floor (sends per CPU-second of one thread, ~46-byte send()s round-robin over K connections):"
  jq -r '["nodelay_off", "nodelay_on"][] as $k | .[$k].results[]
         | "  \($k | sub("nodelay_"; "TCP_NODELAY ")): K=\(.connections): \(.sends_per_cpu_s | floor) per CPU-s, \(.sends_per_wall_s | floor) per wall-s"' \
    "$floor_json"
  table idle rss_per_connection_kib median "%.2f" "IDLE: server RSS per connection, KiB (rate 0, RSS at window start minus RSS before connecting, / N)"
  table latency latency_p50_ms median "%.3f" "LATENCY ($latency_rate Hz): p50 ms"
  table latency latency_p99_ms median "%.3f" "LATENCY ($latency_rate Hz): p99 ms"
  table latency latency_p999_ms median "%.3f" "LATENCY ($latency_rate Hz): p99.9 ms"
  table latency lost sum "%d" "LATENCY ($latency_rate Hz): ticks lost, sum over runs"
  table latency min_ticks_per_connection min "%d" "LATENCY ($latency_rate Hz): fewest ticks one connection got, min over runs (expected $((latency_rate * ${duration%.*})))"
  table latency server_cpu_window_s median "%.2f" "LATENCY ($latency_rate Hz): server CPU s in the ${duration} s window"
  table throughput delivered_per_s median "%.0f" "THROUGHPUT ($offered frames/s offered, max-buffered-bytes $throughput_bound): delivered frames/s"
  table throughput frames_per_server_cpu_s median "%.0f" "THROUGHPUT: delivered frames per server CPU-second"
  table throughput efficiency median "%.3f" "THROUGHPUT: efficiency = frames per server CPU-s / send floor (K <= N, TCP_NODELAY on); > 1: several frames per send()"
  table throughput min_ticks_per_connection median "%d" "THROUGHPUT: fewest ticks one connection got in the window"
  table throughput server_cpu_window_s median "%.2f" "THROUGHPUT: server CPU s in the ${duration} s window"
  table throughput client_cpu_window_s median "%.2f" "THROUGHPUT: client CPU s in the ${duration} s window"
  table throughput latency_p99_ms median "%.1f" "THROUGHPUT: p99 latency ms (queueing under overload)"
  table_wss idle rss_per_connection_kib "%.2f" "WSS: idle server RSS per connection, KiB, ws -> wss (wss/ws)"
  table_wss latency us_per_frame "%.2f" "WSS: LATENCY ($latency_rate Hz): server CPU us per delivered frame, ws -> wss (wss/ws)"
  table_wss latency latency_p99_ms "%.2f" "WSS: LATENCY ($latency_rate Hz): p99 ms, ws -> wss (wss/ws)"
  table_wss latency rss_per_connection_kib "%.2f" "WSS: LATENCY ($latency_rate Hz): server RSS per connection at window start, KiB, ws -> wss (wss/ws)"
  table_wss throughput delivered_per_s "%.0f" "WSS: THROUGHPUT: delivered frames/s, ws -> wss (wss/ws)"
  table_wss throughput us_per_frame "%.2f" "WSS: THROUGHPUT: server CPU us per delivered frame, ws -> wss (wss/ws)"
  table_wss throughput client_cpu_window_s "%.2f" "WSS: THROUGHPUT: client CPU s in the window, ws -> wss (wss/ws)"
  table_wss throughput rss_per_connection_kib "%.2f" "WSS: THROUGHPUT: server RSS per connection at window start, KiB, ws -> wss (wss/ws)"
  table connect connect_s median "%.2f" "CONNECT: seconds to open N connections while ticking at $latency_rate Hz from the start"
  table connect connections_open median "%d" "CONNECT: connections open when the connect phase ended (timeout ${connect_timeout} s)"
  others=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
                    $idx["other_cpu_window_s"] != "" && $idx["window_s"] > 0 &&
                    $idx["other_cpu_window_s"] / $idx["window_s"] > 0.1 { n++ } END { print n + 0 }' "$csv")
  echo
  echo "Runs in which other processes used more than 0.1 core during the window: $others"
  echo "Failed runs: $(awk -F, 'NR > 1 && $7 ~ /^fail/ {n++} END {print n + 0}' "$csv") (see the status column of e2e.csv)"
} >"$tables"
cat "$tables"

if [ "$plot" = 1 ]; then
  mkdir -p "$img_dir"
  summary latency latency_p99_ms "$out_dir/e2e-summary-latency.tsv"
  summary throughput delivered_per_s "$out_dir/e2e-summary-throughput.tsv"
  summary idle rss_per_connection_kib "$out_dir/e2e-summary-memory.tsv"
  for what in latency throughput memory; do
    gnuplot -c "$root/benchmarks/plots/e2e-$what.gp" "$out_dir/e2e-summary-$what.tsv" \
      "$img_dir/e2e-$what.png"
  done
  say "plots: $img_dir/e2e-{latency,throughput,memory}.png"
fi

if [ "$smoke" = 1 ] && [ "$keep_out" != 1 ]; then
  say "smoke results were in $out_dir (removed; KEEP_RESULTS=1 keeps them)"
else
  say "results: $csv, $floor_json, $tables"
fi
if [ "$failures" -ne 0 ]; then
  say "FAILED: $failures run(s) crashed, did not start or stop, or delivered nothing"
  exit 1
fi
