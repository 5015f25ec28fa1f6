/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_show.c - `natt-control show` (control/show.c) over memzones built in
 * ordinary memory: no EAL, no dataplane.
 *
 *  1. header checks: magic, version, geometry; a bad journal is only dropped
 *  2. every command and format: exit status, strict JSON (parsed by a small
 *     RFC 8259 validator below), hostile names escaped, values present
 *  3. the event log: a wrapped ring is shown oldest first and complete; with
 *     a writer thread lapping the ring while we read, no torn entry is shown
 *  4. 1,000,000 tunnels: table, JSON and Prometheus stay linear (timed)
 *  5. diagnose TUNNEL: one case per rule (text and JSON), severity order,
 *     verdict, unknown and journal-only tunnels
 *
 * Prints PASS/FAIL per check and "N passed, N failed"; exit 1 on failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_cycles.h>

#include "show.h"

static unsigned int passed, failed;

static void
check(bool ok, const char *what, const char *detail)
{
	printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, ok || !detail ? "" : ": ",
	       ok || !detail ? "" : detail);
	if (ok)
		passed++;
	else
		failed++;
}

/* ---- a strict JSON validator (RFC 8259) ---- */

static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;

		if (c == '"')
			return p;
		if (c < 0x20 || c >= 0x80)  /* we only ever write ASCII */
			return NULL;
		if (c != '\\')
			continue;
		c = (unsigned char)*p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, p++)
				if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
				      (*p >= 'A' && *p <= 'F')))
					return NULL;
		} else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
			return NULL;
		}
	}
}

static const char *
json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static const char *
json_list(const char *p, int depth, char close, bool object)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if ((p = json_string(p)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if ((p = json_value(p, depth + 1)) == NULL)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
		p = json_ws(p);
	}
}

static const char *
json_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = json_ws(p);
	switch (*p) {
	case '{': return json_list(p, depth, '}', true);
	case '[': return json_list(p, depth, ']', false);
	case '"': return json_string(p);
	case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
	default: return json_number(p);
	}
}

static bool
json_valid(const char *s)
{
	const char *p = json_value(s, 0);

	return p != NULL && *json_ws(p) == '\0';
}

/* ---- fake memzones ---- */

struct fake {
	struct natt_show_src src;
	void *st_mem, *j_mem;
};

static void
fake_init(struct fake *f, uint32_t workers, uint32_t max_tunnels, bool journal)
{
	struct natt_stats_hdr *h;
	struct timespec ts;

	memset(f, 0, sizeof(*f));
	f->src.st_len = natt_stats_size(workers, max_tunnels);
	f->st_mem = aligned_alloc(64, f->src.st_len);
	memset(f->st_mem, 0, f->src.st_len);
	h = f->src.st = f->st_mem;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->tsc_hz = rte_get_tsc_hz() ? rte_get_tsc_hz() : 2000000000;
	h->start_tsc = rte_rdtsc() - 100 * h->tsc_hz;  /* up 100 s */
	h->start_unix_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec -
			   100000000000u;
	h->n_workers = workers;
	h->max_tunnels = max_tunnels;
	h->n_ports = 2;
	strcpy(h->port_names[0], "net_pcap0");
	strcpy(h->port_names[1], "0000:03:00.1");
	h->version = NATT_STATS_VERSION;
	h->magic = NATT_STATS_MAGIC;
	if (!journal)
		return;
	f->src.j_len = natt_journal_size(max_tunnels);
	f->j_mem = aligned_alloc(64, f->src.j_len);
	memset(f->j_mem, 0, f->src.j_len);
	f->src.j = f->j_mem;
	f->src.j->version = NATT_JOURNAL_VERSION;
	f->src.j->max_tunnels = max_tunnels;
	f->src.j->n_events = NATT_JOURNAL_EVENTS;
	f->src.j->magic = NATT_JOURNAL_MAGIC;
}

static void
fake_free(struct fake *f)
{
	free(f->st_mem);
	free(f->j_mem);
}

static void
put_tunnel(struct natt_stats_hdr *h, uint32_t id, const char *name, uint32_t in_spi)
{
	struct natt_tunnel_stats *t = natt_stats_tunnel(h, id);

	memset(t, 0, sizeof(*t));
	memcpy(t->name, name, strnlen(name, NATT_NAME_LEN - 1));
	t->in_spi = in_spi;
	t->out_spi = in_spi ^ 0x5a5a0000u;
	t->remote_addr = htonl(0xc6336419);  /* 198.51.100.25 */
	t->remote_port = htons(4500);
	t->owner = (uint16_t)(id % h->n_workers);
	t->in_packets = 100 + id;
	t->in_bytes = 10000 + id;
	t->created_tsc = h->start_tsc + h->tsc_hz;
}

/* Run argv0 a0 ... (NULL-terminated) on src; the exit status, output in
 * *out and, if err is not NULL, what went to stderr in *err. */
