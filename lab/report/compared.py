"""A comparison folder's report (`make report` after `make compare`): the verdict, and for each configuration BASE
and NEW side by side, in a table and a chart of every figure with each side's 95% interval."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lab.compare import words
from lab.compare.comparison import Compared, Comparison
from lab.compare.figures import Figure
from lab.compare.render import cells, read_back
from lab.report import charts
from lab.report.document import Report, Section, Table
from lab.results.folder import RecordError, ResultsFolder
from lab.results.typedjson import JsonError, read

COLUMNS = ("figure", "base", "new", "change (95% interval)", "verdict")
SIDE_BY_SIDE = "BASE and NEW side by side, each with its 95% interval"
SIDES = (("BASE", "#9AA5B1"), ("NEW", "#4C72B0"))


def read_comparison(folder: Path) -> Comparison | None:
    """The comparison a `make compare` folder keeps, or None where the folder is not one."""
    path = ResultsFolder(folder).compare_json
    if not path.exists():
        return None
    try:
        return read(Comparison, read_back(json.loads(path.read_text())))
    except (ValueError, JsonError) as error:
        raise RecordError(f"{path}: not a readable comparison ({error})") from None


def chart(row: Compared, path: Path) -> Path | None:
    """Each figure of one configuration, BASE and NEW side by side as a share of BASE's estimate, each with its own
    95% interval: a bar that stands clear of the other's whiskers moved by more than the noise."""
    shown = [x for x in row.changes if not x.figure.in_points and x.base.estimate > 0]
    if not shown:
        return None
    fig, ax = charts.plt.subplots(figsize=(1.5 + 1.3 * len(shown), 3.4))
    width = 0.38
    for side, (name, colour) in enumerate(SIDES):
        for i, x in enumerate(shown):
            reading = x.base if side == 0 else x.new
            scale = 100 / x.base.estimate
            low, high = (reading.low * scale, reading.high * scale)
            mid = reading.estimate * scale
            err = [[mid - low if math.isfinite(low) else 0], [high - mid if math.isfinite(high) else 0]]
            ax.bar(i + (side - 0.5) * width, mid, width, color=colour, label=name if i == 0 else None)
            ax.errorbar(i + (side - 0.5) * width, mid, yerr=err, color="black", capsize=3, linewidth=1)
    ax.axhline(100, color="black", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(shown)), [words.NAMES[x.figure] for x in shown], fontsize=8)
    ax.set_ylabel("% of BASE's estimate")
    better = ", ".join(words.NAMES[f] for f in Figure if f.higher_is_better and any(x.figure is f for x in shown))
    ax.set_title(f"{row.new.label}: NEW against BASE (higher is better for {better or 'none shown'}; lower for the rest)",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return charts.save(fig, path)


def sections(folder: Path, c: Comparison) -> Report:
    mark = f" {words.MACHINE_MARK}" if c.machine else ""
    verdict = Section("Verdict", paragraphs=[words.gate(c), words.rule(c.settings.min_change)],
                      warnings=[words.machine(c.machine)] if c.machine else [])  # fmt: skip
    out = [verdict]
    for n, row in enumerate(c.compared, 1):
        title = words.heading(row.base, row.new)
        failed = [f"{side}'s runs failed: {x.failed}" for side, x in (("BASE", row.base), ("NEW", row.new)) if x.failed]
        if failed:
            out.append(Section(title, paragraphs=["; ".join(failed) + ": nothing to compare."]))
            continue
        said = [f"The question: {words.across(row.base, row.new, row.across)}."] if row.across else []
        said.append(f"{words.runs(row.base).capitalize()} in BASE, {words.runs(row.new)} in NEW.")
        drawn = chart(row, ResultsFolder(folder).chart(f"compare-{n}"))
        out.append(Section(title, paragraphs=said, tables=[Table(COLUMNS, [cells(x, mark) for x in row.changes])],
                           images=[(SIDE_BY_SIDE, drawn)] if drawn else []))  # fmt: skip
    for side, missing in (("BASE", c.only_base), ("NEW", c.only_new)):
        if missing:
            out.append(Section(f"Only in {side}, not compared", bullets=[words.configuration(m) for m in missing]))
    if c.thresholds:
        out.append(Section("THRESHOLDS on NEW", bullets=[words.judged(j) for j in c.thresholds]))
    return Report("Performance: NEW against BASE", words.header(c), out)
