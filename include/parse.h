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
 *                 struct ip_info says which transport protocol it carries,
 *                 whether the transport header follows (it does not in a
 *                 non-first fragment), and where its source address is.
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
 *  - Multi-buffer frames (xdp.frags programs): the cursor ends where the
 *    first buffer ends, so headers are read from it only.  Headers that
 *    run past it make the frame malformed, and a transport header cut by
 *    it counts as cut short (fail closed).  The first buffer holds 3,520
 *    bytes on veth with 4 KiB pages, and headers rarely take more than a
 *    hundred: only a long IPv6 extension chain gets that far.
 *
 * Bounds checks: every read is covered by cursor_advance(), which checks
 * "does [pos, pos + len) lie inside the frame?" exactly once, in one place.
 * The verifier sees that comparison after inlining and accepts the read.
 * One move of the cursor has no check of its own: the IPv6 walk skips an
 * extension header's options, which it does not read, and the next
 * cursor_advance() covers them.
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
	__u8 version;      /* 4 or 6 */
	const void *saddr; /* the source address in the frame, 4 or 16 bytes
			    * inside the IP header (every fragment has it) */
};

/*
 * The Ethernet header.  <linux/if_ether.h> declares struct ethhdr packed,
 * which makes clang read h_proto one byte at a time.  This unpacked twin
 * lets it use one 16-bit load: EtherTypes sit at even offsets, which is
 * all the verifier asks for on CPUs that need aligned loads.
 */
struct eth_hdr {
	__u8 dest[ETH_ALEN];
	__u8 source[ETH_ALEN];
	__be16 proto;
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

/* Fragment offsets, in network byte order like the fields they mask. */
#define IPV4_FRAG_OFFSET bpf_htons(0x1fff) /* iphdr.frag_off */
#define IPV6_FRAG_OFFSET bpf_htons(0xfff8) /* ipv6_frag_hdr.frag_off */

static __always_inline void cursor_init(struct cursor *c, struct xdp_md *ctx)
{
	c->pos = (void *)(long)ctx->data;
	c->end = (void *)(long)ctx->data_end;
}

/*
 * The one bounds check: if the next @len bytes lie inside the frame, move
 * the cursor past them and return true; otherwise return false and leave
 * the cursor alone.  Callers take a pointer to the header at c->pos first:
 *
 *	struct iphdr *iph = c->pos;
 *
 *	if (!cursor_advance(c, sizeof(*iph)))
 *		return -1;	// the frame ends inside the header
 *	... iph->protocol is safe to read ...
 *
 * @len is a constant or a small bounded value (IHL, an extension header
 * length), which is what the verifier needs.
 */
static __always_inline bool cursor_advance(struct cursor *c, __u64 len)
{
	if (c->pos + len > c->end)
		return false;
	c->pos += len;
	return true;
}

/* EtherTypes are compared in network byte order: no swap per frame. */
static __always_inline bool is_vlan(__be16 ethertype)
{
	return ethertype == bpf_htons(ETH_P_8021Q) ||
	       ethertype == bpf_htons(ETH_P_8021AD);
}

/*
 * Ethernet, then up to VLAN_MAX_DEPTH tags.  Stores the inner EtherType
 * (network order) and returns 0, or returns -1 if the frame is malformed.
 */
static __always_inline int parse_ethernet(struct cursor *c, __be16 *ethertype)
{
	struct eth_hdr *eth = c->pos;
	struct vlan_hdr *vlan;
	__be16 type;

	if (!cursor_advance(c, sizeof(*eth)))
		return -1;
	type = eth->proto;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!is_vlan(type)) {
			*ethertype = type;
			return 0;
		}
		vlan = c->pos;
		if (!cursor_advance(c, sizeof(*vlan)))
			return -1;
		type = vlan->encap_proto;
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
	struct iphdr *iph = c->pos;

	if (!cursor_advance(c, sizeof(*iph)) || iph->version != 4 || iph->ihl < 5)
		return -1;
	/* Skip the options: IHL counts the whole header in 32-bit words. */
	if (!cursor_advance(c, iph->ihl * 4 - sizeof(*iph)))
		return -1;

