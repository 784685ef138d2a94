# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The multi-buffer rows of the per-packet bench.

Every object also carries its program in section xdp.frags (see
ipxdp.project.MULTIBUFFER).  The per-packet run times each of those next
to its plain section, in the same rounds:

  - on the common classes (the frames of the plain rows, all 1-buffer):
    what the multi-buffer entry point costs where nothing needs it,
    paired per round as xdp.frags minus plain on the same frame;
  - on 9,000-byte IPv4 TCP and IPv4 UDP frames, which BPF_PROG_TEST_RUN
    hands an xdp.frags program as multi-buffer (first buffer 3,520
    bytes): each over the floor's own xdp.frags twin on the same frame.

Per-packet only: live frames refuse frames of 3,520 bytes or more.  A
program given no verdict for a frame (None) is not run on it: the plain
sections never see the jumbo frames (on a link, a plain section is never
given a multi-buffer frame: it cannot attach where one could arrive), the
xdp.frags sections skip the scaling series.
"""


from ipxdp import bpf, paths, project, wire
from ipxdp.wire import TCP, UDP

SUFFIX = ".frags"               # "drop-tcp.frags": drop-tcp's xdp.frags section
PLAIN = ["drop-tcp", "count", "port-9090"]
FLOOR = "floor" + SUFFIX
JUMBO = 9000                    # bytes, Ethernet header included
JUMBO_MIN = 4096                # a frame longer than this is one of the jumbo frames


def name(p):
    return p + SUFFIX


def programs(plain):
    """{name: peers.Program}: the floor's twin and each of PLAIN's xdp.frags
    sections, from the same objects as @plain ({name: peers.Program})."""
    import peers
    out = {FLOOR: peers.ours(FLOOR, plain["floor"].path, project.MULTIBUFFER_SECTION, like="floor")}
    for p in PLAIN:
        out[name(p)] = peers.ours(name(p), plain[p].path, project.MULTIBUFFER_SECTION, like=p)
    return out


def jumbo_frames(packets):
    """[packets.Frame] of JUMBO bytes: IPv4 TCP (drop-tcp drops it) and
    IPv4 UDP (it passes), payload zeros."""
    port = packets.OTHER_PORT
    l4 = {TCP: lambda payload: wire.tcp(port, 20, payload=payload),
          UDP: lambda payload: wire.udp(53, 53, payload=payload)}
    out = []
    for fname, label, proto in (("jumbo-ipv4-tcp", "9000B IPv4 TCP", TCP),
                                ("jumbo-ipv4-udp", "9000B IPv4 UDP", UDP)):
        pad = JUMBO - len(packets._v4(proto, l4[proto](b"")))
        frame = packets._v4(proto, l4[proto](bytes(pad)))
        out.append(packets.Frame(fname, label, frame, tx_port()))
    return out


def tx_port():
    return project.port_9090_config(paths.ROOT / "build")[0]


def expect(p, prog, frame, common):
    """The verdict program @p (a peers.Program, @prog) must give @frame, or
    None: not run on it.  @common: the names of the common classes."""
    if len(frame.data) > JUMBO_MIN:
        return prog.expect(frame) if p.endswith(SUFFIX) else None
    if p.endswith(SUFFIX):
        return prog.expect(frame) if frame.name in common else None
    return prog.expect(frame)


def split(raw):
    """Take the xdp.frags programs' samples out of @raw (what micro.worker
    sends back), so the plain figures see only the plain programs; returns
    {"ns": ..., "sizes": ...} of those programs, with the plain sections'
    ns alongside (read only)."""
    mine = [p for p in raw["ns"] if p.endswith(SUFFIX)]
    return {"ns": {p: raw["ns"].pop(p) for p in mine},
            "sizes": {p: raw["sizes"].pop(p) for p in mine},
            "plain_ns": {p: raw["ns"][p] for p in PLAIN + ["floor"]}}


def figures(fr, classes, jumbo):
    """The "multibuffer" part of the micro figures: per class, each
    program's xdp.frags minus plain (paired per round); per jumbo frame,
    each xdp.frags section over the floor's twin."""
    from report import paired, summary
    ns, plain = fr["ns"], fr["plain_ns"]
    out = {"programs": {p: {"section": project.MULTIBUFFER_SECTION, "xlated_insns": i, "jited_bytes": j}
                        for p, (i, j) in fr["sizes"].items()},
           "classes": {}, "jumbo": {}, "worst": {}}
    for f in classes:
        row = {"label": f.label}
        for p in PLAIN:
            row[p] = {"frags_minus_plain": summary(paired(ns[name(p)][f.name], plain[p][f.name],
                                                          lambda x, y: x - y)),
                      "frags_over_floor": summary(paired(ns[name(p)][f.name], plain["floor"][f.name],
                                                         lambda x, y: x - y))}
        out["classes"][f.name] = row
    for p in PLAIN:
        worst = max(out["classes"].values(), key=lambda row: row[p]["frags_minus_plain"]["median"])
        out["worst"][p] = {"ns": worst[p]["frags_minus_plain"]["median"], "class": worst["label"]}
    for f in jumbo:
        floor = ns[FLOOR][f.name]
        row = {"label": f.label, "bytes": len(f.data), "floor": {"ns": summary(floor)},
               "verdicts": {p: bpf.verdict_name(f.expect[p]) for p in PLAIN}}
        for p in PLAIN:
            row[p] = {"ns": summary(ns[name(p)][f.name]),
                      "over_floor": summary(paired(ns[name(p)][f.name], floor, lambda x, y: x - y))}
        out["jumbo"][f.name] = row
    return out


