/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.c - libconfig file -> struct natt_config.
 *
 * Every level of the file (top, dataplane, interface, tunnel, inbound/outbound)
 * is a table of struct cfg_key. cfg_walk() runs one table over one libconfig
 * group in two passes:
 *   1. every member, in file order, must be a key of the table (unknown keys
 *      are errors: a typo must not silently fall back to a default);
 *   2. every key, in table order, is type- and range-checked and handed to
 *      its apply() hook, which does the semantic checks and stores the
 *      value. Table order is what lets a hook rely on an earlier key (the key
 *      length depends on the algorithm, outbound.key is compared with
 *      inbound.key).
 * Adding a key is one table line and, usually, one small hook.
 *
 * The first error stops parsing; it is formatted "FILE:LINE: reason" with the
 * file and line libconfig recorded for the offending setting. "First" is in
 * the order of that walk: syntax errors (libconfig reads the whole file
 * before anything is walked), then the top-level keys in table order, the
 * tunnels one after the other, and last the remote_ts of all tunnels.
 *
 * Scale: up to NATT_CFG_MAX_TUNNELS tunnels, loaded in linear time. A tunnel
 * is first checked on its own (cfg_tunnel_walk); what involves other tunnels
 * (unique names and SPIs, cfg_cross(), and unique remote_ts, cfg_routes())
 * is checked afterwards through open-addressing hash sets, in the order the
 * walk met the keys, so that the error is the one a walk checking everything
 * as it goes would stop at: the per-tunnel walk records which cross-tunnel
 * keys the failing tunnel got through (cfg_ctx.reached).
 *
 * Big texts are parsed in parallel (cfg_split_load). A lexical scan (strings,
 * escapes, comments, brackets; cfg_scan) finds the top-level "tunnels = (...)"
 * list and cuts its elements into pieces of CFG_PIECE_TUNNELS. Threads take
 * the pieces in turn: libconfig parses each one as "tunnels=(...)" from a
 * stream over the file's bytes, its line numbers offset to the file's, the
 * tunnels are walked into their slots of natt_config.tunnels, and the tree is
 * freed at once. The rest of the file is parsed with the list emptied. As
 * libconfig's lexer and parser see the same tokens in the same states as in
 * one parse of the whole file, the result is the same, and so is the first
 * error: the earliest syntax error (before the list, in it, after it), else
 * the first semantic one in walk order. Whatever the scan is unsure of
 * (@include, unbalanced brackets, an empty element, ...) is parsed in one go.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"

#define CFG_PIECE_TUNNELS 256    /* default tunnels per piece of a split parse */
#define CFG_WIPE_GROUP 64        /* pieces whose text is given back at once */
#define CFG_MAX_SECTION_KEYS 16
#define CFG_SCAN_DEPTH 64        /* deeper nesting: parsed in one go */

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
	size_t len;  /* of s */
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

/* Where a setting was written, kept for checks made after its tree is gone. */
struct cfg_src {
	uint32_t line;
	uint32_t file;   /* 0: cfg_ctx.path, else cfg_ctx.files[file - 1] */
};

/* The settings of one tunnel that checks across tunnels report. */
struct cfg_tsrc {
	struct cfg_src name, in_spi, out_spi;
};

/* Cross-tunnel checks a tunnel got to (its values there were valid). */
enum {
	CFG_X_NAME = 1,
	CFG_X_IN_SPI = 2,
	CFG_X_OUT_SPI = 4,
	CFG_X_ALL = 7,
};

/* Selectors of a run of tunnels, with where each was written. */
struct cfg_pool {
	struct natt_ctl_ts *ts;
	struct cfg_src *src;
	uint32_t n, cap;
};

/* What cfg_err() puts in front of the reason: 'tunnel "rw-1": ', 'tunnels[3]: '. */
struct cfg_where {
	const char *list;                 /* NULL: nothing */
	const char *kind;
	uint32_t idx;
	const config_setting_t *grp;      /* named by its "name" member if valid */
	const char *name;                 /* or by this name, known valid */
	bool (*name_ok)(const char *);
};

/*
 * libconfig's line numbers -> the file's: a piece of a split file starts on
 * line line0 + 1; the rest of it lacks 'shift' newlines after line 'after'.
 */
struct cfg_lines {
	unsigned int line0, after, shift;
};

#define CFG_LINES_SAME ((struct cfg_lines){ .after = UINT_MAX })

static unsigned int
cfg_file_line(const struct cfg_lines *m, unsigned int l)
{
	return m->line0 + l + (l > m->after ? m->shift : 0);
}

struct cfg_split;

