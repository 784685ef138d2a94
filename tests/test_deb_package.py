# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The Debian package: built, inspected, installed, used, purged.

`make deb` builds it from a temporary copy of the tree with
`dpkg-buildpackage -us -uc -b`.  The test checks its control fields and that
its files are those of `make install PREFIX=/usr` (debhelper compresses the
man pages and the larger docs, and adds copyright and changelog.gz).  It
then installs it with `apt-get install ./ipxdp_….deb`, runs the installed
scripts (an attach by object name on a veth in a throwaway namespace) and
purges it, also when something fails on the way.

The machine must not have ipxdp installed already, nor the list files in
/etc/ipxdp: the test would replace them.
"""

import json
import os
import pathlib
import re
import subprocess

import pytest

from ipxdp.netns import namespace_with_veth
from ipxdp.paths import ROOT
SCRIPTS = ["xdp-attach", "xdp-detach", "xdp-status", "xdp-stats", "xdp-block"]
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
APT_OPTS = ["-o", "DPkg::Lock::Timeout=120", "-y", "-q"]


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def version():
    lib = (ROOT / "scripts" / "xdp-lib.sh").read_text()
    (v,) = re.findall(r"^IPXDP_VERSION=(\S+)$", lib, re.M)
    return v


def installed():
    res = run(["dpkg-query", "-W", "-f=${Status}", "ipxdp"])
    return res.returncode == 0 and "installed" in res.stdout.split()


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    res = run(["make", "--no-print-directory", "-C", str(ROOT), "deb",
               f"IPXDP_DEB_DIR={out}"], timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    arch = run(["dpkg", "--print-architecture"], check=True).stdout.strip()
    path = out / f"ipxdp_{version()}_{arch}.deb"
    assert path.exists(), sorted(os.listdir(out))
    return path


def field(deb, name):
    return run(["dpkg-deb", "-f", str(deb), name], check=True).stdout.strip()


def test_control_fields(deb):
    arch = run(["dpkg", "--print-architecture"], check=True).stdout.strip()
    assert field(deb, "Package") == "ipxdp"
    assert field(deb, "Version") == version()
    assert field(deb, "Architecture") == arch
    assert field(deb, "Maintainer") == "ipxdp maintainers <maintainers@ipxdp.invalid>"
    assert field(deb, "Depends") == "iproute2, bpftool, jq, binutils, mount"
    assert field(deb, "Recommends") == "ethtool"


def test_the_scripts_need_nothing_else(deb):
    """Depends lists every tool the scripts check for, minus Essential ones."""
    needed = set()
    for s in SCRIPTS + ["xdp-lib.sh"]:
        for line in re.findall(r"ipxdp_require_tools ([^\n#]*)",
                               (ROOT / "scripts" / s).read_text()):
            needed.update(line.split())
    owner = {"ip": "iproute2", "bpftool": "bpftool", "jq": "jq", "readelf": "binutils",
             "mount": "mount", "awk": "essential", "flock": "essential",
             "unshare": "essential", "realpath": "essential", "stat": "essential",
             "sort": "essential", "sed": "essential", "cut": "essential", "mv": "essential",
             "mkfifo": "essential"}
    assert needed - set(owner) == set(), "a tool the test does not know about"
    depends = set(field(deb, "Depends").split(", "))
    assert {owner[t] for t in needed} - {"essential"} == depends


def test_same_layout_as_make_install(deb, tmp_path):
    dest = tmp_path / "dest"
    res = run(["make", "--no-print-directory", "-C", str(ROOT), "install",
               f"DESTDIR={dest}", "PREFIX=/usr"])
    assert res.returncode == 0, res.stderr
    installed_files = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}

    listing = run(["dpkg-deb", "-c", str(deb)], check=True).stdout
    packaged = set()
    for line in listing.splitlines():
        mode, path = line.split()[0], line.split()[-1]
        if mode.startswith("-"):
            packaged.add(re.sub(r"\.gz$", "", path[2:]))  # ./usr/... -> usr/...
    debian_adds = {"usr/share/doc/ipxdp/copyright", "usr/share/doc/ipxdp/changelog"}
    assert packaged == installed_files | debian_adds

    # The objects keep their BTF (nothing stripped them).
    x = tmp_path / "x"
    run(["dpkg-deb", "-x", str(deb), str(x)], check=True)
    for obj in (x / "usr/lib/bpf/ipxdp").iterdir():
        sections = run(["readelf", "-SW", str(obj)], check=True).stdout
        assert " .BTF " in sections and " .BTF.ext " in sections, obj.name


def test_the_lists_are_conffiles(deb):
    """/etc/ipxdp/blocklist.txt and allow.txt: dpkg keeps an admin's edits."""
    res = run(["dpkg-deb", "-I", str(deb), "conffiles"], check=True)
    assert sorted(res.stdout.split()) == ["/etc/ipxdp/allow.txt", "/etc/ipxdp/blocklist.txt"]


