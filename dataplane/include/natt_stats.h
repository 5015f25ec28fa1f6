/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * natt_stats.h - layout of the NATT_STATS_MZ memzone.
 *
 *   struct natt_stats_hdr                       (written once at start-up)
 *   struct natt_worker_stats  [n_workers]       (worker i writes block i only)
 *   struct natt_tunnel_stats  [max_tunnels]     (written by the tunnel's owner)
 *
 * Accounting: every packet received (rx_packets, TAP ports included) is
 * sent (tx_packets, TAP ports included: a packet punted to the host is sent
 * on the port's TAP), dropped under one reason, or cut into fragments before
 * encryption (fragmented); packets the gateway makes are fragments_out,
 * icmp_too_big_sent, keepalives_sent and arp_requests (ARP replies reuse
 * the request's buffer). So, summed over the workers:
 *   rx + fragments_out + icmp_too_big_sent + keepalives_sent + arp_requests
 *        = tx + drops + fragmented (+ what sits in handoff rings/TX buffers).
 *
 * Every block is cache-line aligned and has exactly one writer, so counters
 * are plain increments; readers (natt-control, --stats-json, telemetry) sum
 * the worker blocks and may see a counter a few packets old, never torn
 * (64-bit aligned stores are atomic on the platforms we run on).
 *
 * Times are TSC values of the dataplane; convert with tsc_hz and the
 * start_tsc / start_unix_ns pair in the header.
 */
#ifndef NATT_STATS_H
#define NATT_STATS_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "natt_ctl.h"
#include "natt_drop.h"

#define NATT_STATS_MAGIC 0x4e415454u /* "NATT" */
#define NATT_STATS_VERSION 5
#define NATT_CACHE_LINE 64

/* _(ENUM, "name") - per-worker good-path counters */
#define NATT_FOREACH_COUNTER(_)                                                \
	_(RX, "rx_packets")                                                    \
	_(RX_BYTES, "rx_bytes")                                                \
	_(TX, "tx_packets")                                                    \
	_(TX_BYTES, "tx_bytes")                                                \
	_(DECRYPTED, "decrypted")                                              \
	_(ENCRYPTED, "encrypted")                                              \
	_(FRAGMENTED, "fragmented")                                            \
	_(FRAGMENTS, "fragments_out")                                          \
	_(MSS_CLAMPED, "mss_clamped")                                          \
	_(ICMP_TOO_BIG, "icmp_too_big_sent")                                   \
	_(ICMP_LIMITED, "icmp_rate_limited")                                   \
	_(ICMP_SUPPRESSED, "icmp_suppressed")                                  \
	_(NAT_MAPPING, "nat_mapping_changes")                                  \
	_(IDLE_EVENTS, "idle_events")                                          \
	_(SA_EXPIRED, "grace_sa_expired")                                      \
	_(HANDOFF_OUT, "handoff_out")                                          \
	_(HANDOFF_IN, "handoff_in")                                            \
	_(CTL_MSGS, "ctl_messages")                                            \
	_(EVT_LOST, "events_lost")                                             \
	_(LOOPS, "poll_loops")                                                 \
	_(EXCEPTION, "exception_punted")                                       \
	_(HOST_TX, "host_tx")                                                  \
	_(ARP_REPLIES, "arp_replies")                                          \
	_(ARP_REQUESTS, "arp_requests")                                        \
	_(KEEPALIVES_IN, "keepalives_attributed")                              \
	_(KEEPALIVES_SENT, "keepalives_sent")                                  \
	_(NAT_FOLLOWED, "nat_mapping_followed")

enum natt_counter {
#define NATT_CNT_ENUM_(e, n) NATT_CNT_##e,
	NATT_FOREACH_COUNTER(NATT_CNT_ENUM_)
#undef NATT_CNT_ENUM_
	NATT_CNT_MAX
};

static inline const char *
natt_counter_name(unsigned int c)
{
	static const char *const names[] = {
#define NATT_CNT_NAME_(e, n) n,
		NATT_FOREACH_COUNTER(NATT_CNT_NAME_)
#undef NATT_CNT_NAME_
	};
	return c < NATT_CNT_MAX ? names[c] : "?";
}

struct natt_port_stats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
};

struct natt_worker_stats {
	uint64_t drops[NATT_DROP_MAX];
	uint64_t counters[NATT_CNT_MAX];
	struct natt_port_stats port[NATT_MAX_PORTS];
	uint64_t last_rx_tsc;   /* TSC of the last burst that brought a packet */
	uint64_t generation;    /* last configuration generation applied */
	uint8_t active;         /* 1 once the first COMMIT was applied */
	uint8_t pad8[3];
	uint32_t idle_timeout_s; /* PARAMS as this worker applied them */
	uint32_t exception_rate;
} __attribute__((aligned(NATT_CACHE_LINE)));

/* One per tunnel id; 4 cache lines, written by the tunnel's owner only.
 * Valid when in_spi or out_spi != 0. A forwarded packet writes the first
 * line only (either direction). */
struct natt_tunnel_stats {
	uint64_t in_packets;
	uint64_t in_bytes;       /* inner IPv4 bytes delivered */
	uint64_t out_packets;
	uint64_t out_bytes;
	uint64_t last_seen_tsc;  /* last authenticated inbound packet, 0 = never */
	uint64_t auth_failed;
	uint64_t replay;
	uint64_t last_out_tsc;   /* last packet sealed, 0 = never */
	/* second line: identity, written at SA install by the owner */
	char name[NATT_NAME_LEN];
	uint32_t in_spi;
	uint32_t out_spi;
	uint32_t remote_addr;    /* current peer mapping, network order */
	uint16_t remote_port;    /* network order */
	uint16_t owner;
	uint64_t created_tsc;    /* when the tunnel id was (re)installed */
	uint64_t policy;
	/* third line: NAT and liveness */
	uint32_t prev_remote_addr;  /* mapping before the last change */
	uint16_t prev_remote_port;
	uint8_t idle;               /* 1 while an IDLE event stands */
	uint8_t pad8;
	uint32_t mapping_changes;
	uint32_t grace_spi;         /* old inbound SPI still accepted, 0 = none */
	uint64_t last_mapping_tsc;  /* when the mapping last changed */
	uint64_t idle_mark_tsc;     /* last_seen (or created) when IDLE was raised */
	uint64_t keepalives;        /* NAT keepalives received */
	uint64_t last_keepalive_tsc;
	uint64_t reserved[2];
	/* fourth line: NAT-T behaviour and outbound drops, for diagnosis */
	uint64_t keepalives_sent;   /* NAT keepalives we sent (keepalive_s) */
	uint64_t last_keepalive_sent_tsc;
	uint64_t too_big;           /* outbound: DF set and over the MTU (ICMP back) */
	uint64_t fragmented;        /* outbound: cut before encryption (DF clear) */
	uint64_t bad_trailer;       /* inbound: authenticated, bad padding or inner */
	uint32_t seen_addr;         /* last authenticated source, network order */
	uint16_t seen_port;         /*   (differs from remote_* when pinned) */
	uint8_t pinned;             /* nat_mapping_change = "pin" */
	uint8_t pad8b;
	uint16_t keepalive_s;       /* configured keepalive interval, 0 = off */
	uint16_t pad16;
	uint32_t pin_ignored;       /* mapping changes not followed (pinned) */
	uint64_t reserved2;
} __attribute__((aligned(NATT_CACHE_LINE)));

_Static_assert(sizeof(struct natt_tunnel_stats) == 4 * NATT_CACHE_LINE,
	       "tunnel counters are four cache lines");

struct natt_stats_hdr {
	uint32_t magic;          /* NATT_STATS_MAGIC */
	uint32_t version;        /* NATT_STATS_VERSION */
	uint32_t n_workers;
	uint32_t max_tunnels;
	uint32_t n_ports;        /* the operator's ports 0..n_ports-1 */
	uint32_t n_eth_ports;    /* all ethdev ports, TAPs included */
	uint64_t tsc_hz;
	uint64_t start_tsc;
	uint64_t start_unix_ns;  /* CLOCK_REALTIME at start_tsc */
	char port_names[NATT_MAX_PORTS][NATT_NAME_LEN]; /* DPDK device names */
	/* exception path: port id of each port's TAP, NATT_NO_TAP if none */
	uint8_t tap_of[NATT_MAX_PORTS];
	char tap_names[NATT_MAX_PORTS][16];   /* host interface names */
	/* next hops resolved by ARP (IFACE next_hop_ip): written by the worker
	 * that sees the reply, rarely; read by every worker once a millisecond */
	struct natt_neigh {
		uint32_t ip;             /* network order, 0 = static MAC */
		uint32_t mac_ip;         /* the address mac was learned for */
		uint64_t mac;            /* low 48 bits, NATT_NEIGH_VALID set once known */
		uint64_t updated_tsc;
	} neigh[NATT_MAX_PORTS];
} __attribute__((aligned(NATT_CACHE_LINE)));

#define NATT_NO_TAP 0xffu
#define NATT_NEIGH_VALID (1ull << 63)

/** The MAC a port's next hop resolved to (low 48 bits, first byte in bits
 *  47..40), or 0 if not (yet) known for the address it has now. */
static inline uint64_t
natt_neigh_mac(const struct natt_neigh *n)
{
	uint64_t mac = __atomic_load_n(&n->mac, __ATOMIC_ACQUIRE);

	return (mac & NATT_NEIGH_VALID) && n->ip != 0 && n->mac_ip == n->ip ? mac : 0;
}

static inline struct natt_worker_stats *
natt_stats_worker(struct natt_stats_hdr *h, unsigned int w)
{
	return (struct natt_worker_stats *)(h + 1) + w;
}

static inline struct natt_tunnel_stats *
natt_stats_tunnel(struct natt_stats_hdr *h, uint32_t id)
{
	return (struct natt_tunnel_stats *)(natt_stats_worker(h, h->n_workers)) + id;
}

/** Every worker block added up (counters, drops, ports; latest last_rx_tsc):
 *  what readers show as the dataplane's totals. */
static inline void
natt_stats_sum(struct natt_stats_hdr *h, struct natt_worker_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (uint32_t w = 0; w < h->n_workers; w++) {
		const struct natt_worker_stats *s = natt_stats_worker(h, w);

		for (unsigned int i = 0; i < NATT_DROP_MAX; i++)
			sum->drops[i] += s->drops[i];
		for (unsigned int i = 0; i < NATT_CNT_MAX; i++)
			sum->counters[i] += s->counters[i];
		for (unsigned int p = 0; p < NATT_MAX_PORTS; p++) {
			sum->port[p].rx_packets += s->port[p].rx_packets;
			sum->port[p].rx_bytes += s->port[p].rx_bytes;
			sum->port[p].tx_packets += s->port[p].tx_packets;
			sum->port[p].tx_bytes += s->port[p].tx_bytes;
		}
		if (s->last_rx_tsc > sum->last_rx_tsc)
			sum->last_rx_tsc = s->last_rx_tsc;
	}
}

static inline size_t
natt_stats_size(uint32_t n_workers, uint32_t max_tunnels)
{
	return sizeof(struct natt_stats_hdr) +
	       (size_t)n_workers * sizeof(struct natt_worker_stats) +
	       (size_t)max_tunnels * sizeof(struct natt_tunnel_stats);
}

#endif /* NATT_STATS_H */
