"""Which configurations of two folders may be compared: each as its server reported running it, paired with
the other folder's like it; a difference that makes them unlike refuses, by name, unless COMPARE_ACROSS
says it is the question. And whether the two ran on machines of another speed. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, get_args

from lab.compare.figures import Figure, Reading

# What sets two configurations apart: the fields of Setup, by the names COMPARE_ACROSS takes
# (contract.comparing.COMPARE_ASPECTS).
Aspect = Literal["mode", "workers", "threads", "cpus", "workload", "arrivals", "target", "db_pool", "cpu_offload",
                 "interpreter", "app", "backend"]  # fmt: skip
ASPECTS: tuple[Aspect, ...] = get_args(Aspect)
SPEED_NOISE = 0.02  # the fixed loop's own wobble (best of three rounds) where no folder measured it twice


@dataclass(frozen=True)
class Limit:
    cpus: float  # 0: none asked
    enforced: bool


@dataclass(frozen=True)
class Work:
    """What each request does: its kind, and the knobs that size it (None where they do not apply)."""

    kind: str
    io_seconds: float | None = None
    primes_limit: int | None = None
    cpu_share: float | None = None


@dataclass(frozen=True)
class Arrivals:
    """A closed loop of `users`; open arrivals at `rate` a second (a `process`: poisson or constant); or a
    capacity search's open arrivals, at the rates it chose (`process` alone)."""

    users: int | None = None
    rate: float | None = None
    process: str | None = None


@dataclass(frozen=True)
class Build:
    """The interpreter that served, as it told of itself (contract.interpreter.build)."""

    implementation: str
    version: str
    optimizations: bool
    lto: bool
    gil: bool


@dataclass(frozen=True)
class Setup:
    """A configuration as it ran: one field per aspect."""

    mode: str
    workers: int
    threads: int
    cpus: Limit
    workload: Work
    arrivals: Arrivals
    target: float | None  # a capacity search's p95 target, ms
    db_pool: str
    cpu_offload: str
    interpreter: Build | None  # None: the records do not say
    app: str | None  # None: the lab's own endpoint
    backend: str

    def key(self, across: frozenset[str]) -> tuple[object, ...]:
        """What pairs it with the other folder's: every aspect but those COMPARE_ACROSS names."""
        return tuple(getattr(self, a) for a in ASPECTS if a not in across)


def differences(a: Setup, b: Setup, across: Iterable[str] = ()) -> tuple[Aspect, ...]:
    """The aspects in which two setups differ, leaving out those named."""
    left = set(across)
    return tuple(x for x in ASPECTS if x not in left and getattr(a, x) != getattr(b, x))


@dataclass(frozen=True)
class Group:
    """A configuration of a folder: its runs grouped by setup, and what they read; or why none measured."""

    setup: Setup
    label: str
    runs: int
    readings: dict[Figure, Reading] = field(default_factory=dict)
    failed: str | None = None  # every run of it failed: the last one's reason


@dataclass(frozen=True)
class Pair:
    base: Group
    new: Group
    across: tuple[Aspect, ...]  # the differences that are the question (COMPARE_ACROSS)


@dataclass(frozen=True)
class Pairing:
    pairs: tuple[Pair, ...]
    only_base: tuple[Group, ...]  # configurations the other folder lacks
    only_new: tuple[Group, ...]


@dataclass(frozen=True)
class Unlike:
    """No configuration pairs: the closest two and the aspects that part them."""

    base: Group
    new: Group
    aspects: tuple[Aspect, ...]


@dataclass(frozen=True)
class Alike:
    """COMPARE_ACROSS leaves two configurations of one folder alike: which of them to compare is not said."""

    side: Literal["BASE", "NEW"]
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Empty:
    """A folder without a configuration to compare."""

    side: Literal["BASE", "NEW"]


Refusal = Unlike | Alike | Empty


