/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_classify.c - natt_classify() on frames built byte by byte here, with
 * the IPv4 header checksum computed by a plain RFC 1071 routine (not DPDK's).
 * The expected verdicts come from RFC 791 (IPv4), RFC 768 (UDP), RFC 3948
 * (keepalive, non-ESP marker, port 4500) and RFC 4303/4106 (smallest ESP
 * packet with AES-GCM: 8 header + 8 IV + 2 trailer + 16 ICV = 34 octets).
 *
 *   1. a numbered table of frames and the verdict each must get; for ESP the
 *      metadata is checked against what the frame was built with;
 *   2. every truncation of several valid frames, each copied into a buffer of
 *      exactly that size (so ASan/valgrind see any over-read): a strict prefix
 *      that cuts the IP packet is MALFORMED, a longer one keeps the verdict;
 *   3. random byte corruption of a valid frame: no crash, a known verdict,
 *      and an ESP verdict only with esp_off/esp_len inside the frame.
 *
 * Prints one PASS/FAIL line per case; exits 1 if any case failed.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "classify.h"

#define SRC_IP 0xC6336401u      /* 198.51.100.1, the peer's NAT */
#define DST_IP 0xCB007105u      /* 203.0.113.5, our outside address */
#define OTHER_IP 0xCB007106u    /* 203.0.113.6 */
#define SPORT 33333             /* NAT-mapped source port */
#define ESP_SPI 0xC0FFEE01u
#define ESP_SEQ 0x89ABCDEFu     /* top bit set: catches sign/byte-order slips */
#define LOCAL_ANY 0xFFFFFFFFu   /* in a case: pass local_addr 0 */

#define FRAME_MAX 2048

static unsigned int case_no;
static unsigned int nb_failed;

static const char *
vname(unsigned int v)
{
	return v == NATT_CLASS_ESP ? "esp" : natt_drop_name(v);
}

/* Print the numbered PASS/FAIL line of one case. */
static void
report(bool ok, const char *name, const char *why)
{
	case_no++;
	printf("%s %3u %s%s%s\n", ok ? "PASS" : "FAIL", case_no, name,
	       ok ? "" : ": ", ok ? "" : why);
	if (!ok)
		nb_failed++;
	fflush(stdout);
}

/* RFC 1071: one's complement of the one's complement sum of 16-bit words. */
static uint16_t
inet_csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* How to build one frame; zero fields mean "the normal ESP-in-UDP frame". */
struct fspec {
	uint16_t ethertype;     /* 0: IPv4 */
	uint8_t vihl;           /* 0: 0x40 | ihl; else written as is */
	uint8_t ihl;            /* 0: 5 words; more adds NOP options */
	int tot_delta;          /* added to the true IPv4 total length */
	uint16_t frag;          /* flags + fragment offset */
	uint8_t proto;          /* 0: UDP */
	bool bad_csum;          /* corrupt the header checksum */
	uint32_t dst;           /* 0: DST_IP */
	uint16_t sport;         /* 0: SPORT */
	uint16_t dport;         /* 0: 4500 */
	int udp_len_delta;      /* added to the true UDP length */
	uint16_t udp_csum;      /* written as is (never checked) */
	const uint8_t *pl;      /* NULL: ESP of pl_len octets (0: 64) */
	uint32_t pl_len;
	uint32_t eth_pad;       /* octets after the IP packet */
	uint32_t frame_len;     /* non-zero: cut the frame to this length */
#define CUT_TO_0 0xFFFFFFFFu    /* frame_len for an empty frame */
};

static uint32_t
spec_ihl(const struct fspec *f)
{
	return f->ihl ? f->ihl : 5;
}

static uint32_t
spec_pl_len(const struct fspec *f)
{
	return f->pl == NULL && f->pl_len == 0 ? 64 : f->pl_len;
}

/* Build the frame described by f into b; return its length. */
static uint32_t
build(const struct fspec *f, uint8_t *b)
{
	uint32_t ihl = spec_ihl(f) * 4, pl_len = spec_pl_len(f), i, len;
	uint8_t *ip = b + 14, *udp = ip + ihl, *pl = udp + 8;
	static const uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 0x01};
	static const uint8_t smac[6] = {0x02, 0, 0, 0, 0, 0x02};

	memset(b, 0, FRAME_MAX);
	memcpy(b, dmac, 6);
	memcpy(b + 6, smac, 6);
	put16(b + 12, f->ethertype ? f->ethertype : 0x0800);

	ip[0] = f->vihl ? f->vihl : (uint8_t)(0x40 | ihl / 4);
	ip[1] = 0;
	put16(ip + 2, (uint16_t)((int)(ihl + 8 + pl_len) + f->tot_delta));
	put16(ip + 4, 0x1c46);
	put16(ip + 6, f->frag);
	ip[8] = 64;
	ip[9] = f->proto ? f->proto : 17;
	put32(ip + 12, SRC_IP);
	put32(ip + 16, f->dst ? f->dst : DST_IP);
	for (i = 20; i < ihl; i++)
		ip[i] = 1;                              /* NOP option */
	/* over the length the header claims, so a bad IHL is the only fault */
	put16(ip + 10, inet_csum(ip, (ip[0] & 0xfu) * 4u) ^ (f->bad_csum ? 0x1234 : 0));

	put16(udp, f->sport ? f->sport : SPORT);
	put16(udp + 2, f->dport ? f->dport : 4500);
	put16(udp + 4, (uint16_t)((int)(8 + pl_len) + f->udp_len_delta));
	put16(udp + 6, f->udp_csum);

	if (f->pl != NULL) {
		memcpy(pl, f->pl, pl_len);
	} else {
		put32(pl, ESP_SPI);
		put32(pl + 4, ESP_SEQ);
		for (i = 8; i < pl_len; i++)
			pl[i] = (uint8_t)(i * 7);       /* IV, ciphertext, ICV */
	}
	len = 14 + ihl + 8 + pl_len;
	memset(b + len, 0xEE, f->eth_pad);
	len += f->eth_pad;
	if (f->frame_len == CUT_TO_0)
		return 0;
	return f->frame_len ? f->frame_len : len;
}

