/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * program.h - push a struct natt_config to the dataplane over the natt_ctl.h
 * rings and wait for every worker's verdict.
 *
 * The whole configuration goes to every worker (natt_ctl.h: each worker
 * records every SA, the owner installs it), in one batch closed by a COMMIT.
 * Message cookies count up from NATT_PROG_COOKIE_BASE; generations stay below
 * it, so a NACK whose cookie is the generation can only be the COMMIT's.
 */
#ifndef NATT_PROGRAM_H
#define NATT_PROGRAM_H

#include <stdint.h>

#include "config.h"
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

struct natt_prog {
	struct natt_stats_hdr *hdr;
	struct rte_ring *ctl[NATT_MAX_WORKERS];
	struct rte_ring *evt;
	uint32_t n_workers;
	uint32_t next_cookie;
	/* the batch being applied: what NACK cookies refer to */
	const struct natt_config *cfg;
	uint32_t generation;
	uint32_t if_cookie;              /* cookie of the first IFACE message */
	uint32_t sa_cookie;              /* of tunnel 0 inbound; +2i+dir */
	uint32_t route_cookie;           /* ROUTE_ADD of tunnel 0; +i */
	uint32_t params_cookie;          /* PARAMS */
	uint32_t n_nacks;
	uint32_t n_acked;
	uint8_t acked[NATT_MAX_WORKERS];
	int32_t ack_status[NATT_MAX_WORKERS];
	uint32_t n_batch;
	struct natt_ctl_msg batch[NATT_PROG_BATCH];
	struct natt_ctl_msg wbatch[NATT_PROG_BATCH]; /* batch as one worker gets it */
};

/**
 * Find the stats memzone and the rings the primary created, retrying for up
 * to timeout_s seconds while it starts, and check the stats header. Discards
 * events left over in the event ring. Needs rte_eal_init() (secondary).
 * @return 0, or -1 with a message on stderr.
 */
int natt_prog_attach(struct natt_prog *p, unsigned int timeout_s);

/**
 * Checks of cfg that need the running dataplane: number of tunnels against
 * max_tunnels, interface ports against the dataplane's ports.
 * @return 0, or -1 with "FILE:LINE: reason" in err.
 */
int natt_prog_check(const struct natt_prog *p, const struct natt_config *cfg,
		    const char *path, char *err, size_t errlen);

/**
 * Send cfg to every worker as one generation and wait for every COMMIT_ACK.
 * NACKs are reported on stderr as they arrive. Key material is wiped from
 * the local batch buffer once enqueued. cfg must stay valid during the call.
 * @param elapsed_ms  set to the time from the first message to the last ack.
 * @return enum natt_prog_status.
 */
int natt_prog_apply(struct natt_prog *p, const struct natt_config *cfg, double *elapsed_ms);

/**
 * Log every event waiting in the event ring to stderr.
 * @return the number of events consumed.
 */
unsigned int natt_prog_poll_events(struct natt_prog *p);

#endif /* NATT_PROGRAM_H */
