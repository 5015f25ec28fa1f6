#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Outbound with two workers: one sequence counter per SA, whatever the RX queue.

The dataplane runs two workers (EAL --lcores 0@0,1@1,2@1, then 0@0,1@0,2@1 so
that they run truly in parallel); worker i polls RX
and TX queue i of both ports, and net_pcap gives the inside port one RX queue
per capture file. Both inside captures hold packets of every tunnel, so about
half of every tunnel's packets arrive at the worker that does not own it
(owner = tunnel id % 2) and must be handed over. Two runs: packets spread at
random over the two queues, and strictly alternating per tunnel.

The two TX captures of the outside port are merged and checked like a single
worker's output (scapy + tshark decryption, headers, IV, trailer), and:
- per tunnel, sequence numbers unique and contiguous 1..N over both captures;
- every inner packet present exactly once (fragments reassemble), in its
  tunnel; packets of one tunnel from one RX queue keep their order;
- each tunnel's packets leave on its owner's TX queue; both workers handed
  packets over (handoff_out / handoff_in);
- drops, ICMP frag-needed, counters as with one worker.

Usage: /usr/bin/python3 tests/integration/test_outbound_workers.py
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402

TIMEOUT = 240
WORKERS = 2
N_VALID = 1600


def build(rng, gw, tunnels, spread):
    otr = nt.OutTraffic(gw, tunnels, rng)
    L = otr.L
    per_t = {t.name: 0 for t in tunnels}

    def q_of(t):
        per_t[t.name] += 1
        if spread == "alternate":
            return per_t[t.name] % 2
        return rng.randrange(2)

    events = ["valid"] * N_VALID + ["frag"] * 12 + ["too_big"] * 5 + ["no_route"] * 4 + \
        ["policy"] * 3
    rng.shuffle(events)
    for ev in events:
        for _ in range(100):
            t = rng.choice(tunnels)
            if otr.dst_for(t) is None:
                continue
            q = q_of(t)
            if ev == "valid":
                f = otr.valid(t, queue=q)
            elif ev == "frag":
                f = otr.valid(t, length=rng.randrange(L + 1, 1501), df=False, proto="udp",
                              desc="DF-clear oversize", queue=q)
            elif ev == "too_big":
                ip = otr.packet(otr.src_for(t), otr.dst_for(t), rng.randrange(L + 1, 1501),
                                "udp", df=True)
                f = otr.add(ip, "DF-set oversize", queue=q, expect_verdict="too_big")
            elif ev == "no_route":
                ip = otr.packet("10.10.1.%d" % rng.randrange(1, 255), otr.no_route_dst(), 100)
                f = otr.add(ip, "no route", queue=q, expect_verdict="no_route")
            else:
                src = otr.src_not_for(t)
                if src is None or t.lnets[0].prefixlen == 0:
                    continue
                f = otr.add(otr.packet(src, otr.dst_for(t), 100), "policy", queue=q,
                            expect_verdict="policy")
            if f is not None:
                break
        else:
            raise RuntimeError("test bug: cannot emit %s" % ev)
    return otr


def check_rx_order(ck, tag, otr, recs, matches):
    """Per tunnel and RX queue: unfragmented packets keep their input order."""
    errs = []
    for t in otr.tunnels:
        for q in range(WORKERS):
            rs = sorted((r for r in recs if r.tunnel is t and id(r) in matches and
                         matches[id(r)].queue == q and not matches[id(r)].frag),
                        key=lambda r: r.seq64)
            idx = [matches[id(r)].index for r in rs]
            bad = next((k for k in range(1, len(idx)) if idx[k] < idx[k - 1]), None)
            if bad is not None:
                errs.append("%s rx queue %d: seq %d carries input #%d, seq %d input #%d"
                            % (t.name, q, rs[bad].seq64, idx[bad], rs[bad - 1].seq64,
                               idx[bad - 1]))
    ck.check(not errs, "%s: per tunnel and RX queue, sequence order = input order" % tag,
             h._first(errs))