static int
run_cmd(const struct natt_show_src *src, char **out, char **err, const char *argv0,
	const char *a0, ...)
{
	char *argv[8] = { (char *)argv0, (char *)a0 }, *errbuf = NULL;
	size_t len, elen;
	FILE *f = open_memstream(out, &len), *e = open_memstream(&errbuf, &elen);
	va_list ap;
	int argc = 2, rc;

	va_start(ap, a0);
	while (argc < 7 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	rc = natt_show_run(src, argc, argv, f, e);
	fclose(f);
	fclose(e);
	if (err != NULL)
		*err = errbuf;
	else
		free(errbuf);
	return rc;
}

/* `show ARGS..., NULL` on src: exit status, output in *out. */
#define run(src, out, ...) run_cmd(src, out, NULL, "show", __VA_ARGS__)
/* `diagnose ARGS..., NULL`: also stderr in *err (NULL: dropped). */
#define run_diag(src, out, err, ...) run_cmd(src, out, err, "diagnose", __VA_ARGS__)

/* ---- 1. header checks ---- */

static void
test_check(void)
{
	struct fake f;
	char err[256];

	fake_init(&f, 2, 64, true);
	check(natt_show_check(&f.src, err, sizeof(err)) == 0 && f.src.j != NULL,
	      "check: good stats and journal accepted", err);
	f.src.st->magic = 0;
	check(natt_show_check(&f.src, err, sizeof(err)) == -EAGAIN,
	      "check: unpublished header is -EAGAIN (dataplane starting)", err);
	f.src.st->magic = NATT_STATS_MAGIC;
	f.src.st->version = NATT_STATS_VERSION + 1;
	check(natt_show_check(&f.src, err, sizeof(err)) == -EPROTO && strstr(err, "version"),
	      "check: other stats version refused", err);
	f.src.st->version = NATT_STATS_VERSION;
	f.src.st_len -= 64;
	check(natt_show_check(&f.src, err, sizeof(err)) == -EPROTO,
	      "check: memzone shorter than its geometry refused", err);
	f.src.st_len += 64;
	f.src.st->n_workers = NATT_MAX_WORKERS + 1;
	check(natt_show_check(&f.src, err, sizeof(err)) == -EPROTO,
	      "check: impossible worker count refused", err);
	f.src.st->n_workers = 2;
	f.src.j->version = 99;
	check(natt_show_check(&f.src, err, sizeof(err)) == 0 && f.src.j == NULL &&
	      strstr(err, "journal"), "check: other journal version: stats kept, journal dropped",
	      err);
	fake_free(&f);
}

/* ---- 2. commands and formats ---- */

static void
test_commands(void)
{
	static const char evil[] = "q\"b\\s\n\x01\xff-x";
	struct natt_tunnel_stats *t;
	struct natt_journal_tunnel *jt;
	struct natt_journal_event *e;
	struct natt_worker_stats *w;
	struct fake f;
	char *out = NULL, name[64];
	int rc;

	fake_init(&f, 2, 64, true);
	put_tunnel(f.src.st, 0, "rw-0001", 0x1000);
	put_tunnel(f.src.st, 5, "tun.with-dots_9", 0x1005);
	put_tunnel(f.src.st, 9, evil, 0x1009);
	t = natt_stats_tunnel(f.src.st, 5);
	t->grace_spi = 0xabc;
	t->idle = 1;
	t->idle_mark_tsc = f.src.st->start_tsc + 2 * f.src.st->tsc_hz;
	t->mapping_changes = 2;
	t->prev_remote_addr = htonl(0xc0000201);
	t->prev_remote_port = htons(1234);
	t->last_mapping_tsc = f.src.st->start_tsc + 3 * f.src.st->tsc_hz;
	t->last_seen_tsc = rte_rdtsc();
	t->keepalives = 7;
	t->auth_failed = 3;
	/* v4: NAT-T behaviour and outbound drops */
	t->keepalive_s = 20;
	t->keepalives_sent = 4;
	t->last_keepalive_sent_tsc = rte_rdtsc();
	t->seen_addr = htonl(0xc0000209);
	t->seen_port = htons(4501);
	t->too_big = 2;
	t->fragmented = 3;
	t->bad_trailer = 1;
	natt_stats_tunnel(f.src.st, 9)->pinned = 1;
	natt_stats_tunnel(f.src.st, 9)->pin_ignored = 6;
	/* port 0 has a TAP and an ARP next hop; port 1 neither TAP nor answer */
	f.src.st->n_eth_ports = 3;
	f.src.st->tap_of[0] = 2;
	strcpy(f.src.st->tap_names[0], "natt0");
	f.src.st->tap_of[1] = NATT_NO_TAP;
	f.src.st->neigh[0].ip = htonl(0xcb0071fe);   /* 203.0.113.254 */
	f.src.st->neigh[0].mac = NATT_NEIGH_VALID | 0x0200000000feull;
	f.src.st->neigh[0].mac_ip = f.src.st->neigh[0].ip;
	f.src.st->neigh[0].updated_tsc = rte_rdtsc();
	f.src.st->neigh[1].ip = htonl(0x0a0a00fe);   /* 10.10.0.254 */
	jt = natt_journal_tunnel(f.src.j, 5);
	strcpy(jt->name, "tun.with-dots_9");
	jt->state = NATT_JT_LIVE;
	jt->n_pfx = 2;
	jt->pfx[0].addr = htonl(0x0a800500);
	jt->pfx[0].plen = 24;
	jt->pfx[1].addr = htonl(0x0a800607);
	jt->pfx[1].plen = 32;
	jt->last_evt_type = NATT_EVT_NAT_MAPPING;
	jt->last_evt_ns = f.src.st->start_unix_ns + 3000000000u;
	jt->last_evt_addr = t->remote_addr;
	jt->last_evt_port = t->remote_port;
	/* a tunnel natt-control sent but the dataplane does not hold */
	jt = natt_journal_tunnel(f.src.j, 11);
	strcpy(jt->name, "dirty-one");
	jt->state = NATT_JT_DIRTY;
	w = natt_stats_worker(f.src.st, 1);
	w->counters[NATT_CNT_RX] = 5;
	w->drops[NATT_DROP_NO_SA] = 4;
	w->port[0].rx_packets = 5;
	w->generation = 3;
	natt_stats_worker(f.src.st, 0)->generation = 2;
	f.src.j->reloads_ok = 3;
	f.src.j->reloads_failed = 1;
	f.src.j->last_status = NATT_RELOAD_INVALID;
	snprintf(f.src.j->last_error, sizeof(f.src.j->last_error),
		 "/etc/natt.cfg:12: interface \"outside\": bad\taddress \xc3\xa9");
	e = natt_journal_events(f.src.j);
	e[0].type = NATT_JEVT_RELOAD_OK;
	e[0].tunnel_id = UINT32_MAX;
	e[0].value = 3;
	e[1].type = NATT_EVT_NAT_MAPPING;
	e[1].tunnel_id = 9;
	memcpy(e[1].name, evil, sizeof(evil));
	e[1].addr = htonl(0x01020304);
	e[1].port = htons(99);
	f.src.j->evt_head = 2;

	rc = run(&f.src, &out, "tunnels", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"count\": 3") &&
	      strstr(out, "\"name\": \"q\\\"b\\\\s\\u000a\\u0001\\u00ff-x\"") &&
	      strstr(out, "\"grace_spi\": \"0x00000abc\"") &&
	      strstr(out, "\"remote_addr\": \"198.51.100.25\", \"remote_port\": 4500"),
	      "tunnels --json: valid JSON, 3 tunnels, hostile name escaped", out);
	free(out);
	rc = run(&f.src, &out, "tunnels", NULL);
	check(rc == 0 && strstr(out, "tun.with-dots_9") && strstr(out, "q\"b\\s??") &&
	      strstr(out, "3 tunnel(s) of max 64, 1 idle, 1 in rekey grace"),
	      "tunnels: table with names and footer", out);
	check(strstr(out, "  MAPCHG  NAT      LAST_KA  GRACE_SPI\n") &&
	      strstr(out, "       2  follow     never  0x00000abc\n") &&
	      strstr(out, "       0  pin        never  -\n"),
	      "tunnels: NAT policy and LAST_KA columns before GRACE_SPI", out);
	free(out);
	rc = run(&f.src, &out, "tunnel", "tun.with-dots_9", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"state\": \"live\"") &&
	      strstr(out, "\"routes\": [\"10.128.5.0/24\", \"10.128.6.7/32\"]") &&
	      strstr(out, "\"prev_remote_addr\": \"192.0.2.1\", \"prev_remote_port\": 1234") &&
	      strstr(out, "\"keepalives\": 7") && strstr(out, "\"type\": \"nat_mapping\""),
	      "tunnel NAME --json: identity, journal routes, latest event", out);
	check(strstr(out, "\"nat_mapping\": \"follow\", \"seen_addr\": \"192.0.2.9\", \"seen_port\":"
		      " 4501, \"pin_ignored\": 0, \"keepalive_s\": 20, \"keepalives_sent\": 4,"
		      " \"last_keepalive_sent_unix\": 1") &&
	      strstr(out, "\"too_big\": 2, \"fragmented\": 3, \"bad_trailer\": 1") &&
	      strstr(out, "\"last_in_unix\": 1") && strstr(out, "\"last_out_unix\": null") &&
	      strstr(out, "\"idle\": true"),
	      "tunnel NAME --json: v4 keys (mapping policy, seen mapping, keepalives, drops)", out);
	free(out);
	rc = run(&f.src, &out, "tunnel", evil, "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"nat_mapping\": \"pin\"") &&
	      strstr(out, "\"pin_ignored\": 6") && strstr(out, "\"seen_addr\": null"),
	      "tunnel NAME --json: pinned tunnel, mapping changes ignored", out);
	free(out);
	rc = run(&f.src, &out, "tunnel", "tun.with-dots_9", NULL);
	check(rc == 0 && strstr(out, "tunnel tun.with-dots_9 (id 5)") &&
	      strstr(out, "10.128.5.0/24 10.128.6.7/32") && strstr(out, "yes, no inbound since"),
	      "tunnel NAME: text", out);
	check(strstr(out, "  nat mapping        follow (") &&
	      strstr(out, "  peer               198.51.100.25:4500\n") &&
	      strstr(out, "  last seen from     192.0.2.9:4501\n") &&
	      strstr(out, "  mapping changes    2, not followed (pinned) 0\n") &&
	      strstr(out, "  drops              auth_failed 3, replay 0, policy 0, bad_trailer 1,"
		      " too_big 2; fragmented 3\n") &&
	      strstr(out, "  keepalives         7, last never\n") &&
	      strstr(out, "  keepalives sent    4, last 0.0s\n") &&
	      strstr(out, "  keepalive interval 20 s\n") && strstr(out, "  outbound           0"
	      " packets, 0 bytes, last never\n"), "tunnel NAME: text has every v4 field", out);
	free(out);
	rc = run(&f.src, &out, "tunnel", "dirty-one", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"installed\": false") &&
	      strstr(out, "\"state\": \"dirty\""), "tunnel NAME only in the journal: shown", out);
	free(out);
	rc = run(&f.src, &out, "tunnel", "no-such", NULL);
	check(rc == NATT_SHOW_USAGE, "tunnel NAME: missing tunnel exits 1", NULL);
	free(out);
	rc = run(&f.src, &out, "stats", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"tunnels_live\": 3") &&
	      strstr(out, "\"generation\": 2,") && strstr(out, "\"last_status\": \"invalid\"") &&
	      strstr(out, "\\\"outside\\\": bad\\u0009address \\u00c3\\u00a9"),
	      "stats --json: valid, generation = every worker's, reload status", out);
	check(strstr(out, "\"n_eth_ports\": 3") &&
	      strstr(out, "\"tap\": \"natt0\", \"tap_port\": 2, \"next_hop\": {\"ip\":"
		      " \"203.0.113.254\", \"resolved\": true, \"mac\": \"02:00:00:00:00:fe\","
		      " \"updated_unix\": 1") &&
	      strstr(out, "\"tap\": null, \"tap_port\": null, \"next_hop\": {\"ip\":"
		      " \"10.10.0.254\", \"resolved\": false, \"mac\": null, \"updated_unix\": null}") &&
	      strstr(out, "\"nat_mapping_followed\": 0") && strstr(out, "\"no_neighbor\": 0") &&
	      strstr(out, "\"exception_limited\": 0"),
	      "stats --json: TAP and next hop per port, v4 counters and drop reasons", out);
	free(out);
	rc = run(&f.src, &out, "stats", NULL);
	check(rc == 0 && strstr(out, "3 ok, 1 failed") && strstr(out, "0000:03:00.1"),
	      "stats: text", out);
	check(strstr(out, "exception path and next hops:\n") &&
	      strstr(out, "\n     0  tap natt0            next hop 203.0.113.254 -> 02:00:00:00:00:fe"
		      " (resolved 0.0s ago)\n") &&
	      strstr(out, "\n     1  no tap               next hop 10.10.0.254 unresolved (ARP)\n") &&
	      strstr(out, "  keepalives_sent ") && strstr(out, "  exception_punted "),
	      "stats: TAP per port, ARP next hops, v4 counters", out);
	free(out);
	rc = run(&f.src, &out, "stats", "--prometheus", "--tunnels", NULL);
	check(rc == 0 && strstr(out, "natt_drops_total{reason=\"no_sa\"} 4\n") &&
	      strstr(out, "natt_config_reloads_total{result=\"failed\"} 1\n") &&
	      strstr(out, "natt_tunnel_in_packets_total{tunnel=\"q\\\"b\\\\s\\n?\?-x\",id=\"9\"}"
		      " 109\n") &&
	      strstr(out, "natt_port_rx_packets_total{port=\"0\",device=\"net_pcap0\"} 5\n"),
	      "stats --prometheus --tunnels: samples and escaped labels", out);
	check(strstr(out, "\n# TYPE natt_keepalives_sent_total counter\nnatt_keepalives_sent_total 0\n") &&
	      strstr(out, "\n# HELP natt_exception_punted_total Packets punted to the host") &&
	      strstr(out, "natt_drops_total{reason=\"exception_limited\"} 0\n") &&
	      strstr(out, "natt_drops_total{reason=\"no_neighbor\"} 0\n") &&
	      strstr(out, "natt_port_next_hop_resolved{port=\"0\",device=\"net_pcap0\"} 1\n") &&
	      strstr(out, "natt_port_next_hop_resolved{port=\"1\",device=\"0000:03:00.1\"} 0\n") &&
	      strstr(out, "natt_tunnel_drops_total{tunnel=\"tun.with-dots_9\",id=\"5\","
		      "reason=\"too_big\"} 2\n") &&
	      strstr(out, "natt_tunnel_drops_total{tunnel=\"tun.with-dots_9\",id=\"5\","
		      "reason=\"bad_trailer\"} 1\n") &&
	      strstr(out, "natt_tunnel_fragmented_total{tunnel=\"tun.with-dots_9\",id=\"5\"} 3\n") &&
	      strstr(out, "natt_tunnel_keepalives_sent_total{tunnel=\"tun.with-dots_9\",id=\"5\"} 4\n") &&
	      strstr(out, "natt_tunnel_nat_mapping_ignored_total{tunnel=\"q\\\"b\\\\s\\n?\?-x\","
		      "id=\"9\"} 6\n"),
	      "stats --prometheus --tunnels: v4 counters, drop reasons, next hops, tunnel series",
	      out);
	free(out);
	rc = run(&f.src, &out, "drops", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"no_sa\": 4") &&
	      strstr(out, "\"errors\": 4"), "drops --json", out);
	free(out);
	rc = run(&f.src, &out, "events", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"type\": \"reload_ok\"") &&
	      strstr(out, "\"addr\": \"1.2.3.4\", \"port\": 99") && strstr(out, "\"next_seq\": 2"),
	      "events --json: valid, both events", out);
	free(out);
	for (unsigned int i = 0; i < 6; i++) {
		static const char *const bad[][3] = {
			{ "nope", NULL, NULL }, { "tunnel", NULL, NULL },
			{ "tunnels", "--prometheus", NULL }, { "stats", "--tunnels", NULL },
			{ "stats", "--json", "--prometheus" }, { "drops", "extra", NULL },
		};

		snprintf(name, sizeof(name), "usage error exits 1: show %s %s", bad[i][0],
			 bad[i][1] ? bad[i][1] : "");
		rc = run(&f.src, &out, bad[i][0], bad[i][1], bad[i][2], NULL);
		check(rc == NATT_SHOW_USAGE, name, NULL);
		free(out);
	}
	f.src.j = NULL;
	rc = run(&f.src, &out, "stats", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"reload\": null"),
	      "stats --json without a journal: reload null", out);
	free(out);
	rc = run(&f.src, &out, "events", NULL);
	check(rc == NATT_SHOW_NOATTACH, "events without a journal exits 2", NULL);
	free(out);
	fake_free(&f);
}

