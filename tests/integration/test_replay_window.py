#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Anti-replay window end to end (RFC 4303 section 3.4.3, Appendix A).

Run 1, replay_window = 64: per tunnel, packets reordered inside the window
(accepted), duplicates inside it (replay), a jump then probes at the left edge
(top-63 accepted, top-64 dropped), old duplicates and old never-seen numbers
beyond the window (replay), a jump larger than the window. Two of the tunnels
use ESN and start just below 2^32, so the reordering crosses the rollover; for
them a number left of the window is taken to be in the next 2^32 subspace
(RFC 4303 A2.2 case A) and fails the ICV: auth_failed, not replay.
Run 2, replay_window = 0: the same kind of stream with duplicates and old
numbers; everything is forwarded, nothing counted as replay.

Expected verdicts come from natt_traffic.ReplayModel (a set + top reference
receiver); the plan below also states its own intent and the two must agree.
Usage: /usr/bin/python3 tests/integration/test_replay_window.py
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import natt_harness as h        # noqa: E402
import natt_traffic as nt       # noqa: E402

TIMEOUT = 120
F, R = nt.FORWARD, "replay"
# Left of the window: "replay" without ESN. With ESN, RFC 4303 A2.2 case A
# infers the next subspace for any number below the window, so the ICV fails.
OLD = "old"


def plan_window(rng, start, w):
    """Operations for one tunnel with a window of w: (op, sqn, desc, intent)
    with op 'new' (fresh encryption of that number) or 'copy' (exact resend)."""
    ops = []
    s = start
    for _ in range(8):
        ops.append(("new", s, "in order", F))
        s += 1
    for _ in range(6):
        c = rng.randrange(8, w - 8)
        chunk = list(range(s, s + c))
        s += c
        rng.shuffle(chunk)
        ops += [("new", q, "reordered inside the window", F) for q in chunk]
        ops.append(("copy", rng.choice(chunk), "duplicate inside the window", R))
    ops.append(("copy", start + 2, "old duplicate, beyond the window", OLD))
    j = s + 99                      # s .. j-1 stay holes
    ops += [("new", j, "jump +100", F),
            ("new", j - (w - 1), "hole at the left edge (top-%d)" % (w - 1), F),
            ("new", j - w, "hole just left of the window (top-%d)" % w, OLD),
            ("new", j - 10, "hole inside the window", F),
            ("copy", j - 10, "duplicate of that hole", R),
            ("new", j - w - 30, "hole far left of the window", OLD)]
    s = j + 1
    for _ in range(3):
        c = rng.randrange(8, w - 8)
        chunk = list(range(s, s + c))
        s += c
        rng.shuffle(chunk)
        ops += [("new", q, "reordered inside the window", F) for q in chunk]
    j = s + 10 * w
    ops += [("new", j, "jump by 10 windows", F),
            ("new", s, "hole left behind by the jump", OLD),
            ("copy", s - 1, "duplicate left behind by the jump", OLD),
            ("new", j + 1, "in order after the jump", F)]
    return ops


def plan_off(rng, start):
    """Window off: duplicates and old numbers are all forwarded."""
    ops = []
    s = start
    for _ in range(30):
        ops.append(("new", s, "in order", F))
        s += 1
    for _ in range(6):
        c = rng.randrange(8, 40)
        chunk = list(range(s, s + c))
        s += c
        rng.shuffle(chunk)
        ops += [("new", q, "reordered", F) for q in chunk]
        ops.append(("copy", rng.choice(chunk), "duplicate (anti-replay off)", F))
        ops.append(("copy", start + rng.randrange(10), "old duplicate (anti-replay off)", F))
    ops.append(("new", s + 5000, "jump", F))
    ops.append(("new", s + 1, "far behind the top, never sent", F))
    ops.append(("copy", start, "first packet again", F))
    return ops


def build(rng, window):
    gw = nt.Gateway()
    esn_every = 2 if window else 0
    tunnels = nt.make_tunnels(rng, 5, esn_every=esn_every, high_start_share=0.5)
    filler = tunnels[-1]            # non-ESN, in order: sent while the others must wait
    tr = nt.Traffic(gw, tunnels, window, rng)
    plans = {}
    for t in tunnels[:-1]:
        plans[t.name] = plan_window(rng, t.next_seq, window) if window else plan_off(rng, t.next_seq)
    idx = {t.name: 0 for t in tunnels}
    mismatch = []
    while True:
        live = [t for t in tunnels[:-1] if idx[t.name] < len(plans[t.name])]
        if not live:
            break
        rng.shuffle(live)
        for t in live:
            op, sqn, desc, intent = plans[t.name][idx[t.name]]
            if op == "new":
                f = tr.valid(t, sqn=sqn, allow_drop=True, desc=desc,
                             length=rng.randrange(nt.MIN_INNER, 600))
            else:
                f = tr.resend(t, sqn, desc)
            if f is not None:
                idx[t.name] += 1
                if intent == OLD:
                    intent = "auth_failed" if t.esn else R
                if f.verdict != intent:
                    mismatch.append("%s: model says %s" % (f.label(), f.verdict))
                break
        else:
            tr.valid(filler, desc="filler (in order)")
    if mismatch:
        raise RuntimeError("test bug: plan and window model disagree: " + "; ".join(mismatch[:5]))
    return gw, tr


def scenario(ck, seed_, window):
    tag = "window=%d" % window
    rng = random.Random(seed_ * 31 + window)
    gw, tr = build(rng, window)
    n_fwd = len(tr.expected_out())
    n_rep = tr.expected_drops()["replay"]
    reord = sum(1 for f in tr.frames if f.verdict == nt.FORWARD and "reorder" in f.desc)
    dups = sum(1 for f in tr.frames if f.verdict == nt.FORWARD and "duplicate" in f.desc)
    rolled = len({f.tunnel.name for f in tr.frames
                  if f.verdict == nt.FORWARD and f.tunnel.esn and f.sqn >= 1 << 32})
    print("%s: %d frames, %d forwarded (%d reordered, %d duplicates), %d replay, "
          "%d ESN tunnels rolled over" % (tag, len(tr.frames), n_fwd, reord, dups, n_rep, rolled),
          flush=True)
    if window:
        ck.check(reord >= 100 and n_rep >= 30 and rolled >= 2,
                 "%s: scenario has reordering, replays and ESN rollovers" % tag)
    else:
        ck.check(dups >= 40 and n_rep == 0, "%s: scenario has duplicates to accept" % tag)
    if not h.self_check(ck, tag, tr):
        return
    wd = h.make_workdir("replay%d" % window)
    failed = ck.failed
    run = h.run_gateway(wd, nt.config_text(gw, tr.tunnels, window,
                                           comment="test_replay_window.py"),
                        [f.data for f in tr.frames], timeout=TIMEOUT)
    h.check_all(ck, tag, gw, tr, run, TIMEOUT)
    h.finish_workdir(ck, wd, failed)


def main():
    ck = h.Checker()
    s = h.seed()
    if h.gateway_present(ck):
        scenario(ck, s, 64)
        scenario(ck, s, 0)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
