"""Where a latency target is crossed along the steps of a search, with a band from every step together.

Each step judged alone says held, broke or unsure at 95%, but eight such verdicts do not make a 95% range:
any one of them can be wrong, and one wrong "broke" ends the range. The steps near the target are fitted
together instead: log p95 against the offered rate (short of saturation a queue's p95 grows about
exponentially with the rate), each step weighted by its own p95 interval, and the band is the spread of the
crossing when each step's p95 is drawn again from its interval (a parametric bootstrap), widened where the
steps scatter about the line more than their intervals allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

NEAR = 2.0  # steps whose p95 lies within this factor of the target take part in the fit
UNKNOWN_LOG_SD = 0.2  # a step without a p95 interval: about ±40% at 95%, wide enough not to steer the line
Z95 = 1.959964
DRAWS = 2000
SEED = 20241207  # fixed: a search's answer worked out anew from its records is the same answer


@dataclass(frozen=True)
class StepP95:
    """One step of a search as the fit reads it: its offered rate and its p95 with its interval (ms)."""

    rate: float
    p95_ms: float
    p95_low_ms: float | None = None
    p95_high_ms: float | None = None

    @property
    def log_sd(self) -> float:
        low, high = self.p95_low_ms, self.p95_high_ms
        if low is None or high is None or low <= 0 or high <= low:
            return UNKNOWN_LOG_SD
        return max((math.log(high) - math.log(low)) / (2 * Z95), 0.01)


@dataclass(frozen=True)
class Crossing:
    """The rate where p95 meets the target, and its band; a side of the band is None where it is open
    (in more than the band's tail of the draws the line never rose to the target)."""

    estimate: float
    low: float | None
    high: float | None
    steps: int  # how many steps the fit took

    def __str__(self) -> str:
        return f"{self.estimate:.3g} req/s {band(self.low, self.high)} from {self.steps} steps"


def capped(found: Crossing | None, ceiling: float | None) -> Crossing | None:
    """The band no higher than CEILING, the saturation of the queue the prediction measured: past it the queue
    grows without end and no p95 target holds, however flat the line over a few steps leaves the band's top."""
    if found is None or ceiling is None or ceiling <= 0:
        return found
    return replace(found, high=min(found.high if found.high is not None else math.inf, ceiling))


def band(low: float | None, high: float | None) -> str:
    """A crossing's band as the report writes it: [810, 900], an open side as 'open'; nothing where both are open
    (or the record is older than its band)."""
    if low is None and high is None:
        return ""
    return f"[{f'{low:.3g}' if low is not None else 'open'}, {f'{high:.3g}' if high is not None else 'open'}]"


def _fit(x: np.ndarray, ys: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares y = a + b x for each row of YS (one line, or one per bootstrap draw): (a, b)."""
    xm = float((w * x).sum() / w.sum())
    means = ys @ w / w.sum()
    slopes = ((ys - means[:, None]) * (w * (x - xm))).sum(axis=1) / float((w * (x - xm) ** 2).sum())
    return means - slopes * xm, slopes


def crossing_band(steps: list[StepP95], slo_ms: float, confidence: float = 0.95) -> Crossing | None:
    """The crossing of SLO_MS along STEPS with its band; None without two distinct rates near the target,
    or where the line fitted to them does not rise."""
    near = [s for s in steps if s.p95_ms > 0 and slo_ms / NEAR <= s.p95_ms <= NEAR * slo_ms]
    if len({s.rate for s in near}) < 2:
        return None
    x = np.array([s.rate for s in near])
    y = np.log([s.p95_ms for s in near])
    sd = np.array([s.log_sd for s in near])
    w = 1 / sd**2
    (a,), (b,) = _fit(x, y[None, :], w)
    if b <= 0:
        return None
    target = math.log(slo_ms)
    estimate = (target - a) / b
    if len(near) > 2:  # scatter beyond what the intervals allow widens every step's spread alike
        chi2 = float((w * (y - (a + b * x)) ** 2).sum()) / (len(near) - 2)
        sd = sd * math.sqrt(max(chi2, 1.0))
    rng = np.random.default_rng(SEED)
    draws = y + rng.standard_normal((DRAWS, len(near))) * sd
    intercepts, slopes = _fit(x, draws, w)
    rises = slopes > 0
    found = np.where(rises, (target - intercepts) / np.where(rises, slopes, 1.0), 0.0)
    # a line that does not rise never meets the target: beyond every rate if the steps sit below it
    found[~rises] = np.where(draws[~rises].mean(axis=1) < target, math.inf, -math.inf)
    tail = (1 - confidence) / 2
    low, high = np.quantile(found, [tail, 1 - tail], method="inverted_cdf")
    return Crossing(
        estimate=float(estimate),
        low=float(low) if math.isfinite(low) and low > 0 else None,
        high=float(high) if math.isfinite(high) else None,
        steps=len(near),
    )
