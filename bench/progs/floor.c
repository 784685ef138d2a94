// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * floor: drop every frame without looking at it.
 *
 * The bench measures every other program against this one: whatever it
 * costs (the call into the program, the driver or test-run loop around it)
 * is paid by every XDP program, so "ns over floor" is what parsing and the
 * decision cost.  Built for the bench only, never installed.
 *
 * The same again in section xdp.frags, the floor of the multi-buffer rows:
 * the programs timed on a 9,000-byte frame are xdp.frags programs, so the
 * floor subtracted from them is one too.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("floor")
int xdp_floor_drop(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

SEC("xdp.frags")
int xdp_floor_drop_mb(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
