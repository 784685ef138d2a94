// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * blocklist: drop IPv4/IPv6 packets whose source address is on a block
 * list, unless it is also on an allow list.
 *
 *   ip link set dev eth0 xdp obj build/blocklist.o sec blocklist
 *
 * The lists live in pinned maps (include/blocklist.h) that scripts/xdp-block
 * fills; the program only reads them.  Per frame:
 *
 *   not IP                               pass
 *   malformed (parse.h's rules)          drop: we cannot see its source
 *   source in the allow list             pass, whatever the block list says
 *   source in the block list             drop
 *   anything else                        pass
 *
 * Each list is a longest-prefix match.  Every fragment carries the source
 * address, so every fragment is judged.  An IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1) is an IPv6 source: only IPv6 entries match it.
 *
 * A frame is counted once: on the entry that decided it (an allow entry
 * that overrode a block entry counts it, the block entry does not), and in
 * one of the totals.
 *
 * It cannot see spoofed sources for what they are, nor the sources inside
 * tunnels (GRE, IP-in-IP): it judges the outer header.
 */
#include "parse.h"
#include "blocklist.h"

/* One list: an LPM trie of prefixes.  The definitions below are also the
 * templates every replacement map must match. */
struct blocklist_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BLOCKLIST_MAX);
	__type(key, struct blocklist_key);
	__type(value, struct blocklist_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required for LPM tries */
};

/* Both lists' IPv4 entries, compiled into one array by xdp-block
 * (blocklist.h, "The IPv4 table"). */
struct blocklist_v4 {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BLOCKLIST_V4_ENTRIES);
	__type(key, __u32);
	__type(value, struct blocklist_v4_block);
};

/* What a freshly created outer map starts with: empty. */
struct blocklist_trie ipxdp_blocklist SEC(".maps");
struct blocklist_trie ipxdp_allowlist SEC(".maps");
struct blocklist_v4 ipxdp_v4table SEC(".maps");

/*
 * Each is reached through a one-slot array of maps, so that `xdp-block
 * load` can build a whole new one on the side and swap it in with one
 * update: a packet sees the old list or the new one, never a half-filled
 * one.  (clang 14 needs the .values initialiser to emit the inner map's
 * definition.)
 */
#define ONE_SLOT_OF(inner_type)                           \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); \
		__uint(max_entries, 1);                   \
		__type(key, __u32);                       \
		__uint(pinning, LIBBPF_PIN_BY_NAME);      \
		__array(values, inner_type);              \
	}

ONE_SLOT_OF(struct blocklist_trie) ipxdp_block SEC(".maps") = {
	.values = { [0] = &ipxdp_blocklist },
};
ONE_SLOT_OF(struct blocklist_trie) ipxdp_allow SEC(".maps") = {
	.values = { [0] = &ipxdp_allowlist },
};
ONE_SLOT_OF(struct blocklist_v4) ipxdp_v4 SEC(".maps") = {
	.values = { [0] = &ipxdp_v4table },
};

/*
 * Per-CPU counters.  A flood from one source is the case this object
 * exists for: with one shared counter per prefix, every CPU would write
 * the same cache line.  Per CPU, only one CPU writes each slot and XDP does
 * not preempt itself, so plain additions are exact.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BLOCKLIST_COUNTERS);
	__type(key, __u32);
	__type(value, struct blocklist_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ipxdp_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BLOCKLIST_TOTALS);
	__type(key, __u32);
	__type(value, struct blocklist_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ipxdp_totals SEC(".maps");

/* The map in the one slot of @outer (never NULL in practice: xdp-block and
 * libbpf always fill it). */
static __always_inline void *in_slot(void *outer)
{
	__u32 slot = 0;

	return bpf_map_lookup_elem(outer, &slot);
}

static __always_inline struct blocklist_v4_block *block_at(void *table, __u32 index)
{
	return bpf_map_lookup_elem(table, &index);
}

/* The decision for IPv4 source @addr (host byte order): 0, or the deciding
 * rule's id + 1 | BLOCKLIST_V4_ALLOW for an allow entry.  At most four
 * reads of one 64-byte block each; an index out of the table finds NULL. */
