"""How a figure moved between two folders: the 95% interval of the difference, and the verdict against MIN_CHANGE.

The interval is of the difference itself, never two intervals set side by side (two 95% intervals can
overlap while their difference is clear):
- repeats on both sides (two or more runs each, no interval that covers them): Welch's t over the runs'
  values, at its degrees of freedom, which are not whole;
- otherwise each side's own interval (one run's samples, a failure count pooled over the runs, a capacity
  search's bracket, or the t-interval of one side's repeats), combined by MOVER (Zou and Donner, 2008): each
  bound of the difference from each side's distance to its own bounds, as Newcombe's interval of two
  proportions is built from their Wilson intervals. It keeps an interval's skew (a latency's, a share's);
- two capacity searches: their brackets (the highest rate held, the lowest that broke) are bounds, not
  spreads, so the difference runs from NEW's low less BASE's high to NEW's high less BASE's low.

The verdict reads the change relative to the base's estimate (the failure share: in points): within
±MIN_CHANGE whole is no change; wholly past it, better or worse by the figure's direction; across an edge,
unsure, with the repeats that would settle it at the spread seen.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from scipy import stats

from lab.analysis.stats import Interval, t_critical, unknown
from lab.compare.figures import Figure, Reading

CONFIDENCE = 0.95
MAX_REPEATS = 20  # what an experiment takes (lab.results.experiments): past it, the change sits too near MIN_CHANGE
FAILURE_POINTS = 0.1  # the failure share's smallest change: this much of MIN_CHANGE, in points (0.5 at 5%)
LEARN_REPEATS = 3  # where one run each says nothing of the spread: the fewest that give Welch two degrees


class Method(StrEnum):
    WELCH = "welch"
    OWN = "own intervals"  # MOVER over each side's own interval
    BRACKETS = "brackets"  # two capacity searches' brackets, bound against bound


class Verdict(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    NO_CHANGE = "no change"
    UNSURE = "unsure"


class Settle(StrEnum):
    """How an unsure verdict would be settled."""

    REPEATS = "repeats"  # this many repeats a side, at the spread seen
    SPREAD = "spread"  # one run each: repeats, to learn the spread at all
    TOO_CLOSE = "too close"  # more than MAX_REPEATS: the change sits at MIN_CHANGE itself
    SEARCH = "search"  # a capacity is bracketed by the search's steps: narrower steps, not repeats
    MACHINE = "machine"  # decided, but not past what the machine's own change of speed could have made of it


@dataclass(frozen=True)
class Change:
    figure: Figure
    base: Interval  # each side's figure, with its own 95% interval
    new: Interval
    difference: Interval  # new - base, in the figure's unit
    change: Interval  # the difference over the base's estimate (the failure share: in points, as a share)
    smallest: float  # the change that matters, on the same scale (MIN_CHANGE, or its part for failures)
    method: Method
    df: float | None  # Welch's degrees of freedom
    verdict: Verdict
    settle: Settle | None = None  # unsure: how to settle it
    repeats: int | None = None  # Settle.REPEATS: the runs each side needs
    drift: float = 0.0  # how far the machine's own speed may have moved it (a share), which the verdict allows for


def welch(base: Sequence[float], new: Sequence[float], confidence: float = CONFIDENCE) -> tuple[Interval, float]:
    """The difference of the means (new - base) of two sets of repeats, two or more each, with Welch's
    t-interval; and its degrees of freedom (Welch-Satterthwaite; infinite where both sets are constant)."""
    if len(base) < 2 or len(new) < 2:
        raise ValueError("Welch's interval needs two or more runs a side")
    vb, vn = statistics.variance(base) / len(base), statistics.variance(new) / len(new)
    d = statistics.fmean(new) - statistics.fmean(base)
    se2 = vb + vn
    n = len(base) + len(new)
    if se2 == 0:
        return Interval(d, d, d, confidence, n), math.inf
    df = se2**2 / (vb**2 / (len(base) - 1) + vn**2 / (len(new) - 1))
    half = t_critical(df, confidence) * math.sqrt(se2)
    return Interval(d, d - half, d + half, confidence, n), df


def mover(base: Interval, new: Interval) -> Interval:
    """new - base from each side's own interval (MOVER): unbounded where a side is."""
    d = new.estimate - base.estimate
    low = d - math.hypot(new.estimate - new.low, base.high - base.estimate)
    high = d + math.hypot(new.high - new.estimate, base.estimate - base.low)
    return Interval(d, low, high, base.confidence, base.n + new.n)


