# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""make fuzz: the differential test at scale.

    make fuzz [N=FRAMES] [SEED=S]        fuzz.py [-n FRAMES] [--seed S]
    make fuzz REPLAY=FAMILY:SEED:INDEX   fuzz.py --replay FAMILY:SEED:INDEX

(fuzz.py needs PYTHONPATH=pylib, which make sets.)  Three sets of frames go
through drop-tcp, port-9090 and count (the built objects, via
BPF_PROG_TEST_RUN) and through the reference classifier
(pylib/ipxdp/reference.py), which must agree on the verdict, the output
bytes, and count's key and bytes:

  sweep   the systematic frames of ipxdp.sweep (every VLAN stack, IHL,
          fragment field, IPv6 extension header kind and length, and
          truncation at every byte), about 12000 of them
  random  FRAMES frames (default 1000000) from ipxdp.randframes, seeded
  jumbo   the same FRAMES frames padded to 4000-9000 bytes, through each
          object's xdp.frags program as multi-buffer frames, some with the
          first buffer cut inside the headers (ipxdp.differential.jumbo)

and a third through blocklist, against pylib/ipxdp/blocklist_reference.py
(verdicts, output bytes, totals after every frame, per-prefix counters
after every round):

  blocklist  FRAMES / 100000 rounds (at least 1) of 10000 frames: random
          nested block and allow lists loaded with xdp-block into a
          private bpffs, random frames with sources drawn from them

Every frame has a name, sweep:SEED:INDEX, random:SEED:INDEX,
jumbo:SEED:INDEX or blocklist:SEED:INDEX (ipxdp.differential says what each is).  Every
disagreement is printed as a hex frame with the rule it breaks and the
command that replays that one frame (--replay NAME).  The run ends with the
number of frames, each program's verdicts (XDP_ABORTED among them) and the
number of disagreements; it exits 1 if there is any disagreement or any
XDP_ABORTED, 2 on a bad command line.  IPXDP_BUILD names other objects to
check (default build/).
"""

import argparse
import sys
import time

from ipxdp import differential, project, reference

CHUNK = 100_000
SHOWN = 50  # disagreements printed in full


def replay(objs, name):
    if differential.parse_name(name)[0] == "blocklist":
        with differential.BlocklistObject() as bl:
            frame, found = differential.replay_blocklist(bl, name, objs.tx_port)
            decision = bl.lists.decide(frame)
        print(f"blocklist frame {name} ({len(frame)} bytes): {frame.hex()}")
        print(f"reference: {reference.parse(frame)}; blocklist {decision}")
        for d in found:
            print(d)
        print(f"{len(found)} disagreements")
        return 1 if found else 0
    label, frame = differential.frame_of(name, objs.tx_port)
    objs.clear_counters()
    found = differential.check_frame(objs, frame, name, {})
    multi, _, seen = differential.split(name, frame, objs.tx_port)
    print(f"{label} frame {name} ({len(frame)} bytes): {frame.hex()}")
    if multi:
        print(f"multi-buffer, through xdp.frags; first buffer {len(seen)} bytes, "
              "which the reference reads")
    print(f"reference: {reference.parse(seen)}; drop-tcp {reference.drop_tcp(seen)[0]}, "
          f"port-9090 {reference.port_9090(seen, objs.tx_port, objs.tx_mac)[0]}")
    for d in found:
        print(d)
    print(f"{len(found)} disagreements")
    return 1 if found else 0


def fuzz(objs, seed, n):
    start = time.monotonic()
    print(f"fuzz: seed {seed}; {n} random frames, {n} jumbo frames and the sweep through "
          f"drop-tcp, port-9090 and count (this run again: make fuzz SEED={seed} N={n})", flush=True)
    nsweep, found = differential.run_sweep(objs, seed)
    print(f"  sweep: {nsweep} frames, {len(found)} disagreements, "
          f"{time.monotonic() - start:.0f} s", flush=True)
    for first in range(0, n, CHUNK):
        last = min(first + CHUNK, n)
        # Index ranges keep every frame replayable from its name.
        found += differential.run_random(objs, seed, first, last)
        print(f"  random: {last} frames, {len(found)} disagreements, "
              f"{time.monotonic() - start:.0f} s", flush=True)
    for first in range(0, n, CHUNK):
        last = min(first + CHUNK, n)
        found += differential.run_jumbo(objs, seed, first, last)
        print(f"  jumbo: {last} frames, {len(found)} disagreements, "
              f"{time.monotonic() - start:.0f} s", flush=True)
    rounds = max(1, n // 100_000)
    with differential.BlocklistObject() as bl:
        for rnd in range(rounds):
            found += differential.run_blocklist(bl, seed, rnd, tx_port=objs.tx_port)
        print(f"  blocklist: {rounds} rounds, {rounds * differential.BLOCKLIST_ROUND} frames, "
              f"{len(found)} disagreements, {time.monotonic() - start:.0f} s", flush=True)
        verdicts = dict(objs.verdicts, blocklist=bl.verdicts)
    for d in found[:SHOWN]:
        print(d)
    if len(found) > SHOWN:
        print(f"... and {len(found) - SHOWN} more")
    total = nsweep + n
    nblock = rounds * differential.BLOCKLIST_ROUND
    aborted = 0
    for name, counts in verdicts.items():
        aborted += counts["ABORTED"]
        shown = ", ".join(f"{v} {counts[v]}" for v in ("PASS", "DROP", "TX", "ABORTED"))
        others = sum(c for v, c in counts.items() if v not in ("PASS", "DROP", "TX", "ABORTED"))
        print(f"  {name:<19} {shown}" + (f", other {others}" if others else ""))
        # The plain programs ran the sweep and the random frames, the
        # xdp.frags ones the jumbo frames.
        if name == "blocklist":
            expected = nblock
        elif name.endswith("/" + project.MULTIBUFFER_SECTION):
            expected = n
        else:
            expected = total
        if sum(counts.values()) != expected:
            print(f"fuzz: {name} ran {sum(counts.values())} frames, expected {expected}",
                  file=sys.stderr)
            return 1
    print(f"fuzz: seed {seed}: {total} frames per program ({n} random, {nsweep} sweep), "
          f"{n} jumbo frames per xdp.frags program, {nblock} through blocklist, "
          f"{len(found)} disagreements, {aborted} XDP_ABORTED, {time.monotonic() - start:.0f} s")
    return 1 if found or aborted else 0


def main():
    ap = argparse.ArgumentParser(prog="fuzz.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    ap.add_argument("-n", type=int, default=1_000_000, help="random frames (default 1000000)")
    ap.add_argument("--replay", metavar="FAMILY:SEED:INDEX",
                    help="check the one frame of that name (sweep:1:77, random:1:5, jumbo:1:3, "
                         "blocklist:1:12345) and print it")
    args = ap.parse_args()
    if args.replay:
        try:
            differential.parse_name(args.replay)
        except ValueError:
            ap.error(f"--replay takes sweep:SEED:INDEX, random:SEED:INDEX, jumbo:SEED:INDEX or blocklist:SEED:INDEX, "
                     f"not {args.replay!r}")
    objs = differential.Objects()
    try:
        if args.replay:
            try:
                return replay(objs, args.replay)
            except ValueError as e:
                print(f"fuzz: {e}", file=sys.stderr)
                return 2
        return fuzz(objs, args.seed if args.seed is not None else int(time.time()), args.n)
    finally:
        objs.close()


if __name__ == "__main__":
    sys.exit(main())
