#!/usr/bin/env bash
# Runs the in-process registry benchmarks (wsreg_registry_bench), writes the
# raw Google Benchmark JSON and a CSV, prints a summary table and draws two
# plots. What each benchmark measures: benchmarks/inproc/README.md.
#   scripts/bench-inproc.sh [BUILD_DIR]   (default: build)
# Environment:
#   SMOKE=1        run everything briefly and write every output, plots
#                  included, to a fresh temporary directory: committed
#                  results are never touched
#   MIN_TIME=s     minimum seconds per benchmark run (default 0.5; smoke 0.01)
#   REPETITIONS=n  runs per benchmark; the CSV holds their medians (default 5; smoke 2)
# Also runs wsreg_mailbox_bench and wsreg_snapshot_bench (standalone
# programs; their tables are appended to the summary).
# Outputs (without SMOKE): benchmarks/results/inproc.{json,csv},
# benchmarks/results/inproc-summary.txt, docs/img/inproc-{throughput,broadcast}.png.
# Exits non-zero if the binary is missing or fails, if a benchmark reports an
# error, or if a plot cannot be drawn; never because a target is missed
# (targets are reported, not enforced).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
bin="$build/benchmarks/inproc/wsreg_registry_bench"
mailbox_bin="$build/benchmarks/inproc/wsreg_mailbox_bench"
snapshot_bin="$build/benchmarks/inproc/wsreg_snapshot_bench"
for b in "$bin" "$mailbox_bin" "$snapshot_bin"; do
  [ -x "$b" ] || {
    echo "bench-inproc: $b is missing; build the targets wsreg_registry_bench" \
      "wsreg_mailbox_bench wsreg_snapshot_bench first" >&2
    exit 1
  }
  # A binary older than its sources would be measured under the wrong revision.
  # (The websocketpp adapter is not part of it.)
  stale=$(find "$root/include" "$root/benchmarks/inproc" \( -name '*.hpp' -o -name '*.cpp' \) \
    -not -path "$root/include/wsreg/websocketpp/*" -newer "$b" -print -quit)
  if [ -n "$stale" ]; then
    echo "bench-inproc: $b is older than $stale; rebuild it first" \
      "(cmake --build $build --target wsreg_registry_bench wsreg_mailbox_bench wsreg_snapshot_bench)" >&2
    exit 1
  fi
done
command -v jq >/dev/null || { echo "bench-inproc: jq is missing (apt-get install jq)" >&2; exit 1; }

# The project target: every policy delivers a broadcast at no more than this
# many times the floor's nanoseconds per recipient. Reported, not enforced.
target_ratio=3

if [ "${SMOKE:-0}" = 1 ]; then
  min_time=${MIN_TIME:-0.01}
  repetitions=${REPETITIONS:-2}
  out=$(mktemp -d "${TMPDIR:-/tmp}/wsreg-bench-inproc.XXXXXX")
  img=$out
else
  min_time=${MIN_TIME:-0.5}
  repetitions=${REPETITIONS:-5}
  out=$root/benchmarks/results
  img=$root/docs/img
fi
mkdir -p "$out" "$img"

# Everything is written to a scratch directory first and moved into place
# only once the run succeeded, so a failed run leaves old results intact.
work=$(mktemp -d "${TMPDIR:-/tmp}/wsreg-bench-inproc-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
json=$work/inproc.json
csv=$work/inproc.csv
summary=$work/inproc-summary.txt

# The machine may be shared: measure how much CPU other processes used
# while the benchmarks ran (busy jiffies in /proc/stat minus our own), and
# print it with the results.
busy_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat
}
# `times` must run in this shell itself: in a pipe or $(...) it would
# report a subshell's children. Its second line is user and system time of
# this shell's finished children, as 0m1.234s 0m0.567s.
children_cpu_seconds() {
  awk 'NR == 2 { s = 0; for (i = 1; i <= NF; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] } printf "%.2f\n", s }' "$1"
}

# Which code was measured (the binary should have been built from it).
if revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
  [ -z "$(git -C "$root" status --porcelain --untracked-files=no -- include benchmarks/inproc)" ] ||
    revision="$revision + uncommitted changes in include/ or benchmarks/inproc/"
  revision="git $revision"
else
  revision="unknown (not a git checkout)"
fi

