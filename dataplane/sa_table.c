/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sa_table.c - install, update and delete SAs in one worker's tables.
 * Runs on the worker itself, between bursts: no concurrent reader exists.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <netinet/in.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_fib.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <rte_rib.h>

#include "sa.h"
#include "spi_table.h"
#include "worker.h"

/*
 * The outbound FIB: remote_ts prefixes -> tunnel id. DPDK's rte_fib (DIR-24-8
 * lookup over a RIB trie) rather than rte_lpm, whose rule table is searched
 * linearly on every add: a million /32s would take hours to load. Routes:
 * two per tunnel (natt-control refuses a file with more). tbl8 groups: one
 * per /24 that holds a longer prefix; road warriors get /32s out of a few
 * contiguous pools, so max_tunnels / 8 (at least 1024, at most 65536) covers
 * 1M tunnels numbered out of a /12. The tbl24 is a fixed 64 MB.
 */
static struct rte_fib *
fib_create(uint16_t id, uint32_t tunnels)
{
	char name[RTE_MEMZONE_NAMESIZE];
	uint32_t tbl8s = tunnels / 8 < 1024 ? 1024 : tunnels / 8;
	struct rte_fib_conf c = {
		.type = RTE_FIB_DIR24_8,
		.default_nh = NATT_FIB_NONE,
		.max_routes = (int)natt_max_routes(tunnels),
		.dir24_8 = {
			.nh_sz = RTE_FIB_DIR24_8_4B,
			.num_tbl8 = tbl8s > 65536 ? 65536 : tbl8s,
		},
	};

	snprintf(name, sizeof(name), "natt_fib_%u", id);
	return rte_fib_create(name, (int)rte_socket_id(), &c);
}

/* Entries of the SPI and peer tables for entries tunnels: twice as many, a
 * rekey holds old and new SA of a tunnel for a while. */
static uint32_t
table_capacity(uint32_t entries)
{
	return 2 * (entries < 64 ? 64 : entries);
}

/* Outer addr:port (8-byte keys) -> the tunnels seen there: which tunnels a
 * NAT keepalive (no SPI) is for. Extendable buckets so cuckoo collisions
 * never refuse an entry below the capacity. Keepalives only: not per packet. */
static struct rte_hash *
peers_create(uint16_t id, uint32_t entries)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters p = {
		.name = name,
		.entries = table_capacity(entries),
		.key_len = sizeof(uint64_t),
		.hash_func = rte_hash_crc,
		.socket_id = (int)rte_socket_id(),
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};

	snprintf(name, sizeof(name), "natt_peer_%u", id);
	return rte_hash_create(&p);
}

uint32_t
natt_peer_first(struct natt_worker *w, uint32_t addr, uint16_t port)
{
	uint64_t key = natt_peer_key(addr, port);
	void *v;

	if (rte_hash_lookup_data(w->peers, &key, &v) < 0)
		return NATT_PEER_NONE;
	return (uint32_t)(uintptr_t)v;
}

/* Take tunnel tid off the chain of its key. */
static void
peer_unlink(struct natt_worker *w, uint32_t tid)
{
	uint64_t key = w->peer_of[tid];
	uint32_t prev = w->peer_prev[tid], next = w->peer_next[tid];

	if (prev != NATT_PEER_NONE)
		w->peer_next[prev] = next;
	else if (next != NATT_PEER_NONE)       /* it was first: the next one is */
		rte_hash_add_key_data(w->peers, &key, (void *)(uintptr_t)next);
	else
		rte_hash_del_key(w->peers, &key);
	if (next != NATT_PEER_NONE)
		w->peer_prev[next] = prev;
	w->peer_of[tid] = 0;
	w->peer_next[tid] = w->peer_prev[tid] = NATT_PEER_NONE;
}

void
natt_peer_set(struct natt_worker *w, uint32_t tunnel_id, uint16_t owner, uint32_t addr,
	      uint16_t port)
{
	uint64_t key = natt_peer_key(addr, port);
	uint32_t first;

	w->peer_own[tunnel_id] = owner;
	if (w->peer_of[tunnel_id] == key && addr != 0)
		return;
	if (w->peer_of[tunnel_id] != 0)
		peer_unlink(w, tunnel_id);
	if (addr == 0)
		return;
	/* first of its key; a full table only costs this tunnel its keepalives */
	first = natt_peer_first(w, addr, port);
	if (rte_hash_add_key_data(w->peers, &key, (void *)(uintptr_t)tunnel_id) != 0)
		return;
	w->peer_of[tunnel_id] = key;
	w->peer_next[tunnel_id] = first;
	if (first != NATT_PEER_NONE)
		w->peer_prev[first] = tunnel_id;
}

