/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * natt-control - keep a running natt-dataplane programmed from the
 * operator's configuration file, and show what it does.
 *
 *   natt-control <EAL args> -- --config FILE [--once]
 *                [--textfile PATH] [--textfile-interval S]
 *   natt-control <EAL args> -- show tunnels|tunnel NAME|stats|drops|events
 *                [--json|--prometheus]
 *   natt-control <EAL args> -- diagnose TUNNEL [--json]
 *
 * A DPDK secondary (the caller passes --proc-type=secondary and the
 * dataplane's --file-prefix). On start it reads the journal the dataplane
 * keeps for it (what a previous natt-control installed) and converges to the
 * file (reconcile.c). Without --once it then stays: the file is read again
 * when it changes (inotify on its directory, so an editor that writes a new
 * file and renames it over the old one is seen too) and on SIGHUP. Every
 * reload is all or nothing: the whole file is parsed and validated before
 * anything is sent; a bad file is refused with FILE:LINE: reason and the
 * running configuration stays. Events from the workers (NAT mapping
 * changes, idle tunnels, used-up sequence numbers, expired grace SAs) are
 * logged and kept in the journal.
 *
 * Exit status: 0 applied (or stopped by SIGINT/SIGTERM), 1 invalid config /
 * rejected / usage, 2 timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/inotify.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "config.h"
#include "program.h"
#include "reconcile.h"
#include "show.h"

#define RELOAD_SETTLE_MS 200      /* quiet time after the last file event */
#define EVT_POLL_MS 10

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t hup_requested;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_requested = 1;
	else
		stop_requested = 1;
}

struct opts {
	const char *config;
	const char *textfile;
	unsigned int textfile_s;
	bool once;
};

struct ctl {
	struct opts o;
	struct natt_prog prog;
	struct natt_rec rec;
	char path[PATH_MAX];       /* config, absolute */
	char dir[PATH_MAX];        /* its directory, watched */
	const char *base;          /* its name in dir */
};

static void
usage(const char *prog)
{
	fprintf(stderr, "usage: %s <EAL args> -- --config FILE [--once] [--textfile PATH]"
		" [--textfile-interval S]\n"
		"       %s <EAL args> -- show tunnels|tunnel NAME|stats|drops|events"
		" [--json|--prometheus]\n"
		"       %s <EAL args> -- diagnose TUNNEL [--json]\n"
		"  --config FILE           libconfig file to apply (see control/config.h)\n"
		"  --once                  exit once the configuration is applied\n"
		"  --textfile PATH         keep Prometheus counters in PATH (node_exporter)\n"
		"  --textfile-interval S   rewrite it every S seconds (default 5)\n",
		prog, prog, prog);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Application arguments (after EAL's); 0, or -1 after printing usage. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, 'o' },
		{ "textfile", required_argument, NULL, 't' },
		{ "textfile-interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	o->textfile_s = 5;
	optind = 1; /* EAL used getopt before us */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->config = optarg;
			break;
		case 'o':
			o->once = true;
			break;
		case 't':
			o->textfile = optarg;
			break;
		case 'i': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end != '\0' || v == 0 || v > 3600) {
				fprintf(stderr, "--textfile-interval: 1..3600 seconds\n");
				return -1;
			}
			o->textfile_s = (unsigned int)v;
			break;
		}
		default:
			usage(argv[0]);
			return -1;
		}
	}
	if (!o->config || optind != argc) {
		usage(argv[0]);
		return -1;
	}
	return 0;
}

static void
install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- events ---- */

