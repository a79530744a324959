"""Judging one step of a capacity search: its p95 against the target, and whether its queue was stable,
on windows made by hand and on queues simulated exactly (lab.analysis.model), stable and past saturation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from lab.analysis.model import arrival_times, simulate
from lab.analysis.stats import Interval, correlated_quantile_interval, quantile_interval, unknown
from lab.bench.step_judge import Window, in_flight, judge, unstable, verdict_of

from .records import run_record

OK = run_record()


def window(answered: list[float], waiting: list[float] | None = None, *, seconds: float = 60.0, offered: int | None = None,
           failed: int = 0) -> Window:  # fmt: skip
    waiting = waiting or []
    sent = len(answered) + len(waiting)
    return Window(seconds, sent if offered is None else offered, sent, failed, answered, waiting)


def steady(n: int = 300, centre: float = 100.0, seed: int = 1) -> list[float]:
    """Latencies of a stable queue well under any target: independent, around `centre` ms."""
    rng = random.Random(seed)
    return [centre + rng.expovariate(1 / 20) for _ in range(n)]


# ---------------------------------------------------------------- judging a step


def test_a_step_holds_when_its_p95_interval_lies_under_the_target_breaks_over_it_and_is_unsure_across_it():
    assert verdict_of(Interval(250, 220, 280, n=300), 300)[0] == "held"
    assert verdict_of(Interval(350, 320, 400, n=300), 300)[0] == "broke"
    verdict, why = verdict_of(Interval(290, 260, 330, n=300), 300)
    assert verdict == "unsure" and "straddles the target of 300 ms" in why
    # too few requests to bound it from above (p95 needs 72): never held, however low the estimate
    assert verdict_of(unknown(100.0, n=50), 300)[0] == "unsure"
    assert verdict_of(Interval(100, 90, math.inf, n=50), 300)[0] == "unsure"


def p95_interval(windows: list[list[float]]) -> Interval:
    return correlated_quantile_interval(windows, 0.95)


def test_the_p95_interval_is_widened_for_a_queues_correlated_latencies_and_not_for_independent_ones():
    # M/D/1 at 70% of saturation: neighbours wait behind the same requests
    queue = list(simulate(servers=1, rate=6.7, service=0.105, n=800, seed=3).responses * 1000)
    widened, plain = p95_interval([queue]), quantile_interval(queue, 0.95)
    assert widened.estimate == plain.estimate
    assert widened.low <= plain.low and widened.high >= plain.high and widened.width > 1.3 * plain.width
    assert widened.n < 0.7 * len(queue)  # the independent requests it is worth
    shuffled = random.Random(0).sample(queue, len(queue))  # the same values, the order forgotten
    assert p95_interval([shuffled]).width < 1.3 * quantile_interval(shuffled, 0.95).width
    # two windows at one rate: each is worth what its own correlation allows, not penalised for differing
    assert p95_interval([shuffled, shuffled[::-1]]).n > 1.5 * p95_interval([shuffled]).n


def test_a_step_is_judged_on_its_windows_together_and_breaks_when_it_could_not_hold_its_rate():
    assert judge([OK], [window(steady())], 300).verdict == "held"
    assert judge([OK], [window(steady(centre=400))], 300).verdict == "broke"
    near = steady(n=80, centre=240, seed=2)  # a p95 near the target, from few requests: it could be either
    assert judge([OK], [window(near)], 300).verdict == "unsure"
    pooled = judge([OK, OK], [window(near), window(steady(n=80, centre=240, seed=3))], 300).p95
    assert pooled and pooled.n > 80  # the windows taken together
    failed = run_record(status="failed", reason="the server died")
    assert judge([failed], [], 300).why == "the run failed: the server died"
    # a window the machine or the load generator bounded says nothing of the server: left out, or unsure alone
    busy = run_record(bounded_by_machine=True)
    alone = judge([busy], [], 300)
    assert (alone.verdict, alone.straddles) == ("unsure", True) and "bounded" in alone.why
    assert judge([busy, OK], [window(steady())], 300).verdict == "held"
    assert "sent 280 of 300 arrivals offered" in judge([OK], [window(steady(280), offered=300)], 300).why
    assert "failed" in judge([OK], [window(steady(), failed=6)], 300).why


def test_a_queue_growing_across_the_window_breaks_the_step_even_with_its_p95_under_the_target():
    rng = random.Random(4)
    growing = [100 + 150 * i / 300 + rng.uniform(0, 10) for i in range(300)]  # 100 ms to 250 ms: p95 about 245
    assert quantile_interval(growing, 0.95).below(300)
    judged = judge([OK], [window(growing)], 300)
    assert judged.verdict == "broke" and "the queue grew" in judged.why and "median rose" in judged.why
    drifting = [100 + 30 * i / 300 + rng.expovariate(1 / 20) for i in range(300)]  # rising beyond chance, by 20 ms
    assert unstable(window(drifting), 300) is None
    assert judge([OK], [window(drifting)], 300).verdict == "held"


def simulated(servers: int, rate: float, service: np.ndarray, cut_s: float, seed: int) -> Window:
    """A window of an exactly simulated FCFS queue, cut at `cut_s` while arrivals still come, as Locust
    writes it: the arrivals before the cut, answered or still waiting there."""
    arrive = arrival_times(rate, service.size, "poisson", seed)
    assert arrive[-1] > cut_s, "simulate past the cut"
    sim = simulate(servers=servers, rate=rate, service=service, warmup=0.0, seed=seed)
    ends = arrive + sim.responses
    sent = arrive < cut_s
    answered = sent & (ends <= cut_s)
    waiting = sent & (ends > cut_s)
    return Window(
        seconds=cut_s, offered=int(sent.sum()), sent=int(sent.sum()), failed=0,
        answered_ms=list(1000 * sim.responses[answered]), waiting_ms=list(1000 * (cut_s - arrive[waiting])),
        spans=tuple((float(a), float(min(e, cut_s))) for a, e in zip(arrive[sent], ends[sent], strict=True)),
    )  # fmt: skip


def bimodal(n: int, seed: int) -> np.ndarray:
    """Half the requests under a millisecond, half a 103 ms wait with a tail (p99.9 about 150 ms)."""
    rng = np.random.default_rng(seed)
    long = 0.103 + rng.exponential(0.008, n)
    return np.where(rng.random(n) < 0.5, 0.0008, long)


@pytest.mark.parametrize("rate", [300.0, 600.0, 700.0])
@pytest.mark.parametrize("seed", range(4))
def test_a_stable_queue_of_long_and_short_requests_with_many_in_flight_at_the_cut_holds(rate, seed):
    """46 threads, half the requests a 103 ms wait: at 300 to 700 arrivals/s (a third to 85% of the
    threads busy) tens of requests are in flight at the cut, the most of them the long ones, and the queue
    is stable. The judge's false alarms must not grow with the rate."""
    window = simulated(46, rate, bimodal(int(rate * 15), seed), cut_s=10.0, seed=seed)
    assert rate / 30 <= len(window.waiting_ms) <= rate / 8  # tens in flight: about rate x 52 ms
    assert unstable(window, slo_ms=500.0) is None
    assert judge([OK], [window], 500.0).verdict == "held"