static void *
per_tunnel_array(const char *what, uint32_t entries, size_t size, int fill)
{
	void *p = rte_malloc_socket(what, (size_t)entries * size, RTE_CACHE_LINE_SIZE,
				    (int)rte_socket_id());

	if (p != NULL)
		memset(p, fill, (size_t)entries * size);
	return p;
}

int
natt_sa_tables_create(struct natt_worker *w, uint32_t entries)
{
	char name[RTE_MEMZONE_NAMESIZE];

	snprintf(name, sizeof(name), "natt_sa_in_%u", w->id);
	w->sa_in = natt_spi_table_create(name, table_capacity(entries));
	snprintf(name, sizeof(name), "natt_sa_out_%u", w->id);
	w->sa_out = natt_spi_table_create(name, table_capacity(entries));
	w->peers = peers_create(w->id, entries);
	w->peer_of = per_tunnel_array("natt_peer_of", entries, sizeof(*w->peer_of), 0);
	w->peer_next = per_tunnel_array("natt_peer_next", entries, sizeof(*w->peer_next), 0xff);
	w->peer_prev = per_tunnel_array("natt_peer_prev", entries, sizeof(*w->peer_prev), 0xff);
	w->peer_own = per_tunnel_array("natt_peer_own", entries, sizeof(*w->peer_own), 0);
	w->fib = fib_create(w->id, entries);
	w->out = rte_zmalloc_socket("natt_out_slots", (size_t)entries * sizeof(*w->out),
				    RTE_CACHE_LINE_SIZE, (int)rte_socket_id());
	w->retire = rte_malloc_socket("natt_retire", (size_t)entries * sizeof(*w->retire),
				      RTE_CACHE_LINE_SIZE, (int)rte_socket_id());
	w->retire_cap = entries;
	w->default_route = UINT32_MAX;
	if (w->sa_in == NULL || w->sa_out == NULL || w->fib == NULL || w->out == NULL ||
	    w->retire == NULL || w->peers == NULL || w->peer_of == NULL ||
	    w->peer_next == NULL || w->peer_prev == NULL || w->peer_own == NULL)
		return -ENOMEM;
	return 0;
}

static struct natt_spi_table *
table_of(struct natt_worker *w, uint8_t dir)
{
	return dir == NATT_DIR_IN ? w->sa_in : w->sa_out;
}

static void
sa_free(struct natt_worker *w, struct natt_sa *sa)
{
	if (sa->dir == NATT_DIR_OUT && sa->keepalive_s != 0 && w->n_keepalive != 0)
		w->n_keepalive--;
	natt_gcm_key_wipe(&sa->key);
	explicit_bzero(sa, sizeof(*sa));
	rte_free(sa);
}

static void
table_free_sa(uint32_t spi __rte_unused, void *v, uint32_t aux __rte_unused, void *w)
{
	if (!natt_sa_is_remote(v))
		sa_free(w, v);
}

static void
table_destroy(struct natt_worker *w, struct natt_spi_table *t)
{
	if (t == NULL)
		return;
	natt_spi_foreach(t, table_free_sa, w);
	natt_spi_table_free(t);
}

void
natt_sa_tables_destroy(struct natt_worker *w)
{
	table_destroy(w, w->sa_in);
	table_destroy(w, w->sa_out);
	w->sa_in = w->sa_out = NULL;
	rte_fib_free(w->fib);
	w->fib = NULL;
	rte_free(w->out);
	w->out = NULL;
	rte_free(w->retire);
	w->retire = NULL;
	w->n_retire = 0;
	rte_hash_free(w->peers);
	w->peers = NULL;
	rte_free(w->peer_of);
	rte_free(w->peer_next);
	rte_free(w->peer_prev);
	rte_free(w->peer_own);
	w->peer_of = NULL;
	w->peer_next = w->peer_prev = NULL;
	w->peer_own = NULL;
}

