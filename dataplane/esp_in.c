/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * esp_in.c - inbound ESP-in-UDP (RFC 3948) with AES-GCM (RFC 4106), tunnel
 * mode, one burst at a time in three phases:
 *
 *   1. classify every frame, look the SPIs up (spi_table.h), hand packets
 *      of SAs another worker owns to that worker, pre-check replay, and fill
 *      one crypto op per packet;
 *   2. decrypt the whole burst (crypto.c);
 *   3. verify each ICV, only then move the replay window, check the trailer,
 *      the inner header and the selectors, and forward.
 *
 * Every packet leaves through natt_tx() or natt_drop() with one reason.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include "esp.h"
#include "ipv4.h"
#include "sa.h"
#include "spi_table.h"
#include "worker.h"

/* Phase 1a: classify the burst; ESP frames go to w->esp_m[]/w->meta[], the
 * rest are dropped or consumed with their reason. Returns the ESP count. */
static unsigned int
inb_classify(struct natt_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	uint32_t local = w->port[w->outside].addr;
	unsigned int k = 0;

	/* the headers were just written by the NIC/PMD; ask for all of them
	 * before parsing the first (one stall per burst, not per packet) */
	for (uint16_t i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		unsigned int r;

		if (unlikely(m->nb_segs != 1)) {
			natt_drop(w, m, NATT_DROP_UNSUPPORTED);
			continue;
		}
		r = natt_classify(rte_pktmbuf_mtod(m, const uint8_t *),
				  rte_pktmbuf_data_len(m), local, &w->meta[k]);
		if (r != NATT_CLASS_ESP) {
			if (r == NATT_DROP_KEEPALIVE)
				natt_keepalive_in(w, m, w->meta[k].src_addr, w->meta[k].src_port);
			else if ((r == NATT_DROP_IKE || r == NATT_DROP_NOT_ESP ||
				  r == NATT_DROP_FRAGMENT) && natt_host_bound(m, local))
				natt_host_in(w, w->outside, m, r);  /* the gateway's own */
			else
				natt_drop(w, m, r);
			continue;
		}
		w->esp_m[k] = m;
		/* its SA's bucket, asked for while the rest is classified */
		w->spi_home[k] = natt_spi_home(w->sa_in, w->meta[k].spi);
		natt_spi_prefetch(w->sa_in, w->spi_home[k]);
		k++;
	}
	return k;
}

/* Phase 1b: look the SPIs up, hand off, pre-check replay, crypto ops.
 * Returns the number of ops prepared in w->ops[]. */
static unsigned int
inb_prepare(struct natt_worker *w, unsigned int k)
{
	unsigned int nops = 0;

	/* every SA of the burst and its tunnel's counters asked for before
	 * the first is used: with many tunnels the misses overlap.
	 * The bucket gives the tunnel id, so the counters need not wait for
	 * the SA. */
	for (unsigned int j = 0; j < k; j++) {
		uint32_t tid;
		void *v = natt_spi_find(w->sa_in, w->meta[j].spi, w->spi_home[j], &tid);

		w->sa_v[j] = v;
		if (v != NULL && !natt_sa_is_remote(v)) {
			natt_sa_prefetch(v, tid & NATT_SA_AUX_AES256,
					 w->meta[j].esp_len - ESP_HDR_LEN - ESP_GCM_IV_LEN -
					 ESP_GCM_ICV_LEN, w->gcm_vaes);
			rte_prefetch0(natt_stats_tunnel(w->hdr, tid & NATT_SA_AUX_TUNNEL));
		}
	}
	for (unsigned int j = 0; j < k; j++) {
		struct rte_mbuf *m = w->esp_m[j];
		const struct natt_esp_meta *md = &w->meta[j];
		struct natt_sa *sa;
		uint64_t sqn;

		if (unlikely(w->sa_v[j] == NULL)) {
			natt_drop(w, m, NATT_DROP_NO_SA);
			continue;
		}
		if (unlikely(natt_sa_is_remote(w->sa_v[j]))) {
			natt_handoff(w, m, natt_sa_remote_owner(w->sa_v[j]));
			continue;
		}
		sa = w->sa_v[j];
		if (unlikely(replay_check(&sa->rw, sa->bmp, md->seq, &sqn) != REPLAY_OK)) {
			sa->stats->replay++;
			natt_drop(w, m, NATT_DROP_REPLAY);
			continue;
		}
		if (sa->rw.size != 0)   /* the bucket replay_update() will set */
			rte_prefetch0(&sa->bmp[(sqn >> REPLAY_BUCKET_SHIFT) & sa->rw.nb_mask]);
		natt_esp_op(&w->ops[nops], sa,
			    rte_pktmbuf_mtod_offset(m, uint8_t *, md->esp_off),
			    md->esp_len - ESP_HDR_LEN - ESP_GCM_IV_LEN - ESP_GCM_ICV_LEN,
			    sqn);
		w->op_sa[nops] = sa;
		w->op_m[nops] = m;
		w->op_sqn[nops] = sqn;
		w->op_peer_addr[nops] = md->src_addr;
		w->op_peer_port[nops] = md->src_port;
		nops++;
	}
	return nops;
}

/*
 * RFC 4303 2.4: padding bytes are 1, 2, 3, ... and must be checked. Returns
 * the inner packet length (without padding and trailer) or -1.
 */
static inline int
trailer_check(const uint8_t *pt, uint32_t len, uint8_t *next_hdr)
{
	uint8_t pad_len = pt[len - 2];

	*next_hdr = pt[len - 1];
	if (unlikely((uint32_t)pad_len + ESP_TRAILER_LEN > len))
		return -1;
	for (unsigned int i = 0; i < pad_len; i++)
		if (unlikely(pt[len - ESP_TRAILER_LEN - pad_len + i] != i + 1))
			return -1;
	return (int)(len - ESP_TRAILER_LEN - pad_len);
}

