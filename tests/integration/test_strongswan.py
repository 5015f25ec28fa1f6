#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""natt-gw interoperating with strongSwan through a real Linux NAT.

An independent IPsec implementation (strongSwan's charon with kernel-libipsec,
userspace ESP over a TUN device: this kernel has no XFRM) is the client; a
second charon on the gateway's host does the IKE; natt-gw carries the ESP
with the keys that charon negotiated.

    client ns            nat ns                    gw ns                    inside ns
    10.0.0.10 c0 ---- n0 10.0.0.1                                           10.10.0.2 i0
    lo 10.50.0.10        198.51.100.1 n1 ---- g0 [natt-gw port 0, outside]
    lo 10.50.0.11        nft masquerade random     198.51.100.2 on TAP <p>0
    charon (initiator)   ip_forward                [natt-gw port 1, inside] g1 ----
                                                   10.10.0.1 on TAP <p>1
                                                   charon (responder)

natt-gw runs from scripts/natt-gw with --tap: IKE (UDP/500, UDP/4500 behind
the non-ESP marker), ARP and ICMP for 198.51.100.2 go to the TAP, where the
responder charon and the gw namespace's kernel answer. The kernel never sees
g0/g1 directly (an nftables netdev ingress drop; DPDK's AF_PACKET socket sees
frames before that hook). Each charon has its own network namespace, its own
mount namespace (a private directory bound over /run: pid file, vici
socket) and its own strongswan.conf (STRONGSWAN_CONF). The inside port's
address 10.10.0.1 is on TAP <p>1: the inside namespace resolves it by ARP
through natt-gw, and kernel-libipsec refuses a CHILD_SA without a local
address in local_ts (it installs a route with that source). The NAT maps
ports randomly, so natt-gw must send to the mapped port, not to 4500.

  1. IKE through the NAT and the exception path: the client initiates two
     CHILD_SAs (aes128gcm16 for 10.50.0.10, aes256gcm16 for 10.50.0.11, both
     to 10.10.0.0/24); both charons show them INSTALLED; natt-gw counted
     exception_punted > 0 and host_tx > 0.
  -  Keys: the responder logs CHILD_SA keys at level 4 (chd = 4); they and
     the SPIs and the NAT-mapped port from `swanctl --list-sas --raw` become
     two natt-gw tunnels, written into the config file; natt-control
     reloads it by itself.
  2. ICMP echo 10.50.0.10 -> 10.10.0.2 (and from 10.50.0.11) and UDP echo
     of 100 and 1300 bytes: strongSwan encrypts, natt-gw decrypts, the
     inside namespace's kernel answers, natt-gw encrypts, strongSwan
     decrypts. Per-tunnel in/out packets and decrypted/encrypted counted.
  3. From the final --stats-json: rx + fragments_out + icmp_too_big_sent +
     keepalives_sent + arp_requests == tx + sum(drops) + fragmented, and no
     auth_failed / replay / no_sa drops after the tunnels were installed.
     strongSwan's own counters cross-check natt-gw's: the client's libipsec
     sealed exactly what natt-gw opened and opened exactly what natt-gw
     sealed (packets and inner bytes per CHILD_SA); the responder's libipsec
     saw no ESP at all.
  4. charon's NAT keepalives (keep_alive = 2s) are attributed to a tunnel
     (show tunnel --json "keepalives"). Both tunnels share one NAT mapping
     (one IKE_SA), and natt-gw gives them to one of the two (printed).
  5. The client rekeys the AES-GCM-128 CHILD_SA (CREATE_CHILD_SA through
     the TAP); the new keys and SPIs from the responder's log replace the
     tunnel's in the file (natt-control: rekeyed 1, unchanged 1) and the
     traffic of 2 runs again, on the new SPIs.

Exit 77 (skip) only when charon's kernel-libipsec cannot create its TUN
device here (no /dev/net/tun, or charon logs "failed to create TUN device");
anything else, missing strongSwan packages included, is a failure.

Usage: /usr/bin/python3 tests/integration/test_strongswan.py
Environment: NATT_BUILD, NATT_KEEP=1 (keep the work dir; kept on failure).
"""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_live as nl          # noqa: E402

REPO = nl.REPO
CHARON = "/usr/lib/ipsec/charon"
SWANCTL = shutil.which("swanctl") or "/usr/sbin/swanctl"
PLUGINS = ("random nonce openssl pem pkcs1 x509 pubkey kdf aes gcm sha1 sha2 hmac "
           "kernel-libipsec kernel-netlink socket-default vici")
PSK = "natt-gw interop test pre-shared key"
IKE_PROPOSAL = "aes128gcm16-prfsha256-ecp256,aes128gcm16-prfsha256-modp2048"
CHILDREN = [  # name, ESP proposal, client address, natt-gw algorithm, key bytes
    ("gcm128", "aes128gcm16", "10.50.0.10", "aes-gcm-128", 16),
    ("gcm256", "aes256gcm16", "10.50.0.11", "aes-gcm-256", 32),
]
KEEPALIVE_S = 2
NS_PREFIX = "natt-sw-"
UDP_ECHO_PORT = 7007
UDP_SIZES = (100, 1300)


# ---------------------------------------------------------------- small tools

def run(cmd, check=True, timeout=60, **kw):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(cmd), p.returncode,
                                                       (p.stderr or p.stdout).strip()[-600:]))
    return p


class Skip(Exception):
    pass


def cleanup_stale():
    """Namespaces and DPDK files of earlier runs whose owner (pid in the name)
    is gone."""
    nl.cleanup_stale(NS_PREFIX)


# ethtool is not always installed: switch offloads off with its ioctl
# (ETHTOOL_SGRO, SGSO, STSO, SSG, STXCSUM), run inside the namespace
OFFLOAD_SNIPPET = r"""
import ctypes, fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
bad = []
for dev in sys.argv[1:]:
    for cmd in (0x2c, 0x24, 0x1f, 0x19, 0x17):
        buf = ctypes.create_string_buffer(struct.pack("II", cmd, 0))
        ifr = struct.pack("16sP16x", dev.encode(), ctypes.addressof(buf))
        try:
            fcntl.ioctl(s.fileno(), 0x8946, ifr)
        except OSError as e:
            if cmd == 0x17:
                bad.append("%s: %s" % (dev, e))
