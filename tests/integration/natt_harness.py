#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""natt_harness.py - run scripts/natt-gw over pcap vdevs and check what it did.

One run: config + input pcap in a fresh temp dir, the gateway started with
--exit-after-idle so it stops by itself, then its output pcap and --stats-json
are compared with what natt_traffic.Traffic says must happen. Each check prints
one `PASS ...` / `FAIL ...` line; Checker.finish() prints the totals and gives
the exit code.

Environment: NATT_BUILD (build dir, default <repo>/build; passed on to
scripts/natt-gw), NATT_SEED (reproduce a run), NATT_KEEP=1 (keep the temp dir
even when everything passed; it is always kept on failure).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import natt_traffic as nt

REPO = Path(__file__).resolve().parents[2]


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""),
              flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed or not self.passed else 0


class Run:
    """What one gateway run left behind."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.rc = None
        self.timed_out = False
        self.elapsed = 0.0
        self.log = os.path.join(workdir, "natt-gw.log")
        self.stats = None
        self.stats_error = None
        self.out = None
        self.out_error = None
        self.n_in = 0
        # outbound / multi-queue runs (see run_gateway)
        self.n_in_inside = 0
        self.out_q = {}
        self.outside_out = None
        self.outside_error = None
        self.rx_frames = {}

    def log_tail(self, n=25):
        try:
            with open(self.log, errors="replace") as f:
                lines = f.read().splitlines()
            return "\n".join("    | " + l for l in lines[-n:])
        except OSError as e:
            return "    | (no log: %s)" % e


def build_dir():
    return os.environ.get("NATT_BUILD") or str(REPO / "build")


def make_workdir(name):
    # the path goes into comma-separated --vdev arguments: keep it plain
    return tempfile.mkdtemp(prefix="natt-%s-" % re.sub(r"[^A-Za-z0-9_.-]", "_", name))


def _per_queue(frames, n):
    """frames as one list per queue: None -> all empty; a list of frames ->
    all on queue 0; a list of n lists -> as given."""
    if frames is None:
        return [[] for _ in range(n)]
    frames = list(frames)
    if frames and isinstance(frames[0], (list, tuple)):
        if len(frames) != n:
            raise ValueError("%d per-queue frame lists for %d queues" % (len(frames), n))
        return [list(q) for q in frames]
    return [frames] + [[] for _ in range(n - 1)]


def worker_lcores(workers):
    """EAL --lcores value: main lcore 0 on CPU 0, workers 1..n spread over the
    other CPUs (several per CPU when there are fewer CPUs than workers)."""
    cpus = sorted(os.sched_getaffinity(0))
    others = cpus[1:] or cpus
    return ",".join(["0@%d" % cpus[0]] + ["%d@%d" % (i + 1, others[i % len(others)])
                                         for i in range(workers)])


def run_gateway(workdir, cfg_text, frames, idle_ms=1500, timeout=120, lcores="0,1",
                inside_frames=None, workers=1, capture_outside=False, eal_lcores=None):
    """Write config + pcaps into workdir and run scripts/natt-gw on them.

    frames: what the outside port (0) receives; inside_frames: what the inside
    port (1) receives (default: nothing). Each is a list of frames (all on RX
    queue 0) or, with workers > 1, a list of one list per RX queue. Worker i
    polls RX/TX queue i of every port; net_pcap makes one queue per
    rx_pcap=/tx_pcap= argument, so every port gets `workers` of each.
    capture_outside: also write what the outside port sends (outside_out*.pcap).
    With workers > 1 the lcores are given as --lcores (worker_lcores(), or
    eal_lcores if given, e.g. "0@0,1@0,2@1").

    The Run has .out (inside port TX, all queues in queue order), .out_q[port]
    (one list per TX queue; port 0 only with capture_outside), .outside_out
    (port 0 TX, queues concatenated), .n_in / .n_in_inside (RX frames given)."""
    run = Run(workdir)
    nq = workers
    cfg = os.path.join(workdir, "natt.cfg")
    stats = os.path.join(workdir, "stats.json")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    sfx = lambda q: "" if q == 0 else str(q)
    outside_rx = _per_queue(frames, nq)
    inside_rx = _per_queue(inside_frames, nq)
    pin = [os.path.join(workdir, "in%s.pcap" % sfx(q)) for q in range(nq)]
    for path, fr in zip(pin, outside_rx):
        nt.write_pcap(path, fr)
    if inside_frames is None:
        pinside = [os.path.join(workdir, "empty%s.pcap" % sfx(q)) for q in range(nq)]
    else:
        pinside = [os.path.join(workdir, "inside_in%s.pcap" % sfx(q)) for q in range(nq)]
    for path, fr in zip(pinside, inside_rx):
        nt.write_pcap(path, fr)
    pout = [os.path.join(workdir, "out%s.pcap" % sfx(q)) for q in range(nq)]
    poutside = [os.path.join(workdir, "outside_out%s.pcap" % sfx(q)) for q in range(nq)]
    run.n_in = sum(len(q) for q in outside_rx)
    run.n_in_inside = sum(len(q) for q in inside_rx)
    run.rx_frames = {0: outside_rx, 1: inside_rx}
    gwscript = REPO / "scripts" / "natt-gw"
    vdev0 = "net_pcap0," + ",".join("rx_pcap=%s" % p for p in pin)
    if capture_outside:
        vdev0 += "," + ",".join("tx_pcap=%s" % p for p in poutside)
    vdev1 = "net_pcap1," + ",".join("rx_pcap=%s" % p for p in pinside) + "," + \
        ",".join("tx_pcap=%s" % p for p in pout)
    if eal_lcores:
        lc = ["--lcores", eal_lcores]
    elif workers > 1 and lcores == "0,1":
        lc = ["--lcores", worker_lcores(workers)]
    else:
        lc = ["-l", lcores]
    # By default the inside port gets an empty rx capture: the gateway polls
    # it, reads EOF.
    cmd = [str(gwscript), "--config", cfg, "--stats-json", stats,
           "--exit-after-idle", str(idle_ms), "--"] + lc + [
           "--no-pci", "--vdev", vdev0, "--vdev", vdev1]
    env = dict(os.environ, NATT_BUILD=build_dir())
    with open(os.path.join(workdir, "cmd.txt"), "w") as f:
        f.write("NATT_BUILD=%s %s\n" % (env["NATT_BUILD"], " ".join(cmd)))
    t0 = time.monotonic()
    with open(run.log, "wb") as log:
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=env, cwd=workdir,
                                 start_new_session=True)
        except OSError as e:
            log.write(("cannot start %s: %s\n" % (gwscript, e)).encode())
            run.rc = -1
            return run
        try:
            run.rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            run.timed_out = True
            _stop_group(p)
    run.elapsed = time.monotonic() - t0
    try:
        with open(stats) as f:
            run.stats = json.load(f)
    except (OSError, ValueError) as e:
        run.stats_error = str(e)
    run.out_q = {}
    try:
        run.out_q[1] = [nt.read_pcap(p) for p in pout]
        run.out = [fr for q in run.out_q[1] for fr in q]
    except (OSError, ValueError) as e:
        run.out_error = str(e)
    if capture_outside:
        try:
            run.out_q[0] = [nt.read_pcap(p) for p in poutside]
            run.outside_out = [fr for q in run.out_q[0] for fr in q]
        except (OSError, ValueError) as e:
            run.outside_error = str(e)
    return run


def _stop_group(p):
    """Stop the process group we started (the gateway and its children)."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


