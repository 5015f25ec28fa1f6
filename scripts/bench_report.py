#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Tables and plots of scripts/bench's results.tsv.

  bench_report.py table RESULTS.tsv          markdown tables on stdout
  bench_report.py plot RESULTS.tsv OUTDIR    rate_vs_size.png, rate_vs_tunnels.png (gnuplot)

results.tsv, one line per (row, program): part dir algo tunnels size frame_B program
median min max runs(comma list) drops(';' per run: "rx=N tx=N reason=N ..." for natt-gw,
"drop_pct=X" for ipsec-secgw), disturbed runs (counted in runs; the measured median, min
and max are over the others unless all were disturbed), run names (their
$WORK/logs/NAME.rate: rate, disturbed, worker share, busy cores, load).

The figure compared, plotted and turned into cycles/packet is Mpps per worker core: each
run's rate divided by the share of a core its worker thread got over the measured window.
The worker polls without pause, so the packets it forwards follow the CPU time it gets;
on a machine shared with other jobs this is the figure that compares runs. It leaves out
what sharing costs besides time (caches refilled after the other job ran). part is crypto, ceiling, sizes, tunnels or replay; for ceiling
rows, tunnels holds the scenario and frame_B the input frame; for crypto rows frame_B is the
payload imb_gcm_bench encrypted or decrypted.
"""
import collections
import os
import subprocess
import sys

Row = collections.namedtuple("Row", "part dir algo tunnels size frame gw med lo hi runs drops "
                             "bad names per share load")


def run_info(logs, names):
    """[(Mpps, worker share, load1)] of the runs, from their NAME.rate files."""
    out = []
    for n in names:
        try:
            f = open(os.path.join(logs, n + ".rate")).read().split()
        except OSError:
            continue
        if len(f) >= 5 and num(f[0]) == num(f[0]):
            out.append((num(f[0]), num(f[2]), num(f[4])))
    return out


def load(path):
    """Rows of results.tsv. per = Mpps per worker core: each run's rate divided by the
    share of a core its worker thread got (the poll loop works whenever it runs), median
    over all runs, with min and max; share and load: (min, max) over the runs."""
    rows, logs = [], os.path.join(os.path.dirname(os.path.abspath(path)), "logs")
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 12:
            continue
        f = (f + ["0", ""])[:14]
        info = run_info(logs, [x for x in f[13].split(",") if x])
        per = sorted(v / sh for v, sh, _ in info if sh == sh and sh > 0)
        r = Row(*f, per=(median(per), per[0], per[-1]) if per else None,
                share=(min(x[1] for x in info), max(x[1] for x in info)) if info else None,
                load=(min(x[2] for x in info), max(x[2] for x in info)) if info else None)
        rows.append(r._replace(frame=float(r.frame), med=num(r.med), lo=num(r.lo), hi=num(r.hi)))
    return rows


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def rate(r):
    """The figure compared and plotted: Mpps per worker core where the worker's share is
    known, else the measured Mpps."""
    return r.per[0] if r.per else r.med


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
    """Mpps per worker core, median [min-max] of the runs; then the measured Mpps (median
    of the undisturbed runs, or of all if none was) and the worker's share of its core
    (min-max over the runs; below 0.95 the run counts as disturbed)."""
    n = len([x for x in r.runs.split(",") if x])
    bad = int(r.bad or 0)
    if not r.per:
        return "%.2f [%.2f-%.2f]%s" % (r.med, r.lo, r.hi, " (%d of %d runs disturbed)" % (bad, n)
                                       if bad else "")
    return "%.2f [%.2f-%.2f] (%.2f measured, worker %.2f-%.2f)" % (
        r.per[0], r.per[1], r.per[2], r.med, r.share[0], r.share[1])


def ceiling_of(rows, d, size, scen="a"):
    c = [r for r in rows if r.part == "ceiling" and r.dir == d and r.size == size and
         r.tunnels.startswith(scen)]
    return rate(c[0]) if c else float("nan")


def best_secgw(rows, part, d, algo, tunnels, size):
    s = [r for r in rows if r.part == part and r.dir == d and r.algo == algo and
         r.tunnels == tunnels and r.size == size and r.gw.startswith("secgw") and rate(r) == rate(r)]
    return max(s, key=rate) if s else None


def target(v, need, what):
    return "met" if v >= need else "missed by %.0f %% (%.2f needed, %s)" % (
        100 * (1 - v / need), need, what)


def crypto_of(rows, d, algo, size):
    """Raw AES-GCM Mpps of a size class. IMIX has no run of its own: its 7:4:1 frames
    (46 / 552 / 1438-byte inner packets) are charged the time of the 64 / 512 / 1420-byte
    classes, 1 / ((7 / r64 + 4 / r512 + 1 / r1420) / 12)."""
    if size == "imix":
        r = [crypto_of(rows, d, algo, s) for s in ("28", "434", "1342")]
        if not all(x > 0 for x in r):
            return float("nan")
        return 12 / (7 / r[0] + 4 / r[1] + 1 / r[2])
    c = [r for r in rows if r.part == "crypto" and r.dir == d and r.algo == algo and r.size == size]
    return c[0].med if c else float("nan")


def limit_of(rows, r):
    """The harness's I/O ceiling and the raw AES-GCM rate together: a packet costs the
    time of both, so 1 / (1 / io + 1 / crypto) Mpps (nan where either is missing)."""
    io, cr = ceiling_of(rows, r.dir, r.size), crypto_of(rows, r.dir, r.algo, r.size)
    return 1 / (1 / io + 1 / cr) if io > 0 and cr > 0 else float("nan")


def size_target(v, secgw, lim):
    """The brief's target: 1.5x ipsec-secgw, or 90 % of the limit where 1.5x would pass it."""
    need, what = 1.5 * secgw, "1.5x"
    if lim == lim and 0.9 * lim < need:
        need, what = 0.9 * lim, "90 % of limit"
    return target(v, need, what)


