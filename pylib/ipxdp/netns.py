# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Throwaway network namespaces, entered the nsenter way.

    from ipxdp.netns import VethPair

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
`ip4`, `ip6`, `mac`, `run()` / `popen()` to run commands inside it,
`link()` / `xdp()` to read a link's state (`ip -j -d -s link show`),
`attached()` for the programs on it, `count_counters()` for count's
counters through bpftool.  Commands are run through `nsenter --net=PATH`,
which, unlike `ip netns exec` and `ip -n`, does not remount /sys: bpffs
pins made inside stay visible, so bpftool works as it does outside, and an
object with pinned maps attached from inside uses the pins.

Everything is removed on exit, also when the body raised: the processes
started with popen() (their whole process group), then both namespaces
(which takes the veth pair and any XDP program on it along).

For other layouts, the parts are there on their own:

    with namespaces("ipxdp-x", "tx", "rx", ipv6=False) as (tx, rx):
        tx.add_veth("snd", "rcv", peer=rx)

creates "<prefix>-<pid>-<n>-tx" and "-rx" (deleted on exit like VethPair's)
and a veth pair between them, both ends up and without addresses.
`add_veth` without `peer` puts both ends in the one namespace, and takes
any name the kernel takes ("a;b", "$(id)", "-x"): names are arguments,
never shell words.  With ipv6=False IPv6 is off altogether, so the links
carry no packet at all that a test did not send, not even MLD.

    with namespace_with_veth("ipxdp-x", "va", "vb") as ns:
        assert ns.xdp() is None

is the common case: one namespace ("<prefix>-<pid>-<n>-ns") with a veth
pair inside, both ends up; `ns.dev` is the first end.

`Namespaces(prefix)` is the set underneath, for a caller that adds
namespaces one at a time (the bench); `remove_stale(prefix)` deletes the
namespaces of that prefix whose process is gone (a run killed outright).

Pinned maps get the same care.  blocklist pins its maps by name, one host
list; a test must never see or touch the host's.  `PrivateBpffs` mounts a
bpffs of its own (a new, empty instance) on a temporary directory and
hands it to `ip`, xdp-block and xdp-stats as TC_BPF_MNT, which they read
exactly as they would /sys/fs/bpf:

    with PrivateBpffs() as fs:
        fs.block("add", "198.51.100.0/24", check=True)   # scripts/xdp-block
        with fs.load_object() as obj:                   # build/blocklist.o,
            verdict, _ = obj.run(frame)                 # reusing those pins
        ns.run([paths.script("xdp-attach"), "eth0", "blocklist"], env=fs.env)

On exit it is unmounted, and every map pinned in it goes with it.
"""

import collections
import contextlib
import itertools
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time

from . import bpf, paths, project

NETNS_DIR = "/var/run/netns"
_counter = itertools.count()


def unique_name(prefix):
    """A namespace name no other test run uses: prefix, pid, counter."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


class CommandFailed(subprocess.CalledProcessError):
    """A CalledProcessError that also says what the command wrote on stderr;
    its first line is the command, its exit status and stderr's first line."""

    def __str__(self):
        cmd = " ".join(map(str, self.cmd))
        return f"'{cmd}' failed (exit {self.returncode}): {(self.stderr or '').strip()}"


# One program attached to a link, as `ip -j link` reports it; mode is a
# name ("native", "generic", "offload").
Attached = collections.namedtuple("Attached", "mode id name tag")


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
        res = subprocess.run(self.command(args), timeout=timeout, **kwargs)
        if check and res.returncode != 0:
            raise CommandFailed(res.returncode, res.args, res.stdout, res.stderr)
        return res

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
        """`ip -j -d -s link show dev DEV` as a dict (DEV: this side's veth)."""
        return json.loads(self.ip("-j", "-d", "-s", "link", "show", "dev", dev or self.dev))[0]

    def xdp(self, dev=None):
        """The "xdp" part of link(DEV): what is attached (None: nothing)."""
        return self.link(dev).get("xdp")

    def attached(self, dev=None):
        """[Attached(mode, id, name, tag)] on link DEV, sorted."""
        xdp = self.xdp(dev) or {}
        entries = xdp.get("attached") or ([xdp] if "prog" in xdp else [])
        return sorted(Attached(project.XDP_MODES.get(e["mode"], e["mode"]), e["prog"]["id"],
                               e["prog"].get("name"), e["prog"].get("tag"))
                      for e in entries)

    def link_mac(self, dev=None):
        """Link DEV's MAC address as 6 bytes."""
        return bytes.fromhex(self.link(dev)["address"].replace(":", ""))

    def tx_packets(self, dev=None):
        return self.link(dev)["stats64"]["tx"]["packets"]

    def bpftool(self, *args):
        """`bpftool -j ARGS` inside, parsed."""
        return json.loads(self.run(["bpftool", "-j", *args], check=True).stdout)

    def count_counters(self, dev=None):
        """count's counters on link DEV, per key and CPU, read with bpftool
        through the one program attached there: {key: [(packets, bytes)
        per CPU]}, keys whose slots are all zero left out."""
        (program,) = self.attached(dev)
        for map_id in self.bpftool("prog", "show", "id", str(program.id)).get("map_ids", []):
            if self.bpftool("map", "show", "id", str(map_id)).get("name") == project.COUNT_MAP:
                break
        else:
            raise LookupError(f"no {project.COUNT_MAP} map on prog {program.id}")
        out = {}
        for entry in self.bpftool("map", "dump", "id", str(map_id)):
            f = entry["formatted"]
            per_cpu = [tuple(v["value"][k] for k in project.COUNT_FIELDS) for v in f["values"]]
            if any(any(c) for c in per_cpu):
                out[f["key"]] = per_cpu
        return out

    def sysctl(self, **settings):
        """Set sysctls inside, e.g. sysctl(**{"net.ipv4.ip_forward": 1})."""
        self.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())],
                 check=True)

    def create(self, ipv6=True):
        """Adds the namespace, with its loopback up and IPv6 quiet
        (QUIET_IPV6) or, with ipv6=False, off (NO_IPV6)."""
        subprocess.run(["ip", "netns", "add", self.name], check=True,
                       capture_output=True, text=True)
        self.sysctl(**(QUIET_IPV6 if ipv6 else NO_IPV6))
        self.ip("link", "set", "dev", "lo", "up")

    def delete(self):
        """Kills what popen() started, then deletes the namespace (if it
        was made) with everything in it."""
        self.stop_processes()
        if os.path.exists(self.path):
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def add_veth(self, dev, peer_dev, peer=None):
        """A veth pair, DEV here and PEER_DEV in namespace PEER (by default
        here too), both up; returns once both have carrier."""
        peer = peer or self
        self.ip("link", "add", "name", dev, "type", "veth",
                "peer", "name", peer_dev, "netns", peer.name)
        ends = ((self, dev), (peer, peer_dev))
        for ns, name in ends:
            ns.ip("link", "set", "dev", name, "up")
        if not wait_for(lambda: all("LOWER_UP" in ns.link(name)["flags"] for ns, name in ends)):
            raise RuntimeError(f"veth pair {dev!r}/{peer_dev!r} did not come up")

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
# No IPv6 at all: no addresses, no DAD, no MLD reports.
NO_IPV6 = {f"net.ipv6.conf.{scope}.disable_ipv6": 1 for scope in ("all", "default")}