echo "bench-inproc: $bin, min time ${min_time} s, ${repetitions} repetitions" >&2
times >"$work/times.start"
start_wall=$(date +%s.%N) start_busy=$(busy_seconds)
"$bin" --benchmark_min_time="$min_time" --benchmark_repetitions="$repetitions" \
  --benchmark_display_aggregates_only=true \
  --benchmark_out="$json" --benchmark_out_format=json >&2
# The two standalone programs: a tight-loop producer against slow senders
# (memory growth, add latency) and MutexPolicy's changes right after a
# broadcast. Their tables go into the summary as they are.
if [ "${SMOKE:-0}" = 1 ]; then smoke_flag=--smoke; else smoke_flag=; fi
"$mailbox_bin" $smoke_flag >"$work/inproc-mailbox.txt"
"$snapshot_bin" $smoke_flag >"$work/inproc-snapshot.txt"
end_wall=$(date +%s.%N) end_busy=$(busy_seconds)
times >"$work/times.end"
start_ours=$(children_cpu_seconds "$work/times.start")
end_ours=$(children_cpu_seconds "$work/times.end")

errors=$(jq -r '.benchmarks[] | select(.error_occurred == true) | "\(.name): \(.error_message)"' "$json")
if [ -n "$errors" ]; then
  echo "bench-inproc: benchmarks reported errors:" >&2
  echo "$errors" >&2
  exit 1
fi

# One row per benchmark: the median over the repetitions (or the single run
# when there is one), and the coefficient of variation of its wall time.
jq -r '
  def to_ns: if . == "ns" then 1 elif . == "us" then 1e3 elif . == "ms" then 1e6 else 1e9 end;
  def fixed(d): if . == null then "" else (. * d | round) / d | tostring end;
  .benchmarks as $all
  | [$all[] | select(.run_type == "aggregate" and .aggregate_name == "median")] as $medians
  | (if ($medians | length) > 0 then $medians
     else [$all[] | select(.run_type == "iteration")] end) as $rows
  | ([$all[] | select(.aggregate_name == "cv") | {key: .run_name, value: .real_time}]
     | from_entries) as $cv
  | "name,benchmark,variant,recipients,threads,ops_per_s,ns_per_recipient,ns_per_op,cv_pct,repetitions",
    ($rows[]
     | (.run_name | split("/")) as $part
     | [.run_name, $part[0], $part[1], (.recipients | fixed(1)), .threads,
        (.items_per_second | fixed(1)), (.ns_per_recipient | fixed(1000)),
        (.real_time * (.time_unit | to_ns) | fixed(10)),
        ($cv[.run_name] | if . == null then "" else . * 100 | fixed(10) end),
        .repetitions]
     | map(tostring) | join(","))
' "$json" >"$csv"

