/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * main.c - natt-dataplane, the DPDK primary: EAL, ports, mempool, the shared
 * objects of natt_ctl.h, worker launch, and a clean stop.
 *
 *   natt-dataplane <EAL args> -- [--stats-json FILE] [--exit-after-idle MS]
 *                                [--stats-interval MS] [--max-tunnels N]
 *                                [--extra-mbufs N] [--tap PREFIX]
 *
 * --tap PREFIX gives every port P an exception path to the host: a Linux
 * TAP interface PREFIX<P> with the port's MAC (host.c).
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "natt_ctl.h"
#include "natt_stats.h"
#include "natt_journal.h"
#include "sa.h"
#include "stats_json.h"
#include "telemetry.h"
#include "worker.h"

#define RX_DESC 1024
#define TX_DESC 1024
#define MBUF_CACHE 256

struct opts {
	const char *stats_json;
	uint64_t exit_after_idle_ms;
	uint64_t stats_interval_ms;
	uint32_t max_tunnels;
	uint32_t extra_mbufs;     /* for PMDs that hold many, e.g. net_pcap infinite_rx */
	const char *tap;          /* TAP name prefix, NULL = no exception path */
};

struct dataplane {
	struct opts o;
	uint16_t n_workers;
	uint16_t n_ports;         /* the operator's ports */
	uint16_t n_eth_ports;     /* and their TAPs */
	uint16_t tap_of[NATT_MAX_PORTS];
	struct rte_mempool *pool;
	const struct rte_memzone *mz;
	struct natt_stats_hdr *hdr;
	struct natt_journal_hdr *journal;
	struct rte_ring *evt;
	struct rte_ring *ctl[NATT_MAX_WORKERS];
	struct rte_ring *handoff[NATT_MAX_WORKERS];
	struct rte_ring *peer_upd[NATT_MAX_WORKERS];
	struct natt_worker *w[NATT_MAX_WORKERS];
};

static volatile sig_atomic_t quit_signal;

