/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * esp_out.c - outbound: clear IPv4 from the inside port to ESP-in-UDP/4500
 * (RFC 3948) with AES-GCM (RFC 4106), tunnel mode, one burst at a time:
 *
 *   1. check every inner IPv4 header, route all destinations in one LPM bulk
 *      lookup, hand packets of tunnels another worker owns to that worker,
 *      apply policy, TTL and MTU (ICMP back, or fragments), then take a
 *      sequence number, clamp the MSS and build headers and trailer around
 *      the packet in place, one crypto op per packet;
 *   2. encrypt the whole burst (crypto.c); the ICVs land in the packets;
 *   3. count and send.
 *
 * A packet cut into fragments (DF clear, too big) is replaced in phase 1 by
 * its fragments, in order, so a flow keeps its order on the wire.
 * Every packet leaves through natt_tx() or natt_drop() with one reason.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "esp.h"
#include <rte_fib.h>
#include "ipv4.h"
#include "sa.h"
#include "worker.h"

/* Bytes encapsulation puts in front of the inner IPv4 packet (it replaces
 * the inner Ethernet header) and after it (trailer without padding, ICV). */
#define OUT_HDR_LEN (RTE_ETHER_HDR_LEN + IPV4_HLEN_MIN + ESP_UDP_CT_OFF)
#define OUT_PUSH (OUT_HDR_LEN - RTE_ETHER_HDR_LEN)
#define ICMP_HLEN 8
#define ICMP_MAX_LEN 576        /* RFC 1812 4.3.2.3: error datagram size cap */

/* Phase 1a: check the inner IPv4 packets; the good ones go to w->esp_m[]
 * with their destination in w->dst_ip[] and length in w->in_len[]. Returns
 * how many. */
static unsigned int
outb_classify(struct natt_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	uint32_t local = w->port[w->inside].addr;
	unsigned int k = 0;

	for (uint16_t i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
		uint32_t len = rte_pktmbuf_data_len(m);
		uint16_t tot;

		if (unlikely(m->nb_segs != 1 ||
			     (len >= RTE_ETHER_HDR_LEN &&
			      eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)))) {
			if (m->nb_segs == 1 &&
			    eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
				natt_host_in(w, w->inside, m, NATT_DROP_UNSUPPORTED);
			else
				natt_drop(w, m, NATT_DROP_UNSUPPORTED);
			continue;
		}
		if (unlikely(len < RTE_ETHER_HDR_LEN ||
			     (tot = natt_ipv4_check(ip, len - RTE_ETHER_HDR_LEN)) == 0)) {
			natt_drop(w, m, NATT_DROP_MALFORMED);
			continue;
		}
		if (unlikely(ip->dst_addr == local)) {  /* ping or ssh to the gateway */
			natt_host_in(w, w->inside, m, NATT_DROP_NO_ROUTE);
			continue;
		}
		/* Ethernet padding of short frames is not part of the packet */
		if (len > RTE_ETHER_HDR_LEN + (uint32_t)tot)
			rte_pktmbuf_trim(m, (uint16_t)(len - RTE_ETHER_HDR_LEN - tot));
		w->esp_m[k] = m;
		w->dst_ip[k] = rte_be_to_cpu_32(ip->dst_addr);
		w->in_len[k] = tot;
		k++;
	}
	return k;
}

/* RFC 1122 3.2.2, RFC 1812 4.3.2.7: no ICMP error about a non-first
 * fragment, an ICMP error, or to a source that is not one host. */
static bool
icmp_eligible(const struct rte_ipv4_hdr *ip, uint16_t tot)
{
	uint32_t src = rte_be_to_cpu_32(ip->src_addr);
	uint32_t ihl = (ip->version_ihl & 0xf) * 4u;

	if ((ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK)) != 0 ||
	    src == 0 || (src >> 24) == 127 || src >= 0xe0000000u)
		return false;
	if (ip->next_proto_id == IPPROTO_ICMP && tot > ihl) {
		uint8_t type = ((const uint8_t *)ip)[ihl];

		if (type == 3 || type == 4 || type == 5 || type == 11 || type == 12)
			return false;
	}
	return true;
}

/* ICMP destination unreachable, fragmentation needed (RFC 1191), with the
 * largest inner packet that fits, back to the inner source on the inside. */
