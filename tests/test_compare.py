"""`make compare`: the statistics of a difference and the verdicts, pairing and refusals, machines, thresholds and the
gate's exit codes, on records made here; and once for real, two benches compared."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from contract.comparing import COMPARE_ASPECTS, THRESHOLD_UNITS
from contract.knobs import KnobError, compare_settings
from lab.__main__ import main
from lab.analysis.stats import Interval, t_critical
from lab.compare import render, words
from lab.compare.command import judge_thresholds
from lab.compare.comparison import Comparison, Settings, compared
from lab.compare.difference import (
    MAX_REPEATS,
    Method,
    Settle,
    Verdict,
    compare,
    mover,
    proportion,
    repeats_to_settle,
    verdict,
    welch,
)
from lab.compare.figures import Figure, Reading
from lab.compare.folders import read_side
from lab.compare.gate import Outcome, outcome
from lab.compare.setups import (
    ASPECTS,
    Alike,
    Arrivals,
    Build,
    Group,
    Kind,
    Limit,
    Machine,
    Pairing,
    Setup,
    Side,
    Unlike,
    Work,
    drift,
    machines,
    pair,
)
from lab.compare.thresholds import Judgement, Op, Threshold, judge, judged, parse
from lab.results.run_files import write_record
from lab.stack.checkout import ROOT

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench
from .records import run_record

# ---------------------------------------------------------------- the statistics of a difference


def test_welch_interval_is_scipys_at_non_integer_degrees_of_freedom() -> None:
    base, new = [10.0, 10.5, 9.8, 10.2], [11.0, 11.6, 11.2]
    difference, df = welch(base, new)
    theirs = stats.ttest_ind(new, base, equal_var=False)
    assert df == pytest.approx(theirs.df) and df != round(df)
    ci = theirs.confidence_interval(0.95)
    assert (difference.low, difference.high) == pytest.approx((ci.low, ci.high))
    assert difference.estimate == pytest.approx(np.mean(new) - np.mean(base))


def test_welch_by_hand_and_at_the_tables() -> None:
    # two runs a side, variances 0.5 and 2: se^2 = 0.25 + 1, df = 1.25^2 / (0.0625 + 1) = 1.4706
    difference, df = welch([1.0, 2.0], [3.0, 5.0])
    assert df == pytest.approx(1.25**2 / (0.25**2 + 1.0**2))
    assert difference.high - difference.estimate == pytest.approx(t_critical(df) * math.sqrt(1.25))
    assert t_critical(10) == pytest.approx(2.228, abs=1e-3)  # lab.analysis.stats now asks scipy, at whole df too
    same, df = welch([5.0, 5.0], [6.0, 6.0])
    assert (same.low, same.high, df) == (1.0, 1.0, math.inf)


def test_mover_of_symmetric_intervals_adds_their_half_widths_in_quadrature() -> None:
    d = mover(Interval(100, 97, 103), Interval(110, 106, 114))
    assert d.estimate == 10 and d.high - d.estimate == pytest.approx(5.0) and d.estimate - d.low == pytest.approx(5.0)
    skewed = mover(Interval(10, 9, 14), Interval(10, 9, 14))  # keeps each side's skew: up by new's top, base's bottom
    assert (skewed.low, skewed.high) == pytest.approx((-math.hypot(1, 4), math.hypot(4, 1)))
    assert math.isinf(mover(Interval(1, -math.inf, 2), Interval(1, 0, 2)).high)


def test_failure_share_has_a_wilson_interval_sound_at_zero() -> None:
    none = proportion(0, 100)
    assert (none.estimate, none.low) == (0.0, 0.0) and none.high == pytest.approx(0.037, abs=1e-3)
    with pytest.raises(ValueError):
        proportion(0, 0)


@pytest.mark.parametrize(
    ("low", "high", "higher_is_better", "expected"),
    [(-0.05, 0.05, True, Verdict.NO_CHANGE), (-0.02, 0.03, False, Verdict.NO_CHANGE),  # within, edges included
     (0.03, 0.08, True, Verdict.UNSURE), (-0.08, -0.01, False, Verdict.UNSURE), (-0.2, 0.2, True, Verdict.UNSURE),
     (0.06, 0.2, True, Verdict.BETTER), (0.06, 0.2, False, Verdict.WORSE),  # throughput up is better, latency up worse
     (-0.2, -0.06, True, Verdict.WORSE), (-0.2, -0.06, False, Verdict.BETTER)],
)  # fmt: skip
def test_verdicts_at_the_min_change_edges(low: float, high: float, higher_is_better: bool, expected: Verdict) -> None:
    assert verdict(Interval((low + high) / 2, low, high), 0.05, higher_is_better) is expected


def test_lower_latency_is_better_and_higher_throughput_is_better() -> None:
    slow, fast = Reading((100.0, 101.0, 99.0)), Reading((80.0, 81.0, 79.0))
    assert compare(Figure.P95, slow, fast, 0.05).verdict is Verdict.BETTER
    assert compare(Figure.P95, fast, slow, 0.05).verdict is Verdict.WORSE
    assert compare(Figure.RPS, slow, fast, 0.05).verdict is Verdict.WORSE
    assert compare(Figure.CAPACITY, Reading((50.0,), Interval(50, 45, 55)), Reading((80.0,), Interval(80, 75, 90)),
                   0.05).verdict is Verdict.BETTER  # fmt: skip
    same = compare(Figure.RPS, Reading((100.0, 100.5, 99.5)), Reading((100.2, 100.4, 99.9)), 0.05)
    assert same.verdict is Verdict.NO_CHANGE and same.method is Method.WELCH


def test_an_unsure_change_says_how_many_repeats_would_settle_it_at_the_spread_seen() -> None:
    base, new = Reading((100.0, 104.0, 96.0)), Reading((108.0, 112.0, 104.0))  # +8%, sd 4 a side
    found = compare(Figure.RPS, base, new, 0.05)
    assert found.verdict is Verdict.UNSURE and found.settle is Settle.REPEATS and found.repeats
    n = found.repeats
    # that many runs at the same spread would put the whole interval past +5%; one fewer would not
    reach = (found.change.estimate - 0.05) * 100
    assert repeats_to_settle(4.0, 4.0, reach) == n
    half = [t_critical((k - 1) * 2) * math.sqrt(32 / k) for k in (n - 1, n)]
    assert half[0] >= reach > half[1]
    ahead = compare(Figure.RPS, Reading(tuple(np.resize(base.runs, n))), Reading(tuple(np.resize(new.runs, n))), 0.05)
    assert ahead.verdict is Verdict.BETTER


def test_one_run_each_without_spread_asks_for_repeats_and_a_search_for_more_steps() -> None:
    alone = compare(Figure.CPU, Reading((2.0,)), Reading((2.1,)), 0.05)
    assert alone.verdict is Verdict.UNSURE and alone.settle is Settle.SPREAD and alone.repeats == 3
    assert "REPEATS=3" in words.verdict(alone)
    searched = compare(Figure.CAPACITY, Reading((50.0,), Interval(50, 48, 52)), Reading((52.0,), Interval(52, 50, 54)), 0.05)
    assert (searched.difference.low, searched.difference.high) == (-2, 6)  # bound against bound, not in quadrature
    assert searched.settle is Settle.SEARCH and "more steps" in words.verdict(searched)
    edge = compare(Figure.RPS, Reading((100.0, 110.0, 90.0)), Reading((105.0, 115.0, 95.0)), 0.05)  # +5% exactly
    assert edge.settle is Settle.TOO_CLOSE and f"REPEATS={MAX_REPEATS}" in words.verdict(edge)


def test_failure_share_changes_in_points_not_relative_to_a_share_near_zero() -> None:
    none = Reading((0.0,), proportion(0, 2000))
    assert compare(Figure.FAILURES, none, Reading((0.0,), proportion(0, 2000)), 0.05).verdict is Verdict.NO_CHANGE
    many = compare(Figure.FAILURES, none, Reading((0.05,), proportion(100, 2000)), 0.05)
    assert many.verdict is Verdict.WORSE and many.smallest == pytest.approx(0.005)
    assert words.change(many).startswith("+5.00 pt")


# ---------------------------------------------------------------- pairing and refusals

SETUP = Setup(mode="gunicorn", workers=2, threads=1, cpus=Limit(1.0, True), workload=Work("io", io_seconds=0.05),
              arrivals=Arrivals(users=4), target=None, db_pool="1", cpu_offload="none",
              interpreter=Build("CPython", "3.11.2", True, True, True), app=None, backend="native")  # fmt: skip


def group(setup: Setup = SETUP, label: str = "gunicorn ×2", **readings: Reading) -> Group:
    return Group(setup, label, 1, {Figure(k): v for k, v in readings.items()} or {Figure.RPS: Reading((10.0, 11.0))})


def test_every_aspect_is_a_field_of_setup_and_a_value_of_compare_across() -> None:
    assert ASPECTS == COMPARE_ASPECTS == tuple(f.name for f in fields(Setup))
    assert set(THRESHOLD_UNITS) == {f.value for f in Figure}


@pytest.mark.parametrize(
    ("aspect", "other", "said"),
    [("mode", "async", "mode: gunicorn in BASE, async in NEW"), ("workers", 4, "workers: WORKERS=2 in BASE, WORKERS=4"),
     ("threads", 8, "threads"), ("cpus", Limit(2.0, True), "cpus: CPUS=1 in BASE, CPUS=2 in NEW"),
     ("workload", Work("cpu", primes_limit=1000), "workload: io (IO_SECONDS=0.05) in BASE, cpu (PRIMES_LIMIT=1000)"),
     ("arrivals", Arrivals(rate=30.0, process="poisson"), "a closed loop of 4 users in BASE, open arrivals at 30/s"),
     ("target", 300.0, "target: no target in BASE, p95 target 300 ms in NEW"),
     ("interpreter", Build("CPython", "3.12.1", False, False, True), "CPython 3.11.2 (PGO, LTO) in BASE, CPython 3.12.1 in"),
     ("app", "shop.wsgi:application", "the lab's own endpoint in BASE, APP=shop.wsgi:application in NEW")],
)  # fmt: skip
def test_a_difference_refuses_by_name_unless_compare_across_names_it(aspect: str, other: object, said: str) -> None:
    new = group(replace(SETUP, **{aspect: other}))
    refused = pair([group()], [new], frozenset())
    assert isinstance(refused, Unlike) and refused.aspects == (aspect,)
    line = words.refusal(refused)
    assert said in line and f"COMPARE_ACROSS={aspect}" in line and "\n" not in line
    allowed = pair([group()], [new], frozenset({aspect}))
    assert isinstance(allowed, Pairing) and allowed.pairs[0].across == (aspect,)


def test_pairing_keeps_like_with_like_and_lists_the_rest() -> None:
    io, cpu = group(), group(replace(SETUP, workload=Work("cpu", primes_limit=1000)))
    only_new = group(replace(SETUP, workers=4), "gunicorn ×4")
    found = pair([io, cpu], [cpu, io, only_new], frozenset())
    assert isinstance(found, Pairing)
    assert [(p.base.setup, p.new.setup) for p in found.pairs] == [(cpu.setup, cpu.setup), (io.setup, io.setup)]
    assert found.only_new == (only_new,) and found.only_base == ()


def test_compare_across_that_makes_two_configurations_alike_is_refused() -> None:
    a, b = group(), group(replace(SETUP, mode="async", workers=1), "async")
    found = pair([a, b], [a], frozenset({"mode", "workers"}))
    assert isinstance(found, Alike) and found.side == "BASE"
    assert "2 configurations of BASE alike" in words.refusal(found)


# ---------------------------------------------------------------- machines

HERE = Machine("lab-1", "Xeon", 0.200, 0.01)


def test_machines_apart_in_speed_are_said_beside_every_verdict_and_cpu_is_scaled() -> None:
    faster = Machine("lab-2", "EPYC", 0.160, 0.01)  # 25% faster, past the 1% either moved
    note = machines(HERE, faster, frozenset())
    assert note is not None and note.scaled and note.pace == pytest.approx(1.25)
    base = side([group(rps=Reading((10.0,), Interval(10, 9.9, 10.1)), cpu=Reading((2.0, 2.02, 1.98)))], HERE)
    new = side([group(rps=Reading((10.0,), Interval(10, 9.9, 10.1)), cpu=Reading((1.6, 1.616, 1.584)))], faster)
    found = compared(base, new, Settings())
    assert isinstance(found, Comparison)
    cpu = next(c for c in found.compared[0].changes if c.figure is Figure.CPU)
    assert cpu.new.estimate == pytest.approx(2.0) and cpu.verdict is Verdict.NO_CHANGE  # as fast per loop: no change
    text = render.markdown(found)
    assert "25% faster" in text and "scaled by 1.250" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "figure" not in line]
    assert rows and all(line.endswith(f"{words.MACHINE_MARK} |") for line in rows)


def test_machines_alike_within_their_spread_say_nothing_and_other_hosts_unmeasured_are_said() -> None:
    assert machines(HERE, replace(HERE, loop_s=0.2018), frozenset()) is None  # 0.9%, within the 1% either moved
    assert machines(HERE, replace(HERE, loop_s=0.203), frozenset()) is not None
    unmeasured = machines(replace(HERE, loop_s=None), replace(HERE, host="lab-2", loop_s=None), frozenset())
    assert unmeasured is not None and unmeasured.pace is None and not unmeasured.scaled
    assert "compared as measured" in words.machine(unmeasured)
    # where the interpreter is the question, the loop times it too: no speed is read from it
    assert machines(HERE, replace(HERE, loop_s=0.150), frozenset({"interpreter"})) is None


def test_a_change_the_machine_s_own_drift_could_make_is_unsure_not_worse() -> None:
    """CI once found p95 +95% [+42%, +149%] for the same app: the machine had slowed by a quarter (its fixed loop
    0.187 s at the start of NEW, 0.236 s at the end) and the gate failed the code for it."""
    base, new = Reading((6.6, 6.7, 6.8)), Reading((12.9, 13.1, 13.3))
    alone = compare(Figure.P95, base, new, 0.25)
    assert alone.verdict is Verdict.WORSE
    drifted = compare(Figure.P95, base, new, 0.25, drift=0.9)
    assert drifted.verdict is Verdict.UNSURE and drifted.settle is Settle.MACHINE and drifted.drift == 0.9
    assert drifted.change == alone.change  # the interval is the data's; the verdict allows for the machine
    assert "the machine's own speed moved by up to 90%" in words.verdict(drifted)
    # three times the CPU is past any drift the loop saw
    assert compare(Figure.CPU, Reading((1.0, 1.02, 0.98)), Reading((3.0, 3.1, 2.9)), 0.25, drift=0.3).verdict is Verdict.WORSE


def test_the_drift_allowed_is_the_loop_s_move_within_and_between_the_folders() -> None:
    moving = replace(HERE, spread=0.26)
    slower = replace(HERE, loop_s=0.240, spread=0.02)  # 20% slower than HERE's 0.200
    across: frozenset[str] = frozenset()
    assert drift(moving, HERE, across, None, Figure.P95) == pytest.approx(0.26)  # within: the larger move
    assert drift(HERE, slower, across, None, Figure.RPS) == pytest.approx(0.02 + 1 / 6)  # and between: 0.2/0.24
    note = machines(HERE, slower, across)
    assert note is not None and note.scaled
    assert drift(HERE, slower, across, note, Figure.CPU) == pytest.approx(0.02)  # put on BASE's pace already
    assert drift(HERE, slower, frozenset({"interpreter"}), None, Figure.P50) == pytest.approx(0.02)  # the loop times it
    assert drift(moving, slower, across, note, Figure.MEMORY) == 0 and drift(moving, slower, across, note, Figure.FAILURES) == 0


# ---------------------------------------------------------------- thresholds


def test_thresholds_read_in_k6s_words() -> None:
    assert parse("p95<300ms rps>50 failures<1% p(99)<=1s cpu<2ms memory<=120MB capacity>=20/s") == (
        Threshold(Figure.P95, Op.LT, 300.0), Threshold(Figure.RPS, Op.GT, 50.0), Threshold(Figure.FAILURES, Op.LT, 0.01),
        Threshold(Figure.P99, Op.LE, 1000.0), Threshold(Figure.CPU, Op.LT, 2.0), Threshold(Figure.MEMORY, Op.LE, 120.0),
        Threshold(Figure.CAPACITY, Op.GE, 20.0))  # fmt: skip
    assert parse("") == ()


@pytest.mark.parametrize(
    ("text", "said"),
    [("p97<300ms", "THRESHOLDS has 'p97<300ms': limits such as"), ("p95<3kg", "p95 takes 'ms', 's' or no unit"),
     ("rps=50", "THRESHOLDS has 'rps=50'"), ("failures<1ms", "failures takes '%'"), ("p95<", "THRESHOLDS has 'p95<'")],
)  # fmt: skip
def test_a_bad_threshold_is_refused_naming_it(text: str, said: str) -> None:
    with pytest.raises(KnobError, match=r".*") as error:
        parse(text)
    assert said in str(error.value)


def test_the_comparisons_knobs_are_checked_naming_each_bad_one() -> None:
    values = compare_settings({"MIN_CHANGE": "2.5%", "COMPARE_ACROSS": "interpreter,app", "GATE": "1"})
    settings = Settings.of(values)
    assert settings.min_change == pytest.approx(0.025) and settings.across == ("interpreter", "app") and settings.gate
    assert Settings.of(compare_settings({})).min_change == 0.05 and not Settings.of(compare_settings({})).gate
    with pytest.raises(KnobError) as error:
        compare_settings({"MIN_CHANGE": "lots", "COMPARE_ACROSS": "colour", "GATE": "yes", "GATE_UNSURE": "maybe"})
    said = str(error.value)
    for part in ("MIN_CHANGE='lots' is not valid: MIN_CHANGE takes a percentage", "COMPARE_ACROSS='colour'",
                 "GATE='yes' is not valid: GATE takes one of 0, 1", "GATE_UNSURE='maybe'"):  # fmt: skip
        assert part in said


@pytest.mark.parametrize(
    ("text", "low", "high", "expected"),
    [("p95<300", 250, 290, Judgement.HELD), ("p95<300", 280, 320, Judgement.UNSURE), ("p95<300", 310, 350, Judgement.BROKEN),
     ("p95<300", 300, 350, Judgement.BROKEN), ("p95<=300", 250, 300, Judgement.HELD), ("rps>50", 40, 45, Judgement.BROKEN),
     ("rps>50", 45, 55, Judgement.UNSURE), ("rps>50", 51, 60, Judgement.HELD), ("failures<1%", 0, 0.02, Judgement.UNSURE)],
)  # fmt: skip
def test_thresholds_are_judged_on_the_interval_not_the_point(text: str, low: float, high: float, expected: Judgement) -> None:
    (threshold,) = parse(text)
    assert judge(threshold, Interval((low + high) / 2, low, high)) is expected


def test_a_threshold_on_a_figure_not_measured_is_said() -> None:
    (found,) = judged(parse("capacity>10"), [group()])
    assert found.judgement is Judgement.UNMEASURED and "not measured here" in words.judged(found)


# ---------------------------------------------------------------- the gate


def test_gate_outcomes() -> None:
    ok = compare(Figure.RPS, Reading((100.0, 100.5, 99.5)), Reading((100.2, 100.4, 99.9)), 0.05)
    bad = compare(Figure.P95, Reading((100.0, 101.0, 99.0)), Reading((130.0, 131.0, 129.0)), 0.05)
    unsure = compare(Figure.CPU, Reading((2.0,)), Reading((2.1,)), 0.05)
    broken = judged(parse("rps>500"), [group(rps=Reading((100.0, 100.5, 99.5)))])
    assert outcome([ok], []) is Outcome.PASS
    assert outcome([ok, bad, unsure], [], unsure_fails=True) is Outcome.WORSE  # worse wins over unsure
    assert outcome([ok, unsure], []) is Outcome.PASS and outcome([ok, unsure], [], unsure_fails=True) is Outcome.UNSURE
    assert outcome([ok], broken) is Outcome.WORSE and outcome([ok], [], new_failed=True) is Outcome.WORSE
    # BASE's runs failed: nothing to hold NEW to, never a pass (and a NEW shown worse elsewhere still fails)
    assert outcome([ok], [], base_failed=True) is Outcome.REFUSED and outcome([bad], [], base_failed=True) is Outcome.WORSE


def side(groups: list[Group], machine: Machine = HERE, name: str = "test") -> Side:
    return Side(name, name, Kind.EXPERIMENT, tuple(groups), machine)


# ---------------------------------------------------------------- folders on disk, through the command line


def record_json(mode: str = "async", rps: float = 100.0, p95: float = 50.0, *, index: int = 1, repeat: int = 0,
                failures: int = 0, cpu_s: float = 0.002, users: int = 10) -> dict[str, object]:  # fmt: skip
    """A measured run of `mode` as the lab writes it, the server's report of itself included."""
    run_id = f"{mode}-io-cpus1-u{users}"
    return {
        "index": index,
        "config": {"id": f"{run_id}-rep{repeat}" if repeat else run_id, "group": run_id, "repeat": repeat, "label": mode,
                   "mode": mode, "workload": "io", "users": users},
        "verification": {"ok": True, "server": {"mode": mode, "workload": "io", "io_seconds": 5.0,
                                                "interpreter": {"implementation": "CPython", "version": "3.11.2"}}},
        "locust": {"requests": 2000, "failures": failures, "failure_ratio": failures / 2000, "rps": rps,
                   "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 1.2},
        "server": {"cpu_seconds_per_request": cpu_s},
        "intervals": {"rps": {"estimate": rps, "low": rps * 0.99, "high": rps * 1.01, "n": 10},
                      **{f"p{p}_ms": {"estimate": p95 * k, "low": p95 * k * 0.99, "high": p95 * k * 1.01, "n": 2000}
                         for p, k in ((50, 0.5), (95, 1.0), (99, 1.2))}},
    }  # fmt: skip


def folder(path: Path, *runs: dict[str, object], name: str = "tiny") -> Path:
    for run in runs:
        write_record(path, run_record(**run))
    (path / "experiment.json").write_text(json.dumps({"name": name}))
    return path


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a comparison's folder goes, and the knobs unset."""
    monkeypatch.setattr("lab.results.folder.RESULTS", tmp_path / "results")
    for name in ("MIN_CHANGE", "COMPARE_ACROSS", "GATE", "GATE_UNSURE", "THRESHOLDS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "results"


def repeats(mode: str, values: list[float], **others: object) -> list[dict[str, object]]:
    return [record_json(mode, rps, index=i, repeat=i, **others) for i, rps in enumerate(values, 1)]  # type: ignore[arg-type]


def test_compare_writes_its_folder_and_exits_by_the_gate(tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    base = folder(tmp_path / "base", *repeats("async", [100, 102, 98]))
    same = folder(tmp_path / "same", *repeats("async", [101, 99, 100]))
    slower = folder(tmp_path / "slower", *repeats("async", [80, 82, 78]))
    monkeypatch.setenv("GATE", "1")
    assert main(["compare", str(base), str(same)]) == 0
    latest = (results / "latest").resolve()
    assert latest.name.startswith("compare-")
    md, data = (latest / "compare.md").read_text(), json.loads((latest / "compare.json").read_text())
    assert "| throughput | 100 req/s | 100 req/s |" in md and "no change shown" in md
    assert data["exit"] == 0 and data["compared"][0]["changes"][0]["method"] == "welch"
    assert json.loads((latest / "experiment.json").read_text())["kind"] == "compare"
    assert "Gate: pass (exit 0)" in capsys.readouterr().out

    assert main(["compare", str(base), str(slower)]) == 1
    out = capsys.readouterr().out
    assert "Gate: fail (exit 1). Worse: throughput of async" in out and "-20.0% [" in out

    # `make report` on the comparison's folder: the verdict, and BASE and NEW side by side in a table and a chart
    compared = (results / "latest").resolve()
    assert main(["report", str(compared)]) == 0
    report = (compared / "report.md").read_text()
    assert report.startswith("# Performance: NEW against BASE") and "Gate: fail (exit 1)" in report
    assert "| throughput | 100 req/s | 80.0 req/s | -20.0% [" in report and "(chart-compare-1.png)" in report
    assert (compared / "chart-compare-1.png").stat().st_size > 0 and (compared / "report.html").exists()

    monkeypatch.setenv("GATE", "0")  # without the gate, the verdict is said and the exit is 0
    assert main(["compare", str(base), str(slower)]) == 0
    assert "GATE=1 would exit 1" in capsys.readouterr().out


def test_unsure_fails_the_gate_only_with_gate_unsure_fail(tmp_path: Path, results: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    base = folder(tmp_path / "base", *repeats("async", [100, 104, 96]))
    new = folder(tmp_path / "new", *repeats("async", [101, 105, 97]))
    monkeypatch.setenv("GATE", "1")
    assert main(["compare", str(base), str(new)]) == 0
    monkeypatch.setenv("GATE_UNSURE", "fail")
    assert main(["compare", str(base), str(new)]) == 3
    assert "unsure: repeat with REPEATS=" in ((results / "latest") / "compare.md").read_text()


def test_folders_that_cannot_be_compared_exit_2_naming_the_difference(tmp_path: Path, results: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    base = folder(tmp_path / "base", record_json("async"))
    other = folder(tmp_path / "other", record_json("gunicorn"))
    more_users = folder(tmp_path / "users", record_json("async", users=20))
    monkeypatch.setenv("GATE", "1")
    assert main(["compare", str(base), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mode: async in BASE, gunicorn in NEW" in err and "COMPARE_ACROSS=mode" in err
    assert main(["compare", str(base), str(more_users)]) == 2
    assert "arrivals: a closed loop of 10 users in BASE, a closed loop of 20 users in NEW" in capsys.readouterr().err
    assert main(["compare", str(base), str(tmp_path / "nowhere")]) == 2
    assert "NEW=" in capsys.readouterr().err
    monkeypatch.setenv("COMPARE_ACROSS", "mode")  # gunicorn runs two workers: that differs too
    assert main(["compare", str(base), str(other)]) == 2
    assert "workers: WORKERS=1 in BASE, WORKERS=2 in NEW" in capsys.readouterr().err
    monkeypatch.setenv("COMPARE_ACROSS", "mode,workers")
    assert main(["compare", str(base), str(other)]) in (0, 1)
    out = capsys.readouterr().out
    assert "The question: mode: async in BASE, gunicorn in NEW; workers" in out and "#### async · io" in out
    monkeypatch.setenv("THRESHOLDS", "p95<300 p96<1")
    assert main(["compare", str(base), str(other)]) == 2
    assert "THRESHOLDS has 'p96<1'" in capsys.readouterr().err


def test_thresholds_in_a_comparison_and_after_a_bench(tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    base = folder(tmp_path / "base", record_json("async", p95=50.0, failures=0))
    new = folder(tmp_path / "new", record_json("async", p95=50.0, failures=100))
    monkeypatch.setenv("GATE", "1")
    monkeypatch.setenv("THRESHOLDS", "p95<300ms failures<1%")
    assert main(["compare", str(base), str(new)]) == 1  # 5% failures: worse, and past the 1% limit
    md = ((results / "latest") / "compare.md").read_text()
    assert "| failures<1% | async · io" in md and "**broken**" in md
    assert judge_thresholds(base) == 0
    assert judge_thresholds(new) == 1
    assert "failures<1% async · io (IO_SECONDS=5) · CPUS=1 · a closed loop of 10 users: 5.00% [" in capsys.readouterr().out
    monkeypatch.setenv("THRESHOLDS", "p95<50.2ms")  # the run's own p95 interval straddles it
    assert judge_thresholds(base) == 0
    monkeypatch.setenv("GATE_UNSURE", "fail")
    assert judge_thresholds(base) == 3
    capsys.readouterr()
    monkeypatch.delenv("THRESHOLDS")
    assert judge_thresholds(base) == 0 and "thresholds" not in capsys.readouterr().out


def test_a_folder_reads_its_repeats_as_one_configuration_and_its_machine(tmp_path: Path) -> None:
    path = folder(tmp_path / "base", *repeats("async", [100, 102, 98]), record_json("gunicorn", index=4))
    (path / "interpreter.json").write_text(json.dumps({"native": {"start": {"speed": {"cpu_seconds": 0.2}},
                                                                  "end": {"speed": {"cpu_seconds": 0.21}}}}))  # fmt: skip
    found = read_side(path, "BASE")
    assert found.kind is Kind.EXPERIMENT and [g.runs for g in found.groups] == [3, 1]
    assert found.groups[0].setup.interpreter == Build("CPython", "3.11.2", False, False, True)
    assert found.groups[0].setup.workload.io_seconds == 5.0  # as the server reported it
    assert found.machine.loop_s == pytest.approx(0.205) and found.machine.spread == pytest.approx(0.05)
    single = found.groups[1].readings
    # one run's own interval, never narrower than the machine's 5% run-to-run spread
    own = single[Figure.RPS].own
    assert own is not None and (own.estimate, own.low, own.high, own.n) == pytest.approx((100.0, 95.0, 105.0, 10))
    cpu = single[Figure.CPU].own  # one run cannot bound its CPU per request: the loop's spread does not either
    assert cpu is not None and not cpu.known


# ---------------------------------------------------------------- for real

TINY = """
description = "one configuration, a few seconds"
io_seconds = 0.02
warmup = 0.5
run_time = 3
users = 4
cpus = 1
[[matrix]]
modes = ["{mode}"]
workloads = ["io"]
"""


@pytest.mark.slow
def test_two_real_benches_compare_and_a_folder_of_another_mode_is_refused(tmp_path: Path) -> None:
    place = make_place(tmp_path / "state", 7)
    found = {}
    for name, mode, limits in (("base", "gunicorn", ""), ("new", "gunicorn", ""), ("other", "async", "p50<0.001ms rps>1")):
        experiment = tmp_path / f"{name}.toml"
        experiment.write_text(TINY.format(mode=mode))
        bench = run_bench(place, tmp_path / name, str(experiment), THRESHOLDS=limits)
        # THRESHOLDS at the end of the bench: no run answers in a microsecond, so p50's limit is broken
        assert bench.returncode == (1 if limits else 0), bench.stdout + bench.stderr
        found[name] = (tmp_path / name / "latest").resolve()
    assert "p50<0.001ms async" in bench.stdout and "**broken**" in bench.stdout and "rps>1" in bench.stdout
    assert not processes_of(place.state)

    def compare_cli(base: Path, new: Path) -> subprocess.CompletedProcess[str]:
        # the statistics are tested above; here the whole path, on a machine shared with other work, where a few
        # seconds of one run each can move more than the default 5%
        env = lab_env(place, LAB_RESULTS=str(tmp_path / "compared"), GATE="1", MIN_CHANGE="25%", THRESHOLDS="p95<300ms")
        return subprocess.run([PYTHON, "-m", "lab", "compare", str(base), str(new)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env=env)  # fmt: skip

    same = compare_cli(found["base"], found["new"])
    assert same.returncode == 0, same.stdout + same.stderr
    written = (tmp_path / "compared" / "latest").resolve()
    data = json.loads((written / "compare.json").read_text())
    verdicts = {c["figure"]: c["verdict"] for c in data["compared"][0]["changes"]}
    assert set(verdicts) >= {"rps", "p50", "p95", "p99", "failures", "cpu"} and "worse" not in verdicts.values()

    refused = compare_cli(found["base"], found["other"])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "mode: gunicorn in BASE, async in NEW" in refused.stderr and "COMPARE_ACROSS=mode" in refused.stderr


def capacity_folder(path: Path, low: float, high: float | None, d_cpu: tuple[float, float, float]) -> Path:
    """A capacity search's folder: its steps' records and capacity.json, as `make capacity` writes them."""
    for index, (rate, held) in enumerate(((low, True), (high or low * 1.5, high is None)), 1):
        run = record_json("async", rate, index=index)
        run["config"] = {**run["config"], "id": f"async-io-cpus1-u10-r{rate:g}", "arrival_rate": rate}  # type: ignore[dict-item]
        run["capacity_step"] = {"slo_p95_ms": 500.0, "held": held, "why": "", "verdict": "held" if held else "broke",
                                "offered_rps": rate}  # fmt: skip
        write_record(path, run_record(**run))
    found = {"id": "async-io-cpus1-u10", "label": "async", "workload": "io", "cpus": 1.0, "arrivals": "poisson",
             "slo_p95_ms": 500.0, "capacity": "", "capacity_low_rps": low, "capacity_high_rps": high,
             "capacity_mid_rps": (low + high) / 2 if high else None, "capacity_estimate_rps": None,
             "lower_bound_only": high is None,
             "crossed": False, "capacity_rps": low, "predicted_rps": None, "predicted_queue": None,
             "predicted_service_ms": None, "predicted_saturation_rps": None, "capacity_over_predicted": None,
             "differs_from_prediction": False, "model_saturation_rps": None,
             "d_cpu_ms": dict(zip(("estimate", "low", "high"), d_cpu, strict=True)), "idle_cpu": None, "ratio": None,
             "contradiction": None, "suspect": None, "steps": 2, "runs": 2, "seconds": 20.0}  # fmt: skip
    (path / "capacity.json").write_text(json.dumps([found]))
    (path / "experiment.json").write_text(json.dumps({"name": "capacity", "kind": "capacity", "slo_p95_ms": 500.0}))
    return path


def test_capacity_searches_compare_by_their_brackets_and_refuse_a_closed_loop(tmp_path: Path) -> None:
    base = read_side(capacity_folder(tmp_path / "base", 40.0, 50.0, (2.0, 1.9, 2.1)), "BASE")
    new = read_side(capacity_folder(tmp_path / "new", 80.0, 90.0, (1.0, 0.9, 1.1)), "NEW")
    assert base.kind is Kind.CAPACITY and len(base.groups) == 1
    assert base.groups[0].setup.arrivals == Arrivals(process="poisson") and base.groups[0].setup.target == 500.0
    found = compared(base, new, Settings())
    assert isinstance(found, Comparison)
    changes = {c.figure: c for c in found.compared[0].changes}
    assert set(changes) == {Figure.CAPACITY, Figure.CPU}
    # the brackets [40, 50] and [80, 90]: at least +30 req/s, at most +50, so better; CPU per request halved
    capacity = changes[Figure.CAPACITY]
    assert (capacity.difference.estimate, capacity.difference.low, capacity.difference.high) == (40, 30, 50)
    assert capacity.method is Method.BRACKETS and capacity.change.low == pytest.approx(30 / 45)
    assert changes[Figure.CAPACITY].verdict is Verdict.BETTER and changes[Figure.CPU].verdict is Verdict.BETTER
    assert "p95 target 500 ms" in render.markdown(found)
    unbounded = read_side(capacity_folder(tmp_path / "held", 40.0, None, (2.0, 1.9, 2.1)), "NEW")
    assert not unbounded.groups[0].readings[Figure.CAPACITY].interval().known  # a lower bound only: never "worse"
    closed = read_side(folder(tmp_path / "closed", record_json("async")), "NEW")
    refused = compared(base, closed, Settings())
    assert isinstance(refused, Unlike) and refused.aspects == ("arrivals", "target")
    assert "open arrivals searched (poisson) in BASE, a closed loop of 10 users in NEW" in words.refusal(refused)


# ---------------------------------------------------------------- repeats that stop once decided


def test_a_bench_against_base_stops_its_repeats_once_every_verdict_is_decided(tmp_path: Path) -> None:
    from lab.compare.settle import against

    base = folder(tmp_path / "base", *repeats("async", [100, 101, 99, 100]))
    settled = against(base, Settings())
    # two repeats as close as the base's: every figure's change within ±5%, decided
    close = folder(tmp_path / "close", *repeats("async", [100, 100.5]))
    assert (why := settled(close)) and "decided" in why and "no change" in why
    # two repeats that scatter around the 5% line: unsure, the bench goes on
    scattered = folder(tmp_path / "scattered", *repeats("async", [90, 104]))
    assert settled(scattered) is None
    # a configuration BASE does not have: not comparable whole, the bench goes on to say why at the end
    other = folder(tmp_path / "other", *repeats("async", [100, 100.5]), *repeats("threaded", [50, 51]))
    assert settled(other) is None


def test_a_round_of_repeats_ends_where_every_configuration_has_run_once_more() -> None:
    from lab.bench.run import _round_ends
    from lab.results.experiments import expand

    runs = expand("t", {"matrix": [{"modes": ["async", "threaded"], "workloads": "io"}]}, repeats=3).runs
    todo = list(enumerate(runs, 1))
    # async 1, threaded 1 | async 2, threaded 2 | async 3, threaded 3: the first round never stops a bench
    assert [_round_ends(todo, n) for n in range(len(todo))] == [False, False, False, True, False, True]


def test_a_baseline_whose_runs_failed_cannot_pass_the_gate(tmp_path: Path, results: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    failed = [{**run, "status": "failed", "reason": "the app did not start"} for run in repeats("async", [100, 101])]
    base = folder(tmp_path / "base", *failed)
    new = folder(tmp_path / "new", *repeats("async", [100, 101]))
    monkeypatch.setenv("GATE", "1")
    assert main(["compare", str(base), str(new)]) == 2
    assert "Gate: cannot compare (exit 2). async" in capsys.readouterr().out
