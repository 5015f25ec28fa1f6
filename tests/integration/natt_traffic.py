#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""natt_traffic.py - configs and inbound NAT-T traffic for natt-gw tests and demos.

Everything here is an independent peer: packets are encrypted by scapy's ESP
(SecurityAssociation, AES-GCM, RFC 4106) or, for the trailer cases scapy cannot
produce (bad padding, wrong next header), by python3-cryptography's AESGCM
directly. No natt-gw code is used. Run with /usr/bin/python3 (Debian's scapy).

The main object is Traffic: it emits frames one at a time, tags each one with
the single verdict the gateway must reach (forwarded, or one drop reason), and
keeps a reference model of each inbound SA's anti-replay window (RFC 4303
section 3.4.3 and Appendix A) so that every verdict is computed, not guessed.
A case whose verdict would depend on implementation choices (burst-stale ESN
inference, check order between two faults) is never generated: each hostile
packet violates exactly one rule.
"""

import ipaddress
import struct
import time
from collections import Counter, defaultdict

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.isakmp import ISAKMP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

M32 = 0xFFFFFFFF
ESP_HDR = 8          # SPI + sequence number
GCM_IV = 8           # RFC 4106 explicit IV
GCM_ICV = 16
# Outer overhead of one ESP-in-UDP frame without padding: Ether 14 + IPv4 20 +
# UDP 8 + ESP 8 + IV 8 + trailer 2 + ICV 16.
NATT_OVERHEAD = 14 + 20 + 8 + ESP_HDR + GCM_IV + 2 + GCM_ICV
MAX_OUTER_IP = 1500  # outside MTU
MAX_INNER = MAX_OUTER_IP - (NATT_OVERHEAD - 14) - 2   # 1436: fits with <= 3 pad bytes
MIN_INNER = 28       # IPv4 + UDP/ICMP header, no payload

# Verdicts. FORWARD means: decrypted and sent out of the inside port.
FORWARD = "forward"
DROP_REASONS = ("malformed", "not_esp", "no_sa", "auth_failed", "replay",
                "bad_padding", "policy", "ttl_expired", "fragment", "bad_inner",
                "unsupported", "no_route", "handoff_full",
                "tx_full", "keepalive", "ike")

# A packet whose ESN high half the gateway infers from its window may share a
# burst with the packets that moved that window; the dataplane infers with the
# window as it was at the start of the burst. Valid ESN packets must infer the
# same high half from every window state of the last GUARD frames.
BURST_GUARD = 96


class Gateway:
    """Addresses of the gateway under test (the [interfaces] of the config)."""

    def __init__(self, outside_addr="203.0.113.1", inside_addr="10.10.0.1",
                 outside_next_hop="02:00:00:00:00:fe",
                 inside_next_hop="02:00:00:00:01:fe",
                 outside_mac="02:00:00:00:00:01", mtu=1500,
                 inside_mac="02:00:00:00:01:01", inside_mtu=None,
                 outside_next_hop_ip=None, inside_next_hop_ip=None):
        self.outside_addr = outside_addr
        self.inside_addr = inside_addr
        self.outside_next_hop = outside_next_hop
        self.inside_next_hop = inside_next_hop
        # An address instead: the config says next_hop (resolved by ARP)
        # in place of next_hop_mac.
        self.outside_next_hop_ip = outside_next_hop_ip
        self.inside_next_hop_ip = inside_next_hop_ip
        # Ethernet destination of the frames we feed in (the pcap PMD does not
        # filter on it; a real NIC would own this address).
        self.outside_mac = outside_mac
        self.mtu = mtu                  # outside MTU (and inside, unless inside_mtu)
        # Outbound: Ethernet destination of the frames fed to the inside port.
        self.inside_mac = inside_mac
        self.inside_mtu = mtu if inside_mtu is None else inside_mtu


class Tunnel:
    """One configured tunnel: the inbound SA we encrypt for, and its peer's NAT
    mapping (public address + port)."""

    def __init__(self, name, remote, remote_port, algorithm, esn, in_spi,
                 in_key, out_spi, out_key, remote_ts, local_ts, start_seq):
        self.name = name
        self.remote = remote
        self.remote_port = remote_port
        self.algorithm = algorithm
        self.esn = esn
        self.in_spi = in_spi
        self.in_key = in_key          # AES key || 4-byte salt
        self.out_spi = out_spi
        self.out_key = out_key
        self.remote_ts = remote_ts    # list of "a.b.c.d/n"
        self.local_ts = local_ts
        self.next_seq = start_seq     # 64-bit; the low half goes on the wire
        self.nets = [ipaddress.ip_network(t) for t in remote_ts]
        self.lnets = [ipaddress.ip_network(t) for t in local_ts]
        # Optional `local_port` key (outbound UDP source port); None = the key
        # is left out of the config (the gateway's default, 4500).
        self.local_port = None
        # Further optional tunnel keys, written as given: {"keepalive": 2,
        # "nat_mapping_change": '"pin"'} (values in libconfig syntax).
        self.extra = {}
        self.sa = SecurityAssociation(ESP, spi=in_spi, crypt_algo="AES-GCM",
                                      crypt_key=in_key, esn_en=esn, esn=0,
                                      tunnel_header=IP(src=remote, dst="0.0.0.0"))

    def in_ts(self, addr):
        a = ipaddress.ip_address(addr)
        return any(a in n for n in self.nets)

    def in_local_ts(self, addr):
        a = ipaddress.ip_address(addr)
        return any(a in n for n in self.lnets)

    def out_sport(self):
        """UDP source port of the tunnel's outbound ESP-in-UDP."""
        return 4500 if self.local_port is None else self.local_port

    def out_sa(self):
        """scapy SA for the gateway's outbound direction (what the peer
        decrypts with): outbound SPI and key, the tunnel's ESN setting."""
        return SecurityAssociation(ESP, spi=self.out_spi, crypt_algo="AES-GCM",
                                   crypt_key=self.out_key, esn_en=self.esn, esn=0,
                                   tunnel_header=IP(src="0.0.0.0", dst=self.remote))

    def take_seq(self):
        s = self.next_seq
        self.next_seq += 1
        return s

    def config(self):
        ts = lambda l: "[ " + ", ".join('"%s"' % t for t in l) + " ]"
        lp = "" if self.local_port is None else " local_port = %d;" % self.local_port
        lp += "".join(" %s = %s;" % kv for kv in self.extra.items())
        return ('  { name = "%s"; remote = "%s"; remote_port = %d;%s algorithm = "%s"; esn = %s;\n'
                '    inbound  = { spi = 0x%08x; key = "%s"; };\n'
                '    outbound = { spi = 0x%08x; key = "%s"; };\n'
                '    remote_ts = %s; local_ts = %s; }'
                % (self.name, self.remote, self.remote_port, lp, self.algorithm,
                   "true" if self.esn else "false", self.in_spi, self.in_key.hex(),
                   self.out_spi, self.out_key.hex(), ts(self.remote_ts), ts(self.local_ts)))


def unique_spi(rng, used):
    """A random SPI >= 256 not in used (and now added to it)."""
    while True:
        s = rng.randrange(256, 1 << 32)
        if s not in used:
            used.add(s)
            return s


def pick_peer(rng, k, cgnat_share, ports, low_port_share=0.0):
    """(remote, port) of tunnel k: about cgnat_share of the peers behind
    198.51.100.25, 15% behind 198.51.100.26 (distinct source ports, per
    address in ports; with low_port_share some below 4500, never 4500),
    the rest on their own address with port 4500."""
    r = rng.random()
    if r < cgnat_share:
        remote = "198.51.100.25"
    elif r < cgnat_share + 0.15:
        remote = "198.51.100.26"
    else:
        return "192.0.2.%d" % (1 + k % 250), 4500
    while True:
        if low_port_share and rng.random() < low_port_share:
            port = rng.randrange(1024, 4500)
        else:
            port = rng.randrange(1024, 65536)
        if port not in ports[remote] and port != 4500:
            ports[remote].add(port)
            return remote, port


def make_tunnels(rng, n, esn_every=5, first_index=1, cgnat_share=0.6,
                 high_start_share=0.3):
    """n tunnels with random keys, AES-GCM-128 and -256 alternating.

    Every esn_every-th tunnel uses ESN and starts a few packets below 2^32 so
    that its high half rolls over. About cgnat_share of the peers sit behind one
    CGNAT address (198.51.100.25) on distinct source ports, a few more behind a
    second one; the rest have their own address. Some non-ESN tunnels start at a
    high sequence number so that a "too old" packet can exist.
    Remote selectors vary (/32, /28, /24, two prefixes) inside 10.128.0.0/9."""
    tunnels = []
    spis = set()
    ports = defaultdict(set)

    def spi():
        return unique_spi(rng, spis)

    for k in range(n):
        i = first_index + k
        algo = "aes-gcm-128" if k % 2 == 0 else "aes-gcm-256"
        klen = 16 if algo == "aes-gcm-128" else 32
        in_key = rng.randbytes(klen + 4)
        out_key = rng.randbytes(klen + 4)
        remote, port = pick_peer(rng, k, cgnat_share, ports)
        base = "10.%d.%d" % (128 + (i >> 8), i & 0xFF)
        kind = k % 4
        if kind == 0:
            rts = ["%s.7/32" % base]
        elif kind == 1:
            rts = ["%s.16/28" % base]
        elif kind == 2:
            rts = ["%s.0/24" % base]
        else:
            rts = ["%s.7/32" % base, "%s.64/27" % base]
        lts = ["0.0.0.0/0"] if k % 3 else ["10.10.0.0/16"]
        esn = esn_every > 0 and k % esn_every == esn_every - 1
        if esn:
            start = (1 << 32) - rng.randrange(6, 30)
        elif rng.random() < high_start_share:
            start = rng.randrange(3000, 2000000)
        else:
            start = 1
        tunnels.append(Tunnel("rw-%04d" % i, remote, port, algo, esn, spi(), in_key,
                              spi(), out_key, rts, lts, start))
    return tunnels


def config_text(gw, tunnels, replay_window, comment=None, mss_clamp=None, df=None,
                icmp_rate=None, exception_rate=None):
    """The libconfig file the gateway (natt-control) loads. mss_clamp, df,
    icmp_rate and exception_rate (dataplane keys) are written only when given."""
    out = []
    if comment:
        out += ["# " + l if l else "#" for l in comment.splitlines()]
    dp = "replay_window = %d;" % replay_window
    if mss_clamp is not None:
        dp += " mss_clamp = %d;" % mss_clamp
    if df is not None:
        dp += ' df = "%s";' % df
    if icmp_rate is not None:
        dp += " icmp_rate = %d;" % icmp_rate
    if exception_rate is not None:
        dp += " exception_rate = %d;" % exception_rate
    out.append("dataplane = { %s };" % dp)

    def next_hop(ip, mac):
        return 'next_hop = "%s";' % ip if ip else 'next_hop_mac = "%s";' % mac

    out.append("interfaces = (")
    out.append('  { name = "outside"; port = 0; role = "outside"; address = "%s"; %s mtu = %d; },'
               % (gw.outside_addr, next_hop(gw.outside_next_hop_ip, gw.outside_next_hop), gw.mtu))
    out.append('  { name = "inside";  port = 1; role = "inside";  address = "%s"; %s mtu = %d; }'
               % (gw.inside_addr, next_hop(gw.inside_next_hop_ip, gw.inside_next_hop),
                  gw.inside_mtu))
    out.append(");")
    out.append("tunnels = (")
    out.append(",\n".join(t.config() for t in tunnels))
    out.append(");")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- byte helpers

