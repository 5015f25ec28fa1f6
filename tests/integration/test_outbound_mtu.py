#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Outbound MTU handling and TCP MSS clamping, end to end.

Usable inner MTU L = floor4(mtu - 60) - 2 (outer = 60 + roundup4(inner + 2)):
1438 for mtu 1500, 1338 for 1400, 1334 for 1399. Per run, on the inside port:
- inner packets of exactly L bytes (DF set and clear) leave unfragmented;
- L + 1 and larger with DF set: dropped as too_big, and an ICMP type 3 code 4
  goes back out of the inside port to the inner source, from the inside
  address, TTL 64, next-hop MTU L, quoting the packet as received (as much as
  fits in 576 bytes), valid checksums; rate limited by dataplane.icmp_rate;
- L + 1 and larger with DF clear: fragmented before encryption, one ESP packet
  per fragment (<= L, 8-byte multiples), consecutive sequence numbers; the
  decrypted fragments reassemble (scapy defragment) to the input with TTL - 1;
- TCP SYN / SYN-ACK with MSS above the clamp get MSS = clamp (default L - 40)
  and a TCP checksum that scapy recomputes to the same value, outbound before
  encryption and inbound after decryption; MSS at or below the clamp, non-SYN
  packets and mss_clamp = 0 leave the segment untouched.
Every ESP packet is decrypted by scapy and tshark (natt_harness.verify_outbound).

