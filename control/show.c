/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * show.c - `natt-control show`: read the counters (natt_stats.h) and the
 * control plane's journal (natt_journal.h) of a running natt-dataplane and
 * print them as a table, JSON or Prometheus text (docs/OPERATOR.md).
 *
 * Read-only by construction: we only load from the memzones, never store,
 * never lock, never touch a ring. Every block has one writer elsewhere; we
 * may see a counter a few packets old, and copy a tunnel's entry before
 * using it so that one line of output is consistent with itself. Each
 * command is one linear pass (two for the table's column width, one per
 * metric family for per-tunnel Prometheus series) over max_tunnels entries:
 * rows are streamed, nothing is sorted or kept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_memzone.h>

#include "show.h"

#define NS UINT64_C(1000000000)

enum show_cmd { CMD_TUNNELS, CMD_TUNNEL, CMD_STATS, CMD_DROPS, CMD_EVENTS, CMD_DIAGNOSE };
enum show_fmt { FMT_TEXT, FMT_JSON, FMT_PROM };

struct show_opts {
	enum show_cmd cmd;
	enum show_fmt fmt;
	bool prom_tunnels;
	const char *name;      /* show tunnel NAME, diagnose NAME */
};

/* Both clocks now, and the dataplane's TSC origin. */
struct show_clock {
	uint64_t hz;
	uint64_t start_tsc;
	uint64_t start_ns;
	uint64_t now_tsc;
	uint64_t now_ns;
};

struct show {
	struct natt_stats_hdr *st;
	struct natt_journal_hdr *j;
	FILE *out;
	struct show_clock clk;
};

/* Totals over a set of tunnels. */
struct tunnel_sums {
	uint64_t n, idle, grace;
	uint64_t in_packets, in_bytes, out_packets, out_bytes;
	uint64_t auth_failed, replay, policy, mapping_changes;
};

static const char *const counter_help[NATT_CNT_MAX] = {
	[NATT_CNT_RX] = "Packets received on all ports",
	[NATT_CNT_RX_BYTES] = "Bytes received on all ports",
	[NATT_CNT_TX] = "Packets sent on all ports",
	[NATT_CNT_TX_BYTES] = "Bytes sent on all ports",
	[NATT_CNT_DECRYPTED] = "ESP packets whose ICV verified",
	[NATT_CNT_ENCRYPTED] = "ESP packets sealed",
	[NATT_CNT_FRAGMENTED] = "Inner packets cut into fragments before encryption",
	[NATT_CNT_FRAGMENTS] = "Fragments made",
	[NATT_CNT_MSS_CLAMPED] = "TCP SYNs whose MSS was lowered",
	[NATT_CNT_ICMP_TOO_BIG] = "ICMP fragmentation-needed messages sent",
	[NATT_CNT_ICMP_LIMITED] = "ICMP messages held back by the rate limit",
	[NATT_CNT_ICMP_SUPPRESSED] = "ICMP messages not sent by the RFC 1812 rules",
	[NATT_CNT_NAT_MAPPING] = "Peer NAT mapping changes seen",
	[NATT_CNT_IDLE_EVENTS] = "Tunnel idle events raised",
	[NATT_CNT_SA_EXPIRED] = "Inbound SAs deleted at the end of their rekey grace",
	[NATT_CNT_HANDOFF_OUT] = "Packets handed to the owning worker",
	[NATT_CNT_HANDOFF_IN] = "Packets received from other workers",
	[NATT_CNT_CTL_MSGS] = "Control messages applied",
	[NATT_CNT_EVT_LOST] = "Events dropped because the event ring was full",
	[NATT_CNT_LOOPS] = "Worker poll loops",
	[NATT_CNT_EXCEPTION] = "Packets punted to the host's TAP (IKE, ARP, ICMP to the gateway)",
	[NATT_CNT_HOST_TX] = "Packets the host sent through a TAP out of its port",
	[NATT_CNT_ARP_REPLIES] = "ARP replies the dataplane sent for its own addresses",
	[NATT_CNT_ARP_REQUESTS] = "ARP requests the dataplane sent to resolve next hops",
	[NATT_CNT_KEEPALIVES_IN] = "NAT keepalives attributed to a tunnel",
	[NATT_CNT_KEEPALIVES_SENT] = "NAT keepalives sent (tunnel keepalive)",
	[NATT_CNT_NAT_FOLLOWED] = "NAT mapping changes the outbound SA followed",
};

/* ---- names ---- */

static const char *
jt_state_name(unsigned int s)
{
	static const char *const names[] = {
		[NATT_JT_FREE] = "free", [NATT_JT_LIVE] = "live", [NATT_JT_DIRTY] = "dirty",
	};
	return s < RTE_DIM(names) ? names[s] : "unknown";
}

/* ---- clocks and formatting ---- */

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void
clock_init(struct show_clock *c, const struct natt_stats_hdr *h)
{
	c->hz = h->tsc_hz;
	c->start_tsc = h->start_tsc;
	c->start_ns = h->start_unix_ns;
	c->now_tsc = rte_rdtsc();  /* invariant TSC: the dataplane's clock too */
	c->now_ns = realtime_ns();
}

/* CLOCK_REALTIME of dataplane TSC value t; 0 (never) stays 0. */
static uint64_t
tsc_ns(const struct show_clock *c, uint64_t t)
{
	uint64_t d;

	if (t == 0)
		return 0;
	d = t > c->start_tsc ? t - c->start_tsc : 0;
	return c->start_ns + d / c->hz * NS +
	       (uint64_t)((unsigned __int128)(d % c->hz) * NS / c->hz);
}

/* Seconds from TSC value t to now (0 if t is a hair in the future). */
static double
tsc_ago(const struct show_clock *c, uint64_t t)
{
	return t < c->now_tsc ? (double)(c->now_tsc - t) / (double)c->hz : 0.0;
}

static double
ns_ago(const struct show_clock *c, uint64_t ns)
{
	return ns < c->now_ns ? (double)(c->now_ns - ns) / 1e9 : 0.0;
}

/* "2024-05-01T12:00:00.123Z", or "-" for 0. */
static const char *
fmt_time(char *buf, size_t len, uint64_t unix_ns)
{
	time_t s = (time_t)(unix_ns / NS);
	struct tm tm;
	size_t n;

	if (unix_ns == 0 || gmtime_r(&s, &tm) == NULL)
		return "-";
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ", (unsigned int)(unix_ns % NS / 1000000));
	return buf;
}

/* "0.4s", "42s", "5m03s", "3h12m", "2d04h". */
static const char *
fmt_dur(char *buf, size_t len, double s)
{
	uint64_t v = (uint64_t)s;

	if (s < 10)
		snprintf(buf, len, "%.1fs", s);
	else if (v < 120)
		snprintf(buf, len, "%" PRIu64 "s", v);
	else if (v < 7200)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", v / 60, v % 60);
	else if (v < 172800)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", v / 3600, v / 60 % 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", v / 86400, v / 3600 % 24);
	return buf;
}

/* How long ago TSC value t was, "never" for 0. */
static const char *
fmt_tsc_ago(char *buf, size_t len, const struct show_clock *c, uint64_t t)
{
	return t ? fmt_dur(buf, len, tsc_ago(c, t)) : "never";
}

/* "a.b.c.d:port" of network-order values; "-" when both are 0. */
static const char *
fmt_addr(char *buf, size_t len, uint32_t addr, uint16_t port)
{
	char a[INET_ADDRSTRLEN];

	if (addr == 0 && port == 0)
		return "-";
	inet_ntop(AF_INET, &addr, a, sizeof(a));
	snprintf(buf, len, "%s:%u", a, ntohs(port));
	return buf;
}

static const char *
fmt_spi(char *buf, size_t len, uint32_t spi)
{
	if (spi == 0)
		return "-";
	snprintf(buf, len, "0x%08x", spi);
	return buf;
}

/* A name from shared memory, printable: at most max bytes, others as '?'. */
static const char *
fmt_name(char *buf, const char *s, size_t max)
{
	size_t i;

	for (i = 0; i < max && s[i]; i++)
		buf[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* A string from shared memory for a terminal: printable ASCII, others as '?'. */
static void
text_str(FILE *f, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++)
		putc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?', f);
}

/* ---- JSON ---- */

static void
json_str(FILE *f, const char *s, size_t max)
{
	putc('"', f);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			fprintf(f, "\\u%04x", c);  /* names are ASCII: never split UTF-8 */
		else
			putc(c, f);
	}
	putc('"', f);
}

/* , "key": <unix seconds with microseconds> or null */
static void
json_unix(FILE *f, const char *key, uint64_t ns)
{
	if (ns == 0)
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": %" PRIu64 ".%06" PRIu64, key, ns / NS, ns % NS / 1000);
}

static void
json_spi(FILE *f, const char *key, uint32_t spi)
{
	if (spi == 0)
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": \"0x%08x\"", key, spi);
}

static void
json_addr(FILE *f, const char *akey, const char *pkey, uint32_t addr, uint16_t port)
{
	char a[INET_ADDRSTRLEN];

	if (addr == 0 && port == 0) {
		fprintf(f, ", \"%s\": null, \"%s\": null", akey, pkey);
		return;
	}
	inet_ntop(AF_INET, &addr, a, sizeof(a));
	fprintf(f, ", \"%s\": \"%s\", \"%s\": %u", akey, a, pkey, ntohs(port));
}

/* ---- reading the memzones ---- */

static uint64_t
drops_total(const struct natt_worker_stats *ws)
{
	uint64_t d = 0;

	for (unsigned int i = 0; i < NATT_DROP_MAX; i++)
		d += ws->drops[i];
	return d;
}

/* The generation every worker has applied. */
static uint64_t
workers_generation(struct natt_stats_hdr *h)
{
	uint64_t g = UINT64_MAX;

	for (uint32_t w = 0; w < h->n_workers; w++) {
		uint64_t wg = natt_stats_worker(h, w)->generation;

		if (wg < g)
			g = wg;
	}
	return g;
}

/* A copy of tunnel id's entry (its identity and counters as of one
 * moment, give or take a counter), or false if the id is not in use. */
static bool
tunnel_get(struct natt_stats_hdr *h, uint32_t id, struct natt_tunnel_stats *t)
{
	const struct natt_tunnel_stats *s = natt_stats_tunnel(h, id);

	if (s->in_spi == 0 && s->out_spi == 0)
		return false;
	memcpy(t, s, sizeof(*t));
	t->name[NATT_NAME_LEN - 1] = '\0';
	return t->in_spi != 0 || t->out_spi != 0;
}

static uint32_t
tunnels_live(struct natt_stats_hdr *h)
{
	uint32_t n = 0;

	for (uint32_t id = 0; id < h->max_tunnels; id++) {
		const struct natt_tunnel_stats *s = natt_stats_tunnel(h, id);

		n += s->in_spi != 0 || s->out_spi != 0;
	}
	return n;
}

static void
sums_add(struct tunnel_sums *s, const struct natt_tunnel_stats *t)
{
	s->n++;
	s->idle += t->idle != 0;
	s->grace += t->grace_spi != 0;
	s->in_packets += t->in_packets;
	s->in_bytes += t->in_bytes;
	s->out_packets += t->out_packets;
	s->out_bytes += t->out_bytes;
	s->auth_failed += t->auth_failed;
	s->replay += t->replay;
	s->policy += t->policy;
	s->mapping_changes += t->mapping_changes;
}

/* The journal's record of tunnel id (a copy), or NULL. */
static const struct natt_journal_tunnel *
journal_get(const struct show *s, uint32_t id, struct natt_journal_tunnel *jt)
{
	if (s->j == NULL || id >= s->j->max_tunnels)
		return NULL;
	memcpy(jt, natt_journal_tunnel(s->j, id), sizeof(*jt));
	jt->name[NATT_NAME_LEN - 1] = '\0';
	if (jt->n_pfx > NATT_MAX_TS)
		jt->n_pfx = NATT_MAX_TS;
	return jt;
}

/*
 * The event log, oldest first, into buf (n_events entries); returns how many
 * and the sequence number of the first in *first. The writer fills entry i
 * in slot i % n and then publishes evt_head = i + 1 with release: once we
 * have copied, every entry below head' - n + 1 (head' read again after the
 * copy) may have been overwritten while we read it, and is left out.
 */
