# benchmarks/plots/inproc-broadcast.gp: nanoseconds per recipient of one
# broadcast against the number of recipients, for the floor, both policies
# and the naive design, from the CSV that scripts/bench-inproc.sh writes.
#   gnuplot -c benchmarks/plots/inproc-broadcast.gp inproc.csv inproc-broadcast.png
csv = ARG1
set terminal pngcairo size 960,660 font "sans,11"
set output ARG2
set datafile separator comma

set title "Broadcast cost per recipient (in-process, null senders)\n{/*0.85 64-byte payload; floor = a plain loop over the same senders; medians}"
set xlabel "recipients (connections in the registry)"
set ylabel "nanoseconds per recipient (log scale)"
set logscale x 10
set logscale y 10
set xtics ("1,000" 1000, "10,000" 10000, "100,000" 100000)
set xrange [700:140000]
set grid xtics ytics mytics
set key below box height 1 spacing 1.1
set bmargin 9

# Column 2 is the benchmark, 3 the variant, 4 the recipients, 7 ns per recipient.
pick(variant, x) = (strcol(2) eq "broadcast" && strcol(3) eq variant) ? x : NaN

plot csv every ::1 using (pick("floor", $4)):7 \
       with linespoints lw 2 pt 13 ps 1.2 lc rgb "black" title "floor (vector loop)", \
     csv every ::1 using (pick("floor", $4)):($7 * 3) \
       with lines lw 1.5 dt 3 lc rgb "#444444" title "target: 3x the floor", \
     csv every ::1 using (pick("actor", $4)):7 \
       with linespoints lw 2 pt 7 ps 1.2 lc rgb "#1f77b4" title "ActorPolicy (flush every 16)", \
     csv every ::1 using (pick("actor_roundtrip", $4)):7 \
       with linespoints lw 2 dt 4 pt 6 ps 1.2 lc rgb "#1f77b4" title "ActorPolicy, round trip", \
     csv every ::1 using (pick("mutex", $4)):7 \
       with linespoints lw 2 pt 5 ps 1.2 lc rgb "#d62728" title "MutexPolicy", \
     csv every ::1 using (pick("naive", $4)):7 \
       with linespoints lw 2 dt 2 pt 9 ps 1.2 lc rgb "#7f7f7f" title "naive (mutex, copy per recipient)"
