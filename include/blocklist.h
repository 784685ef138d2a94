/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * blocklist.h - the layout of blocklist's maps, for the program and for
 * anything that reads or writes them (scripts/xdp-block, the tests).
 *
 * All maps are pinned by name.  iproute2 pins them in
 * /sys/fs/bpf/xdp/globals/ (TC_BPF_MNT moves /sys/fs/bpf), so every
 * interface the object is attached to, in every network namespace, shares
 * one host list, and the list outlives detach and re-attach.
 *
 *   ipxdp_block     BPF_MAP_TYPE_ARRAY_OF_MAPS, 1 slot: key __u32 0, value
 *   ipxdp_allow     the id of the list's LPM trie (below).  Replacing the
 *                   slot swaps a whole list in one step.
 *
 *   the list        BPF_MAP_TYPE_LPM_TRIE, BPF_F_NO_PREALLOC, BLOCKLIST_MAX
 *                   entries: key struct blocklist_key, value
 *                   struct blocklist_rule.  IPv4 and IPv6 in one trie, told
 *                   apart by the family byte at the start of the prefix.
 *
 *   ipxdp_counters  BPF_MAP_TYPE_PERCPU_ARRAY, BLOCKLIST_COUNTERS slots:
 *                   key __u32 (a rule id), value struct blocklist_counter.
 *                   Both lists draw their slots from it.
 *
 *   ipxdp_totals    BPF_MAP_TYPE_PERCPU_ARRAY, BLOCKLIST_TOTALS slots: key
 *                   enum blocklist_total, value struct blocklist_counter.
 *
 * A reader sums each counter over all CPUs.
 */
#ifndef IPXDP_BLOCKLIST_H
#define IPXDP_BLOCKLIST_H

#include <linux/types.h>

/* Prefixes per list (IPv4 and IPv6 together).  A replacement list must
 * be created with the same number, so it is fixed at build time:
 * make BLOCKLIST_MAX=N. */
#ifndef BLOCKLIST_MAX
#define BLOCKLIST_MAX 2000000
#endif

/* Per-prefix counter slots, for both lists together.  A per-CPU array
 * costs BLOCKLIST_COUNTERS * CPUs * 16 bytes whether the lists are full or
 * empty, so it is smaller than the lists: prefixes beyond it are counted in
 * the totals only.  make BLOCKLIST_COUNTERS=N. */
#ifndef BLOCKLIST_COUNTERS
#define BLOCKLIST_COUNTERS 262144
#endif

/* The first 32 bits of every prefix name its address family, so an IPv4
 * entry can never match an IPv6 source (not even an IPv4-mapped one, which
 * is an IPv6 address), and 0.0.0.0/0 is "all of IPv4", not "everything". */
#define BLOCKLIST_FAMILY_BITS 32
#define BLOCKLIST_FAMILY_IPV4 4
#define BLOCKLIST_FAMILY_IPV6 6

struct blocklist_key {
	__u32 prefixlen; /* BLOCKLIST_FAMILY_BITS + the prefix length */
	__u8 family;     /* BLOCKLIST_FAMILY_IPV4 or _IPV6 */
	__u8 zero[3];
	union {
		__be32 ip4;
		__u8 ip6[16];
	} addr;          /* network byte order; IPv4 in the first 4 bytes */
};

/* The value of a list entry: its rule id, unique in both lists.  Below
 * BLOCKLIST_COUNTERS it is also the entry's slot in ipxdp_counters; an
 * entry with a higher id has no counters of its own. */
struct blocklist_rule {
	__u32 id;
};

struct blocklist_counter {
	__u64 packets;
	__u64 bytes; /* frame bytes as XDP sees them: data_end - data */
};

/* Every frame lands in exactly one of the first four.  A frame decided by
 * a rule without a counter slot is also counted in UNCOUNTED. */
enum blocklist_total {
	BLOCKLIST_PASSED = 0,    /* not IP, or a source in neither list */
	BLOCKLIST_BLOCKED = 1,   /* dropped by a block entry */
	BLOCKLIST_ALLOWED = 2,   /* passed by an allow entry */
	BLOCKLIST_MALFORMED = 3, /* dropped: the parser could not see through it */
	BLOCKLIST_UNCOUNTED = 4,
	BLOCKLIST_TOTALS = 5,
};

#endif /* IPXDP_BLOCKLIST_H */
