/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * program.c - natt_config -> natt_ctl messages on every worker's ring, then
 * wait for the COMMIT_ACKs (protocol in natt_ctl.h).
 *
 * Nothing is ever dropped: on a full ring we sleep 1 ms and retry. While we
 * wait we also drain the event ring, because workers drop (and count) events
 * nobody consumes, and a lost NACK would turn a failure into a silent success.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "program.h"

#define PROG_EVT_BURST 32u
#define PROG_RETRY_US 50u

static double
prog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void prog_event(struct natt_prog *p, const struct natt_evt *e);

/* ---- attach ---- */

/* Everything the primary publishes, or -EAGAIN if something is not there yet. */
static int
prog_lookup(struct natt_prog *p, char *why, size_t whylen)
{
	const struct rte_memzone *mz = rte_memzone_lookup(NATT_STATS_MZ);
	struct natt_stats_hdr *h;
	char name[RTE_RING_NAMESIZE];

	if (!mz) {
		snprintf(why, whylen, "memzone %s not found", NATT_STATS_MZ);
		return -EAGAIN;
	}
	h = mz->addr;
	/* the primary fills the header and stores magic last */
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != NATT_STATS_MAGIC) {
		snprintf(why, whylen, "stats header not initialised (magic 0x%08x)", h->magic);
		return -EAGAIN;
	}
	if (h->version != NATT_STATS_VERSION) {
		snprintf(why, whylen, "stats version %u, natt-control speaks %u", h->version,
			 NATT_STATS_VERSION);
		return -EPROTO;
	}
	if (h->n_workers == 0 || h->n_workers > NATT_MAX_WORKERS ||
	    mz->len < natt_stats_size(h->n_workers, h->max_tunnels)) {
		snprintf(why, whylen, "stats header inconsistent (%u workers, %u tunnels, %zu bytes)",
			 h->n_workers, h->max_tunnels, mz->len);
		return -EPROTO;
	}
	for (uint32_t w = 0; w < h->n_workers; w++) {
		snprintf(name, sizeof(name), NATT_CTL_RING_FMT, w);
		p->ctl[w] = rte_ring_lookup(name);
		if (!p->ctl[w]) {
			snprintf(why, whylen, "ring %s not found", name);
			return -EAGAIN;
		}
	}
	p->evt = rte_ring_lookup(NATT_EVT_RING);
	if (!p->evt) {
		snprintf(why, whylen, "ring %s not found", NATT_EVT_RING);
		return -EAGAIN;
	}
	p->hdr = h;
	p->n_workers = h->n_workers;
	return 0;
}

int
natt_prog_attach(struct natt_prog *p, unsigned int timeout_s)
{
	double deadline = prog_now_ms() + timeout_s * 1e3;
	char why[128];
	int rc;

	memset(p, 0, offsetof(struct natt_prog, batch));
	while ((rc = prog_lookup(p, why, sizeof(why))) == -EAGAIN && prog_now_ms() < deadline)
		usleep(50 * 1000);
	if (rc < 0) {
		fprintf(stderr, "natt-control: cannot attach to natt-dataplane: %s%s\n", why,
			rc == -EAGAIN ? " (gave up waiting)" : "");
		return -1;
	}
	return 0;
}

void
natt_prog_drain_stale(struct natt_prog *p)
{
	struct natt_evt ev[PROG_EVT_BURST];
	unsigned int n, stale = 0;

	/* answers to a previous natt-control would be taken for ours; events
	 * that happened while nobody listened still go to the hook */
	while ((n = rte_ring_dequeue_burst_elem(p->evt, ev, sizeof(ev[0]), PROG_EVT_BURST, NULL))) {
		for (unsigned int i = 0; i < n; i++) {
			if (ev[i].type == NATT_EVT_NACK || ev[i].type == NATT_EVT_COMMIT_ACK)
				stale++;
			else
				prog_event(p, &ev[i]);
		}
	}
	if (stale)
		fprintf(stderr, "natt-control: discarded %u answer(s) meant for an earlier"
			" natt-control\n", stale);
}