def test_install_use_purge(deb):
    assert not installed(), "ipxdp is already installed here: the test would replace it"
    for f in ("blocklist.txt", "allow.txt"):
        assert not os.path.exists(f"/etc/ipxdp/{f}"), f"/etc/ipxdp/{f} exists: the package would take it over"
    try:
        res = run(["apt-get", "install", *APT_OPTS, str(deb)],
                  env=APT_ENV, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert installed()

        for s in SCRIPTS:
            res = run([f"/usr/sbin/{s}", "--version"], cwd="/")
            assert (res.returncode, res.stdout, res.stderr) == (0, f"ipxdp {version()}\n", "")
        res = run(["man", "-w", "xdp-attach"])
        assert res.stdout.strip() == "/usr/share/man/man8/xdp-attach.8.gz"
        for unit in ("xdp-attach@eth0.service", "ipxdp-blocklist.service"):
            res = run(["systemd-analyze", "verify", f"/usr/lib/systemd/system/{unit}"])
            assert (res.returncode, res.stderr) == (0, ""), unit
        for f in ("blocklist.txt", "allow.txt"):
            assert pathlib.Path("/etc/ipxdp", f).read_text() == (ROOT / "systemd" / f).read_text()

        with namespace_with_veth("ipxdp-deb", "va", "vb") as ns:
            res = ns.run(["/usr/sbin/xdp-attach", "va", "drop-tcp"])
            assert res.returncode == 0, res.stderr
            # xdp.frags: the package's multi-buffer probe ran
            xdp = ns.xdp()
            assert xdp["prog"]["name"] == "xdp_drop_tcp_mb"
            assert res.stdout == \
                f"va: drop-tcp attached (native, multi-buffer, prog id {xdp['prog']['id']})\n"
            res = ns.run(["/usr/sbin/xdp-status", "--json", "va"])
            assert res.returncode == 0, res.stderr
            (row,) = json.loads(res.stdout)
            assert (row["object"], row["section"], row["id"]) == \
                ("drop-tcp.o", "xdp.frags", xdp["prog"]["id"])
            res = ns.run(["/usr/sbin/xdp-detach", "va"])
            assert res.returncode == 0, res.stderr
            assert ns.xdp() is None
    finally:
        purge = run(["apt-get", "purge", *APT_OPTS, "ipxdp"], env=APT_ENV, timeout=300)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert not installed()
    for path in ["/usr/sbin/xdp-attach", "/usr/lib/ipxdp", "/usr/lib/bpf/ipxdp",
                 "/usr/lib/systemd/system/xdp-attach@.service", "/usr/share/doc/ipxdp",
                 "/usr/share/man/man8/xdp-attach.8.gz", "/etc/ipxdp/blocklist.txt",
                 "/usr/lib/systemd/system/ipxdp-blocklist.service"]:
        assert not os.path.exists(path), path
