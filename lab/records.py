"""Run records: one JSON file per run, written before the next run starts, and summary.csv.

Reports are built from these files alone, so a record carries everything needed to trust and
redraw it. `validate` says what a record lacks; `load_records` names the file that is corrupt.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from contract.knobs import KNOBS, REQUEST_WORKLOADS

SCHEMA = 2  # 2: knobs in full, the server's own report, io and cpu apart, the machine's CPU
RUNS = "runs"
# The configuration and statistics a summary row shows, in its order.
# Every knob but RUN_TIME, which a record keeps as the measured seconds beside the warm-up.
CONFIG_COLUMNS = tuple(name.lower() for name in KNOBS if name != "RUN_TIME")
LOCUST_COLUMNS = ("requests", "failures", "rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
# io and cpu requests apart (a mix has both): locust.by_workload[kind], and kind_column in summary.csv
KIND_PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")
# open arrivals (capacity steps): locust.open[...], open_... in summary.csv
OPEN_FIELDS = ("rate", "offered_rps", "sent_rps", "late", "dropped", "p95_ms")
OPEN_COLUMNS = tuple(f"open_{f}" for f in OPEN_FIELDS)
KIND_FIELDS = ("requests", "rps", *KIND_PERCENTILES)
KIND_COLUMNS = tuple(f"{kind}_{c}" for kind in REQUEST_WORKLOADS for c in KIND_FIELDS)
# Fields every record has (None where a failed run could not measure them).
REQUIRED: dict[str, tuple[str, ...]] = {
    "": ("schema", "experiment", "index", "total", "config", "status", "reason", "started_at", "finished_at", "backend",
         "cpu_limit", "machine", "model", "verification", "locust", "server", "load_generator",
         "bounded_by_load_generator", "warnings", "timeline"),
    "config": ("id", "mode", "workload", "cpus", "users", "io_seconds", "warmup", "run_time"),
    "cpu_limit": ("cpus", "method", "enforced"),
    "model": ("in_flight", "processes"),
    "locust": (*LOCUST_COLUMNS, "failure_ratio", "measured_seconds"),
    "server": ("cpu_seconds", "cpu_seconds_per_request", "nr_throttled", "throttled_seconds"),
    "load_generator": ("cpu_seconds", "processes", "utilisation"),
}  # fmt: skip
SUMMARY_COLUMNS = ("index", "id", "status", *CONFIG_COLUMNS, *LOCUST_COLUMNS, *KIND_COLUMNS, "server_cpu_seconds",
                   "server_cpu_ms_per_request", "throttled_seconds", "load_generator_utilisation",
                   "outside_handler_p50_ms", "machine_idle_share", "wrk_rps", "locust_to_wrk", *OPEN_COLUMNS,
                   "bounded_by_load_generator",
                   "bounded_by_machine", "backend",
                   "cpu_limit_method", "reason")  # fmt: skip


# What to do about a record that cannot be read (a truncated copy, an edit gone wrong).
SET_ASIDE = "move it out of the runs/ folder (RESUME=1 measures that run again) or restore it from a copy"


class RecordError(ValueError):
    """A record that cannot be read or lacks fields; the message names the file."""


def validate(record: dict[str, Any]) -> list[str]:
    missing = []
    for section, fields in REQUIRED.items():
        holder = record if not section else record.get(section)
        if section and holder is None and record.get("status") == "failed":
            continue  # a failed run may not have reached this part
        if not isinstance(holder, dict):
            missing.append(section)
            continue
        missing += [f"{section}.{f}" if section else f for f in fields if f not in holder]
    return missing


def write_atomic(path: Path, text: str) -> None:
    """A file on disk whole, or not at all: a full disk or a killed lab never leaves half of one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RecordError(f"could not write {path}: {error.strerror or error}") from None


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    runs = folder / RUNS
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RecordError(f"could not make {runs}: {error.strerror or error}") from None
    path = runs / f"{record['index']:03d}-{record['config']['id']}.json"
    write_atomic(path, json.dumps(record, indent=2))
    return path


def load_records(folder: Path) -> list[dict[str, Any]]:
    if not (folder / RUNS).is_dir():
        raise RecordError(f"{folder} holds no run records (no {RUNS}/ folder): is it a results folder of `make bench`?")
    records = []
    for path in sorted((folder / RUNS).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise RecordError(f"{path}: not a readable run record ({error}); {SET_ASIDE}") from None
        missing = validate(record) if isinstance(record, dict) else ["(not a JSON object)"]
        if missing:
            raise RecordError(f"{path}: run record lacks {', '.join(missing)}; {SET_ASIDE}")
        record["_file"] = path.name
        records.append(record)
    return records


def recorded_ids(folder: Path) -> set[str]:
    """The runs a resumed experiment skips: every recorded one but those whose backend went away."""
    if not (folder / RUNS).is_dir():
        return set()
    return {r["config"]["id"] for r in load_records(folder) if not r.get("measure_again")}


def summary_row(record: dict[str, Any]) -> dict[str, Any]:
    config, locust = record["config"], record.get("locust") or {}
    server, loadgen = record.get("server") or {}, record.get("load_generator") or {}
    per_request = server.get("cpu_seconds_per_request")
    return {
        "index": record["index"],
        "id": config["id"],
        "status": record["status"],
        **{k: config.get(k) for k in CONFIG_COLUMNS},
        **{k: locust.get(k) for k in LOCUST_COLUMNS},
        **{f"{kind}_{c}": stats.get(c) for kind, stats in locust.get("by_workload", {}).items() for c in KIND_FIELDS},
        "server_cpu_seconds": server.get("cpu_seconds"),
        "server_cpu_ms_per_request": None if per_request is None else round(per_request * 1000, 3),
        "throttled_seconds": server.get("throttled_seconds"),
        "load_generator_utilisation": loadgen.get("utilisation"),
        "outside_handler_p50_ms": ((record.get("timeline") or {}).get("outside_handler_ms") or {}).get("p50"),
        "machine_idle_share": (record.get("machine_cpu") or {}).get("idle_share"),
        **{f"open_{f}": (locust.get("open") or {}).get(f) for f in OPEN_FIELDS},
        "wrk_rps": (record.get("calibration") or {}).get("rps"),
        "locust_to_wrk": (record.get("calibration") or {}).get("locust_ratio"),
        "bounded_by_load_generator": record["bounded_by_load_generator"],
        "bounded_by_machine": record.get("bounded_by_machine", False),
        "backend": record["backend"],
        "cpu_limit_method": (record.get("cpu_limit") or {}).get("method"),
        "reason": record["reason"],
    }


def write_summary(folder: Path) -> Path:
    """summary.csv from the records themselves, so the two cannot disagree."""
    path = folder / "summary.csv"
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    for record in load_records(folder):
        writer.writerow(summary_row(record))
    write_atomic(path, out.getvalue())
    return path
