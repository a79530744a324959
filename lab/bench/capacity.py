"""`make capacity`: the highest arrival rate a configuration holds while p95 latency stays at or under
a target (SLO_P95_MS) and fewer than 1% of requests fail, with requests arriving at a set rate
whatever the replies (open arrivals, Poisson or evenly spaced: ARRIVALS; latency counted from each
arrival's intended start).

A bounded search of steps, each one or two runs ("windows") recorded like any other:

- a low first step measures the server's own time per request (its timeline), from which the lab's
  queueing model (C requests in flight, each taking that time: M/D/C or D/D/C) predicts the capacity;
- the search starts at 0.8x the prediction, moves by 20% until one rate holds and one breaks, then
  bisects the gap until it is under 15% or the steps run out.

A step's window is sized from its rate (about 300 requests, 10 to 60 s). Its p95 comes with a 95%
interval from order statistics, widened for the correlation between neighbours in a queue: the
step held when the interval lies under the target, broke when it lies over it, or when its queue
was not stable (latency, or the count in flight, rising across the window: step_judge.py). A step
straddling the target gets one more, longer window and is judged on both; still straddling, it is
unsure. The answer is a range of offered rates (arrivals per
second the windows really offered): between the highest that held and the lowest that broke; "at
least" when nothing broke, "below" when even the first step broke. Beside it, where p95 crosses
the target along the steps (`crossing`): the steadier figure from one search to the next.

The server's CPU per request (D_cpu) is the slope of its CPU use against its throughput over every
window (the intercept is what it burns idle), and gives the throughput model's saturation rate: a
capacity above it is a contradiction, and the search says which figure is suspect.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from statistics import fmean

from contract.knobs import Knobs, choice_setting, int_setting
from lab.analysis.latency_parts import grew
from lab.analysis.model import Arrivals, ServedQueue, served_queue
from lab.analysis.model.bounds import parallelism
from lab.analysis.stats import Interval, slope_intercept
from lab.analysis.timespan import duration
from lab.bench.run import Entry, Where, opened, run_one
from lab.bench.step_judge import MAX_FAILURES, Judgement, Window, bounded, judge, read_window
from lab.results import request_timeline
from lab.results.experiments import Experiment, RunConfig
from lab.results.folder import RecordError, ResultsFolder, link_latest, new_folder, shown, write_json
from lab.results.manifest import FolderKind, Manifest, write_manifest
from lab.results.model_inputs import inputs, saturation
from lab.results.record import CapacityFound, CapacityStep, Configuration, DcpuMs, PartsAt, RunRecord, Verdict, now
from lab.results.run_files import read_records, write_record, write_summary
from lab.results.typedjson import read
from lab.stack.place import Place
from lab.stack.stack_state import StateHook

# The first step: low enough that requests rarely wait for one another.
FIRST_RATE = 2.0  # arrivals/s when the workload does not say how long a request takes (cpu, mix)
FIRST_LOAD = 0.25  # io: this share of what C requests in flight serve when each waits IO_SECONDS
MAX_FIRST_RATE = 20.0
MIN_RATE = 0.25  # below this, the search gives up going lower
FIRST_REQUESTS = 150  # the first step: enough for a p95 interval at low load (72 independent at least)
# Each later window: enough requests for a p95 interval on both sides even when correlation in the queue
# makes them worth a third as many independent ones (72 at least).
WINDOW_REQUESTS = 300
MIN_WINDOW_S, MAX_WINDOW_S = 10.0, 60.0
MAX_WINDOWS = 2  # a step straddling the target gets one more window, of twice the requests, and no more
# The search.
START_SHARE = 0.8  # the first step after the first: this share of the predicted capacity
BRACKET = 1.2  # move by this much until one rate holds and one breaks
CLOSE = 1.15  # stop once the lowest rate that broke is within 15% of the highest that held
FINEST = 1.04  # gaps narrower than 4% between unsure rates are not worth a step
FALLBACK_SHARE = 0.5  # without a prediction: start at this share of the throughput model's saturation
DIFFERS = 0.10  # a capacity more than 10% from the prediction is called out
MATERIAL_GROWTH = 0.05  # a part that grew by less than this share of the latency past the capacity names no cause
STEP_OVERHEAD = 8.0  # seconds each window adds to its warm-up and measurement (start, verify, stop)


# ---------------------------------------------------------------- the search


def window_seconds(rate: float, requests: int) -> float:
    """A window long enough for about `requests` arrivals at this rate, within bounds."""
    return round(min(MAX_WINDOW_S, max(MIN_WINDOW_S, requests / rate)), 1)


def first_rate(config: RunConfig) -> float:
    """The first step's rate. For io, a quarter of what C requests in flight serve when each waits
    IO_SECONDS in the database; otherwise the CPU per request is not known yet: a low fixed rate."""
    knobs = config.knobs
    if knobs.workload != "io" or knobs.io_seconds <= 0:
        return FIRST_RATE
    in_flight, _ = knobs.capacity(int_setting("DB_POOL_SIZE"))
    return round(min(MAX_FIRST_RATE, max(MIN_RATE, FIRST_LOAD * in_flight / knobs.io_seconds)), 2)


def next_rate(steps: list[tuple[float, Verdict]], predicted: float | None, fallback: float | None = None) -> float | None:
    """The next rate to try after these (rate, verdict) steps, or None when the search is done.

    After the first step: START_SHARE of the predicted capacity (or FALLBACK_SHARE of the model's
    saturation). Then by BRACKET up until a rate breaks, or down until one holds; then the widest gap
    between the highest that held and the lowest that broke (unsure rates split it) is halved, until
    that range is within CLOSE or its gaps are finer than FINEST.
    """
    held = [r for r, v in steps if v == "held"]
    broke = [r for r, v in steps if v == "broke"]
    unsure = [r for r, v in steps if v == "unsure"]
    first = steps[0][0]
    if len(steps) == 1 and not broke:
        guess = START_SHARE * predicted if predicted else FALLBACK_SHARE * fallback if fallback else 0.0
        return round(max(guess, first * BRACKET), 2)
    if not broke:  # nothing broke yet: up, to as far above the prediction as the search started below it
        top = max(held + unsure)
        above = (2 - START_SHARE) * predicted if predicted else 0.0
        return round(above if top < above / BRACKET else top * BRACKET, 2)
    low = min(broke + unsure)
    if not held:  # nothing held: down, by halves once even the first step broke (an unsure one lacked requests)
        lower = low / 2 if low <= first and steps[0][1] == "broke" else low / BRACKET
        return round(lower, 2) if lower >= MIN_RATE else None
    top, bottom = max(held), min(broke)
    if bottom <= top * CLOSE:
        return None
    points = sorted({top, bottom, *(r for r in unsure if top < r < bottom)})
    a, b = max(pairwise(points), key=lambda gap: gap[1] / gap[0])
    if b / a <= FINEST:
        return None
    # a wide gap (the first, low step below a rate that broke): come down from above, nearer the capacity
    return round(b / BRACKET if b / a > BRACKET**2 else math.sqrt(a * b), 2)


@dataclass(frozen=True)
class Range:
    """The capacity as the offered rates that bound it."""

    low: float | None  # the highest offered rate that held
    high: float | None  # the lowest offered rate that broke

    @property
    def lower_bound_only(self) -> bool:
        """Nothing broke: the capacity is at least `low`, never a capacity to rank."""
        return self.low is not None and self.high is None

    @property
    def crossed(self) -> bool:
        """A rate that held offered more than one that broke: chance, near the capacity."""
        return self.low is not None and self.high is not None and self.low > self.high

    @property
    def middle(self) -> float | None:
        return (self.low + self.high) / 2 if self.low is not None and self.high is not None else None

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            a, b = sorted((self.low, self.high))
            crossed = " (a rate that held offered more than one that broke)" if self.crossed else ""
            return f"between {a:.3g} and {b:.3g} req/s{crossed}"
        if self.low is not None:
            return f"at least {self.low:.3g} req/s (nothing broke: a lower bound, not a capacity)"
        if self.high is not None:
            return f"below {self.high:.3g} req/s (even the lowest step broke)"
        return "unknown (no step held or broke)"


def capacity_range(steps: list[tuple[float, Verdict]]) -> Range:
    """From (offered rate, verdict) steps: the range the capacity lies in; unsure steps bound nothing."""
    held = [r for r, v in steps if v == "held"]
    broke = [r for r, v in steps if v == "broke"]
    return Range(max(held) if held else None, min(broke) if broke else None)


def crossing(points: list[tuple[float, float]], slo_ms: float) -> float | None:
    """Where p95 crosses the target, from (offered rate, p95 ms) of the steps: a least-squares line
    through log p95 against the rate (short of saturation a queue's p95 grows about exponentially
    with it), over the steps whose p95 lies within a factor of two of the target. Every step adds to
    it, where a verdict uses one step alone: in simulated searches it came within 10% of the true
    capacity more often than the middle of the range. None without two such steps, or a rising line."""
    near = [(rate, math.log(p95)) for rate, p95 in points if slo_ms / 2 <= p95 <= 2 * slo_ms]
    if len({rate for rate, _ in near}) < 2:
        return None
    line = slope_intercept([rate for rate, _ in near], [y for _, y in near])
    if line.slope.estimate <= 0:
        return None
    return (math.log(slo_ms) - line.intercept.estimate) / line.slope.estimate


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class Prediction:
    """The lab's queueing prediction, from the first step: C servers each taking the measured handler
    time, or, where the CPU binds first, P CPUs each taking the CPU time and the rest of the handler's
    time beside the queue."""

    served: ServedQueue
    service_s: float  # the handler's mean time
    requests: int  # behind the service time
    arrivals: Arrivals
    capacity_rps: float

    @property
    def servers(self) -> int:
        return self.served.queue.servers

    @property
    def saturation_rps(self) -> float:
        return self.served.saturation

    @property
    def name(self) -> str:
        queue = f"{'M' if self.arrivals == 'poisson' else 'D'}/D/{self.servers}"
        return f"{queue} on the CPU" if self.served.binds == "CPU" else queue


def predict(record: RunRecord, folder: Path, slo_ms: float, arrivals: Arrivals, d_cpu: float | None = None) -> Prediction | None:
    """The capacity at the target from the step's server-side times (each request's handler start to end)
    and, to know whether the CPU binds first, the Python it can run at once and the CPU per request:
    `d_cpu` where given, else the step's own, no more than its handler time (at low load the server's
    idle CPU, spread over few requests, inflates it)."""
    timeline = record.measured.timeline if record.measured else None
    if not record.ok or not timeline or not record.model:
        return None
    requests = request_timeline.read(ResultsFolder(folder).file(timeline.file))
    times = [(r["end_us"] - r["start_us"]) / 1e6 for r in requests if r["end_us"] > r["start_us"]]
    if not times:
        return None
    service = fmean(times)  # the mean: what sets the utilisation of a queue with deterministic service
    found = inputs(record)
    p = parallelism(found.processes, found.cpus, found.cores) if found else None
    cpu = d_cpu if d_cpu is not None else min(found.d_cpu, service) if found else None
    served = served_queue(service, record.model.in_flight, p, cpu)
    return Prediction(served, service, len(times), arrivals, served.capacity(slo_ms / 1000, 0.95, arrivals))


@dataclass(frozen=True)
class CpuModel:
    """The server's CPU against its throughput over the windows: CPU/s = D_cpu x req/s + idle."""

    d_cpu: Interval  # CPU seconds per request: the slope
    idle: Interval  # CPU seconds per second with no request: the intercept
    windows: int
    saturation_rps: float | None  # the throughput model's saturation with this D_cpu
    optimistic_rps: float | None  # the same at D_cpu's lower bound: the highest the data allow


