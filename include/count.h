/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * count.h - the layout of count's per-CPU counters, for the program and for
 * anything that reads them.
 *
 * Map "proto_counters": BPF_MAP_TYPE_PERCPU_ARRAY, key __u32, value
 * struct proto_counter, one slot per key on every CPU:
 *
 *   0..255  the final IP protocol (after VLAN tags and IPv6 extension
 *           headers; non-first fragments count under their protocol)
 *   256     not IP (ARP, LLDP, ...)
 *   257     malformed (see parse.h)
 *
 * A reader sums each key over all CPUs.
 */
#ifndef IPXDP_COUNT_H
#define IPXDP_COUNT_H

#include <linux/types.h>

#define COUNT_KEY_NON_IP 256
#define COUNT_KEY_MALFORMED 257
#define COUNT_KEYS 258

struct proto_counter {
	__u64 packets;
	__u64 bytes; /* whole frames, every buffer of a multi-buffer one */
};

#endif /* IPXDP_COUNT_H */
