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

/* Run `show` args on src; returns the exit status, output in *out. */
static int
run(const struct natt_show_src *src, char **out, const char *a0, ...)
{
	char *argv[8] = { "show", (char *)a0 }, *errbuf = NULL;
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
	free(errbuf);
	return rc;
}

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
	free(out);
	rc = run(&f.src, &out, "tunnel", "tun.with-dots_9", "--json", NULL);
	check(rc == 0 && json_valid(out) && strstr(out, "\"state\": \"live\"") &&
	      strstr(out, "\"routes\": [\"10.128.5.0/24\", \"10.128.6.7/32\"]") &&
	      strstr(out, "\"prev_remote_addr\": \"192.0.2.1\", \"prev_remote_port\": 1234") &&
	      strstr(out, "\"keepalives\": 7") && strstr(out, "\"type\": \"nat_mapping\""),
	      "tunnel NAME --json: identity, journal routes, latest event", out);
	free(out);
	rc = run(&f.src, &out, "tunnel", "tun.with-dots_9", NULL);
	check(rc == 0 && strstr(out, "tunnel tun.with-dots_9 (id 5)") &&
	      strstr(out, "10.128.5.0/24 10.128.6.7/32") && strstr(out, "yes, no inbound since"),
	      "tunnel NAME: text", out);
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
	free(out);
	rc = run(&f.src, &out, "stats", NULL);
	check(rc == 0 && strstr(out, "3 ok, 1 failed") && strstr(out, "0000:03:00.1"),
	      "stats: text", out);
	free(out);
	rc = run(&f.src, &out, "stats", "--prometheus", "--tunnels", NULL);
	check(rc == 0 && strstr(out, "natt_drops_total{reason=\"no_sa\"} 4\n") &&
	      strstr(out, "natt_config_reloads_total{result=\"failed\"} 1\n") &&
	      strstr(out, "natt_tunnel_in_packets_total{tunnel=\"q\\\"b\\\\s\\n?\?-x\",id=\"9\"}"
		      " 109\n") &&
	      strstr(out, "natt_port_rx_packets_total{port=\"0\",device=\"net_pcap0\"} 5\n"),
	      "stats --prometheus --tunnels: samples and escaped labels", out);
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

int
main(void)
{
	test_check();
	test_commands();
	test_events();
	test_scale();
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