def cpu_model(records: list[RunRecord]) -> CpuModel | None:
    """D_cpu from the slope across windows, not from one low window whose idle CPU would inflate it
    (per second on both axes: windows differ in length, and idle CPU accrues by the second)."""
    ok = [r for r in records if r.ok and r.measured and r.measured.server.utilisation is not None]
    measured = [r.measured for r in ok if r.measured]
    xs = [m.locust.rps for m in measured]
    if len(set(xs)) < 2:
        return None
    line = slope_intercept(xs, [m.server.utilisation or 0.0 for m in measured])
    d_cpu = line.slope
    return CpuModel(d_cpu, line.intercept, len(ok), saturation(ok[0], d_cpu.estimate),
                    saturation(ok[0], d_cpu.low) if d_cpu.known else None)  # fmt: skip


def contradiction(found: Range, cpu: CpuModel | None) -> tuple[str, str] | None:
    """A rate held above the model's saturation cannot be: (what is suspect, why), or None."""
    if found.low is None or cpu is None or cpu.saturation_rps is None or found.low <= cpu.saturation_rps:
        return None
    said = f"held {found.low:.3g} req/s above the model's saturation of {cpu.saturation_rps:.3g} req/s"
    if cpu.optimistic_rps is not None and found.low > cpu.optimistic_rps:
        return "held step", (f"{said}, and above {cpu.optimistic_rps:.3g} req/s even at D_cpu's lower bound "
                             f"({cpu.d_cpu.low * 1000:.2f} ms): the step that held is suspect (a queue growing too "
                             "slowly for its window to show)")  # fmt: skip
    return "model saturation", (f"{said}, but D_cpu ({cpu.d_cpu.estimate * 1000:.2f} ms from {cpu.windows} windows) is too "
                                "uncertain to rule it out: the model's saturation is suspect")  # fmt: skip