print("; ".join(bad))
sys.exit(1 if bad else 0)
"""


# ---------------------------------------------------------------- topology

class Topology:
    """Four namespaces and the veth links between them (see the docstring)."""

    def __init__(self, workdir):
        tag = "%d-%s" % (os.getpid(), os.urandom(2).hex())
        self.ns = {k: "%s%s-%s" % (NS_PREFIX, tag, k) for k in ("cli", "nat", "gw", "in")}
        self.created = []
        self.workdir = workdir
        self.mac = {}

    def ip(self, ns, *args, check=True):
        return run(["ip", "-n", self.ns[ns]] + list(args), check=check)

    def nsexec(self, ns, *args, check=True, timeout=60):
        return run(["ip", "netns", "exec", self.ns[ns]] + list(args), check=check,
                   timeout=timeout)

    def setup(self):
        cleanup_stale()
        for k, ns in self.ns.items():
            run(["ip", "netns", "add", ns])
            self.created.append(ns)
            self.nsexec(k, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1",
                        "net.ipv6.conf.all.disable_ipv6=1")
            self.ip(k, "link", "set", "lo", "up")
        for (a, na), (b, nb) in ((("cli", "c0"), ("nat", "n0")), (("nat", "n1"), ("gw", "g0")),
                                 (("gw", "g1"), ("in", "i0"))):
            run(["ip", "link", "add", na, "netns", self.ns[a], "type", "veth", "peer", "name",
                 nb, "netns", self.ns[b]])
        devs = {"cli": ["c0"], "nat": ["n0", "n1"], "gw": ["g0", "g1"], "in": ["i0"]}
        for k, ds in devs.items():
            # checksums complete on the wire: DPDK's af_packet and the TAP
            # pass frames on as they are
            p = self.nsexec(k, "/usr/bin/python3", "-c", OFFLOAD_SNIPPET, *ds, check=False)
            if p.returncode != 0:
                raise RuntimeError("cannot switch off tx checksum offload in %s: %s"
                                   % (k, p.stdout.strip() or p.stderr.strip()))
            for d in ds:
                self.ip(k, "link", "set", "dev", d, "up")
                self.mac[d] = json.loads(self.ip(k, "-j", "link", "show", d).stdout)[0]["address"]
        # client: 10.0.0.10, default via the NAT; tunnel addresses on lo
        self.ip("cli", "addr", "add", "10.0.0.10/24", "dev", "c0")
        self.ip("cli", "route", "add", "default", "via", "10.0.0.1")
        for _, _, addr, _, _ in CHILDREN:
            self.ip("cli", "addr", "add", addr + "/32", "dev", "lo")
        # the NAT
        self.ip("nat", "addr", "add", "10.0.0.1/24", "dev", "n0")
        self.ip("nat", "addr", "add", "198.51.100.1/24", "dev", "n1")
        self.nsexec("nat", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        nft = ("table ip natt_sw {\n"
               "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
               "    ip saddr 10.0.0.0/24 oifname \"n1\" masquerade random\n  }\n}\n")
        self._nft("nat", nft)
        # gw: the kernel must not see g0/g1 itself (only through the TAP);
        # AF_PACKET (DPDK) gets the frames before the ingress hook
        nft = ("table netdev natt_sw_guard {\n"
               "  chain g0 { type filter hook ingress device \"g0\" priority 0; policy drop; }\n"
               "  chain g1 { type filter hook ingress device \"g1\" priority 0; policy drop; }\n"
               "}\n")
        self._nft("gw", nft)
        for d in ("g0", "g1"):
            self.ip("gw", "link", "set", "dev", d, "arp", "off", "multicast", "off")
        # inside: 10.10.0.2, back to the tunnel through natt-gw's inside port
        self.ip("in", "addr", "add", "10.10.0.2/24", "dev", "i0")
        self.ip("in", "route", "add", "10.50.0.0/16", "via", "10.10.0.1")

    def _nft(self, ns, text):
        path = os.path.join(self.workdir, "nft-%s.conf" % ns)
        with open(path, "w") as f:
            f.write(text)
        self.nsexec(ns, "nft", "-f", path)

    def teardown(self):
        for ns in reversed(self.created):
            for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in reversed(self.created):
            run(["ip", "netns", "del", ns], check=False)
        self.created = []


# ---------------------------------------------------------------- natt-gw

class Gateway:
    def __init__(self, topo, workdir):
        self.topo = topo
        self.workdir = workdir
        self.prefix = "natt-sw-%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.tap = "sw%s" % os.urandom(2).hex()
        self.cfg_path = os.path.join(workdir, "natt.cfg")
        self.stats_path = os.path.join(workdir, "stats.json")
        self.log_path = os.path.join(workdir, "natt-gw.log")
        self.proc = None
        self.final = None

    def config(self, tunnels=()):
        out = ["# test_strongswan.py: keys from the responder charon's log",
               "dataplane = { replay_window = 1024; };",
               "interfaces = (",
               '  { name = "outside"; port = 0; role = "outside"; address = "198.51.100.2"; '
               'next_hop = "198.51.100.1"; mtu = 1500; },',
               '  { name = "inside"; port = 1; role = "inside"; address = "10.10.0.1"; '
               'next_hop_mac = "%s"; mtu = 1500; }' % self.topo.mac["i0"],
               ");", "tunnels = ("]
        out.append(",\n".join(tunnels))
        out.append(");")
        return "\n".join(out) + "\n"

    def write_config(self, text):
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.cfg_path)

    def start(self):
        self.write_config(self.config())
        env = dict(os.environ, NATT_BUILD=nl.build_dir())
        cmd = ["ip", "netns", "exec", self.topo.ns["gw"], str(REPO / "scripts" / "natt-gw"),
               "--config", self.cfg_path, "--file-prefix", self.prefix,
               "--stats-json", self.stats_path, "--stats-interval", "1000",
               "--tap", self.tap, "--",
               "-l", "0,1", "--no-pci",
               "--vdev", "net_af_packet0,iface=g0,qpairs=1,framecnt=4096",
               "--vdev", "net_af_packet1,iface=g1,qpairs=1,framecnt=4096"]
        with open(os.path.join(self.workdir, "cmd.txt"), "a") as f:
            f.write(" ".join(cmd) + "\n")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        if self.wait_log(nl.APPLIED_RE, 0, 90) is None:
            raise RuntimeError("natt-gw: no 'applied generation' within 90 s\n%s"
                               % self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def lines(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return [l for l in f.read().splitlines()
                        if not nl.STATS_RE.match(l) and not l.startswith("  drops:")]
        except OSError:
            return []

    def wait_log(self, rx, since, timeout):
        t0 = time.monotonic()
        while True:
            for l in self.lines()[since:]:
                m = rx.search(l)
                if m:
                    return m
            if time.monotonic() - t0 > timeout or not self.alive():
                return None
            time.sleep(0.1)

    def log_tail(self, n=25):
        return "\n".join("    | " + l for l in self.lines()[-n:])

    def show(self, *args):
        cmd = ["ip", "netns", "exec", self.topo.ns["gw"], str(REPO / "scripts" / "natt-gw"),
               "--file-prefix", self.prefix, "show"] + list(args) + ["--json"]
        p = run(cmd, check=False, timeout=60, env=dict(os.environ, NATT_BUILD=nl.build_dir()))
        return nl.json_result(p)

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            with open(self.stats_path) as f:
                self.final = json.load(f)
        except (OSError, ValueError):
            self.final = None
        return self.final


# ---------------------------------------------------------------- strongSwan

class Charon:
    """One charon in namespace ns, with its own /run (mount namespace),
    strongswan.conf and swanctl.conf."""

    def __init__(self, topo, ns, role, workdir):
        self.topo = topo
        self.ns = ns
        self.role = role
        self.dir = os.path.join(workdir, role)
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir)
        self.conf = os.path.join(self.dir, "strongswan.conf")
        self.swanctl_conf = os.path.join(self.dir, "swanctl.conf")
        self.log = os.path.join(self.dir, "charon.log")
        self.vici = os.path.join(self.run_dir, "charon.vici")
        self.proc = None

    def write_conf(self, swanctl_text):
        with open(self.conf, "w") as f:
            f.write("""charon {
  load_modular = no
  load = %s
  port = 500
  port_nat_t = 4500
  keep_alive = %ds
  retransmit_tries = 4
  install_virtual_ip = no
  plugins {
    vici { socket = unix:///run/charon.vici }
    kernel-libipsec { allow_peer_ts = no }
  }
  filelog {
    main {
      path = %s
      time_format = %%T
      flush_line = yes
      default = 1
      ike = 2
      cfg = 2
      net = 2
      knl = 2
      chd = 4
    }
  }
  syslog {
    daemon { default = -1 }
    auth { default = -1 }
  }
}
swanctl { load = pem pkcs1 x509 pubkey }
""" % (PLUGINS, KEEPALIVE_S, self.log))
        with open(self.swanctl_conf, "w") as f:
            f.write(swanctl_text)

    def start(self):
        # a private /run: pid file and vici socket of this instance only
        script = 'mount --bind "$1" /run && shift && exec "$@"'
        cmd = ["ip", "netns", "exec", self.topo.ns[self.ns], "unshare", "-m",
               "--propagation", "private", "sh", "-c", script, "sh", self.run_dir, CHARON]
        env = dict(os.environ, STRONGSWAN_CONF=self.conf)
        out = open(os.path.join(self.dir, "charon.out"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        out.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            if self.proc.poll() is not None:
                raise RuntimeError("%s charon exited (%s) during start-up:\n%s"
                                   % (self.role, self.proc.returncode, self.tail()))
            if os.path.exists(self.vici):
                p = self.swanctl("--stats", check=False)
                if p.returncode == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("%s charon: no vici socket after 20 s\n%s" % (self.role, self.tail()))

    def swanctl(self, *args, check=True, timeout=60):
        cmd = ["ip", "netns", "exec", self.topo.ns[self.ns], SWANCTL] + list(args) + \
            ["--uri", "unix://" + self.vici]
        return run(cmd, check=check, timeout=timeout,
                   env=dict(os.environ, STRONGSWAN_CONF=self.conf))

    def load(self):
        return self.swanctl("--load-all", "--noprompt", "--file", self.swanctl_conf)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, n=25):
        ls = self.log_text().splitlines()
        try:
            with open(os.path.join(self.dir, "charon.out"), errors="replace") as f:
                ls += ["(stdout) " + l for l in f.read().splitlines()]
        except OSError:
            pass
        return "\n".join("    | " + l for l in ls[-n:])

    def list_sas(self):
        """{child name: {spi-in, spi-out, state, encr-keysize, ...}} and the
        IKE SA's fields, from swanctl --list-sas --raw."""
        p = self.swanctl("--list-sas", "--raw", check=False)
        return parse_list_sas(p.stdout), p.stdout

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def parse_list_sas(raw):
    """swanctl --raw prints `list-sa event {NAME {k=v ... child-sas {C {k=v
    ...}}}}` (lists as k=[a b]). Returns (fields of the first IKE SA,
    {child name: fields})."""
    toks = re.findall(r"[^\s{}=\[\]]+=\[[^\]]*\]|[^\s{}=]+=[^\s{}]*|[^\s{}]+|[{}]", raw)
    pos = 0

    def block():
        nonlocal pos
        d = {}
        while pos < len(toks):
            t = toks[pos]
            pos += 1
            if t == "}":
                return d
            if "=" in t:
                k, _, v = t.partition("=")
                d[k] = v
            elif pos < len(toks) and toks[pos] == "{":
                pos += 1
                d[t] = block()
        return d

    top = block()
    ike, children = {}, {}
    for ev in top.values():         # "list-sa event" -> {IKE name: {...}}
        if not isinstance(ev, dict):
            continue
        for sa in ev.values():
            if isinstance(sa, dict) and "remote-host" in sa and not ike:
                ike = {k: v for k, v in sa.items() if not isinstance(v, dict)}
            if isinstance(sa, dict):
                for c in (sa.get("child-sas") or {}).values():
                    if isinstance(c, dict) and "name" in c:
                        # after a rekey the old SA may still be listed
                        if children.get(c["name"], {}).get("state") != "INSTALLED" or \
                                c.get("state") == "INSTALLED":
                            children[c["name"]] = c
    return ike, children


def parse_child_keys(log):
    """[(child name, spi_i, spi_o, {"encr_i": bytes, "encr_r": bytes})] in
    log order: the key dumps (chd level 4) logged before each
    "CHILD_SA NAME{n} established with SPIs X_i Y_o" (once per SA)."""
    lines = log.splitlines()
    out = []
    keys = {}
    i = 0
    key_re = re.compile(r"(encryption|integrity) (initiator|responder) key => (\d+) bytes @")
    dump_re = re.compile(r"^\S*\s+\S*\s*\s+(\d+): ((?:[0-9A-F]{2} ?)+)")
    est_re = re.compile(r"CHILD_SA (\S+)\{\d+\} established with SPIs ([0-9a-f]{8})_i "
                        r"([0-9a-f]{8})_o")
    while i < len(lines):
        l = lines[i]
        m = key_re.search(l)
        if m:
            n = int(m.group(3))
            data = b""
            j = i + 1
            while j < len(lines) and len(data) < n:
                d = re.search(r"\s(\d+): ((?:[0-9A-F]{2} )*[0-9A-F]{2})", lines[j])
                if not d:
                    break
                data += bytes.fromhex(d.group(2).replace(" ", ""))
                j += 1
            keys["%s_%s" % (m.group(1)[:4], m.group(2)[0])] = data[:n]
            i = j
            continue
        m = est_re.search(l)
        if m and keys:
            # a rekey's responder logs "inbound CHILD_SA ... established",
            # later "outbound CHILD_SA ... established" for the same SA
            out.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16), dict(keys)))
            keys = {}
        i += 1
    return out


