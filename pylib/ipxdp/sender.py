# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Send raw frames out of an interface, from one CPU, counting them exactly.

In a test, through a Sender (a child process, so that it can sit on its
own CPU and in its own namespace while the test goes on):

    with senders() as procs:
        procs.append(Sender(tx, "snd", cpu=0, frames_file=path, repeat=4))
        report = procs[0].wait()          # {"sent": ..., "bytes": ...}

The child is this module run as a program:

    python3 -m ipxdp.sender --netns PATH --dev DEV [--cpu N] --frames FILE [--repeat R]
    python3 -m ipxdp.sender --netns PATH --dev DEV [--cpu N] --flood HEX --seconds S

It enters the network namespace PATH (e.g. /var/run/netns/NAME, with
setns(2): no remount, no shell), pins itself to CPU N and writes the
frames with an AF_PACKET socket bound to DEV.  --frames sends each line of
FILE (one frame in hex) in turn, R times over; --flood sends one frame as
fast as it can for S seconds, or until SIGTERM.  --start-at T waits until
CLOCK_MONOTONIC reads T, so that senders started one after the other begin
at the same moment.  It prints one JSON object,

  {"cpu": N, "sent": frames, "bytes": bytes, "start": T0, "end": T1}

with the CLOCK_MONOTONIC times of the first frame and of the end.  A frame
the kernel refuses (ENOBUFS) is retried, so "sent" is the number the kernel
accepted.
"""

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

from . import bpf, paths


class Sender:
    """A sender process in namespace @ns sending on @dev: a file of frames
    (@frames_file, @repeat times) or a flood of one frame (@flood, for at
    most @seconds).  stop() ends a flood and wait() a file run; both
    return its JSON report."""

    def __init__(self, ns, dev, cpu=None, frames_file=None, repeat=1, flood=None, seconds=60.0,
                 start_at=None):
        argv = [paths.PYTHON, "-m", "ipxdp.sender", "--netns", ns.path, "--dev", dev]
        if start_at is not None:
            argv += ["--start-at", repr(start_at)]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        if frames_file:
            argv += ["--frames", str(frames_file), "--repeat", str(repeat)]
        else:
            argv += ["--flood", flood.hex(), "--seconds", str(seconds)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=paths.python_env())

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise AssertionError(f"sender failed ({self.proc.returncode}): {err.strip()}")
        return json.loads(out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@contextlib.contextmanager
def senders():
    """A list to put Senders in; every one still running is killed on exit."""
    procs = []
    try:
        yield procs
    finally:
        for s in procs:
            s.kill()


def send(sock, frame):
    while True:
        try:
            return sock.send(frame)
        except OSError as e:
            if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            time.sleep(0.0005)


def main():
    ap = argparse.ArgumentParser(prog="python3 -m ipxdp.sender",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--netns", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--cpu", type=int)
    ap.add_argument("--frames")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--flood")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--start-at", type=float, metavar="T",
                    help="start at CLOCK_MONOTONIC time T, so that several senders start together")
    args = ap.parse_args()

    bpf.setns(args.netns)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((args.dev, 0))
    sent = nbytes = 0
    if args.start_at is not None:
        time.sleep(max(0.0, args.start_at - time.monotonic()))
    started = time.monotonic()
    if args.frames:
        with open(args.frames) as f:
            frames = [bytes.fromhex(line) for line in f if line.strip()]
        for _ in range(args.repeat):
            for frame in frames:
                nbytes += send(sock, frame)
                sent += 1
    else:
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        frame = bytes.fromhex(args.flood)
        deadline = time.monotonic() + args.seconds
        while not stop:
            for _ in range(256):
                nbytes += send(sock, frame)
                sent += 1
            if time.monotonic() > deadline:
                break
    print(json.dumps({"cpu": args.cpu, "sent": sent, "bytes": nbytes,
                      "start": started, "end": time.monotonic()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