/* Good-path counters of the SA the last packets hit, flushed when the SA
 * changes and at the end of the burst (one write per run, not per packet). */
struct sa_acc {
	struct natt_sa *sa;
	uint64_t pkts;
	uint64_t bytes;
};

static inline void
acc_flush(struct natt_worker *w, struct sa_acc *a)
{
	if (a->pkts == 0)
		return;
	a->sa->stats->in_packets += a->pkts;
	a->sa->stats->in_bytes += a->bytes;
	a->sa->stats->last_seen_tsc = w->now;
	a->pkts = a->bytes = 0;
}

static inline void
acc_add(struct natt_worker *w, struct sa_acc *a, struct natt_sa *sa, uint16_t bytes)
{
	if (unlikely(a->sa != sa)) {
		acc_flush(w, a);
		a->sa = sa;
	}
	a->pkts++;
	a->bytes += bytes;
}

/* Phase 3 for one authenticated packet: decapsulate and forward. */
static inline void
inb_deliver(struct natt_worker *w, struct rte_mbuf *m, struct natt_sa *sa,
	    const struct natt_gcm_op *op, struct sa_acc *acc)
{
	struct natt_port *in = &w->port[w->inside];
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)op->data;
	struct rte_ether_hdr *eth;
	uint8_t nh;
	int plen = trailer_check(op->data, op->len, &nh);
	uint16_t tot;

	if (unlikely(plen < 0)) {
		sa->stats->bad_trailer++;
		natt_drop(w, m, NATT_DROP_BAD_PADDING);
		return;
	}
	if (unlikely(nh != IPPROTO_IPIP_)) {
		if (nh != IPPROTO_IPV6_)
			sa->stats->bad_trailer++;
		natt_drop(w, m, nh == IPPROTO_IPV6_ ? NATT_DROP_UNSUPPORTED
						   : NATT_DROP_BAD_INNER);
		return;
	}
	tot = natt_ipv4_check(ip, (uint32_t)plen);
	if (unlikely(tot == 0)) {
		sa->stats->bad_trailer++;
		natt_drop(w, m, NATT_DROP_BAD_INNER);
		return;
	}
	if (unlikely(!natt_sa_ts_match(sa, ip->src_addr))) {
		sa->stats->policy++;
		natt_drop(w, m, NATT_DROP_POLICY);
		return;
	}
	if (unlikely(ip->time_to_live <= 1)) {
		natt_drop(w, m, NATT_DROP_TTL_EXPIRED);
		return;
	}
	if (unlikely(!in->resolved)) {
		natt_drop(w, m, NATT_DROP_NO_NEIGHBOR);
		return;
	}
	natt_ttl_decrement(ip);
	natt_mss_apply(w, ip, tot);

	/* Strip outer headers and IV, keep room for a new Ethernet header,
	 * cut trailer, TFC padding and ICV. */
	rte_pktmbuf_adj(m, (uint16_t)(op->data - rte_pktmbuf_mtod(m, uint8_t *) -
				      RTE_ETHER_HDR_LEN));
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_data_len(m) -
				       RTE_ETHER_HDR_LEN - tot));
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	eth->dst_addr = in->next_hop;
	eth->src_addr = in->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

	acc_add(w, acc, sa, tot);
	natt_tx(w, w->inside, m);
}

/* Phase 3: ICV, replay update, then deliver. */
static void
inb_finish(struct natt_worker *w, unsigned int nops)
{
	struct sa_acc acc = { .sa = NULL, .pkts = 0, .bytes = 0 };
	uint64_t authentic = 0;

	for (unsigned int i = 0; i < nops; i++) {
		const struct natt_gcm_op *op = &w->ops[i];
		struct natt_sa *sa = w->op_sa[i];
		struct rte_mbuf *m = w->op_m[i];

		if (unlikely(!natt_icv_equal(op->tag, op->data + op->len))) {
			sa->stats->auth_failed++;
			natt_drop(w, m, NATT_DROP_AUTH_FAILED);
			continue;
		}
		authentic++;
		/* RFC 4303 3.4.3: the window moves only for authenticated packets;
		 * a copy earlier in this burst may have taken the number. */
		if (unlikely(replay_update(&sa->rw, sa->bmp, w->op_sqn[i]) != REPLAY_OK)) {
			sa->stats->replay++;
			natt_drop(w, m, NATT_DROP_REPLAY);
			continue;
		}
		/* A NAT mapping moves only for an authenticated, fresh packet that
		 * is also the newest (RFC 7296 2.23 asks the same of IKE): a
		 * reordered packet from the old mapping cannot move it back. */
		if (unlikely((w->op_peer_addr[i] != sa->remote_addr ||
			      w->op_peer_port[i] != sa->remote_port) &&
			     w->op_sqn[i] == sa->rw.top))
			natt_nat_mapping_seen(w, sa, w->op_peer_addr[i], w->op_peer_port[i]);
		inb_deliver(w, m, sa, op, &acc);
	}
	acc_flush(w, &acc);
	w->st->counters[NATT_CNT_DECRYPTED] += authentic;  /* ICV verified */
}

void
natt_inbound(struct natt_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	unsigned int k, nops;

	if (unlikely(w->inside == UINT16_MAX)) {
		for (uint16_t i = 0; i < n; i++)
			natt_drop(w, pkts[i], NATT_DROP_NO_ROUTE);
		return;
	}
	k = inb_classify(w, pkts, n);
	if (k == 0)
		return;
	nops = inb_prepare(w, k);
	if (nops == 0)
		return;
	natt_gcm_open_burst(w->mgr, w->ops, nops);
	inb_finish(w, nops);
}