static int
sa_msg_check(const struct natt_worker *w, const struct natt_ctl_sa *m)
{
	if (m->spi == 0 || m->dir > NATT_DIR_OUT || m->owner >= w->n_workers ||
	    m->tunnel_id >= w->max_tunnels || m->tunnel_id > 0xffffffu || m->n_ts > NATT_MAX_TS ||
	    m->replay_window > NATT_MAX_REPLAY_WINDOW)
		return -EINVAL;
	if (!((m->algo == NATT_ALGO_AES_GCM_128 && m->key_len == 16) ||
	      (m->algo == NATT_ALGO_AES_GCM_256 && m->key_len == 32)))
		return -EINVAL;
	for (unsigned int i = 0; i < m->n_ts; i++)
		if (m->ts[i].plen > 32)
			return -EINVAL;
	return 0;
}

/* The mutable parameters: shared by add and update. The peer is the
 * configured one unless the configuration still names the same peer, whose
 * NAT mapping may have moved since (nat.c): returns whether it changed. */
static bool
sa_set_params(struct natt_sa *sa, const struct natt_ctl_sa *m)
{
	bool changed = sa->cfg_remote_addr != m->remote_addr ||
		       sa->cfg_remote_port != m->remote_port;

	if (changed) {
		sa->remote_addr = sa->cfg_remote_addr = m->remote_addr;
		sa->remote_port = sa->cfg_remote_port = m->remote_port;
	}
	sa->local_addr = m->local_addr;
	sa->local_port = m->local_port;
	natt_sa_outer_sum(sa);
	sa->n_ts = m->n_ts;
	for (unsigned int i = 0; i < m->n_ts; i++) {
		uint32_t mask = m->ts[i].plen ?
			rte_cpu_to_be_32(~0u << (32 - m->ts[i].plen)) : 0;

		sa->ts[i].mask = mask;
		sa->ts[i].net = m->ts[i].addr & mask;
	}
	return changed;
}

/* The tunnel's identity in the counters memzone; we own that entry. The
 * tunnel's current NAT mapping (t->remote_*) is where outbound goes; an SA
 * added by a rekey (keep_mapping) takes it instead of the configured peer,
 * which may not be where the peer's NAT maps it any more. */
static void
tunnel_stats_publish(struct natt_sa *sa, const struct natt_ctl_sa *m, bool reset,
		     bool keep_mapping)
{
	struct natt_tunnel_stats *t = sa->stats;

	if (reset) {
		memset(t, 0, sizeof(*t));
		t->created_tsc = rte_rdtsc();
	}
	memcpy(t->name, m->name, sizeof(t->name) - 1);
	t->name[sizeof(t->name) - 1] = '\0';
	t->pinned = !!(m->flags & NATT_SA_F_PIN);
	if (keep_mapping && t->remote_addr != 0) {
		sa->remote_addr = t->remote_addr;
		sa->remote_port = t->remote_port;
		natt_sa_outer_sum(sa);
	} else {
		t->remote_addr = t->seen_addr = m->remote_addr;
		t->remote_port = t->seen_port = m->remote_port;
	}
	if (m->dir == NATT_DIR_IN) {
		t->in_spi = m->spi;
		if (keep_mapping && t->seen_addr != 0) {  /* where it last came from */
			sa->remote_addr = t->seen_addr;
			sa->remote_port = t->seen_port;
		}
	} else {
		t->out_spi = m->spi;
		t->keepalive_s = m->keepalive_s;
	}
	t->owner = m->owner;
}

/* Keepalive interval of one of our outbound SAs (counted for the scan). */
static void
sa_set_keepalive(struct natt_worker *w, struct natt_sa *sa, uint16_t s)
{
	if (sa->dir != NATT_DIR_OUT)
		return;
	w->n_keepalive += (s != 0) - (sa->keepalive_s != 0);
	sa->keepalive_s = s;
}

