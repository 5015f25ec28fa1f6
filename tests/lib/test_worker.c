/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_ring_elem.h>
#include <rte_udp.h>

#include "test_worker.h"

struct natt_worker *
tw_create(uint32_t max_tunnels)
{
	size_t hsz = (natt_stats_size(1, max_tunnels) + 63) & ~(size_t)63;
	struct natt_stats_hdr *hdr = aligned_alloc(64, hsz);
	struct natt_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~(size_t)63);

	if (hdr == NULL || w == NULL)
		goto fail;
	memset(hdr, 0, hsz);
	memset(w, 0, sizeof(*w));
	hdr->n_workers = 1;
	hdr->max_tunnels = max_tunnels;
	w->n_workers = 1;
	w->n_ports = 2;
	w->outside = TW_OUTSIDE_PORT;
	w->inside = TW_INSIDE_PORT;
	w->port[TW_OUTSIDE_PORT].role = NATT_ROLE_OUTSIDE;
	w->port[TW_INSIDE_PORT].role = NATT_ROLE_INSIDE;
	inet_pton(AF_INET, TW_OUTSIDE_ADDR, &w->port[TW_OUTSIDE_PORT].addr);
	inet_pton(AF_INET, TW_INSIDE_ADDR, &w->port[TW_INSIDE_PORT].addr);
	w->port[TW_OUTSIDE_PORT].mtu = w->port[TW_INSIDE_PORT].mtu = 1500;
	w->n_eth_ports = 2;
	for (unsigned int p = 0; p < NATT_MAX_PORTS; p++) {
		w->port[p].tap = UINT16_MAX;          /* no exception path */
		w->port[p].resolved = true;           /* static next hops */
	}
	w->inner_mtu = natt_inner_mtu(1500);
	w->icmp.rate = 1000;
	w->tsc_hz = rte_get_tsc_hz();
	{
		static unsigned int seq;
		char name[32];

		snprintf(name, sizeof(name), "tw_evt_%u", seq++);
		w->evt = rte_ring_create_elem(name, sizeof(struct natt_evt), 1024,
					      SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (w->evt == NULL)
			goto fail;
	}
	w->hdr = hdr;
	w->st = natt_stats_worker(hdr, 0);
	w->max_tunnels = max_tunnels;
	w->mgr = natt_crypto_mgr_create(NULL);
	if (w->mgr == NULL || natt_sa_tables_create(w, max_tunnels) != 0)
		goto fail;
	return w;
fail:
	free(w);
	free(hdr);
	return NULL;
}

void
tw_destroy(struct natt_worker *w)
{
	tw_tx_discard(w);
	natt_sa_tables_destroy(w);
	rte_ring_free(w->evt);
	free_mb_mgr(w->mgr);
	free(w->hdr);
	free(w);
}

struct rte_mbuf *
tw_frame(struct rte_mempool *mp, const uint8_t *payload, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;
	uint8_t *p;

	if (m == NULL)
		return NULL;
	p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(14 + 20 + 8 + len));
	if (p == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	ip = (struct rte_ipv4_hdr *)(p + 14);
	udp = (struct rte_udp_hdr *)(p + 34);
	memset(p, 0, 42);
	p[12] = 0x08;
	ip->version_ihl = 0x45;
	ip->total_length = htons((uint16_t)(20 + 8 + len));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	inet_pton(AF_INET, "198.51.100.1", &ip->src_addr);
	inet_pton(AF_INET, TW_OUTSIDE_ADDR, &ip->dst_addr);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = htons(4500);
	udp->dst_port = htons(4500);
	udp->dgram_len = htons((uint16_t)(8 + len));
	memcpy(p + 42, payload, len);
	return m;
}

/* Feed m to one direction; the drop reason it was counted under, -1 if
 * none, -2 if several. */
static int
tw_one(struct natt_worker *w, struct rte_mbuf *m,
       void (*path)(struct natt_worker *, struct rte_mbuf **, uint16_t))
{
	uint64_t before[NATT_DROP_MAX];
	int reason = -1;

	memcpy(before, w->st->drops, sizeof(before));
	path(w, &m, 1);
	for (int r = 0; r < NATT_DROP_MAX; r++)
		if (w->st->drops[r] != before[r])
			reason = reason == -1 ? r : -2;
	return reason;
}

int
tw_inbound_one(struct natt_worker *w, struct rte_mbuf *m)
{
	return tw_one(w, m, natt_inbound);
}

int
tw_outbound_one(struct natt_worker *w, struct rte_mbuf *m)
{
	return tw_one(w, m, natt_outbound);
}

void
tw_tx_discard(struct natt_worker *w)
{
	for (unsigned int p = 0; p < NATT_MAX_PORTS; p++) {
		for (unsigned int i = 0; i < w->port[p].n_tx; i++)
			rte_pktmbuf_free(w->port[p].tx[i]);
		w->port[p].n_tx = 0;
	}
}
