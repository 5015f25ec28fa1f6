/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_replay.c - the anti-replay window of dataplane/replay.h against answers
 * that do not come from replay.h:
 *
 *   1. numbered scripted cases per window size (64, 128, 1000, 1024, 4096 and
 *      0 = off), expectations written from RFC 4303 section 3.4.3;
 *   2. numbered ESN inference cases, the 64-bit numbers worked out by hand from
 *      RFC 4303 Appendix A2.2 (case A: window inside one 2^32 subspace, case B:
 *      window straddling two);
 *   3. an exhaustive "far jump clears old bits" sweep: fill the window, jump by
 *      every distance up to 2W + 1024, and look at every slot of the new window;
 *   4. a randomised differential test against a trivial reference: the set of
 *      every sequence number ever accepted plus the highest one. A packet is
 *      fine iff sqn != 0, sqn + W > max and sqn is not in the set.
 *
 * Usage: test_replay [seed [ops-per-config]]. The seed is printed first, so a
 * failure reproduces with the same arguments.
 *
 * Prints one PASS/FAIL line per case; exits 1 if any case failed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define OK REPLAY_OK
#define DUP REPLAY_DUP
#define OLD REPLAY_TOO_OLD

static const uint32_t windows[] = {64, 128, 1000, 1024, 4096, 0};
#define NB_WINDOWS (sizeof(windows) / sizeof(windows[0]))

static unsigned int case_no;
static unsigned int nb_failed;

/* Print the numbered PASS/FAIL line of one case. */
static void __attribute__((format(printf, 3, 4)))
report(bool ok, const char *why, const char *fmt, ...)
{
	va_list ap;

	case_no++;
	printf("%s %3u ", ok ? "PASS" : "FAIL", case_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		printf(": %s", why);
		nb_failed++;
	}
	printf("\n");
	fflush(stdout);
}

static const char *
vname(unsigned int v)
{
	switch (v) {
	case REPLAY_OK: return "OK";
	case REPLAY_DUP: return "DUP";
	case REPLAY_TOO_OLD: return "TOO_OLD";
	}
	return "?";
}

/* A window and its bitmap, as an SA keeps them (apart: the bitmap is
 * allocated by itself here, so ASan sees any access past it). */
struct window {
	struct replay_window s;
	uint64_t *bmp;
};

static struct window *
window_new(uint32_t w, bool esn)
{
	struct window *rw = malloc(sizeof(*rw));

	if (rw == NULL || (rw->bmp = malloc(replay_bmp_size(w))) == NULL) {
		perror("malloc");
		exit(2);
	}
	replay_init(&rw->s, rw->bmp, w, esn);
	return rw;
}

static void
window_free(struct window *rw)
{
	free(rw->bmp);
	free(rw);
}

/* ------------------------------------------------------------------------ */
/* Scripts: a fresh window, then steps with the expected answer of each. */

enum op {
	END = 0,
	CHK,    /* replay_check(seq) must infer sqn and return exp */
	UPD,    /* replay_update(sqn) must return exp */
	CU,     /* CHK, then UPD if exp is OK (the post-ICV path) */
};

struct step {
	enum op op;
	uint32_t seq;
	uint64_t sqn;
	unsigned int exp;
};

#define MAX_STEPS 10

/* Run steps on a fresh window whose top was set to top0 (if non-zero) by an
 * update; on mismatch write a description into why and return false. */
static bool
run_steps(uint32_t w, bool esn, uint64_t top0, const struct step *s,
	  char *why, size_t why_len)
{
	struct window *rw = window_new(w, esn);
	unsigned int i, v;
	uint64_t sqn;
	bool ok = true;

	if (top0 != 0 && (v = replay_update(&rw->s, rw->bmp, top0)) != OK) {
		snprintf(why, why_len, "setup update(%#" PRIx64 ") = %s", top0,
			 vname(v));
		ok = false;
	}
	for (i = 0; ok && i < MAX_STEPS && s[i].op != END; i++) {
		if (s[i].op == CHK || s[i].op == CU) {
			sqn = 0xbadbadbadbadbadbull;
			v = replay_check(&rw->s, rw->bmp, s[i].seq, &sqn);
			if (v != s[i].exp || sqn != s[i].sqn) {
				snprintf(why, why_len,
					 "step %u check(%#" PRIx32 ") = %s sqn %#" PRIx64
					 ", want %s sqn %#" PRIx64, i + 1, s[i].seq,
					 vname(v), sqn, vname(s[i].exp), s[i].sqn);
				ok = false;
				break;
			}
		}
		if (s[i].op == UPD || (s[i].op == CU && s[i].exp == OK)) {
			v = replay_update(&rw->s, rw->bmp, s[i].sqn);
			if (v != s[i].exp) {
				snprintf(why, why_len,
					 "step %u update(%#" PRIx64 ") = %s, want %s",
					 i + 1, s[i].sqn, vname(v), vname(s[i].exp));
				ok = false;
			}
		}
	}
	window_free(rw);
	return ok;
}

