# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The built objects against the reference classifier, frame by frame.

Each frame goes through drop-tcp, port-9090 and count (the built .o files,
via BPF_PROG_TEST_RUN) and through reference.py.  They must agree on the
verdict, on the output bytes of PASS and TX, and for count on the key and
the bytes added.  Used by tests/test_differential.py and
tests/test_hardening_sweep.py (slices in `make check`) and by `make fuzz`
(hardening/fuzz.py, at scale).

Every frame has a name, FAMILY:SEED:INDEX, the one replay syntax:

    random:SEED:INDEX   randframes.frame(SEED, INDEX, tx_port)
    sweep:SEED:INDEX    the INDEX-th frame of sweep.sweep(SEED, tx_port)
    jumbo:SEED:INDEX    random:SEED:INDEX made multi-buffer by jumbo()

A jumbo frame goes through each object's xdp.frags program instead.  The
reference is the same: the programs read headers from the first buffer
only (parse.h), so a verdict and count's key are the reference's for that
first buffer, and the output and count's bytes are the whole frame's.

and every disagreement prints the command that checks its frame again,
from the repository root: `make fuzz REPLAY=NAME` (replay_command).
"""

import collections
import os
import random
import shlex

from . import bpf, paths, project, randframes, reference, sweep

FAMILIES = ("random", "sweep", "jumbo")
PROGRAMS = ("drop-tcp", "port-9090", "count")
# The longest first buffer BPF_PROG_TEST_RUN builds (4 KiB pages).
FIRST_BUFFER_MAX = 3520


def multibuffer(program):
    """The name verdicts are tallied under for @program's xdp.frags entry."""
    return f"{program}/{project.MULTIBUFFER_SECTION}"


def jumbo(frame, seed, index):
    """@frame (random:SEED:INDEX) padded with random bytes to 4,000-9,000
    bytes, and the length of its first buffer: mostly None (the kernel's
    own split), sometimes anywhere from 14 bytes to the end of the original
    frame, which may cut its headers."""
    r = random.Random((seed << 32) ^ index ^ 0x6a756d62)
    padded = frame + r.randbytes(r.randrange(4000, 9001) - len(frame))
    return padded, (None if r.random() < 0.7 else r.randrange(14, len(frame) + 1))


def jumbo_frame(seed, index, tx_port):
    """jumbo:SEED:INDEX as (frame, first buffer length or None)."""
    return jumbo(randframes.frame(seed, index, tx_port), seed, index)


def split(name, frame, tx_port):
    """How frame @name reaches the programs: (multi-buffer?, the first
    buffer's length to ask for or None, the bytes the parser reads)."""
    family, seed, index = parse_name(name)
    if family != "jumbo":
        return False, None, frame
    first_buffer = jumbo_frame(seed, index, tx_port)[1]
    return True, first_buffer, frame[:first_buffer or FIRST_BUFFER_MAX]


def replay_command(name):
    """The command that checks frame @name again against the same objects."""
    env = ""
    if os.environ.get("IPXDP_BUILD"):
        env = f"IPXDP_BUILD={shlex.quote(str(paths.build_dir()))} "
    return f"{env}make fuzz REPLAY={name}"


def parse_name(name):
    """"sweep:1:77" -> ("sweep", 1, 77); ValueError if it is no frame name."""
    family, seed, index = name.split(":")
    if family not in FAMILIES:
        raise ValueError(f"{name}: the family is one of {', '.join(FAMILIES)}")
    return family, int(seed), int(index)


def frame_of(name, tx_port):
    """(sweep family or "random", frame) for the frame called @name;
    ValueError if there is no such frame."""
    family, seed, index = parse_name(name)
    if family == "random":
        return "random", randframes.frame(seed, index, tx_port)
    if family == "jumbo":
        return "jumbo", jumbo_frame(seed, index, tx_port)[0]
    frames = sweep.sweep(seed, tx_port)
    if not 0 <= index < len(frames):
        raise ValueError(f"{name}: the sweep has frames 0 to {len(frames) - 1}")
    return frames[index]


class Disagreement:
    def __init__(self, name, program, frame, what):
        self.name, self.program, self.frame, self.what = name, program, frame, what

    def __str__(self):
        if not self.frame:  # about the run, not one frame
            return f"{self.program}: {self.what}"
        parsed = reference.parse(self.frame)
        return (f"{self.program}: {self.what}\n"
                f"  reference parse: key={parsed.key} l4={parsed.l4}\n"
                f"  replay: {replay_command(self.name)}\n"
                f"  frame {self.name} ({len(self.frame)} bytes): {self.frame.hex()}")


