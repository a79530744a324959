"""Build report.html (self-contained), report.md and the chart PNGs from a results folder."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.modes import MODES
from lab.quick_check import QuickCheck
from lab.record import KindStats, RunRecord
from lab.records import RecordError, read_records
from lab.report import charts, words
from lab.report.capacity import Capacity, capacities
from lab.report.parity import ParityPair, parity
from lab.report.published import QuickCheckRow, quick_checks
from lab.report.rows import Row, analyse
from lab.typedjson import read

TABLE_COLUMNS = (
    "run",
    "status",
    "users",
    "CPUS",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "failures",
    "server CPU",
    "CPU ms/req",
    "throttled s",
    "Locust CPU",
    "machine idle",
    "io p50/p95/p99 ms",
    "cpu p50/p95/p99 ms",
    "predicted req/s",
    "binds",
    "measured/predicted",
    "note",
)


def _demos(folder: Path) -> list[QuickCheck]:
    """The quick checks `make demo` recorded, beside the results folder or in it."""
    demos = []
    for place in (folder / "demos", folder.parent / "demos"):
        for path in sorted(place.glob("*.json")):
            try:
                demos.append(read(QuickCheck, json.loads(path.read_text())))
            except ValueError as error:  # JsonError too
                raise RecordError(f"{path}: not a readable demo record ({error})") from None
    return demos


def _n(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def run_table(rows: list[Row]) -> list[list[str]]:
    table = []
    for r in rows:
        k, m = r.knobs, r.record.measured
        locust, server, loadgen = (m.locust, m.server, m.load_generator) if m else (None, None, None)
        per_request = server.cpu_seconds_per_request if server else None
        p = r.prediction
        flag = f" ⚠ bounded by {r.bounded_by}" if r.bounded_by else ""
        idle = m.machine_cpu.idle_share if m and m.machine_cpu else None
        table.append(
            [
                f"{r.label} · {k.workload}",
                r.record.status,
                str(k.users),
                f"{k.cpus:g}",
                _n(locust.rps if locust else None),
                _n(locust.p50_ms if locust else None, 0),
                _n(locust.p95_ms if locust else None, 0),
                _n(locust.p99_ms if locust else None, 0),
                _n(locust.failures if locust else None),
                _n(server.utilisation if server else None, 2),
                _n(None if per_request is None else per_request * 1000, 2),
                _n(server.throttled_seconds if server else None, 2),
                _n(loadgen.utilisation if loadgen else None, 2) + flag,
                "–" if idle is None else f"{idle:.0%}",
                *(_kind(r.kinds.get(kind)) for kind in ("io", "cpu")),
                _n(p.throughput if p else None),
                p.binding if p else "–",
                _n(r.ratio, 2),
                words.row_note(r),
            ]
        )
    return table


def _kind(stats: KindStats | None) -> str:
    if not stats:
        return "–"
    return "/".join(_n(p, 0) for p in (stats.p50_ms, stats.p95_ms, stats.p99_ms)) + f" ({_n(stats.rps)} req/s)"


def quick_table(checks: list[QuickCheckRow]) -> list[list[str]]:
    return [
        [
            c.mode,
            c.workload,
            " / ".join(f"{q.seconds:.3f}s" for q in c.replies),
            f"{c.total:.3f}s",
            _n(c.ratio, 2),
            _n(c.post_total, 2) + ("s" if c.post_total else ""),
            _n(c.post_ratio, 2),
        ]
        for c in checks
    ]


PARITY_COLUMNS = ("run", "native req/s", "compose req/s", "compose/native", "native p95 ms", "compose p95 ms",
                  "compose/native p95", "gap over 15%: cause")  # fmt: skip


def parity_table(pairs: list[ParityPair]) -> list[list[str]]:
    return [
        [
            words.parity_run(p),
            _n(p.native.rps),
            _n(p.compose.rps),
            _n(p.rps_ratio, 2),
            _n(p.native.locust.p95_ms, 0),
            _n(p.compose.locust.p95_ms, 0),
            _n(p.p95_ratio, 2),
            words.parity_causes(p) or "–",
        ]
        for p in pairs
    ]


QUICK_TEXT = "Absolute times depend on IO_SECONDS, PRIMES_LIMIT and the machine; compare the ratios."
QUICK_COLUMNS = ("mode", "workload", "each reply", "total", "÷ nothreading", "post's total", "post's ÷ nothreading")


CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}.warn{color:#a40}code{background:#f5f5f5}"""

