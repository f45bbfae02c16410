"""Change points: the detector meets its targets on seeded synthetic histories, magnitudes
carry honest intervals, and a control cell that moves too makes a runner shift."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.benchmarks.changepoints import Scenario, evaluate, simulate_history
from reports.changepoints import (
    ChangePointPolicy,
    CommitPoint,
    analyse,
    log_t_interval,
    moves_with_control,
    ratio_interval,
)

pytest.importorskip("otava.analysis", reason="needs apache-otava (pip install --no-deps)")


def test_no_change_point_in_at_least_95_of_100_noise_only_histories():
    # 4% run-to-run noise of a run's median (the middle of the 2-5% a shared 2-core box
    # shows), 3 runs per commit, 40 commits.
    figures = evaluate(Scenario(noise=0.04), histories=100, seed=0)
    assert figures.quiet >= 95, figures


def test_a_10_percent_step_is_found_at_its_commit_in_at_least_90_of_100():
    figures = evaluate(Scenario(noise=0.04, step=0.10), histories=100, seed=1)
    assert figures.found >= 90, figures
    assert figures.failed_on >= 90, figures  # and judged a regression beyond 5%


def test_targets_hold_at_the_noisy_end_of_the_range():
    figures = evaluate(Scenario(noise=0.05, step=0.10), histories=100, seed=2)
    assert figures.quiet >= 95 and figures.found >= 90, figures


def test_the_step_is_located_and_measured():
    rng = np.random.default_rng(3)
    points = simulate_history(rng, Scenario(noise=0.03, step=0.20), step_at=25)
    (change,) = analyse(points, ChangePointPolicy()).change_points
    assert change.index == 25 and change.commit == "c025" and change.before == "c024"
    assert change.direction == "slower" and change.is_regression(0.10)
    assert change.ratio_low < 1.20 < change.ratio_high
    assert 1.15 < change.ratio < 1.25
    assert (change.runs_before, change.runs_after) == (75, 45)


def test_a_speedup_is_an_improvement_not_a_regression():
    rng = np.random.default_rng(4)
    points = simulate_history(rng, Scenario(noise=0.03, step=-0.2), step_at=20)
    (change,) = analyse(points, ChangePointPolicy()).change_points
    assert change.direction == "faster" and not change.is_regression(0.05)
    assert change.ratio_high < 1


def test_the_log_t_interval_is_the_textbook_one():
    values = [1.0, 1.1, 0.95, 1.05]
    logs = np.log(values)
    half = sps.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    low, high = log_t_interval(values)
    assert low == pytest.approx(math.exp(logs.mean() - half))
    assert high == pytest.approx(math.exp(logs.mean() + half))
    assert all(math.isnan(x) for x in log_t_interval([1.0]))


def test_the_ratio_interval_covers_the_true_ratio_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(2000):
        before = np.exp(rng.normal(0, 0.04, 6))
        after = 1.1 * np.exp(rng.normal(0, 0.08, 4))
        _, low, high = ratio_interval(before, after)
        covered += low <= 1.1 <= high
    assert 0.93 <= covered / 2000 <= 0.97


def _cell_and_control(rng, cell_step, control_step, at=20):
    scenario = Scenario(noise=0.03, step=cell_step)
    cell = simulate_history(rng, scenario, step_at=at)
    control = simulate_history(rng, Scenario(noise=0.03, step=control_step), step_at=at)
    return analyse(cell, ChangePointPolicy()), control


def test_a_control_that_moves_alike_makes_a_runner_shift():
    analysis, control = _cell_and_control(np.random.default_rng(6), 0.15, 0.12)
    assert moves_with_control(analysis, analysis.newest, control)


def test_a_still_control_leaves_the_regression_standing():
    analysis, control = _cell_and_control(np.random.default_rng(7), 0.15, 0.0)
    assert analysis.newest.is_regression(0.05)
    assert not moves_with_control(analysis, analysis.newest, control)


def test_a_control_moving_the_other_way_or_barely_is_no_runner_shift():
    analysis, control = _cell_and_control(np.random.default_rng(8), 0.15, -0.10)
    assert not moves_with_control(analysis, analysis.newest, control)
    analysis, control = _cell_and_control(np.random.default_rng(9), 0.30, 0.05)
    assert not moves_with_control(analysis, analysis.newest, control)


def test_a_control_without_runs_on_both_sides_is_no_evidence():
    analysis, control = _cell_and_control(np.random.default_rng(10), 0.15, 0.15)
    assert not moves_with_control(analysis, analysis.newest, control[:20])


def test_short_series_and_bad_points():
    assert (
        analyse(
            [CommitPoint("a", (1.0,)), CommitPoint("b", (2.0,))], ChangePointPolicy()
        ).change_points
        == ()
    )
    with pytest.raises(ValueError, match="commit b: run medians must be positive"):
        CommitPoint("b", (0.0,))
    with pytest.raises(ValueError, match="threshold"):
        ChangePointPolicy(threshold=0)
