# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""scripts/: what xdp-attach, xdp-detach, xdp-status and xdp-stats do on
good input, on a veth pair in throwaway namespaces (no traffic needed).

The bad inputs are in test_scripts_bad_input.py, real traffic in
test_e2e_traffic.py.
"""

import fcntl
import json
import os
import shutil
import pathlib
import re
import subprocess
import time

import pytest

from ipxdp import paths, project
from ipxdp.netns import VethPair, wait_for

SCRIPTS = paths.scripts_dir()  # the scripts under test
OBJDIR = paths.scripts_objdir()  # where they find an object given by name
TAGS = {}  # object name -> tag, filled by the first attach


def run(ns, name, *args, env=None, timeout=60):
    return ns.run([str(SCRIPTS / name), *args], env=env, timeout=timeout)


def ok(res):
    assert res.returncode == 0, f"rc {res.returncode}: {res.stderr}"
    return res.stdout


def attach_line(dev, section, mode, already=False):
    word = "already attached" if already else "attached"
    return re.compile(rf"{re.escape(dev)}: {re.escape(section)} {word} \({mode}, prog id (\d+)\)\n")


@pytest.fixture(scope="module")
def pair():
    with VethPair("ipxdp-scripts") as net:
        yield net


@pytest.fixture
def net(pair):
    """The module's pair, with no XDP program anywhere when a test starts
    and ends (removed with ip itself, not with the scripts under test)."""
    def clear():
        for ns in pair.sides:
            for link in json.loads(ns.ip("-j", "link", "show")):
                for kw in ("xdpgeneric", "xdpdrv"):
                    ns.run(["ip", "link", "set", "dev", link["ifname"], kw, "off"])
    clear()
    yield pair
    clear()


# --- xdp-attach -------------------------------------------------------------------

def test_attach_twice_is_idempotent(net):
    s, dev = net.server, net.server.dev
    first = attach_line(dev, "drop-tcp", "native").fullmatch(ok(run(s, "xdp-attach", "--mode", "native", dev, "drop-tcp")))
    assert first
    prog_id = int(first.group(1))
    again = run(s, "xdp-attach", "--mode", "native", dev, "drop-tcp")
    assert again.stdout == f"{dev}: drop-tcp already attached (native, prog id {prog_id})\n"
    assert again.returncode == 0 and again.stderr == ""
    assert [(m, i) for m, i, _, _ in s.attached(dev)] == [("native", prog_id)]


def test_same_program_from_another_path_is_the_same(net):
    """"The same program" is the same tag, wherever the object lies."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, "drop-tcp"))
    res = run(s, "xdp-attach", dev, str(OBJDIR / "drop-tcp.o"), "drop-tcp")
    assert attach_line(dev, "drop-tcp", "native", already=True).fullmatch(res.stdout)


def test_auto_is_native_on_veth(net):
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", dev, "count")
    assert attach_line(dev, "count", "native").fullmatch(res.stdout)
    assert res.stderr == ""
    assert [m for m, *_ in s.attached(dev)] == ["native"]


@pytest.mark.parametrize("kind", ["loopback", "bridge"])
def test_auto_falls_back_to_generic_without_native_xdp(net, kind):
    s = net.server
    dev = "lo" if kind == "loopback" else "ipxdpbr0"
    if kind == "bridge":
        s.ip("link", "add", dev, "type", "bridge")
    try:
        res = run(s, "xdp-attach", dev, "drop-tcp")
        assert attach_line(dev, "drop-tcp", "generic").fullmatch(res.stdout)
        assert res.stderr == f"xdp-attach: {dev}: the {kind} driver has no native XDP: using generic mode\n"
        assert [m for m, *_ in s.attached(dev)] == ["generic"]
        # auto again: the kernel's choice for this driver is generic, so
        # this is the same program in the mode auto picks
        again = run(s, "xdp-attach", dev, "drop-tcp")
        assert attach_line(dev, "drop-tcp", "generic", already=True).fullmatch(again.stdout)
        assert again.returncode == 0
        # a different program in that mode needs --force
        other = run(s, "xdp-attach", dev, "count")
        assert other.returncode == 4
        assert "use --force to replace it atomically" in other.stderr
    finally:
        s.run(["ip", "link", "set", "dev", dev, "xdpgeneric", "off"])
        if kind == "bridge":
            s.ip("link", "del", dev)


