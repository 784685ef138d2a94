# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""xdp-attach@.service and ipxdp-blocklist.service, checked without systemd
running as PID 1.

1. `systemd-analyze verify` on instances of the installed unit prints
   nothing at all (it exits 0 even for unknown keys, so stderr is what
   counts).  The man pages named in Documentation= are found through
   MANPATH, so that check runs too.
2. The unit's ExecStart, ExecReload and ExecStop lines are expanded the way
   systemd expands them for an instance (%i, %I, Environment= defaults
   overridden by the EnvironmentFile, ${VAR} as exactly one argument, $VAR
   split on whitespace into zero or more) and run against a veth in a
   throwaway namespace.  The EnvironmentFile is read from the PREFIX's
   configuration directory (make install puts it under a PREFIX of its
   own), filled by the test.
3. ipxdp-blocklist.service: verified the same way, and its ExecStart and
   ExecReload lines run in order against the list files install wrote
   there, with a private bpffs (TC_BPF_MNT).
"""

import os
import re
import shlex
import subprocess

import pytest

from ipxdp.netns import PrivateBpffs, namespace_with_veth
from ipxdp.paths import ROOT

UNIT = "xdp-attach@.service"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """ipxdp installed for real under a temporary PREFIX."""
    p = tmp_path_factory.mktemp("prefix")
    res = run(["make", "--no-print-directory", "-C", str(ROOT), "install", f"PREFIX={p}"])
    assert res.returncode == 0, res.stderr
    return p


def unitdir(prefix):
    return prefix / "lib" / "systemd" / "system"


def escape(name):
    return run(["systemd-escape", name], check=True).stdout.strip()


def verify(prefix, instance, unit_path=None):
    path = unit_path or unitdir(prefix) / f"xdp-attach@{instance}.service"
    return run(["systemd-analyze", "verify", str(path)],
               env={**os.environ, "MANPATH": str(prefix / "share" / "man")})


@pytest.mark.parametrize("ifname", ["eth0", "br-lan"])
def test_verify_instance_is_clean(prefix, ifname):
    res = verify(prefix, escape(ifname))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_verify_would_see_a_mistake(prefix, tmp_path):
    """The check above can fail: an unknown key and a missing man page show."""
    text = (unitdir(prefix) / UNIT).read_text()
    text = text.replace("[Service]\n", "[Service]\nRemainAfterExitt=yes\n")
    text = text.replace("man:xdp-detach(8)", "man:xdp-nosuch(8)")
    (tmp_path / UNIT).write_text(text)
    res = verify(prefix, None, tmp_path / "xdp-attach@eth0.service")
    assert "Unknown key name 'RemainAfterExitt' in section 'Service', ignoring." in res.stderr \
        or "Unknown key 'RemainAfterExitt' in section [Service], ignoring." in res.stderr
    assert "Command 'man xdp-nosuch(8)' failed" in res.stderr


# Expanding the unit as systemd does ----------------------------------------

def parse_unit(path):
    """{(section, key): [values]} of a unit file (no line continuations)."""
    out, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, value = line.split("=", 1)
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def specifiers(text, instance, unescaped):
    """%i, %I and %% only; anything else would need this test extended."""
    def one(m):
        c = m.group(1)
        if c == "i":
            return instance
        if c == "I":
            return unescaped
        if c == "%":
            return "%"
        raise AssertionError(f"specifier %{c} not handled by this test")
    return re.sub(r"%(.)", one, text)


def read_environment_file(path):
    """KEY=VALUE lines, # and ; comments, optional quotes (systemd's rules
    for the simple files this project documents)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def command_line(line, env):
    """ExecStart= syntax: quoted words; a word that is exactly $VAR becomes
    the value split on whitespace (zero or more words); ${VAR} is replaced
    in place and the word stays one word, even when empty."""
    if line[0] in "-@:+!":
        raise AssertionError(f"prefix {line[0]} not handled by this test")
    argv = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv.extend(env.get(m.group(1), "").split())
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                               lambda m: env.get(m.group(1), ""), word))
    return argv