def table_sizes(rows, hz):
    print("| direction | algo | ESP frame (B) | natt-gw Mpps per worker core, median [min-max] | "
          "Gbps (L2) | cycles/pkt | natt-gw drops | ipsec-secgw Mpps per worker core | secgw drops "
          "| ratio | 1.5x target | testpmd io ceiling (Mpps per core) | raw AES-GCM (Mpps) "
          "| limit (io + AES-GCM) | target: 1.5x, or 90 % of the limit where 1.5x passes it |")
    print("| --- " * 15 + "|")
    for r in rows:
        if r.part != "sizes" or r.gw != "natt-gw":
            continue
        s = best_secgw(rows, "sizes", r.dir, r.algo, r.tunnels, r.size)
        v, lim = rate(r), limit_of(rows, r)
        print("| %s | AES-GCM-%s | %.0f (%s) | %s | %.2f | %.0f | %s | %s | %s | %s | %s | %.2f "
              "| %.2f | %.2f | %s |" % (
                  r.dir + "bound", r.algo, r.frame, size_label(r.size), rng(r),
                  v * r.frame * 8 / 1000, hz / (v * 1e6), drops(r),
                  "%s (%s)" % (rng(s), s.gw[6:]) if s else "-",
                  drops(s) if s else "-", "%.2fx" % (v / rate(s)) if s else "-",
                  target(v, 1.5 * rate(s), "1.5x") if s else "-", ceiling_of(rows, r.dir, r.size),
                  crypto_of(rows, r.dir, r.algo, r.size), lim,
                  size_target(v, rate(s), lim) if s else "-"))


