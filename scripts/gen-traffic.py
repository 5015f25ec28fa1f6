#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""gen-traffic.py - sample config + NAT-T capture for the demo.

    gen-traffic.py --config OUT.cfg --pcap OUT.pcap [--tunnels 4] [--packets 2000] [--seed N]

Writes a natt-gw config with --tunnels tunnels (AES-GCM-128 and -256, random
keys, peers behind one CGNAT address on distinct ports) and a capture for the
outside port: valid ESP-in-UDP/4500 traffic (built by scapy's ESP) with a
sprinkling of NAT keepalives, IKE packets (non-ESP marker on 4500, and UDP/500)
and a few bad packets (tampered ICV, unknown SPI) so that the drop counters
move. The demo replays the capture in a loop (net_pcap infinite_rx), so the
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="config file to write")
    ap.add_argument("--pcap", required=True, help="capture to write (outside port input)")
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

    c = Counter(f.verdict for f in tr.frames)
    print("%s: %d tunnels; %s: %d frames (%s)" % (
        args.config, len(tunnels), args.pcap, len(tr.frames),
        ", ".join("%s %d" % (k, v) for k, v in sorted(c.items(), key=lambda x: -x[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