class Instance:
    """xdp-attach@<escaped ifname>.service, with its config in confdir."""

    def __init__(self, prefix, ifname, confdir):
        self.unit = parse_unit(unitdir(prefix) / UNIT)
        self.prefix = prefix
        self.instance = escape(ifname)
        self.ifname = ifname
        self.confdir = confdir

    def value(self, key, section="Service"):
        (v,) = self.unit[(section, key)]
        return specifiers(v, self.instance, self.ifname)

    def environment(self):
        env = {}
        for v in self.unit.get(("Service", "Environment"), []):
            env.update(w.split("=", 1) for w in shlex.split(v))
        path = self.value("EnvironmentFile")
        etc = f"{self.prefix}/etc/ipxdp/"  # install's configuration directory for this PREFIX
        assert path.startswith(etc)
        env.update(read_environment_file(self.confdir / path[len(etc):]))
        return env

    def argv(self, key):
        return command_line(self.value(key), self.environment())


@pytest.fixture
def ns():
    # A dash in the interface name, so the instance name needs escaping.
    with namespace_with_veth("ipxdp-sd", "xdp-lan0", "peer0") as n:
        yield n


def test_instance_names_and_device_dependency(prefix, tmp_path):
    unit = Instance(prefix, "xdp-lan0", tmp_path)
    assert unit.instance == r"xdp\x2dlan0"
    # The device unit takes the escaped name, the scripts and the config
    # file the interface's own name.
    assert unit.value("BindsTo", "Unit") == r"sys-subsystem-net-devices-xdp\x2dlan0.device"
    assert [specifiers(v, unit.instance, unit.ifname) for v in unit.unit[("Unit", "After")]] == \
        [r"sys-subsystem-net-devices-xdp\x2dlan0.device", "ipxdp-blocklist.service"]
    assert unit.value("EnvironmentFile") == f"{prefix}/etc/ipxdp/xdp-lan0.conf"
    (tmp_path / "xdp-lan0.conf").write_text("OBJECT=drop-tcp\n")
    assert unit.argv("ExecStart") == [
        str(prefix / "sbin/xdp-attach"), "--mode", "auto", "--", "xdp-lan0", "drop-tcp"]
    assert unit.argv("ExecStop") == [str(prefix / "sbin/xdp-detach"), "--", "xdp-lan0"]
    (tmp_path / "xdp-lan0.conf").write_text(
        '# comment\nOBJECT="/srv/x dp/prog.o"\nSECTION=filter\nMODE=generic\n')
    assert unit.argv("ExecStart") == [
        str(prefix / "sbin/xdp-attach"), "--mode", "generic", "--", "xdp-lan0",
        "/srv/x dp/prog.o", "filter"]


def test_start_reload_stop_against_a_veth(prefix, tmp_path, ns):
    unit = Instance(prefix, ns.dev, tmp_path)
    conf = tmp_path / f"{ns.dev}.conf"
    conf.write_text((ROOT / "systemd" / "eth0.conf").read_text()
                    .replace("MODE=auto", "MODE=native"))

    res = ns.run(unit.argv("ExecStart"))
    assert res.returncode == 0, res.stderr
    xdp = ns.xdp()
    assert (xdp["mode"], xdp["prog"]["name"]) == (1, "xdp_drop_tcp_mb")  # SECTION= empty
    assert res.stdout == f"{ns.dev}: drop-tcp attached (native, multi-buffer, prog id {xdp['prog']['id']})\n"

    # Started again (say, after a daemon-reload): nothing changes.
    res = ns.run(unit.argv("ExecStart"))
    assert res.returncode == 0, res.stderr
    assert "already attached" in res.stdout
    assert ns.xdp()["prog"]["id"] == xdp["prog"]["id"]

    # Another object in the file: start refuses, reload replaces it.
    conf.write_text("OBJECT=count\nMODE=native\n")
    res = ns.run(unit.argv("ExecStart"))
    assert res.returncode == 4
    assert len(res.stderr.splitlines()) == 1
    assert ns.xdp()["prog"]["id"] == xdp["prog"]["id"]
    res = ns.run(unit.argv("ExecReload"))
    assert res.returncode == 0, res.stderr
    assert (ns.xdp()["mode"], ns.xdp()["prog"]["name"]) == (1, "xdp_count_mb")

    res = ns.run(unit.argv("ExecStop"))
    assert res.returncode == 0, res.stderr
    assert ns.xdp() is None
    # Stopping a stopped unit: nothing attached is success.
    assert ns.run(unit.argv("ExecStop")).returncode == 0