struct cfg_ctx {
	const char *path;        /* file name when libconfig recorded none */
	char *err;
	size_t errlen;
	struct cfg_lines lines;
	struct cfg_where w;
	const char *sub;         /* "inbound." while inside an SA group */
	char keybuf[64];
	struct natt_config *cfg;
	struct natt_cfg_iface *ifc;
	struct natt_cfg_tunnel *tun;
	struct cfg_tsrc *tsrc;   /* per tunnel, indexed like cfg->tunnels */
	struct cfg_pool *pool;   /* where the selectors go */
	struct natt_cfg_sa *sa;
	uint32_t tun_idx;
	uint8_t reached;         /* CFG_X_* of tunnel tun_idx */
	int8_t port_owner[NATT_CFG_MAX_IFACES]; /* iface index using a port, -1 */
	int8_t role_owner[3];                   /* by enum natt_if_role */
	const char **files;      /* file names libconfig recorded (@include) */
	uint32_t n_files, last_file;
	struct cfg_split *split; /* parallel load: the walked pieces */
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

/* The root group has no line; report file-level problems on line 1. */
static struct cfg_src
cfg_src(struct cfg_ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;
	unsigned int l = s ? config_setting_source_line(s) : 0;
	struct cfg_src src = { .line = l ? cfg_file_line(&c->lines, l) : 1, .file = 0 };
	const char **grown;

	if (!f)
		return src;
	if (c->n_files && c->files[c->last_file] == f) {
		src.file = c->last_file + 1;
		return src;
	}
	for (uint32_t i = 0; i < c->n_files; i++) {
		if (c->files[i] == f) {
			c->last_file = i;
			src.file = i + 1;
			return src;
		}
	}
	grown = realloc(c->files, (c->n_files + 1) * sizeof(*grown));
	if (!grown)
		return src; /* named after c->path: the same file unless @include */
	c->files = grown;
	c->files[c->n_files] = f;
	c->last_file = c->n_files++;
	src.file = c->n_files;
	return src;
}

static void
cfg_where_render(const struct cfg_ctx *c, char *buf, size_t len)
{
	const struct cfg_where *w = &c->w;
	const char *name = w->name;

	if (!w->list) {
		buf[0] = '\0';
		return;
	}
	if (!name && w->grp && !config_setting_lookup_string(w->grp, "name", &name))
		name = NULL;
	if (name && (w->name || w->name_ok(name)))
		snprintf(buf, len, "%s \"%s\": ", w->kind, name);
	else
		snprintf(buf, len, "%s[%" PRIu32 "]: ", w->list, w->idx);
}

static int __attribute__((format(printf, 3, 0)))
cfg_verr(struct cfg_ctx *c, struct cfg_src src, const char *fmt, va_list ap)
{
	char where[NATT_NAME_LEN + 32];
	int n;

	if (c->errlen == 0)
		return -1;
	cfg_where_render(c, where, sizeof(where));
	n = snprintf(c->err, c->errlen, "%s:%" PRIu32 ": %s",
		     src.file ? c->files[src.file - 1] : c->path, src.line, where);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	return -1;
}

static int __attribute__((format(printf, 3, 4)))
cfg_err(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verr(c, cfg_src(c, s), fmt, ap);
	va_end(ap);
	return -1;
}

static int __attribute__((format(printf, 3, 4)))
cfg_err_at(struct cfg_ctx *c, struct cfg_src src, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verr(c, src, fmt, ap);
	va_end(ap);
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

/* Wipe every string of a tree before libconfig frees it: keys that no hook
 * got to (the walk stopped at an error) must not linger in the heap. */
static void
cfg_wipe_tree(const config_setting_t *s)
{
	int t = config_setting_type(s);

	if (t == CONFIG_TYPE_STRING) {
		const char *v = config_setting_get_string(s);

		if (v)
			explicit_bzero((char *)(uintptr_t)v, strlen(v));
	} else if (t == CONFIG_TYPE_GROUP || t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
		for (int i = config_setting_length(s) - 1; i >= 0; i--)
			cfg_wipe_tree(config_setting_get_elem(s, i));
	}
}

/* ---- hash sets for uniqueness ---- */

/*
 * Open addressing, linear probing. A slot holds a 32-bit tag of the key
 * (the SPI itself, a hash of a name or prefix) and the index of its owner
 * + 1 (0 = empty), so that most probes need no look at the owner itself.
 * Sized for at most half load: a free slot always exists.
 */
struct cfg_set {
	uint64_t *slot;
	uint32_t mask;
};

static int
cfg_set_init(struct cfg_set *set, uint32_t n)
{
	uint32_t cap = 16;

	while (cap < 2 * (uint64_t)n)
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
cfg_hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static uint32_t
cfg_set_pos(const struct cfg_set *set, uint32_t tag)
{
	return (uint32_t)((tag * 0x9e3779b97f4a7c15ull) >> 32) & set->mask; /* Fibonacci */
}

static void
cfg_set_prefetch(const struct cfg_set *set, uint32_t tag)
{
	__builtin_prefetch(&set->slot[cfg_set_pos(set, tag)], 1);
}

/*
 * Insert idx under tag; eq() says whether the owner of a slot with the same
 * tag has the same key. Returns that earlier owner, or -1 once idx is in.
 */
static int64_t
cfg_set_insert(const struct cfg_ctx *c, struct cfg_set *set, uint32_t tag, uint32_t idx,
	       bool (*eq)(const struct cfg_ctx *, uint32_t a, uint32_t b))
{
	uint64_t want = (uint64_t)tag << 32;

	for (uint32_t i = cfg_set_pos(set, tag);; i = (i + 1) & set->mask) {
		uint64_t v = set->slot[i];

		if (v == 0) {
			set->slot[i] = want | (idx + 1);
			return -1;
		}
		if ((v & ~0xffffffffull) == want && (!eq || eq(c, (uint32_t)v - 1, idx)))
			return (uint32_t)v - 1;
	}
}

/* ---- the generic walker ---- */

/* Index of key name in sec, or -1; members usually come in table order, so
 * the key after the previous member's is tried first. */
static int
cfg_find_key(const struct cfg_section *sec, const char *name, unsigned int hint)
{
	if (hint < sec->n_keys && strcmp(sec->keys[hint].name, name) == 0)
		return (int)hint;
	for (unsigned int i = 0; i < sec->n_keys; i++)
		if (strcmp(sec->keys[i].name, name) == 0)
			return (int)i;
	return -1;
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

static int64_t cfg_length(const struct cfg_ctx *c, const config_setting_t *s);

static int
cfg_count(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_key *k)
{
	int64_t n = cfg_length(c, s);

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
		v->len = strlen(v->s);
		if ((int64_t)v->len < k->min || (int64_t)v->len > k->max)
			return cfg_err(c, s, "%s must be %" PRId64 "..%" PRId64 " characters, got %zu",
				       cfg_key_name(c, s), k->min, k->max, v->len);
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
cfg_walk(struct cfg_ctx *c, config_setting_t *grp, const struct cfg_section *sec)
{
	config_setting_t *member[CFG_MAX_SECTION_KEYS] = { NULL };
	int n = config_setting_length(grp);
	unsigned int hint = 0;

	/* libconfig refuses two members of a group with the same name, so each
	 * key has at most one member */
	for (int i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(grp, i);
		int k = cfg_find_key(sec, config_setting_name(m), hint);

		if (k < 0)
			return cfg_unknown_key(c, m, sec);
		member[k] = m;
		hint = (unsigned int)k + 1;
	}
	for (unsigned int i = 0; i < sec->n_keys; i++) {
		const struct cfg_key *k = &sec->keys[i];
		struct cfg_val v = { 0 };

		if (!member[i]) {
			if (k->required)
				return cfg_err(c, grp, "missing required key \"%s%s\"", c->sub, k->name);
			continue;
		}
		if (cfg_value(c, member[i], k, &v) < 0 || k->apply(c, member[i], &v) < 0)
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

/* value + 1 of a hex digit, 0 for anything else */
static const uint8_t cfg_hex1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int
cfg_hex_nibble(char ch)
{
	return cfg_hex1[(uint8_t)ch] - 1;
}

/* ---- inbound / outbound ---- */

static int
cfg_sa_spi(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	bool in = c->sa == &c->tun->in;

	if (v->i == 0)
		return cfg_err(c, s, "%s 0 is invalid (RFC 4303 2.1)", cfg_key_name(c, s));
	if (v->i < NATT_CFG_MIN_SPI)
		return cfg_err(c, s, "%s %" PRId64 " is in the range 1..255 reserved by IANA"
			       " (RFC 4303 2.1); use 256..0xffffffff", cfg_key_name(c, s), v->i);
	c->sa->spi = (uint32_t)v->i;
	/* unique in its direction: cfg_cross() */
	if (in) {
		c->tsrc[c->tun_idx].in_spi = cfg_src(c, s);
		c->reached |= CFG_X_IN_SPI;
	} else {
		c->tsrc[c->tun_idx].out_spi = cfg_src(c, s);
		c->reached |= CFG_X_OUT_SPI;
	}
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
	size_t len = v->len, want = 2 * ((size_t)c->tun->key_len + NATT_SALT_LEN);
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
	size_t len = 0;

	for (; n[len]; len++) {
		char ch = n[len];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return len > 0 && len < NATT_NAME_LEN;
}

static int
cfg_tun_name(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	if (!cfg_tunnel_name_ok(v->s))
		return cfg_err(c, s, "name \"%s\" may only contain A-Z a-z 0-9 . _ -", v->s);
	memcpy(c->tun->name, v->s, v->len + 1);
	/* unique: cfg_cross() */
	c->tsrc[c->tun_idx].name = cfg_src(c, s);
	c->reached |= CFG_X_NAME;
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
cfg_tun_keepalive(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->tun->keepalive = (uint16_t)v->i;
	return 0;
}

static int
cfg_tun_nat_mapping(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	if (strcmp(v->s, "follow") == 0)
		c->tun->pin_mapping = false;
	else if (strcmp(v->s, "pin") == 0)
		c->tun->pin_mapping = true;
	else
		return cfg_err(c, s, "nat_mapping_change must be \"follow\" or \"pin\", got \"%s\"",
			       v->s);
	return 0;
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
	struct cfg_pool *pool = c->pool;
	int n = config_setting_length(s);
	uint32_t first = pool->n;

	if (pool->n + (uint32_t)n > pool->cap) {
		uint32_t cap = pool->cap * 2 + NATT_MAX_TS;
		struct natt_ctl_ts *ts = realloc(pool->ts, (size_t)cap * sizeof(*ts));
		struct cfg_src *src;

		if (ts)
			pool->ts = ts;
		src = ts ? realloc(pool->src, (size_t)cap * sizeof(*src)) : NULL;
		if (!src)
			return cfg_err(c, s, "out of memory");
		pool->src = src;
		pool->cap = cap;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return cfg_wrong_type(c, e, "a string \"a.b.c.d/len\"");
		if (cfg_prefix(c, e, config_setting_get_string(e), &pool->ts[first + i]) < 0)
			return -1;
		pool->src[first + i] = cfg_src(c, e);
	}
	pool->n += (uint32_t)n;
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
	{ "keepalive", CT_INT, false, 0, NATT_CFG_MAX_KEEPALIVE, cfg_tun_keepalive },
	{ "nat_mapping_change", CT_STRING, false, 0, 255, cfg_tun_nat_mapping },
};
static const struct cfg_section tunnel_section = CFG_SECTION(tunnel_keys);

_Static_assert(sizeof(tunnel_keys) / sizeof(tunnel_keys[0]) <= CFG_MAX_SECTION_KEYS,
	       "cfg_walk() holds the members of a group on the stack");

/*
 * Check tunnels list[0..n) on their own into cfg->tunnels[first..]. On an
 * error, c->tun_idx is the tunnel and c->reached the cross-tunnel checks
 * its walk got to before the error.
 */
static int
cfg_tunnel_walk(struct cfg_ctx *c, const config_setting_t *list, uint32_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		config_setting_t *t = config_setting_get_elem(list, i);
		uint32_t idx = first + i;

		c->w = (struct cfg_where){ .list = "tunnels", .idx = idx };
		c->tun_idx = idx;
		c->reached = 0;
		if (config_setting_type(t) != CONFIG_TYPE_GROUP)
			return cfg_err(c, t, "must be a group { ... }, not %s",
				       cfg_type_name(config_setting_type(t)));
		c->w.grp = t;
		c->w.kind = "tunnel";
		c->w.name_ok = cfg_tunnel_name_ok;
		c->tun = &c->cfg->tunnels[idx];
		c->tun->line = cfg_src(c, t).line;
		c->tun->local_port = NATT_CFG_DEFAULT_LOCAL_PORT;
		if (cfg_walk(c, t, &tunnel_section) < 0)
			return -1;
	}
	c->w.list = NULL;
	return 0;
}

/* ---- checks across tunnels ---- */

static bool
cfg_eq_name(const struct cfg_ctx *c, uint32_t a, uint32_t b)
{
	return strcmp(c->cfg->tunnels[a].name, c->cfg->tunnels[b].name) == 0;
}

/* Messages about tunnel t once its name is known to be valid. */
static void
cfg_where_tunnel(struct cfg_ctx *c, uint32_t t)
{
	c->w = (struct cfg_where){ .list = "tunnels", .kind = "tunnel", .idx = t,
				   .name = c->cfg->tunnels[t].name };
}

/*
 * Unique names and SPIs, in walk order: tunnels [0, n_ok) passed their own
 * checks; tunnel n_ok (if it exists) failed after reaching the checks in
 * 'reached'. An error here comes before that tunnel's own.
 */
static int
cfg_cross(struct cfg_ctx *c, uint32_t n_ok, uint8_t reached)
{
	const struct natt_cfg_tunnel *tun = c->cfg->tunnels;
	uint32_t end = n_ok < c->cfg->n_tunnels ? n_ok + 1 : n_ok;
	struct cfg_set names = { 0 }, in = { 0 }, out = { 0 };
	int rc = 0;

	if (cfg_set_init(&names, end) < 0 || cfg_set_init(&in, end) < 0 ||
	    cfg_set_init(&out, end) < 0) {
		rc = cfg_err(c, NULL, "out of memory for %" PRIu32 " tunnels", c->cfg->n_tunnels);
		goto out;
	}
	for (uint32_t t = 0; t < end && rc == 0; t++) {
		uint8_t x = t < n_ok ? CFG_X_ALL : reached;
		int64_t o;

		if (t + 8 < n_ok) {
			cfg_set_prefetch(&in, tun[t + 8].in.spi);
			cfg_set_prefetch(&out, tun[t + 8].out.spi);
		}
		if ((x & CFG_X_NAME) &&
		    (o = cfg_set_insert(c, &names, cfg_hash_name(tun[t].name), t, cfg_eq_name)) >= 0) {
			cfg_where_tunnel(c, t);
			rc = cfg_err_at(c, c->tsrc[t].name, "name \"%s\" is already used by the"
					" tunnel at line %u", tun[t].name, tun[o].line);
		} else if ((x & CFG_X_IN_SPI) &&
			   (o = cfg_set_insert(c, &in, tun[t].in.spi, t, NULL)) >= 0) {
			cfg_where_tunnel(c, t);
			rc = cfg_err_at(c, c->tsrc[t].in_spi, "inbound.spi 0x%08" PRIx32 " is already"
					" used by tunnel \"%s\" (line %u)", tun[t].in.spi,
					tun[o].name, tun[o].line);
		} else if ((x & CFG_X_OUT_SPI) &&
			   (o = cfg_set_insert(c, &out, tun[t].out.spi, t, NULL)) >= 0) {
			cfg_where_tunnel(c, t);
			rc = cfg_err_at(c, c->tsrc[t].out_spi, "outbound.spi 0x%08" PRIx32 " is"
					" already used by tunnel \"%s\" (line %u)", tun[t].out.spi,
					tun[o].name, tun[o].line);
		}
	}
out:
	cfg_set_free(&names);
	cfg_set_free(&in);
	cfg_set_free(&out);
	c->w.list = NULL;
	return rc;
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
 * src[] says where each selector of cfg->ts was written.
 */
static int
cfg_routes(struct cfg_ctx *c, const struct cfg_src *src)
{
	const struct natt_config *cfg = c->cfg;
	struct cfg_set set;
	int rc = 0;

	if (cfg_set_init(&set, cfg->n_ts) < 0)
		return cfg_err(c, NULL, "out of memory for %" PRIu32 " tunnels", cfg->n_tunnels);
	for (uint32_t i = 0; i < cfg->n_tunnels && rc == 0; i++) {
		const struct natt_cfg_tunnel *t = &cfg->tunnels[i];

		for (uint32_t j = 0; j < t->n_remote_ts; j++) {
			const struct natt_ctl_ts *ts = &cfg->ts[t->remote_ts + j];
			int64_t o = cfg_set_insert(c, &set, ts->addr * 33u ^ ts->plen,
						   i * NATT_MAX_TS + j, cfg_eq_route);
			char abuf[INET_ADDRSTRLEN];

			if (o < 0)
				continue;
			cfg_where_tunnel(c, i);
			inet_ntop(AF_INET, &ts->addr, abuf, sizeof(abuf));
			if (o / NATT_MAX_TS == i)
				rc = cfg_err_at(c, src[t->remote_ts + j],
						"remote_ts %s/%u is listed twice", abuf, ts->plen);
			else
				rc = cfg_err_at(c, src[t->remote_ts + j], "remote_ts %s/%u is"
						" already routed to tunnel \"%s\" (line %u)", abuf,
						ts->plen, cfg->tunnels[o / NATT_MAX_TS].name,
						cfg->tunnels[o / NATT_MAX_TS].line);
			break;
		}
	}
	cfg_set_free(&set);
	c->w.list = NULL;
	return rc;
}

/* ---- the tunnels list ---- */

enum cfg_piece_state {
	PIECE_TODO,
	PIECE_OK,       /* parsed and walked */
	PIECE_PARSED,   /* parsed, not walked: an earlier piece failed its walk */
	PIECE_SYNTAX,   /* libconfig refused it */
	PIECE_BAD,      /* tunnel 'bad' failed its own checks */
	PIECE_ODD,      /* not what the scan promised, or out of memory */
};

/* A run of consecutive elements of the tunnels list, parsed on its own. */
struct cfg_piece {
	size_t off, len;            /* its text: text[off, off + len) */
	unsigned int line0;         /* line of text[off], less one */
	uint32_t first, n;          /* its tunnels: [first, first + n) */
	uint8_t state;              /* enum cfg_piece_state */
	uint8_t reached;            /* PIECE_BAD: of tunnel 'bad' */
	bool wiped;                 /* text wiped */
	uint32_t bad;
	char *err;                  /* PIECE_SYNTAX, PIECE_BAD: the message, errlen bytes */
	struct cfg_pool pool;       /* its selectors; indexes in its tunnels are local */
};

struct cfg_split {
	const char *text;           /* text[len] is NUL */
	size_t len;
	bool own;                   /* a copy of ours: wiped once parsed */
	const char *name;           /* for messages */
	size_t lo, hi;              /* offsets of the list's '(' and ')' */
	unsigned int body_lines;    /* newlines between them */
	struct cfg_lines rest_lines; /* of the rest: one newline between them */
	uint32_t n;                 /* elements of the list */
	struct cfg_piece *piece;
	uint32_t n_pieces, cap_pieces;
	const config_setting_t *list; /* the emptied list in the rest's tree */
	struct natt_config *cfg;    /* tunnels[] is written by index */
	struct cfg_tsrc *tsrc;
	size_t errlen;
	atomic_uint next;           /* next piece to take */
	atomic_uint syntax_at;      /* first piece libconfig refused, or n_pieces */
	atomic_uint bad_at;         /* first piece whose walk failed, or n_pieces */
	atomic_bool odd;            /* give up: parse the whole text in one go */
	atomic_uint *wiped;         /* pieces wiped, per CFG_WIPE_GROUP (own text) */
};

/* Entries of list s; the emptied tunnels list of a split parse has them elsewhere. */
static int64_t
cfg_length(const struct cfg_ctx *c, const config_setting_t *s)
{
	if (c->split && s == c->split->list)
		return c->split->n;
	return config_setting_length(s);
}

/* The whole list is in s (one parse of the whole text). */
static int
cfg_tunnels_one(struct cfg_ctx *c, config_setting_t *s)
{
	struct natt_config *cfg = c->cfg;
	uint32_t n = (uint32_t)config_setting_length(s);
	struct cfg_pool pool = { .cap = 2 * n };
	int bad, rc;

	cfg->tunnels = calloc(n ? n : 1, sizeof(*cfg->tunnels));
	c->tsrc = malloc((n ? n : 1) * sizeof(*c->tsrc));
	pool.ts = malloc(((size_t)pool.cap + 1) * sizeof(*pool.ts));
	pool.src = malloc(((size_t)pool.cap + 1) * sizeof(*pool.src));
	cfg->ts = pool.ts;
	if (!cfg->tunnels || !c->tsrc || !pool.ts || !pool.src) {
		free(pool.src);
		return cfg_err(c, s, "out of memory for %" PRIu32 " tunnels", n);
	}
	cfg->n_tunnels = n; /* natt_config_free() wipes what was decoded */
	c->pool = &pool;
	bad = cfg_tunnel_walk(c, s, 0, n);
	cfg->ts = pool.ts;
	rc = cfg_cross(c, bad < 0 ? c->tun_idx : n, bad < 0 ? c->reached : 0);
	if (rc == 0 && bad == 0) {
		cfg->n_ts = pool.n;
		rc = cfg_routes(c, pool.src);
	}
	free(pool.src);
	return rc < 0 || bad < 0 ? -1 : 0;
}

/* The pieces were walked already: what is left is across tunnels. */
static int
cfg_tunnels_split(struct cfg_ctx *c, config_setting_t *s)
{
	struct cfg_split *sp = c->split;
	struct natt_config *cfg = c->cfg;
	const struct cfg_piece *bad = NULL;
	struct cfg_src *src;
	uint32_t n_ts = 0;
	int rc;

	/* every piece before the first bad one was walked whole */
	for (uint32_t i = 0; i < sp->n_pieces && !bad; i++)
		if (sp->piece[i].state == PIECE_BAD)
			bad = &sp->piece[i];
	if (cfg_cross(c, bad ? bad->bad : sp->n, bad ? bad->reached : 0) < 0)
		return -1;
	if (bad) {
		if (c->errlen)
			memcpy(c->err, bad->err, c->errlen);
		return -1;
	}

	/* one pool of selectors, in file order */
	for (uint32_t i = 0; i < sp->n_pieces; i++)
		n_ts += sp->piece[i].pool.n;
	cfg->ts = malloc(((size_t)n_ts + 1) * sizeof(*cfg->ts));
	src = malloc(((size_t)n_ts + 1) * sizeof(*src));
	if (!cfg->ts || !src) {
		free(src);
		return cfg_err(c, s, "out of memory for %" PRIu32 " tunnels", sp->n);
	}
	for (uint32_t i = 0; i < sp->n_pieces; i++) {
		const struct cfg_piece *pc = &sp->piece[i];

		memcpy(&cfg->ts[cfg->n_ts], pc->pool.ts, (size_t)pc->pool.n * sizeof(*cfg->ts));
		memcpy(&src[cfg->n_ts], pc->pool.src, (size_t)pc->pool.n * sizeof(*src));
		for (uint32_t t = pc->first; t < pc->first + pc->n; t++) {
			cfg->tunnels[t].remote_ts += cfg->n_ts;
			cfg->tunnels[t].local_ts += cfg->n_ts;
		}
		cfg->n_ts += pc->pool.n;
	}
	rc = cfg_routes(c, src);
	free(src);
	return rc;
}

static int
cfg_tunnels(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)v;
	return c->split ? cfg_tunnels_split(c, s) : cfg_tunnels_one(c, s);
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
cfg_if_next_hop(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	return cfg_unicast(c, s, v->s, &c->ifc->next_hop_ip);
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
	{ "next_hop_mac", CT_STRING, false, 0, 255, cfg_if_mac },
	{ "next_hop", CT_STRING, false, 0, 255, cfg_if_next_hop },
	{ "mtu", CT_INT, true, 576, 9216, cfg_if_mtu },
};

static bool
mac_is_zero(const uint8_t *m)
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}
static const struct cfg_section iface_section = CFG_SECTION(iface_keys);

static int
cfg_interfaces(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	struct natt_config *cfg = c->cfg;
	int n = config_setting_length(s);

	(void)v;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);

		c->w = (struct cfg_where){ .list = "interfaces", .idx = (uint32_t)i };
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return cfg_err(c, e, "must be a group { ... }, not %s",
				       cfg_type_name(config_setting_type(e)));
		c->w.grp = e;
		c->w.kind = "interface";
		c->w.name_ok = cfg_iface_name_ok;
		c->ifc = &cfg->iface[i];
		c->ifc->line = config_setting_source_line(e);
		if (cfg_walk(c, e, &iface_section) < 0)
			return -1;
		/* the next hop: a static MAC, or an address to resolve by ARP */
		if (mac_is_zero(c->ifc->next_hop_mac) == (c->ifc->next_hop_ip == 0))
			return cfg_err(c, e, "give exactly one of \"next_hop_mac\" (static) and"
				       " \"next_hop\" (an IPv4 address resolved by ARP)");
		cfg->n_ifaces = (uint32_t)i + 1;
	}
	c->w.list = NULL;
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

static int
cfg_dp_idle_timeout(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->cfg->idle_timeout = (uint32_t)v->i;
	return 0;
}

static int
cfg_dp_rekey_grace(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->cfg->rekey_grace = (uint32_t)v->i;
	return 0;
}

static int
cfg_dp_exception_rate(struct cfg_ctx *c, config_setting_t *s, const struct cfg_val *v)
{
	(void)s;
	c->cfg->exception_rate = (uint32_t)v->i;
	return 0;
}

static const struct cfg_key dataplane_keys[] = {
	{ "replay_window", CT_INT, false, 0, NATT_MAX_REPLAY_WINDOW, cfg_dp_replay_window },
	{ "mss_clamp", CT_INT, false, 0, 65495, cfg_dp_mss_clamp },
	{ "df", CT_STRING, false, 0, 255, cfg_dp_df },
	{ "icmp_rate", CT_INT, false, 0, 1000000, cfg_dp_icmp_rate },
	{ "idle_timeout", CT_INT, false, 0, NATT_CFG_MAX_IDLE_TIMEOUT, cfg_dp_idle_timeout },
	{ "rekey_grace", CT_INT, false, 0, NATT_CFG_MAX_REKEY_GRACE, cfg_dp_rekey_grace },
	{ "exception_rate", CT_INT, false, 0, NATT_CFG_MAX_EXCEPTION_RATE, cfg_dp_exception_rate },
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


/* ---- one parse ---- */

static int
cfg_build(config_t *lc, const char *name, struct natt_config *out, char *err, size_t errlen,
	  struct cfg_split *split)
{
	struct cfg_ctx c = {
		.path = name, .err = err, .errlen = errlen, .sub = "", .cfg = out,
		.lines = split ? split->rest_lines : CFG_LINES_SAME,
		.split = split, .tsrc = split ? split->tsrc : NULL,
	};
	int rc;

	memset(c.port_owner, -1, sizeof(c.port_owner));
	memset(c.role_owner, -1, sizeof(c.role_owner));
	out->replay_window = NATT_CFG_DEFAULT_REPLAY_WINDOW;
	out->mss_clamp = -1;
	out->df_mode = NATT_DF_COPY;
	out->icmp_rate = NATT_CFG_DEFAULT_ICMP_RATE;
	out->rekey_grace = NATT_CFG_DEFAULT_REKEY_GRACE;
	out->exception_rate = NATT_CFG_DEFAULT_EXCEPTION_RATE;
	rc = cfg_walk(&c, config_root_setting(lc), &root_section);
	if (!split)
		free(c.tsrc);
	free(c.files);
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

/* libconfig's error, its line mapped to the file's. */
static int
cfg_read_error(const config_t *lc, const char *name, int saved_errno,
	       const struct cfg_lines *lines, char *err, size_t errlen)
{
	if (errlen == 0)
		return -1;
	if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
		snprintf(err, errlen, "%s: cannot read: %s", name,
			 saved_errno ? strerror(saved_errno) : config_error_text(lc));
	else
		snprintf(err, errlen, "%s:%u: %s", config_error_file(lc) ? config_error_file(lc) : name,
			 cfg_file_line(lines, (unsigned int)config_error_line(lc)),
			 config_error_text(lc));
	return -1;
}

/* ---- parallel parse of big texts ---- */

/* A read-only stdio stream over three pieces of memory. */
struct cfg_seg {
	const char *p;      /* NULL: n newlines */
	size_t n;
};

struct cfg_stream {
	struct cfg_seg seg[3];
	unsigned int i;
	char buf[8192];     /* stdio's buffer: ours, to wipe it */
};

static ssize_t
cfg_stream_read(void *cookie, char *buf, size_t size)
{
	struct cfg_stream *st = cookie;
	size_t done = 0;

	while (done < size && st->i < 3) {
		struct cfg_seg *s = &st->seg[st->i];
		size_t k = s->n < size - done ? s->n : size - done;

		if (s->p) {
			memcpy(buf + done, s->p, k);
			s->p += k;
		} else {
			memset(buf + done, '\n', k);
		}
		s->n -= k;
		done += k;
		if (s->n == 0)
			st->i++;
	}
	return (ssize_t)done;
}

/* libconfig parse of the stream into lc; false with config_error_type()
 * CONFIG_ERR_NONE if it could not even start. */
static bool
cfg_read_stream(config_t *lc, struct cfg_stream *st)
{
	static const cookie_io_functions_t io = { .read = cfg_stream_read };
	FILE *f = fopencookie(st, "r", io);
	int ok;

	if (!f)
		return false;
	setvbuf(f, st->buf, _IOFBF, sizeof(st->buf));
	ok = config_read(lc, f);
	fclose(f);
	explicit_bzero(st->buf, sizeof(st->buf));
	return ok == CONFIG_TRUE;
}

/* Newlines in p[0, n), eight bytes at a time. */
static size_t
cfg_count_nl(const char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, low7 = 0x7f * ones;
	size_t nl = 0, i = 0;

	while (i + 8 <= n) {
		uint64_t sum = 0; /* per byte: how many '\n' it saw, < 256 */

		for (unsigned int k = 0; k < 255 && i + 8 <= n; k++, i += 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			w ^= '\n' * ones;                       /* '\n' -> 0 */
			sum += (~(((w & low7) + low7) | w) >> 7) & ones; /* 0 -> 1 */
		}
		sum = (sum & 0x00ff00ff00ff00ffull) + ((sum >> 8) & 0x00ff00ff00ff00ffull);
		nl += (size_t)((sum * 0x0001000100010001ull) >> 48);
	}
	for (; i < n; i++)
		nl += p[i] == '\n';
	return nl;
}

/* Past a string whose opening quote is p[-1]; NULL if it does not end. A
 * backslash escapes the next character, whatever libconfig makes of it. */
static const char *
cfg_skip_string(const char *p, const char *end)
{
	for (;;) {
		const char *q = memchr(p, '"', (size_t)(end - p)), *b;

		if (!q)
			return NULL;
		b = memchr(p, '\\', (size_t)(q - p));
		if (!b)
			return q + 1;
		p = b + 2;
	}
}

/* Past the comment at p ('#', "//", "/ *"); p if there is none, NULL if it
 * does not end. */
static const char *
cfg_skip_comment(const char *p, const char *end)
{
	if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		return nl ? nl : end;
	}
	if (*p == '/' && p + 1 < end && p[1] == '*') {
		const char *q = memmem(p + 2, (size_t)(end - p - 2), "*/", 2);

		return q ? q + 2 : NULL;
	}
	return p;
}

/* Past white space and comments; NULL in an unterminated comment. */
static const char *
cfg_skip_blank(const char *p, const char *end)
{
	while (p < end) {
		const char *q;

		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f') {
			p++;
			continue;
		}
		q = cfg_skip_comment(p, end);
		if (q == p || !q)
			return q;
		p = q;
	}
	return p;
}

/* A character that may continue a libconfig name or number. */
static bool
cfg_word_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-' || ch == '*' || ch == '.' || ch == '+';
}

/* Bytes that start or end something the scan tracks. */
static const bool cfg_stop[256] = {
	['\0'] = true, ['"'] = true, ['#'] = true, ['/'] = true, ['@'] = true, [','] = true,
	['('] = true, [')'] = true, ['['] = true, [']'] = true, ['{'] = true, ['}'] = true,
};

struct cfg_nest {
	unsigned int depth;
	char close[CFG_SCAN_DEPTH]; /* the brackets to close, innermost last */
};

/* Past the cfg_stop byte at p: a string, a comment, a bracket (checked
 * against the open ones) or a plain byte; NULL at what the scan does not
 * take: '@' (@include), a NUL (the end, or inside), unbalanced brackets. */
static const char *
cfg_step(const char *p, const char *end, struct cfg_nest *nest)
{
	const char *q;

	switch (*p) {
	case '"':
		return cfg_skip_string(p + 1, end);
	case '#':
	case '/':
		q = cfg_skip_comment(p, end);
		return q == p ? p + 1 : q;
	case '(':
	case '[':
	case '{':
		if (nest->depth == CFG_SCAN_DEPTH)
			return NULL;
		nest->close[nest->depth++] = *p == '(' ? ')' : *p == '[' ? ']' : '}';
		return p + 1;
	case ')':
	case ']':
	case '}':
		return nest->depth && nest->close[--nest->depth] == *p ? p + 1 : NULL;
	case ',':
		return p + 1;
	default:
		return NULL;
	}
}

static bool
cfg_add_piece(struct cfg_split *sp, size_t off, size_t len, uint32_t n)
{
	if (sp->n_pieces == sp->cap_pieces) {
		uint32_t cap = sp->cap_pieces ? 2 * sp->cap_pieces : 64;
		struct cfg_piece *p = realloc(sp->piece, (size_t)cap * sizeof(*p));

		if (!p)
			return false;
		sp->piece = p;
		sp->cap_pieces = cap;
	}
	sp->piece[sp->n_pieces++] = (struct cfg_piece){ .off = off, .len = len, .n = n };
	return true;
}

/*
 * The elements of the list after "tunnels" at p: '=' or ':', '(', then
 * elements separated by ',' up to the matching ')', cut into pieces of 'per'
 * elements. Returns the end of the list, NULL when unsure: no list, an empty
 * element (a trailing comma), what cfg_step() does not take, too many.
 */
static const char *
cfg_scan_list(struct cfg_split *sp, const char *p, uint32_t per)
{
	const char *text = sp->text, *end = text + sp->len;
	size_t piece_off;
	uint32_t in_piece = 0;

	p = cfg_skip_blank(p, end);
	if (!p || p == end || (*p != '=' && *p != ':'))
		return NULL;
	p = cfg_skip_blank(p + 1, end);
	if (!p || p == end || *p != '(')
		return NULL;
	sp->lo = (size_t)(p - text);
	piece_off = sp->lo + 1;
	p++;
	for (;;) {
		struct cfg_nest nest = { 0 };

		p = cfg_skip_blank(p, end);
		if (!p || p == end || *p == ',' || *p == ')')
			return NULL;
		for (;;) {
			while (!cfg_stop[(uint8_t)*p]) /* text[len] is a NUL */
				p++;
			if ((*p == ',' || *p == ')') && nest.depth == 0)
				break;
			p = cfg_step(p, end, &nest);
			if (!p)
				return NULL;
		}
		if (++sp->n > NATT_CFG_MAX_TUNNELS)
			return NULL; /* one parse reports it */
		if (++in_piece == per || *p == ')') {
			if (!cfg_add_piece(sp, piece_off, (size_t)(p - text) - piece_off, in_piece))
				return NULL;
			piece_off = (size_t)(p - text) + 1;
			in_piece = 0;
		}
		if (*p == ')') {
			sp->hi = (size_t)(p - text);
			return p + 1;
		}
		p++;
	}
}

/*
 * Find the one top-level "tunnels = ( ... )" of sp->text and cut its
 * elements into pieces; false when the text is anything but plain (then it
 * is parsed in one go and libconfig has its say).
 */
static bool
cfg_scan(struct cfg_split *sp, uint32_t per)
{
	const char *text = sp->text, *p = text, *end = text + sp->len;
	struct cfg_nest nest = { 0 };
	size_t at = 0, line = 1;
	uint32_t first = 0;
	bool found = false;

	while (p < end) {
		/* the name "tunnels" at the top level, not part of a longer word */
		if (*p == 't' && nest.depth == 0 && (size_t)(end - p) >= 7 &&
		    memcmp(p, "tunnels", 7) == 0 && (p == text || !cfg_word_char(p[-1])) &&
		    (p + 7 == end || !cfg_word_char(p[7]))) {
			if (found)
				return false;
			found = true;
			p = cfg_scan_list(sp, p + 7, per);
		} else if (cfg_stop[(uint8_t)*p]) {
			p = cfg_step(p, end, &nest);
		} else {
			p++;
		}
		if (!p)
			return false;
	}
	if (!found || nest.depth != 0)
		return false;

	/* line numbers: the first line of each piece, the newlines of the list */
	for (uint32_t i = 0; i < sp->n_pieces; i++) {
		struct cfg_piece *pc = &sp->piece[i];

		line += cfg_count_nl(text + at, pc->off - at);
		at = pc->off;
		pc->line0 = (unsigned int)(line - 1);
		pc->first = first;
		first += pc->n;
	}
	line += cfg_count_nl(text + at, sp->hi - at);
	sp->body_lines = (unsigned int)(line - 1 - cfg_count_nl(text, sp->lo));
	if (sp->body_lines) /* the rest keeps one: its ')' is below its '(' */
		sp->rest_lines = (struct cfg_lines){
			.after = (unsigned int)(line - sp->body_lines), .shift = sp->body_lines - 1,
		};
	else
		sp->rest_lines = CFG_LINES_SAME;
	return line < INT_MAX / 2; /* libconfig counts lines in an int */
}

static void
cfg_atomic_min(atomic_uint *a, unsigned int v)
{
	unsigned int cur = atomic_load(a);

	while (v < cur && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

/*
 * Wipe the text of parsed piece i. Once a whole group of CFG_WIPE_GROUP
 * pieces is wiped, its pages go back to the system: the copy of the file is
 * not all in memory while the tunnels fill theirs. (One madvise() per piece
 * costs more: each one interrupts the other threads' CPUs.)
 */
static void
cfg_piece_wipe(struct cfg_split *sp, uint32_t i)
{
	uint32_t g = i / CFG_WIPE_GROUP, first = g * CFG_WIPE_GROUP;
	uint32_t last = first + CFG_WIPE_GROUP < sp->n_pieces ? first + CFG_WIPE_GROUP
							      : sp->n_pieces;
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), from, to;

	explicit_bzero((char *)(uintptr_t)sp->text + sp->piece[i].off, sp->piece[i].len);
	sp->piece[i].wiped = true;
	if (atomic_fetch_add(&sp->wiped[g], 1) + 1 != last - first)
		return;
	from = ((uintptr_t)sp->text + sp->piece[first].off + pg - 1) & ~(pg - 1);
	to = ((uintptr_t)sp->text + sp->piece[last - 1].off + sp->piece[last - 1].len) & ~(pg - 1);
	if (to > from)
		madvise((void *)from, to - from, MADV_DONTNEED);
}

/* Parse piece i, and walk it unless an earlier piece failed. err: errlen bytes. */
static void
cfg_piece_run(struct cfg_split *sp, uint32_t i, char *err)
{
	struct cfg_piece *pc = &sp->piece[i];
	struct cfg_stream st = { .seg = {
		{ "tunnels=(", 9 }, { sp->text + pc->off, pc->len }, { ")", 1 },
	} };
	const config_setting_t *root, *list;
	config_t lc;
	bool ok;

	/* after a syntax error nothing later matters */
	if (i > atomic_load(&sp->syntax_at))
		return;
	cfg_init(&lc);
	ok = cfg_read_stream(&lc, &st);
	root = config_root_setting(&lc); /* a new one: reading clears the tree */
	list = ok ? config_setting_get_member(root, "tunnels") : NULL;
	if (!ok) {
		if (config_error_type(&lc) == CONFIG_ERR_PARSE) {
			pc->state = PIECE_SYNTAX;
			cfg_read_error(&lc, sp->name, 0, &(struct cfg_lines){ .line0 = pc->line0,
				       .after = UINT_MAX }, err, sp->errlen);
		} else {
			pc->state = PIECE_ODD;
		}
	} else if (!list || config_setting_length(root) != 1 ||
		   config_setting_type(list) != CONFIG_TYPE_LIST ||
		   config_setting_length(list) != (int)pc->n) {
		pc->state = PIECE_ODD;
	} else if (i > atomic_load(&sp->bad_at)) {
		pc->state = PIECE_PARSED; /* only its syntax can matter */
	} else {
		struct cfg_ctx c = {
			.path = sp->name, .err = err, .errlen = sp->errlen,
			.lines = { .line0 = pc->line0, .after = UINT_MAX },
			.sub = "", .cfg = sp->cfg, .tsrc = sp->tsrc, .pool = &pc->pool,
		};

		pc->pool.cap = 2 * pc->n;
		pc->pool.ts = malloc(((size_t)pc->pool.cap + 1) * sizeof(*pc->pool.ts));
		pc->pool.src = malloc(((size_t)pc->pool.cap + 1) * sizeof(*pc->pool.src));
		if (!pc->pool.ts || !pc->pool.src) {
			pc->state = PIECE_ODD;
		} else if (cfg_tunnel_walk(&c, list, pc->first, pc->n) < 0) {
			pc->state = PIECE_BAD;
			pc->bad = c.tun_idx;
			pc->reached = c.reached;
		} else {
			pc->state = PIECE_OK;
		}
		free(c.files);
	}
	if (pc->state == PIECE_SYNTAX || pc->state == PIECE_BAD) {
		pc->err = sp->errlen ? malloc(sp->errlen) : NULL;
		if (sp->errlen && !pc->err)
			pc->state = PIECE_ODD;
		else if (pc->err)
			memcpy(pc->err, err, sp->errlen);
	}
	if (pc->state == PIECE_SYNTAX)
		cfg_atomic_min(&sp->syntax_at, i);
	else if (pc->state == PIECE_BAD)
		cfg_atomic_min(&sp->bad_at, i);
	else if (pc->state == PIECE_ODD)
		atomic_store(&sp->odd, true);
	if (pc->state != PIECE_OK)
		cfg_wipe_tree(root);
	config_destroy(&lc);
	if (sp->own)
		cfg_piece_wipe(sp, i);
}

static void
cfg_pieces_run(struct cfg_split *sp)
{
	char *err = sp->errlen ? malloc(sp->errlen) : NULL;

	if (sp->errlen && !err)
		return; /* pieces nobody did make cfg_split_load() give up */
	for (;;) {
		uint32_t i = atomic_fetch_add(&sp->next, 1);

		if (i >= sp->n_pieces)
			break;
		cfg_piece_run(sp, i, err);
	}
	free(err);
}

static void *
cfg_worker(void *arg)
{
	cfg_pieces_run(arg);
	return NULL;
}

/* A helper thread: any CPU (natt-control's own thread is pinned to the EAL
 * main lcore), no signals (they are the caller's business). */
static bool
cfg_worker_start(pthread_t *tid, struct cfg_split *sp)
{
	pthread_attr_t attr;
	sigset_t all, old;
	cpu_set_t cpus;
	bool ok;

	if (pthread_attr_init(&attr) != 0)
		return false;
	CPU_ZERO(&cpus);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &cpus);
	pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ok = pthread_create(tid, &attr, cfg_worker, sp) == 0 ||
	     pthread_create(tid, NULL, cfg_worker, sp) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return ok;
}

static unsigned int
cfg_threads(const struct natt_config_opts *o, uint32_t n_pieces)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int k = o->threads;

	if (k == 0) {
		k = online > 0 ? (unsigned int)online : 1;
		if (k > NATT_CFG_DEFAULT_THREADS)
			k = NATT_CFG_DEFAULT_THREADS;
	}
	if (k > NATT_CFG_MAX_THREADS)
		k = NATT_CFG_MAX_THREADS;
	return k < n_pieces ? k : n_pieces;
}

/* Does the text before the list parse? (Is an error of the rest there?) */
static bool
cfg_head_ok(const struct cfg_split *sp)
{
	struct cfg_stream st = { .seg = { { sp->text, sp->lo + 1 }, { ")", 1 }, { "", 0 } } };
	config_t lc;
	bool ok;

	cfg_init(&lc);
	ok = cfg_read_stream(&lc, &st);
	cfg_wipe_tree(config_root_setting(&lc));
	config_destroy(&lc);
	return ok;
}

/*
 * Parse text[0, len) with the tunnels list cut into pieces parsed in
 * parallel. Returns 0 or -1 as natt_config_load(), or 1 when the text is
 * not for this (the caller parses it in one go; out is left zeroed).
 */
static int
cfg_split_load(const char *text, size_t len, bool own, const char *name, struct natt_config *out,
	       char *err, size_t errlen, const struct natt_config_opts *o)
{
	struct cfg_split sp = {
		.text = text, .len = len, .own = own, .name = name, .cfg = out, .errlen = errlen,
	};
	pthread_t tid[NATT_CFG_MAX_THREADS];
	unsigned int k, started = 0;
	bool rest_ok = false, rest_read = false;
	uint32_t syntax;
	config_t rest;
	int rc = 1;

	if (!cfg_scan(&sp, o->piece_tunnels ? o->piece_tunnels : CFG_PIECE_TUNNELS))
		goto out;
	out->tunnels = calloc(sp.n, sizeof(*out->tunnels));
	sp.tsrc = malloc((size_t)sp.n * sizeof(*sp.tsrc));
	sp.wiped = calloc(sp.n_pieces / CFG_WIPE_GROUP + 1, sizeof(*sp.wiped));
	if (!out->tunnels || !sp.tsrc || !sp.wiped)
		goto out;
	out->n_tunnels = sp.n; /* natt_config_free() wipes what was decoded */
	atomic_init(&sp.next, 0);
	atomic_init(&sp.syntax_at, sp.n_pieces);
	atomic_init(&sp.bad_at, sp.n_pieces);
	atomic_init(&sp.odd, false);

	k = cfg_threads(o, sp.n_pieces);
	while (started + 1 < k && cfg_worker_start(&tid[started], &sp))
		started++;
	/* meanwhile, the rest of the text: the list emptied to "(\n)", so that
	 * what follows is still below it (rest_lines puts it back in place) */
	{
		struct cfg_stream st = { .seg = {
			{ text, sp.lo + 1 }, { NULL, sp.body_lines ? 1 : 0 },
			{ text + sp.hi, len - sp.hi },
		} };

		cfg_init(&rest);
		rest_read = true;
		rest_ok = cfg_read_stream(&rest, &st);
	}
	cfg_pieces_run(&sp);
	for (unsigned int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);

	/* every piece up to the first syntax error must have been done */
	syntax = atomic_load(&sp.syntax_at);
	for (uint32_t i = 0; i <= syntax && i < sp.n_pieces; i++)
		if (sp.piece[i].state == PIECE_TODO)
			atomic_store(&sp.odd, true);
	if (atomic_load(&sp.odd) || (!rest_ok && config_error_type(&rest) != CONFIG_ERR_PARSE))
		goto out;
	/* syntax errors first, in file order: before the list, in it, after it */
	if (!rest_ok && (syntax == sp.n_pieces || !cfg_head_ok(&sp))) {
		rc = cfg_read_error(&rest, name, 0, &sp.rest_lines, err, errlen);
	} else if (syntax < sp.n_pieces) {
		if (errlen)
			memcpy(err, sp.piece[syntax].err, errlen);
		rc = -1;
	} else {
		const config_setting_t *root = config_root_setting(&rest);

		sp.list = config_setting_get_member(root, "tunnels");
		if (!sp.list || config_setting_type(sp.list) != CONFIG_TYPE_LIST ||
		    config_setting_length(sp.list) != 0)
			goto out;
		rc = cfg_build(&rest, name, out, err, errlen, &sp);
	}
out:
	if (rest_read) {
		if (rc != 0)
			cfg_wipe_tree(config_root_setting(&rest));
		config_destroy(&rest);
	}
	for (uint32_t i = 0; i < sp.n_pieces; i++) {
		struct cfg_piece *pc = &sp.piece[i];

		if (own && rc != 1 && !pc->wiped)
			explicit_bzero((char *)(uintptr_t)text + pc->off, pc->len);
		free(pc->err);
		free(pc->pool.ts);
		free(pc->pool.src);
	}
	if (own && rc != 1) { /* else the caller wipes it all */
		explicit_bzero((char *)(uintptr_t)text, sp.lo + 1);
		explicit_bzero((char *)(uintptr_t)text + sp.hi, len - sp.hi);
	}
	free(sp.piece);
	free(sp.tsrc);
	free(sp.wiped);
	if (rc != 0)
		natt_config_free(out);
	if (o->pieces)
		*o->pieces = rc == 1 ? 0 : sp.n_pieces;
	return rc;
}

/*
 * A regular file of at least parallel_min bytes, read whole and parsed in
 * pieces. Returns 1 when it is not for this (then nothing was done).
 */
static int
cfg_load_split(const char *path, struct natt_config *out, char *err, size_t errlen,
	       const struct natt_config_opts *o)
{
	struct stat st;
	size_t len = 0, size;
	char *buf;
	int fd, rc = 1;

	if (o->parallel_min == SIZE_MAX)
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size < o->parallel_min || (uint64_t)st.st_size >= SIZE_MAX / 2) {
		close(fd);
		return 1;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		close(fd);
		return 1;
	}
	while (len < size) {
		ssize_t r = read(fd, buf + len, size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	/* short: the file changed, or an error, which libconfig reports */
	if (len == size) {
		buf[len] = '\0';
		rc = cfg_split_load(buf, len, true, path, out, err, errlen, o);
	}
	if (rc == 1)
		explicit_bzero(buf, len);
	free(buf);
	return rc;
}

/* ---- entry points ---- */

static const struct natt_config_opts cfg_default_opts = {
	.parallel_min = NATT_CFG_PARALLEL_MIN,
};

int
natt_config_load_opts(const char *path, struct natt_config *out, char *err, size_t errlen,
		      const struct natt_config_opts *opts)
{
	config_t lc;
	int rc;

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = '\0';
	if (opts && opts->pieces)
		*opts->pieces = 0;
	rc = cfg_load_split(path, out, err, errlen, opts ? opts : &cfg_default_opts);
	if (rc <= 0)
		return rc;
	cfg_init(&lc);
	errno = 0;
	if (!config_read_file(&lc, path))
		rc = cfg_read_error(&lc, path, errno, &CFG_LINES_SAME, err, errlen);
	else
		rc = cfg_build(&lc, path, out, err, errlen, NULL);
	if (rc < 0)
		cfg_wipe_tree(config_root_setting(&lc));
	config_destroy(&lc);
	return rc;
}

int
natt_config_load(const char *path, struct natt_config *out, char *err, size_t errlen)
{
	return natt_config_load_opts(path, out, err, errlen, NULL);
}

int
natt_config_parse_string_opts(const char *text, const char *name, struct natt_config *out,
			      char *err, size_t errlen, const struct natt_config_opts *opts)
{
	const struct natt_config_opts *o = opts ? opts : &cfg_default_opts;
	size_t len = strlen(text);
	config_t lc;
	int rc;

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = '\0';
	if (o->pieces)
		*o->pieces = 0;
	if (o->parallel_min != SIZE_MAX && len >= o->parallel_min) {
		rc = cfg_split_load(text, len, false, name, out, err, errlen, o);
		if (rc <= 0)
			return rc;
	}
	cfg_init(&lc);
	if (!config_read_string(&lc, text))
		rc = cfg_read_error(&lc, name, 0, &CFG_LINES_SAME, err, errlen);
	else
		rc = cfg_build(&lc, name, out, err, errlen, NULL);
	if (rc < 0)
		cfg_wipe_tree(config_root_setting(&lc));
	config_destroy(&lc);
	return rc;
}

int
natt_config_parse_string(const char *text, const char *name, struct natt_config *out,
			 char *err, size_t errlen)
{
	return natt_config_parse_string_opts(text, name, out, err, errlen, NULL);
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
