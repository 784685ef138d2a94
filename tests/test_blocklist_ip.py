# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist.o attached with the real `ip` (iproute2), natively and in
generic mode, to a veth in a throwaway namespace, with TC_BPF_MNT pointing
at a private bpffs: the attached program uses exactly the pinned maps,
whichever of xdp-block and `ip` came first, and the list outlives detach
and re-attach.  xdp-attach checks that, replaces an attached copy with maps
of its own, and refuses pins that lack one of the object's maps."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from ipxdp import bpf, paths, project
from ipxdp.netns import PrivateBpffs, namespace_with_veth, wait_for
from ipxdp.wire import ETH_P_IP, UDP, eth, ipv4, udp

OBJECT = paths.obj("blocklist")

MODES = {"xdpdrv": 1, "xdpgeneric": 2}
PINS = ["ipxdp_allow", "ipxdp_block", "ipxdp_counters", "ipxdp_totals", "ipxdp_v4"]


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
    # xdp-attach says what it is, and which command fixes it.
    res = veth.run([paths.script("xdp-attach"), "--mode", "generic", veth.dev, OBJECT], env=fs.env)
    assert (res.returncode, res.stdout) == (4, "")
    assert re.fullmatch(rf"xdp-attach: v0: the map pinned as {re.escape(str(fs.root))}/xdp/globals/ipxdp_\w+ "
                        r"has another definition than the object's \(another build made it; ip refused to "
                        r"reuse it, and nothing was attached\): xdp-block migrate moves the lists into maps "
                        r"like the object's\n", res.stderr), res.stderr
    assert veth.xdp() is None
    assert fs.block("list").returncode == 4
    fs.block("migrate", check=True)
    prog = attach(veth, fs, "xdpgeneric")
    assert prog_maps(veth, prog) == pinned_ids(fs)
    assert [e["prefix"] for e in fs.lists()["block"]] == ["198.51.100.0/24"]



# --- xdp-attach checks the maps it got ---------------------------------------------

HOST_PINS = pathlib.Path("/sys/fs/bpf/tc/globals")


def host_pins():
    """The host's ipxdp pins and their map ids (a test must never change them)."""
    if not HOST_PINS.is_dir():
        return {}
    return {p.name: json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", str(p)],
                                              capture_output=True, text=True).stdout or "{}").get("id")
            for p in HOST_PINS.glob("ipxdp_*")}


# Without TC_BPF_MNT, ip takes the first bpffs in /proc/mounts when there is
# none on /sys/fs/bpf: under ip netns exec that could be another test's.  So
# the command runs in a mount namespace of its own without any bpffs, the
# way a host looks from inside ip netns exec (its /sys is a new one).
NO_BPFFS = "awk '$3 == \"bpf\" { print $2 }' /proc/mounts | xargs -r -n 1 umount -l; exec \"$@\""


def netns_exec(ns, *args, env=None):
    """ARGS run under `ip netns exec` (a mount namespace of its own, /sys
    mounted again), as an operator might."""
    argv = ["ip", "netns", "exec", ns.name, *map(str, args)]
    if env is None or "TC_BPF_MNT" not in env:
        argv = ["unshare", "--mount", "--propagation", "private", "bash", "-c", NO_BPFFS, "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_xdp_attach_under_ip_netns_exec_detaches_and_says_why(veth):
    """ip netns exec: ip mounts a bpffs of its own on /sys/fs/bpf, and the
    program gets new maps pinned there only.  xdp-attach sees that from
    outside its mount namespace, detaches again and says so in one line;
    the host's pins are as before."""
    before = host_pins()
    res = netns_exec(veth, paths.script("xdp-attach"), veth.dev, OBJECT)
    assert (res.returncode, res.stdout) == (4, ""), res.stderr
    assert re.fullmatch(
        r"xdp-attach: v0: blocklist detached again: its map ipxdp_\w+ \(map id \d+\) is pinned in a bpffs "
        r"of this mount namespace only, not the one outside it \(/sys/fs/bpf/tc/globals there holds "
        r"none\): ip netns exec gives ip a bpffs of its own; "
        r"use nsenter --net=/var/run/netns/NAME instead\n", res.stderr), res.stderr
    assert veth.xdp() is None
    assert host_pins() == before
    # Other objects pin nothing: ip netns exec is fine for them.
    res = netns_exec(veth, paths.script("xdp-attach"), veth.dev, paths.obj("count"))
    assert res.returncode == 0 and res.stdout.startswith("v0: count attached ("), res.stderr
    assert host_pins() == before


def test_xdp_attach_under_ip_netns_exec_with_a_shared_bpffs(veth, fs):
    """The check is about the bpffs, not about ip netns exec: with
    TC_BPF_MNT on a bpffs outside /sys (which ip netns exec leaves in
    place), the pins are shared, and the attach stands."""
    fs.block("add", "198.51.100.0/24", check=True)
    ids = pinned_ids(fs)
    res = netns_exec(veth, paths.script("xdp-attach"), "--mode", "generic", veth.dev, OBJECT, env=fs.env)
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(r"v0: blocklist attached \(generic, multi-buffer, prog id \d+\)\n", res.stdout)
    assert prog_maps(veth, veth.xdp()["prog"]["id"]) == ids == pinned_ids(fs)


def test_xdp_attach_with_a_bpffs_of_its_own_mount_namespace(veth, fs):
    """A bpffs mounted over TC_BPF_MNT in a mount namespace of its own:
    the maps pinned outside are not the ones the program gets."""
    fs.block("add", "198.51.100.0/24", check=True)
    outside = fs.map_info("pinned", fs.globals / "ipxdp_counters")["id"]
    script = (f'mount -t bpf bpf "$TC_BPF_MNT" && exec nsenter --net={veth.path} -- '
              f'{paths.script("xdp-attach")} --mode generic {veth.dev} {OBJECT}')
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                         capture_output=True, text=True, env=fs.env, timeout=60)
    assert (res.returncode, res.stdout) == (4, ""), res.stderr
    assert res.stderr.startswith("xdp-attach: v0: blocklist detached again: its map ipxdp_")
    assert "is pinned in a bpffs of this mount namespace only, not the one outside it " in res.stderr
    assert " there holds map id " in res.stderr and len(res.stderr.splitlines()) == 1
    assert veth.xdp() is None
    assert fs.map_info("pinned", fs.globals / "ipxdp_counters")["id"] == outside


