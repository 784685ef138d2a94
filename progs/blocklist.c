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

/* One list: an LPM trie of prefixes.  The two definitions below are also
 * the template every replacement list must match. */
struct blocklist_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BLOCKLIST_MAX);
	__type(key, struct blocklist_key);
	__type(value, struct blocklist_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required for LPM tries */
};

/* The lists a freshly created outer map starts with: empty. */
struct blocklist_trie ipxdp_blocklist SEC(".maps");
struct blocklist_trie ipxdp_allowlist SEC(".maps");

/*
 * The lists are reached through a one-slot array of maps, so that
 * `xdp-block load` can build a whole new list on the side and swap it in
 * with one update: a packet sees the old list or the new one, never a
 * half-filled one.  (clang 14 needs the .values initialiser to emit the
 * inner map's definition.)
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct blocklist_trie);
} ipxdp_block SEC(".maps") = {
	.values = { [0] = &ipxdp_blocklist },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct blocklist_trie);
} ipxdp_allow SEC(".maps") = {
	.values = { [0] = &ipxdp_allowlist },
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

/* The longest prefix of @list that holds @key's address, or NULL. */
static __always_inline struct blocklist_rule *
find_rule(void *list, const struct blocklist_key *key)
{
	__u32 slot = 0;
	void *trie = bpf_map_lookup_elem(list, &slot);

	if (!trie) /* never: xdp-block and libbpf always fill the slot */
		return NULL;
	return bpf_map_lookup_elem(trie, key);
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
	struct blocklist_key key = {};
	struct blocklist_rule *rule;
	struct cursor c;
	struct ip_info ip;
	__u32 total;
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

	/* The source address as a full-length prefix of its family.  parse.h
	 * checked the IP header that ip.saddr points into. */
	if (ip.version == 4) {
		key.prefixlen = BLOCKLIST_FAMILY_BITS + 32;
		key.family = BLOCKLIST_FAMILY_IPV4;
		key.addr.ip4 = *(const __be32 *)ip.saddr;
	} else {
		key.prefixlen = BLOCKLIST_FAMILY_BITS + 128;
		key.family = BLOCKLIST_FAMILY_IPV6;
		__builtin_memcpy(key.addr.ip6, ip.saddr, 16);
	}

	/* Allow first: an allowed source is never dropped, so an operator
	 * cannot lock out a management network with a too-wide block. */
	rule = find_rule(&ipxdp_allow, &key);
	if (rule) {
		verdict = XDP_PASS;
		total = BLOCKLIST_ALLOWED;
	} else {
		rule = find_rule(&ipxdp_block, &key);
		if (rule) {
			verdict = XDP_DROP;
			total = BLOCKLIST_BLOCKED;
		} else {
			verdict = XDP_PASS;
			total = BLOCKLIST_PASSED;
		}
	}
	if (rule) {
		if (rule->id < BLOCKLIST_COUNTERS)
			add(&ipxdp_counters, rule->id, bytes);
		else /* an entry without counters of its own */
			add(&ipxdp_totals, BLOCKLIST_UNCOUNTED, bytes);
	}
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
