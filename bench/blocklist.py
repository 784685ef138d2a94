# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The blocklist's part of the bench: what a list costs per packet, how
fast xdp-block loads one, and how many frames per second the blocklist
drops next to what users pick instead.

  lists       0, 1,000, 100,000 and 1,000,000 IPv4 prefixes and 10,000
              single addresses (bench/prefixes.py), each loaded with
              xdp-block into a bpffs of its own (see Bpffs)
  load        xdp-block load of 100,000 prefixes, wall time: into an empty
              list, over a list of which it replaces half, and over
              itself (unchanged)
  per-packet  the blocklist on each list, sources spread over the list:
              spread-tail (bench/progs/spread.c) gives every run the next
              of 65,536 listed (or unlisted) sources and tail-calls the
              program; the floor is timed behind spread-tail too, so "over
              the floor" is the lookup's cost alone.  Next to the 10,000
              single addresses, xdp-filter's xdpfilt_alw_ip.o with the same
              addresses.
  live        live frames from spread-redirect, each with the next listed
              source, into: the floor, the blocklist (twice: the A/A),
              an nftables netdev ingress rule `ip saddr @blocked drop`
              with an interval set, and iptables raw PREROUTING `-m set`
              with an ipset hash:net, each holding the same list; and
              the blocklist and xdp-filter with the 10,000 addresses.

The method is the rest of the bench's (micro.py, live.py): fresh loads,
the fastest of short calls, pairs with the floor in the same round,
verdicts and counters checked.  bench.py calls run() and prints tables(),
and puts targets() in its verdict line.
"""

import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time

import host
import live
import packets
import peers
import prefixes
import report
import timedrun
from host import BenchError
from ipxdp import bpf, paths
from ipxdp.bpf import XDP_DROP, XDP_PASS, verdict_name
from prefixes import SOURCES, PrefixList

TARGET = 100000             # the list size the targets are judged at
EXACT = 10000               # single addresses: xdp-filter's filter_ipv4 holds 10,000
# name, prefixes, seed; the million only outside QUICK
LISTS = [("0", 0, 10), ("1k", 1000, 11), ("100k", TARGET, 12), ("1M", 1000000, 13)]
EXACT_LIST = "10k32"
CHANGED_SEED = 14           # the 50,000 prefixes the "half replaced" list brings in
# A call runs every source once (65,536 runs): up to 0.1 s on the million,
# so a cell is the fastest of 2 such calls, and the part runs fewer loads
# (bench.py's --blocklist-loads) and live rounds than the rest, to keep
# make bench within 5 minutes.
MICRO_CALLS = 2
MIN_RATE_VS_PEER = 2.0      # live: blocklist >= 2x the frames per second of nft and ipset
MIN_RATE_VS_FLOOR = 0.5     # live: blocklist >= 0.5x the floor's
MAX_LOAD_S = 2.0            # xdp-block load of TARGET prefixes
FLOOR = ("build/bench/floor.o", "floor")
SPREAD = "build/bench/spread.o"


def size_label(n):
    return f"{n:,}"


# --- a bpffs of the bench's own ---------------------------------------------

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _sys(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags=0, data=None):
    enc = lambda s: s.encode() if s else None  # noqa: E731
    _sys(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def keeper(conn, base, names):
    """Child process: a mount namespace of its own, private (nothing
    mounted in it shows outside), with a tmpfs on @base and a bpffs on
    @base/NAME for each of @names.  It lives until the driver says "quit"
    or is gone: the kernel kills it when the bench dies (PR_SET_PDEATHSIG),
    and with the last process in it the namespace, its bpffs instances
    and every map pinned there go away."""
    try:
        _sys(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if os.getppid() == 1:  # the bench died before that
            return
        _sys(_libc.unshare(CLONE_NEWNS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("ipxdp-bench", base, "tmpfs", 0, "mode=0700")
        for name in names:
            os.mkdir(os.path.join(base, name))
            _mount("ipxdp-bench", os.path.join(base, name), "bpf")
        conn.send(("ok", os.getpid()))
        conn.recv()
    except EOFError:
        pass
    except OSError as e:
        conn.send(("error", str(e)))
    finally:
        conn.close()


def enter_mounts(path):
    """Move this (single-threaded) process into the mount namespace at @path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _sys(_libc.setns(fd, CLONE_NEWNS), f"setns {path}")
    finally:
        os.close(fd)


class Bpffs:
    """One bpffs per list, seen only by the bench's own processes: a
    keeper child holds them in a private mount namespace (see keeper());
    commands enter it with nsenter --mount, TC_BPF_MNT naming the list's
    bpffs, as xdp-block and ip expect.  Nothing is pinned under the host's
    /sys/fs/bpf, and nothing is left anywhere when the bench ends, however
    it ends."""

    def __init__(self, start, names):
        self.base = tempfile.mkdtemp(prefix="ipxdp-bench-bpffs-")
        self.conn = start(keeper, self.base, list(names))
        try:
            reply = self.conn.recv()
        except EOFError:
            raise BenchError("the process holding the bench's bpffs died") from None
        if reply[0] != "ok":
            raise BenchError(f"private bpffs: {reply[1]}")
        self.mnt = f"/proc/{reply[1]}/ns/mnt"

    def root(self, name):
        """TC_BPF_MNT for list @name."""
        return os.path.join(self.base, name)

    def pin_dir(self, name):
        """Where ip and xdp-block pin list @name's maps."""
        return os.path.join(self.root(name), "tc", "globals")

    def command(self, args, ns=None):
        net = [f"--net={ns.path}"] if ns else []
        return ["nsenter", f"--mount={self.mnt}", *net, "--", *map(str, args)]

    def run(self, args, name, ns=None, what=None, timeout=300):
        """Run @args with list @name's bpffs (in namespace @ns); raises
        BenchError naming @what (default: the command) with the first line
        of stderr if it fails."""
        # In a process group of its own: xdp-block's own children (bpftool,
        # awk) go with it if the bench is interrupted.
        with subprocess.Popen(self.command(args, ns), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env=dict(os.environ, TC_BPF_MNT=self.root(name))) as p:
            try:
                out, err = p.communicate(timeout=timeout)
            except BaseException:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                raise
        res = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        if res.returncode != 0:
            err = (res.stderr.strip().splitlines() or ["(no message)"])[0]
            raise BenchError(f"{what or os.path.basename(str(args[0]))} (list {name}) failed "
                             f"(exit {res.returncode}): {err}")
        return res

    def close(self):
        try:
            self.conn.send(("quit",))
        except OSError:
            pass
        self.conn.close()
        try:
            os.rmdir(self.base)
        except OSError:
            pass


