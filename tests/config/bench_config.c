/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_config.c - time and peak memory of natt_config_load() on one file.
 *
 * Usage: bench_config [-r RUNS] [-t THREADS] [-p TUNNELS] [-m BYTES] FILE
 *
 *   -r RUNS     loads, each in a fresh child process (default 3)
 *   -t THREADS  parser threads (default: online CPUs, at most 4)
 *   -p TUNNELS  tunnels per piece of the parallel parse (default: built-in)
 *   -m BYTES    smallest file parsed in parallel; -1 = never (default: built-in)
 *
 * Each run forks, so that the peak RSS (getrusage of the child) is that of
 * one load alone. Prints one line per run and the medians. Not a test: meson
 * builds it, scripts/gen-tunnels.py makes the input, e.g.
 *     scripts/gen-tunnels.py 1000000 /tmp/t1m.cfg
 *     build/tests/config/bench_config /tmp/t1m.cfg
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define MAX_RUNS 99

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The child: load, report "load_s free_s n_tunnels" on fd, exit. */
static int
child(const char *path, const struct natt_config_opts *opts, int fd)
{
	struct natt_config cfg;
	char err[512], line[128];
	double t0, t1, t2;
	int rc, n;

	t0 = now_s();
	rc = natt_config_load_opts(path, &cfg, err, sizeof(err), opts);
	t1 = now_s();
	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	n = (int)cfg.n_tunnels;
	natt_config_free(&cfg);
	t2 = now_s();
	rc = snprintf(line, sizeof(line), "%.3f %.3f %d\n", t1 - t0, t2 - t1, n);
	return write(fd, line, (size_t)rc) == rc ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct natt_config_opts opts = { .parallel_min = NATT_CFG_PARALLEL_MIN };
	double load[MAX_RUNS], rss[MAX_RUNS];
	int runs = 3, opt;

	while ((opt = getopt(argc, argv, "r:t:p:m:")) != -1) {
		switch (opt) {
		case 'r':
			runs = atoi(optarg);
			break;
		case 't':
			opts.threads = (unsigned int)atoi(optarg);
			break;
		case 'p':
			opts.piece_tunnels = (unsigned int)atoi(optarg);
			break;
		case 'm':
			opts.parallel_min = strcmp(optarg, "-1") == 0 ? SIZE_MAX
								 : strtoull(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || runs < 1 || runs > MAX_RUNS)
		goto usage;

	for (int r = 0; r < runs; r++) {
		struct rusage ru;
		char buf[128] = "";
		int pfd[2], status;
		double lt, ft;
		int n = 0;
		pid_t pid;

		if (pipe(pfd) < 0)
			return 1;
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(pfd[0]);
			_exit(child(argv[optind], &opts, pfd[1]));
		}
		close(pfd[1]);
		if (read(pfd[0], buf, sizeof(buf) - 1) < 0)
			buf[0] = '\0';
		close(pfd[0]);
		if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0 || sscanf(buf, "%lf %lf %d", &lt, &ft, &n) != 3) {
			fprintf(stderr, "run %d failed\n", r + 1);
			return 1;
		}
		load[r] = lt;
		rss[r] = ru.ru_maxrss / 1024.0;
		printf("run %d: %d tunnels, load %.3f s, free %.3f s, peak RSS %.0f MB\n",
		       r + 1, n, lt, ft, rss[r]);
	}
	qsort(load, (size_t)runs, sizeof(load[0]), cmp_double);
	qsort(rss, (size_t)runs, sizeof(rss[0]), cmp_double);
	printf("median of %d: load %.3f s, peak RSS %.0f MB\n", runs, load[runs / 2], rss[runs / 2]);
	return 0;
usage:
	fprintf(stderr, "usage: %s [-r RUNS] [-t THREADS] [-p TUNNELS] [-m BYTES|-1] FILE\n",
		argv[0]);
	return 2;
}
