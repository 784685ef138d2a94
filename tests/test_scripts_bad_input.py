# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""scripts/ on bad input: one clear line on stderr (the verifier's last
lines may follow it), the documented exit code, nothing on stdout, and every
interface exactly as it was - no program, no lock file, no temporary file
left behind.

Exit codes: 1 usage, 2 bad input, 3 kernel refused, 4 conflict, 5 busy
(test_scripts_attach.py), 6 needs root.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from ipxdp import paths
from ipxdp.netns import VethPair

SCRIPTS = paths.scripts_dir()  # the scripts under test
OBJDIR = paths.scripts_objdir()  # where they find an object given by name
COMMANDS = ["xdp-attach", "xdp-detach", "xdp-status", "xdp-stats", "xdp-block"]
NEEDS_ROOT = "needs root (uid 0 with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF)"
NO_CAPS = "needs root: running as uid 0 but without CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF"

@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    """tests/fixtures/unchecked.c (the verifier rejects it) and
    two-sections.c, built by make; a text file named like an object."""
    d = tmp_path_factory.mktemp("objs")
    text = d / "notes.o"
    text.write_text("not an object\n")
    return {"bad": paths.fixture("unchecked"), "two": paths.fixture("two-sections"),
            "text": text, "dir": d}


@pytest.fixture(scope="module")
def pair():
    with VethPair("ipxdp-badin") as net:
        yield net


@pytest.fixture
def ns(pair):
    """The server side, with nothing attached before and after each test."""
    def clear():
        for dev in (pair.server.dev, "lo"):
            for kw in ("xdpgeneric", "xdpdrv"):
                pair.server.run(["ip", "link", "set", "dev", dev, kw, "off"])
    clear()
    yield pair.server
    clear()