struct ccase {
	const char *name;
	struct fspec f;
	uint32_t local;         /* 0: DST_IP; LOCAL_ANY: pass 0 */
	unsigned int want;
};

#define ESP NATT_CLASS_ESP
#define MALFORMED NATT_DROP_MALFORMED
#define NOT_ESP NATT_DROP_NOT_ESP
#define FRAGMENT NATT_DROP_FRAGMENT
#define UNSUPPORTED NATT_DROP_UNSUPPORTED
#define KEEPALIVE NATT_DROP_KEEPALIVE
#define IKE NATT_DROP_IKE

#define PL(...) .pl = (const uint8_t[]){__VA_ARGS__}, \
	.pl_len = sizeof((const uint8_t[]){__VA_ARGS__})

/* 4 zero octets (RFC 3948 2.2) then an IKEv2 header (RFC 7296 3.1) */
#define IKE_HDR 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, \
	0, 0, 0, 0, 0, 0, 0, 0, 0x21, 0x20, 0x22, 0x08, 0, 0, 0, 0, 0, 0, 0, 28

static const struct ccase cases[] = {
	{ "valid ESP-in-UDP", {0}, 0, ESP },
	{ "ESP of exactly the minimum 34 octets", { .pl_len = 34 }, 0, ESP },
	{ "ESP of 33 octets (one short)", { .pl_len = 33 }, 0, MALFORMED },
	{ "ESP of 8 octets (header only)", { .pl_len = 8 }, 0, MALFORMED },
	{ "ESP of 1472 octets (1500 MTU)", { .pl_len = 1472 }, 0, ESP },
	{ "ESP with SPI 256 (three zero octets, not a marker)",
	  { PL(0, 0, 1, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
	       14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26) }, 0, ESP },
	{ "keepalive 0xFF", { PL(0xFF) }, 0, KEEPALIVE },
	{ "keepalive padded to the 60-octet Ethernet minimum",
	  { PL(0xFF), .eth_pad = 60 - 43 }, 0, KEEPALIVE },
	{ "1 octet 0x00", { PL(0x00) }, 0, MALFORMED },
	{ "1 octet 0xFE", { PL(0xFE) }, 0, MALFORMED },
	{ "2 octets 0xFF 0xFF", { PL(0xFF, 0xFF) }, 0, MALFORMED },
	{ "3 octets", { PL(0xFF, 0, 0) }, 0, MALFORMED },
	{ "3 zero octets (short marker)", { PL(0, 0, 0) }, 0, MALFORMED },
	{ "empty UDP payload", { .pl = (const uint8_t[]){0}, .pl_len = 0 }, 0,
	  MALFORMED },
	{ "non-ESP marker + IKE header", { PL(0, 0, 0, 0, IKE_HDR) }, 0, IKE },
	{ "non-ESP marker alone", { PL(0, 0, 0, 0) }, 0, IKE },
	{ "4 octets, non-zero SPI", { PL(0, 0, 0, 1) }, 0, MALFORMED },
	{ "UDP dport 500 (IKE, no marker)", { PL(IKE_HDR), .dport = 500 }, 0, IKE },
	{ "UDP dport 53", { .dport = 53 }, 0, NOT_ESP },
	{ "UDP dport 4501", { .dport = 4501 }, 0, NOT_ESP },
	{ "UDP sport 4500, dport 4500 (no NAT)", { .sport = 4500 }, 0, ESP },
	{ "TCP to 4500", { .proto = 6 }, 0, NOT_ESP },
	{ "ICMP", { .proto = 1 }, 0, NOT_ESP },
	{ "raw ESP (proto 50, no UDP)", { .proto = 50 }, 0, NOT_ESP },
	{ "IPv6 ethertype", { .ethertype = 0x86DD }, 0, UNSUPPORTED },
	{ "VLAN ethertype", { .ethertype = 0x8100 }, 0, UNSUPPORTED },
	{ "ARP ethertype", { .ethertype = 0x0806 }, 0, NOT_ESP },
	{ "frame of 0 octets", { .frame_len = CUT_TO_0 }, 0, MALFORMED },
	{ "frame of 13 octets", { .frame_len = 13 }, 0, MALFORMED },
	{ "frame of 14 octets (Ethernet only)", { .frame_len = 14 }, 0, MALFORMED },
	{ "frame of 33 octets (IPv4 header cut)", { .frame_len = 33 }, 0, MALFORMED },
	{ "IP version 6 in IPv4 ethertype", { .vihl = 0x65 }, 0, MALFORMED },
	{ "IP version 0", { .vihl = 0x05 }, 0, MALFORMED },
	{ "IHL 4", { .vihl = 0x44 }, 0, MALFORMED },
	{ "IHL 0", { .vihl = 0x40 }, 0, MALFORMED },
	{ "IHL 4, valid checksum, octet 16 on shaped like UDP 4500->4500",
	  { .vihl = 0x44, .dst = 0x11941194, .sport = 20 + 8 + 64 - 16 },
	  LOCAL_ANY, MALFORMED },
	{ "IHL 15 beyond a 32-octet IP packet", { .vihl = 0x4F, PL(0, 0, 0, 0) },
	  0, MALFORMED },
	{ "bad header checksum", { .bad_csum = true }, 0, MALFORMED },
	{ "total length > frame", { .tot_delta = 1 }, 0, MALFORMED },
	{ "total length < IHL (19)", { .tot_delta = -(8 + 64 + 1) }, 0, MALFORMED },
	{ "total length = IHL (no UDP header)", { .tot_delta = -(8 + 64) },
	  0, MALFORMED },
	{ "total length = IHL + 7", { .tot_delta = -(1 + 64) }, 0, MALFORMED },
	{ "total length = IHL + 4, frame ends there",
	  { .tot_delta = -(4 + 64), .frame_len = 14 + 20 + 4 }, 0, MALFORMED },
	{ "MF set", { .frag = 0x2000 }, 0, FRAGMENT },
	{ "fragment offset 1", { .frag = 0x0001 }, 0, FRAGMENT },
	{ "fragment offset 0x1FFF", { .frag = 0x1FFF }, 0, FRAGMENT },
	{ "MF + offset (middle fragment)", { .frag = 0x2010 }, 0, FRAGMENT },
	{ "DF set is fine", { .frag = 0x4000 }, 0, ESP },
	{ "IP options (IHL 6)", { .ihl = 6 }, 0, ESP },
	{ "IP options (IHL 15, 40 octets)", { .ihl = 15 }, 0, ESP },
	{ "IP options + bad checksum", { .ihl = 6, .bad_csum = true }, 0, MALFORMED },
	{ "UDP length > IP payload", { .udp_len_delta = 1 }, 0, MALFORMED },
	{ "UDP length 7", { .udp_len_delta = -(64 + 1) }, 0, MALFORMED },
	{ "UDP length 0", { .udp_len_delta = -(64 + 8) }, 0, MALFORMED },
	{ "UDP length < IP payload: ESP ends at UDP length",
	  { .udp_len_delta = -10 }, 0, ESP },
	{ "dst != local_addr", { .dst = OTHER_IP }, 0, NOT_ESP },
	{ "local_addr 0 accepts any dst", { .dst = OTHER_IP }, LOCAL_ANY, ESP },
	{ "local_addr 0, usual dst", {0}, LOCAL_ANY, ESP },
	{ "Ethernet padding after IP total length",
	  { .pl_len = 34, .eth_pad = 20 }, 0, ESP },
	{ "UDP checksum garbage ignored", { .udp_csum = 0xDEAD }, 0, ESP },
	{ "UDP checksum 0 (RFC 3948 senders)", { .udp_csum = 0 }, 0, ESP },
};
#define NB_CASES (sizeof(cases) / sizeof(cases[0]))

