# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The build: sections, license, BTF, port-9090's build-time port and MAC.

Builds that change settings run in a private copy of the sources, so they
never touch the build/ the other tests use.
"""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from ipxdp import paths, project, wire
from ipxdp.bpf import XDP_DROP, XDP_TX, BpfObject
from ipxdp.netns import PrivateBpffs

BUILD, ROOT = paths.build_dir(), paths.ROOT
OBJECTS = project.PROGRAMS
HOST_PINS = "/sys/fs/bpf/tc/globals"


def elf_section(obj, name):
    # Into a file of our own: given /dev/stdout while that is a regular
    # file, llvm-objcopy replaces the /dev/stdout link itself.
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp, "section")
        subprocess.run(["llvm-objcopy", f"--dump-section={name}={out}", str(obj), "/dev/null"],
                       capture_output=True, check=True)
        return out.read_bytes()


def section_names(obj):
    out = subprocess.run(["llvm-readelf", "-S", "-W", str(obj)], capture_output=True, text=True, check=True)
    return {line.split("]", 1)[1].split()[0] for line in out.stdout.splitlines() if "]" in line and line.strip().startswith("[")}


@pytest.mark.parametrize("name", OBJECTS)
def test_object_layout(name):
    obj = BUILD / f"{name}.o"
    sections = section_names(obj)
    assert name in sections
    assert elf_section(obj, "license") == b"Dual BSD/GPL\0"
    assert ".BTF" in sections, "-g is needed for the BTF iproute2 reads .maps from"
    # No read-only or global data: `ip` would have to create maps for them.
    assert not sections & {".rodata", ".data", ".bss"}
    pins = set(os.listdir(HOST_PINS)) if os.path.isdir(HOST_PINS) else set()
    # The plain section first: `bpftool prog load` takes the first program.
    with BpfObject(obj) as loaded:
        assert list(loaded.programs) == [name, "xdp.frags"]
    # blocklist's maps are pinned by name: BpfObject creates them unpinned.
    assert (set(os.listdir(HOST_PINS)) if os.path.isdir(HOST_PINS) else set()) == pins


@pytest.fixture
def src_copy(tmp_path):
    for d in ("progs", "probe", "include", "tests/fixtures"):
        shutil.copytree(ROOT / d, tmp_path / d)
    shutil.copy(ROOT / "Makefile", tmp_path)
    return tmp_path


def make(cwd, *args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, MAKEFLAGS=""))


def test_tx_port_and_mac_at_build_time(src_copy):
    res = make(src_copy, "TX_PORT=8443", "TX_MAC=02:11:22:33:44:55")
    assert res.returncode == 0, res.stderr
    assert "TX_PORT=8443 TX_MAC=02:11:22:33:44:55" in res.stdout
    with BpfObject(src_copy / "build/port-9090.o") as obj:
        verdict, out = obj.run(wire.tcp4(8443))
        assert verdict == XDP_TX and out[:6] == wire.mac("02:11:22:33:44:55")
        assert obj.run(wire.tcp4(9090))[0] == XDP_DROP

    # Same values: nothing to do.  Other values: port-9090.o (only) rebuilds.
    res = make(src_copy, "TX_PORT=8443", "TX_MAC=02:11:22:33:44:55")
    assert "CLANG" not in res.stdout
    res = make(src_copy)
    assert "CLANG   build/port-9090.o" in res.stdout
    assert "drop-tcp.o" not in res.stdout and "count.o" not in res.stdout
    with BpfObject(src_copy / "build/port-9090.o") as obj:
        verdict, out = obj.run(wire.tcp4(9090))
        assert verdict == XDP_TX and out[:6] == wire.mac("08:00:27:dd:38:2a")


def test_header_change_rebuilds(src_copy):
    assert make(src_copy).returncode == 0
    os.utime(src_copy / "include/parse.h")
    res = make(src_copy)
    assert all(f"CLANG   build/{n}.o" in res.stdout for n in OBJECTS), res.stdout


@pytest.mark.parametrize("arg, message", [
    ("TX_PORT=70000", "TX_PORT must be a port number from 1 to 65535, got '70000'"),
    ("TX_PORT=0", "TX_PORT must be a port number from 1 to 65535, got '0'"),
    ("TX_PORT=80a", "TX_PORT must be a port number from 1 to 65535, got '80a'"),
    ("TX_MAC=08:00:27:dd:38", "TX_MAC must be six hex bytes like 08:00:27:dd:38:2a, got '08:00:27:dd:38'"),
    ("TX_MAC=zz:00:27:dd:38:2a", "TX_MAC must be six hex bytes like 08:00:27:dd:38:2a, got 'zz:00:27:dd:38:2a'"),
])
def test_bad_tx_values_fail_clearly(src_copy, arg, message):
    res = make(src_copy, arg)
    assert res.returncode != 0
    assert message in res.stderr
    assert not (src_copy / "build/port-9090.o").exists()


def test_blocklist_capacities_at_build_time(src_copy):
    res = make(src_copy, "BLOCKLIST_MAX=1000", "BLOCKLIST_COUNTERS=64")
    assert res.returncode == 0, res.stderr
    assert "CONFIG  blocklist: BLOCKLIST_MAX=1000 BLOCKLIST_COUNTERS=64 BLOCKLIST_V4_GROUPS=1048576" in res.stdout
    assert (src_copy / "build/blocklist.config").read_text() == \
        "BLOCKLIST_MAX=1000 BLOCKLIST_COUNTERS=64 BLOCKLIST_V4_GROUPS=1048576\n"
    with PrivateBpffs() as fs, fs.load_object(src_copy / "build/blocklist.o"):
        assert fs.map_info("pinned", fs.globals / "ipxdp_counters")["max_entries"] == 64
        assert fs.map_info("id", fs.slot_map_id("ipxdp_block"))["max_entries"] == 1000
    # Same values: nothing to do.  Other values: blocklist.o (only) rebuilds.
    assert "CLANG" not in make(src_copy, "BLOCKLIST_MAX=1000", "BLOCKLIST_COUNTERS=64").stdout
    res = make(src_copy)
    assert "CLANG   build/blocklist.o" in res.stdout and "port-9090.o" not in res.stdout
    assert (src_copy / "build/blocklist.config").read_text() == \
        "BLOCKLIST_MAX=2000000 BLOCKLIST_COUNTERS=262144 BLOCKLIST_V4_GROUPS=1048576\n"


@pytest.mark.parametrize("arg, message", [
    ("BLOCKLIST_MAX=0", "BLOCKLIST_MAX must be a number of prefixes from 1 to 4194303, got '0'"),
    ("BLOCKLIST_MAX=1M", "BLOCKLIST_MAX must be a number of prefixes from 1 to 4194303, got '1M'"),
    ("BLOCKLIST_MAX=4194304", "BLOCKLIST_MAX must be a number of prefixes from 1 to 4194303, got '4194304'"),
    ("BLOCKLIST_V4_GROUPS=15",
     "BLOCKLIST_V4_GROUPS must be a number of range groups from 16 to 1073741824, got '15'"),
    ("BLOCKLIST_COUNTERS=4294967295",
     "BLOCKLIST_COUNTERS must be a number of counters from 1 to 4294967294, got '4294967295'"),
])
def test_bad_blocklist_values_fail_clearly(src_copy, arg, message):
    res = make(src_copy, arg)
    assert res.returncode != 0
    assert message in res.stderr
    assert not (src_copy / "build/blocklist.o").exists()


def test_check_refuses_non_root(src_copy):
    # A world-readable copy outside pytest's private temporary directory.
    public = pathlib.Path(tempfile.mkdtemp(prefix="ipxdp-nonroot-"))
    try:
        os.chmod(public, 0o755)
        shutil.copytree(src_copy, public / "src")
        subprocess.run(["chmod", "-R", "a+rX", str(public)], check=True)
        res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                              "make", "--no-print-directory", "-C", str(public / "src"), "check"],
                             capture_output=True, text=True)
    finally:
        shutil.rmtree(public)
    assert res.returncode != 0
    assert res.stderr.splitlines()[0] == (
        "make check needs root (it loads BPF programs and creates network namespaces): run it as root")
    assert "check-root" in res.stderr  # stopped there, before building anything
    assert res.stdout == ""
