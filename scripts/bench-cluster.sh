#!/usr/bin/env bash
# Cluster benchmark (issue 11): three wsreg nodes over Redis and over NATS
# against the same connections on one node.
#   scripts/bench-cluster.sh [BUILD_DIR]        (BUILD_DIR defaults to build)
#
# Variants (each run starts its own broker, on a free loopback port, and its
# own server processes; nothing is left running):
#   single   one wsreg_bench_server with all CONNECTIONS, ticking
#   redis    NODES wsreg_bench_server --redis (a redis-server of its own),
#            CONNECTIONS/NODES each; node 1 ticks, the others --rate 0
#   nats     the same over NATS (a nats-server of its own); needs
#            wsreg_bench_server built with wsreg_nats
# Kinds:
#   latency     --rate RATE (10 Hz) to every connection, window DURATION:
#               delivered, lost, p50/p99, CPU per node and of the broker
#   throughput  THROUGHPUT_CONNECTIONS per node (1), --rate R for each R of
#               THROUGHPUT_RATES ("1000 5000 20000 1000000": 1000000 is as
#               fast as the ticking node goes), window THROUGHPUT_DURATION:
#               publications per second made on node 1 and received through
#               the broker on the others, gaps, CPU by thread
# One load client process for all nodes (several --url, connection i to
# node i mod NODES, one latency histogram), --warmup WARMUP s before the
# window (node 1 starts ticking once the cluster's heartbeats count every
# connection, up to 0.5 s after the last opened), --server-pid for every
# node, --watch-pid for the broker. Runs are interleaved: run 1 of every
# variant, then run 2, ...
#
# Environment: VARIANTS ("single redis nats"), KINDS ("latency throughput"),
# CONNECTIONS (6000), NODES (3), RATE (10), DURATION (10), WARMUP (1),
# RUNS (3), POLICY (actor), THROUGHPUT_RATES, THROUGHPUT_CONNECTIONS (1),
# THROUGHPUT_DURATION (5), SOURCE_ADDRESSES (3), CONNECT_TIMEOUT (60),
# QUIET_WAIT (30 s to wait for other processes to leave the CPU before a
# run), QUIET_MAX_CORES (0.25), PLOT (1), OUT_DIR (benchmarks/results/cluster).
# SMOKE=1: 200 connections, 3 s windows, one run, throughput at 1000000 only,
# results in a temporary directory (KEEP_RESULTS=1 keeps it), no plot; for CI.
# REPORT_ONLY=1: no runs; tables and plot again from OUT_DIR/cluster.csv.
#
# Exit status: 0 when every run completed; 1 when a broker, server or client
# failed, or a ticking run delivered nothing (missed targets never fail).
# Writes OUT_DIR/cluster.csv (one row per run), OUT_DIR/runs/*.json (each
# run's load-client report and the nodes' last lines), cluster-tables.txt,
# cluster-summary-*.tsv and docs/img/cluster.png.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build="$PWD/$build" ;; esac

smoke=${SMOKE:-0}
if [ "$smoke" = 1 ]; then
  connections=${CONNECTIONS:-200}
  duration=${DURATION:-3}
  runs=${RUNS:-1}
  throughput_rates=${THROUGHPUT_RATES:-1000000}
  throughput_duration=${THROUGHPUT_DURATION:-2}
  quiet_wait=${QUIET_WAIT:-0}
  plot=${PLOT:-0}
  out_dir=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/wsreg-bench-cluster-smoke.XXXXXX")}
  keep_out=${KEEP_RESULTS:-0}
else
  connections=${CONNECTIONS:-6000}
  duration=${DURATION:-10}
  runs=${RUNS:-3}
  throughput_rates=${THROUGHPUT_RATES:-"1000 5000 20000 1000000"}
  throughput_duration=${THROUGHPUT_DURATION:-5}
  quiet_wait=${QUIET_WAIT:-30}
  plot=${PLOT:-1}
  out_dir=${OUT_DIR:-$root/benchmarks/results/cluster}
  keep_out=1