static void
on_signal(int sig)
{
	quit_signal = sig;
}

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s <EAL args> -- [--stats-json FILE] [--exit-after-idle MS]\n"
		"          [--stats-interval MS] [--max-tunnels N] [--extra-mbufs N]\n"
		"          [--tap PREFIX]\n", prog);
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || *s == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "stats-json", required_argument, NULL, 's' },
		{ "exit-after-idle", required_argument, NULL, 'i' },
		{ "stats-interval", required_argument, NULL, 'p' },
		{ "max-tunnels", required_argument, NULL, 't' },
		{ "extra-mbufs", required_argument, NULL, 'm' },
		{ "tap", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	o->max_tunnels = NATT_DEFAULT_MAX_TUNNELS;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->stats_json = optarg;
			break;
		case 'i':
			if (parse_u64(optarg, 86400000, &o->exit_after_idle_ms) || !o->exit_after_idle_ms)
				return -1;
			break;
		case 'p':
			if (parse_u64(optarg, 86400000, &o->stats_interval_ms))
				return -1;
			break;
		case 't':
			if (parse_u64(optarg, 16u << 20, &v) || v == 0)
				return -1;
			o->max_tunnels = (uint32_t)v;
			break;
		case 'm':
			if (parse_u64(optarg, 16u << 20, &v))
				return -1;
			o->extra_mbufs = (uint32_t)v;
			break;
		case 'T':
			/* IFNAMSIZ 16: the prefix, a port digit and the NUL */
			if (strlen(optarg) == 0 || strlen(optarg) > 14 || strchr(optarg, '/') ||
			    strchr(optarg, ',') || strchr(optarg, ' '))
				return -1;
			o->tap = optarg;
			break;
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static int
stats_create(struct dataplane *dp)
{
	size_t sz = natt_stats_size(dp->n_workers, dp->o.max_tunnels);
	struct natt_stats_hdr *h;
	struct timespec ts;

	dp->mz = rte_memzone_reserve_aligned(NATT_STATS_MZ, sz, (int)rte_socket_id(),
					     0, RTE_CACHE_LINE_SIZE);
	if (dp->mz == NULL)
		return -rte_errno;
	h = dp->mz->addr;
	memset(h, 0, sz);
	clock_gettime(CLOCK_REALTIME, &ts);
	h->start_tsc = rte_rdtsc();
	h->start_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	h->tsc_hz = rte_get_tsc_hz();
	h->n_workers = dp->n_workers;
	h->max_tunnels = dp->o.max_tunnels;
	h->n_ports = dp->n_ports;
	h->n_eth_ports = dp->n_eth_ports;
	for (uint16_t p = 0; p < dp->n_ports; p++)
		rte_eth_dev_get_name_by_port(p, h->port_names[p]);
	for (uint16_t p = 0; p < NATT_MAX_PORTS; p++) {
		h->tap_of[p] = NATT_NO_TAP;
		if (p < dp->n_ports && dp->tap_of[p] != UINT16_MAX) {
			h->tap_of[p] = (uint8_t)dp->tap_of[p];
			snprintf(h->tap_names[p], sizeof(h->tap_names[p]), "%s%u", dp->o.tap, p);
		}
	}
	h->version = NATT_STATS_VERSION;
	/* last, with release: a reader that sees the magic sees the rest */
	__atomic_store_n(&h->magic, NATT_STATS_MAGIC, __ATOMIC_RELEASE);
	dp->hdr = h;
	return 0;
}

/* natt-control's record of what it installed (natt_journal.h): ours to
 * create and zero, natt-control's to write. */
static int
journal_create(struct dataplane *dp)
{
	size_t sz = natt_journal_size(dp->o.max_tunnels);
	const struct rte_memzone *mz;
	struct natt_journal_hdr *j;

	mz = rte_memzone_reserve_aligned(NATT_JOURNAL_MZ, sz, (int)rte_socket_id(), 0,
					 RTE_CACHE_LINE_SIZE);
	if (mz == NULL)
		return -rte_errno;
	j = mz->addr;
	memset(j, 0, sz);
	j->version = NATT_JOURNAL_VERSION;
	j->max_tunnels = dp->o.max_tunnels;
	j->n_events = NATT_JOURNAL_EVENTS;
	__atomic_store_n(&j->magic, NATT_JOURNAL_MAGIC, __ATOMIC_RELEASE);
	dp->journal = j;
	return 0;
}

static int
rings_create(struct dataplane *dp)
{
	char name[RTE_RING_NAMESIZE];
	int sock = (int)rte_socket_id();

	dp->evt = rte_ring_create_elem(NATT_EVT_RING, sizeof(struct natt_evt),
				       NATT_EVT_RING_SIZE, sock, RING_F_SC_DEQ);
	if (dp->evt == NULL)
		return -rte_errno;
	for (uint16_t i = 0; i < dp->n_workers; i++) {
		snprintf(name, sizeof(name), NATT_CTL_RING_FMT, i);
		dp->ctl[i] = rte_ring_create_elem(name, sizeof(struct natt_ctl_msg),
						  NATT_CTL_RING_SIZE, sock,
						  RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "natt_ho_%u", i);
		dp->handoff[i] = rte_ring_create(name, NATT_HANDOFF_RING_SIZE, sock,
						 RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "natt_peer_%u", i);
		dp->peer_upd[i] = rte_ring_create_elem(name, sizeof(struct natt_peer_upd),
						       NATT_PEER_RING_SIZE, sock, RING_F_SC_DEQ);
		if (dp->ctl[i] == NULL || dp->handoff[i] == NULL || dp->peer_upd[i] == NULL)
			return -rte_errno;
	}
	return 0;
}

/* One TAP per port, named PREFIX<port>, with the port's MAC so that the host
 * kernel takes the unicast frames the wire sends to the port as its own. */
static int
taps_create(struct dataplane *dp)
{
	for (uint16_t p = 0; p < NATT_MAX_PORTS; p++)
		dp->tap_of[p] = UINT16_MAX;
	dp->n_eth_ports = dp->n_ports;
	if (dp->o.tap == NULL)
		return 0;
	if (2 * dp->n_ports > NATT_MAX_PORTS) {
		fprintf(stderr, "--tap: at most %u ports\n", NATT_MAX_PORTS / 2);
		return -EINVAL;
	}
	for (uint16_t p = 0; p < dp->n_ports; p++) {
		struct rte_ether_addr mac;
		char name[32], args[96];
		uint16_t id;
		int rc;

		if ((rc = rte_eth_macaddr_get(p, &mac)) != 0)
			return rc;
		snprintf(name, sizeof(name), "net_tap_natt%u", p);
		snprintf(args, sizeof(args), "iface=%s%u,mac=" RTE_ETHER_ADDR_PRT_FMT,
			 dp->o.tap, p, RTE_ETHER_ADDR_BYTES(&mac));
		rc = rte_eal_hotplug_add("vdev", name, args);
		if (rc == 0)
			rc = rte_eth_dev_get_port_by_name(name, &id);
		if (rc != 0) {
			fprintf(stderr, "--tap: cannot create %s%u (%s)\n", dp->o.tap, p,
				rte_strerror(-rc));
			return rc;
		}
		dp->tap_of[p] = id;
		dp->n_eth_ports++;
	}
	return 0;
}

static int
port_init(struct dataplane *dp, uint16_t port)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	uint16_t nrx = RX_DESC, ntx = TX_DESC, nq = dp->n_workers;
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		fprintf(stderr, "port %u: %u workers need %u RX/TX queues, device has %u/%u\n",
			port, nq, nq, info.max_rx_queues, info.max_tx_queues);
		return -EINVAL;
	}
	if (nq > 1 && info.flow_type_rss_offloads != 0 && port < dp->n_ports) {
		/* spread peers over workers by the outer UDP 5-tuple: peers behind
		 * one CGNAT address differ in source port */
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads &
			(RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV4);
	}
	rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
	for (uint16_t q = 0; rc == 0 && q < nq; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nrx, rte_eth_dev_socket_id(port),
					    NULL, dp->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(port, q, ntx,
						    rte_eth_dev_socket_id(port), NULL);
	}
	if (rc != 0)
		return rc;
	/* Starting a port does not mean polling it: workers poll only once the
	 * first configuration is applied (net_pcap hands over its whole
	 * capture at start, so nothing may drain RX queues before that). */
	rc = rte_eth_dev_start(port);
	if (rc == 0)
		rte_eth_promiscuous_enable(port); /* not all vdevs support it */
	return rc;
}