/* The metadata an ESP verdict must carry, from what the frame was built of. */
static bool
meta_ok(const struct fspec *f, const struct natt_esp_meta *m, char *why,
	size_t why_len)
{
	uint16_t off = (uint16_t)(14 + spec_ihl(f) * 4 + 8);
	uint16_t elen = (uint16_t)((int)spec_pl_len(f) + f->udp_len_delta);
	uint32_t spi = f->pl ? (uint32_t)f->pl[0] << 24 | f->pl[1] << 16 |
			       f->pl[2] << 8 | f->pl[3] : ESP_SPI;
	uint32_t seq = f->pl ? (uint32_t)f->pl[4] << 24 | f->pl[5] << 16 |
			       f->pl[6] << 8 | f->pl[7] : ESP_SEQ;

	if (m->esp_off == off && m->esp_len == elen && m->spi == spi &&
	    m->seq == seq && m->src_addr == htonl(SRC_IP) &&
	    m->src_port == htons(f->sport ? f->sport : SPORT))
		return true;
	snprintf(why, why_len,
		 "meta off %u len %u spi %#x seq %#x src %#x:%u, want off %u len %u "
		 "spi %#x seq %#x src %#x:%u", m->esp_off, m->esp_len, m->spi,
		 m->seq, ntohl(m->src_addr), ntohs(m->src_port), off, elen, spi,
		 seq, SRC_IP, f->sport ? f->sport : SPORT);
	return false;
}

