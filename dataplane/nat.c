/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nat.c - what NAT traversal asks of the dataplane besides ESP (RFC 3948):
 *
 *   - NAT keepalives from peers (one octet 0xFF, section 2.3) carry no SPI:
 *     the peer table (sa_table.c) finds their tunnel by outer addr:port, and
 *     they count as inbound activity for idle detection;
 *   - keepalives to peers whose tunnel asks for them (keepalive_s), when
 *     nothing else went out for that long, so the peer's NAT keeps the
 *     mapping our packets need;
 *   - the peer's NAT mapping moving: only an authenticated packet may move
 *     it (natt_nat_mapping_seen is called after the ICV and the replay
 *     window said yes), and only the newest one, so a reordered packet from
 *     the old mapping cannot move it back.
 *
 * All of it runs on the tunnel's owner, which alone writes its counters.
 */
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_udp.h>

#include "esp.h"
#include "sa.h"
#include "worker.h"

/* A keepalive for our tunnel tid: it is alive. */
static void
keepalive_count(struct natt_worker *w, uint32_t tid)
{
	struct natt_tunnel_stats *t = natt_stats_tunnel(w->hdr, tid);

	if (t->in_spi == 0 || t->owner != w->id)
		return;                 /* gone, or not ours (any more) */
	t->keepalives++;
	t->last_keepalive_tsc = w->now;
	w->st->counters[NATT_CNT_KEEPALIVES_IN]++;
}

static void
peer_post(struct natt_worker *w, uint16_t to, struct natt_peer_upd *u)
{
	/* a full ring costs that worker one keepalive or one move */
	if (w->peer_upd_of != NULL && to < w->n_workers && to != w->id)
		rte_ring_mp_enqueue_elem(w->peer_upd_of[to], u, sizeof(*u));
}

void
natt_keepalive_in(struct natt_worker *w, struct rte_mbuf *m, uint32_t addr, uint16_t port)
{
	uint32_t tid = natt_peer_first(w, addr, port);

	/* every tunnel seen at that mapping: the CHILD SAs of one IKE SA share
	 * it; their counters are their owners' to write */
	for (unsigned int n = 0; tid != NATT_PEER_NONE && n < NATT_KA_FANOUT; n++) {
		if (w->peer_own[tid] == w->id) {
			keepalive_count(w, tid);
		} else {
			struct natt_peer_upd u = { .tunnel_id = tid, .kind = NATT_PEER_KEEPALIVE };

			peer_post(w, w->peer_own[tid], &u);
		}
		tid = w->peer_next[tid];
	}
	natt_drop(w, m, NATT_DROP_KEEPALIVE);           /* consumed */
}

/* Tell the other workers where tunnel tid is seen now. */
void
natt_peer_upd_post(struct natt_worker *w, uint32_t tid, uint32_t addr, uint16_t port)
{
	struct natt_peer_upd u = { .tunnel_id = tid, .addr = addr, .port = port,
				   .owner = w->id, .kind = NATT_PEER_MOVED };

	for (uint16_t k = 0; k < w->n_workers; k++)
		peer_post(w, k, &u);
}

void
natt_peer_upd_drain(struct natt_worker *w)
{
	struct natt_peer_upd u;

	if (w->peer_upd == NULL)
		return;
	for (unsigned int n = 0; n < 256; n++) {
		if (rte_ring_sc_dequeue_elem(w->peer_upd, &u, sizeof(u)) != 0)
			break;
		if (u.tunnel_id >= w->max_tunnels)
			continue;
		if (u.kind == NATT_PEER_KEEPALIVE)
			keepalive_count(w, u.tunnel_id);
		else
			natt_peer_set(w, u.tunnel_id, u.owner, u.addr, u.port);
	}
}

/* Where an outbound SA sends: move it to addr:port. */
static void
out_sa_follow(struct natt_worker *w, uint32_t tid, uint32_t addr, uint16_t port)
{
	void *v = tid < w->max_tunnels ? w->out[tid].sa : NULL;
	struct natt_sa *o = v;

	if (v == NULL || natt_sa_is_remote(v))
		return;
	o->remote_addr = addr;
	o->remote_port = port;
	natt_sa_outer_sum(o);
}

