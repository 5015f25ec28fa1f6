/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_config.c - table-driven tests of control/config.c.
 *
 * Usage: test_config CONFIG_DIR
 *
 * Every *.cfg in CONFIG_DIR is a case (TAP output, one numbered line each):
 *   good-*.cfg  must load; those listed in good_cases[] are then compared
 *               field by field with the values written in the file;
 *   bad-*.cfg   must fail, and the first line says how:
 *                   # expect: [FILE:]LINE: substring of the reason
 *               the error must start with "FILE:LINE: " (FILE defaults to the
 *               .cfg itself) and contain the substring.
 * Then every file again, parsed in pieces on several threads (forced on
 * with a few thread and piece counts): a good file must give the very same
 * struct natt_config as one parse, a bad one the very same error, which must
 * also match its "# expect:" line.
 * A few cases that need no file follow (I/O error, truncation, scale).
 * The test chdir()s to CONFIG_DIR, so relative @include paths resolve there.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

static unsigned int n_case;
static unsigned int n_failed;

static void __attribute__((format(printf, 3, 4)))
report(bool ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	n_case++;
	n_failed += !ok;
	printf("%s %u - %s: ", ok ? "ok" : "not ok", n_case, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ---- helpers for the good-file checks ---- */

#define EXPECT(cond)                                                           \
	do {                                                                   \
		if (!(cond)) {                                                 \
			snprintf(why, whylen, "test_config.c:%d: %s", __LINE__, #cond); \
			return -1;                                             \
		}                                                              \
	} while (0)

static uint32_t
ip(const char *s)
{
	struct in_addr a = { 0 };

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* p[0..strlen(hex)/2) equals the bytes spelled by hex */
static bool
bytes_eq(const uint8_t *p, const char *hex)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1 || p[i] != b)
			return false;
	}
	return true;
}

static bool
ts_eq(const struct natt_ctl_ts *ts, const char *addr, unsigned int plen)
{
	return ts->addr == ip(addr) && ts->plen == plen;
}

static bool
mac_eq(const uint8_t *m, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e, uint8_t f)
{
	const uint8_t want[6] = { a, b, c, d, e, f };

	return memcmp(m, want, 6) == 0;
}

static int
check_sample(const struct natt_config *c, char *why, size_t whylen)
{
	const struct natt_cfg_iface *o = &c->iface[c->outside], *in = &c->iface[c->inside];
	const struct natt_cfg_tunnel *t;
	const struct natt_ctl_ts *ts;

	EXPECT(c->replay_window == 1024);
	EXPECT(c->mss_clamp == 1360 && natt_config_mss(c) == 1360);
	EXPECT(c->df_mode == NATT_DF_SET && c->icmp_rate == 50);
	EXPECT(c->idle_timeout == 300 && c->rekey_grace == 0);
	EXPECT(c->n_ifaces == 2 && c->outside == 0 && c->inside == 1);
	EXPECT(strcmp(o->name, "outside") == 0 && o->port == 0 && o->role == NATT_ROLE_OUTSIDE);
	EXPECT(o->addr == ip("203.0.113.1") && o->mtu == 1500 && o->line == 8);
	EXPECT(mac_eq(o->next_hop_mac, 0x02, 0, 0, 0, 0, 0xfe));
	EXPECT(strcmp(in->name, "inside") == 0 && in->port == 1 && in->role == NATT_ROLE_INSIDE);
	EXPECT(in->addr == ip("10.10.0.1") && in->mtu == 9000);
	EXPECT(mac_eq(in->next_hop_mac, 0x02, 0, 0, 0, 0x01, 0xfe));
	EXPECT(c->n_tunnels == 3 && c->n_ts == 8);

	t = &c->tunnels[0];
	EXPECT(strcmp(t->name, "rw-0001") == 0 && t->line == 13);
	EXPECT(t->remote_addr == ip("198.51.100.25") && t->remote_port == 4500);
	EXPECT(t->algo == NATT_ALGO_AES_GCM_128 && t->key_len == 16 && !t->esn);
	EXPECT(t->in.spi == 0xc1a2b3c4u && t->out.spi == 0x9abcdef0u);
	EXPECT(bytes_eq(t->in.key, "4a87e3e8efaf750478111a9189da99ab"));
	EXPECT(bytes_eq(t->in.salt, "f803d259"));
	EXPECT(bytes_eq(t->out.key, "bd112c3229ff482e4c61910eb5d587df"));
	EXPECT(bytes_eq(t->out.salt, "edacd362"));
	EXPECT(t->n_remote_ts == 1 && ts_eq(natt_config_remote_ts(c, t), "10.50.20.7", 32));
	EXPECT(t->n_local_ts == 1 && ts_eq(natt_config_local_ts(c, t), "0.0.0.0", 0));
	EXPECT(t->keepalive == 0 && !t->pin_mapping);   /* defaults */

	t = &c->tunnels[1];
	EXPECT(strcmp(t->name, "rw-0002") == 0);
	EXPECT(t->remote_addr == ip("198.51.100.25") && t->remote_port == 61234);
	EXPECT(t->algo == NATT_ALGO_AES_GCM_256 && t->key_len == 32 && t->esn);
	EXPECT(t->in.spi == 0xffffffffu && t->out.spi == 256);
	EXPECT(bytes_eq(t->in.key, "8847a8b4327a2c455f5dad24a09ab6a7efede1656ea89c6597e52154c0042fd4"));
	EXPECT(bytes_eq(t->in.salt, "88230f36"));
	EXPECT(bytes_eq(t->out.key, "898b7cd0ea0d8d00e2782150ea319e531113f25789d2ae93a7636e45604e6789"));
	EXPECT(bytes_eq(t->out.salt, "ba09b425"));
	EXPECT(t->n_remote_ts == 1 && ts_eq(natt_config_remote_ts(c, t), "10.50.20.8", 32));
	ts = natt_config_local_ts(c, t);
	EXPECT(t->n_local_ts == 2 && ts_eq(&ts[0], "10.10.0.0", 16) && ts_eq(&ts[1], "192.168.7.0", 24));

	t = &c->tunnels[2];
	EXPECT(strcmp(t->name, "site_B.lab") == 0);
	EXPECT(t->remote_addr == ip("192.0.2.200") && t->remote_port == 4500);
	EXPECT(t->local_port == 14500 && c->tunnels[0].local_port == 4500);
	EXPECT(t->in.spi == 3000000000u && t->out.spi == 0x101);
	EXPECT(bytes_eq(t->in.key, "ced4d6f073659ed0253d8494bf5f026e"));
	EXPECT(bytes_eq(t->in.salt, "54a6c2fa"));
	ts = natt_config_remote_ts(c, t);
	EXPECT(t->n_remote_ts == 2 && ts_eq(&ts[0], "10.60.0.0", 16) && ts_eq(&ts[1], "10.61.0.0", 16));
	EXPECT(t->n_local_ts == 1 && ts_eq(natt_config_local_ts(c, t), "10.10.0.0", 16));
	return 0;
}

static int
check_minimal(const struct natt_config *c, char *why, size_t whylen)
{
	EXPECT(c->replay_window == NATT_CFG_DEFAULT_REPLAY_WINDOW);
	/* defaults: MSS from the outside MTU 576 (inner MTU 514 - 40), DF copied */
	EXPECT(c->mss_clamp == -1 && natt_config_mss(c) == 474);
	EXPECT(c->df_mode == NATT_DF_COPY && c->icmp_rate == NATT_CFG_DEFAULT_ICMP_RATE);
	EXPECT(c->idle_timeout == 0 && c->rekey_grace == NATT_CFG_DEFAULT_REKEY_GRACE);
	EXPECT(c->exception_rate == NATT_CFG_DEFAULT_EXCEPTION_RATE);
	EXPECT(c->iface[0].next_hop_ip == 0);
	EXPECT(c->n_tunnels == 0 && c->n_ifaces == 2);
	EXPECT(c->outside == 0 && c->iface[0].port == 3 && c->iface[0].mtu == 576);
	EXPECT(c->inside == 1 && c->iface[1].port == 0 && c->iface[1].mtu == 9216);
	EXPECT(mac_eq(c->iface[0].next_hop_mac, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f));
	return 0;
}

static int
check_limits(const struct natt_config *c, char *why, size_t whylen)
{
	const struct natt_cfg_tunnel *t = &c->tunnels[0];
	const struct natt_ctl_ts *ts;

	EXPECT(c->replay_window == 0);
	EXPECT(c->idle_timeout == 86400 && c->rekey_grace == 3600);
	EXPECT(c->exception_rate == NATT_CFG_MAX_EXCEPTION_RATE);
	EXPECT(c->iface[1].next_hop_ip == ip("203.0.113.254") &&
	       mac_eq(c->iface[1].next_hop_mac, 0, 0, 0, 0, 0, 0));
	EXPECT(c->tunnels[0].keepalive == 3600 && c->tunnels[0].pin_mapping);
	EXPECT(c->tunnels[1].keepalive == 0 && !c->tunnels[1].pin_mapping);
	EXPECT(c->inside == 0 && c->outside == 1 && c->iface[0].port == 7);
	EXPECT(strlen(c->iface[0].name) == NATT_NAME_LEN - 1);
	EXPECT(c->n_tunnels == 2);
	EXPECT(strlen(t->name) == NATT_NAME_LEN - 1 && t->remote_port == 65535 && t->esn);
	EXPECT(t->in.spi == 256 && t->out.spi == 0xffffffffu);
	EXPECT(bytes_eq(t->in.key, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	EXPECT(bytes_eq(t->out.key, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
	EXPECT(bytes_eq(t->out.salt, "00000000"));
	ts = natt_config_remote_ts(c, t);
	EXPECT(t->n_remote_ts == NATT_MAX_TS && ts_eq(&ts[15], "10.15.0.0", 16));
	t = &c->tunnels[1];
	EXPECT(t->remote_addr == ip("223.255.255.254") && t->remote_port == 1);
	EXPECT(t->in.spi == 0x7fffffff && t->out.spi == 0x7fffffff);
	EXPECT(bytes_eq(t->in.key, "0123456789abcdefabcdef0123456789"));
	EXPECT(bytes_eq(t->in.salt, "abcdef01"));
	EXPECT(ts_eq(natt_config_remote_ts(c, t), "0.0.0.0", 0));
	ts = natt_config_local_ts(c, t);
	EXPECT(t->n_local_ts == 2 && ts_eq(&ts[0], "255.255.255.255", 32) &&
	       ts_eq(&ts[1], "128.0.0.0", 1));
	return 0;
}

static int
check_include(const struct natt_config *c, char *why, size_t whylen)
{
	EXPECT(c->n_tunnels == 1 && strcmp(c->tunnels[0].name, "inc-0001") == 0);
	EXPECT(c->tunnels[0].line == 2 && c->tunnels[0].in.spi == 0x4000);
	return 0;
}

static const struct {
	const char *file;
	int (*check)(const struct natt_config *c, char *why, size_t whylen);
} good_cases[] = {
	{ "good-sample.cfg", check_sample },
	{ "good-minimal.cfg", check_minimal },
	{ "good-limits.cfg", check_limits },
	{ "good-include.cfg", check_include },
};

#define N_GOOD (sizeof(good_cases) / sizeof(good_cases[0]))

/* ---- the file cases ---- */

static void
run_good(const char *file, bool *seen)
{
	struct natt_config c;
	char err[512], why[256] = "";
	int rc = -1;

	if (natt_config_load(file, &c, err, sizeof(err)) < 0) {
		report(false, file, "should load, got: %s", err);
		return;
	}
	for (size_t i = 0; i < N_GOOD; i++) {
		if (strcmp(good_cases[i].file, file) == 0) {
			seen[i] = true;
			rc = good_cases[i].check(&c, why, sizeof(why));
			break;
		}
	}
	if (why[0])
		report(false, file, "%s", why);
	else
		report(true, file, "%u interfaces, %u tunnels%s", c.n_ifaces, c.n_tunnels,
		       rc == 0 ? ", values checked" : " (load only: no check in good_cases[])");
	natt_config_free(&c);
}

/* "# expect: [FILE:]LINE: substring" -> want_prefix "FILE:LINE: ", substring */
static int
read_expect(const char *file, char *prefix, size_t plen, char *sub, size_t slen)
{
	char line[512], *p, *colon;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || strncmp(line, "# expect: ", 10) != 0)
		return -1;
	line[strcspn(line, "\n")] = '\0';
	p = line + 10;
	colon = strstr(p, ": ");
	if (!colon)
		return -1;
	*colon = '\0';
	if (strchr(p, ':'))
		snprintf(prefix, plen, "%s: ", p);
	else
		snprintf(prefix, plen, "%s:%s: ", file, p);
	snprintf(sub, slen, "%s", colon + 2);
	return 0;
}

static void
run_bad(const char *file)
{
	char prefix[1024], sub[1024], err[512];
	struct natt_config c;

	if (read_expect(file, prefix, sizeof(prefix), sub, sizeof(sub)) < 0) {
		report(false, file, "first line must be \"# expect: [FILE:]LINE: substring\"");
		return;
	}
	if (natt_config_load(file, &c, err, sizeof(err)) == 0) {
		natt_config_free(&c);
		report(false, file, "loaded, but should fail with \"%s... %s\"", prefix, sub);
		return;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, sub))
		report(false, file, "expected \"%s... %s\", got \"%s\"", prefix, sub, err);
	else
		report(true, file, "%s", err);
}

static int
cfg_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && strcmp(d->d_name + n - 4, ".cfg") == 0;
}

static void
run_files(void)
{
	struct dirent **ents;
	bool seen[N_GOOD] = { false };
	unsigned int n_bad = 0;
	int n = scandir(".", &ents, cfg_filter, alphasort);

	if (n < 0) {
		report(false, "scandir", "cannot list the config directory");
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;

		if (strncmp(f, "good-", 5) == 0) {
			run_good(f, seen);
		} else if (strncmp(f, "bad-", 4) == 0) {
			run_bad(f);
			n_bad++;
		} else {
			report(false, f, "config files must be named good-*.cfg or bad-*.cfg");
		}
		free(ents[i]);
	}
	free(ents);
	for (size_t i = 0; i < N_GOOD; i++)
		if (!seen[i])
			report(false, good_cases[i].file, "listed in good_cases[] but not found");
	/* guard against running on the wrong (or an emptied) directory */
	report(n_bad >= 70, "bad files", "%u found", n_bad);
}

/* ---- the same files, parsed in pieces ---- */

/* one parse of the whole file, never in pieces */
static const struct natt_config_opts opts_one = { .parallel_min = SIZE_MAX };

/* threads x tunnels per piece; the files have at most 7 tunnels */
static const struct {
	unsigned int threads, piece;
} split_modes[] = {
	{ 1, 1 }, { 2, 1 }, { 2, 2 }, { 3, 3 }, { 4, 1 }, { 8, 1 }, { 16, 2 }, { 2, 1024 },
};

#define N_SPLIT_MODES (sizeof(split_modes) / sizeof(split_modes[0]))

static bool
config_eq(const struct natt_config *a, const struct natt_config *b)
{
	return a->replay_window == b->replay_window && a->mss_clamp == b->mss_clamp &&
	       a->df_mode == b->df_mode && a->icmp_rate == b->icmp_rate &&
	       a->idle_timeout == b->idle_timeout && a->rekey_grace == b->rekey_grace &&
	       a->outside == b->outside && a->inside == b->inside && a->n_ifaces == b->n_ifaces &&
	       memcmp(a->iface, b->iface, sizeof(a->iface)) == 0 &&
	       a->n_tunnels == b->n_tunnels && a->n_ts == b->n_ts &&
	       (a->n_tunnels == 0 ||
		memcmp(a->tunnels, b->tunnels, a->n_tunnels * sizeof(*a->tunnels)) == 0) &&
	       (a->n_ts == 0 || memcmp(a->ts, b->ts, a->n_ts * sizeof(*a->ts)) == 0);
}

/* A good-* file must load, a bad-* one fail as its "# expect:" line says. */
static bool
expect_ok(const char *file, int rc, const char *err, char *why, size_t whylen)
{
	char prefix[1024], sub[1024];

	if (strncmp(file, "good-", 5) == 0) {
		if (rc != 0)
			snprintf(why, whylen, "should load, got: %s", err);
		return rc == 0;
	}
	if (read_expect(file, prefix, sizeof(prefix), sub, sizeof(sub)) < 0) {
		snprintf(why, whylen, "no \"# expect:\" line");
		return false;
	}
	if (rc == 0 || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, sub)) {
		snprintf(why, whylen, "expected \"%s... %s\", got \"%s\"", prefix, sub,
			 rc == 0 ? "(loaded)" : err);
		return false;
	}
	return true;
}

static void
run_split_file(const char *file, unsigned int *n_split)
{
	struct natt_config one, c;
	char err_one[512], err[512], why[4096] = "";
	int rc_one = natt_config_load_opts(file, &one, err_one, sizeof(err_one), &opts_one);
	unsigned int max_pieces = 0;

	for (size_t m = 0; m < N_SPLIT_MODES && !why[0]; m++) {
		unsigned int pieces = 0;
		struct natt_config_opts o = {
			.parallel_min = 0, .threads = split_modes[m].threads,
			.piece_tunnels = split_modes[m].piece, .pieces = &pieces,
		};
		int rc = natt_config_load_opts(file, &c, err, sizeof(err), &o);

		if (pieces > max_pieces)
			max_pieces = pieces;
		if (expect_ok(file, rc, err, why, sizeof(why))) {
			if (rc != rc_one || (rc < 0 && strcmp(err, err_one) != 0))
				snprintf(why, sizeof(why), "one parse: \"%s\", in pieces: \"%s\"",
					 rc_one ? err_one : "(loaded)", rc ? err : "(loaded)");
			else if (rc == 0 && !config_eq(&one, &c))
				snprintf(why, sizeof(why), "loaded, but not as in one parse");
		}
		if (why[0])
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
				 " (%u threads, %u tunnels per piece)", split_modes[m].threads,
				 split_modes[m].piece);
		if (rc == 0)
			natt_config_free(&c);
	}
	if (rc_one == 0)
		natt_config_free(&one);
	*n_split += max_pieces > 1;
	if (why[0])
		report(false, file, "in pieces: %s", why);
	else
		report(true, file, "in pieces: same as one parse in %zu ways (up to %u pieces)",
		       N_SPLIT_MODES, max_pieces);
}

