/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_apply.c - apply natt-control's messages on the worker that owns the
 * tables, between bursts, and answer on the event ring (natt_ctl.h).
 */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "ipv4.h"
#include "sa.h"
#include "worker.h"

void
natt_evt_post(struct natt_worker *w, struct natt_evt *e)
{
	e->version = NATT_CTL_VERSION;
	e->worker = w->id;
	e->tsc = rte_rdtsc();
	/* nobody listening must never stall forwarding: count and move on */
	if (rte_ring_mp_enqueue_elem(w->evt, e, sizeof(*e)) != 0)
		w->st->counters[NATT_CNT_EVT_LOST]++;
}

void
natt_evt_send(struct natt_worker *w, uint16_t type, uint32_t cookie, int status,
	      uint32_t spi, uint32_t tunnel_id)
{
	struct natt_evt e = {
		.type = type, .cookie = cookie, .status = status, .spi = spi,
		.tunnel_id = tunnel_id,
	};

	natt_evt_post(w, &e);
}

#define IDLE_SCAN_SLICE 256u        /* tunnel ids looked at per scan */

/* Idle: no authenticated packet and no keepalive for idle_timeout_s. */
static void
idle_check(struct natt_worker *w, uint32_t id, struct natt_tunnel_stats *t)
{
	uint64_t now = w->now, last;

	last = natt_tsc_latest(t->last_seen_tsc, t->last_keepalive_tsc, t->created_tsc);
	if (t->idle) {
		if (last == t->idle_mark_tsc)
			return;                /* still the same silence */
		t->idle = 0;                   /* traffic again: the next silence counts */
	}
	if (now - last > w->idle_timeout_tsc && now > last) {
		struct natt_evt e = {
			.type = NATT_EVT_IDLE, .tunnel_id = id, .spi = t->in_spi,
			.addr = t->remote_addr, .port = t->remote_port,
			.value = (uint32_t)((now - last) / w->tsc_hz),
		};

		t->idle = 1;
		t->idle_mark_tsc = last;
		w->st->counters[NATT_CNT_IDLE_EVENTS]++;
		natt_evt_post(w, &e);
	}
}

void
natt_tunnel_scan(struct natt_worker *w)
{
	uint64_t now = w->now;

	if ((w->idle_timeout_tsc == 0 && w->n_keepalive == 0) || now < w->idle_scan_tsc)
		return;
	/* a slice per millisecond: 1M tunnels in about 4 s, a few cache
	 * lines per millisecond */
	w->idle_scan_tsc = now + w->tsc_hz / 1000;
	for (unsigned int k = 0; k < IDLE_SCAN_SLICE; k++) {
		uint32_t id = w->idle_next_id++;
		struct natt_tunnel_stats *t;

		if (id >= w->max_tunnels) {
			w->idle_next_id = 0;
			break;
		}
		t = natt_stats_tunnel(w->hdr, id);
		if (t->owner != w->id || (t->in_spi == 0 && t->out_spi == 0))
			continue;
		if (w->idle_timeout_tsc != 0 && t->in_spi != 0)
			idle_check(w, id, t);
		if (w->n_keepalive != 0)
			natt_keepalive_scan_one(w, id, t);
	}
}

static int
apply_iface(struct natt_worker *w, const struct natt_ctl_iface *m)
{
	struct natt_port *p;

	if (m->port >= w->n_ports || m->port >= NATT_MAX_PORTS ||
	    (m->role != NATT_ROLE_OUTSIDE && m->role != NATT_ROLE_INSIDE))
		return -EINVAL;
	p = &w->port[m->port];
	if (rte_eth_macaddr_get(m->port, &p->mac) != 0)
		return -ENODEV;
	/* a port changing role must not leave a stale outside/inside id */
	if (w->outside == m->port)
		w->outside = UINT16_MAX;
	if (w->inside == m->port)
		w->inside = UINT16_MAX;
	p->role = m->role;
	p->addr = m->addr;
	p->mtu = m->mtu;
	if (!rte_is_zero_ether_addr((const struct rte_ether_addr *)m->next_hop_mac)) {
		memcpy(p->next_hop.addr_bytes, m->next_hop_mac, RTE_ETHER_ADDR_LEN);
		p->next_hop_ip = 0;
		p->resolved = true;
	} else if (m->next_hop_ip != p->next_hop_ip) {
		/* a new next hop to resolve; the same one again (every reload
		 * sends IFACE) keeps what ARP found */
		p->next_hop_ip = m->next_hop_ip;
		p->resolved = false;
		p->arp_next_tsc = 0;
	}
	w->hdr->neigh[m->port].ip = p->next_hop_ip;   /* every worker: the same value */
	if (m->role == NATT_ROLE_OUTSIDE) {
		w->outside = m->port;
		w->inner_mtu = natt_inner_mtu(m->mtu);
	} else
		w->inside = m->port;
	return 0;
}