void
natt_nat_mapping_seen(struct natt_worker *w, struct natt_sa *sa, uint32_t addr, uint16_t port)
{
	struct natt_tunnel_stats *t = sa->stats;
	struct natt_evt e = {
		.type = NATT_EVT_NAT_MAPPING, .spi = sa->spi, .tunnel_id = sa->tunnel_id,
		.addr = addr, .port = port,
	};

	sa->remote_addr = addr;
	sa->remote_port = port;
	if (t->seen_addr == addr && t->seen_port == port)
		return;             /* another SA of the tunnel (a rekey) saw it first */
	t->seen_addr = addr;
	t->seen_port = port;
	natt_peer_set(w, sa->tunnel_id, w->id, addr, port);
	natt_peer_upd_post(w, sa->tunnel_id, addr, port);
	if (t->remote_addr == addr && t->remote_port == port)
		return;             /* back where outbound already goes */
	e.old_addr = t->remote_addr;
	e.old_port = t->remote_port;
	w->st->counters[NATT_CNT_NAT_MAPPING]++;
	if (t->pinned) {
		/* nat_mapping_change = "pin": report, move nothing */
		t->pin_ignored++;
	} else {
		t->prev_remote_addr = t->remote_addr;
		t->prev_remote_port = t->remote_port;
		t->remote_addr = addr;
		t->remote_port = port;
		t->mapping_changes++;
		t->last_mapping_tsc = w->now;
		out_sa_follow(w, sa->tunnel_id, addr, port);
		w->st->counters[NATT_CNT_NAT_FOLLOWED]++;
		e.value = NATT_EVT_MAPPING_FOLLOWED;
	}
	natt_evt_post(w, &e);
}

/* One NAT keepalive from sa's source to its peer's current mapping. */
static void
keepalive_send(struct natt_worker *w, struct natt_sa *sa)
{
	const uint16_t len = IPV4_HLEN_MIN + UDP_HLEN + 1;
	struct rte_ether_hdr *eth;
	struct rte_udp_hdr *udp;
	struct rte_mbuf *m;

	eth = natt_frame_new(w, w->outside, NULL, RTE_ETHER_TYPE_IPV4, len, &m);
	if (eth == NULL)
		return;             /* the next scan tries again */
	udp = natt_ipv4_new(w, (struct rte_ipv4_hdr *)(eth + 1), IPPROTO_UDP, sa->local_addr,
			    sa->remote_addr, len);
	udp->src_port = sa->local_port;
	udp->dst_port = sa->remote_port;
	udp->dgram_len = rte_cpu_to_be_16(UDP_HLEN + 1);
	udp->dgram_cksum = 0;           /* as for ESP-in-UDP, RFC 3948 2.1 */
	*(uint8_t *)(udp + 1) = NATT_KEEPALIVE_BYTE;
	sa->stats->keepalives_sent++;
	sa->stats->last_keepalive_sent_tsc = w->now;
	w->st->counters[NATT_CNT_KEEPALIVES_SENT]++;
	natt_tx(w, w->outside, m);
}

void
natt_keepalive_scan_one(struct natt_worker *w, uint32_t tid, struct natt_tunnel_stats *t)
{
	void *v = w->out[tid].sa;
	struct natt_sa *sa = v;
	uint64_t last;

	if (v == NULL || natt_sa_is_remote(v) || sa->keepalive_s == 0 || sa->seq_exhausted ||
	    !w->port[w->outside].resolved)
		return;
	/* RFC 3948 2.3: only when no other packet kept the mapping alive */
	last = natt_tsc_latest(t->last_out_tsc, t->last_keepalive_sent_tsc, t->created_tsc);
	if (w->now > last && w->now - last >= (uint64_t)sa->keepalive_s * w->tsc_hz)
		keepalive_send(w, sa);
}
