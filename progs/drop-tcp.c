// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * drop-tcp: drop every TCP packet, pass everything else.
 *
 *   ip link set dev eth0 xdp obj build/drop-tcp.o sec drop-tcp
 *   ip link set dev eth0 xdp obj build/drop-tcp.o sec xdp.frags   # MTU 9000
 *
 * "Every" is the point: TCP behind one or two VLAN tags, over IPv6 behind
 * extension headers, behind IPv4 options, and every fragment of a TCP
 * packet (the first and the rest) is dropped.  A frame the parser cannot
 * see through is dropped too, so it cannot smuggle TCP past us.
 *
 * Tunnels are judged by their outer header: TCP inside GRE or IP-in-IP is
 * passed, because the outer protocol is GRE or IPIP.
 */
#include "parse.h"

static __always_inline int drop_tcp(struct xdp_md *ctx)
{
	struct cursor c;
	struct ip_info ip;

	cursor_init(&c, ctx);
	switch (parse_packet(&c, &ip)) {
	case PKT_NON_IP:
		return XDP_PASS;
	case PKT_IP:
		/* The IP header names the protocol in every fragment, so no
		 * transport header is needed to decide. */
		return ip.proto == IPPROTO_TCP ? XDP_DROP : XDP_PASS;
	default: /* PKT_MALFORMED */
		return XDP_DROP;
	}
}

/*
 * Two entry points, one program.  The first is for frames in one buffer;
 * the second, in section xdp.frags, also accepts multi-buffer frames, which
 * links with an MTU above one page need (e.g. 9000).  The parser reads the
 * headers from the first buffer only; headers that run past it make the
 * frame malformed, so it is dropped (parse.h, docs/design.md).
 */
SEC("drop-tcp")
int xdp_drop_tcp(struct xdp_md *ctx)
{
	return drop_tcp(ctx);
}

SEC("xdp.frags")
int xdp_drop_tcp_mb(struct xdp_md *ctx)
{
	return drop_tcp(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
