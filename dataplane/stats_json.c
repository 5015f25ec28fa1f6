/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stats_json.c - render the counters memzone (natt_stats.h) for people and
 * programs. Only reads the memzone; each block has one writer elsewhere.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

#include "stats_json.h"

static void
json_blocks(FILE *f, const struct natt_worker_stats *s)
{
	fprintf(f, "\"counters\": {");
	for (unsigned int i = 0; i < NATT_CNT_MAX; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", natt_counter_name(i),
			s->counters[i]);
	fprintf(f, "}, \"drops\": {");
	for (unsigned int i = 0; i < NATT_DROP_MAX; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", natt_drop_name(i),
			s->drops[i]);
	fprintf(f, "}");
}

static double
tsc_to_unix(const struct natt_stats_hdr *h, uint64_t tsc)
{
	return (double)h->start_unix_ns / 1e9 +
	       (double)(int64_t)(tsc - h->start_tsc) / (double)h->tsc_hz;
}

/* Unix seconds of TSC value t, or null for never. */
static void
json_time(FILE *f, const struct natt_stats_hdr *h, uint64_t t)
{
	if (t)
		fprintf(f, "%.3f", tsc_to_unix(h, t));
	else
		fprintf(f, "null");
}

/* The v4 per-tunnel fields: liveness, NAT mapping, outbound drops. */
static void
json_tunnel_nat(FILE *f, const struct natt_stats_hdr *h, const struct natt_tunnel_stats *t)
{
	char seen[INET_ADDRSTRLEN], prev[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &t->seen_addr, seen, sizeof(seen));
	inet_ntop(AF_INET, &t->prev_remote_addr, prev, sizeof(prev));
	fprintf(f, ", \"last_out_unix\": ");
	json_time(f, h, t->last_out_tsc);
	fprintf(f, ", \"idle\": %s, \"nat_mapping\": \"%s\", \"seen\": \"%s:%u\","
		" \"prev_remote\": \"%s:%u\", \"mapping_changes\": %u, \"pin_ignored\": %u,"
		" \"last_mapping_unix\": ", t->idle ? "true" : "false",
		t->pinned ? "pin" : "follow", seen, ntohs(t->seen_port), prev,
		ntohs(t->prev_remote_port), t->mapping_changes, t->pin_ignored);
	json_time(f, h, t->last_mapping_tsc);
	fprintf(f, ", \"keepalive_s\": %u, \"keepalives\": %" PRIu64 ", \"last_keepalive_unix\": ",
		t->keepalive_s, t->keepalives);
	json_time(f, h, t->last_keepalive_tsc);
	fprintf(f, ", \"keepalives_sent\": %" PRIu64 ", \"last_keepalive_sent_unix\": ",
		t->keepalives_sent);
	json_time(f, h, t->last_keepalive_sent_tsc);
	fprintf(f, ", \"too_big\": %" PRIu64 ", \"fragmented\": %" PRIu64 ", \"bad_trailer\": %"
		PRIu64, t->too_big, t->fragmented, t->bad_trailer);
}

static void
json_tunnel(FILE *f, const struct natt_stats_hdr *h,
	    const struct natt_tunnel_stats *t, uint32_t id)
{
	char addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &t->remote_addr, addr, sizeof(addr));
	/* names are validated by natt-control: [A-Za-z0-9._-], no escaping */
	fprintf(f, "    \"%s\": {\"id\": %u, \"owner\": %u, \"in_spi\": \"0x%08x\", "
		"\"out_spi\": \"0x%08x\", \"remote\": \"%s:%u\", "
		"\"in_packets\": %" PRIu64 ", \"in_bytes\": %" PRIu64
		", \"out_packets\": %" PRIu64 ", \"out_bytes\": %" PRIu64
		", \"auth_failed\": %" PRIu64 ", \"replay\": %" PRIu64
		", \"policy\": %" PRIu64 ", \"last_seen_unix\": ",
		t->name, id, t->owner, t->in_spi, t->out_spi, addr,
		ntohs(t->remote_port), t->in_packets, t->in_bytes, t->out_packets,
		t->out_bytes, t->auth_failed, t->replay, t->policy);
	json_time(f, h, t->last_seen_tsc);
	json_tunnel_nat(f, h, t);
	fprintf(f, "}");
}

