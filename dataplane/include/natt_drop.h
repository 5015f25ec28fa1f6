/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * natt_drop.h - the one list of reasons a packet leaves the dataplane without
 * being forwarded, and of the non-error events we count per packet.
 *
 * Shared by natt-dataplane (which counts) and natt-control / tests (which read
 * and print). The names are the operator's vocabulary: they appear verbatim in
 * --stats-json, in `natt-control show drops` and in telemetry. Append only;
 * never renumber (the stats memzone is indexed by these values).
 */
#ifndef NATT_DROP_H
#define NATT_DROP_H

/* _(ENUM, "name", "help") */
#define NATT_FOREACH_DROP(_)                                                   \
	_(MALFORMED, "malformed",                                              \
	  "Ethernet/IPv4/UDP/ESP headers truncated or inconsistent (outer "   \
	  "headers on the outside port, the IPv4 packet on the inside port)")  \
	_(NOT_ESP, "not_esp",                                                  \
	  "not NAT-T traffic for us: not IPv4/UDP 4500 or 500, or not our address") \
	_(NO_SA, "no_sa", "ESP SPI matches no installed inbound SA")           \
	_(AUTH_FAILED, "auth_failed",                                          \
	  "AES-GCM ICV did not verify (wrong key, tampered or ESN mismatch)")  \
	_(REPLAY, "replay",                                                    \
	  "sequence number already seen or left of the anti-replay window")    \
	_(BAD_PADDING, "bad_padding",                                          \
	  "ESP trailer: pad length too long or padding not 1,2,3,...")         \
	_(POLICY, "policy",                                                    \
	  "inner source address outside the tunnel's remote_ts")              \
	_(TTL_EXPIRED, "ttl_expired", "inner IPv4 TTL would reach 0")          \
	_(FRAGMENT, "fragment",                                                \
	  "outer IPv4 fragment (no reassembly yet)")                          \
	_(BAD_INNER, "bad_inner",                                              \
	  "decrypted payload is not a well-formed IPv4 packet (next header 4)") \
	_(UNSUPPORTED, "unsupported",                                          \
	  "valid but not handled yet: IPv6, non-IPv4 on the inside port, "     \
	  "chained mbufs")                                                     \
	_(NO_ROUTE, "no_route",                                                \
	  "inside-port packet whose destination is in no tunnel's remote_ts, " \
	  "or whose tunnel has no outbound SA")                                \
	_(TOO_BIG, "too_big",                                                  \
	  "inner packet with DF set exceeds the tunnel MTU (ICMP sent back)")  \
	_(SEQ_OVERFLOW, "seq_overflow",                                        \
	  "outbound SA used up its sequence numbers: needs a rekey")           \
	_(NO_BUFFER, "no_buffer",                                              \
	  "no mbuf, headroom or tailroom for encapsulation, fragments or ICMP") \
	_(HANDOFF_FULL, "handoff_full",                                        \
	  "owning worker's handoff ring was full")                             \
	_(TX_FULL, "tx_full", "TX queue full: packet could not be sent")       \
	_(KEEPALIVE, "keepalive",                                              \
	  "NAT keepalive (RFC 3948 2.3), consumed - not an error")             \
	_(IKE, "ike",                                                          \
	  "IKE on UDP/500 or UDP/4500 with non-ESP marker and no exception "    \
	  "path (--tap) to hand it to, consumed - not an error")               \
	_(EXCEPTION_LIMITED, "exception_limited",                              \
	  "for the host (IKE, ARP, ICMP to the gateway) but over "             \
	  "dataplane.exception_rate")                                          \
	_(NO_NEIGHBOR, "no_neighbor",                                          \
	  "next hop (interface next_hop) not resolved by ARP yet")

enum natt_drop {
#define NATT_DROP_ENUM_(e, n, h) NATT_DROP_##e,
	NATT_FOREACH_DROP(NATT_DROP_ENUM_)
#undef NATT_DROP_ENUM_
	NATT_DROP_MAX
};

/* Reasons that are accounting, not errors (shown apart by the CLI). */
#define NATT_DROP_IS_ERROR(r) ((r) != NATT_DROP_KEEPALIVE && (r) != NATT_DROP_IKE)

static inline const char *
natt_drop_name(unsigned int r)
{
	static const char *const names[] = {
#define NATT_DROP_NAME_(e, n, h) n,
		NATT_FOREACH_DROP(NATT_DROP_NAME_)
#undef NATT_DROP_NAME_
	};
	return r < NATT_DROP_MAX ? names[r] : "?";
}

static inline const char *
natt_drop_help(unsigned int r)
{
	static const char *const help[] = {
#define NATT_DROP_HELP_(e, n, h) h,
		NATT_FOREACH_DROP(NATT_DROP_HELP_)
#undef NATT_DROP_HELP_
	};
	return r < NATT_DROP_MAX ? help[r] : "?";
}

#endif /* NATT_DROP_H */
