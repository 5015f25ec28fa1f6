#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Round trip through two gateways: A's outbound output is B's inbound input.

Gateway A (outside 203.0.113.1) has 12 tunnels to one peer, gateway B, whose
outside address is 198.51.100.25 (AES-GCM-128 and -256, with and without ESN,
one with an explicit local_port 4500). B is configured as A's mirror: B's
inbound SA = A's outbound SA (same SPI and key), B's outbound = A's inbound,
B's remote = A's outside address, selectors swapped (B.remote_ts = A.local_ts,
B.local_ts = A.remote_ts).

Clear packets enter A's inside port (random UDP/TCP/ICMP of all sizes up to
A's usable MTU, exactly-L packets, DF-clear oversize packets that A must
fragment before encryption, a few with TTL 2). A's outside capture is fed to
B's outside port. B must give back every original packet with TTL - 2 and the
header checksum redone; fragments leave B as fragments (B does not reassemble
inner packets) and reassemble (scapy defragment) to the original with TTL - 2;
TTL-2 packets arrive at B with TTL 1 and are B's ttl_expired drops. A's
output is also checked on its own (scapy, tshark, sequence numbers, headers).

Usage: /usr/bin/python3 tests/integration/test_roundtrip.py
"""

import os
import random
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402
from scapy.layers.inet import IP, defragment   # noqa: E402

TIMEOUT = 180
N_TUNNELS = 12
N_VALID = 600


def make_pair(rng):
    gwa = nt.Gateway()
    gwb = nt.Gateway(outside_addr="198.51.100.25", inside_addr="10.20.0.1",
                     outside_next_hop="02:00:00:00:10:fe", inside_next_hop="02:00:00:00:11:fe",
                     outside_mac="02:00:00:00:10:01", inside_mac="02:00:00:00:11:01")
    spis = set()

    def spi():
        return nt.unique_spi(rng, spis)

    ta = []
    for k in range(N_TUNNELS):
        algo = "aes-gcm-128" if k % 2 == 0 else "aes-gcm-256"
        kl = 16 if k % 2 == 0 else 32
        # nested remote_ts on A (B's local_ts); distinct local_ts on A (B's
        # remote_ts: B routes and polices by them, so they must not repeat)
        rts = ["10.%d.0.0/16" % (60 + k // 3)] if k % 3 == 0 else \
            ["10.%d.%d.0/24" % (60 + k // 3, k)] if k % 3 == 1 else \
            ["10.%d.%d.128/25" % (60 + k // 3, k - 1), "10.%d.99.%d/32" % (60 + k // 3, k)]
        t = nt.Tunnel("rt-%02d" % k, gwb.outside_addr, 4500, algo, k % 4 >= 2, spi(),
                      rng.randbytes(kl + 4), spi(), rng.randbytes(kl + 4), rts,
                      ["10.10.%d.0/24" % k], 1)
        ta.append(t)
    ta[1].local_port = 4500
    tb = [nt.mirror_tunnel(t, gwa) for t in ta]
    return gwa, gwb, ta, tb


def build(rng, gwa, ta):
    otr = nt.OutTraffic(gwa, ta, rng)
    L = otr.L
    for _ in range(N_VALID):
        t = rng.choice(ta)
        r = rng.random()
        ttl = rng.randrange(3, 256)     # TTL 2 only where said: it dies at B
        if r < 0.05:
            otr.valid(t, length=L, ttl=ttl, desc="exactly L")
        elif r < 0.10:
            otr.valid(t, length=rng.randrange(L + 1, 1501), df=False, proto="udp", ttl=ttl,
                      desc="DF-clear oversize (fragmented by A)")
        elif r < 0.13:
            otr.valid(t, ttl=2, length=rng.randrange(nt.MIN_INNER, 300), desc="TTL 2")
        elif r < 0.18:
            otr.valid(t, options=True, length=rng.randrange(40, L), ttl=ttl, desc="IP options")
        else:
            otr.valid(t, ttl=ttl)
    return otr


def expected_b(ip):
    """What B forwards for an original packet: TTL - 2, checksum redone."""
    return nt.set_ip_fields(ip, ttl=ip[8] - 2)


def check_b(ck, tag, otr, gwb, run_b, n_a_esp):
    """B's inside output against A's input."""
    fw = otr.forwarded()
    want = Counter(expected_b(f.ip) for f in fw if not f.frag and f.ip[8] > 2)
    ttl_drop = sum(1 for f in fw if f.ip[8] <= 2)
    fragged = [f for f in fw if f.frag]
    got = [h._ip_of(o)[0] for o in run_b.out or []]
    frags = defaultdict(list)
    extra = []
    have = Counter()
    for g in got:
        if want[g] > have[g]:
            have[g] += 1
        elif len(g) >= 20 and (nt.ip_mf(g) or nt.ip_frag_off(g)):
            frags[(g[4:6], g[9], g[12:20])].append(g)
        else:
            extra.append(g)
    missing = sum((want - have).values())
    ck.check(not missing and not extra and want,
             "%s: B gives back every unfragmented packet with TTL - 2 (%d)" % (tag, sum(want.values())),
             "%d missing, %d unexpected%s" % (missing, len(extra), "; first unexpected %s" %
                                              extra[0][:40].hex() if extra else ""))
    errs = []
    for f in fragged:
        e = expected_b(f.ip)
        pieces = frags.pop((e[4:6], e[9], e[12:20]), [])
        if len(pieces) < 2:
            errs.append("%s: %d fragments out of B" % (f.label(), len(pieces)))
            continue
        d = defragment([IP(p) for p in pieces])
        if len(d) != 1 or bytes(d[0]) != e:
            errs.append("%s: B's %d fragments do not reassemble to the original with TTL - 2"
                        % (f.label(), len(pieces)))
    if frags:
        errs.append("%d unexpected fragment groups" % len(frags))
    ck.check(not errs and fragged, "%s: %d packets A fragmented leave B as fragments that "
             "reassemble to the original with TTL - 2" % (tag, len(fragged)), h._first(errs))
    drops = (run_b.stats or {}).get("drops") or {}
    other = {k: v for k, v in drops.items() if v and k != "ttl_expired"}
    ck.check(drops.get("ttl_expired") == ttl_drop and not other,
             "%s: B drops only the %d TTL-2 originals (ttl_expired)" % (tag, ttl_drop),
             "drops %s" % {k: v for k, v in drops.items() if v})
    c = (run_b.stats or {}).get("counters") or {}
    dec = c.get("decrypted")
    ck.check(c.get("rx_packets") == n_a_esp and isinstance(dec, int) and dec >= len(got) and
             len(got) == n_a_esp - ttl_drop,
             "%s: B received all %d ESP packets of A, forwarded %d (counters.decrypted >= that)"
             % (tag, n_a_esp, n_a_esp - ttl_drop),
             "rx %s decrypted %s forwarded %d" % (c.get("rx_packets"), c.get("decrypted"), len(got)))
    bad = [o for o in run_b.out or [] if o[0:6] != nt.mac_bytes(gwb.inside_next_hop)]
    ck.check(not bad, "%s: B's output Ethernet dst = B's inside next_hop_mac" % tag,
             "%d frames wrong" % len(bad))


def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    gwa, gwb, ta, tb = make_pair(rng)
    otr = build(rng, gwa, ta)
    fw = otr.forwarded()
    print("traffic: %d packets into A over %d tunnels (%s), %d to fragment, %d with TTL 2"
          % (len(otr.frames), len(ta), ", ".join(sorted({"%s%s" % (t.algorithm, " ESN" if t.esn
                                                                   else "") for t in ta})),
             sum(f.frag for f in fw), sum(f.ip[8] == 2 for f in fw)), flush=True)
    # offline: A's reference output through B's keys decrypts (the mirror is right)
    out, _ = nt.reference_output(gwa, otr)
    bad = 0
    for fr in out:
        iph, udph, esp = nt.parse_natt(fr)
        t = next(t for t in tb if t.in_spi == int.from_bytes(esp[:4], "big"))
        try:
            nt.scapy_decrypt(t, esp, 0)
        except Exception:
            bad += 1
    ck.check(bad == 0 and out, "mirror config: A's reference output decrypts with B's inbound "
             "SAs (scapy, %d packets)" % len(out), "%d fail" % bad)
    if not h.gateway_present(ck):
        return ck.finish()
    wda = h.make_workdir("roundtrip-A")
    failed = ck.failed
    cfga = nt.config_text(gwa, ta, 1024, comment="test_roundtrip.py gateway A")
    ra = h.run_gateway(wda, cfga, [], inside_frames=[f.data for f in otr.frames],
                       timeout=TIMEOUT, capture_outside=True)
    h.check_run(ck, "A", ra, TIMEOUT)
    a_out = ra.outside_out or []
    if ra.outside_out is not None:
        h.verify_outbound(ck, "A", gwa, otr, [a_out], workdir=wda)
    h.finish_workdir(ck, wda, failed)
    if not a_out:
        return ck.finish()
    wdb = h.make_workdir("roundtrip-B")
    failed = ck.failed
    cfgb = nt.config_text(gwb, tb, 1024, comment="test_roundtrip.py gateway B (A's mirror)")
    rb = h.run_gateway(wdb, cfgb, a_out, timeout=TIMEOUT)
    h.check_run(ck, "B", rb, TIMEOUT)
    check_b(ck, "A -> B", otr, gwb, rb, len(a_out))
    h.finish_workdir(ck, wdb, failed)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
