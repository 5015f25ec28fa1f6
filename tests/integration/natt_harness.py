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
    return tempfile.mkdtemp(prefix="natt-%s-" % name)


def run_gateway(workdir, cfg_text, frames, idle_ms=1500, timeout=120, lcores="0,1"):
    """Write config + pcaps into workdir and run scripts/natt-gw on them."""
    run = Run(workdir)
    cfg = os.path.join(workdir, "natt.cfg")
    pin = os.path.join(workdir, "in.pcap")
    pempty = os.path.join(workdir, "empty.pcap")
    pout = os.path.join(workdir, "out.pcap")
    stats = os.path.join(workdir, "stats.json")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    nt.write_pcap(pin, frames)
    nt.write_pcap(pempty, [])
    run.n_in = len(frames)
    gwscript = REPO / "scripts" / "natt-gw"
    # The inside port gets an empty rx capture: the gateway polls it, reads EOF.
    cmd = [str(gwscript), "--config", cfg, "--stats-json", stats,
           "--exit-after-idle", str(idle_ms), "--",
           "-l", lcores, "--no-pci",
           "--vdev", "net_pcap0,rx_pcap=%s" % pin,
           "--vdev", "net_pcap1,rx_pcap=%s,tx_pcap=%s" % (pempty, pout)]
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
    try:
        run.out = nt.read_pcap(pout)
    except (OSError, ValueError) as e:
        run.out_error = str(e)
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


if __name__ == "__main__":
    sys.exit("library module; run test_inbound.py or test_replay_window.py")
