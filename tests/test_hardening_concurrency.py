# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Two scripts on one interface at the same moment follow the locking rule:
the second waits for the first, then the usual rules apply to what the first
left; "busy" only after 5 s.  Never a half state: after every race exactly
one program is attached, in one mode, and the outputs say which.

To hold the lock for a known time, the first caller runs with an `ip` on
PATH that sleeps before it attaches (while the lock is held) and leaves a
mark when it starts sleeping."""

import os
import re
import subprocess
import time

import pytest

from ipxdp import paths, project
from ipxdp.netns import namespaces

ROUNDS = 3
LINE = re.compile(r"^v0: (\S+) (attached|already attached) \((native|generic), prog id (\d+)\)$")
NAMES = project.PROGRAMS  # section -> program name


@pytest.fixture
def v0():
    with namespaces("ipxdp-hconc", "ns", ipv6=False) as (ns,):
        ns.add_veth("v0", "v1")
        yield ns


def start(ns, *args, env=None):
    argv = ns.command([str(paths.script(args[0])), *map(str, args[1:])])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def together(ns, *commands):
    """Starts every command at once; returns [(rc, stdout, stderr)]."""
    procs = [start(ns, *c) for c in commands]
    return [finish(p) for p in procs]


def obj(name):
    return paths.obj(name)


def xdp_state(ns, dev):
    """[(mode, prog id, prog name)] attached to @dev."""
    return [a[:3] for a in ns.attached(dev)]


def parsed(out):
    m = LINE.match(out.strip())
    assert m, out
    return m.group(1), m.group(2), m.group(3), int(m.group(4))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_same_program_twice(v0, round_):
    results = together(v0, ["xdp-attach", "v0", obj("drop-tcp")], ["xdp-attach", "v0", obj("drop-tcp")])
    assert [rc for rc, _, _ in results] == [0, 0], results
    lines = sorted(parsed(out) for _, out, _ in results)
    assert [verb for _, verb, _, _ in lines] == ["already attached", "attached"], lines
    assert len({pid for _, _, _, pid in lines}) == 1
    assert xdp_state(v0, "v0") == [("native", lines[0][3], "xdp_drop_tcp")]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_programs_without_force(v0, round_):
    results = together(v0, ["xdp-attach", "v0", obj("drop-tcp")], ["xdp-attach", "v0", obj("port-9090")])
    assert sorted(rc for rc, _, _ in results) == [0, 4], results
    (win,) = [parsed(out) for rc, out, _ in results if rc == 0]
    (_, out, err), = [r for r in results if r[0] == 4]
    assert out == "" and len(err.splitlines()) == 1
    assert re.match(rf"^xdp-attach: v0: another program, {NAMES[win[0]]} \(prog id {win[3]}, tag [0-9a-f]+\), "
                    r"is attached in native mode: use --force to replace it atomically$", err), err
    assert xdp_state(v0, "v0") == [("native", win[3], NAMES[win[0]])]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_programs_with_force(v0, round_):
    results = together(v0, ["xdp-attach", "--force", "v0", obj("drop-tcp")],
                       ["xdp-attach", "--force", "v0", obj("port-9090")])
    assert [rc for rc, _, _ in results] == [0, 0], results
    lines = [parsed(out) for _, out, _ in results]
    assert {(p, verb) for p, verb, _, _ in lines} == {("drop-tcp", "attached"), ("port-9090", "attached")}
    (state,) = xdp_state(v0, "v0")
    # The one attached is the one replaced last: one of the two, whole.
    assert (state[1], state[2]) in {(pid, NAMES[p]) for p, _, _, pid in lines}


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_modes(v0, round_):
    results = together(v0, ["xdp-attach", "--mode", "native", "v0", obj("drop-tcp")],
                       ["xdp-attach", "--mode", "generic", "v0", obj("drop-tcp")])
    assert sorted(rc for rc, _, _ in results) == [0, 4], results
    (win,) = [parsed(out) for rc, out, _ in results if rc == 0]
    (_, _, err), = [r for r in results if r[0] == 4]
    assert re.match(rf"^xdp-attach: v0: xdp_drop_tcp \(prog id {win[3]}\) is attached in {win[2]} mode, "
                    r"and the kernel cannot switch modes atomically: detach it first", err), err
    assert xdp_state(v0, "v0") == [(win[2], win[3], "xdp_drop_tcp")]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_attach_and_detach(v0, round_):
    v0.ip("link", "set", "dev", "v0", "xdpdrv", "obj", obj("count"), "sec", "count")
    results = together(v0, ["xdp-attach", "--force", "v0", obj("drop-tcp")], ["xdp-detach", "v0"])
    assert [rc for rc, _, _ in results] == [0, 0], results
    state = xdp_state(v0, "v0")
    detached = results[1][1].strip()
    _, _, _, pid = parsed(results[0][1])
    if state:  # the detach ran first and removed count
        assert state == [("native", pid, "xdp_drop_tcp")]
        assert re.match(r"^v0: xdp_count_proto detached \(native, prog id \d+\)$", detached), detached
    else:  # the attach ran first; the detach removed drop-tcp
        assert detached == f"v0: xdp_drop_tcp detached (native, prog id {pid})"


def slow_ip_env(tmp_path, delay):
    """An environment whose `ip` sleeps @delay s before attaching, after
    touching tmp_path/holding."""
    bindir = tmp_path / "slowbin"
    bindir.mkdir()
    real_ip = subprocess.run(["sh", "-c", "command -v ip"], capture_output=True, text=True).stdout.strip()
    (bindir / "ip").write_text(
        "#!/bin/bash\n"
        "case \" $* \" in *' link set '*' obj '*) touch '" + str(tmp_path / "holding") + "'; "
        f"sleep {delay} ;; esac\n"
        f"exec {real_ip} \"$@\"\n")
    (bindir / "ip").chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")


def start_holder(ns, tmp_path, delay, *args):
    holder = start(ns, "xdp-attach", *args, env=slow_ip_env(tmp_path, delay))
    deadline = time.monotonic() + 20
    while not (tmp_path / "holding").exists():
        assert holder.poll() is None, finish(holder)
        assert time.monotonic() < deadline, "the first xdp-attach never reached ip"
        time.sleep(0.02)
    return holder


def test_second_caller_waits_then_applies_the_rules(v0, tmp_path):
    holder = start_holder(v0, tmp_path, 3, "v0", obj("drop-tcp"))
    t0 = time.monotonic()
    rc, out, err = finish(start(v0, "xdp-attach", "v0", obj("port-9090")))
    waited = time.monotonic() - t0
    hrc, hout, herr = finish(holder)
    assert hrc == 0, herr
    _, verb, mode, pid = parsed(hout)
    assert (verb, mode) == ("attached", "native")
    # It waited for the holder (not "busy": under 5 s), then saw its program.
    assert 0.5 < waited < 5.0, waited
    assert rc == 4 and out == "", (rc, out, err)
    assert f"another program, xdp_drop_tcp (prog id {pid}," in err
    assert xdp_state(v0, "v0") == [("native", pid, "xdp_drop_tcp")]


def test_detach_waits_for_attach(v0, tmp_path):
    holder = start_holder(v0, tmp_path, 2, "v0", obj("drop-tcp"))
    rc, out, err = finish(start(v0, "xdp-detach", "v0"))
    hrc, hout, herr = finish(holder)
    assert hrc == 0, herr
    _, _, _, pid = parsed(hout)
    assert rc == 0 and out == f"v0: xdp_drop_tcp detached (native, prog id {pid})\n", (rc, out, err)
    assert xdp_state(v0, "v0") == []


def test_busy_only_after_five_seconds(v0, tmp_path):
    holder = start_holder(v0, tmp_path, 10, "v0", obj("drop-tcp"))
    t0 = time.monotonic()
    rc, out, err = finish(start(v0, "xdp-attach", "--force", "v0", obj("port-9090")))
    waited = time.monotonic() - t0
    assert xdp_state(v0, "v0") == [], "the busy caller changed the interface"
    hrc, hout, herr = finish(holder)
    assert rc == 5 and out == "", (rc, out, err)
    assert err == "xdp-attach: v0: busy: another xdp-attach or xdp-detach has held it for 5 s\n"
    assert 4.9 < waited < 8.5, waited
    assert hrc == 0, herr
    _, _, _, pid = parsed(hout)
    assert xdp_state(v0, "v0") == [("native", pid, "xdp_drop_tcp")]
