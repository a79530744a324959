"""`make compare BASE=... NEW=...` and the thresholds at the end of `make bench` and `make capacity`: the folders
read, the judgement printed and written, the exit code returned."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from contract.knobs import compare_settings
from lab.bench.run import link_latest, now, results_folder
from lab.compare import render, words
from lab.compare.comparison import Comparison, Settings, compared
from lab.compare.folders import read_side
from lab.compare.gate import outcome
from lab.compare.thresholds import judged
from lab.results.run_files import write_atomic
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
    folder = results_folder("compare", resume=False)
    link_latest(folder)
    text = render.markdown(found)
    write_atomic(folder / "compare.md", text)
    write_atomic(folder / "compare.json", json.dumps(render.as_json(found), indent=2))
    manifest = {"name": folder.name, "kind": "compare", "base": base, "new": new, "started_at": now()}
    write_atomic(folder / "experiment.json", json.dumps(manifest, indent=2))
    print(text)
    print(f"compare: {folder / 'compare.md'} (for a pull request) and compare.json beside it", flush=True)
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
