/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.c - libconfig file -> struct natt_config.
 *
 * Every level of the file (top, dataplane, interface, tunnel, inbound/outbound)
 * is a table of struct cfg_key. cfg_walk() runs one table over one libconfig
 * group in two passes:
 *   1. every member, in file order, must be a key of the table (unknown keys
 *      are errors: a typo must not silently fall back to a default);
 *   2. every key, in table order, is looked up, type- and range-checked, and
 *      handed to its apply() hook, which does the semantic checks and stores
 *      the value. Table order is what lets a hook rely on an earlier key
 *      (the key length depends on the algorithm, outbound.key is compared
 *      with inbound.key).
 * Adding a key is one table line and, usually, one small hook.
 *
 * The first error stops parsing; it is formatted "FILE:LINE: reason" with the
 * file and line libconfig recorded for the offending setting.
 *
 * Scale: up to NATT_CFG_MAX_TUNNELS tunnels. Every check is O(1) per tunnel
 * (uniqueness through open-addressing hash sets), so loading is linear.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "config.h"

enum cfg_type {
	CT_INT,      /* CONFIG_TYPE_INT or INT64; range [min, max] */
	CT_BOOL,
	CT_STRING,   /* length range [min, max] */
	CT_GROUP,
	CT_LIST,     /* list of groups; count range [min, max] */
	CT_STRINGS,  /* array or list of strings; count range [min, max] */
};

struct cfg_val {
	int64_t i;
	int b;
	const char *s;
};

struct cfg_ctx;

struct cfg_key {
	const char *name;
	enum cfg_type type;
	bool required;
	int64_t min, max;
	int (*apply)(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v);
};

struct cfg_section {
	const struct cfg_key *keys;
	unsigned int n_keys;
};

#define CFG_SECTION(k) { (k), sizeof(k) / sizeof((k)[0]) }

/* Open-addressing set of tunnel indexes (stored +1, 0 = empty). */
struct cfg_set {
	uint32_t *slot;
	uint32_t mask;
};

struct cfg_ctx {
	const char *path;        /* file name when libconfig recorded none */
	char *err;
	size_t errlen;
	char where[NATT_NAME_LEN + 32]; /* 'tunnel "rw-0001": ' */
	const char *sub;         /* "inbound." while inside an SA group */
	char keybuf[64];
	struct natt_config *cfg;
	struct natt_cfg_iface *ifc;
	struct natt_cfg_tunnel *tun;
	struct natt_cfg_sa *sa;
	uint32_t tun_idx;
	int8_t port_owner[NATT_CFG_MAX_IFACES]; /* iface index using a port, -1 */
	int8_t role_owner[3];                   /* by enum natt_if_role */
	uint32_t ts_cap;
	struct cfg_set names, in_spi, out_spi;
};

/* ---- diagnostics ---- */

static const char *
cfg_type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT: return "an integer";
	case CONFIG_TYPE_INT64: return "a 64-bit integer";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "nothing";
	}
}

static const char *
cfg_file(const struct cfg_ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	return f ? f : c->path;
}

/* The root group has no line; report file-level problems on line 1. */
static unsigned int
cfg_line(const config_setting_t *s)
{
	unsigned int l = s ? config_setting_source_line(s) : 0;

	return l ? l : 1;
}

static int __attribute__((format(printf, 3, 4)))
cfg_err(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->errlen == 0)
		return -1;
	n = snprintf(c->err, c->errlen, "%s:%u: %s", cfg_file(c, s), cfg_line(s), c->where);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Name of setting s as the operator wrote it: "inbound.key", "remote_ts[2]". */
static const char *
cfg_key_name(struct cfg_ctx *c, const config_setting_t *s)
{
	const char *n = config_setting_name(s);

	if (n)
		snprintf(c->keybuf, sizeof(c->keybuf), "%s%s", c->sub, n);
	else
		snprintf(c->keybuf, sizeof(c->keybuf), "%s%s[%d]", c->sub,
			 config_setting_name(config_setting_parent(s)),
			 config_setting_index(s));
	return c->keybuf;
}

/* Show one character of operator input safely inside a message. */
static const char *
cfg_char(char ch, char buf[8])
{
	if (isprint((unsigned char)ch))
		snprintf(buf, 8, "'%c'", ch);
	else
		snprintf(buf, 8, "\\x%02x", (unsigned char)ch);
	return buf;
}

/* ---- hash sets for uniqueness ---- */

static int
cfg_set_init(struct cfg_set *set, uint32_t n)
{
	uint32_t cap = 16;

	while (cap < 2 * n)
		cap <<= 1;
	set->slot = calloc(cap, sizeof(*set->slot));
	set->mask = cap - 1;
	return set->slot ? 0 : -1;
}

static void
cfg_set_free(struct cfg_set *set)
{
	free(set->slot);
	set->slot = NULL;
}

static uint32_t
cfg_hash_spi(uint32_t spi)
{
	return spi * 0x9e3779b1u; /* Fibonacci hashing; callers mask the top bits */
}