static int
workers_create(struct dataplane *dp)
{
	unsigned int lcore, i = 0;
	const char *arch = "?";

	RTE_LCORE_FOREACH_WORKER(lcore) {
		struct natt_worker *w = rte_zmalloc_socket("natt_worker", sizeof(*w),
			RTE_CACHE_LINE_SIZE, (int)rte_lcore_to_socket_id(lcore));

		if (w == NULL)
			return -ENOMEM;
		dp->w[i] = w;
		w->id = (uint16_t)i;
		w->queue = (uint16_t)i;
		w->n_workers = dp->n_workers;
		w->n_ports = dp->n_ports;
		w->n_eth_ports = dp->n_eth_ports;
		for (uint16_t p = 0; p < NATT_MAX_PORTS; p++) {
			w->port[p].tap = p < dp->n_ports ? dp->tap_of[p] : UINT16_MAX;
			w->n_taps += w->port[p].tap != UINT16_MAX;
		}
		w->outside = w->inside = UINT16_MAX;
		w->ctl = dp->ctl[i];
		w->evt = dp->evt;
		w->handoff = dp->handoff[i];
		w->handoff_of = dp->handoff;
		if (dp->n_workers > 1) {
			w->peer_upd = dp->peer_upd[i];
			w->peer_upd_of = dp->peer_upd;
		}
		w->hdr = dp->hdr;
		w->st = natt_stats_worker(dp->hdr, i);
		w->max_tunnels = dp->o.max_tunnels;
		w->pool = dp->pool;
		w->tsc_hz = rte_get_tsc_hz();
		w->ip_id = (uint16_t)i;
		w->mgr = natt_crypto_mgr_create(&arch);
		if (w->mgr == NULL) {
			fprintf(stderr, "intel-ipsec-mb: no usable AES-NI implementation\n");
			return -ENOTSUP;
		}
		w->gcm_vaes = natt_crypto_gcm_vaes(w->mgr);
		if (natt_crypto_selftest(w->mgr) != 0) {
			fprintf(stderr, "AES-GCM known-answer test failed: refusing to start\n");
			return -EIO;
		}
		if (natt_sa_tables_create(w, dp->o.max_tunnels) != 0)
			return -ENOMEM;
		i++;
	}
	printf("natt-dataplane: %u worker(s), %u port(s), intel-ipsec-mb %s (%s), "
	       "AES-GCM self-test passed\n", dp->n_workers, dp->n_ports,
	       imb_get_version_str(), arch);
	return 0;
}