class Namespaces:
    """Namespaces named "<prefix>-<pid>-<n>-<role>", created one by one
    with add() (see Namespace.create), deleted together by close()."""

    def __init__(self, prefix, ipv6=True):
        self.base = unique_name(prefix)
        self.ipv6 = ipv6
        self.made = []

    def add(self, role):
        ns = Namespace(f"{self.base}-{role}")
        self.made.append(ns)  # before it exists: delete() tolerates that
        ns.create(ipv6=self.ipv6)
        return ns

    def close(self):
        """Stops every namespace's processes, then deletes the namespaces;
        returns the names of those that could not be deleted."""
        for ns in self.made:
            ns.stop_processes()
        for ns in reversed(self.made):
            ns.delete()
        left = [ns.name for ns in self.made if os.path.exists(ns.path)]
        self.made = []
        return left

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def remove_stale(prefix):
    """Deletes the namespaces "<prefix>-<pid>-..." whose process <pid> no
    longer exists (a run killed outright); returns their names."""
    removed = []
    names = os.listdir(NETNS_DIR) if os.path.isdir(NETNS_DIR) else []
    for name in sorted(names):
        m = re.match(re.escape(prefix) + r"-(\d+)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            Namespace(name).delete()
            removed.append(name)
    return removed


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
            ns.create()
        self.client.add_veth(self.client.dev, self.server.dev, peer=self.server)
        for ns in self.sides:
            if self.mtu:
                ns.ip("link", "set", "dev", ns.dev, "mtu", str(self.mtu))
            ns.ip("addr", "add", f"{ns.ip4}/24", "dev", ns.dev)
            ns.ip("addr", "add", f"{ns.ip6}/64", "dev", ns.dev, "nodad")
            ns.mac = ns.link()["address"]

    def close(self):
        """Kill what was started inside, then delete both namespaces."""
        for ns in self.sides:
            ns.stop_processes()
        for ns in self.sides:
            ns.delete()


@contextlib.contextmanager
def namespaces(prefix, *roles, ipv6=True):
    """One Namespace per role, "<prefix>-<pid>-<n>-<role>", created (see
    Namespace.create); yields them as a list and deletes them on exit, also
    when the body raised."""
    with Namespaces(prefix, ipv6=ipv6) as made:
        yield [made.add(role) for role in roles]


@contextlib.contextmanager
def namespace_with_veth(prefix, dev, peer_dev):
    """One namespace, "<prefix>-<pid>-<n>-ns", holding a veth pair DEV <->
    PEER_DEV, both up; yields it with `dev` set to DEV, and deletes it on
    exit like namespaces()."""
    with namespaces(prefix, "ns") as (ns,):
        ns.dev = dev
        ns.add_veth(dev, peer_dev)
        yield ns


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


class PrivateBpffs:
    """A bpffs of its own on a temporary directory (see the top)."""

    def __init__(self):
        self.root = None

    def __enter__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="ipxdp-bpffs-"))
        try:
            subprocess.run(["mount", "-t", "bpf", "bpf", str(self.root)], check=True,
                           capture_output=True, text=True)
        except BaseException:
            self.root.rmdir()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
        self.root.rmdir()

    @property
    def globals(self):
        """Where iproute2 (and xdp-block) pin: TC_BPF_MNT/tc/globals."""
        return self.root / "tc" / "globals"

    @property
    def env(self):
        """This process's environment with TC_BPF_MNT set to this bpffs."""
        return dict(os.environ, TC_BPF_MNT=str(self.root))

    def block(self, *args, input=None, check=False, timeout=120):
        """xdp-block ARGS (paths.script) with this bpffs; the CompletedProcess."""
        res = subprocess.run([str(paths.script("xdp-block")), *args], input=input,
                             capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and res.returncode != 0:
            raise CommandFailed(res.returncode, res.args, res.stdout, res.stderr)
        return res

    def lists(self, *args):
        """`xdp-block list --json ARGS` as a dict."""
        return json.loads(self.block("list", "--json", *args, check=True).stdout)

    def stats(self):
        """`xdp-block stats --json` as a dict."""
        return json.loads(self.block("stats", "--json", check=True).stdout)

    def load_object(self, path=None):
        """A bpf.BpfObject of @path (default: the blocklist under test)
        whose maps pinned by name are the ones pinned here."""
        self.globals.mkdir(parents=True, exist_ok=True)
        return bpf.BpfObject(path or paths.obj("blocklist"), pin_root=self.globals)

    def pins(self):
        """The names pinned in tc/globals, sorted."""
        return sorted(p.name for p in self.globals.iterdir()) if self.globals.exists() else []

    def map_info(self, *spec):
        """`bpftool -j map show SPEC` ("pinned", PATH or "id", ID) as a dict."""
        out = subprocess.run(["bpftool", "-j", "map", "show", *map(str, spec)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def slot_map_id(self, name):
        """The id of the list map in slot 0 of the outer map pinned as @name."""
        out = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", str(self.globals / name),
                              "key", "0", "0", "0", "0"], check=True, capture_output=True, text=True).stdout
        return int.from_bytes(bytes(int(b, 16) for b in json.loads(out)["value"]), sys.byteorder)


__all__ = ["VethPair", "Namespace", "Namespaces", "namespaces", "namespace_with_veth",
           "remove_stale", "unique_name", "wait_for", "Attached", "CommandFailed",
           "QUIET_IPV6", "NO_IPV6", "NETNS_DIR", "PrivateBpffs"]
