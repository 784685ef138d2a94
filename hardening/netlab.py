# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""What the hardening tests need on top of tests/netns.py, whose Namespace
objects (from `netns.namespaces(..., ipv6=False)`, so that counters only
ever see the frames a test sends) every `ns` here is: the scripts and
objects under test, the XDP state of an interface, count's per-CPU
counters, and send_frames.py processes.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SENDER = pathlib.Path(__file__).resolve().parent / "send_frames.py"
PYTHON = "/usr/bin/python3"


def scripts_dir():
    """The scripts under test: IPXDP_SCRIPTS (a mutant copy) or scripts/."""
    return pathlib.Path(os.environ.get("IPXDP_SCRIPTS", ROOT / "scripts"))


def build_dir():
    """The objects under test: IPXDP_BUILD (a mutant build) or build/."""
    return pathlib.Path(os.environ.get("IPXDP_BUILD", ROOT / "build"))


def script(ns, name, *args, timeout=60, env=None, cwd=None):
    """Runs one of the scripts under test inside @ns; the exit status is
    the caller's to check."""
    return ns.run([scripts_dir() / name, *args], timeout=timeout, env=env, cwd=cwd)


def mac(ns, dev):
    return bytes.fromhex(ns.link(dev)["address"].replace(":", ""))


def tx_packets(ns, dev):
    return ns.link(dev)["stats64"]["tx"]["packets"]


def xdp_state(ns, dev):
    """[(mode, prog id, prog name)] attached to @dev."""
    xdp = ns.link(dev).get("xdp") or {}
    attached = xdp.get("attached") or ([{"mode": xdp["mode"], "prog": xdp["prog"]}] if "prog" in xdp else [])
    names = {1: "native", 2: "generic", 3: "offload"}
    return sorted((names.get(a["mode"], a["mode"]), a["prog"]["id"], a["prog"].get("name"))
                  for a in attached)


class Sender:
    """A send_frames.py process; stop() returns its JSON report."""

    def __init__(self, ns, dev, cpu=None, frames_file=None, repeat=1, flood=None, seconds=60.0,
                 start_at=None):
        argv = [PYTHON, str(SENDER), "--netns", ns.path, "--dev", dev]
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
    def bpftool(*args):
        return json.loads(ns.run(["bpftool", "-j", *args], check=True).stdout)

    (mode, prog_id, _), = [s for s in xdp_state(ns, dev)]
    for map_id in bpftool("prog", "show", "id", str(prog_id)).get("map_ids", []):
        if bpftool("map", "show", "id", str(map_id)).get("name") == "proto_counters":
            break
    else:
        raise AssertionError(f"no proto_counters map on prog {prog_id}")
    out = {}
    for entry in bpftool("map", "dump", "id", str(map_id)):
        f = entry["formatted"]
        per_cpu = [(v["value"]["packets"], v["value"]["bytes"]) for v in f["values"]]
        if any(p or b for p, b in per_cpu):
            out[f["key"]] = per_cpu
    return out


if __name__ == "__main__":
    sys.exit("netlab.py is a library for the tests")