static uint32_t
cfg_hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/*
 * Insert tunnel idx into set under hash h; eq() says whether an earlier
 * tunnel has the same key. Returns the index of that earlier tunnel, or -1
 * once idx is inserted. The table is sized for every tunnel at half load, so
 * a free slot always exists.
 */
static int64_t
cfg_set_insert(struct cfg_ctx *c, struct cfg_set *set, uint32_t h, uint32_t idx,
	       bool (*eq)(const struct cfg_ctx *, uint32_t a, uint32_t b))
{
	uint32_t i = (h ^ (h >> 16)) & set->mask;

	for (;; i = (i + 1) & set->mask) {
		uint32_t v = set->slot[i];

		if (v == 0) {
			set->slot[i] = idx + 1;
			return -1;
		}
		if (eq(c, v - 1, idx))
			return v - 1;
	}
}

static bool
cfg_eq_name(const struct cfg_ctx *c, uint32_t a, uint32_t b)
{
	return strcmp(c->cfg->tunnels[a].name, c->cfg->tunnels[b].name) == 0;
}

static bool
cfg_eq_in_spi(const struct cfg_ctx *c, uint32_t a, uint32_t b)
{
	return c->cfg->tunnels[a].in.spi == c->cfg->tunnels[b].in.spi;
}

static bool
cfg_eq_out_spi(const struct cfg_ctx *c, uint32_t a, uint32_t b)
{
	return c->cfg->tunnels[a].out.spi == c->cfg->tunnels[b].out.spi;
}

/* ---- the generic walker ---- */

static const struct cfg_key *
cfg_find_key(const struct cfg_section *sec, const char *name)
{
	for (unsigned int i = 0; i < sec->n_keys; i++)
		if (strcmp(sec->keys[i].name, name) == 0)
			return &sec->keys[i];
	return NULL;
}

static int
cfg_unknown_key(struct cfg_ctx *c, const config_setting_t *m, const struct cfg_section *sec)
{
	char allowed[256];
	size_t off = 0;

	allowed[0] = '\0';
	for (unsigned int i = 0; i < sec->n_keys && off < sizeof(allowed); i++)
		off += snprintf(allowed + off, sizeof(allowed) - off, "%s%s",
				i ? ", " : "", sec->keys[i].name);
	return cfg_err(c, m, "unknown key \"%s\" (allowed: %s)", cfg_key_name(c, m), allowed);
}

/*
 * Integer value of s, with libconfig 1.5's quirks undone: a hex literal above
 * 0x7fffffff comes back as a negative CONFIG_TYPE_INT (its 32 bits are the
 * literal's), and a decimal above 2147483647 without an L suffix comes back
 * wrapped, i.e. usually negative. Only the first is recoverable.
 */
static int
cfg_int(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_key *k, int64_t *v)
{
	bool hex = config_setting_get_format(s) == CONFIG_FORMAT_HEX;

	if (config_setting_type(s) == CONFIG_TYPE_INT) {
		int iv = config_setting_get_int(s);

		*v = hex ? (int64_t)(uint32_t)iv : iv;
	} else {
		long long lv = config_setting_get_int64(s);

		if (hex && lv < 0)
			return cfg_err(c, s, "%s must be between 0x%" PRIx64 " and 0x%" PRIx64
				       ", got 0x%llx", cfg_key_name(c, s), (uint64_t)k->min,
				       (uint64_t)k->max, (unsigned long long)lv);
		*v = lv;
	}
	if (*v < 0 && k->min >= 0)
		return cfg_err(c, s, "%s must not be negative, got %" PRId64 " (libconfig reads a"
			       " decimal above 2147483647 as negative: write it in hex or with"
			       " an L suffix)", cfg_key_name(c, s), *v);
	if (*v < k->min || *v > k->max) {
		if (hex)
			return cfg_err(c, s, "%s must be between 0x%" PRIx64 " and 0x%" PRIx64
				       ", got 0x%" PRIx64, cfg_key_name(c, s), (uint64_t)k->min,
				       (uint64_t)k->max, (uint64_t)*v);
		return cfg_err(c, s, "%s must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
			       cfg_key_name(c, s), k->min, k->max, *v);
	}
	return 0;
}

static int
cfg_wrong_type(struct cfg_ctx *c, const config_setting_t *s, const char *want)
{
	return cfg_err(c, s, "%s must be %s, not %s", cfg_key_name(c, s), want,
		       cfg_type_name(config_setting_type(s)));
}

static int
cfg_count(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_key *k)
{
	int64_t n = config_setting_length(s);

	if (n < k->min || n > k->max)
		return cfg_err(c, s, "%s must have %" PRId64 "..%" PRId64 " entries, got %" PRId64,
			       cfg_key_name(c, s), k->min, k->max, n);
	return 0;
}

