"""Every sentence the report says, from what its parts decided: a sentence changes here without
touching a decision (lab.report.conclusions, picks, parity, capacity and notes decide)."""

from __future__ import annotations

from lab.analysis.crossing import band
from lab.analysis.model.bounds import CONCURRENCY
from lab.analysis.timespan import duration
from lab.report import conclusions as found
from lab.report import notes
from lab.report.capacity import Capacity, CapacityPick, Overload, capacity_picks, overloads
from lab.report.parity import (
    BoundedOn,
    Cause,
    CpuPerRequest,
    DelayedAcksOnOne,
    EngineCpu,
    InterpreterApart,
    ParityPair,
)
from lab.report.picks import CpuBinds, InFlight, MixPick, NoMix, NoPick, Pick, Why, picks
from lab.report.rows import Row
from lab.results.experiments import run_names
from lab.results.record import RunRecord
from lab.results.request_timeline import DELAYED_ACK_CAUSE

NOUNS = {"users": "users", "cpus": "CPUs", "workers": "workers"}  # a swept knob, as a sentence names it


def fmt(x: float) -> str:
    """Throughput with the digits that matter: 0.42, 9.6, 95, 1234."""
    return f"{x:.2f}" if x < 1 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def limit(cpus: float) -> str:
    return f"CPUS={cpus:g}" if cpus else "no CPU limit"


def reasons(failed: list[Row]) -> str:
    return "; ".join(f"{r.config.id} ({r.record.reason})" for r in failed)


# ---------------------------------------------------------------- a run's note


def note(n: notes.Note) -> str:
    """One sentence: which bound was expected to bind, and what else may have bound if far off."""
    x = n.prediction
    expected = (f"{x.in_flight} request(s) in flight bound it" if x.binding == CONCURRENCY
                else f"{x.parallelism:g} CPU(s) of Python bound it")  # fmt: skip
    if n.as_predicted:
        return f"as predicted: {expected}"
    if n.below:
        return f"below the model ({expected} in theory); likely also binding: " + "; ".join(map(suspect, n.suspects))
    return f"above the model ({expected} in theory): D_cpu from the cgroup includes work the requests overlap"


def suspect(s: notes.Suspect) -> str:
    match s:
        case notes.LoadGeneratorSaturated():
            return "the load generator was saturated"
        case notes.RequestsFailed(count=count):
            return f"{count} requests failed (database connections?)"
        case notes.Throttled(seconds=seconds):
            return f"the CPU quota throttled the server for {seconds:.1f}s"
        case notes.DelayedAcks(ms=ms):
            return f"every reply reached the client a steady {ms:.0f} ms or more after its handler ended: {DELAYED_ACK_CAUSE}"
        case notes.IdleWorkers(seen=seen, processes=processes):
            return (f"only {seen} of {processes} worker processes served requests: the kept-alive connections landed on "
                    "fewer workers than there are (each stays with the worker that accepted it)")  # fmt: skip
        case notes.TimeOutside(median_ms=median, work_ms=work):
            return (f"a median request took {median:.0f} ms for {work:.0f} ms of work: time spent outside the handler "
                    "(connection handling, response writes, scheduling on shared cores)")  # fmt: skip
        case notes.Overhead():
            return "per-request overhead outside D_io and D_cpu (connection handling, scheduling on shared cores)"


def row_note(row: Row) -> str:
    if not row.ok:
        return f"failed: {row.record.reason}"
    judged = notes.of_row(row)
    return note(judged) if judged else "no CPU accounting for this run: no prediction"


# ---------------------------------------------------------------- conclusions


def conclusions(rows: list[Row]) -> list[str]:
    """Plain sentences computed from the data; a different result gives different sentences."""
    return [conclusion(c) for c in found.conclusions(rows)]


