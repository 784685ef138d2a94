# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Differential test: every built object against the reference classifier.

Each frame from framegen goes through drop-tcp, port-9090 and count (the
built .o files, via BPF_PROG_TEST_RUN) and through reference.py.  They must
agree on the verdict, on the output bytes of PASS and TX, and for count on
the key and the bytes added.  Used by tests/test_differential.py (a small
slice in `make check`) and by `make fuzz` (run as a program):

    differential.py [--jumbo] [--seed S] [-n FRAMES] [--replay SEED:INDEX]

run(..., jumbo_frames=True) and --jumbo pad each frame to 4,000-9,000 bytes
and run it through the xdp.frags programs as a multi-buffer frame (jumbo()).
The reference is the same: the programs read headers from the first buffer
only (parse.h), so a verdict is the reference's for that first buffer, and
the output and count's bytes are the whole frame's.
"""

import argparse
import os
import pathlib
import random
import sys
import time

import framegen
import reference
from bpfrun import VERDICTS, XDP_PASS, BpfObject, PerCpuArray

BUILD = pathlib.Path(os.environ.get("IPXDP_BUILD", pathlib.Path(__file__).resolve().parent.parent / "build"))
VERDICT_NAMES = {v: k for k, v in VERDICTS.items()}
# The longest first buffer BPF_PROG_TEST_RUN builds (4 KiB pages).
FIRST_BUFFER_MAX = 3520


def jumbo(frame, seed, index):
    """@frame padded with random bytes to 4,000-9,000 bytes, and the length
    of its first buffer: mostly None (the kernel's own split), sometimes
    anywhere from 14 bytes to the end of the original frame, which may cut
    its headers."""
    r = random.Random((seed << 32) ^ index ^ 0x6a756d62)
    padded = frame + r.randbytes(r.randrange(4000, 9001) - len(frame))
    return padded, (None if r.random() < 0.7 else r.randrange(14, len(frame) + 1))


class Disagreement:
    def __init__(self, seed, index, program, frame, what, jumbo=False):
        self.seed, self.index, self.program, self.frame, self.what = seed, index, program, frame, what
        self.jumbo = jumbo

    def __str__(self):
        parsed = reference.parse(self.frame)
        return (f"{self.program}: {self.what}\n"
                f"  reference parse: key={parsed.key} l4={parsed.l4}\n"
                f"  replay: tests/differential.py {'--jumbo ' if self.jumbo else ''}"
                f"--replay {self.seed}:{self.index}\n"
                f"  frame ({len(self.frame)} bytes): {self.frame.hex()}")


class Objects:
    """The three objects, loaded once; count's counters read per key."""

    def __init__(self, build=BUILD):
        self.drop_tcp = BpfObject(build / "drop-tcp.o")
        self.port_9090 = BpfObject(build / "port-9090.o")
        self.count = BpfObject(build / "count.o")
        self.counters = PerCpuArray(self.count.map_fd("proto_counters"), ["packets", "bytes"])
        words = (build / "port-9090.config").read_text().split()
        config = dict(w.split("=", 1) for w in words)
        self.tx_port = int(config["TX_PORT"])
        self.tx_mac = reference.parse_mac(config["TX_MAC"])

    def close(self):
        for obj in (self.drop_tcp, self.port_9090, self.count):
            obj.close()


def check_frame(objs, frame, seed, index, totals, multibuffer=False, first_buffer=None):
    """Returns a list of Disagreements for one frame.  totals: per-key
    running totals the count map must match.  multibuffer: through the
    xdp.frags programs, with a first buffer of @first_buffer bytes (None:
    as the kernel splits it)."""
    found = []
    section = "xdp.frags" if multibuffer else None
    seen = frame[:first_buffer or FIRST_BUFFER_MAX] if multibuffer else frame

    def differ(program, what):
        if multibuffer:
            what = f"multi-buffer, first buffer {len(seen)} bytes: {what}"
        found.append(Disagreement(seed, index, program, frame, what, multibuffer))

    for program, obj, expect in (
        ("drop-tcp", objs.drop_tcp, reference.drop_tcp(seen)),
        ("port-9090", objs.port_9090, reference.port_9090(seen, objs.tx_port, objs.tx_mac)),
    ):
        verdict, out = obj.run(frame, section=section, first_buffer=first_buffer)
        name = VERDICTS.get(verdict, f"unknown({verdict})")
        if name != expect[0]:
            differ(program, f"verdict {name}, reference says {expect[0]}")
        elif name != "DROP" and out != expect[1] + frame[len(seen):]:
            differ(program, f"output bytes differ: got {out.hex()}")

    key, nbytes = reference.parse(seen).key, len(frame)
    verdict, out = objs.count.run(frame, section=section, first_buffer=first_buffer)
    if verdict != XDP_PASS or out != frame:
        differ("count", f"verdict {VERDICTS.get(verdict, verdict)} or output changed; count must pass unchanged")
    want = totals.setdefault(key, {"packets": 0, "bytes": 0})
    want["packets"] += 1
    want["bytes"] += nbytes
    got = objs.counters.total(key)
    if got != want:
        differ("count", f"key {key}: counters {got}, expected {want} "
                        f"(the frame was counted under another key or with other bytes)")
        totals[key] = got  # resynchronise so one error is reported once
    return found


def run(objs, seed, first, last, jumbo_frames=False):
    """Frames first..last-1 of the given seed; returns the disagreements.
    jumbo_frames: each made multi-buffer by jumbo()."""
    objs.counters.clear(range(reference.KEY_MALFORMED + 1))
    totals, found = {}, []
    for index in range(first, last):
        frame = framegen.frame(seed, index, objs.tx_port)
        if jumbo_frames:
            frame, first_buffer = jumbo(frame, seed, index)
            found += check_frame(objs, frame, seed, index, totals, True, first_buffer)
        else:
            found += check_frame(objs, frame, seed, index, totals)
    # No frame may have been counted under a key the reference did not name.
    counted = sum(objs.counters.total(k)["packets"] for k in range(reference.KEY_MALFORMED + 1))
    if counted != last - first:
        found.append(Disagreement(seed, -1, "count", b"", f"{counted} packets counted for {last - first} frames"))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("-n", type=int, default=1_000_000, help="frames (default 1000000)")
    ap.add_argument("--replay", metavar="SEED:INDEX", help="check one frame and print it")
    ap.add_argument("--jumbo", action="store_true", help="multi-buffer frames (see jumbo())")
    args = ap.parse_args()
    objs = Objects()
    if args.replay:
        seed, index = (int(x) for x in args.replay.split(":"))
        frame = framegen.frame(seed, index, objs.tx_port)
        first_buffer = None
        if args.jumbo:
            frame, first_buffer = jumbo(frame, seed, index)
        objs.counters.clear(range(reference.KEY_MALFORMED + 1))
        found = check_frame(objs, frame, seed, index, {}, args.jumbo, first_buffer)
        print(f"frame ({len(frame)} bytes): {frame.hex()}\nreference: {reference.parse(frame)}")
    else:
        start = time.monotonic()
        print(f"fuzz: seed {args.seed}, {args.n} frames through drop-tcp, port-9090 and count", flush=True)
        found = []
        chunk = 100_000
        for first in range(0, args.n, chunk):
            # Index ranges keep every frame replayable from (seed, index).
            found += run(objs, args.seed, first, min(first + chunk, args.n), args.jumbo)
            print(f"  {min(first + chunk, args.n)} frames, {len(found)} disagreements, "
                  f"{time.monotonic() - start:.0f} s", flush=True)
    for d in found[:50]:
        print(d)
    print(f"{len(found)} disagreements")
    objs.close()
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