def test_failure_is_one_line_and_changes_nothing(prefix, tmp_path, ns):
    """What `systemctl status` shows from the journal when start fails."""
    unit = Instance(prefix, ns.dev, tmp_path)
    conf = tmp_path / f"{ns.dev}.conf"
    conf.write_text("OBJECT=nosuch\n")
    res = ns.run(unit.argv("ExecStart"))
    assert res.returncode == 2
    (line,) = res.stderr.splitlines()
    assert line.startswith("xdp-attach: ")
    assert str(prefix / "lib/bpf/ipxdp/nosuch.o") in line
    assert ns.xdp() is None

    conf.write_text("OBJECT=drop-tcp\nMODE=offload\n")
    res = ns.run(unit.argv("ExecStart"))
    assert res.returncode == 3
    (line,) = res.stderr.splitlines()
    assert "offload" in line
    assert ns.xdp() is None


# ipxdp-blocklist.service ---------------------------------------------------

BLOCKLIST_UNIT = "ipxdp-blocklist.service"


def test_verify_blocklist_unit_is_clean(prefix):
    res = verify(prefix, None, unitdir(prefix) / BLOCKLIST_UNIT)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def blocklist_commands(prefix, key):
    """The unit's ExecStart= (or ExecReload=) lines, in order, as argv."""
    unit = parse_unit(unitdir(prefix) / BLOCKLIST_UNIT)
    return [command_line(line, {}) for line in unit[("Service", key)]]


def test_blocklist_unit_loads_the_installed_lists(prefix):
    """The unit's commands, run by hand as systemd would (in a private
    bpffs): the installed empty files load; an edited file reloads, allow
    list first, and is what the lists hold; a bad line fails with one line
    and leaves that list as it was."""
    etc = prefix / "etc" / "ipxdp"
    xdp_block = str(prefix / "sbin" / "xdp-block")
    for key in ("ExecStart", "ExecReload"):
        assert blocklist_commands(prefix, key) == [
            [xdp_block, "load", "--allow", str(etc / "allow.txt")],
            [xdp_block, "load", str(etc / "blocklist.txt")]]
    unit = parse_unit(unitdir(prefix) / BLOCKLIST_UNIT)
    assert (unit[("Service", "Type")], unit[("Service", "RemainAfterExit")]) == (["oneshot"], ["yes"])
    assert ("Service", "ExecStop") not in unit  # stopping leaves the lists loaded

    def run_all(key):
        out = []
        for argv in blocklist_commands(prefix, key):
            res = run(argv, env=fs.env)
            out.append((res.returncode, res.stdout, res.stderr))
            if res.returncode:
                break
        return out

    with PrivateBpffs() as fs:
        assert run_all("ExecStart") == [(0, "allow: unchanged (0 prefixes)\n", ""),
                                        (0, "block: unchanged (0 prefixes)\n", "")]
        (etc / "allow.txt").write_text("# management\n192.0.2.0/24\n")
        (etc / "blocklist.txt").write_text("198.51.100.0/24\n192.0.2.0/23\n2001:db8::/32\n")
        assert run_all("ExecReload") == [
            (0, "allow: changed (1 prefix: 1 added, 0 deleted, 0 kept)\n", ""),
            (0, "block: changed (3 prefixes: 3 added, 0 deleted, 0 kept)\n", "")]
        assert fs.block("check", "192.0.2.7", check=True).stdout == "allowed by 192.0.2.0/24\n"
        assert fs.block("check", "192.0.3.7", check=True).stdout == "blocked by 192.0.2.0/23\n"
        assert run_all("ExecReload") == [(0, "allow: unchanged (1 prefix)\n", ""),
                                         (0, "block: unchanged (3 prefixes)\n", "")]
        before = fs.lists()
        (etc / "blocklist.txt").write_text("198.51.100.0/24\n10.0.0.1/8\n")
        res = run_all("ExecReload")
        assert res[0] == (0, "allow: unchanged (1 prefix)\n", "")
        assert res[1] == (2, "", f"xdp-block: {etc / 'blocklist.txt'}:2: 10.0.0.1/8: host bits set "
                                 "(did you mean 10.0.0.0/8?) (nothing loaded)\n")
        assert fs.lists() == before