def conclusion(c: found.Conclusion) -> str:
    match c:
        case found.Certainty():
            return certainty(c)
        case found.NothingSucceeded(failed=failed):
            return f"No run succeeded, so there is nothing to compare: {reasons(failed)}."
        case found.Leader():
            return leader(c)
        case found.Sweep(key=key, workload=workload, outcomes=outcomes):
            said = [f"{'stopped helping at' if stopped else 'still helped up to'} {at:g} for {', '.join(names)}"
                    for stopped, at, names in outcomes]  # fmt: skip
            return f"More {NOUNS[key]} ({workload}): " + "; ".join(said) + "."
        case found.Bounded(what=what, rows=[]):
            return f"No run was bounded by {what}."
        case found.Bounded(what=what, rows=bounded):
            return (f"{len(bounded)} run(s) were bounded by {what}, not the server, and are left out of every comparison "
                    "and pick: " + ", ".join(r.config.id for r in bounded) + ".")  # fmt: skip
        case found.MixStall(row=row, io_p95_ms=io_p95, wait_ms=wait_ms):
            return (f"In the mix, {row.label}'s io requests took p95 {io_p95:.0f} ms for a {wait_ms:.0f} ms database "
                    f"wait: they waited behind cpu requests (p95 {row.kind_p95('cpu'):.0f} ms).")  # fmt: skip
        case found.DelayedAcks(names=names, floors=floors):
            span = f"{min(floors)}" if min(floors) == max(floors) else f"{min(floors)}–{max(floors)}"
            return (f"Replies from {', '.join(names)} reached their clients a steady {span} ms after the handler ended: "
                    f"the signature of {DELAYED_ACK_CAUSE}, a cost every request on a kept-alive connection pays.")  # fmt: skip
        case found.ModelFit(explained=explained, runs=runs):
            return f"The model explains {explained} of {runs} runs within 20%."
        case found.Failed(rows=failed):
            return f"{len(failed)} run(s) failed: {reasons(failed)}."


def interval(row: Row) -> str:
    """A throughput with its 95% interval: '12.3 [11.9, 12.8]'."""
    x = row.rps_interval
    return fmt(row.rps) if not x.known else f"{fmt(row.rps)} [{fmt(x.low)}, {fmt(x.high)}]"


def certainty(c: found.Certainty) -> str:
    if c.repeats > 1:
        spread = "; ".join(f"{name} {cv:.1%}" for name, cv in c.spreads)
        return (f"Each configuration ran {c.repeats} times or more, interleaved; its figures are the mean of its repeats "
                f"with a 95% interval, and two are level where their intervals overlap. Run-to-run spread of "
                f"throughput (coefficient of variation): {spread}.")  # fmt: skip
    machine = ("" if c.spread is None else f", widened to the machine's own run-to-run spread (±{c.spread:.1%}: its "
               "speed on a fixed loop at the start and at the end of the experiment)")  # fmt: skip
    return (
        f"Each configuration ran once: a throughput's 95% interval comes from the run's own seconds{machine}, and "
        "differences inside it are noise. REPEATS=3 measures how much runs of one configuration really differ."
    )


def leader(c: found.Leader) -> str:
    best = c.best
    text = f"For the {c.workload} workload ({c.users} users, CPUS={c.cpus:g}), "
    if c.level:
        names = ", ".join(r.label for r in c.level)
        text += (f"{best.label} served the most ({interval(best)} req/s), level with {names} (their 95% intervals "
                 f"overlap: {', '.join(interval(r) for r in c.level)})")  # fmt: skip
    else:
        text += f"{best.label} served the most: {fmt(best.rps)} req/s"
    if c.runner_up is not None:
        text += f", {best.rps / c.runner_up.rps:.2f}× the next ({c.runner_up.label}, {fmt(c.runner_up.rps)} req/s)"
    if c.slowest is not None:
        text += f" and {best.rps / c.slowest.rps:.1f}× the slowest ({c.slowest.label}, {fmt(c.slowest.rps)} req/s)"
    return text + "."


# ---------------------------------------------------------------- which to pick