class _OpenOpts(ctypes.Structure):
    """The head of libbpf's struct bpf_object_open_opts, up to pin_root_path."""
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p)]


class Object(bpf.BpfObject):
    """An object loaded with libbpf as BpfObject loads it, but its maps
    pinned by name taken from @pin_dir if given (the blocklist, whose maps
    xdp-block made and filled there, as ip takes them from
    TC_BPF_MNT/tc/globals), and its programs' expected attach type set to
    @attach_type: a program array takes only programs of the same one, and
    libbpf gives a program in section "xdp" (xdp-filter's) BPF_XDP, ours 0."""

    def __init__(self, path, pin_dir=None, attach_type=0):
        self.path = str(path)
        self._root = ctypes.c_char_p(str(pin_dir).encode() if pin_dir else None)
        opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), pin_root_path=self._root)
        self._obj = bpf.libbpf.bpf_object__open_file(self.path.encode(), ctypes.byref(opts))
        if not self._obj:
            raise OSError(ctypes.get_errno(), f"cannot open {self.path}")
        self.programs, self._logs = {}, {}
        prog = bpf.libbpf.bpf_object__next_program(self._obj, None)
        try:
            while prog:
                bpf.check(bpf.libbpf.bpf_program__set_type(prog, bpf.BPF_PROG_TYPE_XDP), "set_type")
                bpf.check(_set_attach_type(prog, attach_type), "set_expected_attach_type")
                self.programs[bpf.libbpf.bpf_program__section_name(prog).decode()] = prog
                prog = bpf.libbpf.bpf_object__next_program(self._obj, prog)
            bpf.check(bpf.libbpf.bpf_object__load(self._obj), f"loading {self.path}")
        except OSError:
            self.close()
            raise


_set_attach_type = bpf.libbpf.bpf_program__set_expected_attach_type
_set_attach_type.restype, _set_attach_type.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]
_update_batch = bpf.libbpf.bpf_map_update_batch
_update_batch.restype = ctypes.c_int
_update_batch.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
                          ctypes.c_void_p]


def load_spread(sources, target_fd=None, attach_type=0):
    """spread.o loaded, its spread_sources filled with @sources (bytes, as
    prefixes.packed() gives them) and, for spread-tail, @target_fd (a
    program of expected attach type @attach_type) in slot 0 of
    spread_target."""
    obj = Object(paths.ROOT / SPREAD, attach_type=attach_type)
    try:
        n = len(sources) // 4
        if n != SOURCES:
            raise BenchError(f"spread.o needs {SOURCES} sources, got {n}")
        keys = (ctypes.c_uint32 * n)(*range(n))
        count = ctypes.c_uint32(n)
        bpf.check(_update_batch(obj.map_fd("spread_sources"), keys, ctypes.c_char_p(sources),
                                ctypes.byref(count), None), "filling spread_sources")
        if target_fd is not None:
            k, v = ctypes.c_uint32(0), ctypes.c_uint32(target_fd)
            bpf.check(bpf.libbpf.bpf_map_update_elem(obj.map_fd("spread_target"), ctypes.byref(k),
                                                     ctypes.byref(v), 0), "filling spread_target")
    except BaseException:
        obj.close()
        raise
    return obj


# --- the lists -------------------------------------------------------------

