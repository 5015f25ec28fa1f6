#!/usr/bin/python3
"""Helper of scripts/bench-scale.sh and scripts/bench-reload.sh (run with /usr/bin/python3:
needs python3-cryptography and scapy).

Configs come from scripts/gen-tunnels.py (its format is parsed back here); traffic is
built with `cryptography`'s AESGCM (fast) and a sample of it is checked with scapy's ESP.

  cfg N OUT [--seed S] [--replay-window W] [--rekey-grace G]
      gen-tunnels.py N OUT --seed S, then the dataplane group replaced by
      { replay_window = W; rekey_grace = G; } (if given). Falls back to an own
      generator of the same format if gen-tunnels.py is missing or fails.
  inpcap CFG OUT.pcap NPKTS [--seed S] [--one | --each K]
      NPKTS ESP-in-UDP/4500 frames, each for a tunnel drawn uniformly at random (--one:
      all for the first tunnel; --each K: K frames per tunnel in random order, NPKTS
      ignored), AES-GCM with that tunnel's inbound key, per-tunnel
      sequence numbers 1, 2, ... (IV = sequence number). Inner IPv4 28 B (UDP
      1024 -> 1024, no payload) from the tunnel's remote_ts /32 to INNER_DST: 106-byte
      frames, the smallest row of bench-inbound.sh. Writes OUT.pcap.idx (uint32 tunnel
      index per packet).
  outpcap CFG OUT.pcap NPKTS [--seed S] [--one | --each K]
      NPKTS clear frames Ether/IPv4(INNER_DST -> a random tunnel's remote_ts /32)/UDP
      1024 -> 1024 (inner IPv4 28 B, 42-byte frames; 106 B once encrypted), + .idx.
  verify-in PCAP CFG [--sample K]
      scapy decrypts K frames (spread over the capture) with the tunnel's inbound SA
      and checks the inner packet.
  verify-gw-in TXPCAP INPCAP CFG
      the gateway's inside-port output of INPCAP played once: one frame per input frame,
      in order, = the inner packet with TTL 63.
  verify-out TXPCAP INPCAP CFG [--sample K]
      the gateway's outside-port output of INPCAP played once: one ESP-in-UDP frame per
      input frame, in order, outer 203.0.113.1:4500 -> tunnel's remote:remote_port, the
      tunnel's outbound SPI, sequence numbers 1, 2, ... per tunnel; scapy decrypts K of
      them (outbound key) to the input packet with TTL 63.
  reload-plan CFG_A CFG_B PLAN.json [--add A] [--remove R] [--rekey K] [--seed S]
      CFG_B = CFG_A without R random tunnels, with K others rekeyed (new inbound and
      outbound SPI and key), plus A new tunnels. PLAN.json lists the indexes (in CFG_A).
  account FINAL.json PCAP CFG_A PLAN.json [--ethdev ETHDEV.json]
      zero-loss accounting of a bench-reload.sh run (see that script).
  reload-report SAMPLES.jsonl RENAME_UNIX_T
      forwarding rate before / during (parse, apply) / after the reload, from the samples.
  tel PREFIX CMD [CMD ...]
      DPDK telemetry query of a running natt-dataplane; prints one JSON per command.
  heap PREFIX
      the dataplane's DPDK heap (socket 0): "alloc_bytes heap_bytes alloc_count".
  sample PREFIX OUT.jsonl --interval S --until-file F
      /natt/stats + /natt/drops every S seconds (wall time stamped) until F exists.
  rate PREFIX --warmup W --secs S [--samples OUT.json]
      tx packets per second over [W, W+S] s from now (/natt/stats counters and the
      dataplane's uptime_ms); prints "Mpps rx_Mpps drops" and per-second samples.
"""
import argparse
import array
import functools
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUTSIDE_ADDR = "203.0.113.1"      # gen-tunnels.py's interfaces
INNER_DST = "10.10.0.100"         # a host behind the inside port (inbound inner dst,
                                  # outbound inner src; local_ts is 0.0.0.0/0)
SRC_MAC = bytes.fromhex("020000000002")
DST_MAC = bytes.fromhex("020000000001")


