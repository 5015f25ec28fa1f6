/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * natt_ctl.h - the contract between natt-control and natt-dataplane.
 *
 * Objects (created by natt-dataplane, the DPDK primary, looked up by name by
 * natt-control, a DPDK secondary started with the same --file-prefix):
 *
 *   NATT_CTL_RING_FMT ("natt_ctl_%u")  one per worker, element ring of
 *       struct natt_ctl_msg, single producer (natt-control), single consumer
 *       (that worker). A worker drains it between bursts and is the only
 *       writer of its SA tables, so the fast path takes no lock.
 *   NATT_EVT_RING ("natt_evt")  element ring of struct natt_evt, multi
 *       producer (every worker), single consumer (natt-control). Carries acks
 *       and, later, events (NAT mapping change, lifetimes, idle peers).
 *       When nobody consumes it, producers drop and count (evt_lost).
 *   NATT_STATS_MZ ("natt_stats")  counters, laid out in natt_stats.h.
 *
 * Messages are fixed-size (NATT_CTL_MSG_SIZE bytes), host byte order, and
 * start with struct natt_ctl_hdr. hdr.version must equal NATT_CTL_VERSION; a
 * worker NACKs any message it does not understand and applies nothing of it.
 *
 * A configuration is applied as a batch: any number of IFACE / SA_ADD /
 * SA_UPDATE / SA_DEL messages, then one COMMIT carrying the batch's
 * generation. Each worker applies messages in ring order and answers:
 *   - NATT_EVT_NACK for every message it could not apply (cookie = that
 *     message's cookie, status = negative errno), immediately;
 *   - NATT_EVT_COMMIT_ACK for the COMMIT (cookie = generation, status = 0 if
 *     every message of the batch applied, else the first error).
 * natt-control treats a batch as applied when every worker acked its COMMIT.
 * A worker forwards no packet before it has applied its first COMMIT: no
 * packet is forwarded before policy is loaded.
 *
 * SA ownership: an SA's mutable state (replay window, sequence counter) has one
 * writer, the worker msg.sa.owner. Every worker receives every SA_ADD, but
 * only the owner's copy carries key and salt (zeroed in the others); the
 * owner installs the SA with its keys, the others only record SPI -> owner so
 * a packet that RSS delivered elsewhere is handed to the owner (handoff ring).
 * All SAs of one tunnel share the tunnel's owner, and per-tunnel counters
 * (natt_stats.h) are written by that owner only.
 *
 * Deletion (SA_DEL) unpublishes the SPI and wipes the expanded keys in the
 * worker that held them before the memory is freed. SA_UPDATE changes the
 * mutable parameters of an installed SA (peer address/port, selectors, name)
 * and never touches keys, replay window or sequence counter; a rekey is an
 * SA_ADD of the new SPI followed later by an SA_DEL of the old one.
 *
 * Outbound routing: ROUTE_ADD / ROUTE_DEL carry up to NATT_CTL_ROUTES_PER_MSG
 * inner destination prefixes (the tunnel's remote_ts) for one tunnel id; every
 * worker installs them in its own LPM table (longest prefix wins). The
 * tunnel's newest outbound SA_ADD is the SA those packets are sealed with; a
 * worker that does not own the tunnel hands the packets to the owner, so the
 * sequence counter has one writer. A prefix already routed to another tunnel
 * is refused (-EEXIST). PARAMS sets the dataplane-wide knobs (MSS clamp, outer
 * DF policy, ICMP rate).
 *
 * Rekey grace: an SA_DEL of an inbound SA with grace_ms != 0 does not delete
 * it at once. The SA keeps authenticating packets (with its own replay
 * window) for grace_ms, then each worker deletes its entry by itself, wipes
 * the keys and the owner posts NATT_EVT_SA_EXPIRED. natt-control installs the
 * new inbound SA first, so packets the peer sent under the old SPI before it
 * switched are not lost. An SA_DEL without grace of an SPI in grace deletes
 * it now. Flag NATT_DEL_F_IFPRESENT (SA_DEL) and NATT_ROUTE_F_IFPRESENT
 * (ROUTE_DEL) make deleting something absent a success: natt-control uses
 * them when it converges to a dataplane whose state it does not fully know,
 * and NATT_ROUTE_F_FLUSH to drop every route of a tunnel it lost track of.
 *
 * Events besides acks (all from the SA's owner):
 *   NATT_EVT_SEQ_EXHAUSTED  once per outbound SA whose sequence counter reached
 *       its end (2^32 - 1 without ESN): the SA sends nothing more (an IV is
 *       never reused) until it is replaced by a rekey.
 *   NATT_EVT_NAT_MAPPING  a packet that authenticated and passed the replay
 *       check came from another outer address/port than the tunnel's current
 *       one (addr/port new, old_addr/old_port before; network order). Once
 *       per change.
 *   NATT_EVT_IDLE  no authenticated inbound packet for idle_timeout_s (PARAMS,
 *       0 = off); once per idle period. value = seconds since the last one
 *       (or since the tunnel was installed).
 *   NATT_EVT_SA_EXPIRED  an inbound SA's rekey grace ended; it is gone.
 *
 * NAT behaviour (version 4):
 *   - A tunnel's NAT mapping is where its authenticated packets come from.
 *     When an authenticated, fresh packet that carries the highest sequence
 *     number seen so far arrives from another outer address/port, the owner
 *     raises NATT_EVT_NAT_MAPPING; unless the tunnel is pinned
 *     (NATT_SA_F_PIN) its outbound SA sends to the new mapping from that
 *     packet on (value bit NATT_EVT_MAPPING_FOLLOWED). An unauthenticated or
 *     replayed packet never moves anything.
 *   - NAT keepalives (RFC 3948 2.3) are attributed to the tunnel whose
 *     mapping they come from and count as inbound activity for idle
 *     detection. An outbound SA with keepalive_s != 0 sends a keepalive to
 *     the current mapping when nothing else went out for keepalive_s seconds.
 *   - Exception path: natt-dataplane --tap gives every port a TAP interface
 *     on the host; what the fast path does not own (IKE on 500 and behind
 *     the non-ESP marker, ARP, anything else addressed to the gateway) is
 *     punted there, at most PARAMS.exception_rate per second per worker, and
 *     what the host sends on it leaves the port. Without a TAP the dataplane
 *     answers ARP for the interface's own address itself.
 *   - IFACE.next_hop_ip with an all-zero next_hop_mac: the worker resolves
 *     the next hop by ARP (and refreshes it) instead of a static MAC.
 *
 * Version history: 1 - first version. 2 - ROUTE_ADD/DEL, PARAMS, SEQ_EXHAUSTED.
 * 3 - SA_DEL grace and flags, ROUTE_DEL flags, PARAMS idle_timeout_s, events
 * NAT_MAPPING, IDLE, SA_EXPIRED with addresses and a timestamp. 4 - SA
 * keepalive_s and NATT_SA_F_PIN, IFACE next_hop_ip, PARAMS exception_rate,
 * NAT_MAPPING value flags.
 */
#ifndef NATT_CTL_H
#define NATT_CTL_H

#include <stdint.h>

#define NATT_CTL_VERSION 4

#define NATT_CTL_RING_FMT "natt_ctl_%u"
#define NATT_EVT_RING "natt_evt"
#define NATT_STATS_MZ "natt_stats"

#define NATT_CTL_RING_SIZE 4096u  /* messages per worker ring (power of 2) */
#define NATT_EVT_RING_SIZE 16384u

#define NATT_MAX_WORKERS 64
#define NATT_MAX_PORTS 8
#define NATT_NAME_LEN 32          /* tunnel/interface names, NUL included */
#define NATT_MAX_TS 16            /* traffic selectors per SA message */
#define NATT_MAX_KEY_LEN 32       /* AES-256 */
#define NATT_SALT_LEN 4           /* RFC 4106 section 8.1 */
#define NATT_MAX_REPLAY_WINDOW 4096
#define NATT_DEFAULT_MAX_TUNNELS 65536

enum natt_ctl_type {
	NATT_CTL_IFACE = 1,     /* struct natt_ctl_iface */
	NATT_CTL_SA_ADD = 2,    /* struct natt_ctl_sa */
	NATT_CTL_SA_UPDATE = 3, /* struct natt_ctl_sa (keys ignored) */
	NATT_CTL_SA_DEL = 4,    /* struct natt_ctl_sa_del */
	NATT_CTL_COMMIT = 5,    /* header only; cookie = generation */
	NATT_CTL_ROUTE_ADD = 6, /* struct natt_ctl_route */
	NATT_CTL_ROUTE_DEL = 7, /* struct natt_ctl_route */
	NATT_CTL_PARAMS = 8,    /* struct natt_ctl_params */
};

enum natt_df_mode {
	NATT_DF_COPY = 0,       /* outer DF = inner DF (default) */
	NATT_DF_SET = 1,
	NATT_DF_CLEAR = 2,
};

enum natt_if_role {
	NATT_ROLE_NONE = 0,
	NATT_ROLE_OUTSIDE = 1,  /* faces the peers: ESP-in-UDP/4500, IKE */
	NATT_ROLE_INSIDE = 2,   /* faces the protected LAN: clear traffic */
};

enum natt_algo {
	NATT_ALGO_AES_GCM_128 = 1, /* RFC 4106, 16-byte ICV */
	NATT_ALGO_AES_GCM_256 = 2,
};

enum natt_sa_dir {
	NATT_DIR_IN = 0,
	NATT_DIR_OUT = 1,
};

#define NATT_SA_F_ESN 0x1           /* RFC 4303 extended sequence numbers */
#define NATT_SA_F_RESET_STATS 0x2   /* first SA of a (new) tunnel id: zero its counters */
#define NATT_SA_F_PIN 0x4           /* NAT mapping changes are reported, never followed */

struct natt_ctl_hdr {
	uint16_t version;   /* NATT_CTL_VERSION */
	uint16_t type;      /* enum natt_ctl_type */
	uint32_t cookie;    /* echoed in NACKs; generation for COMMIT */
};

/* IPv4 addresses and ports are in network byte order, like on the wire. */
struct natt_ctl_ts {
	uint32_t addr;      /* network order, host bits zero */
	uint8_t plen;       /* 0..32 */
	uint8_t pad[3];
};

struct natt_ctl_iface {
	uint16_t port;      /* DPDK port id */
	uint8_t role;       /* enum natt_if_role */
	uint8_t pad;
	uint32_t addr;      /* our IPv4 address on that side, network order */
	uint8_t next_hop_mac[6];   /* all zero: resolve next_hop_ip by ARP */
	uint16_t mtu;
	char name[NATT_NAME_LEN];
	uint32_t next_hop_ip;      /* network order, 0 = none (static MAC) */
};

struct natt_ctl_sa {
	uint32_t spi;            /* host order; never 0 */
	uint32_t tunnel_id;      /* < max_tunnels; index of per-tunnel counters */
	uint8_t dir;             /* enum natt_sa_dir */
	uint8_t algo;            /* enum natt_algo */
	uint8_t key_len;         /* 16 or 32 */
	uint8_t flags;           /* NATT_SA_F_* */
	uint16_t owner;          /* worker index that owns this SA's state */
	uint16_t replay_window;  /* bits, 0 = anti-replay off, <= 4096 */
	uint32_t remote_addr;    /* peer's outer (NAT-mapped) address, network order */
	uint32_t local_addr;     /* our outer address, network order */
	uint16_t remote_port;    /* network order */
	uint16_t local_port;     /* network order */
	uint8_t n_ts;            /* selectors used in ts[] */
	uint8_t pad;
	uint16_t keepalive_s;    /* outbound: NAT keepalive after this many idle
				  * seconds, 0 = never */
	uint8_t key[NATT_MAX_KEY_LEN];
	uint8_t salt[NATT_SALT_LEN];
	char name[NATT_NAME_LEN];  /* tunnel name */
	/* inbound: allowed inner sources (remote_ts); outbound: local_ts */
	struct natt_ctl_ts ts[NATT_MAX_TS];
};

#define NATT_DEL_F_IFPRESENT 0x1     /* absent is not an error */

struct natt_ctl_sa_del {
	uint32_t spi;
	uint8_t dir;
	uint8_t flags;           /* NATT_DEL_F_* */
	uint8_t pad[2];
	uint32_t tunnel_id;      /* the SA's tunnel */
	uint32_t grace_ms;       /* inbound only: keep accepting it this long */
};

/* Largest inner IPv4 packet whose ESP-in-UDP encapsulation (AES-GCM) fits
 * an outer packet of mtu bytes: 20 IP + 8 UDP + 8 ESP + 8 IV + the packet
 * and its 2-byte trailer padded to a multiple of 4 + 16 ICV. 1438 for 1500. */
static inline uint16_t
natt_inner_mtu(uint16_t mtu)
{
	const uint32_t ovh = 20 + 8 + 8 + 8 + 16;

	if (mtu < ovh + 24)
		return 0;
	return (uint16_t)(((mtu - ovh) & ~3u) - 2);
}

#define NATT_CTL_ROUTES_PER_MSG 28

/* Prefixes every worker's FIB holds when started with max_tunnels: two per
 * tunnel on average. natt-control refuses a configuration with more. */
static inline uint32_t
natt_max_routes(uint32_t max_tunnels)
{
	return max_tunnels < 2048 ? 4096 : 2 * max_tunnels;
}

#define NATT_ROUTE_F_IFPRESENT 0x1   /* ROUTE_DEL: skip prefixes the tunnel
				      * does not hold instead of refusing */
#define NATT_ROUTE_F_FLUSH 0x2       /* ROUTE_DEL: every prefix of the tunnel,
				      * pfx[] unused (walks the whole table) */

/* Inner destination prefixes routed into tunnel tunnel_id (its remote_ts). */
struct natt_ctl_route {
	uint32_t tunnel_id;
	uint8_t n;               /* prefixes used in pfx[] */
	uint8_t flags;           /* NATT_ROUTE_F_* */
	uint8_t pad[2];
	struct natt_ctl_ts pfx[NATT_CTL_ROUTES_PER_MSG];
};

struct natt_ctl_params {
	uint16_t mss_clamp;      /* TCP MSS ceiling on SYNs both ways, 0 = off */
	uint8_t df_mode;         /* enum natt_df_mode */
	uint8_t pad;
	uint32_t icmp_rate;      /* ICMP frag-needed per second per worker, 0 = none */
	uint32_t idle_timeout_s; /* NATT_EVT_IDLE after this long, 0 = off */
	uint32_t exception_rate; /* packets per second per worker punted to the
				  * host (TAP), 0 = none */
};

#define NATT_CTL_MSG_SIZE 256

struct natt_ctl_msg {
	struct natt_ctl_hdr hdr;
	union {
		struct natt_ctl_iface iface;
		struct natt_ctl_sa sa;
		struct natt_ctl_sa_del del;
		struct natt_ctl_route route;
		struct natt_ctl_params params;
		uint8_t raw[NATT_CTL_MSG_SIZE - sizeof(struct natt_ctl_hdr)];
	} u;
};

_Static_assert(sizeof(struct natt_ctl_msg) == NATT_CTL_MSG_SIZE,
	       "ring element size is part of the contract");
_Static_assert(sizeof(struct natt_ctl_sa) <= sizeof(((struct natt_ctl_msg *)0)->u.raw),
	       "SA message must fit");
_Static_assert(sizeof(struct natt_ctl_route) <= sizeof(((struct natt_ctl_msg *)0)->u.raw),
	       "route message must fit");
_Static_assert(NATT_MAX_TS <= NATT_CTL_ROUTES_PER_MSG,
	       "one ROUTE_ADD carries all remote_ts of a tunnel");

enum natt_evt_type {
	NATT_EVT_NACK = 1,
	NATT_EVT_COMMIT_ACK = 2,
	NATT_EVT_SEQ_EXHAUSTED = 3, /* spi, tunnel_id: outbound SA stopped */
	NATT_EVT_NAT_MAPPING = 4,   /* spi, tunnel_id, addr/port, old_addr/old_port */
	NATT_EVT_IDLE = 5,          /* tunnel_id, value = idle seconds */
	NATT_EVT_SA_EXPIRED = 6,    /* spi, tunnel_id: grace over, SA deleted */
};

/* NATT_EVT_NAT_MAPPING value bits */
#define NATT_EVT_MAPPING_FOLLOWED 0x1 /* outbound moved to the new mapping */

struct natt_evt {
	uint16_t version;   /* NATT_CTL_VERSION */
	uint16_t type;      /* enum natt_evt_type */
	uint16_t worker;
	uint16_t pad;
	uint32_t cookie;
	int32_t status;     /* 0 or negative errno */
	uint32_t spi;       /* for NACKs of SA messages */
	uint32_t tunnel_id;
	uint64_t tsc;       /* dataplane TSC when it happened (natt_stats.h) */
	uint32_t addr;      /* network order */
	uint32_t old_addr;
	uint16_t port;      /* network order */
	uint16_t old_port;
	uint32_t value;
	uint8_t reserved[16];
};

_Static_assert(sizeof(struct natt_evt) == 64, "event element size is part of the contract");

#endif /* NATT_CTL_H */