@pytest.fixture(scope="module")
def world_copy():
    """scripts/ copied where anybody can read it (for the nobody runs)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="ipxdp-scripts-", dir="/tmp"))
    try:
        d.chmod(0o755)
        for f in SCRIPTS.iterdir():
            shutil.copy(f, d / f.name)
            (d / f.name).chmod(0o755)
        yield d
    finally:
        shutil.rmtree(d)


def snapshot(ns):
    """Every interface of the namespace, as ip describes it in detail."""
    return json.loads(ns.ip("-j", "-d", "link", "show"))


def lock_files(ns):
    prefix = f"{os.stat(ns.path).st_ino}."
    d = pathlib.Path("/run/ipxdp")
    return sorted(p.name for p in d.iterdir() if p.name.startswith(prefix)) if d.exists() else []


def refused(ns, tmp_path, argv, code, message, prefix=()):
    """Run @argv (a script and its arguments) in @ns; assert exit @code, a
    stderr whose first line is "<script>: @message" (a str, or a compiled
    pattern for the part after "<script>: "), nothing on stdout, and nothing
    changed or left behind.  Returns the stderr lines."""
    before = snapshot(ns)
    tmp = tmp_path / "tmpdir"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    res = ns.run([*prefix, *argv], env=dict(os.environ, TMPDIR=str(tmp)))
    name = pathlib.Path(argv[0]).name
    lines = res.stderr.splitlines()
    assert res.returncode == code, res.stderr
    assert res.stdout == ""
    assert lines, "no message"
    if isinstance(message, str):
        assert lines[0] == f"{name}: {message}"
    else:
        assert lines[0].startswith(f"{name}: ")
        assert message.fullmatch(lines[0][len(name) + 2:]), lines[0]
    assert snapshot(ns) == before, "the interfaces changed"
    assert lock_files(ns) == []
    assert list(tmp.iterdir()) == []
    return lines


def script(name):
    return str(SCRIPTS / name)


# --- xdp-attach: input that cannot be right ------------------------------------

def test_unknown_interface(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-attach"), "nosuch0", "drop-tcp"], 2,
            "nosuch0: unknown interface (not in this network namespace)")


@pytest.mark.parametrize("name, shown", [
    ("a" * 16, "a" * 16),
    ("a/b", "a/b"),
    ("a:b", "a:b"),
    ("a b", "'a b'"),
    ("a\nb", "$'a\\nb'"),
    ("..", ".."),
    ("", "''"),
])
def test_invalid_interface_name(ns, tmp_path, name, shown):
    refused(ns, tmp_path, [script("xdp-attach"), name, "drop-tcp"], 2,
            f"{shown}: unknown interface (not a valid interface name: 1-15 bytes, no '/', ':' "
            f"or whitespace)")


def test_missing_object_file(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, "/nonexistent/drop-tcp.o"], 2,
            "/nonexistent/drop-tcp.o: no such file")


def test_unknown_object_name(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, "drop-udp"], 2,
            re.compile(rf"unknown object drop-udp: no {re.escape(str(OBJDIR))}/drop-udp\.o "
                       r"\(objects there: (.+, )?count, drop-tcp, port-9090(, .+)?\)"))


def test_object_is_a_directory(ns, tmp_path, objs):
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, f"{objs['dir']}/"], 2,
            f"{objs['dir']}/: not a regular file")


def test_not_an_elf_file(ns, tmp_path, objs):
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, str(objs["text"])], 2,
            f"{objs['text']}: not a BPF object file (not ELF at all)")


def test_elf_for_another_machine(ns, tmp_path):
    true = os.path.realpath(shutil.which("true"))
    machine = re.search(r"Machine:\s+(.+)", subprocess.run(
        ["readelf", "-h", true], capture_output=True, text=True, env={"LC_ALL": "C"}).stdout).group(1)
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, true], 2,
            f"{true}: not a BPF object file (ELF for {machine.strip()})")


def test_unknown_section_lists_the_sections(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, "drop-tcp", "drop-udp"], 2,
            "drop-tcp: no section drop-udp (program sections: drop-tcp, xdp.frags)")


def test_several_sections_and_none_named(ns, tmp_path, objs):
    two = str(objs["two"])
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, two], 2,
            f"{two} has several program sections (first, second): name one")
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, two, "third"], 2,
            f"{two}: no section third (program sections: first, second)")


# --- xdp-attach: the kernel says no -----------------------------------------------

def test_offload_without_offload_support(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-attach"), "--mode", "offload", ns.dev, "drop-tcp"], 3,
            f"{ns.dev}: XDP offload is not supported by this device (driver: veth); only NICs "
            f"with BPF offload (e.g. Netronome nfp) have it: use --mode native or generic")


def test_native_on_a_driver_without_native_xdp(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-attach"), "--mode", "native", "lo", "drop-tcp"], 3,
            "lo: the loopback driver does not support native XDP: use --mode generic (or auto)")


@pytest.mark.parametrize("mode", ["auto", "native", "generic"])
def test_verifier_rejection_shows_the_verifier(ns, tmp_path, objs, mode):
    bad = str(objs["bad"])
    lines = refused(ns, tmp_path, [script("xdp-attach"), "--mode", mode, ns.dev, bad], 3,
                    f"{bad}: the kernel's verifier rejected program xdp_unchecked; its last words:")
    assert 2 <= len(lines) <= 5
    assert all(line.startswith("  ") for line in lines[1:])
    assert "  invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)" in lines


def test_native_refusal_is_shown_and_never_falls_back(tmp_path):
    """auto falls back to generic only for "no native XDP in this driver";
    the veth MTU check is another refusal: shown, and nothing attached.  At
    MTU 9000 veth refuses a plain section natively (xdp.frags, which
    xdp-attach picks by itself, is accepted: test_scripts_multibuffer.py)."""
    with VethPair("ipxdp-badin-mtu", mtu=9000) as net:
        for mode in ("auto", "native"):
            refused(net.server, tmp_path, [script("xdp-attach"), "--mode", mode, net.server.dev,
                                           "drop-tcp", "drop-tcp"], 3,
                    f"{net.server.dev}: the kernel refused native XDP: veth: Peer MTU is too "
                    f"large to set XDP.")
            assert "xdp" not in net.server.link()


# --- xdp-attach: conflicts -------------------------------------------------------

def attach(ns, *args):
    res = ns.run([script("xdp-attach"), *args])
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_program_in_another_mode(ns, tmp_path, force):
    attach(ns, "--mode", "generic", ns.dev, "drop-tcp")
    prog_id = ns.link()["xdp"]["prog"]["id"]
    refused(ns, tmp_path, [script("xdp-attach"), *force, "--mode", "native", ns.dev, "drop-tcp"], 4,
            f"{ns.dev}: xdp_drop_tcp_mb (prog id {prog_id}) is attached in generic mode, and the "
            f"kernel cannot switch modes atomically: detach it first (xdp-detach {ns.dev})")


def test_different_program_without_force(ns, tmp_path):
    attach(ns, "--mode", "native", ns.dev, "drop-tcp")
    prog = ns.link()["xdp"]["prog"]
    refused(ns, tmp_path, [script("xdp-attach"), ns.dev, "count"], 4,
            f"{ns.dev}: another program, xdp_drop_tcp_mb (prog id {prog['id']}, tag {prog['tag']}), "
            f"is attached in native mode: use --force to replace it atomically")


# --- command lines -------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["xdp-attach"], "missing arguments: DEV and OBJ are required"),
    (["xdp-attach", "veth1"], "missing arguments: DEV and OBJ are required"),
    (["xdp-attach", "veth1", "drop-tcp", "drop-tcp", "x"],
     "too many arguments: expected DEV OBJ [SECTION]"),
    (["xdp-attach", "--bogus", "veth1", "drop-tcp"], "unknown option --bogus"),
    (["xdp-attach", "--mode", "fast", "veth1", "drop-tcp"],
     "unknown mode fast: use auto, native, generic or offload"),
    (["xdp-attach", "veth1", "drop-tcp", "--mode"],
     "--mode needs a value: auto, native, generic or offload"),
    (["xdp-detach"], "missing argument: DEV is required"),
    (["xdp-detach", "veth1", "lo"], "too many arguments: expected DEV"),
    (["xdp-detach", "--mode", "auto", "veth1"],
     "unknown mode auto: use native, generic or offload"),
    (["xdp-detach", "-x", "veth1"], "unknown option -x"),
    (["xdp-status", "veth1", "lo"], "too many arguments: expected at most one DEV"),
    (["xdp-status", "--yaml"], "unknown option --yaml"),
    (["xdp-stats"], "missing argument: DEV is required"),
    (["xdp-stats", "--interval", "0", "veth1"],
     "--interval needs a number of seconds greater than 0, not 0"),
    (["xdp-stats", "--interval", "1s", "veth1"],
     "--interval needs a number of seconds greater than 0, not 1s"),
    (["xdp-stats", "--count", "0", "veth1"], "--count needs a whole number greater than 0, not 0"),
    (["xdp-stats", "--once", "--count", "2", "veth1"],
     "--once prints the totals once: it takes no --interval or --count"),
    (["xdp-stats", "--count"], "--count needs a value"),
])
def test_usage_errors(ns, tmp_path, argv, message):
    refused(ns, tmp_path, [script(argv[0]), *argv[1:]], 1,
            f"{message} (see {argv[0]} --help)")


@pytest.mark.parametrize("name", [c for c in COMMANDS if c != "xdp-block"])  # it has no DEV
def test_unknown_interface_everywhere(ns, tmp_path, name):
    refused(ns, tmp_path, [script(name), "nosuch0", *(["drop-tcp"] if name == "xdp-attach" else [])],
            2, "nosuch0: unknown interface (not in this network namespace)")


# --- xdp-stats without count -----------------------------------------------------

def test_stats_without_any_program(ns, tmp_path):
    refused(ns, tmp_path, [script("xdp-stats"), ns.dev], 2,
            f"{ns.dev}: no count program attached (no XDP program at all): xdp-attach {ns.dev} count")


def test_stats_with_another_program(ns, tmp_path):
    attach(ns, ns.dev, "drop-tcp")
    refused(ns, tmp_path, [script("xdp-stats"), "--once", ns.dev], 2,
            f"{ns.dev}: no count program attached (attached: xdp_drop_tcp_mb (native))")


# --- privileges --------------------------------------------------------------------

def args_for(name, dev):
    return {"xdp-attach": [dev, "drop-tcp"], "xdp-detach": [dev],
            "xdp-status": [], "xdp-stats": [dev], "xdp-block": ["list"]}[name]


@pytest.mark.parametrize("name", COMMANDS)
def test_nobody_needs_root(ns, tmp_path, world_copy, name):
    setpriv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    refused(ns, tmp_path, [str(world_copy / name), *args_for(name, ns.dev)], 6, NEEDS_ROOT,
            prefix=setpriv)


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("drop", ["all", "net_admin", "bpf", "sys_admin"])
def test_root_without_capabilities_needs_root(ns, tmp_path, world_copy, name, drop):
    setpriv = ["setpriv", f"--inh-caps=-{drop}", f"--bounding-set=-{drop}", "--"]
    refused(ns, tmp_path, [str(world_copy / name), *args_for(name, ns.dev)], 6, NO_CAPS,
            prefix=setpriv)


def test_help_and_version_need_no_privileges(ns, world_copy):
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    for name in COMMANDS:
        res = ns.run([*nobody, str(world_copy / name), "--help"])
        assert res.returncode == 0 and res.stdout.startswith(f"Usage: {name} ")
        res = ns.run([*nobody, str(world_copy / name), "--version"])
        assert res.returncode == 0 and re.fullmatch(r"ipxdp \d+\.\d+\.\d+\n", res.stdout)