/* Check that s has the type key k declares and extract its value. */
static int
cfg_value(struct cfg_ctx *c, config_setting_t *s, const struct cfg_key *k, struct cfg_val *v)
{
	int t = config_setting_type(s);
	size_t len;

	switch (k->type) {
	case CT_INT:
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
			return cfg_wrong_type(c, s, "an integer");
		return cfg_int(c, s, k, &v->i);
	case CT_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			return cfg_wrong_type(c, s, "a boolean (true or false)");
		v->b = config_setting_get_bool(s);
		return 0;
	case CT_STRING:
		if (t != CONFIG_TYPE_STRING)
			return cfg_wrong_type(c, s, "a string");
		v->s = config_setting_get_string(s);
		len = strlen(v->s);
		if ((int64_t)len < k->min || (int64_t)len > k->max)
			return cfg_err(c, s, "%s must be %" PRId64 "..%" PRId64 " characters, got %zu",
				       cfg_key_name(c, s), k->min, k->max, len);
		return 0;
	case CT_GROUP:
		if (t != CONFIG_TYPE_GROUP)
			return cfg_wrong_type(c, s, "a group { ... }");
		return 0;
	case CT_LIST:
		/* "()" and "[]" are both empty; a non-empty array cannot hold groups */
		if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
			return cfg_wrong_type(c, s, "a list ( { ... }, ... )");
		return cfg_count(c, s, k);
	case CT_STRINGS:
		if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
			return cfg_wrong_type(c, s, "an array of strings [ \"...\", ... ]");
		return cfg_count(c, s, k);
	}
	return cfg_err(c, s, "internal error: bad key type");
}

static int
cfg_walk(struct cfg_ctx *c, const config_setting_t *grp, const struct cfg_section *sec)
{
	int n = config_setting_length(grp);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(grp, i);

		if (!cfg_find_key(sec, config_setting_name(m)))
			return cfg_unknown_key(c, m, sec);
	}
	for (unsigned int i = 0; i < sec->n_keys; i++) {
		const struct cfg_key *k = &sec->keys[i];
		config_setting_t *m = config_setting_get_member(grp, k->name);
		struct cfg_val v = { 0 };

		if (!m) {
			if (k->required)
				return cfg_err(c, grp, "missing required key \"%s%s\"", c->sub, k->name);
			continue;
		}
		if (cfg_value(c, m, k, &v) < 0 || k->apply(c, m, &v) < 0)
			return -1;
	}
	return 0;
}

/* ---- value parsers shared by several keys ---- */

/* A dotted-quad unicast IPv4 address, network order. */
static int
cfg_unicast(struct cfg_ctx *c, const config_setting_t *s, const char *str, uint32_t *addr)
{
	struct in_addr a;
	uint32_t h;

	if (inet_pton(AF_INET, str, &a) != 1)
		return cfg_err(c, s, "%s \"%s\" is not a dotted-quad IPv4 address",
			       cfg_key_name(c, s), str);
	h = ntohl(a.s_addr);
	if (h == 0 || h == 0xffffffffu || (h >> 28) == 0xe)
		return cfg_err(c, s, "%s %s is not a unicast address (0.0.0.0, multicast and"
			       " broadcast are not allowed)", cfg_key_name(c, s), str);
	*addr = a.s_addr;
	return 0;
}

/* "a.b.c.d/len" or "a.b.c.d" (= /32), host bits clear. */
static int
cfg_prefix(struct cfg_ctx *c, const config_setting_t *s, const char *str, struct natt_ctl_ts *ts)
{
	const char *slash = strchr(str, '/');
	size_t alen = slash ? (size_t)(slash - str) : strlen(str);
	char abuf[INET_ADDRSTRLEN];
	struct in_addr a;
	unsigned int plen = 32;
	uint32_t mask;

	if (alen >= sizeof(abuf))
		goto bad;
	memcpy(abuf, str, alen);
	abuf[alen] = '\0';
	if (inet_pton(AF_INET, abuf, &a) != 1)
		goto bad;
	if (slash) {
		const char *p = slash + 1;

		if (!isdigit((unsigned char)p[0]) || (p[1] && !isdigit((unsigned char)p[1])) ||
		    (p[1] && p[2]))
			goto bad;
		plen = (unsigned int)strtoul(p, NULL, 10);
		if (plen > 32)
			return cfg_err(c, s, "%s \"%s\": prefix length must be 0..32, got %u",
				       cfg_key_name(c, s), str, plen);
	}
	mask = plen ? ~0u << (32 - plen) : 0;
	if (ntohl(a.s_addr) & ~mask) {
		struct in_addr net = { .s_addr = htonl(ntohl(a.s_addr) & mask) };

		inet_ntop(AF_INET, &net, abuf, sizeof(abuf));
		return cfg_err(c, s, "%s \"%s\" has host bits set (did you mean %s/%u?)",
			       cfg_key_name(c, s), str, abuf, plen);
	}
	memset(ts, 0, sizeof(*ts));
	ts->addr = a.s_addr;
	ts->plen = (uint8_t)plen;
	return 0;
bad:
	return cfg_err(c, s, "%s \"%s\" is not an IPv4 prefix a.b.c.d/len",
		       cfg_key_name(c, s), str);
}

