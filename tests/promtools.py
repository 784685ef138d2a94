# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Debian's node_exporter and promtool, for the tests of the metrics.

    from promtools import NodeExporter, check_metrics, parse, value

    with NodeExporter(textfile_dir) as ne:      # installs the package if needed
        samples = parse(ne.scrape())
    assert value(samples, "node_textfile_scrape_error") == 0
    res = check_metrics(text)                   # promtool check metrics < text

node_exporter is the package `prometheus-node-exporter`.  install_node_exporter()
installs it when it is missing, and leaves no daemon running: Debian's
maintainer scripts start the service (init.d here, systemd elsewhere)
unless /usr/sbin/policy-rc.d says no, so the install runs under one that
exits 101.  If the machine has a policy-rc.d that already refuses, it is
used as it is; if it has one that allows, it is moved aside and put back
byte for byte after the install; if it has none, one is created and removed
again.  Afterwards any node_exporter or prometheus process that was not
running before the install is an error (it is killed, and the install
raises).  On a systemd machine the package's unit stays enabled for the
next boot, as the package wants; nothing is running now.

NodeExporter runs the package's binary itself, as root or as another user
(the package's user `prometheus`, as Debian runs it), on 127.0.0.1 at a
free port, with only the textfile collector:
`--collector.disable-defaults --collector.textfile
--collector.textfile.directory=DIR`.  With `ns`, a netns.Namespace, it runs
inside that namespace, on its loopback.  It is killed on exit.

promtool comes from the package `prometheus` without installing it (the
package depends on ~300 MB of web assets): `apt-get download prometheus`,
`dpkg-deb -x` into a temporary folder, and the promtool binary alone kept
in build/tools/ (make clean removes it; the next run fetches it again).

parse() reads the text exposition format into Sample(name, labels, value,
raw) tuples, raw being the value as written.
"""

import contextlib
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time
from typing import NamedTuple

from ipxdp import paths

ROOT = paths.ROOT
TOOLS = ROOT / "build" / "tools"
POLICY_RC_D = pathlib.Path("/usr/sbin/policy-rc.d")
NODE_EXPORTER_PKG = "prometheus-node-exporter"
NODE_EXPORTER = pathlib.Path("/usr/bin/prometheus-node-exporter")
# Debian's build of node_exporter reads this directory by default (its
# --help: --collector.textfile.directory="/var/lib/prometheus/node-exporter").
DEBIAN_TEXTFILE_DIR = pathlib.Path("/var/lib/prometheus/node-exporter")
DAEMONS = {"prometheus-node-exporter", "node_exporter", "prometheus"}
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
APT_OPTS = ["-o", "DPkg::Lock::Timeout=120", "-y", "-q"]


def _run(cmd, timeout=300, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _failed(what, res):
    return RuntimeError(f"{what} failed (exit {res.returncode}): "
                        f"{(res.stderr or res.stdout).strip()[-2000:]}")


# --- installing without starting anything -----------------------------------

def daemon_pids():
    """{pid: name} of the running node_exporter and prometheus processes."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
        except OSError:  # gone, or a kernel thread
            continue
        exe = exe.removesuffix(" (deleted)")
        if exe in DAEMONS:
            found[int(entry)] = exe
    return found


def _policy_refuses():
    """Whether the policy-rc.d in place refuses to start node_exporter."""
    if not os.access(POLICY_RC_D, os.X_OK):
        return False
    res = _run([str(POLICY_RC_D), NODE_EXPORTER_PKG, "start"], timeout=30)
    return res.returncode == 101


@contextlib.contextmanager
def services_refused():
    """/usr/sbin/policy-rc.d refuses every service start inside the block;
    afterwards it is exactly what it was (see the module's docstring)."""
    saved = POLICY_RC_D.with_name("policy-rc.d.ipxdp-saved")
    if os.path.lexists(saved):
        raise RuntimeError(f"{saved} exists: an earlier run was interrupted; "
                           f"move it back to {POLICY_RC_D} if it is the machine's own")
    if _policy_refuses():
        yield
        return
    had_one = os.path.lexists(POLICY_RC_D)
    if had_one:
        os.rename(POLICY_RC_D, saved)
    try:
        tmp = POLICY_RC_D.with_name("policy-rc.d.ipxdp-tmp")
        tmp.write_text("#!/bin/sh\n# Temporary: refuse every service start during a test's install.\n"
                       "exit 101\n")
        tmp.chmod(0o755)
        os.rename(tmp, POLICY_RC_D)
        yield
    finally:
        if had_one:
            os.rename(saved, POLICY_RC_D)
        else:
            POLICY_RC_D.unlink(missing_ok=True)


def installed(package):
    res = _run(["dpkg-query", "-W", "-f=${Status}", package], timeout=30)
    return res.returncode == 0 and "installed" in res.stdout.split()


def install_without_daemons(*packages):
    """apt-get install PACKAGES (no recommends) under services_refused();
    raises if a node_exporter or prometheus process appeared."""
    before = daemon_pids()
    with services_refused():
        cmd = ["apt-get", "install", *APT_OPTS, "--no-install-recommends", *packages]
        res = _run(cmd, env=APT_ENV)
        if res.returncode != 0:  # package lists too old for the mirror: once more
            _run(["apt-get", "update", "-qq"], env=APT_ENV)
            res = _run(cmd, env=APT_ENV)
    started = {pid: name for pid, name in daemon_pids().items() if pid not in before}
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if res.returncode != 0:
        raise _failed(f"apt-get install {' '.join(packages)}", res)
    if started:
        raise RuntimeError(f"installing {' '.join(packages)} started {started} "
                           "despite policy-rc.d (killed)")


def install_node_exporter():
    """The node_exporter binary, the package installed first if needed."""
    if not installed(NODE_EXPORTER_PKG):
        install_without_daemons(NODE_EXPORTER_PKG)
    return NODE_EXPORTER


# --- running node_exporter ----------------------------------------------------

def free_port():
    """A TCP port nothing listens on at 127.0.0.1 (this namespace) now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeExporter:
    """node_exporter with only the textfile collector, on 127.0.0.1."""

    def __init__(self, textfile_dir, user=None, ns=None):
        self.textfile_dir = pathlib.Path(textfile_dir)
        self.user, self.ns = user, ns
        self.proc = self.port = None
        self.log = None

    def _wrap(self, args):
        return self.ns.command(args) if self.ns else list(args)

    def __enter__(self):
        binary = install_node_exporter()
        self.log = tempfile.TemporaryFile(mode="w+")
        try:
            for _ in range(5):  # another process may take the port first
                if self._start(binary):
                    return self
            raise RuntimeError(f"node_exporter did not start: {self._log_tail()}")
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _start(self, binary):
        self.port = self._free_port()
        args = [str(binary), f"--web.listen-address=127.0.0.1:{self.port}",
                "--collector.disable-defaults", "--collector.textfile",
                f"--collector.textfile.directory={self.textfile_dir}"]
        if self.user:
            args = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}",
                    "--clear-groups", "--", *args]
        self.proc = subprocess.Popen(self._wrap(args), stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._curl("/metrics", timeout=2).returncode == 0:
                return True
            time.sleep(0.05)
        self._stop()
        return False

    def _free_port(self):
        if not self.ns:
            return free_port()
        res = self.ns.run(["/usr/bin/python3", "-c", "import socket; s = socket.socket(); "
                           "s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"], check=True)
        return int(res.stdout)

    def _curl(self, path, timeout=10):
        args = ["curl", "-sS", "--fail", "--max-time", str(timeout),
                f"http://127.0.0.1:{self.port}{path}"]
        return _run(self._wrap(args), timeout=timeout + 5)

    def scrape(self):
        """The text of one GET /metrics."""
        res = self._curl("/metrics")
        if res.returncode != 0:
            raise _failed("scraping node_exporter", res)
        return res.stdout

    def _log_tail(self):
        self.log.seek(0)
        return self.log.read()[-2000:]

    def _stop(self):
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=10)

    def __exit__(self, *exc):
        self._stop()
        if self.log:
            self.log.close()


# --- promtool -----------------------------------------------------------------

def promtool():
    """Path to promtool from Debian's prometheus package, fetched into
    build/tools/ on first use."""
    path = TOOLS / "promtool"
    if os.access(path, os.X_OK):
        return path
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ipxdp-promtool.") as tmp:
        # apt's download user cannot write into a root-only temporary
        # directory: it then downloads as root, and says so on stderr.
        cmd = ["apt-get", "download", "-q", "prometheus"]
        res = _run(cmd, cwd=tmp, env=APT_ENV)
        if res.returncode != 0:  # package lists too old for the mirror: once more
            _run(["apt-get", "update", "-qq"], env=APT_ENV)
            res = _run(cmd, cwd=tmp, env=APT_ENV)
        if res.returncode != 0:
            raise _failed("apt-get download prometheus", res)
        (deb,) = pathlib.Path(tmp).glob("prometheus_*.deb")
        x = pathlib.Path(tmp) / "x"
        res = _run(["dpkg-deb", "-x", str(deb), str(x)])
        if res.returncode != 0:
            raise _failed("dpkg-deb -x", res)
        staged = TOOLS / "promtool.tmp"
        os.replace(x / "usr" / "bin" / "promtool", staged)
        os.replace(staged, path)
    return path


def check_metrics(text):
    """`promtool check metrics` on TEXT: a CompletedProcess (exit 0 and no
    output when promtool accepts it, 3 for lint problems, 1 for a text it
    cannot parse)."""
    return _run([str(promtool()), "check", "metrics"], input=text, timeout=60)


# --- the text exposition format -------------------------------------------------

class Sample(NamedTuple):
    name: str
    labels: dict
    value: float
    raw: str


_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise ValueError(f"bad labels in {line!r}")
        labels[m[1]] = re.sub(r"\\.", lambda e: _UNESCAPE.get(e[0], e[0]), m[2])
        pos = m.end()
    return labels


def parse(text):
    """The samples of a text exposition, in order (comments skipped)."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"not a sample: {line!r}")
        samples.append(Sample(m[1], _labels(m[2] or "", line), float(m[3]), m[3]))
    return samples


def value(samples, name, **labels):
    """The value of the one sample NAME whose labels include LABELS."""
    found = [s for s in samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    if len(found) != 1:
        raise KeyError(f"{len(found)} samples {name}{labels}")
    return found[0].value


__all__ = ["NodeExporter", "Sample", "check_metrics", "daemon_pids", "free_port",
           "install_node_exporter", "install_without_daemons", "installed", "parse",
           "promtool", "services_refused", "value", "DEBIAN_TEXTFILE_DIR", "NODE_EXPORTER"]
