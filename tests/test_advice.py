"""'Which to pick', from hand-made records through the report's own analysis (pure logic)."""

from __future__ import annotations

from contract.modes import MODES
from lab.report.rows import analyse
from lab.report.words import advice
from lab.results.record import read_record

from .records import merged, whole


def record(mode: str, workload: str, rps: float, *, p95: float = 100.0, cpus: float = 1, users: int = 10,
           cpu_ms: float = 5.0, kinds: dict | None = None, sure: float | None = 0.02) -> dict:  # fmt: skip
    """A run's record; `sure` is the half-width of its throughput's 95% interval, relative (None: no interval)."""
    spec = MODES[mode]
    workers, threads = spec.default_workers or 1, spec.default_threads or 1
    in_flight, processes = spec.in_flight(workers, threads, 100), spec.processes(workers, threads, 100)
    return merged(whole(), {
        "config": {
            "id": f"{mode}-{workload}-{cpus}",
            "label": "",
            "mode": mode,
            "workload": workload,
            "users": users,
            "cpus": cpus,
            "workers": workers,
            "threads": threads,
            "io_seconds": 0.1,
            "cpu_offload": "none",
            "db_pool": "1",
            "mix_cpu_share": 0.1,
        },
        "locust": {"rps": rps, "p50_ms": p95 / 2, "p95_ms": p95, "failures": 0, "by_workload": kinds or {}},
        "server": {"cpu_seconds_per_request": cpu_ms / 1000, "throttled_seconds": 0.0},
        "model": {"in_flight": in_flight, "processes": processes},
        "machine": {"cores_available": 2},
        "bounded_by_load_generator": False,
        "timeline": None,
        "intervals": None if sure is None else {"rps": {"estimate": rps, "low": rps * (1 - sure), "high": rps * (1 + sure),
                                                        "n": 30}},
    })  # fmt: skip


def pick(records: list[dict]) -> list[str]:
    return advice([analyse(read_record(r)) for r in records])


def test_the_fastest_production_server_is_picked_and_a_faster_development_server_is_named_not_advised():
    said = pick([record("threaded", "io", 120), record("async", "io", 95), record("gthread", "io", 70)])
    assert said[0].startswith("For io-bound load (10 users, CPUS=1), pick async: 95.0 req/s")
    assert "threaded served more (120 req/s), but it is Django's development server" in said[0]
    assert "holds 10 of the 10 users' requests in flight" in said[0]


def test_among_level_throughputs_the_lower_tail_latency_wins():
    said = pick([record("async", "io", 95, p95=180), record("granian-asgi", "io", 94, p95=110)])
    assert "pick granian-asgi ×2: 94.0 req/s, p95 110 ms (level in throughput with async: the lowest p95 of them)" in said[0]


def test_level_means_intervals_that_overlap_not_a_fixed_percentage():
    # 3% apart, each known within 0.5%: told apart, though a 5% rule would have called them level
    said = pick([record("async", "io", 100, p95=180, sure=0.005), record("granian-asgi", "io", 97, p95=110, sure=0.005)])
    assert said[0].startswith("For io-bound load (10 users, CPUS=1), pick async: 100 req/s") and "level" not in said[0]
    # 10% apart, each known within 6%: not told apart, so the lower p95 decides
    said = pick([record("async", "io", 100, p95=180, sure=0.06), record("granian-asgi", "io", 90, p95=110, sure=0.06)])
    assert "pick granian-asgi ×2: 90.0 req/s, p95 110 ms (level in throughput with async" in said[0]
    # a run with no interval at all cannot be told apart from anything
    said = pick([record("async", "io", 100, p95=180, sure=None), record("granian-asgi", "io", 50, p95=110, sure=None)])
    assert "pick granian-asgi" in said[0]


