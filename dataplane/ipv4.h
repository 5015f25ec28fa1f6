/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ipv4.h - in-place edits of a forwarded IPv4 packet that both directions
 * make: TTL - 1 and TCP MSS clamping, each with an incremental checksum
 * update (RFC 1624) instead of a recomputation.
 */
#ifndef NATT_IPV4_H
#define NATT_IPV4_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "esp.h"

/* Does an IPv4 header of ihl bytes (a multiple of 4) carry a valid
 * checksum? RFC 1071: 32-bit words summed and folded give the 16-bit
 * one's complement sum; all ones reads the same in either byte order, so
 * native loads are fine. The usual 20-byte header is five loads. */
static inline bool
natt_ipv4_csum_ok(const void *hdr, uint32_t ihl)
{
	const uint8_t *p = hdr;
	uint64_t sum = 0;
	uint32_t v;

	if (likely(ihl == 20)) {
		for (uint32_t i = 0; i < 20; i += 4) {
			memcpy(&v, p + i, 4);
			sum += v;
		}
	} else {
		for (uint32_t i = 0; i < ihl; i += 4) {
			memcpy(&v, p + i, 4);
			sum += v;
		}
	}
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* IPv4 header sanity (version, lengths, checksum) of a packet with avail
 * bytes; returns its total length or 0 if malformed. */
static inline uint16_t
natt_ipv4_check(const struct rte_ipv4_hdr *ip, uint32_t avail)
{
	uint32_t ihl, tot;

	if (unlikely(avail < IPV4_HLEN_MIN || (ip->version_ihl >> 4) != 4))
		return 0;
	ihl = (ip->version_ihl & 0xf) * 4u;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely(ihl < IPV4_HLEN_MIN || tot < ihl || tot > avail))
		return 0;
	if (unlikely(!natt_ipv4_csum_ok(ip, ihl)))
		return 0;
	return (uint16_t)tot;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), 16-bit words, host order. */
static inline uint16_t
natt_csum_replace16(uint16_t hc, uint16_t old, uint16_t new)
{
	uint32_t sum = (uint32_t)(uint16_t)~hc + (uint16_t)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* TTL - 1. The TTL is the high byte of the 16-bit word it shares with the
 * protocol field; as Linux ip_decrease_ttl(), a result of 0xffff folds to 0,
 * the value a full recomputation gives. */
static inline void
natt_ttl_decrement(struct rte_ipv4_hdr *ip)
{
	uint32_t sum = (uint32_t)rte_be_to_cpu_16(ip->hdr_checksum) + 0x0100;

	ip->time_to_live--;
	ip->hdr_checksum = rte_cpu_to_be_16((uint16_t)(sum + (sum >= 0xffff)));
}

/*
 * Lower the MSS option of a TCP SYN (or SYN-ACK) to mss if it is larger.
 * ip is a checked IPv4 header, tot its total length (bytes available).
 * Returns true if the option was rewritten. Malformed options end the walk
 * without a change: a router forwards what it cannot parse as it is.
 */
static inline bool
natt_mss_clamp(struct rte_ipv4_hdr *ip, uint32_t tot, uint16_t mss)
{
	uint32_t ihl = (ip->version_ihl & 0xf) * 4u, thl;
	struct rte_tcp_hdr *th;
	uint8_t *o, *end;

	if (ip->next_proto_id != IPPROTO_TCP ||
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK)) != 0 ||
	    tot < ihl + sizeof(*th))
		return false;
	th = (struct rte_tcp_hdr *)((uint8_t *)ip + ihl);
	thl = (th->data_off >> 4) * 4u;
	if (!(th->tcp_flags & RTE_TCP_SYN_FLAG) || thl < sizeof(*th) || ihl + thl > tot)
		return false;
	o = (uint8_t *)(th + 1);
	end = (uint8_t *)th + thl;
	while (o < end && o[0] != 0) {          /* 0: end of option list */
		uint16_t old;
		bool odd;

		if (o[0] == 1) {                  /* no-op */
			o++;
			continue;
		}
		if (end - o < 2 || o[1] < 2 || o[1] > end - o)
			return false;
		if (o[0] != 2 || o[1] != 4) {
			o += o[1];
			continue;
		}
		old = (uint16_t)(o[2] << 8 | o[3]);
		if (old <= mss)
			return false;
		o[2] = (uint8_t)(mss >> 8);
		o[3] = (uint8_t)mss;
		/* The checksum sums 16-bit words from the TCP header on; a value
		 * at an odd offset straddles two words, i.e. counts byte-swapped. */
		odd = ((o + 2 - (uint8_t *)th) & 1) != 0;
		th->cksum = rte_cpu_to_be_16(natt_csum_replace16(
			rte_be_to_cpu_16(th->cksum),
			odd ? rte_bswap16(old) : old, odd ? rte_bswap16(mss) : mss));
		return true;
	}
	return false;
}

#endif /* NATT_IPV4_H */
