# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The kernel's BPF calls, through the system's libbpf.so.1 (ctypes).

    with BpfObject(paths.obj("drop-tcp")) as obj:      # open + load as XDP
        verdict, out = obj.run(frame)                   # BPF_PROG_TEST_RUN
        counters = count_counters(count_obj)            # count's per-CPU map

BpfObject opens the very .o file that `ip` loads and loads every program in
it as XDP; nothing is compiled here.  It never touches the host's bpffs:
maps declared pinned by name (blocklist's) are created unpinned, unless
pin_root names the directory to reuse and pin them in (netns.PrivateBpffs
gives one).  Also:

    test_run(fd, frame, repeat, flags, batch_size, ctx)
                        one BPF_PROG_TEST_RUN: (retval, output, duration ns)
    PerCpuArray(fd, fields)
                        a per-CPU array of __u64 records: lookup, total,
                        update (a value per CPU), clear
    set_percpu(fd, key, value)
                        one __u64 into every CPU's slot of a per-CPU map's entry
    blocklist_totals(obj), blocklist_counters(obj)
                        blocklist's totals per verdict, its per-rule counters
    map_fd_by_id(id)    a map of the kernel's by its id (e.g. the one of a
                        program attached with ip); the caller closes the fd
    prog_fd_by_id(id)   a program by its id, likewise
    prog_info(fd)       the kernel's struct bpf_prog_info
    hold(fd, dev)       attach through a BPF link (closing the fd detaches)
    update_link(link, fd)
                        make a BPF link attach another program, atomically
    setns(path)         move this thread into a network namespace
"""

import ctypes
import os
import socket
import struct

from . import project

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
VERDICTS = {XDP_ABORTED: "ABORTED", XDP_DROP: "DROP", XDP_PASS: "PASS",
            XDP_TX: "TX", XDP_REDIRECT: "REDIRECT"}

BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37  # enum bpf_attach_type
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
BPF_LOG_STATS = 4
CLONE_NEWNET = 0x40000000
LOG_SIZE = 1 << 16

libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
_libc = ctypes.CDLL(None, use_errno=True)
_vp = ctypes.c_void_p


def verdict_name(v):
    return VERDICTS.get(v, f"unknown({v})")


class TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts from <bpf/bpf.h> (libbpf 1.x)."""
    __test__ = False  # not a test class, whatever pytest thinks of the name
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", _vp), ("data_out", _vp),
        ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
        ("ctx_in", _vp), ("ctx_out", _vp),
        ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class XdpMd(ctypes.Structure):
    """struct xdp_md, the context a live-frames run needs (ingress ifindex)."""
    _fields_ = [(n, ctypes.c_uint32) for n in (
        "data", "data_end", "data_meta", "ingress_ifindex",
        "rx_queue_index", "egress_ifindex")]


class OpenOpts(ctypes.Structure):
    """The head of struct bpf_object_open_opts (libbpf 1.x), up to
    pin_root_path: the directory maps pinned by name are pinned in."""
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p)]


