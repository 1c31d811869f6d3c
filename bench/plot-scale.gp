# Plots bench-scale's CSV: per-VM event latency (median, with the p90 as a
# second line) and the time until all N VMs are ready, against N on a log
# axis.  Latency on the left axis, time to ready on the right one: they
# differ by orders of magnitude.
#
# Usage: gnuplot -e "csv='scale.csv'; out='scale.svg'" bench/plot-scale.gp
# CSV columns (bench-scale --csv):
#   n,ready_ms,latency_median_ms,latency_p90_ms,memory_per_vm_kib,stop_all_ms

if (!exists("csv")) csv = 'scale.csv'
if (!exists("out")) out = 'scale.svg'

set terminal svg size 900,540 dynamic enhanced font 'sans,12'
set output out
set datafile separator ','
set key autotitle columnhead top left box opaque

set title "libuvm: N paused qemu VMs in one process (TCG)"
set xlabel "number of VMs (N, log scale)"
set ylabel "event latency, resume -> RUNNING callback (ms)"
set y2label "time until all N are ready (ms)"
set logscale x
set xtics (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid xtics ytics
set offsets graph 0.05, graph 0.05, 0, 0

plot csv using 1:3 with linespoints lw 2 pt 7 title "event latency, median", \
     ''  using 1:4 with linespoints lw 1 dt 2 pt 6 title "event latency, p90", \
     ''  using 1:2 axes x1y2 with linespoints lw 2 pt 5 title "time until all ready"