def advice(rows: list[Row]) -> list[str]:
    """Which configuration to pick for each workload and for a mix, and why."""
    said = []
    for a in picks(rows):
        match a:
            case NoPick(workload=workload, bounded_by=by):
                said.append(f"No {workload} pick: every {workload} run at this setting was bounded by {by}, so none "
                            "measured a server's throughput.")  # fmt: skip
            case Pick():
                said.append(pick(a))
            case NoMix():
                said.append("A mix of io and cpu requests was not measured, so there is no pick for one: run WORKLOAD=mix "
                            "(the quick experiment has mix runs).")  # fmt: skip
            case MixPick():
                said.append(mix_pick(a))
    return said


def pick(p: Pick) -> str:
    row = p.row
    head = (f"With CPUS={p.cpus:g}, the {p.workload} pick changes to {row.label}" if p.changed
            else f"For {p.workload}-bound load ({p.users} users, {limit(p.cpus)}), pick {row.label}")  # fmt: skip
    text = f"{head}: {fmt(row.rps)} req/s, p95 {row.p95_ms:.0f} ms{tie(p.tied, 'p95')}{why(p.why)}"
    if p.one_limit:
        text += (f" (only CPUS={p.cpus:g} was measured: with more CPUs, modes with more processes can pull ahead; "
                 "the scaling experiment measures it)")  # fmt: skip
    text += "."
    if p.faster_development is not None:
        dev = p.faster_development
        text += f" {dev.label} served more ({fmt(dev.rps)} req/s), but it is Django's development server."
    return text


def tie(tied: list[str], what: str) -> str:
    """Says so when the pick won on latency among throughputs too close to tell apart."""
    return f" (level in throughput with {', '.join(tied)}: the lowest {what} of them)" if tied else ""


def why(reason: Why | None) -> str:
    """The model's reason a pick leads: its requests in flight, or its CPU per request when the CPU binds."""
    match reason:
        case InFlight(in_flight=in_flight, users=users):
            waiting = "none waits for a free worker" if in_flight >= users else f"{users - in_flight} wait for a free one"
            return f", because it holds {in_flight} of the {users} users' requests in flight at once ({waiting})"
        case CpuBinds():
            least = ", the least of the modes here" if reason.least else ""
            return f": {cpu_cap(reason)} binds, so what counts is CPU per request, {reason.per_request_s * 1000:.1f} ms{least}"
    return ""


def cpu_cap(c: CpuBinds) -> str:
    """What sets P, the CPUs of Python at once, in words: never a CPU limit that was not set."""
    if c.cap == "limit":
        return f"the CPU limit (CPUS={c.cpus:g}, {c.parallelism:g} CPU of Python at once)"
    if c.cap == "processes":
        return f"its process count ({c.processes}: {c.parallelism:g} CPU of Python at once, one per process under the GIL)"
    return f"the machine's {c.cores} cores ({c.parallelism:g} CPU of Python at once)"


def mix_pick(p: MixPick) -> str:
    row = p.row
    text = (f"For a mix ({p.share:.0%} cpu requests, {p.users} users, {limit(p.cpus)}), pick {row.label}: "
            f"{fmt(row.rps)} req/s, io p95 {row.kind_p95('io'):.0f} ms, cpu p95 {row.kind_p95('cpu'):.0f} ms"
            f"{tie(p.tied, 'io p95')}")  # fmt: skip
    if p.worst is not None:
        text += f"; in {p.worst.label} io requests reached p95 {p.worst.io_p95:.0f} ms, {held_by(p.worst)}"
    return text + "."


def held_by(row: Row) -> str:
    """Why io requests took longer than their wait: no free worker (the model's C), or, where every
    request had one, the CPU the prime counts held (one event loop, or one GIL)."""
    workers = row.waiting_for_workers
    return f"waiting for one of its {workers} workers" if workers is not None else "held up behind the prime counts"


# ---------------------------------------------------------------- the same runs on both backends


def parity_run(p: ParityPair) -> str:
    k = p.native.knobs
    return f"{run_names(k).label} · {k.workload} · {k.users} users, {limit(k.cpus)}"