/* ---- 3. the event log ---- */

/* What the writer puts in entry i: every field derived from i. */
static void
event_fill(struct natt_journal_event *e, uint64_t i)
{
	e->value = (uint32_t)i;
	e->unix_ns = 0;
	e->type = 200;
	e->worker = 0;
	e->tunnel_id = UINT32_MAX;
	e->spi = (uint32_t)(i * 2654435761u) | 1;
	e->status = -(int32_t)(i & 0xffff);
}

/* Parse `show events` text; check every line is one whole entry, in order. */
static bool
events_consistent(const char *out, uint64_t *n, uint64_t *first, char *why, size_t wlen)
{
	uint64_t prev = UINT64_MAX;
	const char *p = strchr(out, '\n');

	*n = 0;
	while (p != NULL && p[1] != '\0') {
		unsigned long long seq;
		unsigned int spi, value;
		int status;

		p++;
		if (sscanf(p, "%llu - unknown 0 - 0x%x value %u status %d", &seq, &spi, &value,
			   &status) != 4)
			break;  /* the footer */
		if (value != (uint32_t)seq || spi != ((uint32_t)(seq * 2654435761u) | 1) ||
		    status != -(int32_t)(seq & 0xffff) || (prev != UINT64_MAX && seq != prev + 1)) {
			snprintf(why, wlen, "entry %llu: value %u spi 0x%x status %d (after %" PRIu64
				 ")", seq, value, spi, status, prev);
			return false;
		}
		if (prev == UINT64_MAX)
			*first = seq;
		prev = seq;
		(*n)++;
		p = strchr(p, '\n');
	}
	return true;
}

