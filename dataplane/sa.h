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
	/* line 0: what every packet of either direction reads, the first two
	 * selectors included (one line to prefetch for the common case) */
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
	uint64_t seq;                    /* outbound: last sequence number sent */
	uint32_t outer_sum;              /* outbound: TTL/protocol and addresses of the
					  * outer IPv4 header, summed (RFC 1071) */
	uint16_t keepalive_s;            /* outbound: NAT keepalive interval, 0 = off */
	uint16_t cfg_remote_port;        /* the peer the configuration names: an */
	struct natt_ts ts[NATT_MAX_TS];  /*   update that keeps it keeps the NAT mapping */
	/* cold: control messages and timers only */
	uint32_t cfg_remote_addr;
	uint64_t grace_until;            /* inbound: TSC its rekey grace ends, 0 = live */
	struct natt_gcm_key key;         /* 64-byte aligned */
	struct replay_window rw;         /* variable size: must stay last */
};

_Static_assert(offsetof(struct natt_sa, ts) + 2 * sizeof(struct natt_ts) <= RTE_CACHE_LINE_SIZE,
	       "the per-packet fields and two selectors share the SA's first line");

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

/* Ask for what sealing or opening a small packet under sa reads: its first
 * line, the AES round keys and the lowest GHASH key powers (the last lines
 * of the key data in intel-ipsec-mb's layout, with the salt). Issued for a
 * whole burst before the first packet is touched, so that with many tunnels
 * the cache misses overlap instead of following one another. Inbound also
 * wants &sa->rw. */
static inline void
natt_sa_prefetch(const struct natt_sa *sa)
{
	const uint8_t *k = (const uint8_t *)&sa->key.kd;
	const size_t last = (sizeof(sa->key.kd) - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1);

	rte_prefetch0(sa);
	for (size_t off = 0; off < 4 * RTE_CACHE_LINE_SIZE; off += RTE_CACHE_LINE_SIZE)
		rte_prefetch0(k + off);
	rte_prefetch0(k + last - RTE_CACHE_LINE_SIZE);
	rte_prefetch0(k + last);
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