def targets(micro):
    """The verdict line's entry: xdp.frags costs no more than the plain
    section on 1-buffer frames beyond the A/A noise (worst class per
    program; a figure within the A/A is noise)."""
    from report import _status
    mb = micro.get("multibuffer")
    if not mb:
        return []
    noise = micro["aa"]["max_ns"]
    rank = {"MISSED": 2, "noise": 1, "met": 0}
    per = {p: _status(-w["ns"], noise) for p, w in mb["worst"].items()}
    status = max(per.values(), key=rank.get)
    figs = ", ".join(f"{p} {w['ns']:+.2f} ns ({w['class']}, {per[p]})" for p, w in mb["worst"].items())
    return [{"target": "micro: xdp.frags minus plain section on 1-buffer frames <= A/A noise, every class",
             "value": {p: w["ns"] for p, w in mb["worst"].items()}, "limit": f"<= {noise:.2f} ns (A/A)",
             "status": status,
             "text": f"xdp.frags costs no more than the plain section on 1-buffer frames beyond the "
                     f"A/A noise ({noise:.2f} ns); worst class per program: {figs}"}]


def table(micro):
    """The multi-buffer lines of the per-packet table."""
    from report import _pm
    mb = micro.get("multibuffer")
    if not mb:
        return []
    lines = ["", "Multi-buffer entry point (section xdp.frags), same run: on the common classes "
                 "(1-buffer), xdp.frags minus the plain section, paired per round (ns; median±half IQR)",
             f"{'class':<22}" + "".join(f"{p:>13}" for p in PLAIN)]
    for row in mb["classes"].values():
        lines.append(f"{row['label']:<22}" + "".join(
            f"{_pm(row[p]['frags_minus_plain'], True, 2):>13}" for p in PLAIN))
    lines.append(f"On {JUMBO}-byte frames (multi-buffer in BPF_PROG_TEST_RUN, first buffer 3,520 bytes): "
                 "ns over the floor's xdp.frags twin on the same frame")
    lines.append(f"{'frame':<22}{'floor ns':>10}" + "".join(f"{p:>13}" for p in PLAIN) + "  verdicts")
    for row in mb["jumbo"].values():
        lines.append(f"{row['label']:<22}{_pm(row['floor']['ns']):>10}" + "".join(
            f"{_pm(row[p]['over_floor'], True, 2):>13}" for p in PLAIN)
            + "  " + ", ".join(f"{p} {v}" for p, v in row["verdicts"].items()))
    sizes = ", ".join(f"{p} {v['xlated_insns']}" for p, v in mb["programs"].items())
    lines.append(f"Instructions after the verifier (xdp.frags): {sizes}.")
    return lines
