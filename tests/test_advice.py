"""'Which to pick', from hand-made records through the report's own analysis (pure logic)."""

from __future__ import annotations

from lab.modes import MODES
from lab.report.analysis import advice, analyse


def record(mode: str, workload: str, rps: float, *, p95: float = 100.0, cpus: float = 1, users: int = 10,
           cpu_ms: float = 5.0) -> dict:  # fmt: skip
    spec = MODES[mode]
    workers, threads = spec.default_workers or 1, spec.default_threads or 1
    in_flight, processes = spec.in_flight(workers, threads, 100), spec.processes(workers, threads, 100)
    return {
        "status": "ok",
        "reason": None,
        "config": {
            "id": f"{mode}-{workload}-{cpus}",
            "mode": mode,
            "workload": workload,
            "users": users,
            "cpus": cpus,
            "workers": workers,
            "threads": threads,
            "io_seconds": 0.1,
            "cpu_offload": "none",
            "db_pool": "1",
        },
        "locust": {"rps": rps, "p50_ms": p95 / 2, "p95_ms": p95, "failures": 0},
        "server": {"cpu_seconds_per_request": cpu_ms / 1000, "throttled_seconds": 0.0},
        "model": {"in_flight": in_flight, "processes": processes},
        "machine": {"cores_available": 2},
        "bounded_by_load_generator": False,
        "timeline": None,
    }


def pick(records: list[dict]) -> list[str]:
    return advice([analyse(r) for r in records])


def test_the_fastest_production_server_is_picked_and_a_faster_development_server_is_named_not_advised():
    said = pick([record("threaded", "io", 120), record("async", "io", 95), record("gthread", "io", 70)])
    assert said[0].startswith("For io-bound load (10 users, CPUS=1), pick async: 95.0 req/s")
    assert "threaded served more (120 req/s), but it is Django's development server" in said[0]
    assert "holds 10 of the 10 users' requests in flight" in said[0]


def test_among_level_throughputs_the_lower_tail_latency_wins():
    said = pick([record("async", "io", 95, p95=180), record("granian-asgi", "io", 94, p95=110)])
    assert "pick granian-asgi ×2: 94.0 req/s, p95 110 ms (level in throughput with async: the lowest p95 of them)" in said[0]


def test_different_winners_give_a_mix_pick_with_the_best_worst_case():
    said = pick([
        record("async", "io", 100), record("async", "cpu", 20, cpu_ms=50),
        record("gunicorn", "io", 20), record("gunicorn", "cpu", 40, cpu_ms=25),
        record("gthread", "io", 80), record("gthread", "cpu", 36, cpu_ms=27),
    ])  # fmt: skip
    assert "For a mix of both, pick gthread 2×4: it keeps 80% of the best io throughput and 90%" in said[-1]
    assert "the CPU limit binds" in said[1] and "25.0 ms, the least of the modes here" in said[1]
    assert "only CPUS=1 was measured" in said[1]


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
