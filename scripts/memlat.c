/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlat.c - what a cache miss costs on this machine, for docs/BENCHMARKS.md:
 * the latency of a load of a random 64-byte line of a 1 GiB buffer (far
 * beyond any cache), and what a second load at +64 .. +960 bytes from it
 * costs once the first has arrived. The second number tells how many
 * distinct "places" a packet's cache lines really are: a line the hardware
 * prefetchers bring along with its neighbour costs little, a line elsewhere
 * costs a whole miss. TSC cycles; run it pinned (taskset -c 1).
 *
 *   cc -O2 -o memlat scripts/memlat.c && taskset -c 1 ./memlat
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <x86intrin.h>

#define BUF_SIZE (1ul << 30)
#define SAMPLES (1u << 19)
#define ROUNDS 5

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Cycles per sample of: load a random 1024-byte-aligned line, then (if
 * second >= 0) a load at +second bytes that depends on the first. */
static double
measure(volatile const uint8_t *buf, const uint64_t *off, long second)
{
	uint64_t t0 = __rdtsc(), acc = 0;

	for (unsigned int i = 0; i < SAMPLES; i++) {
		uint64_t v = *(volatile const uint64_t *)(buf + off[i]);

		if (second >= 0)
			acc += *(volatile const uint64_t *)(buf + off[i] + (uint64_t)second + (v & 1));
		_mm_lfence();   /* one sample at a time: latency, not throughput */
	}
	return (double)(__rdtsc() - t0 + (acc & 1)) / SAMPLES;
}

int
main(void)
{
	uint8_t *buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	const char *pages = "2 MB pages";
	uint64_t *off = malloc(SAMPLES * sizeof(*off)), s = 88172645463325252ull;
	double r[17][ROUNDS];

	if (buf == MAP_FAILED) {
		pages = "4 KB pages (no hugepages free: TLB misses included)";
		buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (buf == MAP_FAILED || off == NULL) {
		perror("memlat");
		return 1;
	}
	memset(buf, 1, BUF_SIZE);
	for (unsigned int i = 0; i < SAMPLES; i++)
		off[i] = (rnd(&s) % (BUF_SIZE / 1024 - 1)) * 1024;
	for (int k = 0; k < ROUNDS; k++)
		for (long d = -1; d < 16; d++)
			r[d + 1][k] = measure(buf, off, d < 0 ? -1 : d * 64);
	printf("memlat: 1 GiB buffer, %s, %u random lines per cell, median of %d rounds, TSC cycles\n",
	       pages, SAMPLES, ROUNDS);
	for (long d = -1; d < 16; d++) {
		double *c = r[d + 1];

		qsort(c, ROUNDS, sizeof(*c), cmp_double);
		if (d < 0)
			printf("  one miss: %.0f cycles\n", c[ROUNDS / 2]);
		else
			printf("  then +%4ld B: %.0f more\n", d * 64, c[ROUNDS / 2] - r[0][ROUNDS / 2]);
	}
	return 0;
}
