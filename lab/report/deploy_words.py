"""What the report says of an app's decision, sentence by sentence and cell by cell, from what
lab.report.deploy decided: a sentence changes here without touching the decision."""

from __future__ import annotations

from lab.analysis.model.bounds import CPU
from lab.analysis.model.deploy import OPEN, Candidate, Change, NotTried, bound, needed_in_flight
from lab.analysis.timespan import duration
from lab.report.deploy import Deploy, Left
from lab.report.document import Section, Table
from lab.results.decision import Decision, PathFigures, Tried

PATHS = ("path", "weight", "measured in", "requests", "p50 ms [95%]", "in the server ms", "CPU ms/req", "wait ms",
         "wait share", "MB per worker")  # fmt: skip
TRIED = ("configuration", "why tried", "memory MB (its workers, measured)", "model saturation req/s",
         "closed loop: users → req/s [95%], p95 ms", "capacity at the target", "search")  # fmt: skip
METHOD = (
    "Each path of PATHS was measured alone at one user, in the plainest server of the app's interface: its latency, "
    "the server's CPU per request (its cgroup), each worker's memory (the server's report) and so its wait (time in the "
    "server not spent on CPU). Their mean by weight is the app's demand; the throughput model, X ≤ min(C / (W + D_cpu), "
    "P / D_cpu), chose the configurations worth trying within CPUS, and each was measured: a closed loop, then a "
    "capacity search at the latency target. The pick holds the most load at the target, judged on the ranges: "
    "ranges that overlap are level, and then fewer processes, then less memory, win. Development servers are never picked."
)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g}"


def rps(x: float) -> str:
    return f"{x:.3g}"


def shape(c: Candidate, interface: str) -> str:
    processes = f"{c.workers} process{'es' if c.workers > 1 else ''}"
    if interface == "asgi":
        return f"{processes}, each an event loop"
    return f"{processes} × {c.threads} thread{'s' if c.threads > 1 else ''}"


def capacity(t: Tried, slo_ms: float) -> str:
    """What a candidate held at the target, with where p95 crossed it."""
    crossed = f", p95 crossing the target near {rps(t.capacity_estimate_rps)} req/s" if t.capacity_estimate_rps else ""
    return f"{t.capacity} at p95 ≤ {slo_ms:g} ms{crossed}"


def closed(t: Tried) -> str:
    if t.closed_rps is None:
        return f"its closed loop failed: {t.failed}"
    spread = f" [{rps(t.closed_rps_low)}, {rps(t.closed_rps_high)}]" if t.closed_rps_low and t.closed_rps_high else ""
    return f"a closed loop of {t.users} users served {rps(t.closed_rps)} req/s{spread}"


def pick(d: Deploy) -> str:
    decision, held = d.decision, d.pick
    if held is None:
        return "No configuration can be advised: " + "; ".join(left(x, decision) for x in d.left_out) + "."
    c = held.tried.candidate
    memory = f", about {held.memory_mb:.0f} MB" if held.memory_mb is not None else ""
    said = f"Deploy `{c.label}` at CPUS={decision.budget.cpus:g} ({shape(c, decision.interface)}{memory}): "
    if d.basis == "closed_loop":
        return (f"{said}{closed(held.tried)}, the most of the candidates. No capacity search found a range within the "
                f"time budget ({held.tried.capacity}), so this judges the closed loops' throughput, not the load held "
                f"at p95 ≤ {decision.slo_p95_ms:g} ms: give MINUTES more to search.")  # fmt: skip
    return f"{said}it held {capacity(held.tried, decision.slo_p95_ms)}; {closed(held.tried)}."


def reason(d: Deploy) -> str:
    """The model's reason: which bound binds the pick, in numbers."""
    if d.pick is None:
        return ""
    demand, x, c = d.decision.demand, d.pick.model, d.pick.tried.candidate
    cpu = f"the CPU bound P / D_cpu = {x.parallelism:g} / {ms(demand.d_cpu_s)} ms = {rps(x.cpu_bound)} req/s"
    if x.in_flight >= OPEN:
        concurrency = "an event loop holds any number of waiting requests, so concurrency sets no bound"
    else:
        concurrency = (f"the concurrency bound C / (W + D_cpu) = {x.in_flight} / {ms(demand.service_s)} ms = "
                       f"{rps(x.concurrency_bound)} req/s")  # fmt: skip
    binds = "the CPU binds" if x.binding == CPU else "concurrency binds"
    said = (f"The model's reason: a request costs {ms(demand.d_cpu_s)} ms of CPU and waits {ms(demand.wait_s)} ms on "
            f"average; for `{c.label}`, {binds}: {cpu}; {concurrency}.")  # fmt: skip
    held = d.pick.capacity.estimate / x.throughput if x.throughput > 0 else None
    if held is None or held <= 1:
        share = f"{held:.0%} of" if held is not None else "a share of"
        share = f"at least {share}" if d.pick.tried.lower_bound_only else share  # nothing broke: a floor
        return (f"{said} At the target it held {share} that saturation ({rps(x.throughput)} req/s): below it, the "
                f"queue stays short enough for p95 ≤ {d.decision.slo_p95_ms:g} ms.")  # fmt: skip
    # no queue is stable past saturation: the saturation from each path alone did not bound this server under load
    return (f"{said} At the target it held {held:.0%} of that saturation ({rps(x.throughput)} req/s): the model's "
            "figure, from each path alone at one user, is no ceiling for this server under load (a request may take "
            "less CPU among many than alone).")  # fmt: skip