fi
variants=${VARIANTS:-"single redis nats"}
kinds=${KINDS:-"latency throughput"}
nodes=${NODES:-3}
rate=${RATE:-10}
warmup=${WARMUP:-1}
policy=${POLICY:-actor}
throughput_connections=${THROUGHPUT_CONNECTIONS:-1}
source_addresses=${SOURCE_ADDRESSES:-3}
connect_timeout=${CONNECT_TIMEOUT:-60}
quiet_max_cores=${QUIET_MAX_CORES:-0.25}
img_dir=${IMG_DIR:-$root/docs/img}
redis_bin=${REDIS_SERVER:-/usr/bin/redis-server}
nats_bin=${NATS_SERVER:-/usr/sbin/nats-server}

server_bin="$build/benchmarks/e2e/wsreg_bench_server"
client_bin="$build/benchmarks/wsreg_load_client"

say() { echo "bench-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

report_only=${REPORT_ONLY:-0}
[ "$report_only" = 1 ] && keep_out=1
command -v jq >/dev/null || die "jq is missing: apt-get install -y jq"
if [ "$plot" = 1 ]; then command -v gnuplot >/dev/null || die "gnuplot is missing: apt-get install -y gnuplot-nox"; fi
if [ "$report_only" != 1 ]; then
  command -v ss >/dev/null || die "ss is missing: apt-get install -y iproute2"
  for bin in "$server_bin" "$client_bin"; do
    [ -x "$bin" ] || die "$bin is missing; build first: cmake --build $build --target wsreg_bench_server wsreg_load_client -j2"
  done
  help=$("$server_bin" --help)
  for variant in $variants; do
    case $variant in
      single) ;;
      redis)
        [ -x "$redis_bin" ] || die "$redis_bin is missing (scripts/install-deps.sh installs redis-server)"
        grep -q -- --redis <<<"$help" || die "wsreg_bench_server was built without wsreg_redis (hiredis)" ;;
      nats)
        [ -x "$nats_bin" ] || die "$nats_bin is missing (scripts/install-deps.sh installs nats-server)"
        grep -q -- --nats <<<"$help" || die "wsreg_bench_server was built without wsreg_nats (libnats)" ;;
      *) die "unknown variant $variant" ;;
    esac
  done
fi

# --- processes: every child is killed on exit --------------------------------

mkdir -p "$build"
work=$(mktemp -d "$build/bench-cluster-work.XXXXXX")
pids=()        # servers and broker of the current run
client_pid=""
cleanup() {
  local pid
  for pid in "$client_pid" "${pids[@]}"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
  rm -rf "$work"
  if [ "$keep_out" != 1 ]; then rm -rf "$out_dir"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

mkdir -p "$out_dir"
csv="$out_dir/cluster.csv"
tables="$out_dir/cluster-tables.txt"
clk_tck=$(getconf CLK_TCK)

# Busy CPU of the whole host, in cores, over `$1` seconds (a measurement).
host_busy_cores() {
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat)
  sleep "$1"
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v t="$clk_tck" -v s="$1" 'BEGIN {printf "%.2f", (b - a) / t / s}'
}

# Waits (at most QUIET_WAIT s) until other processes leave the CPU.
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
  done
}

# A TCP port on 127.0.0.1 that nothing listens on or connects from now
# (redis-server cannot pick its own; it then binds it at once).
free_port() {
  local port used
  used=$(ss -tanH | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  while :; do
    port=$((20000 + RANDOM % 12000))
    grep -qx "$port" <<<"$used" || { echo "$port"; return; }
  done
}

# Waits (10 s) for the line matching sed expression $2 in file $1 while
# process $3 lives; prints the captured group.
wait_line() {
  local file=$1 expression=$2 pid=$3 value="" i
  for i in $(seq 200); do
    value=$(sed -n "$expression" "$file" 2>/dev/null | head -n 1)
    [ -n "$value" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "$value"
}

# SIGTERM, then waits (10 s, then SIGKILL); sets stop_rc to the exit
# status (137 when it had to be killed). Not in a subshell: it waits for a
# child of this shell.
stop_process() {
  local pid=$1 i
  stop_rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    stop_rc=137
  else
    wait "$pid" || stop_rc=$?
  fi
}

# Starts the broker of $1 (redis | nats) on a free port of its own; sets
# broker_pid and broker_url, or returns 1.
start_broker() {
  local kind=$1 log=$2 port ready
  port=$(free_port)
  case $kind in
    redis)
      "$redis_bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --loglevel notice --dir "$work" >"$log" 2>&1 &
      broker_pid=$!
      ready=$(wait_line "$log" '/[Rr]eady to accept connections/s/.*/ready/p' "$broker_pid")
      broker_url="redis://127.0.0.1:$port" ;;
    nats)
      "$nats_bin" -a 127.0.0.1 -p "$port" >"$log" 2>&1 &
      broker_pid=$!
      ready=$(wait_line "$log" '/Server is ready/s/.*/ready/p' "$broker_pid")
      broker_url="nats://127.0.0.1:$port" ;;
  esac
  pids+=("$broker_pid")
  [ -n "$ready" ]
}