/* ---- events ---- */

static void
prog_event(struct natt_prog *p, const struct natt_evt *e)
{
	if (e->version != NATT_CTL_VERSION || e->worker >= p->n_workers) {
		fprintf(stderr, "natt-control: ignoring event version %u type %u from worker %u\n",
			e->version, e->type, e->worker);
		return;
	}
	switch (e->type) {
	case NATT_EVT_NACK:
		p->n_nacks++;
		/* a NACKed COMMIT is that worker's final answer */
		if (e->cookie == p->generation && !p->acked[e->worker]) {
			p->acked[e->worker] = 1;
			p->ack_status[e->worker] = e->status ? e->status : -EPROTO;
			p->n_acked++;
		}
		if (p->hooks.nack)
			p->hooks.nack(p->hooks.nack_ctx, e);
		break;
	case NATT_EVT_COMMIT_ACK:
		if (e->cookie != p->generation || p->acked[e->worker]) {
			fprintf(stderr, "natt-control: worker %u acked generation %u (status %d),"
				" not ours\n", e->worker, e->cookie, e->status);
			break;
		}
		p->acked[e->worker] = 1;
		p->ack_status[e->worker] = e->status;
		p->n_acked++;
		if (e->status)
			fprintf(stderr, "natt-control: worker %u rejected generation %u: %s (%d)\n",
				e->worker, e->cookie, strerror(-e->status), e->status);
		break;
	default:
		if (p->hooks.event)
			p->hooks.event(p->hooks.event_ctx, e);
		break;
	}
}

unsigned int
natt_prog_poll_events(struct natt_prog *p)
{
	struct natt_evt ev[PROG_EVT_BURST];
	unsigned int n, total = 0;

	while ((n = rte_ring_dequeue_burst_elem(p->evt, ev, sizeof(ev[0]), PROG_EVT_BURST, NULL))) {
		for (unsigned int i = 0; i < n; i++)
			prog_event(p, &ev[i]);
		total += n;
	}
	return total;
}

/* ---- sending ---- */

/* The batch as worker w receives it: only an SA's owner gets its keys; the
 * other workers only learn SPI -> owner (natt_ctl.h). */
static const struct natt_ctl_msg *
prog_batch_for(struct natt_prog *p, uint32_t w)
{
	memcpy(p->wbatch, p->batch, p->n_batch * sizeof(p->batch[0]));
	for (unsigned int i = 0; i < p->n_batch; i++) {
		struct natt_ctl_msg *m = &p->wbatch[i];

		if ((m->hdr.type == NATT_CTL_SA_ADD || m->hdr.type == NATT_CTL_SA_UPDATE) &&
		    m->u.sa.owner != w) {
			explicit_bzero(m->u.sa.key, sizeof(m->u.sa.key));
			explicit_bzero(m->u.sa.salt, sizeof(m->u.sa.salt));
		}
	}
	return p->wbatch;
}

/* Enqueue the batch on every worker's ring; never drops, gives up on a
 * worker that takes nothing for NATT_PROG_ACK_TIMEOUT_S. */
static int
prog_flush(struct natt_prog *p)
{
	for (uint32_t w = 0; w < p->n_workers; w++) {
		const struct natt_ctl_msg *batch = prog_batch_for(p, w);
		double stall = prog_now_ms();
		unsigned int sent = 0;

		while (sent < p->n_batch) {
			unsigned int k = rte_ring_enqueue_burst_elem(p->ctl[w], &batch[sent],
					sizeof(batch[0]), p->n_batch - sent, NULL);

			sent += k;
			if (sent == p->n_batch)
				break;
			if (k)
				stall = prog_now_ms();
			else if (prog_now_ms() - stall > NATT_PROG_ACK_TIMEOUT_S * 1e3) {
				fprintf(stderr, "natt-control: worker %u has not drained its command"
					" ring for %d s\n", w, NATT_PROG_ACK_TIMEOUT_S);
				explicit_bzero(p->batch, sizeof(p->batch));
				explicit_bzero(p->wbatch, sizeof(p->wbatch));
				return NATT_PROG_TIMEOUT;
			}
			natt_prog_poll_events(p);
			usleep(PROG_RETRY_US);
		}
	}
	explicit_bzero(p->batch, p->n_batch * sizeof(p->batch[0])); /* keys */
	explicit_bzero(p->wbatch, p->n_batch * sizeof(p->wbatch[0]));
	p->n_batch = 0;
	return NATT_PROG_OK;
}

