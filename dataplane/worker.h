/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * worker.h - the per-lcore context. Everything a worker touches per packet
 * lives here and is passed explicitly; nothing here is written by another
 * core except `stop` (written once by the main lcore).
 */
#ifndef NATT_WORKER_H
#define NATT_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "classify.h"
#include "crypto.h"
#include "ipv4.h"
#include "natt_ctl.h"
#include "natt_stats.h"

#define NATT_MAX_BURST 32
#define NATT_CTL_BUDGET 64      /* control messages applied per loop */
#define NATT_HANDOFF_RING_SIZE 4096
#define NATT_FRAG_MAX (4 * NATT_MAX_BURST) /* fragments made per burst */
/* crypto ops per burst: outbound, fragments take the place of their packet */
#define NATT_MAX_OPS (NATT_MAX_BURST + NATT_FRAG_MAX)
/* FIB next hop of an address no prefix covers (DIR24_8 4-byte entries hold
 * values below 2^31; tunnel ids stay below max_tunnels) */
#define NATT_FIB_NONE 0x7fffffffu

struct rte_hash;
struct natt_spi_table;
struct rte_fib;
struct rte_mempool;
struct rte_ring;

/* The outbound SA a tunnel's packets are sealed with: a struct natt_sa we
 * own, a tagged owner id (see sa.h), or NULL. Indexed by tunnel id. */
struct natt_out_slot {
	void *sa;
	uint32_t spi;
	uint8_t aes256;               /* its key: 4 lines of round keys, not 3 */
};

/* An inbound SA in its rekey grace (sa_table.c). */
struct natt_retire {
	uint32_t spi;
	uint32_t tunnel_id;
	void *v;                      /* its hash value when retired */
	uint64_t until;               /* TSC */
};

/* At most rate events per second (ICMP errors sent, packets punted). */
struct natt_rate {
	uint32_t rate;                /* per second, 0 = never */
	uint32_t count;               /* in the current second */
	uint64_t window;              /* TSC the current second started */
};

struct natt_port {
	uint8_t role;                 /* enum natt_if_role, NONE = not polled */
	bool resolved;                /* next_hop is known (static, or by ARP) */
	uint16_t tap;                 /* port id of its TAP, UINT16_MAX = none */
	uint64_t arp_next_tsc;        /* worker 0: next ARP request for next_hop */
	uint32_t next_hop_ip;         /* network order: resolve by ARP, 0 = static */
	uint16_t mtu;
	uint32_t addr;                /* network order */
	struct rte_ether_addr mac;    /* ours */
	struct rte_ether_addr next_hop;
	uint16_t n_tx;
	struct rte_mbuf *tx[NATT_MAX_BURST];
};