/* Classify len octets copied into a buffer of exactly that size. */
static unsigned int
classify_exact(const uint8_t *frame, uint32_t len, uint32_t local,
	       struct natt_esp_meta *m)
{
	uint8_t *b = malloc(len ? len : 1);
	unsigned int v;

	if (b == NULL) {
		perror("malloc");
		exit(2);
	}
	memcpy(b, frame, len);
	memset(m, 0xA5, sizeof(*m));
	v = natt_classify(b, len, local, m);
	free(b);
	return v;
}

static uint32_t
case_local(const struct ccase *c)
{
	return c->local == LOCAL_ANY ? 0 : htonl(c->local ? c->local : DST_IP);
}

static void
test_table(void)
{
	static uint8_t frame[FRAME_MAX];
	struct natt_esp_meta m;
	char name[128], why[256];
	unsigned int i, v;
	uint32_t len;
	bool ok;

	for (i = 0; i < NB_CASES; i++) {
		len = build(&cases[i].f, frame);
		v = classify_exact(frame, len, case_local(&cases[i]), &m);
		ok = v == cases[i].want;
		snprintf(why, sizeof(why), "got %s, want %s", vname(v),
			 vname(cases[i].want));
		if (ok && v == NATT_CLASS_ESP)
			ok = meta_ok(&cases[i].f, &m, why, sizeof(why));
		snprintf(name, sizeof(name), "%s -> %s", cases[i].name,
			 vname(cases[i].want));
		report(ok, name, why);
	}
}

