"""Build report.html (self-contained), report.md and the chart PNGs from a results folder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from contract.modes import MODES
from contract.serve import app_summary
from lab.analysis import intervals
from lab.report import charts, compared, deploy, deploy_words, tables, time_parts, words
from lab.report.capacity import Capacity, capacities
from lab.report.compared import read_comparison
from lab.report.document import Report, Section, markdown, page
from lab.report.parity import parity
from lab.report.published import quick_checks
from lab.report.rows import Row, rows_of
from lab.results.folder import RecordError, ResultsFolder, write_atomic
from lab.results.manifest import Manifest, read_manifest
from lab.results.quick_check import QuickCheck
from lab.results.record import RunRecord
from lab.results.run_files import read_records
from lab.results.typedjson import read

# The sections an app's decision (decision.json) replaces: they pick from closed loops, or capacities, alone.
SUPERSEDED = ("Which to pick", "Which to pick, by capacity")


def _demos(folder: Path) -> list[QuickCheck]:
    """The quick checks `make demo` recorded, beside the results folder or in it."""
    demos = []
    for path in ResultsFolder(folder).demos():
        try:
            demos.append(read(QuickCheck, json.loads(path.read_text())))
        except ValueError as error:  # JsonError too
            raise RecordError(f"{path}: not a readable demo record ({error})") from None
    return demos


def capacity_sections(folder: Path, found: list[Capacity], budget_s: float | None = None) -> list[Section]:
    files = ResultsFolder(folder)
    chart = charts.capacity(found, files.chart("capacity"))
    sections = [
        Section("Which to pick, by capacity", bullets=words.capacity_advice(found)),
        Section("Capacity at a latency target", paragraphs=[words.CAPACITY, words.capacity_time(found, budget_s)],
                bullets=words.overload(found),
                tables=[tables.capacity(found)], images=[("Latency against offered load", chart)] if chart else []),
    ]  # fmt: skip
    if parts := time_parts.capacity_table(found):
        drawn = time_parts.capacity_chart(found, files.chart("capacity-parts"))
        sections.append(Section("Where the time went, as the load rose", paragraphs=[time_parts.CAPACITY_INTRO],
                                tables=[parts], images=[("Each step's mean latency in its parts, and its p95", drawn)]
                                if drawn else []))  # fmt: skip
    return sections


def _charts(folder: Path, rows: list[Row]) -> list[tuple[str, Path]]:
    chart = ResultsFolder(folder).chart
    drawn = (
        ("Throughput per mode", charts.throughput(rows, chart("throughput"))),
        ("Latency percentiles per mode", charts.latency(rows, chart("latency"))),
        ("Throughput against users", charts.sweep(rows, "users", "users", chart("users"))),
        ("Throughput against the CPU limit", charts.sweep(rows, "cpus", "CPUS", chart("cpus"))),
        ("Timeline, io workload (the post's figures 1–4)", charts.timeline(rows, folder, "io", chart("timeline-io"))),
        ("Timeline, cpu workload", charts.timeline(rows, folder, "cpu", chart("timeline-cpu"))),
        ("Latency in a mix, io and cpu requests apart", charts.mix_latency(rows, chart("mix-latency"))),
        ("Timeline, mix (io requests held up behind cpu requests)", charts.timeline(rows, folder, "mix", chart("timeline-mix"))),
    )  # fmt: skip
    return [(title, path) for title, path in drawn if path is not None]


def sections_of(folder: Path, records: list[RunRecord], manifest: Manifest | None) -> Report:
    """Everything the report says, built once from the records; `markdown` and `page` only render it."""
    name = (manifest.name if manifest else "") or records[0].experiment
    title, intro = f"Concurrency lab report: {name}", manifest.description if manifest else ""
    budget_s = manifest.budget_s if manifest else None
    found = capacities(records, folder)
    closed = [r for r in records if not r.capacity_step]
    if not closed:  # a capacity search alone
        return Report(title, intro, capacity_sections(folder, found, budget_s))
    rows = rows_of(closed, intervals.machine_spread(ResultsFolder(folder).interpreter))
    warnings = [words.bounded_warning(what, len(bounded)) for what in ("the load generator", "the machine")
                if (bounded := [r for r in rows if r.ok and r.bounded_by == what])]  # fmt: skip
    if failed := [r for r in rows if not r.ok]:
        warnings.append(words.failed_warning(len(failed)))
    sections = [Section("Conclusions", bullets=words.conclusions(rows), warnings=warnings)]
    if picks := words.advice(rows):
        sections.append(Section("Which to pick", bullets=picks))
    kind = manifest.interface if manifest else None  # an app's runs (APP=): its servers, not the currency app's frameworks
    modes = [f"`{m}`: {app_summary(m, kind) if kind else MODES[m].summary}" for m in MODES if any(r.mode == m for r in rows)]
    sections.append(Section("Modes compared", bullets=modes))
    runs = [tables.runs(rows), tables.cpu(rows), *filter(None, [tables.kinds(rows)])]
    sections.append(Section("Runs: measured and predicted", paragraphs=[words.THEORY], tables=runs))
    if parts := time_parts.table(rows):
        drawn = time_parts.chart(rows, ResultsFolder(folder).chart("time-parts"))
        sections.append(Section("Where the time went", paragraphs=[time_parts.INTRO], tables=[parts],
                                images=[("Each run's mean latency in its parts", drawn)] if drawn else []))  # fmt: skip
    if pairs := parity(rows):
        sections.append(Section("The same runs on both backends", paragraphs=[words.PARITY], tables=[tables.parity(pairs)]))
    sections.append(Section("Charts", images=_charts(folder, rows)))
    if checks := quick_checks(closed, _demos(folder)):
        sections.append(Section("The post's quick check: two concurrent requests", paragraphs=[words.QUICK],
                                tables=[tables.quick(checks)]))  # fmt: skip
    sections.append(Section("Machine", paragraphs=words.machine(closed)))
    sections += capacity_sections(folder, found, budget_s) if found else []
    return Report(title, intro, sections)


def build(folder: Path) -> Path:
    folder = folder.resolve()
    if not folder.is_dir():
        raise RecordError(f"{folder} is not a results folder: run `make bench` first, or pass RESULTS=<folder>")
    if comparison := read_comparison(folder):  # a `make compare` folder: BASE and NEW side by side
        return _written(folder, compared.sections(folder, comparison))
    records = read_records(folder)
    if not records:
        raise RecordError(f"{folder} has no run records yet: run `make bench` first")
    report = sections_of(folder, records, read_manifest(folder))
    if decided := deploy.read(folder):  # an app's decision first; it replaces the picks that judge one workload alone
        kept = [s for s in report.sections if s.title not in SUPERSEDED]
        report = replace(report, sections=[*deploy_words.sections(*decided), *kept])
    return _written(folder, report)


def _written(folder: Path, report: Report) -> Path:
    files = ResultsFolder(folder)
    write_atomic(files.report_md, markdown(report))
    write_atomic(files.report_html, page(report))
    return files.report_html