static struct natt_sa *
sa_create(struct natt_worker *w, const struct natt_ctl_sa *m)
{
	size_t sz = sizeof(struct natt_sa) +
		    (m->dir == NATT_DIR_IN ? replay_bmp_size(m->replay_window) : 0);
	struct natt_sa *sa = rte_zmalloc_socket("natt_sa", sz, RTE_CACHE_LINE_SIZE,
						(int)rte_socket_id());

	if (sa == NULL)
		return NULL;
	if (natt_gcm_key_init(w->mgr, &sa->key, m->key, m->key_len, m->salt) != 0) {
		rte_free(sa);
		return NULL;
	}
	sa->spi = m->spi;
	sa->tunnel_id = m->tunnel_id;
	sa->dir = m->dir;
	sa->esn = !!(m->flags & NATT_SA_F_ESN);
	sa->stats = natt_stats_tunnel(w->hdr, m->tunnel_id);
	sa_set_params(sa, m);
	if (sa->dir == NATT_DIR_IN)
		replay_init(&sa->rw, sa->bmp, m->replay_window, sa->esn);
	return sa;
}

int
natt_sa_add(struct natt_worker *w, const struct natt_ctl_sa *m)
{
	struct natt_spi_table *h = table_of(w, m->dir);
	struct natt_sa *sa = NULL;
	void *v;
	int rc = sa_msg_check(w, m);

	if (rc != 0)
		return rc;
	if (natt_spi_lookup(h, m->spi) != NULL)
		return -EEXIST;
	if (m->owner == w->id) {
		sa = sa_create(w, m);
		if (sa == NULL)
			return -ENOMEM;
		v = sa;
	} else {
		v = natt_sa_remote_tag(++w->tag_epoch, m->tunnel_id, m->owner);
	}
	rc = natt_spi_add(h, m->spi, v, m->tunnel_id |
			  (m->key_len == 32 ? NATT_SA_AUX_AES256 : 0));
	if (rc != 0) {
		if (sa != NULL)
			sa_free(w, sa);
		return rc;
	}
	if (sa != NULL) {
		tunnel_stats_publish(sa, m, m->flags & NATT_SA_F_RESET_STATS,
				     !(m->flags & NATT_SA_F_RESET_STATS));
		sa_set_keepalive(w, sa, m->keepalive_s);
	}
	if (m->dir == NATT_DIR_IN) {
		/* keepalives from the peer find the tunnel by its mapping */
		if (sa != NULL)
			natt_peer_set(w, m->tunnel_id, m->owner, sa->remote_addr, sa->remote_port);
		else
			natt_peer_set(w, m->tunnel_id, m->owner, m->remote_addr, m->remote_port);
	}
	if (m->dir == NATT_DIR_OUT) {
		/* the newest outbound SA of a tunnel seals its packets: a rekey
		 * switches over here, the old SA stays until its SA_DEL */
		w->out[m->tunnel_id].sa = v;
		w->out[m->tunnel_id].spi = m->spi;
		w->out[m->tunnel_id].aes256 = m->key_len == 32;
	}
	return 0;
}

int
natt_sa_update(struct natt_worker *w, const struct natt_ctl_sa *m)
{
	bool peer;
	void *v;
	int rc = sa_msg_check(w, m);

	if (rc != 0)
		return rc;
	if ((v = natt_spi_lookup(table_of(w, m->dir), m->spi)) == NULL)
		return -ENOENT;
	if (natt_sa_tunnel(v) != m->tunnel_id)
		return -EINVAL;
	if (natt_sa_is_remote(v))
		return natt_sa_remote_owner(v) == m->owner ? 0 : -EINVAL;
	/* A new peer in the file wins over a NAT-learned mapping; an update of
	 * anything else (selectors, keepalive, ...) leaves the mapping be. The
	 * owner tells the other workers' peer tables (nat.c). */
	peer = sa_set_params(v, m);
	tunnel_stats_publish(v, m, false, !peer);
	sa_set_keepalive(w, v, m->keepalive_s);
	if (m->dir == NATT_DIR_IN && peer) {
		natt_peer_set(w, m->tunnel_id, m->owner, m->remote_addr, m->remote_port);
		natt_peer_upd_post(w, m->tunnel_id, m->remote_addr, m->remote_port);
	}
	return 0;
}

