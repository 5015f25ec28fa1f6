/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * telemetry.c - /natt/... commands on DPDK telemetry (see telemetry.h).
 *
 * DPDK 22.11 telemetry: dict keys are [A-Za-z0-9_/] only, a dict may hold
 * dicts and plain arrays but an array holds no dicts, a string is at most
 * 127 bytes, and a reply over 16 KiB is cut silently. So lists of records
 * are dicts keyed by number, tunnel names are array values (they may hold
 * '.' and '-'), and every list is bounded. Callbacks may run concurrently
 * on several telemetry threads: no static scratch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "telemetry.h"

#define TEL_STR_LEN 128    /* RTE_TEL_MAX_STRING_LEN */

static struct natt_stats_hdr *tel_h;
static struct natt_journal_hdr *tel_j;

/* A string from shared memory as a telemetry value: printable ASCII only. */
static void
tel_add_str(struct rte_tel_data *d, const char *key, const char *s, size_t max)
{
	char buf[TEL_STR_LEN];
	size_t i;

	for (i = 0; i < max && i < sizeof(buf) - 1 && s[i]; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	rte_tel_data_add_dict_string(d, key, buf);
}

static void
tel_add_spi(struct rte_tel_data *d, const char *key, uint32_t spi)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "0x%08x", spi);
	rte_tel_data_add_dict_string(d, key, spi ? buf : "");
}

static void
tel_add_addr(struct rte_tel_data *d, const char *key, uint32_t addr, uint16_t port)
{
	char a[INET_ADDRSTRLEN], buf[32];

	inet_ntop(AF_INET, &addr, a, sizeof(a));
	snprintf(buf, sizeof(buf), "%s:%u", a, ntohs(port));
	rte_tel_data_add_dict_string(d, key, addr || port ? buf : "");
}

/* Milliseconds in d TSC cycles. */
static uint64_t
tel_ms(const struct natt_stats_hdr *h, uint64_t d)
{
	return d / h->tsc_hz * 1000 + d % h->tsc_hz * 1000 / h->tsc_hz;
}

/* Unix milliseconds of dataplane TSC value t, 0 = never. */
static uint64_t
tel_unix_ms(const struct natt_stats_hdr *h, uint64_t t)
{
	if (t == 0)
		return 0;
	return h->start_unix_ns / 1000000 + tel_ms(h, t > h->start_tsc ? t - h->start_tsc : 0);
}

static bool
tel_tunnel_live(const struct natt_tunnel_stats *t)
{
	return t->in_spi != 0 || t->out_spi != 0;
}

static uint32_t
tel_tunnels_live(struct natt_stats_hdr *h)
{
	uint32_t n = 0;

	for (uint32_t id = 0; id < h->max_tunnels; id++)
		n += tel_tunnel_live(natt_stats_tunnel(h, id));
	return n;
}

