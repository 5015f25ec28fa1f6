/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_outbound.c - the parts of the outbound path that the pcap tests
 * cannot reach or cannot pin down: the end of the sequence counter (2^32
 * packets), MSS clamping at every option alignment, LPM route ownership, the
 * options of later fragments, ICMP rules. References are independent of the
 * code under test: DPDK's full TCP/IPv4 checksum (rte_ipv4_udptcp_cksum,
 * rte_ipv4_cksum) and the RFCs' rules written out here.
 *
 * Usage: test_outbound (EAL in --no-huge mode, no ports).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring_elem.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <openssl/evp.h>

#include "check.h"
#include "esp.h"
#include "ipv4.h"
#include "test_worker.h"

static unsigned int n_pass, n_fail;

static struct rte_mempool *pool;

static uint32_t
ip4(const char *s)
{
	uint32_t a;

	inet_pton(AF_INET, s, &a);
	return a;
}

/* ---- MSS clamping against a full checksum recomputation ---- */

/* IPv4 + TCP SYN with the given option bytes (padded to 4 by the caller). */
static size_t
syn_packet(uint8_t *buf, const uint8_t *opt, size_t optlen, uint8_t flags)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)buf;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	size_t tot = sizeof(*ip) + sizeof(*th) + optlen + 7; /* 7 payload bytes: odd */

	memset(buf, 0, tot);
	ip->version_ihl = 0x45;
	ip->total_length = htons((uint16_t)tot);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = ip4("10.10.1.2");
	ip->dst_addr = ip4("10.50.20.7");
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th->src_port = htons(40000);
	th->dst_port = htons(443);
	th->sent_seq = htonl(0x12345678);
	th->data_off = (uint8_t)(((sizeof(*th) + optlen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = htons(64240);
	memcpy(th + 1, opt, optlen);
	memcpy((uint8_t *)(th + 1) + optlen, "payload", 7);
	th->cksum = 0;
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	return tot;
}

static uint16_t
mss_of(const uint8_t *buf, size_t at)
{
	return (uint16_t)(buf[20 + 20 + at + 2] << 8 | buf[20 + 20 + at + 3]);
}

static void
test_mss(void)
{
	/* MSS option after 0..3 NOPs: value at every alignment (odd ones
	 * straddle two checksum words) */
	for (unsigned int nops = 0; nops < 4; nops++) {
		for (unsigned int v = 0; v < 4; v++) {
			static const uint16_t vals[] = { 1460, 0xffff, 1399, 9000 };
			uint8_t opt[12] = { 0 }, buf[128];
			struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)buf;
			struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
			uint16_t good;
			size_t tot;
			bool r;

			memset(opt, 1, nops);
			opt[nops] = 2;
			opt[nops + 1] = 4;
			opt[nops + 2] = (uint8_t)(vals[v] >> 8);
			opt[nops + 3] = (uint8_t)vals[v];
			tot = syn_packet(buf, opt, 8, RTE_TCP_SYN_FLAG | (v & 1 ? RTE_TCP_ACK_FLAG : 0));
			r = natt_mss_clamp(ip, (uint32_t)tot, 1398);
			CHECK(r && mss_of(buf, nops) == 1398,
			      "MSS %u after %u NOPs: clamped=%d value %u", vals[v], nops, r,
			      mss_of(buf, nops));
			good = th->cksum;
			th->cksum = 0;
			CHECK(rte_ipv4_udptcp_cksum(ip, th) == good,
			      "MSS %u after %u NOPs: incremental checksum 0x%04x, full 0x%04x",
			      vals[v], nops, ntohs(good), ntohs(rte_ipv4_udptcp_cksum(ip, th)));
		}
	}
	{
		uint8_t opt[4] = { 2, 4, 0x05, 0x00 }, buf[128], copy[128]; /* 1280 */
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)buf;
		size_t tot = syn_packet(buf, opt, 4, RTE_TCP_SYN_FLAG);

		memcpy(copy, buf, tot);
		CHECK(!natt_mss_clamp(ip, (uint32_t)tot, 1398) && memcmp(buf, copy, tot) == 0,
		      "an MSS below the clamp is left alone");
		opt[2] = 0x06;
		tot = syn_packet(buf, opt, 4, RTE_TCP_ACK_FLAG);
		memcpy(copy, buf, tot);
		CHECK(!natt_mss_clamp(ip, (uint32_t)tot, 1398) && memcmp(buf, copy, tot) == 0,
		      "not a SYN: untouched");
	}
	{
		/* malformed option lists end the walk without a write */
		static const uint8_t bad[][8] = {
			{ 3, 0, 2, 4, 0xff, 0xff, 0, 0 },  /* length 0 */
			{ 3, 9, 2, 4, 0xff, 0xff, 0, 0 },  /* runs past the header */
			{ 0, 0, 2, 4, 0xff, 0xff, 0, 0 },  /* end of list first */
			{ 1, 1, 1, 1, 1, 1, 1, 2 },        /* kind without length */
		};
		for (unsigned int i = 0; i < RTE_DIM(bad); i++) {
			uint8_t buf[128], copy[128];
			size_t tot = syn_packet(buf, bad[i], 8, RTE_TCP_SYN_FLAG);

			memcpy(copy, buf, tot);
			CHECK(!natt_mss_clamp((struct rte_ipv4_hdr *)buf, (uint32_t)tot, 1398) &&
			      memcmp(buf, copy, tot) == 0, "malformed options #%u untouched", i);
		}
		/* TCP header claims more than the packet has */
		uint8_t opt[4] = { 2, 4, 0xff, 0xff }, buf[128];
		size_t tot = syn_packet(buf, opt, 4, RTE_TCP_SYN_FLAG);

		/* 20 + 24-byte TCP header + payload; one byte short of the header */
		CHECK(!natt_mss_clamp((struct rte_ipv4_hdr *)buf, 20 + 24 - 1, 1398) && tot > 44,
		      "options beyond the packet are not read");
	}
}

