/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * host.c - the gateway's own traffic: what the fast path does not own.
 *
 * Exception path: with natt-dataplane --tap, each port has a Linux TAP
 * interface with the port's MAC. Frames addressed to the gateway itself
 * that are not ESP (IKE on UDP/500 and behind the non-ESP marker on 4500,
 * ICMP to our address, ARP, fragments of those) are handed to the host
 * kernel there, at most dataplane.exception_rate per second per worker, so a
 * flood of IKE cannot starve the workers; what the host sends on the TAP
 * leaves the port as it is. An IKE daemon, ping or ssh on the host then work
 * as if the host owned the NIC.
 *
 * ARP: without a TAP, the dataplane answers ARP requests for the port's own
 * address itself. A port whose next hop is given as an address (IFACE
 * next_hop_ip) resolves it by ARP: worker 0 asks once a second until the
 * answer is known and every 30 s after that; the worker that sees the
 * answer (or any ARP from that address) publishes the MAC in the stats
 * header, and every worker picks it up within a millisecond. Until then,
 * packets for that port are no_neighbor drops.
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "esp.h"
#include "worker.h"

#define ARP_RETRY_S 1           /* unresolved: ask again after */
#define ARP_REFRESH_S 30        /* resolved: ask again after */
#define TAP_POLL_US 100         /* host -> wire latency bound, syscall cost */

static inline uint64_t
mac_pack(const struct rte_ether_addr *a)
{
	uint64_t v = 0;

	for (int i = 0; i < RTE_ETHER_ADDR_LEN; i++)
		v = v << 8 | a->addr_bytes[i];
	return v;
}

static inline void
mac_unpack(uint64_t v, struct rte_ether_addr *a)
{
	for (int i = RTE_ETHER_ADDR_LEN - 1; i >= 0; i--, v >>= 8)
		a->addr_bytes[i] = (uint8_t)v;
}

bool
natt_host_bound(const struct rte_mbuf *m, uint32_t local)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	uint32_t len = rte_pktmbuf_data_len(m);

	if (len < RTE_ETHER_HDR_LEN)
		return false;
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return true;
	return eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
	       len >= RTE_ETHER_HDR_LEN + IPV4_HLEN_MIN && local != 0 && ip->dst_addr == local;
}

/* Learn the next hop's MAC from any ARP it sends (RFC 826 merge). */
static void
arp_snoop(struct natt_worker *w, uint16_t p, const struct rte_arp_hdr *a)
{
	struct natt_neigh *n = &w->hdr->neigh[p];
	uint64_t mac;

	if (n->ip == 0 || a->arp_data.arp_sip != n->ip ||
	    rte_is_zero_ether_addr(&a->arp_data.arp_sha) ||
	    !rte_is_unicast_ether_addr(&a->arp_data.arp_sha))
		return;
	mac = mac_pack(&a->arp_data.arp_sha) | NATT_NEIGH_VALID;
	if (__atomic_load_n(&n->mac, __ATOMIC_RELAXED) != mac || n->mac_ip != n->ip) {
		n->mac_ip = n->ip;
		__atomic_store_n(&n->mac, mac, __ATOMIC_RELEASE);
	}
	n->updated_tsc = w->now;
}

/* A well-formed Ethernet/IPv4 ARP packet, or NULL. */
static const struct rte_arp_hdr *
arp_parse(const struct rte_mbuf *m)
{
	const struct rte_arp_hdr *a;

	if (rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN + sizeof(*a))
		return NULL;
	a = rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, RTE_ETHER_HDR_LEN);
	if (a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    a->arp_hlen != RTE_ETHER_ADDR_LEN || a->arp_plen != 4)
		return NULL;
	return a;
}

/* No host attached: answer a request for our own address in place. */
static bool
arp_reply(struct natt_worker *w, uint16_t p, struct rte_mbuf *m, struct rte_arp_hdr *a)
{
	const struct natt_port *pt = &w->port[p];
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

	if (a->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) || pt->addr == 0 ||
	    a->arp_data.arp_tip != pt->addr)
		return false;
	eth->dst_addr = a->arp_data.arp_sha;
	eth->src_addr = pt->mac;
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	a->arp_data.arp_tha = a->arp_data.arp_sha;
	a->arp_data.arp_tip = a->arp_data.arp_sip;
	a->arp_data.arp_sha = pt->mac;
	a->arp_data.arp_sip = pt->addr;
	w->st->counters[NATT_CNT_ARP_REPLIES]++;
	natt_tx(w, p, m);
	return true;
}

