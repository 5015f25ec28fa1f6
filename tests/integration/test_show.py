#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The operator's view of a running gateway: `natt-control show`, Prometheus
text and the /natt/ telemetry endpoints, checked against the traffic model.

One gateway (2 workers) is started with scripts/natt-gw and kept running
(no --exit-after-idle). Its outside port gets ~800 valid ESP packets over 24
tunnels plus per-tunnel hostile ones (tampered ICV, replays, policy
violations, each tunnel its own counts), unknown SPIs, keepalives, IKE and
garbage; one tunnel's peer moves to a new NAT mapping halfway; one tunnel
gets nothing. Its inside port gets ~300 packets to send out. The config sets
idle_timeout, so every tunnel goes idle once the traffic is over.

While it runs: show tunnels / tunnel NAME / stats / drops / events (--json,
text), show stats --prometheus [--tunnels] (parsed by a strict 0.0.4 parser
below), the telemetry socket (our own SOCK_SEQPACKET client and
dpdk-telemetry.py), `scripts/natt-gw --file-prefix P show`, the
--textfile written by the natt-control daemon, a missing tunnel (exit 1) and
a prefix with no gateway (exit 2). Every number is compared with what
natt_traffic's model says, never with another output of ours. Finally the
gateway is stopped and its output must be exactly the expected packets:
the shows did not disturb forwarding.

Usage: /usr/bin/python3 tests/integration/test_show.py  (NATT_BUILD, NATT_SEED,
NATT_KEEP as in natt_harness.py). Exit 1 on any failure.
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_live as nl          # noqa: E402
import natt_traffic as nt       # noqa: E402

N_TUNNELS = 24          # with traffic; one more has none
N_VALID_IN = 800
N_VALID_OUT = 300
REPLAY_WINDOW = 1024
WORKERS = 2
MAX_TUNNELS = 4096
IDLE_TIMEOUT = 2        # seconds (dataplane.idle_timeout)
SHOW_TIMEOUT = 60       # one `show` may take this long (ASan, busy box)
READY_TIMEOUT = 90      # gateway up and every input packet counted
IDLE_WAIT = 60          # every tunnel reported idle


# ---------------------------------------------------------------- traffic

def build(rng):
    gw = nt.Gateway()
    tunnels = nt.make_tunnels(rng, N_TUNNELS + 1)
    active, idle = tunnels[:-1], tunnels[-1]
    tr = nt.Traffic(gw, tunnels, REPLAY_WINDOW, rng)
    cfg = nt.config_text(gw, tunnels, REPLAY_WINDOW, comment="test_show.py: %s has no "
                         "traffic, %s moves to a new NAT mapping" % (idle.name, active[0].name))
    cfg = cfg.replace("replay_window = %d;" % REPLAY_WINDOW, "replay_window = %d; "
                      "idle_timeout = %d;" % (REPLAY_WINDOW, IDLE_TIMEOUT), 1)

    # per-tunnel hostile counts differ, so that swapped counters show
    plan = []
    for tun in active:
        plan += [("tampered_icv", tun)] * rng.randrange(0, 4)
        plan += [("replay_copy", tun)] * rng.randrange(0, 3)
        plan += [("policy", tun)] * rng.randrange(0, 3)
    plan += [("unknown_spi", None)] * 3 + [("keepalive", None)] * 4 + \
        [("ike_500", None)] * 2 + [("garbage_not_ip", None)] * 2
    events = ["valid"] * N_VALID_IN + plan
    rng.shuffle(events)
    events = ["valid"] * 50 + events    # replays need something to copy

    mover = active[0]
    old_map = (mover.remote, mover.remote_port)
    new_map = ("198.51.100.%d" % rng.randrange(100, 200), rng.randrange(1024, 65536))
    moved_at = len(events) // 2
    pending = []

    def emit(kind, tun):
        if kind == "tampered_icv":
            return tr.tampered_icv(tun)
        if kind == "replay_copy":
            return tr.replay_copy(tun)
        if kind == "policy":
            return tr.policy_violation(tun)
        if kind == "unknown_spi":
            return tr.unknown_spi()
        if kind == "keepalive":
            return tr.keepalive(rng.choice(active))
        if kind == "ike_500":
            return tr.ike_500(rng.choice(active))
        return tr.garbage_not_ip()

    for i, ev in enumerate(events):
        if i == moved_at:
            # the peer's NAT moves: from now on every frame of it comes from there
            for _ in range(50):
                if tr.valid(mover, src=new_map[0], sport=new_map[1],
                            desc="valid from the new NAT mapping") is not None:
                    break
            else:
                raise RuntimeError("test bug: cannot move %s" % mover.name)
            mover.remote, mover.remote_port = new_map
        if ev == "valid":
            for _ in range(50):
                if tr.valid(rng.choice(active)) is not None:
                    break
            todo, pending = pending, []
        else:
            todo = [ev]
        for kind, tun in todo:
            if emit(kind, tun) is None:
                pending.append((kind, tun))
    for _ in range(2000):
        if not pending:
            break
        kind, tun = pending.pop(0)
        if emit(kind, tun) is None:
            pending.append((kind, tun))
            tr.valid(tun)
    if pending:
        raise RuntimeError("test bug: could not emit %s" % pending)

    otr = nt.OutTraffic(gw, tunnels, rng)
    n = 0
    while n < N_VALID_OUT:
        if otr.valid(rng.choice(active), length=rng.randrange(nt.MIN_INNER, otr.L + 1)):
            n += 1
    return gw, tr, otr, cfg, idle, mover, old_map, new_map


# ---------------------------------------------------------------- gateway

def natt_control():
    return os.path.join(h.build_dir(), "control", "natt-control")