/* ---- outbound through a real worker context ---- */

static const uint8_t key128[16] = { 0x4a, 0x87, 0xe3, 0xe8, 0xef, 0xaf, 0x75, 0x04,
				    0x78, 0x11, 0x1a, 0x91, 0x89, 0xda, 0x99, 0xab };

static int
add_tunnel(struct natt_worker *w, uint32_t id, uint32_t spi, bool esn, const char *remote_ts,
	   uint8_t plen)
{
	struct natt_ctl_sa m = {
		.spi = spi, .tunnel_id = id, .dir = NATT_DIR_OUT,
		.algo = NATT_ALGO_AES_GCM_128, .key_len = 16,
		.flags = (uint8_t)(esn ? NATT_SA_F_ESN : 0), .owner = 0,
		.remote_addr = ip4("198.51.100.25"), .local_addr = ip4(TW_OUTSIDE_ADDR),
		.remote_port = htons(61234), .local_port = htons(4500), .n_ts = 1,
	};
	struct natt_ctl_route r = { .tunnel_id = id, .n = 1 };
	int rc;

	memcpy(m.key, key128, 16);
	memcpy(m.salt, "\xca\xfe\xba\xbe", 4);
	snprintf(m.name, sizeof(m.name), "t%u", id);
	m.ts[0].addr = ip4("10.10.0.0");
	m.ts[0].plen = 16;
	rc = natt_sa_add(w, &m);
	if (rc != 0)
		return rc;
	r.pfx[0].addr = ip4(remote_ts);
	r.pfx[0].plen = plen;
	return natt_route_add(w, &r);
}

static struct rte_mbuf *
inner_frame(const char *dst, uint16_t len, bool df, const uint8_t *opts, uint8_t optlen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(14 + len));
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + 14);

	memset(p, 0, 14u + len);
	p[12] = 0x08;
	ip->version_ihl = (uint8_t)(0x40 | (20 + optlen) / 4);
	ip->total_length = htons(len);
	ip->fragment_offset = df ? htons(RTE_IPV4_HDR_DF_FLAG) : 0;
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = ip4("10.10.1.2");
	ip->dst_addr = ip4(dst);
	if (optlen != 0)
		memcpy(ip + 1, opts, optlen);
	for (unsigned int i = 20u + optlen; i < len; i++)
		((uint8_t *)ip)[i] = (uint8_t)i;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return m;
}

static struct natt_sa *
out_sa(struct natt_worker *w, uint32_t tid)
{
	return w->out[tid].sa;
}

