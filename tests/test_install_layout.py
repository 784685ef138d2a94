# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""make install / make uninstall, and the installed copies at work.

- install into a DESTDIR writes exactly the documented files, with the
  documented modes, and the installed copies point at PREFIX (never at
  DESTDIR or at the source tree);
- uninstall removes exactly those files and ipxdp's own directories, and
  leaves everything else that was there;
- installed with a PREFIX of their own, the scripts run, find their library,
  and look objects up by name in the installed object folder;
- the man pages render without a single groff warning and document every
  option the scripts' --help lists.
"""

import os
import re
import stat
import subprocess

import pytest

from ipxdp.netns import namespace_with_veth
from ipxdp import paths
from ipxdp.paths import ROOT
BUILD = ROOT / "build"
SCRIPTS = ["xdp-attach", "xdp-detach", "xdp-status", "xdp-stats", "xdp-block"]
OBJECTS = ["drop-tcp", "count", "port-9090", "blocklist"]


def make(*args, check=True):
    res = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args],
                         capture_output=True, text=True, timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed: {res.stderr.strip()}")
    return res


def docs():
    """README.md and docs/*.md, installed side by side."""
    readme = ["README.md"] if (ROOT / "README.md").exists() else []
    return readme + sorted(p.name for p in (ROOT / "docs").glob("*.md"))


def version():
    lib = (ROOT / "scripts" / "xdp-lib.sh").read_text()
    (v,) = re.findall(r"^IPXDP_VERSION=(\S+)$", lib, re.M)
    return v


LISTS = ["blocklist.txt", "allow.txt"]


def confdir(prefix):
    """Where the configuration goes: /etc/ipxdp for the system prefixes."""
    return "etc/ipxdp" if prefix in ("/usr", "/usr/local") else f"{prefix.strip('/')}/etc/ipxdp"


def expected_files(prefix):
    """{path relative to DESTDIR: mode} for `make install PREFIX=prefix`."""
    p = prefix.strip("/")
    files = {f"{p}/sbin/{s}": 0o755 for s in SCRIPTS}
    files[f"{p}/lib/ipxdp/xdp-lib.sh"] = 0o644
    files[f"{p}/lib/ipxdp/xdp-frags-probe.o"] = 0o644  # xdp-attach's probe, not an object
    files.update({f"{p}/lib/bpf/ipxdp/{o}.o": 0o644 for o in OBJECTS})
    files[f"{p}/lib/systemd/system/xdp-attach@.service"] = 0o644
    files[f"{p}/lib/systemd/system/ipxdp-blocklist.service"] = 0o644
    files.update({f"{confdir(prefix)}/{f}": 0o644 for f in LISTS})
    files.update({f"{p}/lib/systemd/system/ipxdp-metrics.{u}": 0o644 for u in ("service", "timer")})
    files.update({f"{p}/share/man/man8/{s}.8": 0o644 for s in SCRIPTS})
    files.update({f"{p}/share/doc/ipxdp/{d}": 0o644 for d in docs()})
    files[f"{p}/share/doc/ipxdp/examples/eth0.conf"] = 0o644
    return files


def tree(root):
    """{relative path: mode} of every file, and the set of directories."""
    files, dirs = {}, set()
    for path in root.rglob("*"):
        rel = str(path.relative_to(root))
        if path.is_dir() and not path.is_symlink():
            dirs.add(rel)
        else:
            files[rel] = stat.S_IMODE(path.lstat().st_mode)
    return files, dirs


def marker_lines(text, marker):
    return [line for line in text.splitlines() if line.endswith(f"# {marker}")]


def test_install_into_destdir(tmp_path):
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    files, _ = tree(dest)
    assert files == expected_files("/usr")

    for o in OBJECTS:
        assert (dest / f"usr/lib/bpf/ipxdp/{o}.o").read_bytes() == \
            (BUILD / f"{o}.o").read_bytes()
    assert (dest / "usr/lib/ipxdp/xdp-frags-probe.o").read_bytes() == \
        (ROOT / "build" / "probe" / "xdp-frags-probe.o").read_bytes()

    # Each installed script differs from its source in its one marked line.
    for s in SCRIPTS:
        src = (ROOT / "scripts" / s).read_text().splitlines()
        out = (dest / f"usr/sbin/{s}").read_text().splitlines()
        assert len(src) == len(out)
        diff = [(a, b) for a, b in zip(src, out) if a != b]
        assert len(diff) == 1, s
        assert diff[0][1] == "IPXDP_LIBDIR=/usr/lib/ipxdp # @IPXDP_LIBDIR@"
        assert diff[0][0].endswith("# @IPXDP_LIBDIR@")
    lib = (dest / "usr/lib/ipxdp/xdp-lib.sh").read_text()
    assert marker_lines(lib, "@IPXDP_OBJDIR@") == \
        ["IPXDP_OBJDIR=/usr/lib/bpf/ipxdp # @IPXDP_OBJDIR@"]
    assert marker_lines(lib, "@IPXDP_FRAGS_PROBE@") == \
        ["IPXDP_FRAGS_PROBE=/usr/lib/ipxdp/xdp-frags-probe.o # @IPXDP_FRAGS_PROBE@"]
    # ... and in nothing else.
    src = (ROOT / "scripts" / "xdp-lib.sh").read_text().splitlines()
    assert len(src) == len(lib.splitlines())
    assert [b for a, b in zip(src, lib.splitlines()) if a != b] == \
        marker_lines(lib, "@IPXDP_OBJDIR@") + marker_lines(lib, "@IPXDP_FRAGS_PROBE@")

    unit = (dest / "usr/lib/systemd/system/xdp-attach@.service").read_text()
    assert "ExecStart=/usr/sbin/xdp-attach " in unit
    assert "ExecStop=/usr/sbin/xdp-detach -- %I" in unit
    assert "/usr/local" not in unit
    unit = (dest / "usr/lib/systemd/system/ipxdp-blocklist.service").read_text()
    assert "ExecStart=/usr/sbin/xdp-block load --allow /etc/ipxdp/allow.txt\n" in unit
    assert "/usr/local" not in unit
    for f in LISTS:  # empty and commented: nothing but comments
        text = (dest / "etc/ipxdp" / f).read_text()
        assert text == (ROOT / "systemd" / f).read_text()
        assert all(line.startswith("#") for line in text.splitlines()) and f"/etc/ipxdp/{f}" in text
    assert "/usr/lib/bpf/ipxdp/" in (dest / "usr/share/man/man8/xdp-attach.8").read_text()

    # Nothing installed knows about DESTDIR or the source tree.
    for rel in files:
        if rel.endswith(".o"):
            continue
        text = (dest / rel).read_text()
        assert str(dest) not in text, rel
        assert str(ROOT) not in text, rel


def test_default_prefix_is_usr_local(tmp_path):
    make("install", f"DESTDIR={tmp_path}")
    files, _ = tree(tmp_path)
    assert files == expected_files("/usr/local")
    lib = (tmp_path / "usr/local/lib/ipxdp/xdp-lib.sh").read_text()
    assert marker_lines(lib, "@IPXDP_OBJDIR@") == \
        ["IPXDP_OBJDIR=/usr/local/lib/bpf/ipxdp # @IPXDP_OBJDIR@"]
    assert marker_lines(lib, "@IPXDP_FRAGS_PROBE@") == \
        ["IPXDP_FRAGS_PROBE=/usr/local/lib/ipxdp/xdp-frags-probe.o # @IPXDP_FRAGS_PROBE@"]


def test_uninstall_removes_exactly_what_install_wrote(tmp_path):
    dest = tmp_path / "dest"
    # Somebody else's files, in the directories install shares.
    others = ["usr/sbin/other-tool", "usr/lib/bpf/other.o", "usr/share/man/man8/other.8",
              "usr/lib/systemd/system/other.service", "usr/share/doc/other/README"]
    for rel in others:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("not ipxdp's\n")
    before_files, before_dirs = tree(dest)

    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    assert set(tree(dest)[0]) == set(before_files) | set(expected_files("/usr"))
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")

    after_files, after_dirs = tree(dest)
    assert after_files == before_files
    for rel in others:
        assert (dest / rel).read_text() == "not ipxdp's\n"
    # ipxdp's own directories are gone; the shared ones install had to
    # create (sbin's siblings) stay, as with any make uninstall.
    for own in ("usr/lib/ipxdp", "usr/lib/bpf/ipxdp", "usr/share/doc/ipxdp"):
        assert own not in after_dirs
    assert after_dirs >= before_dirs

    # A second uninstall finds nothing to do and succeeds.
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert tree(dest)[0] == before_files


def test_lists_are_configuration(tmp_path):
    """An edited list is neither overwritten by install nor removed by
    uninstall; an untouched one goes with uninstall."""
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    mine = tmp_path / "etc/ipxdp/blocklist.txt"
    mine.write_text("198.51.100.0/24\n")
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert mine.read_text() == "198.51.100.0/24\n"
    make("uninstall", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert tree(tmp_path)[0] == {"etc/ipxdp/blocklist.txt": 0o644}
    assert mine.read_text() == "198.51.100.0/24\n"


def test_a_prefix_of_its_own_keeps_its_configuration(tmp_path):
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/opt/ipxdp")
    assert tree(tmp_path)[0] == expected_files("/opt/ipxdp")
    unit = (tmp_path / "opt/ipxdp/lib/systemd/system/ipxdp-blocklist.service").read_text()
    assert "ExecStart=/opt/ipxdp/sbin/xdp-block load /opt/ipxdp/etc/ipxdp/blocklist.txt\n" in unit
    unit = (tmp_path / "opt/ipxdp/lib/systemd/system/xdp-attach@.service").read_text()
    assert "EnvironmentFile=/opt/ipxdp/etc/ipxdp/%I.conf\n" in unit


def test_uninstall_keeps_a_foreign_file_in_ipxdps_folder(tmp_path):
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    extra = tmp_path / "usr/lib/bpf/ipxdp/site-local.o"
    extra.write_bytes(b"mine")
    make("uninstall", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert tree(tmp_path)[0] == {"usr/lib/bpf/ipxdp/site-local.o": 0o644}


@pytest.mark.parametrize("prefix", ["usr/local", "/opt/ip xdp", "/opt/a|b", ""])
def test_bad_prefix_is_refused(tmp_path, prefix):
    res = make("install", f"DESTDIR={tmp_path}", f"PREFIX={prefix}", check=False)
    assert res.returncode != 0
    assert "PREFIX must be an absolute path of letters, digits and ._+/-, got " \
        f"'{prefix}'" in res.stderr
    assert tree(tmp_path) == ({}, set())


# The installed copies at work ----------------------------------------------

@pytest.fixture
def ns():
    """A namespace with a veth pair va <-> vb, both up; ns.xdp() reads va."""
    with namespace_with_veth("ipxdp-inst", "va", "vb") as n:
        yield n


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """ipxdp installed for real (no DESTDIR) under a temporary PREFIX."""
    p = tmp_path_factory.mktemp("prefix")
    make("install", f"PREFIX={p}")
    return p


def test_installed_scripts_report_the_version(prefix):
    for s in SCRIPTS:
        res = subprocess.run([str(prefix / "sbin" / s), "--version"], cwd="/",
                             capture_output=True, text=True, timeout=30)
        assert (res.returncode, res.stdout, res.stderr) == (0, f"ipxdp {version()}\n", "")


def test_versions_agree():
    """The scripts, the man pages and the Debian changelog name one version."""
    res = subprocess.run(["dpkg-parsechangelog", "-l", str(ROOT / "debian" / "changelog"),
                          "-S", "Version"], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == version()
    for s in SCRIPTS:
        th = (ROOT / "man" / f"{s}.8").read_text().splitlines()[1]
        assert th.startswith(f".TH {s.upper()} 8 ")
        assert f'"ipxdp {version()}"' in th


def test_installed_attach_by_name_uses_the_installed_objects(prefix, ns):
    attach = str(prefix / "sbin" / "xdp-attach")
    res = ns.run([attach, "--mode", "native", "va", "drop-tcp"], cwd="/")
    assert res.returncode == 0, res.stderr
    prog_id = ns.xdp()["prog"]["id"]
    assert res.stdout == f"va: drop-tcp attached (native, multi-buffer, prog id {prog_id})\n"
    assert ns.xdp()["prog"]["name"] == "xdp_drop_tcp_mb"

    # By path: the same program, so nothing changes.
    res = ns.run([attach, "--mode", "native", "va", str(prefix / "lib/bpf/ipxdp/drop-tcp.o")])
    assert (res.returncode, res.stdout) == \
        (0, f"va: drop-tcp already attached (native, multi-buffer, prog id {prog_id})\n")

    # The multi-buffer probe is the installed one: without it, choosing
    # the section fails (the one in build/ is not looked at), and a named
    # section needs no probe.
    probe = prefix / "lib/ipxdp/xdp-frags-probe.o"
    probe.rename(prefix / "probe.away")
    try:
        res = ns.run([attach, "--force", "va", "count"], cwd=str(ROOT))
        named = ns.run([attach, "va", "drop-tcp", "xdp.frags"], cwd=str(ROOT))
    finally:
        (prefix / "probe.away").rename(probe)
    assert (res.returncode, res.stdout, res.stderr) == \
        (7, "", f"xdp-attach: missing {probe}, the multi-buffer probe (reinstall ipxdp, or run make)\n")
    assert (named.returncode, named.stdout) == \
        (0, f"va: drop-tcp already attached (native, multi-buffer, prog id {prog_id})\n")
    assert ns.xdp()["prog"]["id"] == prog_id

    # A name is looked up in PREFIX/lib/bpf/ipxdp and nowhere else: with
    # the installed count.o gone, `count` fails even though build/count.o
    # is there, and the message names the installed path.
    moved = prefix / "count.o.away"
    (prefix / "lib/bpf/ipxdp/count.o").rename(moved)
    try:
        res = ns.run([attach, "--force", "va", "count"], cwd=str(ROOT))
    finally:
        moved.rename(prefix / "lib/bpf/ipxdp/count.o")
    assert res.returncode == 2
    assert str(prefix / "lib/bpf/ipxdp/count.o") in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert ns.xdp()["prog"]["id"] == prog_id

    res = ns.run([str(prefix / "sbin" / "xdp-detach"), "va"])
    assert res.returncode == 0, res.stderr
    assert ns.xdp() is None


# Man pages ---------------------------------------------------------------

@pytest.mark.parametrize("script", SCRIPTS)
def test_man_page_renders_without_warnings(script):
    page = ROOT / "man" / f"{script}.8"
    res = subprocess.run(["groff", "-man", "-ww", "-z", "-t", str(page)],
                         capture_output=True, text=True, timeout=30)
    assert (res.returncode, res.stderr) == (0, "")
    res = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat"})
    assert res.returncode == 0
    assert res.stdout.splitlines()[0].split()[0] == f"{script.upper()}(8)"


def _options(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))


@pytest.mark.parametrize("script", SCRIPTS)
def test_man_page_documents_every_option(script):
    res = subprocess.run([str(paths.script(script)), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
    man = subprocess.run(["man", "-l", str(ROOT / "man" / f"{script}.8")],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "MANWIDTH": "200", "MANPAGER": "cat"}).stdout
    man = man.replace("\u2010", "-").replace("\u2212", "-")
    usage = res.stdout.split("Exit codes:")[0]
    help_opts = _options(usage)
    assert {"--help", "--version"} <= help_opts
    assert help_opts - _options(man) == set()
    # Short forms too, spelled the same way: "-m, --mode".
    pairs = re.findall(r"^\s+(-\w, --[a-z-]+)", usage, re.M)
    assert pairs
    assert [p for p in pairs if p not in man] == []


# The docs' links ----------------------------------------------------------

def _anchors(md):
    """GitHub-style heading anchors of a markdown file."""
    out = set()
    for line in md.read_text().splitlines():
        m = re.match(r"#+ (.*)", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            out.add(text.replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", ["tutorial.md", "design.md", "troubleshooting.md"])
def test_doc_links_resolve(doc):
    path = ROOT / "docs" / doc
    links = re.findall(r"\]\(([^)\s]+)\)", path.read_text())
    local = [link for link in links if "://" not in link]
    for link in local:
        target, _, anchor = link.partition("#")
        target_path = (path.parent / target).resolve() if target else path
        assert target_path.exists(), link
        if anchor:
            assert anchor in _anchors(target_path), link
