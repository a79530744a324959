"""The throughput model against hand-worked cases: each mode, each bound binding."""

from __future__ import annotations

import pytest

from contract.modes import MODES
from lab.analysis.model.bounds import CONCURRENCY, CPU, parallelism, predict
from lab.report.notes import judge
from lab.report.words import note


def explain(*args, **kwargs) -> str:
    """A run's note, as the runs table says it."""
    return note(judge(*args, **kwargs))


def mode_counts(mode: str, workers: int = 1, threads: int = 1, pool: int = 100) -> tuple[int, int]:
    m = MODES[mode]
    return m.in_flight(workers, threads, pool), m.processes(workers, threads, pool)


def test_nothreading_io_is_one_request_at_a_time():
    c, p = mode_counts("nothreading")
    # 10 users, 5 s wait, 2 ms CPU: one in flight -> 1 / 5.002 s
    x = predict(users=10, in_flight=c, processes=p, cpus=1, cores=2, d_io=5.0, d_cpu=0.002)
    assert x.binding == CONCURRENCY
    assert x.throughput == pytest.approx(1 / 5.002)


def test_threaded_io_holds_every_user():
    c, p = mode_counts("threaded")
    x = predict(users=10, in_flight=c, processes=p, cpus=1, cores=2, d_io=0.1, d_cpu=0.002)
    assert x.binding == CONCURRENCY
    assert x.in_flight == 10
    assert x.throughput == pytest.approx(10 / 0.102)


def test_async_io_is_capped_by_its_pool():
    c, p = mode_counts("async", pool=20)
    x = predict(users=40, in_flight=c, processes=p, cpus=1, cores=2, d_io=0.1, d_cpu=0.001)
    assert x.in_flight == 20
    assert x.throughput == pytest.approx(20 / 0.101)


def test_threaded_cpu_is_bound_by_one_gil():
    c, p = mode_counts("threaded")
    # the post: a prime count of ~4.4 s; two users; two cores, but one process
    x = predict(users=2, in_flight=c, processes=p, cpus=2, cores=2, d_io=0, d_cpu=4.4)
    assert x.binding == CPU
    assert x.parallelism == 1
    assert x.throughput == pytest.approx(1 / 4.4)


def test_gunicorn_cpu_uses_one_core_per_worker():
    c, p = mode_counts("gunicorn", workers=2)
    x = predict(users=2, in_flight=c, processes=p, cpus=2, cores=2, d_io=0, d_cpu=4.4)
    # both bounds meet at 2 / 4.4: two in flight, two processes
    assert x.throughput == pytest.approx(2 / 4.4)
    assert x.parallelism == 2


def test_cpu_limit_caps_the_workers():
    c, p = mode_counts("gunicorn", workers=4)
    x = predict(users=8, in_flight=c, processes=p, cpus=0.5, cores=2, d_io=0, d_cpu=0.02)
    assert x.binding == CPU
    assert x.parallelism == 0.5
    assert x.throughput == pytest.approx(25.0)


def test_gunicorn_threads_multiply_in_flight():
    c, p = mode_counts("gunicorn", workers=2, threads=4)
    assert (c, p) == (8, 2)


def test_no_cpu_limit_means_every_core():
    assert parallelism(processes=8, cpus=0, cores=2) == 2
    assert parallelism(processes=1, cpus=0, cores=2) == 1


def test_bad_service_times_are_refused():
    with pytest.raises(ValueError):
        predict(users=1, in_flight=1, processes=1, cpus=1, cores=1, d_io=0.1, d_cpu=0)


def test_explanations_name_the_binding_bound_and_the_suspects():
    x = predict(users=10, in_flight=10, processes=1, cpus=1, cores=2, d_io=0.1, d_cpu=0.002)
    assert explain(x, x.throughput, load_generator_bound=False, throttled_seconds=0, failures=0).startswith("as predicted")
    low = explain(x, x.throughput * 0.4, load_generator_bound=True, throttled_seconds=2.0, failures=3)
    assert "below the model" in low
    assert "load generator was saturated" in low
    assert "3 requests failed" in low
    assert "throttled" in low
    # a few milliseconds of throttling is no cause: never 'the CPU quota throttled the server for 0.0s'
    slight = explain(x, x.throughput * 0.4, load_generator_bound=False, throttled_seconds=0.03, failures=0)
    assert "below the model" in slight and "throttled" not in slight


def test_a_steady_delayed_ack_floor_is_named_as_the_suspect():
    x = predict(users=10, in_flight=10, processes=1, cpus=1, cores=2, d_io=0.1, d_cpu=0.002)
    held = explain(x, x.throughput * 0.7, load_generator_bound=False, throttled_seconds=0, failures=0, delayed_ack_ms=42)
    assert "steady 42 ms" in held
    assert "TCP_NODELAY" in held
    plain = explain(x, x.throughput * 0.7, load_generator_bound=False, throttled_seconds=0, failures=0)
    assert "TCP_NODELAY" not in plain


def test_workers_that_served_nothing_are_named_as_the_suspect():
    x = predict(users=2, in_flight=2, processes=2, cpus=1, cores=2, d_io=0.1, d_cpu=0.002)
    seen = {"capacity": 2, "processes": 2, "processes_seen": 1}
    note = explain(x, x.throughput * 0.5, load_generator_bound=False, throttled_seconds=0, failures=0, **seen)
    assert "only 1 of 2 worker processes served requests" in note
    assert "median request" not in note


def test_idle_workers_are_not_blamed_when_the_busy_ones_suffice():
    # two event loops of 100 slots each under one CPU: one loop holds every user, one CPU binds anyway
    x = predict(users=4, in_flight=200, processes=2, cpus=1, cores=2, d_io=0.0, d_cpu=0.02)
    seen = {"capacity": 200, "processes": 2, "processes_seen": 1, "median_ms": 150, "work_ms": 20}
    note = explain(x, x.throughput * 0.5, load_generator_bound=False, throttled_seconds=0, failures=0, **seen)
    assert "worker processes served" not in note
    assert "median request took 150 ms" in note