columns="kind,variant,nodes,connections,run,rate_hz,status,connections_open,window_s,ticks"
columns+=",expected,shortfall,lost,min_ticks_per_connection,errors,latency_p50_ms,latency_p99_ms"
columns+=",latency_p999_ms,latency_max_ms,delivered_per_s,server_cpu_window_s,node1_cpu_s"
columns+=",node2_cpu_s,node3_cpu_s,broker_cpu_s,client_cpu_s,host_cpu_s,other_cpu_s"
columns+=",made_per_s,through_broker_per_s,node1_ticker_cpu_s,node1_backplane_cpu_s"
columns+=",node2_backplane_cpu_s,node1_io_cpu_s,node2_io_cpu_s,node1_actor_cpu_s,node2_actor_cpu_s"
columns+=",gaps,messages_missed,publications_dropped,publications_lost"
failures=0

run_one() {
  local kind=$1 variant=$2 run=$3 r=$4
  local n k window
  case $kind in
    latency) n=$connections window=$duration ;;
    throughput) window=$throughput_duration ;;
    *) die "unknown kind $kind" ;;
  esac
  if [ "$variant" = single ]; then k=1; else k=$nodes; fi
  [ "$kind" = throughput ] && n=$((throughput_connections * k))
  local tag="$kind-$variant-$r-$run" status=ok
  local report="$work/$tag.json" client_err="$work/$tag.client.err"
  pids=()
  wait_quiet

  local broker_pid="" broker_url="" backplane=()
  if [ "$variant" != single ]; then
    if ! start_broker "$variant" "$work/$tag.broker.log"; then
      say "$tag: $variant broker did not start:"
      sed 's/^/  /' "$work/$tag.broker.log" | tail -n 20 >&2
      failures=$((failures + 1))
      echo "$kind,$variant,$k,$n,$run,$r,fail:broker_start" >>"$csv"
      for pid in "${pids[@]}"; do stop_process "$pid"; done
      pids=()
      return
    fi
    backplane=(--"$variant" "$broker_url")
  fi

  # Node 1 ticks once the cluster counts all n connections; the others never tick.
  local node urls=() server_pids=() port
  for node in $(seq "$k"); do
    local node_rate=0
    [ "$node" = 1 ] && node_rate=$r
    "$server_bin" --policy "$policy" --address 127.0.0.1 --port 0 --threads 1 --rate "$node_rate" \
      --start-after-connections "$n" --node-id "$node" "${backplane[@]}" \
      >"$work/$tag.node$node.log" 2>&1 &
    pids+=($!)
    server_pids+=($!)
  done
  for node in $(seq "$k"); do
    port=$(wait_line "$work/$tag.node$node.log" 's/.*listening on port \([0-9][0-9]*\).*/\1/p' \
      "${server_pids[$((node - 1))]}")
    if [ -z "$port" ]; then status="fail:node${node}_start"; break; fi
    urls+=(--url "ws://127.0.0.1:$port/")
  done

  local client_rc=0
  if [ "$status" = ok ]; then
    local pid_flags=()
    for pid in "${server_pids[@]}"; do pid_flags+=(--server-pid "$pid"); done
    [ -n "$broker_pid" ] && pid_flags+=(--watch-pid "$broker_pid")
    timeout --kill-after=5 $((connect_timeout + ${window%.*} + ${warmup%.*} + 30)) "$client_bin" \
      "${urls[@]}" --connections "$n" --duration "$window" --warmup "$warmup" \
      --connect-timeout "$connect_timeout" --source-addresses "$source_addresses" \
      "${pid_flags[@]}" --json >"$report" 2>"$client_err" &
    client_pid=$!
    wait "$client_pid" || client_rc=$?
    client_pid=""
  fi

  # Stop the nodes (each prints its counters), then the broker.
  local alive=1
  for pid in "${server_pids[@]}"; do kill -0 "$pid" 2>/dev/null || alive=0; done
  for node in $(seq "$k"); do
    stop_process "${server_pids[$((node - 1))]}"
    if [ "$stop_rc" != 0 ] && [ "$status" = ok ]; then status="fail:node${node}_exit(rc=$stop_rc)"; fi
  done
  if [ -n "$broker_pid" ]; then stop_process "$broker_pid"; fi
  pids=()

  if [ "$status" = ok ]; then
    if [ "$alive" = 0 ]; then
      status="fail:node_died"
    elif [ "$client_rc" -ne 0 ] && [ "$client_rc" -ne 1 ]; then
      status="fail:client(rc=$client_rc)"
    elif ! jq -e . "$report" >/dev/null 2>&1; then
      status="fail:client_report"
    elif [ "$(jq .ticks "$report")" -eq 0 ]; then
      status="fail:nothing_delivered"
    elif [ "$client_rc" -eq 1 ]; then
      status="warn:$(jq .connections_open "$report")_of_${n}_open"
    fi
  fi

  # The nodes' cluster counters, summed: gaps seen on the receiving nodes,
  # publications dropped or lost on the ticking one.
  local counters
  counters=$(cat "$work/$tag".node*.log | awk '
    /cluster: / {
      for (i = 1; i <= NF; i++) { key = $i; gsub(/[:,]/, "", $(i + 1)); v[key] += $(i + 1) }
    }
    END { printf "%d,%d,%d,%d", v["gaps"], v["messages_missed"], v["publications_dropped"], v["publications_lost"] }')

  if [ "${status%%:*}" = fail ]; then
    failures=$((failures + 1))
    say "$tag: $status"
    for f in "$work/$tag".*.log "$client_err"; do
      [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -n 8 >&2
    done
  fi
  mkdir -p "$out_dir/runs"
  {
    if jq -e . "$report" >/dev/null 2>&1; then cat "$report"; else echo null; fi
    for f in "$work/$tag".node*.log; do tail -n 2 "$f"; done | jq -R . | jq -s .
  } | jq -s '{client: .[0], nodes: .[1]}' >"$out_dir/runs/$tag.json"
  if ! jq -e . "$report" >/dev/null 2>&1; then
    echo "$kind,$variant,$k,$n,$run,$r,$status" >>"$csv"
    return
  fi

  jq -r --arg kind "$kind" --arg variant "$variant" --argjson k "$k" --argjson n "$n" \
    --argjson run "$run" --argjson rate "$r" --arg status "$status" --arg counters "$counters" '
    def fix(x; d): if x == null then "" else (x * pow(10; d) | round) / pow(10; d) end;
    def cpu(i): if (.servers | length) > i then fix(.servers[i].cpu_window_s; 3) else "" end;
    def th(i; names): if (.servers | length) > i
      then fix([.servers[i].threads_cpu_window_s | to_entries[] | select(.key as $k | names | index($k)) | .value] | add // 0; 3)
      else "" end;
    (.window_s) as $w
    | ($kind == "latency") as $lat
    | (if $lat then ($rate * $w * .connections_open | round) else null end) as $expected
    | (.targets | map(if .connections_open > 0 then .ticks / .connections_open / $w else 0 end)) as $per_conn
    | [$kind, $variant, $k, $n, $run, $rate, $status, .connections_open, .window_s, .ticks,
       (if $lat then $expected else "" end), (if $lat then $expected - .ticks else "" end),
       .lost, .min_ticks_per_connection, .errors,
       .latency_ms.p50, .latency_ms.p99, .latency_ms.p999, .latency_ms.max,
       fix(.ticks / $w; 0), fix(.server_cpu_window_s; 3), cpu(0), cpu(1), cpu(2),
       (if (.watched | length) > 0 then fix(.watched[0].cpu_window_s; 3) else "" end),
       fix(.client_cpu_window_s; 3), fix(.host_cpu_window_s; 3),
       (if .host_cpu_window_s != null then
          fix(.host_cpu_window_s - .server_cpu_window_s - .client_cpu_window_s
              - (if (.watched | length) > 0 then .watched[0].cpu_window_s else 0 end); 3)
        else "" end),
       fix($per_conn[0]; 0),
       (if ($per_conn | length) > 1 then fix($per_conn[1:] | min; 0) else "" end),
       th(0; ["ticker"]), th(0; ["backplane", "nats-lib", "redis-lib"]),
       th(1; ["backplane", "nats-lib", "redis-lib"]), th(0; ["io"]), th(1; ["io"]),
       th(0; ["actor"]), th(1; ["actor"]), $counters]
    | map(tostring) | join(",")' "$report" >>"$csv"
  say "$(printf '%-10s %-6s rate %-7s run %s: %s' "$kind" "$variant" "$r" "$run" "$status") $(jq -r \
    '"open \(.connections_open), ticks \(.ticks), lost \(.lost), p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, servers cpu \(.server_cpu_window_s) s, broker cpu \(.watched[0].cpu_window_s // "-") s, per target \([.targets[].ticks])"' "$report") gaps,missed,dropped,lost $counters"
}

# --- all runs (interleaved) ----------------------------------------------------

if [ "$report_only" != 1 ]; then
  echo "$columns" >"$csv"
  rm -rf "$out_dir/runs"
  start_time=$SECONDS
  for kind in $kinds; do
    rates=$rate
    [ "$kind" = throughput ] && rates=$throughput_rates
    for r in $rates; do
      for run in $(seq "$runs"); do
        for variant in $variants; do
          run_one "$kind" "$variant" "$run" "$r"
        done
      done
    done
  done
  say "all runs done in $((SECONDS - start_time)) s; $failures failed"
fi
[ -s "$csv" ] || die "no results in $out_dir"

# --- tables --------------------------------------------------------------------

# table KIND COLUMN FORMAT TITLE [RATIO]: one row per rate, one column per
# variant: the median over the runs that did not fail; RATIO=1 adds
# "(x.xx)", the ratio to single in the same row.
table() {
  awk -F, -v kind="$1" -v col="$2" -v fmt="$3" -v title="$4" -v ratio="${5:-0}" -v order="$variants" '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
      }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["kind"] == kind && $idx["status"] !~ /^fail/ && $idx[col] != "" {
      key = $idx["variant"] SUBSEP $idx["rate_hz"]
      values[key] = values[key] " " $idx[col]
      if (!($idx["rate_hz"] in seen)) { seen[$idx["rate_hz"]] = 1; rs[++nr] = $idx["rate_hz"] }
    }
    END {
      if (nr == 0) exit
      nv = split(order, vs, " ")
      printf "\n%s\n%-10s", title, "rate_hz"
      for (i = 1; i <= nv; i++) printf " %20s", vs[i]
      printf "\n"
      for (row = 1; row <= nr; row++) {
        r = rs[row]
        base = median(values["single" SUBSEP r])
        printf "%-10s", r
        for (i = 1; i <= nv; i++) {
          a = median(values[vs[i] SUBSEP r])
          if (a == "") { printf " %20s", "-"; continue }
          cell = sprintf(fmt, a)
          if (ratio && base != "" && base + 0 != 0 && vs[i] != "single") cell = cell sprintf(" (%.2f)", a / base)
          printf " %20s", cell
        }
        printf "\n"
      }
    }' "$csv"
}

# summary KIND COLUMN...: rows = variants (latency) or rates (throughput),
# medians, tab-separated for gnuplot.
summary_latency() {
  awk -F, -v order="$variants" '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      if (n == 0) return "?"
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
      }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["kind"] == "latency" && $idx["status"] !~ /^fail/ {
      p50[$idx["variant"]] = p50[$idx["variant"]] " " $idx["latency_p50_ms"]
      p99[$idx["variant"]] = p99[$idx["variant"]] " " $idx["latency_p99_ms"]
    }
    END {
      print "variant\tp50_ms\tp99_ms"
      nv = split(order, vs, " ")
      for (i = 1; i <= nv; i++) printf "%s\t%s\t%s\n", vs[i], median(p50[vs[i]]), median(p99[vs[i]])
    }' "$csv"
}
summary_throughput() {
  awk -F, -v order="$variants" '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      if (n == 0) return "?"
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
      }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["kind"] == "throughput" && $idx["status"] !~ /^fail/ {
      v = $idx["variant"]; r = $idx["rate_hz"]
      col = v == "single" ? "made_per_s" : "through_broker_per_s"
      values[v SUBSEP r] = values[v SUBSEP r] " " $idx[col]
      if (!(r in seen)) { seen[r] = 1; rs[++nr] = r }
    }
    END {
      nv = split(order, vs, " ")
      printf "offered"
      for (i = 1; i <= nv; i++) printf "\t%s", vs[i]
      printf "\n"
      for (row = 1; row <= nr; row++) {
        printf "%s", rs[row]
        for (i = 1; i <= nv; i++) printf "\t%s", median(values[vs[i] SUBSEP rs[row]])
        printf "\n"
      }
    }' "$csv"
}

