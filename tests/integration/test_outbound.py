#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Outbound end to end: clear IPv4 in on the inside port, ESP-in-UDP/4500 out.

26 tunnels (AES-GCM-128/-256, every third with ESN, most peers behind one
CGNAT address on distinct ports, some below 4500, one tunnel with an explicit
local_port 4500 and one with local_port 14500) whose remote_ts nest five deep
(/8, /16, /24, /25, /26, /29, /30, /32), so that only a longest-prefix match
picks the right tunnel; about 1500 random inner packets (UDP, TCP, ICMP, raw
protocols, IP options, inner fragments, DF set and clear, TOS/ECN, TTL 2..255,
exactly the usable MTU, Ethernet padding of short frames with zeros or junk,
trailing bytes after long ones) mixed with hostile frames, each tagged with
the one drop it must cause: no_route, policy (source outside the longest-match
tunnel's local_ts even when a shorter match would allow it), ttl_expired,
malformed, unsupported.

Everything on the outside port is decrypted by scapy's ESP (ICV verified,
ESN per tunnel; the AAD of the other ESN mode must fail) and, independently,
by tshark's ESP dissector (esp_sa table with the keys); python3-cryptography's
AESGCM gives the raw plaintext for the trailer. Checked: every outer header
field, IV = sequence number, minimal 1,2,3.. padding, next header 4, outer
length, per-tunnel sequence numbers 1..N in input order, inner = input with
TTL - 1 and checksum, fresh outer IP IDs, drops, port/tunnel counters.
Runs 2 and 3 repeat a smaller stream with dataplane.df = "set" and "clear".

Before any gateway runs, the checkers are shown to pass the output of a
reference encryptor (scapy) and to fail each of ~30 corruptions of it.