/* Next free slot of the batch, header filled; flushes when full. */
static struct natt_ctl_msg *
prog_msg(struct natt_prog *p, uint16_t type, uint32_t cookie, int *rc)
{
	struct natt_ctl_msg *m;

	if (p->n_batch == NATT_PROG_BATCH && (*rc = prog_flush(p)) != NATT_PROG_OK)
		return NULL;
	m = &p->batch[p->n_batch++];
	memset(m, 0, sizeof(*m));
	m->hdr.version = NATT_CTL_VERSION;
	m->hdr.type = type;
	m->hdr.cookie = cookie;
	return m;
}

/* Next generation: above what any worker applied, e.g. before our restart. */
static uint32_t
prog_next_generation(const struct natt_prog *p)
{
	uint64_t g = 0;

	for (uint32_t w = 0; w < p->n_workers; w++) {
		uint64_t wg = __atomic_load_n(&natt_stats_worker(p->hdr, w)->generation,
					      __ATOMIC_RELAXED);

		if (wg > g)
			g = wg;
	}
	return (uint32_t)(g + 1);
}

static int
prog_await(struct natt_prog *p)
{
	double deadline = prog_now_ms() + NATT_PROG_ACK_TIMEOUT_S * 1e3;

	while (p->n_acked < p->n_workers) {
		if (natt_prog_poll_events(p))
			continue;
		if (prog_now_ms() > deadline) {
			for (uint32_t w = 0; w < p->n_workers; w++)
				if (!p->acked[w])
					fprintf(stderr, "natt-control: worker %u did not ack generation"
						" %u within %d s\n", w, p->generation,
						NATT_PROG_ACK_TIMEOUT_S);
			return NATT_PROG_TIMEOUT;
		}
		usleep(100);
	}
	/* a worker queues its NACKs before its ack, so all have been seen
	 * unless the event ring overflowed; the ack status covers that case */
	for (uint32_t w = 0; w < p->n_workers; w++)
		if (p->ack_status[w])
			return NATT_PROG_REJECTED;
	return p->n_nacks ? NATT_PROG_REJECTED : NATT_PROG_OK;
}

void
natt_prog_begin(struct natt_prog *p)
{
	p->generation = prog_next_generation(p);
	p->n_nacks = 0;
	p->n_acked = 0;
	p->n_msgs = 0;
	p->n_batch = 0;
	memset(p->acked, 0, sizeof(p->acked));
	memset(p->ack_status, 0, sizeof(p->ack_status));
}

struct natt_ctl_msg *
natt_prog_msg(struct natt_prog *p, uint16_t type, uint32_t cookie, int *rc)
{
	p->n_msgs++;
	return prog_msg(p, type, cookie, rc);
}

int
natt_prog_commit(struct natt_prog *p)
{
	int rc = NATT_PROG_OK;

	if (p->generation >= NATT_PROG_COOKIE_BASE) {
		fprintf(stderr, "natt-control: generation %u collides with message cookies\n",
			p->generation);
		return NATT_PROG_REJECTED;
	}
	if (!prog_msg(p, NATT_CTL_COMMIT, p->generation, &rc))
		return rc;
	rc = prog_flush(p);
	if (rc == NATT_PROG_OK)
		rc = prog_await(p);
	return rc;
}
