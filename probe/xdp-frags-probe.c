// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * xdp-frags-probe: pass every frame, multi-buffer ones too.
 *
 * Not one of the programs: xdp-attach loads it to ask the kernel whether
 * it takes multi-buffer XDP programs at all.  Section xdp.frags makes
 * libbpf (inside ip) load it with BPF_F_XDP_HAS_FRAGS, a flag a kernel
 * before 5.18 refuses with EINVAL; this program needs nothing else, so any
 * other answer is not about multi-buffer XDP.  It is installed next to the
 * scripts' library, outside the objects directory, so that xdp-status
 * never names it.
 *
 * The tests also attach it to the peer of a veth pair: a frame sent there
 * with native XDP_TX arrives only if the peer has an XDP program, and a
 * multi-buffer frame only if that program is multi-buffer aware.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp.frags")
int xdp_frags_probe(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
