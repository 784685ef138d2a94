# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Each object attaches with the real `ip`, natively and in generic mode, to
a veth in a throwaway network namespace (deleted even when a test fails)."""

import pytest

from conftest import BUILD
from netns import namespace_with_veth

PROGRAMS = {"drop-tcp": "xdp_drop_tcp", "count": "xdp_count_proto", "port-9090": "xdp_bounce_port"}
MODES = {"xdpdrv": ("xdp", 1), "xdpgeneric": ("xdpgeneric", 2)}  # ip keyword -> (json key, mode)


@pytest.fixture
def veth():
    with namespace_with_veth("ipxdp-load", "v0", "v1") as ns:
        yield ns


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PROGRAMS)
def test_attach_with_ip(veth, name, mode):
    veth.ip("link", "set", "dev", "v0", mode, "obj", str(BUILD / f"{name}.o"), "sec", name)
    info = veth.xdp("v0")
    assert info is not None, "no XDP program after ip link set … xdp obj"
    assert info["mode"] == MODES[mode][1]
    assert info["prog"]["name"] == PROGRAMS[name]
    veth.ip("link", "set", "dev", "v0", mode, "off")
    assert veth.xdp("v0") is None


def test_wrong_section_is_refused(veth):
    res = veth.run(["ip", "link", "set", "dev", "v0", "xdpdrv", "obj", str(BUILD / "drop-tcp.o"),
                    "sec", "no-such-section"])
    assert res.returncode != 0
    assert veth.xdp("v0") is None
