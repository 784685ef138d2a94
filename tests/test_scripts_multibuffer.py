# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The scripts and the two sections of an object (plain and xdp.frags).

xdp-attach without a SECTION attaches an object's xdp.frags section when
the kernel loads multi-buffer programs (it loads probe/xdp-frags-probe.c to
find out), the plain one with a note when it refuses them; the outcome line
says "multi-buffer".  The two sections are one program family: with no
SECTION, either counts as already attached; --force switches between them;
xdp-status and xdp-stats --prometheus name the section, xdp-stats finds
count in either.  A kernel
without multi-buffer XDP is played by a copy of the scripts next to a
build/ of its own whose probe the kernel refuses with EINVAL
(tests/fixtures/frags-refused.c), as such a kernel refuses every xdp.frags
program.
"""

import json
import os
import pathlib
import re
import shutil

import pytest

from ipxdp import paths, project
from ipxdp.netns import VethPair

SCRIPTS = paths.scripts_dir()  # the scripts under test
OBJDIR = paths.scripts_objdir()
FRAGS = project.MULTIBUFFER_SECTION
pytestmark = pytest.mark.usefixtures("private_tc_bpf_mnt")
OBJECTS = list(project.PROGRAMS)
NOTE = ("xdp-attach: this kernel has no multi-buffer XDP (Linux 5.18 or later has): "
        "attaching section {}, which does not take jumbo frames\n")
PING_SIZE, PING_FRAME = 8000, 14 + 20 + 8 + 8000


def run(ns, name, *args, scripts=SCRIPTS):
    return ns.run([str(pathlib.Path(scripts) / name), *map(str, args)])


def ok(res):
    assert res.returncode == 0, f"rc {res.returncode}: {res.stderr}"
    return res.stdout


def line(dev, name, mode, prog_id, already=False, multibuffer=False):
    return (f"{dev}: {name} {'already attached' if already else 'attached'} "
            f"({mode}{', multi-buffer' if multibuffer else ''}, prog id {prog_id})\n")


def state(ns, dev=None):
    """[(mode, prog id, name)] on DEV."""
    return [a[:3] for a in ns.attached(dev)]


def lock_files(ns):
    prefix = f"{os.stat(ns.path).st_ino}."
    d = pathlib.Path("/run/ipxdp")
    return sorted(p.name for p in d.iterdir() if p.name.startswith(prefix)) if d.exists() else []


@pytest.fixture(scope="module")
def pair():
    with VethPair("ipxdp-smb") as net:
        yield net


@pytest.fixture
def net(pair):
    """The module's pair (MTU 1500), with no XDP program anywhere when a
    test starts and ends (removed with ip itself)."""
    def clear():
        for ns in pair.sides:
            for dev in (ns.dev, "lo"):
                for kw in ("xdpgeneric", "xdpdrv"):
                    ns.run(["ip", "link", "set", "dev", dev, kw, "off"])
            ns.run(["ip", "link", "set", "dev", ns.dev, "mtu", "1500"])
    clear()
    yield pair
    clear()


@pytest.fixture
def net9000():
    with VethPair("ipxdp-smb9k", mtu=9000) as net:
        yield net


def private_tree(tmp_path, probe):
    """A copy of scripts/ next to a build/ of its own: the objects under
    test (links) and @probe (a path) as the multi-buffer probe."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    for f in SCRIPTS.iterdir():
        shutil.copy(f, tree / "scripts" / f.name)
    (tree / "build" / "probe").mkdir(parents=True)
    for name in OBJECTS:
        (tree / "build" / f"{name}.o").symlink_to(paths.obj(name))
    shutil.copy(probe, tree / "build" / "probe" / "xdp-frags-probe.o")
    return tree / "scripts"


@pytest.fixture
def old_kernel(tmp_path):
    """Scripts whose probe the kernel refuses with EINVAL."""
    return private_tree(tmp_path, paths.fixture("frags-refused"))


# --- the section xdp-attach picks, and the outcome line ---------------------------

@pytest.mark.parametrize("name", OBJECTS)
@pytest.mark.parametrize("mode", ["native", "generic"])
def test_default_is_xdp_frags(net, name, mode):
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", "--mode", mode, dev, name)
    ((m, prog_id, prog),) = state(s)
    assert (m, prog) == (mode, project.MULTIBUFFER[name])
    assert (res.returncode, res.stdout, res.stderr) == \
        (0, line(dev, name, mode, prog_id, multibuffer=True), "")