struct natt_worker {
	/* read-mostly */
	uint16_t id;
	uint16_t n_workers;
	uint16_t queue;               /* RX/TX queue id on every port */
	uint16_t n_ports;
	uint16_t outside;             /* port ids, UINT16_MAX = not configured */
	uint16_t inside;
	bool active;                  /* first COMMIT applied */
	int batch_err;                /* first error since the last COMMIT */
	IMB_MGR *mgr;
	bool gcm_vaes;                /* mgr keeps GHASH keys in the VAES layout */
	struct natt_spi_table *sa_in;  /* SPI -> SA (spi_table.h) */
	struct natt_spi_table *sa_out;
	/* Peer table (sa_table.c): outer addr:port -> the first of the tunnels
	 * seen there; they are chained through peer_next/peer_prev (the CHILD
	 * SAs of one IKE SA, say, share a NAT mapping). Per tunnel id: */
	struct rte_hash *peers;
	uint64_t *peer_of;            /* the key the tunnel is chained under, 0 = none */
	uint32_t *peer_next;          /* next / previous tunnel of that key, */
	uint32_t *peer_prev;          /*   NATT_PEER_NONE at the ends */
	uint16_t *peer_own;           /* the tunnel's owner */
	uint32_t n_keepalive;         /* our outbound SAs with keepalive_s != 0 */
	struct rte_fib *fib;          /* inner destination -> tunnel id */
	struct natt_out_slot *out;    /* [max_tunnels] */
	uint32_t default_route;       /* tunnel id of a /0 remote_ts, or UINT32_MAX */
	uint32_t tag_epoch;           /* see NATT_SA_EPOCH_SHIFT */
	struct natt_retire *retire;   /* [retire_cap] inbound SAs in rekey grace */
	uint32_t n_retire;
	uint32_t retire_cap;
	uint32_t retire_next;         /* next entry the timer looks at */
	uint32_t idle_timeout_s;      /* 0 = off */
	uint32_t idle_next_id;        /* next tunnel id the idle scan looks at */
	uint64_t idle_timeout_tsc;
	uint64_t idle_scan_tsc;       /* next time the idle scan runs */
	uint16_t inner_mtu;           /* largest inner packet that fits the outside MTU */
	uint16_t mss_clamp;           /* 0 = off */
	uint8_t df_mode;              /* enum natt_df_mode */
	uint16_t ip_id;               /* next outer IP ID (stride n_workers) */
	struct natt_rate icmp;        /* ICMP frag-needed sent */
	struct natt_rate exception;   /* packets punted to the host */
	uint16_t n_taps;              /* ports with a TAP */
	uint16_t n_eth_ports;         /* every ethdev port, TAPs included */
	uint64_t tap_poll_tsc;        /* next look at the TAPs (host.c) */
	uint64_t neigh_poll_tsc;      /* next look at the ARP neighbours */
	uint64_t tsc_hz;
	struct rte_mempool *pool;     /* for fragments and ICMP */
	struct rte_ring *ctl;         /* natt_ctl_<id>: commands in */
	struct rte_ring *evt;         /* natt_evt: acks and events out */
	struct rte_ring *handoff;     /* ours: packets other workers pass us */
	struct rte_ring *const *handoff_of; /* every worker's, by id */
	struct rte_ring *peer_upd;    /* ours: mappings other workers' tunnels moved to */
	struct rte_ring *const *peer_upd_of; /* every worker's, by id (NULL: one worker) */
	struct natt_stats_hdr *hdr;
	struct natt_worker_stats *st; /* our block of the stats memzone */
	uint32_t max_tunnels;
	uint64_t now;                 /* TSC at the start of this loop */
	struct natt_port port[NATT_MAX_PORTS];

	/* burst scratch: struct-of-arrays, sized by NATT_MAX_BURST (no VLAs) */
	struct natt_esp_meta meta[NATT_MAX_BURST];
	struct rte_mbuf *esp_m[NATT_MAX_BURST];
	uint32_t spi_home[NATT_MAX_BURST];  /* home bucket of each SPI */
	void *sa_v[NATT_MAX_BURST];
	struct natt_sa *op_sa[NATT_MAX_OPS];
	struct rte_mbuf *op_m[NATT_MAX_OPS];
	uint64_t op_sqn[NATT_MAX_OPS];
	uint32_t op_peer_addr[NATT_MAX_BURST]; /* inbound: outer source */
	uint16_t op_peer_port[NATT_MAX_BURST];
	uint16_t op_len[NATT_MAX_OPS];     /* outbound: inner bytes */
	struct natt_gcm_op ops[NATT_MAX_OPS];
	uint32_t dst_ip[NATT_MAX_BURST];   /* outbound: host order, for the LPM */
	uint16_t in_len[NATT_MAX_BURST];   /* outbound: inner IPv4 total length */
	uint64_t next_hop[NATT_MAX_BURST]; /* FIB answers: tunnel id or NATT_FIB_NONE */

	volatile bool stop __rte_cache_aligned; /* set by the main lcore */
} __rte_cache_aligned;

/** Is there room for one more event of r this second? Counts it if so. */
static inline bool
natt_rate_ok(struct natt_worker *w, struct natt_rate *r)
{
	if (w->now - r->window >= w->tsc_hz) {
		r->window = w->now;
		r->count = 0;
	}
	if (r->count >= r->rate)
		return false;
	r->count++;
	return true;
}

