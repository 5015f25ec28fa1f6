/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify.h - outer header parse of frames arriving on the outside port.
 */
#ifndef NATT_CLASSIFY_H
#define NATT_CLASSIFY_H

#include <stdint.h>

#include "natt_drop.h"

/* What the inbound path needs of an ESP-in-UDP frame; offsets from frame start. */
struct natt_esp_meta {
	uint16_t esp_off;    /* first byte of the SPI */
	uint16_t esp_len;    /* SPI .. last ICV byte */
	uint32_t spi;        /* host order */
	uint32_t seq;        /* host order, low 32 bits */
	uint32_t src_addr;   /* outer source, network order (NAT-mapped peer) */
	uint16_t src_port;   /* network order */
};

/* Returned by natt_classify() for an ESP packet; any other value is the drop
 * (or consume) reason. */
#define NATT_CLASS_ESP NATT_DROP_MAX

/**
 * Classify one Ethernet frame from the outside port.
 *
 * Reads only the len bytes at p and checks every length before reading.
 * local_addr (network order) is our outside address; 0 accepts any.
 *
 * @return NATT_CLASS_ESP with *m filled, or a reason: NATT_DROP_KEEPALIVE,
 *   NATT_DROP_IKE (consumed), or an error reason (malformed, not_esp,
 *   fragment, unsupported).
 */
unsigned int natt_classify(const uint8_t *p, uint32_t len, uint32_t local_addr,
			   struct natt_esp_meta *m);

#endif /* NATT_CLASSIFY_H */