{
  jq -r '.context | "wsreg_registry_bench, \(.date), \(.host_name): \(.num_cpus) CPUs at \(.mhz_per_cpu) MHz, load average \(.load_avg | map(. * 100 | round / 100) | join(" ")) at start; Google Benchmark library built as \(.library_build_type)"' "$json"
  echo "source: $revision; min time ${min_time} s per run, medians of ${repetitions} repetitions; payload 64 bytes; null senders"
  awk -v w0="$start_wall" -v w1="$end_wall" -v b0="$start_busy" -v b1="$end_busy" \
      -v o0="$start_ours" -v o1="$end_ours" -v cpus="$(nproc)" 'BEGIN {
    wall = w1 - w0; ours = o1 - o0; other = (b1 - b0) - ours; if (other < 0) other = 0
    printf "during the run (%.0f s): the benchmarks used %.0f CPU-s, other processes %.0f CPU-s (%.0f %% of %d CPUs)\n",
      wall, ours, other, 100 * other / (wall * cpus), cpus
  }'
  awk -F, -v target="$target_ratio" '
    function human(x) {
      if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
      if (x >= 1e3) return sprintf("%.1fk", x / 1e3)
      return sprintf("%.0f", x)
    }
    NR == 1 { next }
    # Sizes and thread counts in the order the binary ran them (ascending).
    $2 == "broadcast" { ns[$3, $4] = $7; if (!($4 in seen_size)) { seen_size[$4]; sizes[++n_sizes] = $4 } }
    $2 == "publish" { pub[$3, $4] = $7; if (!($4 in seen_subs)) { seen_subs[$4]; subs[++n_subs] = $4 } }
    $2 == "mixed" { mixed[$3, $5] = $6; if (!($5 in seen_threads)) { seen_threads[$5]; threads[++n_threads] = $5 } }
    $2 == "churn" || $2 == "send_existing" || $2 == "send_unknown" { single[$2, $3] = $6 }
    END {
      printf "\nBroadcast: ns per recipient (ratio to the floor); target: actor and mutex <= %.1fx the floor\n", target
      printf "%10s %8s %16s %16s %16s %16s  %s\n", "recipients", "floor", "actor", "actor_roundtrip", "mutex", "naive", "target"
      for (i = 1; i <= n_sizes; i++) {
        r = sizes[i]; f = ns["floor", r]
        line = sprintf("%10s %8.2f", r, f)
        for (v = 1; v <= 4; v++) {
          name = (v == 1 ? "actor" : v == 2 ? "actor_roundtrip" : v == 3 ? "mutex" : "naive")
          cell = ((name, r) in ns && f > 0) ? sprintf("%.2f (%.2fx)", ns[name, r], ns[name, r] / f) : "-"
          line = line sprintf(" %16s", cell)
        }
        verdict = "met"
        if (f > 0 && ns["actor", r] / f > target) verdict = "MISSED by actor"
        if (f > 0 && ns["mutex", r] / f > target) verdict = (verdict == "met" ? "MISSED by mutex" : verdict " and mutex")
        print line "  " verdict
      }
      if (n_subs > 0) printf "\nPublish: ns per subscriber, a topic of S subscribers in a registry of 10,000 more (ratio to the broadcast floor at 1,000)\n"
      if (n_subs > 0) printf "%11s %16s %16s %16s\n", "subscribers", "actor", "actor_roundtrip", "mutex"
      f = ns["floor", 1000]
      for (i = 1; i <= n_subs; i++) {
        r = subs[i]; line = sprintf("%11s", r)
        split("actor actor_roundtrip mutex", pv, " ")
        for (v = 1; v <= 3; v++) {
          cell = ((pv[v], r) in pub && f > 0) ? sprintf("%.2f (%.2fx)", pub[pv[v], r], pub[pv[v], r] / f) : "-"
          line = line sprintf(" %16s", cell)
        }
        print line
      }
      printf "\nMixed load: operations per second (95 %% sends, 5 %% add/remove, 10,000 connections)\n"
      printf "%8s %12s %12s %12s\n", "threads", "actor", "mutex", "naive"
      for (i = 1; i <= n_threads; i++) {
        t = threads[i]
        printf "%8s %12s %12s %12s\n", t, human(mixed["actor", t]), human(mixed["mutex", t]), human(mixed["naive", t])
      }
      printf "\nSingle operations, one thread: operations per second (churn: add+remove pairs)\n"
      printf "%14s %12s %12s\n", "", "actor", "mutex"
      split("churn send_existing send_unknown", ops, " ")
      for (i = 1; i <= 3; i++) {
        printf "%14s %12s %12s\n", ops[i], human(single[ops[i], "actor"]), human(single[ops[i], "mutex"])
      }
    }' "$csv"
  printf "\nBacklog: wsreg_mailbox_bench\n"
  cat "$work/inproc-mailbox.txt"
  printf "\nChanges right after a broadcast: wsreg_snapshot_bench\n"
  cat "$work/inproc-snapshot.txt"
} >"$summary"

mv "$json" "$csv" "$summary" "$out/"
cat "$out/inproc-summary.txt"
echo
echo "bench-inproc: wrote $out/inproc.json, $out/inproc.csv, $out/inproc-summary.txt" >&2

if ! command -v gnuplot >/dev/null; then
  echo "bench-inproc: gnuplot is missing (apt-get install gnuplot-nox); no plots drawn" >&2
  exit 1
fi
gnuplot -c "$root/benchmarks/plots/inproc-throughput.gp" "$out/inproc.csv" "$img/inproc-throughput.png"
gnuplot -c "$root/benchmarks/plots/inproc-broadcast.gp" "$out/inproc.csv" "$img/inproc-broadcast.png"
echo "bench-inproc: drew $img/inproc-throughput.png, $img/inproc-broadcast.png" >&2
