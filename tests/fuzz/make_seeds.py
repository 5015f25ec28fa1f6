#!/usr/bin/env python3
"""Write the seed corpus for fuzz_inbound (run once; the files are committed).
Byte 0: 0 mod 4 raw outside frame, 2 mod 4 raw inside frame (outbound), odd:
sealed-mode input (see fuzz_inbound.c)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ipv4(src, dst, proto, payload, ttl=64, df=False):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000 if df else 0,
                    ttl, proto, 0,
                    bytes(src), bytes(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def frame(udp_payload, dport=4500):
    udp = struct.pack("!HHHH", 4500, dport, 8 + len(udp_payload), 0) + udp_payload
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ipv4([198, 51, 100, 1], [203, 0, 113, 1], 17, udp)


def arp(op, sip, tip):
    """Ethernet/ARP (RFC 826) from 04:..:04 / sip asking for (or answering) tip."""
    return (b"\xff" * 6 + b"\x04" * 6 + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) +
            b"\x04" * 6 + bytes(sip) + b"\x00" * 6 + bytes(tip))


def esp_plain(inner, nh=4):
    pad = (-(len(inner) + 2)) % 4
    return inner + bytes(range(1, pad + 1)) + bytes([pad, nh])


inner = ipv4([10, 1, 2, 3], [192, 168, 1, 1], 17, struct.pack("!HHHH", 1, 2, 12, 0) + b"data")
seeds = {
    "keepalive": b"\x00" + frame(b"\xff"),
    "ike": b"\x00" + frame(b"\x00" * 4 + b"\x11" * 28),
    "ike500": b"\x00" + frame(b"\x22" * 28, dport=500),
    "esp_nosa": b"\x00" + frame(struct.pack("!II", 0x300, 1) + b"\x00" * 40),
    "esp_sa128": b"\x00" + frame(struct.pack("!II", 0x100, 1) + b"\x00" * 40),
    "sealed128": b"\x01\x00" + struct.pack("!I", 1) + esp_plain(inner),
    "sealed256": b"\x01\x01" + struct.pack("!I", 2) + esp_plain(inner),
    "sealed_policy": b"\x01\x00" + struct.pack("!I", 3) +
    esp_plain(ipv4([172, 16, 0, 1], [192, 168, 1, 1], 17, b"\x00" * 12)),
    "sealed_ttl1": b"\x01\x00" + struct.pack("!I", 4) +
    esp_plain(ipv4([10, 0, 0, 1], [192, 168, 1, 1], 17, b"\x00" * 12, ttl=1)),
    "out_udp": b"\x02" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" +
    ipv4([192, 168, 1, 2], [10, 1, 2, 3], 17, b"\x00" * 30),
    "out_big_df": b"\x02" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" +
    ipv4([192, 168, 1, 2], [10, 9, 2, 3], 17, b"\x00" * 1480, df=True),
    "out_big_frag": b"\x02" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" +
    ipv4([192, 168, 1, 2], [10, 9, 2, 3], 17, b"\x00" * 1600),
    "out_syn": b"\x02" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" +
    ipv4([192, 168, 1, 2], [8, 8, 8, 8], 6, struct.pack("!HHIIBBHHH", 1, 2, 3, 0, 0x60, 0x02,
         512, 0, 0) + bytes([2, 4, 0x05, 0xb4])),
    "sealed_v6": b"\x01\x00" + struct.pack("!I", 5) + esp_plain(b"\x60" + b"\x00" * 39, nh=41),
    # the gateway's own traffic (host.c): ARP asked and answered, ping to us
    "arp_req": b"\x00" + arp(1, [198, 51, 100, 1], [203, 0, 113, 1]),
    "arp_reply": b"\x00" + arp(2, [198, 51, 100, 1], [203, 0, 113, 1]),
    "ping_us": b"\x00" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" +
    ipv4([198, 51, 100, 1], [203, 0, 113, 1], 1, b"\x08\x00\xf7\xff\x00\x00\x00\x00"),
    "in_arp_req": b"\x02" + arp(1, [10, 10, 0, 2], [10, 10, 0, 1]),
    "in_ping_us": b"\x02" + b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" +
    ipv4([10, 10, 0, 2], [10, 10, 0, 1], 1, b"\x08\x00\xf7\xff\x00\x00\x00\x00"),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    open(os.path.join(OUT, name), "wb").write(data)
print("wrote %d seeds to %s" % (len(seeds), OUT))
