/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_inbound.c - classifier, inbound and outbound ESP paths under
 * hostile input.
 *
 * Input byte 0 picks the mode:
 *   0 mod 4: bytes 1.. are a whole Ethernet frame from the outside port;
 *   2 mod 4: bytes 1.. are a whole Ethernet frame from the inside port
 *         (outbound: routing, policy, MTU/ICMP/fragments, MSS clamp);
 *   odd:  byte 1 picks an SA, bytes 2..5 are the sequence number and bytes
 *         6.. are the ESP plaintext (inner packet, padding, pad length, next
 *         header - all fuzzer-chosen). The harness seals it with the SA's key
 *         through intel-ipsec-mb so the fuzzer reaches the code after the ICV
 *         check, which it could never reach by forging tags.
 * After every input: every mbuf is back in the pool and every packet was
 * either queued for TX (outbound: as one or more fragments) or counted
 * under exactly one reason.
 *
 * Built with -Dfuzz=true (clang): a libFuzzer target. Otherwise: a replay
 * driver that runs the files given on the command line, then a fixed-seed
 * random mutation loop over them (no coverage feedback, but deterministic).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include "spi_table.h"
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "test_worker.h"

#define SPI_128 0x00000100u
#define SPI_256 0x00000200u

static struct natt_worker *w;
static struct rte_mempool *mp;

static void
install(uint32_t spi, uint8_t algo, uint8_t key_len, uint8_t flags)
{
	struct natt_ctl_sa m;

	memset(&m, 0, sizeof(m));
	m.spi = spi;
	m.tunnel_id = spi >> 8;
	m.algo = algo;
	m.key_len = key_len;
	for (unsigned int i = 0; i < key_len; i++)
		m.key[i] = (uint8_t)(i * 7 + spi);
	memcpy(m.salt, "salt", 4);
	m.flags = flags | NATT_SA_F_RESET_STATS;
	m.replay_window = 64;
	m.n_ts = 2;
	m.ts[0].addr = htonl(0x0a000000);
	m.ts[0].plen = 8;
	m.ts[1].addr = htonl(0xc0a80000);
	m.ts[1].plen = 16;
	strcpy(m.name, "fuzz");
	if (natt_sa_add(w, &m) != 0)
		abort();
}

/* Outbound: tunnel 1 for 10.0.0.0/8, tunnel 2 (ESN) for 10.1.0.0/16 and
 * the default route; inner sources 192.168.0.0/16 allowed. */
static void
install_out(void)
{
	for (uint32_t t = 1; t <= 2; t++) {
		struct natt_ctl_sa m;
		struct natt_ctl_route r = { .tunnel_id = t, .n = t };

		memset(&m, 0, sizeof(m));
		m.spi = 0x1000 + t;
		m.tunnel_id = t;
		m.dir = NATT_DIR_OUT;
		m.algo = NATT_ALGO_AES_GCM_128;
		m.key_len = 16;
		m.flags = t == 2 ? NATT_SA_F_ESN : 0;
		m.remote_addr = htonl(0xc6336419);
		m.local_addr = htonl(0xcb007101);
		m.remote_port = htons(4500);
		m.local_port = htons(4500);
		m.n_ts = 1;
		m.ts[0].addr = htonl(0xc0a80000);
		m.ts[0].plen = 16;
		r.pfx[0].addr = htonl(t == 1 ? 0x0a000000 : 0x0a010000);
		r.pfx[0].plen = t == 1 ? 8 : 16;
		if (natt_sa_add(w, &m) != 0 || natt_route_add(w, &r) != 0)
			abort();
	}
}

static int
setup(void)
{
	char prefix[64];
	char *eal[] = { "fuzz", "--no-huge", "-m", "128", "--no-pci", "-l", "0",
			"--log-level", "lib.eal:error", "--file-prefix", prefix, NULL };

	snprintf(prefix, sizeof(prefix), "natt-fuzz-%d", getpid());
	if (rte_eal_init(11, eal) < 0)
		return -1;
	w = tw_create(16);
	mp = rte_pktmbuf_pool_create("fuzz", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				     SOCKET_ID_ANY);
	if (w == NULL || mp == NULL)
		return -1;
	install(SPI_128, NATT_ALGO_AES_GCM_128, 16, 0);
	install(SPI_256, NATT_ALGO_AES_GCM_256, 32, NATT_SA_F_ESN);
	install_out();
	w->pool = mp;
	w->mss_clamp = 1398;
	return 0;
}

