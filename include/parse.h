/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * parse.h - the one packet parser every ipxdp program uses.
 *
 * The parser walks a frame the way the wire presents it:
 *
 *   Ethernet -> up to 2 VLAN tags -> IPv4 (+ options) | IPv6 (+ up to 6
 *   extension headers) -> transport header
 *
 * and sorts every frame into exactly one of three classes:
 *
 *   PKT_IP        an IPv4/IPv6 packet whose headers are all present and valid;
 *                 struct ip_info says which transport protocol it carries and
 *                 whether the transport header follows (it does not in a
 *                 non-first fragment).
 *   PKT_NON_IP    anything that is not IPv4/IPv6 (ARP, LLDP, ...).
 *   PKT_MALFORMED a frame we cannot see through: a third VLAN tag, a frame
 *                 that ends inside a header, a bad IP version or IHL, a
 *                 seventh IPv6 extension header.  Callers fail closed on it.
 *
 * Only header *presence* counts.  Length fields (IPv4 total length, IPv6
 * payload length, TCP data offset) are not checked, and Ethernet padding or
 * trailers after the IP packet are normal.
 *
 * Known limits (also in docs/design.md):
 *  - Only the extension headers named in parse_ipv6() are walked.  Any
 *    other next-header value is taken as the final protocol: ESP (50) hides
 *    what it carries, and Mobility (135), HIP (139) and Shim6 (140) end the
 *    walk (the Linux stack does not deliver TCP behind them either).
 *  - Tunnels are not looked into: GRE or IP-in-IP is its outer protocol.
 *  - Some NICs strip the outer VLAN tag before XDP runs (rx-vlan offload);
 *    the parser then simply sees one tag fewer.
 *  - XDP sees the first buffer of a frame only; the programs are not
 *    multi-buffer aware, so drivers refuse them on MTUs that need more.
 *
 * Bounds checks: every read goes through cursor_pull(), which checks
 * "does [pos, pos + len) lie inside the frame?" exactly once, in one place.
 * The verifier sees that comparison after inlining and accepts the read.
 */
#ifndef IPXDP_PARSE_H
#define IPXDP_PARSE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* How many VLAN tags (802.1Q or 802.1ad, in any order) we look behind.
 * One more tag than this makes the frame malformed. */
#ifndef VLAN_MAX_DEPTH
#define VLAN_MAX_DEPTH 2
#endif

/* How many IPv6 extension headers we walk.  One more makes the packet
 * malformed: a filter that gave up and passed it would be bypassed by
 * anybody willing to prepend seven empty destination-options headers. */
#ifndef IPV6_EXT_MAX_CHAIN
#define IPV6_EXT_MAX_CHAIN 6
#endif

enum pkt_class {
	PKT_MALFORMED = -1,
	PKT_NON_IP = 0,
	PKT_IP = 1,
};

/* A position in the frame, and the end of the frame. */
struct cursor {
	void *pos;
	void *end;
};

/* What an IP packet carries. */
struct ip_info {
	__u8 proto;  /* final protocol: after IPv6 extension headers */
	bool has_l4; /* false for a non-first fragment: no transport header */
};

/* Not in the UAPI headers, so defined here. */
struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units << 3 | 2 reserved bits | M */
	__be32 identification;
};

#define IPV4_FRAG_OFFSET 0x1fff /* in iphdr.frag_off, host order */
#define IPV6_FRAG_OFFSET 0xfff8 /* in ipv6_frag_hdr.frag_off, host order */

static __always_inline void cursor_init(struct cursor *c, struct xdp_md *ctx)
{
	c->pos = (void *)(long)ctx->data;
	c->end = (void *)(long)ctx->data_end;
}

/*
 * The one bounds check: returns a pointer to the next @len bytes and moves
 * past them, or returns NULL (and leaves the cursor alone) if the frame ends
 * before them.  @len is a constant or a small bounded value (IHL, an
 * extension header length), which is what the verifier needs.
 */
static __always_inline void *cursor_pull(struct cursor *c, __u32 len)
{
	void *start = c->pos;

	if (start + len > c->end)
		return NULL;
	c->pos = start + len;
	return start;
}

static __always_inline bool is_vlan(__u16 ethertype)
{
	return ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD;
}

/*
 * Ethernet, then up to VLAN_MAX_DEPTH tags.  Stores the inner EtherType
 * (host order) and returns 0, or returns -1 if the frame is malformed.
 */