class ProgInfo(ctypes.Structure):
    """struct bpf_prog_info from <linux/bpf.h>, up to verified_insns."""
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16), ("ifindex", ctypes.c_uint32), ("gpl_compatible", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32), ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64), ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32), ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64), ("nr_func_info", ctypes.c_uint32),
        ("nr_line_info", ctypes.c_uint32), ("line_info", ctypes.c_uint64),
        ("jited_line_info", ctypes.c_uint64), ("nr_jited_line_info", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32), ("jited_line_info_rec_size", ctypes.c_uint32),
        ("nr_prog_tags", ctypes.c_uint32), ("prog_tags", ctypes.c_uint64),
        ("run_time_ns", ctypes.c_uint64), ("run_cnt", ctypes.c_uint64),
        ("recursion_misses", ctypes.c_uint64), ("verified_insns", ctypes.c_uint32),
        ("attach_btf_obj_id", ctypes.c_uint32), ("attach_btf_id", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


for _name, _res, _args in [
    ("bpf_object__open_file", _vp, [ctypes.c_char_p, _vp]),
    ("bpf_object__load", ctypes.c_int, [_vp]),
    ("bpf_object__close", None, [_vp]),
    ("bpf_object__next_program", _vp, [_vp, _vp]),
    ("bpf_object__find_map_by_name", _vp, [_vp, ctypes.c_char_p]),
    ("bpf_object__next_map", _vp, [_vp, _vp]),
    ("bpf_map__name", ctypes.c_char_p, [_vp]),
    ("bpf_map__set_pin_path", ctypes.c_int, [_vp, ctypes.c_char_p]),
    ("libbpf_set_print", _vp, [_vp]),
    ("bpf_program__section_name", ctypes.c_char_p, [_vp]),
    ("bpf_program__name", ctypes.c_char_p, [_vp]),
    ("bpf_program__set_type", ctypes.c_int, [_vp, ctypes.c_int]),
    ("bpf_program__fd", ctypes.c_int, [_vp]),
    ("bpf_program__set_log_level", ctypes.c_int, [_vp, ctypes.c_uint32]),
    ("bpf_program__set_log_buf", ctypes.c_int, [_vp, ctypes.c_char_p, ctypes.c_size_t]),
    ("bpf_program__insn_cnt", ctypes.c_size_t, [_vp]),
    ("bpf_map__fd", ctypes.c_int, [_vp]),
    ("bpf_map_lookup_elem", ctypes.c_int, [ctypes.c_int, _vp, _vp]),
    ("bpf_map_update_elem", ctypes.c_int, [ctypes.c_int, _vp, _vp, ctypes.c_uint64]),
    ("bpf_prog_test_run_opts", ctypes.c_int, [ctypes.c_int, ctypes.POINTER(TestRunOpts)]),
    ("bpf_obj_get_info_by_fd", ctypes.c_int, [ctypes.c_int, _vp, ctypes.POINTER(ctypes.c_uint32)]),
    ("bpf_link_create", ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int, _vp]),
    ("bpf_link_update", ctypes.c_int, [ctypes.c_int, ctypes.c_int, _vp]),
    ("libbpf_num_possible_cpus", ctypes.c_int, []),
    ("bpf_map_get_fd_by_id", ctypes.c_int, [ctypes.c_uint32]),
    ("bpf_prog_get_fd_by_id", ctypes.c_int, [ctypes.c_uint32]),
]:
    _fn = getattr(libbpf, _name)
    _fn.restype, _fn.argtypes = _res, _args
_libc.setns.restype, _libc.setns.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]


def check(ret, what):
    """@ret of a libbpf call (a negative errno, or -1 with errno set), or
    OSError naming @what."""
    if ret < 0:
        err = -ret if ret != -1 else ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