/* Copy a string into a fixed field, cut to fit, always terminated. */
static void
copy_cut(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *
ipstr(uint32_t addr, char *buf)
{
	return inet_ntop(AF_INET, &addr, buf, INET_ADDRSTRLEN);
}

static void
journal_event(struct ctl *c, const struct natt_evt *e)
{
	struct natt_journal_hdr *j = c->rec.j;
	const struct natt_stats_hdr *h = c->prog.hdr;
	struct natt_journal_event je = {
		.type = e->type, .worker = e->worker, .tunnel_id = e->tunnel_id,
		.spi = e->spi, .addr = e->addr, .old_addr = e->old_addr, .port = e->port,
		.old_port = e->old_port, .status = e->status, .value = e->value,
	};
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	const char *name = "?";

	/* the dataplane's TSC to wall-clock time */
	je.unix_ns = h->start_unix_ns + (uint64_t)((double)(e->tsc - h->start_tsc) * 1e9 /
						   (double)h->tsc_hz);
	if (e->tunnel_id < j->max_tunnels) {
		name = natt_journal_tunnel(j, e->tunnel_id)->name;
		copy_cut(je.name, sizeof(je.name), name);
	}
	natt_rec_log_event(&c->rec, &je);
	switch (e->type) {
	case NATT_EVT_SEQ_EXHAUSTED:
		fprintf(stderr, "natt-control: event: tunnel \"%s\" outbound SA 0x%08x used up its"
			" sequence numbers: it sends nothing until rekeyed\n", name, e->spi);
		break;
	case NATT_EVT_NAT_MAPPING:
		fprintf(stderr, "natt-control: event: tunnel \"%s\" peer moved from %s:%u to"
			" %s:%u (NAT mapping changed; %s)\n", name, ipstr(e->old_addr, a),
			ntohs(e->old_port), ipstr(e->addr, b), ntohs(e->port),
			e->value & NATT_EVT_MAPPING_FOLLOWED ? "outbound follows"
			: "pinned: outbound stays");
		break;
	case NATT_EVT_IDLE:
		fprintf(stderr, "natt-control: event: tunnel \"%s\" idle for %u s (peer %s:%u)\n",
			name, e->value, ipstr(e->addr, a), ntohs(e->port));
		break;
	case NATT_EVT_SA_EXPIRED:
		fprintf(stderr, "natt-control: event: tunnel \"%s\" old inbound SA 0x%08x removed,"
			" rekey grace over\n", name, e->spi);
		break;
	default:
		fprintf(stderr, "natt-control: event type %u from worker %u tunnel %u spi 0x%08x\n",
			e->type, e->worker, e->tunnel_id, e->spi);
		break;
	}
}

static void
on_event(void *ctx, const struct natt_evt *e)
{
	journal_event(ctx, e);
}

static void
journal_note(struct ctl *c, uint16_t type, int32_t status, uint32_t value)
{
	struct natt_journal_event je = {
		.unix_ns = natt_rec_now_ns(), .type = type, .tunnel_id = UINT32_MAX,
		.status = status, .value = value,
	};

	natt_rec_log_event(&c->rec, &je);
}

/* ---- reload ---- */

static void
reload_failed(struct ctl *c, enum natt_reload_status st, const char *why)
{
	struct natt_journal_hdr *j = c->rec.j;

	j->reloads_failed++;
	j->last_status = st;
	copy_cut(j->last_error, sizeof(j->last_error), why);
	journal_note(c, NATT_JEVT_RELOAD_FAILED, 0, st);
}

/* While workers forward, a reload must not take their cores: the file is
 * then parsed on our own thread only (config.c's helper threads are not
 * pinned). Before the first COMMIT the workers sleep, and the parse may use
 * every CPU. */
static const struct natt_config_opts *
parse_opts(const struct ctl *c)
{
	static const struct natt_config_opts alone = { .threads = 1 };

	for (uint32_t w = 0; w < c->prog.n_workers; w++)
		if (__atomic_load_n(&natt_stats_worker(c->prog.hdr, w)->active, __ATOMIC_RELAXED))
			return &alone;
	return NULL;
}

/* Read, validate, converge. Returns enum natt_prog_status. */
static int
reload(struct ctl *c, bool first)
{
	struct natt_journal_hdr *j = c->rec.j;
	struct natt_reload_counts n;
	struct natt_config cfg;
	double t0 = now_ms(), t1, t2;
	char err[512];
	int rc;

	j->last_attempt_ns = natt_rec_now_ns();
	if (natt_config_load_opts(c->path, &cfg, err, sizeof(err), parse_opts(c)) < 0 ||
	    natt_rec_check(&c->rec, &cfg, c->path, err, sizeof(err)) < 0) {
		fprintf(stderr, "natt-control: %s refused, running configuration kept: %s\n",
			first ? "configuration" : "reload", err);
		reload_failed(c, NATT_RELOAD_INVALID, err);
		natt_config_free(&cfg);
		return NATT_PROG_REJECTED;
	}
	t1 = now_ms();
	rc = natt_rec_apply(&c->rec, &cfg, &n);
	t2 = now_ms();
	j->last_parse_us = (uint32_t)((t1 - t0) * 1e3);
	j->last_apply_us = (uint32_t)((t2 - t1) * 1e3);
	j->last_added = n.added;
	j->last_removed = n.removed;
	j->last_updated = n.updated;
	j->last_rekeyed = n.rekeyed;
	j->last_unchanged = n.unchanged;
	if (rc == NATT_PROG_OK) {
		j->reloads_ok++;
		j->last_status = NATT_RELOAD_OK;
		j->last_ok_ns = natt_rec_now_ns();
		j->last_error[0] = '\0';
		journal_note(c, NATT_JEVT_RELOAD_OK, (int32_t)(t2 - t0), c->prog.generation);
		fprintf(stderr, "natt-control: %s generation %u applied on %u worker(s) in %.1f ms"
			" (parse %.1f ms, apply %.1f ms; added %u, removed %u, updated %u,"
			" rekeyed %u, unchanged %u, reinstalled %u; %u tunnels)\n",
			first ? "start:" : "reload", c->prog.generation, c->prog.n_workers,
			t2 - t0, t1 - t0, t2 - t1, n.added, n.removed, n.updated, n.rekeyed,
			n.unchanged, n.reinstalled, n.n_tunnels);
		if (first)
			printf("natt-control: applied generation %u: %u interfaces, %u tunnels"
			       " (%u SAs) on %u worker(s) in %.1f ms\n", c->prog.generation,
			       cfg.n_ifaces, cfg.n_tunnels, 2 * cfg.n_tunnels, c->prog.n_workers,
			       t2 - t0);
		fflush(stdout);
	} else {
		snprintf(err, sizeof(err), "generation %u %s: %u tunnel(s) refused by a worker,"
			 " they are installed again on the next reload", c->prog.generation,
			 rc == NATT_PROG_TIMEOUT ? "timed out" : "NOT fully applied", n.failed);
		fprintf(stderr, "natt-control: %s\n", err);
		reload_failed(c, rc == NATT_PROG_TIMEOUT ? NATT_RELOAD_TIMEOUT
							 : NATT_RELOAD_REJECTED, err);
	}
	natt_config_free(&cfg); /* wipes the keys; the workers hold their own copy */
	return rc;
}

/* ---- watching the file ---- */

static int
watch_init(struct ctl *c)
{
	char tmp[PATH_MAX];
	int fd;

	if (realpath(c->o.config, c->path) == NULL) {
		/* not there yet: watch where it will appear */
		snprintf(c->path, sizeof(c->path), "%s", c->o.config);
	}
	snprintf(tmp, sizeof(tmp), "%s", c->path);
	snprintf(c->dir, sizeof(c->dir), "%s", dirname(tmp));
	c->base = strrchr(c->path, '/') ? strrchr(c->path, '/') + 1 : c->path;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, c->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
					IN_DELETE | IN_MOVED_FROM | IN_ATTRIB) < 0) {
		fprintf(stderr, "natt-control: cannot watch %s: %s (SIGHUP still reloads)\n",
			c->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Did the pending inotify events touch our file? */
static bool
watch_read(struct ctl *c, int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t len;

	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, c->base) == 0)
				ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return ours;
}

