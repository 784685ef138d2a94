# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""spread.o (bench/progs/spread.c) loaded and filled: the blocklist
bench's way of giving each frame the next of SOURCES source addresses."""

import ctypes

from bpffs import Object
from host import BenchError
from ipxdp import bpf, paths
from prefixes import SOURCES

SPREAD = "build/bench/spread.o"

_update_batch = bpf.libbpf.bpf_map_update_batch
_update_batch.restype = ctypes.c_int
_update_batch.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
                          ctypes.c_void_p]


def load(sources, target_fd=None, attach_type=0):
    """spread.o loaded, its spread_sources filled with @sources (bytes, as
    prefixes.packed() gives them) and, for spread-tail, @target_fd (a
    program of expected attach type @attach_type) in slot 0 of
    spread_target."""
    obj = Object(paths.ROOT / SPREAD, attach_type=attach_type)
    try:
        n = len(sources) // 4
        if n != SOURCES:
            raise BenchError(f"spread.o needs {SOURCES} sources, got {n}")
        keys = (ctypes.c_uint32 * n)(*range(n))
        count = ctypes.c_uint32(n)
        bpf.check(_update_batch(obj.map_fd("spread_sources"), keys, ctypes.c_char_p(sources),
                                ctypes.byref(count), None), "filling spread_sources")
        if target_fd is not None:
            k, v = ctypes.c_uint32(0), ctypes.c_uint32(target_fd)
            bpf.check(bpf.libbpf.bpf_map_update_elem(obj.map_fd("spread_target"), ctypes.byref(k),
                                                     ctypes.byref(v), 0), "filling spread_target")
    except BaseException:
        obj.close()
        raise
    return obj
