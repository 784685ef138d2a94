# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The built objects against the reference classifiers, frame by frame.

Each frame goes through drop-tcp, port-9090 and count (the built .o files,
via BPF_PROG_TEST_RUN) and through reference.py.  They must agree on the
verdict, on the output bytes of PASS and TX, and for count on the key and
the bytes added.  Used by tests/test_differential.py and
tests/test_hardening_sweep.py (slices in `make check`) and by `make fuzz`
(hardening/fuzz.py, at scale).

blocklist is checked the same way against blocklist_reference.py, in
rounds: a round draws a block and an allow list (nested prefixes of both
families, /0, /32, /128, IPv4-mapped IPv6 prefixes), loads them with
xdp-block into a private bpffs (BlocklistObject), and runs frames through
blocklist.o: random frames with their source rewritten to one drawn from
the lists (inside a prefix, at its first or last address, or anywhere).
Verdict, output bytes and the totals must agree after every frame, the
per-prefix counters (`xdp-block list --json`) at the end of the round.
Used by tests/test_blocklist_differential.py and `make fuzz`.

Every frame has a name, FAMILY:SEED:INDEX, the one replay syntax:

    random:SEED:INDEX     randframes.frame(SEED, INDEX, tx_port)
    sweep:SEED:INDEX      the INDEX-th frame of sweep.sweep(SEED, tx_port)
    jumbo:SEED:INDEX      random:SEED:INDEX made multi-buffer by jumbo()
    blocklist:SEED:INDEX  frame INDEX % BLOCKLIST_ROUND of blocklist round
                          INDEX // BLOCKLIST_ROUND of SEED, checked with
                          that round's lists

A jumbo frame goes through each object's xdp.frags program instead.  The
reference is the same: the programs read headers from the first buffer
only (parse.h), so a verdict and count's key are the reference's for that
first buffer, and the output and count's bytes are the whole frame's.

and every disagreement prints the command that checks its frame again,
from the repository root: `make fuzz REPLAY=NAME` (replay_command).
"""

import collections
import ipaddress
import os
import random
import shlex

from . import blocklist_reference, bpf, netns, paths, project, randframes, reference, sweep

FAMILIES = ("random", "sweep", "jumbo", "blocklist")
PROGRAMS = ("drop-tcp", "port-9090", "count")
BLOCKLIST_ROUND = 10_000  # frames per blocklist round (a frame name's unit)
# The longest first buffer BPF_PROG_TEST_RUN builds (4 KiB pages).
FIRST_BUFFER_MAX = 3520


def multibuffer(program):
    """The name verdicts are tallied under for @program's xdp.frags entry."""
    return f"{program}/{project.MULTIBUFFER_SECTION}"


def jumbo(frame, seed, index):
    """@frame (random:SEED:INDEX) padded with random bytes to 4,000-9,000
    bytes, and the length of its first buffer: mostly None (the kernel's
    own split), sometimes anywhere from 14 bytes to the end of the original
    frame, which may cut its headers."""
    r = random.Random((seed << 32) ^ index ^ 0x6a756d62)
    padded = frame + r.randbytes(r.randrange(4000, 9001) - len(frame))
    return padded, (None if r.random() < 0.7 else r.randrange(14, len(frame) + 1))


def jumbo_frame(seed, index, tx_port):
    """jumbo:SEED:INDEX as (frame, first buffer length or None)."""
    return jumbo(randframes.frame(seed, index, tx_port), seed, index)


def split(name, frame, tx_port):
    """How frame @name reaches the programs: (multi-buffer?, the first
    buffer's length to ask for or None, the bytes the parser reads)."""
    family, seed, index = parse_name(name)
    if family != "jumbo":
        return False, None, frame
    first_buffer = jumbo_frame(seed, index, tx_port)[1]
    return True, first_buffer, frame[:first_buffer or FIRST_BUFFER_MAX]


def replay_command(name):
    """The command that checks frame @name again against the same objects."""
    env = ""
    if os.environ.get("IPXDP_BUILD"):
        env = f"IPXDP_BUILD={shlex.quote(str(paths.build_dir()))} "
    return f"{env}make fuzz REPLAY={name}"


def parse_name(name):
    """"sweep:1:77" -> ("sweep", 1, 77); ValueError if it is no frame name."""
    family, seed, index = name.split(":")
    if family not in FAMILIES:
        raise ValueError(f"{name}: the family is one of {', '.join(FAMILIES)}")
    return family, int(seed), int(index)


