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
#include <rte_malloc.h>

#include "lpm.h"
#include "sa.h"
#include "worker.h"

/* SPIs are 4 bytes: compare them as one word (rte_hash would call memcmp). */
static int
spi_cmp(const void *a, const void *b, size_t len __rte_unused)
{
	return *(const uint32_t *)a != *(const uint32_t *)b;
}

static struct rte_hash *
table_create(const char *kind, uint16_t id, uint32_t entries)
{
	char name[RTE_HASH_NAMESIZE];
	/* Twice the tunnels: a rekey holds old and new SA of a tunnel for a
	 * while; extendable buckets so cuckoo collisions never refuse an SA
	 * below that capacity. */
	struct rte_hash_parameters p = {
		.name = name,
		.entries = 2 * (entries < 64 ? 64 : entries),
		.key_len = sizeof(uint32_t),
		.hash_func = rte_hash_crc,
		.socket_id = (int)rte_socket_id(),
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};

	struct rte_hash *h;

	snprintf(name, sizeof(name), "natt_sa_%s_%u", kind, id);
	h = rte_hash_create(&p);
	if (h != NULL)
		rte_hash_set_cmp_func(h, spi_cmp);
	return h;
}

/*
 * The outbound LPM: remote_ts prefixes -> tunnel id (24-bit next hop, so up
 * to 16M tunnels). Rules: four per tunnel on average. tbl8 groups: one per
 * /24 that holds a longer prefix; road warriors get /32s out of a few
 * contiguous pools, so max_tunnels / 8 (at least 1024, at most 65536 = 64 MB)
 * covers 1M tunnels numbered out of a /12. The tbl24 is a fixed 64 MB.
 */
static struct rte_lpm *
lpm_create(uint16_t id, uint32_t tunnels)
{
	char name[RTE_LPM_NAMESIZE];
	uint32_t tbl8s = tunnels / 8 < 1024 ? 1024 : tunnels / 8;
	struct rte_lpm_config c = {
		.max_rules = 4 * (tunnels < 256 ? 256 : tunnels),
		.number_tbl8s = tbl8s > 65536 ? 65536 : tbl8s,
	};

	snprintf(name, sizeof(name), "natt_lpm_%u", id);
	return rte_lpm_create(name, (int)rte_socket_id(), &c);
}

int
natt_sa_tables_create(struct natt_worker *w, uint32_t entries)
{
	w->sa_in = table_create("in", w->id, entries);
	w->sa_out = table_create("out", w->id, entries);
	w->lpm = lpm_create(w->id, entries);
	w->out = rte_zmalloc_socket("natt_out_slots", (size_t)entries * sizeof(*w->out),
				    RTE_CACHE_LINE_SIZE, (int)rte_socket_id());
	w->default_route = UINT32_MAX;
	if (w->sa_in == NULL || w->sa_out == NULL || w->lpm == NULL || w->out == NULL)
		return -ENOMEM;
	return 0;
}

static struct rte_hash *
table_of(struct natt_worker *w, uint8_t dir)
{
	return dir == NATT_DIR_IN ? w->sa_in : w->sa_out;
}

static void
sa_free(struct natt_sa *sa)
{
	natt_gcm_key_wipe(&sa->key);
	explicit_bzero(sa, sizeof(*sa));
	rte_free(sa);
}

static void
table_destroy(struct rte_hash *h)
{
	const void *key;
	void *v;
	uint32_t it = 0;

	if (h == NULL)
		return;
	while (rte_hash_iterate(h, &key, &v, &it) >= 0)
		if (!natt_sa_is_remote(v))
			sa_free(v);
	rte_hash_free(h);
}

void
natt_sa_tables_destroy(struct natt_worker *w)
{
	table_destroy(w->sa_in);
	table_destroy(w->sa_out);
	w->sa_in = w->sa_out = NULL;
	rte_lpm_free(w->lpm);
	w->lpm = NULL;
	rte_free(w->out);
	w->out = NULL;
}

