# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist in a private bpffs: xdp-block and the object, side by side.

    with PrivateBpffs() as fs:
        fs.block("add", "198.51.100.0/24")          # scripts/xdp-block, TC_BPF_MNT=fs.root
        with fs.load_object() as obj:               # build/blocklist.o via libbpf,
            verdict, _ = obj.run(frame)             # reusing the maps xdp-block pinned

`PrivateBpffs` mounts a bpffs of its own on a temporary directory (a bpffs
mount is a new, empty instance), so a test never sees or touches the host's
/sys/fs/bpf.  xdp-block and `ip` find it through TC_BPF_MNT, exactly as
they would find /sys/fs/bpf; the object is loaded with libbpf's
pin_root_path set to the same tc/globals directory iproute2 pins in.  On
exit it is unmounted, and every map pinned in it goes with it.
"""

import ctypes
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

from bpfrun import BPF_PROG_TYPE_XDP, BpfObject, PerCpuArray, libbpf, _check

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = pathlib.Path(os.environ.get("IPXDP_SCRIPTS", ROOT / "scripts"))
BUILD = pathlib.Path(os.environ.get("IPXDP_BUILD", ROOT / "build"))
OBJECT = BUILD / "blocklist.o"
TOTALS = ("passed", "blocked", "allowed", "malformed", "uncounted")


class OpenOpts(ctypes.Structure):
    """The head of struct bpf_object_open_opts (libbpf 1.x): enough for
    pin_root_path."""
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p)]


libbpf.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]


def build_object(src, blocklist_max, counters):
    """blocklist.o built with other capacities, from a copy of the sources
    in SRC (an empty directory); returns its path."""
    src = pathlib.Path(src)
    for d in ("progs", "include", "tests/fixtures"):
        shutil.copytree(ROOT / d, src / d)
    shutil.copy(ROOT / "Makefile", src)
    res = subprocess.run(["make", "--no-print-directory", f"BLOCKLIST_MAX={blocklist_max}",
                          f"BLOCKLIST_COUNTERS={counters}", "build/blocklist.o"], cwd=src,
                         capture_output=True, text=True, env=dict(os.environ, MAKEFLAGS=""))
    if res.returncode != 0:
        raise AssertionError(f"make failed: {res.stderr}")
    assert f"BLOCKLIST_MAX={blocklist_max} BLOCKLIST_COUNTERS={counters}" in res.stdout
    return src / "build" / "blocklist.o"


def build_config(build=BUILD):
    """BLOCKLIST_MAX and BLOCKLIST_COUNTERS, as the build recorded them."""
    words = (build / "blocklist.config").read_text().split()
    return {k: int(v) for k, v in (w.split("=", 1) for w in words)}


class PinnedObject(BpfObject):
    """BpfObject whose pinned-by-name maps live under @pin_root (they are
    reused when pinned there already, else created and pinned there)."""

    def __init__(self, path, pin_root):
        self.path = str(path)
        self._root = ctypes.c_char_p(str(pin_root).encode())
        opts = OpenOpts(sz=ctypes.sizeof(OpenOpts), pin_root_path=self._root)
        self._obj = libbpf.bpf_object__open_file(self.path.encode(), ctypes.byref(opts))
        if not self._obj:
            raise OSError(ctypes.get_errno(), f"cannot open {self.path}")
        self.programs = {}
        prog = libbpf.bpf_object__next_program(self._obj, None)
        while prog:
            _check(libbpf.bpf_program__set_type(prog, BPF_PROG_TYPE_XDP), "set_type")
            self.programs[libbpf.bpf_program__section_name(prog).decode()] = prog
            prog = libbpf.bpf_object__next_program(self._obj, prog)
        _check(libbpf.bpf_object__load(self._obj), f"loading {self.path}")

    def totals(self):
        """{"passed": {"packets": P, "bytes": B}, ...} read from the map."""
        table = PerCpuArray(self.map_fd("ipxdp_totals"), ["packets", "bytes"])
        return {name: table.total(i) for i, name in enumerate(TOTALS)}


class PrivateBpffs:
    def __init__(self):
        self.root = None

    def __enter__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="ipxdp-bpffs-"))
        try:
            subprocess.run(["mount", "-t", "bpf", "bpf", str(self.root)], check=True,
                           capture_output=True, text=True)
        except BaseException:
            self.root.rmdir()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
        self.root.rmdir()

    @property
    def globals(self):
        """Where iproute2 (and xdp-block) pin: TC_BPF_MNT/tc/globals."""
        return self.root / "tc" / "globals"

    @property
    def env(self):
        return dict(os.environ, TC_BPF_MNT=str(self.root))

    def block(self, *args, input=None, check=False, script=None, timeout=120):
        """Runs xdp-block ARGS with this bpffs; returns the CompletedProcess."""
        res = subprocess.run([str(script or SCRIPTS / "xdp-block"), *args], input=input,
                             capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"xdp-block {' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res

    def lists(self, *args):
        """`xdp-block list --json` as a dict."""
        return json.loads(self.block("list", "--json", *args, check=True).stdout)

    def stats(self):
        return json.loads(self.block("stats", "--json", check=True).stdout)

    def load_object(self, path=OBJECT):
        """The object loaded with libbpf, its maps those pinned here."""
        self.globals.mkdir(parents=True, exist_ok=True)
        return PinnedObject(path, self.globals)

    def pins(self):
        return sorted(p.name for p in self.globals.iterdir()) if self.globals.exists() else []

    def map_info(self, *spec):
        """`bpftool -j map show ...` (e.g. "pinned", path) as a dict."""
        out = subprocess.run(["bpftool", "-j", "map", "show", *map(str, spec)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def slot_map_id(self, name):
        """The id of the list map in the slot of outer map NAME."""
        out = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", str(self.globals / name),
                              "key", "0", "0", "0", "0"], check=True, capture_output=True, text=True).stdout
        return int.from_bytes(bytes(int(b, 16) for b in json.loads(out)["value"]), "little")


__all__ = ["PrivateBpffs", "PinnedObject", "build_config", "build_object", "OBJECT", "SCRIPTS", "TOTALS"]
