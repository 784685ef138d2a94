# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""blocklist.o against ipxdp.blocklist_reference on random lists and frames
(ipxdp.differential's blocklist rounds): verdicts, output bytes, the totals
after every frame and the per-prefix counters after every round must agree
exactly.  A few rounds here; `make fuzz` runs more."""

import os
import subprocess

import pytest

from ipxdp import blocklist_reference, differential, paths

SEED = 20260112
FRAMES = 1500  # of each round's BLOCKLIST_ROUND


@pytest.fixture(scope="module")
def bl():
    with differential.BlocklistObject() as loaded:
        yield loaded


@pytest.mark.parametrize("rnd", range(6))
def test_round(bl, tx_config, rnd):
    found = differential.run_blocklist(bl, SEED, rnd, FRAMES, tx_config[0])
    assert not found, "\n".join(map(str, found[:10]))
    assert sum(bl.verdicts.values()) >= FRAMES


def test_the_rounds_reach_every_decision(tx_config):
    """The generator is not idle: within a round, frames are blocked,
    allowed, passed (listed nowhere) and malformed, from IPv4, IPv6 and
    IPv4-mapped IPv6 sources; and a round's lists hold both families and
    nested prefixes."""
    seen, families = set(), set()
    for rnd in range(3):
        block, allow = differential.blocklist_lists(SEED, rnd)
        lists = blocklist_reference.Lists([str(n) for n in block], [str(n) for n in allow])
        assert {n.version for n in block} == {4, 6}
        assert any(a != b and a.subnet_of(b) for a in block for b in block if a.version == b.version)
        for i in range(3000):
            frame = differential.blocklist_frame(SEED, rnd * differential.BLOCKLIST_ROUND + i,
                                                 tx_config[0], block + allow)
            decision = lists.decide(frame)
            seen.add(decision.total)
            if decision.rule:
                net = decision.rule[1]
                families.add("mapped" if net.version == 6 and net.network_address.ipv4_mapped
                             else net.version)
    assert seen == {"passed", "blocked", "allowed", "malformed"}
    assert families == {4, 6, "mapped"}


def test_same_name_same_frame(tx_config):
    name = f"blocklist:{SEED}:{2 * differential.BLOCKLIST_ROUND + 17}"
    assert differential.frame_of(name, tx_config[0]) == differential.frame_of(name, tx_config[0])
    assert differential.blocklist_lists(SEED, 2) == differential.blocklist_lists(SEED, 2)
    assert differential.blocklist_lists(SEED, 2) != differential.blocklist_lists(SEED, 3)


def test_replay_works_as_printed(tx_config):
    """A blocklist disagreement's replay line works from the repository
    root, as the other families' do: that one frame, checked with its
    round's lists, in a bpffs of its own."""
    name = f"blocklist:{SEED}:{differential.BLOCKLIST_ROUND + 1234}"
    _, frame = differential.frame_of(name, tx_config[0])
    line = str(differential.Disagreement(name, "blocklist", frame, "(an example)"))
    (command,) = [w.split("replay: ", 1)[1] for w in line.splitlines() if "replay: " in w]
    assert command.endswith(f"make fuzz REPLAY={name}")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    res = subprocess.run(["bash", "-c", command], cwd=paths.ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, (command, res.stdout, res.stderr)
    assert f"blocklist frame {name} ({len(frame)} bytes): {frame.hex()}\n" in res.stdout, res.stdout
    assert res.stdout.endswith("0 disagreements\n"), res.stdout