def brackets(base: Interval, new: Interval) -> Interval:
    """new - base where each side is bracketed: every value either could take, against every value of the other."""
    return Interval(new.estimate - base.estimate, new.low - base.high, new.high - base.low, base.confidence, base.n + new.n)


def proportion(count: int, total: int, confidence: float = CONFIDENCE) -> Interval:
    """A share of `total` (failures of requests) with its Wilson score interval, sound at 0 and at few counts."""
    if total < 1:
        raise ValueError("no requests")
    ci = stats.binomtest(count, total).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(count / total, float(ci.low), float(ci.high), confidence, total)


def verdict(change: Interval, smallest: float, higher_is_better: bool) -> Verdict:
    """No change where the whole interval lies within ±smallest; better or worse where it lies wholly past it;
    unsure where it straddles an edge."""
    if -smallest <= change.low and change.high <= smallest:
        return Verdict.NO_CHANGE
    if change.low > smallest:
        return Verdict.BETTER if higher_is_better else Verdict.WORSE
    if change.high < -smallest:
        return Verdict.WORSE if higher_is_better else Verdict.BETTER
    return Verdict.UNSURE


def repeats_to_settle(spread_base: float, spread_new: float, reach: float, confidence: float = CONFIDENCE) -> int | None:
    """The fewest runs a side whose Welch half-width, at these runs' standard deviations, falls under `reach`
    (the distance from the change to the nearer edge of ±MIN_CHANGE, in the figure's unit); None past MAX_REPEATS."""
    for n in range(2, MAX_REPEATS + 1):
        vb, vn = spread_base**2 / n, spread_new**2 / n
        se2 = vb + vn
        if se2 == 0:
            return n
        df = se2**2 / ((vb**2 + vn**2) / (n - 1))
        if t_critical(df, confidence) * math.sqrt(se2) < reach:
            return n
    return None


def compare(figure: Figure, base: Reading, new: Reading, min_change: float, confidence: float = CONFIDENCE,
            drift: float = 0.0) -> Change:  # fmt: skip
    """The change of one figure between two configurations' readings, its interval and its verdict. A change
    is better or worse only past MIN_CHANGE by more than `drift`, what the machine's own change of speed
    could have made of it: a CI runner slowing by a quarter is not a regression of the code."""
    df: float | None = None
    if base.own is None and new.own is None and len(base.runs) > 1 and len(new.runs) > 1:
        difference, df = welch(base.runs, new.runs, confidence)
        method = Method.WELCH
    elif figure is Figure.CAPACITY:
        difference, method = brackets(base.interval(), new.interval()), Method.BRACKETS
    else:
        difference, method = mover(base.interval(), new.interval()), Method.OWN
    scale = 1.0 if figure.in_points else abs(base.estimate)
    if scale == 0:  # nothing to be relative to
        change = unknown(0.0, confidence=confidence)
    else:
        change = Interval(difference.estimate / scale, difference.low / scale, difference.high / scale, confidence,
                          difference.n)  # fmt: skip
    smallest = min_change * FAILURE_POINTS if figure.in_points else min_change
    judged = verdict(change, smallest, figure.higher_is_better)
    allowed = verdict(replace(change, low=change.low - drift, high=change.high + drift), smallest, figure.higher_is_better)
    found = Change(figure, base.interval(), new.interval(), difference, change, smallest, method, df, allowed,
                   drift=round(drift, 4))  # fmt: skip
    if allowed is not Verdict.UNSURE:
        return found
    if judged is not Verdict.UNSURE:  # the machine could have made it: no repeat on this machine settles that
        return replace(found, settle=Settle.MACHINE)
    return _settled(found, base, new, scale, confidence)


def _settled(found: Change, base: Reading, new: Reading, scale: float, confidence: float) -> Change:
    if found.figure is Figure.CAPACITY:
        return replace(found, settle=Settle.SEARCH)
    z = float(stats.norm.ppf((1 + confidence) / 2))
    spreads = base.run_spread(z), new.run_spread(z)
    if spreads[0] is None or spreads[1] is None or scale == 0:
        return replace(found, settle=Settle.SPREAD, repeats=LEARN_REPEATS)
    d, edge = found.change.estimate, found.smallest
    reach = min(abs(d - edge), abs(d + edge)) * scale
    n = repeats_to_settle(spreads[0], spreads[1], reach, confidence)
    return replace(found, settle=Settle.TOO_CLOSE) if n is None else replace(found, settle=Settle.REPEATS, repeats=n)