static __always_inline int parse_ethernet(struct cursor *c, __u16 *ethertype)
{
	struct ethhdr *eth = cursor_pull(c, sizeof(*eth));
	struct vlan_hdr *vlan;
	__u16 type;

	if (!eth)
		return -1;
	type = bpf_ntohs(eth->h_proto);

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!is_vlan(type))
			break;
		vlan = cursor_pull(c, sizeof(*vlan));
		if (!vlan)
			return -1;
		type = bpf_ntohs(vlan->encap_proto);
	}
	/* A tag we did not look behind could hide anything: fail closed. */
	if (is_vlan(type))
		return -1;

	*ethertype = type;
	return 0;
}

/* IPv4: version 4, IHL >= 5, header and options inside the frame. */
static __always_inline int parse_ipv4(struct cursor *c, struct ip_info *info)
{
	struct iphdr *iph = cursor_pull(c, sizeof(*iph));

	if (!iph || iph->version != 4 || iph->ihl < 5)
		return -1;
	/* Skip the options: IHL counts 32-bit words, 5 of them are the
	 * fixed header we already pulled. */
	if (!cursor_pull(c, (iph->ihl - 5) * 4))
		return -1;

	info->proto = iph->protocol;
	/* Only the fragment at offset 0 starts with the transport header. */
	info->has_l4 = !(bpf_ntohs(iph->frag_off) & IPV4_FRAG_OFFSET);
	return 0;
}

static __always_inline bool is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_AH ||
	       nexthdr == IPPROTO_FRAGMENT;
}

/*
 * IPv6: the fixed header, then the extension-header chain.  The length of
 * each header is decided by the type of *that* header (AH counts 4-byte
 * units, the others 8-byte units), never by the type of the next one.
 */
static __always_inline int parse_ipv6(struct cursor *c, struct ip_info *info)
{
	struct ipv6hdr *ip6h = cursor_pull(c, sizeof(*ip6h));
	struct ipv6_opt_hdr *opt;
	struct ipv6_frag_hdr *frag;
	__u8 nexthdr;

	if (!ip6h || ip6h->version != 6)
		return -1;
	nexthdr = ip6h->nexthdr;
	info->has_l4 = true;

#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			opt = cursor_pull(c, sizeof(*opt));
			if (!opt)
				return -1;
			nexthdr = opt->nexthdr;
			/* (hdrlen + 1) * 8 bytes in all, 2 of them pulled. */
			if (!cursor_pull(c, (opt->hdrlen + 1) * 8 - sizeof(*opt)))
				return -1;
			break;
		case IPPROTO_AH:
			opt = cursor_pull(c, sizeof(*opt));
			if (!opt)
				return -1;
			nexthdr = opt->nexthdr;
			/* (hdrlen + 2) * 4 bytes in all, 2 of them pulled. */
			if (!cursor_pull(c, (opt->hdrlen + 2) * 4 - sizeof(*opt)))
				return -1;
			break;
		case IPPROTO_FRAGMENT:
			frag = cursor_pull(c, sizeof(*frag));
			if (!frag)
				return -1;
			nexthdr = frag->nexthdr;
			/* A non-first fragment: the protocol is known, but what
			 * follows is payload, not headers.  The walk ends. */
			if (bpf_ntohs(frag->frag_off) & IPV6_FRAG_OFFSET) {
				info->has_l4 = false;
				goto done;
			}
			break;
		default:
			goto done;
		}
	}
	/* Still an extension header after the last one we walk. */
	if (is_ipv6_ext(nexthdr))
		return -1;
done:
	info->proto = nexthdr;
	return 0;
}

/*
 * The whole walk.  On PKT_IP, @info is filled in and, if info->has_l4, the
 * cursor points at the transport header (which may still be cut short:
 * pull it before reading it).
 */
static __always_inline int parse_packet(struct cursor *c, struct ip_info *info)
{
	__u16 ethertype;

	if (parse_ethernet(c, &ethertype) < 0)
		return PKT_MALFORMED;

	switch (ethertype) {
	case ETH_P_IP:
		return parse_ipv4(c, info) < 0 ? PKT_MALFORMED : PKT_IP;
	case ETH_P_IPV6:
		return parse_ipv6(c, info) < 0 ? PKT_MALFORMED : PKT_IP;
	default:
		return PKT_NON_IP;
	}
}

#endif /* IPXDP_PARSE_H */