static void
textfile_write(struct ctl *c)
{
	static int last_rc;
	int rc = natt_prom_textfile(c->o.textfile);

	if (rc != 0 && rc != last_rc)   /* once per kind of failure, not every 5 s */
		fprintf(stderr, "natt-control: cannot write %s: %s\n", c->o.textfile,
			strerror(-rc));
	last_rc = rc;
}

static int
serve(struct ctl *c)
{
	double due = -1, next_text = 0;
	int fd = watch_init(c);

	fprintf(stderr, "natt-control: watching %s (inotify on %s, SIGHUP)\n", c->path, c->dir);
	while (!stop_requested) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double t;

		if (natt_prog_poll_events(&c->prog) == 0 && poll(&pfd, fd >= 0, EVT_POLL_MS) > 0 &&
		    watch_read(c, fd))
			due = now_ms() + RELOAD_SETTLE_MS;  /* editors write in steps */
		t = now_ms();
		if (hup_requested) {
			hup_requested = 0;
			fprintf(stderr, "natt-control: SIGHUP: reloading %s\n", c->path);
			due = t;
		}
		if (due >= 0 && t >= due) {
			due = -1;
			reload(c, false);
		}
		if (c->o.textfile && t >= next_text) {
			next_text = t + c->o.textfile_s * 1e3;
			textfile_write(c);
		}
	}
	if (fd >= 0)
		close(fd);
	return NATT_PROG_OK;
}

