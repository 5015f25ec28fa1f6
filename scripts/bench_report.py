#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Tables and plots of scripts/bench's results.tsv.

  bench_report.py table RESULTS.tsv          markdown tables on stdout
  bench_report.py plot RESULTS.tsv OUTDIR    rate_vs_size.png, rate_vs_tunnels.png (gnuplot)

results.tsv, one line per (row, program): part dir algo tunnels size frame_B program
median min max runs(comma list) drops(';' per run: "rx=N tx=N reason=N ..." for natt-gw,
"drop_pct=X" for ipsec-secgw), disturbed runs (counted in runs; the median, min and max
are over the others unless all were disturbed). part is ceiling, sizes, tunnels or replay; for ceiling
rows, tunnels holds the scenario and frame_B the input frame.
"""
import collections
import os
import subprocess
import sys

Row = collections.namedtuple("Row", "part dir algo tunnels size frame gw med lo hi runs drops bad")


def load(path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 12:
            continue
        r = Row(*(f + ["0"])[:13])
        rows.append(r._replace(frame=float(r.frame), med=num(r.med), lo=num(r.lo), hi=num(r.hi)))
    return rows


def num(s):
    try:
        return float(s)
    except ValueError:
        return float("nan")


def tsc_hz():
    for line in open("/proc/cpuinfo"):
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    return float("nan")


def size_label(sz):
    return "IMIX" if sz == "imix" else "%s" % sz


def drops(r):
    """natt-gw: 'none' or 'reason N, ... (X % of rx)' summed over the runs; secgw: its
    median drop share."""
    runs = [x for x in r.drops.split(";") if x]
    if r.gw.startswith("secgw"):
        v = sorted(num(x.split("=")[1]) for x in runs if x.startswith("drop_pct="))
        v = [x for x in v if x == x]
        return "%.2f %%" % v[len(v) // 2] if v else "-"
    tot, rx = collections.Counter(), 0
    for x in runs:
        kv = dict(p.split("=") for p in x.split())
        rx += int(kv.pop("rx", 0))
        kv.pop("tx", None)
        tot.update({k: int(v) for k, v in kv.items()})
    if not tot:
        return "none"
    return ", ".join("%s %d" % kv for kv in tot.most_common()) + \
        " (%.3f %% of rx)" % (100.0 * sum(tot.values()) / rx if rx else float("nan"))


def rng(r):
    """median [min-max] of the undisturbed runs; '*' marks a row in which disturbed runs
    were kept (all of its runs were disturbed: they are then the median's)."""
    n = len([x for x in r.runs.split(",") if x])
    bad = int(r.bad or 0)
    mark = "" if not bad else " (%d of %d runs disturbed%s)" % (bad, n, ", all used" if bad == n else "")
    return "%.2f [%.2f-%.2f]%s" % (r.med, r.lo, r.hi, mark)


def ceiling_of(rows, d, size):
    c = [r for r in rows if r.part == "ceiling" and r.dir == d and r.size == size]
    # the sizes captures (a128...) first; t1 for the tunnel rows' size if only that exists
    c.sort(key=lambda r: not r.tunnels.startswith("a"))
    return c[0].med if c else float("nan")


def best_secgw(rows, part, d, algo, tunnels, size):
    s = [r for r in rows if r.part == part and r.dir == d and r.algo == algo and
         r.tunnels == tunnels and r.size == size and r.gw.startswith("secgw") and r.med == r.med]
    return max(s, key=lambda r: r.med) if s else None


def table_sizes(rows, hz):
    print("| direction | algo | ESP frame (B) | natt-gw Mpps, median [min-max] | Gbps (L2) | "
          "cycles/pkt | natt-gw drops | ipsec-secgw Mpps (best config) | secgw drops | ratio | "
          "1.5x target | testpmd io ceiling (Mpps) |")
    print("| --- " * 12 + "|")
    for r in rows:
        if r.part != "sizes" or r.gw != "natt-gw":
            continue
        s = best_secgw(rows, "sizes", r.dir, r.algo, r.tunnels, r.size)
        ratio, met = "-", "-"
        if s:
            ratio = "%.2fx" % (r.med / s.med)
            met = "met" if r.med >= 1.5 * s.med else \
                "missed by %.0f %% (%.2f needed)" % (100 * (1 - r.med / (1.5 * s.med)), 1.5 * s.med)
        print("| %s | AES-GCM-%s | %s (%s) | %s | %.2f | %.0f | %s | %s | %s | %s | %s | %.2f |" % (
            r.dir + "bound", r.algo, "%.0f" % r.frame, size_label(r.size), rng(r),
            r.med * r.frame * 8 / 1000, hz / (r.med * 1e6), drops(r),
            "%.2f (%s)" % (s.med, s.gw[6:]) if s else "-", drops(s) if s else "-", ratio, met,
            ceiling_of(rows, r.dir, r.size)))


def table_tunnels(rows, hz):
    print("| direction | tunnels | ESP frame (B) | natt-gw Mpps, median [min-max] | cycles/pkt | "
          "vs 1 tunnel | 90 % target | natt-gw drops | ipsec-secgw Mpps (best config) | ratio | "
          "testpmd io ceiling (Mpps) |")
    print("| --- " * 11 + "|")
    base = {r.dir: r.med for r in rows if r.part == "tunnels" and r.gw == "natt-gw" and r.tunnels == "1"}
    for r in rows:
        if r.part != "tunnels" or r.gw != "natt-gw":
            continue
        s = best_secgw(rows, "tunnels", r.dir, r.algo, r.tunnels, r.size)
        b = base.get(r.dir)
        rel = r.med / b if b else float("nan")
        met = "-" if r.tunnels == "1" else "met" if rel >= 0.9 else \
            "missed by %.0f %% (%.2f needed)" % (100 * (1 - rel / 0.9), 0.9 * b)
        c = [x for x in rows if x.part == "ceiling" and x.dir == r.dir and x.tunnels == "t1"]
        print("| %s | %s | %.0f | %s | %.0f | %.2f | %s | %s | %s | %s | %s |" % (
            r.dir + "bound", "{:,}".format(int(r.tunnels)), r.frame, rng(r), hz / (r.med * 1e6),
            rel, met, drops(r), "%.2f (%s)" % (s.med, s.gw[6:]) if s else "-",
            "%.2fx" % (r.med / s.med) if s else "-", "%.2f" % c[0].med if c else "-"))


def table_replay(rows, hz):
    print("| natt-gw config | Mpps, median [min-max] of the runs | cycles/pkt | drops (all runs) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        if r.part == "replay" and r.med > 0:
            print("| replay_window = %s | %s | %.0f | %s |" % (
                r.gw.split("-")[-1], rng(r), hz / (r.med * 1e6), drops(r)))


def table_ceiling(rows):
    print("| input capture | frame (B, average) | testpmd io Mpps, median [min-max] |")
    print("| --- | --- | --- |")
    for r in rows:
        if r.part == "ceiling":
            print("| %s/%s_%s | %.1f | %s |" % (r.tunnels, r.dir, size_label(r.size), r.frame, rng(r)))


def cmd_table(path):
    rows = load(path)
    hz = tsc_hz()
    for title, f in (("Packet sizes, 1 tunnel (4096-frame captures)", table_sizes),
                     ("Tunnel count", table_tunnels), ("Anti-replay on", table_replay)):
        print("\n%s (cycles/pkt at %.0f MHz)\n" % (title, hz / 1e6))
        f(rows, hz)
    print("\nHarness ceiling\n")
    table_ceiling(rows)


PLOT = """\
set terminal pngcairo size 900,640 font "sans,10" noenhanced
set grid
set key below
set ylabel "Mpps on one worker core (log scale)"
set logscale y
set output "rate_vs_size.png"
set title "natt-gw vs ipsec-secgw, 1 tunnel, AES-GCM (scripts/bench)"
set xlabel "ESP frame (inner IPv4 length)"
set xrange [-0.5:{nx}-0.5]
set xtics ({xtics})
set yrange [1:*]
plot for [i=0:{nsz}] "{dat}" index i using 1:2:3:4 with yerrorlines title columnheader(1)
set output "rate_vs_tunnels.png"
set title "natt-gw, AES-GCM-128, {tsize}, traffic spread over N tunnels (scripts/bench)"
set xlabel "tunnels"
set logscale x
unset logscale y
set ylabel "Mpps on one worker core"
set yrange [0:*]
set xrange [0.5:{xmax}]
unset xtics
set xtics
plot for [i=0:{ntu}] "{tdat}" index i using 1:2:3:4 with yerrorlines title columnheader(1)
"""


def cmd_plot(path, out):
    rows = load(path)
    os.makedirs(out, exist_ok=True)
    sizes = []
    for r in rows:
        if r.part == "sizes" and r.size not in sizes:
            sizes.append(r.size)
    series = collections.OrderedDict()
    for r in rows:
        if r.part == "sizes" and r.med == r.med:
            gw = "natt-gw" if r.gw == "natt-gw" else "ipsec-secgw (" + r.gw[6:] + ")"
            series.setdefault("%s %sbound AES-%s" % (gw, r.dir, r.algo), []).append(r)
        if r.part == "ceiling" and r.tunnels.startswith("a") and r.med == r.med:
            series.setdefault("testpmd io %sbound (ceiling)" % r.dir, []).append(r)
    dat = os.path.join(out, "rate_vs_size.dat")
    with open(dat, "w") as f:
        for name, rs in series.items():
            f.write('"%s"\n' % name)
            for r in sorted(rs, key=lambda r: sizes.index(r.size) if r.size in sizes else 99):
                if r.size in sizes:
                    f.write("%d %.3f %.3f %.3f\n" % (sizes.index(r.size), r.med, r.lo, r.hi))
            f.write("\n\n")
    tser = collections.OrderedDict()
    for r in rows:
        if r.part == "tunnels" and r.gw == "natt-gw" and r.med == r.med:
            tser.setdefault("natt-gw %sbound" % r.dir, []).append(r)
    tdat = os.path.join(out, "rate_vs_tunnels.dat")
    with open(tdat, "w") as f:
        for name, rs in tser.items():
            f.write('"%s"\n' % name)
            for r in sorted(rs, key=lambda r: int(r.tunnels)):
                f.write("%s %.3f %.3f %.3f\n" % (r.tunnels, r.med, r.lo, r.hi))
            f.write("\n\n")
    tsize = next((r.size for r in rows if r.part == "tunnels"), "?")
    xt = ", ".join('"%s" %d' % (next(("IMIX, %.0f B avg" % r.frame if sz == "imix" else
                                       "%.0f B (%s)" % (r.frame, sz)) for r in rows
                                      if r.part == "sizes" and r.size == sz), i)
                   for i, sz in enumerate(sizes))
    gp = PLOT.format(xtics=xt, dat="rate_vs_size.dat", tdat="rate_vs_tunnels.dat",
                     nx=len(sizes), nsz=max(0, len(series) - 1),
                     ntu=max(0, len(tser) - 1), xmax=2 * max([int(r.tunnels) for r in rows
                                                             if r.part == "tunnels"] or [1]), tsize="inner IPv4 %s B" % tsize)
    with open(os.path.join(out, "plots.gp"), "w") as f:
        f.write(gp)
    subprocess.run(["gnuplot", "plots.gp"], check=True, cwd=out)
    print("%s/rate_vs_size.png, %s/rate_vs_tunnels.png (gnuplot %s/plots.gp)" % (out, out, out))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "table":
        cmd_table(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "plot":
        cmd_plot(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
