# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""make bench, QUICK: the bench runs, writes what it says, cleans up.

Functional checks only: the figures of a quick run on a busy machine mean
nothing, so no test here looks at how fast anything is.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from ipxdp import paths
from ipxdp.paths import ROOT

# The blocklist object and script under test, as paths names them.
BENCH = [paths.PYTHON, str(ROOT / "bench" / "bench.py"), "--blocklist-object", str(paths.obj("blocklist")),
         "--xdp-block", str(paths.script("xdp-block"))]
CLASSES = ["ipv4-tcp", "ipv4-udp", "ipv4-tcp-txport", "ipv6-tcp", "vlan-ipv4-tcp",
           "qinq-ipv6-tcp", "ipv6-ext3-tcp", "ipv4-opts40-tcp", "arp"]
PROGRAMS = ["touch", "drop-tcp", "count", "port-9090", "xdp-filter"]
CONFIGS = ["floor", "drop-tcp-native", "drop-tcp-native-copy", "xdp-filter-native", "drop-tcp-generic",
           "nft-ingress", "nft-prerouting", "iptables-raw"]
BL_LISTS = {"0": 0, "1k": 1000, "100k": 100000, "10k32": 10000}  # QUICK: no million
BL_CELLS = ["floor", "0/unlisted", "1k/listed", "1k/unlisted", "1k/hot", "100k/listed", "100k/unlisted",
            "100k/hot", "10k32/listed", "10k32/unlisted", "100k-copy/listed", "xdp-filter-ip/listed",
            "xdp-filter-ip/unlisted"]
BL_CONFIGS = ["floor", "blocklist-100k", "blocklist-100k-copy", "blocklist-100k-hot", "nft-set-100k",
              "ipset-100k", "blocklist-10k32", "xdp-filter-ip-10k32"]
BL_RATIOS = {"blocklist-100k/nft-set-100k", "blocklist-100k-copy/nft-set-100k", "blocklist-100k/ipset-100k",
             "blocklist-100k-copy/ipset-100k", "blocklist-10k32/xdp-filter-ip-10k32"}
STATS = pathlib.Path("/proc/sys/kernel/bpf_stats_enabled")
BPFFS = pathlib.Path("/sys/fs/bpf")


def pins():
    """Everything under the host's bpffs (xdp-filter's maps are pinned by
    name: the bench must neither leave nor reuse pins there)."""
    return {str(p) for p in BPFFS.rglob("*")}


def leftovers():
    """What the blocklist part makes outside namespaces: its bpffs and list
    directories, and a mount of them (there should never be one outside
    the bench's own mount namespace)."""
    dirs = {str(p) for p in pathlib.Path(tempfile.gettempdir()).glob("ipxdp-bench-*")}
    with open("/proc/self/mountinfo") as f:
        mounts = {line.split()[4] for line in f if re.search(r"/ipxdp-bench-\d+-bpffs-", line.split()[4])}
    return dirs | mounts


