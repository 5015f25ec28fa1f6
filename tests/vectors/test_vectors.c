/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_vectors.c - draft-mcgrew-gcm-test-01 section 4 through natt-gw's own
 * crypto and inbound code (see README.md in this directory).
 *
 * usage: test_vectors <EAL args>   (e.g. --no-huge -m 256 --no-pci -l 0)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include "spi_table.h"
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_udp.h>

#include "test_worker.h"

#include "vectors.h"

static int passed, failed;

static void
check(int ok, int num, const char *what)
{
	printf("%s case %d: %s\n", ok ? "PASS" : "FAIL", num, what);
	if (ok)
		passed++;
	else
		failed++;
}

/* Level 1: key expansion + one-op burst against the published answer. */
static void
crypto_level(IMB_MGR *mgr, const struct vec *v)
{
	unsigned int key_len = v->keymat_len - 4;
	uint32_t ct_len = v->packet_len - 16 - 16;
	struct natt_gcm_key *k = aligned_alloc(64, sizeof(*k));
	struct natt_gcm_op op;
	uint8_t buf[2048];

	if (v->key_bits == 192) {
		check(natt_gcm_key_init(mgr, k, v->keymat, (uint8_t)key_len,
					v->keymat + key_len) != 0,
		      v->num, "AES-192 refused at key set-up");
		free(k);
		return;
	}
	check(natt_gcm_key_init(mgr, k, v->keymat, (uint8_t)key_len,
				v->keymat + key_len) == 0, v->num, "key expansion");
	memset(&op, 0, sizeof(op));
	op.key = k;
	memcpy(buf, v->packet + 16, ct_len);
	op.data = buf;
	op.len = ct_len;
	memcpy(op.nonce, k->salt, 4);
	memcpy(op.nonce + 4, v->packet + 8, 8);
	memcpy(op.aad, v->packet, 4);
	if (v->esn) {
		uint32_t hi = htonl(v->seq_high);

		memcpy(op.aad + 4, &hi, 4);
		memcpy(op.aad + 8, v->packet + 4, 4);
		op.aad_len = 12;
	} else {
		memcpy(op.aad + 4, v->packet + 4, 4);
		op.aad_len = 8;
	}
	natt_gcm_open_burst(mgr, &op, 1);
	check(natt_icv_equal(op.tag, v->packet + v->packet_len - 16), v->num,
	      "computed ICV equals published ICV");
	check(ct_len == v->plaintext_len && memcmp(buf, v->plaintext, ct_len) == 0,
	      v->num, "decrypts to published plaintext");
	natt_gcm_key_wipe(k);
	free(k);
}

static struct natt_sa *
install(struct natt_worker *w, const struct vec *v, int esn)
{
	struct natt_ctl_sa m;
	void *sa;

	memset(&m, 0, sizeof(m));
	memcpy(&m.spi, v->packet, 4);
	m.spi = ntohl(m.spi);
	m.algo = v->key_bits == 128 ? NATT_ALGO_AES_GCM_128 : NATT_ALGO_AES_GCM_256;
	m.key_len = (uint8_t)(v->keymat_len - 4);
	memcpy(m.key, v->keymat, m.key_len);
	memcpy(m.salt, v->keymat + m.key_len, 4);
	m.flags = (uint8_t)((esn ? NATT_SA_F_ESN : 0) | NATT_SA_F_RESET_STATS);
	m.replay_window = 1024;
	m.n_ts = 1; /* 0.0.0.0/0 */
	strcpy(m.name, "vec");
	if (natt_sa_add(w, &m) != 0 ||
	    (sa = natt_spi_lookup(w->sa_in, m.spi)) == NULL)
		return NULL;
	return sa;
}

/* Level 2: whole frames through the real inbound path. */
static void
esp_level(struct natt_worker *w, struct rte_mempool *mp, const struct vec *v)
{
	uint8_t pkt[2048];
	struct natt_sa *sa;
	uint32_t spi, seq;
	char what[128];

	if (v->key_bits == 192)
		return;
	memcpy(&spi, v->packet, 4);
	memcpy(&seq, v->packet + 4, 4);
	seq = ntohl(seq);

	if (spi == 0) { /* case 4: SPI 0 is reserved (RFC 4303 2.1) */
		check(install(w, v, v->esn) == NULL, v->num, "SPI 0 refused at install");
		check(tw_inbound_one(w, tw_frame(mp, v->packet, v->packet_len)) == NATT_DROP_IKE,
		      v->num, "SPI 0 on UDP/4500 is the non-ESP marker (RFC 3948 2.2): ike");
		return;
	}
	sa = install(w, v, v->esn);
	check(sa != NULL, v->num, "SA installs");
	if (sa == NULL)
		return;
	if (v->esn) /* window top just below the published 64-bit number */
		sa->rw.top = (((uint64_t)v->seq_high << 32) | seq) - 1;
	check(tw_inbound_one(w, tw_frame(mp, v->packet, v->packet_len)) == NATT_DROP_BAD_INNER,
	      v->num, "authenticates through inbound (then bad_inner: next header 1)");
	natt_sa_del(w, &(struct natt_ctl_sa_del){ .spi = ntohl(spi), .dir = NATT_DIR_IN, .tunnel_id = 0 });

	memcpy(pkt, v->packet, v->packet_len);
	pkt[v->packet_len - 1] ^= 1;
	sa = install(w, v, v->esn);
	if (sa != NULL && v->esn)
		sa->rw.top = (((uint64_t)v->seq_high << 32) | seq) - 1;
	check(sa != NULL && tw_inbound_one(w, tw_frame(mp, pkt, v->packet_len)) ==
	      NATT_DROP_AUTH_FAILED, v->num, "one-bit ICV change is auth_failed");
	natt_sa_del(w, &(struct natt_ctl_sa_del){ .spi = ntohl(spi), .dir = NATT_DIR_IN, .tunnel_id = 0 });

	if (v->esn) {
		int want = seq == 0 ? NATT_DROP_REPLAY : NATT_DROP_AUTH_FAILED;

		install(w, v, 0);
		snprintf(what, sizeof(what), "ESN case through a non-ESN SA is %s",
			 natt_drop_name((unsigned int)want));
		check(tw_inbound_one(w, tw_frame(mp, v->packet, v->packet_len)) == want,
		      v->num, what);
		natt_sa_del(w, &(struct natt_ctl_sa_del){ .spi = ntohl(spi), .dir = NATT_DIR_IN, .tunnel_id = 0 });
	}
}

int
main(int argc, char **argv)
{
	struct natt_worker *w;
	struct rte_mempool *mp;

	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	w = tw_create(16);
	mp = rte_pktmbuf_pool_create("vec", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				     SOCKET_ID_ANY);
	if (w == NULL || mp == NULL) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	check(natt_crypto_selftest(w->mgr) == 0, 0, "start-up self-test");
	for (unsigned int i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		crypto_level(w->mgr, &vectors[i]);
		esp_level(w, mp, &vectors[i]);
	}
	check(w->port[TW_INSIDE_PORT].n_tx == 0, 0, "nothing forwarded");
	tw_destroy(w);
	check(rte_mempool_in_use_count(mp) == 0, 0, "every mbuf freed");
	rte_mempool_free(mp);
	rte_eal_cleanup();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
