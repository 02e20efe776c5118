# benchmarks/plots/e2e-throughput.gp: delivered frames per second against open
# connections when 1,000,000 frames/s are offered, one line per server variant,
# from the summary scripts/bench-e2e.sh writes (tab-separated: connections, then
# one median column per variant; "?" = not run).
#   gnuplot -c benchmarks/plots/e2e-throughput.gp e2e-summary-throughput.tsv e2e-throughput.png
tsv = ARG1
set terminal pngcairo size 960,640 font "sans,11"
set output ARG2
set datafile separator tab
set datafile missing "?"

set title "Broadcast throughput: frames delivered per second\n{/*0.85 1M frames/s offered, 64 KiB per-connection bound; median of runs; 2 shared cores}"
set xlabel "open connections"
set xrange [0:*]
set ylabel "delivered frames per second"
set format x "%.0f"
set format y "%.1s%c"
set yrange [0:*]
set grid xtics ytics
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