/* sequence number and IV of the ESP packet in TX slot i of the outside port */
static void
wire_seq(struct natt_worker *w, unsigned int i, uint32_t *seq, uint64_t *iv)
{
	const uint8_t *esp = rte_pktmbuf_mtod_offset(w->port[TW_OUTSIDE_PORT].tx[i],
						     const uint8_t *, 14 + 20 + 8);

	*seq = (uint32_t)esp[4] << 24 | (uint32_t)esp[5] << 16 | (uint32_t)esp[6] << 8 | esp[7];
	*iv = 0;
	for (int k = 0; k < 8; k++)
		*iv = *iv << 8 | esp[8 + k];
}

static unsigned int
events(struct natt_worker *w, uint16_t type)
{
	struct natt_evt e;
	unsigned int n = 0;

	while (rte_ring_dequeue_elem(w->evt, &e, sizeof(e)) == 0)
		n += e.type == type;
	return n;
}

static int ossl_open_esn(struct rte_mbuf *m, uint8_t *out, bool esn, uint32_t hi);

static void
test_seq_end(void)
{
	struct natt_worker *w = tw_create(16);
	uint32_t seq;
	uint64_t iv;
	int r;

	w->pool = pool;
	CHECK(add_tunnel(w, 1, 0x1001, false, "10.50.20.7", 32) == 0, "tunnel 1");
	CHECK(add_tunnel(w, 2, 0x1002, true, "10.50.20.8", 32) == 0, "tunnel 2 (ESN)");

	/* without ESN the last number is 2^32 - 1, then the SA stops */
	out_sa(w, 1)->seq = 0xfffffffeu;
	r = tw_outbound_one(w, inner_frame("10.50.20.7", 100, true, NULL, 0));
	CHECK(r == -1 && w->port[TW_OUTSIDE_PORT].n_tx == 1, "seq 2^32-1 sent (%d)", r);
	wire_seq(w, 0, &seq, &iv);
	CHECK(seq == 0xffffffffu && iv == 0xffffffffu, "seq 0x%08x iv 0x%016llx", seq,
	      (unsigned long long)iv);
	tw_tx_discard(w);
	for (int i = 0; i < 3; i++) {
		r = tw_outbound_one(w, inner_frame("10.50.20.7", 100, true, NULL, 0));
		CHECK(r == NATT_DROP_SEQ_OVERFLOW, "after the end: seq_overflow (%d)", r);
	}
	CHECK(w->port[TW_OUTSIDE_PORT].n_tx == 0, "nothing sent after the end");
	CHECK(events(w, NATT_EVT_SEQ_EXHAUSTED) == 1, "exactly one SEQ_EXHAUSTED event");

	/* with ESN the counter goes on: low half wraps, the IV carries all 64 bits */
	out_sa(w, 2)->seq = 0xffffffffu;
	r = tw_outbound_one(w, inner_frame("10.50.20.8", 100, true, NULL, 0));
	CHECK(r == -1, "ESN past 2^32 sent (%d)", r);
	wire_seq(w, 0, &seq, &iv);
	CHECK(seq == 0 && iv == 0x100000000ull, "ESN wire seq 0x%08x iv 0x%016llx", seq,
	      (unsigned long long)iv);
	{
		/* the high half is in the AAD (RFC 4303 2.2.1, RFC 4106 5): OpenSSL
		 * opens it with high = 1 and not with 0 */
		uint8_t pt[2048];

		CHECK(ossl_open_esn(w->port[TW_OUTSIDE_PORT].tx[0], pt, true, 1) == 100,
		      "ESN packet past 2^32 opens with seq high 1 in the AAD");
		CHECK(ossl_open_esn(w->port[TW_OUTSIDE_PORT].tx[0], pt, true, 0) < 0 &&
		      ossl_open_esn(w->port[TW_OUTSIDE_PORT].tx[0], pt, false, 0) < 0,
		      "and not with high 0 or without ESN");
	}
	tw_tx_discard(w);
	out_sa(w, 2)->seq = UINT64_MAX - 1;
	CHECK(tw_outbound_one(w, inner_frame("10.50.20.8", 100, true, NULL, 0)) == -1,
	      "ESN 2^64-1 sent");
	CHECK(tw_outbound_one(w, inner_frame("10.50.20.8", 100, true, NULL, 0)) ==
	      NATT_DROP_SEQ_OVERFLOW, "ESN stops at 2^64-1");
	tw_destroy(w);
}