def stale_dirs():
    """Directories as a bench killed outright leaves them (its pid gone:
    above the kernel's largest)."""
    dead = int(pathlib.Path("/proc/sys/kernel/pid_max").read_text()) + 1
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"ipxdp-bench-{dead}-lists-"))
    (tmp / "100k.txt").write_text("192.0.2.0/24\n")
    return {str(tmp), tempfile.mkdtemp(prefix=f"ipxdp-bench-{dead}-bpffs-")}


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
    """One quick run: (process, stdout, stderr, output directory,
    bpf_stats_enabled before, pins before, pins after, leftovers before,
    leftovers after)."""
    out = tmp_path_factory.mktemp("bench")
    stats_before = STATS.read_text()
    pins_before = pins()
    left_before = leftovers()
    stale = stale_dirs()
    p = subprocess.Popen(BENCH + ["--quick", "--out", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=paths.python_env())
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        remove_namespaces(p.pid)
    after = leftovers()
    for d in stale & after:
        shutil.rmtree(d)
    return p, stdout, stderr, out, stats_before, pins_before, pins(), left_before - stale, after


def test_quick_run_succeeds_and_cleans_up(quick):
    p, stdout, stderr, _, stats_before, pins_before, pins_after, left_before, left_after = quick
    assert p.returncode == 0, stderr
    assert bench_namespaces(p.pid) == []
    assert STATS.read_text() == stats_before
    assert pins_after - pins_before == set()
    assert left_after - left_before == set()  # the stale ones too
    assert "bench: blocklist: removed 2 directories left by a bench that was killed\n" in stderr
    assert "libbpf" not in stderr  # xdp-filter's objects load without warnings


def test_quick_run_prints_both_tables_the_self_check_and_a_verdict(quick):
    _, stdout, _, out, *_ = quick
    lines = stdout.splitlines()
    assert lines[0].startswith("Per-packet cost (BPF_PROG_TEST_RUN, CPU ")
    assert "2 loads x 1 rounds, each the fastest of 2 calls of " in lines[0]
    assert lines[1].split() == ["class", "floor", "ns"] + PROGRAMS + ["A/A", "price"]
    assert any(line.startswith("Cost over floor vs work") for line in lines)
    assert any(line.startswith("Live frames (generator and receiver on CPU") for line in lines)
    assert "xdp-filter: xdpfilt_alw_tcp.o, rule: drop TCP to port 80, 5201, 9090; " \
           "aborts on IPv6 behind more than 5 extension headers." in lines
    assert lines[-2].startswith("A/A: drop-tcp loaded twice differs by at most ")
    assert lines[-1].startswith("verdict: not judged (2 loads < 8, 3 live rounds < 9, 3 blocklist live rounds "
                                "< 9; indicative only): ")
    for label in ("IPv4 TCP", "QinQ IPv6 TCP", "IPv6 3 ext hdrs TCP", "ARP", "VLAN tags 2",
                  "IPv6 ext hdrs 6", "drop-tcp again (A/A), native", "xdp-filter alw_tcp, native XDP",
                  "nftables netdev ingress", "iptables raw PREROUTING"):
        assert any(line.startswith(label) for line in lines), label
    assert (out / "bench.txt").read_text() == stdout


def test_quick_run_json(quick):
    _, stdout, _, out, *_ = quick
    data = json.loads((out / "bench.json").read_text())
    assert data["meta"]["quick"] is True
    assert data["verdict"] == stdout.splitlines()[-1]
    assert data["self_check"] == stdout.splitlines()[-2]

    micro = data["micro"]
    assert (micro["loads"], micro["rounds"], micro["calls"]) == (2, 2, 2)
    assert list(micro["classes"]) == CLASSES
    for name, row in micro["classes"].items():
        assert row["floor"]["ns"]["median"] > 0, name
        for p in PROGRAMS + ["drop-tcp-copy"]:
            s = row[p]["ns"]
            assert s["min"] <= s["p25"] <= s["median"] <= s["p75"] <= s["max"], (name, p)
            assert set(row[p]["over_floor"]) == {"median", "min", "max", "p25", "p75", "spread"}
        # The A/A column is drop-tcp minus its copy, as the table says.
        assert row["aa"] == round(row["drop-tcp"]["over_floor"]["median"]
                                  - row["drop-tcp-copy"]["over_floor"]["median"], 2), name
    aa = micro["aa"]
    worst = max(micro["classes"].values(), key=lambda row: abs(row["aa"]))
    assert (aa["max_ns"], aa["class"]) == (abs(worst["aa"]), worst["label"])
    assert aa["met"] == all(abs(row["aa"]) <= aa["limit_ns"][n] for n, row in micro["classes"].items())
    assert min(aa["limit_ns"].values()) == 0.5
    assert set(micro["programs"]) == {"floor", "drop-tcp-copy"} | set(PROGRAMS)
    assert micro["programs"]["floor"]["xlated_insns"] == 2
    assert micro["programs"]["drop-tcp-copy"] == micro["programs"]["drop-tcp"]
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
    assert live["aa"]["configs"] == ["drop-tcp-native", "drop-tcp-native-copy"]

    targets = data["targets"]
    assert [t["limit"] for t in targets[:10]] == ["> 0 ns"] * 3 + ["<= 0.25", "<= 0.5", ">= 0.95", ">= 2.0",
                                                              ">= 2.0", ">= 0.5", "<= 2.0 s"]
    assert [t["target"].split(":")[0] for t in targets[:10]] == ["micro"] * 5 + ["live"] * 4 + [
        "xdp-block load of 100,000 prefixes, wall, the slowest case"]
    for t in targets:
        assert t["status"] in ("met", "MISSED", "noise"), t
        assert t["met"] is (t["status"] == "met"), t
        assert f"{t['status']}: {t['text']}" in data["verdict"], t
    # Within the A/A figure is noise, beyond it met or missed.
    noise = aa["max_ns"]
    for t in targets[:3]:
        assert t["status"] == ("met" if t["value"] > noise else "MISSED" if t["value"] < -noise
                               else "noise"), t
    margin, noise = targets[5]["value"] - 0.95, abs(live["aa"]["rate_vs_floor"])
    assert targets[5]["status"] == ("met" if margin > noise else "MISSED" if margin < -noise
                                    else "noise")


def test_quick_run_prints_the_blocklist_tables(quick):
    _, stdout, _, out, *_ = quick
    load_s = json.loads((out / "bench.json").read_text())["blocklist"]["load_s"]
    lines = stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Blocklist, per-packet cost")))
    assert lines[start].startswith("Blocklist, per-packet cost (BPF_PROG_TEST_RUN behind spread-tail, CPU ")
    assert "2 loads x 1 rounds, each the fastest of 2 calls of 65536 runs, one per source" in lines[start]
    assert lines[start + 1].split() == ["IPv4", "prefixes", "listed,", "spread", "unlisted,", "spread",
                                        "listed,", "one", "source"]
    rows = [line[:22].strip() for line in lines[start + 2:start + 7]]
    assert rows == ["0", "1,000", "100,000", "10,000 /32", "xdp-filter alw_ip"]  # QUICK: no million
    # No listed source in an empty list; one listed source of each list but
    # the single addresses.
    assert lines[start + 2].split()[1] == "-" and lines[start + 2].split()[3] == "-"
    assert lines[start + 5].split()[-1] == "-"
    assert lines[start + 7].startswith("floor behind spread-tail: ")
    assert "xdp-block load of 100,000 prefixes (wall, one each): " + ", ".join(
        f"{case} {load_s[key]:.2f} s" for key, case in (("empty", "empty"), ("half_replaced", "half replaced"),
                                                         ("unchanged", "unchanged"))) in lines
    live = lines.index(next(line for line in lines if line.startswith("Blocklist, live frames")))
    assert "3 rounds, batches of 64" in lines[live]
    assert lines[live + 1].split() == ["configuration", "Mpps", "[min-max]", "ns/frame", "over", "floor",
                                       "x", "floor", "blocklist", "x"]
    assert [line[:52].rstrip() for line in lines[live + 2:live + 2 + len(BL_CONFIGS)]] == [
        "floor (XDP_DROP only), native", "blocklist, native, 100,000 prefixes",
        "blocklist again (A/A), native, 100,000 prefixes", "blocklist, one source, native, 100,000 prefixes",
        "nftables ingress, interval set, 100,000 prefixes", "iptables raw + ipset hash:net, 100,000 prefixes",
        "blocklist, native, 10,000 /32", "xdp-filter alw_ip, native, 10,000 /32"]


def test_quick_run_blocklist_json(quick):
    _, stdout, _, out, *_ = quick
    data = json.loads((out / "bench.json").read_text())
    bl = data["blocklist"]
    assert {n: v["prefixes"] for n, v in bl["meta"]["lists"].items()} == BL_LISTS
    assert bl["meta"]["lists"]["10k32"]["lengths"] == [32]
    assert bl["meta"]["lists"]["0"]["lengths"] == []
    assert {24, 32} <= set(bl["meta"]["lists"]["100k"]["lengths"]) <= set(range(16, 33))
    assert list(bl["load_s"]) == ["empty", "half_replaced", "unchanged"]
    assert all(0 < v < 120 for v in bl["load_s"].values())
    assert set(bl["setup_s"]) == set(BL_LISTS)

    m = bl["micro"]
    assert (m["loads"], m["rounds"], m["calls"], m["repeat"]) == (2, 2, 2, 65536)
    assert list(m["cells"]) == BL_CELLS
    assert "over_floor" not in m["cells"]["floor"]
    for name, cell in m["cells"].items():
        for key in ("ns", "over_floor") if name != "floor" else ("ns",):
            s = cell[key]
            assert s["min"] <= s["p25"] <= s["median"] <= s["p75"] <= s["max"], (name, key)
        assert cell["ns"]["median"] > 0, name
    assert m["aa_ns"] == round(m["cells"]["100k/listed"]["over_floor"]["median"]
                               - m["cells"]["100k-copy/listed"]["over_floor"]["median"], 2)
    insns = m["xlated_insns"]
    assert set(insns) == {"floor", "xdp-filter-ip", "100k-copy"} | set(BL_LISTS)
    assert insns["floor"] == 2
    assert len({insns[n] for n in list(BL_LISTS) + ["100k-copy"]}) == 1  # one object, every list

    lv = bl["live"]
    assert lv["rounds"] == 3
    assert list(lv["configs"]) == BL_CONFIGS
    for name, c in lv["configs"].items():
        assert 0 < c["mpps"]["min"] <= c["mpps"]["median"] <= c["mpps"]["max"], name
        assert c["frames_per_run"] >= 10000, name
    assert lv["configs"]["floor"]["over_floor_ns"]["max"] == 0
    assert lv["configs"]["blocklist-100k-hot"]["sources"] == "hot"
    assert set(lv["ratios"]) == BL_RATIOS
    # Each ratio is the other's ns per frame over the blocklist's, per round.
    for key, s in lv["ratios"].items():
        mine, other = key.split("/")
        per_round = sorted(r[other][1] / r[mine][1] for r in lv["raw_ns_per_frame"])
        # (rounded to 3 places from figures themselves rounded: one in the
        # last place either way)
        assert s["min"] == pytest.approx(per_round[0], abs=0.0015), key
        assert s["max"] == pytest.approx(per_round[-1], abs=0.0015), key
        assert s["median"] == pytest.approx(per_round[1], abs=0.0015), key
    assert set(bl["live_setup_s"]) == {"nft-set-100k", "ipset-100k", "xdp-filter-ip-10k32"}

    # The blocklist's targets, each with its figure, judged against its A/A.
    targets = data["targets"][6:10]
    for t, peer in zip(targets, ("nft-set-100k", "ipset-100k")):
        assert t["value"] == lv["ratios"][f"blocklist-100k/{peer}"]["median"]
        noise = abs(t["value"] - lv["ratios"][f"blocklist-100k-copy/{peer}"]["median"])
        margin = t["value"] - 2.0
        assert t["status"] == ("met" if margin > noise else "MISSED" if margin < -noise else "noise"), t
    t = targets[2]
    cfg = lv["configs"]
    assert t["value"] == cfg["blocklist-100k"]["rate_vs_floor"]["median"]
    noise = abs(t["value"] - cfg["blocklist-100k-copy"]["rate_vs_floor"]["median"])
    margin = t["value"] - 0.5
    assert t["status"] == ("met" if margin > noise else "MISSED" if margin < -noise else "noise"), t
    t = targets[3]
    assert (t["value"], t["case"]) == max((v, k) for k, v in bl["load_s"].items())
    assert t["status"] == ("met" if t["value"] <= 2.0 else "MISSED")
    for t in targets:
        assert f"{t['status']}: {t['text']}" in data["verdict"], t
    assert data["meta"]["seconds_per_part"]["blocklist"] > 0


def test_quick_run_plot_is_a_png(quick):
    _, _, _, out, *_ = quick
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


# (signal, the phase's line on stderr, the options that make it last, the
# namespaces it has made by then)
PHASES = {
    "per-packet": (signal.SIGINT, "per-packet bench:", ["--loads", "1000"], 1),
    "per-packet-term": (signal.SIGTERM, "per-packet bench:", ["--loads", "1000"], 1),
    "live": (signal.SIGINT, "live bench:", ["--live-rounds", "1000"], 1 + len(CONFIGS)),
    "live-term": (signal.SIGTERM, "live bench:", ["--live-rounds", "1000"], 1 + len(CONFIGS)),
    # While xdp-block loads the lists into the bench's own bpffs.
    "blocklist-lists": (signal.SIGINT, "blocklist: generating the lists", [], 1 + len(CONFIGS)),
    "blocklist-per-packet": (signal.SIGTERM, "blocklist per-packet bench:", ["--blocklist-loads", "1000"],
                             1 + len(CONFIGS)),
    "blocklist-live": (signal.SIGINT, "blocklist live bench:", ["--blocklist-rounds", "1000"],
                       1 + len(CONFIGS) + len(BL_CONFIGS)),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_interrupted_bench_cleans_up(tmp_path, phase):
    """Stopped in the middle of any part, the bench removes its
    namespaces, puts the sysctl back, leaves no pin, mount, directory or
    process behind."""
    sig, marker, longer, want = PHASES[phase]
    stats_before = STATS.read_text()
    pins_before = pins()
    left_before = leftovers()
    err = tmp_path / "stderr"
    with open(err, "w") as f:
        p = subprocess.Popen(BENCH + ["--quick", "--out", str(tmp_path)] + longer,
                             stdout=subprocess.DEVNULL, stderr=f, text=True, env=paths.python_env())
    try:
        deadline = time.monotonic() + 90
        while marker not in err.read_text() or len(bench_namespaces(p.pid)) < want or \
                (phase == "blocklist-lists" and not any("-bpffs-" in x
                                                        for x in leftovers() - left_before)):
            assert p.poll() is None, err.read_text()
            assert time.monotonic() < deadline, f"the {phase} part never started"
            time.sleep(0.05)
        time.sleep(1)
        workers = children(p.pid)
        assert workers, "the bench runs its programs in child processes"
        p.send_signal(sig)
        p.wait(timeout=60)
        stderr = err.read_text()
        assert p.returncode == 130, stderr
        assert f"interrupted ({sig.name}): removing its namespaces" in stderr
        assert bench_namespaces(p.pid) == []
        assert STATS.read_text() == stats_before
        assert pins() - pins_before == set()
        assert leftovers() - left_before == set()
        assert [w for w in workers if os.path.exists(f"/proc/{w}")] == []
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


def netns_names():
    """The bench's namespaces now (other tests may be making their own)."""
    names = os.listdir("/var/run/netns") if os.path.isdir("/var/run/netns") else []
    return {n for n in names if n.startswith("ipxdp-bench-")}


def bench_ab(parse, out):
    return subprocess.run(["make", "-s", "-C", str(ROOT), "bench-ab", f"PARSE={parse}", "QUICK=1",
                           f"AB_OUT={out}"], capture_output=True, text=True, timeout=120)


def test_quick_ab_of_a_parser_copy(tmp_path):
    """make bench-ab: drop-tcp built from another parse.h (here a copy)
    against drop-tcp as built, each twice; every class and depth in the
    table, B - A as the JSON's copies give it, nothing left behind."""
    parse = tmp_path / "parse-copy.h"
    parse.write_text((ROOT / "include" / "parse.h").read_text())
    stats_before, pins_before, netns_before = STATS.read_text(), pins(), netns_names()
    p = bench_ab(parse, tmp_path / "ab.json")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("A/B (BPF_PROG_TEST_RUN, ")]
    assert len(start) == 1, p.stdout
    table = lines[start[0]:]
    assert "2 loads x 1 round(s), each the fastest of 2 calls of " in table[0]
    assert table[1].split() == ["class", "A", "A2", "B", "B2", "B-A", "A/A", "B/B", "price", "A", "price", "B"]
    labels = ["IPv4 TCP", "IPv4 UDP", "IPv4 TCP to 9090", "IPv6 TCP", "VLAN IPv4 TCP", "QinQ IPv6 TCP",
              "IPv6 3 ext hdrs TCP", "IPv4 40B options TCP", "ARP"] + [f"{n} ext hdrs" for n in range(1, 7)]
    assert [row[:22].strip() for row in table[2:2 + len(labels)]] == labels
    assert table[2 + len(labels)].startswith("B - A: ")
    assert table[3 + len(labels)].startswith("Instructions after the verifier: A ")
    data = json.loads((tmp_path / "ab.json").read_text())
    assert data["summary"] == table[2 + len(labels)]
    assert data["meta"]["b_object"].endswith("build/bench/ab/drop-tcp.o")
    for name, row in data["classes"].items():
        m = row["over_floor"]
        assert row["b_minus_a"] == round((m["B"] + m["B2"]) / 2 - (m["A"] + m["A2"]) / 2, 3), name
        assert row["aa"] == round(m["A"] - m["A2"], 3), name
    assert data["noise_ns"] == max(max(abs(r["aa"]), abs(r["bb"])) for r in data["classes"].values())
    assert netns_names() - netns_before == set()
    assert STATS.read_text() == stats_before
    assert pins() - pins_before == set()


def test_ab_refuses_a_parser_that_changes_a_verdict(tmp_path):
    """B is timed only if it gives drop-tcp's verdict on every frame: a
    parser that calls every IPv4 packet TCP drops the UDP frame."""
    parse = tmp_path / "parse.h"
    text = (ROOT / "include" / "parse.h").read_text()
    assert text.count("info->proto = iph->protocol;") == 1
    parse.write_text(text.replace("info->proto = iph->protocol;", "info->proto = IPPROTO_TCP;"))
    netns_before = netns_names()
    p = bench_ab(parse, tmp_path / "ab.json")
    assert p.returncode != 0
    assert "ab: B gives DROP on ipv4-udp, expected PASS: not timing a wrong program" in p.stderr
    assert not (tmp_path / "ab.json").exists()
    assert netns_names() - netns_before == set()


FRAGS = ["drop-tcp", "count", "port-9090"]
JUMBO = {"jumbo-ipv4-tcp": ("9000B IPv4 TCP", {"drop-tcp": "DROP", "count": "PASS", "port-9090": "DROP"}),
         "jumbo-ipv4-udp": ("9000B IPv4 UDP", {"drop-tcp": "PASS", "count": "PASS", "port-9090": "PASS"})}


def test_quick_run_multibuffer_rows(quick):
    """Each program's xdp.frags section next to its plain one on every
    common class, and on the 9,000-byte frames over the floor's twin, with
    the verdicts checked; the table, the JSON and the verdict entry agree."""
    _, stdout, _, out, *_ = quick
    data = json.loads((out / "bench.json").read_text())
    micro = data["micro"]
    mb = micro["multibuffer"]
    assert set(mb["programs"]) == {"floor.frags"} | {f"{p}.frags" for p in FRAGS}
    assert mb["programs"]["floor.frags"]["xlated_insns"] == 2
    for p in FRAGS:
        assert mb["programs"][f"{p}.frags"]["section"] == "xdp.frags"
        assert mb["programs"][f"{p}.frags"]["xlated_insns"] > 0
    # drop-tcp's two entry points are the same instructions (count's calls
    # bpf_xdp_get_buff_len() instead of reading data_end - data).
    assert mb["programs"]["drop-tcp.frags"] == dict(micro["programs"]["drop-tcp"], section="xdp.frags")
    assert list(mb["classes"]) == CLASSES
    for name, row in mb["classes"].items():
        assert row["label"] == micro["classes"][name]["label"]
        for p in FRAGS:
            d = row[p]["frags_minus_plain"]
            assert d["min"] <= d["p25"] <= d["median"] <= d["p75"] <= d["max"], (name, p)
            assert set(row[p]["frags_over_floor"]) == {"median", "min", "max", "p25", "p75", "spread"}
    for p in FRAGS:
        worst = max(mb["classes"].values(), key=lambda row: row[p]["frags_minus_plain"]["median"])
        assert mb["worst"][p] == {"ns": worst[p]["frags_minus_plain"]["median"], "class": worst["label"]}
    assert list(mb["jumbo"]) == list(JUMBO)
    for name, (label, verdicts) in JUMBO.items():
        row = mb["jumbo"][name]
        assert (row["label"], row["bytes"], row["verdicts"]) == (label, 9000, verdicts)
        assert row["floor"]["ns"]["median"] > 0
        for p in FRAGS:
            s = row[p]["ns"]
            assert 0 < s["min"] <= s["median"] <= s["max"], (name, p)
    # The plain programs never see a jumbo frame.
    assert not set(JUMBO) & set(micro["classes"])

    lines = stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Multi-buffer entry point")))
    assert lines[start + 1].split() == ["class"] + FRAGS
    labels = [micro["classes"][n]["label"] for n in CLASSES]
    assert [line[:22].strip() for line in lines[start + 2:start + 2 + len(labels)]] == labels
    jumbo_head = start + 2 + len(labels)
    assert lines[jumbo_head].startswith("On 9000-byte frames (multi-buffer in BPF_PROG_TEST_RUN")
    assert lines[jumbo_head + 1].split() == ["frame", "floor", "ns"] + FRAGS + ["verdicts"]
    for i, (label, verdicts) in enumerate(JUMBO.values()):
        line = lines[jumbo_head + 2 + i]
        assert line.startswith(label)
        assert line.endswith(", ".join(f"{p} {v}" for p, v in verdicts.items()))
    assert lines[jumbo_head + 4].startswith("Instructions after the verifier (xdp.frags): floor.frags 2, ")

    t = data["targets"][-1]
    noise = micro["aa"]["max_ns"]
    assert t["target"].startswith("micro: xdp.frags minus plain section on 1-buffer frames")
    assert t["value"] == {p: mb["worst"][p]["ns"] for p in FRAGS}
    per = ["met" if -v > noise else "MISSED" if -v < -noise else "noise" for v in t["value"].values()]
    assert t["status"] == ("MISSED" if "MISSED" in per else "noise" if "noise" in per else "met")
    assert t["text"].startswith("xdp.frags costs no more than the plain section on 1-buffer frames "
                                f"beyond the A/A noise ({noise:.2f} ns); worst class per program: ")
    assert f"{t['status']}: {t['text']}" in data["verdict"]
