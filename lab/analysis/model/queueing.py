"""Response-time percentiles of an FCFS queue with c servers, at a given arrival rate.

Exact where a formula exists: M/M/c by Erlang C, D/D/c below saturation, M/D/1 and M/G/1
mean wait by Pollaczek-Khinchine, M/D/1 wait distribution by Erlang's sum for short waits.
Otherwise simulated with the Kiefer-Wolfowitz recursion: each arrival, in order, takes the
server that frees up first. That is exact for FCFS c-server queues, and with numpy it is fast
enough to bisect on (a capacity search takes tens of milliseconds).

Simulations use fixed seeds and common random numbers: the same seed gives the same unit draws
at every rate, scaled by 1 / rate, so predicted percentiles rise monotonically with the rate
and a bisection over it is repeatable.
"""

from __future__ import annotations

import heapq
import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lab.analysis.stats import quantile

Arrivals = Literal["poisson", "constant"]  # Poisson process, or evenly spaced at 1 / rate
Service = Literal["deterministic", "exponential"]

SIM_ARRIVALS = 50_000
WARMUP = 0.1  # share of arrivals discarded: the queue starts empty, which is not its steady state
_ZERO_WAIT = 1e-9  # waits below this share of the mean service time are float noise, not waits


def _check(servers: int, rate: float, service_s: float) -> None:
    if servers < 1:
        raise ValueError("at least one server")
    if rate < 0 or service_s <= 0:
        raise ValueError("rate must be >= 0 and service time > 0")


# ---------------------------------------------------------------- exact formulas


def erlang_c(servers: int, rate: float, service_s: float) -> float:
    """Probability that an arrival waits in M/M/c (Erlang C); 1 at or beyond saturation."""
    _check(servers, rate, service_s)
    offered = rate * service_s  # erlangs
    if offered >= servers:
        return 1.0
    # Erlang B by its stable recurrence, then C from B: no factorials, no overflow
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1 - b))


def mmc_mean_wait(servers: int, rate: float, service_s: float) -> float:
    """Mean time in queue (before service) of M/M/c: C / (c mu - lambda)."""
    excess = servers / service_s - rate
    return erlang_c(servers, rate, service_s) / excess if excess > 0 else math.inf


def mmc_wait_tail(servers: int, rate: float, service_s: float, t: float) -> float:
    """P(W > t) for the wait in queue of M/M/c: C exp(-(c mu - lambda) t)."""
    excess = servers / service_s - rate
    if excess <= 0:
        return 1.0
    return erlang_c(servers, rate, service_s) * math.exp(-excess * max(t, 0.0))


def mmc_response_tail(servers: int, rate: float, service_s: float, t: float) -> float:
    """P(R > t) for the response time R = W + S of M/M/c (the own service S is independent of W)."""
    if t <= 0:
        return 1.0
    mu = 1 / service_s
    theta = servers * mu - rate  # rate of the exponential wait, when there is one
    if theta <= 0:
        return 1.0
    waits = erlang_c(servers, rate, service_s)
    alone = math.exp(-mu * t)
    if abs(theta - mu) < 1e-12 * mu:
        return (1 - waits) * alone + waits * (1 + mu * t) * alone  # wait and service alike: Erlang-2 tail
    summed = (theta * alone - mu * math.exp(-theta * t)) / (theta - mu)  # hypoexponential tail
    return (1 - waits) * alone + waits * summed


def mmc_response_quantile(servers: int, rate: float, service_s: float, q: float) -> float:
    """The q-quantile of M/M/c response time, solving P(R > t) = 1 - q by bisection; inf if unstable."""
    if not 0 < q < 1:
        raise ValueError("q must be in (0, 1)")
    if rate * service_s >= servers:
        return math.inf
    hi = service_s
    while mmc_response_tail(servers, rate, service_s, hi) > 1 - q:
        hi *= 2
    lo = 0.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if mmc_response_tail(servers, rate, service_s, mid) > 1 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mg1_mean_wait(rate: float, service_s: float, service_scv: float) -> float:
    """Pollaczek-Khinchine mean wait in queue of M/G/1: rho s (1 + scv) / (2 (1 - rho)).

    scv is the squared coefficient of variation of the service time: 0 deterministic, 1 exponential.
    """
    _check(1, rate, service_s)
    rho = rate * service_s
    return rho * service_s * (1 + service_scv) / (2 * (1 - rho)) if rho < 1 else math.inf