def test_auto_with_generic_on_a_native_driver_is_another_mode(net):
    """auto picks native on veth, so a generic program there is in another
    mode: refused, and left alone."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", "generic", dev, "drop-tcp"))
    before = s.attached(dev)
    res = run(s, "xdp-attach", dev, "drop-tcp")
    assert res.returncode == 4
    assert res.stderr == (f"xdp-attach: {dev}: xdp_drop_tcp (prog id {before[0][1]}) is attached "
                          f"in generic mode, and the kernel cannot switch modes atomically: "
                          f"detach it first (xdp-detach {dev})\n")
    assert s.attached(dev) == before


def test_different_program_same_mode_needs_force(net):
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", "generic", dev, "drop-tcp"))
    before = s.attached(dev)
    res = run(s, "xdp-attach", "--mode", "generic", dev, "count")
    assert res.returncode == 4
    _, old_id, _, old_tag = before[0]
    assert res.stderr == (f"xdp-attach: {dev}: another program, xdp_drop_tcp (prog id {old_id}, "
                          f"tag {old_tag}), is attached in generic mode: use --force to replace "
                          f"it atomically\n")
    assert s.attached(dev) == before


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_force_replaces_with_one_ip_force(net, tmp_path, mode):
    """--force is one `ip -force ...`: never detach, then attach."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", mode, dev, "drop-tcp"))
    old_id = s.attached(dev)[0][1]
    log = tmp_path / "ip.log"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "ip").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec /usr/sbin/ip "$@"\n')
    (shim / "ip").chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}")

    res = run(s, "xdp-attach", "--mode", mode, "--force", dev, "count", env=env)
    new = attach_line(dev, "count", mode).fullmatch(res.stdout)
    assert new and int(new.group(1)) != old_id
    changes = [line for line in log.read_text().splitlines() if " set " in f" {line} "]
    keyword = project.MODE_KEYWORDS[mode]
    # The scripts hand ip the object's real path (realpath).
    assert changes == [f"-force link set dev {dev} {keyword} obj {(OBJDIR / 'count.o').resolve()} sec count"]
    assert [(m, n) for m, _, n, _ in s.attached(dev)] == [(mode, "xdp_count_proto")]


def test_force_never_crosses_modes(net):
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", "generic", dev, "drop-tcp"))
    before = s.attached(dev)
    res = run(s, "xdp-attach", "--mode", "native", "--force", dev, "count")
    assert res.returncode == 4
    assert "detach it first" in res.stderr
    assert s.attached(dev) == before


