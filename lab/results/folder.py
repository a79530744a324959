"""A results folder, laid out in one place: where the folders live (LAB_RESULTS, else results/ in the checkout),
a new one named for what it holds and when, the `latest` link, the path of every file in one, and writing a
file whole or not at all.

Nothing else builds a path into a results folder. What a file holds is read and written by its own module:
lab.results.run_files (runs/ and summary.csv), lab.results.manifest (experiment.json), lab.results.decision
(decision.json, paths.json).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lab.results.typedjson import write
from lab.stack.checkout import ROOT
from lab.stack.procs import LabError

# Read once: every folder this lab makes is in it. `make demo`, `make report` and the CI example honour it too.
RESULTS = Path(os.environ.get("LAB_RESULTS") or ROOT / "results")
LATEST = "latest"  # the newest folder, what `make report` reads by default
DEMOS = "demos"  # `make demo`'s quick checks, beside the folders


class RecordError(LabError, ValueError):
    """A file of a results folder that cannot be read or written; the message names the file."""


def new_folder(name: str, resume: bool = False) -> Path:
    """A folder for a new `name` (an experiment, capacity, decide-<app>, live, compare), named for it and the time;
    with `resume`, the newest of that name that has begun. Made by link_latest."""
    if resume:
        earlier = sorted(p for p in RESULTS.glob(f"{name}-*") if ResultsFolder(p).manifest.exists())
        if earlier:
            return earlier[-1]
        print(f"bench: nothing to resume for {name}; starting anew")
    return RESULTS / f"{name}-{_stamp()}"


def _stamp() -> str:
    """The local time in a name: names sort in the order they were made."""
    return datetime.now().strftime("%Y%m%dT%H%M%S")


def link_latest(folder: Path) -> None:
    """Make the folder, and point `latest` beside it at it; a `latest` that is not a link is the user's: left."""
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder.parent / LATEST
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(folder.name)


def latest() -> Path:
    return RESULTS / LATEST


def detached_log(name: str) -> Path:
    """Where a detached bench, capacity search or decision writes its progress: beside the folders."""
    return (RESULTS / f"{name}.log").resolve()


def new_demo(mode: str, workload: str) -> Path:
    """Where `make demo` keeps its quick check: demos/ beside the results folders, where the report finds it."""
    return RESULTS / DEMOS / f"demo-{mode}-{workload}-{_stamp()}.json"


def shown(path: Path) -> str:
    """A folder or file of the results as the terminal says it: from the checkout, where it lies in it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def write_atomic(path: Path, text: str) -> None:
    """A file on disk whole, or not at all: a full disk or a killed lab never leaves half of one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RecordError(f"could not write {path}: {error.strerror or error}") from None


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A table as CSV, written whole."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def write_json(path: Path, value: object) -> None:
    """A dataclass (or a list or dict of them, or plain JSON) as typed JSON, written whole."""
    write_atomic(path, json.dumps(write(value), indent=2))


def numbered(index: int, run_id: str) -> str:
    """A run's files' name where runs share an id (repeats of a search's rate, kept runs): its number first."""
    return f"{index:03d}-{run_id}"


@dataclass(frozen=True)
class LocustFiles:
    """Where one run's Locust output goes: locust/ for Locust's own files, timeline/ for the per-request rows."""

    work: Path  # locust/: Locust's statistics, log, measured window, open arrivals (and a remote master's workers)
    name: str  # the run's id, or numbered(index, id)
    timeline: Path

    @property
    def prefix(self) -> Path:
        """Locust's --json-file: it adds .json itself."""
        return self.work / self.name

    @property
    def stats(self) -> Path:
        return self.work / f"{self.name}.json"

    @property
    def window(self) -> Path:
        """Written by Locust as it resets its statistics: the measured window begins."""
        return self.work / f"{self.name}.window.json"

    @property
    def log(self) -> Path:
        return self.work / f"{self.name}.log"

    @property
    def open_arrivals(self) -> Path:
        return self.work / f"{self.name}.open.json"


@dataclass(frozen=True)
class ResultsFolder:
    """The files of one results folder, by what each holds."""

    path: Path

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    def record(self, index: int, run_id: str) -> Path:
        return self.runs / f"{numbered(index, run_id)}.json"

    def records(self) -> list[Path]:
        """The run records there are, in their order (their number leads their name)."""
        return sorted(self.runs.glob("*.json"))

    def locust(self, run_id: str, index: int | None = None) -> LocustFiles:
        """A run's Locust files; with `index`, numbered: runs that share an id keep their files apart."""
        name = run_id if index is None else numbered(index, run_id)
        return LocustFiles(self.path / "locust", name, self.path / "timeline" / f"{name}.csv")

    def file(self, relative: str) -> Path:
        """A file a record names relative to its folder (its timeline)."""
        return self.path / relative

    def relative(self, path: Path) -> str:
        """How a record names a file of its folder: relative, so that the folder can move."""
        return str(path.relative_to(self.path))

    @property
    def summary(self) -> Path:
        return self.path / "summary.csv"

    @property
    def manifest(self) -> Path:
        return self.path / "experiment.json"

    @property
    def interpreter(self) -> Path:
        """The servers' interpreter's speed at the start and the end, per backend."""
        return self.path / "interpreter.json"

    @property
    def capacity(self) -> Path:
        """`make capacity`'s answers, one entry a configuration."""
        return self.path / "capacity.json"

    def capacity_of(self, config_id: str) -> Path:
        """A decision's answer for one candidate."""
        return self.path / "capacity" / f"{config_id}.json"

    def capacities(self) -> list[Path]:
        """A decision's answers, one file a candidate."""
        return sorted((self.path / "capacity").glob("*.json"))

    @property
    def decision(self) -> Path:
        return self.path / "decision.json"

    @property
    def path_figures(self) -> Path:
        """Each path of an app alone at one user (paths.json)."""
        return self.path / "paths.json"

    def path_alone(self, n: int) -> Path:
        """The folder of a decision's n-th path, measured alone: its files are its own."""
        return self.path / "paths" / str(n)

    @property
    def compare_md(self) -> Path:
        return self.path / "compare.md"

    @property
    def compare_json(self) -> Path:
        return self.path / "compare.json"

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    def chart(self, name: str) -> Path:
        return self.path / f"chart-{name}.png"

    def demos(self) -> list[Path]:
        """The quick checks `make demo` recorded, in the folder or beside it."""
        return [path for place in (self.path / DEMOS, self.path.parent / DEMOS) for path in sorted(place.glob("*.json"))]
