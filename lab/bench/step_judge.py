"""Judging one step of a capacity search: held, broke or unsure, from its windows of open arrivals.

A step holds when the 95% interval of its p95 lies under the target, breaks when it lies over it or when
its queue was not stable, and is unsure when the interval straddles the target.

Whether a queue was stable is judged only on evidence free of length bias. The arrivals still in flight
when a window is cut are the long ones (the inspection paradox: the longer a request, the likelier it is
caught in flight at any instant), so how long they had waited says little: at a high rate of long
requests, some always have waited longer than the window's early requests took, on a queue that does
not grow at all. What a cut does not bias is how many are in flight at each instant of the window, which
is known exactly for every arrival, answered or not: a stable queue keeps it level, about rate x latency
(Little's law); a queue past saturation keeps adding to it for as long as arrivals come.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.analysis.stats import Interval, batch_means_interval, correlated_quantile_interval, quantile, trend_interval
from lab.results.record import RunRecord, Verdict

MAX_FAILURES = 0.01
SENT_SHARE = 0.95  # a step that sent less than this share of what it offered could not offer the rate
RISE_SHARE = 0.25  # latency rising less than this share of the target is drift, not a growing queue
GRID = 90  # instants at which the count in flight is read across a window
BATCHES = 5  # batch means per third of a window: the count in flight is correlated from instant to instant


@dataclass(frozen=True)
class Window:
    """One run's open arrivals, as the judgement needs them, in arrival order."""

    seconds: float
    offered: int
    sent: int  # answered, and still unanswered at the end
    failed: int
    answered_ms: list[float]  # latency from the intended start
    waiting_ms: list[float]  # unanswered at the end: waited at least this long
    # every sent arrival's (intended start, end) in seconds from the first; one unanswered ends at the cut
    spans: tuple[tuple[float, float], ...] = ()

    @property
    def latencies_ms(self) -> list[float]:
        return self.answered_ms + self.waiting_ms


def read_window(path: Path, seconds: float) -> Window:
    """A window from the open-arrival file Locust writes (intended start, ms, ok: None when unanswered)."""
    data = json.loads(path.read_text())
    arrivals = sorted(data["latencies"], key=lambda a: a[0])
    first = arrivals[0][0] if arrivals else 0.0
    return Window(
        seconds=seconds, offered=data["offered"], sent=len(arrivals), failed=sum(ok is False for *_, ok in arrivals),
        answered_ms=[ms for _, ms, ok in arrivals if ok is not None],
        waiting_ms=[ms for _, ms, ok in arrivals if ok is None],
        spans=tuple((start - first, start - first + ms / 1000) for start, ms, _ in arrivals),
    )  # fmt: skip


@dataclass(frozen=True)
class InFlight:
    """The count in flight over the first and the last third of a window, each a batch-means interval."""

    first: Interval
    last: Interval
    rate: float  # arrivals per second over the window

    @property
    def rising(self) -> bool:
        return self.first.below(self.last.low)

    @property
    def added_ms(self) -> float:
        """By Little's law, how much longer each arrival of the last third stayed than one of the first."""
        return 1000 * (self.last.estimate - self.first.estimate) / self.rate


def in_flight_counts(spans: tuple[tuple[float, float], ...], instants: np.ndarray) -> np.ndarray:
    """How many arrivals had started and not ended at each instant."""
    starts = np.sort(np.fromiter((s for s, _ in spans), float, len(spans)))
    ends = np.sort(np.fromiter((e for _, e in spans), float, len(spans)))
    return np.searchsorted(starts, instants, side="right") - np.searchsorted(ends, instants, side="right")


