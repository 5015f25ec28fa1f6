/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_worker.h - a worker context for tests and fuzz targets: the real
 * tables, crypto manager and inbound path, no lcore, no ports (TX stays in
 * the worker's per-port array where a test can inspect it).
 */
#ifndef NATT_TEST_WORKER_H
#define NATT_TEST_WORKER_H

#include <rte_mbuf.h>

#include "sa.h"
#include "worker.h"

#define TW_OUTSIDE_ADDR "203.0.113.1"
#define TW_INSIDE_ADDR "10.10.0.1"
#define TW_OUTSIDE_PORT 0
#define TW_INSIDE_PORT 1

/** Worker 0 of 1 with an outside (port 0) and inside (port 1) role, MTU
 *  1500 on both, an event ring; w->pool is the caller's to set (ICMP,
 *  fragments). Needs the EAL. */
struct natt_worker *tw_create(uint32_t max_tunnels);
void tw_destroy(struct natt_worker *w);

/** Ethernet/IPv4/UDP(sport -> 4500) frame to the outside address around
 *  payload[0..len). NULL if the pool is empty. */
struct rte_mbuf *tw_frame(struct rte_mempool *mp, const uint8_t *payload,
			  uint32_t len);

/** Feed one mbuf to natt_inbound; return the drop reason it was counted
 *  under, -1 if none (forwarded), -2 if counted under several. */
int tw_inbound_one(struct natt_worker *w, struct rte_mbuf *m);

/** Same for natt_outbound (inside-port frame). */
int tw_outbound_one(struct natt_worker *w, struct rte_mbuf *m);

/** Free what inbound queued for TX (tests never send). */
void tw_tx_discard(struct natt_worker *w);

#endif
