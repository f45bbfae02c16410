"""The regression verdict on synthetic samples with known outcomes."""

import json

import numpy as np
import pytest

from reports.regression import (
    GatePolicy,
    compare_sides,
    comparison_notes,
    gate_fails,
    judge,
    judge_cell,
    rank_p,
)
from reports.sides import CellRuns, RunOutcome, Side
from reports.verdicts import verdicts_json

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
    base = Side({"a": CellRuns(runs(rng, 5, 0.04))}, [], "base")
    cand = Side({"a": CellRuns(runs(rng, 5, 0.05)), "c": CellRuns(runs(rng, 5, 0.04))}, [], "c")
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


def _brute_force_p(x, y):
    """P(U >= observed) over every split of the pooled values, ties sharing midranks."""
    import itertools

    from scipy.stats import rankdata

    pooled = np.concatenate([x, y])
    ranks = rankdata(pooled)
    observed = ranks[: len(x)].sum()
    sums = [ranks[list(c)].sum() for c in itertools.combinations(range(len(pooled)), len(x))]
    return np.mean(np.array(sums) >= observed - 1e-9)


@pytest.mark.parametrize(
    "x, y",
    [
        ([1.0, 2.0, np.inf, np.inf], [0.5, 1.5, 2.5, np.inf, 0.7]),  # censored on both sides
        ([3.0, 4.0, 5.0, np.inf, np.inf], [1.0, 2.0, 3.5, 3.7, 0.5]),
        ([1.0, 2.0, 3.0], [1.5, 2.5, 3.5]),  # no ties: the classic exact test
    ],
)
def test_rank_p_is_the_exact_permutation_p_value_with_ties(x, y):
    x, y = np.array(x), np.array(y)
    assert rank_p(x, y, "greater") == pytest.approx(_brute_force_p(x, y))


def _side(cells, source="s"):
    return Side({k: CellRuns(*v) for k, v in cells.items()}, [], source)


def test_a_missing_candidate_cell_fails_the_gate():
    rng = np.random.default_rng(9)
    base = _side({"a": (runs(rng, 5, 0.04),), "b": (runs(rng, 5, 0.04),)})
    cand = _side({"a": (runs(rng, 5, 0.04),), "c": (runs(rng, 5, 0.04),)})
    verdicts = compare_sides(base, cand, POLICY)
    assert [(v.cell, v.verdict) for v in verdicts] == [
        ("a", "no change"),
        ("b", "candidate failed"),
    ]
    assert verdicts[1].reason == "no candidate run" and gate_fails(verdicts)
    notes = comparison_notes(base, cand)
    assert notes == ["Only in the candidate (not compared): c (ok 5/5)"]
    doc = json.loads(verdicts_json(verdicts, POLICY, notes))
    assert doc["candidate_failed"] is True and doc["fail"] is True and doc["regression"] is False
    assert doc["notes"] == notes


@pytest.mark.parametrize("status", ["failed", "oom", "diverged", "timeout"])
def test_a_candidate_without_finished_runs_fails_the_gate(status):
    rng = np.random.default_rng(10)
    dead = tuple(RunOutcome(f"r{i}", status, "boom", f"logs/r{i}.log") for i in range(5))
    v = judge_cell("a", CellRuns(runs(rng, 5, 0.04)), CellRuns((), dead), POLICY)
    assert v.verdict == "candidate failed" and v.candidate_status == f"{status} 5/5"
    assert v.reason == f"{status} 5/5 (boom); log: logs/r0.log"
    assert v.candidate_log == "logs/r0.log" and gate_fails([v])


def test_one_broken_candidate_run_fails_the_gate():
    rng = np.random.default_rng(11)
    crashed = (RunOutcome("r4", "failed", "Segmentation fault", "logs/r4.log"),)
    v = judge_cell("a", CellRuns(runs(rng, 5, 0.04)), CellRuns(runs(rng, 4, 0.04), crashed), POLICY)
    assert v.verdict == "candidate failed"
    assert v.reason == "ok 4/5, failed 1/5 (Segmentation fault); log: logs/r4.log"


def test_timed_out_candidate_runs_count_as_the_slowest():
    # Two finished candidate runs alone are too few for a verdict; with the three that
    # timed out, all five rank above every baseline run.
    rng = np.random.default_rng(12)
    late = tuple(RunOutcome(f"t{i}", "timeout", "exceeded 120 s") for i in range(3))
    base, cand = CellRuns(runs(rng, 5, 0.04)), CellRuns(runs(rng, 2, 0.046), late)
    v = judge_cell("a", base, cand, POLICY)
    assert v.verdict == "regression", v.reason
    assert v.p_slower == pytest.approx(1 / 252) and v.candidate_runs == 2
    assert v.reason.endswith("3 candidate run(s) timed out")
    assert v.candidate_status == "ok 2/5, timeout 3/5"


def test_a_candidate_with_a_timeout_is_never_no_change():
    rng = np.random.default_rng(13)
    late = (RunOutcome("t", "timeout", "exceeded 120 s"),)
    v = judge_cell("a", CellRuns(runs(rng, 5, 0.04)), CellRuns(runs(rng, 5, 0.04), late), POLICY)
    assert v.verdict == "inconclusive" and "1 candidate run(s) timed out" in v.reason


def test_most_candidate_runs_timing_out_is_a_regression_however_fast_the_rest():
    rng = np.random.default_rng(14)
    late = tuple(RunOutcome(f"t{i}", "timeout", "exceeded 120 s") for i in range(4))
    v = judge_cell("a", CellRuns(runs(rng, 5, 0.04)), CellRuns(runs(rng, 1, 0.04), late), POLICY)
    assert v.verdict == "regression", v.reason
    assert v.ratio == pytest.approx(1.0, abs=0.05)  # what the finished run measured


def test_what_was_not_compared_is_noted():
    rng = np.random.default_rng(15)
    skipped = (RunOutcome("s", "skipped", "no GPU visible"),)
    crashed = (RunOutcome("f", "failed", "boom"),)
    base = _side(
        {
            "gpu": ((), skipped),
            "broken": ((), crashed),
            "new": ((), skipped),
            "a": (runs(rng, 3, 0.04),),
        }
    )
    cand = _side(
        {
            "gpu": ((), skipped),
            "broken": (runs(rng, 3, 0.04),),
            "new": (runs(rng, 3, 0.04),),
            "a": ((), skipped),
        }
    )
    verdicts = compare_sides(base, cand, POLICY)
    assert [(v.cell, v.verdict, v.reason) for v in verdicts] == [
        ("a", "candidate failed", "skipped 1/1 (no GPU visible)")
    ]
    assert comparison_notes(base, cand) == [
        "Not compared: the baseline has no finished run of broken (failed 1/1)",
        "Only in the candidate (not compared): new (ok 3/3)",
    ]


def test_a_significant_slowdown_of_half_the_threshold_is_a_regression():
    """The threshold is the band of no change; a clearly significant slowdown of at least
    half of it (here 7% against ±10%) fails the gate, one below half does not."""
    rng = np.random.default_rng(11)
    base = runs(rng, 8, 0.040, run_noise=0.005)
    assert judge(base, runs(rng, 8, 0.040 * 1.07, run_noise=0.005), POLICY).verdict == (
        "regression"
    )
    small = judge(base, runs(rng, 8, 0.040 * 1.03, run_noise=0.005), POLICY)
    assert small.verdict == "no change", small.reason