static int
cfg_hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* ---- inbound / outbound ---- */

static int
cfg_sa_spi(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	bool in = c->sa == &c->tun->in;
	struct cfg_set *set = in ? &c->in_spi : &c->out_spi;
	int64_t other;

	if (v->i == 0)
		return cfg_err(c, s, "%s 0 is invalid (RFC 4303 2.1)", cfg_key_name(c, s));
	if (v->i < NATT_CFG_MIN_SPI)
		return cfg_err(c, s, "%s %" PRId64 " is in the range 1..255 reserved by IANA"
			       " (RFC 4303 2.1); use 256..0xffffffff", cfg_key_name(c, s), v->i);
	c->sa->spi = (uint32_t)v->i;
	other = cfg_set_insert(c, set, cfg_hash_spi(c->sa->spi), c->tun_idx,
			       in ? cfg_eq_in_spi : cfg_eq_out_spi);
	if (other >= 0)
		return cfg_err(c, s, "%s 0x%08x is already used by tunnel \"%s\" (line %u)",
			       cfg_key_name(c, s), c->sa->spi, c->cfg->tunnels[other].name,
			       c->cfg->tunnels[other].line);
	return 0;
}

/*
 * key = hex of (AES key || 4-byte salt), RFC 4106 section 8.1. The key
 * string is wiped once decoded so that the material does not linger in
 * libconfig's freed heap.
 */
static int
cfg_sa_key(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	size_t len = strlen(v->s), want = 2 * ((size_t)c->tun->key_len + NATT_SALT_LEN);
	uint8_t raw[NATT_MAX_KEY_LEN + NATT_SALT_LEN];
	char cb[8];

	if (len >= 2 && v->s[0] == '0' && (v->s[1] == 'x' || v->s[1] == 'X'))
		return cfg_err(c, s, "%s must be plain hex digits, without a 0x prefix",
			       cfg_key_name(c, s));
	for (size_t i = 0; i < len; i++)
		if (cfg_hex_nibble(v->s[i]) < 0)
			return cfg_err(c, s, "%s has a non-hex character %s at position %zu",
				       cfg_key_name(c, s), cfg_char(v->s[i], cb), i + 1);
	if (len != want)
		return cfg_err(c, s, "%s must be %zu hex digits (%zu bytes: AES-%u key + 4-byte salt)"
			       " for %s, got %zu", cfg_key_name(c, s), want, want / 2,
			       c->tun->key_len * 8u, natt_config_algo_name(c->tun->algo), len);
	for (size_t i = 0; i < want / 2; i++)
		raw[i] = (uint8_t)(cfg_hex_nibble(v->s[2 * i]) << 4 | cfg_hex_nibble(v->s[2 * i + 1]));
	memcpy(c->sa->key, raw, c->tun->key_len);
	memcpy(c->sa->salt, raw + c->tun->key_len, NATT_SALT_LEN);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero((char *)(uintptr_t)v->s, len);

	/* inbound is applied first (table order): same key both ways would
	 * make the two directions share GCM nonces (both count from 1). */
	if (c->sa == &c->tun->out &&
	    memcmp(c->tun->in.key, c->tun->out.key, c->tun->key_len) == 0)
		return cfg_err(c, s, "%s is the same AES key as inbound.key: one key in both"
			       " directions reuses AES-GCM nonces", cfg_key_name(c, s));
	return 0;
}

static const struct cfg_key sa_keys[] = {
	{ "spi", CT_INT, true, 0, UINT32_MAX, cfg_sa_spi },
	{ "key", CT_STRING, true, 0, 4096, cfg_sa_key },
};
static const struct cfg_section sa_section = CFG_SECTION(sa_keys);

static int
cfg_sa(struct cfg_ctx *c, config_setting_t *s, struct natt_cfg_sa *sa, const char *sub)
{
	int rc;

	c->sa = sa;
	c->sub = sub;
	rc = cfg_walk(c, s, &sa_section);
	c->sub = "";
	return rc;
}

/* ---- tunnel ---- */

static bool
cfg_tunnel_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= NATT_NAME_LEN)
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

static int
cfg_tun_name(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	int64_t other;

	if (!cfg_tunnel_name_ok(v->s))
		return cfg_err(c, s, "name \"%s\" may only contain A-Z a-z 0-9 . _ -", v->s);
	strcpy(c->tun->name, v->s);
	other = cfg_set_insert(c, &c->names, cfg_hash_name(v->s), c->tun_idx, cfg_eq_name);
	if (other >= 0)
		return cfg_err(c, s, "name \"%s\" is already used by the tunnel at line %u",
			       v->s, c->cfg->tunnels[other].line);
	return 0;
}

static int
cfg_tun_remote(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	return cfg_unicast(c, s, v->s, &c->tun->remote_addr);
}

