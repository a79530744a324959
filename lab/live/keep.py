"""Keep a run: the window since Locust's statistics were last reset (after the ramp-up) written as the
run record `make bench` writes, verification included, into a results folder of its own, so that
`make report RESULTS=<folder>` sets the kept runs side by side."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from contract.endpoint import TIMELINE_COLUMNS
from contract.knobs import Knobs, int_setting
from lab.bench.checks import bounded_by_load_generator, failure, findings, word
from lab.bench.measure import _locust_stats  # the bench's own reading of Locust's entries: the same figures
from lab.live.window import Sample, measured
from lab.results import request_timeline
from lab.results.experiments import RunConfig
from lab.results.record import (
    SCHEMA,
    Configuration,
    LimitApplied,
    LocustError,
    MachineSaturated,
    ModelCounts,
    RunRecord,
    Verification,
)
from lab.results.run_files import RUNS, write_atomic, write_record, write_summary
from lab.stack.checkout import ROOT
from lab.stack.locust_api import Window
from lab.stack.machine import describe

DESCRIPTION = "Runs kept from the Lab page of `make up`: each the window since Locust's statistics were reset, after the ramp-up."


def results_folder() -> Path:
    """A folder of its own per `make up`, beside the bench's (LAB_RESULTS, else results/)."""
    parent = Path(os.environ.get("LAB_RESULTS") or ROOT / "results")
    return parent / f"live-{datetime.now().strftime('%Y%m%dT%H%M%S')}"


@dataclass(frozen=True)
class Kept:
    path: Path
    record: RunRecord

    def summary(self) -> dict[str, object]:
        m = self.record.measured
        return {"file": self.path.name, "label": self.record.config.label, "status": self.record.status,
                "reason": self.record.reason, "rps": m.locust.rps if m else None,
                "p95_ms": m.locust.p95_ms if m else None, "warnings": list(self.record.warnings)}  # fmt: skip


@dataclass(frozen=True)
class Where:
    """What a kept run's record says of where it ran."""

    backend: str
    limit: LimitApplied
    postgres: str | None
    started_at: str


def _write_timeline(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(TIMELINE_COLUMNS)
        writer.writerows(rows)


def keep(folder: Path, knobs: Knobs, window: Window, first: Sample, last: Sample, where: Where,
         verification: Verification) -> Kept:  # fmt: skip
    """The run record of the window from `first` (the sample at its reset) to `last`, written in `folder`."""
    if window["start"] is None:
        raise ValueError("no measured window")
    seconds = window["now"] - window["start"]
    run = replace(knobs, users=window["user_count"], run_time=f"{math.ceil(window['ramp_seconds'] + seconds)}s")
    config = RunConfig(run, round(window["ramp_seconds"], 3), round(seconds, 3), locust_processes=window["processes"])
    index = len(list((folder / RUNS).glob("*.json"))) + 1
    name = f"{index:03d}-{config.id}"
    entries = folder / "locust" / f"{name}.json"
    entries.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(entries, json.dumps(window["entries"]))
    errors = sorted(window["errors"], key=lambda e: -int(e.get("occurrences", 0)))[:5]
    locust = replace(_locust_stats(entries, seconds),
                     errors=tuple(LocustError(str(e.get("error")), int(e.get("occurrences", 0))) for e in errors))  # fmt: skip
    timeline = None
    if window["rows"]:
        csv_path = folder / "timeline" / f"{name}.csv"
        _write_timeline(csv_path, window["rows"])
        timeline = request_timeline.summary(csv_path, str(csv_path.relative_to(folder)))
    result = measured(first, last, locust, processes=window["processes"], warned=window["cpu_warned"], timeline=timeline)
    model = ModelCounts(*run.capacity(int_setting("DB_POOL_SIZE")))
    found = findings(config, result, model.processes)
    checked = verification
    reason = None if checked.ok else f"verification failed: {checked.detail}"
    reason = reason or failure(result)
    record = RunRecord(
        schema=SCHEMA, experiment=folder.name, index=index, total=index, config=Configuration.of(config),
        backend=where.backend, machine=describe(where.postgres), status="failed" if reason else "ok", reason=reason,
        started_at=where.started_at, finished_at=datetime.now(UTC).isoformat(timespec="seconds"), cpu_limit=where.limit,
        model=model, verification=checked, measured=result, bounded_by_load_generator=bounded_by_load_generator(found),
        warnings=tuple(word(f) for f in found), bounded_by_machine=any(isinstance(f, MachineSaturated) for f in found),
        findings=tuple(found), where={},
    )  # fmt: skip
    path = write_record(folder, record)
    write_summary(folder)
    manifest = folder / "experiment.json"
    if not manifest.exists():
        write_atomic(manifest, json.dumps({"name": folder.name, "description": DESCRIPTION, "started_at": where.started_at,
                                           "backends": [where.backend]}, indent=2))  # fmt: skip
    return Kept(path, record)
