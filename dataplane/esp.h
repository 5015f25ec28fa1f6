/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * esp.h - ESP-in-UDP wire constants (RFC 3948, RFC 4303, RFC 4106).
 */
#ifndef NATT_ESP_H
#define NATT_ESP_H

#include <stdint.h>

#define NATT_PORT 4500          /* RFC 3948 section 2.1 */
#define IKE_PORT 500

#define ETH_HLEN_ 14
#define IPV4_HLEN_MIN 20
#define UDP_HLEN 8

#define ESP_HDR_LEN 8           /* SPI + sequence number */
#define ESP_GCM_IV_LEN 8        /* RFC 4106 section 3.1: explicit IV */
#define ESP_GCM_ICV_LEN 16      /* RFC 4106 section 6: 16-octet ICV */
#define ESP_TRAILER_LEN 2       /* pad length + next header */
#define GCM_NONCE_LEN 12        /* salt(4) || IV(8), RFC 4106 section 4 */

/* Smallest ESP packet with an AES-GCM SA: header, IV, trailer, ICV. */
#define ESP_GCM_MIN_LEN                                                        \
	(ESP_HDR_LEN + ESP_GCM_IV_LEN + ESP_TRAILER_LEN + ESP_GCM_ICV_LEN)

/* Bytes in front of the ciphertext in an ESP-in-UDP packet, after the IP header. */
#define ESP_UDP_CT_OFF (UDP_HLEN + ESP_HDR_LEN + ESP_GCM_IV_LEN)

#define NATT_OUTER_TTL 64      /* outer IPv4 TTL of what we encapsulate */

#define NATT_KEEPALIVE_BYTE 0xff /* RFC 3948 section 2.3 */
#define NATT_NON_ESP_MARKER_LEN 4 /* RFC 3948 section 2.2: four zero octets */

#define IPPROTO_IPIP_ 4         /* ESP next header for an IPv4 inner packet */
#define IPPROTO_IPV6_ 41
#define IPPROTO_NONE_ 59        /* RFC 4303 2.6: dummy packet (TFC) */

#endif /* NATT_ESP_H */
