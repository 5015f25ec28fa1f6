#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""gen-tunnels.py - a valid natt-gw config with many tunnels, for scale tests.

    gen-tunnels.py N OUT.cfg [--seed S] [--algo 128|256|mix] [--esn-every K]
                   [--peers-per-addr P] [--replay-window W] [--max-spi M]

Writes N tunnels the way an operator's file for a CGNAT-heavy deployment
looks: peers share public addresses (up to P = 1024 tunnels behind one address,
on distinct source ports from a 198.18.0.0/15 pool), each tunnel has unique
inbound and outbound SPIs, its own /32 remote_ts from 10.64.0.0/10 (in file
order) and local_ts 0.0.0.0/0. Names are t0 .. t<N-1>.

--algo      aes-gcm-128, aes-gcm-256, or a random mix of both (default 128)
--esn-every every K-th tunnel (t0, tK, t2K, ...) uses ESN; 0 = none (default)
--seed      makes the whole file, keys included, reproducible. Without it the
            keys come from os.urandom and the rest from seed 0.
--peers-per-addr  tunnels behind one public address, 1..64512 (default 1024)
--replay-window   the dataplane's anti-replay window (default 1024; 0 = off)
--max-spi   every SPI is below M (default 2^32). DPDK's ipsec-secgw reads SPIs
            with atoi(): give 2147483648 for configs it must read too.
The defaults give byte for byte the file of earlier versions for the same seed.

One million tunnels (about 300 MB) take a few seconds.
"""

import argparse
import math
import os
import random
import sys

MAX_TUNNELS = 1000000       # NATT_CFG_MAX_TUNNELS in control/config.h
PORTS_PER_ADDR = 1024       # tunnels behind one CGNAT address
SPI_MIN = 256               # 1..255 are reserved (RFC 4303 2.1)
SPI_SPAN = (1 << 32) - SPI_MIN     # default --max-spi 2^32
TS_BASE = (10 << 24) | (64 << 16)   # 10.64.0.0/10: 4M /32s
PEER_BASE = (198 << 24) | (18 << 16)  # 198.18.0.0/15: 128k addresses
CHUNK = 8192                # tunnels per write()

HEADER = """\
# natt-gw configuration: {n} tunnels, written by scripts/gen-tunnels.py
# ({args}).
dataplane = {{ replay_window = {window}; }};
interfaces = (
  {{ name = "outside"; port = 0; role = "outside"; address = "203.0.113.1"; next_hop_mac = "02:00:00:00:00:fe"; mtu = 1500; }},
  {{ name = "inside";  port = 1; role = "inside";  address = "10.10.0.1";   next_hop_mac = "02:00:00:00:01:fe"; mtu = 1500; }}
);
tunnels = (
"""

TUNNEL = (
    '  { name = "t%d"; remote = "%s"; remote_port = %d; algorithm = "aes-gcm-%d"; esn = %s;\n'
    '    inbound  = { spi = 0x%08x; key = "%s"; };\n'
    '    outbound = { spi = 0x%08x; key = "%s"; };\n'
    '    remote_ts = [ "%s/32" ]; local_ts = [ "0.0.0.0/0" ]; },\n'
)


def dotted(a):
    return "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)


def spi_perm(rng, span=SPI_SPAN):
    """A random bijection of [0, span): i -> SPI_MIN + (a*i + b) mod span."""
    while True:
        a = rng.randrange(1, span)
        if math.gcd(a, span) == 1:
            return a, rng.randrange(span)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="number of tunnels (0..%d)" % MAX_TUNNELS)
    ap.add_argument("out", help="config file to write")
    ap.add_argument("--seed", type=int, help="reproducible output, keys included")
    ap.add_argument("--algo", choices=("128", "256", "mix"), default="128")
    ap.add_argument("--esn-every", type=int, default=0, metavar="K")
    ap.add_argument("--peers-per-addr", type=int, default=PORTS_PER_ADDR, metavar="P")
    ap.add_argument("--replay-window", type=int, default=1024, metavar="W")
    ap.add_argument("--max-spi", type=int, default=1 << 32, metavar="M")
    args = ap.parse_args()
    if not 0 <= args.n <= MAX_TUNNELS:
        ap.error("N must be 0..%d" % MAX_TUNNELS)
    if args.esn_every < 0:
        ap.error("--esn-every must be >= 0")
    if not 1 <= args.peers_per_addr <= 65536 - 1024:
        ap.error("--peers-per-addr must be 1..64512 (source ports 1024..65535)")
    if not 0 <= args.replay_window <= 4096:
        ap.error("--replay-window must be 0..4096")
    if not SPI_MIN + max(args.n, 1) <= args.max_spi <= 1 << 32:
        ap.error("--max-spi leaves too few SPIs for N tunnels (or is above 2^32)")
    return args


def main():
    args = parse_args()
    rng = random.Random(args.seed if args.seed is not None else 0)
    keys = rng.randbytes if args.seed is not None else os.urandom
    n = args.n
    span = args.max_spi - SPI_MIN
    per_addr = args.peers_per_addr
    ia, ib = spi_perm(rng, span)
    oa, ob = spi_perm(rng, span)
    desc = "seed %s, algo %s, esn every %d" % (
        args.seed if args.seed is not None else "none: random keys",
        args.algo, args.esn_every)
    if per_addr != PORTS_PER_ADDR or args.max_spi != 1 << 32:
        desc += ", %d peers per address, SPIs below %d" % (per_addr, args.max_spi)

    esn_every = args.esn_every
    ports = []
    peer = ""
    with open(args.out, "w") as f:
        f.write(HEADER.format(n=n, args=desc, window=args.replay_window))
        for start in range(0, n, CHUNK):
            end = min(n, start + CHUNK)
            if args.algo == "mix":
                bits = [rng.choice((128, 256)) for _ in range(start, end)]
            else:
                bits = [int(args.algo)] * (end - start)
            # one random draw per chunk: key || salt of both directions
            blob = keys(sum(2 * (b // 8 + 4) for b in bits)).hex()
            out = []
            off = 0
            for i, b in zip(range(start, end), bits):
                k = 2 * (b // 8 + 4)
                addr, slot = divmod(i, per_addr)
                if slot == 0:
                    ports = rng.sample(range(1024, 65536), per_addr)
                    peer = dotted(PEER_BASE + 1 + addr)
                ts = TS_BASE + i
                out.append(TUNNEL % (
                    i, peer, ports[slot], b,
                    "true" if esn_every and i % esn_every == 0 else "false",
                    SPI_MIN + (ia * i + ib) % span, blob[off:off + k],
                    SPI_MIN + (oa * i + ob) % span, blob[off + k:off + 2 * k],
                    # i < 4M: the first octet stays TS_BASE's 10
                    "10.%d.%d.%d" % (ts >> 16 & 255, ts >> 8 & 255, ts & 255)))
                off += 2 * k
            if end == n:  # no comma after the last tunnel
                out[-1] = out[-1][:-2] + "\n"
            f.write("".join(out))
        f.write(");\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