/* Parse a decimal parameter; def when absent. */
static int
tel_param_u32(const char *params, uint32_t def, uint32_t max, uint32_t *v)
{
	unsigned long long x;
	char *end;

	if (params == NULL || *params == '\0') {
		*v = def;
		return 0;
	}
	errno = 0;
	x = strtoull(params, &end, 10);
	if (errno || *end != '\0' || params[0] == '-' || x > max)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

/* ---- /natt/stats ---- */

static void
tel_reload(struct rte_tel_data *d, const struct natt_journal_hdr *j)
{
	rte_tel_data_add_dict_u64(d, "generation", j->generation);
	rte_tel_data_add_dict_u64(d, "reloads_ok", j->reloads_ok);
	rte_tel_data_add_dict_u64(d, "reloads_failed", j->reloads_failed);
	rte_tel_data_add_dict_string(d, "last_status", natt_reload_status_name(j->last_status));
	rte_tel_data_add_dict_u64(d, "last_attempt_unix_ms", j->last_attempt_ns / 1000000);
	rte_tel_data_add_dict_u64(d, "last_ok_unix_ms", j->last_ok_ns / 1000000);
	rte_tel_data_add_dict_u64(d, "last_parse_us", j->last_parse_us);
	rte_tel_data_add_dict_u64(d, "last_apply_us", j->last_apply_us);
	rte_tel_data_add_dict_u64(d, "tunnels", j->n_tunnels);
	rte_tel_data_add_dict_u64(d, "last_added", j->last_added);
	rte_tel_data_add_dict_u64(d, "last_removed", j->last_removed);
	rte_tel_data_add_dict_u64(d, "last_updated", j->last_updated);
	rte_tel_data_add_dict_u64(d, "last_rekeyed", j->last_rekeyed);
	rte_tel_data_add_dict_u64(d, "last_unchanged", j->last_unchanged);
	tel_add_str(d, "config_path", j->config_path, sizeof(j->config_path));
	tel_add_str(d, "last_error", j->last_error, sizeof(j->last_error));
}

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct natt_stats_hdr *h = tel_h;
	struct natt_worker_stats sum;
	struct rte_tel_data *c;
	uint64_t gen = UINT64_MAX, drops = 0;

	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	natt_stats_sum(h, &sum);
	for (uint32_t w = 0; w < h->n_workers; w++)
		gen = RTE_MIN(gen, natt_stats_worker(h, w)->generation);
	for (unsigned int i = 0; i < NATT_DROP_MAX; i++)
		drops += sum.drops[i];
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "version", h->version);
	rte_tel_data_add_dict_u64(d, "start_unix_ms", h->start_unix_ns / 1000000);
	rte_tel_data_add_dict_u64(d, "uptime_ms", tel_ms(h, rte_rdtsc() - h->start_tsc));
	rte_tel_data_add_dict_u64(d, "workers", h->n_workers);
	rte_tel_data_add_dict_u64(d, "ports", h->n_ports);
	rte_tel_data_add_dict_u64(d, "max_tunnels", h->max_tunnels);
	rte_tel_data_add_dict_u64(d, "tunnels_live", tel_tunnels_live(h));
	rte_tel_data_add_dict_u64(d, "generation", gen);
	rte_tel_data_add_dict_u64(d, "drops", drops);
	c = rte_tel_data_alloc();
	if (c != NULL) {
		rte_tel_data_start_dict(c);
		for (unsigned int i = 0; i < NATT_CNT_MAX; i++)
			rte_tel_data_add_dict_u64(c, natt_counter_name(i), sum.counters[i]);
		if (rte_tel_data_add_dict_container(d, "counters", c, 0) != 0)
			rte_tel_data_free(c);
	}
	if (tel_j != NULL && (c = rte_tel_data_alloc()) != NULL) {
		rte_tel_data_start_dict(c);
		tel_reload(c, tel_j);
		if (rte_tel_data_add_dict_container(d, "reload", c, 0) != 0)
			rte_tel_data_free(c);
	}
	return 0;
}

/* ---- /natt/drops[,W] ---- */

static int
tel_drops(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct natt_stats_hdr *h = tel_h;
	struct natt_worker_stats sum;
	const struct natt_worker_stats *s = &sum;
	uint32_t w;

	RTE_SET_USED(cmd);
	if (tel_param_u32(params, UINT32_MAX, h->n_workers - 1, &w) != 0)
		return -EINVAL;
	if (w == UINT32_MAX)
		natt_stats_sum(h, &sum);
	else
		s = natt_stats_worker(h, w);
	rte_tel_data_start_dict(d);
	for (unsigned int r = 0; r < NATT_DROP_MAX; r++)
		rte_tel_data_add_dict_u64(d, natt_drop_name(r), s->drops[r]);
	return 0;
}

/* ---- /natt/ports ---- */

/* Port p's TAP ("" = none) and next hop resolved by ARP ("" = static MAC;
 * next_hop_mac "" = not resolved yet). The MAC is the low 48 bits of
 * neigh.mac, first byte highest. */
