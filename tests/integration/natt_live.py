#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""natt_live.py - run the gateway on live veth ports and talk to it in phases.

natt_harness.py feeds pcap files that the gateway reads once at start; reload
tests need to inject traffic while the gateway runs, change the configuration,
and inject more. This harness runs natt-dataplane (and natt-control) inside a
private network namespace with two veth pairs:

      test (raw AF_PACKET)            gateway (DPDK net_af_packet)
      vo1  <------ veth ------>  vo0  port 0, role outside
      vi1  <------ veth ------>  vi0  port 1, role inside

The test writes frames into vo1 / vi1 with raw AF_PACKET sockets and captures
what the gateway sends out of vo0 / vi0 on the same sockets (a reader thread,
outgoing copies filtered out). Nothing else talks on these links: IPv6 is off
in the namespace before the links exist, no addresses, ARP and multicast off.

Truth about what the gateway received and did comes from the gateway itself:
natt-dataplane is run with --stats-interval, whose periodic lines (rx, tx,
decrypted, encrypted, drops by reason) are parsed live, and with --stats-json,
written when it exits (per-port, per-tunnel counters). So a frame lost in the
kernel (veth backlog, af_packet ring) shows as "rx counter short of what was
sent", never as a gateway drop; a frame the gateway sent that the capture
missed shows as "tx counter above what was captured" (and in the capture
socket's PACKET_STATISTICS drops).

Control plane: by default scripts/natt-gw runs natt-control (daemon mode when
it has one); natt-control can also be run by the harness itself
(start_control(), as scripts/natt-gw does), reloaded by rewriting the file
atomically (rename), in place, or by SIGHUP, and killed (kill_control()).

Use:
    L = Live("name")                 # or Live("name", mode="direct")
    L.start(config_text)             # returns once the first config is applied
    ex = L.exchange(outside_frames, inside_frames)   # send, settle, Exchange
    ex.inside / ex.outside / ex.drops() / ex.path_ok() / ex.path_detail()
    L.send_outside(frames); L.send_inside(frames)    # or by hand, then
    L.collect_inside(timeout); L.collect_outside(timeout)
    L.write_config(text, "rename" | "inplace"); L.sighup()
    mark = L.log_mark(); L.wait_reload(mark) -> ("applied"|"refused", match)
    L.kill_control(signal.SIGTERM); L.start_control()
    L.sample() (live counters), L.show_tunnels() (natt-control show --json),
    L.show_json("events") (any other show command)
    L.stop() -> final --stats-json; always called (atexit, SIGTERM handler)

Other topologies: a subclass overrides setup_links() (add_netns("x") makes
more namespaces of the run, deleted at stop; port_ifaces names the devices
of DPDK ports 0 and 1 in the gateway's namespace, self.ns), as test_nat.py
does for clients behind a NAT. Live(..., tap="PREFIX") runs the gateway with
--tap PREFIX (a TAP per port in self.ns). in_netns(ns) makes sockets in any
namespace for the test's own use.

Environment: NATT_BUILD (build dir), NATT_KEEP=1 (keep the work dir).
Needs root, hugepages (scripts/hugepages.sh), `ip netns`, the DPDK
net_af_packet PMD, and /usr/bin/python3 (scapy, via natt_traffic).
"""

import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6
CLONE_NEWNET = 0x40000000

NS_PREFIX = "natt-live-"

STATS_RE = re.compile(r"^rx (\d+) \([^)]*\)\s+tx (\d+) \([^)]*\)\s+decrypted (\d+) \([^)]*\)"
                      r"\s+encrypted (\d+) \([^)]*\)\s*$")
APPLIED_RE = re.compile(r"natt-control: applied generation (\d+)")
RELOAD_OK_RE = re.compile(r"natt-control: reload generation (\d+) applied on (\d+) worker\(s\) "
                          r"in ([0-9.]+) ms(?: \((.*)\))?")
RELOAD_REFUSED_RE = re.compile(r"natt-control: reload refused, running configuration kept: (.*)$")


def build_dir():
    return os.environ.get("NATT_BUILD") or str(REPO / "build")


def _run(cmd, check=True, **kw):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(cmd), p.returncode,
                                                       (p.stderr or p.stdout).strip()[-400:]))
    return p


def json_result(p):
    """A finished `natt-control ... --json` run -> (parsed, "") or (None, why)."""
    if p.returncode != 0:
        return None, "exit %d: %s" % (p.returncode, (p.stderr or p.stdout).strip()[-300:])
    try:
        return json.loads(p.stdout), ""
    except ValueError as e:
        return None, "not JSON (%s): %s" % (e, p.stdout[:300])


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def ready_pid(rundir):
    """The pid in natt-dataplane's <rundir>/natt_ready (written when its
    set-up is over), or None."""
    try:
        with open(os.path.join(rundir, "natt_ready")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


@contextlib.contextmanager
def in_netns(ns):
    """Run the body with this thread in network namespace ns. Sockets made
    in it stay in ns for good, so any thread can use them afterwards."""
    orig = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/var/run/netns/%s" % ns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(orig)
    finally:
        os.close(orig)
        os.close(target)


def drain(s):
    """Everything waiting on non-blocking socket s: [(data, address)]."""
    out = []
    while True:
        try:
            out.append(s.recvfrom(65535))
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
    return out


def _descendants(pid):
    """pids of all processes below pid (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def cleanup_stale(ns_prefix=NS_PREFIX):
    """Delete namespaces of earlier runs of this harness (names ns_prefix
    <pid>-...) whose owner process is gone, with whatever still runs in them,
    and their DPDK runtime dirs and hugepage files (prefixes the same)."""
    p = _run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(re.escape(ns_prefix) + r"(\d+)-", name)
        if not m or pid_alive(int(m.group(1))):
            continue
        pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _run(["ip", "netns", "del", name], check=False)
    # DPDK runtime dirs and hugepage files of dead runs (natt-gw killed
    # before its own cleanup ran): prefixes are <ns_prefix><pid>-<hex>
    stale = re.compile("^" + re.escape(ns_prefix) + r"(\d+)-[0-9a-f]+")
    try:
        with open("/proc/mounts") as f:
            mnts = [l.split()[1] for l in f if l.split()[2] == "hugetlbfs"]
    except OSError:
        mnts = []
    for d in ["/var/run/dpdk"] + mnts:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            m = stale.match(n)
            if m and not pid_alive(int(m.group(1))):
                path = os.path.join(d, n)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass


_installed = False
_live_objects = []


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


def install_signal_cleanup():
    """SIGTERM / SIGHUP end the test with SystemExit, so `finally` blocks and
    Live.stop() clean up (meson's timeout sends SIGTERM)."""
    global _installed
    if _installed:
        return
    _installed = True
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_term)
    import atexit
    atexit.register(lambda: [l.stop(quiet=True) for l in list(_live_objects)])


class Counters:
    """One sample of the dataplane's live counters (a --stats-interval line)."""

    def __init__(self, seq, rx, tx, decrypted, encrypted, drops, t):
        self.seq = seq
        self.rx = rx
        self.tx = tx
        self.decrypted = decrypted
        self.encrypted = encrypted
        self.drops = drops
        self.t = t

    def minus(self, other):
        d = {k: v - other.drops.get(k, 0) for k, v in self.drops.items()}
        d = {k: v for k, v in d.items() if v}
        return {"rx": self.rx - other.rx, "tx": self.tx - other.tx,
                "decrypted": self.decrypted - other.decrypted,
                "encrypted": self.encrypted - other.encrypted, "drops": d}

    def __repr__(self):
        return "rx %d tx %d dec %d enc %d drops %s" % (self.rx, self.tx, self.decrypted,
                                                      self.encrypted, self.drops)


class Exchange:
    """What one send-and-settle step did: frames captured on each side during
    it, the counter deltas, and whether the kernel path lost frames."""

    def __init__(self):
        self.sent_outside = 0
        self.sent_inside = 0
        self.inside = []        # frames the gateway sent out of its inside port
        self.outside = []       # ... out of its outside port
        self.delta = None       # Counters.minus()
        self.kernel_lost = 0    # sent but never counted by the gateway's rx
        self.capture_lost = 0   # counted tx but not captured
        self.settled = False
        self.note = ""
        self.during_result = None

    def drops(self):
        return dict((self.delta or {}).get("drops") or {})

    def path_ok(self):
        return self.settled and not self.kernel_lost and not self.capture_lost

    def path_detail(self):
        d = "sent %d outside + %d inside" % (self.sent_outside, self.sent_inside)
        if self.delta is not None:
            d += "; gateway rx +%d tx +%d" % (self.delta["rx"], self.delta["tx"])
        d += "; captured %d outside + %d inside" % (len(self.outside), len(self.inside))
        if self.kernel_lost:
            d += "; KERNEL PATH LOST %d frames before the gateway (not a gateway drop)" % \
                self.kernel_lost
        if self.capture_lost:
            d += "; CAPTURE MISSED %d frames the gateway sent" % self.capture_lost
        if not self.settled:
            d += "; counters did not settle"
        if self.note:
            d += "; " + self.note
        return d


class Live:
    """A gateway in its own network namespace, fed and captured live.

    mode "gw": scripts/natt-gw runs natt-dataplane and natt-control.
    mode "direct": the harness runs natt-dataplane (with the arguments
    scripts/natt-gw would use) and natt-control itself (start_control()),
    for tests that must own natt-control's lifetime."""

    # the gateway-side devices of DPDK ports 0 (outside) and 1 (inside)
    port_ifaces = ("vo0", "vi0")

    def __init__(self, name, mode="gw", lcores="0,1", stats_interval_ms=100,
                 max_tunnels=None, framecnt=8192, pps=20000, workdir=None, control_log=True,
                 tap=None):
        install_signal_cleanup()
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.mode = mode
        self.lcores = lcores
        self.stats_interval_ms = stats_interval_ms
        self.max_tunnels = max_tunnels
        self.framecnt = framecnt
        self.pps = pps
        self.workdir = workdir or tempfile.mkdtemp(prefix="natt-live-%s-" % self.name)
        self.ns = "%s%d-%s" % (NS_PREFIX, os.getpid(), os.urandom(3).hex())
        self.prefix = "natt-live-%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.cfg_path = os.path.join(self.workdir, "natt.cfg")
        self.stats_path = os.path.join(self.workdir, "stats.json")
        self.log_path = os.path.join(self.workdir, "natt-gw.log")
        self.ctl_log_path = os.path.join(self.workdir, "natt-control.log")
        self.use_control_log = control_log
        self.tap = tap               # --tap PREFIX (exception path), or None
        self.gw_proc = None
        self.ctl_proc = None         # natt-control started by us
        self.ctl_logs = []           # every control log file we wrote to
        self.socks = {}
        self.cap = {"outside": [], "inside": []}
        self.cap_lock = threading.Lock()
        self.reader = None
        self.reader_stop = threading.Event()
        self.log_off = 0
        self.log_buf = ""
        self.samples = []
        self.final_stats = None
        self.final_stats_error = None
        self.stopped = False
        self.namespaces = []         # ours, deleted at stop: self.ns first
        self.t_start = None
        self.gw_rc = None
        _live_objects.append(self)

    # ------------------------------------------------------------ namespace

    def ip(self, *args, check=True):
        return _run(["ip", "-n", self.ns] + list(args), check=check)

    def nsexec(self, *args, check=True):
        return _run(["ip", "netns", "exec", self.ns] + list(args), check=check)

    def add_netns(self, suffix=None):
        """Create a namespace of this run (self.ns, or self.ns-suffix, which
        cleanup_stale() also recognises) with IPv6 off before any link
        exists (no RS, no MLD, no DAD); it is deleted at stop()."""
        name = self.ns if suffix is None else "%s-%s" % (self.ns, suffix)
        _run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        _run(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
              "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1"])
        return name

    def _setup_netns(self):
        cleanup_stale()
        self.add_netns()
        self.setup_links()

    def setup_links(self):
        """The links of the gateway's namespace: two veth pairs whose far
        ends the test drives with raw sockets. A subclass that builds another
        topology overrides this (port_ifaces names the DPDK ports' devices)."""
        for a, b in (("vo0", "vo1"), ("vi0", "vi1")):
            self.ip("link", "add", a, "type", "veth", "peer", "name", b)
            for dev in (a, b):
                self.ip("link", "set", "dev", dev, "arp", "off", "multicast", "off")
                self.nsexec("ethtool", "-K", dev, "gro", "off", "gso", "off", "tso", "off",
                            "tx", "off", "rx", "off", check=False)
                self.ip("link", "set", "dev", dev, "up")
        self._open_sockets()

    def _open_sockets(self):
        with in_netns(self.ns):
            for side, dev in (("outside", "vo1"), ("inside", "vi1")):
                # protocol 0 until bound: nothing from other links slips in
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                try:
                    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)   # SO_RCVBUFFORCE
                    s.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)   # SO_SNDBUFFORCE
                except OSError:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
                s.bind((dev, ETH_P_ALL))
                self.socks[side] = s
        for s in self.socks.values():
            s.setblocking(False)
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    def _read_loop(self):
        by_fd = {s.fileno(): side for side, s in self.socks.items()}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        while not self.reader_stop.is_set():
            for fd, _ in poller.poll(50):
                side = by_fd[fd]
                s = self.socks[side]
                got = [data for data, addr in drain(s) if addr[2] != PACKET_OUTGOING]
                if got:
                    with self.cap_lock:
                        self.cap[side].extend(got)

    def capture_drops(self):
        """Frames the kernel dropped on our capture sockets (PACKET_STATISTICS
        tp_drops; reading resets them, so they are accumulated)."""
        res = {}
        for side, s in self.socks.items():
            try:
                raw = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                _, drops = struct.unpack("II", raw)
            except OSError:
                drops = 0
            self._capdrops = getattr(self, "_capdrops", {})
            self._capdrops[side] = self._capdrops.get(side, 0) + drops
            res[side] = self._capdrops[side]
        return res

    def link_stats(self):
        """Kernel counters of the four veth ends ({dev: {rx_dropped, ...}})."""
        p = self.ip("-s", "-j", "link", "show", check=False)
        res = {}
        try:
            for l in json.loads(p.stdout or "[]"):
                st = l.get("stats64") or l.get("stats") or {}
                res[l.get("ifname")] = {"rx_packets": st.get("rx", {}).get("packets"),
                                        "rx_dropped": st.get("rx", {}).get("dropped"),
                                        "tx_packets": st.get("tx", {}).get("packets"),
                                        "tx_dropped": st.get("tx", {}).get("dropped")}
        except ValueError:
            pass
        return res

    # ------------------------------------------------------------ processes

    def eal_args(self):
        vd = "iface=%s,qpairs=1,framecnt=%d"
        out, inside = self.port_ifaces
        return ["-l", self.lcores, "--no-pci",
                "--vdev", "net_af_packet0," + vd % (out, self.framecnt),
                "--vdev", "net_af_packet1," + vd % (inside, self.framecnt)]

    def _dp_opts(self):
        o = ["--stats-json", self.stats_path, "--stats-interval", str(self.stats_interval_ms)]
        if self.max_tunnels:
            o += ["--max-tunnels", str(self.max_tunnels)]
        if self.tap:
            o += ["--tap", self.tap]
        return o

    def natt_gw_supports(self, opt):
        try:
            return opt in (REPO / "scripts" / "natt-gw").read_text()
        except OSError:
            return False

    def write_config(self, text, how="rename"):
        """Write the config file: "rename" (temp file in the same directory,
        then rename over it: what editors and config management do),
        "inplace" (truncate and write the same inode, one write call)."""
        if how == "rename":
            tmp = os.path.join(self.workdir, ".natt.cfg.tmp%d" % os.getpid())
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.cfg_path)
        elif how == "inplace":
            fd = os.open(self.cfg_path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
            try:
                b = text.encode()
                n = os.write(fd, b)
                if n != len(b):
                    raise OSError("short write %d of %d" % (n, len(b)))
            finally:
                os.close(fd)
        else:
            raise ValueError(how)
        self.config_text = text

    def start(self, config_text, timeout=60, wait_applied=True):
        """Namespace, links, gateway; returns once natt-control applied the
        first configuration (or raises RuntimeError with the log tail)."""
        self.t_start = time.monotonic()
        self._setup_netns()
        self.write_config(config_text)
        env = dict(os.environ, NATT_BUILD=build_dir())
        log = open(self.log_path, "ab")
        if self.mode == "gw":
            cmd = ["ip", "netns", "exec", self.ns, str(REPO / "scripts" / "natt-gw"),
                   "--config", self.cfg_path, "--file-prefix", self.prefix]
            if self.use_control_log and self.natt_gw_supports("--control-log"):
                cmd += ["--control-log", self.ctl_log_path]
                self.ctl_logs.append(self.ctl_log_path)
            cmd += self._dp_opts() + ["--"] + self.eal_args()
        else:
            build = Path(build_dir())
            cmd = ["ip", "netns", "exec", self.ns, str(build / "dataplane" / "natt-dataplane")] + \
                self.eal_args() + ["--base-virtaddr=0x200000000000", "--file-prefix", self.prefix,
                                   "--proc-type=primary", "--"] + self._dp_opts()
        with open(os.path.join(self.workdir, "cmd.txt"), "a") as f:
            f.write("NATT_BUILD=%s %s\n" % (env["NATT_BUILD"], " ".join(cmd)))
        self.gw_proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                        start_new_session=True)
        log.close()
        if self.mode == "direct":
            rundir = "/var/run/dpdk/%s" % self.prefix
            t0 = time.monotonic()
            while time.monotonic() - t0 < 20:
                if self.gw_proc.poll() is not None:
                    raise RuntimeError("natt-dataplane exited during start-up (exit %s)\n%s"
                                       % (self.gw_proc.returncode, self.log_tail()))
                # natt_ready: set-up (ports, --tap devices) is over, so a
                # secondary may attach (scripts/natt-gw waits for it too)
                if ready_pid(rundir) == self.gw_proc.pid and \
                        os.path.exists(rundir + "/mp_socket"):
                    break
                time.sleep(0.1)
            if wait_applied:
                self.start_control()
        if wait_applied:
            m = self.wait_log(APPLIED_RE, None, timeout)
            if m is None:
                raise RuntimeError("no 'applied generation' within %d s\n%s"
                                   % (timeout, self.log_tail()))
        # a first stats sample, so that exchanges have a baseline
        self.sample(fresh=True, timeout=10)
        return self

    def control_cmd(self, *app_args):
        build = Path(build_dir())
        lcore = re.split(r"[,-]", self.lcores)[0]
        return ["ip", "netns", "exec", self.ns, str(build / "control" / "natt-control"),
                "-l", lcore, "--proc-type=secondary", "--file-prefix", self.prefix, "--no-pci",
                "--log-level=lib.eal:error", "--"] + list(app_args)

    def start_control(self, once=False, log_path=None):
        """Run natt-control ourselves (daemon unless once) on the config file.
        With once, waits for it and returns (exit code, output)."""
        args = ["--config", self.cfg_path] + (["--once"] if once else [])
        cmd = self.control_cmd(*args)
        with open(os.path.join(self.workdir, "cmd.txt"), "a") as f:
            f.write("%s\n" % " ".join(cmd))
        if once:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=120)
            return p.returncode, p.stdout + p.stderr
        path = log_path or self.ctl_log_path
        if path not in self.ctl_logs:
            self.ctl_logs.append(path)
        lf = open(path, "ab")
        self.ctl_proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        lf.close()
        return self.ctl_proc

    def control_pid(self):
        """pid of the running natt-control (ours, or the one natt-gw runs)."""
        if self.ctl_proc is not None and self.ctl_proc.poll() is None:
            return self.ctl_proc.pid
        if self.gw_proc is None:
            return None
        for p in _descendants(self.gw_proc.pid):
            if _comm(p).startswith("natt-control"):
                return p
        return None

    def sighup(self):
        pid = self.control_pid()
        if pid is None:
            raise RuntimeError("no natt-control running")
        os.kill(pid, signal.SIGHUP)
        return pid

    def kill_control(self, sig=signal.SIGTERM, timeout=10):
        """Signal natt-control and wait until it is gone. Returns (pid, how
        it ended: exit code / -signal, or None if unknown)."""
        pid = self.control_pid()
        if pid is None:
            return None, None
        os.kill(pid, sig)
        if self.ctl_proc is not None and self.ctl_proc.pid == pid:
            try:
                rc = self.ctl_proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                rc = self.ctl_proc.wait()
            self.ctl_proc = None
            return pid, rc
        t0 = time.monotonic()
        while pid_alive(pid) and _comm(pid).startswith("natt-control") and \
                time.monotonic() - t0 < timeout:
            time.sleep(0.05)
        return pid, None

    def gateway_alive(self):
        return self.gw_proc is not None and self.gw_proc.poll() is None

    def show_tunnels(self):
        """`natt-control ... -- show tunnels --json` parsed, or (None, error)."""
        return self.show_json("tunnels")

    def show_json(self, *what):
        """`natt-control ... -- show WHAT --json` (tunnels, stats, events, ...)
        parsed, or (None, error)."""
        try:
            p = subprocess.run(self.control_cmd("show", *what, "--json"),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30)
        except subprocess.TimeoutExpired:
            return None, "timed out"
        return json_result(p)

    # ------------------------------------------------------------ logs

    def _read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_off)
                data = f.read()
        except OSError:
            return
        if not data:
            return
        self.log_off += len(data)
        self.log_buf += data.decode(errors="replace")
        lines = self.log_buf.split("\n")
        self.log_buf = lines.pop()
        # a stats sample is an "rx ..." line followed by its "  drops:" line
        pend = getattr(self, "_pend", None)
        for l in lines:
            m = STATS_RE.match(l)
            if m:
                pend = [int(x) for x in m.groups()]
                continue
            if pend is not None and l.startswith("  drops:"):
                drops = {}
                for kv in l[len("  drops:"):].split():
                    k, _, v = kv.partition("=")
                    if v.isdigit():
                        drops[k] = int(v)
                self.samples.append(Counters(len(self.samples), *pend, drops, time.monotonic()))
                pend = None
        self._pend = pend

    def _log_files(self):
        return list(self.ctl_logs) + [self.log_path]

    @staticmethod
    def _file_lines(path):
        """Non-empty, non-stats lines of one log file."""
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        return [l for l in text.splitlines() if l.strip() and not STATS_RE.match(l)
                and not l.startswith("  drops:")]

    def control_log(self):
        """Everything natt-control wrote (its own log files, and the natt-gw
        log, where natt-gw without --control-log sends it), as one text."""
        return "\n".join(l for p in self._log_files() for l in self._file_lines(p))

    def log_mark(self):
        """A position in every log file, for new_log_lines() / wait_log()."""
        return {p: len(self._file_lines(p)) for p in self._log_files()}

    def new_log_lines(self, since):
        since = since or {}
        out = []
        for p in self._log_files():
            out += self._file_lines(p)[since.get(p, 0):]
        return out

    def wait_log(self, regex, since, timeout):
        """First match of regex in the log lines written after mark since
        (None / {} = from the start), waiting up to timeout seconds."""
        rx = re.compile(regex) if isinstance(regex, str) else regex
        t0 = time.monotonic()
        while True:
            for l in self.new_log_lines(since):
                m = rx.search(l)
                if m:
                    return m
            if time.monotonic() - t0 > timeout or not self.gateway_alive():
                return None
            time.sleep(0.05)

    def wait_reload(self, since, timeout=15):
        """("applied", match) / ("refused", match) / (None, None): the first
        reload outcome logged after mark since."""
        t0 = time.monotonic()
        while True:
            for l in self.new_log_lines(since):
                m = RELOAD_OK_RE.search(l)
                if m:
                    return "applied", m
                m = RELOAD_REFUSED_RE.search(l)
                if m:
                    return "refused", m
            if time.monotonic() - t0 > timeout or not self.gateway_alive():
                return None, None
            time.sleep(0.05)

    def log_tail(self, n=30):
        out = []
        for p in self.ctl_logs + [self.log_path]:
            try:
                with open(p, errors="replace") as f:
                    ls = [l for l in f.read().splitlines()
                          if not STATS_RE.match(l) and not l.startswith("  drops:")]
                out.append("    == %s" % os.path.basename(p))
                out += ["    | " + l for l in ls[-n:]]
            except OSError as e:
                out.append("    | (no %s: %s)" % (p, e))
        return "\n".join(out)

    # ------------------------------------------------------------ counters

    def sample(self, fresh=False, timeout=5):
        """The latest live counter sample; with fresh, one printed after this
        call (two intervals later, so it was taken after anything before)."""
        self._read_log()
        if not fresh:
            return self.samples[-1] if self.samples else None
        n0 = len(self.samples)
        t0 = time.monotonic()
        while len(self.samples) < n0 + 2:
            if time.monotonic() - t0 > timeout or not self.gateway_alive():
                break
            time.sleep(self.stats_interval_ms / 4000.0)
            self._read_log()
        return self.samples[-1] if self.samples else None

    # ------------------------------------------------------------ traffic

    def _send(self, side, frames, pps=None):
        s = self.socks[side]
        pps = pps or self.pps
        chunk = 16
        t0 = time.monotonic()
        for i in range(0, len(frames), chunk):
            for fr in frames[i:i + chunk]:
                while True:
                    try:
                        s.send(fr)
                        break
                    except BlockingIOError:
                        select.select([], [s], [], 0.01)
            ahead = t0 + (i + chunk) / pps - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        return len(frames)

    def send_outside(self, frames, pps=None):
        """Frames into vo1: the gateway's outside port receives them."""
        return self._send("outside", list(frames), pps)

    def send_inside(self, frames, pps=None):
        return self._send("inside", list(frames), pps)

    def mark(self):
        with self.cap_lock:
            return {k: len(v) for k, v in self.cap.items()}

    def captured(self, side, since=0):
        with self.cap_lock:
            return list(self.cap[side][since:])

    def collect_inside(self, timeout=1.0, since=None, count=None):
        return self._collect("inside", timeout, since, count)

    def collect_outside(self, timeout=1.0, since=None, count=None):
        return self._collect("outside", timeout, since, count)

    def _collect(self, side, timeout, since, count):
        """Frames captured on side after mark since (default: everything not
        collected before), waiting until count frames or timeout / quiet."""
        if since is None:
            since = getattr(self, "_collected", {}).get(side, 0)
        t0 = time.monotonic()
        last, quiet = -1, time.monotonic()
        while True:
            n = len(self.captured(side, since))
            if count is not None and n >= count:
                break
            if n != last:
                last, quiet = n, time.monotonic()
            if time.monotonic() - t0 > timeout or (count is None and
                                                   time.monotonic() - quiet > 0.3):
                break
            time.sleep(0.02)
        got = self.captured(side, since)
        self._collected = getattr(self, "_collected", {})
        self._collected[side] = since + len(got)
        return got

    def _send_mixed(self, items, pps):
        """items: [(side, frame)] sent in order at pps."""
        t0 = time.monotonic()
        for i, (side, fr) in enumerate(items):
            s = self.socks[side]
            while True:
                try:
                    s.send(fr)
                    break
                except BlockingIOError:
                    select.select([], [s], [], 0.01)
            if i % 8 == 7:
                ahead = t0 + (i + 1) / pps - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def exchange(self, outside=(), inside=(), timeout=20, pps=None, during=None,
                 duration=None):
        """Send frames, wait until the gateway counted all of them and every
        frame it sent was captured, and return an Exchange.

        Without during: the outside frames, then the inside frames, at pps.
        With during (a callable): a sender thread interleaves outside and
        inside frames evenly over `duration` seconds while during() runs here;
        its return value is in Exchange.during_result (an exception it raises
        is re-raised after the traffic settled)."""
        outside, inside = list(outside), list(inside)
        ex = Exchange()
        before = self.sample(fresh=True)
        if before is None:
            raise RuntimeError("no live counters (is --stats-interval printed?)\n%s"
                               % self.log_tail())
        m = self.mark()
        cd0 = self.capture_drops()
        err = None
        if during is None:
            ex.sent_outside = self.send_outside(outside, pps)
            ex.sent_inside = self.send_inside(inside, pps)
        else:
            # interleaved: each side keeps its order, the two spread evenly
            keyed = [((i + 0.5) / len(outside), 0, i) for i in range(len(outside))] + \
                [((i + 0.5) / len(inside), 1, i) for i in range(len(inside))]
            items = [("outside", outside[i]) if k == 0 else ("inside", inside[i])
                     for _, k, i in sorted(keyed)]
            rate = len(items) / duration if duration else (pps or self.pps)
            th = threading.Thread(target=self._send_mixed, args=(items, rate), daemon=True)
            th.start()
            try:
                ex.during_result = during()
            except BaseException as e:      # settle the traffic first
                err = e
            th.join()
            ex.sent_outside, ex.sent_inside = len(outside), len(inside)
        want_rx = before.rx + ex.sent_outside + ex.sent_inside
        t0 = time.monotonic()
        after, prev, stable = before, None, 0
        while time.monotonic() - t0 < timeout and self.gateway_alive():
            after = self.sample(fresh=True)
            n_cap = sum(v - m[k] for k, v in self.mark().items())
            same = prev is not None and (after.rx, after.tx, n_cap) == prev
            prev = (after.rx, after.tx, n_cap)
            if after.rx >= want_rx and n_cap >= after.tx - before.tx and same:
                ex.settled = True
                break
            # nothing moves any more but rx is short: the kernel lost frames
            stable = stable + 1 if same else 0
            if stable >= 5:
                break
        ex.delta = after.minus(before)
        ex.inside = self.captured("inside", m["inside"])
        ex.outside = self.captured("outside", m["outside"])
        ex.kernel_lost = max(0, want_rx - after.rx)
        ex.capture_lost = max(0, (after.tx - before.tx) - len(ex.inside) - len(ex.outside))
        cd1 = self.capture_drops()
        cdrop = sum(cd1.values()) - sum(cd0.values())
        if cdrop:
            ex.note = "capture socket dropped %d" % cdrop
        if after.rx > want_rx:
            ex.note += "%sgateway counted %d frames more than were sent" % (
                "; " if ex.note else "", after.rx - want_rx)
        if ex.kernel_lost:
            ls = self.link_stats()
            ex.note += "%skernel link counters: %s" % (
                "; " if ex.note else "",
                ", ".join("%s rx %s (dropped %s) tx %s" % (d, v["rx_packets"], v["rx_dropped"],
                                                          v["tx_packets"])
                          for d, v in sorted(ls.items()) if d != "lo"))
        if err is not None:
            raise err
        return ex

    # ------------------------------------------------------------ stop

    def stop(self, quiet=False, timeout=30):
        """Stop natt-control and the gateway (SIGTERM: the dataplane writes
        --stats-json), then delete the namespace. Returns the final stats."""
        if self.stopped:
            return self.final_stats
        self.stopped = True
        try:
            if self.ctl_proc is not None and self.ctl_proc.poll() is None:
                self.ctl_proc.terminate()
                try:
                    self.ctl_proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.ctl_proc.kill()
                    self.ctl_proc.wait()
            if self.gw_proc is not None and self.gw_proc.poll() is None:
                try:
                    os.kill(self.gw_proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.gw_rc = self.gw_proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    for sig in (signal.SIGTERM, signal.SIGKILL):
                        try:
                            os.killpg(self.gw_proc.pid, sig)
                        except ProcessLookupError:
                            break
                        try:
                            self.gw_proc.wait(timeout=5)
                            break
                        except subprocess.TimeoutExpired:
                            pass
            elif self.gw_proc is not None:
                self.gw_rc = self.gw_proc.returncode
            # anything left in our process groups
            for p in (self.gw_proc, self.ctl_proc):
                if p is not None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            try:
                with open(self.stats_path) as f:
                    self.final_stats = json.load(f)
            except (OSError, ValueError) as e:
                self.final_stats_error = str(e)
            self._read_log()
        finally:
            self._teardown_netns()
            if self.mode == "direct":
                self._clean_dpdk_files()
            if self in _live_objects:
                _live_objects.remove(self)
        return self.final_stats

    def _clean_dpdk_files(self):
        try:
            with open("/proc/mounts") as f:
                mnts = [l.split()[1] for l in f if l.split()[2] == "hugetlbfs"]
        except OSError:
            mnts = []
        for mnt in mnts:
            for fn in os.listdir(mnt):
                if fn.startswith(self.prefix + "map_"):
                    try:
                        os.unlink(os.path.join(mnt, fn))
                    except OSError:
                        pass
        shutil.rmtree("/var/run/dpdk/%s" % self.prefix, ignore_errors=True)

    def _teardown_netns(self):
        self.reader_stop.set()
        if self.reader is not None:
            self.reader.join(timeout=2)
        for s in self.socks.values():
            try:
                s.close()
            except OSError:
                pass
        self.socks = {}
        while self.namespaces:
            ns = self.namespaces.pop()
            pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:   # only ever our own processes live in it
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run(["ip", "netns", "del", ns], check=False)

    def finish(self, failed):
        """Remove the work dir unless something failed or NATT_KEEP is set."""
        if failed or os.environ.get("NATT_KEEP"):
            print("     files kept in %s (cmd.txt, natt.cfg, natt-gw.log, natt-control.log, "
                  "stats.json)" % self.workdir, flush=True)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(quiet=True)
        return False


# ---------------------------------------------------------------- helpers

def environment_ok():
    """(ok, reason) - can this machine run live tests at all?"""
    if os.geteuid() != 0:
        return False, "needs root"
    if shutil.which("ip") is None:
        return False, "no `ip` (iproute2)"
    try:
        with open("/proc/sys/vm/nr_hugepages") as f:
            if int(f.read()) <= 0:
                return False, "no hugepages reserved (run scripts/hugepages.sh)"
    except (OSError, ValueError):
        return False, "cannot read /proc/sys/vm/nr_hugepages"
    b = Path(build_dir())
    for p in (b / "dataplane" / "natt-dataplane", b / "control" / "natt-control"):
        if not p.exists():
            return False, "%s not built" % p
    return True, ""


def parse_reload_counts(text):
    """{added, removed, updated, rekeyed, unchanged} from the parenthesised
    part of a reload log line, as far as it says them (`+N`, `-N`, `updated N`,
    `rekeyed N`, `unchanged N`, or `added N` / `removed N`)."""
    res = {}
    if not text:
        return res
    for key, pats in (("added", (r"(?<![\w-])\+(\d+)", r"\badded[ =:]*(\d+)")),
                      ("removed", (r"(?<![\w+])-(\d+)\b", r"\b(?:removed|deleted)[ =:]*(\d+)")),
                      ("updated", (r"\bupdated[ =:]*(\d+)", r"(\d+) updated")),
                      ("rekeyed", (r"\brekeyed[ =:]*(\d+)", r"(\d+) rekeyed")),
                      ("unchanged", (r"\bunchanged[ =:]*(\d+)", r"(\d+) unchanged"))):
        for p in pats:
            m = re.search(p, text)
            if m:
                res[key] = int(m.group(1))
                break
    return res


if __name__ == "__main__":
    sys.exit("library module; run test_reload.py or test_reload_scale.py")
