# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""ipxdp-metrics.service and ipxdp-metrics.timer, without systemd as PID 1.

- `systemd-analyze verify` on the installed pair prints nothing (stderr is
  what counts: it exits 0 even for unknown keys), and would print a
  misspelt key;
- the timer fires every 15 s, as `systemd-analyze calendar` computes it,
  with an accuracy that does not coalesce the runs;
- the service writes into the directory Debian's node_exporter reads by
  default, and is skipped where that directory does not exist;
- `make install` and the .deb ship both, and the package enables and
  starts neither (no maintainer script mentions them).
"""

import datetime
import os
import re
import subprocess

import pytest

from ipxdp.paths import ROOT
from promtools import DEBIAN_TEXTFILE_DIR

UNITS = ["ipxdp-metrics.service", "ipxdp-metrics.timer"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """ipxdp installed for real under a temporary PREFIX."""
    p = tmp_path_factory.mktemp("prefix")
    res = run(["make", "--no-print-directory", "-C", str(ROOT), "install", f"PREFIX={p}"])
    assert res.returncode == 0, res.stderr
    return p


def unit_path(prefix, name):
    return prefix / "lib" / "systemd" / "system" / name


def verify(prefix, path):
    return run(["systemd-analyze", "verify", str(path)],
               env={**os.environ, "MANPATH": str(prefix / "share" / "man")})


def keys(text):
    """{key: value} of a unit file's settings (each key once here)."""
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.M))


@pytest.mark.parametrize("name", UNITS)
def test_verify_is_clean(prefix, name):
    res = verify(prefix, unit_path(prefix, name))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_verify_would_see_a_mistake(prefix, tmp_path):
    for name in UNITS:
        text = unit_path(prefix, name).read_text()
        (tmp_path / name).write_text(text.replace("AccuracySec=", "AccuracySecs="))
    res = verify(prefix, tmp_path / "ipxdp-metrics.timer")
    assert "Unknown key name 'AccuracySecs' in section 'Timer', ignoring." in res.stderr \
        or "Unknown key 'AccuracySecs' in section [Timer], ignoring." in res.stderr


def test_timer_fires_every_15_seconds(prefix):
    timer = keys(unit_path(prefix, "ipxdp-metrics.timer").read_text())
    assert timer["AccuracySec"] == "1s"
    assert timer["WantedBy"] == "timers.target"
    res = run(["systemd-analyze", "calendar", "--iterations=5", timer["OnCalendar"]])
    assert res.returncode == 0, res.stderr
    times = [datetime.datetime.strptime(m, "%Y-%m-%d %H:%M:%S")
             for m in re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+)", res.stdout)]
    assert len(times) == 5, res.stdout
    assert {(b - a).total_seconds() for a, b in zip(times, times[1:])} == {15}


def test_service_writes_debians_textfile_directory(prefix):
    service = keys(unit_path(prefix, "ipxdp-metrics.service").read_text())
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == f"{prefix}/sbin/xdp-stats --textfile {DEBIAN_TEXTFILE_DIR}"
    assert service["ConditionPathIsDirectory"] == str(DEBIAN_TEXTFILE_DIR)


def test_the_package_ships_them_disabled(tmp_path):
    out = tmp_path / "deb"
    res = run(["make", "--no-print-directory", "-C", str(ROOT), "deb", f"IPXDP_DEB_DIR={out}"])
    assert res.returncode == 0, res.stdout + res.stderr
    (deb,) = out.glob("ipxdp_*.deb")
    listing = run(["dpkg-deb", "-c", str(deb)], check=True).stdout
    for name in UNITS:
        assert f" ./usr/lib/systemd/system/{name}\n" in listing
    control = tmp_path / "control"
    run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    for name in ["preinst", "postinst", "prerm", "postrm"]:
        script = control / name
        assert not script.exists() or "ipxdp-metrics" not in script.read_text(), name