static int
run(struct ctl *c)
{
	int rc;

	if (natt_prog_attach(&c->prog, NATT_PROG_ATTACH_TIMEOUT_S) < 0 ||
	    natt_rec_attach(&c->rec, &c->prog) < 0)
		return NATT_PROG_REJECTED;
	/* events that arrive while we apply are logged too */
	c->prog.hooks.event = on_event;
	c->prog.hooks.event_ctx = c;
	natt_prog_drain_stale(&c->prog);
	journal_note(c, NATT_JEVT_CONTROL_START, getpid(), c->rec.j->n_tunnels);
	if (realpath(c->o.config, c->path) == NULL)
		snprintf(c->path, sizeof(c->path), "%s", c->o.config);
	copy_cut(c->rec.j->config_path, sizeof(c->rec.j->config_path), c->path);
	rc = reload(c, true);
	if (rc == NATT_PROG_OK && !c->o.once)
		rc = serve(c);
	natt_rec_detach(&c->rec);
	return rc;
}

/*
 * A secondary that attaches while natt-dataplane is still setting up takes
 * part in the primary's memory reservations (EAL's mp_malloc_sync), and if
 * it answers late the primary's reservation fails and natt-dataplane exits
 * ("RING: Cannot reserve memory"): seen when `show` polled a gateway under
 * ASan as it started. The primary creates <runtime dir>/natt_ready, with its
 * pid, when its setup is over, and removes it when it stops (dataplane/main.c),
 * so a secondary checks for it, and that the pid lives, before it attaches, as
 * scripts/natt-gw does before it starts the daemon. Returns
 * false (with a message) if the primary named by --file-prefix is not ready;
 * true for anything but --proc-type=secondary.
 */
static bool
primary_ready(int argc, char *const *argv)
{
	const char *prefix = "rte", *base = "/var/run";
	bool secondary = false;
	char path[PATH_MAX];
	long pid;
	FILE *f;

	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--proc-type=secondary") == 0 ||
		    (strcmp(argv[i], "--proc-type") == 0 && i + 1 < argc &&
		     strcmp(argv[i + 1], "secondary") == 0))
			secondary = true;
		else if (strncmp(argv[i], "--file-prefix=", 14) == 0)
			prefix = argv[i] + 14;
		else if (strcmp(argv[i], "--file-prefix") == 0 && i + 1 < argc)
			prefix = argv[i + 1];
	}
	if (!secondary)
		return true;
	if (getuid() != 0)   /* where EAL puts the runtime directory */
		base = getenv("XDG_RUNTIME_DIR") != NULL ? getenv("XDG_RUNTIME_DIR") : "/tmp";
	snprintf(path, sizeof(path), "%s/dpdk/%s/natt_ready", base, prefix);
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "natt-control: natt-dataplane with --file-prefix %s is not running "
			"or still starting (no %s)\n", prefix, path);
		return false;
	}
	/* the primary's pid: a file that a crashed run left names a dead one */
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > INT_MAX ||
	    (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
		fclose(f);
		fprintf(stderr, "natt-control: natt-dataplane with --file-prefix %s is not running "
			"or still starting (%s is stale: no such process)\n", prefix, path);
		return false;
	}
	fclose(f);
	return true;
}

int
main(int argc, char **argv)
{
	static struct ctl c; /* batch buffers: keep them off the stack */
	bool show = natt_show_requested(argc, argv); /* before EAL rewrites argv */
	int ret, rc;

	if (!primary_ready(argc, argv))
		return show ? NATT_SHOW_NOATTACH : NATT_PROG_REJECTED;
	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		/* a secondary with no primary under that prefix fails with errno 0 */
		fprintf(stderr, "natt-control: cannot initialise EAL: %s\n", rte_errno ?
			rte_strerror(rte_errno) : "is natt-dataplane running with this --file-prefix?");
		return show ? NATT_SHOW_NOATTACH : NATT_PROG_REJECTED;
	}
	argc -= ret;
	argv += ret;
	if (show) {
		rc = natt_show_main(argc - 1, argv + 1);
		rte_eal_cleanup();
		return rc;
	}
	if (parse_args(argc, argv, &c.o) < 0) {
		rc = NATT_PROG_REJECTED;
	} else if (rte_eal_process_type() != RTE_PROC_SECONDARY) {
		fprintf(stderr, "natt-control: must run as a DPDK secondary of natt-dataplane"
			" (--proc-type=secondary --file-prefix=...)\n");
		rc = NATT_PROG_REJECTED;
	} else {
		install_signals();
		rc = run(&c);
	}
	rte_eal_cleanup();
	return rc;
}