static __always_inline __u32 decide_ipv4(__u32 addr)
{
	struct blocklist_v4_block *b;
	void *table = in_slot(&ipxdp_v4);
	__u32 slot, index, low, decision = 0;

	if (!table)
		return 0;
	/* The /16's bit first: 8 KB that stay in the cache, where the /24
	 * slots are 64 MB that do not. */
	b = block_at(table, BLOCKLIST_V4_USED + (addr >> 25));
	if (!b)
		return 0;
	slot = 0;
	if (b->slot[(addr >> 21) & 15] & (1U << ((addr >> 16) & 31))) {
		b = block_at(table, addr >> 12);
		if (!b)
			return 0;
		slot = b->slot[(addr >> 8) & 15];
	}
	if (slot == 0) { /* nothing from /9 to /32 here: the /8's slot */
		b = block_at(table, BLOCKLIST_V4_TOP + (addr >> 28));
		return b ? b->slot[(addr >> 24) & 15] : 0;
	}
	if (!(slot & BLOCKLIST_V4_GROUP))
		return slot;

	/* Longer prefixes in this /24.  Its ranges are in descending order
	 * of their first address, then zeros: the one that holds the last
	 * byte is the first that starts at or below it, so walking back from
	 * the end, the last match wins.  All 16 are compared: one cost, and
	 * nothing to mispredict. */
	index = BLOCKLIST_V4_GROUP0 + (slot & BLOCKLIST_V4_INDEX);
	if (slot & BLOCKLIST_V4_SPLIT)
		index += (addr >> 4) & 15;
	b = block_at(table, index);
	if (!b)
		return 0;
	low = addr & 0xff;
#pragma unroll
	for (int i = 15; i >= 0; i--)
		if (b->slot[i] >> 24 <= low)
			decision = b->slot[i] & BLOCKLIST_V4_DECISION;
	return decision;
}

/* The same decision for IPv6 source @saddr, from the tries: the longest
 * allow prefix, else the longest block prefix. */
static __always_inline __u32 decide_ipv6(const __u8 *saddr)
{
	struct blocklist_key key = {
		.prefixlen = BLOCKLIST_FAMILY_BITS + 128,
		.family = BLOCKLIST_FAMILY_IPV6,
	};
	struct blocklist_rule *rule;
	void *trie;

	__builtin_memcpy(key.addr.ip6, saddr, 16);
	/* Allow first: an allowed source is never dropped, so an operator
	 * cannot lock out a management network with a too-wide block. */
	trie = in_slot(&ipxdp_allow);
	rule = trie ? bpf_map_lookup_elem(trie, &key) : NULL;
	if (rule)
		return (rule->id + 1) | BLOCKLIST_V4_ALLOW;
	trie = in_slot(&ipxdp_block);
	rule = trie ? bpf_map_lookup_elem(trie, &key) : NULL;
	return rule ? rule->id + 1 : 0;
}

static __always_inline void add(void *counters, __u32 slot, __u64 bytes)
{
	struct blocklist_counter *counter = bpf_map_lookup_elem(counters, &slot);

	if (counter) { /* always: callers keep @slot below max_entries */
		counter->packets++;
		counter->bytes += bytes;
	}
}

/* @bytes: the frame's length, as the entry point measures it (below). */
static __always_inline int judge_source(struct xdp_md *ctx, __u64 bytes)
{
	struct cursor c;
	struct ip_info ip;
	__u32 total, decision, id;
	int verdict;

	cursor_init(&c, ctx);
	switch (parse_packet(&c, &ip)) {
	case PKT_NON_IP:
		verdict = XDP_PASS;
		total = BLOCKLIST_PASSED;
		goto out;
	case PKT_IP:
		break;
	default: /* PKT_MALFORMED */
		verdict = XDP_DROP;
		total = BLOCKLIST_MALFORMED;
		goto out;
	}

	/* parse.h checked the IP header that ip.saddr points into. */
	if (ip.version == 4)
		decision = decide_ipv4(bpf_ntohl(*(const __be32 *)ip.saddr));
	else
		decision = decide_ipv6(ip.saddr);

	if (!decision) {
		verdict = XDP_PASS;
		total = BLOCKLIST_PASSED;
		goto out;
	}
	if (decision & BLOCKLIST_V4_ALLOW) {
		verdict = XDP_PASS;
		total = BLOCKLIST_ALLOWED;
	} else {
		verdict = XDP_DROP;
		total = BLOCKLIST_BLOCKED;
	}
	id = (decision & BLOCKLIST_V4_ID) - 1;
	if (id < BLOCKLIST_COUNTERS)
		add(&ipxdp_counters, id, bytes);
	else /* an entry without counters of its own */
		add(&ipxdp_totals, BLOCKLIST_UNCOUNTED, bytes);
out:
	add(&ipxdp_totals, total, bytes);
	return verdict;
}

/*
 * Two entry points, one program (docs/design.md, "Jumbo frames").  The
 * plain one, for frames in one buffer, measures a frame as data_end - data
 * and so loads on kernels before 5.18; the one in xdp.frags also takes
 * multi-buffer frames and counts their whole length.  Both judge the source
 * from the first buffer: headers that run past it make the frame malformed.
 */
SEC("blocklist")
int xdp_blocklist(struct xdp_md *ctx)
{
	return judge_source(ctx, ctx->data_end - ctx->data);
}

SEC("xdp.frags")
int xdp_block_mb(struct xdp_md *ctx)
{
	return judge_source(ctx, bpf_xdp_get_buff_len(ctx));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