@pytest.mark.parametrize("seed", range(20))
def test_a_stable_single_server_queue_near_its_target_never_shows_growth(seed):
    """M/D/1 at 46% of saturation (nothreading waiting 0.105 s at 4.4 arrivals/s), 300 arrivals: whatever
    the luck of the draw, the count in flight does not rise beyond chance by a quarter of the target."""
    window = simulated(1, 4.4, np.full(400, 0.105), cut_s=300 / 4.4, seed=seed)
    assert unstable(window, slo_ms=300.0) is None


@pytest.mark.parametrize(("servers", "service_s", "load"), [(1, 0.105, 1.1), (2, 0.105, 1.15), (46, 0.05, 1.1)])
def test_a_queue_past_saturation_is_found_growing(servers, service_s, load):
    rate = load * servers / service_s
    cut = 300 / rate if servers < 46 else 6.0
    window = simulated(servers, rate, np.full(int(rate * cut * 1.3), service_s), cut_s=cut, seed=5)
    count = in_flight(window)
    assert count is not None and count.rising, count
    reason = unstable(window, slo_ms=300.0)
    assert reason and "the queue grew" in reason
    assert judge([OK], [window], 300.0).verdict == "broke"


def test_the_count_in_flight_names_a_queue_growing_where_the_answered_medians_cannot_tell():
    """Half the arrivals answered in 80 ms throughout, the other half stuck from the tenth second on (say,
    waiting for a connection that never comes): the answered stay level, and only the count in flight,
    which holds the unanswered too, shows the queue growing, with what it costs each arrival."""
    cut = 30.0
    spans = tuple((a, a + 0.08 if i % 2 or a < 10 else cut) for i, a in enumerate(np.arange(0, cut, 0.1).tolist()))
    answered = [1000 * (e - a) for a, e in spans if e < cut]
    waiting = [1000 * (cut - a) for a, e in spans if e >= cut]
    window = Window(cut, len(spans), len(spans), 0, answered, waiting, spans)
    reason = unstable(window, slo_ms=300.0)
    assert reason and "the count in flight rose from" in reason and "Little's law" in reason and "the queue grew" in reason