static void
tel_port_path(struct rte_tel_data *c, const struct natt_stats_hdr *h, uint32_t p)
{
	uint64_t mac = natt_neigh_mac(&h->neigh[p]);
	uint32_t ip = __atomic_load_n(&h->neigh[p].ip, __ATOMIC_RELAXED);
	char buf[INET_ADDRSTRLEN + 1], m[18];

	if (h->tap_of[p] != NATT_NO_TAP && h->tap_names[p][0] != '\0')
		tel_add_str(c, "tap", h->tap_names[p], sizeof(h->tap_names[p]) - 1);
	else
		rte_tel_data_add_dict_string(c, "tap", "");
	buf[0] = '\0';
	if (ip != 0)
		inet_ntop(AF_INET, &ip, buf, sizeof(buf));
	rte_tel_data_add_dict_string(c, "next_hop", buf);
	snprintf(m, sizeof(m), "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned int)(mac >> 40 & 0xff),
		 (unsigned int)(mac >> 32 & 0xff), (unsigned int)(mac >> 24 & 0xff),
		 (unsigned int)(mac >> 16 & 0xff), (unsigned int)(mac >> 8 & 0xff),
		 (unsigned int)(mac & 0xff));
	rte_tel_data_add_dict_string(c, "next_hop_mac", ip && (mac & NATT_NEIGH_VALID) ? m : "");
}

