"""Intervals with error bars: exact against hand or brute-force values, coverage by seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.analysis.stats import (
    Interval,
    batch_means_interval,
    level,
    mean_interval,
    quantile,
    quantile_interval,
    quantile_ranks,
    ranked,
    slope_intercept,
    split_tails,
    t_critical,
    trend_interval,
    unknown,
)

# ---------------------------------------------------------------- Interval


def test_interval_helpers() -> None:
    a = Interval(4.6, 4.3, 4.9, n=10)
    assert a.known
    assert a.width == pytest.approx(0.6)
    assert a.relative_half_width == pytest.approx(0.3 / 4.6)
    assert a.below(5.0) and not a.below(4.9)
    assert a.above(4.0) and not a.above(4.3)
    assert 4.5 in a and 5.0 not in a
    assert a.overlaps(Interval(5.0, 4.9, 5.2)) and not a.overlaps(Interval(5.1, 5.0, 5.2))
    assert str(a) == "4.6 [4.3, 4.9]"
    assert str(Interval(19.62, 19.21, 20.03)) == "19.6 [19.2, 20.0]"
    assert str(Interval(1.003, 0.941, 1.072)) == "1.00 [0.94, 1.07]"


def test_unknown_interval_overlaps_everything_and_decides_nothing() -> None:
    u = unknown(3.0, n=1)
    assert not u.known
    assert u.overlaps(Interval(100.0, 99.0, 101.0))
    assert not u.below(1e300) and not u.above(-1e300)
    assert u.relative_half_width == math.inf
    assert str(u) == "3 [?, ?]"
    one_sided = Interval(2.0, 1.5, math.inf)
    assert not one_sided.known and one_sided.above(1.0) and not one_sided.below(1e9)


# ---------------------------------------------------------------- quantiles


def test_quantile_is_numpy_linear() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 10, 101, 1000):
        values = rng.lognormal(size=n)
        for q in (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0):
            assert quantile(values.tolist(), q) == pytest.approx(float(np.quantile(values, q)), rel=1e-12)


def test_quantile_edges() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0], 0.99) == 3.0
    assert quantile([1.0, 2.0], 0.5) == 1.5
    assert quantile([4, 1, 3, 2], 0.95) == pytest.approx(3.85)  # h = 2.85 between 3 and 4
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)


def brute_ranks(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """The same rule as quantile_ranks, from math.comb: P(B < r) for each rank r."""
    below = [sum(math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(r)) for r in range(1, n + 1)]
    alpha = 1 - confidence

    def lower(tail: float) -> int | None:
        fits = [r for r in range(1, n + 1) if below[r - 1] <= tail]
        return fits[-1] if fits else None

    def upper(tail: float) -> int | None:
        fits = [r for r in range(1, n + 1) if 1 - below[r - 1] <= tail]
        return fits[0] if fits else None

    return split_tails(lower, upper, alpha)  # the ranks are the oracle's own; the rule for the tails is shared


@pytest.mark.parametrize(
    ("n", "q"),
    [(1, 0.5), (5, 0.5), (6, 0.5), (20, 0.5), (30, 0.95), (59, 0.95), (72, 0.95), (100, 0.95), (200, 0.99), (150, 0.1)],
)
def test_quantile_ranks_match_brute_force(n: int, q: float) -> None:
    assert quantile_ranks(n, q, 0.95) == brute_ranks(n, q, 0.95)


def test_quantile_ranks_known_cases() -> None:
    assert quantile_ranks(100, 0.95) == (90, 100)  # the classic: p95 of 100 is bounded by x(90) and the max
    assert quantile_ranks(5, 0.5) == (None, None)  # 1/32 > 2.5%: five values cannot bound a median
    assert quantile_ranks(6, 0.5) == (1, 6)  # 1/64 <= 2.5%: the min and max do
    low, high = quantile_ranks(30, 0.95)
    assert high is None and low is not None  # 0.95^30 = 21% of samples have no value above p95
    big = quantile_ranks(1_000_000, 0.95)
    half = 1.96 * math.sqrt(1_000_000 * 0.95 * 0.05)
    assert big[0] is not None and big[1] is not None
    assert abs(big[0] - (950_000 - half)) < 3 and abs(big[1] - (950_000 + half)) < 3  # the normal limit


def exact_coverage(n: int, q: float, low: int, high: int) -> float:
    return sum(math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(low, high))


def test_quantile_interval_covers_the_true_p95_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2024)
    n, trials, q = 200, 400, 0.95
    truth = math.log(20)  # p95 of Exp(1)
    hits = 0
    for _ in range(trials):
        iv = quantile_interval(rng.exponential(size=n), q)
        assert iv.low <= iv.estimate <= iv.high
        hits += iv.low <= truth < iv.high
    low, high = quantile_ranks(n, q)
    assert low is not None and high is not None
    expected = exact_coverage(n, q, low, high)
    assert 0.95 <= expected < 0.99
    assert abs(hits / trials - expected) < 0.03  # three standard errors of 400 trials


def test_one_sided_quantile_interval_still_covers() -> None:
    rng = np.random.default_rng(99)
    truth = math.log(20)
    ivs = [quantile_interval(rng.exponential(size=40), 0.95) for _ in range(400)]
    assert all(iv.high == math.inf and math.isfinite(iv.low) for iv in ivs)
    assert sum(iv.low <= truth for iv in ivs) / 400 >= 0.93


def test_quantile_interval_small_and_empty() -> None:
    iv = quantile_interval([1.0, 2.0, 3.0], 0.95)
    assert iv.estimate == pytest.approx(2.9) and not iv.known and iv.n == 3
    with pytest.raises(ValueError):
        quantile_interval([], 0.5)


def test_quantile_interval_narrows_with_n() -> None:
    rng = np.random.default_rng(5)
    widths = [quantile_interval(rng.exponential(size=n), 0.5).width for n in (100, 1000, 10_000)]
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] / widths[2] == pytest.approx(math.sqrt(10), rel=0.35)


# ---------------------------------------------------------------- means


@pytest.mark.parametrize(
    ("df", "confidence", "expected"),
    [(1, 0.95, 12.706), (2, 0.95, 4.303), (4, 0.95, 2.776), (9, 0.95, 2.262), (29, 0.95, 2.045),
     (1, 0.99, 63.657), (10, 0.9, 1.812), (120, 0.95, 1.980), (500, 0.95, 1.965), (100_000, 0.95, 1.960)],
)  # fmt: skip
def test_t_critical_against_tables(df: int, confidence: float, expected: float) -> None:
    assert t_critical(df, confidence) == pytest.approx(expected, abs=1.5e-3)


def test_mean_interval_coverage_with_few_repeats() -> None:
    rng = np.random.default_rng(11)
    ivs = [mean_interval(rng.normal(10.0, 2.0, size=4)) for _ in range(400)]
    coverage = sum(10.0 in iv for iv in ivs) / 400
    assert 0.92 <= coverage <= 0.98  # with z = 1.96 instead of t = 3.18 it would be about 0.83


def test_mean_interval_edges() -> None:
    one = mean_interval([5.0])
    assert one.estimate == 5.0 and not one.known and one.n == 1
    same = mean_interval([2.0, 2.0, 2.0])
    assert same.low == same.high == 2.0
    with pytest.raises(ValueError):
        mean_interval([])


def ar1(rng: np.random.Generator, trials: int, n: int, phi: float, mean: float) -> np.ndarray:
    """Rows of an autoregressive series: each point keeps phi of the previous one's deviation."""
    x = np.empty((trials, n))
    x[:, 0] = rng.normal(size=trials) / math.sqrt(1 - phi**2)
    noise = rng.normal(size=(trials, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x + mean


def test_batch_means_interval_covers_where_a_naive_interval_does_not() -> None:
    series = ar1(np.random.default_rng(3), trials=200, n=2000, phi=0.9, mean=50.0)
    batch = sum(50.0 in batch_means_interval(row, batches=10) for row in series) / 200
    naive = sum(50.0 in mean_interval(row) for row in series) / 200
    assert batch >= 0.88
    assert naive < 0.6  # neighbours are correlated: the raw points overstate the information


def test_batch_means_interval_narrows_as_n_grows() -> None:
    rng = np.random.default_rng(8)
    widths = [batch_means_interval(ar1(rng, 1, n, 0.5, 100.0)[0]).width for n in (100, 1000, 10_000)]
    assert widths[0] > widths[1] > widths[2]


def test_batch_means_interval_layout() -> None:
    iv = batch_means_interval(list(range(25)), batches=10)  # 2 per batch: the first 5 points dropped
    assert iv.n == 20 and iv.estimate == pytest.approx(14.5)
    short = batch_means_interval([1.0, 3.0], batches=10)  # one point per batch
    assert short.estimate == 2.0 and short.known
    assert not batch_means_interval([1.0]).known
    with pytest.raises(ValueError):
        batch_means_interval([1.0, 2.0], batches=1)


# ---------------------------------------------------------------- lines


def test_slope_intercept_exact_line() -> None:
    line = slope_intercept([10, 20, 30, 40], [1.5, 2.5, 3.5, 4.5])
    assert line.slope.estimate == pytest.approx(0.1)
    assert line.intercept.estimate == pytest.approx(0.5)
    assert line.slope.width == pytest.approx(0.0, abs=1e-12)
    assert line.at(50) == pytest.approx(5.5)


def test_slope_interval_coverage() -> None:
    # CPU seconds against requests served: 4 ms per request, 2 s idle, noisy readings
    rng = np.random.default_rng(21)
    requests = np.array([500.0, 1000, 2000, 3000, 4000])
    lines = [slope_intercept(requests, 2.0 + 0.004 * requests + rng.normal(0, 0.5, size=5)) for _ in range(400)]
    assert 0.92 <= sum(0.004 in line.slope for line in lines) / 400 <= 0.98
    assert 0.92 <= sum(2.0 in line.intercept for line in lines) / 400 <= 0.98


def test_slope_intercept_edges() -> None:
    two = slope_intercept([1, 2], [3, 5])
    assert two.slope.estimate == pytest.approx(2.0) and not two.slope.known
    with pytest.raises(ValueError):
        slope_intercept([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError):
        slope_intercept([1, 2], [1])


# ---------------------------------------------------------------- comparisons


def test_level_and_ranked() -> None:
    a, b, c = Interval(20.0, 19.0, 21.0), Interval(19.5, 18.8, 20.2), Interval(10.0, 9.0, 11.0)
    assert level(a, b) and not level(a, c)
    rows = ranked({"slow": c, "b": b, "a": a})
    assert [(r.name, r.rank, r.level_with) for r in rows] == [("a", 1, ("b",)), ("b", 1, ("a",)), ("slow", 3, ())]
    latency = ranked({"a": a, "slow": c}, higher_is_better=False)
    assert [(r.name, r.rank) for r in latency] == [("slow", 1), ("a", 2)]


def test_a_fixed_percentage_is_not_the_rule() -> None:
    # 5% apart but tight: not level; 20% apart but wide: level
    assert not level(Interval(100.0, 99.5, 100.5), Interval(105.0, 104.5, 105.5))
    assert level(Interval(100.0, 80.0, 120.0), Interval(120.0, 100.0, 140.0))


def test_trend_detects_a_rising_latency() -> None:
    rng = np.random.default_rng(4)
    rising = rng.exponential(0.1, size=900) * np.linspace(1.0, 2.0, 900)
    trend = trend_interval(rising.tolist())
    assert trend.rising and not trend.falling and trend.change > 0
    assert trend.first.n == trend.last.n == 300


def test_trend_rarely_sees_one_in_steady_data() -> None:
    rng = np.random.default_rng(6)
    seen = sum(trend_interval(rng.exponential(0.1, size=600)).rising for _ in range(200))
    assert seen <= 6  # non-overlap of two 95% intervals: far stricter than 5%


def test_trend_with_too_few_values_decides_nothing() -> None:
    trend = trend_interval([1.0, 1.0, 1.0, 9.0, 9.0, 9.0])
    assert not trend.rising and not trend.first.known
    with pytest.raises(ValueError):
        trend_interval([1.0, 2.0])
