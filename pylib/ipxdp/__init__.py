# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""ipxdp's Python support code: what tests/, bench/ and hardening/ share.

    paths         the tree, the objects and scripts under test (IPXDP_BUILD,
                  IPXDP_SCRIPTS), PYTHONPATH for a child
    project       facts read from their sources: programs and sections,
                  count's map, keys and fields, port-9090's build config,
                  the XDP mode numbers
    bpf           libbpf through ctypes: load an object, test runs, per-CPU
                  maps, program info, BPF links, setns
    netns         throwaway network namespaces and veth pairs (nsenter),
                  what is attached to a link, stale-namespace cleanup
    wire          frame builders: every header layout, once
    reference     the specification the objects are judged by; imports
                  nothing, not even from this package
    randframes    seeded random frames for the differential test
    sweep         systematic frames at every parser edge
    differential  objects against the reference, frame by frame; frame
                  names and their replay command
    sender        raw-frame sender processes (python3 -m ipxdp.sender)

Imports go one way: tests/, bench/ and hardening/ import this package; it
imports none of them.  docs/hacking.md says where a new helper goes.
"""