def test_the_check_finds_a_program_with_maps_of_its_own(fs):
    """ipxdp_check_pinned_maps on a blocklist loaded with maps that are not
    the pinned ones (unpinned, through libbpf), and on one that uses them."""
    fs.block("flush", check=True)
    check = f'. {paths.script("xdp-lib.sh")}; ipxdp_check_pinned_maps "$1" "$2"; ' \
            'echo "$?: $IPXDP_MAPS_PROBLEM"'

    def run(prog):
        res = subprocess.run(["bash", "-c", check, "check", str(OBJECT), str(prog.info().id)],
                             capture_output=True, text=True, env=fs.env)
        assert res.stderr == ""
        return res.stdout

    with bpf.BpfObject(OBJECT) as own, fs.load_object() as shared:
        assert run(shared) == "0: \n"
        got = run(own)
    assert re.fullmatch(rf"1: its map ipxdp_\w+ \(map id \d+\) is not the one pinned in {fs.globals} "
                        rf"\(map id \d+\)\n", got), got


def test_xdp_block_and_ip_find_the_same_bpffs_elsewhere(veth, fs):
    """No bpffs on /sys/fs/bpf or /bpf, one elsewhere (the test's own): ip
    pins in the first bpffs of /proc/mounts, and xdp-block and xdp-attach
    look there too.  (A mount namespace of its own where every other bpffs
    is unmounted; the test's bpffs is the same one outside it.)"""
    where = fs.root
    script = (f"awk '$3 == \"bpf\" && $2 != \"{where}\" {{ print $2 }}' /proc/mounts | "
              f"xargs -r -n 1 umount -l; "
              f'{paths.script("xdp-block")} add 198.51.100.0/24 >/dev/null && '
              f'nsenter --net={veth.path} -- {paths.script("xdp-attach")} --mode generic {veth.dev} {OBJECT} && '
              f'! mountpoint -q /sys/fs/bpf')
    env = {k: v for k, v in os.environ.items() if k != "TC_BPF_MNT"}
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(r"v0: blocklist attached \(generic, multi-buffer, prog id \d+\)\n", res.stdout)
    assert prog_maps(veth, veth.xdp()["prog"]["id"]) == pinned_ids(fs)
    assert [e["prefix"] for e in fs.lists()["block"]] == ["198.51.100.0/24"]


# --- an attached copy without the pinned maps ---------------------------------------

BLOCKED, OTHER = bytes([198, 51, 100, 7]), bytes([192, 0, 2, 1])
NO_TC_BPF_MNT = {k: v for k, v in os.environ.items() if k != "TC_BPF_MNT"}


def verdict(prog_id, src):
    """What the program with id @prog_id (the attached one) does with a UDP
    frame from @src, through BPF_PROG_TEST_RUN."""
    fd = bpf.prog_fd_by_id(prog_id)
    try:
        return bpf.test_run(fd, eth(ETH_P_IP) + ipv4(UDP, udp(53), src=src))[0]
    finally:
        os.close(fd)


def gone(prog_id):
    return subprocess.run(["bpftool", "prog", "show", "id", str(prog_id)], capture_output=True).returncode != 0


