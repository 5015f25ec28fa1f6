/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spi_table.c - the SPI -> SA table's control side (spi_table.h): create,
 * add, delete, walk. Only the owning worker calls these, between
 * bursts.
 */
#include <errno.h>

#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_random.h>

#include "spi_table.h"

struct natt_spi_table *
natt_spi_table_create(const char *name, uint32_t cap)
{
	struct natt_spi_table *t;
	uint32_t nb = 1;

	if (cap == 0 || cap > (1u << 30))
		return NULL;
	while (nb * 2 < cap)
		nb <<= 1;
	t = rte_zmalloc_socket(name, sizeof(*t), RTE_CACHE_LINE_SIZE, (int)rte_socket_id());
	if (t == NULL)
		return NULL;
	/* on the worker's own socket: it is the only reader */
	t->bkt = rte_zmalloc_socket(name, (size_t)nb * sizeof(*t->bkt), RTE_CACHE_LINE_SIZE,
				    (int)rte_socket_id());
	t->over = rte_zmalloc_socket(name, (size_t)nb * sizeof(*t->over), RTE_CACHE_LINE_SIZE,
				     (int)rte_socket_id());
	if (t->bkt == NULL || t->over == NULL) {
		natt_spi_table_free(t);
		return NULL;
	}
	t->mask = nb - 1;
	t->seed = (uint32_t)rte_rand();
	t->cap = cap;
	return t;
}

void
natt_spi_table_free(struct natt_spi_table *t)
{
	if (t == NULL)
		return;
	rte_free(t->bkt);
	rte_free(t->over);
	rte_free(t);
}

/* The bucket and slot of spi, or -ENOENT. */
static int
slot_of(const struct natt_spi_table *t, uint32_t spi, uint32_t *bi, unsigned int *ki)
{
	uint32_t i = natt_spi_home(t, spi);

	if (spi == 0)
		return -ENOENT;
	for (uint32_t p = 0; p <= t->max_probe; p++) {
		const struct natt_spi_bkt *b = &t->bkt[i];

		for (unsigned int k = 0; k < NATT_SPI_BKT_ENTRIES; k++)
			if (b->spi[k] == spi) {
				*bi = i;
				*ki = k;
				return 0;
			}
		if (t->over[i] == 0)
			break;
		i = (i + 1) & t->mask;
	}
	return -ENOENT;
}

int
natt_spi_add(struct natt_spi_table *t, uint32_t spi, void *v, uint32_t aux)
{
	uint32_t i, bi, d = 0;
	unsigned int ki;

	if (spi == 0 || v == NULL)
		return -EINVAL;
	if (slot_of(t, spi, &bi, &ki) == 0)
		return -EEXIST;
	if (t->n >= t->cap)
		return -ENOSPC;
	/* n < cap <= 2 * buckets < 4 * buckets: a free slot exists */
	for (i = natt_spi_home(t, spi);; i = (i + 1) & t->mask) {
		struct natt_spi_bkt *b = &t->bkt[i];

		for (unsigned int k = 0; k < NATT_SPI_BKT_ENTRIES; k++)
			if (b->spi[k] == 0) {
				b->aux[k] = aux;
				b->v[k] = v;
				b->spi[k] = spi;
				t->n++;
				if (d > t->max_probe)
					t->max_probe = d;
				return 0;
			}
		t->over[i]++;
		d++;
	}
}

int
natt_spi_del(struct natt_spi_table *t, uint32_t spi)
{
	uint32_t bi;
	unsigned int ki;

	if (slot_of(t, spi, &bi, &ki) != 0)
		return -ENOENT;
	t->bkt[bi].spi[ki] = 0;
	t->bkt[bi].v[ki] = NULL;
	t->bkt[bi].aux[ki] = 0;
	for (uint32_t i = natt_spi_home(t, spi); i != bi; i = (i + 1) & t->mask)
		t->over[i]--;
	t->n--;
	return 0;
}

void
natt_spi_foreach(const struct natt_spi_table *t,
		 void (*fn)(uint32_t spi, void *v, uint32_t aux, void *arg), void *arg)
{
	for (uint32_t i = 0; i <= t->mask; i++)
		for (unsigned int k = 0; k < NATT_SPI_BKT_ENTRIES; k++)
			if (t->bkt[i].spi[k] != 0)
				fn(t->bkt[i].spi[k], t->bkt[i].v[k], t->bkt[i].aux[k], arg);
}
