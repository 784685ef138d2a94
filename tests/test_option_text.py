# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Each option is described once, in the script's man page; --help is built
from the script's option table and only summarises.  These tests keep the
two from drifting: every option a script accepts (found by trying it, not
by reading the table) is in the OPTIONS of its man page and in its --help,
each spelled the same way ("-m, --mode"), nothing is documented that the
script refuses, and the synopses agree.  docs/scripts.md links to the man
pages instead of restating the options.

The last test drives the skeleton of scripts/xdp-lib.sh from a small script
with subcommands, the way a new script would use it."""

import os
import pathlib
import re
import string
import subprocess

import pytest

from ipxdp import paths
from ipxdp.paths import ROOT

SCRIPTS = paths.scripts_dir()
MAN = ROOT / "man"
# Every script that uses the library: a new one is checked without being
# named here (and fails until it has a man page).
COMMANDS = sorted(p.name for p in SCRIPTS.iterdir()
                  if p.is_file() and os.access(p, os.X_OK) and "xdp-lib.sh" in p.read_text())
# More operands than any script takes: a run that gets past the options
# stops at "too many arguments" (or at the first operand, "x") and touches
# nothing.
SURPLUS = ["x"] * 5
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z0-9])(?![\w-])")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)


def accepts(script, option):
    """Whether @script takes @option: --help and --version exit 0, any other
    option is either taken or refused as "unknown option"."""
    res = run([str(SCRIPTS / script), option, *SURPLUS])
    # (a script that takes any number of operands, xdp-stats --prometheus,
    # stops at the first one instead: "x: unknown interface", exit 2)
    assert res.returncode in (0, 1) or res.stderr.startswith(f"{script}: x: "), res.stderr
    if res.returncode == 0:
        return True
    assert len(res.stderr.splitlines()) == 1, res.stderr
    return f"{script}: unknown option " not in res.stderr


def accepted_options(script):
    """Every short option (-a ... -9) and every long option named anywhere
    in the script, its library, its --help or its man page, that the script
    takes."""
    candidates = {f"-{c}" for c in string.ascii_letters + string.digits}
    for text in (source(script), (SCRIPTS / "xdp-lib.sh").read_text(),
                 help_text(script), man_text(script)):
        candidates |= {o for o in OPTION.findall(text) if o.startswith("--")}
    return {o for o in candidates if accepts(script, o)}


def source(script):
    return (SCRIPTS / script).read_text()


def help_text(script):
    res = run([str(SCRIPTS / script), "--help"])
    assert (res.returncode, res.stderr) == (0, "")
    return res.stdout


def man_text(script):
    res = run(["man", "-l", str(MAN / f"{script}.8")],
              env={**os.environ, "MANWIDTH": "200", "MANPAGER": "cat", "LC_ALL": "C.UTF-8"})
    assert res.returncode == 0, res.stderr
    return res.stdout.replace("\u2010", "-").replace("\u2212", "-")


def man_section(script, name):
    lines = man_text(script).splitlines()
    start = lines.index(name) + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"\S", lines[i])), len(lines))
    return lines[start:end]


def tags(lines, indent):
    """The option headings of a list: "-m, --mode MODE" -> "-m, --mode",
    "--     Ends the options." -> "--".  --help indents a long option
    without a short one by four more spaces, under the other long ones."""
    out = []
    for line in lines:
        m = re.match(rf"^ {{{indent}}}(?: {{4}})?"
                     rf"(-[A-Za-z0-9], --[a-z][a-z0-9-]*|--[a-z][a-z0-9-]*|--)(\s|$)", line)
        if m:
            out.append(m.group(1))
    return out


def help_tags(script):
    block = help_text(script).split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    return tags(block.splitlines(), 2)


def man_tags(script):
    return tags(man_section(script, "OPTIONS"), 7)


def spelled(tag_list):
    """The single options of "-m, --mode"-style headings."""
    return {o for tag in tag_list for o in tag.split(", ")}


@pytest.mark.parametrize("script", COMMANDS)
def test_every_accepted_option_is_documented_in_both(script):
    accepted = accepted_options(script)
    assert {"-h", "--help", "-V", "--version"} <= accepted
    in_help, in_man = help_tags(script), man_tags(script)
    assert spelled(in_help) - {"--"} == accepted
    assert spelled(in_man) - {"--"} == accepted
    # the same headings, short and long forms paired the same way, and "--"
    assert sorted(in_help) == sorted(in_man)
    assert "--" in in_help


@pytest.mark.parametrize("script", COMMANDS)
def test_the_synopses_agree(script):
    usage = help_text(script).splitlines()[0]
    assert usage.startswith(f"Usage: {script} ")
    synopsis = [line.strip().replace(" [--]", "")
                for line in man_section(script, "SYNOPSIS") if line.strip()]
    assert usage.removeprefix("Usage: ") in synopsis
    assert f"{script} --help | --version" in synopsis


@pytest.mark.parametrize("script", COMMANDS)
def test_help_points_to_the_man_page_and_fits_a_terminal(script):
    text = help_text(script)
    page = SCRIPTS.parent / "man" / f"{script}.8"
    where = f"man -l {page.resolve()}" if page.exists() else f"man 8 {script}"
    assert f"\n  {where}\n" in text
    # (the synopsis is the man page's, on one line)
    assert max(len(line) for line in text.splitlines()[1:]) <= 80


def test_a_copy_without_the_man_pages_points_to_the_installed_ones(tmp_path):
    for f in SCRIPTS.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
        (tmp_path / f.name).chmod(0o755)
    res = run([str(tmp_path / "xdp-stats"), "--help"])
    assert res.returncode == 0
    assert "\n  man 8 xdp-stats\n" in res.stdout


def test_the_four_scripts_are_checked():
    assert {"xdp-attach", "xdp-detach", "xdp-status", "xdp-stats"} <= set(COMMANDS)


def test_docs_link_to_the_man_pages_instead_of_restating_options():
    doc = (ROOT / "docs" / "scripts.md").read_text()
    for script in COMMANDS:
        assert f"[{script}(8)](../man/{script}.8)" in doc
        assert (ROOT / "docs" / f"../man/{script}.8").exists()
    # option headings are the man pages' ("-m, --mode ..."), not the guide's
    assert re.findall(r"-[A-Za-z0-9], --[a-z]", doc) == []


# --- the skeleton, as a new script with subcommands uses it -----------------

TOY = r"""#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
set -eu
IPXDP_PROG=xdp-toy
IPXDP_LIBDIR=@LIBDIR@
. "$IPXDP_LIBDIR/xdp-lib.sh"