def pair(base: Sequence[Group], new: Sequence[Group], across: frozenset[str]) -> Pairing | Refusal:
    """Each configuration of NEW with BASE's like it (alike but for the aspects in `across`)."""
    for side, groups in (("BASE", base), ("NEW", new)):
        if not groups:
            return Empty("BASE" if side == "BASE" else "NEW")
        keyed: dict[tuple[object, ...], list[Group]] = {}
        for g in groups:
            keyed.setdefault(g.setup.key(across), []).append(g)
        if alike := next((tuple(gs) for gs in keyed.values() if len(gs) > 1), None):
            return Alike("BASE" if side == "BASE" else "NEW", alike)
    by_key = {g.setup.key(across): g for g in base}
    pairs = tuple(Pair(by_key[k], g, differences(by_key[k].setup, g.setup)) for g in new if (k := g.setup.key(across)) in by_key)
    if not pairs:
        b, n = min(((b, n) for b in base for n in new), key=lambda bn: len(differences(bn[0].setup, bn[1].setup, across)))
        return Unlike(b, n, differences(b.setup, n.setup, across))
    paired = {id(p.base) for p in pairs} | {id(p.new) for p in pairs}
    return Pairing(pairs, tuple(g for g in base if id(g) not in paired), tuple(g for g in new if id(g) not in paired))


# ---------------------------------------------------------------- machines and folders


@dataclass(frozen=True)
class Machine:
    """What a folder ran on: the host, and the CPU seconds of the servers' interpreter for the fixed loop
    (contract.interpreter.speed), with how much that moved within the folder (lab.analysis.intervals.machine_spread)."""

    host: str
    cpu_model: str
    loop_s: float | None
    spread: float | None


@dataclass(frozen=True)
class MachineNote:
    """Said beside every verdict: the two ran on machines apart in speed, or on other hosts of unknown speed."""

    base: Machine
    new: Machine
    pace: float | None  # BASE's loop over NEW's: above 1, NEW's machine is faster; None: not measured on both
    noise: float | None  # what the loop moved on its own, which the pace is past
    scaled: bool  # NEW's CPU per request is put on BASE's pace


def _moved(base: Machine, new: Machine) -> float | None:
    """The larger move of the fixed loop within either folder; None where neither took it twice."""
    return max((s for s in (base.spread, new.spread) if s is not None), default=None)


def machines(base: Machine, new: Machine, across: frozenset[str]) -> MachineNote | None:
    """A note where the machines' speeds differ beyond the loop's own spread (NEW's CPU per request then scaled
    by it), or where the hosts differ and a speed is unknown; None where the two ran alike. Where the
    interpreter is the question, the loop times the interpreter too: no speed is read from it."""
    other_host = (base.host, base.cpu_model) != (new.host, new.cpu_model)
    if "interpreter" in across or base.loop_s is None or new.loop_s is None:
        return MachineNote(base, new, None, None, False) if other_host else None
    pace = base.loop_s / new.loop_s
    moved = _moved(base, new)
    noise = SPEED_NOISE if moved is None else moved
    if abs(pace - 1) <= noise:
        return None
    return MachineNote(base, new, pace, noise, True)


def drift(base: Machine, new: Machine, across: frozenset[str], note: MachineNote | None, figure: Figure) -> float:
    """How far the machine's own speed may have moved `figure` apart from any change of the code, as a share: the
    fixed loop's move within either folder, and between the two where both took it on one interpreter and NEW's
    figure is not put on BASE's pace (its CPU per request is, where the note says so). First order: a figure near
    saturation moves more than the speed does."""
    if not figure.timed:
        return 0.0
    within = _moved(base, new) or 0.0
    put_right = note is not None and note.scaled and figure is Figure.CPU
    between = 0.0
    if "interpreter" not in across and base.loop_s and new.loop_s and not put_right:
        between = abs(base.loop_s / new.loop_s - 1)
    return within + between


def on_base_pace(group: Group, note: MachineNote | None) -> Group:
    """NEW's configuration with its CPU per request as BASE's machine would have spent it."""
    if note is None or not note.scaled or note.pace is None or Figure.CPU not in group.readings:
        return group
    readings = {**group.readings, Figure.CPU: group.readings[Figure.CPU].scaled(note.pace)}
    return Group(group.setup, group.label, group.runs, readings, group.failed)


class Kind(StrEnum):
    EXPERIMENT = "experiment"
    CAPACITY = "capacity search"
    DECISION = "decision"
    KEPT = "kept runs"


@dataclass(frozen=True)
class Side:
    """One results folder, as a comparison reads it."""

    path: str
    name: str
    kind: Kind
    groups: tuple[Group, ...]
    machine: Machine