static void
run_split_files(void)
{
	struct dirent **ents;
	unsigned int n_split = 0;
	int n = scandir(".", &ents, cfg_filter, alphasort);

	if (n < 0) {
		report(false, "scandir", "cannot list the config directory");
		return;
	}
	for (int i = 0; i < n; i++) {
		run_split_file(ents[i]->d_name, &n_split);
		free(ents[i]);
	}
	free(ents);
	/* the others (no or an empty list, @include) are parsed in one go */
	report(n_split >= 90, "split files", "%u of %d cut in several pieces", n_split, n);
}

/*
 * Beyond the corpus: small random edits of its files (bytes deleted, tokens
 * and comment or string delimiters inserted), parsed in one go and in pieces,
 * must give the same result. No "@": an @include of a mangled name makes
 * libconfig echo bytes to stdout, which is the TAP stream here.
 */
static uint32_t
rnd(uint32_t *x)
{
	*x ^= *x << 13; /* xorshift32 */
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static char *
mutate(const char *src, uint32_t *x)
{
	static const char *const ins[] = {
		",", "{", "}", "(", ")", "[", "]", "\"", "\\", "#", "//", "/*", "*/", "\n", " ",
		";", "=", ":", "tunnels", "\"a,b\"", "# c\n", "/* , } */", "x", "1", "\r", "0x",
		"{}", "()", ",{},", "\"\\\"\"", "tunnels = ();",
	};
	size_t n = strlen(src), cap = n + 64 * 3 + 1;
	char *t = malloc(cap);

	memcpy(t, src, n + 1);
	for (uint32_t m = rnd(x) % 3; m < 3; m++) {
		size_t len = strlen(t), pos = len ? rnd(x) % len : 0;

		if (rnd(x) % 3 == 0) {
			size_t del = 1 + rnd(x) % 3;

			del = del < len - pos ? del : len - pos;
			memmove(t + pos, t + pos + del, len - pos - del + 1);
		} else {
			const char *s = ins[rnd(x) % (sizeof(ins) / sizeof(ins[0]))];
			size_t k = strlen(s);

			memmove(t + pos + k, t + pos, len - pos + 1);
			memcpy(t + pos, s, k);
		}
	}
	return t;
}

static char *
slurp(const char *file)
{
	FILE *f = fopen(file, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f) {
		buf = calloc(1, 1 << 16);
		len = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
		fclose(f);
	}
	if (buf && (len == (1 << 16) - 1 || strchr(buf, '@'))) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

static void
run_split_mutants(void)
{
	struct dirent **ents;
	char *src[256];
	unsigned int n_src = 0, n_same = 0, n_split = 0, n_runs = 0;
	uint32_t x = 1;
	char why[2048] = "";
	int n = scandir(".", &ents, cfg_filter, alphasort);

	for (int i = 0; i < n; i++) {
		if (n_src < 256 && (src[n_src] = slurp(ents[i]->d_name)))
			n_src++;
		free(ents[i]);
	}
	if (n > 0)
		free(ents);
	for (unsigned int it = 0; it < 3000 && n_src && !why[0]; it++) {
		char *t = mutate(src[rnd(&x) % n_src], &x), err_one[512], err[512];
		struct natt_config one, c;
		int rc_one;

		if (strchr(t, '@')) {
			free(t);
			continue;
		}
		rc_one = natt_config_parse_string_opts(t, "mutant", &one, err_one, sizeof(err_one),
						       &opts_one);
		for (size_t m = 0; m < 3 && !why[0]; m++) {
			unsigned int pieces = 0;
			struct natt_config_opts o = {
				.parallel_min = 0, .threads = 1 + (unsigned int)m,
				.piece_tunnels = 1 + (unsigned int)m / 2, .pieces = &pieces,
			};
			int rc = natt_config_parse_string_opts(t, "mutant", &c, err, sizeof(err), &o);

			n_runs++;
			n_split += pieces > 1;
			if (rc != rc_one || (rc < 0 && strcmp(err, err_one) != 0) ||
			    (rc == 0 && !config_eq(&one, &c)))
				snprintf(why, sizeof(why), "mutant %u, %zu: one parse \"%s\", in pieces"
					 " \"%s\"", it, m, rc_one ? err_one : "(loaded)",
					 rc ? err : "(loaded, not the same?)");
			else
				n_same++;
			if (rc == 0)
				natt_config_free(&c);
		}
		if (rc_one == 0)
			natt_config_free(&one);
		free(t);
	}
	for (unsigned int i = 0; i < n_src; i++)
		free(src[i]);
	if (why[0])
		report(false, "mutants", "%s", why);
	else
		report(n_split > 1000, "mutants", "%u of %u the same in one parse and in pieces"
		       " (%u cut in several pieces)", n_same, n_runs, n_split);
}

/* ---- cases without a file ---- */

static const char ifaces[] =
	"interfaces = (\n"
	"  { name = \"o\"; port = 0; role = \"outside\"; address = \"203.0.113.1\";"
	" next_hop_mac = \"02:00:00:00:00:fe\"; mtu = 1500; },\n"
	"  { name = \"i\"; port = 1; role = \"inside\"; address = \"10.10.0.1\";"
	" next_hop_mac = \"02:00:00:00:01:fe\"; mtu = 1500; }\n"
	");\n";

static void
run_misc(void)
{
	struct natt_config c;
	char err[512], small[10];
	int rc;

	rc = natt_config_load("does-not-exist.cfg", &c, err, sizeof(err));
	report(rc < 0 && strcmp(err, "does-not-exist.cfg: cannot read: No such file or directory") == 0,
	       "missing file", "%s", err);

	rc = natt_config_parse_string("interfaces = 5;", "inline", &c, err, sizeof(err));
	report(rc < 0 && strncmp(err, "inline:1: interfaces must be a list", 35) == 0,
	       "string source", "%s", err);

	memset(small, 'x', sizeof(small));
	rc = natt_config_parse_string("interfaces = 5;", "inline", &c, small, sizeof(small));
	report(rc < 0 && memcmp(small, "inline:1:", 10) == 0, "truncated error", "\"%s\"", small);

	rc = natt_config_parse_string("interfaces = 5;", "inline", &c, NULL, 0);
	natt_config_free(&c);
	natt_config_free(&c);
	report(rc < 0 && c.tunnels == NULL, "no error buffer, double free", "ok");

	/* errors of pieces are cut like any other, or not written at all */
	for (size_t len = 0; len <= 40; len += 20) {
		struct natt_config_opts o = { .parallel_min = 0, .threads = 2, .piece_tunnels = 1 };
		char one[64], split[64];
		int rc1;

		memset(one, 'x', sizeof(one));
		memset(split, 'x', sizeof(split));
		rc1 = natt_config_load_opts("bad-split-dup-name.cfg", &c, one, len, &opts_one);
		rc = natt_config_load_opts("bad-split-dup-name.cfg", &c, split, len, &o);
		report(rc < 0 && rc1 < 0 && memcmp(one, split, sizeof(one)) == 0,
		       "error of a piece, truncated", "%zu bytes: \"%.*s\"", len,
		       len ? (int)len - 1 : 0, split);
	}
}

/* n tunnels, one line each; the last one reuses the first inbound SPI if dup */
static char *
gen_tunnels(uint32_t n, bool dup)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fputs(ifaces, f);
	fputs("tunnels = (\n", f);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t spi = (dup && i == n - 1) ? 0x10000000u : 0x10000000u + i;

		fprintf(f, "{ name = \"t%u\"; remote = \"198.51.%u.%u\"; remote_port = 4500;"
			" algorithm = \"aes-gcm-128\"; esn = false; inbound = { spi = 0x%08x;"
			" key = \"1%039x\"; }; outbound = { spi = 0x%08x; key = \"2%039x\"; };"
			" remote_ts = [ \"10.%u.%u.%u\" ]; local_ts = [ \"0.0.0.0/0\" ]; }%s\n",
			i, (i >> 8) & 255, (i & 255) | 1, spi, i, 0x20000000u + i, i,
			(i >> 16) & 255, (i >> 8) & 255, i & 255, i + 1 < n ? "," : "");
	}
	fputs(");\n", f);
	fclose(f);
	return buf;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
run_scale(void)
{
	const uint32_t n = 100000;
	struct natt_config c;
	char err[512], want[128];
	double t0 = now_ms();
	char *text = gen_tunnels(n, false);
	int rc;

	t0 = now_ms();
	rc = natt_config_parse_string(text, "scale", &c, err, sizeof(err));
	report(rc == 0 && c.n_tunnels == n && c.tunnels[n - 1].in.spi == 0x10000000u + n - 1,
	       "100k tunnels", "%s (%.0f ms)", rc ? err : "loaded", now_ms() - t0);

	/* that was in pieces (the text is over NATT_CFG_PARALLEL_MIN); in one go: */
	if (rc == 0) {
		struct natt_config one;
		int rc1;

		t0 = now_ms();
		rc1 = natt_config_parse_string_opts(text, "scale", &one, err, sizeof(err), &opts_one);
		report(rc1 == 0 && config_eq(&c, &one), "100k tunnels in one parse",
		       "%s (%.0f ms)", rc1 ? err : "the same", now_ms() - t0);
		if (rc1 == 0)
			natt_config_free(&one);
	}
	natt_config_free(&c);
	free(text);

	/* the hash sets must catch a duplicate far from the original */
	text = gen_tunnels(n, true);
	snprintf(want, sizeof(want), "scale:%u: tunnel \"t%u\": inbound.spi 0x10000000 is already"
		 " used by tunnel \"t0\" (line 6)", n + 5, n - 1);
	for (int one = 0; one < 2; one++) {
		unsigned int pieces = 0;
		struct natt_config_opts o = {
			.parallel_min = one ? SIZE_MAX : 0, .piece_tunnels = 999, .pieces = &pieces,
		};

		rc = natt_config_parse_string_opts(text, "scale", &c, err, sizeof(err), &o);
		report(rc < 0 && strcmp(err, want) == 0 && (one || pieces > 100),
		       one ? "duplicate SPI in 100k, one parse" : "duplicate SPI in 100k, in pieces",
		       "%s", err);
	}
	free(text);
}

/*
 * NATT_CFG_MAX_TUNNELS + 1 empty groups: the count is checked before any
 * tunnel is looked at. libconfig grows a list by realloc() every 16 elements;
 * glibc does that in place (mremap), but AddressSanitizer's realloc always
 * copies, which makes this one case quadratic (minutes), so it is skipped there.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NATT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NATT_TEST_ASAN 1
#endif
#endif
#ifndef NATT_TEST_ASAN
#define NATT_TEST_ASAN 0
#endif

static void
run_limit(void)
{
	const uint32_t n = NATT_CFG_MAX_TUNNELS + 1;
	size_t len = sizeof(ifaces) + 16 + (size_t)n * 3;
	char *text = malloc(len), *p = text, err[512];
	struct natt_config c;
	int rc;

	p += sprintf(p, "%stunnels = (", ifaces);
	for (uint32_t i = 0; i < n; i++) {
		memcpy(p, i ? ",{}" : "{} ", 3);
		p += 3;
	}
	strcpy(p, ");");
	rc = natt_config_parse_string(text, "limit", &c, err, sizeof(err));
	report(rc < 0 && strstr(err, "limit:5: tunnels must have 0..1000000 entries, got 1000001"),
	       "1000001 tunnels", "%s", err);
	free(text);
}

int
main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1]) < 0) {
		fprintf(stderr, "usage: %s CONFIG_DIR\n", argv[0]);
		return 2;
	}
	run_files();
	run_split_files();
	run_split_mutants();
	run_misc();
	run_scale();
	if (NATT_TEST_ASAN)
		printf("ok %u - 1000001 tunnels # SKIP quadratic under AddressSanitizer\n", ++n_case);
	else
		run_limit();
	printf("1..%u\n", n_case);
	if (n_failed)
		printf("# %u of %u cases failed\n", n_failed, n_case);
	return n_failed ? 1 : 0;
}
