"""The gate for CI: one exit code from the verdicts and the thresholds. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from lab.compare.difference import Change, Verdict
from lab.compare.thresholds import Judged, Judgement


class Outcome(IntEnum):
    PASS = 0  # no figure worse, no threshold broken
    WORSE = 1  # a figure worse, a threshold broken, or NEW's runs failed where BASE's ran
    REFUSED = 2  # the folders cannot be compared
    UNSURE = 3  # a figure or a threshold unsure, where GATE_UNSURE=fail


def outcome(changes: Iterable[Change], judged: Iterable[Judged], *, new_failed: bool = False,
            base_failed: bool = False, unsure_fails: bool = False) -> Outcome:  # fmt: skip
    """Worse wins over unsure: a figure shown worse fails the gate whatever else is unsure. A configuration
    whose BASE runs failed has nothing to be compared against: never a pass."""
    changes, judged = list(changes), list(judged)
    if new_failed or any(c.verdict is Verdict.WORSE for c in changes) or any(j.judgement is Judgement.BROKEN for j in judged):
        return Outcome.WORSE
    if base_failed:
        return Outcome.REFUSED
    unsure = any(c.verdict is Verdict.UNSURE for c in changes) or any(
        j.judgement in (Judgement.UNSURE, Judgement.UNMEASURED) for j in judged
    )
    return Outcome.UNSURE if unsure and unsure_fails else Outcome.PASS