def test_named_sections_and_their_lines(net):
    """A SECTION given wins; the line names the family (the plain section)
    for either section of an object, and says multi-buffer for xdp.frags,
    also for an object whose only section it is."""
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", dev, "drop-tcp", "drop-tcp")
    ((_, prog_id, prog),) = state(s)
    assert (prog, res.stdout) == ("xdp_drop_tcp", line(dev, "drop-tcp", "native", prog_id))
    res = run(s, "xdp-attach", "--force", dev, "drop-tcp", FRAGS)
    ((_, prog_id, prog),) = state(s)
    assert (prog, res.stdout) == \
        ("xdp_drop_tcp_mb", line(dev, "drop-tcp", "native", prog_id, multibuffer=True))
    res = run(s, "xdp-attach", "--force", dev, paths.PROBE)
    ((_, prog_id, prog),) = state(s)
    assert (prog, res.stdout) == \
        ("xdp_frags_probe", line(dev, FRAGS, "native", prog_id, multibuffer=True))


def test_at_mtu_9000_auto_attaches_natively(net9000):
    """Where veth refuses a plain section (test_scripts_bad_input.py), the
    default is accepted natively, and traffic of that size passes."""
    s, dev = net9000.server, net9000.server.dev
    res = run(s, "xdp-attach", dev, "drop-tcp")
    ((_, prog_id, _),) = state(s)
    assert (res.stdout, res.stderr) == (line(dev, "drop-tcp", "native", prog_id, multibuffer=True), "")
    ping = net9000.client.run(["ping", "-q", "-M", "do", "-c", "2", "-i", "0.1", "-W", "2",
                               "-s", str(PING_SIZE), s.ip4])
    assert ping.returncode == 0, ping.stdout + ping.stderr


# --- one program family: idempotence and --force -----------------------------------

@pytest.mark.parametrize("name", OBJECTS)
def test_plain_then_no_section_is_already_attached(net, name):
    """Attached in the plain section, an object given without a section is
    already attached: nothing changes, and the line says which one
    (no multi-buffer).  xdp.frags named explicitly is another program."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, name, name))
    before = state(s)
    ((_, prog_id, _),) = before
    res = run(s, "xdp-attach", dev, name)
    assert (res.returncode, res.stdout, res.stderr) == \
        (0, line(dev, name, "native", prog_id, already=True), "")
    tag = s.attached(dev)[0].tag
    res = run(s, "xdp-attach", dev, name, FRAGS)
    assert (res.returncode, res.stdout, res.stderr) == \
        (4, "", f"xdp-attach: {dev}: another program, {project.PROGRAMS[name]} (prog id {prog_id}, "
                f"tag {tag}), is attached in native mode: use --force to replace it atomically\n")
    assert state(s) == before


@pytest.mark.parametrize("name", OBJECTS)
def test_xdp_frags_then_plain_named_needs_force(net, name):
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, name))
    before = state(s)
    ((_, prog_id, _),) = before
    for section in ([], [FRAGS]):
        res = run(s, "xdp-attach", dev, name, *section)
        assert (res.returncode, res.stdout) == \
            (0, line(dev, name, "native", prog_id, already=True, multibuffer=True))
    res = run(s, "xdp-attach", dev, name, name)
    assert res.returncode == 4
    assert res.stderr.startswith(f"xdp-attach: {dev}: another program, {project.MULTIBUFFER[name]} "
                                 f"(prog id {prog_id}, tag ")
    assert state(s) == before


@pytest.mark.parametrize("name", OBJECTS)
def test_force_switches_between_the_sections(net, name):
    """drop-tcp's and port-9090's two programs have one tag: only the name
    tells xdp-attach which one is attached."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, name, name))
    ((_, plain_id, _),) = state(s)
    res = run(s, "xdp-attach", "--force", dev, name)
    ((_, frags_id, prog),) = state(s)
    assert frags_id != plain_id and prog == project.MULTIBUFFER[name]
    assert res.stdout == line(dev, name, "native", frags_id, multibuffer=True)
    # The section xdp-attach picks is there: --force changes nothing.
    res = run(s, "xdp-attach", "--force", dev, name)
    assert res.stdout == line(dev, name, "native", frags_id, already=True, multibuffer=True)
    assert state(s) == [("native", frags_id, prog)]
    res = run(s, "xdp-attach", "--force", dev, name, name)
    ((_, back_id, prog),) = state(s)
    assert back_id not in (plain_id, frags_id) and prog == project.PROGRAMS[name]
    assert res.stdout == line(dev, name, "native", back_id)


# --- xdp-status and xdp-stats ------------------------------------------------------