/* Every prefix of a frame: cutting into the IP packet is MALFORMED, a
 * prefix that still holds the whole IP packet keeps the full verdict. */
static void
test_truncations(const char *what, const struct fspec *f)
{
	static uint8_t frame[FRAME_MAX];
	struct natt_esp_meta m, full_m;
	uint32_t full = build(f, frame), ip_end = full - f->eth_pad, len;
	unsigned int full_v, v, want;
	char name[128], why[256] = "";
	bool ok = true;

	full_v = classify_exact(frame, full, htonl(DST_IP), &full_m);
	for (len = 0; len <= full && ok; len++) {
		want = len < ip_end ? MALFORMED : full_v;
		v = classify_exact(frame, len, htonl(DST_IP), &m);
		if (v != want) {
			snprintf(why, sizeof(why), "len %u of %u: got %s, want %s",
				 len, full, vname(v), vname(want));
			ok = false;
		} else if (v == NATT_CLASS_ESP && memcmp(&m, &full_m, sizeof(m))) {
			snprintf(why, sizeof(why), "len %u of %u: meta differs",
				 len, full);
			ok = false;
		}
	}
	snprintf(name, sizeof(name), "every truncation 0..%u of %s (full: %s)",
		 full, what, vname(full_v));
	report(ok, name, why);
}

static uint64_t rng = 0x636c617373696679ull;

/* xorshift64*: reproducible corruption. */
static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

/* Flip random octets of valid frames: whatever comes out must be a known
 * verdict, and an ESP verdict must point inside the frame. */
static void
test_corruption(void)
{
	const struct fspec base[] = {
		{0}, { .pl_len = 34 }, { .ihl = 7 }, { PL(0xFF), .eth_pad = 17 },
	};
	static uint8_t frame[FRAME_MAX];
	struct natt_esp_meta m;
	char why[256] = "";
	unsigned int i, k, v, n = 200000;
	uint32_t len, pos;
	bool ok = true;

	for (i = 0; i < n && ok; i++) {
		len = build(&base[i % 4], frame);
		for (k = 0; k < 1 + rnd() % 4; k++) {
			pos = (uint32_t)(rnd() % 60);   /* the headers */
			if (pos < len)
				frame[pos] ^= (uint8_t)(1 + rnd() % 255);
		}
		len -= (uint32_t)(rnd() % 4 == 0 ? rnd() % len : 0);
		v = classify_exact(frame, len, rnd() % 2 ? htonl(DST_IP) : 0, &m);
		if (v > NATT_CLASS_ESP) {
			snprintf(why, sizeof(why), "iteration %u: verdict %u", i, v);
			ok = false;
		} else if (v == NATT_CLASS_ESP &&
			   (m.esp_off < 14 + 20 + 8 || m.esp_len < 34 ||
			    (uint32_t)m.esp_off + m.esp_len > len)) {
			snprintf(why, sizeof(why), "iteration %u: esp %u+%u in %u",
				 i, m.esp_off, m.esp_len, len);
			ok = false;
		}
	}
	report(ok, "200000 corrupted frames: known verdict, ESP inside the frame", why);
}

int
main(void)
{
	const struct fspec esp = {0}, esp_min = { .pl_len = 34 },
		esp_opt = { .ihl = 6 }, esp_pad = { .pl_len = 34, .eth_pad = 20 },
		ka = { PL(0xFF), .eth_pad = 17 },
		ike = { PL(0, 0, 0, 0, IKE_HDR) };

	test_table();
	test_truncations("valid ESP", &esp);
	test_truncations("minimum ESP", &esp_min);
	test_truncations("ESP with IP options", &esp_opt);
	test_truncations("ESP with Ethernet padding", &esp_pad);
	test_truncations("padded keepalive", &ka);
	test_truncations("IKE behind the marker", &ike);
	test_corruption();

	printf("test_classify: %u cases, %u failed\n", case_no, nb_failed);
	return nb_failed ? 1 : 0;
}
