# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Each object attaches with the real `ip`, natively and in generic mode, to
a veth in a throwaway network namespace (deleted even when a test fails)."""

import pytest

from ipxdp import paths
from ipxdp.netns import PrivateBpffs, namespace_with_veth
from ipxdp.project import PROGRAMS

MODES = {"xdpdrv": "native", "xdpgeneric": "generic"}  # ip keyword -> mode


@pytest.fixture
def veth():
    with namespace_with_veth("ipxdp-load", "v0", "v1") as ns:
        yield ns


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PROGRAMS)
def test_attach_with_ip(veth, name, mode):
    with PrivateBpffs() as fs:  # where ip pins the maps of an object that pins them (blocklist)
        veth.run(["ip", "link", "set", "dev", "v0", mode, "obj", str(paths.obj(name)), "sec", name],
                 env=fs.env, check=True)
    assert veth.xdp("v0") is not None, "no XDP program after ip link set … xdp obj"
    assert [(a.mode, a.name) for a in veth.attached("v0")] == [(MODES[mode], PROGRAMS[name])]
    veth.ip("link", "set", "dev", "v0", mode, "off")
    assert veth.xdp("v0") is None


def test_wrong_section_is_refused(veth):
    res = veth.run(["ip", "link", "set", "dev", "v0", "xdpdrv", "obj", str(paths.obj("drop-tcp")),
                    "sec", "no-such-section"])
    assert res.returncode != 0
    assert veth.xdp("v0") is None
