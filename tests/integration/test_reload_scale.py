#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Reload at scale: 10,000 tunnels, then a file that removes 1,000, adds
1,000, rekeys 1,000 (new SPIs and keys both ways), updates 1,000 (new peer
port) and leaves 7,000 alone.

Live gateway on veth ports (natt_live.py), natt-control in daemon mode run by
scripts/natt-gw. ESP packets are built (scapy) only for a sample of 300
tunnels spread over the whole range (60 of each kind). Checked: the reload
line reports added 1000, removed 1000, rekeyed 1000, updated 1000, unchanged
7000 and a duration; sampled untouched tunnels keep forwarding both ways with
their replay windows (a replayed packet is dropped) and sequence numbers
intact; sampled added tunnels work both ways (outbound sequence from 1);
sampled removed ones drop no_sa inbound and no_route outbound; sampled
rekeyed ones accept the new inbound SPI and send on the new outbound SPI from
sequence number 1; sampled updated ones send to the new peer port with the
next sequence number. At exit, --stats-json is compared with the model for
all 10,000 tunnels.

Usage: /usr/bin/python3 tests/integration/test_reload_scale.py
Environment: NATT_BUILD, NATT_SEED, NATT_KEEP.
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_live as nl          # noqa: E402
import natt_traffic as nt       # noqa: E402
import test_reload as tr        # noqa: E402

N = 10000
CHANGE = 1000            # removed, added, rekeyed, updated: each
SAMPLE = 60              # sampled tunnels of each kind (5 kinds: 300)


def spread(rng, items, n):
    """n items spread over the whole list (one from each of n slices)."""
    items = list(items)
    step = len(items) / n
    return [items[int(i * step + rng.random() * step)] for i in range(n)]


def main():
    ck = h.Checker()
    ok, why = nl.environment_ok()
    if not ck.check(ok, "live test environment (root, hugepages, ip netns, binaries)", why):
        return ck.finish()
    seed = h.seed()
    rng = random.Random(seed)
    t_begin = time.monotonic()
    gw = nt.Gateway()
    tunnels = nt.make_tunnels(rng, N)
    m = tr.Model(rng, gw, tunnels)
    # which tunnels change: disjoint sets spread over the whole range
    order = list(range(N))
    rng.shuffle(order)
    sets = [sorted(order[k * CHANGE:(k + 1) * CHANGE]) for k in range(3)]
    removed = [tunnels[i] for i in sets[0]]
    to_rekey = [tunnels[i] for i in sets[1]]
    to_update = [tunnels[i] for i in sets[2]]
    changed = set(sets[0]) | set(sets[1]) | set(sets[2])
    untouched = [t for i, t in enumerate(tunnels) if i not in changed]
    s_untouched = spread(rng, untouched, SAMPLE)
    s_removed = spread(rng, removed, SAMPLE)
    s_rekey = spread(rng, to_rekey, SAMPLE)
    s_update = spread(rng, to_update, SAMPLE)
    print("%d tunnels; changing %d removed, %d rekeyed, %d updated, %d added; sampling %d of "
          "each kind" % (N, CHANGE, CHANGE, CHANGE, CHANGE, SAMPLE), flush=True)

    L = nl.Live("scale")
    failed0 = ck.failed
    try:
        t0 = time.monotonic()
        L.start(m.text(), timeout=120)
        mt = L.wait_log(tr.APPLIED_ON_RE, None, 1) or L.wait_log(nl.APPLIED_RE, None, 1)
        ck.check(True, "gateway up with %d tunnels in %.1f s" % (N, time.monotonic() - t0),
                 mt.group(0) if mt else "")
        # phase 1: sampled existing tunnels, both ways
        b = m.batch()
        for t in s_untouched + s_removed + s_rekey + s_update:
            b.fwd(t, 2)
            b.out(t)
        tr.run_batch(ck, "before: %d sampled tunnels, both ways" % (4 * SAMPLE), L, b)

        # the new file, and the model of it
        added = tr.fresh_tunnels(rng, CHANGE, N + 1, m.spis)
        s_added = spread(rng, added, SAMPLE)
        rk = {}
        for t in to_rekey:
            n = tr.rekeyed(rng, t, m.spis)
            rk[t.name] = (t, n)
            m.replace(t, n)
        for t in removed:
            m.remove(t)
        upd = {}
        for t in to_update:
            old = (t.remote, t.remote_port)
            t.remote_port = 1024 + (t.remote_port + 7919) % 64000
            if t.remote_port == 4500:
                t.remote_port = 4501
            upd[t.name] = old
        for t in added:
            m.add(t)
        # phase 2, built before the reload (scapy is slow; nothing depends on timing)
        b2 = m.batch()
        for t in s_untouched:
            if not t.esn:
                b2.replay(t)
            b2.fwd(t)
            b2.out(t)
        for t in s_added:
            b2.fwd(t)
            b2.out(t)
        for t in s_removed:
            b2.dead(t)
            net = t.nets[0]
            b2.out_to(str(net[net.num_addresses // 2]), "no_route", "to removed %s" % t.name)
        for t in s_rekey:
            b2.fwd(rk[t.name][1])
            b2.out(rk[t.name][1])
        for t in s_update:
            b2.out(t)          # the new peer port, the same SA
            b2.fwd(t)
        text = m.text()
        print("new file: %d tunnels, %d bytes; frames built (%.1f s so far)"
              % (len(m.tunnels), len(text), time.monotonic() - t_begin), flush=True)

        outcome, mt, _ = tr.reload(ck, "reload of %d -> %d tunnels" % (N, len(m.tunnels)), L, text,
                                   timeout=120)
        if outcome == "applied":
            tr.check_counts(ck, "scale", mt, {"added": CHANGE, "removed": CHANGE,
                                              "rekeyed": CHANGE, "updated": CHANGE,
                                              "unchanged": N - 3 * CHANGE})
            ms = float(mt.group(3))
            ck.check(ms > 0, "reload line reports its duration", "%.1f ms" % ms)
            print("reload: %s" % mt.group(0), flush=True)
        tr.run_batch(ck, "after: untouched (replay dropped, fresh forwarded, sequence continues), "
                     "added, removed (no_sa / no_route), rekeyed (new SPIs from 1), updated "
                     "(new peer port)", L, b2)
        tr.show_check(ck, "scale", L, m, [t.name for t in s_untouched])
    except Exception as e:
        ck.check(False, "scale: session", "%s: %s\n%s" % (type(e).__name__, e, L.log_tail(12)))
        tr.raise_if_interrupt(e)
    finally:
        L.stop()
    tr.final_checks(ck, "scale", L, m)
    L.finish(ck.failed > failed0)
    print("total %.1f s" % (time.monotonic() - t_begin), flush=True)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
