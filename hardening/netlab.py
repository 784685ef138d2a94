# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Throwaway network namespaces for the hardening tests.

Everything runs through `nsenter --net=/var/run/netns/NAME`, never `ip netns
exec` or `ip -n`: those remount /sys privately, and bpffs pins or bpftool
would not see what they should.  Namespaces are quiet: no IPv6 (so no DAD,
router solicitations or MLD), no addresses unless asked, so that counters
only ever see the frames a test sends.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
NETNS_DIR = "/var/run/netns"
SENDER = pathlib.Path(__file__).resolve().parent / "send_frames.py"
PYTHON = "/usr/bin/python3"


def scripts_dir():
    """The scripts under test: IPXDP_SCRIPTS (a mutant copy) or scripts/."""
    return pathlib.Path(os.environ.get("IPXDP_SCRIPTS", ROOT / "scripts"))


def build_dir():
    return pathlib.Path(os.environ.get("IPXDP_BUILD", ROOT / "build"))


def nsenter(ns):
    return ["nsenter", f"--net={NETNS_DIR}/{ns}"]


def run(argv, ns=None, check=True, timeout=60, **kw):
    argv = [str(a) for a in argv]
    if ns:
        argv = nsenter(ns) + argv
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{argv} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def script(ns, name, *args, timeout=60, env=None, cwd=None):
    """Runs one of the scripts inside namespace @ns."""
    return run([scripts_dir() / name, *args], ns=ns, check=False, timeout=timeout,
               env=env, cwd=cwd)


def quiet(ns):
    for key in ("all", "default"):
        run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"], ns=ns)


@contextlib.contextmanager
def namespaces(prefix, *names):
    """Creates namespaces <prefix>-<pid>-<name>, quiet; yields their names;
    deletes them (and so everything in them) whatever happens."""
    full = [f"{prefix}-{os.getpid()}-{n}" for n in names]
    made = []
    try:
        for ns in full:
            run(["ip", "netns", "add", ns])
            made.append(ns)
            quiet(ns)
        yield full
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def veth(ns_a, a, ns_b, b, queues=1):
    """A veth pair a (in ns_a) <-> b (in ns_b), both up, IPv6 off."""
    q = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
    run(["ip", "link", "add", "name", a, *q, "type", "veth", "peer", "name", b, *q,
         "netns", ns_b], ns=ns_a)
    for ns, dev in ((ns_a, a), (ns_b, b)):
        run(["ip", "link", "set", "dev", dev, "up"], ns=ns)


def link(ns, dev):
    (info,) = json.loads(run(["ip", "-j", "-d", "-s", "link", "show", "dev", dev], ns=ns).stdout)
    return info


def mac(ns, dev):
    return bytes.fromhex(link(ns, dev)["address"].replace(":", ""))


def tx_packets(ns, dev):
    return link(ns, dev)["stats64"]["tx"]["packets"]


def xdp_state(ns, dev):
    """[(mode, prog id, prog name)] attached to @dev."""
    xdp = link(ns, dev).get("xdp") or {}
    attached = xdp.get("attached") or ([{"mode": xdp["mode"], "prog": xdp["prog"]}] if "prog" in xdp else [])
    names = {1: "native", 2: "generic", 3: "offload"}
    return sorted((names.get(a["mode"], a["mode"]), a["prog"]["id"], a["prog"].get("name"))
                  for a in attached)


def ncpus():
    return len(os.sched_getaffinity(0))


class Sender:
    """A send_frames.py process; stop() returns its JSON report."""

    def __init__(self, ns, dev, cpu=None, frames_file=None, repeat=1, flood=None, seconds=60.0,
                 start_at=None):
        argv = [PYTHON, str(SENDER), "--netns", f"{NETNS_DIR}/{ns}", "--dev", dev]
        if start_at is not None:
            argv += ["--start-at", repr(start_at)]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        if frames_file:
            argv += ["--frames", str(frames_file), "--repeat", str(repeat)]
        else:
            argv += ["--flood", flood.hex(), "--seconds", str(seconds)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise AssertionError(f"sender failed ({self.proc.returncode}): {err.strip()}")
        return json.loads(out)

    def wait(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise AssertionError(f"sender failed ({self.proc.returncode}): {err.strip()}")
        return json.loads(out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@contextlib.contextmanager
def senders():
    """A list to put Senders in; every one still running is killed on exit."""
    procs = []
    try:
        yield procs
    finally:
        for s in procs:
            s.kill()


def percpu_counters(ns, dev):
    """count's counters on @dev, per key and CPU, read straight from the map
    through the attached program: {key: [(packets, bytes) per CPU]}."""
    (mode, prog_id, _), = [s for s in xdp_state(ns, dev)]
    prog = json.loads(run(["bpftool", "-j", "prog", "show", "id", str(prog_id)]).stdout)
    for map_id in prog.get("map_ids", []):
        info = json.loads(run(["bpftool", "-j", "map", "show", "id", str(map_id)]).stdout)
        if info.get("name") == "proto_counters":
            break
    else:
        raise AssertionError(f"no proto_counters map on prog {prog_id}")
    dump = json.loads(run(["bpftool", "-j", "map", "dump", "id", str(map_id)]).stdout)
    out = {}
    for entry in dump:
        f = entry["formatted"]
        per_cpu = [(v["value"]["packets"], v["value"]["bytes"]) for v in f["values"]]
        if any(p or b for p, b in per_cpu):
            out[f["key"]] = per_cpu
    return out


if __name__ == "__main__":
    sys.exit("netlab.py is a library for the tests")