static int
tel_ports(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct natt_stats_hdr *h = tel_h;
	struct natt_worker_stats sum;
	char key[12];          /* a port number as text */

	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	natt_stats_sum(h, &sum);
	rte_tel_data_start_dict(d);
	for (uint32_t p = 0; p < h->n_ports; p++) {
		struct rte_tel_data *c = rte_tel_data_alloc();

		if (c == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(c);
		tel_add_str(c, "name", h->port_names[p], NATT_NAME_LEN);
		rte_tel_data_add_dict_u64(c, "rx_packets", sum.port[p].rx_packets);
		rte_tel_data_add_dict_u64(c, "rx_bytes", sum.port[p].rx_bytes);
		rte_tel_data_add_dict_u64(c, "tx_packets", sum.port[p].tx_packets);
		rte_tel_data_add_dict_u64(c, "tx_bytes", sum.port[p].tx_bytes);
		tel_port_path(c, h, p);
		snprintf(key, sizeof(key), "%u", p);
		if (rte_tel_data_add_dict_container(d, key, c, 0) != 0)
			rte_tel_data_free(c);
	}
	return 0;
}

/* ---- /natt/tunnels[,ID] ---- */

static int
tel_tunnels(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct natt_stats_hdr *h = tel_h;
	struct rte_tel_data *names, *ids;
	uint32_t start, id, n = 0;

	RTE_SET_USED(cmd);
	if (tel_param_u32(params, 0, h->max_tunnels, &start) != 0)
		return -EINVAL;
	names = rte_tel_data_alloc();
	ids = rte_tel_data_alloc();
	if (names == NULL || ids == NULL) {
		rte_tel_data_free(names);
		rte_tel_data_free(ids);
		return -ENOMEM;
	}
	rte_tel_data_start_array(names, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(ids, RTE_TEL_U64_VAL);
	for (id = start; id < h->max_tunnels && n < NATT_TEL_TUNNELS_PAGE; id++) {
		const struct natt_tunnel_stats *t = natt_stats_tunnel(h, id);
		char name[NATT_NAME_LEN];
		size_t i;

		if (!tel_tunnel_live(t))
			continue;
		for (i = 0; i < NATT_NAME_LEN - 1 && t->name[i]; i++)
			name[i] = t->name[i] > 0x20 && t->name[i] < 0x7f ? t->name[i] : '?';
		name[i] = '\0';
		rte_tel_data_add_array_string(names, name);
		rte_tel_data_add_array_u64(ids, id);
		n++;
	}
	/* more only if a live tunnel follows the page */
	while (id < h->max_tunnels && !tel_tunnel_live(natt_stats_tunnel(h, id)))
		id++;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "tunnels_live", tel_tunnels_live(h));
	rte_tel_data_add_dict_u64(d, "max_tunnels", h->max_tunnels);
	rte_tel_data_add_dict_u64(d, "start", start);
	rte_tel_data_add_dict_u64(d, "count", n);
	rte_tel_data_add_dict_u64(d, "more", id < h->max_tunnels);
	rte_tel_data_add_dict_u64(d, "next", id);
	if (rte_tel_data_add_dict_container(d, "names", names, 0) != 0)
		rte_tel_data_free(names);
	if (rte_tel_data_add_dict_container(d, "ids", ids, 0) != 0)
		rte_tel_data_free(ids);
	return 0;
}

/* ---- /natt/tunnel,NAME ---- */

/* The v4 fields: keepalives we send, the NAT mapping policy and what the
 * peer sends from, outbound drops. */
static void
tel_tunnel_nat(struct rte_tel_data *d, const struct natt_stats_hdr *h,
	       const struct natt_tunnel_stats *t)
{
	rte_tel_data_add_dict_u64(d, "keepalive_s", t->keepalive_s);
	rte_tel_data_add_dict_u64(d, "keepalives_sent", t->keepalives_sent);
	rte_tel_data_add_dict_u64(d, "last_keepalive_sent_unix_ms",
				  tel_unix_ms(h, t->last_keepalive_sent_tsc));
	rte_tel_data_add_dict_string(d, "nat_mapping", t->pinned ? "pin" : "follow");
	tel_add_addr(d, "seen", t->seen_addr, t->seen_port);
	rte_tel_data_add_dict_u64(d, "pin_ignored", t->pin_ignored);
	rte_tel_data_add_dict_u64(d, "too_big", t->too_big);
	rte_tel_data_add_dict_u64(d, "fragmented", t->fragmented);
	rte_tel_data_add_dict_u64(d, "bad_trailer", t->bad_trailer);
}

static int
tel_tunnel(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct natt_stats_hdr *h = tel_h;
	struct natt_tunnel_stats t;
	uint32_t id;

	RTE_SET_USED(cmd);
	if (params == NULL || *params == '\0' || strlen(params) >= NATT_NAME_LEN)
		return -EINVAL;
	for (id = 0; id < h->max_tunnels; id++) {
		const struct natt_tunnel_stats *s = natt_stats_tunnel(h, id);

		if (!tel_tunnel_live(s) || strncmp(s->name, params, NATT_NAME_LEN) != 0)
			continue;
		memcpy(&t, s, sizeof(t));  /* one consistent view */
		t.name[NATT_NAME_LEN - 1] = '\0';
		if (tel_tunnel_live(&t) && strcmp(t.name, params) == 0)
			break;
	}
	if (id == h->max_tunnels)
		return -ENOENT;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "id", id);
	tel_add_str(d, "name", t.name, NATT_NAME_LEN);
	tel_add_addr(d, "remote", t.remote_addr, t.remote_port);
	tel_add_spi(d, "in_spi", t.in_spi);
	tel_add_spi(d, "out_spi", t.out_spi);
	tel_add_spi(d, "grace_spi", t.grace_spi);
	rte_tel_data_add_dict_u64(d, "owner", t.owner);
	rte_tel_data_add_dict_u64(d, "in_packets", t.in_packets);
	rte_tel_data_add_dict_u64(d, "in_bytes", t.in_bytes);
	rte_tel_data_add_dict_u64(d, "out_packets", t.out_packets);
	rte_tel_data_add_dict_u64(d, "out_bytes", t.out_bytes);
	rte_tel_data_add_dict_u64(d, "auth_failed", t.auth_failed);
	rte_tel_data_add_dict_u64(d, "replay", t.replay);
	rte_tel_data_add_dict_u64(d, "policy", t.policy);
	rte_tel_data_add_dict_u64(d, "last_in_unix_ms", tel_unix_ms(h, t.last_seen_tsc));
	rte_tel_data_add_dict_u64(d, "last_out_unix_ms", tel_unix_ms(h, t.last_out_tsc));
	rte_tel_data_add_dict_u64(d, "created_unix_ms", tel_unix_ms(h, t.created_tsc));
	rte_tel_data_add_dict_u64(d, "idle", t.idle != 0);
	rte_tel_data_add_dict_u64(d, "mapping_changes", t.mapping_changes);
	tel_add_addr(d, "prev_remote", t.prev_remote_addr, t.prev_remote_port);
	rte_tel_data_add_dict_u64(d, "last_mapping_unix_ms", tel_unix_ms(h, t.last_mapping_tsc));
	rte_tel_data_add_dict_u64(d, "keepalives", t.keepalives);
	rte_tel_data_add_dict_u64(d, "last_keepalive_unix_ms",
				  tel_unix_ms(h, t.last_keepalive_tsc));
	tel_tunnel_nat(d, h, &t);
	return 0;
}