/* Unpublish the SA behind hash value v, wipe its keys, free it. */
static void
sa_remove(struct natt_worker *w, uint32_t spi, uint8_t dir, uint32_t tunnel_id, void *v)
{
	struct natt_sa *sa;

	/* unpublish first, then wipe: nothing can reach the keys after this */
	natt_spi_del(table_of(w, dir), spi);
	if (dir == NATT_DIR_OUT && tunnel_id < w->max_tunnels &&
	    w->out[tunnel_id].spi == spi) {
		w->out[tunnel_id].sa = NULL;   /* the tunnel has no outbound SA now */
		w->out[tunnel_id].spi = 0;
	}
	if (natt_sa_is_remote(v))
		return;
	sa = v;
	if (dir == NATT_DIR_IN && sa->stats->in_spi == spi) {
		sa->stats->in_spi = 0;
		natt_peer_set(w, tunnel_id, w->id, 0, 0);  /* the tunnel is gone */
	}
	else if (dir == NATT_DIR_OUT && sa->stats->out_spi == spi)
		sa->stats->out_spi = 0;
	if (dir == NATT_DIR_IN && sa->stats->grace_spi == spi)
		sa->stats->grace_spi = 0;
	sa_free(w, sa);
}

/* Keep an inbound SA for grace_ms more, then sa_remove() it (rekey: the
 * peer may still send under the old SPI for a while). */
static void
sa_retire(struct natt_worker *w, uint32_t spi, uint32_t tunnel_id, void *v, uint32_t grace_ms)
{
	struct natt_retire *r;
	uint64_t until = rte_rdtsc() + w->tsc_hz * grace_ms / 1000;

	if (w->n_retire == w->retire_cap) {    /* more rekeys in flight than tunnels */
		sa_remove(w, spi, NATT_DIR_IN, tunnel_id, v);
		return;
	}
	if (!natt_sa_is_remote(v)) {
		struct natt_sa *sa = v;

		if (sa->grace_until != 0)      /* already retiring: keep its deadline */
			return;
		sa->grace_until = until;
		sa->stats->grace_spi = spi;
	}
	r = &w->retire[w->n_retire++];
	r->spi = spi;
	r->tunnel_id = tunnel_id;
	r->v = v;
	r->until = until;
}

int
natt_sa_del(struct natt_worker *w, const struct natt_ctl_sa_del *m)
{
	void *v;

	if (m->dir > NATT_DIR_OUT)
		return -EINVAL;
	if ((v = natt_spi_lookup(table_of(w, m->dir), m->spi)) == NULL)
		return m->flags & NATT_DEL_F_IFPRESENT ? 0 : -ENOENT;
	/* the SPI belongs to another tunnel now: not the SA meant */
	if (natt_sa_tunnel(v) != m->tunnel_id)
		return m->flags & NATT_DEL_F_IFPRESENT ? 0 : -EINVAL;
	if (m->dir == NATT_DIR_IN && m->grace_ms != 0)
		sa_retire(w, m->spi, m->tunnel_id, v, m->grace_ms);
	else
		sa_remove(w, m->spi, m->dir, m->tunnel_id, v);
	return 0;
}

/* Is retire entry r still the SA it was made for? Its SPI may have been
 * deleted at once since, and even installed again. */
static bool
retire_current(struct natt_worker *w, const struct natt_retire *r)
{
	void *v;

	if ((v = natt_spi_lookup(w->sa_in, r->spi)) == NULL || v != r->v)
		return false;
	return natt_sa_is_remote(v) || ((struct natt_sa *)v)->grace_until == r->until;
}

unsigned int
natt_sa_retire_poll(struct natt_worker *w, uint64_t now)
{
	unsigned int done = 0;

	/* a few entries per loop: the list is short and grace is seconds */
	for (unsigned int k = 0; k < 4 && w->n_retire != 0; k++) {
		struct natt_retire *r;

		if (w->retire_next >= w->n_retire)
			w->retire_next = 0;
		r = &w->retire[w->retire_next];
		if (now < r->until) {
			w->retire_next++;
			continue;
		}
		if (retire_current(w, r)) {
			bool ours = !natt_sa_is_remote(r->v);

			sa_remove(w, r->spi, NATT_DIR_IN, r->tunnel_id, r->v);
			if (ours) {
				w->st->counters[NATT_CNT_SA_EXPIRED]++;
				natt_evt_send(w, NATT_EVT_SA_EXPIRED, 0, 0, r->spi, r->tunnel_id);
			}
			done++;
		}
		*r = w->retire[--w->n_retire];  /* swap-remove, look at it next */
	}
	return done;
}

/* ---- outbound routes ---- */

static int
route_check(const struct natt_worker *w, const struct natt_ctl_route *r)
{
	if (r->tunnel_id >= w->max_tunnels || r->tunnel_id >= NATT_FIB_NONE ||
	    r->n > NATT_CTL_ROUTES_PER_MSG)
		return -EINVAL;
	for (unsigned int i = 0; i < r->n; i++)
		if (r->pfx[i].plen > 32)
			return -EINVAL;
	return 0;
}

