"""The rates a capacity search tries, and the range of offered rates its verdicts give.

The search starts at 0.8x the prediction, moves by 20% until one rate holds and one breaks, then
bisects the gap until it is under 15% or the steps run out. The answer is a range of offered rates
(arrivals per second the windows really offered): between the highest that held and the lowest that
broke; "at least" when nothing broke, "below" when even the first step broke. Beside it, where p95
crosses the target along the steps, with its band (lab.analysis.crossing): the steadier figure from one search
to the next. Once the range has closed, steps left go where they narrow that band: at the crossing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from contract.knobs import int_setting
from lab.analysis.crossing import Crossing
from lab.results.experiments import RunConfig
from lab.results.record import Verdict

# The first step: low enough that requests rarely wait for one another.
FIRST_RATE = 2.0  # arrivals/s when the workload does not say how long a request takes (cpu, mix)
FIRST_LOAD = 0.25  # io: this share of what C requests in flight serve when each waits IO_SECONDS
MAX_FIRST_RATE = 20.0
MIN_RATE = 0.25  # below this, the search gives up going lower
MIN_WINDOW_S, MAX_WINDOW_S = 10.0, 60.0
# The search.
START_SHARE = 0.8  # the first step after the first: this share of the predicted capacity
BRACKET = 1.2  # move by this much until one rate holds and one breaks
CLOSE = 1.15  # stop once the lowest rate that broke is within 15% of the highest that held
FINEST = 1.04  # gaps narrower than 4% between unsure rates are not worth a step
FALLBACK_SHARE = 0.5  # without a prediction: start at this share of the throughput model's saturation
NARROW = 0.10  # a crossing's band within ±10% of it is narrow enough: no more steps spent on it


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


def narrowing_rate(band: Crossing | None, tried: list[float]) -> float | None:
    """After the range has closed: a step at the crossing where its band is wider than ±NARROW (or open on a
    side), unless one was already offered there (within FINEST); a point near the target narrows it most."""
    if band is None or band.estimate <= 0:
        return None
    low, high = band.low, band.high
    if low is not None and high is not None and high - low <= 2 * NARROW * band.estimate:
        return None
    if any(max(r, band.estimate) / min(r, band.estimate) <= FINEST for r in tried if r > 0):
        return None
    return round(band.estimate, 2)
