"""A comparison of two folders, whole: the settings it was judged by, each pair of configurations with the
change of every figure both have, what did not pair, the machine note, the thresholds on NEW, and the gate's
outcome. Pure: two folders as read (lab.compare.folders) in, a Comparison or a refusal out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lab.compare.difference import Change, compare
from lab.compare.figures import Figure
from lab.compare.gate import Outcome, outcome
from lab.compare.setups import (
    Aspect,
    Group,
    Kind,
    MachineNote,
    Pairing,
    Refusal,
    Setup,
    Side,
    drift,
    machines,
    on_base_pace,
    pair,
)
from lab.compare.thresholds import Judged, Threshold, judged, parse


@dataclass(frozen=True)
class Settings:
    min_change: float = 0.05
    across: tuple[str, ...] = ()
    gate: bool = False
    unsure_fails: bool = False
    thresholds: tuple[Threshold, ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, object]) -> Settings:
        """From the knobs as contract.knobs.compare_settings reads them."""
        change = values.get("MIN_CHANGE")
        return cls(
            min_change=change if isinstance(change, float) else cls.min_change,
            across=tuple(str(values.get("COMPARE_ACROSS") or "").split()),
            gate=values.get("GATE") == "1",
            unsure_fails=values.get("GATE_UNSURE") == "fail",
            thresholds=parse(str(values.get("THRESHOLDS") or "")),
        )


@dataclass(frozen=True)
class Configuration:
    """One configuration of a folder, as the output names it."""

    label: str
    setup: Setup
    runs: int
    failed: str | None

    @classmethod
    def of(cls, group: Group) -> Configuration:
        return cls(group.label, group.setup, group.runs, group.failed)


@dataclass(frozen=True)
class Compared:
    base: Configuration
    new: Configuration
    across: tuple[Aspect, ...]  # how they differ, as COMPARE_ACROSS allowed
    changes: tuple[Change, ...]

    @property
    def new_failed(self) -> bool:
        """NEW's runs failed where BASE's ran: worse, whatever a figure would have said."""
        return self.new.failed is not None and self.base.failed is None


@dataclass(frozen=True)
class Folder:
    path: str
    name: str
    kind: Kind


@dataclass(frozen=True)
class Comparison:
    base: Folder
    new: Folder
    settings: Settings
    machine: MachineNote | None
    compared: tuple[Compared, ...]
    only_base: tuple[Configuration, ...]
    only_new: tuple[Configuration, ...]
    thresholds: tuple[Judged, ...]  # judged on NEW's figures as measured
    outcome: Outcome


def compared(base: Side, new: Side, settings: Settings) -> Comparison | Refusal:
    across = frozenset(settings.across)
    found = pair(base.groups, new.groups, across)
    if not isinstance(found, Pairing):
        return found
    note = machines(base.machine, new.machine, across)
    rows = []
    for p in found.pairs:
        theirs = on_base_pace(p.new, note)
        changes = tuple(compare(f, p.base.readings[f], theirs.readings[f], settings.min_change,
                                drift=drift(base.machine, new.machine, across, note, f))
                        for f in Figure if f in p.base.readings and f in theirs.readings)  # fmt: skip
        rows.append(Compared(Configuration.of(p.base), Configuration.of(p.new), p.across, changes))
    limits = judged(settings.thresholds, [g for g in new.groups if g.failed is None])
    gate = outcome((c for row in rows for c in row.changes), limits, new_failed=any(row.new_failed for row in rows),
                   base_failed=any(row.base.failed is not None for row in rows),
                   unsure_fails=settings.unsure_fails)  # fmt: skip
    return Comparison(
        Folder(base.path, base.name, base.kind), Folder(new.path, new.name, new.kind), settings, note, tuple(rows),
        tuple(map(Configuration.of, found.only_base)), tuple(map(Configuration.of, found.only_new)), limits, gate,
    )  # fmt: skip