/** Free m and count it under reason r. The one way a packet is dropped. */
static inline void
natt_drop(struct natt_worker *w, struct rte_mbuf *m, unsigned int r)
{
	w->st->drops[r]++;
	rte_pktmbuf_free(m);
}

/** Send what port p has queued; unsent packets are tx_full drops. */
void natt_tx_flush_port(struct natt_worker *w, uint16_t p);

/** MSS clamp of a forwarded inner packet (both directions), counted. */
static inline void
natt_mss_apply(struct natt_worker *w, struct rte_ipv4_hdr *ip, uint32_t tot)
{
	if (w->mss_clamp != 0 && ip->next_proto_id == IPPROTO_TCP &&
	    natt_mss_clamp(ip, tot, w->mss_clamp))
		w->st->counters[NATT_CNT_MSS_CLAMPED]++;
}

/** Pass m to the worker that owns its SA (handoff ring). */
static inline void
natt_handoff(struct natt_worker *w, struct rte_mbuf *m, uint16_t owner)
{
	if (unlikely(owner >= w->n_workers ||
		     rte_ring_mp_enqueue(w->handoff_of[owner], m) != 0)) {
		natt_drop(w, m, NATT_DROP_HANDOFF_FULL);
		return;
	}
	w->st->counters[NATT_CNT_HANDOFF_OUT]++;
}

/** Queue m for TX on port p; flushed every loop. */
static inline void
natt_tx(struct natt_worker *w, uint16_t p, struct rte_mbuf *m)
{
	struct natt_port *pt = &w->port[p];

	if (unlikely(pt->n_tx == NATT_MAX_BURST))
		natt_tx_flush_port(w, p);
	pt->tx[pt->n_tx++] = m;
}

/** Next outer IPv4 ID, host order: a stride of n_workers from w->id, so
 *  workers never hand out the same ID. */
static inline uint16_t
natt_next_ip_id(struct natt_worker *w)
{
	uint16_t id = w->ip_id;

	w->ip_id = (uint16_t)(w->ip_id + w->n_workers);
	return id;
}

/** The latest of three TSC values. */
static inline uint64_t
natt_tsc_latest(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a > b ? a : b;

	return m > c ? m : c;
}

/** A new frame of len bytes after the Ethernet header, from port p to dst
 *  (NULL: p's next hop), or NULL if no mbuf; *m receives it. */
static inline struct rte_ether_hdr *
natt_frame_new(struct natt_worker *w, uint16_t p, const struct rte_ether_addr *dst,
	       uint16_t ethertype, uint16_t len, struct rte_mbuf **m)
{
	struct rte_ether_hdr *eth;

	*m = rte_pktmbuf_alloc(w->pool);
	eth = *m == NULL ? NULL : (struct rte_ether_hdr *)rte_pktmbuf_append(*m,
							(uint16_t)(RTE_ETHER_HDR_LEN + len));
	if (eth == NULL) {
		rte_pktmbuf_free(*m);
		return NULL;
	}
	eth->dst_addr = dst != NULL ? *dst : w->port[p].next_hop;
	eth->src_addr = w->port[p].mac;
	eth->ether_type = rte_cpu_to_be_16(ethertype);
	return eth;
}

/** An IPv4 header (20 bytes, DF clear, TTL 64, fresh ID, checksum) of a
 *  packet we make of tot bytes; returns what follows it. */
static inline void *
natt_ipv4_new(struct natt_worker *w, struct rte_ipv4_hdr *ip, uint8_t proto, uint32_t src,
	      uint32_t dst, uint16_t tot)
{
	*ip = (struct rte_ipv4_hdr){
		.version_ihl = RTE_IPV4_VHL_DEF,
		.total_length = rte_cpu_to_be_16(tot),
		.packet_id = rte_cpu_to_be_16(natt_next_ip_id(w)),
		.time_to_live = NATT_OUTER_TTL,
		.next_proto_id = proto,
		.src_addr = src,
		.dst_addr = dst,
	};
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return ip + 1;
}