struct writer {
	struct natt_journal_hdr *j;
	volatile bool stop;
	uint64_t written;
};

static void *
writer_main(void *arg)
{
	struct writer *wr = arg;
	struct natt_journal_event *ev = natt_journal_events(wr->j);
	uint64_t i = wr->j->evt_head;

	while (!wr->stop) {
		struct natt_journal_event *e = &ev[i % wr->j->n_events];

		/* field by field, so that a reader of a slot being written sees a mix */
		e->value = 0xdeadbeef;
		e->spi = 0;
		event_fill(e, i);
		__atomic_store_n(&wr->j->evt_head, ++i, __ATOMIC_RELEASE);
	}
	wr->written = i;
	return NULL;
}

static void
test_events(void)
{
	struct natt_journal_event *ev;
	struct writer wr;
	pthread_t th;
	struct fake f;
	char *out = NULL, why[160] = "";
	uint64_t n, first = 0, runs = 0, shown = 0;
	bool ok = true;
	double t0;

	fake_init(&f, 1, 16, true);
	ev = natt_journal_events(f.src.j);
	for (uint64_t i = 0; i < 10000; i++)
		event_fill(&ev[i % NATT_JOURNAL_EVENTS], i);
	f.src.j->evt_head = 10000;
	run(&f.src, &out, "events", NULL);
	ok = events_consistent(out, &n, &first, why, sizeof(why));
	/* the oldest slot of a full ring is the one the next event overwrites:
	 * a reader cannot tell whether that write has begun, so n - 1 are shown */
	check(ok && n == NATT_JOURNAL_EVENTS - 1 && first == 10000 - NATT_JOURNAL_EVENTS + 1,
	      "events: wrapped ring shown oldest first, all but the slot being reused", why);
	free(out);
	run(&f.src, &out, "events", "--json", NULL);
	check(json_valid(out) && strstr(out, "\"first_seq\": 5905, \"next_seq\": 10000"),
	      "events --json: wrapped ring, first_seq/next_seq", NULL);
	free(out);

	/* a writer lapping the ring while we read */
	wr = (struct writer){ .j = f.src.j };
	pthread_create(&th, NULL, writer_main, &wr);
	t0 = (double)clock() / CLOCKS_PER_SEC;
	while (ok && (double)clock() / CLOCKS_PER_SEC - t0 < 1.0) {
		run(&f.src, &out, "events", NULL);
		ok = events_consistent(out, &n, &first, why, sizeof(why));
		shown += n;
		runs++;
		free(out);
	}
	wr.stop = true;
	pthread_join(th, NULL);
	snprintf(why + strlen(why), sizeof(why) - strlen(why), " (%" PRIu64 " runs, %" PRIu64
		 " events shown, %" PRIu64 " written)", runs, shown, wr.written);
	check(ok && shown > 0, "events: concurrent writer, no torn or out-of-order entry shown",
	      why);
	printf("     %s\n", why);
	fake_free(&f);
}