def parity_causes(p: ParityPair) -> str:
    """What the two records say differed, where they differ by more than the gap; empty within it."""
    if not p.gap:
        return ""
    said = [cause(c) for c in p.causes]
    return "; ".join(said) or "nothing the records show: noise of shared cores, or overhead outside the parts the lab measures"


def cause(c: Cause) -> str:
    match c:
        case InterpreterApart(native=native, compose=compose, native_loop_s=a, compose_loop_s=b):
            loops = f" (the same fixed loop took {a:.3f} s and {b:.3f} s of CPU)" if a and b else ""
            return f"the servers ran on different Pythons: {native} natively, {compose} in its container{loops}"
        case BoundedOn(backend=backend, by=by):
            return f"the {backend} run was bounded by {by}"
        case CpuPerRequest(native_s=native, compose_s=compose):
            return f"the server's CPU per request was {native * 1000:.1f} ms native, {compose * 1000:.1f} ms in its container"
        case EngineCpu(cpus=cpus):
            return f"the engine itself (port proxy, runtime) used {cpus:.2f} CPU more, on shared cores"
        case DelayedAcksOnOne():
            return "only one backend's replies waited for delayed ACKs"


# ---------------------------------------------------------------- capacity


def capacity_advice(capacities: list[Capacity]) -> list[str]:
    """Which configuration holds the most load at the target, per workload, CPU limit and arrivals."""
    return [capacity_pick(p) for p in capacity_picks(capacities)]


def capacity_pick(p: CapacityPick) -> str:
    head = f"For {p.workload} at p95 ≤ {p.slo_ms:g} ms ({limit(p.cpus)}, {p.arrivals} arrivals), "
    if p.best is None:
        text = head + "no production configuration has a capacity: none held the target below a rate that broke it."
    else:
        text = head + f"pick {p.best.label}: {held_at(p.best)}."
        if p.level:
            level = "; ".join(f"{c.label} {held_at(c)}" for c in p.level)
            text += f" Level with it, their 95% bands overlapping its: {level}."
        if p.under:
            text += " Below it: " + "; ".join(f"{c.label} {held_at(c)}" for c in p.under) + "."
    for c in p.lower_bounds:
        f = c.found
        low = f.capacity_low_rps if f else None
        more = " It may hold more than the pick: a search with more steps would tell." if (
            p.best and p.best.band and low and low > p.best.band[1]) else ""  # fmt: skip
        text += (f" Not ranked: {c.label} held at least {fmt(low or 0)} req/s, and nothing it was offered broke the "
                 f"target (a lower bound).{more}")  # fmt: skip
    if p.development:
        text += " Measured, never picked (development servers): " + "; ".join(f"{c.label} {held_at(c)}" for c in p.development)
        text += "."
    return text


def capacity_time(found: list[Capacity], budget_s: float | None) -> str:
    """How long the searches took, against the budget they were given."""
    seconds = sum(c.found.seconds for c in found if c.found)
    unfinished = sum(1 for c in found if c.found is None)
    text = f"The {len(found)} search(es) took {duration(seconds)}"
    text += f", within the budget of {duration(budget_s)} they were given" if budget_s and seconds <= budget_s else (
        f", OVER the budget of {duration(budget_s)} they were given" if budget_s else "")  # fmt: skip
    stopped = [c.label for c in found if c.found and c.found.stopped]
    if stopped:
        text += f"; {', '.join(stopped)} stopped before closing in, for want of time"
    if unfinished:
        text += f"; {unfinished} did not finish (its steps are shown, with no answer)"
    return text + "."


def held_at(c: Capacity) -> str:
    """A capacity in words: the crossing and the range of offered rates, beside the prediction."""
    f = c.found
    if f is None:
        return "its search did not finish"
    if not c.ranked:
        return f.capacity
    within = band(f.capacity_estimate_low_rps, f.capacity_estimate_high_rps)
    near = f"p95 crosses the target near {fmt(c.figure or 0)} req/s {within}" if f.capacity_estimate_rps else f.capacity
    text = f"{near} ({f.capacity})" if f.capacity_estimate_rps else near
    if f.predicted_rps:
        text += f", {f.capacity_over_predicted or 0:.2f} of the {fmt(f.predicted_rps)} its queue predicts ({f.predicted_queue})"
        if f.cause:
            text += f" ({f.cause})"
    if f.contradiction:
        text += f"; but {f.contradiction}"
    return text


