/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * show.h - `natt-control show ...`: the operator's read-only view of a running
 * natt-dataplane, from the NATT_STATS_MZ and NATT_JOURNAL_MZ memzones.
 *
 *   natt-control <EAL args> -- show tunnels|tunnel NAME|stats|drops|events
 *                                   [--json | --prometheus [--tunnels]]
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
 * `natt-control ... -- show ...`, after rte_eal_init() (secondary).
 * @param argv  the application arguments, argv[0] = "show".
 * @return enum natt_show_status.
 */
int natt_show_main(int argc, char **argv);

/**
 * Whether a whole command line asks for `show`: the first argument after
 * "--" is "show". Call it before rte_eal_init(), which overwrites the "--".
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

/* ---- the layers below natt_show_main(), for tests ---- */

/**
 * Check that st (and j, if not NULL) hold a layout this program reads: magic,
 * version, geometry against the memzone lengths. A bad journal only clears
 * src->j (with a reason in err).
 * @return 0, or -EAGAIN (header not published yet) / -EPROTO with err set.
 */
int natt_show_check(struct natt_show_src *src, char *err, size_t errlen);

/** Run `show` argv (argv[0] = "show") on src, output to out, errors to err. */
int natt_show_run(const struct natt_show_src *src, int argc, char **argv, FILE *out,
		  FILE *err);

/** The Prometheus text exposition (0.0.4) of src; per-tunnel series if tunnels. */
void natt_prom_write(FILE *f, const struct natt_show_src *src, bool tunnels);

#endif /* NATT_SHOW_H */