/* ---- 4. 1,000,000 tunnels ---- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_scale(void)
{
	static const char *const cmds[][4] = {
		{ "tunnels", NULL }, { "tunnels", "--json", NULL }, { "stats", NULL },
		{ "stats", "--prometheus", "--tunnels", NULL }, { "tunnel", "rw-999999", NULL },
	};
	const uint32_t n = 1000000;
	char name[NATT_NAME_LEN], what[96];
	struct fake f;

	fake_init(&f, 4, n, false);
	for (uint32_t id = 0; id < n; id++) {
		snprintf(name, sizeof(name), "rw-%06u", id);
		put_tunnel(f.src.st, id, name, 0x100 + id);
	}
	for (unsigned int i = 0; i < RTE_DIM(cmds); i++) {
		char *argv[5] = { "show" };
		FILE *null = fopen("/dev/null", "w");
		int argc = 1, rc;
		double t;

		while (argc < 4 && cmds[i][argc - 1] != NULL) {
			argv[argc] = (char *)cmds[i][argc - 1];
			argc++;
		}
		t = now_s();
		rc = natt_show_run(&f.src, argc, argv, null, stderr);
		t = now_s() - t;
		fclose(null);
		snprintf(what, sizeof(what), "1M tunnels: show %s %s %s in %.2f s", cmds[i][0],
			 cmds[i][1] ? cmds[i][1] : "", cmds[i][1] && cmds[i][2] ? cmds[i][2] : "", t);
		/* linear at 1M is seconds; quadratic would be hours. Generous for
		 * -O0 ASan builds on a busy 2-core box. */
		check(rc == 0 && t < 120, what, NULL);
	}
	fake_free(&f);
}

