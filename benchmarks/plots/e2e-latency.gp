# benchmarks/plots/e2e-latency.gp: p99 tick latency against open connections,
# one line per server variant, from the summary scripts/bench-e2e.sh writes
# (tab-separated: connections, then one median column per variant; "?" = not run).
#   gnuplot -c benchmarks/plots/e2e-latency.gp e2e-summary-latency.tsv e2e-latency.png
tsv = ARG1
set terminal pngcairo size 960,640 font "sans,11"
set output ARG2
set datafile separator tab
set datafile missing "?"

set title "Broadcast latency, p99 (10 ticks/s to every connection, loopback)\n{/*0.85 CLOCK\\_REALTIME at receipt minus at send; median of runs; server and load client share 2 cores}"
set xlabel "open connections"
set xrange [0:*]
set ylabel "p99 latency, ms (log scale)"
set logscale y 10
set format x "%.0f"
set grid xtics ytics mytics
set key outside right top box
set offsets graph 0.03, graph 0.03, 0, 0

# The script's default column order is actor, mutex, raw, node, actor-copy,
# mutex-copy, actor-publish, mutex-publish, then uws (red) where it was built:
# a -copy variant takes its policy's colour, dashed. "plot for [i=2:*]"
# evaluates color(i) for one column past the last, so the list needs a
# colour more than there are variants (nine variants with nine colours
# failed: "unrecognized color name").
color(i) = word("#1f77b4 #2ca02c #222222 #ff7f0e #1f77b4 #2ca02c #9467bd #8c564b #d62728 #e377c2 #17becf #bcbd22 #7f7f7f", i - 1)
dash(i) = i >= 6 && i <= 7 ? 2 : 1
plot for [i=2:*] tsv using 1:i with linespoints lw 2 pt (i + 4) ps 1.3 dt dash(i) \
     lc rgb color(i) title columnheader(i)