def test_status_names_object_and_section(net):
    """port-9090's two sections, one tag: xdp-status tells them apart."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, "port-9090"))
    ok(run(s, "xdp-attach", "--mode", "generic", "lo", "port-9090", "port-9090"))
    rows = {r["interface"]: r for r in json.loads(ok(run(s, "xdp-status", "--json")))}
    assert rows[dev]["tag"] == rows["lo"]["tag"]
    assert {i: (r["name"], r["object"], r["section"]) for i, r in rows.items()} == \
        {dev: ("xdp_bounce_mb", "port-9090.o", FRAGS), "lo": ("xdp_bounce_port", "port-9090.o", "port-9090")}
    text = ok(run(s, "xdp-status")).splitlines()
    assert {r.split()[0]: r.split()[5:] for r in text[1:]} == \
        {dev: ["port-9090.o", FRAGS], "lo": ["port-9090.o", "port-9090"]}


def test_prometheus_names_the_section(net):
    """xdp-stats --prometheus names programs as xdp-status does: by tag and
    name, so port-9090's two sections are told apart."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, "port-9090"))
    ok(run(s, "xdp-attach", "--mode", "generic", "lo", "port-9090", "port-9090"))
    ids = {i: a[1] for i in (dev, "lo") for a in s.attached(i)}
    info = [line for line in ok(run(s, "xdp-stats", "--prometheus")).splitlines()
            if line.startswith("ipxdp_program_info{")]
    assert sorted(info) == sorted([
        f'ipxdp_program_info{{interface="{dev}",mode="native",object="port-9090.o",section="{FRAGS}",'
        f'prog_id="{ids[dev]}",name="xdp_bounce_mb"}} 1',
        f'ipxdp_program_info{{interface="lo",mode="generic",object="port-9090.o",section="port-9090",'
        f'prog_id="{ids["lo"]}",name="xdp_bounce_port"}} 1'])


def test_stats_finds_count_in_xdp_frags(net9000):
    """count's xdp.frags program at MTU 9000: ping -s 8000 is three
    buffers a frame in native mode, and every byte is counted."""
    s, c = net9000.server, net9000.client
    res = run(s, "xdp-attach", s.dev, "count")
    ((_, prog_id, prog),) = state(s)
    assert prog == "xdp_count_mb" and "multi-buffer" in res.stdout
    ping = c.run(["ping", "-q", "-M", "do", "-c", "3", "-i", "0.1", "-W", "2",
                  "-s", str(PING_SIZE), s.ip4])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    totals = json.loads(ok(run(s, "xdp-stats", "--once", "--json", s.dev)))
    assert totals["protocols"]["icmp"] == {"packets": 3, "bytes": 3 * PING_FRAME}
    text = ok(run(s, "xdp-stats", "--once", s.dev)).splitlines()
    assert text[0] == f"{s.dev}: totals since count was attached (prog id {prog_id})"
    assert ["icmp", "3", str(3 * PING_FRAME)] in [r.split() for r in text[2:]]


def test_stats_finds_count_in_its_plain_section(net):
    s, c = net.server, net.client
    ok(run(s, "xdp-attach", s.dev, "count", "count"))
    assert state(s)[0][2] == "xdp_count_proto"
    assert c.run(["ping", "-c", "2", "-i", "0.1", s.ip4]).returncode == 0
    totals = json.loads(ok(run(s, "xdp-stats", "--once", "--json", s.dev)))
    assert totals["protocols"]["icmp"] == {"packets": 2, "bytes": 196}


# --- the MTU, raised after the attach ------------------------------------------------

def set_mtu(net, mtu):
    """Both ends; the first error, or None."""
    for ns in (net.client, net.server):
        res = ns.run(["ip", "link", "set", "dev", ns.dev, "mtu", str(mtu)])
        if res.returncode != 0:
            return res.stderr.strip()
    return None


def test_mtu_raised_after_attach(net):
    """Attached by xdp-attach at MTU 1500, the program stays while the
    link goes to 9000 and back, and jumbo pings pass; with the plain
    section (named) veth refuses the raise.  That is why the default is
    xdp.frags whatever the MTU is now."""
    s, dev = net.server, net.server.dev
    ok(run(s, "xdp-attach", dev, "drop-tcp"))
    before = state(s)
    for mtu, size in ((9000, PING_SIZE), (1500, 1400), (9000, PING_SIZE)):
        assert set_mtu(net, mtu) is None
        ping = net.client.run(["ping", "-q", "-M", "do", "-c", "2", "-i", "0.1", "-W", "2",
                               "-s", str(size), s.ip4])
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert state(s) == before
    assert set_mtu(net, 1500) is None
    ok(run(s, "xdp-detach", dev))
    ok(run(s, "xdp-attach", dev, "drop-tcp", "drop-tcp"))
    assert set_mtu(net, 9000) == "Error: mtu greater than device maximum."


# --- a kernel without multi-buffer XDP -----------------------------------------------

