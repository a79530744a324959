"""The crossing of a latency target along a search's steps, and its band from all the steps together."""

import math

import numpy as np
import pytest

from lab.analysis.crossing import Crossing, StepP95, crossing_band

SLO = 300.0


def curve(rate: float) -> float:
    """A p95 that grows exponentially with the rate: 30 ms at rest, the target at 100 req/s."""
    return 30.0 * math.exp(math.log(SLO / 30.0) * rate / 100.0)


def step(rate: float, p95: float, spread: float = 0.1) -> StepP95:
    return StepP95(rate, p95, p95 * (1 - spread), p95 * (1 + spread))


def test_steps_on_the_curve_give_its_crossing_inside_a_narrow_band():
    found = crossing_band([step(r, curve(r)) for r in (80, 95, 110, 120)], SLO)
    assert isinstance(found, Crossing) and found.steps == 4
    assert found.estimate == pytest.approx(100, rel=1e-6)
    assert found.low is not None and found.high is not None and found.low < 100 < found.high
    assert found.high - found.low < 15


def test_more_steps_near_the_target_narrow_the_band():
    two = crossing_band([step(r, curve(r)) for r in (90, 110)], SLO)
    four = crossing_band([step(r, curve(r)) for r in (85, 95, 105, 115)], SLO)
    assert two and four and two.low and two.high and four.low and four.high
    assert four.high - four.low < two.high - two.low


def test_the_band_covers_the_true_crossing_about_as_often_as_it_says():
    """Steps drawn around the curve with the spread their intervals state: the 95% band holds the true
    crossing in 90-99% of 300 searches (the bootstrap of a straight line is near, not exactly, nominal)."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(300):
        steps = []
        for rate in (70, 90, 105, 120):
            true = curve(rate)
            seen = true * math.exp(rng.normal(0, 0.1 / 1.96))
            steps.append(step(rate, seen))
        found = crossing_band(steps, SLO)
        assert found is not None
        covered += (found.low or 0) <= 100 <= (found.high or math.inf)
    assert 0.90 <= covered / 300 <= 0.99


def test_steps_that_scatter_beyond_their_intervals_widen_the_band():
    tight = [step(r, curve(r), 0.05) for r in (70, 90, 105, 120)]
    scattered = [step(s.rate, s.p95_ms * f, 0.05) for s, f in zip(tight, (1.3, 0.75, 1.3, 0.8), strict=True)]
    a, b = crossing_band(tight, SLO), crossing_band(scattered, SLO)
    assert a and b and a.low and a.high and b.low and b.high
    assert b.high - b.low > 2 * (a.high - a.low)


def test_steps_far_below_the_target_leave_the_band_open_above():
    found = crossing_band([step(r, curve(r), 0.6) for r in (60, 70, 75)], SLO)  # 119-168 ms, each ±60%
    assert found is not None and found.high is None and "open]" in str(found)


def test_no_crossing_without_two_rates_near_the_target_or_a_rising_line():
    assert crossing_band([step(100, 300.0)], SLO) is None
    assert crossing_band([step(10, 5.0), step(100, 300.0)], SLO) is None  # 5 ms is far from the target
    assert crossing_band([step(80, 400.0), step(100, 200.0)], SLO) is None  # falling: no crossing


def test_the_band_is_the_same_when_worked_out_again():
    steps = [step(r, curve(r) * f) for r, f in ((70, 1.1), (90, 0.9), (110, 1.05))]
    assert crossing_band(steps, SLO) == crossing_band(steps, SLO)


def test_a_step_without_an_interval_counts_with_a_wide_one():
    steps = [StepP95(90, curve(90)), step(100, curve(100)), step(110, curve(110))]
    found = crossing_band(steps, SLO)
    assert found is not None and found.estimate == pytest.approx(100, rel=1e-6)


def test_a_closed_search_spends_a_step_left_at_the_crossing_only_while_its_band_is_wide():
    from lab.bench.capacity.rates import narrowing_rate

    wide, narrow = Crossing(100.0, 80.0, 125.0, 3), Crossing(100.0, 95.0, 106.0, 4)
    assert narrowing_rate(wide, [70.0, 90.0, 120.0]) == 100.0
    assert narrowing_rate(Crossing(100.0, 90.0, None, 2), [90.0, 120.0]) == 100.0  # open above: wide
    assert narrowing_rate(narrow, [70.0, 90.0, 120.0]) is None  # within ±10%: enough
    assert narrowing_rate(wide, [70.0, 98.0, 120.0]) is None  # a step was offered there already
    assert narrowing_rate(None, [70.0]) is None


def test_the_band_is_no_higher_than_the_saturation_of_the_predicted_queue():
    from lab.analysis.crossing import capped

    flat = Crossing(15.0, 12.0, 112.0, 2)  # two steps near the target: a line so flat its top runs away
    assert capped(flat, 19.5) == Crossing(15.0, 12.0, 19.5, 2)
    assert capped(Crossing(15.0, 12.0, None, 2), 19.5) == Crossing(15.0, 12.0, 19.5, 2)  # open: closed at it
    assert capped(Crossing(15.0, 12.0, 17.0, 4), 19.5) == Crossing(15.0, 12.0, 17.0, 4)  # under it: as found
    assert capped(flat, None) == flat and capped(None, 19.5) is None


def test_the_crossing_holds_plain_floats_that_a_record_can_be_written_with():
    """A numpy scalar in the crossing made `differs_from_prediction` a numpy bool, which capacity.json
    could not hold: the search ran and its summary failed."""
    found = crossing_band([step(r, curve(r)) for r in (80, 95, 110, 120)], SLO)
    assert found is not None
    for figure in (found.estimate, found.low, found.high):
        assert type(figure) is float
    assert type(abs(found.estimate / 90 - 1) > 0.1) is bool
