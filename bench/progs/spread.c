// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * spread: give each frame the next source address from a list, then hand
 * it on.  A blocklist looked up with one source again and again finds its
 * path through the list in the cache; spread over many sources it does
 * not, and that is the case a real flood from many addresses makes.
 *
 *   spread-redirect  the blocklist bench's live generator: as gen-redirect,
 *                    each frame goes out of the device it arrived on
 *   spread-tail      for BPF_PROG_TEST_RUN: each run tail-calls the program
 *                    in slot 0 of spread_target (the program timed, or the
 *                    floor, which pays this program's cost the same way)
 *
 * The bench fills spread_sources (SPREAD_SOURCES addresses, network byte
 * order) and runs the program on an untagged IPv4 frame.  Each run takes
 * the next address in turn; the IPv4 header checksum is brought up to
 * date, so the kernel's IP input (an iptables rule behind it) accepts the
 * frame.  The turn is one counter, not per CPU: the bench runs each
 * program on one CPU.  Anything else is dropped.  Built for the bench
 * only, never installed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SPREAD_SOURCES 65536 /* a power of two: the turn is masked */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPREAD_SOURCES);
	__type(key, __u32);
	__type(value, __be32);
} spread_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} spread_turn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} spread_target SEC(".maps");

/* One's complement sum of two 16-bit halves, folded (RFC 1071); byte order
 * does not matter as long as every word is taken the same way. */
static __always_inline __u32 add_halves(__u32 sum, __u32 word)
{
	return sum + (word & 0xffff) + (word >> 16);
}

/* The checksum after a 32-bit field changed from @old to @new (RFC 1624,
 * eqn. 3: HC' = ~(~HC + ~m + m')). */
static __always_inline __u16 checksum_replace(__u16 check, __u32 old, __u32 new)
{
	__u32 sum = (__u16)~check;

	sum = add_halves(sum, ~old);
	sum = add_halves(sum, new);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Put the next source in the frame: 0, or -1 if it is not untagged IPv4. */
static __always_inline int next_source(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	__u32 zero = 0, slot;
	__u32 *turn;
	__be32 *src;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	turn = bpf_map_lookup_elem(&spread_turn, &zero);
	if (!turn)
		return -1;
	slot = *turn & (SPREAD_SOURCES - 1);
	*turn += 1;
	src = bpf_map_lookup_elem(&spread_sources, &slot);
	if (!src)
		return -1;
	iph->check = checksum_replace(iph->check, iph->saddr, *src);
	iph->saddr = *src;
	return 0;
}

SEC("spread-redirect")
int xdp_spread_redirect(struct xdp_md *ctx)
{
	if (next_source(ctx))
		return XDP_DROP;
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

SEC("spread-tail")
int xdp_spread_tail(struct xdp_md *ctx)
{
	if (next_source(ctx))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &spread_target, 0);
	return XDP_ABORTED; /* the slot is empty */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
