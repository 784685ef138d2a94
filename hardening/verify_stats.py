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
import json
import pathlib
import re
import sys

from ipxdp import bpf, paths, project


class LoadError(Exception):
    pass


def measure(path):
    """Loads every program of @path; returns a list of dicts, one per program."""
    try:
        obj = bpf.BpfObject(path, log_level=bpf.BPF_LOG_STATS)
    except FileNotFoundError as e:
        raise LoadError(str(e)) from e
    except OSError as e:
        raise LoadError(f"{path}: the verifier refused it ({e.strerror})") from e
    with obj:
        out = []
        for section in obj.programs:
            try:
                info = obj.info(section)
            except OSError as e:
                raise LoadError(f"{path}: cannot read program info ({e.strerror})") from e
            log = obj.log(section)
            m = re.search(r"processed (\d+) insns \(limit (\d+)\)", log)
            if not m:
                raise LoadError(f"{path}: no statistics in the verifier log: {log.strip()!r}")
            out.append({
                "object": str(path),
                "section": section,
                "function": obj.function(section),
                "insns": obj.insn_cnt(section),
                "xlated_insns": info.xlated_prog_len // 8,
                "jited_bytes": info.jited_prog_len,
                "verified_insns": info.verified_insns,
                "log_processed_insns": int(m.group(1)),
                "limit": int(m.group(2)),
            })
        return out


def main():
    ap = argparse.ArgumentParser(prog="verify_stats.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=paths.build_dir(),
                    help="directory holding the objects (default: build/)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--max-percent", type=float, default=10.0,
                    help="largest share of the budget a program may use (default 10)")
    args = ap.parse_args()

    rows = []
    try:
        for name in project.PROGRAMS:
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
