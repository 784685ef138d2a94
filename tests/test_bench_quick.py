# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""make bench, QUICK: the bench runs, writes what it says, cleans up.

Functional checks only: the figures of a quick run on a busy machine mean
nothing, so no test here looks at how fast anything is.
"""

import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from ipxdp import paths
from ipxdp.paths import ROOT

BENCH = [paths.PYTHON, str(ROOT / "bench" / "bench.py")]
CLASSES = ["ipv4-tcp", "ipv4-udp", "ipv4-tcp-txport", "ipv6-tcp", "vlan-ipv4-tcp",
           "qinq-ipv6-tcp", "ipv6-ext3-tcp", "ipv4-opts40-tcp", "arp"]
PROGRAMS = ["touch", "drop-tcp", "count", "port-9090"]
CONFIGS = ["floor", "drop-tcp-native", "drop-tcp-generic", "nft-ingress", "nft-prerouting",
           "iptables-raw"]
STATS = pathlib.Path("/proc/sys/kernel/bpf_stats_enabled")


def bench_namespaces(pid):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.startswith(f"ipxdp-bench-{pid}-")]


def remove_namespaces(pid):
    for name in bench_namespaces(pid):
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(scope="module", autouse=True)
def bench_objects():
    p = subprocess.run(["make", "-s", "-C", str(ROOT), "bench-objs"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick run: (process, output directory, bpf_stats_enabled before)."""
    out = tmp_path_factory.mktemp("bench")
    stats_before = STATS.read_text()
    p = subprocess.Popen(BENCH + ["--quick", "--out", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=paths.python_env())
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        remove_namespaces(p.pid)
    return p, stdout, stderr, out, stats_before


def test_quick_run_succeeds_and_cleans_up(quick):
    p, stdout, stderr, _, stats_before = quick
    assert p.returncode == 0, stderr
    assert bench_namespaces(p.pid) == []
    assert STATS.read_text() == stats_before


def test_quick_run_prints_both_tables_and_a_verdict(quick):
    _, stdout, _, out, _ = quick
    lines = stdout.splitlines()
    assert lines[0].startswith("Per-packet cost (BPF_PROG_TEST_RUN")
    assert any(line.startswith("Cost over floor vs work") for line in lines)
    assert any(line.startswith("Live frames (generator and receiver on CPU") for line in lines)
    assert lines[-1].startswith("verdict: not judged (3 rounds < 9; indicative only): ")
    for label in ("IPv4 TCP", "QinQ IPv6 TCP", "IPv6 3 ext hdrs TCP", "ARP", "VLAN tags 2",
                  "IPv6 ext hdrs 6", "nftables netdev ingress", "iptables raw PREROUTING"):
        assert any(line.startswith(label) for line in lines), label
    assert (out / "bench.txt").read_text() == stdout


def test_quick_run_json(quick):
    _, stdout, _, out, _ = quick
    data = json.loads((out / "bench.json").read_text())
    assert data["meta"]["quick"] is True
    assert data["verdict"] == stdout.splitlines()[-1]

    micro = data["micro"]
    assert micro["rounds"] == 3
    assert list(micro["classes"]) == CLASSES
    for name, row in micro["classes"].items():
        assert row["floor"]["ns"]["median"] > 0, name
        for p in PROGRAMS:
            s = row[p]["ns"]
            assert s["min"] <= s["p25"] <= s["median"] <= s["p75"] <= s["max"], (name, p)
            assert set(row[p]["over_floor"]) == {"median", "min", "max", "p25", "p75", "spread"}
    assert set(micro["programs"]) == {"floor"} | set(PROGRAMS)
    assert micro["programs"]["floor"]["xlated_insns"] == 2
    for series, depths in (("vlan", [0, 1, 2]), ("ipv6_ext", list(range(7)))):
        for p in PROGRAMS:
            assert [pt["depth"] for pt in micro["scaling"][series][p]] == depths
    # 0 VLAN tags is the IPv4 TCP class: timed once, reported in both places.
    assert micro["scaling"]["vlan"]["drop-tcp"][0]["over_floor"] == \
        micro["classes"]["ipv4-tcp"]["drop-tcp"]["over_floor"]

    live = data["live"]
    assert live["rounds"] == 3
    assert list(live["configs"]) == CONFIGS
    for name, c in live["configs"].items():
        m = c["mpps"]
        assert 0 < m["min"] <= m["median"] <= m["max"], name
        assert c["frames_per_run"] >= 10000
    assert live["configs"]["floor"]["over_floor_ns"]["max"] == 0
    assert set(live["ratios"]) == {f"drop-tcp-native/{n}" for n in CONFIGS if n != "drop-tcp-native"}

    assert [t["limit"] for t in data["targets"]] == ["<= 1.5 ns", "<= 1.5 ns", "<= 3.0 ns", ">= 3.5"]
    assert all(isinstance(t["met"], bool) for t in data["targets"])


def test_quick_run_plot_is_a_png(quick):
    _, _, _, out, _ = quick
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_bench_removes_its_namespaces(tmp_path, sig):
    stats_before = STATS.read_text()
    p = subprocess.Popen(BENCH + ["--quick", "--live-rounds", "1000", "--out", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=paths.python_env())
    try:
        # Wait until the live bench has made every namespace, then stop it.
        deadline = time.monotonic() + 60
        while len(bench_namespaces(p.pid)) < 1 + len(CONFIGS):
            assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "the bench never set up its namespaces"
            time.sleep(0.05)
        time.sleep(0.5)
        p.send_signal(sig)
        _, stderr = p.communicate(timeout=60)
        assert p.returncode == 130, stderr
        assert f"interrupted ({sig.name}): removing its namespaces" in stderr
        assert bench_namespaces(p.pid) == []
        assert STATS.read_text() == stats_before
        assert not (tmp_path / "bench.json").exists()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        remove_namespaces(p.pid)


def test_help_and_bad_option():
    p = subprocess.run(BENCH + ["--help"], capture_output=True, text=True, env=paths.python_env())
    assert p.returncode == 0
    assert p.stdout.startswith("usage: bench.py [--quick]")
    p = subprocess.run(BENCH + ["--cpu", str(os.cpu_count() + 7)], capture_output=True, text=True,
                       env=paths.python_env())
    assert p.returncode == 2
    assert f"CPU {os.cpu_count() + 7} is not one this process may use" in p.stderr
