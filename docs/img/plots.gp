set terminal pngcairo size 900,640 font "sans,10" noenhanced
set grid
set key below
set ylabel "Mpps per worker core (log scale)"
set logscale y
set output "rate_vs_size.png"
set title "natt-gw vs ipsec-secgw, 1 tunnel, AES-GCM (scripts/bench)"
set xlabel "ESP frame (inner IPv4 length)"
set xrange [-0.5:4-0.5]
set xtics ("106 B (28)" 0, "510 B (434)" 1, "1418 B (1342)" 2, "IMIX, 407 B avg" 3)
set yrange [1:*]
plot for [i=0:9] "rate_vs_size.dat" index i using 1:2:3:4 with yerrorlines title columnheader(1)
set output "rate_vs_tunnels.png"
set title "natt-gw, AES-GCM-128, inner IPv4 28 B, traffic spread over N tunnels (scripts/bench)"
set xlabel "tunnels"
set logscale x
unset logscale y
set ylabel "Mpps per worker core"
set yrange [0:*]
set xrange [0.5:200000]
unset xtics
set xtics
plot for [i=0:1] "rate_vs_tunnels.dat" index i using 1:2:3:4 with yerrorlines title columnheader(1)