static void
icmp_frag_needed(struct natt_worker *w, const struct rte_ipv4_hdr *ip, uint16_t tot)
{
	const struct natt_port *in = &w->port[w->inside];
	uint16_t quote = RTE_MIN(tot, (uint16_t)(ICMP_MAX_LEN - IPV4_HLEN_MIN - ICMP_HLEN));
	struct rte_ether_hdr *eth;
	struct rte_icmp_hdr *ic;
	struct rte_mbuf *m;

	if (!icmp_eligible(ip, tot) || !in->resolved) {
		w->st->counters[NATT_CNT_ICMP_SUPPRESSED]++;
		return;
	}
	if (!natt_rate_ok(w, &w->icmp)) {
		w->st->counters[NATT_CNT_ICMP_LIMITED]++;
		return;
	}
	eth = natt_frame_new(w, w->inside, NULL, RTE_ETHER_TYPE_IPV4,
			     IPV4_HLEN_MIN + ICMP_HLEN + quote, &m);
	if (eth == NULL) {
		w->st->counters[NATT_CNT_ICMP_SUPPRESSED]++;
		return;
	}
	ic = natt_ipv4_new(w, (struct rte_ipv4_hdr *)(eth + 1), IPPROTO_ICMP, in->addr,
			   ip->src_addr, IPV4_HLEN_MIN + ICMP_HLEN + quote);
	ic->icmp_type = 3;                      /* destination unreachable */
	ic->icmp_code = 4;                      /* fragmentation needed and DF set */
	ic->icmp_cksum = 0;
	ic->icmp_ident = 0;                     /* unused */
	ic->icmp_seq_nb = rte_cpu_to_be_16(w->inner_mtu); /* next-hop MTU */
	memcpy(ic + 1, ip, quote);
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, ICMP_HLEN + quote);
	w->st->counters[NATT_CNT_ICMP_TOO_BIG]++;
	natt_tx(w, w->inside, m);
}

/* The header of the second and later fragments: options whose copied flag
 * is set (RFC 791), padded to 32 bits. Returns its length. */
static uint32_t
frag_header(const struct rte_ipv4_hdr *ip, uint32_t ihl, uint8_t *h)
{
	const uint8_t *o = (const uint8_t *)ip + IPV4_HLEN_MIN, *end = (const uint8_t *)ip + ihl;
	uint32_t len = IPV4_HLEN_MIN;

	memcpy(h, ip, IPV4_HLEN_MIN);
	while (o < end && o[0] != 0) {
		uint32_t ol = o[0] == 1 ? 1 : (end - o >= 2 ? o[1] : 0);

		if (ol == 0 || (o[0] != 1 && ol < 2) || ol > (uint32_t)(end - o))
			break;
		if (o[0] & 0x80) {
			memcpy(h + len, o, ol);
			len += ol;
		}
		o += ol;
	}
	while (len & 3)
		h[len++] = 0;                   /* end of options */
	h[0] = (uint8_t)(0x40 | len / 4);
	return len;
}

/* DF clear and too big: cut the inner packet into at most max fragments
 * that fit (RFC 791; an inner fragment is cut further, keeping its offset
 * and MF) into f[]. Returns how many; 0 if that failed (m is then dropped
 * as no_buffer). Consumes m either way. */
