"""What a comparison says, in words: the figures and their units, the changes and verdicts, the configurations,
the refusals, the machine note and the thresholds. Every sentence of the output is made here."""

from __future__ import annotations

import math

from lab.analysis.stats import Interval
from lab.compare.comparison import Comparison, Configuration
from lab.compare.difference import FAILURE_POINTS, MAX_REPEATS, Change, Method, Settle, Verdict
from lab.compare.figures import Figure
from lab.compare.gate import Outcome
from lab.compare.setups import Alike, Aspect, Empty, MachineNote, Refusal, Setup, Unlike
from lab.compare.thresholds import Judged, Judgement, Threshold

NAMES = {
    Figure.RPS: "throughput",
    Figure.P50: "p50",
    Figure.P95: "p95",
    Figure.P99: "p99",
    Figure.FAILURES: "failure share",
    Figure.CPU: "CPU per request",
    Figure.CAPACITY: "capacity at the target",
    Figure.MEMORY: "memory per worker",
}
UNITS = {Figure.RPS: "req/s", Figure.P50: "ms", Figure.P95: "ms", Figure.P99: "ms", Figure.FAILURES: "",
         Figure.CPU: "ms", Figure.CAPACITY: "req/s", Figure.MEMORY: "MB"}  # fmt: skip
MACHINE_MARK = "†"  # beside every verdict where the machines differ
GATE_WORDS = {Outcome.PASS: "pass", Outcome.WORSE: "fail", Outcome.REFUSED: "cannot compare", Outcome.UNSURE: "unsure"}


def number(x: float) -> str:
    if not math.isfinite(x):
        return "?"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3g}"


def value(figure: Figure, x: float) -> str:
    if figure is Figure.FAILURES:
        return f"{x * 100:.2f}%"
    return f"{number(x)} {UNITS[figure]}"


def interval(figure: Figure, i: Interval) -> str:
    return f"{value(figure, i.estimate)} [{value(figure, i.low)}, {value(figure, i.high)}]"


def _signed(x: float, points: bool) -> str:
    if not math.isfinite(x):
        return "?"
    return f"{x * 100:+.2f} pt" if points else f"{x * 100:+.1f}%"


def change(c: Change) -> str:
    """The change with its 95% interval: relative to the base, or in points for the failure share."""
    points = c.figure.in_points
    return f"{_signed(c.change.estimate, points)} [{_signed(c.change.low, points)}, {_signed(c.change.high, points)}]"


def verdict(c: Change) -> str:
    if c.verdict is Verdict.BETTER:
        return "better"
    if c.verdict is Verdict.WORSE:
        return "**worse**"
    if c.verdict is Verdict.NO_CHANGE:
        return "no change shown"
    if c.settle is Settle.REPEATS:
        return f"unsure: repeat with REPEATS={c.repeats}"
    if c.settle is Settle.SPREAD:
        return f"unsure: one run a side shows no spread of its own; repeat with REPEATS={c.repeats}"
    if c.settle is Settle.MACHINE:
        return (f"unsure: the machine's own speed moved by up to {c.drift:.0%} (its fixed loop), enough to make this "
                "change; compare on a steadier machine")  # fmt: skip
    if c.settle is Settle.TOO_CLOSE:
        return f"unsure: it sits at the edge of ±MIN_CHANGE; more than REPEATS={MAX_REPEATS} would be needed"
    return "unsure: the searches' brackets straddle the edge; more steps would narrow them"


# ---------------------------------------------------------------- configurations