def check_owners(ck, tag, otr, recs, run):
    tun = (run.stats or {}).get("tunnels") or {}
    errs = []
    for t in otr.tunnels:
        st = tun.get(t.name) or {}
        owner, tid = st.get("owner"), st.get("id")
        if owner is None or tid is None or owner != tid % WORKERS:
            errs.append("%s: id %s owner %s (want id %% %d)" % (t.name, tid, owner, WORKERS))
            continue
        qs = sorted({r.queue for r in recs if r.tunnel is t})
        if qs and qs != [owner]:
            errs.append("%s (owner %d) sent on TX queues %s" % (t.name, owner, qs))
    ck.check(not errs and tun, "%s: tunnel owner = id %% %d; each tunnel's ESP leaves on its "
             "owner's TX queue" % (tag, WORKERS), h._first(errs))
    pw = (run.stats or {}).get("per_worker") or []
    ho = [((w.get("counters") or {}).get("handoff_out"), (w.get("counters") or {}).get("handoff_in"))
          for w in pw]
    ok = len(ho) == WORKERS and all(isinstance(a, int) and a > 0 and isinstance(b, int) and b > 0
                                    for a, b in ho) and \
        sum(a for a, _ in ho) == sum(b for _, b in ho)
    ck.check(ok, "%s: both workers handed packets to the other (handoff_out = handoff_in > 0)"
             % tag, "per worker (out, in): %s" % ho)
    # what each worker received
    fq = [sum(1 for f in otr.frames if f.queue == q) for q in range(WORKERS)]
    mixed = all(len({f.queue for f in otr.frames if f.tunnel is t}) == WORKERS
                for t in otr.tunnels if any(f.tunnel is t for f in otr.frames))
    ck.check(mixed and min(fq) > 0, "%s: both RX queues hold packets of every tunnel" % tag,
             "frames per queue %s" % fq)


def run_case(ck, tag, gw, tunnels, otr, lcores=None):
    wd = h.make_workdir(tag)
    failed = ck.failed
    cfg = nt.config_text(gw, tunnels, 1024, comment="test_outbound_workers.py " + tag)
    run = h.run_gateway(wd, cfg, [], inside_frames=otr.queue_frames(WORKERS), timeout=TIMEOUT,
                        workers=WORKERS, capture_outside=True, eal_lcores=lcores)
    h.check_run(ck, tag, run, TIMEOUT)
    ck.check(run.stats is not None and run.stats.get("workers") == WORKERS,
             "%s: dataplane ran %d workers" % (tag, WORKERS),
             "stats say %s" % (run.stats or {}).get("workers"))
    queues = run.out_q.get(0)
    if queues is None or run.out is None:
        ck.check(False, "%s: captures readable" % tag, run.outside_error or run.out_error or "")
        h.finish_workdir(ck, wd, failed)
        return
    print("     ESP frames per TX queue: %s" % [len(q) for q in queues], flush=True)
    icmp, rest = h.split_inside_out(gw, run.out)
    ck.check(not rest, "%s: the inside port sent only ICMP frag-needed" % tag,
             "%d other frames" % len(rest))
    recs = h.verify_outbound(ck, tag, gw, otr, queues, icmp, workdir=wd, ordered=False)
    matches = h.match_outbound(otr, recs)[0]
    check_rx_order(ck, tag, otr, recs, matches)
    check_owners(ck, tag, otr, recs, run)
    n_esp = sum(len(q) for q in queues)
    h.check_outbound_stats(ck, tag, otr, run, n_esp, n_icmp=len(icmp), recs=recs)
    h.finish_workdir(ck, wd, failed)


def main():
    ck = h.Checker()
    rng = random.Random(h.seed())
    gw = nt.Gateway()
    tunnels = nt.make_out_tunnels(rng, n_groups=2)
    tunnels[2].local_port = 4500
    # Run 1: both workers time-share CPU 1 (the default layout); run 2: each
    # worker on its own CPU (worker 1 next to the main lcore, which sleeps),
    # so that the two really run at the same time.
    runs = [("workers random", build(rng, gw, tunnels, "random"), None),
            ("workers alternate parallel", build(rng, gw, tunnels, "alternate"), "0@0,1@0,2@1")]
    for tag, otr, _ in runs:
        print("%s: %d inside frames over %d tunnels, per RX queue %s"
              % (tag, len(otr.frames), len(tunnels),
                 [sum(1 for f in otr.frames if f.queue == q) for q in range(WORKERS)]), flush=True)
    if not h.gateway_present(ck):
        return ck.finish()
    for tag, otr, lc in runs:
        run_case(ck, tag, gw, tunnels, otr, lc)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
