#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""NAT traversal through a real NAT: 50 clients behind one Linux masquerade.

Four network namespaces of this run (natt_live.py deletes them, also those of
a killed earlier run):

  clients             nat (masquerade)         gw                         inside
  cl0 10.0.0.10-60 --- ni0 10.0.0.1
                       no0 198.51.100.1 ------ vo0  DPDK port 0, outside,
                                                    198.51.100.2, next_hop
                                                    "198.51.100.1" (ARP)
                                               <tap>0  port 0's TAP:
                                                    198.51.100.2/24, UDP 500
                                                    and 4500 listeners ("IKE")
                                               vi0  DPDK port 1, inside, ---- vi1 10.10.0.2
                                                    10.10.0.1, next_hop_mac     UDP echo :7,
                                                    = vi1's MAC                 kernel ICMP echo

Client k is tunnel c-k (inner address 10.50.0.k): a UDP socket bound to
10.0.0.(9+k):4500 in the clients namespace that sends ESP built by scapy
(natt_traffic.scapy_esp) to 198.51.100.2:4500 and decrypts what comes back
with scapy under the tunnel's outbound SA. Every tunnel is configured with
remote 198.51.100.1:4500: the gateway has to learn each real NAT-mapped port
from authenticated packets (nat_mapping_change "follow"). The NAT's own
table (conntrack -L) says which public port each client really has.

Checks (numbered as in issue 6, "Tested through a real NAT"):
  1. tunnels up through the NAT: UDP and ICMP echo of every client reach the
     inside namespace decrypted and the replies come back to that client,
     sealed under its outbound SA; 50 distinct public ports on 198.51.100.1;
     the gateway's per-tunnel remote is 198.51.100.1:<mapped port>; no client
     ever gets another tunnel's ESP.
  2. mapping changes with "follow": conntrack -F plus `masquerade random`
     (client 10; every other client then gets a new mapping too when it
     next sends), then client 20 rebinding to source port 4501 with its old
     conntrack entry left in place (so a reply sent to the old mapping would
     be seen at the old socket, not lost): the next reply arrives at the new
     mapping, a NAT_MAPPING event (marked followed) is logged, the other
     clients keep working, and after the rebind no other mapping moved.
     At the end, per-tunnel mapping_changes / prev_remote and the counters
     nat_mapping_changes / nat_mapping_followed match the NAT's history.
     2h/2i: a 51st client whose tunnel is pinned (remote 198.51.100.1:4999):
     its packets are delivered and the move reported, outbound stays put.
  3. a forged packet (client 30's SPI, the next sequence number, garbage
     ciphertext/ICV), a replayed genuine packet and an older never-seen
     genuine packet (authentic, but not the highest sequence number), each
     from a new source port, never move client 30's mapping: a packet from
     the inside (nothing client 30 sent) still reaches its real socket, and
     nothing reaches the forger's.
     (2e: the same for a packet from the old mapping after a rebind.)
  4. keepalives: client NAT-keepalives are attributed to their tunnels (one
     from a mapping no tunnel has to none); tunnel c-2 (keepalive = 2) gets
     0xFF from 198.51.100.2:4500 about every 2 s through the NAT while
     nothing else goes out to it; keepalives_sent counts them.
  5. exception path (--tap): the TAP has the port's MAC; IKE on 500 and
     behind the non-ESP marker on 4500 reaches listeners in the gw namespace
     and their replies reach the client through the NAT (the host resolves
     the NAT by ARP through the TAP); a ping to 198.51.100.2 is answered by
     the gw namespace's kernel; ESP never reaches the 4500 listener; a burst
     over dataplane.exception_rate is cut to the rate (exception_limited).
  6. accounting of the final --stats-json: rx + fragments_out +
     icmp_too_big_sent + keepalives_sent + arp_requests = tx + drops +
     fragmented; no drops but the ones caused on purpose; per-tunnel in/out
     packets as the clients counted them; the gateway exits 0 on SIGTERM
     with no sanitizer report.

Usage: /usr/bin/python3 tests/integration/test_nat.py
Environment: NATT_BUILD, NATT_SEED, NATT_KEEP (see natt_harness.py / natt_live.py).
"""

import json
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_live as nl          # noqa: E402
import natt_traffic as nt       # noqa: E402
from scapy.layers.inet import ICMP, IP, UDP     # noqa: E402
from scapy.packet import Raw    # noqa: E402

N_CLIENTS = 50
NAT_PUB = "198.51.100.1"
GW_OUT = "198.51.100.2"
GW_IN = "10.10.0.1"
RESPONDER = "10.10.0.2"
WINDOW = 1024
MAC = {"cl0": "02:4e:41:00:02:0a", "ni0": "02:4e:41:00:02:01",
       "no0": "02:4e:41:00:00:fe", "vo0": "02:4e:41:00:00:01",
       "vi0": "02:4e:41:00:01:01", "vi1": "02:4e:41:00:01:fe"}
KA_TUNNEL, KA_S = 2, 2          # the tunnel with `keepalive = 2`
MOVE_FLUSH = 10                 # conntrack -F + masquerade random
MOVE_REBIND = 20                # rebinds to source port 4501
VICTIM = 30                     # forged / replayed / out-of-order from a new port
KA_SENDERS = (3, 4, 5, 6, 7)    # send NAT-keepalives
KA_PER_SENDER = 3
KA_STRANGER = 8                 # sends one keepalive from an unknown mapping
IKE_CLIENTS = (41, 42, 43, 44, 45)
PINNED = N_CLIENTS + 1          # one more client, its tunnel pinned (2h, 2i)
PIN_PORT = 4999                 # its configured remote_port: no client has it
EXC_RATE = 50                   # dataplane.exception_rate: punts per second per worker
EXC_BURST = 200                 # IKE datagrams sent at once at the end (5g)
MARKER = b"\0\0\0\0"            # RFC 3948 2.2 non-ESP marker
WAIT = 6.0                      # seconds a reply may take over the af_packet path
ERROR_FREE = ("keepalive", "ike")   # drop reasons that are not errors
N_CHECKS = 41                   # every check of a full run (a skipped one is a test bug)

# Every UDP socket of the test sends checksum 0 (SO_NO_CHECK; valid for IPv4,
# and what RFC 3948 2.1 asks of ESP-in-UDP senders): with checksum offload on
# a veth (no ethtool to turn it off) the kernel would otherwise leave partial
# checksums that only a kernel on the same host understands.
SO_NO_CHECK = 11

ECHO_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
s.bind((sys.argv[1], 7))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(65535)
    print("%s %d %s" % (a[0], a[1], d.hex()), flush=True)
    s.sendto(d, a)
"""


def run(cmd, check=True, timeout=30):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(cmd), p.returncode,
                                                       (p.stderr or p.stdout).strip()[-400:]))
    return p


def nsrun(ns, *cmd, check=True, timeout=30):
    return run(["ip", "netns", "exec", ns] + list(cmd), check=check, timeout=timeout)


# ---------------------------------------------------------------- topology

