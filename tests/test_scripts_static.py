# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""scripts/ and demo/ as files: shellcheck-clean, and the shape that
`make install` and the docs rely on (markers, version, help, exit codes)."""

import os
import re
import subprocess

import pytest

from ipxdp import paths

ROOT = paths.ROOT
SCRIPTS = paths.scripts_dir()  # the scripts under test
COMMANDS = ["xdp-attach", "xdp-detach", "xdp-status", "xdp-stats", "xdp-block"]
LIB = SCRIPTS / "xdp-lib.sh"
SPDX = "SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause"
EXIT_CODES = {"0", "1", "2", "3", "4", "5", "6", "7"}


def shell_files():
    files = sorted(p for p in SCRIPTS.iterdir() if p.is_file())
    files += sorted(p for p in (ROOT / "demo").glob("*") if p.is_file() and
                    p.read_text().startswith("#!/bin/bash"))
    return files


def test_the_files_are_there():
    assert set(COMMANDS + ["xdp-lib.sh"]) <= {p.name for p in SCRIPTS.iterdir()}


@pytest.mark.parametrize("path", shell_files(), ids=lambda p: p.name)
def test_shellcheck_finds_nothing(path):
    res = subprocess.run(["shellcheck", "-x", "--severity=style", str(path)],
                         capture_output=True, text=True, cwd=path.parent)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("path", shell_files(), ids=lambda p: p.name)
def test_spdx_first(path):
    lines = path.read_text().splitlines()
    first = lines[1] if lines[0].startswith("#!") else lines[0]
    assert first == f"# {SPDX}"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_shape(name):
    path = SCRIPTS / name
    text = path.read_text()
    assert os.access(path, os.X_OK)
    assert text.startswith("#!/bin/bash\n")
    assert "\nset -eu\n" in text
    # exactly one library line, rewritten by make install
    marked = [line for line in text.splitlines() if line.endswith("# @IPXDP_LIBDIR@")]
    assert len(marked) == 1 and marked[0].startswith("IPXDP_LIBDIR=")
    assert '. "$IPXDP_LIBDIR/xdp-lib.sh"' in text
    assert "eval" not in re.sub(r"#.*", "", text)


def test_library_shape():
    text = LIB.read_text()
    assert not os.access(LIB, os.X_OK)
    marked = [line for line in text.splitlines() if line.endswith("# @IPXDP_OBJDIR@")]
    assert len(marked) == 1 and marked[0].startswith("IPXDP_OBJDIR=")
    assert len(re.findall(r"^IPXDP_VERSION=\d+\.\d+\.\d+$", text, re.M)) == 1
    assert "eval" not in re.sub(r"#.*", "", text)


def test_install_rewrite_points_elsewhere(tmp_path):
    """What make install does with the markers works: a copy whose lines
    are rewritten finds the library and the objects where it is told."""
    lib, objs, bin_ = tmp_path / "lib", tmp_path / "objs", tmp_path / "bin"
    for d in (lib, objs, bin_):
        d.mkdir()
    lib_text = re.sub(r"^.*# @IPXDP_OBJDIR@$", f"IPXDP_OBJDIR={objs} # @IPXDP_OBJDIR@",
                      LIB.read_text(), flags=re.M)
    (lib / "xdp-lib.sh").write_text(lib_text)
    for name in COMMANDS:
        text = re.sub(r"^.*# @IPXDP_LIBDIR@$", f"IPXDP_LIBDIR={lib} # @IPXDP_LIBDIR@",
                      (SCRIPTS / name).read_text(), flags=re.M)
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    res = subprocess.run([str(bin_ / "xdp-attach"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    assert f"built object in {objs} (drop-tcp" in res.stdout


def version():
    return re.search(r"^IPXDP_VERSION=(\S+)$", LIB.read_text(), re.M).group(1)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_and_version(name):
    res = subprocess.run([str(SCRIPTS / name), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith(f"Usage: {name} ")
    # the exit-code table, every code, in every --help
    table = res.stdout.split("Exit codes:\n", 1)[1]
    assert {m for m in re.findall(r"^  (\d)  ", table, re.M)} == EXIT_CODES
    assert subprocess.run([str(SCRIPTS / name), "-h"], capture_output=True,
                          text=True).stdout == res.stdout
    for flag in ("--version", "-V"):
        res = subprocess.run([str(SCRIPTS / name), flag], capture_output=True, text=True)
        assert (res.returncode, res.stdout) == (0, f"ipxdp {version()}\n")


def test_docs_have_the_exit_code_table():
    doc = (ROOT / "docs" / "scripts.md").read_text()
    rows = re.findall(r"^\| (\d) \|", doc, re.M)
    assert set(rows) == EXIT_CODES
    help_text = subprocess.run([str(SCRIPTS / "xdp-attach"), "--help"], capture_output=True,
                               text=True).stdout
    for code in EXIT_CODES:
        assert re.search(rf"^  {code}  ", help_text, re.M)