# ---------------------------------------------------------------- traffic

ECHO_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.10.0.2", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(data, addr)
"""

CLIENT_TRAFFIC = r"""
import json, os, socket, struct, sys, time
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
n_ping = int(sys.argv[4]); sizes = [int(x) for x in sys.argv[5].split(",") if x]
res = {"ping": [], "udp": []}

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.bind((src, 0))
icmp.settimeout(3.0)
ident = os.getpid() & 0xffff
for seq in range(1, n_ping + 1):
    payload = b"natt-gw strongswan %d " % seq + bytes(range(32))
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + payload), ident, seq) + payload
    t0 = time.monotonic()
    icmp.sendto(pkt, (dst, 0))
    got = None
    while time.monotonic() - t0 < 3.0:
        try:
            data, addr = icmp.recvfrom(65535)
        except socket.timeout:
            break
        ihl = (data[0] & 15) * 4
        t, c, _, i, s = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if t == 0 and i == ident and s == seq and addr[0] == dst:
            got = {"seq": seq, "rtt_ms": round((time.monotonic() - t0) * 1000, 2),
                   "ttl": data[8], "ok": data[ihl + 8:] == payload}
            break
    res["ping"].append(got or {"seq": seq, "lost": True})
    time.sleep(0.2)

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((src, 0))
u.settimeout(3.0)
for n in sizes:
    data = bytes((i * 7 + n) & 0xff for i in range(n))
    u.sendto(data, (dst, port))
    try:
        back, addr = u.recvfrom(65535)
        res["udp"].append({"size": n, "ok": back == data, "got": len(back)})
    except socket.timeout:
        res["udp"].append({"size": n, "lost": True})
