# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The objects with the tools people already have: ip, bpftool, xdp-loader.

Every object loads with `ip link set … xdp obj OBJ sec SECTION`, with
`bpftool prog load OBJ PIN type xdp` and with `xdp-loader load -s SECTION`,
and all three load the same program (same name, same tag).  Each tool sees
what the others attached.  The error messages docs/troubleshooting.md quotes
are checked here against the real tools, so the document cannot drift.

Everything happens on a veth pair inside a network namespace made for the
test (entered with nsenter, so bpffs pins stay visible).  xdp-loader runs in
a private mount namespace with its own /run: its lock file,
/run/xdp-loader.lck, is machine-wide, and other xdp-loader runs on the
machine must not make these tests fail (or the other way round).
"""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from ipxdp import paths, project, wire
from ipxdp.bpf import XDP_DROP, XDP_PASS, XDP_TX
from ipxdp.netns import PrivateBpffs, namespace_with_veth

BUILD = paths.build_dir()
TX_PORT, TX_MAC = project.port_9090_config()

# object name (= its plain section's name) -> function name, which is the
# program name; the same for each object's xdp.frags section
OBJECTS = project.PROGRAMS
FRAGS = project.MULTIBUFFER_SECTION
# `ip -j link` "mode" values (enum XDP_ATTACHED_*)
IP_MODE = {name: number for number, name in project.XDP_MODES.items()}
BPFTOOL_MODE = {"native": "driver", "generic": "generic"}
IP_KEYWORD = project.MODE_KEYWORDS
XDP_LOADER_MODE = {"native": "native", "generic": "skb"}


def run(cmd, check=True, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def xdp_loader(ns, *args, check=True):
    """xdp-loader ARGS inside ns, with a private /run (so its own lock file)
    and a bpffs of its own (libxdp pins blocklist's maps by name)."""
    script = ("mount --make-rprivate / && mount -t tmpfs tmpfs /run && "
              "mount -t bpf bpf /sys/fs/bpf && exec xdp-loader \"$@\"")
    return ns.run(["unshare", "--mount", "sh", "-c", script, "xdp-loader", *args],
                  check=check)


@pytest.fixture
def ns():
    """A namespace with a veth pair va <-> vb, both up; ns.xdp() reads va."""
    with namespace_with_veth("ipxdp-compat", "va", "vb") as n:
        yield n


@pytest.fixture(scope="module")
def bpffs():
    """A mount namespace of the module's own with a new bpffs on /sys/fs/bpf:
    bpftool pins there, and so does libbpf the maps an object pins by name
    (blocklist's), never in the host's bpffs.  The prefix that runs a
    command in it; everything pinned goes with it at the end."""
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             "mount -t bpf bpf /sys/fs/bpf && echo ready && exec sleep 3600"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n", "no private bpffs"
        yield ["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "--"]
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def pindir(bpffs):
    path = pathlib.Path(f"/sys/fs/bpf/ipxdp-compat-{os.getpid()}")
    run([*bpffs, "mkdir", "-p", str(path)])
    yield path
    run([*bpffs, "rm", "-rf", str(path)])


@pytest.fixture(scope="module")
def reference_tags(bpffs):
    """Each object's programs as bpftool loads them, in the module's own
    bpffs: {object: (name, tag)} for the program `bpftool prog load` pins
    (the first, the plain section), and {(object, "xdp.frags"): (name, tag)}
    from `bpftool prog loadall`, which pins every program by its name."""
    path = f"/sys/fs/bpf/ipxdp-compat-{os.getpid()}-ref"
    run([*bpffs, "mkdir", path])
    tags = {}
    for obj in OBJECTS:
        pin = f"{path}/{obj}"
        run([*bpffs, "bpftool", "prog", "load", str(BUILD / f"{obj}.o"), pin, "type", "xdp"])
        info = json.loads(run([*bpffs, "bpftool", "-j", "prog", "show", "pinned", pin]).stdout)
        tags[obj] = (info["name"], info["tag"])
        run([*bpffs, "rm", pin])
        pins = f"{path}/{obj}-all"
        run([*bpffs, "bpftool", "prog", "loadall", str(BUILD / f"{obj}.o"), pins, "type", "xdp"])
        assert sorted(run([*bpffs, "ls", pins]).stdout.split()) == \
            sorted([OBJECTS[obj], project.MULTIBUFFER[obj]])
        info = json.loads(run([*bpffs, "bpftool", "-j", "prog", "show", "pinned",
                               f"{pins}/{project.MULTIBUFFER[obj]}"]).stdout)
        tags[obj, FRAGS] = (info["name"], info["tag"])
        run([*bpffs, "rm", "-r", pins])
    return tags


def assert_attached(ns, mode, obj, reference_tags, section=None):
    """What is attached to va is @obj's program in @section (default: the
    plain one), by name and tag."""
    xdp = ns.xdp()
    assert xdp is not None, "nothing attached"
    assert xdp["mode"] == IP_MODE[mode]
    want = reference_tags[obj] if section in (None, obj) else reference_tags[obj, section]
    assert (xdp["prog"]["name"], xdp["prog"]["tag"]) == want
    return xdp["prog"]["id"]


def assert_other_tools_see(ns, mode, name, prog_id):
    """bpftool net and xdp-loader status both report prog_id, called @name,
    in mode."""
    (net,) = json.loads(ns.run(["bpftool", "-j", "net", "show", "dev", "va"], check=True).stdout)
    assert net["xdp"] == [{"devname": "va", "ifindex": net["xdp"][0]["ifindex"],
                           "mode": BPFTOOL_MODE[mode], "id": prog_id}]
    status = xdp_loader(ns, "status", "va").stdout
    rows = [line.split() for line in status.splitlines() if line.startswith("va ")]
    assert rows == [["va", name, XDP_LOADER_MODE[mode], str(prog_id),
                     rows[0][4]]], status


# The three loaders ---------------------------------------------------------

def test_objects_name_their_programs_as_expected(reference_tags):
    assert {o: name for o, (name, _) in reference_tags.items() if o in OBJECTS} == OBJECTS
    assert {o: reference_tags[o, FRAGS][0] for o in OBJECTS} == project.MULTIBUFFER
    # Different programs, so a tag match below means something; an
    # object's two sections may share one (drop-tcp's and port-9090's
    # are the same instructions), so the names tell them apart.
    assert len({reference_tags[o][1] for o in OBJECTS}) == len(OBJECTS)
    for obj in ("drop-tcp", "port-9090"):
        assert reference_tags[obj][1] == reference_tags[obj, FRAGS][1]


@pytest.mark.parametrize("mode", ["native", "generic"])
@pytest.mark.parametrize("obj", OBJECTS)
def test_ip_loads_and_attaches(ns, obj, mode, reference_tags):
    with PrivateBpffs() as fs:  # where ip pins blocklist's maps
        ns.run(["ip", "link", "set", "dev", "va", IP_KEYWORD[mode], "obj", str(BUILD / f"{obj}.o"),
                "sec", obj], env=fs.env, check=True)
    prog_id = assert_attached(ns, mode, obj, reference_tags)
    assert_other_tools_see(ns, mode, OBJECTS[obj], prog_id)
    ns.ip("link", "set", "dev", "va", IP_KEYWORD[mode], "off")
    assert ns.xdp() is None


def _frame_verdicts(obj):
    """(frame, expected verdict, expected output) for bpftool prog run."""
    tcp, tcp_tx, udp = wire.tcp4(80), wire.tcp4(TX_PORT), wire.udp4(53)
    bounced = TX_MAC + tcp_tx[6:]
    return {
        "drop-tcp": [(tcp, XDP_DROP, None), (udp, XDP_PASS, udp)],
        "count": [(tcp, XDP_PASS, tcp), (udp, XDP_PASS, udp)],
        "port-9090": [(tcp, XDP_DROP, None), (tcp_tx, XDP_TX, bounced), (udp, XDP_PASS, udp)],
        "blocklist": [(tcp, XDP_PASS, tcp), (udp, XDP_PASS, udp)],  # its lists are empty
    }[obj]


@pytest.mark.parametrize("obj", OBJECTS)
def test_bpftool_loads_runs_and_attaches(ns, bpffs, pindir, tmp_path, obj, reference_tags):
    pin = pindir / obj
    run([*bpffs, "bpftool", "prog", "load", str(BUILD / f"{obj}.o"), str(pin), "type", "xdp"])
    info = json.loads(run([*bpffs, "bpftool", "-j", "prog", "show", "pinned", str(pin)]).stdout)
    assert info["type"] == "xdp"
    assert (info["name"], info["tag"]) == reference_tags[obj]

    # The pinned program decides as the unit tests say it does.
    for i, (frame, verdict, expected) in enumerate(_frame_verdicts(obj)):
        data_in, data_out = tmp_path / f"in{i}", tmp_path / f"out{i}"
        data_in.write_bytes(frame)
        res = json.loads(run([*bpffs, "bpftool", "-j", "prog", "run", "pinned", str(pin),
                              "data_in", str(data_in), "data_out", str(data_out)]).stdout)
        assert res["retval"] == verdict, frame.hex()
        if expected is not None:
            assert data_out.read_bytes() == expected

    ns.run([*bpffs, "bpftool", "net", "attach", "xdpdrv", "pinned", str(pin), "dev", "va"], check=True)
    prog_id = assert_attached(ns, "native", obj, reference_tags)
    assert prog_id == info["id"]
    assert_other_tools_see(ns, "native", OBJECTS[obj], prog_id)
    ns.run(["bpftool", "net", "detach", "xdpdrv", "dev", "va"], check=True)
    assert ns.xdp() is None


@pytest.mark.parametrize("mode", ["native", "generic"])
@pytest.mark.parametrize("obj", OBJECTS)
def test_xdp_loader_loads_single_program(ns, obj, mode, reference_tags):
    res = xdp_loader(ns, "load", "-v", "-m", XDP_LOADER_MODE[mode], "-s", obj, "va",
                     str(BUILD / f"{obj}.o"))
    # The multi-program dispatcher does not work on this kernel: libxdp
    # falls back to attaching the program itself, which is what `ip`, the
    # scripts and bpftool then see (not an xdp_dispatcher).
    assert "Falling back to loading single prog without dispatcher" in res.stderr
    prog_id = assert_attached(ns, mode, obj, reference_tags)
    assert_other_tools_see(ns, mode, OBJECTS[obj], prog_id)
    # A second program is refused: no dispatcher to chain it to.
    other = "count" if obj != "count" else "drop-tcp"
    res = xdp_loader(ns, "load", "-m", XDP_LOADER_MODE[mode], "-s", other, "va",
                     str(BUILD / f"{other}.o"), check=False)
    assert res.returncode != 0
    assert "Couldn't attach XDP program on iface 'va': Device or resource busy(-16)" \
        in res.stderr
    assert ns.xdp()["prog"]["id"] == prog_id
    xdp_loader(ns, "unload", "va", "--all")
    assert ns.xdp() is None


# What goes wrong, as docs/troubleshooting.md quotes it ----------------------

@pytest.fixture(scope="module")
def broken_objects():
    """Objects that fail to load, each for one reason the docs explain
    (tests/fixtures/, built by make into build/fixtures/)."""
    return paths.FIXTURES


def ip_fails(ns, *args):
    res = ns.run(["ip", *args])
    assert res.returncode != 0
    assert ns.xdp() is None
    return res.stderr


def test_legacy_map_definitions_are_refused(ns, broken_objects):
    err = ip_fails(ns, "link", "set", "dev", "va", "xdp", "obj",
                   str(broken_objects / "legacy-maps.o"), "sec", "xdp")
    assert "legacy map definitions in 'maps' section are not supported by libbpf v1.0+" in err


def test_missing_btf_is_refused(ns, broken_objects):
    err = ip_fails(ns, "link", "set", "dev", "va", "xdp", "obj",
                   str(broken_objects / "count-nobtf.o"), "sec", "count")
    assert "libbpf: BTF is required, but is missing or corrupted." in err


def test_section_names(ns):
    obj = str(BUILD / "drop-tcp.o")
    # Without `sec`, ip looks for a section called prog.
    assert ip_fails(ns, "link", "set", "dev", "va", "xdp", "obj", obj).strip() \
        == "object file doesn't contain sec prog"
    assert ip_fails(ns, "link", "set", "dev", "va", "xdp", "obj", obj, "sec", "xdp").strip() \
        == "object file doesn't contain sec xdp"


def test_verifier_rejection_shows_the_log(ns, broken_objects):
    err = ip_fails(ns, "link", "set", "dev", "va", "xdp", "obj",
                   str(broken_objects / "unchecked.o"), "sec", "unchecked")
    assert "invalid access to packet" in err
    assert "-- END PROG LOAD LOG --" in err
    assert "libbpf: prog 'xdp_unchecked': failed to load: -13" in err


def test_already_attached_and_mode_conflicts(ns, reference_tags):
    drop, count = str(BUILD / "drop-tcp.o"), str(BUILD / "count.o")
    ns.ip("link", "set", "dev", "va", "xdpdrv", "obj", drop, "sec", "drop-tcp")
    native_id = assert_attached(ns, "native", "drop-tcp", reference_tags)

    res = ns.run(["ip", "link", "set", "dev", "va", "xdpdrv", "obj", count, "sec", "count"])
    assert (res.returncode, res.stderr.strip()) == (2, "Error: XDP program already attached.")
    res = ns.run(["ip", "link", "set", "dev", "va", "xdpgeneric", "obj", count, "sec", "count"])
    assert (res.returncode, res.stderr.strip()) == \
        (2, "Error: Native and generic XDP can't be active at the same time.")
    assert ns.xdp()["prog"]["id"] == native_id

    # -force replaces in place, in one step.
    ns.ip("-force", "link", "set", "dev", "va", "xdpdrv", "obj", count, "sec", "count")
    assert_attached(ns, "native", "count", reference_tags)
    ns.ip("link", "set", "dev", "va", "xdp", "off")
    assert ns.xdp() is None

    # `xdp off` leaves a generic program where it is.
    ns.ip("link", "set", "dev", "va", "xdpgeneric", "obj", count, "sec", "count")
    ns.ip("link", "set", "dev", "va", "xdp", "off")
    assert_attached(ns, "generic", "count", reference_tags)
    ns.ip("link", "set", "dev", "va", "xdpgeneric", "off")
    assert ns.xdp() is None


def test_peer_mtu_too_large(ns, reference_tags):
    drop = str(BUILD / "drop-tcp.o")
    ns.ip("link", "set", "dev", "vb", "mtu", "9000")
    for keyword in ("xdpdrv", "xdp"):  # plain `xdp` does not fall back either
        res = ns.run(["ip", "link", "set", "dev", "va", keyword, "obj", drop, "sec", "drop-tcp"])
        assert (res.returncode, res.stderr.strip()) == \
            (2, "Error: veth: Peer MTU is too large to set XDP.")
        assert ns.xdp() is None
    ns.ip("link", "set", "dev", "vb", "mtu", "3506")
    ns.ip("link", "set", "dev", "va", "xdpdrv", "obj", drop, "sec", "drop-tcp")
    assert_attached(ns, "native", "drop-tcp", reference_tags)
    ns.ip("link", "set", "dev", "va", "xdpdrv", "off")


def test_offload_on_a_device_without_offload(ns):
    err = ip_fails(ns, "link", "set", "dev", "va", "xdpoffload", "obj",
                   str(BUILD / "drop-tcp.o"), "sec", "drop-tcp")
    assert "libbpf: prog 'xdp_drop_tcp': failed to load: -22" in err


def test_no_native_xdp_on_lo(ns, reference_tags):
    res = ns.run(["ip", "link", "set", "dev", "lo", "xdpdrv", "obj", str(BUILD / "drop-tcp.o"),
                  "sec", "drop-tcp"])
    assert (res.returncode, res.stderr.strip()) == \
        (2, "Error: Underlying driver does not support XDP in native mode.")
    assert ns.xdp("lo") is None


def test_stale_xdp_loader_lock(ns, reference_tags):
    """A killed xdp-loader leaves /run/xdp-loader.lck; removing it is the cure."""
    ns.ip("link", "set", "dev", "va", "xdpdrv", "obj", str(BUILD / "drop-tcp.o"),
          "sec", "drop-tcp")
    script = (
        'mount --make-rprivate / && mount -t tmpfs tmpfs /run\n'
        'sleep 60 & pid=$!\n'
        'kill -9 "$pid"; wait "$pid" 2>/dev/null\n'
        'echo "$pid" > /run/xdp-loader.lck   # what the killed one left\n'
        'xdp-loader unload va --all; echo "rc=$?"\n'
        'ip -j link show dev va\n'
        'rm /run/xdp-loader.lck\n'
        'xdp-loader unload va --all; echo "rc=$?"\n')
    res = ns.run(["unshare", "--mount", "sh", "-c", script], check=True)
    first, link, second = res.stdout.splitlines()
    assert (first, second) == ("rc=1", "rc=0")
    assert res.stderr.strip() == "Unable to read PID from lockfile: File exists"
    assert json.loads(link)[0]["xdp"]["prog"]["name"] == "xdp_drop_tcp"  # untouched
    assert ns.xdp() is None


# The scripts and the tools, both ways -----------------------------------------

SCRIPTS_DIR = paths.scripts_dir()


def test_scripts_pass_shellcheck():
    scripts = sorted(p.name for p in SCRIPTS_DIR.iterdir() if p.is_file())
    assert {"xdp-attach", "xdp-detach", "xdp-status", "xdp-stats", "xdp-lib.sh"} <= set(scripts)
    res = run(["shellcheck", "--external-sources", *scripts], check=False, cwd=SCRIPTS_DIR)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


@pytest.mark.parametrize("mode", ["native", "generic"])
@pytest.mark.parametrize("obj", OBJECTS)
def test_tools_see_what_the_scripts_attached(ns, obj, mode, reference_tags):
    """xdp-attach without a section attaches xdp.frags."""
    with PrivateBpffs() as fs:  # where blocklist's maps are pinned
        res = ns.run([str(SCRIPTS_DIR / "xdp-attach"), "--mode", mode, "va", obj], env=fs.env,
                     check=True)
    prog_id = assert_attached(ns, mode, obj, reference_tags, FRAGS)
    assert res.stdout == f"va: {obj} attached ({mode}, multi-buffer, prog id {prog_id})\n"
    assert_other_tools_see(ns, mode, project.MULTIBUFFER[obj], prog_id)
    ns.run([str(SCRIPTS_DIR / "xdp-detach"), "va"], check=True)
    assert ns.xdp() is None


def xdp_status(ns):
    res = ns.run([str(SCRIPTS_DIR / "xdp-status"), "--json", "va"], check=True)
    (row,) = json.loads(res.stdout)
    return row


@pytest.mark.parametrize("tool", ["ip", "bpftool", "xdp-loader"])
@pytest.mark.parametrize("which", ["plain", "frags"])
@pytest.mark.parametrize("obj", OBJECTS)
def test_xdp_status_sees_what_the_tools_attached(ns, bpffs, pindir, tool, which, obj, reference_tags):
    """Either section, whoever attached it: xdp-status names the object and
    the section, also where the two share a tag."""
    path = str(BUILD / f"{obj}.o")
    section = obj if which == "plain" else FRAGS
    name, tag = reference_tags[obj] if which == "plain" else reference_tags[obj, FRAGS]
    if tool == "ip":
        with PrivateBpffs() as fs:
            ns.run(["ip", "link", "set", "dev", "va", "xdpgeneric", "obj", path, "sec", section],
                   env=fs.env, check=True)
        mode = "generic"
    elif tool == "bpftool":
        pins = str(pindir / obj)
        run([*bpffs, "bpftool", "prog", "loadall", path, pins, "type", "xdp"])
        ns.run([*bpffs, "bpftool", "net", "attach", "xdpdrv", "pinned", f"{pins}/{name}", "dev", "va"],
               check=True)
        mode = "native"
    else:
        xdp_loader(ns, "load", "-m", "native", "-s", section, "va", path)
        mode = "native"
    prog_id = assert_attached(ns, mode, obj, reference_tags, section)
    assert xdp_status(ns) == {"interface": "va", "ifindex": xdp_status(ns)["ifindex"],
                              "mode": mode, "id": prog_id, "name": name, "tag": tag,
                              "object": f"{obj}.o", "section": section}
    ns.run([str(SCRIPTS_DIR / "xdp-detach"), "va"], check=True)
    assert ns.xdp() is None


def test_xdp_status_names_no_object_for_a_foreign_program(ns):
    ns.ip("link", "set", "dev", "va", "xdpdrv", "obj", str(paths.fixture("xdp-pass")),
          "sec", "xdp-pass")
    row = xdp_status(ns)
    assert (row["mode"], row["object"], row["section"]) == ("native", None, None)
    assert row["id"] == ns.xdp()["prog"]["id"]
