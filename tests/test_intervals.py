"""How sure a run's figures are (its own samples) and repeats of a configuration, interleaved."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pytest

from lab.analysis import intervals
from lab.results.experiments import ExperimentError, expand

MATRIX = {"matrix": [{"modes": ["async", "gunicorn"], "workloads": "io"}]}


def test_repeats_run_every_configuration_once_then_again_each_named_apart():
    runs = expand("t", {**MATRIX, "repeats": 3}).runs
    assert [(r.knobs.mode, r.repeat) for r in runs] == [(m, n) for n in (1, 2, 3) for m in ("async", "gunicorn")]
    assert len({r.id for r in runs}) == 6 and {r.group for r in runs} == {r.id for r in expand("t", MATRIX).runs}
    assert runs[2].id.endswith("-rep2") and runs[2].as_dict()["group"] == runs[0].as_dict()["group"]
    assert [r.id for r in expand("t", MATRIX, repeats=1).runs] == [r.id for r in expand("t", MATRIX).runs]  # unchanged ids
    assert len(expand("t", {**MATRIX, "repeats": 1}, repeats=2).runs) == 4  # REPEATS wins over the file


@pytest.mark.parametrize("bad", [0, 21, "3", 1.5, True])
def test_a_bad_repeat_count_is_named(bad):
    with pytest.raises(ExperimentError, match=r"repeats=.* is not valid: repeats takes an integer from 1 to 20"):
        expand("t", {**MATRIX, "repeats": bad})


def _timeline(path: Path, seconds: int, per_second: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["pid", "thread", "start_us", "end_us", "status", "client_ms", "workload"])
        for second in range(seconds):
            for i in range(per_second + rng.randint(-3, 3)):
                end = int((1_000_000 + second + i / (per_second + 4)) * 1e6)
                writer.writerow([1, 1, end - 50_000, end, 200, f"{rng.expovariate(1 / 50):.3f}", "io"])
    return path


def test_a_steady_run_has_a_narrow_throughput_interval_around_its_own_figure(tmp_path):
    found = intervals.of_run(_timeline(tmp_path / "t.csv", 20, 50), rps=50.0)
    rps = found.rps.interval()
    assert rps.estimate == 50.0 and rps.low < 50 < rps.high and rps.relative_half_width < 0.05
    p95 = found.p95_ms.interval()
    assert p95.low < p95.estimate < p95.high and p95.n > 900
    assert 50 * -math.log(0.05) == pytest.approx(p95.estimate, rel=0.25)  # exponential with mean 50 ms


def test_too_few_requests_leave_an_interval_unbounded_not_invented(tmp_path):
    found = intervals.of_run(_timeline(tmp_path / "t.csv", 2, 5), rps=5.0)
    assert found.p99_ms.high is None  # a p99 of ten requests has no upper bound
    assert not found.p99_ms.interval().known


def test_repeats_give_a_mean_with_its_interval_and_the_run_to_run_spread():
    assert not intervals.across([100.0]).known and intervals.spread([100.0]) is None
    mean = intervals.across([100.0, 104.0, 96.0])
    assert mean.estimate == pytest.approx(100) and mean.low < 96 and mean.high > 104
    assert intervals.spread([100.0, 104.0, 96.0]) == pytest.approx(0.04)