static int
cfg_tun_remote_port(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->tun->remote_port = (uint16_t)v->i;
	return 0;
}

static int
cfg_tun_local_port(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->tun->local_port = (uint16_t)v->i;
	return 0;
}

static const struct {
	const char *name;
	uint8_t algo;
	uint8_t key_len;
} cfg_algos[] = {
	{ "aes-gcm-128", NATT_ALGO_AES_GCM_128, 16 },
	{ "aes-gcm-256", NATT_ALGO_AES_GCM_256, 32 },
};

const char *
natt_config_algo_name(unsigned int algo)
{
	for (size_t i = 0; i < sizeof(cfg_algos) / sizeof(cfg_algos[0]); i++)
		if (cfg_algos[i].algo == algo)
			return cfg_algos[i].name;
	return "?";
}

static int
cfg_tun_algorithm(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	for (size_t i = 0; i < sizeof(cfg_algos) / sizeof(cfg_algos[0]); i++) {
		if (strcmp(v->s, cfg_algos[i].name) == 0) {
			c->tun->algo = cfg_algos[i].algo;
			c->tun->key_len = cfg_algos[i].key_len;
			return 0;
		}
	}
	return cfg_err(c, s, "algorithm must be \"aes-gcm-128\" or \"aes-gcm-256\", got \"%s\"",
		       v->s);
}

static int
cfg_tun_esn(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->tun->esn = v->b != 0;
	return 0;
}

static int
cfg_tun_inbound(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)v;
	return cfg_sa(c, s, &c->tun->in, "inbound.");
}

static int
cfg_tun_outbound(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)v;
	return cfg_sa(c, s, &c->tun->out, "outbound.");
}

/* Append the selectors of s to the pool; returns the first index or -1. */
static int64_t
cfg_ts_list(struct cfg_ctx *c, const config_setting_t *s)
{
	struct natt_config *cfg = c->cfg;
	int n = config_setting_length(s);
	uint32_t first = cfg->n_ts;

	if (cfg->n_ts + (uint32_t)n > c->ts_cap) {
		uint32_t cap = c->ts_cap * 2 + NATT_MAX_TS;
		struct natt_ctl_ts *p = realloc(cfg->ts, (size_t)cap * sizeof(*p));

		if (!p)
			return cfg_err(c, s, "out of memory");
		cfg->ts = p;
		c->ts_cap = cap;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return cfg_wrong_type(c, e, "a string \"a.b.c.d/len\"");
		if (cfg_prefix(c, e, config_setting_get_string(e), &cfg->ts[first + i]) < 0)
			return -1;
	}
	cfg->n_ts += (uint32_t)n;
	return first;
}

static int
cfg_tun_remote_ts(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	int64_t first = cfg_ts_list(c, s);

	(void)v;
	if (first < 0)
		return -1;
	c->tun->remote_ts = (uint32_t)first;
	c->tun->n_remote_ts = (uint8_t)config_setting_length(s);
	return 0;
}

static int
cfg_tun_local_ts(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	int64_t first = cfg_ts_list(c, s);

	(void)v;
	if (first < 0)
		return -1;
	c->tun->local_ts = (uint32_t)first;
	c->tun->n_local_ts = (uint8_t)config_setting_length(s);
	return 0;
}

/* Order matters: name first (messages), algorithm before the keys. */
static const struct cfg_key tunnel_keys[] = {
	{ "name", CT_STRING, true, 1, NATT_NAME_LEN - 1, cfg_tun_name },
	{ "remote", CT_STRING, true, 0, 255, cfg_tun_remote },
	{ "remote_port", CT_INT, true, 1, 65535, cfg_tun_remote_port },
	{ "local_port", CT_INT, false, 1, 65535, cfg_tun_local_port },
	{ "algorithm", CT_STRING, true, 0, 255, cfg_tun_algorithm },
	{ "esn", CT_BOOL, true, 0, 0, cfg_tun_esn },
	{ "inbound", CT_GROUP, true, 0, 0, cfg_tun_inbound },
	{ "outbound", CT_GROUP, true, 0, 0, cfg_tun_outbound },
	{ "remote_ts", CT_STRINGS, true, 1, NATT_MAX_TS, cfg_tun_remote_ts },
	{ "local_ts", CT_STRINGS, true, 1, NATT_MAX_TS, cfg_tun_local_ts },
};
static const struct cfg_section tunnel_section = CFG_SECTION(tunnel_keys);

/* Messages name the object once its name is known to be printable. */
static void
cfg_where(struct cfg_ctx *c, const config_setting_t *grp, const char *kind,
	  const char *list, int idx, bool (*name_ok)(const char *))
{
	const char *name = NULL;

	config_setting_lookup_string(grp, "name", &name);
	if (name && name_ok(name))
		snprintf(c->where, sizeof(c->where), "%s \"%s\": ", kind, name);
	else
		snprintf(c->where, sizeof(c->where), "%s[%d]: ", list, idx);
}