/* Owner of prefix p in our table: its tunnel id, or UINT32_MAX if absent. */
static uint32_t
route_owner(const struct natt_worker *w, const struct natt_ctl_ts *p)
{
	struct rte_rib_node *n;
	uint64_t nh;

	if (p->plen == 0)
		return w->default_route;
	n = rte_rib_lookup_exact(rte_fib_get_rib(w->fib), rte_be_to_cpu_32(p->addr), p->plen);
	if (n == NULL || rte_rib_get_nh(n, &nh) != 0)
		return UINT32_MAX;
	return (uint32_t)nh;
}

static void
route_remove(struct natt_worker *w, const struct natt_ctl_ts *p)
{
	if (p->plen == 0)
		w->default_route = UINT32_MAX;
	else
		rte_fib_delete(w->fib, rte_be_to_cpu_32(p->addr), p->plen);
}

int
natt_route_add(struct natt_worker *w, const struct natt_ctl_route *r)
{
	uint8_t added[NATT_CTL_ROUTES_PER_MSG] = { 0 };
	int rc = route_check(w, r);

	if (rc != 0)
		return rc;
	/* all or nothing: a prefix another tunnel holds refuses the message */
	for (unsigned int i = 0; i < r->n; i++) {
		uint32_t o = route_owner(w, &r->pfx[i]);

		if (o != UINT32_MAX && o != r->tunnel_id)
			return -EEXIST;
		added[i] = o == UINT32_MAX;
	}
	for (unsigned int i = 0; i < r->n; i++) {
		const struct natt_ctl_ts *p = &r->pfx[i];

		if (!added[i])
			continue;              /* already ours: leave it */
		if (p->plen == 0) {
			w->default_route = r->tunnel_id;
			continue;
		}
		rc = rte_fib_add(w->fib, rte_be_to_cpu_32(p->addr), p->plen, r->tunnel_id);
		if (rc != 0) {
			/* FIB full: take back what this message added */
			while (i-- > 0)
				if (added[i])
					route_remove(w, &r->pfx[i]);
			return rc;
		}
	}
	return 0;
}

/* Every prefix routed to tunnel tid: a walk over the whole RIB, for the
 * rare case natt-control lost track of what it installed. */
static void
route_flush(struct natt_worker *w, uint32_t tid)
{
	struct rte_rib *rib = rte_fib_get_rib(w->fib);
	struct natt_ctl_ts found[64];
	unsigned int n;

	if (w->default_route == tid)
		w->default_route = UINT32_MAX;
	do {
		struct rte_rib_node *node = NULL;

		n = 0;
		while (n < RTE_DIM(found) &&
		       (node = rte_rib_get_nxt(rib, 0, 0, node, RTE_RIB_GET_NXT_ALL)) != NULL) {
			uint32_t ip;
			uint64_t nh;
			uint8_t depth;

			if (rte_rib_get_nh(node, &nh) == 0 && nh == tid &&
			    rte_rib_get_ip(node, &ip) == 0 && rte_rib_get_depth(node, &depth) == 0)
				found[n++] = (struct natt_ctl_ts){ .addr = rte_cpu_to_be_32(ip),
								   .plen = depth };
		}
		for (unsigned int i = 0; i < n; i++)
			route_remove(w, &found[i]);
	} while (n == RTE_DIM(found));
}

int
natt_route_del(struct natt_worker *w, const struct natt_ctl_route *r)
{
	bool ifpresent = r->flags & NATT_ROUTE_F_IFPRESENT;
	int rc = route_check(w, r);

	if (rc != 0)
		return rc;
	if (r->flags & NATT_ROUTE_F_FLUSH) {
		route_flush(w, r->tunnel_id);
		return 0;
	}
	if (!ifpresent)
		for (unsigned int i = 0; i < r->n; i++)
			if (route_owner(w, &r->pfx[i]) != r->tunnel_id)
				return -ENOENT;
	for (unsigned int i = 0; i < r->n; i++)
		if (!ifpresent || route_owner(w, &r->pfx[i]) == r->tunnel_id)
			route_remove(w, &r->pfx[i]);
	return 0;
}
