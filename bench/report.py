# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Figures from the raw samples: statistics, tables, verdict, JSON, plot.

Every statistic over rounds is a median with its spread.  "Over floor" and
every ratio are computed per round, between two measurements of the same
round, and only then summarised.  Spread in the tables is half the
interquartile range (so "4.2±0.1" means half the rounds lie within 4.1 to
4.3); the JSON also has the minimum, maximum and quartiles.
"""

import statistics

from live import BATCH, CONFIGS, LABELS

# The targets (issue: "make bench").
LIVE_MAX_OVER_FLOOR = 1.5   # ns per frame, drop-tcp native vs floor
MICRO_MAX_OVER_FLOOR = 1.5  # ns per packet, every class but the chain
MICRO_MAX_CHAIN = 3.0       # ns per packet, IPv6 extension-header chain
CHAIN_CLASS = "ipv6-ext3-tcp"
MIN_RATIO_NFT = 3.5         # drop-tcp native Mpps / nft-ingress Mpps
MIN_ROUNDS = 9


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
    """raw: {"repeat", "ns": {program: {frame: [ns per round]}}}."""
    ns = raw["ns"]
    floor = ns["floor"]
    out = {"repeat": raw["repeat"], "rounds": len(next(iter(floor.values()))),
           "programs": {p: {"xlated_insns": i, "jited_bytes": j} for p, (i, j) in raw["sizes"].items()},
           "busy_other_cpus": [round(b, 3) for b in raw["busy"]],
           "preempted_calls_rerun": raw["retried"],
           "classes": {}, "scaling": {}}
    for f in classes:
        row = {"label": f.label, "floor": {"ns": summary(floor[f.name])}}
        for p in programs:
            row[p] = {"ns": summary(ns[p][f.name]),
                      "over_floor": summary(paired(ns[p][f.name], floor[f.name], lambda x, y: x - y))}
        out["classes"][f.name] = row
    for series, depth, f in scaling:
        s = out["scaling"].setdefault(series, {p: [] for p in programs})
        for p in programs:
            s[p].append({"depth": depth,
                         "over_floor": summary(paired(ns[p][f.name], floor[f.name], lambda x, y: x - y))})
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
    out["busy_other_cpus"] = [round(b, 3) for b in busy]
    out["preempted_runs_rerun"] = retried
    out["raw_ns_per_frame"] = [{n: [round(v, 2) for v in pair] for n, pair in r.items()} for r in rounds]
    return out


# --- verdict ---------------------------------------------------------------

def verdict(micro, live):
    """(line, [target dicts])."""
    targets = []
    if live:
        v = live["configs"]["drop-tcp-native"]["over_floor_ns"]["median"]
        targets.append({"target": "live: drop-tcp native over floor", "value": v,
                        "limit": f"<= {LIVE_MAX_OVER_FLOOR} ns", "met": v <= LIVE_MAX_OVER_FLOOR,
                        "text": f"live {v:+.1f} ns"})
    if micro:
        worst = None
        chain = None
        for name, row in micro["classes"].items():
            v = row["drop-tcp"]["over_floor"]["median"]
            if name == CHAIN_CLASS:
                chain = (v, row["label"])
            elif worst is None or v > worst[0]:
                worst = (v, row["label"])
        targets.append({"target": "micro: drop-tcp over floor, worst class but the chain",
                        "value": worst[0], "class": worst[1], "limit": f"<= {MICRO_MAX_OVER_FLOOR} ns",
                        "met": worst[0] <= MICRO_MAX_OVER_FLOOR,
                        "text": f"micro worst {worst[0]:+.1f} ns ({worst[1]})"})
        if chain:
            targets.append({"target": "micro: drop-tcp over floor, extension-header chain",
                            "value": chain[0], "limit": f"<= {MICRO_MAX_CHAIN} ns",
                            "met": chain[0] <= MICRO_MAX_CHAIN,
                            "text": f"chain {chain[0]:+.1f} ns"})
    if live:
        v = live["ratios"]["drop-tcp-native/nft-ingress"]["median"]
        targets.append({"target": "live: drop-tcp native / nftables ingress, frames per second",
                        "value": v, "limit": f">= {MIN_RATIO_NFT}", "met": v >= MIN_RATIO_NFT,
                        "text": f"{v:.2f}x nft-ingress"})
    rounds = min([x["rounds"] for x in (micro, live) if x] or [0])
    parts = []
    for t in targets:
        t["met"] = bool(t["met"])
        parts.append(f"{'met' if t['met'] else 'MISSED'} {t['text']} ({t['limit']})")
    if rounds < MIN_ROUNDS:
        head = f"verdict: not judged ({rounds} rounds < {MIN_ROUNDS}; indicative only)"
    else:
        missed = sum(not t["met"] for t in targets)
        head = ("verdict: PASS, all targets met" if not missed
                else f"verdict: FAIL, {missed} of {len(targets)} targets missed")
    return head + ": " + "; ".join(parts), targets


# --- tables ----------------------------------------------------------------

def _pm(s, sign=False):
    v = f"{s['median']:+.1f}" if sign else f"{s['median']:.1f}"
    return f"{v}±{s['spread']:.1f}"


def micro_table(m, programs, cpu):
    sizes = ", ".join(f"{p} {v['xlated_insns']}" for p, v in m["programs"].items())
    lines = [f"Per-packet cost (BPF_PROG_TEST_RUN, CPU {cpu}, {m['rounds']} rounds of "
             f"{m['repeat']} runs per call): ns per packet, and over the floor on the same "
             "frame in the same round; median±half IQR",
             f"{'class':<22}{'floor':>11}" + "".join(f"{p:>22}" for p in programs)]
    for row in m["classes"].values():
        cells = "".join(f"{row[p]['ns']['median']:>9.1f} {_pm(row[p]['over_floor'], True):>12}"
                        for p in programs)
        lines.append(f"{row['label']:<22}{_pm(row['floor']['ns']):>11}{cells}")
    lines.append("touch: the least a TCP filter reads (untagged IPv4 only; not a correct filter).")
    lines.append(f"Instructions after the verifier: {sizes}.")
    lines.append("")
    lines.append("Cost over floor vs work (ns per packet, median±half IQR)")
    lines.append(f"{'':<22}" + "".join(f"{p:>14}" for p in programs))
    for series, title in (("vlan", "VLAN tags"), ("ipv6_ext", "IPv6 ext hdrs")):
        for i, _ in enumerate(m["scaling"][series][programs[0]]):
            depth = m["scaling"][series][programs[0]][i]["depth"]
            lines.append(f"{title + ' ' + str(depth):<22}" + "".join(
                f"{_pm(m['scaling'][series][p][i]['over_floor'], True):>14}" for p in programs))
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

def plot(path, micro, live, programs, title):
    """Cost over floor vs VLAN tags and vs extension headers, with the
    targets; frames per second of each live configuration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (2 if micro else 0) + (1 if live else 0)
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
            ax.axhline(MICRO_MAX_OVER_FLOOR, color="#c0504d", linestyle="--", linewidth=1,
                       label=f"target {MICRO_MAX_OVER_FLOOR} ns")
            if series == "ipv6_ext":
                ax.plot([3], [MICRO_MAX_CHAIN], marker="x", color="#c0504d", linestyle="none",
                        label=f"target, 3-header class {MICRO_MAX_CHAIN} ns")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("ns per packet over floor")
            ax.set_xticks(xs)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    if live:
        ax = axes.pop(0)
        names = list(live["configs"])
        med = [live["configs"][n]["mpps"]["median"] for n in names]
        lo = [m - live["configs"][n]["mpps"]["min"] for m, n in zip(med, names)]
        hi = [live["configs"][n]["mpps"]["max"] - m for m, n in zip(med, names)]
        colors = ["#888888", "#2a7ab9", "#7fb2dc", "#d9822b", "#e3a96b", "#c0504d"]
        ax.barh(range(len(names)), med, xerr=[lo, hi], capsize=3, color=colors[:len(names)])
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("Mpps dropped, generator included (min-max)")
        for i, m in enumerate(med):
            ax.text(0.05, i, f"{m:.2f}", va="center", fontsize=8, color="white")
        if "nft-ingress" in names:
            x = MIN_RATIO_NFT * live["configs"]["nft-ingress"]["mpps"]["median"]
            ax.axvline(x, color="#c0504d", linestyle="--", linewidth=1)
            ax.text(x, len(names) - 0.4, f" {MIN_RATIO_NFT}x nft-ingress", color="#c0504d", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
