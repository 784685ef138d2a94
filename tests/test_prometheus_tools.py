# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Debian's node_exporter and promtool behave as the metrics tests assume.

tests/promtools.py installs prometheus-node-exporter with no daemon left
running, runs its binary with only the textfile collector on 127.0.0.1,
and fetches promtool without the prometheus package's dependencies.  These
tests check that harness against the real programs: a textfile's values
come back exactly through a scrape (label values with `"` and `\\`
included), a file the exporter's user cannot read is a scrape error (why
the textfile writer must write mode 0644), and promtool accepts a good
exposition and refuses bad ones.
"""

import json
import os
import pathlib
import re
import stat
import tempfile

import pytest

import promtools
from ipxdp.paths import ROOT
from promtools import NodeExporter, check_metrics, parse, value

MONITORING = (ROOT / "docs" / "monitoring.md").read_text()

GOOD = """\
# HELP ipxdp_test_packets_total Packets seen.
# TYPE ipxdp_test_packets_total counter
ipxdp_test_packets_total{interface="eth0",protocol="tcp"} 42
ipxdp_test_packets_total{interface="a\\"b\\\\c",protocol="udp"} 9007199254740992
"""


def policy_state():
    p = promtools.POLICY_RC_D
    if not os.path.lexists(p):
        return None
    st = os.lstat(p)
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
            os.readlink(p) if os.path.islink(p) else p.read_bytes())


@pytest.fixture(scope="module")
def node_exporter():
    """Installed (if it was not), with nothing left running."""
    before_policy = policy_state()
    before = promtools.daemon_pids()
    binary = promtools.install_node_exporter()
    assert promtools.installed("prometheus-node-exporter")
    assert set(promtools.daemon_pids()) - set(before) == set(), "a daemon was started"
    assert policy_state() == before_policy
    return binary


@pytest.fixture
def textfiles():
    """A textfile directory any user can read (pytest's own tmp_path is not)."""
    with tempfile.TemporaryDirectory(prefix="ipxdp-textfile.") as d:
        os.chmod(d, 0o755)
        yield pathlib.Path(d)


def test_debian_default_textfile_directory(node_exporter):
    """The directory ipxdp-metrics.service writes into is the one Debian's
    node_exporter reads without any flag."""
    res = promtools._run([str(node_exporter), "--help"], timeout=30)
    assert '--collector.textfile.directory="/var/lib/prometheus/node-exporter"' \
        in res.stdout + res.stderr
    assert promtools.DEBIAN_TEXTFILE_DIR.is_dir()


def test_services_refused_inside_and_restored_after():
    before = policy_state()
    with promtools.services_refused():
        assert promtools._policy_refuses()
    assert policy_state() == before


@pytest.mark.parametrize("existing", [None, "#!/bin/sh\nexit 0\n"])
def test_services_refused_creates_or_swaps_and_restores(tmp_path, monkeypatch, existing):
    """The other two cases, on a stand-in path: no policy-rc.d (one is made,
    then removed), and one that allows starts (moved aside, put back)."""
    path = tmp_path / "policy-rc.d"
    monkeypatch.setattr(promtools, "POLICY_RC_D", path)
    if existing:
        path.write_text(existing)
        path.chmod(0o750)
    with promtools.services_refused():
        assert promtools._policy_refuses()
        assert sorted(p.name for p in tmp_path.iterdir()) == \
            (["policy-rc.d", "policy-rc.d.ipxdp-saved"] if existing else ["policy-rc.d"])
    if existing:
        assert path.read_text() == existing and stat.S_IMODE(path.stat().st_mode) == 0o750
        assert sorted(p.name for p in tmp_path.iterdir()) == ["policy-rc.d"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_textfile_values_come_back_through_a_scrape(node_exporter, textfiles):
    (textfiles / "ipxdp.prom").write_text(GOOD)
    (textfiles / "ipxdp.prom").chmod(0o644)
    with NodeExporter(textfiles) as ne:
        samples = parse(ne.scrape())
    assert value(samples, "ipxdp_test_packets_total", interface="eth0", protocol="tcp") == 42
    (odd,) = [s for s in samples if s.labels.get("protocol") == "udp"]
    assert odd.labels == {"interface": 'a"b\\c', "protocol": "udp"}
    # node_exporter stores float64: 2^53 is the last integer it keeps exactly.
    assert odd.value == 2 ** 53
    assert value(samples, "node_textfile_scrape_error") == 0
    assert ne.proc.poll() is not None  # killed on exit
    assert ne.proc.pid not in promtools.daemon_pids()


@pytest.mark.parametrize("mode, error", [(0o600, 1), (0o644, 0)])
def test_a_file_the_exporter_cannot_read_is_a_scrape_error(node_exporter, textfiles, mode, error):
    """As Debian runs it, as user prometheus: mktemp's 0600 is not enough."""
    (textfiles / "ipxdp.prom").write_text(GOOD)
    (textfiles / "ipxdp.prom").chmod(mode)
    with NodeExporter(textfiles, user="prometheus") as ne:
        samples = parse(ne.scrape())
    assert value(samples, "node_textfile_scrape_error") == error
    found = [s for s in samples if s.name == "ipxdp_test_packets_total"]
    assert len(found) == (2 if error == 0 else 0)


def test_promtool_accepts_a_good_exposition():
    res = check_metrics(GOOD)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_promtool_refuses_bad_ones():
    res = check_metrics(GOOD.replace("ipxdp_test_packets_total", "ipxdp_test_packets"))
    assert res.returncode == 3
    assert 'ipxdp_test_packets counter metrics should have "_total" suffix' in res.stdout + res.stderr
    res = check_metrics(GOOD.replace('a\\"b', 'a"b'))
    assert res.returncode == 1, res.stdout + res.stderr


def test_parse_reads_the_escapes_and_raw_values():
    samples = parse('m{a="x\\\\y",b="q\\"r",c="l\\nm"} 18446744073709551615\nn 1 1700000000000\n')
    assert samples[0].labels == {"a": "x\\y", "b": 'q"r', "c": "l\nm"}
    assert samples[0].raw == "18446744073709551615"
    assert (samples[1].name, samples[1].value) == ("n", 1.0)
    with pytest.raises(ValueError):
        parse('m{a="x} 1\n')


# docs/monitoring.md --------------------------------------------------------

def fenced_blocks(text):
    """(language, body) of each fenced code block."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.M | re.S)


def section(title):
    (body,) = re.findall(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", MONITORING,
                         flags=re.M | re.S)
    return body


def test_the_documented_file_is_valid():
    (example,) = [b for _, b in fenced_blocks(MONITORING)
                  if b.startswith("# HELP ipxdp_count_packets_total")]
    res = check_metrics(example)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    names = {s.name for s in parse(example)}
    documented = set(re.findall(r"^\| `(ipxdp_\w+)` \|", section("The metrics"), flags=re.M))
    # Every metric of the example is in the table; the per-prefix ones
    # need --top and are not in the example.
    assert names <= documented
    assert documented - names == {"ipxdp_blocklist_prefix_packets_total",
                                  "ipxdp_blocklist_prefix_bytes_total"}


def test_the_documented_rules_and_queries_are_valid(tmp_path):
    (rules,) = [b for lang, b in fenced_blocks(MONITORING) if lang == "yaml"]
    (tmp_path / "alerts.yml").write_text(rules)
    queries = [b.strip() for _, b in fenced_blocks(section("Example queries"))]
    assert len(queries) == 5
    recording = {"groups": [{"name": "queries", "rules": [
        {"record": f"ipxdp:example{i}", "expr": q} for i, q in enumerate(queries)]}]}
    (tmp_path / "queries.yml").write_text(json.dumps(recording))  # JSON is YAML
    for name in ["alerts.yml", "queries.yml"]:
        res = promtools._run([str(promtools.promtool()), "check", "rules", str(tmp_path / name)])
        assert res.returncode == 0, res.stdout + res.stderr
        assert "SUCCESS" in res.stdout, res.stdout
    assert "sum by (protocol) (rate(ipxdp_count_packets_total[1m]))" in queries
