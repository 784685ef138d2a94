# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Per-packet cost: each program on each frame with BPF_PROG_TEST_RUN.

A round runs every frame once through every program and through the floor,
one large-repeat call each, back to back: frames in a new order every
round, programs rotated.  Each call is timed from userspace and divided by
its repeat count.  "Over floor" is, per round, the program's ns minus the
floor's ns on the same frame, measured next to it; the table gives the
median of those differences and their spread.

Runs in a child process, pinned to one CPU at real-time priority, inside
the bench's namespace, where every program is held in the XDP dispatcher
(see ipxdp.bpf.hold).  A call during which the process was preempted anyway
is run again (up to 5 times).
"""

import os
import random

import host
import timedrun
from host import BenchError
from ipxdp import bpf
from ipxdp.bpf import verdict_name

RETRIES = 5


def worker(conn, ns_path, cpu, objects, hold_devs, frames, rounds, call_ms, quiet_wait):
    """Child process body, in the namespace at @ns_path.
    @objects: {program: (path, section)};
    @frames: [(name, bytes, {program: verdict})].  Before each round it
    waits up to @quiet_wait seconds for the other CPUs to be quiet.  Sends
    back {"repeat": n, "ns": {program: {frame: [ns per round]}},
    "sizes": {program: (insns, jited bytes)}, "busy": [per round]} or
    {"error": message}."""
    try:
        bpf.setns(ns_path)
        timedrun.pin(cpu)
        loaded = {p: bpf.BpfObject(path) for p, (path, _) in objects.items()}
        fds = {p: loaded[p].prog_fd(sec) for p, (_, sec) in objects.items()}
        links = [bpf.hold(fds[p], dev) for p, dev in zip(objects, hold_devs)]

        runs = {}
        for name, data, expect in frames:
            for p in objects:
                r = timedrun.TimedRun(fds[p], data, 1)
                got = r.call()[0]
                if got != expect[p]:
                    raise BenchError(f"{p} gives {verdict_name(got)} on {name}, "
                                     f"expected {verdict_name(expect[p])}: not timing a wrong program")
                runs[p, name] = r

        # Calibrate: the repeat count that makes a floor call last call_ms.
        probe = runs["floor", frames[0][0]]
        probe.set_repeat(20000)
        per = min(probe.call()[1] for _ in range(5)) / probe.repeat  # min: undisturbed
        repeat = max(1000, int(call_ms * 1e6 / per))
        for r in runs.values():
            r.set_repeat(repeat)
        for r in runs.values():  # warm every program and frame once
            r.call()

        progs = list(objects)
        result = {p: {name: [] for name, _, _ in frames} for p in progs}
        busy = []
        retried = 0
        for rnd in range(rounds):
            if quiet_wait:
                host.wait_quiet(quiet_wait, sample=0.1, exclude={cpu})
            before = host.cpu_times()
            order = list(range(len(frames)))
            random.Random(rnd).shuffle(order)
            for i, fi in enumerate(order):
                name = frames[fi][0]
                k = (rnd + i) % len(progs)
                for p in progs[k:] + progs[:k]:
                    for _ in range(RETRIES):  # a preempted call is run again
                        _, t, preempted = runs[p, name].call()
                        if not preempted:
                            break
                        retried += 1
                    result[p][name].append(t / repeat)
            busy.append(host.busy_between(before, host.cpu_times(), exclude={cpu}))
        sizes = {p: timedrun.prog_size(fds[p]) for p in progs}
        for fd in links:
            os.close(fd)
        conn.send({"repeat": repeat, "ns": result, "sizes": sizes, "busy": busy, "retried": retried})
    except (OSError, BenchError) as e:
        conn.send({"error": str(e)})
    finally:
        conn.close()
