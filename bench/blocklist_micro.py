# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The blocklist's per-packet bench: each cell is a program behind
spread-tail (bench/progs/spread.c), which gives every run the next of
SOURCES source addresses and tail-calls the program, the floor's cell
too, so that a cell minus the floor is what the program costs.

A call is SOURCES runs, every source once.  Otherwise it is micro.py's
method: every program and every cell's spread-tail loaded afresh for each
load, in random orders, held in the XDP dispatcher; rounds of every cell
in a new order; a cell in a round is the fastest of a few calls, a call
during which the process was preempted made again.  The verdict of every
source is checked once, on the first load; the verdict of the last run of
every call, on every call.
"""

import json
import os
import random
import subprocess

import host
import report
import spread
import timedrun
from bpffs import Object, enter_mounts
from host import BenchError
from ipxdp import bpf
from ipxdp.bpf import XDP_DROP, verdict_name
from prefixes import SOURCES

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


def _load(targets, cells, sources, fs_base, rng, hold_devs):
    """Every target and every cell's spread-tail loaded afresh, in random
    orders, each spread-tail held on a device; returns ({target: object},
    {cell: spread.o object}, {cell: spread-tail fd}, links)."""
    objs, tails, links = {}, {}, []
    try:
        for t in rng.sample(list(targets), len(targets)):
            objs[t] = targets[t].load(fs_base)
        for c in rng.sample(cells, len(cells)):
            t = targets[c.target]
            tails[c.name] = spread.load(sources[c.sources], objs[c.target].prog_fd(t.section),
                                        bpf.BPF_XDP if t.kind == "peer" else 0)
        fds = {c.name: tails[c.name].prog_fd("spread-tail") for c in cells}
        for c, dev in zip(cells, hold_devs):
            links.append(bpf.hold(fds[c.name], dev))
        return objs, tails, fds, links
    except BaseException:
        _close(objs, tails, links)
        raise


def _close(objs, tails, links):
    for fd in links:
        os.close(fd)
    for o in list(tails.values()) + list(objs.values()):
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


def worker(conn, ns_path, mnt_path, fs_base, cpu, targets, cells, sources, hold_devs, frame,
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
            objs, tails, fds, links = _load(targets, cells, sources, fs_base, rng, hold_devs)
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
                _close(objs, tails, links)
        conn.send({"ns": result, "load": load_of, "sizes": sizes, "busy": busy, "retried": retried,
                   "calls": calls})
    except (OSError, BenchError, KeyError) as e:
        conn.send({"error": str(e)})
    finally:
        conn.close()


def figures(raw, cells, aa_pair):
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
    out["aa_ns"] = round(med(aa_pair[0]) - med(aa_pair[1]), 2)
    return out
