/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.h - the operator's libconfig file as a validated struct natt_config.
 *
 * Loading has no side effects and no DPDK dependency: the unit tests and the
 * fuzzer link config.c alone. Everything that can be checked without the
 * running dataplane is checked here (types, ranges, key lengths, SPI and name
 * uniqueness, selectors); what depends on the dataplane (number of ports,
 * max_tunnels) is checked by natt-control before it sends anything.
 *
 * Byte order: IPv4 addresses and selectors are in network order (as
 * inet_pton() returns them and as natt_ctl.h carries them); ports, SPIs and
 * everything else are in host order.
 *
 * Errors are one line, "FILE:LINE: reason", where FILE is the file (or
 * @include'd file) that holds the offending setting.
 *
 * Big files (a million tunnels is ~350 MB) are parsed in parallel: the
 * elements of the top-level tunnels list are cut into pieces that libconfig
 * parses on several threads, see config.c. The result, and the error if any,
 * is the same as that of one libconfig parse of the whole file.
 */
#ifndef NATT_CONFIG_H
#define NATT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "natt_ctl.h"

#define NATT_CFG_MAX_IFACES NATT_MAX_PORTS
#define NATT_CFG_MAX_TUNNELS 1000000u
#define NATT_CFG_DEFAULT_REPLAY_WINDOW 1024
#define NATT_CFG_MIN_SPI 256u   /* 1..255 are reserved by IANA (RFC 4303 2.1) */
#define NATT_CFG_DEFAULT_LOCAL_PORT 4500 /* RFC 3948 */
#define NATT_CFG_DEFAULT_ICMP_RATE 1000  /* frag-needed per second per worker */
#define NATT_CFG_MAX_IDLE_TIMEOUT 86400  /* seconds: one day */
#define NATT_CFG_DEFAULT_REKEY_GRACE 10  /* seconds */
#define NATT_CFG_MAX_REKEY_GRACE 3600
#define NATT_CFG_MAX_KEEPALIVE 3600  /* seconds between NAT keepalives */
#define NATT_CFG_DEFAULT_EXCEPTION_RATE 10000 /* punts to the host per second per worker */
#define NATT_CFG_MAX_EXCEPTION_RATE 10000000
#define NATT_CFG_MIN_MSS 88u    /* Linux's TCP_MIN_MSS; below is not a real MSS */

struct natt_cfg_iface {
	char name[NATT_NAME_LEN];
	uint16_t port;          /* DPDK port id */
	uint8_t role;           /* enum natt_if_role */
	uint8_t next_hop_mac[6];  /* all zero: next_hop_ip is resolved by ARP */
	uint16_t mtu;
	uint32_t addr;          /* network order */
	uint32_t next_hop_ip;   /* network order, 0 = static next_hop_mac */
	unsigned int line;      /* of the interface group, for diagnostics */
};

/* One direction of a tunnel. */
struct natt_cfg_sa {
	uint32_t spi;                   /* >= NATT_CFG_MIN_SPI */
	uint8_t key[NATT_MAX_KEY_LEN];  /* key_len bytes used */
	uint8_t salt[NATT_SALT_LEN];    /* RFC 4106 section 8.1: last 4 bytes of the hex */
};

struct natt_cfg_tunnel {
	char name[NATT_NAME_LEN];
	uint32_t remote_addr;   /* peer as seen after its NAT, network order */
	uint16_t remote_port;   /* host order */
	uint16_t local_port;    /* host order, default 4500 */
	uint8_t algo;           /* enum natt_algo */
	uint8_t key_len;        /* 16 or 32 */
	bool esn;
	bool pin_mapping;       /* nat_mapping_change = "pin" (default "follow") */
	uint16_t keepalive;     /* seconds, 0 = we send no NAT keepalives */
	uint8_t n_remote_ts;    /* 1..NATT_MAX_TS */
	uint8_t n_local_ts;
	uint32_t remote_ts;     /* index of the first selector in natt_config.ts */
	uint32_t local_ts;
	struct natt_cfg_sa in;
	struct natt_cfg_sa out;
	unsigned int line;      /* of the tunnel group, for diagnostics */
};

struct natt_config {
	uint16_t replay_window;         /* bits, 0 = anti-replay off */
	int32_t mss_clamp;              /* -1: derived from the outside MTU; 0: off */
	uint8_t df_mode;                /* enum natt_df_mode: outer DF */
	uint32_t icmp_rate;             /* frag-needed per second per worker */
	/* Seconds without an authenticated inbound packet after which a tunnel
	 * raises an idle event; 0..NATT_CFG_MAX_IDLE_TIMEOUT, 0 (default) = off. */
	uint32_t idle_timeout;
	/* Seconds the old inbound SPI of a tunnel is still accepted after a
	 * rekey (a new inbound SPI); 0..NATT_CFG_MAX_REKEY_GRACE, default
	 * NATT_CFG_DEFAULT_REKEY_GRACE. 0 drops it at once. */
	uint32_t rekey_grace;
	/* Packets per second per worker handed to the host's TAP (IKE, ARP,
	 * ICMP to the gateway); 0 = none, default NATT_CFG_DEFAULT_EXCEPTION_RATE. */
	uint32_t exception_rate;
	uint8_t outside;                /* index in iface[] of the outside interface */
	uint8_t inside;
	uint32_t n_ifaces;
	struct natt_cfg_iface iface[NATT_CFG_MAX_IFACES];
	uint32_t n_tunnels;
	struct natt_cfg_tunnel *tunnels;  /* n_tunnels entries, file order */
	/* Selectors of every tunnel, pooled: most tunnels have one or two, so a
	 * fixed array per tunnel would cost 256 bytes each at 1M tunnels. */
	struct natt_ctl_ts *ts;
	uint32_t n_ts;
};

/* Parallel load (natt_config_load_opts). The helper threads live only during
 * the load and are not pinned: they may run on any online CPU. */
#define NATT_CFG_PARALLEL_MIN (8u << 20) /* bytes: smaller files are one parse */
#define NATT_CFG_DEFAULT_THREADS 4       /* at most, and never above online CPUs */
#define NATT_CFG_MAX_THREADS 16

struct natt_config_opts {
	size_t parallel_min;        /* split texts of at least this many bytes
				     * (0: every text); SIZE_MAX: never */
	unsigned int threads;       /* parsing threads, the caller's included;
				     * 0: online CPUs, at most NATT_CFG_DEFAULT_THREADS */
	unsigned int piece_tunnels; /* tunnels per piece, 0: the default (256) */
	unsigned int *pieces;       /* if not NULL, receives how many pieces the
				     * tunnels list was cut into (0: one parse) */
};

/**
 * Parse and validate a configuration file.
 *
 * @param path    file to read; relative @include paths are resolved from its
 *                directory.
 * @param out     filled on success; on failure left zeroed with nothing to
 *                free. On success the caller owns it and calls
 *                natt_config_free().
 * @param err     on failure receives "FILE:LINE: reason" (truncated to
 *                errlen, always NUL-terminated); may be NULL if errlen is 0.
 * @return 0 on success, -1 on error.
 */
int natt_config_load(const char *path, struct natt_config *out,
		     char *err, size_t errlen);

/**
 * Same as natt_config_load() on text held in memory (tests, fuzzing).
 * @param name  file name used in error messages and to resolve @include.
 */
int natt_config_parse_string(const char *text, const char *name,
			     struct natt_config *out, char *err, size_t errlen);

/**
 * natt_config_load() and natt_config_parse_string() with explicit tuning of
 * the parallel parse (tests and benchmarks); opts NULL = the defaults. The
 * outcome does not depend on opts, only the time and memory it takes.
 */
int natt_config_load_opts(const char *path, struct natt_config *out,
			  char *err, size_t errlen, const struct natt_config_opts *opts);
int natt_config_parse_string_opts(const char *text, const char *name,
				  struct natt_config *out, char *err, size_t errlen,
				  const struct natt_config_opts *opts);

/**
 * Wipe the keys and free what natt_config_load() allocated; leaves *cfg
 * zeroed. Safe on a zeroed or already freed config.
 */
void natt_config_free(struct natt_config *cfg);

/** The remote_ts selectors of tunnel t (t->n_remote_ts entries). */
static inline const struct natt_ctl_ts *
natt_config_remote_ts(const struct natt_config *cfg, const struct natt_cfg_tunnel *t)
{
	return &cfg->ts[t->remote_ts];
}

/** The local_ts selectors of tunnel t (t->n_local_ts entries). */
static inline const struct natt_ctl_ts *
natt_config_local_ts(const struct natt_config *cfg, const struct natt_cfg_tunnel *t)
{
	return &cfg->ts[t->local_ts];
}

/** The MSS clamp to program: the configured one, or by default the largest
 *  inner packet that fits the outside MTU less 40 (IPv4 + TCP headers). */
static inline uint16_t
natt_config_mss(const struct natt_config *cfg)
{
	uint16_t inner;

	if (cfg->mss_clamp >= 0)
		return (uint16_t)cfg->mss_clamp;
	inner = natt_inner_mtu(cfg->iface[cfg->outside].mtu);
	return inner > 40 ? (uint16_t)(inner - 40) : 0;
}

/** "aes-gcm-128" / "aes-gcm-256" / "?" */
const char *natt_config_algo_name(unsigned int algo);

#endif /* NATT_CONFIG_H */
