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
 *   ipxdp_v4        BPF_MAP_TYPE_ARRAY_OF_MAPS, 1 slot: the id of the IPv4
 *                   table (below), which both lists' IPv4 entries are
 *                   compiled into.  The tries stay the record of every
 *                   list, and IPv6 sources are looked up in them.
 *
 *   the IPv4 table  BPF_MAP_TYPE_ARRAY of BLOCKLIST_V4_ENTRIES blocks of
 *                   16 __u32 slots (struct blocklist_v4_block, 64 bytes:
 *                   one cache line).  See "The IPv4 table" below.
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

/*
 * The IPv4 table.  The kernel's LPM trie walks some 18 nodes, each a cache
 * miss, per lookup in a list of 100,000 prefixes (docs/performance.md).
 * For IPv4 both lists are compiled into one array instead, a lookup of at
 * most four blocks: a decision for every /24 (the DIR-24 idea), and for
 * the /24s that hold longer prefixes a group of address ranges; a bitmap
 * of the /16s that hold anything keeps the sources elsewhere (most, with a
 * short list) off the large part of the table.
 *
 *   blocks 0 .. 2^20-1     one slot per /24: block addr >> 12, slot
 *                          (addr >> 8) & 15.  A slot is 0 (no prefix of
 *                          /9 to /32 in this /24: the /8 slot decides), a
 *                          decision, or BLOCKLIST_V4_GROUP | group.
 *   BLOCKLIST_V4_TOP       16 blocks, one slot per /8: the decision of the
 *                          prefixes of /0 to /8 (kept apart so that a /0
 *                          is 256 slots to write, not 2^24).
 *   BLOCKLIST_V4_USED      128 blocks, one bit per /16: set when a slot of
 *                          one of its /24s is not 0.  Bit h (the /16's
 *                          number) is bit h & 31 of slot (h >> 5) & 15 of
 *                          block BLOCKLIST_V4_USED + (h >> 9).
 *   BLOCKLIST_V4_GROUP0    the groups: one block of up to 16 ranges for
 *                          a /24, or (BLOCKLIST_V4_SPLIT) 16 consecutive
 *                          blocks, one per 16 addresses, when the /24 has
 *                          more ranges than one block holds.
 *
 * A decision is 0 (not listed) or the deciding rule's id + 1, with
 * BLOCKLIST_V4_ALLOW for an allow entry.  xdp-block works out, for every
 * slot and range, which entry decides (the longest allow prefix, else the
 * longest block prefix), so the program only reads.  A range is
 * (the last byte of its first address << 24) | decision; a group block
 * holds them in descending order, then zeros.
 */
#define BLOCKLIST_V4_BLOCKS (1U << 20)
#define BLOCKLIST_V4_TOP BLOCKLIST_V4_BLOCKS
#define BLOCKLIST_V4_USED (BLOCKLIST_V4_TOP + 16)
#define BLOCKLIST_V4_GROUP0 (BLOCKLIST_V4_USED + 128)

/* Group blocks.  A /24 with longer prefixes takes one (up to 7 of them),
 * or 16; 2^20 blocks (64 MB) hold a million single addresses in as many
 * /24s.  make BLOCKLIST_V4_GROUPS=N. */
#ifndef BLOCKLIST_V4_GROUPS
#define BLOCKLIST_V4_GROUPS (1U << 20)
#endif
#define BLOCKLIST_V4_ENTRIES (BLOCKLIST_V4_GROUP0 + BLOCKLIST_V4_GROUPS)

#define BLOCKLIST_V4_ALLOW (1U << 23)
#define BLOCKLIST_V4_ID (BLOCKLIST_V4_ALLOW - 1)    /* rule id + 1 */
#define BLOCKLIST_V4_DECISION ((1U << 24) - 1)
#define BLOCKLIST_V4_GROUP (1U << 31)
#define BLOCKLIST_V4_SPLIT (1U << 30)
#define BLOCKLIST_V4_INDEX (BLOCKLIST_V4_SPLIT - 1)

/* Rule ids are unique in both lists, so below 2 * BLOCKLIST_MAX. */
_Static_assert(2ULL * BLOCKLIST_MAX <= BLOCKLIST_V4_ID,
	       "BLOCKLIST_MAX too large for the IPv4 table's rule ids");
_Static_assert(BLOCKLIST_V4_GROUPS <= BLOCKLIST_V4_INDEX + 1ULL,
	       "BLOCKLIST_V4_GROUPS too large");

struct blocklist_v4_block {
	__u32 slot[16];
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