print(json.dumps(res))
"""


# ---------------------------------------------------------------- the test

def traffic(ck, topo, label, name, addr, n_ping):
    """Ping and UDP echo from addr (the client namespace) to 10.10.0.2."""
    p = topo.nsexec("cli", "/usr/bin/python3", "-c", CLIENT_TRAFFIC, addr, "10.10.0.2",
                    str(UDP_ECHO_PORT), str(n_ping), ",".join(map(str, UDP_SIZES)),
                    check=False, timeout=120)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        ck.check(False, "%s: traffic from %s" % (label, addr), (p.stdout + p.stderr)[-500:])
        return
    got = [r for r in res["ping"] if not r.get("lost")]
    ck.check(len(got) == n_ping and all(r["ok"] for r in got),
             "%s: %d/%d ICMP echo %s -> 10.10.0.2 answered through %s (strongSwan "
             "encrypts, natt-gw decrypts, natt-gw encrypts, strongSwan decrypts)"
             % (label, len(got), n_ping, addr, name),
             "rtt ms %s, ttl %s" % ([r.get("rtt_ms") for r in got],
                                   sorted({r.get("ttl") for r in got}))
             if got else json.dumps(res))
    for u in res["udp"]:
        ck.check(u.get("ok"), "%s: UDP echo of %d bytes %s -> 10.10.0.2:%d and back"
                 % (label, u["size"], addr, UDP_ECHO_PORT), json.dumps(u))


def swanctl_texts():
    resp_children = "".join("""
      %s {
        local_ts = 10.10.0.0/24
        remote_ts = %s/32
        esp_proposals = %s
        mode = tunnel
      }""" % (name, addr, prop) for name, prop, addr, _, _ in CHILDREN)
    cli_children = "".join("""
      %s {
        local_ts = %s/32
        remote_ts = 10.10.0.0/24
        esp_proposals = %s
        mode = tunnel
        start_action = none
      }""" % (name, addr, prop) for name, prop, addr, _, _ in CHILDREN)
    secrets = """