/* ---- 5. diagnose TUNNEL: every rule over fake memzones ---- */

#define DIAG_ID 3
#define DIAG_NAME "rw-diag"

/* The dataplane's TSC s seconds ago, at the fake header's rate. */
static uint64_t
ago(const struct fake *f, double s)
{
	return rte_rdtsc() - (uint64_t)(s * (double)f->src.st->tsc_hz);
}

/* A tunnel with traffic both ways, recently, no drops: "healthy". */
static struct natt_tunnel_stats *
diag_base(struct fake *f)
{
	struct natt_stats_hdr *h = f->src.st;
	struct natt_tunnel_stats *t;

	memset(natt_stats_worker(h, 0), 0, 2 * sizeof(struct natt_worker_stats));
	memset(natt_journal_tunnel(f->src.j, 11), 0, sizeof(struct natt_journal_tunnel));
	f->src.j->evt_head = 0;
	put_tunnel(h, DIAG_ID, DIAG_NAME, 0x2000);
	t = natt_stats_tunnel(h, DIAG_ID);
	t->in_packets = 100;
	t->out_packets = 50;
	t->last_seen_tsc = ago(f, 1);
	t->last_out_tsc = ago(f, 2);
	return t;
}

/* The state a case puts the tunnel in, over diag_base()'s healthy one:
 * zero fields change nothing. */
struct diag_set {
	bool no_in, no_out;        /* never any inbound / outbound */
	bool idle, pinned, moved;  /* moved: from 192.0.2.1:1234, 30 s ago */
	double in_ago, ka_ago;     /* last inbound / keepalive from the peer, s */
	uint64_t auth_failed, replay, policy, bad_trailer, too_big, fragmented;
	uint64_t keepalives, keepalives_sent, out_packets;
	uint16_t keepalive_s;
	uint32_t mapping_changes, pin_ignored;
	uint64_t gw_ike, gw_exception, gw_no_sa, gw_no_route;  /* worker totals */
	uint32_t idle_events[2];   /* values of idle events in the journal */
};

/* The tunnel's counters of c (the ones that are plain numbers). */
static void
diag_set_counters(struct natt_tunnel_stats *t, const struct diag_set *c)
{
	t->auth_failed = c->auth_failed;
	t->replay = c->replay;
	t->policy = c->policy;
	t->bad_trailer = c->bad_trailer;
	t->too_big = c->too_big;
	t->fragmented = c->fragmented;
	t->keepalives = c->keepalives;
	t->keepalives_sent = c->keepalives_sent;
	t->keepalive_s = c->keepalive_s;
	t->mapping_changes = c->mapping_changes;
	t->pin_ignored = c->pin_ignored;
	t->pinned = c->pinned;
	t->idle = c->idle;
	if (c->out_packets)
		t->out_packets = c->out_packets;
}

/* Put the tunnel, the workers and the journal in the state of c. */
static void
diag_apply(struct fake *f, struct natt_tunnel_stats *t, const struct diag_set *c)
{
	struct natt_journal_event *e = natt_journal_events(f->src.j);
	struct natt_worker_stats *w = natt_stats_worker(f->src.st, 1);

	diag_set_counters(t, c);
	if (c->in_ago)
		t->last_seen_tsc = ago(f, c->in_ago);
	if (c->ka_ago)
		t->last_keepalive_tsc = ago(f, c->ka_ago);
	if (c->no_in)
		t->in_packets = t->last_seen_tsc = 0;
	if (c->no_out)
		t->out_packets = t->last_out_tsc = 0;
	if (c->moved) {
		t->prev_remote_addr = htonl(0xc0000201);  /* 192.0.2.1 */
		t->prev_remote_port = htons(1234);
		t->last_mapping_tsc = ago(f, 30);
	}
	if (c->pinned) {
		t->seen_addr = htonl(0xc0000209);   /* 192.0.2.9 */
		t->seen_port = htons(4501);
	}
	w->drops[NATT_DROP_IKE] = c->gw_ike;
	w->counters[NATT_CNT_EXCEPTION] = c->gw_exception;
	w->drops[NATT_DROP_NO_SA] = c->gw_no_sa;
	w->drops[NATT_DROP_NO_ROUTE] = c->gw_no_route;
	for (unsigned int i = 0; i < 2 && c->idle_events[i]; i++) {
		e[i].type = NATT_EVT_IDLE;
		e[i].value = c->idle_events[i];
		f->src.j->evt_head = i + 1;
	}
}