def aspect(setup: Setup, name: Aspect) -> str:
    """One aspect of a configuration, as a refusal or a heading names it."""
    if name == "mode":
        return setup.mode
    if name == "cpus":
        limit = setup.cpus
        return ("no CPU limit" if limit.cpus == 0 else f"CPUS={limit.cpus:g}") + ("" if limit.enforced else " (not enforced)")
    if name == "workload":
        w = setup.workload
        size = [f"IO_SECONDS={w.io_seconds:g}" if w.io_seconds is not None else "",
                f"PRIMES_LIMIT={w.primes_limit}" if w.primes_limit is not None else "",
                f"{w.cpu_share:.0%} cpu" if w.cpu_share is not None else ""]  # fmt: skip
        return f"{w.kind} ({', '.join(s for s in size if s)})" if any(size) else w.kind
    if name == "arrivals":
        a = setup.arrivals
        if a.users is not None:
            return f"a closed loop of {a.users} users"
        return f"open arrivals at {a.rate:g}/s ({a.process})" if a.rate is not None else f"open arrivals searched ({a.process})"
    if name == "target":
        return f"p95 target {setup.target:g} ms" if setup.target is not None else "no target"
    if name == "db_pool":
        return "a connection pool" if setup.db_pool == "1" else "a connection per request"
    if name == "cpu_offload":
        return f"CPU_OFFLOAD={setup.cpu_offload}"
    if name == "interpreter":
        b = setup.interpreter
        if b is None:
            return "an interpreter the records do not name"
        built = [x for x, on in (("PGO", b.optimizations), ("LTO", b.lto), ("no GIL", not b.gil)) if on]
        return f"{b.implementation} {b.version}" + (f" ({', '.join(built)})" if built else "")
    if name == "app":
        return f"APP={setup.app}" if setup.app else "the lab's own endpoint"
    if name == "backend":
        return f"the {setup.backend} backend"
    return f"{name.upper()}={getattr(setup, name)}"


def named(label: str, setup: Setup) -> str:
    """A configuration's label, what it serves, its limit and its arrivals."""
    parts = [label, aspect(setup, "workload"), aspect(setup, "cpus"), aspect(setup, "arrivals")]
    if setup.target is not None:
        parts.append(aspect(setup, "target"))
    if setup.app:
        parts.append(aspect(setup, "app"))
    return " · ".join(parts)


def configuration(c: Configuration) -> str:
    return named(c.label, c.setup)


def heading(base: Configuration, new: Configuration) -> str:
    """A pair's heading: its configuration, or both where COMPARE_ACROSS let them differ."""
    b, n = configuration(base), configuration(new)
    return n if b == n else f"{b} → {n}"


def runs(c: Configuration) -> str:
    return "1 run" if c.runs == 1 else f"{c.runs} runs"


def refusal(r: Refusal) -> str:
    """Why two folders cannot be compared, in one line."""
    if isinstance(r, Empty):
        return f"cannot compare: {r.side} holds no configuration to compare"
    if isinstance(r, Alike):
        names = ", ".join(configuration(Configuration.of(g)) for g in r.groups)
        return (f"cannot compare: what COMPARE_ACROSS leaves out makes {len(r.groups)} configurations of {r.side} alike "
                f"({names}): compare folders that differ only in it")  # fmt: skip
    assert isinstance(r, Unlike)
    apart = "; ".join(f"{a}: {aspect(r.base.setup, a)} in BASE, {aspect(r.new.setup, a)} in NEW" for a in r.aspects)
    return (f"cannot compare: no configuration of NEW is like one of BASE; the closest differ in {apart}. Compare like "
            f"with like, or name the difference that is the question: COMPARE_ACROSS={','.join(r.aspects)}")  # fmt: skip


def across(c: Configuration, other: Configuration, aspects: tuple[Aspect, ...]) -> str:
    return "; ".join(f"{a}: {aspect(c.setup, a)} in BASE, {aspect(other.setup, a)} in NEW" for a in aspects)


# ---------------------------------------------------------------- machines, methods, thresholds, the gate


def machine(note: MachineNote) -> str:
    b, n = note.base, note.new
    if note.pace is None:
        return (f"{MACHINE_MARK} BASE ran on {b.host} ({b.cpu_model}), NEW on {n.host} ({n.cpu_model}), and the fixed "
                "loop's speed does not tell the machines apart here (not timed on both, or the interpreter is the "
                "question): every figure is compared as measured.")  # fmt: skip
    faster = "faster" if note.pace > 1 else "slower"
    return (f"{MACHINE_MARK} NEW's machine ran the fixed loop in {n.loop_s or 0:.3f} s against BASE's "
            f"{b.loop_s or 0:.3f} s: {abs(note.pace - 1):.0%} {faster}, past the {note.noise or 0:.0%} the loop moves "
            f"on its own. NEW's CPU per request is scaled by {note.pace:.3f} to BASE's pace; the other figures are "
            "compared as measured.")  # fmt: skip