secrets {
  ike-natt {
    id-gw = gw.natt.test
    id-client = client.natt.test
    secret = "%s"
  }
}
""" % PSK
    resp = """connections {
  natt {
    version = 2
    local_addrs = 198.51.100.2
    proposals = %s
    local { auth = psk
            id = gw.natt.test }
    remote { auth = psk
             id = client.natt.test }
    children {%s
    }
  }
}
""" % (IKE_PROPOSAL, resp_children) + secrets
    cli = """connections {
  natt {
    version = 2
    remote_addrs = 198.51.100.2
    proposals = %s
    local { auth = psk
            id = client.natt.test }
    remote { auth = psk
             id = gw.natt.test }
    children {%s
    }
  }
}
""" % (IKE_PROPOSAL, cli_children) + secrets
    return resp, cli


def tunnel_text(name, algo, spi_in, key_in, spi_out, key_out, remote, rport, remote_ts):
    return ('  { name = "%s"; remote = "%s"; remote_port = %d; algorithm = "%s"; esn = false;\n'
            '    inbound  = { spi = 0x%08x; key = "%s"; };\n'
            '    outbound = { spi = 0x%08x; key = "%s"; };\n'
            '    remote_ts = [ "%s" ]; local_ts = [ "10.10.0.0/24" ]; }'
            % (name, remote, rport, algo, spi_in, key_in.hex(), spi_out, key_out.hex(),
               remote_ts))


def counters(stats):
    return (stats or {}).get("counters") or {}


def strongswan_missing():
    """What of strongSwan is not installed (a failure: scripts/deps.sh
    installs it), or None."""
    if not os.path.exists(CHARON):
        return "strongSwan's charon (%s) is not installed (scripts/deps.sh)" % CHARON
    if not os.path.exists(SWANCTL):
        return "swanctl is not installed (scripts/deps.sh)"
    for p in ("kernel-libipsec", "vici", "kernel-netlink", "socket-default"):
        if not os.path.exists("/usr/lib/ipsec/plugins/libstrongswan-%s.so" % p):
            return "strongSwan plugin %s is not installed (scripts/deps.sh)" % p
    return None


def charon_tun_skip(charon):
    """If charon could not create kernel-libipsec's TUN device, why (the
    precise log line), else None."""
    for l in charon.log_text().splitlines():
        if re.search(r"(failed to create TUN device|failed to open /dev/net/tun|"
                     r"failed to configure TUN device|creating TUN device failed)", l, re.I):
            return l.strip()
    return None


def main():
    nl.install_signal_cleanup()
    ck = h.Checker()
    ok, why = nl.environment_ok()
    if not ck.check(ok, "live test environment (root, hugepages, ip netns, binaries)", why):
        return ck.finish()
    why = strongswan_missing()
    if not ck.check(why is None, "strongSwan (charon, swanctl, kernel-libipsec, vici) is "
                    "installed", why or ""):
        return ck.finish()
    for tool in ("nft", "unshare", "mount"):
        if shutil.which(tool) is None:
            ck.check(False, "%s is installed (scripts/deps.sh)" % tool)
            return ck.finish()
    if not os.path.exists("/dev/net/tun"):
        # the one capability this test cannot do without: userspace ESP
        print("SKIP no /dev/net/tun: charon's kernel-libipsec needs a TUN device and this "
              "kernel has no XFRM to use instead", flush=True)
        return 77
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="natt-strongswan-")
    topo = Topology(workdir)
    gw = Gateway(topo, workdir)
    resp = cli = None
    echo = None
    lipsec = {}
    lipsec_prev = {}        # a rekeyed CHILD_SA's counts before the rekey
    drops_at_install = {}
    failed0 = ck.failed
    skip = None
    try:
        topo.setup()
        gw.start()
        # the host side of the exception path: the port's address on the TAP
        tap0 = gw.tap + "0"
        topo.ip("gw", "addr", "add", "198.51.100.2/24", "dev", tap0)
        topo.ip("gw", "link", "set", "dev", tap0, "up")
        tap_mac = json.loads(topo.ip("gw", "-j", "link", "show", tap0).stdout)[0]["address"]
        ck.check(tap_mac == topo.mac["g0"], "TAP %s has the outside port's MAC" % tap0,
                 "TAP %s, g0 %s" % (tap_mac, topo.mac["g0"]))
        # the inside port's address on its TAP: the inside namespace ARPs
        # for 10.10.0.1 through natt-gw's exception path, and the responder
        # charon needs an address in its local_ts (kernel-libipsec installs
        # a route with that source, or refuses the CHILD_SA)
        tap1 = gw.tap + "1"
        topo.ip("gw", "addr", "add", "10.10.0.1/24", "dev", tap1)
        topo.ip("gw", "link", "set", "dev", tap1, "up")
        echo = subprocess.Popen(["ip", "netns", "exec", topo.ns["in"], "/usr/bin/python3", "-c",
                                 ECHO_SERVER, str(UDP_ECHO_PORT)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        echo.stdout.readline()

        resp_text, cli_text = swanctl_texts()
        resp = Charon(topo, "gw", "responder", workdir)
        cli = Charon(topo, "cli", "initiator", workdir)
        resp.write_conf(resp_text)
        cli.write_conf(cli_text)
        for c in (resp, cli):
            try:
                c.start()
            except RuntimeError:
                skip = charon_tun_skip(c)
                if skip:
                    raise Skip("charon (%s) cannot create its kernel-libipsec TUN device: %s"
                               % (c.role, skip))
                raise
            skip = charon_tun_skip(c)
            if skip:
                raise Skip("charon (%s) cannot create its kernel-libipsec TUN device: %s"
                           % (c.role, skip))
            c.load()

        # ---- 1: IKE through the NAT and natt-gw's exception path
        s0 = counters(gw.show("stats")[0])
        t_ike = time.monotonic()
        for name, _, _, _, _ in CHILDREN:
            p = cli.swanctl("--initiate", "--child", name, "--timeout", "30", check=False,
                            timeout=60)
            ck.check(p.returncode == 0, "1: client initiates CHILD_SA %s" % name,
                     (p.stdout + p.stderr).strip()[-600:] if p.returncode else "")
        t_ike = time.monotonic() - t_ike
        r_ike, r_children = resp.list_sas()[0]
        c_ike, c_children = cli.list_sas()[0]
        rport = int(r_ike.get("remote-port") or 0)
        print("     responder sees the client at %s[%s] (nat-remote %s), client sees itself "
              "as %s[%s] -> %s[%s]; IKE took %.1f s"
              % (r_ike.get("remote-host"), r_ike.get("remote-port"), r_ike.get("nat-remote"),
                 c_ike.get("local-host"), c_ike.get("local-port"), c_ike.get("remote-host"),
                 c_ike.get("remote-port"), t_ike), flush=True)
        ck.check(r_ike.get("state") == "ESTABLISHED" and c_ike.get("state") == "ESTABLISHED",
                 "1: IKE_SA established on both sides",
                 "responder %s, client %s" % (r_ike.get("state"), c_ike.get("state")))
        ck.check(r_ike.get("remote-host") == "198.51.100.1" and r_ike.get("nat-remote") == "yes"
                 and c_ike.get("nat-local") == "yes",
                 "1: NAT detected (responder sees the NAT's address, the client knows it is "
                 "behind a NAT)", "responder remote %s nat-remote %s; client nat-local %s"
                 % (r_ike.get("remote-host"), r_ike.get("nat-remote"), c_ike.get("nat-local")))
        ck.check(r_ike.get("remote-port") not in (None, "500", "4500"),
                 "1: the NAT mapped the client's port 4500 to another port (masquerade random)",
                 "remote-port %s" % r_ike.get("remote-port"))
        for name, _, _, _, kl in CHILDREN:
            rc, cc = r_children.get(name, {}), c_children.get(name, {})
            ck.check(rc.get("state") == "INSTALLED" and cc.get("state") == "INSTALLED" and
                     rc.get("spi-in") == cc.get("spi-out") and rc.get("spi-out") ==
                     cc.get("spi-in") and rc.get("encap") == "yes" and
                     rc.get("encr-keysize") == str(kl * 8),
                     "1: CHILD_SA %s INSTALLED on both sides, UDP-encapsulated, AES-GCM-%d, "
                     "SPIs agree" % (name, kl * 8),
                     "responder %s; client %s" % (
                         {k: rc.get(k) for k in ("state", "spi-in", "spi-out", "encap",
                                                 "encr-alg", "encr-keysize")},
                         {k: cc.get(k) for k in ("state", "spi-in", "spi-out", "encap")}))
        rlog = resp.log_text()
        n500 = len(re.findall(r"received packet: from 198\.51\.100\.1\[\d+\] to "
                              r"198\.51\.100\.2\[500\]", rlog))
        n4500 = len(re.findall(r"received packet: from 198\.51\.100\.1\[\d+\] to "
                               r"198\.51\.100\.2\[4500\]", rlog))
        prop = re.search(r"selected proposal: (IKE:\S+)", rlog)
        ck.check(n500 > 0 and n4500 > 0, "1: the responder got IKE on UDP/500 (IKE_SA_INIT) and "
                 "on UDP/4500 (behind the non-ESP marker) from the NAT's address through the TAP",
                 "%d on 500, %d on 4500; %s" % (n500, n4500, prop.group(1) if prop else
                                                "no selected IKE proposal logged"))
        if not all(r_children.get(n, {}).get("state") == "INSTALLED" and
                   c_children.get(n, {}).get("state") == "INSTALLED" for n, *_ in CHILDREN):
            raise RuntimeError("no CHILD_SA: nothing to give natt-gw, the other checks "
                               "cannot run")
        s1 = counters(gw.show("stats")[0])
        ck.check(s1.get("exception_punted", 0) > s0.get("exception_punted", 0) and
                 s1.get("host_tx", 0) > s0.get("host_tx", 0),
                 "1: natt-gw punted the IKE to the host and sent the host's answers",
                 "exception_punted %s -> %s, host_tx %s -> %s"
                 % (s0.get("exception_punted"), s1.get("exception_punted"),
                    s0.get("host_tx"), s1.get("host_tx")))

        # ---- keys from the responder's log -> natt-gw tunnels
        keys = {c[0]: c for c in parse_child_keys(resp.log_text())}
        tunnels = []
        for name, _, addr, algo, kl in CHILDREN:
            rc = r_children.get(name, {})
            k = keys.get(name)
            if not ck.check(k is not None and len(k[3].get("encr_i", b"")) == kl + 4 and
                            len(k[3].get("encr_r", b"")) == kl + 4,
                            "keys: responder logged %s's encryption keys (%d+4 bytes each way)"
                            % (name, kl), "found %s" % (
                                {n: {kk: len(v) for kk, v in c[3].items()}
                                 for n, c in keys.items()})):
                continue
            _, spi_i, spi_o, kk = k
            ck.check("%08x" % spi_i == rc.get("spi-in") and "%08x" % spi_o == rc.get("spi-out"),
                     "keys: %s's SPIs in the log are those swanctl lists" % name,
                     "log %08x_i %08x_o, swanctl in %s out %s"
                     % (spi_i, spi_o, rc.get("spi-in"), rc.get("spi-out")))
            # natt-gw's inbound = what the initiator sends = the responder's
            # inbound SA, keyed with the initiator's key
            tunnels.append(tunnel_text("sw-" + name, algo, spi_i, kk["encr_i"], spi_o,
                                       kk["encr_r"], "198.51.100.1", rport, addr + "/32"))
        mark = len(gw.lines())
        s_pre = counters(gw.show("stats")[0])
        drops_pre = (gw.show("stats")[0] or {}).get("drops") or {}
        gw.write_config(gw.config(tunnels))
        m = gw.wait_log(re.compile("(%s)|(%s)" % (nl.RELOAD_OK_RE.pattern,
                                                  nl.RELOAD_REFUSED_RE.pattern)), mark, 20)
        ck.check(m is not None and m.group(1) is not None and len(tunnels) == len(CHILDREN),
                 "keys: natt-control reloaded the file with %d tunnels by itself" % len(tunnels),
                 m.group(0) if m else "no reload line in 20 s\n" + gw.log_tail(10))
        st_after, _ = gw.show("stats")
        drops_at_install = (st_after or {}).get("drops") or {}

        # ---- 2: traffic both ways through strongSwan and natt-gw
        for name, _, addr, _, _ in CHILDREN:
            traffic(ck, topo, "2", name, addr, 5 if name == CHILDREN[0][0] else 3)
        tun, err = gw.show("tunnels")
        tl = tun if isinstance(tun, list) else (tun or {}).get("tunnels", tun)
        print("     show tunnels: %s" % json.dumps(tl)[:1500], flush=True)

        for t in tl or []:
            if isinstance(t, dict) and t.get("name", "").startswith("sw-"):
                ck.check(t.get("remote_addr") == "198.51.100.1" and
                         t.get("remote_port") == rport and not t.get("mapping_changes"),
                         "2: natt-gw's %s sends to the NAT mapping 198.51.100.1:%d, no mapping "
                         "move" % (t["name"], rport), json.dumps(t)[:400])

        # ---- 4: strongSwan's NAT keepalives (charon sends them when it sent
        # nothing else to the peer for keep_alive seconds)
        ka, t0 = {}, time.monotonic()
        while time.monotonic() - t0 < 6 * KEEPALIVE_S + 5:
            time.sleep(1)
            ka = {}
            for name, _, _, _, _ in CHILDREN:
                t, err = gw.show("tunnel", "sw-" + name)
                ka["sw-" + name] = find_key(t, "keepalives") if t else err
            if sum(v for v in ka.values() if isinstance(v, int)) >= 2:
                break
        n_sent = len(re.findall(r"sending keep alive to 198\.51\.100\.2\[4500\]",
                                cli.log_text()))
        s_end = counters(gw.show("stats")[0])
        ck.check(sum(v for v in ka.values() if isinstance(v, int)) > 0,
                 "4: the client's NAT keepalives reach natt-gw and are attributed to a tunnel",
                 "per tunnel (show tunnel \"keepalives\"): %s; keepalives_attributed %s; the "
                 "client charon logged %d keepalives sent in all" %
                 (ka, s_end.get("keepalives_attributed"), n_sent))
        print("     NOTE the two tunnels share one NAT mapping (one IKE_SA, two CHILD_SAs): "
              "keepalives per tunnel %s" % ka, flush=True)

        # ---- 5: the client rekeys a CHILD_SA; the new keys go into the file
        # (same tunnel name: natt-control rekeys it, counters continue)
        rk_name, _, rk_addr, rk_algo, _ = CHILDREN[0]
        old_rc = r_children[rk_name]
        prev = cli.list_sas()[0][1].get(rk_name, {})
        lipsec_prev[rk_name] = {k: int(prev.get(k) or 0) for k in ("packets-in", "packets-out",
                                                                   "bytes-in", "bytes-out")}
        p = cli.swanctl("--rekey", "--child", rk_name, check=False)
        new_rc, t0 = {}, time.monotonic()
        while time.monotonic() - t0 < 20:
            new_rc = resp.list_sas()[0][1].get(rk_name, {})
            if new_rc.get("state") == "INSTALLED" and new_rc.get("spi-in") != old_rc["spi-in"]:
                break
            time.sleep(0.2)
        new_cc = cli.list_sas()[0][1].get(rk_name, {})
        ck.check(new_rc.get("state") == "INSTALLED" and
                 new_rc.get("spi-in") != old_rc["spi-in"] and
                 new_cc.get("spi-in") == new_rc.get("spi-out") and
                 new_cc.get("spi-out") == new_rc.get("spi-in"),
                 "5: client rekeyed CHILD_SA %s through the TAP (CREATE_CHILD_SA on 4500)"
                 % rk_name, "responder in %s out %s -> in %s out %s (%s); client in %s out %s; "
                 "swanctl: %s" % (old_rc.get("spi-in"), old_rc.get("spi-out"),
                                  new_rc.get("spi-in"), new_rc.get("spi-out"),
                                  new_rc.get("state"), new_cc.get("spi-in"),
                                  new_cc.get("spi-out"), (p.stdout + p.stderr).strip()[-200:]))
        k = {c[0]: c for c in parse_child_keys(resp.log_text())}.get(rk_name)
        if k is not None and "%08x" % k[1] == new_rc.get("spi-in"):
            tunnels[0] = tunnel_text("sw-" + rk_name, rk_algo, k[1], k[3]["encr_i"], k[2],
                                     k[3]["encr_r"], "198.51.100.1", rport, rk_addr + "/32")
            mark = len(gw.lines())
            gw.write_config(gw.config(tunnels))
            m = gw.wait_log(re.compile("(%s)|(%s)" % (nl.RELOAD_OK_RE.pattern,
                                                      nl.RELOAD_REFUSED_RE.pattern)), mark, 20)
            counts = nl.parse_reload_counts(m.group(0)) if m and m.group(1) else {}
            ck.check(m is not None and m.group(1) is not None and counts.get("rekeyed") == 1
                     and counts.get("unchanged") == 1,
                     "5: natt-control rekeyed sw-%s (rekeyed 1, unchanged 1)" % rk_name,
                     m.group(0) if m else "no reload line in 20 s\n" + gw.log_tail(10))
            traffic(ck, topo, "5", rk_name + " (rekeyed)", rk_addr, 3)
            t, err = gw.show("tunnel", "sw-" + rk_name)
            ck.check(find_key(t, "in_spi") == "0x" + new_rc.get("spi-in", "") and
                     find_key(t, "out_spi") == "0x" + new_rc.get("spi-out", ""),
                     "5: natt-gw's sw-%s runs on the new SPIs" % rk_name,
                     "in %s out %s" % (find_key(t, "in_spi"), find_key(t, "out_spi")))
        else:
            ck.check(False, "5: the responder logged the keys of the rekeyed %s" % rk_name,
                     "last %s in the log: %s" % (rk_name, k and ("%08x_i" % k[1])))

        # what strongSwan's libipsec counted, to compare with natt-gw's
        # counters once it stopped (no ESP flows any more from here)
        r_children2 = resp.list_sas()[0][1]
        c_children2 = cli.list_sas()[0][1]
        lipsec = {}
        for name, _, _, _, _ in CHILDREN:
            cc, rc = c_children2.get(name, {}), r_children2.get(name, {})
            lipsec[name] = {k: int(cc.get(k) or -1) + lipsec_prev.get(name, {}).get(k, 0)
                            for k in ("packets-in", "packets-out", "bytes-in", "bytes-out")}
            lipsec[name]["responder-packets-in"] = int(rc.get("packets-in") or -1)
            lipsec[name]["responder-packets-out"] = int(rc.get("packets-out") or -1)
    except Skip as e:
        print("SKIP %s" % e, flush=True)
        skip = str(e)
    except Exception as e:
        ck.check(False, "session", "%s: %s" % (type(e).__name__, e))
        if resp is not None:
            print("     responder log:\n%s" % resp.tail(15))
        if cli is not None:
            print("     initiator log:\n%s" % cli.tail(15))
        print("     natt-gw log:\n%s" % gw.log_tail(15))
    finally:
        for c in (cli, resp):
            if c is not None:
                c.stop()
        if echo is not None:
            try:
                os.killpg(echo.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            echo.wait()
        final = gw.stop()
        topo.teardown()
    if skip:
        shutil.rmtree(workdir, ignore_errors=True)
        return 77

    # ---- 3: accounting from the final --stats-json
    if ck.check(final is not None, "3: natt-gw wrote its --stats-json", gw.stats_path):
        c = final["counters"]
        d = final["drops"]
        lhs = c["rx_packets"] + c["fragments_out"] + c["icmp_too_big_sent"] + \
            c["keepalives_sent"] + c["arp_requests"]
        rhs = c["tx_packets"] + sum(d.values()) + c["fragmented"]
        ck.check(lhs == rhs, "3: rx + fragments_out + icmp_too_big_sent + keepalives_sent + "
                 "arp_requests == tx + drops + fragmented",
                 "%d == %d (rx %d, tx %d, drops %s)" % (lhs, rhs, c["rx_packets"],
                                                         c["tx_packets"],
                                                         {k: v for k, v in d.items() if v}))
        bad = {k: d.get(k, 0) - drops_at_install.get(k, 0)
               for k in ("auth_failed", "replay", "no_sa")}
        ck.check(not any(bad.values()), "3: no auth_failed / replay / no_sa drops after the "
                 "tunnels were installed", "%s (before the reload: %s)"
                 % (bad, {k: drops_at_install.get(k, 0) for k in bad}))
        print("     final counters: %s" % {k: v for k, v in c.items() if v}, flush=True)
        print("     final drops: %s" % {k: v for k, v in d.items() if v}, flush=True)
        for name, t in (final.get("tunnels") or {}).items():
            print("     tunnel %s: %s" % (name, t), flush=True)
        for name, _, _, _, _ in CHILDREN:
            t = (final.get("tunnels") or {}).get("sw-" + name) or {}
            ck.check(t.get("in_packets", 0) > 0 and t.get("out_packets", 0) > 0 and
                     not t.get("auth_failed") and not t.get("replay") and not t.get("policy"),
                     "3: tunnel sw-%s decrypted and encrypted, no auth/replay/policy drops" % name,
                     json.dumps(t))
        ck.check(c["decrypted"] > 0 and c["encrypted"] > 0,
                 "3: decrypted %d, encrypted %d" % (c["decrypted"], c["encrypted"]))
        # the independent count: strongSwan's libipsec on the client
        for name, _, _, _, _ in CHILDREN:
            t = (final.get("tunnels") or {}).get("sw-" + name) or {}
            li = lipsec.get(name)
            if li is None:
                continue
            ck.check(li["packets-out"] == t.get("in_packets") and
                     li["bytes-out"] == t.get("in_bytes") and
                     li["packets-in"] == t.get("out_packets") and
                     li["bytes-in"] == t.get("out_bytes"),
                     "3: %s: what the client's libipsec sealed natt-gw opened, what natt-gw "
                     "sealed the client's libipsec opened (packets and inner bytes)" % name,
                     "client out %d pkts %d B / natt-gw in %s pkts %s B; natt-gw out %s pkts "
                     "%s B / client in %d pkts %d B"
                     % (li["packets-out"], li["bytes-out"], t.get("in_packets"),
                        t.get("in_bytes"), t.get("out_packets"), t.get("out_bytes"),
                        li["packets-in"], li["bytes-in"]))
            ck.check(li["responder-packets-in"] == 0 and li["responder-packets-out"] == 0,
                     "3: %s: the responder charon's own libipsec saw no ESP (natt-gw consumes "
                     "it)" % name, "packets in %d out %d" % (li["responder-packets-in"],
                                                            li["responder-packets-out"]))
    print("     test ran %.1f s" % (time.monotonic() - t_start), flush=True)
    if ck.failed > failed0 or os.environ.get("NATT_KEEP"):
        print("     files kept in %s" % workdir, flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return ck.finish()


def find_key(obj, key):
    """The first value of key anywhere in a JSON structure."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find_key(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find_key(v, key)
            if r is not None:
                return r
    return None


if __name__ == "__main__":
    sys.exit(main())