static uint32_t
events_snapshot(struct natt_journal_hdr *j, struct natt_journal_event *buf, uint64_t *first)
{
	const struct natt_journal_event *ev = natt_journal_events(j);
	const uint64_t n = j->n_events;
	uint64_t head, lo, head2;

	head = __atomic_load_n(&j->evt_head, __ATOMIC_ACQUIRE);
	lo = head > n ? head - n : 0;
	for (uint64_t i = lo; i < head; i++)
		memcpy(&buf[i - lo], &ev[i % n], sizeof(buf[0]));
	/* the copies above happen before we look at the head again */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head2 = __atomic_load_n(&j->evt_head, __ATOMIC_RELAXED);
	if (head2 + 1 > n && head2 + 1 - n > lo) {
		uint64_t skip = head2 + 1 - n - lo;

		if (skip > head - lo)
			skip = head - lo;
		memmove(buf, buf + skip, (head - lo - skip) * sizeof(buf[0]));
		lo += skip;
	}
	*first = lo;
	return (uint32_t)(head - lo);
}

/* ---- show tunnels / show tunnel NAME ---- */

/* nat_mapping_change of the tunnel: what the dataplane does when the
 * peer's NAT mapping moves. */
static const char *
mapping_policy(const struct natt_tunnel_stats *t)
{
	return t->pinned ? "pin" : "follow";
}

static void
text_tunnel_row(const struct show *s, const struct natt_tunnel_stats *t, uint32_t id, int w)
{
	char name[NATT_NAME_LEN], peer[32], in[16], out[16], grace[16], li[16], lo[16], ka[16];

	fprintf(s->out, "%7u  %-*s  %-21s  %-10s  %-10s  %3u  %11" PRIu64 "  %14" PRIu64
		"  %11" PRIu64 "  %14" PRIu64 "  %8" PRIu64 "  %8" PRIu64 "  %8" PRIu64
		"  %8s  %8s  %4s  %6u  %-6s  %8s  %s\n", id, w,
		fmt_name(name, t->name, NATT_NAME_LEN - 1),
		fmt_addr(peer, sizeof(peer), t->remote_addr, t->remote_port),
		fmt_spi(in, sizeof(in), t->in_spi), fmt_spi(out, sizeof(out), t->out_spi),
		t->owner, t->in_packets, t->in_bytes, t->out_packets, t->out_bytes,
		t->auth_failed, t->replay, t->policy,
		fmt_tsc_ago(li, sizeof(li), &s->clk, t->last_seen_tsc),
		fmt_tsc_ago(lo, sizeof(lo), &s->clk, t->last_out_tsc), t->idle ? "yes" : "-",
		t->mapping_changes, mapping_policy(t),
		fmt_tsc_ago(ka, sizeof(ka), &s->clk, t->last_keepalive_tsc),
		fmt_spi(grace, sizeof(grace), t->grace_spi));
}

static void
text_tunnels(const struct show *s)
{
	struct natt_stats_hdr *h = s->st;
	struct natt_tunnel_stats t;
	struct tunnel_sums sum = { 0 };
	int w = 4;

	/* first pass: the name column's width */
	for (uint32_t id = 0; id < h->max_tunnels; id++) {
		int n;

		if (tunnel_get(h, id, &t) && (n = (int)strlen(t.name)) > w)
			w = n;
	}
	/* GRACE_SPI stays last: scripts cut the table by its header */
	fprintf(s->out, "%7s  %-*s  %-21s  %-10s  %-10s  %3s  %11s  %14s  %11s  %14s  %8s  %8s"
		"  %8s  %8s  %8s  %4s  %6s  %-6s  %8s  %s\n", "ID", w, "NAME", "PEER", "IN_SPI",
		"OUT_SPI", "W", "IN_PKTS", "IN_BYTES", "OUT_PKTS", "OUT_BYTES", "AUTH", "REPLAY",
		"POLICY", "LAST_IN", "LAST_OUT", "IDLE", "MAPCHG", "NAT", "LAST_KA", "GRACE_SPI");
	for (uint32_t id = 0; id < h->max_tunnels; id++) {
		if (!tunnel_get(h, id, &t))
			continue;
		text_tunnel_row(s, &t, id, w);
		sums_add(&sum, &t);
	}
	fprintf(s->out, "%" PRIu64 " tunnel(s) of max %u, %" PRIu64 " idle, %" PRIu64
		" in rekey grace; in %" PRIu64 " packets %" PRIu64 " bytes, out %" PRIu64
		" packets %" PRIu64 " bytes; drops auth_failed %" PRIu64 " replay %" PRIu64
		" policy %" PRIu64 "; NAT mapping changes %" PRIu64 "\n", sum.n, h->max_tunnels,
		sum.idle, sum.grace, sum.in_packets, sum.in_bytes, sum.out_packets, sum.out_bytes,
		sum.auth_failed, sum.replay, sum.policy, sum.mapping_changes);
}

/* The keys `show tunnels --json` has for every tunnel (no braces). */
static void
json_tunnel_fields(const struct show *s, const struct natt_tunnel_stats *t, uint32_t id)
{
	FILE *f = s->out;

	fprintf(f, "\"id\": %u, \"name\": ", id);
	json_str(f, t->name, NATT_NAME_LEN - 1);
	json_addr(f, "remote_addr", "remote_port", t->remote_addr, t->remote_port);
	json_spi(f, "in_spi", t->in_spi);
	json_spi(f, "out_spi", t->out_spi);
	fprintf(f, ", \"owner\": %u, \"in_packets\": %" PRIu64 ", \"in_bytes\": %" PRIu64
		", \"out_packets\": %" PRIu64 ", \"out_bytes\": %" PRIu64 ", \"auth_failed\": %"
		PRIu64 ", \"replay\": %" PRIu64 ", \"policy\": %" PRIu64, t->owner,
		t->in_packets, t->in_bytes, t->out_packets, t->out_bytes, t->auth_failed,
		t->replay, t->policy);
	json_unix(f, "last_in_unix", tsc_ns(&s->clk, t->last_seen_tsc));
	if (t->last_seen_tsc)
		fprintf(f, ", \"last_in_ago_s\": %.3f", tsc_ago(&s->clk, t->last_seen_tsc));
	else
		fprintf(f, ", \"last_in_ago_s\": null");
	json_unix(f, "last_out_unix", tsc_ns(&s->clk, t->last_out_tsc));
	if (t->last_out_tsc)
		fprintf(f, ", \"last_out_ago_s\": %.3f", tsc_ago(&s->clk, t->last_out_tsc));
	else
		fprintf(f, ", \"last_out_ago_s\": null");
	fprintf(f, ", \"idle\": %s, \"mapping_changes\": %u", t->idle ? "true" : "false",
		t->mapping_changes);
	json_spi(f, "grace_spi", t->grace_spi);
}

static void
json_sums(FILE *f, const struct tunnel_sums *sum)
{
	fprintf(f, "{\"in_packets\": %" PRIu64 ", \"in_bytes\": %" PRIu64 ", \"out_packets\": %"
		PRIu64 ", \"out_bytes\": %" PRIu64 ", \"auth_failed\": %" PRIu64 ", \"replay\": %"
		PRIu64 ", \"policy\": %" PRIu64 ", \"idle\": %" PRIu64 ", \"grace\": %" PRIu64
		", \"mapping_changes\": %" PRIu64 "}", sum->in_packets, sum->in_bytes,
		sum->out_packets, sum->out_bytes, sum->auth_failed, sum->replay, sum->policy,
		sum->idle, sum->grace, sum->mapping_changes);
}

/* The v4 keys of `show tunnel(s) --json`: NAT-T behaviour, outbound drops. */
static void
json_tunnel_nat(FILE *f, const struct show_clock *c, const struct natt_tunnel_stats *t)
{
	fprintf(f, ", \"nat_mapping\": \"%s\"", mapping_policy(t));
	json_addr(f, "seen_addr", "seen_port", t->seen_addr, t->seen_port);
	fprintf(f, ", \"pin_ignored\": %u, \"keepalive_s\": %u, \"keepalives_sent\": %" PRIu64,
		t->pin_ignored, t->keepalive_s, t->keepalives_sent);
	json_unix(f, "last_keepalive_sent_unix", tsc_ns(c, t->last_keepalive_sent_tsc));
	fprintf(f, ", \"too_big\": %" PRIu64 ", \"fragmented\": %" PRIu64 ", \"bad_trailer\": %"
		PRIu64, t->too_big, t->fragmented, t->bad_trailer);
}

static void
json_tunnels(const struct show *s)
{
	struct natt_stats_hdr *h = s->st;
	struct natt_tunnel_stats t;
	struct tunnel_sums sum = { 0 };

	fprintf(s->out, "{\"tunnels\": [");
	for (uint32_t id = 0; id < h->max_tunnels; id++) {
		if (!tunnel_get(h, id, &t))
			continue;
		fprintf(s->out, "%s\n  {", sum.n ? "," : "");
		json_tunnel_fields(s, &t, id);
		fprintf(s->out, ", \"keepalives\": %" PRIu64, t.keepalives);
		json_tunnel_nat(s->out, &s->clk, &t);
		fprintf(s->out, "}");
		sums_add(&sum, &t);
	}
	fprintf(s->out, "\n], \"count\": %" PRIu64 ", \"max_tunnels\": %u, \"totals\": ", sum.n,
		h->max_tunnels);
	json_sums(s->out, &sum);
	fprintf(s->out, "}\n");
}

/* The dataplane's tunnel called name (a copy), or false. */
static bool
tunnel_find(const struct show *s, const char *name, uint32_t *id, struct natt_tunnel_stats *t)
{
	for (uint32_t i = 0; i < s->st->max_tunnels; i++)
		if (tunnel_get(s->st, i, t) && strcmp(t->name, name) == 0) {
			*id = i;
			return true;
		}
	return false;
}

/* The journal's record of a tunnel called name (a copy), or NULL: a tunnel
 * natt-control sent that the dataplane does not hold (state dirty). */
static const struct natt_journal_tunnel *
journal_find(const struct show *s, const char *name, uint32_t *id,
	     struct natt_journal_tunnel *jt)
{
	for (uint32_t i = 0; s->j != NULL && i < s->j->max_tunnels; i++) {
		const struct natt_journal_tunnel *r = natt_journal_tunnel(s->j, i);

		if (r->state != NATT_JT_FREE && strncmp(r->name, name, NATT_NAME_LEN) == 0 &&
		    journal_get(s, i, jt) && jt->state != NATT_JT_FREE &&
		    strcmp(jt->name, name) == 0) {
			*id = i;
			return jt;
		}
	}
	return NULL;
}

static const char *
fmt_pfx(char *buf, size_t len, const struct natt_ctl_ts *ts)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ts->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, ts->plen);
	return buf;
}

static void
text_traffic(FILE *f, const struct show_clock *c, const char *what, uint64_t packets,
	     uint64_t bytes, uint64_t last)
{
	char b1[64], b2[32];

	fprintf(f, "  %-18s %" PRIu64 " packets, %" PRIu64 " bytes, last ", what, packets, bytes);
	if (last)
		fprintf(f, "%s (%s ago)\n", fmt_time(b1, sizeof(b1), tsc_ns(c, last)),
			fmt_dur(b2, sizeof(b2), tsc_ago(c, last)));
	else
		fprintf(f, "never\n");
}

/* A line "  WHAT    <time> (<ago> ago)", or "never". */
static void
text_when(FILE *f, const struct show_clock *c, const char *what, uint64_t tsc)
{
	char b1[64], b2[32];

	if (tsc)
		fprintf(f, "  %-18s %s (%s ago)\n", what, fmt_time(b1, sizeof(b1), tsc_ns(c, tsc)),
			fmt_dur(b2, sizeof(b2), tsc_ago(c, tsc)));
	else
		fprintf(f, "  %-18s never\n", what);
}

/* SPIs, owner, the NAT mapping and what the tunnel does when it moves. */
static void
text_tunnel_nat(FILE *f, const struct show_clock *c, const struct natt_tunnel_stats *t)
{
	char b1[64], b2[64], b3[32];

	fprintf(f, "  %-18s %s\n", "inbound SPI", fmt_spi(b3, sizeof(b3), t->in_spi));
	fprintf(f, "  %-18s %s\n", "outbound SPI", fmt_spi(b3, sizeof(b3), t->out_spi));
	fprintf(f, "  %-18s %s\n", "grace SPI", fmt_spi(b3, sizeof(b3), t->grace_spi));
	fprintf(f, "  %-18s %u\n", "owner worker", t->owner);
	fprintf(f, "  %-18s %s\n", "nat mapping", t->pinned ?
		"pin (changes are reported, outbound stays on the peer below)" :
		"follow (outbound follows the peer's authenticated packets)");
	fprintf(f, "  %-18s %s\n", "peer",
		fmt_addr(b1, sizeof(b1), t->remote_addr, t->remote_port));
	fprintf(f, "  %-18s %s\n", "last seen from",
		fmt_addr(b1, sizeof(b1), t->seen_addr, t->seen_port));
	fprintf(f, "  %-18s %s", "previous peer",
		fmt_addr(b1, sizeof(b1), t->prev_remote_addr, t->prev_remote_port));
	if (t->last_mapping_tsc)
		fprintf(f, ", changed %s (%s ago)",
			fmt_time(b2, sizeof(b2), tsc_ns(c, t->last_mapping_tsc)),
			fmt_dur(b3, sizeof(b3), tsc_ago(c, t->last_mapping_tsc)));
	fprintf(f, "\n  %-18s %u, not followed (pinned) %u\n", "mapping changes",
		t->mapping_changes, t->pin_ignored);
}