	info->proto = iph->protocol;
	info->version = 4;
	info->saddr = &iph->saddr;
	/* Only the fragment at offset 0 starts with the transport header. */
	info->has_l4 = !(iph->frag_off & IPV4_FRAG_OFFSET);
	return 0;
}

/* The extension headers parse_ipv6() walks, as a bit mask of their numbers
 * (all below 64): one test instead of five comparisons. */
#define IPV6_EXT_MASK ((1ULL << IPPROTO_HOPOPTS) | (1ULL << IPPROTO_ROUTING) | \
		       (1ULL << IPPROTO_FRAGMENT) | (1ULL << IPPROTO_AH) |     \
		       (1ULL << IPPROTO_DSTOPTS))

static __always_inline bool is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr < 64 && ((1ULL << nexthdr) & IPV6_EXT_MASK);
}

/*
 * IPv6: the fixed header, then the extension-header chain.  The length of
 * each header is decided by the type of *that* header (AH counts 4-byte
 * units, the others 8-byte units), never by the type of the next one.
 */
static __always_inline int parse_ipv6(struct cursor *c, struct ip_info *info)
{
	struct ipv6hdr *ip6h = c->pos;
	struct ipv6_opt_hdr *ext;
	struct ipv6_frag_hdr *frag;
	__u8 nexthdr;

	if (!cursor_advance(c, sizeof(*ip6h)) || ip6h->version != 6)
		return -1;
	nexthdr = ip6h->nexthdr;
	info->has_l4 = true;
	info->version = 6;
	info->saddr = &ip6h->saddr;

#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		if (!is_ipv6_ext(nexthdr))
			goto done;
		ext = c->pos;
		if (nexthdr == IPPROTO_FRAGMENT) {
			frag = (struct ipv6_frag_hdr *)ext;
			if (!cursor_advance(c, sizeof(*frag))) /* exactly 8 bytes */
				return -1;
			nexthdr = frag->nexthdr;
			/* A non-first fragment: the protocol is known, but what
			 * follows is payload, not headers.  The walk ends. */
			if (frag->frag_off & IPV6_FRAG_OFFSET) {
				info->has_l4 = false;
				goto done;
			}
			continue;
		}
		if (nexthdr == IPPROTO_AH) {
			/* 8 bytes, then hdrlen more 4-byte units. */
			if (!cursor_advance(c, 8))
				return -1;
			nexthdr = ext->nexthdr;
			if (!cursor_advance(c, ext->hdrlen * 4))
				return -1;
			continue;
		}
		/* Hop-by-hop, routing, destination options: 8 bytes, then
		 * hdrlen more 8-byte units.  The skip past those has no check
		 * here: the next header's first check, or the one after the
		 * walk, covers it, so each of these headers costs one check. */
		if (!cursor_advance(c, 8))
			return -1;
		nexthdr = ext->nexthdr;
		c->pos += ext->hdrlen * 8;
	}
	/* Still an extension header after the last one we walk. */
	if (is_ipv6_ext(nexthdr))
		return -1;
done:
	/* The cursor may have skipped past the end of the frame. */
	if (!cursor_advance(c, 0))
		return -1;
	info->proto = nexthdr;
	return 0;
}

/*
 * The whole walk.  On PKT_IP, @info is filled in and, if info->has_l4, the
 * cursor points at the transport header (which may still be cut short:
 * advance past it before reading it).
 */
static __always_inline int parse_packet(struct cursor *c, struct ip_info *info)
{
	__be16 ethertype;

	if (parse_ethernet(c, &ethertype) < 0)
		return PKT_MALFORMED;
	if (ethertype == bpf_htons(ETH_P_IP))
		return parse_ipv4(c, info) < 0 ? PKT_MALFORMED : PKT_IP;
	if (ethertype == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(c, info) < 0 ? PKT_MALFORMED : PKT_IP;
	return PKT_NON_IP;
}

#endif /* IPXDP_PARSE_H */