class BpfObject:
    """An ELF object opened and loaded as XDP; programs looked up by section.

    log_level=BPF_LOG_STATS keeps each program's verifier log (log()).
    pin_root: where the maps pinned by name are reused from, or pinned
    when they are not there yet; without it no map is pinned at all (libbpf
    would otherwise reuse a pin of that name under /sys/fs/bpf, or leave
    one there: for another project's object with generic map names, too).
    quiet=True keeps libbpf from printing its warnings while opening the
    file (about sections it skips, say); errors still raise.
    """

    def __init__(self, path, log_level=0, pin_root=None, quiet=False):
        self.path = str(path)
        self._obj = None
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: not built (run make)")
        opts = None
        if pin_root is not None:
            self._pin_root = ctypes.c_char_p(str(pin_root).encode())  # alive until the load
            opts = ctypes.byref(OpenOpts(sz=ctypes.sizeof(OpenOpts), pin_root_path=self._pin_root))
        printer = libbpf.libbpf_set_print(None) if quiet else None
        try:
            self._obj = libbpf.bpf_object__open_file(self.path.encode(), opts)
        finally:
            if quiet:
                libbpf.libbpf_set_print(printer)
        if not self._obj:
            raise OSError(ctypes.get_errno(), f"cannot open {self.path}")
        self.programs, self._logs = {}, {}
        prog = libbpf.bpf_object__next_program(self._obj, None)
        while prog:
            # Our section names are not ones libbpf knows, so say XDP here,
            # as `ip` does.
            check(libbpf.bpf_program__set_type(prog, BPF_PROG_TYPE_XDP), "set_type")
            section = libbpf.bpf_program__section_name(prog).decode()
            self.programs[section] = prog
            if log_level:
                buf = self._logs[section] = ctypes.create_string_buffer(LOG_SIZE)
                libbpf.bpf_program__set_log_level(prog, log_level)
                libbpf.bpf_program__set_log_buf(prog, buf, LOG_SIZE)
            prog = libbpf.bpf_object__next_program(self._obj, prog)
        try:
            m = libbpf.bpf_object__next_map(self._obj, None) if pin_root is None else None
            while m:
                check(libbpf.bpf_map__set_pin_path(m, None),
                      f"clearing the pin path of {libbpf.bpf_map__name(m).decode()}")
                m = libbpf.bpf_object__next_map(self._obj, m)
            check(libbpf.bpf_object__load(self._obj), f"loading {self.path}")
        except OSError:
            self.close()
            raise

    def close(self):
        if self._obj:
            libbpf.bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _prog(self, section):
        """The program in @section; by default the object's first one (the
        plain section: an ipxdp object puts its xdp.frags section second)."""
        if section is None:
            return next(iter(self.programs.values()))
        return self.programs[section]

    def prog_fd(self, section=None):
        return check(libbpf.bpf_program__fd(self._prog(section)), "bpf_program__fd")

    def function(self, section=None):
        """The program's function name (what the kernel calls the program)."""
        return libbpf.bpf_program__name(self._prog(section)).decode()

    def insn_cnt(self, section=None):
        """Instructions in the object, before the kernel's rewrites."""
        return libbpf.bpf_program__insn_cnt(self._prog(section))

    def log(self, section):
        """The verifier's log of @section (with log_level set)."""
        return self._logs[section].value.decode(errors="replace")

    def info(self, section=None):
        return prog_info(self.prog_fd(section))

    def map_fd(self, name):
        m = libbpf.bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            raise KeyError(f"no map {name!r} in {self.path}")
        return check(libbpf.bpf_map__fd(m), "bpf_map__fd")

    def run(self, frame, section=None, repeat=1, first_buffer=None):
        """Run the program once on @frame; returns (verdict, output bytes).
        A frame longer than the kernel's first buffer (3,520 bytes on 4 KiB
        pages) arrives in several; @first_buffer makes the first one that
        many bytes long (at most that maximum) and puts the rest in others."""
        ctx = None if first_buffer is None else XdpMd(data=0, data_end=first_buffer)
        retval, out, _ = test_run(self.prog_fd(section), frame, repeat=repeat, ctx=ctx)
        return retval, out


def test_run(prog_fd, frame, repeat=1, flags=0, batch_size=0, ctx=None):
    """BPF_PROG_TEST_RUN; returns (retval, data_out, duration_ns)."""
    frame = bytes(frame)
    buf_in = ctypes.create_string_buffer(frame, len(frame))
    out_size = 0 if flags & BPF_F_TEST_XDP_LIVE_FRAMES else len(frame) + 256
    buf_out = ctypes.create_string_buffer(max(out_size, 1))
    opts = TestRunOpts(sz=ctypes.sizeof(TestRunOpts), data_in=ctypes.cast(buf_in, _vp),
                       data_size_in=len(frame), repeat=repeat, flags=flags, batch_size=batch_size)
    if out_size:
        opts.data_out = ctypes.cast(buf_out, _vp)
        opts.data_size_out = out_size
    if ctx is not None:
        opts.ctx_in = ctypes.cast(ctypes.pointer(ctx), _vp)
        opts.ctx_size_in = ctypes.sizeof(ctx)
    check(libbpf.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "BPF_PROG_TEST_RUN")
    return opts.retval, buf_out.raw[:opts.data_size_out] if out_size else b"", opts.duration


test_run.__test__ = False  # nor is this a test