/* Traffic, drops, keepalives and idleness. */
static void
text_tunnel_traffic(FILE *f, const struct show_clock *c, const struct natt_tunnel_stats *t)
{
	char b2[64], b3[32];

	text_when(f, c, "created", t->created_tsc);
	text_traffic(f, c, "inbound", t->in_packets, t->in_bytes, t->last_seen_tsc);
	text_traffic(f, c, "outbound", t->out_packets, t->out_bytes, t->last_out_tsc);
	fprintf(f, "  %-18s auth_failed %" PRIu64 ", replay %" PRIu64 ", policy %" PRIu64
		", bad_trailer %" PRIu64 ", too_big %" PRIu64 "; fragmented %" PRIu64 "\n",
		"drops", t->auth_failed, t->replay, t->policy, t->bad_trailer, t->too_big,
		t->fragmented);
	fprintf(f, "  %-18s %" PRIu64 ", last %s\n", "keepalives", t->keepalives,
		fmt_tsc_ago(b3, sizeof(b3), c, t->last_keepalive_tsc));
	fprintf(f, "  %-18s %" PRIu64 ", last %s\n", "keepalives sent", t->keepalives_sent,
		fmt_tsc_ago(b3, sizeof(b3), c, t->last_keepalive_sent_tsc));
	if (t->keepalive_s)
		fprintf(f, "  %-18s %u s\n", "keepalive interval", t->keepalive_s);
	else
		fprintf(f, "  %-18s off (we send none)\n", "keepalive interval");
	if (t->idle)
		fprintf(f, "  %-18s yes, no inbound since %s (%s)\n", "idle",
			fmt_time(b2, sizeof(b2), tsc_ns(c, t->idle_mark_tsc)),
			fmt_tsc_ago(b3, sizeof(b3), c, t->idle_mark_tsc));
	else
		fprintf(f, "  %-18s no\n", "idle");
}

/* What the journal says about the tunnel: state, SPIs, routes, latest event. */
static void
text_tunnel_journal(FILE *f, const struct show_clock *c, const struct natt_journal_tunnel *jt)
{
	char b1[64], b2[64], b3[32], b4[32];

	fprintf(f, "  %-18s %s, SPIs in %s out %s", "journal", jt_state_name(jt->state),
		fmt_spi(b3, sizeof(b3), jt->spi[NATT_DIR_IN]),
		fmt_spi(b4, sizeof(b4), jt->spi[NATT_DIR_OUT]));
	if (jt->grace_spi)
		fprintf(f, ", grace %s until %s", fmt_spi(b3, sizeof(b3), jt->grace_spi),
			fmt_time(b2, sizeof(b2), jt->grace_until_ns));
	fprintf(f, "\n  %-18s", "routes");
	for (unsigned int i = 0; i < jt->n_pfx; i++)
		fprintf(f, " %s", fmt_pfx(b1, sizeof(b1), &jt->pfx[i]));
	fprintf(f, "%s\n", jt->n_pfx ? "" : " -");
	if (jt->last_evt_type == 0) {
		fprintf(f, "  %-18s -\n", "latest event");
		return;
	}
	fprintf(f, "  %-18s %s at %s (%s ago), value %u", "latest event",
		natt_event_name(jt->last_evt_type), fmt_time(b2, sizeof(b2), jt->last_evt_ns),
		fmt_dur(b3, sizeof(b3), ns_ago(c, jt->last_evt_ns)), jt->last_evt_value);
	if (jt->last_evt_type == NATT_EVT_NAT_MAPPING)
		fprintf(f, ", peer moved %s -> %s",
			fmt_addr(b1, sizeof(b1), jt->last_evt_old_addr, jt->last_evt_old_port),
			fmt_addr(b2, sizeof(b2), jt->last_evt_addr, jt->last_evt_port));
	else if (jt->last_evt_addr || jt->last_evt_port)
		fprintf(f, ", peer %s",
			fmt_addr(b1, sizeof(b1), jt->last_evt_addr, jt->last_evt_port));
	fprintf(f, "\n");
}

static void
text_tunnel(const struct show *s, const struct natt_tunnel_stats *t, uint32_t id,
	    const struct natt_journal_tunnel *jt)
{
	char name[NATT_NAME_LEN];
	FILE *f = s->out;
	bool live = t->in_spi != 0 || t->out_spi != 0;

	fprintf(f, "tunnel %s (id %u)\n", fmt_name(name, live ? t->name : jt->name,
						 NATT_NAME_LEN - 1), id);
	if (!live) {
		fprintf(f, "  not installed in the dataplane (journal state %s)\n",
			jt ? jt_state_name(jt->state) : "-");
	} else {
		text_tunnel_nat(f, &s->clk, t);
		text_tunnel_traffic(f, &s->clk, t);
	}
	if (jt == NULL)
		fprintf(f, "  %-18s not available\n", "journal");
	else
		text_tunnel_journal(f, &s->clk, jt);
}

static void
json_tunnel(const struct show *s, const struct natt_tunnel_stats *t, uint32_t id,
	    const struct natt_journal_tunnel *jt)
{
	const struct show_clock *c = &s->clk;
	FILE *f = s->out;
	char b[32];

	fprintf(f, "{\"tunnel\": {");
	if (t->in_spi == 0 && t->out_spi == 0) {
		fprintf(f, "\"id\": %u, \"name\": ", id);
		json_str(f, jt->name, NATT_NAME_LEN - 1);
		fprintf(f, ", \"installed\": false");
	} else {
		json_tunnel_fields(s, t, id);
		fprintf(f, ", \"installed\": true");
		json_unix(f, "created_unix", tsc_ns(c, t->created_tsc));
		json_addr(f, "prev_remote_addr", "prev_remote_port", t->prev_remote_addr,
			  t->prev_remote_port);
		json_unix(f, "last_mapping_unix", tsc_ns(c, t->last_mapping_tsc));
		fprintf(f, ", \"keepalives\": %" PRIu64, t->keepalives);
		json_unix(f, "last_keepalive_unix", tsc_ns(c, t->last_keepalive_tsc));
		json_unix(f, "idle_since_unix", t->idle ? tsc_ns(c, t->idle_mark_tsc) : 0);
		json_tunnel_nat(f, c, t);
	}
	if (jt == NULL) {
		fprintf(f, ", \"journal\": null}}\n");
		return;
	}
	fprintf(f, ", \"journal\": {\"state\": \"%s\"", jt_state_name(jt->state));
	json_spi(f, "in_spi", jt->spi[NATT_DIR_IN]);
	json_spi(f, "out_spi", jt->spi[NATT_DIR_OUT]);
	json_spi(f, "grace_spi", jt->grace_spi);
	json_unix(f, "grace_until_unix", jt->grace_spi ? jt->grace_until_ns : 0);
	fprintf(f, ", \"routes\": [");
	for (unsigned int i = 0; i < jt->n_pfx; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", fmt_pfx(b, sizeof(b), &jt->pfx[i]));
	fprintf(f, "], \"last_event\": ");
	if (jt->last_evt_type == 0) {
		fprintf(f, "null}}}\n");
		return;
	}
	fprintf(f, "{\"type\": \"%s\", \"type_id\": %u", natt_event_name(jt->last_evt_type),
		jt->last_evt_type);
	json_unix(f, "time_unix", jt->last_evt_ns);
	json_addr(f, "addr", "port", jt->last_evt_addr, jt->last_evt_port);
	json_addr(f, "old_addr", "old_port", jt->last_evt_old_addr, jt->last_evt_old_port);
	fprintf(f, ", \"value\": %u}}}}\n", jt->last_evt_value);
}

static int
show_tunnel(const struct show *s, const char *name, enum show_fmt fmt, FILE *err)
{
	struct natt_journal_tunnel jbuf;
	const struct natt_journal_tunnel *jt;
	struct natt_tunnel_stats t;
	uint32_t id;

	if (tunnel_find(s, name, &id, &t)) {
		jt = journal_get(s, id, &jbuf);
		/* only if the journal's record of that id is this tunnel */
		if (jt != NULL && (jt->state == NATT_JT_FREE || strcmp(jt->name, t.name) != 0))
			jt = NULL;
	} else {
		memset(&t, 0, sizeof(t));
		jt = journal_find(s, name, &id, &jbuf);
		if (jt == NULL) {
			fprintf(err, "natt-control: no tunnel named \"%s\"\n", name);
			return NATT_SHOW_USAGE;
		}
	}
	if (fmt == FMT_JSON)
		json_tunnel(s, &t, id, jt);
	else
		text_tunnel(s, &t, id, jt);
	return NATT_SHOW_OK;
}

/* ---- show stats ---- */

/* The host interface name of port p's TAP (exception path), or NULL. A
 * port without one has tap_of NATT_NO_TAP; an empty name is a header not
 * filled in (a dataplane without --tap), shown the same. */
static const char *
port_tap(const struct natt_stats_hdr *h, uint32_t p, char buf[16])
{
	if (h->tap_of[p] == NATT_NO_TAP || h->tap_names[p][0] == '\0')
		return NULL;
	return fmt_name(buf, h->tap_names[p], sizeof(h->tap_names[p]) - 1);
}

/* "02:00:00:00:00:fe" of a neighbour entry: the low 48 bits hold the MAC
 * in wire order, first byte in bits 47..40. */
static const char *
fmt_mac(char buf[18], uint64_t mac)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned int)(mac >> 40 & 0xff),
		 (unsigned int)(mac >> 32 & 0xff), (unsigned int)(mac >> 24 & 0xff),
		 (unsigned int)(mac >> 16 & 0xff), (unsigned int)(mac >> 8 & 0xff),
		 (unsigned int)(mac & 0xff));
	return buf;
}

/* Port p's next hop as one consistent copy (a worker may update it). */
static struct natt_neigh
port_neigh(const struct natt_stats_hdr *h, uint32_t p)
{
	struct natt_neigh n;

	n.ip = __atomic_load_n(&h->neigh[p].ip, __ATOMIC_RELAXED);
	n.mac = natt_neigh_mac(&h->neigh[p]);    /* 0 unless it is this ip's */
	n.mac_ip = n.ip;
	n.updated_tsc = __atomic_load_n(&h->neigh[p].updated_tsc, __ATOMIC_RELAXED);
	return n;
}

/* "tap natt0, next hop 203.0.113.254 -> 02:..:fe (resolved 3.0s ago)". */
static void
text_port_path(FILE *f, const struct show *s, uint32_t p)
{
	struct natt_neigh n = port_neigh(s->st, p);
	char tap[16], col[24], ip[INET_ADDRSTRLEN], mac[18], ago[32];
	const char *t = port_tap(s->st, p, tap);

	snprintf(col, sizeof(col), "%s%s", t ? "tap " : "no tap", t ? t : "");
	fprintf(f, "  %4u  %-19s  ", p, col);
	if (n.ip == 0) {
		fprintf(f, "next hop static MAC\n");
		return;
	}
	inet_ntop(AF_INET, &n.ip, ip, sizeof(ip));
	if (n.mac & NATT_NEIGH_VALID)
		fprintf(f, "next hop %s -> %s (resolved %s ago)\n", ip, fmt_mac(mac, n.mac),
			fmt_tsc_ago(ago, sizeof(ago), &s->clk, n.updated_tsc));
	else
		fprintf(f, "next hop %s unresolved (ARP)\n", ip);
}

/* , "tap": "natt0"|null, "next_hop": null|{"ip", "mac"|null, "resolved", ...} */
static void
json_port_path(FILE *f, const struct show *s, uint32_t p)
{
	struct natt_neigh n = port_neigh(s->st, p);
	char tap[16], ip[INET_ADDRSTRLEN], mac[18];
	const char *t = port_tap(s->st, p, tap);

	if (t != NULL) {
		fprintf(f, ", \"tap\": ");
		json_str(f, t, sizeof(tap));
		fprintf(f, ", \"tap_port\": %u", s->st->tap_of[p]);
	} else
		fprintf(f, ", \"tap\": null, \"tap_port\": null");
	if (n.ip == 0) {
		fprintf(f, ", \"next_hop\": null");
		return;
	}
	inet_ntop(AF_INET, &n.ip, ip, sizeof(ip));
	fprintf(f, ", \"next_hop\": {\"ip\": \"%s\", \"resolved\": %s", ip,
		n.mac & NATT_NEIGH_VALID ? "true" : "false");
	if (n.mac & NATT_NEIGH_VALID)
		fprintf(f, ", \"mac\": \"%s\"", fmt_mac(mac, n.mac));
	else
		fprintf(f, ", \"mac\": null");
	json_unix(f, "updated_unix", n.mac & NATT_NEIGH_VALID ? tsc_ns(&s->clk, n.updated_tsc) : 0);
	fprintf(f, "}");
}

