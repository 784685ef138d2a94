# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The kernel calls the bench needs beyond tests/bpfrun.py.

- TimedRun: BPF_PROG_TEST_RUN with its arguments prepared once, timed from
  userspace around the system call alone.  The kernel's own duration is a
  whole number of ns per run, too coarse for programs that cost a few ns.
- hold(): attach a loaded program to a device through a BPF link, which
  keeps it in the kernel's XDP dispatcher.  A test run with repeat > 1 adds
  the program to the dispatcher and removes it afterwards, and each of those
  changes waits for an RCU grace period (about 8 ms here); a program that is
  already in the dispatcher is only reference-counted, so the call costs
  what the loop costs.  The link goes away with the process that holds it.
- setns(): enter a named network namespace (this thread only).
- pin(), preemptions(): keep other tasks from interrupting a timed call,
  and tell when one did anyway (the caller runs that call again).
"""

import ctypes
import os
import socket
import sys
import time

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import bpfrun  # noqa: E402  (tests/bpfrun.py)

BPF_XDP = 37  # enum bpf_attach_type
CLONE_NEWNET = 0x40000000

_libbpf = bpfrun.libbpf
_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.restype = ctypes.c_int
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _err(ret, what):
    err = -ret if ret < -1 else ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def pin(cpu):
    """Run the calling thread on @cpu only, at the lowest real-time
    priority: no ordinary task preempts a timed call.  (The kernel keeps 5%
    of every second for ordinary tasks, and the worker sleeps between
    calls.)"""
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))


def preemptions():
    """How often the calling thread has been preempted so far."""
    with open("/proc/thread-self/status") as f:
        for line in f:
            if line.startswith("nonvoluntary_ctxt_switches:"):
                return int(line.split()[1])
    return 0


def setns(name):
    """Move the calling thread into network namespace @name."""
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise _err(-1, f"setns {name}")
    finally:
        os.close(fd)


def hold(prog_fd, dev):
    """Attach @prog_fd to @dev (in the current namespace) with a BPF link;
    returns the link fd.  Closing it, or exiting, detaches the program."""
    ret = _libbpf.bpf_link_create(prog_fd, socket.if_nametoindex(dev), BPF_XDP, None)
    if ret < 0:
        raise _err(ret, f"attaching a program to {dev}")
    return ret


def prog_size(prog_fd):
    """(instructions after the verifier's rewrite, bytes of JIT code)."""
    info = bpfrun.prog_info(prog_fd)
    return info.xlated_prog_len // 8, info.jited_prog_len


class TimedRun:
    """One program, one frame, prepared once; call() runs it @repeat times,
    timed from userspace."""

    def __init__(self, prog_fd, frame, repeat, live_ifindex=0, batch_size=0):
        self.prog_fd = prog_fd
        self.frame = bytes(frame)
        self._in = ctypes.create_string_buffer(self.frame, len(self.frame))
        self.opts = bpfrun.TestRunOpts(sz=ctypes.sizeof(bpfrun.TestRunOpts),
                                       data_in=ctypes.cast(self._in, ctypes.c_void_p),
                                       data_size_in=len(self.frame))
        if live_ifindex:
            # Live frames: no output buffer; the context names the device
            # the frames arrive on, resolved in this thread's namespace.
            self._ctx = bpfrun.XdpMd(data=0, data_end=len(self.frame),
                                     ingress_ifindex=live_ifindex)
            self.opts.ctx_in = ctypes.cast(ctypes.pointer(self._ctx), ctypes.c_void_p)
            self.opts.ctx_size_in = ctypes.sizeof(self._ctx)
            self.opts.flags = bpfrun.BPF_F_TEST_XDP_LIVE_FRAMES
            self.opts.batch_size = batch_size
        else:
            self._out = ctypes.create_string_buffer(len(self.frame) + 256)
            self.opts.data_out = ctypes.cast(self._out, ctypes.c_void_p)
            self.opts.data_size_out = len(self.frame) + 256
        self.set_repeat(repeat)

    def set_repeat(self, repeat):
        self.repeat = int(repeat)
        self.opts.repeat = self.repeat

    def call(self):
        """Returns (retval, elapsed ns, times the thread was preempted
        during the call)."""
        opts = ctypes.byref(self.opts)
        if self.opts.data_out:
            self.opts.data_size_out = len(self.frame) + 256
        p0 = preemptions()
        t0 = time.perf_counter_ns()
        ret = _libbpf.bpf_prog_test_run_opts(self.prog_fd, opts)
        t1 = time.perf_counter_ns()
        p1 = preemptions()
        if ret < 0:
            raise _err(ret, "BPF_PROG_TEST_RUN")
        return self.opts.retval, t1 - t0, p1 - p0
