# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A slice of the differential test: seeded random and mutated frames
through each built object and the reference classifier (make fuzz runs the
same test with a million frames)."""

import collections
import os
import subprocess

import pytest

from ipxdp import differential, paths, project, randframes, reference

SEEDS = (1, 2, 3)
FRAMES_PER_SEED = 5000


@pytest.mark.parametrize("seed", SEEDS)
def test_objects_agree_with_reference(objs, seed):
    found = differential.run_random(objs, seed, 0, FRAMES_PER_SEED)
    assert not found, "\n".join(str(d) for d in found[:10])


def test_frames_reach_every_rule():
    """The slice is only worth something if the frames hit every class."""
    tx_port, tx_mac = project.port_9090_config()
    seen = collections.Counter()
    named = (6, 17, project.KEY_NON_IP, project.KEY_MALFORMED)
    for seed in SEEDS:
        for i in range(FRAMES_PER_SEED):
            f = randframes.frame(seed, i, tx_port)
            p = reference.parse(f)
            seen[p.key if p.key in named else "other-ip"] += 1
            if p.key == 6 and p.l4 is None:
                seen["tcp-non-first-fragment"] += 1
            if reference.port_9090(f, tx_port, tx_mac)[0] == reference.TX:
                seen["bounced"] += 1
            if 14 <= len(f) <= 1514:
                seen["size-ok"] += 1
    total = len(SEEDS) * FRAMES_PER_SEED
    assert seen["size-ok"] == total
    for what in named + ("other-ip", "tcp-non-first-fragment", "bounced"):
        assert seen[what] >= total // 100, (what, seen)


def test_same_seed_same_frames():
    assert [randframes.frame(7, i, 9090) for i in range(50)] == \
        [randframes.frame(7, i, 9090) for i in range(50)]
    assert randframes.frame(7, 0, 9090) != randframes.frame(8, 0, 9090)


@pytest.mark.parametrize("name", ["random:3:41", "sweep:1:5000"])
def test_replay_works_as_printed(objs, name):
    """A disagreement's replay line is a command that works from the
    repository root, in a shell that knows nothing of this package: it
    checks the same frame, against the same objects, and says so."""
    family, frame = differential.frame_of(name, objs.tx_port)
    line = str(differential.Disagreement(name, "drop-tcp", frame, "(an example)"))
    (command,) = [w.split("replay: ", 1)[1] for w in line.splitlines() if "replay: " in w]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    res = subprocess.run(["bash", "-c", command], cwd=paths.ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, (command, res.stdout, res.stderr)
    assert f"{family} frame {name} ({len(frame)} bytes): {frame.hex()}\n" in res.stdout, res.stdout
    assert res.stdout.endswith("0 disagreements\n"), res.stdout
