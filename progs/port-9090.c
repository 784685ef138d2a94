// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * port-9090: bounce TCP to one port, drop other TCP, pass the rest.
 *
 *   ip link set dev eth0 xdp obj build/port-9090.o sec port-9090
 *   ip link set dev eth0 xdp obj build/port-9090.o sec xdp.frags   # MTU 9000
 *
 * A TCP segment to TX_PORT gets its Ethernet destination rewritten to TX_MAC
 * and is sent back out of the interface it came in on (XDP_TX).  No other
 * byte changes.  Other TCP is dropped, and so is TCP we cannot read a port
 * from: a non-first fragment (it has no TCP header) or a segment whose
 * 20-byte TCP header is cut short.  Malformed frames are dropped; everything
 * else passes.
 *
 * The port and MAC are fixed when the object is built (plain `ip` cannot
 * hand a program parameters):  make TX_PORT=8443 TX_MAC=02:11:22:33:44:55
 */
#include "parse.h"

#ifndef TX_PORT
#define TX_PORT 9090
#endif
#ifndef TX_MAC /* the six bytes of the MAC, comma-separated */
#define TX_MAC 0x08, 0x00, 0x27, 0xdd, 0x38, 0x2a
#endif

/* Byte by byte, so the MAC becomes six immediate stores rather than a
 * copy from a read-only data section (which `ip` would turn into a map). */
static __always_inline void set_mac(__u8 *mac, __u8 a, __u8 b, __u8 c,
				    __u8 d, __u8 e, __u8 f)
{
	mac[0] = a;
	mac[1] = b;
	mac[2] = c;
	mac[3] = d;
	mac[4] = e;
	mac[5] = f;
}

static __always_inline int bounce_port(struct xdp_md *ctx)
{
	struct eth_hdr *eth = (void *)(long)ctx->data;
	struct tcphdr *tcp;
	struct cursor c;
	struct ip_info ip;

	cursor_init(&c, ctx);
	switch (parse_packet(&c, &ip)) {
	case PKT_NON_IP:
		return XDP_PASS;
	case PKT_IP:
		break;
	default: /* PKT_MALFORMED */
		return XDP_DROP;
	}
	if (ip.proto != IPPROTO_TCP)
		return XDP_PASS;

	/* TCP from here on: bounce it or drop it. */
	if (!ip.has_l4)
		return XDP_DROP; /* non-first fragment: no port to read */
	tcp = c.pos;
	if (!cursor_advance(&c, sizeof(*tcp)) || tcp->dest != bpf_htons(TX_PORT))
		return XDP_DROP;

	/* parse_packet() checked the Ethernet header, so the verifier
	 * knows it is there; writing it needs no second check. */
	set_mac(eth->dest, TX_MAC);
	return XDP_TX;
}

/*
 * Two entry points, one program.  The first is for frames in one buffer;
 * the second, in section xdp.frags, also accepts multi-buffer frames, which
 * links with an MTU above one page need (e.g. 9000).  The headers, and the
 * MAC that is rewritten, are in the first buffer; XDP_TX sends the whole
 * frame, every buffer.  Headers that run past the first buffer make the
 * frame malformed, and a TCP header cut by its end has no port to read:
 * both are dropped (parse.h, docs/design.md).
 */
SEC("port-9090")
int xdp_bounce_port(struct xdp_md *ctx)
{
	return bounce_port(ctx);
}

SEC("xdp.frags")
int xdp_bounce_mb(struct xdp_md *ctx)
{
	return bounce_port(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
