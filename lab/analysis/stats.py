"""Answers with error bars: estimates with confidence intervals, and the comparisons built on them.

Every interval here is an `Interval`. One that the data cannot bound (too few observations) is
not an error: its missing side is -inf or +inf and `known` is False, so it overlaps everything
("cannot tell apart") and is never `below` or `above` anything.

Two servers are "level" when their intervals overlap: the decision comes from the data's own
spread, never from a fixed percentage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

INF = math.inf


@dataclass(frozen=True)
class Interval:
    """An estimate and the interval that covers the true value with probability `confidence`."""

    estimate: float
    low: float  # -inf when the data cannot bound it from below
    high: float  # +inf when the data cannot bound it from above
    confidence: float = 0.95
    n: int = 0  # observations behind it

    @property
    def known(self) -> bool:
        """Both sides bounded."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def relative_half_width(self) -> float:
        """Half the width over the estimate: 0.05 reads "within ±5%"; inf when unbounded or the estimate is 0."""
        if not self.known or self.estimate == 0:
            return INF
        return self.width / 2 / abs(self.estimate)

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def below(self, x: float) -> bool:
        """The whole interval is under x: the true value is below x at this confidence."""
        return self.high < x

    def above(self, x: float) -> bool:
        """The whole interval is over x."""
        return self.low > x

    def __contains__(self, x: float) -> bool:
        return self.low <= x <= self.high

    def __str__(self) -> str:
        # decimals down to the half-width's first significant digit: more would be noise
        if self.known and self.width > 0:
            decimals = max(0, -math.floor(math.log10(self.width / 2)))

            def show(x: float) -> str:
                return f"{x:.{decimals}f}"

        else:

            def show(x: float) -> str:
                return f"{x:.3g}" if math.isfinite(x) else "?"

        return f"{show(self.estimate)} [{show(self.low)}, {show(self.high)}]"


def unknown(estimate: float, *, confidence: float = 0.95, n: int = 0) -> Interval:
    """An interval the data cannot bound on either side."""
    return Interval(estimate, -INF, INF, confidence, n)


def _array(values: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64).ravel()


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")


# ---------------------------------------------------------------- quantiles


def quantile(values: ArrayLike, q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) with linear interpolation between order statistics.

    The same definition as numpy's default ("linear", type 7): position h = (n - 1) q in the
    sorted values, interpolated between its neighbours. None for no values. The lab's one
    percentile function: use it for every p50/p95/p99.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], not {q}")
    data = _array(values)
    if data.size == 0:
        return None
    h = (data.size - 1) * q
    below = math.floor(h)
    above = min(below + 1, data.size - 1)
    part = np.partition(data, [below, above])  # O(n): no full sort needed for two order statistics
    lo, hi = float(part[below]), float(part[above])
    return lo + (h - below) * (hi - lo)


@lru_cache(maxsize=64)
def _binomial_cdf(n: int, p: float) -> NDArray[np.float64]:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, p), 0 < p < 1, computed in log space (no overflow)."""
    k = np.arange(1, n + 1, dtype=np.float64)
    # log pmf(k) - log pmf(k - 1) = log((n - k + 1) / k) + log(p / (1 - p))
    steps = np.log((n - k + 1) / k) + (math.log(p) - math.log1p(-p))
    log_pmf = n * math.log1p(-p) + np.concatenate(([0.0], np.cumsum(steps)))
    pmf = np.exp(log_pmf - log_pmf.max())
    cdf: NDArray[np.float64] = np.cumsum(pmf) / float(pmf.sum())
    cdf.flags.writeable = False  # shared through the cache
    return cdf


@lru_cache(maxsize=256)
def quantile_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the order statistics that bound the q-quantile of n observations.

    B, the number of observations below the true quantile, is Binomial(n, q), and
    P(x_(l) <= true < x_(u)) = P(l <= B < u). The tails are split equally, alpha/2 each, so the
    coverage is at least `confidence` (exact binomial, any n). When n is too small for one side
    (the top for q = 0.95 and n < 72), that side is None and the other becomes a one-sided bound
    at the full `confidence`; both are None when neither side fits at alpha/2.
    """
    _check_confidence(confidence)
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1) for an interval, not {q}")
    if n < 1:
        return None, None
    cdf = _binomial_cdf(n, q)  # cdf[r - 1] = P(B < r)
    alpha = 1 - confidence

    def lower(tail: float) -> int | None:  # the largest l with P(B < l) <= tail
        count = int(np.searchsorted(cdf, tail, side="right"))  # how many r have P(B < r) <= tail
        return min(count, n) if count > 0 else None

    def upper(tail: float) -> int | None:  # the smallest u with P(B >= u) <= tail
        r = int(np.searchsorted(cdf, 1 - tail, side="left")) + 1
        return r if r <= n else None

    return split_tails(lower, upper, alpha)


