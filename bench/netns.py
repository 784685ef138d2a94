# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Commands, the bench's own network namespaces, and the machine's state.

Every namespace the bench creates is named ipxdp-bench-<pid>-<role>, is
recorded here the moment it exists, and is deleted by cleanup(), which the
driver calls on every exit, interrupted or not.  A namespace left behind by
a bench that was killed outright (SIGKILL) is removed by the next bench,
once its pid is gone.
"""

import os
import re
import subprocess
import time

PREFIX = "ipxdp-bench-"


class BenchError(Exception):
    """A failure the bench reports as one line."""


def run(*args, input=None, check=True):
    """Run a command; returns its stdout.  On failure raises BenchError
    with the command and the first line of its error output."""
    try:
        p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise BenchError(f"missing tool: {args[0]}") from None
    if check and p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip() or f"exit status {p.returncode}").splitlines()[0]
        raise BenchError(f"'{' '.join(args)}' failed: {msg}")
    return p.stdout


class Namespaces:
    """The namespaces of one bench run."""

    def __init__(self, pid=None):
        self.pid = pid or os.getpid()
        self.names = []

    def name(self, role):
        return f"{PREFIX}{self.pid}-{role}"

    def add(self, role):
        name = self.name(role)
        self.names.append(name)  # before it exists: cleanup tolerates that
        run("ip", "netns", "add", name)
        # No IPv6 autoconfiguration: no stray frames to count.
        run("ip", "netns", "exec", name, "sysctl", "-q", "-w",
            "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        return name

    def cleanup(self):
        """Delete every namespace of this run; returns the ones that could
        not be deleted."""
        left = []
        for name in reversed(self.names):
            if os.path.exists(f"/var/run/netns/{name}"):
                p = subprocess.run(["ip", "netns", "del", name], capture_output=True)
                if p.returncode != 0:
                    left.append(name)
        self.names = []
        return left


def listed():
    out = run("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_stale():
    """Delete bench namespaces whose bench process no longer exists."""
    removed = []
    for name in listed():
        m = re.match(re.escape(PREFIX) + r"(\d+)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    return removed


class Sysctl:
    """Set a sysctl for the bench and put back what it was."""

    def __init__(self, key, value):
        self.path = "/proc/sys/" + key.replace(".", "/")
        self.key, self.value = key, str(value)
        self.saved = None
        self.saved_before = None

    def read(self):
        with open(self.path) as f:
            return f.read().strip()

    def set(self):
        self.saved = self.saved_before = self.read()
        if self.saved != self.value:
            with open(self.path, "w") as f:
                f.write(self.value)

    def restore(self):
        if self.saved is not None and self.saved != self.value:
            with open(self.path, "w") as f:
                f.write(self.saved)
        self.saved = None


def cpu_times():
    """{cpu: (busy, total)} jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + v[4]  # idle + iowait
                total = sum(v[:8])  # guest time is already in user
                out[int(m.group(1))] = (total - idle, total)
    return out


def busy_between(a, b, exclude=()):
    """Busy fraction of the CPUs not in @exclude between two cpu_times()."""
    busy = total = 0
    for cpu in a:
        if cpu in exclude or cpu not in b:
            continue
        busy += b[cpu][0] - a[cpu][0]
        total += b[cpu][1] - a[cpu][1]
    return busy / total if total else 0.0


def wait_quiet(max_wait, threshold=0.15, sample=0.5, log=None, exclude=()):
    """Wait until the CPUs (but @exclude) are at most @threshold busy over
    @sample seconds, for at most @max_wait seconds.  Returns the last busy
    fraction seen (so the caller can say the run was not quiet)."""
    deadline = time.monotonic() + max_wait
    said = False
    while True:
        a = cpu_times()
        time.sleep(sample)
        busy = busy_between(a, cpu_times(), exclude)
        if busy <= threshold:
            return busy
        if time.monotonic() >= deadline:
            if log:
                log(f"the machine is still busy (CPUs {busy:.0%} busy): figures may be noisy")
            return busy
        if log and not said:
            log(f"waiting for a quiet machine (CPUs {busy:.0%} busy)...")
            said = True
