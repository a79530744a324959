"""A results folder's manifest (experiment.json): what made the folder and what it set out to do, in one type
read and written through lab.results.typedjson, whichever command wrote it.

Every writer (the bench, a capacity search, a decision, runs kept from the Lab page, a comparison) fills in
the fields it knows; the others stay at their default. Manifests written before `kind` was said everywhere
read as the kind their folder shows (`default_kind`); their other keys are the ones written today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from lab.results.folder import RecordError, ResultsFolder, write_json
from lab.results.record import Configuration, labelled
from lab.results.typedjson import JsonError, read
from lab.stack.machine import Machine


class FolderKind(Enum):
    EXPERIMENT = "experiment"  # `make bench EXPERIMENT=...`
    CAPACITY = "capacity"  # `make capacity`
    DECISION = "decision"  # `make bench APP=...`: how to serve an app
    KEPT = "kept"  # runs kept from the Lab page of `make up`
    COMPARE = "compare"  # `make compare`: a comparison, no runs of its own


@dataclass(frozen=True)
class Manifest:
    name: str  # the experiment's, or the folder's own (kept runs, a comparison)
    kind: FolderKind
    started_at: str | None = None
    description: str = ""
    definition: dict[str, object] | None = None  # an experiment's TOML, as read
    runs: tuple[Configuration, ...] = ()  # the configurations it set out to run, as their records keep them
    backends: tuple[str, ...] = ()
    machine: Machine | None = None
    app: str | None = None  # APP=package.module:callable, where an app was measured
    interface: str | None = None  # its interface: wsgi or asgi
    paths: str | None = None  # a decision's PATHS, as given
    slo_p95_ms: float | None = None  # a capacity search's target
    budget_s: float | None = None  # the time a capacity search promised to fit in
    base: str | None = None  # a comparison's folders, as given
    new: str | None = None


def write_manifest(folder: Path, manifest: Manifest) -> None:
    write_json(ResultsFolder(folder).manifest, manifest)


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None for a folder without one; RecordError names what cannot be read."""
    path = ResultsFolder(folder).manifest
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: not readable ({error})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not a JSON object")
    if "kind" not in data:
        data = {**data, "kind": default_kind(folder, str(data.get("name") or "")).value}
    if isinstance(data.get("runs"), list):
        data = {**data, "runs": [labelled(run) if isinstance(run, dict) else run for run in data["runs"]]}
    try:
        return read(Manifest, data)
    except JsonError as error:
        raise RecordError(f"{path}: {error}") from None


def default_kind(folder: Path, name: str = "") -> FolderKind:
    """The kind of a folder whose manifest does not say it (the bench's and kept runs' before they did), or that
    has none: what its files and its name show."""
    files = ResultsFolder(folder)
    if files.decision.exists():
        return FolderKind.DECISION
    if files.capacity.exists():
        return FolderKind.CAPACITY
    return FolderKind.KEPT if (name or folder.name).startswith("live-") else FolderKind.EXPERIMENT
