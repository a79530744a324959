"""THRESHOLDS="p95<300ms rps>50 failures<1%": absolute limits in k6's words, judged on each figure's 95%
interval rather than its point. A limit is broken only where the whole interval lies past it, held where the
whole interval keeps it, and unsure where the interval straddles it. Pure; the text is read by the knob's
own grammar (contract.comparing.thresholds), so a bad THRESHOLDS stops `make` before anything starts."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from contract.comparing import thresholds as terms
from lab.analysis.stats import Interval
from lab.compare.figures import Figure
from lab.compare.setups import Group, Setup


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    @property
    def holds(self) -> Callable[[float, float], bool]:
        return {Op.LT: operator.lt, Op.LE: operator.le, Op.GT: operator.gt, Op.GE: operator.ge}[self]


@dataclass(frozen=True)
class Threshold:
    figure: Figure
    op: Op
    limit: float  # in the figure's own unit (ms, req/s, a share, ms of CPU, MB)


class Judgement(StrEnum):
    HELD = "held"
    BROKEN = "broken"
    UNSURE = "unsure"
    UNMEASURED = "unmeasured"  # the folder has no such figure: nothing says it held


@dataclass(frozen=True)
class Judged:
    threshold: Threshold
    label: str  # the configuration ("" where no configuration has the figure)
    setup: Setup | None
    interval: Interval | None
    judgement: Judgement


def parse(text: str) -> tuple[Threshold, ...]:
    """THRESHOLDS' limits; KnobError names the first that does not read."""
    return tuple(Threshold(Figure(figure), Op(op), limit) for figure, op, limit in terms(text))


def judge(threshold: Threshold, interval: Interval) -> Judgement:
    """Each end of the interval either keeps the limit or not; the limits are one-sided, so the ends say
    it for the whole interval."""
    kept = [threshold.op.holds(end, threshold.limit) for end in (interval.low, interval.high)]
    return Judgement.HELD if all(kept) else Judgement.BROKEN if not any(kept) else Judgement.UNSURE


def judged(limits: Sequence[Threshold], groups: Sequence[Group]) -> tuple[Judged, ...]:
    """Every limit against every measured configuration that has its figure."""
    found: list[Judged] = []
    for threshold in limits:
        having = [g for g in groups if threshold.figure in g.readings]
        if not having:
            found.append(Judged(threshold, "", None, None, Judgement.UNMEASURED))
        for g in having:
            interval = g.readings[threshold.figure].interval()
            found.append(Judged(threshold, g.label, g.setup, interval, judge(threshold, interval)))
    return tuple(found)
