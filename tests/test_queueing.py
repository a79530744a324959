"""The queueing model: closed forms against hand-worked values, the simulation against the closed forms."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from lab.analysis.model import QueueModel, capacity_at, erlang_c, md1_mean_wait, mmc_mean_wait, mmc_response_quantile, simulate
from lab.analysis.model.queueing import (
    _waits_heap,
    _waits_one_server,
    arrival_times,
    exponential_service,
    md1_wait_cdf,
    mg1_mean_wait,
    mmc_response_tail,
    mmc_wait_tail,
    served_queue,
)

SERVICE = 0.105  # seconds: the lab's I/O-bound request

# ---------------------------------------------------------------- closed forms


def test_erlang_c_by_hand() -> None:
    # c = 2, a = 1 erlang: (a^2/2!)(c/(c-a)) = 1 over 1 + a + 1 = 3 -> 1/3
    assert erlang_c(2, 10.0, 0.1) == pytest.approx(1 / 3)
    # c = 3, a = 2: (8/6)(3/1) = 4 over 1 + 2 + 2 + 4 = 9 -> 4/9
    assert erlang_c(3, 20.0, 0.1) == pytest.approx(4 / 9)
    # one server: the probability of waiting is the utilisation
    assert erlang_c(1, 7.0, 0.1) == pytest.approx(0.7)
    assert erlang_c(2, 25.0, 0.1) == 1.0  # beyond saturation everyone waits
    assert mmc_mean_wait(2, 10.0, 0.1) == pytest.approx((1 / 3) / (20 - 10))
    assert mmc_wait_tail(2, 10.0, 0.1, 0.0) == pytest.approx(1 / 3)
    assert mmc_wait_tail(2, 10.0, 0.1, 0.1) == pytest.approx(math.exp(-1) / 3)


def test_erlang_c_many_servers_does_not_overflow() -> None:
    assert 0 < erlang_c(500, 4900.0, 0.1) < 1


def test_mm1_response_time_is_exponential() -> None:
    # M/M/1: R ~ Exp(mu - lambda), so its p95 is ln 20 / (mu - lambda)
    assert mmc_response_quantile(1, 6.0, 0.1, 0.95) == pytest.approx(math.log(20) / 4.0, rel=1e-9)
    assert mmc_response_tail(1, 6.0, 0.1, 0.25) == pytest.approx(math.exp(-1.0))
    assert mmc_response_quantile(2, 25.0, 0.1, 0.95) == math.inf


def test_pollaczek_khinchine() -> None:
    assert md1_mean_wait(5.0, 0.1) == pytest.approx(0.5 * 0.1 / (2 * 0.5))
    assert mg1_mean_wait(5.0, 0.1, 1.0) == pytest.approx(mmc_mean_wait(1, 5.0, 0.1))  # M/M/1 is M/G/1 with scv 1
    assert md1_wait_cdf(5.0, 0.1, 0.0) == pytest.approx(0.5)  # P(no wait) = 1 - rho
    assert md1_wait_cdf(5.0, 0.1, 1.0) == pytest.approx(1.0, abs=1e-5)
    # by hand at t = s: the k = 0 term is e^(lambda s) and the k = 1 term is 0, so (1 - rho) e^rho
    assert md1_wait_cdf(5.0, 0.1, 0.1) == pytest.approx(0.5 * math.exp(0.5))
    with pytest.raises(ValueError):
        md1_wait_cdf(9.0, 0.1, 3.0)  # lambda t = 27: the alternating sum is no longer trusted


# ---------------------------------------------------------------- simulation against them


@pytest.mark.parametrize(("servers", "rho"), [(1, 0.7), (2, 0.8), (4, 0.6)])
def test_simulated_mmc_matches_erlang_c(servers: int, rho: float) -> None:
    # tolerances are about 4 standard deviations of 200,000 arrivals (measured over seeds)
    rate = rho * servers / 0.1
    run = simulate(servers=servers, rate=rate, service=exponential_service(0.1, 200_000, seed=0), seed=0)
    assert run.p_wait == pytest.approx(erlang_c(servers, rate, 0.1), rel=0.03)
    assert run.mean_wait == pytest.approx(mmc_mean_wait(servers, rate, 0.1), rel=0.1)
    assert run.response_quantile(0.95) == pytest.approx(mmc_response_quantile(servers, rate, 0.1, 0.95), rel=0.1)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.85])
def test_simulated_md1_matches_pollaczek_khinchine_and_erlang(rho: float) -> None:
    rate = rho / 0.1
    run = simulate(servers=1, rate=rate, service=0.1, n=200_000, seed=2)
    assert run.mean_wait == pytest.approx(md1_mean_wait(rate, 0.1), rel=0.05)
    assert run.p_wait == pytest.approx(rho, abs=0.01)
    for t in (0.02, 0.1, 0.25):
        assert float((run.waits <= t).mean()) == pytest.approx(md1_wait_cdf(rate, 0.1, t), abs=0.01)


@pytest.mark.parametrize("servers", [1, 2, 5])
def test_ddc_below_saturation_never_waits(servers: int) -> None:
    run = simulate(servers=servers, rate=0.999 * servers / SERVICE, service=SERVICE, arrivals="constant")
    assert run.p_wait == 0.0 and float(run.waits.max()) == 0.0
    over = simulate(servers=servers, rate=1.1 * servers / SERVICE, service=SERVICE, arrivals="constant", n=10_000)
    assert float(over.waits[-1]) > float(over.waits[0]) > 0  # beyond saturation the queue grows


def test_three_recursions_agree() -> None:
    # constant service: the vectorised lag-c recursion against the heap and (one server) Lindley
    service = np.full(20_000, 0.1)
    for servers in (1, 3):
        fast = simulate(servers=servers, rate=0.9 * servers / 0.1, service=0.1, n=20_000, seed=4)
        heap = simulate(servers=servers, rate=0.9 * servers / 0.1, service=service, seed=4)
        np.testing.assert_allclose(fast.waits, heap.waits, atol=1e-9)
    # random service, one server: Lindley against the heap
    arrive = arrival_times(8.0, 20_000, "poisson", seed=5)
    random_service = exponential_service(0.1, 20_000, seed=5)
    np.testing.assert_allclose(_waits_one_server(arrive, random_service), _waits_heap(arrive, random_service, 1), atol=1e-9)


def test_simulation_is_repeatable_and_seeded() -> None:
    a = simulate(servers=2, rate=15.0, service=SERVICE, seed=7)
    b = simulate(servers=2, rate=15.0, service=SERVICE, seed=7)
    c = simulate(servers=2, rate=15.0, service=SERVICE, seed=8)
    assert np.array_equal(a.waits, b.waits) and not np.array_equal(a.waits, c.waits)
    assert a.waits.size == 45_000  # 10% warm-up dropped


# ---------------------------------------------------------------- the model and capacity


def test_predict_methods_and_stability() -> None:
    md2 = QueueModel(2, SERVICE)
    steady = md2.predict(10.0)
    assert steady.stable and steady.method == "simulation"
    assert steady.utilisation == pytest.approx(10.0 * SERVICE / 2)
    assert SERVICE <= steady.p50 <= steady.p95 <= steady.p99
    assert md2.predict(10.0, "constant").p99 == SERVICE
    assert md2.predict(0.0).p95 == SERVICE
    over = md2.predict(md2.saturation)
    assert not over.stable and over.p95 == math.inf
    mm2 = QueueModel(2, SERVICE, "exponential").predict(10.0)
    assert mm2.method == "erlang-c" and mm2.p95 == pytest.approx(mmc_response_quantile(2, 10.0, SERVICE, 0.95))


def test_capacity_sanity_cases() -> None:
    md1 = capacity_at(0.3, 0.95, servers=1, service_s=SERVICE)
    md2 = capacity_at(0.3, 0.95, servers=2, service_s=SERVICE)
    assert 4.4 <= md1 <= 4.7 and 0.45 <= md1 * SERVICE <= 0.50
    assert 13.0 <= md2 <= 13.8 and 0.67 <= md2 * SERVICE / 2 <= 0.73
    for servers in (1, 2):
        constant = capacity_at(0.3, servers=servers, service_s=SERVICE, arrivals="constant")
        assert 0.99 * servers / SERVICE <= constant < servers / SERVICE


def exact_md1_capacity(target_s: float, service_s: float) -> float:
    """The rate where the exact M/D/1 wait reaches the 95th percentile target - service, by bisection."""
    lo, hi = 0.0, 1 / service_s
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if md1_wait_cdf(mid, service_s, target_s - service_s) >= 0.95 else (lo, mid)
    return lo


def test_md1_capacity_agrees_with_the_exact_wait_distribution() -> None:
    exact = exact_md1_capacity(0.3, SERVICE)
    assert exact == pytest.approx(4.458, abs=0.01)
    assert capacity_at(0.3, servers=1, service_s=SERVICE) == pytest.approx(exact, rel=0.015)


def test_mm1_capacity_is_exact() -> None:
    # p95 = ln 20 / (mu - lambda) <= 1 s  ->  lambda = 10 - ln 20
    assert capacity_at(1.0, servers=1, service_s=0.1, service="exponential") == pytest.approx(10 - math.log(20), abs=0.011)


def test_capacity_bounds_and_repeatability() -> None:
    assert capacity_at(0.1, servers=2, service_s=SERVICE) == 0.0  # the service alone misses the target
    loose = capacity_at(100.0, servers=2, service_s=SERVICE)
    assert 0.99 * 2 / SERVICE < loose < 2 / SERVICE  # never at or beyond saturation
    first = capacity_at(0.3, servers=2, service_s=SERVICE, seed=3)
    assert capacity_at(0.3, servers=2, service_s=SERVICE, seed=3) == first
    assert capacity_at(0.25, servers=2, service_s=SERVICE) < capacity_at(0.3, servers=2, service_s=SERVICE)
    assert capacity_at(0.3, 0.99, servers=2, service_s=SERVICE) < capacity_at(0.3, 0.95, servers=2, service_s=SERVICE)


def test_capacity_search_is_fast() -> None:
    start = time.perf_counter()
    capacity_at(0.3, servers=2, service_s=SERVICE, seed=11)
    assert time.perf_counter() - start < 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        QueueModel(0, SERVICE)
    with pytest.raises(ValueError):
        QueueModel(1, 0.0)
    with pytest.raises(ValueError):
        simulate(servers=1, rate=1.0, service=0.1, arrivals="bursty")  # type: ignore[arg-type]


def test_a_configuration_queues_on_its_requests_in_flight_unless_its_cpu_binds_first() -> None:
    # two sync workers, each request 100 ms in the database and 2 ms of CPU: the two in flight bind
    io = served_queue(0.102, in_flight=2, parallelism=1.0, d_cpu=0.002)
    assert io.binds == "in flight" and io.queue == QueueModel(2, 0.102) and io.outside_s == 0
    # the same two workers counting primes under one CPU: one CPU serves, however many are in flight
    cpu = served_queue(0.028, in_flight=2, parallelism=1.0, d_cpu=0.026)
    assert cpu.binds == "CPU" and cpu.queue == QueueModel(1, 0.026) and cpu.saturation == pytest.approx(1 / 0.026)
    # CPU past the handler's own time (the server's parsing and writing) lengthens the service, nothing beside it
    beyond = served_queue(0.028, in_flight=2, parallelism=1.0, d_cpu=0.033)
    assert beyond.queue == QueueModel(1, 0.033) and beyond.outside_s == 0
    # half a CPU: one server, twice as slow
    assert served_queue(0.028, in_flight=1, parallelism=0.5, d_cpu=0.028).queue == QueueModel(1, 0.056)
    # eight threads, 30 ms waiting and 20 ms of CPU each: the CPU binds and the wait is spent beside its queue
    mix = served_queue(0.05, in_flight=8, parallelism=1.0, d_cpu=0.02)
    assert mix.binds == "CPU" and mix.outside_s == pytest.approx(0.03)
    assert mix.capacity(0.3) == pytest.approx(QueueModel(1, 0.02).capacity(0.27))
    assert mix.quantile(10.0, 0.95) == pytest.approx(0.03 + QueueModel(1, 0.02).quantile(10.0, 0.95))
    assert served_queue(0.05, in_flight=8, parallelism=1.0, d_cpu=0.02).capacity(0.02) == 0  # the wait alone misses it
    assert served_queue(0.1, in_flight=3).queue == QueueModel(3, 0.1)  # without CPU figures: the requests in flight
