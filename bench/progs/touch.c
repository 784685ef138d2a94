// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * touch: drop untagged IPv4 TCP, pass the rest -- the least a TCP filter
 * can read (one bounds check, the EtherType, the IPv4 protocol), and a
 * wrong filter: it is blind to VLAN tags, IPv6, a bad IHL.
 *
 * The bench runs it next to the floor to show what reading the packet at
 * all costs on this machine, below which no correct parser can go.  Built
 * for the bench only, never installed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("touch")
int xdp_touch_ipv4_tcp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);

	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP) && iph->protocol == IPPROTO_TCP)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
