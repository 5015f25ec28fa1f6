/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * natt_journal.h - the control plane's record of what it installed, in the
 * NATT_JOURNAL_MZ memzone.
 *
 * natt-dataplane (the primary) reserves and zeroes it at start-up, fills the
 * header's geometry and stores the magic last; from then on natt-control is
 * its only writer. It lives as long as the dataplane, so a restarted
 * natt-control reads back what the previous one installed (tunnel id by
 * name, SPIs, digests of keys and parameters, routes) and converges to the
 * file without touching what did not change. Readers (`natt-control show`,
 * telemetry) never write.
 *
 *   struct natt_journal_hdr
 *   struct natt_journal_event   [n_events]     (ring, evt_head counts writes)
 *   struct natt_journal_tunnel  [max_tunnels]  (indexed by tunnel id)
 *
 * Only one natt-control may write: it claims the journal by writing its pid
 * to writer_pid (compare-and-swap from 0, or from the pid of a process that
 * no longer exists) and clears it on exit.
 *
 * Digests are the first 8 bytes of SHA-256 over what the field covers; they
 * only tell natt-control whether the file still says the same thing.
 */
#ifndef NATT_JOURNAL_H
#define NATT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "natt_ctl.h"

#define NATT_JOURNAL_MZ "natt_journal"
#define NATT_JOURNAL_MAGIC 0x4e41544au   /* "NATJ" */
#define NATT_JOURNAL_VERSION 1
#define NATT_JOURNAL_EVENTS 4096u         /* power of 2 */

enum natt_jt_state {
	NATT_JT_FREE = 0,    /* id unused */
	NATT_JT_LIVE = 1,    /* installed as recorded */
	NATT_JT_DIRTY = 2,   /* a change was sent but not confirmed: the
			      * dataplane may hold the old or the new state */
};

/* Outcome of the last reload attempt (hdr.last_status). */
enum natt_reload_status {
	NATT_RELOAD_NONE = 0,      /* no attempt yet */
	NATT_RELOAD_OK = 1,
	NATT_RELOAD_INVALID = 2,   /* file refused: nothing was sent */
	NATT_RELOAD_REJECTED = 3,  /* a worker NACKed part of it */
	NATT_RELOAD_TIMEOUT = 4,   /* a worker did not answer in time */
};

/* Journal-only event types, after enum natt_evt_type's. */
enum natt_jevt_type {
	NATT_JEVT_RELOAD_OK = 100,     /* value = generation, status = duration ms */
	NATT_JEVT_RELOAD_FAILED = 101, /* value = enum natt_reload_status */
	NATT_JEVT_CONTROL_START = 102, /* value = tunnels found in the journal */
};

struct natt_journal_event {
	uint64_t unix_ns;        /* CLOCK_REALTIME */
	uint16_t type;           /* enum natt_evt_type or enum natt_jevt_type */
	uint16_t worker;
	uint32_t tunnel_id;      /* UINT32_MAX: not about a tunnel */
	uint32_t spi;
	uint32_t addr;           /* network order */
	uint32_t old_addr;
	uint16_t port;           /* network order */
	uint16_t old_port;
	int32_t status;
	uint32_t value;
	char name[24];           /* tunnel name, truncated */
};

_Static_assert(sizeof(struct natt_journal_event) == 64, "event log entry is one line");

struct natt_journal_tunnel {
	char name[NATT_NAME_LEN];
	uint8_t state;           /* enum natt_jt_state */
	uint8_t n_pfx;           /* routes in pfx[] (the tunnel's remote_ts) */
	uint16_t last_evt_type;  /* latest dataplane event about this tunnel, 0 = none */
	uint32_t spi[2];         /* installed SPI by enum natt_sa_dir */
	uint32_t pend_spi[2];    /* DIRTY: SPIs being installed when it was marked */
	uint32_t grace_spi;      /* previous inbound SPI in its rekey grace, 0 = none */
	uint32_t pad;
	uint64_t sa_digest[2];   /* SPI, algorithm, key, salt, ESN, window per direction */
	uint64_t param_digest;   /* peer, ports, selectors (what SA_UPDATE changes) */
	uint64_t grace_until_ns; /* CLOCK_REALTIME the grace of grace_spi ends */
	uint64_t last_evt_ns;
	uint32_t last_evt_addr;  /* network order */
	uint32_t last_evt_old_addr;
	uint16_t last_evt_port;
	uint16_t last_evt_old_port;
	uint32_t last_evt_value;
	struct natt_ctl_ts pfx[NATT_MAX_TS];
};

