/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * replay.h - ESP anti-replay window (RFC 4303 section 3.4.3 and Appendix A,
 * bitmap kept as in RFC 6479), with extended sequence numbers.
 *
 * Split in two, as every serious dataplane does:
 *   replay_check()  read-only, before crypto: infers the high 32 bits (ESN) and
 *                   rejects obvious replays without paying for AES;
 *   replay_update() after the ICV verified: only an authenticated packet ever
 *                   moves the window, so a forgery cannot advance it.
 * Two copies of one packet in the same burst both pass check(); update() of the
 * second one finds the bit set and reports the replay.
 *
 * The state (top, size) is 16 bytes and sits in the SA's first line; the
 * bitmap is apart and touched only with anti-replay on, so with it off a
 * packet costs no line beyond the SA's first.
 * Both have one writer (the SA's owning worker): no atomics.
 */
#ifndef NATT_REPLAY_H
#define NATT_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define REPLAY_BUCKET_BITS 64
#define REPLAY_BUCKET_SHIFT 6

/* Result of replay_check()/replay_update(). */
enum replay_verdict {
	REPLAY_OK = 0,
	REPLAY_DUP = 1,      /* already received */
	REPLAY_TOO_OLD = 2,  /* left of the window */
};

struct replay_window {
	uint64_t top;        /* highest authenticated sequence number (64-bit) */
	uint32_t size;       /* window size W in packets; 0 = anti-replay off */
	uint16_t nb_mask;    /* buckets of the bitmap - 1 (a power of two - 1) */
	bool esn;
};

/* Buckets needed for a window of w packets: one spare so that moving the
 * window never clears a bucket still in use (RFC 6479 section 2). */
static inline uint32_t
replay_nb_buckets(uint32_t w)
{
	uint32_t n = (w + REPLAY_BUCKET_BITS - 1) / REPLAY_BUCKET_BITS + 1;
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* Bytes of the bitmap of a window of w packets. */
static inline size_t
replay_bmp_size(uint32_t w)
{
	return replay_nb_buckets(w) * sizeof(uint64_t);
}

/* Initialise a window of w packets (0..4096) and its bitmap of
 * replay_bmp_size(w) bytes. Sequence numbers start at 1. */
static inline void
replay_init(struct replay_window *rw, uint64_t *bmp, uint32_t w, bool esn)
{
	uint32_t nb = replay_nb_buckets(w);

	rw->top = 0;
	rw->size = w;
	rw->nb_mask = (uint16_t)(nb - 1);
	rw->esn = esn;
	memset(bmp, 0, nb * sizeof(uint64_t));
}

/*
 * Reconstruct the 64-bit sequence number from the 32 bits on the wire
 * (RFC 4303 Appendix A2.2). Without ESN the high half is 0. With anti-replay
 * off the same inference runs with the largest window that keeps it
 * unambiguous (2^31), so ESN still works.
 */
static inline uint64_t
replay_infer_seq(const struct replay_window *rw, uint32_t seq)
{
	uint32_t tl, th, w, bottom;

	if (!rw->esn)
		return seq;
	tl = (uint32_t)rw->top;
	th = (uint32_t)(rw->top >> 32);
	w = rw->size ? rw->size : 1u << 31;
	bottom = tl - w + 1;           /* mod 2^32 */
	if (tl >= w - 1) {             /* case A: window within one subspace */
		if (seq >= bottom)
			return (uint64_t)th << 32 | seq;
		return (uint64_t)(th + 1) << 32 | seq;
	}
	/* case B: window spans two subspaces */
	if (seq >= bottom && th > 0)
		return (uint64_t)(th - 1) << 32 | seq;
	return (uint64_t)th << 32 | seq;
}

static inline enum replay_verdict
replay_check_seq(const struct replay_window *rw, const uint64_t *bmp, uint64_t sqn)
{
	uint64_t bit;
	uint32_t idx;

	/* 0 is never sent (RFC 4303 3.3.3: the first packet carries 1). */
	if (sqn == 0)
		return REPLAY_TOO_OLD;
	if (rw->size == 0 || sqn > rw->top)
		return REPLAY_OK;
	if (sqn + rw->size <= rw->top)
		return REPLAY_TOO_OLD;
	idx = (uint32_t)(sqn >> REPLAY_BUCKET_SHIFT) & rw->nb_mask;
	bit = 1ull << (sqn & (REPLAY_BUCKET_BITS - 1));
	return (bmp[idx] & bit) ? REPLAY_DUP : REPLAY_OK;
}

/*
 * Pre-crypto check. Stores the inferred 64-bit sequence number in *sqn (its
 * high half goes into the GCM AAD when ESN is on).
 */
static inline enum replay_verdict
replay_check(const struct replay_window *rw, const uint64_t *bmp, uint32_t seq,
	     uint64_t *sqn)
{
	*sqn = replay_infer_seq(rw, seq);
	return replay_check_seq(rw, bmp, *sqn);
}

/*
 * Post-ICV update with the sequence number replay_check() inferred. Re-checks,
 * because another packet of the same burst may have moved the window.
 */
static inline enum replay_verdict
replay_update(struct replay_window *rw, uint64_t *bmp, uint64_t sqn)
{
	enum replay_verdict v = replay_check_seq(rw, bmp, sqn);
	uint64_t idx, top_idx, n;

	if (v != REPLAY_OK)
		return v;
	if (sqn > rw->top) {
		if (rw->size != 0) {
			top_idx = rw->top >> REPLAY_BUCKET_SHIFT;
			idx = sqn >> REPLAY_BUCKET_SHIFT;
			n = idx - top_idx;
			if (n > (uint64_t)rw->nb_mask + 1)
				n = (uint64_t)rw->nb_mask + 1;
			/* clear the buckets the window slides into */
			while (n--)
				bmp[(++top_idx) & rw->nb_mask] = 0;
		}
		rw->top = sqn;
	}
	if (rw->size != 0)
		bmp[(sqn >> REPLAY_BUCKET_SHIFT) & rw->nb_mask] |=
			1ull << (sqn & (REPLAY_BUCKET_BITS - 1));
	return REPLAY_OK;
}

#endif /* NATT_REPLAY_H */
