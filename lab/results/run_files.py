"""Run records on disk: one JSON file per run in runs/, written before the next run starts, and
summary.csv from them.

Reports are built from these files alone. `read_records` reads each through lab.results.record, and names
the file, and the field, of a record it cannot read.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from contract.knobs import REQUEST_WORKLOADS
from lab.results.folder import RecordError, ResultsFolder, write_atomic
from lab.results.record import RECORDED_KNOBS, RunRecord, knob_values, read_record, record_json
from lab.results.typedjson import JsonError

# What to do about a record that cannot be read (a truncated copy, an edit gone wrong).
SET_ASIDE = "move it out of the runs/ folder (RESUME=1 measures that run again) or restore it from a copy"


def write_record(folder: Path, record: RunRecord) -> Path:
    path = ResultsFolder(folder).record(record.index, record.config.id)
    write_atomic(path, json.dumps(record_json(record), indent=2))
    return path


def _read_all(folder: Path) -> list[tuple[dict[str, Any], RunRecord]]:
    files = ResultsFolder(folder)
    if not files.runs.is_dir():
        raise RecordError(f"{folder} holds no run records (no {files.runs.name}/ folder): is it a results folder of "
                          "`make bench`?")  # fmt: skip
    found = []
    for path in files.records():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise RecordError(f"{path}: not a readable run record ({error}); {SET_ASIDE}") from None
        try:
            found.append((data, read_record(data)))
        except JsonError as error:
            raise RecordError(f"{path}: {error}; {SET_ASIDE}") from None
    return found


def read_records(folder: Path) -> list[RunRecord]:
    """Every record of a results folder, in their order."""
    return [record for _, record in _read_all(folder)]


def load_records(folder: Path) -> list[dict[str, Any]]:
    """Every record's JSON as written, once it reads as a record: for tests and tools that look at the files."""
    return [data for data, _ in _read_all(folder)]


def recorded_ids(folder: Path) -> set[str]:
    """The runs a resumed experiment skips: every recorded one but those whose backend went away."""
    if not ResultsFolder(folder).runs.is_dir():
        return set()
    return {r.config.id for r in read_records(folder) if not r.measure_again}


# ---------------------------------------------------------------- summary.csv

# The configuration and statistics a summary row shows, in its order.
CONFIG_COLUMNS = tuple(name.lower() for name in RECORDED_KNOBS)
LOCUST_COLUMNS = ("requests", "failures", "rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
KIND_FIELDS = ("requests", "rps", "p50_ms", "p95_ms", "p99_ms")  # io and cpu apart: io_requests, ..., cpu_p99_ms
KIND_COLUMNS = tuple(f"{kind}_{c}" for kind in REQUEST_WORKLOADS for c in KIND_FIELDS)
OPEN_FIELDS = ("rate", "offered_rps", "sent_rps", "late", "dropped", "p95_ms")  # open arrivals: open_rate, ...
OPEN_COLUMNS = tuple(f"open_{f}" for f in OPEN_FIELDS)
# each figure's 95% interval from the run's own samples (lab.analysis.intervals): <figure>_low, <figure>_high
INTERVAL_FIGURES = ("rps", "p50_ms", "p95_ms", "p99_ms")
INTERVAL_COLUMNS = tuple(f"{figure}_{side}" for figure in INTERVAL_FIGURES for side in ("low", "high"))
SUMMARY_COLUMNS = ("index", "id", "status", *CONFIG_COLUMNS, *LOCUST_COLUMNS, *KIND_COLUMNS, "server_cpu_seconds",
                   "server_cpu_ms_per_request", "throttled_seconds", "load_generator_utilisation",
                   "outside_handler_p50_ms", "machine_idle_share", "wrk_rps", "locust_to_wrk", *OPEN_COLUMNS,
                   "bounded_by_load_generator", "bounded_by_machine", "backend", "cpu_limit_method", "reason", "repeat",
                   *INTERVAL_COLUMNS)  # fmt: skip


def _fields(part: object, names: tuple[str, ...], prefix: str = "") -> dict[str, object]:
    """The named fields of a record's part (None for a part the run lacks), as summary columns."""
    return {prefix + name: None if part is None else getattr(part, name) for name in names}


def summary_row(record: RunRecord) -> dict[str, object]:
    m = record.measured
    locust, server = (m.locust, m.server) if m else (None, None)
    per_request = server.cpu_seconds_per_request if server else None
    outside = m.timeline.outside_handler_ms if m and m.timeline else None
    calibration = record.calibration
    kinds = locust.by_workload if locust else {}
    return {
        "index": record.index,
        "id": record.config.id,
        "status": record.status,
        **knob_values(record.config.knobs),
        **_fields(locust, LOCUST_COLUMNS),
        **{column: value for kind, stats in kinds.items() for column, value in _fields(stats, KIND_FIELDS, f"{kind}_").items()},
        "server_cpu_seconds": server.cpu_seconds if server else None,
        "server_cpu_ms_per_request": None if per_request is None else round(per_request * 1000, 3),
        "throttled_seconds": server.throttled_seconds if server else None,
        "load_generator_utilisation": m.load_generator.utilisation if m else None,
        "outside_handler_p50_ms": outside.p50 if outside else None,
        "machine_idle_share": m.machine_cpu.idle_share if m and m.machine_cpu else None,
        "wrk_rps": calibration.rps if calibration else None,
        "locust_to_wrk": calibration.locust_ratio if calibration else None,
        **_fields(locust.open if locust else None, OPEN_FIELDS, "open_"),
        "bounded_by_load_generator": record.bounded_by_load_generator,
        "bounded_by_machine": record.bounded_by_machine,
        "backend": record.backend,
        "cpu_limit_method": record.cpu_limit.method if record.cpu_limit else None,
        "reason": record.reason,
        "repeat": record.config.repeat,
        **{
            f"{figure}_{side}": getattr(getattr(record.intervals, figure, None), side, None)
            for figure in INTERVAL_FIGURES
            for side in ("low", "high")
        },
    }


def write_summary(folder: Path) -> Path:
    """summary.csv from the records themselves, so the two cannot disagree."""
    path = ResultsFolder(folder).summary
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    for record in read_records(folder):
        writer.writerow(summary_row(record))
    write_atomic(path, out.getvalue())
    return path
