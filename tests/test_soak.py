"""The soak's reading of its samples: each kind of process summed, its memory at 1 and 5 minutes and at the end,
and the slope after the first five minutes (a leak is a slope, not a crash days later)."""

from tests.soak import Sample, kind_of, summary


def test_each_process_kind_is_summed_and_a_leak_shows_as_its_slope():
    samples = []
    for minute in range(0, 31):
        at = minute * 60.0
        samples += [Sample(at, 10, "server", 40.0, 12), Sample(at, 11, "server", 40.0, 12)]  # flat, two workers
        samples.append(Sample(at, 20, "locust", 100.0 + 2.0 * minute, 30 + minute))  # 2 MB and one file a minute
        samples += [Sample(at, 30 + n, "postgres", 10.0, 5) for n in range(3 + minute // 10)]  # a backend every 10 min
    table = summary(samples, "One run kept at the end: x (1.2 MB)")
    server = next(line for line in table.splitlines() if line.startswith("| the server"))
    locust = next(line for line in table.splitlines() if line.startswith("| Locust"))
    postgres = next(line for line in table.splitlines() if line.startswith("| PostgreSQL"))
    assert server.startswith("| the server | 80.0 | 80.0 | 80.0 | +0.00") and server.endswith("| 24 → 24 | 2 → 2 |")
    assert "| +2.00 [+2.00, +2.00] |" in locust and locust.endswith("| 35 → 60 | 1 → 1 |")
    assert postgres.endswith("| 15 → 30 | 3 → 6 |")
    assert table.endswith("One run kept at the end: x (1.2 MB)")


def test_processes_are_told_apart_by_their_command_line():
    assert kind_of(["/x/.venv/bin/python", "-m", "lab", "up"]) == "lab up"
    assert kind_of(["/x/pginstall/bin/postgres", "-D", "/x/.lab/postgres/data"]) == "postgres"
    assert kind_of(["/x/.venv/bin/locust", "-f", "locust/locustfile.py"]) == "locust"
    assert kind_of(["/x/.venv/bin/gunicorn", "banksite.wsgi:application"]) == "server"