def finish_workdir(ck, workdir, failed_before):
    if ck.failed > failed_before or os.environ.get("NATT_KEEP"):
        print("     files kept in %s (cmd.txt, natt.cfg, in.pcap, out.pcap, stats.json, "
              "natt-gw.log)" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- checks

def check_run(ck, tag, run, timeout):
    ok = run.rc == 0 and not run.timed_out
    if run.timed_out:
        d = "did not exit within %d s (killed)" % timeout
    else:
        d = "exit code %s after %.1f s" % (run.rc, run.elapsed)
    if not ok:
        d += "\n" + run.log_tail()
    ck.check(ok, "%s: gateway run" % tag, d)
    ck.check(run.out is not None, "%s: output pcap readable" % tag, run.out_error or "")
    ck.check(run.stats is not None, "%s: stats json readable" % tag, run.stats_error or "")


def _hexctx(b, off, n=8):
    lo = max(0, off - n)
    return "%s[%02x]%s" % (b[lo:off].hex(), b[off], b[off + 1:off + 1 + n].hex()) \
        if off < len(b) else b[lo:].hex() + "[end]"


def _ip_of(frame):
    """(IPv4 bytes by total length, trailing bytes) of an output frame."""
    if len(frame) < 34:
        return frame[14:], b""
    tl = (frame[16] << 8) | frame[17]
    return frame[14:14 + tl], frame[14 + tl:]


def check_output(ck, tag, tr, run):
    """(a) the inside port sent exactly the expected inner packets, in order."""
    exp = tr.expected_out()
    name = "%s: output packets (%d expected)" % (tag, len(exp))
    if not exp:
        return ck.check(False, name, "test bug: no packet is expected to be forwarded")
    if run.out is None:
        return ck.check(False, name, "no output pcap")
    act = run.out
    diff = None
    for i, (e, a) in enumerate(zip(exp, act)):
        ip, trail = _ip_of(a)
        if ip != e.out_ip:
            off = next((k for k in range(min(len(ip), len(e.out_ip))) if ip[k] != e.out_ip[k]),
                       min(len(ip), len(e.out_ip)))
            diff = ("packet #%d (input frame %d: %s) differs at IPv4 byte %d (%s): expected %s, "
                    "got %s; lengths %d vs %d"
                    % (i, tr.frames.index(e), e.label(), off, nt.ip_field(off),
                       _hexctx(e.out_ip, off), _hexctx(ip, off), len(e.out_ip), len(ip)))
            break
        if trail and not (len(a) == 60 and trail == b"\0" * len(trail)):
            diff = ("packet #%d (%s): %d bytes after the IPv4 packet (frame %d bytes)"
                    % (i, e.label(), len(trail), len(a)))
            break
    if diff is None and len(exp) != len(act):
        if len(act) < len(exp):
            e = exp[len(act)]
            diff = "%d packets instead of %d; first missing: %s" % (len(act), len(exp), e.label())
        else:
            diff = "%d packets instead of %d; first extra: %s" % (
                len(act), len(exp), bytes(_ip_of(act[len(exp)])[0][:40]).hex())
    if diff is not None:
        # Say whether it is an order problem or a content problem.
        want = {}
        for e in exp:
            want.setdefault(e.out_ip, []).append(e)
        got = [_ip_of(a)[0] for a in act]
        extra = 0
        for g in got:
            if want.get(g):
                want[g].pop()
            else:
                extra += 1
        missing = [e for l in want.values() for e in l]
        diff += ("\n     as multisets: %d expected packets missing, %d unexpected packets%s"
                 % (len(missing), extra,
                    " (same packets, different order)" if not missing and not extra else ""))
        for e in missing[:5]:
            diff += "\n       missing: frame %d %s" % (tr.frames.index(e), e.label())
    return ck.check(diff is None, name, diff or "")


def check_ethernet(ck, tag, gw, run):
    name = "%s: output Ethernet dst %s, type 0x0800" % (tag, gw.inside_next_hop)
    if not run.out:
        return ck.check(False, name, "no output packets")
    dst = nt.mac_bytes(gw.inside_next_hop)
    bad = [i for i, a in enumerate(run.out) if a[0:6] != dst or a[12:14] != b"\x08\x00"]
    d = ""
    if bad:
        a = run.out[bad[0]]
        d = "%d frames wrong, first #%d: dst %s type %s" % (
            len(bad), bad[0], a[0:6].hex(":"), a[12:14].hex())
    return ck.check(not bad, name, d)


def drop_reasons():
    """Drop reason names from dataplane/include/natt_drop.h (the X-macro list
    is the single source of truth); natt_traffic's list if it cannot be read."""
    try:
        with open(REPO / "dataplane" / "include" / "natt_drop.h") as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        names = re.findall(r'_\(\s*[A-Z_0-9]+\s*,\s*"([a-z_0-9]+)"', text)
        if names:
            return names
    except OSError:
        pass
    return list(nt.DROP_REASONS)


def check_drops(ck, tag, tr, run):
    """(b) every drop counter equals the number of frames tagged with it."""
    exp = tr.expected_drops()
    drops = (run.stats or {}).get("drops")
    if not isinstance(drops, dict):
        return ck.check(False, "%s: drop counters" % tag, "no 'drops' object in stats")
    reasons = drop_reasons()
    tagged = sorted(r for r, n in exp.items() if n and r not in reasons)
    ck.check(not tagged, "%s: every tagged reason exists in natt_drop.h" % tag,
             "not in the dataplane's list: %s" % ", ".join(tagged))
    for r in reasons:
        exp.setdefault(r, 0)
        got = drops.get(r)
        d = "expected %d, got %s" % (exp[r], got)
        if got != exp[r]:
            ex = [f.label() for f in tr.frames if f.verdict == r][:4]
            if ex:
                d += "; tagged %s: %s" % (r, " | ".join(ex))
        ck.check(got == exp[r], "%s: drops.%s == %d" % (tag, r, exp[r]), d)
    unknown = sorted(set(drops) - set(reasons))
    ck.check(not any(drops[u] for u in unknown), "%s: no unknown drop reason counted" % tag,
             ", ".join("%s=%s" % (u, drops[u]) for u in unknown))


def check_accounting(ck, tag, run):
    """(c) every input frame is either sent or counted in exactly one drop."""
    drops = (run.stats or {}).get("drops") or {}
    n_out = len(run.out or [])
    total = sum(v for v in drops.values() if isinstance(v, int))
    ck.check(run.n_in == n_out + total and n_out > 0,
             "%s: accounting in == out + drops" % tag,
             "%d in, %d out, %d dropped (difference %d)" % (run.n_in, n_out, total,
                                                           run.n_in - n_out - total))
    c = (run.stats or {}).get("counters") or {}
    ck.check(c.get("rx_packets") == run.n_in and c.get("tx_packets") == n_out,
             "%s: counters rx_packets/tx_packets" % tag,
             "expected %d/%d, got %s/%s" % (run.n_in, n_out, c.get("rx_packets"),
                                            c.get("tx_packets")))
    ports = {p.get("port"): p for p in (run.stats or {}).get("ports") or []}
    p0, p1 = ports.get(0, {}), ports.get(1, {})
    ck.check(p0.get("rx_packets") == run.n_in and p1.get("tx_packets") == n_out
             and p1.get("rx_packets") in (0, None) and p0.get("tx_packets") in (0, None),
             "%s: port counters (0 rx, 1 tx)" % tag,
             "expected port0 rx %d tx 0, port1 rx 0 tx %d; got port0 %s, port1 %s"
             % (run.n_in, n_out, p0 or "missing", p1 or "missing"))
    dec = c.get("decrypted")
    ck.check(isinstance(dec, int) and dec >= n_out, "%s: counters.decrypted >= forwarded" % tag,
             "decrypted %s, forwarded %d" % (dec, n_out))


def check_tunnels(ck, tag, tr, run, idle=()):
    """(d) per-tunnel counters agree with the frames attributed to each tunnel."""
    tun = (run.stats or {}).get("tunnels")
    if not isinstance(tun, dict):
        return ck.check(False, "%s: per-tunnel counters" % tag, "no 'tunnels' object in stats")
    exp = tr.per_tunnel()
    for key in ("in_packets", "in_bytes", "auth_failed", "replay", "policy"):
        bad = []
        total = 0
        for name, c in exp.items():
            got = (tun.get(name) or {}).get(key)
            total += c[key]
            if got != c[key]:
                bad.append("%s expected %d got %s" % (name, c[key], got))
        d = "%d tunnels, total %d" % (len(exp), total)
        if bad:
            d = "%d of %d tunnels wrong: %s" % (len(bad), len(exp), "; ".join(bad[:6]))
        ok = not bad and (total > 0 or key != "in_packets")
        ck.check(ok, "%s: tunnels.*.%s" % (tag, key), d)
    bad = []
    for name, c in exp.items():
        ls = (tun.get(name) or {}).get("last_seen_unix", "missing")
        want_null = name in idle
        if want_null and ls is not None:
            bad.append("%s (no traffic) last_seen %s" % (name, ls))
        if not want_null and c["in_packets"] and not isinstance(ls, (int, float)):
            bad.append("%s last_seen %s" % (name, ls))
        if isinstance(ls, (int, float)) and not (time.time() - 3600 < ls <= time.time() + 5):
            bad.append("%s last_seen %s not recent" % (name, ls))
    ck.check(not bad, "%s: tunnels.*.last_seen_unix (null when idle)" % tag,
             "; ".join(bad[:6]))


def check_all(ck, tag, gw, tr, run, timeout, idle=()):
    check_run(ck, tag, run, timeout)
    check_output(ck, tag, tr, run)
    check_ethernet(ck, tag, gw, run)
    check_drops(ck, tag, tr, run)
    check_accounting(ck, tag, run)
    check_tunnels(ck, tag, tr, run, idle)


def self_check(ck, tag, tr):
    """The traffic itself decodes as intended with scapy / AESGCM."""
    errs = nt.verify_traffic(tr)
    ck.check(not errs, "%s: generated traffic self-check (%d frames)" % (tag, len(tr.frames)),
             "; ".join(errs[:5]))
    return not errs


def seed():
    s = os.environ.get("NATT_SEED")
    s = int(s, 0) if s else int.from_bytes(os.urandom(4), "big")
    print("seed %d (rerun with NATT_SEED=%d)" % (s, s), flush=True)
    return s


def gateway_present(ck):
    gwscript = REPO / "scripts" / "natt-gw"
    dp = Path(build_dir()) / "dataplane" / "natt-dataplane"
    ok = gwscript.exists() and os.access(gwscript, os.X_OK)
    return ck.check(ok and dp.exists(), "gateway built",
                    "%s %s, %s %s" % (gwscript, "ok" if ok else "missing/not executable",
                                      dp, "ok" if dp.exists() else "missing"))


# ================================================================ outbound checks
#
# Everything the gateway sends on the outside port is decoded by
# natt_traffic.decode_outbound (scapy's ESP + AESGCM) and by tshark, and
# compared with natt_traffic.OutTraffic's reference model of what a correct
# gateway sends. Nothing is compared with natt-gw's own idea of its output.

TSHARK_DISABLE = ("dns", "sip", "vxlan", "tls", "http", "ssh", "mdns", "llmnr", "nbns",
                  "quic", "snmp", "ntp", "rtp", "rtcp", "bootp", "tftp", "syslog")


def for_tshark(frame):
    """Wireshark picks the UDP dissector by port (lower port first): with a
    remote_port below 4500 it would not see ESP. Give it a copy with both UDP
    ports 4500 (ESP does not cover them; checksum 0 stays valid)."""
    if len(frame) >= 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
        u = 14 + (frame[14] & 0xF) * 4
        return frame[:u] + b"\x11\x94\x11\x94" + frame[u + 4:]
    return frame


def tshark_esp(workdir, name, frames, sas):
    """Decrypt ESP-in-UDP frames with tshark (Wireshark's ESP dissector, esp_sa
    table with the keys). sas: [(spi, key || salt)]. Returns {frame index:
    (spi, seq, iv bytes, decrypted plaintext incl. trailer)}; frames tshark did
    not decrypt are absent. Raises RuntimeError if tshark fails."""
    pcap = os.path.join(workdir, name + "-tshark.pcap")
    nt.write_pcap(pcap, [for_tshark(f) for f in frames])
    cmd = ["tshark", "-n", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE"]
    for proto in TSHARK_DISABLE:
        cmd += ["--disable-protocol", proto]
    for spi, key in sas:
        cmd += ["-o", 'uat:esp_sa:"IPv4","*","*","0x%08x","AES-GCM with 16 octet ICV [RFC4106]",'
                '"0x%s","NULL",""' % (spi, key.hex())]
    cmd += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for f in ("frame.number", "esp.spi", "esp.sequence", "esp.iv", "esp.decrypted_data"):
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("tshark failed: %s" % p.stderr.strip()[-500:])
    res = {}
    for line in p.stdout.splitlines():
        c = line.split("\t")
        if len(c) >= 5 and c[1] and c[4]:
            res[int(c[0]) - 1] = (int(c[1], 0), int(c[2] or "-1", 0),
                                  bytes.fromhex(c[3].replace(":", "")),
                                  bytes.fromhex(c[4].replace(":", "")))
    return res


def _first(errs, n=4):
    return "; ".join(errs[:n]) + (" (+%d more)" % (len(errs) - n) if len(errs) > n else "")


def decode_queues(gw, tunnels, queues, df_mode="copy", esn_cross=True):
    """decode_outbound over per-queue frame lists; indexes are per queue."""
    recs = []
    for q, frames in enumerate(queues):
        recs += nt.decode_outbound(gw, tunnels, frames, df_mode, queue=q,
                                   esn_cross=esn_cross)
    return recs


def check_outbound_frames(ck, tag, gw, tunnels, queues, df_mode="copy", workdir=None,
                          tshark=True, esn_cross=True):
    """Every frame on the outside port: headers, decryption by scapy and by
    AESGCM, IV, trailer, lengths, TOS/DF; then tshark decrypts them all to the
    same plaintext. Returns the OutRecs."""
    recs = decode_queues(gw, tunnels, queues, df_mode, esn_cross)
    n = len(recs)
    ck.check(n > 0, "%s: outside port sent ESP-in-UDP frames" % tag, "%d frames" % n)
    for cat, desc in nt.OUT_CHECKS:
        if cat == "esn" and not esn_cross:
            continue
        bad = ["%s: %s" % (r.where(), r.err[cat]) for r in recs if cat in r.err]
        ck.check(n > 0 and not bad, "%s: %s" % (tag, desc),
                 ("%d of %d frames: " % (len(bad), n) + _first(bad)) if bad else
                 "%d frames" % n)
    algos = {(r.tunnel.algorithm, r.tunnel.esn) for r in recs if r.inner is not None}
    if not isinstance(ck, RecordingChecker):
        print("     decrypted with scapy: %s" % ", ".join(
            "%s%s" % (a, " ESN" if e else "") for a, e in sorted(algos)), flush=True)
    if tshark and n:
        check_tshark(ck, tag, tunnels, queues, recs, workdir)
    return recs


def check_tshark(ck, tag, tunnels, queues, recs, workdir):
    if not shutil.which("tshark"):
        return ck.check(False, "%s: tshark decrypts every frame" % tag, "tshark not installed")
    by_q = {}
    for r in recs:
        by_q.setdefault(r.queue, {})[r.index] = r
    errs, nd = [], 0
    for q, frames in enumerate(queues):
        if not frames:
            continue
        try:
            dec = tshark_esp(workdir or tempfile.gettempdir(), "%s-q%d" % (
                re.sub(r"[^A-Za-z0-9_.-]", "_", tag), q), frames,
                [(t.out_spi, t.out_key) for t in tunnels])
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            errs.append(str(e))
            continue
        for i in range(len(frames)):
            r = by_q.get(q, {}).get(i)
            got = dec.get(i)
            if r is None or r.tunnel is None:
                continue
            if got is None:
                errs.append("%s: tshark did not decrypt it" % r.where())
                continue
            nd += 1
            spi, seq, iv, plain = got
            if spi != r.spi or seq != r.seq or iv != r.iv:
                errs.append("%s: tshark reads spi 0x%08x seq %d iv %s" % (r.where(), spi, seq,
                                                                          iv.hex()))
            elif r.plain is None:
                errs.append("%s: tshark decrypts what AESGCM rejects" % r.where())
            elif plain != r.plain:
                errs.append("%s: tshark's plaintext differs from AESGCM's" % r.where())
            else:
                padlen, nh = plain[-2], plain[-1]
                body = plain[:len(plain) - 2 - padlen]
                if nh != 4 or plain[len(body):-2] != bytes(range(1, padlen + 1)) or \
                        body != r.inner:
                    errs.append("%s: tshark: next header %d, pad %d, inner %s scapy's"
                                % (r.where(), nh, padlen, "=" if body == r.inner else "!="))
    want = sum(1 for r in recs if r.tunnel is not None)
    ck.check(not errs and nd == want and nd > 0,
             "%s: tshark decrypts all %d frames to the same inner packets, IV, seq, trailer"
             % (tag, want), _first(errs) if errs else "%d decrypted" % nd)


def check_sequences(ck, tag, recs, tunnels, per_queue_order=True):
    """Per tunnel: sequence numbers unique and exactly 1..N over the whole
    output; within each TX queue they go out in increasing order."""
    seqs = defaultdict(list)
    for r in recs:
        if r.tunnel is not None:
            seqs[r.tunnel.name].append((r.queue, r.index, r.seq64))
    bad, bad_order = [], []
    for t in tunnels:
        s = seqs.get(t.name, [])
        nums = sorted(x[2] for x in s)
        if nums != list(range(1, len(nums) + 1)):
            dup = sorted(n for n, c in Counter(nums).items() if c > 1)
            miss = sorted(set(range(1, len(nums) + 1)) - set(nums))
            bad.append("%s: %d packets, duplicates %s, missing %s, range %s..%s"
                       % (t.name, len(nums), dup[:5], miss[:5], nums[0] if nums else "-",
                          nums[-1] if nums else "-"))
        for q in {x[0] for x in s}:
            inq = [x[2] for x in sorted(s) if x[0] == q]
            if inq != sorted(inq):
                k = next(i for i in range(1, len(inq)) if inq[i] < inq[i - 1])
                bad_order.append("%s tx queue %d: seq %d sent after %d"
                                 % (t.name, q, inq[k], inq[k - 1]))
    total = sum(len(v) for v in seqs.values())
    ck.check(not bad and total > 0,
             "%s: per tunnel, sequence numbers unique and contiguous 1..N" % tag,
             _first(bad) if bad else "%d tunnels, %d packets" % (len(seqs), total))
    if per_queue_order:
        ck.check(not bad_order and total > 0,
                 "%s: per tunnel and TX queue, sequence numbers leave in increasing order" % tag,
                 _first(bad_order))
    return seqs


def match_outbound(otr, recs):
    """Match decrypted inner packets to the reference model's expectations.
    Returns (matches: rec id -> OutFrame, frag_groups: OutFrame -> [recs],
    missing: [OutFrame], unexpected: [rec])."""
    want = defaultdict(list)
    for f in otr.forwarded():
        if not f.frag:
            want[(f.tunnel.name, f.expect)].append(f)
    fragw = {}
    for f in otr.forwarded():
        if f.frag:
            e = f.expect
            fragw[(f.tunnel.name, e[4:6], e[9], e[12:20])] = f
    matches, groups, unexpected = {}, defaultdict(list), []
    for r in sorted((r for r in recs if r.inner is not None), key=lambda r: (r.tunnel.name, r.seq64)):
        l = want.get((r.tunnel.name, r.inner))
        if l:
            matches[id(r)] = l.pop(0)
            continue
        i = r.inner
        if len(i) >= 20 and (ip_mf_or_off(i)):
            g = fragw.get((r.tunnel.name, i[4:6], i[9], i[12:20]))
            if g is not None:
                groups[g].append(r)
                matches[id(r)] = g
                continue
        unexpected.append(r)
    missing = [f for l in want.values() for f in l]
    missing += [f for f in fragw.values() if f not in groups]
    missing.sort(key=lambda f: f.index)
    return matches, groups, missing, unexpected


def ip_mf_or_off(ip):
    return nt.ip_mf(ip) or nt.ip_frag_off(ip) != 0


def _explain_unexpected(otr, r):
    """Best guess at what an unexpected inner packet is."""
    i = r.inner
    for f in otr.frames:
        if f.ip is None:
            continue
        if f.expect is not None and f.expect == i:
            return "= expected packet %s, but sent in tunnel %s" % (f.label(), r.tunnel.name)
        if f.ip == i:
            return "= input %s unchanged (TTL not decremented?)" % f.label()
        if len(f.ip) == len(i) and f.ip[12:20] == i[12:20] and f.ip[4:6] == i[4:6]:
            exp = f.expect or nt.outbound_expected(f.ip, otr.clamp)
            off = next((k for k in range(len(i)) if i[k] != exp[k]), None)
            return "like input %s (%s) but differs at byte %s (%s): expected %s got %s" % (
                f.label(), f.verdict, off, nt.ip_field(off) if off is not None else "-",
                _hexctx(exp, off) if off is not None else "", _hexctx(i, off) if off is not None else "")
    return "matches no input (%d bytes %s)" % (len(i), i[:24].hex())


def check_outbound_content(ck, tag, otr, recs, ordered=True):
    """Every packet the model forwards went out exactly once, in its tunnel,
    as expected (TTL - 1, MSS clamp), fragments reassembling to it; and, with
    one worker, in input order per tunnel."""
    matches, groups, missing, unexpected = match_outbound(otr, recs)
    n_exp = len(otr.forwarded())
    errs = ["missing: %s" % f.label() for f in missing[:4]]
    errs += ["unexpected %s: %s" % (r.where(), _explain_unexpected(otr, r)) for r in unexpected[:4]]
    ck.check(not missing and not unexpected and n_exp > 0,
             "%s: every forwarded packet sent exactly once in its tunnel, inner = input "
             "with TTL - 1 (%d expected)" % (tag, n_exp),
             ("%d missing, %d unexpected; " % (len(missing), len(unexpected)) + "; ".join(errs))
             if errs else "")
    fr = [f for f in otr.forwarded() if f.frag]
    if fr:
        ferrs = []
        for f in fr:
            rs = sorted(groups.get(f, []), key=lambda r: r.seq64)
            if not rs:
                continue
            e = nt.check_fragments([r.inner for r in rs], f.expect, otr.L)
            seqs = [r.seq64 for r in rs]
            if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                e.append("fragments' sequence numbers not consecutive: %s" % seqs)
            ferrs += ["%s: %s" % (f.label(), x) for x in e]
        ck.check(not ferrs, "%s: %d DF-clear oversize packets fragmented before encryption "
                 "(each <= %d B, one ESP each), reassemble to the input with TTL - 1"
                 % (tag, len(fr), otr.L), _first(ferrs))
    if ordered:
        # Packets keep their input order per tunnel; a fragmented packet's
        # fragments take its place (checked separately below).
        oerrs, overtaken = [], []
        for t in otr.tunnels:
            rs = sorted((r for r in recs if r.tunnel is t and id(r) in matches),
                        key=lambda r: r.seq64)
            whole = [r for r in rs if not matches[id(r)].frag]
            idx = [matches[id(r)].index for r in whole]
            for k in range(1, len(idx)):
                if idx[k] < idx[k - 1]:
                    oerrs.append("%s: seq %d carries input #%d, seq %d input #%d"
                                 % (t.name, whole[k].seq64, idx[k], whole[k - 1].seq64,
                                    idx[k - 1]))
                    break
            for r in rs:
                f = matches[id(r)]
                if f.frag and any(matches[id(x)].index > f.index and x.seq64 < r.seq64
                                  for x in whole):
                    overtaken.append(f)
        ck.check(not oerrs, "%s: per tunnel, sequence order = input order (unfragmented "
                 "packets)" % tag, _first(oerrs))
        overtaken = sorted(set(overtaken), key=lambda f: f.index)
        d = ""
        if overtaken:
            f = overtaken[0]
            later = min((matches[id(x)].index for x in recs if x.tunnel is f.tunnel and
                         id(x) in matches and not matches[id(x)].frag and
                         matches[id(x)].index > f.index), default=None)
            d = ("%d fragmented packets sealed after packets of the same tunnel that "
                 "arrived after them (e.g. input #%d, overtaken by #%s)"
                 % (len(overtaken), f.index, later))
        ck.check(not overtaken, "%s: fragments keep their packet's place in the tunnel's "
                 "order" % tag, d)
    return matches


def check_outer_ipid(ck, tag, recs):
    """RFC 6864 4.1: a non-atomic datagram (DF clear) needs an ID unique per
    (src, dst, protocol) for its lifetime; with fewer than 65536 packets no
    value may repeat towards one destination."""
    ids = defaultdict(list)
    for r in recs:
        if r.outer is not None and not r.df:
            ids[r.outer[16:20]].append(r)
    bad = []
    for dst, rs in ids.items():
        c = Counter(r.ipid for r in rs)
        d = [v for v, n in c.items() if n > 1]
        if d and len(rs) < 65536:
            bad.append("%d DF-clear packets to %s, %d IDs repeated (e.g. 0x%04x)"
                       % (len(rs), ipaddress_str(dst), len(d), d[0]))
    n = sum(len(v) for v in ids.values())
    ck.check(not bad, "%s: fresh outer IP ID (no repeat per destination among %d DF-clear "
             "packets)" % (tag, n), _first(bad))


def ipaddress_str(b):
    return ".".join(str(x) for x in b)


class _Merged:
    """Drop expectations of several traffic models, for check_drops()."""

    def __init__(self, *trs):
        self.trs = [t for t in trs if t is not None]
        self.frames = [f for t in self.trs for f in t.frames]

    def expected_drops(self):
        c = Counter()
        for t in self.trs:
            c.update({k: v for k, v in t.expected_drops().items() if v})
        return dict(c)


def split_inside_out(gw, frames):
    """Frames the inside port sent -> (ICMP frag-needed from the gateway, rest)."""
    icmp, rest = [], []
    me = nt.ip4(gw.inside_addr)
    for f in frames or []:
        if len(f) >= 14 + 28 and f[12:14] == b"\x08\x00" and f[23] == 1 and \
                f[26:30] == me and f[14 + (f[14] & 0xF) * 4] == 3:
            icmp.append(f)
        else:
            rest.append(f)
    return icmp, rest


def check_icmp(ck, tag, gw, otr, icmp_frames, rate=None, ordered=True):
    """ICMP frag-needed for every DF-set oversize packet (rate None: all of
    them, in order; rate 0: none; rate n: between 1 and n), each correct.
    Packets marked no_icmp (an ICMP error itself) must get none."""
    tb = [f for f in otr.too_big() if not f.no_icmp]
    errs = []
    used = set()
    matched = []
    for k, fr in enumerate(icmp_frames):
        ip = fr[14:]
        quote = ip[nt.ip_hl(ip) + 8:] if len(ip) > 28 else b""
        cands = [f for f in tb if f.index not in used and len(quote) >= 28 and
                 f.ip.startswith(quote[:28])]
        if not cands:
            errs.append("ICMP #%d quotes no too-big input (%s)" % (k, quote[:28].hex()))
            continue
        f = cands[0]
        used.add(f.index)
        matched.append(f.index)
        e = nt.check_icmp_frag_needed(gw, fr, f.ip, otr.L)
        errs += ["ICMP #%d for %s: %s" % (k, f.label(), x) for x in e]
    n = len(icmp_frames)
    if rate is None:
        cnt_ok = n == len(tb) and len(set(matched)) == n and \
            (matched == sorted(matched) or not ordered)
        want = "%d (one per DF-set oversize packet%s)" % (len(tb), ", in order" if ordered else "")
    elif rate == 0:
        cnt_ok = n == 0
        want = "0 (icmp_rate = 0)"
    else:
        cnt_ok = 1 <= n <= min(rate, len(tb))
        want = "1..%d (icmp_rate = %d, %d too-big packets in well under a second)" % (
            min(rate, len(tb)), rate, len(tb))
    ck.check(cnt_ok, "%s: ICMP frag-needed count %s" % (tag, want), "got %d" % n)
    if n:
        ck.check(not errs, "%s: ICMP type 3 code 4, MTU %d, to the inner source from %s, TTL 64, "
                 "quote of the packet as received, checksums" % (tag, otr.L, gw.inside_addr),
                 _first(errs))


def check_outbound_stats(ck, tag, otr, run, n_esp, n_icmp=0, in_tr=None, n_in_fwd=0,
                         rate_limited=None, recs=None):
    """Drop counters (outbound model + optional inbound Traffic), accounting,
    port and per-tunnel counters of a run with inside (and outside) input.
    Per-tunnel out counters come from the model (inner bytes as received);
    for a tunnel with fragmented packets, from recs (the decrypted output:
    one packet per ESP packet, its inner bytes), if given."""
    check_drops(ck, tag, _Merged(otr, in_tr), run)
    drops = (run.stats or {}).get("drops") or {}
    c = (run.stats or {}).get("counters") or {}
    n_fwd = len(otr.forwarded())
    total = sum(v for v in drops.values() if isinstance(v, int))
    n_rx = run.n_in + run.n_in_inside
    ck.check(n_rx == n_fwd + n_in_fwd + total,
             "%s: accounting: every input frame forwarded or counted in one drop" % tag,
             "%d in (%d inside, %d outside), %d forwarded (%d outbound, %d inbound), %d dropped"
             % (n_rx, run.n_in_inside, run.n_in, n_fwd + n_in_fwd, n_fwd, n_in_fwd, total))
    n_out = len(run.out or [])
    n_tx = n_esp + n_out
    ck.check(c.get("rx_packets") == n_rx and c.get("tx_packets") == n_tx,
             "%s: counters rx_packets/tx_packets" % tag,
             "expected %d/%d, got %s/%s" % (n_rx, n_tx, c.get("rx_packets"), c.get("tx_packets")))
    ck.check(n_out == n_icmp + n_in_fwd, "%s: inside port sent %d ICMP + %d inbound packets"
             % (tag, n_icmp, n_in_fwd), "got %d frames" % n_out)
    ports = {p.get("port"): p for p in (run.stats or {}).get("ports") or []}
    p0, p1 = ports.get(0, {}), ports.get(1, {})
    ck.check(p0.get("rx_packets") == run.n_in and p0.get("tx_packets") == n_esp and
             p1.get("rx_packets") == run.n_in_inside and p1.get("tx_packets") == n_out,
             "%s: port counters" % tag,
             "expected port0 rx %d tx %d, port1 rx %d tx %d; got port0 %s/%s, port1 %s/%s"
             % (run.n_in, n_esp, run.n_in_inside, n_out, p0.get("rx_packets"),
                p0.get("tx_packets"), p1.get("rx_packets"), p1.get("tx_packets")))
    ck.check(c.get("encrypted") == n_esp, "%s: counters.encrypted == ESP frames sent (%d)"
             % (tag, n_esp), "got %s" % c.get("encrypted"))
    if otr.too_big():
        ck.check(c.get("icmp_too_big_sent") == n_icmp,
                 "%s: counters.icmp_too_big_sent == %d" % (tag, n_icmp),
                 "got %s" % c.get("icmp_too_big_sent"))
        # rate_limited False: not checked (icmp_rate = 0 turns ICMP off; whether
        # that counts as rate limiting is not specified)
        if rate_limited is not False:
            lim = sum(not f.no_icmp for f in otr.too_big()) - n_icmp \
                if rate_limited is None else rate_limited
            nx = sum(f.no_icmp for f in otr.too_big())
            ck.check(c.get("icmp_rate_limited") == lim,
                     "%s: counters.icmp_rate_limited == %d (ICMP held back by the rate limit "
                     "only%s)" % (tag, lim, "; not the %d too-big ICMP error(s), which never "
                                  "get an ICMP" % nx if nx else ""),
                     "got %s" % c.get("icmp_rate_limited"))
    tun = (run.stats or {}).get("tunnels")
    if not isinstance(tun, dict):
        return ck.check(False, "%s: per-tunnel counters" % tag, "no 'tunnels' object")
    exp = otr.per_tunnel()
    fragd = {f.tunnel.name for f in otr.forwarded() if f.frag}
    skip = fragd if recs is None else set()
    if recs is not None:
        for name in fragd:
            rs = [r for r in recs if r.tunnel is not None and r.tunnel.name == name and
                  r.inner is not None]
            exp[name] = Counter(out_packets=len(rs), out_bytes=sum(len(r.inner) for r in rs))
    for key in ("out_packets", "out_bytes"):
        bad, total = [], 0
        for name, cnt in exp.items():
            if name in skip:
                continue
            got = (tun.get(name) or {}).get(key)
            total += cnt[key]
            if got != cnt[key]:
                bad.append("%s expected %d got %s" % (name, cnt[key], got))
        ck.check(not bad and total > 0, "%s: tunnels.*.%s (inner bytes as received)" % (tag, key)
                 if key == "out_bytes" else "%s: tunnels.*.%s" % (tag, key),
                 _first(bad, 6) if bad else "%d tunnels%s, total %d" % (
                     len(exp) - len(skip), " (%d with fragments not counted here)" % len(skip)
                     if skip else " (%d with fragments: per ESP packet)" % len(fragd)
                     if fragd else "", total))


def verify_outbound(ck, tag, gw, otr, queues, icmp_frames=(), df_mode="copy", workdir=None,
                    tshark=True, ordered=True, icmp_rate=None, ipid=True, esn_cross=True):
    """All checks of what the gateway sent for OutTraffic otr: queues = the
    outside port's frames per TX queue, icmp_frames = ICMP frag-needed frames
    the inside port sent. Returns the OutRecs."""
    recs = check_outbound_frames(ck, tag, gw, otr.tunnels, queues, df_mode, workdir, tshark,
                                 esn_cross)
    check_sequences(ck, tag, recs, otr.tunnels)
    check_outbound_content(ck, tag, otr, recs, ordered)
    if ipid:
        check_outer_ipid(ck, tag, recs)
    if otr.too_big() or icmp_frames:
        check_icmp(ck, tag, gw, otr, list(icmp_frames), icmp_rate, ordered)
    return recs


class RecordingChecker(Checker):
    """A Checker that prints nothing and remembers failed check names (for
    proving that a check fails on corrupted input)."""

    def __init__(self):
        super().__init__()
        self.failures = []

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append("%s: %s" % (name, detail))
        return ok


if __name__ == "__main__":
    sys.exit("library module; run test_inbound.py or test_replay_window.py")