@pytest.mark.parametrize("mode,sec", [("xdpgeneric", "blocklist"), ("xdpdrv", "xdp.frags")])
def test_an_attached_copy_without_the_pins_is_replaced(veth, fs, mode, sec):
    """blocklist attached under ip netns exec runs with maps of its own.
    xdp-attach, asked again, does not take it for "already attached" (in
    its plain section or in xdp.frags): it replaces it atomically, in the
    same mode, with xdp.frags on the pinned maps, and says so; the list is
    then the one xdp-block fills."""
    fs.block("add", "198.51.100.0/24", check=True)
    ids = pinned_ids(fs)
    before = host_pins()
    res = netns_exec(veth, "ip", "link", "set", "dev", veth.dev, mode, "obj", OBJECT, "sec", sec,
                     env=NO_TC_BPF_MNT)
    assert res.returncode == 0, res.stderr
    (old,) = veth.attached()
    own = prog_maps(veth, old.id)
    assert own.isdisjoint(ids)  # maps of its own: it blocks nothing
    assert verdict(old.id, BLOCKED) == bpf.XDP_PASS
    m = MODES[mode]
    mode_name = {1: "native", 2: "generic"}[m]
    res = veth.run([paths.script("xdp-attach"), "--mode", mode_name, veth.dev, OBJECT], env=fs.env)
    assert (res.returncode, res.stderr) == (0, ""), res.stderr
    got = re.fullmatch(
        rf"v0: blocklist re-attached \({mode_name}, multi-buffer, prog id (\d+)\): the attached copy, "
        rf"prog id {old.id}, did not use the pinned maps \(its map (ipxdp_\w+) \(map id (\d+)\) is not "
        rf"the one pinned in {re.escape(str(fs.globals))} \(map id (\d+)\)\)\n", res.stdout)
    assert got, res.stdout
    new, name, theirs, pinned = int(got[1]), got[2], int(got[3]), int(got[4])
    assert theirs in own and pinned == fs.map_info("pinned", fs.globals / name)["id"]
    assert [(a.mode, a.id, a.name) for a in veth.attached()] == [(mode_name, new, "xdp_block_mb")]
    assert prog_maps(veth, new) == ids == pinned_ids(fs)
    # It drops what the list blocks, and counts it in the pinned totals.
    blocked = fs.stats()["blocked"]["packets"]
    assert verdict(new, BLOCKED) == bpf.XDP_DROP
    assert verdict(new, OTHER) == bpf.XDP_PASS
    assert fs.stats()["blocked"]["packets"] == blocked + 1
    assert wait_for(lambda: gone(old.id)), "the old copy is still loaded"
    # Now it is the one: asked again, nothing changes.
    res = veth.run([paths.script("xdp-attach"), "--mode", mode_name, veth.dev, OBJECT], env=fs.env)
    assert (res.returncode, res.stdout, res.stderr) == (
        0, f"v0: blocklist already attached ({mode_name}, multi-buffer, prog id {new})\n", "")
    assert host_pins() == before


def test_an_attached_copy_that_ip_cannot_replace_stays(veth, fs, small_blocklist):
    """The pins are of another build: ip refuses to replace the copy with
    maps of its own, which stays attached; xdp-attach says both in one line."""
    fs.block("--object", str(small_blocklist), "add", "198.51.100.0/24", check=True)
    ids = pinned_ids(fs)
    res = netns_exec(veth, "ip", "link", "set", "dev", veth.dev, "xdpgeneric", "obj", OBJECT, "sec", "blocklist",
                     env=NO_TC_BPF_MNT)
    assert res.returncode == 0, res.stderr
    attached = veth.attached()
    res = veth.run([paths.script("xdp-attach"), "--mode", "generic", veth.dev, OBJECT], env=fs.env)
    assert (res.returncode, res.stdout) == (4, ""), res.stderr
    (old,) = attached
    assert re.fullmatch(
        rf"xdp-attach: v0: blocklist \(prog id {old.id}\) does not use the pinned maps \(its map ipxdp_\w+ "
        rf"\(map id \d+\) is not the one pinned in {re.escape(str(fs.globals))} \(map id \d+\)\), and ip could "
        rf"not replace it: the map pinned as {re.escape(str(fs.root))}/xdp/globals/ipxdp_\w+ has another "
        r"definition than the object's \(another build made it; ip refused to reuse it, and nothing was "
        r"attached\): xdp-block migrate moves the lists into maps like the object's "
        rf"\(prog id {old.id} is attached, as before\)\n", res.stderr), res.stderr
    assert veth.attached() == attached
    assert pinned_ids(fs) == ids


