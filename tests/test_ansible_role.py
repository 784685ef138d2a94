# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The Ansible role contrib/ansible/roles/ipxdp, run for real.

Debian's ansible-playbook runs contrib/ansible/site.yml as
`ansible-playbook -i localhost, -c local`, inside a throwaway network
namespace (nsenter --net, so the role's interface is a veth there), with
the .deb that `make deb` builds from this tree and ipxdp_systemd off (PID 1
is not systemd here): the role installs the package into this machine,
writes /etc/ipxdp/va.conf and attaches with xdp-attach.  The JSON callback
says which tasks changed; the kernel says what is attached.

The blocklist part runs xdp-block from the package against a private
bpffs (TC_BPF_MNT), never the host's list.

Like test_deb_package.py, this refuses to run on a machine that has ipxdp
installed or an /etc/ipxdp/va.conf, and leaves the machine as it found it:
the package purged, the files the role wrote removed, also when a test
fails.  ansible-lint (Debian's) must pass on the role.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from ipxdp.paths import ROOT
from ipxdp.netns import namespace_with_veth

ANSIBLE_DIR = ROOT / "contrib" / "ansible"
PLAYBOOK = ANSIBLE_DIR / "site.yml"
DEV = "va"
ETC = pathlib.Path("/etc/ipxdp")
CONF = ETC / f"{DEV}.conf"
LISTS = [ETC / "blocklist.txt", ETC / "allow.txt"]
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
APT_OPTS = ["-o", "DPkg::Lock::Timeout=120", "-y", "-q"]
SERVICE_ACTIONS = {"ansible.builtin.systemd", "ansible.builtin.systemd_service",
                   "ansible.builtin.service", "systemd", "service"}
LIST_HEADER = ("# Written by Ansible (role ipxdp): change the role's variables, not this file.\n"
               "# One prefix a line; xdp-block(8) reads it.\n")


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def installed():
    res = run(["dpkg-query", "-W", "-f=${Status}", "ipxdp"])
    return res.returncode == 0 and "installed" in res.stdout.split()


class Play:
    """One ansible-playbook run, read from the JSON callback."""

    def __init__(self, res):
        self.rc, self.stderr = res.returncode, res.stderr
        try:
            self.out = json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from ansible-playbook (rc {res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}") from None
        self.stats = self.out["stats"]["localhost"]
        self.tasks = {}
        for play in self.out["plays"]:
            for task in play["tasks"]:
                name = task["task"]["name"].removeprefix("ipxdp : ")
                self.tasks[name] = task["hosts"].get("localhost", {})

    def __repr__(self):
        """What the failures said (shown when an assert on the run fails)."""
        failed = {name: {k: r.get(k) for k in ("msg", "stdout", "stderr") if r.get(k)}
                  for name, r in self.tasks.items() if r.get("failed")}
        return f"rc {self.rc}, {self.stats}, failed: {json.dumps(failed, indent=1)}\n{self.stderr}"

    @property
    def changed(self):
        return {name for name, r in self.tasks.items() if r.get("changed")}

    def stdout(self, task):
        """The stdout of TASK, or of each of its loop items."""
        r = self.tasks[task]
        if "results" in r:
            return [item.get("stdout") for item in r["results"]]
        return r.get("stdout")


class Host:
    """This machine seen through the namespace NS: runs the playbook."""

    def __init__(self, ns, tmp, deb, bpffs):
        self.ns, self.tmp, self.deb, self.bpffs = ns, tmp, deb, bpffs
        self.runs = 0
        (tmp / "ansible.cfg").write_text("")
        self.env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(tmp / "ansible.cfg"),  # no ansible.cfg from elsewhere
            "ANSIBLE_HOME": str(tmp / "home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp / "local-tmp"),
            "ANSIBLE_REMOTE_TEMP": str(tmp / "remote-tmp"),
            "ANSIBLE_STDOUT_CALLBACK": "json",
            "ANSIBLE_NOCOLOR": "1",
            "TC_BPF_MNT": str(bpffs),
        }

    def vars(self, **overrides):
        v = {"ipxdp_deb": str(self.deb), "ipxdp_deb_dest": str(self.tmp / "deb-dest"),
             "ipxdp_systemd": False,
             "ipxdp_interfaces": [{"name": DEV, "object": "count"}]}
        v.update(overrides)
        return v

    def play(self, *options, **overrides):
        self.runs += 1
        path = self.tmp / f"vars-{self.runs}.json"
        path.write_text(json.dumps(self.vars(**overrides)))
        res = self.ns.run(["ansible-playbook", "-i", "localhost,", "-c", "local", *options,
                           "-e", f"@{path}", str(PLAYBOOK)],
                          env=self.env, cwd=self.tmp, timeout=300)
        return Play(res)

    def run(self, args):
        return self.ns.run(args, env=self.env)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    assert not installed(), "ipxdp is already installed here: the role would replace it"
    for path in [CONF, *LISTS]:
        assert not path.exists(), f"{path} exists: the role would overwrite it"
    etc_existed = ETC.exists()
    tmp = tmp_path_factory.mktemp("ansible")

    out = tmp / "deb"
    res = run(["make", "--no-print-directory", "-C", str(ROOT), "deb",
               f"IPXDP_DEB_DIR={out}"], timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (deb,) = out.glob("ipxdp_*.deb")

    bpffs = tmp / "bpf"
    bpffs.mkdir()
    run(["mount", "-t", "bpf", "bpf", str(bpffs)]).check_returncode()
    try:
        with namespace_with_veth("ipxdp-ans", DEV, "vb") as ns:
            yield Host(ns, tmp, deb, bpffs)
    finally:
        purge = run(["apt-get", "purge", *APT_OPTS, "ipxdp"], env=APT_ENV, timeout=300)
        for path in [CONF, *LISTS]:
            path.unlink(missing_ok=True)
        if not etc_existed and ETC.exists():
            ETC.rmdir()
        run(["umount", str(bpffs)])
        assert purge.returncode == 0, purge.stdout + purge.stderr
        assert not installed()


@pytest.fixture(scope="module")
def first(host):
    """The first run: package, configuration, attach."""
    return host.play()


def assert_no_service_module_ran(play):
    for name, r in play.tasks.items():
        if r.get("action") in SERVICE_ACTIONS:
            assert r.get("skipped"), f"{name}: a service module ran with ipxdp_systemd off"


def test_first_run_installs_configures_attaches(host, first):
    assert first.rc == 0, first
    assert first.stats["failures"] == 0
    expected = {"Create the directory for the package", "Copy the package to the host",
                "Install the package from the copied file", "Write the configuration of each interface",
                "Attach the programs with xdp-attach"}
    # The directory is a change only when the role made it.
    assert first.changed - {"Create the configuration directory"} == expected
    assert installed()
    assert CONF.read_text().splitlines()[-3:] == ["OBJECT=count", "SECTION=", "MODE=auto"]
    assert CONF.stat().st_mode & 0o777 == 0o644

    xdp = host.ns.xdp()
    assert xdp["prog"]["name"] == "xdp_count_mb"
    assert xdp["mode"] == 1  # native
    assert first.stdout("Attach the programs with xdp-attach") == \
        [f"{DEV}: count attached (native, multi-buffer, prog id {xdp['prog']['id']})"]
    res = host.run(["xdp-status", "--json", DEV])
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert (row["object"], row["section"], row["id"]) == ("count.o", "xdp.frags", xdp["prog"]["id"])
    assert_no_service_module_ran(first)
    assert first.tasks["Load the block list"].get("skipped")


def test_second_run_changes_nothing(host, first):
    assert first.rc == 0, first
    prog_id = host.ns.xdp()["prog"]["id"]
    again = host.play()
    assert again.rc == 0, again
    assert (again.stats["changed"], again.changed) == (0, set())
    assert again.stdout("Attach the programs with xdp-attach") == \
        [f"{DEV}: count already attached (native, multi-buffer, prog id {prog_id})"]
    assert host.ns.xdp()["prog"]["id"] == prog_id
    assert_no_service_module_ran(again)


@pytest.mark.parametrize("entry", [
    {"name": "a/b", "object": "count"},
    {"name": DEV, "object": 'count"'},  # a quote would change how systemd reads the file
    {"name": DEV, "object": "count", "mode": "fast"},
])
def test_bad_entry_fails_before_any_change(host, first, entry):
    assert first.rc == 0, first
    before = CONF.read_text()
    bad = host.play(ipxdp_interfaces=[entry])
    assert bad.rc != 0
    assert bad.tasks["Check the interface entries"].get("failed"), bad
    assert bad.stats["changed"] == 0
    assert CONF.read_text() == before
    assert host.ns.xdp()["prog"]["name"] == "xdp_count_mb"


def test_changed_object_replaces_the_program(host, first):
    assert first.rc == 0, first
    old = host.ns.xdp()["prog"]["id"]
    play = host.play(ipxdp_interfaces=[{"name": DEV, "object": "drop-tcp", "mode": "native"}])
    assert play.rc == 0, play
    assert play.changed == {"Write the configuration of each interface",
                            "Attach the programs with xdp-attach"}
    assert play.stats["changed"] == 2
    xdp = host.ns.xdp()
    assert xdp["prog"]["name"] == "xdp_drop_tcp_mb" and xdp["prog"]["id"] != old
    assert play.stdout("Attach the programs with xdp-attach") == \
        [f"{DEV}: drop-tcp attached (native, multi-buffer, prog id {xdp['prog']['id']})"]
    assert CONF.read_text().splitlines()[-3:] == ["OBJECT=drop-tcp", "SECTION=", "MODE=native"]

    back = host.play()
    assert back.rc == 0, back
    assert back.stats["changed"] == 2
    assert host.ns.xdp()["prog"]["name"] == "xdp_count_mb"


def test_systemd_path_in_check_mode(host, first):
    """With ipxdp_systemd on, in check mode (nothing is written or
    attached): the unit name is the escaped interface name, and the
    systemd module is what runs; on a machine whose PID 1 is not systemd
    it fails, which is why the tests above switch it off."""
    assert first.rc == 0, first
    before = CONF.read_text()
    play = host.play("--check", ipxdp_systemd=True,
                     ipxdp_interfaces=[{"name": "br-lan", "object": "drop-tcp"}])
    assert play.stdout("Escape the interface names for the unit names") == ["br\\x2dlan"]
    unit = play.tasks["Enable and start xdp-attach@NAME.service"]
    assert unit["action"] == "ansible.builtin.systemd"
    (item,) = unit["results"]
    if os.path.isdir("/run/systemd/system"):  # systemd is PID 1 (sd_booted)
        assert play.rc == 0, play
        assert item["name"] == "xdp-attach@br\\x2dlan.service"
    else:
        # "System has not been booted with systemd ..." or "Service is in
        # unknown state", depending on what systemctl could still read.
        assert play.rc != 0
        assert item.get("failed") and item.get("msg"), item
    attach = play.tasks.get("Attach the programs with xdp-attach")  # not reached after a failure
    assert attach is None or attach.get("skipped")
    assert not (ETC / "br-lan.conf").exists()
    assert CONF.read_text() == before


def check(host, addr):
    res = host.run(["xdp-block", "check", addr])
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_blocklist_files_and_loads(host, first):
    assert first.rc == 0, first
    assert os.path.exists("/usr/sbin/xdp-block"), "the package ships xdp-block"
    lists = {"ipxdp_blocklist": True,
             "ipxdp_block_prefixes": ["198.51.100.0/24", "2001:db8:1::/48"],
             "ipxdp_allow_prefixes": ["198.51.100.128/25"]}

    play = host.play(**lists)
    assert play.rc == 0, play
    # Each file is loaded by the copy that installs it; the loads after it
    # find the lists as they should be.
    assert play.changed == {"Install the allow list (loaded before it is written)",
                            "Install the block list (loaded before it is written)"}
    assert (play.stdout("Load the allow list"), play.stdout("Load the block list")) == \
        ("allow: unchanged (1 prefix)", "block: unchanged (2 prefixes)")
    assert LISTS[0].read_text() == LIST_HEADER + "198.51.100.0/24\n2001:db8:1::/48\n"
    assert LISTS[1].read_text() == LIST_HEADER + "198.51.100.128/25\n"
    assert check(host, "198.51.100.7") == "blocked by 198.51.100.0/24"
    assert check(host, "198.51.100.200") == "allowed by 198.51.100.128/25"
    assert check(host, "2001:db8:1::5") == "blocked by 2001:db8:1::/48"

    again = host.play(**lists)
    assert again.rc == 0, again
    assert again.stats["changed"] == 0, again

    # A changed list: one change, and the new list is what the kernel uses.
    lists["ipxdp_block_prefixes"] = ["203.0.113.0/24", "2001:db8:1::/48"]
    changed = host.play(**lists)
    assert changed.rc == 0, changed
    assert changed.changed == {"Install the block list (loaded before it is written)"}
    assert changed.stats["changed"] == 1
    assert check(host, "198.51.100.7") == "not listed"
    assert check(host, "203.0.113.9") == "blocked by 203.0.113.0/24"

    # A list changed behind the role's back is put back, by the load task.
    res = host.run(["xdp-block", "add", "192.0.2.1"])
    assert res.returncode == 0, res.stderr
    drift = host.play(**lists)
    assert drift.rc == 0, drift
    assert drift.changed == {"Load the block list"}
    assert drift.stdout("Load the block list") == "block: changed (2 prefixes: 0 added, 1 deleted, 2 kept)"
    assert check(host, "192.0.2.1") == "not listed"

    # A bad list fails the run and changes neither the file nor the list.
    before = LISTS[0].read_text()
    bad = host.play(**{**lists, "ipxdp_block_prefixes": ["203.0.113.0/24", "300.1.2.3"]})
    assert bad.rc != 0
    assert bad.tasks["Install the block list (loaded before it is written)"].get("failed")
    assert LISTS[0].read_text() == before
    assert check(host, "203.0.113.9") == "blocked by 203.0.113.0/24"


# ansible-lint ----------------------------------------------------------------

def lint(directory, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "NO_COLOR": "1",
           "ANSIBLE_HOME": str(tmp_path / "home")}
    # --offline: no schema downloads, no requirements installed.
    return run(["ansible-lint", "--offline", "--nocolor", "-p", "roles/ipxdp", "site.yml"],
               cwd=directory, env=env)


def test_ansible_lint_is_clean(tmp_path):
    res = lint(ANSIBLE_DIR, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == "", res.stdout


def test_ansible_lint_would_see_a_mistake(tmp_path):
    """The check above can fail: a command that always reports "changed"."""
    copy = tmp_path / "ansible"
    shutil.copytree(ANSIBLE_DIR, copy)
    tasks = copy / "roles" / "ipxdp" / "tasks" / "main.yml"
    tasks.write_text(tasks.read_text() +
                     "\n- name: Show what is attached\n"
                     "  ansible.builtin.command: xdp-status\n")
    res = lint(copy, tmp_path)
    assert res.returncode != 0
    assert "no-changed-when" in res.stdout, res.stdout + res.stderr