def runner_up(d: Deploy) -> str:
    r, p = d.runner_up, d.pick
    if r is None or p is None:
        return "Runner-up: none (one configuration had a capacity)."
    held = capacity(r.tried, d.decision.slo_p95_ms) if d.basis == "capacity" else closed(r.tried)
    said = f"Runner-up: `{r.label}`, {held}"
    if r.label in d.level_with:
        if p.processes < r.processes:
            beat = "which has fewer processes"
        elif (p.memory_mb or 0) < (r.memory_mb or 0):
            beat = "which takes less memory"
        elif p.capacity.estimate > r.capacity.estimate:
            beat = "whose estimate is the higher, inside the overlap"
        else:
            beat = "as light in processes and memory: either would do, and the model ranked the pick first"
        also = [f"`{label}`" for label in d.level_with if label != r.label]
        others = f" Also level with the pick: {', '.join(also)}." if also else ""
        return f"{said}: level with the pick (their ranges overlap), {beat}.{others}"
    return f"{said}: clearly below the pick (their ranges are apart)."


def change(c: Change) -> str:
    what = "wait" if c.along == "wait" else "CPU"
    moved = "grew past" if c.at_s > c.now_s else "fell below"
    return (f"If the {what} per request {moved} {ms(c.at_s)} ms (it is {ms(c.now_s)} ms), the model would rank `{c.other}` "
            f"above it: at {ms(c.past_s)} ms it gives {rps(c.other_rps)} req/s against {rps(c.pick_rps)}.")  # fmt: skip


def changes(d: Deploy) -> list[str]:
    if d.pick is None:
        return []
    prefers = [f"The model alone would rank `{p.label}` above it ({rps(p.model_rps)} against {rps(p.pick_model_rps)} req/s), "
               "but it held less at the target: the measurement decides, and what the model leaves out (the GIL shared by "
               "threads, each server's own cost per request) is the likely difference." for p in d.model_prefers]  # fmt: skip
    if not d.changes:
        return [*prefers, "No change of the wait or of the CPU per request within a thousandfold would make the model rank "
                "another candidate above the pick."]  # fmt: skip
    first, *rest = map(change, d.changes)
    return [*prefers, f"What would change the answer: {first[0].lower()}{first[1:]}", *rest]


def took(decision: Decision) -> str:
    within = "within it" if decision.took_s <= decision.time_budget_s else "OVER it"
    return (f"The decision stated a time budget of {duration(decision.time_budget_s)} before it started and took "
            f"{duration(decision.took_s)}, {within} ({len(decision.tried)} candidates, capacity searches of at most "
            f"{decision.steps} steps).")  # fmt: skip


def why_tried(c: Candidate, decision: Decision) -> str:
    match c.reason:
        case "cpu":
            return f"one process per CPU of the budget ({c.workers}): enough when the CPU binds"
        case "threads":
            return (f"{c.threads} threads per process hold the {c.needed:.1f} requests in flight that keep the CPUs busy at "
                    "this wait (P × (W + D_cpu) / D_cpu)")  # fmt: skip
        case "processes":
            return (f"{c.workers} processes hold the requests in flight the waits need ({c.needed:.1f}) without sharing "
                    "a GIL, at that many times the memory")  # fmt: skip
        case "event_loop":
            return f"an event loop holds any number of waiting requests; {c.workers} process(es), one per CPU"
        case "rust":
            return "the same shape on Granian's Rust HTTP server, which spends less CPU outside the app"