def show(prefix, *args):
    """Run `natt-control show ARGS` against prefix: (exit, stdout, stderr, seconds)."""
    cmd = [natt_control(), "-l", "0", "--proc-type=secondary", "--file-prefix", prefix,
           "--no-pci", "--log-level=lib.eal:error", "--", "show"] + list(args)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=SHOW_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %d s" % SHOW_TIMEOUT, SHOW_TIMEOUT
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def show_json(ck, prefix, *args):
    """show ... --json, parsed; None (and a FAIL) if it did not work."""
    rc, out, err, secs = show(prefix, *(list(args) + ["--json"]))
    doc, why = None, ""
    if rc != 0:
        why = "exit %s: %s" % (rc, err.strip()[-300:])
    else:
        try:
            doc = json.loads(out)
        except ValueError as e:
            why = "not JSON: %s" % e
    ck.check(doc is not None, "show %s --json: exit 0, valid JSON (%.2f s)"
             % (" ".join(args), secs), why)
    return doc


class Gateway:
    def __init__(self, wd, prefix):
        self.wd = wd
        self.prefix = prefix
        self.p = None
        self.log = os.path.join(wd, "natt-gw.log")
        self.stats = os.path.join(wd, "stats.json")
        self.textfile = os.path.join(wd, "natt.prom")

    def start(self, cfg_text, outside_rx, inside_rx):
        wd = self.wd
        cfg = os.path.join(wd, "natt.cfg")
        with open(cfg, "w") as f:
            f.write(cfg_text)
        self.cfg = cfg
        sfx = lambda q: "" if q == 0 else str(q)
        q = range(WORKERS)
        for name, frames in (("in", outside_rx), ("inside_in", inside_rx)):
            for k in q:
                nt.write_pcap(os.path.join(wd, "%s%s.pcap" % (name, sfx(k))), frames if k == 0 else [])
        arg = lambda kind, name: ",".join("%s=%s" % (kind, os.path.join(wd, "%s%s.pcap" % (name, sfx(k))))
                                        for k in q)
        vdev0 = "net_pcap0," + arg("rx_pcap", "in") + "," + arg("tx_pcap", "outside_out")
        vdev1 = "net_pcap1," + arg("rx_pcap", "inside_in") + "," + arg("tx_pcap", "out")
        cmd = [str(h.REPO / "scripts" / "natt-gw"), "--config", cfg, "--stats-json", self.stats,
               "--file-prefix", self.prefix, "--max-tunnels", str(MAX_TUNNELS),
               "--textfile", self.textfile, "--",
               "--lcores", h.worker_lcores(WORKERS), "--no-pci", "--vdev", vdev0, "--vdev", vdev1]
        env = dict(os.environ, NATT_BUILD=h.build_dir())
        with open(os.path.join(wd, "cmd.txt"), "w") as f:
            f.write("NATT_BUILD=%s %s\n" % (env["NATT_BUILD"], " ".join(cmd)))
        self.logf = open(self.log, "wb")
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, env=env, cwd=wd,
                                  start_new_session=True)

    def running(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        """SIGINT to the group (natt-gw stops the dataplane, which writes
        --stats-json and closes the pcaps); returns the exit status."""
        if self.p is None:
            return None
        h._stop_group(self.p)
        self.logf.close()
        return self.p.returncode

    def log_tail(self, n=25):
        r = h.Run(self.wd)
        return r.log_tail(n)

    def frames(self, name):
        out = []
        for k in range(WORKERS):
            out += nt.read_pcap(os.path.join(self.wd, "%s%s.pcap" % (name, "" if k == 0 else k)))
        return out


def wait_until(pred, timeout, step=0.25):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


# ---------------------------------------------------------------- Prometheus

PROM_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROM_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
PROM_VALUE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN")
PROM_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_prom(text):
    """Parse the Prometheus text exposition format 0.0.4 strictly:
    {family: {"help", "type", "samples": {labels tuple: float}}}. Raises
    ValueError on: a missing final newline, bad metric/label names, label
    values with other escapes than \\\\ \\" \\n, bad numbers, HELP/TYPE twice or
    TYPE after a sample, samples of one metric not contiguous, a series twice."""
    if not text.endswith("\n"):
        raise ValueError("no newline at the end")
    fam = {}
    done = set()        # families whose samples are over
    cur = None

    def family(name):
        return fam.setdefault(name, {"help": None, "type": None, "samples": {}})

    for ln, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (ln, line[:120])
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not PROM_METRIC.fullmatch(name):
                    raise ValueError("%s: bad metric name" % where)
                f = family(name)
                if parts[1] == "HELP":
                    doc = parts[3] if len(parts) > 3 else ""
                    if re.fullmatch(r"(?:[^\\]|\\[\\n])*", doc) is None:
                        raise ValueError("%s: bad escape in HELP" % where)
                    if f["help"] is not None:
                        raise ValueError("%s: second HELP" % where)
                    f["help"] = doc
                else:
                    if len(parts) != 4 or parts[3] not in PROM_TYPES:
                        raise ValueError("%s: bad TYPE" % where)
                    if f["type"] is not None or f["samples"]:
                        raise ValueError("%s: TYPE twice or after samples" % where)
                    f["type"] = parts[3]
            continue
        m = PROM_METRIC.match(line)
        if not m:
            raise ValueError("%s: no metric name" % where)
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            i += 1
            while line[i] != "}":
                lm = PROM_LABEL.match(line, i)
                if not lm or line[lm.end():lm.end() + 2] != '="':
                    raise ValueError("%s: bad label at %d" % (where, i))
                lname, i = lm.group(0), lm.end() + 2
                val = []
                while line[i] != '"':
                    if line[i] == "\\":
                        esc = {"\\": "\\", '"': '"', "n": "\n"}.get(line[i + 1])
                        if esc is None:
                            raise ValueError("%s: bad escape in a label value" % where)
                        val.append(esc)
                        i += 2
                    else:
                        val.append(line[i])
                        i += 1
                i += 1
                if lname in labels:
                    raise ValueError("%s: label %s twice" % (where, lname))
                labels[lname] = "".join(val)
                if line[i] == ",":
                    i += 1
                elif line[i] != "}":
                    raise ValueError("%s: expected , or }" % where)
            i += 1
        rest = line[i:]
        if not rest.startswith(" "):
            raise ValueError("%s: no space before the value" % where)
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2) or not PROM_VALUE.fullmatch(fields[0]) or (
                len(fields) == 2 and not re.fullmatch(r"-?[0-9]+", fields[1])):
            raise ValueError("%s: bad value or timestamp" % where)
        if name != cur:
            if name in done:
                raise ValueError("%s: samples of %s not together" % (where, name))
            if cur is not None:
                done.add(cur)
            cur = name
        f = family(name)
        key = tuple(sorted(labels.items()))
        if key in f["samples"]:
            raise ValueError("%s: series twice" % where)
        f["samples"][key] = float(fields[0])
    return fam


