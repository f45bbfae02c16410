"""The group-sequential A/B comparison: its intervals, its stopping rules, its error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from reports.sequential import (
    LookSchedule,
    critical_value,
    decide,
    look,
    nominal_level,
    simulate,
)

SCHEDULE = LookSchedule.every(2, 4, 20)


def test_one_look_is_the_ordinary_t_interval() -> None:
    single = LookSchedule((8,))
    assert nominal_level(single) == pytest.approx(0.05, abs=0.003)
    d = np.random.default_rng(1).normal(0.02, 0.05, 8)
    got = look(d, single)
    half = sps.t.ppf(0.975, 7) * d.std(ddof=1) / math.sqrt(8)
    assert math.log(got.low) == pytest.approx(d.mean() - half, rel=0.05)
    assert math.log(got.high) == pytest.approx(d.mean() + half, rel=0.05)


def test_more_looks_mean_wider_intervals_at_each() -> None:
    assert nominal_level(SCHEDULE) < 0.05 / 2
    assert critical_value(20, SCHEDULE) > sps.t.ppf(0.975, 19)
    assert critical_value(4, SCHEDULE) > critical_value(20, SCHEDULE)


@pytest.mark.parametrize("tail_df", [None, 5.0])
def test_intervals_cover_the_true_ratio_at_every_look_at_once(tail_df: float | None) -> None:
    """Simultaneous coverage over all looks: the property that makes peeking safe. Naive
    t intervals at each of the nine looks would cover all of them far less often."""
    rng = np.random.default_rng(7)
    truth, trials, covered, naive = math.log(1.07), 2000, 0, 0
    for _ in range(trials):
        noise = rng.standard_normal(20) if tail_df is None else rng.standard_t(tail_df, 20)
        d = truth + 0.05 * noise
        looks = [look(d[:k], SCHEDULE) for k in SCHEDULE.looks]
        covered += all(x.low <= 1.07 <= x.high for x in looks)
        naive += all(
            abs(d[:k].mean() - truth) <= sps.t.ppf(0.975, k - 1) * d[:k].std(ddof=1) / k**0.5
            for k in SCHEDULE.looks
        )
    assert covered / trials >= 0.94
    assert naive / trials < 0.90  # the naive repeated looks do not hold their level


def _at(ratio: float, low: float, high: float, pairs: int) -> object:
    from reports.sequential import Look

    return Look(pairs, ratio, low, high)


def test_stops_early_on_a_clear_difference() -> None:
    d = decide(_at(1.25, 1.15, 1.35, 4), SCHEDULE, 0.10, 0.04, 1e-4)
    assert d.verdict == "regression"
    d = decide(_at(0.8, 0.75, 0.85, 4), SCHEDULE, 0.10, 0.04, 1e-4)
    assert d.verdict == "improvement"


def test_stops_early_on_a_clear_no_change() -> None:
    d = decide(_at(1.0, 0.97, 1.03, 6), SCHEDULE, 0.10, 0.04, 1e-4)
    assert d.verdict == "no change"


def test_keeps_going_while_undecided_and_stops_at_the_budget() -> None:
    undecided = _at(1.04, 0.95, 1.14, 10)
    assert decide(undecided, SCHEDULE, 0.10, 0.04, 1e-4).verdict is None
    spent = _at(1.04, 0.95, 1.14, 20)
    assert decide(spent, SCHEDULE, 0.10, 0.04, 1e-4).verdict == "inconclusive"


def test_a_significant_but_tiny_change_is_not_a_regression() -> None:
    # Above 1 but below half the threshold: not yet a regression; inside the band: no change.
    assert decide(_at(1.03, 1.01, 1.05, 12), SCHEDULE, 0.10, 0.04, 1e-4).verdict == "no change"
    # Large relative change, tiny absolute one: below --min-effect.
    assert decide(_at(1.3, 1.2, 1.4, 4), SCHEDULE, 0.10, 1e-5, 1e-4).verdict is None


def test_a_look_must_be_planned() -> None:
    with pytest.raises(ValueError, match="not a planned look"):
        look([0.1, 0.2, 0.3, 0.1, 0.2], SCHEDULE)
    with pytest.raises(ValueError, match="ascending"):
        LookSchedule((4, 4, 6))


def test_error_rates_under_repeated_looks() -> None:
    """A/A: false alarms stay at the one-sided 2.5% the 95% intervals allow, though the
    data is looked at nine times; a 20% slowdown is caught; a 10% one mostly."""
    aa = simulate(1.0, 0.08, SCHEDULE, trials=2000, seed=3)
    assert aa["regression"] <= 0.025
    assert aa["no change"] >= 0.85
    assert simulate(1.2, 0.08, SCHEDULE, trials=500, seed=4)["regression"] >= 0.99
    assert simulate(1.1, 0.08, SCHEDULE, trials=500, seed=5)["regression"] >= 0.9
