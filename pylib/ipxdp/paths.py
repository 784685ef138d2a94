# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Where things are: the tree, the objects under test, the scripts under test.

    ROOT             the repository (this package lives in ROOT/pylib/ipxdp)
    build_dir()      the objects under test: $IPXDP_BUILD, or ROOT/build
    obj(name)        build_dir()/NAME.o
    fixture(name)    FIXTURES/NAME.o (ROOT/build/fixtures), a test object
                     make builds from tests/fixtures/NAME.c (never a mutant's)
    scripts_dir()    the scripts under test: $IPXDP_SCRIPTS, or ROOT/scripts
    script(name)     scripts_dir()/NAME
    scripts_objdir() where those scripts look up an object given by name
                     ("xdp-attach eth0 drop-tcp"): the build/ next to them
    python_env()     an environment in which PYTHON can import this package

`make mutants` points IPXDP_BUILD at a broken build and IPXDP_SCRIPTS at
broken scripts, so everything that runs an object or a script asks here.
Both are read when called and made absolute (a relative value is taken
from the current directory), so a test may hand them to a command that
runs in another directory.
"""

import os
import pathlib

PYLIB = pathlib.Path(__file__).resolve().parent.parent
ROOT = PYLIB.parent
FIXTURES = ROOT / "build" / "fixtures"
PYTHON = "/usr/bin/python3"  # Debian's, with python3-scapy and python3-pytest


def _absolute(value):
    return pathlib.Path(os.path.abspath(value))


def build_dir():
    return _absolute(os.environ.get("IPXDP_BUILD") or ROOT / "build")


def obj(name):
    return build_dir() / f"{name}.o"


def fixture(name):
    return FIXTURES / f"{name}.o"


def scripts_dir():
    return _absolute(os.environ.get("IPXDP_SCRIPTS") or ROOT / "scripts")


def script(name):
    return scripts_dir() / name


def scripts_objdir():
    # The scripts' own default (IPXDP_OBJDIR in xdp-lib.sh): ../build
    # from where they are, as `pwd` spells it.
    return scripts_dir().parent / "build"


def python_env(env=None):
    """@env (default: this process's environment) with PYTHONPATH starting
    at this package's parent, for a PYTHON subprocess that imports ipxdp."""
    env = dict(os.environ if env is None else env)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PYLIB) + (os.pathsep + rest if rest else "")
    return env
