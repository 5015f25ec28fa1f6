/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * reconcile.c - diff a configuration against the journal and send the
 * difference as one generation (reconcile.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/sha.h>

#include <rte_memzone.h>

#include "reconcile.h"

enum {
	REC_ADD = 0x01,
	REC_REKEY_IN = 0x02,
	REC_REKEY_OUT = 0x04,
	REC_PARAMS = 0x08,
	REC_ROUTES = 0x10,
	REC_REINSTALL = 0x20,
	REC_JOURNAL = 0x40,     /* nothing to send, but the journal entry changes */
};

/* The dataplane's grace timer starts when a worker applies the SA_DEL, which
 * is before the ack our deadline is computed from: after grace_until_ns the
 * old SA is gone for sure. */
static bool
grace_live(const struct natt_journal_tunnel *t, uint64_t now)
{
	return t->grace_spi != 0 && t->grace_until_ns > now;
}

/* Message cookies: BASE + 8 * tunnel id + kind, then the global ones. A
 * NACK names the tunnel and what was refused. */
enum {
	CK_SA_ADD_IN, CK_SA_ADD_OUT, CK_SA_UPD_IN, CK_SA_UPD_OUT,
	CK_ROUTE_ADD, CK_ROUTE_DEL, CK_SA_DEL, CK_KINDS = 8,
};

static const char *const ck_names[CK_KINDS] = {
	"SA_ADD in", "SA_ADD out", "SA_UPDATE in", "SA_UPDATE out",
	"ROUTE_ADD", "ROUTE_DEL", "SA_DEL", "?",
};

static inline uint32_t
ck(uint32_t id, unsigned int kind)
{
	return NATT_PROG_COOKIE_BASE + id * CK_KINDS + kind;
}

uint64_t
natt_rec_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- digests ---- */

/* Everything that needs a new SA when it changes; SHA-256 because the key
 * is in it. */
static uint64_t
sa_digest(const struct natt_config *cfg, const struct natt_cfg_tunnel *t, uint8_t dir)
{
	const struct natt_cfg_sa *sa = dir == NATT_DIR_IN ? &t->in : &t->out;
	struct {
		uint32_t spi;
		uint8_t dir, algo, key_len, esn;
		uint16_t window;
		uint8_t key[NATT_MAX_KEY_LEN];
		uint8_t salt[NATT_SALT_LEN];
	} __attribute__((packed)) fp;
	uint8_t md[SHA256_DIGEST_LENGTH];
	uint64_t d;

	memset(&fp, 0, sizeof(fp));
	fp.spi = sa->spi;
	fp.dir = dir;
	fp.algo = t->algo;
	fp.key_len = t->key_len;
	fp.esn = t->esn;
	fp.window = dir == NATT_DIR_IN ? cfg->replay_window : 0;
	memcpy(fp.key, sa->key, t->key_len);
	memcpy(fp.salt, sa->salt, sizeof(fp.salt));
	SHA256((const uint8_t *)&fp, sizeof(fp), md);
	memcpy(&d, md, sizeof(d));
	explicit_bzero(&fp, sizeof(fp));
	explicit_bzero(md, sizeof(md));
	return d | 1;   /* 0 means "none" in the journal */
}

static uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* What SA_UPDATE changes: no secret in it. */
static uint64_t
param_digest(const struct natt_config *cfg, const struct natt_cfg_tunnel *t)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t local = cfg->iface[cfg->outside].addr;

	h = fnv1a(h, &t->remote_addr, sizeof(t->remote_addr));
	h = fnv1a(h, &t->remote_port, sizeof(t->remote_port));
	h = fnv1a(h, &t->local_port, sizeof(t->local_port));
	h = fnv1a(h, &t->keepalive, sizeof(t->keepalive));
	h = fnv1a(h, &t->pin_mapping, sizeof(t->pin_mapping));
	h = fnv1a(h, &local, sizeof(local));
	h = fnv1a(h, &t->n_local_ts, 1);
	h = fnv1a(h, natt_config_local_ts(cfg, t), t->n_local_ts * sizeof(struct natt_ctl_ts));
	h = fnv1a(h, &t->n_remote_ts, 1);
	h = fnv1a(h, natt_config_remote_ts(cfg, t), t->n_remote_ts * sizeof(struct natt_ctl_ts));
	return h | 1;
}

/* ---- a set of 32-bit SPIs (open addressing, 0 = empty: SPI 0 is invalid) ---- */