/* ---- /natt/events[,N] ---- */

static void
tel_event(struct rte_tel_data *c, const struct natt_journal_event *e)
{
	rte_tel_data_start_dict(c);
	rte_tel_data_add_dict_u64(c, "time_unix_ms", e->unix_ns / 1000000);
	rte_tel_data_add_dict_string(c, "type", natt_event_name(e->type));
	rte_tel_data_add_dict_u64(c, "worker", e->worker);
	if (e->tunnel_id != UINT32_MAX) {
		rte_tel_data_add_dict_u64(c, "tunnel_id", e->tunnel_id);
		tel_add_str(c, "tunnel", e->name, sizeof(e->name));
	}
	tel_add_spi(c, "spi", e->spi);
	tel_add_addr(c, "addr", e->addr, e->port);
	tel_add_addr(c, "old_addr", e->old_addr, e->old_port);
	rte_tel_data_add_dict_u64(c, "value", e->value);
	rte_tel_data_add_dict_int(c, "status", e->status);
}

static int
tel_events(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct natt_journal_event ev[NATT_TEL_EVENTS_MAX];
	struct natt_journal_hdr *j = tel_j;
	const struct natt_journal_event *ring;
	struct rte_tel_data *list;
	uint64_t head, head2, lo, n;
	uint32_t want;
	char key[24];

	RTE_SET_USED(cmd);
	if (j == NULL || j->n_events == 0)
		return -ENOTSUP;
	if (tel_param_u32(params, NATT_TEL_EVENTS_DEFAULT, NATT_TEL_EVENTS_MAX, &want) != 0)
		return -EINVAL;
	/* same protocol as `show events`: copy, then drop what the writer may
	 * have overwritten meanwhile (entries below head' - n_events + 1) */
	ring = natt_journal_events(j);
	n = j->n_events;
	head = __atomic_load_n(&j->evt_head, __ATOMIC_ACQUIRE);
	lo = head > want ? head - want : 0;
	for (uint64_t i = lo; i < head; i++)
		memcpy(&ev[i - lo], &ring[i % n], sizeof(ev[0]));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head2 = __atomic_load_n(&j->evt_head, __ATOMIC_RELAXED);
	list = rte_tel_data_alloc();
	if (list == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(list);
	for (uint64_t i = lo; i < head; i++) {
		struct rte_tel_data *c;

		if (i + n < head2 + 1)
			continue;  /* overwritten while we copied */
		c = rte_tel_data_alloc();
		if (c == NULL)
			break;
		tel_event(c, &ev[i - lo]);
		snprintf(key, sizeof(key), "%" PRIu64, i);
		if (rte_tel_data_add_dict_container(list, key, c, 0) != 0)
			rte_tel_data_free(c);
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "next_seq", head);
	if (rte_tel_data_add_dict_container(d, "events", list, 0) != 0)
		rte_tel_data_free(list);
	return 0;
}

int
natt_telemetry_init(struct natt_stats_hdr *h, struct natt_journal_hdr *j)
{
	static const struct {
		const char *cmd;
		telemetry_cb fn;
		const char *help;
	} cmds[] = {
		{ "/natt/stats", tel_stats,
		  "natt-gw counters summed over workers, and config reload status. No parameters" },
		{ "/natt/drops", tel_drops,
		  "Packets not forwarded, by reason. Parameter: worker id (default: all)" },
		{ "/natt/ports", tel_ports, "Per-port packets and bytes. No parameters" },
		{ "/natt/tunnels", tel_tunnels,
		  "Live tunnel names, 256 per call. Parameter: first tunnel id (default 0)" },
		{ "/natt/tunnel", tel_tunnel, "One tunnel's counters. Parameter: tunnel name" },
		{ "/natt/events", tel_events,
		  "Latest journal events. Parameter: how many (default 16, max 48)" },
	};
	int rc = 0;

	tel_h = h;
	tel_j = j;
	for (unsigned int i = 0; i < RTE_DIM(cmds); i++) {
		int r = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);

		if (r != 0) {
			fprintf(stderr, "natt-dataplane: telemetry %s: %s\n", cmds[i].cmd,
				strerror(-r));
			rc = r;
		}
	}
	return rc;
}
