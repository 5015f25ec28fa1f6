/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef NATT_STATS_JSON_H
#define NATT_STATS_JSON_H

#include <stdio.h>

#include "natt_stats.h"

/** Write the counters memzone as JSON (README "Counters"): totals, drops by
 *  name, ports, per worker, tunnels by name. Reads only; any process may call. */
void natt_stats_json(FILE *f, struct natt_stats_hdr *h);

/** One-line-per-counter live view for the terminal; prev (n_workers blocks
 *  summed) is updated to now, interval in seconds for the rates. */
void natt_stats_print(FILE *f, struct natt_stats_hdr *h,
		      struct natt_worker_stats *prev, double interval);

#endif