def test_offload_and_native_keywords(net):
    """Mode names map to ip's keywords, checked in the kernel's answer."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode=generic", dev, "port-9090"))
    assert [m for m, *_ in s.attached(dev)] == ["generic"]
    ok(run(s, "xdp-detach", dev))
    ok(run(s, "xdp-attach", "-m", "native", dev, "port-9090"))
    assert [m for m, *_ in s.attached(dev)] == ["native"]


def test_section_defaults_to_the_only_one_and_can_be_named(net):
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, str(OBJDIR / "count.o"), "count"))
    assert [n for _, _, n, _ in s.attached(dev)] == ["xdp_count_proto"]


def test_names_are_data(net):
    """Interface names the kernel accepts, however odd, are never evaluated."""
    s = net.server
    odd = ["-v1", "v$(id)", "v;x>y"]
    s.ip("link", "add", "name", odd[0], "type", "veth", "peer", "name", odd[1])
    s.ip("link", "add", "name", odd[2], "type", "veth", "peer", "name", "ipxdp-peer")
    try:
        for dev in odd:
            res = run(s, "xdp-attach", "--", dev, "drop-tcp")
            assert attach_line(dev, "drop-tcp", "native").fullmatch(res.stdout), res.stderr
            assert [n for _, _, n, _ in s.attached(dev)] == ["xdp_drop_tcp"]
        status = json.loads(ok(run(s, "xdp-status", "--json")))
        assert sorted(p["interface"] for p in status) == sorted(odd)
        for dev in odd:
            assert ok(run(s, "xdp-detach", "--", dev)).startswith(f"{dev}: xdp_drop_tcp detached")
        assert not (paths.ROOT / "y").exists() and not pathlib.Path("y").exists()
    finally:
        s.run(["ip", "link", "del", "name", odd[0]])
        s.run(["ip", "link", "del", "name", odd[2]])


# --- the lock -----------------------------------------------------------------

def lock_path(ns):
    return pathlib.Path(f"/run/ipxdp/{os.stat(ns.path).st_ino}.{ns.link()['ifindex']}.lock")


def hold_lock(path):
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_second_caller_waits_for_the_lock(net):
    s, dev = net.server, net.server.dev
    path = lock_path(s)
    fd = hold_lock(path)
    try:
        proc = subprocess.Popen(s.command([str(SCRIPTS / "xdp-attach"), dev, "drop-tcp"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None, "xdp-attach did not wait for the lock"
        assert s.attached(dev) == []
        # Release the way the scripts do: delete, then unlock.  The waiter
        # must notice that it locked a deleted file and lock the new one.
        path.unlink()
    finally:
        os.close(fd)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert attach_line(dev, "drop-tcp", "native").fullmatch(out)
    assert not path.exists(), "the lock file was left behind"


def test_busy_after_five_seconds(net):
    s, dev = net.server, net.server.dev
    path = lock_path(s)
    fd = hold_lock(path)
    try:
        start = time.monotonic()
        res = run(s, "xdp-detach", dev)
        elapsed = time.monotonic() - start
    finally:
        path.unlink()
        os.close(fd)
    assert res.returncode == 5
    assert res.stderr == (f"xdp-detach: {dev}: busy: another xdp-attach or xdp-detach "
                          f"has held it for 5 s\n")
    assert 4.5 < elapsed < 8


def test_concurrent_attaches_serialise(net):
    s, dev = net.server, net.server.dev
    procs = [subprocess.Popen(s.command([str(SCRIPTS / "xdp-attach"), dev, "count"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    words = sorted("already" if "already" in out else "attached" for out, _ in outs)
    assert words == ["already", "already", "attached"]
    assert len(s.attached(dev)) == 1
    assert not lock_path(s).exists()


# --- xdp-detach -------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["native", "generic"])
def test_detach_whatever_mode(net, mode):
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", mode, dev, "drop-tcp"))
    prog_id = s.attached(dev)[0][1]
    assert ok(run(s, "xdp-detach", dev)) == f"{dev}: xdp_drop_tcp detached ({mode}, prog id {prog_id})\n"
    assert s.attached(dev) == []
    assert ok(run(s, "xdp-detach", dev)) == f"{dev}: nothing attached\n"


def test_detach_only_the_given_mode(net):
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", "generic", dev, "drop-tcp"))
    before = s.attached(dev)
    res = run(s, "xdp-detach", "--mode", "native", dev)
    assert (res.returncode, res.stdout) == (0, f"{dev}: nothing attached in native mode\n")
    assert s.attached(dev) == before
    res = run(s, "xdp-detach", "--mode", "generic", dev)
    assert res.stdout == f"{dev}: xdp_drop_tcp detached (generic, prog id {before[0][1]})\n"
    assert s.attached(dev) == []


def test_detach_removes_what_ip_xdp_off_leaves(net):
    """`ip link set dev X xdp off` misses a generic program on veth."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", "--mode", "generic", dev, "drop-tcp"))
    s.ip("link", "set", "dev", dev, "xdp", "off")
    assert [m for m, *_ in s.attached(dev)] == ["generic"]
    ok(run(s, "xdp-detach", dev))
    assert s.attached(dev) == []


# --- xdp-status -------------------------------------------------------------------

def test_status_nothing(net):
    assert ok(run(net.server, "xdp-status")) == "no XDP programs\n"
    assert json.loads(ok(run(net.server, "xdp-status", "--json"))) == []
    assert ok(run(net.server, "xdp-status", net.server.dev)) == f"{net.server.dev}: no XDP program\n"
    assert json.loads(ok(run(net.server, "xdp-status", net.server.dev, "--json"))) == []


