"""A comparison as Markdown fit for a pull-request comment (compare.md), and as JSON for machines (compare.json)."""

from __future__ import annotations

import math

from lab.compare import words
from lab.compare.comparison import Compared, Comparison
from lab.compare.difference import Change
from lab.compare.thresholds import Judged
from lab.results.typedjson import write


def markdown(c: Comparison) -> str:
    mark = f" {words.MACHINE_MARK}" if c.machine else ""
    lines = [
        "### Performance: NEW against BASE",
        "",
        words.header(c),
        "",
        f"**{words.gate(c)}**",
        "",
    ]  # fmt: skip
    if c.machine:
        lines += [words.machine(c.machine), ""]
    for row in c.compared:
        lines += _table(row, mark)
    for side, missing in (("BASE", c.only_base), ("NEW", c.only_new)):
        if missing:
            names = "; ".join(words.configuration(m) for m in missing)
            lines += [f"Only in {side}, not compared: {names}", ""]
    if c.thresholds:
        lines += _thresholds(c.thresholds)
    lines += [f"<sub>{words.rule(c.settings.min_change)}</sub>", ""]
    return "\n".join(lines)


def _table(row: Compared, mark: str) -> list[str]:
    lines = [f"#### {words.heading(row.base, row.new)}", ""]
    if row.across:
        lines += [f"The question: {words.across(row.base, row.new, row.across)}.", ""]
    failed = [f"{side}'s runs failed: {c.failed}" for side, c in (("BASE", row.base), ("NEW", row.new)) if c.failed]
    if failed:
        return [*lines, "; ".join(failed) + ": nothing to compare.", ""]
    lines += [f"{words.runs(row.base).capitalize()} in BASE, {words.runs(row.new)} in NEW.", "",
              "| figure | base | new | change (95% interval) | verdict |", "|---|---|---|---|---|"]  # fmt: skip
    lines += ["| " + " | ".join(cells(x, mark)) + " |" for x in row.changes]
    return [*lines, ""]


def cells(x: Change, mark: str = "") -> list[str]:
    """One figure's row of a configuration's table: its name, both sides, the change and the verdict."""
    return [words.NAMES[x.figure], words.value(x.figure, x.base.estimate), words.value(x.figure, x.new.estimate),
            words.change(x), f"{words.verdict(x)}{mark}"]  # fmt: skip


def read_back(data: object) -> object:
    """compare.json as `as_json` wrote it, with each open side of an interval unbounded again, for typedjson.read."""
    if isinstance(data, dict):
        if {"estimate", "low", "high"} <= data.keys():
            data = {**data, "low": -math.inf if data["low"] is None else data["low"],
                    "high": math.inf if data["high"] is None else data["high"]}  # fmt: skip
        return {k: read_back(v) for k, v in data.items()}
    if isinstance(data, list):
        return [read_back(v) for v in data]
    return data


def _thresholds(judged: tuple[Judged, ...]) -> list[str]:
    lines = ["#### THRESHOLDS on NEW", "", "| threshold | configuration | new (95% interval) | judged |", "|---|---|---|---|"]
    for j in judged:
        shown = words.interval(j.threshold.figure, j.interval) if j.interval else ""
        where = words.named(j.label, j.setup) if j.setup else ""
        lines.append(f"| {words.threshold(j.threshold)} | {where} | {shown} | {words.JUDGEMENTS[j.judgement]} |")
    return [*lines, ""]


def as_json(c: Comparison) -> object:
    """Everything the Markdown says, typed as the comparison holds it; an unbounded side of an interval is null."""
    return _finite({**_object(write(c)), "gate": words.gate(c), "exit": int(c.outcome)})


def _object(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return value


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