struct natt_journal_hdr {
	uint32_t magic;          /* NATT_JOURNAL_MAGIC, stored last by the primary */
	uint32_t version;        /* NATT_JOURNAL_VERSION */
	uint32_t max_tunnels;
	uint32_t n_events;       /* NATT_JOURNAL_EVENTS */
	int32_t writer_pid;      /* natt-control that owns the journal, 0 = none */
	uint32_t generation;     /* last generation fully applied */
	uint64_t reloads_ok;
	uint64_t reloads_failed;
	uint64_t last_attempt_ns;  /* CLOCK_REALTIME of the last reload attempt */
	uint64_t last_ok_ns;
	uint32_t last_status;      /* enum natt_reload_status */
	uint32_t last_parse_us;    /* read + validate */
	uint32_t last_apply_us;    /* first message to the last worker's ack */
	uint32_t n_tunnels;        /* tunnels live after the last applied reload */
	uint32_t last_added;
	uint32_t last_removed;
	uint32_t last_updated;     /* parameters changed, SAs kept */
	uint32_t last_rekeyed;     /* new SPI/key in at least one direction */
	uint32_t last_unchanged;
	uint32_t pad;
	uint64_t evt_head;         /* events written so far; entry i is
				    * events[i % n_events]; stored with release
				    * after the entry */
	char config_path[256];
	char last_error[256];      /* "FILE:LINE: reason" of the last failure */
} __attribute__((aligned(64)));

/** Short name of an event type (natt_evt_type or natt_jevt_type). */
static inline const char *
natt_event_name(unsigned int type)
{
	switch (type) {
	case NATT_EVT_NACK: return "nack";
	case NATT_EVT_COMMIT_ACK: return "commit_ack";
	case NATT_EVT_SEQ_EXHAUSTED: return "seq_exhausted";
	case NATT_EVT_NAT_MAPPING: return "nat_mapping";
	case NATT_EVT_IDLE: return "idle";
	case NATT_EVT_SA_EXPIRED: return "sa_expired";
	case NATT_JEVT_RELOAD_OK: return "reload_ok";
	case NATT_JEVT_RELOAD_FAILED: return "reload_failed";
	case NATT_JEVT_CONTROL_START: return "control_start";
	}
	return "unknown";
}

/** Name of an enum natt_reload_status. */
static inline const char *
natt_reload_status_name(unsigned int s)
{
	static const char *const names[] = {
		[NATT_RELOAD_NONE] = "none", [NATT_RELOAD_OK] = "ok",
		[NATT_RELOAD_INVALID] = "invalid", [NATT_RELOAD_REJECTED] = "rejected",
		[NATT_RELOAD_TIMEOUT] = "timeout",
	};

	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

static inline struct natt_journal_event *
natt_journal_events(struct natt_journal_hdr *h)
{
	return (struct natt_journal_event *)(h + 1);
}

static inline struct natt_journal_tunnel *
natt_journal_tunnel(struct natt_journal_hdr *h, uint32_t id)
{
	return (struct natt_journal_tunnel *)(natt_journal_events(h) + h->n_events) + id;
}

static inline size_t
natt_journal_size(uint32_t max_tunnels)
{
	return sizeof(struct natt_journal_hdr) +
	       NATT_JOURNAL_EVENTS * sizeof(struct natt_journal_event) +
	       (size_t)max_tunnels * sizeof(struct natt_journal_tunnel);
}

#endif /* NATT_JOURNAL_H */
