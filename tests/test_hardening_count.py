# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""No lost count: frames sent from both CPUs at once into count add up,
exactly, per protocol, in packets and bytes, and both CPUs' slots are used
(so the per-CPU sum is really exercised).  Read twice: straight from the map
through the attached program, and through xdp-stats --once --json."""

import collections
import json
import os
import time

import pytest

from ipxdp import paths, project, reference, sweep
from ipxdp.netns import namespaces
from ipxdp.sender import Sender, senders

REPEAT = 4  # each CPU sends the whole sweep (about 12000 frames) this often
NAMED = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp",
         project.KEY_NON_IP: "non-ip", project.KEY_MALFORMED: "malformed"}


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_counts_from_two_cpus_add_up_exactly(mode, tmp_path):
    assert len(os.sched_getaffinity(0)) >= 2, "this test needs two CPUs"
    frames = [f for _, f in sweep.sweep(1, 9090)]
    (tmp_path / "frames.hex").write_text("".join(f.hex() + "\n" for f in frames))
    want = collections.defaultdict(lambda: [0, 0])
    for f in frames:
        key, nbytes = reference.count(f)
        want[key][0] += 2 * REPEAT
        want[key][1] += 2 * REPEAT * nbytes

    with namespaces("ipxdp-hcount", "tx", "rx", ipv6=False) as (tx, rx), senders() as procs:
        tx.add_veth("snd", "rcv", peer=rx)
        res = rx.run([paths.script("xdp-attach"), "--mode", mode, "rcv", paths.obj("count")])
        assert res.returncode == 0, res.stderr
        assert rx.count_counters("rcv") == {}, "frames counted before any was sent"

        start = time.monotonic() + 2.0  # both senders are up by then, even on a busy machine
        procs += [Sender(tx, "snd", cpu=cpu, frames_file=tmp_path / "frames.hex",
                                repeat=REPEAT, start_at=start) for cpu in (0, 1)]
        reports = [p.wait() for p in procs]
        assert [r["sent"] for r in reports] == [len(frames) * REPEAT] * 2
        assert max(r["start"] for r in reports) < min(r["end"] for r in reports), \
            f"the senders did not overlap: {reports}"
        time.sleep(0.2)  # let the receive side drain

        per_cpu = rx.count_counters("rcv")
        stats = rx.run([paths.script("xdp-stats"), "--once", "--json", "rcv"])

    got = {k: [sum(p for p, _ in v), sum(b for _, b in v)] for k, v in per_cpu.items()}
    assert got == dict(want), "the counters lost or invented frames"
    for cpu in (0, 1):
        used = sum(v[cpu][0] for v in per_cpu.values())
        assert used > 0, f"CPU {cpu}'s slots are all zero: the per-CPU sum was not exercised"

    assert stats.returncode == 0, stats.stderr
    report = json.loads(stats.stdout)
    assert report["interface"] == "rcv"
    protocols = {name: [v["packets"], v["bytes"]] for name, v in report["protocols"].items()}
    for key, name in NAMED.items():
        assert protocols.pop(name) == want[key], f"xdp-stats: {name}"
    # The other protocols, whatever the script calls them: the same figures.
    others = sorted(v for k, v in want.items() if k not in NAMED)
    assert sorted(protocols.values()) == others