# ---------------------------------------------------------------- running it


@dataclass
class Search:
    """One configuration's search, as it goes: where it runs and what it has recorded."""

    config: RunConfig
    slo_ms: float
    folder: Path
    where: Where
    state_hook: StateHook
    index: int  # the next record's number
    records: list[RunRecord]


def keep_apart(search: Search, record: RunRecord, config: RunConfig, index: int) -> tuple[RunRecord, Path]:
    """Windows at one rate share a run id, and so Locust's file names: each window's files get its own
    number, and its record points at them. Returns the record, and its open-arrival file."""
    files = ResultsFolder(search.folder)
    shared, own = files.locust(config.id), files.locust(config.id, index)
    if shared.open_arrivals.exists():
        shared.open_arrivals.replace(own.open_arrivals)
    m = record.measured
    if m and m.timeline and shared.timeline.exists():
        shared.timeline.replace(own.timeline)
        kept = replace(m.timeline, file=files.relative(own.timeline))
        record = replace(record, measured=replace(m, timeline=kept))
    return record, own.open_arrivals


def run_step(search: Search, rate: float, first: bool) -> Judgement:
    """One step: a window at this rate, and one more while its p95 straddles the target. Every window is
    recorded with the step's verdict so far, and the rate its windows really offered."""
    backend, machine = search.where(search.config)
    records: list[RunRecord] = []
    windows: list[Window] = []
    seconds = window_seconds(rate, FIRST_REQUESTS if first else WINDOW_REQUESTS)
    while True:
        config = replace(search.config, arrival_rate=rate, run_time=seconds)
        index = search.index
        search.index += 1
        print(f"[{index}] {config.id}: {rate:g} arrivals/s for {seconds:g} s"
              + (f" (window {len(records) + 1} of this rate)" if records else ""), flush=True)  # fmt: skip
        entry = Entry(search.folder.name, index, None)
        record, own = keep_apart(
            search, run_one(config, entry, backend, machine, search.folder, search.state_hook), config, index
        )
        if record.ok and record.measured and own.exists() and not bounded(record):  # a bounded window is left out
            windows.append(read_window(own, record.measured.locust.measured_seconds))
        records.append(record)
        judgement = judge(records, windows, search.slo_ms)
        more = judgement.straddles and not first and len(records) < MAX_WINDOWS
        offered = (sum(w.offered for w in windows) / sum(w.seconds for w in windows)) if windows else rate
        record = replace(record, capacity_step=step_of(search.slo_ms, rate, offered, windows, judgement, more))
        write_record(search.folder, record)
        write_summary(search.folder)
        search.records.append(record)
        print(f"    {'unsure, one more window' if more else judgement.verdict}: {judgement.why}; offered "
              f"{offered:.3g}/s" + window_counts(windows), flush=True)  # fmt: skip
        if not more:
            return judgement
        seconds = window_seconds(rate, 2 * WINDOW_REQUESTS)