def frame_of(name, tx_port):
    """(sweep family, "random" or "blocklist", frame) for the frame called
    @name; ValueError if there is no such frame."""
    family, seed, index = parse_name(name)
    if family == "random":
        return "random", randframes.frame(seed, index, tx_port)
    if family == "jumbo":
        return "jumbo", jumbo_frame(seed, index, tx_port)[0]
    if family == "blocklist":
        block, allow = blocklist_lists(seed, index // BLOCKLIST_ROUND)
        return "blocklist", blocklist_frame(seed, index, tx_port, block + allow)
    frames = sweep.sweep(seed, tx_port)
    if not 0 <= index < len(frames):
        raise ValueError(f"{name}: the sweep has frames 0 to {len(frames) - 1}")
    return frames[index]


class Disagreement:
    def __init__(self, name, program, frame, what):
        self.name, self.program, self.frame, self.what = name, program, frame, what

    def __str__(self):
        if not self.frame:  # about the run, not one frame
            return f"{self.program}: {self.what}"
        parsed = reference.parse(self.frame)
        return (f"{self.program}: {self.what}\n"
                f"  reference parse: key={parsed.key} l4={parsed.l4}\n"
                f"  replay: {replay_command(self.name)}\n"
                f"  frame {self.name} ({len(self.frame)} bytes): {self.frame.hex()}")


class Objects:
    """The three objects of @build (default: paths.build_dir()), loaded
    once; count's counters; port-9090's build config; every verdict each
    program gave, tallied by name in `verdicts`."""

    def __init__(self, build=None):
        build = build or paths.build_dir()
        self.programs = {}
        try:
            for name in PROGRAMS:
                self.programs[name] = bpf.BpfObject(build / f"{name}.o")
        except BaseException:
            self.close()
            raise
        self.counters = bpf.count_counters(self.programs["count"])
        self.tx_port, self.tx_mac = project.port_9090_config(build)
        self.verdicts = {name: collections.Counter()
                         for program in PROGRAMS for name in (program, multibuffer(program))}

    def run(self, program, frame, multi=False, first_buffer=None):
        """@frame through @program's plain section, or with @multi its
        xdp.frags program, the first buffer @first_buffer bytes long (None:
        as the kernel splits it)."""
        if multi:
            verdict, out = self.programs[program].run(frame, section=project.MULTIBUFFER_SECTION,
                                                      first_buffer=first_buffer)
            self.verdicts[multibuffer(program)][bpf.verdict_name(verdict)] += 1
        else:
            verdict, out = self.programs[program].run(frame)
            self.verdicts[program][bpf.verdict_name(verdict)] += 1
        return verdict, out

    def clear_counters(self):
        self.counters.clear(range(project.COUNT_KEYS))

    def counted(self):
        """Frames count has counted under any key since clear_counters()."""
        return sum(self.counters.total(k)["packets"] for k in range(project.COUNT_KEYS))

    def close(self):
        for obj in self.programs.values():
            obj.close()
        self.programs = {}


def check_frame(objs, frame, name, totals):
    """The Disagreements for one frame (called @name).  totals: per-key
    running totals the count map must match.  A jumbo frame goes through
    the xdp.frags programs, split as its name says."""
    found = []
    multi, first_buffer, seen = split(name, frame, objs.tx_port)

    def differ(program, what):
        if multi:
            program = multibuffer(program)
            what = f"first buffer {len(seen)} bytes: {what}"
        found.append(Disagreement(name, program, frame, what))

    for program, expect in (("drop-tcp", reference.drop_tcp(seen)),
                            ("port-9090", reference.port_9090(seen, objs.tx_port, objs.tx_mac))):
        verdict, out = objs.run(program, frame, multi, first_buffer)
        got = bpf.verdict_name(verdict)
        if got != expect[0]:
            differ(program, f"verdict {got}, reference says {expect[0]}")
        elif got != "DROP" and out != expect[1] + frame[len(seen):]:
            differ(program, f"output bytes differ: got {out.hex()}")

    key, nbytes = reference.count(seen)[0], len(frame)
    verdict, out = objs.run("count", frame, multi, first_buffer)
    if verdict != bpf.XDP_PASS or out != frame:
        differ("count", f"verdict {bpf.verdict_name(verdict)} or output changed; "
                        "count must pass unchanged")
    want = totals.setdefault(key, {"packets": 0, "bytes": 0})
    want["packets"] += 1
    want["bytes"] += nbytes
    got = objs.counters.total(key)
    if got != want:
        differ("count", f"key {key}: counters {got}, expected {want} "
                        f"(the frame was counted under another key or with other bytes)")
        totals[key] = got  # resynchronise so one error is reported once
    return found


def _check_all(objs, named_frames):
    """Checks [(name, label, frame)] from zeroed counters, then that count
    counted each frame once; returns (frames, Disagreements)."""
    objs.clear_counters()
    totals, found, n = {}, [], 0
    for name, label, frame in named_frames:
        for d in check_frame(objs, frame, name, totals):
            if label:
                d.what = f"[{label}] {d.what}"
            found.append(d)
        n += 1
    if objs.counted() != n:
        found.append(Disagreement("-", "count", b"", f"{objs.counted()} packets counted for {n} frames"))
    return n, found


def run_random(objs, seed, first, last):
    """Random frames first..last-1 of @seed; returns the Disagreements."""
    return _check_all(objs, ((f"random:{seed}:{i}", None, randframes.frame(seed, i, objs.tx_port))
                             for i in range(first, last)))[1]


def run_jumbo(objs, seed, first, last):
    """Jumbo frames first..last-1 of @seed; returns the Disagreements."""
    return _check_all(objs, ((f"jumbo:{seed}:{i}", None, jumbo_frame(seed, i, objs.tx_port)[0])
                             for i in range(first, last)))[1]


def run_sweep(objs, seed):
    """The whole sweep of @seed; returns (frames, Disagreements)."""
    return _check_all(objs, ((f"sweep:{seed}:{i}", family, frame)
                             for i, (family, frame) in enumerate(sweep.sweep(seed, objs.tx_port))))


# --- blocklist ------------------------------------------------------------------

def _net(version, bits, plen):
    return ipaddress.ip_network((bits, plen), strict=False) if version == 4 else \
        ipaddress.IPv6Network((bits, plen), strict=False)


def _inside(r, net, plen):
    """A random subnet of @net with prefix length @plen (>= net's)."""
    host = r.getrandbits(net.max_prefixlen - net.prefixlen) if net.prefixlen < net.max_prefixlen else 0
    return _net(net.version, int(net.network_address) | host, plen)


def blocklist_lists(seed, rnd):
    """(block, allow) of round @rnd of @seed: sorted lists of ipaddress
    networks, block nested inside a few roots, allow mostly inside or
    around blocked ones."""
    r = random.Random(f"blocklist-lists:{seed}:{rnd}")
    roots = [_net(4, r.getrandbits(32), r.choice((8, 12, 16, 20, 24))) for _ in range(r.randrange(2, 6))]
    roots += [_net(6, r.getrandbits(128), r.choice((16, 32, 48, 64))) for _ in range(r.randrange(2, 5))]
    mapped = (0xFFFF << 32) | r.getrandbits(32)  # ::ffff:a.b.c.d, an IPv6 prefix
    roots.append(_net(6, mapped, r.choice((104, 112, 120, 128))))
    block = set(roots)
    for _ in range(r.randrange(5, 40)):
        root = r.choice(roots)
        block.add(_inside(r, root, r.randrange(root.prefixlen, root.max_prefixlen + 1)))
    if r.random() < 0.3:
        block.add(ipaddress.ip_network("0.0.0.0/0"))
    if r.random() < 0.3:
        block.add(ipaddress.ip_network("::/0"))
    allow = set()
    for _ in range(r.randrange(0, 8)):
        base = r.choice(sorted(block, key=str))
        if r.random() < 0.7 and base.prefixlen < base.max_prefixlen:
            allow.add(_inside(r, base, r.randrange(base.prefixlen + 1, base.max_prefixlen + 1)))
        elif base.prefixlen > 0:
            allow.add(base.supernet(prefixlen_diff=r.randrange(1, base.prefixlen + 1)))
    return sorted(block, key=str), sorted(allow, key=str)


def _source(r, version, networks):
    """An address of @version: mostly in one of @networks (anywhere in it,
    its first or its last address), else anywhere at all."""
    mine = [n for n in networks if n.version == version]
    bits = 32 if version == 4 else 128
    if mine and r.random() < 0.85:
        net = r.choice(mine)
        pick = r.random()
        if pick < 0.15:
            return net.network_address
        if pick < 0.3:
            return net.broadcast_address
        host = r.getrandbits(bits - net.prefixlen) if net.prefixlen < bits else 0
        return ipaddress.ip_address(int(net.network_address) | host) if version == 4 else \
            ipaddress.IPv6Address(int(net.network_address) | host)
    return ipaddress.IPv4Address(r.getrandbits(32)) if version == 4 else ipaddress.IPv6Address(r.getrandbits(128))


def blocklist_frame(seed, index, tx_port, networks):
    """Frame @index of the blocklist family: random frame INDEX of @seed,
    an IP one with its source drawn from @networks."""
    frame = randframes.frame(seed, index, tx_port)
    if reference.parse(frame).key >= reference.KEY_NON_IP:
        return frame
    r = random.Random(f"blocklist-source:{seed}:{index}")
    version = 4 if blocklist_reference.l3_offset(frame)[0] == reference.ETH_P_IP else 6
    return randframes.with_source(frame, _source(r, version, networks))


class BlocklistObject:
    """blocklist.o of @build (default: paths.build_dir()) loaded in a
    private bpffs, its lists set with xdp-block; every verdict tallied in
    `verdicts`.  A context manager."""

    def __init__(self, build=None):
        self.path = (build or paths.build_dir()) / "blocklist.o"
        self.fs = self.obj = None
        self.verdicts = collections.Counter()
        self.lists = None  # blocklist_reference.Lists of the round loaded

    def __enter__(self):
        self.fs = netns.PrivateBpffs().__enter__()
        try:
            self.fs.block("flush", check=True)  # the pinned maps, as xdp-block makes them
            self.obj = self.fs.load_object(self.path)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.obj:
            self.obj.close()
            self.obj = None
        if self.fs:
            self.fs.__exit__(None, None, None)
            self.fs = None

    def load(self, block, allow):
        """Both lists, with `xdp-block load`."""
        for name, nets in (("block", block), ("allow", allow)):
            self.fs.block("load", "-", *(["--allow"] if name == "allow" else []),
                          input="".join(f"{n}\n" for n in nets), check=True)
        self.lists = blocklist_reference.Lists([str(n) for n in block], [str(n) for n in allow])

    def run(self, frame):
        verdict, out = self.obj.run(frame)
        self.verdicts[bpf.verdict_name(verdict)] += 1
        return verdict, out

    def totals(self):
        return bpf.blocklist_totals(self.obj)

    def rule_counters(self):
        """{(list, network): {"packets": P, "bytes": B}} of every listed
        prefix, from `xdp-block list --json`."""
        return {(name, ipaddress.ip_network(e["prefix"])): {"packets": e["packets"], "bytes": e["bytes"]}
                for name, entries in self.fs.lists().items() for e in entries}


def _delta(after, before):
    return {k: {f: v[f] - before.get(k, {}).get(f, 0) for f in v} for k, v in after.items()
            if v != before.get(k, {f: 0 for f in v})}


def run_blocklist(bl, seed, rnd, count=BLOCKLIST_ROUND, tx_port=None):
    """Frames 0..@count-1 of blocklist round @rnd of @seed, through @bl
    (a BlocklistObject) with the round's lists; returns the Disagreements."""
    return _run_blocklist(bl, seed, rnd, range(count), tx_port)


def replay_blocklist(bl, name, tx_port=None):
    """The one blocklist frame called @name: (frame, Disagreements)."""
    _, seed, index = parse_name(name)
    found = _run_blocklist(bl, seed, index // BLOCKLIST_ROUND, [index % BLOCKLIST_ROUND], tx_port)
    block, allow = blocklist_lists(seed, index // BLOCKLIST_ROUND)
    return blocklist_frame(seed, index, _tx_port(tx_port), block + allow), found


def _tx_port(tx_port):
    return tx_port if tx_port is not None else project.port_9090_config()[0]


def _run_blocklist(bl, seed, rnd, indices, tx_port):
    tx_port = _tx_port(tx_port)
    block, allow = blocklist_lists(seed, rnd)
    bl.load(block, allow)
    tally = blocklist_reference.Tally()
    found = []
    rules_before = bl.rule_counters()
    totals = bl.totals()
    for i in indices:
        name = f"blocklist:{seed}:{rnd * BLOCKLIST_ROUND + i}"
        frame = blocklist_frame(seed, rnd * BLOCKLIST_ROUND + i, tx_port, block + allow)
        decision = bl.lists.decide(frame)
        tally.add(decision, len(frame))
        verdict, out = bl.run(frame)
        got = bpf.verdict_name(verdict)
        if got != decision.verdict:
            found.append(Disagreement(name, "blocklist", frame, f"verdict {got}, reference says {decision}"))
        elif got == "PASS" and out != frame:
            found.append(Disagreement(name, "blocklist", frame, f"output bytes differ: got {out.hex()}"))
        now = bl.totals()
        moved = _delta(now, totals)
        want = {decision.total: {"packets": 1, "bytes": len(frame)}}
        if moved != want:
            found.append(Disagreement(name, "blocklist", frame,
                                      f"totals moved by {moved}, reference says {want} ({decision})"))
        totals = now
    moved = _delta(bl.rule_counters(), rules_before)
    if moved != tally.rules:
        first = f"blocklist:{seed}:{rnd * BLOCKLIST_ROUND + indices[0]}"
        wrong = {f"{lst} {net}": {"counted": moved.get((lst, net)), "reference": tally.rules.get((lst, net))}
                 for lst, net in sorted(set(moved) | set(tally.rules), key=str)
                 if moved.get((lst, net)) != tally.rules.get((lst, net))}
        found.append(Disagreement(first, "blocklist", b"",
                                  f"round {rnd} of seed {seed}, {len(indices)} frames from {first}: "
                                  f"per-prefix counters differ: {wrong}"))
    return found
