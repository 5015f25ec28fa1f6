#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Inbound NAT-T end to end: scapy-built ESP-in-UDP/4500 in, clear IPv4 out.

48 configured tunnels (AES-GCM-128/-256, every fifth with ESN rolling over
2^32, most peers behind one CGNAT address on distinct ports) plus one idle
tunnel; about 2000 valid packets interleaved with ~100 hostile ones, each
tagged with the one drop reason it must produce. Checks: the output pcap is
exactly the expected inner packets in order (TTL - 1, checksum recomputed);
every drop counter is exact; in == out + drops; per-tunnel counters.

Usage: /usr/bin/python3 tests/integration/test_inbound.py   (see natt_harness.py
for NATT_BUILD / NATT_SEED / NATT_KEEP). Exit 1 on any failure.
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402

N_TUNNELS = 48
N_VALID = 2000
REPLAY_WINDOW = 1024
TIMEOUT = 120

# (kind, count): counts differ per reason so that two swapped counters show.
HOSTILE = [
    # auth_failed: 11
    ("tampered_icv", 3), ("tampered_ciphertext", 3), ("tampered_seq", 2),
    ("wrong_key", 2), ("wrong_esn_hi", 1),
    # replay: 8
    ("replay_copy", 5), ("too_old", 3),
    # no_sa: 4
    ("unknown_spi", 4),
    # malformed: 13
    ("truncated_esp", 2), ("truncated_ip", 2), ("bad_ip_checksum", 2),
    ("udp_len_too_long", 2), ("ip_len_too_long", 1), ("ihl_too_small", 1),
    ("garbage_ip", 2), ("runt", 1),
    # not_esp: 9
    ("garbage_not_ip", 3), ("udp_other_port", 2), ("tcp_4500", 2), ("not_our_address", 2),
    # fragment: 3
    ("fragment_mf", 2), ("fragment_offset", 1),
    # keepalive: 7, ike: 6
    ("keepalive", 4), ("keepalive_padded", 3), ("ike_marker", 3), ("ike_500", 3),
    # policy: 5, ttl_expired: 3
    ("policy_neighbour", 2), ("policy_other_tunnel", 3), ("ttl_1", 2), ("ttl_0", 1),
    # bad_padding: 4, bad_inner: 5, unsupported: 2
    ("bad_pad_bytes", 2), ("bad_pad_len", 2), ("nh_17", 2), ("nh_6", 1),
    ("inner_not_ipv4", 1), ("inner_truncated", 1), ("inner_ipv6", 2),
    # valid special cases
    ("direct_128", 1), ("direct_256", 1), ("direct_esn_rolled", 1), ("rebind", 2),
    ("eth_trailer", 2), ("inner_options", 3),
]
VALID_SPECIAL = {"direct_128", "direct_256", "direct_esn_rolled", "rebind",
                 "eth_trailer", "inner_options"}


def emit(tr, kind, tun, other, rng):
    """One frame of the given kind for tunnel tun (None if not possible now)."""
    simple = {
        "tampered_icv": tr.tampered_icv, "tampered_ciphertext": tr.tampered_ciphertext,
        "tampered_seq": tr.tampered_seq, "wrong_key": tr.wrong_key,
        "wrong_esn_hi": tr.wrong_esn_hi, "replay_copy": tr.replay_copy,
        "too_old": tr.too_old, "truncated_esp": tr.truncated_esp,
        "truncated_ip": tr.truncated_ip, "bad_ip_checksum": tr.bad_ip_checksum,
        "udp_len_too_long": tr.udp_len_too_long, "ip_len_too_long": tr.ip_len_too_long,
        "ihl_too_small": tr.ihl_too_small, "udp_other_port": tr.udp_other_port,
        "tcp_4500": tr.tcp_4500, "not_our_address": tr.not_our_address,
        "fragment_mf": tr.fragment_mf, "fragment_offset": tr.fragment_offset,
        "keepalive": tr.keepalive, "ike_marker": tr.ike_marker, "ike_500": tr.ike_500,
        "policy_neighbour": tr.policy_violation, "bad_pad_bytes": tr.bad_pad_bytes,
        "bad_pad_len": tr.bad_pad_len, "inner_not_ipv4": tr.inner_not_ipv4,
        "inner_truncated": tr.inner_truncated, "inner_ipv6": tr.inner_ipv6,
    }
    if kind in simple:
        return simple[kind](tun)
    if kind == "unknown_spi":
        return tr.unknown_spi()
    if kind == "garbage_ip":
        return tr.garbage_ip()
    if kind == "garbage_not_ip":
        return tr.garbage_not_ip()
    if kind == "runt":
        return tr.runt()
    if kind == "keepalive_padded":
        return tr.keepalive(tun, pad_frame=True)
    if kind == "policy_other_tunnel":
        return tr.policy_violation(tun, other)
    if kind == "ttl_1":
        return tr.ttl_expired(tun, 1)
    if kind == "ttl_0":
        return tr.ttl_expired(tun, 0)
    if kind == "nh_17":
        return tr.wrong_next_header(tun, 17)
    if kind == "nh_6":
        return tr.wrong_next_header(tun, 6)
    if kind == "direct_128":
        return tr.valid(tun, via="direct") if tun.algorithm == "aes-gcm-128" and not tun.esn else None
    if kind == "direct_256":
        return tr.valid(tun, via="direct") if tun.algorithm == "aes-gcm-256" and not tun.esn else None
    if kind == "direct_esn_rolled":
        return tr.valid(tun, via="direct") if tun.esn and tun.next_seq > 1 << 32 else None
    if kind == "rebind":
        return tr.valid(tun, src="198.51.100.%d" % rng.randrange(100, 200),
                        sport=rng.randrange(1024, 65536),
                        desc="valid from a new NAT mapping (SA found by SPI only)")
    if kind == "eth_trailer":
        return tr.valid(tun, trailer=rng.randbytes(4),
                        desc="valid, 4 bytes after the IPv4 packet in the frame")
    if kind == "inner_options":
        return tr.valid(tun, options=True, length=rng.randrange(32, 600),
                        desc="valid, inner IPv4 with options (IHL 6)")
    raise KeyError(kind)