def window_counts(windows: list[Window]) -> str:
    if not windows:
        return ""
    answered = sum(len(w.answered_ms) for w in windows)
    return f", {answered} answered, {sum(len(w.waiting_ms) for w in windows)} waiting at the end"


def step_of(slo_ms: float, rate: float, offered: float, windows: list[Window], judgement: Judgement,
            more: bool) -> CapacityStep:  # fmt: skip
    """What a window's record keeps of its step: the step so far, over its windows up to this one."""
    p95 = judgement.p95
    return CapacityStep(
        slo_p95_ms=slo_ms, nominal_rps=rate, offered_rps=round(offered, 3),
        answered=sum(len(w.answered_ms) for w in windows), waiting=sum(len(w.waiting_ms) for w in windows),
        windows=len(windows), seconds=round(sum(w.seconds for w in windows), 3),
        p95_ms=round(p95.estimate, 1) if p95 else None,
        p95_low_ms=round(p95.low, 1) if p95 and math.isfinite(p95.low) else None,
        p95_high_ms=round(p95.high, 1) if p95 and math.isfinite(p95.high) else None,
        verdict=judgement.verdict, held=judgement.verdict == "held", extended=more,
        why=judgement.why + ("; one more window at this rate" if more else ""),
    )  # fmt: skip


