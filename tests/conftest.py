# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Shared pytest fixtures: the built objects, loaded once per session."""

import os
import pathlib

import pytest

from bpfrun import BpfObject, PerCpuArray
import reference

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The objects under test; the mutation tests point this at broken builds.
BUILD = pathlib.Path(os.environ.get("IPXDP_BUILD", ROOT / "build"))


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the tests need root (they load BPF programs and create network "
                    "namespaces): run them as root", returncode=2)


def build_config():
    """port-9090's TX_PORT and TX_MAC, as the build recorded them."""
    text = (BUILD / "port-9090.config").read_text().split()
    values = dict(item.split("=", 1) for item in text)
    return int(values["TX_PORT"]), reference.parse_mac(values["TX_MAC"])


@pytest.fixture(scope="session")
def tx_config():
    return build_config()


def _load(name):
    obj = BpfObject(BUILD / f"{name}.o")
    yield obj
    obj.close()


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
    table = PerCpuArray(count_obj.map_fd("proto_counters"), ["packets", "bytes"])
    table.clear(range(258))
    return table