static int
sa_msg_check(const struct natt_worker *w, const struct natt_ctl_sa *m)
{
	if (m->spi == 0 || m->dir > NATT_DIR_OUT || m->owner >= w->n_workers ||
	    m->tunnel_id >= w->max_tunnels || m->n_ts > NATT_MAX_TS ||
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

/* The mutable parameters: shared by add and update. */
static void
sa_set_params(struct natt_sa *sa, const struct natt_ctl_sa *m)
{
	uint32_t l = rte_be_to_cpu_32(m->local_addr), r = rte_be_to_cpu_32(m->remote_addr);

	sa->remote_addr = m->remote_addr;
	sa->remote_port = m->remote_port;
	sa->local_addr = m->local_addr;
	sa->local_port = m->local_port;
	sa->outer_sum = (uint32_t)(NATT_OUTER_TTL << 8 | IPPROTO_UDP) +
			(l >> 16) + (l & 0xffff) + (r >> 16) + (r & 0xffff);
	sa->n_ts = m->n_ts;
	for (unsigned int i = 0; i < m->n_ts; i++) {
		uint32_t mask = m->ts[i].plen ?
			rte_cpu_to_be_32(~0u << (32 - m->ts[i].plen)) : 0;

		sa->ts_mask[i] = mask;
		sa->ts_net[i] = m->ts[i].addr & mask;
	}
}

/* The tunnel's identity in the counters memzone; we own that entry. */
static void
tunnel_stats_publish(struct natt_sa *sa, const struct natt_ctl_sa *m, bool reset)
{
	struct natt_tunnel_stats *t = sa->stats;

	if (reset)
		memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%.*s", NATT_NAME_LEN - 1, m->name);
	if (m->dir == NATT_DIR_IN) {
		t->in_spi = m->spi;
		t->remote_addr = m->remote_addr;
		t->remote_port = m->remote_port;
	} else {
		t->out_spi = m->spi;
	}
	t->owner = m->owner;
}

static struct natt_sa *
sa_create(struct natt_worker *w, const struct natt_ctl_sa *m)
{
	size_t sz = offsetof(struct natt_sa, rw) +
		    replay_window_size(m->replay_window);
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
	replay_init(&sa->rw, m->replay_window, sa->esn);
	return sa;
}

int
natt_sa_add(struct natt_worker *w, const struct natt_ctl_sa *m)
{
	struct rte_hash *h = table_of(w, m->dir);
	struct natt_sa *sa = NULL;
	void *v;
	int rc = sa_msg_check(w, m);

	if (rc != 0)
		return rc;
	if (rte_hash_lookup_data(h, &m->spi, &v) >= 0)
		return -EEXIST;
	if (m->owner == w->id) {
		sa = sa_create(w, m);
		if (sa == NULL)
			return -ENOMEM;
		v = sa;
	} else {
		v = (void *)(((uintptr_t)m->owner << 1) | NATT_SA_REMOTE);
	}
	rc = rte_hash_add_key_data(h, &m->spi, v);
	if (rc != 0) {
		if (sa != NULL)
			sa_free(sa);
		return rc;
	}
	if (sa != NULL)
		tunnel_stats_publish(sa, m, m->flags & NATT_SA_F_RESET_STATS);
	if (m->dir == NATT_DIR_OUT) {
		/* the newest outbound SA of a tunnel seals its packets: a rekey
		 * switches over here, the old SA stays until its SA_DEL */
		w->out[m->tunnel_id].sa = v;
		w->out[m->tunnel_id].spi = m->spi;
	}
	return 0;
}

int
natt_sa_update(struct natt_worker *w, const struct natt_ctl_sa *m)
{
	void *v;
	int rc = sa_msg_check(w, m);

	if (rc != 0)
		return rc;
	if (rte_hash_lookup_data(table_of(w, m->dir), &m->spi, &v) < 0)
		return -ENOENT;
	if (natt_sa_is_remote(v))
		return natt_sa_remote_owner(v) == m->owner ? 0 : -EINVAL;
	if (((struct natt_sa *)v)->tunnel_id != m->tunnel_id)
		return -EINVAL;
	sa_set_params(v, m);
	tunnel_stats_publish(v, m, false);
	return 0;
}

int
natt_sa_del(struct natt_worker *w, uint32_t spi, uint8_t dir, uint32_t tunnel_id)
{
	struct rte_hash *h = table_of(w, dir);
	struct natt_sa *sa;
	void *v;

	if (dir > NATT_DIR_OUT)
		return -EINVAL;
	if (rte_hash_lookup_data(h, &spi, &v) < 0)
		return -ENOENT;
	/* unpublish first, then wipe: nothing can reach the keys after this */
	rte_hash_del_key(h, &spi);
	if (dir == NATT_DIR_OUT && tunnel_id < w->max_tunnels &&
	    w->out[tunnel_id].spi == spi) {
		w->out[tunnel_id].sa = NULL;   /* the tunnel has no outbound SA now */
		w->out[tunnel_id].spi = 0;
	}
	if (natt_sa_is_remote(v))
		return 0;
	sa = v;
	if (dir == NATT_DIR_IN && sa->stats->in_spi == spi)
		sa->stats->in_spi = 0;
	else if (dir == NATT_DIR_OUT && sa->stats->out_spi == spi)
		sa->stats->out_spi = 0;
	sa_free(sa);
	return 0;
}

/* ---- outbound routes ---- */

static int
route_check(const struct natt_worker *w, const struct natt_ctl_route *r)
{
	/* rte_lpm next hops are 24 bits */
	if (r->tunnel_id >= w->max_tunnels || r->tunnel_id > 0xffffffu ||
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
	uint32_t nh;

	if (p->plen == 0)
		return w->default_route;
	if (rte_lpm_is_rule_present(w->lpm, rte_be_to_cpu_32(p->addr), p->plen, &nh) == 1)
		return nh;
	return UINT32_MAX;
}

static void
route_remove(struct natt_worker *w, const struct natt_ctl_ts *p)
{
	if (p->plen == 0)
		w->default_route = UINT32_MAX;
	else
		rte_lpm_delete(w->lpm, rte_be_to_cpu_32(p->addr), p->plen);
}

int
natt_route_add(struct natt_worker *w, const struct natt_ctl_route *r)
{
	int rc = route_check(w, r);

	if (rc != 0)
		return rc;
	/* all or nothing: a prefix another tunnel holds refuses the message */
	for (unsigned int i = 0; i < r->n; i++) {
		uint32_t o = route_owner(w, &r->pfx[i]);

		if (o != UINT32_MAX && o != r->tunnel_id)
			return -EEXIST;
	}
	for (unsigned int i = 0; i < r->n; i++) {
		const struct natt_ctl_ts *p = &r->pfx[i];

		if (p->plen == 0) {
			w->default_route = r->tunnel_id;
			continue;
		}
		rc = rte_lpm_add(w->lpm, rte_be_to_cpu_32(p->addr), p->plen, r->tunnel_id);
		if (rc != 0) {
			/* LPM full: take back what this message added */
			while (i-- > 0)
				route_remove(w, &r->pfx[i]);
			return rc;
		}
	}
	return 0;
}

int
natt_route_del(struct natt_worker *w, const struct natt_ctl_route *r)
{
	int rc = route_check(w, r);

	if (rc != 0)
		return rc;
	for (unsigned int i = 0; i < r->n; i++)
		if (route_owner(w, &r->pfx[i]) != r->tunnel_id)
			rc = -ENOENT;
	if (rc != 0)
		return rc;
	for (unsigned int i = 0; i < r->n; i++)
		route_remove(w, &r->pfx[i]);
	return 0;
}
