# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist.o attached with the real `ip` (iproute2), natively and in
generic mode, to a veth in a throwaway namespace, with TC_BPF_MNT pointing
at a private bpffs: the attached program uses exactly the pinned maps,
whichever of xdp-block and `ip` came first, and the list outlives detach
and re-attach."""

import json

import pytest

from ipxdp import paths
from ipxdp.netns import PrivateBpffs, namespace_with_veth

OBJECT = paths.obj("blocklist")

MODES = {"xdpdrv": 1, "xdpgeneric": 2}
PINS = ["ipxdp_allow", "ipxdp_block", "ipxdp_counters", "ipxdp_totals"]


@pytest.fixture
def veth():
    with namespace_with_veth("ipxdp-blip", "v0", "v1") as ns:
        yield ns


@pytest.fixture
def fs():
    with PrivateBpffs() as bpffs:
        yield bpffs


def ip(ns, fs, *args):
    return ns.run(["ip", *args], env=fs.env)


def attach(ns, fs, mode, obj=OBJECT):
    res = ip(ns, fs, "link", "set", "dev", ns.dev, mode, "obj", str(obj), "sec", "blocklist")
    assert res.returncode == 0, res.stderr
    info = ns.xdp()
    assert info["mode"] == MODES[mode] and info["prog"]["name"] == "xdp_blocklist"
    return info["prog"]["id"]


def prog_maps(ns, prog_id):
    out = ns.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], check=True).stdout
    return set(json.loads(out)["map_ids"])


def pinned_ids(fs):
    return {fs.map_info("pinned", fs.globals / name)["id"] for name in PINS}


@pytest.mark.parametrize("mode", MODES)
def test_xdp_block_first_then_ip(veth, fs, mode):
    fs.block("add", "198.51.100.0/24", check=True)
    ids = pinned_ids(fs)
    prog = attach(veth, fs, mode)
    assert prog_maps(veth, prog) == ids
    assert fs.pins() == PINS
    # Detach and attach again: the same maps, the same list.
    assert ip(veth, fs, "link", "set", "dev", veth.dev, mode, "off").returncode == 0
    prog = attach(veth, fs, mode)
    assert prog_maps(veth, prog) == ids == pinned_ids(fs)
    assert [e["prefix"] for e in fs.lists()["block"]] == ["198.51.100.0/24"]


@pytest.mark.parametrize("mode", MODES)
def test_ip_first_then_xdp_block(veth, fs, mode):
    prog = attach(veth, fs, mode)
    assert fs.pins() == PINS
    assert prog_maps(veth, prog) == pinned_ids(fs)
    res = fs.block("add", "198.51.100.0/24", "2001:db8::/32", check=True)
    assert res.stdout == "block: 198.51.100.0/24 added\nblock: 2001:db8::/32 added\n"
    assert fs.block("load", "--allow", "-", input="198.51.100.7\n", check=True).stdout.startswith("allow: changed")
    assert prog_maps(veth, prog) == pinned_ids(fs)  # swapped inside, never replaced
    assert fs.block("check", "198.51.100.9", check=True).stdout == "blocked by 198.51.100.0/24\n"


def test_pins_of_another_build_stop_ip_until_migrated(veth, fs, small_blocklist):
    """ip refuses pinned maps of another definition; xdp-block says so
    before, and migrate makes them fit without losing the list."""
    small = small_blocklist
    fs.block("--object", str(small), "add", "198.51.100.0/24", check=True)
    res = ip(veth, fs, "link", "set", "dev", veth.dev, "xdpgeneric", "obj", str(OBJECT), "sec", "blocklist")
    assert res.returncode != 0
    assert "couldn't reuse pinned map" in res.stderr or "parameter mismatch" in res.stderr, res.stderr
    assert veth.xdp() is None
    assert fs.block("list").returncode == 4
    fs.block("migrate", check=True)
    prog = attach(veth, fs, "xdpgeneric")
    assert prog_maps(veth, prog) == pinned_ids(fs)
    assert [e["prefix"] for e in fs.lists()["block"]] == ["198.51.100.0/24"]

