"""The report's charts, as PNG files: labelled axes with units, a legend, one idea each."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import ScalarFormatter

from lab.analysis.model import Arrivals
from lab.analysis.stats import quantile
from lab.report.capacity import Capacity
from lab.report.rows import Row, baseline, compared, knob, mode_rank
from lab.results import request_timeline
from lab.results.folder import ResultsFolder

POST_MODES = ("nothreading", "threaded", "async", "gunicorn")
WORKLOAD_COLOURS = {"io": "#4C72B0", "cpu": "#DD8452", "mix": "#55A868"}
DPI = 110
LANE_REQUESTS = 3.5  # the timeline shows about this many consecutive requests per lane


def save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # keeps a legend placed outside the axes
    plt.close(fig)
    return path


def _rank(row: Row) -> tuple[int, str]:
    return mode_rank(row.mode), row.label


def _order(rows: list[Row]) -> list[str]:
    """The rows' labels, in the mode table's order."""
    return [row.label for row in sorted({r.label: r for r in rows}.values(), key=_rank)]


def _style(row: Row) -> dict[str, object]:
    """One colour per mode, the same in every sweep; a variant (offload, no pool) is dashed."""
    colour = plt.cm.tab10(_rank(row)[0] % 10)
    return {"color": colour, "linestyle": "--" if row.variant else "-", "marker": "s" if row.variant else "o"}


def _latency(row: Row, pct: str) -> float:
    """p50, p95 or p99 of a run, in ms (0 where there were no requests)."""
    locust = row.locust
    return {"p50": locust.p50_ms, "p95": locust.p95_ms, "p99": locust.p99_ms}[pct] or 0.0


def _kind_latency(row: Row, kind: str, pct: str) -> float:
    stats = row.kinds.get(kind)
    return ({"p50": stats.p50_ms, "p95": stats.p95_ms}[pct] if stats else None) or 0.0


def throughput(rows: list[Row], path: Path) -> Path | None:
    group = [r for r in compared(rows) if r.ok]
    if not group:
        return None
    cpus, users = baseline(rows)
    labels = _order(group)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    workloads = [w for w in WORKLOAD_COLOURS if any(r.knobs.workload == w for r in group)]
    width = 0.8 / len(workloads)
    for i, workload in enumerate(workloads):
        values = {r.label: r.rps for r in group if r.knobs.workload == workload}
        xs = [j + (i - (len(workloads) - 1) / 2) * width for j in range(len(labels))]
        heights = [values.get(lab, 0.0) for lab in labels]
        bars = ax.bar(xs, heights, width, label=workload, color=WORKLOAD_COLOURS[workload])
        # a configuration that was not run for this workload gets no bar and no "0"
        ax.bar_label(bars, labels=[f"{values[lab]:.0f}" if lab in values else "" for lab in labels], fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("throughput (requests/s)")
    ax.set_title(f"Throughput per mode ({users} users, CPUS={cpus:g})")
    ax.legend(title="workload")
    return save(fig, path)


def latency(rows: list[Row], path: Path) -> Path | None:
    group = [r for r in compared(rows) if r.ok]
    if not group:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=False)
    for ax, workload in zip(axes, ("io", "cpu"), strict=True):
        runs = [r for r in group if r.knobs.workload == workload]
        labels = _order(runs)
        by_label = {r.label: r for r in runs}
        for k, (pct, shade) in enumerate((("p50", 0.45), ("p95", 0.7), ("p99", 0.95))):
            xs = [j + (k - 1) * 0.27 for j in range(len(labels))]
            ax.bar(xs, [_latency(by_label[lab], pct) for lab in labels], 0.27, label=pct, color=plt.cm.Greys(shade))
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"Latency percentiles, {workload} workload")
        ax.legend()
    return save(fig, path)


def mix_latency(rows: list[Row], path: Path) -> Path | None:
    """In a mix, io and cpu requests apart: where a prime count holds up the io requests behind it."""
    group = [r for r in compared(rows) if r.ok and r.knobs.workload == "mix" and r.kinds]
    if not group:
        return None
    labels = _order(group)
    by_label = {r.label: r for r in group}
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    bars = [(kind, pct) for kind in ("io", "cpu") for pct in ("p50", "p95")]
    width = 0.8 / len(bars)
    for k, (kind, pct) in enumerate(bars):
        xs = [j + (k - (len(bars) - 1) / 2) * width for j in range(len(labels))]
        values = [_kind_latency(by_label[lab], kind, pct) for lab in labels]
        ax.bar(xs, values, width, label=f"{kind} {pct}", color=WORKLOAD_COLOURS[kind], alpha=0.55 if pct == "p50" else 1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("latency (ms)")
    share = group[0].knobs.mix_cpu_share
    ax.set_title(f"Latency in a mix ({share:.0%} cpu requests): io and cpu requests apart")
    ax.legend()
    return save(fig, path)


def sweep(rows: list[Row], key: str, unit: str, path: Path) -> Path | None:
    """Throughput against `key`, one line per mode, when the experiment varied it."""
    ok = [r for r in rows if r.ok]
    if len({knob(r, key) for r in ok}) < 2:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    others = [k for k in ("users", "cpus") if k != key]
    for ax, workload in zip(axes, ("io", "cpu"), strict=True):
        lines: dict[str, list[Row]] = defaultdict(list)
        runs = [r for r in ok if r.knobs.workload == workload]
        if not runs:
            continue
        # hold the other axis at its most common value
        common = max({knob(r, others[0]) for r in runs}, key=lambda v: sum(knob(r, others[0]) == v for r in runs))
        for r in runs:
            if knob(r, others[0]) == common:
                lines[r.label].append(r)
        for lab in _order([rs[0] for rs in lines.values()]):
            series = sorted(lines[lab], key=lambda r: knob(r, key))
            if len(series) > 1:
                ax.plot([knob(r, key) for r in series], [r.rps for r in series], label=lab, **_style(series[0]))
        if key == "users":
            ax.set_xscale("log", base=2)
            shown = [r.rps for rs in lines.values() for r in rs if r.rps > 0]
            if shown and max(shown) > 10 * min(shown):  # throughput spans orders of magnitude as users grow
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(ScalarFormatter())
        values = sorted({knob(r, key) for r in runs})
        ax.set_xticks(values, [f"{v:g}" for v in values])  # the values run, not powers of two
        ax.set_xlabel(unit)
        ax.set_ylabel("throughput (requests/s)")
        ax.set_title(f"Throughput against {unit}, {workload} ({others[0]}={common:g})")
    # one legend for both panels, beside them, so that no line hides behind it
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines()}
    labels = [lab for lab in _order(ok) if lab in handles]
    fig.legend([handles[lab] for lab in labels], labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return save(fig, path)


def _pack(requests: list[request_timeline.Request]) -> dict[tuple[int, int], list[tuple[request_timeline.Request, int]]]:
    """Per lane, give each request the first slot free when it starts, so that requests one thread
    holds at once (an event loop's) are drawn side by side instead of over each other."""
    lanes: dict[tuple[int, int], list[tuple[request_timeline.Request, int]]] = defaultdict(list)
    busy_until: dict[tuple[int, int], list[int]] = defaultdict(list)
    for q in sorted(requests, key=lambda q: q["start_us"]):
        lane, ends = (q["pid"], q["thread"]), busy_until[(q["pid"], q["thread"])]
        slot = next((i for i, end in enumerate(ends) if end <= q["start_us"]), len(ends))
        if slot == len(ends):
            ends.append(0)
        ends[slot] = q["end_us"]
        lanes[lane].append((q, slot))
    return lanes


def timeline(rows: list[Row], folder: Path, workload: str, path: Path) -> Path | None:
    """One lane per worker process and thread, one bar per request from its server-side start to end:
    the post's figures 1-4, drawn from what really happened."""
    picks = []
    for mode in POST_MODES:
        candidates = [r for r in compared(rows) if r.ok and r.mode == mode and r.knobs.workload == workload and r.timeline]
        if candidates:
            picks.append(candidates[0])
    if not picks:
        return None
    fig, axes = plt.subplots(len(picks), 1, figsize=(11, 1.6 + 1.5 * len(picks)), squeeze=False)
    for ax, row in zip(axes[:, 0], picks, strict=True):
        assert row.timeline is not None
        requests = sorted(request_timeline.read(ResultsFolder(folder).file(row.timeline.file)), key=lambda q: q["start_us"])
        if not requests:
            continue
        # a short window: the first requests of the measured part, enough to see the pattern
        typical = quantile([q["end_us"] - q["start_us"] for q in requests], 0.5) or 1
        origin = requests[0]["start_us"]
        window = typical * LANE_REQUESTS  # a few requests per lane, as in the post's figures
        shown = [q for q in requests if q["start_us"] - origin <= window]
        lanes = sorted({(q["pid"], q["thread"]) for q in shown})
        index = {lane: i for i, lane in enumerate(lanes)}
        pids = sorted({pid for pid, _ in lanes})
        colours = {pid: plt.cm.tab10(i % 10) for i, pid in enumerate(pids)}
        by_kind = workload == "mix"  # a mix is coloured by request kind: io bars held up behind cpu bars
        for (pid, thread), slots in _pack(shown).items():
            depth = max(slot for _, slot in slots) + 1  # requests one thread holds at once (async)
            for q, slot in slots:
                y = index[(pid, thread)] - 0.35 + (slot + 0.5) * 0.7 / depth
                ax.barh(
                    y,
                    (q["end_us"] - q["start_us"]) / 1000,
                    left=(q["start_us"] - origin) / 1000,
                    height=0.7 / depth * 0.85,
                    color=WORKLOAD_COLOURS.get(q["workload"], "grey") if by_kind else colours[pid],
                    edgecolor="black",
                    linewidth=0.4,
                )
        ax.set_yticks(range(len(lanes)), [f"pid {p} / thread {t % 100000}" for p, t in lanes], fontsize=7)
        ax.set_ylim(-0.7, len(lanes) - 0.3)
        ax.set_xlabel("server time since the first request in the window (ms)")
        ax.set_title(
            f"{row.label}: {len(shown)} requests, {len(lanes)} lane(s), "
            f"{len(pids)} process(es) ({row.knobs.users} users, {workload})",
            fontsize=9,
        )
        if by_kind:
            ax.legend(handles=[Patch(color=WORKLOAD_COLOURS[k], label=k) for k in ("io", "cpu")], fontsize=7, loc="upper right")
        elif len(pids) > 1:
            ax.legend(handles=[Patch(color=colours[p], label=f"pid {p}") for p in pids], fontsize=7, loc="upper right")
    fig.suptitle(f"Who served what, when: {workload} workload (one bar per request)")
    return save(fig, path)


def capacity(found: list[Capacity], path: Path) -> Path | None:
    """p95 latency (from each arrival's intended start) against the offered load, one panel per
    configuration (their rates differ a hundredfold): each step with its p95's 95% interval (filled:
    held, ✗: broke, hollow: unsure), the lab's queueing prediction as a dashed curve, and the
    capacity's 95% band (the crossing's, else the range) as a bar on the target."""
    if not found:
        return None
    ordered = sorted(found, key=lambda c: (c.workload, mode_rank(c.mode), c.label))
    cols = min(4, len(ordered))
    rows = math.ceil(len(ordered) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, c in zip(axes.flat, ordered, strict=False):
        colour = plt.cm.tab10(mode_rank(c.mode) % 10)
        steps = sorted((s for s in c.steps if s.p95_ms), key=lambda s: s.offered)
        for s in steps:
            p95 = s.p95_ms or 0.0
            low, high = s.step.p95_low_ms or p95, s.step.p95_high_ms or p95
            marker, fill = ("o", colour) if s.held else ("X", colour) if s.broke else ("o", "white")
            ax.errorbar([s.offered], [p95], yerr=[[p95 - low], [high - p95]], fmt=marker, color=colour,
                        markerfacecolor=fill, capsize=3)  # fmt: skip
        if model := c.prediction:
            arrivals: Arrivals = "constant" if c.arrivals == "constant" else "poisson"
            top = max([s.offered for s in steps] + [model.saturation * 0.5]) * 1.1
            rates = [r for r in (top * i / 40 for i in range(1, 41)) if r < model.saturation]
            curve = [(r, model.quantile(r, 0.95, arrivals, n=20_000) * 1000) for r in rates]
            shown = [(r, p95) for r, p95 in curve if p95 <= 3 * c.slo_ms]  # past that the queue's curve is a wall
            ax.plot([r for r, _ in shown], [p95 for _, p95 in shown], color="grey", linestyle="--", linewidth=1,
                    label="predicted")  # fmt: skip
        if c.band:
            ax.plot(list(c.band), [c.slo_ms, c.slo_ms], color=colour, linewidth=6, alpha=0.4, solid_capstyle="butt")
        ax.axhline(c.slo_ms, color="black", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(labelsize=7, which="both")
        ax.set_title(f"{c.label} · {c.workload} · CPUS={c.cpus:g}", fontsize=9)
    for ax in list(axes.flat)[len(ordered) :]:
        ax.set_visible(False)
    fig.supxlabel("offered load (arrivals/s, as the steps' windows really offered them)", fontsize=9)
    fig.supylabel("p95 from intended start (ms)", fontsize=9)
    fig.suptitle("Latency against offered load: each step with its 95% interval (filled held, ✗ broke, hollow unsure), "
                 "the predicted queue dashed, the capacity's 95% band a bar on the target", fontsize=9)  # fmt: skip
    return save(fig, path)