/* Hand m to port p's TAP, within the rate. */
static void
punt(struct natt_worker *w, uint16_t p, struct rte_mbuf *m)
{
	if (!natt_rate_ok(w, &w->exception)) {
		natt_drop(w, m, NATT_DROP_EXCEPTION_LIMITED);
		return;
	}
	w->st->counters[NATT_CNT_EXCEPTION]++;
	natt_tx(w, w->port[p].tap, m);
}

void
natt_host_in(struct natt_worker *w, uint16_t p, struct rte_mbuf *m, unsigned int reason)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	bool tap = w->port[p].tap != UINT16_MAX && w->exception.rate != 0;

	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		struct rte_arp_hdr *a = (struct rte_arp_hdr *)(uintptr_t)arp_parse(m);

		if (a == NULL) {
			natt_drop(w, m, NATT_DROP_MALFORMED);
			return;
		}
		arp_snoop(w, p, a);
		if (!tap && arp_reply(w, p, m, a))
			return;
	}
	if (tap)
		punt(w, p, m);
	else
		natt_drop(w, m, reason);
}

/* What the host sent on port p's TAP leaves port p as it is. */
static void
tap_rx(struct natt_worker *w, uint16_t p)
{
	struct rte_mbuf *pkts[NATT_MAX_BURST];
	uint16_t tap = w->port[p].tap, n;
	uint64_t bytes = 0;

	n = rte_eth_rx_burst(tap, w->queue, pkts, NATT_MAX_BURST);
	if (n == 0)
		return;
	for (uint16_t i = 0; i < n; i++) {
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
		natt_tx(w, p, pkts[i]);
	}
	w->st->port[tap].rx_packets += n;
	w->st->port[tap].rx_bytes += bytes;
	w->st->counters[NATT_CNT_RX] += n;
	w->st->counters[NATT_CNT_RX_BYTES] += bytes;
	w->st->counters[NATT_CNT_HOST_TX] += n;
}

/* ARP who-has next hop of port p, from our address. */
static void
arp_request(struct natt_worker *w, uint16_t p)
{
	static const struct rte_ether_addr bcast = { .addr_bytes = { 0xff, 0xff, 0xff, 0xff,
								     0xff, 0xff } };
	const struct natt_port *pt = &w->port[p];
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *a;
	struct rte_mbuf *m;

	eth = natt_frame_new(w, p, &bcast, RTE_ETHER_TYPE_ARP, sizeof(*a), &m);
	if (eth == NULL)
		return;
	a = (struct rte_arp_hdr *)(eth + 1);
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = RTE_ETHER_ADDR_LEN;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	a->arp_data.arp_sha = pt->mac;
	a->arp_data.arp_sip = pt->addr;
	memset(&a->arp_data.arp_tha, 0, sizeof(a->arp_data.arp_tha));
	a->arp_data.arp_tip = pt->next_hop_ip;
	w->st->counters[NATT_CNT_ARP_REQUESTS]++;
	natt_tx(w, p, m);
}

/* Once a millisecond: pick up next-hop MACs others resolved; worker 0 asks. */
static void
neigh_poll(struct natt_worker *w)
{
	for (uint16_t p = 0; p < w->n_ports; p++) {
		struct natt_port *pt = &w->port[p];
		uint64_t mac;

		if (pt->role == NATT_ROLE_NONE || pt->next_hop_ip == 0)
			continue;
		mac = natt_neigh_mac(&w->hdr->neigh[p]);
		if (mac != 0 && w->hdr->neigh[p].mac_ip == pt->next_hop_ip) {
			mac_unpack(mac, &pt->next_hop);
			pt->resolved = true;
		}
		if (w->id == 0 && w->now >= pt->arp_next_tsc) {
			arp_request(w, p);
			pt->arp_next_tsc = w->now +
				(pt->resolved ? ARP_REFRESH_S : ARP_RETRY_S) * w->tsc_hz;
		}
	}
}

void
natt_host_poll(struct natt_worker *w)
{
	if (w->now >= w->tap_poll_tsc && w->n_taps != 0) {
		w->tap_poll_tsc = w->now + w->tsc_hz / (1000000 / TAP_POLL_US);
		for (uint16_t p = 0; p < w->n_ports; p++)
			if (w->port[p].tap != UINT16_MAX && w->port[p].role != NATT_ROLE_NONE)
				tap_rx(w, p);
	}
	if (w->now >= w->neigh_poll_tsc) {
		w->neigh_poll_tsc = w->now + w->tsc_hz / 1000;
		neigh_poll(w);
		natt_peer_upd_drain(w);
	}
}