static unsigned int
outb_fragment(struct natt_worker *w, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
	      uint16_t tot, struct rte_mbuf **f, unsigned int max)
{
	const uint8_t *eth = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t ihl = (ip->version_ihl & 0xf) * 4u;
	uint16_t fo = rte_be_to_cpu_16(ip->fragment_offset);
	uint32_t base = (uint32_t)(fo & RTE_IPV4_HDR_OFFSET_MASK) * 8;
	const uint8_t *pay = (const uint8_t *)ip + ihl;
	uint32_t plen = tot - ihl, off = 0;
	unsigned int nf = 0;
	uint8_t h2[60];
	uint32_t ihl2 = frag_header(ip, ihl, h2);

	while (off < plen) {
		const uint8_t *h = nf == 0 ? (const uint8_t *)ip : h2;
		uint32_t hl = nf == 0 ? ihl : ihl2;
		uint32_t chunk = RTE_MIN(plen - off, (w->inner_mtu - hl) & ~7u);
		bool more = off + chunk < plen || (fo & RTE_IPV4_HDR_MF_FLAG);
		struct rte_ipv4_hdr *fh;
		uint8_t *d;

		if (chunk == 0 || nf == max || (f[nf] = rte_pktmbuf_alloc(w->pool)) == NULL)
			goto fail;
		d = (uint8_t *)rte_pktmbuf_append(f[nf++], (uint16_t)(RTE_ETHER_HDR_LEN + hl + chunk));
		if (d == NULL)
			goto fail;
		memcpy(d, eth, RTE_ETHER_HDR_LEN);
		memcpy(d + RTE_ETHER_HDR_LEN, h, hl);
		memcpy(d + RTE_ETHER_HDR_LEN + hl, pay + off, chunk);
		fh = (struct rte_ipv4_hdr *)(d + RTE_ETHER_HDR_LEN);
		fh->total_length = rte_cpu_to_be_16((uint16_t)(hl + chunk));
		fh->fragment_offset = rte_cpu_to_be_16((uint16_t)(((base + off) >> 3) |
					(more ? RTE_IPV4_HDR_MF_FLAG : 0)));
		fh->hdr_checksum = 0;
		fh->hdr_checksum = rte_ipv4_cksum(fh);
		f[nf - 1]->port = m->port;
		off += chunk;
	}
	w->st->counters[NATT_CNT_FRAGMENTS] += nf;
	w->st->counters[NATT_CNT_FRAGMENTED]++;
	rte_pktmbuf_free(m);
	return nf;
fail:
	while (nf > 0)
		rte_pktmbuf_free(f[--nf]);
	natt_drop(w, m, NATT_DROP_NO_BUFFER);
	return 0;
}

/* Next sequence number of an outbound SA. RFC 4303 3.3.3: the counter never
 * cycles; at its end the SA stops (one event) until a rekey replaces it. */
static inline bool
seq_next(struct natt_worker *w, struct natt_sa *sa, uint64_t *sqn)
{
	if (unlikely(sa->seq == (sa->esn ? UINT64_MAX : UINT32_MAX))) {
		if (!sa->seq_exhausted) {
			sa->seq_exhausted = 1;
			natt_evt_send(w, NATT_EVT_SEQ_EXHAUSTED, 0, 0, sa->spi, sa->tunnel_id);
		}
		return false;
	}
	*sqn = ++sa->seq;
	return true;
}

/* Phase 1 for one packet that will be sent: build ESP-in-UDP around the
 * inner packet in place (nothing is encrypted yet) and fill its crypto op. */
static inline void
outb_encap(struct natt_worker *w, struct rte_mbuf *m, const struct natt_sa *sa,
	   struct rte_ipv4_hdr *ip, uint16_t tot, uint32_t ct_len, uint64_t sqn,
	   struct natt_gcm_op *op)
{
	const struct natt_port *out = &w->port[w->outside];
	uint32_t pad = ct_len - tot - ESP_TRAILER_LEN;
	uint8_t *t = (uint8_t *)ip + tot;
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *oip;
	struct rte_udp_hdr *udp;
	rte_be16_t df;
	uint8_t *esp;
	uint64_t iv = rte_cpu_to_be_64(sqn);
	uint16_t olen = (uint16_t)(IPV4_HLEN_MIN + ESP_UDP_CT_OFF + ct_len + ESP_GCM_ICV_LEN);
	uint16_t id = natt_next_ip_id(w);
	uint32_t v, sum;

