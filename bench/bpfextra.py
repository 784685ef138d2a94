# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The libbpf calls the bench needs beyond tests/bpfrun.py, kept together.

- UnpinnedObject: open an object, clear every map's pin path, load it.  An
  object whose maps say LIBBPF_PIN_BY_NAME (xdp-filter's do, with generic
  names such as filter_ports) would otherwise reuse a pin of that name under
  /sys/fs/bpf, or leave one there; with the pin paths cleared its maps are
  fresh, private to this process and gone with it.  libbpf's warnings
  while opening it (xdp-filter's objects have sections libbpf skips, and
  says so) are not printed; errors still raise.
- set_percpu(): write one value into every CPU's slot of a per-CPU map
  element.
- update_link(): swap the program a BPF link attaches for another one.
"""

import ctypes

from timedrun import bpfrun  # tests/bpfrun.py

_lib = bpfrun.libbpf
_vp = ctypes.c_void_p
for _name, _res, _args in [
    ("bpf_object__next_map", _vp, [_vp, _vp]),
    ("bpf_map__name", ctypes.c_char_p, [_vp]),
    ("bpf_map__set_pin_path", ctypes.c_int, [_vp, ctypes.c_char_p]),
    ("libbpf_set_print", _vp, [_vp]),
    ("bpf_link_update", ctypes.c_int, [ctypes.c_int, ctypes.c_int, _vp]),
]:
    _fn = getattr(_lib, _name)
    _fn.restype, _fn.argtypes = _res, _args


class UnpinnedObject(bpfrun.BpfObject):
    """bpfrun.BpfObject, but no map of it is pinned or reuses a pin."""

    def __init__(self, path):
        self.path = str(path)
        printer = _lib.libbpf_set_print(None)
        try:
            self._obj = _lib.bpf_object__open_file(self.path.encode(), None)
        finally:
            _lib.libbpf_set_print(printer)
        if not self._obj:
            raise OSError(ctypes.get_errno(), f"cannot open {self.path}")
        self.programs = {}
        prog = _lib.bpf_object__next_program(self._obj, None)
        while prog:
            bpfrun._check(_lib.bpf_program__set_type(prog, bpfrun.BPF_PROG_TYPE_XDP), "set_type")
            self.programs[_lib.bpf_program__section_name(prog).decode()] = prog
            prog = _lib.bpf_object__next_program(self._obj, prog)
        m = _lib.bpf_object__next_map(self._obj, None)
        while m:
            bpfrun._check(_lib.bpf_map__set_pin_path(m, None),
                          f"clearing the pin path of {_lib.bpf_map__name(m).decode()}")
            m = _lib.bpf_object__next_map(self._obj, m)
        bpfrun._check(_lib.bpf_object__load(self._obj), f"loading {self.path}")


def set_percpu(map_fd, key, value):
    """Set @key (bytes) of a per-CPU map of u64 values to @value on every
    possible CPU."""
    n = bpfrun.num_possible_cpus()
    k = ctypes.create_string_buffer(bytes(key), len(key))
    v = (ctypes.c_uint64 * n)(*([value] * n))
    bpfrun._check(_lib.bpf_map_update_elem(map_fd, k, v, 0), f"updating key {bytes(key).hex()}")


def update_link(link_fd, prog_fd):
    """Make BPF link @link_fd attach @prog_fd instead, atomically."""
    bpfrun._check(_lib.bpf_link_update(link_fd, prog_fd, None), "updating a BPF link")