static const struct diag_case {
	const char *what;
	struct diag_set set;
	const char *sev, *code;       /* a finding the output must have */
	const char *text[2];          /* in that finding's text */
	const char *verdict;          /* start of the verdict line, or NULL */
} diag_cases[] = {
	{ "healthy", { 0 }, "info", "healthy",
	  { "in 100 pkts (last 1.0s ago)", "out 50 pkts (last 2.0s ago)" },
	  "verdict: ok - traffic flows both ways\n" },
	{ "IKE but no ESP", { .no_in = true, .gw_ike = 5, .gw_exception = 2 }, "error", "no_esp",
	  { "UDP/4500 blocked, NAT-T not negotiated", "ike 5, exception_punted 2" },
	  "verdict: broken - IKE but no ESP" },
	{ "authentication fails", { .no_in = true, .auth_failed = 12 }, "error", "auth_failed",
	  { "12 packets failed authentication", "key/salt mismatch" }, NULL },
	{ "unknown SPI", { .no_in = true, .gw_no_sa = 4 }, "warning", "unknown_spi",
	  { "(no_sa 4): peer uses an SPI not configured", "inbound.spi 0x00002000" }, NULL },
	{ "NAT mapping expired", { .in_ago = 95 }, "error", "nat_expired",
	  { "traffic stopped after 95s idle", "set keepalive = 20" },
	  "verdict: broken - NAT mapping expired" },
	/* the journal's idle events say idle_timeout is 300 s: 95 s is not stopped */
	{ "idle threshold from the journal's idle events",
	  { .in_ago = 95, .idle_events = { 301, 300 } }, "info", "healthy",
	  { "in 100 pkts (last 95s ago)", "" }, "verdict: ok" },
	{ "idle flag of the dataplane", { .in_ago = 5, .idle = true }, "error", "nat_expired",
	  { "traffic stopped after 5.0s idle", "" }, NULL },
	{ "traffic stopped despite keepalives",
	  { .in_ago = 95, .keepalive_s = 25, .keepalives = 3, .ka_ago = 200,
	    .keepalives_sent = 4 }, "error", "traffic_stopped",
	  { "after 95s idle (last of 100 packets)", "peer 3m20s ago, 4 sent by us" }, NULL },
	{ "keepalive longer than NAT timeout, stopped",
	  { .in_ago = 95, .keepalive_s = 25, .keepalives = 3, .ka_ago = 200 }, "warning",
	  "keepalive_long", { "keepalive interval 25 s may be longer", "(often 30 s)" }, NULL },
	{ "idle, keepalives still arrive", { .in_ago = 95, .keepalives = 10, .ka_ago = 5 },
	  "info", "idle_alive",
	  { "no traffic for 95s", "keepalives still arrive (10, last 5.0s ago)" }, NULL },
	{ "keepalive longer than NAT timeout, flowing", { .keepalive_s = 30 }, "info",
	  "keepalive_long", { "keepalive interval 30 s", "" },
	  "verdict: ok - traffic flows both ways" },
	{ "mapping moved, followed", { .moved = true, .mapping_changes = 2 }, "info",
	  "mapping_moved",
	  { "moved 2 times (last: 192.0.2.1:1234 -> 198.51.100.25:4500 at 20", "outbound follows" },
	  NULL },
	{ "mapping moved, pinned", { .pinned = true, .pin_ignored = 3, .mapping_changes = 3 },
	  "error", "pinned_moved",
	  { "now sends from 192.0.2.9:4501 but the tunnel is pinned to 198.51.100.25:4500",
	    "nat_mapping_change = \"follow\"" }, "verdict: broken - pinned" },
	{ "oversize", { .too_big = 7, .fragmented = 9 }, "warning", "oversize",
	  { "7 dropped with DF (ICMP frag-needed sent), 9 fragmented", "dataplane.mss_clamp" },
	  "verdict: degraded - inner packets too big" },
	{ "replay", { .replay = 6 }, "warning", "replay",
	  { "6 replayed/out-of-window", "replay_window" }, NULL },
	{ "policy", { .policy = 8 }, "warning", "policy",
	  { "8 inner packets outside remote_ts", "traffic selector mismatch" }, NULL },
	{ "bad trailer", { .bad_trailer = 4 }, "warning", "bad_trailer",
	  { "4 decrypted but malformed inner packets", "wrong algorithm" }, NULL },
	{ "nothing sent back", { .no_out = true, .gw_no_route = 11 }, "error", "no_return",
	  { "arrives (100 packets) but nothing is sent back", "no_route drops 11" }, NULL },
	{ "nothing received", { .no_in = true, .out_packets = 20 }, "error", "no_inbound",
	  { "we send (20 packets) but never receive", "key mismatch on its side" }, NULL },
	{ "no traffic at all", { .no_in = true, .no_out = true }, "warning", "no_traffic",
	  { "no traffic in either direction since the tunnel was installed 99s ago", "" },
	  "verdict: degraded - no traffic yet" },
	/* an error, a warning and a remark at once: most severe first */
	{ "several at once, most severe first",
	  { .no_in = true, .moved = true, .mapping_changes = 2, .replay = 2, .auth_failed = 1 },
	  "error", "auth_failed", { "1 packets failed authentication", "" },
	  "verdict: broken - inbound packets fail authentication (+1 more problem)" },
};

/* Whether `diagnose` text output has the finding "  SEV  TEXT [code]" with
 * both strings in its text. */