Runs: mtu 1500 defaults; mtu 1400; mtu 1399 with mss_clamp = 1300 and
icmp_rate = 2; mtu 1500 with mss_clamp = 0 and icmp_rate = 0.
Usage: /usr/bin/python3 tests/integration/test_outbound_mtu.py
"""

import os
import random
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402
from scapy.layers.inet import ICMP, IP, TCP, UDP   # noqa: E402
from scapy.packet import Raw                       # noqa: E402

TIMEOUT = 180
RA_DESC = "Router Alert option (copied flag),"
INFRAG_DESC = "inner fragment,"

# (options, description); MSS placed at several positions among other options
SYN_OPTS = [
    (lambda m: [("MSS", m)], "MSS only"),
    (lambda m: [("MSS", m), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None),
                ("WScale", 7)], "MSS first, Linux-like"),
    (lambda m: [("NOP", None), ("NOP", None), ("SAckOK", b""), ("WScale", 8), ("MSS", m)],
     "MSS last after NOPs"),
    (lambda m: [("Timestamp", (5, 6)), ("MSS", m), ("EOL", None)], "MSS after timestamps"),
]


class MssCase:
    def __init__(self, desc, direction, ip, want):
        self.desc = desc
        self.direction = direction    # "out" or "in"
        self.ip = ip                  # the TCP segment's IPv4 bytes as sent in
        self.want = want              # expected MSS after the gateway
        self.frame = None             # OutFrame / Frame


def syn_cases(rng, clamp):
    """(mss, synack, opts index, description) with the expected MSS."""
    c = clamp or 1398
    cases = [(1460, False, 0), (1460, True, 1), (65535, False, 2), (c + 1, True, 3),
             (c, False, 1), (c - 1, True, 0), (536, False, 2)]
    res = []
    for mss, synack, oi in cases:
        want = min(mss, clamp) if clamp else mss
        res.append((mss, synack, oi, want))
    return res


def build(rng, gw, tunnels, clamp_cfg, n_big=4):
    """Inside traffic (OutTraffic) and inbound ESP (Traffic) for one run.
    clamp_cfg: the mss_clamp written to the config (None = derived)."""
    otr = nt.OutTraffic(gw, tunnels, rng, mss_clamp=clamp_cfg)
    itr = nt.Traffic(gw, tunnels, 1024, rng)
    L = otr.L
    mss_cases = []
    tl = [t for t in tunnels if otr.dst_for(t)]

    def pick():
        return rng.choice(tl)

    def out_pkt(length, df, proto=None, options=False):
        t = pick()
        return t, otr.packet(otr.src_for(t), otr.dst_for(t), length, proto or "udp", df=df,
                             options=options)

    events = []
    for df in (True, False):
        for proto in ("udp", "tcp", "icmp"):
            events.append(("exact", df, proto))
        for _ in range(3):
            events.append(("plus1", df, rng.choice(("udp", "tcp", "icmp"))))
        for _ in range(n_big):
            events.append(("big", df, rng.choice(("udp", "tcp", "icmp"))))
    events.append(("big_opts", False, "udp"))
    events.append(("big_opts", True, "udp"))
    events.append(("big_ra", False, None))
    events.append(("big_infrag", True, None))
    events.append(("big_infrag", False, None))
    events.append(("big_icmp_err", True, None))
    for mss, synack, oi, want in syn_cases(rng, otr.clamp):
        events.append(("syn_out", (mss, synack, oi, want), None))
        events.append(("syn_in", (mss, synack, oi, want), None))
    events += [("small", None, None)] * 40
    events += [("in_small", None, None)] * 20
    rng.shuffle(events)
    for kind, a, b in events:
        if kind == "exact":
            t, ip = out_pkt(L, a, b)
            otr.add(ip, "exactly L = %d, DF %d" % (L, a), expect_verdict=nt.FORWARD)
        elif kind == "plus1":
            t, ip = out_pkt(L + 1, a, b)
            otr.add(ip, "L + 1 = %d, DF %d" % (L + 1, a),
                    expect_verdict="too_big" if a else nt.FORWARD)
        elif kind in ("big", "big_opts"):
            n = rng.randrange(L + 2, gw.inside_mtu + 1)
            t, ip = out_pkt(n, a, b, options=kind == "big_opts")
            otr.add(ip, "%d B%s, DF %d" % (n, " with IP options" if kind == "big_opts" else "", a),
                    expect_verdict="too_big" if a else nt.FORWARD)
        elif kind == "big_ra":
            t = pick()
            n = rng.randrange(L + 2, gw.inside_mtu + 1)
            p = IP(src=otr.src_for(t), dst=otr.dst_for(t), id=otr._next_ipid(), ttl=33,
                   options=[b"\x94\x04\x00\x00"]) / UDP(sport=7, dport=9)
            ip = bytes(p / Raw(rng.randbytes(n - len(p))))
            otr.add(ip, RA_DESC + " %d B, DF 0" % n, expect_verdict=nt.FORWARD)
        elif kind == "big_infrag":
            t = pick()
            n = 20 + 8 * rng.randrange((L - 20) // 8 + 1, (gw.inside_mtu - 20) // 8 + 1)
            ip = otr.packet(otr.src_for(t), otr.dst_for(t), n, "udp", df=False)
            ip = nt.set_ip_fields(ip, off=1480, mf=a)
            otr.add(ip, INFRAG_DESC + " %d B, offset 1480, MF %d" % (n, a),
                    expect_verdict=nt.FORWARD)
        elif kind == "big_icmp_err":
            t = pick()
            n = rng.randrange(L + 2, gw.inside_mtu + 1)
            p = IP(src=otr.src_for(t), dst=otr.dst_for(t), id=otr._next_ipid(), flags="DF") / \
                ICMP(type=3, code=1)
            ip = bytes(p / Raw(rng.randbytes(n - len(p))))
            f = otr.add(ip, "ICMP error (3/1) of %d B, DF 1: too_big, no ICMP back" % n,
                        expect_verdict="too_big")
            f.no_icmp = True
        elif kind == "syn_out":
            mss, synack, oi, want = a
            t = pick()
            ip = nt.syn_packet(otr.src_for(t), otr.dst_for(t), synack=synack,
                               opts=SYN_OPTS[oi][0](mss), ipid=otr._next_ipid(),
                               df=rng.random() < 0.7, sport=rng.randrange(1024, 65536))
            d = "outbound %s MSS %d (%s)" % ("SYN-ACK" if synack else "SYN", mss, SYN_OPTS[oi][1])
            c = MssCase(d, "out", ip, want)
            c.frame = otr.add(ip, d, expect_verdict=nt.FORWARD)
            mss_cases.append(c)
        elif kind == "syn_in":
            mss, synack, oi, want = a
            t = pick()
            ip = nt.syn_packet(itr.inner_src(t), itr.inner_dst(t), synack=synack,
                               opts=SYN_OPTS[oi][0](mss), ipid=rng.randrange(65536),
                               sport=rng.randrange(1024, 65536), ttl=rng.randrange(2, 255))
            d = "inbound %s MSS %d (%s)" % ("SYN-ACK" if synack else "SYN", mss, SYN_OPTS[oi][1])
            sqn = t.take_seq()
            esp = nt.scapy_esp(t, sqn, IP(ip), rng.randbytes(8))
            c = MssCase(d, "in", ip, want)
            c.frame = itr.esp_packet(t, sqn, esp, nt.FORWARD, d,
                                     nt.forwarded_ip(nt.clamp_mss(ip, otr.clamp)))
            mss_cases.append(c)
        elif kind == "small":
            otr.valid(pick(), length=rng.randrange(nt.MIN_INNER, 600))
        elif kind == "in_small":
            itr.valid(pick(), length=rng.randrange(nt.MIN_INNER, 600))
    for c in mss_cases:
        assert c.frame is not None
    return otr, itr, mss_cases


def tcp_checksum_ok(ip):
    """scapy recomputes the TCP checksum of ip to the value it carries."""
    p = IP(ip)
    if TCP not in p:
        return False
    got = p[TCP].chksum
    q = p.copy()
    del q[TCP].chksum
    return IP(bytes(q))[TCP].chksum == got


def check_mss(ck, tag, cases, matches_out, recs, in_out):
    """Each SYN case: the segment the gateway produced has the expected MSS and
    a TCP checksum scapy agrees with."""
    by_frame = {}
    for r in recs:
        f = matches_out.get(id(r))
        if f is not None:
            by_frame[f.index] = r.inner
    errs, n = [], 0
    for c in cases:
        if c.direction == "out":
            got = by_frame.get(c.frame.index)
        else:
            got = next((o for o in in_out if len(o) >= 40 and o[12:20] == c.ip[12:20] and
                        o[20:24] == c.ip[20:24]), None)
        if got is None:
            errs.append("%s: not found in the output" % c.desc)
            continue
        n += 1
        at = nt.tcp_mss_at(got)
        mss = at[1] if at else None
        if mss != c.want:
            errs.append("%s: MSS %s, want %d" % (c.desc, mss, c.want))
        if not tcp_checksum_ok(got):
            errs.append("%s: TCP checksum 0x%s wrong (scapy)" % (c.desc, got[nt.ip_hl(got) + 16:
                                                                     nt.ip_hl(got) + 18].hex()))
        if nt.l4_checksum(got) != 0:
            errs.append("%s: TCP checksum wrong (RFC 1071)" % c.desc)
    clamped = sum(1 for c in cases if c.want != nt.tcp_mss_at(c.ip)[1])
    ck.check(not errs and n == len(cases),
             "%s: MSS of %d SYN/SYN-ACK (outbound and inbound, %d clamped) as expected, TCP "
             "checksums valid (scapy recomputation)" % (tag, len(cases), clamped), h._first(errs, 6))
    return clamped


def check_inbound_out(ck, tag, itr, rest):
    exp = [f.out_ip for f in itr.expected_out()]
    got = [h._ip_of(o)[0] for o in rest]
    d = ""
    if got != exp:
        miss = [e for e in exp if e not in got]
        extra = [g for g in got if g not in exp]
        d = "%d expected, %d sent; %d missing, %d unexpected%s" % (
            len(exp), len(got), len(miss), len(extra),
            "; first unexpected %s" % extra[0][:60].hex() if extra else "")
    ck.check(got == exp, "%s: inbound packets decrypted and forwarded in order (TTL - 1, MSS "
             "clamped)" % tag, d)


def run_case(ck, tag, gw, tunnels, rng, clamp_cfg=None, icmp_rate=None):
    otr, itr, cases = build(rng, gw, tunnels, clamp_cfg)
    print("%s: mtu %d, L = %d, clamp %d; %d inside frames (%d too_big, %d to fragment), "
          "%d inbound frames" % (tag, gw.mtu, otr.L, otr.clamp, len(otr.frames),
                                 len(otr.too_big()), sum(f.frag for f in otr.forwarded()),
                                 len(itr.frames)), flush=True)
    # verify_traffic compares scapy's decryption with forwarded_ip(inner):
    # give it the unclamped expectation of the SYNs (clamping is checked below)
    syn_in = {id(c.frame): c for c in cases if c.direction == "in"}
    saved = [(f, f.out_ip) for f in itr.frames if id(f) in syn_in]
    for f, _ in saved:
        f.out_ip = nt.forwarded_ip(syn_in[id(f)].ip)
    errs = nt.verify_traffic(itr)
    for f, o in saved:
        f.out_ip = o
    ck.check(not errs, "%s: inbound traffic self-check" % tag, "; ".join(errs[:3]))
    wd = h.make_workdir(tag.replace(" ", "_").replace("=", ""))
    failed = ck.failed
    cfg = nt.config_text(gw, tunnels, 1024, comment="test_outbound_mtu.py " + tag,
                         mss_clamp=clamp_cfg, icmp_rate=icmp_rate)
    run = h.run_gateway(wd, cfg, [f.data for f in itr.frames],
                        inside_frames=[f.data for f in otr.frames], timeout=TIMEOUT,
                        capture_outside=True)
    h.check_run(ck, tag, run, TIMEOUT)
    if run.outside_out is None or run.out is None:
        ck.check(False, "%s: captures readable" % tag, run.outside_error or run.out_error or "")
        h.finish_workdir(ck, wd, failed)
        return
    out = run.outside_out
    icmp, rest = h.split_inside_out(gw, run.out)
    recs = h.verify_outbound(ck, tag, gw, otr, [out], icmp, workdir=wd, icmp_rate=icmp_rate)
    matches = h.match_outbound(otr, recs)[0]
    # boundary cases, said explicitly
    ex = [f for f in otr.frames if f.desc.startswith("exactly L")]
    errs = []
    for f in ex:
        r = [r for r in recs if matches.get(id(r)) is f]
        if len(r) != 1 or r[0].inner != f.expect or len(r[0].outer) != gw.mtu - (gw.mtu - 60) % 4:
            errs.append("%s: %d ESP packets, outer %s" % (f.desc, len(r), [len(x.outer) for x in r]))
    ck.check(not errs and ex, "%s: %d inner packets of exactly L = %d (DF set and clear): one "
             "ESP packet each, outer %d <= mtu %d" % (tag, len(ex), otr.L,
                                                     gw.mtu - (gw.mtu - 60) % 4, gw.mtu),
             "; ".join(errs[:3]))
    for f in otr.frames:
        if f.desc.startswith(RA_DESC) or f.desc.startswith(INFRAG_DESC):
            r = sorted((r for r in recs if matches.get(id(r)) is f), key=lambda r: r.seq64)
            if f.desc.startswith(RA_DESC):
                bad = [i for i, x in enumerate(r) if x.inner[20:24] != b"\x94\x04\x00\x00"]
                ck.check(len(r) >= 2 and not bad, "%s: %s: every fragment carries the option "
                         "(RFC 791)" % (tag, f.desc), "%d fragments, without it: %s" % (len(r), bad))
            else:
                offs = [(nt.ip_frag_off(x.inner), int(nt.ip_mf(x.inner))) for x in r]
                ck.check(len(r) >= 2 and offs[0][0] == 1480 and offs[-1][1] == nt.ip_mf(f.ip),
                         "%s: %s: cut further, first offset 1480, last MF %d" % (
                             tag, f.desc, nt.ip_mf(f.ip)), "pieces (offset, MF): %s" % offs)
    plus = [f for f in otr.frames if f.desc.startswith("L + 1")]
    for f in plus:
        r = [r for r in recs if matches.get(id(r)) is f]
        if nt.ip_df(f.ip):
            ok = not r and f.verdict == "too_big"
        else:
            ok = len(r) >= 2
        ck.check(ok, "%s: %s: %s" % (tag, f.desc, "too_big + ICMP, nothing encrypted"
                                     if nt.ip_df(f.ip) else "fragmented"),
                 "%d ESP packets carry it" % len(r))
    n_clamped = check_mss(ck, tag, cases, matches, recs, [h._ip_of(o)[0] for o in rest])
    check_inbound_out(ck, tag, itr, rest)
    c = (run.stats or {}).get("counters") or {}
    ck.check(c.get("mss_clamped") == n_clamped, "%s: counters.mss_clamped == %d" % (tag, n_clamped),
             "got %s" % c.get("mss_clamped"))
    h.check_outbound_stats(ck, tag, otr, run, len(out), n_icmp=len(icmp), in_tr=itr,
                           n_in_fwd=len(itr.expected_out()),
                           rate_limited=False if icmp_rate == 0 else None, recs=recs)
    h.finish_workdir(ck, wd, failed)


def selftest(ck, rng, workdir):
    """The fragment / ICMP / MSS checks pass a reference output and fail
    broken ones."""
    gw = nt.Gateway(mtu=1400, inside_mtu=1500)
    tunnels = nt.make_out_tunnels(rng, n_groups=1)
    otr, itr, cases = build(rng, gw, tunnels, None, n_big=2)
    layout = {}
    out, icmp = nt.reference_output(gw, otr, layout=layout)
    rc = h.RecordingChecker()
    recs = h.verify_outbound(rc, "selftest", gw, otr, [out], icmp, workdir=workdir, tshark=False)
    m = h.match_outbound(otr, recs)[0]
    in_out = [f.out_ip for f in itr.expected_out()]
    check_mss(rc, "selftest", cases, m, recs, in_out)
    ck.check(rc.failed == 0, "MSS/MTU checker self-test: reference output passes (%d checks)"
             % rc.passed, "; ".join(rc.failures[:3]))
    bad = []
    # outbound SYN left unclamped
    c = next(c for c in cases if c.direction == "out" and c.want != nt.tcp_mss_at(c.ip)[1])
    (i, t, sq, piece), = layout[c.frame.index]
    o = list(out)
    o[i] = nt.reference_outbound(gw, t, nt.forwarded_ip(c.ip), sq, 1)
    rc = h.RecordingChecker()
    recs = h.verify_outbound(rc, "x", gw, otr, [o], icmp, tshark=False)
    check_mss(rc, "x", cases, h.match_outbound(otr, recs)[0], recs, in_out)
    if not any("MSS of" in f for f in rc.failures):
        bad.append("unclamped outbound SYN passes")
    # clamped but the TCP checksum left as it was
    b = bytearray(nt.forwarded_ip(c.ip))
    b[nt.tcp_mss_at(c.ip)[0]:nt.tcp_mss_at(c.ip)[0] + 2] = struct.pack("!H", c.want)
    o[i] = nt.reference_outbound(gw, t, bytes(b), sq, 1)
    rc = h.RecordingChecker()
    recs = h.verify_outbound(rc, "x", gw, otr, [o], icmp, tshark=False)
    check_mss(rc, "x", cases, h.match_outbound(otr, recs)[0], recs, in_out)
    if not any("TCP checksum" in f for f in rc.failures):
        bad.append("stale TCP checksum passes")
    # inbound SYN unclamped
    ci = next(c for c in cases if c.direction == "in" and c.want != nt.tcp_mss_at(c.ip)[1])
    io = [nt.forwarded_ip(ci.ip) if x == ci.frame.out_ip else x for x in in_out]
    rc = h.RecordingChecker()
    recs = h.verify_outbound(rc, "x", gw, otr, [out], icmp, tshark=False)
    check_mss(rc, "x", cases, h.match_outbound(otr, recs)[0], recs, io)
    if not any("MSS of" in f for f in rc.failures):
        bad.append("unclamped inbound SYN passes")
    # DF-clear L + 1 sent whole (outer > mtu) instead of fragmented
    f = next(f for f in otr.frames if f.desc.startswith("L + 1") and f.frag)
    o = [fr for j, fr in enumerate(out) if j not in [x[0] for x in layout[f.index]]]
    o.append(nt.reference_outbound(gw, f.tunnel, f.expect, 700, 1))
    rc = h.RecordingChecker()
    h.verify_outbound(rc, "x", gw, otr, [o], icmp, tshark=False)
    if not any("fragmented" in x or "every forwarded" in x for x in rc.failures):
        bad.append("unfragmented L + 1 passes")
    # ICMP carrying the outside MTU instead of L
    tb = otr.too_big()[0]
    ic = [nt.reference_icmp(gw, tb.ip, gw.mtu)] + icmp[1:]
    rc = h.RecordingChecker()
    h.verify_outbound(rc, "x", gw, otr, [out], ic, tshark=False)
    if not any("ICMP type 3" in x for x in rc.failures):
        bad.append("ICMP with MTU 1400 passes")
    ck.check(not bad, "MSS/MTU checker self-test: unclamped SYN (both ways), stale TCP checksum, "
             "unfragmented L + 1 and wrong ICMP MTU all fail", "; ".join(bad))


def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    sd = tempfile.mkdtemp(prefix="natt-mtu-selftest-")
    try:
        selftest(ck, random.Random(rng.randrange(1 << 30)), sd)
    finally:
        shutil.rmtree(sd, ignore_errors=True)
    ck.check(nt.usable_mtu(1500) == 1438 and nt.usable_mtu(1400) == 1338 and
             nt.usable_mtu(1399) == 1334 and nt.default_mss_clamp(1500) == 1398,
             "usable MTU model: 1500 -> 1438, 1400 -> 1338, 1399 -> 1334; clamp 1398")
    if not h.gateway_present(ck):
        return ck.finish()
    tunnels = nt.make_out_tunnels(rng, n_groups=1)
    run_case(ck, "mtu 1500", nt.Gateway(mtu=1500), tunnels, rng)
    run_case(ck, "mtu 1400", nt.Gateway(mtu=1400, inside_mtu=1500), tunnels, rng)
    run_case(ck, "mtu 1399 clamp 1300 icmp_rate 2", nt.Gateway(mtu=1399, inside_mtu=1500),
             tunnels, rng, clamp_cfg=1300, icmp_rate=2)
    run_case(ck, "mtu 1500 clamp 0 icmp_rate 0", nt.Gateway(mtu=1500), tunnels, rng,
             clamp_cfg=0, icmp_rate=0)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
