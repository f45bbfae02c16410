"""The regression verdict on synthetic samples with known outcomes."""

import json

import numpy as np
import pytest

from reports.regression import GatePolicy, Side, compare_sides, judge, verdicts_json

POLICY = GatePolicy()


def runs(rng, n_runs, median, steps=200, step_noise=0.05, run_noise=0.02):
    """``n_runs`` processes: each with its own offset (run-to-run noise), then step noise."""
    return [
        median * (1 + rng.normal(0, run_noise)) * (1 + np.abs(rng.normal(0, step_noise, steps)))
        for _ in range(n_runs)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_identical_distributions_are_no_change(seed):
    rng = np.random.default_rng(seed)
    v = judge(runs(rng, 6, 0.040), runs(rng, 6, 0.040), POLICY)
    assert v.verdict == "no change", v.reason
    assert v.ratio_ci_low < 1 < v.ratio_ci_high


@pytest.mark.parametrize("seed", range(5))
def test_a_clear_20_percent_shift_is_a_regression(seed):
    rng = np.random.default_rng(seed)
    v = judge(runs(rng, 5, 0.040), runs(rng, 5, 0.048), POLICY)
    assert v.verdict == "regression", v.reason
    assert v.ratio == pytest.approx(1.2, rel=0.05) and v.p_slower < 0.05
    assert v.ratio_ci_low > 1.1


def test_a_clear_speedup_is_an_improvement():
    rng = np.random.default_rng(7)
    v = judge(runs(rng, 5, 0.040), runs(rng, 5, 0.030), POLICY)
    assert v.verdict == "improvement" and v.p_faster < 0.05


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_samples_are_inconclusive(n):
    rng = np.random.default_rng(3)
    v = judge(runs(rng, n, 0.040), runs(rng, n, 0.060), POLICY)
    assert v.verdict == "inconclusive" and "need 3 or more" in v.reason


def test_three_runs_each_cannot_reach_significance():
    # The smallest one-sided exact Mann-Whitney p for 3 vs 3 is 1/20 = 0.05, not < 0.05.
    rng = np.random.default_rng(4)
    v = judge(runs(rng, 3, 0.040, run_noise=0.0), runs(rng, 3, 0.060, run_noise=0.0), POLICY)
    assert v.p_slower == pytest.approx(0.05)
    assert v.verdict == "inconclusive"


def test_a_large_relative_but_tiny_absolute_change_is_not_a_regression():
    rng = np.random.default_rng(5)
    policy = GatePolicy(min_effect_s=1e-3)
    v = judge(runs(rng, 5, 0.001), runs(rng, 5, 0.0012), policy)  # +20% of 1 ms
    assert v.verdict != "regression"


def test_noisy_runs_that_straddle_the_threshold_are_inconclusive():
    rng = np.random.default_rng(6)
    v = judge(runs(rng, 4, 0.040, run_noise=0.15), runs(rng, 4, 0.044, run_noise=0.15), POLICY)
    assert v.verdict == "inconclusive"


def test_compare_sides_and_json():
    rng = np.random.default_rng(8)
    base = Side({"a": runs(rng, 5, 0.04), "b": runs(rng, 5, 0.04)}, [], "base")
    cand = Side({"a": runs(rng, 5, 0.05), "c": runs(rng, 5, 0.04)}, [], "cand")
    verdicts = compare_sides(base, cand, POLICY)
    assert [v.cell for v in verdicts] == ["a"]
    doc = json.loads(verdicts_json(verdicts, POLICY))
    assert doc["regression"] is True and doc["verdicts"][0]["verdict"] == "regression"
    single = judge([np.array([0.04])], [np.array([0.05])], POLICY)
    assert json.loads(verdicts_json([single], POLICY))["verdicts"][0]["p_slower"] is None


def test_policy_validation():
    with pytest.raises(ValueError, match="threshold"):
        GatePolicy(threshold=0)
    with pytest.raises(ValueError, match="alpha"):
        GatePolicy(alpha=1.5)
