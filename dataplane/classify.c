/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify.c - parse hostile outer headers in header order, length first.
 */
#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "classify.h"
#include "ipv4.h"
#include "esp.h"

static inline uint32_t
rd32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* UDP payload on port 4500: keepalive, IKE behind the non-ESP marker, or ESP. */
static unsigned int
classify_4500(const uint8_t *pl, uint32_t pl_len, uint32_t pl_off,
	      struct natt_esp_meta *m)
{
	/* RFC 3948 2.3: a NAT-keepalive is one octet 0xFF. */
	if (pl_len == 1 && pl[0] == NATT_KEEPALIVE_BYTE)
		return NATT_DROP_KEEPALIVE;
	if (unlikely(pl_len < NATT_NON_ESP_MARKER_LEN))
		return NATT_DROP_MALFORMED;
	/* RFC 3948 2.2: four zero octets where the SPI would be mark IKE;
	 * SPI 0 is reserved (RFC 4303 2.1), so the two never collide. */
	if (rd32be(pl) == 0)
		return NATT_DROP_IKE;
	if (unlikely(pl_len < ESP_GCM_MIN_LEN))
		return NATT_DROP_MALFORMED;
	m->esp_off = (uint16_t)pl_off;
	m->esp_len = (uint16_t)pl_len;
	m->spi = rd32be(pl);
	m->seq = rd32be(pl + 4);
	return NATT_CLASS_ESP;
}

unsigned int
natt_classify(const uint8_t *p, uint32_t len, uint32_t local_addr,
	      struct natt_esp_meta *m)
{
	const struct rte_ether_hdr *eth = (const void *)p;
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	uint32_t ihl, tot, udp_len;
	uint16_t type, frag, dport;

	if (unlikely(len < ETH_HLEN_))
		return NATT_DROP_MALFORMED;
	type = rte_be_to_cpu_16(eth->ether_type);
	if (unlikely(type != RTE_ETHER_TYPE_IPV4)) {
		if (type == RTE_ETHER_TYPE_IPV6 || type == RTE_ETHER_TYPE_VLAN ||
		    type == RTE_ETHER_TYPE_QINQ || type == RTE_ETHER_TYPE_QINQ1)
			return NATT_DROP_UNSUPPORTED;
		return NATT_DROP_NOT_ESP;
	}
	p += ETH_HLEN_;
	len -= ETH_HLEN_;
	ip = (const void *)p;
	if (unlikely(len < IPV4_HLEN_MIN || (ip->version_ihl >> 4) != 4))
		return NATT_DROP_MALFORMED;
	ihl = (ip->version_ihl & 0xf) * 4u;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely(ihl < IPV4_HLEN_MIN || ihl > len || tot < ihl || tot > len))
		return NATT_DROP_MALFORMED;
	if (unlikely(!natt_ipv4_csum_ok(ip, ihl)))
		return NATT_DROP_MALFORMED;
	frag = rte_be_to_cpu_16(ip->fragment_offset);
	if (unlikely(frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return NATT_DROP_FRAGMENT;
	if (unlikely(ip->next_proto_id != IPPROTO_UDP))
		return NATT_DROP_NOT_ESP;
	if (unlikely(local_addr != 0 && ip->dst_addr != local_addr))
		return NATT_DROP_NOT_ESP;
	if (unlikely(tot - ihl < UDP_HLEN))
		return NATT_DROP_MALFORMED;
	udp = (const void *)(p + ihl);
	udp_len = rte_be_to_cpu_16(udp->dgram_len);
	/* RFC 3948 2.1: the UDP checksum is not checked (senders put 0). */
	if (unlikely(udp_len < UDP_HLEN || udp_len > tot - ihl))
		return NATT_DROP_MALFORMED;
	dport = rte_be_to_cpu_16(udp->dst_port);
	if (dport == IKE_PORT)
		return NATT_DROP_IKE;
	if (unlikely(dport != NATT_PORT))
		return NATT_DROP_NOT_ESP;
	m->src_addr = ip->src_addr;
	m->src_port = udp->src_port;
	return classify_4500(p + ihl + UDP_HLEN, udp_len - UDP_HLEN,
			     ETH_HLEN_ + ihl + UDP_HLEN, m);
}
