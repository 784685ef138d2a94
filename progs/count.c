// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * count: pass every frame unchanged, and count it (packets and bytes) by IP
 * protocol in a per-CPU array.  See count.h for the keys.
 *
 *   ip link set dev eth0 xdp obj build/count.o sec count
 *
 * The map is deliberately not pinned: each attach gets its own counters.
 * Find them through the program: `ip -j link show` gives the program id,
 * `bpftool -j prog show id N` its map id, `bpftool -j map dump id M` the
 * per-CPU values (scripts/xdp-stats does all of that).
 */
#include "parse.h"
#include "count.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNT_KEYS);
	__type(key, __u32);
	__type(value, struct proto_counter);
} proto_counters SEC(".maps");

SEC("count")
int xdp_count_proto(struct xdp_md *ctx)
{
	struct proto_counter *counter;
	struct cursor c;
	struct ip_info ip;
	__u32 key;

	cursor_init(&c, ctx);
	switch (parse_packet(&c, &ip)) {
	case PKT_IP:
		key = ip.proto;
		break;
	case PKT_NON_IP:
		key = COUNT_KEY_NON_IP;
		break;
	default:
		key = COUNT_KEY_MALFORMED;
		break;
	}

	counter = bpf_map_lookup_elem(&proto_counters, &key);
	if (counter) { /* always true: key < max_entries */
		/* Per-CPU slot: only this CPU writes it, and XDP does not
		 * preempt itself, so plain additions are exact. */
		counter->packets++;
		counter->bytes += ctx->data_end - ctx->data;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