def longest_step(config: RunConfig, rate: float) -> float:
    """The longest a step at this rate can take: both its windows, each with its warm-up and overhead."""
    return sum(config.warmup + window_seconds(rate, n) + STEP_OVERHEAD for n in (WINDOW_REQUESTS, 2 * WINDOW_REQUESTS))


def search(config: RunConfig, slo_ms: float, max_steps: int, folder: Path, where: Where, state_hook: StateHook,
           first_index: int, share_s: float | None = None) -> CapacityFound:  # fmt: skip
    """One configuration's capacity: its windows are recorded as runs numbered from `first_index`. With
    a share of a time budget, no step starts that could end past it (the first always runs)."""
    started = time.monotonic()
    state = Search(config, slo_ms, folder, where, state_hook, first_index, [])
    arrivals: Arrivals = "constant" if config.arrivals == "constant" else "poisson"
    steps: list[tuple[float, Verdict]] = []  # (nominal rate, verdict): what the search steers by
    prediction: Prediction | None = None
    fallback: float | None = None
    rate: float | None = first_rate(config)
    stopped: str | None = None
    while rate is not None and len(steps) < max_steps:
        spent = time.monotonic() - started
        if steps and share_s is not None and spent + longest_step(config, rate) > share_s:
            stopped = f"its share of the time budget ({duration(share_s)}) would not hold a step at {rate:g}/s"
            print(f"    stopped: {stopped}", flush=True)
            break
        judgement = run_step(state, rate, first=not steps)
        if not steps:
            prediction = predict(state.records[0], folder, slo_ms, arrivals)
            fallback = saturation(state.records[0])
            say_prediction(prediction, slo_ms)
        steps.append((rate, judgement.verdict))
        # C requests in flight share P CPUs: the queue of C servers alone overrates a configuration the CPU binds
        predicted = min(prediction.capacity_rps, fallback or math.inf) if prediction else None
        rate = next_rate(steps, predicted, fallback)
    return summarise(Configuration.of(config), slo_ms, state.records, folder, time.monotonic() - started, stopped)


def say_prediction(prediction: Prediction | None, slo_ms: float) -> None:
    if prediction is None:
        print("    no prediction: the first step recorded no server-side times", flush=True)
        return
    print(f"    predicted ({prediction.name}: {words(prediction)}): {prediction.capacity_rps:.3g} req/s at p95 ≤ {slo_ms:g} ms, "
          f"saturation {prediction.saturation_rps:.3g} req/s", flush=True)  # fmt: skip


