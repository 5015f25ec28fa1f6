/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spi_table.h - a worker's SPI -> SA table, one per direction.
 *
 * Why not rte_hash: a lookup there reads a bucket of signatures, then the
 * key store for the key (two cache lines, two dependent misses with many
 * tunnels) and calls a compare function; with one 4-byte key that was ~20
 * cycles of a 106-byte packet's ~150. Here a bucket is one cache line that
 * holds four SPIs, their values and the tunnel ids: the hash of every SPI of
 * a burst is computed and its bucket prefetched while the burst is being
 * classified, and the lookup itself is four compares.
 *
 * Open addressing over buckets (linear probing): an SPI lives in its home
 * bucket, or after it when that was full; over[i] counts the entries that
 * had to pass bucket i, so a lookup goes on past i only when over[i] != 0
 * (the common miss costs the home bucket and one word). Deleting an entry
 * decrements the counts it had raised, so there are no tombstones. No lookup
 * reads more than max_probe + 1 buckets, whatever the deletes left behind.
 *
 * SPI 0 is never an entry (RFC 4303 2.1; an empty slot has SPI 0 and value
 * NULL, so a lookup of 0 finds nothing). The hash is CRC32-C with a random
 * seed per table. The table belongs to one worker, its only reader and
 * writer: no locks, no atomics.
 */
#ifndef NATT_SPI_TABLE_H
#define NATT_SPI_TABLE_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_prefetch.h>

#define NATT_SPI_BKT_ENTRIES 4

struct natt_spi_bkt {
	uint32_t spi[NATT_SPI_BKT_ENTRIES];   /* 0 = free */
	uint32_t aux[NATT_SPI_BKT_ENTRIES];   /* tunnel id */
	void *v[NATT_SPI_BKT_ENTRIES];
} __rte_cache_aligned;

struct natt_spi_table {
	struct natt_spi_bkt *bkt;
	uint32_t *over;       /* [mask + 1] entries that probed past bucket i */
	uint32_t mask;        /* buckets - 1 */
	uint32_t seed;
	uint32_t n;           /* entries */
	uint32_t cap;         /* most entries allowed */
	uint32_t max_probe;   /* most buckets an entry was ever stored past its
			       * home: bounds every lookup */
};

/** A table for up to cap entries (buckets: the power of two >= cap / 2, so
 *  that it is at most half full). NULL if out of memory. */
struct natt_spi_table *natt_spi_table_create(const char *name, uint32_t cap);
/** Free the table (not what its values point to). NULL is fine. */
void natt_spi_table_free(struct natt_spi_table *t);

/** Add spi -> (v, aux). 0, -EEXIST, -ENOSPC (cap reached) or -EINVAL
 *  (spi 0 or v NULL). */
int natt_spi_add(struct natt_spi_table *t, uint32_t spi, void *v, uint32_t aux);
/** Remove spi. 0 or -ENOENT. */
int natt_spi_del(struct natt_spi_table *t, uint32_t spi);
/** Visit every entry; fn may not change the table. */
void natt_spi_foreach(const struct natt_spi_table *t,
		      void (*fn)(uint32_t spi, void *v, uint32_t aux, void *arg), void *arg);

/** Home bucket of spi: compute it early, then natt_spi_prefetch() it. */
static inline uint32_t
natt_spi_home(const struct natt_spi_table *t, uint32_t spi)
{
	return rte_hash_crc_4byte(spi, t->seed) & t->mask;
}

static inline void
natt_spi_prefetch(const struct natt_spi_table *t, uint32_t home)
{
	rte_prefetch0(&t->bkt[home]);
}

/** The value of spi, whose home bucket is home, or NULL; its aux in *aux. */
static inline void *
natt_spi_find(const struct natt_spi_table *t, uint32_t spi, uint32_t home, uint32_t *aux)
{
	uint32_t i = home;

	for (uint32_t p = 0;; p++) {
		const struct natt_spi_bkt *b = &t->bkt[i];

		for (unsigned int k = 0; k < NATT_SPI_BKT_ENTRIES; k++)
			if (b->spi[k] == spi) {
				*aux = b->aux[k];
				return b->v[k];
			}
		if (likely(t->over[i] == 0) || p == t->max_probe)
			return NULL;
		i = (i + 1) & t->mask;
	}
}

static inline void *
natt_spi_lookup(const struct natt_spi_table *t, uint32_t spi)
{
	uint32_t aux;

	return natt_spi_find(t, spi, natt_spi_home(t, spi), &aux);
}

#endif /* NATT_SPI_TABLE_H */