class Objects:
    """The three objects of @build (default: paths.build_dir()), loaded
    once; count's counters; port-9090's build config; every verdict each
    program gave, tallied by name in `verdicts`."""

    def __init__(self, build=None):
        build = build or paths.build_dir()
        self.programs = {}
        try:
            for name in PROGRAMS:
                self.programs[name] = bpf.BpfObject(build / f"{name}.o")
        except BaseException:
            self.close()
            raise
        self.counters = bpf.count_counters(self.programs["count"])
        self.tx_port, self.tx_mac = project.port_9090_config(build)
        self.verdicts = {name: collections.Counter()
                         for program in PROGRAMS for name in (program, multibuffer(program))}

    def run(self, program, frame, multi=False, first_buffer=None):
        """@frame through @program's plain section, or with @multi its
        xdp.frags program, the first buffer @first_buffer bytes long (None:
        as the kernel splits it)."""
        if multi:
            verdict, out = self.programs[program].run(frame, section=project.MULTIBUFFER_SECTION,
                                                      first_buffer=first_buffer)
            self.verdicts[multibuffer(program)][bpf.verdict_name(verdict)] += 1
        else:
            verdict, out = self.programs[program].run(frame)
            self.verdicts[program][bpf.verdict_name(verdict)] += 1
        return verdict, out

    def clear_counters(self):
        self.counters.clear(range(project.COUNT_KEYS))

    def counted(self):
        """Frames count has counted under any key since clear_counters()."""
        return sum(self.counters.total(k)["packets"] for k in range(project.COUNT_KEYS))

    def close(self):
        for obj in self.programs.values():
            obj.close()
        self.programs = {}


def check_frame(objs, frame, name, totals):
    """The Disagreements for one frame (called @name).  totals: per-key
    running totals the count map must match.  A jumbo frame goes through
    the xdp.frags programs, split as its name says."""
    found = []
    multi, first_buffer, seen = split(name, frame, objs.tx_port)

    def differ(program, what):
        if multi:
            program = multibuffer(program)
            what = f"first buffer {len(seen)} bytes: {what}"
        found.append(Disagreement(name, program, frame, what))

    for program, expect in (("drop-tcp", reference.drop_tcp(seen)),
                            ("port-9090", reference.port_9090(seen, objs.tx_port, objs.tx_mac))):
        verdict, out = objs.run(program, frame, multi, first_buffer)
        got = bpf.verdict_name(verdict)
        if got != expect[0]:
            differ(program, f"verdict {got}, reference says {expect[0]}")
        elif got != "DROP" and out != expect[1] + frame[len(seen):]:
            differ(program, f"output bytes differ: got {out.hex()}")

    key, nbytes = reference.count(seen)[0], len(frame)
    verdict, out = objs.run("count", frame, multi, first_buffer)
    if verdict != bpf.XDP_PASS or out != frame:
        differ("count", f"verdict {bpf.verdict_name(verdict)} or output changed; "
                        "count must pass unchanged")
    want = totals.setdefault(key, {"packets": 0, "bytes": 0})
    want["packets"] += 1
    want["bytes"] += nbytes
    got = objs.counters.total(key)
    if got != want:
        differ("count", f"key {key}: counters {got}, expected {want} "
                        f"(the frame was counted under another key or with other bytes)")
        totals[key] = got  # resynchronise so one error is reported once
    return found


def _check_all(objs, named_frames):
    """Checks [(name, label, frame)] from zeroed counters, then that count
    counted each frame once; returns (frames, Disagreements)."""
    objs.clear_counters()
    totals, found, n = {}, [], 0
    for name, label, frame in named_frames:
        for d in check_frame(objs, frame, name, totals):
            if label:
                d.what = f"[{label}] {d.what}"
            found.append(d)
        n += 1
    if objs.counted() != n:
        found.append(Disagreement("-", "count", b"", f"{objs.counted()} packets counted for {n} frames"))
    return n, found


def run_random(objs, seed, first, last):
    """Random frames first..last-1 of @seed; returns the Disagreements."""
    return _check_all(objs, ((f"random:{seed}:{i}", None, randframes.frame(seed, i, objs.tx_port))
                             for i in range(first, last)))[1]


def run_jumbo(objs, seed, first, last):
    """Jumbo frames first..last-1 of @seed; returns the Disagreements."""
    return _check_all(objs, ((f"jumbo:{seed}:{i}", None, jumbo_frame(seed, i, objs.tx_port)[0])
                             for i in range(first, last)))[1]


def run_sweep(objs, seed):
    """The whole sweep of @seed; returns (frames, Disagreements)."""
    return _check_all(objs, ((f"sweep:{seed}:{i}", family, frame)
                             for i, (family, frame) in enumerate(sweep.sweep(seed, objs.tx_port))))