def table_tunnels(rows, hz):
    print("| direction | tunnels | ESP frame (B) | natt-gw Mpps per worker core, median [min-max] "
          "| cycles/pkt | vs 1 tunnel | 90 % target | natt-gw drops | testpmd io ceiling, "
          "1-tunnel capture (Mpps per core) |")
    print("| --- " * 9 + "|")
    base = {r.dir: rate(r) for r in rows if r.part == "tunnels" and r.gw == "natt-gw" and r.tunnels == "1"}
    for r in rows:
        if r.part != "tunnels" or r.gw != "natt-gw":
            continue
        v, b = rate(r), base.get(r.dir)
        print("| %s | %s | %.0f | %s | %.0f | %.2f | %s | %s | %.2f |" % (
            r.dir + "bound", "{:,}".format(int(r.tunnels)), r.frame, rng(r), hz / (v * 1e6),
            v / b if b else float("nan"), "-" if r.tunnels == "1" or not b else
            target(v, 0.9 * b, "90 %"), drops(r), ceiling_of(rows, r.dir, r.size, "t1")))


def table_replay(rows, hz):
    print("| natt-gw config | Mpps, median [min-max] of the runs (measured, not per core) | "
          "cycles/pkt | drops (all runs) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        if r.part == "replay" and r.med > 0:
            print("| replay_window = %s | %s | %.0f | %s |" % (
                r.gw.split("-")[-1], rng(r), hz / (r.med * 1e6), drops(r)))


def table_ceiling(rows):
    print("| input capture | frame (B, average) | testpmd io Mpps per core, median [min-max] |")
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
    cr = [r for r in rows if r.part == "crypto"]
    if cr:
        print("\nRaw AES-GCM, intel-ipsec-mb direct API, one core (imb_gcm_bench)\n")
        print("| direction | algo | payload (B) | Mpps, median [min-max] of 5 runs |")
        print("| --- | --- | --- | --- |")
        for r in cr:
            print("| %s | AES-GCM-%s | %.0f | %.2f [%.2f-%.2f] |" % (
                "decrypt" if r.dir == "in" else "encrypt", r.algo, r.frame, r.med, r.lo, r.hi))
    lo = [r.load[0] for r in rows if r.load]
    hi = [r.load[1] for r in rows if r.load]
    if lo:
        print("\n1-minute load average at the end of the runs: %.2f to %.2f" % (min(lo), max(hi)))


PLOT = """\
set terminal pngcairo size 900,640 font "sans,10" noenhanced
set grid
set key below
set ylabel "Mpps per worker core (log scale)"
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
set ylabel "Mpps per worker core"
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
        if r.part == "sizes" and rate(r) == rate(r):
            gw = "natt-gw" if r.gw == "natt-gw" else "ipsec-secgw (" + r.gw[6:] + ")"
            series.setdefault("%s %sbound AES-%s" % (gw, r.dir, r.algo), []).append(r)
        if r.part == "ceiling" and r.tunnels.startswith("a") and rate(r) == rate(r):
            series.setdefault("testpmd io %sbound (ceiling)" % r.dir, []).append(r)
    dat = os.path.join(out, "rate_vs_size.dat")
    with open(dat, "w") as f:
        for name, rs in series.items():
            f.write('"%s"\n' % name)
            for r in sorted(rs, key=lambda r: sizes.index(r.size) if r.size in sizes else 99):
                if r.size in sizes:
                    lo, hi = (r.per[1], r.per[2]) if r.per else (r.lo, r.hi)
                    f.write("%d %.3f %.3f %.3f\n" % (sizes.index(r.size), rate(r), lo, hi))
            f.write("\n\n")
    tser = collections.OrderedDict()
    for r in rows:
        if r.part == "tunnels" and r.gw == "natt-gw" and rate(r) == rate(r):
            tser.setdefault("natt-gw %sbound" % r.dir, []).append(r)
    tdat = os.path.join(out, "rate_vs_tunnels.dat")
    with open(tdat, "w") as f:
        for name, rs in tser.items():
            f.write('"%s"\n' % name)
            for r in sorted(rs, key=lambda r: int(r.tunnels)):
                lo, hi = (r.per[1], r.per[2]) if r.per else (r.lo, r.hi)
                f.write("%s %.3f %.3f %.3f\n" % (r.tunnels, rate(r), lo, hi))
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
