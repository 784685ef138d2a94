# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A slice of the differential test: seeded random and mutated frames
through each built object and the reference classifier (make fuzz runs the
same test with a million frames)."""

import collections

import pytest

import differential
import framegen
import reference
from conftest import build_config

SEEDS = (1, 2, 3)
FRAMES_PER_SEED = 5000
JUMBO_FRAMES_PER_SEED = 2000


@pytest.fixture(scope="module")
def objs():
    o = differential.Objects()
    yield o
    o.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_objects_agree_with_reference(objs, seed):
    found = differential.run(objs, seed, 0, FRAMES_PER_SEED)
    assert not found, "\n".join(str(d) for d in found[:10])


@pytest.mark.parametrize("seed", SEEDS)
def test_multibuffer_objects_agree_with_reference(objs, seed):
    """The same frames, padded to 4,000-9,000 bytes, through xdp.frags."""
    found = differential.run(objs, seed, 0, JUMBO_FRAMES_PER_SEED, jumbo_frames=True)
    assert not found, "\n".join(str(d)[:2000] for d in found[:10])


def test_multibuffer_frames_reach_every_split():
    """Most keep their headers in the kernel's first buffer; some have it
    cut inside the headers, which the first buffer then decides."""
    tx_port, _ = build_config()
    seen = collections.Counter()
    for seed in SEEDS:
        for i in range(JUMBO_FRAMES_PER_SEED):
            frame, first = differential.jumbo(framegen.frame(seed, i, tx_port), seed, i)
            assert 4000 <= len(frame) <= 9000
            seen["kernel-split" if first is None else "short-first-buffer"] += 1
            whole, part = reference.parse(frame), reference.parse(frame[:first or 3520])
            if (whole.key, whole.l4) != (part.key, part.l4):
                seen["headers-past-first-buffer"] += 1
    total = len(SEEDS) * JUMBO_FRAMES_PER_SEED
    for what in ("kernel-split", "short-first-buffer", "headers-past-first-buffer"):
        assert seen[what] >= total // 100, (what, seen)


def test_frames_reach_every_rule():
    """The slice is only worth something if the frames hit every class."""
    tx_port, tx_mac = build_config()
    seen = collections.Counter()
    for seed in SEEDS:
        for i in range(FRAMES_PER_SEED):
            f = framegen.frame(seed, i, tx_port)
            p = reference.parse(f)
            seen[p.key if p.key in (6, 17, 256, 257) else "other-ip"] += 1
            if p.key == 6 and p.l4 is None:
                seen["tcp-non-first-fragment"] += 1
            if reference.port_9090(f, tx_port, tx_mac)[0] == reference.TX:
                seen["bounced"] += 1
            if 14 <= len(f) <= 1514:
                seen["size-ok"] += 1
    total = len(SEEDS) * FRAMES_PER_SEED
    assert seen["size-ok"] == total
    for what in (6, 17, 256, 257, "other-ip", "tcp-non-first-fragment", "bounced"):
        assert seen[what] >= total // 100, (what, seen)


def test_same_seed_same_frames():
    assert [framegen.frame(7, i, 9090) for i in range(50)] == \
        [framegen.frame(7, i, 9090) for i in range(50)]
    assert framegen.frame(7, 0, 9090) != framegen.frame(8, 0, 9090)