def split_tails(
    lower: Callable[[float], int | None], upper: Callable[[float], int | None], alpha: float
) -> tuple[int | None, int | None]:
    """alpha/2 in each tail where both sides fit; else the side that fits, one-sided at the whole alpha."""
    low, high = lower(alpha / 2), upper(alpha / 2)
    if low is not None and high is not None:
        return low, high
    if low is not None:
        return lower(alpha), None
    if high is not None:
        return None, upper(alpha)
    return None, None


def quantile_interval(values: ArrayLike, q: float, confidence: float = 0.95) -> Interval:
    """The q-quantile with a distribution-free interval from order statistics (see `quantile_ranks`).

    It assumes independent observations: for latencies of one queue, which are correlated in
    time, it is too narrow; prefer comparing runs. Raises ValueError for no values.
    """
    data = np.sort(_array(values))
    estimate = quantile(data, q)
    if estimate is None:
        raise ValueError("no values")
    low_rank, high_rank = quantile_ranks(int(data.size), q, confidence)
    low = float(data[low_rank - 1]) if low_rank is not None else -INF
    high = float(data[high_rank - 1]) if high_rank is not None else INF
    return Interval(estimate, low, high, confidence, int(data.size))


def design_effect(values: list[float], estimate: float, batches: int = 10) -> float:
    """How many times fewer independent observations these values (in time order) are worth, as seen
    at `estimate`: the variance of the share above it over batch means, against the binomial one."""
    n = len(values)
    if n < 2 * batches:
        return 1.0
    above = [float(v > estimate) for v in values]
    share = float(np.mean(above))
    batch_se = batch_means_interval(above, batches).width / 2 / t_critical(batches - 1)
    return max(1.0, batch_se**2 / max(share * (1 - share) / n, 1 / n**2))


def correlated_quantile_interval(runs: list[list[float]], q: float, confidence: float = 0.95) -> Interval:
    """The q-quantile over several runs of values in time order, with its interval from order
    statistics widened for the correlation between neighbours.

    `quantile_interval` assumes independent values, but the latencies of one queue wait behind the
    same requests: in simulated M/D/1 windows of 60 s at their capacity, its 95% interval for p95 lay
    wholly on one side of the true p95 three times in ten. Each run's design effect says how many
    independent values it is worth; the interval is the order statistics that bound the quantile for
    that many, at the same fractions of all the values. `n` of the result is that effective count."""
    values = [v for run in runs for v in run]
    plain = quantile_interval(values, q, confidence)
    n = len(values)
    effective = max(1, int(sum(len(r) / design_effect(r, plain.estimate) for r in runs if r)))
    if effective >= n:
        return plain
    low_rank, high_rank = quantile_ranks(effective, q, confidence)
    ordered = sorted(values)
    low = ordered[max(1, math.floor(low_rank * n / effective)) - 1] if low_rank else -INF
    high = ordered[min(n, math.ceil(high_rank * n / effective)) - 1] if high_rank else INF
    return Interval(plain.estimate, low, high, confidence, effective)


# ---------------------------------------------------------------- means


@lru_cache(maxsize=512)
def t_critical(df: float, confidence: float = 0.95) -> float:
    """t such that P(|T| < t) = confidence for Student's t with df degrees of freedom (Welch's are not whole)."""
    _check_confidence(confidence)
    if not df > 0:
        raise ValueError("df must be above 0")
    from scipy import stats  # here: a second's import that only the intervals need, not every command of the lab

    return float(stats.t.ppf((1 + confidence) / 2, df))


def mean_interval(samples: ArrayLike, confidence: float = 0.95) -> Interval:
    """The mean with a Student-t interval, for independent samples such as repeats of a run.

    One sample gives an unknown interval; none raises ValueError.
    """
    data = _array(samples)
    if data.size == 0:
        raise ValueError("no samples")
    mean = float(data.mean())
    if data.size < 2:
        return unknown(mean, confidence=confidence, n=int(data.size))
    half = t_critical(int(data.size) - 1, confidence) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return Interval(mean, mean - half, mean + half, confidence, int(data.size))


def batch_means_interval(series: ArrayLike, batches: int = 10, confidence: float = 0.95) -> Interval:
    """The mean of an autocorrelated series (say requests per second) by non-overlapping batch means.

    Neighbouring seconds are correlated, so a t-interval over the raw points is too narrow; the
    means of long contiguous batches are nearly independent, and the t-interval over them with
    batches - 1 degrees of freedom is honest. Batches are of equal size; the remainder is dropped
    from the start, where a run settles. Fewer points than batches: one point per batch.
    """
    if batches < 2:
        raise ValueError("at least 2 batches")
    data = _array(series)
    if data.size == 0:
        raise ValueError("no values")
    count = min(batches, int(data.size))
    size = int(data.size) // count
    used = data[data.size - size * count :]
    mean = float(used.mean())
    if count < 2:
        return unknown(mean, confidence=confidence, n=int(used.size))
    means = used.reshape(count, size).mean(axis=1)
    half = t_critical(count - 1, confidence) * float(means.std(ddof=1)) / math.sqrt(count)
    return Interval(mean, mean - half, mean + half, confidence, int(used.size))