def prom_conventions(fam):
    """Our own rules on top of the format: natt_ prefix, HELP and TYPE for
    every metric, counters end in _total."""
    bad = []
    for name, f in fam.items():
        if not name.startswith("natt_"):
            bad.append("%s: no natt_ prefix" % name)
        if f["help"] is None or f["type"] is None:
            bad.append("%s: no HELP/TYPE" % name)
        if f["type"] == "counter" and not name.endswith("_total"):
            bad.append("%s: counter without _total" % name)
    return bad


def check_parser(ck):
    """The strict parser accepts the format and refuses what it must refuse."""
    good = ('# HELP a_total A \\\\ b\\n.\n# TYPE a_total counter\na_total{x="1",y="q\\"\\\\\\n"} 1\n'
            'a_total{x="2"} 2.5e3 1700000000000\n# a comment\n\nb -Inf\nc NaN\n')
    bad = {
        "no final newline": "a 1",
        "samples of a metric not together": "a 1\nb 1\na{x=\"1\"} 1\n",
        "series twice": "a{x=\"1\"} 1\na{x=\"1\"} 2\n",
        "TYPE after a sample": "a 1\n# TYPE a gauge\n",
        "unknown TYPE": "# TYPE a counters\na 1\n",
        "bad label escape": "a{x=\"\\t\"} 1\n",
        "bad metric name": "9a 1\n",
        "bad value": "a 1,5\n",
        "label twice": "a{x=\"1\",x=\"2\"} 1\n",
        "two HELP": "# HELP a x\n# HELP a y\na 1\n",
        "bad HELP escape": "# HELP a x\\ty\na 1\n",
    }
    try:
        fam = parse_prom(good)
        ok = fam["a_total"]["samples"][(("x", "1"), ("y", 'q"\\\n'))] == 1 and \
            fam["a_total"]["help"] == "A \\\\ b\\n."
    except (ValueError, IndexError, KeyError) as e:
        ok = False
        print("     parser refused valid text: %s" % e)
    missed = []
    for why, text in bad.items():
        try:
            parse_prom(text)
            missed.append(why)
        except (ValueError, IndexError):
            pass
    ck.check(ok and not missed, "strict Prometheus parser: accepts the format, refuses %d "
             "malformed texts" % len(bad), "accepted: %s" % ", ".join(missed))


def pv(fam, name, **labels):
    """Value of one series, or None."""
    f = fam.get(name)
    if f is None:
        return None
    return f["samples"].get(tuple(sorted(labels.items())))


# ---------------------------------------------------------------- telemetry

def telemetry(prefix, cmds):
    """Ask the dataplane's telemetry socket: {cmd: parsed reply value}."""
    base = "/var/run/dpdk" if os.geteuid() == 0 else \
        os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "dpdk")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(20)
    try:
        s.connect(os.path.join(base, prefix, "dpdk_telemetry.v2"))
        info = json.loads(s.recv(16384).decode())
        res = {}
        for c in cmds:
            s.send(c.encode())
            reply = json.loads(s.recv(info["max_output_len"]).decode())
            res[c] = reply.get(c.split(",", 1)[0])
        return res
    finally:
        s.close()


# ---------------------------------------------------------------- checks

def expected(tr, otr):
    """The model's numbers: per tunnel, drops, totals."""
    per = tr.per_tunnel()
    for name, c in otr.per_tunnel().items():
        per[name].update(c)
    drops = Counter(tr.expected_drops())
    drops.update(otr.expected_drops())
    n_in = len(tr.frames)
    n_inside = len(otr.frames)
    fwd_in = len(tr.expected_out())
    fwd_out = len(otr.forwarded())
    return per, drops, n_in, n_inside, fwd_in, fwd_out


def check_tunnels_json(ck, doc, tr, per, idle, mover, new_map):
    rows = {t.get("name"): t for t in (doc or {}).get("tunnels", [])}
    ck.check(doc is not None and doc.get("count") == len(tr.tunnels) and
             set(rows) == {t.name for t in tr.tunnels},
             "show tunnels --json: exactly the %d configured tunnels" % len(tr.tunnels),
             "count %s, names %s" % ((doc or {}).get("count"), sorted(rows)[:8]))
    keys = ("in_packets", "in_bytes", "out_packets", "out_bytes", "auth_failed", "replay",
            "policy")
    for key in keys:
        bad = ["%s expected %d got %s" % (n, c[key], (rows.get(n) or {}).get(key))
               for n, c in per.items() if (rows.get(n) or {}).get(key) != c[key]]
        ck.check(not bad and sum(c[key] for c in per.values()) > 0,
                 "show tunnels --json: tunnels.*.%s as the model (total %d)"
                 % (key, sum(c[key] for c in per.values())), h._first(bad))
    bad = []
    for t in tr.tunnels:
        r = rows.get(t.name) or {}
        if r.get("in_spi") != "0x%08x" % t.in_spi or r.get("out_spi") != "0x%08x" % t.out_spi:
            bad.append("%s spi %s/%s" % (t.name, r.get("in_spi"), r.get("out_spi")))
        if (r.get("remote_addr"), r.get("remote_port")) != (t.remote, t.remote_port):
            bad.append("%s peer %s:%s, expected %s:%d" % (t.name, r.get("remote_addr"),
                                                          r.get("remote_port"), t.remote,
                                                          t.remote_port))
        if r.get("mapping_changes") != (1 if t is mover else 0):
            bad.append("%s mapping_changes %s" % (t.name, r.get("mapping_changes")))
        if not isinstance(r.get("owner"), int) or not 0 <= r["owner"] < WORKERS:
            bad.append("%s owner %s" % (t.name, r.get("owner")))
        if r.get("grace_spi") is not None:
            bad.append("%s grace_spi %s" % (t.name, r.get("grace_spi")))
        now = time.time()
        li = r.get("last_in_unix")
        if t is idle:
            if li is not None or r.get("last_in_ago_s") is not None:
                bad.append("%s (no traffic) last_in %s" % (t.name, li))
        elif not isinstance(li, (int, float)) or not now - 600 < li <= now + 5 or \
                not isinstance(r.get("last_in_ago_s"), (int, float)):
            bad.append("%s last_in %s" % (t.name, li))
        lo = r.get("last_out_unix")
        if per[t.name]["out_packets"] and not (isinstance(lo, (int, float)) and
                                                now - 600 < lo <= now + 5):
            bad.append("%s last_out %s" % (t.name, lo))
        if not per[t.name]["out_packets"] and lo is not None:
            bad.append("%s (nothing sent) last_out %s" % (t.name, lo))
    ck.check(not bad, "show tunnels --json: SPIs, current peer mapping (%s moved to %s:%d), "
             "mapping changes, owner, last in/out times" % (mover.name, new_map[0], new_map[1]),
             h._first(bad))
    t = (doc or {}).get("totals") or {}
    want = {k: sum(c[k] for c in per.values()) for k in keys}
    got = {k: t.get(k) for k in keys}
    ck.check(got == want, "show tunnels --json: totals", "expected %s got %s" % (want, got))