/* ------------------------------------------------------------------------ */
/* Part 1: window semantics, written once for any W (no ESN, top far from 0). */

#define T 100000u  /* top for the scripts: T - 4096 > 0, below 2^32 */

/* A sequence number T + kw * W + c, or the absolute c. */
struct val {
	int64_t kw;
	int64_t c;
	bool abs;
};

#define R(kw_, c_) { .kw = (kw_), .c = (c_) }
#define A(c_) { .c = (c_), .abs = true }

struct tstep {
	enum op op;
	struct val v;
	unsigned int exp;      /* W > 0 */
	unsigned int exp_off;  /* W == 0: only sqn 0 is refused */
};

struct tcase {
	const char *name;
	struct tstep s[MAX_STEPS];
};

#define S(op_, v_, e_, eoff_) { .op = (op_), .v = v_, .exp = (e_), .exp_off = (eoff_) }
#define ACC(v_) { .op = CU, .v = v_, .exp = OK, .exp_off = OK }

static const struct tcase tcases[] = {
	{ "fresh window: first packet 1 accepted once",
	  { S(CU, A(1), OK, OK), S(CHK, A(1), DUP, OK), S(CU, A(2), OK, OK) } },
	{ "fresh window: first packet far from 1 accepted",
	  { S(CU, R(0, 0), OK, OK), S(CU, A(1), OLD, OK) } },
	{ "in order",
	  { ACC(R(0, 0)), S(CU, R(0, 1), OK, OK), S(CU, R(0, 2), OK, OK),
	    S(CU, R(0, 3), OK, OK), S(CHK, R(0, 3), DUP, OK) } },
	{ "duplicate of top rejected",
	  { ACC(R(0, 0)), S(CU, R(0, 0), DUP, OK), S(UPD, R(0, 0), DUP, OK) } },
	{ "reorder inside the window accepted once",
	  { ACC(R(0, 0)), S(CU, R(0, -3), OK, OK), S(CU, R(0, -3), DUP, OK),
	    S(CU, R(0, -1), OK, OK), S(CU, R(0, -2), OK, OK),
	    S(CU, R(0, -2), DUP, OK), S(CHK, R(0, 0), DUP, OK) } },
	{ "left edge: top-W+1 accepted once",
	  { ACC(R(0, 0)), S(CHK, R(-1, 1), OK, OK), S(UPD, R(-1, 1), OK, OK),
	    S(CHK, R(-1, 1), DUP, OK) } },
	{ "left edge: top-W too old",
	  { ACC(R(0, 0)), S(CU, R(-1, 0), OLD, OK), S(UPD, R(-1, 0), OLD, OK) } },
	{ "left edge moves with top",
	  { ACC(R(0, 0)), S(CHK, R(-1, 1), OK, OK), ACC(R(0, 1)),
	    S(CHK, R(-1, 1), OLD, OK), S(CHK, R(-1, 2), OK, OK) } },
	{ "accepted, then pushed out of the window: too old, not dup",
	  { ACC(R(0, 0)), ACC(R(-1, 1)), ACC(R(0, 1)), S(CU, R(-1, 1), OLD, OK) } },
	{ "far jump ahead: old top too old, new window empty",
	  { ACC(R(0, 0)), ACC(R(0, -1)), S(CU, R(10, 5), OK, OK),
	    S(CHK, R(0, 0), OLD, OK), S(CHK, R(9, 6), OK, OK),
	    S(CHK, R(10, 4), OK, OK), S(CHK, R(10, 5), DUP, OK) } },
	{ "jump of exactly W: old top falls out",
	  { ACC(R(0, 0)), S(CU, R(1, 0), OK, OK), S(CHK, R(0, 0), OLD, OK),
	    S(CHK, R(0, 1), OK, OK) } },
	{ "jump of W-1: old top still in the window, still dup",
	  { ACC(R(0, 0)), S(CU, R(1, -1), OK, OK), S(CHK, R(0, 0), DUP, OK),
	    S(CHK, R(0, 1), OK, OK), S(CHK, R(0, -1), OLD, OK) } },
	{ "seq 0 rejected (fresh and after traffic)",
	  { S(CHK, A(0), OLD, OLD), S(UPD, A(0), OLD, OLD), ACC(R(0, 0)),
	    S(CHK, A(0), OLD, OLD), S(UPD, A(0), OLD, OLD) } },
	{ "same burst, ahead: check both, second update rejects",
	  { ACC(R(0, 0)), S(CHK, R(0, 1), OK, OK), S(CHK, R(0, 1), OK, OK),
	    S(UPD, R(0, 1), OK, OK), S(UPD, R(0, 1), DUP, OK) } },
	{ "same burst, inside window: second update rejects",
	  { ACC(R(0, 0)), S(CHK, R(0, -5), OK, OK), S(CHK, R(0, -5), OK, OK),
	    S(UPD, R(0, -5), OK, OK), S(UPD, R(0, -5), DUP, OK) } },
	{ "same burst: a later packet pushes an earlier one out",
	  { ACC(R(0, 0)), S(CHK, R(-1, 1), OK, OK), S(CHK, R(0, 5), OK, OK),
	    S(UPD, R(0, 5), OK, OK), S(UPD, R(-1, 1), OLD, OK) } },
	{ "check alone moves nothing (forged packet never updates)",
	  { ACC(R(0, 0)), S(CHK, R(5, 0), OK, OK), S(CHK, R(5, 0), OK, OK),
	    S(CHK, R(-1, 1), OK, OK), S(CHK, R(0, 0), DUP, OK),
	    S(CU, R(0, 1), OK, OK) } },
};
#define NB_TCASES (sizeof(tcases) / sizeof(tcases[0]))

