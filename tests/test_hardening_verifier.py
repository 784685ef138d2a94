# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Verifier headroom: no program may use more than 10% of the kernel's
one-million-instruction verification budget (what `make verify-stats`
prints)."""

import json
import os
import subprocess

from ipxdp import paths
from ipxdp.project import PROGRAMS

TOOL = paths.ROOT / "hardening" / "verify_stats.py"
BUILD = paths.build_dir()


def verify_stats(*args):
    return subprocess.run([paths.PYTHON, str(TOOL), "--build", str(BUILD), *args],
                          capture_output=True, text=True, timeout=60, env=paths.python_env())


def test_every_program_within_a_tenth_of_the_budget():
    res = verify_stats("--json")
    report = json.loads(res.stdout)
    rows = {r["section"]: r for r in report["programs"]}
    assert {s: r["function"] for s, r in rows.items()} == PROGRAMS
    for section, r in rows.items():
        # Two independent sources: the kernel's program info and the
        # verifier's own statistics line.
        assert r["verified_insns"] == r["log_processed_insns"] > 0, r
        assert r["limit"] == 1_000_000, r
        assert r["insns"] > 0 and r["verified_insns"] >= r["insns"], r
        assert r["verified_insns"] <= r["limit"] // 10, \
            f"{section} uses {r['percent']}% of the verifier's budget"
    assert res.returncode == 0, res.stderr


def test_overuse_is_reported():
    """The same check with a limit below what the programs use must fail,
    naming the program and the figures."""
    res = verify_stats("--max-percent", "0.001")
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == len(PROGRAMS)
    for line, section in zip(lines, PROGRAMS):
        assert line.startswith(f"verify-stats: {section} uses ")
        assert line.endswith("of the verifier's 1000000-instruction budget (at most 0.001% allowed)")


def test_table_names_every_program():
    res = verify_stats()
    assert res.returncode == 0, res.stderr
    header, *rows = res.stdout.splitlines()
    assert header.split() == ["program", "insns", "xlated", "jited", "B", "verified", "budget", "used"]
    assert [r.split()[0] for r in rows] == list(PROGRAMS)
    assert os.path.exists(BUILD / "drop-tcp.o")
