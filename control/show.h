/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * show.h - `natt-control show ...`: the operator's read-only view of a running
 * natt-dataplane, from the NATT_STATS_MZ and NATT_JOURNAL_MZ memzones.
 *
 *   natt-control <EAL args> -- show tunnels|tunnel NAME|stats|drops|events
 *                                   [--json | --prometheus [--tunnels]]
 *   natt-control <EAL args> -- diagnose TUNNEL [--json]
 *
 * Nothing here writes to shared memory or talks to the workers: a show can
 * run at any time against a busy gateway. Output formats: docs/OPERATOR.md.
 */
#ifndef NATT_SHOW_H
#define NATT_SHOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "natt_journal.h"
#include "natt_stats.h"

/* Exit statuses of `natt-control show`. */
enum natt_show_status {
	NATT_SHOW_OK = 0,
	NATT_SHOW_USAGE = 1,     /* bad arguments, or the tunnel does not exist */
	NATT_SHOW_NOATTACH = 2,  /* no (compatible) natt-dataplane to read */
};

/* What a show reads. Never written through. */
struct natt_show_src {
	struct natt_stats_hdr *st;
	size_t st_len;               /* memzone length */
	struct natt_journal_hdr *j;  /* NULL: no usable journal */
	size_t j_len;
};

/**
 * `natt-control ... -- show ...` or `-- diagnose ...`, after rte_eal_init()
 * (secondary).
 * @param argv  the application arguments, argv[0] = "show" or "diagnose".
 * @return enum natt_show_status.
 */
int natt_show_main(int argc, char **argv);

/**
 * Whether a whole command line asks for `show` or `diagnose`: the first
 * argument after "--" is one of them. Call it before rte_eal_init(), which overwrites the "--".
 * When rte_eal_init() then fails there is no dataplane to attach to: exit
 * NATT_SHOW_NOATTACH.
 */
bool natt_show_requested(int argc, char *const *argv);

/**
 * Write what `show stats --prometheus` prints to path, atomically (path.tmp.PID,
 * then rename), for node_exporter's textfile collector. Attaches on the first
 * call and keeps the pointers: call it as often as needed from a long-running
 * secondary.
 * @return 0, or a negative errno (-ENOENT: no dataplane, -EPROTO: incompatible
 *         layout, else the file error).
 */
int natt_prom_textfile(const char *path);

/* ---- diagnose TUNNEL: the failure modes of NAT-T, read from the counters ---- */

enum natt_diag_sev { NATT_DIAG_ERROR = 0, NATT_DIAG_WARNING = 1, NATT_DIAG_INFO = 2 };

/*
 * What `diagnose` reasons over: one tunnel's counters and the gateway's
 * totals, converted to seconds. Durations are seconds ago, < 0 = never.
 * Filled from the memzones by natt-control; built by hand in tests.
 */
struct natt_diag_in {
	bool installed;          /* the dataplane holds the tunnel (else: journal only) */
	bool pinned;             /* nat_mapping_change = "pin" */
	bool idle;               /* the dataplane's idle flag */
	uint16_t keepalive_s;    /* our keepalive interval, 0 = we send none */
	uint32_t in_spi;
	uint32_t mapping_changes, pin_ignored;
	uint64_t in_packets, out_packets;
	uint64_t auth_failed, replay, policy, bad_trailer, too_big, fragmented;
	uint64_t keepalives, keepalives_sent;  /* received from the peer / sent by us */
	double in_ago, out_ago, keepalive_ago, created_ago;
	uint64_t mapping_unix_ns;              /* last mapping change, 0 = never */
	uint32_t remote_addr, prev_addr, seen_addr;  /* network order */
	uint16_t remote_port, prev_port, seen_port;  /* network order */
	double idle_after;       /* seconds without inbound that mean "stopped" */
	/* gateway-wide, all workers */
	uint64_t gw_ike, gw_exception, gw_no_sa, gw_no_route;
};

#define NATT_DIAG_TEXT_LEN 384
#define NATT_DIAG_MAX 20

struct natt_diag_finding {
	enum natt_diag_sev sev;
	const char *code;        /* stable: scripts match on it */
	const char *summary;     /* a few words, for the verdict */
	char text[NATT_DIAG_TEXT_LEN];
};

/**
 * Every diagnosis rule over in (pure: no clock, no memory but in and out).
 * @param out  receives the findings, most severe first, then in rule order.
 * @return how many (at most max).
 */
unsigned int natt_diag_eval(const struct natt_diag_in *in, struct natt_diag_finding *out,
			    unsigned int max);

/** One line that sums up n findings ordered by natt_diag_eval(), into buf. */
const char *natt_diag_verdict(const struct natt_diag_finding *f, unsigned int n, char *buf,
			      size_t len);

/** "error", "warning" or "info". */
const char *natt_diag_sev_name(enum natt_diag_sev s);

/* ---- the layers below natt_show_main(), for tests ---- */

/**
 * Check that st (and j, if not NULL) hold a layout this program reads: magic,
 * version, geometry against the memzone lengths. A bad journal only clears
 * src->j (with a reason in err).
 * @return 0, or -EAGAIN (header not published yet) / -EPROTO with err set.
 */
int natt_show_check(struct natt_show_src *src, char *err, size_t errlen);

/** Run argv (argv[0] = "show" or "diagnose") on src, output to out, errors to err. */
int natt_show_run(const struct natt_show_src *src, int argc, char **argv, FILE *out,
		  FILE *err);

/** The Prometheus text exposition (0.0.4) of src; per-tunnel series if tunnels. */
void natt_prom_write(FILE *f, const struct natt_show_src *src, bool tunnels);

#endif /* NATT_SHOW_H */
