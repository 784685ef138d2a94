// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * gen-redirect: the bench's traffic generator.
 *
 * Run with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES, with an xdp_md
 * context whose ingress_ifindex is one end of a veth pair: every frame is
 * redirected out of that same device, so it arrives at the other end of the
 * pair, where the configuration under test runs.  The ifindex is resolved in
 * the network namespace of the process that runs the test run.
 *
 * Built for the bench only, never installed.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("gen-redirect")
int xdp_gen_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