def test_status_names_ours_and_shows_others(net):
    """Programs attached by xdp-attach, ip, xdp-loader and bpftool all show;
    ours are named by object and section, the others get null/-."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, "count"))                     # native
    s.ip("link", "set", "dev", "lo", "xdpgeneric", "obj", str(OBJDIR / "drop-tcp.o"),
         "sec", "drop-tcp")                                       # plain ip
    c = net.client
    res = c.run(["xdp-loader", "load", "-m", "skb", "-s", "port-9090", c.dev,
                 str(OBJDIR / "port-9090.o")])                    # xdp-loader
    assert res.returncode == 0, res.stderr
    # bpftool, with a pin in a private bpffs that vanishes afterwards
    fixture = paths.fixture("xdp-pass")
    res = c.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount -t bpf bpf /sys/fs/bpf && bpftool prog load "$1" /sys/fs/bpf/p type xdp'
                 ' && bpftool net attach xdpgeneric pinned /sys/fs/bpf/p dev lo', "-", str(fixture)])
    assert res.returncode == 0, res.stderr
    try:
        server = json.loads(ok(run(s, "xdp-status", "--json")))
        by_if = {p["interface"]: p for p in server}
        assert set(by_if) == {dev, "lo"}
        count = s.attached(dev)[0]
        assert by_if[dev] == {"interface": dev, "ifindex": s.link()["ifindex"], "mode": "native",
                              "id": count[1], "name": "xdp_count_proto", "tag": count[3],
                              "object": "count.o", "section": "count"}
        assert (by_if["lo"]["mode"], by_if["lo"]["object"], by_if["lo"]["section"]) == \
            ("generic", "drop-tcp.o", "drop-tcp")

        client = {p["interface"]: p for p in json.loads(ok(run(c, "xdp-status", "--json")))}
        assert (client[c.dev]["object"], client[c.dev]["section"]) == ("port-9090.o", "port-9090")
        assert client["lo"]["name"] == "xdp_pass_all"
        assert (client["lo"]["object"], client["lo"]["section"]) == (None, None)

        text = ok(run(c, "xdp-status")).splitlines()
        assert text[0].split() == ["INTERFACE", "MODE", "ID", "NAME", "TAG", "OBJECT", "SECTION"]
        rows = {line.split()[0]: line.split() for line in text[1:]}
        assert rows["lo"][1:] == ["generic", str(client["lo"]["id"]), "xdp_pass_all",
                                  client["lo"]["tag"], "-", "-"]
        assert rows[c.dev][5:] == ["port-9090.o", "port-9090"]
        assert ok(run(c, "xdp-status", "lo")).splitlines()[1].split()[0] == "lo"
    finally:
        c.run(["ip", "link", "set", "dev", "lo", "xdpgeneric", "off"])
        s.run(["ip", "link", "set", "dev", "lo", "xdpgeneric", "off"])
    # what xdp-loader attached, xdp-detach removes
    assert ok(run(c, "xdp-detach", c.dev)).startswith(f"{c.dev}: xdp_bounce_port detached (generic")


def test_status_leaves_nothing_loaded(net, tmp_path):
    """To recognise a program, xdp-status loads each object in its objects
    directory (a private bpffs, no pins): afterwards none of those loads
    remains, and no temporary file.  A copy of scripts/ with its own
    build/ holds an object whose function name nothing else uses."""
    s = net.server
    tree = tmp_path / "tree"
    (tree / "build").mkdir(parents=True)
    (tree / "scripts").mkdir()
    for f in SCRIPTS.iterdir():
        (tree / "scripts" / f.name).write_bytes(f.read_bytes())
        (tree / "scripts" / f.name).chmod(0o755)
    func = "ipxdp_uniq_probe"  # tests/fixtures/uniq.c
    shutil.copy(paths.fixture("uniq"), tree / "build" / "uniq.o")
    s.ip("link", "set", "dev", s.dev, "xdpgeneric", "obj", str(tree / "build" / "uniq.o"), "sec", "uniq")

    def loaded():
        progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                                          text=True, check=True).stdout)
        return sorted(p["id"] for p in progs if p.get("name") == func)
    attached_id = s.attached(s.dev)[0][1]
    assert loaded() == [attached_id]

    temp = tmp_path / "tmp"
    temp.mkdir()
    res = s.run([str(tree / "scripts" / "xdp-status"), "--json", s.dev],
                env=dict(os.environ, TMPDIR=str(temp)))
    status = json.loads(ok(res))
    assert [(p["id"], p["object"], p["section"]) for p in status] == [(attached_id, "uniq.o", "uniq")]
    # freeing a program is deferred a little (RCU)
    assert wait_for(lambda: loaded() == [attached_id], timeout=5), loaded()
    assert list(temp.iterdir()) == []


# --- xdp-stats (good input; traffic numbers are in the e2e tests) -----------------

def test_stats_once_text_and_json(net):
    s, c = net.server, net.client
    ok(run(s, "xdp-attach", s.dev, "count"))
    assert c.run(["ping", "-c", "2", "-i", "0.1", s.ip4]).returncode == 0
    prog_id = s.attached(s.dev)[0][1]
    totals = json.loads(ok(run(s, "xdp-stats", "--once", "--json", s.dev)))
    assert totals["protocols"]["icmp"] == {"packets": 2, "bytes": 196}
    text = ok(run(s, "xdp-stats", "--once", s.dev)).splitlines()
    assert text[0] == f"{s.dev}: totals since count was attached (prog id {prog_id})"
    assert text[1].split() == ["PROTOCOL", "PACKETS", "BYTES"]
    # one row per protocol with packets, in protocol-number order (the
    # kernel's own MLD reports and ARP may add ipv6-icmp and non-ip rows
    # between the two reads: leave them out of the comparison)
    noise = {"ipv6-icmp", "non-ip"}
    rows = [line.split() for line in text[2:]]
    assert all(len(r) == 3 and r[1].isdigit() and r[2].isdigit() for r in rows)
    assert [r for r in rows if r[0] not in noise] == \
        [[name, str(v["packets"]), str(v["bytes"])]
         for name, v in totals["protocols"].items() if name not in noise]
    assert rows[0] == ["icmp", "2", "196"]


def test_stats_stream_text(net):
    s = net.server
    ok(run(s, "xdp-attach", s.dev, "count"))
    prog_id = s.attached(s.dev)[0][1]
    out = ok(run(s, "xdp-stats", "-i", "0.2", "-c", "2", s.dev)).splitlines()
    assert out[0] == f"{s.dev}: packets/s and bytes/s per protocol every 0.2 s (count prog id {prog_id})"
    assert len([line for line in out if re.fullmatch(rf"\d\d:\d\d:\d\d {s.dev}", line)]) == 2


def test_stats_stops_when_count_goes_away(net):
    s = net.server
    ok(run(s, "xdp-attach", s.dev, "count"))
    prog_id = s.attached(s.dev)[0][1]
    proc = subprocess.Popen(s.command([str(SCRIPTS / "xdp-stats"), "--json", "-i", "0.2", s.dev]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        ok(run(s, "xdp-detach", s.dev))
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert err == f"xdp-stats: {s.dev}: the count program (prog id {prog_id}) is no longer attached\n"


def test_stats_sigterm_is_a_clean_stop(net):
    s = net.server
    ok(run(s, "xdp-attach", s.dev, "count"))
    proc = subprocess.Popen(s.command([str(SCRIPTS / "xdp-stats"), s.dev]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.startswith(f"{s.dev}: packets/s and bytes/s per protocol every 1 s")


def test_stats_reads_maps_without_btf(net, tmp_path):
    """Without BTF, bpftool dumps only the raw bytes, no "formatted" values
    (here also pretty-printed, as jq writes it): xdp-stats reads the raw
    bytes in either case, to the same numbers."""
    s, c = net.server, net.client
    ok(run(s, "xdp-attach", s.dev, "count"))
    assert c.run(["ping", "-c", "3", "-i", "0.1", s.ip4]).returncode == 0
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "bpftool").write_text(
        '#!/bin/sh\n'
        'if [ "$2" = map ] && [ "$3" = dump ]; then\n'
        '  /usr/sbin/bpftool "$@" | jq "map(del(.formatted))"\n'
        'else\n'
        '  exec /usr/sbin/bpftool "$@"\n'
        'fi\n')
    (shim / "bpftool").chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}")
    raw = json.loads(ok(run(s, "xdp-stats", "--once", "--json", s.dev, env=env)))
    formatted = json.loads(ok(run(s, "xdp-stats", "--once", "--json", s.dev)))
    assert raw["protocols"]["icmp"] == formatted["protocols"]["icmp"] == {"packets": 3, "bytes": 294}
