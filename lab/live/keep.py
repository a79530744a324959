"""Keep a run: the window since Locust's statistics were last reset (after the ramp-up) written as the
run record `make bench` writes, verification included, into a results folder of its own, so that
`make report RESULTS=<folder>` sets the kept runs side by side."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from contract.endpoint import TIMELINE_COLUMNS
from contract.knobs import Knobs, int_setting
from lab.bench.checks import failure, findings, judged
from lab.bench.measure import locust_stats  # the bench's own reading of Locust's entries: the same figures
from lab.live.window import Sample, measured
from lab.results import request_timeline
from lab.results.experiments import RunConfig
from lab.results.folder import ResultsFolder, write_atomic, write_csv
from lab.results.manifest import FolderKind, Manifest, write_manifest
from lab.results.record import Configuration, LimitApplied, LocustError, ModelCounts, RunRecord, Verification, now
from lab.results.run_files import write_record, write_summary
from lab.stack.locust_api import Window
from lab.stack.machine import describe

DESCRIPTION = "Runs kept from the Lab page of `make up`: each the window since Locust's statistics were reset, after the ramp-up."


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


def keep(folder: Path, knobs: Knobs, window: Window, first: Sample, last: Sample, where: Where,
         verification: Verification) -> Kept:  # fmt: skip
    """The run record of the window from `first` (the sample at its reset) to `last`, written in `folder`."""
    if window["start"] is None:
        raise ValueError("no measured window")
    seconds = window["now"] - window["start"]
    run = replace(knobs, users=window["user_count"], run_time=f"{math.ceil(window['ramp_seconds'] + seconds)}s")
    config = RunConfig(run, round(window["ramp_seconds"], 3), round(seconds, 3), locust_processes=window["processes"])
    files = ResultsFolder(folder)
    index = len(files.records()) + 1
    kept = files.locust(config.id, index)
    write_atomic(kept.stats, json.dumps(window["entries"]))
    errors = sorted(window["errors"], key=lambda e: -int(e.get("occurrences", 0)))[:5]
    locust = replace(locust_stats(kept.stats, seconds),
                     errors=tuple(LocustError(str(e.get("error")), int(e.get("occurrences", 0))) for e in errors))  # fmt: skip
    timeline = None
    if window["rows"]:
        write_csv(kept.timeline, TIMELINE_COLUMNS, window["rows"])
        timeline = request_timeline.summary(kept.timeline, files.relative(kept.timeline))
    result = measured(first, last, locust, processes=window["processes"], warned=window["cpu_warned"], timeline=timeline)
    model = ModelCounts(*run.capacity(int_setting("DB_POOL_SIZE")))
    found = findings(config, result, model.processes)
    reason = None if verification.ok else f"verification failed: {verification.detail}"
    # begun and judged as the bench's runs are; its total is the count kept so far, its start its window's
    begun = RunRecord.begun(experiment=folder.name, index=index, total=index, config=Configuration.of(config),
                            backend=where.backend, machine=describe(where.postgres), started_at=where.started_at,
                            model=model)  # fmt: skip
    record = judged(replace(begun, finished_at=now(), cpu_limit=where.limit, verification=verification, measured=result,
                            where={}), found, reason or failure(result))  # fmt: skip
    path = write_record(folder, record)
    write_summary(folder)
    if not files.manifest.exists():  # the first kept run's
        write_manifest(folder, Manifest(folder.name, FolderKind.KEPT, where.started_at, DESCRIPTION,
                                        backends=(where.backend,)))  # fmt: skip
    return Kept(path, record)
