"""`make capacity`: the highest arrival rate a configuration holds while p95 latency stays at or under
a target (SLO_P95_MS) and fewer than 1% of requests fail, with requests arriving at a set rate
whatever the replies (open arrivals; latency counted from each arrival's intended start).

A bounded search of short steps, each a run recorded like any other: one low rate first, to learn
the server's CPU per request and so the model's saturation rate; then up from below that rate
until the target breaks, then halving the gap. It ends when the gap is under 5% or the steps run out.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from contract.knobs import int_setting
from lab import ROOT
from lab.backends.native import Place
from lab.bench.run import duration, link_latest, now, opened, results_folder, run_one
from lab.experiments import Experiment, RunConfig
from lab.records import SCHEMA, write_record, write_summary
from lab.report.analysis import saturation

FIRST_RATE = 2.0  # requests/s of the first step: low enough for any mode, to measure D_cpu
START_SHARE = 0.5  # then start at this share of the model's saturation rate
GROWTH = 1.3  # below the target, grow the rate by this much
CLOSE = 1.05  # stop once the rate that broke the target is within 5% of the one that held
MAX_FAILURES = 0.01
SENT_SHARE = 0.95  # a step that sent less than this share of what it offered could not offer the rate
STEP_OVERHEAD = 5.0  # seconds each step adds to its warm-up and measurement (start, check, stop)


def judge_step(record: dict[str, Any], slo_ms: float) -> tuple[bool, str]:
    """Did this rate hold the target? With the reason when it did not."""
    if record["status"] != "ok":
        return False, f"the run failed: {record['reason']}"
    if record.get("bounded_by_load_generator") or record.get("bounded_by_machine"):
        return False, "bounded by the load generator or the machine, not the server"
    arrivals = record["locust"]["open"]
    if arrivals["offered"] and arrivals["sent"] < SENT_SHARE * arrivals["offered"]:
        return False, f"sent {arrivals['sent']} of {arrivals['offered']} arrivals offered: every user was busy"
    if (arrivals["failure_ratio"] or 0) >= MAX_FAILURES:
        return False, f"{arrivals['failure_ratio']:.1%} of requests failed"
    if arrivals["p95_ms"] is None or arrivals["p95_ms"] > slo_ms:
        return False, f"p95 {arrivals['p95_ms']} ms over the target of {slo_ms:g} ms"
    return True, f"p95 {arrivals['p95_ms']:.0f} ms within {slo_ms:g} ms"


def next_rate(steps: list[tuple[float, bool]], model_rate: float | None) -> float | None:
    """The next rate to try, or None when the search is done."""
    held = [rate for rate, ok in steps if ok]
    broke = [rate for rate, ok in steps if not ok]
    if broke and held and min(broke) <= max(held) * CLOSE:
        return None
    if broke and held:
        return round((max(held) + min(broke)) / 2, 2)
    if broke:  # even the lowest rate broke: go lower, but not forever
        return round(min(broke) / 2, 2) if min(broke) > 0.25 else None
    if len(steps) == 1 and model_rate:
        return round(max(steps[0][0] * GROWTH, START_SHARE * model_rate), 2)
    return round(max(held) * GROWTH, 2)


def search(config: RunConfig, slo_ms: float, max_steps: int, folder: Path, where: Any, state_hook: Any,
           first_index: int) -> dict[str, Any]:  # fmt: skip
    """One configuration's capacity: its steps are recorded as runs numbered from `first_index`."""
    backend, info = where(config)
    steps: list[tuple[float, bool]] = []
    model_rate = None
    rate: float | None = FIRST_RATE
    while rate is not None and len(steps) < max_steps:
        step = replace(config, arrival_rate=rate)
        index = first_index + len(steps)
        print(f"[{index}] {step.id}: {rate:g} arrivals/s", flush=True)
        record = run_one(step, backend, folder, state_hook)
        ok, why = judge_step(record, slo_ms)
        held = {"slo_p95_ms": slo_ms, "held": ok, "why": why}
        record.update(schema=SCHEMA, experiment=folder.name, index=index, total=None, config=step.as_dict(),
                      backend=backend.name, machine=info, capacity_step=held)  # fmt: skip
        write_record(folder, record)
        write_summary(folder)
        a = (record.get("locust") or {}).get("open") or {}
        print(f"    {'held' if ok else 'broke'}: {why}; sent {a.get('sent_rps', 0):g}/s of {a.get('offered_rps', 0):g}/s "
              f"offered, {a.get('late', 0)} late, {a.get('dropped', 0)} dropped", flush=True)  # fmt: skip
        model_rate = model_rate or saturation(record)
        steps.append((rate, ok))
        rate = next_rate(steps, model_rate)
    held = [r for r, ok in steps if ok]
    capacity = max(held) if held else None
    return {"id": config.id, "label": config.names.label, "workload": config.workload, "cpus": config.cpus,
            "slo_p95_ms": slo_ms, "capacity_rps": capacity, "model_saturation_rps": model_rate,
            "ratio": round(capacity / model_rate, 3) if capacity and model_rate else None, "steps": len(steps)}  # fmt: skip


def run_capacity(configs: list[RunConfig], slo_ms: float, *, name: str = "capacity", max_steps: int = 8,
                 backend_name: str = "native", place: Place | None = None) -> Path:  # fmt: skip
    place = place or Place()
    folder = results_folder(name, resume=False)
    link_latest(folder)
    budget = sum(max_steps * (c.warmup + c.run_time + STEP_OVERHEAD) for c in configs)
    print(f"capacity: {len(configs)} configuration(s), p95 target {slo_ms:g} ms, failures under {MAX_FAILURES:.0%}; "
          f"at most {max_steps} steps each: at most {duration(budget)}. Results in "
          f"{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}", flush=True)  # fmt: skip
    manifest = {"name": name, "kind": "capacity", "slo_p95_ms": slo_ms, "started_at": now(),
                "runs": [c.as_dict() for c in configs]}  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(manifest, indent=2))
    found = []
    with opened(place, configs, backend_name, folder) as (where, state_hook):
        for config in configs:
            found.append(search(config, slo_ms, max_steps, folder, where, state_hook, 1 + sum(f["steps"] for f in found)))
            (folder / "capacity.json").write_text(json.dumps(found, indent=2))
    print("capacity: the highest arrival rate held at the target, beside the model's saturation rate:")
    for f in found:
        held = "none held" if f["capacity_rps"] is None else f"{f['capacity_rps']:g} req/s"
        model = f"model {f['model_saturation_rps']:.1f} req/s" if f["model_saturation_rps"] else "no model"
        ratio = f", {f['ratio']:.2f} of the model" if f["ratio"] else ""
        print(f"  - {f['label']} · {f['workload']} · CPUS={f['cpus']:g}: {held} ({model}{ratio}; {f['steps']} steps)")
    return folder


def configurations(experiment: Experiment | None, knobs: Any) -> tuple[list[RunConfig], float]:
    """`make capacity`'s configurations: an experiment's runs (its slo_p95_ms, else SLO_P95_MS), or the
    one configuration of the knobs in the environment, with short steps."""
    slo = float(int_setting("SLO_P95_MS"))
    if experiment is None:
        return [RunConfig(knobs, warmup=1.0, run_time=5.0)], slo
    return experiment.runs, float(experiment.source.get("slo_p95_ms", slo))