def check_tunnels_text(ck, out, tr):
    lines = out.rstrip("\n").split("\n")
    rows = lines[1:-1]
    names = [r.split()[1] for r in rows if len(r.split()) > 1]
    widths = {len(r) for r in rows}
    hdr = lines[0] if lines else ""
    ok = (sorted(names) == sorted(t.name for t in tr.tunnels) and len(widths) == 1 and
          hdr.startswith("     ID  NAME") and
          len(hdr) == len(rows[0]) - 1 + len("GRACE_SPI") and
          lines[-1].startswith("%d tunnel(s) of max %d" % (len(tr.tunnels), MAX_TUNNELS)))
    ck.check(ok, "show tunnels: one aligned row per tunnel, header, footer",
             "rows %d, widths %s, footer %r" % (len(rows), sorted(widths), lines[-1][:80]))


def check_stats_json(ck, doc, drops, n_in, n_inside, fwd_in, fwd_out, cfg_path, n_tunnels):
    doc = doc or {}
    c = doc.get("counters") or {}
    want = {"rx_packets": n_in + n_inside, "tx_packets": fwd_in + fwd_out,
            "encrypted": fwd_out, "nat_mapping_changes": 1}
    got = {k: c.get(k) for k in want}
    ck.check(got == want, "show stats --json: counters rx/tx/encrypted/nat_mapping_changes",
             "expected %s got %s" % (want, got))
    ck.check(isinstance(c.get("decrypted"), int) and c["decrypted"] >= fwd_in,
             "show stats --json: decrypted >= forwarded inbound (%d)" % fwd_in,
             "decrypted %s" % c.get("decrypted"))
    bad = ["%s expected %d got %s" % (r, drops.get(r, 0), (doc.get("drops") or {}).get(r))
           for r in h.drop_reasons() if (doc.get("drops") or {}).get(r) != drops.get(r, 0)]
    ck.check(not bad, "show stats --json: every drop reason as the model", h._first(bad))
    ports = {p.get("port"): p for p in doc.get("ports") or []}
    p0, p1 = ports.get(0) or {}, ports.get(1) or {}
    got = (p0.get("rx_packets"), p0.get("tx_packets"), p1.get("rx_packets"), p1.get("tx_packets"))
    ck.check(got == (n_in, fwd_out, n_inside, fwd_in) and p0.get("name") == "net_pcap0",
             "show stats --json: ports (0 outside, 1 inside)",
             "expected %s got %s" % ((n_in, fwd_out, n_inside, fwd_in), got))
    ok = (doc.get("workers") == WORKERS and doc.get("max_tunnels") == MAX_TUNNELS and
          doc.get("tunnels_live") == n_tunnels and doc.get("n_ports") == 2 and
          isinstance(doc.get("uptime_s"), (int, float)) and doc["uptime_s"] > 0)
    ck.check(ok, "show stats --json: workers %d, max_tunnels %d, tunnels_live %d"
             % (WORKERS, MAX_TUNNELS, n_tunnels),
             "workers %s max %s live %s ports %s uptime %s" % (
                 doc.get("workers"), doc.get("max_tunnels"), doc.get("tunnels_live"),
                 doc.get("n_ports"), doc.get("uptime_s")))
    pw = doc.get("per_worker") or []
    sums = Counter()
    for w in pw:
        sums.update({k: v for k, v in (w.get("counters") or {}).items()})
    ck.check(len(pw) == WORKERS and sums["rx_packets"] == n_in + n_inside and
             all(w.get("active") for w in pw),
             "show stats --json: %d active workers whose rx_packets add up" % WORKERS,
             "%d workers, rx sum %s" % (len(pw), sums["rx_packets"]))
    r = doc.get("reload") or {}
    gens = {w.get("generation") for w in pw}
    ok = (r.get("last_status") == "ok" and r.get("reloads_failed") == 0 and
          r.get("reloads_ok", 0) >= 1 and r.get("config_path") == cfg_path and
          r.get("tunnels") == n_tunnels and r.get("last_error") == "" and
          gens == {r.get("generation")} and doc.get("generation") == r.get("generation") and
          isinstance(r.get("last_ok_unix"), (int, float)))
    ck.check(ok, "show stats --json: reload status ok, config path, %d tunnels, every worker "
             "at the journal's generation" % n_tunnels, json.dumps(r)[:400] +
             " worker generations %s" % sorted(gens, key=str))


