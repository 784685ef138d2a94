# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""How much of the verifier's budget each built program uses.

    verify_stats.py [--build DIR] [--json] [--max-percent P]

Each object is loaded as XDP with libbpf (the same .o files `ip` loads).
Two independent figures are read for each program: `verified_insns` from
the kernel's program info (BPF_OBJ_GET_INFO_BY_FD) and the "processed N
insns (limit L)" line of the verifier's statistics log, which also names the
budget L.  They must agree.  Also printed: the program's instruction count
in the object and after the kernel's rewrites (xlated), and the JIT size.

Exit status: 0 if every program stays within --max-percent (default 10) of
the budget, 1 if any uses more, 2 if a program cannot be loaded or the two
figures disagree.
"""

import argparse
import ctypes
import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from bpfrun import libbpf as _lib, prog_info  # noqa: E402  (tests/bpfrun.py)

PROGRAMS = ("drop-tcp", "count", "port-9090", "blocklist")
BPF_PROG_TYPE_XDP = 6
BPF_LOG_STATS = 4

_lib.bpf_object__next_map.restype = ctypes.c_void_p
_lib.bpf_object__next_map.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_lib.bpf_map__set_pin_path.restype = ctypes.c_int
_lib.bpf_map__set_pin_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]


class LoadError(Exception):
    pass


def unpin(obj):
    """No pinned-by-name maps (blocklist's): measuring must not create or
    reuse pins on the host, so every map is created fresh, unpinned."""
    m = _lib.bpf_object__next_map(obj, None)
    while m:
        _lib.bpf_map__set_pin_path(m, None)
        m = _lib.bpf_object__next_map(obj, m)


def measure(path):
    """Loads every program of @path; returns a list of dicts, one per program."""
    obj = _lib.bpf_object__open_file(str(path).encode(), None)
    if not obj:
        raise LoadError(f"{path}: cannot open ({os.strerror(ctypes.get_errno())})")
    try:
        unpin(obj)
        progs, logs = [], []
        prog = _lib.bpf_object__next_program(obj, None)
        while prog:
            buf = ctypes.create_string_buffer(1 << 16)
            logs.append(buf)  # kept alive until the load
            _lib.bpf_program__set_type(prog, BPF_PROG_TYPE_XDP)
            _lib.bpf_program__set_log_level(prog, BPF_LOG_STATS)
            _lib.bpf_program__set_log_buf(prog, buf, len(buf))
            progs.append((prog, buf))
            prog = _lib.bpf_object__next_program(obj, prog)
        err = _lib.bpf_object__load(obj)
        if err:
            raise LoadError(f"{path}: the verifier refused it ({os.strerror(-err)})")
        out = []
        for prog, buf in progs:
            try:
                info = prog_info(_lib.bpf_program__fd(prog))
            except OSError as e:
                raise LoadError(f"{path}: cannot read program info ({e.strerror})") from e
            log = buf.value.decode(errors="replace")
            m = re.search(r"processed (\d+) insns \(limit (\d+)\)", log)
            if not m:
                raise LoadError(f"{path}: no statistics in the verifier log: {log.strip()!r}")
            out.append({
                "object": str(path),
                "section": _lib.bpf_program__section_name(prog).decode(),
                "function": _lib.bpf_program__name(prog).decode(),
                "insns": _lib.bpf_program__insn_cnt(prog),
                "xlated_insns": info.xlated_prog_len // 8,
                "jited_bytes": info.jited_prog_len,
                "verified_insns": info.verified_insns,
                "log_processed_insns": int(m.group(1)),
                "limit": int(m.group(2)),
            })
        return out
    finally:
        _lib.bpf_object__close(obj)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("IPXDP_BUILD", ROOT / "build"),
                    help="directory holding the objects (default: build/)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--max-percent", type=float, default=10.0,
                    help="largest share of the budget a program may use (default 10)")
    args = ap.parse_args()

    rows = []
    try:
        for name in PROGRAMS:
            rows += measure(pathlib.Path(args.build) / f"{name}.o")
    except LoadError as e:
        print(f"verify-stats: {e}", file=sys.stderr)
        return 2
    status = 0
    for r in rows:
        r["percent"] = round(100.0 * r["verified_insns"] / r["limit"], 3)
        r["ok"] = r["percent"] <= args.max_percent
        if r["verified_insns"] != r["log_processed_insns"]:
            print(f"verify-stats: {r['section']}: program info says {r['verified_insns']} "
                  f"verified instructions, the verifier log {r['log_processed_insns']}",
                  file=sys.stderr)
            status = 2
        elif not r["ok"] and status == 0:
            status = 1

    if args.json:
        print(json.dumps({"max_percent": args.max_percent, "programs": rows}, indent=2))
    else:
        print(f"{'program':<10} {'insns':>6} {'xlated':>7} {'jited B':>8} "
              f"{'verified':>9} {'budget':>8} {'used':>7}")
        for r in rows:
            print(f"{r['section']:<10} {r['insns']:>6} {r['xlated_insns']:>7} {r['jited_bytes']:>8} "
                  f"{r['verified_insns']:>9} {r['limit']:>8} {r['percent']:>6.2f}%"
                  f"{'' if r['ok'] else '  OVER ' + format(args.max_percent, 'g') + '%'}")
    for r in rows:
        if not r["ok"]:
            print(f"verify-stats: {r['section']} uses {r['percent']:.2f}% of the verifier's "
                  f"{r['limit']}-instruction budget (at most {args.max_percent:g}% allowed)",
                  file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
