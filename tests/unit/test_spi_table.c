/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_spi_table.c - the SPI -> SA table (dataplane/spi_table.h) against a
 * model that cannot be wrong in the same way: a plain array of (spi, value,
 * aux) searched linearly.
 *
 *   1. the contract: SPI 0 and NULL values refused, -EEXIST, -ENOENT,
 *      -ENOSPC at the capacity, an empty table finds nothing (SPI 0
 *      included);
 *   2. collisions: SPIs chosen so that dozens share one home bucket (and the
 *      buckets after it), added, looked up, deleted in a shuffled order, with
 *      every probe counter back at zero at the end;
 *   3. random differential runs: add / delete / lookup of SPIs drawn
 *      from a small range (so that hits, misses, re-adds and full buckets all
 *      happen) in small tables (long probe runs, wrap-around at the last
 *      bucket), compared with the model after every operation and walked
 *      with natt_spi_foreach at the end.
 *
 * Usage: test_spi_table [seed [ops]] (EAL in --no-huge mode).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_common.h>
#include <rte_eal.h>

#include "check.h"
#include "spi_table.h"

static unsigned int n_pass, n_fail;

/* the model */
struct ent {
	uint32_t spi, aux;
	void *v;
};
static struct ent model[1 << 16];
static unsigned int n_model;

static struct ent *
model_find(uint32_t spi)
{
	for (unsigned int i = 0; i < n_model; i++)
		if (model[i].spi == spi)
			return &model[i];
	return NULL;
}

static uint64_t rng;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;   /* xorshift64 */
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void *
val(uint32_t x)
{
	return (void *)(uintptr_t)(((uint64_t)x << 4) | 8);  /* never NULL */
}

static bool
over_all_zero(const struct natt_spi_table *t)
{
	for (uint32_t i = 0; i <= t->mask; i++)
		if (t->over[i] != 0)
			return false;
	return true;
}

static void
contract(void)
{
	struct natt_spi_table *t = natt_spi_table_create("t_contract", 8);
	uint32_t aux = 7;

	CHECK(t != NULL, "create");
	CHECK(natt_spi_lookup(t, 0) == NULL && natt_spi_lookup(t, 1234) == NULL,
	      "an empty table finds nothing, SPI 0 included");
	CHECK(natt_spi_add(t, 0, val(1), 1) == -EINVAL, "SPI 0 refused");
	CHECK(natt_spi_add(t, 5, NULL, 1) == -EINVAL, "NULL value refused");
	CHECK(natt_spi_add(t, 5, val(5), 50) == 0, "add 5");
	CHECK(natt_spi_add(t, 5, val(6), 60) == -EEXIST, "add 5 again: -EEXIST");
	CHECK(natt_spi_find(t, 5, natt_spi_home(t, 5), &aux) == val(5) && aux == 50,
	      "find 5: value and aux");
	CHECK(natt_spi_lookup(t, 0) == NULL, "SPI 0 still finds nothing");
	CHECK(natt_spi_del(t, 6) == -ENOENT && natt_spi_del(t, 0) == -ENOENT,
	      "delete of an absent SPI or of 0: -ENOENT");
	for (uint32_t s = 100; s < 107; s++)
		CHECK(natt_spi_add(t, s, val(s), s) == 0, "add %u", s);
	CHECK(t->n == 8 && natt_spi_add(t, 200, val(200), 1) == -ENOSPC,
	      "capacity 8 reached: -ENOSPC (n %u)", t->n);
	CHECK(natt_spi_del(t, 5) == 0 && natt_spi_lookup(t, 5) == NULL &&
	      natt_spi_add(t, 200, val(200), 1) == 0, "after a delete there is room again");
	for (uint32_t s = 100; s < 107; s++)
		CHECK(natt_spi_del(t, s) == 0, "delete %u", s);
	CHECK(natt_spi_del(t, 200) == 0 && t->n == 0 && over_all_zero(t),
	      "empty again, every probe counter 0");
	natt_spi_table_free(t);
	natt_spi_table_free(NULL);
}

static void
count_cb(uint32_t spi, void *v, uint32_t aux, void *arg)
{
	struct ent *e = model_find(spi);
	unsigned int *bad = arg;

	if (e == NULL || e->v != v || e->aux != aux)
		(*bad)++;
	bad[1]++;
}