def check_drops_json(ck, doc, drops):
    doc = doc or {}
    d = doc.get("drops") or {}
    reasons = h.drop_reasons()
    bad = ["%s expected %d got %s" % (r, drops.get(r, 0), d.get(r))
           for r in reasons if d.get(r) != drops.get(r, 0)]
    ck.check(not bad and set(d) == set(reasons),
             "show drops --json: every reason of natt_drop.h, as the model", h._first(bad))
    consumed = drops.get("keepalive", 0) + drops.get("ike", 0)
    errors = sum(drops.values()) - consumed
    pw = Counter()
    for w in doc.get("per_worker") or []:
        pw.update(w.get("drops") or {})
    ck.check(doc.get("errors") == errors and doc.get("consumed") == consumed and
             sorted(doc.get("not_errors") or []) == ["ike", "keepalive"] and
             all(pw[r] == drops.get(r, 0) for r in reasons),
             "show drops --json: errors %d, consumed %d, per-worker blocks add up"
             % (errors, consumed), "errors %s consumed %s" % (doc.get("errors"),
                                                              doc.get("consumed")))


def check_prometheus(ck, text, tag, per, drops, n_in, n_inside, fwd_in, fwd_out, n_tunnels,
                     tunnels):
    try:
        fam = parse_prom(text)
    except (ValueError, IndexError) as e:
        return ck.check(False, "%s: parses as Prometheus text format 0.0.4" % tag, str(e))
    ck.check(True, "%s: parses as Prometheus text format 0.0.4 (%d metrics, %d series)"
             % (tag, len(fam), sum(len(f["samples"]) for f in fam.values())))
    bad = prom_conventions(fam)
    ck.check(not bad, "%s: natt_ prefix, HELP and TYPE everywhere, counters end in _total"
             % tag, h._first(bad))
    bad = ["%s expected %d got %s" % (r, drops.get(r, 0), pv(fam, "natt_drops_total", reason=r))
           for r in h.drop_reasons() if pv(fam, "natt_drops_total", reason=r) != drops.get(r, 0)]
    ck.check(not bad, '%s: natt_drops_total{reason="..."} as the model' % tag, h._first(bad))
    got = (pv(fam, "natt_rx_packets_total"), pv(fam, "natt_tx_packets_total"),
           pv(fam, "natt_encrypted_total"), pv(fam, "natt_tunnels_live"),
           pv(fam, "natt_workers"),
           pv(fam, "natt_port_rx_packets_total", port="0", device="net_pcap0"),
           pv(fam, "natt_port_tx_packets_total", port="1", device="net_pcap1"))
    want = (n_in + n_inside, fwd_in + fwd_out, fwd_out, n_tunnels, WORKERS, n_in, fwd_in)
    ck.check(got == want, "%s: rx/tx/encrypted totals, tunnels_live, workers, per-port" % tag,
             "expected %s got %s" % (want, got))
    wsum = sum(pv(fam, "natt_worker_rx_packets_total", worker=str(w)) or 0
               for w in range(WORKERS))
    ck.check(wsum == n_in + n_inside, "%s: natt_worker_rx_packets_total{worker} add up" % tag,
             "sum %s" % wsum)
    got = (pv(fam, "natt_config_reloads_total", result="failed"),
           pv(fam, "natt_config_last_reload_success"),
           pv(fam, "natt_config_last_reload_status", status="ok"))
    ck.check(got == (0, 1, 1) and (pv(fam, "natt_config_reloads_total", result="ok") or 0) >= 1
             and (pv(fam, "natt_config_generation") or 0) >= 1 and
             pv(fam, "natt_config_last_apply_seconds") is not None,
             "%s: config reload gauges (ok, success 1, generation, durations)" % tag,
             "failed/success/status_ok %s" % (got,))
    has_tunnels = "natt_tunnel_in_packets_total" in fam
    if not tunnels:
        return ck.check(not has_tunnels, "%s: no per-tunnel series without --tunnels" % tag)
    bad = []
    for name, c in per.items():
        got = [v for k, v in fam["natt_tunnel_in_packets_total"]["samples"].items()
               if dict(k).get("tunnel") == name]
        gotb = [v for k, v in fam["natt_tunnel_out_bytes_total"]["samples"].items()
                if dict(k).get("tunnel") == name]
        gota = [v for k, v in fam["natt_tunnel_drops_total"]["samples"].items()
                if dict(k).get("tunnel") == name and dict(k).get("reason") == "auth_failed"]
        if got != [c["in_packets"]] or gotb != [c["out_bytes"]] or gota != [c["auth_failed"]]:
            bad.append("%s in_packets %s out_bytes %s auth_failed %s (expected %d, %d, %d)"
                       % (name, got, gotb, gota, c["in_packets"], c["out_bytes"],
                          c["auth_failed"]))
    ck.check(not bad and len(fam["natt_tunnel_in_packets_total"]["samples"]) == len(per),
             "%s: per-tunnel series (in_packets, out_bytes, drops) as the model" % tag,
             h._first(bad))


def check_events(ck, doc, tr, mover, old_map, new_map):
    evs = (doc or {}).get("events") or []
    seqs = [e.get("seq") for e in evs]
    ck.check(bool(evs) and seqs == list(range(seqs[0], seqs[0] + len(seqs))) and
             doc.get("next_seq") == seqs[-1] + 1,
             "show events --json: consecutive sequence numbers, oldest first",
             "seqs %s.. next %s" % (seqs[:5], (doc or {}).get("next_seq")))
    maps = [e for e in evs if e.get("type") == "nat_mapping"]
    want = {"tunnel": mover.name, "spi": "0x%08x" % mover.in_spi, "addr": new_map[0],
            "port": new_map[1], "old_addr": old_map[0], "old_port": old_map[1]}
    got = [{k: e.get(k) for k in want} for e in maps]
    ck.check(got == [want], "show events --json: one nat_mapping event, %s %s:%d -> %s:%d"
             % (mover.name, old_map[0], old_map[1], new_map[0], new_map[1]), "got %s" % got)
    idle = Counter(e.get("tunnel") for e in evs if e.get("type") == "idle")
    bad_val = [e for e in evs if e.get("type") == "idle" and
               not (isinstance(e.get("value"), int) and e["value"] >= IDLE_TIMEOUT)]
    ck.check(idle == Counter(t.name for t in tr.tunnels) and not bad_val,
             "show events --json: one idle event per tunnel, idle >= %d s" % IDLE_TIMEOUT,
             "idle events %s; bad values %s" % (dict(idle), bad_val[:2]))
    ck.check(any(e.get("type") == "reload_ok" and e.get("tunnel") is None for e in evs) and
             all(isinstance(e.get("time_unix"), (int, float)) for e in evs),
             "show events --json: reload_ok event, every event timed")


