"""Running one configuration's capacity search: its steps, each one or two runs ("windows") recorded like
any other.

A step's window is sized from its rate (about 300 requests, 10 to 60 s). Its p95 comes with a 95%
interval from order statistics, widened for the correlation between neighbours in a queue: the
step held when the interval lies under the target, broke when it lies over it, or when its queue
was not stable (latency, or the count in flight, rising across the window: step_judge.py). A step
straddling the target gets one more, longer window and is judged on both; still straddling, it is
unsure.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lab.analysis.crossing import crossing_band
from lab.analysis.model import Arrivals
from lab.analysis.timespan import duration
from lab.bench.capacity.prediction import CapacityPrediction, predict
from lab.bench.capacity.rates import first_rate, narrowing_rate, next_rate, window_seconds
from lab.bench.capacity.summary import steps_of, summarise
from lab.bench.capacity.words import say_prediction
from lab.bench.run import Entry, Where, run_one
from lab.bench.step_judge import Judgement, Window, bounded, judge, read_window
from lab.results.experiments import RunConfig
from lab.results.folder import ResultsFolder
from lab.results.model_inputs import saturation
from lab.results.record import CapacityFound, CapacityStep, Configuration, RunRecord, Verdict
from lab.results.run_files import write_record, write_summary
from lab.stack.stack_state import StateHook

FIRST_REQUESTS = 150  # the first step: enough for a p95 interval at low load (72 independent at least)
# Each later window: enough requests for a p95 interval on both sides even when correlation in the queue
# makes them worth a third as many independent ones (72 at least).
WINDOW_REQUESTS = 300
MAX_WINDOWS = 2  # a step straddling the target gets one more window, of twice the requests, and no more
STEP_OVERHEAD = 8.0  # seconds each window adds to its warm-up and measurement (start, verify, stop)


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
    prediction: CapacityPrediction | None = None
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
        if rate is None:  # the range has closed: a step left goes where the crossing's band is wide
            band = crossing_band([p95 for _, _, p95 in steps_of(state.records) if p95], slo_ms)
            rate = narrowing_rate(band, [r for r, _ in steps])
    return summarise(Configuration.of(config), slo_ms, state.records, folder, time.monotonic() - started, stopped)