static void
collisions(void)
{
	struct natt_spi_table *t = natt_spi_table_create("t_coll", 256); /* 128 buckets */
	uint32_t home = 0, spis[64], n = 0, aux;
	unsigned int bad[2] = { 0, 0 };

	/* 40 SPIs with home bucket mask (the last: probing wraps to 0, 1, ...),
	 * 24 with home 0 behind them */
	for (uint32_t s = 1; n < 64; s++) {
		home = natt_spi_home(t, s);
		if ((n < 40 && home == t->mask) || (n >= 40 && home == 0))
			spis[n++] = s;
	}
	n_model = 0;
	for (uint32_t i = 0; i < n; i++) {
		CHECK(natt_spi_add(t, spis[i], val(spis[i]), i) == 0, "collision add %u", i);
		model[n_model++] = (struct ent){ spis[i], i, val(spis[i]) };
	}
	CHECK(t->over[t->mask] == 40 - 4, "last bucket passed by 36 entries (%u)",
	      t->over[t->mask]);
	for (uint32_t i = 0; i < n; i++)
		CHECK(natt_spi_find(t, spis[i], natt_spi_home(t, spis[i]), &aux) == val(spis[i]) &&
		      aux == i, "collision find %u", i);
	natt_spi_foreach(t, count_cb, bad);
	CHECK(bad[0] == 0 && bad[1] == n, "foreach: %u entries, %u wrong", bad[1], bad[0]);
	for (uint32_t i = n - 1; i > 0; i--) {  /* shuffle */
		uint32_t j = rnd() % (i + 1), x = spis[i];

		spis[i] = spis[j];
		spis[j] = x;
	}
	for (uint32_t i = 0; i < n; i++) {
		CHECK(natt_spi_del(t, spis[i]) == 0, "collision delete %u", i);
		for (uint32_t j = i + 1; j < n; j++)
			if (natt_spi_lookup(t, spis[j]) != val(spis[j])) {
				CHECK(0, "after deleting %u, SPI %u lost", i, spis[j]);
				break;
			}
	}
	CHECK(t->n == 0 && over_all_zero(t), "collisions: empty, probe counters 0");
	natt_spi_table_free(t);
}

static void
differential(uint32_t cap, uint32_t range, unsigned int ops)
{
	struct natt_spi_table *t = natt_spi_table_create("t_diff", cap);
	unsigned int wrong = 0, bad[2] = { 0, 0 };

	n_model = 0;
	for (unsigned int i = 0; i < ops; i++) {
		uint32_t spi = rnd() % range, x = rnd(), aux;
		struct ent *e = model_find(spi);
		int rc, want;
		void *v;

		switch (rnd() % 3) {
		case 0: case 1:  /* add */
			want = spi == 0 ? -EINVAL : e != NULL ? -EEXIST :
			       n_model >= cap ? -ENOSPC : 0;
			rc = natt_spi_add(t, spi, val(x), x);
			if (rc == 0)
				model[n_model++] = (struct ent){ spi, x, val(x) };
			break;
		default:         /* delete */
			want = e != NULL ? 0 : -ENOENT;
			rc = natt_spi_del(t, spi);
			if (rc == 0)
				*e = model[--n_model];
			break;
		}
		if (rc != want) {
			wrong++;
			if (wrong < 5)
				printf("op %u spi %u: rc %d, model says %d\n", i, spi, rc, want);
		}
		/* lookups: the SPI just used and a random one */
		for (int k = 0; k < 2; k++) {
			uint32_t s = k == 0 ? spi : rnd() % range;
			struct ent *m = model_find(s);

			v = natt_spi_find(t, s, natt_spi_home(t, s), &aux);
			if (m == NULL ? v != NULL : (v != m->v || aux != m->aux))
				wrong++;
		}
		if (t->n != n_model)
			wrong++;
	}
	CHECK(wrong == 0, "cap %u, SPIs < %u, %u ops: %u disagreements with the model",
	      cap, range, ops, wrong);
	natt_spi_foreach(t, count_cb, bad);
	CHECK(bad[0] == 0 && bad[1] == n_model, "cap %u: foreach %u of %u entries, %u wrong",
	      cap, bad[1], n_model, bad[0]);
	while (n_model > 0) {
		if (natt_spi_del(t, model[n_model - 1].spi) != 0)
			wrong++;
		n_model--;
	}
	CHECK(wrong == 0 && t->n == 0 && over_all_zero(t),
	      "cap %u: all deleted, probe counters 0", cap);
	natt_spi_table_free(t);
}

int
main(int argc, char **argv)
{
	char *eal[] = { argv[0], "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
			"--log-level", "lib.eal:error", "--file-prefix", "test-spi-table" };
	unsigned long long seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 20261207;
	unsigned int ops = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 0) : 200000;

	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	rng = seed | 1;
	printf("seed %llu, %u ops per differential run\n", seed, ops);
	contract();
	collisions();
	differential(8, 24, ops);          /* 4 buckets: full buckets, wrap-around */
	differential(64, 200, ops);
	differential(64, 70, ops);         /* near capacity most of the time */
	differential(4096, 12000, ops);
	differential(4096, 5000, ops);
	printf("%u passed, %u failed\n", n_pass, n_fail);
	rte_eal_cleanup();
	return n_fail != 0;
}