def check_telemetry(ck, prefix, per, drops, n_in, n_inside, fwd_in, fwd_out, tr, mover,
                    new_map):
    names = [t.name for t in tr.tunnels]
    cmds = ["/natt/stats", "/natt/drops", "/natt/drops,0", "/natt/drops,1", "/natt/ports",
            "/natt/tunnels", "/natt/tunnels,%d" % (MAX_TUNNELS - 1), "/natt/tunnel," + mover.name,
            "/natt/tunnel,no-such-tunnel", "/natt/events,48", "/natt/drops,%d" % WORKERS]
    try:
        r = telemetry(prefix, cmds)
    except (OSError, ValueError) as e:
        return ck.check(False, "telemetry: socket answers", str(e))
    st = r["/natt/stats"] or {}
    c = st.get("counters") or {}
    ok = (c.get("rx_packets") == n_in + n_inside and c.get("tx_packets") == fwd_in + fwd_out and
          st.get("tunnels_live") == len(names) and st.get("workers") == WORKERS and
          (st.get("reload") or {}).get("last_status") == "ok" and
          st.get("drops") == sum(drops.values()))
    ck.check(ok, "telemetry /natt/stats: counters, tunnels_live, reload status",
             json.dumps(st)[:400])
    d = r["/natt/drops"] or {}
    bad = [rr for rr in h.drop_reasons() if d.get(rr) != drops.get(rr, 0)]
    w = Counter(r["/natt/drops,0"] or {})
    w.update(r["/natt/drops,1"] or {})
    ck.check(not bad and all(w[rr] == drops.get(rr, 0) for rr in h.drop_reasons()) and
             r["/natt/drops,%d" % WORKERS] is None,
             "telemetry /natt/drops[,W]: as the model, workers add up, bad worker -> null",
             "wrong: %s" % bad)
    p = r["/natt/ports"] or {}
    got = ((p.get("0") or {}).get("rx_packets"), (p.get("1") or {}).get("tx_packets"))
    ck.check(got == (n_in, fwd_in), "telemetry /natt/ports", "got %s" % (got,))
    t = r["/natt/tunnels"] or {}
    ck.check(sorted(t.get("names") or []) == sorted(names) and t.get("tunnels_live") ==
             len(names) and t.get("more") == 0 and t.get("count") == len(names) and
             (r["/natt/tunnels,%d" % (MAX_TUNNELS - 1)] or {}).get("count") == 0,
             "telemetry /natt/tunnels: every name, count, paging", json.dumps(t)[:300])
    one = r["/natt/tunnel," + mover.name] or {}
    pc = per[mover.name]
    got = {k: one.get(k) for k in ("in_packets", "out_packets", "auth_failed", "replay",
                                   "policy", "mapping_changes", "remote", "in_spi")}
    want = {"in_packets": pc["in_packets"], "out_packets": pc["out_packets"],
            "auth_failed": pc["auth_failed"], "replay": pc["replay"], "policy": pc["policy"],
            "mapping_changes": 1, "remote": "%s:%d" % new_map, "in_spi": "0x%08x" % mover.in_spi}
    ck.check(got == want and r["/natt/tunnel,no-such-tunnel"] is None,
             "telemetry /natt/tunnel,NAME: counters as the model; unknown name -> null",
             "expected %s got %s" % (want, got))
    ev = (r["/natt/events,48"] or {}).get("events") or {}
    types = Counter(e.get("type") for e in ev.values())
    ck.check(types["idle"] == len(names) and types["nat_mapping"] == 1 and
             len(ev) <= 48, "telemetry /natt/events,48: the idle and nat_mapping events",
             "types %s" % dict(types))
    try:
        p = subprocess.run(["/usr/bin/dpdk-telemetry.py", "-f", prefix], input="/natt/drops\n",
                           capture_output=True, text=True, timeout=30)
        doc = json.loads(p.stdout.strip().splitlines()[-1])["/natt/drops"]
        ok = all(doc.get(rr) == drops.get(rr, 0) for rr in h.drop_reasons())
        why = p.stderr.strip()[-200:]
    except (OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as e:
        ok, why = False, str(e)
    ck.check(ok, "dpdk-telemetry.py -f PREFIX: /natt/drops", "" if ok else why)


def check_output(ck, gwp, tr, otr):
    """After the stop: the inside port sent exactly the expected inner packets
    (as multisets: two workers, two TX queues), the outside port as many ESP
    packets as the model forwards."""
    try:
        out = gwp.frames("out")
        outside = gwp.frames("outside_out")
    except (OSError, ValueError) as e:
        return ck.check(False, "output pcaps readable", str(e))
    got = Counter(h._ip_of(f)[0] for f in out)
    want = Counter(f.out_ip for f in tr.expected_out())
    ck.check(got == want, "forwarding undisturbed: inside port sent exactly the %d expected "
             "packets" % sum(want.values()), "%d sent, %d missing, %d unexpected" % (
                 len(out), sum((want - got).values()), sum((got - want).values())))
    ck.check(len(outside) == len(otr.forwarded()),
             "forwarding undisturbed: outside port sent %d ESP packets" % len(otr.forwarded()),
             "got %d" % len(outside))


# ---------------------------------------------------------------- main

def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    gw, tr, otr, cfg, idle, mover, old_map, new_map = build(rng)
    per, drops, n_in, n_inside, fwd_in, fwd_out = expected(tr, otr)
    n_tunnels = len(tr.tunnels)
    print("traffic: %d outside frames (%d to forward), %d inside frames (%d to forward), "
          "%d tunnels; drops %s" % (n_in, fwd_in, n_inside, fwd_out, n_tunnels,
                                    {k: v for k, v in drops.items() if v}), flush=True)
    check_parser(ck)
    if not h.self_check(ck, "show", tr) or not h.gateway_present(ck):
        return ck.finish()
    ck.check(os.access(natt_control(), os.X_OK), "natt-control built", natt_control())
    wd = h.make_workdir("show")
    prefix = "natt-show-%d-%d" % (os.getpid(), rng.randrange(1 << 30))
    failed = ck.failed
    gwp = Gateway(wd, prefix)
    # a natt_ready that a crashed run under this prefix left behind: natt-gw
    # waits for the one with its own dataplane's pid
    ready = os.path.join("/var/run/dpdk", prefix, "natt_ready")
    os.makedirs(os.path.dirname(ready), exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(ready, "w") as f:
        f.write("%d\n" % dead.pid)
    gwp.start(cfg, [f.data for f in tr.frames], [f.data for f in otr.frames])
    try:
        run_checks(ck, gwp, prefix, tr, otr, per, drops, n_in, n_inside, fwd_in, fwd_out,
                   n_tunnels, idle, mover, old_map, new_map)
        pid = nl.ready_pid(os.path.dirname(ready))
        ck.check(pid not in (None, dead.pid) and nl.pid_alive(pid),
                 "natt_ready holds the running dataplane's pid", "pid %s" % pid)
    finally:
        rc = gwp.stop()
    ck.check(rc == 0, "gateway stopped cleanly (exit 0)",
             "" if rc == 0 else "exit %s\n%s" % (rc, gwp.log_tail()))
    ck.check(not os.path.exists(ready), "natt_ready removed when the gateway stopped", ready)
    check_output(ck, gwp, tr, otr)
    try:
        with open(gwp.stats) as f:
            final = json.load(f)
        bad = [r for r in h.drop_reasons() if final["drops"].get(r) != drops.get(r, 0)]
        ck.check(not bad, "--stats-json at exit: drops still as the model", h._first(bad))
    except (OSError, ValueError, KeyError) as e:
        ck.check(False, "--stats-json at exit readable", str(e))
    h.finish_workdir(ck, wd, failed)
    return ck.finish()


def run_checks(ck, gwp, prefix, tr, otr, per, drops, n_in, n_inside, fwd_in, fwd_out,
               n_tunnels, idle, mover, old_map, new_map):
    # up: every input frame counted, every forward sent
    state = {}

    def ready():
        if not gwp.running():
            return True
        rc, out, _, _ = show(prefix, "stats", "--json")
        if rc != 0:
            return False
        try:
            c = json.loads(out)["counters"]
        except (ValueError, KeyError):
            return False
        state["c"] = c
        return c["rx_packets"] == n_in + n_inside and c["tx_packets"] == fwd_in + fwd_out
    t0 = time.monotonic()
    ok = wait_until(ready, READY_TIMEOUT) and gwp.running()
    ck.check(ok, "gateway up, every input frame counted (%.1f s)" % (time.monotonic() - t0),
             "" if ok else "running %s, last counters %s\n%s" % (gwp.running(), state.get("c"),
                                                                 gwp.log_tail()))
    if not ok:
        return

    # idle: idle_timeout after the last packet every tunnel is reported idle
    def all_idle():
        rc, out, _, _ = show(prefix, "tunnels", "--json")
        try:
            rows = json.loads(out)["tunnels"] if rc == 0 else []
        except (ValueError, KeyError):
            return False
        return len(rows) == n_tunnels and all(r.get("idle") is True for r in rows)
    t0 = time.monotonic()
    ck.check(wait_until(all_idle, IDLE_WAIT, 0.5), "every tunnel idle %d s after its last "
             "packet (%.1f s)" % (IDLE_TIMEOUT, time.monotonic() - t0))
    # the events of those idle periods reach the journal through natt-control
    wait_until(lambda: sum(1 for e in (show_quiet_events(prefix) or [])
                           if e.get("type") == "idle") >= n_tunnels, 20, 0.5)

    doc = show_json(ck, prefix, "tunnels")
    check_tunnels_json(ck, doc, tr, per, idle, mover, new_map)
    rc, out, err, secs = show(prefix, "tunnels")
    ck.check(rc == 0, "show tunnels: exit 0 (%.2f s)" % secs, err if rc else "")
    check_tunnels_text(ck, out, tr)

    doc = show_json(ck, prefix, "tunnel", mover.name)
    t = (doc or {}).get("tunnel") or {}
    pc = per[mover.name]
    want = {"name": mover.name, "remote_addr": new_map[0], "remote_port": new_map[1],
            "prev_remote_addr": old_map[0], "prev_remote_port": old_map[1],
            "mapping_changes": 1, "in_packets": pc["in_packets"], "in_bytes": pc["in_bytes"],
            "out_packets": pc["out_packets"], "out_bytes": pc["out_bytes"], "idle": True,
            "installed": True}
    got = {k: t.get(k) for k in want}
    ck.check(got == want and isinstance(t.get("last_mapping_unix"), (int, float)) and
             isinstance(t.get("created_unix"), (int, float)),
             "show tunnel %s --json: counters, peer moved %s:%d -> %s:%d" % (
                 mover.name, old_map[0], old_map[1], new_map[0], new_map[1]),
             "expected %s got %s" % (want, got))
    j = t.get("journal") or {}
    ck.check(j.get("state") == "live" and j.get("routes") == mover.remote_ts and
             j.get("in_spi") == "0x%08x" % mover.in_spi and
             (j.get("last_event") or {}).get("type") in ("idle", "nat_mapping"),
             "show tunnel %s --json: journal state live, routes = remote_ts %s, latest event"
             % (mover.name, mover.remote_ts), json.dumps(j)[:300])
    doc = show_json(ck, prefix, "tunnel", idle.name)
    t = (doc or {}).get("tunnel") or {}
    ck.check(t.get("in_packets") == 0 and t.get("last_in_unix") is None and
             t.get("idle") is True and t.get("idle_since_unix") is not None,
             "show tunnel %s --json: no traffic, idle since it was installed" % idle.name,
             json.dumps(t)[:300])
    rc, out, err, _ = show(prefix, "tunnel", mover.name)
    ok = rc == 0 and "tunnel %s (id " % mover.name in out and \
        "%s:%d" % new_map in out and "%s:%d" % old_map in out
    ck.check(ok, "show tunnel NAME: text names both mappings",
             "" if ok else "exit %s: %s" % (rc, err or out[:300]))
    rc, out, err, _ = show(prefix, "tunnel", "no-such-tunnel")
    last = (err.strip().splitlines() or [""])[-1]
    ck.check(rc == 1 and "no-such-tunnel" in last and out == "",
             "show tunnel no-such-tunnel: exit 1 with a message", "exit %s, %r" % (rc, last))

    check_stats_json(ck, show_json(ck, prefix, "stats"), drops, n_in, n_inside, fwd_in,
                     fwd_out, gwp.cfg, n_tunnels)
    rc, out, err, _ = show(prefix, "stats")
    ck.check(rc == 0 and "rx_packets" in out and "config reload:" in out,
             "show stats: exit 0, counters and reload status", "exit %s: %s" % (rc, err))
    check_drops_json(ck, show_json(ck, prefix, "drops"), drops)
    rc, out, err, _ = show(prefix, "drops")
    ck.check(rc == 0 and re.search(r"^no_sa\s+%d\s" % drops.get("no_sa", 0), out, re.M),
             "show drops: exit 0, table", "exit %s: %s" % (rc, err or out[:200]))
    check_events(ck, show_json(ck, prefix, "events"), tr, mover, old_map, new_map)
    rc, out, err, _ = show(prefix, "events")
    ck.check(rc == 0 and "nat_mapping" in out, "show events: exit 0, table",
             "exit %s: %s" % (rc, err))

    for tunnels in (False, True):
        args = ["stats", "--prometheus"] + (["--tunnels"] if tunnels else [])
        rc, out, err, secs = show(prefix, *args)
        ck.check(rc == 0, "show %s: exit 0 (%.2f s)" % (" ".join(args), secs),
                 err if rc else "")
        check_prometheus(ck, out, "show " + " ".join(args), per, drops, n_in, n_inside,
                         fwd_in, fwd_out, n_tunnels, tunnels)

    # the natt-control daemon's --textfile (natt_prom_textfile, rewritten every 5 s)
    if ck.check(wait_until(lambda: os.path.exists(gwp.textfile), 20, 0.5),
                "--textfile: the natt-control daemon wrote %s" % gwp.textfile):
        with open(gwp.textfile) as f:
            check_prometheus(ck, f.read(), "--textfile", per, drops, n_in, n_inside, fwd_in,
                             fwd_out, n_tunnels, False)
        left = [n for n in os.listdir(gwp.wd) if n.startswith("natt.prom.tmp")]
        ck.check(not left, "--textfile: no temporary file left", ", ".join(left))

    check_telemetry(ck, prefix, per, drops, n_in, n_inside, fwd_in, fwd_out, tr, mover,
                    new_map)

    # through the gateway script
    p = subprocess.run([str(h.REPO / "scripts" / "natt-gw"), "--file-prefix", prefix, "show",
                        "drops", "--json"], capture_output=True, text=True, timeout=SHOW_TIMEOUT,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, NATT_BUILD=h.build_dir()))
    try:
        ok = p.returncode == 0 and json.loads(p.stdout)["drops"]["no_sa"] == drops["no_sa"]
    except (ValueError, KeyError):
        ok = False
    ck.check(ok, "scripts/natt-gw --file-prefix P show drops --json",
             "" if ok else "exit %s %s" % (p.returncode, p.stderr.strip()[-200:]))

    # usage errors and a gateway that is not there
    rc, _, err, _ = show(prefix, "tunnels", "--prometheus")
    ck.check(rc == 1 and "usage" in err, "show tunnels --prometheus: usage, exit 1",
             "exit %s" % rc)
    nobody = "natt-show-none-%d" % os.getpid()
    rc, out, err, secs = show(nobody, "stats")
    shutil.rmtree(os.path.join("/var/run/dpdk", nobody), ignore_errors=True)  # EAL leaves it
    # natt-control looks for the primary's natt_ready before it attaches (control/main.c)
    ck.check(rc == 2 and "not running or still starting" in err and out == "" and
             secs < SHOW_TIMEOUT,
             "show against a prefix with no gateway: exit 2 with a message",
             "exit %s, stderr %r" % (rc, err.strip()[-200:]))
    # a natt_ready that a crashed run left: its pid is gone (control/main.c)
    stale = "natt-show-stale-%d" % os.getpid()
    sdir = os.path.join("/var/run/dpdk", stale)
    os.makedirs(sdir, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(sdir, "natt_ready"), "w") as f:
        f.write("%d\n" % dead.pid)
    rc, out, err, secs = show(stale, "stats")
    shutil.rmtree(sdir, ignore_errors=True)
    ck.check(rc == 2 and "is stale" in err and out == "" and secs < SHOW_TIMEOUT,
             "show against a prefix whose natt_ready names a dead pid: exit 2, stale",
             "exit %s, stderr %r" % (rc, err.strip()[-200:]))
    ck.check(gwp.running(), "gateway still running after all the shows")


def show_quiet_events(prefix):
    rc, out, _, _ = show(prefix, "events", "--json")
    try:
        return json.loads(out)["events"] if rc == 0 else None
    except (ValueError, KeyError):
        return None


if __name__ == "__main__":
    sys.exit(main())