def md1_mean_wait(rate: float, service_s: float) -> float:
    """Mean wait in queue of M/D/1 (P-K with a constant service time)."""
    return mg1_mean_wait(rate, service_s, 0.0)


def md1_wait_cdf(rate: float, service_s: float, t: float) -> float:
    """P(W <= t) for the wait in queue of M/D/1, by Erlang's finite sum over k = 0..floor(t / s):

        (1 - rho) * sum of (lambda (k s - t))^k / k! * exp(-lambda (k s - t))

    The terms alternate and grow about like exp(2 lambda t), so digits cancel: it raises
    ValueError when the rounding error could exceed 1e-9 (around lambda t > 10); simulate there.
    """
    _check(1, rate, service_s)
    if rate * service_s >= 1 or t < 0:
        return 0.0
    terms = [
        (rate * (k * service_s - t)) ** k / math.factorial(k) * math.exp(-rate * (k * service_s - t))
        for k in range(math.floor(t / service_s) + 1)
    ]
    scale = 1 - rate * service_s
    if 8 * sys.float_info.epsilon * scale * sum(abs(term) for term in terms) > 1e-9:
        raise ValueError("the alternating sum would lose its precision at this rate x t")
    return min(1.0, max(0.0, scale * math.fsum(terms)))


# ---------------------------------------------------------------- simulation


@lru_cache(maxsize=16)
def _unit_exponentials(n: int, seed: int, stream: int) -> NDArray[np.float64]:
    """n Exp(1) draws; separate streams keep arrivals and service independent of each other."""
    draws = np.random.default_rng([seed, stream]).standard_exponential(n)
    draws.flags.writeable = False  # shared through the cache
    return draws


def arrival_times(rate: float, n: int, arrivals: Arrivals = "poisson", seed: int = 0) -> NDArray[np.float64]:
    if rate <= 0:
        raise ValueError("rate must be > 0 to simulate")
    if arrivals == "poisson":
        return np.cumsum(_unit_exponentials(n, seed, 0)) / rate
    if arrivals == "constant":
        return np.arange(1, n + 1, dtype=np.float64) / rate
    raise ValueError(f"unknown arrivals {arrivals!r}")


def exponential_service(mean_s: float, n: int, seed: int = 0) -> NDArray[np.float64]:
    """n exponential service times with this mean, from their own random stream."""
    return _unit_exponentials(n, seed, 1) * mean_s


def _waits_constant(arrive: NDArray[np.float64], servers: int, service_s: float) -> NDArray[np.float64]:
    """Waits in FCFS when every service takes service_s: vectorised.

    With equal service times, starts are in arrival order and arrival k takes the server freed
    by arrival k - c, so start[k] = max(arrive[k], start[k - c] + s). Each residue class mod c is
    then a one-server recursion, whose solution is start[j] = j s + max over i <= j of
    (arrive[i] - i s). The wait is that running max minus its own term: exactly 0, not float
    noise, for an arrival that finds a free server.
    """
    waits = np.empty_like(arrive)
    for r in range(servers):
        own = arrive[r::servers] - np.arange(arrive[r::servers].size, dtype=np.float64) * service_s
        waits[r::servers] = np.maximum.accumulate(own) - own
    return waits


def _waits_one_server(arrive: NDArray[np.float64], service: NDArray[np.float64]) -> NDArray[np.float64]:
    """Waits with one server and any service times (Lindley's recursion, vectorised).

    start[k] = max over i <= k of (arrive[i] + service[i] + ... + service[k - 1]).
    """
    before = np.concatenate(([0.0], np.cumsum(service)[:-1]))  # total service of the arrivals before k
    own = arrive - before
    return np.maximum.accumulate(own) - own