/* Route set entries are tunnel * NATT_MAX_TS + selector (fits: 1M * 16). */
static const struct natt_ctl_ts *
cfg_route_of(const struct natt_config *cfg, uint32_t r)
{
	return &cfg->ts[cfg->tunnels[r / NATT_MAX_TS].remote_ts + r % NATT_MAX_TS];
}

static bool
cfg_eq_route(const struct cfg_ctx *c, uint32_t a, uint32_t b)
{
	const struct natt_ctl_ts *x = cfg_route_of(c->cfg, a), *y = cfg_route_of(c->cfg, b);

	return x->addr == y->addr && x->plen == y->plen;
}

/*
 * Outbound packets pick their tunnel by the longest remote_ts prefix that
 * holds the destination. Nested prefixes in different tunnels are fine (the
 * longer wins); the same prefix in two places has no answer: refused.
 */
static int
cfg_routes_unique(struct cfg_ctx *c, config_setting_t *list)
{
	const struct natt_config *cfg = c->cfg;
	struct cfg_set set;
	int rc = 0;

	if (cfg_set_init(&set, cfg->n_ts) < 0)
		return cfg_err(c, list, "out of memory");
	for (uint32_t i = 0; i < cfg->n_tunnels && rc == 0; i++) {
		const struct natt_cfg_tunnel *t = &cfg->tunnels[i];

		for (uint32_t j = 0; j < t->n_remote_ts; j++) {
			const struct natt_ctl_ts *ts = cfg_route_of(cfg, i * NATT_MAX_TS + j);
			int64_t o = cfg_set_insert(c, &set, cfg_hash_spi(ts->addr ^ ts->plen),
						   i * NATT_MAX_TS + j, cfg_eq_route);
			config_setting_t *grp, *e;
			char abuf[INET_ADDRSTRLEN];

			if (o < 0)
				continue;
			grp = config_setting_get_elem(list, i);
			e = config_setting_get_elem(config_setting_lookup(grp, "remote_ts"), j);
			cfg_where(c, grp, "tunnel", "tunnels", (int)i, cfg_tunnel_name_ok);
			inet_ntop(AF_INET, &ts->addr, abuf, sizeof(abuf));
			if (o / NATT_MAX_TS == i)
				rc = cfg_err(c, e, "remote_ts %s/%u is listed twice", abuf, ts->plen);
			else
				rc = cfg_err(c, e, "remote_ts %s/%u is already routed to tunnel"
					     " \"%s\" (line %u)", abuf, ts->plen,
					     cfg->tunnels[o / NATT_MAX_TS].name,
					     cfg->tunnels[o / NATT_MAX_TS].line);
			break;
		}
	}
	cfg_set_free(&set);
	c->where[0] = '\0';
	return rc;
}

static int
cfg_tunnels(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	struct natt_config *cfg = c->cfg;
	uint32_t n = (uint32_t)config_setting_length(s);

	(void)v;
	cfg->tunnels = calloc(n ? n : 1, sizeof(*cfg->tunnels));
	c->ts_cap = 2 * n;
	cfg->ts = malloc(((size_t)c->ts_cap + 1) * sizeof(*cfg->ts));
	if (!cfg->tunnels || !cfg->ts || cfg_set_init(&c->names, n) < 0 ||
	    cfg_set_init(&c->in_spi, n) < 0 || cfg_set_init(&c->out_spi, n) < 0)
		return cfg_err(c, s, "out of memory for %u tunnels", n);

	for (uint32_t i = 0; i < n; i++) {
		config_setting_t *t = config_setting_get_elem(s, i);

		snprintf(c->where, sizeof(c->where), "tunnels[%u]: ", i);
		if (config_setting_type(t) != CONFIG_TYPE_GROUP)
			return cfg_err(c, t, "must be a group { ... }, not %s",
				       cfg_type_name(config_setting_type(t)));
		cfg_where(c, t, "tunnel", "tunnels", (int)i, cfg_tunnel_name_ok);
		c->tun = &cfg->tunnels[i];
		c->tun_idx = i;
		c->tun->line = config_setting_source_line(t);
		c->tun->local_port = NATT_CFG_DEFAULT_LOCAL_PORT;
		cfg->n_tunnels = i + 1; /* natt_config_free() wipes what was decoded */
		if (cfg_walk(c, t, &tunnel_section) < 0)
			return -1;
	}
	c->where[0] = '\0';
	return cfg_routes_unique(c, s);
}

/* ---- interfaces ---- */

static bool
cfg_iface_name_ok(const char *n)
{
	size_t len = strlen(n);

	for (size_t i = 0; i < len; i++)
		if (!isprint((unsigned char)n[i]) || n[i] == '"')
			return false;
	return len > 0 && len < NATT_NAME_LEN;
}