static void
text_reload(const struct show *s)
{
	const struct natt_journal_hdr *j = s->j;
	char b1[64], b2[32];
	FILE *f = s->out;

	fprintf(f, "config reload:\n");
	if (j == NULL) {
		fprintf(f, "  journal not available\n");
		return;
	}
	fprintf(f, "  %-16s %" PRIu64 " ok, %" PRIu64 " failed\n", "reloads", j->reloads_ok,
		j->reloads_failed);
	fprintf(f, "  %-16s %u\n", "generation", j->generation);
	fprintf(f, "  %-16s %s", "last attempt", natt_reload_status_name(j->last_status));
	if (j->last_attempt_ns)
		fprintf(f, " at %s (%s ago)", fmt_time(b1, sizeof(b1), j->last_attempt_ns),
			fmt_dur(b2, sizeof(b2), ns_ago(&s->clk, j->last_attempt_ns)));
	fprintf(f, "\n  %-16s %s\n", "last ok", fmt_time(b1, sizeof(b1), j->last_ok_ns));
	fprintf(f, "  %-16s parse %.3f ms, apply %.3f ms\n", "durations",
		j->last_parse_us / 1e3, j->last_apply_us / 1e3);
	fprintf(f, "  %-16s %u added, %u removed, %u updated, %u rekeyed, %u unchanged\n",
		"last changes", j->last_added, j->last_removed, j->last_updated, j->last_rekeyed,
		j->last_unchanged);
	fprintf(f, "  %-16s %u\n", "tunnels", j->n_tunnels);
	fprintf(f, "  %-16s ", "config");
	text_str(f, j->config_path[0] ? j->config_path : "-", sizeof(j->config_path));
	fprintf(f, "\n  %-16s ", "last error");
	text_str(f, j->last_error[0] ? j->last_error : "-", sizeof(j->last_error));
	if (j->writer_pid > 0)
		fprintf(f, "\n  %-16s natt-control pid %d\n", "writer", j->writer_pid);
	else
		fprintf(f, "\n  %-16s none\n", "writer");
}

static void
text_stats(const struct show *s)
{
	struct natt_stats_hdr *h = s->st;
	struct natt_worker_stats sum;
	char b1[64], b2[32];
	FILE *f = s->out;
	uint32_t active = 0;

	natt_stats_sum(h, &sum);
	for (uint32_t w = 0; w < h->n_workers; w++)
		active += natt_stats_worker(h, w)->active != 0;
	fprintf(f, "natt-dataplane up %s, since %s\n",
		fmt_dur(b2, sizeof(b2), tsc_ago(&s->clk, h->start_tsc)),
		fmt_time(b1, sizeof(b1), h->start_unix_ns));
	fprintf(f, "  %u worker(s) (%u active), %u port(s), max_tunnels %u, %u tunnel(s) live,"
		" generation %" PRIu64 " applied by every worker\n", h->n_workers, active,
		h->n_ports, h->max_tunnels, tunnels_live(h), workers_generation(h));
	fprintf(f, "counters (all workers):\n");
	for (unsigned int i = 0; i < NATT_CNT_MAX; i++)
		fprintf(f, "  %-22s %20" PRIu64 "\n", natt_counter_name(i), sum.counters[i]);
	fprintf(f, "  %-22s %20" PRIu64 "  (see show drops)\n", "drops", drops_total(&sum));
	fprintf(f, "ports:\n  %4s  %-24s  %14s  %16s  %14s  %16s\n", "PORT", "NAME", "RX_PKTS",
		"RX_BYTES", "TX_PKTS", "TX_BYTES");
	for (uint32_t p = 0; p < h->n_ports; p++) {
		char name[NATT_NAME_LEN];

		fprintf(f, "  %4u  %-24s  %14" PRIu64 "  %16" PRIu64 "  %14" PRIu64 "  %16" PRIu64
			"\n", p, fmt_name(name, h->port_names[p], NATT_NAME_LEN - 1),
			sum.port[p].rx_packets, sum.port[p].rx_bytes, sum.port[p].tx_packets,
			sum.port[p].tx_bytes);
	}
	fprintf(f, "exception path and next hops:\n");
	for (uint32_t p = 0; p < h->n_ports; p++)
		text_port_path(f, s, p);
	fprintf(f, "workers:\n  %3s  %6s  %6s  %14s  %14s  %14s  %14s  %12s  %12s  %8s\n", "W",
		"ACTIVE", "GEN", "RX_PKTS", "TX_PKTS", "DECRYPTED", "ENCRYPTED", "DROPS",
		"HANDOFF_IN", "LAST_RX");
	for (uint32_t w = 0; w < h->n_workers; w++) {
		const struct natt_worker_stats *ws = natt_stats_worker(h, w);

		fprintf(f, "  %3u  %6s  %6" PRIu64 "  %14" PRIu64 "  %14" PRIu64 "  %14" PRIu64
			"  %14" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "  %8s\n", w,
			ws->active ? "yes" : "no", ws->generation, ws->counters[NATT_CNT_RX],
			ws->counters[NATT_CNT_TX], ws->counters[NATT_CNT_DECRYPTED],
			ws->counters[NATT_CNT_ENCRYPTED], drops_total(ws),
			ws->counters[NATT_CNT_HANDOFF_IN],
			fmt_tsc_ago(b2, sizeof(b2), &s->clk, ws->last_rx_tsc));
	}
	text_reload(s);
}

