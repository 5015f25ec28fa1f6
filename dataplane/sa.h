/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sa.h - runtime SA objects and the per-worker SA tables.
 *
 * Every worker has its own SPI -> SA hash per direction and is its only
 * reader and writer. For SAs the worker owns, the hash value is a pointer to
 * a struct natt_sa (keys expanded, replay window); for SAs another worker
 * owns it is a tagged owner id (low bit set), so a packet RSS delivered here
 * is handed to the owner instead of being decrypted with a second window.
 */
#ifndef NATT_SA_H
#define NATT_SA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_prefetch.h>

#include "crypto.h"
#include "esp.h"
#include "natt_ctl.h"
#include "natt_stats.h"
#include "replay.h"

struct natt_worker;

/* A traffic selector as (addr & mask) == net, network order. */
struct natt_ts {
	uint32_t net;
	uint32_t mask;
};

struct natt_sa {
	/* line 0: what every packet of either direction reads, the replay
	 * state and the first two selectors included (one line to prefetch
	 * for the common case) */
	uint32_t spi;
	uint32_t tunnel_id;
	uint8_t dir;
	uint8_t esn;
	uint8_t n_ts;
	uint8_t seq_exhausted;           /* outbound: event sent, SA stopped */
	uint32_t remote_addr;            /* network order: outbound, where we send;
					  * inbound, where its packets last came from */
	uint16_t remote_port;            /* network order */
	uint16_t local_port;
	uint32_t local_addr;
	struct natt_tunnel_stats *stats; /* this tunnel's counters (we own them) */
	union {
		struct {                 /* outbound */
			uint64_t seq;    /* last sequence number sent */
			uint32_t outer_sum; /* TTL/protocol and addresses of the outer
					     * IPv4 header, summed (RFC 1071) */
			uint16_t keepalive_s; /* NAT keepalive interval, 0 = off */
		};
		struct replay_window rw; /* inbound: its bitmap is bmp[] */
	};
	struct natt_ts ts[NATT_MAX_TS];
	/* cold: control messages and timers only */
	uint32_t cfg_remote_addr;        /* the peer the configuration names: an */
	uint16_t cfg_remote_port;        /*   update that keeps it keeps the NAT mapping */
	uint64_t grace_until;            /* inbound: TSC its rekey grace ends, 0 = live */
	struct natt_gcm_key key;         /* 64-byte aligned */
	uint64_t bmp[];                  /* inbound: replay_bmp_size(rw.size) bytes */
};

_Static_assert(offsetof(struct natt_sa, ts) + 2 * sizeof(struct natt_ts) <= RTE_CACHE_LINE_SIZE,
	       "the per-packet fields and two selectors share the SA's first line");
_Static_assert(sizeof(struct replay_window) <= 16, "the replay state fits where seq was");

/* A hash value for an SA another worker owns:
 *   epoch << 41 | tunnel id << 17 | owner << 1 | 1
 * The tunnel id lets an SA_DEL be checked on every worker; the epoch tells an
 * entry from an earlier one of the same SPI, owner and tunnel (grace timer). */
#define NATT_SA_REMOTE 1u           /* tag bit of a hash value: not ours */
#define NATT_SA_TUNNEL_SHIFT 17
#define NATT_SA_EPOCH_SHIFT 41      /* tunnel ids are below 2^24 */

static inline bool
natt_sa_is_remote(const void *v)
{
	return ((uintptr_t)v & NATT_SA_REMOTE) != 0;
}

static inline uint16_t
natt_sa_remote_owner(const void *v)
{
	return (uint16_t)((uintptr_t)v >> 1);
}

static inline uint32_t
natt_sa_remote_tunnel(const void *v)
{
	return (uint32_t)((uintptr_t)v >> NATT_SA_TUNNEL_SHIFT) & 0xffffffu;
}

static inline void *
natt_sa_remote_tag(uint32_t epoch, uint32_t tunnel_id, uint16_t owner)
{
	return (void *)((uintptr_t)(epoch & 0x7fffffu) << NATT_SA_EPOCH_SHIFT |
			(uintptr_t)tunnel_id << NATT_SA_TUNNEL_SHIFT |
			(uintptr_t)owner << 1 | NATT_SA_REMOTE);
}

/* The tunnel an SA (or another worker's SA) belongs to. */
static inline uint32_t
natt_sa_tunnel(const void *v)
{
	return natt_sa_is_remote(v) ? natt_sa_remote_tunnel(v)
				    : ((const struct natt_sa *)v)->tunnel_id;
}

/* The constant words of the SA's outer IPv4 header, summed (RFC 1071): TTL
 * and protocol, both addresses. Recomputed whenever the peer moves. */
static inline void
natt_sa_outer_sum(struct natt_sa *sa)
{
	uint32_t l = rte_be_to_cpu_32(sa->local_addr), r = rte_be_to_cpu_32(sa->remote_addr);

	if (sa->dir != NATT_DIR_OUT)
		return;                  /* inbound: the replay state is there */
	sa->outer_sum = (uint32_t)(NATT_OUTER_TTL << 8 | IPPROTO_UDP) +
			(l >> 16) + (l & 0xffff) + (r >> 16) + (r & 0xffff);
}

/* Key of the peer table (worker.h): an outer address and UDP port, both in
 * network order, as a NAT-mapped peer is seen. */
static inline uint64_t
natt_peer_key(uint32_t addr, uint16_t port)
{
	return (uint64_t)addr << 16 | port;
}

/* Is inner source address src (network order) inside the SA's selectors? */
static inline bool
natt_sa_ts_match(const struct natt_sa *sa, uint32_t src)
{
	for (unsigned int i = 0; i < sa->n_ts; i++)
		if ((src & sa->ts[i].mask) == sa->ts[i].net)
			return true;
	return false;
}