struct spi_set {
	uint32_t *slot;
	uint32_t mask;
};

static int
spi_set_init(struct spi_set *s, uint32_t n)
{
	uint32_t size = 64;

	while (size < 2 * n)
		size <<= 1;
	s->slot = calloc(size, sizeof(*s->slot));
	s->mask = size - 1;
	return s->slot ? 0 : -ENOMEM;
}

static inline uint32_t
spi_hash(uint32_t spi)
{
	return (uint32_t)(((uint64_t)spi * 0x9e3779b97f4a7c15ull) >> 32);
}

static void
spi_set_add(struct spi_set *s, uint32_t spi)
{
	uint32_t i = spi_hash(spi) & s->mask;

	while (s->slot[i] != 0 && s->slot[i] != spi)
		i = (i + 1) & s->mask;
	s->slot[i] = spi;
}

static bool
spi_set_has(const struct spi_set *s, uint32_t spi)
{
	uint32_t i = spi_hash(spi) & s->mask;

	if (spi == 0)
		return false;
	while (s->slot[i] != 0) {
		if (s->slot[i] == spi)
			return true;
		i = (i + 1) & s->mask;
	}
	return false;
}

/* ---- name index of the file: name -> index ---- */

struct name_index {
	uint32_t *slot;          /* index + 1, 0 = empty */
	uint32_t mask;
};

static uint32_t
name_hash(const char *s)
{
	return (uint32_t)fnv1a(0xcbf29ce484222325ull, s, strnlen(s, NATT_NAME_LEN));
}

static int
name_index_build(struct name_index *x, const struct natt_config *cfg)
{
	uint32_t size = 64;

	while (size < 2 * cfg->n_tunnels)
		size <<= 1;
	x->slot = calloc(size, sizeof(*x->slot));
	x->mask = size - 1;
	if (x->slot == NULL)
		return -ENOMEM;
	for (uint32_t k = 0; k < cfg->n_tunnels; k++) {
		uint32_t i = name_hash(cfg->tunnels[k].name) & x->mask;

		while (x->slot[i] != 0)      /* names are unique (config.c) */
			i = (i + 1) & x->mask;
		x->slot[i] = k + 1;
	}
	return 0;
}

static uint32_t
name_index_find(const struct name_index *x, const struct natt_config *cfg, const char *name)
{
	uint32_t i = name_hash(name) & x->mask;

	while (x->slot[i] != 0) {
		uint32_t k = x->slot[i] - 1;

		if (strncmp(cfg->tunnels[k].name, name, NATT_NAME_LEN) == 0)
			return k;
		i = (i + 1) & x->mask;
	}
	return UINT32_MAX;
}

/* ---- attach ---- */