	df = w->df_mode == NATT_DF_COPY ?
		ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG) :
		w->df_mode == NATT_DF_SET ? rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG) : 0;
	natt_mss_apply(w, ip, tot);
	natt_ttl_decrement(ip);

	/* trailer: padding 1, 2, 3, ... (RFC 4303 2.4), pad length, next header */
	rte_pktmbuf_append(m, (uint16_t)(ct_len - tot + ESP_GCM_ICV_LEN));
	for (uint32_t i = 0; i < pad; i++)
		t[i] = (uint8_t)(i + 1);
	t[pad] = (uint8_t)pad;
	t[pad + 1] = IPPROTO_IPIP_;

	eth = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, OUT_PUSH);
	eth->dst_addr = out->next_hop;
	eth->src_addr = out->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	oip = (struct rte_ipv4_hdr *)(eth + 1);
	oip->version_ihl = RTE_IPV4_VHL_DEF;
	oip->type_of_service = ip->type_of_service;  /* DSCP and ECN: RFC 4301 5.1.2.1, RFC 6040 */
	oip->total_length = rte_cpu_to_be_16(olen);
	oip->packet_id = rte_cpu_to_be_16(id);
	oip->fragment_offset = df;
	oip->time_to_live = NATT_OUTER_TTL;
	oip->next_proto_id = IPPROTO_UDP;
	oip->src_addr = sa->local_addr;
	oip->dst_addr = sa->remote_addr;
	/* header checksum: the SA's constant words are summed at install */
	sum = sa->outer_sum + (uint32_t)(RTE_IPV4_VHL_DEF << 8 | ip->type_of_service) +
	      olen + id + rte_be_to_cpu_16(df);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	oip->hdr_checksum = rte_cpu_to_be_16((uint16_t)~sum);
	udp = (struct rte_udp_hdr *)(oip + 1);
	udp->src_port = sa->local_port;
	udp->dst_port = sa->remote_port;
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(ESP_UDP_CT_OFF + ct_len + ESP_GCM_ICV_LEN));
	udp->dgram_cksum = 0;                  /* RFC 3948 2.1 */
	esp = (uint8_t *)(udp + 1);
	v = rte_cpu_to_be_32(sa->spi);
	memcpy(esp, &v, 4);
	v = rte_cpu_to_be_32((uint32_t)sqn);
	memcpy(esp + 4, &v, 4);
	/* RFC 4106 3.1: the IV must never repeat under a key; the 64-bit
	 * sequence number never does (seq_next). */
	memcpy(esp + ESP_HDR_LEN, &iv, ESP_GCM_IV_LEN);
	natt_esp_op(op, sa, esp, ct_len, sqn);
}

/* Phase 1 for one packet that fits: room, sequence number, build; it
 * becomes op number *nops. */
static inline void
outb_seal_one(struct natt_worker *w, struct rte_mbuf *m, struct natt_sa *sa,
	      struct rte_ipv4_hdr *ip, uint16_t tot, unsigned int *nops)
{
	uint32_t ct_len = RTE_ALIGN_CEIL((uint32_t)tot + ESP_TRAILER_LEN, 4);
	uint64_t sqn;

	if (unlikely(rte_pktmbuf_headroom(m) < OUT_PUSH ||
		     rte_pktmbuf_tailroom(m) < ct_len - tot + ESP_GCM_ICV_LEN)) {
		natt_drop(w, m, NATT_DROP_NO_BUFFER);
		return;
	}
	if (unlikely(!seq_next(w, sa, &sqn))) {
		natt_drop(w, m, NATT_DROP_SEQ_OVERFLOW);
		return;
	}
	outb_encap(w, m, sa, ip, tot, ct_len, sqn, &w->ops[*nops]);
	w->op_sa[*nops] = sa;
	w->op_m[*nops] = m;
	w->op_len[*nops] = tot;
	(*nops)++;
}

/* Phase 1 for a packet too big for the tunnel: ICMP back if DF is set,
 * else its fragments take its place, in order. */
static void
outb_too_big(struct natt_worker *w, struct rte_mbuf *m, struct natt_sa *sa,
	     struct rte_ipv4_hdr *ip, uint16_t tot, unsigned int *nops)
{
	struct rte_mbuf *f[NATT_FRAG_MAX];
	unsigned int nf;

	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG)) {
		icmp_frag_needed(w, ip, tot);
		sa->stats->too_big++;
		natt_drop(w, m, NATT_DROP_TOO_BIG);
		return;
	}
	sa->stats->fragmented++;
	nf = outb_fragment(w, m, ip, tot, f, RTE_MIN((unsigned int)NATT_FRAG_MAX,
						     NATT_MAX_OPS - *nops));
	for (unsigned int i = 0; i < nf; i++) {
		struct rte_ipv4_hdr *fi = rte_pktmbuf_mtod_offset(f[i], struct rte_ipv4_hdr *,
								  RTE_ETHER_HDR_LEN);

		outb_seal_one(w, f[i], sa, fi, rte_be_to_cpu_16(fi->total_length), nops);
	}
}

/* Phase 1b: route, hand off, policy, TTL, MTU, then seal one op per packet
 * (or per fragment). Returns the number of ops prepared in w->ops[]. */