def num_possible_cpus():
    return check(libbpf.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


class PerCpuArray:
    """A BPF_MAP_TYPE_PERCPU_ARRAY whose values are records of __u64."""

    def __init__(self, fd, fields):
        self.fd = fd
        self.fields = tuple(fields)
        self.ncpus = num_possible_cpus()
        self.value_size = 8 * len(self.fields)  # already a multiple of 8

    def lookup(self, key):
        """Per-CPU list of dicts for @key."""
        k = ctypes.c_uint32(key)
        buf = ctypes.create_string_buffer(self.value_size * self.ncpus)
        check(libbpf.bpf_map_lookup_elem(self.fd, ctypes.byref(k), buf), f"lookup {key}")
        return [dict(zip(self.fields, struct.unpack_from(f"={len(self.fields)}Q", buf.raw,
                                                         cpu * self.value_size)))
                for cpu in range(self.ncpus)]

    def total(self, key):
        """@key summed over all CPUs."""
        per_cpu = self.lookup(key)
        return {f: sum(v[f] for v in per_cpu) for f in self.fields}

    def update(self, key, per_cpu):
        """Set @key to @per_cpu, one dict of the fields per CPU (CPUs past
        the list's end get zeros)."""
        buf = ctypes.create_string_buffer(self.value_size * self.ncpus)
        for cpu, value in enumerate(per_cpu):
            struct.pack_into(f"={len(self.fields)}Q", buf, cpu * self.value_size,
                             *(value[f] for f in self.fields))
        k = ctypes.c_uint32(key)
        check(libbpf.bpf_map_update_elem(self.fd, ctypes.byref(k), buf, 0), f"update {key}")

    def clear(self, keys):
        zero = ctypes.create_string_buffer(self.value_size * self.ncpus)
        for key in keys:
            k = ctypes.c_uint32(key)
            check(libbpf.bpf_map_update_elem(self.fd, ctypes.byref(k), zero, 0), f"update {key}")


def set_percpu(map_fd, key, value):
    """Set @key (bytes) of a per-CPU map of __u64 values to @value on every
    possible CPU."""
    n = num_possible_cpus()
    k = ctypes.create_string_buffer(bytes(key), len(key))
    v = (ctypes.c_uint64 * n)(*([value] * n))
    check(libbpf.bpf_map_update_elem(map_fd, k, v, 0), f"updating key {bytes(key).hex()}")


def count_counters(count_obj):
    """count's counters in a loaded count object (see include/count.h)."""
    return PerCpuArray(count_obj.map_fd(project.COUNT_MAP), project.COUNT_FIELDS)


def blocklist_counters(blocklist_obj):
    """blocklist's per-rule counters (a rule id is its slot)."""
    return PerCpuArray(blocklist_obj.map_fd(project.BLOCKLIST_COUNTERS_MAP), project.BLOCKLIST_FIELDS)


def blocklist_totals(blocklist_obj):
    """blocklist's totals now, summed over the CPUs:
    {"passed": {"packets": P, "bytes": B}, "blocked": ..., ...}."""
    table = PerCpuArray(blocklist_obj.map_fd(project.BLOCKLIST_TOTALS_MAP), project.BLOCKLIST_FIELDS)
    return {name: table.total(i) for i, name in enumerate(project.BLOCKLIST_TOTALS)}


def map_fd_by_id(map_id):
    """A new fd for the map with id @map_id (ids are the same in every
    network namespace); close it with os.close()."""
    return check(libbpf.bpf_map_get_fd_by_id(map_id), f"map id {map_id}")


def prog_fd_by_id(prog_id):
    """A new fd for the program with id @prog_id (one attached by ip, say:
    test_run() runs it with the maps it uses); close it with os.close()."""
    return check(libbpf.bpf_prog_get_fd_by_id(prog_id), f"prog id {prog_id}")


def prog_info(prog_fd):
    """The kernel's struct bpf_prog_info for a loaded program."""
    info = ProgInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    check(libbpf.bpf_obj_get_info_by_fd(prog_fd, ctypes.byref(info), ctypes.byref(size)),
          "BPF_OBJ_GET_INFO_BY_FD")
    return info


def hold(prog_fd, dev):
    """Attach @prog_fd to @dev (in this thread's namespace) with a BPF link;
    returns the link fd.  Closing it, or exiting, detaches the program.

    A program attached this way stays in the kernel's XDP dispatcher, so a
    test run with repeat > 1 does not add and remove it (two RCU grace
    periods) around every call."""
    return check(libbpf.bpf_link_create(prog_fd, socket.if_nametoindex(dev), BPF_XDP, None),
                 f"attaching a program to {dev}")


def update_link(link_fd, prog_fd):
    """Make BPF link @link_fd attach @prog_fd instead, atomically: the
    device is never without a program."""
    check(libbpf.bpf_link_update(link_fd, prog_fd, None), "updating a BPF link")


def setns(path):
    """Move the calling thread into the network namespace at @path
    (/var/run/netns/NAME): no remount, no shell."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            check(-1, f"setns {path}")
    finally:
        os.close(fd)