static bool
pid_alive(int32_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

int
natt_rec_attach(struct natt_rec *r, struct natt_prog *p)
{
	const struct rte_memzone *mz = rte_memzone_lookup(NATT_JOURNAL_MZ);
	struct natt_journal_hdr *j;
	int32_t me = (int32_t)getpid(), cur;
	uint32_t n;

	memset(r, 0, sizeof(*r));
	r->prog = p;
	if (mz == NULL) {
		fprintf(stderr, "natt-control: memzone %s not found\n", NATT_JOURNAL_MZ);
		return -1;
	}
	j = mz->addr;
	if (__atomic_load_n(&j->magic, __ATOMIC_ACQUIRE) != NATT_JOURNAL_MAGIC ||
	    j->version != NATT_JOURNAL_VERSION || j->max_tunnels != p->hdr->max_tunnels ||
	    j->n_events != NATT_JOURNAL_EVENTS || mz->len < natt_journal_size(j->max_tunnels)) {
		fprintf(stderr, "natt-control: journal is not version %u of this dataplane\n",
			NATT_JOURNAL_VERSION);
		return -1;
	}
	/* one writer: take it from nobody or from a process that is gone */
	cur = __atomic_load_n(&j->writer_pid, __ATOMIC_ACQUIRE);
	for (;;) {
		if (cur != 0 && cur != me && pid_alive(cur)) {
			fprintf(stderr, "natt-control: another natt-control (pid %d) is programming"
				" this dataplane\n", cur);
			return -1;
		}
		if (__atomic_compare_exchange_n(&j->writer_pid, &cur, me, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
	}
	r->j = j;
	r->own = true;
	n = r->max_tunnels = j->max_tunnels;
	r->cfg_of = malloc((size_t)n * sizeof(*r->cfg_of));
	r->id_of = malloc((size_t)n * sizeof(*r->id_of));
	r->act = malloc(n);
	r->failed = calloc(n, 1);
	r->prior = calloc(n, 1);
	r->next = malloc((size_t)n * sizeof(*r->next));
	if (!r->cfg_of || !r->id_of || !r->act || !r->failed || !r->prior || !r->next) {
		fprintf(stderr, "natt-control: out of memory for %u tunnels\n", n);
		natt_rec_detach(r);
		return -1;
	}
	return 0;
}

void
natt_rec_detach(struct natt_rec *r)
{
	if (r->own)
		__atomic_store_n(&r->j->writer_pid, 0, __ATOMIC_RELEASE);
	r->own = false;
	free(r->cfg_of);
	free(r->id_of);
	free(r->act);
	free(r->failed);
	free(r->prior);
	free(r->next);
	r->cfg_of = r->id_of = NULL;
	r->act = r->failed = r->prior = NULL;
	r->next = NULL;
}

int
natt_rec_check(const struct natt_rec *r, const struct natt_config *cfg, const char *path,
	       char *err, size_t errlen)
{
	const struct natt_stats_hdr *h = r->prog->hdr;
	uint64_t routes = 0;

	if (cfg->n_tunnels > h->max_tunnels) {
		snprintf(err, errlen, "%s:%u: %u tunnels, but natt-dataplane was started with"
			 " max_tunnels %u", path, cfg->tunnels[h->max_tunnels].line,
			 cfg->n_tunnels, h->max_tunnels);
		return -1;
	}
	for (uint32_t i = 0; i < cfg->n_tunnels; i++) {
		routes += cfg->tunnels[i].n_remote_ts;
		if (routes > natt_max_routes(h->max_tunnels)) {
			snprintf(err, errlen, "%s:%u: more than %u remote_ts prefixes in all, the"
				 " most natt-dataplane holds with max_tunnels %u", path,
				 cfg->tunnels[i].line, natt_max_routes(h->max_tunnels),
				 h->max_tunnels);
			return -1;
		}
	}
	for (uint32_t i = 0; i < cfg->n_ifaces; i++) {
		const struct natt_cfg_iface *ifc = &cfg->iface[i];

		if (ifc->port >= h->n_ports) {
			snprintf(err, errlen, "%s:%u: interface \"%s\": port %u, but natt-dataplane"
				 " has %u port(s)", path, ifc->line, ifc->name, ifc->port,
				 h->n_ports);
			return -1;
		}
	}
	return 0;
}

/* ---- events ---- */

void
natt_rec_log_event(struct natt_rec *r, const struct natt_journal_event *e)
{
	struct natt_journal_hdr *j = r->j;
	uint64_t head = j->evt_head;

	natt_journal_events(j)[head & (j->n_events - 1)] = *e;
	__atomic_store_n(&j->evt_head, head + 1, __ATOMIC_RELEASE);
	if (e->tunnel_id < r->max_tunnels && e->type < NATT_JEVT_RELOAD_OK) {
		struct natt_journal_tunnel *t = natt_journal_tunnel(j, e->tunnel_id);

		if (t->state == NATT_JT_FREE)
			return;
		t->last_evt_type = e->type;
		t->last_evt_ns = e->unix_ns;
		t->last_evt_addr = e->addr;
		t->last_evt_port = e->port;
		t->last_evt_old_addr = e->old_addr;
		t->last_evt_old_port = e->old_port;
		t->last_evt_value = e->value;
		if (e->type == NATT_EVT_SA_EXPIRED && t->grace_spi == e->spi) {
			t->grace_spi = 0;
			t->grace_until_ns = 0;
		}
	}
}

/* ---- messages ---- */

struct rec_run {
	struct natt_rec *r;
	const struct natt_config *cfg;
	uint64_t now;            /* CLOCK_REALTIME ns at the start */
	int rc;                  /* first send error */
};

static struct natt_ctl_msg *
msg(struct rec_run *x, uint16_t type, uint32_t cookie)
{
	struct natt_ctl_msg *m;

	if (x->rc != NATT_PROG_OK)
		return NULL;
	m = natt_prog_msg(x->r->prog, type, cookie, &x->rc);
	return m;
}

static void
send_sa(struct rec_run *x, uint32_t k, uint8_t dir, uint16_t type, bool reset)
{
	const struct natt_config *cfg = x->cfg;
	const struct natt_cfg_tunnel *t = &cfg->tunnels[k];
	const struct natt_cfg_sa *sa = dir == NATT_DIR_IN ? &t->in : &t->out;
	const struct natt_ctl_ts *ts = dir == NATT_DIR_IN ? natt_config_remote_ts(cfg, t)
							  : natt_config_local_ts(cfg, t);
	uint32_t id = x->r->id_of[k];
	unsigned int kind = type == NATT_CTL_SA_ADD ? CK_SA_ADD_IN : CK_SA_UPD_IN;
	struct natt_ctl_msg *mm = msg(x, type, ck(id, kind + dir));
	struct natt_ctl_sa *m;

	if (mm == NULL)
		return;
	m = &mm->u.sa;
	m->spi = sa->spi;
	m->tunnel_id = id;
	m->dir = dir;
	m->algo = t->algo;
	m->key_len = t->key_len;
	m->flags = (t->esn ? NATT_SA_F_ESN : 0) | (reset ? NATT_SA_F_RESET_STATS : 0) |
		   (t->pin_mapping ? NATT_SA_F_PIN : 0);
	m->keepalive_s = dir == NATT_DIR_OUT ? t->keepalive : 0;
	m->owner = (uint16_t)(id % x->r->prog->n_workers);
	m->replay_window = dir == NATT_DIR_IN ? cfg->replay_window : 0; /* out: no window */
	m->remote_addr = t->remote_addr;
	m->local_addr = cfg->iface[cfg->outside].addr;
	m->remote_port = htons(t->remote_port);
	m->local_port = htons(t->local_port);
	m->n_ts = dir == NATT_DIR_IN ? t->n_remote_ts : t->n_local_ts;
	memcpy(m->ts, ts, m->n_ts * sizeof(*ts));
	if (type == NATT_CTL_SA_ADD) {
		memcpy(m->key, sa->key, t->key_len);
		memcpy(m->salt, sa->salt, sizeof(m->salt));
	}
	memcpy(m->name, t->name, sizeof(m->name));
}

static void
send_sa_del(struct rec_run *x, uint32_t id, uint8_t dir, uint32_t spi, uint32_t grace_ms)
{
	struct natt_ctl_msg *m;

	if (spi == 0 || (m = msg(x, NATT_CTL_SA_DEL, ck(id, CK_SA_DEL))) == NULL)
		return;
	m->u.del.spi = spi;
	m->u.del.dir = dir;
	m->u.del.flags = NATT_DEL_F_IFPRESENT;
	m->u.del.tunnel_id = id;
	m->u.del.grace_ms = grace_ms;
}

static void
send_routes(struct rec_run *x, uint16_t type, uint32_t id, const struct natt_ctl_ts *p,
	    unsigned int n, uint8_t flags)
{
	struct natt_ctl_msg *m;

	if ((n == 0 && !(flags & NATT_ROUTE_F_FLUSH)) ||
	    (m = msg(x, type, ck(id, type == NATT_CTL_ROUTE_ADD ? CK_ROUTE_ADD : CK_ROUTE_DEL)))
	    == NULL)
		return;
	m->u.route.tunnel_id = id;
	m->u.route.flags = flags;
	m->u.route.n = (uint8_t)n;
	memcpy(m->u.route.pfx, p, n * sizeof(*p));
}

static bool
pfx_in(const struct natt_ctl_ts *set, unsigned int n, const struct natt_ctl_ts *p)
{
	for (unsigned int i = 0; i < n; i++)
		if (set[i].addr == p->addr && set[i].plen == p->plen)
			return true;
	return false;
}

/* Everything the journal says tunnel id may hold, gone (IFPRESENT). Its
 * state before this reload tells whether we know its routes; this reload
 * marked it dirty only for the case we die while sending. */
static void
send_forget(struct rec_run *x, uint32_t id, const struct natt_journal_tunnel *o)
{
	if (x->r->prior[id] == NATT_JT_DIRTY) {
		/* a change was in flight: old or new SPIs, old or new routes */
		send_routes(x, NATT_CTL_ROUTE_DEL, id, NULL, 0, NATT_ROUTE_F_FLUSH);
		for (uint8_t dir = NATT_DIR_IN; dir <= NATT_DIR_OUT; dir++)
			if (o->pend_spi[dir] != o->spi[dir])
				send_sa_del(x, id, dir, o->pend_spi[dir], 0);
	} else {
		send_routes(x, NATT_CTL_ROUTE_DEL, id, o->pfx, o->n_pfx, NATT_ROUTE_F_IFPRESENT);
	}
	send_sa_del(x, id, NATT_DIR_OUT, o->spi[NATT_DIR_OUT], 0);
	send_sa_del(x, id, NATT_DIR_IN, o->spi[NATT_DIR_IN], 0);
	if (grace_live(o, x->now))
		send_sa_del(x, id, NATT_DIR_IN, o->grace_spi, 0);
}

/* ---- the diff ---- */

static void
rec_nack(void *ctx, const struct natt_evt *e)
{
	struct natt_rec *r = ctx;
	uint32_t c = e->cookie - NATT_PROG_COOKIE_BASE;
	uint32_t id = c / CK_KINDS;

	if (e->cookie < NATT_PROG_COOKIE_BASE) {
		fprintf(stderr, "natt-control: worker %u refused COMMIT of generation %u: %s\n",
			e->worker, e->cookie, strerror(-e->status));
		return;
	}
	if (id < r->max_tunnels) {
		const struct natt_journal_tunnel *t = natt_journal_tunnel(r->j, id);

		r->failed[id] = 1;
		if (r->nack_lines++ < NATT_PROG_NACK_LINES)
			fprintf(stderr, "natt-control: worker %u refused %s of tunnel \"%.*s\""
				" (id %u) spi 0x%08x: %s\n", e->worker, ck_names[c % CK_KINDS],
				NATT_NAME_LEN, t->name, id, e->spi, strerror(-e->status));
	} else {
		fprintf(stderr, "natt-control: worker %u refused %s: %s\n", e->worker,
			c - r->max_tunnels * CK_KINDS < NATT_CFG_MAX_IFACES ? "IFACE" : "PARAMS",
			strerror(-e->status));
	}
}

/* Pass 1: match the file's tunnels to journal entries, decide what to do
 * with each, compute their new journal entries. */
static int
rec_plan(struct natt_rec *r, const struct natt_config *cfg, struct natt_reload_counts *c)
{
	struct natt_journal_hdr *j = r->j;
	uint64_t now = natt_rec_now_ns();
	struct name_index x;
	uint32_t free_id = 0;

	if (name_index_build(&x, cfg) != 0)
		return -ENOMEM;
	for (uint32_t k = 0; k < cfg->n_tunnels; k++)
		r->id_of[k] = UINT32_MAX;
	for (uint32_t id = 0; id < r->max_tunnels; id++) {
		const struct natt_journal_tunnel *o = natt_journal_tunnel(j, id);
		uint32_t k;

		r->cfg_of[id] = UINT32_MAX;
		if (o->state == NATT_JT_FREE)
			continue;
		k = name_index_find(&x, cfg, o->name);
		/* a name held twice (never made by us): the second entry goes */
		if (k != UINT32_MAX && r->id_of[k] == UINT32_MAX) {
			r->cfg_of[id] = k;
			r->id_of[k] = id;
		}
	}
	free(x.slot);

	for (uint32_t k = 0; k < cfg->n_tunnels; k++) {
		const struct natt_cfg_tunnel *t = &cfg->tunnels[k];
		struct natt_journal_tunnel *n = &r->next[k];
		const struct natt_journal_tunnel *o;
		uint8_t a = 0;

		memset(n, 0, sizeof(*n));
		memcpy(n->name, t->name, sizeof(n->name));
		n->state = NATT_JT_LIVE;
		n->spi[NATT_DIR_IN] = t->in.spi;
		n->spi[NATT_DIR_OUT] = t->out.spi;
		n->sa_digest[NATT_DIR_IN] = sa_digest(cfg, t, NATT_DIR_IN);
		n->sa_digest[NATT_DIR_OUT] = sa_digest(cfg, t, NATT_DIR_OUT);
		n->param_digest = param_digest(cfg, t);
		n->n_pfx = t->n_remote_ts;
		memcpy(n->pfx, natt_config_remote_ts(cfg, t), t->n_remote_ts * sizeof(n->pfx[0]));

		if (r->id_of[k] == UINT32_MAX) {
			/* lowest free id: ids stay dense, counters compact */
			while (free_id < r->max_tunnels &&
			       (natt_journal_tunnel(j, free_id)->state != NATT_JT_FREE ||
				r->cfg_of[free_id] != UINT32_MAX))
				free_id++;
			if (free_id == r->max_tunnels)
				return -ENOSPC;   /* natt_rec_check() makes this unreachable */
			r->id_of[k] = free_id;
			r->cfg_of[free_id] = k;
			r->act[k] = REC_ADD;
			c->added++;
			continue;
		}
		o = natt_journal_tunnel(j, r->id_of[k]);
		/* a grace SA still running keeps its slot in the journal */
		if (grace_live(o, now)) {
			n->grace_spi = o->grace_spi;
			n->grace_until_ns = o->grace_until_ns;
		}
		n->last_evt_type = o->last_evt_type;
		n->last_evt_ns = o->last_evt_ns;
		n->last_evt_addr = o->last_evt_addr;
		n->last_evt_old_addr = o->last_evt_old_addr;
		n->last_evt_port = o->last_evt_port;
		n->last_evt_old_port = o->last_evt_old_port;
		n->last_evt_value = o->last_evt_value;
		if (o->state == NATT_JT_DIRTY) {
			a = REC_REINSTALL;
			c->reinstalled++;
		} else {
			if (o->sa_digest[NATT_DIR_IN] != n->sa_digest[NATT_DIR_IN])
				a |= REC_REKEY_IN;
			if (o->sa_digest[NATT_DIR_OUT] != n->sa_digest[NATT_DIR_OUT])
				a |= REC_REKEY_OUT;
			if (o->param_digest != n->param_digest)
				a |= REC_PARAMS;
			if (o->n_pfx != n->n_pfx ||
			    memcmp(o->pfx, n->pfx, n->n_pfx * sizeof(n->pfx[0])) != 0)
				a |= REC_ROUTES;
			if (a & (REC_REKEY_IN | REC_REKEY_OUT))
				c->rekeyed++;
			else if (a)
				c->updated++;
			else
				c->unchanged++;
		}
		r->act[k] = a;
	}
	for (uint32_t id = 0; id < r->max_tunnels; id++)
		if (natt_journal_tunnel(j, id)->state != NATT_JT_FREE && r->cfg_of[id] == UINT32_MAX)
			c->removed++;
	c->n_tunnels = cfg->n_tunnels;
	return 0;
}

/* Pass 2: the messages, in an order that never refuses a valid file. */
static void
rec_send(struct rec_run *x, const struct spi_set *in_new, const struct spi_set *out_new)
{
	struct natt_rec *r = x->r;
	const struct natt_config *cfg = x->cfg;
	struct natt_journal_hdr *j = r->j;
	struct natt_ctl_msg *m;

	/* interfaces and knobs: idempotent, always sent */
	for (uint32_t i = 0; i < cfg->n_ifaces; i++) {
		const struct natt_cfg_iface *ifc = &cfg->iface[i];

		if ((m = msg(x, NATT_CTL_IFACE, ck(r->max_tunnels, i))) == NULL)
			return;
		m->u.iface.port = ifc->port;
		m->u.iface.role = ifc->role;
		m->u.iface.addr = ifc->addr;
		memcpy(m->u.iface.next_hop_mac, ifc->next_hop_mac, sizeof(ifc->next_hop_mac));
		m->u.iface.next_hop_ip = ifc->next_hop_ip;
		m->u.iface.mtu = ifc->mtu;
		memcpy(m->u.iface.name, ifc->name, sizeof(m->u.iface.name));
	}
	if ((m = msg(x, NATT_CTL_PARAMS, ck(r->max_tunnels, NATT_CFG_MAX_IFACES))) == NULL)
		return;
	m->u.params.mss_clamp = natt_config_mss(cfg);
	m->u.params.df_mode = cfg->df_mode;
	m->u.params.icmp_rate = cfg->icmp_rate;
	m->u.params.idle_timeout_s = cfg->idle_timeout;
	m->u.params.exception_rate = cfg->exception_rate;

	/* 1. what goes away: removed tunnels, dirty ones, routes lost, SPIs
	 * that another SA of the file takes over, grace SAs whose SPI returns */
	for (uint32_t id = 0; id < r->max_tunnels && x->rc == NATT_PROG_OK; id++) {
		struct natt_journal_tunnel *o = natt_journal_tunnel(j, id);
		uint32_t k = r->cfg_of[id];
		uint8_t a;

		if (o->state == NATT_JT_FREE)
			continue;
		if (k == UINT32_MAX) {
			send_forget(x, id, o);
			continue;
		}
		a = r->act[k];
		if (a & REC_REINSTALL) {
			send_forget(x, id, o);
			continue;
		}
		if (a & REC_ROUTES) {
			struct natt_ctl_ts lost[NATT_MAX_TS];
			const struct natt_journal_tunnel *n = &r->next[k];
			unsigned int nl = 0;

			for (unsigned int i = 0; i < o->n_pfx; i++)
				if (!pfx_in(n->pfx, n->n_pfx, &o->pfx[i]))
					lost[nl++] = o->pfx[i];
			send_routes(x, NATT_CTL_ROUTE_DEL, id, lost, nl, NATT_ROUTE_F_IFPRESENT);
		}
		if ((a & REC_REKEY_IN) && spi_set_has(in_new, o->spi[NATT_DIR_IN]))
			send_sa_del(x, id, NATT_DIR_IN, o->spi[NATT_DIR_IN], 0);
		if ((a & REC_REKEY_OUT) && spi_set_has(out_new, o->spi[NATT_DIR_OUT]))
			send_sa_del(x, id, NATT_DIR_OUT, o->spi[NATT_DIR_OUT], 0);
		if (grace_live(o, x->now) &&
		    (spi_set_has(in_new, o->grace_spi) || (a & REC_REKEY_IN))) {
			/* one grace SA per tunnel: a second rekey ends the first;
			 * and its SPI may now be another tunnel's */
			send_sa_del(x, id, NATT_DIR_IN, o->grace_spi, 0);
			r->next[k].grace_spi = 0;
			r->next[k].grace_until_ns = 0;
			r->act[k] |= REC_JOURNAL;
		}
	}

	/* 2. installs, in file order */
	for (uint32_t k = 0; k < cfg->n_tunnels && x->rc == NATT_PROG_OK; k++) {
		uint8_t a = r->act[k];
		uint32_t id = r->id_of[k];
		const struct natt_journal_tunnel *n = &r->next[k];

		if ((a & ~REC_JOURNAL) == 0)
			continue;
		if (a & (REC_ADD | REC_REINSTALL)) {
			send_sa(x, k, NATT_DIR_IN, NATT_CTL_SA_ADD, a & REC_ADD);
			send_sa(x, k, NATT_DIR_OUT, NATT_CTL_SA_ADD, false);
			send_routes(x, NATT_CTL_ROUTE_ADD, id, n->pfx, n->n_pfx, 0);
			continue;
		}
		for (uint8_t dir = NATT_DIR_IN; dir <= NATT_DIR_OUT; dir++) {
			uint8_t rekey = dir == NATT_DIR_IN ? REC_REKEY_IN : REC_REKEY_OUT;

			if (a & rekey)
				send_sa(x, k, dir, NATT_CTL_SA_ADD, false);
			/* after a rekey too: a new SA takes the tunnel's current
			 * mapping, a changed peer in the file overrides it */
			if (a & REC_PARAMS)
				send_sa(x, k, dir, NATT_CTL_SA_UPDATE, false);
		}
		if (a & REC_ROUTES)  /* adding what the tunnel already routes is a no-op */
			send_routes(x, NATT_CTL_ROUTE_ADD, id, n->pfx, n->n_pfx, 0);
	}

	/* 3. retire what the new SAs replaced */
	for (uint32_t k = 0; k < cfg->n_tunnels && x->rc == NATT_PROG_OK; k++) {
		uint8_t a = r->act[k];
		uint32_t id = r->id_of[k];
		const struct natt_journal_tunnel *o;

		if (!(a & (REC_REKEY_IN | REC_REKEY_OUT)))
			continue;
		o = natt_journal_tunnel(j, id);
		if ((a & REC_REKEY_IN) && o->spi[NATT_DIR_IN] != r->next[k].spi[NATT_DIR_IN] &&
		    !spi_set_has(in_new, o->spi[NATT_DIR_IN])) {
			send_sa_del(x, id, NATT_DIR_IN, o->spi[NATT_DIR_IN], r->grace_ms);
			if (r->grace_ms != 0) {  /* deadline set once acked */
				r->next[k].grace_spi = o->spi[NATT_DIR_IN];
				r->next[k].grace_until_ns = UINT64_MAX;
			}
		}
		if ((a & REC_REKEY_OUT) && !spi_set_has(out_new, o->spi[NATT_DIR_OUT]))
			send_sa_del(x, id, NATT_DIR_OUT, o->spi[NATT_DIR_OUT], 0);
	}
}

int
natt_rec_apply(struct natt_rec *r, const struct natt_config *cfg,
	       struct natt_reload_counts *c)
{
	struct natt_journal_hdr *j = r->j;
	struct rec_run x = { .r = r, .cfg = cfg, .now = natt_rec_now_ns(), .rc = NATT_PROG_OK };
	uint64_t acked;
	struct spi_set in_new = { 0 }, out_new = { 0 };
	int rc;

	memset(c, 0, sizeof(*c));
	r->grace_ms = cfg->rekey_grace * 1000u;
	if (rec_plan(r, cfg, c) != 0 || spi_set_init(&in_new, cfg->n_tunnels) != 0 ||
	    spi_set_init(&out_new, cfg->n_tunnels) != 0) {
		fprintf(stderr, "natt-control: out of memory planning the reload\n");
		rc = NATT_PROG_REJECTED;
		goto out;
	}
	for (uint32_t k = 0; k < cfg->n_tunnels; k++) {
		spi_set_add(&in_new, cfg->tunnels[k].in.spi);
		spi_set_add(&out_new, cfg->tunnels[k].out.spi);
	}

	/* what we are about to touch is dirty until every worker confirmed */
	memset(r->failed, 0, r->max_tunnels);
	r->nack_lines = 0;
	for (uint32_t id = 0; id < r->max_tunnels; id++) {
		struct natt_journal_tunnel *o = natt_journal_tunnel(j, id);
		uint32_t k = r->cfg_of[id];

		r->prior[id] = o->state;

		if (k == UINT32_MAX) {
			if (o->state == NATT_JT_LIVE) {   /* being removed */
				memcpy(o->pend_spi, o->spi, sizeof(o->pend_spi));
				o->state = NATT_JT_DIRTY;
			}
			continue;
		}
		if ((r->act[k] & ~REC_JOURNAL) == 0)
			continue;
		if (r->act[k] & REC_ADD) {
			memset(o, 0, sizeof(*o));
			memcpy(o->name, r->next[k].name, sizeof(o->name));
		}
		if (o->state != NATT_JT_DIRTY)
			memcpy(o->pend_spi, r->next[k].spi, sizeof(o->pend_spi));
		o->state = NATT_JT_DIRTY;
	}

	r->prog->hooks.nack_ctx = r;
	r->prog->hooks.nack = rec_nack;
	natt_prog_begin(r->prog);
	rec_send(&x, &in_new, &out_new);
	rc = x.rc;
	if (rc == NATT_PROG_OK)
		rc = natt_prog_commit(r->prog);
	r->prog->hooks.nack = NULL;
	if (r->nack_lines > NATT_PROG_NACK_LINES)
		fprintf(stderr, "natt-control: %u refusals in all, the first %u shown\n",
			r->nack_lines, NATT_PROG_NACK_LINES);
	if (rc == NATT_PROG_TIMEOUT)
		goto out;  /* no idea what was applied: everything touched stays dirty */

	/* record what every worker confirmed */
	acked = natt_rec_now_ns();
	for (uint32_t id = 0; id < r->max_tunnels; id++) {
		struct natt_journal_tunnel *o = natt_journal_tunnel(j, id);
		uint32_t k = r->cfg_of[id];

		if (r->failed[id]) {
			c->failed++;
			continue;          /* stays dirty: installed again next time */
		}
		if (k == UINT32_MAX) {
			if (o->state != NATT_JT_FREE)
				memset(o, 0, sizeof(*o));
			continue;
		}
		if (r->act[k] == 0)
			continue;
		if (r->next[k].grace_until_ns == UINT64_MAX)
			r->next[k].grace_until_ns = acked + (uint64_t)r->grace_ms * 1000000ull;
		*o = r->next[k];
	}
	if (rc == NATT_PROG_OK && c->failed)
		rc = NATT_PROG_REJECTED;
	if (rc == NATT_PROG_OK)
		j->generation = r->prog->generation;
	j->n_tunnels = cfg->n_tunnels - c->failed;
out:
	free(in_new.slot);
	free(out_new.slot);
	return rc;
}