def words(prediction: Prediction) -> str:
    """The predicted queue in words: what serves, and how long each request takes."""
    served, handler = prediction.served, f"{prediction.service_s * 1000:.1f} ms in the handler"
    if served.binds == "CPU":
        return (f"the CPU binds first: {served.queue.servers} server(s) of {served.queue.service_s * 1000:.1f} ms of "
                f"CPU, and {served.outside_s * 1000:.1f} ms beside the queue, of {handler} over {prediction.requests} "
                "requests")  # fmt: skip
    return f"{served.queue.servers} in flight, each {handler} over {prediction.requests} requests"


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


def apart(records: list[RunRecord], measured: float, prediction: Prediction, grown: str | None = None) -> str:
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


def steps_of(records: list[RunRecord]) -> list[tuple[float, Verdict, float | None]]:
    """A search's steps from its records: (offered rate, verdict, p95 ms), from each step's last window."""
    found = []
    for record in records:
        step = record.capacity_step
        if step and not step.extended:
            verdict: Verdict = step.verdict or ("held" if step.held else "broke")
            found.append((step.offered_rps or record.config.arrival_rate, verdict, step.p95_ms))
    return found


def summarise(config: Configuration, slo_ms: float, records: list[RunRecord], folder: Path, seconds: float,
              stopped: str | None = None) -> CapacityFound:  # fmt: skip
    """capacity.json's entry for one configuration, from its search's records alone: the range of
    offered rates, where p95 crosses the target, and the prediction, its CPU per request taken from
    the slope across the steps where there is one (the first step's carries its idle CPU)."""
    steps = steps_of(records)
    found = capacity_range([(rate, verdict) for rate, verdict, _ in steps])
    estimate = crossing([(rate, p95) for rate, _, p95 in steps if p95 is not None], slo_ms)
    cpu = cpu_model(records)
    arrivals: Arrivals = "constant" if config.arrivals == "constant" else "poisson"
    slope = cpu.d_cpu.estimate if cpu and cpu.d_cpu.known and cpu.d_cpu.estimate > 0 else None
    prediction = predict(records[0], folder, slo_ms, arrivals, slope) if records else None
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
        cause=apart(records, measured, prediction, growth_cause(low, near))
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
        print(f"  - {f.label} · {f.workload} · CPUS={f.cpus:g} · {f.arrivals}: {f.capacity}; " + explained(f))
        if f.contradiction:
            print(f"    CONTRADICTION: {f.contradiction}")
    within = f", {'within' if took <= budget_s else 'OVER'} its budget of {duration(budget_s)}" if budget_s else ""
    print(f"capacity: {len(found)} search(es) took {duration(took)}{within}", flush=True)
    return folder


def again(folder: Path) -> list[CapacityFound]:
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


def explained(f: CapacityFound) -> str:
    """The estimate, the prediction and the model beside a capacity, in words."""
    parts = []
    if f.capacity_estimate_rps:
        parts.append(f"p95 crosses the target near {f.capacity_estimate_rps:.3g} req/s")
    if f.predicted_rps:
        parts.append(f"predicted {f.predicted_rps:.3g} ({f.predicted_queue}, {f.predicted_service_ms or 0:.1f} ms)")
        if f.capacity_over_predicted:
            what = "the crossing" if f.capacity_estimate_rps else "the range's middle"
            off = f", more than 10% off: {f.cause}" if f.differs_from_prediction else ""
            parts.append(f"{what} is {f.capacity_over_predicted:.2f} of it{off}")
    if f.model_saturation_rps and f.d_cpu_ms and f.d_cpu_ms.estimate is not None:
        parts.append(f"model saturation {f.model_saturation_rps:.3g} req/s (D_cpu {f.d_cpu_ms.estimate:.2f} ms, slope)")
    stopped = f" (stopped: {f.stopped})" if f.stopped else ""
    return "; ".join([*parts, f"{f.steps} steps, {f.runs} runs, {duration(f.seconds)}{stopped}"])


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
