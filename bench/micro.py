# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Per-packet cost: each program on each frame with BPF_PROG_TEST_RUN.

A round runs every frame once through every program and through the floor,
one large-repeat call each, back to back: frames in a new order every
round, programs rotated.  Each call is timed from userspace and divided by
its repeat count.  "Over floor" is, per round, the program's ns minus the
floor's ns on the same frame, measured next to it; the table gives the
median of those differences and their spread.

Runs in a child process, pinned to one CPU, inside the bench's namespace,
where every program is held in the XDP dispatcher (see timedrun.hold).
"""

import os
import random

import timedrun
from bpfrun import BpfObject
from netns import BenchError

PROGRAMS = ["drop-tcp", "count", "port-9090"]
VERDICT_NAMES = {0: "ABORTED", 1: "DROP", 2: "PASS", 3: "TX", 4: "REDIRECT"}


def worker(conn, ns, cpu, objects, hold_devs, frames, rounds, call_ms):
    """Child process body.  @objects: {program: (path, section)};
    @frames: [(name, bytes, {program: verdict})].  Sends back
    {"repeat": n, "ns": {program: {frame: [ns per round]}}} or an error."""
    try:
        timedrun.setns(ns)
        os.sched_setaffinity(0, {cpu})
        loaded = {p: BpfObject(path) for p, (path, _) in objects.items()}
        fds = {p: loaded[p].prog_fd(sec) for p, (_, sec) in objects.items()}
        links = [timedrun.hold(fds[p], dev) for p, dev in zip(objects, hold_devs)]

        runs = {}
        for name, data, expect in frames:
            for p in objects:
                r = timedrun.TimedRun(fds[p], data, 1)
                got, _ = r.call()
                if got != expect[p]:
                    raise BenchError(f"{p} gives {VERDICT_NAMES.get(got, got)} on {name}, "
                                     f"expected {VERDICT_NAMES[expect[p]]}: not timing a wrong program")
                runs[p, name] = r

        # Calibrate: the repeat count that makes a floor call last call_ms.
        probe = runs["floor", frames[0][0]]
        probe.set_repeat(20000)
        for _ in range(3):
            _, ns = probe.call()
        per = ns / probe.repeat
        repeat = max(1000, int(call_ms * 1e6 / per))
        for r in runs.values():
            r.set_repeat(repeat)
        for r in runs.values():  # warm every program and frame once
            r.call()

        progs = list(objects)
        result = {p: {name: [] for name, _, _ in frames} for p in progs}
        for rnd in range(rounds):
            order = list(range(len(frames)))
            random.Random(rnd).shuffle(order)
            for i, fi in enumerate(order):
                name = frames[fi][0]
                k = (rnd + i) % len(progs)
                for p in progs[k:] + progs[:k]:
                    _, ns = runs[p, name].call()
                    result[p][name].append(ns / repeat)
        for fd in links:
            os.close(fd)
        conn.send({"repeat": repeat, "ns": result})
    except (OSError, BenchError) as e:
        conn.send({"error": str(e)})
    finally:
        conn.close()