static int
cfg_if_name(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	if (!cfg_iface_name_ok(v->s))
		return cfg_err(c, s, "name must be printable and must not contain '\"'");
	for (struct natt_cfg_iface *o = c->cfg->iface; o < c->ifc; o++)
		if (strcmp(o->name, v->s) == 0)
			return cfg_err(c, s, "name \"%s\" is already used by the interface at line %u",
				       v->s, o->line);
	strcpy(c->ifc->name, v->s);
	return 0;
}

static int
cfg_if_port(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	int8_t *owner = &c->port_owner[v->i];

	if (*owner >= 0)
		return cfg_err(c, s, "port %" PRId64 " is already used by interface \"%s\" (line %u)",
			       v->i, c->cfg->iface[*owner].name, c->cfg->iface[*owner].line);
	*owner = (int8_t)(c->ifc - c->cfg->iface);
	c->ifc->port = (uint16_t)v->i;
	return 0;
}

static int
cfg_if_role(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	uint8_t role;
	int8_t *owner;

	if (strcmp(v->s, "outside") == 0)
		role = NATT_ROLE_OUTSIDE;
	else if (strcmp(v->s, "inside") == 0)
		role = NATT_ROLE_INSIDE;
	else
		return cfg_err(c, s, "role must be \"outside\" or \"inside\", got \"%s\"", v->s);
	owner = &c->role_owner[role];
	if (*owner >= 0)
		return cfg_err(c, s, "role \"%s\" is already taken by interface \"%s\" (line %u);"
			       " exactly one interface must have it", v->s,
			       c->cfg->iface[*owner].name, c->cfg->iface[*owner].line);
	*owner = (int8_t)(c->ifc - c->cfg->iface);
	c->ifc->role = role;
	return 0;
}

static int
cfg_if_address(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	return cfg_unicast(c, s, v->s, &c->ifc->addr);
}

static int
cfg_if_mac(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	uint8_t *mac = c->ifc->next_hop_mac;

	if (strlen(v->s) != 17)
		goto bad;
	for (int i = 0; i < 6; i++) {
		const char *p = v->s + 3 * i;
		int hi = cfg_hex_nibble(p[0]), lo = cfg_hex_nibble(p[1]);

		if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':'))
			goto bad;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mac[0] & 1)
		return cfg_err(c, s, "next_hop_mac %s is a multicast/broadcast address", v->s);
	if ((mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0)
		return cfg_err(c, s, "next_hop_mac must not be 00:00:00:00:00:00");
	return 0;
bad:
	return cfg_err(c, s, "next_hop_mac \"%s\" is not a MAC address xx:xx:xx:xx:xx:xx", v->s);
}

static int
cfg_if_mtu(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->ifc->mtu = (uint16_t)v->i;
	return 0;
}

static const struct cfg_key iface_keys[] = {
	{ "name", CT_STRING, true, 1, NATT_NAME_LEN - 1, cfg_if_name },
	{ "port", CT_INT, true, 0, NATT_MAX_PORTS - 1, cfg_if_port },
	{ "role", CT_STRING, true, 0, 255, cfg_if_role },
	{ "address", CT_STRING, true, 0, 255, cfg_if_address },
	{ "next_hop_mac", CT_STRING, true, 0, 255, cfg_if_mac },
	{ "mtu", CT_INT, true, 576, 9216, cfg_if_mtu },
};
static const struct cfg_section iface_section = CFG_SECTION(iface_keys);

static int
cfg_interfaces(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	struct natt_config *cfg = c->cfg;
	int n = config_setting_length(s);

	(void)v;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);

		snprintf(c->where, sizeof(c->where), "interfaces[%d]: ", i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return cfg_err(c, e, "must be a group { ... }, not %s",
				       cfg_type_name(config_setting_type(e)));
		cfg_where(c, e, "interface", "interfaces", i, cfg_iface_name_ok);
		c->ifc = &cfg->iface[i];
		c->ifc->line = config_setting_source_line(e);
		if (cfg_walk(c, e, &iface_section) < 0)
			return -1;
		cfg->n_ifaces = (uint32_t)i + 1;
	}
	c->where[0] = '\0';
	if (c->role_owner[NATT_ROLE_OUTSIDE] < 0)
		return cfg_err(c, s, "interfaces: no interface has role \"outside\""
			       " (exactly one is required)");
	if (c->role_owner[NATT_ROLE_INSIDE] < 0)
		return cfg_err(c, s, "interfaces: no interface has role \"inside\""
			       " (exactly one is required)");
	cfg->outside = (uint8_t)c->role_owner[NATT_ROLE_OUTSIDE];
	cfg->inside = (uint8_t)c->role_owner[NATT_ROLE_INSIDE];
	return 0;
}

/* ---- dataplane and top level ---- */

static int
cfg_dp_replay_window(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->cfg->replay_window = (uint16_t)v->i;
	return 0;
}

static int
cfg_dp_mss_clamp(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	if (v->i != 0 && v->i < NATT_CFG_MIN_MSS)
		return cfg_err(c, s, "mss_clamp must be 0 (off) or at least %u, got %" PRId64,
			       NATT_CFG_MIN_MSS, v->i);
	c->cfg->mss_clamp = (int32_t)v->i;
	return 0;
}