static int
setup(struct dataplane *dp)
{
	unsigned int n_mbufs;
	int rc;

	if (rte_lcore_count() < 2) {
		fprintf(stderr, "need a main lcore and at least one worker (e.g. -l 0,1)\n");
		return -EINVAL;
	}
	dp->n_workers = (uint16_t)(rte_lcore_count() - 1);
	if (dp->n_workers > NATT_MAX_WORKERS)
		return -EINVAL;
	dp->n_ports = rte_eth_dev_count_avail();
	if (dp->n_ports == 0 || dp->n_ports > NATT_MAX_PORTS) {
		fprintf(stderr, "need 1..%u ports, have %u\n", NATT_MAX_PORTS, dp->n_ports);
		return -EINVAL;
	}
	if ((rc = taps_create(dp)) != 0)
		return rc;
	n_mbufs = dp->n_eth_ports * dp->n_workers * (RX_DESC + TX_DESC + NATT_MAX_BURST) +
		  dp->n_workers * (MBUF_CACHE + NATT_HANDOFF_RING_SIZE) + 8192 +
		  dp->o.extra_mbufs;
	dp->pool = rte_pktmbuf_pool_create("natt_mbuf", n_mbufs, MBUF_CACHE, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (dp->pool == NULL)
		return -rte_errno;
	if ((rc = stats_create(dp)) != 0 || (rc = journal_create(dp)) != 0 ||
	    (rc = rings_create(dp)) != 0)
		return rc;
	natt_telemetry_init(dp->hdr, dp->journal); /* failing only loses telemetry */
	for (uint16_t p = 0; p < dp->n_eth_ports; p++)
		if ((rc = port_init(dp, p)) != 0) {
			fprintf(stderr, "port %u: init failed: %s\n", p, rte_strerror(-rc));
			return rc;
		}
	return workers_create(dp);
}

/* Main lcore: wait for a signal or for the idle timeout, print live counters. */
static void
supervise(struct dataplane *dp)
{
	uint64_t hz = rte_get_tsc_hz(), last_print = rte_rdtsc();
	struct natt_worker_stats prev, sum;

	memset(&prev, 0, sizeof(prev));
	while (!quit_signal) {
		uint64_t now;

		rte_delay_us_sleep(10000);
		now = rte_rdtsc();
		if (dp->o.stats_interval_ms &&
		    now - last_print >= dp->o.stats_interval_ms * hz / 1000) {
			natt_stats_print(stdout, dp->hdr, &prev,
					 (double)(now - last_print) / (double)hz);
			last_print = now;
		}
		if (dp->o.exit_after_idle_ms) {
			natt_stats_sum(dp->hdr, &sum);
			if (sum.last_rx_tsc != 0 && now > sum.last_rx_tsc &&
			    now - sum.last_rx_tsc >= dp->o.exit_after_idle_ms * hz / 1000)
				break;
		}
	}
}

static int
write_stats(struct dataplane *dp)
{
	FILE *f = fopen(dp->o.stats_json, "w");

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", dp->o.stats_json, strerror(errno));
		return -1;
	}
	natt_stats_json(f, dp->hdr);
	return fclose(f) == 0 ? 0 : -1;
}

/* <runtime dir>/natt_ready: setup is over. scripts/natt-gw starts
 * natt-control (a secondary) only then: a secondary that attaches while the
 * primary still hot-plugs the --tap devices takes part in that hotplug
 * (net_tap's queue sync over the mp socket) and can make it fail. The file
 * holds our pid, so that a file left by a run that crashed is told apart
 * (natt-control checks the pid; EAL does not clean unknown files up), and it
 * is removed again as soon as we stop: before set-up and at teardown. */
static void
ready_path(char *path, size_t len)
{
	snprintf(path, len, "%s/natt_ready", rte_eal_get_runtime_dir());
}

static void
mark_ready(void)
{
	char path[PATH_MAX];
	FILE *f;

	ready_path(path, sizeof(path));
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "natt-dataplane: cannot create %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

static void
unmark_ready(void)
{
	char path[PATH_MAX];

	ready_path(path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		fprintf(stderr, "natt-dataplane: cannot remove %s: %s\n", path, strerror(errno));
}

static void
teardown(struct dataplane *dp)
{
	unmark_ready();   /* no new secondaries from here on */
	for (uint16_t i = 0; i < dp->n_workers; i++)
		dp->w[i]->stop = true;
	rte_eal_mp_wait_lcore();
	for (uint16_t i = 0; i < dp->n_workers; i++)
		natt_worker_finish(dp->w[i]);
	for (uint16_t p = 0; p < dp->n_eth_ports; p++) {
		rte_eth_dev_stop(p);
		rte_eth_dev_close(p); /* net_pcap flushes its tx_pcap here */
	}
	for (uint16_t i = 0; i < dp->n_workers; i++) {
		natt_sa_tables_destroy(dp->w[i]); /* wipes keys */
		free_mb_mgr(dp->w[i]->mgr);
	}
}

int
main(int argc, char **argv)
{
	struct dataplane dp;
	unsigned int lcore, i = 0;
	int n, rc = 0;

	memset(&dp, 0, sizeof(dp));
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argv[n] = argv[0];
	unmark_ready();   /* one a crashed run under this prefix left */
	if (parse_opts(argc - n, argv + n, &dp.o) != 0) {
		usage(argv[0]);
		rte_eal_cleanup();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (setup(&dp) != 0) {
		rte_eal_cleanup();
		return 1;
	}
	RTE_LCORE_FOREACH_WORKER(lcore)
		rte_eal_remote_launch(natt_worker_main, dp.w[i++], lcore);
	printf("natt-dataplane: ready, waiting for configuration\n");
	fflush(stdout);
	mark_ready();

	supervise(&dp);
	teardown(&dp);
	if (dp.o.stats_json != NULL && write_stats(&dp) != 0)
		rc = 1;
	rte_eal_cleanup();
	return rc;
}