def in_flight(window: Window) -> InFlight | None:
    """The count in flight across the window, or None with too few arrivals to tell. The count starts
    after the early arrivals' usual latency: the arrivals before the window, still in flight at its
    start, are not in it, so its first instants would read low."""
    if len(window.spans) < 3 * BATCHES or len(window.answered_ms) < 3:
        return None
    cut = max(end for _, end in window.spans)
    lead = (quantile(window.answered_ms[: len(window.answered_ms) // 3], 0.9) or 0.0) / 1000
    if cut <= 2 * lead:
        return None
    counts = in_flight_counts(window.spans, np.linspace(lead, cut, GRID, endpoint=False))
    third = GRID // 3
    return InFlight(
        batch_means_interval(counts[:third], BATCHES), batch_means_interval(counts[-third:], BATCHES),
        rate=len(window.spans) / cut,
    )  # fmt: skip


def unstable(window: Window, slo_ms: float) -> str | None:
    """Why this window's queue was not stable, or None. Past saturation a queue grows for as long as
    arrivals come, whatever a short window's p95 says: the latency of answered arrivals rises across
    the window, and the count in flight rises with it (each only where the rise is beyond chance and
    worth a quarter of the target)."""
    answered = window.answered_ms
    if len(answered) < 3:
        return None
    # The answered of the last third are its short ones (the long are still in flight), so a median that
    # rose anyway rose at least this much.
    trend = trend_interval(answered)  # medians of the first and last thirds, each with its interval
    if trend.rising and trend.change > RISE_SHARE * slo_ms:
        return (f"the median rose from {trend.first.estimate:.0f} to {trend.last.estimate:.0f} ms across the window "
                "(first third to last, beyond chance): the queue grew")  # fmt: skip
    count = in_flight(window)
    if count and count.rising and count.added_ms > RISE_SHARE * slo_ms:
        return (f"the count in flight rose from {count.first.estimate:.1f} to {count.last.estimate:.1f} across the "
                f"window (first third to last, beyond chance): at {count.rate:.3g} arrivals/s each stayed about "
                f"{count.added_ms:.0f} ms longer (Little's law): the queue grew")  # fmt: skip
    return None


def verdict_of(p95: Interval, slo_ms: float) -> tuple[Verdict, str]:
    """Held when the whole interval is under the target, broke when it is over, unsure when it straddles."""
    said = f"p95 {p95.estimate:.0f} ms [{p95.low:.0f}, {p95.high:.0f}] (as from {p95.n} independent requests)"
    if p95.below(slo_ms):
        return "held", f"{said}: under the target of {slo_ms:g} ms"
    if p95.above(slo_ms):
        return "broke", f"{said}: over the target of {slo_ms:g} ms"
    return "unsure", f"{said}: straddles the target of {slo_ms:g} ms"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    why: str
    p95: Interval | None = None

    retry: bool = False  # unsure for want of a clean window: another could tell

    @property
    def straddles(self) -> bool:
        """Unsure, and another window could tell: its p95 straddles the target, or it had no clean window."""
        return self.verdict == "unsure" and (self.p95 is not None or self.retry)


def bounded(record: RunRecord) -> bool:
    """The load generator or the machine (other work on it too), not the server, bounded the run: its
    latency says nothing of the server's capacity, either way."""
    return bool(record.bounded_by_load_generator or record.bounded_by_machine)


def judge(records: list[RunRecord], windows: list[Window], slo_ms: float) -> Judgement:
    """A step's verdict from its clean windows taken together (independent runs at one rate); a window the
    load generator or the machine bounded is not among them."""
    for record in records:
        if not record.ok:
            return Judgement("broke", f"the run failed: {record.reason}")
    if not windows and any(bounded(record) for record in records):
        return Judgement("unsure", "bounded by the load generator or the machine, not the server", retry=True)
    offered, sent = sum(w.offered for w in windows), sum(w.sent for w in windows)
    if offered and sent < SENT_SHARE * offered:
        return Judgement("broke", f"sent {sent} of {offered} arrivals offered: every user was busy")
    for window in windows:
        if reason := unstable(window, slo_ms):
            return Judgement("broke", reason)
    # the unanswered count as waiting until the end: a lower bound, so a p95 over the target stays over
    sent = sum(len(w.latencies_ms) for w in windows)
    if not sent:
        return Judgement("broke", "no arrival was sent")
    failed = sum(w.failed for w in windows)
    if failed >= MAX_FAILURES * sent:
        return Judgement("broke", f"{failed / sent:.1%} of requests failed")
    p95 = correlated_quantile_interval([w.latencies_ms for w in windows], 0.95)
    verdict, why = verdict_of(p95, slo_ms)
    return Judgement(verdict, why, p95)