def _waits_heap(arrive: NDArray[np.float64], service: NDArray[np.float64], servers: int) -> NDArray[np.float64]:
    """Waits by the Kiefer-Wolfowitz recursion: a heap of the times each server frees up."""
    free = [-math.inf] * servers
    waits = []
    for a, s in zip(arrive.tolist(), service.tolist(), strict=True):
        start = max(a, free[0])
        heapq.heapreplace(free, start + s)
        waits.append(start - a)
    return np.asarray(waits, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Simulation:
    """Waits and service times of the arrivals kept after the warm-up, in arrival order."""

    waits: NDArray[np.float64]
    services: NDArray[np.float64]

    @property
    def responses(self) -> NDArray[np.float64]:
        return self.waits + self.services

    @property
    def mean_wait(self) -> float:
        return float(self.waits.mean())

    @property
    def p_wait(self) -> float:
        """Share of arrivals that waited at all."""
        return float((self.waits > _ZERO_WAIT * float(self.services.mean())).mean())

    def response_quantile(self, q: float) -> float:
        value = quantile(self.responses, q)
        if value is None:
            raise ValueError("no arrivals kept")
        return value


def simulate(
    *,
    servers: int,
    rate: float,
    service: float | ArrayLike,
    arrivals: Arrivals = "poisson",
    n: int = SIM_ARRIVALS,
    warmup: float = WARMUP,
    seed: int = 0,
) -> Simulation:
    """Simulate an FCFS queue with `servers` servers, starting empty.

    service: a float (every request takes that long), or one service time per arrival (then
    their count is the number of arrivals and n is ignored). The first `warmup` share of the
    arrivals is dropped. Exact for FCFS whatever the load; beyond saturation the waits just grow.
    """
    if servers < 1:
        raise ValueError("at least one server")
    if not 0 <= warmup < 1:
        raise ValueError("warmup must be in [0, 1)")
    if isinstance(service, int | float):
        if service <= 0:
            raise ValueError("service time must be > 0")
        arrive = arrival_times(rate, n, arrivals, seed)
        services = np.full(n, float(service))
        waits = _waits_constant(arrive, servers, float(service))
    else:
        services = np.asarray(service, dtype=np.float64).ravel()
        if services.size == 0 or bool((services < 0).any()):
            raise ValueError("service times must be >= 0, at least one")
        arrive = arrival_times(rate, int(services.size), arrivals, seed)
        waits = _waits_one_server(arrive, services) if servers == 1 else _waits_heap(arrive, services, servers)
    keep = int(arrive.size * warmup)
    return Simulation(waits[keep:], services[keep:])


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class ResponseTimes:
    """Predicted response-time percentiles (seconds) at one arrival rate; inf when unstable."""

    p50: float
    p95: float
    p99: float
    utilisation: float  # rate x service time / servers
    stable: bool  # utilisation < 1: the queue does not grow without bound
    method: str  # "erlang-c", "deterministic", "idle", "simulation" or "unstable"


@dataclass(frozen=True)
class QueueModel:
    """c FCFS servers, each taking service_s per request (constant, or exponential with that mean)."""

    servers: int
    service_s: float
    service: Service = "deterministic"

    def __post_init__(self) -> None:
        _check(self.servers, 0.0, self.service_s)
        if self.service not in ("deterministic", "exponential"):
            raise ValueError(f"unknown service {self.service!r}")

    @property
    def saturation(self) -> float:
        """The arrival rate that keeps every server busy: c / service time."""
        return self.servers / self.service_s

    def utilisation(self, rate: float) -> float:
        return rate * self.service_s / self.servers

    def _quantiles(self, rate: float, qs: tuple[float, ...], arrivals: Arrivals, n: int, seed: int) -> tuple[list[float], str]:
        if rate < 0:
            raise ValueError("rate must be >= 0")
        if self.utilisation(rate) >= 1:
            return [math.inf for _ in qs], "unstable"
        exponential = self.service == "exponential"
        if rate == 0:  # nobody to wait behind: the service time alone
            return [-math.log1p(-q) * self.service_s if exponential else self.service_s for q in qs], "idle"
        if exponential and arrivals == "poisson":
            return [mmc_response_quantile(self.servers, rate, self.service_s, q) for q in qs], "erlang-c"
        if not exponential and arrivals == "constant":
            return [self.service_s for _ in qs], "deterministic"  # D/D/c below saturation never waits
        service = exponential_service(self.service_s, n, seed) if exponential else self.service_s
        run = simulate(servers=self.servers, rate=rate, service=service, arrivals=arrivals, n=n, seed=seed)
        return [run.response_quantile(q) for q in qs], "simulation"

    def quantile(self, rate: float, q: float, arrivals: Arrivals = "poisson", *, n: int = SIM_ARRIVALS, seed: int = 0) -> float:
        """The predicted q-quantile of response time (seconds) at this arrival rate."""
        return self._quantiles(rate, (q,), arrivals, n, seed)[0][0]

    def predict(self, rate: float, arrivals: Arrivals = "poisson", *, n: int = SIM_ARRIVALS, seed: int = 0) -> ResponseTimes:
        (p50, p95, p99), method = self._quantiles(rate, (0.5, 0.95, 0.99), arrivals, n, seed)
        u = self.utilisation(rate)
        return ResponseTimes(p50, p95, p99, u, u < 1, method)

    def capacity(
        self,
        target_s: float,
        q: float = 0.95,
        arrivals: Arrivals = "poisson",
        *,
        n: int = SIM_ARRIVALS,
        seed: int = 0,
        tolerance: float = 1e-3,
    ) -> float:
        """The highest arrival rate whose predicted q-quantile stays within target_s.

        Bisection between 0 and saturation, to `tolerance` x saturation; always below saturation,
        and 0 when even an idle server misses the target.
        """
        if self.quantile(0.0, q, arrivals) > target_s:
            return 0.0
        lo, hi = 0.0, self.saturation
        while hi - lo > tolerance * self.saturation:
            mid = (lo + hi) / 2
            if self.quantile(mid, q, arrivals, n=n, seed=seed) <= target_s:
                lo = mid
            else:
                hi = mid
        return lo


def capacity_at(
    target_s: float,
    q: float = 0.95,
    *,
    servers: int = 1,
    service_s: float,
    arrivals: Arrivals = "poisson",
    service: Service = "deterministic",
    n: int = SIM_ARRIVALS,
    seed: int = 0,
) -> float:
    """The highest arrival rate (req/s) at which the q-quantile of response time stays within target_s."""
    return QueueModel(servers, service_s, service).capacity(target_s, q, arrivals, n=n, seed=seed)


@dataclass(frozen=True)
class ServedQueue:
    """A configuration seen as a queue: `queue` (its servers, each taking its service time) and the
    time every request spends beside it (`outside_s`). While the requests in flight bind, each of the
    C in flight is a server taking the handler's whole time. Where the CPU binds first (P / D_cpu
    under C / handler time), requests queue for P CPUs of Python instead, each taking its CPU time
    (P of a fraction of a CPU: one server, slower by as much), and the rest of the handler's time,
    its wait in the database, is spent beside that queue. CPU time past the handler's (the server's
    own parsing and writing) lengthens the queue's service and leaves nothing beside it."""

    queue: QueueModel
    outside_s: float
    binds: str  # "in flight" or "CPU"

    def quantile(self, rate: float, q: float, arrivals: Arrivals = "poisson", *, n: int = SIM_ARRIVALS) -> float:
        return self.outside_s + self.queue.quantile(rate, q, arrivals, n=n)

    def capacity(self, target_s: float, q: float = 0.95, arrivals: Arrivals = "poisson") -> float:
        return self.queue.capacity(target_s - self.outside_s, q, arrivals) if target_s > self.outside_s else 0.0

    @property
    def saturation(self) -> float:
        return self.queue.saturation


def served_queue(handler_s: float, in_flight: int, parallelism: float | None = None, d_cpu: float | None = None) -> ServedQueue:
    """The queue for a handler time, C requests in flight and, where known, P CPUs and D_cpu per request."""
    if d_cpu and parallelism and parallelism / d_cpu < in_flight / handler_s:
        servers = max(1, math.floor(parallelism))
        return ServedQueue(QueueModel(servers, d_cpu * servers / parallelism), max(0.0, handler_s - d_cpu), "CPU")
    return ServedQueue(QueueModel(in_flight, handler_s), 0.0, "in flight")