static void
test_routes(void)
{
	struct natt_worker *w = tw_create(16);
	struct natt_ctl_route r = { .tunnel_id = 3, .n = 1 };
	int rc;

	w->pool = pool;
	CHECK(add_tunnel(w, 1, 0x2001, false, "10.50.0.0", 16) == 0, "tunnel 1: 10.50/16");
	CHECK(add_tunnel(w, 2, 0x2002, false, "10.50.20.0", 24) == 0, "tunnel 2: 10.50.20/24");
	CHECK(add_tunnel(w, 3, 0x2003, false, "0.0.0.0", 0) == 0, "tunnel 3: default");
	/* the same prefix for another tunnel is refused, for the same one is a no-op */
	r.pfx[0].addr = ip4("10.50.20.0");
	r.pfx[0].plen = 24;
	CHECK(natt_route_add(w, &r) == -EEXIST, "prefix of tunnel 2 refused for tunnel 3");
	r.tunnel_id = 2;
	CHECK(natt_route_add(w, &r) == 0, "re-adding its own prefix");
	r.tunnel_id = 1;
	CHECK(natt_route_del(w, &r) == -ENOENT, "tunnel 1 cannot delete tunnel 2's prefix");

	/* longest prefix wins; the default catches the rest */
	static const struct { const char *dst; uint32_t spi; } cases[] = {
		{ "10.50.20.9", 0x2002 }, { "10.50.21.9", 0x2001 }, { "192.0.2.1", 0x2003 },
	};
	for (unsigned int i = 0; i < RTE_DIM(cases); i++) {
		const uint8_t *esp;

		rc = tw_outbound_one(w, inner_frame(cases[i].dst, 60, false, NULL, 0));
		esp = rte_pktmbuf_mtod_offset(w->port[TW_OUTSIDE_PORT].tx[0], const uint8_t *, 42);
		CHECK(rc == -1 && ((uint32_t)esp[0] << 24 | esp[1] << 16 | esp[2] << 8 | esp[3]) ==
		      cases[i].spi, "%s -> spi 0x%x", cases[i].dst, cases[i].spi);
		tw_tx_discard(w);
	}
	r.tunnel_id = 2;
	CHECK(natt_route_del(w, &r) == 0, "tunnel 2 deletes its prefix");
	rc = tw_outbound_one(w, inner_frame("10.50.20.9", 60, false, NULL, 0));
	CHECK(rc == -1 && rte_pktmbuf_mtod_offset(w->port[TW_OUTSIDE_PORT].tx[0],
			const uint8_t *, 45)[0] == 0x01, "then 10.50.20.9 falls to tunnel 1");
	tw_tx_discard(w);
	/* an outbound SA deleted: its routes lead nowhere, counted no_route */
	CHECK(natt_sa_del(w, &(struct natt_ctl_sa_del){ .spi = 0x2001, .dir = NATT_DIR_OUT, .tunnel_id = 1 }) == 0, "delete tunnel 1's SA");
	CHECK(tw_outbound_one(w, inner_frame("10.50.21.9", 60, false, NULL, 0)) ==
	      NATT_DROP_NO_ROUTE, "route without SA: no_route");
	r.pfx[0].plen = 33;
	CHECK(natt_route_add(w, &r) == -EINVAL, "/33 refused");
	tw_destroy(w);
}

/* Decrypt the ESP-in-UDP frame m with OpenSSL (not intel-ipsec-mb): the
 * inner packet goes to out, its length is returned, -1 if the ICV fails. */
