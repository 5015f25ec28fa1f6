/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * crypto.h - AES-GCM (RFC 4106) through intel-ipsec-mb, one IMB_MGR per worker.
 */
#ifndef NATT_CRYPTO_H
#define NATT_CRYPTO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "esp.h"

/* Expanded key material of one SA: built once at install, wiped at delete. */
struct natt_gcm_key {
	struct gcm_key_data kd;   /* round keys + GHASH tables (64-byte aligned) */
	uint8_t salt[4];          /* RFC 4106 section 4: nonce = salt || IV */
	uint8_t key_len;          /* 16 or 32 */
} __attribute__((aligned(64)));

/* One decrypt or encrypt in a burst: the fields phase 1 fills for phase 2. */
struct natt_gcm_op {
	const struct natt_gcm_key *key;
	uint8_t *data;            /* en/decrypted in place */
	uint32_t len;
	uint32_t aad_len;         /* 8, or 12 with ESN */
	uint8_t nonce[GCM_NONCE_LEN];
	uint8_t aad[12];          /* SPI || [seq_hi] || seq (RFC 4106 section 5) */
	uint8_t tag[ESP_GCM_ICV_LEN]; /* decrypt: computed ICV */
};

/** Allocate and initialise an IMB_MGR for the best ISA of this CPU.
 *  The caller owns it (free_mb_mgr). NULL on failure. */
IMB_MGR *natt_crypto_mgr_create(const char **arch_name);

/** Whether mgr runs the VAES AVX-512 GCM code, which lays the GHASH key
 *  powers out from H^48 down to H^1 (natt_sa_prefetch() depends on it). */
bool natt_crypto_gcm_vaes(const IMB_MGR *mgr);

/** Expand key||salt into *k. key_len is 16 or 32. Returns 0 or -EINVAL. */
int natt_gcm_key_init(IMB_MGR *mgr, struct natt_gcm_key *k, const uint8_t *key,
		      uint8_t key_len, const uint8_t salt[4]);

/** Wipe expanded key material so it does not survive the SA. */
void natt_gcm_key_wipe(struct natt_gcm_key *k);

/** Decrypt ops[0..n) in place, writing each computed ICV to ops[i].tag. */
void natt_gcm_open_burst(IMB_MGR *mgr, struct natt_gcm_op *ops, unsigned int n);

/** Encrypt ops[0..n) in place; each ICV is written right after its
 *  ciphertext (op->data + op->len), where ESP puts it. */
void natt_gcm_seal_burst(IMB_MGR *mgr, struct natt_gcm_op *ops, unsigned int n);

/** Constant-time comparison of a computed and a received ICV. */
static inline bool
natt_icv_equal(const uint8_t *a, const uint8_t *b)
{
	uint64_t a0, a1, b0, b1;

	memcpy(&a0, a, 8);
	memcpy(&a1, a + 8, 8);
	memcpy(&b0, b, 8);
	memcpy(&b1, b + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/** Known-answer test (draft-mcgrew-gcm-test-01) run at start-up, before any
 *  packet: 0 if the library decrypts the published vectors, else -1. */
int natt_crypto_selftest(IMB_MGR *mgr);

#endif /* NATT_CRYPTO_H */