static int
apply_params(struct natt_worker *w, const struct natt_ctl_params *m)
{
	if (m->df_mode > NATT_DF_CLEAR)
		return -EINVAL;
	w->mss_clamp = m->mss_clamp;
	w->df_mode = m->df_mode;
	w->icmp.rate = m->icmp_rate;
	w->exception.rate = m->exception_rate;
	w->idle_timeout_s = m->idle_timeout_s;
	w->idle_timeout_tsc = (uint64_t)m->idle_timeout_s * w->tsc_hz;
	w->st->idle_timeout_s = m->idle_timeout_s;     /* for diagnose */
	w->st->exception_rate = m->exception_rate;
	return 0;
}

static int
apply_one(struct natt_worker *w, const struct natt_ctl_msg *m)
{
	if (m->hdr.version != NATT_CTL_VERSION)
		return -EPROTO;
	switch (m->hdr.type) {
	case NATT_CTL_IFACE:
		return apply_iface(w, &m->u.iface);
	case NATT_CTL_SA_ADD:
		return natt_sa_add(w, &m->u.sa);
	case NATT_CTL_SA_UPDATE:
		return natt_sa_update(w, &m->u.sa);
	case NATT_CTL_SA_DEL:
		return natt_sa_del(w, &m->u.del);
	case NATT_CTL_ROUTE_ADD:
		return natt_route_add(w, &m->u.route);
	case NATT_CTL_ROUTE_DEL:
		return natt_route_del(w, &m->u.route);
	case NATT_CTL_PARAMS:
		return apply_params(w, &m->u.params);
	default:
		return -EOPNOTSUPP;
	}
}

static void
apply_commit(struct natt_worker *w, uint32_t generation)
{
	/* Ports are polled only if both sides are known: no packet is
	 * forwarded before policy is loaded. */
	w->active = w->outside != UINT16_MAX;
	w->st->generation = generation;
	w->st->active = w->active;
	natt_evt_send(w, NATT_EVT_COMMIT_ACK, generation, w->batch_err, 0, 0);
	w->batch_err = 0;
}

unsigned int
natt_ctl_drain(struct natt_worker *w)
{
	struct natt_ctl_msg msg;
	unsigned int n;

	for (n = 0; n < NATT_CTL_BUDGET; n++) {
		int rc;

		if (rte_ring_sc_dequeue_elem(w->ctl, &msg, sizeof(msg)) != 0)
			break;
		w->st->counters[NATT_CNT_CTL_MSGS]++;
		if (msg.hdr.version == NATT_CTL_VERSION &&
		    msg.hdr.type == NATT_CTL_COMMIT) {
			apply_commit(w, msg.hdr.cookie);
			continue;
		}
		rc = apply_one(w, &msg);
		if (rc != 0) {
			uint32_t spi = 0, tid = 0;

			switch (msg.hdr.type) {
			case NATT_CTL_SA_ADD:
			case NATT_CTL_SA_UPDATE:
				spi = msg.u.sa.spi;
				tid = msg.u.sa.tunnel_id;
				break;
			case NATT_CTL_SA_DEL:
				spi = msg.u.del.spi;
				tid = msg.u.del.tunnel_id;
				break;
			case NATT_CTL_ROUTE_ADD:
			case NATT_CTL_ROUTE_DEL:
				tid = msg.u.route.tunnel_id;
				break;
			}
			if (w->batch_err == 0)
				w->batch_err = rc;
			natt_evt_send(w, NATT_EVT_NACK, msg.hdr.cookie, rc, spi, tid);
		}
	}
	/* the last message may have carried keys: leave none on the stack */
	explicit_bzero(&msg, sizeof(msg));
	return n;
}
