"""Textbook values (hand-computed), including the single-sample and all-equal cases."""

import math

import numpy as np
import pytest

from reports import stats

DATA = [2, 4, 4, 4, 5, 5, 7, 9]  # mean 5, sum of squared deviations 32


def test_median():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([1, 2, 3, 4]) == 2.5
    assert stats.median([7.5]) == 7.5
    assert math.isnan(stats.median([]))


def test_quantile_is_linear_interpolation_type_7():
    # positions (n-1)q: q=0.25 on [1,2,3,4] -> 0.75 -> 1 + 0.75 * (2 - 1) = 1.75
    assert stats.quantile([1, 2, 3, 4], 0.25) == pytest.approx(1.75)
    assert stats.quantile([1, 2, 3, 4], 0.75) == pytest.approx(3.25)
    assert stats.quantile([1, 2, 3, 4], 0.0) == 1
    assert stats.quantile([1, 2, 3, 4], 1.0) == 4
    with pytest.raises(ValueError, match="within"):
        stats.quantile([1], 1.5)


def test_iqr():
    assert stats.iqr([1, 2, 3, 4]) == pytest.approx(1.5)
    assert stats.iqr([5.0]) == 0
    assert stats.iqr([3, 3, 3]) == 0


def test_coefficient_of_variation_uses_the_sample_sd():
    assert stats.coefficient_of_variation(DATA) == pytest.approx(math.sqrt(32 / 7) / 5)
    assert stats.coefficient_of_variation([4, 4, 4]) == 0
    assert math.isnan(stats.coefficient_of_variation([4]))


def test_non_finite_samples_are_ignored():
    assert stats.median([1, float("nan"), 3, float("inf")]) == 2


def test_rejects_two_dimensional_input():
    with pytest.raises(ValueError, match="one-dimensional"):
        stats.median([[1, 2], [3, 4]])


def test_geometric_mean_counts_slowdowns():
    assert stats.geometric_mean([2, 8]) == pytest.approx(4)
    assert stats.geometric_mean([0.5, 2]) == pytest.approx(1)  # not clipped at 1
    assert stats.geometric_mean([3]) == pytest.approx(3)
    with pytest.raises(ValueError, match="positive"):
        stats.geometric_mean([1, 0])


def test_median_ci_edge_cases():
    assert stats.median_ci([[7.0]]) == (7.0, 7.0)
    assert stats.median_ci([[2.0, 2.0, 2.0], [2.0, 2.0]]) == (2.0, 2.0)
    with pytest.raises(ValueError, match="no samples"):
        stats.median_ci([[]])


def test_median_ci_matches_scipy_for_one_run():
    rng = np.random.default_rng(1)
    sample = rng.normal(10, 1, 400)
    ours = stats.median_ci([sample], n_resamples=4000)
    theirs = stats.scipy_median_ci(sample, n_resamples=4000)
    assert ours[0] < np.median(sample) < ours[1]
    assert ours == pytest.approx(theirs, rel=0.005)


def test_median_ci_is_seeded():
    sample = [np.arange(50.0)]
    assert stats.median_ci(sample, seed=3) == stats.median_ci(sample, seed=3)


def test_hierarchical_ci_is_wider_when_runs_disagree():
    rng = np.random.default_rng(2)
    runs = [rng.normal(m, 0.1, 300) for m in (9.0, 10.0, 11.0)]
    pooled = stats.median_ci([np.concatenate(runs)])
    hierarchical = stats.median_ci(runs)
    assert hierarchical[1] - hierarchical[0] > 5 * (pooled[1] - pooled[0])


def test_ratio_of_medians_ci_covers_the_true_ratio():
    rng = np.random.default_rng(3)
    slow = [rng.normal(0.5, 0.02, 200)]
    fast = [rng.normal(0.1, 0.004, 200)]
    low, high = stats.ratio_of_medians_ci(slow, fast)
    assert low < 5.0 < high and high - low < 0.2
    assert stats.ratio_of_medians_ci([[0.5] * 5], [[0.1] * 5]) == pytest.approx((5.0, 5.0))


def test_robust_cv_is_the_normalised_iqr_over_the_median():
    # IQR of 1..4 is 1.5 (type-7 quartiles 1.75 and 3.25), median 2.5
    assert stats.robust_cv([1, 2, 3, 4]) == pytest.approx(0.7413 * 1.5 / 2.5)
    assert stats.robust_cv([5, 5, 5]) == 0
    assert math.isnan(stats.robust_cv([]))
    outliers = [1.0] * 98 + [50.0, 80.0]
    assert stats.robust_cv(outliers) == 0 and stats.coefficient_of_variation(outliers) > 3


def test_median_ci_of_several_runs_is_the_t_interval_of_their_log_medians():
    from scipy import stats as sps

    runs = [[1.0, 1.1, 0.9], [2.0, 2.2, 1.8], [4.0, 4.1, 3.9]]  # medians 1, 2, 4
    logs = np.log([1.0, 2.0, 4.0])  # mean ln 2, sd ln 2
    half = sps.t.ppf(0.975, 2) * math.log(2) / math.sqrt(3)
    expected = (math.exp(logs.mean() - half), math.exp(logs.mean() + half))
    assert stats.median_ci(runs) == pytest.approx(expected)
    assert stats.covers_runs(runs) and not stats.covers_runs([[1.0, 2.0], []])


def test_two_runs_give_the_wide_interval_of_one_degree_of_freedom():
    low, high = stats.median_ci([[1.0], [1.1]])
    se = math.log(1.1) / 2  # sd of two values is |difference| / sqrt 2, over sqrt 2
    assert math.log(high / low) == pytest.approx(2 * 12.7062 * se, rel=1e-4)


def test_ratio_ci_of_several_runs_is_welch_on_log_run_medians():
    from scipy import stats as sps

    top = [[0.50, 0.51], [0.55], [0.52, 0.53, 0.51]]
    bottom = [[0.10], [0.12], [0.11], [0.105]]
    log_top = np.log([np.median(r) for r in top])
    log_bottom = np.log([np.median(r) for r in bottom])
    welch = sps.ttest_ind(log_top, log_bottom, equal_var=False).confidence_interval(0.95)
    assert stats.ratio_of_medians_ci(top, bottom) == pytest.approx(np.exp(welch))


def test_run_level_intervals_need_positive_times():
    with pytest.raises(ValueError, match="positive"):
        stats.median_ci([[0.0], [1.0]])
