# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Each object attaches with the real `ip`, natively and in generic mode, to
a veth in a throwaway network namespace (deleted even when a test fails)."""

import json
import os
import subprocess

import pytest

from conftest import BUILD

PROGRAMS = {"drop-tcp": "xdp_drop_tcp", "count": "xdp_count_proto", "port-9090": "xdp_bounce_port"}
MODES = {"xdpdrv": ("xdp", 1), "xdpgeneric": ("xdpgeneric", 2)}  # ip keyword -> (json key, mode)


def ip(ns, *args, check=True):
    return subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=check)


@pytest.fixture
def veth():
    ns = f"ipxdp-load-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip(ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip(ns, "link", "set", "v0", "up")
        ip(ns, "link", "set", "v1", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def xdp_info(ns, dev):
    (link,) = json.loads(ip(ns, "-j", "-d", "link", "show", "dev", dev).stdout)
    return link.get("xdp")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PROGRAMS)
def test_attach_with_ip(veth, name, mode):
    ip(veth, "link", "set", "dev", "v0", mode, "obj", str(BUILD / f"{name}.o"), "sec", name)
    info = xdp_info(veth, "v0")
    assert info is not None, "no XDP program after ip link set … xdp obj"
    assert info["mode"] == MODES[mode][1]
    assert info["prog"]["name"] == PROGRAMS[name]
    ip(veth, "link", "set", "dev", "v0", mode, "off")
    assert xdp_info(veth, "v0") is None


def test_wrong_section_is_refused(veth):
    res = ip(veth, "link", "set", "dev", "v0", "xdpdrv", "obj", str(BUILD / "drop-tcp.o"),
             "sec", "no-such-section", check=False)
    assert res.returncode != 0
    assert xdp_info(veth, "v0") is None
