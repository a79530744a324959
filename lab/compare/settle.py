"""Repeats that stop once they have said what they were run for: `make bench ... BASE=folder` compares the
runs so far with BASE after each round of repeats (every configuration once more, interleaved), and stops
the bench when no figure's verdict is unsure (each change's interval lies clearly inside or outside
±MIN_CHANGE). Repeats beyond that would narrow intervals that already decide."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from lab.compare.comparison import Comparison, Settings, compared
from lab.compare.difference import Settle, Verdict
from lab.compare.folders import read_side

Settled = Callable[[Path], str | None]  # the bench's folder so far -> why it may stop, or None


def against(base: Path, settings: Settings) -> Settled:
    """The check a bench runs after each round of repeats, against BASE as read once."""
    side = read_side(base, "BASE")

    def settled(folder: Path) -> str | None:
        found = compared(side, read_side(folder, "NEW"), settings)
        if not isinstance(found, Comparison) or not found.compared or found.only_base or found.only_new:
            return None  # not (yet) comparable whole: the comparison at the end says why
        changes = [change for row in found.compared for change in row.changes]
        verdicts = Counter(change.verdict for change in changes)
        if not verdicts or any(c.verdict is Verdict.UNSURE and c.settle is not Settle.MACHINE for c in changes):
            return None
        said = ", ".join(f"{count} {verdict}" for verdict, count in verdicts.items())
        if verdicts[Verdict.UNSURE]:  # more runs on a machine whose speed moves that much do not settle it
            return f"every figure's verdict against {base} is decided or unsure for the machine's own drift alone ({said})"
        return f"every figure's verdict against {base} is decided ({said})"

    return settled