static bool
diag_finding(const char *out, const char *sev, const char *code, const char *const text[2])
{
	char head[32], tail[40], line[512];
	const char *p, *e;

	snprintf(head, sizeof(head), "\n  %-7s  ", sev);
	snprintf(tail, sizeof(tail), " [%s]", code);
	for (p = strstr(out, head); p != NULL; p = strstr(p + 1, head)) {
		if ((e = strchr(p + 1, '\n')) == NULL || (size_t)(e - p) >= sizeof(line))
			return false;
		memcpy(line, p, (size_t)(e - p));
		line[e - p] = '\0';
		if (strlen(line) > strlen(tail) &&
		    strcmp(line + strlen(line) - strlen(tail), tail) == 0)
			return strstr(line, text[0]) != NULL && strstr(line, text[1]) != NULL;
	}
	return false;
}

/* Severities never go up again from one line to the next. */
static bool
diag_ordered(const char *out)
{
	static const char *const sev[] = { "  error  ", "  warning  ", "  info  " };
	int last = 0;

	for (const char *p = strchr(out, '\n'); p && p[1] == ' '; p = strchr(p + 1, '\n')) {
		int k = 0;

		while (k < 3 && strncmp(p + 1, sev[k], strlen(sev[k])) != 0)
			k++;
		if (k == 3 || k < last)
			return false;
		last = k;
	}
	return true;
}

static void
test_diagnose_case(struct fake *f, const struct diag_case *c)
{
	char *out = NULL, *err = NULL, what[128], want[96];
	int rc;

	diag_apply(f, diag_base(f), &c->set);
	rc = run_diag(&f->src, &out, &err, DIAG_NAME, NULL);
	snprintf(what, sizeof(what), "diagnose: %s -> %s %s", c->what, c->sev, c->code);
	check(rc == 0 && strstr(out, "diagnose tunnel " DIAG_NAME " (id 3)\n") &&
	      diag_finding(out, c->sev, c->code, c->text) && diag_ordered(out) &&
	      (c->verdict == NULL || strstr(out, c->verdict)), what, out);
	free(out);
	free(err);
	rc = run_diag(&f->src, &out, NULL, DIAG_NAME, "--json", NULL);
	snprintf(want, sizeof(want), "{\"severity\": \"%s\", \"code\": \"%s\", \"text\": \"", c->sev,
		 c->code);
	snprintf(what, sizeof(what), "diagnose --json: %s", c->what);
	check(rc == 0 && json_valid(out) && strstr(out, want) &&
	      strstr(out, "{\"tunnel\": \"" DIAG_NAME "\", \"id\": 3, \"findings\": [") &&
	      strstr(out, "\"verdict\": \""), what, out);
	free(out);
}

/* natt_diag_eval() alone: no memzone, the output bound, an empty verdict. */
static void
test_diag_pure(void)
{
	struct natt_diag_in d = { .installed = true, .in_packets = 5, .auth_failed = 1,
				  .replay = 2, .policy = 3, .out_ago = -1, .in_ago = 1,
				  .keepalive_ago = -1, .idle_after = 60 };
	struct natt_diag_finding f[NATT_DIAG_MAX];
	unsigned int n = natt_diag_eval(&d, f, 2), all;
	char v[128];

	check(n == 2 && f[0].sev == NATT_DIAG_ERROR && strcmp(f[0].code, "no_return") == 0 &&
	      strcmp(f[1].code, "auth_failed") == 0,
	      "diagnose: natt_diag_eval keeps to max, the most severe first", NULL);
	all = natt_diag_eval(&d, f, NATT_DIAG_MAX);
	check(all == 4 && strcmp(f[3].code, "policy") == 0,
	      "diagnose: natt_diag_eval: errors, then warnings in rule order", NULL);
	check(strcmp(natt_diag_verdict(f, 0, v, sizeof(v)), "nothing to report") == 0 &&
	      strcmp(natt_diag_verdict(f, all, v, sizeof(v)),
		     "broken - nothing sent back to the peer (+3 more problems)") == 0,
	      "diagnose: verdict of none and of four findings", v);
}

static void
test_diagnose(void)
{
	struct natt_journal_tunnel *jt;
	char *out = NULL, *err = NULL;
	struct fake f;
	int rc;

	fake_init(&f, 2, 16, true);
	for (unsigned int i = 0; i < RTE_DIM(diag_cases); i++)
		test_diagnose_case(&f, &diag_cases[i]);
	test_diag_pure();

	rc = run_diag(&f.src, &out, &err, "no-such", NULL);
	check(rc == NATT_SHOW_USAGE && out[0] == '\0' && strstr(err, "no tunnel named \"no-such\""),
	      "diagnose: unknown tunnel exits 1 with a message", err);
	free(out);
	free(err);
	jt = natt_journal_tunnel(f.src.j, 11);
	strcpy(jt->name, "dirty-one");
	jt->state = NATT_JT_DIRTY;
	rc = run_diag(&f.src, &out, NULL, "dirty-one", NULL);
	check(rc == 0 && strstr(out, "  error    natt-control sent this tunnel but the dataplane does"
				  " not hold it") && strstr(out, " [not_installed]\n") &&
	      strstr(out, "verdict: broken - not installed in the dataplane\n") &&
	      !strstr(out, "no_traffic"), "diagnose: journal-only tunnel is not_installed, alone",
	      out);
	free(out);
	rc = run_diag(&f.src, &out, NULL, DIAG_NAME, "--prometheus", NULL);
	check(rc == NATT_SHOW_USAGE, "diagnose --prometheus: usage error", NULL);
	free(out);
	rc = run_diag(&f.src, &out, NULL, "--json", NULL);
	check(rc == NATT_SHOW_USAGE, "diagnose without a tunnel: usage error", NULL);
	free(out);
	fake_free(&f);
}

int
main(void)
{
	test_check();
	test_commands();
	test_events();
	test_diagnose();
	test_scale();
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
