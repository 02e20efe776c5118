# benchmarks/plots/cluster.gp: the cluster benchmark in one figure, from the
# summaries scripts/bench-cluster.sh writes (tab-separated, "?" = not run).
# Left: p50 and p99 tick latency of one node against three nodes over Redis
# and NATS (cluster-summary-latency.tsv: variant, p50_ms, p99_ms). Right:
# publications per second received through the broker against those offered
# on the ticking node (cluster-summary-throughput.tsv: offered, then one
# column per variant; single: delivered on the one node).
#   gnuplot -c benchmarks/plots/cluster.gp latency.tsv throughput.tsv cluster.png CONNECTIONS
set terminal pngcairo size 1280,560 font "sans,11"
set output ARG3
set datafile separator tab
set datafile missing "?"
set datafile columnheaders
set multiplot layout 1,2 title "Cluster: three wsreg nodes over Redis and NATS against one node (loopback, 2 shared vCPUs, medians of runs)"

set title sprintf("Tick latency, %s connections at 10 Hz (3 nodes: a third each)\n", ARG4)."{/*0.85 CLOCK\\_REALTIME at receipt minus at send on the ticking node}"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "latency, ms"
set yrange [0:*]
set grid ytics
set key top left
plot ARG1 using 2:xtic(1) title "p50" lc rgb "#1f77b4", \
     '' using 3 title "p99" lc rgb "#d62728", \
     '' using 0:3:(sprintf("%.2f", $3)) with labels offset 2.2,0.7 notitle, \
     '' using 0:2:(sprintf("%.2f", $2)) with labels offset -2.2,0.7 notitle

unset style
set style data linespoints
set title "Publications per second, 1 connection per node\n{/*0.85 offered: --rate of the ticking node; 1000000 = as fast as it goes}"
set xlabel "offered publications/s (log scale)"
set ylabel "received through the broker, /s (log scale)"
set logscale xy 10
set xrange [500:2000000]
set yrange [500:*]
set format x "10^{%T}"
set grid xtics ytics mxtics mytics
set key top left
color(i) = word("#222222 #d62728 #2ca02c #1f77b4", i - 1)
plot for [i=2:*] ARG2 using 1:i with linespoints lw 2 pt (i + 4) ps 1.3 lc rgb color(i) title columnheader(i)
unset multiplot