def test_a_new_copy_without_the_pins_puts_the_old_one_back(veth, fs):
    """xdp-attach in a mount namespace with a bpffs of its own over
    TC_BPF_MNT, blocklist attached properly from outside: seen from
    inside, the attached program does not use the pins, and neither does
    the copy ip makes there.  The old program is put back, by id, and the
    interface is as before."""
    fs.block("add", "198.51.100.0/24", check=True)
    res = veth.run([paths.script("xdp-attach"), "--mode", "generic", veth.dev, OBJECT], env=fs.env)
    assert res.returncode == 0, res.stderr
    attached = veth.attached()
    (old,) = attached
    ids = pinned_ids(fs)
    script = (f'mount -t bpf bpf "$TC_BPF_MNT" && exec nsenter --net={veth.path} -- '
              f'{paths.script("xdp-attach")} --mode generic {veth.dev} {OBJECT}')
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                         capture_output=True, text=True, env=fs.env, timeout=60)
    assert (res.returncode, res.stdout) == (4, ""), res.stderr
    got = re.fullmatch(
        rf"xdp-attach: v0: blocklist \(prog id {old.id}\) does not use the pinned maps \(its map ipxdp_\w+ "
        rf"\(map id \d+\) is not the one pinned in {re.escape(str(fs.globals))} \(none there\)\), and a new "
        r"copy \(prog id (\d+)\) did not get them either: its map ipxdp_\w+ \(map id \d+\) is pinned in a "
        r"bpffs of this mount namespace only, not the one outside it \([^()]+ there holds map id \d+\): ip "
        r"netns exec gives ip a bpffs of its own; use nsenter --net=/var/run/netns/NAME instead "
        rf"\(prog id {old.id} is attached, as before\)\n", res.stderr)
    assert got, res.stderr
    assert veth.attached() == attached
    assert prog_maps(veth, old.id) == ids == pinned_ids(fs)
    assert wait_for(lambda: gone(int(got[1]))), "the new copy is still loaded"
    assert verdict(old.id, BLOCKED) == bpf.XDP_DROP


# --- pins of a build with fewer maps ------------------------------------------------

def test_partial_pins_are_refused_until_migrated(veth, fs, tmp_path):
    """The pins lack a map the object pins (a build before it was added):
    ip would create it, empty, next to the lists.  xdp-attach refuses
    before ip runs, whatever the mode, and names the command that creates
    it; after it, the attach takes every pin and the list."""
    fs.block("add", "198.51.100.0/24", check=True)
    (fs.globals / "ipxdp_totals").unlink()
    ids = {name: fs.map_info("pinned", fs.globals / name)["id"] for name in fs.pins()}
    want = (f"xdp-attach: v0: {fs.globals} holds the object's other pinned maps but not ipxdp_totals "
            "(another build pinned them; ip would create the missing map empty next to them, so nothing "
            "was attached): xdp-block migrate creates it as the object defines it\n")
    for mode in ([], ["--mode", "generic"], ["--mode", "native"]):
        res = veth.run([paths.script("xdp-attach"), *mode, veth.dev, OBJECT], env=fs.env)
        assert (res.returncode, res.stdout, res.stderr) == (4, "", want)
        assert veth.xdp() is None
        assert {name: fs.map_info("pinned", fs.globals / name)["id"] for name in fs.pins()} == ids
    # Two missing, another object: the same, in the plural, with --object.
    (fs.globals / "ipxdp_counters").unlink()
    copy = tmp_path / "blocklist-copy.o"
    shutil.copy(OBJECT, copy)
    res = veth.run([paths.script("xdp-attach"), "--mode", "generic", veth.dev, copy], env=fs.env)
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr == (
        f"xdp-attach: v0: {fs.globals} holds the object's other pinned maps but not ipxdp_counters, "
        "ipxdp_totals (another build pinned them; ip would create the missing maps empty next to them, so "
        f"nothing was attached): xdp-block --object {copy} migrate creates them as the object "
        "defines them\n")
    assert veth.xdp() is None and fs.pins() == ["ipxdp_allow", "ipxdp_block", "ipxdp_v4"]
    res = fs.block("migrate", check=True)
    assert re.fullmatch(r"ipxdp_counters: created \(percpu_array, key 4, value 16, \d+ entries, flags 0\)\n"
                        rf"ipxdp_totals: created \(percpu_array, key 4, value 16, "
                        rf"{len(project.BLOCKLIST_TOTALS)} entries, flags 0\)\n", res.stdout), res.stdout
    assert fs.pins() == PINS
    res = veth.run([paths.script("xdp-attach"), "--mode", "generic", veth.dev, OBJECT], env=fs.env)
    assert res.returncode == 0 and res.stdout.startswith("v0: blocklist attached (generic, "), res.stderr
    assert prog_maps(veth, veth.xdp()["prog"]["id"]) == pinned_ids(fs)
    assert [e["prefix"] for e in fs.lists()["block"]] == ["198.51.100.0/24"]
