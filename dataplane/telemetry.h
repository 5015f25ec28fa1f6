/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * telemetry.h - natt-gw's commands on DPDK's telemetry socket
 * (<runtime dir>/dpdk_telemetry.v2, e.g. dpdk-telemetry.py -f PREFIX):
 *
 *   /natt/stats            summed counters, geometry, config reload status
 *   /natt/drops[,W]        drops by reason: all workers, or worker W
 *   /natt/ports            per-port rx/tx packets and bytes
 *   /natt/tunnels[,ID]     live tunnel names, NATT_TEL_TUNNELS_PAGE at a time
 *                          from tunnel id ID (default 0), and how many are live
 *   /natt/tunnel,NAME      one tunnel's counters and state
 *   /natt/events[,N]       the latest N journal events (default 16, max 48)
 *
 * The callbacks run on DPDK's telemetry threads: they only read the memzones
 * (no lock, no write, no allocation but the rte_tel_data containers) and
 * keep every reply under telemetry's 16 KiB output limit.
 */
#ifndef NATT_TELEMETRY_H
#define NATT_TELEMETRY_H

#include "natt_journal.h"
#include "natt_stats.h"

#define NATT_TEL_TUNNELS_PAGE 256
#define NATT_TEL_EVENTS_DEFAULT 16
#define NATT_TEL_EVENTS_MAX 48

/**
 * Register the /natt/ commands. h and j must stay mapped for the life of
 * the process; j may be NULL (no /natt/events, no reload status).
 * @return 0, or a negative errno: telemetry is then incomplete, nothing else
 *         is affected.
 */
int natt_telemetry_init(struct natt_stats_hdr *h, struct natt_journal_hdr *j);

#endif /* NATT_TELEMETRY_H */