static uint64_t
tval(const struct val *v, uint32_t w)
{
	return v->abs ? (uint64_t)v->c : (uint64_t)((int64_t)T + v->kw * (int64_t)w + v->c);
}

static void
test_table(void)
{
	struct step s[MAX_STEPS];
	char why[256];
	unsigned int i, j, k;
	uint32_t w;

	for (i = 0; i < NB_WINDOWS; i++) {
		w = windows[i];
		for (j = 0; j < NB_TCASES; j++) {
			memset(s, 0, sizeof(s));
			for (k = 0; k < MAX_STEPS && tcases[j].s[k].op != END; k++) {
				s[k].op = tcases[j].s[k].op;
				s[k].sqn = tval(&tcases[j].s[k].v, w);
				s[k].seq = (uint32_t)s[k].sqn;
				s[k].exp = w ? tcases[j].s[k].exp : tcases[j].s[k].exp_off;
			}
			why[0] = '\0';
			report(run_steps(w, false, 0, s, why, sizeof(why)), why,
			       "w=%-4u %s", w, tcases[j].name);
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Part 2: ESN inference, RFC 4303 Appendix A2.2, worked by hand.
 *   Tl, Th = low/high half of top; bottom = Tl - W + 1 (mod 2^32)
 *   case A (Tl >= W - 1): Seq >= bottom -> Th, else Th + 1
 *   case B (Tl <  W - 1): Seq >= bottom -> Th - 1, else Th
 * With W = 0 (anti-replay off) replay.h documents an inference window of
 * 2^31; those rows use it. */

struct ecase {
	const char *name;
	uint32_t w;
	bool esn;
	uint64_t top;
	struct step s[MAX_STEPS];
};

#define E(op_, seq_, sqn_, exp_) { .op = (op_), .seq = (seq_), .sqn = (sqn_), .exp = (exp_) }

static const struct ecase ecases[] = {
	/* case A, top 0x1_FFFFFFF0, W 64: bottom 0xFFFFFFB1 */
	{ "A: seq ahead in same subspace", 64, true, 0x1FFFFFFF0ull,
	  { E(CU, 0xFFFFFFF1, 0x1FFFFFFF1ull, OK) } },
	{ "A: seq 5 after rollover infers high 2", 64, true, 0x1FFFFFFF0ull,
	  { E(CU, 0x00000005, 0x200000005ull, OK),
	    E(CHK, 0xFFFFFFF0, 0x1FFFFFFF0ull, DUP),
	    E(CHK, 0xFFFFFFF1, 0x1FFFFFFF1ull, OK) } },
	{ "A: seq 0 after rollover is 0x2_00000000, valid", 64, true, 0x1FFFFFFF0ull,
	  { E(CU, 0x00000000, 0x200000000ull, OK) } },
	{ "A: top-16 infers high 1", 64, true, 0x1FFFFFFF0ull,
	  { E(CU, 0xFFFFFFE0, 0x1FFFFFFE0ull, OK),
	    E(CU, 0xFFFFFFE0, 0x1FFFFFFE0ull, DUP) } },
	{ "A: top dup", 64, true, 0x1FFFFFFF0ull,
	  { E(CU, 0xFFFFFFF0, 0x1FFFFFFF0ull, DUP) } },
	{ "A: left edge bottom infers high 1", 64, true, 0x1FFFFFFF0ull,
	  { E(CU, 0xFFFFFFB1, 0x1FFFFFFB1ull, OK) } },
	{ "A: bottom-1 infers high 2 (ahead, ICV decides)", 64, true, 0x1FFFFFFF0ull,
	  { E(CHK, 0xFFFFFFB0, 0x2FFFFFFB0ull, OK) } },
	{ "A: W 1000 bottom 0xFFFFFC09", 1000, true, 0x1FFFFFFF0ull,
	  { E(CU, 0xFFFFFC09, 0x1FFFFFC09ull, OK),
	    E(CHK, 0xFFFFFC08, 0x2FFFFFC08ull, OK),
	    E(CU, 0x00000001, 0x200000001ull, OK) } },
	{ "A: W 4096 bottom 0xFFFFEFF1", 4096, true, 0x1FFFFFFF0ull,
	  { E(CU, 0xFFFFEFF1, 0x1FFFFEFF1ull, OK),
	    E(CHK, 0xFFFFEFF0, 0x2FFFFEFF0ull, OK) } },
	{ "A: Tl == W-1 exactly (bottom 0)", 64, true, 0x10000003Full,
	  { E(CU, 0x00000000, 0x100000000ull, OK),
	    E(CHK, 0xFFFFFFFF, 0x1FFFFFFFFull, OK),
	    E(CHK, 0x0000003F, 0x10000003Full, DUP) } },
	{ "A: W 0 (off) uses 2^31: bottom 0x7FFFFFF1", 0, true, 0x1FFFFFFF0ull,
	  { E(CU, 0x7FFFFFF1, 0x17FFFFFF1ull, OK),
	    E(CHK, 0x7FFFFFF0, 0x27FFFFFF0ull, OK),
	    E(CU, 0xFFFFFFF0, 0x1FFFFFFF0ull, OK) } },
	/* case B, top 0x2_00000005, W 64: bottom 0xFFFFFFC6 */
	{ "B: seq 0xFFFFFFF0 infers high 1 (before rollover)", 64, true, 0x200000005ull,
	  { E(CU, 0xFFFFFFF0, 0x1FFFFFFF0ull, OK),
	    E(CU, 0xFFFFFFF0, 0x1FFFFFFF0ull, DUP) } },
	{ "B: 0xFFFFFFFF infers high 1", 64, true, 0x200000005ull,
	  { E(CU, 0xFFFFFFFF, 0x1FFFFFFFFull, OK) } },
	{ "B: left edge bottom infers high 1", 64, true, 0x200000005ull,
	  { E(CU, 0xFFFFFFC6, 0x1FFFFFFC6ull, OK) } },
	{ "B: bottom-1 infers high 2 (ahead)", 64, true, 0x200000005ull,
	  { E(CHK, 0xFFFFFFC5, 0x2FFFFFFC5ull, OK) } },
	{ "B: small seqs infer high 2", 64, true, 0x200000005ull,
	  { E(CU, 0x00000003, 0x200000003ull, OK),
	    E(CU, 0x00000000, 0x200000000ull, OK),
	    E(CHK, 0x00000005, 0x200000005ull, DUP),
	    E(CU, 0x00000006, 0x200000006ull, OK) } },
	{ "B: Tl == W-2 (bottom 0xFFFFFFFF)", 64, true, 0x10000003Eull,
	  { E(CU, 0xFFFFFFFF, 0x0FFFFFFFFull, OK),
	    E(CHK, 0xFFFFFFFE, 0x1FFFFFFFEull, OK) } },
	{ "B: W 1000 bottom 0xFFFFFC1E", 1000, true, 0x200000005ull,
	  { E(CU, 0xFFFFFC1E, 0x1FFFFFC1Eull, OK),
	    E(CHK, 0xFFFFFC1D, 0x2FFFFFC1Dull, OK) } },
	{ "B: W 4096 bottom 0xFFFFF006", 4096, true, 0x200000005ull,
	  { E(CU, 0xFFFFF006, 0x1FFFFF006ull, OK),
	    E(CHK, 0xFFFFF005, 0x2FFFFF005ull, OK),
	    E(CU, 0xFFFFFFFF, 0x1FFFFFFFFull, OK) } },
	{ "B: W 0 (off) uses 2^31: bottom 0x80000006", 0, true, 0x200000005ull,
	  { E(CU, 0x80000006, 0x180000006ull, OK),
	    E(CHK, 0x80000005, 0x280000005ull, OK) } },
	/* rollover walked packet by packet */
	{ "rollover 0xFFFFFFFE -> 0x1_00000001, then late ones", 64, true, 0xFFFFFFFEull,
	  { E(CU, 0xFFFFFFFF, 0x0FFFFFFFFull, OK),
	    E(CU, 0x00000000, 0x100000000ull, OK),
	    E(CU, 0x00000001, 0x100000001ull, OK),
	    E(CHK, 0xFFFFFFFF, 0x0FFFFFFFFull, DUP),
	    E(CU, 0xFFFFFFF0, 0x0FFFFFFF0ull, OK),
	    E(CHK, 0x00000000, 0x100000000ull, DUP),
	    E(CU, 0xFFFFFFC2, 0x0FFFFFFC2ull, OK),
	    E(CHK, 0xFFFFFFC1, 0x1FFFFFFC1ull, OK) } },
	{ "rollover in one burst: dup caught by update", 128, true, 0x1FFFFFFFFull,
	  { E(CHK, 0x00000000, 0x200000000ull, OK),
	    E(CHK, 0x00000000, 0x200000000ull, OK),
	    E(UPD, 0, 0x200000000ull, OK),
	    E(UPD, 0, 0x200000000ull, DUP) } },
	/* no ESN: the high half is never inferred */
	{ "no ESN: top 0xFFFFFFF0, seq 5 is 5 and too old", 64, false, 0xFFFFFFF0ull,
	  { E(CU, 0x00000005, 0x5ull, OLD),
	    E(CU, 0x00000000, 0x0ull, OLD),
	    E(CU, 0xFFFFFFB0, 0xFFFFFFB0ull, OLD),
	    E(CU, 0xFFFFFFB1, 0xFFFFFFB1ull, OK),
	    E(CU, 0xFFFFFFFF, 0xFFFFFFFFull, OK) } },
	{ "no ESN: top 5, seq 0xFFFFFFF0 is a jump ahead", 64, false, 0x5ull,
	  { E(CU, 0xFFFFFFF0, 0xFFFFFFF0ull, OK),
	    E(CU, 0x00000006, 0x6ull, OLD) } },
	{ "no ESN, W 0 (off): seq 5 after 0xFFFFFFF0 stays 5", 0, false, 0xFFFFFFF0ull,
	  { E(CU, 0x00000005, 0x5ull, OK) } },
};
#define NB_ECASES (sizeof(ecases) / sizeof(ecases[0]))

static void
test_esn_table(void)
{
	char why[256];
	unsigned int i;

	for (i = 0; i < NB_ECASES; i++) {
		why[0] = '\0';
		report(run_steps(ecases[i].w, ecases[i].esn, ecases[i].top,
				 ecases[i].s, why, sizeof(why)), why,
		       "w=%-4u esn=%d top=%#" PRIx64 " %s", ecases[i].w,
		       ecases[i].esn, ecases[i].top, ecases[i].name);
	}
}

/* ------------------------------------------------------------------------ */
/* Part 3: fill [top-W+1, top], jump by d, then look at every slot of the new
 * window: accepted-before must be DUP, never-seen must be OK, whatever the
 * bucket layout. d covers every distance up to 2W + 1024 (more than the
 * bitmap ring of any size, however the header chooses it) plus huge ones. */

static bool
jump_once(struct window *rw, uint32_t w, uint64_t top, uint64_t d,
	  char *why, size_t why_len)
{
	uint64_t j = top + d, s, sqn;
	unsigned int v, want;

	replay_init(&rw->s, rw->bmp, w, false);
	for (s = top - w + 1; s <= top; s++)
		if ((v = replay_update(&rw->s, rw->bmp, s)) != OK) {
			snprintf(why, why_len, "fill update(%" PRIu64 ") = %s", s, vname(v));
			return false;
		}
	if ((v = replay_update(&rw->s, rw->bmp, j)) != OK) {
		snprintf(why, why_len, "jump update(%" PRIu64 ") = %s", j, vname(v));
		return false;
	}
	for (s = j - w; s <= j; s++) {
		want = s + w <= j ? OLD : (s <= top || s == j) ? DUP : OK;
		v = replay_check(&rw->s, rw->bmp, (uint32_t)s, &sqn);
		if (v != want) {
			snprintf(why, why_len, "top %" PRIu64 " jump %" PRIu64
				 ": check(%" PRIu64 ") = %s, want %s", top, d, s,
				 vname(v), vname(want));
			return false;
		}
	}
	return true;
}

static void
test_far_jump(void)
{
	static const uint64_t huge[] = {65536, 65537, 1u << 20, (1u << 20) + 63};
	static const uint64_t tops[] = {1u << 17, (1u << 17) + 37};
	char why[256];
	unsigned int i, t, k;
	uint64_t d, n;
	bool ok;

	for (i = 0; i < NB_WINDOWS; i++) {
		uint32_t w = windows[i];
		struct window *rw;

		if (w == 0)
			continue;
		rw = window_new(w, false);
		ok = true;
		n = 0;
		why[0] = '\0';
		for (t = 0; ok && t < 2; t++) {
			for (d = 1; ok && d <= 2ull * w + 1024; d++, n++)
				ok = jump_once(rw, w, tops[t], d, why, sizeof(why));
			for (k = 0; ok && k < sizeof(huge) / sizeof(huge[0]); k++, n++)
				ok = jump_once(rw, w, tops[t], huge[k], why, sizeof(why));
		}
		report(ok, why, "w=%-4u far jump clears old bits (%" PRIu64
		       " jumps, every slot checked)", w, n);
		window_free(rw);
	}
}

/* ------------------------------------------------------------------------ */
/* Part 4: randomised differential test. */

static uint64_t rng;

/* splitmix64: small, good enough, and reproducible from the printed seed. */
static uint64_t
rnd(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t
rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* The reference: every sequence number ever accepted (open addressing, key 0
 * = empty, which is fine since 0 is never accepted) and the highest one. */
#define REF_BITS 21
#define REF_SLOTS (1u << REF_BITS)

struct ref {
	uint64_t *slot;
	uint32_t count;
	uint64_t max;
	uint32_t w;
};

static uint32_t
ref_hash(uint64_t k)
{
	return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> (64 - REF_BITS));
}

static bool
ref_has(const struct ref *r, uint64_t k)
{
	uint32_t h;

	for (h = ref_hash(k); r->slot[h] != 0; h = (h + 1) & (REF_SLOTS - 1))
		if (r->slot[h] == k)
			return true;
	return false;
}

static void
ref_add(struct ref *r, uint64_t k)
{
	uint32_t h;

	for (h = ref_hash(k); r->slot[h] != 0; h = (h + 1) & (REF_SLOTS - 1))
		;
	r->slot[h] = k;
	r->count++;
	if (k > r->max)
		r->max = k;
}

static void
ref_reset(struct ref *r, uint32_t w)
{
	memset(r->slot, 0, REF_SLOTS * sizeof(*r->slot));
	r->count = 0;
	r->max = 0;
	r->w = w;
}

/* The whole definition of anti-replay (RFC 4303 3.4.3), no bitmap. */
static unsigned int
ref_verdict(const struct ref *r, uint64_t sqn)
{
	if (sqn == 0)
		return OLD;
	if (r->w == 0)
		return OK;
	if (sqn + r->w <= r->max)
		return OLD;
	return ref_has(r, sqn) ? DUP : OK;
}

/* True when sqn lies in the 2^32 numbers starting at the window's left edge:
 * RFC 4303 A2.2 then guarantees the inference. W 0 infers with 2^31. */
static bool
in_guarantee(uint64_t top, uint32_t w, uint64_t sqn)
{
	uint64_t wi = w ? w : 1ull << 31;
	uint64_t lo = top + 1 > wi ? top + 1 - wi : 1;
	uint64_t hi = top + 1 - wi + (1ull << 32);  /* wraps back: top + 1 >= 1 */

	return sqn >= lo && sqn < hi;
}

#define RECENT 1024

struct diff {
	struct ref ref;
	uint32_t w;
	bool esn;
	uint64_t recent[RECENT];   /* accepted lately, to replay as duplicates */
	uint32_t nb_recent;
	uint64_t sent;             /* highest number the peer has sent */
	/* coverage counters printed with the verdict */
	uint64_t chk[3], upd_reject, inferred, case_b, outside, restarts;
	unsigned int fails;
};

/* Below t by x, or something small and positive if that would go below 1. */
static uint64_t
below(uint64_t t, uint64_t x)
{
	return x < t ? t - x : 1 + rnd_below(64);
}

/* Something accepted lately, the latest ones more often. */
static uint64_t
recent_pick(const struct diff *d)
{
	uint32_t n = d->nb_recent < RECENT ? d->nb_recent : RECENT;
	uint32_t back = (uint32_t)rnd_below(rnd_below(n) + 1);

	return d->recent[(d->nb_recent - 1 - back) % RECENT];
}

/* One sequence number as a peer (or an attacker) might send it. The peer's
 * counter (sent) runs ahead of the window's top inside a burst. */
static uint64_t
draw_from(struct diff *d, uint64_t t)
{
	uint64_t wd = d->w ? d->w : 64, nb, r = rnd_below(1000);

	if (r < 150)                      /* reordered inside the window */
		return below(t, rnd_below(wd));
	if (r < 250)                      /* replay of something accepted */
		return d->nb_recent ? recent_pick(d) : t;
	if (r < 330)                      /* around the left edge */
		return below(t + 3, wd + rnd_below(5));
	if (r < 400)                      /* jumps around the bitmap ring size */
		return t + 1 + rnd_below(3 * wd + 1024);
	if (r < 430)                      /* far jump */
		return t + 1 + rnd_below(1u << 20);
	if (r < 435)                      /* huge jump, still inside the RFC range */
		return t + 1 + rnd_below(d->esn ? (1ull << 31) - 1 : 1u << 24);
	if (r < 445 && d->esn) {          /* walk up to the next 2^32 boundary */
		nb = ((t >> 32) + 1) << 32;
		if (nb - t < (1ull << 31) && nb - t > 2 * wd)
			return nb - 1 - rnd_below(2 * wd);
		return t + (1ull << 31) - 1 - rnd_below(16);
	}
	if (r < 520)                      /* old */
		return below(t, wd + rnd_below(1u << 16));
	if (r < 530)                      /* outside the RFC range: wrong ESN */
		return rnd_below(2) ? t + (1ull << 32) + rnd_below(1u << 20) :
				      below(t, (1ull << 32) + rnd_below(1u << 20));
	if (r < 535)
		return 0;
	if (r < 600)
		return below(t + 2 * wd, rnd_below(4 * wd));
	return t + 1 + rnd_below(3);      /* in order, with a little loss */
}

static uint64_t
draw(struct diff *d)
{
	uint64_t t = d->sent > d->ref.max ? d->sent : d->ref.max;
	uint64_t s = draw_from(d, t);

	if (!d->esn)
		s &= 0xffffffffull;
	/* the peer's counter follows what it sent ahead, unless that is
	 * beyond what the window can infer */
	if (s > t && (!d->esn || in_guarantee(d->ref.max, d->w, s)))
		d->sent = s;
	return s;
}

static void
diff_fail(struct diff *d, uint64_t op, const char *what, uint32_t seq,
	  uint64_t truth, uint64_t sqn, unsigned int got, unsigned int want)
{
	if (d->fails++ < 10)
		printf("  mismatch op %" PRIu64 " w=%u esn=%d top=%#" PRIx64
		       ": %s seq %#" PRIx32 " true %#" PRIx64 " inferred %#" PRIx64
		       " got %s want %s\n", op, d->w, d->esn, d->ref.max, what, seq,
		       truth, sqn, vname(got), vname(want));
}

#define MAX_BURST 32

/* One burst: every packet checked against the window as the burst found it,
 * then the ones whose "ICV" verified updated in order. */
static unsigned int
diff_burst(struct diff *d, struct window *rw, uint64_t op)
{
	uint64_t truth[MAX_BURST], sqn[MAX_BURST];
	unsigned int v[MAX_BURST], want, i, n = 1 + (unsigned int)rnd_below(MAX_BURST);
	uint32_t seq;

	for (i = 0; i < n; i++) {
		truth[i] = draw(d);
		seq = (uint32_t)truth[i];
		v[i] = replay_check(&rw->s, rw->bmp, seq, &sqn[i]);
		if (d->esn && in_guarantee(d->ref.max, d->w, truth[i])) {
			d->inferred++;
			if ((uint32_t)d->ref.max < (d->w ? d->w : 1u << 31) - 1)
				d->case_b++;
			if (sqn[i] != truth[i])
				diff_fail(d, op + i, "infer", seq, truth[i], sqn[i], v[i], v[i]);
		} else if (d->esn) {
			d->outside++;
		} else if (sqn[i] != seq) {
			diff_fail(d, op + i, "infer (no ESN)", seq, truth[i], sqn[i], v[i], v[i]);
		}
		want = ref_verdict(&d->ref, sqn[i]);
		d->chk[v[i] < 3 ? v[i] : 0]++;
		if (v[i] != want)
			diff_fail(d, op + i, "check", seq, truth[i], sqn[i], v[i], want);
	}
	for (i = 0; i < n; i++) {
		/* a wrong high half fails GCM; otherwise a 90% "ICV ok" coin */
		if (v[i] != OK || sqn[i] != truth[i] || rnd_below(10) == 0)
			continue;
		want = ref_verdict(&d->ref, sqn[i]);
		v[i] = replay_update(&rw->s, rw->bmp, sqn[i]);
		if (v[i] != want)
			diff_fail(d, op + i, "update", (uint32_t)truth[i], truth[i],
				  sqn[i], v[i], want);
		if (v[i] != OK)
			d->upd_reject++;
		if (want == OK) {
			if (d->w != 0)
				ref_add(&d->ref, sqn[i]);
			else if (sqn[i] > d->ref.max)
				d->ref.max = sqn[i];
			d->recent[d->nb_recent++ % RECENT] = sqn[i];
		}
	}
	return n;
}

static void
diff_run(uint32_t w, bool esn, uint64_t nb_ops, uint64_t *slots)
{
	struct diff *d = calloc(1, sizeof(*d));
	struct window *rw = window_new(w, esn);
	uint64_t op;
	char why[64];

	if (d == NULL) {
		perror("calloc");
		exit(2);
	}
	d->w = w;
	d->esn = esn;
	d->ref.slot = slots;
	ref_reset(&d->ref, w);
	for (op = 0; op < nb_ops && d->fails < 10;) {
		/* a new SA: no ESN runs out of 32-bit numbers, and the
		 * reference set must stay sparse */
		if ((!esn && d->sent > 0xffffffffull - (1u << 26)) ||
		    d->ref.count > REF_SLOTS / 2) {
			replay_init(&rw->s, rw->bmp, w, esn);
			ref_reset(&d->ref, w);
			d->nb_recent = 0;
			d->sent = 0;
			d->restarts++;
		}
		op += diff_burst(d, rw, op);
	}
	snprintf(why, sizeof(why), "%u mismatches", d->fails);
	report(d->fails == 0, why,
	       "w=%-4u esn=%d differential: %" PRIu64 " ops, check ok/dup/old %"
	       PRIu64 "/%" PRIu64 "/%" PRIu64 ", update rejects %" PRIu64
	       ", inferred %" PRIu64 " (case B %" PRIu64 ", outside %" PRIu64
	       "), new SAs %" PRIu64 ", top %#" PRIx64, w, esn, op,
	       d->chk[OK], d->chk[DUP], d->chk[OLD], d->upd_reject, d->inferred,
	       d->case_b, d->outside, d->restarts, d->ref.max);
	window_free(rw);
	free(d);
}

int
main(int argc, char **argv)
{
	uint64_t seed = 0x4e4154542d475721ull, nb_ops = 1000000;
	uint64_t *slots;
	unsigned int i;

	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		nb_ops = strtoull(argv[2], NULL, 0);
	printf("test_replay: seed %#" PRIx64 ", %" PRIu64
	       " ops per config (rerun: test_replay %#" PRIx64 " %" PRIu64 ")\n",
	       seed, nb_ops, seed, nb_ops);
	rng = seed;

	test_table();
	test_esn_table();
	test_far_jump();

	slots = malloc(REF_SLOTS * sizeof(*slots));
	if (slots == NULL) {
		perror("malloc");
		return 2;
	}
	for (i = 0; i < NB_WINDOWS; i++) {
		diff_run(windows[i], false, nb_ops, slots);
		diff_run(windows[i], true, nb_ops, slots);
	}
	free(slots);

	printf("test_replay: %u cases, %u failed\n", case_no, nb_failed);
	return nb_failed ? 1 : 0;
}