static void
json_counters(FILE *f, const struct natt_worker_stats *ws)
{
	fprintf(f, "\"counters\": {");
	for (unsigned int i = 0; i < NATT_CNT_MAX; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", natt_counter_name(i),
			ws->counters[i]);
	fprintf(f, "}, \"drops\": {");
	for (unsigned int i = 0; i < NATT_DROP_MAX; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", natt_drop_name(i), ws->drops[i]);
	fprintf(f, "}");
}

static void
json_reload(const struct show *s)
{
	const struct natt_journal_hdr *j = s->j;
	FILE *f = s->out;

	if (j == NULL) {
		fprintf(f, "null");
		return;
	}
	fprintf(f, "{\"generation\": %u, \"reloads_ok\": %" PRIu64 ", \"reloads_failed\": %"
		PRIu64 ", \"last_status\": \"%s\"", j->generation, j->reloads_ok,
		j->reloads_failed, natt_reload_status_name(j->last_status));
	json_unix(f, "last_attempt_unix", j->last_attempt_ns);
	json_unix(f, "last_ok_unix", j->last_ok_ns);
	fprintf(f, ", \"last_parse_ms\": %.3f, \"last_apply_ms\": %.3f, \"tunnels\": %u,"
		" \"last_added\": %u, \"last_removed\": %u, \"last_updated\": %u,"
		" \"last_rekeyed\": %u, \"last_unchanged\": %u, \"config_path\": ",
		j->last_parse_us / 1e3, j->last_apply_us / 1e3, j->n_tunnels, j->last_added,
		j->last_removed, j->last_updated, j->last_rekeyed, j->last_unchanged);
	json_str(f, j->config_path, sizeof(j->config_path));
	fprintf(f, ", \"last_error\": ");
	json_str(f, j->last_error, sizeof(j->last_error));
	fprintf(f, ", \"writer_pid\": %d}", j->writer_pid > 0 ? j->writer_pid : 0);
}

static void
json_stats(const struct show *s)
{
	struct natt_stats_hdr *h = s->st;
	struct natt_worker_stats sum;
	FILE *f = s->out;

	natt_stats_sum(h, &sum);
	fprintf(f, "{\"version\": %u, \"uptime_s\": %.3f", h->version,
		tsc_ago(&s->clk, h->start_tsc));
	json_unix(f, "start_unix", h->start_unix_ns);
	fprintf(f, ", \"workers\": %u, \"n_ports\": %u, \"n_eth_ports\": %u, \"max_tunnels\": %u,"
		" \"tunnels_live\": %u, \"generation\": %" PRIu64 ",\n ", h->n_workers,
		h->n_ports, h->n_eth_ports, h->max_tunnels, tunnels_live(h), workers_generation(h));
	json_counters(f, &sum);
	fprintf(f, ",\n \"ports\": [");
	for (uint32_t p = 0; p < h->n_ports; p++) {
		fprintf(f, "%s\n  {\"port\": %u, \"name\": ", p ? "," : "", p);
		json_str(f, h->port_names[p], NATT_NAME_LEN);
		fprintf(f, ", \"rx_packets\": %" PRIu64 ", \"rx_bytes\": %" PRIu64 ", \"tx_packets\": %"
			PRIu64 ", \"tx_bytes\": %" PRIu64, sum.port[p].rx_packets,
			sum.port[p].rx_bytes, sum.port[p].tx_packets, sum.port[p].tx_bytes);
		json_port_path(f, s, p);
		fprintf(f, "}");
	}
	fprintf(f, "],\n \"per_worker\": [");
	for (uint32_t w = 0; w < h->n_workers; w++) {
		const struct natt_worker_stats *ws = natt_stats_worker(h, w);

		fprintf(f, "%s\n  {\"worker\": %u, \"active\": %s, \"generation\": %" PRIu64,
			w ? "," : "", w, ws->active ? "true" : "false", ws->generation);
		json_unix(f, "last_rx_unix", tsc_ns(&s->clk, ws->last_rx_tsc));
		fprintf(f, ", ");
		json_counters(f, ws);
		fprintf(f, "}");
	}
	fprintf(f, "],\n \"reload\": ");
	json_reload(s);
	fprintf(f, "}\n");
}

/* ---- show drops ---- */

static void
text_drops(const struct show *s)
{
	struct natt_stats_hdr *h = s->st;
	struct natt_worker_stats sum;
	uint64_t errors = 0, consumed = 0;
	FILE *f = s->out;

	natt_stats_sum(h, &sum);
	fprintf(f, "%-14s %16s  %s\n", "REASON", "TOTAL", "MEANING");
	for (unsigned int r = 0; r < NATT_DROP_MAX; r++) {
		bool err = NATT_DROP_IS_ERROR(r);

		fprintf(f, "%-13s%c %16" PRIu64 "  %s\n", natt_drop_name(r), err ? ' ' : '*',
			sum.drops[r], natt_drop_help(r));
		*(err ? &errors : &consumed) += sum.drops[r];
	}
	fprintf(f, "%" PRIu64 " dropped as errors, %" PRIu64 " consumed (*: not an error)\n",
		errors, consumed);
	fprintf(f, "per worker (non-zero reasons):\n");
	for (uint32_t w = 0; w < h->n_workers; w++) {
		const struct natt_worker_stats *ws = natt_stats_worker(h, w);
		bool any = false;

		fprintf(f, "  worker %u:", w);
		for (unsigned int r = 0; r < NATT_DROP_MAX; r++)
			if (ws->drops[r]) {
				fprintf(f, " %s=%" PRIu64, natt_drop_name(r), ws->drops[r]);
				any = true;
			}
		fprintf(f, "%s\n", any ? "" : " -");
	}
}

static void
json_drops(const struct show *s)
{
	struct natt_stats_hdr *h = s->st;
	struct natt_worker_stats sum;
	uint64_t errors = 0, consumed = 0;
	FILE *f = s->out;

	natt_stats_sum(h, &sum);
	fprintf(f, "{\"drops\": {");
	for (unsigned int r = 0; r < NATT_DROP_MAX; r++) {
		fprintf(f, "%s\"%s\": %" PRIu64, r ? ", " : "", natt_drop_name(r), sum.drops[r]);
		*(NATT_DROP_IS_ERROR(r) ? &errors : &consumed) += sum.drops[r];
	}
	fprintf(f, "},\n \"errors\": %" PRIu64 ", \"consumed\": %" PRIu64 ", \"not_errors\": [",
		errors, consumed);
	for (unsigned int r = 0, n = 0; r < NATT_DROP_MAX; r++)
		if (!NATT_DROP_IS_ERROR(r))
			fprintf(f, "%s\"%s\"", n++ ? ", " : "", natt_drop_name(r));
	fprintf(f, "],\n \"per_worker\": [");
	for (uint32_t w = 0; w < h->n_workers; w++) {
		const struct natt_worker_stats *ws = natt_stats_worker(h, w);

		fprintf(f, "%s\n  {\"worker\": %u, \"drops\": {", w ? "," : "", w);
		for (unsigned int r = 0; r < NATT_DROP_MAX; r++)
			fprintf(f, "%s\"%s\": %" PRIu64, r ? ", " : "", natt_drop_name(r),
				ws->drops[r]);
		fprintf(f, "}}");
	}
	fprintf(f, "]}\n");
}

/* ---- show events ---- */

/* What the event says, in words. */
static const char *
fmt_event(char *buf, size_t len, const struct natt_journal_event *e)
{
	char a[32], b[32];

	switch (e->type) {
	case NATT_EVT_NAT_MAPPING:
		snprintf(buf, len, "peer moved %s -> %s (%s)",
			 fmt_addr(a, sizeof(a), e->old_addr, e->old_port),
			 fmt_addr(b, sizeof(b), e->addr, e->port),
			 e->value & NATT_EVT_MAPPING_FOLLOWED ? "followed" : "pinned, not followed");
		break;
	case NATT_EVT_IDLE:
		snprintf(buf, len, "no inbound packet for %u s", e->value);
		break;
	case NATT_EVT_SA_EXPIRED:
		snprintf(buf, len, "rekey grace over, old inbound SA deleted");
		break;
	case NATT_EVT_SEQ_EXHAUSTED:
		snprintf(buf, len, "outbound sequence numbers used up: rekey needed");
		break;
	case NATT_JEVT_RELOAD_OK:
		snprintf(buf, len, "generation %u applied in %d ms", e->value, e->status);
		break;
	case NATT_JEVT_RELOAD_FAILED:
		snprintf(buf, len, "reload %s", natt_reload_status_name(e->value));
		break;
	case NATT_JEVT_CONTROL_START:
		snprintf(buf, len, "natt-control started, %u tunnel(s) in the journal", e->value);
		break;
	default:
		snprintf(buf, len, "value %u status %d%s%s", e->value, e->status,
			 e->status < 0 ? " " : "", e->status < 0 ? strerror(-e->status) : "");
		break;
	}
	return buf;
}

static void
text_event(FILE *f, uint64_t seq, const struct natt_journal_event *e)
{
	char t[40], tun[48], name[sizeof(e->name) + 1], spi[16], what[128];

	if (e->tunnel_id == UINT32_MAX)
		snprintf(tun, sizeof(tun), "-");
	else
		snprintf(tun, sizeof(tun), "%s (%u)", fmt_name(name, e->name, sizeof(e->name)),
			 e->tunnel_id);
	fprintf(f, "%8" PRIu64 "  %-24s  %-14s  %3u  %-30s  %-10s  %s\n", seq,
		fmt_time(t, sizeof(t), e->unix_ns), natt_event_name(e->type), e->worker, tun,
		fmt_spi(spi, sizeof(spi), e->spi), fmt_event(what, sizeof(what), e));
}

static void
json_event(FILE *f, uint64_t seq, const struct natt_journal_event *e)
{
	char what[128];

	fprintf(f, "{\"seq\": %" PRIu64, seq);
	json_unix(f, "time_unix", e->unix_ns);
	fprintf(f, ", \"type\": \"%s\", \"type_id\": %u, \"worker\": %u", natt_event_name(e->type),
		e->type, e->worker);
	if (e->tunnel_id == UINT32_MAX) {
		fprintf(f, ", \"tunnel_id\": null, \"tunnel\": null");
	} else {
		fprintf(f, ", \"tunnel_id\": %u, \"tunnel\": ", e->tunnel_id);
		json_str(f, e->name, sizeof(e->name));
	}
	json_spi(f, "spi", e->spi);
	json_addr(f, "addr", "port", e->addr, e->port);
	json_addr(f, "old_addr", "old_port", e->old_addr, e->old_port);
	fprintf(f, ", \"value\": %u, \"status\": %d, \"text\": ", e->value, e->status);
	json_str(f, fmt_event(what, sizeof(what), e), sizeof(what));
	fprintf(f, "}");
}

static int
show_events(const struct show *s, enum show_fmt fmt, FILE *err)
{
	struct natt_journal_event *buf;
	uint64_t first;
	uint32_t n;

	if (s->j == NULL) {
		fprintf(err, "natt-control: no usable journal: no events to show\n");
		return NATT_SHOW_NOATTACH;
	}
	buf = malloc(s->j->n_events * sizeof(*buf));
	if (buf == NULL) {
		fprintf(err, "natt-control: out of memory\n");
		return NATT_SHOW_NOATTACH;
	}
	n = events_snapshot(s->j, buf, &first);
	if (fmt == FMT_JSON) {
		fprintf(s->out, "{\"events\": [");
		for (uint32_t i = 0; i < n; i++) {
			fprintf(s->out, "%s\n  ", i ? "," : "");
			json_event(s->out, first + i, &buf[i]);
		}
		fprintf(s->out, "\n], \"first_seq\": %" PRIu64 ", \"next_seq\": %" PRIu64
			", \"capacity\": %u}\n", first, first + n, s->j->n_events);
	} else {
		fprintf(s->out, "%8s  %-24s  %-14s  %3s  %-30s  %-10s  %s\n", "SEQ", "TIME",
			"TYPE", "W", "TUNNEL (ID)", "SPI", "WHAT");
		for (uint32_t i = 0; i < n; i++)
			text_event(s->out, first + i, &buf[i]);
		fprintf(s->out, "%u event(s); %" PRIu64 " older one(s) overwritten\n", n, first);
	}
	free(buf);
	return NATT_SHOW_OK;
}

/* ---- diagnose: rules ---- */

/*
 * Each rule reads the numbers of one tunnel (struct natt_diag_in) and, when
 * the failure mode it knows applies, writes one sentence with the numbers
 * that point to it and returns its severity; otherwise NO_FINDING. The
 * modes are the field guide's (IPsec behind NAT): UDP/4500 blocked or NAT-T
 * not negotiated, key mismatch, NAT mapping timeout without keepalives,
 * mapping moves, MTU, selectors, one-way routing. Text is ASCII (" - ",
 * "->"): it goes into JSON strings and terminals alike.
 */
#define NO_FINDING (-1)

typedef int (*diag_rule_fn)(const struct natt_diag_in *d, char *t, size_t n);

/* Did any ESP packet of this tunnel arrive, good or bad? */
static bool
diag_esp_seen(const struct natt_diag_in *d)
{
	return d->in_packets + d->auth_failed + d->replay + d->policy + d->bad_trailer > 0;
}

/* Inbound had traffic and then stopped: the dataplane says idle, or it was
 * silent longer than the idle threshold. */
static bool
diag_stopped(const struct natt_diag_in *d)
{
	return d->in_packets > 0 && (d->idle || d->in_ago > d->idle_after);
}

/* A count that loses the tunnel's only traffic is an error, beside good
 * traffic a warning. */
static int
diag_lossy(const struct natt_diag_in *d)
{
	return d->in_packets == 0 ? NATT_DIAG_ERROR : NATT_DIAG_WARNING;
}

/* "5m03s", or "never" for < 0. */
static const char *
diag_ago(char *buf, size_t len, double s)
{
	return s < 0 ? "never" : fmt_dur(buf, len, s);
}

static int
rule_not_installed(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->installed)
		return NO_FINDING;
	snprintf(t, n, "natt-control sent this tunnel but the dataplane does not hold it"
		 " (journal state dirty): a reload is in progress or failed - see `show stats`,"
		 " last error");
	return NATT_DIAG_ERROR;
}

static int
rule_auth_failed(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->auth_failed == 0)
		return NO_FINDING;
	snprintf(t, n, "%" PRIu64 " packets failed authentication - key/salt mismatch (check"
		 " the inbound key) or ESN mismatch; %" PRIu64 " authenticated", d->auth_failed,
		 d->in_packets);
	return diag_lossy(d);
}

static int
rule_no_esp(const struct natt_diag_in *d, char *t, size_t n)
{
	if (diag_esp_seen(d) || d->gw_ike + d->gw_exception == 0)
		return NO_FINDING;
	snprintf(t, n, "IKE seen on 500/4500 but no ESP on 4500 for this tunnel - UDP/4500"
		 " blocked, NAT-T not negotiated, or SPI/keys not installed (gateway-wide: ike %"
		 PRIu64 ", exception_punted %" PRIu64 ")", d->gw_ike, d->gw_exception);
	return NATT_DIAG_ERROR;
}

static int
rule_unknown_spi(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->in_packets > 0 || d->gw_no_sa == 0)
		return NO_FINDING;
	/* gateway-wide: the packets may belong to another peer */
	snprintf(t, n, "packets with unknown SPI arrive (no_sa %" PRIu64 "): peer uses an SPI"
		 " not configured - compare its outbound SPI with inbound.spi 0x%08x",
		 d->gw_no_sa, d->in_spi);
	return NATT_DIAG_WARNING;
}

static int
rule_nat_expired(const struct natt_diag_in *d, char *t, size_t n)
{
	char a[32];

	if (!diag_stopped(d) || d->keepalives != 0 || d->keepalive_s != 0)
		return NO_FINDING;
	snprintf(t, n, "traffic stopped after %s idle (last of %" PRIu64 " packets) - NAT"
		 " mapping likely expired; no keepalives seen from the peer and none sent by us:"
		 " set keepalive = 20 (below the NAT's UDP timeout)",
		 diag_ago(a, sizeof(a), d->in_ago), d->in_packets);
	return NATT_DIAG_ERROR;
}

/* The peer keeps its NAT mapping alive with keepalives: the stopped traffic
 * of rule_traffic_stopped is then only a quiet peer. */
static bool
diag_keepalive_fresh(const struct natt_diag_in *d)
{
	return d->keepalive_ago >= 0 && d->keepalive_ago < d->idle_after;
}

static int
rule_idle_alive(const struct natt_diag_in *d, char *t, size_t n)
{
	char a[32], k[32];

	if (!diag_stopped(d) || !diag_keepalive_fresh(d))
		return NO_FINDING;
	snprintf(t, n, "no traffic for %s, but the peer's keepalives still arrive (%" PRIu64
		 ", last %s ago): the NAT mapping is alive, the peer has nothing to send",
		 diag_ago(a, sizeof(a), d->in_ago), d->keepalives,
		 diag_ago(k, sizeof(k), d->keepalive_ago));
	return NATT_DIAG_INFO;
}

static int
rule_traffic_stopped(const struct natt_diag_in *d, char *t, size_t n)
{
	char a[32], k[32];

	/* no keepalives either way is rule_nat_expired's case */
	if (!diag_stopped(d) || diag_keepalive_fresh(d) ||
	    (d->keepalives == 0 && d->keepalive_s == 0))
		return NO_FINDING;
	snprintf(t, n, "traffic stopped after %s idle (last of %" PRIu64 " packets); last"
		 " keepalive from the peer %s%s, %" PRIu64 " sent by us - the peer or its NAT"
		 " went away", diag_ago(a, sizeof(a), d->in_ago), d->in_packets,
		 diag_ago(k, sizeof(k), d->keepalive_ago), d->keepalive_ago < 0 ? "" : " ago",
		 d->keepalives_sent);
	return NATT_DIAG_ERROR;
}

static int
rule_keepalive_long(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->keepalive_s <= 20)
		return NO_FINDING;
	snprintf(t, n, "keepalive interval %u s may be longer than the NAT's UDP timeout (often"
		 " 30 s)", d->keepalive_s);
	return diag_stopped(d) ? NATT_DIAG_WARNING : NATT_DIAG_INFO;
}

static int
rule_pinned_moved(const struct natt_diag_in *d, char *t, size_t n)
{
	char seen[32], cur[32];

	if (!d->pinned || d->pin_ignored == 0)
		return NO_FINDING;
	snprintf(t, n, "peer now sends from %s but the tunnel is pinned to %s: replies go to the"
		 " old mapping - use nat_mapping_change = \"follow\" or fix remote/remote_port"
		 " (%u changes not followed)",
		 fmt_addr(seen, sizeof(seen), d->seen_addr, d->seen_port),
		 fmt_addr(cur, sizeof(cur), d->remote_addr, d->remote_port), d->pin_ignored);
	return NATT_DIAG_ERROR;
}

static int
rule_mapping_moved(const struct natt_diag_in *d, char *t, size_t n)
{
	char a[32], b[32], when[40];

	if (d->pinned || d->mapping_changes == 0)
		return NO_FINDING;
	snprintf(t, n, "peer's NAT mapping moved %u times (last: %s -> %s at %s) - outbound"
		 " follows", d->mapping_changes,
		 fmt_addr(a, sizeof(a), d->prev_addr, d->prev_port),
		 fmt_addr(b, sizeof(b), d->remote_addr, d->remote_port),
		 fmt_time(when, sizeof(when), d->mapping_unix_ns));
	/* now and then is a NAT rebinding; often is a NAT pool or CGNAT */
	return d->mapping_changes >= 10 ? NATT_DIAG_WARNING : NATT_DIAG_INFO;
}

