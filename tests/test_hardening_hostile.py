# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Scripts under hostile input: interface names, object paths and section
names that the kernel accepts and a shell would not are data, never code.

The names are real interfaces (veths in a throwaway namespace), real files
and real ELF sections, on which the scripts must work normally.  Proof that
nothing is ever executed: the shell words hidden in the names (a, b, x,
ipxdppwn) are commands on PATH that log any call, the scripts run in an
empty directory that must stay empty (a>b would create b), and $(id)
evaluated would change the name and so fail the attach."""

import json
import os
import re
import shutil
import subprocess

import pytest

import promtools
from ipxdp import paths, wire
from ipxdp.netns import namespaces
from ipxdp.sender import Sender

# Names the kernel takes as interface names (1-15 bytes, no '/', ':' or
# whitespace), each a shell hazard.
HOSTILE = ["a;b", "$(id)", "`id`", "a'b", 'a"b', "-x", "$(ipxdppwn)", "`ipxdppwn`",
           "a|b", "a&b", "a>b", "*", "~", "$x", "a\\b", "{a,b}", "!x"]
# Names the kernel refuses: they can only be unknown interfaces.
REJECTED = ["a b", "a\nb", "a:b", "a\tb", "x" * 16, "a" * 40]
MARKERS = ("a", "b", "x", "ipxdppwn")
SECTIONS = ["a;b", "$(ipxdppwn)", "`ipxdppwn`", "a'b", 'a"b', "-x", "$(id)", "a:b", "a|b", "a>b", "a b"]
OBJ_NAMES = ["a;b.o", "$(ipxdppwn).o", "`ipxdppwn`.o", "a'b.o", 'a"b.o', "-x.o", "$(id).o",
             "a b.o", "a\nb.o", "a:b.o", "a>b.o", "*.o"]


@pytest.fixture
def trap(tmp_path):
    """PATH with logging marker commands first, an empty working directory,
    and a check after the test that neither was touched."""
    bindir, cwd, log = tmp_path / "bin", tmp_path / "cwd", tmp_path / "executed.log"
    bindir.mkdir()
    cwd.mkdir()
    for name in MARKERS:
        marker = bindir / name
        marker.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{log}'\n")
        marker.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    yield env, cwd
    assert not log.exists(), f"a name was executed: {log.read_text()}"
    assert list(cwd.iterdir()) == [], f"a name created files: {list(cwd.iterdir())}"


def scr(ns, trap, name, *args):
    env, cwd = trap
    return ns.run([paths.script(name), *args], env=env, cwd=cwd)


def xdp_state(ns, dev):
    """[(mode, prog id, prog name)] attached to @dev."""
    return [a[:3] for a in ns.attached(dev)]


def dev_args(dev):
    """How a user passes DEV: "--" first when it looks like an option."""
    return ["--", dev] if dev.startswith("-") else [dev]


def one_line_error(res, code, text):
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and text in lines[0], res.stderr


@pytest.mark.parametrize("dev", HOSTILE)
def test_scripts_work_on_hostile_interface_names(dev, trap, tmp_path):
    build = paths.build_dir()
    with namespaces("ipxdp-hhost", "ns", ipv6=False) as (ns,):
        ns.add_veth(dev, "hpeer")
        res = scr(ns, trap, "xdp-attach", "--mode", "native", *dev_args(dev), build / "drop-tcp.o")
        assert res.returncode == 0, res.stderr
        m = re.fullmatch(r"(.*): drop-tcp attached \(native, prog id (\d+)\)\n", res.stdout, re.S)
        assert m and m.group(1) == dev, res.stdout
        first = int(m.group(2))
        assert xdp_state(ns, dev) == [("native", first, "xdp_drop_tcp")]

        res = scr(ns, trap, "xdp-attach", "--mode", "native", *dev_args(dev), build / "drop-tcp.o")
        assert (res.returncode, res.stdout) == (0, f"{dev}: drop-tcp already attached (native, prog id {first})\n")

        res = scr(ns, trap, "xdp-status", "--json", *dev_args(dev))
        assert res.returncode == 0, res.stderr
        (entry,) = json.loads(res.stdout)
        assert (entry["interface"], entry["mode"], entry["id"], entry["name"]) == \
            (dev, "native", first, "xdp_drop_tcp")

        res = scr(ns, trap, "xdp-attach", "--force", "--mode", "native", *dev_args(dev), build / "count.o")
        assert res.returncode == 0, res.stderr
        second = int(re.fullmatch(rf"{re.escape(dev)}: count attached \(native, prog id (\d+)\)\n",
                                  res.stdout, re.S).group(1))
        assert xdp_state(ns, dev) == [("native", second, "xdp_count_proto")]

        # Three UDP frames from the peer; xdp-stats counts them on DEV.
        udp = wire.eth(wire.ETH_P_IP, dst=ns.link_mac(dev), src=ns.link_mac("hpeer")) + \
            wire.ipv4(wire.UDP, wire.udp(53))
        (tmp_path / "udp.hex").write_text(udp.hex() + "\n")
        sender = Sender(ns, "hpeer", frames_file=tmp_path / "udp.hex", repeat=3)
        assert sender.wait()["sent"] == 3
        res = scr(ns, trap, "xdp-stats", "--once", "--json", *dev_args(dev))
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == {"interface": dev,
                                          "protocols": {"udp": {"packets": 3, "bytes": 3 * len(udp)}}}
        # The same as Prometheus metrics, the name as a label value
        # (test_metrics.py covers DEV operands).
        res = scr(ns, trap, "xdp-stats", "--prometheus")
        assert res.returncode == 0, res.stderr
        samples = promtools.parse(res.stdout)
        assert {(s.name, s.labels.get("interface"), s.labels.get("protocol"), s.value)
                for s in samples if s.name.startswith("ipxdp_count_")} == \
            {("ipxdp_count_packets_total", dev, "udp", 3),
             ("ipxdp_count_bytes_total", dev, "udp", 3 * len(udp))}
        assert promtools.check_metrics(res.stdout).returncode == 0, res.stdout

        res = scr(ns, trap, "xdp-detach", *dev_args(dev))
        assert (res.returncode, res.stdout) == (0, f"{dev}: xdp_count_proto detached (native, prog id {second})\n"), \
            res.stderr
        assert xdp_state(ns, dev) == []
        res = scr(ns, trap, "xdp-detach", *dev_args(dev))
        assert (res.returncode, res.stdout) == (0, f"{dev}: nothing attached\n"), res.stderr


@pytest.mark.parametrize("dev", REJECTED, ids=repr)
def test_names_the_kernel_rejects_are_unknown_interfaces(dev, trap):
    build = paths.build_dir()
    with namespaces("ipxdp-hrej", "ns", ipv6=False) as (ns,):
        ns.add_veth("v0", "v1")
        before = xdp_state(ns, "v0")
        for argv in (["xdp-attach", "--", dev, build / "drop-tcp.o"],
                     ["xdp-detach", "--", dev],
                     ["xdp-status", "--", dev],
                     ["xdp-stats", "--once", "--json", "--", dev]):
            one_line_error(scr(ns, trap, *argv), 2, "unknown interface")
        assert xdp_state(ns, "v0") == before == []


@pytest.fixture
def hostile_objects(tmp_path):
    """Copies of drop-tcp.o and port-9090.o under hostile file names, also
    inside a hostile directory."""
    objs = tmp_path / "objs"
    odd_dir = objs / "d;$(ipxdppwn) `b`"
    odd_dir.mkdir(parents=True)
    made = []
    for i, name in enumerate(OBJ_NAMES):
        prog = ("drop-tcp", "port-9090")[i % 2]
        shutil.copy(paths.build_dir() / f"{prog}.o", objs / name)
        made.append((objs / name, prog))
    shutil.copy(paths.build_dir() / "drop-tcp.o", odd_dir / "x.o")
    made.append((odd_dir / "x.o", "drop-tcp"))
    return made


def test_hostile_object_paths(hostile_objects, trap):
    with namespaces("ipxdp-hobj", "ns", ipv6=False) as (ns,):
        ns.add_veth("v0", "v1")
        ids = []
        for path, prog in hostile_objects:
            res = scr(ns, trap, "xdp-attach", "--force", "--mode", "native", "--", "v0", path)
            assert res.returncode == 0, (path, res.stderr)
            m = re.fullmatch(r"v0: (\S+) attached \(native, prog id (\d+)\)\n", res.stdout)
            assert m and m.group(1) == prog, (path, res.stdout)
            ids.append(int(m.group(2)))
            assert xdp_state(ns, "v0")[0][1] == ids[-1]
        # Missing files with hostile names: one clear line, nothing attached anew.
        for missing in ("$(ipxdppwn)/x.o", "a;b/x.o", "`b`.o", "-x/y.o"):
            res = scr(ns, trap, "xdp-attach", "--force", "--", "v0", hostile_objects[0][0].parent / missing)
            one_line_error(res, 2, "no such file")
        assert xdp_state(ns, "v0")[0][1] == ids[-1]


@pytest.fixture(scope="module")
def hostile_sections():
    """One object with a program prog_<i> in each hostile section
    (tests/fixtures/hostile-sections.c); each has different code (and so a
    different tag), and all of them pass."""
    obj = paths.fixture("hostile-sections")
    out = subprocess.run(["llvm-objdump", "-h", str(obj)], capture_output=True, text=True, check=True)
    # "Idx Name Size VMA Type": the name may hold a space, the rest is fixed.
    rows = [re.fullmatch(r"\s*\d+ (.+?)\s+([0-9a-f]{8}) [0-9a-f]{16} TEXT", line)
            for line in out.stdout.splitlines()]
    programs = [m.group(1) for m in rows if m and int(m.group(2), 16)]
    assert programs == SECTIONS, "tests/fixtures/hostile-sections.c and SECTIONS differ"
    return obj


def test_hostile_section_names(hostile_sections, trap):
    with namespaces("ipxdp-hsec", "ns", ipv6=False) as (ns,):
        ns.add_veth("v0", "v1")
        seen = set()
        for i, sec in enumerate(SECTIONS):
            res = scr(ns, trap, "xdp-attach", "--force", "--mode", "native", "--", "v0", hostile_sections, sec)
            assert res.returncode == 0, (sec, res.stderr)
            m = re.fullmatch(r"v0: (.*) attached \(native, prog id (\d+)\)\n", res.stdout)
            assert m and m.group(1) == sec, (sec, res.stdout)
            assert xdp_state(ns, "v0") == [("native", int(m.group(2)), f"prog_{i}")]
            seen.add(int(m.group(2)))
        assert len(seen) == len(SECTIONS)
        res = scr(ns, trap, "xdp-attach", "--force", "--", "v0", hostile_sections, "$(ipxdppwn)x")
        one_line_error(res, 2, "no section")
        for sec in SECTIONS:  # the message lists the sections that are there
            assert sec in res.stderr
        assert xdp_state(ns, "v0")[0][2] == f"prog_{len(SECTIONS) - 1}"
