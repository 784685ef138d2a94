# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Figures from the raw samples: statistics, tables, verdict, JSON, plot.

Every statistic over rounds is a median with its spread.  "Over floor" and
every live ratio are computed per round, between two measurements of the
same round, and only then summarised.  The per-packet figures pool the
rounds of every load (see micro.py); the A/A figure, how far apart two
copies of drop-tcp come out, is the run's noise: a target whose margin is
within it is reported as "noise", neither met nor missed.  Spread in the
tables is half the interquartile range (so "4.2±0.1" means half the rounds
lie within 4.1 to 4.3); the JSON also has the minimum, maximum and
quartiles.
"""

import statistics

from live import BATCH, CONFIGS, LABELS

# The targets, each against what the same run measures.
PEER = "xdp-filter"             # the peer every micro target is judged against
AA_PAIR = ("drop-tcp", "drop-tcp-copy")
LIVE_AA = ("drop-tcp-native", "drop-tcp-native-copy")
AA_MIN_NS, AA_FRACTION = 0.5, 0.05  # two copies agree within 0.5 ns or 5%
CHEAPER_THAN_PEER = ["drop-tcp", "count", "port-9090"]
PRICE = "drop-tcp"              # whose price of correctness is judged
PRICE_QUARTER = ["ipv4-tcp", "ipv6-tcp", "arp"]  # what most links carry: <= 1/4
PRICE_QUARTER_MAX, PRICE_OTHER_MAX = 0.25, 0.5   # every other class: <= 1/2
LIVE_MIN_RATE_VS_FLOOR = 0.95   # drop-tcp native, frames per second
MIN_LOADS = 8                   # micro: loads needed to judge
MIN_ROUNDS = 9                  # live: rounds needed to judge


def summary(xs, digits=2):
    xs = sorted(xs)
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    r = lambda v: round(v, digits)  # noqa: E731
    return {"median": r(statistics.median(xs)), "min": r(xs[0]), "max": r(xs[-1]),
            "p25": r(q1), "p75": r(q3), "spread": r((q3 - q1) / 2)}


def paired(a, b, op):
    return [op(x, y) for x, y in zip(a, b)]


# --- the per-packet bench ---------------------------------------------------

def micro_figures(raw, classes, scaling, programs):
    """raw: what micro.worker sends back.  @programs: the table's columns;
    raw also has the floor and the A/A copy."""
    ns = raw["ns"]
    floor = ns["floor"]
    over = lambda p, f: paired(ns[p][f], floor[f], lambda x, y: x - y)  # noqa: E731
    timed = [p for p in ns if p != "floor"]
    out = {"repeat": raw["repeat"], "calls": raw["calls"], "loads": len(set(raw["load"])),
           "rounds": len(raw["load"]),
           "programs": {p: {"xlated_insns": i, "jited_bytes": j} for p, (i, j) in raw["sizes"].items()},
           "busy_other_cpus": [round(b, 3) for b in raw["busy"]],
           "preempted_calls_rerun": raw["retried"],
           "classes": {}, "scaling": {}}
    for f in classes:
        row = {"label": f.label, "floor": {"ns": summary(floor[f.name])}}
        for p in timed:
            row[p] = {"ns": summary(ns[p][f.name]), "over_floor": summary(over(p, f.name))}
        med = {p: row[p]["over_floor"]["median"] for p in timed}
        row["aa"] = round(med[AA_PAIR[0]] - med[AA_PAIR[1]], 2)
        if PEER in med:
            peer = med[PEER] - med["touch"]
            row["price"] = round((med[PRICE] - med["touch"]) / peer, 3) if peer > 0 else None
        out["classes"][f.name] = row
    for series, depth, f in scaling:
        s = out["scaling"].setdefault(series, {p: [] for p in programs})
        for p in programs:
            s[p].append({"depth": depth, "over_floor": summary(over(p, f.name))})
    worst = max(out["classes"].values(), key=lambda row: abs(row["aa"]))
    limits = {n: round(max(AA_MIN_NS, AA_FRACTION * max(row[p]["over_floor"]["median"] for p in AA_PAIR)), 2)
              for n, row in out["classes"].items()}
    out["aa"] = {"programs": list(AA_PAIR), "max_ns": abs(worst["aa"]), "class": worst["label"],
                 "limit_ns": limits,
                 "met": all(abs(row["aa"]) <= limits[n] for n, row in out["classes"].items())}
    return out


# --- the live bench --------------------------------------------------------

def live_figures(rounds, frames, busy, retried):
    """rounds: [{config: (ns of the floor run next to it, its ns)}], ns
    per frame, one dict per round."""
    names = [n for n, _, _ in CONFIGS]
    out = {"rounds": len(rounds), "batch_size": BATCH, "configs": {}, "ratios": {}}
    floor_all = [pair[0] for r in rounds for pair in r.values()]
    for n in names:
        if n == "floor":
            ns, floor = floor_all, floor_all
        else:
            floor, ns = [r[n][0] for r in rounds], [r[n][1] for r in rounds]
        out["configs"][n] = {
            "label": LABELS[n],
            "frames_per_run": frames[n],
            "runs": len(ns),
            "mpps": summary([1e3 / x for x in ns], 3),
            "ns_per_frame": summary(ns),
            "over_floor_ns": summary(paired(ns, floor, lambda x, y: x - y)),
            "rate_vs_floor": summary(paired(floor, ns, lambda f, x: f / x), 3),
        }
    # Frames per second of drop-tcp native over each other configuration,
    # from two runs of the same round: > 1 means drop-tcp drops more.
    mine = [r["drop-tcp-native"][1] for r in rounds]
    for n in names:
        if n == "floor":
            other = [r["drop-tcp-native"][0] for r in rounds]
        elif n != "drop-tcp-native":
            other = [r[n][1] for r in rounds]
        else:
            continue
        out["ratios"][f"drop-tcp-native/{n}"] = summary(paired(other, mine, lambda o, m: o / m), 3)
    a, b = (out["configs"][n] for n in LIVE_AA)
    out["aa"] = {"configs": list(LIVE_AA),
                 "over_floor_ns": round(a["over_floor_ns"]["median"] - b["over_floor_ns"]["median"], 2),
                 "rate_vs_floor": round(a["rate_vs_floor"]["median"] - b["rate_vs_floor"]["median"], 3)}
    out["busy_other_cpus"] = [round(b, 3) for b in busy]
    out["preempted_runs_rerun"] = retried
    out["raw_ns_per_frame"] = [{n: [round(v, 2) for v in pair] for n, pair in r.items()} for r in rounds]
    return out


# --- verdict ---------------------------------------------------------------

def _status(margin, noise):
    """A target met by @margin (negative: missed by that much), judged
    against the run's A/A figure in the same unit: a margin within it is
    noise."""
    if margin > noise:
        return "met"
    if margin < -noise:
        return "MISSED"
    return "noise"


def micro_targets(micro):
    """The per-packet targets: each program cheaper over the floor than the
    peer on every class, and the price of correctness (drop-tcp's cost over
    touch as a fraction of the peer's)."""
    classes = micro["classes"]
    noise = micro["aa"]["max_ns"]
    med = lambda row, p: row[p]["over_floor"]["median"]  # noqa: E731
    targets = []
    for p in CHEAPER_THAN_PEER:
        margin, row = min(((med(r, PEER) - med(r, p), r) for r in classes.values()), key=lambda t: t[0])
        targets.append({"target": f"micro: {p} over floor < {PEER} over floor, every class",
                        "value": round(margin, 2), "class": row["label"], "limit": "> 0 ns",
                        "status": _status(margin, noise),
                        "text": f"{p} cheaper than {PEER} on every class (closest: {row['label']}, "
                                f"{med(row, p):+.2f} vs {med(row, PEER):+.2f} ns, margin {margin:+.2f})"})
    quarter = ", ".join(classes[n]["label"] for n in PRICE_QUARTER)
    for names, limit, which in ((PRICE_QUARTER, PRICE_QUARTER_MAX, quarter),
                                ([n for n in classes if n not in PRICE_QUARTER], PRICE_OTHER_MAX,
                                 "every other class")):
        worst = None
        for n in names:
            row = classes[n]
            mine, peer = med(row, PRICE) - med(row, "touch"), med(row, PEER) - med(row, "touch")
            margin = limit * peer - mine
            if worst is None or margin < worst[0]:
                worst = (margin, row)
        margin, row = worst
        value = row["price"]
        shown = f"{value:.2f}" if value is not None else "n/a"
        targets.append({"target": f"micro: price of correctness ({PRICE} over touch / {PEER} over touch), "
                                  f"{which}", "value": value, "class": row["label"],
                        "limit": f"<= {limit}", "status": _status(margin, noise),
                        "margin_ns": round(margin, 2),
                        "text": f"price of correctness <= {limit} on {which}: {shown} at worst "
                                f"({row['label']}, margin {margin:+.2f} ns)"})
    return targets


def verdict(micro, live, more=None):
    """(A/A line or None, verdict line, [target dicts]).  @more: ([target
    dicts], [reasons not to judge]) of another part (blocklist.targets())."""
    targets = micro_targets(micro) if micro else []
    if live:
        v = live["configs"]["drop-tcp-native"]["rate_vs_floor"]["median"]
        noise = abs(live["aa"]["rate_vs_floor"])
        targets.append({"target": "live: drop-tcp native frames per second / the floor's, paired rounds",
                        "value": v, "limit": f">= {LIVE_MIN_RATE_VS_FLOOR}",
                        "status": _status(v - LIVE_MIN_RATE_VS_FLOOR, noise),
                        "text": f"live: drop-tcp native at {v:.3f}x the floor's frames per second "
                                f"(>= {LIVE_MIN_RATE_VS_FLOOR})"})
    if more:
        targets += more[0]
    if micro:
        import frags
        targets += frags.targets(micro)  # the multi-buffer rows (frags.py)
    for t in targets:
        t["met"] = t["status"] == "met"
    aa_line = None
    if micro:
        aa = micro["aa"]
        aa_line = (f"A/A: {aa['programs'][0]} loaded twice differs by at most {aa['max_ns']:.2f} ns "
                   f"({aa['class']}; limit {AA_MIN_NS} ns or {AA_FRACTION:.0%}): "
                   f"{'met' if aa['met'] else 'MISSED'}; differences up to {aa['max_ns']:.2f} ns are noise")
        if live:
            la = live["aa"]
            aa_line += (f"; live, by {abs(la['over_floor_ns']):.2f} ns per frame "
                        f"({abs(la['rate_vs_floor']):.1%} of the floor's rate)")
    short = []
    if micro and micro["loads"] < MIN_LOADS:
        short.append(f"{micro['loads']} loads < {MIN_LOADS}")
    if live and live["rounds"] < MIN_ROUNDS:
        short.append(f"{live['rounds']} live rounds < {MIN_ROUNDS}")
    if more:
        short += more[1]
    parts = [f"{t['status']}: {t['text']}" for t in targets]
    missed = sum(t["status"] == "MISSED" for t in targets)
    unresolved = sum(t["status"] == "noise" for t in targets)
    if short:
        head = f"verdict: not judged ({', '.join(short)}; indicative only)"
    elif micro and not micro["aa"]["met"]:
        head = "verdict: not judged (the A/A self-check failed: too noisy to judge)"
    elif missed:
        head = f"verdict: FAIL, {missed} of {len(targets)} targets missed"
    elif unresolved:
        head = f"verdict: UNRESOLVED, {unresolved} of {len(targets)} targets within the noise"
    else:
        head = "verdict: PASS, all targets met"
    return aa_line, head + ": " + "; ".join(parts), targets


# --- tables ----------------------------------------------------------------

def _pm(s, sign=False, digits=1):
    v = f"{s['median']:+.{digits}f}" if sign else f"{s['median']:.{digits}f}"
    return f"{v}±{s['spread']:.{digits}f}"


def micro_table(m, programs, cpu, notes=()):
    sizes = ", ".join(f"{p} {v['xlated_insns']}" for p, v in m["programs"].items()
                      if p != AA_PAIR[1])
    per_load = m["rounds"] // max(1, m["loads"])
    lines = [f"Per-packet cost (BPF_PROG_TEST_RUN, CPU {cpu}, {m['loads']} loads x {per_load} rounds, "
             f"each the fastest of {m['calls']} calls of {m['repeat']} runs): ns over the floor on "
             "the same frame in the same round; median±half IQR over all rounds",
             f"{'class':<22}{'floor ns':>10}" + "".join(f"{p:>13}" for p in programs)
             + f"{'A/A':>7}{'price':>7}"]
    for row in m["classes"].values():
        cells = "".join(f"{_pm(row[p]['over_floor'], True, 2):>13}" for p in programs)
        price = f"{row['price']:.2f}" if row.get("price") is not None else "-"
        lines.append(f"{row['label']:<22}{_pm(row['floor']['ns']):>10}{cells}"
                     f"{row['aa']:>+7.2f}{price:>7}")
    lines.append(f"A/A: {AA_PAIR[0]} minus a second copy of it, loaded and timed the same way. "
                 f"price: ({PRICE} - touch) / ({PEER} - touch).")
    lines.append("touch: the least a TCP filter reads (untagged IPv4 only; not a correct filter).")
    lines.extend(notes)
    lines.append(f"Instructions after the verifier: {sizes}.")
    lines.append("")
    lines.append("Cost over floor vs work (ns per packet, median±half IQR)")
    lines.append(f"{'':<22}" + "".join(f"{p:>13}" for p in programs))
    for series, title in (("vlan", "VLAN tags"), ("ipv6_ext", "IPv6 ext hdrs")):
        for i, _ in enumerate(m["scaling"][series][programs[0]]):
            depth = m["scaling"][series][programs[0]][i]["depth"]
            lines.append(f"{title + ' ' + str(depth):<22}" + "".join(
                f"{_pm(m['scaling'][series][p][i]['over_floor'], True, 2):>13}" for p in programs))
    return lines


def live_table(lv, cpu):
    lines = [f"Live frames (generator and receiver on CPU {cpu}, {lv['rounds']} rounds, "
             f"batches of {lv['batch_size']}): median [min-max]; over floor and ratios "
             "paired per round",
             f"{'configuration':<30}{'Mpps':>7}{'[min-max]':>14}{'ns/frame':>10}"
             f"{'over floor':>13}{'xdp-native x':>14}"]
    for n, c in lv["configs"].items():
        ratio = lv["ratios"].get(f"drop-tcp-native/{n}")
        r = f"{ratio['median']:.2f}" if ratio else "1"
        m = c["mpps"]
        lines.append(f"{c['label']:<30}{m['median']:>7.2f}{m['min']:>7.2f}-{m['max']:<6.2f}"
                     f"{c['ns_per_frame']['median']:>10.1f}{_pm(c['over_floor_ns'], True):>13}{r:>14}")
    return lines


# --- plot ------------------------------------------------------------------

def _live_bars(ax, configs, color, xlabel, floor_share):
    """One bar per live configuration (median Mpps, min-max), in order, and
    a line at @floor_share of the floor's median."""
    names = list(configs)
    med = [configs[n]["mpps"]["median"] for n in names]
    lo = [m - configs[n]["mpps"]["min"] for m, n in zip(med, names)]
    hi = [configs[n]["mpps"]["max"] - m for m, n in zip(med, names)]
    ax.barh(range(len(names)), med, xerr=[lo, hi], capsize=3, color=[color(n) for n in names])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    for i, m in enumerate(med):
        ax.text(0.05, i, f"{m:.2f}", va="center", fontsize=8, color="white")
    if "floor" in configs:
        x = floor_share * configs["floor"]["mpps"]["median"]
        ax.axvline(x, color="#c0504d", linestyle="--", linewidth=1)
        ax.text(x, len(names) - 0.4, f" {floor_share}x floor", color="#c0504d", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def plot(path, micro, live, programs, title, blocklist=None):
    """Cost over floor vs VLAN tags and vs extension headers; frames per
    second of each live configuration, with the live target; with
    @blocklist (its part of bench.json), its cost over floor vs the list's
    size and its live configurations next to the peers'."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bl_micro = (blocklist or {}).get("micro")
    bl_live = (blocklist or {}).get("live")
    panels = (2 if micro else 0) + (1 if live else 0) + (1 if bl_micro else 0) + (1 if bl_live else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    if micro:
        for ax, series, xlabel in ((axes.pop(0), "vlan", "VLAN tags (IPv4 TCP)"),
                                   (axes.pop(0), "ipv6_ext", "IPv6 extension headers (IPv6 TCP)")):
            for p in programs:
                pts = micro["scaling"][series][p]
                xs = [pt["depth"] for pt in pts]
                ys = [pt["over_floor"]["median"] for pt in pts]
                lo = [pt["over_floor"]["median"] - pt["over_floor"]["p25"] for pt in pts]
                hi = [pt["over_floor"]["p75"] - pt["over_floor"]["median"] for pt in pts]
                style = dict(color="#999999", linestyle=":", marker=".") if p == "touch" else dict(marker="o")
                ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, label=p, **style)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("ns per packet over floor")
            ax.set_xticks(xs)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    if live:
        colors = {"floor": "#888888", "drop-tcp-native": "#2a7ab9", "drop-tcp-native-copy": "#5b95c6",
                  "xdp-filter-native": "#5a9e4b", "drop-tcp-generic": "#7fb2dc", "nft-ingress": "#d9822b",
                  "nft-prerouting": "#e3a96b", "iptables-raw": "#c0504d"}
        _live_bars(axes.pop(0), live["configs"], lambda n: colors.get(n, "#999999"),
                   "Mpps dropped, generator included (min-max)", LIVE_MIN_RATE_VS_FLOOR)
    if bl_micro:
        ax = axes.pop(0)
        cells = bl_micro["cells"]
        sizes = [n for n in ("0", "1k", "100k", "1M") if any(k.startswith(n + "/") for k in cells)]
        for sources, style in (("listed", "o-"), ("unlisted", "s--"), ("hot", "^:")):
            pts = [(i, cells[f"{n}/{sources}"]["over_floor"]) for i, n in enumerate(sizes)
                   if f"{n}/{sources}" in cells]
            if pts:
                ax.errorbar([i for i, _ in pts], [c["median"] for _, c in pts],
                            yerr=[[c["median"] - c["p25"] for _, c in pts], [c["p75"] - c["median"] for _, c in pts]],
                            fmt=style, capsize=3, label=f"blocklist, {sources}")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels(sizes)
        ax.set_xlabel("IPv4 prefixes in the list (spread sources)")
        ax.set_ylabel("ns per packet over floor")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if bl_live:
        def color(n):
            for prefix, c in (("floor", "#888888"), ("blocklist", "#2a7ab9"), ("xdp-filter", "#5a9e4b"),
                              ("nft", "#d9822b")):
                if n.startswith(prefix):
                    return c
            return "#c0504d"
        _live_bars(axes.pop(0), bl_live["configs"], color, "Mpps dropped, blocklist and peers (min-max)", 0.5)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
