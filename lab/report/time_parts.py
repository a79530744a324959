"""Where the time went, in the report: each run's mean latency in its parts (lab/analysis/latency_parts.py), as a
table and as stacked bars, with the words that say which part holds most of it."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from contract.request_parts import BETWEEN, NAMES, PARTS
from lab.analysis.latency_parts import LatencyParts
from lab.report.capacity import Capacity
from lab.report.charts import DPI, save
from lab.report.document import Table
from lab.report.rows import Row
from lab.report.tables import run_name

SHOWN = (*PARTS[:1], BETWEEN, *PARTS[1:])  # a column for before and after as one part, where clocks differ
COLOURS = {"generator": "#8C8C8C", "before": "#C44E52", BETWEEN: "#C44E52", "pool": "#937860", "db": "#4C72B0",
           "cpu": "#DD8452", "inside": "#8172B3", "after": "#55A868"}  # fmt: skip

INTRO = (
    "Each request's latency, from its intended start to the client holding the whole answer, split into parts "
    "that add up, from the client's stamps and the server's own (its handler's start and end, and Server-Timing): "
    "the load generator's lag; before the handler (accept queue, the server's queue, a busy event loop, a thread "
    "waiting for a worker); waiting for a database connection; the query as PostgreSQL ran it; the handler's own "
    "CPU; waiting inside the handler (for the GIL, or for an event loop running other requests between this one's "
    "awaits); after the handler (delivery). Unaccounted is what the client measured beyond the parts' sum."
)


def parts_of(row: Row) -> LatencyParts | None:
    measured = row.record.measured
    timeline = measured.timeline if measured else None
    return timeline.parts if timeline else None


def _columns(found: list[LatencyParts]) -> list[str]:
    return [p for p in SHOWN if any(p in parts.parts for parts in found)]


def table(rows: list[Row]) -> Table | None:
    """Each run's mean latency and its parts' means (ms, with their share); None where no run has parts."""
    with_parts = [(row, parts) for row in rows if row.ok and (parts := parts_of(row))]
    if not with_parts:
        return None
    columns = _columns([parts for _, parts in with_parts])
    cells = []
    for row, parts in with_parts:
        shares = [_cell(parts, name) for name in columns]
        unaccounted = f"{parts.unaccounted_ms:+.2f} ({parts.unaccounted_share:+.1%})"
        cells.append([run_name(row), f"{parts.latency_mean_ms:.1f}", *shares, unaccounted])
    titles = [NAMES[name] for name in columns]
    return Table(("run", "latency, mean ms", *titles, "unaccounted ms"), cells,
                 title="Where the time went: each part's mean in ms (its share of the mean latency)")  # fmt: skip


def _cell(parts: LatencyParts, name: str) -> str:
    part = parts.parts.get(name)
    return "–" if part is None else f"{part.mean_ms:.1f} ({part.share:.0%})"


def chart(rows: list[Row], path: Path) -> Path | None:
    """Stacked bars: each run's mean latency in its parts."""
    with_parts = [(run_name(row), parts) for row in rows if row.ok and (parts := parts_of(row))]
    if not with_parts:
        return None
    columns = _columns([parts for _, parts in with_parts])
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(with_parts) + 1.6))
    labels = [label for label, _ in with_parts]
    left = [0.0] * len(with_parts)
    for name in columns:
        widths = [max(0.0, parts.mean(name)) for _, parts in with_parts]
        ax.barh(labels, widths, left=left, color=COLOURS[name], label=NAMES[name])
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("mean latency, ms")
    ax.set_title("Where the time went, per run")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.set_dpi(DPI)
    return save(fig, path)


CAPACITY_INTRO = (
    "Where each request's time went at each configuration's lowest step and at the first step past its capacity "
    "(the lowest rate that broke): the part that grew with the offered load is the one that set the capacity."
)


def capacity_table(found: list[Capacity]) -> Table | None:
    """Per configuration, its parts at the lowest step and past its capacity (mean ms, share)."""
    pairs = [(c, at) for c in found if c.found for at in (c.found.parts_low, c.found.parts_near) if at]
    if not pairs:
        return None
    columns = _columns([at.parts for _, at in pairs])
    cells = [[f"{c.label} · {c.workload}", f"{at.offered_rps:.3g}", f"{at.parts.latency_mean_ms:.1f}",
              *(_cell(at.parts, name) for name in columns)] for c, at in pairs]  # fmt: skip
    return Table(("configuration", "offered /s", "latency, mean ms", *(NAMES[name] for name in columns)), cells,
                 title="Where the time went, at the lowest step and past the capacity (mean ms, share)")  # fmt: skip


def capacity_chart(found: list[Capacity], path: Path) -> Path | None:
    """One panel per configuration: the parts' means stacked against the offered rate, the p95 beside them."""
    searched = [c for c in found if sum(1 for s in c.steps if s.parts) >= 2]
    if not searched:
        return None
    fig, axes = plt.subplots(1, len(searched), figsize=(4.2 * len(searched) + 1.5, 3.6), squeeze=False)
    for ax, c in zip(axes[0], searched, strict=True):
        steps = sorted((s for s in c.steps if s.parts), key=lambda s: s.offered)
        rates = [s.offered for s in steps]
        columns = _columns([s.parts for s in steps if s.parts])
        stacks = [[max(0.0, s.parts.mean(name)) if s.parts else 0.0 for s in steps] for name in columns]
        ax.stackplot(rates, stacks, colors=[COLOURS[name] for name in columns], labels=[NAMES[name] for name in columns])
        ax.plot(rates, [s.p95_ms or 0.0 for s in steps], "k--", marker="o", label="p95")
        ax.axhline(c.slo_ms, color="grey", linewidth=0.8)
        ax.set_title(f"{c.label} · {c.workload}", fontsize="medium")
        ax.set_xlabel("offered, arrivals/s")
        ax.set_ylabel("ms")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.set_dpi(DPI)
    return save(fig, path)
