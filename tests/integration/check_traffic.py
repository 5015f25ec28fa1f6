#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Check the test traffic itself, without the gateway.

1. The inbound test's capture (test_inbound.build) passes natt_traffic's
   self-check: forwarded frames decrypt with scapy's ESP to the expected inner
   packet, forged ones fail the ICV, post-ICV drops show their fault.
2. tshark (Wireshark's ESP dissector, a third implementation) decrypts every
   authentic frame of that capture to the same inner packet and next header,
   and every trailer it reports matches the tag.
3. scripts/gen-traffic.py runs and its capture decrypts the same way.

Wireshark 4.0 does not verify AES-GCM ICVs ("unchecked"), so (2) checks
decryption, trailer and next header; ICVs are covered by (1).
Usage: /usr/bin/python3 tests/integration/check_traffic.py
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402
import test_inbound             # noqa: E402


def for_tshark(frame):
    """Wireshark picks the UDP dissector by the lower port: a NAT source port
    below 4500 (say 4342, LISP) hides the ESP. Give tshark a copy with source
    port 4500 (the ESP does not cover UDP ports; checksum 0 stays valid)."""
    if len(frame) >= 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
        ihl = (frame[14] & 0xF) * 4
        u = 14 + ihl
        if frame[u + 2:u + 4] == b"\x11\x94":
            return frame[:u] + b"\x11\x94" + frame[u + 2:]
    return frame


def tshark_decode(pcap, tunnels):
    """frame number -> (contained data hex, pad length, next header) from tshark."""
    # Random inner payloads make some upper dissectors throw before ESP adds its
    # trailer fields: keep them out of the way.
    cmd = ["tshark", "-n", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE",
           ]
    for proto in ("dns", "sip", "vxlan", "tls", "http", "ssh", "mdns", "llmnr", "nbns", "quic"):
        cmd += ["--disable-protocol", proto]
    for t in tunnels:
        cmd += ["-o", 'uat:esp_sa:"IPv4","*","*","0x%08x","AES-GCM with 16 octet ICV [RFC4106]",'
                '"0x%s","NULL",""' % (t.in_spi, t.in_key.hex())]
    cmd += ["-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "esp.spi",
            "-e", "esp.contained_data", "-e", "esp.pad_len", "-e", "esp.protocol"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("tshark failed: %s" % p.stderr.strip()[-500:])
    res = {}
    for line in p.stdout.splitlines():
        cols = line.split("\t")
        if len(cols) >= 5 and cols[1] and cols[2]:
            res[int(cols[0])] = (cols[2].replace(":", ""), int(cols[3] or "-1", 0),
                                 int(cols[4] or "-1", 0))
    return res


def inner_of(out_ip):
    """Undo the forwarding: TTL + 1, checksum recomputed."""
    b = bytearray(out_ip)
    b[8] += 1
    return nt.fix_ip_checksum(bytes(b))


def tshark_check(ck, tag, frames, tunnels, workdir):
    pcap = os.path.join(workdir, tag + ".pcap")
    nt.write_pcap(pcap, [for_tshark(f.data) for f in frames])
    dec = tshark_decode(pcap, tunnels)
    errs, n, no_nh = [], 0, 0
    for i, f in enumerate(frames):
        if f.tunnel is None or f.verdict in ("auth_failed", "bad_padding"):
            continue   # no ICV check in tshark; it cannot parse a bad trailer
        got = dec.get(i + 1)
        where = "frame %d (%s)" % (i, f.label())
        if got is None:
            errs.append(where + ": tshark did not decrypt it")
            continue
        data, padlen, nh = got
        n += 1
        # nh -1: an upper dissector threw on random payload before ESP added
        # its trailer fields; the data still has to match.
        no_nh += nh == -1
        if f.verdict == nt.FORWARD and (data != inner_of(f.out_ip).hex() or nh not in (4, -1)):
            errs.append(where + ": tshark decrypts to something else (nh %d)" % nh)
        if f.verdict == "unsupported" and nh not in (41, -1):
            errs.append(where + ": tshark sees next header %d" % nh)
        if f.verdict == "bad_inner" and nh == 4 and data[:1] == "4" and \
                int(data[4:8], 16) * 2 <= len(data):
            errs.append(where + ": tshark sees a plausible IPv4 packet")
    if no_nh * 10 > n:
        errs.append("tshark gave no next header for %d of %d frames" % (no_nh, n))
    ck.check(not errs and n > 0, "%s: tshark decrypts %d authentic frames as expected" % (tag, n),
             "; ".join(errs[:5]))


def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    gw, tr, _ = test_inbound.build(rng)
    h.self_check(ck, "inbound traffic", tr)
    wd = tempfile.mkdtemp(prefix="natt-check-")
    try:
        if shutil.which("tshark"):
            tshark_check(ck, "inbound traffic", tr.frames, tr.tunnels, wd)
        else:
            print("SKIP tshark not installed")
        # the demo generator
        gen = os.path.join(str(h.REPO), "scripts", "gen-traffic.py")
        cfg, pcap = os.path.join(wd, "demo.cfg"), os.path.join(wd, "demo.pcap")
        p = subprocess.run(["/usr/bin/python3", gen, "--config", cfg, "--pcap", pcap,
                            "--packets", "300", "--seed", "7"],
                           capture_output=True, text=True, timeout=120)
        ok = p.returncode == 0 and os.path.exists(cfg) and os.path.exists(pcap)
        ck.check(ok, "gen-traffic.py runs", (p.stdout + p.stderr).strip()[-400:] if not ok else "")
        if ok:
            frames = nt.read_pcap(pcap)
            txt = open(cfg).read()
            ck.check("replay_window = 0;" in txt and len(frames) >= 300,
                     "gen-traffic.py: replay_window 0 and %d frames" % len(frames))
            if shutil.which("tshark"):
                # decrypt with the keys from the generated config
                import re
                sas = re.findall(r'inbound\s*=\s*\{\s*spi\s*=\s*0x([0-9a-f]+);\s*key\s*=\s*"([0-9a-f]+)"', txt)
                tuns = [nt.Tunnel("x%d" % i, "0.0.0.0", 4500, "aes-gcm-128", False, int(s, 16),
                                  bytes.fromhex(k), 1, b"", ["0.0.0.0/0"], ["0.0.0.0/0"], 1)
                        for i, (s, k) in enumerate(sas)]
                tpcap = os.path.join(wd, "demo-tshark.pcap")
                nt.write_pcap(tpcap, [for_tshark(f) for f in frames])
                dec = tshark_decode(tpcap, tuns)
                good = sum(1 for d in dec.values() if d[2] == 4 and d[0][:1] == "4")
                ck.check(len(tuns) >= 3 and good >= 250,
                         "gen-traffic.py: tshark decrypts %d frames with the config's keys "
                         "(%d SAs)" % (good, len(tuns)))
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
