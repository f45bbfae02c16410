"""Textbook values (hand-computed), including the single-sample and all-equal cases."""

import math

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
