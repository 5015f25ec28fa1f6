/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * program.h - push a struct natt_config to the dataplane over the natt_ctl.h
 * rings and wait for every worker's verdict.
 *
 * Every message goes to every worker (natt_ctl.h: each worker records every
 * SA, the owner installs it), in one batch closed by a COMMIT. Message
 * cookies are NATT_PROG_COOKIE_BASE and above (reconcile.c numbers them);
 * generations stay below it, so a NACK whose cookie is the generation can
 * only be the COMMIT's.
 */
#ifndef NATT_PROGRAM_H
#define NATT_PROGRAM_H

#include <stdint.h>

#include "natt_ctl.h"
#include "natt_stats.h"

struct rte_ring;

#define NATT_PROG_COOKIE_BASE 0x80000000u
#define NATT_PROG_BATCH 64u             /* messages per ring enqueue */
#define NATT_PROG_ATTACH_TIMEOUT_S 10
#define NATT_PROG_ACK_TIMEOUT_S 30
#define NATT_PROG_NACK_LINES 100        /* NACKs printed one by one, then counted */

/* Exit statuses of natt-control, also returned by natt_prog_apply(). */
enum natt_prog_status {
	NATT_PROG_OK = 0,
	NATT_PROG_REJECTED = 1,  /* a NACK, a non-zero ack status, a local error */
	NATT_PROG_TIMEOUT = 2,   /* a worker did not ack (or drain) in time */
};

struct natt_prog;

/* What natt-control does with the answers (reconcile.c / main.c). */
struct natt_prog_hooks {
	/* a worker refused the message with this cookie */
	void (*nack)(void *ctx, const struct natt_evt *e);
	void *nack_ctx;
	/* an event that is not an answer (NAT mapping, idle, ...) */
	void (*event)(void *ctx, const struct natt_evt *e);
	void *event_ctx;
};

struct natt_prog {
	struct natt_stats_hdr *hdr;
	struct rte_ring *ctl[NATT_MAX_WORKERS];
	struct rte_ring *evt;
	uint32_t n_workers;
	struct natt_prog_hooks hooks;
	/* the batch being applied */
	uint32_t generation;
	uint32_t n_nacks;
	uint32_t n_acked;
	uint32_t n_msgs;                 /* messages in this batch, per worker */
	uint8_t acked[NATT_MAX_WORKERS];
	int32_t ack_status[NATT_MAX_WORKERS];
	uint32_t n_batch;
	struct natt_ctl_msg batch[NATT_PROG_BATCH];
	struct natt_ctl_msg wbatch[NATT_PROG_BATCH]; /* batch as one worker gets it */
};

/**
 * Find the stats memzone and the rings the primary created, retrying for up
 * to timeout_s seconds while it starts, and check the stats header. Needs
 * rte_eal_init() (secondary).
 * @return 0, or -1 with a message on stderr.
 */
int natt_prog_attach(struct natt_prog *p, unsigned int timeout_s);

/** Empty the event ring before the first batch: answers left by an earlier
 *  natt-control are discarded, other events go to hooks.event. */
void natt_prog_drain_stale(struct natt_prog *p);

/** Start a batch: the next generation (above any a worker applied). */
void natt_prog_begin(struct natt_prog *p);

/**
 * Next message of the batch, header filled, body zeroed; enqueues on every
 * worker's ring when the local buffer is full.
 * @return the message, or NULL with *rc set (NATT_PROG_TIMEOUT).
 */
struct natt_ctl_msg *natt_prog_msg(struct natt_prog *p, uint16_t type, uint32_t cookie,
				   int *rc);

/**
 * Close the batch with a COMMIT, send what is left, and wait for every
 * worker's COMMIT_ACK. NACKs go to hooks.nack as they arrive. Key material
 * is wiped from the local buffers once enqueued.
 * @return enum natt_prog_status.
 */
int natt_prog_commit(struct natt_prog *p);

/**
 * Handle every event waiting in the event ring (answers and hooks.event).
 * @return the number of events consumed.
 */
unsigned int natt_prog_poll_events(struct natt_prog *p);

#endif /* NATT_PROGRAM_H */