def method(c: Change) -> str:
    if c.method is Method.WELCH:
        return f"Welch's t over the repeats ({c.df:.1f} degrees of freedom)" if c.df and math.isfinite(c.df) else "Welch"
    return "the searches' brackets, bound against bound" if c.method is Method.BRACKETS else "each side's own interval"


def threshold(t: Threshold) -> str:
    unit = "%" if t.figure is Figure.FAILURES else "" if UNITS[t.figure] == "req/s" else UNITS[t.figure]
    limit = f"{t.limit * 100:g}" if t.figure is Figure.FAILURES else f"{t.limit:g}"
    return f"{t.figure}{t.op}{limit}{unit}"


JUDGEMENTS = {Judgement.HELD: "held", Judgement.BROKEN: "**broken**", Judgement.UNSURE: "unsure: the interval straddles it",
              Judgement.UNMEASURED: "not measured here"}  # fmt: skip


def judged(j: Judged) -> str:
    """One line a terminal shows: the limit, the configuration, its interval and the judgement."""
    where = f" {named(j.label, j.setup)}" if j.setup else ""
    shown = f": {interval(j.threshold.figure, j.interval)}" if j.interval else ""
    return f"{threshold(j.threshold)}{where}{shown}: {JUDGEMENTS[j.judgement]}"


def header(c: Comparison) -> str:
    across = f" · COMPARE_ACROSS={','.join(c.settings.across)}" if c.settings.across else ""
    return (f"BASE `{c.base.path}` ({c.base.kind} {c.base.name}) · NEW `{c.new.path}` ({c.new.kind} {c.new.name}) · "
            f"MIN_CHANGE={c.settings.min_change:.0%}{across}")  # fmt: skip


def worse(c: Comparison) -> list[str]:
    """Each figure that fails the gate, named with its interval."""
    found = [f"{NAMES[x.figure]} of {configuration(row.new)}: {change(x)}" for row in c.compared for x in row.changes
             if x.verdict is Verdict.WORSE]  # fmt: skip
    found += [f"{configuration(row.new)}: NEW's runs failed ({row.new.failed})" for row in c.compared if row.new_failed]
    found += [judged(j) for j in c.thresholds if j.judgement is Judgement.BROKEN]
    return found


def gate(c: Comparison) -> str:
    """The outcome in one line: what the gate says, and which exit code it gives (or would, with GATE=1)."""
    code = int(c.outcome)
    exits = f"exit {code}" if c.settings.gate else f"GATE=1 would exit {code}"
    if c.outcome is Outcome.WORSE:
        return f"Gate: fail ({exits}). Worse: " + "; ".join(worse(c))
    if c.outcome is Outcome.REFUSED:  # paired, but BASE's runs of a configuration failed: nothing to hold NEW to
        failed = [f"{configuration(row.base)}: BASE's runs failed ({row.base.failed})" for row in c.compared if row.base.failed]
        return f"Gate: cannot compare ({exits}). " + "; ".join(failed)
    if c.outcome is Outcome.UNSURE:
        return f"Gate: unsure ({exits}, GATE_UNSURE=fail): a figure or a threshold is unsure"
    return f"Gate: pass ({exits}): no figure is worse" + (", no threshold broken" if c.thresholds else "")


def rule(min_change: float) -> str:
    return (f"A change within ±{min_change:.0%} whole is no change (the failure share: ±{min_change * FAILURE_POINTS * 100:.2g} "
            "points); "
            f"wholly past it, better or worse; across an edge, unsure. Intervals are 95% intervals of the difference: "
            "Welch's t over repeats, else each side's own interval (a run's samples, a failure count) combined, and "
            "capacity searches' brackets bound against bound; a run's own interval is never narrower than its "
            "machine's run-to-run spread.")  # fmt: skip