{
  if [ "$report_only" = 1 ]; then
    echo "Cluster benchmark: tables made $(date -u +%Y-%m-%dT%H:%MZ) from $csv,"
  else
    echo "Cluster benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, policy $policy, $nodes nodes,"
  fi
  echo "medians of the runs that did not fail (interleaved), (x.xx) = ratio to single in the same row."
  echo "latency: $connections connections (single: one node; redis/nats: $nodes nodes, 1/$nodes each), $rate Hz on node 1."
  table latency delivered_per_s "%.0f" "LATENCY: delivered frames/s"
  table latency shortfall "%d" "LATENCY: lost = expected (rate x window x open) - delivered"
  table latency lost "%d" "LATENCY: seq gaps seen by the clients"
  table latency latency_p50_ms "%.3f" "LATENCY: p50 ms" 1
  table latency latency_p99_ms "%.3f" "LATENCY: p99 ms" 1
  table latency latency_p999_ms "%.3f" "LATENCY: p99.9 ms" 1
  table latency server_cpu_window_s "%.2f" "LATENCY: server CPU s in the window, all nodes" 1
  table latency node1_cpu_s "%.2f" "LATENCY: node 1 (ticking) CPU s" 1
  table latency node2_cpu_s "%.2f" "LATENCY: node 2 CPU s"
  table latency broker_cpu_s "%.2f" "LATENCY: broker CPU s"
  table latency client_cpu_s "%.2f" "LATENCY: load client CPU s"
  table latency other_cpu_s "%.2f" "LATENCY: other processes' CPU s (host - servers - broker - client)"
  table latency gaps "%d" "LATENCY: cluster gaps (sum over nodes)"
  table throughput made_per_s "%.0f" "THROUGHPUT: publications/s made and delivered on node 1"
  table throughput through_broker_per_s "%.0f" "THROUGHPUT: publications/s received through the broker (slowest other node)"
  table throughput messages_missed "%d" "THROUGHPUT: publications missed (cluster gaps, sum over nodes)"
  table throughput publications_dropped "%d" "THROUGHPUT: publications dropped (backplane queue full)"
  table throughput node1_ticker_cpu_s "%.2f" "THROUGHPUT: node 1 ticker thread CPU s"
  table throughput node1_actor_cpu_s "%.2f" "THROUGHPUT: node 1 actor thread CPU s"
  table throughput node1_backplane_cpu_s "%.2f" "THROUGHPUT: node 1 backplane threads CPU s"
  table throughput node2_backplane_cpu_s "%.2f" "THROUGHPUT: node 2 backplane threads CPU s"
  table throughput node2_actor_cpu_s "%.2f" "THROUGHPUT: node 2 actor thread CPU s"
  table throughput broker_cpu_s "%.2f" "THROUGHPUT: broker CPU s"
  table throughput host_cpu_s "%.2f" "THROUGHPUT: host CPU s (all processes; 2 cores x window is the most)"
  echo
  echo "Failed runs: $(awk -F, 'NR > 1 && $7 ~ /^fail/ {n++} END {print n + 0}' "$csv") (see the status column of cluster.csv)"
} >"$tables"
cat "$tables"

if [ "$plot" = 1 ]; then
  mkdir -p "$img_dir"
  summary_latency >"$out_dir/cluster-summary-latency.tsv"
  summary_throughput >"$out_dir/cluster-summary-throughput.tsv"
  gnuplot -c "$root/benchmarks/plots/cluster.gp" "$out_dir/cluster-summary-latency.tsv" \
    "$out_dir/cluster-summary-throughput.tsv" "$img_dir/cluster.png" "$connections"
  say "plot: $img_dir/cluster.png"
fi

if [ "$smoke" = 1 ] && [ "$keep_out" != 1 ]; then
  say "smoke results were in $out_dir (removed; KEEP_RESULTS=1 keeps them)"
else
  say "results: $csv, $out_dir/runs/, $tables"
fi
if [ "$failures" -ne 0 ]; then
  say "FAILED: $failures run(s) failed to start or stop, crashed, or delivered nothing"
  exit 1
fi