/* The tunnel id an SA's SPI-table entry carries (aux), with a flag for an
 * AES-256 key: the lookup tells how many lines of round keys to prefetch
 * before the SA itself has arrived. Tunnel ids are below 2^24. */
#define NATT_SA_AUX_AES256 (1u << 31)
#define NATT_SA_AUX_TUNNEL 0xffffffu

/* Ask for the lines that sealing or opening ct_len bytes under sa reads:
 * its first line, the round keys (11 or 15 of 16 bytes: 3 or 4 lines) and
 * the GHASH key powers the packet uses. intel-ipsec-mb's VAES code keeps
 * H^n at byte 16 * (63 - n) of the key data (H^48 first, H^1 last, with the
 * salt just after it) and a message of n blocks reads H^n .. H^1, so a small
 * packet needs only the last line or two; the older code keeps H^1 .. H^8
 * and their Karatsuba halves from byte 240 up (gcm_vaes false). Issued for
 * a whole burst before the first packet is touched, so that with many
 * tunnels the cache misses overlap. At most 8 lines of powers: a packet
 * that needs more spends long enough in AES for the rest to stream in. */
static inline void
natt_sa_prefetch(const struct natt_sa *sa, bool aes256, uint32_t ct_len, bool gcm_vaes)
{
	const uint8_t *k = (const uint8_t *)&sa->key.kd;
	const uint32_t h1 = (16 * 62) & ~(RTE_CACHE_LINE_SIZE - 1);
	uint32_t lo, n;

	rte_prefetch0(sa);
	rte_prefetch0(k);
	rte_prefetch0(k + RTE_CACHE_LINE_SIZE);
	rte_prefetch0(k + 2 * RTE_CACHE_LINE_SIZE);
	if (aes256)
		rte_prefetch0(k + 3 * RTE_CACHE_LINE_SIZE);
	if (!gcm_vaes) {
		for (uint32_t off = 192; off < 448; off += RTE_CACHE_LINE_SIZE)
			rte_prefetch0(k + off);
		return;
	}
	n = RTE_MIN((ct_len + 15) / 16, 48u);
	lo = RTE_MAX((16 * (63 - n)) & ~(RTE_CACHE_LINE_SIZE - 1),
		     h1 - 7 * RTE_CACHE_LINE_SIZE);
	for (uint32_t off = h1;; off -= RTE_CACHE_LINE_SIZE) {
		rte_prefetch0(k + off);
		if (off <= lo)
			break;
	}
}

/* One crypto op for the ESP packet at esp whose ciphertext (payload, padding,
 * trailer) is ct_len bytes: RFC 4106 nonce = salt || IV and AAD = SPI ||
 * sequence number (section 5), with ESN the high half between them
 * (RFC 4303 2.2.1). sqn is the full 64-bit number. */
static inline void
natt_esp_op(struct natt_gcm_op *op, const struct natt_sa *sa, uint8_t *esp,
	    uint32_t ct_len, uint64_t sqn)
{
	op->key = &sa->key;
	op->data = esp + ESP_HDR_LEN + ESP_GCM_IV_LEN;
	op->len = ct_len;
	memcpy(op->nonce, sa->key.salt, 4);
	memcpy(op->nonce + 4, esp + ESP_HDR_LEN, ESP_GCM_IV_LEN);
	memcpy(op->aad, esp, 4);
	if (sa->esn) {
		uint32_t hi = rte_cpu_to_be_32((uint32_t)(sqn >> 32));

		memcpy(op->aad + 4, &hi, 4);
		memcpy(op->aad + 8, esp + 4, 4);
		op->aad_len = 12;
	} else {
		memcpy(op->aad + 4, esp + 4, 4);
		op->aad_len = 8;
	}
}

/** Create this worker's SA tables (entries per direction). 0 or -errno. */
int natt_sa_tables_create(struct natt_worker *w, uint32_t entries);
/** Delete every SA (keys wiped) and free the tables (SA hashes, LPM). */
void natt_sa_tables_destroy(struct natt_worker *w);

/** Install an SA from a control message. 0 or -errno (nothing changed). */
int natt_sa_add(struct natt_worker *w, const struct natt_ctl_sa *m);
/** Update peer/selectors/name of an installed SA; keys and window untouched. */
int natt_sa_update(struct natt_worker *w, const struct natt_ctl_sa *m);
/** Unpublish an SA, wipe its keys, free it; an inbound SA with grace_ms
 *  only after that grace (natt_sa_retire_poll). 0 or -ENOENT. */
int natt_sa_del(struct natt_worker *w, const struct natt_ctl_sa_del *m);
/** Delete inbound SAs whose rekey grace ended (a few per call). */
unsigned int natt_sa_retire_poll(struct natt_worker *w, uint64_t now);


/** The first tunnel seen at addr:port (network order), from this worker's
 *  peer table (the others follow through w->peer_next); NATT_PEER_NONE if
 *  none. */
uint32_t natt_peer_first(struct natt_worker *w, uint32_t addr, uint16_t port);
/** Record that tunnel tunnel_id (owned by owner) is now seen at addr:port
 *  (addr 0: nowhere); takes it off the key it had before. O(1). */
void natt_peer_set(struct natt_worker *w, uint32_t tunnel_id, uint16_t owner,
		   uint32_t addr, uint16_t port);

/** Route a tunnel's remote_ts prefixes to it / remove them. 0 or -errno. */
int natt_route_add(struct natt_worker *w, const struct natt_ctl_route *r);
int natt_route_del(struct natt_worker *w, const struct natt_ctl_route *r);

#endif /* NATT_SA_H */