static unsigned int
outb_prepare(struct natt_worker *w, unsigned int k)
{
	unsigned int nops = 0;

	if (unlikely(!w->port[w->outside].resolved)) {
		for (unsigned int j = 0; j < k; j++)
			natt_drop(w, w->esp_m[j], NATT_DROP_NO_NEIGHBOR);
		return 0;
	}
	rte_fib_lookup_bulk(w->fib, w->dst_ip, w->next_hop, (int)k);
	/* tunnel ids, then their slots, counters and SAs asked for a burst
	 * ahead (many tunnels: overlap the cache misses, see natt_sa_prefetch) */
	for (unsigned int j = 0; j < k; j++) {
		uint64_t tid = w->next_hop[j] != NATT_FIB_NONE ? w->next_hop[j] : w->default_route;

		w->next_hop[j] = tid;
		if (tid < w->max_tunnels) {
			rte_prefetch0(&w->out[tid]);
			rte_prefetch0(natt_stats_tunnel(w->hdr, (uint32_t)tid));
		}
	}
	for (unsigned int j = 0; j < k; j++) {
		const struct natt_out_slot *o;

		if (w->next_hop[j] >= w->max_tunnels)
			continue;
		o = &w->out[w->next_hop[j]];
		if (o->sa != NULL && !natt_sa_is_remote(o->sa))
			natt_sa_prefetch(o->sa, o->aes256, w->in_len[j] + ESP_TRAILER_LEN,
					 w->gcm_vaes);
	}
	for (unsigned int j = 0; j < k; j++) {
		struct rte_mbuf *m = w->esp_m[j];
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *,
								  RTE_ETHER_HDR_LEN);
		uint32_t tid = (uint32_t)w->next_hop[j];
		struct natt_sa *sa;
		uint16_t tot;
		void *v;

		if (unlikely(tid >= w->max_tunnels || (v = w->out[tid].sa) == NULL)) {
			natt_drop(w, m, NATT_DROP_NO_ROUTE);
			continue;
		}
		if (unlikely(natt_sa_is_remote(v))) {
			natt_handoff(w, m, natt_sa_remote_owner(v));
			continue;
		}
		sa = v;
		if (unlikely(!natt_sa_ts_match(sa, ip->src_addr))) {
			sa->stats->policy++;
			natt_drop(w, m, NATT_DROP_POLICY);
			continue;
		}
		if (unlikely(ip->time_to_live <= 1)) {
			natt_drop(w, m, NATT_DROP_TTL_EXPIRED);
			continue;
		}
		tot = rte_be_to_cpu_16(ip->total_length);
		if (unlikely(tot > w->inner_mtu))
			outb_too_big(w, m, sa, ip, tot, &nops);
		else
			outb_seal_one(w, m, sa, ip, tot, &nops);
	}
	return nops;
}

static inline void
outb_count(struct natt_worker *w, struct natt_sa *sa, uint64_t pkts, uint64_t bytes)
{
	sa->stats->out_packets += pkts;
	sa->stats->out_bytes += bytes;
	sa->stats->last_out_tsc = w->now;
}

/* Phase 3: count per tunnel (one write per run of the same SA) and send. */
static void
outb_finish(struct natt_worker *w, unsigned int nops)
{
	struct natt_sa *cur = NULL;
	uint64_t pkts = 0, bytes = 0;

	for (unsigned int i = 0; i < nops; i++) {
		if (w->op_sa[i] != cur) {
			if (cur != NULL)
				outb_count(w, cur, pkts, bytes);
			cur = w->op_sa[i];
			pkts = bytes = 0;
		}
		pkts++;
		bytes += w->op_len[i];
		natt_tx(w, w->outside, w->op_m[i]);
	}
	if (cur != NULL)
		outb_count(w, cur, pkts, bytes);
	w->st->counters[NATT_CNT_ENCRYPTED] += nops;
}

void
natt_outbound(struct natt_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	unsigned int k, nops;

	if (unlikely(w->outside == UINT16_MAX)) {
		for (uint16_t i = 0; i < n; i++)
			natt_drop(w, pkts[i], NATT_DROP_NO_ROUTE);
		return;
	}
	k = outb_classify(w, pkts, n);
	nops = k != 0 ? outb_prepare(w, k) : 0;
	if (nops != 0) {
		natt_gcm_seal_burst(w->mgr, w->ops, nops);
		outb_finish(w, nops);
	}
}