def overload(capacities: list[Capacity]) -> list[str]:
    """Past capacity, with arrivals that do not wait for replies, the queue grows: latency rises over the run."""
    return [grew(o) for o in overloads(capacities)]


def grew(o: Overload) -> str:
    c = o.capacity
    return (f"{c.label} · {c.workload}: offered {o.rate:.3g} arrivals/s, past its capacity near {fmt(c.figure or 0)}, the median "
            f"request took {o.p50_first_half_ms:.0f} ms in the first half of the run and {o.p50_second_half_ms:.0f} ms in "
            "the second: the queue grew.")  # fmt: skip


# ---------------------------------------------------------------- the report's own paragraphs

THEORY = (
    "In a closed loop of U users with no think time, throughput X = U / R. A mode holds at most C requests in flight "
    "(1 for nothreading, the pool or thread count, WORKERS × THREADS) and runs Python in at most P processes at once "
    "(P = min(processes, CPUS) under the GIL). With D_io the database wait and D_cpu the CPU time of one request "
    "(measured from the server's cgroup), X ≤ min(U, C) / (D_io + D_cpu) and X ≤ P / D_cpu. In a mix, D_io and "
    "D_cpu are the means per request (the io share times the wait), and each kind's throughput is its share of X. "
    "'binds' says which bound is lower; measured/predicted near 1 means the model explains the run."
)
PARITY = (
    "Each configuration measured natively and in containers (compose): the ratio compose/native of throughput "
    "and of p95 latency. A gap over 15% is named with what the two records say differed."
)
QUICK = "Absolute times depend on IO_SECONDS, PRIMES_LIMIT and the machine; compare the ratios."
CAPACITY = (
    "Requests arrived at a set rate whatever the replies (open arrivals), and latency counts from each arrival's "
    "intended start. A search runs steps at rising rates; each step runs until its p95's 95% interval lies under the "
    "target (held ✓), over it (broke ✗), or still straddles it after a second, longer window (unsure ?), and breaks "
    "too when its queue is not stable or 1% of its requests fail. A capacity is the range of offered rates between "
    "the highest that held and the lowest that broke, and the rate where p95 crosses the target along the steps; "
    "nothing broken is a lower bound, never ranked. Ranges that overlap are level. The prediction is the lab's own "
    "queue: C requests in flight, each taking the handler time measured at the first step (M/D/C, or D/D/C for evenly "
    "spaced arrivals); or, where the CPU binds first, P CPUs of Python each taking D_cpu per request, the rest of the "
    "handler's time spent beside that queue ('on the CPU'). The model's saturation is min(C / (D_io + D_cpu), P / "
    "D_cpu). D_cpu is the slope of the server's CPU against its throughput across the steps (its intercept is the "
    "CPU the server burns idle)."
)
SHARED = "The load generator, the server and PostgreSQL share this machine's cores."


def bounded_warning(what: str, runs: int) -> str:
    return f"Warning: {runs} run(s) were bounded by {what}, not the server: their throughput is not the server's."


def failed_warning(runs: int) -> str:
    return f"{runs} run(s) failed; their reasons are in the notes under the runs table."


def machine(records: list[RunRecord]) -> list[str]:
    """What the runs happened on: the first run's machine, and every way the CPU limit was set."""
    info = records[0].machine
    line = (f"{info.cores} cores ({info.cpu_model}), {info.os}, Python {info.python}, PostgreSQL {info.postgres}, "
            + ", ".join(f"{k} {v}" for k, v in info.packages.items() if v)
            + f"; git {str(info.git.revision if info.git else None)[:12]}")  # fmt: skip
    methods = sorted({(r.cpu_limit.method if r.cpu_limit else None) or "–" for r in records})
    return [line, "CPU limit: " + "; ".join(methods), SHARED]