static int
ossl_open_esn(struct rte_mbuf *m, uint8_t *out, bool esn, uint32_t hi)
{
	const uint8_t *esp = rte_pktmbuf_mtod_offset(m, const uint8_t *, 14 + 20 + 8);
	int len = (int)rte_pktmbuf_data_len(m) - 14 - 20 - 8 - 16 - 16, n = 0, f = 0;
	uint8_t nonce[12];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	memcpy(nonce, "\xca\xfe\xba\xbe", 4);
	memcpy(nonce + 4, esp + 8, 8);
	EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL);
	EVP_DecryptInit_ex(c, NULL, NULL, key128, nonce);
	if (esn) {                      /* AAD: SPI || seq high || seq low */
		uint8_t aad[12];
		uint32_t h = htonl(hi);

		memcpy(aad, esp, 4);
		memcpy(aad + 4, &h, 4);
		memcpy(aad + 8, esp + 4, 4);
		EVP_DecryptUpdate(c, NULL, &n, aad, 12);
	} else {
		EVP_DecryptUpdate(c, NULL, &n, esp, 8);         /* AAD: SPI || seq */
	}
	EVP_DecryptUpdate(c, out, &n, esp + 16, len);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(esp + 16 + len));
	f = EVP_DecryptFinal_ex(c, out + n, &n);
	EVP_CIPHER_CTX_free(c);
	if (f <= 0)
		return -1;
	/* strip padding and trailer: pad length is the second-to-last byte */
	return len - 2 - out[len - 2];
}

static int
ossl_open(struct rte_mbuf *m, uint8_t *out)
{
	return ossl_open_esn(m, out, false, 0);
}

/* Fragments: the first keeps every option, later ones only those with the
 * copied flag (RFC 791): here LSRR (0x83, copied) and record route (0x07). */
static void
test_fragments(void)
{
	struct natt_worker *w = tw_create(16);
	static const uint8_t opts[16] = { 0x83, 7, 4, 192, 0, 2, 1,  /* LSRR, copied */
					  0x07, 7, 4, 0, 0, 0, 0,      /* RR, not copied */
					  0x01, 0x00 };
	struct rte_mbuf *orig = inner_frame("10.50.20.7", 2000, false, opts, 16);
	uint8_t want[2000], got[2000], pt[2048];
	uint32_t at = 0;
	int rc;

	memcpy(want, rte_pktmbuf_mtod_offset(orig, uint8_t *, 14), 2000);
	w->pool = pool;
	CHECK(add_tunnel(w, 1, 0x3001, false, "10.50.20.7", 32) == 0, "tunnel");
	rc = tw_outbound_one(w, orig);
	CHECK(rc == -1 && w->port[TW_OUTSIDE_PORT].n_tx == 2, "2000 bytes, DF clear: 2 ESP "
	      "packets (%d, %u)", rc, w->port[TW_OUTSIDE_PORT].n_tx);
	CHECK(w->st->counters[NATT_CNT_FRAGMENTS] == 2 && w->st->counters[NATT_CNT_FRAGMENTED] == 1,
	      "fragments_out 2, fragmented 1");
	for (unsigned int i = 0; i < w->port[TW_OUTSIDE_PORT].n_tx && i < 2; i++) {
		struct rte_mbuf *m = w->port[TW_OUTSIDE_PORT].tx[i];
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)pt;
		int n = ossl_open(m, pt);
		uint32_t ihl = (pt[0] & 0xf) * 4u, fo;

		CHECK(n > 0 && rte_pktmbuf_data_len(m) - 14 <= 1500, "fragment %u decrypts (%d) "
		      "and fits", i, n);
		if (n <= 0)
			continue;
		fo = ntohs(ip->fragment_offset);
		CHECK(rte_raw_cksum(ip, ihl) == 0xffff && ntohs(ip->total_length) == (uint32_t)n,
		      "fragment %u: header checksum and length", i);
		CHECK(ip->time_to_live == 63, "fragment %u: TTL 63", i);
		if (i == 0) {
			CHECK(ihl == 36 && memcmp(pt + 20, opts, 16) == 0, "first fragment keeps"
			      " all options (ihl %u)", ihl);
			CHECK((fo & RTE_IPV4_HDR_MF_FLAG) && (fo & 0x1fff) == 0, "first: MF, offset 0");
			CHECK((n - 36) % 8 == 0, "first fragment payload is a multiple of 8");
		} else {
			CHECK(ihl == 28 && memcmp(pt + 20, opts, 7) == 0 && pt[27] == 0,
			      "later fragment: only LSRR, padded (ihl %u)", ihl);
			CHECK(!(fo & RTE_IPV4_HDR_MF_FLAG) && (fo & 0x1fff) * 8u == at,
			      "last: no MF, offset %u (want %u)", (fo & 0x1fff) * 8u, at);
		}
		memcpy(got + at, pt + ihl, (size_t)n - ihl);
		at += (uint32_t)n - ihl;
	}
	CHECK(at == 2000 - 36 && memcmp(got, want + 36, at) == 0, "payload reassembles (%u bytes)",
	      at);
	tw_tx_discard(w);
	tw_destroy(w);
}