static int
rule_oversize(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->too_big == 0 && d->fragmented == 0)
		return NO_FINDING;
	snprintf(t, n, "oversize inner packets: %" PRIu64 " dropped with DF (ICMP frag-needed"
		 " sent), %" PRIu64 " fragmented - MTU/MSS: lower the inner MTU or clamp MSS"
		 " (dataplane.mss_clamp)", d->too_big, d->fragmented);
	return NATT_DIAG_WARNING;
}

static int
rule_replay(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->replay == 0)
		return NO_FINDING;
	snprintf(t, n, "%" PRIu64 " replayed/out-of-window packets - duplicate traffic, a peer"
		 " restarted its sequence numbers without rekey, or reordering wider than"
		 " replay_window", d->replay);
	return NATT_DIAG_WARNING;
}

static int
rule_policy(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->policy == 0)
		return NO_FINDING;
	snprintf(t, n, "%" PRIu64 " inner packets outside remote_ts - traffic selector mismatch",
		 d->policy);
	return diag_lossy(d);
}

static int
rule_bad_trailer(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->bad_trailer == 0)
		return NO_FINDING;
	snprintf(t, n, "%" PRIu64 " decrypted but malformed inner packets - peer bug or wrong"
		 " algorithm", d->bad_trailer);
	return diag_lossy(d);
}

static int
rule_no_return(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->in_packets == 0 || d->out_packets != 0)
		return NO_FINDING;
	snprintf(t, n, "traffic from the peer arrives (%" PRIu64 " packets) but nothing is sent"
		 " back - routing on the inside (no_route drops %" PRIu64 ") or local_ts",
		 d->in_packets, d->gw_no_route);
	return NATT_DIAG_ERROR;
}

static int
rule_no_inbound(const struct natt_diag_in *d, char *t, size_t n)
{
	if (d->out_packets == 0 || diag_esp_seen(d))
		return NO_FINDING;
	snprintf(t, n, "we send (%" PRIu64 " packets) but never receive - return path/NAT/"
		 "firewall drops UDP/4500 towards us, or the peer cannot decrypt (key mismatch on"
		 " its side)", d->out_packets);
	return NATT_DIAG_ERROR;
}

static int
rule_no_traffic(const struct natt_diag_in *d, char *t, size_t n)
{
	char a[32];

	if (diag_esp_seen(d) || d->out_packets || d->gw_ike + d->gw_exception + d->gw_no_sa)
		return NO_FINDING;
	snprintf(t, n, "no traffic in either direction since the tunnel was installed %s ago,"
		 " and no IKE reached the gateway - the peer is down, or nothing reaches UDP/500"
		 " and 4500 here", diag_ago(a, sizeof(a), d->created_ago));
	return NATT_DIAG_WARNING;
}

static int
rule_healthy(const struct natt_diag_in *d, char *t, size_t n)
{
	char a[32], b[32];

	if (d->in_packets == 0 || d->out_packets == 0 || diag_stopped(d))
		return NO_FINDING;
	snprintf(t, n, "healthy: in %" PRIu64 " pkts (last %s ago), out %" PRIu64 " pkts (last %s"
		 " ago)", d->in_packets, diag_ago(a, sizeof(a), d->in_ago), d->out_packets,
		 diag_ago(b, sizeof(b), d->out_ago));
	return NATT_DIAG_INFO;
}

/* In the order of the playbook: is it there, does ESP arrive and
 * authenticate, does it keep flowing, does the mapping hold, then sizes
 * and selectors, then each direction. A rule marked final, when it
 * applies, is the whole story. */
static const struct diag_rule {
	const char *code;
	const char *summary;
	diag_rule_fn fn;
	bool final;
} diag_rules[] = {
	{ "not_installed", "not installed in the dataplane", rule_not_installed, true },
	{ "auth_failed", "inbound packets fail authentication", rule_auth_failed, false },
	{ "no_esp", "IKE but no ESP for the tunnel", rule_no_esp, false },
	{ "unknown_spi", "ESP with an unknown SPI arrives", rule_unknown_spi, false },
	{ "nat_expired", "NAT mapping expired, no keepalives", rule_nat_expired, false },
	{ "traffic_stopped", "inbound traffic stopped", rule_traffic_stopped, false },
	{ "idle_alive", "idle, NAT mapping kept alive", rule_idle_alive, false },
	{ "keepalive_long", "keepalive interval too long", rule_keepalive_long, false },
	{ "pinned_moved", "pinned to an old NAT mapping", rule_pinned_moved, false },
	{ "mapping_moved", "the peer's NAT mapping moves", rule_mapping_moved, false },
	{ "oversize", "inner packets too big for the path", rule_oversize, false },
	{ "replay", "replayed packets", rule_replay, false },
	{ "policy", "traffic selector mismatch", rule_policy, false },
	{ "bad_trailer", "malformed decrypted packets", rule_bad_trailer, false },
	{ "no_return", "nothing sent back to the peer", rule_no_return, false },
	{ "no_inbound", "nothing received from the peer", rule_no_inbound, false },
	{ "no_traffic", "no traffic yet", rule_no_traffic, false },
	{ "healthy", "traffic flows both ways", rule_healthy, false },
};

_Static_assert(RTE_DIM(diag_rules) <= NATT_DIAG_MAX, "NATT_DIAG_MAX holds every finding");

/* Every rule's finding into out (room for one per rule), sorted. */
static unsigned int
diag_all(const struct natt_diag_in *in, struct natt_diag_finding *out)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < RTE_DIM(diag_rules); i++) {
		const struct diag_rule *r = &diag_rules[i];
		struct natt_diag_finding f = { .code = r->code, .summary = r->summary };
		int sev = r->fn(in, f.text, sizeof(f.text));
		unsigned int k;

		if (sev == NO_FINDING)
			continue;
		f.sev = (enum natt_diag_sev)sev;
		/* insert after every finding at least as severe: stable */
		for (k = n; k > 0 && out[k - 1].sev > f.sev; k--)
			out[k] = out[k - 1];
		out[k] = f;
		n++;
		if (r->final)
			break;
	}
	return n;
}

unsigned int
natt_diag_eval(const struct natt_diag_in *in, struct natt_diag_finding *out, unsigned int max)
{
	struct natt_diag_finding all[RTE_DIM(diag_rules)];
	unsigned int n = diag_all(in, all);

	/* cut after sorting: a short out keeps the most severe */
	n = RTE_MIN(n, max);
	memcpy(out, all, n * sizeof(*out));
	return n;
}

const char *
natt_diag_sev_name(enum natt_diag_sev s)
{
	static const char *const names[] = {
		[NATT_DIAG_ERROR] = "error", [NATT_DIAG_WARNING] = "warning",
		[NATT_DIAG_INFO] = "info",
	};
	return (unsigned int)s < RTE_DIM(names) ? names[s] : "?";
}

const char *
natt_diag_verdict(const struct natt_diag_finding *f, unsigned int n, char *buf, size_t len)
{
	static const char *const level[] = {
		[NATT_DIAG_ERROR] = "broken", [NATT_DIAG_WARNING] = "degraded",
		[NATT_DIAG_INFO] = "ok",
	};
	const struct natt_diag_finding *head = f;
	unsigned int more = 0;

	if (n == 0) {
		snprintf(buf, len, "nothing to report");
		return buf;
	}

	for (unsigned int i = 1; i < n; i++) {
		more += f[i].sev != NATT_DIAG_INFO;
		/* nothing wrong: say it flows rather than the first remark */
		if (head->sev == NATT_DIAG_INFO && strcmp(f[i].code, "healthy") == 0)
			head = &f[i];
	}
	snprintf(buf, len, "%s - %s", level[head->sev], head->summary);
	if (more)
		snprintf(buf + strlen(buf), len - strlen(buf), " (+%u more problem%s)", more,
			 more > 1 ? "s" : "");
	return buf;
}

/* ---- diagnose: reading the memzones ---- */

/* Seconds since TSC value t, -1 for never. */
static double
diag_tsc_ago(const struct show_clock *c, uint64_t t)
{
	return t ? tsc_ago(c, t) : -1.0;
}

/*
 * How long a silence means "stopped": the dataplane's idle_timeout as the
 * workers applied it; if it is off, the smallest silence an idle event in
 * the log reported (one from an earlier configuration), else
 * DIAG_IDLE_DEFAULT_S.
 */
#define DIAG_IDLE_DEFAULT_S 60.0

static double
diag_idle_after(const struct show *s)
{
	struct natt_journal_event *buf;
	uint32_t n, best = UINT32_MAX;
	uint64_t first;

	if (natt_stats_worker(s->st, 0)->idle_timeout_s != 0)
		return (double)natt_stats_worker(s->st, 0)->idle_timeout_s;
	if (s->j == NULL || (buf = malloc(s->j->n_events * sizeof(*buf))) == NULL)
		return DIAG_IDLE_DEFAULT_S;
	n = events_snapshot(s->j, buf, &first);
	for (uint32_t i = 0; i < n; i++)
		if (buf[i].type == NATT_EVT_IDLE && buf[i].value > 0 && buf[i].value < best)
			best = buf[i].value;
	free(buf);
	return best == UINT32_MAX ? DIAG_IDLE_DEFAULT_S : (double)best;
}

/* The tunnel's side of natt_diag_in. */
static void
diag_from_tunnel(const struct show_clock *c, const struct natt_tunnel_stats *t,
		 struct natt_diag_in *d)
{
	d->installed = t->in_spi != 0 || t->out_spi != 0;
	d->pinned = t->pinned != 0;
	d->idle = t->idle != 0;
	d->keepalive_s = t->keepalive_s;
	d->in_spi = t->in_spi;
	d->mapping_changes = t->mapping_changes;
	d->pin_ignored = t->pin_ignored;
	d->in_packets = t->in_packets;
	d->out_packets = t->out_packets;
	d->auth_failed = t->auth_failed;
	d->replay = t->replay;
	d->policy = t->policy;
	d->bad_trailer = t->bad_trailer;
	d->too_big = t->too_big;
	d->fragmented = t->fragmented;
	d->keepalives = t->keepalives;
	d->keepalives_sent = t->keepalives_sent;
	d->in_ago = diag_tsc_ago(c, t->last_seen_tsc);
	d->out_ago = diag_tsc_ago(c, t->last_out_tsc);
	d->keepalive_ago = diag_tsc_ago(c, t->last_keepalive_tsc);
	d->created_ago = diag_tsc_ago(c, t->created_tsc);
	d->mapping_unix_ns = tsc_ns(c, t->last_mapping_tsc);
	d->remote_addr = t->remote_addr;
	d->remote_port = t->remote_port;
	d->prev_addr = t->prev_remote_addr;
	d->prev_port = t->prev_remote_port;
	d->seen_addr = t->seen_addr;
	d->seen_port = t->seen_port;
}

/* Everything `diagnose` reasons over, for tunnel t (all zero: not installed). */
static void
diag_collect(const struct show *s, const struct natt_tunnel_stats *t, struct natt_diag_in *d)
{
	struct natt_worker_stats sum;

	memset(d, 0, sizeof(*d));
	diag_from_tunnel(&s->clk, t, d);
	d->idle_after = diag_idle_after(s);
	natt_stats_sum(s->st, &sum);
	d->gw_ike = sum.drops[NATT_DROP_IKE];
	d->gw_exception = sum.counters[NATT_CNT_EXCEPTION];
	d->gw_no_sa = sum.drops[NATT_DROP_NO_SA];
	d->gw_no_route = sum.drops[NATT_DROP_NO_ROUTE];
}

static void
diag_print(const struct show *s, const char *name, uint32_t id, enum show_fmt fmt,
	   const struct natt_diag_finding *f, unsigned int n)
{
	char verdict[160], nbuf[NATT_NAME_LEN];
	FILE *o = s->out;

	natt_diag_verdict(f, n, verdict, sizeof(verdict));
	if (fmt != FMT_JSON) {
		fprintf(o, "diagnose tunnel %s (id %u)\n", fmt_name(nbuf, name, NATT_NAME_LEN - 1),
			id);
		for (unsigned int i = 0; i < n; i++)
			fprintf(o, "  %-7s  %s [%s]\n", natt_diag_sev_name(f[i].sev), f[i].text,
				f[i].code);
		fprintf(o, "verdict: %s\n", verdict);
		return;
	}
	fprintf(o, "{\"tunnel\": ");
	json_str(o, name, NATT_NAME_LEN - 1);
	fprintf(o, ", \"id\": %u, \"findings\": [", id);
	for (unsigned int i = 0; i < n; i++) {
		fprintf(o, "%s\n  {\"severity\": \"%s\", \"code\": \"%s\", \"text\": ",
			i ? "," : "", natt_diag_sev_name(f[i].sev), f[i].code);
		json_str(o, f[i].text, sizeof(f[i].text));
		fprintf(o, "}");
	}
	fprintf(o, "],\n \"verdict\": ");
	json_str(o, verdict, sizeof(verdict));
	fprintf(o, "}\n");
}

