# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist.o against blocklist_reference.py on random lists and frames
(blocklist_differential.py): verdicts, output bytes, per-prefix counters
and totals must agree exactly.  A few rounds here; `make fuzz` runs more."""

import pytest

import blocklist_differential
from blocklist_env import PrivateBpffs
from conftest import build_config

TX_PORT, _ = build_config()
SEED = 20260112


@pytest.fixture(scope="module")
def setup():
    with PrivateBpffs() as fs:
        fs.block("flush", check=True)
        with fs.load_object() as obj:
            yield fs, obj


@pytest.mark.parametrize("rnd", range(6))
def test_round(setup, rnd):
    fs, obj = setup
    found = blocklist_differential.run_round(fs, obj, SEED, rnd, 1500, TX_PORT)
    assert not found, "\n".join(found[:10])


def test_the_rounds_reach_every_decision(setup):
    """The generator is not idle: over a round, frames are blocked,
    allowed, passed (listed nowhere) and malformed."""
    import blocklist_reference as ref
    import random
    r = random.Random(SEED)
    block, allow = blocklist_differential.random_lists(r)
    while not allow:
        block, allow = blocklist_differential.random_lists(r)
    lists = ref.Lists([str(n) for n in block], [str(n) for n in allow])
    seen = {lists.decide(f).total for _, f in blocklist_differential.frames(SEED, 0, 3000, TX_PORT, block + allow)}
    assert seen == {"passed", "blocked", "allowed", "malformed"}