class NatLive(nl.Live):
    """natt_live.Live on the four-namespace topology of this file: the
    gateway's namespace is self.ns; self.cl, self.nat, self.ins the others."""

    masquerade = 'ip saddr 10.0.0.0/24 oifname "no0" masquerade'

    def setup_links(self):
        self.cl = self.add_netns("cl")
        self.nat = self.add_netns("nat")
        self.ins = self.add_netns("in")
        for ns_a, a, ns_b, b in ((self.cl, "cl0", self.nat, "ni0"),
                                 (self.nat, "no0", self.ns, "vo0"),
                                 (self.ns, "vi0", self.ins, "vi1")):
            run(["ip", "-n", ns_a, "link", "add", "name", a, "address", MAC[a], "type", "veth",
                 "peer", "name", b, "address", MAC[b], "netns", ns_b])
            for ns, dev in ((ns_a, a), (ns_b, b)):
                # full checksums where ethtool is there (see SO_NO_CHECK)
                nsrun(ns, "ethtool", "-K", dev, "gro", "off", "gso", "off", "tso", "off",
                      "tx", "off", "rx", "off", check=False)
        for ns in (self.cl, self.nat, self.ns, self.ins):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self._gw_ns()
        self._nat_ns()
        self._end_ns()

    def _gw_ns(self):
        """DPDK's devices: no kernel ARP, and the kernel never takes in what
        arrives on them (198.51.100.2 is local on the TAP, and without this
        the kernel would deliver ESP and IKE from vo0 to the listeners
        itself). The netdev ingress hook runs after the packet taps, so
        net_af_packet still gets every frame."""
        for dev in self.port_ifaces:
            self.ip("link", "set", "dev", dev, "arp", "off", "multicast", "off", "up")
        self.nft(self.ns, "table netdev natt_guard {\n%s}\n" % "".join(
            '  chain %s { type filter hook ingress device "%s" priority 0; policy drop; }\n'
            % (d, d) for d in self.port_ifaces))

    def _nat_ns(self):
        """A home router: forwarding, masquerade, long UDP timeouts (no
        mapping expires by itself during the test), and silence towards
        packets for mappings it does not have (no ICMP port unreachable)."""
        ip = ["ip", "-n", self.nat]
        run(ip + ["addr", "add", "10.0.0.1/24", "dev", "ni0"])
        run(ip + ["addr", "add", NAT_PUB + "/24", "dev", "no0"])
        for dev in ("ni0", "no0"):
            run(ip + ["link", "set", "dev", dev, "multicast", "off", "up"])
        nsrun(self.nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.nft(self.nat, "table ip natt {\n"
                 "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
                 "    %s; }\n"
                 "  chain out { type filter hook output priority 0; policy accept;\n"
                 "    icmp type destination-unreachable drop; }\n"
                 "}\n" % self.masquerade)
        nsrun(self.nat, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout=600",
              "net.netfilter.nf_conntrack_udp_timeout_stream=600")

    def _end_ns(self):
        ip = ["ip", "-n", self.cl]
        batch = os.path.join(self.workdir, "clients.ip")
        with open(batch, "w") as f:
            for k in range(1, PINNED + 1):
                f.write("addr add %s/24 dev cl0\n" % client_addr(k))
        run(ip + ["-batch", batch])
        run(ip + ["link", "set", "dev", "cl0", "multicast", "off", "up"])
        run(ip + ["route", "add", "default", "via", "10.0.0.1"])
        ip = ["ip", "-n", self.ins]
        run(ip + ["addr", "add", RESPONDER + "/24", "dev", "vi1"])
        run(ip + ["link", "set", "dev", "vi1", "multicast", "off", "up"])
        run(ip + ["route", "add", "10.50.0.0/16", "via", GW_IN])
        # the inside next hop is static both ways (next_hop_mac at the gateway)
        run(ip + ["neigh", "replace", GW_IN, "lladdr", MAC["vi0"], "dev", "vi1",
                  "nud", "permanent"])

    def nft(self, ns, ruleset):
        path = os.path.join(self.workdir, "%s.nft" % ns)
        with open(path, "w") as f:
            f.write(ruleset)
        nsrun(ns, "nft", "-f", path)

    def set_masquerade(self, rule):
        nsrun(self.nat, "nft", "flush", "chain", "ip", "natt", "post")
        nsrun(self.nat, "nft", "add", "rule", "ip", "natt", "post", *rule.split())

    def conntrack(self):
        """The NAT's UDP flows: [(orig (src, sport, dst, dport), public (addr, port))]."""
        p = nsrun(self.nat, "conntrack", "-L", "-p", "udp", check=False)
        flows = []
        for line in p.stdout.splitlines():
            kv = re.findall(r"\b(src|dst|sport|dport)=(\S+)", line)
            if len(kv) < 8:
                continue
            o, r = dict(kv[:4]), dict(kv[4:8])
            flows.append(((o["src"], int(o["sport"]), o["dst"], int(o["dport"])),
                          (r["dst"], int(r["dport"]))))
        return flows

    def mapping(self, src, sport, dport=4500, flows=None):
        """Public (addr, port) the NAT gave src:sport -> 198.51.100.2:dport
        (in flows, one conntrack() taken before, or now)."""
        for o, pub in self.conntrack() if flows is None else flows:
            if o == (src, sport, GW_OUT, dport):
                return pub
        return None


def mappings(clients):
    """{client name: its NAT mapping}, from one look at the NAT's table."""
    flows = clients[0].L.conntrack()
    return {c.name: c.mapping(flows=flows) for c in clients}


def icmp_counters(ns):
    """The kernel's ICMP counters in ns (/proc/net/snmp): {"InEchos": n, ...}."""
    rows = [l.split()[1:] for l in nsrun(ns, "cat", "/proc/net/snmp").stdout.splitlines()
            if l.startswith("Icmp:")]
    return dict(zip(rows[0], map(int, rows[1]))) if len(rows) >= 2 else {}


def client_addr(k):
    return "10.0.0.%d" % (9 + k)


def inner_addr(k):
    return "10.50.0.%d" % k


# ---------------------------------------------------------------- sockets

class Endpoint:
    """A UDP socket in a namespace and everything it received (the Net
    thread reads it); respond(data) may return a reply to the sender."""

    def __init__(self, net, ns, addr, port, label, respond=None, esp=True):
        with nl.in_netns(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        self.sock.bind((addr, port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.label = label
        self.respond = respond
        self.esp = esp          # ESP may arrive here (a client's NAT-T socket)
        self.inbox = []         # (monotonic time, (addr, port), bytes)
        net.add(self)

    def send(self, data, dst=(GW_OUT, 4500)):
        self.sock.sendto(data, dst)

    def mark(self):
        return len(self.inbox)

    def since(self, mark):
        return self.inbox[mark:]


class Net:
    """One thread that reads every Endpoint (and answers for the listeners)."""

    def __init__(self):
        self.eps = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def add(self, ep):
        with self.lock:
            self.eps.append(ep)

    def _loop(self):
        while not self.stop_ev.is_set():
            with self.lock:
                by_sock = {ep.sock: ep for ep in self.eps}
            if not by_sock:
                time.sleep(0.02)
                continue
            ready, _, _ = select.select(list(by_sock), [], [], 0.02)
            for s in ready:
                ep = by_sock[s]
                for data, src in nl.drain(s):
                    ep.inbox.append((time.monotonic(), src, data))
                    reply = ep.respond(data) if ep.respond else None
                    if reply is not None:
                        try:
                            s.sendto(reply, src)
                        except OSError:
                            pass

    def close(self):
        self.stop_ev.set()
        self.thread.join(timeout=2)
        with self.lock:
            for ep in self.eps:
                ep.sock.close()


def wait_until(pred, timeout, step=0.02):
    t0 = time.monotonic()
    while True:
        if pred():
            return True
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(step)


# ---------------------------------------------------------------- clients

class Client:
    """Tunnel c-k's peer behind the NAT."""

    def __init__(self, net, L, k, tun):
        self.k = k
        self.tun = tun
        self.name = tun.name
        self.addr = client_addr(k)
        self.inner = inner_addr(k)
        self.net, self.L = net, L
        self.ep = Endpoint(net, L.cl, self.addr, 4500, "%s:4500" % tun.name)
        self.eps = [self.ep]        # every socket of this client (the forger's too)
        self.out_sa = tun.out_sa()
        self.opened = {}            # datagram -> open() result
        self.sent = []              # genuine ESP payloads, in order
        self.genuine = 0            # the gateway must authenticate these
        self.n = 0

    def endpoint(self, port, label, esp=True):
        ep = Endpoint(self.net, self.L.cl, self.addr, port, label, esp=esp)
        self.eps.append(ep)
        return ep

    def esp(self, ip, sqn=None):
        """ESP (SPI..ICV) of inner packet ip under the tunnel's inbound SA."""
        sqn = self.tun.take_seq() if sqn is None else sqn
        return nt.scapy_esp(self.tun, sqn, ip, struct.pack("!Q", sqn))

    def udp_echo(self):
        self.n += 1
        load = ("%s udp %d" % (self.name, self.n)).encode()
        return IP(src=self.inner, dst=RESPONDER) / UDP(sport=20000 + self.k, dport=7) / Raw(load)

    def icmp_echo(self):
        self.n += 1
        load = ("%s icmp %d" % (self.name, self.n)).encode()
        return IP(src=self.inner, dst=RESPONDER) / ICMP(type=8, id=self.k, seq=self.n) / Raw(load)

    def send(self, ip, ep=None, sqn=None):
        data = self.esp(ip, sqn)
        (ep or self.ep).send(data)
        self.sent.append(data)
        self.genuine += 1
        return data

    def mapping(self, ep=None, flows=None):
        return self.L.mapping(self.addr, (ep or self.ep).port, flows=flows)

    def open(self, data):
        """(inner scapy IP or None, problem) of an ESP datagram for us."""
        if data not in self.opened:
            self.opened[data] = self._open(data)
        return self.opened[data]

    def _open(self, data):
        if len(data) < nt.ESP_HDR + nt.GCM_IV + nt.GCM_ICV:
            return None, "%d-byte datagram %s" % (len(data), data[:16].hex())
        spi, seq = struct.unpack("!II", data[:8])
        if spi != self.tun.out_spi:
            return None, "ESP SPI 0x%08x seq %d is not %s's outbound SPI 0x%08x" % (
                spi, seq, self.name, self.tun.out_spi)
        try:
            return IP(nt.scapy_decrypt(self.tun, data, sa=self.out_sa)), None
        except Exception as e:      # scapy's IPSecIntegrityError, dissection
            return None, "SPI 0x%08x seq %d does not decrypt under the outbound SA (%s)" % (
                spi, seq, e)


def kind(data):
    if data == b"\xff":
        return "keepalive"
    if data[:4] == MARKER:
        return "ike"
    return "esp"


def reply_key(ip):
    """What identifies the reply to request ip (or ip itself for a packet
    from the inside): (proto, src, dst, a, b, payload)."""
    if UDP in ip:
        return ("udp", ip[IP].src, ip[IP].dst, ip[UDP].sport, ip[UDP].dport,
                bytes(ip[UDP].payload))
    return ("icmp", ip[IP].src, ip[IP].dst, ip[ICMP].id, ip[ICMP].seq, bytes(ip[ICMP].payload))


def expected_reply(ip):
    p, src, dst, a, b, load = reply_key(ip)
    return (p, dst, src, b, a, load) if p == "udp" else (p, dst, src, a, b, load)


def fmt_key(k):
    if k[0] == "udp":
        return "UDP %s:%d -> %s:%d %r" % (k[1], k[3], k[2], k[4], k[5])
    return "ICMP echo reply %s -> %s id %d seq %d %r" % k[1:]


def inner_key(ip):
    """reply_key of a decrypted packet (ICMP: echo replies only)."""
    if ICMP in ip and ip[ICMP].type != 0:
        return ("icmp-type-%d" % ip[ICMP].type, ip[IP].src, ip[IP].dst)
    if UDP not in ip and ICMP not in ip:
        return ("proto-%d" % ip[IP].proto, ip[IP].src, ip[IP].dst)
    return reply_key(ip)


class Round:
    """Expected inner packets per (client, endpoint), and what arrived."""

    def __init__(self):
        self.want = {}      # (client, endpoint) -> set of keys
        self.marks = {}     # endpoint -> inbox mark at the start

    def mark(self, clients):
        for c in clients:
            for ep in c.eps:
                self.marks.setdefault(ep, ep.mark())

    def expect(self, c, ep, key):
        self.marks.setdefault(ep, ep.mark())
        self.want.setdefault((c, ep), set()).add(key)

    def request(self, c, ip, ep=None):
        """Send ip from c (its ep); its reply must come back to the same socket."""
        ep = ep or c.ep
        self.expect(c, ep, expected_reply(ip))
        return c.send(ip, ep)

    def got(self, c, ep):
        """(keys decrypted, problems) of ESP that arrived at ep in this round."""
        keys, bad = set(), []
        for _, src, data in ep.since(self.marks.get(ep, 0)):
            if kind(data) != "esp":
                continue
            ip, why = c.open(data)
            if ip is None:
                bad.append("%s from %s:%d: %s" % (ep.label, src[0], src[1], why))
            else:
                keys.add(inner_key(ip))
        return keys, bad

    def done(self):
        return all(w <= self.got(c, ep)[0] for (c, ep), w in self.want.items())

    def wait(self, timeout=WAIT):
        wait_until(self.done, timeout, step=0.05)
        return self.report()

    def report(self):
        """{client name: [problem]} for every endpoint expected to receive."""
        out = {}
        for (c, ep), w in self.want.items():
            keys, bad = self.got(c, ep)
            miss = w - keys
            probs = list(bad)
            for m in sorted(miss, key=repr):
                probs.append("%s: no %s" % (ep.label, fmt_key(m)))
            if probs:
                out.setdefault(c.name, []).extend(probs)
        return out


def summary(problems, most=8):
    items = sorted(problems.items(), key=lambda kv: int(kv[0].split("-")[1]))
    s = "; ".join("%s: %s" % (n, " | ".join(p)) for n, p in items[:most])
    if len(items) > most:
        s += "; ... and %d more client(s)" % (len(items) - most)
    return s


# ---------------------------------------------------------------- gateway views

def show(L, *what, timeout=5.0, want=None):
    """natt-control show WHAT --json, retried until want(result) (bounded)."""
    t0 = time.monotonic()
    while True:
        res, err = L.show_json(*what)
        if res is not None and (want is None or want(res)):
            return res, err
        if time.monotonic() - t0 > timeout:
            return res, err
        time.sleep(0.3)


def tunnels_by_name(res):
    """show tunnels --json -> {name: entry} (whatever the top-level shape)."""
    if isinstance(res, dict):
        res = res.get("tunnels", res)
    if isinstance(res, dict):
        return {k: v for k, v in res.items() if isinstance(v, dict)}
    return {t.get("name"): t for t in res or [] if isinstance(t, dict)}


def remote_of(entry, key="remote"):
    """(addr, port) of a tunnel entry's key: "a.b.c.d:port" (--stats-json),
    key_addr / key_port (show tunnels --json) or {"addr", "port"}."""
    if entry is None:
        return None
    if key + "_addr" in entry:
        return (entry.get(key + "_addr"), entry.get(key + "_port"))
    v = entry.get(key)
    if isinstance(v, dict):
        return (v.get("addr"), v.get("port"))
    a, _, p = str(v or "").rpartition(":")
    return (a, int(p)) if p.isdigit() else None


def mapping_events(L, name, want_addr=None, timeout=5.0):
    """NAT_MAPPING events of tunnel name (show events --json)."""
    def pick(res):
        return [e for e in (res or {}).get("events", [])
                if e.get("type") == "nat_mapping" and e.get("tunnel") == name]

    def ok(res):
        return any(e.get("addr") == want_addr[0] and e.get("port") == want_addr[1]
                   for e in pick(res)) if want_addr else bool(pick(res))
    res, err = show(L, "events", timeout=timeout, want=ok)
    return pick(res), err


def fmt_map(m):
    return "%s:%d" % m if m else "none"


def diag(L):
    """What the gateway and the NAT say, for a failure message."""
    parts = []
    res, err = L.show_json("stats")
    if res is None:
        parts.append("show stats: %s" % err)
    else:
        c = res.get("counters", res)
        keys = ("rx_packets", "tx_packets", "decrypted", "encrypted", "exception_punted",
                "host_tx", "arp_requests", "arp_replies")
        parts.append("gateway " + " ".join("%s=%s" % (k, c.get(k)) for k in keys if k in c))
        d = res.get("drops", {})
        parts.append("drops " + (" ".join("%s=%s" % kv for kv in d.items() if kv[1]) or "none"))
    p = run(["ip", "-n", L.nat, "neigh", "show", "dev", "no0"], check=False)
    parts.append("NAT neighbours on no0: %s" % (p.stdout.strip().replace("\n", "; ") or "none"))
    return "; ".join(parts)


# ---------------------------------------------------------------- the phases

def start(rng):
    tunnels, spis = [], set()
    for k in range(1, PINNED + 1):
        algo = "aes-gcm-128" if k % 2 else "aes-gcm-256"
        kl = 16 if k % 2 else 32
        t = nt.Tunnel("c-%d" % k, NAT_PUB, 4500, algo, False, nt.unique_spi(rng, spis),
                      rng.randbytes(kl + 4), nt.unique_spi(rng, spis), rng.randbytes(kl + 4),
                      [inner_addr(k) + "/32"], ["10.10.0.0/24"], 1)
        if k % 2 == 0:
            t.extra["nat_mapping_change"] = '"follow"'      # odd ones: the default
        if k == KA_TUNNEL:
            t.extra["keepalive"] = KA_S
        if k == PINNED:
            t.remote_port = PIN_PORT
            t.extra["nat_mapping_change"] = '"pin"'
        tunnels.append(t)
    gw = nt.Gateway(outside_addr=GW_OUT, inside_addr=GW_IN, outside_next_hop_ip=NAT_PUB,
                    inside_next_hop=MAC["vi1"])
    cfg = nt.config_text(gw, tunnels, WINDOW, exception_rate=EXC_RATE,
                         comment="test_nat: 50 clients behind one NAT")
    tap = "nt%s" % os.urandom(2).hex()
    L = NatLive("nat", tap=tap)
    if not L.natt_gw_supports("--tap"):
        L.tap = None
    L.tunnels = tunnels
    return L, cfg


def setup_tap(ck, L):
    """5a: the TAP of port 0 exists with the port's MAC; give it the
    outside address, as an IKE daemon's host would."""
    if L.tap is None:
        ck.check(False, "5a exception path: TAP of port 0",
                 "scripts/natt-gw has no --tap option (not merged yet): no exception path")
        return None
    dev = L.tap + "0"
    ok = wait_until(lambda: L.ip("link", "show", "dev", dev, check=False).returncode == 0, 10,
                    step=0.2)
    if not ok:
        links = L.ip("-br", "link", check=False).stdout.strip().replace("\n", "; ")
        ck.check(False, "5a exception path: TAP %s in the gw namespace" % dev,
                 "not there 10 s after start; links: %s" % links)
        return None
    info = json.loads(L.ip("-j", "link", "show", "dev", dev).stdout)[0]
    ck.check(info.get("address") == MAC["vo0"],
             "5a exception path: TAP %s in the gw namespace has port 0's MAC" % dev,
             "%s address %s, port 0 (vo0) %s" % (dev, info.get("address"), MAC["vo0"]))
    L.ip("addr", "add", GW_OUT + "/24", "dev", dev)
    L.ip("link", "set", "dev", dev, "up")
    nsrun(L.ns, "ethtool", "-K", dev, "tx", "off", check=False)
    return dev


def ike_listeners(net, L):
    """UDP 500 and 4500 on 198.51.100.2 in the gw namespace, answering like an
    IKE responder would: the request back behind "IKE-R:" (and the marker)."""
    def on500(data):
        return b"IKE-R:" + data

    def on4500(data):
        return MARKER + b"IKE-R:" + data[4:] if data[:4] == MARKER else None
    return (Endpoint(net, L.ns, GW_OUT, 500, "listener:500", on500),
            Endpoint(net, L.ns, GW_OUT, 4500, "listener:4500", on4500))


def start_responder(L):
    log = os.path.join(L.workdir, "echo.log")
    f = open(log, "w")
    p = subprocess.Popen(["ip", "netns", "exec", L.ins, "/usr/bin/python3", "-u", "-c",
                          ECHO_SERVER, RESPONDER], stdin=subprocess.DEVNULL, stdout=f,
                         stderr=subprocess.STDOUT)
    f.close()

    def lines():
        with open(log) as g:
            return g.read().splitlines()
    if not wait_until(lambda: "ready" in lines(), 10, step=0.1):
        raise RuntimeError("UDP echo responder did not start: %s" % lines())
    return p, lines


def phase1(ck, L, clients, echo_lines):
    """1: every client's UDP and ICMP echo through the NAT, and back."""
    # the gateway resolves its next hop by ARP: the NAT has then seen it
    arp = wait_until(lambda: "lladdr" in run(["ip", "-n", L.nat, "neigh", "show", GW_OUT],
                                             check=False).stdout, 3, step=0.1)
    print("     NAT neighbour entry for %s before traffic: %s" % (GW_OUT, "yes" if arp else
                                                                 "no (gateway did not ARP)"))
    r = Round()
    r.mark(clients)
    # client 1 first (the path warms up: ARP both ways), then everyone
    for i, c in enumerate(clients):
        r.request(c, c.udp_echo())
        r.request(c, c.icmp_echo())
        if i == 0:
            r.wait()
    probs = r.wait()
    heard = {}
    for line in echo_lines()[1:]:
        src, _, hexdata = line.split(" ", 2)
        heard.setdefault(src, []).append(bytes.fromhex(hexdata))
    missing = [c.name for c in clients
               if heard.get(c.inner, []).count(("%s udp 1" % c.name).encode()) != 1]
    icmp = icmp_counters(L.ins)
    ck.check(not missing and len(heard) == N_CLIENTS and icmp.get("InEchos") == N_CLIENTS,
             "1a every client's UDP and ICMP echo request arrives decrypted in the inside "
             "namespace (UDP responder's log, the kernel's IcmpInEchos)",
             "responder heard %d inner sources%s; inside kernel IcmpInEchos %s OutEchoReps %s"
             % (len(heard), "; not heard exactly once: %s" % missing[:10] if missing else "",
                icmp.get("InEchos"), icmp.get("OutEchoReps")))
    ck.check(not probs, "1b every client gets its UDP and ICMP echo reply back through "
             "the NAT, sealed under its outbound SA, inner reply correct",
             summary(probs) + ("; " + diag(L) if probs else "") if probs else
             "%d replies decrypted by scapy" % (2 * N_CLIENTS))
    maps = mappings(clients)
    ports = {m[1] for m in maps.values() if m and m[0] == NAT_PUB}
    ck.check(len(ports) == N_CLIENTS and all(maps.values()),
             "1c the NAT maps the 50 clients (source port 4500 each) to 50 distinct ports "
             "of %s (conntrack)" % NAT_PUB,
             "%d distinct public ports; without a mapping: %s; e.g. %s" % (
                 len(ports), [n for n, m in maps.items() if not m],
                 ", ".join("%s %s" % (n, fmt_map(m)) for n, m in list(maps.items())[:4])))
    check_remotes(ck, L, clients, "1d", "after the first exchange")


def check_remotes(ck, L, clients, tag, when):
    """The gateway's live view: each tunnel's remote is its NAT mapping."""
    maps = mappings(clients)
    res, err = show(L, "tunnels")
    tv = tunnels_by_name(res)
    wrong = ["%s gateway %s NAT %s" % (n, fmt_map(remote_of(tv.get(n))), fmt_map(m))
             for n, m in maps.items() if remote_of(tv.get(n)) != m]
    return ck.check(res is not None and not wrong,
                    "%s the gateway's per-tunnel remote is %s:<the NAT's mapped port> for every "
                    "tunnel %s (show tunnels)" % (tag, NAT_PUB, when),
                    ("show tunnels: %s" % err) if res is None else
                    ("%d wrong: %s" % (len(wrong), "; ".join(wrong[:8])) if wrong else
                     "%d tunnels match conntrack" % len(maps)))


def follow_check(ck, L, tag, c, ep, old, what):
    """c sends from ep after its mapping moved: reply at the new mapping and
    an event old -> new."""
    r = Round()
    r.mark([c])
    r.request(c, c.udp_echo(), ep)
    probs = r.wait()
    new = c.mapping(ep)
    ck.check(not probs and new is not None and new != old,
             "%s %s: %s's next reply arrives at its new mapping" % (tag, what, c.name),
             "mapping %s -> %s; %s" % (fmt_map(old), fmt_map(new),
                                       summary(probs) if probs else "reply decrypted"))
    evs, err = mapping_events(L, c.name, new)
    hit = [e for e in evs if (e.get("addr"), e.get("port")) == new and
           (e.get("old_addr"), e.get("old_port")) == old]
    ck.check(bool(hit) and all((e.get("value") or 0) & 1 for e in hit),
             "%s the gateway logs NAT_MAPPING %s -> %s for %s, marked followed"
             % (tag, fmt_map(old), fmt_map(new), c.name),
             "events of %s: %s%s" % (c.name, [("%s:%s" % (e.get("old_addr"), e.get("old_port")),
                                               "%s:%s" % (e.get("addr"), e.get("port")),
                                               e.get("value")) for e in evs],
                                     (" (show events: %s)" % err) if err else ""))
    return new


def everyone_else(ck, clients, skip, tag, what):
    r = Round()
    r.mark(clients)
    for c in clients:
        if c.k not in skip:
            r.request(c, c.udp_echo())
    probs = r.wait()
    return ck.check(not probs, "%s the other %d clients keep working %s: each reply arrives "
                    "at its own mapping" % (tag, len(clients) - len(skip), what),
                    summary(probs) if probs else "all replies decrypted")


def phase2(ck, L, clients, hist):
    """2: conntrack -F + masquerade random (client 10); rebind (client 20)."""
    a, b = clients[MOVE_FLUSH - 1], clients[MOVE_REBIND - 1]
    old = a.mapping()
    nsrun(L.nat, "conntrack", "-F", check=False)
    L.set_masquerade(L.masquerade + " random")
    follow_check(ck, L, "2a", a, a.ep, old, "conntrack -F and masquerade random")
    everyone_else(ck, clients, (MOVE_FLUSH,), "2c", "after the NAT forgot every mapping")
    record(hist, clients)
    check_remotes(ck, L, clients, "2c", "after the flush")
    before = mappings(clients)
    old_ep, old = b.ep, b.mapping()
    late_sqn, late = b.tun.take_seq(), b.udp_echo()     # sent before the move, see 2e
    b.ep = b.endpoint(4501, "%s:4501" % b.name)
    m_old = old_ep.mark()
    follow_check(ck, L, "2b", b, b.ep, old, "rebind to source port 4501")
    stray = [d for _, _, d in old_ep.since(m_old) if kind(d) == "esp"]
    ck.check(not stray, "2b %s's old socket (port 4500) gets nothing after the move" % b.name,
             "%d ESP datagram(s) at the old socket" % len(stray))
    # 2e: a packet the peer sent from its old port just before it moved,
    # delivered after the move: authentic and fresh, but not the newest
    case(ck, L, b, old_ep, b.mapping(), "2e", "a packet of %s from its old mapping, older "
         "(sequence %d) than the one that moved it, arriving late, is delivered"
         % (b.name, late_sqn), "in_packets", 1, lambda: b.send(late, old_ep, late_sqn),
         also=[expected_reply(late)])
    everyone_else(ck, clients, (MOVE_REBIND,), "2d", "after %s moved" % b.name)
    after = mappings(clients)
    moved = [n for n in before if n != b.name and before[n] != after[n]]
    ck.check(not moved, "2d no other client's NAT mapping moved with %s's" % b.name,
             "moved: %s" % moved if moved else "49 mappings unchanged")
    record(hist, clients)
    check_remotes(ck, L, clients, "2d", "after the rebind")


def pin_phase(ck, L, p, echo_lines):
    """2h: a pinned tunnel (configured 198.51.100.1:4999, which no client
    has): its packet is delivered and the move reported, but outbound stays
    where the file says, so nothing comes back through the NAT."""
    m = p.ep.mark()
    req = p.udp_echo()
    p.send(req)
    load = bytes(req[UDP].payload)
    heard = wait_until(lambda: any(l.startswith(p.inner + " ") and
                                   l.endswith(load.hex()) for l in echo_lines()), WAIT)
    real = p.mapping()
    evs, err = mapping_events(L, p.name, real)
    ev = [e for e in evs if (e.get("addr"), e.get("port")) == real]
    time.sleep(0.5)         # time for a (wrong) reply to come back
    back = [d for _, _, d in p.ep.since(m)]
    tv, err2 = tunnel_view(L, p.name)
    ck.check(heard and ev and not (ev[0].get("value") or 0) & 1 and not back and
             remote_of(tv) == (NAT_PUB, PIN_PORT),
             "2h pinned tunnel %s (remote %s:%d): its packet from %s is delivered, the move is "
             "reported (NAT_MAPPING not marked followed), outbound stays at the configured "
             "peer, so no reply comes back" % (p.name, NAT_PUB, PIN_PORT, fmt_map(real)),
             "responder %s it; events %s; gateway remote %s; %d datagram(s) back at %s%s" % (
                 "heard" if heard else "did not hear",
                 [(e.get("old_port"), e.get("port"), e.get("value")) for e in evs],
                 fmt_map(remote_of(tv)), len(back), p.ep.label,
                 "".join(" (%s)" % e for e in (err, err2) if e)))
    return real


def record(hist, clients):
    """Append each client's current mapping to its history (changes only)."""
    for c, m in zip(clients, mappings(clients).values()):
        if m and hist[c.name][-1] != m:
            hist[c.name].append(m)


def probe(L, c, tag):
    """A packet from the inside to c (nothing c sent): where it lands is where
    the gateway thinks c is."""
    with nl.in_netns(L.ins):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        s.bind((RESPONDER, 0))
        load = ("probe %s %s" % (c.name, tag)).encode()
        s.sendto(load, (c.inner, 9))
        return ("udp", RESPONDER, c.inner, s.getsockname()[1], 9, load)
    finally:
        s.close()


def tunnel_view(L, name):
    res, err = show(L, "tunnels")
    return tunnels_by_name(res).get(name), err


def phase3(ck, L, clients):
    """3: forged, replayed and older packets from a new port move nothing."""
    v = clients[VICTIM - 1]
    forger = v.endpoint(4600, "forger %s:4600" % v.addr)
    real = v.mapping()
    # 3a: valid SPI, the next (highest) sequence number, garbage after it
    forged = struct.pack("!II", v.tun.in_spi, v.tun.next_seq & nt.M32) + os.urandom(8 + 48)
    case(ck, L, v, forger, real, "3a", "forged packet (SPI of %s, next sequence number, "
         "garbage ciphertext/ICV) from a new port" % v.name, "auth_failed", 1,
         lambda: forger.send(forged))
    # 3b: an exact copy of a genuine packet the gateway already took
    copy = v.sent[-1]
    case(ck, L, v, forger, real, "3b", "replayed genuine packet of %s from a new port"
         % v.name, "replay", 1, lambda: forger.send(copy))
    # 3c: genuine and never seen, but not the newest: sent before low + 1,
    # delivered late and from elsewhere
    low, early = v.tun.take_seq(), v.udp_echo()
    r = Round()
    r.mark([v])
    r.request(v, v.udp_echo())
    pre = r.wait()
    case(ck, L, v, forger, real, "3c", "an older never-seen genuine packet of %s (sequence "
         "%d, not the highest) from a new port is delivered" % (v.name, low), "in_packets", 1,
         lambda: v.send(early, forger, low), also=[expected_reply(early)], pre=pre)


def case(ck, L, v, other, real, tag, what, counter, n, send, also=(), pre=None):
    """send() gets a packet of v's tunnel to the gateway from another socket
    (other). Then counter moved by n, v's mapping stayed real, the replies in
    also and a packet from the inside reach v's socket, nothing reaches other."""
    base = tunnel_view(L, v.name)[0] or {}
    mark = other.mark()
    r = Round()
    r.mark([v])
    for k in also:
        r.expect(v, v.ep, k)
    send()
    time.sleep(0.3)
    r.expect(v, v.ep, probe(L, v, tag))
    probs = dict(pre or {})
    for name, p in r.wait().items():
        probs.setdefault(name, []).extend(p)
    after, err = tunnel_view(L, v.name)
    after = after or {}
    d = (after.get(counter) or 0) - (base.get(counter) or 0)
    fg = [x for _, _, x in other.since(mark) if kind(x) == "esp"]
    ck.check(d == n and remote_of(after) == real and not probs and not fg,
             "%s %s: %s +%d, the mapping stays %s, %sa packet from the inside reach %s only"
             % (tag, what, counter, n, fmt_map(real), "its reply and " if also else "",
                v.ep.label),
             "%s +%d; gateway remote %s; %s; %s got %d ESP datagram(s)%s"
             % (counter, d, fmt_map(remote_of(after)),
                summary(probs) if probs else "decrypted at %s" % v.ep.label, other.label,
                len(fg), (" (show tunnels: %s)" % err) if err else ""))


def phase4(ck, L, clients):
    """4: client keepalives in; gateway keepalives out to c-2 every ~2 s."""
    ka = clients[KA_TUNNEL - 1]
    watch = 7.5
    m = {c.name: {id(ep): ep.mark() for ep in c.eps} for c in clients}
    t0 = time.monotonic()
    u0 = time.time()
    # and one from a mapping no tunnel has (a new source port of client 8)
    clients[KA_STRANGER - 1].endpoint(4700, "c-%d:4700" % KA_STRANGER).send(b"\xff")
    for _ in range(KA_PER_SENDER):
        for k in KA_SENDERS:
            clients[k - 1].ep.send(b"\xff")
        time.sleep(0.1)
    window = (u0, time.time())
    time.sleep(max(0.0, watch - (time.monotonic() - t0)))
    got = [(t, src) for t, src, d in ka.ep.since(m[ka.name][id(ka.ep)]) if d == b"\xff"]
    gaps = [round(b[0] - a[0], 2) for a, b in zip(got, got[1:])]
    srcs = {src for _, src in got}
    ck.check(len(got) >= 3 and all(1.5 <= g <= 3.5 for g in gaps) and srcs == {(GW_OUT, 4500)},
             "4b tunnel %s (keepalive = %d, no other traffic for it) gets a 0xFF NAT-keepalive "
             "from %s:4500 about every %d s through the NAT" % (ka.name, KA_S, GW_OUT, KA_S),
             "%d keepalive(s) in %.0f s, gaps %s s, from %s" % (len(got), watch, gaps,
                                                               sorted(srcs)))
    return len(got), window


def stray_keepalives(clients, since):
    """Keepalives at clients whose tunnel sends none (after since)."""
    out = []
    for c in clients:
        if c.k == KA_TUNNEL:
            continue
        for ep in c.eps:
            n = sum(1 for t, _, d in ep.inbox if d == b"\xff" and t > since)
            if n:
                out.append("%s %s: %d" % (c.name, ep.label, n))
    return out


def phase5(ck, L, clients, listeners, tap):
    """5: IKE and ping to the gateway's host through the TAP."""
    if listeners is None:
        ck.check(False, "5b-5g exception path", "no TAP, nothing to test")
        return 0
    l500, l4500 = listeners
    m500, m4500 = l500.mark(), l4500.mark()
    ike = {}
    for k in IKE_CLIENTS:
        c = clients[k - 1]
        e500 = c.endpoint(500, "%s:500" % c.name, esp=False)
        req = nt.ike_header(random.Random(k)) + ("%s ike500" % c.name).encode()
        req4500 = MARKER + nt.ike_header(random.Random(-k)) + ("%s ike4500" % c.name).encode()
        ike[c.name] = (c, e500, req, c.ep.mark(), req4500)
        e500.send(req, (GW_OUT, 500))
        c.ep.send(req4500, (GW_OUT, 4500))

    def answered():
        return all(any(d == b"IKE-R:" + req for _, _, d in e.inbox) and
                   any(d == MARKER + b"IKE-R:" + r4[4:] for _, _, d in c.ep.since(mk))
                   for c, e, req, mk, r4 in ike.values())
    wait_until(answered, WAIT, step=0.05)
    heard500 = [d for _, _, d in l500.since(m500)]
    heard4500 = [d for _, _, d in l4500.since(m4500)]
    bad500, bad4500 = [], []
    for n, (c, e, req, mk, r4) in ike.items():
        if heard500.count(req) != 1:
            bad500.append("%s: listener got it intact %d times" % (n, heard500.count(req)))
        elif not any(d == b"IKE-R:" + req for _, _, d in e.inbox):
            bad500.append("%s: reply not back at %s:500 (got %d datagram(s))" % (
                n, c.addr, len(e.inbox)))
        if heard4500.count(r4) != 1:
            bad4500.append("%s: listener got it intact %d times" % (n, heard4500.count(r4)))
        elif not any(d == MARKER + b"IKE-R:" + r4[4:] for _, _, d in c.ep.since(mk)):
            bad4500.append("%s: reply not back at %s:4500" % (n, c.addr))
    ck.check(not bad500, "5b IKE on UDP 500 from %d clients reaches the listener in the gw "
             "namespace intact, once, and its reply reaches the right client through the NAT"
             % len(ike), "; ".join(bad500) + ("; " + diag(L) if bad500 else "")
             if bad500 else "%d requests and replies" % len(ike))
    ck.check(not bad4500, "5c IKE on UDP 4500 behind the non-ESP marker reaches the 4500 "
             "listener intact, once, and its reply reaches the right client",
             "; ".join(bad4500) if bad4500 else "%d requests and replies" % len(ike))
    k0 = icmp_counters(L.ns)
    answered = ping(L, clients[0].addr, GW_OUT, 3)
    k1 = icmp_counters(L.ns)
    dk = {k: k1.get(k, 0) - k0.get(k, 0) for k in ("InEchos", "OutEchoReps")}
    ck.check(answered == [1, 2, 3] and dk == {"InEchos": 3, "OutEchoReps": 3},
             "5d a ping (3 ICMP echo requests) from the clients namespace to %s is answered by "
             "the gw namespace's kernel through the TAP" % GW_OUT,
             "echo replies for sequence numbers %s; gw kernel IcmpInEchos +%d OutEchoReps +%d"
             % (answered, dk["InEchos"], dk["OutEchoReps"]))
    nb = run(["ip", "-n", L.ns, "-j", "neigh", "show", "dev", tap, NAT_PUB], check=False)
    try:
        ent = (json.loads(nb.stdout or "[]") or [{}])[0]
    except ValueError:
        ent = {}
    ck.check(ent.get("lladdr") == MAC["no0"] and
             not set(ent.get("state", [])) & {"FAILED", "INCOMPLETE"},
             "5e the gw namespace's kernel resolved %s by ARP through the TAP and the dataplane"
             % NAT_PUB, "neighbour entry on %s: %s (NAT's MAC %s)" % (tap, ent or "none",
                                                                    MAC["no0"]))
    # last: the burst uses up this second's exception budget
    return rate_limit(ck, L, ike[clients[IKE_CLIENTS[0] - 1].name][1], l500)


def rate_limit(ck, L, ep, listener):
    """5g: a burst of IKE beyond dataplane.exception_rate: what does not reach
    the host is counted exception_limited, no more than the rate gets through
    in a second (a burst may straddle two)."""
    def live():
        res, _ = L.show_json("stats")
        res = res or {}
        return (res.get("counters", {}).get("exception_punted"),
                res.get("drops", {}).get("exception_limited"))
    p0, l0 = live()
    mark = listener.mark()
    for i in range(EXC_BURST):
        ep.send(b"burst %d" % i, (GW_OUT, 500))
    now = [None, None]

    def settled():
        now[:] = live()
        return None not in now + [p0, l0] and \
            len(listener.since(mark)) + now[1] - l0 >= EXC_BURST
    wait_until(settled, WAIT, step=0.3)
    got = len(listener.since(mark))
    if None in now + [p0, l0]:
        ck.check(False, "5g exception_rate", "no live counters exception_punted / "
                 "exception_limited (show stats --json): %s -> %s" % ((p0, l0), now))
        return 0
    lim = now[1] - l0
    ck.check(0 < got <= 2 * EXC_RATE and EXC_BURST <= got + lim <= EXC_BURST + 2 and
             now[0] - p0 >= got,
             "5g a burst of %d IKE datagrams with exception_rate = %d: at most 2 x %d reach the "
             "host, the rest are exception_limited drops" % (EXC_BURST, EXC_RATE, EXC_RATE),
             "listener got %d, exception_limited +%d, exception_punted +%d (the odd ARP may "
             "add one)" % (got, lim, now[0] - p0))
    return lim


def ping(L, src, dst, n, timeout=3.0):
    """n ICMP echo requests from src in the clients namespace (a raw socket:
    no ping binary needed); returns the sequence numbers answered by dst."""
    with nl.in_netns(L.cl):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    got = set()
    try:
        s.bind((src, 0))
        for seq in range(1, n + 1):
            s.sendto(bytes(ICMP(type=8, id=ident, seq=seq) / Raw(b"natt ping %d" % seq)),
                     (dst, 0))
            time.sleep(0.1)
        t0 = time.monotonic()
        while len(got) < n and time.monotonic() - t0 < timeout:
            if not select.select([s], [], [], 0.1)[0]:
                continue
            data, a = s.recvfrom(4096)
            ip = IP(data)
            if a[0] == dst and ICMP in ip and ip[ICMP].type == 0 and ip[ICMP].id == ident:
                got.add(ip[ICMP].seq)
    finally:
        s.close()
    return sorted(got)


def final_checks(ck, L, clients, stats, expect):
    """1e, 2f, 2g, 2i, 4a, 4c, 5f, 6a-6e on the final --stats-json."""
    try:
        with open(L.log_path, errors="replace") as f:
            reports = [l for l in f.read().splitlines()
                       if "Sanitizer" in l or "runtime error:" in l]
    except OSError as e:
        reports = ["no log: %s" % e]
    ck.check(L.gw_rc == 0 and not reports, "6d the gateway stopped cleanly on SIGTERM: exit "
             "status 0, no sanitizer report in its log",
             "exit status %s; %s" % (L.gw_rc, " | ".join(reports[:5]) or "no reports"))
    if not ck.check(stats is not None, "final --stats-json written",
                    L.final_stats_error or ""):
        return
    c = stats.get("counters", {})
    tv = stats.get("tunnels", {})
    accounting(ck, L, stats, expect)
    per_tunnel_checks(ck, clients, tv, expect)
    nat_counters(ck, c, tv, expect)
    keepalive_counters(ck, c, tv, expect)
    if L.tap is not None:
        n = expect["host_msgs"]
        ck.check(c.get("exception_punted", 0) >= n and c.get("host_tx", 0) >= n and
                 not expect["leaks"],
                 "5f exception_punted and host_tx count the host's traffic (>= %d each); ESP "
                 "never reached the 4500 listener" % n,
                 "exception_punted %s, host_tx %s; non-IKE datagrams at listener:4500: %s" % (
                     c.get("exception_punted"), c.get("host_tx"), expect["leaks"] or "none"))


def accounting(ck, L, stats, expect):
    """6a, 6e, 6b: every packet accounted for, no drop not caused on purpose."""
    c, d = stats.get("counters", {}), stats.get("drops", {})
    lhs = sum(c.get(k, 0) for k in ("rx_packets", "fragments_out", "icmp_too_big_sent",
                                    "keepalives_sent", "arp_requests"))
    rhs = c.get("tx_packets", 0) + sum(d.values()) + c.get("fragmented", 0)
    missing = [k for k in ("keepalives_sent", "arp_requests", "exception_punted", "host_tx")
               if k not in c]
    ck.check(lhs == rhs and not missing,
             "6a accounting: rx + fragments_out + icmp_too_big_sent + keepalives_sent + "
             "arp_requests = tx + drops + fragmented",
             "%d = %d (rx %s, fragments_out %s, icmp_too_big_sent %s, keepalives_sent %s, "
             "arp_requests %s; tx %s, drops %d, fragmented %s)%s" % (
                 lhs, rhs, c.get("rx_packets"), c.get("fragments_out"),
                 c.get("icmp_too_big_sent"), c.get("keepalives_sent"), c.get("arp_requests"),
                 c.get("tx_packets"), sum(d.values()), c.get("fragmented"),
                 "; counters absent: %s" % missing if missing else ""))
    port_sums(ck, L, stats)
    want = {"auth_failed": 1, "replay": 1, "keepalive": expect["keepalives_in"] + 1}
    if L.tap is not None:
        want["exception_limited"] = expect["limited"]
    wrong = ["%s %d (want %d)" % (k, d.get(k, 0), n) for k, n in want.items() if d.get(k, 0) != n]
    wrong += ["%s %d" % (k, v) for k, v in d.items()
              if v and k not in want and k not in ERROR_FREE]
    ck.check(not wrong, "6b drops: only the forgery (auth_failed 1), the replay (replay 1), "
             "the %d client keepalives (keepalive) and the burst over exception_rate "
             "(exception_limited %d)" % (expect["keepalives_in"] + 1, expect["limited"]),
             "; ".join(wrong) if wrong else "none other (ike %d)" % d.get("ike", 0))


def nat_counters(ck, c, tv, expect):
    """2g, 2i: the mapping counters; the pinned tunnel's view."""
    n_moves = sum(len(x) - 1 for x in expect["hist"].values())
    ck.check(c.get("nat_mapping_changes") == n_moves + 1 and
             c.get("nat_mapping_followed") == n_moves,
             "2g counters: nat_mapping_changes = the %d moves the NAT made + the pinned "
             "tunnel's, nat_mapping_followed = %d" % (n_moves, n_moves),
             "nat_mapping_changes %s, nat_mapping_followed %s"
             % (c.get("nat_mapping_changes", "absent"), c.get("nat_mapping_followed", "absent")))
    pt, pc = tv.get(expect["pinned"].name, {}), expect["pinned"]
    ck.check(remote_of(pt) == (NAT_PUB, PIN_PORT) and remote_of(pt, "seen") ==
             expect["pin_moved"] and pt.get("nat_mapping") == "pin" and
             (pt.get("pin_ignored") or 0) >= 1 and pt.get("in_packets") == pc.genuine and
             pt.get("out_packets") == pc.genuine,
             "2i final --stats-json of pinned %s: remote %s:%d, seen %s, nat_mapping pin, "
             "pin_ignored >= 1, every packet in delivered and its reply sealed"
             % (pc.name, NAT_PUB, PIN_PORT, fmt_map(expect["pin_moved"])),
             " ".join("%s %s" % (k, pt.get(k, "absent")) for k in (
                 "remote", "seen", "nat_mapping", "pin_ignored", "mapping_changes",
                 "in_packets", "out_packets")))


def keepalive_counters(ck, c, tv, expect):
    """4a, 4c: keepalives attributed (per tunnel, when) and sent."""
    ka_in = c.get("keepalives_attributed")
    senders = [tv.get("c-%d" % k, {}) for k in KA_SENDERS]
    t0, t1 = expect["ka_window_unix"]

    def fresh(t):
        v = t.get("last_keepalive_unix")
        return isinstance(v, (int, float)) and t0 - 1 <= v <= t1 + 1
    others = ["%s %s" % (n, t.get("keepalives")) for n, t in tv.items()
              if t.get("keepalives") and n not in ["c-%d" % k for k in KA_SENDERS]]
    ck.check(ka_in == expect["keepalives_in"] and not others and
             all(t.get("keepalives") == KA_PER_SENDER and fresh(t) for t in senders),
             "4a client NAT-keepalives are attributed to their tunnels: %d each for %s (and "
             "last_keepalive_unix when they were sent), keepalives_attributed %d; the one from "
             "a mapping no tunnel has (c-%d:4700) to none" % (
                 KA_PER_SENDER, ", ".join("c-%d" % k for k in KA_SENDERS),
                 expect["keepalives_in"], KA_STRANGER),
             "keepalives_attributed %s; per tunnel %s; sent between %.1f and %.1f; other "
             "tunnels: %s" % (
                 ka_in, ", ".join("c-%d %s at %s" % (k, t.get("keepalives", "absent"),
                                                     t.get("last_keepalive_unix", "absent"))
                                  for k, t in zip(KA_SENDERS, senders)), t0, t1,
                 others or "none"))
    kt = tv.get("c-%d" % KA_TUNNEL, {})
    others = ["%s %s" % (n, t.get("keepalives_sent")) for n, t in tv.items()
              if n != "c-%d" % KA_TUNNEL and t.get("keepalives_sent")]
    ck.check((c.get("keepalives_sent") or 0) == (kt.get("keepalives_sent") or 0) >=
             expect["keepalives_out"] >= 1 and kt.get("keepalive_s") == KA_S and not others,
             "4c keepalives_sent (counter and tunnel c-%d, keepalive_s %d) counts at least what "
             "c-%d received; no other tunnel sent any" % (KA_TUNNEL, KA_S, KA_TUNNEL),
             "counter keepalives_sent %s, tunnel c-%d keepalives_sent %s keepalive_s %s, "
             "received %d; other tunnels: %s" % (
                 c.get("keepalives_sent", "absent"), KA_TUNNEL,
                 kt.get("keepalives_sent", "absent"), kt.get("keepalive_s", "absent"),
                 expect["keepalives_out"], others or "none"))


def port_sums(ck, L, stats):
    """6e: ports and TAPs add up to the totals; a TAP's tx is what was punted
    to the host, its rx what the host sent."""
    c = stats.get("counters", {})
    ports, taps = stats.get("ports", []), stats.get("taps")
    tot = {k: sum(p.get(k, 0) for p in ports + (taps or [])) for k in ("rx_packets",
                                                                     "tx_packets")}
    t_tx = sum(t.get("tx_packets", 0) for t in taps or [])
    t_rx = sum(t.get("rx_packets", 0) for t in taps or [])
    names = sorted(t.get("tap") for t in taps or [])
    ck.check(taps is not None and tot["rx_packets"] == c.get("rx_packets") and
             tot["tx_packets"] == c.get("tx_packets") and t_tx == c.get("exception_punted") and
             t_rx == c.get("host_tx") and (L.tap is None or L.tap + "0" in names),
             "6e the ports' and TAPs' packets add up to rx_packets / tx_packets; the TAPs' tx "
             "= exception_punted, their rx = host_tx",
             "ports+taps rx %d (rx_packets %s) tx %d (tx_packets %s); taps %s tx %d "
             "(exception_punted %s) rx %d (host_tx %s)" % (
                 tot["rx_packets"], c.get("rx_packets"), tot["tx_packets"], c.get("tx_packets"),
                 names if taps is not None else "absent", t_tx, c.get("exception_punted"),
                 t_rx, c.get("host_tx")))


def per_tunnel_checks(ck, clients, tv, expect):
    """1e, 6c and 2f: remote, in/out packets, mapping history per tunnel."""
    wrong, counts = [], []
    for c in clients:
        t = tv.get(c.name)
        m = expect["final_map"].get(c.name)
        if t is None:
            wrong.append("%s absent" % c.name)
            continue
        if remote_of(t) != m:
            wrong.append("%s remote %s, NAT %s" % (c.name, t.get("remote"), fmt_map(m)))
        if "seen" in t and remote_of(t, "seen") != m:
            wrong.append("%s seen %s, NAT %s" % (c.name, t["seen"], fmt_map(m)))
        recv = sum(1 for ep in c.eps if ep.esp for _, _, d in ep.inbox if kind(d) == "esp")
        hostile = 1 if c.k == VICTIM else 0
        if t.get("in_packets") != c.genuine or t.get("out_packets") != recv or \
                t.get("auth_failed") != hostile or t.get("replay") != hostile:
            counts.append("%s in %s (sent %d) out %s (received %d) auth_failed %s replay %s "
                          "(want %d each)" % (c.name, t.get("in_packets"), c.genuine,
                                              t.get("out_packets"), recv, t.get("auth_failed"),
                                              t.get("replay"), hostile))
    ck.check(not wrong, "1e final --stats-json: every tunnel's remote is %s:<its NAT-mapped "
             "port>" % NAT_PUB, "; ".join(wrong[:8]) if wrong else "50 tunnels match conntrack")
    ck.check(not counts, "6c per-tunnel in_packets = genuine ESP the client sent, out_packets = "
             "ESP the client received (nothing sealed went astray), auth_failed and replay 1 "
             "for c-%d, 0 elsewhere" % VICTIM,
             "; ".join(counts[:8]) if counts else "50 tunnels")
    bad = []
    for c in clients:
        t, hist = tv.get(c.name, {}), expect["hist"][c.name]
        prev = fmt_map(hist[-2]) if len(hist) > 1 else None
        if t.get("mapping_changes") != len(hist) - 1:
            bad.append("%s mapping_changes %s (want %d: %s)" % (
                c.name, t.get("mapping_changes", "absent"), len(hist) - 1,
                " -> ".join(fmt_map(x) for x in hist)))
        elif prev and remote_of(t, "prev_remote") != hist[-2]:
            bad.append("%s prev_remote %s (want %s)" % (c.name, t.get("prev_remote", "absent"),
                                                        prev))
        elif t.get("pin_ignored", 0) or t.get("nat_mapping", "follow") != "follow":
            bad.append("%s nat_mapping %s pin_ignored %s (configured to follow)" % (
                c.name, t.get("nat_mapping"), t.get("pin_ignored")))
    ck.check(not bad, "2f final --stats-json: per-tunnel mapping_changes and prev_remote follow "
             "the NAT's mappings, pin_ignored 0 (%s: %s)" % (
                 clients[MOVE_FLUSH - 1].name,
                 " -> ".join(fmt_map(x) for x in expect["hist"][clients[MOVE_FLUSH - 1].name])),
             "; ".join(bad[:8]) if bad else "50 tunnels")


def misdelivery(ck, clients, t_phase1):
    """1f: no socket got another tunnel's ESP; no keepalive where none is due;
    each tunnel's outbound sequence numbers arrived once each, 1..n."""
    bad, seqs = [], []
    for c in clients:
        got = []
        for ep in (e for e in c.eps if e.esp):
            for _, src, d in ep.inbox:
                if kind(d) != "esp":
                    continue
                if d[:4] != struct.pack("!I", c.tun.out_spi):
                    bad.append("%s got SPI 0x%s from %s:%d" % (ep.label, d[:4].hex(), *src))
                else:
                    got.append(struct.unpack("!I", d[4:8])[0])
        if sorted(got) != list(range(1, len(got) + 1)):
            seqs.append("%s sequence numbers %s" % (c.name, sorted(got)))
    ka = stray_keepalives(clients, t_phase1)
    ck.check(not bad and not ka and not seqs, "1f no client socket ever got another tunnel's "
             "ESP, or a keepalive its tunnel does not send; every tunnel's ESP arrived with "
             "sequence numbers 1..n, each once",
             "; ".join((bad + ka + seqs)[:8]) if bad or ka or seqs else "none")


def session(ck, L, cfg):
    net = Net()
    responder, clients, expect = None, [], None
    try:
        try:
            L.start(cfg)
        except RuntimeError as e:
            ck.check(False, "gateway starts on the NAT topology", str(e)[-3000:])
            return
        tap = setup_tap(ck, L)
        listeners = ike_listeners(net, L) if tap else None
        responder, echo_lines = start_responder(L)
        clients = [Client(net, L, k, t) for k, t in enumerate(L.tunnels, 1)]
        pinned = clients.pop()
        hist = {c.name: [(NAT_PUB, 4500)] for c in clients}
        t0 = time.monotonic()
        phase1(ck, L, clients, echo_lines)
        t1 = time.monotonic()
        record(hist, clients)
        print("     phase 1: %.1f s" % (t1 - t0), flush=True)
        phase2(ck, L, clients, hist)
        pin_moved = pin_phase(ck, L, pinned, echo_lines)
        phase3(ck, L, clients)
        ka_out, ka_window = phase4(ck, L, clients)
        limited = phase5(ck, L, clients, listeners, tap)
        print("     phases 2-5: %.1f s" % (time.monotonic() - t1), flush=True)
        misdelivery(ck, clients + [pinned], t1)
        expect = {"keepalives_in": KA_PER_SENDER * len(KA_SENDERS), "keepalives_out": ka_out,
                  "ka_window_unix": ka_window, "limited": limited,
                  "hist": hist, "final_map": mappings(clients), "pinned": pinned,
                  "pin_moved": pin_moved,
                  "host_msgs": 2 * len(IKE_CLIENTS) + 3,
                  "leaks": [d[:8].hex() for _, _, d in listeners[1].inbox
                            if d[:4] != MARKER] if listeners else []}
    except Exception:       # a test bug or a dead gateway: say where, clean up
        ck.check(False, "the test ran through", traceback.format_exc()[-3000:])
    finally:
        if responder is not None:
            responder.terminate()
            responder.wait(timeout=5)
        stats = L.stop()
        net.close()
    if expect is not None:
        final_checks(ck, L, clients, stats, expect)


def main():
    ck = h.Checker()
    ok, why = nl.environment_ok()
    for tool in ("nft", "conntrack"):
        if ok and not nl.shutil.which(tool):
            ok, why = False, "no `%s` (scripts/deps.sh installs it)" % tool
    if not ck.check(ok, "live test environment (root, hugepages, ip netns, nft, conntrack, "
                    "binaries)", why):
        return ck.finish()
    rng = random.Random(h.seed())
    t0 = time.monotonic()
    failed0 = ck.failed
    L, cfg = start(rng)
    try:
        session(ck, L, cfg)
    finally:
        print("== test_nat: %.1f s" % (time.monotonic() - t0), flush=True)
        # files kept on failure and when interrupted
        L.finish(ck.failed > failed0 or sys.exc_info()[0] is not None)
    ran = ck.passed + ck.failed
    ck.check(ran == N_CHECKS, "all %d checks ran" % N_CHECKS, "%d ran" % ran)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
