"""A finished capacity search summarised from its records alone: capacity.json's entry for each
configuration (the range, where p95 crosses the target, the prediction and the model beside it, and
why the capacity lies apart from its prediction), as the search writes it and as `make capacity
--again` works it out anew.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from lab.analysis.crossing import StepP95, capped, crossing_band
from lab.analysis.latency_parts import grew
from lab.analysis.model import Arrivals
from lab.analysis.stats import Interval
from lab.bench.capacity.prediction import CapacityPrediction, contradiction, cpu_model, predict
from lab.bench.capacity.rates import capacity_range
from lab.results.folder import RecordError, ResultsFolder, write_json
from lab.results.record import CapacityFound, Configuration, DcpuMs, PartsAt, RunRecord, Verdict
from lab.results.run_files import read_records
from lab.results.typedjson import read

DIFFERS = 0.10  # a capacity more than 10% from the prediction is called out
MATERIAL_GROWTH = 0.05  # a part that grew by less than this share of the latency past the capacity names no cause


def parts_at(records: list[RunRecord]) -> tuple[PartsAt | None, PartsAt | None]:
    """Where the time went at the search's lowest step, and at the first step past its capacity (the lowest
    rate that broke; the highest of all where none did): what grew between the two is what broke it. From
    the windows whose timeline has the parts."""
    windows = [
        (PartsAt(r.capacity_step.offered_rps or r.config.arrival_rate, r.measured.timeline.parts), r.capacity_step.broke)
        for r in records
        if r.ok and r.capacity_step and r.measured and r.measured.timeline and r.measured.timeline.parts
    ]
    if not windows:
        return None, None
    low = min((w for w, _ in windows), key=lambda w: w.offered_rps)
    broke = [w for w, broken in windows if broken]
    past = min(broke, key=lambda w: w.offered_rps) if broke else max((w for w, _ in windows), key=lambda w: w.offered_rps)
    return low, (past if past is not low else None)


def growth_cause(low: PartsAt | None, near: PartsAt | None) -> str | None:
    """The part of the latency that grew most from the lowest step to the one near the capacity, in words."""
    if low is None or near is None or (growth := grew(low.parts, near.parts)) is None:
        return None
    if growth.high_ms - growth.low_ms < MATERIAL_GROWTH * near.parts.latency_mean_ms:
        return None
    return (f"{growth.name} grew from {growth.low_ms:.1f} to {growth.high_ms:.1f} ms (mean) between "
            f"{low.offered_rps:.3g} and {near.offered_rps:.3g} arrivals/s, of {near.parts.latency_mean_ms:.1f} ms "
            "in all")  # fmt: skip


def cause_of_difference(
    records: list[RunRecord], measured: float, prediction: CapacityPrediction, grown: str | None = None
) -> str:
    """Why a capacity lies more than 10% from the prediction: the part of each request's latency that grew
    with the load (`grown`), and, for a capacity under its prediction, what can only lower it as the windows
    near it recorded it (CPU contention, the CPU quota, the load generator, time outside the handler, which
    the prediction leaves out); or that the records show no cause."""
    causes = [grown] if grown else []
    if measured >= prediction.capacity_rps:  # what only takes capacity away cannot explain more of it
        return "; ".join(causes) or "no cause in its records"
    near = [r for r in records if r.ok and r.measured and 0.75 * measured <= r.config.arrival_rate <= 1.33 * measured]
    windows = [r.measured for r in near if r.measured]
    if bounded := [r for r in near if r.bounded_by_load_generator]:
        causes.append(f"the load generator bounded {len(bounded)} of its {len(near)} windows near it")
    throttled = sum(m.server.throttled_seconds or 0.0 for m in windows)
    seconds = sum(m.locust.measured_seconds for m in windows)
    cpus = records[0].config.knobs.cpus
    busiest = max((m.server.utilisation or 0.0 for m in windows), default=0.0)
    if cpus and (throttled > 0.05 * seconds or busiest >= 0.85 * cpus):
        causes.append(f"the CPU quota: the server used up to {busiest:.2f} of its {cpus:g} CPU and was throttled "
                      f"{throttled:.1f} s of {seconds:.0f} s")  # fmt: skip
    idle = min((m.machine_cpu.idle_share for m in windows if m.machine_cpu and m.machine_cpu.idle_share is not None),
               default=None)  # fmt: skip
    if idle is not None and idle < 0.2:
        causes.append(f"CPU contention: the machine was as little as {idle:.0%} idle")
    first = records[0].measured
    outside = first.locust.p50_ms - prediction.service_s * 1000 if first and first.locust.p50_ms else None
    if outside is not None and outside > 0.1 * prediction.service_s * 1000:
        causes.append(f"time outside the handler, which the prediction leaves out: at low load a request took "
                      f"{first.locust.p50_ms if first else 0:.1f} ms end to end, {prediction.service_s * 1000:.1f} ms of it "
                      "in the handler")  # fmt: skip
    return "; ".join(causes) or "no cause in its records"


def steps_of(records: list[RunRecord]) -> list[tuple[float, Verdict, StepP95 | None]]:
    """A search's steps from its records, each from its last window: its verdict, and its offered rate with its
    p95 and the p95's interval (None where the step has no p95)."""
    found: list[tuple[float, Verdict, StepP95 | None]] = []
    for record in records:
        step = record.capacity_step
        if step and not step.extended:
            verdict: Verdict = step.verdict or ("held" if step.held else "broke")
            rate = step.offered_rps or record.config.arrival_rate or 0.0
            p95 = StepP95(rate, step.p95_ms, step.p95_low_ms, step.p95_high_ms) if step.p95_ms else None
            found.append((rate, verdict, p95))
    return found


