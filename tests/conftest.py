# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Shared pytest fixtures: the built objects under test (paths.build_dir(),
which the mutation tests point at broken builds), loaded once per session,
count's counters, the objects of the differential test, and a blocklist.o
of small capacities."""

import os
import shutil
import subprocess

import pytest

from ipxdp import bpf, differential, paths, project
from ipxdp.netns import PrivateBpffs


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the tests need root (they load BPF programs and create network "
                    "namespaces): run them as root", returncode=2)


def _host_pins():
    """The ipxdp pins in the host's bpffs (blocklist's maps pin by name)."""
    out = set()
    for d in ("/sys/fs/bpf", "/sys/fs/bpf/tc/globals"):
        if os.path.isdir(d):
            out |= {f"{d}/{n}" for n in os.listdir(d) if n.startswith("ipxdp_")}
    return out


@pytest.fixture(scope="session", autouse=True)
def host_list_untouched():
    """No test pins anything in the host's bpffs: every test that loads or
    attaches blocklist gives it a bpffs of its own (ipxdp.netns.PrivateBpffs)."""
    before = _host_pins()
    yield
    assert _host_pins() == before, "a test left blocklist pins in the host's /sys/fs/bpf"


@pytest.fixture(scope="session")
def tx_config():
    """port-9090's (TX_PORT, TX_MAC) as the build recorded them."""
    return project.port_9090_config()


def _load(name):
    with bpf.BpfObject(paths.obj(name)) as obj:
        yield obj


@pytest.fixture(scope="session")
def drop_tcp():
    yield from _load("drop-tcp")


@pytest.fixture(scope="session")
def port_9090():
    yield from _load("port-9090")


@pytest.fixture(scope="session")
def count_obj():
    yield from _load("count")


@pytest.fixture
def counters(count_obj):
    """count's per-CPU counters, all zero at the start of the test."""
    table = bpf.count_counters(count_obj)
    table.clear(range(project.COUNT_KEYS))
    return table


@pytest.fixture(scope="session")
def objs():
    """The objects as the differential test loads them (ipxdp.differential)."""
    o = differential.Objects()
    yield o
    o.close()


@pytest.fixture(scope="session")
def small_blocklist(tmp_path_factory):
    """blocklist.o built with room for 8 prefixes per list and 4 counter
    slots and 16 range groups in its IPv4 table (make BLOCKLIST_MAX=8
    BLOCKLIST_COUNTERS=4 BLOCKLIST_V4_GROUPS=16), from a copy of the
    sources; its path."""
    src = tmp_path_factory.mktemp("small-blocklist")
    for d in ("progs", "include", "tests/fixtures"):
        shutil.copytree(paths.ROOT / d, src / d)
    shutil.copy(paths.ROOT / "Makefile", src)
    res = subprocess.run(["make", "--no-print-directory", "BLOCKLIST_MAX=8", "BLOCKLIST_COUNTERS=4",
                          "BLOCKLIST_V4_GROUPS=16",
                          "build/blocklist.o"], cwd=src, capture_output=True, text=True,
                         env=dict(os.environ, MAKEFLAGS=""))
    assert res.returncode == 0, res.stderr
    assert project.blocklist_config(src / "build") == {"BLOCKLIST_MAX": 8, "BLOCKLIST_COUNTERS": 4,
                                                        "BLOCKLIST_V4_GROUPS": 16}
    return src / "build" / "blocklist.o"


@pytest.fixture(scope="module")
def private_tc_bpf_mnt():
    """blocklist pins its maps where ip pins them: in a bpffs of the
    module's own (TC_BPF_MNT, inherited by every command below), never in
    the host's."""
    with PrivateBpffs() as fs:
        old = os.environ.get("TC_BPF_MNT")
        os.environ["TC_BPF_MNT"] = str(fs.root)
        try:
            yield fs
        finally:
            if old is None:
                del os.environ["TC_BPF_MNT"]
            else:
                os.environ["TC_BPF_MNT"] = old
