# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A bpffs of the bench's own, and objects whose pinned maps live there.

The blocklist keeps its lists in maps pinned by name, where ip and
xdp-block pin them: TC_BPF_MNT/tc/globals.  The bench must never touch the
host's lists under /sys/fs/bpf, so Bpffs mounts one bpffs per list in a
private mount namespace that only the bench's processes enter, and
Object loads an object with libbpf taking its pinned maps from one of
them, as ip would.
"""

import ctypes
import os
import signal
import subprocess
import tempfile

from host import BenchError
from ipxdp import bpf

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _sys(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags=0, data=None):
    enc = lambda s: s.encode() if s else None  # noqa: E731
    _sys(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def keeper(conn, base, names):
    """Child process: a mount namespace of its own, private (nothing
    mounted in it shows outside), with a tmpfs on @base and a bpffs on
    @base/NAME for each of @names.  It lives until the driver says "quit"
    or is gone: the kernel kills it when the bench dies (PR_SET_PDEATHSIG),
    and with the last process in it the namespace, its bpffs instances
    and every map pinned there go away."""
    try:
        _sys(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if os.getppid() == 1:  # the bench died before that
            return
        _sys(_libc.unshare(CLONE_NEWNS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("ipxdp-bench", base, "tmpfs", 0, "mode=0700")
        for name in names:
            os.mkdir(os.path.join(base, name))
            _mount("ipxdp-bench", os.path.join(base, name), "bpf")
        conn.send(("ok", os.getpid()))
        conn.recv()
    except EOFError:
        pass
    except OSError as e:
        conn.send(("error", str(e)))
    finally:
        conn.close()


def enter_mounts(path):
    """Move this (single-threaded) process into the mount namespace at @path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _sys(_libc.setns(fd, CLONE_NEWNS), f"setns {path}")
    finally:
        os.close(fd)


class Bpffs:
    """One bpffs per list, seen only by the bench's own processes: a
    keeper child holds them in a private mount namespace (see keeper());
    commands enter it with nsenter --mount, TC_BPF_MNT naming the list's
    bpffs, as xdp-block and ip expect.  Nothing is pinned under the host's
    /sys/fs/bpf, and nothing is left anywhere when the bench ends, however
    it ends."""

    def __init__(self, start, names, prefix):
        """@start starts the keeper (bench.Children.start); @names: one
        bpffs each; the directory they are mounted in is a new one in
        /tmp named @prefix..."""
        self.base = tempfile.mkdtemp(prefix=prefix)
        self.conn = start(keeper, self.base, list(names))
        try:
            reply = self.conn.recv()
        except EOFError:
            raise BenchError("the process holding the bench's bpffs died") from None
        if reply[0] != "ok":
            raise BenchError(f"private bpffs: {reply[1]}")
        self.mnt = f"/proc/{reply[1]}/ns/mnt"

    def root(self, name):
        """TC_BPF_MNT for list @name."""
        return os.path.join(self.base, name)

    def pin_dir(self, name):
        """Where ip and xdp-block pin list @name's maps."""
        return os.path.join(self.root(name), "tc", "globals")

    def command(self, args, ns=None):
        net = [f"--net={ns.path}"] if ns else []
        return ["nsenter", f"--mount={self.mnt}", *net, "--", *map(str, args)]

    def run(self, args, name, ns=None, what=None, timeout=300):
        """Run @args with list @name's bpffs (in namespace @ns); raises
        BenchError naming @what (default: the command) with the first line
        of stderr if it fails."""
        # In a process group of its own: xdp-block's own children (bpftool,
        # awk) go with it if the bench is interrupted.
        with subprocess.Popen(self.command(args, ns), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env=dict(os.environ, TC_BPF_MNT=self.root(name))) as p:
            try:
                out, err = p.communicate(timeout=timeout)
            except BaseException:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                raise
        res = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        if res.returncode != 0:
            err = (res.stderr.strip().splitlines() or ["(no message)"])[0]
            raise BenchError(f"{what or os.path.basename(str(args[0]))} (list {name}) failed "
                             f"(exit {res.returncode}): {err}")
        return res

    def stop(self):
        """Tell the keeper to go; the namespace goes with the last process
        in it."""
        if not self.conn.closed:
            try:
                self.conn.send(("quit",))
            except OSError:
                pass
            self.conn.close()

    def close(self):
        """Stop the keeper, remove the directory.  Call it only when no
        process of the bench's may use the bpffs any more: removing the
        directory takes the mounts on it away, in every namespace."""
        self.stop()
        try:
            os.rmdir(self.base)
        except OSError:
            pass


class _OpenOpts(ctypes.Structure):
    """The head of libbpf's struct bpf_object_open_opts, up to pin_root_path."""
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p)]


class Object(bpf.BpfObject):
    """An object loaded with libbpf as BpfObject loads it, but its maps
    pinned by name taken from @pin_dir if given (the blocklist, whose maps
    xdp-block made and filled there, as ip takes them from
    TC_BPF_MNT/tc/globals), and its programs' expected attach type set to
    @attach_type: a program array takes only programs of the same one, and
    libbpf gives a program in section "xdp" (xdp-filter's) BPF_XDP, ours 0."""

    def __init__(self, path, pin_dir=None, attach_type=0):
        self.path = str(path)
        self._root = ctypes.c_char_p(str(pin_dir).encode() if pin_dir else None)
        opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), pin_root_path=self._root)
        self._obj = bpf.libbpf.bpf_object__open_file(self.path.encode(), ctypes.byref(opts))
        if not self._obj:
            raise OSError(ctypes.get_errno(), f"cannot open {self.path}")
        self.programs, self._logs = {}, {}
        prog = bpf.libbpf.bpf_object__next_program(self._obj, None)
        try:
            while prog:
                bpf.check(bpf.libbpf.bpf_program__set_type(prog, bpf.BPF_PROG_TYPE_XDP), "set_type")
                bpf.check(_set_attach_type(prog, attach_type), "set_expected_attach_type")
                self.programs[bpf.libbpf.bpf_program__section_name(prog).decode()] = prog
                prog = bpf.libbpf.bpf_object__next_program(self._obj, prog)
            bpf.check(bpf.libbpf.bpf_object__load(self._obj), f"loading {self.path}")
        except OSError:
            self.close()
            raise


_set_attach_type = bpf.libbpf.bpf_program__set_expected_attach_type
_set_attach_type.restype, _set_attach_type.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]
