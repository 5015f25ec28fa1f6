/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * worker.c - the poll loop of one worker lcore, run to completion:
 * control messages -> RX on every configured port -> inbound (outside port)
 * or outbound (inside port) -> packets handed over by other workers -> TX flush.
 */
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include "sa.h"
#include "worker.h"

void
natt_tx_flush_port(struct natt_worker *w, uint16_t p)
{
	struct natt_port *pt = &w->port[p];
	struct natt_port_stats *ps = &w->st->port[p];
	uint16_t sent, n = pt->n_tx;
	uint64_t bytes = 0;

	if (n == 0)
		return;
	sent = rte_eth_tx_burst(p, w->queue, pt->tx, n);
	for (uint16_t i = 0; i < sent; i++)
		bytes += rte_pktmbuf_pkt_len(pt->tx[i]);
	for (uint16_t i = sent; i < n; i++)
		natt_drop(w, pt->tx[i], NATT_DROP_TX_FULL);
	ps->tx_packets += sent;
	ps->tx_bytes += bytes;
	w->st->counters[NATT_CNT_TX] += sent;
	w->st->counters[NATT_CNT_TX_BYTES] += bytes;
	pt->n_tx = 0;
}

static void
tx_flush_all(struct natt_worker *w)
{
	for (uint16_t p = 0; p < w->n_eth_ports; p++)   /* TAPs included */
		natt_tx_flush_port(w, p);
}

static void
rx_account(struct natt_worker *w, uint16_t p, struct rte_mbuf **pkts, uint16_t n)
{
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	w->st->port[p].rx_packets += n;
	w->st->port[p].rx_bytes += bytes;
	w->st->counters[NATT_CNT_RX] += n;
	w->st->counters[NATT_CNT_RX_BYTES] += bytes;
	w->st->last_rx_tsc = w->now;
}

/* Packets other workers handed us, both directions mixed: split them by
 * the role of the port they came in on. */
static void
handoff_process(struct natt_worker *w, struct rte_mbuf **pkts, unsigned int n)
{
	struct rte_mbuf *in[NATT_MAX_BURST], *out[NATT_MAX_BURST];
	uint16_t ni = 0, no = 0;

	w->st->counters[NATT_CNT_HANDOFF_IN] += n;
	for (unsigned int i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (m->port < NATT_MAX_PORTS && w->port[m->port].role == NATT_ROLE_INSIDE)
			out[no++] = m;
		else
			in[ni++] = m;
	}
	if (ni != 0)
		natt_inbound(w, in, ni);
	if (no != 0)
		natt_outbound(w, out, no);
}

static void
poll_ports(struct natt_worker *w)
{
	struct rte_mbuf *pkts[NATT_MAX_BURST];

	for (uint16_t p = 0; p < w->n_ports; p++) {
		uint8_t role = w->port[p].role;
		uint16_t n;

		if (role == NATT_ROLE_NONE)
			continue;
		n = rte_eth_rx_burst(p, w->queue, pkts, NATT_MAX_BURST);
		if (n == 0)
			continue;
		rx_account(w, p, pkts, n);
		if (role == NATT_ROLE_OUTSIDE)
			natt_inbound(w, pkts, n);
		else
			natt_outbound(w, pkts, n);
	}
	if (w->n_workers > 1) {
		/* packets other workers received for SAs we own */
		unsigned int n = rte_ring_sc_dequeue_burst(w->handoff, (void **)pkts,
							   NATT_MAX_BURST, NULL);
		if (n != 0)
			handoff_process(w, pkts, n);
	}
}

int
natt_worker_main(void *arg)
{
	struct natt_worker *w = arg;

	while (!w->stop) {
		unsigned int n_ctl = natt_ctl_drain(w);

		if (unlikely(!w->active)) {
			if (n_ctl == 0)   /* nothing to forward, nothing to apply */
				rte_delay_us_sleep(100);
			continue;
		}
		w->now = rte_rdtsc();
		poll_ports(w);
		natt_host_poll(w);
		tx_flush_all(w);
		if (unlikely(w->n_retire != 0))
			natt_sa_retire_poll(w, w->now);
		natt_tunnel_scan(w);
		w->st->counters[NATT_CNT_LOOPS]++;
	}
	tx_flush_all(w);
	return 0;
}

void
natt_worker_finish(struct natt_worker *w)
{
	struct rte_mbuf *pkts[NATT_MAX_BURST];
	unsigned int n;

	while ((n = rte_ring_sc_dequeue_burst(w->handoff, (void **)pkts,
					      NATT_MAX_BURST, NULL)) != 0)
		handoff_process(w, pkts, n);
	tx_flush_all(w);
}