def ip2b(s):
    return socket.inet_aton(s)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ipv4(src, dst, proto, payload, ttl=64, ident=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto, 0,
                    src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def inner_udp(src, dst, ttl=64, length=28):
    """Inner IPv4 of length (>= 28) bytes: UDP 1024 -> 1024, payload 0xab.., checksums
    right. The default is 28 bytes: no payload."""
    u = struct.pack("!HHHH", 1024, 1024, length - 20, 0) + b"\xab" * (length - 28)
    ph = src + dst + struct.pack("!BBH", 0, 17, length - 20)
    c = csum(ph + u) or 0xffff
    return ipv4(src, dst, 17, u[:6] + struct.pack("!H", c) + u[8:], ttl)


@functools.lru_cache(maxsize=65536)
def aead_of(key):
    """python3-cryptography AESGCM for key || 4-byte salt (the salt is not part of it)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return AESGCM(key[:-4])


def esp_udp_frame(keysalt, spi, seq, inner, src, sport, dst, esn=False,
                  dmac=DST_MAC, smac=SRC_MAC):
    """Ethernet/IPv4(src -> dst)/UDP(sport -> 4500, checksum 0)/ESP frame, tunnel mode
    AES-GCM (RFC 4106, 16-byte ICV) by python3-cryptography: IV = the 64-bit sequence
    number, minimal padding 1, 2, ..., next header 4. With esn the AAD carries the high
    half (RFC 4303 2.2.1, RFC 4106 5); the wire carries the low half only."""
    npad = (-(len(inner) + 2)) % 4
    lo = seq & 0xffffffff
    hdr = struct.pack("!II", spi, lo)
    aad = struct.pack("!III", spi, seq >> 32, lo) if esn else hdr
    iv = struct.pack("!Q", seq)
    ct = aead_of(keysalt).encrypt(keysalt[-4:] + iv,
                                  inner + bytes(range(1, npad + 1)) + bytes((npad, 4)), aad)
    udp = struct.pack("!HHHH", sport, 4500, 8 + len(hdr) + len(iv) + len(ct), 0)
    return dmac + smac + b"\x08\x00" + ipv4(src, dst, 17, udp + hdr + iv + ct)


# ---------------------------------------------------------------- configs

TUN_RE = re.compile(
    rb'name = "([^"]+)"; remote = "([0-9.]+)"; remote_port = (\d+); '
    rb'algorithm = "aes-gcm-(\d+)"; esn = (true|false);\s*'
    rb'inbound\s*=\s*\{ spi = (0x[0-9a-fA-F]+|\d+); key = "([0-9a-fA-F]+)"; \};\s*'
    rb'outbound\s*=\s*\{ spi = (0x[0-9a-fA-F]+|\d+); key = "([0-9a-fA-F]+)"; \};\s*'
    rb'remote_ts = \[ "([0-9.]+)/32" \]')


class Tunnels:
    """The tunnels of a gen-tunnels.py config, as parallel lists."""

    def __init__(self, path):
        cache = path + ".parsed"
        if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(path):
            with open(cache, "rb") as f:
                import pickle
                self.__dict__.update(pickle.load(f))
            if hasattr(self, "esn"):          # caches of older versions lack it
                return
        data = open(path, "rb").read()
        self.name, self.remote, self.rport, self.bits, self.esn = [], [], [], [], []
        self.in_spi, self.in_key, self.out_spi, self.out_key, self.ts = [], [], [], [], []
        for m in TUN_RE.finditer(data):
            self.name.append(m.group(1).decode())
            self.remote.append(socket.inet_aton(m.group(2).decode()))
            self.rport.append(int(m.group(3)))
            self.bits.append(int(m.group(4)))
            self.esn.append(m.group(5) == b"true")
            self.in_spi.append(int(m.group(6), 0))
            self.in_key.append(bytes.fromhex(m.group(7).decode()))
            self.out_spi.append(int(m.group(8), 0))
            self.out_key.append(bytes.fromhex(m.group(9).decode()))
            self.ts.append(socket.inet_aton(m.group(10).decode()))
        n = data.count(b"name = \"") - 2          # two interfaces
        if n != len(self.name):
            sys.exit("%s: parsed %d of %d tunnels (not gen-tunnels.py's format?)"
                     % (path, len(self.name), n))
        del data
        try:
            import pickle
            with open(cache + ".tmp", "wb") as f:
                pickle.dump(self.__dict__, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.rename(cache + ".tmp", cache)
        except OSError:
            pass

    def __len__(self):
        return len(self.name)


TUNNEL_FMT = (
    '  { name = "%s"; remote = "%s"; remote_port = %d; algorithm = "aes-gcm-%d"; esn = false;\n'
    '    inbound  = { spi = 0x%08x; key = "%s"; };\n'
    '    outbound = { spi = 0x%08x; key = "%s"; };\n'
    '    remote_ts = [ "%s/32" ]; local_ts = [ "0.0.0.0/0" ]; }')

HEADER = """\
# natt-gw configuration: %d tunnels (%s)
dataplane = { replay_window = 1024; };
interfaces = (
  { name = "outside"; port = 0; role = "outside"; address = "203.0.113.1"; next_hop_mac = "02:00:00:00:00:fe"; mtu = 1500; },
  { name = "inside";  port = 1; role = "inside";  address = "10.10.0.1";   next_hop_mac = "02:00:00:00:01:fe"; mtu = 1500; }
);
tunnels = (
"""


def own_generator(n, out, seed):
    """gen-tunnels.py's format, for when that script is missing or broken."""
    rng = random.Random(seed)
    ia, oa = rng.randrange(1, 1 << 31) * 2 + 1, rng.randrange(1, 1 << 31) * 2 + 1
    ib, ob = rng.randrange(1 << 32), rng.randrange(1 << 32)
    with open(out, "w") as f:
        f.write(HEADER % (n, "bench_scale_pcaps.py own generator, seed %d" % seed))
        rows = []
        for i in range(n):
            ts = (10 << 24) | (64 << 16) | i
            peer = (198 << 24) | (18 << 16) | (1 + i // 1024)
            # odd multiplier mod 2^32: a bijection; skip the reserved 0..255
            ispi = (ia * i + ib) & 0xffffffff
            ospi = (oa * i + ob) & 0xffffffff
            if ispi < 256 or ospi < 256:
                ispi, ospi = ispi | 0x80000000, ospi | 0x80000000
            rows.append(TUNNEL_FMT % ("t%d" % i, socket.inet_ntoa(struct.pack("!I", peer)),
                                      1024 + (i % 1024) * 61, 128, ispi,
                                      rng.randbytes(20).hex(), ospi, rng.randbytes(20).hex(),
                                      socket.inet_ntoa(struct.pack("!I", ts))))
            if len(rows) == 8192:
                f.write(",\n".join(rows) + (",\n" if i + 1 < n else "\n"))
                rows = []
        if rows:
            f.write(",\n".join(rows) + "\n")
        f.write(");\n")


def set_dataplane_group(path, group):
    with open(path, "rb") as f:
        data = f.read()
    new, k = re.subn(rb"^dataplane = \{[^}]*\};", group.encode(), data, count=1, flags=re.M)
    if k != 1:
        sys.exit("%s: no 'dataplane = { ... };' line" % path)
    with open(path + ".tmp", "wb") as f:
        f.write(new)
    os.rename(path + ".tmp", path)


def cmd_cfg(a):
    gen = os.path.join(HERE, "gen-tunnels.py")
    ok = False
    if os.path.exists(gen):
        r = subprocess.run([sys.executable, gen, str(a.n), a.out, "--seed", str(a.seed)],
                           capture_output=True, text=True)
        ok = r.returncode == 0 and os.path.exists(a.out)
        if not ok:
            print("gen-tunnels.py failed (%s), using own generator" % r.stderr.strip()[-200:],
                  file=sys.stderr)
    if not ok:
        own_generator(a.n, a.out, a.seed)
    parts = []
    if a.replay_window is not None:
        parts.append("replay_window = %d;" % a.replay_window)
    if a.rekey_grace is not None:
        parts.append("rekey_grace = %d;" % a.rekey_grace)
    if parts:
        set_dataplane_group(a.out, "dataplane = { %s };" % " ".join(parts))
    print("%s: %d tunnels (%s)" % (a.out, a.n, "gen-tunnels.py" if ok else "own generator"))


# ---------------------------------------------------------------- pcaps

def pcap_writer(path):
    f = open(path, "wb")
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    return f


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        yield data[off:off + incl]
        off += incl


def pick(n_tun, npkts, seed, one, each=0):
    """Tunnel index per packet: uniform random; --one: tunnel 0; --each K: every
    tunnel exactly K times, in random order (npkts is then K * tunnels)."""
    rng = random.Random(seed)
    if one:
        return array.array("I", [0] * npkts)
    if each:
        idx = array.array("I", range(n_tun)) * each
        rng.shuffle(idx)
        return idx
    return array.array("I", (rng.randrange(n_tun) for _ in range(npkts)))


def cmd_inpcap(a):
    t = Tunnels(a.cfg)
    if any(t.esn):
        sys.exit("%s: ESN tunnels: use scripts/natt-traffic" % a.cfg)
    idx = pick(len(t), a.npkts, a.seed, a.one, a.each)
    a.npkts = len(idx)
    seq = {}
    dst = ip2b(INNER_DST)
    oaddr = ip2b(OUTSIDE_ADDR)
    w = pcap_writer(a.out)
    hdr = struct.Struct("<IIII")
    inner_cache = {}
    for k, i in enumerate(idx):
        s = seq.get(i, 0) + 1
        seq[i] = s
        inner = inner_cache.get(i)
        if inner is None:
            inner = inner_udp(t.ts[i], dst)
            if len(inner_cache) < 65536:
                inner_cache[i] = inner
        frame = esp_udp_frame(t.in_key[i], t.in_spi[i], s, inner, t.remote[i], t.rport[i], oaddr)
        w.write(hdr.pack(k // 1000000, k % 1000000, len(frame), len(frame)))
        w.write(frame)
    w.close()
    with open(a.out + ".idx", "wb") as f:
        idx.tofile(f)
    print("%s: %d frames of %d B over %d distinct tunnels (of %d)"
          % (a.out, a.npkts, len(frame), len(seq), len(t)))


def cmd_outpcap(a):
    t = Tunnels(a.cfg)
    idx = pick(len(t), a.npkts, a.seed, a.one, a.each)
    a.npkts = len(idx)
    src = ip2b(INNER_DST)
    w = pcap_writer(a.out)
    hdr = struct.Struct("<IIII")
    for k, i in enumerate(idx):
        frame = DST_MAC + SRC_MAC + b"\x08\x00" + inner_udp(src, t.ts[i])
        w.write(hdr.pack(k // 1000000, k % 1000000, len(frame), len(frame)))
        w.write(frame)
    w.close()
    with open(a.out + ".idx", "wb") as f:
        idx.tofile(f)
    print("%s: %d clear frames of %d B over %d distinct tunnels (of %d)"
          % (a.out, a.npkts, len(frame), len(set(idx)), len(t)))


def load_idx(pcap):
    idx = array.array("I")
    with open(pcap + ".idx", "rb") as f:
        idx.frombytes(f.read())
    return idx


def sample_positions(n, k):
    if k >= n:
        return list(range(n))
    step = n / k
    return sorted(set(int(j * step) for j in range(k)))


def scapy_sa(spi, keysalt, src, dst):
    from scapy.all import IP
    from scapy.layers.ipsec import SecurityAssociation, ESP
    return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=keysalt,
                               auth_algo="NULL", auth_key=None,
                               tunnel_header=IP(src=src, dst=dst))


def esp_as_ip(ipl):
    """scapy IP/ESP packet from an outer IPv4/UDP(4500)/ESP layer (scapy decrypts
    ESP directly after IP)."""
    from scapy.all import IP
    from scapy.layers.ipsec import ESP
    return IP(bytes(IP(src=ipl.src, dst=ipl.dst, proto=50) / ESP(bytes(ipl.payload.payload))))


def cmd_verify_in(a):
    from scapy.all import Ether, IP, UDP
    t = Tunnels(a.cfg)
    idx = load_idx(a.pcap)
    frames = list(pcap_frames(a.pcap))
    if len(frames) != len(idx):
        sys.exit("verify-in: %d frames, %d index entries" % (len(frames), len(idx)))
    pos = sample_positions(len(frames), a.sample)
    bad = 0
    for p in pos:
        i = idx[p]
        try:
            f = Ether(frames[p])
            assert len(frames[p]) == 106, "frame %d B" % len(frames[p])
            ipl = f[IP]
            assert ipl.src == socket.inet_ntoa(t.remote[i]) and ipl.dst == OUTSIDE_ADDR
            assert ipl[UDP].sport == t.rport[i] and ipl[UDP].dport == 4500
            assert ipl[UDP].len == ipl.len - 20
            sa = scapy_sa(t.in_spi[i], t.in_key[i], ipl.src, ipl.dst)
            e = esp_as_ip(ipl)
            assert e.spi == t.in_spi[i], "spi"
            d = sa.decrypt(e)
            assert d.src == socket.inet_ntoa(t.ts[i]) and d.dst == INNER_DST, d.summary()
            assert d.len == 28 and d[UDP].sport == 1024 and d.ttl == 64, d.summary()
            assert bytes(d) == inner_udp(t.ts[i], ip2b(INNER_DST)), "inner bytes"
        except Exception as ex:  # noqa: BLE001
            bad += 1
            if bad <= 3:
                print("verify-in: frame %d (tunnel %d): %r" % (p, i, ex))
    print("verify-in %s: scapy decrypted %d sampled frames of %d (%d distinct tunnels), "
          "%d bad" % (os.path.basename(a.pcap), len(pos), len(frames),
                      len(set(idx[p] for p in pos)), bad))
    sys.exit(1 if bad else 0)


def cmd_verify_gw_in(a):
    t = Tunnels(a.cfg)
    idx = load_idx(a.inpcap)
    out = list(pcap_frames(a.txpcap))
    bad = 0
    dst = ip2b(INNER_DST)
    for k, f in enumerate(out[:len(idx)]):
        want = inner_udp(t.ts[idx[k]], dst, ttl=63)
        if f[14:] != want or f[12:14] != b"\x08\x00":
            bad += 1
            if bad <= 3:
                print("verify-gw-in: frame %d: got %s want %s" % (k, f[14:].hex(), want.hex()))
    ok = bad == 0 and len(out) == len(idx)
    print("verify-gw-in %s: %d frames out for %d in, %d differ from the expected inner "
          "packet (TTL 63)" % (os.path.basename(a.txpcap), len(out), len(idx), bad))
    sys.exit(0 if ok else 1)


def cmd_verify_out(a):
    from scapy.all import Ether, IP, UDP
    t = Tunnels(a.cfg)
    idx = load_idx(a.inpcap)
    out = list(pcap_frames(a.txpcap))
    bad = 0
    seq = {}
    oaddr = ip2b(OUTSIDE_ADDR)
    for k, f in enumerate(out[:len(idx)]):
        i = idx[k]
        s = seq.get(i, 0) + 1
        seq[i] = s
        ok = (len(f) == 106 and f[12:14] == b"\x08\x00" and f[26:30] == oaddr and
              f[30:34] == t.remote[i] and
              struct.unpack("!HH", f[34:38]) == (4500, t.rport[i]) and
              struct.unpack("!II", f[42:50]) == (t.out_spi[i], s))
        if not ok:
            bad += 1
            if bad <= 3:
                print("verify-out: frame %d (tunnel %d, seq %d): %s" % (k, i, s, f.hex()))
    pos = sample_positions(min(len(out), len(idx)), a.sample)
    src = INNER_DST
    for p in pos:
        i = idx[p]
        try:
            ipl = Ether(out[p])[IP]
            assert ipl[UDP].len == ipl.len - 20, "udp len"
            sa = scapy_sa(t.out_spi[i], t.out_key[i], ipl.src, ipl.dst)
            d = sa.decrypt(esp_as_ip(ipl))
            assert bytes(d) == inner_udp(ip2b(src), t.ts[i], ttl=63), d.summary()
        except Exception as ex:  # noqa: BLE001
            bad += 1
            if bad <= 6:
                print("verify-out: scapy, frame %d (tunnel %d): %r" % (p, i, ex))
    ok = bad == 0 and len(out) == len(idx)
    print("verify-out %s: %d frames out for %d in (outer addresses, ports, SPI, per-tunnel "
          "sequence numbers checked on all), scapy decrypted %d sampled frames "
          "(%d distinct tunnels) to the input packet with TTL 63; %d bad"
          % (os.path.basename(a.txpcap), len(out), len(idx), len(pos),
             len(set(idx[p] for p in pos)), bad))
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------- reload

def cmd_reload_plan(a):
    t = Tunnels(a.cfg_a)
    n = len(t)
    rng = random.Random(a.seed)
    chosen = rng.sample(range(n), a.remove + a.rekey)
    removed = sorted(chosen[:a.remove])
    rekeyed = sorted(chosen[a.remove:])
    rset, kset = set(removed), set(rekeyed)
    used_in, used_out = set(t.in_spi), set(t.out_spi)

    def fresh(used):
        while True:
            s = rng.randrange(256, 1 << 32)
            if s not in used:
                used.add(s)
                return s

    text = open(a.cfg_a).read()
    head = text[:text.index("tunnels = (")] + "tunnels = (\n"
    rows = []
    for i in range(n):
        if i in rset:
            continue
        ispi, ikey, ospi, okey = t.in_spi[i], t.in_key[i], t.out_spi[i], t.out_key[i]
        if i in kset:
            ispi, ikey = fresh(used_in), rng.randbytes(20)
            ospi, okey = fresh(used_out), rng.randbytes(20)
        rows.append(TUNNEL_FMT % (t.name[i], socket.inet_ntoa(t.remote[i]), t.rport[i],
                                  t.bits[i], ispi, ikey.hex(), ospi, okey.hex(),
                                  socket.inet_ntoa(t.ts[i])))
    for j in range(a.add):
        ts = (10 << 24) | (96 << 16) | j           # 10.96.0.0/12: no clash with 10.64/10
        peer = (198 << 24) | (19 << 16) | (200 << 8) | (j // 1024)   # 198.19.200+.x
        rows.append(TUNNEL_FMT % ("new%d" % j, socket.inet_ntoa(struct.pack("!I", peer)),
                                  1024 + j % 1024, 128, fresh(used_in),
                                  rng.randbytes(20).hex(), fresh(used_out),
                                  rng.randbytes(20).hex(),
                                  socket.inet_ntoa(struct.pack("!I", ts))))
    with open(a.cfg_b + ".tmp", "w") as f:
        f.write(head + ",\n".join(rows) + "\n);\n")
    os.rename(a.cfg_b + ".tmp", a.cfg_b)
    json.dump({"cfg_a": a.cfg_a, "cfg_b": a.cfg_b, "tunnels_a": n, "removed": removed,
               "rekeyed": rekeyed, "added": a.add, "seed": a.seed}, open(a.plan, "w"))
    print("%s: %d tunnels: %d of %s kept (%d untouched, %d rekeyed), %d removed, %d added"
          % (a.cfg_b, n - a.remove + a.add, n - a.remove, a.cfg_a, n - a.remove - a.rekey,
             a.rekey, a.remove, a.add))


def cmd_account(a):
    """Final counters (the dataplane's --stats-json, written after its workers stopped)
    against what net_pcap delivered. net_pcap's infinite_rx hands the capture out in
    order, round after round (DPDK 22.11 eth_pcap_rx_infinite dequeues the frames from a
    ring and puts them back at its tail; on mbuf shortage it returns before dequeuing),
    so with R frames received, frame k of an N-frame capture arrived
    R // N + (k < R % N) times."""
    t = Tunnels(a.cfg_a)
    plan = json.load(open(a.plan))
    st = json.load(open(a.final))
    idx = load_idx(a.pcap)
    n = len(idx)
    ports = {p["port"]: p for p in st["ports"]}
    R = ports[0]["rx_packets"]               # outside port: the ESP capture
    q, r = divmod(R, n)
    recv = [0] * len(t)
    for k, i in enumerate(idx):
        recv[i] += q + (1 if k < r else 0)
    removed, rekeyed = set(plan["removed"]), set(plan["rekeyed"])
    tun = st["tunnels"]
    res = {"rx_outside": R, "capture_frames": n, "rounds": round(R / n, 3)}
    groups = {"untouched": [], "rekeyed": [], "removed": []}
    for i in range(len(t)):
        g = "removed" if i in removed else "rekeyed" if i in rekeyed else "untouched"
        groups[g].append(i)
    for g in ("untouched", "rekeyed"):
        exp = got = short = extra = fail = 0
        missing = 0
        worst = []
        for i in groups[g]:
            e = recv[i]
            x = tun.get(t.name[i])
            if x is None:
                missing += 1
                short += e
                continue
            d = x["in_packets"]
            exp += e
            got += d
            fail += x["auth_failed"] + x["replay"] + x["policy"]
            if d < e:
                short += e - d
                if len(worst) < 5:
                    worst.append((t.name[i], e, d))
            elif d > e:
                extra += d - e
        res[g] = {"tunnels": len(groups[g]), "tunnels_with_traffic":
                  sum(1 for i in groups[g] if recv[i]), "received": exp, "delivered": got,
                  "lost": short, "more_than_received": extra, "auth_replay_policy": fail,
                  "missing_from_stats": missing, "examples_short": worst}
    rem_recv = sum(recv[i] for i in groups["removed"])
    present = sum(1 for i in groups["removed"] if t.name[i] in tun)
    kept_delivered = res["untouched"]["delivered"] + res["rekeyed"]["delivered"]
    added_delivered = sum(v["in_packets"] for k, v in tun.items() if k.startswith("new"))
    tx_in = ports[1]["tx_packets"]
    drops = {k: v for k, v in st["drops"].items() if v}
    c = st["counters"]
    # removed tunnels: delivered before their SA_DEL, no_sa after
    rem_delivered = tx_in - kept_delivered - added_delivered
    res["removed"] = {"tunnels": len(groups["removed"]), "received": rem_recv,
                      "delivered_before_removal": rem_delivered,
                      "dropped_no_sa": st["drops"].get("no_sa", 0),
                      "still_in_stats": present,
                      "received_minus_delivered_minus_no_sa":
                      rem_recv - rem_delivered - st["drops"].get("no_sa", 0)}
    res["added_delivered"] = added_delivered
    res["counters"] = {k: c[k] for k in ("rx_packets", "tx_packets", "decrypted")}
    res["drops"] = drops
    res["tx_inside"] = tx_in
    if a.ethdev:
        try:
            res["ethdev"] = [json.loads(x) for x in open(a.ethdev) if x.strip()]
        except ValueError as ex:
            res["ethdev"] = "unreadable: %s" % ex
    u = res["untouched"]
    k = res["rekeyed"]
    ok = (u["lost"] == 0 and u["more_than_received"] == 0 and u["auth_replay_policy"] == 0
          and u["missing_from_stats"] == 0 and k["lost"] == 0 and k["auth_replay_policy"] == 0
          and res["removed"]["received_minus_delivered_minus_no_sa"] == 0
          and set(drops) <= {"no_sa"})
    res["zero_loss_untouched"] = ok
    json.dump(res, sys.stdout, indent=1)
    print()
    sys.exit(0 if ok else 1)


def cmd_reload_report(a):
    """Forwarding rate around the reload from the 100 ms samples. The reload's phases
    come from the journal (telemetry reload dict): it ended at last_ok_unix_ms, the
    apply (first message to the last worker's ack) took last_apply_us before that, the
    parse (read + validate) last_parse_us before the apply."""
    rows = [json.loads(x) for x in open(a.samples) if x.strip()]
    t_rename = a.rename_t
    last = rows[-1]["reload"]
    ok_t = last["last_ok_unix_ms"] / 1000.0
    apply_s = last["last_apply_us"] / 1e6
    parse_s = last["last_parse_us"] / 1e6
    t_apply = ok_t - apply_s
    t_parse = t_apply - parse_s
    iv = []
    for x, y in zip(rows, rows[1:]):
        dt = (y["uptime_ms"] - x["uptime_ms"]) / 1000.0
        if dt <= 0:
            continue
        # the sample's wall time is taken just before the query: use it for placement
        iv.append((x["t"], y["t"], (y["c"]["tx_packets"] - x["c"]["tx_packets"]) / dt / 1e6,
                   (y["c"]["rx_packets"] - x["c"]["rx_packets"]) / dt / 1e6,
                   sum(y["drops"].values()) - sum(x["drops"].values())))

    def window(lo, hi, overlap=False):
        if overlap:
            return [r for r in iv if r[1] > lo and r[0] < hi]
        return [r for r in iv if r[0] >= lo and r[1] <= hi]

    def stats(ws):
        if not ws:
            return "-", "-", "-", 0
        tx = [w[2] for w in ws]
        return ("%.3f" % (sum(tx) / len(tx)), "%.3f" % min(tx), "%.3f" % max(tx),
                sum(w[4] for w in ws))
    t0, t1 = rows[0]["t"], rows[-1]["t"]
    parts = [("before the file changed", window(t0 + 1.0, t_rename)),
             ("file renamed -> reload starts (inotify + %d ms settle)" % 200,
              window(t_rename, t_parse, True)),
             ("parse + validate (%.0f ms, natt-control on lcore 0)" % (parse_s * 1e3),
              window(t_parse, t_apply, True)),
             ("apply (%.0f ms: messages to the worker, COMMIT ack)" % (apply_s * 1e3),
              window(t_apply, ok_t, True)),
             ("after the reload", window(ok_t + 0.5, t1))]
    print("| phase | 100 ms samples | tx Mpps mean | min | max | drops in it |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, ws in parts:
        m, lo, hi, d = stats(ws)
        print("| %s | %d | %s | %s | %s | %d |" % (name, len(ws), m, lo, hi, d))
    print()
    print("timeline, tx Mpps per 100 ms from 1 s before the parse to 1 s after the reload"
          " (| = parse start, apply start, end):")
    out = []
    marks = [t_parse, t_apply, ok_t]
    for r in iv:
        if r[1] < t_parse - 1.0 or r[0] > ok_t + 1.0:
            continue
        while marks and r[0] >= marks[0]:
            out.append("|")
            marks.pop(0)
        out.append("%.2f" % r[2])
    out.extend("|" for _ in marks)
    comp = []                 # runs of one value: "0.00 x347"
    for v in out:
        if comp and comp[-1][0] == v and v != "|":
            comp[-1][1] += 1
        else:
            comp.append([v, 1])
    print(" ".join(v if k == 1 else "%s x%d" % (v, k) for v, k in comp))


# ---------------------------------------------------------------- telemetry

class Tel:
    def __init__(self, prefix):
        path = "/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.connect(path)
        self.s.recv(16384)                   # greeting

    def q(self, cmd):
        self.s.send(cmd.encode())
        return json.loads(self.s.recv(1 << 20).decode())


def cmd_tel(a):
    t = Tel(a.prefix)
    for c in a.cmds:
        print(json.dumps(t.q(c)))


def cmd_heap(a):
    """DPDK malloc heap of socket 0: bytes allocated and heap size (all hugepage memory
    the dataplane mapped, memzones included)."""
    h = Tel(a.prefix).q("/eal/heap_info,0")["/eal/heap_info"]
    print(h["Alloc_size"], h["Heap_size"], h["Alloc_count"])


def cmd_sample(a):
    t = Tel(a.prefix)
    with open(a.out, "w") as f:
        nxt = time.time()
        while not os.path.exists(a.until_file):
            now = time.time()
            s = t.q("/natt/stats")["/natt/stats"]
            d = t.q("/natt/drops")["/natt/drops"]
            f.write(json.dumps({"t": now, "uptime_ms": s["uptime_ms"],
                                "generation": s["generation"], "c": s["counters"],
                                "drops": {k: v for k, v in d.items() if v},
                                "reload": s.get("reload")}) + "\n")
            f.flush()
            nxt += a.interval
            time.sleep(max(0.0, nxt - time.time()))


def cmd_rate(a):
    t = Tel(a.prefix)

    def snap():
        s = t.q("/natt/stats")["/natt/stats"]
        return s["uptime_ms"], s["counters"]["tx_packets"], s["counters"]["rx_packets"], \
            s["drops"]
    time.sleep(a.warmup)
    samples = [snap()]
    for _ in range(int(a.secs)):
        time.sleep(1.0)
        samples.append(snap())
    (u0, t0, r0, d0), (u1, t1, r1, d1) = samples[0], samples[-1]
    dt = (u1 - u0) / 1000.0
    per = [round((b[1] - x[1]) / ((b[0] - x[0]) / 1000.0) / 1e6, 3)
           for x, b in zip(samples, samples[1:])]
    print("%.3f %.3f %d %s" % ((t1 - t0) / dt / 1e6, (r1 - r0) / dt / 1e6, d1 - d0,
                               ",".join(str(x) for x in per)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("cfg")
    p.add_argument("n", type=int)
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--replay-window", type=int)
    p.add_argument("--rekey-grace", type=int)
    p.set_defaults(f=cmd_cfg)
    for name, f in (("inpcap", cmd_inpcap), ("outpcap", cmd_outpcap)):
        p = sp.add_parser(name)
        p.add_argument("cfg")
        p.add_argument("out")
        p.add_argument("npkts", type=int)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--one", action="store_true")
        p.add_argument("--each", type=int, default=0, metavar="K")
        p.set_defaults(f=f)
    p = sp.add_parser("verify-in")
    p.add_argument("pcap")
    p.add_argument("cfg")
    p.add_argument("--sample", type=int, default=2000)
    p.set_defaults(f=cmd_verify_in)
    p = sp.add_parser("verify-gw-in")
    p.add_argument("txpcap")
    p.add_argument("inpcap")
    p.add_argument("cfg")
    p.set_defaults(f=cmd_verify_gw_in)
    p = sp.add_parser("verify-out")
    p.add_argument("txpcap")
    p.add_argument("inpcap")
    p.add_argument("cfg")
    p.add_argument("--sample", type=int, default=2000)
    p.set_defaults(f=cmd_verify_out)
    p = sp.add_parser("reload-plan")
    p.add_argument("cfg_a")
    p.add_argument("cfg_b")
    p.add_argument("plan")
    p.add_argument("--add", type=int, default=10000)
    p.add_argument("--remove", type=int, default=10000)
    p.add_argument("--rekey", type=int, default=10000)
    p.add_argument("--seed", type=int, default=11)
    p.set_defaults(f=cmd_reload_plan)
    p = sp.add_parser("account")
    p.add_argument("final")
    p.add_argument("pcap")
    p.add_argument("cfg_a")
    p.add_argument("plan")
    p.add_argument("--ethdev")
    p.set_defaults(f=cmd_account)
    p = sp.add_parser("reload-report")
    p.add_argument("samples")
    p.add_argument("rename_t", type=float)
    p.set_defaults(f=cmd_reload_report)
    p = sp.add_parser("tel")
    p.add_argument("prefix")
    p.add_argument("cmds", nargs="+")
    p.set_defaults(f=cmd_tel)
    p = sp.add_parser("heap")
    p.add_argument("prefix")
    p.set_defaults(f=cmd_heap)
    p = sp.add_parser("sample")
    p.add_argument("prefix")
    p.add_argument("out")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--until-file", required=True)
    p.set_defaults(f=cmd_sample)
    p = sp.add_parser("rate")
    p.add_argument("prefix")
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--secs", type=float, default=10)
    p.set_defaults(f=cmd_rate)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
