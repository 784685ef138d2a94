// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * count: pass every frame unchanged, and count it (packets and bytes) by IP
 * protocol in a per-CPU array.  See count.h for the keys.
 *
 *   ip link set dev eth0 xdp obj build/count.o sec count
 *   ip link set dev eth0 xdp obj build/count.o sec xdp.frags   # MTU 9000
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

/* Count one frame of @len bytes under the key its headers give it. */
static __always_inline int count_frame(struct xdp_md *ctx, __u64 len)
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
		counter->bytes += len;
	}
	return XDP_PASS;
}

/*
 * Two entry points, one program; they differ only in how they measure the
 * frame.  In one buffer the frame is data..data_end.  The xdp.frags entry
 * point also accepts multi-buffer frames (links with an MTU above one page,
 * e.g. 9000); there data..data_end is the first buffer only, and
 * bpf_xdp_get_buff_len() gives the whole frame.  That helper exists since
 * Linux 5.18, like xdp.frags itself, so the first entry point does without
 * it and still loads on older kernels.  The headers are read from the first
 * buffer; headers that run past it count as malformed (parse.h).
 */
SEC("count")
int xdp_count_proto(struct xdp_md *ctx)
{
	return count_frame(ctx, ctx->data_end - ctx->data);
}

SEC("xdp.frags")
int xdp_count_mb(struct xdp_md *ctx)
{
	return count_frame(ctx, bpf_xdp_get_buff_len(ctx));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