def summarise(config: Configuration, slo_ms: float, records: list[RunRecord], folder: Path, seconds: float,
              stopped: str | None = None) -> CapacityFound:  # fmt: skip
    """capacity.json's entry for one configuration, from its search's records alone: the range of
    offered rates, where p95 crosses the target, and the prediction, its CPU per request taken from
    the slope across the steps where there is one (the first step's carries its idle CPU)."""
    steps = steps_of(records)
    found = capacity_range([(rate, verdict) for rate, verdict, _ in steps])
    cpu = cpu_model(records)
    arrivals: Arrivals = "constant" if config.arrivals == "constant" else "poisson"
    slope = cpu.d_cpu.estimate if cpu and cpu.d_cpu.known and cpu.d_cpu.estimate > 0 else None
    prediction = predict(records[0], folder, slo_ms, arrivals, slope) if records else None
    near_target = crossing_band([p95 for _, _, p95 in steps if p95], slo_ms)
    band = capped(near_target, prediction.saturation_rps if prediction else None)  # no p95 holds past saturation
    estimate = band.estimate if band else None
    wrong = contradiction(found, cpu)
    middle = found.middle
    if estimate is not None and found.low is not None and found.high is not None and not found.crossed:
        estimate = min(max(estimate, found.low), found.high)  # the line over every step, read inside the range
    measured = estimate or middle  # what is held against the prediction: the crossing, else the range's middle
    over = measured / prediction.capacity_rps if measured and prediction and prediction.capacity_rps else None
    low, near = parts_at(records)
    model = cpu.saturation_rps if cpu else None
    held = None if found.lower_bound_only else found.low
    return CapacityFound(
        id=config.id, label=config.label, workload=config.knobs.workload, cpus=config.knobs.cpus,
        arrivals=config.arrivals, slo_p95_ms=slo_ms,
        capacity=str(found), capacity_low_rps=_r(found.low), capacity_high_rps=_r(found.high),
        capacity_mid_rps=_r(middle), capacity_estimate_rps=_r(estimate),
        capacity_estimate_low_rps=_r(band.low) if band else None, capacity_estimate_high_rps=_r(band.high) if band else None,
        lower_bound_only=found.lower_bound_only, crossed=found.crossed, capacity_rps=_r(held),
        predicted_rps=_r(prediction.capacity_rps) if prediction else None,
        predicted_queue=prediction.name if prediction else None,
        predicted_service_ms=round(prediction.served.queue.service_s * 1000, 2) if prediction else None,
        predicted_saturation_rps=_r(prediction.saturation_rps) if prediction else None,
        capacity_over_predicted=round(over, 3) if over else None,
        differs_from_prediction=over is not None and abs(over - 1) > DIFFERS,
        model_saturation_rps=_r(model),
        d_cpu_ms=_ms(cpu.d_cpu) if cpu else None, idle_cpu=_r(cpu.idle.estimate) if cpu else None,
        ratio=round(held / model, 3) if held and model else None,
        contradiction=wrong[1] if wrong else None, suspect=wrong[0] if wrong else None,
        steps=len(steps), runs=len(records), seconds=round(seconds, 1), stopped=stopped,
        mode=config.knobs.mode, predicted_servers=prediction.servers if prediction else None,
        predicted_outside_ms=round(prediction.served.outside_s * 1000, 2) if prediction else None,
        cause=cause_of_difference(records, measured, prediction, growth_cause(low, near))
        if measured and prediction and over and abs(over - 1) > DIFFERS else None,
        parts_low=low, parts_near=near,
    )  # fmt: skip


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _ms(interval: Interval) -> DcpuMs:
    estimate, low, high = (
        round(x * 1000, 3) if math.isfinite(x) else None for x in (interval.estimate, interval.low, interval.high)
    )
    return DcpuMs(estimate, low, high)


def recompute_from_records(folder: Path) -> list[CapacityFound]:
    """Every search's answer worked out anew from its records (`make capacity` wrote them as it went):
    after the lab's judgement of them has changed, an old search's capacity.json says what the current
    lab reads in its steps. The time each took and why it stopped are kept from the old file."""
    records = [r for r in read_records(folder) if r.capacity_step]
    if not records:
        raise RecordError(f"{folder} holds no capacity steps: it is not the folder of a `make capacity`")
    searches: dict[tuple[str, str, float, str, float], list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: r.index):
        c, step = record.config, record.capacity_step
        searches.setdefault((c.label, c.knobs.workload, c.knobs.cpus, c.arrivals, step.slo_p95_ms if step else 0.0),
                            []).append(record)  # fmt: skip
    path = ResultsFolder(folder).capacity
    old = {(f.label, f.workload, f.cpus, f.arrivals, f.slo_p95_ms): f
           for f in (read(CapacityFound, e) for e in (json.loads(path.read_text()) if path.exists() else []))}  # fmt: skip
    found = []
    for key, steps in searches.items():
        first = steps[0].config
        config = replace(first, id=first.id.removesuffix(f"-r{first.arrival_rate:g}"), arrival_rate=0.0)
        kept = old.get(key)
        found.append(summarise(config, key[4], steps, folder, kept.seconds if kept else 0.0, kept.stopped if kept else None))
    write_json(path, found)
    return found
