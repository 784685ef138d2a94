# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""scripts/xdp-block as a command: its output, and every bad input (exit
code, the one line on stderr, and the lists, pins and slots exactly as
before).  Each test has a bpffs of its own (TC_BPF_MNT)."""

import fcntl
import ipaddress
import json
import os
import pathlib
import random
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from ipxdp import blocklist_reference as ref
from ipxdp import bpf, paths, project, wire
from ipxdp.netns import PrivateBpffs

SCRIPTS = paths.scripts_dir()  # the scripts under test

NEEDS_ROOT = "needs root (uid 0 with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF)"


@pytest.fixture
def fs():
    with PrivateBpffs() as bpffs:
        yield bpffs


@pytest.fixture
def small(small_blocklist):
    """blocklist.o built with room for 8 prefixes and 4 counter slots."""
    return small_blocklist


def udp4(src):
    return wire.eth(wire.ETH_P_IP) + wire.ipv4(wire.UDP, wire.udp(53), src=wire.ip4(src))


def state(fs):
    """Everything a failed command must leave as it was: the pins, the maps
    they hold, and the lists in the slots as bpftool dumps them (whatever
    their layout)."""
    out = {}
    for name in fs.pins():
        path = str(fs.globals / name)
        info = fs.map_info("pinned", path)
        out[name] = info["id"]  # the counters: too many slots to dump each time
        if info["type"] == "array_of_maps":
            inner = fs.slot_map_id(name)
            if fs.map_info("id", inner)["type"] == "array":
                # The IPv4 table: xdp-block never writes one in use, it
                # swaps in another, so its id says it is the same.
                out[name + "/table"] = inner
                continue
            out[name + "/list"] = (inner, subprocess.run(["bpftool", "-j", "map", "dump", "id", str(inner)],
                                                         capture_output=True, text=True, check=True).stdout)
    return out


def fails(fs, args, code, message, input=None):
    """Runs xdp-block ARGS: exit CODE, MESSAGE as its one line on stderr,
    nothing on stdout."""
    res = fs.block(*args, input=input)
    assert res.returncode == code, res.stderr
    assert res.stdout == ""
    assert res.stderr == f"xdp-block: {message}\n"
    return res


def refused(fs, args, code, message, input=None):
    """fails(), and state(fs) as before."""
    before = state(fs)
    res = fails(fs, args, code, message, input)
    assert state(fs) == before
    return res


@pytest.fixture(scope="module")
def shared():
    """One bpffs with a few prefixes, for the tests whose commands must
    all fail and change nothing."""
    with PrivateBpffs() as bpffs:
        filled(bpffs)
        yield bpffs


def filled(fs):
    fs.block("add", "198.51.100.0/24", "2001:db8::/32", check=True)
    fs.block("add", "--allow", "198.51.100.7", check=True)


# --- output -------------------------------------------------------------------------

def test_output_of_each_command(fs):
    assert fs.block("list", check=True).stdout == "(no prefixes)\n"
    assert fs.pins() == []  # reading creates nothing
    res = fs.block("add", "198.51.100.0/24", "10.1.2.3", "2001:DB8::/32", "::ffff:192.0.2.1", "10.1.2.3",
                   check=True)
    assert res.stdout == ("block: 198.51.100.0/24 added\nblock: 10.1.2.3/32 added\n"
                          "block: 2001:db8::/32 added\nblock: ::ffff:c000:201/128 added\n")
    assert fs.pins() == ["ipxdp_allow", "ipxdp_block", "ipxdp_counters", "ipxdp_totals", "ipxdp_v4"]
    assert fs.block("add", "198.51.100.0/24", check=True).stdout == "block: 198.51.100.0/24 already listed\n"
    assert fs.block("add", "-a", "10.0.0.0/8", check=True).stdout == "allow: 10.0.0.0/8 added\n"
    assert fs.block("list", check=True).stdout == (
        f"{'LIST':<6} {'PREFIX':<43} {'PACKETS':>14} {'BYTES':>16}\n"
        + "".join(f"{name:<6} {p:<43} {0:>14} {0:>16}\n" for name, p in [
            ("block", "10.1.2.3/32"), ("block", "198.51.100.0/24"), ("block", "::ffff:c000:201/128"),
            ("block", "2001:db8::/32"), ("allow", "10.0.0.0/8")]))
    assert fs.lists() == {
        "block": [{"prefix": p, "packets": 0, "bytes": 0}
                  for p in ("10.1.2.3/32", "198.51.100.0/24", "::ffff:c000:201/128", "2001:db8::/32")],
        "allow": [{"prefix": "10.0.0.0/8", "packets": 0, "bytes": 0}]}
    assert fs.lists("--allow") == {"allow": [{"prefix": "10.0.0.0/8", "packets": 0, "bytes": 0}]}
    assert fs.block("check", "10.1.2.3", check=True).stdout == "allowed by 10.0.0.0/8\n"
    assert fs.block("check", "198.51.100.9", check=True).stdout == "blocked by 198.51.100.0/24\n"
    assert fs.block("check", "192.0.2.1", check=True).stdout == "not listed\n"
    assert json.loads(fs.block("check", "--json", "10.1.2.3", check=True).stdout) == {
        "address": "10.1.2.3", "result": "allowed", "prefix": "10.0.0.0/8",
        "block": "10.1.2.3/32", "allow": "10.0.0.0/8"}
    assert json.loads(fs.block("check", "::1", "-j", check=True).stdout) == {
        "address": "::1", "result": "not listed", "prefix": None, "block": None, "allow": None}
    assert fs.block("del", "10.1.2.3", "192.0.2.0/24", check=True).stdout == (
        "block: 10.1.2.3/32 deleted\nblock: 192.0.2.0/24 not listed\n")
    assert fs.stats() == {k: {"packets": 0, "bytes": 0}
                          for k in ("passed", "blocked", "allowed", "malformed", "uncounted")}
    assert fs.block("stats", check=True).stdout.splitlines()[0].split() == ["TOTAL", "PACKETS", "BYTES"]
    assert fs.block("flush", "--allow", check=True).stdout == "allow: changed (1 prefix deleted)\n"


def per_cpu_table(fs, pin):
    """The per-CPU map pinned as @pin, opened by its id: (PerCpuArray, fd)."""
    fd = bpf.map_fd_by_id(fs.map_info("pinned", fs.globals / pin)["id"])
    return bpf.PerCpuArray(fd, project.BLOCKLIST_FIELDS), fd


def test_counters_near_two_to_the_64(fs):
    """list and stats add the CPUs' __u64 counters exactly, into --json and
    the tables, up to 2^64 - 1 per CPU and past 2^64 in the sum."""
    if bpf.num_possible_cpus() < 2:
        pytest.skip("needs two CPUs")
    top = 2 ** 64 - 1
    fs.block("add", "198.51.100.0/24", "2001:db8::/32", "192.0.2.1", check=True)  # slots 0, 1, 2
    values = {
        # slot: per CPU (packets, bytes), and the exact sums
        0: ([(top, top), (0, 0)], (top, top)),
        1: ([(2 ** 63, top), (2 ** 63, 7)], (2 ** 64, 2 ** 64 + 6)),
        2: ([(2 ** 53 + 1, 2 ** 53 + 3), (1, 0)], (2 ** 53 + 2, 2 ** 53 + 3)),
    }
    counters, fd = per_cpu_table(fs, project.BLOCKLIST_COUNTERS_MAP)
    totals, fd2 = per_cpu_table(fs, project.BLOCKLIST_TOTALS_MAP)
    try:
        for slot, (per_cpu, _) in values.items():
            counters.update(slot, [{"packets": p, "bytes": b} for p, b in per_cpu])
        for key, per_cpu in enumerate([[(top, top), (top, top)], [(2 ** 63, 1)], [(0, 0), (top, 2)],
                                       [(1, 1)], [(2 ** 32, 2 ** 32 - 1), (2 ** 32, 1)]]):
            totals.update(key, [{"packets": p, "bytes": b} for p, b in per_cpu])
    finally:
        os.close(fd)
        os.close(fd2)
    sums = {"198.51.100.0/24": values[0][1], "2001:db8::/32": values[1][1], "192.0.2.1/32": values[2][1]}
    assert fs.lists()["block"] == [{"prefix": p, "packets": sums[p][0], "bytes": sums[p][1]}
                                   for p in ("192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32")]
    table = fs.block("list", check=True).stdout.splitlines()[1:]
    assert [line.split()[1:] for line in table] == [
        [p, str(sums[p][0]), str(sums[p][1])] for p in ("192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32")]
    want = {"passed": (2 * top, 2 * top), "blocked": (2 ** 63, 1), "allowed": (top, 2),
            "malformed": (1, 1), "uncounted": (2 ** 33, 2 ** 32)}
    assert fs.stats() == {k: {"packets": p, "bytes": b} for k, (p, b) in want.items()}
    table = fs.block("stats", check=True).stdout.splitlines()[1:]
    assert [line.split() for line in table] == [[k, str(p), str(b)] for k, (p, b) in want.items()]


def test_load_from_a_file_and_stdin(fs, tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("# feed of 2026-01-12\n198.51.100.0/24   # a comment\n\n  2001:db8::/32\r\n198.51.100.0/24\n")
    assert fs.block("load", str(f), check=True).stdout == \
        "block: changed (2 prefixes: 2 added, 0 deleted, 0 kept)\n"
    assert fs.block("load", str(f), check=True).stdout == "block: unchanged (2 prefixes)\n"
    res = fs.block("load", "-", input="203.0.113.0/24\n2001:db8::/32\n", check=True)
    assert res.stdout == "block: changed (2 prefixes: 1 added, 1 deleted, 1 kept)\n"
    res = fs.block("load", "--allow", "-", input="192.0.2.1\n", check=True)
    assert res.stdout == "allow: changed (1 prefix: 1 added, 0 deleted, 0 kept)\n"
    assert fs.block("load", "-", input="# nothing\n", check=True).stdout == \
        "block: changed (0 prefixes: 0 added, 2 deleted, 0 kept)\n"
    assert fs.lists() == {"block": [], "allow": [{"prefix": "192.0.2.1/32", "packets": 0, "bytes": 0}]}


def test_a_hundred_thousand_prefixes(fs, tmp_path):
    """Loaded in full and looked up right (the time is for the bench)."""
    r = random.Random(7)
    nets = set()
    while len(nets) < 100_000:
        if r.random() < 0.7:
            nets.add(ipaddress.ip_network((r.getrandbits(32), r.choice((16, 24, 28, 32))), strict=False))
        else:
            nets.add(ipaddress.ip_network((r.getrandbits(128), r.choice((32, 48, 64, 128))), strict=False))
    nets = sorted(nets, key=str)
    f = tmp_path / "big.txt"
    f.write_text("".join(f"{n}\n" for n in nets))
    res = fs.block("load", str(f), check=True)
    assert res.stdout == "block: changed (100000 prefixes: 100000 added, 0 deleted, 0 kept)\n"
    listed = fs.lists()["block"]
    assert {e["prefix"] for e in listed} == {str(n) for n in nets}
    lists = ref.Lists([str(n) for n in nets])
    for net in r.sample(nets, 20):
        addr = str(net.network_address + (net.num_addresses - 1) // 2)
        assert fs.block("check", addr, check=True).stdout.strip() == lists.check(addr)
    assert fs.block("load", str(f), check=True).stdout == "block: unchanged (100000 prefixes)\n"
    # One bad line among them: its number is named, nothing changes.
    lines = f.read_text().splitlines()
    lines[77_776] = "300.1.2.3"
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    before = fs.slot_map_id("ipxdp_block")
    refused(fs, ["load", str(bad)], 2,
            f"{bad}:77777: 300.1.2.3: not an IPv4 address (four numbers 0-255, without leading zeros)"
            " (nothing loaded)")
    assert fs.slot_map_id("ipxdp_block") == before


# --- bad input -----------------------------------------------------------------------

BAD_PREFIXES = [
    ("300.1.2.3", "300.1.2.3: not an IPv4 address (four numbers 0-255, without leading zeros)"),
    ("1.2.3.4/33", "1.2.3.4/33: prefix length 33 is more than 32 (IPv4)"),
    ("2001:db8::/129", "2001:db8::/129: prefix length 129 is more than 128 (IPv6)"),
    ("fe80::1%eth0", "fe80::1%eth0: a zone index (%eth0) has no place here: an address means the "
                     "same on every interface"),
    ("abc", "abc: not an IPv4 or IPv6 address or prefix"),
    ("", "empty argument: expected an IPv4 or IPv6 address or prefix"),
    ("10.0.0.1/8", "10.0.0.1/8: host bits set (did you mean 10.0.0.0/8?)"),
    ("2001:db8::1/32", "2001:db8::1/32: host bits set (did you mean 2001:db8::/32?)"),
    ("192.0.2.1/24", "192.0.2.1/24: host bits set (did you mean 192.0.2.0/24?)"),
    ("010.1.1.1", "010.1.1.1: not an IPv4 address (four numbers 0-255, without leading zeros)"),
    ("1.2.3", "1.2.3: not an IPv4 address (four numbers 0-255, without leading zeros)"),
    ("1.2.3.4/", "1.2.3.4/: not a prefix length: ''"),
    ("1.2.3.4/08", "1.2.3.4/08: not a prefix length: 08"),
    ("1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9: not an IPv6 address"),
    ("1::2::3", "1::2::3: not an IPv6 address"),
    ("12345::", "12345::: not an IPv6 address"),
    ("1.2.3.4::", "1.2.3.4::: not an IPv6 address"),
    ("::ffff:1.2.3.256", "::ffff:1.2.3.256: not an IPv6 address"),
    ("a b", "'a b': not an IPv4 or IPv6 address (it contains blanks or control characters)"),
    ("1.2.3.4\n", "$'1.2.3.4\\n': not an IPv4 or IPv6 address (it contains a newline)"),
]


@pytest.mark.parametrize("arg, message", BAD_PREFIXES, ids=[a or "empty" for a, _ in BAD_PREFIXES])
def test_bad_prefix(shared, arg, message):
    before = state(shared)
    # A good prefix next to the bad one is not added (or deleted) either.
    for args in (["add", "203.0.113.0/24", arg], ["add", "--allow", arg], ["del", "198.51.100.0/24", arg]):
        fails(shared, args, 2, message)
    assert state(shared) == before


def test_bad_prefix_before_any_map_exists(fs):
    refused(fs, ["add", "300.1.2.3"], 2, BAD_PREFIXES[0][1])
    assert not (fs.root / "tc").exists()


@pytest.mark.parametrize("arg, message", [
    ("10.0.0.0/8", "10.0.0.0/8: expected an address, not a prefix"),
    ("2001:db8::/32", "2001:db8::/32: expected an address, not a prefix"),
    ("fe80::1%eth0", BAD_PREFIXES[3][1]),
    ("300.1.2.3", BAD_PREFIXES[0][1]),
    ("", BAD_PREFIXES[5][1]),
])
def test_bad_address_to_check(shared, arg, message):
    refused(shared, ["check", arg], 2, message)


def test_bad_files(shared, tmp_path):
    fs = shared
    refused(fs, ["load", str(tmp_path / "nope.txt")], 2, f"{tmp_path}/nope.txt: no such file")
    refused(fs, ["load", str(tmp_path)], 2, f"{tmp_path}: is a directory, not a file of prefixes")
    f = tmp_path / "list.txt"
    f.write_text("192.0.2.0/24\n\n# x\n10.0.0.1/8\n")
    refused(fs, ["load", str(f)], 2, f"{f}:4: 10.0.0.1/8: host bits set (did you mean 10.0.0.0/8?) (nothing loaded)")
    refused(fs, ["load", "--allow", "-"], 2, "stdin:2: abc: not an IPv4 or IPv6 address or prefix (nothing loaded)",
            input="192.0.2.0/24\nabc\n")


def test_more_prefixes_than_the_list_holds(fs, small):
    obj = ["--object", str(small)]
    nine = "".join(f"192.0.2.{i}\n" for i in range(9))
    refused(fs, [*obj, "load", "-"], 2, "the block list holds at most 8 prefixes: the file has 9 (nothing loaded)",
            input=nine)
    fs.block(*obj, "load", "-", input="".join(f"192.0.2.{i}\n" for i in range(7)), check=True)
    refused(fs, [*obj, "add", "198.51.100.1", "198.51.100.2"], 2,
            "the block list holds at most 8 prefixes: it has 7, and 2 more would make 9")
    assert fs.block(*obj, "add", "198.51.100.1", check=True).returncode == 0


def test_more_range_groups_than_the_ipv4_table_holds(fs, small):
    """small has 16 range groups.  Eight /32s in one /24 make 17 ranges,
    more than one group block holds: the /24 takes all 16 groups.  One
    more address in another /24 needs a 17th: refused, nothing changed."""
    obj = ["--object", str(small)]
    crowded = "".join(f"192.0.2.{2 * i + 1}\n" for i in range(8))
    assert fs.block(*obj, "load", "-", input=crowded, check=True).stdout == \
        "block: changed (8 prefixes: 8 added, 0 deleted, 0 kept)\n"
    message = ("the IPv4 table holds at most 16 groups of ranges (BLOCKLIST_V4_GROUPS), and these lists "
               "need more: they have too many prefixes longer than /24 in distinct /24s")
    refused(fs, [*obj, "add", "--allow", "198.51.100.1"], 2, message + " (nothing added)")
    refused(fs, [*obj, "load", "--allow", "-"], 2, message + " (nothing loaded)", input="198.51.100.1\n")
    # A /24 or shorter needs no group, and IPv6 is not in the table.
    fs.block(*obj, "add", "--allow", "198.51.100.0/24", "2001:db8::1", check=True)
    with fs.load_object(small) as prog:
        for src, want in (("192.0.2.1", "DROP"), ("192.0.2.2", "PASS"), ("192.0.2.15", "DROP"),
                          ("192.0.2.17", "PASS"), ("198.51.100.1", "PASS")):
            assert bpf.verdict_name(prog.run(udp4(src))[0]) == want, src


def test_prefixes_beyond_the_counter_slots(fs, small):
    """They block like the others, and are counted in the totals only."""
    obj = ["--object", str(small)]
    fs.block(*obj, "load", "-", input="".join(f"192.0.2.{i}\n" for i in range(6)), check=True)
    with fs.load_object(small) as prog:
        for i in range(6):
            v, _ = prog.run(udp4(f"192.0.2.{i}"), repeat=i + 1)
            assert v == 1  # XDP_DROP
    # Ids go in file order, lowest first: the first four have the slots.
    entries = {e["prefix"]: e["packets"] for e in json.loads(
        fs.block(*obj, "list", "--json", check=True).stdout)["block"]}
    assert entries == {f"192.0.2.{i}/32": (i + 1 if i < 4 else None) for i in range(6)}
    stats = json.loads(fs.block(*obj, "stats", "--json", check=True).stdout)
    assert stats["blocked"]["packets"] == 21
    assert stats["uncounted"]["packets"] == 5 + 6
    text = fs.block(*obj, "list", check=True).stdout
    assert sum(1 for line in text.splitlines() if line.split()[-2:] == ["-", "-"]) == 2


@pytest.mark.parametrize("args, message", [
    ([], "missing command: add, del, list, load, check, flush, stats or migrate (see xdp-block --help)"),
    (["frob"], "unknown command frob: use add, del, list, load, check, flush, stats or migrate "
               "(see xdp-block --help)"),
    (["list", "--frob"], "unknown option --frob (see xdp-block --help)"),
    (["add"], "missing argument: add needs at least one PREFIX (see xdp-block --help)"),
    (["load"], "missing argument: load needs a FILE (- for stdin) (see xdp-block --help)"),
    (["load", "a", "b"], "too many arguments: load takes one FILE (see xdp-block --help)"),
    (["check"], "missing argument: check needs an ADDR (see xdp-block --help)"),
    (["check", "1.2.3.4", "5.6.7.8"], "too many arguments: check takes one ADDR (see xdp-block --help)"),
    (["list", "x"], "too many arguments: list takes none (see xdp-block --help)"),
    (["add", "--json", "1.2.3.4"], "--json is for list, check and stats (see xdp-block --help)"),
    (["check", "--allow", "1.2.3.4"], "--allow is for add, del, list, load and flush (check covers both "
                                      "lists) (see xdp-block --help)"),
    (["--object"], "--object needs a value (see xdp-block --help)"),
    (["list", "--object=/x.o", "--allow", "--json", "--", "x"],
     "too many arguments: list takes none (see xdp-block --help)"),
    (["stats", "-a"], "--allow is for add, del, list, load and flush (stats covers both lists) "
                      "(see xdp-block --help)"),
])
def test_usage_errors(shared, args, message):
    refused(shared, args, 1, message)


def test_not_a_blocklist_object(shared):
    refused(shared, ["--object", "drop-tcp", "list"], 2,
            "drop-tcp: not a blocklist object (no map ipxdp_block of LPM tries with 24-byte keys)")
    refused(shared, ["--object", "/nonexistent.o", "list"], 2, "/nonexistent.o: no such file")


def test_not_root(fs, tmp_path):
    world = pathlib.Path(tempfile.mkdtemp(prefix="ipxdp-block-", dir="/tmp"))
    try:
        world.chmod(0o755)
        for f in SCRIPTS.iterdir():
            shutil.copy(f, world / f.name)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        res = subprocess.run([*nobody, str(world / "xdp-block"), "list"], capture_output=True, text=True,
                             env=fs.env)
        assert (res.returncode, res.stdout, res.stderr) == (6, "", f"xdp-block: {NEEDS_ROOT}\n")
        res = subprocess.run([*nobody, str(world / "xdp-block"), "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and res.stdout.startswith("Usage: xdp-block ")
    finally:
        shutil.rmtree(world)


# --- bpffs ------------------------------------------------------------------------------

def in_private_mounts(script, env):
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                          capture_output=True, text=True, env=env, timeout=120)


def test_mounts_bpffs_where_tc_bpf_mnt_points(tmp_path):
    plain = tmp_path / "bpf"
    plain.mkdir()
    script = f'''set -e
        x={SCRIPTS}/xdp-block
        $x add 192.0.2.0/24
        stat -f -c %T "$TC_BPF_MNT"
        $x list --json
        ls "$TC_BPF_MNT/tc/globals"
        readlink "$TC_BPF_MNT/xdp"'''
    res = in_private_mounts(script, dict(os.environ, TC_BPF_MNT=str(plain)))
    assert res.returncode == 0, res.stderr
    assert res.stderr == f"xdp-block: mounted bpffs on {plain}\n"
    assert res.stdout.splitlines() == [
        "block: 192.0.2.0/24 added", "bpf_fs",
        '{"block": [{"prefix": "192.0.2.0/24", "packets": 0, "bytes": 0}], "allow": []}',
        "ipxdp_allow", "ipxdp_block", "ipxdp_counters", "ipxdp_totals", "ipxdp_v4", f"{plain}/tc/"]
    assert list(plain.iterdir()) == []  # that mount is gone with its namespace


def test_mounts_bpffs_on_sys_fs_bpf_if_none(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TC_BPF_MNT"}
    # No bpffs at all (ip would take any one it finds in /proc/mounts).
    script = f'''set -e
        awk '$3 == "bpf" {{ print $2 }}' /proc/mounts | xargs -r -n 1 umount -l
        ! mountpoint -q /sys/fs/bpf
        {SCRIPTS}/xdp-block add 192.0.2.0/24
        mountpoint -q /sys/fs/bpf
        ls /sys/fs/bpf/tc/globals'''
    res = in_private_mounts(script, env)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "xdp-block: mounted bpffs on /sys/fs/bpf\n"
    assert res.stdout.splitlines() == ["block: 192.0.2.0/24 added", "ipxdp_allow", "ipxdp_block",
                                       "ipxdp_counters", "ipxdp_totals", "ipxdp_v4"]


# --- pinned maps of another definition -------------------------------------------------

def test_maps_of_another_build_are_refused_then_migrated(fs, small):
    fs.block("--object", str(small), "add", "198.51.100.0/24", "2001:db8::/32", check=True)
    fs.block("--object", str(small), "add", "--allow", "198.51.100.7", check=True)
    config = project.blocklist_config()
    refused(fs, ["list"], 4,
            "the list in pinned map ipxdp_block (map id %d: lpm_trie, key 24, value 4, 8 entries, flags 1) "
            "is not what blocklist defines (lpm_trie, key 24, value 4, %d entries, flags 1): it holds 8 "
            "prefixes, the object's %d: another build of blocklist made it; xdp-block migrate moves the lists "
            "into maps like the object's"
            % (fs.slot_map_id("ipxdp_block"), config["BLOCKLIST_MAX"], config["BLOCKLIST_MAX"]))
    res = fs.block("add", "192.0.2.0/24")
    assert res.returncode == 4 and "xdp-block migrate" in res.stderr
    res = fs.block("migrate", check=True)
    assert res.stdout == (
        "ipxdp_counters: replaced (percpu_array, key 4, value 16, %d entries, flags 0; its counts start at "
        "zero)\n"
        "block: migrated (2 prefixes into a list of lpm_trie, key 24, value 4, %d entries, flags 1)\n"
        "allow: migrated (1 prefix into a list of lpm_trie, key 24, value 4, %d entries, flags 1)\n"
        "ipv4 table: rebuilt from the lists (2 IPv4 prefixes)\n"
        % (config["BLOCKLIST_COUNTERS"], config["BLOCKLIST_MAX"], config["BLOCKLIST_MAX"]))
    assert fs.lists() == {"block": [{"prefix": p, "packets": 0, "bytes": 0}
                                    for p in ("198.51.100.0/24", "2001:db8::/32")],
                          "allow": [{"prefix": "198.51.100.7/32", "packets": 0, "bytes": 0}]}
    assert fs.block("migrate", check=True).stdout == "unchanged: the pinned maps are what blocklist defines\n"
    # The object of this build reuses them, and blocks with them.
    with fs.load_object() as prog:
        assert prog.run(udp4("198.51.100.1"))[0] == 1
        assert prog.run(udp4("198.51.100.7"))[0] == 2


def test_pins_without_an_ipv4_table_get_one_built_from_the_lists(fs):
    """Lists pinned by a version without the IPv4 table: `ip` would add an
    empty one and pass every IPv4 source.  migrate builds it from the lists,
    and so does any command that changes them."""
    fs.block("add", "198.51.100.0/24", "2001:db8::/32", check=True)
    fs.block("add", "--allow", "198.51.100.7", check=True)
    for fix in (["migrate"], ["add", "203.0.113.9"]):
        os.unlink(fs.globals / "ipxdp_v4")
        res = fs.block(*fix, check=True)
        if fix == ["migrate"]:
            assert res.stdout == "ipv4 table: rebuilt from the lists (2 IPv4 prefixes)\n"
        assert "ipxdp_v4" in fs.pins()
        with fs.load_object() as prog:
            assert bpf.verdict_name(prog.run(udp4("198.51.100.1"))[0]) == "DROP"
            assert bpf.verdict_name(prog.run(udp4("198.51.100.7"))[0]) == "PASS"
            assert bpf.verdict_name(prog.run(udp4("203.0.113.9"))[0]) == ("DROP" if fix[0] == "add" else "PASS")


def test_a_list_of_the_wrong_value_size_is_refused(fs):
    """libbpf reuses a pinned outer map without looking at its lists: a
    list of another layout would be attached and block nothing."""
    fs.block("flush", check=True)  # the other maps, as they should be
    g = fs.globals
    os.unlink(g / "ipxdp_block")
    for cmd in (["map", "create", g / "wrong", "type", "lpm_trie", "key", "24", "value", "8",
                 "entries", "16", "name", "wrong", "flags", "1"],
                ["map", "create", g / "ipxdp_block", "type", "array_of_maps", "key", "4", "value", "4",
                 "entries", "1", "name", "ipxdp_block", "inner_map", "pinned", g / "wrong"],
                ["map", "update", "pinned", g / "ipxdp_block", "key", "0", "0", "0", "0", "value", "pinned",
                 g / "wrong"]):
        subprocess.run(["bpftool", *map(str, cmd)], check=True, capture_output=True)
    os.unlink(g / "wrong")
    wrong = fs.slot_map_id("ipxdp_block")
    message = (f"the list in pinned map ipxdp_block (map id {wrong}: lpm_trie, key 24, value 8, 16 entries, "
               f"flags 1) is not what blocklist defines (lpm_trie, key 24, value 4, "
               f"{project.blocklist_config()['BLOCKLIST_MAX']} entries, flags 1): blocklist would find nothing in it and "
               f"block nothing; xdp-block migrate rebuilds the lists")
    for args in (["list"], ["add", "192.0.2.1"], ["load", "-"], ["stats"], ["check", "192.0.2.1"]):
        refused(fs, args, 4, message, input="192.0.2.1\n")
    res = fs.block("migrate")
    assert res.returncode == 4
    assert res.stderr.startswith("xdp-block: cannot migrate the block list: it is a lpm_trie, key 24, value 8")


# --- one at a time -------------------------------------------------------------------------

def test_a_second_xdp_block_waits_for_the_first(fs):
    fs.block("flush", check=True)
    fd = os.open(fs.globals, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    release = threading.Timer(1.5, lambda: fcntl.flock(fd, fcntl.LOCK_UN))
    release.start()
    try:
        start = time.monotonic()
        res = fs.block("add", "192.0.2.0/24", check=True)
        waited = time.monotonic() - start
    finally:
        release.join()
        os.close(fd)
    assert res.stdout == "block: 192.0.2.0/24 added\n"
    assert waited >= 1.4