static int
cfg_dp_df(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	static const char *const modes[] = {
		[NATT_DF_COPY] = "copy", [NATT_DF_SET] = "set", [NATT_DF_CLEAR] = "clear",
	};

	for (uint8_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(v->s, modes[i]) == 0) {
			c->cfg->df_mode = i;
			return 0;
		}
	}
	return cfg_err(c, s, "df must be \"copy\", \"set\" or \"clear\", got \"%s\"", v->s);
}

static int
cfg_dp_icmp_rate(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->cfg->icmp_rate = (uint32_t)v->i;
	return 0;
}

static const struct cfg_key dataplane_keys[] = {
	{ "replay_window", CT_INT, false, 0, NATT_MAX_REPLAY_WINDOW, cfg_dp_replay_window },
	{ "mss_clamp", CT_INT, false, 0, 65495, cfg_dp_mss_clamp },
	{ "df", CT_STRING, false, 0, 255, cfg_dp_df },
	{ "icmp_rate", CT_INT, false, 0, 1000000, cfg_dp_icmp_rate },
};
static const struct cfg_section dataplane_section = CFG_SECTION(dataplane_keys);

static int
cfg_dataplane(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	int rc;

	(void)v;
	c->sub = "dataplane.";
	rc = cfg_walk(c, s, &dataplane_section);
	c->sub = "";
	return rc;
}

static const struct cfg_key root_keys[] = {
	{ "dataplane", CT_GROUP, false, 0, 0, cfg_dataplane },
	{ "interfaces", CT_LIST, true, 1, NATT_CFG_MAX_IFACES, cfg_interfaces },
	{ "tunnels", CT_LIST, true, 0, NATT_CFG_MAX_TUNNELS, cfg_tunnels },
};
static const struct cfg_section root_section = CFG_SECTION(root_keys);

/* ---- entry points ---- */

static int
cfg_build(config_t *lc, const char *name, struct natt_config *out, char *err, size_t errlen)
{
	struct cfg_ctx c = {
		.path = name, .err = err, .errlen = errlen, .sub = "", .cfg = out,
	};
	int rc;

	memset(c.port_owner, -1, sizeof(c.port_owner));
	memset(c.role_owner, -1, sizeof(c.role_owner));
	out->replay_window = NATT_CFG_DEFAULT_REPLAY_WINDOW;
	out->mss_clamp = -1;
	out->df_mode = NATT_DF_COPY;
	out->icmp_rate = NATT_CFG_DEFAULT_ICMP_RATE;
	rc = cfg_walk(&c, config_root_setting(lc), &root_section);
	cfg_set_free(&c.names);
	cfg_set_free(&c.in_spi);
	cfg_set_free(&c.out_spi);
	if (rc < 0)
		natt_config_free(out);
	return rc;
}

static config_t *
cfg_init(config_t *lc)
{
	config_init(lc);
	/* keep libconfig's defaults, but never turn an int into a float */
	config_set_options(lc, config_get_options(lc) & ~CONFIG_OPTION_AUTOCONVERT);
	return lc;
}

static int
cfg_read_error(const config_t *lc, const char *name, int saved_errno, char *err, size_t errlen)
{
	if (errlen == 0)
		return -1;
	if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
		snprintf(err, errlen, "%s: cannot read: %s", name,
			 saved_errno ? strerror(saved_errno) : config_error_text(lc));
	else
		snprintf(err, errlen, "%s:%d: %s", config_error_file(lc) ? config_error_file(lc) : name,
			 config_error_line(lc), config_error_text(lc));
	return -1;
}

int
natt_config_load(const char *path, struct natt_config *out, char *err, size_t errlen)
{
	config_t lc;
	int rc;

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = '\0';
	cfg_init(&lc);
	errno = 0;
	if (!config_read_file(&lc, path))
		rc = cfg_read_error(&lc, path, errno, err, errlen);
	else
		rc = cfg_build(&lc, path, out, err, errlen);
	config_destroy(&lc);
	return rc;
}

int
natt_config_parse_string(const char *text, const char *name, struct natt_config *out,
			 char *err, size_t errlen)
{
	config_t lc;
	int rc;

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = '\0';
	cfg_init(&lc);
	if (!config_read_string(&lc, text))
		rc = cfg_read_error(&lc, name, 0, err, errlen);
	else
		rc = cfg_build(&lc, name, out, err, errlen);
	config_destroy(&lc);
	return rc;
}

void
natt_config_free(struct natt_config *cfg)
{
	if (cfg->tunnels) {
		explicit_bzero(cfg->tunnels, (size_t)cfg->n_tunnels * sizeof(*cfg->tunnels));
		free(cfg->tunnels);
	}
	free(cfg->ts);
	memset(cfg, 0, sizeof(*cfg));
}