def not_tried(n: NotTried, decision: Decision) -> str:
    c, demand = n.candidate, decision.demand
    match n.why:
        case "memory":
            return (f"`{c.label}`: {c.workers} workers × {demand.rss_mb or 0:.0f} MB is over MEMORY="
                    f"{decision.budget.memory_mb or 0:g} MB")  # fmt: skip
        case "same_as_tried":
            return f"`{c.label}`: the waits need no more processes than one per CPU, which is tried already"
        case "no_more_cpu":
            return f"`{c.label}`: at CPUS={decision.budget.cpus:g} Python runs in one process at a time: a second adds no CPU"
        case "over_count":
            x = bound(c, decision.interface, demand, decision.budget).throughput
            return f"`{c.label}`: its model saturation ({rps(x)} req/s) is the lowest, and the time budget holds fewer"


def left(x: Left, decision: Decision) -> str:
    why = {"development": "a development server, measured but never picked",
           "memory": f"over MEMORY={decision.budget.memory_mb or 0:g} MB",
           "no_capacity": "its search found no capacity (no step held or broke)",
           "failed": "its closed loop failed, and no search found a capacity"}  # fmt: skip
    return f"`{x.label}`: {why[x.why]}"


def paths_table(paths: list[PathFigures], decision: Decision) -> Table:
    def p50(f: PathFigures) -> str:
        if f.p50_ms is None:
            return "–"
        low, high = ("?" if v is None else f"{v:.3g}" for v in (f.p50_low_ms, f.p50_high_ms))
        return f"{f.p50_ms:.3g} [{low}, {high}]"

    rows = [[f"`{f.path}`", str(f.weight), f.served_by, str(f.requests), p50(f), f"{f.handler_ms:.3g}", f"{f.cpu_ms:.3g}",
             f"{f.wait_ms:.3g}", f"{f.wait_share:.0%}", "–" if f.rss_mb is None else f"{f.rss_mb:.0f}"]
            for f in paths]  # fmt: skip
    d = decision.demand
    rows.append(["mean by weight", str(sum(f.weight for f in paths)), "", "", "", ms(d.service_s), ms(d.d_cpu_s), ms(d.wait_s),
                 f"{d.wait_share:.0%}", "–" if d.rss_mb is None else f"{d.rss_mb:.0f} (largest)"])  # fmt: skip
    return Table(PATHS, rows, title="Each path alone at one user")


def tried_table(d: Deploy) -> Table:
    decision = d.decision
    rows = []
    for t in decision.tried:
        c = t.candidate
        x = bound(c, decision.interface, decision.demand, decision.budget)
        mb = t.memory_mb(decision.demand)
        loop = "failed" if t.closed_rps is None else f"{t.users} → {rps(t.closed_rps)}" + (
            f" [{rps(t.closed_rps_low)}, {rps(t.closed_rps_high)}]" if t.closed_rps_low and t.closed_rps_high else ""
        ) + (f", p95 {t.closed_p95_ms:.0f}" if t.closed_p95_ms is not None else "")  # fmt: skip
        rows.append([f"`{c.label}`" + (" (pick)" if d.pick and d.pick.tried == t else ""), why_tried(c, decision),
                     "–" if mb is None else f"{mb:.0f}", f"{rps(x.throughput)} ({'CPU' if x.binding == CPU else 'concurrency'})",
                     loop, t.capacity, f"{t.steps} steps, {duration(t.seconds)}"])  # fmt: skip
    return Table(TRIED, rows, title=f"The candidates, at CPUS={decision.budget.cpus:g} and p95 ≤ {decision.slo_p95_ms:g} ms")


def sections(d: Deploy, paths: list[PathFigures]) -> list[Section]:
    decision = d.decision
    chosen = (f"Requests in flight that keep the {decision.budget.cpus:g} CPU(s) busy at this demand: "
              f"{needed_in_flight(decision.demand, decision.budget):.1f}.")  # fmt: skip
    bullets = [pick(d), reason(d), runner_up(d), *changes(d), took(decision)]
    return [
        Section(f"Which to deploy: {decision.app} at CPUS={decision.budget.cpus:g}", bullets=[b for b in bullets if b],
                tables=[paths_table(paths, decision), tried_table(d)]),
        Section("How the candidates were chosen", paragraphs=[METHOD, chosen],
                bullets=[f"Not tried: {not_tried(n, decision)}." for n in decision.not_tried]
                + [f"Left out of the pick: {left(x, decision)}." for x in d.left_out]),
    ]  # fmt: skip


def decision_sentences(d: Deploy) -> list[str]:
    """What the bench prints once the decision is recorded: the report's own words."""
    return [b for b in (pick(d), reason(d), runner_up(d), *changes(d), took(d.decision)) if b]