IPXDP_OPERANDS='COMMAND [ARG]...'
IPXDP_COMMANDS=(
	'add DEV WHAT...' 'add WHAT to DEV'
	'show-all' 'show everything'
)
IPXDP_OPTIONS=(
	'-n --number N' 'how many'
	'--level low|high' 'how much'
	'-q --quiet' 'say less'
)
about() { echo "A toy."; }
number=- level=- quiet=0
on_option()
{
	case $1 in
	number) number=$2 ;;
	level) level=$2 ;;
	quiet) quiet=1 ;;
	esac
}
cmd_add()
{
	ipxdp_want_args 2 99 "missing arguments: DEV and WHAT are required" "too many"
	printf 'add %s|' "$@"
	echo "number=$number level=$level quiet=$quiet"
}
cmd_show_all()
{
	ipxdp_want_args 0 0 "" "too many arguments: show-all takes none"
	ipxdp_begin
	[ -d "$IPXDP_TMP" ] && echo "show-all tmp"
}

ipxdp_parse_options "$@"
ipxdp_command
ipxdp_run_command
"""


@pytest.mark.parametrize("argv, code, out, err", [
    (["add", "eth0", "a b"], 0, "add eth0|add a b|number=- level=- quiet=0\n", ""),
    (["-q", "add", "--number", "3", "eth0", "--level=high", "w"], 0,
     "add eth0|add w|number=3 level=high quiet=1\n", ""),
    (["add", "--", "-eth0", "--quiet"], 0, "add -eth0|add --quiet|number=- level=- quiet=0\n", ""),
    (["show-all"], 0, "show-all tmp\n", ""),
    ([], 1, "", "xdp-toy: missing command: add or show-all (see xdp-toy --help)\n"),
    (["del", "x"], 1, "", "xdp-toy: unknown command del: use add or show-all (see xdp-toy --help)\n"),
    (["add", "eth0"], 1, "",
     "xdp-toy: missing arguments: DEV and WHAT are required (see xdp-toy --help)\n"),
    (["show-all", "x"], 1, "",
     "xdp-toy: too many arguments: show-all takes none (see xdp-toy --help)\n"),
    (["add", "-x"], 1, "", "xdp-toy: unknown option -x (see xdp-toy --help)\n"),
    (["add", "--quiet=1"], 1, "", "xdp-toy: unknown option --quiet=1 (see xdp-toy --help)\n"),
    (["add", "-n"], 1, "", "xdp-toy: -n needs a value (see xdp-toy --help)\n"),
    (["add", "--level"], 1, "", "xdp-toy: --level needs a value: low or high (see xdp-toy --help)\n"),
    (["--bogus", "-V"], 1, "", "xdp-toy: unknown option --bogus (see xdp-toy --help)\n"),
    (["nosuch", "-V"], 0, "ipxdp @VERSION@\n", ""),
])
def test_skeleton_with_subcommands(tmp_path, argv, code, out, err):
    toy = tmp_path / "xdp-toy"
    toy.write_text(TOY.replace("@LIBDIR@", str(SCRIPTS)))
    toy.chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    res = run([str(toy), *argv], env={**os.environ, "TMPDIR": str(tmp)})
    version = re.search(r"^IPXDP_VERSION=(\S+)$", (SCRIPTS / "xdp-lib.sh").read_text(), re.M)[1]
    assert (res.returncode, res.stderr, res.stdout) == (code, err, out.replace("@VERSION@", version))
    assert list(tmp.iterdir()) == []


def test_skeleton_help_lists_commands_and_options(tmp_path):
    toy = tmp_path / "xdp-toy"
    toy.write_text(TOY.replace("@LIBDIR@", str(SCRIPTS)))
    toy.chmod(0o755)
    res = run([str(toy), "--help"])
    assert res.returncode == 0
    assert res.stdout.startswith(
        "Usage: xdp-toy [--number N] [--level low|high] [--quiet] COMMAND [ARG]...\n\n"
        "A toy.\n\n"
        "Commands:\n"
        "  add DEV WHAT...  add WHAT to DEV\n"
        "  show-all         show everything\n\n"
        "Options:\n"
        "  -n, --number N     how many\n"
        "      --level LEVEL  how much\n"
        "  -q, --quiet        say less\n"
        "  -h, --help         show this help and exit\n")