@pytest.mark.parametrize("name", OBJECTS)
def test_without_multibuffer_the_plain_section_with_a_note(net, old_kernel, name):
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", dev, name, scripts=old_kernel)
    ((mode, prog_id, prog),) = state(s)
    assert (mode, prog) == ("native", project.PROGRAMS[name])
    assert (res.returncode, res.stdout, res.stderr) == \
        (0, line(dev, name, "native", prog_id), NOTE.format(name))
    # Again: the same choice, the same note, nothing changed.
    res = run(s, "xdp-attach", dev, name, scripts=old_kernel)
    assert (res.returncode, res.stdout, res.stderr) == \
        (0, line(dev, name, "native", prog_id, already=True), NOTE.format(name))
    assert state(s) == [(mode, prog_id, prog)]


def test_a_named_section_needs_no_probe(net, old_kernel):
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", dev, "drop-tcp", FRAGS, scripts=old_kernel)
    ((_, prog_id, prog),) = state(s)
    assert (prog, res.stdout, res.stderr) == \
        ("xdp_drop_tcp_mb", line(dev, "drop-tcp", "native", prog_id, multibuffer=True), "")


def test_offload_takes_the_plain_section_without_asking(net, old_kernel):
    """The kernel offloads no multi-buffer program: no probe, no note, and
    veth has no offload."""
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", "--mode", "offload", dev, "drop-tcp", scripts=old_kernel)
    assert (res.returncode, res.stdout) == (3, "")
    assert res.stderr == (f"xdp-attach: {dev}: XDP offload is not supported by this device "
                          f"(driver: veth); only NICs with BPF offload (e.g. Netronome nfp) have "
                          f"it: use --mode native or generic\n")
    assert state(s) == [] and lock_files(s) == []


def test_an_object_whose_xdp_frags_the_kernel_refuses(net, old_kernel):
    """What such a kernel does to our objects, played by a fixture whose
    xdp.frags program this kernel refuses too: the plain section still
    loads and attaches on its own (each section is loaded alone, as ip
    loads it).  Where the probe loads, xdp-attach picks xdp.frags and
    shows what the verifier said.  The plain program's name is longer than
    the 15 bytes the kernel keeps: xdp-attach compares the 15."""
    s, dev = net.server, net.server.dev
    obj = paths.fixture("frags-refused")
    res = run(s, "xdp-attach", dev, obj, scripts=old_kernel)
    ((_, prog_id, prog),) = state(s)
    assert (res.returncode, prog) == (0, "xdp_frags_refus")
    assert (res.stdout, res.stderr) == \
        (line(dev, "frags-refused", "native", prog_id), NOTE.format("frags-refused"))
    ok(run(s, "xdp-detach", dev))

    res = run(s, "xdp-attach", dev, obj)
    lines = res.stderr.splitlines()
    assert (res.returncode, res.stdout) == (3, "")
    assert lines[0] == f"xdp-attach: {obj}: the kernel's verifier rejected program xdp_frags_probe; its last words:"
    assert "  invalid func unknown#100000" in lines[1:]
    assert state(s) == [] and lock_files(s) == []
    res = run(s, "xdp-attach", dev, obj, "frags-refused")
    assert (res.returncode, state(s)[0][2]) == (0, "xdp_frags_refus")


def test_at_mtu_9000_the_plain_section_is_refused(net9000, old_kernel):
    """What the note warns of."""
    s, dev = net9000.server, net9000.server.dev
    res = run(s, "xdp-attach", dev, "drop-tcp", scripts=old_kernel)
    assert (res.returncode, res.stdout) == (3, "")
    assert res.stderr == NOTE.format("drop-tcp") + \
        f"xdp-attach: {dev}: the kernel refused native XDP: veth: Peer MTU is too large to set XDP.\n"
    assert state(s) == [] and lock_files(s) == []


def test_a_probe_that_cannot_answer(net, tmp_path):
    """Anything but EINVAL is no answer: xdp-attach stops, says what ip
    said, and changes nothing."""
    text = tmp_path / "not-an-object.o"
    text.write_text("not an object\n")
    scripts = private_tree(tmp_path, text)
    s, dev = net.server, net.server.dev
    res = run(s, "xdp-attach", dev, "drop-tcp", scripts=scripts)
    assert (res.returncode, res.stdout) == (3, "")
    assert res.stderr.splitlines() == [
        "xdp-attach: cannot tell whether this kernel has multi-buffer XDP (name the section to "
        "attach to skip the check):",
        "  Cannot initialize ELF context!"]
    assert state(s) == [] and lock_files(s) == []
    assert re.fullmatch(r".* attached \(native, multi-buffer, prog id \d+\)\n",
                        ok(run(s, "xdp-attach", dev, "drop-tcp", FRAGS, scripts=scripts)))