/* Build SPI || seq || IV || GCM(plaintext) || ICV with the installed SA. */
static uint32_t
seal(const uint8_t *in, size_t len, uint8_t *esp)
{
	struct gcm_context_data ctx;
	uint8_t nonce[12], aad[12];
	uint32_t aad_len = 8, pt_len, spi, spi_be;
	struct natt_sa *sa;
	void *v;

	if (len < 5)
		return 0;
	spi = (in[0] & 1) ? SPI_256 : SPI_128;
	spi_be = htonl(spi);
	if ((v = natt_spi_lookup(w->sa_in, spi)) == NULL)
		return 0;
	sa = v;
	pt_len = (uint32_t)(len - 5 > 1400 ? 1400 : len - 5);
	memcpy(esp, &spi_be, 4);
	memcpy(esp + 4, in + 1, 4);          /* seq as the fuzzer chose it */
	memset(esp + 8, 0, 4);
	memcpy(esp + 12, in + 1, 4);         /* IV */
	memcpy(nonce, sa->key.salt, 4);
	memcpy(nonce + 4, esp + 8, 8);
	memcpy(aad, esp, 4);
	if (sa->esn) {                       /* high half 0: window top is 0 */
		memset(aad + 4, 0, 4);
		memcpy(aad + 8, esp + 4, 4);
		aad_len = 12;
	} else {
		memcpy(aad + 4, esp + 4, 4);
	}
	if (sa->key.key_len == 16)
		IMB_AES128_GCM_ENC(w->mgr, &sa->key.kd, &ctx, esp + 16, in + 5, pt_len,
				   nonce, aad, aad_len, esp + 16 + pt_len, 16);
	else
		IMB_AES256_GCM_ENC(w->mgr, &sa->key.kd, &ctx, esp + 16, in + 5, pt_len,
				   nonce, aad, aad_len, esp + 16 + pt_len, 16);
	return 16 + pt_len + 16;
}

/* Was the input sent on: by port `to` (forwarded, maybe as fragments), or
 * answered as an ARP request (the reply leaves by the port it came in on)?
 * An ICMP error made about a dropped packet is not its being sent. */
static bool
sent_on(uint16_t to, unsigned int before, uint64_t arp_before)
{
	return w->port[to].n_tx > before ||
	       w->st->counters[NATT_CNT_ARP_REPLIES] == arp_before + 1;
}

static void
one_outbound(const uint8_t *data, size_t size)
{
	struct rte_mbuf *m;
	uint64_t arp;
	char *p;
	int r;

	if (size > 2000 || (m = rte_pktmbuf_alloc(mp)) == NULL)
		return;
	if ((p = rte_pktmbuf_append(m, (uint16_t)size)) == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	memcpy(p, data, size);
	m->port = TW_INSIDE_PORT;
	arp = w->st->counters[NATT_CNT_ARP_REPLIES];
	r = tw_outbound_one(w, m);
	/* sent (maybe as fragments) xor exactly one counter */
	if (r == -2 || (r == -1) != sent_on(TW_OUTSIDE_PORT, 0, arp))
		abort();
	tw_tx_discard(w);
	if (rte_mempool_in_use_count(mp) != 0)
		abort();
}

static void
one_input(const uint8_t *data, size_t size)
{
	uint8_t esp[1500];
	struct rte_mbuf *m = NULL;
	unsigned int tx_before = w->port[TW_INSIDE_PORT].n_tx;
	uint64_t arp = w->st->counters[NATT_CNT_ARP_REPLIES];
	uint32_t len;
	int r;

	if (size < 1)
		return;
	if ((data[0] & 3) == 2) {
		one_outbound(data + 1, size - 1);
		return;
	}
	if (data[0] & 1) {
		len = seal(data + 1, size - 1, esp);
		if (len != 0)
			m = tw_frame(mp, esp, len);
	} else if (size - 1 <= 1600 && (m = rte_pktmbuf_alloc(mp)) != NULL) {
		char *p = rte_pktmbuf_append(m, (uint16_t)(size - 1));

		if (p == NULL) {
			rte_pktmbuf_free(m);
			m = NULL;
		} else {
			memcpy(p, data + 1, size - 1);
		}
	}
	if (m == NULL)
		return;
	r = tw_inbound_one(w, m);
	/* exactly one outcome: forwarded xor one counter */
	if (r == -2 || (r == -1) != sent_on(TW_INSIDE_PORT, tx_before, arp))
		abort();
	tw_tx_discard(w);
	if (rte_mempool_in_use_count(mp) != 0)
		abort();
}

#ifdef NATT_LIBFUZZER
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return setup() == 0 ? 0 : (abort(), -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one_input(data, size);
	return 0;
}
#else
static size_t
read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

int
main(int argc, char **argv)
{
	static uint8_t seeds[64][2048];
	static size_t seed_len[64];
	unsigned int nseeds = 0, seed = 1, iters = 200000;

	if (setup() != 0) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	for (int i = 1; i < argc && nseeds < 64; i++) {
		seed_len[nseeds] = read_file(argv[i], seeds[nseeds], sizeof(seeds[0]));
		one_input(seeds[nseeds], seed_len[nseeds]);
		nseeds++;
	}
	printf("replayed %u corpus files\n", nseeds);
	for (unsigned int it = 0; nseeds && it < iters; it++) {
		uint8_t buf[2048];
		unsigned int s = rand_r(&seed) % nseeds, flips = 1 + rand_r(&seed) % 8;
		size_t len = seed_len[s];

		memcpy(buf, seeds[s], len);
		for (unsigned int f = 0; f < flips; f++) {
			unsigned int op = rand_r(&seed) % 4, pos = len ? rand_r(&seed) % len : 0;

			if (op == 0 && len)
				buf[pos] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
			else if (op == 1 && len)
				buf[pos] = (uint8_t)rand_r(&seed);
			else if (op == 2)
				len = pos; /* truncate */
			else if (len < sizeof(buf))
				buf[len++] = (uint8_t)rand_r(&seed);
		}
		one_input(buf, len);
	}
	printf("%u mutated inputs: no crash, no leak, every packet accounted for\n", iters);
	tw_destroy(w);
	rte_mempool_free(mp);
	rte_eal_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
#endif
