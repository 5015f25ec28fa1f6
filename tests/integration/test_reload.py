#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Configuration reload end to end, with live traffic (natt_live.py).

The gateway runs on veth ports in a private network namespace; traffic is
injected in phases while natt-control (daemon mode) reloads the file. Every
expected value comes from the traffic model (natt_traffic: scapy's ESP, the
reference replay window, the reference route lookup), never from the gateway.

Session "broken" (scripts/natt-gw runs natt-control):
  1. one refused reload per error class (syntax, unknown key, wrong type,
     missing key, duplicate tunnel name, duplicate SPI, duplicate remote_ts,
     bad address, key length, out-of-range value (x2), unreadable file,
     empty file). Each broken file also drops one tunnel. Checked: the log
     says `reload refused, running configuration kept: FILE:LINE: reason`
     with the line the error is on; then traffic on every tunnel (the dropped
     one too) is forwarded both ways as before, outbound sequence numbers
     continue, a replayed packet is still a replay drop.
  8. reload triggers: rename over the file (adds a tunnel), in-place write
     (adds another, and no spurious refusal of a half-written file), SIGHUP
     (the file changed through a hard link in another directory, which
     inotify on the config's directory does not see).
  2. each added tunnel forwards both ways (outbound sequence from 1).
Session "changes" (natt-gw):
  2/6. add a tunnel; replaying already-delivered packets of untouched
     tunnels is still dropped after that reload, fresh ones are delivered.
  3. remove a tunnel: its inbound drops no_sa, outbound to its remote_ts
     drops no_route.
  4. update a tunnel's peer (address and port) and remote_ts: outbound goes
     to the new mapping under the same SPI with the next sequence number, to
     the new prefix; the old prefix has no route; inbound from the old prefix
     is a policy drop; a replayed packet is still a replay drop.
  5. rekey (dataplane.rekey_grace = 3): new inbound SPI accepted; old inbound
     SPI accepted during the grace, no_sa after it; outbound on the new SPI
     from sequence number 1.
Sessions "restart-term" (natt-gw's natt-control killed, ours started) and
"restart-kill" (the harness runs natt-dataplane and natt-control itself):
  7. natt-control killed (SIGTERM / SIGKILL) while traffic flows, the file
     edited while it is down (one tunnel added, one removed), natt-control
     started again: it converges; the untouched tunnels lost no packet, their
     windows and sequence numbers continue.
At the end of every session the dataplane's --stats-json is checked against
the model: rx_packets, every drop reason, per-tunnel in_packets / replay /
policy (counters continued through every reload).

Usage: /usr/bin/python3 tests/integration/test_reload.py [session ...]
Environment: NATT_BUILD, NATT_SEED, NATT_KEEP (see natt_harness.py / natt_live.py).
"""

import ipaddress
import os
import random
import re
import signal
import sys
import time
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_live as nl          # noqa: E402
import natt_traffic as nt       # noqa: E402

WINDOW = 1024
GRACE = 3
STREAM_S = 6.0          # restart sessions: traffic spread over this long
F = nt.FORWARD
# first apply of a (re)started natt-control, or a reload: with the counts
APPLIED_ON_RE = re.compile(r"natt-control: (?:start: |reload )?generation (\d+) applied on "
                           r"(\d+) worker\(s\) in ([0-9.]+) ms(?: \((.*)\))?")


# ---------------------------------------------------------------- the model

def retunnel(t, **kw):
    """A copy of Tunnel t with some fields changed (a fresh scapy SA)."""
    f = dict(name=t.name, remote=t.remote, remote_port=t.remote_port, algorithm=t.algorithm,
             esn=t.esn, in_spi=t.in_spi, in_key=t.in_key, out_spi=t.out_spi, out_key=t.out_key,
             remote_ts=list(t.remote_ts), local_ts=list(t.local_ts), start_seq=t.next_seq)
    f.update(kw)
    n = nt.Tunnel(**f)
    n.local_port = t.local_port
    return n


def fresh_tunnels(rng, n, first_index, used_spis, **kw):
    """n new tunnels (natt_traffic.make_tunnels) whose SPIs are not in
    used_spis (which is updated)."""
    out = []
    for t in nt.make_tunnels(rng, n, first_index=first_index, **kw):
        if t.in_spi in used_spis or t.out_spi in used_spis or t.in_spi == t.out_spi:
            t = retunnel(t, in_spi=nt.unique_spi(rng, used_spis),
                         out_spi=nt.unique_spi(rng, used_spis))
        used_spis.update((t.in_spi, t.out_spi))
        out.append(t)
    return out


def rekeyed(rng, t, used_spis):
    """Tunnel t with new SPIs and keys in both directions (the peer starts
    its new SA at sequence number 1)."""
    kl = 16 if t.algorithm == "aes-gcm-128" else 32
    return retunnel(t, in_spi=nt.unique_spi(rng, used_spis), out_spi=nt.unique_spi(rng, used_spis),
                    in_key=rng.randbytes(kl + 4), out_key=rng.randbytes(kl + 4), start_seq=1)


class Model:
    """The configuration the test believes runs, and what the traffic did."""

    def __init__(self, rng, gw, tunnels, grace=None):
        self.rng = rng
        self.gw = gw
        self.grace = grace
        self.tunnels = list(tunnels)
        self.tr = nt.Traffic(gw, list(tunnels), WINDOW, rng)
        self.out_seq = {t.out_spi: 0 for t in tunnels}     # last sequence number used
        self.out_sas = {t.out_spi: t for t in tunnels}     # every outbound SA ever configured
        self.per_tunnel = defaultdict(Counter)             # name -> in_packets, in_bytes, replay, policy
        self.sent = 0
        self.drops = Counter()
        self.spis = {s for t in tunnels for s in (t.in_spi, t.out_spi)}

    def text(self, tunnels=None, grace=True):
        txt = nt.config_text(self.gw, self.tunnels if tunnels is None else tunnels, WINDOW)
        if grace and self.grace is not None:
            txt = txt.replace("dataplane = { replay_window = %d;" % WINDOW,
                              "dataplane = { replay_window = %d; rekey_grace = %d;"
                              % (WINDOW, self.grace), 1)
        return txt

    def by_name(self, name):
        return next(t for t in self.tunnels if t.name == name)

    def install(self, t):
        """Start tracking a tunnel (SA) the next configuration adds."""
        self.tr.models[t.in_spi] = nt.ReplayModel(WINDOW, t.esn)
        self.tr.by_spi[t.in_spi] = t
        self.out_seq[t.out_spi] = 0
        self.out_sas[t.out_spi] = t
        self.spis.update((t.in_spi, t.out_spi))

    def add(self, t):
        self.install(t)
        self.tunnels.append(t)

    def remove(self, t):
        self.tunnels.remove(t)

    def replace(self, old, new):
        self.install(new)
        self.tunnels[self.tunnels.index(old)] = new

    def batch(self):
        return Batch(self)


class Batch:
    """Frames of one exchange and what a correct gateway does with each."""

    def __init__(self, m):
        self.m = m
        self.inb = []       # natt_traffic.Frame (outside port input)
        self.outb = []      # natt_traffic.OutFrame (inside port input)
        self.otr = nt.OutTraffic(m.gw, m.tunnels, m.rng)

    def _len(self):
        return self.m.rng.randrange(nt.MIN_INNER, 700)

    def fwd(self, tun, n=1):
        """n fresh authentic packets of tun (forwarded)."""
        fillers = [t for t in self.m.tunnels if not t.esn and t is not tun]
        for _ in range(n):
            for _ in range(nt.BURST_GUARD + 1):
                f = self.m.tr.valid(tun, length=self._len())
                if f is not None or not fillers:
                    break
                # an ESN tunnel near its rollover: the high half is only
                # certain once the window moved BURST_GUARD frames ago
                self.inb.append(self.m.tr.valid(self.m.rng.choice(fillers),
                                                length=self._len(), desc="filler"))
            if f is None:
                raise RuntimeError("test bug: no fresh packet possible for %s" % tun.name)
            self.inb.append(f)
        return self

    def replay(self, tun):
        """An exact copy of a packet of tun delivered before (a replay drop)."""
        for _ in range(100):
            f = self.m.tr.replay_copy(tun)
            if f is not None:
                f.desc = "replayed copy"
                self.inb.append(f)
                return f
        raise RuntimeError("test bug: nothing to replay for %s" % tun.name)

    def dead(self, tun, verdict="no_sa", desc="SA no longer installed"):
        """An authentic packet for an SA the gateway must not have (any more)."""
        tr = self.m.tr
        sqn = tun.take_seq()
        inner = nt.inner_packet(self.m.rng, tr.inner_src(tun), tr.inner_dst(tun), self._len())
        esp = nt.scapy_esp(tun, sqn, inner, tr._iv())
        f = nt.Frame(tr.natt(tun, esp), verdict, tun, sqn, desc)
        tr.frames.append(f)
        self.inb.append(f)
        return f

    def policy(self, tun, src):
        f = self.m.tr._post(tun, "policy", "inner source %s outside remote_ts" % src, src=src)
        if f is None:
            raise RuntimeError("test bug: no policy packet for %s" % tun.name)
        self.inb.append(f)
        return f

    def out(self, tun, n=1):
        for _ in range(n):
            f = self.otr.valid(tun, length=self._len())
            if f is None:
                raise RuntimeError("test bug: no destination routed to %s" % tun.name)
            self.outb.append(f)
        return self

    def out_to(self, dst, verdict, desc):
        ip = self.otr.packet("10.10.%d.%d" % (self.m.rng.randrange(256),
                                              self.m.rng.randrange(1, 255)), dst, self._len())
        self.outb.append(self.otr.add(ip, desc, expect_verdict=verdict))

    def frames(self):
        return [f.data for f in self.inb], [f.data for f in self.outb]


def _ip(frame):
    if len(frame) < 34:
        return frame[14:]
    tl = (frame[16] << 8) | frame[17]
    return frame[14:14 + tl]


def run_batch(ck, tag, L, b, **kw):
    """Send a batch, then check everything it did against the model."""
    ins, outs = b.frames()
    ex = L.exchange(ins, outs, **kw)
    verify(ck, tag, L, b, ex)
    return ex


def verify(ck, tag, L, b, ex):
    m = b.m
    ck.check(ex.path_ok(), "%s: all %d frames reached the gateway, all it sent was captured"
             % (tag, ex.sent_outside + ex.sent_inside), ex.path_detail())
    # inbound: exactly the expected inner packets, in order
    exp = [f for f in b.inb if f.verdict == F]
    got = [_ip(fr) for fr in ex.inside]
    d = ""
    if [f.out_ip for f in exp] != got:
        want = Counter(f.out_ip for f in exp)
        have = Counter(got)
        missing = [f for f in exp if want[f.out_ip] > have.get(f.out_ip, 0)]
        extra = sum((have - want).values())
        d = "%d delivered, %d expected; %d expected missing%s, %d unexpected%s" % (
            len(got), len(exp), len(missing),
            " (e.g. %s)" % missing[0].label() if missing else "", extra,
            "" if missing or extra else " (order differs)")
    if exp or got:
        ck.check(not d, "%s: inside port delivered the %d expected decrypted packets, in order"
                 % (tag, len(exp)), d)
    # outbound: per SA, the expected inner packets with consecutive sequence numbers
    recs = nt.decode_outbound(m.gw, list(m.out_sas.values()), ex.outside, esn_cross=False)
    errs = ["%s: %s" % (r.where(), "; ".join("%s: %s" % kv for kv in r.err.items()))
            for r in recs if r.err]
    exp_per, got_per = defaultdict(list), defaultdict(list)
    for f in b.outb:
        if f.verdict == F:
            spi = f.tunnel.out_spi
            m.out_seq[spi] += 1
            exp_per[spi].append((m.out_seq[spi], f.expect))
    for r in recs:
        if r.spi is not None:
            got_per[r.spi].append((r.seq, r.inner))
    for spi in sorted(set(exp_per) | set(got_per)):
        e, g = exp_per.get(spi, []), got_per.get(spi, [])
        if e != g:
            t = m.out_sas.get(spi)
            nm = "%s spi 0x%08x" % (t.name if t else "unknown", spi)
            if [x[0] for x in e] != [x[0] for x in g]:
                errs.append("%s: sequence numbers %s, expected %s" % (
                    nm, [x[0] for x in g][:8], [x[0] for x in e][:8]))
            else:
                errs.append("%s: inner packets differ from the expected ones" % nm)
    n_out = sum(len(v) for v in exp_per.values())
    if n_out or ex.outside:
        ck.check(not errs, "%s: outside port sent the %d expected ESP packets (scapy decrypts, "
                 "right SA, peer and sequence numbers)" % (tag, n_out), h._first(errs))
    # every drop counted under its reason, nothing else
    want = Counter(f.verdict for f in b.inb + b.outb if f.verdict != F)
    got_d = Counter(ex.drops())
    ck.check(got_d == want, "%s: drops %s" % (tag, dict(want) or "none"),
             "gateway counted %s" % (dict(got_d) or "none"))
    # the model moves on with what a correct gateway did
    m.sent += len(b.inb) + len(b.outb)
    m.drops.update(want)
    for f in b.inb:
        if f.tunnel is None:
            continue
        c = m.per_tunnel[f.tunnel.name]
        if f.verdict == F:
            c["in_packets"] += 1
            c["in_bytes"] += f.inner_len
        elif f.verdict in ("replay", "policy"):
            c[f.verdict] += 1


def show_check(ck, tag, L, m, names):
    """Per-tunnel in_packets right now, from `natt-control show tunnels
    --json` (a note, not a check, when that command is not available)."""
    data, err = L.show_tunnels()
    if data is None:
        print("NOTE %s: show tunnels --json not usable (%s); per-tunnel counters are checked "
              "from --stats-json at the end" % (tag, err[:200]), flush=True)
        return
    rows = {}

    def walk(o):
        if isinstance(o, dict):
            if "name" in o and "in_packets" in o:
                rows[o["name"]] = o
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(data)
    bad = ["%s in_packets %s, expected %d" % (n, (rows.get(n) or {}).get("in_packets"),
                                              m.per_tunnel[n]["in_packets"])
           for n in names if (rows.get(n) or {}).get("in_packets") != m.per_tunnel[n]["in_packets"]]
    ck.check(not bad, "%s: show tunnels: per-tunnel in_packets continue (%d tunnels)"
             % (tag, len(names)), h._first(bad))


def final_checks(ck, tag, L, m, skip_tunnels=()):
    st = L.final_stats
    if not ck.check(st is not None, "%s: --stats-json written at exit" % tag,
                    "" if st is not None else "%s (gateway exit %s)" % (L.final_stats_error,
                                                                       L.gw_rc)):
        return
    c = st.get("counters") or {}
    ck.check(c.get("rx_packets") == m.sent, "%s: counters.rx_packets == frames sent (%d)"
             % (tag, m.sent), "got %s" % c.get("rx_packets"))
    drops = st.get("drops") or {}
    bad = ["%s %s, expected %d" % (r, drops.get(r), m.drops.get(r, 0))
           for r in sorted(set(drops) | set(m.drops)) if drops.get(r, 0) != m.drops.get(r, 0)]
    ck.check(not bad, "%s: every drop counter over the whole run (%s)"
             % (tag, dict(m.drops)), h._first(bad, 6))
    tun = st.get("tunnels") or {}
    for key in ("in_packets", "in_bytes", "replay", "policy"):
        bad = []
        for t in m.tunnels:
            if t.name in skip_tunnels:
                continue
            want = m.per_tunnel[t.name][key]
            got = (tun.get(t.name) or {}).get(key)
            if got != want:
                bad.append("%s expected %d got %s" % (t.name, want, got))
        ck.check(not bad, "%s: tunnels.*.%s over the whole run, through every reload "
                 "(%d tunnels)" % (tag, key, len(m.tunnels) - len(skip_tunnels)),
                 h._first(bad, 6))


# ---------------------------------------------------------------- reloads

def tunnel_line(lines, name):
    """0-based index of the line that opens tunnel `name`."""
    pat = 'name = "%s";' % name
    return next(i for i, l in enumerate(lines) if pat in l and "remote =" in l)


def reload(ck, tag, L, text=None, how="rename", expect="applied", timeout=20, quiet=False):
    """Write the file (or SIGHUP), wait for the logged outcome and check it.
    Returns (outcome, match, log mark taken before)."""
    mark = L.log_mark()
    t0 = time.monotonic()
    if how == "hup":
        L.sighup()
    elif how is not None:
        L.write_config(text, how)
    outcome, mt = L.wait_reload(mark, timeout)
    L.t_outcome = time.monotonic()
    if outcome is None:
        d = "nothing logged in %d s (natt-control pid %s)\n%s" % (
            timeout, L.control_pid(), L.log_tail(8))
    else:
        d = "%s after %.2f s: %s" % (outcome, time.monotonic() - t0, mt.group(0))
    ok = outcome == expect
    if not quiet or not ok:
        ck.check(ok, "%s: reload %s" % (tag, expect), d)
    # a second event for the same write would show here, before the next mark
    time.sleep(0.5)
    outs = [l for l in L.new_log_lines(mark)
            if nl.RELOAD_OK_RE.search(l) or nl.RELOAD_REFUSED_RE.search(l)]
    if len(outs) > 1:
        print("NOTE %s: %d reload outcomes for one change: %s" % (tag, len(outs), outs), flush=True)
    return outcome, mt, mark


def check_counts(ck, tag, mt, want):
    got = nl.parse_reload_counts(mt.group(4) if mt else "")
    bad = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
    ck.check(mt is not None and not bad, "%s: reload line reports %s" % (
        tag, ", ".join("%s %d" % kv for kv in want.items())),
        "line: %s" % (mt.group(0) if mt else None))


def broken_variants(m, lines):
    """(key, lines of the broken file, expected line (1-based) or None,
    reason regex, how to write). Every variant also drops the tunnel
    `victim` (m.tunnels[6]), so a partial apply would show."""
    T = m.tunnels
    victim = T[6].name

    def base():
        ls = list(lines)
        i = tunnel_line(ls, victim)
        del ls[i:i + 4]
        return ls

    def at(ls, name, k=0):
        return tunnel_line(ls, name) + k

    out = []
    ls = base()
    i = at(ls, T[2].name, 1) + 1
    ls.insert(i, "    %%% this is not libconfig %%%")
    out.append(("syntax-error", ls, i + 1, r"syntax error", "rename"))

    ls = base()
    i = at(ls, T[3].name, 2) + 1
    ls.insert(i, '    colour = "blue";')
    out.append(("unknown-key", ls, i + 1, r'unknown key "colour"', "rename"))

    ls = base()
    i = at(ls, T[1].name)
    ls[i] = re.sub(r"remote_port = (\d+);", r'remote_port = "\1";', ls[i])
    out.append(("wrong-type", ls, i + 1, r"remote_port must be an integer", "rename"))

    ls = base()
    i = at(ls, T[4].name)
    ls[i] = re.sub(r" esn = (true|false);", "", ls[i])
    out.append(("missing-key", ls, i + 1, r'missing required key "esn"', "rename"))

    ls = base()
    i = at(ls, T[5].name)
    ls[i] = ls[i].replace('name = "%s";' % T[5].name, 'name = "%s";' % T[2].name)
    out.append(("duplicate-name", ls, i + 1, r'name "%s" is already used' % T[2].name, "rename"))

    ls = base()
    i = at(ls, T[7].name, 1)
    ls[i] = re.sub(r"spi = 0x[0-9a-f]+;", "spi = 0x%08x;" % T[1].in_spi, ls[i])
    out.append(("duplicate-spi", ls, i + 1, r"inbound\.spi 0x%08x is already used" % T[1].in_spi,
                "rename"))

    ls = base()
    i = at(ls, T[5].name, 3)
    ls[i] = re.sub(r"remote_ts = \[[^\]]*\]", "remote_ts = [ \"%s\" ]" % T[0].remote_ts[0], ls[i])
    out.append(("duplicate-remote_ts", ls, i + 1, r"already routed to tunnel \"%s\"" % T[0].name,
                "rename"))

    ls = base()
    i = at(ls, T[2].name)
    ls[i] = re.sub(r'remote = "[^"]*"', 'remote = "198.51.100.300"', ls[i])
    out.append(("bad-address", ls, i + 1, r"198\.51\.100\.300", "rename"))

    ls = base()
    i = at(ls, T[3].name, 1)
    ls[i] = re.sub(r'key = "([0-9a-f]+)([0-9a-f]{2})"', r'key = "\1"', ls[i])
    out.append(("key-length", ls, i + 1, r"inbound\.key must be \d+ hex digits", "inplace"))

    ls = base()
    i = at(ls, T[4].name)
    ls[i] = re.sub(r"remote_port = \d+;", "remote_port = 70000;", ls[i])
    out.append(("out-of-range-port", ls, i + 1, r"remote_port must be between 1 and 65535",
                "rename"))

    ls = base()
    ls[0] = ls[0].replace("replay_window = %d;" % WINDOW, "replay_window = 5000;")
    out.append(("out-of-range-window", ls, 1, r"replay_window must be between 0 and 4096",
                "rename"))

    out.append(("empty-file", [], 1, r'missing required key "interfaces"', "inplace-empty"))
    # last: the path is a dangling symlink afterwards, until the good file is back
    out.append(("unreadable", None, None, r"cannot read|No such file|cannot open", "dangling"))
    return out


REFUSED_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<reason>.*)$")


def check_refusal(ck, tag, L, outcome, mt, want_line, reason_re):
    if outcome != "refused":
        return
    what = mt.group(1)
    path = os.path.realpath(L.cfg_path)
    if want_line is None:
        ok = what.startswith(path + ":") or what.startswith(L.cfg_path + ":")
        ok = ok and re.search(reason_re, what) is not None
        ck.check(ok, "%s: refusal names the file and why (%s)" % (tag, reason_re), what)
        return
    m = REFUSED_LINE.match(what)
    ok = m is not None and m.group("file") in (path, L.cfg_path) and \
        int(m.group("line")) == want_line and re.search(reason_re, m.group("reason"))
    ck.check(bool(ok), "%s: refusal says %s:%d: /%s/" % (tag, os.path.basename(path), want_line,
                                                        reason_re), what)


def traffic_all(m, replay=(), n_in=1, n_out=1):
    b = m.batch()
    for t in m.tunnels:
        b.fwd(t, n_in)
    for t in replay:
        b.replay(t)
    for t in m.tunnels:
        b.out(t, n_out)
    return b


def session_broken(ck, seed):
    """1 (every class of broken reload), 8 (the three triggers), 2 (add)."""
    tag = "broken"
    rng = random.Random(seed * 7 + 1)
    gw = nt.Gateway()
    tunnels = nt.make_tunnels(rng, 8, esn_every=4)
    m = Model(rng, gw, tunnels)
    nonesn = [t for t in tunnels if not t.esn]
    L = nl.Live(tag)
    failed0 = ck.failed
    try:
        L.start(m.text())
        ck.check(True, "%s: gateway up, %d tunnels applied" % (tag, len(tunnels)))
        run_batch(ck, "%s/initial" % tag, L, traffic_all(m, n_in=3, n_out=2))
        good = m.text()
        lines = good.split("\n")
        for key, ls, line, reason, how in broken_variants(m, lines):
            t2 = "%s/%s" % (tag, key)
            if how == "dangling":
                # a dangling symlink renamed over the path: ENOENT when read
                # (chmod 000 would not do: we run as root)
                lnk = os.path.join(L.workdir, ".dangling")
                os.symlink(os.path.join(L.workdir, "no-such-file.cfg"), lnk)
                mark = L.log_mark()
                os.rename(lnk, L.cfg_path)
                outcome, mt = L.wait_reload(mark, 20)
                time.sleep(0.5)
                ck.check(outcome == "refused", "%s: reload refused" % t2,
                         mt.group(0) if mt else "nothing logged\n" + L.log_tail(8))
            elif how == "inplace-empty":
                outcome, mt, _ = reload(ck, t2, L, "", how="inplace", expect="refused")
            else:
                outcome, mt, _ = reload(ck, t2, L, "\n".join(ls), how=how, expect="refused")
            check_refusal(ck, t2, L, outcome, mt, line, reason)
            b = traffic_all(m, replay=rng.sample(nonesn, 2))
            run_batch(ck, "%s: after the refused reload" % t2, L, b)
            show_check(ck, t2, L, m, [t.name for t in m.tunnels])
        # restore the good file: nothing to change
        reload(ck, "%s/restore" % tag, L, good, how="rename", expect="applied")

        # 8 + 2: the three triggers, each adding one tunnel
        new = fresh_tunnels(rng, 3, 200, m.spis, esn_every=0)
        for t, how, label in zip(new, ("rename", "inplace", "hup"),
                                 ("rename over the file", "in-place write", "SIGHUP")):
            t2 = "%s/trigger-%s" % (tag, how)
            m.add(t)
            text = m.text()
            if how == "hup":
                # the same inode under another directory: a write there is not
                # seen by inotify on the config's directory, only SIGHUP says it
                alt_dir = os.path.join(L.workdir, "alt")
                os.makedirs(alt_dir, exist_ok=True)
                alt = os.path.join(alt_dir, "natt.cfg")
                with open(alt, "w") as f:
                    f.write(L.config_text)
                tmp = os.path.join(L.workdir, ".link")
                os.link(alt, tmp)
                mark = L.log_mark()
                os.rename(tmp, L.cfg_path)
                L.wait_reload(mark, 5)      # an unchanged file: outcome not checked
                time.sleep(0.5)
                mark = L.log_mark()
                with open(alt, "r+") as f:
                    f.truncate(0)
                    f.write(text)
                L.config_text = text
                outcome, mt = L.wait_reload(mark, 2)
                ck.check(outcome is None, "%s: a write through a hard link elsewhere triggers "
                         "no reload by itself" % t2,
                         "reloaded without SIGHUP: %s" % mt.group(0) if mt else "")
                outcome, mt, _ = reload(ck, t2 + " (%s)" % label, L, None, how="hup")
            else:
                outcome, mt, mk = reload(ck, t2 + " (%s)" % label, L, text, how=how)
            if outcome == "applied":
                check_counts(ck, t2, mt, {"added": 1, "removed": 0, "rekeyed": 0})
            b = traffic_all(m, replay=rng.sample(nonesn, 1))
            b.fwd(t, 2)
            b.out(t, 2)
            run_batch(ck, "%s: new tunnel %s forwards both ways, others unaffected"
                      % (t2, t.name), L, b)
            if how == "inplace":
                bad = [l for l in L.new_log_lines(mk) if "refused" in l]
                ck.check(not bad, "%s: no refusal of a half-written file" % t2, h._first(bad))
    except Exception as e:
        ck.check(False, "%s: session" % tag, "%s: %s\n%s" % (type(e).__name__, e, L.log_tail(12)))
        raise_if_interrupt(e)
    finally:
        L.stop()
    final_checks(ck, tag, L, m)
    L.finish(ck.failed > failed0)


def raise_if_interrupt(e):
    if isinstance(e, (KeyboardInterrupt, SystemExit)):
        raise e


def session_changes(ck, seed):
    """2/6 add + window intact, 3 remove, 4 update, 5 rekey."""
    tag = "changes"
    rng = random.Random(seed * 7 + 2)
    gw = nt.Gateway()
    tunnels = nt.make_tunnels(rng, 10, esn_every=5)
    m = Model(rng, gw, tunnels, grace=GRACE)
    untouched = [t for t in tunnels[:6]]
    replayable = [t for t in untouched if not t.esn]
    L = nl.Live(tag)
    failed0 = ck.failed
    touched = set()
    try:
        L.start(m.text())
        run_batch(ck, "%s/initial" % tag, L, traffic_all(m, n_in=3, n_out=2))

        # 2 + 6: add; untouched windows intact
        t = fresh_tunnels(rng, 1, 300, m.spis)[0]
        m.add(t)
        outcome, mt, _ = reload(ck, "%s/add" % tag, L, m.text())
        if outcome == "applied":
            check_counts(ck, "%s/add" % tag, mt, {"added": 1, "removed": 0, "rekeyed": 0,
                                                  "unchanged": len(tunnels)})
        b = m.batch()
        for u in replayable:
            b.replay(u)          # delivered before the reload: still a replay
        for u in m.tunnels:
            b.fwd(u)
            b.out(u)
        b.fwd(t, 2)
        b.out(t, 2)
        run_batch(ck, "%s/add: replays of untouched tunnels dropped, fresh packets and the new "
                  "tunnel forwarded" % tag, L, b)

        # 3: remove
        gone = m.by_name(tunnels[9].name)
        m.remove(gone)
        outcome, mt, _ = reload(ck, "%s/remove" % tag, L, m.text())
        if outcome == "applied":
            check_counts(ck, "%s/remove" % tag, mt, {"added": 0, "removed": 1, "rekeyed": 0})
        b = traffic_all(m, replay=replayable[:2])
        b.dead(gone)
        b.dead(gone)
        for net in gone.nets:
            b.out_to(str(net[net.num_addresses // 2]), "no_route",
                     "to removed tunnel %s" % gone.name)
        run_batch(ck, "%s/remove: %s inbound no_sa, outbound no_route, others unaffected"
                  % (tag, gone.name), L, b)

        # 4: update peer mapping and remote_ts
        up = m.by_name(tunnels[8].name)
        touched.add(up.name)
        old_nets = list(up.nets)
        up.remote, up.remote_port = "198.51.100.77", 31337
        up.remote_ts = ["10.99.8.0/24"]
        up.nets = [ipaddress.ip_network(x) for x in up.remote_ts]
        outcome, mt, _ = reload(ck, "%s/update" % tag, L, m.text())
        if outcome == "applied":
            check_counts(ck, "%s/update" % tag, mt, {"added": 0, "removed": 0, "updated": 1,
                                                     "rekeyed": 0})
        b = m.batch()
        b.out(up, 3)                 # to the new mapping, same SA, next sequence numbers
        for net in old_nets:
            b.out_to(str(net[net.num_addresses // 2]), "no_route",
                     "to %s's old remote_ts" % up.name)
        b.fwd(up, 2)                 # from the new mapping, inner source in the new prefix
        b.policy(up, str(old_nets[0][old_nets[0].num_addresses // 2]))
        if not up.esn:
            b.replay(up)
        for u in untouched:
            b.fwd(u)
            b.out(u)
        run_batch(ck, "%s/update: %s outbound to %s:%d on the same SA, next sequence numbers; "
                  "old prefix unrouted and refused inbound; window kept"
                  % (tag, up.name, up.remote, up.remote_port), L, b)

        # 5: rekey
        old = m.by_name(tunnels[7].name)
        new = rekeyed(rng, old, m.spis)
        touched.add(old.name)
        m.replace(old, new)
        # build everything before the reload: the grace is short
        b1 = m.batch()
        b1.fwd(new, 3)
        b1.fwd(old, 3)               # old inbound SPI, during the grace
        b1.out(new, 3)               # new outbound SA from sequence number 1
        for u in untouched:
            b1.fwd(u)
        b2 = m.batch()
        b2.dead(old, "no_sa", "old inbound SPI after the grace")
        b2.dead(old, "no_sa", "old inbound SPI after the grace")
        b2.fwd(new, 2)
        b2.out(new, 2)
        for u in untouched:
            b2.fwd(u)
            b2.out(u)
        outcome, mt, mark_rk = reload(ck, "%s/rekey" % tag, L, m.text())
        t_applied = L.t_outcome
        if outcome == "applied":
            check_counts(ck, "%s/rekey" % tag, mt, {"added": 0, "removed": 0, "rekeyed": 1})
        ins, outs = b1.frames()
        ex = L.exchange(ins, outs)
        late = time.monotonic() - t_applied
        verify(ck, "%s/rekey: new SPI accepted, old SPI still accepted %.1f s into a %d s grace, "
               "outbound on the new SPI from 1" % (tag, late, GRACE), L, b1, ex)
        if late > GRACE - 0.5:
            print("NOTE %s/rekey: the in-grace packets were sent %.1f s after the reload, "
                  "close to the %d s grace" % (tag, late, GRACE), flush=True)
        time.sleep(max(0.0, GRACE + 2.0 - (time.monotonic() - t_applied)))
        ends = [l for l in L.new_log_lines(mark_rk) if "0x%08x" % old.in_spi in l]
        print("NOTE %s/rekey: log about the old inbound SA 0x%08x after the grace: %s"
              % (tag, old.in_spi, h._first(ends) or "nothing"), flush=True)
        run_batch(ck, "%s/rekey: old SPI no_sa after the grace, new SA continues" % tag, L, b2)
        # 6 again: a last look at the untouched windows
        b = m.batch()
        for u in replayable:
            b.replay(u)
            b.fwd(u)
        run_batch(ck, "%s/end: untouched windows still intact" % tag, L, b)
        show_check(ck, "%s/end" % tag, L, m, [u.name for u in untouched])
    except Exception as e:
        ck.check(False, "%s: session" % tag, "%s: %s\n%s" % (type(e).__name__, e, L.log_tail(12)))
        raise_if_interrupt(e)
    finally:
        L.stop()
    final_checks(ck, tag, L, m)
    L.finish(ck.failed > failed0)


def session_restart(ck, seed, sig):
    """7: natt-control killed while traffic flows, file edited, restarted."""
    signame = signal.Signals(sig).name
    tag = "restart-%s" % signame[3:].lower()
    rng = random.Random(seed * 7 + 3 + sig)
    gw = nt.Gateway()
    tunnels = nt.make_tunnels(rng, 8, esn_every=4)
    m = Model(rng, gw, tunnels)
    untouched = tunnels[:7]
    gone = tunnels[7]
    # SIGTERM: natt-gw runs the gateway and its natt-control daemon, which is
    # killed and replaced by one we start (natt-gw must keep the dataplane).
    # SIGKILL: the harness runs natt-dataplane and natt-control itself.
    L = nl.Live(tag, mode="gw" if sig == signal.SIGTERM else "direct")
    failed0 = ck.failed
    try:
        L.start(m.text())
        run_batch(ck, "%s/initial" % tag, L, traffic_all(m, n_in=3, n_out=2))
        added = fresh_tunnels(rng, 1, 400, m.spis, esn_every=0)[0]
        # traffic for the untouched tunnels while natt-control is away
        stream = m.batch()
        for _ in range(60):
            for u in untouched:
                stream.fwd(u)
        for _ in range(20):
            for u in untouched:
                stream.out(u)
        m.add(added)
        m.remove(gone)
        new_text = m.text()
        ev = {}

        def during():
            t0 = time.monotonic()
            time.sleep(0.6)
            ev["t_kill"] = time.monotonic() - t0
            pid, rc = L.kill_control(sig)
            ev["killed"] = (pid, rc, L.control_pid())
            ev["dp_alive_after_kill"] = L.gateway_alive()
            L.write_config(new_text, "rename")
            time.sleep(0.5)
            mark = L.log_mark()
            L.start_control()
            mt = L.wait_log(APPLIED_ON_RE, mark, 30)
            if mt is None:      # an older natt-control: only the first-apply line
                mt = L.wait_log(nl.APPLIED_RE, mark, 1)
            ev["applied"] = mt.group(0) if mt else None
            ev["t_applied"] = time.monotonic() - t0
            ev["log"] = L.new_log_lines(mark)
            time.sleep(0.5)

        ins, outs = stream.frames()
        ex = L.exchange(ins, outs, during=during, duration=STREAM_S, timeout=40)
        pid, rc, still = ev.get("killed", (None, None, None))
        ck.check(pid is not None and still is None,
                 "%s: natt-control (pid %s) gone after %s" % (tag, pid, signame),
                 "exit %s, still running: %s" % (rc, still))
        ck.check(ev.get("dp_alive_after_kill"), "%s: dataplane keeps running without "
                 "natt-control" % tag)
        ck.check(ev.get("applied") is not None, "%s: restarted natt-control converged to the "
                 "edited file" % tag, "log: %s" % h._first(ev.get("log") or [], 6))
        if ev.get("applied"):
            mt = APPLIED_ON_RE.search(ev["applied"])
            if mt:
                check_counts(ck, "%s/restart" % tag, mt, {"added": 1, "removed": 1, "rekeyed": 0,
                                                          "unchanged": len(untouched)})
        print("%s: traffic for %d untouched tunnels over %.1f s; natt-control killed at %.1f s, "
              "the restarted one converged at %.1f s" % (tag, len(untouched), STREAM_S,
                                                         ev.get("t_kill", -1),
                                                         ev.get("t_applied", -1)), flush=True)
        verify(ck, "%s/while restarting: untouched tunnels lost no packet" % tag, L, stream, ex)
        # converged: added works, removed is gone, untouched continue
        b = m.batch()
        for u in untouched:
            if not u.esn:
                b.replay(u)
            b.fwd(u)
            b.out(u)
        b.fwd(added, 2)
        b.out(added, 2)
        b.dead(gone)
        for net in gone.nets:
            b.out_to(str(net[net.num_addresses // 2]), "no_route", "to removed %s" % gone.name)
        run_batch(ck, "%s/after restart: %s added, %s removed, untouched windows and sequence "
                  "numbers continue" % (tag, added.name, gone.name), L, b)
        show_check(ck, "%s/end" % tag, L, m, [u.name for u in untouched])
    except Exception as e:
        ck.check(False, "%s: session" % tag, "%s: %s\n%s" % (type(e).__name__, e, L.log_tail(12)))
        raise_if_interrupt(e)
    finally:
        L.stop()
    final_checks(ck, tag, L, m)
    L.finish(ck.failed > failed0)


SESSIONS = {
    "broken": session_broken,
    "changes": session_changes,
    "restart-term": lambda ck, s: session_restart(ck, s, signal.SIGTERM),
    "restart-kill": lambda ck, s: session_restart(ck, s, signal.SIGKILL),
}


def main():
    ck = h.Checker()
    ok, why = nl.environment_ok()
    if not ck.check(ok, "live test environment (root, hugepages, ip netns, binaries)", why):
        return ck.finish()
    s = h.seed()
    names = sys.argv[1:] or list(SESSIONS)
    for n in names:
        if n not in SESSIONS:
            ck.check(False, "session %s" % n, "unknown; have %s" % ", ".join(SESSIONS))
            continue
        print("== session %s" % n, flush=True)
        t0 = time.monotonic()
        SESSIONS[n](ck, s)
        print("== session %s: %.1f s" % (n, time.monotonic() - t0), flush=True)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
