# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""What the bench adds to ipxdp.bpf to time a program.

- TimedRun: BPF_PROG_TEST_RUN with its arguments prepared once, timed from
  userspace around the system call alone.  The kernel's own duration is a
  whole number of ns per run, too coarse for programs that cost a few ns.
  The program being timed is held in the kernel's XDP dispatcher
  (ipxdp.bpf.hold), or every call would wait for two RCU grace periods.
- pin(), preemptions(): keep other tasks from interrupting a timed call,
  and tell when one did anyway (the caller runs that call again).
"""

import ctypes
import os
import time

from ipxdp import bpf


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


def prog_size(prog_fd):
    """(instructions after the verifier's rewrite, bytes of JIT code)."""
    info = bpf.prog_info(prog_fd)
    return info.xlated_prog_len // 8, info.jited_prog_len


class TimedRun:
    """One program, one frame, prepared once; call() runs it @repeat times,
    timed from userspace."""

    def __init__(self, prog_fd, frame, repeat, live_ifindex=0, batch_size=0):
        self.prog_fd = prog_fd
        self.frame = bytes(frame)
        self._in = ctypes.create_string_buffer(self.frame, len(self.frame))
        self.opts = bpf.TestRunOpts(sz=ctypes.sizeof(bpf.TestRunOpts),
                                    data_in=ctypes.cast(self._in, ctypes.c_void_p),
                                    data_size_in=len(self.frame))
        if live_ifindex:
            # Live frames: no output buffer; the context names the device
            # the frames arrive on, resolved in this thread's namespace.
            self._ctx = bpf.XdpMd(data=0, data_end=len(self.frame), ingress_ifindex=live_ifindex)
            self.opts.ctx_in = ctypes.cast(ctypes.pointer(self._ctx), ctypes.c_void_p)
            self.opts.ctx_size_in = ctypes.sizeof(self._ctx)
            self.opts.flags = bpf.BPF_F_TEST_XDP_LIVE_FRAMES
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
        ret = bpf.libbpf.bpf_prog_test_run_opts(self.prog_fd, opts)
        t1 = time.perf_counter_ns()
        p1 = preemptions()
        bpf.check(ret, "BPF_PROG_TEST_RUN")
        return self.opts.retval, t1 - t0, p1 - p0