static int
show_diagnose(const struct show *s, const char *name, enum show_fmt fmt, FILE *err)
{
	struct natt_diag_finding f[NATT_DIAG_MAX];
	struct natt_journal_tunnel jbuf;
	struct natt_tunnel_stats t;
	struct natt_diag_in d;
	uint32_t id;

	if (!tunnel_find(s, name, &id, &t)) {
		/* sent by natt-control, not held by the dataplane: rule not_installed */
		memset(&t, 0, sizeof(t));
		if (journal_find(s, name, &id, &jbuf) == NULL) {
			fprintf(err, "natt-control: no tunnel named \"%s\"\n", name);
			return NATT_SHOW_USAGE;
		}
	}
	diag_collect(s, &t, &d);
	diag_print(s, name, id, fmt, f, natt_diag_eval(&d, f, RTE_DIM(f)));
	return NATT_SHOW_OK;
}

/* ---- Prometheus text exposition format 0.0.4 ---- */

static void
prom_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	for (; *help; help++) {
		if (*help == '\\')
			fputs("\\\\", f);
		else if (*help == '\n')
			fputs("\\n", f);
		else
			putc(*help, f);
	}
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* A label value from shared memory: escaped, ASCII only (valid UTF-8). */
static void
prom_label(FILE *f, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\' || c == '"')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else
			putc(c >= 0x20 && c < 0x7f ? c : '?', f);
	}
}

static void
prom_gauge(FILE *f, const char *name, const char *help, double v)
{
	prom_head(f, name, "gauge", help);
	fprintf(f, "%s %.17g\n", name, v);
}

static void
prom_u64(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	prom_head(f, name, type, help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void
prom_reload(FILE *f, const struct natt_journal_hdr *j)
{
	static const char *const kinds[] = { "added", "removed", "updated", "rekeyed",
					     "unchanged" };
	const uint32_t vals[] = { j->last_added, j->last_removed, j->last_updated,
				  j->last_rekeyed, j->last_unchanged };

	prom_head(f, "natt_config_reloads_total", "counter",
		  "Configuration reload attempts by natt-control, by result");
	fprintf(f, "natt_config_reloads_total{result=\"ok\"} %" PRIu64 "\n"
		"natt_config_reloads_total{result=\"failed\"} %" PRIu64 "\n", j->reloads_ok,
		j->reloads_failed);
	prom_u64(f, "natt_config_last_reload_success", "gauge",
		 "1 if the last reload attempt applied, else 0 (also before the first attempt)",
		 j->last_status == NATT_RELOAD_OK);
	prom_head(f, "natt_config_last_reload_status", "gauge",
		  "1 for the outcome of the last reload attempt");
	for (unsigned int st = NATT_RELOAD_NONE; st <= NATT_RELOAD_TIMEOUT; st++)
		fprintf(f, "natt_config_last_reload_status{status=\"%s\"} %d\n",
			natt_reload_status_name(st), j->last_status == st);
	prom_gauge(f, "natt_config_last_reload_timestamp_seconds",
		   "Unix time of the last reload attempt, 0 = none", j->last_attempt_ns / 1e9);
	prom_gauge(f, "natt_config_last_reload_success_timestamp_seconds",
		   "Unix time of the last reload that applied, 0 = none", j->last_ok_ns / 1e9);
	prom_u64(f, "natt_config_generation", "gauge",
		 "Last configuration generation natt-control saw every worker apply",
		 j->generation);
	prom_gauge(f, "natt_config_last_parse_seconds",
		   "Time the last reload spent reading and validating the file",
		   j->last_parse_us / 1e6);
	prom_gauge(f, "natt_config_last_apply_seconds",
		   "Time from the last reload's first message to the last worker's ack",
		   j->last_apply_us / 1e6);
	prom_head(f, "natt_config_last_reload_tunnels", "gauge",
		  "Tunnels the last applied reload added, removed, updated, rekeyed, left alone");
	for (unsigned int i = 0; i < RTE_DIM(kinds); i++)
		fprintf(f, "natt_config_last_reload_tunnels{change=\"%s\"} %u\n", kinds[i], vals[i]);
	prom_u64(f, "natt_config_tunnels", "gauge",
		 "Tunnels live after the last applied reload (journal)", j->n_tunnels);
}

enum tunnel_metric {
	TM_IN_PACKETS, TM_IN_BYTES, TM_OUT_PACKETS, TM_OUT_BYTES, TM_DROPS, TM_LAST_IN,
	TM_LAST_OUT, TM_IDLE, TM_MAPPING, TM_KEEPALIVES, TM_KEEPALIVES_SENT, TM_FRAGMENTED,
	TM_PIN_IGNORED, TM_MAX
};

/* natt_tunnel_drops_total: the tunnel's own drop counters. bad_trailer is
 * the tunnel's share of bad_padding and bad_inner (counted as one). */
static void
prom_tunnel_drops(FILE *f, const char *metric, const struct natt_tunnel_stats *t, uint32_t id)
{
	const struct { const char *reason; uint64_t v; } r[] = {
		{ natt_drop_name(NATT_DROP_AUTH_FAILED), t->auth_failed },
		{ natt_drop_name(NATT_DROP_REPLAY), t->replay },
		{ natt_drop_name(NATT_DROP_POLICY), t->policy },
		{ natt_drop_name(NATT_DROP_TOO_BIG), t->too_big },
		{ "bad_trailer", t->bad_trailer },
	};

	for (unsigned int i = 0; i < RTE_DIM(r); i++) {
		fprintf(f, "%s{tunnel=\"", metric);
		prom_label(f, t->name, NATT_NAME_LEN - 1);
		fprintf(f, "\",id=\"%u\",reason=\"%s\"} %" PRIu64 "\n", id, r[i].reason, r[i].v);
	}
}

/* The value of per-tunnel metric k (not TM_DROPS) for t. */
static void
prom_tunnel_value(FILE *f, const struct show *s, unsigned int k, const struct natt_tunnel_stats *t)
{
	switch (k) {
	case TM_IN_PACKETS: fprintf(f, "%" PRIu64 "\n", t->in_packets); break;
	case TM_IN_BYTES: fprintf(f, "%" PRIu64 "\n", t->in_bytes); break;
	case TM_OUT_PACKETS: fprintf(f, "%" PRIu64 "\n", t->out_packets); break;
	case TM_OUT_BYTES: fprintf(f, "%" PRIu64 "\n", t->out_bytes); break;
	case TM_LAST_IN: fprintf(f, "%.3f\n", tsc_ns(&s->clk, t->last_seen_tsc) / 1e9); break;
	case TM_LAST_OUT: fprintf(f, "%.3f\n", tsc_ns(&s->clk, t->last_out_tsc) / 1e9); break;
	case TM_IDLE: fprintf(f, "%u\n", t->idle != 0); break;
	case TM_MAPPING: fprintf(f, "%u\n", t->mapping_changes); break;
	case TM_KEEPALIVES: fprintf(f, "%" PRIu64 "\n", t->keepalives); break;
	case TM_KEEPALIVES_SENT: fprintf(f, "%" PRIu64 "\n", t->keepalives_sent); break;
	case TM_FRAGMENTED: fprintf(f, "%" PRIu64 "\n", t->fragmented); break;
	default: fprintf(f, "%u\n", t->pin_ignored); break;
	}
}

static void
prom_tunnels(FILE *f, const struct show *s)
{
	static const struct { const char *name, *type, *help; } m[TM_MAX] = {
		[TM_IN_PACKETS] = { "natt_tunnel_in_packets_total", "counter",
				    "Inner packets delivered from the tunnel" },
		[TM_IN_BYTES] = { "natt_tunnel_in_bytes_total", "counter",
				  "Inner IPv4 bytes delivered from the tunnel" },
		[TM_OUT_PACKETS] = { "natt_tunnel_out_packets_total", "counter",
				     "Packets sealed into the tunnel" },
		[TM_OUT_BYTES] = { "natt_tunnel_out_bytes_total", "counter",
				   "Inner bytes sealed into the tunnel" },
		[TM_DROPS] = { "natt_tunnel_drops_total", "counter",
			       "Packets of the tunnel dropped, by reason" },
		[TM_LAST_IN] = { "natt_tunnel_last_inbound_timestamp_seconds", "gauge",
				 "Unix time of the last authenticated inbound packet, 0 = never" },
		[TM_LAST_OUT] = { "natt_tunnel_last_outbound_timestamp_seconds", "gauge",
				  "Unix time of the last packet sealed, 0 = never" },
		[TM_IDLE] = { "natt_tunnel_idle", "gauge", "1 while the tunnel is reported idle" },
		[TM_MAPPING] = { "natt_tunnel_nat_mapping_changes_total", "counter",
				 "Changes of the peer's NAT mapping" },
		[TM_KEEPALIVES] = { "natt_tunnel_keepalives_total", "counter",
				    "NAT keepalives received from the peer" },
		[TM_KEEPALIVES_SENT] = { "natt_tunnel_keepalives_sent_total", "counter",
					 "NAT keepalives sent to the peer (keepalive)" },
		[TM_FRAGMENTED] = { "natt_tunnel_fragmented_total", "counter",
				    "Inner packets cut into fragments before encryption" },
		[TM_PIN_IGNORED] = { "natt_tunnel_nat_mapping_ignored_total", "counter",
				     "NAT mapping changes not followed (nat_mapping_change pin)" },
	};
	struct natt_stats_hdr *h = s->st;
	struct natt_tunnel_stats t;

	/* a metric's samples must be consecutive: one pass per metric */
	for (unsigned int k = 0; k < TM_MAX; k++) {
		prom_head(f, m[k].name, m[k].type, m[k].help);
		for (uint32_t id = 0; id < h->max_tunnels; id++) {
			if (!tunnel_get(h, id, &t))
				continue;
			if (k == TM_DROPS) {
				prom_tunnel_drops(f, m[k].name, &t, id);
				continue;
			}
			fprintf(f, "%s{tunnel=\"", m[k].name);
			prom_label(f, t.name, NATT_NAME_LEN - 1);
			fprintf(f, "\",id=\"%u\"} ", id);
			prom_tunnel_value(f, s, k, &t);
		}
	}
}

/* Whether each ARP-resolved next hop is known (static MACs are not listed). */
static void
prom_neigh(FILE *f, const struct show *s)
{
	prom_head(f, "natt_port_next_hop_resolved", "gauge",
		  "1 once the port's next hop (interface next_hop) is resolved by ARP");
	for (uint32_t p = 0; p < s->st->n_ports; p++) {
		struct natt_neigh n = port_neigh(s->st, p);

		if (n.ip == 0)
			continue;
		fprintf(f, "natt_port_next_hop_resolved{port=\"%u\",device=\"", p);
		prom_label(f, s->st->port_names[p], NATT_NAME_LEN);
		fprintf(f, "\"} %u\n", (n.mac & NATT_NEIGH_VALID) != 0);
	}
}

static void
prom_write(FILE *f, const struct show *s, bool tunnels)
{
	struct natt_stats_hdr *h = s->st;
	static const char *const port_m[] = { "rx_packets", "rx_bytes", "tx_packets", "tx_bytes" };
	struct natt_worker_stats sum;
	char name[96], help[160];

	natt_stats_sum(h, &sum);
	prom_gauge(f, "natt_start_time_seconds", "Unix time natt-dataplane started",
		   h->start_unix_ns / 1e9);
	prom_gauge(f, "natt_uptime_seconds", "Seconds since natt-dataplane started",
		   tsc_ago(&s->clk, h->start_tsc));
	prom_u64(f, "natt_workers", "gauge", "Worker lcores", h->n_workers);
	prom_u64(f, "natt_max_tunnels", "gauge", "Tunnel slots (--max-tunnels)", h->max_tunnels);
	prom_u64(f, "natt_tunnels_live", "gauge", "Tunnels installed in the dataplane",
		 tunnels_live(h));
	for (unsigned int i = 0; i < NATT_CNT_MAX; i++) {
		snprintf(name, sizeof(name), "natt_%s_total", natt_counter_name(i));
		prom_u64(f, name, "counter", counter_help[i] ? counter_help[i] : natt_counter_name(i),
			 sum.counters[i]);
	}
	prom_head(f, "natt_drops_total", "counter",
		  "Packets not forwarded, by reason (keepalive and ike: consumed, not errors)");
	for (unsigned int r = 0; r < NATT_DROP_MAX; r++)
		fprintf(f, "natt_drops_total{reason=\"%s\"} %" PRIu64 "\n", natt_drop_name(r),
			sum.drops[r]);

	for (unsigned int k = 0; k < RTE_DIM(port_m); k++) {
		snprintf(name, sizeof(name), "natt_port_%s_total", port_m[k]);
		snprintf(help, sizeof(help), "Port %s, all workers", port_m[k]);
		prom_head(f, name, "counter", help);
		for (uint32_t p = 0; p < h->n_ports; p++) {
			const uint64_t v[] = { sum.port[p].rx_packets, sum.port[p].rx_bytes,
					       sum.port[p].tx_packets, sum.port[p].tx_bytes };

			fprintf(f, "%s{port=\"%u\",device=\"", name, p);
			prom_label(f, h->port_names[p], NATT_NAME_LEN);
			fprintf(f, "\"} %" PRIu64 "\n", v[k]);
		}
	}

	prom_neigh(f, s);
	prom_head(f, "natt_worker_active", "gauge", "1 once the worker applied its first COMMIT");
	for (uint32_t w = 0; w < h->n_workers; w++)
		fprintf(f, "natt_worker_active{worker=\"%u\"} %u\n", w,
			natt_stats_worker(h, w)->active != 0);
	prom_head(f, "natt_worker_config_generation", "gauge",
		  "Configuration generation the worker applied last");
	for (uint32_t w = 0; w < h->n_workers; w++)
		fprintf(f, "natt_worker_config_generation{worker=\"%u\"} %" PRIu64 "\n", w,
			natt_stats_worker(h, w)->generation);
	for (unsigned int i = 0; i < NATT_CNT_MAX; i++) {
		snprintf(name, sizeof(name), "natt_worker_%s_total", natt_counter_name(i));
		snprintf(help, sizeof(help), "%s, per worker",
			 counter_help[i] ? counter_help[i] : natt_counter_name(i));
		prom_head(f, name, "counter", help);
		for (uint32_t w = 0; w < h->n_workers; w++)
			fprintf(f, "%s{worker=\"%u\"} %" PRIu64 "\n", name, w,
				natt_stats_worker(h, w)->counters[i]);
	}
	prom_head(f, "natt_worker_drops_total", "counter", "Packets not forwarded, per worker");
	for (uint32_t w = 0; w < h->n_workers; w++)
		for (unsigned int r = 0; r < NATT_DROP_MAX; r++)
			fprintf(f, "natt_worker_drops_total{worker=\"%u\",reason=\"%s\"} %" PRIu64
				"\n", w, natt_drop_name(r), natt_stats_worker(h, w)->drops[r]);
	if (s->j != NULL)
		prom_reload(f, s->j);
	if (tunnels)
		prom_tunnels(f, s);
}

/* ---- entry points ---- */

int
natt_show_check(struct natt_show_src *src, char *err, size_t errlen)
{
	struct natt_stats_hdr *h = src->st;
	struct natt_journal_hdr *j = src->j;

	err[0] = '\0';
	if (src->st_len < sizeof(*h)) {
		snprintf(err, errlen, "memzone %s too small (%zu bytes)", NATT_STATS_MZ,
			 src->st_len);
		return -EPROTO;
	}
	/* the primary fills the header and stores the magic last */
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != NATT_STATS_MAGIC) {
		snprintf(err, errlen, "natt-dataplane is still starting (stats header not"
			 " published)");
		return -EAGAIN;
	}
	if (h->version != NATT_STATS_VERSION) {
		snprintf(err, errlen, "natt-dataplane counters are version %u, this natt-control"
			 " reads version %u", h->version, NATT_STATS_VERSION);
		return -EPROTO;
	}
	if (h->n_workers == 0 || h->n_workers > NATT_MAX_WORKERS || h->n_ports > NATT_MAX_PORTS ||
	    h->tsc_hz == 0 || src->st_len < natt_stats_size(h->n_workers, h->max_tunnels)) {
		snprintf(err, errlen, "stats header inconsistent (%u workers, %u ports, %u tunnels,"
			 " tsc_hz %" PRIu64 ", %zu bytes)", h->n_workers, h->n_ports,
			 h->max_tunnels, h->tsc_hz, src->st_len);
		return -EPROTO;
	}
	if (j == NULL) {
		snprintf(err, errlen, "no memzone %s (natt-dataplane without a journal)",
			 NATT_JOURNAL_MZ);
		return 0;
	}
	if (src->j_len < sizeof(*j) ||
	    __atomic_load_n(&j->magic, __ATOMIC_ACQUIRE) != NATT_JOURNAL_MAGIC)
		snprintf(err, errlen, "journal not initialised");
	else if (j->version != NATT_JOURNAL_VERSION)
		snprintf(err, errlen, "journal version %u, this natt-control reads %u", j->version,
			 NATT_JOURNAL_VERSION);
	else if (j->n_events != NATT_JOURNAL_EVENTS || j->max_tunnels != h->max_tunnels ||
		 src->j_len < natt_journal_size(j->max_tunnels))
		snprintf(err, errlen, "journal inconsistent (%u events, %u tunnels, %zu bytes)",
			 j->n_events, j->max_tunnels, src->j_len);
	else
		return 0;
	src->j = NULL;
	return 0;
}

static int
show_attach(struct natt_show_src *src, char *err, size_t errlen)
{
	const struct rte_memzone *mz = rte_memzone_lookup(NATT_STATS_MZ);

	memset(src, 0, sizeof(*src));
	if (mz == NULL) {
		snprintf(err, errlen, "no memzone %s: is natt-dataplane running with this"
			 " --file-prefix?", NATT_STATS_MZ);
		return -ENOENT;
	}
	src->st = mz->addr;
	src->st_len = mz->len;
	mz = rte_memzone_lookup(NATT_JOURNAL_MZ);
	if (mz != NULL) {
		src->j = mz->addr;
		src->j_len = mz->len;
	}
	return natt_show_check(src, err, errlen);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: natt-control <EAL args> -- show COMMAND [--json]\n"
		"       natt-control <EAL args> -- diagnose TUNNEL [--json]\n"
		"  tunnels                   one line per tunnel, totals\n"
		"  tunnel NAME               everything about one tunnel\n"
		"  stats [--prometheus [--tunnels]]\n"
		"                            counters, ports, workers, config reload status\n"
		"  drops                     packets not forwarded, by reason and worker\n"
		"  events                    the control plane's event log, oldest first\n"
		"  --json                    one JSON document instead of a table\n"
		"  --prometheus              Prometheus text format (show stats only);\n"
		"  --tunnels                 with it, per-tunnel series (large!)\n"
		"diagnose TUNNEL             which NAT-T failure modes the counters point to\n"
		"EAL args: --proc-type=secondary --file-prefix PREFIX (the dataplane's)\n");
}

