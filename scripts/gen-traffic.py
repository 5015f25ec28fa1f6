#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""gen-traffic.py - sample config + NAT-T capture for the demo.

    gen-traffic.py --config OUT.cfg --pcap OUT.pcap [--inside-pcap IN.pcap]
                   [--tunnels 4] [--packets 2000] [--seed N]

Writes a natt-gw config with --tunnels tunnels (AES-GCM-128 and -256, random
keys, peers behind one CGNAT address on distinct ports) and a capture for the
outside port: valid ESP-in-UDP/4500 traffic (built by scapy's ESP) with a
sprinkling of NAT keepalives, IKE packets (non-ESP marker on 4500, and UDP/500)
and a few bad packets (tampered ICV, unknown SPI) so that the drop counters
move. With --inside-pcap, also clear traffic for the inside port: packets from
the LAN to every tunnel's remote_ts (UDP and TCP SYNs, whose MSS gets
clamped), a few too big with DF set (ICMP "fragmentation needed" goes back)
or without (fragmented before encryption), and a few for no tunnel. The demo
replays the captures in a loop (net_pcap infinite_rx), so the
config turns anti-replay off: replay_window = 0.

Needs Debian's scapy: run with /usr/bin/python3. The packet building lives in
tests/integration/natt_traffic.py (shared with the integration tests).
"""

import argparse
import importlib.util
import os
import random
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_natt_traffic():
    path = os.path.join(ROOT, "tests", "integration", "natt_traffic.py")
    spec = importlib.util.spec_from_file_location("natt_traffic", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_inside(path, gw, tunnels, n, rng):
    """Clear LAN -> tunnel traffic for the inside port (scapy)."""
    from scapy.all import Ether, IP, TCP, UDP, Raw, wrpcap
    import ipaddress

    def dst_of(tun):
        net = ipaddress.ip_network(rng.choice(tun.remote_ts))
        return str(net.network_address + (rng.randrange(net.num_addresses)
                                           if net.num_addresses > 1 else 0))

    eth = Ether(src=gw.inside_next_hop, dst=gw.inside_mac)
    frames = []
    for i in range(n):
        tun = rng.choice(tunnels)
        ip = IP(src="10.10.%d.%d" % (rng.randrange(256), rng.randrange(1, 255)),
                dst=dst_of(tun), ttl=64, flags="DF" if rng.random() < 0.5 else 0)
        r = rng.random()
        if r < 0.05:
            pkt = ip / TCP(sport=rng.randrange(1024, 65536), dport=443, flags="S",
                           options=[("MSS", 1460), ("NOP", None), ("WScale", 7)])
        elif r < 0.06:
            ip.flags = "DF"
            pkt = ip / UDP(sport=5000, dport=5001) / Raw(b"\x00" * 1472)   # too big: ICMP
        elif r < 0.07:
            ip.flags = 0
            pkt = ip / UDP(sport=5000, dport=5001) / Raw(b"\x00" * 1472)   # fragmented
        elif r < 0.08:
            pkt = IP(src="10.10.1.2", dst="192.0.2.%d" % rng.randrange(1, 255)) / UDP()  # no_route
        else:
            pkt = ip / UDP(sport=rng.randrange(1024, 65536), dport=53) / Raw(
                b"\x00" * rng.choice((18, 64, 200, 512, 1000, 1400)))
        frames.append(eth / pkt)
    wrpcap(path, frames)
    print("%s: %d clear frames for the inside port" % (path, len(frames)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="config file to write")
    ap.add_argument("--pcap", required=True, help="capture to write (outside port input)")
    ap.add_argument("--inside-pcap", help="clear traffic to write (inside port input)")
    ap.add_argument("--tunnels", type=int, default=4, help="number of tunnels (default 4)")
    ap.add_argument("--packets", type=int, default=2000, help="valid packets (default 2000)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = ap.parse_args()
    if args.tunnels < 1 or args.packets < 1:
        ap.error("--tunnels and --packets must be >= 1")

    nt = load_natt_traffic()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    gw = nt.Gateway()
    # No ESN and sequence numbers from 1: the looped capture starts over at the
    # same numbers, which only works with anti-replay off.
    tunnels = nt.make_tunnels(rng, args.tunnels, esn_every=0, high_start_share=0)
    tr = nt.Traffic(gw, tunnels, 0, rng)

    # About 1 in 60 packets is not plain valid ESP.
    extras = [("keepalive", 12), ("ike_marker", 4), ("ike_500", 3),
              ("tampered_icv", 4), ("unknown_spi", 3)]
    per = max(1, args.packets // 60)
    schedule = [k for k, w in extras for _ in range(max(1, w * per // 26))]
    slots = sorted(rng.sample(range(args.packets), min(len(schedule), args.packets)))
    rng.shuffle(schedule)
    extra_at = dict(zip(slots, schedule))
    for i in range(args.packets):
        tun = rng.choice(tunnels)
        tr.valid(tun)
        kind = extra_at.get(i)
        if kind == "unknown_spi":
            tr.unknown_spi()
        elif kind is not None:
            getattr(tr, kind)(rng.choice(tunnels))

    comment = ("natt-gw demo config, written by scripts/gen-traffic.py --seed %d\n"
               "replay_window = 0: the demo loops its capture forever (net_pcap\n"
               "infinite_rx), so every sequence number comes back once per loop;\n"
               "with anti-replay on, everything after the first loop would be a replay."
               % seed)
    with open(args.config, "w") as f:
        f.write(nt.config_text(gw, tunnels, 0, comment=comment))
    tr.write(args.pcap)

    if args.inside_pcap:
        write_inside(args.inside_pcap, gw, tunnels, args.packets, rng)

    c = Counter(f.verdict for f in tr.frames)
    print("%s: %d tunnels; %s: %d frames (%s)" % (
        args.config, len(tunnels), args.pcap, len(tr.frames),
        ", ".join("%s %d" % (k, v) for k, v in sorted(c.items(), key=lambda x: -x[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