Usage: /usr/bin/python3 tests/integration/test_outbound.py   (NATT_BUILD,
NATT_SEED, NATT_KEEP as in natt_harness.py). Exit 1 on any failure.
"""

import ipaddress
import os
import random
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402
from scapy.layers.inet import ICMP, IP, UDP   # noqa: E402
from scapy.layers.inet6 import IPv6     # noqa: E402
from scapy.layers.l2 import ARP         # noqa: E402
from scapy.packet import Raw            # noqa: E402

TIMEOUT = 180
N_VALID = 1500
HOSTILE = [("no_route", 7), ("policy", 5), ("ttl_1", 3), ("ttl_0", 1),
           ("bad_checksum", 2), ("truncated", 2), ("ihl_4", 1), ("runt", 1),
           ("ipv6", 2), ("arp", 1)]
VERDICT = {"no_route": "no_route", "policy": "policy", "ttl_1": "ttl_expired",
           "ttl_0": "ttl_expired", "bad_checksum": "malformed", "truncated": "malformed",
           "ihl_4": "malformed", "runt": "malformed", "ipv6": "unsupported",
           "arp": "unsupported"}


def make_setup(rng, n_groups=5):
    gw = nt.Gateway()
    tunnels = nt.make_out_tunnels(rng, n_groups=n_groups)
    tunnels[3].local_port = 4500           # explicit default
    if len(tunnels) > 8:
        tunnels[8].local_port = 14500
    return gw, tunnels


def raw_proto(otr, tun, length):
    """IPv4 with an L4 protocol the gateway knows nothing about (GRE, 253)."""
    ip = IP(src=otr.src_for(tun), dst=otr.dst_for(tun), proto=otr.rng.choice((47, 253)),
            ttl=otr.rng.randrange(2, 256), id=otr._next_ipid(),
            flags="DF" if otr.rng.random() < 0.5 else 0) / Raw(otr.rng.randbytes(length - 20))
    return bytes(ip)


def emit_valid(otr, tun, rng):
    """One forwarded packet of some kind for tun (None if tun cannot get one)."""
    if otr.dst_for(tun) is None:
        return None
    r = rng.random()
    L = otr.L
    if r < 0.05:
        return otr.valid(tun, length=L, df=rng.random() < 0.5,
                         desc="exactly the usable MTU %d" % L)
    if r < 0.10:
        return otr.valid(tun, options=True, length=rng.randrange(32, L + 1),
                         desc="IP options (IHL 6)")
    if r < 0.13:
        n = rng.choice((20, 21, 22, 23, 24, rng.randrange(20, L + 1)))
        return otr.add(raw_proto(otr, tun, n), "raw protocol, %d B" % n, expect_verdict=nt.FORWARD)
    if r < 0.16:
        ip = otr.packet(otr.src_for(tun), otr.dst_for(tun), 20 + 8 * rng.randrange(1, 150),
                        proto="udp", df=False)
        if rng.random() < 0.5:
            ip = nt.set_ip_fields(ip, mf=True)
            d = "inner first fragment (MF)"
        else:
            ip = nt.set_ip_fields(ip, off=8 * rng.randrange(1, 500))
            d = "inner last fragment (offset)"
        return otr.add(ip, d, expect_verdict=nt.FORWARD)
    if r < 0.20:
        return otr.valid(tun, ttl=rng.choice((2, 255)))
    if r < 0.25:
        return otr.valid(tun, tos=rng.choice((0x01, 0x02, 0x03, 0xb9, 0xff)), desc="TOS/ECN")
    if r < 0.28:
        return otr.valid(tun, length=rng.randrange(60, L + 1), pad=rng.randbytes(4),
                         desc="4 bytes after the IPv4 packet")
    if r < 0.40:
        return otr.valid(tun, length=rng.randrange(nt.MIN_INNER, 60),
                         desc="short (Ethernet padding)")
    return otr.valid(tun)


def emit_hostile(otr, kind, tun, rng):
    gw = otr.gw
    v = VERDICT[kind]
    if kind == "no_route":
        ip = otr.packet("10.10.%d.%d" % (rng.randrange(256), rng.randrange(1, 255)),
                        otr.no_route_dst(), rng.randrange(nt.MIN_INNER, 400))
        return otr.add(ip, "no tunnel for the destination", expect_verdict=v)
    dst = otr.dst_for(tun)
    if dst is None:
        return None
    if kind == "policy":
        src = otr.src_not_for(tun)
        if src is None or tun.lnets[0].prefixlen == 0:
            return None
        ip = otr.packet(src, dst, rng.randrange(nt.MIN_INNER, 400))
        return otr.add(ip, "source outside local_ts %s" % tun.local_ts, expect_verdict=v)
    src = otr.src_for(tun)
    if kind in ("ttl_1", "ttl_0"):
        ip = otr.packet(src, dst, rng.randrange(nt.MIN_INNER, 400), ttl=int(kind[-1]))
        return otr.add(ip, "inner TTL %s" % kind[-1], expect_verdict=v)
    ip = otr.packet(src, dst, rng.randrange(100, 400))
    if kind == "bad_checksum":
        b = bytearray(ip)
        b[10] ^= 0x5A
        return otr.add_raw(nt.inside_frame(gw, bytes(b)), v, "bad IPv4 header checksum")
    if kind == "truncated":
        n = rng.randrange(40, len(ip) - 20)
        return otr.add_raw(nt.inside_frame(gw, ip[:n]), v,
                           "IPv4 total length %d, frame holds %d" % (len(ip), n))
    if kind == "ihl_4":
        b = bytearray(ip)
        b[0] = 0x44
        return otr.add_raw(nt.inside_frame(gw, nt.fix_ip_checksum(bytes(b))), v, "IHL 4")
    if kind == "runt":
        return otr.add_raw(nt.inside_frame(gw, ip[:10]), v, "frame ends inside the IPv4 header")
    if kind == "ipv6":
        p = bytes(IPv6(src="fd00::5", dst="fd00:1::7", hlim=64) / UDP(sport=5, dport=53) /
                  Raw(rng.randbytes(rng.randrange(0, 300))))
        return otr.add_raw(nt.inside_frame(gw, p, ethertype=0x86DD), v, "IPv6 on the inside port")
    if kind == "arp":
        # for another host on the LAN: not ours to answer (one for our own
        # address is answered: unit/ctl_v3 section 8, integration/nat)
        p = bytes(ARP(op=1, hwsrc=gw.inside_next_hop, psrc="10.10.0.254", pdst="10.10.0.77"))
        p += b"\0" * (46 - len(p))
        return otr.add_raw(nt.inside_frame(gw, p, ethertype=0x0806), v,
                           "ARP request for another host")
    raise KeyError(kind)


def build(rng, gw, tunnels, n_valid=N_VALID, hostile=HOSTILE):
    otr = nt.OutTraffic(gw, tunnels, rng)
    weights = [rng.choice((1, 1, 2, 4)) for _ in tunnels]
    events = ["valid"] * n_valid + [k for k, n in hostile for _ in range(n)]
    rng.shuffle(events)
    for ev in events:
        for _ in range(100):
            if ev == "valid":
                f = emit_valid(otr, rng.choices(tunnels, weights)[0], rng)
            else:
                f = emit_hostile(otr, ev, rng.choice(tunnels), rng)
            if f is not None:
                break
        else:
            raise RuntimeError("test bug: cannot emit %s" % ev)
    got = otr.expected_drops()
    want = {}
    for k, n in hostile:
        want[VERDICT[k]] = want.get(VERDICT[k], 0) + n
    if got != want:
        raise RuntimeError("test bug: drops %s, wanted %s" % (got, want))
    return otr


def lpm_coverage(otr):
    """How many forwarded packets went to a tunnel although a shorter prefix
    of another tunnel also matched (the cases only LPM gets right)."""
    n = 0
    for f in otr.forwarded():
        a = ipaddress.ip_address(f.ip[16:20])
        if any(a in net for t in otr.tunnels if t is not f.tunnel for net in t.nets):
            n += 1
    return n


# ---------------------------------------------------------------- checker self-test

def _fix(fr):
    """Redo the outer IPv4 checksum of an outbound frame."""
    return fr[:14] + nt.fix_ip_checksum(fr[14:34]) + fr[34:]


def _poke(fr, off, val):
    return fr[:off] + val + fr[off + len(val):]


def checker_selftest(ck, rng, workdir):
    """The outbound checkers pass the reference encryptor's output, and every
    check fails on a corruption aimed at it."""
    gw, tunnels = make_setup(rng, n_groups=1)
    otr = build(rng, gw, tunnels, n_valid=60, hostile=[("no_route", 1), ("policy", 1)])
    # one DF-clear oversize packet (fragments) and two DF-set ones (ICMP)
    tun = next(t for t in tunnels if otr.dst_for(t))
    for df, n in ((False, 1), (True, 2)):
        for _ in range(n):
            otr.add(otr.packet(otr.src_for(tun), otr.dst_for(tun),
                               otr.L + 200 + rng.randrange(400), proto="udp", df=df),
                    "oversize DF %d" % df)
    layout = {}
    out, icmp = nt.reference_output(gw, otr, layout=layout)

    def verify(out, icmp, tshark=False):
        rc = h.RecordingChecker()
        h.verify_outbound(rc, "selftest", gw, otr, [out], icmp, workdir=workdir, tshark=tshark)
        return rc

    rc = verify(out, icmp, tshark=True)
    ck.check(rc.failed == 0 and rc.passed >= 15,
             "checker self-test: reference output (%d ESP frames, %d ICMP) passes all %d checks"
             % (len(out), len(icmp), rc.passed), "; ".join(rc.failures[:3]))

    # a tunnel with >= 3 unfragmented packets; k = its second frame
    per_t = {}
    for fi, l in sorted(layout.items()):
        if len(l) == 1:
            per_t.setdefault(l[0][1].name, []).append((fi, l[0]))
    kt_items = next(v for v in per_t.values() if len(v) >= 3)
    (_, (k0, kt, _, in0)), (_, (k, _, kseq, kin)), (_, (k2, _, _, _)) = kt_items[:3]
    kdf = nt.ip_df(kin)
    other = next(t for t in tunnels if t is not kt and t.out_key != kt.out_key)
    esn_items = next(v for v in per_t.values() if v[0][1][1].esn)
    e0, esn_t, eseq, ein = esn_items[0][1]
    fi = next(fi for fi, l in layout.items() if len(l) > 1)
    ffr = otr.frames[fi]
    fidx = [x[0] for x in layout[fi]]

    def rep(i, fr):
        o = list(out)
        o[i] = fr
        return o

    def direct(**kw):
        kw.setdefault("df", kdf)
        return nt.direct_outbound(gw, kt, kin, kseq, ipid=7, **kw)

    def icmp_frame(ip):
        return nt.mac_bytes(gw.inside_next_hop) + nt.mac_bytes(gw.inside_mac) + b"\x08\x00" + ip

    orig0 = otr.too_big()[0].ip
    icmp_ip = IP(src=gw.inside_addr, dst=IP(orig0).src, ttl=64)
    pad_long = bytes(range(1, (-(len(kin) + 2)) % 4 + 5))
    swapped = list(out)
    swapped[k0], swapped[k] = out[k], out[k0]
    content_swap = rep(k0, nt.reference_outbound(gw, kt, kin, 1, 3))
    content_swap[k] = nt.reference_outbound(gw, kt, in0, kseq, 4)
    frag_ttl = list(out)
    for (i, t, sq, piece) in layout[fi]:
        frag_ttl[i] = nt.reference_outbound(gw, t, nt.set_ip_fields(piece, ttl=piece[8] + 1), sq, 9)
    big = nt.reference_fragments(ffr.expect, otr.L + 64)
    frag_big = [fr for i, fr in enumerate(out) if i not in fidx] + [
        nt.reference_outbound(gw, ffr.tunnel, p, 500 + j, 1) for j, p in enumerate(big)]
    dfc = [i for i, fr in enumerate(out) if not fr[20] & 0x40]
    same = next([i, j] for i in dfc for j in dfc if i < j and out[i][30:34] == out[j][30:34])
    ipid_dup = rep(same[1], _fix(_poke(out[same[1]], 18, out[same[0]][18:20])))

    cases = [
        ("Ethernet dst", rep(k, _poke(out[k], 0, b"\x02\0\0\0\0\x99")), icmp, "Ethernet dst"),
        ("outer TTL 63", rep(k, _fix(_poke(out[k], 22, b"\x3f"))), icmp, "outer IPv4"),
        ("outer header checksum", rep(k, _poke(out[k], 24, bytes([out[k][24] ^ 1]))), icmp,
         "outer IPv4"),
        ("outer source", rep(k, _fix(_poke(out[k], 26, bytes([203, 0, 113, 9])))), icmp,
         "outer IPv4"),
        ("outer destination", rep(k, _fix(_poke(out[k], 30, bytes([198, 51, 100, 99])))), icmp,
         "outer dst"),
        ("UDP source port", rep(k, _poke(out[k], 34, b"\x11\x95")), icmp, "outer dst"),
        ("UDP dport", rep(k, _poke(out[k], 36, struct.pack("!H", kt.remote_port ^ 1))), icmp,
         "outer dst"),
        ("UDP checksum", rep(k, _poke(out[k], 40, b"\x12\x34")), icmp, "outer dst"),
        ("unknown SPI", rep(k, direct(spi=0xDEAD0001)), icmp, "SPI is a configured"),
        ("ciphertext bit", rep(k, _poke(out[k], 60, bytes([out[k][60] ^ 4]))), icmp,
         "scapy's ESP decrypts"),
        ("ICV bit", rep(k, out[k][:-1] + bytes([out[k][-1] ^ 1])), icmp, "scapy's ESP decrypts"),
        ("inbound key instead of the outbound key", rep(k, direct(key=kt.in_key)), icmp,
         "scapy's ESP decrypts"),
        ("ESN tunnel sealed with the non-ESN AAD", rep(e0, nt.direct_outbound(
            gw, esn_t, ein, eseq, df=nt.ip_df(ein), esn=False)), icmp, "scapy's ESP decrypts"),
        ("IV not the sequence number", rep(k, direct(iv=rng.randbytes(8))), icmp, "IV = 64-bit"),
        ("padding 4 bytes longer", rep(k, direct(pad=pad_long)), icmp, "AESGCM plaintext"),
        ("padding 4 bytes longer: length", rep(k, direct(pad=pad_long)), icmp, "outer length"),
        ("padding bytes zero", rep(k, direct(pad=bytes(len(pad_long)))), icmp, "AESGCM plaintext"),
        ("next header 41", rep(k, direct(nh=41)), icmp, "AESGCM plaintext"),
        ("outer TOS", rep(k, direct(tos=kin[1] ^ 0x20)), icmp, "outer TOS"),
        ("outer DF flipped", rep(k, direct(df=not kdf)), icmp, "outer TOS"),
        ("duplicate sequence number", rep(k2, nt.reference_outbound(gw, kt, kin, kseq, 5)), icmp,
         "unique and contiguous"),
        ("a packet missing", out[:k] + out[k + 1:], icmp, "unique and contiguous"),
        ("a packet missing: content", out[:k] + out[k + 1:], icmp, "every forwarded packet"),
        ("two packets of a tunnel sent in swapped order", swapped, icmp, "increasing order"),
        ("sequence numbers given in swapped input order", content_swap, icmp,
         "sequence order = input order"),
        ("TTL not decremented", rep(k, nt.reference_outbound(
            gw, kt, nt.set_ip_fields(kin, ttl=kin[8] + 1), kseq, 1)), icmp,
         "every forwarded packet"),
        ("one inner payload byte changed", rep(k, nt.reference_outbound(
            gw, kt, kin[:-1] + bytes([kin[-1] ^ 1]), kseq, 1)), icmp, "every forwarded packet"),
        ("a copy sealed for another tunnel", out + [nt.reference_outbound(gw, other, kin, 999, 1)],
         icmp, "every forwarded packet"),
        ("fragments with the TTL not decremented", frag_ttl, icmp, "fragmented before encryption"),
        ("fragments larger than L", frag_big, icmp, "fragmented before encryption"),
        ("ICMP next-hop MTU L + 4", out, [icmp_frame(bytes(icmp_ip / ICMP(
            type=3, code=4, nexthopmtu=otr.L + 4) / Raw(orig0[:nt.ICMP_QUOTE_MAX])))] + icmp[1:],
         "ICMP type 3 code 4"),
        ("ICMP checksum", out, [_poke(icmp[0], 14 + 22, b"\xbe\xef")] + icmp[1:],
         "ICMP type 3 code 4"),
        ("ICMP TTL 63", out, [icmp_frame(bytes(IP(src=gw.inside_addr, dst=IP(orig0).src, ttl=63) /
                                               ICMP(type=3, code=4, nexthopmtu=otr.L) /
                                               Raw(orig0[:nt.ICMP_QUOTE_MAX])))] + icmp[1:],
         "ICMP type 3 code 4"),
        ("ICMP quotes only header + 8", out, [icmp_frame(bytes(icmp_ip / ICMP(
            type=3, code=4, nexthopmtu=otr.L) / Raw(orig0[:28])))] + icmp[1:],
         "ICMP type 3 code 4"),
        ("ICMP quote with TTL - 1", out, [icmp_frame(bytes(icmp_ip / ICMP(
            type=3, code=4, nexthopmtu=otr.L) / Raw(nt.forwarded_ip(orig0)[:nt.ICMP_QUOTE_MAX])))] +
         icmp[1:], "ICMP type 3 code 4"),
        ("ICMP missing", out, icmp[1:], "ICMP frag-needed count"),
        ("ICMP from the outside address", out,
         [icmp[0][:26] + nt.ip4(gw.outside_addr) + icmp[0][30:]] + icmp[1:],
         "ICMP type 3 code 4"),
        ("outer IP ID repeated", ipid_dup, icmp, "fresh outer IP ID"),
    ]
    bad = []
    for desc, o, i, want in cases:
        rc = verify(o, i)
        if not any(want in f for f in rc.failures):
            bad.append("%s: no '%s' failure (failures: %s)"
                       % (desc, want, [f[:70] for f in rc.failures][:3]))
    # tshark: a flipped ciphertext bit, and a wrong key in tshark's SA table
    rc = verify(rep(k, _poke(out[k], 60, bytes([out[k][60] ^ 4]))), icmp, tshark=True)
    if not any("tshark" in f for f in rc.failures):
        bad.append("ciphertext bit: no tshark failure")
    wrong = []
    for t in tunnels:
        w = nt.Tunnel(t.name, t.remote, t.remote_port, t.algorithm, t.esn, t.in_spi, t.in_key,
                      t.out_spi, bytes(len(t.out_key)) if t is kt else t.out_key,
                      t.remote_ts, t.local_ts, 1)
        w.local_port = t.local_port
        wrong.append(w)
    rc = h.RecordingChecker()
    h.check_tshark(rc, "selftest", wrong, [out], h.decode_queues(gw, tunnels, [out]), workdir)
    if not rc.failures:
        bad.append("tshark with a wrong key: no failure")
    ck.check(not bad, "checker self-test: each of %d corruptions fails the check aimed at it; "
             "the tshark comparison fails on a flipped bit and on a wrong key" % len(cases),
             "; ".join(bad[:5]))


# ---------------------------------------------------------------- gateway runs

def run_and_check(ck, tag, gw, tunnels, otr, df=None):
    wd = h.make_workdir(tag)
    failed = ck.failed
    cfg = nt.config_text(gw, tunnels, 1024, comment="test_outbound.py %s: %d tunnels" % (
        tag, len(tunnels)), df=df)
    run = h.run_gateway(wd, cfg, [], inside_frames=[f.data for f in otr.frames],
                        timeout=TIMEOUT, capture_outside=True)
    h.check_run(ck, tag, run, TIMEOUT)
    out = run.outside_out or []
    icmp, rest = h.split_inside_out(gw, run.out)
    ck.check(run.out is not None and not rest and not icmp,
             "%s: nothing sent back on the inside port" % tag,
             "%d frames, first %s" % (len(run.out or []), (run.out or [b""])[0][:40].hex()))
    if run.outside_out is not None:
        h.verify_outbound(ck, tag, gw, otr, [out], icmp, df_mode=df or "copy", workdir=wd)
        h.check_outbound_stats(ck, tag, otr, run, len(out))
    else:
        ck.check(False, "%s: outside capture readable" % tag, run.outside_error or "")
    h.finish_workdir(ck, wd, failed)


def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    sd = tempfile.mkdtemp(prefix="natt-outbound-selftest-")
    try:
        checker_selftest(ck, random.Random(rng.randrange(1 << 30)), sd)
    finally:
        shutil.rmtree(sd, ignore_errors=True)
    gw, tunnels = make_setup(rng)
    otr = build(rng, gw, tunnels)
    fw = otr.forwarded()
    print("traffic: %d inside frames, %d to encrypt (%d..%d B) over %d tunnels (%d ESN, "
          "%d behind 198.51.100.25), %d only right by longest prefix; drops %s"
          % (len(otr.frames), len(fw), min(len(f.ip) for f in fw), max(len(f.ip) for f in fw),
             len(tunnels), sum(t.esn for t in tunnels),
             sum(t.remote == "198.51.100.25" for t in tunnels), lpm_coverage(otr),
             otr.expected_drops()), flush=True)
    used = {f.tunnel.name for f in fw}
    ck.check(len(used) == len(tunnels) and lpm_coverage(otr) > 300 and
             any(len(f.ip) == otr.L for f in fw),
             "outbound: traffic covers every tunnel, > 300 longest-prefix cases, L-sized packets",
             "%d of %d tunnels used" % (len(used), len(tunnels)))
    if not h.gateway_present(ck):
        return ck.finish()
    run_and_check(ck, "outbound", gw, tunnels, otr)
    for df in ("set", "clear"):
        o = build(rng, gw, tunnels, n_valid=80, hostile=[])
        run_and_check(ck, "outbound df=%s" % df, gw, tunnels, o, df=df)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