THEORY = (
    "In a closed loop of U users with no think time, throughput X = U / R. A mode holds at most C requests in flight "
    "(1 for nothreading, the pool or thread count, WORKERS × THREADS) and runs Python in at most P processes at once "
    "(P = min(processes, CPUS) under the GIL). With D_io the database wait and D_cpu the CPU time of one request "
    "(measured from the server's cgroup), X ≤ min(U, C) / (D_io + D_cpu) and X ≤ P / D_cpu. In a mix, D_io and "
    "D_cpu are the means per request (the io share times the wait), and each kind's throughput is its share of X. "
    "'binds' says which bound is lower; measured/predicted near 1 means the model explains the run."
)


PARITY_TEXT = (
    "Each configuration measured natively and in containers (compose): the ratio compose/native of throughput "
    "and of p95 latency. A gap over 15% is named with what the two records say differed."
)


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[list[str]]


@dataclass(frozen=True)
class Section:
    """One section of the report, as data; text may hold `code` spans."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    table: Table | None = None
    images: list[tuple[str, Path]] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    title: str
    intro: str
    sections: list[Section]


CAPACITY_TEXT = (
    "Requests arrived at a set rate whatever the replies (open arrivals), and latency counts from each arrival's "
    "intended start. Each configuration's capacity is the highest rate whose p95 stayed at or under the target with "
    "under 1% failures, found by a bounded search of short steps; the model's saturation rate is min(C / (D_io + "
    "D_cpu), P / D_cpu), with D_cpu from the server's own accounting."
)
CAPACITY_COLUMNS = ("configuration", "target p95 ms", "capacity req/s", "model req/s", "capacity/model", "steps: rate → p95 ms")


def capacity_sections(folder: Path, found: list[Capacity]) -> list[Section]:
    rows = [
        [
            f"{c.label} · {c.workload} · CPUS={c.cpus:g}",
            f"{c.slo_ms:g}",
            _n(c.capacity),
            _n(c.model),
            _n(c.ratio, 2),
            ", ".join(f"{s.rate:g}→{_n(s.arrivals.p95_ms if s.arrivals else None, 0)}{'' if s.held else ' ✗'}" for s in c.steps),
        ]
        for c in found
    ]
    chart = charts.capacity(found, folder / "chart-capacity.png")
    return [
        Section("Which to pick, by capacity", bullets=words.capacity_advice(found)),
        Section("Capacity at a latency target", paragraphs=[CAPACITY_TEXT], bullets=words.overload(found),
                table=Table(CAPACITY_COLUMNS, rows), images=[("Latency against offered load", chart)] if chart else []),
    ]  # fmt: skip


def sections_of(folder: Path, records: list[RunRecord], manifest: dict[str, Any]) -> Report:
    """Everything the report says, built once from the records; `markdown` and `page` only render it."""
    name = manifest.get("name") or records[0].experiment
    found = capacities(records)
    closed = [r for r in records if not r.capacity_step]
    if not closed:  # a capacity search alone
        return Report(f"Concurrency lab report: {name}", manifest.get("description", ""), capacity_sections(folder, found))
    rows = [analyse(r) for r in closed]
    records = closed
    charts_made = (
        ("Throughput per mode", charts.throughput(rows, folder / "chart-throughput.png")),
        ("Latency percentiles per mode", charts.latency(rows, folder / "chart-latency.png")),
        ("Throughput against users", charts.sweep(rows, "users", "users", folder / "chart-users.png")),
        ("Throughput against the CPU limit", charts.sweep(rows, "cpus", "CPUS", folder / "chart-cpus.png")),
        ("Timeline, io workload (the post's figures 1–4)", charts.timeline(rows, folder, "io", folder / "chart-timeline-io.png")),
        ("Timeline, cpu workload", charts.timeline(rows, folder, "cpu", folder / "chart-timeline-cpu.png")),
        ("Latency in a mix, io and cpu requests apart", charts.mix_latency(rows, folder / "chart-mix-latency.png")),
        ("Timeline, mix (io requests held up behind cpu requests)",
         charts.timeline(rows, folder, "mix", folder / "chart-timeline-mix.png")),
    )  # fmt: skip
    info = records[0].machine
    machine_line = (
        f"{info.cores} cores ({info.cpu_model}), {info.os}, Python {info.python}, PostgreSQL {info.postgres}, "
        + ", ".join(f"{k} {v}" for k, v in info.packages.items() if v)
        + f"; git {str(info.git.revision if info.git else None)[:12]}"
    )
    limit_methods = sorted({(r.cpu_limit.method if r.cpu_limit else None) or "–" for r in records})
    warnings = []
    for what in ("the load generator", "the machine"):
        bounded = [r for r in rows if r.ok and r.bounded_by == what]
        if bounded:
            warnings.append(
                f"Warning: {len(bounded)} run(s) were bounded by {what}, not the server: their throughput is not the server's."
            )
    failed = [r for r in rows if not r.ok]
    if failed:
        warnings.append(f"{len(failed)} run(s) failed; their reasons are in the table.")
    sections = [Section("Conclusions", bullets=words.conclusions(rows), warnings=warnings)]
    if picks := words.advice(rows):
        sections.append(Section("Which to pick", bullets=picks))
    modes = [f"`{m}`: {MODES[m].summary}" for m in MODES if any(r.mode == m for r in rows)]
    sections.append(Section("Modes compared", bullets=modes))
    sections.append(Section("Runs: measured and predicted", paragraphs=[THEORY], table=Table(TABLE_COLUMNS, run_table(rows))))
    if pairs := parity(rows):
        sections.append(Section("The same runs on both backends", paragraphs=[PARITY_TEXT],
                                table=Table(PARITY_COLUMNS, parity_table(pairs))))  # fmt: skip
    sections.append(Section("Charts", images=[(title, path) for title, path in charts_made if path is not None]))
    if checks := quick_checks(records, _demos(folder)):
        sections.append(Section("The post's quick check: two concurrent requests", paragraphs=[QUICK_TEXT],
                                table=Table(QUICK_COLUMNS, quick_table(checks))))  # fmt: skip
    shared = "The load generator, the server and PostgreSQL share this machine's cores."
    sections.append(Section("Machine", paragraphs=[machine_line, "CPU limit: " + "; ".join(limit_methods), shared]))
    sections += capacity_sections(folder, found) if found else []
    return Report(f"Concurrency lab report: {name}", manifest.get("description", ""), sections)


def markdown(report: Report) -> str:
    def table(t: Table) -> list[str]:
        lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in t.rows]

    out = [f"# {report.title}", "", report.intro]
    for section in report.sections:
        out += ["", f"## {section.title}", ""]
        out += [text for paragraph in section.paragraphs for text in (paragraph, "")]
        out += [f"- {bullet}" for bullet in section.bullets]
        out += [f"\n**{warning}**" for warning in section.warnings]
        out += table(section.table) if section.table else []
        out += [f"### {title}\n\n![{title}]({path.name})\n" for title, path in section.images]
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escaped text, with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def page(report: Report) -> str:
    def table(t: Table) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in t.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def img(path: Path) -> str:
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'

    body = [f"<h1>{html.escape(report.title)}</h1>", f"<p>{html.escape(report.intro)}</p>"]
    for section in report.sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{_inline(paragraph)}</p>" for paragraph in section.paragraphs]
        if section.bullets:
            body.append("<ul>" + "".join(f"<li>{_inline(bullet)}</li>" for bullet in section.bullets) + "</ul>")
        body += [f'<p class="warn">{html.escape(warning)}</p>' for warning in section.warnings]
        body += [table(section.table)] if section.table else []
        body += [f"<h3>{html.escape(title)}</h3>{img(path)}" for title, path in section.images]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def build(folder: Path) -> Path:
    folder = folder.resolve()
    if not folder.is_dir():
        raise RecordError(f"{folder} is not a results folder: run `make bench` first, or pass RESULTS=<folder>")
    records = read_records(folder)
    if not records:
        raise RecordError(f"{folder} has no run records yet: run `make bench` first")
    manifest_path = folder / "experiment.json"
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except ValueError as error:
        raise RecordError(f"{manifest_path}: not readable ({error})") from None
    report = sections_of(folder, records, manifest)
    (folder / "report.md").write_text(markdown(report))
    out = folder / "report.html"
    out.write_text(page(report))
    return out
