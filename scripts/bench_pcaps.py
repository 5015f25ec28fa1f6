#!/usr/bin/python3
"""Inbound benchmark traffic: ESP-in-UDP/4500 pcaps built by scapy's ESP.

Same layout as shared/bench/gen_pcaps.py (so natt-gw and ipsec-secgw read the same
bytes): Ether/IP(172.16.2.5 -> 172.16.1.5)/UDP(4500->4500, csum 0)/ESP(spi 0x105 = 261, tunnel
mode, inner 192.168.200.1 -> 192.168.100.1 UDP), sequence numbers 1..N.

usage: bench_pcaps.py OUTDIR N SIZES(comma list of inner IPv4 lengths) ALGOS(128,256)
writes natt<ALGO>_L<L>.pcap
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "shared", "bench"))
from gen_pcaps import inner_pkt, fix_natt, SRC_MAC, DST_MAC  # noqa: E402
from scapy.all import Ether, IP, UDP, PcapWriter  # noqa: E402
from scapy.layers.ipsec import SecurityAssociation, ESP  # noqa: E402

KEYS = {128: bytes([0xde, 0xad, 0xbe, 0xef] * 4), 256: bytes([0xde, 0xad, 0xbe, 0xef] * 8)}
SALT = bytes([0xca, 0xfe, 0xba, 0xbe])


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    sizes = [int(x) for x in sys.argv[3].split(",")]
    algos = [int(x) for x in sys.argv[4].split(",")]
    os.makedirs(out, exist_ok=True)
    for algo in algos:
        sa = SecurityAssociation(ESP, spi=0x105, crypt_algo="AES-GCM", crypt_key=KEYS[algo] + SALT,
                                 auth_algo="NULL", auth_key=None,
                                 tunnel_header=IP(src="172.16.2.5", dst="172.16.1.5"),
                                 nat_t_header=UDP(sport=4500, dport=4500))
        for L in sizes:
            inner = inner_pkt(L, "192.168.200.1", "192.168.100.1")
            path = os.path.join(out, "natt%d_L%d.pcap" % (algo, L))
            w = PcapWriter(path, sync=False)
            for seq in range(1, n + 1):
                w.write(fix_natt(Ether(src=SRC_MAC, dst=DST_MAC) /
                                 sa.encrypt(inner, seq_num=seq, iv=seq.to_bytes(8, "big"))))
            w.close()
            print(path)


if __name__ == "__main__":
    main()