struct natt_sa;

/** A NAT keepalive from addr:port (network order): counted on every tunnel
 *  seen there (on another worker's by a message to it). Consumes m. */
void natt_keepalive_in(struct natt_worker *w, struct rte_mbuf *m, uint32_t addr,
		       uint16_t port);
/** An authenticated, newest packet of sa came from addr:port: record it and,
 *  if the tunnel's mapping moved, follow it (or report it, if pinned). */
void natt_nat_mapping_seen(struct natt_worker *w, struct natt_sa *sa, uint32_t addr,
			   uint16_t port);
/** Send tunnel tid (ours, counters t) a keepalive if it is due. */
void natt_keepalive_scan_one(struct natt_worker *w, uint32_t tid,
			     struct natt_tunnel_stats *t);

/** Is m (from a port whose address is local, network order) for the
 *  gateway's own stack: ARP, or IPv4 to our address? */
bool natt_host_bound(const struct rte_mbuf *m, uint32_t local);
/** A frame for the host from port p: to its TAP (rate-limited), or ARP
 *  answered here, or dropped under reason. Consumes m. */
void natt_host_in(struct natt_worker *w, uint16_t p, struct rte_mbuf *m,
		  unsigned int reason);
/** Between bursts: forward what the hosts sent on the TAPs, pick up ARP
 *  answers, ask for unresolved next hops. */
void natt_host_poll(struct natt_worker *w);

#define NATT_PEER_NONE UINT32_MAX
#define NATT_KA_FANOUT 64             /* tunnels one keepalive is counted on, at most */

/* Between workers, on the receiver's natt_peer_<w> ring: */
enum natt_peer_upd_kind {
	NATT_PEER_MOVED = 0,          /* the owner's tunnel is seen at addr:port now */
	NATT_PEER_KEEPALIVE = 1,      /* a keepalive for the receiver's tunnel came in */
};

struct natt_peer_upd {
	uint32_t tunnel_id;
	uint32_t addr;                /* network order */
	uint16_t port;                /* network order */
	uint16_t owner;
	uint32_t kind;                /* enum natt_peer_upd_kind */
};

#define NATT_PEER_RING_SIZE 1024

/** Tell every other worker that our tunnel tunnel_id is seen at addr:port. */
void natt_peer_upd_post(struct natt_worker *w, uint32_t tunnel_id, uint32_t addr,
			uint16_t port);
/** Apply the mapping moves and keepalives other workers posted (between
 *  bursts). */
void natt_peer_upd_drain(struct natt_worker *w);

/** Inbound: frames from the outside port, any mix of kinds. Consumes all. */
void natt_inbound(struct natt_worker *w, struct rte_mbuf **pkts, uint16_t n);

/** Outbound: clear IPv4 frames from the inside port. Consumes all. */
void natt_outbound(struct natt_worker *w, struct rte_mbuf **pkts, uint16_t n);

/** Post an event for natt-control (never blocks; counted if lost). Fills
 *  version, worker and tsc. */
void natt_evt_post(struct natt_worker *w, struct natt_evt *e);
/** natt_evt_post() of the common fields. */
void natt_evt_send(struct natt_worker *w, uint16_t type, uint32_t cookie,
		   int status, uint32_t spi, uint32_t tunnel_id);

/** Look at a slice of the tunnels we own per call: raise NATT_EVT_IDLE for
 *  those that saw nothing for idle_timeout_s, send due NAT keepalives. */
void natt_tunnel_scan(struct natt_worker *w);

/** Apply up to NATT_CTL_BUDGET control messages; returns how many. */
unsigned int natt_ctl_drain(struct natt_worker *w);

/** Worker lcore entry point (arg: struct natt_worker *). */
int natt_worker_main(void *arg);

/** After every worker stopped: process what is left in w's handoff ring and
 *  flush, so no packet stays unaccounted. Runs on the main lcore. */
void natt_worker_finish(struct natt_worker *w);

#endif /* NATT_WORKER_H */