def ip_checksum(hdr):
    """RFC 1071 checksum of bytes (checksum field included as it is)."""
    if len(hdr) % 2:
        hdr += b"\0"
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fix_ip_checksum(ip):
    """Return IPv4 bytes with the header checksum recomputed."""
    ihl = (ip[0] & 0xF) * 4
    b = bytearray(ip)
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", ip_checksum(bytes(b[:ihl])))
    return bytes(b)


def forwarded_ip(inner):
    """What the gateway must send for decrypted inner IPv4 bytes: TTL - 1 and
    the header checksum recomputed (computed here, not by scapy)."""
    b = bytearray(inner)
    b[8] -= 1
    return fix_ip_checksum(bytes(b))


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ip_field(off):
    """Name of the IPv4 header field at byte offset off (for diffs)."""
    names = [(0, "version/IHL"), (1, "TOS"), (2, "total length"), (4, "id"),
             (6, "flags/fragment offset"), (8, "TTL"), (9, "protocol"),
             (10, "header checksum"), (12, "source"), (16, "destination")]
    if off >= 20:
        return "byte %d after the fixed header" % (off - 20)
    name = names[0][1]
    for o, n in names:
        if off >= o:
            name = n
    return name


# ---------------------------------------------------------------- pcap files

def write_pcap(path, frames, t0=None):
    """Classic libpcap file, Ethernet link type, microsecond stamps 10 us apart."""
    t0 = time.time() if t0 is None else t0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            us = int(t0 * 1e6) + 10 * i
            f.write(struct.pack("<IIII", us // 1000000, us % 1000000, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    """List of frame bytes from a libpcap file (either byte order, us or ns)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: %d bytes, not a pcap file" % (path, len(data)))
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
    else:
        raise ValueError("%s: bad pcap magic 0x%08x" % (path, magic))
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError("%s: link type %d, expected Ethernet" % (path, linktype))
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        frames.append(data[off:off + incl])
        off += incl
    return frames


# ---------------------------------------------------------------- replay model

class ReplayModel:
    """Trivial reference receiver window: a set of seen numbers and the top.

    Sequence inference for ESN is RFC 4303 Appendix A2.2; when the window is in
    its first subspace (Th = 0) case B cannot go below 0. Window 0 = anti-replay
    off; ESN inference then uses a window of 2^31 (the widest unambiguous)."""

    def __init__(self, window, esn):
        self.w = window
        self.esn = esn
        self.top = 0
        self.seen = set()
        self.tops = [(-1, 0)]      # (frame index, top from then on)

    def infer(self, lo, top=None):
        if not self.esn:
            return lo
        top = self.top if top is None else top
        tl, th = top & M32, top >> 32
        w = self.w or 1 << 31
        bottom = (tl - w + 1) & M32
        if tl >= w - 1:
            return ((th + (lo < bottom)) << 32) | lo
        if lo >= bottom and th > 0:
            return ((th - 1) << 32) | lo
        return (th << 32) | lo

    def infer_stable(self, lo, now):
        """The inferred sequence number if every window state of the last
        BURST_GUARD frames gives the same one, else None."""
        cands = set()
        for idx, top in reversed(self.tops):
            cands.add(self.infer(lo, top))
            if idx <= now - BURST_GUARD:
                break
        return cands.pop() if len(cands) == 1 else None

    def verdict(self, sqn):
        if sqn == 0:
            return "replay"          # RFC 4303 3.3.3: the first packet is 1
        if self.w == 0 or sqn > self.top:
            return FORWARD
        if sqn + self.w <= self.top:
            return "replay"          # left of the window
        return "replay" if sqn in self.seen else FORWARD

    def accept(self, sqn, now):
        self.seen.add(sqn)
        if sqn > self.top:
            self.top = sqn
            self.tops.append((now, sqn))


# ---------------------------------------------------------------- packets

def inner_packet(rng, src, dst, length, proto=None, ttl=None, options=False):
    """An inner IPv4 packet of exactly `length` bytes (scapy), UDP, TCP or ICMP."""
    ihl = 24 if options else 20
    if proto is None:
        proto = rng.choice(("udp", "udp", "tcp", "icmp"))
    if proto == "tcp" and length < ihl + 20:
        proto = "udp"
    ttl = rng.randrange(2, 256) if ttl is None else ttl
    ip = IP(src=src, dst=dst, ttl=ttl, id=rng.randrange(65536),
            flags="DF" if rng.random() < 0.5 else 0, tos=rng.choice((0, 0, 0x10, 0xb8)))
    if options:
        ip.options = [b"\x01\x01\x01\x00"]   # NOP NOP NOP EOL: IHL 6
    if proto == "udp":
        l4 = UDP(sport=rng.randrange(1024, 65536), dport=rng.choice((53, 443, 4789, 5060, 33434)))
        hl = 8
    elif proto == "tcp":
        l4 = TCP(sport=rng.randrange(1024, 65536), dport=rng.choice((22, 80, 443)),
                 seq=rng.randrange(1 << 32), ack=rng.randrange(1 << 32),
                 flags=rng.choice(("A", "PA", "S", "FA")), window=rng.randrange(65536))
        hl = 20
    else:
        l4 = ICMP(type=8, id=rng.randrange(65536), seq=rng.randrange(65536))
        hl = 8
    pl = length - ihl - hl
    assert pl >= 0, (length, proto)
    p = ip / l4 / Raw(rng.randbytes(pl))
    p = IP(bytes(p))
    assert len(p) == length
    return p


def pick_inner_len(rng):
    """Spread outer frames over the whole range: both extremes, then uniform."""
    r = rng.random()
    if r < 0.06:
        return MIN_INNER
    if r < 0.12:
        return MAX_INNER
    if r < 0.3:
        return rng.randrange(MIN_INNER, 200)
    return rng.randrange(MIN_INNER, MAX_INNER + 1)


def scapy_esp(tun, sqn, inner, iv):
    """ESP bytes (SPI..ICV) of `inner` in tunnel mode, made by scapy's ESP."""
    lo, hi = sqn & M32, sqn >> 32
    sa = tun.sa
    # scapy replaces seq_num=0 / esn=0 by the SA's own fields: set those too.
    sa.seq_num = lo
    sa.esn = hi
    sa.esn_en = tun.esn
    e = sa.encrypt(inner, seq_num=lo, iv=iv, esn_en=tun.esn, esn=hi)
    return bytes(e[ESP])


def direct_esp(tun, sqn, payload, iv, nh=4, pad=None, padlen=None, key=None):
    """ESP bytes built with python3-cryptography's AESGCM (RFC 4106 / 4303),
    independent of scapy, so the trailer can be wrong on purpose.

    ESP = SPI || seq_lo || IV || AESGCM(key).encrypt(salt || IV,
          payload || pad || padlen || nh, AAD); AAD = SPI || seq_lo, or with
    ESN SPI || seq_hi || seq_lo (RFC 4106 section 5)."""
    k = tun.in_key if key is None else key
    key_, salt = k[:-4], k[-4:]
    if pad is None:
        pad = bytes(range(1, (-(len(payload) + 2)) % 4 + 1))
    plain = payload + pad + bytes([len(pad) if padlen is None else padlen, nh])
    spi_b = struct.pack("!I", tun.in_spi)
    lo_b = struct.pack("!I", sqn & M32)
    aad = spi_b + (struct.pack("!I", sqn >> 32) if tun.esn else b"") + lo_b
    return spi_b + lo_b + iv + AESGCM(key_).encrypt(salt + iv, plain, aad)


def scapy_decrypt(tun, esp_bytes, sqn_hi=0, sa=None):
    """Decrypt ESP bytes back with scapy (self-check; with sa=tun.out_sa(),
    what the gateway sent); returns inner bytes or raises scapy's
    IPSecIntegrityError."""
    sa = tun.sa if sa is None else sa
    sa.esn = sqn_hi
    p = IP(src=tun.remote, dst="203.0.113.1", proto=50) / ESP(esp_bytes)
    p = IP(bytes(p))
    return bytes(sa.decrypt(p, esn_en=tun.esn, esn=sqn_hi))


def udp_frame(gw, src, sport, dport, payload, dst=None, ttl=64, ipid=0, df=False,
              proto="udp", src_mac=None, dst_mac=None, udp_len=None, trailer=b""):
    """Ether / IPv4 / UDP (checksum 0, RFC 3948 2.1) / payload as bytes; lengths
    computed here, so scapy's NAT-T UDP length bug (its nat_t_header freezes the
    UDP length at 8) never applies."""
    dst = gw.outside_addr if dst is None else dst
    eth = Ether(src=src_mac or gw.outside_next_hop, dst=dst_mac or gw.outside_mac)
    ip = IP(src=src, dst=dst, ttl=ttl, id=ipid, flags="DF" if df else 0)
    if proto == "udp":
        l4 = UDP(sport=sport, dport=dport, chksum=0,
                 len=(8 + len(payload)) if udp_len is None else udp_len)
    else:
        l4 = TCP(sport=sport, dport=dport, flags="S")
    return bytes(eth / ip / l4 / Raw(payload)) + trailer


def ike_header(rng, exch=34, resp=False):
    """An IKEv2 header (IKE_SA_INIT by default) with random SPIs, via scapy."""
    return bytes(ISAKMP(init_cookie=rng.randbytes(8), resp_cookie=b"\0" * 8 if not resp else rng.randbytes(8),
                        next_payload=0, exch_type=exch, flags=0x08, id=0, length=28))


# ---------------------------------------------------------------- the stream

class Frame:
    __slots__ = ("data", "verdict", "tunnel", "sqn", "desc", "out_ip", "inner_len", "rx_sqn")

    def __init__(self, data, verdict, tunnel=None, sqn=None, desc="", out_ip=None):
        self.data = data
        self.verdict = verdict     # FORWARD or a drop reason
        self.tunnel = tunnel       # Tunnel the packet is attributed to, if any
        self.sqn = sqn
        self.desc = desc
        self.out_ip = out_ip       # expected IPv4 bytes on the inside port
        self.inner_len = len(out_ip) if out_ip is not None else 0
        self.rx_sqn = sqn          # the 64-bit number the receiver will infer

    def label(self):
        s = self.desc
        if self.tunnel is not None:
            s += " [%s spi 0x%08x" % (self.tunnel.name, self.tunnel.in_spi)
            if self.sqn is not None:
                s += " seq %s" % (("%d:%d" % (self.sqn >> 32, self.sqn & M32))
                                  if self.tunnel.esn else str(self.sqn))
                if self.rx_sqn != self.sqn:
                    s += ", receiver infers %d:%d" % (self.rx_sqn >> 32, self.rx_sqn & M32)
            s += "]"
        return s


class Traffic:
    """An input capture being built, with the expected verdict of every frame.

    Each emit method appends one frame and returns it (or None when its
    precondition does not hold yet, e.g. nothing to replay). The per-SA
    ReplayModel is advanced exactly as a correct receiver would advance it:
    only by packets whose ICV verifies."""

    def __init__(self, gw, tunnels, replay_window, rng):
        self.gw = gw
        self.tunnels = tunnels
        self.by_spi = {t.in_spi: t for t in tunnels}
        self.rng = rng
        self.window = replay_window
        self.frames = []
        self.models = {t.in_spi: ReplayModel(replay_window, t.esn) for t in tunnels}
        self.sent = defaultdict(list)    # spi -> frames forwarded (for replays)
        self.authentic = {}              # (spi, sqn) -> (frame, inner out) of valid packets
        self.ipid = rng.randrange(65536)

    # -- plumbing

    def _next_ipid(self):
        self.ipid = (self.ipid + 1) & 0xFFFF
        return self.ipid

    def _iv(self):
        return self.rng.randbytes(GCM_IV)

    def _push(self, frame):
        self.frames.append(frame)
        return frame

    def natt(self, tun, esp, src=None, sport=None, **kw):
        """ESP bytes wrapped as a NAT-T frame from the tunnel's NAT mapping."""
        return udp_frame(self.gw, src or tun.remote, sport or tun.remote_port, 4500, esp,
                         ttl=self.rng.randrange(30, 250), ipid=self._next_ipid(),
                         df=self.rng.random() < 0.3, **kw)

    def inner_src(self, tun):
        net = self.rng.choice(tun.nets)
        return str(net[self.rng.randrange(net.num_addresses)])

    def inner_dst(self, tun):
        return "10.10.%d.%d" % (self.rng.randrange(256), self.rng.randrange(1, 255))

    def _esp_verdict(self, tun, sqn, now):
        """Verdict of the SA stage for an authentic packet with sequence sqn:
        ESN inference (a wrong high half fails the ICV), then the window."""
        m = self.models[tun.in_spi]
        inferred = m.infer_stable(sqn & M32, now)
        if inferred is None:
            return None
        if inferred != sqn:
            return "auth_failed"
        return m.verdict(sqn)

    def esp_packet(self, tun, sqn, esp, post_verdict, desc, out_ip=None, **wrap):
        """Emit an authentic ESP packet for sequence sqn. post_verdict is what
        happens after the ICV verified (FORWARD or a trailer/inner/policy drop).
        Returns None (nothing emitted) if the outcome would be ambiguous."""
        now = len(self.frames)
        v = self._esp_verdict(tun, sqn, now)
        if v is None:
            return None
        if v == FORWARD:
            self.models[tun.in_spi].accept(sqn, now)   # the window moves after the ICV
            v = post_verdict
        f = Frame(self.natt(tun, esp, **wrap), v, tun, sqn, desc,
                  out_ip if v == FORWARD else None)
        f.rx_sqn = self.models[tun.in_spi].infer(sqn & M32)
        if v == FORWARD:
            self.sent[tun.in_spi].append(f)
        if out_ip is not None:
            self.authentic[(tun.in_spi, sqn)] = (f, out_ip)
        return self._push(f)

    def resend(self, tun, sqn, desc):
        """The exact bytes of the earlier authentic packet of tun with sequence
        sqn, sent again; the window model decides (replay, or forwarded again
        when anti-replay is off). None if no such packet or ambiguous."""
        prev = self.authentic.get((tun.in_spi, sqn))
        if prev is None:
            return None
        orig, out_ip = prev
        now = len(self.frames)
        v = self._esp_verdict(tun, sqn, now)
        if v is None:
            return None
        if v == FORWARD:
            self.models[tun.in_spi].accept(sqn, now)
        f = Frame(orig.data, v, tun, sqn, desc, out_ip if v == FORWARD else None)
        f.rx_sqn = self.models[tun.in_spi].infer(sqn & M32)
        return self._push(f)

    # -- valid traffic

    def valid(self, tun, sqn=None, length=None, proto=None, via="scapy", desc=None,
              options=False, allow_drop=False, **wrap):
        """An authentic packet: scapy's ESP (or the direct AESGCM construction).
        Unless allow_drop, only emitted if the receiver must forward it; with
        allow_drop (explicit sqn) the window model decides forward or replay."""
        take = sqn is None
        if take:
            sqn = tun.next_seq
        v = self._esp_verdict(tun, sqn, len(self.frames))
        if v is None or (v != FORWARD and not allow_drop):
            return None
        if take:
            tun.take_seq()
        length = pick_inner_len(self.rng) if length is None else length
        if via != "scapy":
            length = min(length, MAX_INNER - 28)   # room for the extra padding
        inner = inner_packet(self.rng, self.inner_src(tun), self.inner_dst(tun), length,
                             proto, options=options)
        raw = bytes(inner)
        if via == "scapy":
            esp = scapy_esp(tun, sqn, inner, self._iv())
        else:   # direct: 4-aligned but non-minimal padding, still 1,2,3,...
            pad = bytes(range(1, (-(len(raw) + 2)) % 4 + 1 + 4 * self.rng.randrange(1, 8)))
            esp = direct_esp(tun, sqn, raw, self._iv(), pad=pad)
        d = desc or ("valid %s inner %s %dB" % (via, inner.payload.name, length))
        return self.esp_packet(tun, sqn, esp, FORWARD, d, forwarded_ip(raw), **wrap)

    # -- hostile traffic: each returns the Frame, or None if not possible now

    def _fresh(self, tun):
        """A fresh sequence number whose SA-stage verdict would be FORWARD."""
        sqn = tun.next_seq
        if self._esp_verdict(tun, sqn, len(self.frames)) != FORWARD:
            return None
        return tun.take_seq()

    def _inner_raw(self, tun, length=None, src=None, ttl=None):
        length = self.rng.randrange(MIN_INNER, 400) if length is None else length
        return bytes(inner_packet(self.rng, src or self.inner_src(tun), self.inner_dst(tun),
                                  length, ttl=ttl))

    def _forged(self, tun, sqn, esp, desc, **wrap):
        """A packet that passes the window pre-check but fails the ICV."""
        return self._push(Frame(self.natt(tun, esp, **wrap), "auth_failed", tun, sqn, desc))

    def tampered_icv(self, tun):
        sqn = self._fresh(tun)
        if sqn is None:
            return None
        esp = bytearray(scapy_esp(tun, sqn, IP(self._inner_raw(tun)), self._iv()))
        esp[-1 - self.rng.randrange(GCM_ICV)] ^= 1 << self.rng.randrange(8)
        return self._forged(tun, sqn, bytes(esp), "tampered ICV")

    def tampered_ciphertext(self, tun):
        sqn = self._fresh(tun)
        if sqn is None:
            return None
        esp = bytearray(scapy_esp(tun, sqn, IP(self._inner_raw(tun)), self._iv()))
        i = self.rng.randrange(ESP_HDR + GCM_IV, len(esp) - GCM_ICV)
        esp[i] ^= 0x80
        return self._forged(tun, sqn, bytes(esp), "tampered ciphertext byte %d" % i)

    def tampered_seq(self, tun):
        """Sequence number in the header changed after encryption (it is AAD)."""
        sqn = self._fresh(tun)
        if sqn is None:
            return None
        other = tun.take_seq()   # the one written on the wire, also fresh
        esp = bytearray(scapy_esp(tun, sqn, IP(self._inner_raw(tun)), self._iv()))
        esp[4:8] = struct.pack("!I", other & M32)
        if self._esp_verdict(tun, other, len(self.frames)) != FORWARD:
            return None
        return self._forged(tun, other, bytes(esp), "seq rewritten (AAD mismatch)")

    def wrong_key(self, tun):
        """Encrypted with the tunnel's outbound key: ICV fails on the inbound SA."""
        sqn = self._fresh(tun)
        if sqn is None:
            return None
        esp = direct_esp(tun, sqn, self._inner_raw(tun), self._iv(), key=tun.out_key)
        return self._forged(tun, sqn, esp, "encrypted with the outbound key")

    def wrong_esn_hi(self, tun):
        """ESN: authentic for a high half the receiver will not infer."""
        if not tun.esn:
            return None
        sqn = self._fresh(tun)
        if sqn is None:
            return None
        bad = sqn + (7 << 32)
        esp = scapy_esp(tun, bad, IP(self._inner_raw(tun)), self._iv())
        return self._forged(tun, sqn, esp, "ESN high half +7 in the AAD")

    def replay_copy(self, tun):
        """The exact bytes of a packet forwarded earlier, re-sent."""
        cands = self.sent[tun.in_spi]
        if not cands:
            return None
        orig = self.rng.choice(cands[-20:])
        m = self.models[tun.in_spi]
        inf = m.infer_stable(orig.sqn & M32, len(self.frames))
        if inf != orig.sqn or m.verdict(orig.sqn) != "replay":
            return None   # ESN: would infer another high half (-> auth_failed)
        return self._push(Frame(orig.data, "replay", tun, orig.sqn,
                                "exact copy of an earlier packet"))

    def too_old(self, tun):
        """A never-sent, authentic packet left of the window."""
        m = self.models[tun.in_spi]
        if tun.esn or self.window == 0:
            return None
        fwd_top = max((f.sqn for f in self.sent[tun.in_spi]), default=0)
        lo_edge = fwd_top - self.window   # sqn <= this is left of the window
        if lo_edge < 1:
            return None
        sqn = self.rng.randrange(max(1, lo_edge - 200), lo_edge + 1)
        if sqn in m.seen or m.verdict(sqn) != "replay":
            return None
        esp = scapy_esp(tun, sqn, IP(self._inner_raw(tun)), self._iv())
        return self._push(Frame(self.natt(tun, esp), "replay", tun, sqn,
                                "authentic but left of the window (top %d)" % m.top))

    def unknown_spi(self):
        while True:
            spi = self.rng.randrange(256, 1 << 32)
            if spi not in self.by_spi:
                break
        fake = Tunnel("none", "198.51.100.25", 4500, "aes-gcm-128", False, spi,
                      self.rng.randbytes(20), 1, b"", ["0.0.0.0/0"], ["0.0.0.0/0"], 1)
        esp = scapy_esp(fake, self.rng.randrange(1, 100), IP(self._inner_raw(fake, src="10.1.1.1")),
                        self._iv())
        return self._push(Frame(self.natt(fake, esp, src="198.51.100.25",
                                          sport=self.rng.randrange(1024, 65536)),
                                "no_sa", None, None, "unknown SPI 0x%08x" % spi))

    # post-ICV drops (the window moves, the packet is dropped)

    def _post(self, tun, verdict, desc, payload=None, nh=4, pad=None, padlen=None,
              src=None, ttl=None):
        sqn = self._fresh(tun)
        if sqn is None:
            return None
        if payload is None:
            payload = self._inner_raw(tun, src=src, ttl=ttl)
        esp = direct_esp(tun, sqn, payload, self._iv(), nh=nh, pad=pad, padlen=padlen)
        return self.esp_packet(tun, sqn, esp, verdict, desc)

    def policy_violation(self, tun, other=None):
        """Inner source outside remote_ts: another tunnel's address, or an
        address next to our own selector."""
        if other is not None:
            src = self.inner_src(other)
        else:
            net = tun.nets[0]
            src = str(net.broadcast_address + 1) if net.prefixlen > 24 else "10.99.99.99"
        if tun.in_ts(src):
            return None
        return self._post(tun, "policy", "inner source %s outside remote_ts" % src, src=src)

    def ttl_expired(self, tun, ttl=1):
        return self._post(tun, "ttl_expired", "inner TTL %d" % ttl, ttl=ttl)

    def bad_pad_bytes(self, tun):
        raw = self._inner_raw(tun)
        n = (-(len(raw) + 2)) % 4 + 4
        pad = bytearray(range(1, n + 1))
        pad[self.rng.randrange(n)] ^= 0x40
        return self._post(tun, "bad_padding", "padding bytes not 1,2,3..", payload=raw,
                          pad=bytes(pad))

    def bad_pad_len(self, tun):
        raw = self._inner_raw(tun, length=self.rng.randrange(MIN_INNER, 100))
        pad = bytes(range(1, (-(len(raw) + 2)) % 4 + 1))
        return self._post(tun, "bad_padding", "pad length 250 > payload", payload=raw,
                          pad=pad, padlen=250)

    def wrong_next_header(self, tun, nh=17):
        return self._post(tun, "bad_inner", "next header %d (not 4)" % nh, nh=nh)

    def inner_not_ipv4(self, tun):
        raw = bytearray(self._inner_raw(tun))
        raw[0] = 0x65          # version 6 nibble under next header 4
        return self._post(tun, "bad_inner", "next header 4 but version nibble 6",
                          payload=bytes(raw))

    def inner_truncated(self, tun):
        raw = bytearray(self._inner_raw(tun, length=self.rng.randrange(60, 300)))
        raw[2:4] = struct.pack("!H", len(raw) + 40)   # claims more than was sent
        return self._post(tun, "bad_inner", "inner total length > decrypted payload",
                          payload=fix_ip_checksum(bytes(raw)))

    def inner_ipv6(self, tun):
        p = bytes(IPv6(src="2001:db8::7", dst="2001:db8:1::1", hlim=64) /
                  UDP(sport=1234, dport=53) / Raw(self.rng.randbytes(self.rng.randrange(0, 200))))
        return self._post(tun, "unsupported", "inner IPv6 (next header 41)", payload=p, nh=41)

    # outer-header faults around an otherwise authentic packet of tun

    def _authentic_frame(self, tun):
        sqn = self._fresh(tun)
        if sqn is None:
            return None, None
        esp = scapy_esp(tun, sqn, IP(self._inner_raw(tun)), self._iv())
        return sqn, bytearray(self.natt(tun, esp))

    def _outer(self, tun, verdict, desc, mutate):
        sqn, fr = self._authentic_frame(tun)
        if fr is None:
            return None
        fr = mutate(fr)
        # the SA never sees it: the window does not move (the seq stays unused)
        return self._push(Frame(bytes(fr), verdict, None, None, desc + " (%s)" % tun.name))

    def bad_ip_checksum(self, tun):
        def m(fr):
            fr[24] ^= 0x5A
            return fr
        return self._outer(tun, "malformed", "bad outer IPv4 header checksum", m)

    def udp_len_too_long(self, tun):
        def m(fr):
            ulen = struct.unpack("!H", fr[38:40])[0]
            fr[38:40] = struct.pack("!H", ulen + self.rng.randrange(1, 64))
            return fr
        return self._outer(tun, "malformed", "UDP length > IP payload", m)

    def ip_len_too_long(self, tun):
        def m(fr):
            tl = struct.unpack("!H", fr[16:18])[0]
            fr[16:18] = struct.pack("!H", tl + 100)
            fr[14:34] = fix_ip_checksum(bytes(fr[14:34]))
            return fr
        return self._outer(tun, "malformed", "IPv4 total length > frame", m)

    def ihl_too_small(self, tun):
        def m(fr):
            fr[14] = 0x44
            fr[14:34] = fix_ip_checksum(bytes(fr[14:34]))
            return fr
        return self._outer(tun, "malformed", "IPv4 IHL 4", m)

    def truncated_ip(self, tun):
        def m(fr):
            return fr[:14 + self.rng.randrange(1, 20)]
        return self._outer(tun, "malformed", "frame ends inside the IPv4 header", m)

    def truncated_esp(self, tun):
        """IPv4/UDP lengths consistent, but the ESP is shorter than
        SPI + seq + IV + ICV + 2 (34 bytes)."""
        sqn, fr = self._authentic_frame(tun)
        if fr is None:
            return None
        n = self.rng.randrange(9, 34)
        esp = bytes(fr[42:42 + n])
        f = udp_frame(self.gw, tun.remote, tun.remote_port, 4500, esp, ipid=self._next_ipid())
        return self._push(Frame(f, "malformed", None, None,
                                "ESP of %d bytes (%s)" % (n, tun.name)))

    def fragment_mf(self, tun):
        def m(fr):
            fr[20] |= 0x20      # MF
            fr[14:34] = fix_ip_checksum(bytes(fr[14:34]))
            return fr
        return self._outer(tun, "fragment", "outer IPv4 first fragment (MF)", m)

    def fragment_offset(self, tun):
        """A later fragment: offset 185*8, UDP-looking bytes in it."""
        sqn, fr = self._authentic_frame(tun)
        if fr is None:
            return None
        fr[20:22] = struct.pack("!H", 185)
        fr[14:34] = fix_ip_checksum(bytes(fr[14:34]))
        return self._push(Frame(bytes(fr), "fragment", None, None,
                                "outer IPv4 last fragment, offset 1480 (%s)" % tun.name))

    # classification of non-ESP traffic

    def keepalive(self, tun, pad_frame=False):
        f = udp_frame(self.gw, tun.remote, tun.remote_port, 4500, b"\xff", ipid=self._next_ipid())
        if pad_frame:
            f += b"\0" * (60 - len(f))   # Ethernet minimum, as a NIC delivers it
        return self._push(Frame(f, "keepalive", None, None, "NAT keepalive 0xFF%s (%s)"
                                % (" padded to 60B" if pad_frame else "", tun.name)))

    def ike_marker(self, tun):
        p = b"\0\0\0\0" + ike_header(self.rng) + self.rng.randbytes(self.rng.randrange(0, 300))
        f = udp_frame(self.gw, tun.remote, tun.remote_port, 4500, p, ipid=self._next_ipid())
        return self._push(Frame(f, "ike", None, None, "non-ESP marker + IKE on 4500 (%s)" % tun.name))

    def ike_500(self, tun):
        p = ike_header(self.rng) + self.rng.randbytes(self.rng.randrange(0, 300))
        f = udp_frame(self.gw, tun.remote, 500, 500, p, ipid=self._next_ipid())
        return self._push(Frame(f, "ike", None, None, "IKE on UDP/500 (%s)" % tun.remote))

    def udp_other_port(self, tun):
        port = self.rng.choice((53, 123, 4501, 1701, 51820))
        f = udp_frame(self.gw, tun.remote, tun.remote_port, port, self.rng.randbytes(40),
                      ipid=self._next_ipid())
        return self._push(Frame(f, "not_esp", None, None, "UDP to port %d" % port))

    def tcp_4500(self, tun):
        f = udp_frame(self.gw, tun.remote, self.rng.randrange(1024, 65536), 4500, b"",
                      proto="tcp", ipid=self._next_ipid())
        return self._push(Frame(f, "not_esp", None, None, "TCP SYN to port 4500"))

    def not_our_address(self, tun):
        sqn, fr = self._authentic_frame(tun)
        if fr is None:
            return None
        fr[30:34] = bytes([203, 0, 113, self.rng.randrange(2, 255)])
        fr[14:34] = fix_ip_checksum(bytes(fr[14:34]))
        return self._push(Frame(bytes(fr), "not_esp", None, None,
                                "ESP-in-UDP for another address (%s)" % tun.name))

    def garbage_not_ip(self):
        et = self.rng.choice((0x88B5, 0x88B6, 0x9000))   # local experimental, loopback
        f = (mac_bytes(self.gw.outside_mac) + mac_bytes(self.gw.outside_next_hop) +
             struct.pack("!H", et) + self.rng.randbytes(self.rng.randrange(46, 1400)))
        return self._push(Frame(f, "not_esp", None, None, "random bytes, ethertype 0x%04x" % et))

    def garbage_ip(self):
        """Random bytes under ethertype IPv4 whose first byte says version 4,
        IHL < 5: malformed. Protocol, total length and destination are made
        plausible (UDP, the frame's length, our address) so that a parser that
        looked at them before the IHL could not call it not_esp."""
        body = bytearray(self.rng.randbytes(self.rng.randrange(28, 1400)))
        body[0] = 0x40 | self.rng.randrange(0, 5)
        body[2:4] = struct.pack("!H", len(body))
        body[9] = 17
        body[16:20] = ipaddress.ip_address(self.gw.outside_addr).packed
        f = (mac_bytes(self.gw.outside_mac) + mac_bytes(self.gw.outside_next_hop) +
             b"\x08\x00" + bytes(body))
        return self._push(Frame(f, "malformed", None, None,
                                "random bytes, ethertype IPv4, IHL %d" % (body[0] & 0xF)))

    def runt(self):
        f = self.rng.randbytes(self.rng.randrange(1, 14))
        return self._push(Frame(f, "malformed", None, None, "%d-byte frame" % len(f)))

    # -- results

    def expected_out(self):
        return [f for f in self.frames if f.verdict == FORWARD]

    def expected_drops(self):
        c = Counter(f.verdict for f in self.frames if f.verdict != FORWARD)
        return {r: c.get(r, 0) for r in list(DROP_REASONS) + sorted(set(c) - set(DROP_REASONS))}

    def per_tunnel(self):
        """name -> Counter(in_packets, in_bytes, and per-reason counts)."""
        res = {t.name: Counter() for t in self.tunnels}
        for f in self.frames:
            if f.tunnel is None or f.tunnel.name not in res:
                continue
            c = res[f.tunnel.name]
            if f.verdict == FORWARD:
                c["in_packets"] += 1
                c["in_bytes"] += f.inner_len
            else:
                c[f.verdict] += 1
        return res

    def write(self, path):
        write_pcap(path, [f.data for f in self.frames])


# ---------------------------------------------------------------- self-check

def parse_natt(frame):
    """(ip header bytes, udp header bytes, udp payload) of an Ether/IPv4/UDP frame,
    using the IPv4 total length (Ethernet trailers ignored)."""
    ihl = (frame[14] & 0xF) * 4
    tl = struct.unpack("!H", frame[16:18])[0]
    ip = frame[14:14 + tl]
    return ip[:ihl], ip[ihl:ihl + 8], ip[ihl + 8:]


def gcm_open(tun, esp, sqn):
    """Authenticate and decrypt ESP bytes with AESGCM (independent of scapy);
    returns the plaintext (payload || pad || padlen || nh) or raises InvalidTag."""
    key, salt = tun.in_key[:-4], tun.in_key[-4:]
    aad = esp[:4] + (struct.pack("!I", sqn >> 32) if tun.esn else b"") + esp[4:8]
    return AESGCM(key).decrypt(salt + esp[8:16], esp[16:], aad)


def verify_traffic(tr):
    """Check a Traffic against independent decoders: every forwarded frame must
    decrypt with scapy's ESP to the expected inner packet (so the direct AESGCM
    construction is cross-checked by scapy too); forged frames must fail the ICV;
    post-ICV drops must authenticate and show the fault they are tagged with.
    Returns a list of error strings (empty = good)."""
    from cryptography.exceptions import InvalidTag
    from scapy.layers.ipsec import IPSecIntegrityError
    errs = []
    for i, f in enumerate(tr.frames):
        t = f.tunnel
        where = "frame %d (%s)" % (i, f.label())
        try:
            if f.verdict == FORWARD or (t is not None and f.verdict not in ("auth_failed",)):
                iph, udph, esp = parse_natt(f.data)
                if struct.unpack("!H", udph[4:6])[0] != 8 + len(esp):
                    errs.append(where + ": UDP length wrong")
                if struct.unpack("!H", udph[2:4])[0] != 4500 or udph[6:8] != b"\0\0":
                    errs.append(where + ": not UDP/4500 with checksum 0")
                if ip_checksum(iph) != 0:
                    errs.append(where + ": outer IPv4 checksum wrong")
                if struct.unpack("!I", esp[4:8])[0] != f.sqn & M32:
                    errs.append(where + ": seq on the wire differs")
                plain = gcm_open(t, esp, f.sqn)
                padlen, nh = plain[-2], plain[-1]
            if f.verdict == FORWARD:
                inner = scapy_decrypt(t, esp, f.sqn >> 32)
                if forwarded_ip(inner) != f.out_ip:
                    errs.append(where + ": scapy decrypts to something else")
                if nh != 4 or plain[-2 - padlen:-2] != bytes(range(1, padlen + 1)):
                    errs.append(where + ": trailer not RFC 4303 (nh %d)" % nh)
                if inner[8] < 2 or not t.in_ts(IP(inner).src):
                    errs.append(where + ": inner TTL/source not forwardable")
            elif f.verdict == "auth_failed" and t is not None:
                iph, udph, esp = parse_natt(f.data)
                try:
                    gcm_open(t, esp, f.rx_sqn)
                    errs.append(where + ": forged packet authenticates")
                except InvalidTag:
                    pass
                try:
                    scapy_decrypt(t, esp, f.rx_sqn >> 32)
                    errs.append(where + ": scapy accepts the forged packet")
                except IPSecIntegrityError:
                    pass
            elif f.verdict == "replay" and t is not None:
                if scapy_decrypt(t, esp, f.sqn >> 32) is None:
                    errs.append(where + ": replayed packet does not decrypt")
            elif f.verdict == "bad_padding":
                body = plain[:-2]
                ok = padlen > len(body) or body[len(body) - padlen:] != bytes(range(1, padlen + 1))
                if not ok or nh != 4:
                    errs.append(where + ": padding is fine")
            elif f.verdict in ("bad_inner", "unsupported", "policy", "ttl_expired"):
                inner = plain[:len(plain) - 2 - padlen]
                if plain[-2 - padlen:-2] != bytes(range(1, padlen + 1)):
                    errs.append(where + ": padding wrong")
                if f.verdict == "unsupported" and (nh != 41 or inner[0] >> 4 != 6):
                    errs.append(where + ": not inner IPv6")
                if f.verdict == "bad_inner" and nh == 4 and inner[0] >> 4 == 4 and \
                        struct.unpack("!H", inner[2:4])[0] <= len(inner):
                    errs.append(where + ": inner looks valid")
                if f.verdict == "policy" and t.in_ts(IP(inner).src):
                    errs.append(where + ": inner source is inside remote_ts")
                if f.verdict == "ttl_expired" and inner[8] > 1:
                    errs.append(where + ": TTL %d" % inner[8])
        except Exception as e:   # a malformed self-built packet is a test bug
            errs.append(where + ": %s: %s" % (type(e).__name__, e))
    return errs


# ================================================================ outbound
#
# Outbound = clear IPv4 in on the inside port, ESP-in-UDP out on the outside
# port. Everything below is a reference model of what a correct gateway must
# emit, and decoders that check what it did emit with implementations that are
# not natt-gw's: scapy's ESP (SecurityAssociation), python3-cryptography's
# AESGCM for the raw plaintext (padding, next header), and tshark (in
# natt_harness). Nothing here reads natt-gw's output format except the pcap.

# Outer IPv4 20 + UDP 8 + ESP 8 + IV 8 + ICV 16; the ESP trailer (pad + 2) is
# on top: outer = 60 + roundup4(inner + 2).
OUT_OVERHEAD = 20 + 8 + ESP_HDR + GCM_IV + GCM_ICV
ICMP_MAX_DATAGRAM = 576          # RFC 1812 4.3.2.3
ICMP_QUOTE_MAX = ICMP_MAX_DATAGRAM - 20 - 8


def usable_mtu(mtu):
    """Largest inner IPv4 packet that still fits the outside MTU once
    encapsulated: 60 + roundup4(L + 2) <= mtu."""
    return (mtu - OUT_OVERHEAD) // 4 * 4 - 2


def outer_ip_len(inner_len):
    """Outer IPv4 total length for an inner packet, minimal padding."""
    return OUT_OVERHEAD + (inner_len + 2 + 3) // 4 * 4


def default_mss_clamp(mtu):
    """MSS clamp when dataplane.mss_clamp is absent: usable inner MTU - 40."""
    return usable_mtu(mtu) - 40


def ip4(addr):
    return ipaddress.ip_address(addr).packed


def lpm(tunnels, addr):
    """Reference route lookup: the tunnel whose remote_ts holds the longest
    prefix containing addr (None: no route)."""
    a = ipaddress.ip_address(addr)
    best, blen = None, -1
    for t in tunnels:
        for n in t.nets:
            if a in n and n.prefixlen > blen:
                best, blen = t, n.prefixlen
    return best


def ip_hl(ip):
    return (ip[0] & 0xF) * 4


def ip_df(ip):
    return bool(ip[6] & 0x40)


def ip_mf(ip):
    return bool(ip[6] & 0x20)


def ip_frag_off(ip):
    return (struct.unpack("!H", ip[6:8])[0] & 0x1FFF) * 8


def set_ip_fields(ip, ttl=None, df=None, tos=None, ipid=None, mf=None, off=None):
    """Copy of IPv4 bytes with header fields changed and the checksum redone."""
    b = bytearray(ip)
    if ttl is not None:
        b[8] = ttl
    if tos is not None:
        b[1] = tos
    if ipid is not None:
        b[4:6] = struct.pack("!H", ipid)
    fo = struct.unpack("!H", b[6:8])[0]
    if df is not None:
        fo = (fo | 0x4000) if df else (fo & ~0x4000)
    if mf is not None:
        fo = (fo | 0x2000) if mf else (fo & ~0x2000)
    if off is not None:
        fo = (fo & 0xE000) | (off // 8)
    b[6:8] = struct.pack("!H", fo)
    return fix_ip_checksum(bytes(b))


def l4_checksum(ip):
    """RFC 1071 TCP/UDP checksum of an unfragmented IPv4 packet computed over
    the pseudo header (own code, not scapy); 0 when the field is right."""
    hl = ip_hl(ip)
    tl = struct.unpack("!H", ip[2:4])[0]
    seg = ip[hl:tl]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, ip[9], len(seg))
    return ip_checksum(pseudo + seg)


def tcp_mss_at(ip):
    """(byte offset of the MSS value inside ip, MSS) of a TCP SYN / SYN-ACK
    with an MSS option, else None. Option walk per RFC 9293 3.1."""
    if len(ip) < 20 or ip[9] != 6 or ip_mf(ip) or ip_frag_off(ip):
        return None
    hl = ip_hl(ip)
    tl = struct.unpack("!H", ip[2:4])[0]
    if tl < hl + 20:
        return None
    t = hl
    if not ip[t + 13] & 0x02:          # SYN
        return None
    doff = (ip[t + 12] >> 4) * 4
    i, end = t + 20, min(t + doff, tl)
    while i < end:
        kind = ip[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or ip[i + 1] < 2:
            break
        if kind == 2 and ip[i + 1] == 4 and i + 4 <= end:
            return i + 2, struct.unpack("!H", ip[i + 2:i + 4])[0]
        i += ip[i + 1]
    return None


def clamp_mss(ip, clamp):
    """Reference MSS clamping: SYN/SYN-ACK with MSS > clamp gets MSS = clamp
    and the TCP checksum recomputed from scratch (clamp 0 = off)."""
    at = tcp_mss_at(ip)
    if not clamp or at is None or at[1] <= clamp:
        return ip
    b = bytearray(ip)
    b[at[0]:at[0] + 2] = struct.pack("!H", clamp)
    t = ip_hl(ip)
    b[t + 16:t + 18] = b"\0\0"
    b[t + 16:t + 18] = struct.pack("!H", l4_checksum(bytes(b)))
    return bytes(b)


def outbound_expected(ip, clamp):
    """The inner packet a correct gateway encrypts for clear packet ip:
    MSS clamped, TTL - 1, header checksum redone."""
    return forwarded_ip(clamp_mss(ip, clamp))


def inside_frame(gw, ip, pad=b"", src_mac=None, ethertype=0x0800):
    """Ethernet frame as it arrives on the inside port (pad: bytes after the
    IP packet, e.g. Ethernet minimum-size padding)."""
    return (mac_bytes(gw.inside_mac) + mac_bytes(src_mac or gw.inside_next_hop) +
            struct.pack("!H", ethertype) + ip + pad)


def syn_packet(src, dst, mss=None, synack=False, opts=None, ttl=64, df=True, tos=0,
               sport=40000, dport=443, ipid=1, payload=b""):
    """A TCP SYN (or SYN-ACK) with an MSS option somewhere among others."""
    if opts is None:
        opts = [("MSS", mss)] if mss is not None else []
    p = IP(src=src, dst=dst, ttl=ttl, id=ipid, tos=tos, flags="DF" if df else 0) / \
        TCP(sport=sport, dport=dport, flags="SA" if synack else "S", seq=12345,
            ack=777 if synack else 0, window=64240, options=opts) / Raw(payload)
    return bytes(p)


class OutFrame:
    """One frame fed to the inside port and what a correct gateway does with it:
    verdict FORWARD (expect = the inner packet it must encrypt; frag = it must
    be fragmented first, expect is then the whole packet the fragments
    reassemble to) or a drop reason (too_big also means an ICMP back)."""
    __slots__ = ("data", "verdict", "tunnel", "desc", "ip", "expect", "frag", "queue",
                 "index", "no_icmp")

    def __init__(self, data, verdict, tunnel, desc, ip=None, expect=None, frag=False,
                 queue=0):
        self.data = data
        self.verdict = verdict
        self.tunnel = tunnel
        self.desc = desc
        self.ip = ip
        self.expect = expect
        self.frag = frag
        self.queue = queue
        self.index = None
        # too_big without an ICMP back (RFC 1812 4.3.2.7: not about an ICMP error)
        self.no_icmp = False

    def label(self):
        s = "#%s %s" % (self.index, self.desc)
        if self.ip is not None and len(self.ip) >= 20:
            s += " %s>%s len %d" % (ipaddress.ip_address(self.ip[12:16]),
                                     ipaddress.ip_address(self.ip[16:20]), len(self.ip))
        if self.tunnel is not None:
            s += " [%s out spi 0x%08x]" % (self.tunnel.name, self.tunnel.out_spi)
        if self.queue:
            s += " (rx queue %d)" % self.queue
        return s


class OutTraffic:
    """Inside-port input being built, with the reference verdict of each frame:
    route (longest prefix over all remote_ts), then local_ts policy, then TTL,
    then the MTU (too_big with DF, fragments without). Each hostile frame is
    built to break exactly one of those rules."""

    def __init__(self, gw, tunnels, rng, mss_clamp=None):
        self.gw = gw
        self.tunnels = tunnels
        self.by_spi = {t.out_spi: t for t in tunnels}
        self.rng = rng
        self.L = usable_mtu(gw.mtu)
        self.clamp = default_mss_clamp(gw.mtu) if mss_clamp is None else mss_clamp
        self.frames = []
        self.ipid = rng.randrange(65536)

    def _next_ipid(self):
        self.ipid = (self.ipid + 1) & 0xFFFF
        return self.ipid

    def decide(self, ip):
        """(verdict, tunnel, frag) of the reference model for IPv4 bytes."""
        tun = lpm(self.tunnels, ipaddress.ip_address(ip[16:20]))
        if tun is None:
            return "no_route", None, False
        if not tun.in_local_ts(ipaddress.ip_address(ip[12:16])):
            return "policy", tun, False
        if ip[8] <= 1:
            return "ttl_expired", tun, False
        if len(ip) > self.L:
            return ("too_big", tun, False) if ip_df(ip) else (FORWARD, tun, True)
        return FORWARD, tun, False

    def _pad(self, f, pad):
        if pad is None:
            pad = b""
            if len(f) < 60:     # what a NIC delivers: padded to the minimum
                n = 60 - len(f)
                pad = b"\0" * n if self.rng.random() < 0.5 else self.rng.randbytes(n)
        return f + pad

    def add(self, ip, desc, queue=0, pad=None, expect_verdict=None):
        """Append a frame carrying IPv4 bytes ip; the model decides its fate.
        expect_verdict: what the caller built it for (a test bug if the model
        disagrees)."""
        v, tun, frag = self.decide(ip)
        if expect_verdict is not None and v != expect_verdict:
            raise RuntimeError("test bug: %s built for %s, model says %s"
                               % (desc, expect_verdict, v))
        exp = outbound_expected(ip, self.clamp) if v == FORWARD else None
        f = OutFrame(self._pad(inside_frame(self.gw, ip), pad), v, tun, desc, ip, exp,
                     frag, queue)
        f.index = len(self.frames)
        self.frames.append(f)
        return f

    def add_raw(self, data, verdict, desc, queue=0):
        """A frame whose verdict is not the route model's (not IPv4, broken)."""
        f = OutFrame(data, verdict, None, desc, queue=queue)
        f.index = len(self.frames)
        self.frames.append(f)
        return f

    # -- addresses

    def dst_for(self, tun):
        """A destination whose longest-prefix match is tun (None if every
        address of tun's selectors belongs to a more specific tunnel)."""
        for _ in range(200):
            net = self.rng.choice(tun.nets)
            a = net[self.rng.randrange(net.num_addresses)]
            if lpm(self.tunnels, a) is tun:
                return str(a)
        return None

    def src_for(self, tun):
        net = self.rng.choice(tun.lnets)
        if net.prefixlen == 0:
            return "10.10.%d.%d" % (self.rng.randrange(256), self.rng.randrange(1, 255))
        return str(net[self.rng.randrange(net.num_addresses)])

    def src_not_for(self, tun):
        cands = [self.src_for(t) for t in self.tunnels if t is not tun]
        cands += ["172.31.%d.%d" % (self.rng.randrange(256), self.rng.randrange(1, 255)),
                  "10.10.%d.%d" % (self.rng.randrange(256), self.rng.randrange(1, 255))]
        self.rng.shuffle(cands)
        for c in cands:
            if not tun.in_local_ts(c):
                return c
        return None

    def no_route_dst(self):
        for _ in range(1000):
            a = ipaddress.ip_address(self.rng.choice((
                "172.16.%d.%d" % (self.rng.randrange(256), self.rng.randrange(256)),
                "192.168.%d.%d" % (self.rng.randrange(256), self.rng.randrange(256)),
                "100.64.%d.%d" % (self.rng.randrange(256), self.rng.randrange(256)),
                "10.%d.%d.%d" % (self.rng.randrange(256), self.rng.randrange(256),
                                 self.rng.randrange(256)))))
            if lpm(self.tunnels, a) is None:
                return str(a)
        raise RuntimeError("test bug: every address is routed")

    # -- packets

    def packet(self, src, dst, length, proto=None, ttl=None, df=None, tos=None,
               options=False):
        raw = bytes(inner_packet(self.rng, src, dst, length, proto, ttl=ttl, options=options))
        return set_ip_fields(raw, df=df, tos=tos, ipid=self._next_ipid())

    def valid(self, tun, length=None, proto=None, ttl=None, df=None, tos=None,
              options=False, desc=None, queue=0, pad=None):
        dst = self.dst_for(tun)
        if dst is None:
            return None
        if length is None:
            length = self.rng.randrange(MIN_INNER + (4 if options else 0), self.L + 1)
        ip = self.packet(self.src_for(tun), dst, length, proto, ttl, df, tos, options)
        d = desc or "valid %s %dB%s" % (IP(ip).payload.name, length,
                                         " DF" if ip_df(ip) else "")
        return self.add(ip, d, queue, pad, expect_verdict=FORWARD)

    def expected_drops(self):
        c = Counter(f.verdict for f in self.frames if f.verdict != FORWARD)
        return dict(c)

    def forwarded(self, tun=None):
        return [f for f in self.frames if f.verdict == FORWARD and
                (tun is None or f.tunnel is tun)]

    def too_big(self):
        return [f for f in self.frames if f.verdict == "too_big"]

    def per_tunnel(self):
        """name -> Counter(out_packets, out_bytes) over unfragmented forwards
        (out_bytes: inner IPv4 bytes as received)."""
        res = {t.name: Counter() for t in self.tunnels}
        for f in self.forwarded():
            if not f.frag:
                res[f.tunnel.name]["out_packets"] += 1
                res[f.tunnel.name]["out_bytes"] += len(f.ip)
        return res

    def queue_frames(self, n_queues):
        return [[f.data for f in self.frames if f.queue == q] for q in range(n_queues)]


# ---------------------------------------------------------------- outbound decoding

# Check categories of decode_outbound, in report order.
OUT_CHECKS = (
    ("ethernet", "Ethernet dst = outside next_hop_mac, type 0x0800, no trailer"),
    ("outer_ipv4", "outer IPv4: version 4, IHL 5, TTL 64, proto 17, valid checksum, "
                   "not a fragment, src = outside address, length = frame"),
    ("outer_dest", "outer dst = tunnel remote, UDP sport = local_port, dport = remote_port, "
                   "UDP length, UDP checksum 0"),
    ("spi", "SPI is a configured outbound SPI"),
    ("scapy", "scapy's ESP decrypts (ICV verified, tunnel mode, next header 4)"),
    ("esn", "ICV fails with the other ESN setting's AAD (the tunnel's ESN setting is used)"),
    ("iv", "IV = 64-bit sequence number, big-endian"),
    ("trailer", "AESGCM plaintext: padding 1,2,3.. minimal to 4 bytes, next header 4, "
                "inner = scapy's"),
    ("outer_len", "outer length = 60 + roundup4(inner + 2)"),
    ("tos_df", "outer TOS = inner TOS, outer DF per dataplane.df"),
)


class OutRec:
    """One ESP-in-UDP frame the gateway sent on the outside port, decoded."""
    __slots__ = ("index", "queue", "frame", "err", "tunnel", "spi", "seq", "seq64", "iv",
                 "esp", "outer", "plain", "inner", "ipid", "df", "tos")

    def __init__(self, index, queue, frame):
        self.index = index
        self.queue = queue
        self.frame = frame
        self.err = {}
        self.tunnel = self.spi = self.seq = self.seq64 = self.iv = None
        self.esp = self.outer = self.plain = self.inner = None
        self.ipid = self.df = self.tos = None

    def where(self):
        s = "output frame %d" % self.index
        if self.queue:
            s += " (tx queue %d)" % self.queue
        if self.tunnel is not None:
            s += " [%s seq %s]" % (self.tunnel.name, self.seq)
        elif self.spi is not None:
            s += " [spi 0x%08x]" % self.spi
        return s

    def fail(self, cat, msg):
        self.err.setdefault(cat, msg)


UNDISSECTABLE = object()   # _scapy_open: ICV verified, plaintext not a packet


def _scapy_open(tun, rec, esn_en, hi):
    """scapy decrypt of the output frame; the ESP layer comes from scapy's own
    dissection of Ether/IPv4/UDP(4500) when a port is 4500."""
    from scapy.layers.ipsec import IPSecIntegrityError
    sa = tun.out_sa()
    sa.esn_en = esn_en
    sa.esn = hi
    pkt = Ether(rec.frame)
    if ESP in pkt and bytes(pkt[ESP]) == rec.esp:
        ip = pkt[IP]
    else:   # neither port is 4500: scapy would not bind UDP -> ESP itself
        ip = IP(src=ipaddress.ip_address(rec.outer[12:16]).compressed,
                dst=ipaddress.ip_address(rec.outer[16:20]).compressed, proto=50) / ESP(rec.esp)
        ip = IP(bytes(ip))
    try:
        return bytes(sa.decrypt(ip, esn_en=esn_en, esn=hi))
    except IPSecIntegrityError:
        return None
    except (struct.error, ValueError, IndexError):
        # authenticated, but scapy cannot dissect what it decrypted (the
        # checker self-test corrupts plaintexts on purpose)
        return UNDISSECTABLE


def gcm_open_out(tun, esp, seq64, esn=None):
    """AESGCM plaintext (payload || pad || padlen || nh) of outbound ESP, or
    None if the ICV fails."""
    from cryptography.exceptions import InvalidTag
    esn = tun.esn if esn is None else esn
    key, salt = tun.out_key[:-4], tun.out_key[-4:]
    aad = esp[:4] + (struct.pack("!I", seq64 >> 32) if esn else b"") + esp[4:8]
    try:
        return AESGCM(key).decrypt(salt + esp[8:16], esp[16:], aad)
    except InvalidTag:
        return None


def decode_outbound(gw, tunnels, frames, df_mode="copy", queue=0, esn_hi=0, first=0,
                    esn_cross=True):
    """Decode and check every frame sent on the outside port. Returns a list of
    OutRec; rec.err maps an OUT_CHECKS category to the first problem found."""
    by_spi = {t.out_spi: t for t in tunnels}
    recs = []
    for k, fr in enumerate(frames):
        r = OutRec(first + k, queue, fr)
        recs.append(r)
        if len(fr) < 14 + 20 + 8 + 8:
            r.fail("ethernet", "%d-byte frame" % len(fr))
            continue
        if fr[0:6] != mac_bytes(gw.outside_next_hop) or fr[12:14] != b"\x08\x00":
            r.fail("ethernet", "dst %s type %s" % (fr[0:6].hex(":"), fr[12:14].hex()))
        ip = fr[14:]
        tl = struct.unpack("!H", ip[2:4])[0]
        if tl != len(ip):
            r.fail("ethernet" if tl < len(ip) else "outer_ipv4",
                   "outer total length %d, frame carries %d IPv4 bytes" % (tl, len(ip)))
        if ip[0] != 0x45:
            r.fail("outer_ipv4", "version/IHL byte 0x%02x" % ip[0])
            continue
        r.outer = ip = ip[:tl]
        r.ipid = struct.unpack("!H", ip[4:6])[0]
        r.df = ip_df(ip)
        r.tos = ip[1]
        if ip[8] != 64:
            r.fail("outer_ipv4", "TTL %d" % ip[8])
        if ip[9] != 17:
            r.fail("outer_ipv4", "protocol %d" % ip[9])
            continue
        if ip_checksum(ip[:20]) != 0:
            r.fail("outer_ipv4", "header checksum 0x%04x wrong" % struct.unpack("!H", ip[10:12]))
        if ip_mf(ip) or ip_frag_off(ip) or ip[6] & 0x80:
            r.fail("outer_ipv4", "flags/offset 0x%04x" % struct.unpack("!H", ip[6:8]))
        if ip[12:16] != ip4(gw.outside_addr):
            r.fail("outer_ipv4", "source %s" % ipaddress.ip_address(ip[12:16]))
        udp, esp = ip[20:28], ip[28:]
        r.esp = esp
        sport, dport, ulen, ucs = struct.unpack("!HHHH", udp)
        if ulen != len(ip) - 20:
            r.fail("outer_dest", "UDP length %d, IP payload %d" % (ulen, len(ip) - 20))
        if ucs != 0:
            r.fail("outer_dest", "UDP checksum 0x%04x (RFC 3948: 0)" % ucs)
        if len(esp) < ESP_HDR + GCM_IV + GCM_ICV + 2:
            r.fail("spi", "ESP of %d bytes" % len(esp))
            continue
        r.spi, r.seq = struct.unpack("!II", esp[:8])
        r.iv = esp[8:16]
        tun = by_spi.get(r.spi)
        if tun is None:
            r.fail("spi", "SPI 0x%08x is no tunnel's outbound SPI" % r.spi)
            continue
        r.tunnel = tun
        if ip[16:20] != ip4(tun.remote) or dport != tun.remote_port or \
                sport != tun.out_sport():
            r.fail("outer_dest", "to %s:%d from port %d, tunnel %s wants %s:%d from %d"
                   % (ipaddress.ip_address(ip[16:20]), dport, sport, tun.name, tun.remote,
                      tun.remote_port, tun.out_sport()))
        r.seq64 = (esn_hi << 32) | r.seq if tun.esn else r.seq
        if r.iv != struct.pack("!Q", r.seq64):
            r.fail("iv", "IV %s, sequence number %d" % (r.iv.hex(), r.seq64))
        inner = _scapy_open(tun, r, tun.esn, esn_hi)
        if inner is None:
            r.fail("scapy", "scapy: ICV does not verify (%s, ESN %s)"
                   % (tun.algorithm, tun.esn))
            continue
        if inner is UNDISSECTABLE:
            r.fail("scapy", "scapy: ICV verifies, but the plaintext does not dissect")
            inner = b""     # the AESGCM checks below say what is wrong with it
        r.inner = inner
        if esn_cross and _scapy_open(tun, r, not tun.esn, esn_hi) is not None:
            r.fail("esn", "also authenticates with ESN %s" % (not tun.esn))
        plain = gcm_open_out(tun, esp, r.seq64)
        r.plain = plain
        if plain is None:
            r.fail("trailer", "AESGCM: ICV does not verify")
            continue
        padlen, nh = plain[-2], plain[-1]
        body = plain[:len(plain) - 2 - padlen] if padlen <= len(plain) - 2 else b""
        want_pad = (-(len(inner) + 2)) % 4
        if nh != 4:
            r.fail("trailer", "next header %d" % nh)
        elif plain[len(plain) - 2 - padlen:-2] != bytes(range(1, padlen + 1)):
            r.fail("trailer", "padding %s" % plain[len(plain) - 2 - padlen:-2].hex())
        elif padlen != want_pad:
            r.fail("trailer", "pad length %d for a %d-byte inner packet (minimal %d)"
                   % (padlen, len(inner), want_pad))
        elif body != inner:
            r.fail("trailer", "AESGCM payload differs from scapy's inner packet")
        if tl != outer_ip_len(len(inner)):
            r.fail("outer_len", "outer %d bytes for a %d-byte inner packet (want %d)"
                   % (tl, len(inner), outer_ip_len(len(inner))))
        if len(inner) >= 20:
            if r.tos != inner[1]:
                r.fail("tos_df", "outer TOS 0x%02x, inner 0x%02x" % (r.tos, inner[1]))
            want_df = {"copy": ip_df(inner), "set": True, "clear": False}[df_mode]
            if r.df != want_df:
                r.fail("tos_df", "outer DF %d, inner DF %d, df = %s"
                       % (r.df, ip_df(inner), df_mode))
    return recs


def check_fragments(frags, whole, L):
    """Errors (list of strings) of inner fragments that must reassemble to
    whole (the expected unfragmented inner packet, TTL already - 1): each
    <= L bytes, non-last payloads multiples of 8, contiguous, headers copied,
    checksums valid, and scapy's defragment() gives whole back byte for byte.
    If whole is itself a fragment (offset o, MF m), the pieces must cover it:
    offsets from o on, the last one with MF m (RFC 791)."""
    from scapy.layers.inet import defragment
    errs = []
    base, last_mf = ip_frag_off(whole), ip_mf(whole)
    if len(frags) < 2:
        errs.append("%d fragment(s) for a %d-byte packet (> L = %d)" % (len(frags), len(whole), L))
    hl = ip_hl(whole)
    payload = whole[hl:]
    got = b""
    for i, f in enumerate(frags):
        w = "fragment %d/%d" % (i + 1, len(frags))
        if len(f) < 20 or f[0] >> 4 != 4:
            errs.append(w + ": not IPv4")
            continue
        fhl, ftl = ip_hl(f), struct.unpack("!H", f[2:4])[0]
        if ftl != len(f):
            errs.append(w + ": total length %d, %d bytes" % (ftl, len(f)))
        if len(f) > L:
            errs.append(w + ": %d bytes > L = %d" % (len(f), L))
        if ip_checksum(f[:fhl]) != 0:
            errs.append(w + ": header checksum wrong")
        last = i == len(frags) - 1
        if ip_mf(f) != (last_mf if last else True):
            errs.append(w + ": MF %d" % ip_mf(f))
        if ip_df(f):
            errs.append(w + ": DF set")
        if not last and (len(f) - fhl) % 8:
            errs.append(w + ": payload %d bytes, not a multiple of 8" % (len(f) - fhl))
        if ip_frag_off(f) != base + len(got):
            errs.append(w + ": offset %d, expected %d" % (ip_frag_off(f), base + len(got)))
        for lo, hi, name in ((1, 2, "TOS"), (4, 6, "id"), (8, 9, "TTL"), (9, 10, "protocol"),
                             (12, 20, "addresses")):
            if f[lo:hi] != whole[lo:hi]:
                errs.append(w + ": %s %s, expected %s" % (name, f[lo:hi].hex(), whole[lo:hi].hex()))
        if i == 0 and f[20:fhl] != whole[20:hl]:
            errs.append(w + ": options not copied into the first fragment")
        got += f[fhl:]
    if got != payload:
        errs.append("reassembled payload differs (%d bytes, expected %d)" % (len(got), len(payload)))
    if base or last_mf:
        return errs
    try:
        d = defragment([IP(f) for f in frags])
        if len(d) != 1 or bytes(d[0]) != whole:
            errs.append("scapy defragment() gives %d packet(s), %s"
                        % (len(d), "not the original" if d else "none"))
    except Exception as e:
        errs.append("scapy defragment() failed: %s" % e)
    return errs


def check_icmp_frag_needed(gw, frame, orig, L):
    """Errors of an ICMP fragmentation-needed frame the gateway sent back on
    the inside port for the too-big packet orig (IPv4 bytes as received)."""
    errs = []
    if frame[0:6] != mac_bytes(gw.inside_next_hop) or frame[12:14] != b"\x08\x00":
        errs.append("Ethernet dst %s type %s" % (frame[0:6].hex(":"), frame[12:14].hex()))
    ip = frame[14:]
    if len(ip) < 28 or ip[0] >> 4 != 4:
        return errs + ["not IPv4"]
    hl, tl = ip_hl(ip), struct.unpack("!H", ip[2:4])[0]
    trailer = ip[tl:]
    if trailer and not (len(frame) == 60 and trailer == b"\0" * len(trailer)):
        errs.append("%d bytes after the IPv4 packet" % len(trailer))
    ip = ip[:tl]
    if ip_checksum(ip[:hl]) != 0:
        errs.append("IPv4 header checksum wrong")
    if ip[9] != 1:
        errs.append("protocol %d" % ip[9])
    if ip[8] != 64:
        errs.append("TTL %d" % ip[8])
    if ip[12:16] != ip4(gw.inside_addr):
        errs.append("source %s, want the inside address %s"
                    % (ipaddress.ip_address(ip[12:16]), gw.inside_addr))
    if ip[16:20] != orig[12:16]:
        errs.append("destination %s, want the inner source %s"
                    % (ipaddress.ip_address(ip[16:20]), ipaddress.ip_address(orig[12:16])))
    if ip_mf(ip) or ip_frag_off(ip):
        errs.append("the ICMP datagram is a fragment")
    icmp = ip[hl:]
    if len(icmp) < 8:
        return errs + ["ICMP of %d bytes" % len(icmp)]
    typ, code, _, unused, mtu = struct.unpack("!BBHHH", icmp[:8])
    if (typ, code) != (3, 4):
        errs.append("type %d code %d, want 3/4" % (typ, code))
    if mtu != L:
        errs.append("next-hop MTU %d, want %d" % (mtu, L))
    if unused != 0:
        errs.append("unused field 0x%04x" % unused)
    if ip_checksum(icmp) != 0:
        errs.append("ICMP checksum wrong")
    quote = icmp[8:]
    if tl > ICMP_MAX_DATAGRAM:
        errs.append("ICMP datagram %d bytes > 576" % tl)
    if not orig.startswith(quote):
        off = next((i for i in range(min(len(quote), len(orig))) if quote[i] != orig[i]),
                   min(len(quote), len(orig)))
        errs.append("quoted datagram differs from the packet as received at byte %d (%s)"
                    % (off, ip_field(off)))
    elif len(quote) < ip_hl(orig) + 8:
        errs.append("quotes only %d bytes (< IP header + 8)" % len(quote))
    elif len(quote) != min(len(orig), ICMP_QUOTE_MAX):
        errs.append("quotes %d bytes; RFC 1812 4.3.2.3: as much as fits in 576 = %d"
                    % (len(quote), min(len(orig), ICMP_QUOTE_MAX)))
    # scapy's view must agree with ours
    p = IP(ip)
    if ICMP not in p or p[ICMP].type != 3 or p[ICMP].code != 4 or p[ICMP].nexthopmtu != L:
        errs.append("scapy does not see ICMP 3/4 with MTU %d" % L)
    else:
        q = p.copy()
        del q.chksum
        del q[ICMP].chksum
        q = IP(bytes(q))
        if q.chksum != p.chksum or q[ICMP].chksum != p[ICMP].chksum:
            errs.append("scapy recomputes other checksums")
    return errs


def reference_outbound(gw, tun, inner, seq64, ipid=0, df_mode="copy"):
    """The frame a correct gateway sends for expected inner bytes at sequence
    seq64 (IP ID given): built with scapy's ESP encrypt and own headers. Used
    to show that the checkers accept a correct frame and reject broken ones."""
    sa = tun.out_sa()
    lo, hi = seq64 & M32, seq64 >> 32
    sa.seq_num = lo
    sa.esn = hi
    e = sa.encrypt(IP(inner), seq_num=lo, iv=struct.pack("!Q", seq64), esn_en=tun.esn, esn=hi)
    esp = bytes(e[ESP])
    df = {"copy": ip_df(inner), "set": True, "clear": False}[df_mode]
    ip = IP(src=gw.outside_addr, dst=tun.remote, ttl=64, id=ipid, tos=inner[1],
            flags="DF" if df else 0, proto=17)
    udp = struct.pack("!HHHH", tun.out_sport(), tun.remote_port, 8 + len(esp), 0)
    ip.len = 20 + len(udp) + len(esp)
    b = bytes(ip / Raw(udp + esp))
    return mac_bytes(gw.outside_next_hop) + mac_bytes(gw.outside_mac) + b"\x08\x00" + b


def reference_fragments(whole, L):
    """scapy's fragment() of the expected inner packet into pieces <= L
    (own cut for a packet that is already a fragment: scapy cannot)."""
    from scapy.layers.inet import fragment
    hl = ip_hl(whole)
    step = (L - hl) // 8 * 8
    if not (ip_mf(whole) or ip_frag_off(whole)):
        return [bytes(f) for f in fragment(IP(whole), step)]
    pl, res = whole[hl:], []
    for o in range(0, len(pl), step):
        piece = pl[o:o + step]
        h = bytearray(whole[:hl])
        h[2:4] = struct.pack("!H", hl + len(piece))
        res.append(set_ip_fields(bytes(h) + piece, off=ip_frag_off(whole) + o,
                                 mf=True if o + step < len(pl) else ip_mf(whole)))
    return res


def reference_icmp(gw, orig, L):
    """ICMP 3/4 frame for the too-big packet orig, built with scapy."""
    p = IP(src=gw.inside_addr, dst=ipaddress.ip_address(orig[12:16]).compressed, ttl=64) / \
        ICMP(type=3, code=4, nexthopmtu=L) / Raw(orig[:ICMP_QUOTE_MAX])
    return mac_bytes(gw.inside_next_hop) + mac_bytes(gw.inside_mac) + b"\x08\x00" + bytes(p)


def mirror_tunnel(t, a_gw, name=None):
    """Tunnel as the peer (gateway B) configures it for A's tunnel t: A's
    outbound SA is B's inbound and vice versa, selectors swapped, remote = A's
    outside address and A's local_port."""
    m = Tunnel(name or t.name, a_gw.outside_addr, t.out_sport(), t.algorithm, t.esn,
               t.out_spi, t.out_key, t.in_spi, t.in_key, list(t.local_ts), list(t.remote_ts), 1)
    return m


def make_out_tunnels(rng, n_groups=5, first_index=1, cgnat_share=0.5, catch_all=True,
                     spis=None):
    """Tunnels whose remote_ts nest, so that only a longest-prefix match picks
    the right one. Group g (base 10.(200+g)) has five tunnels:
      A 10.B.0.0/16;  B 10.B.5.0/24 + 10.B.9.0/24;  C 10.B.5.128/25;
      D 10.B.5.130/32 + 10.B.5.64/26 + 10.B.9.8/29;  E 10.B.5.132/30
    plus (catch_all) one tunnel for 10.0.0.0/8 that only gets what no group
    holds. AES-GCM-128/-256 alternate, every third tunnel uses ESN, local_ts
    vary (/0, /16, two prefixes, a /32 + /18). About cgnat_share of the peers
    share 198.51.100.25 (distinct ports, some below 4500), a few 198.51.100.26,
    the rest have their own address and port 4500."""
    spis = set() if spis is None else spis
    ports = defaultdict(set)

    def spi():
        return unique_spi(rng, spis)

    shapes = [["%s.0.0/16"], ["%s.5.0/24", "%s.9.0/24"], ["%s.5.128/25"],
              ["%s.5.130/32", "%s.5.64/26", "%s.9.8/29"], ["%s.5.132/30"]]
    lts = [["0.0.0.0/0"], ["10.10.0.0/16"], ["10.10.5.0/24", "192.168.7.0/24"],
           ["10.10.9.9/32", "10.10.64.0/18"]]
    plan = [[p % ("10.%d" % (200 + g)) for p in shape]
            for g in range(n_groups) for shape in shapes]
    if catch_all:
        plan.append(["10.0.0.0/8"])
    tunnels = []
    for k, rts in enumerate(plan):
        i = first_index + k
        algo = "aes-gcm-128" if k % 2 == 0 else "aes-gcm-256"
        klen = 16 if algo == "aes-gcm-128" else 32
        remote, port = pick_peer(rng, k, cgnat_share, ports, low_port_share=0.3)
        tunnels.append(Tunnel("out-%04d" % i, remote, port, algo, k % 3 == 2, spi(),
                              rng.randbytes(klen + 4), spi(), rng.randbytes(klen + 4),
                              rts, lts[k % len(lts)], 1))
    return tunnels


def reference_output(gw, otr, df_mode="copy", ipid0=1, layout=None):
    """What a correct single-worker gateway sends for OutTraffic otr: (ESP
    frames for the outside port, ICMP frames for the inside port). Built with
    scapy's ESP and fragment(); used to prove the checkers pass a correct
    output, and (corrupted) that they fail broken ones."""
    seq = Counter()
    ipid = ipid0
    out, icmp = [], []
    for f in otr.frames:
        if f.verdict == FORWARD:
            pieces = reference_fragments(f.expect, otr.L) if f.frag else [f.expect]
            for p in pieces:
                seq[f.tunnel.name] += 1
                if layout is not None:
                    layout.setdefault(f.index, []).append((len(out), f.tunnel,
                                                           seq[f.tunnel.name], p))
                out.append(reference_outbound(gw, f.tunnel, p, seq[f.tunnel.name], ipid,
                                              df_mode))
                ipid = (ipid + 1) & 0xFFFF
        elif f.verdict == "too_big" and not f.no_icmp:
            icmp.append(reference_icmp(gw, f.ip, otr.L))
    return out, icmp


def direct_outbound(gw, tun, payload, seq64, ipid=0, df=False, tos=None, iv=None, pad=None,
                    nh=4, esn=None, key=None, spi=None):
    """An outbound frame built with AESGCM directly (not scapy), so that any
    field can be wrong on purpose: IV, padding, next header, the ESN mode of
    the AAD, the key or the SPI. Defaults give a correct frame."""
    k = tun.out_key if key is None else key
    esn = tun.esn if esn is None else esn
    if pad is None:
        pad = bytes(range(1, (-(len(payload) + 2)) % 4 + 1))
    iv = struct.pack("!Q", seq64) if iv is None else iv
    spi_b = struct.pack("!I", tun.out_spi if spi is None else spi)
    lo_b = struct.pack("!I", seq64 & M32)
    aad = spi_b + (struct.pack("!I", seq64 >> 32) if esn else b"") + lo_b
    esp = spi_b + lo_b + iv + AESGCM(k[:-4]).encrypt(k[-4:] + iv, payload + pad +
                                                     bytes([len(pad), nh]), aad)
    tos = payload[1] if tos is None else tos
    ip = IP(src=gw.outside_addr, dst=tun.remote, ttl=64, id=ipid, tos=tos,
            flags="DF" if df else 0, proto=17, len=28 + len(esp))
    udp = struct.pack("!HHHH", tun.out_sport(), tun.remote_port, 8 + len(esp), 0)
    return (mac_bytes(gw.outside_next_hop) + mac_bytes(gw.outside_mac) + b"\x08\x00" +
            bytes(ip / Raw(udp + esp)))
