# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Throwaway network namespaces joined by a veth pair, for tests.

    from netns import VethPair

    with VethPair("ipxdp-e2e") as net:
        net.client.run(["ping", "-c", "1", net.server.ip4], check=True)
        net.server.ip("link", "show", "dev", net.server.dev)

`VethPair(prefix)` creates two namespaces, "<prefix>-<pid>-<n>-client" and
"<prefix>-<pid>-<n>-server" (pick a prefix per test file so that parallel
runs never collide), joined by a veth pair whose ends are `client.dev` and
`server.dev` inside them.  Both ends are up, with an IPv4 /24 and an IPv6
/64 address each, and the loopbacks are up.  IPv6 duplicate address
detection and router solicitations are off, so the link is usable at once
and carries no background packets of its own (the kernel still sends the
odd MLD report for the IPv6 addresses: count on ICMPv6 being present).

Each side is a `Namespace`: `name`, `path` (/var/run/netns/NAME), `dev`,
`ip4`, `ip6`, `mac`, and `run()` / `popen()` to run commands inside it.
Commands are run through `nsenter --net=PATH`, which, unlike `ip netns
exec` and `ip -n`, does not remount /sys: bpffs pins made inside stay
visible, so bpftool works as it does outside.

Everything is removed on exit, also when the body raised: the processes
started with popen() (their whole process group), then both namespaces
(which takes the veth pair and any XDP program on it along).
"""

import itertools
import json
import os
import signal
import subprocess
import time

NETNS_DIR = "/var/run/netns"
_counter = itertools.count()


def unique_name(prefix):
    """A namespace name no other test run uses: prefix, pid, counter."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


class Namespace:
    """One named network namespace; commands run inside with nsenter."""

    def __init__(self, name):
        self.name = name
        self.path = os.path.join(NETNS_DIR, name)
        self.dev = None
        self.ip4 = None
        self.ip6 = None
        self.mac = None
        self._procs = []

    def command(self, args):
        """The argv that runs @args inside this namespace."""
        return ["nsenter", f"--net={self.path}", "--", *args]

    def run(self, args, check=False, timeout=30, **kwargs):
        """Run @args inside; returns a CompletedProcess with text output."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(args), check=check, timeout=timeout, **kwargs)

    def popen(self, args, **kwargs):
        """Start @args inside, in its own process group; killed on exit."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.command(args), start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def ip(self, *args):
        """`ip ARGS` inside; raises on failure, returns stdout."""
        return self.run(["ip", *args], check=True).stdout

    def link(self, dev=None):
        """`ip -j -d link show dev DEV` as a dict (DEV: this side's veth)."""
        return json.loads(self.ip("-j", "-d", "link", "show", "dev", dev or self.dev))[0]

    def sysctl(self, **settings):
        """Set sysctls inside, e.g. sysctl(**{"net.ipv4.ip_forward": 1})."""
        self.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())],
                 check=True)

    def stop_processes(self):
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()


# Quiet IPv6: no DAD (addresses usable at once), no router solicitations,
# no router advertisements accepted.  "default" applies to interfaces
# created afterwards, "all" to the ones already there.
QUIET_IPV6 = {
    f"net.ipv6.conf.{scope}.{key}": value
    for scope in ("all", "default")
    for key, value in (("accept_dad", 0), ("dad_transmits", 0),
                       ("router_solicitations", 0), ("accept_ra", 0))
}


class VethPair:
    """Two namespaces, client and server, joined by a veth pair."""

    def __init__(self, prefix, client_dev="veth0", server_dev="veth1",
                 ip4=("10.199.0.1", "10.199.0.2"),
                 ip6=("fd00:199::1", "fd00:199::2"),
                 mtu=None):
        base = unique_name(prefix)
        self.client = Namespace(f"{base}-client")
        self.server = Namespace(f"{base}-server")
        self.client.dev, self.server.dev = client_dev, server_dev
        self.client.ip4, self.server.ip4 = ip4
        self.client.ip6, self.server.ip6 = ip6
        self.mtu = mtu

    @property
    def sides(self):
        return (self.client, self.server)

    def __enter__(self):
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _create(self):
        for ns in self.sides:
            subprocess.run(["ip", "netns", "add", ns.name], check=True,
                           capture_output=True, text=True)
            ns.sysctl(**QUIET_IPV6)
            ns.ip("link", "set", "dev", "lo", "up")
        self.client.ip("link", "add", self.client.dev, "type", "veth",
                       "peer", "name", self.server.dev, "netns", self.server.name)
        for ns in self.sides:
            if self.mtu:
                ns.ip("link", "set", "dev", ns.dev, "mtu", str(self.mtu))
            ns.ip("addr", "add", f"{ns.ip4}/24", "dev", ns.dev)
            ns.ip("addr", "add", f"{ns.ip6}/64", "dev", ns.dev, "nodad")
            ns.ip("link", "set", "dev", ns.dev, "up")
        for ns in self.sides:
            ns.mac = ns.link()["address"]
        self._wait_carrier()

    def _wait_carrier(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("LOWER_UP" in ns.link()["flags"] for ns in self.sides):
                return
            time.sleep(0.05)
        raise RuntimeError("veth pair did not come up")

    def close(self):
        """Kill what was started inside, then delete both namespaces."""
        for ns in self.sides:
            ns.stop_processes()
        for ns in self.sides:
            if os.path.exists(ns.path):
                subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


def wait_for(predicate, timeout=5.0, interval=0.05):
    """Poll @predicate until it returns something true; returns that, or
    None after @timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


__all__ = ["VethPair", "Namespace", "unique_name", "wait_for", "QUIET_IPV6", "NETNS_DIR"]
