# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""ipxdp's Python support code: what tests/, bench/ and hardening/ share.

    paths         the tree, the objects and scripts under test (IPXDP_BUILD,
                  IPXDP_SCRIPTS), PYTHONPATH for a child
    project       facts read from their sources: programs and sections,
                  count's map, keys and fields, port-9090's build config,
                  the XDP mode numbers, blocklist's maps, totals and build
                  config
    bpf           libbpf through ctypes: load an object (its pinned maps
                  in a directory of the caller's, or unpinned), test runs,
                  per-CPU maps, program info, BPF links, setns
    netns         throwaway network namespaces and veth pairs (nsenter),
                  what is attached to a link, stale-namespace cleanup; a
                  private bpffs (TC_BPF_MNT) with xdp-block run in it
    wire          frame builders: every header layout, once
    reference     the specification the objects are judged by; imports
                  nothing, not even from this package
    blocklist_reference
                  blocklist's rules with Python's ipaddress; imports only
                  reference
    randframes    seeded random frames for the differential test; a new
                  source address for an IP frame
    sweep         systematic frames at every parser edge
    differential  objects against the references, frame by frame (the
                  blocklist in rounds of random lists); frame names and
                  their replay command
    sender        raw-frame sender processes (python3 -m ipxdp.sender)

Imports go one way: tests/, bench/ and hardening/ import this package; it
imports none of them.  docs/hacking.md says where a new helper goes.
"""
