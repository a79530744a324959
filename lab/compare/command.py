"""`make compare BASE=... NEW=...` and the thresholds at the end of `make bench` and `make capacity`: the folders
read, the judgement printed and written, the exit code returned."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from contract.knobs import compare_settings
from lab.compare import render, words
from lab.compare.comparison import Comparison, Settings, compared
from lab.compare.folders import read_side
from lab.compare.gate import outcome
from lab.compare.thresholds import judged
from lab.results.folder import ResultsFolder, link_latest, new_folder, write_atomic, write_json
from lab.results.manifest import FolderKind, Manifest, write_manifest
from lab.results.record import now
from lab.stack.procs import LabError


class RefusedError(LabError):
    """The folders cannot be compared: the message says why, in one line (the lab exits 2)."""


def compare_folders(base: str, new: str, env: Mapping[str, str] = os.environ) -> int:
    """Compare NEW with BASE into a results folder of its own (compare-<time>, and results/latest); the exit
    code is the gate's with GATE=1, else 0."""
    settings = Settings.of(compare_settings(env))
    found = compared(read_side(Path(base), "BASE"), read_side(Path(new), "NEW"), settings)
    if not isinstance(found, Comparison):
        raise RefusedError(words.refusal(found))
    folder = new_folder("compare")
    link_latest(folder)
    files = ResultsFolder(folder)
    text = render.markdown(found)
    write_atomic(files.compare_md, text)
    write_json(files.compare_json, render.as_json(found))
    write_manifest(folder, Manifest(folder.name, FolderKind.COMPARE, now(), base=base, new=new))
    print(text)
    print(f"compare: {files.compare_md} (for a pull request) and {files.compare_json.name} beside it", flush=True)
    return int(found.outcome) if settings.gate else 0


def judge_thresholds(folder: Path, env: Mapping[str, str] = os.environ) -> int:
    """THRESHOLDS on a folder `make bench` or `make capacity` just wrote: 0 when none is broken (or none is set),
    1 when one is, 3 when one is unsure and GATE_UNSURE=fail."""
    settings = Settings.of(compare_settings(env))
    if not settings.thresholds:
        return 0
    side = read_side(folder, "RESULTS")
    limits = judged(settings.thresholds, [g for g in side.groups if g.failed is None])
    print("thresholds (judged on each figure's 95% interval):")
    print("\n".join(f"  - {words.judged(j)}" for j in limits), flush=True)
    return int(outcome((), limits, unsure_fails=settings.unsure_fails))