# ---------------------------------------------------------------- lines


@dataclass(frozen=True)
class Line:
    """y = slope x + intercept by least squares, each with its t-interval (n - 2 degrees of freedom)."""

    slope: Interval
    intercept: Interval
    residual_sd: float
    n: int

    def at(self, x: float) -> float:
        return self.slope.estimate * x + self.intercept.estimate


def slope_intercept(xs: ArrayLike, ys: ArrayLike, confidence: float = 0.95) -> Line:
    """Least-squares line with intervals for its slope and intercept.

    For CPU seconds against requests served over several steps, the slope is CPU seconds per
    request and the intercept is idle CPU. Two points fit exactly: unknown intervals. Raises
    ValueError for fewer than 2 points, unequal lengths, or xs all equal.
    """
    x, y = _array(xs), _array(ys)
    if x.size != y.size:
        raise ValueError("xs and ys differ in length")
    n = int(x.size)
    if n < 2:
        raise ValueError("at least 2 points")
    x_mean, y_mean = float(x.mean()), float(y.mean())
    sxx = float(((x - x_mean) ** 2).sum())
    if sxx == 0:
        raise ValueError("xs are all equal: no slope")
    slope = float(((x - x_mean) * (y - y_mean)).sum()) / sxx
    intercept = y_mean - slope * x_mean
    if n == 2:
        return Line(unknown(slope, confidence=confidence, n=n), unknown(intercept, confidence=confidence, n=n), 0.0, n)
    residuals = y - (slope * x + intercept)
    sd = math.sqrt(float((residuals**2).sum()) / (n - 2))
    t = t_critical(n - 2, confidence)
    slope_half = t * sd / math.sqrt(sxx)
    intercept_half = t * sd * math.sqrt(1 / n + x_mean**2 / sxx)
    return Line(
        Interval(slope, slope - slope_half, slope + slope_half, confidence, n),
        Interval(intercept, intercept - intercept_half, intercept + intercept_half, confidence, n),
        sd,
        n,
    )


# ---------------------------------------------------------------- comparisons


def level(a: Interval, b: Interval) -> bool:
    """Level with each other: the intervals overlap, so the data cannot tell which is larger."""
    return a.overlaps(b)


@dataclass(frozen=True)
class Ranked:
    name: str
    interval: Interval
    rank: int  # 1 + how many others are clearly better (intervals apart): level ones share a rank
    level_with: tuple[str, ...]  # the others whose intervals overlap this one


def ranked(items: Mapping[str, Interval], *, higher_is_better: bool = True) -> list[Ranked]:
    """Best estimate first; ranks count only clear wins, so level entries share a rank."""

    def better(a: Interval, b: Interval) -> bool:
        return a.above(b.high) if higher_is_better else a.below(b.low)

    order = sorted(items.items(), key=lambda item: item[1].estimate, reverse=higher_is_better)
    return [
        Ranked(
            name,
            interval,
            1 + sum(better(other, interval) for _, other in order),
            tuple(other_name for other_name, other in order if other_name != name and level(interval, other)),
        )
        for name, interval in order
    ]


@dataclass(frozen=True)
class Trend:
    first: Interval  # the q-quantile of the first part of the window
    last: Interval  # the q-quantile of the last part

    @property
    def rising(self) -> bool:
        return self.first.below(self.last.low)

    @property
    def falling(self) -> bool:
        return self.first.above(self.last.high)

    @property
    def change(self) -> float:
        return self.last.estimate - self.first.estimate


def trend_interval(values: ArrayLike, q: float = 0.5, *, share: float = 1 / 3, confidence: float = 0.95) -> Trend:
    """Whether values in time order (say latencies by start time) rise across a window beyond chance.

    Method: the q-quantile of the first and of the last `share` of the values, each with its
    distribution-free interval (`quantile_interval`); rising when the two intervals are apart and
    the last is higher. Requiring non-overlap of two 95% intervals is stricter than a 5% test,
    which suits latencies: they are correlated in time, so each interval is narrower than it
    should be. Too few values give unknown intervals, and then neither rising nor falling.
    """
    if not 0 < share <= 0.5:
        raise ValueError("share must be in (0, 0.5]")
    data = _array(values)
    part = int(data.size * share)
    if part < 1:
        raise ValueError("too few values for a first and a last part")
    return Trend(quantile_interval(data[:part], q, confidence), quantile_interval(data[-part:], q, confidence))