def build(rng):
    gw = nt.Gateway()
    tunnels = nt.make_tunnels(rng, N_TUNNELS + 1)
    active, idle = tunnels[:-1], tunnels[-1]
    tr = nt.Traffic(gw, tunnels, REPLAY_WINDOW, rng)
    weights = [rng.choice((1, 1, 2, 4)) for _ in active]

    events = ["valid"] * N_VALID + [k for k, n in HOSTILE for _ in range(n)]
    rng.shuffle(events)
    # Start with some valid traffic so that replays have something to copy.
    events = ["valid"] * 40 + events[40:] + [e for e in events[:40] if e != "valid"]
    pending = []
    emitted = {}
    for ev in events:
        if ev == "valid":
            todo, pending = [ev] + pending, []
        else:
            todo = [ev]
        for kind in todo:
            if kind == "valid":
                for _ in range(50):
                    if tr.valid(rng.choices(active, weights)[0]) is not None:
                        break
                else:
                    raise RuntimeError("test bug: no tunnel can take a valid packet")
                continue
            for _ in range(30):
                tun, other = rng.sample(active, 2)
                f = emit(tr, kind, tun, other, rng)
                if f is not None:
                    emitted[kind] = emitted.get(kind, 0) + 1
                    break
            else:
                pending.append(kind)     # retry after the next valid packet
    # Whatever still waits (e.g. an ESN tunnel not rolled over yet): push valid
    # traffic until it can go.
    for _ in range(2000):
        if not pending:
            break
        kind = pending.pop(0)
        tun, other = rng.sample(active, 2)
        f = emit(tr, kind, tun, other, rng)
        if f is None:
            pending.append(kind)
            tr.valid(tun)
        else:
            emitted[kind] = emitted.get(kind, 0) + 1
    want = dict(HOSTILE)
    if emitted != want or pending:
        raise RuntimeError("test bug: emitted %s, wanted %s" % (emitted, want))
    return gw, tr, idle


def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    gw, tr, idle = build(rng)
    exp = tr.expected_drops()
    rolled = sum(1 for t in tr.tunnels if t.esn and t.next_seq > 1 << 32)
    sizes = [len(f.data) for f in tr.frames if f.verdict == nt.FORWARD]
    print("traffic: %d frames, %d to forward (outer %d..%d B), %d tunnels (%d ESN rolled "
          "over 2^32), %d peers behind 198.51.100.25; drops %s"
          % (len(tr.frames), len(tr.expected_out()), min(sizes), max(sizes),
             len(tr.tunnels), rolled,
             sum(1 for t in tr.tunnels if t.remote == "198.51.100.25"),
             {k: v for k, v in exp.items() if v}), flush=True)
    ck.check(rolled >= 3 and len(tr.tunnels) - 1 >= 40 and sum(
        1 for f in tr.frames if f.verdict == nt.FORWARD) >= 1900,
        "inbound: traffic covers >= 40 tunnels, >= 3 ESN rollovers, >= 1900 valid packets")
    if not h.self_check(ck, "inbound", tr) or not h.gateway_present(ck):
        return ck.finish()
    wd = h.make_workdir("inbound")
    cfg = nt.config_text(gw, tr.tunnels, REPLAY_WINDOW,
                         comment="test_inbound.py: %d tunnels, %s is idle" % (
                             len(tr.tunnels), idle.name))
    failed = ck.failed
    run = h.run_gateway(wd, cfg, [f.data for f in tr.frames], timeout=TIMEOUT)
    h.check_all(ck, "inbound", gw, tr, run, TIMEOUT, idle=(idle.name,))
    h.finish_workdir(ck, wd, failed)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
