# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""What the bench needs of the machine besides namespaces (those are
ipxdp.netns): one-line errors, a sysctl held for the run, the CPUs' load.
"""

import re
import time


class BenchError(Exception):
    """A failure the bench reports as one line."""


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
