/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * reconcile.h - bring the dataplane from what the journal says it holds to
 * what a validated configuration asks for, touching only what differs.
 *
 * Tunnels are matched by name. For each one the journal (natt_journal.h)
 * keeps its tunnel id, SPIs, digests of each SA's keys and of its
 * parameters, and its routes; comparing the file's digests with those tells:
 *
 *   added      not in the journal: new tunnel id, SA_ADD in/out, ROUTE_ADD
 *   removed    not in the file: ROUTE_DEL, SA_DEL (keys wiped by the worker)
 *   unchanged  same digests and routes: no message at all, so its replay
 *              window, sequence counter and counters are untouched
 *   updated    same SAs, other peer/ports/selectors: SA_UPDATE, routes
 *              lost are deleted and gained ones added
 *   rekeyed    an SA's SPI or key (or algorithm, ESN, window) changed: the
 *              new SA is installed first; the old inbound SA stays for
 *              dataplane.rekey_grace seconds, the old outbound one goes at
 *              once (the new one already seals)
 *   dirty      the journal says a change was sent but never confirmed (a
 *              NACK, a timeout, natt-control killed mid-reload): everything
 *              it may hold is deleted and the tunnel installed again
 *
 * One reload is one generation: removals and lost routes first (a prefix or
 * SPI may move to another tunnel), then installs, then retirements, then the
 * COMMIT. The journal entry of a tunnel is marked dirty before its messages
 * are sent and written with the new state once every worker acked.
 */
#ifndef NATT_RECONCILE_H
#define NATT_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "natt_journal.h"
#include "program.h"

struct natt_reload_counts {
	uint32_t added;
	uint32_t removed;
	uint32_t updated;
	uint32_t rekeyed;
	uint32_t unchanged;
	uint32_t reinstalled;   /* dirty entries installed again */
	uint32_t n_tunnels;     /* in the file */
	uint32_t failed;        /* tunnels a worker refused (left dirty) */
};

struct natt_rec {
	struct natt_prog *prog;
	struct natt_journal_hdr *j;
	uint32_t max_tunnels;
	/* scratch, max_tunnels entries each */
	uint32_t *cfg_of;        /* tunnel id -> index in the file, UINT32_MAX = none */
	uint32_t *id_of;         /* index in the file -> tunnel id */
	uint8_t *act;            /* index in the file -> REC_* action bits */
	uint8_t *failed;         /* tunnel id -> a worker NACKed one of its messages */
	uint8_t *prior;          /* tunnel id -> journal state before this reload */
	struct natt_journal_tunnel *next; /* index in the file -> its new journal entry */
	uint32_t grace_ms;
	uint32_t nack_lines;     /* NACKs printed in this reload (NATT_PROG_NACK_LINES) */
	bool own;                /* we hold the journal (writer_pid) */
};

/**
 * Find the journal, claim it as its only writer, allocate the scratch.
 * @return 0, or -1 with a message on stderr (another natt-control runs,
 * journal missing or of another version).
 */
int natt_rec_attach(struct natt_rec *r, struct natt_prog *p);

/** Give the journal up (writer_pid = 0) and free the scratch. */
void natt_rec_detach(struct natt_rec *r);

/**
 * Checks of cfg that need the running dataplane: tunnels against
 * max_tunnels, routes against the FIB size, interface ports.
 * @return 0, or -1 with "FILE:LINE: reason" in err.
 */
int natt_rec_check(const struct natt_rec *r, const struct natt_config *cfg,
		   const char *path, char *err, size_t errlen);

/**
 * Converge the dataplane to cfg as one generation and wait for every worker.
 * @return enum natt_prog_status; *counts says what was done.
 */
int natt_rec_apply(struct natt_rec *r, const struct natt_config *cfg,
		   struct natt_reload_counts *counts);

/** Append an event to the journal's log (and the tunnel's latest event). */
void natt_rec_log_event(struct natt_rec *r, const struct natt_journal_event *e);

/** CLOCK_REALTIME in ns. */
uint64_t natt_rec_now_ns(void);

#endif /* NATT_RECONCILE_H */
