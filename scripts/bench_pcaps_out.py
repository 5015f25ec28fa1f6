#!/usr/bin/python3
"""Outbound benchmark traffic and output check (run with /usr/bin/python3, needs scapy).

  bench_pcaps_out.py gen OUTDIR N SIZES
      writes clear_L<L>.pcap for each inner IPv4 length L (comma list): N copies of
      Ether/IP(192.168.100.1 -> 192.168.200.1)/UDP(1024->1024)/payload 0xab, the same
      bytes as shared/bench/gen_pcaps.py's clear_L<L>.pcap (the outbound input of
      shared/bench/run.sh). Encrypted, each is an outer frame of 74 + pad4(L + 2) bytes.

  bench_pcaps_out.py verify OUT.pcap L N KEYSALT_HEX SPI [TTL]
      checks a tx_pcap written on the outside port: N frames of
      Ether/IP(172.16.1.5 -> 172.16.2.5)/UDP(4500->4500, length right)/ESP(SPI) that
      AES-GCM-decrypt (key||salt hex; the key length picks AES-128/256) to the clear
      packet above (inner TTL = TTL if given), sequence numbers strictly increasing.
      Prints one summary line; exit 0 on success.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "shared", "bench"))
from gen_pcaps import inner_pkt, SRC_MAC, DST_MAC  # noqa: E402
from scapy.all import Ether, IP, UDP, PcapWriter, rdpcap  # noqa: E402
from scapy.layers.ipsec import SecurityAssociation, ESP  # noqa: E402

IN_SRC, IN_DST = "192.168.100.1", "192.168.200.1"
OUT_SRC, OUT_DST = "172.16.1.5", "172.16.2.5"


def outer_frame(L):
    return 74 + ((L + 2 + 3) // 4) * 4


def gen(out, n, sizes):
    os.makedirs(out, exist_ok=True)
    PcapWriter(os.path.join(out, "empty.pcap"), linktype=1, sync=False).close()
    for L in sizes:
        clear = Ether(src=SRC_MAC, dst=DST_MAC) / inner_pkt(L, IN_SRC, IN_DST)
        path = os.path.join(out, "clear_L%d.pcap" % L)
        w = PcapWriter(path, sync=False)
        for _ in range(n):
            w.write(clear)
        w.close()
        print("%s: %d pkts, clear frame %d B -> outer frame %d B"
              % (path, n, len(clear), outer_frame(L)))


def verify(path, L, n, keysalt, spi, ttl=None):
    ks = bytes.fromhex(keysalt)
    sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=ks,
                             auth_algo="NULL", auth_key=None,
                             tunnel_header=IP(src=OUT_SRC, dst=OUT_DST))
    pkts = rdpcap(path)
    bad, seqs, lens, ttls = 0, [], set(), set()
    for p in pkts:
        try:
            ip = p[IP]
            lens.add(len(p))
            assert ip.src == OUT_SRC and ip.dst == OUT_DST, "outer %s -> %s" % (ip.src, ip.dst)
            u = ip[UDP]
            assert u.sport == 4500 and u.dport == 4500, "udp ports %d/%d" % (u.sport, u.dport)
            assert u.len == ip.len - 20, "udp len %d vs ip len %d" % (u.len, ip.len)
            e = IP(bytes(IP(src=ip.src, dst=ip.dst, proto=50) / ESP(bytes(u.payload))))
            assert e[ESP].spi == spi, "spi 0x%x" % e[ESP].spi
            seqs.append(e[ESP].seq)
            d = sa.decrypt(e)
            ttls.add(d.ttl)
            assert d.src == IN_SRC and d.dst == IN_DST and d.len == L, d.summary()
            assert ttl is None or d.ttl == ttl, "inner ttl %d" % d.ttl
            assert bytes(d[UDP].payload) == b"\xab" * (L - 28), "payload"
            assert len(p) == outer_frame(L), "frame %d B, expected %d" % (len(p), outer_frame(L))
        except Exception as ex:  # noqa: BLE001
            bad += 1
            if bad < 3:
                print("bad pkt:", repr(ex), p.summary())
    mono = all(b > a for a, b in zip(seqs, seqs[1:]))
    print("outbound verify %s: %d pkts (expected %d), %d bad, seq %s..%s%s, frame %s B, "
          "inner ttl %s" % (os.path.basename(path), len(pkts), n, bad, seqs[0] if seqs else "-",
                            seqs[-1] if seqs else "-", "" if mono else " NOT INCREASING",
                            "/".join(str(x) for x in sorted(lens)) or "-",
                            "/".join(str(x) for x in sorted(ttls)) or "-"))
    return bad == 0 and len(pkts) == n and mono


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), [int(x) for x in sys.argv[4].split(",")])
    elif len(sys.argv) in (7, 8) and sys.argv[1] == "verify":
        ok = verify(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
                    int(sys.argv[6], 0), int(sys.argv[7]) if len(sys.argv) == 8 else None)
        sys.exit(0 if ok else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