/* ICMP frag-needed: sent for DF-set oversize, with the MTU; not about ICMP
 * errors or non-first fragments, and no more than icmp_rate per second. */
static void
test_icmp(void)
{
	struct natt_worker *w = tw_create(16);
	struct rte_mbuf *m;
	const uint8_t *p;
	int rc;

	w->pool = pool;
	w->icmp.rate = 3;
	w->now = 1;
	CHECK(add_tunnel(w, 1, 0x4001, false, "10.50.20.7", 32) == 0, "tunnel");
	rc = tw_outbound_one(w, inner_frame("10.50.20.7", 1439, true, NULL, 0));
	CHECK(rc == NATT_DROP_TOO_BIG && w->port[TW_INSIDE_PORT].n_tx == 1, "1439 DF: too_big + ICMP");
	m = w->port[TW_INSIDE_PORT].tx[0];
	p = rte_pktmbuf_mtod(m, const uint8_t *);
	CHECK(p[14 + 9] == IPPROTO_ICMP && p[34] == 3 && p[35] == 4 &&
	      (p[40] << 8 | p[41]) == 1438, "ICMP 3/4 with MTU 1438 (got %u/%u mtu %u)",
	      p[34], p[35], p[40] << 8 | p[41]);
	CHECK(rte_raw_cksum(p + 14, 20) == 0xffff, "ICMP's IPv4 checksum");
	CHECK(rte_raw_cksum(p + 34, rte_pktmbuf_data_len(m) - 34) == 0xffff, "ICMP checksum");
	CHECK(memcmp(p + 14 + 16, p + 42 + 12, 4) == 0 && rte_pktmbuf_data_len(m) == 14 + 576,
	      "sent to the inner source, quoting 548 bytes of the packet");
	tw_tx_discard(w);
	CHECK(tw_outbound_one(w, inner_frame("10.50.20.7", 1438, true, NULL, 0)) == -1,
	      "1438 DF fits");
	tw_tx_discard(w);
	for (int i = 0; i < 4; i++)
		tw_outbound_one(w, inner_frame("10.50.20.7", 1500, true, NULL, 0));
	CHECK(w->port[TW_INSIDE_PORT].n_tx == 2, "rate 3/s: 2 more ICMPs this second (%u)",
	      w->port[TW_INSIDE_PORT].n_tx);
	CHECK(w->st->counters[NATT_CNT_ICMP_LIMITED] == 2, "2 rate-limited");
	tw_tx_discard(w);
	w->now += w->tsc_hz;
	tw_outbound_one(w, inner_frame("10.50.20.7", 1500, true, NULL, 0));
	CHECK(w->port[TW_INSIDE_PORT].n_tx == 1, "a second later: ICMP again");
	tw_tx_discard(w);
	w->now += w->tsc_hz;
	{
		/* about an ICMP error: drop silently */
		struct rte_mbuf *e = inner_frame("10.50.20.7", 1500, true, NULL, 0);
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(e, struct rte_ipv4_hdr *, 14);

		ip->next_proto_id = IPPROTO_ICMP;
		((uint8_t *)(ip + 1))[0] = 11;  /* time exceeded */
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		CHECK(tw_outbound_one(w, e) == NATT_DROP_TOO_BIG &&
		      w->port[TW_INSIDE_PORT].n_tx == 0, "no ICMP error about an ICMP error");
	}
	tw_destroy(w);
}

int
main(int argc, char **argv)
{
	char *eal[] = { argv[0], "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
			"--log-level", "lib.eal:error", "--file-prefix", "test-outbound" };

	(void)argc;
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	pool = rte_pktmbuf_pool_create("tpool", 4096, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	if (pool == NULL)
		return 1;
	test_mss();
	test_seq_end();
	test_routes();
	test_fragments();
	test_icmp();
	printf("%u passed, %u failed\n", n_pass, n_fail);
	rte_eal_cleanup();
	return n_fail ? 1 : 0;
}