void
natt_stats_json(FILE *f, struct natt_stats_hdr *h)
{
	struct natt_worker_stats sum;
	const char *sep = "";

	natt_stats_sum(h, &sum);
	fprintf(f, "{\n  \"version\": %u, \"workers\": %u,\n  ", h->version,
		h->n_workers);
	json_blocks(f, &sum);
	fprintf(f, ",\n  \"ports\": [");
	for (uint32_t p = 0; p < h->n_ports; p++)
		fprintf(f, "%s\n    {\"port\": %u, \"name\": \"%s\", \"rx_packets\": %"
			PRIu64 ", \"rx_bytes\": %" PRIu64 ", \"tx_packets\": %" PRIu64
			", \"tx_bytes\": %" PRIu64 "}", p ? "," : "", p,
			h->port_names[p], sum.port[p].rx_packets, sum.port[p].rx_bytes,
			sum.port[p].tx_packets, sum.port[p].tx_bytes);
	/* exception path: tx = punted to the host, rx = what the host sent */
	fprintf(f, "\n  ],\n  \"taps\": [");
	for (uint32_t p = 0, n = 0; p < h->n_ports; p++) {
		uint32_t t = h->tap_of[p];

		if (t == NATT_NO_TAP || t >= NATT_MAX_PORTS)
			continue;
		fprintf(f, "%s\n    {\"port\": %u, \"tap\": \"%.*s\", \"tap_port\": %u, "
			"\"rx_packets\": %" PRIu64 ", \"rx_bytes\": %" PRIu64 ", \"tx_packets\": %"
			PRIu64 ", \"tx_bytes\": %" PRIu64 "}", n++ ? "," : "", p,
			(int)sizeof(h->tap_names[p]) - 1, h->tap_names[p], t,
			sum.port[t].rx_packets, sum.port[t].rx_bytes, sum.port[t].tx_packets,
			sum.port[t].tx_bytes);
	}
	fprintf(f, "\n  ],\n  \"per_worker\": [");
	for (uint32_t w = 0; w < h->n_workers; w++) {
		fprintf(f, "%s\n    {\"worker\": %u, \"generation\": %" PRIu64 ", ",
			w ? "," : "", w, natt_stats_worker(h, w)->generation);
		json_blocks(f, natt_stats_worker(h, w));
		fprintf(f, "}");
	}
	fprintf(f, "\n  ],\n  \"tunnels\": {");
	for (uint32_t id = 0; id < h->max_tunnels; id++) {
		const struct natt_tunnel_stats *t = natt_stats_tunnel(h, id);

		if (t->in_spi == 0 && t->out_spi == 0)
			continue;
		fprintf(f, "%s\n", sep);
		json_tunnel(f, h, t, id);
		sep = ",";
	}
	fprintf(f, "\n  }\n}\n");
}

void
natt_stats_print(FILE *f, struct natt_stats_hdr *h,
		 struct natt_worker_stats *prev, double interval)
{
	struct natt_worker_stats now;
	uint64_t d_rx, d_tx, d_dec, d_enc;

	natt_stats_sum(h, &now);
	d_rx = now.counters[NATT_CNT_RX] - prev->counters[NATT_CNT_RX];
	d_tx = now.counters[NATT_CNT_TX] - prev->counters[NATT_CNT_TX];
	d_dec = now.counters[NATT_CNT_DECRYPTED] - prev->counters[NATT_CNT_DECRYPTED];
	d_enc = now.counters[NATT_CNT_ENCRYPTED] - prev->counters[NATT_CNT_ENCRYPTED];
	fprintf(f, "rx %" PRIu64 " (%.3f Mpps)  tx %" PRIu64 " (%.3f Mpps)  "
		"decrypted %" PRIu64 " (%.3f Mpps)  encrypted %" PRIu64 " (%.3f Mpps)\n",
		now.counters[NATT_CNT_RX], d_rx / interval / 1e6,
		now.counters[NATT_CNT_TX], d_tx / interval / 1e6,
		now.counters[NATT_CNT_DECRYPTED], d_dec / interval / 1e6,
		now.counters[NATT_CNT_ENCRYPTED], d_enc / interval / 1e6);
	fprintf(f, "  drops:");
	for (unsigned int i = 0; i < NATT_DROP_MAX; i++)
		if (now.drops[i])
			fprintf(f, " %s=%" PRIu64, natt_drop_name(i), now.drops[i]);
	fprintf(f, "\n");
	fflush(f);
	*prev = now;
}
