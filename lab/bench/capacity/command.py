"""`make capacity`: the highest arrival rate a configuration holds while p95 latency stays at or under
a target (SLO_P95_MS) and fewer than 1% of requests fail, with requests arriving at a set rate
whatever the replies (open arrivals, Poisson or evenly spaced: ARRIVALS; latency counted from each
arrival's intended start). One search per configuration (steps.py), within a time budget if one is set.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from contract.knobs import Knobs, choice_setting, int_setting
from lab.analysis.timespan import duration
from lab.bench.capacity.rates import MAX_WINDOW_S, MIN_WINDOW_S
from lab.bench.capacity.steps import MAX_WINDOWS, STEP_OVERHEAD, search
from lab.bench.capacity.words import found_in_words
from lab.bench.run import opened
from lab.bench.step_judge import MAX_FAILURES
from lab.results.experiments import Experiment, RunConfig
from lab.results.folder import ResultsFolder, link_latest, new_folder, shown, write_json
from lab.results.manifest import FolderKind, Manifest, write_manifest
from lab.results.record import CapacityFound, Configuration, now
from lab.stack.place import Place


def longest(configs: list[RunConfig], max_steps: int) -> float:
    """The longest the searches can take without a budget: every step at its longest windows."""
    return sum(max_steps * MAX_WINDOWS * (c.warmup + MAX_WINDOW_S + STEP_OVERHEAD) for c in configs)


def share(budget_s: float, spent_s: float, searches_left: int) -> float:
    """A search's share of a time budget: an even part of what is left, so that a quick search leaves
    its rest to the ones after it."""
    return max(0.0, budget_s - spent_s) / searches_left


def run_capacity(configs: list[RunConfig], slo_ms: float, *, name: str = "capacity", max_steps: int = 8,
                 backend_name: str = "native", place: Place | None = None, budget_s: float | None = None) -> Path:  # fmt: skip
    place = place or Place()
    folder = new_folder(name)
    link_latest(folder)
    limit = (f"within its time budget of {duration(budget_s)} (a search stops before a step that would overrun an even "
             f"share of what is left)" if budget_s else f"at most {duration(longest(configs, max_steps))}")  # fmt: skip
    print(f"capacity: {len(configs)} configuration(s), p95 target {slo_ms:g} ms, failures under {MAX_FAILURES:.0%}; "
          f"at most {max_steps} steps each, each one or two windows of {MIN_WINDOW_S:g} to {MAX_WINDOW_S:g} s; "
          f"{limit}. Results in {shown(folder)}", flush=True)  # fmt: skip
    write_manifest(folder, Manifest(name, FolderKind.CAPACITY, now(), slo_p95_ms=slo_ms, budget_s=budget_s,
                                    runs=tuple(Configuration.of(c) for c in configs)))  # fmt: skip
    found: list[CapacityFound] = []
    started = time.monotonic()
    with opened(place, configs, backend_name, folder, f"make capacity ({name})") as (where, state_hook):
        for i, config in enumerate(configs):
            part = share(budget_s, time.monotonic() - started, len(configs) - i) if budget_s else None
            found.append(search(config, slo_ms, max_steps, folder, where, state_hook, 1 + sum(f.runs for f in found), part))
            write_json(ResultsFolder(folder).capacity, found)
    took = time.monotonic() - started
    print("capacity: the range of offered rates the target held at, beside the lab's prediction and the model's saturation:")
    for f in found:
        print(f"  - {f.label} · {f.workload} · CPUS={f.cpus:g} · {f.arrivals}: {f.capacity}; " + found_in_words(f))
        if f.contradiction:
            print(f"    CONTRADICTION: {f.contradiction}")
    within = f", {'within' if took <= budget_s else 'OVER'} its budget of {duration(budget_s)}" if budget_s else ""
    print(f"capacity: {len(found)} search(es) took {duration(took)}{within}", flush=True)
    return folder


def configurations(experiment: Experiment | None, knobs: Knobs) -> tuple[list[RunConfig], float]:
    """`make capacity`'s configurations: an experiment's runs (its slo_p95_ms, else SLO_P95_MS; its
    arrivals, else ARRIVALS), or the one configuration of the knobs in the environment."""
    slo = float(int_setting("SLO_P95_MS"))
    arrivals = choice_setting("ARRIVALS")
    if experiment is None:
        return [RunConfig(knobs, warmup=1.0, run_time=MIN_WINDOW_S, arrivals=arrivals)], slo
    source = experiment.source
    if "arrivals" not in source and not any("arrivals" in m for m in source.get("matrix", [])):
        return [replace(run, arrivals=arrivals) for run in experiment.runs], float(source.get("slo_p95_ms", slo))
    return experiment.runs, float(source.get("slo_p95_ms", slo))