def test_without_a_measured_mix_there_is_no_pick_for_one_however_the_pure_workloads_went():
    said = pick([
        record("async", "io", 100), record("async", "cpu", 20, cpu_ms=50),
        record("gunicorn", "io", 20), record("gunicorn", "cpu", 40, cpu_ms=25),
        record("gthread", "io", 80), record("gthread", "cpu", 36, cpu_ms=27),
    ])  # fmt: skip
    assert said[-1].startswith("A mix of io and cpu requests was not measured, so there is no pick for one")
    assert "the CPU limit (CPUS=1, 1 CPU of Python at once) binds" in said[1]
    assert "25.0 ms, the least of the modes here" in said[1] and "only CPUS=1 was measured" in said[1]


def kinds(io_p95: float, cpu_p95: float) -> dict:
    io = {"requests": 900, "failures": 0, "p50_ms": io_p95 / 2, "p95_ms": io_p95, "p99_ms": io_p95, "rps": 90}
    cpu = {"requests": 100, "failures": 0, "p50_ms": cpu_p95 / 2, "p95_ms": cpu_p95, "p99_ms": cpu_p95, "rps": 10}
    return {"io": io, "cpu": cpu}


def test_the_mix_pick_comes_from_mix_runs_and_names_io_requests_held_up_behind_prime_counts():
    said = pick([
        record("async", "io", 100), record("async", "cpu", 40, cpu_ms=25),  # async leads both pure workloads
        record("async", "mix", 60, kinds=kinds(900, 950)),
        record("gthread", "mix", 61, kinds=kinds(150, 400)),
        record("gunicorn", "mix", 30, kinds=kinds(300, 300)),
    ])  # fmt: skip
    mix = [s for s in said if s.startswith("For a mix")]
    assert mix == [
        "For a mix (10% cpu requests, 10 users, CPUS=1), pick gthread 2×4: 61.0 req/s, io p95 150 ms, cpu p95 400 ms "
        "(level in throughput with async: the lowest io p95 of them); in async io requests reached p95 900 ms, "
        "held up behind the prime counts."
    ]


def test_no_cpu_limit_is_named_where_none_was_set():
    said = pick([record("granian-asgi", "cpu", 90, cpu_ms=20, cpus=0), record("async", "cpu", 45, cpu_ms=20, cpus=0)])
    assert "the CPU limit" not in said[0] and "CPUS=" not in said[0]
    assert "no CPU limit" in said[0] and "its process count (2: 2 CPU of Python at once" in said[0]


def test_a_run_bounded_by_the_machine_is_never_picked():
    fast = record("granian-asgi", "io", 1960) | {"bounded_by_machine": True}
    said = pick([fast, record("async", "io", 95)])
    assert said[0].startswith("For io-bound load (10 users, CPUS=1), pick async: 95.0 req/s")


def test_a_pick_that_changes_with_the_cpu_limit_is_said():
    said = pick([
        record("async", "cpu", 40, cpu_ms=25), record("gunicorn", "cpu", 38, cpu_ms=26),
        record("async", "cpu", 40, cpu_ms=25, cpus=2), record("gunicorn", "cpu", 76, cpu_ms=26, cpus=2),
        record("async", "io", 95),
    ])  # fmt: skip
    assert any(s.startswith("With CPUS=2, the cpu pick changes to gunicorn 2×1: 76.0 req/s") for s in said), said
    assert not any("only CPUS=1 was measured" in s for s in said)


def test_no_successful_run_means_no_advice():
    failed = record("async", "io", 0) | {"status": "failed", "reason": "the app did not start"}
    assert pick([failed]) == []


def test_a_pick_level_with_the_usual_one_at_another_cpu_limit_is_not_a_change():
    said = pick([
        record("async", "cpu", 40, cpu_ms=25), record("gunicorn", "cpu", 38, cpu_ms=26),
        record("async", "cpu", 20, cpu_ms=25, cpus=0.5, p95=900), record("gunicorn", "cpu", 20.5, cpu_ms=26, cpus=0.5),
    ])  # fmt: skip
    assert not any(s.startswith("With CPUS=0.5") for s in said), said