static int
show_parse(int argc, char **argv, struct show_opts *o, FILE *err)
{
	static const struct { const char *name; enum show_cmd cmd; } cmds[] = {
		{ "tunnels", CMD_TUNNELS }, { "tunnel", CMD_TUNNEL }, { "stats", CMD_STATS },
		{ "drops", CMD_DROPS }, { "events", CMD_EVENTS },
	};
	unsigned int i;
	int a;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		goto bad;
	if (strcmp(argv[0], "diagnose") == 0) {
		o->cmd = CMD_DIAGNOSE;   /* a command of its own: its name is argv[1] */
		a = 1;
	} else {
		for (i = 0; i < RTE_DIM(cmds) && strcmp(argv[1], cmds[i].name) != 0; i++)
			;
		if (i == RTE_DIM(cmds))
			goto bad;
		o->cmd = cmds[i].cmd;
		a = 2;
	}
	if (o->cmd == CMD_TUNNEL || o->cmd == CMD_DIAGNOSE) {
		if (argc <= a || argv[a][0] == '-' || strlen(argv[a]) >= NATT_NAME_LEN)
			goto bad;
		o->name = argv[a++];
	}
	for (; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0 && o->fmt == FMT_TEXT)
			o->fmt = FMT_JSON;
		else if (strcmp(argv[a], "--prometheus") == 0 && o->fmt == FMT_TEXT &&
			 o->cmd == CMD_STATS)
			o->fmt = FMT_PROM;
		else if (strcmp(argv[a], "--tunnels") == 0 && o->cmd == CMD_STATS)
			o->prom_tunnels = true;
		else
			goto bad;
	}
	if (o->prom_tunnels && o->fmt != FMT_PROM)
		goto bad;
	return 0;
bad:
	if (argc >= 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 1;
	}
	usage(err);
	return -1;
}

static int
show_exec(const struct show_opts *o, const struct natt_show_src *src, FILE *out, FILE *err)
{
	struct show s = { .st = src->st, .j = src->j, .out = out };

	clock_init(&s.clk, src->st);
	switch (o->cmd) {
	case CMD_TUNNELS:
		if (o->fmt == FMT_JSON)
			json_tunnels(&s);
		else
			text_tunnels(&s);
		break;
	case CMD_TUNNEL:
		return show_tunnel(&s, o->name, o->fmt, err);
	case CMD_STATS:
		if (o->fmt == FMT_PROM)
			prom_write(out, &s, o->prom_tunnels);
		else if (o->fmt == FMT_JSON)
			json_stats(&s);
		else
			text_stats(&s);
		break;
	case CMD_DROPS:
		if (o->fmt == FMT_JSON)
			json_drops(&s);
		else
			text_drops(&s);
		break;
	case CMD_EVENTS:
		return show_events(&s, o->fmt, err);
	case CMD_DIAGNOSE:
		return show_diagnose(&s, o->name, o->fmt, err);
	}
	return NATT_SHOW_OK;
}

int
natt_show_run(const struct natt_show_src *src, int argc, char **argv, FILE *out, FILE *err)
{
	struct show_opts o;

	int rc = show_parse(argc, argv, &o, err);

	if (rc != 0)
		return rc > 0 ? NATT_SHOW_OK : NATT_SHOW_USAGE;
	return show_exec(&o, src, out, err);
}

void
natt_prom_write(FILE *f, const struct natt_show_src *src, bool tunnels)
{
	struct show s = { .st = src->st, .j = src->j, .out = f };

	clock_init(&s.clk, src->st);
	prom_write(f, &s, tunnels);
}

bool
natt_show_requested(int argc, char *const *argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			return strcmp(argv[i + 1], "show") == 0 ||
			       strcmp(argv[i + 1], "diagnose") == 0;
	return false;
}

int
natt_show_main(int argc, char **argv)
{
	static char obuf[1 << 16];
	struct natt_show_src src;
	struct show_opts o;
	char err[256];
	int rc;

	rc = show_parse(argc, argv, &o, stderr);
	if (rc != 0)
		return rc > 0 ? NATT_SHOW_OK : NATT_SHOW_USAGE;
	if (rte_eal_process_type() != RTE_PROC_SECONDARY) {
		fprintf(stderr, "natt-control: show must run as a DPDK secondary of natt-dataplane"
			" (--proc-type=secondary --file-prefix=<the dataplane's>)\n");
		return NATT_SHOW_NOATTACH;
	}
	rc = show_attach(&src, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "natt-control: cannot read natt-dataplane: %s\n", err);
		return NATT_SHOW_NOATTACH;
	}
	if (src.j == NULL && (o.cmd == CMD_EVENTS || o.cmd == CMD_STATS || o.cmd == CMD_DIAGNOSE))
		fprintf(stderr, "natt-control: %s\n", err);
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	rc = show_exec(&o, &src, stdout, stderr);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "natt-control: writing the output failed: %s\n", strerror(errno));
		return NATT_SHOW_USAGE;
	}
	return rc;
}

int
natt_prom_textfile(const char *path)
{
	/* a secondary keeps its mappings: attach once, keep the pointers */
	static struct natt_show_src src;
	char tmp[PATH_MAX], err[256];
	FILE *f;
	int fd, rc = 0;

	if (src.st == NULL) {
		rc = show_attach(&src, err, sizeof(err));
		if (rc != 0) {
			src.st = NULL;
			return rc;
		}
	} else if (src.j == NULL) {
		const struct rte_memzone *mz = rte_memzone_lookup(NATT_JOURNAL_MZ);

		if (mz != NULL) {  /* it may have been published since */
			src.j = mz->addr;
			src.j_len = mz->len;
			natt_show_check(&src, err, sizeof(err));
		}
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* O_NOFOLLOW: root writes here, the directory may not be only root's */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (f == NULL) {
		rc = -errno;
		close(fd);
		unlink(tmp);
		return rc;
	}
	errno = 0;
	natt_prom_write(f, &src, false);
	if (fflush(f) != 0 || ferror(f))
		rc = errno ? -errno : -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}
