# benchmarks/plots/inproc-throughput.gp: mixed-load throughput against
# producer threads, one line per policy plus the naive reference, from the
# CSV that scripts/bench-inproc.sh writes.
#   gnuplot -c benchmarks/plots/inproc-throughput.gp inproc.csv inproc-throughput.png
csv = ARG1
set terminal pngcairo size 960,660 font "sans,11"
set output ARG2
set datafile separator comma

set title "Registry throughput under a mixed load (in-process, null senders)\n{/*0.85 95 % sends to random ids, 5 % add/remove, 10,000 connections, 64-byte payload; medians}"
set xlabel "producer threads (the machine has 2 cores: 4 and 8 oversubscribe it)"
set ylabel "throughput (million operations per second)"
set logscale x 2
set xtics ("1" 1, "2" 2, "4" 4, "8" 8)
set xrange [0.85:9.5]
set yrange [0:*]
set grid xtics ytics
set key below box height 1 spacing 1.1
set bmargin 9

# Column 2 is the benchmark, 3 the variant, 5 the threads, 6 the operations per second.
pick(benchmark, variant, x) = (strcol(2) eq benchmark && strcol(3) eq variant) ? x : NaN

plot csv every ::1 using (pick("mixed", "actor", $5)):($6 / 1e6) \
       with linespoints lw 2 pt 7 ps 1.2 lc rgb "#1f77b4" title "ActorPolicy (+ its actor thread)", \
     csv every ::1 using (pick("mixed", "mutex", $5)):($6 / 1e6) \
       with linespoints lw 2 pt 5 ps 1.2 lc rgb "#d62728" title "MutexPolicy", \
     csv every ::1 using (pick("mixed", "naive", $5)):($6 / 1e6) \
       with linespoints lw 2 dt 2 pt 9 ps 1.2 lc rgb "#7f7f7f" title "naive (mutex, copy per send)"