class Lists:
    """The generated lists, their files (in a temporary directory) and the
    sources each part of the bench spreads over them."""

    def __init__(self, quick):
        self.dir = tempfile.mkdtemp(prefix="ipxdp-bench-lists-")
        self.lists = {name: PrefixList(name, n, seed) for name, n, seed in LISTS
                      if not (quick and n > TARGET)}
        self.lists[EXACT_LIST] = PrefixList(EXACT_LIST, EXACT, 15, exact=True)
        target = self.lists["100k"]
        self.changed = PrefixList("changed", TARGET // 2, CHANGED_SEED, other=target)
        rng = random.Random(16)
        self.sources = {}
        for name, lst in self.lists.items():
            if lst.count:
                self.sources[name, "listed"] = prefixes.packed(lst.listed(rng))
                self.sources[name, "hot"] = prefixes.packed(lst.hot(rng))
            self.sources[name, "unlisted"] = prefixes.packed(lst.unlisted(rng))

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def close(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, round(time.monotonic() - t0, 3)


def load_lists(fs, lists, xdp_block, obj, log):
    """Every list into its bpffs with xdp-block; the target size four
    times, timed.  Returns {"load_s": {case: s}, "setup_s": {list: s}}."""
    block = lambda name, path: fs.run([xdp_block, "--object", obj, "load", path], name,  # noqa: E731
                                      what="xdp-block load").stdout
    setup, load = {}, {}
    for name, lst in lists.lists.items():
        path = lists.file(f"{name}.txt", lst.xdp_block())
        if name != "100k":
            _, setup[name] = _timed(lambda: block(name, path))
            continue
        # The target size: a list of as many prefixes into an empty list,
        # then this one (half of them replaced), then this one again.
        first = lst.lines()
        other = lists.file("100k-other.txt", "".join(
            line + "\n" for line in first[:TARGET // 2] + lists.changed.lines()))
        half = f"changed ({TARGET} prefixes: {TARGET // 2} added, {TARGET // 2} deleted, {TARGET // 2} kept)"
        for case, p, want in (("empty", other, f"changed ({TARGET} prefixes: {TARGET} added, 0 deleted"),
                              ("half_replaced", path, half),
                              ("unchanged", path, f"unchanged ({TARGET} prefixes)")):
            out, load[case] = _timed(lambda: block(name, p))
            if want not in out:
                raise BenchError(f"xdp-block load ({case}) said {out.strip()!r}, expected {want!r}")
        setup[name] = load["empty"]
        log(f"blocklist: xdp-block load of {TARGET:,} prefixes: " +
            ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in load.items()))
    return {"load_s": load, "setup_s": setup}


# --- per-packet --------------------------------------------------------------

class Target:
    """A program spread-tail hands each frame to: the floor, the blocklist
    on list @pin (a name in Bpffs), or a peers.Program (@peer)."""

    def __init__(self, kind, path=None, section=None, pin=None, peer=None):
        self.kind, self.path, self.section, self.pin, self.peer = kind, path, section, pin, peer

    def load(self, fs_base):
        if self.kind == "blocklist":
            return Object(self.path, os.path.join(fs_base, self.pin, "tc", "globals"))
        if self.kind == "peer":
            return self.peer.load()
        return bpf.BpfObject(self.path)


class Cell:
    """One timed column: @target behind spread-tail with sources @sources
    (a key of Lists.sources); every source gets @expect."""

    def __init__(self, name, target, sources, expect):
        self.name, self.target, self.sources, self.expect = name, target, sources, expect


def micro_spec(lists, obj):
    """(targets, cells) of the per-packet table; the floor's cell first."""
    xf = peers.xdp_filter_ip([prefixes.dotted(a) for a, _ in lists.lists[EXACT_LIST].prefixes()],
                             expect=None)
    targets = {"floor": Target("floor", str(paths.ROOT / FLOOR[0]), FLOOR[1]),
               "xdp-filter-ip": Target("peer", peer=xf)}
    cells = [Cell("floor", "floor", ("100k", "listed"), XDP_DROP)]
    for name, lst in lists.lists.items():
        targets[name] = Target("blocklist", obj, "blocklist", pin=name)
        kinds = ["unlisted"] if not lst.count else (
            ["listed", "unlisted"] if name == EXACT_LIST else ["listed", "unlisted", "hot"])
        for kind in kinds:
            cells.append(Cell(f"{name}/{kind}", name, (name, kind), XDP_PASS if kind == "unlisted" else XDP_DROP))
    targets["100k-copy"] = Target("blocklist", obj, "blocklist", pin="100k")
    cells.append(Cell("100k-copy/listed", "100k-copy", ("100k", "listed"), XDP_DROP))
    for kind in ("listed", "unlisted"):
        cells.append(Cell(f"xdp-filter-ip/{kind}", "xdp-filter-ip", (EXACT_LIST, kind),
                          XDP_PASS if kind == "unlisted" else XDP_DROP))
    return targets, cells


def _micro_load(targets, cells, sources, fs_base, rng, hold_devs):
    """Every target and every cell's spread-tail loaded afresh, in random
    orders, each spread-tail held on a device; returns ({target: object},
    {cell: spread object}, {cell: spread-tail fd}, links)."""
    objs, spread, links = {}, {}, []
    try:
        for t in rng.sample(list(targets), len(targets)):
            objs[t] = targets[t].load(fs_base)
        for c in rng.sample(cells, len(cells)):
            t = targets[c.target]
            spread[c.name] = load_spread(sources[c.sources], objs[c.target].prog_fd(t.section),
                                         bpf.BPF_XDP if t.kind == "peer" else 0)
        fds = {c.name: spread[c.name].prog_fd("spread-tail") for c in cells}
        for c, dev in zip(cells, hold_devs):
            links.append(bpf.hold(fds[c.name], dev))
        return objs, spread, fds, links
    except BaseException:
        _close(objs, spread, links)
        raise


def _close(objs, spread, links):
    for fd in links:
        os.close(fd)
    for o in list(spread.values()) + list(objs.values()):
        o.close()


def _stats(xdp_block, fs_base, pin):
    """xdp-block stats --json of list @pin: {total: packets}."""
    res = subprocess.run([xdp_block, "stats", "--json"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, TC_BPF_MNT=os.path.join(fs_base, pin)))
    if res.returncode != 0:
        raise BenchError(f"xdp-block stats ({pin}) failed: {res.stderr.strip()}")
    return {k: v["packets"] for k, v in json.loads(res.stdout).items()}


def _verify(targets, cells, objs, fds, frame, fs_base, xdp_block):
    """Run every cell once through all its sources and check that each
    source got its verdict: the blocklist's totals as xdp-block stats
    reads them, xdp-filter's per-action counters, and the last verdict."""
    want, before = {}, {}
    for c in cells:
        t = targets[c.target]
        if t.kind == "blocklist":
            key = (t.pin, "blocked" if c.expect == XDP_DROP else "passed")
            want[key] = want.get(key, 0) + SOURCES
    for pin in {p for p, _ in want}:
        before[pin] = _stats(xdp_block, fs_base, pin)
    for c in cells:
        t = targets[c.target]
        stats = bpf.PerCpuArray(objs[c.target].map_fd("xdp_stats_map"), ["packets", "bytes"]) \
            if t.kind == "peer" else None
        got0 = stats.total(c.expect)["packets"] if stats else 0
        ret = timedrun.TimedRun(fds[c.name], frame, SOURCES).call()[0]
        if ret != c.expect:
            raise BenchError(f"blocklist bench: {c.name} gives {verdict_name(ret)}, expected "
                             f"{verdict_name(c.expect)}: not timing a wrong program")
        if stats and stats.total(c.expect)["packets"] - got0 != SOURCES:
            raise BenchError(f"blocklist bench: {c.name}: xdp-filter gave {verdict_name(c.expect)} to "
                             f"{stats.total(c.expect)['packets'] - got0} of {SOURCES} sources")
    for pin in before:
        after = _stats(xdp_block, fs_base, pin)
        # Every frame is in one of the verdict totals; "uncounted" counts
        # again the frames decided by an entry without a counter slot of
        # its own (the million's entries beyond the slots).
        for total in ("passed", "blocked", "allowed", "malformed"):
            d, w = after[total] - before[pin][total], want.get((pin, total), 0)
            if d != w:
                raise BenchError(f"blocklist bench: list {pin}: {total} went up by {d}, expected {w}: "
                                 "a source did not get its verdict")


def micro_worker(conn, ns_path, mnt_path, fs_base, cpu, targets, cells, sources, hold_devs, frame,
                 xdp_block, loads, rounds, calls, quiet_wait):
    """Child process: the per-packet bench of the blocklist, in the
    namespace at @ns_path and the bpffs' mount namespace; as micro.worker,
    but every call is SOURCES runs (each source once) and each cell's
    verdicts are checked on the first load.  Sends back {"ns": {cell:
    [ns per run, per round]}, "load": [...], "sizes": {...}, "busy": [...],
    "retried": n} or {"error": message}."""
    try:
        bpf.setns(ns_path)
        enter_mounts(mnt_path)
        rng = random.Random(4)
        result = {c.name: [] for c in cells}
        load_of, busy, retried, sizes = [], [], 0, {}
        for ld in range(loads):
            if quiet_wait:
                host.wait_quiet(quiet_wait, sample=0.1, exclude={cpu})
            objs, spread, fds, links = _micro_load(targets, cells, sources, fs_base, rng, hold_devs)
            try:
                if ld == 0:
                    # xdp-block runs here: before this process takes the CPU.
                    _verify(targets, cells, objs, fds, frame, fs_base, xdp_block)
                    timedrun.pin(cpu)
                    sizes = {t: timedrun.prog_size(objs[t].prog_fd(targets[t].section))[0] for t in targets}
                runs = {c.name: timedrun.TimedRun(fds[c.name], frame, SOURCES) for c in cells}
                for r in runs.values():
                    r.call()  # warm
                for _ in range(rounds):
                    before = host.cpu_times()
                    for c in rng.sample(cells, len(cells)):
                        best, n = None, 0
                        for _ in range(calls + 5):
                            ret, t, preempted = runs[c.name].call()
                            if ret != c.expect:
                                raise BenchError(f"blocklist bench: {c.name} gave {verdict_name(ret)}")
                            if preempted:
                                retried += 1
                                continue
                            best = t if best is None else min(best, t)
                            n += 1
                            if n == calls:
                                break
                        result[c.name].append((best if best is not None else t) / SOURCES)
                    busy.append(host.busy_between(before, host.cpu_times(), exclude={cpu}))
                    load_of.append(ld)
            finally:
                _close(objs, spread, links)
        conn.send({"ns": result, "load": load_of, "sizes": sizes, "busy": busy, "retried": retried,
                   "calls": calls})
    except (OSError, BenchError, KeyError) as e:
        conn.send({"error": str(e)})
    finally:
        conn.close()


def micro_figures(raw, cells):
    ns = raw["ns"]
    floor = ns["floor"]
    out = {"repeat": SOURCES, "calls": raw["calls"], "loads": len(set(raw["load"])), "rounds": len(raw["load"]),
           "xlated_insns": raw["sizes"], "busy_other_cpus": [round(b, 3) for b in raw["busy"]],
           "preempted_calls_rerun": raw["retried"], "cells": {}}
    for c in cells:
        row = {"ns": report.summary(ns[c.name])}
        if c.name != "floor":
            row["over_floor"] = report.summary(report.paired(ns[c.name], floor, lambda x, y: x - y))
        out["cells"][c.name] = row
    med = lambda n: out["cells"][n]["over_floor"]["median"]  # noqa: E731
    out["aa_ns"] = round(med("100k/listed") - med("100k-copy/listed"), 2)
    return out


# --- live --------------------------------------------------------------------

# name, label, how it drops (live._check), list, sources (the frames' sources
# are spread over the list, or one listed address: "hot")
LIVE = [
    ("floor", "floor (XDP_DROP only), native", "xdp", None, None),
    ("blocklist-100k", "blocklist, native", "xdp", "100k", "listed"),
    ("blocklist-100k-copy", "blocklist again (A/A), native", "xdp", "100k", "listed"),
    ("blocklist-100k-hot", "blocklist, one source, native", "xdp", "100k", "hot"),
    ("nft-set-100k", "nftables ingress, interval set", "early", "100k", "listed"),
    ("ipset-100k", "iptables raw + ipset hash:net", "prerouting", "100k", "listed"),
    ("blocklist-1M", "blocklist, native", "xdp", "1M", "listed"),
    ("nft-set-1M", "nftables ingress, interval set", "early", "1M", "listed"),
    ("ipset-1M", "iptables raw + ipset hash:net", "prerouting", "1M", "listed"),
    ("blocklist-10k32", "blocklist, native", "xdp", EXACT_LIST, "listed"),
    ("xdp-filter-ip-10k32", "xdp-filter alw_ip, native", "xdp", EXACT_LIST, "listed"),
]
GEN_SETS = 4  # the generator's source sets: 100k listed and hot, 1M, 10k32
LIST_LABEL = {"100k": f"{TARGET:,} prefixes", "1M": "1,000,000 prefixes", EXACT_LIST: f"{EXACT:,} /32"}


def gen_worker(conn, ns_path, cpu, sources, hold_devs):
    """Child process: the live generator, as live.worker, but one
    spread-redirect per source set (@sources: {set: bytes}), each held on
    one of @hold_devs.  Messages: ("prep", key, set, dev, frame), ("runs",
    [(key, frames, warm)]), ("quit",)."""
    objs, links = [], []
    try:
        bpf.setns(ns_path)
        timedrun.pin(cpu)
        fds = {}
        for (name, data), dev in zip(sources.items(), hold_devs):
            objs.append(load_spread(data))
            fds[name] = objs[-1].prog_fd("spread-redirect")
            links.append(bpf.hold(fds[name], dev))
        runs = {}
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg[0] == "quit":
                break
            if msg[0] == "prep":
                _, key, name, dev, frame = msg
                runs[key] = timedrun.TimedRun(fds[name], frame, 1, live_ifindex=socket.if_nametoindex(dev),
                                              batch_size=live.BATCH)
                conn.send(("ok",))
            elif msg[0] == "runs":
                out = []
                for key, frames, warm in msg[1]:
                    if warm:
                        runs[key].set_repeat(warm)
                        runs[key].call()
                    runs[key].set_repeat(frames)
                    out.append(runs[key].call())
                conn.send(("ok", out))
    except (OSError, BenchError) as e:
        conn.send(("error", str(e)))
    finally:
        for fd in links:
            os.close(fd)
        for o in objs:
            o.close()
        conn.close()


def _rule_packets(ns):
    """Packets the first rule of the raw table's PREROUTING chain matched."""
    out = ns.run(["iptables", "-t", "raw", "-nvxL", "PREROUTING"], check=True).stdout.splitlines()
    return int(out[2].split()[0])


class LiveBench:
    """The receivers (one namespace each), the generator child; run rounds, close."""

    def __init__(self, nss, tx, fs, lists, obj, start_pinned, start, log):
        self.tx, self.fs, self.obj = tx, fs, obj
        self.configs = [c for c in LIVE if c[3] is None or c[3] in lists.lists]
        self.kinds = {n: k for n, _, k, _, _ in self.configs}
        self.list_of = {n: lst for n, _, _, lst, _ in self.configs}
        self.set_of = {n: (lst, src) for n, _, _, lst, src in self.configs if lst}
        self.rx, self.holders, self.setup_s = {}, [], {}
        self.conn = None
        exact = [prefixes.dotted(a) for a, _ in lists.lists[EXACT_LIST].prefixes()]
        files = {}
        for i, (name, _, kind, lst, _) in enumerate(self.configs):
            rns = nss.add(f"bl-{name}")
            tdev, smac, dmac = f"tx-bl{i}", f"02:00:00:bf:{0x10 + i:02x}:01", f"02:00:00:bf:{0x10 + i:02x}:02"
            tx.ip("link", "add", tdev, "address", smac, "type", "veth",
                  "peer", "name", "rx", "address", dmac, "netns", rns.name)
            rns.ip("addr", "add", "198.18.0.2/32", "dev", "rx")
            rns.ip("link", "set", "dev", "rx", "up")
            tx.ip("link", "set", "dev", tdev, "up")
            self.rx[name] = (rns, tdev, smac, dmac)
            t0 = time.monotonic()
            if name == "floor" or name.startswith("blocklist-"):
                self._attach(name)
            elif name.startswith("xdp-filter-ip"):
                conn = start(live.holder, rns.path, peers.xdp_filter_ip(exact, expect=None), "rx")
                live._reply(conn)
                self.holders.append(conn)
            else:
                rns.run(["ethtool", "-K", "rx", "gro", "on"], check=True)
                if name.startswith("nft-set"):
                    files.setdefault(("nft", lst), lists.file(f"{lst}.nft", lists.lists[lst].nft("rx")))
                    rns.run(["nft", "-f", files["nft", lst]], check=True, timeout=300)
                else:
                    files.setdefault(("ipset", lst), lists.file(f"{lst}.ipset", lists.lists[lst].ipset()))
                    rns.run(["ipset", "restore", "-file", files["ipset", lst]], check=True, timeout=300)
                    rns.run(["iptables", "-t", "raw", "-A", "PREROUTING", "-m", "set", "--match-set",
                             "blocked", "src", "-j", "DROP"], check=True)
            if lst and not name.startswith("blocklist-"):
                self.setup_s[name] = round(time.monotonic() - t0, 2)
                log(f"blocklist: {name} set up in {self.setup_s[name]:.1f} s")
        sets = sorted(set(self.set_of.values()))
        self.conn = start_pinned(gen_worker, tx.path, {s: lists.sources[s] for s in sets},
                                 [f"blg{i}" for i in range(len(sets))])
        for name, (rns, tdev, smac, dmac) in self.rx.items():
            frame = packets.live_frame(smac, dmac, live.PORT)
            if name == "floor":
                for s in sets:  # the floor is paired with each configuration through its sources
                    self._call("prep", "floor@%s/%s" % s, s, tdev, frame)
            else:
                self._call("prep", name, self.set_of[name], tdev, frame)
        self.frames, self.retried = {}, 0

    def _attach(self, name):
        rns = self.rx[name][0]
        if name == "floor":
            rns.ip("-force", "link", "set", "dev", "rx", "xdpdrv", "obj", str(paths.ROOT / FLOOR[0]),
                   "sec", FLOOR[1])
        else:
            self.fs.run(["ip", "-force", "link", "set", "dev", "rx", "xdpdrv", "obj", self.obj,
                         "sec", "blocklist"], self.list_of[name], ns=rns, what="attaching the blocklist")

    def _call(self, *msg):
        self.conn.send(msg)
        try:
            reply = self.conn.recv()
        except EOFError:
            raise BenchError("the blocklist generator process died") from None
        if reply[0] == "error":
            raise BenchError(f"blocklist generator: {reply[1]}")
        return reply[1:]

    def _floor_key(self, name):
        return "floor@%s/%s" % self.set_of[name]

    def run_set(self, items, sent):
        """As live.Live.run_set."""
        for _ in range(live.RETRIES):
            results = self._call("runs", [(n, f, live.WARM) for n, f in items])[0]
            for (n, f), (retval, _, _) in zip(items, results):
                sent[n] = sent.get(n, 0) + f + live.WARM
                if retval != 0:
                    raise BenchError(f"generator run for {n} returned {retval}")
            if not any(pre for _, _, pre in results):
                break
            self.retried += 1
        return [ns / f for (_, f), (_, ns, _) in zip(items, results)]

    def _counters(self, name):
        c = live.counters(self.rx[name][0], "rx")
        if self.kinds.get(name) == "prerouting":
            c["rule"] = _rule_packets(self.rx[name][0])
        return c

    def check(self, before, sent):
        """As live.Live.check (the floor's runs under every floor@ key); an
        ipset rule must also have matched every frame."""
        total = {}
        for key, n in sent.items():
            name = "floor" if key.startswith("floor@") else key
            total[name] = total.get(name, 0) + n
        now = dict(before)
        for name, n in total.items():
            after = self._counters(name)
            for _ in range(50):
                if after["frames"] - before[name]["frames"] >= n:
                    break
                time.sleep(0.01)
                after = self._counters(name)
            live._check(name, self.kinds[name], {k: v for k, v in before[name].items() if k != "rule"},
                        {k: v for k, v in after.items() if k != "rule"}, n)
            if "rule" in after and after["rule"] - before[name]["rule"] != n:
                raise BenchError(f"{name}: the ipset rule matched {after['rule'] - before[name]['rule']} "
                                 f"of {n} frames")
            now[name] = after
        return now

    def calibrate(self, run_s, probe):
        self.counters = {n: self._counters(n) for n in self.rx}
        keys = [n for n in self.rx if n != "floor"] + [self._floor_key(n) for n in self.rx if n != "floor"]
        for key in dict.fromkeys(keys):
            sent = {}
            per = min(self.run_set([(key, probe)] * 3, sent))
            self.counters = self.check(self.counters, sent)
            self.frames[key] = max(10000, int(run_s * 1e9 / per) // 1000 * 1000)
        return dict(self.frames)

    def reload(self, rng):
        names = [n for n in self.rx if n == "floor" or n.startswith("blocklist-")] + ["holders"]
        rng.shuffle(names)
        for n in names:
            if n == "holders":
                for conn in self.holders:
                    conn.send(("reload",))
                    live._reply(conn)
            else:
                self._attach(n)

    def round(self, rnd):
        """As live.Live.round: {config: (floor ns, ns)}."""
        names = [n for n in self.rx if n != "floor"]
        k = rnd % len(names)
        out, sent = {}, {}
        for name in names[k:] + names[:k]:
            fk = self._floor_key(name)
            pair = [(fk, self.frames[fk]), (name, self.frames[name])]
            if rnd % 2:
                pair.reverse()
            ns = dict(zip((n for n, _ in pair), self.run_set(pair, sent)))
            out[name] = (ns[fk], ns[name])
        self.counters = self.check(self.counters, sent)
        return out

    def close(self):
        for conn in [c for c in [self.conn] + self.holders if c]:
            try:
                conn.send(("quit",))
            except OSError:
                pass


def live_figures(configs, rounds, frames, busy, retried):
    out = {"rounds": len(rounds), "batch_size": live.BATCH, "configs": {}, "ratios": {}}
    floor_all = [pair[0] for r in rounds for pair in r.values()]
    for name, label, _, lst, src in configs:
        if name == "floor":
            ns = floor = floor_all
        else:
            floor, ns = [r[name][0] for r in rounds], [r[name][1] for r in rounds]
        out["configs"][name] = {
            "label": label + (f", {LIST_LABEL[lst]}" if lst else ""), "list": lst, "sources": src,
            "frames_per_run": frames.get(name, frames.get("floor@100k/listed")), "runs": len(ns),
            "mpps": report.summary([1e3 / x for x in ns], 3),
            "ns_per_frame": report.summary(ns),
            "over_floor_ns": report.summary(report.paired(ns, floor, lambda x, y: x - y)),
            "rate_vs_floor": report.summary(report.paired(floor, ns, lambda f, x: f / x), 3),
        }
    # The blocklist's frames per second over each other configuration of
    # its list, from two runs of the same round: > 1, the blocklist drops more.
    for name, _, _, lst, _ in configs:
        for bl in (f"blocklist-{lst}", f"blocklist-{lst}-copy"):
            if lst and name != bl and not name.startswith("blocklist-") and bl in out["configs"]:
                out["ratios"][f"{bl}/{name}"] = report.summary(
                    [r[name][1] / r[bl][1] for r in rounds], 3)
    out["busy_other_cpus"] = [round(b, 3) for b in busy]
    out["preempted_runs_rerun"] = retried
    out["raw_ns_per_frame"] = [{n: [round(v, 2) for v in pair] for n, pair in r.items()} for r in rounds]
    return out


# --- the part, as bench.py runs it -------------------------------------------

def check_tools():
    """The first missing tool, or None."""
    for tool in ("nft", "ipset", "iptables", "bpftool", "nsenter", "ethtool"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get(
                "PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":") + ["/usr/sbin", "/sbin"]):
            return tool
    return None


def run(args, children, nss, tx, log):
    """The whole part; returns its figures."""
    out = {"meta": {}}
    t0 = time.monotonic()
    log("blocklist: generating the lists" + (" (QUICK: no 1,000,000 list)" if args.quick else ""))
    lists = Lists(args.quick)
    fs = None
    try:
        fs = Bpffs(children.start, list(lists.lists))
        out["meta"]["lists"] = {n: {"prefixes": lst.count, "lengths": lst.lengths()}
                                for n, lst in lists.lists.items()}
        out.update(load_lists(fs, lists, args.xdp_block, args.blocklist_object, log))
        out["meta"]["seconds_setup"] = round(time.monotonic() - t0, 1)

        targets, cells = micro_spec(lists, args.blocklist_object)
        devs = [f"blh{i}" for i in range(len(cells))] + [f"blg{i}" for i in range(GEN_SETS)]
        for i in range(0, len(devs), 2):
            tx.ip("link", "add", devs[i], "type", "veth", "peer", "name",
                  devs[i + 1] if i + 1 < len(devs) else devs[i] + "p")
        frame = packets.live_frame("02:00:00:be:0c:01", "02:00:00:be:0c:02", live.PORT)
        if not args.quick:
            host.wait_quiet(args.quiet_wait, log=log)
        log(f"blocklist per-packet bench: {args.blocklist_loads} loads x {args.rounds} rounds on CPU {args.cpu}")
        t1 = time.monotonic()
        conn = children.start(micro_worker, tx.path, fs.mnt, fs.base, args.cpu, targets, cells,
                              lists.sources, devs, frame, str(args.xdp_block), args.blocklist_loads, args.rounds,
                              MICRO_CALLS, 0 if args.quick else 0.5)
        try:
            raw = conn.recv()
        except EOFError:
            raise BenchError("the blocklist per-packet bench process died") from None
        if "error" in raw:
            raise BenchError(raw["error"])
        out["micro"] = micro_figures(raw, cells)
        out["meta"]["seconds_micro"] = round(time.monotonic() - t1, 1)

        t2 = time.monotonic()
        lv = LiveBench(nss, tx, fs, lists, args.blocklist_object, children.start_pinned(args.cpu),
                       children.start, log)
        try:
            out["live_setup_s"] = lv.setup_s
            if not args.quick:
                host.wait_quiet(args.quiet_wait, log=log)
            log(f"blocklist live bench: {args.blocklist_rounds} rounds on CPU {args.cpu}")
            rng = random.Random(5)
            frames = lv.calibrate(args.run_s, 20000 if args.quick else 100000)
            rounds, busy = [], []
            for rnd in range(args.blocklist_rounds):
                lv.reload(rng)
                if not args.quick:
                    host.wait_quiet(1, sample=0.1, exclude={args.cpu})
                a = host.cpu_times()
                rounds.append(lv.round(rnd))
                busy.append(host.busy_between(a, host.cpu_times(), exclude={args.cpu}))
        finally:
            lv.close()
        out["live"] = live_figures(lv.configs, rounds, frames, busy, lv.retried)
        out["meta"]["seconds_live"] = round(time.monotonic() - t2, 1)
    finally:
        # Every process that may use the bpffs first: removing its directory
        # takes the mounts away under any that still runs.
        children.stop()
        if fs:
            fs.close()
        lists.close()
    out["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    return out


# --- verdict and tables ------------------------------------------------------

def targets(bl):
    """The blocklist's targets, each against the same round: ([target
    dicts as report.verdict takes them], [reasons not to judge])."""
    lv, load = bl["live"], bl["load_s"]
    cfg = lv["configs"]
    out = []
    for peer, what in (("nft-set-100k", "the nftables set rule"), ("ipset-100k", "iptables + ipset")):
        v = lv["ratios"][f"blocklist-100k/{peer}"]["median"]
        noise = abs(v - lv["ratios"][f"blocklist-100k-copy/{peer}"]["median"])
        out.append({"target": f"live: blocklist frames per second / {peer}'s, {TARGET:,} prefixes, "
                              "spread sources, paired rounds",
                    "value": v, "limit": f">= {MIN_RATE_VS_PEER}",
                    "status": report._status(v - MIN_RATE_VS_PEER, noise),
                    "text": f"live: blocklist at {v:.2f}x the frames per second of {what} "
                            f"({TARGET:,} prefixes, >= {MIN_RATE_VS_PEER}; A/A {noise:.2f})"})
    v = cfg["blocklist-100k"]["rate_vs_floor"]["median"]
    noise = abs(v - cfg["blocklist-100k-copy"]["rate_vs_floor"]["median"])
    out.append({"target": f"live: blocklist frames per second / the floor's, {TARGET:,} prefixes, "
                          "spread sources, paired rounds",
                "value": v, "limit": f">= {MIN_RATE_VS_FLOOR}",
                "status": report._status(v - MIN_RATE_VS_FLOOR, noise),
                "text": f"live: blocklist at {v:.3f}x the floor's frames per second "
                        f"({TARGET:,} prefixes, >= {MIN_RATE_VS_FLOOR}; A/A {noise:.3f})"})
    case, worst = max(load.items(), key=lambda kv: kv[1])
    out.append({"target": f"xdp-block load of {TARGET:,} prefixes, wall, the slowest case",
                "value": worst, "case": case, "limit": f"<= {MAX_LOAD_S} s",
                "status": "met" if worst <= MAX_LOAD_S else "MISSED",
                "text": f"xdp-block load of {TARGET:,} prefixes in {worst:.2f} s at worst "
                        f"({case.replace('_', ' ')}; <= {MAX_LOAD_S} s)"})
    short = [] if lv["rounds"] >= report.MIN_ROUNDS else \
        [f"{lv['rounds']} blocklist live rounds < {report.MIN_ROUNDS}"]
    return out, short


def _pm(s, sign=True):
    return report._pm(s, sign, 2 if abs(s["median"]) < 100 else 1)


def tables(bl, cpu):
    m, lv = bl["micro"], bl["live"]
    cells = m["cells"]
    per_load = m["rounds"] // max(1, m["loads"])
    lines = [f"Blocklist, per-packet cost (BPF_PROG_TEST_RUN behind spread-tail, CPU {cpu}, {m['loads']} "
             f"loads x {per_load} rounds, each the fastest of {m['calls']} calls of {SOURCES} runs, one per "
             "source): ns over the floor; median±half IQR",
             f"{'IPv4 prefixes':<22}{'listed, spread':>16}{'unlisted, spread':>18}{'listed, one source':>20}"]
    for name, n, _ in LISTS:
        if f"{name}/unlisted" not in cells:
            continue
        cols = [_pm(cells[f"{name}/{k}"]["over_floor"]) if f"{name}/{k}" in cells else "-"
                for k in ("listed", "unlisted", "hot")]
        lines.append(f"{size_label(n):<22}{cols[0]:>16}{cols[1]:>18}{cols[2]:>20}")
    lines.append(f"{size_label(EXACT) + ' /32':<22}{_pm(cells[EXACT_LIST + '/listed']['over_floor']):>16}"
                 f"{_pm(cells[EXACT_LIST + '/unlisted']['over_floor']):>18}{'-':>20}")
    lines.append(f"{'  xdp-filter alw_ip':<22}{_pm(cells['xdp-filter-ip/listed']['over_floor']):>16}"
                 f"{_pm(cells['xdp-filter-ip/unlisted']['over_floor']):>18}{'-':>20}")
    lines.append(f"floor behind spread-tail: {cells['floor']['ns']['median']:.1f} ns per run. A/A: the "
                 f"blocklist on {TARGET:,} prefixes, listed, minus a second copy: {m['aa_ns']:+.2f} ns.")
    lines.append(f"Sources: {SOURCES:,} per column, each listed one inside a random prefix of the list, "
                 "each unlisted one outside all; \"one source\": one listed address every time.")
    lines.append(f"xdp-filter: xdpfilt_alw_ip.o with the {EXACT:,} addresses (value SRC); it also looks up "
                 "the destination.")
    load = bl["load_s"]
    lines += ["", f"xdp-block load of {TARGET:,} prefixes (wall, one each): " + ", ".join(
        f"{k.replace('_', ' ')} {v:.2f} s" for k, v in load.items())]
    setup = ", ".join(f"{n} {s:.1f} s" for n, s in bl.get("live_setup_s", {}).items())
    lines.append("Setting up the peers' lists: " + (setup or "-") + "; xdp-block load: " + ", ".join(
        f"{n} {s:.1f} s" for n, s in bl["setup_s"].items()))
    lines += ["", f"Blocklist, live frames (spread sources: {SOURCES:,} listed addresses per list; generator "
                  f"and receiver on CPU {cpu}, {lv['rounds']} rounds, batches of {lv['batch_size']}): median "
                  "[min-max]; over floor and ratios paired per round",
              f"{'configuration':<48}{'Mpps':>7}{'[min-max]':>14}{'ns/frame':>10}{'over floor':>14}"
              f"{'x floor':>9}{'blocklist x':>13}"]
    for name, c in lv["configs"].items():
        ratio = lv["ratios"].get(f"blocklist-{c['list']}/{name}")
        r = f"{ratio['median']:.2f}" if ratio else "-"
        mp = c["mpps"]
        lines.append(f"{c['label']:<48}{mp['median']:>7.2f}{mp['min']:>7.2f}-{mp['max']:<6.2f}"
                     f"{c['ns_per_frame']['median']:>10.1f}{report._pm(c['over_floor_ns'], True):>14}"
                     f"{c['rate_vs_floor']['median']:>9.3f}{r:>13}")
    lines.append("blocklist x: the blocklist's frames per second (same list, same round) over this one's.")
    return lines
