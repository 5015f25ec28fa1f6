/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * natt-control - load the operator's configuration into a running
 * natt-dataplane.
 *
 *   natt-control <EAL args> -- --config FILE [--once]
 *
 * A DPDK secondary (the caller passes --proc-type=secondary and the
 * dataplane's --file-prefix). The configuration is validated completely
 * before anything is sent; then it is applied as one generation (program.c).
 * With --once we exit when every worker acked; otherwise we stay and log
 * events until SIGINT/SIGTERM (reload comes later).
 *
 * Exit status: 0 applied, 1 invalid config / rejected / usage, 2 timeout.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "config.h"
#include "program.h"

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
usage(const char *prog)
{
	fprintf(stderr, "usage: %s <EAL args> -- --config FILE [--once]\n"
		"  --config FILE  libconfig file to apply (see control/config.h)\n"
		"  --once         exit once the configuration is applied\n", prog);
}

/* Application arguments (after EAL's); 0, or -1 after printing usage. */
static int
parse_args(int argc, char **argv, const char **config, bool *once)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 1; /* EAL used getopt before us */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			*config = optarg;
			break;
		case 'o':
			*once = true;
			break;
		default:
			usage(argv[0]);
			return -1;
		}
	}
	if (!*config || optind != argc) {
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
}

/* Validate, attach, apply; returns the exit status. */
static int
run(const char *path, bool once, struct natt_prog *p)
{
	struct natt_config cfg;
	char err[512];
	double ms;
	int rc;

	if (natt_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return NATT_PROG_REJECTED;
	}
	if (natt_prog_attach(p, NATT_PROG_ATTACH_TIMEOUT_S) < 0) {
		rc = NATT_PROG_REJECTED;
		goto out;
	}
	if (natt_prog_check(p, &cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		rc = NATT_PROG_REJECTED;
		goto out;
	}
	rc = natt_prog_apply(p, &cfg, &ms);
	if (rc != NATT_PROG_OK) {
		fprintf(stderr, "natt-control: generation %u NOT applied\n", p->generation);
		goto out;
	}
	printf("natt-control: applied generation %u: %u interfaces, %u tunnels (%u SAs)"
	       " on %u worker(s) in %.1f ms\n", p->generation, cfg.n_ifaces, cfg.n_tunnels,
	       2 * cfg.n_tunnels, p->n_workers, ms);
	fflush(stdout);
	p->cfg = NULL; /* NACK descriptions must not point at freed memory */
	natt_config_free(&cfg); /* wipes the keys; the workers hold their own copy */
	while (!once && !stop_requested) {
		if (!natt_prog_poll_events(p))
			usleep(10 * 1000);
	}
	return NATT_PROG_OK;
out:
	p->cfg = NULL;
	natt_config_free(&cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	static struct natt_prog prog; /* 16 KiB of batch: keep it off the stack */
	const char *config = NULL;
	bool once = false;
	int ret, rc;

	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "natt-control: cannot initialise EAL: %s\n", rte_strerror(rte_errno));
		return NATT_PROG_REJECTED;
	}
	argc -= ret;
	argv += ret;
	if (parse_args(argc, argv, &config, &once) < 0) {
		rc = NATT_PROG_REJECTED;
	} else if (rte_eal_process_type() != RTE_PROC_SECONDARY) {
		fprintf(stderr, "natt-control: must run as a DPDK secondary of natt-dataplane"
			" (--proc-type=secondary --file-prefix=...)\n");
		rc = NATT_PROG_REJECTED;
	} else {
		install_signals();
		rc = run(config, once, &prog);
	}
	rte_eal_cleanup();
	return rc;
}
