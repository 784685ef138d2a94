# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The Python code keeps the shape docs/hacking.md describes: tests/,
bench/ and hardening/ import the package in pylib/ and never each other;
the package imports none of them; the reference classifier imports
nothing, and the blocklist's only the reference; no file edits the interpreter's import path.  And the facts the package reads from the
C sources agree with the specification, which states them on its own."""

import ast

import pytest

from ipxdp import blocklist_reference, paths, project, reference

FOLDERS = ("tests", "bench", "hardening", "pylib")
IMPORT_PATH = "sys" + ".path"  # spelt in two halves, or this file would hold it


def py_files(folder):
    return sorted((paths.ROOT / folder).rglob("*.py"))


def local_modules(folder):
    """The names a file of @folder imports its neighbours by."""
    if folder == "pylib":
        return {"ipxdp"}
    return {p.stem for p in (paths.ROOT / folder).glob("*.py")}


def imported(path):
    """Top-level names @path imports (a relative import counts as ".")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_folder_imports_another(folder):
    # Everyone may import the package; nobody the modules of another folder.
    others = set().union(*(local_modules(f) for f in FOLDERS if f not in (folder, "pylib")))
    others -= local_modules(folder)
    wrong = {str(p.relative_to(paths.ROOT)): sorted(imported(p) & others) for p in py_files(folder)}
    assert {p: names for p, names in wrong.items() if names} == {}


def test_the_reference_imports_nothing_of_ours():
    names = imported(paths.PYLIB / "ipxdp" / "reference.py")
    assert names <= {"struct"}, names


def test_the_blocklist_reference_imports_only_the_reference():
    path = paths.PYLIB / "ipxdp" / "blocklist_reference.py"
    assert imported(path) <= {"ipaddress", "struct", "."}
    relative = {a.name for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level for a in node.names}
    assert relative == {"reference"}


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_import_path_edits(folder):
    assert [str(p) for p in py_files(folder) if IMPORT_PATH in p.read_text()] == []


def test_count_keys_as_the_specification_states_them():
    assert (project.KEY_NON_IP, project.KEY_MALFORMED) == (reference.KEY_NON_IP, reference.KEY_MALFORMED)
    assert project.COUNT_KEYS == reference.KEY_MALFORMED + 1
    assert project.COUNT_FIELDS == ("packets", "bytes")
    # include/count.h documents the map that progs/count.c defines.
    assert f'Map "{project.COUNT_MAP}"' in (paths.ROOT / "include" / "count.h").read_text()


def test_blocklist_totals_as_the_specification_states_them():
    assert project.BLOCKLIST_TOTALS == blocklist_reference.TOTALS
    assert project.BLOCKLIST_FIELDS == ("packets", "bytes")


def test_every_program_is_found():
    assert set(project.PROGRAMS) == {p.stem for p in (paths.ROOT / "progs").glob("*.c")}
    assert project.XDP_MODES == {1: "native", 2: "generic", 3: "offload"}
