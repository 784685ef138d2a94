# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Per-packet cost: each program on each frame with BPF_PROG_TEST_RUN.

The run is a number of *loads*.  Each load opens every program afresh, in a
new random order, holds them all in the XDP dispatcher (see ipxdp.bpf.hold),
checks every verdict, runs a few rounds, and closes them again.  Where the
kernel puts a program's JIT image, and so where it sits in the dispatcher's
search, is fixed for one load and changes from load to load; on some CPUs
that alone moves a program's cost by up to 1 ns, so a figure taken from one
load is one draw of that placement.  Pooling many loads averages it out.

A round runs every frame through every program: frames in a new order,
and for each frame the programs (the floor among them) in a new order,
back to back.  Each program's cell in a round is the minimum of a few short
calls (an interrupt or a slow moment of the vCPU only ever adds time); a
call during which the process was preempted anyway does not count and is
made again.  "Over floor" is a cell minus the floor's cell on the same
frame in the same round.

Runs in a child process, pinned to one CPU at real-time priority, inside
the bench's namespace.
"""

import os
import random

import host
import timedrun
from host import BenchError
from ipxdp import bpf
from ipxdp.bpf import verdict_name

RETRIES = 5  # extra calls a cell may make when calls are preempted


def _load(programs, order, hold_devs, frames):
    """Load every program (in @order), check its verdict on every frame,
    hold it; returns (objects, fds, links)."""
    objs, links = {}, []
    try:
        for p in order:
            objs[p] = programs[p].load()
        fds = {p: objs[p].prog_fd(programs[p].section) for p in programs}
        for name, data, expect in frames:
            for p in programs:
                if expect[p] is None:  # not run on this frame
                    continue
                got = timedrun.TimedRun(fds[p], data, 1).call()[0]
                if got != expect[p]:
                    raise BenchError(f"{p} gives {verdict_name(got)} on {name}, "
                                     f"expected {verdict_name(expect[p])}: not timing a wrong program")
        for p, dev in zip(programs, hold_devs):
            links.append(bpf.hold(fds[p], dev))
        return objs, fds, links
    except BaseException:
        _close(objs, links)
        raise


def _close(objs, links):
    for fd in links:
        os.close(fd)
    for o in objs.values():
        o.close()


def worker(conn, ns_path, cpu, programs, hold_devs, frames, loads, rounds, call_ms, calls, quiet_wait):
    """Child process body, in the namespace at @ns_path.
    @programs: {name: peers.Program}, the floor first; @frames: [(name, bytes, {program: verdict})],
    a verdict None for a program not run on that frame; @loads loads of
    @rounds rounds, each cell the minimum of @calls calls of about @call_ms
    (the floor's time).  Before each load it waits up to @quiet_wait
    seconds for the other CPUs to be quiet.  Sends back
    {"repeat": n, "ns": {program: {frame: [ns per round]}}, "load": [load of
    each round], "sizes": {program: (insns, jited bytes)}, "busy": [per
    round], "retried": calls made again} or {"error": message}."""
    try:
        bpf.setns(ns_path)
        timedrun.pin(cpu)
        progs = list(programs)
        rng = random.Random(1)
        result = {p: {name: [] for name, _, _ in frames} for p in progs}
        load_of, busy, retried, repeat, sizes = [], [], 0, None, None
        for ld in range(loads):
            if quiet_wait:
                host.wait_quiet(quiet_wait, sample=0.1, exclude={cpu})
            order = progs[:]
            rng.shuffle(order)
            objs, fds, links = _load(programs, order, hold_devs, frames)
            try:
                runs = {(p, name): timedrun.TimedRun(fds[p], data, 1)
                        for p in progs for name, data, expect in frames if expect[p] is not None}
                if repeat is None:
                    # The repeat count that makes a floor call last call_ms.
                    probe = runs[progs[0], frames[0][0]]
                    probe.set_repeat(20000)
                    per = min(probe.call()[1] for _ in range(5)) / probe.repeat
                    repeat = max(1000, int(call_ms * 1e6 / per))
                    sizes = {p: timedrun.prog_size(fds[p]) for p in progs}
                for r in runs.values():
                    r.set_repeat(repeat)
                    r.call()  # warm every program and frame once
                for _ in range(rounds):
                    before = host.cpu_times()
                    order = list(range(len(frames)))
                    rng.shuffle(order)
                    for fi in order:
                        name = frames[fi][0]
                        for p in rng.sample(progs, len(progs)):
                            if (p, name) not in runs:
                                continue
                            best, n = None, 0
                            for _ in range(calls + RETRIES):
                                _, t, preempted = runs[p, name].call()
                                if preempted:
                                    retried += 1
                                    continue
                                best = t if best is None else min(best, t)
                                n += 1
                                if n == calls:
                                    break
                            if best is None:  # preempted every time: keep the last
                                best = t
                            result[p][name].append(best / repeat)
                    busy.append(host.busy_between(before, host.cpu_times(), exclude={cpu}))
                    load_of.append(ld)
            finally:
                _close(objs, links)
        conn.send({"repeat": repeat, "ns": result, "load": load_of, "sizes": sizes, "busy": busy,
                   "retried": retried, "calls": calls})
    except (OSError, BenchError, KeyError) as e:
        conn.send({"error": str(e)})
    finally:
        conn.close()
